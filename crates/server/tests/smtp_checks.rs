//! `[smtp.checks]` against the real server: DNS block- and allowlists,
//! forward-confirmed reverse DNS, the HELO name, the message rate limit and
//! the allow list. The answers come from the testkit's loopback DNS; each
//! client is Python's smtplib bound to its own loopback source address
//! (127.0.0.x: Linux routes all of 127/8 locally), so that one server sees
//! many clients.
use postgate_testkit::dns::Dns;
use postgate_testkit::{Server, python};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const CLIENT: &str = include_str!("py/checks_send.py");
const RCPT: &str = "alice@example.org";

/// A server resolving through `dns`, with `checks` as its `[smtp.checks]`
/// and `extra` sections; alice@example.org receives.
fn server(dns: &Dns, checks: &str, extra: &str) -> Server {
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[dns]\nresolver = [\"{}\"]\ntimeout = \"2s\"\n{extra}\n[smtp.checks]\n{checks}\n",
            dns.addr()
        ),
    );
    s.populate("example.org", &[(RCPT, "Alice Smith")]);
    s
}

/// One session from 127.0.0.`host` saying EHLO with each of `helos` until
/// one is accepted, then sending `count` messages to alice; `None` when
/// python3 is missing (a loud skip).
fn session(s: &Server, host: &str, helos: &str, count: usize) -> Option<Value> {
    let args = [
        s.addr("smtp").port().to_string(),
        source(host).to_string(),
        helos.to_string(),
        RCPT.to_string(),
        count.to_string(),
    ];
    let (ok, out, err) = python(CLIENT, &args)?;
    assert!(ok, "checks_send.py: {err}\n--- server log ---\n{}", s.log());
    Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

/// "5" is 127.0.0.5; "1.41" is 127.0.1.41.
fn source(host: &str) -> Ipv4Addr {
    let dotted = if host.contains('.') {
        format!("127.0.{host}")
    } else {
        format!("127.0.0.{host}")
    };
    dotted.parse().unwrap()
}

/// Lists 127.0.0.`host` on `zone` (RFC 5782 §2.1: 127.0.0.2).
fn list(dns: &Dns, zone: &str, host: &str) {
    let o = source(host).octets();
    dns.a(
        &format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0]),
        Ipv4Addr::new(127, 0, 0, 2),
    );
}

fn greeting(r: &Value) -> (u64, String) {
    (
        r["greeting"][0].as_u64().unwrap(),
        r["greeting"][1].as_str().unwrap().to_string(),
    )
}

/// Whether every one of `n` messages got 250 and nothing was refused.
fn delivered(r: &Value, n: usize) -> bool {
    let sent = r["sent"].as_array().unwrap();
    r["refused"].is_null() && sent.len() == n && sent.iter().all(|x| x[0] == 250)
}

/// The raw message `uid` of alice's `folder`.
fn raw(s: &Server, folder: &str, uid: u64) -> String {
    let out = s.cli_output(
        &[
            "item",
            "show",
            RCPT,
            &uid.to_string(),
            "--folder",
            folder,
            "--raw",
        ],
        None,
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The accounting records written so far.
fn accounting(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if n.starts_with("accounting-") && n.ends_with(".jsonl") {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                out.push(serde_json::from_str(l).unwrap());
            }
        }
    }
    out
}

/// The accounting record of the message from `host`.
fn record_from<'a>(records: &'a [Value], host: &str) -> &'a Value {
    let ip = source(host).to_string();
    records
        .iter()
        .find(|r| r.to_string().contains(&format!("\"{ip}\"")))
        .unwrap_or_else(|| panic!("no accounting record from {ip}: {records:#?}"))
}

#[test]
fn blocklists_allowlists_and_lookup_failures() {
    let dns = Dns::start();
    list(&dns, "bl.test", "5");
    // 7: the second list fails (SERVFAIL); a failure never refuses.
    dns.servfail("7.0.0.127.flaky.test");
    // 8: on a blocklist, but also on the allowlist.
    list(&dns, "bl.test", "8");
    list(&dns, "wl.test", "8");
    // 9: an operator's error code (127.255.255.254) is no listing.
    dns.a("9.0.0.127.bl.test", Ipv4Addr::new(127, 255, 255, 254));
    let logs = tempfile::tempdir().unwrap();
    let s = server(
        &dns,
        "dnsbl = [\"bl.test\", \"flaky.test\"]\ndnswl = [\"wl.test\"]",
        &format!(
            "[logging]\ndir = {:?}\naccounting = true\n",
            logs.path().display().to_string()
        ),
    );
    let Some(r) = session(&s, "5", "client.test", 1) else {
        return;
    };
    let (code, text) = greeting(&r);
    assert_eq!(code, 554, "{r}");
    assert!(
        text.contains("5.7.1 Service unavailable; client [127.0.0.5] blocked using bl.test"),
        "{text}"
    );
    for host in ["6", "7", "8", "9"] {
        let r = session(&s, host, "client.test", 1).unwrap();
        assert_eq!(greeting(&r).0, 220, "127.0.0.{host}: {r}");
        assert!(delivered(&r, 1), "127.0.0.{host}: {r}");
    }
    assert_eq!(s.items(RCPT, "Inbox").len(), 4);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let records = loop {
        let records = accounting(logs.path());
        if records.len() >= 4 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let checks = |host| record_from(&records, host)["checks"].clone();
    assert_eq!(checks("6")["dnsbl"], "pass", "{records:#?}");
    assert_eq!(checks("6")["dnswl"], "none");
    assert_eq!(checks("7")["dnsbl"], "temperror");
    assert_eq!(checks("8")["dnswl"], "listed:wl.test");
    assert!(checks("8").get("dnsbl").is_none(), "{}", checks("8"));
    assert_eq!(checks("9")["dnsbl"], "temperror");
}

#[test]
fn blocklisted_mail_to_junk() {
    let dns = Dns::start();
    list(&dns, "bl.test", "5");
    let s = server(&dns, "dnsbl = [\"bl.test\"]\ndnsbl_action = \"junk\"", "");
    let Some(r) = session(&s, "5", "client.test", 1) else {
        return;
    };
    assert!(delivered(&r, 1), "{r}");
    let r = session(&s, "6", "client.test", 1).unwrap();
    assert!(delivered(&r, 1), "{r}");
    let junk = s.items(RCPT, "Junk");
    let inbox = s.items(RCPT, "Inbox");
    assert_eq!((junk.len(), inbox.len()), (1, 1), "{junk:?} {inbox:?}");
    assert!(raw(&s, "Junk", 1).contains("[127.0.0.5]"));
    assert!(raw(&s, "Inbox", 1).contains("[127.0.0.6]"));
}

/// A forward-confirmed reverse name of 127.0.0.1 as the server finds it:
/// the resolver (hickory) answers 127.in-addr.arpa itself, from /etc/hosts
/// or as RFC 6761 §6.3 asks ("localhost.", whose address is 127.0.0.1),
/// without asking the test DNS. So 127.0.0.1 has forward-confirmed reverse
/// DNS and every other 127.0.0.x a reverse name whose address is another:
/// no FCrDNS. Learned from the Received line of a probe.
fn loopback_name(dns: &Dns) -> Option<String> {
    let s = server(dns, "ptr = \"junk\"", "");
    assert!(delivered(&session(&s, "1", "client.test", 1)?, 1));
    reverse_in_received(&raw(&s, "Inbox", 1))
}

/// The reverse name in a message's Received line from 127.0.0.1, if any.
fn reverse_in_received(m: &str) -> Option<String> {
    let (_, rest) = m.split_once("Received: from ")?;
    let (_helo, rest) = rest.split_once(" (")?;
    let (name, _) = rest.split_once(" [127.0.0.1])")?;
    (!name.is_empty() && !name.contains([' ', '\r', '\n'])).then(|| name.to_string())
}

/// ptr = reject, junk and off, for a client with and without FCrDNS (see
/// [`loopback_name`]).
#[test]
fn reverse_dns_reject_junk_and_off() {
    let dns = Dns::start();
    let s = server(&dns, "ptr = \"reject\"", "");
    let Some(r) = session(&s, "1", "client.test", 1) else {
        return;
    };
    assert!(delivered(&r, 1), "{r}");
    let m = raw(&s, "Inbox", 1);
    assert!(reverse_in_received(&m).is_some(), "{m}");
    let r = session(&s, "10", "client.test", 1).unwrap();
    let (code, text) = greeting(&r);
    assert_eq!(code, 554, "{r}");
    assert_eq!(
        text,
        "5.7.25 Client [127.0.0.10] has no forward-confirmed reverse DNS"
    );
    drop(s);

    let s = server(&dns, "ptr = \"junk\"", "");
    assert!(delivered(&session(&s, "10", "client.test", 1).unwrap(), 1));
    assert!(delivered(&session(&s, "1", "client.test", 1).unwrap(), 1));
    assert_eq!(s.items(RCPT, "Junk").len(), 1);
    assert!(raw(&s, "Junk", 1).contains("Received: from client.test ([127.0.0.10])"));
    assert!(reverse_in_received(&raw(&s, "Inbox", 1)).is_some());
    drop(s);

    // Off, beside another check: no verdict, but the name is in Received.
    dns.a("good.client.test", Ipv4Addr::new(192, 0, 2, 1));
    let s = server(&dns, "ptr = \"off\"\nhelo = \"junk\"", "");
    assert!(delivered(
        &session(&s, "10", "nowhere.client.test", 1).unwrap(),
        1
    ));
    assert!(delivered(
        &session(&s, "1", "good.client.test", 1).unwrap(),
        1
    ));
    assert_eq!(
        s.items(RCPT, "Inbox").len(),
        1,
        "no FCrDNS, but a good HELO"
    );
    assert_eq!(s.items(RCPT, "Junk").len(), 1, "the HELO did not resolve");
    assert!(reverse_in_received(&raw(&s, "Inbox", 1)).is_some());
    drop(s);

    // No check configured: not one lookup, and Received as it always was.
    let before = dns.queries().len();
    let s = server(&dns, "ptr = \"off\"\ndnsbl = []", "");
    assert!(delivered(&session(&s, "1", "client.test", 1).unwrap(), 1));
    assert!(raw(&s, "Inbox", 1).contains("Received: from client.test ([127.0.0.1])"));
    assert_eq!(dns.queries()[before..], [], "lookups with every check off");
}

#[test]
fn helo_names_rejected_and_accepted() {
    let dns = Dns::start();
    dns.a("good.client.test", Ipv4Addr::new(192, 0, 2, 1));
    dns.mx("mail-only.client.test", 10, "good.client.test");
    dns.servfail("broken.client.test");
    let s = server(&dns, "helo = \"reject\"", "");
    // Invalid, ours, our address, unresolvable; then one that resolves.
    let Some(r) = session(
        &s,
        "20",
        "bad_name,mx.test.example,[127.0.0.1],nowhere.client.test,good.client.test",
        1,
    ) else {
        return;
    };
    let ehlo: Vec<(u64, String)> = r["ehlo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_u64().unwrap(), e[1].as_str().unwrap().to_string()))
        .collect();
    let expect = [
        "5.7.1 <bad_name>: Helo command rejected: Invalid name",
        "5.7.1 <mx.test.example>: Helo command rejected: That is my name",
        "5.7.1 <[127.0.0.1]>: Helo command rejected: That is my address",
        "5.7.1 <nowhere.client.test>: Helo command rejected: Host not found",
    ];
    for (i, e) in expect.iter().enumerate() {
        assert_eq!(ehlo[i], (550, e.to_string()), "{r}");
    }
    assert_eq!(ehlo[4].0, 250, "{r}");
    assert!(delivered(&r, 1), "{r}");
    // An MX is enough; a lookup failure and another's address literal pass.
    for helo in ["mail-only.client.test", "broken.client.test", "[192.0.2.7]"] {
        let r = session(&s, "21", helo, 1).unwrap();
        assert!(delivered(&r, 1), "{helo}: {r}");
    }
    assert_eq!(s.items(RCPT, "Inbox").len(), 4);
    drop(s);

    let s = server(&dns, "helo = \"junk\"", "");
    assert!(delivered(
        &session(&s, "20", "nowhere.client.test", 1).unwrap(),
        1
    ));
    assert!(delivered(
        &session(&s, "20", "good.client.test", 1).unwrap(),
        1
    ));
    assert_eq!(s.items(RCPT, "Junk").len(), 1);
    assert_eq!(s.items(RCPT, "Inbox").len(), 1);
}

#[test]
fn mailbomb_limit_and_its_window() {
    let dns = Dns::start();
    let s = server(&dns, "mailbomb = { messages = 3, seconds = 2 }", "");
    let Some(r) = session(&s, "30", "client.test", 4) else {
        return;
    };
    assert_eq!(r["sent"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["refused"][0], "MAIL", "{r}");
    assert_eq!(r["refused"][1], 421, "{r}");
    assert_eq!(r["refused"][2], "4.7.0 Too many messages, try again later");
    // Still over in a new session; another client is not.
    let r = session(&s, "30", "client.test", 1).unwrap();
    assert_eq!(r["refused"][1], 421, "{r}");
    assert!(delivered(&session(&s, "31", "client.test", 1).unwrap(), 1));
    // Past the window the client may send again.
    std::thread::sleep(Duration::from_millis(2200));
    assert!(delivered(&session(&s, "30", "client.test", 1).unwrap(), 1));
    assert_eq!(s.items(RCPT, "Inbox").len(), 5);
}

/// The allow list by address, network and (forward-confirmed) name. A
/// "*.name" pattern cannot be shown here: a loopback client's only reverse
/// name is the resolver's own (see [`loopback_name`]); the patterns are
/// unit-tested in postgate-smtp's checks module.
#[test]
fn allowed_by_address_network_and_name() {
    let dns = Dns::start();
    let Some(name) = loopback_name(&dns) else {
        return;
    };
    for host in ["1", "40", "1.41", "43"] {
        list(&dns, "bl.test", host);
    }
    let s = server(
        &dns,
        &format!(
            "dnsbl = [\"bl.test\"]\nptr = \"reject\"\n\
             allow = [\"127.0.0.40\", \"127.0.1.0/24\", \"{name}\", \"*.partner.test\"]"
        ),
        "",
    );
    let r = session(&s, "40", "client.test", 1).unwrap();
    assert!(delivered(&r, 1), "by address: {r}");
    let r = session(&s, "1.41", "client.test", 1).unwrap();
    assert!(delivered(&r, 1), "by network: {r}");
    let r = session(&s, "1", "client.test", 1).unwrap();
    assert!(delivered(&r, 1), "by name: {r}");
    // Listed, and its reverse name is not confirmed.
    let r = session(&s, "43", "client.test", 1).unwrap();
    assert_eq!(greeting(&r).0, 554, "{r}");
    assert!(greeting(&r).1.contains("blocked using bl.test"), "{r}");
    assert_eq!(s.items(RCPT, "Inbox").len(), 3);
    assert!(reverse_in_received(&raw(&s, "Inbox", 3)).is_some());
}
