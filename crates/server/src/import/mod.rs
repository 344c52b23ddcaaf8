//! `postgate import mbox|maildir|imap`: mail from elsewhere into a user's
//! folders, with its flags, keywords, internal dates and folder structure.
//!
//! Every source ([`mbox`], [`maildir`], [`imap`]) reads messages in a fixed
//! order and hands them to one [`Sink`], which batches them by folder and
//! stores each batch through the store's `append_batch`: one commit per
//! batch (hundreds of messages share an fsync), UIDs in source order, and
//! the change feed told, as IMAP APPEND does. While a batch commits, the
//! source reads the next one.
//!
//! Resuming. A source describes how far it got as a small JSON *cursor*
//! (mbox: the byte offset after the last message; Maildir: per folder,
//! the last file in import order; IMAP: per mailbox, UIDVALIDITY and the
//! last UID). The sink keeps the cursor of the last committed batch in a
//! state file (default `DATA_DIR/import-state/`), written atomically. The
//! one window a plain "write after commit" leaves open, a crash after the
//! commit but before the state file says so, is closed by a write-ahead
//! record: before a batch is committed, the state file names it (cursor
//! after it, folder, the folder's UIDNEXT before it, the SHA-256 of its
//! first message). A run that finds such a record looks at the folder's
//! messages from that UIDNEXT on: if the first message is there, the
//! batch (committed whole or not at all) is counted as done. So a re-run
//! after any interruption continues where the store is, without
//! duplicates and without losing a batch. Chosen over de-duplicating by
//! content because mailboxes legitimately hold identical messages twice,
//! and over keeping the cursor inside the store because no schema change
//! is needed for either backend.
pub mod imap;
pub mod maildir;
pub mod mbox;

use crate::cli::{ImportCmd, ImportOptions};
use anyhow::{Context, bail};
use postgate_runtime::Config;
use postgate_store::{Folder, NewMessage, Store, User};
use postgate_types::{EmailAddress, Flags, FolderRole};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Messages per batch (one commit).
const BATCH_MESSAGES: usize = 1000;
/// Bytes per batch: what a batch may hold in memory (a larger message is
/// a batch alone).
const BATCH_BYTES: usize = 32 << 20;
/// Exit code of the hidden `--stop-after` (tests): "interrupted".
const STOPPED: i32 = 75;

/// Runs `postgate import …`.
pub async fn run(config: &Config, cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(config).await?;
    let (source, address, options) = match &cmd {
        ImportCmd::Mbox {
            file,
            address,
            folder,
            format,
            options,
        } => (
            format!("mbox {} {format:?} {folder}", canonical(file)),
            address,
            options,
        ),
        ImportCmd::Maildir {
            dir,
            address,
            options,
        } => (format!("maildir {}", canonical(dir)), address, options),
        ImportCmd::Imap {
            from,
            address,
            options,
            ..
        } => (format!("imap {from}"), address, options),
    };
    let user = store
        .user(
            &EmailAddress::parse(address)
                .with_context(|| format!("{address:?}: not an address"))?,
        )
        .await?
        .with_context(|| format!("no user {address}"))?;
    let state_path = match &options.state {
        Some(p) => p.clone(),
        None => config.data_dir.join("import-state").join(format!(
            "{}.json",
            hex(&digest(format!("{source}\n{}", user.address).as_bytes())[..8])
        )),
    };
    let mut sink = Sink::open(store, user, state_path, &source, config, options).await?;
    match cmd {
        ImportCmd::Mbox {
            file,
            folder,
            format,
            ..
        } => mbox_import(&mut sink, &file, &folder, format).await?,
        ImportCmd::Maildir { dir, .. } => maildir::import(&mut sink, &dir).await?,
        ImportCmd::Imap { from, insecure, .. } => imap::import(&mut sink, &from, insecure).await?,
    }
    sink.finish().await?;
    Ok(ExitCode::SUCCESS)
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How much of an mbox file's start identifies it on resuming.
const PREFIX: u64 = 64 << 10;

/// An mbox file into one folder, from where a previous run stopped.
async fn mbox_import(
    sink: &mut Sink,
    file: &Path,
    folder: &str,
    format: mbox::Format,
) -> anyhow::Result<()> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = f.metadata()?.len();
    let cursor = sink.cursor().clone();
    let offset = cursor.get("offset").and_then(|v| v.as_u64()).unwrap_or(0);
    // The file must still be the one a previous run read: its first bytes
    // up to where it stopped (at most 64 KiB) hash the same.
    let mut head = Vec::new();
    (&mut f).take(PREFIX).read_to_end(&mut head)?;
    let whole_head = hex(&digest(&head));
    let prefix_hash = |end: u64| match end.min(head.len() as u64) as usize {
        n if n == head.len() => whole_head.clone(),
        n => hex(&digest(&head[..n])),
    };
    if offset > size {
        bail!(
            "{} is shorter than when imported (remove {} to start again)",
            file.display(),
            sink.state_path.display()
        );
    }
    if let Some(h) = cursor.get("prefix").and_then(|v| v.as_str())
        && h != prefix_hash(offset)
    {
        bail!(
            "{} changed since the interrupted import (remove {} to start again)",
            file.display(),
            sink.state_path.display()
        );
    }
    f.seek(std::io::SeekFrom::Start(offset))?;
    sink.bar_bytes(size, offset);
    let input = std::io::BufReader::with_capacity(256 << 10, f);
    // The reader is blocking I/O: it runs on a blocking thread and hands
    // messages over a bounded channel (memory: a few messages).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<mbox::Message>>(64);
    let reader = tokio::task::spawn_blocking(move || {
        let mut r = match mbox::Reader::new(input, offset, format) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            match r.next_message() {
                Ok(Some(m)) => {
                    if tx.blocking_send(Ok(m)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    while let Some(m) = rx.recv().await {
        let m = m.with_context(|| format!("reading {}", file.display()))?;
        let cursor = serde_json::json!({ "offset": m.end, "prefix": prefix_hash(m.end) });
        let date = m.date;
        sink.push(
            folder,
            Incoming {
                raw: m.raw,
                flags: m.flags,
                keywords: m.keywords,
                internal_date: date,
            },
            cursor,
        )
        .await?;
        sink.progress(m.end);
    }
    reader.await?;
    Ok(())
}

/// Message bytes with every bare LF made CRLF (RFC 5322 §2.1): Maildir
/// and mbox files keep LF line ends; IMAP serves stored bytes as they are.
pub fn crlf(raw: Vec<u8>) -> Vec<u8> {
    let bare = raw
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + bare);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// A message from a source.
#[derive(Debug)]
pub struct Incoming {
    /// Its RFC 5322 bytes.
    pub raw: Vec<u8>,
    /// Its flags.
    pub flags: Flags,
    /// Its keywords (those that are not IMAP atoms are dropped).
    pub keywords: Vec<String>,
    /// Its internal date (else its Date field, else now).
    pub internal_date: Option<i64>,
}

/// What the state file holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    /// Which import this is (kind, source, target).
    source: String,
    /// The cursor of the last committed batch.
    done: serde_json::Value,
    /// Messages imported so far, over every run.
    imported: u64,
    /// The batch being committed, if any (see the module's comment).
    pending: Option<PendingBatch>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PendingBatch {
    /// The cursor after it.
    after: serde_json::Value,
    /// Its folder's path.
    folder: String,
    /// The folder's UIDNEXT before it.
    uid_next: u32,
    /// How many messages.
    count: usize,
    /// Its first message's size and SHA-256.
    first_size: u64,
    first_sha256: String,
}

/// Batches messages by folder and commits them, recording progress.
pub struct Sink {
    store: Arc<dyn Store>,
    user: User,
    state_path: PathBuf,
    state: State,
    folders: HashMap<String, Folder>,
    batch: Vec<Incoming>,
    batch_folder: Option<String>,
    batch_bytes: usize,
    batch_cursor: serde_json::Value,
    batch_limit: usize,
    inflight: Option<Inflight>,
    stop_after: Option<u64>,
    quota: u64,
    used: u64,
    imported_now: u64,
    dropped_keywords: u64,
    bar: indicatif::ProgressBar,
    started: std::time::Instant,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("user", &self.user.address)
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

struct Inflight {
    task: tokio::task::JoinHandle<anyhow::Result<usize>>,
    pending: PendingBatch,
}

impl Sink {
    /// Opens the state file (a new one if none), settling a batch a
    /// previous run left pending.
    async fn open(
        store: Arc<dyn Store>,
        user: User,
        state_path: PathBuf,
        source: &str,
        config: &Config,
        options: &ImportOptions,
    ) -> anyhow::Result<Sink> {
        let mut state = match std::fs::read(&state_path) {
            Ok(bytes) => {
                let s: State = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", state_path.display()))?;
                if s.source != source {
                    bail!(
                        "{} belongs to another import ({}); give another --state",
                        state_path.display(),
                        s.source
                    );
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                source: source.to_string(),
                done: serde_json::json!({}),
                ..State::default()
            },
            Err(e) => return Err(e).with_context(|| format!("reading {}", state_path.display())),
        };
        let resumed = state.imported > 0 || state.pending.is_some();
        if let Some(p) = state.pending.take() {
            if batch_committed(&store, &user, &p).await? {
                state.done = p.after;
                state.imported += p.count as u64;
            }
            write_state(&state_path, &state)?;
        }
        if resumed && !options.quiet {
            eprintln!(
                "resuming: {} messages imported before ({})",
                state.imported,
                state_path.display()
            );
        }
        let used = store.usage(user.id).await?;
        let bar = if options.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        Ok(Sink {
            store,
            user,
            state_path,
            state,
            folders: HashMap::new(),
            batch: Vec::new(),
            batch_folder: None,
            batch_bytes: 0,
            batch_cursor: serde_json::Value::Null,
            batch_limit: options.batch.unwrap_or(BATCH_MESSAGES).max(1),
            inflight: None,
            stop_after: options.stop_after,
            quota: config.imap.quota,
            used,
            imported_now: 0,
            dropped_keywords: 0,
            bar,
            started: std::time::Instant::now(),
        })
    }

    /// How far the previous runs got (`{}` at first).
    pub fn cursor(&self) -> &serde_json::Value {
        &self.state.done
    }

    /// Shows progress in bytes of `total`, `done` already.
    pub fn bar_bytes(&self, total: u64, done: u64) {
        self.bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    /// Shows progress in messages of `total`.
    pub fn bar_messages(&self, total: u64) {
        self.bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{bar:40}] {pos}/{len} messages ({per_sec}, {eta} left) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_length(total);
    }

    /// Moves the bar to `pos`.
    pub fn progress(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// Moves the bar on by `n`.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Writes a line above the bar.
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Adds a message for `folder` ("INBOX" or a "/"-separated path);
    /// `cursor` is the source's progress once it is stored.
    pub async fn push(
        &mut self,
        folder: &str,
        mut m: Incoming,
        cursor: serde_json::Value,
    ) -> anyhow::Result<()> {
        if self.batch_folder.as_deref() != Some(folder) {
            self.flush().await?;
            self.batch_folder = Some(folder.to_string());
        }
        let mut kept: Vec<String> = Vec::with_capacity(m.keywords.len());
        for k in m.keywords.drain(..) {
            if !valid_keyword(&k) {
                self.dropped_keywords += 1;
            } else if !kept.iter().any(|have| have.eq_ignore_ascii_case(&k)) {
                kept.push(k);
            }
        }
        m.keywords = kept;
        if self.quota > 0 && self.used + m.raw.len() as u64 > self.quota {
            bail!(
                "{} would go over the quota ([imap] quota = {} bytes, {} used)",
                self.user.address,
                self.quota,
                self.used
            );
        }
        self.used += m.raw.len() as u64;
        self.batch_bytes += m.raw.len();
        self.batch.push(m);
        self.batch_cursor = cursor;
        if self.batch.len() >= self.batch_limit || self.batch_bytes >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Records that the source got further without a message to store (a
    /// mailbox found empty, or skipped).
    pub async fn advance_cursor(&mut self, cursor: serde_json::Value) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            self.settle().await?;
            self.state.done = cursor;
            write_state(&self.state_path, &self.state)
        } else {
            self.batch_cursor = cursor;
            Ok(())
        }
    }

    /// The folder a path names, made if missing.
    async fn folder(&mut self, path: &str) -> anyhow::Result<Folder> {
        let f = match self.store.folder(self.user.id, path).await? {
            Some(f) => f,
            None => self.store.create_folder(self.user.id, path).await?,
        };
        if matches!(f.role, Some(FolderRole::Calendar | FolderRole::Tasks)) {
            bail!(
                "{path} holds appointments or tasks: mail cannot go there (postgate calendar import reads .ics files)"
            );
        }
        self.folders.insert(path.to_string(), f.clone());
        Ok(f)
    }

    /// Waits for the batch being committed, and records it.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let Some(Inflight { task, pending }) = self.inflight.take() else {
            return Ok(());
        };
        let n = task.await??;
        self.imported_now += n as u64;
        if let Some(limit) = self.stop_after
            && self.imported_now >= limit
        {
            // Tests: an interruption in the worst place, after the commit
            // and before the state file says so.
            self.bar.finish_and_clear();
            eprintln!(
                "stopped after {} messages (--stop-after)",
                self.imported_now
            );
            std::process::exit(STOPPED);
        }
        self.state.done = pending.after;
        self.state.imported += n as u64;
        self.state.pending = None;
        write_state(&self.state_path, &self.state)
    }

    /// Commits the batch (the one before it first).
    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let path = self.batch_folder.clone().unwrap_or_else(|| "INBOX".into());
        let (count, first_size, first_sha256) = (
            batch.len(),
            batch[0].raw.len() as u64,
            hex(&digest(&batch[0].raw)),
        );
        // Parsing starts at once, while the batch before commits.
        let parsed = tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now().timestamp();
            batch
                .into_iter()
                .map(|m| {
                    let content = postgate_mime::parse_message(&m.raw).content;
                    let internal_date = m.internal_date.or(content.date).unwrap_or(now);
                    NewMessage {
                        raw: m.raw,
                        content,
                        flags: m.flags,
                        keywords: m.keywords,
                        internal_date,
                        internal_zone: 0,
                    }
                })
                .collect::<Vec<_>>()
        });
        self.settle().await?;
        let folder = self.folder(&path).await?;
        let pending = PendingBatch {
            after: self.batch_cursor.clone(),
            folder: path,
            uid_next: folder.uid_next,
            count,
            first_size,
            first_sha256,
        };
        self.state.pending = Some(pending.clone());
        write_state(&self.state_path, &self.state)?;
        let store = self.store.clone();
        let task = tokio::spawn(async move {
            let messages = parsed.await?;
            let n = messages.len();
            store.append_batch(folder.id, messages).await?;
            Ok(n)
        });
        self.inflight = Some(Inflight { task, pending });
        Ok(())
    }

    /// Commits what is left and prints the summary.
    async fn finish(mut self) -> anyhow::Result<()> {
        self.flush().await?;
        self.settle().await?;
        self.bar.finish_and_clear();
        let secs = self.started.elapsed().as_secs_f64();
        let mut folders: Vec<&String> = self.folders.keys().collect();
        folders.sort();
        println!(
            "imported {} messages into {} ({} folders: {}) in {:.1} s ({:.0} messages/s); {} in all{}",
            self.imported_now,
            self.user.address,
            folders.len(),
            folders
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            secs,
            self.imported_now as f64 / secs.max(0.001),
            self.state.imported,
            if self.dropped_keywords > 0 {
                format!(
                    "; {} keywords that are not IMAP atoms dropped",
                    self.dropped_keywords
                )
            } else {
                String::new()
            }
        );
        Ok(())
    }
}

/// Whether a pending batch made it into the store: its first message is
/// in its folder at or after the UIDNEXT it was recorded with.
async fn batch_committed(
    store: &Arc<dyn Store>,
    user: &User,
    p: &PendingBatch,
) -> anyhow::Result<bool> {
    let Some(folder) = store.folder(user.id, &p.folder).await? else {
        return Ok(false);
    };
    if folder.uid_next <= p.uid_next {
        return Ok(false);
    }
    // Other mail may have arrived meanwhile, so look a little beyond.
    let upto = folder
        .uid_next
        .min(p.uid_next.saturating_add(p.count as u32 + 10_000));
    let metas = store
        .messages_meta(folder.id, (p.uid_next..upto).collect())
        .await?;
    for m in metas.iter().filter(|m| m.size == p.first_size) {
        if let Some(bytes) = store.message_bytes(m.message).await?
            && hex(&digest(&bytes)) == p.first_sha256
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes the state file atomically (a new file renamed over the old).
fn write_state(path: &Path, state: &State) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Whether a keyword can be stored as an IMAP flag-keyword (RFC 9051 §9:
/// an atom, not a system flag).
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 256
        && !k.starts_with('\\')
        && k.bytes().all(|b| {
            // RFC 9051 §9 ATOM-CHAR: any CHAR except atom-specials.
            b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keywords_are_atoms() {
        for k in ["$Label1", "Work", "NonJunk", "a.b-c_d"] {
            assert!(super::valid_keyword(k), "{k}");
        }
        for k in [
            "",
            "two words",
            "\\Seen",
            "par(en",
            "quo\"te",
            "star*",
            "ümlaut",
        ] {
            assert!(!super::valid_keyword(k), "{k}");
        }
    }
}
