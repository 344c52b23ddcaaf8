//! [`Stats`] for the embedded store: the counters' history in
//! `stat_minute`, one row per (minute, counter, node).
use super::{EmbeddedStore, backend};
use crate::rules::{stat_deltas, stats_bucket};
use crate::{Result, StatPoint, Stats};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl Stats for EmbeddedStore {
    async fn record_stats(
        &self,
        minute: i64,
        node: &str,
        deltas: Vec<(String, u64)>,
    ) -> Result<()> {
        let minute = minute - minute.rem_euclid(60);
        let node = node.to_string();
        let deltas = stat_deltas(deltas);
        if deltas.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let mut add = conn
                .prepare_cached(
                    "INSERT INTO stat_minute (minute, name, node, value) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (minute, name, node) DO UPDATE SET value = value + excluded.value",
                )
                .map_err(backend)?;
            for (name, value) in &deltas {
                add.execute(params![minute, name, node, value])
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn stats_history(&self, since: i64, bucket: i64) -> Result<Vec<StatPoint>> {
        let bucket = stats_bucket(bucket)?;
        let since = since - since.rem_euclid(bucket);
        self.read(move |conn| {
            // The bucket's start, rounding down for minutes before the
            // epoch too (SQLite's % keeps the dividend's sign).
            conn.prepare_cached(
                "SELECT minute - ((minute % ?2) + ?2) % ?2 AS at, name, sum(value) \
                 FROM stat_minute WHERE minute >= ?1 GROUP BY at, name ORDER BY at, name",
            )
            .and_then(|mut s| {
                s.query_map(params![since, bucket], |r| {
                    Ok(StatPoint {
                        at: r.get(0)?,
                        name: r.get(1)?,
                        value: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })?
                .collect()
            })
            .map_err(backend)
        })
        .await
    }

    async fn prune_stats(&self, before: i64) -> Result<u64> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM stat_minute WHERE minute < ?1")
                .and_then(|mut s| s.execute([before]))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }
}
