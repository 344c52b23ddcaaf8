//! The shared counters, sampled every minute into the store, so that the
//! console's charts have history that survives a restart and sums over the
//! nodes sharing a database.
//!
//! What is stored is each series' increase during the minute (counters
//! start at zero with the process, so the first sample is the increase since
//! start).
use postgate_metrics::{DirectionLabel, LoginLabel, metrics};
use postgate_runtime::Shutdown;
use postgate_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The series sampled, in the order the statistics page lists them.
pub const SERIES: &[&str] = &[
    "messages_in",
    "messages_out",
    "bytes_in",
    "bytes_out",
    "recipients_in",
    "recipients_out",
    "bounces",
    "logins_ok",
    "logins_failed",
    "errors",
    "connections",
];

/// Samples kept.
const KEEP: Duration = Duration::from_secs(8 * 86_400);

/// The services whose logins, errors and connections are summed.
const SERVICES: &[&str] = &[
    "smtp",
    "submission",
    "imap",
    "pop3",
    "ldap",
    "api",
    "console",
    "snmp",
];

/// Every series' value now (since the process started).
pub fn current() -> HashMap<&'static str, u64> {
    let m = metrics();
    let dir = |d: &'static str| DirectionLabel { direction: d };
    let logins = |outcome: &'static str| {
        SERVICES
            .iter()
            .map(|s| {
                m.logins
                    .get_or_create(&LoginLabel {
                        service: s,
                        outcome,
                    })
                    .get()
            })
            .sum::<u64>()
    };
    let errors = SERVICES
        .iter()
        .flat_map(|s| {
            [
                postgate_metrics::ErrorKind::Syntax,
                postgate_metrics::ErrorKind::Refused,
                postgate_metrics::ErrorKind::Temporary,
            ]
            .map(|k| {
                m.errors
                    .get_or_create(&postgate_metrics::ErrorLabel {
                        service: s,
                        kind: k.as_str(),
                    })
                    .get()
            })
        })
        .sum::<u64>();
    let connections = SERVICES
        .iter()
        .map(|s| {
            m.connections
                .get_or_create(&postgate_metrics::ServiceLabel { service: s })
                .get()
        })
        .sum::<u64>();
    // One family lookup per statement: `get_or_create` holds the family's
    // lock until the end of the statement, and a second lookup of a label
    // not yet there would wait for that same lock forever.
    let mut out = HashMap::new();
    for (name, family, direction) in [
        ("messages_in", &m.messages, "in"),
        ("messages_out", &m.messages, "out"),
        ("bytes_in", &m.bytes, "in"),
        ("bytes_out", &m.bytes, "out"),
        ("recipients_in", &m.recipients, "in"),
        ("recipients_out", &m.recipients, "out"),
    ] {
        let v = family.get_or_create(&dir(direction)).get();
        out.insert(name, v);
    }
    out.insert("bounces", m.bounces.get());
    out.insert("logins_ok", logins("ok"));
    out.insert("logins_failed", logins("failed"));
    out.insert("errors", errors);
    out.insert("connections", connections);
    out
}

/// The sampler: what was last written, so the next sample is the increase.
#[derive(Debug, Clone, Default)]
pub struct Sampler {
    recorded: Arc<Mutex<HashMap<&'static str, u64>>>,
}

impl Sampler {
    /// A sampler that has recorded nothing yet.
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// The increase of each series since the last sample written: the
    /// minute in progress, which the charts show as their latest point.
    pub fn pending(&self) -> Vec<(String, u64)> {
        self.increase(&current())
    }

    /// Each series' increase from the last sample written to `now`.
    fn increase(&self, now: &HashMap<&'static str, u64>) -> Vec<(String, u64)> {
        let last = self.recorded.lock().map(|l| l.clone()).unwrap_or_default();
        SERIES
            .iter()
            .map(|s| {
                let v = now.get(s).copied().unwrap_or(0);
                (
                    s.to_string(),
                    v.saturating_sub(last.get(s).copied().unwrap_or(0)),
                )
            })
            .collect()
    }

    /// Writes the increase since the last sample under `minute`.
    pub async fn sample(&self, store: &Arc<dyn Store>, node: &str, minute: i64) {
        let now = current();
        let deltas: Vec<_> = self
            .increase(&now)
            .into_iter()
            .filter(|(_, d)| *d > 0)
            .collect();
        if !deltas.is_empty()
            && let Err(e) = store.record_stats(minute, node, deltas).await
        {
            // The increase stays pending and goes into the next sample.
            tracing::warn!(error = %e, "console: statistics sample not stored");
            return;
        }
        if let Ok(mut l) = self.recorded.lock() {
            *l = now;
        }
    }

    /// Samples at each minute's end until shutdown, pruning samples older
    /// than eight days once an hour.
    pub async fn run(self, store: Arc<dyn Store>, node: String, mut shutdown: Shutdown) {
        let mut pruned_at = 0i64;
        loop {
            let now = chrono::Utc::now().timestamp();
            let next = (now / 60 + 1) * 60;
            let wait = Duration::from_secs((next - now).max(1) as u64);
            tokio::select! {
                _ = shutdown.wait() => {
                    // What the last partial minute counted is kept too.
                    self.sample(&store, &node, now / 60 * 60).await;
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            // The minute that just ended.
            self.sample(&store, &node, next - 60).await;
            if next - pruned_at >= 3600 {
                pruned_at = next;
                let before = next - KEEP.as_secs() as i64;
                if let Err(e) = store.prune_stats(before).await {
                    tracing::warn!(error = %e, "console: old statistics not pruned");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_every_series_does_not_wait_on_itself() {
        // Labels are created by the first read: two of one family in one
        // statement once deadlocked here.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            postgate_metrics::metrics().message("in", 100, 2);
            let _ = tx.send(current());
        });
        let now = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading the counters hung");
        assert_eq!(now.len(), SERIES.len());
        assert!(now["messages_in"] >= 1 && now["bytes_in"] >= 100 && now["recipients_in"] >= 2);
    }

    #[test]
    fn pending_is_the_increase_since_the_last_sample() {
        let s = Sampler::new();
        let before: HashMap<String, u64> = s.pending().into_iter().collect();
        postgate_metrics::metrics().bounces.inc();
        let after: HashMap<String, u64> = s.pending().into_iter().collect();
        assert!(after["bounces"] > before["bounces"] || after["bounces"] >= 1);
        if let Ok(mut l) = s.recorded.lock() {
            *l = current();
        }
        assert_eq!(
            s.pending()
                .iter()
                .find(|(k, _)| k == "bounces")
                .map(|p| p.1),
            Some(0)
        );
    }
}
