//! A whole SMTP session: arbitrary bytes from a client to the real SMTP
//! engine (`postgate_smtp`, through the listener layer, over TCP on
//! 127.0.0.1) of an in-process post office with one user (see
//! `common/session.rs`), on the inbound port ("smtp") or the submission port
//! ("submission", RFC 6409), chosen by the first input byte, which also
//! picks a prefix: nothing, EHLO, EHLO with a local recipient (inbound) or
//! EHLO with AUTH PLAIN (submission), then MAIL FROM too. The rest (DATA,
//! BDAT, RSET, AUTH, STARTTLS, …) is sent as it is, then the client closes
//! its side and reads to the end. The engine's resolver points at a closed
//! local port: nothing leaves the machine.
//!
//! Nothing may panic (in any server task), and the session must end once
//! the client has closed. Every reply line must be a three-digit code, then
//! SP or "-" (the same code on every line of a reply) or nothing, ended by
//! CRLF with no other CR or LF (RFC 5321 §4.2, §2.3.8), until the server
//! agreed to STARTTLS (RFC 3207 §4), after which the bytes are TLS alerts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

#[path = "common/session.rs"]
mod session;
use session::{Harness, PASSWORD, USER, lines};

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    Harness::new(|w| {
        Box::pin(async move {
            // As World::smtp, but with a resolver that asks 127.0.0.1:9
            // (discard, nothing listening), never the system's.
            let dns = postgate_dns::Dns::new(
                &["127.0.0.1:9".parse().unwrap()],
                64,
                Duration::from_millis(100),
            )
            .expect("resolver");
            let svc = Arc::new(postgate_smtp::SmtpService::new(
                postgate_smtp::Settings {
                    hostname: w.config.hostname.clone(),
                    config: w.config.smtp.clone(),
                    dns,
                },
                w.delivery.clone(),
                w.auth.clone(),
            ));
            vec![
                w.serve(svc.clone(), "smtp", false, 1000).await,
                w.serve(svc, "submission", false, 1000).await,
            ]
        })
    })
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let submission = mode & 1 == 1;
    let ehlo = "EHLO client.example\r\n";
    // RFC 4616: authzid NUL authcid NUL passwd, base64.
    let plain = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    let prefix = match ((mode >> 1) % 3, submission) {
        (0, _) => String::new(),
        (1, _) => ehlo.to_string(),
        (_, false) => format!("{ehlo}MAIL FROM:<ann@example.org>\r\nRCPT TO:<{USER}>\r\n"),
        (_, true) => format!("{ehlo}AUTH PLAIN {plain}\r\nMAIL FROM:<{USER}>\r\n"),
    };
    let mut input = prefix.into_bytes();
    input.extend_from_slice(rest);
    let reply = HARNESS.exchange(usize::from(submission), &input);
    check(&reply);
});

fn check(reply: &[u8]) {
    let fail =
        |why: &str| -> ! { panic!("{why} in the reply:\n{}", String::from_utf8_lossy(reply)) };
    // The code of the multi-line reply under way.
    let mut open: Option<&[u8]> = None;
    for line in lines(reply) {
        // RFC 5321 §2.3.8: CR and LF only together, as the line ending.
        let Some(body) = line.strip_suffix(b"\r\n") else {
            fail("a line not ended by CRLF")
        };
        if body.contains(&b'\r') || body.contains(&b'\n') {
            fail("a bare CR in a reply line");
        }
        // RFC 5321 §4.2: Reply-code [ ("-" / SP) textstring ].
        if body.len() < 3 || !body[..3].iter().all(u8::is_ascii_digit) {
            fail("a reply line without a three-digit code");
        }
        let code = &body[..3];
        if open.is_some_and(|c| c != code) {
            fail("a multi-line reply changing its code");
        }
        match body.get(3) {
            Some(b'-') => open = Some(code),
            Some(b' ') | None => open = None,
            Some(_) => fail("a reply code not followed by SP or -"),
        }
        // RFC 3207 §4: after this the stream is TLS.
        if body.starts_with(b"220 2.0.0 Ready to start TLS") {
            return;
        }
    }
    if open.is_some() {
        fail("an unfinished multi-line reply");
    }
}

fn base64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}
