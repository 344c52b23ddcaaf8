//! [`DkimKeys`] for the embedded store: the `dkim_key` table.
use super::{EmbeddedStore, backend, now};
use crate::{DkimAlgorithm, DkimKey, DkimKeys, Result, StoreError};
use async_trait::async_trait;
use postgate_types::Secret;
use rusqlite::{ErrorCode, params};

#[async_trait]
impl DkimKeys for EmbeddedStore {
    async fn add_dkim_key(&self, key: DkimKey) -> Result<DkimKey> {
        let mut key = crate::rules::dkim_key(key)?;
        key.created = now();
        self.write(move |conn| {
            let added = conn
                .prepare_cached(
                    "INSERT INTO dkim_key (domain, selector, algorithm, private_key, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        key.domain,
                        key.selector,
                        key.algorithm.as_str(),
                        key.private_key.expose(),
                        key.created
                    ])
                });
            match added {
                Ok(_) => Ok(key),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    Err(StoreError::Exists(format!(
                        "DKIM key {}._domainkey.{}",
                        key.selector, key.domain
                    )))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        let domain = crate::rules::filter_domain(domain);
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT domain, selector, algorithm, private_key, created FROM dkim_key \
                     WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, selector",
                )
                .map_err(backend)?;
            let rows = s
                .query_map([domain], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(backend)?;
            rows.into_iter()
                .map(|(domain, selector, algorithm, key, created)| {
                    Ok(DkimKey {
                        algorithm: DkimAlgorithm::parse(&algorithm).ok_or_else(|| {
                            StoreError::Backend(format!(
                                "DKIM key {selector}._domainkey.{domain}: unknown algorithm {algorithm:?}"
                            ))
                        })?,
                        domain,
                        selector,
                        private_key: Secret::new(key),
                        created,
                    })
                })
                .collect()
        })
        .await
    }

    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> Result<bool> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        let selector = selector.trim().trim_end_matches('.').to_ascii_lowercase();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM dkim_key WHERE domain = ?1 AND selector = ?2")
                .and_then(|mut s| s.execute(params![domain, selector]))
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }
}
