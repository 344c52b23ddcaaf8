//! Time zones: from a TZID to instants (RFC 5545 §3.2.19, §3.6.5).
//!
//! A TZID is read, in this order:
//! - by the VTIMEZONE the object carries, when it names a zone known by name
//!   (IANA, a Windows name as Exchange writes it, `X-LIC-LOCATION`,
//!   `X-MICROSOFT-CDO-TZID`; calcard knows them) **and** its observances agree
//!   with that zone; the known zone is then used, so later changes to the
//!   zone's rules apply;
//! - else by the VTIMEZONE's own observances ([`CustomZone`]): they are what
//!   the sender's calendar used, so they are what the sender meant;
//! - a TZID without VTIMEZONE, by name alone.
//!
//! Local times that a change of offset skips are read with the offset before
//! the gap, and times it repeats are the first of the two (RFC 5545 §3.3.5).
use calcard::common::timezone::Tz as CalTz;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Weekday};
use postgate_types::calendar::{Observance, ZoneRule};
use std::str::FromStr;
use std::sync::Arc;

/// A zone in which local times become instants.
#[derive(Debug, Clone)]
pub enum Zone {
    /// UTC.
    Utc,
    /// An IANA zone.
    Iana(chrono_tz::Tz),
    /// A fixed offset east of UTC, seconds (`Etc/GMT-2`, `(UTC+07:00) …`).
    Fixed(i32),
    /// A VTIMEZONE's own observances.
    Custom(Arc<CustomZone>),
}

impl Zone {
    /// The instant a local time stands for, Unix seconds.
    pub fn to_utc(&self, local: NaiveDateTime) -> i64 {
        let naive = local.and_utc().timestamp();
        match self {
            Zone::Utc => naive,
            Zone::Fixed(o) => naive - *o as i64,
            Zone::Iana(tz) => match tz.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => t.timestamp(),
                // RFC 5545 §3.3.5: a time that occurs twice is the first.
                chrono::LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
                // A time in a gap: read with the offset in force before it.
                chrono::LocalResult::None => {
                    let earlier = local
                        .checked_sub_signed(chrono::Duration::hours(26))
                        .unwrap_or(local);
                    let before = tz
                        .offset_from_utc_datetime(&earlier)
                        .fix()
                        .local_minus_utc();
                    naive - before as i64
                }
            },
            Zone::Custom(z) => z.to_utc(naive),
        }
    }

    /// The local time of an instant.
    pub fn to_local(&self, utc: i64) -> NaiveDateTime {
        let offset = self.offset_at(utc);
        chrono::DateTime::from_timestamp(utc + offset as i64, 0)
            .unwrap_or_default()
            .naive_utc()
    }

    /// The offset east of UTC in force at an instant, seconds.
    pub fn offset_at(&self, utc: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o,
            Zone::Iana(tz) => chrono::DateTime::from_timestamp(utc, 0)
                .map(|t| {
                    tz.offset_from_utc_datetime(&t.naive_utc())
                        .fix()
                        .local_minus_utc()
                })
                .unwrap_or(0),
            Zone::Custom(z) => z.offset_at(utc),
        }
    }

    /// The IANA name, when the zone is one.
    pub fn iana_name(&self) -> Option<String> {
        match self {
            Zone::Utc => Some("UTC".into()),
            Zone::Iana(tz) => Some(tz.name().to_string()),
            Zone::Fixed(_) | Zone::Custom(_) => None,
        }
    }
}

/// The zone a time of `obj` is read in: its TZID as the object defines it
/// (a VTIMEZONE of its own) or by name; UTC; or `default` for floating
/// times and dates.
pub fn of_time(
    obj: &postgate_types::CalendarObject,
    t: &postgate_types::CalTime,
    default: chrono_tz::Tz,
) -> Zone {
    crate::parse::Zones::for_object(obj, default).zone_of(&t.form)
}

/// A zone known by name: IANA names, Windows names ("W. Europe Standard
/// Time"), Outlook's display names ("(UTC+01:00) Amsterdam, Berlin, …"),
/// Lotus Notes' and the `/softwarestudio.org/…` prefixes, via calcard.
pub fn by_name(name: &str) -> Option<Zone> {
    let name = name.trim().trim_matches('"');
    if name.is_empty() {
        return None;
    }
    match CalTz::from_str(name).ok()? {
        CalTz::Tz(tz) if tz == chrono_tz::UTC || tz == chrono_tz::Etc::UTC => Some(Zone::Utc),
        CalTz::Tz(tz) => Some(Zone::Iana(tz)),
        CalTz::Fixed(o) if o.local_minus_utc() == 0 => Some(Zone::Utc),
        CalTz::Fixed(o) => Some(Zone::Fixed(o.local_minus_utc())),
        CalTz::Floating => None,
    }
}

/// A VTIMEZONE's observances, ready to answer offsets.
#[derive(Debug, Clone)]
pub struct CustomZone {
    rule: ZoneRule,
    observances: Vec<Onsets>,
    offsets: Vec<i32>,
}

#[derive(Debug, Clone)]
struct Onsets {
    start: NaiveDateTime,
    from: i32,
    to: i32,
    yearly: Option<YearRule>,
    rdates: Vec<NaiveDateTime>,
}

/// The yearly rules VTIMEZONEs use: a month and a day within it, given as
/// the nth weekday (`BYDAY=-1SU`), a day of the month, or a weekday within
/// a span of days (`BYMONTHDAY=8,9,…,14;BYDAY=SU`).
#[derive(Debug, Clone)]
struct YearRule {
    month: u32,
    weekday: Option<(i8, Weekday)>,
    monthdays: Vec<i8>,
    until: Option<i64>,
    interval: i32,
    /// BYHOUR/BYMINUTE (Lotus Notes writes them), else DTSTART's time.
    hour: Option<u32>,
    minute: Option<u32>,
}

impl CustomZone {
    /// From a stored [`ZoneRule`]; `None` if no observance is usable.
    pub fn new(rule: ZoneRule) -> Option<CustomZone> {
        let observances: Vec<Onsets> = rule.observances.iter().filter_map(onsets).collect();
        if observances.is_empty() {
            return None;
        }
        let mut offsets: Vec<i32> = observances.iter().flat_map(|o| [o.to, o.from]).collect();
        offsets.sort_unstable();
        offsets.dedup();
        Some(CustomZone {
            rule,
            observances,
            offsets,
        })
    }

    /// The rule it was made from.
    pub fn rule(&self) -> &ZoneRule {
        &self.rule
    }

    /// RFC 5545 §3.6.5: the observance with the latest onset at or before
    /// `utc` gives the offset; before every onset, the earliest one's
    /// TZOFFSETFROM.
    pub fn offset_at(&self, utc: i64) -> i32 {
        let year = chrono::DateTime::from_timestamp(utc, 0)
            .map(|t| t.year())
            .unwrap_or(1970);
        let mut best: Option<(i64, i32)> = None;
        let mut earliest: Option<(i64, i32)> = None;
        for o in &self.observances {
            let mut consider = |local: NaiveDateTime| {
                let at = local.and_utc().timestamp() - o.from as i64;
                if earliest.is_none_or(|(e, _)| at < e) {
                    earliest = Some((at, o.from));
                }
                if at <= utc && best.is_none_or(|(b, _)| at > b) {
                    best = Some((at, o.to));
                }
            };
            consider(o.start);
            for r in &o.rdates {
                consider(*r);
            }
            if let Some(rule) = &o.yearly {
                let last_year = match rule.until {
                    Some(u) => chrono::DateTime::from_timestamp(u, 0)
                        .map(|t| t.year())
                        .unwrap_or(year)
                        .min(year + 1),
                    None => year + 1,
                };
                for y in [last_year - 2, last_year - 1, last_year] {
                    if y <= o.start.year() || (y - o.start.year()) % rule.interval != 0 {
                        continue;
                    }
                    if let Some(local) = rule.onset(y, o.start.time()) {
                        let at = local.and_utc().timestamp() - o.from as i64;
                        if rule.until.is_some_and(|u| at > u) {
                            continue;
                        }
                        consider(local);
                    }
                }
            }
        }
        best.or(earliest).map(|(_, off)| off).unwrap_or(0)
    }

    fn to_utc(&self, naive: i64) -> i64 {
        // Every offset the zone uses is tried; those consistent with
        // themselves are real readings of the local time.
        let mut valid: Option<i64> = None;
        for &off in &self.offsets {
            let utc = naive - off as i64;
            if self.offset_at(utc) == off {
                // RFC 5545 §3.3.5: the first of two readings.
                valid = Some(valid.map_or(utc, |v: i64| v.min(utc)));
            }
        }
        valid.unwrap_or_else(|| naive - self.offset_at(naive - 26 * 3600) as i64)
    }
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn onsets(o: &Observance) -> Option<Onsets> {
    // Offsets beyond ±18 h are not offsets (RFC 5545 §3.3.14 allows ±23:59,
    // no zone uses more than +14).
    if o.offset_from.abs() > 18 * 3600 || o.offset_to.abs() > 18 * 3600 {
        return None;
    }
    Some(Onsets {
        start: parse_local(&o.start)?,
        from: o.offset_from,
        to: o.offset_to,
        yearly: o.rrule.as_deref().and_then(YearRule::parse),
        rdates: o
            .rdates
            .iter()
            .filter_map(|r| parse_local(r))
            .take(1000)
            .collect(),
    })
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

impl YearRule {
    fn parse(rrule: &str) -> Option<YearRule> {
        let mut freq_yearly = false;
        let mut month = None;
        let mut wd = None;
        let mut monthdays = Vec::new();
        let mut until = None;
        let mut interval = 1;
        let (mut hour, mut minute) = (None, None);
        for part in rrule.trim().split(';') {
            let (k, v) = part.split_once('=')?;
            match k.trim().to_ascii_uppercase().as_str() {
                "FREQ" => freq_yearly = v.eq_ignore_ascii_case("YEARLY"),
                "BYMONTH" => {
                    month = v
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|m| (1..=12).contains(m))
                }
                "BYDAY" => {
                    let v = v.trim().to_ascii_uppercase();
                    if v.contains(',') || v.len() < 2 {
                        return None;
                    }
                    let (n, d) = v.split_at(v.len() - 2);
                    let n: i8 = if n.is_empty() { 0 } else { n.parse().ok()? };
                    if !(-5..=5).contains(&n) {
                        return None;
                    }
                    wd = Some((n, weekday(d)?));
                }
                "BYMONTHDAY" => {
                    for d in v.split(',') {
                        let d: i8 = d.trim().parse().ok()?;
                        if d == 0 || !(-31..=31).contains(&d) {
                            return None;
                        }
                        monthdays.push(d);
                    }
                }
                "UNTIL" => {
                    let u = parse_local(v)?;
                    // UNTIL in a VTIMEZONE is UTC (RFC 5545 §3.6.5).
                    until = Some(u.and_utc().timestamp());
                }
                "INTERVAL" => interval = v.trim().parse::<i32>().ok().filter(|i| *i >= 1)?,
                "BYHOUR" => hour = Some(v.trim().parse::<u32>().ok().filter(|h| *h < 24)?),
                "BYMINUTE" => minute = Some(v.trim().parse::<u32>().ok().filter(|m| *m < 60)?),
                "WKST" | "COUNT" => {}
                _ => return None,
            }
        }
        if !freq_yearly {
            return None;
        }
        Some(YearRule {
            month: month?,
            weekday: wd,
            monthdays,
            until,
            interval,
            hour,
            minute,
        })
    }

    fn onset(&self, year: i32, time: chrono::NaiveTime) -> Option<NaiveDateTime> {
        let first = NaiveDate::from_ymd_opt(year, self.month, 1)?;
        let len = days_in_month(year, self.month);
        let day_ok = |d: u32| {
            self.monthdays.is_empty()
                || self.monthdays.iter().any(|&m| {
                    if m > 0 {
                        m as u32 == d
                    } else {
                        (len as i32 + 1 + m as i32) as u32 == d
                    }
                })
        };
        let days: Vec<NaiveDate> = (1..=len)
            .filter(|d| day_ok(*d))
            .filter_map(|d| first.with_day(d))
            .filter(|d| self.weekday.is_none_or(|(_, w)| d.weekday() == w))
            .collect();
        let date = match self.weekday {
            Some((n, _)) if n > 0 => days.get(n as usize - 1).copied(),
            Some((n, _)) if n < 0 => days.len().checked_sub((-n) as usize).map(|i| days[i]),
            _ => days.first().copied(),
        }?;
        let time = match (self.hour, self.minute) {
            (None, None) => time,
            (h, m) => chrono::NaiveTime::from_hms_opt(
                h.unwrap_or(time.hour()),
                m.unwrap_or(time.minute()),
                0,
            )?,
        };
        Some(date.and_time(time))
    }
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        parse_local(s).unwrap()
    }

    fn europe() -> Zone {
        // As Outlook writes W. Europe Standard Time, under a name nobody knows.
        Zone::Custom(Arc::new(
            CustomZone::new(ZoneRule {
                tzid: "Customized Time Zone".into(),
                observances: vec![
                    Observance {
                        start: "16010101T030000".into(),
                        offset_from: 7200,
                        offset_to: 3600,
                        rrule: Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10".into()),
                        rdates: vec![],
                    },
                    Observance {
                        start: "16010101T020000".into(),
                        offset_from: 3600,
                        offset_to: 7200,
                        rrule: Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3".into()),
                        rdates: vec![],
                    },
                ],
            })
            .unwrap(),
        ))
    }

    #[test]
    fn custom_zone_matches_iana() {
        let custom = europe();
        let berlin = Zone::Iana(chrono_tz::Europe::Berlin);
        for local in [
            "20260115T120000",
            "20260329T015959",
            "20260329T030000",
            "20260710T090000",
            "20261025T015959",
            "20261025T030000",
            "20261231T235959",
            "19991031T120000",
        ] {
            assert_eq!(
                custom.to_utc(dt(local)),
                berlin.to_utc(dt(local)),
                "{local}"
            );
        }
        // The gap: 02:30 on the spring-forward day does not exist; read with
        // the offset before it (+01:00): 01:30Z.
        assert_eq!(
            custom.to_utc(dt("20260329T023000")),
            dt("20260329T013000").and_utc().timestamp()
        );
        assert_eq!(
            berlin.to_utc(dt("20260329T023000")),
            dt("20260329T013000").and_utc().timestamp()
        );
        // The repeated hour: 02:30 on the fall-back day is first at +02:00.
        assert_eq!(
            custom.to_utc(dt("20261025T023000")),
            dt("20261025T003000").and_utc().timestamp()
        );
        assert_eq!(
            berlin.to_utc(dt("20261025T023000")),
            dt("20261025T003000").and_utc().timestamp()
        );
    }

    #[test]
    fn names() {
        assert!(matches!(
            by_name("W. Europe Standard Time"),
            Some(Zone::Iana(chrono_tz::Europe::Berlin))
        ));
        assert!(matches!(
            by_name("Romance Standard Time"),
            Some(Zone::Iana(chrono_tz::Europe::Paris))
        ));
        assert!(matches!(
            by_name("America/New_York"),
            Some(Zone::Iana(chrono_tz::America::New_York))
        ));
        assert!(by_name("").is_none());
        assert!(by_name("No Such Zone Anywhere").is_none());
    }

    #[test]
    fn old_style_second_sunday() {
        let r = YearRule::parse("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8,9,10,11,12,13,14;BYDAY=SU")
            .unwrap();
        let t = chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap();
        assert_eq!(r.onset(2026, t).unwrap(), dt("20260308T020000"));
    }
}
