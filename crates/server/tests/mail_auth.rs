//! Authentication of inbound mail (`[smtp.checks] verify`): SPF at MAIL
//! FROM, DKIM (RSA and Ed25519) on messages signed by a third-party signer
//! (dkimpy), DMARC policies, and forged Authentication-Results removed; the
//! answers come from the testkit's loopback DNS, the mail from Python's
//! smtplib.
use postgate_testkit::dns::Dns;
use postgate_testkit::{Server, python, python_module};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SEND: &str = include_str!("py/smtp_raw.py");
const DKIM: &str = include_str!("py/dkim_tool.py");
const HOST: &str = "mx.test.example";
const RCPT: &str = "rcpt@example.test";

/// The zone: SPF records for each result, DMARC policies, and the DKIM keys
/// a test adds.
fn zone() -> Dns {
    let dns = Dns::start();
    // Clients connect from 127.0.0.1.
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("fail.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("soft.test", "v=spf1 ip4:192.0.2.1 ~all");
    dns.a("none.test", "192.0.2.9".parse().unwrap());
    dns.servfail("temp.test");
    // DKIM-signed mail comes from signed.test, which publishes SPF too.
    dns.txt("signed.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.signed.test", "v=DMARC1; p=reject");
    dns.txt("_dmarc.strict.test", "v=DMARC1; p=reject");
    dns.txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine");
    dns
}

fn server(dns: &Dns, spf: &str) -> Server {
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[dns]\nresolver = [\"{}\"]\ntimeout = \"2s\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\n\
             smtps = [\"127.0.0.1:0\"]\n\
             [smtp.checks]\nverify = true\nspf = \"{spf}\"\ndmarc = \"honour\"\n\
             [console]\nlisten = [\"127.0.0.1:0\"]\nmetrics_token = \"t0ken\"\n",
            dns.addr()
        ),
    );
    s.cli(&["domain", "add", "example.test"]);
    s.cli(&["user", "add", RCPT, "--name", "Rcpt"]);
    s
}

/// Sends `message` from `from`; the JSON of each step's reply.
fn send(s: &Server, from: &str, message: &[u8]) -> Option<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, message).unwrap();
    let (ok, out, err) = python(
        SEND,
        &[
            s.addr("smtp").port().to_string(),
            from.into(),
            RCPT.into(),
            path.display().to_string(),
        ],
    )?;
    assert!(ok, "smtp_raw.py: {err}");
    Some(serde_json::from_str(&out).unwrap())
}

fn code(v: &serde_json::Value, step: &str) -> i64 {
    v[step][0].as_i64().unwrap_or(0)
}

fn text(v: &serde_json::Value, step: &str) -> String {
    v[step][1].as_str().unwrap_or("").to_string()
}

/// The stored messages of a folder, raw, in arrival order.
fn stored(s: &Server, folder: &str) -> Vec<String> {
    s.items(RCPT, folder)
        .iter()
        .map(|item| {
            let uid = item["uid"].as_u64().unwrap().to_string();
            let out = s.cli_output(
                &["item", "show", RCPT, &uid, "--folder", folder, "--raw"],
                None,
            );
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// The Authentication-Results field we wrote, unfolded.
fn results(message: &str) -> String {
    let start = message
        .find(&format!("Authentication-Results: {HOST}"))
        .unwrap_or_else(|| panic!("no Authentication-Results in\n{message}"));
    let rest = &message[start..];
    let mut end = rest.find("\r\n").unwrap();
    while rest[end + 2..].starts_with([' ', '\t']) {
        end += 2 + rest[end + 2..].find("\r\n").unwrap();
    }
    rest[..end].replace("\r\n", "")
}

fn plain(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{subject}@test>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

/// Interop needs Python's smtplib and dkimpy (with PyNaCl for Ed25519,
/// authres for ARC).
fn ready() -> bool {
    python_module("dkim") && python_module("nacl") && python_module("authres")
}

#[test]
fn spf_results_at_mail_from() {
    if !ready() {
        return;
    }
    let dns = zone();
    let s = server(&dns, "reject");

    // fail under spf = "reject": 550 5.7.23 at MAIL FROM (RFC 7372 §3.2).
    let r = send(&s, "a@fail.test", &plain("a@fail.test", "fail")).unwrap();
    assert_eq!(code(&r, "mail"), 550, "{r}");
    assert!(text(&r, "mail").starts_with("5.7.23"), "{r}");

    for (domain, want) in [
        ("pass.test", "spf=pass"),
        ("soft.test", "spf=softfail"),
        ("none.test", "spf=none"),
        ("temp.test", "spf=temperror"),
    ] {
        let from = format!("a@{domain}");
        let r = send(&s, &from, &plain(&from, domain.trim_end_matches(".test"))).unwrap();
        assert_eq!(code(&r, "data"), 250, "{domain}: {r}\n{}", s.log());
        let inbox = stored(&s, "Inbox");
        let last = inbox.last().unwrap();
        let ar = results(last);
        assert!(ar.contains(want), "{domain}: {ar}");
        assert!(ar.contains(&format!("smtp.mailfrom={from}")), "{ar}");
    }
    assert_eq!(stored(&s, "Inbox").len(), 4);

    // Under spf = "junk" a fail is accepted and filed in Junk.
    let j = server(&dns, "junk");
    let r = send(&j, "a@fail.test", &plain("a@fail.test", "junked")).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let junk = stored(&j, "Junk");
    assert_eq!(junk.len(), 1, "{}", j.log());
    assert!(results(&junk[0]).contains("spf=fail"));
    assert!(stored(&j, "Inbox").is_empty());
}

#[test]
fn dkim_signatures_by_a_third_party_signer() {
    if !ready() {
        return;
    }
    let dns = zone();
    let dir = tempfile::tempdir().unwrap();
    for (alg, selector) in [("rsa", "rsa1"), ("ed25519", "ed1")] {
        let key = dir.path().join(selector).display().to_string();
        let (ok, out, err) = python(DKIM, &["keygen".into(), alg.into(), key]).unwrap();
        assert!(ok, "keygen {alg}: {err}");
        dns.txt(&format!("{selector}._domainkey.signed.test"), out.trim());
    }
    let sign = |message: &[u8], alg: &str, selector: &str| -> Vec<u8> {
        let path = dir.path().join("m.eml");
        std::fs::write(&path, message).unwrap();
        let key = dir.path().join(selector).display().to_string();
        let (ok, _, err) = python(
            DKIM,
            &[
                "sign".into(),
                alg.into(),
                key,
                "signed.test".into(),
                selector.into(),
                path.display().to_string(),
            ],
        )
        .unwrap();
        assert!(ok, "sign: {err}");
        std::fs::read(&path).unwrap()
    };
    let s = server(&dns, "reject");

    // Signed with both algorithms: both verify; DMARC passes (aligned).
    let both = sign(
        &sign(&plain("a@signed.test", "both"), "rsa", "rsa1"),
        "ed25519",
        "ed1",
    );
    let r = send(&s, "a@signed.test", &both).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}\n{}", s.log());
    let ar = results(stored(&s, "Inbox").last().unwrap());
    assert_eq!(ar.matches("dkim=pass").count(), 2, "{ar}");
    assert!(
        ar.contains("header.s=rsa1") && ar.contains("header.s=ed1"),
        "{ar}"
    );
    assert!(
        ar.contains("header.a=rsa-sha256") || ar.contains("rsa"),
        "{ar}"
    );
    assert!(ar.contains("dmarc=pass"), "{ar}");

    // The body changed in transit: the signature does not verify (RFC 6376
    // §6.1.3, body hash). SPF still passes and aligns, so DMARC passes and the
    // message is delivered.
    let mut changed = sign(&plain("a@signed.test", "changed"), "ed25519", "ed1");
    let at = changed.len() - 8;
    changed[at] = b'X';
    let r = send(&s, "a@signed.test", &changed).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let ar = results(stored(&s, "Inbox").last().unwrap());
    // mail-auth reports the body hash mismatch as "neutral" with the
    // reason (RFC 8601 §2.7.1 leaves fail/neutral to the verifier).
    assert!(
        ar.contains("dkim=neutral (body hash did not verify)") || ar.contains("dkim=fail"),
        "{ar}"
    );
    assert!(!ar.contains("dkim=pass"), "{ar}");
    assert!(ar.contains("spf=pass"), "{ar}");

    // Forwarded: a forwarder (authserv-id signed.test) sealed its
    // Authentication-Results into an ARC set (RFC 8617 §4) with dkimpy; the
    // chain validates (arc=pass), and no longer does once the message is
    // changed after sealing (§5.2: the ARC-Message-Signature's body hash).
    let mut forwarded =
        b"Authentication-Results: signed.test; spf=pass smtp.mailfrom=a@pass.test\r\n".to_vec();
    forwarded.extend(plain("a@pass.test", "forwarded"));
    let path = dir.path().join("m.eml");
    std::fs::write(&path, &forwarded).unwrap();
    let (ok, _, err) = python(
        DKIM,
        &[
            "arc".into(),
            dir.path().join("rsa1").display().to_string(),
            "signed.test".into(),
            "rsa1".into(),
            path.display().to_string(),
        ],
    )
    .unwrap();
    assert!(ok, "arc: {err}");
    let sealed = std::fs::read(&path).unwrap();
    let r = send(&s, "a@pass.test", &sealed).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let ar = results(stored(&s, "Inbox").last().unwrap());
    assert!(ar.contains("arc=pass"), "{ar}");
    let mut broken = sealed.clone();
    let at = broken.len() - 4;
    broken[at] = b'X';
    let r = send(&s, "a@pass.test", &broken).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let ar = results(stored(&s, "Inbox").last().unwrap());
    assert!(
        ar.contains("arc=neutral (body hash did not verify)") || ar.contains("arc=fail"),
        "{ar}"
    );
    assert!(!ar.contains("arc=pass"), "{ar}");

    // Changed, and sent from an address whose SPF does not align: DMARC
    // fails and p=reject refuses it after the data.
    let r = send(&s, "a@pass.test", &changed).unwrap();
    assert_eq!(code(&r, "data"), 550, "{r}");
    assert!(text(&r, "data").starts_with("5.7.1"), "{r}");
    assert!(text(&r, "data").contains("signed.test"), "{r}");
}

#[test]
fn dmarc_policies_and_forged_results() {
    if !ready() {
        return;
    }
    let dns = zone();
    let s = server(&dns, "off");

    // From: strict.test (p=reject), sent from pass.test: SPF passes but is
    // not aligned, nothing signed: 550 5.7.1 after DATA, nothing stored.
    let r = send(&s, "a@pass.test", &plain("boss@strict.test", "reject")).unwrap();
    assert_eq!(code(&r, "mail"), 250, "{r}");
    assert_eq!(code(&r, "data"), 550, "{r}");
    assert!(text(&r, "data").starts_with("5.7.1"), "{r}");
    assert!(stored(&s, "Inbox").is_empty());

    // p=quarantine: accepted, filed in Junk.
    let r = send(
        &s,
        "a@pass.test",
        &plain("boss@quarantine.test", "quarantine"),
    )
    .unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let junk = stored(&s, "Junk");
    assert_eq!(junk.len(), 1, "{}", s.log());
    let ar = results(&junk[0]);
    assert!(
        ar.contains("dmarc=fail") && ar.contains("policy.dmarc=quarantine"),
        "{ar}"
    );

    // Forged Authentication-Results claiming our name are removed; another
    // host's are kept (RFC 8601 §5).
    let mut forged = format!(
        "Authentication-Results: {HOST}; dkim=pass header.d=bank.example\r\n\
         Authentication-Results: elsewhere.example; spf=pass\r\n"
    )
    .into_bytes();
    forged.extend(plain("a@pass.test", "forged"));
    let r = send(&s, "a@pass.test", &forged).unwrap();
    assert_eq!(code(&r, "data"), 250, "{r}");
    let inbox = stored(&s, "Inbox");
    let m = inbox.last().unwrap();
    assert_eq!(
        m.matches(&format!("Authentication-Results: {HOST}"))
            .count(),
        1,
        "{m}"
    );
    assert!(!m.contains("bank.example"), "{m}");
    assert!(
        m.contains("Authentication-Results: elsewhere.example; spf=pass"),
        "{m}"
    );
    assert!(results(m).contains("spf=pass"));

    // The outcomes are counted.
    let Some(curl) = postgate_testkit::tool("curl") else {
        return;
    };
    let out = std::process::Command::new(curl)
        .args(["-sk", "-H", "Authorization: Bearer t0ken"])
        .arg(format!(
            "https://127.0.0.1:{}/metrics",
            s.addr("console").port()
        ))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    for line in [
        "postgate_checks_total{check=\"dmarc\",result=\"reject\"} 1",
        "postgate_checks_total{check=\"dmarc\",result=\"quarantine\"} 1",
        "postgate_checks_total{check=\"spf\",result=\"pass\"} 3",
    ] {
        assert!(body.contains(line), "{line} not in\n{body}");
    }
}
