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
