//! Logs and accounting (`[logging]`), as an operator reads them: daily log
//! files beside standard error, `postgate log tail`, and one JSON accounting
//! line per message in, out and bounced, after known traffic: mail in from
//! the Internet, one message submitted to a relay that takes it and one to a
//! recipient the relay refuses (a bounce back to the local sender).
use postgate_testkit::sink::Sink;
use postgate_testkit::{Server, python, smtp_fill};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");

/// The lines of every file in `dir` named `prefix…suffix` (a test that
/// runs across midnight UTC sees two days' files).
fn read_series(dir: &Path, prefix: &str, suffix: &str) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn records(dir: &Path) -> Vec<Value> {
    read_series(dir, "accounting-", ".jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Submits one message from alice to `to` over submission with STARTTLS;
/// `None` when python3 is missing.
fn submit(s: &Server, to: &str) -> Option<()> {
    let args: Vec<String> = [
        s.addr("submission").port().to_string(),
        "starttls".into(),
        "alice@example.org".into(),
        "pw".into(),
        "alice@example.org".into(),
        to.into(),
    ]
    .into();
    let (ok, out, err) = python(SUBMIT, &args)?;
    assert!(ok && out.contains("\"sent\": 1"), "{out}{err}");
    Some(())
}

fn rcpts(r: &Value) -> Vec<(String, String, Value)> {
    r["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["address"].as_str().unwrap().to_string(),
                x["outcome"].as_str().unwrap().to_string(),
                x["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn log_files_tail_and_accounting_in_out_bounce() {
    let logs = tempfile::tempdir().unwrap();
    let sink = Sink::start(Default::default());
    sink.script_rcpt("nobody@remote.test", &["550 5.1.1 no such user"]);
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[logging]\ndir = {:?}\naccounting = true\nservices = {{ smtp = \"debug\" }}\n\
             [outbound]\nrelay = \"127.0.0.1:{}\"\nretry_intervals = [\"1s\"]\n",
            logs.path().display().to_string(),
            sink.port()
        ),
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.set_password("alice@example.org", "pw");

    smtp_fill(s.addr("smtp"), "alice@example.org", 2);
    let Some(()) = submit(&s, "friend@remote.test") else {
        return;
    };
    submit(&s, "nobody@remote.test").unwrap();

    // Wait for the relay to take one and the other to bounce.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = records(logs.path());
        if all.iter().any(|r| r["direction"] == "bounce") && !sink.received().is_empty() {
            break all;
        }
        assert!(Instant::now() < deadline, "records so far: {all:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let of = |direction: &str| -> Vec<&Value> {
        all.iter().filter(|r| r["direction"] == direction).collect()
    };
    let (ins, outs, bounces) = (of("in"), of("out"), of("bounce"));
    assert_eq!(
        (ins.len(), outs.len(), bounces.len()),
        (4, 2, 1),
        "{all:#?}"
    );
    for r in &all {
        let time = r["time"].as_str().unwrap();
        assert!(
            time.ends_with('Z') && time.len() == "2026-05-01T09:30:00.123Z".len(),
            "{time}"
        );
    }

    // In from the Internet: delivered to the local mailbox, no TLS, no user.
    for (i, r) in ins[..2].iter().enumerate() {
        assert_eq!(r["sender"], format!("s{i}@remote.test"));
        assert_eq!(r["message_id"], format!("<fill{i}@remote.test>"));
        assert_eq!(
            rcpts(r),
            [(
                "alice@example.org".to_string(),
                "delivered".to_string(),
                Value::Null
            )]
        );
        assert_eq!(r["peer"], "127.0.0.1");
        assert_eq!(r["peer_name"], "filler.test");
        assert_eq!(r["tls"], Value::Null);
        assert_eq!(r["user"], Value::Null);
        assert_eq!(r["queue_id"], Value::Null);
        // The message as stored: the client's bytes and our trace fields.
        assert!(r["size"].as_u64().unwrap() > 100, "{r}");
    }
    // Submitted by alice under STARTTLS: queued for the remote recipient.
    for (r, to) in ins[2..]
        .iter()
        .zip(["friend@remote.test", "nobody@remote.test"])
    {
        assert_eq!(r["sender"], "alice@example.org");
        assert_eq!(
            rcpts(r),
            [(to.to_string(), "queued".to_string(), Value::Null)]
        );
        assert_eq!(r["user"], "alice@example.org");
        assert_eq!(r["peer_name"], "client.test");
        assert!(r["tls"].as_str().unwrap().contains("with cipher"), "{r}");
        assert!(r["message_id"].as_str().unwrap().ends_with("@client.test>"));
    }

    // Out: one sent, one refused for good, each with the queue id and the
    // size and Message-ID the message came in with.
    let sent = outs
        .iter()
        .find(|r| r["recipients"][0]["address"] == "friend@remote.test")
        .unwrap();
    let failed = outs
        .iter()
        .find(|r| r["recipients"][0]["address"] == "nobody@remote.test")
        .unwrap();
    assert_eq!(rcpts(sent)[0].1, "sent");
    assert!(
        rcpts(sent)[0].2.as_str().unwrap().starts_with("2."),
        "{sent}"
    );
    assert_eq!(
        rcpts(failed)[0],
        (
            "nobody@remote.test".to_string(),
            "failed".to_string(),
            Value::from("5.1.1")
        )
    );
    for (out, inn) in [(sent, ins[2]), (failed, ins[3])] {
        assert_eq!(out["sender"], "alice@example.org");
        assert_eq!(out["message_id"], inn["message_id"]);
        assert_eq!(out["size"], inn["size"]);
        assert!(out["queue_id"].as_i64().unwrap() > 0);
        assert_eq!(out["peer"], "127.0.0.1");
        assert_eq!(out["peer_name"], "127.0.0.1");
        // The sink offers STARTTLS, which the agent takes (policy "may").
        assert!(
            out["tls"].as_str().unwrap().contains("with cipher"),
            "{out}"
        );
        assert_eq!(out["user"], Value::Null);
    }
    // (Queue ids are those of live entries: once the first was sent, the
    // second may get the same id, so records go together by Message-ID.)
    assert_eq!(sink.received()[0].rcpts[0].0, "friend@remote.test");

    // The bounce: from <> to alice, filed in her Inbox, about the failed one.
    let bounce = bounces[0];
    assert_eq!(bounce["queue_id"], failed["queue_id"]);
    assert_eq!(bounce["sender"], "");
    assert_eq!(
        rcpts(bounce),
        [(
            "alice@example.org".to_string(),
            "delivered".to_string(),
            Value::Null
        )]
    );
    assert!(bounce["size"].as_u64().unwrap() > 200, "{bounce}");
    assert!(bounce["message_id"].as_str().unwrap().contains(".dsn@"));
    let inbox = s.items("alice@example.org", "Inbox");
    assert_eq!(inbox.len(), 3, "two filled in, one DSN: {inbox:#?}");

    // The log file: beside standard error, with the SMTP sessions in it.
    let log = read_series(logs.path(), "postgate-", ".log");
    assert!(
        log.lines()
            .any(|l| l.contains("service=\"smtp\"") && l.contains("postgate_smtp")),
        "{log}"
    );
    assert!(!log.contains("\u{1b}["), "no colours in the file");
    assert!(log.lines().any(|l| l.contains("postgate_outbound")));

    // log tail: only SMTP lines with --service smtp; all of them without.
    let tail = s.cli(&[
        "log",
        "tail",
        "--service",
        "smtp",
        "--no-follow",
        "-n",
        "1000",
    ]);
    let lines: Vec<&str> = tail.lines().collect();
    assert!(!lines.is_empty(), "nothing printed; the log:\n{log}");
    for l in &lines {
        assert!(
            l.contains("service=\"smtp\"") || l.contains(" postgate_smtp:"),
            "not an SMTP line: {l}"
        );
    }
    let every = s.cli(&["log", "tail", "--no-follow", "--lines", "1000"]);
    assert!(every.lines().count() > lines.len());
    assert!(every.contains("postgate_outbound"));
    let five = s.cli(&["log", "tail", "--no-follow", "--lines", "5"]);
    assert_eq!(five.lines().count(), 5);
    let infos = s.cli(&[
        "log",
        "tail",
        "--service",
        "smtp",
        "--level",
        "info",
        "--no-follow",
        "-n",
        "1000",
    ]);
    assert!(!infos.is_empty() && !infos.contains(" DEBUG "), "{infos}");
}

#[test]
fn log_tail_without_a_log_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["log", "tail", "--no-follow"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[logging] dir is not set"), "{err}");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["log", "tail", "--service", "smtpd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("one of: smtp, imap"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
