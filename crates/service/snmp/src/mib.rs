//! The objects the agent serves, read from the one set of counters at each
//! request, in OID order (RFC 3416 §4.2.2: GETNEXT walks lexicographic order).
use crate::control::{Control, date_and_time};
use postgate_metrics::{
    DirectionLabel, LoginLabel, OutcomeLabel, QueueLabel, RefusedLabel, ServiceLabel, metrics,
};
use rasn::types::{Integer, OctetString};
use rasn_smi::v1::{Counter, Gauge, TimeTicks};
use rasn_smi::v2::{ApplicationSyntax, Counter64, ObjectSyntax, SimpleSyntax};
use std::collections::BTreeMap;
use std::sync::Arc;
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

/// The login front door's names (`postgate_types::Service::as_str`) whose
/// logins each row counts: SMTP AUTH is "submission" (and the class of
/// service names), the client API "api"; the SNMP agent has no logins.
const LOGIN_SERVICES: &[&[&str]] = &[
    &["submission", "smtp.send", "smtp.receive"],
    &["imap"],
    &["pop3"],
    &["ldap"],
    &["api"],
    &[],
];

/// Every login service name, for failed logins across all of them.
pub fn login_services() -> impl Iterator<Item = &'static str> {
    LOGIN_SERVICES.iter().flat_map(|s| s.iter().copied())
}

/// POSTGATE-MIB's objects under postgateObjects (`postgate.1.N`), by N.
pub mod object {
    /// postgateVersion.
    pub const VERSION: u32 = 1;
    /// postgateQueueOldestAge.
    pub const QUEUE_OLDEST_AGE: u32 = 14;
    /// postgateQueueDepth.
    pub const QUEUE_DEPTH: u32 = 15;
    /// postgateQueueDepthThreshold (read-write).
    pub const DEPTH_THRESHOLD: u32 = 16;
    /// postgateDeferredAgeThreshold (read-write).
    pub const AGE_THRESHOLD: u32 = 17;
    /// postgateResetStats (read-write).
    pub const RESET_STATS: u32 = 18;
    /// postgateStatsResetTime.
    pub const RESET_TIME: u32 = 19;
    /// postgateAuthFailures.
    pub const AUTH_FAILURES: u32 = 20;
    /// postgateAuthFailureWindow.
    pub const AUTH_WINDOW: u32 = 22;
    /// postgateServiceEntry (postgateServiceTable.1): the columns are under it.
    pub const SERVICE_ENTRY: [u32; 2] = [3, 1];
    /// postgateServiceName's column.
    pub const SERVICE_NAME: u32 = 2;
    /// postgateServiceStatus's column.
    pub const SERVICE_STATUS: u32 = 3;
}

/// The OID of POSTGATE-MIB's `postgate.1.<tail>` (postgateObjects).
pub fn object_oid(tail: &[u32]) -> Vec<u32> {
    let mut v = root();
    v.push(1);
    v.extend_from_slice(tail);
    v
}

/// postgateResetStats's reset(1).
pub const RESET: i64 = 1;
/// postgateResetStats's noOp(2): what it reads as.
pub const NO_OP: i64 = 2;

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
fn unsigned(v: u32) -> ObjectSyntax {
    ObjectSyntax::ApplicationWide(ApplicationSyntax::Unsigned(Gauge(v)))
}
fn octets(v: Vec<u8>) -> ObjectSyntax {
    ObjectSyntax::Simple(SimpleSyntax::String(OctetString::from(v)))
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
    timestamp(uptime(since))
}
fn timestamp(t: u32) -> ObjectSyntax {
    ObjectSyntax::ApplicationWide(ApplicationSyntax::Ticks(TimeTicks(t)))
}

/// Hundredths of a second since `since`, wrapping (RFC 2578 §7.1.8).
pub fn uptime(since: Instant) -> u32 {
    (since.elapsed().as_millis() / 10) as u64 as u32
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

/// The failed-login storm's settings, as POSTGATE-MIB shows them.
#[derive(Debug, Clone, Copy)]
pub struct Storm {
    /// postgateAuthFailureStormThreshold (0: never).
    pub threshold: u32,
    /// postgateAuthFailureWindow, seconds.
    pub window: u32,
}

/// Every object, by OID, each read when asked for: from the counters (less
/// the baselines of the last postgateResetStats, for POSTGATE-MIB's
/// counters) or from `control`. Built once, so an answer computes only what
/// it names.
pub fn view(
    system: &System,
    started: Instant,
    control: &Arc<Control>,
    storm: Storm,
) -> BTreeMap<Vec<u32>, Getter> {
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
    // NETWORK-SERVICES-MIB applTable (RFC 2788 §4): one row per service,
    // column by column as the module numbers them (applEntry N).
    let appl = [1, 3, 6, 1, 2, 1, 27, 1, 1];
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        // applName.
        v.insert(
            at(&appl, &[2, row]),
            get(move || text(&format!("postgate-{s}"))),
        );
        // applDirectoryName: empty, nothing about it in a directory.
        v.insert(at(&appl, &[3, row]), get(move || text("")));
        // applVersion.
        v.insert(
            at(&appl, &[4, row]),
            get(move || text(env!("CARGO_PKG_VERSION"))),
        );
        // applUptime: sysUpTime when the service started, with the agent.
        v.insert(at(&appl, &[5, row]), get(move || timestamp(0)));
        // applOperStatus: up(1), or down(2) once a listener failed.
        let c = control.clone();
        v.insert(
            at(&appl, &[6, row]),
            get(move || int(if c.is_failed(i) { 2 } else { 1 })),
        );
        // applLastChange: when it entered that state.
        let c = control.clone();
        v.insert(at(&appl, &[7, row]), get(move || timestamp(c.failed_at(i))));
        // applInboundAssociations, applAccumulatedInboundAssociations,
        // applRejectedInboundAssociations.
        v.insert(at(&appl, &[8, row]), get(move || gauge(current(s))));
        v.insert(at(&appl, &[10, row]), get(move || counter(total(s))));
        v.insert(at(&appl, &[14, row]), get(move || counter(refused(s))));
        // applDescription.
        v.insert(
            at(&appl, &[16, row]),
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

    // POSTGATE-MIB (mibs/POSTGATE-MIB.txt): postgateObjects(1). Its
    // counters are read less the baseline of the last postgateResetStats.
    let obj = at(&root(), &[1]);
    let stat64 = |raw: Box<dyn Fn() -> u64 + Send + Sync>| {
        let s = control.stat(raw);
        get(move || counter64(s.get()))
    };
    let stat32 = |raw: Box<dyn Fn() -> u64 + Send + Sync>| {
        let s = control.stat(raw);
        get(move || counter(s.get()))
    };
    v.insert(at(&obj, &[object::VERSION, 0]), {
        let t = version.clone();
        get(move || text(&t))
    });
    v.insert(at(&obj, &[2, 0]), get(move || ticks(started)));
    // postgateServiceTable(3).postgateServiceEntry(1).
    let e = at(&obj, &object::SERVICE_ENTRY);
    for (i, s) in SERVICES.iter().enumerate() {
        let row = (i + 1) as u32;
        v.insert(at(&e, &[object::SERVICE_NAME, row]), get(move || text(s)));
        // running(1), failed(2).
        let c = control.clone();
        v.insert(
            at(&e, &[object::SERVICE_STATUS, row]),
            get(move || int(if c.is_failed(i) { 2 } else { 1 })),
        );
        v.insert(
            at(&e, &[4, row]),
            get(move || gauge(m.workers.get_or_create(&ServiceLabel { service: s }).get())),
        );
        v.insert(at(&e, &[5, row]), get(move || gauge(current(s))));
        v.insert(at(&e, &[6, row]), stat32(Box::new(move || total(s))));
        v.insert(at(&e, &[7, row]), stat32(Box::new(move || refused(s))));
        let logins = move |outcome: &'static str| {
            LOGIN_SERVICES[i]
                .iter()
                .map(|service| {
                    m.logins
                        .get_or_create(&LoginLabel { service, outcome })
                        .get()
                })
                .sum::<u64>()
        };
        v.insert(at(&e, &[8, row]), stat32(Box::new(move || logins("ok"))));
        v.insert(
            at(&e, &[9, row]),
            stat32(Box::new(move || logins("failed"))),
        );
    }
    v.insert(at(&obj, &[4, 0]), stat64(Box::new(move || msgs("in"))));
    v.insert(at(&obj, &[5, 0]), stat64(Box::new(move || msgs("out"))));
    v.insert(at(&obj, &[6, 0]), stat64(Box::new(move || bytes("in"))));
    v.insert(at(&obj, &[7, 0]), stat64(Box::new(move || bytes("out"))));
    let outcome =
        move |o: &'static str| m.outbound.get_or_create(&OutcomeLabel { outcome: o }).get();
    v.insert(
        at(&obj, &[8, 0]),
        stat64(Box::new(move || outcome("deferred"))),
    );
    v.insert(
        at(&obj, &[9, 0]),
        stat64(Box::new(move || outcome("failed"))),
    );
    v.insert(at(&obj, &[10, 0]), stat64(Box::new(move || m.dsns.get())));
    // The outbound queue (sampled by the delivery agent every few seconds).
    v.insert(at(&obj, &[11, 0]), get(move || gauge(queue("due"))));
    v.insert(at(&obj, &[12, 0]), get(move || gauge(queue("deferred"))));
    v.insert(at(&obj, &[13, 0]), get(move || gauge(queue("in_flight"))));
    v.insert(
        at(&obj, &[object::QUEUE_OLDEST_AGE, 0]),
        get(move || gauge(queue_oldest())),
    );
    v.insert(
        at(&obj, &[object::QUEUE_DEPTH, 0]),
        get(move || gauge(queue_depth())),
    );
    // The thresholds and the reset: read here, written by SET (crate::set).
    let c = control.clone();
    v.insert(
        at(&obj, &[object::DEPTH_THRESHOLD, 0]),
        get(move || unsigned(c.depth_threshold())),
    );
    let c = control.clone();
    v.insert(
        at(&obj, &[object::AGE_THRESHOLD, 0]),
        get(move || unsigned(c.age_threshold())),
    );
    v.insert(at(&obj, &[object::RESET_STATS, 0]), get(move || int(NO_OP)));
    let c = control.clone();
    v.insert(
        at(&obj, &[object::RESET_TIME, 0]),
        get(move || octets(date_and_time(c.reset_time()))),
    );
    let c = control.clone();
    v.insert(
        at(&obj, &[object::AUTH_FAILURES, 0]),
        get(move || gauge(c.auth_failures() as i64)),
    );
    v.insert(at(&obj, &[21, 0]), get(move || unsigned(storm.threshold)));
    v.insert(
        at(&obj, &[object::AUTH_WINDOW, 0]),
        get(move || unsigned(storm.window)),
    );
    v
}

fn queue(state: &'static str) -> i64 {
    metrics().queue.get_or_create(&QueueLabel { state }).get()
}

/// Recipients queued outbound in any state (postgateQueueDepth).
pub fn queue_depth() -> i64 {
    ["due", "deferred", "in_flight"]
        .into_iter()
        .map(queue)
        .sum()
}

/// Seconds the oldest queued message has waited (postgateQueueOldestAge).
pub fn queue_oldest() -> i64 {
    metrics().queue_oldest_seconds.get()
}
