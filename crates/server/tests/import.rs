//! `postgate import mbox|maildir|imap` through the real binary, each
//! imported message checked over IMAP (Python's imaplib) for its bytes,
//! flags, keywords and internal date; interrupted imports resumed without
//! duplicates or gaps.
use postgate_testkit::{Server, python};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const TOOL: &str = include_str!("py/mailbox_tool.py");

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Dumped {
    uid: u32,
    flags: Vec<String>,
    internaldate: i64,
    size: u64,
    sha256: String,
    message_id: String,
}

/// What a message should look like once imported.
#[derive(Debug)]
struct Expected {
    raw: Vec<u8>,
    flags: Vec<String>,
    date: i64,
}

impl Expected {
    fn new(raw: &[u8], flags: &[&str], date: i64) -> Expected {
        let mut flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        flags.sort();
        Expected {
            raw: raw.to_vec(),
            flags,
            date,
        }
    }
}

fn sha(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

fn server() -> Server {
    let s = Server::start(Path::new(BIN), "");
    s.populate(
        "example.org",
        &[
            ("alice@example.org", "Alice Smith"),
            ("bob@example.org", "Bob Jones"),
        ],
    );
    s.set_password("alice@example.org", "secret");
    s.set_password("bob@example.org", "secret");
    s
}

/// Every mailbox of `user`, read over IMAPS; `None` without python3.
fn dump(s: &Server, user: &str) -> Option<BTreeMap<String, Vec<Dumped>>> {
    let args = [
        "dump".to_string(),
        "127.0.0.1".into(),
        s.addr("imaps").port().to_string(),
        user.into(),
        "secret".into(),
    ];
    let (ok, out, err) = python(TOOL, &args)?;
    assert!(ok, "dump {user}: {err}");
    Some(serde_json::from_str(&out).expect("dump JSON"))
}

/// A folder holds exactly `expected`, in UID order, message by message.
fn check_folder(dumped: &BTreeMap<String, Vec<Dumped>>, folder: &str, expected: &[Expected]) {
    let got = dumped
        .get(folder)
        .unwrap_or_else(|| panic!("no mailbox {folder}: {:?}", dumped.keys()));
    assert_eq!(got.len(), expected.len(), "{folder}: {got:#?}");
    let mut last_uid = 0;
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(g.uid > last_uid, "{folder}: UIDs ascending");
        last_uid = g.uid;
        assert_eq!(
            (g.size, g.sha256.as_str()),
            (e.raw.len() as u64, sha(&e.raw).as_str()),
            "{folder} #{i}: bytes differ; expected:\n{}",
            String::from_utf8_lossy(&e.raw[..e.raw.len().min(600)])
        );
        assert_eq!(g.flags, e.flags, "{folder} #{i}: flags");
        assert_eq!(g.internaldate, e.date, "{folder} #{i}: internal date");
    }
}

/// Mailboxes other than `except` hold nothing.
fn others_empty(dumped: &BTreeMap<String, Vec<Dumped>>, except: &[&str]) {
    for (name, msgs) in dumped {
        if !except.contains(&name.as_str()) {
            assert!(msgs.is_empty(), "{name} should be empty: {msgs:#?}");
        }
    }
}

fn run_import(s: &Server, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    s.cli_output(&all, stdin)
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The 1 MB body: lines of 100 bytes.
fn big_body(lf: &str) -> String {
    (0..10_486)
        .map(|i| format!("line {i:06} {}{lf}", "x".repeat(87)))
        .collect()
}

#[test]
fn mbox_tricky_cases_message_by_message() {
    let s = server();
    let work = tempfile::tempdir().unwrap();
    let big = big_body("\n");
    let mbox = format!(
        "From alice@example.net Mon Jan  6 10:00:00 2020\n\
         Status: RO\n\
         X-Status: AF\n\
         X-Keywords: $Label1 Work\n\
         From: Alice <alice@example.net>\n\
         Subject: tricky one\n\
         Message-ID: <m1@test>\n\
         \n\
         >From the start of a line, quoted once\n\
         >>From quoted twice\n\
         From here on, a bare From line in the body (mboxo writers leave them).\n\
         \n\
         From the blank-line side too, but with no date\n\
         \n\
         From bob@example.net Tue Jan  7 11:30:00 2020\n\
         X-Status: T\n\
         Subject: second\n\
         Message-ID: <m2@test>\n\
         \n\
         short\n\
         \n\
         From carol@example.net Wed Jan  8 12:00:00 2020\n\
         Status: O\n\
         Subject: big\n\
         Message-ID: <m3@test>\n\
         \n\
         {big}\n\
         From dave@example.net Thu Jan  9 13:00:00 2020\n\
         Status: R\n\
         X-Keywords: NonJunk, $Forwarded\n\
         Subject: last\n\
         Message-ID: <m4@test>\n\
         \n\
         no final newline"
    );
    let file = work.path().join("tricky.mbox");
    std::fs::write(&file, &mbox).unwrap();
    let file = file.to_str().unwrap();
    let out = ok(&run_import(
        &s,
        &["mbox", file, "alice@example.org", "--folder", "Archive/Old"],
        None,
    ));
    assert!(out.contains("imported 4 messages"), "{out}");
    let expected = [
        Expected::new(
            b"From: Alice <alice@example.net>\r\nSubject: tricky one\r\nMessage-ID: <m1@test>\r\n\r\n\
              From the start of a line, quoted once\r\n>From quoted twice\r\n\
              From here on, a bare From line in the body (mboxo writers leave them).\r\n\r\n\
              From the blank-line side too, but with no date\r\n",
            &["\\Seen", "\\Answered", "\\Flagged", "$Label1", "Work"],
            utc(2020, 1, 6, 10, 0),
        ),
        Expected::new(
            b"Subject: second\r\nMessage-ID: <m2@test>\r\n\r\nshort\r\n",
            &["\\Draft"],
            utc(2020, 1, 7, 11, 30),
        ),
        Expected::new(
            format!(
                "Subject: big\r\nMessage-ID: <m3@test>\r\n\r\n{}",
                big_body("\r\n")
            )
            .as_bytes(),
            &[],
            utc(2020, 1, 8, 12, 0),
        ),
        Expected::new(
            b"Subject: last\r\nMessage-ID: <m4@test>\r\n\r\nno final newline",
            &["\\Seen", "NonJunk", "$Forwarded"],
            utc(2020, 1, 9, 13, 0),
        ),
    ];
    assert!(expected[2].raw.len() > 1 << 20);
    let Some(d) = dump(&s, "alice@example.org") else {
        return;
    };
    check_folder(&d, "Archive/Old", &expected);
    others_empty(&d, &["Archive/Old"]);
    // Running it again finds nothing new.
    let out = ok(&run_import(
        &s,
        &["mbox", file, "alice@example.org", "--folder", "Archive/Old"],
        None,
    ));
    assert!(out.contains("imported 0 messages"), "{out}");
    assert_eq!(s.items("alice@example.org", "Archive/Old").len(), 4);
}

fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `n` small messages in mboxrd form, subject "gen i".
fn generated_mbox(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "From gen@example.net Sat Feb  1 00:{:02}:{:02} 2020\nSubject: gen {i}\nMessage-ID: <{i}@gen>\n\nbody {i}\n>From quoted {i}\n\n",
                (i / 60) % 60,
                i % 60
            )
        })
        .collect()
}

/// The subjects of a folder's items, in UID order.
fn subjects(s: &Server, user: &str, folder: &str) -> Vec<String> {
    s.items(user, folder)
        .iter()
        .map(|i| i["subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn interrupted_mbox_import_resumes_without_duplicates() {
    const N: usize = 2000;
    let s = server();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("gen.mbox");
    std::fs::write(&file, generated_mbox(N)).unwrap();
    let state = work.path().join("state.json");
    let (file, state_s) = (file.to_str().unwrap(), state.to_str().unwrap());
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "import",
            "mbox",
            file,
            "bob@example.org",
            "--folder",
            "Gen",
            "--state",
            state_s,
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // 1. Stopped after the third batch of 40 was committed but before the
    // state file recorded it: the worst moment.
    let out = s.cli_output(
        &argv(&args(&["--batch", "40", "--stop-after", "100"])),
        None,
    );
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert_eq!(s.items("bob@example.org", "Gen").len(), 120);
    // 2. Killed (SIGKILL) at some point while committing batches of 5.
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(s.dir().join("postgate.toml"))
        .args(&args(&["--batch", "5"])[..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let imported = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["imported"].as_u64())
            .unwrap_or(0);
        if imported >= 600 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = s.items("bob@example.org", "Gen").len();
    assert!((600..N).contains(&partial), "{partial} after the kill");
    // 3. Resumed to the end: every message exactly once, in file order.
    let out = s.cli_output(&argv(&args(&[])), None);
    let text = ok(&out);
    assert!(text.contains(&format!("{N} in all")), "{text}");
    let got = subjects(&s, "bob@example.org", "Gen");
    let want: Vec<String> = (0..N).map(|i| format!("gen {i}")).collect();
    if let Some(i) = (0..N.max(got.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{} messages; from #{i} on: {:?}, expected {:?}",
            got.len(),
            &got[i..got.len().min(i + 5)],
            &want[i.min(N)..N.min(i + 5)]
        );
    }
    // A file that changed under the state file is refused, not mixed in.
    std::fs::write(file, generated_mbox(N + 1).replacen("gen 0", "GEN 0", 1)).unwrap();
    let out = s.cli_output(&argv(&args(&[])), None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("changed since"),
        "{out:?}"
    );
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn maildir_tree_with_subfolders_flags_and_keywords() {
    let s = server();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("Maildir");
    for d in [
        "cur",
        "new",
        "tmp",
        ".Work/cur",
        ".Work/new",
        ".Work/tmp",
        ".Work.Projects/cur",
        ".&AMk-t&AOk-/new",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("dovecot-keywords"), "0 $Label1\n1 Work\n").unwrap();
    std::fs::write(root.join(".Work/dovecot-keywords"), "0 Urgent\n").unwrap();
    std::fs::write(root.join(".Work/maildirfolder"), "").unwrap();
    std::fs::write(
        root.join("tmp/1577869999.M9P9.host"),
        "Subject: not yet\n\nx\n",
    )
    .unwrap();
    // (path, flags, mtime); file i says "Subject: m{i}".
    let files: [(&str, &[&str], u64); 6] = [
        (
            "cur/1577869200.M1P1.host,S=40:2,S",
            &["\\Seen"],
            1_600_000_001,
        ),
        (
            "cur/1577869300.M2P1.host:2,FRa",
            &["\\Flagged", "\\Answered", "$Label1"],
            1_600_000_002,
        ),
        ("new/1577869400.M3P1.host", &[], 1_600_000_003),
        (
            ".Work/cur/1577869500.M4P1.host:2,STa",
            &["\\Seen", "\\Deleted", "Urgent"],
            1_600_000_004,
        ),
        (
            ".Work.Projects/cur/1577869600.M5P1.host:2,DP",
            &["\\Draft"],
            1_600_000_005,
        ),
        (".&AMk-t&AOk-/new/1577869700.M6P1.host", &[], 1_600_000_006),
    ];
    let mut expected: Vec<Expected> = Vec::new();
    for (i, (path, flags, mtime)) in files.iter().enumerate() {
        let p = root.join(path);
        let body = format!("Subject: m{i}\nMessage-ID: <{i}@maildir>\n\nline one\nline two\n");
        std::fs::write(&p, &body).unwrap();
        set_mtime(&p, *mtime);
        expected.push(Expected::new(
            body.replace('\n', "\r\n").as_bytes(),
            flags,
            *mtime as i64,
        ));
    }
    let state = work.path().join("state.json");
    let base = [
        "maildir",
        root.to_str().unwrap(),
        "alice@example.org",
        "--state",
        state.to_str().unwrap(),
    ];
    // Interrupted after two messages (the worst moment), then resumed.
    let mut first = base.to_vec();
    first.extend(["--batch", "1", "--stop-after", "2"]);
    let out = run_import(&s, &first, None);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let out = ok(&run_import(&s, &base, None));
    assert!(out.contains("6 in all"), "{out}");
    let Some(d) = dump(&s, "alice@example.org") else {
        return;
    };
    check_folder(&d, "INBOX", &expected[0..3]);
    check_folder(&d, "Work", &expected[3..4]);
    check_folder(&d, "Work/Projects", &expected[4..5]);
    // RFC 3501 §5.1.3: "Été" on the wire.
    check_folder(&d, "&AMk-t&AOk-", &expected[5..6]);
    others_empty(&d, &["INBOX", "Work", "Work/Projects", "&AMk-t&AOk-"]);
}

/// Fills `user`'s account on `s` over IMAP APPEND; `spec`: (mailbox,
/// flags, date, raw).
fn fill(s: &Server, user: &str, spec: &[(&str, Vec<&str>, i64, Vec<u8>)]) -> bool {
    use base64::Engine;
    let json: Vec<serde_json::Value> = spec
        .iter()
        .map(|(mb, flags, date, raw)| {
            serde_json::json!({
                "mailbox": mb,
                "flags": flags,
                "date": date,
                "raw_b64": base64::engine::general_purpose::STANDARD.encode(raw),
            })
        })
        .collect();
    let f = s.dir().join("fill.json");
    std::fs::write(&f, serde_json::to_vec(&json).unwrap()).unwrap();
    let args = [
        "fill".to_string(),
        "127.0.0.1".into(),
        s.addr("imaps").port().to_string(),
        user.into(),
        "secret".into(),
        f.display().to_string(),
    ];
    let Some((ok, _, err)) = python(TOOL, &args) else {
        return false;
    };
    assert!(ok, "fill: {err}");
    true
}

#[test]
fn imap_import_from_another_postgate() {
    let source = server();
    let target = server();
    let msg = |i: usize, extra: &str| -> Vec<u8> {
        format!(
            "From: S <s@example.net>\r\nSubject: imap {i}\r\nMessage-ID: <{i}@imap>\r\n\r\nbody {i}\r\n{extra}"
        )
        .into_bytes()
    };
    let big = big_body("\r\n");
    let spec: Vec<(&str, Vec<&str>, i64, Vec<u8>)> = vec![
        ("INBOX", vec!["\\Seen"], utc(2019, 3, 1, 8, 0), msg(0, "")),
        (
            "INBOX",
            vec!["\\Answered", "\\Flagged", "$Label1"],
            utc(2019, 3, 2, 9, 15),
            msg(1, ""),
        ),
        ("INBOX", vec![], utc(2019, 3, 3, 10, 30), msg(2, &big)),
        ("Projects", vec!["Work"], utc(2018, 1, 1, 0, 0), msg(3, "")),
        (
            "Projects/2026",
            vec!["\\Draft", "Work", "Later"],
            utc(2017, 6, 1, 12, 0),
            msg(4, ""),
        ),
        (
            "Projects/2026",
            vec!["\\Deleted"],
            utc(2017, 6, 2, 12, 0),
            msg(5, ""),
        ),
        (
            "Sent Items",
            vec!["\\Seen"],
            utc(2016, 5, 5, 5, 5),
            msg(6, ""),
        ),
    ];
    if !fill(&source, "alice@example.org", &spec) {
        return;
    }
    let Some(want) = dump(&source, "alice@example.org") else {
        return;
    };
    let imaps = format!(
        "imaps://alice@example.org@127.0.0.1:{}",
        source.addr("imaps").port()
    );
    // A self-signed certificate is refused without --insecure.
    let out = run_import(
        &target,
        &["imap", "--from", &imaps, "alice@example.org", "--quiet"],
        Some("secret\n"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--insecure"),
        "{out:?}"
    );
    // Over IMAPS, interrupted after 3 messages (batches of 2), resumed.
    let state = target.dir().join("imap-state.json");
    let args = [
        "imap",
        "--from",
        &imaps,
        "alice@example.org",
        "--insecure",
        "--quiet",
        "--state",
        state.to_str().unwrap(),
    ];
    let mut first = args.to_vec();
    first.extend(["--batch", "2", "--stop-after", "3"]);
    let out = run_import(&target, &first, Some("secret\n"));
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let text = ok(&run_import(&target, &args, Some("secret\n")));
    assert!(text.contains("7 in all"), "{text}");
    // Over STARTTLS into bob, in one go.
    let starttls = format!(
        "imap://alice@example.org@127.0.0.1:{}",
        source.addr("imap").port()
    );
    ok(&run_import(
        &target,
        &[
            "imap",
            "--from",
            &starttls,
            "bob@example.org",
            "--insecure",
            "--quiet",
        ],
        Some("secret\n"),
    ));
    for user in ["alice@example.org", "bob@example.org"] {
        let Some(got) = dump(&target, user) else {
            return;
        };
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{user}: mailboxes"
        );
        for (mailbox, msgs) in &want {
            let mine = &got[mailbox];
            assert_eq!(mine.len(), msgs.len(), "{user} {mailbox}");
            for (a, b) in msgs.iter().zip(mine) {
                // Bytes, flags and keywords, internal date; UIDs are ours.
                assert_eq!(
                    (&a.sha256, a.size, &a.flags, a.internaldate, &a.message_id),
                    (&b.sha256, b.size, &b.flags, b.internaldate, &b.message_id),
                    "{user} {mailbox}"
                );
            }
        }
        assert_eq!(got["INBOX"].len(), 3);
        assert_eq!(got["Projects/2026"].len(), 2);
    }
    // Nothing new at the source: a re-run imports nothing.
    let text = ok(&run_import(&target, &args, Some("secret\n")));
    assert!(text.contains("imported 0 messages"), "{text}");
}
