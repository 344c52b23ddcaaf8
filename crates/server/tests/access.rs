//! Access control with stock clients: classes of service per user, group,
//! post office and domain; blocked hosts and destinations; the login
//! throttle shared by every service; open-relay probes; submission fix-ups.
use postgate_testkit::{RawClient, Server, python, python_module};
use std::collections::HashMap;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUITE: &str = include_str!("py/access_suite.py");

/// The roles the suite speaks to, as JSON.
fn ports(s: &Server) -> String {
    let roles = [
        "smtp",
        "submission",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "ldap",
        "ldaps",
        "console",
    ];
    let m: HashMap<&str, u16> = roles.iter().map(|r| (*r, s.addr(r).port())).collect();
    serde_json::to_string(&m).unwrap()
}

/// Runs one case of the suite; `None` when Python or ldap3 is missing
/// (a loud skip, a failure under POSTGATE_REQUIRE_INTEROP=1).
fn suite(s: &Server, case: &str, args: &[&str]) -> Option<String> {
    if !python_module("ldap3") {
        return None;
    }
    let mut a = vec![case.to_string(), ports(s)];
    a.extend(args.iter().map(|x| x.to_string()));
    let (ok, out, err) = python(SUITE, &a)?;
    assert!(
        ok,
        "access_suite {case} {args:?}:\n{out}\n{err}\n--- server log ---\n{}",
        s.log()
    );
    Some(out)
}

/// A server with example.org: alice (Alice Smith, in group staff), bob,
/// carol (post office "east"); every password "pw".
fn office(extra: &str) -> Server {
    let s = Server::start(std::path::Path::new(BIN), extra);
    s.cli(&["domain", "add", "example.org"]);
    s.cli(&[
        "user",
        "add",
        "alice@example.org",
        "--name",
        "Alice Smith",
        "--surname",
        "Smith",
    ]);
    s.cli(&["user", "add", "bob@example.org", "--name", "Bob Jones"]);
    s.cli(&[
        "user",
        "add",
        "carol@example.org",
        "--name",
        "Carol",
        "--post-office",
        "east",
    ]);
    for u in ["alice", "bob", "carol"] {
        s.set_password(&format!("{u}@example.org"), "pw");
    }
    s.group("staff@example.org", "Staff", &["alice@example.org"]);
    s
}

/// The policy cache reads the store again within this (a change from the
/// CLI, another process, applies by then).
fn settle() {
    std::thread::sleep(Duration::from_millis(250));
}

#[test]
fn a_class_assigned_to_a_group_denies_its_members_every_login_service() {
    let s = office("");
    s.cli(&[
        "class",
        "add",
        "locked",
        "--description",
        "no client access",
    ]);
    for k in ["imap", "pop3", "ldap", "api"] {
        s.cli(&["class", "set", "locked", k, "deny"]);
    }
    s.cli(&["class", "assign", "locked", "--group", "staff@example.org"]);
    let explain = s.cli(&["access", "explain", "alice@example.org"]);
    assert!(
        explain.contains("class locked (from group staff@example.org)")
            && explain.contains("imap: deny"),
        "{explain}"
    );
    let explain = s.cli(&["access", "explain", "bob@example.org", "imap"]);
    assert!(
        explain.contains("class default") && explain.contains("imap: allow"),
        "{explain}"
    );
    settle();
    if suite(&s, "services", &[]).is_none() {
        return;
    }
    // Unassigned while the server runs: allowed again, no restart.
    s.cli(&[
        "class",
        "unassign",
        "locked",
        "--group",
        "staff@example.org",
    ]);
    settle();
    suite(&s, "services-after", &[]);
}

#[test]
fn ldap_returns_only_what_the_class_may_read() {
    let s = office("");
    s.cli(&["class", "add", "default"]);
    s.cli(&["class", "set", "default", "ldap.attributes", "cn"]);
    s.cli(&["class", "add", "book"]);
    s.cli(&["class", "set", "book", "ldap.attributes", "cn,mail"]);
    s.cli(&["class", "assign", "book", "--user", "bob@example.org"]);
    settle();
    suite(&s, "ldap-attributes", &[]);
}

#[test]
fn smtp_receive_and_send_rules_with_exceptions() {
    let s = office("");
    s.cli(&["class", "add", "inward"]);
    s.cli(&["class", "set", "inward", "smtp.receive", "deny"]);
    s.cli(&[
        "class",
        "set",
        "inward",
        "smtp.receive.except",
        "partner.test,*.partner.test",
    ]);
    s.cli(&["class", "assign", "inward", "--user", "alice@example.org"]);
    s.cli(&["class", "add", "homebound"]);
    s.cli(&["class", "set", "homebound", "smtp.send", "deny"]);
    s.cli(&[
        "class",
        "set",
        "homebound",
        "smtp.send.except",
        "allowed.test",
    ]);
    s.cli(&["class", "assign", "homebound", "--user", "bob@example.org"]);
    settle();
    if suite(&s, "receive", &[]).is_none() {
        return;
    }
    suite(&s, "send", &[]);
    // The local message bob sent reached alice.
    let items = s.items("alice@example.org", "INBOX");
    assert!(
        items.iter().any(|i| i["subject"] == "local"),
        "alice has bob's local message: {items:?}"
    );
}

#[test]
fn size_limits_and_the_precedence_of_post_office_over_domain() {
    let s = office("");
    s.cli(&["class", "add", "small"]);
    s.cli(&["class", "set", "small", "smtp.receive.max_size", "1000"]);
    s.cli(&["class", "assign", "small", "--domain", "example.org"]);
    s.cli(&["class", "add", "sender"]);
    s.cli(&["class", "set", "sender", "smtp.send.max_size", "2000"]);
    s.cli(&["class", "assign", "sender", "--user", "bob@example.org"]);
    let explain = s.cli(&["access", "explain", "carol@example.org"]);
    assert!(
        explain.contains("class small (from domain example.org)"),
        "{explain}"
    );
    settle();
    if suite(&s, "sizes", &[]).is_none() {
        return;
    }
    // A class on carol's post office comes before the domain's.
    s.cli(&["class", "add", "east"]);
    s.cli(&["class", "assign", "east", "--post-office", "east"]);
    let explain = s.cli(&["access", "explain", "carol@example.org"]);
    assert!(
        explain.contains("class east (from post office east)")
            && explain.contains("domain example.org: small"),
        "{explain}"
    );
    settle();
    suite(&s, "sizes-after", &[]);
}

#[test]
fn a_blocked_address_is_refused_at_connect_until_unblocked() {
    let s = office("");
    s.cli(&[
        "block",
        "add",
        "127.0.0.2",
        "--direction",
        "in",
        "--note",
        "test",
    ]);
    assert!(s.cli(&["block", "list"]).contains("127.0.0.2\tin\ttest"));
    settle();
    if suite(&s, "blocked-ip", &["blocked"]).is_none() {
        return;
    }
    s.cli(&["block", "remove", "127.0.0.2"]);
    settle();
    suite(&s, "blocked-ip", &["open"]);
}

#[test]
fn a_blocked_destination_is_bounced_without_a_connection() {
    let sink = postgate_testkit::sink::Sink::start(Default::default());
    let s = office(&format!(
        "[outbound]\nrelay = \"127.0.0.1:{}\"\nretry_intervals = [\"1s\"]\n",
        sink.port()
    ));
    // A blocked destination domain: refused at RCPT on submission.
    s.cli(&["block", "add", "*.blocked.test", "--direction", "out"]);
    // A blocked destination host (here the relay every message goes
    // through): accepted, then bounced by the agent without connecting.
    s.cli(&["block", "add", "127.0.0.1", "--direction", "out"]);
    settle();
    if suite(
        &s,
        "submit-rcpt",
        &["someone@mx.blocked.test", "550", "5.7.1"],
    )
    .is_none()
    {
        return;
    }
    suite(&s, "submit", &["friend@remote.test"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let items = s.items("bob@example.org", "INBOX");
        if items.iter().any(|i| {
            i["subject"].as_str().is_some_and(|t| {
                let t = t.to_lowercase();
                t.contains("undeliver") || t.contains("failure") || t.contains("delivery status")
            })
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no bounce for the blocked destination: {items:?}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        sink.connections(),
        0,
        "the blocked destination was connected to"
    );
    assert!(s.log().contains("blocked by policy"), "{}", s.log());
    // The inbound port (127.0.0.1 is blocked only outbound) still serves.
    let mut c = RawClient::connect(s.addr("smtp"));
    assert!(c.reply()[0].starts_with("220"));
}

#[test]
fn submission_adds_date_and_message_id_and_the_api_a_charset() {
    let s = office("");
    if suite(&s, "submit", &["alice@example.org"]).is_none() {
        return;
    }
    suite(
        &s,
        "fetch-headers",
        &["alice@example.org", "bare", "Date:", "Message-ID:"],
    );
    // A text attachment without a charset, its bytes UTF-8.
    let data = base64_encode("Grüße\n".as_bytes());
    let body = serde_json::json!({
        "to": ["alice@example.org"], "subject": "notes", "text": "see attached",
        "attachments": [{"filename": "notes.txt", "content_type": "text/plain", "data_base64": data}]
    });
    let Some(r) = s.api_json(
        "POST",
        "/api/v1/messages",
        "bob@example.org:pw",
        Some(&body),
    ) else {
        return;
    };
    assert!(r.status < 300, "{r:?}");
    let items = s.items("alice@example.org", "INBOX");
    let notes = items
        .iter()
        .find(|i| i["subject"] == "notes")
        .expect("notes arrived");
    let uid = notes["uid"].as_u64().expect("uid").to_string();
    let raw = s.cli(&["item", "show", "alice@example.org", &uid, "--raw"]);
    assert!(
        raw.to_ascii_lowercase()
            .contains("text/plain; charset=utf-8"),
        "the attachment's charset: {raw}"
    );
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn pop3_delete_follows_the_class() {
    let s = office("");
    s.cli(&["class", "add", "keeper"]);
    s.cli(&["class", "set", "keeper", "pop3.delete", "keep"]);
    s.cli(&["class", "assign", "keeper", "--user", "bob@example.org"]);
    postgate_testkit::smtp_fill(s.addr("smtp"), "bob@example.org", 2);
    settle();
    suite(&s, "pop3-keep", &[]);
}

/// Each service: `n` wrong passwords for one account, then the right one.
/// The throttle is scaled down (20 ms doubling to 80 ms after 2 free
/// failures) so the test is short; the figures are the ones to compare.
#[test]
fn wrong_passwords_are_throttled_across_every_service() {
    let s = office(
        "[limits]\nlogin_free_failures = 2\nlogin_penalty = \"20ms\"\nlogin_penalty_max = \"80ms\"\n",
    );
    let n = 50;
    // Failures before attempt i are i: 0 and 1 wait nothing, then 20, 40, 80, 80, …
    let penalty = |i: u32| match i {
        0 | 1 => 0,
        2 => 20,
        3 => 40,
        _ => 80,
    };
    let least: u32 = (0..n).map(penalty).sum();
    for service in ["imap", "pop3", "ldap", "api", "smtp"] {
        let Some(out) = suite(&s, "brute", &[service, &n.to_string()]) else {
            return;
        };
        let took: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("took "))
            .and_then(|t| t.trim().parse().ok())
            .expect("took");
        assert!(
            took * 1000.0 >= least as f64,
            "{service}: {n} wrong passwords took {took:.3}s, less than the penalty's {least} ms"
        );
    }
    // Many accounts from one address: throttled by the address.
    let out = suite(&s, "brute", &["imap", &n.to_string(), "many"]).unwrap();
    let took: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("took "))
        .and_then(|t| t.trim().parse().ok())
        .expect("took");
    assert!(
        took * 1000.0 >= least as f64,
        "many accounts: {took:.3}s < {least} ms"
    );
    assert!(s.log().contains("login throttled"));
}

/// The classic open-relay probes: nothing is relayed from an untrusted
/// client, with `relay_networks` unset or naming another network; and a
/// block beats a relay permission.
#[test]
fn open_relay_probes_relay_nothing() {
    let probes = [
        "victim@remote.test",
        "victim%remote.test@example.org",
        "victim%remote.test@[127.0.0.1]",
        "remote.test!victim@example.org",
        "victim@remote.test@example.org",
        "@example.org:victim@remote.test",
        "@mx.test.example:victim@remote.test",
        "\"victim@remote.test\"@example.org",
        "\"victim%remote.test\"@example.org",
        "victim@[192.0.2.1]",
        "victim@[127.0.0.1]",
        "victim@remote.test.",
        "victim@localhost",
        "victim@example.org.remote.test",
        "<victim@remote.test>",
    ];
    for relay in [
        "",
        "[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsmtps = [\"127.0.0.1:0\"]\nrelay_networks = [\"192.0.2.0/24\"]\n",
    ] {
        let s = office(relay);
        for sender in ["<x@remote.test>", "<>", "<alice@example.org>"] {
            for p in probes {
                let mut c = RawClient::connect(s.addr("smtp"));
                c.reply();
                c.cmd("EHLO probe.test");
                let m = c.cmd(&format!("MAIL FROM:{sender}"));
                assert!(m.starts_with("250"), "{m}");
                let rcpt = if p.starts_with('<') {
                    format!("RCPT TO:{p}")
                } else {
                    format!("RCPT TO:<{p}>")
                };
                let r = c.cmd(&rcpt);
                assert!(
                    r.starts_with('5') || r.starts_with('4'),
                    "relay {relay:?}: {sender} -> {p} was accepted: {r}"
                );
                c.cmd("QUIT");
            }
        }
        let queue = s.cli(&["queue", "list"]);
        assert!(
            queue.trim().is_empty() || queue.contains("empty"),
            "queued: {queue}"
        );
    }
    // A trusted network may relay, but not to a blocked destination.
    let s = office(
        "[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsmtps = [\"127.0.0.1:0\"]\nrelay_networks = [\"127.0.0.0/8\"]\n",
    );
    s.cli(&["block", "add", "*.evil.test", "--direction", "out"]);
    settle();
    let mut c = RawClient::connect(s.addr("smtp"));
    c.reply();
    c.cmd("EHLO t");
    c.cmd("MAIL FROM:<x@example.org>");
    let ok = c.cmd("RCPT TO:<friend@remote.test>");
    assert!(ok.starts_with("250"), "trusted relay: {ok}");
    let r = c.cmd("RCPT TO:<victim@mx.evil.test>");
    assert!(r.starts_with("550") && r.contains("5.7.1"), "{r}");
}
