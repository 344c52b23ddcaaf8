//! SMTP over real sockets against the real server, with real clients
//! (Python's smtplib, swaks) and raw bytes where the test needs exact control.
use postgate_testkit::{RawClient, Server, python, tool};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SEND: &str = include_str!("py/smtp_send.py");

fn server(extra: &str) -> Server {
    let s = Server::start(std::path::Path::new(BIN), extra);
    s.populate(
        "example.org",
        &[
            ("alice@example.org", "Alice Smith"),
            ("bob@example.org", "Bob Jones"),
        ],
    );
    s
}

/// Runs smtp_send.py; `None` if python3 is missing (skipped loudly).
fn send(s: &Server, from: &str, to: &str, opts: &[&str]) -> Option<Value> {
    let mut args = vec![s.addr("smtp").port().to_string(), from.into(), to.into()];
    args.extend(opts.iter().map(|o| o.to_string()));
    let (ok, out, err) = python(SEND, &args)?;
    assert!(ok, "smtp_send.py failed: {err}");
    Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

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

fn connect(s: &Server) -> RawClient {
    let mut c = RawClient::connect(s.addr("smtp"));
    let greeting = c.reply();
    assert!(
        greeting[0].starts_with("220 mx.test.example"),
        "{greeting:?}"
    );
    c
}

#[test]
fn plain_and_starttls_sessions() {
    let s = server("");
    let Some(r) = send(
        &s,
        "sender@remote.test",
        "alice@example.org",
        &["--subject", "plain one"],
    ) else {
        return;
    };
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    assert!(
        r["ehlo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "STARTTLS")
    );
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ] {
        assert!(
            r["ehlo"].as_array().unwrap().iter().any(|l| l == ext),
            "{ext} missing: {r}"
        );
    }
    let r = send(
        &s,
        "sender@remote.test",
        "alice@example.org",
        &["--starttls", "--subject", "under tls"],
    )
    .unwrap();
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    // Under TLS STARTTLS is not offered again (RFC 3207 §4.2).
    assert!(
        !r["ehlo_tls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "STARTTLS")
    );

    let items = s.items("alice@example.org", "Inbox");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["subject"], "plain one");
    assert_eq!(items[1]["subject"], "under tls");
    let plain = String::from_utf8(raw_item(&s, "alice@example.org", "Inbox", 1)).unwrap();
    let tls = String::from_utf8(raw_item(&s, "alice@example.org", "Inbox", 2)).unwrap();
    assert!(
        plain.starts_with(
            "Return-Path: <sender@remote.test>\r\nReceived: from client.test ([127.0.0.1])"
        ),
        "{plain}"
    );
    assert!(plain.contains("with ESMTP id "), "{plain}");
    assert!(
        tls.contains("with ESMTPS id ") && tls.contains("(using TLS"),
        "{tls}"
    );
    assert!(tls.contains("for <alice@example.org>;"), "{tls}");
}

#[test]
fn pipelined_session() {
    let s = server("");
    let mut c = connect(&s);
    // RFC 2920: the whole group in one write; replies in order.
    c.send(b"EHLO pipe.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<Bob@Example.org>\r\nDATA\r\n");
    let ehlo = c.reply();
    assert!(ehlo.last().unwrap().starts_with("250 "), "{ehlo:?}");
    assert_eq!(c.reply(), ["250 2.1.0 Ok"]);
    assert_eq!(c.reply(), ["250 2.1.5 Ok"]);
    assert!(c.reply()[0].starts_with("550 5.1.1 <nobody@example.org>"));
    assert_eq!(c.reply(), ["250 2.1.5 Ok"]);
    assert!(c.reply()[0].starts_with("354 "));
    c.send(b"Subject: pipelined\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n");
    assert!(c.reply()[0].starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(c.reply(), ["221 2.0.0 Bye"]);
    for user in ["alice@example.org", "bob@example.org"] {
        let items = s.items(user, "Inbox");
        assert_eq!(items.len(), 1, "{user}");
        let raw = String::from_utf8(raw_item(&s, user, "Inbox", 1)).unwrap();
        // Dot-stuffing undone (RFC 5321 §4.5.2); no "for" with two recipients.
        assert!(raw.ends_with("\r\n\r\n.leading dot\r\nbody\r\n"), "{raw}");
        assert!(!raw.contains("\tfor <"), "{raw}");
    }
}

#[test]
fn swaks_pipelining_and_starttls() {
    let s = server("");
    let Some(swaks) = tool("swaks") else { return };
    let server = s.addr("smtp").to_string();
    for extra in [&["--pipeline"][..], &["--tls"][..]] {
        let out = std::process::Command::new(&swaks)
            .args([
                "--server",
                &server,
                "--to",
                "alice@example.org",
                "--from",
                "swaks@remote.test",
            ])
            .args(["--helo", "swaks.test", "--header", "Subject: via swaks"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "swaks {extra:?}: {text}{err}");
        assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    }
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 2);
}

#[test]
fn eight_bit_and_smtputf8() {
    let s = server("");
    s.cli(&["user", "add", "jörg@example.org", "--name", "Jörg Müller"]);
    let Some(r) = send(
        &s,
        "absender@bücher.test",
        "jörg@example.org",
        &["--utf8", "--subject", "Grüße, 日本"],
    ) else {
        return;
    };
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    let items = s.items("jörg@example.org", "Inbox");
    assert_eq!(items[0]["subject"], "Grüße, 日本");
    let raw = raw_item(&s, "jörg@example.org", "Inbox", 1);
    let raw = String::from_utf8(raw).expect("stored bytes are the UTF-8 sent");
    assert!(raw.contains("with UTF8SMTP id"), "{raw}");
    assert!(raw.contains("Grüße aus Köln, 日本語のテキスト"), "{raw}");

    // Without SMTPUTF8 a non-ASCII address is refused (RFC 6531 §3.4).
    let mut c = connect(&s);
    c.cmd("EHLO x");
    c.cmd("MAIL FROM:<a@remote.test>");
    assert!(c.cmd("RCPT TO:<jörg@example.org>").starts_with("553 5.6.7"));
    // 8-bit body without BODY=8BITMIME is still taken byte for byte.
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
    c.cmd("DATA");
    c.send("Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\ncafé crème\r\n.\r\n".as_bytes());
    assert!(c.reply()[0].starts_with("250 2.0.0"));
    let raw = raw_item(&s, "alice@example.org", "Inbox", 1);
    assert!(raw.ends_with("café crème\r\n".as_bytes()));
}

#[test]
fn twenty_megabyte_message() {
    let s = server("");
    let size = 20 * 1024 * 1024;
    let Some(r) = send(
        &s,
        "big@remote.test",
        "alice@example.org",
        &["--size", &size.to_string()],
    ) else {
        return;
    };
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    let sent = r["sent_bytes"].as_u64().unwrap();
    let items = s.items("alice@example.org", "Inbox");
    let stored = items[0]["size"].as_u64().unwrap();
    assert!(
        stored > sent && stored < sent + 1024,
        "stored {stored}, sent {sent}"
    );
    let raw = raw_item(&s, "alice@example.org", "Inbox", 1);
    assert_eq!(raw.len() as u64, stored);
    assert!(raw.ends_with(b"lazy dog 0123456789.\r\n"));
}

#[test]
fn message_over_the_size_limit() {
    let s = server("[smtp]\nlisten = [\"127.0.0.1:0\"]\nmax_message_size = \"1MiB\"\n");
    // smtplib declares SIZE= (RFC 1870): refused at MAIL.
    let Some(r) = send(
        &s,
        "big@remote.test",
        "alice@example.org",
        &["--size", "2000000"],
    ) else {
        return;
    };
    assert_eq!(r["error"][0], 552, "{r}");
    assert!(r["error"][1].as_str().unwrap().starts_with("5.3.4"), "{r}");
    assert_eq!(r["noop"], 250, "the session goes on: {r}");

    // Undeclared: refused after DATA, the session goes on.
    let mut c = connect(&s);
    c.cmd("EHLO x");
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    assert!(c.cmd("DATA").starts_with("354"));
    let line = "x".repeat(998) + "\r\n";
    for _ in 0..1200 {
        c.send(line.as_bytes());
    }
    assert!(c.cmd(".").starts_with("552 5.3.4"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    // BDAT too (RFC 3030).
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    let chunk = vec![b'y'; 800_000];
    c.send(format!("BDAT {}\r\n", chunk.len()).as_bytes());
    c.send(&chunk);
    assert!(c.reply()[0].starts_with("250 2.0.0"));
    c.send(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    c.send(&chunk);
    assert!(c.reply()[0].starts_with("552 5.3.4"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    assert!(s.items("alice@example.org", "Inbox").is_empty());
}

#[test]
fn unknown_user_and_relaying() {
    let s = server("");
    let Some(r) = send(
        &s,
        "a@remote.test",
        "zed@example.org,someone@elsewhere.test,alice@example.org",
        &[],
    ) else {
        return;
    };
    let refused = &r["refused"];
    assert_eq!(refused["zed@example.org"][0], 550);
    assert!(
        refused["zed@example.org"][1]
            .as_str()
            .unwrap()
            .starts_with("5.1.1")
    );
    assert_eq!(refused["someone@elsewhere.test"][0], 550);
    assert!(
        refused["someone@elsewhere.test"][1]
            .as_str()
            .unwrap()
            .starts_with("5.7.1")
    );
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 1);
}

#[test]
fn more_sessions_than_threads() {
    let s = server("[smtp]\nlisten = [\"127.0.0.1:0\"]\nthreads = 2\n");
    let mut a = connect(&s);
    let _b = connect(&s);
    let mut c = RawClient::connect(s.addr("smtp"));
    assert_eq!(
        c.reply(),
        ["421 4.3.2 Too many connections, try again later"]
    );
    assert!(c.is_closed());
    assert_eq!(a.cmd("QUIT"), "221 2.0.0 Bye");
    drop(a);
    // A worker is free again.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut d = connect(&s);
    assert_eq!(d.cmd("NOOP"), "250 2.0.0 Ok");
}

#[test]
fn group_address_expanded() {
    let s = server("");
    s.cli(&["user", "add", "carol@example.org", "--name", "Carol King"]);
    s.group(
        "team@example.org",
        "The Team",
        &["alice@example.org", "bob@example.org"],
    );
    s.cli(&["alias", "add", "boss@example.org", "carol@example.org"]);
    s.cli(&["group", "add", "all@example.org"]);
    s.cli(&[
        "group",
        "member",
        "add",
        "all@example.org",
        "team@example.org",
    ]);
    s.cli(&[
        "group",
        "member",
        "add",
        "all@example.org",
        "boss@example.org",
    ]);
    let Some(r) = send(
        &s,
        "a@remote.test",
        "all@example.org,alice@example.org",
        &["--subject", "to all"],
    ) else {
        return;
    };
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    for u in ["alice@example.org", "bob@example.org", "carol@example.org"] {
        let items = s.items(u, "Inbox");
        assert_eq!(items.len(), 1, "{u} gets exactly one copy");
        assert_eq!(items[0]["subject"], "to all");
    }
    // First.Last@domain reaches the user too.
    let r = send(&s, "a@remote.test", "Carol.King@example.org", &[]).unwrap();
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    assert_eq!(s.items("carol@example.org", "Inbox").len(), 2);
}

#[test]
fn junk_header_files_in_junk() {
    let s = server("");
    let Some(r) = send(
        &s,
        "a@remote.test",
        "alice@example.org",
        &["--header", "X-Spam-Flag: YES"],
    ) else {
        return;
    };
    assert_eq!(r["refused"], serde_json::json!({}));
    assert!(s.items("alice@example.org", "Inbox").is_empty());
    assert_eq!(s.items("alice@example.org", "Junk").len(), 1);
}

#[test]
fn bdat_chunks() {
    let s = server("");
    let mut c = connect(&s);
    c.cmd("EHLO x");
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nBDAT 20\r\nSubject: chunked\r\n\r\nBDAT 9 LAST\r\nline one\n");
    assert_eq!(c.reply(), ["250 2.1.0 Ok"]);
    assert_eq!(c.reply(), ["250 2.1.5 Ok"]);
    assert_eq!(c.reply(), ["250 2.0.0 20 octets received"]);
    assert!(c.reply()[0].starts_with("250 2.0.0 Ok: queued as"));
    // DATA after BDAT in a transaction is out of sequence; BDAT 0 LAST is valid.
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    c.send(b"BDAT 0 LAST\r\n");
    assert!(c.reply()[0].starts_with("250 2.0.0 Ok: queued as"));
    let raw = raw_item(&s, "alice@example.org", "Inbox", 1);
    // BDAT content is taken as is: no dot-unstuffing, bare LF kept.
    assert!(raw.ends_with(b"Subject: chunked\r\n\r\nline one\n"));
    // BDAT without a transaction: the chunk is read and discarded, then 503.
    c.send(b"BDAT 5\r\nhello");
    assert!(c.reply()[0].starts_with("503 5.5.1"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
}

#[test]
fn command_sequence_and_replies() {
    let s = server("[smtp]\nlisten = [\"127.0.0.1:0\"]\nmax_commands_before_mail = 5\n");
    let mut c = connect(&s);
    assert!(c.cmd("MAIL FROM:<a@b.test>").starts_with("503 5.5.1"));
    assert!(c.cmd("HELO client").starts_with("250 mx.test.example"));
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .starts_with("503 5.5.1")
    );
    assert!(
        c.cmd("MAIL FROM:<a@b.test> SIZE=100").starts_with("555"),
        "parameters need EHLO"
    );
    assert_eq!(c.cmd("MAIL FROM:<>"), "250 2.1.0 Ok");
    assert!(
        c.cmd("MAIL FROM:<a@b.test>").starts_with("503 5.5.1"),
        "nested MAIL"
    );
    assert!(c.cmd("DATA").starts_with("554 5.5.1"), "no recipients");
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok");
    assert!(c.cmd("VRFY alice@example.org").starts_with("252 2.5.0"));
    assert!(c.cmd("HELP").starts_with("214 2.0.0"));
    assert!(c.cmd("FROBNICATE").starts_with("500 5.5.2"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    // Sixth command since MAIL: the limit is five.
    assert!(c.cmd("NOOP").starts_with("421 4.7.0"));
    assert!(c.is_closed());

    let mut c = connect(&s);
    c.cmd("EHLO x");
    // DSN parameters (RFC 3461) are accepted and kept.
    assert_eq!(
        c.cmd("MAIL FROM:<a@remote.test> RET=HDRS ENVID=QQ314159"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org"),
        "250 2.1.5 Ok"
    );
    assert!(c.cmd("MAIL FROM:<a@b.test>").starts_with("503"));
    assert!(
        c.cmd("RCPT TO:<alice@example.org> FOO=BAR")
            .starts_with("555 5.5.4")
    );
    assert!(c.cmd("RCPT TO:<not an address>").starts_with("501"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: dsn\r\n\r\nx\r\n.").starts_with("250 2.0.0"));
    assert!(
        c.cmd("MAIL FROM:<a@remote.test> BODY=BINARYMIME")
            .starts_with("555")
    );
    let long = format!("NOOP {}", "x".repeat(5000));
    assert_eq!(c.cmd(&long), "500 5.5.2 Line too long");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
}

#[test]
fn vrfy_when_enabled() {
    let s = server("[smtp]\nlisten = [\"127.0.0.1:0\"]\nvrfy = true\n");
    let mut c = connect(&s);
    c.cmd("EHLO x");
    assert_eq!(
        c.cmd("VRFY alice.smith@example.org"),
        "250 2.1.5 <alice@example.org>"
    );
    assert!(c.cmd("VRFY nobody@example.org").starts_with("550 5.1.1"));
}

#[test]
fn timeouts() {
    let s = server(
        "[smtp]\nlisten = [\"127.0.0.1:0\"]\n[smtp.timeouts]\ngreeting = \"1s\"\ncommand = \"2s\"\ndata = \"1s\"\n",
    );
    let mut c = connect(&s);
    // Say nothing: the greeting timeout ends the session with 421 (RFC 5321 §3.8).
    assert!(c.reply()[0].starts_with("421 4.4.2"));
    assert!(c.is_closed());

    let mut c = connect(&s);
    c.cmd("EHLO x");
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    c.cmd("DATA");
    c.send(b"Subject: stalled\r\n");
    assert!(c.reply()[0].starts_with("421 4.4.2"));
    assert!(
        s.items("alice@example.org", "Inbox").is_empty(),
        "nothing half-delivered"
    );
}

#[test]
fn starttls_discards_pipelined_cleartext() {
    let s = server("");
    let script = include_str!("py/starttls_injection.py");
    let Some((ok, out, err)) = python(script, &[s.addr("smtp").port().to_string()]) else {
        return;
    };
    assert!(ok, "{err}");
    assert!(out.contains("starttls: 220 2.0.0"), "{out}");
    // The RSET sent in the clear got no reply; the first reply under TLS is EHLO's.
    assert!(out.contains("first: 250-mx.test.example"), "{out}");
}

#[test]
fn check_config_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[smtp]\nthreads = \"x\"\nlisten = [\"nowhere\"]\nfoo = 1\n[imap]\nimaps = [\"127.0.0.1:993\"]\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:11:"), "{err}");
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(
        err.contains("bad.toml:4:1:") && err.contains("foo"),
        "{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");
    std::fs::write(&f, "hostname = \"mx.example.org\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    // --config after the subcommand works too.
    let data = dir.path().join("data");
    std::fs::write(&f, format!("data_dir = {:?}\n", data.display().to_string())).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["domain", "add", "example.net", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("postgate.db").exists());
}

#[test]
fn corpus_delivered_byte_exact() {
    // Every message of the MIME corpus, malformed ones included, is delivered and
    // kept byte for byte after the trace headers.
    let s = server("");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/mime/tests/corpus");
    let mut files = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "eml") {
                    files.push(f);
                }
            }
        }
    }
    files.sort();
    let mut c = connect(&s);
    c.cmd("EHLO corpus");
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        c.cmd("MAIL FROM:<corpus@remote.test>");
        c.cmd("RCPT TO:<alice@example.org>");
        c.send(format!("BDAT {} LAST\r\n", raw.len()).as_bytes());
        c.send(&raw);
        let r = c.reply();
        assert!(r[0].starts_with("250 2.0.0"), "{}: {r:?}", f.display());
    }
    let items = s.items("alice@example.org", "Inbox");
    assert_eq!(items.len(), files.len());
    for (i, f) in files.iter().enumerate() {
        let raw = std::fs::read(f).unwrap();
        let stored = raw_item(&s, "alice@example.org", "Inbox", i as u64 + 1);
        assert!(
            stored.ends_with(&raw),
            "{} not kept byte-exact",
            f.display()
        );
    }
}

#[test]
fn encoded_headers_are_decoded_into_the_item() {
    let s = server("");
    let mut c = connect(&s);
    c.cmd("EHLO x");
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    c.cmd("DATA");
    c.send(b"From: =?iso-8859-1?q?Andr=E9?= <andre@remote.test>\r\nTo: Alice <alice@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?utf-8?b?IOaXpeacrA==?=\r\nImportance: high\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n.\r\n");
    assert!(c.reply()[0].starts_with("250 2.0.0"));
    let items = s.items("alice@example.org", "Inbox");
    assert_eq!(items[0]["subject"], "Grüße 日本");
    assert_eq!(items[0]["from"]["name"], "André");
    assert_eq!(items[0]["from"]["address"], "andre@remote.test");
    let shown: Value =
        serde_json::from_str(&s.cli(&["item", "show", "alice@example.org", "1", "--json"]))
            .unwrap();
    assert_eq!(shown["content"]["importance"], "high");
    assert_eq!(shown["content"]["text"].as_str().unwrap().trim(), "Привет");
    assert_eq!(shown["content"]["to"][0]["name"], "Alice");
}
