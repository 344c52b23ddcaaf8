//! `postgate store check`: whether the store is whole.
//!
//! What it checks, on either backend:
//! - every message has its bytes (its blob row), of the size recorded and
//!   with the SHA-256 it is addressed by (mail: of the bytes; appointments
//!   and tasks: of the bytes, a NUL and the stored content, see
//!   `content::seal`);
//! - every message is referred to by an item, a queue entry or a calendar
//!   object (one that is not is space nobody can reach);
//! - each folder's counters agree with its items: `uid_next` above every
//!   UID in it or expunged from it (RFC 9051 §2.3.1.1: UIDs are never
//!   reused), `highest_modseq` at least every item's and tombstone's modseq
//!   (RFC 7162 §3.1.1), the \Recent mark below `uid_next`;
//! - every queued message still has a recipient (one with none left should
//!   have left the queue).
//!
//! On the embedded store, SQLite's own `PRAGMA integrity_check` (b-trees,
//! indexes, page accounting) and `PRAGMA foreign_key_check` run first; on
//! PostgreSQL, foreign keys are enforced by the server and pages are its
//! business, so only the checks above run, through SQL.
//!
//! The check only reads. It may run while the server runs: it reads one
//! snapshot (a read transaction), and what is written meanwhile is not seen.
use crate::{Backend, Result, StoreError};

/// Problems listed at most; past it, only counted.
const MAX_LISTED: usize = 1000;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Messages (distinct byte strings) checked.
    pub messages: u64,
    /// Their bytes in all.
    pub bytes: u64,
    /// Items (message copies in folders).
    pub items: u64,
    /// Folders.
    pub folders: u64,
    /// Each problem found, one line each (at most [`MAX_LISTED`]).
    pub problems: Vec<String>,
    /// Problems found beyond those listed.
    pub unlisted: u64,
}

impl CheckReport {
    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.unlisted == 0
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        } else {
            self.unlisted += 1;
        }
    }
}

/// Checks the store `backend` names (see the module's documentation).
/// An `Err` is a check that could not run (no store there, the database
/// unreachable); what it finds wrong is in the report.
pub async fn check(backend: &Backend) -> Result<CheckReport> {
    match backend {
        Backend::Embedded { data_dir } => {
            let path = data_dir.join(crate::embedded::DB_FILE);
            if !path.exists() {
                return Err(StoreError::NotFound(format!("{}", path.display())));
            }
            tokio::task::spawn_blocking(move || embedded(&path))
                .await
                .map_err(|e| StoreError::Backend(format!("check task: {e}")))?
        }
        Backend::Postgres(options) => postgres(options).await,
    }
}

/// Whether `data` is what `hash` addresses: mail by its bytes, calendar
/// objects by their bytes and content (see `content::seal`).
fn hash_matches(hash: &[u8], data: &[u8], content: &str) -> bool {
    if crate::content::digest(data).as_slice() == hash {
        return true;
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(data);
    ctx.update(b"\0");
    ctx.update(content.as_bytes());
    ctx.finish().as_ref() == hash
}

/// The checks of folder counters, queue entries and references that both
/// backends run as they are: (SQL giving one text column per problem).
/// Column types differ (INTEGER/BIGINT), the SQL does not.
const SQL_CHECKS: &[&str] = &[
    // RFC 9051 §2.3.1.1: the next UID is above every UID assigned.
    "SELECT 'folder ' || f.id || ': uid_next ' || f.uid_next || ' but it holds UID ' || i.uid \
       FROM folder f JOIN (SELECT folder_id, max(uid) AS uid FROM item GROUP BY folder_id) i \
       ON i.folder_id = f.id WHERE i.uid >= f.uid_next",
    "SELECT 'folder ' || f.id || ': uid_next ' || f.uid_next || ' but UID ' || e.uid || ' was expunged' \
       FROM folder f JOIN (SELECT folder_id, max(uid) AS uid FROM expunged GROUP BY folder_id) e \
       ON e.folder_id = f.id WHERE e.uid >= f.uid_next",
    // RFC 7162 §3.1.1: HIGHESTMODSEQ is at least every message's MODSEQ.
    "SELECT 'folder ' || f.id || ': highest_modseq ' || f.highest_modseq || ' below an item''s ' || i.m \
       FROM folder f JOIN (SELECT folder_id, max(modseq) AS m FROM item GROUP BY folder_id) i \
       ON i.folder_id = f.id WHERE i.m > f.highest_modseq",
    "SELECT 'folder ' || f.id || ': highest_modseq ' || f.highest_modseq || ' below an expunge''s ' || e.m \
       FROM folder f JOIN (SELECT folder_id, max(modseq) AS m FROM expunged GROUP BY folder_id) e \
       ON e.folder_id = f.id WHERE e.m > f.highest_modseq",
    "SELECT 'folder ' || id || ': recent_uid ' || recent_uid || ' not below uid_next ' || uid_next \
       FROM folder WHERE recent_uid >= uid_next",
    "SELECT 'message ' || m.id || ': referred to by nothing (unreachable)' FROM message m \
       WHERE NOT EXISTS (SELECT 1 FROM item WHERE item.message_id = m.id) \
       AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message_id = m.id) \
       AND NOT EXISTS (SELECT 1 FROM cal_object WHERE cal_object.message_id = m.id)",
    "SELECT 'queue entry ' || q.id || ': no recipient left' FROM queue q \
       WHERE NOT EXISTS (SELECT 1 FROM queue_rcpt r WHERE r.queue_id = q.id)",
];

/// Counts for the report: (messages' count and bytes, items, folders).
const SQL_COUNTS: &str = "SELECT (SELECT count(*) FROM message), \
     (SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM message), \
     (SELECT count(*) FROM item), (SELECT count(*) FROM folder)";

fn embedded(path: &std::path::Path) -> Result<CheckReport> {
    use rusqlite::OpenFlags;
    let sqlite = |e: rusqlite::Error| StoreError::Backend(format!("{}: {e}", path.display()));
    // Read-write so that SQLite may recover a WAL left by a crash (a
    // read-only connection cannot); nothing is written (query_only).
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = 1; BEGIN")
        .map_err(sqlite)?;
    let mut report = CheckReport::default();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    let expected = crate::embedded::schema_version() as i64;
    if version != expected {
        // The checks below name this version's tables and columns.
        report.problem(format!(
            "schema version {version}, this program's is {expected} (`postgate serve` migrates it)"
        ));
        return Ok(report);
    }
    // SQLite's own: b-trees, indexes, free pages.
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(1000)")
        .map_err(sqlite)?;
    for line in stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite)?
    {
        let line = line.map_err(sqlite)?;
        if line != "ok" {
            report.problem(format!("integrity_check: {line}"));
        }
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").map_err(sqlite)?;
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sqlite)?
    {
        let (table, rowid, parent) = row.map_err(sqlite)?;
        report.problem(format!(
            "{table} row {}: refers to a {parent} row that does not exist",
            rowid.map_or_else(|| "?".to_string(), |r| r.to_string())
        ));
    }
    // Every message's bytes, one at a time.
    let mut stmt = conn
        .prepare(
            "SELECT m.id, m.hash, m.size, m.content, b.data FROM message m \
             LEFT JOIN blob b ON b.id = m.id ORDER BY m.id",
        )
        .map_err(sqlite)?;
    let mut rows = stmt.query([]).map_err(sqlite)?;
    while let Some(r) = rows.next().map_err(sqlite)? {
        let id: i64 = r.get(0).map_err(sqlite)?;
        let hash: Vec<u8> = r.get(1).map_err(sqlite)?;
        let size: i64 = r.get(2).map_err(sqlite)?;
        let content: String = r.get(3).map_err(sqlite)?;
        let data = r.get_ref(4).map_err(sqlite)?.as_blob_or_null().ok();
        blob_problems(&mut report, id, &hash, size, &content, data.flatten());
    }
    drop(rows);
    drop(stmt);
    for sql in SQL_CHECKS {
        let mut stmt = conn.prepare(sql).map_err(sqlite)?;
        for line in stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sqlite)?
        {
            report.problem(line.map_err(sqlite)?);
        }
    }
    let (messages, bytes, items, folders): (i64, i64, i64, i64) = conn
        .query_row(SQL_COUNTS, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(sqlite)?;
    report.messages = messages as u64;
    report.bytes = bytes as u64;
    report.items = items as u64;
    report.folders = folders as u64;
    conn.execute_batch("COMMIT").map_err(sqlite)?;
    Ok(report)
}

/// One message's bytes against what its row says of them.
fn blob_problems(
    report: &mut CheckReport,
    id: i64,
    hash: &[u8],
    size: i64,
    content: &str,
    data: Option<&[u8]>,
) {
    match data {
        None => report.problem(format!("message {id}: its bytes (blob) are missing")),
        Some(d) if d.len() as i64 != size => report.problem(format!(
            "message {id}: {} bytes stored, {size} recorded",
            d.len()
        )),
        Some(d) if !hash_matches(hash, d, content) => report.problem(format!(
            "message {id}: its bytes do not match its SHA-256 address"
        )),
        Some(_) => {}
    }
}

async fn postgres(options: &crate::postgres::PgOptions) -> Result<CheckReport> {
    use crate::postgres::pg;
    let store = crate::postgres::PgStore::open(options).await?;
    let mut client = store.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let mut report = CheckReport::default();
    // Sizes and hashes computed by the server (sha256(), PostgreSQL 11),
    // so that only the messages found wrong cross the wire.
    let rows = tx
        .query(
            "SELECT m.id, b.id IS NULL, coalesce(length(b.data), 0), m.size, \
               coalesce(sha256(b.data) = m.hash \
                 OR sha256(b.data || '\\x00'::bytea || convert_to(m.content, 'UTF8')) = m.hash, \
                 false) \
             FROM message m LEFT JOIN blob b ON b.id = m.id \
             WHERE b.id IS NULL OR length(b.data) <> m.size \
               OR (sha256(b.data) <> m.hash \
                 AND sha256(b.data || '\\x00'::bytea || convert_to(m.content, 'UTF8')) <> m.hash) \
             ORDER BY m.id",
            &[],
        )
        .await
        .map_err(pg)?;
    for r in rows {
        let (id, missing, len, size, hash_ok): (i64, bool, i32, i64, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if missing {
            report.problem(format!("message {id}: its bytes (blob) are missing"));
        } else if i64::from(len) != size {
            report.problem(format!("message {id}: {len} bytes stored, {size} recorded"));
        } else if !hash_ok {
            report.problem(format!(
                "message {id}: its bytes do not match its SHA-256 address"
            ));
        }
    }
    for sql in SQL_CHECKS {
        for r in tx.query(*sql, &[]).await.map_err(pg)? {
            report.problem(r.get::<_, String>(0));
        }
    }
    let r = tx.query_one(SQL_COUNTS, &[]).await.map_err(pg)?;
    let (messages, bytes, items, folders): (i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    report.messages = messages as u64;
    report.bytes = bytes as u64;
    report.items = items as u64;
    report.folders = folders as u64;
    tx.commit().await.map_err(pg)?;
    Ok(report)
}
