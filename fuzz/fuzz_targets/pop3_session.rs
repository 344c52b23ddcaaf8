//! A whole POP3 session: arbitrary bytes from a client to the real POP3
//! engine (`postgate_pop3`, through the listener layer, over TCP on
//! 127.0.0.1) of an in-process post office whose user has a few messages
//! (see `common/session.rs`). The first input byte picks whether the session
//! starts logged in (USER/PASS sent first, RFC 1939 §7) or not; the rest is
//! sent as it is, then the client closes its side and reads to the end.
//!
//! Nothing may panic (in any server task), and the session must end once
//! the client has closed. What the server sends must be POP3 (RFC 1939 §3):
//! a greeting "+OK", and lines ending in CRLF, until the server agreed to
//! STLS (RFC 2595 §4), after which the bytes are TLS alerts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

#[path = "common/session.rs"]
mod session;
use session::{Harness, PASSWORD, USER, lines};

static HARNESS: LazyLock<Harness> =
    LazyLock::new(|| Harness::new(|w| Box::pin(async move { vec![w.pop3().await] })));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = if mode % 2 == 1 {
        format!("USER {USER}\r\nPASS {PASSWORD}\r\n").into_bytes()
    } else {
        Vec::new()
    };
    input.extend_from_slice(rest);
    let reply = HARNESS.exchange(0, &input);
    check(&reply);
});

fn check(reply: &[u8]) {
    let fail =
        |why: &str| -> ! { panic!("{why} in the reply:\n{}", String::from_utf8_lossy(reply)) };
    // RFC 1939 §4: the greeting is a positive response.
    if !reply.starts_with(b"+OK ") {
        fail("no +OK greeting");
    }
    for line in lines(reply) {
        // RFC 1939 §3: responses and multi-line data are CRLF-terminated
        // lines (the world's messages are stored with CRLF).
        if !line.ends_with(b"\r\n") {
            fail("a line not ended by CRLF");
        }
        // RFC 2595 §4: after this the stream is TLS.
        if line == b"+OK Begin TLS negotiation\r\n" {
            return;
        }
    }
}
