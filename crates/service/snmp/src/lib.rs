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
#![deny(missing_docs)]

pub mod engine;
pub mod mib;
pub mod usm;
pub mod v3;

use postgate_metrics::{ServiceLabel, metrics};
use postgate_runtime::Shutdown;
use postgate_types::Network;
use rasn_snmp::v2::{
    BulkPdu, GetBulkRequest, GetNextRequest, GetRequest, Pdu, Pdus, Response, SetRequest, VarBind,
    VarBindValue,
};
use rasn_snmp::v2c::Message;
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;

/// The most variable bindings one answer carries (a GETBULK asking for
/// more gets this many: RFC 3416 §4.2.3 lets the agent stop early).
const MAX_BINDINGS: usize = 512;
/// The largest answer sent (RFC 3417 §3.2: a transport's limit; a UDP
/// datagram over IPv4).
const MAX_ANSWER: usize = 65_000;
/// RFC 3416 §3 error-status values.
const TOO_BIG: u32 = 1;
const NO_SUCH_NAME: u32 = 2;
const NOT_WRITABLE: u32 = 17;
const READ_ONLY: u32 = 4;

/// A notification of POSTGATE-MIB (`postgateNotifications`, `postgate.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// postgateStarted: the services are up.
    Started = 1,
    /// postgateStopping: an orderly shutdown has begun.
    Stopping = 2,
}

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The read community (SNMPv2c).
    pub community: String,
    /// Who may ask.
    pub allowed: Vec<Network>,
    /// The system group's operator-set values.
    pub system: mib::System,
    /// Where notifications go ("host:port").
    pub trap_receivers: Vec<String>,
    /// The community notifications carry.
    pub trap_community: String,
    /// SNMPv3: the local engine and its users; `None`: v3 is off.
    pub v3: Option<usm::Settings>,
}

/// The SNMP agent.
pub struct Agent {
    settings: Settings,
    view: View,
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

impl Agent {
    /// An agent whose sysUpTime starts now.
    pub fn new(settings: Settings) -> Arc<Agent> {
        let started = Instant::now();
        let mut view = mib::view(&settings.system, started);
        let v3 = settings.v3.clone().map(v3::State::new);
        if let Some(v3) = &v3 {
            v3.add_objects(&mut view);
        }
        Arc::new(Agent { view, settings, v3 })
    }

    /// Sends `what` as an SNMPv2-Trap (RFC 3416 §4.2.6: sysUpTime.0, then
    /// snmpTrapOID.0) to every receiver; failures are logged, not fatal.
    pub async fn notify(&self, what: Notification) {
        if self.settings.trap_receivers.is_empty() {
            return;
        }
        let mut trap_oid = mib::root();
        trap_oid.extend([0, what as u32]);
        let value = |o: &[u32]| self.view.get(o).map(|g| g());
        let uptime = [1, 3, 6, 1, 2, 1, 1, 3, 0];
        let (Some(ticks), Some(n1), Some(n2), Some(oid)) = (
            value(&uptime),
            name(&uptime),
            // snmpTrapOID.0 (SNMPv2-MIB).
            name(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
            name(&trap_oid),
        ) else {
            return;
        };
        static REQUEST_IDS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(1);
        let message = Message {
            version: 1.into(),
            community: self.settings.trap_community.as_bytes().to_vec().into(),
            data: Pdus::Trap(rasn_snmp::v2::Trap(Pdu {
                request_id: REQUEST_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                error_status: 0,
                error_index: 0,
                variable_bindings: vec![
                    VarBind {
                        name: n1,
                        value: VarBindValue::Value(ticks),
                    },
                    VarBind {
                        name: n2,
                        value: VarBindValue::Value(rasn_smi::v2::ObjectSyntax::Simple(
                            rasn_smi::v2::SimpleSyntax::ObjectId(oid),
                        )),
                    },
                ],
            })),
        };
        // As it is, or as SNMPv3 when `trap_user` is set (v3.rs).
        let Some(bytes) = self.encode_notification(message) else {
            return;
        };
        let Ok(socket) = UdpSocket::bind(("0.0.0.0", 0)).await else {
            return;
        };
        for r in &self.settings.trap_receivers {
            match tokio::net::lookup_host(r.as_str())
                .await
                .map(|mut a| a.next())
            {
                Ok(Some(to)) => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(receiver = %r, error = %e, "snmp: trap not sent");
                    }
                }
                _ => tracing::warn!(receiver = %r, "snmp: trap receiver does not resolve"),
            }
        }
    }

    /// Serves `socket` until shutdown.
    pub async fn run(self: Arc<Self>, socket: UdpSocket, mut shutdown: Shutdown) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, peer) = tokio::select! {
                _ = shutdown.wait() => break,
                r = socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "snmp: receive failed");
                        continue;
                    }
                },
            };
            if let Some(answer) = self.answer(&buf[..n], peer.ip())
                && let Err(e) = socket.send_to(&answer, peer).await
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
        if msg.community.as_ref() != self.settings.community.as_bytes() {
            // RFC 3584 §5.2.1 / RFC 1157 §4.1: an unknown community is
            // dropped, and counted.
            m.refuse("snmp", "bad_community");
            return None;
        }
        m.connections
            .get_or_create(&ServiceLabel { service: "snmp" })
            .inc();
        let Some(pdu) = self.dispatch(msg.data, v1) else {
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
    /// The answer to one request PDU, whichever version carried it (v1,
    /// v2c, v3); `None` for a PDU that is no request.
    fn dispatch(&self, data: Pdus, v1: bool) -> Option<Pdu> {
        let view = &self.view;
        Some(match data {
            Pdus::GetRequest(GetRequest(p)) => get(view, p, v1),
            Pdus::GetNextRequest(GetNextRequest(p)) => next(view, p, v1),
            Pdus::GetBulkRequest(GetBulkRequest(b)) if !v1 => bulk(view, b),
            Pdus::SetRequest(SetRequest(p)) => Pdu {
                // Nothing here is writable with a read community.
                error_status: if v1 { READ_ONLY } else { NOT_WRITABLE },
                error_index: 1,
                ..p
            },
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
}
