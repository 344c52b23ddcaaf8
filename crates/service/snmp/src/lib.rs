//! Postgate's SNMP agent (RFC 3416 operations over UDP, SNMPv2c per RFC
//! 1901; SNMPv1 requests answered as v2c answers them where v1 can say it,
//! RFC 2576 §4.1.2): GET, GETNEXT and GETBULK over the system group
//! (SNMPv2-MIB), NETWORK-SERVICES-MIB's applTable (RFC 2788), MTA-MIB's
//! mtaTable (RFC 2789) and POSTGATE-MIB, all read from the one set of
//! counters ([`postgate_metrics`]). Messages are decoded and encoded with
//! rasn-snmp (BER), a maintained codec for exactly these PDUs, rather than
//! by hand.
//!
//! SNMPv3 (`[snmp.users.*]`): the User-based Security Model with authPriv
//! users alone, HMAC-SHA-256 and AES-128 ([`usm`] for the cryptography,
//! [`engine`] for the local engine's ID and boots, [`v3`] for the messages);
//! a v3 request reaches the same objects and the same dispatcher as v2c.
//!
//! Requests from outside `allowed_networks`, with another community, or
//! that do not decode are dropped without an answer and counted
//! (`postgate_connections_refused_total{service="snmp"}`).
//!
//! SET (RFC 3416 §4.2.5) changes POSTGATE-MIB's thresholds and resets its
//! statistics, with the write community only ([`set`]; what it changes is
//! kept in the data directory by [`control`]). Notifications, traps or
//! informs, and the monitor that sends the threshold ones are in
//! [`notify`]. Modules: [`mib`] the objects, [`control`] the writable
//! state, [`set`] SET, [`notify`] notifications.
#![deny(missing_docs)]

pub mod control;
pub mod engine;
pub mod mib;
pub mod notify;
pub mod set;
pub mod usm;
pub mod v3;

pub use control::StateError;
pub use notify::Notification;

use postgate_metrics::{ServiceLabel, metrics};
use postgate_runtime::Shutdown;
use postgate_types::Network;
use rasn_snmp::v2::{
    BulkPdu, GetBulkRequest, GetNextRequest, GetRequest, Pdu, Pdus, Response, SetRequest, VarBind,
    VarBindValue,
};
use rasn_snmp::v2c::Message;
use set::status::{NO_SUCH_NAME, TOO_BIG};
use std::net::IpAddr;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The most variable bindings one answer carries (a GETBULK asking for
/// more gets this many: RFC 3416 §4.2.3 lets the agent stop early).
const MAX_BINDINGS: usize = 512;
/// The largest answer sent (RFC 3417 §3.2: a transport's limit; a UDP
/// datagram over IPv4).
const MAX_ANSWER: usize = 65_000;
/// How often the serving thread looks up from the socket for shutdown.
const RECV_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// The agent's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The read community (SNMPv2c).
    pub community: String,
    /// The write community (SNMPv2c): SET with it may change the writable
    /// objects; None: nothing is writable.
    pub write_community: Option<String>,
    /// Who may ask.
    pub allowed: Vec<Network>,
    /// The system group's operator-set values.
    pub system: mib::System,
    /// Where notifications go ("host:port").
    pub trap_receivers: Vec<String>,
    /// The community notifications carry.
    pub trap_community: String,
    /// InformRequests (acknowledged, retried) rather than SNMPv2-Traps.
    pub inform: bool,
    /// postgateQueueDepthThreshold unless SET changed it (0: off).
    pub queue_depth_threshold: u32,
    /// postgateDeferredAgeThreshold, seconds, unless SET changed it (0: off).
    pub deferred_age_threshold: u32,
    /// Failed logins within `auth_failure_window` that make a storm (0:
    /// never).
    pub auth_failure_storm: u32,
    /// The window of `auth_failure_storm`.
    pub auth_failure_window: Duration,
    /// SNMPv3: the local engine and its users; `None`: v3 is off.
    pub v3: Option<usm::Settings>,
}

/// The SNMP agent.
pub struct Agent {
    settings: Settings,
    view: View,
    control: Arc<control::Control>,
    /// sysUpTime's zero.
    started: Instant,
    v3: Option<v3::State>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("settings", &self.settings)
            .field("objects", &self.view.len())
            .field("v3", &self.v3)
            .finish()
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Agent {
    /// An agent whose sysUpTime starts now, keeping nothing on disk.
    pub fn new(settings: Settings) -> Arc<Agent> {
        Agent::build(settings, None).expect("no state file to read")
    }

    /// An agent whose SET changes are kept in `data_dir`
    /// ([`control::STATE_FILE`]), and read back from there now: they take
    /// the place of the settings' thresholds.
    pub fn with_state(settings: Settings, data_dir: &Path) -> Result<Arc<Agent>, StateError> {
        Agent::build(settings, Some(data_dir.join(control::STATE_FILE)))
    }

    fn build(
        settings: Settings,
        state_file: Option<std::path::PathBuf>,
    ) -> Result<Arc<Agent>, StateError> {
        let started = Instant::now();
        let control = Arc::new(control::Control::new(
            settings.queue_depth_threshold,
            settings.deferred_age_threshold,
            mib::SERVICES.len(),
            state_file,
        )?);
        let storm = mib::Storm {
            threshold: settings.auth_failure_storm,
            window: settings.auth_failure_window.as_secs().min(u32::MAX as u64) as u32,
        };
        let mut view = mib::view(&settings.system, started, &control, storm);
        let v3 = settings.v3.clone().map(v3::State::new);
        if let Some(v3) = &v3 {
            v3.add_objects(&mut view);
        }
        Ok(Arc::new(Agent {
            view,
            control,
            settings,
            started,
            v3,
        }))
    }

    /// Serves `socket` until shutdown.
    pub async fn run(self: Arc<Self>, socket: UdpSocket, mut shutdown: Shutdown) {
        // A thread of its own, blocking on the socket: a request is read,
        // answered and sent without passing through the runtime's reactor
        // and scheduler, which at one request in flight is most of the time
        // a GET takes. The timeout lets the thread see shutdown.
        let socket = match socket.into_std().and_then(|s| {
            s.set_nonblocking(false)?;
            s.set_read_timeout(Some(RECV_POLL))?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "snmp: cannot serve the socket");
                return;
            }
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The thread also stops when this future is dropped unfinished (the
        // runtime shutting down before the shutdown signal reached it): a
        // runtime waits for its blocking threads, so a thread left polling
        // the socket kept `serve` from ever exiting.
        let _stop_when_dropped = StopOnDrop(stop.clone());
        let (agent, flag) = (self.clone(), stop.clone());
        let worker = tokio::task::spawn_blocking(move || agent.serve_blocking(&socket, &flag));
        tokio::pin!(worker);
        tokio::select! {
            _ = shutdown.wait() => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = worker.await;
            }
            _ = &mut worker => {}
        }
    }

    /// Answers datagrams on `socket` until `stop`.
    fn serve_blocking(&self, socket: &std::net::UdpSocket, stop: &std::sync::atomic::AtomicBool) {
        let mut buf = vec![0u8; 65_535];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (n, peer) = match socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "snmp: receive failed");
                    continue;
                }
            };
            if let Some(answer) = self.answer(&buf[..n], peer.ip())
                && let Err(e) = socket.send_to(&answer, peer)
            {
                tracing::debug!(error = %e, %peer, "snmp: send failed");
            }
        }
    }

    /// The answer to one datagram from `peer`, or `None` (dropped, and
    /// counted).
    pub fn answer(&self, datagram: &[u8], peer: IpAddr) -> Option<Vec<u8>> {
        let m = metrics();
        if !self.settings.allowed.iter().any(|n| n.contains(peer)) {
            m.refuse("snmp", "not_allowed");
            return None;
        }
        let Ok(msg) = rasn::ber::decode::<Message<Pdus>>(datagram) else {
            // Not v1/v2c: SNMPv3 (RFC 3412 §6: msgVersion 3), if it is on.
            if let Some(v3) = &self.v3
                && let Ok(msg) = rasn::ber::decode::<rasn_snmp::v3::Message>(datagram)
                && msg.version == 3.into()
            {
                return self.answer_v3(v3, msg, datagram);
            }
            m.refuse("snmp", "malformed");
            return None;
        };
        let v1 = match i64::try_from(&msg.version) {
            Ok(0) => true,
            Ok(1) => false,
            _ => {
                m.refuse("snmp", "malformed");
                return None;
            }
        };
        let may_write = self
            .settings
            .write_community
            .as_ref()
            .is_some_and(|w| msg.community.as_ref() == w.as_bytes());
        if !may_write && msg.community.as_ref() != self.settings.community.as_bytes() {
            // RFC 3584 §5.2.1 / RFC 1157 §4.1: an unknown community is
            // dropped, and counted.
            m.refuse("snmp", "bad_community");
            return None;
        }
        m.connections
            .get_or_create(&ServiceLabel { service: "snmp" })
            .inc();
        let Some(pdu) = self.dispatch(msg.data, v1, may_write) else {
            m.refuse("snmp", "malformed");
            return None;
        };
        let reply = |pdu: Pdu| {
            rasn::ber::encode(&Message {
                version: msg.version.clone(),
                community: msg.community.clone(),
                data: Pdus::Response(Response(pdu)),
            })
            .ok()
        };
        let request_id = pdu.request_id;
        let out = reply(pdu)?;
        if out.len() > MAX_ANSWER {
            // RFC 3416 §4.2.1: tooBig, with no bindings.
            return reply(Pdu {
                request_id,
                error_status: TOO_BIG,
                error_index: 0,
                variable_bindings: Vec::new(),
            });
        }
        Some(out)
    }
}

impl Agent {
    /// SET of `bindings` (RFC 3416 §4.2.5): all committed, or none and the
    /// SNMPv2 error with the binding at fault. `may_write`: whether the
    /// requester may write at all (the v2c write community, a v3 user's
    /// write view); without it a writable object is noAccess.
    pub fn set(&self, bindings: &[VarBind], may_write: bool) -> Result<(), set::SetError> {
        set::set(&self.control, bindings, may_write)
    }

    /// What SET changes and the monitor updates.
    pub fn control(&self) -> &control::Control {
        &self.control
    }

    /// The answer to one request PDU, whichever version carried it (v1,
    /// v2c, v3); `None` for a PDU that is no request. `may_write`: the
    /// requester may SET (the v2c write community, a v3 user with `write`).
    fn dispatch(&self, data: Pdus, v1: bool, may_write: bool) -> Option<Pdu> {
        let view = &self.view;
        Some(match data {
            Pdus::GetRequest(GetRequest(p)) => get(view, p, v1),
            Pdus::GetNextRequest(GetNextRequest(p)) => next(view, p, v1),
            Pdus::GetBulkRequest(GetBulkRequest(b)) if !v1 => bulk(view, b),
            Pdus::SetRequest(SetRequest(p)) => {
                match self.set(&p.variable_bindings, may_write) {
                    // RFC 3416 §4.2.5: the bindings as they came.
                    Ok(()) => Pdu {
                        error_status: 0,
                        error_index: 0,
                        ..p
                    },
                    Err(e) if v1 => failed(p, set::v1_status(e.status), e.index),
                    Err(e) => failed(p, e.status, e.index),
                }
            }
            _ => return None,
        })
    }
}

type View = std::collections::BTreeMap<Vec<u32>, mib::Getter>;

fn name(v: &[u32]) -> Option<rasn::types::ObjectIdentifier> {
    rasn::types::ObjectIdentifier::new(v.to_vec())
}

/// The binding after `from` in OID order, or endOfMibView.
fn after(view: &View, from: &[u32]) -> Option<VarBind> {
    let (k, v) = view
        .range::<[u32], _>((Bound::Excluded(from), Bound::Unbounded))
        .next()?;
    Some(VarBind {
        name: name(k)?,
        value: VarBindValue::Value(v()),
    })
}

/// GET (RFC 3416 §4.2.1).
fn get(view: &View, mut p: Pdu, v1: bool) -> Pdu {
    for (i, vb) in p.variable_bindings.iter_mut().enumerate() {
        match view.get(&vb.name.to_vec()) {
            Some(v) => vb.value = VarBindValue::Value(v()),
            None if v1 => return failed(p, NO_SUCH_NAME, i),
            None => {
                // Another instance of a known object: noSuchInstance.
                let n = vb.name.len();
                let object = &vb.name[..n.saturating_sub(1)];
                let known = view.keys().any(|k| k.len() == n && k.starts_with(object));
                vb.value = if known {
                    VarBindValue::NoSuchInstance
                } else {
                    VarBindValue::NoSuchObject
                };
            }
        }
    }
    p.error_status = 0;
    p.error_index = 0;
    p
}

/// GETNEXT (RFC 3416 §4.2.2).
fn next(view: &View, mut p: Pdu, v1: bool) -> Pdu {
    for i in 0..p.variable_bindings.len() {
        let from = p.variable_bindings[i].name.to_vec();
        match after(view, &from) {
            Some(vb) => p.variable_bindings[i] = vb,
            None if v1 => return failed(p, NO_SUCH_NAME, i),
            None => p.variable_bindings[i].value = VarBindValue::EndOfMibView,
        }
    }
    p.error_status = 0;
    p.error_index = 0;
    p
}

/// GETBULK (RFC 3416 §4.2.3): the first `non_repeaters` as GETNEXT, then
/// `max_repetitions` rounds over the rest, as far as [`MAX_BINDINGS`].
fn bulk(view: &View, b: BulkPdu) -> Pdu {
    let n = (b.non_repeaters as usize).min(b.variable_bindings.len());
    let mut out = Vec::new();
    for vb in &b.variable_bindings[..n] {
        out.push(after(view, vb.name.as_ref()).unwrap_or(VarBind {
            name: vb.name.clone(),
            value: VarBindValue::EndOfMibView,
        }));
    }
    let mut cursors: Vec<Vec<u32>> = b.variable_bindings[n..]
        .iter()
        .map(|vb| vb.name.to_vec())
        .collect();
    'rounds: for _ in 0..b.max_repetitions {
        if cursors.is_empty() {
            break;
        }
        let mut all_ended = true;
        for c in cursors.iter_mut() {
            if out.len() >= MAX_BINDINGS {
                break 'rounds;
            }
            match after(view, c) {
                Some(vb) => {
                    *c = vb.name.to_vec();
                    all_ended = false;
                    out.push(vb);
                }
                None => out.push(VarBind {
                    name: name(c).unwrap_or_else(|| name(&[0, 0]).expect("0.0")),
                    value: VarBindValue::EndOfMibView,
                }),
            }
        }
        if all_ended {
            break;
        }
    }
    Pdu {
        request_id: b.request_id,
        error_status: 0,
        error_index: 0,
        variable_bindings: out,
    }
}

fn failed(mut p: Pdu, status: u32, index: usize) -> Pdu {
    p.error_status = status;
    p.error_index = (index + 1) as u32;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Arc<Agent> {
        Agent::new(Settings {
            community: "public".into(),
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
            system: mib::System {
                contact: "ops@example.org".into(),
                name: "mx.example.org".into(),
                location: "rack 1".into(),
            },
            trap_receivers: Vec::new(),
            trap_community: "public".into(),
            write_community: Some("writer".into()),
            inform: false,
            queue_depth_threshold: 0,
            deferred_age_threshold: 0,
            auth_failure_storm: 20,
            auth_failure_window: Duration::from_secs(60),
            v3: None,
        })
    }

    fn request(community: &str, pdus: Pdus) -> Vec<u8> {
        rasn::ber::encode(&Message {
            version: 1.into(),
            community: community.as_bytes().to_vec().into(),
            data: pdus,
        })
        .unwrap()
    }

    fn vb(o: &[u32]) -> VarBind {
        VarBind {
            name: name(o).unwrap(),
            value: VarBindValue::Unspecified,
        }
    }

    fn pdu(o: &[&[u32]]) -> Pdu {
        Pdu {
            request_id: 7,
            error_status: 0,
            error_index: 0,
            variable_bindings: o.iter().map(|o| vb(o)).collect(),
        }
    }

    fn response(b: &[u8]) -> Pdu {
        match rasn::ber::decode::<Message<Pdus>>(b).unwrap().data {
            Pdus::Response(Response(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn get_next_bulk_and_drops() {
        let a = agent();
        let sys_name = [1, 3, 6, 1, 2, 1, 1, 5, 0];
        let r = response(
            &a.answer(
                &request("public", Pdus::GetRequest(GetRequest(pdu(&[&sys_name])))),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(r.request_id, 7);
        assert!(matches!(
            &r.variable_bindings[0].value,
            VarBindValue::Value(_)
        ));
        // Unknown instance and object.
        let r = response(
            &a.answer(
                &request(
                    "public",
                    Pdus::GetRequest(GetRequest(pdu(&[
                        &[1, 3, 6, 1, 2, 1, 1, 5, 1],
                        &[1, 3, 6, 1, 9],
                    ]))),
                ),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(r.variable_bindings[0].value, VarBindValue::NoSuchInstance);
        assert_eq!(r.variable_bindings[1].value, VarBindValue::NoSuchObject);
        // GETNEXT from the system group's root gives sysDescr.0.
        let r = response(
            &a.answer(
                &request(
                    "public",
                    Pdus::GetNextRequest(GetNextRequest(pdu(&[&[1, 3, 6, 1, 2, 1, 1]]))),
                ),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(
            r.variable_bindings[0].name.to_vec(),
            vec![1, 3, 6, 1, 2, 1, 1, 1, 0]
        );
        // Past the end.
        let r = response(
            &a.answer(
                &request(
                    "public",
                    Pdus::GetNextRequest(GetNextRequest(pdu(&[&[2, 0]]))),
                ),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(r.variable_bindings[0].value, VarBindValue::EndOfMibView);
        // GETBULK walks several.
        let bulk = BulkPdu {
            request_id: 9,
            non_repeaters: 0,
            max_repetitions: 5,
            variable_bindings: vec![vb(&[1, 3, 6, 1, 2, 1, 1])],
        };
        let r = response(
            &a.answer(
                &request("public", Pdus::GetBulkRequest(GetBulkRequest(bulk))),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(r.variable_bindings.len(), 5);
        // Wrong community, outside address, garbage: no answer.
        assert!(
            a.answer(
                &request("private", Pdus::GetRequest(GetRequest(pdu(&[&sys_name])))),
                LOCAL
            )
            .is_none()
        );
        assert!(
            a.answer(
                &request("public", Pdus::GetRequest(GetRequest(pdu(&[&sys_name])))),
                "192.0.2.1".parse().unwrap()
            )
            .is_none()
        );
        assert!(a.answer(b"\x30\x03\x02\x01", LOCAL).is_none());
        assert!(a.answer(&[0xff; 3000], LOCAL).is_none());
    }

    fn set_request(community: &str, version: i64, bindings: Vec<VarBind>) -> Vec<u8> {
        rasn::ber::encode(&Message {
            version: version.into(),
            community: community.as_bytes().to_vec().into(),
            data: Pdus::SetRequest(SetRequest(Pdu {
                request_id: 11,
                error_status: 0,
                error_index: 0,
                variable_bindings: bindings,
            })),
        })
        .unwrap()
    }

    fn bind(o: &[u32], v: rasn_smi::v2::ObjectSyntax) -> VarBind {
        VarBind {
            name: name(o).unwrap(),
            value: VarBindValue::Value(v),
        }
    }

    fn unsigned(v: u32) -> rasn_smi::v2::ObjectSyntax {
        rasn_smi::v2::ObjectSyntax::ApplicationWide(rasn_smi::v2::ApplicationSyntax::Unsigned(
            rasn_smi::v1::Gauge(v),
        ))
    }

    fn integer(v: i64) -> rasn_smi::v2::ObjectSyntax {
        rasn_smi::v2::ObjectSyntax::Simple(rasn_smi::v2::SimpleSyntax::Integer(v.into()))
    }

    fn get_value(a: &Agent, o: &[u32]) -> VarBindValue {
        let r = response(
            &a.answer(
                &request("public", Pdus::GetRequest(GetRequest(pdu(&[o])))),
                LOCAL,
            )
            .unwrap(),
        );
        r.variable_bindings[0].value.clone()
    }

    #[test]
    fn set_checks_every_binding_then_commits_all_or_none() {
        let a = agent();
        let depth = mib::object_oid(&[mib::object::DEPTH_THRESHOLD, 0]);
        let age = mib::object_oid(&[mib::object::AGE_THRESHOLD, 0]);
        let reset = mib::object_oid(&[mib::object::RESET_STATS, 0]);
        let answer = |community: &str, version: i64, b: Vec<VarBind>| {
            let r = response(
                &a.answer(&set_request(community, version, b), LOCAL)
                    .unwrap(),
            );
            (r.error_status, r.error_index)
        };
        // Both thresholds at once, with the write community.
        assert_eq!(
            answer(
                "writer",
                1,
                vec![bind(&depth, unsigned(10)), bind(&age, unsigned(3600))]
            ),
            (0, 0)
        );
        assert_eq!(get_value(&a, &depth), VarBindValue::Value(unsigned(10)));
        assert_eq!(get_value(&a, &age), VarBindValue::Value(unsigned(3600)));
        // The second binding is wrong: the first is not applied either.
        let cases: &[(&str, Vec<VarBind>, (u32, u32))] = &[
            // wrongType: INTEGER for an Unsigned32.
            (
                "writer",
                vec![bind(&depth, unsigned(5)), bind(&age, integer(5))],
                (7, 2),
            ),
            // wrongValue: out of range.
            (
                "writer",
                vec![bind(&depth, unsigned(5)), bind(&age, unsigned(40_000_000))],
                (10, 2),
            ),
            (
                "writer",
                vec![bind(&depth, unsigned(5)), bind(&reset, integer(3))],
                (10, 2),
            ),
            // notWritable: a read-only object, and one that is not there.
            (
                "writer",
                vec![
                    bind(&depth, unsigned(5)),
                    bind(&[1, 3, 6, 1, 2, 1, 1, 5, 0], integer(1)),
                ],
                (17, 2),
            ),
            (
                "writer",
                vec![
                    bind(&depth, unsigned(5)),
                    bind(&[1, 3, 6, 1, 9, 0], integer(1)),
                ],
                (17, 2),
            ),
            // noCreation: another instance of a writable scalar.
            (
                "writer",
                vec![
                    bind(&depth, unsigned(5)),
                    bind(
                        &mib::object_oid(&[mib::object::AGE_THRESHOLD, 1]),
                        unsigned(5),
                    ),
                ],
                (11, 2),
            ),
            // noAccess: the read community may not write.
            ("public", vec![bind(&depth, unsigned(5))], (6, 1)),
        ];
        for (community, b, want) in cases {
            assert_eq!(answer(community, 1, b.clone()), *want, "{b:?}");
            assert_eq!(get_value(&a, &depth), VarBindValue::Value(unsigned(10)));
        }
        // SNMPv1 says them its way (RFC 3584 §4.4).
        assert_eq!(answer("writer", 0, vec![bind(&age, integer(5))]), (3, 1));
        assert_eq!(answer("public", 0, vec![bind(&age, unsigned(5))]), (2, 1));
        assert_eq!(
            answer(
                "writer",
                0,
                vec![bind(&[1, 3, 6, 1, 2, 1, 1, 5, 0], integer(1))]
            ),
            (2, 1)
        );
        // A write community that is not configured is no community at all.
        let b = Agent::new(Settings {
            write_community: None,
            ..a.settings.clone()
        });
        assert!(
            b.answer(
                &set_request("writer", 1, vec![bind(&depth, unsigned(5))]),
                LOCAL
            )
            .is_none()
        );
        let r = response(
            &b.answer(
                &set_request("public", 1, vec![bind(&depth, unsigned(5))]),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!((r.error_status, r.error_index), (6, 1));
    }

    #[test]
    fn reset_stats_subtracts_baselines_and_records_the_time() {
        let a = agent();
        // postgateMessagesIn.0, and the never-reset time.
        let msgs = mib::object_oid(&[4, 0]);
        let reset_time = mib::object_oid(&[mib::object::RESET_TIME, 0]);
        postgate_metrics::metrics().message("in", 10, 1);
        let before = |v: VarBindValue| match v {
            VarBindValue::Value(rasn_smi::v2::ObjectSyntax::ApplicationWide(
                rasn_smi::v2::ApplicationSyntax::BigCounter(c),
            )) => c.0,
            other => panic!("{other:?}"),
        };
        assert!(before(get_value(&a, &msgs)) >= 1);
        assert_eq!(
            get_value(&a, &reset_time),
            VarBindValue::Value(rasn_smi::v2::ObjectSyntax::Simple(
                rasn_smi::v2::SimpleSyntax::String(vec![0u8; 8].into())
            ))
        );
        let r = response(
            &a.answer(
                &set_request(
                    "writer",
                    1,
                    vec![bind(
                        &mib::object_oid(&[mib::object::RESET_STATS, 0]),
                        integer(1),
                    )],
                ),
                LOCAL,
            )
            .unwrap(),
        );
        assert_eq!(r.error_status, 0);
        // Other tests count messages in parallel: at most their few.
        assert!(before(get_value(&a, &msgs)) < 5);
        let VarBindValue::Value(rasn_smi::v2::ObjectSyntax::Simple(
            rasn_smi::v2::SimpleSyntax::String(t),
        )) = get_value(&a, &reset_time)
        else {
            panic!()
        };
        assert_eq!(t.len(), 11);
        assert!(u16::from_be_bytes([t[0], t[1]]) >= 2024);
        // It reads as noOp(2).
        assert_eq!(
            get_value(&a, &mib::object_oid(&[mib::object::RESET_STATS, 0])),
            VarBindValue::Value(integer(2))
        );
    }

    /// A receiver on loopback: the datagrams it gets, answering informs
    /// after ignoring the first `ignore` of them.
    async fn receiver(ignore: usize) -> (String, tokio::sync::mpsc::UnboundedReceiver<Pdus>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            let mut seen = 0;
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let m = rasn::ber::decode::<Message<Pdus>>(&buf[..n]).unwrap();
                seen += 1;
                if let Pdus::InformRequest(rasn_snmp::v2::InformRequest(p)) = &m.data
                    && seen > ignore
                {
                    let answer = Message {
                        version: m.version.clone(),
                        community: m.community.clone(),
                        data: Pdus::Response(Response(p.clone())),
                    };
                    let _ = socket
                        .send_to(&rasn::ber::encode(&answer).unwrap(), peer)
                        .await;
                }
                let _ = tx.send(m.data);
            }
        });
        (addr, rx)
    }

    fn trap_oid(p: &Pdu) -> Vec<u32> {
        match &p.variable_bindings[1].value {
            VarBindValue::Value(rasn_smi::v2::ObjectSyntax::Simple(
                rasn_smi::v2::SimpleSyntax::ObjectId(o),
            )) => o.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    /// A runtime dropped while the agent serves (before any shutdown
    /// signal) must not wait forever for the agent's receiving thread.
    #[test]
    fn a_runtime_dropped_while_serving_is_not_held_up() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (_trigger, shutdown) = postgate_runtime::shutdown::channel();
            rt.block_on(async {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                tokio::spawn(agent().run(socket, shutdown));
                // The agent's thread is polling its socket.
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
            drop(rt);
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "dropping the runtime hung on the SNMP thread"
        );
    }

    #[tokio::test]
    async fn service_failed_trap_carries_the_row_and_marks_it_down() {
        let (addr, mut rx) = receiver(0).await;
        let a = Agent::new(Settings {
            trap_receivers: vec![addr],
            ..agent().settings.clone()
        });
        a.service_failed("imap").await;
        a.service_failed("imap").await; // once only
        let Pdus::Trap(rasn_snmp::v2::Trap(p)) = rx.recv().await.unwrap() else {
            panic!()
        };
        // sysUpTime.0, snmpTrapOID.0 = postgateServiceFailed, then
        // postgateServiceName.2 and postgateServiceStatus.2 = failed(2).
        assert_eq!(
            p.variable_bindings[0].name.to_vec(),
            vec![1, 3, 6, 1, 2, 1, 1, 3, 0]
        );
        assert_eq!(trap_oid(&p), [mib::root(), vec![0, 4]].concat());
        assert_eq!(
            p.variable_bindings[2].name.to_vec(),
            mib::object_oid(&[3, 1, 2, 2])
        );
        assert_eq!(
            p.variable_bindings[3].value,
            VarBindValue::Value(integer(2))
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err()
        );
        // applOperStatus of the IMAP row: down(2).
        assert_eq!(
            get_value(&a, &[1, 3, 6, 1, 2, 1, 27, 1, 1, 6, 2]),
            VarBindValue::Value(integer(2))
        );
    }

    #[tokio::test]
    async fn informs_are_sent_again_until_answered() {
        let (addr, mut rx) = receiver(1).await;
        let a = Agent::new(Settings {
            trap_receivers: vec![addr],
            inform: true,
            ..agent().settings.clone()
        });
        let before = postgate_metrics::metrics()
            .snmp_notifications
            .get_or_create(&postgate_metrics::NotificationLabel { outcome: "sent" })
            .get();
        a.notify(Notification::Started).await;
        // The first try went unanswered, the second was acknowledged.
        for _ in 0..2 {
            let Pdus::InformRequest(rasn_snmp::v2::InformRequest(p)) = rx.recv().await.unwrap()
            else {
                panic!()
            };
            assert_eq!(trap_oid(&p), [mib::root(), vec![0, 1]].concat());
        }
        assert!(rx.try_recv().is_err());
        let after = postgate_metrics::metrics()
            .snmp_notifications
            .get_or_create(&postgate_metrics::NotificationLabel { outcome: "sent" })
            .get();
        assert!(after > before);
    }
}
