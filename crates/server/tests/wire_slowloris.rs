//! Slowloris on a paused clock: a client that trickles a byte now and then
//! and never completes a command is cut at the timeout, counted from when
//! the server began waiting for the command, as a silent client is; bytes
//! that arrive meanwhile do not restart the clock. An authenticated IMAP
//! APPEND whose literal arrives slowly but steadily is not cut (its reads
//! are waited for one by one).
use postgate_testkit::world::{Wire, World};
use std::time::Duration;

const ALICE: &str = "alice@test.example";

/// Steps the paused clock by `every`, then sends one byte (no line feed),
/// `times` times, letting the session read each byte in real time.
async fn trickle(c: &mut Wire, byte: &[u8], times: u32, every: Duration) {
    for _ in 0..times {
        tokio::time::pause();
        tokio::time::advance(every).await;
        tokio::time::resume();
        c.send(byte).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Steps the paused clock by `by` and resumes it: the replies due by then
/// are read with the wire's usual (real-time) read timeout, so a server
/// that has not cut the session fails the test rather than hanging it.
async fn step(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

#[tokio::test]
async fn smtp_trickle_before_the_first_command_is_cut_at_the_greeting_timeout() {
    let w = World::with_config("[smtp.timeouts]\ngreeting = \"1m\"\ncommand = \"5m\"\n").await;
    let mut c = Wire::connect(w.smtp("smtp").await).await;
    c.expect_start("220 ").await;
    // 50 s of a byte every 25 s: traffic, never a command.
    trickle(&mut c, b"E", 2, Duration::from_secs(25)).await;
    step(Duration::from_secs(11)).await;
    // RFC 5321 §4.5.3.2.7 (the server's wait for a command) and §3.8
    // (421 before closing): one minute from the greeting, not from the
    // last byte.
    c.expect_start("421 4.4.2 ").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn smtp_trickled_command_is_cut_at_the_command_timeout() {
    let w = World::with_config("[smtp.timeouts]\ngreeting = \"1m\"\ncommand = \"5m\"\n").await;
    let mut c = Wire::connect(w.smtp("smtp").await).await;
    c.expect_start("220 ").await;
    c.send_line("EHLO client.test").await;
    while !c.line().await.starts_with("250 ") {}
    // Four minutes of a byte a minute, then past five minutes in all.
    trickle(&mut c, b"N", 4, Duration::from_secs(60)).await;
    step(Duration::from_secs(61)).await;
    // RFC 5321 §4.5.3.2.7: 5 minutes for the next command, as a deadline.
    c.expect_start("421 4.4.2 ").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn imap_trickle_before_login_is_cut_at_two_minutes() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    let mut c = Wire::connect(w.imap().await).await;
    c.expect_start("* OK").await;
    trickle(&mut c, b"a", 4, Duration::from_secs(25)).await;
    step(Duration::from_secs(21)).await;
    // RFC 9051 §7.1.5: BYE, then the close.
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn imap_trickled_literal_before_login_is_cut_at_two_minutes() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let mut c = Wire::connect(w.imap().await).await;
    c.expect_start("* OK").await;
    c.send_line("A1 LOGIN {200}").await;
    // RFC 9051 §7.5: go ahead for the synchronizing literal.
    c.expect_start("+ ").await;
    trickle(&mut c, b"x", 4, Duration::from_secs(25)).await;
    step(Duration::from_secs(21)).await;
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn imap_slow_append_after_login_is_not_cut_while_bytes_flow() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let message = b"Subject: slow\r\n\r\nbody\r\n";
    c.send_line(&format!("A9 APPEND INBOX {{{}}}", message.len()))
        .await;
    c.expect_start("+ ").await;
    // 40 minutes for the literal, in four pieces: more than the idle
    // timeout in all, but never 31 minutes without a byte.
    for piece in message.chunks(message.len().div_ceil(4)) {
        trickle(&mut c, piece, 1, Duration::from_secs(10 * 60)).await;
    }
    c.send(b"\r\n").await;
    c.expect_start("A9 OK").await;
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
}

#[tokio::test]
async fn pop3_trickle_is_cut_at_the_idle_timeout() {
    let w = World::with_config("[pop3]\nallow_plaintext = true\nidle_timeout = \"10m\"\n").await;
    let mut c = Wire::connect(w.pop3().await).await;
    c.expect_start("+OK").await;
    trickle(&mut c, b"U", 3, Duration::from_secs(180)).await;
    step(Duration::from_secs(61)).await;
    // RFC 1939 §3: the autologout timer (10 minutes), whatever trickled in.
    c.expect("-ERR Autologout; idle for too long").await;
    c.expect_closed().await;
}
