//! Every capability the IMAP engine advertises has a wire test.
//!
//! The capabilities are read off the wire (before login on a cleartext
//! port with plaintext logins refused and allowed, and after login), and for
//! each one some test in `tests/wire_*.rs` must say it covers it: a line
//! `// covers: CAP …` within the three lines above a `#[tokio::test]`. A
//! capability nobody covers, or a `covers:` line that names one the engine
//! no longer advertises, fails this test.
use postgate_testkit::world::{Wire, World};
use std::collections::{BTreeMap, BTreeSet};

/// The capability tokens of a CAPABILITY reply, `APPENDLIMIT=n` as
/// `APPENDLIMIT`.
fn tokens(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip(2)
        .map(|t| match t.split_once('=') {
            Some(("APPENDLIMIT", _)) => "APPENDLIMIT".to_string(),
            _ => t.to_string(),
        })
        .collect()
}

async fn advertised() -> BTreeSet<String> {
    let mut caps = BTreeSet::new();
    for allow in [false, true] {
        let w = World::with_config(&format!("[imap]\nallow_plaintext = {allow}\n")).await;
        w.user("caps@test.example", "pw").await;
        let addr = w.imap().await;
        let mut c = Wire::connect(addr).await;
        c.line().await;
        caps.extend(tokens(c.ok("CAPABILITY").await.one("* CAPABILITY ")));
        if allow {
            c.ok("LOGIN caps@test.example pw").await;
            caps.extend(tokens(c.ok("CAPABILITY").await.one("* CAPABILITY ")));
        }
    }
    caps
}

/// Capability → the tests (file:function) that cover it.
fn covered() -> BTreeMap<String, Vec<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wire_") && n.ends_with(".rs"))
        })
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(list) = l.trim().strip_prefix("// covers:") else {
                continue;
            };
            // The test this marker belongs to: a #[tokio::test] within three
            // lines, then its `async fn`.
            let Some(attr) = (i + 1..(i + 4).min(lines.len()))
                .find(|&j| lines[j].trim().starts_with("#[tokio::test"))
            else {
                panic!(
                    "{}:{}: a covers: line not above a #[tokio::test]",
                    path.display(),
                    i + 1
                );
            };
            let name = lines[attr + 1..]
                .iter()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("async fn ")
                        .and_then(|r| r.split('(').next())
                })
                .unwrap_or("?");
            let file = path.file_name().unwrap().to_string_lossy();
            for cap in list.split_whitespace() {
                map.entry(cap.to_string())
                    .or_default()
                    .push(format!("{file}:{name}"));
            }
        }
    }
    map
}

#[tokio::test]
async fn every_advertised_capability_has_a_wire_test() {
    let caps = advertised().await;
    for must in [
        "IMAP4rev1",
        "IDLE",
        "CONDSTORE",
        "QRESYNC",
        "COMPRESS=DEFLATE",
    ] {
        assert!(
            caps.contains(must),
            "{must} not read off the wire: {caps:?}"
        );
    }
    let covered = covered();
    let missing: Vec<_> = caps.iter().filter(|c| !covered.contains_key(*c)).collect();
    assert!(
        missing.is_empty(),
        "advertised without a wire test (add `// covers: CAP` above one): {missing:?}"
    );
    let stale: Vec<_> = covered.keys().filter(|c| !caps.contains(*c)).collect();
    assert!(
        stale.is_empty(),
        "covers: lines name capabilities the engine does not advertise: {stale:?}"
    );
}
