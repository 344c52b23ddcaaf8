//! Recurrence: the occurrences of an object within a span of time, and the
//! span an object covers (for the store's time-range index).
//!
//! Rules are expanded in the local (wall-clock) time of DTSTART's zone, as
//! RFC 5545 §3.3.10 defines them, by calcard's RRULE iterator, and each
//! occurrence is then made an instant in that zone (so a 09:00 meeting stays
//! at 09:00 across a change of offset). UNTIL and COUNT are applied here, as
//! instants: COUNT is turned into the start of the last occurrence once,
//! when the object is read ([`settle`]).
//!
//! Expansion is bounded twice: a query does not walk a series from its
//! first occurrence but from a whole number of periods before the span it
//! asks about (a daily meeting begun ten years ago costs as much as one begun
//! last week), and each object yields at most a given number of occurrences
//! ([`Expansion::truncated`] says when that cut some off).
use crate::parse::{Zones, local_string, parse_local};
use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz as CalTz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarFrequency,
    ICalendarMonth, ICalendarProperty, ICalendarRecurrenceRule, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use postgate_types::calendar::{CalendarComponent, CalendarObject, TimeForm};
use std::collections::HashMap;

/// The most occurrences one rule is walked for when its COUNT is settled:
/// past it the series is cut (Outlook itself allows 999).
pub const SETTLE_MAX: usize = 10_000;

/// Where an occurrence's details come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The master (or the single occurrence).
    Master,
    /// The override at this index of [`CalendarObject::overrides`].
    Override(usize),
}

/// One occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds (equal to start for an instant).
    pub end: i64,
    /// The instance of a series this is (its RECURRENCE-ID as an instant);
    /// `None` for an object that does not recur.
    pub recurrence_id: Option<i64>,
    /// Whose details it shows.
    pub source: Source,
}

/// The occurrences of an object within a span.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// In order of start.
    pub occurrences: Vec<Occurrence>,
    /// More occurrences fell in the span than the cap allowed.
    pub truncated: bool,
}

/// Parsed RRULE values: most calendars repeat a few rules many times.
static RULES: std::sync::LazyLock<std::sync::Mutex<HashMap<String, ICalendarRecurrenceRule>>> =
    std::sync::LazyLock::new(Default::default);

/// Parses an RRULE value.
pub fn parse_rrule(value: &str) -> Option<ICalendarRecurrenceRule> {
    if value.len() > 2048 || value.contains(['\r', '\n']) {
        return None;
    }
    if let Some(r) = RULES.lock().ok().and_then(|m| m.get(value).cloned()) {
        return Some(r);
    }
    let parsed = parse_rrule_text(value)?;
    if let Ok(mut m) = RULES.lock() {
        if m.len() >= 1024 {
            m.clear();
        }
        m.insert(value.to_string(), parsed.clone());
    }
    Some(parsed)
}

fn parse_rrule_text(value: &str) -> Option<ICalendarRecurrenceRule> {
    let text = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:{value}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let Entry::ICalendar(ical) = Parser::new(&text).entry() else {
        return None;
    };
    ical.components
        .get(1)?
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Rrule)
        .and_then(|e| match e.values.first() {
            Some(ICalendarValue::RecurrenceRule(r)) => Some(*r.clone()),
            _ => None,
        })
}

fn floating(dt: NaiveDateTime) -> PartialDateTime {
    PartialDateTime {
        year: Some(dt.year().clamp(0, 9999) as u16),
        month: Some(dt.month() as u8),
        day: Some(dt.day() as u8),
        hour: Some(dt.hour() as u8),
        minute: Some(dt.minute() as u8),
        second: Some(dt.second() as u8),
        ..PartialDateTime::default()
    }
}

/// Walks a rule from `start` (local time), at most `limit` occurrences, in
/// order. UNTIL and COUNT are the caller's business (they are stripped or
/// kept as the caller built `rule`).
fn walk(rule: &ICalendarRecurrenceRule, start: NaiveDateTime, limit: usize) -> Vec<NaiveDateTime> {
    let ical = ICalendar {
        components: vec![
            ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: Vec::new(),
                component_ids: vec![1],
            },
            ICalendarComponent {
                component_type: ICalendarComponentType::VEvent,
                entries: vec![
                    ICalendarEntry::new(ICalendarProperty::Dtstart).with_value(floating(start)),
                    ICalendarEntry::new(ICalendarProperty::Rrule).with_value(rule.clone()),
                ],
                component_ids: Vec::new(),
            },
        ],
    };
    let mut out: Vec<NaiveDateTime> = ical
        .expand_dates(CalTz::Floating, limit)
        .events
        .into_iter()
        .map(|e| e.start.naive_local())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The UNTIL of a rule as an instant (RFC 5545 §3.3.10: inclusive; a DATE
/// means to the end of that day; a floating time is read in the series' zone).
fn until_instant(rule: &ICalendarRecurrenceRule, zone: &crate::zone::Zone) -> Option<i64> {
    let u = rule.until.as_ref()?;
    let dt = u.to_date_time()?;
    if let Some(off) = dt.offset {
        return Some(dt.date_time.and_utc().timestamp() - off.local_minus_utc() as i64);
    }
    if u.hour.is_none() {
        let end = dt.date_time.date().and_hms_opt(23, 59, 59)?;
        return Some(zone.to_utc(end));
    }
    Some(zone.to_utc(dt.date_time))
}

/// Works out what reading the object once can tell for good: the start of
/// the last occurrence of a rule that ends ([`CalendarComponent::rrule_last`]).
pub fn settle(obj: &mut CalendarObject, zone: chrono_tz::Tz) {
    let mut zones = Zones::for_object(obj, zone);
    if let Some(m) = obj.master.as_mut() {
        m.rrule_last = None;
        let (Some(rule), Some(start)) = (m.rrule.as_deref().and_then(parse_rrule), &m.start) else {
            return;
        };
        let z = zones.zone_of(&start.form);
        let until = until_instant(&rule, &z);
        if let Some(count) = rule.count {
            let Some(local) = parse_local(&start.local) else {
                return;
            };
            let mut r = rule.clone();
            r.until = None;
            let n = (count as usize).min(SETTLE_MAX);
            let walked = walk(&r, local, n);
            let last = walked.last().map(|l| z.to_utc(*l)).unwrap_or(start.utc);
            m.rrule_last = Some(match until {
                Some(u) => last.min(u),
                None => last,
            });
        } else {
            m.rrule_last = until;
        }
    }
}

/// The nominal length of a component: local difference for DATEs and
/// same-zone times (so a two-day event stays two days across DST), exact
/// otherwise.
fn length(c: &CalendarComponent) -> i64 {
    let (Some(s), Some(e)) = (&c.start, &c.end) else {
        return 0;
    };
    if s.form == e.form
        && let (Some(a), Some(b)) = (parse_local(&s.local), parse_local(&e.local))
    {
        return (b - a).num_seconds().max(0);
    }
    (e.utc - s.utc).max(0)
}

/// The span of time an object covers, for the time-range index:
/// (first start, last end); `i64::MAX` as the end of a series that never ends.
pub fn span(obj: &CalendarObject) -> Option<(i64, i64)> {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for c in obj.components() {
        let Some(start) = c.start.as_ref().or(c.due.as_ref()) else {
            continue;
        };
        let len = length(c).max(if start.is_date() { 86400 } else { 0 });
        lo = lo.min(start.utc);
        // RDATEs may come before DTSTART.
        for r in &c.rdates {
            lo = lo.min(r.utc);
        }
        let mut end = c.end.as_ref().map(|e| e.utc).unwrap_or(start.utc + len);
        if c.rrule.is_some() && c.recurrence_id.is_none() {
            end = match c.rrule_last {
                Some(last) => last.saturating_add(len + 2 * 86400),
                None => i64::MAX,
            };
        }
        for r in &c.rdates {
            end = end.max(r.utc.saturating_add(len));
        }
        if c.this_and_future {
            end = i64::MAX;
        }
        hi = hi.max(end);
    }
    (lo <= hi).then_some((lo, hi))
}

/// Moves a series' start forward by a whole number of the rule's periods,
/// to no later than `target` (local time), pinning what the rule took from
/// its start (as RFC 5545 §3.3.10 and calcard do: the day of the month, the
/// month), so the occurrences after `target` are the same.
fn fast_forward(
    rule: &mut ICalendarRecurrenceRule,
    start: NaiveDateTime,
    target: NaiveDateTime,
) -> NaiveDateTime {
    if target <= start {
        return start;
    }
    let interval = rule.interval.unwrap_or(1).max(1) as i64;
    let exact = |unit: i64| {
        let periods = (target - start).num_seconds() / (unit * interval);
        start
            .checked_add_signed(chrono::Duration::seconds(periods * unit * interval))
            .unwrap_or(start)
    };
    let no_day_rules = rule.byweekno.is_empty()
        && rule.byyearday.is_empty()
        && rule.bymonthday.is_empty()
        && rule.byday.is_empty();
    match rule.freq {
        ICalendarFrequency::Secondly => exact(1),
        ICalendarFrequency::Minutely => exact(60),
        ICalendarFrequency::Hourly => exact(3600),
        ICalendarFrequency::Daily => exact(86400),
        ICalendarFrequency::Weekly => exact(7 * 86400),
        ICalendarFrequency::Monthly => {
            let months = (target.year() as i64 * 12 + target.month0() as i64)
                - (start.year() as i64 * 12 + start.month0() as i64);
            let shift = (months / interval) * interval;
            if shift <= 0 {
                return start;
            }
            if no_day_rules {
                rule.bymonthday = vec![start.day() as i8];
            }
            let m = start.year() as i64 * 12 + start.month0() as i64 + shift;
            NaiveDate::from_ymd_opt((m / 12) as i32, (m % 12) as u32 + 1, 1)
                .map(|d| d.and_time(start.time()))
                .unwrap_or(start)
        }
        ICalendarFrequency::Yearly => {
            let years = (target.year() - start.year()) as i64;
            let shift = (years / interval) * interval;
            if shift <= 0 {
                return start;
            }
            if no_day_rules {
                if rule.bymonth.is_empty() {
                    rule.bymonth = vec![ICalendarMonth::new(start.month() as u8, false)];
                }
                rule.bymonthday = vec![start.day() as i8];
            }
            NaiveDate::from_ymd_opt(start.year() + shift as i32, 1, 1)
                .map(|d| d.and_time(start.time()))
                .unwrap_or(start)
        }
    }
}

/// The length of one period of a rule, seconds (months and years at their
/// longest), for margins.
fn period(rule: &ICalendarRecurrenceRule) -> i64 {
    let interval = rule.interval.unwrap_or(1).max(1) as i64;
    interval
        * match rule.freq {
            ICalendarFrequency::Secondly => 1,
            ICalendarFrequency::Minutely => 60,
            ICalendarFrequency::Hourly => 3600,
            ICalendarFrequency::Daily => 86400,
            ICalendarFrequency::Weekly => 7 * 86400,
            ICalendarFrequency::Monthly => 31 * 86400,
            ICalendarFrequency::Yearly => 366 * 86400,
        }
}

fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if end > start {
        start < to && end > from
    } else {
        start >= from && start < to
    }
}

/// The occurrences of `obj` that overlap `[from, to)`, at most `cap`.
/// Cancelled instances (an override with STATUS:CANCELLED) are left out.
pub fn occurrences(
    obj: &CalendarObject,
    from: i64,
    to: i64,
    zone: chrono_tz::Tz,
    cap: usize,
) -> Expansion {
    Series::new(obj, zone).occurrences(from, to, cap)
}

/// The master of a recurring series, read once: what expanding it in any
/// span needs.
#[derive(Debug, Clone)]
struct Rule {
    /// The RRULE, UNTIL and COUNT taken out (applied as instants).
    rule: Option<ICalendarRecurrenceRule>,
    /// DTSTART as local time in its zone.
    local: NaiveDateTime,
    zone: crate::zone::Zone,
    /// The last instant the rule reaches (UNTIL, COUNT), if it ends.
    last: Option<i64>,
    rdates: Vec<i64>,
    exdates: Vec<i64>,
    /// DATE EXDATEs, `YYYYMMDD`: the instance on that day goes.
    exdate_days: Vec<String>,
}

/// An object made ready for expansion: its rules parsed, its zones read,
/// its overrides indexed, and the instances of its rule worked out a year
/// at a time as spans ask for them and kept. Worth keeping for an object
/// expanded again and again (see postgate-calendar's cache); [`occurrences`]
/// makes one each time.
#[derive(Debug)]
pub struct Series {
    /// The master's start and length, if it has a start.
    master: Option<(i64, i64)>,
    /// Recurrence of the master, if it recurs.
    rule: Option<Rule>,
    /// Overrides by the instance they replace.
    by_rid: HashMap<i64, usize>,
    /// THISANDFUTURE overrides: (instance, shift, index), in order.
    taf: Vec<(i64, i64, usize)>,
    max_shift: i64,
    /// Each override: (start, length, instance) unless cancelled.
    overrides: Vec<Option<(i64, i64, Option<i64>)>>,
    /// The rule's instances by UTC year, as worked out so far.
    years: std::sync::Mutex<HashMap<i32, std::sync::Arc<Year>>>,
}

/// The instances of a rule in one UTC year.
#[derive(Debug)]
struct Year {
    instants: Vec<i64>,
    /// More than [`YEAR_MAX`] fell in the year.
    truncated: bool,
}

/// The most instances of one rule worked out for one year (a rule that
/// recurs every minute has half a million): past it, the year is cut and the
/// expansion says so.
const YEAR_MAX: usize = 20_000;

/// Past this many years a span is walked once rather than year by year.
const SPAN_YEARS: i32 = 4;

fn year_of(t: i64) -> i32 {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.year())
        .unwrap_or(if t < 0 { -262_000 } else { 262_000 })
}

fn year_start(y: i32) -> i64 {
    NaiveDate::from_ymd_opt(y, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .unwrap_or(if y < 0 { i64::MIN / 4 } else { i64::MAX / 4 })
}

/// The instances of a rule in `[lo, hi)`, walked for that span alone from a
/// whole number of periods before it; whether the cap cut the walk short.
fn walk_span(
    r: &Rule,
    base: &ICalendarRecurrenceRule,
    start: i64,
    lo: i64,
    hi: i64,
    cap: usize,
    instants: &mut Vec<i64>,
) -> bool {
    let z = &r.zone;
    let mut rule = base.clone();
    // Two periods of margin before the span: the first period of a moved
    // start may be partial.
    let margin = 2 * period(&rule);
    let target = z.to_local(lo.saturating_sub(margin));
    let begin = fast_forward(&mut rule, r.local, target);
    let most = cap.saturating_mul(2).saturating_add(64);
    let per_period = (rule.byday.len().max(1)
        * rule.bymonthday.len().max(1)
        * rule.byhour.len().max(1)
        * rule.byminute.len().max(1))
    .min(10_000) as i64;
    let periods = hi.saturating_sub(z.to_utc(begin)) / period(&rule).max(1) + 2;
    let mut limit = (periods.saturating_mul(per_period).clamp(2, most as i64)) as usize;
    loop {
        let walked = walk(&rule, begin, limit);
        let complete = walked.len() < limit;
        let past = walked
            .last()
            .is_some_and(|l| z.to_utc(*l) >= hi || r.last.is_some_and(|x| z.to_utc(*l) > x));
        if complete || past || limit >= most {
            for l in walked {
                let t = z.to_utc(l);
                if t < start {
                    continue; // no instance comes before DTSTART
                }
                if r.last.is_some_and(|last| t > last) || t >= hi {
                    break;
                }
                instants.push(t);
            }
            return !complete && !past;
        }
        limit = limit.saturating_mul(4).min(most);
    }
}

impl Series {
    /// Reads an object for expansion; floating times and dates in `zone`.
    pub fn new(obj: &CalendarObject, zone: chrono_tz::Tz) -> Series {
        let mut zones = Zones::for_object(obj, zone);
        let by_rid = obj
            .overrides
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.recurrence_id.as_ref().map(|r| (r.utc, i)))
            .collect();
        let mut taf: Vec<(i64, i64, usize)> = obj
            .overrides
            .iter()
            .enumerate()
            .filter(|(_, o)| o.this_and_future)
            .filter_map(|(i, o)| {
                let rid = o.recurrence_id.as_ref()?.utc;
                let delta = o.start.as_ref().map(|s| s.utc - rid).unwrap_or(0);
                Some((rid, delta, i))
            })
            .collect();
        taf.sort_unstable();
        let max_shift = taf.iter().map(|t| t.1.abs()).max().unwrap_or(0);
        let overrides = obj
            .overrides
            .iter()
            .map(|o| {
                if o.is_cancelled() {
                    return None;
                }
                let start = o.start.as_ref()?;
                Some((
                    start.utc,
                    length(o),
                    o.recurrence_id.as_ref().map(|r| r.utc),
                ))
            })
            .collect();
        let mut master = None;
        let mut rule = None;
        if let Some(m) = &obj.master
            && let Some(start) = &m.start
        {
            master = Some((start.utc, length(m)));
            if m.rrule.is_some() || !m.rdates.is_empty() {
                let z = zones.zone_of(&start.form);
                let mut parsed = m.rrule.as_deref().and_then(parse_rrule);
                let local = parse_local(&start.local);
                let mut last = m.rrule_last;
                if let Some(r) = parsed.as_mut() {
                    let until = until_instant(r, &z);
                    last = match (until, m.rrule_last) {
                        (Some(u), Some(l)) => Some(u.min(l)),
                        (a, b) => a.or(b),
                    };
                    r.until = None;
                    r.count = None;
                }
                rule = Some(Rule {
                    rule: parsed.filter(|_| local.is_some()),
                    local: local.unwrap_or_default(),
                    zone: z,
                    last,
                    rdates: m.rdates.iter().map(|r| r.utc).collect(),
                    exdates: m.exdates.iter().map(|e| e.utc).collect(),
                    exdate_days: m
                        .exdates
                        .iter()
                        .filter(|e| e.is_date())
                        .map(|e| e.local.clone())
                        .collect(),
                });
            }
        }
        Series {
            master,
            rule,
            by_rid,
            taf,
            max_shift,
            overrides,
            years: std::sync::Mutex::default(),
        }
    }

    /// The rule's instances in UTC year `y` (at or after DTSTART, at or
    /// before its last), worked out once.
    fn year(
        &self,
        r: &Rule,
        base: &ICalendarRecurrenceRule,
        start: i64,
        y: i32,
    ) -> std::sync::Arc<Year> {
        if let Some(done) = self.years.lock().ok().and_then(|m| m.get(&y).cloned()) {
            return done;
        }
        let (lo, hi) = (year_start(y), year_start(y + 1));
        let mut instants = Vec::new();
        let mut truncated = walk_span(r, base, start, lo, hi, YEAR_MAX, &mut instants);
        // The walk starts a margin before the year: keep the year's own.
        instants.retain(|t| *t >= lo);
        if instants.len() > YEAR_MAX {
            instants.truncate(YEAR_MAX);
            truncated = true;
        }
        let year = std::sync::Arc::new(Year {
            instants,
            truncated,
        });
        if let Ok(mut m) = self.years.lock() {
            // A series is asked about a few years at most; a walk over
            // centuries is not kept.
            if m.len() < 64 {
                m.insert(y, year.clone());
            }
        }
        year
    }

    /// The occurrences that overlap `[from, to)`, at most `cap`. Cancelled
    /// instances (an override with STATUS:CANCELLED) are left out.
    pub fn occurrences(&self, from: i64, to: i64, cap: usize) -> Expansion {
        let mut out = Expansion::default();
        if let Some((start, len)) = self.master {
            match &self.rule {
                None => {
                    let end = start + len;
                    if overlaps(start, end, from, to) {
                        out.occurrences.push(Occurrence {
                            start,
                            end,
                            recurrence_id: None,
                            source: Source::Master,
                        });
                    }
                }
                Some(r) => self.series(r, start, len, from, to, cap, &mut out),
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            let Some((start, len, rid)) = *o else {
                continue;
            };
            let end = start + len;
            if overlaps(start, end, from, to) {
                out.occurrences.push(Occurrence {
                    start,
                    end,
                    recurrence_id: rid,
                    source: Source::Override(i),
                });
            }
        }
        out.occurrences.sort_by_key(|o| (o.start, o.end));
        if out.occurrences.len() > cap {
            out.occurrences.truncate(cap);
            out.truncated = true;
        }
        out
    }

    /// The instances of a recurring master in the span.
    #[allow(clippy::too_many_arguments)]
    fn series(
        &self,
        r: &Rule,
        start: i64,
        len: i64,
        from: i64,
        to: i64,
        cap: usize,
        out: &mut Expansion,
    ) {
        let z = &r.zone;
        let lo = from.saturating_sub(len).saturating_sub(self.max_shift);
        let hi = to.saturating_add(self.max_shift);
        let mut instants: Vec<i64> = Vec::new();
        let mut walked_full = false;
        if let Some(base) = &r.rule {
            let last = r.last;
            if last.is_none_or(|l| l >= lo) && start < hi {
                let first = year_of(lo.max(start));
                let end = year_of(hi.saturating_sub(1).min(last.unwrap_or(i64::MAX)));
                if matches!(
                    base.freq,
                    ICalendarFrequency::Hourly
                        | ICalendarFrequency::Minutely
                        | ICalendarFrequency::Secondly
                ) || end.saturating_sub(first) > SPAN_YEARS
                {
                    // More than a day's worth a day, or a span of many years
                    // (a calendar view is a day to a year): walked for the
                    // span alone, as far as the cap.
                    walked_full = walk_span(r, base, start, lo, hi, cap, &mut instants);
                } else {
                    // Year by year, from the first the span and the series
                    // share, until the span, the series or the cap ends.
                    let mut y = first;
                    while y <= end {
                        let year = self.year(r, base, start, y);
                        walked_full |= year.truncated;
                        instants.extend(
                            year.instants
                                .iter()
                                .copied()
                                .filter(|t| *t >= lo && *t < hi),
                        );
                        if instants.len() > cap {
                            walked_full = true;
                            break;
                        }
                        y += 1;
                    }
                }
            }
            if start >= lo && start < hi && !instants.contains(&start) {
                // RFC 5545 §3.8.5.3: DTSTART is the first instance.
                instants.push(start);
            }
        } else if start >= lo && start < hi {
            instants.push(start);
        }
        // RFC 5545 §3.8.5.2: RDATEs join the set; §3.8.5.1: EXDATEs leave it.
        instants.extend(r.rdates.iter().copied().filter(|t| *t >= lo && *t < hi));
        instants.sort_unstable();
        instants.dedup();
        for t in instants {
            if r.exdates.contains(&t) {
                continue;
            }
            if !r.exdate_days.is_empty() {
                // A DATE EXDATE removes the instance on that day (all-day series).
                let day = local_string(&z.to_local(t), true);
                if r.exdate_days.contains(&day) {
                    continue;
                }
            }
            if self.by_rid.contains_key(&t) {
                continue; // shown as the override
            }
            let (s, e, source) = match self.taf.iter().rev().find(|(rid, _, _)| *rid <= t) {
                Some(&(_, delta, i)) => {
                    let l = self.overrides[i].map(|o| o.1).unwrap_or(len);
                    (t + delta, t + delta + l, Source::Override(i))
                }
                None => (t, t + len, Source::Master),
            };
            if overlaps(s, e, from, to) {
                out.occurrences.push(Occurrence {
                    start: s,
                    end: e,
                    recurrence_id: Some(t),
                    source,
                });
            }
        }
        if walked_full {
            out.truncated = true;
        }
    }
}

/// Whether a component's times are zoned by a TZID (not UTC or floating).
pub fn is_zoned(c: &CalendarComponent) -> bool {
    c.start
        .as_ref()
        .is_some_and(|s| matches!(s.form, TimeForm::Zone(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Context, parse_one};

    fn object(ics: &str) -> CalendarObject {
        let p = parse_one(ics, &Context::default()).unwrap();
        p.objects.into_iter().next().unwrap().object
    }

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    const DAILY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n\
BEGIN:VEVENT\r\nUID:d1\r\nDTSTAMP:20200101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:20200106T090000\r\nDTEND;TZID=Europe/Berlin:20200106T093000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\nEXDATE;TZID=Europe/Berlin:20260330T090000\r\n\
SUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn weekly_years_later_keeps_local_time_across_dst() {
        let o = object(DAILY);
        assert_eq!(o.master.as_ref().unwrap().rrule_last, None);
        let e = occurrences(
            &o,
            ts("2026-03-23T00:00:00Z"),
            ts("2026-04-06T00:00:00Z"),
            chrono_tz::UTC,
            100,
        );
        let starts: Vec<i64> = e.occurrences.iter().map(|o| o.start).collect();
        // Mon 23 (CET, 08:00Z), Wed 25, [Mon 30 excluded], Wed 1 Apr (CEST, 07:00Z).
        assert_eq!(
            starts,
            vec![
                ts("2026-03-23T08:00:00Z"),
                ts("2026-03-25T08:00:00Z"),
                ts("2026-04-01T07:00:00Z"),
            ]
        );
        assert!(!e.truncated);
        assert_eq!(e.occurrences[0].end - e.occurrences[0].start, 1800);
    }

    #[test]
    fn count_is_settled_and_bounds_the_series() {
        let o = object(&DAILY.replace("BYDAY=MO,WE", "COUNT=3"));
        let m = o.master.as_ref().unwrap();
        assert_eq!(m.rrule_last, Some(ts("2020-01-20T08:00:00Z")));
        let (lo, hi) = span(&o).unwrap();
        assert_eq!(lo, ts("2020-01-06T08:00:00Z"));
        assert!(hi < ts("2020-02-01T00:00:00Z"));
        let e = occurrences(&o, lo, hi, chrono_tz::UTC, 100);
        assert_eq!(e.occurrences.len(), 3);
    }

    #[test]
    fn every_second_is_capped() {
        let o = object(&DAILY.replace("FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=SECONDLY"));
        let e = occurrences(
            &o,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-12-31T00:00:00Z"),
            chrono_tz::UTC,
            500,
        );
        assert_eq!(e.occurrences.len(), 500);
        assert!(e.truncated);
    }

    #[test]
    fn monthly_on_the_31st_skips_short_months_after_fast_forward() {
        let ics = DAILY
            .replace("20200106T090000", "20200131T090000")
            .replace("20200106T093000", "20200131T093000")
            .replace("FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=MONTHLY");
        let o = object(&ics);
        let e = occurrences(
            &o,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-06-01T00:00:00Z"),
            chrono_tz::UTC,
            100,
        );
        let days: Vec<u32> = e
            .occurrences
            .iter()
            .map(|o| chrono::DateTime::from_timestamp(o.start, 0).unwrap().day())
            .collect();
        // Jan 31, Mar 31, May 31: February and April have no 31st.
        assert_eq!(days, vec![31, 31, 31]);
    }
}
