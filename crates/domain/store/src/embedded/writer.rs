//! The single writer: one thread owns the only write connection and commits
//! batches of jobs together (group commit).
//!
//! Every write in the process goes through [`Writer::write`]. The thread waits
//! for a job, then takes every job that queued up behind it (up to
//! [`MAX_BATCH`]), runs each inside its own SAVEPOINT (so one failing job rolls
//! back alone), and commits the batch with one fsync. Only then does each caller
//! hear back. While a commit is on its way to disk, new jobs queue, and they form
//! the next batch: the more concurrent writers, the more each fsync carries.
//!
//! Between two batches, once the WAL has grown long and the housekeeper has
//! copied most of it, the thread also copies the WAL's last frames into the
//! database, so that its next transaction writes the WAL from the start again
//! (see [`WalRewind`]).
use super::backend;
use crate::{Result, StoreError};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

/// Upper bound on jobs per transaction, so that a flood of writes still commits
/// (and answers) in steady steps rather than one huge transaction.
const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(Result<()>) + Send>;

trait Job: Send {
    /// Runs the job in the open transaction; returns what to do once the commit's
    /// outcome is known, and the job's own failure if it failed.
    fn run(self: Box<Self>, conn: &Connection) -> (Option<StoreError>, Reply);
    /// Tells the caller the job never ran.
    fn abort(self: Box<Self>, err: StoreError);
}

struct TypedJob<T, F> {
    f: F,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> (Option<StoreError>, Reply) {
        let TypedJob { f, tx } = *self;
        match f(conn) {
            Ok(v) => (
                None,
                Box::new(move |commit: Result<()>| {
                    let _ = tx.send(commit.map(|()| v));
                }),
            ),
            Err(e) => (
                Some(e.clone()),
                Box::new(move |_| {
                    let _ = tx.send(Err(e));
                }),
            ),
        }
    }
    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.tx.send(Err(err));
    }
}

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

/// Keeps the WAL short under steady writing, between the writer and the
/// housekeeper.
///
/// SQLite writes the WAL from its start again only when a write transaction
/// begins with every frame already copied into the database. The
/// housekeeper's checkpoints copy in the background, but the writer's next
/// transaction always begins right after its last commit, whose frames
/// nothing has copied yet: under load the WAL grew without end (measured:
/// 600 MB after 20,000 inbound messages, every commit appended to newly
/// allocated blocks). A RESTART checkpoint from the housekeeper had to take
/// the write lock between two batches, and under load never got it.
///
/// So: once a commit leaves more than [`WAL_REWIND_FRAMES`] in the WAL, the
/// writer wakes the housekeeper, which copies the bulk on its own thread
/// (off the path of the deliveries waiting for the next commit) and then
/// asks for the rewind. Between two batches, outside any transaction, the
/// writer copies the few frames committed since: a PASSIVE checkpoint, which
/// waits for no one. Its next transaction then starts the WAL again. A reader
/// still on an older snapshot leaves some frames uncopied; the WAL stays long
/// and the round begins again.
#[derive(Debug, Default)]
pub(crate) struct WalRewind {
    /// The WAL's length in frames after the writer's last commit.
    frames: AtomicI64,
    /// Set by the writer when the WAL is long: the housekeeper should copy.
    copy: AtomicBool,
    /// Set by the housekeeper once it copied: the writer should rewind.
    rewind: AtomicBool,
    /// The housekeeper's thread, to wake it.
    housekeeper: std::sync::OnceLock<std::thread::Thread>,
}

/// WAL frames beyond which the WAL is rewound: 16 MiB of 4 KiB pages, well
/// inside the 64 MiB `journal_size_limit` keeps of the file, so that a
/// rewound WAL is written over blocks already allocated.
const WAL_REWIND_FRAMES: i64 = if cfg!(test) { 64 } else { 4_096 };

impl WalRewind {
    /// The housekeeper's thread, woken when the WAL is long.
    pub(crate) fn set_housekeeper(&self, thread: std::thread::Thread) {
        let _ = self.housekeeper.set(thread);
    }

    /// For the housekeeper: whether the writer asked for a copy now.
    pub(crate) fn copy_wanted(&self) -> bool {
        self.copy.swap(false, Ordering::Relaxed)
    }

    /// For the housekeeper, after a checkpoint that found `frames` in the
    /// WAL: asks the writer to rewind a long one.
    pub(crate) fn copied(&self, frames: i64) {
        if frames > WAL_REWIND_FRAMES {
            self.rewind.store(true, Ordering::Relaxed);
        }
    }

    /// For the writer, between two batches.
    fn between_batches(&self, conn: &Connection) {
        if self.rewind.swap(false, Ordering::Relaxed) {
            copy_rest(conn);
        } else if self.frames.swap(0, Ordering::Relaxed) > WAL_REWIND_FRAMES
            && !self.copy.swap(true, Ordering::Relaxed)
            && let Some(h) = self.housekeeper.get()
        {
            h.unpark();
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(mut conn: Connection, wal: Arc<WalRewind>) -> Result<Writer> {
        // SQLite reports the WAL's length in frames after each commit.
        let seen = wal.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                seen.frames.store(frames.into(), Ordering::Relaxed);
                Ok(())
            },
        ))
        .map_err(backend)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("postgate-store-writer".into())
            .spawn(move || run(conn, rx, &wal))
            .map_err(|e| StoreError::Backend(format!("writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next group commit and resolves once that commit is on disk.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(TypedJob { f, tx }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, wal: &WalRewind) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let counters = postgate_metrics::metrics();
        counters.commit_jobs.observe(batch.len() as f64);
        let started = std::time::Instant::now();
        commit_batch(&conn, batch);
        counters
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        wal.between_batches(&conn);
    }
}

/// Copies into the database what the housekeeper's checkpoint left (the
/// frames committed since), so that the next transaction rewinds the WAL.
fn copy_rest(conn: &Connection) {
    match super::checkpoint(conn) {
        Ok(frames) => tracing::debug!(frames, "store: WAL copied for a rewind"),
        Err(e) => tracing::warn!(error = %e, "store: checkpoint before a WAL rewind failed"),
    }
}

/// Runs a statement without parameters or results through the statement cache:
/// transaction control runs several times per batch, and parsing it anew each
/// time showed up in profiles.
pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &Connection, batch: Vec<Box<dyn Job>>) {
    // BEGIN IMMEDIATE takes the write lock now (waiting out another process such
    // as the CLI for up to busy_timeout), so no statement later fails on an upgrade.
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let err = backend(e);
        tracing::error!(error = %err, "store: cannot begin a write transaction");
        for job in batch {
            job.abort(err.clone());
        }
        return;
    }
    let mut replies = Vec::with_capacity(batch.len());
    let mut broken = None;
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            let err = backend(e);
            job.abort(err.clone());
            broken = Some(err);
            break;
        }
        let (failed, reply) = job.run(conn);
        let end = if failed.is_none() {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        replies.push(reply);
        // Some errors (disk full, I/O) make SQLite roll back the whole
        // transaction: then nothing in this batch can commit. The jobs of
        // the batch hear why: a job that found the disk full (SQLITE_FULL)
        // makes it StoreError::Full for all of them.
        let cause = |other: StoreError| match &failed {
            Some(e @ StoreError::Full(_)) => e.clone(),
            _ => other,
        };
        if let Err(e) = end {
            broken = Some(cause(backend(e)));
            break;
        }
        if conn.is_autocommit() {
            broken = Some(cause(StoreError::Backend(
                "transaction rolled back by the database".into(),
            )));
            break;
        }
    }
    for job in jobs {
        job.abort(match &broken {
            Some(e) => e.clone(),
            None => StoreError::Backend("batch aborted".into()),
        });
    }
    let outcome = match broken {
        Some(e) => {
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            Err(e)
        }
        None => exec(conn, "COMMIT").map_err(backend),
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "store: write batch failed");
        if !conn.is_autocommit() {
            let _ = exec(conn, "ROLLBACK");
        }
    }
    // Each caller hears the commit's own error: a COMMIT that found the
    // disk full answers every job of the batch with StoreError::Full.
    for reply in replies {
        reply(outcome.clone());
    }
}
