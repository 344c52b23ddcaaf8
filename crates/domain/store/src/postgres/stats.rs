//! [`Stats`] for the PostgreSQL store: the counters' history in
//! `stat_minute`, one row per (minute, counter, node).
use super::{PgStore, in_tx, pg};
use crate::rules::{stat_deltas, stats_bucket};
use crate::{Result, StatPoint, Stats};
use async_trait::async_trait;

#[async_trait]
impl Stats for PgStore {
    async fn record_stats(
        &self,
        minute: i64,
        node: &str,
        deltas: Vec<(String, u64)>,
    ) -> Result<()> {
        let minute = minute - minute.rem_euclid(60);
        let (names, values): (Vec<String>, Vec<i64>) = stat_deltas(deltas).into_iter().unzip();
        if names.is_empty() {
            return Ok(());
        }
        // One statement for them all; each name once (ON CONFLICT may not
        // touch a row twice in one statement), in name order.
        in_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO stat_minute (minute, name, node, value) \
                 SELECT $1::BIGINT, d.name, $2::TEXT, d.value FROM unnest($3::TEXT[], $4::BIGINT[]) AS d(name, value) \
                 ORDER BY d.name \
                 ON CONFLICT (minute, name, node) DO UPDATE SET value = stat_minute.value + excluded.value",
                &[&minute, &node, &names, &values],
            )
            .await
            .map_err(pg)
        })?;
        Ok(())
    }

    async fn stats_history(&self, since: i64, bucket: i64) -> Result<Vec<StatPoint>> {
        let bucket = stats_bucket(bucket)?;
        let since = since - since.rem_euclid(bucket);
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT minute - mod(mod(minute, $2) + $2, $2) AS at, name, sum(value)::BIGINT \
                 FROM stat_minute WHERE minute >= $1 GROUP BY at, name \
                 ORDER BY at, name COLLATE \"C\"",
                &[&since, &bucket],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| StatPoint {
                at: r.get(0),
                name: r.get(1),
                value: r.get::<_, i64>(2).max(0) as u64,
            })
            .collect())
    }

    async fn prune_stats(&self, before: i64) -> Result<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM stat_minute WHERE minute < $1", &[&before])
            .await
            .map_err(pg)
    }
}
