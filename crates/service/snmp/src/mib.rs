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

/// How one object's value is read, when asked for.
pub type Getter = Box<dyn Fn() -> ObjectSyntax + Send + Sync>;

fn get(f: impl Fn() -> ObjectSyntax + Send + Sync + 'static) -> Getter {
    Box::new(f)
}

/// Every object, by OID, each read from the counters when asked for: built
/// once, so an answer computes only what it names.
pub fn view(system: &System, started: Instant) -> BTreeMap<Vec<u32>, Getter> {
    let m = metrics();
    let mut v: BTreeMap<Vec<u32>, Getter> = BTreeMap::new();
    let version = format!("Postgate {}", env!("CARGO_PKG_VERSION"));
    let system = system.clone();
    // SNMPv2-MIB system group (RFC 3418 §2).
    let sys = [1, 3, 6, 1, 2, 1, 1];
    v.insert(at(&sys, &[1, 0]), {
        let d = format!("{version}: post office and Internet agent");
        get(move || text(&d))
    });
    v.insert(at(&sys, &[2, 0]), get(move || oid(&root())));
    v.insert(at(&sys, &[3, 0]), get(move || ticks(started)));
    v.insert(at(&sys, &[4, 0]), {
        let t = system.contact.clone();
        get(move || text(&t))
    });
    v.insert(at(&sys, &[5, 0]), {
        let t = system.name.clone();
        get(move || text(&t))
    });
    v.insert(at(&sys, &[6, 0]), {
        let t = system.location.clone();
        get(move || text(&t))
    });
    // Applications (layer 7) and end-to-end (layer 4): 64 + 8.
    v.insert(at(&sys, &[7, 0]), get(move || int(72)));

    let total = move |s: &'static str| {
        m.connections
            .get_or_create(&ServiceLabel { service: s })
            .get()
    };
    let current = move |s: &'static str| {
        m.connections_current
            .get_or_create(&ServiceLabel { service: s })
            .get()
    };
    let refused = move |s: &'static str| {
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
    let dir = move |d: &'static str| DirectionLabel { direction: d };
    // NETWORK-SERVICES-MIB applTable (RFC 2788 §4): one row per service.
    let appl = [1, 3, 6, 1, 2, 1, 27, 1, 1];
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        v.insert(
            at(&appl, &[2, row]),
            get(move || text(&format!("postgate-{s}"))),
        );
        v.insert(
            at(&appl, &[3, row]),
            get(move || text(env!("CARGO_PKG_VERSION"))),
        );
        v.insert(at(&appl, &[4, row]), get(move || ticks(started))); // applUptime
        v.insert(at(&appl, &[5, row]), get(move || int(1))); // applOperStatus: up(1)
        v.insert(at(&appl, &[7, row]), get(move || gauge(current(s))));
        v.insert(at(&appl, &[9, row]), get(move || counter(total(s))));
        v.insert(at(&appl, &[13, row]), get(move || counter(refused(s))));
        v.insert(
            at(&appl, &[15, row]),
            get(move || text(&format!("Postgate {s} service"))),
        );
    }
    // MTA-MIB mtaTable (RFC 2789 §4), for the SMTP row (applIndex 1).
    let mta = [1, 3, 6, 1, 2, 1, 28, 1, 1];
    let msgs = move |d| m.messages.get_or_create(&dir(d)).get();
    let bytes = move |d| m.bytes.get_or_create(&dir(d)).get();
    let rcpts = move |d| m.recipients.get_or_create(&dir(d)).get();
    v.insert(at(&mta, &[1, 1]), get(move || counter(msgs("in"))));
    v.insert(at(&mta, &[3, 1]), get(move || counter(msgs("out"))));
    // Volumes in kilo-octets (RFC 2789 mtaReceivedVolume).
    v.insert(at(&mta, &[4, 1]), get(move || counter(bytes("in") / 1024)));
    v.insert(at(&mta, &[6, 1]), get(move || counter(bytes("out") / 1024)));
    v.insert(at(&mta, &[7, 1]), get(move || counter(rcpts("in"))));
    v.insert(at(&mta, &[9, 1]), get(move || counter(rcpts("out"))));

    // POSTGATE-MIB (mibs/POSTGATE-MIB.txt): postgateObjects(1).
    let obj = at(&root(), &[1]);
    v.insert(at(&obj, &[1, 0]), {
        let t = version.clone();
        get(move || text(&t))
    });
    v.insert(at(&obj, &[2, 0]), get(move || ticks(started)));
    // pgServiceTable(3).pgServiceEntry(1).
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        let e = at(&obj, &[3, 1]);
        v.insert(at(&e, &[2, row]), get(move || text(s)));
        v.insert(at(&e, &[3, row]), get(move || int(1))); // running(1)
        v.insert(
            at(&e, &[4, row]),
            get(move || gauge(m.workers.get_or_create(&ServiceLabel { service: s }).get())),
        );
        v.insert(at(&e, &[5, row]), get(move || gauge(current(s))));
        v.insert(at(&e, &[6, row]), get(move || counter(total(s))));
        v.insert(at(&e, &[7, row]), get(move || counter(refused(s))));
        let logins = move |o: &'static str| {
            m.logins
                .get_or_create(&LoginLabel {
                    service: s,
                    outcome: o,
                })
                .get()
        };
        v.insert(at(&e, &[8, row]), get(move || counter(logins("ok"))));
        v.insert(at(&e, &[9, row]), get(move || counter(logins("failed"))));
    }
    v.insert(at(&obj, &[4, 0]), get(move || counter64(msgs("in"))));
    v.insert(at(&obj, &[5, 0]), get(move || counter64(msgs("out"))));
    v.insert(at(&obj, &[6, 0]), get(move || counter64(bytes("in"))));
    v.insert(at(&obj, &[7, 0]), get(move || counter64(bytes("out"))));
    let outcome =
        move |o: &'static str| m.outbound.get_or_create(&OutcomeLabel { outcome: o }).get();
    v.insert(
        at(&obj, &[8, 0]),
        get(move || counter64(outcome("deferred"))),
    );
    v.insert(at(&obj, &[9, 0]), get(move || counter64(outcome("failed"))));
    v.insert(at(&obj, &[10, 0]), get(move || counter64(m.dsns.get())));
    // The outbound queue (sampled by the delivery agent every few seconds).
    let queue = move |state: &'static str| m.queue.get_or_create(&QueueLabel { state }).get();
    v.insert(at(&obj, &[11, 0]), get(move || gauge(queue("due"))));
    v.insert(at(&obj, &[12, 0]), get(move || gauge(queue("deferred"))));
    v.insert(at(&obj, &[13, 0]), get(move || gauge(queue("in_flight"))));
    v.insert(
        at(&obj, &[14, 0]),
        get(move || gauge(m.queue_oldest_seconds.get())),
    );
    v
}
