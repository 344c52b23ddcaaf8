//! Notifications (RFC 3416 §4.2.6 SNMPv2-Trap, §4.2.7 InformRequest) and
//! the monitor that decides when POSTGATE-MIB's threshold notifications
//! are due.
//!
//! Each notification carries sysUpTime.0, snmpTrapOID.0 and then the
//! objects its NOTIFICATION-TYPE names, read from the same view GET reads.
//! A trap is sent once; an inform is sent again ([`INFORM_TRIES`],
//! [`INFORM_WAIT`] apart) until the receiver's Response arrives. Each
//! receiver's outcome is counted (`postgate_snmp_notifications_total`).
//!
//! The monitor wakes every [`TICK`]: it reads the queue gauges (which the
//! delivery agent samples every few seconds) and the failed-login counters
//! (atomic reads, no hook in the login path):
//! - postgateQueueOverThreshold on the way up past either threshold, once;
//!   re-armed when both are below again;
//! - postgateAuthFailureStorm when the failed logins of the last window
//!   reach `auth_failure_storm`, at most once per window.
use crate::Agent;
use crate::mib::{self, object};
use postgate_metrics::{LoginLabel, NotificationLabel, metrics};
use postgate_runtime::Shutdown;
use rasn_smi::v2::{ObjectSyntax, SimpleSyntax};
use rasn_snmp::v2::{InformRequest, Pdu, Pdus, Trap, VarBind, VarBindValue};
use rasn_snmp::v2c::Message;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// How often the monitor looks.
pub const TICK: Duration = Duration::from_secs(1);
/// Sends of one inform before giving up.
pub const INFORM_TRIES: u32 = 3;
/// How long each send of an inform waits for the Response.
pub const INFORM_WAIT: Duration = Duration::from_secs(1);

/// A notification of POSTGATE-MIB (`postgateNotifications`, `postgate.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// postgateStarted: the services are up.
    Started,
    /// postgateStopping: an orderly shutdown has begun.
    Stopping,
    /// postgateQueueOverThreshold: the outbound queue reached a threshold.
    QueueOverThreshold,
    /// postgateServiceFailed: a listener of this service row (0-based, as
    /// [`mib::SERVICES`]) stopped unasked.
    ServiceFailed(usize),
    /// postgateAuthFailureStorm: many failed logins in the window.
    AuthFailureStorm,
}

impl Notification {
    /// Its number under postgateNotifications.
    pub fn number(self) -> u32 {
        match self {
            Notification::Started => 1,
            Notification::Stopping => 2,
            Notification::QueueOverThreshold => 3,
            Notification::ServiceFailed(_) => 4,
            Notification::AuthFailureStorm => 5,
        }
    }

    /// The instances of the objects its NOTIFICATION-TYPE names, in order.
    fn objects(self) -> Vec<Vec<u32>> {
        let scalar = |n: u32| mib::object_oid(&[n, 0]);
        match self {
            Notification::Started | Notification::Stopping => vec![scalar(object::VERSION)],
            Notification::QueueOverThreshold => vec![
                scalar(object::QUEUE_DEPTH),
                scalar(object::DEPTH_THRESHOLD),
                scalar(object::QUEUE_OLDEST_AGE),
                scalar(object::AGE_THRESHOLD),
            ],
            Notification::ServiceFailed(i) => {
                let row = i as u32 + 1;
                let [t, e] = object::SERVICE_ENTRY;
                vec![
                    mib::object_oid(&[t, e, object::SERVICE_NAME, row]),
                    mib::object_oid(&[t, e, object::SERVICE_STATUS, row]),
                ]
            }
            Notification::AuthFailureStorm => {
                vec![scalar(object::AUTH_FAILURES), scalar(object::AUTH_WINDOW)]
            }
        }
    }
}

/// sysUpTime.0 (SNMPv2-MIB).
const SYS_UP_TIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// snmpTrapOID.0 (SNMPv2-MIB).
const SNMP_TRAP_OID: [u32; 11] = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];

static REQUEST_IDS: AtomicI32 = AtomicI32::new(1);

impl Agent {
    /// Sends `what` to every receiver, as an SNMPv2-Trap or, with `inform`,
    /// an InformRequest; failures are logged and counted, not fatal.
    pub async fn notify(&self, what: Notification) {
        if self.settings.trap_receivers.is_empty() {
            return;
        }
        let Some(bindings) = self.notification_bindings(what) else {
            return;
        };
        let mut tasks = tokio::task::JoinSet::new();
        for r in self.settings.trap_receivers.clone() {
            let pdu = Pdu {
                request_id: REQUEST_IDS.fetch_add(1, Ordering::Relaxed) & i32::MAX,
                error_status: 0,
                error_index: 0,
                variable_bindings: bindings.clone(),
            };
            // Informs are SNMPv2c only: an SNMPv3 inform would need the
            // receiver's engine, discovered (RFC 3414 §4); config refuses
            // `inform` with `trap_user`.
            let inform = self.settings.inform && self.v3_trap_user().is_none();
            let request_id = pdu.request_id;
            let message = Message {
                version: 1.into(),
                community: self.settings.trap_community.as_bytes().to_vec().into(),
                data: if inform {
                    Pdus::InformRequest(InformRequest(pdu))
                } else {
                    Pdus::Trap(Trap(pdu))
                },
            };
            // As it is, or as SNMPv3 when `trap_user` is set (v3.rs).
            let Some(bytes) = self.encode_notification(message) else {
                continue;
            };
            tasks.spawn(async move {
                let sent = send(&r, bytes, request_id, inform).await;
                if let Err(e) = &sent {
                    tracing::warn!(receiver = %r, error = %e, notification = ?what, "snmp: notification not delivered");
                }
                metrics()
                    .snmp_notifications
                    .get_or_create(&NotificationLabel {
                        outcome: if sent.is_ok() { "sent" } else { "failed" },
                    })
                    .inc();
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Marks service `name` failed (postgateServiceStatus failed(2),
    /// applOperStatus down(2)) and sends postgateServiceFailed, once.
    pub async fn service_failed(&self, name: &str) {
        let Some(i) = mib::SERVICES.iter().position(|s| *s == name) else {
            return;
        };
        if self.control.set_failed(i, mib::uptime(self.started)) {
            tracing::error!(service = name, "a listener stopped: service failed");
            self.notify(Notification::ServiceFailed(i)).await;
        }
    }

    /// sysUpTime.0, snmpTrapOID.0, then the notification's objects (RFC
    /// 3416 §4.2.6).
    fn notification_bindings(&self, what: Notification) -> Option<Vec<VarBind>> {
        let mut trap_oid = mib::root();
        trap_oid.extend([0, what.number()]);
        let value = |o: &[u32]| self.view.get(o).map(|g| g());
        let mut out = vec![
            VarBind {
                name: crate::name(&SYS_UP_TIME)?,
                value: VarBindValue::Value(value(&SYS_UP_TIME)?),
            },
            VarBind {
                name: crate::name(&SNMP_TRAP_OID)?,
                value: VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::ObjectId(
                    crate::name(&trap_oid)?,
                ))),
            },
        ];
        for o in what.objects() {
            out.push(VarBind {
                name: crate::name(&o)?,
                value: VarBindValue::Value(value(&o)?),
            });
        }
        Some(out)
    }

    /// Watches the queue and failed logins until shutdown, sending the
    /// threshold notifications when due.
    pub async fn monitor(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut queue = QueueWatch::default();
        let mut storm = StormWatch::new(
            self.settings.auth_failure_storm,
            self.settings.auth_failure_window,
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.wait() => break,
            }
            let over = queue.check(
                mib::queue_depth(),
                mib::queue_oldest(),
                self.control.depth_threshold(),
                self.control.age_threshold(),
            );
            let failed = mib::login_services()
                .map(|service| {
                    metrics()
                        .logins
                        .get_or_create(&LoginLabel {
                            service,
                            outcome: "failed",
                        })
                        .get()
                })
                .sum::<u64>();
            let (recent, storming) = storm.check(Instant::now(), failed);
            self.control
                .set_auth_failures(recent.min(u32::MAX as u64) as u32);
            for (due, what) in [
                (over, Notification::QueueOverThreshold),
                (storming, Notification::AuthFailureStorm),
            ] {
                if due {
                    tracing::warn!(notification = ?what, "snmp: threshold reached");
                    let agent = self.clone();
                    tokio::spawn(async move { agent.notify(what).await });
                }
            }
        }
    }
}

/// Sends one notification (`bytes`, encoded) to `receiver`; for an inform,
/// until its Response comes (RFC 3416 §4.2.7).
async fn send(
    receiver: &str,
    bytes: Vec<u8>,
    request_id: i32,
    inform: bool,
) -> std::io::Result<()> {
    let to: SocketAddr = tokio::net::lookup_host(receiver)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("does not resolve"))?;
    let local: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(to).await?;
    if !inform {
        socket.send(&bytes).await?;
        return Ok(());
    }
    let mut buf = vec![0u8; 65_535];
    for _ in 0..INFORM_TRIES {
        socket.send(&bytes).await?;
        let deadline = tokio::time::Instant::now() + INFORM_WAIT;
        loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                // An ICMP port unreachable: wait out the try all the same.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => n,
            };
            // The Response to this request: RFC 3416 §4.2.7, the
            // receiver answers with the same request-id.
            if let Ok(m) = rasn::ber::decode::<Message<Pdus>>(&buf[..n])
                && let Pdus::Response(r) = m.data
                && r.0.request_id == request_id
            {
                return Ok(());
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no Response to the inform after {INFORM_TRIES} tries"),
    ))
}

/// Whether the queue is over a threshold, told once per crossing.
#[derive(Debug, Default)]
struct QueueWatch {
    over: bool,
}

impl QueueWatch {
    /// True when the queue has just gone over a threshold (0: off).
    fn check(&mut self, depth: i64, age: i64, depth_threshold: u32, age_threshold: u32) -> bool {
        let over = (depth_threshold > 0 && depth >= depth_threshold as i64)
            || (age_threshold > 0 && age >= age_threshold as i64);
        let crossed = over && !self.over;
        self.over = over;
        crossed
    }
}

/// Failed logins over a sliding window.
#[derive(Debug)]
struct StormWatch {
    threshold: u32,
    window: Duration,
    /// (when, failed logins so far), oldest first, back to the window's
    /// start.
    samples: VecDeque<(Instant, u64)>,
    /// No storm notification before this.
    quiet_until: Option<Instant>,
}

impl StormWatch {
    fn new(threshold: u32, window: Duration) -> StormWatch {
        StormWatch {
            threshold,
            window,
            samples: VecDeque::new(),
            quiet_until: None,
        }
    }

    /// The failures within the window, and whether a storm notification is
    /// due now.
    fn check(&mut self, now: Instant, total: u64) -> (u64, bool) {
        self.samples.push_back((now, total));
        // Keep one sample at or before the window's start: the baseline.
        while self.samples.len() > 1 && now.duration_since(self.samples[1].0) >= self.window {
            self.samples.pop_front();
        }
        let base = self.samples.front().map_or(total, |s| s.1);
        let recent = total.saturating_sub(base);
        let due = self.threshold > 0
            && recent >= self.threshold as u64
            && self.quiet_until.is_none_or(|q| now >= q);
        if due {
            self.quiet_until = Some(now + self.window);
        }
        (recent, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_over_threshold_once_per_crossing() {
        let mut q = QueueWatch::default();
        assert!(!q.check(0, 0, 2, 0));
        assert!(q.check(2, 0, 2, 0));
        assert!(!q.check(5, 0, 2, 0), "still over: not again");
        assert!(!q.check(1, 0, 2, 0), "below: re-armed");
        assert!(q.check(3, 0, 2, 0));
        // The age threshold alone.
        let mut q = QueueWatch::default();
        assert!(!q.check(100, 59, 0, 60));
        assert!(q.check(100, 60, 0, 60));
        // Off.
        let mut q = QueueWatch::default();
        assert!(!q.check(1_000_000, 1_000_000, 0, 0));
    }

    #[test]
    fn storm_once_per_window() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut w = StormWatch::new(3, Duration::from_secs(60));
        // Failures from before the monitor began do not count.
        assert_eq!(w.check(s(0), 100), (0, false));
        assert_eq!(w.check(s(1), 102), (2, false));
        assert_eq!(w.check(s(2), 103), (3, true));
        assert_eq!(w.check(s(3), 110), (10, false), "once per window");
        // A minute on, the window holds only what came since.
        assert_eq!(w.check(s(61), 110), (8, false));
        assert_eq!(w.check(s(62), 115), (12, true));
        assert_eq!(w.check(s(200), 115), (0, false));
        // Off.
        let mut w = StormWatch::new(0, Duration::from_secs(60));
        assert_eq!(w.check(s(0), 0), (0, false));
        assert_eq!(w.check(s(1), 1000), (1000, false));
    }
}
