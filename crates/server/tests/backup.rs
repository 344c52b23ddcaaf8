//! `postgate backup` of a running server while mail arrives, and `postgate
//! restore` into a new data directory: every message acknowledged before
//! the backup began is there after it, byte for byte, with its flags.
use postgate_testkit::{RawClient, Server, python};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const TOOL: &str = include_str!("py/mailbox_tool.py");
/// The backup is of the embedded store (on PostgreSQL, pg_dump is the
/// tool): these servers keep it whatever POSTGATE_TEST_BACKEND says.
const EMBEDDED: &str = "[store]\nbackend = \"embedded\"\n";
/// At most this many messages are sent (the sender also stops when told).
const MAX_MESSAGES: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Dumped {
    uid: u32,
    flags: Vec<String>,
    internaldate: i64,
    size: u64,
    sha256: String,
    message_id: String,
}

fn dump(s: &Server) -> Option<BTreeMap<String, Vec<Dumped>>> {
    let args = [
        "dump".to_string(),
        "127.0.0.1".into(),
        s.addr("imaps").port().to_string(),
        "alice@example.org".into(),
        "secret".into(),
    ];
    let (ok, out, err) = python(TOOL, &args)?;
    assert!(ok, "dump: {err}");
    Some(serde_json::from_str(&out).expect("dump JSON"))
}

/// Sends messages one at a time over SMTP until `stop`, counting those
/// acknowledged (250 after the data) in `acked`: message i has the
/// Message-ID <i@backup.test>.
fn sender(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        c.reply();
        assert!(c.cmd("EHLO sender.test").starts_with("250"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        for i in 0..MAX_MESSAGES {
            if stop.load(Ordering::SeqCst) || std::time::Instant::now() > deadline {
                break;
            }
            let body = format!(
                "From: <s@remote.test>\r\nTo: <alice@example.org>\r\nSubject: backup {i}\r\n\
                 Message-ID: <{i}@backup.test>\r\n\r\n{}\r\n",
                format!("payload {i} ").repeat(200)
            );
            assert!(c.cmd("MAIL FROM:<s@remote.test>").starts_with("250"));
            assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
            c.send(format!("BDAT {} LAST\r\n", body.len()).as_bytes());
            c.send(body.as_bytes());
            let r = c.reply();
            assert!(r.last().is_some_and(|l| l.starts_with("250")), "{r:?}");
            acked.store(i + 1, Ordering::SeqCst);
        }
        c.cmd("QUIT");
    })
}

#[test]
fn backup_while_mail_arrives_then_restore() {
    let a = Server::start(Path::new(BIN), EMBEDDED);
    a.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    a.set_password("alice@example.org", "secret");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let send = sender(a.addr("smtp"), stop.clone(), acked.clone());
    while acked.load(Ordering::SeqCst) < 300 {
        assert!(!send.is_finished(), "the sender stopped early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Flags and a keyword on some of what has arrived, before the backup.
    let args: Vec<String> = [
        "store",
        "127.0.0.1",
        &a.addr("imaps").port().to_string(),
        "alice@example.org",
        "secret",
        "INBOX",
        "1:100",
        "\\Flagged $Important",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some((ok, _, err)) = python(TOOL, &args) else {
        stop.store(true, Ordering::SeqCst);
        return;
    };
    assert!(ok, "store: {err}");
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup");
    let before = acked.load(Ordering::SeqCst);
    let out = a.cli(&["backup", backup.to_str().unwrap()]);
    let after = acked.load(Ordering::SeqCst);
    assert!(out.contains("checked"), "{out}");
    // Mail kept arriving while the backup ran (else this proves little).
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    send.join().unwrap();
    assert!(
        acked.load(Ordering::SeqCst) > before,
        "no mail during the backup"
    );
    // A non-empty directory is refused.
    let again = a.cli_output(&["backup", backup.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let mut b = Server::stopped(Path::new(BIN), EMBEDDED);
    let out = b.cli(&["restore", backup.to_str().unwrap()]);
    assert!(out.contains("restored"), "{out}");
    b.restart();
    // A data directory in use is refused.
    let again = b.cli_output(&["restore", backup.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let Some(source) = dump(&a) else { return };
    let Some(restored) = dump(&b) else { return };
    let by_id = |d: &BTreeMap<String, Vec<Dumped>>| -> BTreeMap<String, Dumped> {
        d["INBOX"]
            .iter()
            .map(|m| (m.message_id.clone(), m.clone()))
            .collect()
    };
    let (source, restored) = (by_id(&source), by_id(&restored));
    // Every message acknowledged before the backup began is restored,
    // exactly as the source holds it (bytes, flags, internal date, UID).
    for i in 0..before {
        let id = format!("<{i}@backup.test>");
        let Some(r) = restored.get(&id) else {
            panic!(
                "{id} was acknowledged before the backup but is missing ({before} acknowledged, {} restored)",
                restored.len()
            );
        };
        assert_eq!(Some(r), source.get(&id), "{id}");
        if (1..=100).contains(&r.uid) {
            assert!(
                r.flags.contains(&"\\Flagged".to_string())
                    && r.flags.contains(&"$Important".to_string()),
                "{id}: {:?}",
                r.flags
            );
        }
    }
    // And nothing the source does not hold, nor anything sent after the
    // backup ended (the sender has one message in flight at most: committed,
    // perhaps, but not yet acknowledged when the backup ended).
    for (id, r) in &restored {
        assert_eq!(source.get(id), Some(r), "{id}");
    }
    assert!(
        restored.len() <= after + 1,
        "{} > {after} + 1",
        restored.len()
    );

    // A damaged backup is refused.
    let db = backup.join("postgate.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&db, bytes).unwrap();
    let c = Server::stopped(Path::new(BIN), EMBEDDED);
    let out = c.cli_output(&["restore", backup.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("damaged"),
        "{out:?}"
    );
    assert!(!c.dir().join("data/postgate.db").exists());
}

/// The store's own check catches what the manifest's hashes cannot: a
/// backup whose database was changed and its manifest hash updated.
#[test]
fn restore_checks_the_store_itself() {
    let a = Server::start(Path::new(BIN), EMBEDDED);
    a.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    postgate_testkit::smtp_fill(a.addr("smtp"), "alice@example.org", 20);
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("b");
    a.cli(&["backup", backup.to_str().unwrap()]);
    // Change one message's bytes in place (same length: wherever they
    // appear) and fix the manifest's file hash, as a careless edit would.
    let db = backup.join("postgate.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"body 7\r\n";
    let at: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "a message's bytes in the database file");
    for i in at {
        bytes[i + 5] = b'8';
    }
    std::fs::write(&db, &bytes).unwrap();
    let manifest_path = backup.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let hash: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f[0] == "postgate.db" {
            f[1] = serde_json::Value::from(hash.clone());
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let b = Server::stopped(Path::new(BIN), EMBEDDED);
    let out = b.cli_output(&["restore", backup.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not match"),
        "{out:?}"
    );
}

#[test]
fn postgres_backend_points_to_pg_dump() {
    let s = Server::stopped(
        Path::new(BIN),
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://postgate@127.0.0.1:1/postgate\"\n",
    );
    for cmd in ["backup", "restore"] {
        let out = s.cli_output(&[cmd, s.dir().join("b").to_str().unwrap()], None);
        assert!(!out.status.success(), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("pg_dump"),
            "{cmd}: {out:?}"
        );
    }
}
