//! The database goes away under load and comes back: while it is down the
//! services answer with their try-later replies (SMTP 451 4.3.0, IMAP NO
//! [UNAVAILABLE], POP3 -ERR [SYS/TEMP]); afterwards every message that got
//! its 250 is in the store, and the server recovered by itself. The test
//! runs its own throwaway cluster (`.ci/pg-cluster`), since it stops it.
use postgate_testkit::{RawClient, Server, interop_required, pg_store_section};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SENDERS: usize = 4;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/pg-cluster")
}

fn cluster(cmd: &str, dir: &Path) -> String {
    let out = std::process::Command::new(script())
        .arg(cmd)
        .arg(dir)
        .output()
        .expect("run .ci/pg-cluster");
    assert!(
        out.status.success(),
        ".ci/pg-cluster {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn postgres_installed() -> bool {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if !found {
        let msg = "\n\n*** SKIPPED: PostgreSQL is not installed (Debian's postgresql); \
                   the database fault test did not run. ***\n";
        assert!(
            !interop_required(),
            "{msg} POSTGATE_REQUIRE_INTEROP=1: a skip is a failure."
        );
        eprintln!("{msg}");
    }
    found
}

/// Sends one message; the first line of the final reply (or of the first
/// refusal).
fn send_one(addr: std::net::SocketAddr, subject: &str) -> String {
    let mut c = RawClient::connect(addr);
    let greeting = c.reply();
    if !greeting.first().is_some_and(|l| l.starts_with("220")) {
        return greeting.first().cloned().unwrap_or_default();
    }
    c.cmd("EHLO loader.test");
    for cmd in [
        "MAIL FROM:<loader@remote.test>".to_string(),
        "RCPT TO:<alice@example.org>".to_string(),
        "DATA".to_string(),
    ] {
        let r = c.cmd(&cmd);
        if !(r.starts_with('2') || r.starts_with('3')) {
            return r;
        }
    }
    c.send(format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n.\r\n").as_bytes());
    let r = c.reply().first().cloned().unwrap_or_default();
    let _ = c.cmd("QUIT");
    r
}

#[test]
fn database_down_and_back_loses_nothing_acknowledged() {
    if !postgres_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(tmp.path())
        .status()
        .unwrap();
    let dir = tmp.path().join("cluster");
    let url = cluster("start", &dir);
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new(script())
                .arg("stop")
                .arg(&self.0)
                .output();
        }
    }
    let _stop = Stop(dir.clone());

    let s = Server::start(
        Path::new(BIN),
        &format!(
            "{}\n[imap]\nlisten = [\"127.0.0.1:0\"]\nallow_plaintext = true\n\
             [pop3]\nlisten = [\"127.0.0.1:0\"]\nallow_plaintext = true\n",
            pg_store_section(&url, "node-a")
        ),
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.set_password("alice@example.org", "secret");
    let smtp = s.addr("smtp");

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refusals = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            let (acked, refusals, stop) = (acked.clone(), refusals.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let subject = format!("fault-{t}-{i}");
                    i += 1;
                    let r = send_one(smtp, &subject);
                    if r.starts_with("250") {
                        acked.lock().unwrap().push(subject);
                    } else {
                        refusals.lock().unwrap().push(r);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        })
        .collect();
    let count = |v: &Arc<Mutex<Vec<String>>>| v.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&acked) < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        count(&acked) >= 50,
        "no load before the outage:\n{}",
        s.log()
    );

    // The database stops (a fast shutdown: sessions are cut off).
    cluster("stop", &dir);
    let down_at = count(&refusals);
    std::thread::sleep(Duration::from_secs(3));
    // IMAP and POP3 say "later", they do not hang up or lie.
    let mut imap = RawClient::connect(s.addr("imap"));
    imap.line();
    let login = imap.cmd("a LOGIN alice@example.org secret");
    assert!(
        login.starts_with("a NO [UNAVAILABLE]"),
        "IMAP LOGIN while the database is down: {login}"
    );
    let mut pop = RawClient::connect(s.addr("pop3"));
    pop.line();
    pop.cmd("USER alice@example.org");
    let pass = pop.cmd("PASS secret");
    assert!(
        pass.starts_with("-ERR [SYS/TEMP]"),
        "POP3 PASS while the database is down: {pass}"
    );
    let during: Vec<String> = refusals.lock().unwrap()[down_at..].to_vec();
    assert!(
        !during.is_empty(),
        "SMTP refused nothing while the database was down"
    );
    for r in &during {
        assert!(
            r.starts_with("451 4.3.0") || r.starts_with("421 4.3.0"),
            "SMTP answered {r:?} while the database was down"
        );
    }

    // The database comes back; the server recovers by itself.
    cluster("resume", &dir);
    let back = count(&acked);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&acked) < back + 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in senders {
        t.join().unwrap();
    }
    assert!(
        count(&acked) >= back + 50,
        "SMTP did not recover after the database came back:\n{}",
        s.log()
    );
    let mut imap = RawClient::connect(s.addr("imap"));
    imap.line();
    let login = imap.cmd("a LOGIN alice@example.org secret");
    assert!(login.starts_with("a OK"), "IMAP after recovery: {login}");

    let stored: std::collections::HashSet<String> = s
        .items("alice@example.org", "INBOX")
        .iter()
        .filter_map(|i| i["subject"].as_str().map(str::to_string))
        .collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "{} acknowledged, all stored; {} try-later replies while the database was down",
        acked.len(),
        during.len()
    );
}
