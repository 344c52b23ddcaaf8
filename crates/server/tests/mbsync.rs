//! mbsync (Debian's isync) syncs a 1,000-message mailbox both ways over IMAPS.
use postgate_testkit::{RawClient, Server, tool};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");

fn count(dir: &Path) -> usize {
    ["cur", "new"]
        .iter()
        .map(|d| {
            std::fs::read_dir(dir.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

fn sync(mbsync: &Path, cfg: &Path) {
    let out = Command::new(mbsync)
        .arg("-c")
        .arg(cfg)
        .arg("-a")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed: {text}");
    assert!(
        !text.to_lowercase().contains("error"),
        "mbsync reported errors: {text}"
    );
}

#[test]
fn mbsync_both_ways_with_1000_messages() {
    let Some(mbsync) = tool("mbsync") else { return };
    let s = Server::start(Path::new(BIN), "");
    s.cli(&["domain", "add", "example.org"]);
    let out = s.cli_output(
        &[
            "user",
            "add",
            "alice@example.org",
            "--name",
            "Alice Smith",
            "--password-stdin",
        ],
        Some("secret\n"),
    );
    assert!(out.status.success());

    // 1,000 messages over one pipelined SMTP connection.
    let mut c = RawClient::connect(s.addr("smtp"));
    c.reply();
    c.cmd("EHLO filler");
    for i in 0..1000 {
        let body = format!(
            "From: Sender {i} <s{i}@remote.test>\r\nTo: alice@example.org\r\nSubject: message {i}\r\nMessage-ID: <m{i}@remote.test>\r\n\r\nbody {i}\r\n"
        );
        c.send(
            format!(
                "MAIL FROM:<s{i}@remote.test>\r\nRCPT TO:<alice@example.org>\r\nBDAT {} LAST\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(body.as_bytes());
        for _ in 0..3 {
            let r = c.reply();
            assert!(r[0].starts_with("250"), "{r:?}");
        }
    }
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 1000);

    let local = s.dir().join("maildir");
    std::fs::create_dir_all(&local).unwrap();
    let cfg = s.dir().join("mbsyncrc");
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount pg\nHost 127.0.0.1\nPort {port}\nUser alice@example.org\nPass secret\nSSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore pg-remote\nAccount pg\n\n\
             MaildirStore pg-local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n\
             Channel pg\nFar :pg-remote:\nNear :pg-local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port = s.addr("imaps").port(),
            cert = s.dir().join("data/tls/cert.pem").display(),
            local = local.display(),
        ),
    )
    .unwrap();

    // Server to local.
    sync(&mbsync, &cfg);
    let inbox = local.join("INBOX");
    assert_eq!(count(&inbox), 1000, "every message pulled");
    assert!(
        local.join("Sent Items").exists() || local.join("Trash").exists(),
        "folders created locally"
    );

    // Local to server: 20 new messages, 10 marked seen, 5 deleted, a new folder.
    for i in 0..20 {
        std::fs::write(
            inbox.join("new").join(format!("1700000000.local{i}.host")),
            format!("From: alice@example.org\r\nSubject: local {i}\r\n\r\nwritten offline {i}\r\n"),
        )
        .unwrap();
    }
    // Unseen messages arrive in new/; a reader moves them to cur/ with ":2,S".
    let mut cur: Vec<_> = ["cur", "new"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(inbox.join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains("local"))
        .collect();
    cur.sort();
    for p in &cur[..10] {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let renamed = if name.contains(":2,") {
            format!("{name}S")
        } else {
            format!("{name}:2,S")
        };
        std::fs::rename(p, inbox.join("cur").join(renamed)).unwrap();
    }
    for p in &cur[10..15] {
        std::fs::remove_file(p).unwrap();
    }
    let projects = local.join("Projects");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(projects.join(d)).unwrap();
    }
    std::fs::write(
        projects.join("new/1700000001.p.host"),
        "Subject: in a new folder\r\n\r\nx\r\n",
    )
    .unwrap();
    sync(&mbsync, &cfg);

    let items = s.items("alice@example.org", "Inbox");
    assert_eq!(items.len(), 1000 + 20 - 5, "additions and deletions pushed");
    let seen = items
        .iter()
        .filter(|i| i["flags"].as_array().unwrap().iter().any(|f| f == "\\Seen"))
        .count();
    assert!(seen >= 10, "flags pushed: {seen} seen");
    assert_eq!(
        s.items("alice@example.org", "Projects").len(),
        1,
        "new folder pushed"
    );

    // And a second round from the server side.
    let late = "Subject: late\r\n\r\nlate one\r\n";
    c.send(
        format!(
            "MAIL FROM:<late@remote.test>\r\nRCPT TO:<alice@example.org>\r\nBDAT {} LAST\r\n{late}",
            late.len()
        )
        .as_bytes(),
    );
    for _ in 0..3 {
        assert!(c.reply()[0].starts_with("250"));
    }
    sync(&mbsync, &cfg);
    assert_eq!(count(&inbox), 1016);
    // A sync with nothing to do changes nothing.
    sync(&mbsync, &cfg);
    assert_eq!(count(&inbox), 1016);
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 1016);
}
