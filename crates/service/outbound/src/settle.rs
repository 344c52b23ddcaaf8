//! What an attempt's verdicts mean for each recipient: the queue outcome and
//! the DSN it calls for (RFC 3461 §4.1 NOTIFY, RFC 3464 actions).
use crate::client::{Session, Verdict};
use crate::{Job, Settings};
use postgate_delivery::DsnSent;
use postgate_delivery::accounting::{self, Direction, Outcome, Record};
use postgate_mime::dsn;
use postgate_store::{QueuedMessage, QueuedRcpt, RcptOutcome};

/// The outcomes to record and the report to send.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub outcomes: Vec<(i64, RcptOutcome)>,
    pub report: Vec<dsn::Recipient>,
    pub log: Vec<String>,
}

/// Decides, for each recipient, from its verdict (in the same order).
/// `peer` is the host that answered and whether it takes DSN parameters.
pub(crate) fn plan(
    settings: &Settings,
    message: &QueuedMessage,
    rcpts: &[QueuedRcpt],
    verdicts: &[Verdict],
    peer: Option<(&str, bool)>,
    now: i64,
) -> Plan {
    let mut plan = Plan::default();
    let age = now - message.created;
    let max_age = settings.max_age.as_secs() as i64;
    let expires = message.created + max_age;
    let remote_mta = |v: &Verdict| peer.filter(|_| v.remote).map(|(p, _)| p.to_string());
    for (r, v) in rcpts.iter().zip(verdicts) {
        let entry = |action: dsn::Action, status: &str| dsn::Recipient {
            address: r.address.clone(),
            original: r.orcpt.clone(),
            action,
            status: status.to_string(),
            remote_mta: remote_mta(v),
            diagnostic: Some(v.text.clone()),
            last_attempt: Some(now),
            will_retry_until: (action == dsn::Action::Delayed).then_some(expires),
        };
        let outcome = match v.class {
            2 => {
                // RFC 3461 §6.2.2.3 (and §4.1): a next hop without DSN
                // cannot report success, so we say it was relayed.
                let dsn_peer = peer.is_some_and(|(_, d)| d);
                if r.notify.success && !dsn_peer {
                    plan.report.push(entry(dsn::Action::Relayed, "2.0.0"));
                }
                RcptOutcome::Sent
            }
            5 => {
                if r.notify.wants_failure() {
                    plan.report.push(entry(dsn::Action::Failed, &v.status));
                }
                RcptOutcome::Failed(v.text.clone())
            }
            _ if age >= max_age => {
                // RFC 5321 §4.5.4.1: give up after the configured time; RFC
                // 3463 X.4.7: delivery time expired.
                if r.notify.wants_failure() {
                    plan.report.push(entry(dsn::Action::Failed, "4.4.7"));
                }
                RcptOutcome::Failed(format!(
                    "gave up after {} attempts over {}: {}",
                    r.attempts + 1,
                    human(age),
                    v.text
                ))
            }
            _ => {
                let intervals = &settings.retry_intervals;
                let step = intervals
                    .get(r.attempts as usize)
                    .or(intervals.last())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(300)
                    .max(1);
                let warn = !r.delay_warned
                    && !message.outbound.mail_from.is_empty()
                    && age >= settings.delay_warning.as_secs() as i64
                    && r.notify.wants_delay();
                if warn {
                    plan.report.push(entry(dsn::Action::Delayed, &v.status));
                }
                RcptOutcome::Retry {
                    at: (now + step).min(expires.max(now + 1)),
                    error: v.text.clone(),
                    delay_warned: warn,
                }
            }
        };
        plan.log.push(format!(
            "outbound: queue={} to=<{}> relay={} status={} ({})",
            message.id,
            r.address,
            peer.map(|(p, _)| p).unwrap_or("none"),
            crate::outcome_for_log(&outcome),
            v.text
        ));
        plan.outcomes.push((r.id, outcome));
    }
    plan
}

/// The accounting record of one attempt: each recipient's outcome as `plan`
/// decided it, with the status its verdict gave. `session` is the
/// connection it was made on, `data` the message (for its Message-ID).
pub(crate) fn out_record(
    job: &Job,
    verdicts: &[Verdict],
    plan: &Plan,
    session: Option<&Session>,
    data: &[u8],
    dkim: Option<&crate::dkim::Outcome>,
) -> Record {
    let m = &job.message;
    let mut r = Record::new(Direction::Out);
    r.queue_id = Some(m.id);
    r.message_id = accounting::message_id(data);
    r.sender = m.outbound.mail_from.clone();
    r.recipients = job
        .rcpts
        .iter()
        .zip(verdicts)
        .zip(&plan.outcomes)
        .map(|((rcpt, v), (_, outcome))| {
            let (outcome, status) = match outcome {
                RcptOutcome::Sent => (Outcome::Sent, v.status.as_str()),
                RcptOutcome::Retry { .. } => (Outcome::Deferred, v.status.as_str()),
                RcptOutcome::Failed(_) if v.class == 5 => (Outcome::Failed, v.status.as_str()),
                // A temporary failure past max_age: RFC 3463 X.4.7, delivery
                // time expired (as the DSN says).
                RcptOutcome::Failed(_) => (Outcome::Failed, "4.4.7"),
            };
            accounting::Recipient {
                address: rcpt.address.clone(),
                outcome,
                status: Some(status.to_string()),
            }
        })
        .collect();
    r.size = m.size;
    if let Some(mode) = job.mta_sts {
        r.checks.insert("mta_sts".into(), mode.into());
    }
    // The algorithms of the DKIM signatures the message went with.
    match dkim {
        Some(crate::dkim::Outcome::Signed(algorithms)) => {
            r.checks.insert("dkim_sign".into(), algorithms.join(","));
        }
        Some(crate::dkim::Outcome::Error(_)) => {
            r.checks.insert("dkim_sign".into(), "error".into());
        }
        Some(crate::dkim::Outcome::NoKey) | None => {}
    }
    if let Some(s) = session {
        r.peer = Some(s.addr().ip().to_string());
        r.peer_name = Some(s.peer_name().to_string());
        r.tls = s.tls_description();
        r.user = s.user().filter(|_| s.authenticated()).map(String::from);
    }
    r
}

/// The accounting record of a failure report sent about queue entry
/// `queue_id`: from the null reverse path to the original sender.
pub(crate) fn bounce_record(queue_id: i64, dsn: DsnSent) -> Record {
    let mut r = Record::new(Direction::Bounce);
    r.queue_id = Some(queue_id);
    r.message_id = dsn.message_id;
    r.recipients = vec![accounting::Recipient {
        address: dsn.to,
        outcome: dsn.outcome,
        status: None,
    }];
    r.size = dsn.size;
    r
}

fn human(secs: i64) -> String {
    match secs {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgate_store::{MessageRef, Notify, Outbound};
    use std::time::Duration;

    fn settings() -> Settings {
        Settings {
            hostname: "mx.test".into(),
            threads: 1,
            relay: None,
            relay_credentials: None,
            routes: Vec::new(),
            resolver: None,
            port: 25,
            tls: postgate_runtime::config::TlsPolicy::May,
            tls_domains: Default::default(),
            retry_intervals: vec![Duration::from_secs(60), Duration::from_secs(600)],
            max_age: Duration::from_secs(86400),
            delay_warning: Duration::from_secs(3600),
            lease: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            data_timeout: Duration::from_secs(1),
            max_messages_per_connection: 10,
            exclusive: true,
            mta_sts: true,
            mta_sts_port: 443,
            tls_ca: None,
            dkim_refresh: Duration::from_secs(30),
        }
    }

    fn rcpt(attempts: u32, notify: Notify) -> QueuedRcpt {
        QueuedRcpt {
            id: 7,
            address: "bob@example.net".into(),
            domain: "example.net".into(),
            orcpt: None,
            notify,
            attempts,
            delay_warned: false,
            status: "queued".into(),
            next_attempt: 0,
            last_error: None,
        }
    }

    fn message(created: i64) -> QueuedMessage {
        QueuedMessage {
            id: 1,
            message: MessageRef(1),
            size: 10,
            outbound: Outbound {
                mail_from: "ann@example.org".into(),
                ..Outbound::default()
            },
            created,
            rcpts: Vec::new(),
        }
    }

    #[test]
    fn schedule_delay_warning_and_expiry() {
        let s = settings();
        let temp = Verdict::temporary("4.4.1", "connect: refused");
        // First retry after the first interval; the last interval repeats.
        let p = plan(
            &s,
            &message(1000),
            &[rcpt(0, Notify::default())],
            std::slice::from_ref(&temp),
            None,
            1000,
        );
        assert!(matches!(
            p.outcomes[0].1,
            RcptOutcome::Retry {
                at: 1060,
                delay_warned: false,
                ..
            }
        ));
        assert!(p.report.is_empty());
        let p = plan(
            &s,
            &message(1000),
            &[rcpt(5, Notify::default())],
            std::slice::from_ref(&temp),
            None,
            1100,
        );
        assert!(matches!(
            p.outcomes[0].1,
            RcptOutcome::Retry { at: 1700, .. }
        ));
        // After delay_warning: one delay DSN.
        let p = plan(
            &s,
            &message(0),
            &[rcpt(3, Notify::default())],
            std::slice::from_ref(&temp),
            None,
            4000,
        );
        assert!(matches!(
            p.outcomes[0].1,
            RcptOutcome::Retry {
                delay_warned: true,
                ..
            }
        ));
        assert_eq!(p.report[0].action, dsn::Action::Delayed);
        // NOTIFY=NEVER: no report at all.
        let never = Notify {
            given: true,
            ..Notify::default()
        };
        let p = plan(
            &s,
            &message(0),
            &[rcpt(3, never)],
            std::slice::from_ref(&temp),
            None,
            4000,
        );
        assert!(p.report.is_empty());
        // Past max_age: failed with 4.4.7.
        let p = plan(
            &s,
            &message(0),
            &[rcpt(9, Notify::default())],
            &[temp],
            None,
            90000,
        );
        assert!(matches!(p.outcomes[0].1, RcptOutcome::Failed(_)));
        assert_eq!(p.report[0].status, "4.4.7");
    }

    #[test]
    fn success_reported_as_relayed_only_without_dsn_peer() {
        let s = settings();
        let ok = Verdict {
            class: 2,
            status: "2.0.0".into(),
            text: "250 2.0.0 OK".into(),
            remote: true,
            failure: "",
        };
        let notify = Notify::from_keywords(&["SUCCESS"]);
        let p = plan(
            &s,
            &message(0),
            &[rcpt(0, notify)],
            std::slice::from_ref(&ok),
            Some(("mx", false)),
            1,
        );
        assert_eq!(p.report[0].action, dsn::Action::Relayed);
        let p = plan(
            &s,
            &message(0),
            &[rcpt(0, notify)],
            &[ok],
            Some(("mx", true)),
            1,
        );
        assert!(p.report.is_empty());
    }
}
