//! Local delivery: the step between an engine that accepted a message and the store.
//!
//! What it is for: resolving recipients through the directory (users, aliases,
//! groups, First.Last, postmaster), converting the MIME bytes into an item
//! ([`postgate_mime`]), deciding the folder (Inbox, or Junk when a configured
//! header says so), and handing the store one durable delivery. SMTP,
//! submission and the client API deliver through it. Mail that carries
//! iCalendar scheduling (iMIP) changes the recipients' calendars in the same
//! commit ([`postgate_calendar`] plans what it does), and scheduling acts of
//! local users are carried out here ([`Delivery::carry_out`]).
//!
//! What it is not for: protocol replies (the engine maps [`DeliveryError`] and
//! [`Resolution`] to its own wire replies) or remote delivery (the outbound queue).
//!
//! Every message accepted here is also written to [`accounting`] when it is
//! on; the outbound agent writes its outcomes through the same sink
//! ([`Delivery::accounting`]).
#![deny(missing_docs)]

pub mod accounting;

use accounting::Accounting;
use postgate_calendar::{Plan, Scheduler};
use postgate_mime::dsn;
use postgate_store::{
    Envelope, NewDelivery, Notify, Outbound, OutboundRcpt, Resolution, Store, StoreError, Target,
    UserRef,
};
use postgate_types::{EmailAddress, Flags, FolderRole, UserId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages larger than this are parsed on a blocking thread, so that a 20 MB
/// message does not stall the other sessions sharing the async worker.
const PARSE_INLINE_MAX: usize = 256 * 1024;

/// A header rule that files a message in Junk: `Name: value`, value matched
/// case-insensitively, a trailing `*` matching as a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunkRule {
    header: String,
    value: String,
    prefix: bool,
}

impl JunkRule {
    /// Parses "X-Spam-Flag: YES". `None` if there is no colon.
    pub fn parse(rule: &str) -> Option<JunkRule> {
        let (h, v) = rule.split_once(':')?;
        let v = v.trim();
        let (value, prefix) = match v.strip_suffix('*') {
            Some(p) => (p.trim_end(), true),
            None => (v, false),
        };
        Some(JunkRule {
            header: h.trim().to_string(),
            value: value.to_ascii_lowercase(),
            prefix,
        })
    }

    fn matches(&self, value: &str) -> bool {
        let v = value.trim().to_ascii_lowercase();
        if self.prefix {
            v.starts_with(&self.value)
        } else {
            v == self.value
        }
    }
}

/// Why a delivery failed.
pub type DeliveryError = StoreError;

/// What a finished delivery did.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// Copies stored.
    pub copies: usize,
    /// Whether it was filed in Junk.
    pub junk: bool,
    /// The copies, in order: the sender's Sent Items copy first when asked.
    pub stored: Vec<postgate_store::Delivered>,
}

/// The local user who sent a message, for a submission or the client API.
#[derive(Debug, Clone, Copy)]
pub struct Sender {
    /// The user.
    pub user: UserId,
    /// Also file a copy in their Sent Items (the client API does; SMTP
    /// submission clients save their own copy).
    pub sent_copy: bool,
}

/// A DSN that [`Delivery::report`] sent: what accounting records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnSent {
    /// Who it went to (the original envelope sender).
    pub to: String,
    /// Its size in octets.
    pub size: u64,
    /// Its Message-ID.
    pub message_id: Option<String>,
    /// Filed in a local mailbox ([`accounting::Outcome::Delivered`]) or
    /// queued for a remote sender ([`accounting::Outcome::Queued`]).
    pub outcome: accounting::Outcome,
}

/// Numbers DSNs apart within this process.
static DSN_SEQ: AtomicU64 = AtomicU64::new(1);

/// The delivery agent.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    junk: Vec<JunkRule>,
    postmaster: Option<EmailAddress>,
    hostname: String,
    queued: Arc<tokio::sync::Notify>,
    scheduler: Scheduler,
    accounting: Accounting,
}

impl Delivery {
    /// A delivery agent over `store`, with Junk rules, the postmaster fallback
    /// and our host name (for DSNs).
    pub fn new(
        store: Arc<dyn Store>,
        junk: Vec<JunkRule>,
        postmaster: Option<EmailAddress>,
        hostname: String,
    ) -> Delivery {
        Delivery {
            scheduler: Scheduler::new(store.clone(), chrono_tz::UTC, hostname.clone()),
            store,
            junk,
            postmaster,
            hostname,
            queued: Arc::new(tokio::sync::Notify::new()),
            accounting: Accounting::off(),
        }
    }

    /// With an accounting sink (by default records are dropped).
    pub fn with_accounting(mut self, accounting: Accounting) -> Delivery {
        self.accounting = accounting;
        self
    }

    /// The accounting sink, for the outbound agent's records.
    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// With another scheduler (calendar time zone, caps, free/busy answers).
    pub fn with_scheduler(mut self, scheduler: Scheduler) -> Delivery {
        self.scheduler = scheduler;
        self
    }

    /// The scheduling agent.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Signalled whenever mail joins the outbound queue, so that the delivery
    /// agent starts at once rather than at its next look.
    pub fn queue_signal(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Our host name.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Resolves a recipient. `postmaster@` a served domain falls back to the
    /// configured postmaster (RFC 5321 §4.5.1).
    pub async fn resolve(&self, rcpt: &EmailAddress) -> Result<Resolution, DeliveryError> {
        let r = self.store.resolve(rcpt).await?;
        if r == Resolution::Unknown
            && rcpt.local().eq_ignore_ascii_case("postmaster")
            && let Some(pm) = &self.postmaster
        {
            return self.store.resolve(pm).await;
        }
        Ok(r)
    }

    /// Hands a message over in one durable commit: a copy for each local
    /// user (Inbox, or Junk when a rule says so), the sender's Sent Items copy
    /// if asked, and a queue entry for the envelope's remote recipients. Then,
    /// for local recipients that asked NOTIFY=SUCCESS, a "delivered" DSN
    /// (RFC 3461 §6.2.2.3).
    pub async fn deliver(
        &self,
        raw: Vec<u8>,
        envelope: Envelope,
        local: &[UserRef],
        sender: Option<Sender>,
    ) -> Result<DeliveryReport, DeliveryError> {
        let (raw, parsed) = if raw.len() > PARSE_INLINE_MAX {
            tokio::task::spawn_blocking(move || {
                let p = postgate_mime::parse_message(&raw);
                (raw, p)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("parser task: {e}")))?
        } else {
            let p = postgate_mime::parse_message(&raw);
            (raw, p)
        };
        // Junk when a check of the session said so (`[smtp.checks]`), or a
        // header rule matches.
        let junk = envelope.junk
            || self
                .junk
                .iter()
                .any(|rule| parsed.header_values(&rule.header).any(|v| rule.matches(v)));
        let role = if junk {
            FolderRole::Junk
        } else {
            FolderRole::Inbox
        };
        let mut targets: Vec<Target> = Vec::with_capacity(local.len() + 1);
        if let Some(s) = sender
            && s.sent_copy
        {
            targets.push(Target {
                user: s.user,
                role: FolderRole::Sent,
                flags: Flags::SEEN,
            });
        }
        targets.extend(local.iter().map(|u| Target {
            user: u.id,
            role,
            flags: Flags::default(),
        }));
        let remote: Vec<OutboundRcpt> = envelope
            .rcpts
            .iter()
            .filter(|r| r.remote)
            .map(|r| OutboundRcpt {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                notify: Notify::from_keywords(&r.notify),
            })
            .collect();
        let outbound = (!remote.is_empty()).then(|| Outbound {
            mail_from: envelope.mail_from.clone(),
            env_id: envelope.env_id.clone(),
            ret: envelope.ret.clone(),
            smtputf8: envelope.smtputf8,
            eight_bit: envelope.body.as_deref() == Some("8BITMIME"),
            sender_user: sender.map(|s| s.user),
            rcpts: remote,
        });
        let received_at = chrono::Utc::now().timestamp();
        // RFC 3461 §6.2.2.3: local recipients that asked to hear of success.
        let succeeded: Vec<dsn::Recipient> = if envelope.mail_from.is_empty() {
            Vec::new()
        } else {
            envelope
                .rcpts
                .iter()
                .filter(|r| !r.remote && Notify::from_keywords(&r.notify).success)
                .map(|r| dsn::Recipient {
                    address: r.address.clone(),
                    original: r.orcpt.clone(),
                    action: dsn::Action::Delivered,
                    status: "2.0.0".into(),
                    remote_mta: None,
                    diagnostic: None,
                    last_attempt: Some(received_at),
                    will_retry_until: None,
                })
                .collect()
        };
        let dsn_original = (!succeeded.is_empty()).then(|| raw.clone());
        // iMIP (RFC 6047): the scheduling the message carries, for those it
        // reaches; not from mail filed as junk.
        let inbound = if junk {
            postgate_calendar::Inbound::default()
        } else {
            self.scheduler
                .inbound(&parsed, &envelope.mail_from, local)
                .await
        };
        let (size, rcpts) = (raw.len() as u64, envelope.rcpts.len() as u64);
        let message_id = self
            .accounting
            .is_on()
            .then(|| {
                parsed
                    .header_values("Message-ID")
                    .next()
                    .map(|v| v.trim().to_string())
            })
            .flatten()
            .filter(|v| !v.is_empty());
        let started = std::time::Instant::now();
        let delivered = self
            .commit(NewDelivery {
                raw,
                content: parsed.content,
                envelope: Some(envelope.clone()),
                targets,
                outbound,
                received_at,
                calendar: inbound.updates,
            })
            .await?;
        let counters = postgate_metrics::metrics();
        counters
            .delivery_seconds
            .observe(started.elapsed().as_secs_f64());
        counters.message("in", size, rcpts);
        if self.accounting.is_on() {
            self.accounting
                .record(&inbound_record(&envelope, message_id, size));
        }
        if !inbound.later.is_empty() {
            for plan in self.scheduler.answer(inbound.later).await {
                if let Err(e) = self.carry_out(plan).await {
                    tracing::warn!(error = %e, "calendar answer not sent");
                }
            }
        }
        if let Some(original) = dsn_original {
            self.report(
                &envelope.mail_from,
                envelope.env_id.as_deref(),
                received_at,
                succeeded,
                &original,
                false,
            )
            .await;
        }
        Ok(DeliveryReport {
            copies: delivered.len(),
            junk,
            stored: delivered,
        })
    }

    /// Carries out a scheduling plan: its calendar changes with the first of
    /// its mails in one commit (so a change is never stored without the
    /// message that tells of it), each further mail in its own.
    pub async fn carry_out(&self, plan: Plan) -> Result<(), DeliveryError> {
        let mut updates = plan.updates;
        if plan.mails.is_empty() {
            if !updates.is_empty() {
                self.store.update_calendar(updates).await?;
            }
            return Ok(());
        }
        for mail in plan.mails {
            let content = postgate_mime::parse_message(&mail.raw).content;
            let outbound = (!mail.remote.is_empty()).then(|| Outbound {
                mail_from: mail.mail_from.clone(),
                sender_user: mail.sender_user,
                rcpts: mail
                    .remote
                    .iter()
                    .map(|r| OutboundRcpt {
                        address: r.clone(),
                        orcpt: None,
                        notify: Notify::default(),
                    })
                    .collect(),
                smtputf8: mail.remote.iter().any(|r| !r.is_ascii()) || !mail.mail_from.is_ascii(),
                ..Outbound::default()
            });
            self.commit(NewDelivery {
                raw: mail.raw,
                content,
                envelope: None,
                targets: mail
                    .local
                    .iter()
                    .map(|u| Target {
                        user: *u,
                        role: FolderRole::Inbox,
                        flags: Flags::default(),
                    })
                    .collect(),
                outbound,
                received_at: chrono::Utc::now().timestamp(),
                calendar: std::mem::take(&mut updates),
            })
            .await?;
        }
        Ok(())
    }

    /// Stores a delivery in one commit, then wakes the delivery agent if it
    /// queued anything.
    async fn commit(
        &self,
        d: NewDelivery,
    ) -> Result<Vec<postgate_store::Delivered>, DeliveryError> {
        let queued = d.outbound.as_ref().is_some_and(|o| !o.rcpts.is_empty());
        let delivered = self.store.deliver(d).await?;
        if queued {
            self.queued.notify_one();
        }
        Ok(delivered)
    }

    /// Sends a DSN (RFC 3464) about `recipients` to `to`, the original
    /// envelope sender; never for the null reverse path (RFC 3461 §6.2). A
    /// failure to queue it is logged: the mail it reports on is settled
    /// either way. Returns what was sent, for accounting.
    pub async fn report(
        &self,
        to: &str,
        env_id: Option<&str>,
        arrival: i64,
        recipients: Vec<dsn::Recipient>,
        original: &[u8],
        return_full: bool,
    ) -> Option<DsnSent> {
        if to.is_empty() || recipients.is_empty() {
            return None;
        }
        let report = dsn::Report {
            reporting_mta: &self.hostname,
            to,
            env_id,
            arrival,
            recipients,
            original,
            return_full,
        };
        let raw = dsn::build(&report, DSN_SEQ.fetch_add(1, Ordering::Relaxed));
        let (size, message_id) = (raw.len() as u64, accounting::message_id(&raw));
        match self.file_notice(to, raw).await {
            Ok(Some(outcome)) => Some(DsnSent {
                to: to.to_string(),
                size,
                message_id,
                outcome,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, to, "could not send a DSN");
                None
            }
        }
    }

    /// Sends a system message (a DSN) to `to`: into a local user's Inbox, or
    /// queued with the null reverse path for a remote address (RFC 3461 §6.2:
    /// DSNs are sent from <>, so they never cause another).
    pub async fn notify(&self, to: &str, raw: Vec<u8>) -> Result<(), DeliveryError> {
        self.file_notice(to, raw).await.map(|_| ())
    }

    /// [`Delivery::notify`], saying whether the message was filed locally or
    /// queued (`None`: dropped, for an address that is not valid or unknown).
    async fn file_notice(
        &self,
        to: &str,
        raw: Vec<u8>,
    ) -> Result<Option<accounting::Outcome>, DeliveryError> {
        let Ok(address) = EmailAddress::parse(to) else {
            return Ok(None);
        };
        let received_at = chrono::Utc::now().timestamp();
        let content = postgate_mime::parse_message(&raw).content;
        let (targets, outbound) = match self.resolve(&address).await? {
            Resolution::Users(users) => (
                users
                    .iter()
                    .map(|u| Target {
                        user: u.id,
                        role: FolderRole::Inbox,
                        flags: Flags::default(),
                    })
                    .collect(),
                None,
            ),
            Resolution::NotLocal => (
                Vec::new(),
                Some(Outbound {
                    mail_from: String::new(),
                    rcpts: vec![OutboundRcpt {
                        address: address.to_string(),
                        orcpt: None,
                        notify: Notify::default(),
                    }],
                    ..Outbound::default()
                }),
            ),
            Resolution::Unknown | Resolution::Ambiguous => {
                tracing::warn!(to, "DSN for an unknown local address dropped");
                return Ok(None);
            }
        };
        let outcome = if outbound.is_some() {
            accounting::Outcome::Queued
        } else {
            accounting::Outcome::Delivered
        };
        self.commit(NewDelivery {
            raw,
            content,
            envelope: None,
            targets,
            outbound,
            received_at,
            calendar: Vec::new(),
        })
        .await?;
        Ok(Some(outcome))
    }
}

/// The accounting record of a message accepted with `envelope`: local
/// recipients delivered, remote ones queued.
fn inbound_record(
    envelope: &Envelope,
    message_id: Option<String>,
    size: u64,
) -> accounting::Record {
    let mut r = accounting::Record::new(accounting::Direction::In);
    r.message_id = message_id;
    r.sender = envelope.mail_from.clone();
    r.recipients = envelope
        .rcpts
        .iter()
        .map(|rcpt| accounting::Recipient {
            address: rcpt.address.clone(),
            outcome: if rcpt.remote {
                accounting::Outcome::Queued
            } else {
                accounting::Outcome::Delivered
            },
            status: None,
        })
        .collect();
    r.size = size;
    r.peer = envelope.peer.clone();
    r.peer_name = envelope.helo.clone();
    r.tls = envelope
        .tls_description
        .clone()
        .or_else(|| envelope.tls.then(|| "TLS".to_string()));
    r.user = envelope.auth_user.clone();
    r.peer_reverse = envelope.peer_reverse.clone();
    r.checks = envelope
        .checks
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_rules() {
        let r = JunkRule::parse("X-Spam-Flag: YES").unwrap();
        assert!(r.matches(" yes "));
        assert!(!r.matches("no"));
        let r = JunkRule::parse("X-Spam-Status: Yes*").unwrap();
        assert!(r.matches("Yes, score=7.1"));
        assert!(!r.matches("No, score=0.1"));
        assert!(JunkRule::parse("nonsense").is_none());
    }
}
