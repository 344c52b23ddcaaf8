//! The POP3 wire format (`postgate_pop3_proto`): every line of the input
//! parsed as a command, and the input as a message served by RETR and TOP.
//! Beyond "no panic": a multi-line reply ends at its terminating line and
//! gives back the message once dot-unstuffed (RFC 1939 §3), and TOP returns
//! a prefix of the message that grows with n and is the whole message for a
//! large n (RFC 1939 §7).
#![no_main]
use libfuzzer_sys::fuzz_target;
use postgate_pop3_proto::{parse, top, write_multiline};

fuzz_target!(|data: &[u8]| {
    for line in data.split_inclusive(|&b| b == b'\n').take(64) {
        if let Ok(c) = parse(line) {
            let _ = c.name();
        }
    }

    let mut out = Vec::new();
    write_multiline(&mut out, data);
    check_multiline(&out, data);

    let n = u32::from(data.first().copied().unwrap_or(0) % 8);
    let short = top(data, n);
    let longer = top(data, n + 1);
    assert!(data.starts_with(short), "TOP {n} is not a prefix");
    assert!(
        longer.starts_with(short),
        "TOP {} shorter than TOP {n}",
        n + 1
    );
    // RFC 1939 §7: asking for more lines than there are gives the whole message.
    assert_eq!(top(data, u32::MAX), data, "TOP with a huge n");
    let mut out = Vec::new();
    write_multiline(&mut out, short);
    check_multiline(&out, short);
});

/// Reads `out` as a client reads a multi-line reply (RFC 1939 §3): lines up
/// to LF, the first ".\r\n" line ends it, a leading "." of any other line is
/// removed. The result must be `body`, with CRLF added if it did not end
/// with a line break, and nothing may follow the terminator.
fn check_multiline(out: &[u8], body: &[u8]) {
    let mut got = Vec::new();
    let mut rest = out;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        assert!(!line.is_empty(), "multi-line reply without terminator");
        if line == b".\r\n" {
            break;
        }
        got.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert!(rest.is_empty(), "bytes after the terminating line");
    let mut want = body.to_vec();
    if !want.is_empty() && !want.ends_with(b"\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(got, want, "dot-unstuffed reply differs from the message");
}
