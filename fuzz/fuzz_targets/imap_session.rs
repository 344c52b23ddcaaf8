//! A whole IMAP session: arbitrary bytes from a client to the real IMAP
//! engine (`postgate_imap`, through the listener layer, over TCP on
//! 127.0.0.1) of an in-process post office whose user has a few messages
//! (see `common/session.rs`). The first input byte picks where the session
//! starts: not authenticated, logged in, logged in with INBOX selected, or
//! with QRESYNC and IMAP4rev2 enabled and INBOX selected; the rest is sent
//! as it is, then the client closes its side and reads to the end.
//!
//! Nothing may panic (in any server task), and the session must end once
//! the client has closed. What the server sends must be framed as IMAP
//! (RFC 9051 §2.2.1, §4.3): lines ending in CRLF, literals of the announced
//! length, each response a continuation request, an untagged response or a
//! tagged OK/NO/BAD; until the server agreed to STARTTLS or COMPRESS, after
//! which the bytes are TLS alerts or DEFLATE.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

#[path = "common/session.rs"]
mod session;
use session::{Harness, PASSWORD, USER};

static HARNESS: LazyLock<Harness> =
    LazyLock::new(|| Harness::new(|w| Box::pin(async move { vec![w.imap().await] })));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let login = format!("P1 LOGIN {USER} {PASSWORD}\r\n");
    let prefix = match mode % 4 {
        0 => String::new(),
        1 => login,
        2 => format!("{login}P2 SELECT INBOX\r\n"),
        _ => format!("{login}P2 ENABLE QRESYNC IMAP4rev2\r\nP3 SELECT INBOX\r\n"),
    };
    let mut input = prefix.into_bytes();
    input.extend_from_slice(rest);
    let reply = HARNESS.exchange(0, &input);
    check(&reply);
});

/// Checks the framing of the server's bytes (see the module notes).
fn check(reply: &[u8]) {
    let fail = |why: &str, at: usize| -> ! {
        panic!(
            "{why} at {at} in the reply:\n{}",
            String::from_utf8_lossy(reply)
        )
    };
    let mut pos = 0;
    let mut first = true;
    while pos < reply.len() {
        // One response: a line, and while it ends in a literal
        // announcement, the literal and the rest of the response.
        let start = pos;
        loop {
            let Some(lf) = reply[pos..].iter().position(|&b| b == b'\n') else {
                fail("a response without a line ending", pos)
            };
            let line = &reply[pos..pos + lf + 1];
            pos += lf + 1;
            // RFC 9051 §2.2: lines end in CRLF; §9: TEXT-CHAR and
            // QUOTED-CHAR exclude CR and LF, so there is no other.
            if !line.ends_with(b"\r\n") {
                fail("a bare LF", pos - 1);
            }
            if line[..line.len() - 2].contains(&b'\r') {
                fail("a bare CR", pos - 1);
            }
            match postgate_imap::rewrite::literal_at_end(line) {
                Some(lit) if line.len() > lit.marker_len => {
                    // RFC 9051 §4.3: the announced number of octets follows.
                    if reply.len() - pos < lit.len {
                        fail("a literal shorter than announced", pos);
                    }
                    pos += lit.len;
                }
                _ => break,
            }
        }
        let response = &reply[start..pos];
        // RFC 9051 §7.1.1: the greeting is an untagged OK, PREAUTH or BYE.
        if first
            && !(response.starts_with(b"* OK")
                || response.starts_with(b"* PREAUTH")
                || response.starts_with(b"* BYE"))
        {
            fail("no greeting", start);
        }
        first = false;
        let well_formed = response.starts_with(b"* ")
            || response.starts_with(b"+ ")
            || response == b"+\r\n"
            || tagged(response);
        if !well_formed {
            fail("not an IMAP response", start);
        }
        // After these the stream is TLS or DEFLATE (RFC 9051 §6.2.1, RFC 4978 §3).
        if tagged(response)
            && (response.ends_with(b" OK Begin TLS negotiation now\r\n")
                || response.ends_with(b" OK DEFLATE active\r\n"))
        {
            return;
        }
    }
}

/// `tag SP ("OK" / "NO" / "BAD") SP` (RFC 9051 §7.1 response-tagged).
fn tagged(response: &[u8]) -> bool {
    let Some(sp) = response.iter().position(|&b| b == b' ') else {
        return false;
    };
    let tag = &response[..sp];
    let rest = &response[sp + 1..];
    postgate_imap::rewrite::tag_of(response) == std::str::from_utf8(tag).ok()
        && (rest.starts_with(b"OK ") || rest.starts_with(b"NO ") || rest.starts_with(b"BAD "))
}
