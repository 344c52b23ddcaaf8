//! What SNMP can change and what the agent remembers: POSTGATE-MIB's two
//! thresholds, the statistics reset (baselines subtracted in the SNMP view:
//! the Prometheus counters underneath stay monotonic) and the time of the
//! last reset, each service's state, and the failed logins of the last
//! window.
//!
//! Thresholds set over SNMP and the last reset time are kept in
//! `<data_dir>/snmp-settings.toml` ([`STATE_FILE`]), written whole and
//! atomically (temporary file, fsync, rename, fsync of the directory) on
//! every SET that changes them, and read at start: a value there takes the
//! place of the config file's `[snmp] queue_depth_threshold` /
//! `deferred_age_threshold`. Baselines are not kept: the counters start at
//! zero with the process anyway.
use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The file, in the data directory, that keeps what SET changed.
pub const STATE_FILE: &str = "snmp-settings.toml";

/// postgateQueueDepthThreshold's range (POSTGATE-MIB).
pub const MAX_DEPTH_THRESHOLD: u32 = 100_000_000;
/// postgateDeferredAgeThreshold's range: 366 days, in seconds.
pub const MAX_AGE_THRESHOLD: u32 = 31_622_400;

/// What the state file holds: only what SNMP has set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persisted {
    /// postgateQueueDepthThreshold, as last set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth_threshold: Option<u32>,
    /// postgateDeferredAgeThreshold in seconds, as last set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_age_threshold: Option<u32>,
    /// When postgateResetStats was last written with reset(1) (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none", default, with = "rfc3339")]
    pub stats_reset: Option<DateTime<Utc>>,
}

/// An optional moment as an RFC 3339 string.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

/// Why the state file could not be used.
#[derive(Debug)]
pub struct StateError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for StateError {}

impl Persisted {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Persisted, StateError> {
        let err = |message: String| StateError {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Persisted::default()),
            Err(e) => return Err(err(e.to_string())),
        };
        let p: Persisted = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
        if p.queue_depth_threshold
            .is_some_and(|v| v > MAX_DEPTH_THRESHOLD)
            || p.deferred_age_threshold
                .is_some_and(|v| v > MAX_AGE_THRESHOLD)
        {
            return Err(err("a threshold out of POSTGATE-MIB's range".into()));
        }
        Ok(p)
    }

    /// Writes `path` whole and atomically ([`write_atomic`]).
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let body = toml::to_string(self).map_err(std::io::Error::other)?;
        let text = format!(
            "# Written by Postgate's SNMP agent when a SET changes POSTGATE-MIB's\n\
             # thresholds or resets its statistics. Values here take the place of\n\
             # [snmp] queue_depth_threshold and deferred_age_threshold in the config.\n{body}"
        );
        write_atomic(path, text.as_bytes())
    }
}

/// Writes `path` whole and atomically: a temporary file beside it,
/// fsynced, renamed over it, and the directory fsynced so the rename
/// survives a crash. The directory is made if need be (the data directory
/// exists unless nothing else has written there yet: the PostgreSQL store
/// with its own certificates).
pub(crate) fn write_atomic(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// One counter that postgateResetStats sets back to zero in the SNMP view.
pub struct Stat {
    raw: Box<dyn Fn() -> u64 + Send + Sync>,
    base: AtomicU64,
}

impl std::fmt::Debug for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stat")
            .field("base", &self.base.load(Ordering::Relaxed))
            .finish()
    }
}

impl Stat {
    /// The value since the last reset (the counter under it only grows).
    pub fn get(&self) -> u64 {
        (self.raw)().saturating_sub(self.base.load(Ordering::Relaxed))
    }
}

/// The agent's changeable state, shared by the view, SET and the
/// notification monitor.
#[derive(Debug)]
pub struct Control {
    depth_threshold: AtomicU32,
    age_threshold: AtomicU32,
    stats: Mutex<Vec<std::sync::Arc<Stat>>>,
    /// What the state file says; changed (and written) by SET only.
    persisted: Mutex<Persisted>,
    state_file: Option<PathBuf>,
    /// Per service row (mib::SERVICES): 0 while running, else sysUpTime
    /// (at least 1) when a listener stopped unasked.
    failed_at: Vec<AtomicU32>,
    /// Failed logins in the last window (the monitor sets it).
    auth_failures: AtomicU32,
}

/// The values one SET commits (validated beforehand).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// A new postgateQueueDepthThreshold.
    pub depth_threshold: Option<u32>,
    /// A new postgateDeferredAgeThreshold.
    pub age_threshold: Option<u32>,
    /// postgateResetStats = reset(1).
    pub reset: bool,
}

impl Control {
    /// The state: the config's thresholds, then what `state_file` (if any)
    /// says over them.
    pub fn new(
        depth_threshold: u32,
        age_threshold: u32,
        services: usize,
        state_file: Option<PathBuf>,
    ) -> Result<Control, StateError> {
        let persisted = match &state_file {
            Some(p) => Persisted::load(p)?,
            None => Persisted::default(),
        };
        Ok(Control {
            depth_threshold: AtomicU32::new(
                persisted.queue_depth_threshold.unwrap_or(depth_threshold),
            ),
            age_threshold: AtomicU32::new(
                persisted.deferred_age_threshold.unwrap_or(age_threshold),
            ),
            stats: Mutex::new(Vec::new()),
            persisted: Mutex::new(persisted),
            state_file,
            failed_at: (0..services).map(|_| AtomicU32::new(0)).collect(),
            auth_failures: AtomicU32::new(0),
        })
    }

    /// A counter that a statistics reset sets back to zero.
    pub fn stat(&self, raw: impl Fn() -> u64 + Send + Sync + 'static) -> std::sync::Arc<Stat> {
        let s = std::sync::Arc::new(Stat {
            raw: Box::new(raw),
            base: AtomicU64::new(0),
        });
        self.stats
            .lock()
            .expect("stats lock")
            .push(std::sync::Arc::clone(&s));
        s
    }

    /// postgateQueueDepthThreshold.
    pub fn depth_threshold(&self) -> u32 {
        self.depth_threshold.load(Ordering::Relaxed)
    }

    /// postgateDeferredAgeThreshold, in seconds.
    pub fn age_threshold(&self) -> u32 {
        self.age_threshold.load(Ordering::Relaxed)
    }

    /// postgateStatsResetTime's moment, if there was a reset.
    pub fn reset_time(&self) -> Option<DateTime<Utc>> {
        self.persisted.lock().expect("persisted lock").stats_reset
    }

    /// Whether service row `i` (0-based) has failed.
    pub fn is_failed(&self, i: usize) -> bool {
        self.failed_at(i) > 0
    }

    /// When (sysUpTime) service row `i` failed; 0: it has not.
    pub fn failed_at(&self, i: usize) -> u32 {
        self.failed_at
            .get(i)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// Marks service row `i` failed at sysUpTime `ticks`; false if it
    /// already was.
    pub fn set_failed(&self, i: usize, ticks: u32) -> bool {
        self.failed_at.get(i).is_some_and(|f| {
            f.compare_exchange(0, ticks.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// postgateAuthFailures.
    pub fn auth_failures(&self) -> u32 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn set_auth_failures(&self, n: u32) {
        self.auth_failures.store(n, Ordering::Relaxed);
    }

    /// Commits a validated SET (RFC 3416 §4.2.5, second phase): the state
    /// file first, so that if it cannot be written nothing changes
    /// (commitFailed); then memory, which cannot fail.
    pub fn commit(&self, c: Change) -> std::io::Result<()> {
        // Milliseconds: what the state file keeps.
        let now = Utc::now().trunc_subsecs(3);
        let mut persisted = self.persisted.lock().expect("persisted lock");
        let mut next = persisted.clone();
        if let Some(v) = c.depth_threshold {
            next.queue_depth_threshold = Some(v);
        }
        if let Some(v) = c.age_threshold {
            next.deferred_age_threshold = Some(v);
        }
        if c.reset {
            next.stats_reset = Some(now);
        }
        if next != *persisted
            && let Some(path) = &self.state_file
        {
            next.store(path)?;
        }
        *persisted = next;
        if let Some(v) = c.depth_threshold {
            self.depth_threshold.store(v, Ordering::Relaxed);
        }
        if let Some(v) = c.age_threshold {
            self.age_threshold.store(v, Ordering::Relaxed);
        }
        if c.reset {
            for s in self.stats.lock().expect("stats lock").iter() {
                s.base.store((s.raw)(), Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// A moment as SNMPv2-TC's DateAndTime (RFC 2579): 11 octets, in UTC
/// ('+', 0, 0); the 8 zero octets POSTGATE-MIB gives for "never".
pub fn date_and_time(t: Option<DateTime<Utc>>) -> Vec<u8> {
    let Some(t) = t else {
        return vec![0; 8];
    };
    let year = t.year().clamp(0, 65_535) as u16;
    vec![
        (year >> 8) as u8,
        year as u8,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        // A leap second is 60 (RFC 2579 allows 0..60).
        t.second().min(60) as u8,
        (t.nanosecond() / 100_000_000).min(9) as u8,
        b'+',
        0,
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trip_and_takes_the_place_of_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let c = Control::new(5, 60, 6, Some(path.clone())).unwrap();
        assert_eq!((c.depth_threshold(), c.age_threshold()), (5, 60));
        assert!(!path.exists(), "nothing written until a SET");
        c.commit(Change {
            depth_threshold: Some(7),
            ..Change::default()
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("queue_depth_threshold = 7"), "{text}");
        assert!(!text.contains("deferred_age_threshold ="), "{text}");
        let c = Control::new(5, 60, 6, Some(path.clone())).unwrap();
        assert_eq!((c.depth_threshold(), c.age_threshold()), (7, 60));
        assert!(c.reset_time().is_none());
        c.commit(Change {
            reset: true,
            ..Change::default()
        })
        .unwrap();
        let at = c.reset_time().unwrap();
        let c = Control::new(5, 60, 6, Some(path.clone())).unwrap();
        assert_eq!(c.reset_time(), Some(at));
        // A damaged file is an error, not silently the defaults.
        std::fs::write(&path, "queue_depth_threshold = \"x\"\n").unwrap();
        assert!(Control::new(5, 60, 6, Some(path.clone())).is_err());
        std::fs::write(&path, "queue_depth_threshold = 4000000000\n").unwrap();
        assert!(Control::new(5, 60, 6, Some(path)).is_err());
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let c = Control::new(5, 60, 6, Some(path)).unwrap();
        // The temporary file cannot be made: a directory is in the way.
        std::fs::create_dir(dir.path().join(format!(".{STATE_FILE}.tmp"))).unwrap();
        let n = std::sync::Arc::new(AtomicU64::new(10));
        let stat = {
            let n = n.clone();
            c.stat(move || n.load(Ordering::Relaxed))
        };
        assert!(
            c.commit(Change {
                depth_threshold: Some(9),
                reset: true,
                ..Change::default()
            })
            .is_err()
        );
        assert_eq!(c.depth_threshold(), 5);
        assert_eq!(stat.get(), 10);
        assert!(c.reset_time().is_none());
    }

    #[test]
    fn reset_subtracts_a_baseline() {
        let c = Control::new(0, 0, 6, None).unwrap();
        let n = std::sync::Arc::new(AtomicU64::new(10));
        let stat = {
            let n = n.clone();
            c.stat(move || n.load(Ordering::Relaxed))
        };
        assert_eq!(stat.get(), 10);
        c.commit(Change {
            reset: true,
            ..Change::default()
        })
        .unwrap();
        assert_eq!(stat.get(), 0);
        n.fetch_add(3, Ordering::Relaxed);
        assert_eq!(stat.get(), 3);
    }

    #[test]
    fn date_and_time_octets() {
        let t = DateTime::parse_from_rfc3339("1992-05-26T13:30:15.3Z")
            .unwrap()
            .with_timezone(&Utc);
        // RFC 2579's own example, in UTC.
        assert_eq!(
            date_and_time(Some(t)),
            vec![0x07, 0xc8, 5, 26, 13, 30, 15, 3, b'+', 0, 0]
        );
        assert_eq!(date_and_time(None), vec![0; 8]);
    }
}
