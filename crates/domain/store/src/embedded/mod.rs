//! The embedded backend: SQLite in WAL mode, everything in one data directory.
//!
//! Why SQLite: a single file that needs no server, transactions that survive
//! `kill -9` and power loss (WAL + `synchronous=FULL`), readers that never wait for
//! the writer, and a query planner for the listings IMAP and the console need. An
//! embedded Rust key-value engine would give us the first two but leave indexing,
//! migrations and ad-hoc inspection (`sqlite3 postgate.db`) to write by hand.
//!
//! Shape: one writer thread ([`writer`]) owns the only write connection and
//! commits batches of concurrent jobs together (group commit); reads run on a
//! small pool of read connections on tokio's blocking threads. The CLI opens the
//! same file from another process while the server runs: SQLite's file locks
//! arbitrate, and nothing here caches state that another process could change.
mod access;
pub mod backup;
mod calendar;
mod directory;
mod dkim;
mod mailboxes;
mod messages;
mod queue;
mod schema;
mod stats;
mod walbuf;
mod writer;

use crate::{ChangeFeed, Result, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use writer::Writer;

/// The database file inside the data directory.
pub const DB_FILE: &str = "postgate.db";

/// The schema version this program's store has once migrated.
pub(crate) fn schema_version() -> usize {
    schema::version()
}

/// Concurrent read transactions. Two cores here; reads are short; more than
/// this would only queue inside SQLite.
const READERS: usize = 8;

/// The embedded store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Writer,
    idle_readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    feed: ChangeFeed,
    resolutions: crate::cache::ResolveCache,
    /// POP3 maildrop locks: folder → holder. In memory: one server process
    /// serves a data directory.
    maildrops: Mutex<std::collections::HashMap<postgate_types::FolderId, String>>,
}

/// A SQLite error in the store's terms. SQLITE_FULL (the disk is full, or
/// the database reached `max_page_count`) is [`StoreError::Full`], so that
/// protocols answer "mail system full" (RFC 3463 §3.4) rather than a local
/// error, and so that callers know space, not a retry alone, is needed.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        StoreError::Full(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<EmbeddedStore> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join(DB_FILE);
        let mut conn = open_writer_conn(&path)?;
        schema::migrate(&mut conn).map_err(backend)?;
        // Checkpoints run on their own thread (see `housekeeper`), not inside
        // the writer's commits.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .map_err(backend)?;
        let wal = Arc::new(writer::WalRewind::default());
        let writer = Writer::start(conn, wal.clone())?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            writer,
            idle_readers: Mutex::new(Vec::new()),
            reader_permits: Semaphore::new(READERS),
            feed: ChangeFeed::default(),
            resolutions: crate::cache::ResolveCache::default(),
            maildrops: Mutex::default(),
        });
        housekeeper(open_conn(&path)?, Arc::downgrade(&inner), wal)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(EmbeddedStore { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in the next group commit; resolves once it is on disk.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Runs a directory write: `f` and the generation bump in one commit, then
    /// forgets cached resolutions.
    async fn write_directory<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let out = self
            .write(move |conn| {
                let v = f(conn)?;
                directory::bump_generation(conn)?;
                Ok(v)
            })
            .await;
        self.inner.resolutions.invalidate();
        out
    }

    /// Runs `f` on a read connection, on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner.idle_readers.lock().map(|mut v| v.pop()) {
                Ok(Some(c)) => c,
                _ => open_conn(&inner.path)?,
            };
            let out = f(&conn);
            if let Ok(mut idle) = inner.idle_readers.lock() {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task: {e}")))?
    }
}

/// How often the housekeeper reads the directory generation: how long a
/// directory change made by another process (the CLI) may take to reach the
/// resolution cache.
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// How often the WAL is copied into the database file. Between checkpoints the
/// WAL grows by what was written meanwhile (tens of MB a second under full
/// inbound load); a page changed by many commits in between is copied once,
/// which is why this is not shorter (measured: 250 ms cost ~10% of inbound
/// throughput against 1 s).
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1000);

/// The housekeeping thread: copies committed WAL frames into the database file,
/// so that the writer's commits never wait for a checkpoint's I/O (PASSIVE: it
/// never blocks readers or the writer), copies a long WAL as soon as the
/// writer asks and then has the writer rewind it (see [`writer::WalRewind`]),
/// and reads the directory generation for the resolution cache. Ends when
/// the store is dropped.
fn housekeeper(
    conn: Connection,
    store: std::sync::Weak<Inner>,
    wal: Arc<writer::WalRewind>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("postgate-store-housekeeper".into())
        .spawn(move || {
            // For the writer to wake (until then, a request waits for a tick).
            wal.set_housekeeper(std::thread::current());
            let mut last_checkpoint = std::time::Instant::now();
            let mut wal_frames = 0;
            loop {
                // Woken early by the writer when the WAL is long.
                std::thread::park_timeout(HOUSEKEEPING_INTERVAL);
                let Some(store) = store.upgrade() else { break };
                // A WAL already long at the last look is checkpointed at every tick.
                if wal.copy_wanted()
                    || last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
                    || wal_frames > WAL_BUSY_FRAMES
                {
                    last_checkpoint = std::time::Instant::now();
                    match checkpoint(&conn) {
                        Ok(frames) => {
                            wal_frames = frames;
                            wal.copied(frames);
                        }
                        Err(e) => tracing::warn!(error = %e, "store: checkpoint failed"),
                    }
                }
                match directory::generation(&conn) {
                    Ok(g) => store.resolutions.observe(g),
                    Err(e) => tracing::warn!(error = %e, "store: reading the directory generation"),
                }
            }
        })
        .map(|_| ())
}

/// WAL frames (pages) beyond which checkpoints run at every housekeeping tick.
const WAL_BUSY_FRAMES: i64 = 4_096; // 16 MiB of 4 KiB pages

/// One PASSIVE checkpoint: copies what it can without waiting for anyone.
/// Returns the WAL's length in frames as the checkpoint found it. (Copying
/// alone does not keep the WAL short under steady writing: see
/// [`writer::WalRewind`].)
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

fn open_conn(path: &Path) -> Result<Connection> {
    configured(Connection::open(path))
}

fn configured(conn: rusqlite::Result<Connection>) -> Result<Connection> {
    let conn = conn.map_err(backend)?;
    schema::configure(&conn).map_err(backend)?;
    Ok(conn)
}

/// The writer's connection: its WAL writes are gathered into one call per
/// commit ([`walbuf`]).
fn open_writer_conn(path: &Path) -> Result<Connection> {
    let vfs = walbuf::vfs_name()
        .ok_or_else(|| StoreError::Backend("SQLite has no default VFS".into()))?;
    let conn = configured(Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::default(),
        vfs,
    ))?;
    // The VFS hands the WAL its bytes at the commit's sync: every commit
    // must sync (FULL or EXTRA), or other connections would be told of
    // frames not yet in the file.
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(backend)?;
    if synchronous < 2 {
        return Err(StoreError::Backend(format!(
            "the writer's connection must sync every commit (synchronous = {synchronous})"
        )));
    }
    Ok(conn)
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Directory, Mailboxes, NewMessage, NewUser};
    use postgate_types::EmailAddress;

    fn message(i: usize) -> NewMessage {
        NewMessage {
            raw: format!("Subject: m{i}\r\n\r\n{}\r\n", "x".repeat(20_000)).into_bytes(),
            content: Default::default(),
            flags: Default::default(),
            keywords: Vec::new(),
            internal_date: 0,
            internal_zone: 0,
        }
    }

    /// Sets the writer connection's `max_page_count` (SQLite answers
    /// SQLITE_FULL past it, as it does when the disk is full).
    async fn cap_pages(store: &EmbeddedStore, extra: i64) {
        store
            .write(move |c| {
                let n: i64 = c
                    .query_row("PRAGMA page_count", [], |r| r.get(0))
                    .map_err(backend)?;
                c.query_row(&format!("PRAGMA max_page_count = {}", n + extra), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(backend)?;
                Ok(())
            })
            .await
            .unwrap();
    }

    /// A store in a temporary directory with one user, and that user's INBOX.
    async fn store_with_inbox() -> (tempfile::TempDir, EmbeddedStore, postgate_types::FolderId) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.add_domain("example.org").await.unwrap();
        let user = store
            .add_user(NewUser {
                address: EmailAddress::parse("a@example.org").unwrap(),
                post_office: None,
                display_name: "A".into(),
                given_name: None,
                surname: None,
                title: None,
                department: None,
                phone: None,
                password_hash: None,
            })
            .await
            .unwrap();
        let inbox = store.folder(user.id, "INBOX").await.unwrap().unwrap();
        (dir, store, inbox.id)
    }

    /// Under steady writing the WAL is rewound, not grown: eight tasks append
    /// without pause (so the writer always has the next batch waiting), and
    /// the WAL file never grows far past the rewind threshold (64 frames of
    /// 4 KiB under test) although every append writes some 20 frames. Before
    /// the writer rewound it, the WAL grew by every commit's frames for as
    /// long as the load lasted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steady_writing_keeps_the_wal_short() {
        let (dir, store, inbox) = store_with_inbox().await;
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let longest = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let (store, wal, longest) = (store.clone(), wal.clone(), longest.clone());
                tokio::spawn(async move {
                    for i in 0..60 {
                        store.append(inbox, message(t * 1000 + i)).await.unwrap();
                        let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                        longest.fetch_max(len, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.items(inbox).await.unwrap().len(), 480);
        // 480 appends of 20 KB wrote some 40 MB of frames.
        let longest = longest.load(std::sync::atomic::Ordering::Relaxed);
        assert!(longest < 4 << 20, "the WAL grew to {longest} bytes");
    }

    /// A full store refuses writes with StoreError::Full (not a generic
    /// backend failure), keeps serving reads, and the same writer commits
    /// again once there is room: no restart.
    #[tokio::test]
    async fn full_store_refuses_writes_then_recovers() {
        let (_dir, store, inbox) = store_with_inbox().await;
        cap_pages(&store, 12).await;
        let mut stored = 0;
        let err = loop {
            match store.append(inbox, message(stored)).await {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 50, "the page cap never bit");
        };
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        // Every later write is refused the same way, and the refused
        // messages left nothing behind.
        let again = store.append(inbox, message(stored)).await.unwrap_err();
        assert!(matches!(again, StoreError::Full(_)), "{again:?}");
        assert_eq!(store.items(inbox).await.unwrap().len(), stored);
        // Room again: the same writer thread commits.
        cap_pages(&store, 100_000).await;
        store.append(inbox, message(stored)).await.unwrap();
        assert_eq!(store.items(inbox).await.unwrap().len(), stored + 1);
    }
}
