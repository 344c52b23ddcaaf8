//! Inputs the `mime` fuzz target (fuzz/fuzz_targets/mime.rs) found, kept as
//! regression tests: each converts without a panic, alone and quoted in a
//! DSN as delivery builds one.
use postgate_mime::{dsn, parse_message};
use postgate_types::ItemKind;
use std::path::Path;

fn input(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzzed")
            .join(name),
    )
    .unwrap()
}

/// A DSN quoting `original` in full (RFC 3464 RET=FULL), as delivery sends
/// one for NOTIFY=SUCCESS.
fn report(original: &[u8]) -> Vec<u8> {
    dsn::build(
        &dsn::Report {
            reporting_mta: "mx.test.example",
            to: "sender@test.example",
            env_id: None,
            arrival: 0,
            recipients: vec![dsn::Recipient {
                address: "rcpt@test.example".into(),
                original: None,
                action: dsn::Action::Delivered,
                status: "2.0.0".into(),
                remote_mta: None,
                diagnostic: None,
                last_attempt: None,
                will_retry_until: None,
            }],
            original,
            return_full: true,
        },
        1,
    )
}

/// message/rfc822 in message/rfc822 with a broken type: mail-parser 0.11.9
/// loses the part it is in (a `debug_assert!` "Invalid part ID, could not
/// find multipart" in debug builds, message.rs:485).
#[test]
fn nested_rfc822_part_id() {
    let raw = input("nested-rfc822-part-id.eml");
    assert_eq!(parse_message(&raw).content.kind(), ItemKind::Mail);
    let dsn = report(&raw);
    let m = parse_message(&dsn);
    assert_eq!(m.content.kind(), ItemKind::Mail);
    // The header is still read: sender, and the report type (RFC 6522 §3),
    // so that no iMIP in it is applied.
    assert!(m.content.from.is_some(), "the DSN's From is read");
    assert!(m.report, "a DSN is a multipart/report");
}

/// A part whose Content-Type starts with a byte that is no character:
/// converted, its type reads back with U+FFFD in it, and composing a message
/// with it as an attachment (as the client API and the fuzz target do) wrote
/// that 8-bit type into the header. `build_message` writes
/// application/octet-stream for anything that is not a MIME type (RFC 2045
/// §5.1), so what it builds stays 7-bit (the fuzz target's check).
#[test]
fn attachment_type_not_a_mime_type() {
    use postgate_mime::build::{NewAttachment, NewMessage, build_message};
    let raw = input("attachment-8bit-type.eml");
    let parsed = parse_message(&raw);
    let types: Vec<String> = parsed
        .content
        .attachments
        .iter()
        .map(|a| a.content_type.clone())
        .collect();
    assert!(types.iter().any(|t| !t.is_ascii()), "{types:?}");
    let attachment = |content_type: &str| NewAttachment {
        filename: "a.txt".into(),
        content_type: content_type.into(),
        data: b"data".to_vec(),
    };
    let mut attachments: Vec<NewAttachment> = types.iter().map(|t| attachment(t)).collect();
    attachments.push(attachment("text/plain; charset=\"utf-8\""));
    attachments.push(attachment("text/plain\r\nBcc: x@y"));
    attachments.push(attachment("image/"));
    let built = build_message(&NewMessage {
        from: ("A".into(), "a@test.example".into()),
        to: vec![(String::new(), "b@test.example".into())],
        subject: "s".into(),
        text: Some("t".into()),
        attachments,
        message_id: "m@test.example".into(),
        ..Default::default()
    });
    assert!(built.is_ascii(), "{}", String::from_utf8_lossy(&built));
    let text = String::from_utf8(built).unwrap();
    // A valid type with parameters is kept; the others are octet streams.
    assert!(
        text.contains("Content-Type: text/plain; charset=\"utf-8\""),
        "{text}"
    );
    assert_eq!(
        text.matches("application/octet-stream").count(),
        types.iter().filter(|t| !t.is_ascii()).count() + 2,
        "{text}"
    );
    assert!(!text.contains("\r\nBcc:"), "{text}");
}

/// A Message-ID with bytes no msg-id may hold (here U+FFFD from a
/// converted message, as the mime fuzz target found, and an angle
/// bracket): written %XX, so that the header stays 7-bit and whole.
#[test]
fn message_id_not_a_msg_id() {
    use postgate_mime::build::{NewMessage, build_message};
    let built = build_message(&NewMessage {
        from: ("A".into(), "a@test.example".into()),
        subject: "s".into(),
        text: Some("t".into()),
        message_id: "\u{fffd}x>y%@test.example".into(),
        ..Default::default()
    });
    let text = String::from_utf8(built).unwrap();
    assert!(
        text.contains("Message-ID: <%EF%BF%BDx%3Ey%25@test.example>\r\n"),
        "{text}"
    );
    let plain = build_message(&NewMessage {
        message_id: "1.2@test.example".into(),
        ..Default::default()
    });
    assert!(
        String::from_utf8(plain)
            .unwrap()
            .contains("Message-ID: <1.2@test.example>\r\n")
    );
    // Too long for one line once written (found by the fuzz target: 336
    // U+FFFD, each %EF%BF%BD): a digest of it, the same for the same ID.
    let long = "\u{fffd}".repeat(336);
    let build = |id: &str| {
        String::from_utf8(build_message(&NewMessage {
            message_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
    };
    let (a, b) = (build(&long), build(&long));
    let line = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Message-ID:"))
            .unwrap()
            .to_string()
    };
    assert!(line(&a).ends_with("@long-id.invalid>"), "{}", line(&a));
    assert_eq!(line(&a), line(&b));
    assert_ne!(line(&a), line(&build(&"x".repeat(1200))));
    assert!(a.lines().all(|l| l.len() <= 998));
}
