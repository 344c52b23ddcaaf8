//! Writing iCalendar: objects the post office makes, edits to objects it
//! holds, and the iTIP messages it sends (RFC 5546 §3.2).
//!
//! Edits work on the object's own text ([`Doc`]), not on its fields, so a
//! property the post office does not model (an X- property, a VALARM's
//! details, an ATTACH) survives every change; the fields are read back from
//! the edited text ([`Doc::into_object`]).
//!
//! A [`Doc`]'s scheduling components are in the order of the object's:
//! the master first, then the overrides ([`crate::parse`] writes them so).
use crate::parse::{Context, Method, ParsedObject, local_string, parse_local, parse_one};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarValue,
    ICalendarValueType, Uri,
};
use calcard::{Entry, Parser};
use chrono::{Datelike, Timelike};
use postgate_types::ItemKind;
use postgate_types::calendar::{
    Attendee, CalTime, CalendarObject, Counter, Organizer, PartStat, Role, Status, TimeForm,
};

/// What the post office writes in PRODID (RFC 5545 §3.7.3).
pub const PRODID: &str = "-//Postgate//Postgate Calendar//EN";

/// A UTC DATE-TIME value.
pub fn utc_value(utc: i64) -> PartialDateTime {
    let dt = chrono::DateTime::from_timestamp(utc, 0).unwrap_or_default();
    PartialDateTime {
        year: Some(dt.year().clamp(0, 9999) as u16),
        month: Some(dt.month() as u8),
        day: Some(dt.day() as u8),
        hour: Some(dt.hour() as u8),
        minute: Some(dt.minute() as u8),
        second: Some(dt.second() as u8),
        tz_hour: Some(0),
        tz_minute: Some(0),
        tz_minus: false,
    }
}

/// A DATE / DATE-TIME property for a [`CalTime`], as its form says.
pub(crate) fn time_entry(prop: ICalendarProperty, t: &CalTime) -> ICalendarEntry {
    let local = parse_local(&t.local).unwrap_or_default();
    let mut v = PartialDateTime {
        year: Some(local.year().clamp(0, 9999) as u16),
        month: Some(local.month() as u8),
        day: Some(local.day() as u8),
        ..PartialDateTime::default()
    };
    let e = ICalendarEntry::new(prop);
    match &t.form {
        TimeForm::Date => {
            return e
                .with_param(ICalendarParameter::new(
                    ICalendarParameterName::Value,
                    ICalendarParameterValue::Value(ICalendarValueType::Date),
                ))
                .with_value(v);
        }
        TimeForm::Utc => return e.with_value(utc_value(t.utc)),
        TimeForm::Floating | TimeForm::Zone(_) => {
            v.hour = Some(local.hour() as u8);
            v.minute = Some(local.minute() as u8);
            v.second = Some(local.second() as u8);
        }
    }
    match &t.form {
        TimeForm::Zone(z) => e
            .with_param(ICalendarParameter::new(
                ICalendarParameterName::Tzid,
                ICalendarParameterValue::Text(z.clone()),
            ))
            .with_value(v),
        _ => e.with_value(v),
    }
}

fn text_entry(prop: ICalendarProperty, s: &str) -> ICalendarEntry {
    ICalendarEntry::new(prop).with_value(s.to_string())
}

fn mailto(email: &str) -> ICalendarValue {
    ICalendarValue::Uri(Uri::Location(format!("mailto:{email}")))
}

fn text_param(name: ICalendarParameterName, v: &str) -> ICalendarParameter {
    ICalendarParameter::new(name, ICalendarParameterValue::Text(v.to_string()))
}

pub(crate) fn organizer_entry(o: &Organizer) -> ICalendarEntry {
    let mut e = ICalendarEntry::new(ICalendarProperty::Organizer).with_value(mailto(&o.email));
    if let Some(n) = &o.name {
        e.add_param(text_param(ICalendarParameterName::Cn, n));
    }
    if let Some(s) = &o.sent_by {
        e.add_param(ICalendarParameter::new(
            ICalendarParameterName::SentBy,
            ICalendarParameterValue::Uri(Uri::Location(format!("mailto:{s}"))),
        ));
    }
    e
}

pub(crate) fn attendee_entry(a: &Attendee) -> ICalendarEntry {
    let mut e = ICalendarEntry::new(ICalendarProperty::Attendee).with_value(mailto(&a.email));
    if let Some(n) = &a.name {
        e.add_param(text_param(ICalendarParameterName::Cn, n));
    }
    if let Some(c) = &a.cutype {
        e.add_param(text_param(ICalendarParameterName::Cutype, c));
    }
    e.add_param(text_param(ICalendarParameterName::Role, a.role.as_str()));
    e.add_param(text_param(
        ICalendarParameterName::Partstat,
        a.partstat.as_str(),
    ));
    if a.rsvp {
        e.add_param(ICalendarParameter::new(
            ICalendarParameterName::Rsvp,
            ICalendarParameterValue::Bool(true),
        ));
    }
    for d in &a.delegated_to {
        e.add_param(ICalendarParameter::new(
            ICalendarParameterName::DelegatedTo,
            ICalendarParameterValue::Uri(Uri::Location(format!("mailto:{d}"))),
        ));
    }
    for d in &a.delegated_from {
        e.add_param(ICalendarParameter::new(
            ICalendarParameterName::DelegatedFrom,
            ICalendarParameterValue::Uri(Uri::Location(format!("mailto:{d}"))),
        ));
    }
    e
}

fn entry_email(e: &ICalendarEntry) -> Option<String> {
    e.values
        .first()
        .and_then(|v| v.as_text())
        .map(crate::parse::address)
}

/// An appointment or task the post office makes (the client API, an import).
#[derive(Debug, Clone, Default)]
pub struct NewItem {
    /// Appointment or task.
    pub kind: Option<ItemKind>,
    /// UID.
    pub uid: String,
    /// SEQUENCE.
    pub sequence: u32,
    /// DTSTAMP, Unix seconds.
    pub dtstamp: i64,
    /// ORGANIZER.
    pub organizer: Option<Organizer>,
    /// ATTENDEEs.
    pub attendees: Vec<Attendee>,
    /// SUMMARY.
    pub summary: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
    /// DESCRIPTION.
    pub description: Option<String>,
    /// DTSTART.
    pub start: Option<CalTime>,
    /// DTEND (appointments).
    pub end: Option<CalTime>,
    /// DUE (tasks).
    pub due: Option<CalTime>,
    /// RRULE, checked by the caller.
    pub rrule: Option<String>,
    /// STATUS.
    pub status: Option<Status>,
    /// PRIORITY.
    pub priority: Option<u8>,
    /// PERCENT-COMPLETE.
    pub percent_complete: Option<u8>,
    /// COMPLETED.
    pub completed: Option<i64>,
}

/// The iCalendar text of a new object, with a VTIMEZONE for each IANA zone
/// its times name (RFC 5545 §3.6.5: every TZID used is defined).
pub fn new_object(item: &NewItem) -> String {
    let kind = match item.kind {
        Some(ItemKind::Task) => ICalendarComponentType::VTodo,
        _ => ICalendarComponentType::VEvent,
    };
    let mut c = ICalendarComponent::new(kind);
    c.entries
        .push(text_entry(ICalendarProperty::Uid, &item.uid));
    c.entries
        .push(ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(utc_value(item.dtstamp)));
    c.entries.push(
        ICalendarEntry::new(ICalendarProperty::Sequence)
            .with_value(ICalendarValue::Integer(item.sequence as i64)),
    );
    if let Some(o) = &item.organizer {
        c.entries.push(organizer_entry(o));
    }
    for a in &item.attendees {
        c.entries.push(attendee_entry(a));
    }
    for (prop, v) in [
        (ICalendarProperty::Summary, &item.summary),
        (ICalendarProperty::Location, &item.location),
        (ICalendarProperty::Description, &item.description),
    ] {
        if let Some(v) = v {
            c.entries.push(text_entry(prop, v));
        }
    }
    for (prop, t) in [
        (ICalendarProperty::Dtstart, &item.start),
        (ICalendarProperty::Dtend, &item.end),
        (ICalendarProperty::Due, &item.due),
    ] {
        if let Some(t) = t {
            c.entries.push(time_entry(prop, t));
        }
    }
    if let Some(r) = item.rrule.as_deref().and_then(crate::expand::parse_rrule) {
        c.entries
            .push(ICalendarEntry::new(ICalendarProperty::Rrule).with_value(r));
    }
    if let Some(s) = &item.status {
        c.entries
            .push(text_entry(ICalendarProperty::Status, s.as_str()));
    }
    if let Some(p) = item.priority {
        c.entries.push(
            ICalendarEntry::new(ICalendarProperty::Priority)
                .with_value(ICalendarValue::Integer(p as i64)),
        );
    }
    if let Some(p) = item.percent_complete {
        c.entries.push(
            ICalendarEntry::new(ICalendarProperty::PercentComplete)
                .with_value(ICalendarValue::Integer(p as i64)),
        );
    }
    if let Some(t) = item.completed {
        c.entries
            .push(ICalendarEntry::new(ICalendarProperty::Completed).with_value(utc_value(t)));
    }
    let mut ical = ICalendar {
        components: vec![ICalendarComponent {
            component_type: ICalendarComponentType::VCalendar,
            entries: vec![
                text_entry(ICalendarProperty::Version, "2.0"),
                text_entry(ICalendarProperty::Prodid, PRODID),
            ],
            component_ids: vec![1],
        }],
    };
    ical.components.push(c);
    let mut doc = Doc { ical };
    for t in [&item.start, &item.end, &item.due].into_iter().flatten() {
        if let Some(z) = t.tzid() {
            doc.ensure_zone(z, None);
        }
    }
    doc.text()
}

/// An object's text, to edit.
#[derive(Debug, Clone)]
pub struct Doc {
    ical: ICalendar,
}

impl Doc {
    /// Parses an object's text (its first VCALENDAR).
    pub fn parse(text: &str) -> Option<Doc> {
        match Parser::new(text).entry() {
            Entry::ICalendar(ical)
                if ical
                    .components
                    .first()
                    .is_some_and(|c| c.component_type == ICalendarComponentType::VCalendar) =>
            {
                Some(Doc { ical })
            }
            _ => None,
        }
    }

    /// The object's text.
    pub fn of(obj: &CalendarObject) -> Option<Doc> {
        Doc::parse(&obj.ical)
    }

    /// The text.
    pub fn text(&self) -> String {
        self.ical.to_string()
    }

    /// Reads the object back from the text, keeping what only the object
    /// holds (COUNTER proposals).
    pub fn into_object(self, counters: Vec<Counter>, ctx: &Context) -> Option<ParsedObject> {
        let mut p = parse_one(&self.text(), ctx).ok()?;
        let mut o = p.objects.drain(..).next()?;
        o.object.counters = counters;
        Some(o)
    }

    /// The scheduling components (VEVENT, VTODO), in order.
    pub fn items(&self) -> Vec<usize> {
        self.ical.components[0]
            .component_ids
            .iter()
            .map(|i| *i as usize)
            .filter(|&i| {
                self.ical.components.get(i).is_some_and(|c| {
                    matches!(
                        c.component_type,
                        ICalendarComponentType::VEvent | ICalendarComponentType::VTodo
                    )
                })
            })
            .collect()
    }

    /// The component of object component `n` (0 = the master when there is one).
    pub fn item(&self, n: usize) -> Option<usize> {
        self.items().get(n).copied()
    }

    fn entries(&mut self, item: usize) -> &mut Vec<ICalendarEntry> {
        &mut self.ical.components[item].entries
    }

    /// Sets (replacing every earlier one) or removes a property.
    pub fn set(&mut self, item: usize, entry: Option<ICalendarEntry>, name: ICalendarProperty) {
        let entries = self.entries(item);
        let at = entries.iter().position(|e| e.name == name);
        entries.retain(|e| e.name != name);
        if let Some(e) = entry {
            match at {
                Some(i) if i <= entries.len() => entries.insert(i, e),
                _ => entries.push(e),
            }
        }
    }

    /// Sets a text property.
    pub fn set_text(&mut self, item: usize, name: ICalendarProperty, value: Option<&str>) {
        let e = value.map(|v| text_entry(name.clone(), v));
        self.set(item, e, name);
    }

    /// Sets a time property (and defines its zone).
    pub fn set_time(&mut self, item: usize, name: ICalendarProperty, t: Option<&CalTime>) {
        if let Some(z) = t.and_then(|t| t.tzid()) {
            self.ensure_zone(z, None);
        }
        let e = t.map(|t| time_entry(name.clone(), t));
        self.set(item, e, name);
    }

    /// Sets or removes an INTEGER property (PRIORITY, PERCENT-COMPLETE).
    pub fn set_integer(&mut self, item: usize, name: ICalendarProperty, value: Option<i64>) {
        let e =
            value.map(|v| ICalendarEntry::new(name.clone()).with_value(ICalendarValue::Integer(v)));
        self.set(item, e, name);
    }

    /// Sets or removes a UTC DATE-TIME property (COMPLETED, DTSTAMP).
    pub fn set_utc(&mut self, item: usize, name: ICalendarProperty, value: Option<i64>) {
        let e = value.map(|v| ICalendarEntry::new(name.clone()).with_value(utc_value(v)));
        self.set(item, e, name);
    }

    /// Sets or removes RRULE (the caller has checked it parses).
    pub fn set_rrule(&mut self, item: usize, rule: Option<&str>) {
        let e = rule
            .and_then(crate::expand::parse_rrule)
            .map(|r| ICalendarEntry::new(ICalendarProperty::Rrule).with_value(r));
        self.set(item, e, ICalendarProperty::Rrule);
    }

    /// Sets the ORGANIZER.
    pub fn set_organizer(&mut self, item: usize, o: &Organizer) {
        self.set(item, Some(organizer_entry(o)), ICalendarProperty::Organizer);
    }

    /// SEQUENCE and DTSTAMP.
    pub fn stamp(&mut self, item: usize, sequence: u32, now: i64) {
        self.set(
            item,
            Some(
                ICalendarEntry::new(ICalendarProperty::Sequence)
                    .with_value(ICalendarValue::Integer(sequence as i64)),
            ),
            ICalendarProperty::Sequence,
        );
        self.set(
            item,
            Some(ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(utc_value(now))),
            ICalendarProperty::Dtstamp,
        );
    }

    /// An attendee's PARTSTAT (and, for DELEGATED, DELEGATED-TO); RSVP is
    /// answered. Adds the attendee when missing. Returns whether anything changed.
    pub fn set_partstat(
        &mut self,
        item: usize,
        who: &Attendee,
        partstat: &PartStat,
        delegated_to: &[String],
    ) -> bool {
        let entries = self.entries(item);
        let found = entries.iter_mut().find(|e| {
            e.name == ICalendarProperty::Attendee
                && entry_email(e).is_some_and(|m| m.eq_ignore_ascii_case(&who.email))
        });
        match found {
            Some(e) => {
                let before = e.params.clone();
                e.params.retain(|p| {
                    !matches!(
                        p.name,
                        ICalendarParameterName::Partstat | ICalendarParameterName::Rsvp
                    ) && (p.name != ICalendarParameterName::DelegatedTo || delegated_to.is_empty())
                });
                e.params.push(text_param(
                    ICalendarParameterName::Partstat,
                    partstat.as_str(),
                ));
                for d in delegated_to {
                    e.params.push(ICalendarParameter::new(
                        ICalendarParameterName::DelegatedTo,
                        ICalendarParameterValue::Uri(Uri::Location(format!("mailto:{d}"))),
                    ));
                }
                e.params != before
            }
            None => {
                let mut a = who.clone();
                a.partstat = partstat.clone();
                a.rsvp = false;
                a.delegated_to = delegated_to.to_vec();
                entries.push(attendee_entry(&a));
                true
            }
        }
    }

    /// Adds an attendee unless present (a delegate).
    pub fn add_attendee(&mut self, item: usize, a: &Attendee) -> bool {
        let entries = self.entries(item);
        if entries.iter().any(|e| {
            e.name == ICalendarProperty::Attendee
                && entry_email(e).is_some_and(|m| m.eq_ignore_ascii_case(&a.email))
        }) {
            return false;
        }
        entries.push(attendee_entry(a));
        true
    }

    /// Keeps only the attendees `keep` says yes to.
    pub fn retain_attendees(&mut self, item: usize, keep: impl Fn(&str) -> bool) {
        self.entries(item).retain(|e| {
            e.name != ICalendarProperty::Attendee || entry_email(e).is_some_and(|m| keep(&m))
        });
    }

    /// Resets every attendee but `except` to NEEDS-ACTION with RSVP (after
    /// a change that needs a new answer: RFC 5546 §2.1.5).
    pub fn reset_partstats(&mut self, item: usize, except: &[&str]) {
        for e in self.entries(item) {
            if e.name != ICalendarProperty::Attendee {
                continue;
            }
            if entry_email(e).is_some_and(|m| except.iter().any(|x| x.eq_ignore_ascii_case(&m))) {
                continue;
            }
            e.params.retain(|p| {
                !matches!(
                    p.name,
                    ICalendarParameterName::Partstat | ICalendarParameterName::Rsvp
                )
            });
            e.params.push(text_param(
                ICalendarParameterName::Partstat,
                PartStat::NeedsAction.as_str(),
            ));
            e.params.push(ICalendarParameter::new(
                ICalendarParameterName::Rsvp,
                ICalendarParameterValue::Bool(true),
            ));
        }
    }

    /// Adds an EXDATE for an instance (RFC 5545 §3.8.5.1), in the form of DTSTART.
    pub fn add_exdate(&mut self, item: usize, t: &CalTime) {
        let e = time_entry(ICalendarProperty::Exdate, t);
        self.entries(item).push(e);
    }

    /// Removes a component.
    pub fn remove_item(&mut self, item: usize) {
        self.ical.components[0]
            .component_ids
            .retain(|i| *i as usize != item);
    }

    /// A copy of the master as the override of one instance: RECURRENCE-ID
    /// and DTSTART at the instance, the same length, no recurrence of its own.
    pub fn add_instance(
        &mut self,
        master: usize,
        rid: &CalTime,
        start: &CalTime,
        end: Option<&CalTime>,
    ) -> usize {
        let mut c = self.ical.components[master].clone();
        c.component_ids.clear();
        c.entries.retain(|e| {
            !matches!(
                e.name,
                ICalendarProperty::Rrule
                    | ICalendarProperty::Rdate
                    | ICalendarProperty::Exdate
                    | ICalendarProperty::Exrule
                    | ICalendarProperty::Dtstart
                    | ICalendarProperty::Dtend
                    | ICalendarProperty::Duration
                    | ICalendarProperty::RecurrenceId
            )
        });
        c.entries
            .push(time_entry(ICalendarProperty::RecurrenceId, rid));
        c.entries
            .push(time_entry(ICalendarProperty::Dtstart, start));
        if let Some(end) = end {
            c.entries.push(time_entry(ICalendarProperty::Dtend, end));
        }
        let id = self.ical.components.len();
        self.ical.components.push(c);
        self.ical.components[0].component_ids.push(id as u32);
        id
    }

    /// Replaces component `item` (or, with `None`, appends) by component
    /// `from_item` of `from`, bringing the VTIMEZONEs it needs.
    pub fn put_from(&mut self, item: Option<usize>, from: &Doc, from_item: usize) {
        let id = crate::parse::copy_component(&from.ical, from_item, &mut self.ical, 0);
        let root = &mut self.ical.components[0].component_ids;
        match item.and_then(|i| root.iter().position(|x| *x as usize == i)) {
            Some(pos) => root[pos] = id,
            None => root.push(id),
        }
        let tzids: Vec<String> = from.ical.components[from_item]
            .entries
            .iter()
            .flat_map(|e| e.parameters(&ICalendarParameterName::Tzid))
            .filter_map(|v| v.as_text())
            .map(|t| t.trim_matches('"').to_string())
            .collect();
        for t in tzids {
            self.ensure_zone(&t, Some(from));
        }
    }

    fn has_zone(&self, tzid: &str) -> bool {
        self.ical.components.iter().any(|c| {
            c.component_type == ICalendarComponentType::VTimezone
                && c.entries.iter().any(|e| {
                    e.name == ICalendarProperty::Tzid
                        && e.values.first().and_then(|v| v.as_text()) == Some(tzid)
                })
        })
    }

    /// Defines a TZID: from `from`'s VTIMEZONE, else (an IANA name) from
    /// the zone database, for the years around now.
    pub fn ensure_zone(&mut self, tzid: &str, from: Option<&Doc>) {
        if self.has_zone(tzid) {
            return;
        }
        if let Some(src) = from
            && let Some(i) = src.ical.components.iter().position(|c| {
                c.component_type == ICalendarComponentType::VTimezone
                    && c.entries.iter().any(|e| {
                        e.name == ICalendarProperty::Tzid
                            && e.values.first().and_then(|v| v.as_text()) == Some(tzid)
                    })
            })
        {
            let id = crate::parse::copy_component(&src.ical, i, &mut self.ical, 0);
            self.ical.components[0].component_ids.insert(0, id);
            return;
        }
        let now = chrono::Utc::now().timestamp();
        let _ = self
            .ical
            .add_timezone(tzid, now - 5 * 366 * 86400, now + 10 * 366 * 86400);
    }

    /// The text as an iTIP message: METHOD set, only the components
    /// `keep` selects (by position among [`Doc::items`]), PRODID ours.
    pub fn message(&self, method: &Method, keep: impl Fn(usize) -> bool) -> String {
        let mut ical = self.ical.clone();
        let items = self.items();
        let drop: Vec<u32> = items
            .iter()
            .enumerate()
            .filter(|(n, _)| !keep(*n))
            .map(|(_, i)| *i as u32)
            .collect();
        ical.components[0]
            .component_ids
            .retain(|i| !drop.contains(i));
        let root = &mut ical.components[0].entries;
        root.retain(|e| {
            !matches!(
                e.name,
                ICalendarProperty::Method | ICalendarProperty::Prodid
            )
        });
        root.insert(0, text_entry(ICalendarProperty::Prodid, PRODID));
        root.push(
            ICalendarEntry::new(ICalendarProperty::Method).with_value(method.as_str().to_string()),
        );
        ical.to_string()
    }

    /// Component `item` pared down to what a REPLY carries (RFC 5546
    /// §3.2.3: UID, SEQUENCE, DTSTAMP, ORGANIZER, the replying ATTENDEE,
    /// RECURRENCE-ID; DTSTART/DTEND and SUMMARY, which Google and Outlook
    /// want to see), with `comment`.
    pub fn pare_for_reply(&mut self, item: usize, who: &str, comment: Option<&str>, now: i64) {
        self.entries(item).retain(|e| {
            matches!(
                e.name,
                ICalendarProperty::Uid
                    | ICalendarProperty::Sequence
                    | ICalendarProperty::Organizer
                    | ICalendarProperty::RecurrenceId
                    | ICalendarProperty::Dtstart
                    | ICalendarProperty::Dtend
                    | ICalendarProperty::Duration
                    | ICalendarProperty::Due
                    | ICalendarProperty::Summary
                    | ICalendarProperty::Location
                    | ICalendarProperty::Rrule
                    | ICalendarProperty::Status
                    | ICalendarProperty::Completed
                    | ICalendarProperty::PercentComplete
            ) || (e.name == ICalendarProperty::Attendee
                && entry_email(e).is_some_and(|m| m.eq_ignore_ascii_case(who)))
        });
        self.ical.components[item].component_ids.clear();
        self.set(
            item,
            Some(ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(utc_value(now))),
            ICalendarProperty::Dtstamp,
        );
        self.set_text(item, ICalendarProperty::Comment, comment);
    }
}

/// Several objects as one iCalendar text (an export): one VCALENDAR, each
/// VTIMEZONE once, every object's components.
pub fn combine<'a>(objects: impl IntoIterator<Item = &'a CalendarObject>) -> String {
    let mut out = Doc {
        ical: ICalendar {
            components: vec![ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: vec![
                    text_entry(ICalendarProperty::Version, "2.0"),
                    text_entry(ICalendarProperty::Prodid, PRODID),
                ],
                component_ids: Vec::new(),
            }],
        },
    };
    for o in objects {
        let Some(doc) = Doc::of(o) else { continue };
        for item in doc.items() {
            out.put_from(None, &doc, item);
        }
    }
    out.text()
}

/// A VFREEBUSY reply (RFC 5546 §3.3.3): the busy periods of `attendee`
/// between `start` and `end`, for `organizer`'s request `uid`.
pub fn freebusy_reply(
    uid: Option<&str>,
    organizer: &Organizer,
    attendee: &Attendee,
    start: i64,
    end: i64,
    busy: &[(i64, i64, &str)],
    now: i64,
) -> String {
    let mut c = ICalendarComponent::new(ICalendarComponentType::VFreebusy);
    if let Some(u) = uid {
        c.entries.push(text_entry(ICalendarProperty::Uid, u));
    }
    c.entries
        .push(ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(utc_value(now)));
    c.entries.push(organizer_entry(organizer));
    let mut a = attendee.clone();
    a.partstat = PartStat::Accepted;
    a.role = Role::ReqParticipant;
    a.rsvp = false;
    let mut ae = attendee_entry(&a);
    ae.params.retain(|p| {
        !matches!(
            p.name,
            ICalendarParameterName::Partstat | ICalendarParameterName::Role
        )
    });
    c.entries.push(ae);
    c.entries
        .push(ICalendarEntry::new(ICalendarProperty::Dtstart).with_value(utc_value(start)));
    c.entries
        .push(ICalendarEntry::new(ICalendarProperty::Dtend).with_value(utc_value(end)));
    // One FREEBUSY line per type (RFC 5545 §3.8.2.6: UTC periods, sorted).
    for kind in ["BUSY", "BUSY-TENTATIVE"] {
        let periods: Vec<ICalendarValue> = busy
            .iter()
            .filter(|(_, _, k)| *k == kind)
            .map(|(s, e, _)| {
                ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Range {
                    start: utc_value(*s),
                    end: utc_value(*e),
                })
            })
            .collect();
        if !periods.is_empty() {
            c.entries.push(
                ICalendarEntry::new(ICalendarProperty::Freebusy)
                    .with_param(text_param(ICalendarParameterName::Fbtype, kind))
                    .with_values(periods),
            );
        }
    }
    let ical = ICalendar {
        components: vec![
            ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: vec![
                    text_entry(ICalendarProperty::Prodid, PRODID),
                    text_entry(ICalendarProperty::Version, "2.0"),
                    ICalendarEntry::new(ICalendarProperty::Method)
                        .with_value(Method::Reply.as_str().to_string()),
                ],
                component_ids: vec![1],
            },
            c,
        ],
    };
    ical.to_string()
}

/// The instance of a series that starts at `utc`, as a [`CalTime`] in the
/// form of the series' DTSTART (RECURRENCE-ID values match DTSTART's:
/// RFC 5545 §3.8.4.4).
pub fn instance_time(start: &CalTime, utc: i64, zone: &crate::zone::Zone) -> CalTime {
    match &start.form {
        TimeForm::Utc => CalTime {
            utc,
            local: local_string(&zone.to_local(utc), false),
            form: TimeForm::Utc,
        },
        form => CalTime {
            utc,
            local: local_string(&zone.to_local(utc), start.is_date()),
            form: form.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_object_round_trips_with_its_zone() {
        let text = new_object(&NewItem {
            kind: Some(ItemKind::Appointment),
            uid: "abc@postgate".into(),
            dtstamp: 1_800_000_000,
            organizer: Some(Organizer {
                email: "ann@example.org".into(),
                name: Some("Ann Example".into()),
                sent_by: None,
            }),
            attendees: vec![Attendee {
                email: "bob@example.net".into(),
                rsvp: true,
                ..Attendee::default()
            }],
            summary: Some("Plan, review; ship\nnext".into()),
            start: Some(CalTime {
                utc: 1_800_003_600,
                local: "20270115T090000".into(),
                form: TimeForm::Zone("Europe/Berlin".into()),
            }),
            end: Some(CalTime {
                utc: 1_800_007_200,
                local: "20270115T100000".into(),
                form: TimeForm::Zone("Europe/Berlin".into()),
            }),
            rrule: Some("FREQ=WEEKLY;COUNT=4".into()),
            ..NewItem::default()
        });
        assert!(text.contains("BEGIN:VTIMEZONE"), "{text}");
        assert!(text.contains("TZID:Europe/Berlin"), "{text}");
        assert!(
            text.contains("SUMMARY:Plan\\, review\\; ship\\nnext"),
            "{text}"
        );
        let p = parse_one(&text, &Context::default()).unwrap();
        let m = p.objects[0].object.master.clone().unwrap();
        assert_eq!(m.summary.as_deref(), Some("Plan, review; ship\nnext"));
        assert_eq!(m.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(m.attendees[0].email, "bob@example.net");
        assert!(m.attendees[0].rsvp);
        assert_eq!(m.organizer.unwrap().name.as_deref(), Some("Ann Example"));
        // 09:00 in Berlin in January is 08:00Z.
        let start = m.start.unwrap();
        let utc = chrono::DateTime::from_timestamp(start.utc, 0).unwrap();
        assert_eq!(utc.to_rfc3339(), "2027-01-15T08:00:00+00:00");
        assert!(m.rrule_last.is_some());
    }
}
