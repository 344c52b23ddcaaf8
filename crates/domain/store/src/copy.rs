//! `postgate store copy`: moving a post office from the embedded store into
//! an empty PostgreSQL database, row for row, so that ids, UIDVALIDITY,
//! UIDs and modseqs are what they were and IMAP clients do not resync.
//!
//! Tables go in the order their foreign keys need. Tables with an `id` go
//! in batches by id, each batch one `COPY … FROM STDIN (FORMAT binary)` in
//! its own transaction: an interrupted copy resumes after the highest id
//! already in PostgreSQL, and memory holds one batch. The small tables
//! without an id are copied whole, in one transaction each, and marked done.
//! The source is read as it stands: stop the server (or at least its
//! services) before copying, or changes made meanwhile to rows already
//! copied are not carried over.
use crate::postgres::{PgOptions, PgStore};
use crate::{Result, StoreError};
use rusqlite::types::Value;
use std::path::Path;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// Rows per batch of an id table (blobs: fewer, they are large).
const BATCH: i64 = 5_000;
const BLOB_BATCH: i64 = 200;

/// The tables, in foreign-key order: (SQLite name, PostgreSQL name, has an id).
const TABLES: &[(&str, &str, bool)] = &[
    ("domain", "domain", true),
    ("post_office", "post_office", true),
    ("user", "users", true),
    ("alias", "alias", true),
    ("grp", "grp", true),
    ("grp_member", "grp_member", false),
    ("folder", "folder", true),
    ("subscription", "subscription", false),
    ("message", "message", true),
    ("blob", "blob", true),
    ("envelope", "envelope", true),
    ("item", "item", true),
    ("expunged", "expunged", false),
    ("queue", "queue", true),
    ("queue_rcpt", "queue_rcpt", true),
    ("cal_object", "cal_object", true),
    ("cos_class", "cos_class", false),
    ("cos_assign", "cos_assign", false),
    ("access_block", "access_block", false),
    ("console_admin", "console_admin", false),
    ("stat_minute", "stat_minute", false),
    ("dkim_key", "dkim_key", false),
    ("metadata", "metadata", false),
];

/// Where a copy stands, for a progress display.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The table being copied (PostgreSQL's name).
    pub table: &'static str,
    /// Rows of it in PostgreSQL so far.
    pub done: u64,
    /// Rows of it in the source.
    pub total: u64,
}

/// Copies the embedded store in `data_dir` into the PostgreSQL database
/// `target` names, which must be empty or hold an interrupted copy of the
/// same source. `progress` hears after every batch. Returns the rows copied
/// per table.
pub async fn embedded_to_postgres(
    data_dir: &Path,
    target: &PgOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Vec<(&'static str, u64)>> {
    let path = data_dir.join(crate::embedded::DB_FILE);
    if !path.exists() {
        return Err(StoreError::NotFound(format!("{}", path.display())));
    }
    // Migrates the source (a data directory from an older version) and the
    // target, and checks both can be opened.
    drop(crate::embedded::EmbeddedStore::open(data_dir)?);
    let pg = PgStore::open(target).await?;
    let mut client = pg.client().await?;
    let source =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite)?;
    let (started, users): (bool, i64) = {
        let r = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'store_copy'), \
                 (SELECT count(*) FROM users) + (SELECT count(*) FROM domain)",
                &[],
            )
            .await
            .map_err(crate::postgres::pg)?;
        (r.get(0), r.get(1))
    };
    if !started && users > 0 {
        return Err(StoreError::Invalid(
            "the target database is not empty (and holds no interrupted copy)".into(),
        ));
    }
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ('store_copy', 0) ON CONFLICT (key) DO NOTHING",
            &[],
        )
        .await
        .map_err(crate::postgres::pg)?;
    let source = std::sync::Arc::new(std::sync::Mutex::new(source));
    let mut report = Vec::new();
    for &(from, to, with_id) in TABLES {
        let columns = pg_columns(&client, to).await?;
        let src_columns = sqlite_columns(&source, from).await?;
        let columns: Vec<(String, Type)> = columns
            .into_iter()
            .filter(|(c, _)| src_columns.contains(c))
            .collect();
        let total = count(&source, from).await?;
        let copied = if with_id {
            copy_by_id(
                &source,
                &mut client,
                from,
                to,
                &columns,
                total,
                &mut progress,
            )
            .await?
        } else {
            copy_whole(
                &source,
                &mut client,
                from,
                to,
                &columns,
                total,
                &mut progress,
            )
            .await?
        };
        report.push((to, copied));
    }
    // Counters the source keeps (UIDVALIDITY, the directory generation).
    let meta: Vec<(String, i64)> = blocking(&source, |c| {
        c.prepare("SELECT key, value FROM meta")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .await?;
    let tx = client.transaction().await.map_err(crate::postgres::pg)?;
    for (k, v) in meta {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, excluded.value)",
            &[&k, &v],
        )
        .await
        .map_err(crate::postgres::pg)?;
    }
    // Identity columns continue after the copied ids.
    for &(_, to, with_id) in TABLES {
        if with_id && to != "blob" {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{to}', 'id'), \
                     GREATEST((SELECT max(id) FROM {to}), 1))"
                ),
                &[],
            )
            .await
            .map_err(crate::postgres::pg)?;
        }
    }
    tx.execute("DELETE FROM meta WHERE key LIKE 'store_copy%'", &[])
        .await
        .map_err(crate::postgres::pg)?;
    crate::postgres::bump_generation(&tx).await?;
    tx.commit().await.map_err(crate::postgres::pg)?;
    Ok(report)
}

type Source = std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>;

fn sqlite(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("reading the embedded store: {e}"))
}

/// Runs `f` on the source connection on a blocking thread.
async fn blocking<T: Send + 'static>(
    source: &Source,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let conn = source
            .lock()
            .map_err(|_| StoreError::Backend("source lock".into()))?;
        f(&conn).map_err(sqlite)
    })
    .await
    .map_err(|e| StoreError::Backend(format!("copy task: {e}")))?
}

async fn count(source: &Source, table: &'static str) -> Result<u64> {
    blocking(source, move |c| {
        c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get::<_, i64>(0)
        })
    })
    .await
    .map(|n| n as u64)
}

async fn sqlite_columns(source: &Source, table: &'static str) -> Result<Vec<String>> {
    blocking(source, move |c| {
        c.prepare(&format!("PRAGMA table_info(\"{table}\")"))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect()
    })
    .await
}

async fn pg_columns(client: &tokio_postgres::Client, table: &str) -> Result<Vec<(String, Type)>> {
    let s = client
        .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
        .await
        .map_err(crate::postgres::pg)?;
    Ok(s.columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect())
}

/// One SQLite value as the PostgreSQL column's type wants it.
fn convert(v: Value, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>> {
    Ok(match (v, ty) {
        (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Value::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Integer(i), t) if *t == Type::BOOL => Box::new(i != 0),
        (Value::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        (Value::Integer(i), _) => Box::new(i.to_string()),
        (Value::Real(f), _) => Box::new(f.to_string()),
        (Value::Text(s), t) if *t == Type::BYTEA => Box::new(s.into_bytes()),
        (Value::Text(s), _) => Box::new(s),
        (Value::Blob(b), t) if *t == Type::TEXT => {
            Box::new(String::from_utf8_lossy(&b).into_owned())
        }
        (Value::Blob(b), _) => Box::new(b),
    })
}

/// Reads rows of `columns` from the source.
async fn read_rows(
    source: &Source,
    sql: String,
    after: Option<i64>,
    width: usize,
) -> Result<Vec<Vec<Value>>> {
    blocking(source, move |c| {
        let mut s = c.prepare(&sql)?;
        let map = |r: &rusqlite::Row<'_>| (0..width).map(|i| r.get::<_, Value>(i)).collect();
        match after {
            Some(a) => s.query_map([a], map)?.collect(),
            None => s.query_map([], map)?.collect(),
        }
    })
    .await
}

/// Writes rows with one binary COPY in the transaction.
async fn copy_in(
    tx: &tokio_postgres::Transaction<'_>,
    to: &str,
    columns: &[(String, Type)],
    rows: Vec<Vec<Value>>,
) -> Result<u64> {
    let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let types: Vec<Type> = columns.iter().map(|c| c.1.clone()).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {to} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .await
        .map_err(crate::postgres::pg)?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    let n = rows.len() as u64;
    for row in rows {
        let values: Vec<Box<dyn ToSql + Sync + Send>> = row
            .into_iter()
            .zip(&types)
            .map(|(v, t)| convert(v, t))
            .collect::<Result<_>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        writer
            .as_mut()
            .write(&refs)
            .await
            .map_err(crate::postgres::pg)?;
    }
    writer.finish().await.map_err(crate::postgres::pg)?;
    Ok(n)
}

async fn copy_by_id(
    source: &Source,
    client: &mut deadpool_postgres::Object,
    from: &'static str,
    to: &'static str,
    columns: &[(String, Type)],
    total: u64,
    progress: &mut impl FnMut(&Progress),
) -> Result<u64> {
    let batch = if to == "blob" { BLOB_BATCH } else { BATCH };
    let list: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.0)).collect();
    let sql = format!(
        "SELECT {} FROM \"{from}\" WHERE id > ?1 ORDER BY id LIMIT {batch}",
        list.join(", ")
    );
    let mut copied = 0;
    loop {
        let (after, done): (i64, i64) = {
            let r = client
                .query_one(
                    &format!("SELECT COALESCE(max(id), 0), count(*) FROM {to}"),
                    &[],
                )
                .await
                .map_err(crate::postgres::pg)?;
            (r.get(0), r.get(1))
        };
        progress(&Progress {
            table: to,
            done: done as u64,
            total,
        });
        let rows = read_rows(source, sql.clone(), Some(after), columns.len()).await?;
        if rows.is_empty() {
            return Ok(copied);
        }
        let tx = client.transaction().await.map_err(crate::postgres::pg)?;
        copied += copy_in(&tx, to, columns, rows).await?;
        tx.commit().await.map_err(crate::postgres::pg)?;
    }
}

async fn copy_whole(
    source: &Source,
    client: &mut deadpool_postgres::Object,
    from: &'static str,
    to: &'static str,
    columns: &[(String, Type)],
    total: u64,
    progress: &mut impl FnMut(&Progress),
) -> Result<u64> {
    let marker = format!("store_copy:{to}");
    let done = client
        .query_opt("SELECT 1 FROM meta WHERE key = $1", &[&marker])
        .await
        .map_err(crate::postgres::pg)?
        .is_some();
    if !done {
        let list: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.0)).collect();
        // Ordered by every column: batches by offset need one order that
        // does not change between them.
        let sql = format!(
            "SELECT {} FROM \"{from}\" ORDER BY {} LIMIT {BATCH} OFFSET ?1",
            list.join(", "),
            list.join(", ")
        );
        // One transaction for the table, in batches of rows.
        let tx = client.transaction().await.map_err(crate::postgres::pg)?;
        tx.execute(&format!("DELETE FROM {to}"), &[])
            .await
            .map_err(crate::postgres::pg)?;
        let mut offset = 0;
        loop {
            let rows = read_rows(source, sql.clone(), Some(offset), columns.len()).await?;
            if rows.is_empty() {
                break;
            }
            offset += copy_in(&tx, to, columns, rows).await? as i64;
            progress(&Progress {
                table: to,
                done: offset as u64,
                total,
            });
        }
        tx.execute("INSERT INTO meta (key, value) VALUES ($1, 1)", &[&marker])
            .await
            .map_err(crate::postgres::pg)?;
        tx.commit().await.map_err(crate::postgres::pg)?;
    }
    progress(&Progress {
        table: to,
        done: total,
        total,
    });
    Ok(if done { 0 } else { total })
}
