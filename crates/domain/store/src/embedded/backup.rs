//! Backups of the embedded store: a consistent copy of the database file
//! taken while the server runs, checked before anyone relies on it.
//!
//! Why `VACUUM INTO` and not SQLite's online backup API: the backup API
//! copies pages in steps and starts again from the beginning whenever
//! another connection writes meanwhile, so under steady inbound mail it may
//! never finish. `VACUUM INTO` reads the whole database inside one read
//! transaction: one snapshot, whatever commits meanwhile (readers never
//! wait for the writer, nor it for them, in WAL mode), written compact.
//!
//! Message bytes (the blobs) live in the database itself (the `blob`
//! table, one row per distinct message, keyed by SHA-256 in `message`), so
//! the snapshot holds them with the items that reference them: there is
//! nothing else to copy for the mail to be consistent.
//!
//! The check ([`verify`]): SQLite's `integrity_check` (every page, index
//! and constraint), `foreign_key_check` (no item without its message), and
//! every message's bytes read back and hashed against the hash they are
//! stored under, so that a copy is declared good only if every message in
//! it can be served byte for byte.
use super::{DB_FILE, backend, schema};
use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, types::ValueRef};
use std::path::Path;

/// What a checked copy of the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    /// The schema version (migrations applied).
    pub schema: i64,
    /// Users.
    pub users: u64,
    /// Folders.
    pub folders: u64,
    /// Items (messages in folders).
    pub items: u64,
    /// Distinct stored messages.
    pub messages: u64,
    /// Their bytes, in all.
    pub message_bytes: u64,
}

fn io(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{}: {e}", what.display()))
}

/// Writes a consistent copy of the store in `data_dir` to `dest` (a file
/// that must not exist yet), as one database file that needs no WAL beside
/// it, synced to disk; then checks it ([`verify`]). A server may be
/// running on `data_dir` meanwhile: its commits go on; the copy is the
/// store as of the moment the copy's read transaction began.
pub fn snapshot(data_dir: &Path, dest: &Path) -> Result<Inventory> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(StoreError::NotFound(format!(
            "the store {}",
            source.display()
        )));
    }
    if dest.exists() {
        return Err(StoreError::Exists(dest.display().to_string()));
    }
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let conn = Connection::open(&source).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    let target = partial
        .to_str()
        .ok_or_else(|| StoreError::Invalid(format!("{}: not UTF-8", partial.display())))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(backend)?;
    drop(conn);
    {
        // One self-contained file: rollback journal mode, not WAL.
        let copy = Connection::open(&partial).map_err(backend)?;
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(backend)?;
    }
    // VACUUM INTO does not sync what it wrote.
    sync_file(&partial)?;
    let inventory = verify(&partial)?;
    std::fs::rename(&partial, dest).map_err(|e| io(dest, e))?;
    sync_dir(dest)?;
    Ok(inventory)
}

/// Checks a copy made by [`snapshot`] (or any store database file): every
/// page and index sound, no dangling reference, every message's bytes
/// there and matching the hash they are kept under. Opens it read-only.
pub fn verify(db: &Path) -> Result<Inventory> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", db.display())))?;
    let schema: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if schema == 0 {
        return Err(StoreError::Invalid(format!(
            "{}: not a postgate store",
            db.display()
        )));
    }
    if schema > schema::VERSION {
        return Err(StoreError::Invalid(format!(
            "{}: made by a newer postgate (schema {schema}, this one knows {})",
            db.display(),
            schema::VERSION
        )));
    }
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    if problems != ["ok"] {
        return Err(StoreError::Backend(format!(
            "{}: integrity check failed: {}",
            db.display(),
            problems.join("; ")
        )));
    }
    let dangling: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(format!(
                    "{} row {} -> {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    r.get::<_, String>(2)?
                ))
            })?
            .take(10)
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    if !dangling.is_empty() {
        return Err(StoreError::Backend(format!(
            "{}: dangling references: {}",
            db.display(),
            dangling.join("; ")
        )));
    }
    let count = |sql: &str| -> Result<u64> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(backend)
    };
    let mut inventory = Inventory {
        schema,
        users: count("SELECT count(*) FROM user")?,
        folders: count("SELECT count(*) FROM folder")?,
        items: count("SELECT count(*) FROM item")?,
        ..Inventory::default()
    };
    // Every message's bytes, one row at a time (bounded memory).
    let mut stmt = conn
        .prepare(
            "SELECT m.id, m.hash, m.size, m.content, b.data FROM message m \
             LEFT JOIN blob b ON b.id = m.id ORDER BY m.id",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    while let Some(r) = rows.next().map_err(backend)? {
        let id: i64 = r.get(0).map_err(backend)?;
        let hash: Vec<u8> = r.get(1).map_err(backend)?;
        let size: i64 = r.get(2).map_err(backend)?;
        let content: String = r.get(3).map_err(backend)?;
        let data = match r.get_ref(4).map_err(backend)? {
            ValueRef::Blob(b) => b,
            _ => {
                return Err(StoreError::Backend(format!(
                    "{}: message {id} has no bytes",
                    db.display()
                )));
            }
        };
        if data.len() as i64 != size || !hash_matches(&hash, data, &content) {
            return Err(StoreError::Backend(format!(
                "{}: message {id}: its bytes do not match its size or hash",
                db.display()
            )));
        }
        inventory.messages += 1;
        inventory.message_bytes += data.len() as u64;
    }
    Ok(inventory)
}

/// Whether a message's bytes are those its hash names: mail is keyed by its
/// bytes, calendar objects by their bytes and content (see
/// `content::Key`).
fn hash_matches(hash: &[u8], data: &[u8], content: &str) -> bool {
    if hash == crate::content::digest(data) {
        return true;
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(data);
    ctx.update(b"\0");
    ctx.update(content.as_bytes());
    hash == ctx.finish().as_ref()
}

/// Puts a copy made by [`snapshot`] into `data_dir` as its store, after
/// checking it ([`verify`]). `data_dir` must hold no store yet.
pub fn restore(copy: &Path, data_dir: &Path) -> Result<Inventory> {
    let inventory = verify(copy)?;
    std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir, e))?;
    let dest = data_dir.join(DB_FILE);
    if dest.exists() {
        return Err(StoreError::Exists(dest.display().to_string()));
    }
    let partial = dest.with_extension("partial");
    std::fs::copy(copy, &partial).map_err(|e| io(&partial, e))?;
    sync_file(&partial)?;
    std::fs::rename(&partial, &dest).map_err(|e| io(&dest, e))?;
    sync_dir(&dest)?;
    Ok(inventory)
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(path, e))
}

/// Syncs the directory holding `path`, so that a rename in it is durable.
fn sync_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(dir, e)),
        None => Ok(()),
    }
}
