//! Postgate's one set of counters.
//!
//! What it is for: the counters, gauges and histograms that the listener
//! layer, every engine, delivery, the outbound agent and the store update, in
//! one registry (prometheus-client's, whose values can be read back), so that
//! `/metrics`, the SNMP agent and the web console all read the same numbers.
//! One process serves one post office: the set is global ([`metrics`]).
//!
//! What it is not for: exposition transports (the console serves `/metrics`)
//! or policy. Updating a counter is an atomic add: cheap enough to leave on.
#![deny(missing_docs)]

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

/// A service ("smtp", "imap", "pop3", "ldap", "console", …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// The service's name.
    pub service: &'static str,
}

/// A service and why a connection was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabel {
    /// The service's name.
    pub service: &'static str,
    /// "busy" (every worker), "per_ip" (the address's cap), "blocked"
    /// (access control).
    pub reason: &'static str,
}

/// A service and a login's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabel {
    /// The service's name.
    pub service: &'static str,
    /// "ok", "failed" (credentials), "denied" (class of service or block),
    /// "throttled" (answered after a penalty delay), "tls_required".
    pub outcome: &'static str,
}

/// Which way mail went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// "in" (accepted for local users or the queue) or "out" (sent to the
    /// Internet).
    pub direction: &'static str,
}

/// What an outbound attempt for one recipient came to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// "sent", "deferred" (4xx, connection, DNS: tried again) or "failed"
    /// (5xx and the like: bounced).
    pub outcome: &'static str,
}

/// A state of recipients in the outbound queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// "due" (never tried), "deferred" (waiting to be tried again), "held"
    /// (held by an operator, `postgate queue hold`: not tried until
    /// released) or "in_flight" (a runner has them).
    pub state: &'static str,
}

/// A service and a command it was given.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    /// The service's name.
    pub service: &'static str,
    /// The command's name as its protocol spells it ("EHLO", "FETCH",
    /// "RETR", "search"), or "other" for one the service could not read.
    pub command: &'static str,
}

/// A service and what kind of error it answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// The service's name.
    pub service: &'static str,
    /// [`ErrorKind::as_str`].
    pub kind: &'static str,
}

/// What kind of error a service answered, the same for every protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command was not understood or its arguments were wrong (SMTP
    /// 500–504, IMAP BAD, LDAP protocolError).
    Syntax,
    /// Refused for good: no such user or message, not allowed, wrong state
    /// (SMTP 5xx, IMAP NO, POP3 -ERR, most LDAP result codes).
    Refused,
    /// Refused for now: try again later (SMTP 4xx, IMAP NO [UNAVAILABLE],
    /// POP3 -ERR [SYS/TEMP] or [IN-USE], LDAP busy and unavailable).
    Temporary,
}

impl ErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Refused => "refused",
            ErrorKind::Temporary => "temporary",
        }
    }
}

/// Why an outbound attempt did not deliver.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    /// "dns" (no route or no address), "connection" (refused or
    /// unreachable), "timeout", "tls", "4xx" and "5xx" (the remote server's
    /// answer), "local" (our own: the message or the store).
    pub kind: &'static str,
}

/// Labels of the checks counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    /// The check: "dnsbl", "dnswl", "ptr", "helo", "mailbomb", "spf",
    /// "dkim", "dmarc", "arc", "mta_sts", "dkim_sign".
    pub check: &'static str,
    /// Its outcome: "pass", "fail", "listed", "none", "temperror",
    /// "reject", "junk", …
    pub result: &'static str,
}

/// What became of one SNMP notification to one receiver.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabel {
    /// "sent" (a trap sent, or an inform acknowledged) or "failed" (not
    /// sent, or an inform never acknowledged).
    pub outcome: &'static str,
}

/// Every counter.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, per service.
    pub connections: Family<ServiceLabel, Counter>,
    /// Connections open now, per service.
    pub connections_current: Family<ServiceLabel, Gauge>,
    /// Connections refused, per service and reason.
    pub refused: Family<RefusedLabel, Counter>,
    /// Workers configured, per service.
    pub workers: Family<ServiceLabel, Gauge>,
    /// Logins, per service and outcome.
    pub logins: Family<LoginLabel, Counter>,
    /// Messages, per direction.
    pub messages: Family<DirectionLabel, Counter>,
    /// Message octets, per direction.
    pub bytes: Family<DirectionLabel, Counter>,
    /// Recipients, per direction.
    pub recipients: Family<DirectionLabel, Counter>,
    /// Commands, per service and command.
    pub commands: Family<CommandLabel, Counter>,
    /// Error answers, per service and kind.
    pub errors: Family<ErrorLabel, Counter>,
    /// Outbound recipient attempts, per outcome.
    pub outbound: Family<OutcomeLabel, Counter>,
    /// Outbound recipient attempts that did not deliver, per kind.
    pub outbound_failures: Family<FailureLabel, Counter>,
    /// Non-delivery reports sent (failure DSNs, RFC 3464), a part of
    /// [`Metrics::dsns`].
    pub bounces: Counter,
    /// Delivery status notifications sent (bounces, delays, successes).
    pub dsns: Counter,
    /// Recipients in the outbound queue, by state (sampled).
    pub queue: Family<QueueLabel, Gauge>,
    /// Seconds since the oldest message still queued was queued (sampled).
    pub queue_oldest_seconds: Gauge,
    /// Seconds from the end of DATA to the delivery on disk.
    pub delivery_seconds: Histogram,
    /// Seconds from queueing to sending, per recipient sent.
    pub outbound_seconds: Histogram,
    /// Seconds per store commit (one group commit of the embedded writer).
    pub commit_seconds: Histogram,
    /// Jobs per store commit.
    pub commit_jobs: Histogram,
    /// SNMP notifications (traps and informs), per receiver and outcome.
    pub snmp_notifications: Family<NotificationLabel, Counter>,
    /// Outcomes of the SMTP defences, mail authentication, MTA-STS and
    /// DKIM signing, per check and result.
    pub checks: Family<CheckLabel, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("postgate");
        let m = Metrics {
            connections: Family::default(),
            connections_current: Family::default(),
            refused: Family::default(),
            workers: Family::default(),
            logins: Family::default(),
            messages: Family::default(),
            bytes: Family::default(),
            recipients: Family::default(),
            commands: Family::default(),
            errors: Family::default(),
            outbound: Family::default(),
            outbound_failures: Family::default(),
            bounces: Counter::default(),
            dsns: Counter::default(),
            queue: Family::default(),
            queue_oldest_seconds: Gauge::default(),
            // 100 µs to ~13 s.
            delivery_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            // 100 ms to ~3.6 days.
            outbound_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 22)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_jobs: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            snmp_notifications: Family::default(),
            checks: Family::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Connections accepted", m.connections.clone());
        registry.register(
            "connections_current",
            "Connections open now",
            m.connections_current.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused, by reason",
            m.refused.clone(),
        );
        registry.register("workers", "Workers configured", m.workers.clone());
        registry.register("logins", "Logins, by outcome", m.logins.clone());
        registry.register("messages", "Messages, by direction", m.messages.clone());
        registry.register(
            "message_bytes",
            "Message octets, by direction",
            m.bytes.clone(),
        );
        registry.register(
            "recipients",
            "Recipients, by direction",
            m.recipients.clone(),
        );
        registry.register("commands", "Commands, by command", m.commands.clone());
        registry.register("errors", "Error answers, by kind", m.errors.clone());
        registry.register(
            "outbound_failures",
            "Outbound recipient attempts not delivered, by kind",
            m.outbound_failures.clone(),
        );
        registry.register("bounces", "Non-delivery reports sent", m.bounces.clone());
        registry.register(
            "outbound_attempts",
            "Outbound recipient attempts, by outcome",
            m.outbound.clone(),
        );
        registry.register("dsns", "Delivery status notifications sent", m.dsns.clone());
        registry.register(
            "queue_recipients",
            "Recipients in the outbound queue, by state",
            m.queue.clone(),
        );
        registry.register(
            "queue_oldest_seconds",
            "Age of the oldest message in the outbound queue",
            m.queue_oldest_seconds.clone(),
        );
        registry.register(
            "delivery_seconds",
            "End of DATA to delivery on disk",
            m.delivery_seconds.clone(),
        );
        registry.register(
            "outbound_seconds",
            "Queued to sent, per recipient",
            m.outbound_seconds.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time per store commit",
            m.commit_seconds.clone(),
        );
        registry.register(
            "store_commit_jobs",
            "Jobs per store commit",
            m.commit_jobs.clone(),
        );
        registry.register(
            "snmp_notifications",
            "SNMP notifications per receiver, by outcome",
            m.snmp_notifications.clone(),
        );
        registry.register(
            "checks",
            "Outcomes of SMTP checks, mail authentication, MTA-STS and DKIM signing",
            m.checks.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Everything in the Prometheus text exposition format (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a check's outcome.
    pub fn check(&self, check: &'static str, result: &'static str) {
        self.checks
            .get_or_create(&CheckLabel { check, result })
            .inc();
    }

    /// Counts a login's outcome.
    pub fn login(&self, service: &'static str, outcome: &'static str) {
        self.logins
            .get_or_create(&LoginLabel { service, outcome })
            .inc();
    }

    /// Counts a refused connection.
    pub fn refuse(&self, service: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabel { service, reason })
            .inc();
    }

    /// Counts a command.
    pub fn command(&self, service: &'static str, command: &'static str) {
        self.commands
            .get_or_create(&CommandLabel { service, command })
            .inc();
    }

    /// Counts an error answer.
    pub fn error(&self, service: &'static str, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabel {
                service,
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts a message, its size and its recipients.
    pub fn message(&self, direction: &'static str, bytes: u64, recipients: u64) {
        let l = DirectionLabel { direction };
        self.messages.get_or_create(&l).inc();
        self.bytes.get_or_create(&l).inc_by(bytes);
        self.recipients.get_or_create(&l).inc_by(recipients);
    }
}

/// The process's counters.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// One open connection of a service: counted when made, uncounted when
/// dropped.
#[derive(Debug)]
pub struct Open(&'static str);

impl Open {
    /// Counts a connection to `service`.
    pub fn new(service: &'static str) -> Open {
        let m = metrics();
        let l = ServiceLabel { service };
        m.connections.get_or_create(&l).inc();
        m.connections_current.get_or_create(&l).inc();
        Open(service)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics()
            .connections_current
            .get_or_create(&ServiceLabel { service: self.0 })
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exposed() {
        let m = metrics();
        {
            let _a = Open::new("smtp");
            let _b = Open::new("smtp");
            m.login("imap", "failed");
            m.message("in", 1000, 2);
            m.delivery_seconds.observe(0.002);
            let text = m.encode();
            assert!(
                text.contains("postgate_connections_total{service=\"smtp\"} 2"),
                "{text}"
            );
            assert!(
                text.contains("postgate_connections_current{service=\"smtp\"} 2"),
                "{text}"
            );
        }
        let text = m.encode();
        assert!(
            text.contains("postgate_connections_current{service=\"smtp\"} 0"),
            "{text}"
        );
        assert!(text.contains("postgate_logins_total{service=\"imap\",outcome=\"failed\"} 1"));
        assert!(text.contains("postgate_message_bytes_total{direction=\"in\"} 1000"));
        assert!(text.contains("postgate_delivery_seconds_count 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
