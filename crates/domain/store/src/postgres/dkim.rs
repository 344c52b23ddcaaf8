//! [`DkimKeys`] for the PostgreSQL store: the `dkim_key` table.
use super::{PgStore, pg};
use crate::{DkimAlgorithm, DkimKey, DkimKeys, Result, StoreError};
use async_trait::async_trait;
use postgate_types::Secret;

#[async_trait]
impl DkimKeys for PgStore {
    async fn add_dkim_key(&self, key: DkimKey) -> Result<DkimKey> {
        let mut key = crate::rules::dkim_key(key)?;
        key.created = chrono::Utc::now().timestamp();
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO dkim_key (domain, selector, algorithm, private_key, created) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain, selector) DO NOTHING",
                &[
                    &key.domain,
                    &key.selector,
                    &key.algorithm.as_str(),
                    key.private_key.expose(),
                    &key.created,
                ],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::Exists(format!(
                "DKIM key {}._domainkey.{}",
                key.selector, key.domain
            )));
        }
        Ok(key)
    }

    async fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        let domain = crate::rules::filter_domain(domain);
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT domain, selector, algorithm, private_key, created FROM dkim_key \
                 WHERE $1::TEXT IS NULL OR domain = $1 \
                 ORDER BY domain COLLATE \"C\", selector COLLATE \"C\"",
                &[&domain],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let (domain, selector, algorithm): (String, String, String) =
                    (r.get(0), r.get(1), r.get(2));
                Ok(DkimKey {
                    algorithm: DkimAlgorithm::parse(&algorithm).ok_or_else(|| {
                        StoreError::Backend(format!(
                            "DKIM key {selector}._domainkey.{domain}: unknown algorithm {algorithm:?}"
                        ))
                    })?,
                    domain,
                    selector,
                    private_key: Secret::new(r.get(3)),
                    created: r.get(4),
                })
            })
            .collect()
    }

    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> Result<bool> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        let selector = selector.trim().trim_end_matches('.').to_ascii_lowercase();
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM dkim_key WHERE domain = $1 AND selector = $2",
                &[&domain, &selector],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }
}
