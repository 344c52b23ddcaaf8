//! DKIM signing end to end: keys made with `postgate dkim generate`, their
//! TXT records published in the loopback DNS, mail submitted by a user and
//! sent by the delivery agent to a sink standing for the Internet, and
//! every signature checked there by an independent verifier (dkimpy, with
//! PyNaCl for Ed25519) that looks the keys up in that DNS.
use postgate_testkit::dns::Dns;
use postgate_testkit::sink::{Received, Sink, SinkOptions};
use postgate_testkit::{Server, python, python_module};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");
const VERIFY: &str = include_str!("py/dkim_verify.py");

/// remote.test's MX is the sink; alice@example.org and dave@plain.test
/// (password "secret") send through a server whose agent reads the DKIM
/// keys every 200 ms.
fn setup() -> (Dns, Sink, Server) {
    let dns = Dns::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", Ipv4Addr::LOCALHOST);
    let sink = Sink::start(SinkOptions::default());
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[outbound]\nresolver = \"{}\"\nport = {}\nretry_intervals = [\"1s\"]\n\
             dkim_refresh = \"200ms\"\n",
            dns.addr(),
            sink.port()
        ),
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.populate("plain.test", &[("dave@plain.test", "Dave")]);
    for u in ["alice@example.org", "dave@plain.test"] {
        s.set_password(u, "secret");
    }
    (dns, sink, s)
}

/// The keys as `dkim list --json` gives them.
fn keys(s: &Server) -> Vec<Value> {
    serde_json::from_str(&s.cli(&["dkim", "list", "--json"])).unwrap()
}

/// Submits one message (STARTTLS, AUTH) and waits for the sink to have
/// `n` in all; the last one received.
fn send(s: &Server, sink: &Sink, from: &str, n: usize) -> Received {
    let args: Vec<String> = [
        &s.addr("submission").port().to_string(),
        "starttls",
        from,
        "secret",
        from,
        "carol@remote.test",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let (ok, out, err) = python(SUBMIT, &args).expect("python3");
    assert!(ok, "submit.py: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["error"], Value::Null, "{r}");
    let (got, ok) = sink.wait_for(Duration::from_secs(30), |r| r.len() >= n);
    assert!(ok, "sink got {} of {n}; log:\n{}", got.len(), s.log());
    got[n - 1].clone()
}

/// dkim_verify.py's verdict on `message`.
fn verify(dns: &Dns, message: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, message).unwrap();
    let (ok, out, err) = python(
        VERIFY,
        &[path.display().to_string(), dns.addr().port().to_string()],
    )
    .expect("python3");
    assert!(ok, "dkim_verify.py: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn dkimpy() -> bool {
    python_module("dkim") && python_module("nacl") && python_module("dns.resolver")
}

#[test]
fn dual_signed_mail_verifies_with_dkimpy_and_a_changed_body_fails() {
    if !dkimpy() {
        return;
    }
    let (dns, sink, s) = setup();
    s.cli(&["dkim", "generate", "example.org"]);
    s.cli(&["dkim", "generate", "example.org", "--algorithm", "ed25519"]);
    let list = keys(&s);
    assert_eq!(list.len(), 2, "{list:?}");
    for k in &list {
        // Published as the CLI says: the long RSA text as several strings.
        dns.txt(
            k["name"].as_str().unwrap().trim_end_matches('.'),
            k["txt"].as_str().unwrap(),
        );
    }
    // The agent reads keys every 200 ms.
    std::thread::sleep(Duration::from_millis(600));

    let got = send(&s, &sink, "alice@example.org", 1);
    let v = verify(&dns, &got.data);
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "RSA and Ed25519 (RFC 8463 §5): {v}");
    let mut algorithms: Vec<&str> = sigs.iter().map(|s| s["a"].as_str().unwrap()).collect();
    algorithms.sort();
    assert_eq!(algorithms, ["ed25519-sha256", "rsa-sha256"]);
    for sig in sigs {
        assert_eq!(
            sig["ok"],
            true,
            "{sig}\nmessage:\n{}",
            String::from_utf8_lossy(&got.data)
        );
        assert_eq!(
            sig["d"], "example.org",
            "aligned with From (RFC 7489 §3.1.1)"
        );
        assert_eq!(sig["c"], "relaxed/relaxed");
        // From signed twice (RFC 6376 §8.15); only fields present besides.
        let h: Vec<String> = sig["h"]
            .as_str()
            .unwrap()
            .split(':')
            .map(|n| n.to_ascii_lowercase())
            .collect();
        assert_eq!(h.iter().filter(|n| *n == "from").count(), 2, "{sig}");
        for present in ["to", "subject", "date", "message-id", "content-type"] {
            assert!(h.iter().any(|n| n == present), "{present} in {sig}");
        }
        assert!(!h.iter().any(|n| n == "cc" || n == "list-id"), "{sig}");
    }
    assert_eq!(v["keys"].as_array().unwrap().len(), 2, "{v}");

    // A body changed in transit: neither signature holds.
    let text = String::from_utf8(got.data.clone()).unwrap();
    assert!(text.contains("The end."));
    let changed = verify(&dns, text.replace("The end.", "The END.").as_bytes());
    let sigs = changed["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert!(sigs.iter().all(|s| s["ok"] == false), "{changed}");
    // And a changed Subject.
    let changed = verify(
        &dns,
        text.replacen("Subject: outbound test", "Subject: changed", 1)
            .as_bytes(),
    );
    assert!(
        changed["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == false),
        "{changed}"
    );

    // Removing the RSA key: the next message carries the Ed25519 one only.
    let rsa = list
        .iter()
        .find(|k| k["algorithm"] == "rsa-sha256")
        .unwrap();
    s.cli(&[
        "dkim",
        "remove",
        "example.org",
        rsa["selector"].as_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(600));
    let got = send(&s, &sink, "alice@example.org", 2);
    let v = verify(&dns, &got.data);
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1, "{v}");
    assert_eq!(sigs[0]["a"], "ed25519-sha256");
    assert_eq!(sigs[0]["ok"], true, "{v}");
}

#[test]
fn mail_from_a_domain_without_a_key_goes_unsigned() {
    let (_dns, sink, s) = setup();
    s.cli(&["dkim", "generate", "example.org", "--algorithm", "ed25519"]);
    std::thread::sleep(Duration::from_millis(600));
    let got = send(&s, &sink, "dave@plain.test", 1);
    let text = String::from_utf8_lossy(&got.data);
    assert!(
        !text.to_ascii_lowercase().contains("dkim-signature"),
        "{text}"
    );
    // While example.org's mail is signed.
    let got = send(&s, &sink, "alice@example.org", 2);
    let text = String::from_utf8_lossy(&got.data);
    assert!(text.starts_with("DKIM-Signature: "), "{text}");
    assert!(text.contains("d=example.org"), "{text}");
}

#[test]
fn cli_generates_lists_and_removes_keys() {
    let s = Server::start(Path::new(BIN), "");
    let out = s.cli(&["dkim", "generate", "Example.ORG"]);
    let month = chrono_month();
    let rsa_selector = format!("pg{month}r");
    assert!(
        out.starts_with(&format!(
            "added DKIM key {rsa_selector} for example.org (rsa-sha256)"
        )),
        "{out}"
    );
    // RFC 6376 §3.6.1 in a zone line; a 2048-bit key's text is more than
    // 255 octets: two strings (RFC 1035 §3.3.14).
    let line = out.lines().nth(1).unwrap();
    let prefix = format!("{rsa_selector}._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p=MIIB");
    assert!(line.starts_with(&prefix), "{line}");
    assert_eq!(line.matches('"').count(), 4, "{line}");

    // A second default RSA key this month: the next number.
    let out = s.cli(&["dkim", "generate", "example.org"]);
    assert!(out.contains(&format!("key {rsa_selector}2 for")), "{out}");
    let out = s.cli(&[
        "dkim",
        "generate",
        "example.org",
        "--algorithm",
        "ed25519",
        "--selector",
        "Ed1",
    ]);
    assert!(
        out.contains("key ed1 for example.org (ed25519-sha256)"),
        "{out}"
    );
    let line = out.lines().nth(1).unwrap();
    assert!(
        line.starts_with("ed1._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{line}"
    );
    assert_eq!(line.matches('"').count(), 2, "{line}");
    s.cli(&["dkim", "generate", "other.test", "--algorithm", "ed25519"]);

    // A taken selector given explicitly is refused.
    let o = s.cli_output(
        &["dkim", "generate", "example.org", "--selector", "ed1"],
        None,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let o = s.cli_output(
        &["dkim", "generate", "example.org", "--algorithm", "dsa"],
        None,
    );
    assert!(!o.status.success());

    let list = keys(&s);
    let names: Vec<String> = list
        .iter()
        .map(|k| format!("{} {} {}", k["domain"], k["selector"], k["algorithm"]).replace('"', ""))
        .collect();
    assert_eq!(
        names,
        [
            "example.org ed1 ed25519-sha256".to_string(),
            format!("example.org {rsa_selector} rsa-sha256"),
            format!("example.org {rsa_selector}2 rsa-sha256"),
            format!("other.test pg{month}e ed25519-sha256"),
        ]
    );
    assert!(list[0]["created"].as_str().unwrap().starts_with("20"));
    assert_eq!(list[0]["name"], "ed1._domainkey.example.org.");
    let text = s.cli(&["dkim", "list", "example.org"]);
    assert_eq!(text.lines().count(), 6, "a line and a record each:\n{text}");
    assert!(text.contains("\n  ed1._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p="));
    assert_eq!(keys(&s).len(), 4);

    let out = s.cli(&["dkim", "remove", "example.org", "ed1"]);
    assert!(
        out.starts_with("removed DKIM key ed1 for example.org"),
        "{out}"
    );
    let o = s.cli_output(&["dkim", "remove", "example.org", "ed1"], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no DKIM key ed1"));
    assert_eq!(keys(&s).len(), 3);
}

/// YYYYMM now, as the default selector has it.
fn chrono_month() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y%m"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
