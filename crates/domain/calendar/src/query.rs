//! What is on when: occurrences in a span, and free/busy time.
//!
//! The store's time-range index says which objects meet a span (ids and
//! versions only); objects already read and made ready for expansion are
//! kept in memory ([`Cache`]) by id and version, so a calendar asked about
//! again and again (a week view, free/busy) is neither read from disk nor
//! parsed again.
use crate::{Result, Scheduler};
use postgate_ical::expand::{Occurrence, Series};
use postgate_ical::itip::component_of;
use postgate_store::CalendarEntry;
use postgate_types::calendar::{PartStat, Status};
use postgate_types::{ItemKind, UserId};
use std::collections::HashMap;
use std::sync::Arc;

/// Objects made ready for expansion, by id, with the version (item UID)
/// they were read at: a changed object has a new version and is read again.
#[derive(Debug, Default)]
pub struct Cache {
    map: HashMap<i64, Cached>,
    clock: u64,
}

#[derive(Debug)]
struct Cached {
    version: u32,
    entry: Arc<CalendarEntry>,
    series: Arc<Series>,
    used: u64,
}

/// At most this many objects are kept (a listing is a few KB): past it the
/// least recently used half goes.
const CACHE_MAX: usize = 10_000;

impl Cache {
    fn get(&mut self, id: i64, version: u32) -> Option<(Arc<CalendarEntry>, Arc<Series>)> {
        self.clock += 1;
        let c = self.map.get_mut(&id).filter(|c| c.version == version)?;
        c.used = self.clock;
        Some((c.entry.clone(), c.series.clone()))
    }

    fn put(&mut self, entry: Arc<CalendarEntry>, series: Arc<Series>) {
        if self.map.len() >= CACHE_MAX {
            let mut ages: Vec<u64> = self.map.values().map(|c| c.used).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.map.retain(|_, c| c.used > cut);
        }
        self.clock += 1;
        self.map.insert(
            entry.id,
            Cached {
                version: entry.item_uid,
                entry,
                series,
                used: self.clock,
            },
        );
    }
}

/// The occurrences of a user's appointments (or tasks) in a span.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The objects that have occurrences in the span (as listed: without
    /// their iCalendar text).
    pub entries: Vec<Arc<CalendarEntry>>,
    /// (index into `entries`, occurrence), in order of start.
    pub occurrences: Vec<(usize, Occurrence)>,
    /// The caps cut some occurrences off.
    pub truncated: bool,
}

/// A busy period (RFC 5545 §3.2.9 FBTYPE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds.
    pub end: i64,
    /// `BUSY` or `BUSY-TENTATIVE`.
    pub kind: String,
}

impl Scheduler {
    /// The occurrences in `[from, to)`: the store's time-range index finds
    /// the objects, each is expanded within the span (recurrences expanded,
    /// overrides applied, EXDATEs removed), at most the caps.
    pub async fn occurrences(
        &self,
        user: UserId,
        kind: ItemKind,
        from: i64,
        to: i64,
    ) -> Result<Listing> {
        let keys = self.store.calendar_range_keys(user, kind, from, to).await?;
        let mut ready: Vec<(Arc<CalendarEntry>, Arc<Series>)> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (id, version) in &keys {
                match cache.get(*id, *version) {
                    Some(hit) => ready.push(hit),
                    None => missing.push(*id),
                }
            }
        }
        if !missing.is_empty() {
            let read = self.store.calendar_listings(user, missing).await?;
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for e in read {
                let series = Arc::new(Series::new(&e.object, self.ctx.zone));
                let entry = Arc::new(e);
                cache.put(entry.clone(), series.clone());
                ready.push((entry, series));
            }
        }
        let mut out = Listing::default();
        for (entry, series) in ready {
            let x = series.occurrences(from, to, self.caps.per_item);
            out.truncated |= x.truncated;
            if x.occurrences.is_empty() {
                continue;
            }
            let i = out.entries.len();
            out.occurrences
                .extend(x.occurrences.into_iter().map(|o| (i, o)));
            out.entries.push(entry);
        }
        out.occurrences.sort_by_key(|(_, o)| (o.start, o.end));
        if out.occurrences.len() > self.caps.per_query {
            out.occurrences.truncate(self.caps.per_query);
            out.truncated = true;
        }
        Ok(out)
    }

    /// A user's busy time in `[from, to)`: opaque appointments they have not
    /// declined and that are not cancelled; tentative ones, and ones not yet
    /// answered, as BUSY-TENTATIVE. Overlapping periods are merged.
    pub async fn freebusy(&self, user: UserId, from: i64, to: i64) -> Result<Vec<Busy>> {
        let me = self
            .store
            .user_by_id(user)
            .await?
            .map(|u| u.address.to_string())
            .unwrap_or_default();
        let listing = self
            .occurrences(user, ItemKind::Appointment, from, to)
            .await?;
        let mut busy: Vec<Busy> = Vec::new();
        for (i, o) in &listing.occurrences {
            let obj = &listing.entries[*i].object;
            let Some(c) = component_of(obj, o.source) else {
                continue;
            };
            if c.is_cancelled() || c.transparency.as_deref() == Some("TRANSPARENT") {
                continue;
            }
            let mine = c.attendee(&me).map(|a| &a.partstat);
            if mine == Some(&PartStat::Declined) {
                continue;
            }
            let tentative = c.status == Some(Status::Tentative)
                || matches!(mine, Some(PartStat::Tentative | PartStat::NeedsAction));
            busy.push(Busy {
                start: o.start.max(from),
                end: o.end.max(o.start).min(to),
                kind: if tentative { "BUSY-TENTATIVE" } else { "BUSY" }.into(),
            });
        }
        Ok(merge(busy))
    }
}

/// Merges overlapping periods of the same kind; a BUSY period is not also
/// reported as tentative where they overlap.
fn merge(mut busy: Vec<Busy>) -> Vec<Busy> {
    busy.retain(|b| b.end > b.start);
    busy.sort_by(|a, b| (a.start, &a.kind).cmp(&(b.start, &b.kind)));
    let mut out: Vec<Busy> = Vec::new();
    for kind in ["BUSY", "BUSY-TENTATIVE"] {
        let mut cur: Option<Busy> = None;
        for b in busy.iter().filter(|b| b.kind == kind) {
            match &mut cur {
                Some(c) if b.start <= c.end => c.end = c.end.max(b.end),
                _ => {
                    if let Some(c) = cur.take() {
                        out.push(c);
                    }
                    cur = Some(b.clone());
                }
            }
        }
        out.extend(cur);
    }
    // Tentative time inside busy time is busy.
    let hard: Vec<(i64, i64)> = out
        .iter()
        .filter(|b| b.kind == "BUSY")
        .map(|b| (b.start, b.end))
        .collect();
    out.retain(|b| b.kind == "BUSY" || !hard.iter().any(|(s, e)| *s <= b.start && b.end <= *e));
    out.sort_by_key(|b| b.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: i64, e: i64, k: &str) -> Busy {
        Busy {
            start: s,
            end: e,
            kind: k.into(),
        }
    }

    #[test]
    fn merges_overlaps() {
        let m = merge(vec![
            b(10, 20, "BUSY"),
            b(15, 30, "BUSY"),
            b(40, 50, "BUSY-TENTATIVE"),
            b(12, 18, "BUSY-TENTATIVE"),
            b(45, 60, "BUSY-TENTATIVE"),
        ]);
        assert_eq!(m, vec![b(10, 30, "BUSY"), b(40, 60, "BUSY-TENTATIVE")]);
    }
}
