//! The MIME corpus: every message converts without a panic; charset and
//! structure samples decode exactly.
use postgate_mime::parse_message;
use postgate_types::{Importance, ItemKind};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(emls(&p));
        } else if p.extension().is_some_and(|e| e == "eml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn whole_corpus_converts_without_panic() {
    let files = emls(&corpus());
    assert!(files.len() >= 80, "corpus has {} messages", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        // Also every truncation point near the structure, where parsers break.
        let cuts = [
            raw.len(),
            raw.len() / 2,
            raw.len() / 3,
            raw.len().saturating_sub(7),
        ];
        for cut in cuts {
            let bytes = raw[..cut].to_vec();
            if std::panic::catch_unwind(|| parse_message(&bytes)).is_err() {
                failures.push(format!("{} (cut at {cut})", f.display()));
            }
        }
        let m = parse_message(&raw);
        assert_eq!(m.content.kind(), ItemKind::Mail, "{}", f.display());
    }
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
}

#[test]
fn charset_samples_decode_exactly() {
    let dir = corpus().join("charsets");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert!(expected.len() >= 36);
    let mut wrong = Vec::new();
    for (file, want) in expected {
        let raw = std::fs::read(dir.join(file)).unwrap();
        let c = parse_message(&raw).content;
        let subject = c.subject.clone().unwrap_or_default();
        if subject != want["subject"] {
            wrong.push(format!(
                "{file}: subject {subject:?}, want {}",
                want["subject"]
            ));
        }
        let name = c
            .from
            .as_ref()
            .and_then(|f| f.name.clone())
            .unwrap_or_default();
        if name != want["from_name"] {
            wrong.push(format!(
                "{file}: from name {name:?}, want {}",
                want["from_name"]
            ));
        }
        let text = c.text.clone().unwrap_or_default();
        if text.trim_end() != want["text"] {
            wrong.push(format!("{file}: text {text:?}, want {}", want["text"]));
        }
        let names: Vec<String> = c
            .attachments
            .iter()
            .filter_map(|a| a.name.clone())
            .collect();
        let want_names: Vec<String> = want["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        if names != want_names {
            wrong.push(format!(
                "{file}: attachments {names:?}, want {want_names:?}"
            ));
        }
        if c.from.and_then(|f| f.address).as_deref() != Some("sender@example.net") {
            wrong.push(format!("{file}: from address"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn nested_structure() {
    let raw = std::fs::read(corpus().join("structure/nested.eml")).unwrap();
    let c = parse_message(&raw).content;
    assert_eq!(c.subject.as_deref(), Some("Nested structure"));
    assert_eq!(
        c.from.as_ref().unwrap().name.as_deref(),
        Some("Müller, Jörg")
    );
    assert_eq!(c.to.len(), 2);
    assert_eq!(c.to[1].name.as_deref(), Some("Bob B."));
    assert_eq!(c.cc[0].address.as_deref(), Some("team@example.org"));
    assert_eq!(c.date, Some(1_795_617_000));
    assert_eq!(c.message_id.as_deref(), Some("nested-1@example.net"));
    assert_eq!(c.in_reply_to, ["parent@example.net"]);
    assert_eq!(c.references, ["root@example.net", "parent@example.net"]);
    assert_eq!(c.importance, Importance::High);
    // Quoted-printable soft line break joined (RFC 2045 §6.7 rule 5).
    assert_eq!(
        c.text.as_deref(),
        Some("The plain body, with a soft line break and café.")
    );
    assert!(c.html.as_deref().unwrap().contains("<b>html body</b>"));
    let atts: Vec<(&str, &str, bool)> = c
        .attachments
        .iter()
        .map(|a| {
            (
                a.name.as_deref().unwrap(),
                a.content_type.as_str(),
                a.inline,
            )
        })
        .collect();
    assert_eq!(
        atts,
        [
            ("logo.png", "image/png", true),
            ("report.pdf", "application/pdf", false),
            ("Forwarded note.eml", "message/rfc822", false),
        ]
    );
    assert_eq!(
        c.attachments[0].content_id.as_deref(),
        Some("logo@example.net")
    );
    assert_eq!(c.attachments[0].size, 70, "decoded PNG size");
}

#[test]
fn malformed_message_keeps_best_effort_fields() {
    let raw = std::fs::read(corpus().join("structure/malformed-own.eml")).unwrap();
    let c = parse_message(&raw).content;
    assert!(c.subject.unwrap().contains("caf"));
    assert!(c.text.unwrap().starts_with("Broken =ZZ escapes"));
    assert_eq!(c.attachments[0].name.as_deref(), Some("truncated.bin"));
}
