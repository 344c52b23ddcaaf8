//! The outbound gateway end to end: submission (Python's smtplib) and the
//! client API (curl) into the real server, out through its queue to a
//! scripted SMTP sink on loopback standing for the Internet, with a loopback
//! DNS server for MX lookups. DSNs and sent messages are read with Python's
//! email package.
use postgate_testkit::dns::Dns;
use postgate_testkit::sink::{Received, Sink, SinkOptions};
use postgate_testkit::{Server, python};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");
const INSPECT: &str = include_str!("py/inspect_mail.py");
const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// A server whose outbound side talks to `sink` (as the MX hosts' port) and
/// asks `dns`; alice and bob at example.org, password "secret".
fn server(dns: &Dns, sink_port: u16, outbound: &str) -> Server {
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[outbound]\nresolver = \"{}\"\nport = {sink_port}\nretry_intervals = [\"1s\"]\nthreads = 4\n{outbound}\n",
            dns.addr()
        ),
    );
    s.populate(
        "example.org",
        &[
            ("alice@example.org", "Alice Smith"),
            ("bob@example.org", "Bob Jones"),
        ],
    );
    for u in ["alice@example.org", "bob@example.org"] {
        s.set_password(u, "secret");
    }
    s
}

/// The usual Internet: remote.test's MX host (mx.remote.test) is a sink
/// on loopback; a server sending to it.
fn remote(opts: SinkOptions) -> (Dns, Sink, Server) {
    let dns = Dns::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", LOCALHOST);
    let sink = Sink::start(opts);
    let s = server(&dns, sink.port(), "");
    (dns, sink, s)
}

/// Runs submit.py against a listener; `None` when python3 is missing.
fn submit(
    s: &Server,
    role: &str,
    user: &str,
    from: &str,
    to: &str,
    opts: &[&str],
) -> Option<Value> {
    // "submission-plain": the submission port without STARTTLS.
    let (role, mode) = match role {
        "smtps" => ("smtps", "smtps"),
        "submission" => ("submission", "starttls"),
        "submission-plain" => ("submission", "plain"),
        other => (other, "plain"),
    };
    let mut args: Vec<String> = vec![
        s.addr(role).port().to_string(),
        mode.into(),
        user.into(),
        "secret".into(),
        from.into(),
        to.into(),
    ];
    args.extend(opts.iter().map(|o| o.to_string()));
    let (ok, out, err) = python(SUBMIT, &args)?;
    assert!(ok, "submit.py failed: {err}");
    Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

/// Submits as alice over STARTTLS and insists it went.
fn send(s: &Server, to: &str, opts: &[&str]) -> Option<Value> {
    let r = submit(
        s,
        "submission",
        "alice@example.org",
        "alice@example.org",
        to,
        opts,
    )?;
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    Some(r)
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

/// Parses a message with inspect_mail.py.
fn inspect(raw: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, raw).unwrap();
    let (ok, out, err) = python(INSPECT, &[path.display().to_string()]).expect("python3");
    assert!(ok, "inspect_mail.py failed: {err}");
    serde_json::from_str(&out).unwrap()
}

/// The raw bytes of an item.
fn raw_item(s: &Server, user: &str, folder: &str, uid: u64) -> Vec<u8> {
    let out = s.cli_output(
        &[
            "item",
            "show",
            user,
            &uid.to_string(),
            "--folder",
            folder,
            "--raw",
        ],
        None,
    );
    assert!(out.status.success());
    out.stdout
}

/// Waits for `n` items in alice's Inbox (DSNs) and parses them.
fn dsns(s: &Server, n: usize) -> Vec<Value> {
    assert!(
        wait_until(Duration::from_secs(30), || s
            .items("alice@example.org", "Inbox")
            .len()
            >= n),
        "expected {n} DSNs; log:\n{}",
        s.log()
    );
    s.items("alice@example.org", "Inbox")
        .iter()
        .map(|i| {
            inspect(&raw_item(
                s,
                "alice@example.org",
                "Inbox",
                i["uid"].as_u64().unwrap(),
            ))
        })
        .collect()
}

fn queue_empty(s: &Server) -> bool {
    s.cli(&["queue", "list"]).trim() == "queue is empty"
}

fn received_by(sink: &Sink, n: usize) -> Vec<Received> {
    let (got, ok) = sink.wait_for(Duration::from_secs(30), |r| r.len() >= n);
    assert!(ok, "sink got {} of {n} messages", got.len());
    got
}

/// Like [`received_by`], with the server's log when it fails.
fn received_from(s: &Server, sink: &Sink, n: usize) -> Vec<Received> {
    let (got, ok) = sink.wait_for(Duration::from_secs(30), |r| r.len() >= n);
    assert!(
        ok,
        "sink got {} of {n} messages; log:\n{}",
        got.len(),
        s.log()
    );
    got
}

fn rcpt_addresses(r: &Received) -> Vec<&str> {
    r.rcpts.iter().map(|(a, _)| a.as_str()).collect()
}

#[test]
fn submission_requires_tls_auth_and_an_owned_sender() {
    let (_dns, sink, s) = remote(SinkOptions::default());

    // RFC 4954 §4: no AUTH offered before TLS.
    let Some(r) = submit(
        &s,
        "submission",
        "-",
        "alice@example.org",
        "carol@remote.test",
        &[],
    ) else {
        return;
    };
    assert_eq!(r["error"][0], 530, "no AUTH: {r}");
    let r = submit(
        &s,
        "submission-plain",
        "alice@example.org",
        "alice@example.org",
        "carol@remote.test",
        &[],
    )
    .unwrap();
    assert_eq!(r["error"][2], "auth-not-offered", "{r}");
    let mut plain = postgate_testkit::RawClient::connect(s.addr("submission"));
    plain.reply();
    let ehlo = plain.cmd("EHLO client.test");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(
        plain
            .cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==")
            .starts_with("538 5.7.11")
    );
    // Wrong password; forged sender.
    let mut args = vec![s.addr("submission").port().to_string()];
    args.extend(
        [
            "starttls",
            "alice@example.org",
            "wrong",
            "alice@example.org",
            "carol@remote.test",
        ]
        .map(String::from),
    );
    let (_, out, _) = python(SUBMIT, &args).unwrap();
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["error"][0], 535, "{r}");
    let r = submit(
        &s,
        "submission",
        "alice@example.org",
        "bob@example.org",
        "carol@remote.test",
        &[],
    )
    .unwrap();
    assert_eq!(
        (r["error"][0].as_u64(), r["error"][2].as_str()),
        (Some(553), Some("mail")),
        "{r}"
    );
    assert!(r["error"][1].as_str().unwrap().contains("5.7.1"), "{r}");
    // The inbound port does not relay for anyone unauthenticated.
    let r = submit(
        &s,
        "smtp",
        "-",
        "alice@example.org",
        "carol@remote.test",
        &[],
    )
    .unwrap();
    assert!(r["error"][1].as_str().unwrap().contains("5.7.1"), "{r}");

    // Properly: STARTTLS + AUTH on submission, and SMTPS.
    let r = send(&s, "carol@remote.test", &["--subject", "via submission"]).unwrap();
    assert!(r["ehlo"].to_string().contains("PLAIN LOGIN"), "{r}");
    let r = submit(
        &s,
        "smtps",
        "alice@example.org",
        "alice@example.org",
        "carol@remote.test",
        &["--subject", "via smtps"],
    )
    .unwrap();
    assert_eq!(r["error"], Value::Null, "{r}");
    let got = received_by(&sink, 2);
    for m in &got {
        assert_eq!(m.mail_from, "alice@example.org");
        assert_eq!(rcpt_addresses(m), ["carol@remote.test"]);
        assert!(m.tls, "opportunistic STARTTLS to the next hop");
        let text = String::from_utf8_lossy(&m.data);
        assert!(text.contains("with ESMTPSA"), "{text}");
        // Dot-stuffed on the way out, unstuffed by the sink: intact.
        assert!(text.contains("\r\n.leading dot line\r\n"), "{text}");
    }
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}

#[test]
fn mx_lookup_fallback_implicit_mx_null_mx_and_nxdomain() {
    let dns = Dns::start();
    // The preferred MX refuses connections (nothing listens on 127.0.0.2);
    // the next one is the sink.
    dns.mx("remote.test", 5, "mx1.remote.test");
    dns.mx("remote.test", 10, "mx2.remote.test");
    dns.a("mx1.remote.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.a("mx2.remote.test", LOCALHOST);
    dns.a("implicit.test", LOCALHOST); // no MX: the domain itself (RFC 5321 §5.1)
    dns.mx("nullmx.test", 0, "."); // RFC 7505
    dns.a("other.test", LOCALHOST); // nowhere.test: NXDOMAIN
    let sink = Sink::start(SinkOptions::default());
    let s = server(&dns, sink.port(), "");
    if send(
        &s,
        "carol@remote.test,dave@implicit.test,erin@nullmx.test,frank@nowhere.test",
        &[],
    )
    .is_none()
    {
        return;
    }
    let got = received_by(&sink, 2);
    let mut to: Vec<&str> = got.iter().flat_map(rcpt_addresses).collect();
    to.sort();
    assert_eq!(to, ["carol@remote.test", "dave@implicit.test"]);
    let reports = dsns(&s, 2);
    let mut failed: Vec<(String, String)> = reports
        .iter()
        .flat_map(|d| {
            assert_eq!(d["report"]["report_type"], "delivery-status", "{d}");
            d["report"]["recipients"].as_array().unwrap().clone()
        })
        .map(|r| {
            assert_eq!(r["action"], "failed");
            (
                r["final_recipient"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("rfc822; erin@nullmx.test".to_string(), "5.1.10".to_string()),
            (
                "rfc822; frank@nowhere.test".to_string(),
                "5.1.2".to_string()
            ),
        ]
    );
    assert!(
        dns.queries()
            .iter()
            .any(|(n, t)| n == "remote.test" && *t == 15)
    );
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}

#[test]
fn relay_host_with_auth_and_route_table() {
    let dns = Dns::start();
    let relay = Sink::start(SinkOptions {
        auth: Some(("relayuser".into(), "relaypw".into())),
        ..SinkOptions::default()
    });
    let routed = Sink::start(SinkOptions::default());
    let s = server(
        &dns,
        1,
        &format!(
            "relay = \"127.0.0.1:{}\"\nrelay_user = \"relayuser\"\nrelay_password = \"relaypw\"\n\
             [outbound.routes]\n\"routed.test\" = \"[127.0.0.1]:{}\"\n",
            relay.port(),
            routed.port()
        ),
    );
    if send(&s, "carol@anywhere.test,dave@routed.test", &[]).is_none() {
        return;
    }
    let via_relay = received_by(&relay, 1);
    assert_eq!(rcpt_addresses(&via_relay[0]), ["carol@anywhere.test"]);
    assert_eq!(via_relay[0].authenticated.as_deref(), Some("relayuser"));
    assert!(via_relay[0].tls);
    let via_route = received_by(&routed, 1);
    assert_eq!(rcpt_addresses(&via_route[0]), ["dave@routed.test"]);
    assert!(
        dns.queries().is_empty(),
        "no DNS for relayed or routed mail"
    );
}

#[test]
fn temporary_failures_are_retried_then_delivered() {
    let (_dns, sink, s) = remote(SinkOptions::default());
    sink.script_rcpt(
        "carol@remote.test",
        &["451 4.3.0 greylisted, try again later"],
    );
    if send(&s, "carol@remote.test", &["--subject", "greylisted"]).is_none() {
        return;
    }
    let got = received_from(&s, &sink, 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: greylisted 1"));
    assert!(wait_until(Duration::from_secs(10), || s
        .log()
        .contains("status=sent")));
    let log = s.log();
    assert!(
        log.contains("status=deferred (451 4.3.0 greylisted"),
        "{log}"
    );

    // A 452 after the data is retried too.
    sink.script_data(&["452 4.3.1 insufficient storage"]);
    send(&s, "carol@remote.test", &["--subject", "after data"]).unwrap();
    let got = received_by(&sink, 2);
    assert!(String::from_utf8_lossy(&got[1].data).contains("Subject: after data 1"));
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
    assert!(
        s.items("alice@example.org", "Inbox").is_empty(),
        "no DSN for mail that got through"
    );
}

#[test]
fn permanent_failure_bounces_with_a_dsn() {
    let (_dns, sink, s) = remote(SinkOptions::default());
    sink.script_rcpt(
        "carol@remote.test",
        &["550 5.1.1 <carol@remote.test>: no such user here"],
    );
    if send(
        &s,
        "carol@remote.test,dave@remote.test",
        &[
            "--mail-opt",
            "RET=HDRS",
            "--mail-opt",
            "ENVID=env-123",
            "--subject",
            "bounce me",
        ],
    )
    .is_none()
    {
        return;
    }
    let got = received_by(&sink, 1);
    assert_eq!(rcpt_addresses(&got[0]), ["dave@remote.test"]);
    let d = &dsns(&s, 1)[0];
    let report = &d["report"];
    assert_eq!(d["content_type"], "multipart/report", "{d}");
    assert_eq!(report["report_type"], "delivery-status");
    assert_eq!(report["envelope_id"], "env-123");
    assert_eq!(report["returned"], "headers", "RET=HDRS: headers only");
    let rcpts = report["recipients"].as_array().unwrap();
    assert_eq!(rcpts.len(), 1, "{report}");
    assert_eq!(rcpts[0]["final_recipient"], "rfc822; carol@remote.test");
    assert_eq!(rcpts[0]["action"], "failed");
    assert_eq!(rcpts[0]["status"], "5.1.1");
    assert!(
        rcpts[0]["diagnostic"]
            .as_str()
            .unwrap()
            .contains("550 5.1.1"),
        "{report}"
    );
    assert!(
        rcpts[0]["remote_mta"]
            .as_str()
            .unwrap()
            .contains("mx.remote.test"),
        "{report}"
    );
    assert!(
        d["subject"].as_str().unwrap().contains("Undelivered")
            || d["subject"].as_str().unwrap().contains("failure"),
        "{d}"
    );

    // NOTIFY=NEVER: the sender hears nothing.
    sink.script_rcpt("carol@remote.test", &["550 5.1.1 still no such user"]);
    send(&s, "carol@remote.test", &["--rcpt-opt", "NOTIFY=NEVER"]).unwrap();
    assert!(wait_until(Duration::from_secs(10), || s
        .log()
        .matches("status=bounced")
        .count()
        >= 2));
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 1);
}

#[test]
fn eight_bit_content_only_to_8bitmime_hosts() {
    // RFC 6152 §3: 8-bit data goes only to a server that offers 8BITMIME;
    // one that does not gets no message, and the sender a 5.6.3 DSN.
    let dns = Dns::start();
    let modern = Sink::start(SinkOptions::default());
    let old = Sink::start(SinkOptions {
        eight_bit: false,
        ..SinkOptions::default()
    });
    let s = server(
        &dns,
        1,
        &format!(
            "[outbound.routes]\n\"modern.test\" = \"[127.0.0.1]:{}\"\n\"old.test\" = \"[127.0.0.1]:{}\"\n",
            modern.port(),
            old.port()
        ),
    );
    if send(
        &s,
        "carol@modern.test,dave@old.test",
        &["--eight-bit", "--mail-opt", "BODY=8BITMIME"],
    )
    .is_none()
    {
        return;
    }
    let got = received_by(&modern, 1);
    assert!(
        got[0].mail_params.iter().any(|p| p == "BODY=8BITMIME"),
        "{:?}",
        got[0].mail_params
    );
    assert!(String::from_utf8_lossy(&got[0].data).contains("Grüße"));
    let d = &dsns(&s, 1)[0];
    assert_eq!(d["report"]["recipients"][0]["status"], "5.6.3", "{d}");
    assert!(old.received().is_empty());
}

#[test]
fn dsn_to_a_remote_sender_and_no_bounce_for_the_null_sender() {
    // Inbound mail from a remote sender asking NOTIFY=SUCCESS: the
    // "delivered" DSN goes back out from <>; when it bounces, nobody hears
    // (RFC 3461 §6.2), and the queue empties.
    let (_dns, sink, s) = remote(SinkOptions::default());
    let Some(r) = submit(
        &s,
        "smtp",
        "-",
        "zoe@remote.test",
        "bob@example.org",
        &["--rcpt-opt", "NOTIFY=SUCCESS"],
    ) else {
        return;
    };
    assert_eq!(r["error"], Value::Null, "{r}");
    let got = received_by(&sink, 1);
    assert_eq!(
        got[0].mail_from, "",
        "DSNs are sent from the null reverse path"
    );
    assert_eq!(rcpt_addresses(&got[0]), ["zoe@remote.test"]);
    let d = inspect(&got[0].data);
    assert_eq!(d["report"]["recipients"][0]["action"], "delivered", "{d}");

    sink.script_rcpt("zoe@remote.test", &["550 5.1.1 gone"]);
    submit(
        &s,
        "smtp",
        "-",
        "zoe@remote.test",
        "bob@example.org",
        &["--rcpt-opt", "NOTIFY=SUCCESS"],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || s
            .log()
            .contains("status=bounced")),
        "{}",
        s.log()
    );
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.received().len(), 1, "no bounce of a bounce");
    assert_eq!(s.items("bob@example.org", "Inbox").len(), 2);
}

#[test]
fn connection_refused_is_retried() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dns = Dns::start();
    let s = server(
        &dns,
        1,
        &format!("[outbound.routes]\n\"remote.test\" = \"[127.0.0.1]:{port}\"\n"),
    );
    if send(&s, "carol@remote.test", &["--subject", "refused first"]).is_none() {
        return;
    }
    let deferred = wait_until(Duration::from_secs(15), || {
        let v: Value = serde_json::from_str(&s.cli(&["queue", "list", "--json"])).unwrap();
        v[0]["recipients"][0]["attempts"].as_u64().unwrap_or(0) >= 1
            && v[0]["recipients"][0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused"))
    });
    assert!(
        deferred,
        "queue: {}\nlog:\n{}",
        s.cli(&["queue", "list"]),
        s.log()
    );
    let show = s.cli(&["queue", "list"]);
    assert!(
        show.contains("carol@remote.test") && show.contains("waiting"),
        "{show}"
    );
    // The host comes up; the next attempt gets through.
    let sink = Sink::start(SinkOptions {
        port,
        ..SinkOptions::default()
    });
    let got = received_by(&sink, 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: refused first 1"));
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}

/// `queue hold` keeps a deferred message from being tried (listed as held),
/// `queue release` makes it due now and it goes out.
#[test]
fn held_mail_waits_until_released() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dns = Dns::start();
    let s = server(
        &dns,
        1,
        &format!("[outbound.routes]\n\"remote.test\" = \"[127.0.0.1]:{port}\"\n"),
    );
    if send(&s, "carol@remote.test", &["--subject", "held"]).is_none() {
        return;
    }
    let list = || -> Value { serde_json::from_str(&s.cli(&["queue", "list", "--json"])).unwrap() };
    assert!(
        wait_until(
            Duration::from_secs(15),
            || list()[0]["recipients"][0]["attempts"].as_u64().unwrap_or(0) >= 1
        ),
        "log:\n{}",
        s.log()
    );
    let id = list()[0]["id"].as_i64().unwrap().to_string();
    // Between attempts (a recipient being tried is left alone: try again).
    assert!(
        wait_until(Duration::from_secs(10), || s
            .cli(&["queue", "hold", &id])
            .trim()
            == "1 recipients held"),
        "{}",
        s.cli(&["queue", "list"])
    );
    let show = s.cli(&["queue", "list"]);
    assert!(show.contains("carol@remote.test\theld, "), "{show}");
    let attempts = list()[0]["recipients"][0]["attempts"].clone();
    // Not tried while held (retries come every second otherwise), not made
    // due by retry.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(s.cli(&["queue", "retry"]).trim(), "0 recipients due now");
    let v = list();
    assert_eq!(v[0]["recipients"][0]["status"], "held", "{v}");
    assert_eq!(v[0]["recipients"][0]["attempts"], attempts, "{v}");
    // Unknown ids and a missing id are refused.
    assert!(
        !s.cli_output(&["queue", "hold", "999999"], None)
            .status
            .success()
    );
    assert!(!s.cli_output(&["queue", "release"], None).status.success());
    // The host comes up and the message is released: it goes out at once.
    let sink = Sink::start(SinkOptions {
        port,
        ..SinkOptions::default()
    });
    assert_eq!(
        s.cli(&["queue", "release", "--all"]).trim(),
        "1 recipients released (due now)"
    );
    let got = received_by(&sink, 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: held 1"));
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}

#[test]
fn notify_success_relayed_delivered_and_passed_on() {
    let dns = Dns::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", LOCALHOST);
    let plain = Sink::start(SinkOptions::default());
    let dsn_capable = Sink::start(SinkOptions {
        dsn: true,
        ..SinkOptions::default()
    });
    let s = server(
        &dns,
        plain.port(),
        &format!(
            "[outbound.routes]\n\"dsn.test\" = \"[127.0.0.1]:{}\"\n",
            dsn_capable.port()
        ),
    );
    if send(
        &s,
        "carol@remote.test,dave@dsn.test,bob@example.org",
        &[
            "--rcpt-opt",
            "NOTIFY=SUCCESS,FAILURE",
            "--mail-opt",
            "RET=HDRS",
            "--mail-opt",
            "ENVID=trace+2B42",
        ],
    )
    .is_none()
    {
        return;
    }
    received_by(&plain, 1);
    let passed = received_by(&dsn_capable, 1);
    // RFC 3461: parameters passed on to a DSN-capable next hop.
    let params = &passed[0].rcpts[0].1;
    assert!(
        params
            .iter()
            .any(|p| p.eq_ignore_ascii_case("NOTIFY=SUCCESS,FAILURE")),
        "{params:?}"
    );
    assert!(
        params.iter().any(|p| p == "ORCPT=rfc822;dave@dsn.test"),
        "{params:?}"
    );
    let mail = &passed[0].mail_params;
    assert!(mail.iter().any(|p| p == "RET=HDRS"), "{mail:?}");
    assert!(mail.iter().any(|p| p == "ENVID=trace+2B42"), "{mail:?}");
    // We report: "relayed" for the next hop without DSN, "delivered" for
    // the local recipient; nothing for the DSN-capable hop (it reports).
    let reports = dsns(&s, 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 2);
    let mut actions: Vec<(String, String)> = reports
        .iter()
        .flat_map(|d| d["report"]["recipients"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["final_recipient"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            (
                "rfc822; bob@example.org".to_string(),
                "delivered".to_string()
            ),
            (
                "rfc822; carol@remote.test".to_string(),
                "relayed".to_string()
            ),
        ]
    );
    for d in &reports {
        assert_eq!(d["report"]["envelope_id"], "trace+42", "{d}");
    }
}

#[test]
fn hundred_recipients_over_five_domains_share_connections() {
    let dns = Dns::start();
    for d in 1..=5 {
        dns.mx(&format!("d{d}.test"), 10, &format!("mx.d{d}.test"));
        dns.a(&format!("mx.d{d}.test"), LOCALHOST);
    }
    let sink = Sink::start(SinkOptions::default());
    let s = server(&dns, sink.port(), "");
    // 20 messages, each to 5 recipients on 5 domains: 100 deliveries.
    let mut expected = Vec::new();
    for m in 1..=20 {
        let to: Vec<String> = (1..=5).map(|d| format!("user{m}@d{d}.test")).collect();
        expected.extend(to.iter().map(|t| (format!("batch{m} 1"), t.clone())));
        if send(&s, &to.join(","), &["--subject", &format!("batch{m}")]).is_none() {
            return;
        }
    }
    let got = received_by(&sink, 100);
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &got {
        let text = String::from_utf8_lossy(&r.data).into_owned();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_string();
        for (a, _) in &r.rcpts {
            seen.push((subject.clone(), a.clone()));
        }
    }
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    let connections = sink.connections();
    eprintln!("100 deliveries over {connections} connections");
    assert!(
        connections <= 25,
        "{connections} connections for 100 deliveries: connections are not reused"
    );
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}

/// The client API through the testkit's curl: (HTTP status, body).
fn curl(
    s: &Server,
    method: &str,
    path: &str,
    user: &str,
    body: Option<&Path>,
) -> Option<(u16, Value)> {
    let bytes = body.map(|b| std::fs::read(b).expect("read body"));
    let r = s.api(
        method,
        path,
        user,
        bytes.as_deref().map(|b| ("application/json", b)),
    )?;
    Some((r.status, r.body))
}

#[test]
fn client_api_sends_utf8_html_and_attachments() {
    use base64::Engine;
    let (_dns, sink, s) = remote(SinkOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let attachment: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let subject = "Grüße aus Köln — 日本語の件名 ✉";
    let filename = "Übersicht résumé 📎.pdf";
    let body = serde_json::json!({
        "to": ["Carol Ωmega <carol@remote.test>"],
        "cc": ["bob@example.org"],
        "bcc": ["hidden@remote.test"],
        "subject": subject,
        "text": "Hallo Wörld, plain text.",
        "html": "<p>Hallo <b>Wörld</b> ☃</p>",
        "attachments": [{
            "filename": filename,
            "content_type": "application/pdf",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&attachment),
        }],
        "importance": "high",
    });
    let req = dir.path().join("req.json");
    std::fs::write(&req, serde_json::to_vec(&body).unwrap()).unwrap();

    let Some((code, _)) = curl(
        &s,
        "POST",
        "/api/v1/messages",
        "alice@example.org:wrong",
        Some(&req),
    ) else {
        return;
    };
    assert_eq!(code, 401);
    let (code, r) = curl(
        &s,
        "POST",
        "/api/v1/messages",
        "alice@example.org:secret",
        Some(&req),
    )
    .unwrap();
    assert_eq!(code, 202, "{r}");
    assert!(r["id"].as_u64().is_some(), "{r}");
    assert_eq!(r["folder"], "Sent Items");
    assert_eq!(
        (r["delivered"].as_u64(), r["queued"].as_u64()),
        (Some(1), Some(2)),
        "{r}"
    );

    // What the Internet got.
    let got = received_by(&sink, 1);
    let mut to = rcpt_addresses(&got[0]);
    to.sort();
    assert_eq!(to, ["carol@remote.test", "hidden@remote.test"]);
    let m = inspect(&got[0].data);
    assert_eq!(m["subject"], subject, "{m}");
    assert!(m["from"].as_str().unwrap().contains("alice@example.org"));
    assert!(m["to"].as_str().unwrap().contains("Carol Ωmega"), "{m}");
    assert_eq!(m["bcc"], Value::Null, "Bcc is never written");
    assert_eq!(
        m["html"].as_str().unwrap().trim(),
        "<p>Hallo <b>Wörld</b> ☃</p>"
    );
    assert_eq!(
        m["text"].as_str().unwrap().trim(),
        "Hallo Wörld, plain text."
    );
    assert_eq!(m["attachments"][0]["filename"], filename, "{m}");
    assert_eq!(m["attachments"][0]["content_type"], "application/pdf");
    assert_eq!(
        m["attachments"][0]["data_hex"].as_str().unwrap(),
        hex(&attachment)
    );
    assert_eq!(m["importance"], "high");
    assert_eq!(m["seven_bit"], true, "7-bit clean for any next hop");
    assert!(m["max_line"].as_u64().unwrap() <= 998);
    assert_eq!(m["defects"], serde_json::json!([]));
    assert_eq!(
        m["message_id"].as_str().unwrap(),
        r["message_id"].as_str().unwrap()
    );

    // The local recipient got an item without SMTP; the sender has a Sent copy.
    let bob = s.items("bob@example.org", "Inbox");
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["subject"], subject);
    let (code, folders) = curl(
        &s,
        "GET",
        "/api/v1/folders",
        "alice@example.org:secret",
        None,
    )
    .unwrap();
    assert_eq!(code, 200);
    let sent = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "sent")
        .unwrap_or_else(|| panic!("{folders}"));
    assert_eq!(
        (sent["name"].as_str(), sent["total"].as_u64()),
        (Some("Sent Items"), Some(1))
    );
    let (code, items) = curl(
        &s,
        "GET",
        "/api/v1/folders/Sent%20Items/items",
        "alice@example.org:secret",
        None,
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(items[0]["subject"], subject);
    assert_eq!(items[0]["id"], r["id"]);
    assert!(items[0]["flags"].to_string().contains("Seen"));
    let (code, _) = curl(
        &s,
        "GET",
        "/api/v1/folders/Nope/items",
        "alice@example.org:secret",
        None,
    )
    .unwrap();
    assert_eq!(code, 404);

    // Unknown local recipients refuse the whole message.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"to": ["nobody@example.org"], "subject": "x", "text": "x"}"#,
    )
    .unwrap();
    let (code, r) = curl(
        &s,
        "POST",
        "/api/v1/messages",
        "alice@example.org:secret",
        Some(&bad),
    )
    .unwrap();
    assert_eq!(code, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("nobody@example.org"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn queued_mail_survives_kill_9_mid_delivery() {
    // 500 messages accepted for a slow next hop; SIGKILL while it is taking
    // them; after a restart, every one reaches it (at least once: a message
    // in flight at the kill may come twice, never not at all).
    const N: usize = 500;
    let dns = Dns::start();
    let sink = Sink::start(SinkOptions {
        data_delay: Duration::from_millis(80),
        ..SinkOptions::default()
    });
    let mut s = server(
        &dns,
        1,
        &format!(
            "[outbound.routes]\n\"remote.test\" = \"[127.0.0.1]:{}\"\n",
            sink.port()
        ),
    );
    let Some(r) = send(
        &s,
        "carol@remote.test",
        &["--count", &N.to_string(), "--subject", "crash"],
    ) else {
        return;
    };
    assert_eq!(r["sent"], N, "{r}");
    let (before, _) = sink.wait_for(Duration::from_secs(60), |r| r.len() >= 60);
    s.kill();
    let at_kill = sink.received().len();
    assert!(
        (60..N).contains(&at_kill),
        "the kill should come mid-delivery ({} of {N} sent before it)",
        before.len()
    );
    s.restart();
    let subjects = |got: &[Received]| -> std::collections::HashSet<String> {
        got.iter()
            .filter_map(|r| {
                String::from_utf8_lossy(&r.data)
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect()
    };
    let (got, ok) = sink.wait_for(Duration::from_secs(120), |got| subjects(got).len() >= N);
    let unique = subjects(&got);
    assert!(
        ok,
        "{} of {N} messages reached the sink; log:\n{}",
        unique.len(),
        s.log()
    );
    for i in 1..=N {
        assert!(unique.contains(&format!("crash {i}")), "crash {i} lost");
    }
    eprintln!(
        "outbound crash test: {at_kill} delivered before SIGKILL, {} transactions in all for {N} messages",
        got.len()
    );
    assert!(wait_until(Duration::from_secs(10), || queue_empty(&s)));
}
