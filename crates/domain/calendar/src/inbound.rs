//! Mail that arrives with a text/calendar part: what it does to the local
//! recipients' calendars (RFC 6047 §3), and the answers some methods ask for.
use crate::merge::ItipMerge;
use crate::render::imip;
use crate::{Imip, Plan, Scheduler};
use postgate_ical::parse::FreeBusy;
use postgate_ical::write::{Doc, freebusy_reply};
use postgate_ical::{Method, parse_one};
use postgate_mime::ParsedMessage;
use postgate_store::{CalendarUpdate, Resolution, UserRef};
use postgate_types::calendar::{Attendee, Organizer};
use postgate_types::{EmailAddress, ItemKind, UserId};
use std::collections::HashSet;
use std::sync::Arc;

/// At most this many objects of one message are applied (a message that
/// carries more is not a scheduling message anyone sends).
const MAX_OBJECTS: usize = 100;

/// The longest span a free/busy request is answered for.
const MAX_FREEBUSY_SPAN: i64 = 366 * 86400;

/// What a delivered message does to calendars.
#[derive(Debug, Default)]
pub struct Inbound {
    /// Changes to commit with the message.
    pub updates: Vec<CalendarUpdate>,
    /// Answers to send once it is committed ([`Scheduler::answer`]).
    pub later: Vec<Later>,
}

/// An answer a message asks for.
#[derive(Debug, Clone)]
pub enum Later {
    /// REFRESH (RFC 5546 §3.2.6): send the current version to an attendee.
    Refresh {
        /// The organizer, a local user.
        organizer: UserId,
        /// Appointment or task.
        kind: ItemKind,
        /// UID.
        uid: String,
        /// Who asks.
        requester: String,
    },
    /// VFREEBUSY REQUEST (RFC 5546 §3.3.2): send a user's busy time.
    FreeBusy {
        /// Whose time.
        user: UserId,
        /// The request.
        request: FreeBusy,
    },
}

fn lower(s: Option<&str>) -> Option<String> {
    s.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty())
}

impl Scheduler {
    /// What a message arriving for `recipients` does to their calendars:
    /// each text/calendar part with a METHOD is applied per iTIP to each
    /// recipient. Reports (bounces quoting an invitation) and parts without
    /// METHOD do nothing; a part that cannot be read is logged and skipped.
    pub async fn inbound(
        &self,
        parsed: &ParsedMessage,
        mail_from: &str,
        recipients: &[UserRef],
    ) -> Inbound {
        let mut out = Inbound::default();
        if parsed.report || parsed.calendars.is_empty() || recipients.is_empty() {
            return out;
        }
        tracing::debug!(
            parts = parsed.calendars.len(),
            recipients = recipients.len(),
            "iMIP"
        );
        let mut senders: Vec<String> = [
            lower(
                parsed
                    .content
                    .from
                    .as_ref()
                    .and_then(|c| c.address.as_deref()),
            ),
            lower(
                parsed
                    .content
                    .sender
                    .as_ref()
                    .and_then(|c| c.address.as_deref()),
            ),
            lower(Some(mail_from)),
        ]
        .into_iter()
        .flatten()
        .collect();
        senders.dedup();
        // Each recipient with every address that reaches them.
        let mut people: Vec<(UserId, Vec<String>)> = Vec::new();
        for r in recipients {
            let mut addrs = vec![r.address.to_string().to_lowercase()];
            if let Ok(Some(u)) = self.store.user_by_id(r.id).await {
                addrs.extend(u.aliases.iter().map(|a| a.to_string().to_lowercase()));
            }
            people.push((r.id, addrs));
        }
        let now = Self::now();
        let mut seen = HashSet::new();
        for (i, part) in parsed.calendars.iter().enumerate() {
            // The same object inline and attached (as Outlook and Google
            // send it): read once.
            let same = |a: &str, b: &str| {
                a.trim_end_matches(['\r', '\n', ' ']) == b.trim_end_matches(['\r', '\n', ' '])
            };
            if parsed.calendars[..i]
                .iter()
                .any(|q| same(&q.text, &part.text))
            {
                continue;
            }
            let p = match parse_one(&part.text, &self.ctx) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "calendar part rejected; the mail is delivered");
                    continue;
                }
            };
            for problem in p.problems.iter().take(20) {
                tracing::info!(problem, "calendar part repaired");
            }
            let Some(method) = p.method.clone() else {
                // RFC 6047 §2.4: without METHOD it is not a scheduling message.
                continue;
            };
            // The same message inline and attached: once.
            let key: Vec<(String, u32, Option<i64>)> = p
                .objects
                .iter()
                .map(|o| {
                    (
                        o.object.uid.clone(),
                        o.object.sequence(),
                        o.object.main().and_then(|m| m.dtstamp),
                    )
                })
                .collect();
            if !seen.insert((method.as_str().to_string(), key)) {
                continue;
            }
            for o in p.objects.iter().take(MAX_OBJECTS) {
                // What a new invitation stores is the same for every
                // recipient: worked out once, here, not in the commit.
                let mut fresh = None;
                for (user, addrs) in &people {
                    if method == Method::Refresh {
                        if let Some(requester) = senders.first() {
                            out.later.push(Later::Refresh {
                                organizer: *user,
                                kind: o.kind,
                                uid: o.object.uid.clone(),
                                requester: requester.clone(),
                            });
                        }
                        continue;
                    }
                    let mut merge = ItipMerge {
                        method: method.clone(),
                        kind: o.kind,
                        object: o.object.clone(),
                        senders: senders.clone(),
                        recipient: addrs.clone(),
                        now,
                        ctx: self.ctx,
                        fresh: fresh.clone(),
                    };
                    if method == Method::Request && fresh.is_none() {
                        merge.prepare();
                        fresh = merge.fresh.clone();
                    }
                    out.updates.push(CalendarUpdate {
                        user: *user,
                        kind: o.kind,
                        uid: o.object.uid.clone(),
                        merge: Arc::new(merge),
                    });
                }
            }
            if method == Method::Request {
                for fb in p.freebusy.iter().take(10) {
                    for (user, addrs) in &people {
                        let asked = fb.attendees.is_empty()
                            || fb.attendees.iter().any(|a| addrs.contains(&a.email));
                        if asked && fb.organizer.is_some() {
                            out.later.push(Later::FreeBusy {
                                user: *user,
                                request: fb.clone(),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Plans the answers a committed message asked for.
    pub async fn answer(&self, later: Vec<Later>) -> Vec<Plan> {
        let mut plans = Vec::new();
        for l in later {
            let plan = match l {
                Later::Refresh {
                    organizer,
                    kind,
                    uid,
                    requester,
                } => self.refresh(organizer, kind, &uid, &requester).await,
                Later::FreeBusy { user, request } => self.freebusy_answer(user, &request).await,
            };
            match plan {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "calendar answer not sent"),
            }
        }
        plans
    }

    /// Where mail to `addr` goes: local users, or outside.
    pub(crate) async fn route(&self, addr: &str) -> crate::Result<(Vec<UserId>, Vec<String>)> {
        let Ok(a) = EmailAddress::parse(addr) else {
            return Ok((Vec::new(), Vec::new()));
        };
        Ok(match self.store.resolve(&a).await? {
            Resolution::Users(us) => (us.into_iter().map(|u| u.id).collect(), Vec::new()),
            Resolution::NotLocal => (Vec::new(), vec![a.to_string()]),
            Resolution::Unknown | Resolution::Ambiguous => (Vec::new(), Vec::new()),
        })
    }

    async fn refresh(
        &self,
        organizer: UserId,
        kind: ItemKind,
        uid: &str,
        requester: &str,
    ) -> crate::Result<Option<Plan>> {
        let Some(entry) = self.store.calendar_by_uid(organizer, kind, uid).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_id(organizer).await? else {
            return Ok(None);
        };
        let obj = &entry.object;
        let Some(main) = obj.main() else {
            return Ok(None);
        };
        // RFC 5546 §3.2.6: the organizer answers an attendee's REFRESH.
        if !main.is_organizer(&user.address.to_string())
            || obj.components().all(|c| c.attendee(requester).is_none())
        {
            tracing::info!(
                uid,
                requester,
                "REFRESH from someone not invited: not answered"
            );
            return Ok(None);
        }
        let Some(doc) = Doc::of(obj) else {
            return Ok(None);
        };
        let text = doc.message(&Method::Request, |_| true);
        let (local, remote) = self.route(requester).await?;
        let raw = imip(
            &Method::Request,
            kind,
            main,
            (user.display_name.clone(), user.address.to_string()),
            vec![(String::new(), requester.to_string())],
            text,
            self.ctx.zone,
            self.message_id(),
            None,
        );
        Ok(Some(Plan {
            updates: Vec::new(),
            mails: vec![Imip {
                mail_from: user.address.to_string(),
                sender_user: Some(user.id),
                remote,
                local,
                raw,
            }],
        }))
    }

    async fn freebusy_answer(&self, user: UserId, fb: &FreeBusy) -> crate::Result<Option<Plan>> {
        if !self.answer_freebusy {
            return Ok(None);
        }
        let (Some(org), Some(u)) = (&fb.organizer, self.store.user_by_id(user).await?) else {
            return Ok(None);
        };
        let now = Self::now();
        let start = fb.start.unwrap_or(now);
        let end = fb
            .end
            .unwrap_or(start + 7 * 86400)
            .min(start + MAX_FREEBUSY_SPAN);
        if end <= start {
            return Ok(None);
        }
        let busy = self.freebusy(user, start, end).await?;
        let periods: Vec<(i64, i64, &str)> = busy
            .iter()
            .map(|b| (b.start, b.end, b.kind.as_str()))
            .collect();
        let me = Attendee {
            email: u.address.to_string(),
            name: Some(u.display_name.clone()),
            ..Attendee::default()
        };
        let organizer = Organizer {
            email: org.email.clone(),
            name: org.name.clone(),
            sent_by: None,
        };
        let text = freebusy_reply(
            fb.uid.as_deref(),
            &organizer,
            &me,
            start,
            end,
            &periods,
            now,
        );
        let (local, remote) = self.route(&org.email).await?;
        let about = postgate_types::calendar::CalendarComponent {
            summary: Some(format!("Free/busy of {}", u.display_name)),
            ..Default::default()
        };
        let raw = imip(
            &Method::Reply,
            ItemKind::Appointment,
            &about,
            (u.display_name.clone(), u.address.to_string()),
            vec![(org.name.clone().unwrap_or_default(), org.email.clone())],
            text,
            self.ctx.zone,
            self.message_id(),
            Some("Free/busy information"),
        );
        Ok(Some(Plan {
            updates: Vec::new(),
            mails: vec![Imip {
                mail_from: u.address.to_string(),
                sender_user: Some(u.id),
                remote,
                local,
                raw,
            }],
        }))
    }
}
