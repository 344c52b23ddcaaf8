//! iCalendar text → calendar objects.
//!
//! The text is checked against [`Limits`] before it is parsed (size, lines,
//! nesting, components), repaired where real senders break it in known ways
//! (continuation lines that start with a no-break space), parsed by calcard,
//! and converted: one [`CalendarObject`] per UID and kind, each keeping its
//! own iCalendar text (the VCALENDAR's header, the VTIMEZONEs its TZIDs use,
//! its components, METHOD left out: RFC 4791 §4.1).
//!
//! What cannot be used is dropped with a reason in [`Parsed::problems`]: a
//! component without UID, a date that does not exist, a TZID nobody defines.
//! What breaks the limits rejects the whole text ([`ParseError`]).
use crate::zone::{self, CustomZone, Zone};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarDuration, ICalendarEntry,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use postgate_types::ItemKind;
use postgate_types::calendar::{
    Alarm, Attendee, CalTime, CalendarComponent, CalendarObject, Observance, Organizer, PartStat,
    Role, Status, TimeForm, ZoneRule,
};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// What a text may hold before it is refused outright. The defaults are well
/// beyond what any calendar product sends (a 500-person meeting from
/// Exchange is ~150 KB) and well below what would hurt the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Octets of text.
    pub max_bytes: usize,
    /// Content lines, after unfolding.
    pub max_lines: usize,
    /// BEGIN nesting depth (VCALENDAR > VEVENT > VALARM is 3).
    pub max_depth: usize,
    /// Components (every BEGIN).
    pub max_components: usize,
    /// Attendees per component; more are dropped (and said so).
    pub max_attendees: usize,
    /// Characters of one text value (SUMMARY, DESCRIPTION…); longer ones are cut.
    pub max_value: usize,
}

impl Limits {
    /// For a file a user or operator imports (an export of a whole
    /// calendar): much larger than one scheduling message.
    pub fn import() -> Limits {
        Limits {
            max_bytes: 256 << 20,
            max_lines: 5_000_000,
            max_components: 1_000_000,
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 4 << 20,
            max_lines: 100_000,
            max_depth: 8,
            max_components: 5_000,
            max_attendees: 10_000,
            max_value: 64 * 1024,
        }
    }
}

/// How to read what the text leaves open.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The zone floating times and dates are read in (the post office's
    /// calendar time zone).
    pub zone: chrono_tz::Tz,
    /// Limits.
    pub limits: Limits,
}

impl Default for Context {
    fn default() -> Context {
        Context {
            zone: chrono_tz::UTC,
            limits: Limits::default(),
        }
    }
}

/// Why a text was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Beyond a limit (which, and how far).
    TooLarge(String),
    /// Not iCalendar at all.
    NotICalendar(String),
    /// More than one VCALENDAR where one is required (RFC 6047 §2.4).
    SeveralCalendars(usize),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge(what) => write!(f, "calendar too large: {what}"),
            ParseError::NotICalendar(why) => write!(f, "not iCalendar: {why}"),
            ParseError::SeveralCalendars(n) => {
                write!(
                    f,
                    "{n} VCALENDAR objects in one part (RFC 6047 §2.4 allows one)"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// iTIP METHOD (RFC 5546 §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// PUBLISH
    Publish,
    /// REQUEST
    Request,
    /// REPLY
    Reply,
    /// ADD
    Add,
    /// CANCEL
    Cancel,
    /// REFRESH
    Refresh,
    /// COUNTER
    Counter,
    /// DECLINECOUNTER
    DeclineCounter,
    /// Anything else, upper-cased.
    Other(String),
}

impl Method {
    /// Parses a METHOD value.
    pub fn parse(s: &str) -> Method {
        match s.trim().to_ascii_uppercase().as_str() {
            "PUBLISH" => Method::Publish,
            "REQUEST" => Method::Request,
            "REPLY" => Method::Reply,
            "ADD" => Method::Add,
            "CANCEL" => Method::Cancel,
            "REFRESH" => Method::Refresh,
            "COUNTER" => Method::Counter,
            "DECLINECOUNTER" => Method::DeclineCounter,
            other => Method::Other(other.to_string()),
        }
    }
    /// The RFC 5546 spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Publish => "PUBLISH",
            Method::Request => "REQUEST",
            Method::Reply => "REPLY",
            Method::Add => "ADD",
            Method::Cancel => "CANCEL",
            Method::Refresh => "REFRESH",
            Method::Counter => "COUNTER",
            Method::DeclineCounter => "DECLINECOUNTER",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One appointment or task object read from a text.
#[derive(Debug, Clone)]
pub struct ParsedObject {
    /// Appointment (VEVENT) or task (VTODO).
    pub kind: ItemKind,
    /// The object.
    pub object: CalendarObject,
}

/// A VFREEBUSY (RFC 5545 §3.6.4): a request for free/busy time, or a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeBusy {
    /// UID, if given.
    pub uid: Option<String>,
    /// Who asks (ORGANIZER).
    pub organizer: Option<Organizer>,
    /// Whose time is asked about (ATTENDEE).
    pub attendees: Vec<Attendee>,
    /// The span asked about.
    pub start: Option<i64>,
    /// End of the span.
    pub end: Option<i64>,
    /// FREEBUSY periods given (a reply): (start, end, FBTYPE).
    pub periods: Vec<(i64, i64, String)>,
}

/// What one VCALENDAR holds.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// METHOD, if the object is an iTIP message.
    pub method: Option<Method>,
    /// PRODID: which product wrote it.
    pub prodid: Option<String>,
    /// Appointments and tasks, one per UID and kind, in order of appearance.
    pub objects: Vec<ParsedObject>,
    /// VFREEBUSY components.
    pub freebusy: Vec<FreeBusy>,
    /// What was dropped or repaired, and why.
    pub problems: Vec<String>,
}

/// Parses a text that must hold exactly one VCALENDAR (an iMIP part,
/// RFC 6047 §2.4).
pub fn parse_one(text: &str, ctx: &Context) -> Result<Parsed, ParseError> {
    let mut all = parse_all(text, ctx)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(ParseError::NotICalendar("no VCALENDAR".into())),
        n => Err(ParseError::SeveralCalendars(n)),
    }
}

/// Parses every VCALENDAR of a text (an .ics file may hold several).
pub fn parse_all(text: &str, ctx: &Context) -> Result<Vec<Parsed>, ParseError> {
    check(text, &ctx.limits)?;
    let repaired = repair(text);
    let mut parser = Parser::new(&repaired);
    let mut out = Vec::new();
    let mut stray = Vec::new();
    loop {
        match parser.entry() {
            Entry::ICalendar(ical) => {
                if ical
                    .components
                    .first()
                    .is_some_and(|c| c.component_type == ICalendarComponentType::VCalendar)
                {
                    let mut p = convert(&ical, ctx);
                    p.problems.append(&mut stray);
                    out.push(p);
                } else {
                    stray.push("a component outside any VCALENDAR was ignored".to_string());
                }
            }
            Entry::Eof => break,
            Entry::TooManyComponents => {
                return Err(ParseError::TooLarge("too many components".into()));
            }
            Entry::VCard(_) => stray.push("a vCard was ignored".into()),
            Entry::InvalidLine(l) => stray.push(format!(
                "invalid line ignored: {:?}",
                l.chars().take(60).collect::<String>()
            )),
            Entry::UnexpectedComponentEnd { .. } => {
                stray.push("an END without its BEGIN was ignored".into())
            }
            Entry::UnterminatedComponent(c) => {
                stray.push(format!("{c} was not terminated"));
            }
            _ => stray.push("unrecognised content ignored".into()),
        }
        if out.len() + stray.len() > ctx.limits.max_components {
            return Err(ParseError::TooLarge("too many objects".into()));
        }
    }
    if out.is_empty() {
        return Err(ParseError::NotICalendar(
            stray
                .first()
                .cloned()
                .unwrap_or_else(|| "no BEGIN:VCALENDAR".into()),
        ));
    }
    Ok(out)
}

/// Refuses, before any parsing, texts beyond the limits: by size, by lines,
/// by components and by BEGIN nesting (whether or not the ENDs balance).
fn check(text: &str, limits: &Limits) -> Result<(), ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLarge(format!(
            "{} octets (limit {})",
            text.len(),
            limits.max_bytes
        )));
    }
    let mut lines = 0usize;
    let mut depth = 0usize;
    let mut components = 0usize;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            continue;
        }
        lines += 1;
        if lines > limits.max_lines {
            return Err(ParseError::TooLarge(format!(
                "more than {} lines",
                limits.max_lines
            )));
        }
        let head = line.get(..6).unwrap_or("");
        if head.eq_ignore_ascii_case("BEGIN:") {
            depth += 1;
            components += 1;
            if depth > limits.max_depth {
                return Err(ParseError::TooLarge(format!(
                    "components nested deeper than {}",
                    limits.max_depth
                )));
            }
            if components > limits.max_components {
                return Err(ParseError::TooLarge(format!(
                    "more than {} components",
                    limits.max_components
                )));
            }
        } else if line
            .get(..4)
            .is_some_and(|h| h.eq_ignore_ascii_case("END:"))
        {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

/// Repairs what senders are known to break:
/// - a continuation line that starts with U+00A0 (seen from mail clients
///   that turn the folding space into a no-break space) is a continuation;
/// - a NUL is not text (RFC 5545 §3.1: control characters are not allowed).
fn repair(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\0' => {}
            '\n' if chars.peek() == Some(&'\u{a0}') => {
                chars.next();
                out.push_str("\n ");
            }
            c => out.push(c),
        }
    }
    out
}

/// The TZIDs of a calendar and how each is read.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    zones: HashMap<String, Zone>,
    /// The custom ones, to store with the objects that use them.
    custom: HashMap<String, ZoneRule>,
    default: Option<chrono_tz::Tz>,
}

impl Zones {
    /// The zones an object's stored text relies on.
    pub(crate) fn for_object(obj: &CalendarObject, default: chrono_tz::Tz) -> Zones {
        let mut z = Zones {
            default: Some(default),
            ..Zones::default()
        };
        for rule in &obj.zones {
            if let Some(c) = CustomZone::new(rule.clone()) {
                z.zones.insert(rule.tzid.clone(), Zone::Custom(Arc::new(c)));
                z.custom.insert(rule.tzid.clone(), rule.clone());
            }
        }
        z
    }

    /// How a TZID reads: as the calendar defines it, else by name.
    pub(crate) fn get(&mut self, tzid: &str) -> Option<Zone> {
        if let Some(z) = self.zones.get(tzid) {
            return Some(z.clone());
        }
        let z = zone::by_name(tzid)?;
        self.zones.insert(tzid.to_string(), z.clone());
        Some(z)
    }

    /// The zone floating times and dates are read in.
    pub(crate) fn default_zone(&self) -> Zone {
        match self.default {
            Some(tz) if tz == chrono_tz::UTC => Zone::Utc,
            Some(tz) => Zone::Iana(tz),
            None => Zone::Utc,
        }
    }

    /// The zone a CalTime's form stands for.
    pub(crate) fn zone_of(&mut self, form: &TimeForm) -> Zone {
        match form {
            TimeForm::Utc => Zone::Utc,
            TimeForm::Date | TimeForm::Floating => self.default_zone(),
            TimeForm::Zone(tzid) => self.get(tzid).unwrap_or_else(|| self.default_zone()),
        }
    }
}

fn text_of(e: &ICalendarEntry) -> Option<&str> {
    e.values.first().and_then(|v| v.as_text())
}

fn param_text<'a>(e: &'a ICalendarEntry, name: &ICalendarParameterName) -> Option<&'a str> {
    e.parameter(name).and_then(|v| v.as_text())
}

fn params_texts<'a>(
    e: &'a ICalendarEntry,
    name: &'a ICalendarParameterName,
) -> impl Iterator<Item = &'a str> + 'a {
    e.parameters(name).filter_map(|v| v.as_text())
}

/// An address from a cal-address (`mailto:a@b`), lower-cased.
pub(crate) fn address(s: &str) -> String {
    let s = s.trim();
    let s = if s
        .as_bytes()
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"mailto:"))
    {
        // The first seven bytes are ASCII: 7 is a char boundary.
        &s[7..]
    } else {
        s
    };
    s.trim().to_lowercase()
}

fn integer(e: &ICalendarEntry) -> Option<i64> {
    match e.values.first()? {
        ICalendarValue::Integer(i) => Some(*i),
        ICalendarValue::Text(t) => {
            let t = t.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                // Digits beyond i64 saturate.
                Some(t.parse::<i64>().unwrap_or(i64::MAX))
            } else {
                t.parse().ok()
            }
        }
        _ => None,
    }
}

pub(crate) fn local_string(dt: &NaiveDateTime, date: bool) -> String {
    if date {
        dt.format("%Y%m%d").to_string()
    } else {
        dt.format("%Y%m%dT%H%M%S").to_string()
    }
}

/// A PartialDateTime with the entry's TZID, as a [`CalTime`].
fn cal_time(
    p: &PartialDateTime,
    tzid: Option<&str>,
    zones: &mut Zones,
    problems: &mut Vec<String>,
    what: &str,
) -> Option<CalTime> {
    let Some(dt) = p.to_date_time() else {
        problems.push(format!("{what}: not a date that exists"));
        return None;
    };
    let date = p.hour.is_none();
    if date {
        let utc = zones.default_zone().to_utc(dt.date_time);
        return Some(CalTime {
            utc,
            local: local_string(&dt.date_time, true),
            form: TimeForm::Date,
        });
    }
    if let Some(off) = dt.offset {
        // A UTC time (`Z`): any TZID with it is wrong (RFC 5545 §3.3.5) and ignored.
        if tzid.is_some_and(|t| !t.trim().is_empty()) {
            problems.push(format!("{what}: TZID on a UTC time ignored"));
        }
        let utc = dt.date_time.and_utc().timestamp() - off.local_minus_utc() as i64;
        let local = chrono::DateTime::from_timestamp(utc, 0)?.naive_utc();
        return Some(CalTime {
            utc,
            local: local_string(&local, false),
            form: TimeForm::Utc,
        });
    }
    match tzid
        .map(|t| t.trim().trim_matches('"'))
        .filter(|t| !t.is_empty())
    {
        None => Some(CalTime {
            utc: zones.default_zone().to_utc(dt.date_time),
            local: local_string(&dt.date_time, false),
            form: TimeForm::Floating,
        }),
        Some(t) => {
            let zone = match zones.get(t) {
                Some(z) => z,
                None => {
                    problems.push(format!(
                        "{what}: TZID {:?} is defined nowhere; read as floating",
                        t.chars().take(60).collect::<String>()
                    ));
                    zones.default_zone()
                }
            };
            Some(CalTime {
                utc: zone.to_utc(dt.date_time),
                local: local_string(&dt.date_time, false),
                form: TimeForm::Zone(t.to_string()),
            })
        }
    }
}

fn entry_time(
    e: &ICalendarEntry,
    zones: &mut Zones,
    problems: &mut Vec<String>,
) -> Option<CalTime> {
    let what = e.name.as_str();
    match e.values.first() {
        Some(ICalendarValue::PartialDateTime(p)) => cal_time(
            p,
            param_text(e, &ICalendarParameterName::Tzid),
            zones,
            problems,
            what,
        ),
        Some(ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Range {
            start, ..
        }))
        | Some(ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Duration {
            start,
            ..
        })) => cal_time(
            start,
            param_text(e, &ICalendarParameterName::Tzid),
            zones,
            problems,
            what,
        ),
        _ => {
            problems.push(format!("{what}: not a date or time"));
            None
        }
    }
}

fn entry_times(
    e: &ICalendarEntry,
    zones: &mut Zones,
    problems: &mut Vec<String>,
    out: &mut Vec<CalTime>,
) {
    let tzid = param_text(e, &ICalendarParameterName::Tzid).map(str::to_string);
    for v in &e.values {
        let p = match v {
            ICalendarValue::PartialDateTime(p) => p.as_ref(),
            ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Range {
                start, ..
            })
            | ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Duration {
                start, ..
            }) => start,
            _ => continue,
        };
        if out.len() >= 10_000 {
            problems.push(format!("{}: more than 10,000 values", e.name.as_str()));
            return;
        }
        if let Some(t) = cal_time(p, tzid.as_deref(), zones, problems, e.name.as_str()) {
            out.push(t);
        }
    }
}

pub(crate) fn duration_secs(d: &ICalendarDuration) -> i64 {
    let s = (d.weeks as i64) * 7 * 86400
        + (d.days as i64) * 86400
        + (d.hours as i64) * 3600
        + (d.minutes as i64) * 60
        + d.seconds as i64;
    if d.neg { -s } else { s }
}

fn cut(s: &str, max: usize, what: &str, problems: &mut Vec<String>) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    problems.push(format!("{what}: longer than {max} octets; cut"));
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The `mailto:` values of a DELEGATED-TO/FROM parameter.
fn delegates(e: &ICalendarEntry, name: &ICalendarParameterName) -> Vec<String> {
    params_texts(e, name)
        .flat_map(|v| v.split(','))
        .map(|v| address(v.trim().trim_matches('"')))
        .filter(|v| !v.is_empty())
        .collect()
}

fn organizer(e: &ICalendarEntry) -> Option<Organizer> {
    let email = address(text_of(e)?);
    if email.is_empty() {
        return None;
    }
    Some(Organizer {
        email,
        name: param_text(e, &ICalendarParameterName::Cn).map(str::to_string),
        sent_by: param_text(e, &ICalendarParameterName::SentBy).map(address),
    })
}

fn attendee(e: &ICalendarEntry) -> Option<Attendee> {
    let email = address(text_of(e)?);
    if email.is_empty() {
        return None;
    }
    Some(Attendee {
        email,
        name: param_text(e, &ICalendarParameterName::Cn).map(str::to_string),
        role: param_text(e, &ICalendarParameterName::Role)
            .map(Role::parse)
            .unwrap_or_default(),
        partstat: param_text(e, &ICalendarParameterName::Partstat)
            .map(PartStat::parse)
            .unwrap_or_default(),
        rsvp: e
            .parameter(&ICalendarParameterName::Rsvp)
            .is_some_and(|v| match v {
                ICalendarParameterValue::Bool(b) => *b,
                other => other
                    .as_text()
                    .is_some_and(|t| t.eq_ignore_ascii_case("TRUE")),
            }),
        cutype: param_text(e, &ICalendarParameterName::Cutype)
            .map(|c| c.to_ascii_uppercase())
            .filter(|c| c != "INDIVIDUAL"),
        delegated_to: delegates(e, &ICalendarParameterName::DelegatedTo),
        delegated_from: delegates(e, &ICalendarParameterName::DelegatedFrom),
        sent_by: param_text(e, &ICalendarParameterName::SentBy).map(address),
    })
}

fn alarm(c: &ICalendarComponent) -> Alarm {
    let mut a = Alarm::default();
    for e in &c.entries {
        match e.name {
            ICalendarProperty::Action => {
                a.action = text_of(e).unwrap_or("").to_ascii_uppercase();
            }
            ICalendarProperty::Trigger => {
                a.trigger = match e.values.first() {
                    Some(ICalendarValue::Duration(d)) => d.to_string(),
                    Some(ICalendarValue::PartialDateTime(p)) => p
                        .to_date_time()
                        .map(|d| local_string(&d.date_time, false) + "Z")
                        .unwrap_or_default(),
                    Some(v) => v.as_text().unwrap_or("").to_string(),
                    None => String::new(),
                };
            }
            ICalendarProperty::Description => {
                a.description = text_of(e).map(str::to_string);
            }
            _ => {}
        }
    }
    a
}

/// One VEVENT/VTODO → a component. `None` without a UID.
fn component(
    ical: &ICalendar,
    c: &ICalendarComponent,
    zones: &mut Zones,
    limits: &Limits,
    problems: &mut Vec<String>,
) -> Option<(String, CalendarComponent)> {
    let mut uid = None;
    let mut out = CalendarComponent::default();
    let mut dtend = None;
    let mut duration = None;
    for e in &c.entries {
        match &e.name {
            ICalendarProperty::Uid if uid.is_none() => {
                uid = text_of(e).map(|u| cut(u.trim(), 1024, "UID", problems));
            }
            ICalendarProperty::RecurrenceId if out.recurrence_id.is_none() => {
                out.recurrence_id = entry_time(e, zones, problems);
                // calcard keeps RANGE only when it is THISANDFUTURE (RFC 5545 §3.2.13).
                out.this_and_future = e.has_parameter(&ICalendarParameterName::Range);
            }
            ICalendarProperty::Sequence => {
                // RFC 5545 §3.8.7.4: an integer; beyond 2^31 − 1 it saturates.
                out.sequence = integer(e).unwrap_or(0).clamp(0, i32::MAX as i64) as u32;
            }
            ICalendarProperty::Dtstamp => {
                out.dtstamp = entry_time(e, zones, problems).map(|t| t.utc);
            }
            ICalendarProperty::Organizer if out.organizer.is_none() => {
                out.organizer = organizer(e);
            }
            ICalendarProperty::Attendee => {
                if out.attendees.len() >= limits.max_attendees {
                    if out.attendees.len() == limits.max_attendees {
                        problems.push(format!(
                            "more than {} attendees; the rest dropped",
                            limits.max_attendees
                        ));
                    }
                    continue;
                }
                if let Some(a) = attendee(e)
                    && !out.attendees.iter().any(|b| b.email == a.email)
                {
                    out.attendees.push(a);
                }
            }
            ICalendarProperty::Summary if out.summary.is_none() => {
                out.summary = text_of(e).map(|t| cut(t, limits.max_value, "SUMMARY", problems));
            }
            ICalendarProperty::Location if out.location.is_none() => {
                out.location = text_of(e).map(|t| cut(t, limits.max_value, "LOCATION", problems));
            }
            ICalendarProperty::Description if out.description.is_none() => {
                out.description =
                    text_of(e).map(|t| cut(t, limits.max_value, "DESCRIPTION", problems));
            }
            ICalendarProperty::Comment if out.comment.is_none() => {
                out.comment = text_of(e).map(|t| cut(t, limits.max_value, "COMMENT", problems));
            }
            ICalendarProperty::Categories => {
                for v in &e.values {
                    if let Some(t) = v.as_text()
                        && !t.trim().is_empty()
                        && out.categories.len() < 1000
                    {
                        out.categories
                            .push(cut(t.trim(), 1024, "CATEGORIES", problems));
                    }
                }
            }
            ICalendarProperty::Status if out.status.is_none() => {
                out.status = text_of(e).map(Status::parse);
            }
            ICalendarProperty::Transp if out.transparency.is_none() => {
                out.transparency = text_of(e).map(|t| t.trim().to_ascii_uppercase());
            }
            ICalendarProperty::Class if out.class.is_none() => {
                out.class = text_of(e).map(|t| t.trim().to_ascii_uppercase());
            }
            ICalendarProperty::Priority => {
                out.priority = integer(e).map(|p| p.clamp(0, 9) as u8);
            }
            ICalendarProperty::Dtstart if out.start.is_none() => {
                out.start = entry_time(e, zones, problems);
            }
            ICalendarProperty::Dtend if dtend.is_none() => {
                dtend = entry_time(e, zones, problems);
            }
            ICalendarProperty::Due if out.due.is_none() => {
                out.due = entry_time(e, zones, problems);
            }
            ICalendarProperty::Duration if duration.is_none() => {
                duration = match e.values.first() {
                    Some(ICalendarValue::Duration(d)) => Some(duration_secs(d)),
                    _ => {
                        problems.push("DURATION: not a duration".into());
                        None
                    }
                };
            }
            ICalendarProperty::Rrule if out.rrule.is_none() => match e.values.first() {
                Some(ICalendarValue::RecurrenceRule(r)) => out.rrule = Some(r.to_string()),
                _ => problems.push("RRULE: not a recurrence rule; ignored".into()),
            },
            ICalendarProperty::Rdate => entry_times(e, zones, problems, &mut out.rdates),
            ICalendarProperty::Exdate => entry_times(e, zones, problems, &mut out.exdates),
            ICalendarProperty::PercentComplete => {
                out.percent_complete = integer(e).map(|p| p.clamp(0, 100) as u8);
            }
            ICalendarProperty::Completed => {
                out.completed = entry_time(e, zones, problems).map(|t| t.utc);
            }
            _ => {}
        }
    }
    for id in &c.component_ids {
        if let Some(sub) = ical.components.get(*id as usize)
            && sub.component_type == ICalendarComponentType::VAlarm
            && out.alarms.len() < 100
        {
            out.alarms.push(alarm(sub));
        }
    }
    let Some(uid) = uid.filter(|u| !u.is_empty()) else {
        problems.push(format!(
            "a {} without UID was dropped",
            c.component_type.as_str()
        ));
        return None;
    };
    if let Some(start) = &out.start {
        out.all_day = start.is_date();
        if let Some(tzid) = start.tzid() {
            out.time_zone = zones.get(tzid).and_then(|z| z.iana_name());
        }
    }
    // RFC 5545 §3.6.1: DTEND, else DTSTART + DURATION, else a DATE lasts a
    // day and a DATE-TIME an instant.
    out.duration = duration;
    out.end = match (dtend, &out.start, duration) {
        (Some(end), Some(start), _) if end.utc < start.utc => {
            problems.push("DTEND before DTSTART; read as DTSTART".into());
            Some(start.clone())
        }
        (Some(end), _, _) => Some(end),
        (None, Some(start), Some(d)) => Some(shift(start, d, zones)),
        (None, Some(start), None) if start.is_date() => Some(shift(start, 86400, zones)),
        _ => None,
    };
    Some((uid, out))
}

/// A time moved by `secs`: nominal days for DATEs and whole-day amounts
/// (RFC 5545 §3.3.6), exact seconds otherwise.
pub(crate) fn shift(t: &CalTime, secs: i64, zones: &mut Zones) -> CalTime {
    let local = parse_local(&t.local).unwrap_or_default();
    if t.is_date() || (secs % 86400 == 0 && t.form != TimeForm::Utc) {
        let Some(moved) = local.checked_add_signed(chrono::Duration::seconds(secs)) else {
            return t.clone();
        };
        let zone = zones.zone_of(&t.form);
        CalTime {
            utc: zone.to_utc(moved),
            local: local_string(&moved, t.is_date()),
            form: t.form.clone(),
        }
    } else {
        let utc = t.utc.saturating_add(secs);
        let zone = zones.zone_of(&t.form);
        let local = zone.to_local(utc);
        CalTime {
            utc,
            local: local_string(&local, false),
            form: t.form.clone(),
        }
    }
}

pub(crate) fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// A VTIMEZONE's observances.
fn zone_rule(ical: &ICalendar, c: &ICalendarComponent) -> Option<ZoneRule> {
    let tzid = c
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Tzid)
        .and_then(text_of)?
        .to_string();
    let mut observances = Vec::new();
    for id in c.component_ids.iter().take(500) {
        let Some(sub) = ical.components.get(*id as usize) else {
            continue;
        };
        if !matches!(
            sub.component_type,
            ICalendarComponentType::Standard | ICalendarComponentType::Daylight
        ) {
            continue;
        }
        let mut o = Observance::default();
        let mut ok = (false, false, false);
        for e in &sub.entries {
            match (&e.name, e.values.first()) {
                (ICalendarProperty::Dtstart, Some(ICalendarValue::PartialDateTime(p))) => {
                    if let Some(d) = p.to_date_time() {
                        o.start = local_string(&d.date_time, false);
                        ok.0 = true;
                    }
                }
                (ICalendarProperty::Tzoffsetfrom, Some(v)) => {
                    if let Some(s) = offset(v) {
                        o.offset_from = s;
                        ok.1 = true;
                    }
                }
                (ICalendarProperty::Tzoffsetto, Some(v)) => {
                    if let Some(s) = offset(v) {
                        o.offset_to = s;
                        ok.2 = true;
                    }
                }
                (ICalendarProperty::Rrule, Some(ICalendarValue::RecurrenceRule(r))) => {
                    o.rrule = Some(r.to_string());
                }
                (ICalendarProperty::Rdate, _) => {
                    for v in e.values.iter().take(1000) {
                        if let ICalendarValue::PartialDateTime(p) = v
                            && let Some(d) = p.to_date_time()
                        {
                            o.rdates.push(local_string(&d.date_time, false));
                        }
                    }
                }
                _ => {}
            }
        }
        if ok == (true, true, true) {
            observances.push(o);
        }
    }
    (!observances.is_empty()).then_some(ZoneRule { tzid, observances })
}

/// A UTC offset value (`+0100`, `-0530`, `+013045`) in seconds.
fn offset(v: &ICalendarValue) -> Option<i32> {
    match v {
        ICalendarValue::PartialDateTime(p) => {
            let secs = p.tz_hour? as i32 * 3600 + p.tz_minute.unwrap_or(0) as i32 * 60;
            Some(if p.tz_minus { -secs } else { secs })
        }
        ICalendarValue::Text(t) | ICalendarValue::Uri(calcard::icalendar::Uri::Location(t)) => {
            let t = t.trim();
            let (sign, rest) = match t.as_bytes().first()? {
                b'+' => (1, &t[1..]),
                b'-' => (-1, &t[1..]),
                _ => (1, t),
            };
            if rest.len() < 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let h: i32 = rest[0..2].parse().ok()?;
            let m: i32 = rest[2..4].parse().ok()?;
            let s: i32 = rest.get(4..6).and_then(|s| s.parse().ok()).unwrap_or(0);
            Some(sign * (h * 3600 + m * 60 + s))
        }
        ICalendarValue::Integer(i) => {
            let i = *i as i32;
            let (h, m) = (i / 100, i % 100);
            Some(h * 3600 + m * 60)
        }
        _ => None,
    }
}

/// The TZIDs a component's properties name.
fn tzids_of(ical: &ICalendar, c: &ICalendarComponent, out: &mut BTreeSet<String>) {
    let subs = c
        .component_ids
        .iter()
        .filter_map(|id| ical.components.get(*id as usize));
    for comp in std::iter::once(c).chain(subs) {
        for e in &comp.entries {
            for t in params_texts(e, &ICalendarParameterName::Tzid) {
                out.insert(t.trim().trim_matches('"').to_string());
            }
        }
    }
}

/// The years a zone is used in, by DTSTART of the components naming it, and
/// the year after each (for what recurs).
fn years_using(ical: &ICalendar, tzid: &str) -> BTreeSet<i32> {
    let mut years = BTreeSet::new();
    for c in &ical.components {
        for e in &c.entries {
            if !matches!(
                e.name,
                ICalendarProperty::Dtstart | ICalendarProperty::Dtend | ICalendarProperty::Due
            ) {
                continue;
            }
            if param_text(e, &ICalendarParameterName::Tzid)
                .is_some_and(|t| t.trim().trim_matches('"') == tzid)
                && let Some(ICalendarValue::PartialDateTime(p)) = e.values.first()
                && let Some(y) = p.year
            {
                years.insert(y as i32);
                years.insert(y as i32 + 1);
            }
        }
        if years.len() > 20 {
            break;
        }
    }
    years
}

/// Whether a VTIMEZONE agrees with the known zone over the years it is used.
fn agrees(known: &Zone, custom: &CustomZone, years: &BTreeSet<i32>) -> bool {
    years.iter().all(|&y| {
        [(1, 15), (4, 15), (7, 15), (10, 15), (12, 15)]
            .iter()
            .filter_map(|&(m, d)| NaiveDate::from_ymd_opt(y, m, d))
            .filter_map(|d| d.and_hms_opt(12, 0, 0))
            .all(|t| {
                let utc = t.and_utc().timestamp();
                known.offset_at(utc) == custom.offset_at(utc)
            })
    })
}

/// Every VTIMEZONE of a calendar, read per the module's rules (see [`crate::zone`]).
fn zones_of(ical: &ICalendar, default: chrono_tz::Tz, problems: &mut Vec<String>) -> Zones {
    let mut zones = Zones {
        default: Some(default),
        ..Zones::default()
    };
    for c in &ical.components {
        if c.component_type != ICalendarComponentType::VTimezone {
            continue;
        }
        let Some(rule) = zone_rule(ical, c) else {
            // A VTIMEZONE without usable observances: its name may still say.
            continue;
        };
        if zones.zones.contains_key(&rule.tzid) {
            problems.push(format!(
                "VTIMEZONE {:?} defined twice; the first kept",
                rule.tzid
            ));
            continue;
        }
        let known = c.timezone().and_then(|(_, tz)| match tz {
            calcard::common::timezone::Tz::Tz(t) => Some(if t == chrono_tz::UTC {
                Zone::Utc
            } else {
                Zone::Iana(t)
            }),
            calcard::common::timezone::Tz::Fixed(o) => Some(Zone::Fixed(o.local_minus_utc())),
            calcard::common::timezone::Tz::Floating => None,
        });
        let custom = CustomZone::new(rule.clone());
        let chosen = match (known, custom) {
            (Some(k), Some(c)) => {
                let years = years_using(ical, &rule.tzid);
                if agrees(&k, &c, &years) {
                    k
                } else {
                    zones.custom.insert(rule.tzid.clone(), rule.clone());
                    Zone::Custom(Arc::new(c))
                }
            }
            (Some(k), None) => k,
            (None, Some(c)) => {
                zones.custom.insert(rule.tzid.clone(), rule.clone());
                Zone::Custom(Arc::new(c))
            }
            (None, None) => continue,
        };
        zones.zones.insert(rule.tzid.clone(), chosen);
    }
    zones
}

/// FNV-1a, for UIDs made up for components that came without one.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Gives every VEVENT/VTODO without a UID one made from its content (the
/// same content gets the same UID, so importing a file twice does not
/// double it), and says so.
fn with_uids<'a>(
    ical: &'a ICalendar,
    problems: &mut Vec<String>,
) -> std::borrow::Cow<'a, ICalendar> {
    let lacking: Vec<usize> = ical.components[0]
        .component_ids
        .iter()
        .map(|i| *i as usize)
        .filter(|&i| {
            ical.components.get(i).is_some_and(|c| {
                matches!(
                    c.component_type,
                    ICalendarComponentType::VEvent | ICalendarComponentType::VTodo
                ) && !c.entries.iter().any(|e| e.name == ICalendarProperty::Uid)
            })
        })
        .collect();
    if lacking.is_empty() {
        return std::borrow::Cow::Borrowed(ical);
    }
    let mut owned = ical.clone();
    for i in lacking {
        let mut text = String::new();
        for e in &owned.components[i].entries {
            let _ = e.write_to(&mut text);
        }
        let uid = format!("postgate-{:016x}", fnv(text.as_bytes()));
        problems.push(format!(
            "a {} without UID was given UID {uid}",
            owned.components[i].component_type.as_str()
        ));
        owned.components[i].entries.insert(
            0,
            ICalendarEntry::new(ICalendarProperty::Uid).with_value(uid),
        );
    }
    std::borrow::Cow::Owned(owned)
}

/// An object's kind and UID.
type Key = (ItemKind, String);

/// Converts one parsed VCALENDAR.
pub(crate) fn convert(ical: &ICalendar, ctx: &Context) -> Parsed {
    let mut problems = Vec::new();
    let ical = &*with_uids(ical, &mut problems);
    let root = &ical.components[0];
    let method = root
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Method)
        .and_then(text_of)
        .map(Method::parse);
    let prodid = root
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Prodid)
        .and_then(text_of)
        .map(|s| s.chars().take(200).collect());
    let mut zones = zones_of(ical, ctx.zone, &mut problems);
    // (kind, uid) → component indexes, in order of appearance.
    let mut groups: Vec<(Key, Vec<(usize, CalendarComponent)>)> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut freebusy = Vec::new();
    for &id in &root.component_ids {
        let Some(c) = ical.components.get(id as usize) else {
            continue;
        };
        let kind = match c.component_type {
            ICalendarComponentType::VEvent => ItemKind::Appointment,
            ICalendarComponentType::VTodo => ItemKind::Task,
            ICalendarComponentType::VFreebusy => {
                freebusy.push(free_busy(c, &mut zones, &mut problems));
                continue;
            }
            _ => continue,
        };
        let Some((uid, comp)) = component(ical, c, &mut zones, &ctx.limits, &mut problems) else {
            continue;
        };
        let key = (kind, uid);
        match index.get(&key) {
            Some(&i) => groups[i].1.push((id as usize, comp)),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![(id as usize, comp)]));
            }
        }
    }
    // The calendar's VTIMEZONEs by TZID, for each object's own text.
    let zone_index: Vec<(String, usize)> = root
        .component_ids
        .iter()
        .map(|i| *i as usize)
        .filter_map(|i| {
            let c = ical.components.get(i)?;
            if c.component_type != ICalendarComponentType::VTimezone {
                return None;
            }
            let tzid = c
                .entries
                .iter()
                .find(|e| e.name == ICalendarProperty::Tzid)
                .and_then(text_of)?;
            Some((tzid.to_string(), i))
        })
        .collect();
    let mut objects = Vec::with_capacity(groups.len());
    for ((kind, uid), comps) in groups {
        let mut master: Option<(usize, CalendarComponent)> = None;
        let mut overrides: Vec<(usize, CalendarComponent)> = Vec::new();
        for (id, c) in comps {
            let newer = |a: &CalendarComponent, b: &CalendarComponent| {
                (a.sequence, a.dtstamp) > (b.sequence, b.dtstamp)
            };
            if let Some(rid) = &c.recurrence_id {
                match overrides
                    .iter_mut()
                    .find(|(_, o)| o.recurrence_id.as_ref().map(|r| r.utc) == Some(rid.utc))
                {
                    Some(slot) => {
                        problems.push(format!(
                            "UID {uid}: an instance given twice; the newer kept"
                        ));
                        if newer(&c, &slot.1) {
                            *slot = (id, c);
                        }
                    }
                    None => overrides.push((id, c)),
                }
            } else {
                match &mut master {
                    Some(slot) => {
                        problems.push(format!("UID {uid}: given twice; the newer kept"));
                        if newer(&c, &slot.1) {
                            *slot = (id, c);
                        }
                    }
                    None => master = Some((id, c)),
                }
            }
        }
        let ids: Vec<usize> = master
            .iter()
            .map(|(i, _)| *i)
            .chain(overrides.iter().map(|(i, _)| *i))
            .collect();
        let mut tzids = BTreeSet::new();
        for &i in &ids {
            tzids_of(ical, &ical.components[i], &mut tzids);
        }
        let mut object = CalendarObject {
            uid,
            master: master.map(|(_, c)| c),
            overrides: overrides.into_iter().map(|(_, c)| c).collect(),
            zones: tzids
                .iter()
                .filter_map(|t| zones.custom.get(t).cloned())
                .collect(),
            counters: Vec::new(),
            ical: object_text(ical, &ids, &tzids, &zone_index),
        };
        crate::expand::settle(&mut object, ctx.zone);
        objects.push(ParsedObject { kind, object });
    }
    Parsed {
        method,
        prodid,
        objects,
        freebusy,
        problems,
    }
}

fn free_busy(c: &ICalendarComponent, zones: &mut Zones, problems: &mut Vec<String>) -> FreeBusy {
    let mut fb = FreeBusy::default();
    for e in &c.entries {
        match &e.name {
            ICalendarProperty::Uid => fb.uid = text_of(e).map(str::to_string),
            ICalendarProperty::Organizer => fb.organizer = organizer(e),
            ICalendarProperty::Attendee if fb.attendees.len() < 1000 => {
                fb.attendees.extend(attendee(e));
            }
            ICalendarProperty::Dtstart => fb.start = entry_time(e, zones, problems).map(|t| t.utc),
            ICalendarProperty::Dtend => fb.end = entry_time(e, zones, problems).map(|t| t.utc),
            ICalendarProperty::Freebusy => {
                let kind = param_text(e, &ICalendarParameterName::Fbtype)
                    .unwrap_or("BUSY")
                    .to_ascii_uppercase();
                for v in e.values.iter().take(10_000) {
                    if let ICalendarValue::Period(p) = v {
                        let (s, end) = match p {
                            calcard::icalendar::ICalendarPeriod::Range { start, end } => (
                                start.to_date_time(),
                                end.to_date_time().map(|e| e.date_time),
                            ),
                            calcard::icalendar::ICalendarPeriod::Duration { start, duration } => {
                                let s = start.to_date_time();
                                let e = s.as_ref().and_then(|s| {
                                    s.date_time.checked_add_signed(chrono::Duration::seconds(
                                        duration_secs(duration),
                                    ))
                                });
                                (s, e)
                            }
                        };
                        if let (Some(s), Some(e)) = (s, end) {
                            // FREEBUSY periods are UTC (RFC 5545 §3.8.2.6).
                            fb.periods.push((
                                s.date_time.and_utc().timestamp(),
                                e.and_utc().timestamp(),
                                kind.clone(),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    fb
}

/// The text of one object: the calendar's header (METHOD left out), the
/// VTIMEZONEs it uses, its components with their sub-components.
fn object_text(
    ical: &ICalendar,
    ids: &[usize],
    tzids: &BTreeSet<String>,
    zone_index: &[(String, usize)],
) -> String {
    let root = &ical.components[0];
    let mut out = ICalendar {
        components: vec![ICalendarComponent {
            component_type: ICalendarComponentType::VCalendar,
            entries: root
                .entries
                .iter()
                .filter(|e| e.name != ICalendarProperty::Method)
                .cloned()
                .collect(),
            component_ids: Vec::new(),
        }],
    };
    let zone_ids: Vec<usize> = zone_index
        .iter()
        .filter(|(t, _)| tzids.contains(t))
        .map(|(_, i)| *i)
        .collect();
    for &i in zone_ids.iter().chain(ids) {
        let new = copy_component(ical, i, &mut out, 0);
        out.components[0].component_ids.push(new);
    }
    if !out.components[0]
        .entries
        .iter()
        .any(|e| e.name == ICalendarProperty::Version)
    {
        out.components[0].entries.insert(
            0,
            ICalendarEntry::new(ICalendarProperty::Version).with_value("2.0".to_string()),
        );
    }
    out.to_string()
}

/// Copies component `i` of `from` (and its sub-components, a few levels
/// down) into `to`; returns its new id.
pub(crate) fn copy_component(from: &ICalendar, i: usize, to: &mut ICalendar, depth: usize) -> u32 {
    let c = &from.components[i];
    let id = to.components.len() as u32;
    to.components.push(ICalendarComponent {
        component_type: c.component_type.clone(),
        entries: c.entries.clone(),
        component_ids: Vec::new(),
    });
    if depth < 4 {
        for &sub in &c.component_ids {
            if (sub as usize) < from.components.len() {
                let new = copy_component(from, sub as usize, to, depth + 1);
                to.components[id as usize].component_ids.push(new);
            }
        }
    }
    id
}

impl ParsedObject {
    /// The year of the object's first start, for logs.
    pub fn first_year(&self) -> Option<i32> {
        let t = self.object.main()?.start.as_ref()?.utc;
        chrono::DateTime::from_timestamp(t, 0).map(|d| d.year())
    }
}
