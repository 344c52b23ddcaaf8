//! iTIP (RFC 5546): what an incoming scheduling message does to what a
//! calendar holds, and the messages the post office's own users send.
//!
//! [`apply`] is a pure function from (what the calendar holds, the message)
//! to what it should hold: the store runs it inside the transaction that
//! writes its result, so two messages for one UID never race.
//!
//! Who may do what (RFC 5546 §6.1, RFC 6047 §3 security considerations):
//! only the organizer (or whoever acts for them, SENT-BY) may update or
//! cancel; only an attendee may reply for themselves or counter. A message
//! from anyone else changes nothing. "Who" is the mail's From, Sender and
//! envelope sender, any of which may match.
use crate::expand;
use crate::parse::{Context, Method, ParsedObject, Zones};
use crate::write::{Doc, instance_time};
use calcard::icalendar::ICalendarProperty;
use postgate_types::ItemKind;
use postgate_types::calendar::{
    Attendee, CalTime, CalendarComponent, CalendarObject, Counter, PartStat, Status,
};

/// An iTIP message for one UID, as one local user receives it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// METHOD.
    pub method: &'a Method,
    /// Appointment or task.
    pub kind: ItemKind,
    /// The object the message carries.
    pub object: &'a CalendarObject,
    /// Who sent it: From, Sender, envelope sender; lower-case.
    pub senders: &'a [String],
    /// The recipient's addresses (primary and aliases); lower-case.
    pub recipient: &'a [String],
    /// Now, Unix seconds.
    pub now: i64,
}

/// What a message does.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Store this object (new or changed).
    Store(Box<ParsedObject>, String),
    /// Nothing changes, for this reason.
    Unchanged(String),
}

impl Outcome {
    fn store(o: ParsedObject, why: impl Into<String>) -> Outcome {
        Outcome::Store(Box::new(o), why.into())
    }
    fn no(why: impl Into<String>) -> Outcome {
        Outcome::Unchanged(why.into())
    }
}

fn is_any(list: &[String], email: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(email))
}

/// Whether one of `senders` is the organizer of `c` (or acts for them).
fn from_organizer(c: &CalendarComponent, senders: &[String]) -> bool {
    senders.iter().any(|s| c.is_organizer(s))
}

/// (SEQUENCE, DTSTAMP): the order of versions (RFC 5546 §2.1.5).
fn version(c: &CalendarComponent) -> (u32, i64) {
    (c.sequence, c.dtstamp.unwrap_or(0))
}

/// The component of `obj` for an instance (`None`: the master).
fn find(obj: &CalendarObject, rid: Option<i64>) -> Option<(usize, &CalendarComponent)> {
    let base = usize::from(obj.master.is_some());
    match rid {
        None => obj.master.as_ref().map(|m| (0, m)),
        Some(r) => obj
            .overrides
            .iter()
            .enumerate()
            .find(|(_, o)| o.recurrence_id.as_ref().map(|t| t.utc) == Some(r))
            .map(|(i, o)| (base + i, o)),
    }
}

/// Applies an incoming iTIP message to what one calendar holds for its UID.
pub fn apply(current: Option<&CalendarObject>, msg: &Incoming<'_>, ctx: &Context) -> Outcome {
    match msg.method {
        Method::Request => request(current, msg, ctx),
        Method::Add => add(current, msg, ctx),
        Method::Cancel => cancel(current, msg, ctx),
        Method::Reply => reply(current, msg, ctx),
        Method::Counter => counter(current, msg),
        Method::Refresh => Outcome::no("REFRESH asks for the current version; answered by mail"),
        Method::DeclineCounter => Outcome::no("DECLINECOUNTER: the organizer kept the original"),
        Method::Publish => Outcome::no("PUBLISH is kept as mail; import it to keep it"),
        Method::Other(m) => Outcome::no(format!("METHOD {m} is not iTIP")),
    }
}

/// Keeps the recipient's own answer when a new version does not ask again
/// (same SEQUENCE: RFC 5546 §2.1.5, a change that needs no new answer).
fn keep_own_answers(doc: &mut Doc, new: &CalendarObject, old: &CalendarObject, me: &[String]) {
    let new_comps: Vec<&CalendarComponent> = new.components().collect();
    for (n, c) in new_comps.iter().enumerate() {
        let rid = c.recurrence_id.as_ref().map(|r| r.utc);
        let Some((_, before)) = find(old, rid) else {
            continue;
        };
        if before.sequence != c.sequence {
            continue;
        }
        let Some(item) = doc.item(n) else { continue };
        for a in &before.attendees {
            if is_any(me, &a.email) && a.partstat != PartStat::NeedsAction {
                doc.set_partstat(item, a, &a.partstat, &a.delegated_to);
            }
        }
    }
}

fn request(current: Option<&CalendarObject>, msg: &Incoming<'_>, ctx: &Context) -> Outcome {
    let new = msg.object;
    let Some(cur) = current else {
        // A new invitation (RFC 5546 §3.2.2): held as it came (its text is
        // already the object's own, METHOD left out).
        let mut object = new.clone();
        object.counters.clear();
        return Outcome::store(
            ParsedObject {
                kind: msg.kind,
                object,
            },
            "invitation added",
        );
    };
    let Some(cur_main) = cur.main() else {
        return Outcome::no("stored object has no component");
    };
    if !from_organizer(cur_main, msg.senders) {
        return Outcome::no("an update not from the organizer");
    }
    if let Some(m) = &new.master {
        // The whole series (RFC 5546 §3.2.2.1–2.4): newer replaces what is held.
        let held = cur
            .master
            .as_ref()
            .map(version)
            .unwrap_or((cur.sequence(), 0));
        if version(m) <= held {
            return Outcome::no(format!(
                "REQUEST SEQUENCE {} is not newer than the held {}",
                m.sequence, held.0
            ));
        }
        let Some(mut doc) = Doc::of(new) else {
            return Outcome::no("unreadable update");
        };
        keep_own_answers(&mut doc, new, cur, msg.recipient);
        return match doc.into_object(cur.counters.clone(), ctx) {
            Some(o) => Outcome::store(o, format!("updated to SEQUENCE {}", m.sequence)),
            None => Outcome::no("unreadable update"),
        };
    }
    // Instances only (RFC 5546 §3.2.2.4): each replaces its own override.
    merge_instances(cur, new, msg, ctx, "instance updated")
}

/// Puts the overrides of `new` into `cur`, each where it is newer.
fn merge_instances(
    cur: &CalendarObject,
    new: &CalendarObject,
    msg: &Incoming<'_>,
    ctx: &Context,
    why: &str,
) -> Outcome {
    let (Some(mut doc), Some(from)) = (Doc::of(cur), Doc::of(new)) else {
        return Outcome::no("unreadable object");
    };
    let mut changed = 0;
    for (n, o) in new.overrides.iter().enumerate() {
        let rid = o.recurrence_id.as_ref().map(|r| r.utc);
        let from_item = from.item(n + usize::from(new.master.is_some()));
        let Some(from_item) = from_item else { continue };
        match find(cur, rid) {
            Some((_, held)) if version(o) <= version(held) => continue,
            Some((pos, _)) => {
                let item = doc.item(pos);
                doc.put_from(item, &from, from_item);
            }
            None => doc.put_from(None, &from, from_item),
        }
        changed += 1;
    }
    if changed == 0 {
        return Outcome::no("no instance is newer than what is held");
    }
    let mut tmp = match doc.into_object(cur.counters.clone(), ctx) {
        Some(o) => o,
        None => return Outcome::no("unreadable result"),
    };
    if let Some(mut d) = Doc::of(&tmp.object) {
        let before = tmp.object.clone();
        keep_own_answers(&mut d, &before, cur, msg.recipient);
        if let Some(o) = d.into_object(cur.counters.clone(), ctx) {
            tmp = o;
        }
    }
    Outcome::store(tmp, why.to_string())
}

fn add(current: Option<&CalendarObject>, msg: &Incoming<'_>, ctx: &Context) -> Outcome {
    let Some(cur) = current else {
        return Outcome::no("ADD for a series not held");
    };
    if !cur.main().is_some_and(|m| from_organizer(m, msg.senders)) {
        return Outcome::no("ADD not from the organizer");
    }
    merge_instances(cur, msg.object, msg, ctx, "instances added")
}

fn cancel(current: Option<&CalendarObject>, msg: &Incoming<'_>, ctx: &Context) -> Outcome {
    let Some(cur) = current else {
        return Outcome::no("nothing held to cancel");
    };
    let Some(main) = cur.main() else {
        return Outcome::no("stored object has no component");
    };
    if !from_organizer(main, msg.senders) {
        return Outcome::no("a CANCEL not from the organizer");
    }
    let Some(mut doc) = Doc::of(cur) else {
        return Outcome::no("unreadable object");
    };
    let new = msg.object;
    if new.master.is_some() || new.overrides.is_empty() {
        // The whole object (RFC 5546 §3.2.5).
        let seq = new.sequence();
        if seq < cur.sequence() {
            return Outcome::no(format!("CANCEL SEQUENCE {seq} is older than the held one"));
        }
        for item in doc.items() {
            doc.set_text(
                item,
                ICalendarProperty::Status,
                Some(Status::Cancelled.as_str()),
            );
            doc.stamp(item, seq.max(cur.sequence()), msg.now);
        }
        return match doc.into_object(cur.counters.clone(), ctx) {
            Some(o) => Outcome::store(o, "cancelled"),
            None => Outcome::no("unreadable result"),
        };
    }
    // Instances (RFC 5546 §3.2.5 with RECURRENCE-ID): each leaves the series.
    let mut zones = Zones::for_object(cur, ctx.zone);
    let mut remove = Vec::new();
    for o in &new.overrides {
        let Some(rid) = &o.recurrence_id else {
            continue;
        };
        match (&cur.master, find(cur, Some(rid.utc))) {
            (Some(m), held) if m.rrule.is_some() || !m.rdates.is_empty() => {
                let Some(start) = &m.start else { continue };
                let zone = zones.zone_of(&start.form);
                if let Some(item) = doc.item(0) {
                    doc.add_exdate(item, &instance_time(start, rid.utc, &zone));
                }
                if let Some((pos, _)) = held
                    && let Some(item) = doc.item(pos)
                {
                    remove.push(item);
                }
            }
            (_, Some((pos, _))) => {
                if let Some(item) = doc.item(pos) {
                    doc.set_text(
                        item,
                        ICalendarProperty::Status,
                        Some(Status::Cancelled.as_str()),
                    );
                    doc.stamp(item, o.sequence, msg.now);
                }
            }
            (_, None) => {}
        }
    }
    for item in remove {
        doc.remove_item(item);
    }
    match doc.into_object(cur.counters.clone(), ctx) {
        Some(o) if o.object != *cur => Outcome::store(o, "instance cancelled"),
        Some(_) => Outcome::no("no such instance held"),
        None => Outcome::no("unreadable result"),
    }
}

/// The component of `cur` an instance of a reply is about, made an override
/// first when only the master holds it.
fn target(
    doc: &mut Doc,
    cur: &CalendarObject,
    rid: Option<&CalTime>,
    zones: &mut Zones,
) -> Option<usize> {
    let Some(rid) = rid else {
        return match &cur.master {
            Some(_) => doc.item(0),
            None => None,
        };
    };
    if let Some((pos, _)) = find(cur, Some(rid.utc)) {
        return doc.item(pos);
    }
    let m = cur.master.as_ref()?;
    let start = m.start.as_ref()?;
    let zone = zones.zone_of(&start.form);
    let inst = instance_time(start, rid.utc, &zone);
    let end = m.end.as_ref().map(|e| {
        let len = e.utc - start.utc;
        instance_time(e, rid.utc + len, &zones.zone_of(&e.form))
    });
    let master_item = doc.item(0)?;
    Some(doc.add_instance(master_item, &inst, &inst, end.as_ref()))
}

fn reply(current: Option<&CalendarObject>, msg: &Incoming<'_>, ctx: &Context) -> Outcome {
    let Some(cur) = current else {
        return Outcome::no("a REPLY for nothing held");
    };
    let Some(main) = cur.main() else {
        return Outcome::no("stored object has no component");
    };
    // RFC 5546 §3.2.3: replies go to the organizer; only theirs count.
    if !msg.recipient.iter().any(|r| main.is_organizer(r)) {
        return Outcome::no("a REPLY to someone who is not the organizer");
    }
    let Some(mut doc) = Doc::of(cur) else {
        return Outcome::no("unreadable object");
    };
    let mut zones = Zones::for_object(cur, ctx.zone);
    let mut changed = false;
    let mut why = Vec::new();
    for c in msg.object.components() {
        let held = find(cur, c.recurrence_id.as_ref().map(|r| r.utc)).map(|(_, h)| h);
        let held_seq = held
            .or(cur.master.as_ref())
            .map(|h| h.sequence)
            .unwrap_or(0);
        // A reply to an older version is stale (RFC 5546 §2.1.5); one that
        // says no SEQUENCE at all (Outlook.com) is taken as current.
        if c.sequence != 0 && c.sequence < held_seq {
            why.push(format!(
                "REPLY SEQUENCE {} is older than {held_seq}",
                c.sequence
            ));
            continue;
        }
        for a in &c.attendees {
            let own = is_any(msg.senders, &a.email)
                || a.sent_by.as_deref().is_some_and(|s| is_any(msg.senders, s));
            if !own {
                why.push(format!("a REPLY for {} not sent by them", a.email));
                continue;
            }
            let Some(item) = target(&mut doc, cur, c.recurrence_id.as_ref(), &mut zones) else {
                why.push("the replied instance is not held".into());
                continue;
            };
            let mut partstat = a.partstat.clone();
            // A task done (RFC 5546 §3.4.3): PARTSTAT=COMPLETED or STATUS:COMPLETED.
            let done = msg.kind == ItemKind::Task
                && (partstat == PartStat::Completed || c.status == Some(Status::Completed));
            if done {
                partstat = PartStat::Completed;
                doc.set_text(
                    item,
                    ICalendarProperty::Status,
                    Some(Status::Completed.as_str()),
                );
                let at = c.completed.unwrap_or(msg.now);
                doc.set_utc(item, ICalendarProperty::Completed, Some(at));
                doc.set_integer(item, ICalendarProperty::PercentComplete, Some(100));
                changed = true;
            }
            if doc.set_partstat(item, a, &partstat, &a.delegated_to) {
                changed = true;
            }
            // RFC 5546 §3.2.2.3: a delegate joins, answering for the delegator.
            if partstat == PartStat::Delegated {
                for d in &a.delegated_to {
                    let delegate = Attendee {
                        email: d.clone(),
                        role: a.role.clone(),
                        rsvp: true,
                        delegated_from: vec![a.email.clone()],
                        ..Attendee::default()
                    };
                    changed |= doc.add_attendee(item, &delegate);
                }
            }
        }
    }
    if !changed {
        return Outcome::no(if why.is_empty() {
            "the REPLY changes nothing".to_string()
        } else {
            why.join("; ")
        });
    }
    match doc.into_object(cur.counters.clone(), ctx) {
        Some(o) => Outcome::store(o, "attendee status updated"),
        None => Outcome::no("unreadable result"),
    }
}

fn counter(current: Option<&CalendarObject>, msg: &Incoming<'_>) -> Outcome {
    let Some(cur) = current else {
        return Outcome::no("a COUNTER for nothing held");
    };
    let Some(main) = cur.main() else {
        return Outcome::no("stored object has no component");
    };
    if !msg.recipient.iter().any(|r| main.is_organizer(r)) {
        return Outcome::no("a COUNTER to someone who is not the organizer");
    }
    let Some(c) = msg.object.components().next() else {
        return Outcome::no("an empty COUNTER");
    };
    // RFC 5546 §3.2.7: from an attendee of the meeting.
    let Some(from) = msg
        .senders
        .iter()
        .find(|s| cur.components().any(|h| h.attendee(s).is_some()))
    else {
        return Outcome::no("a COUNTER from someone who is not an attendee");
    };
    let proposal = Counter {
        from: from.clone(),
        recurrence_id: c.recurrence_id.clone(),
        start: c.start.clone(),
        end: c.end.clone(),
        location: c.location.clone(),
        comment: c.comment.clone(),
        sequence: c.sequence,
        received: c.dtstamp.unwrap_or(msg.now),
        ical: msg.object.ical.clone(),
    };
    let mut obj = cur.clone();
    // A newer proposal from the same attendee for the same instance replaces theirs.
    obj.counters.retain(|k| {
        !(k.from == proposal.from
            && k.recurrence_id.as_ref().map(|r| r.utc)
                == proposal.recurrence_id.as_ref().map(|r| r.utc))
    });
    obj.counters.push(proposal);
    Outcome::store(
        ParsedObject {
            kind: msg.kind,
            object: obj,
        },
        "counter-proposal kept for the organizer",
    )
}

/// An attendee's answer to an invitation.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// Who answers (as the invitation lists them).
    pub me: &'a Attendee,
    /// ACCEPTED, DECLINED, TENTATIVE (COMPLETED for a task).
    pub partstat: &'a PartStat,
    /// A note for the organizer (COMMENT).
    pub comment: Option<&'a str>,
    /// The instance answered, or the whole series.
    pub rid: Option<i64>,
}

/// An attendee's answer: the object with their PARTSTAT set, and the REPLY
/// to send the organizer (RFC 5546 §3.2.3), for the whole series or one instance.
pub fn respond(
    obj: &CalendarObject,
    kind: ItemKind,
    answer: &Answer<'_>,
    now: i64,
    ctx: &Context,
) -> Option<(ParsedObject, String)> {
    let (me, partstat, comment, rid) = (answer.me, answer.partstat, answer.comment, answer.rid);
    let mut doc = Doc::of(obj)?;
    let mut zones = Zones::for_object(obj, ctx.zone);
    let rid_time = match (rid, obj.master.as_ref().and_then(|m| m.start.as_ref())) {
        (Some(r), Some(start)) => Some(instance_time(start, r, &zones.zone_of(&start.form))),
        (Some(r), None) => find(obj, Some(r)).and_then(|(_, o)| o.recurrence_id.clone()),
        (None, _) => None,
    };
    let item = target(&mut doc, obj, rid_time.as_ref(), &mut zones)
        .or_else(|| doc.items().first().copied())?;
    doc.set_partstat(item, me, partstat, &[]);
    if kind == ItemKind::Task && *partstat == PartStat::Completed {
        doc.set_text(
            item,
            ICalendarProperty::Status,
            Some(Status::Completed.as_str()),
        );
        doc.set_utc(item, ICalendarProperty::Completed, Some(now));
        doc.set_integer(item, ICalendarProperty::PercentComplete, Some(100));
    }
    let position = doc.items().iter().position(|i| *i == item)?;
    let mut reply_doc = doc.clone();
    reply_doc.pare_for_reply(item, &me.email, comment, now);
    let text = reply_doc.message(&Method::Reply, |n| n == position);
    let updated = doc.into_object(obj.counters.clone(), ctx)?;
    Some((updated, text))
}

/// The organizer accepts counter-proposal `n`: its times (and location)
/// become the appointment's, SEQUENCE goes up, every attendee is asked
/// again but the proposer, who proposed it (RFC 5546 §3.2.7).
pub fn accept_counter(
    obj: &CalendarObject,
    n: usize,
    now: i64,
    ctx: &Context,
) -> Option<ParsedObject> {
    let k = obj.counters.get(n)?;
    let mut doc = Doc::of(obj)?;
    let mut zones = Zones::for_object(obj, ctx.zone);
    let item = target(&mut doc, obj, k.recurrence_id.as_ref(), &mut zones)?;
    if let Some(s) = &k.start {
        doc.set_time(item, ICalendarProperty::Dtstart, Some(s));
    }
    if let Some(e) = &k.end {
        doc.set(item, None, ICalendarProperty::Duration);
        doc.set_time(item, ICalendarProperty::Dtend, Some(e));
    }
    if let Some(l) = &k.location {
        doc.set_text(item, ICalendarProperty::Location, Some(l));
    }
    let organizer = obj.main()?.organizer.as_ref()?.email.clone();
    doc.reset_partstats(item, &[&organizer]);
    let proposer = Attendee {
        email: k.from.clone(),
        ..Attendee::default()
    };
    doc.set_partstat(item, &proposer, &PartStat::Accepted, &[]);
    doc.stamp(item, obj.sequence() + 1, now);
    let mut counters = obj.counters.clone();
    counters.remove(n);
    doc.into_object(counters, ctx)
}

/// The organizer declines counter-proposal `n`: the object without it, and
/// the DECLINECOUNTER to send its proposer (RFC 5546 §3.2.8).
pub fn decline_counter(
    obj: &CalendarObject,
    n: usize,
    comment: Option<&str>,
    now: i64,
    ctx: &Context,
) -> Option<(ParsedObject, String)> {
    let k = obj.counters.get(n)?;
    let doc = Doc::of(obj)?;
    let pos = find(obj, k.recurrence_id.as_ref().map(|r| r.utc))
        .map(|(p, _)| p)
        .unwrap_or(0);
    let item = doc.item(pos)?;
    let mut msg = doc.clone();
    msg.pare_for_reply(item, &k.from, comment, now);
    let text = msg.message(&Method::DeclineCounter, |i| i == pos);
    let mut counters = obj.counters.clone();
    counters.remove(n);
    let o = doc.into_object(counters, ctx)?;
    Some((o, text))
}

/// The occurrences and instance forms of an object in a span, with the
/// component each comes from.
pub fn component_of(obj: &CalendarObject, src: expand::Source) -> Option<&CalendarComponent> {
    match src {
        expand::Source::Master => obj.master.as_ref(),
        expand::Source::Override(i) => obj.overrides.get(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_one;

    const REQ: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n\
METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:m1@google.com\r\nDTSTAMP:20260101T100000Z\r\nSEQUENCE:0\r\n\
DTSTART:20260310T140000Z\r\nDTEND:20260310T150000Z\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\n\
ORGANIZER;CN=Olga:mailto:olga@remote.test\r\n\
ATTENDEE;CN=Ann;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:mailto:ann@local.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:olga@remote.test\r\nSUMMARY:Sync\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    fn obj(text: &str) -> (Method, CalendarObject) {
        let p = parse_one(text, &Context::default()).unwrap();
        (p.method.unwrap(), p.objects[0].object.clone())
    }

    fn incoming<'a>(
        method: &'a Method,
        o: &'a CalendarObject,
        senders: &'a [String],
        me: &'a [String],
    ) -> Incoming<'a> {
        Incoming {
            method,
            kind: ItemKind::Appointment,
            object: o,
            senders,
            recipient: me,
            now: 1_800_000_000,
        }
    }

    fn stored(out: Outcome) -> CalendarObject {
        match out {
            Outcome::Store(o, _) => o.object,
            Outcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
    }

    #[test]
    fn request_then_older_then_newer_then_cancel_from_stranger() {
        let ctx = Context::default();
        let olga = vec!["olga@remote.test".to_string()];
        let ann = vec!["ann@local.test".to_string()];
        let (m, o) = obj(REQ);
        let held = stored(apply(None, &incoming(&m, &o, &olga, &ann), &ctx));
        assert!(!held.ical.contains("METHOD"));
        // Ann accepts: her answer is kept through a same-SEQUENCE update.
        let me = held
            .master
            .as_ref()
            .unwrap()
            .attendee("ann@local.test")
            .unwrap()
            .clone();
        let answer = Answer {
            me: &me,
            partstat: &PartStat::Accepted,
            comment: Some("ok"),
            rid: None,
        };
        let (accepted, reply) = respond(&held, ItemKind::Appointment, &answer, 1, &ctx).unwrap();
        let accepted = accepted.object;
        assert!(reply.contains("METHOD:REPLY"));
        let r = parse_one(&reply, &ctx).unwrap();
        let rc = r.objects[0].object.master.as_ref().unwrap();
        assert_eq!(rc.attendees.len(), 1);
        assert_eq!(rc.attendees[0].partstat, PartStat::Accepted);
        assert_eq!(rc.organizer.as_ref().unwrap().email, "olga@remote.test");
        assert!(rc.start.is_some() && rc.dtstamp.is_some());
        // The same version again changes nothing.
        assert!(matches!(
            apply(Some(&accepted), &incoming(&m, &o, &olga, &ann), &ctx),
            Outcome::Unchanged(_)
        ));
        // A newer DTSTAMP, same SEQUENCE: updated, Ann's answer kept.
        let (_, o2) = obj(&REQ
            .replace("20260101T100000Z", "20260102T100000Z")
            .replace("Sync", "Sync!"));
        let upd = stored(apply(
            Some(&accepted),
            &incoming(&m, &o2, &olga, &ann),
            &ctx,
        ));
        let mm = upd.master.as_ref().unwrap();
        assert_eq!(mm.summary.as_deref(), Some("Sync!"));
        assert_eq!(
            mm.attendee("ann@local.test").unwrap().partstat,
            PartStat::Accepted
        );
        // A new SEQUENCE asks again.
        let (_, o3) = obj(&REQ
            .replace("SEQUENCE:0", "SEQUENCE:1")
            .replace("20260101T100000Z", "20260103T100000Z"));
        let upd3 = stored(apply(Some(&upd), &incoming(&m, &o3, &olga, &ann), &ctx));
        assert_eq!(
            upd3.master
                .as_ref()
                .unwrap()
                .attendee("ann@local.test")
                .unwrap()
                .partstat,
            PartStat::NeedsAction
        );
        // A CANCEL from a stranger changes nothing; from Olga it cancels.
        let cancel_text = REQ
            .replace("METHOD:REQUEST", "METHOD:CANCEL")
            .replace("SEQUENCE:0", "SEQUENCE:1");
        let (cm, co) = obj(&cancel_text);
        let eve = vec!["eve@evil.test".to_string()];
        assert!(matches!(
            apply(Some(&upd3), &incoming(&cm, &co, &eve, &ann), &ctx),
            Outcome::Unchanged(_)
        ));
        let gone = stored(apply(Some(&upd3), &incoming(&cm, &co, &olga, &ann), &ctx));
        assert!(gone.master.as_ref().unwrap().is_cancelled());
    }

    #[test]
    fn an_instance_invited_alone_is_held_without_its_master() {
        let ctx = Context::default();
        let olga = vec!["olga@remote.test".to_string()];
        let ann = vec!["ann@local.test".to_string()];
        let text = REQ
            .replace(
                "RRULE:FREQ=WEEKLY;COUNT=6\r\n",
                "RECURRENCE-ID:20260317T140000Z\r\n",
            )
            .replace("DTSTART:20260310T140000Z", "DTSTART:20260317T160000Z")
            .replace("DTEND:20260310T150000Z", "DTEND:20260317T170000Z");
        let (m, o) = obj(&text);
        assert!(o.master.is_none());
        let held = stored(apply(None, &incoming(&m, &o, &olga, &ann), &ctx));
        assert!(held.master.is_none());
        let e = expand::occurrences(&held, 0, i64::MAX / 2, chrono_tz::UTC, 100);
        assert_eq!(e.occurrences.len(), 1);
        let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        assert_eq!(e.occurrences[0].start, ts("2026-03-17T16:00:00Z"));
        assert_eq!(
            e.occurrences[0].recurrence_id,
            Some(ts("2026-03-17T14:00:00Z"))
        );
        // Then the series arrives: it is held with its master.
        let (_, series) = obj(&REQ.replace("SEQUENCE:0", "SEQUENCE:1"));
        let both = stored(apply(
            Some(&held),
            &incoming(&m, &series, &olga, &ann),
            &ctx,
        ));
        assert!(both.master.is_some());
    }

    #[test]
    fn cancel_one_instance_becomes_an_exdate() {
        let ctx = Context::default();
        let olga = vec!["olga@remote.test".to_string()];
        let ann = vec!["ann@local.test".to_string()];
        let (m, o) = obj(REQ);
        let held = stored(apply(None, &incoming(&m, &o, &olga, &ann), &ctx));
        let text = REQ
            .replace("METHOD:REQUEST", "METHOD:CANCEL")
            .replace(
                "RRULE:FREQ=WEEKLY;COUNT=6\r\n",
                "RECURRENCE-ID:20260317T140000Z\r\n",
            )
            .replace("DTSTART:20260310T140000Z", "DTSTART:20260317T140000Z")
            .replace("DTEND:20260310T150000Z", "DTEND:20260317T150000Z");
        let (cm, co) = obj(&text);
        let after = stored(apply(Some(&held), &incoming(&cm, &co, &olga, &ann), &ctx));
        let e = expand::occurrences(&after, 0, i64::MAX / 2, chrono_tz::UTC, 100);
        assert_eq!(e.occurrences.len(), 5);
        let ts = chrono::DateTime::parse_from_rfc3339("2026-03-17T14:00:00Z")
            .unwrap()
            .timestamp();
        assert!(e.occurrences.iter().all(|o| o.start != ts));
    }

    #[test]
    fn reply_updates_only_from_that_attendee() {
        let ctx = Context::default();
        // Olga is local here and organizes; Ann replies from outside.
        let (m, o) = obj(REQ);
        let olga = vec!["olga@remote.test".to_string()];
        let held = stored(apply(None, &incoming(&m, &o, &olga, &olga), &ctx));
        // Outlook.com style: no ORGANIZER, no DTSTART.
        let reply = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:Microsoft Exchange Server 2010\r\nMETHOD:REPLY\r\n\
BEGIN:VEVENT\r\nUID:m1@google.com\r\nDTSTAMP:20260105T100000Z\r\n\
ATTENDEE;PARTSTAT=DECLINED:mailto:ANN@local.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let (rm, ro) = obj(reply);
        let eve = vec!["eve@evil.test".to_string()];
        assert!(matches!(
            apply(Some(&held), &incoming(&rm, &ro, &eve, &olga), &ctx),
            Outcome::Unchanged(_)
        ));
        let ann = vec!["ann@local.test".to_string()];
        let after = stored(apply(Some(&held), &incoming(&rm, &ro, &ann, &olga), &ctx));
        assert_eq!(
            after
                .master
                .as_ref()
                .unwrap()
                .attendee("ann@local.test")
                .unwrap()
                .partstat,
            PartStat::Declined
        );
        // Not to the organizer: nothing.
        assert!(matches!(
            apply(Some(&held), &incoming(&rm, &ro, &ann, &ann), &ctx),
            Outcome::Unchanged(_)
        ));
    }

    #[test]
    fn counter_kept_then_accepted() {
        let ctx = Context::default();
        let (m, o) = obj(REQ);
        let olga = vec!["olga@remote.test".to_string()];
        let held = stored(apply(None, &incoming(&m, &o, &olga, &olga), &ctx));
        let counter_text = REQ
            .replace("METHOD:REQUEST", "METHOD:COUNTER")
            .replace("DTSTART:20260310T140000Z", "DTSTART:20260310T160000Z")
            .replace("DTEND:20260310T150000Z", "DTEND:20260310T170000Z");
        let (cm, co) = obj(&counter_text);
        let ann = vec!["ann@local.test".to_string()];
        let with = stored(apply(Some(&held), &incoming(&cm, &co, &ann, &olga), &ctx));
        assert_eq!(with.counters.len(), 1);
        let accepted = accept_counter(&with, 0, 1_800_000_000, &ctx)
            .unwrap()
            .object;
        assert!(accepted.counters.is_empty());
        let mm = accepted.master.as_ref().unwrap();
        assert_eq!(mm.sequence, 1);
        assert_eq!(
            mm.start.as_ref().unwrap().utc,
            chrono::DateTime::parse_from_rfc3339("2026-03-10T16:00:00Z")
                .unwrap()
                .timestamp()
        );
        assert_eq!(
            mm.attendee("ann@local.test").unwrap().partstat,
            PartStat::Accepted
        );
        let (declined, text) = decline_counter(&with, 0, Some("no"), 5, &ctx).unwrap();
        assert!(declined.object.counters.is_empty());
        assert!(text.contains("METHOD:DECLINECOUNTER"));
    }
}
