//! The SMTP engine on the wire: the greeting and EHLO (RFC 5321 §4.1.1.1),
//! the command sequence (§4.1.4), replies with enhanced status codes
//! (RFC 3463), recipients and relaying, SIZE (RFC 1870), DATA and its
//! dot-stuffing, BDAT (RFC 3030), PIPELINING (RFC 2920), STARTTLS
//! (RFC 3207), AUTH on submission (RFC 4954), and the limits: errors, line
//! length, timeouts (paused clock).
use base64::Engine as _;
use postgate_store::UserRef;
use postgate_testkit::world::{Wire, World};
use std::time::Duration;

const GREETING: &str = "220 mx.test.example ESMTP Postgate";
const ALICE: &str = "alice@test.example";
const BOB: &str = "bob@test.example";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A world with alice and bob (password "pw").
async fn world(config: &str) -> (World, UserRef, UserRef) {
    let w = World::with_config(config).await;
    let alice = w.user(ALICE, "pw").await;
    let bob = w.user(BOB, "pw").await;
    (w, alice, bob)
}

/// A connection to `addr` with the greeting read.
async fn connect_to(addr: std::net::SocketAddr) -> Wire {
    let mut c = Wire::connect(addr).await;
    c.expect(GREETING).await;
    c
}

/// A new listener of `role`, connected, greeting read.
async fn connect(w: &World, role: &'static str) -> Wire {
    connect_to(w.smtp(role).await).await
}

/// Sends a command; its whole reply, asserted to be exactly `want`.
async fn is(c: &mut Wire, line: &str, want: &[&str]) {
    let got = c.cmd(line).await;
    assert_eq!(got, want, "reply to {line:?}");
}

/// Sends a command; its reply, which must be one line.
async fn one(c: &mut Wire, line: &str) -> String {
    let mut r = c.cmd(line).await;
    assert_eq!(r.len(), 1, "reply to {line:?}: {r:?}");
    r.remove(0)
}

/// EHLO client.test, answered 250 (multi-line).
async fn ehlo(c: &mut Wire) -> Vec<String> {
    let r = c.cmd("EHLO client.test").await;
    assert_eq!(r[0], "250-mx.test.example Hello client.test [127.0.0.1]");
    r
}

/// The extension keywords of an EHLO reply (RFC 5321 §4.1.1.1).
fn extensions(reply: &[String]) -> Vec<&str> {
    reply[1..].iter().map(|l| &l[4..]).collect()
}

/// The queue id from "250 2.0.0 Ok: queued as ID".
fn queued(reply: &str) -> String {
    reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not a delivery: {reply}"))
        .to_string()
}

/// The bytes of each message in `user`'s Inbox, by UID.
async fn inbox(w: &World, user: &UserRef) -> Vec<Vec<u8>> {
    let f = w.store.folder(user.id, "INBOX").await.unwrap().unwrap();
    let uids: Vec<u32> = w
        .store
        .snapshot(f.id)
        .await
        .unwrap()
        .entries
        .iter()
        .map(|e| e.uid)
        .collect();
    let mut out = Vec::new();
    for m in w.store.messages_meta(f.id, uids).await.unwrap() {
        out.push(w.store.message_bytes(m.message).await.unwrap().unwrap());
    }
    out
}

/// Splits a stored message into its trace fields (Return-Path and
/// Received, which we add) and the rest, checking the trace: RFC 5321 §4.4
/// Return-Path with the reverse path, then a Received with FROM, BY, WITH,
/// ID, FOR (when one recipient) and the date.
fn trace<'a>(stored: &'a [u8], from: &str, with: &str, id: &str, rcpt: Option<&str>) -> &'a [u8] {
    let text = String::from_utf8_lossy(stored);
    let for_clause = rcpt.map(|r| format!("\r\n\tfor <{r}>")).unwrap_or_default();
    let head = format!(
        "Return-Path: <{from}>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.test.example (Postgate) with {with} id {id}{for_clause};\r\n\t"
    );
    assert!(
        text.starts_with(&head),
        "trace fields:\n{text}\nwanted:\n{head}"
    );
    let rest = &stored[head.len()..];
    let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
    let date = std::str::from_utf8(&rest[..eol]).unwrap();
    // RFC 5322 §3.6.7: the date-time after the ";".
    chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("{date:?}: {e}"));
    &rest[eol + 2..]
}

// ------------------------------------------------------------ greeting, EHLO

#[tokio::test]
async fn ehlo_lists_exactly_the_extensions() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = false\n").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.1.1.1: the greeting line, then one extension a line; no
    // enhanced codes in EHLO's reply (RFC 2034 §3).
    let r = ehlo(&mut c).await;
    assert_eq!(
        extensions(&r),
        [
            "PIPELINING",
            "SIZE 52428800",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
            "STARTTLS",
            "HELP"
        ]
    );
    assert!(r[..r.len() - 1].iter().all(|l| l.starts_with("250-")));
    assert!(r.last().unwrap().starts_with("250 "));
}

#[tokio::test]
async fn submission_offers_auth_once_it_may_be_used() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = false\n").await;
    let mut c = connect(&w, "submission").await;
    // RFC 4954 §4: no AUTH in the clear (the operator did not allow it).
    let r = ehlo(&mut c).await;
    assert!(
        !extensions(&r).iter().any(|e| e.starts_with("AUTH")),
        "{r:?}"
    );
    is(&mut c, "STARTTLS", &["220 2.0.0 Ready to start TLS"]).await;
    c.start_tls(&w.cert_pem()).await;
    let r = ehlo(&mut c).await;
    // Under TLS: AUTH, and STARTTLS no more (RFC 3207 §4.2).
    assert_eq!(
        extensions(&r),
        [
            "PIPELINING",
            "SIZE 52428800",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
            "AUTH PLAIN LOGIN",
            "HELP"
        ]
    );
}

#[tokio::test]
async fn with_plaintext_auth_allowed_auth_is_offered_in_the_clear() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "submission").await;
    let r = ehlo(&mut c).await;
    let ext = extensions(&r);
    assert!(
        ext.contains(&"STARTTLS") && ext.contains(&"AUTH PLAIN LOGIN"),
        "{ext:?}"
    );
}

#[tokio::test]
async fn helo_gets_one_line_and_no_extensions() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.1.1.1: HELO's reply is a single 250 line.
    is(
        &mut c,
        "HELO client.test",
        &["250 mx.test.example Hello client.test [127.0.0.1]"],
    )
    .await;
    // Extension parameters need EHLO.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> SIZE=10",
        &["555 5.5.4 Parameters need EHLO"],
    )
    .await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "EHLO", &["501 5.5.4 Syntax: EHLO domain"]).await;
}

// ---------------------------------------------------------- command sequence

#[tokio::test]
async fn commands_out_of_sequence_get_503() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.1.4 and §4.2.4: 503 for a bad sequence (RFC 3463 5.5.1).
    is(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        &["503 5.5.1 Send HELO/EHLO first"],
    )
    .await;
    ehlo(&mut c).await;
    is(
        &mut c,
        "RCPT TO:<alice@test.example>",
        &["503 5.5.1 Need MAIL command"],
    )
    .await;
    is(&mut c, "DATA", &["503 5.5.1 Need MAIL command"]).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        &["503 5.5.1 Nested MAIL command"],
    )
    .await;
    // RFC 5321 §3.3: DATA without a valid recipient: 554 (or 503).
    is(&mut c, "DATA", &["554 5.5.1 No valid recipients"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    // RFC 5321 §4.1.4: EHLO in a transaction ends it, as RSET would.
    ehlo(&mut c).await;
    is(&mut c, "DATA", &["503 5.5.1 Need MAIL command"]).await;
}

#[tokio::test]
async fn rset_noop_help_and_quit() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.1.1.5: RSET is fine before EHLO too.
    is(&mut c, "RSET", &["250 2.0.0 Ok"]).await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "RSET", &["250 2.0.0 Ok"]).await;
    // The transaction is gone, the EHLO kept.
    is(&mut c, "DATA", &["503 5.5.1 Need MAIL command"]).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    // RFC 5321 §4.1.1.9: NOOP, with or without an argument.
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    is(&mut c, "NOOP anything", &["250 2.0.0 Ok"]).await;
    // RFC 5321 §4.1.1.8.
    assert!(one(&mut c, "HELP").await.starts_with("214 2.0.0 "));
    // RFC 5321 §4.1.1.7: EXPN need not be offered (502).
    is(&mut c, "EXPN staff", &["502 5.5.1 EXPN not available"]).await;
    // RFC 5321 §4.1.1.10: 221, then the server closes.
    is(&mut c, "QUIT", &["221 2.0.0 Bye"]).await;
    c.expect_closed().await;
}

#[tokio::test]
async fn vrfy_answers_252_unless_configured() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 5321 §3.5.3: 252 when the server will not verify.
    is(
        &mut c,
        "VRFY alice@test.example",
        &["252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"],
    )
    .await;
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\nvrfy = true\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 5321 §3.5.1 / §4.1.1.6.
    is(
        &mut c,
        "VRFY alice@test.example",
        &["250 2.1.5 <alice@test.example>"],
    )
    .await;
    is(
        &mut c,
        "VRFY nobody@test.example",
        &["550 5.1.1 User unknown"],
    )
    .await;
    is(
        &mut c,
        "VRFY someone@remote.test",
        &["551 5.1.6 User not local"],
    )
    .await;
    is(&mut c, "VRFY @@", &["501 5.5.4 Syntax: VRFY <address>"]).await;
}

#[tokio::test]
async fn unknown_commands_and_bad_syntax() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.2.4: 500 for an unrecognized command.
    is(
        &mut c,
        "XYZZY",
        &["500 5.5.2 Syntax error, command unrecognized"],
    )
    .await;
    ehlo(&mut c).await;
    // RFC 5321 §4.1.2 paths need angle brackets: 501 syntax error.
    is(
        &mut c,
        "MAIL FROM:s@remote.test",
        &["501 5.5.4 Syntax: MAIL FROM:<reverse-path> [parameters]"],
    )
    .await;
    // RFC 3463 5.1.7: bad sender mailbox syntax.
    is(
        &mut c,
        "MAIL FROM:<s..x@remote.test>",
        &["553 5.1.7 Bad sender address syntax"],
    )
    .await;
    // RFC 5321 §4.1.1.11: 555 for a parameter not recognized.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> FOO=BAR",
        &["555 5.5.4 Unsupported parameter FOO=BAR"],
    )
    .await;
    is(&mut c, "mail from:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(
        &mut c,
        "RCPT TO:alice@test.example",
        &["501 5.5.4 Syntax: RCPT TO:<forward-path> [parameters]"],
    )
    .await;
    // RFC 3463 5.1.3: bad destination mailbox syntax.
    is(
        &mut c,
        "RCPT TO:<@>",
        &["501 5.1.3 Bad recipient address syntax"],
    )
    .await;
    is(
        &mut c,
        "RCPT TO:<alice@test.example> BAR=1",
        &["555 5.5.4 Unsupported parameter BAR=1"],
    )
    .await;
    is(&mut c, "rcpt to:<ALICE@test.example>", &["250 2.1.5 Ok"]).await;
}

#[tokio::test]
async fn parameters_not_advertised_are_refused() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 5321 §4.1.1.11: 555 for parameters not implemented. REQUIRETLS
    // (RFC 8689), FUTURERELEASE (RFC 4865), MT-PRIORITY (RFC 6710) and
    // DELIVERBY (RFC 2852) are not offered; accepting them would promise
    // what the server does not do.
    for (p, name) in [
        ("REQUIRETLS", "REQUIRETLS"),
        ("HOLDFOR=60", "HOLDFOR"),
        ("MT-PRIORITY=3", "MT-PRIORITY"),
        ("BY=120;R", "BY"),
        ("TRANSID=<t1@remote.test>", "TRANSID"),
    ] {
        is(
            &mut c,
            &format!("MAIL FROM:<s@remote.test> {p}"),
            &[&format!("555 5.5.4 Unsupported parameter {name}")],
        )
        .await;
    }
    // RFC 3030 §3: BINARYMIME needs the extension, which is not offered.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> BODY=BINARYMIME",
        &["555 5.5.4 BODY=BINARYMIME is not supported"],
    )
    .await;
    // What EHLO offers is taken.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x1 SMTPUTF8",
        &["250 2.1.0 Ok"],
    )
    .await;
    is(
        &mut c,
        "RCPT TO:<alice@test.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@test.example",
        &["250 2.1.5 Ok"],
    )
    .await;
    // RRVS (RFC 7293) and CONNEG (RFC 4141) are not offered either.
    is(
        &mut c,
        "RCPT TO:<bob@test.example> RRVS=2014-04-03T23:01:00Z",
        &["555 5.5.4 Unsupported parameter RRVS"],
    )
    .await;
    is(
        &mut c,
        "RCPT TO:<bob@test.example> CONNEG",
        &["555 5.5.4 Unsupported parameter CONNEG"],
    )
    .await;
}

// ------------------------------------------------------ recipients, relaying

#[tokio::test]
async fn unknown_local_users_get_550_5_1_1() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    // RFC 3463 5.1.1: bad destination mailbox address.
    is(
        &mut c,
        "RCPT TO:<nobody@test.example>",
        &["550 5.1.1 <nobody@test.example>: Recipient address rejected: User unknown"],
    )
    .await;
    is(&mut c, "RCPT TO:<bob@test.example>", &["250 2.1.5 Ok"]).await;
}

#[tokio::test]
async fn postmaster_is_accepted_with_and_without_a_domain() {
    let (w, _, _) = world("").await;
    let pm = w.user("postmaster@test.example", "pw").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    // RFC 5321 §4.5.1: "postmaster" at a served domain, and the special
    // case "RCPT TO:<Postmaster>" with no domain, MUST be supported.
    is(
        &mut c,
        "RCPT TO:<Postmaster@test.example>",
        &["250 2.1.5 Ok"],
    )
    .await;
    is(&mut c, "RCPT TO:<Postmaster>", &["250 2.1.5 Ok"]).await;
    // RFC 5321 §4.1.1.3: an empty forward-path is still no recipient.
    is(
        &mut c,
        "RCPT TO:<>",
        &["501 5.1.3 Bad recipient address syntax"],
    )
    .await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    c.send(b"Subject: abuse report\r\n\r\nhi\r\n.\r\n").await;
    queued(&c.line().await);
    // One copy: both recipients are the same mailbox.
    assert_eq!(inbox(&w, &pm).await.len(), 1);
}

#[tokio::test]
async fn the_inbound_port_relays_nothing() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<alice@test.example>", &["250 2.1.0 Ok"]).await;
    // RFC 5321 §3.6.2 / RFC 3463 5.7.1: no relaying without authentication,
    // however the destination is dressed up.
    is(
        &mut c,
        "RCPT TO:<x@remote.test>",
        &["550 5.7.1 <x@remote.test>: Relaying denied"],
    )
    .await;
    for probe in [
        "RCPT TO:<x%remote.test@test.example>",
        "RCPT TO:<\"x@remote.test\"@test.example>",
        "RCPT TO:<@test.example:x@remote.test>",
        "RCPT TO:<x@remote.test@test.example>",
        "RCPT TO:<remote.test!x@test.example>",
    ] {
        let r = one(&mut c, probe).await;
        assert!(r.starts_with("5"), "{probe}: {r}");
    }
    // Nothing was accepted: DATA has no recipient.
    is(&mut c, "DATA", &["554 5.5.1 No valid recipients"]).await;
    assert!(w.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn submission_needs_auth_before_mail() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "submission").await;
    ehlo(&mut c).await;
    // RFC 6409 §4.3 / RFC 4954 §6: 530 5.7.0.
    is(
        &mut c,
        "MAIL FROM:<alice@test.example>",
        &["530 5.7.0 Authentication required"],
    )
    .await;
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\nmax_recipients = 2\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "RCPT TO:<bob@test.example>", &["250 2.1.5 Ok"]).await;
    // RFC 5321 §4.5.3.1.10: 452, the client tries the rest later.
    is(
        &mut c,
        "RCPT TO:<alice@test.example>",
        &["452 4.5.3 Too many recipients"],
    )
    .await;
}

#[tokio::test]
async fn a_non_ascii_recipient_needs_smtputf8() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    // RFC 6531 §3.4 / RFC 3463 5.6.7.
    is(
        &mut c,
        "RCPT TO:<jürgen@test.example>",
        &["553 5.6.7 <jürgen@test.example>: address needs SMTPUTF8"],
    )
    .await;
}

// ------------------------------------------------------------------- SIZE

#[tokio::test]
async fn size_is_refused_when_declared_and_when_sent() {
    let (w, alice, _) =
        world("[smtp]\nallow_plaintext_auth = true\nmax_message_size = 1000\n").await;
    let mut c = connect(&w, "smtp").await;
    let r = ehlo(&mut c).await;
    // RFC 1870 §4: SIZE with the fixed maximum.
    assert!(extensions(&r).contains(&"SIZE 1000"), "{r:?}");
    // RFC 1870 §6.1: a declared size above it: 552 5.3.4 at MAIL.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> SIZE=1001",
        &["552 5.3.4 Message size exceeds fixed maximum message size (1000 octets)"],
    )
    .await;
    is(
        &mut c,
        "MAIL FROM:<s@remote.test> SIZE=1000",
        &["250 2.1.0 Ok"],
    )
    .await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    // RFC 1870 §6.2: more than the limit sent anyway: 552 after the data.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..30 {
        big.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    big.extend_from_slice(b".\r\n");
    c.send(&big).await;
    c.expect("552 5.3.4 Message size exceeds fixed maximum message size")
        .await;
    // The transaction is over; the session is not.
    is(
        &mut c,
        "RCPT TO:<alice@test.example>",
        &["503 5.5.1 Need MAIL command"],
    )
    .await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    assert!(inbox(&w, &alice).await.is_empty());
}

// ------------------------------------------------------------------- DATA

#[tokio::test]
async fn data_is_unstuffed_and_stored_byte_exact_after_the_trace() {
    let (w, alice, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    // RFC 5321 §4.1.1.4: 354, then the data up to CRLF.CRLF.
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    // RFC 5321 §4.5.2: a line starting with "." has one more on the wire.
    c.send(b"From: <s@remote.test>\r\nSubject: dots\r\n\r\n..hidden\r\n...\r\n..\r\nplain . line\r\n.\r\n")
        .await;
    let id = queued(&c.line().await);
    let stored = inbox(&w, &alice).await;
    assert_eq!(stored.len(), 1);
    let rest = trace(
        &stored[0],
        "s@remote.test",
        "ESMTP",
        &id,
        Some("alice@test.example"),
    );
    assert_eq!(
        rest,
        b"From: <s@remote.test>\r\nSubject: dots\r\n\r\n.hidden\r\n..\r\n.\r\nplain . line\r\n"
    );
    // The session goes on: another transaction at once.
    is(&mut c, "MAIL FROM:<>", &["250 2.1.0 Ok"]).await;
}

#[tokio::test]
async fn a_bare_lf_dot_lf_does_not_end_the_data() {
    let (w, alice, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    // RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data; a smuggled
    // "\n.\n" followed by commands stays inside the one message.
    c.send(b"Subject: one\r\n\r\nA\n.\nMAIL FROM:<evil@remote.test>\r\n\r\n.\r\n")
        .await;
    let id = queued(&c.line().await);
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    let stored = inbox(&w, &alice).await;
    assert_eq!(stored.len(), 1);
    let rest = trace(&stored[0], "s@remote.test", "ESMTP", &id, Some(ALICE));
    assert!(
        rest.starts_with(b"Subject: one\r\n\r\nA")
            && rest.ends_with(b"MAIL FROM:<evil@remote.test>\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(rest)
    );
}

#[tokio::test]
async fn one_body_for_several_recipients_names_none_of_them() {
    let (w, alice, bob) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 5321 §4.5.5: the null reverse path.
    is(&mut c, "MAIL FROM:<>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "RCPT TO:<bob@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    c.send(b"Subject: both\r\n\r\nhi\r\n.\r\n").await;
    let id = queued(&c.line().await);
    for u in [&alice, &bob] {
        let stored = inbox(&w, u).await;
        assert_eq!(stored.len(), 1);
        // RFC 5321 §7.2: no "for" clause naming one of several recipients.
        assert_eq!(
            trace(&stored[0], "", "ESMTP", &id, None),
            b"Subject: both\r\n\r\nhi\r\n"
        );
    }
}

// ------------------------------------------------------------------- BDAT

#[tokio::test]
async fn bdat_chunks_are_stored_as_sent() {
    let (w, alice, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    // RFC 3030 §2: exactly chunk-size octets follow, no dot-stuffing, and
    // a chunk may hold anything, a line "." or command text included.
    let first = b"Subject: chunks\r\n\r\n.\r\nQUIT\r\n";
    c.send(format!("BDAT {}\r\n", first.len()).as_bytes()).await;
    c.send(first).await;
    c.expect(&format!("250 2.0.0 {} octets received", first.len()))
        .await;
    // RFC 3030 §2: DATA may not follow BDAT in one transaction.
    is(&mut c, "DATA", &["503 5.5.1 DATA not allowed after BDAT"]).await;
    let last = b"..two dots\r\nend\r\n";
    c.send(format!("BDAT {} LAST\r\n", last.len()).as_bytes())
        .await;
    c.send(last).await;
    let id = queued(&c.line().await);
    let stored = inbox(&w, &alice).await;
    assert_eq!(stored.len(), 1);
    let rest = trace(&stored[0], "s@remote.test", "ESMTP", &id, Some(ALICE));
    assert_eq!(rest, [&first[..], &last[..]].concat());
    // BDAT 0 LAST ends a message whose chunks came before.
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    c.send(b"BDAT 9\r\nSubject: ").await;
    c.expect("250 2.0.0 9 octets received").await;
    c.send(b"BDAT 8\r\nzero\r\n\r\n").await;
    c.expect("250 2.0.0 8 octets received").await;
    c.send(b"BDAT 0 LAST\r\n").await;
    let id = queued(&c.line().await);
    let stored = inbox(&w, &alice).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        trace(&stored[1], "s@remote.test", "ESMTP", &id, Some(ALICE)),
        b"Subject: zero\r\n\r\n"
    );
}

#[tokio::test]
async fn bdat_out_of_sequence_is_read_and_refused() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 3030 §2: the chunk is read whatever the reply; its bytes are not
    // commands ("QUIT" inside is data).
    c.send(b"BDAT 6\r\nQUIT\r\n").await;
    c.expect("503 5.5.1 Need MAIL command").await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n").await;
    c.expect("554 5.5.1 No valid recipients").await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
}

#[tokio::test]
async fn bdat_past_the_size_limit_is_refused_to_its_last_chunk() {
    let (w, alice, _) =
        world("[smtp]\nallow_plaintext_auth = true\nmax_message_size = 1000\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    let chunk = vec![b'x'; 600];
    c.send(b"BDAT 600\r\n").await;
    c.send(&chunk).await;
    c.expect("250 2.0.0 600 octets received").await;
    // RFC 3030 §2 with RFC 1870: 552 5.3.4, and the rest is discarded.
    c.send(b"BDAT 600\r\n").await;
    c.send(&chunk).await;
    c.expect("552 5.3.4 Message size exceeds fixed maximum message size")
        .await;
    c.send(b"BDAT 10 LAST\r\n").await;
    c.send(&chunk[..10]).await;
    c.expect("552 5.3.4 Message size exceeds fixed maximum message size")
        .await;
    is(
        &mut c,
        "RCPT TO:<alice@test.example>",
        &["503 5.5.1 Need MAIL command"],
    )
    .await;
    assert!(inbox(&w, &alice).await.is_empty());
}

// -------------------------------------------------------------- PIPELINING

#[tokio::test]
async fn a_pipelined_transaction_is_answered_in_order() {
    let (w, alice, bob) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 2920 §3.1: MAIL, RCPTs and DATA in one write; the replies come
    // in the order of the commands.
    c.send(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@test.example>\r\nRCPT TO:<nobody@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n")
        .await;
    c.expect("250 2.1.0 Ok").await;
    c.expect("250 2.1.5 Ok").await;
    c.expect("550 5.1.1 <nobody@test.example>: Recipient address rejected: User unknown")
        .await;
    c.expect("250 2.1.5 Ok").await;
    c.expect("354 End data with <CR><LF>.<CR><LF>").await;
    // The data, the end, and the next commands in one write too.
    c.send(b"Subject: p\r\n\r\npipelined\r\n.\r\nRSET\r\nQUIT\r\n")
        .await;
    queued(&c.line().await);
    c.expect("250 2.0.0 Ok").await;
    c.expect("221 2.0.0 Bye").await;
    c.expect_closed().await;
    assert_eq!(inbox(&w, &alice).await.len(), 1);
    assert_eq!(inbox(&w, &bob).await.len(), 1);
}

// --------------------------------------------------------------- STARTTLS

#[tokio::test]
async fn starttls_resets_the_session() {
    let (w, alice, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "STARTTLS now", &["501 5.5.4 Syntax: STARTTLS"]).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    // RFC 3207 §4: 220, then the handshake.
    is(&mut c, "STARTTLS", &["220 2.0.0 Ready to start TLS"]).await;
    c.start_tls(&w.cert_pem()).await;
    // RFC 3207 §4.2: the server forgets everything, EHLO included.
    is(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        &["503 5.5.1 Send HELO/EHLO first"],
    )
    .await;
    let r = ehlo(&mut c).await;
    assert!(!extensions(&r).contains(&"STARTTLS"), "{r:?}");
    is(&mut c, "STARTTLS", &["503 5.5.1 TLS already active"]).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    c.send(b"Subject: tls\r\n\r\nsecret\r\n.\r\n").await;
    let id = queued(&c.line().await);
    // RFC 3848: "ESMTPS" for mail received under TLS, with the cipher.
    let stored = inbox(&w, &alice).await;
    let text = String::from_utf8_lossy(&stored[0]);
    assert!(
        text.starts_with(
            "Return-Path: <s@remote.test>\r\nReceived: from client.test ([127.0.0.1])\r\n\t(using TLS"
        ) && text.contains(&format!("\r\n\tby mx.test.example (Postgate) with ESMTPS id {id}\r\n")),
        "{text}"
    );
    assert!(
        text.ends_with(" +0000\r\nSubject: tls\r\n\r\nsecret\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_discarded() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    // RFC 3207 §4.2: nothing sent in the clear behind STARTTLS is acted on.
    c.send(b"STARTTLS\r\nRSET\r\n").await;
    c.expect("220 2.0.0 Ready to start TLS").await;
    // start_tls fails if the server answered the RSET in the clear.
    c.start_tls(&w.cert_pem()).await;
    // Under TLS, the first reply is EHLO's, not an RSET's "250 2.0.0 Ok".
    ehlo(&mut c).await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
}

// ------------------------------------------------------------------- AUTH

#[tokio::test]
async fn auth_plain_on_submission_then_relay_to_the_internet() {
    let (w, alice, _) = world("").await;
    let mut c = connect(&w, "submission").await;
    ehlo(&mut c).await;
    // RFC 4954 §4 with RFC 4616: the initial response on the command line.
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
        &["235 2.7.0 Authentication successful"],
    )
    .await;
    // RFC 4954 §4: once only.
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
        &["503 5.5.1 Already authenticated"],
    )
    .await;
    // RFC 6409 §8.1: the user sends as themselves.
    is(
        &mut c,
        "MAIL FROM:<bob@test.example>",
        &["553 5.7.1 <bob@test.example>: Sender address not owned by alice@test.example"],
    )
    .await;
    is(&mut c, "MAIL FROM:<alice@test.example>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<friend@remote.test>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    c.send(b"From: alice@test.example\r\nSubject: out\r\n\r\nhello\r\n.\r\n")
        .await;
    let id = queued(&c.line().await);
    // The remote recipient waits in the queue; the local one has it.
    let q = w.store.queue_list().await.unwrap();
    assert_eq!(q.len(), 1);
    let rcpts: Vec<&str> = q[0].rcpts.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["friend@remote.test"]);
    let stored = inbox(&w, &alice).await;
    let text = String::from_utf8_lossy(&stored[0]);
    // RFC 3848: "A" for authenticated; RFC 6409 §8.2, §8.3: Date and
    // Message-ID added for the sender.
    assert!(text.contains(&format!("with ESMTPA id {id};")), "{text}");
    assert!(
        text.contains(&format!("\r\nMessage-ID: <{id}@mx.test.example>\r\n"))
            && text.contains("\r\nDate: "),
        "{text}"
    );
}

#[tokio::test]
async fn auth_plain_and_login_with_challenges() {
    let (w, _, _) = world("").await;
    let addr = w.smtp("submission").await;
    let mut c = connect_to(addr).await;
    ehlo(&mut c).await;
    // RFC 4954 §4: 334 and an empty challenge for PLAIN.
    is(&mut c, "AUTH PLAIN", &["334 "]).await;
    is(
        &mut c,
        &b64(b"\0alice@test.example\0pw"),
        &["235 2.7.0 Authentication successful"],
    )
    .await;
    let mut c = connect_to(addr).await;
    ehlo(&mut c).await;
    // LOGIN: "Username:" and "Password:" in base64.
    is(&mut c, "AUTH LOGIN", &["334 VXNlcm5hbWU6"]).await;
    is(&mut c, &b64(b"alice@test.example"), &["334 UGFzc3dvcmQ6"]).await;
    is(
        &mut c,
        &b64(b"pw"),
        &["235 2.7.0 Authentication successful"],
    )
    .await;
}

#[tokio::test]
async fn auth_failures_and_cancellation() {
    let (w, _, _) = world("").await;
    let mut c = connect(&w, "submission").await;
    // RFC 4954 §4: AUTH needs EHLO first.
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
        &["503 5.5.1 Send EHLO first"],
    )
    .await;
    ehlo(&mut c).await;
    // RFC 4954 §6: 535 5.7.8 for bad credentials.
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0wrong")),
        &["535 5.7.8 Authentication credentials invalid"],
    )
    .await;
    // RFC 4954 §4: "*" cancels with 501.
    is(&mut c, "AUTH PLAIN", &["334 "]).await;
    is(&mut c, "*", &["501 5.7.0 Authentication cancelled"]).await;
    is(&mut c, "AUTH PLAIN !!!!", &["501 5.5.2 Invalid base64"]).await;
    // RFC 4954 §4: 504 for a mechanism not offered.
    is(
        &mut c,
        "AUTH GSSAPI",
        &["504 5.5.4 Unrecognized authentication type"],
    )
    .await;
    // Not authenticated: no MAIL.
    is(
        &mut c,
        "MAIL FROM:<alice@test.example>",
        &["530 5.7.0 Authentication required"],
    )
    .await;
}

#[tokio::test]
async fn auth_is_refused_in_the_clear_unless_allowed() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = false\n").await;
    let mut c = connect(&w, "submission").await;
    ehlo(&mut c).await;
    // RFC 4954 §4 / §6: 538 5.7.11 encryption required.
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
        &["538 5.7.11 Encryption required for requested authentication mechanism"],
    )
    .await;
    is(&mut c, "STARTTLS", &["220 2.0.0 Ready to start TLS"]).await;
    c.start_tls(&w.cert_pem()).await;
    ehlo(&mut c).await;
    is(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
        &["235 2.7.0 Authentication successful"],
    )
    .await;
    // RFC 4954 §4: after AUTH, EHLO no longer offers it.
    let r = ehlo(&mut c).await;
    assert!(
        !extensions(&r).iter().any(|e| e.starts_with("AUTH")),
        "{r:?}"
    );
}

// ------------------------------------------------------------------ limits

#[tokio::test]
async fn too_many_errors_close_with_421() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\nmax_errors = 3\n").await;
    let mut c = connect(&w, "smtp").await;
    for _ in 0..3 {
        is(
            &mut c,
            "XYZZY",
            &["500 5.5.2 Syntax error, command unrecognized"],
        )
        .await;
    }
    // RFC 5321 §3.8 / RFC 3463 4.7.0: 421, and the server closes.
    is(
        &mut c,
        "XYZZY",
        &["421 4.7.0 Too many errors, closing connection"],
    )
    .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn too_many_commands_without_mail_close_with_421() {
    let (w, _, _) =
        world("[smtp]\nallow_plaintext_auth = true\nmax_commands_before_mail = 3\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    is(&mut c, "RSET", &["250 2.0.0 Ok"]).await;
    is(
        &mut c,
        "NOOP",
        &["421 4.7.0 Too many commands, closing connection"],
    )
    .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn a_line_past_the_limit_gets_500_and_the_session_goes_on() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\nmax_line_length = 512\n").await;
    let mut c = connect(&w, "smtp").await;
    // RFC 5321 §4.5.3.1.4: 512 octets, CRLF included, is a command line.
    let fits = format!("NOOP {}", "x".repeat(512 - 2 - 5));
    is(&mut c, &fits, &["250 2.0.0 Ok"]).await;
    // One more: "500 Line too long" (RFC 5321 §4.2.4).
    let long = format!("NOOP {}", "x".repeat(512 - 2 - 5 + 1));
    is(&mut c, &long, &["500 5.5.2 Line too long"]).await;
    // A much longer one in pieces, with a command hidden in it: one refusal.
    c.send(format!("NOOP {}", "y".repeat(5000)).as_bytes())
        .await;
    c.send(b"QUIT\r\n").await;
    c.expect("500 5.5.2 Line too long").await;
    ehlo(&mut c).await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_greeting_timeout() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\n[smtp.timeouts]\ngreeting = \"1m\"\ncommand = \"5m\"\n").await;
    let mut c = connect(&w, "smtp").await;
    c.patient();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    // RFC 5321 §3.8: 421 before closing; RFC 3463 4.4.2.
    c.expect("421 4.4.2 mx.test.example Error: timeout exceeded")
        .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn an_idle_session_is_dropped_after_the_command_timeout() {
    let (w, _, _) = world("[smtp]\nallow_plaintext_auth = true\n[smtp.timeouts]\ngreeting = \"1m\"\ncommand = \"5m\"\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    c.patient();
    tokio::time::pause();
    // Past the greeting timeout: it no longer applies after a command.
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    is(&mut c, "NOOP", &["250 2.0.0 Ok"]).await;
    // RFC 5321 §4.5.3.2.7: at least 5 minutes between commands.
    tokio::time::advance(Duration::from_secs(5 * 60 + 1)).await;
    c.expect("421 4.4.2 mx.test.example Error: timeout exceeded")
        .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn stalled_data_is_dropped_after_the_data_timeout() {
    let (w, alice, _) =
        world("[smtp]\nallow_plaintext_auth = true\n[smtp.timeouts]\ndata = \"3m\"\n").await;
    let mut c = connect(&w, "smtp").await;
    ehlo(&mut c).await;
    is(&mut c, "MAIL FROM:<s@remote.test>", &["250 2.1.0 Ok"]).await;
    is(&mut c, "RCPT TO:<alice@test.example>", &["250 2.1.5 Ok"]).await;
    is(&mut c, "DATA", &["354 End data with <CR><LF>.<CR><LF>"]).await;
    c.send(b"Subject: half\r\n\r\nand then nothing").await;
    c.patient();
    tokio::time::pause();
    // RFC 5321 §4.5.3.2.6: the data block timeout (3 minutes here).
    tokio::time::advance(Duration::from_secs(3 * 60 + 1)).await;
    c.expect("421 4.4.2 Timeout exceeded while reading data")
        .await;
    c.expect_closed().await;
    tokio::time::resume();
    assert!(inbox(&w, &alice).await.is_empty());
}
