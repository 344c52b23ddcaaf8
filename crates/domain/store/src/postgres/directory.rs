//! [`Directory`](crate::Directory) for the PostgreSQL store.
use super::{PgStore, pg};
use crate::Result;
use deadpool_postgres::GenericClient;

/// Bumps the directory generation (in the caller's transaction), so that
/// every node's resolution cache notices.
pub(crate) async fn bump_generation(c: &impl GenericClient) -> Result<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('directory_generation', 1) \
         ON CONFLICT (key) DO UPDATE SET value = meta.value + 1",
        &[],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// The current directory generation.
pub(crate) async fn generation(s: &PgStore) -> Result<u64> {
    let c = s.client().await?;
    let row = c
        .query_opt(
            "SELECT value FROM meta WHERE key = 'directory_generation'",
            &[],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
}

/// The next UIDVALIDITY: the current time in seconds, but always greater than
/// any given before, on any node, so a folder deleted and re-created never
/// repeats one (RFC 9051 §2.3.1.1). The meta row is locked until commit.
pub(crate) async fn next_uid_validity(c: &impl GenericClient) -> Result<u32> {
    let now = super::now() & 0xffff_ffff;
    let row = c
        .query_one(
            "INSERT INTO meta (key, value) VALUES ('uid_validity', $1) \
             ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value + 1, excluded.value) \
             RETURNING value",
            &[&now],
        )
        .await
        .map_err(pg)?;
    Ok(row.get::<_, i64>(0) as u32)
}
