//! `postgate store copy`: an embedded post office moved into PostgreSQL
//! keeps its UIDVALIDITYs and UIDs, so an IMAP client that synced before
//! the move (mbsync, Debian's isync) finds nothing to do after it.
use postgate_testkit::{Server, pg_database, pg_store_section, smtp_fill, tool};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const MESSAGES: usize = 1000;

fn mbsyncrc(s: &Server, local: &Path) -> String {
    format!(
        "IMAPAccount pg\nHost 127.0.0.1\nPort {port}\nUser alice@example.org\nPass secret\nSSLType IMAPS\nCertificateFile {cert}\n\n\
         IMAPStore pg-remote\nAccount pg\n\n\
         MaildirStore pg-local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n\
         Channel pg\nFar :pg-remote:\nNear :pg-local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
        port = s.addr("imaps").port(),
        cert = s.dir().join("data/tls/cert.pem").display(),
        local = local.display(),
    )
}

/// Runs mbsync; its whole output.
fn sync(mbsync: &Path, cfg: &Path) -> String {
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
    text
}

/// Every message file name under the local maildir (they carry the UID
/// and the flags mbsync recorded), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .parent()
                .is_some_and(|d| d.ends_with("cur") || d.ends_with("new"))
            {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

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

#[test]
fn copied_post_office_needs_no_resync() {
    let Some(mbsync) = tool("mbsync") else { return };
    let Some(url) = pg_database() else { return };
    let mut before = Server::start(Path::new(BIN), "[store]\nbackend = \"embedded\"\n");
    before.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    before.set_password("alice@example.org", "secret");
    before.cli(&["admin", "grant", "alice@example.org"]);
    before.cli(&["dkim", "generate", "example.org", "--selector", "r1"]);
    before.cli(&[
        "dkim",
        "generate",
        "example.org",
        "--selector",
        "e1",
        "--algorithm",
        "ed25519",
    ]);
    smtp_fill(before.addr("smtp"), "alice@example.org", MESSAGES);
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("maildir");
    std::fs::create_dir_all(&local).unwrap();
    let cfg = work.path().join("mbsyncrc");
    std::fs::write(&cfg, mbsyncrc(&before, &local)).unwrap();
    sync(&mbsync, &cfg);
    assert_eq!(count(&local.join("INBOX")), MESSAGES);
    // A few flags and deletions from the client, so that modseqs and
    // expunge tombstones are there to carry over.
    let mut names: Vec<_> = std::fs::read_dir(local.join("INBOX/new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in &names[..10] {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        std::fs::rename(p, local.join("INBOX/cur").join(format!("{name}:2,S"))).unwrap();
    }
    for p in &names[10..15] {
        std::fs::remove_file(p).unwrap();
    }
    sync(&mbsync, &cfg);
    let validity = before.cli(&["folder", "list", "alice@example.org", "--json"]);
    let dkim = before.cli(&["dkim", "list", "--json"]);
    before.terminate();

    // The move.
    let out = before.cli_output(&["store", "copy", "--to", &url, "--quiet"], None);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "store copy failed: {text}");
    assert!(text.contains("item:"), "{text}");
    // A second copy into the same, now complete, database is refused.
    let again = before.cli_output(&["store", "copy", "--to", &url, "--quiet"], None);
    assert!(
        !again.status.success(),
        "a copy into a non-empty database was not refused"
    );

    let after = Server::start(Path::new(BIN), &pg_store_section(&url, "node-a"));
    assert_eq!(
        after.cli(&["folder", "list", "alice@example.org", "--json"]),
        validity,
        "folders, counts, UIDVALIDITYs, UIDNEXTs and modseqs as before"
    );
    assert_eq!(
        after.cli(&["admin", "list"]),
        "alice@example.org\n",
        "console administrators as before"
    );
    assert_eq!(
        after.cli(&["dkim", "list", "--json"]),
        dkim,
        "DKIM keys as before (the records are made from the copied private keys)"
    );
    std::fs::write(&cfg, mbsyncrc(&after, &local)).unwrap();
    // mbsync refuses a box whose UIDVALIDITY changed ("error", caught by
    // sync()); with the same UIDVALIDITYs and UIDs it has nothing to do:
    // not a file pulled, removed or renamed (names carry UIDs and flags),
    // nothing pushed.
    let local_before = files(&local);
    assert_eq!(count(&local.join("INBOX")), MESSAGES - 5);
    sync(&mbsync, &cfg);
    assert_eq!(
        files(&local),
        local_before,
        "mbsync found work to do after the copy"
    );
    assert_eq!(
        after.items("alice@example.org", "INBOX").len(),
        MESSAGES - 5
    );
    // And the copy is a working store: new mail gets the next UID.
    smtp_fill(after.addr("smtp"), "alice@example.org", 1);
    sync(&mbsync, &cfg);
    let now = files(&local);
    assert_eq!(now.len(), local_before.len() + 1, "the new message pulled");
    let new: Vec<&String> = now.iter().filter(|f| !local_before.contains(f)).collect();
    assert!(
        new[0].contains(&format!(",U={}", MESSAGES + 1)),
        "the new message has the next UID: {new:?}"
    );
}
