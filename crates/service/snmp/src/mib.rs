//! The objects the agent serves, read from the one set of counters at each
//! request, in OID order (RFC 3416 §4.2.2: GETNEXT walks lexicographic order).
use postgate_metrics::{
    DirectionLabel, LoginLabel, OutcomeLabel, QueueLabel, RefusedLabel, ServiceLabel, metrics,
};
use rasn::types::{Integer, OctetString};
use rasn_smi::v1::{Counter, Gauge, TimeTicks};
use rasn_smi::v2::{ApplicationSyntax, Counter64, ObjectSyntax, SimpleSyntax};
use std::collections::BTreeMap;
use std::time::Instant;

/// The IANA Private Enterprise Number the MIB lives under: RFC 5612's number
/// for documentation, until the project has its own. Held here alone.
pub const ENTERPRISE: u32 = 32473;

/// `postgate`: the root of POSTGATE-MIB (enterprises.ENTERPRISE.1).
pub fn root() -> Vec<u32> {
    vec![1, 3, 6, 1, 4, 1, ENTERPRISE, 1]
}

/// The services with a row in applTable and the POSTGATE-MIB service table,
/// by row index.
pub const SERVICES: &[&str] = &["smtp", "imap", "pop3", "ldap", "console", "snmp"];

/// What the operator says of the system group (SNMPv2-MIB).
#[derive(Debug, Clone)]
pub struct System {
    /// sysContact.
    pub contact: String,
    /// sysName.
    pub name: String,
    /// sysLocation.
    pub location: String,
}

fn text(s: &str) -> ObjectSyntax {
    ObjectSyntax::Simple(SimpleSyntax::String(OctetString::from(
        s.as_bytes().to_vec(),
    )))
}
fn int(v: i64) -> ObjectSyntax {
    ObjectSyntax::Simple(SimpleSyntax::Integer(Integer::from(v)))
}
fn oid(v: &[u32]) -> ObjectSyntax {
    ObjectSyntax::Simple(SimpleSyntax::ObjectId(
        rasn::types::ObjectIdentifier::new(v.to_vec()).expect("a valid OID"),
    ))
}
fn counter(v: u64) -> ObjectSyntax {
    // Counter32 wraps (RFC 2578 §7.1.6).
    ObjectSyntax::ApplicationWide(ApplicationSyntax::Counter(Counter(v as u32)))
}
fn counter64(v: u64) -> ObjectSyntax {
    ObjectSyntax::ApplicationWide(ApplicationSyntax::BigCounter(Counter64(v)))
}
fn gauge(v: i64) -> ObjectSyntax {
    ObjectSyntax::ApplicationWide(ApplicationSyntax::Unsigned(Gauge(
        v.clamp(0, u32::MAX as i64) as u32,
    )))
}
fn ticks(since: Instant) -> ObjectSyntax {
    // Hundredths of a second, wrapping (RFC 2578 §7.1.8).
    let t = (since.elapsed().as_millis() / 10) as u64;
    ObjectSyntax::ApplicationWide(ApplicationSyntax::Ticks(TimeTicks(t as u32)))
}

fn at(base: &[u32], tail: &[u32]) -> Vec<u32> {
    let mut v = base.to_vec();
    v.extend_from_slice(tail);
    v
}

/// Every object, now.
pub fn view(system: &System, started: Instant) -> BTreeMap<Vec<u32>, ObjectSyntax> {
    let m = metrics();
    let mut v = BTreeMap::new();
    let version = format!("Postgate {}", env!("CARGO_PKG_VERSION"));
    // SNMPv2-MIB system group (RFC 3418 §2).
    let sys = [1, 3, 6, 1, 2, 1, 1];
    v.insert(
        at(&sys, &[1, 0]),
        text(&format!("{version}: post office and Internet agent")),
    );
    v.insert(at(&sys, &[2, 0]), oid(&root()));
    v.insert(at(&sys, &[3, 0]), ticks(started));
    v.insert(at(&sys, &[4, 0]), text(&system.contact));
    v.insert(at(&sys, &[5, 0]), text(&system.name));
    v.insert(at(&sys, &[6, 0]), text(&system.location));
    // Applications (layer 7) and end-to-end (layer 4): 64 + 8.
    v.insert(at(&sys, &[7, 0]), int(72));

    let total = |s: &'static str| {
        m.connections
            .get_or_create(&ServiceLabel { service: s })
            .get()
    };
    let current = |s: &'static str| {
        m.connections_current
            .get_or_create(&ServiceLabel { service: s })
            .get()
    };
    let refused = |s: &'static str| {
        ["busy", "per_ip", "blocked"]
            .iter()
            .map(|r| {
                m.refused
                    .get_or_create(&RefusedLabel {
                        service: s,
                        reason: r,
                    })
                    .get()
            })
            .sum::<u64>()
    };
    let dir = |d: &'static str| DirectionLabel { direction: d };
    // NETWORK-SERVICES-MIB applTable (RFC 2788 §4): one row per service.
    let appl = [1, 3, 6, 1, 2, 1, 27, 1, 1];
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        v.insert(at(&appl, &[2, row]), text(&format!("postgate-{s}")));
        v.insert(at(&appl, &[3, row]), text(env!("CARGO_PKG_VERSION")));
        v.insert(at(&appl, &[4, row]), ticks(started)); // applUptime
        v.insert(at(&appl, &[5, row]), int(1)); // applOperStatus: up(1)
        v.insert(at(&appl, &[7, row]), gauge(current(s)));
        v.insert(at(&appl, &[9, row]), counter(total(s)));
        v.insert(at(&appl, &[13, row]), counter(refused(s)));
        v.insert(
            at(&appl, &[15, row]),
            text(&format!("Postgate {s} service")),
        );
    }
    // MTA-MIB mtaTable (RFC 2789 §4), for the SMTP row (applIndex 1).
    let mta = [1, 3, 6, 1, 2, 1, 28, 1, 1];
    let msgs = |d| m.messages.get_or_create(&dir(d)).get();
    let bytes = |d| m.bytes.get_or_create(&dir(d)).get();
    let rcpts = |d| m.recipients.get_or_create(&dir(d)).get();
    v.insert(at(&mta, &[1, 1]), counter(msgs("in")));
    v.insert(at(&mta, &[3, 1]), counter(msgs("out")));
    // Volumes in kilo-octets (RFC 2789 mtaReceivedVolume).
    v.insert(at(&mta, &[4, 1]), counter(bytes("in") / 1024));
    v.insert(at(&mta, &[6, 1]), counter(bytes("out") / 1024));
    v.insert(at(&mta, &[7, 1]), counter(rcpts("in")));
    v.insert(at(&mta, &[9, 1]), counter(rcpts("out")));

    // POSTGATE-MIB (mibs/POSTGATE-MIB.txt): postgateObjects(1).
    let obj = at(&root(), &[1]);
    v.insert(at(&obj, &[1, 0]), text(&version));
    v.insert(at(&obj, &[2, 0]), ticks(started));
    // pgServiceTable(3).pgServiceEntry(1).
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        let e = at(&obj, &[3, 1]);
        v.insert(at(&e, &[2, row]), text(s));
        v.insert(at(&e, &[3, row]), int(1)); // running(1)
        v.insert(
            at(&e, &[4, row]),
            gauge(m.workers.get_or_create(&ServiceLabel { service: s }).get()),
        );
        v.insert(at(&e, &[5, row]), gauge(current(s)));
        v.insert(at(&e, &[6, row]), counter(total(s)));
        v.insert(at(&e, &[7, row]), counter(refused(s)));
        let logins = |o: &'static str| {
            m.logins
                .get_or_create(&LoginLabel {
                    service: s,
                    outcome: o,
                })
                .get()
        };
        v.insert(at(&e, &[8, row]), counter(logins("ok")));
        v.insert(at(&e, &[9, row]), counter(logins("failed")));
    }
    v.insert(at(&obj, &[4, 0]), counter64(msgs("in")));
    v.insert(at(&obj, &[5, 0]), counter64(msgs("out")));
    v.insert(at(&obj, &[6, 0]), counter64(bytes("in")));
    v.insert(at(&obj, &[7, 0]), counter64(bytes("out")));
    let outcome = |o: &'static str| m.outbound.get_or_create(&OutcomeLabel { outcome: o }).get();
    v.insert(at(&obj, &[8, 0]), counter64(outcome("deferred")));
    v.insert(at(&obj, &[9, 0]), counter64(outcome("failed")));
    v.insert(at(&obj, &[10, 0]), counter64(m.dsns.get()));
    // The outbound queue (sampled by the delivery agent every few seconds).
    let queue = |state: &'static str| m.queue.get_or_create(&QueueLabel { state }).get();
    v.insert(at(&obj, &[11, 0]), gauge(queue("due")));
    v.insert(at(&obj, &[12, 0]), gauge(queue("deferred")));
    v.insert(at(&obj, &[13, 0]), gauge(queue("in_flight")));
    v.insert(at(&obj, &[14, 0]), gauge(m.queue_oldest_seconds.get()));
    v
}
