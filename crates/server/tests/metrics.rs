//! The one set of counters, read as Prometheus does: `/metrics` scraped over
//! HTTPS with the bearer token and parsed with Python's prometheus_client
//! (its OpenMetrics parser), after known traffic.
use postgate_testkit::sink::Sink;
use postgate_testkit::{Server, python, python_module, smtp_fill};
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");

/// Scrapes /metrics with `token` and prints `name{labels} value` lines as
/// the parser understood them; exits 3 with the status if refused.
const SCRAPE: &str = r#"
import http.client, ssl, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
port, token = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
h = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
headers = {"Authorization": "Bearer " + token} if token != "-" else {}
h.request("GET", "/metrics", headers=headers)
r = h.getresponse(); body = r.read().decode()
if r.status != 200:
    print(r.status); sys.exit(3)
assert r.getheader("Content-Type").startswith("application/openmetrics-text"), r.getheader("Content-Type")
for fam in text_string_to_metric_families(body):
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;

fn scrape(s: &Server, token: &str) -> Option<Result<Vec<(String, f64)>, String>> {
    if !python_module("prometheus_client") {
        return None;
    }
    let (ok, out, err) = python(
        SCRAPE,
        &[s.addr("console").port().to_string(), token.to_string()],
    )?;
    if !ok {
        return Some(Err(format!("{out}{err}")));
    }
    Some(Ok(out
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()))
}

fn value(samples: &[(String, f64)], key: &str) -> f64 {
    samples
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or(0.0)
}

#[test]
fn counters_move_with_mail_in_out_and_failed_logins() {
    let sink = Sink::start(Default::default());
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[console]\nlisten = [\"127.0.0.1:0\"]\nmetrics_token = \"s3cret-token\"\n\
             [outbound]\nrelay = \"127.0.0.1:{}\"\nretry_intervals = [\"1s\"]\n",
            sink.port()
        ),
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.set_password("alice@example.org", "pw");
    // Refused without the token, and with a wrong one.
    let Some(r) = scrape(&s, "-") else { return };
    assert!(r.is_err_and(|e| e.trim() == "401"));
    assert!(scrape(&s, "wrong").unwrap().is_err());
    let before = scrape(&s, "s3cret-token").unwrap().unwrap();

    // 20 messages in from the Internet.
    smtp_fill(s.addr("smtp"), "alice@example.org", 20);
    // 10 out, submitted by alice.
    let args: Vec<String> = [
        s.addr("submission").port().to_string(),
        "starttls".into(),
        "alice@example.org".into(),
        "pw".into(),
        "alice@example.org".into(),
        "friend@remote.test".into(),
        "--count".into(),
        "10".into(),
    ]
    .into();
    let (ok, out, err) = python(SUBMIT, &args).unwrap();
    assert!(ok && out.contains("\"sent\": 10"), "{out}{err}");
    // 3 failed logins over IMAP.
    let bad = "import imaplib,ssl,sys\nctx=ssl.create_default_context();ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\nfor i in range(3):\n  m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\n  try:\n    m.login('alice@example.org','wrong'); sys.exit(1)\n  except imaplib.IMAP4.error: pass\n";
    let (ok, _, err) = python(bad, &[s.addr("imaps").port().to_string()]).unwrap();
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.received().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "the sink got {}",
            sink.received().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));

    let after = scrape(&s, "s3cret-token").unwrap().unwrap();
    let delta = |k: &str| value(&after, k) - value(&before, k);
    // Everything accepted counts as in: 20 from outside, 10 submitted.
    assert_eq!(
        delta("postgate_messages_total{direction=\"in\"}"),
        30.0,
        "{after:?}"
    );
    assert_eq!(
        delta("postgate_messages_total{direction=\"out\"}"),
        10.0,
        "{after:?}"
    );
    assert_eq!(delta("postgate_recipients_total{direction=\"out\"}"), 10.0);
    assert_eq!(
        delta("postgate_outbound_attempts_total{outcome=\"sent\"}"),
        10.0
    );
    assert!(delta("postgate_message_bytes_total{direction=\"in\"}") > 20.0 * 100.0);
    assert_eq!(
        delta("postgate_logins_total{outcome=\"failed\",service=\"imap\"}"),
        3.0
    );
    assert_eq!(
        delta("postgate_logins_total{outcome=\"ok\",service=\"submission\"}"),
        1.0
    );
    assert_eq!(delta("postgate_delivery_seconds_count{}"), 30.0);
    // Per command, and the errors by kind: the 3 refused logins are NO.
    // smtp_fill sends with BDAT (RFC 3030), smtplib with DATA.
    assert_eq!(
        delta("postgate_commands_total{command=\"MAIL\",service=\"smtp\"}"),
        30.0,
        "{after:?}"
    );
    assert_eq!(
        delta("postgate_commands_total{command=\"BDAT\",service=\"smtp\"}")
            + delta("postgate_commands_total{command=\"DATA\",service=\"smtp\"}"),
        30.0,
        "{after:?}"
    );
    assert_eq!(
        delta("postgate_commands_total{command=\"LOGIN\",service=\"imap\"}"),
        3.0,
        "{after:?}"
    );
    assert_eq!(
        delta("postgate_errors_total{kind=\"refused\",service=\"imap\"}"),
        3.0,
        "{after:?}"
    );
    assert_eq!(
        delta("postgate_errors_total{kind=\"syntax\",service=\"smtp\"}"),
        0.0
    );
    assert!(value(&after, "postgate_connections_total{service=\"smtp\"}") >= 2.0);
    assert!(value(&after, "postgate_connections_current{service=\"console\"}") >= 1.0);
    assert!(value(&after, "postgate_workers{service=\"imap\"}") > 0.0);
    assert!(value(&after, "postgate_store_commit_seconds_count{}") > 0.0);
    // The queue is sampled from the store: everything went, nothing waits.
    assert!(
        after
            .iter()
            .any(|(k, v)| k == "postgate_queue_recipients{state=\"due\"}" && *v == 0.0),
        "{after:?}"
    );
}
