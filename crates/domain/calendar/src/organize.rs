//! What users do with their appointments and tasks (the client API and the
//! command line), as plans: the change to their own calendar, the same
//! change applied directly to local attendees' calendars, and iMIP mail to
//! the others (RFC 6047) through the outbound queue.
//!
//! A change to what the user read is stored only if the object is still
//! what they read (else [`CalendarError::Conflict`]); a plan's calendar
//! changes and mail are committed together.
use crate::merge::{ItipMerge, Put, PutIf};
use crate::render::{imip, render_item};
use crate::{CalendarError, Imip, Plan, Result, Scheduler, unique};
use postgate_ical::expand::parse_rrule;
use postgate_ical::itip::{Answer, accept_counter, decline_counter, respond};
use postgate_ical::write::{Doc, NewItem, new_object};
use postgate_ical::zone::{Zone, by_name};
use postgate_ical::{Context, Limits, Method, ParsedObject, Property as P, parse_all, parse_one};
use postgate_store::{CalendarEntry, CalendarUpdate, CalendarWrite, Resolution, User};
use postgate_types::calendar::{
    Attendee, CalTime, CalendarComponent, CalendarObject, Organizer, PartStat, Status, TimeForm,
};
use postgate_types::{EmailAddress, Flags, ItemKind};
use std::sync::Arc;

/// What an import does.
#[derive(Debug)]
pub struct Import {
    /// The calendar changes.
    pub plan: Plan,
    /// What is imported: (kind, UID).
    pub imported: Vec<(ItemKind, String)>,
    /// What had to be repaired or dropped.
    pub problems: Vec<String>,
}

/// What a user asks an appointment or task to be (a create or a change;
/// `None` leaves a field as it is).
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// SUMMARY.
    pub summary: Option<String>,
    /// Start: RFC 3339, or a date for an all-day appointment.
    pub start: Option<String>,
    /// End (exclusive for all-day appointments).
    pub end: Option<String>,
    /// Due (tasks).
    pub due: Option<String>,
    /// All day.
    pub all_day: Option<bool>,
    /// The IANA zone the times are kept in (else UTC).
    pub time_zone: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
    /// DESCRIPTION.
    pub description: Option<String>,
    /// Attendees (or a task's assignees) by address: the whole list.
    pub attendees: Option<Vec<String>>,
    /// RRULE; an empty string removes it.
    pub rrule: Option<String>,
    /// PRIORITY (tasks), 0–9.
    pub priority: Option<u8>,
    /// PERCENT-COMPLETE (tasks).
    pub percent_complete: Option<u8>,
}

fn invalid(m: impl Into<String>) -> CalendarError {
    CalendarError::Invalid(m.into())
}

/// Reads a time from the API: RFC 3339 (`2026-03-10T09:00:00+01:00`), a
/// local time in `zone` (`2026-03-10T09:00:00`), or a date for all-day.
pub fn cal_time(
    value: &str,
    all_day: bool,
    zone: Option<&str>,
    default: chrono_tz::Tz,
) -> Result<CalTime> {
    let value = value.trim();
    let dz = if default == chrono_tz::UTC {
        Zone::Utc
    } else {
        Zone::Iana(default)
    };
    if all_day {
        let day = chrono::NaiveDate::parse_from_str(value.get(..10).unwrap_or(value), "%Y-%m-%d")
            .map_err(|_| invalid(format!("{value:?} is not a date (YYYY-MM-DD)")))?;
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        return Ok(CalTime {
            utc: dz.to_utc(midnight),
            local: day.format("%Y%m%d").to_string(),
            form: TimeForm::Date,
        });
    }
    let zone = match zone.map(str::trim).filter(|z| !z.is_empty()) {
        None => None,
        Some(name) => match by_name(name) {
            Some(z @ Zone::Iana(_)) => Some((name.to_string(), z)),
            Some(Zone::Utc) => None,
            _ => return Err(invalid(format!("{name:?} is not an IANA time zone"))),
        },
    };
    let utc = match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(t) => t.timestamp(),
        Err(_) => {
            let local = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M"))
                .map_err(|_| invalid(format!("{value:?} is not an RFC 3339 time")))?;
            match &zone {
                Some((_, z)) => z.to_utc(local),
                None => dz.to_utc(local),
            }
        }
    };
    Ok(match zone {
        Some((name, z)) => CalTime {
            utc,
            local: z.to_local(utc).format("%Y%m%dT%H%M%S").to_string(),
            form: TimeForm::Zone(name),
        },
        None => CalTime {
            utc,
            local: chrono::DateTime::from_timestamp(utc, 0)
                .unwrap_or_default()
                .format("%Y%m%dT%H%M%S")
                .to_string(),
            form: TimeForm::Utc,
        },
    })
}

fn own_addresses(user: &User) -> Vec<String> {
    std::iter::once(&user.address)
        .chain(user.aliases.iter())
        .map(|a| a.to_string().to_lowercase())
        .collect()
}

fn organizer_of(user: &User) -> Organizer {
    Organizer {
        email: user.address.to_string().to_lowercase(),
        name: Some(user.display_name.clone()).filter(|n| !n.is_empty()),
        sent_by: None,
    }
}

impl Scheduler {
    fn write(&self, kind: ItemKind, object: CalendarObject, seen: bool) -> CalendarWrite {
        let mut w = render_item(kind, object, self.ctx.zone);
        if seen {
            w.flags = Flags::SEEN;
        }
        w
    }

    fn put_if(
        &self,
        user: &User,
        kind: ItemKind,
        uid: &str,
        expected: Option<u32>,
        write: Option<CalendarWrite>,
        note: &str,
    ) -> CalendarUpdate {
        CalendarUpdate {
            user: user.id,
            kind,
            uid: uid.to_string(),
            merge: Arc::new(PutIf {
                expected,
                write,
                note: note.to_string(),
            }),
        }
    }

    /// Sends an iTIP message about `object` to `to`: applied directly to
    /// local users' calendars, mailed to the others.
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        plan: &mut Plan,
        method: &Method,
        kind: ItemKind,
        message: &CalendarObject,
        about: &CalendarComponent,
        from: &User,
        to: &[String],
        mail_text: Option<String>,
    ) -> Result<()> {
        let mut remote: Vec<String> = Vec::new();
        let now = Self::now();
        for addr in to {
            let (local, outside) = self.route(addr).await?;
            for u in local {
                if u == from.id {
                    continue;
                }
                let recipient = match self.store.user_by_id(u).await? {
                    Some(r) => own_addresses(&r),
                    None => continue,
                };
                plan.updates.push(CalendarUpdate {
                    user: u,
                    kind,
                    uid: message.uid.clone(),
                    merge: Arc::new(ItipMerge {
                        method: method.clone(),
                        kind,
                        object: message.clone(),
                        senders: own_addresses(from),
                        recipient,
                        now,
                        ctx: self.ctx,
                        fresh: None,
                    }),
                });
            }
            for r in outside {
                if !remote.contains(&r) {
                    remote.push(r);
                }
            }
        }
        if remote.is_empty() {
            return Ok(());
        }
        let text = match mail_text {
            Some(t) => t,
            None => Doc::of(message)
                .map(|d| d.message(method, |_| true))
                .ok_or_else(|| invalid("unreadable object"))?,
        };
        let raw = imip(
            method,
            kind,
            about,
            (from.display_name.clone(), from.address.to_string()),
            remote.iter().map(|r| (String::new(), r.clone())).collect(),
            text,
            self.ctx.zone,
            self.message_id(),
            None,
        );
        plan.mails.push(Imip {
            mail_from: from.address.to_string(),
            sender_user: Some(from.id),
            remote,
            local: Vec::new(),
            raw,
        });
        Ok(())
    }

    /// Checks the attendees' addresses; refuses unknown local ones.
    async fn attendees(&self, list: &[String], organizer: &User) -> Result<Vec<Attendee>> {
        let mut out: Vec<Attendee> = Vec::new();
        let own = own_addresses(organizer);
        for a in list {
            let addr = EmailAddress::parse(a.trim())
                .map_err(|e| invalid(format!("{a:?} is not an address: {e}")))?;
            let email = addr.to_string().to_lowercase();
            if own.contains(&email) || out.iter().any(|x| x.email == email) {
                continue;
            }
            match self.store.resolve(&addr).await? {
                Resolution::Unknown | Resolution::Ambiguous => {
                    return Err(CalendarError::Unknown(format!("no such recipient: {addr}")));
                }
                _ => {}
            }
            out.push(Attendee {
                email,
                rsvp: true,
                ..Attendee::default()
            });
        }
        if out.len() > 5_000 {
            return Err(invalid("more than 5,000 attendees"));
        }
        Ok(out)
    }

    fn parse_object(&self, text: &str) -> Result<ParsedObject> {
        parse_one(text, &self.ctx)
            .ok()
            .and_then(|mut p| p.objects.drain(..).next())
            .ok_or_else(|| invalid("the appointment could not be written"))
    }

    /// A new appointment or task by `user`; returns the plan and its UID.
    pub async fn create(&self, user: &User, kind: ItemKind, spec: &Spec) -> Result<(Plan, String)> {
        let all_day = spec.all_day.unwrap_or(false);
        let tz = spec.time_zone.as_deref();
        let start = spec
            .start
            .as_deref()
            .map(|s| cal_time(s, all_day, tz, self.ctx.zone))
            .transpose()?;
        let mut end = spec
            .end
            .as_deref()
            .map(|s| cal_time(s, all_day, tz, self.ctx.zone))
            .transpose()?;
        let due = spec
            .due
            .as_deref()
            .map(|s| cal_time(s, all_day, tz, self.ctx.zone))
            .transpose()?;
        if kind == ItemKind::Appointment {
            let Some(s) = &start else {
                return Err(invalid("an appointment needs a start"));
            };
            if end.is_none() {
                end = Some(if all_day {
                    cal_time(
                        &chrono::NaiveDate::parse_from_str(&s.local, "%Y%m%d")
                            .map(|d| d.succ_opt().unwrap_or(d).to_string())
                            .unwrap_or_default(),
                        true,
                        None,
                        self.ctx.zone,
                    )?
                } else {
                    postgate_ical::write::instance_time(
                        s,
                        s.utc + 3600,
                        &postgate_ical::zone::of_time(&CalendarObject::default(), s, self.ctx.zone),
                    )
                });
            }
            if end.as_ref().is_some_and(|e| e.utc < s.utc) {
                return Err(invalid("the end is before the start"));
            }
        }
        let rrule = spec.rrule.clone().filter(|r| !r.trim().is_empty());
        if let Some(r) = &rrule
            && parse_rrule(r).is_none()
        {
            return Err(invalid(format!("{r:?} is not an RRULE (RFC 5545 §3.3.10)")));
        }
        let attendees = self
            .attendees(spec.attendees.as_deref().unwrap_or(&[]), user)
            .await?;
        let uid = format!("{}@{}", unique(), self.hostname);
        let now = Self::now();
        let organizer = (!attendees.is_empty()).then(|| organizer_of(user));
        let mut all = attendees.clone();
        if let Some(o) = &organizer
            && kind == ItemKind::Appointment
        {
            // The organizer attends (as Outlook and Google list them).
            all.insert(
                0,
                Attendee {
                    email: o.email.clone(),
                    name: o.name.clone(),
                    role: postgate_types::calendar::Role::Chair,
                    partstat: PartStat::Accepted,
                    ..Attendee::default()
                },
            );
        }
        let text = new_object(&NewItem {
            kind: Some(kind),
            uid: uid.clone(),
            sequence: 0,
            dtstamp: now,
            organizer,
            attendees: all,
            summary: spec.summary.clone(),
            location: spec.location.clone(),
            description: spec.description.clone(),
            start,
            end,
            due,
            rrule,
            status: (kind == ItemKind::Task).then_some(Status::NeedsAction),
            priority: spec.priority.map(|p| p.min(9)),
            percent_complete: spec.percent_complete.map(|p| p.min(100)),
            completed: None,
        });
        let object = self.parse_object(&text)?.object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            kind,
            &uid,
            None,
            Some(self.write(kind, object.clone(), true)),
            "created",
        ));
        let to: Vec<String> = attendees.iter().map(|a| a.email.clone()).collect();
        let about = object.main().cloned().unwrap_or_default();
        self.fan_out(
            &mut plan,
            &Method::Request,
            kind,
            &object,
            &about,
            user,
            &to,
            None,
        )
        .await?;
        Ok((plan, uid))
    }

    /// Whether `user` organizes `entry` (or it is their own, without organizer).
    fn organizes(user: &User, entry: &CalendarEntry) -> bool {
        let own = own_addresses(user);
        match entry.object.main().and_then(|m| m.organizer.as_ref()) {
            None => true,
            Some(o) => own.iter().any(|a| a.eq_ignore_ascii_case(&o.email)),
        }
    }

    /// The attendees to tell of a change: every attendee but the organizer.
    fn others(obj: &CalendarObject, user: &User) -> Vec<String> {
        let own = own_addresses(user);
        let mut out: Vec<String> = Vec::new();
        for c in obj.components() {
            for a in &c.attendees {
                if !own.contains(&a.email) && !out.contains(&a.email) {
                    out.push(a.email.clone());
                }
            }
        }
        out
    }

    /// Changes an appointment or task its user organizes: a new SEQUENCE
    /// when time, place or recurrence change (RFC 5546 §2.1.5), attendees
    /// told (REQUEST), those removed told it is cancelled for them.
    pub async fn update(&self, user: &User, entry: &CalendarEntry, spec: &Spec) -> Result<Plan> {
        if !Self::organizes(user, entry) {
            return Err(CalendarError::Forbidden(
                "only the organizer changes it; answer the invitation instead".into(),
            ));
        }
        let obj = &entry.object;
        let main = obj
            .master
            .as_ref()
            .or(obj.overrides.first())
            .cloned()
            .unwrap_or_default();
        let mut doc = Doc::of(obj).ok_or_else(|| invalid("unreadable object"))?;
        let item = doc.item(0).ok_or_else(|| invalid("empty object"))?;
        let all_day = spec.all_day.unwrap_or(main.all_day);
        let tz = spec.time_zone.clone().or(main.time_zone.clone());
        let mut significant = false;
        if let Some(s) = &spec.summary {
            doc.set_text(item, P::Summary, Some(s));
        }
        if let Some(d) = &spec.description {
            doc.set_text(item, P::Description, Some(d));
        }
        if let Some(l) = &spec.location {
            significant |= main.location.as_deref() != Some(l.as_str());
            doc.set_text(item, P::Location, Some(l));
        }
        for (value, prop) in [
            (&spec.start, P::Dtstart),
            (&spec.end, P::Dtend),
            (&spec.due, P::Due),
        ] {
            if let Some(v) = value {
                let t = cal_time(v, all_day, tz.as_deref(), self.ctx.zone)?;
                if prop == P::Dtend {
                    doc.set(item, None, P::Duration);
                }
                doc.set_time(item, prop, Some(&t));
                significant = true;
            }
        }
        if let Some(r) = &spec.rrule {
            if r.trim().is_empty() {
                doc.set(item, None, P::Rrule);
            } else {
                if parse_rrule(r).is_none() {
                    return Err(invalid(format!("{r:?} is not an RRULE (RFC 5545 §3.3.10)")));
                }
                doc.set_rrule(item, Some(r));
            }
            significant = true;
        }
        if let Some(p) = spec.priority {
            doc.set_integer(item, P::Priority, Some(p.min(9) as i64));
        }
        if let Some(p) = spec.percent_complete {
            doc.set_integer(item, P::PercentComplete, Some(p.min(100) as i64));
        }
        let before = Self::others(obj, user);
        let mut removed: Vec<String> = Vec::new();
        if let Some(list) = &spec.attendees {
            let wanted = self.attendees(list, user).await?;
            let keep: Vec<String> = wanted.iter().map(|a| a.email.clone()).collect();
            let own = own_addresses(user);
            removed = before
                .iter()
                .filter(|a| !keep.contains(a))
                .cloned()
                .collect();
            doc.retain_attendees(item, |e| {
                keep.contains(&e.to_string()) || own.contains(&e.to_string())
            });
            for a in &wanted {
                doc.add_attendee(item, a);
            }
            if main.organizer.is_none() && !wanted.is_empty() {
                doc.set_organizer(item, &organizer_of(user));
            }
            significant |= !removed.is_empty() || wanted.len() != before.len();
        }
        let sequence = obj.sequence() + u32::from(significant);
        if significant {
            let own: Vec<String> = own_addresses(user);
            let own: Vec<&str> = own.iter().map(String::as_str).collect();
            doc.reset_partstats(item, &own);
        }
        let now = Self::now();
        doc.stamp(item, sequence, now);
        let new = doc
            .into_object(obj.counters.clone(), &self.ctx)
            .ok_or_else(|| invalid("the change could not be written"))?
            .object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &obj.uid,
            Some(entry.item_uid),
            Some(self.write(entry.kind, new.clone(), true)),
            "changed",
        ));
        let about = new.main().cloned().unwrap_or_default();
        let to = Self::others(&new, user);
        self.fan_out(
            &mut plan,
            &Method::Request,
            entry.kind,
            &new,
            &about,
            user,
            &to,
            None,
        )
        .await?;
        if !removed.is_empty() {
            let cancelled = self.cancelled(obj, sequence, now)?;
            self.fan_out(
                &mut plan,
                &Method::Cancel,
                entry.kind,
                &cancelled,
                &about,
                user,
                &removed,
                None,
            )
            .await?;
        }
        Ok(plan)
    }

    /// The object as a CANCEL carries it (RFC 5546 §3.2.5).
    fn cancelled(&self, obj: &CalendarObject, sequence: u32, now: i64) -> Result<CalendarObject> {
        let mut doc = Doc::of(obj).ok_or_else(|| invalid("unreadable object"))?;
        for item in doc.items() {
            doc.set_text(item, P::Status, Some(Status::Cancelled.as_str()));
            doc.stamp(item, sequence, now);
        }
        Ok(doc
            .into_object(Vec::new(), &self.ctx)
            .ok_or_else(|| invalid("the cancellation could not be written"))?
            .object)
    }

    /// Deletes an appointment or task from the user's calendar; if they
    /// organize it, its attendees get CANCEL.
    pub async fn delete(&self, user: &User, entry: &CalendarEntry) -> Result<Plan> {
        let obj = &entry.object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &obj.uid,
            Some(entry.item_uid),
            None,
            "deleted",
        ));
        let to = Self::others(obj, user);
        let organizes = obj
            .main()
            .and_then(|m| m.organizer.as_ref())
            .is_some_and(|o| own_addresses(user).contains(&o.email));
        if organizes && !to.is_empty() {
            let cancelled = self.cancelled(obj, obj.sequence() + 1, Self::now())?;
            let about = cancelled.main().cloned().unwrap_or_default();
            self.fan_out(
                &mut plan,
                &Method::Cancel,
                entry.kind,
                &cancelled,
                &about,
                user,
                &to,
                None,
            )
            .await?;
        }
        Ok(plan)
    }

    /// An attendee answers (RFC 5546 §3.2.3): their copy changes, and the
    /// organizer gets the REPLY (directly when local).
    pub async fn reply(
        &self,
        user: &User,
        entry: &CalendarEntry,
        partstat: &PartStat,
        comment: Option<&str>,
        rid: Option<i64>,
    ) -> Result<Plan> {
        let obj = &entry.object;
        let own = own_addresses(user);
        let me = obj
            .components()
            .flat_map(|c| c.attendees.iter())
            .find(|a| own.contains(&a.email))
            .cloned()
            .ok_or_else(|| CalendarError::Forbidden("you are not an attendee".into()))?;
        let organizer = obj
            .main()
            .and_then(|m| m.organizer.clone())
            .ok_or_else(|| CalendarError::Forbidden("it has no organizer to answer".into()))?;
        let now = Self::now();
        let answer = Answer {
            me: &me,
            partstat,
            comment,
            rid,
        };
        let (updated, reply_text) = respond(obj, entry.kind, &answer, now, &self.ctx)
            .ok_or_else(|| invalid("the answer could not be written"))?;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &obj.uid,
            Some(entry.item_uid),
            Some(self.write(entry.kind, updated.object, true)),
            "answered",
        ));
        let message = self.parse_object(&reply_text)?.object;
        let about = message.main().cloned().unwrap_or_default();
        self.fan_out(
            &mut plan,
            &Method::Reply,
            entry.kind,
            &message,
            &about,
            user,
            &[organizer.email],
            Some(reply_text),
        )
        .await?;
        Ok(plan)
    }

    /// Marks a task done: an assigned task answers its organizer with
    /// PARTSTAT=COMPLETED and STATUS:COMPLETED (RFC 5546 §3.4.3); the user's
    /// own task just changes.
    pub async fn complete(&self, user: &User, entry: &CalendarEntry) -> Result<Plan> {
        let obj = &entry.object;
        let own = own_addresses(user);
        let assigned = obj.main().is_some_and(|m| {
            m.organizer
                .as_ref()
                .is_some_and(|o| !own.contains(&o.email))
                && m.attendees.iter().any(|a| own.contains(&a.email))
        });
        if assigned {
            return self
                .reply(user, entry, &PartStat::Completed, None, None)
                .await;
        }
        let mut doc = Doc::of(obj).ok_or_else(|| invalid("unreadable object"))?;
        let item = doc.item(0).ok_or_else(|| invalid("empty object"))?;
        let now = Self::now();
        doc.set_text(item, P::Status, Some(Status::Completed.as_str()));
        doc.set_integer(item, P::PercentComplete, Some(100));
        doc.set_utc(item, P::Completed, Some(now));
        doc.stamp(item, obj.sequence(), now);
        let new = doc
            .into_object(obj.counters.clone(), &self.ctx)
            .ok_or_else(|| invalid("the change could not be written"))?
            .object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &obj.uid,
            Some(entry.item_uid),
            Some(self.write(entry.kind, new, true)),
            "completed",
        ));
        Ok(plan)
    }

    fn organizer_only(user: &User, entry: &CalendarEntry) -> Result<()> {
        if Self::organizes(user, entry) {
            Ok(())
        } else {
            Err(CalendarError::Forbidden(
                "only the organizer answers counter-proposals".into(),
            ))
        }
    }

    /// The organizer takes counter-proposal `n` (RFC 5546 §3.2.7): the
    /// appointment moves, every attendee gets the new REQUEST.
    pub async fn accept_counter(
        &self,
        user: &User,
        entry: &CalendarEntry,
        n: usize,
    ) -> Result<Plan> {
        Self::organizer_only(user, entry)?;
        if n >= entry.object.counters.len() {
            return Err(CalendarError::NotFound);
        }
        let new = accept_counter(&entry.object, n, Self::now(), &self.ctx)
            .ok_or_else(|| invalid("the proposal could not be applied"))?
            .object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &new.uid,
            Some(entry.item_uid),
            Some(self.write(entry.kind, new.clone(), true)),
            "counter-proposal accepted",
        ));
        let about = new.main().cloned().unwrap_or_default();
        let to = Self::others(&new, user);
        self.fan_out(
            &mut plan,
            &Method::Request,
            entry.kind,
            &new,
            &about,
            user,
            &to,
            None,
        )
        .await?;
        Ok(plan)
    }

    /// The organizer declines counter-proposal `n`: its proposer gets a
    /// DECLINECOUNTER (RFC 5546 §3.2.8), as mail.
    pub async fn decline_counter(
        &self,
        user: &User,
        entry: &CalendarEntry,
        n: usize,
        comment: Option<&str>,
    ) -> Result<Plan> {
        Self::organizer_only(user, entry)?;
        let Some(k) = entry.object.counters.get(n) else {
            return Err(CalendarError::NotFound);
        };
        let proposer = k.from.clone();
        let (new, text) = decline_counter(&entry.object, n, comment, Self::now(), &self.ctx)
            .ok_or_else(|| invalid("the proposal could not be declined"))?;
        let new = new.object;
        let mut plan = Plan::default();
        plan.updates.push(self.put_if(
            user,
            entry.kind,
            &new.uid,
            Some(entry.item_uid),
            Some(self.write(entry.kind, new.clone(), true)),
            "counter-proposal declined",
        ));
        let (local, remote) = self.route(&proposer).await?;
        let about = new.main().cloned().unwrap_or_default();
        let raw = imip(
            &Method::DeclineCounter,
            entry.kind,
            &about,
            (user.display_name.clone(), user.address.to_string()),
            vec![(String::new(), proposer)],
            text,
            self.ctx.zone,
            self.message_id(),
            comment,
        );
        plan.mails.push(Imip {
            mail_from: user.address.to_string(),
            sender_user: Some(user.id),
            remote,
            local,
            raw,
        });
        Ok(plan)
    }

    /// Imports iCalendar text into the user's calendar (no scheduling
    /// messages: a file, a PUBLISH). Returns the plan, what was imported
    /// (kind, UID) and what had to be repaired or dropped.
    pub fn import(&self, user: &User, text: &str) -> Result<Import> {
        let ctx = Context {
            limits: Limits::import(),
            ..self.ctx
        };
        let all = parse_all(text, &ctx).map_err(|e| invalid(e.to_string()))?;
        let mut plan = Plan::default();
        let mut done = Vec::new();
        let mut problems = Vec::new();
        for p in all {
            problems.extend(p.problems);
            for o in p.objects {
                done.push((o.kind, o.object.uid.clone()));
                let uid = o.object.uid.clone();
                plan.updates.push(CalendarUpdate {
                    user: user.id,
                    kind: o.kind,
                    uid,
                    merge: Arc::new(Put(self.write(o.kind, o.object, true))),
                });
            }
        }
        if done.is_empty() {
            return Err(invalid("no appointment or task in the calendar"));
        }
        Ok(Import {
            plan,
            imported: done,
            problems,
        })
    }

    /// Every appointment and task of a user as one iCalendar text.
    pub async fn export(&self, user: &User) -> Result<String> {
        let mut all = self
            .store
            .calendar_entries(user.id, ItemKind::Appointment)
            .await?;
        all.extend(self.store.calendar_entries(user.id, ItemKind::Task).await?);
        Ok(postgate_ical::write::combine(all.iter().map(|e| &e.object)))
    }
}
