//! MTA-STS (RFC 8461) on the delivery agent, end to end: the real server
//! sends to remote.test, whose MX (mx.remote.test) is the testkit's SMTP
//! sink on loopback presenting a certificate from a test CA (or one that CA
//! did not sign, or for another name); the loopback DNS publishes
//! `_mta-sts.remote.test` TXT and mta-sts.remote.test → 127.0.0.1, where a
//! loopback HTTPS server with a CA-signed certificate serves the policy. The
//! server trusts the CA through `[outbound] tls_ca`.
use postgate_testkit::ca::{Identity, TestCa};
use postgate_testkit::dns::Dns;
use postgate_testkit::https::Https;
use postgate_testkit::sink::{Sink, SinkOptions};
use postgate_testkit::{Server, python};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");
const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// remote.test's Internet and a server sending to it.
struct World {
    /// Kept alive: the servers answer while the test runs.
    _dns: Dns,
    https: Https,
    sink: Sink,
    server: Server,
    /// The CA certificate file and the accounting log.
    dir: tempfile::TempDir,
}

/// How the MX host's certificate looks.
enum MxCert {
    /// Signed by the CA for mx.remote.test.
    Good,
    /// Self-signed for mx.remote.test.
    SelfSigned,
    /// Signed by the CA, for another name.
    OtherName,
}

/// A world where remote.test publishes a policy with `mode` and `mx`, its
/// MX host presents `cert`, and the server has `outbound` added to its
/// `[outbound]` section.
fn world(mode: &str, mx: &str, cert: MxCert, outbound: &str) -> World {
    let ca = TestCa::new();
    let dns = Dns::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", LOCALHOST);
    dns.txt("_mta-sts.remote.test", "v=STSv1; id=20240101T000000;");
    dns.a("mta-sts.remote.test", LOCALHOST);
    let https = Https::start(&ca.issue(&["mta-sts.remote.test"]));
    https.serve(
        POLICY_PATH,
        200,
        &format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"),
    );
    let identity = match cert {
        MxCert::Good => ca.issue(&["mx.remote.test"]),
        MxCert::SelfSigned => Identity::self_signed(&["mx.remote.test"]),
        MxCert::OtherName => ca.issue(&["other.remote.test"]),
    };
    let sink = Sink::start(SinkOptions {
        identity: Some(identity),
        name: "mx.remote.test".into(),
        ..SinkOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server = Server::start(
        Path::new(BIN),
        &format!(
            "[dns]\nresolver = [\"{}\"]\n\
             [logging]\ndir = {:?}\naccounting = true\n\
             [outbound]\nport = {}\nmta_sts_port = {}\ntls_ca = {:?}\n\
             retry_intervals = [\"1s\"]\nthreads = 2\n{outbound}\n",
            dns.addr(),
            dir.path().display().to_string(),
            sink.port(),
            https.port(),
            ca_file.display().to_string(),
        ),
    );
    server.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    server.set_password("alice@example.org", "secret");
    World {
        _dns: dns,
        https,
        sink,
        server,
        dir,
    }
}

/// Submits alice → carol@remote.test over STARTTLS; `None` without python3.
fn send(s: &Server, subject: &str) -> Option<()> {
    let args: Vec<String> = vec![
        s.addr("submission").port().to_string(),
        "starttls".into(),
        "alice@example.org".into(),
        "secret".into(),
        "alice@example.org".into(),
        "carol@remote.test".into(),
        "--subject".into(),
        subject.into(),
    ];
    let (ok, out, err) = python(SUBMIT, &args)?;
    assert!(ok, "submit.py failed: {err}");
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["error"], Value::Null, "{r}");
    Some(())
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    f()
}

/// The queue's first recipient (attempts, last error), once it has been
/// tried at least `attempts` times; panics with the log otherwise.
fn deferred(s: &Server, attempts: u64) -> String {
    let mut last = (0, String::new());
    let ok = wait_until(Duration::from_secs(30), || {
        let v: Value = serde_json::from_str(&s.cli(&["queue", "list", "--json"])).unwrap();
        let r = &v[0]["recipients"][0];
        last = (
            r["attempts"].as_u64().unwrap_or(0),
            r["last_error"].as_str().unwrap_or_default().to_string(),
        );
        last.0 >= attempts
    });
    assert!(
        ok,
        "not deferred: {}\nlog:\n{}",
        s.cli(&["queue", "list"]),
        s.log()
    );
    last.1
}

/// The "out" accounting records so far.
fn out_records(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("accounting-") && name.ends_with(".jsonl") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if v["direction"] == "out" {
                    out.push(v);
                }
            }
        }
    }
    out
}

#[test]
fn enforce_with_a_valid_certificate_delivers() {
    let w = world("enforce", "mx.remote.test", MxCert::Good, "");
    if send(&w.server, "enforced").is_none() {
        return;
    }
    let (got, ok) = w.sink.wait_for(Duration::from_secs(30), |r| !r.is_empty());
    assert!(ok, "not delivered; log:\n{}", w.server.log());
    assert!(got[0].tls, "delivered over TLS");
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: enforced"));
    // The policy was fetched from the policy host, by its name.
    assert_eq!(w.https.requests(), [POLICY_PATH]);
    assert_eq!(w.https.hosts(), ["mta-sts.remote.test"]);
    let log = w.server.log();
    assert!(
        log.contains("MTA-STS policy fetched") && log.contains("enforce"),
        "{log}"
    );
    // The accounting record names the mode applied.
    let mut records = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            records = out_records(w.dir.path());
            !records.is_empty()
        }),
        "no out record"
    );
    assert_eq!(records[0]["checks"]["mta_sts"], "enforce", "{records:?}");

    // A second message: the cached policy serves (same TXT id, no fetch).
    send(&w.server, "cached").unwrap();
    let (_, ok) = w.sink.wait_for(Duration::from_secs(30), |r| r.len() >= 2);
    assert!(ok, "second not delivered; log:\n{}", w.server.log());
    assert_eq!(w.https.requests().len(), 1, "fetched once");
}

#[test]
fn enforce_with_an_unverifiable_certificate_defers() {
    // The same MX and policy with opportunistic TLS would deliver: the
    // certificate is refused only because the policy enforces.
    let w = world(
        "enforce",
        "mx.remote.test",
        MxCert::SelfSigned,
        "tls = \"may\"",
    );
    if send(&w.server, "refused").is_none() {
        return;
    }
    let error = deferred(&w.server, 2);
    assert!(
        error.contains("MTA-STS policy of remote.test (enforce)") && error.contains("TLS"),
        "{error}"
    );
    assert!(w.sink.connections() >= 2, "the MX host was tried");
    assert!(w.sink.received().is_empty(), "nothing delivered");
    let show = w.server.cli(&["queue", "list"]);
    assert!(show.contains("carol@remote.test"), "{show}");
}

#[test]
fn testing_with_a_certificate_for_another_name_delivers_and_logs() {
    let w = world("testing", "mx.remote.test", MxCert::OtherName, "");
    if send(&w.server, "testing").is_none() {
        return;
    }
    let (got, ok) = w.sink.wait_for(Duration::from_secs(30), |r| !r.is_empty());
    assert!(ok, "not delivered; log:\n{}", w.server.log());
    assert!(got[0].tls);
    let log = w.server.log();
    let line = log
        .lines()
        .find(|l| l.contains("MTA-STS (testing)"))
        .unwrap_or_else(|| panic!("no MTA-STS warning in:\n{log}"));
    assert!(
        line.contains("WARN")
            && line.contains("remote.test")
            && line.contains("mx.remote.test")
            && line.contains("certificate"),
        "{line}"
    );
    let mut records = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        records = out_records(w.dir.path());
        !records.is_empty()
    }));
    assert_eq!(records[0]["checks"]["mta_sts"], "testing", "{records:?}");
}

#[test]
fn enforce_with_no_matching_mx_defers_without_connecting() {
    let w = world("enforce", "*.elsewhere.test", MxCert::Good, "");
    if send(&w.server, "mismatch").is_none() {
        return;
    }
    let error = deferred(&w.server, 1);
    assert!(
        error.contains("no MX host matches") && error.contains("mx.remote.test"),
        "{error}"
    );
    assert_eq!(
        w.sink.connections(),
        0,
        "a host outside the policy is never tried"
    );
    assert!(w.sink.received().is_empty());
}

#[test]
fn switched_off_mta_sts_is_not_looked_up() {
    // An enforcing policy the MX host would fail, ignored with mta_sts = false.
    let w = world(
        "enforce",
        "*.elsewhere.test",
        MxCert::SelfSigned,
        "mta_sts = false",
    );
    if send(&w.server, "off").is_none() {
        return;
    }
    let (_, ok) = w.sink.wait_for(Duration::from_secs(30), |r| !r.is_empty());
    assert!(ok, "not delivered; log:\n{}", w.server.log());
    assert!(w.https.requests().is_empty(), "no policy fetched");
}
