//! A cache of recipient resolutions, so that SMTP's RCPT does not cost a
//! database read per recipient (measured: a third of the CPU of an inbound
//! delivery).
//!
//! Only positive answers are kept: a user added a moment ago is found at once.
//! Every directory write bumps `directory_generation` in the database, in the
//! same transaction; the housekeeping thread reads that number a few times a
//! second, and a change, from this process or another (the CLI), empties the
//! cache. Writes in this process also empty it at once. A removed user may
//! thus be resolved for a fraction of a second more; delivery then finds no
//! folder and refuses with a temporary error rather than lose the message.
use crate::UserRef;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An upper bound on staleness even if the generation were never read.
const TTL: Duration = Duration::from_secs(60);
/// Entries kept before the cache starts over (a bound on memory).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct ResolveCache {
    latest_generation: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    entries: HashMap<String, (Instant, Vec<UserRef>)>,
}

impl ResolveCache {
    pub(crate) fn get(&self, key: &str) -> Option<Vec<UserRef>> {
        let latest = self.latest_generation.load(Ordering::Acquire);
        let mut inner = self.inner.lock().ok()?;
        if inner.generation != latest {
            inner.entries.clear();
            inner.generation = latest;
            return None;
        }
        match inner.entries.get(key) {
            Some((at, users)) if at.elapsed() < TTL => Some(users.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&self, key: String, users: Vec<UserRef>) {
        let latest = self.latest_generation.load(Ordering::Acquire);
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation == latest
        {
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
            inner.entries.insert(key, (Instant::now(), users));
        }
    }

    /// Forgets everything (after a directory write in this process).
    pub(crate) fn invalidate(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.clear();
        }
    }

    /// Records the directory generation last read from the database.
    pub(crate) fn observe(&self, generation: u64) {
        self.latest_generation.store(generation, Ordering::Release);
    }
}
