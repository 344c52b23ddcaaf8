//! IMAP at the session level, on the wire: the greeting and capabilities,
//! logins (LOGIN, AUTHENTICATE PLAIN with and without SASL-IR, refusals),
//! STARTTLS, COMPRESS=DEFLATE, IDLE, what one session sees of another's
//! changes (and when EXPUNGE may be sent), timeouts on a paused clock, and
//! literals on the command path.
//!
//! Timeouts: the clock is paused only to step up to (or past) a deadline;
//! any round trip that must happen *before* a deadline runs with the clock
//! resumed, since a paused clock jumps to the next timer (the server's
//! deadline) whenever the runtime waits on the network.
use base64::Engine;
use postgate_testkit::world::{Reply, Wire, World};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const ALICE: &str = "alice@test.example";

/// Base64 (RFC 4648 §4), as SASL responses travel in IMAP.
fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A SASL PLAIN message with no authorization identity (RFC 4616 §2).
fn plain(user: &str, pass: &str) -> String {
    b64(format!("\0{user}\0{pass}").as_bytes())
}

/// A small message numbered `n`.
fn msg(n: u32) -> Vec<u8> {
    format!("From: x@test.example\r\nSubject: m{n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// The capability tokens of a `* CAPABILITY …` line or of a
/// `[CAPABILITY …]` response code's inside.
fn cap_set(list: &str) -> BTreeSet<String> {
    list.split_whitespace()
        .filter(|t| *t != "*" && *t != "CAPABILITY")
        .map(str::to_string)
        .collect()
}

/// The inside of a `[CAPABILITY …]` response code in `line`.
#[track_caller]
fn cap_code(line: &str) -> &str {
    let start = line
        .find("[CAPABILITY ")
        .unwrap_or_else(|| panic!("no CAPABILITY code in {line:?}"))
        + "[CAPABILITY ".len();
    let end = start + line[start..].find(']').expect("closing bracket");
    &line[start..end]
}

/// Asserts no untagged EXPUNGE (nor VANISHED) in `r`.
#[track_caller]
fn no_expunge(r: &Reply) {
    assert!(
        !r.untagged
            .iter()
            .any(|l| l.ends_with(" EXPUNGE") || l.starts_with("* VANISHED")),
        "{}: an EXPUNGE where none may be sent\n{r}",
        r.command
    );
}

/// A world with `n` messages in alice's Inbox and its IMAP listener.
async fn world_with(n: u32) -> (World, std::net::SocketAddr) {
    let w = World::new().await;
    w.user(ALICE, "pw").await;
    for i in 1..=n {
        w.deliver(ALICE, &msg(i)).await;
    }
    let addr = w.imap().await;
    (w, addr)
}

/// Sends `IDLE` and reads the continuation; returns the tag.
async fn start_idle(c: &mut Wire) -> String {
    let tag = c.next_tag();
    c.send_line(&format!("{tag} IDLE")).await;
    // RFC 2177 §3: the server's continuation request opens the IDLE.
    c.expect("+ idling").await;
    tag
}

// ------------------------------------------------------------ greeting, caps

#[tokio::test]
async fn greeting_carries_the_capabilities_the_capability_command_lists() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    let greeting = c.line().await;
    let r = c.ok("CAPABILITY").await;
    let caps = r
        .one("* CAPABILITY ")
        .strip_prefix("* CAPABILITY ")
        .unwrap();
    // RFC 9051 §7.1.1 greeting with a CAPABILITY response code (§7.1).
    assert_eq!(
        greeting,
        format!("* OK [CAPABILITY {caps}] mx.test.example Postgate IMAP ready")
    );
    let set = cap_set(caps);
    // RFC 9051 §6.1.1: IMAP4rev2 listed; RFC 3501 §6.1.1: IMAP4rev1 as well.
    for must in ["IMAP4rev1", "IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "IDLE"] {
        assert!(set.contains(must), "{must} missing from {caps}");
    }
    // Plaintext logins are allowed in this world: no LOGINDISABLED.
    assert!(!set.contains("LOGINDISABLED"), "{caps}");
    r.tagged_starts("OK CAPABILITY completed");
}

#[tokio::test]
async fn capabilities_after_login_drop_the_login_ones() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    let greeting = c.line().await;
    let before = cap_set(cap_code(&greeting));
    let login = c.ok(&format!("LOGIN {ALICE} pw")).await;
    let in_ok = cap_set(cap_code(&login.tagged));
    let r = c.ok("CAPABILITY").await;
    let after = cap_set(r.one("* CAPABILITY "));
    // RFC 9051 §6.2.3: the CAPABILITY code in LOGIN's OK is the new list.
    assert_eq!(in_ok, after);
    let gone: Vec<_> = before.difference(&after).map(String::as_str).collect();
    // RFC 9051 §6.2.1: STARTTLS only before login; AUTH= only where
    // AUTHENTICATE is valid (RFC 9051 §6.2.2).
    assert_eq!(gone, ["AUTH=PLAIN", "STARTTLS"]);
    assert!(after.is_subset(&before), "{after:?} ⊄ {before:?}");
    assert!(login.tagged.ends_with("] Logged in"), "{}", login.tagged);
}

// ----------------------------------------------------- LOGINDISABLED, TLS

// covers: LOGINDISABLED
#[tokio::test]
async fn cleartext_without_plaintext_logins_refuses_them() {
    let w = World::with_config("[imap]\nallow_plaintext = false\n").await;
    w.user(ALICE, "pw").await;
    let mut c = Wire::connect(w.imap().await).await;
    let greeting = c.line().await;
    let caps = cap_set(cap_code(&greeting));
    // RFC 9051 §6.2.3: LOGINDISABLED, and no AUTH= mechanism that sends the
    // password in the clear.
    assert!(caps.contains("LOGINDISABLED") && caps.contains("STARTTLS"));
    assert!(!caps.iter().any(|c| c.starts_with("AUTH=")), "{caps:?}");
    // RFC 9051 §6.2.3: LOGIN refused with NO (RFC 5530 §3 PRIVACYREQUIRED),
    // even with the right password.
    c.no(&format!("LOGIN {ALICE} pw"))
        .await
        .exactly(&[])
        .tagged_starts("NO [PRIVACYREQUIRED]");
    // The same for AUTHENTICATE, before any continuation request.
    c.no("AUTHENTICATE PLAIN")
        .await
        .exactly(&[])
        .tagged_starts("NO [PRIVACYREQUIRED]");
    c.no(&format!("AUTHENTICATE PLAIN {}", plain(ALICE, "pw")))
        .await
        .tagged_starts("NO [PRIVACYREQUIRED]");
    // Still not authenticated.
    c.bad("SELECT INBOX").await;
}

// covers: STARTTLS
#[tokio::test]
async fn starttls_changes_the_capabilities_and_allows_login() {
    let w = World::with_config("[imap]\nallow_plaintext = false\n").await;
    w.user(ALICE, "pw").await;
    let mut c = Wire::connect(w.imap().await).await;
    let before = cap_set(cap_code(&c.line().await));
    // RFC 9051 §6.2.1: tagged OK, then the TLS negotiation.
    let r = c.ok("STARTTLS").await;
    r.exactly(&[]).tagged_starts("OK");
    c.start_tls(&w.cert_pem()).await;
    let after = cap_set(c.ok("CAPABILITY").await.one("* CAPABILITY "));
    // RFC 9051 §6.2.1: the capabilities may change after TLS: STARTTLS
    // gone, and the password mechanisms no longer disabled (§6.2.3).
    let mut expected = before.clone();
    expected.remove("STARTTLS");
    expected.remove("LOGINDISABLED");
    expected.insert("AUTH=PLAIN".into());
    assert_eq!(after, expected);
    // RFC 9051 §6.2.1: no second STARTTLS.
    c.bad("STARTTLS").await;
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    c.ok("SELECT INBOX").await.has("* 0 EXISTS");
}

#[tokio::test]
async fn starttls_discards_commands_pipelined_in_the_clear() {
    let w = World::with_config("[imap]\nallow_plaintext = false\n").await;
    w.user(ALICE, "pw").await;
    let mut c = Wire::connect(w.imap().await).await;
    c.line().await;
    // RFC 9051 §6.2.1: a command sent after STARTTLS but before the TLS
    // negotiation is not run (it could have been injected in the clear).
    c.send(b"A1 STARTTLS\r\nA2 CAPABILITY\r\n").await;
    c.expect_start("A1 OK").await;
    // start_tls also fails if the server sent anything more in the clear.
    c.start_tls(&w.cert_pem()).await;
    c.send_line("A3 NOOP").await;
    // Neither A2's CAPABILITY nor its completion comes, before or after TLS.
    let r = c.replies("A3", "NOOP").await;
    r.exactly(&[]).tagged_starts("OK");
}

#[tokio::test]
async fn starttls_after_login_is_refused() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    // RFC 9051 §6.2.1: STARTTLS is valid in the not-authenticated state only.
    c.bad("STARTTLS").await.exactly(&[]);
    c.ok("NOOP").await;
}

// --------------------------------------------------------- AUTHENTICATE

// covers: AUTH=PLAIN
#[tokio::test]
async fn authenticate_plain_with_a_continuation() {
    let (_w, addr) = world_with(1).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    let tag = c.next_tag();
    c.send_line(&format!("{tag} AUTHENTICATE PLAIN")).await;
    // RFC 9051 §6.2.2: an empty server challenge is a "+ " continuation
    // (RFC 9051 §7.5 continue-req with empty base64).
    c.expect("+ ").await;
    c.send_line(&plain(ALICE, "pw")).await;
    let r = c.replies(&tag, "AUTHENTICATE PLAIN").await;
    r.exactly(&[]);
    assert!(
        r.tagged.starts_with("OK [CAPABILITY ") && r.tagged.ends_with("] Logged in"),
        "{r}"
    );
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
}

// covers: UNAUTHENTICATE
#[tokio::test]
async fn unauthenticate_then_log_in_as_someone_else() {
    let (w, addr) = world_with(1).await;
    w.user("bob@test.example", "pw2").await;
    w.deliver("bob@test.example", &msg(7)).await;
    w.deliver("bob@test.example", &msg(8)).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 8437 §3: only valid once authenticated.
    c.bad("UNAUTHENTICATE").await;
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    c.ok("ENABLE CONDSTORE").await.has("* ENABLED CONDSTORE");
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.bad("UNAUTHENTICATE now").await;
    // Back to the not authenticated state: the mailbox is closed without
    // expunging, and nothing of Alice's is reachable.
    c.ok("UNAUTHENTICATE").await.exactly(&[]);
    c.bad("FETCH 1 (FLAGS)").await;
    c.bad("SELECT INBOX").await;
    let caps = c.ok("CAPABILITY").await;
    let caps = cap_set(caps.one("* CAPABILITY "));
    assert!(caps.contains("AUTH=PLAIN"), "{caps:?}");
    // A second login on the same connection, as Bob.
    c.ok("LOGIN bob@test.example pw2").await;
    c.ok("SELECT INBOX").await.has("* 2 EXISTS");
    // ENABLE did not survive: no MODSEQ unless asked again.
    let r = c.ok("FETCH 1 (FLAGS)").await;
    assert!(!r.one("* 1 FETCH").contains("MODSEQ"), "{r}");
    c.ok("UNAUTHENTICATE").await;
    // Alice's message was not expunged by the implicit close.
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    let r = c.ok("FETCH 1 (FLAGS)").await;
    assert!(r.one("* 1 FETCH").contains("\\Deleted"), "{r}");
}

// covers: SASL-IR
#[tokio::test]
async fn authenticate_plain_with_an_initial_response() {
    let (_w, addr) = world_with(1).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 4959 §3: the response on the command line; no continuation.
    let r = c
        .ok(&format!("AUTHENTICATE PLAIN {}", plain(ALICE, "pw")))
        .await;
    r.exactly(&[]).tagged_starts("OK [CAPABILITY ");
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    // RFC 9051 §6.2.2: AUTHENTICATE is not valid once authenticated.
    c.bad(&format!("AUTHENTICATE PLAIN {}", plain(ALICE, "pw")))
        .await;
}

#[tokio::test]
async fn authenticate_empty_initial_response_is_a_response() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 4959 §3: "=" is an empty initial response, not a missing one, so
    // the server asks for nothing more; an empty PLAIN message has no
    // credentials (RFC 4616 §2) and the engine rejects it as malformed.
    let r = c.imap("AUTHENTICATE PLAIN =").await;
    r.exactly(&[]);
    assert!(r.tagged.starts_with("BAD"), "{r}");
    // Still not authenticated; a proper login then works.
    c.bad("SELECT INBOX").await;
    c.ok(&format!("LOGIN {ALICE} pw")).await;
}

#[tokio::test]
async fn authenticate_cancelled_with_a_star_is_bad() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    c.send_line("A1 AUTHENTICATE PLAIN").await;
    c.expect("+ ").await;
    // RFC 9051 §6.2.2: "*" cancels; the server answers BAD.
    c.send_line("*").await;
    c.expect_start("A1 BAD ").await;
    c.send_line("A2 SELECT INBOX").await;
    c.expect_start("A2 BAD ").await;
    // RFC 9051 §6.2.2: invalid base64 is BAD as well.
    c.send_line("A3 AUTHENTICATE PLAIN").await;
    c.expect("+ ").await;
    c.send_line("%%%").await;
    c.expect_start("A3 BAD ").await;
    // An unknown mechanism: NO (RFC 9051 §6.2.2 SHOULD).
    c.send_line("A4 AUTHENTICATE X-UNKNOWN").await;
    c.expect_start("A4 NO ").await;
    c.send_line(&format!("A5 LOGIN {ALICE} pw")).await;
    c.expect_start("A5 OK ").await;
}

#[tokio::test]
async fn wrong_password_is_authenticationfailed() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 5530 §3 AUTHENTICATIONFAILED, for LOGIN and AUTHENTICATE alike.
    c.no(&format!("LOGIN {ALICE} wrong"))
        .await
        .exactly(&[])
        .tagged_starts("NO [AUTHENTICATIONFAILED] ");
    c.no(&format!("AUTHENTICATE PLAIN {}", plain(ALICE, "wrong")))
        .await
        .exactly(&[])
        .tagged_starts("NO [AUTHENTICATIONFAILED] ");
    // Nobody logged in: selected-state and authenticated-state commands BAD.
    c.bad("SELECT INBOX").await;
}

// ------------------------------------------------------- LOGOUT, states

#[tokio::test]
async fn logout_says_bye_then_ok_then_closes() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    // RFC 9051 §6.1.3: the BYE first, then the tagged OK, then the close.
    c.send_line("A9 LOGOUT").await;
    c.expect("* BYE Logging out").await;
    c.expect("A9 OK LOGOUT completed").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn logout_before_login_too() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 9051 §6.1.3: LOGOUT is valid in any state.
    let r = c.ok("LOGOUT").await;
    r.exactly(&["* BYE Logging out"]);
    c.expect_closed().await;
}

#[tokio::test]
async fn commands_in_the_wrong_state_are_refused() {
    let (_w, addr) = world_with(1).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 9051 §6: a command in the wrong state is a protocol error (BAD or
    // NO); the engine answers BAD.
    for cmd in ["SELECT INBOX", "LIST \"\" *", "IDLE", "FETCH 1 FLAGS"] {
        c.bad(cmd).await.exactly(&[]);
    }
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    // RFC 9051 §6.4: selected-state commands need a selected mailbox.
    for cmd in [
        "FETCH 1 (FLAGS)",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "EXPUNGE",
        "CLOSE",
        "UID FETCH 1 (FLAGS)",
    ] {
        c.bad(cmd).await.exactly(&[]);
    }
    // RFC 9051 §6.2.3: LOGIN is for the not-authenticated state only.
    c.bad(&format!("LOGIN {ALICE} pw")).await;
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    c.ok("FETCH 1 (FLAGS)").await;
}

// ------------------------------------------------------------------ IDLE

// covers: IDLE
#[tokio::test]
async fn idle_reports_a_delivery_and_done_ends_it() {
    let w = Arc::new(World::new().await);
    w.user(ALICE, "pw").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await.has("* 0 EXISTS");
    let tag = start_idle(&mut c).await;
    let w2 = w.clone();
    let delivery = tokio::spawn(async move { w2.deliver(ALICE, &msg(1)).await });
    // RFC 2177 §3: untagged updates while idling, without a command.
    c.expect("* 1 EXISTS").await;
    // RFC 3501 §7.3.2: this session is the first told, so it is \Recent here.
    c.expect("* 1 RECENT").await;
    delivery.await.unwrap();
    c.send_line("DONE").await;
    // RFC 2177 §3: DONE ends the IDLE with its tagged OK.
    c.replies(&tag, "IDLE")
        .await
        .exactly(&[])
        .tagged_starts("OK");
    c.ok("FETCH 1 (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (FLAGS (\\Recent))"]);
}

#[tokio::test]
async fn idle_reports_flags_and_expunges_from_another_session() {
    let (_w, addr) = world_with(2).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await; // B claims \Recent, so A's flags are plain.
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX")
        .await
        .has("* 2 EXISTS")
        .has("* 0 RECENT");
    let tag = start_idle(&mut a).await;
    b.ok("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    // RFC 9051 §7.5.2: another session's flag change as FETCH FLAGS.
    a.expect("* 1 FETCH (FLAGS (\\Seen))").await;
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    a.expect("* 2 FETCH (FLAGS (\\Deleted))").await;
    b.ok("EXPUNGE").await;
    // RFC 2177 §3 / RFC 9051 §7.5.1: IDLE is none of FETCH, STORE, SEARCH,
    // so the EXPUNGE is sent at once.
    a.expect("* 2 EXPUNGE").await;
    a.send_line("DONE").await;
    a.replies(&tag, "IDLE")
        .await
        .exactly(&[])
        .tagged_starts("OK");
    a.ok("NOOP").await.exactly(&[]);
}

#[tokio::test]
async fn idle_ended_by_something_other_than_done_is_bad() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    let tag = start_idle(&mut c).await;
    // RFC 2177 §3: only "DONE" ends an IDLE.
    c.send_line("A99 NOOP").await;
    let r = c.replies(&tag, "IDLE").await;
    r.exactly(&[]);
    assert!(r.tagged.starts_with("BAD"), "{r}");
    c.ok("NOOP").await;
}

#[tokio::test]
async fn idle_without_done_is_logged_out_at_the_idle_timeout() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    start_idle(&mut c).await;
    c.patient();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(31 * 60 + 1)).await;
    // RFC 2177 §3 (the server may log out an IDLE client after its
    // inactivity timeout), RFC 9051 §7.1.5: BYE, no tagged reply, close.
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn idle_done_before_the_idle_timeout_keeps_the_session() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    let tag = start_idle(&mut c).await;
    c.patient();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    tokio::time::resume();
    // A minute before the deadline: the session is still there.
    c.send_line("DONE").await;
    c.replies(&tag, "IDLE")
        .await
        .exactly(&[])
        .tagged_starts("OK");
    c.ok("NOOP").await;
}

// -------------------------------------------------------------- COMPRESS

// covers: COMPRESS=DEFLATE
#[tokio::test]
async fn compress_deflate_compresses_both_ways() {
    let (w, addr) = world_with(0).await;
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "compressible line of text\r\n".repeat(400)
    );
    w.deliver(ALICE, big.as_bytes()).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    // RFC 4978 §3: the tagged OK in the clear, everything after compressed.
    c.ok("COMPRESS DEFLATE").await.exactly(&[]);
    // From here on the client inflates what it reads and deflates what it
    // sends: a plaintext reply would fail to inflate.
    c.start_deflate();
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    let text = &big["Subject: big\r\n\r\n".len()..];
    c.ok("FETCH 1 (BODY.PEEK[TEXT])").await.exactly(&[&format!(
        "* 1 FETCH (BODY[TEXT] {{{}}}\r\n{text})",
        text.len()
    )]);
    // RFC 4978 §3: a second COMPRESS is refused with COMPRESSIONACTIVE.
    c.no("COMPRESS DEFLATE")
        .await
        .tagged_starts("NO [COMPRESSIONACTIVE]");
    c.send_line("A9 LOGOUT").await;
    c.expect("* BYE Logging out").await;
    c.expect("A9 OK LOGOUT completed").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn compress_then_plaintext_input_ends_the_session() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    c.ok("COMPRESS DEFLATE").await;
    // RFC 4978 §3: the server now inflates what it reads; these bytes are
    // not a DEFLATE stream, so no command runs and nothing is answered.
    c.send(b"A5 NOOP\r\n").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn compress_before_login_is_refused() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 4978 §4: COMPRESS is a command-auth, not valid before login.
    c.bad("COMPRESS DEFLATE").await.exactly(&[]);
    // The session is still in the clear.
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    c.ok("NOOP").await;
}

// ------------------------------------------------------------ two sessions

#[tokio::test]
async fn another_sessions_changes_show_at_noop() {
    let (_w, addr) = world_with(3).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await.has("* 3 EXISTS");
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    // RFC 9051 §7.4.1 / §5.5: other sessions' flag changes as FETCH.
    a.ok("NOOP")
        .await
        .exactly(&["* 1 FETCH (FLAGS (\\Flagged))"]);
    let append = format!("APPEND INBOX {{{}+}}\r\n", msg(4).len());
    b.send(format!("A9 {append}").as_bytes()).await;
    b.send(&msg(4)).await;
    b.send(b"\r\n").await;
    b.replies("A9", "APPEND")
        .await
        // B claimed messages 1-3 at SELECT, and now 4.
        .exactly(&["* 4 EXISTS", "* 4 RECENT"])
        .tagged_starts("OK [APPENDUID ");
    // RFC 9051 §7.4.1: a new message as EXISTS. B, selected there, was told
    // first (in its APPEND's replies), so \Recent is B's (RFC 3501 §2.3.2).
    a.ok("NOOP").await.exactly(&["* 4 EXISTS", "* 0 RECENT"]);
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await.has("* 2 EXPUNGE");
    let r = a.ok("NOOP").await;
    // RFC 9051 §7.4.1: EXPUNGE, numbered as the client knows the mailbox.
    assert_eq!(r.untagged.last().map(String::as_str), Some("* 2 EXPUNGE"));
    assert_eq!(
        r.starting("* ")
            .iter()
            .filter(|l| l.ends_with("EXPUNGE"))
            .count(),
        1
    );
    a.ok("FETCH 1:* (UID)").await.exactly(&[
        "* 1 FETCH (UID 1)",
        "* 2 FETCH (UID 3)",
        "* 3 FETCH (UID 4)",
    ]);
}

#[tokio::test]
async fn expunge_is_not_sent_during_fetch_store_or_search() {
    let (_w, addr) = world_with(3).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await;
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    // RFC 9051 §7.5.1: no EXPUNGE while responding to FETCH, STORE or
    // SEARCH, which use sequence numbers the client still holds.
    let r = a.ok("FETCH 1:3 (UID)").await;
    no_expunge(&r);
    r.has("* 1 FETCH (UID 1)").has("* 3 FETCH (UID 3)");
    let r = a.ok("STORE 3 +FLAGS (\\Flagged)").await;
    no_expunge(&r);
    r.has("* 3 FETCH (FLAGS (\\Flagged))");
    let r = a.ok("SEARCH ALL").await;
    no_expunge(&r);
    // Numbers in the client's numbering: message 3 is still 3 (whether the
    // expunged message 2 matches is the server's choice, RFC 2180 §4.1.3).
    let hits = r.one("* SEARCH");
    assert!(
        hits.starts_with("* SEARCH 1 ") && hits.ends_with(" 3"),
        "{r}"
    );
    // RFC 9051 §7.4.1: NOOP is where it comes.
    let r = a.ok("NOOP").await;
    r.has("* 2 EXPUNGE");
    a.ok("FETCH 1:* (UID FLAGS)").await.exactly(&[
        "* 1 FETCH (UID 1 FLAGS ())",
        "* 2 FETCH (UID 3 FLAGS (\\Flagged))",
    ]);
}

#[tokio::test]
async fn expunge_may_be_sent_during_uid_commands() {
    let (_w, addr) = world_with(5).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await;
    // RFC 9051 §7.5.1: "An EXPUNGE response MAY be sent during a UID
    // command"; the engine sends it after the command's own responses.
    b.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let r = a.ok("UID FETCH 1 (FLAGS)").await;
    r.exactly(&["* 1 FETCH (UID 1 FLAGS ())", "* 5 EXPUNGE"]);
    b.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let r = a.ok("UID SEARCH ALL").await;
    assert_eq!(
        r.untagged.last().map(String::as_str),
        Some("* 4 EXPUNGE"),
        "{r}"
    );
    b.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let r = a.ok("UID STORE 1 +FLAGS (\\Seen)").await;
    r.has("* 1 FETCH (UID 1 FLAGS (\\Seen))");
    assert_eq!(
        r.untagged.last().map(String::as_str),
        Some("* 3 EXPUNGE"),
        "{r}"
    );
    a.ok("NOOP").await.exactly(&[]);
    a.ok("FETCH 1:* (UID)")
        .await
        .exactly(&["* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"]);
}

#[tokio::test]
async fn recent_goes_to_exactly_one_session() {
    let (w, addr) = world_with(0).await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await.has("* 0 RECENT");
    b.ok("SELECT INBOX").await.has("* 0 RECENT");
    w.deliver(ALICE, &msg(1)).await;
    // RFC 3501 §2.3.2: \Recent in the first session told of the message…
    a.ok("NOOP").await.exactly(&["* 1 EXISTS", "* 1 RECENT"]);
    // …and in no other.
    b.ok("NOOP").await.exactly(&["* 1 EXISTS", "* 0 RECENT"]);
    a.ok("FETCH 1 (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (FLAGS (\\Recent))"]);
    b.ok("FETCH 1 (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())"]);
    // A session selecting later does not see it as recent either.
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    c.ok("SELECT INBOX")
        .await
        .has("* 1 EXISTS")
        .has("* 0 RECENT");
    // RFC 3501 §7.3.2: the count is this session's: \Recent stays with A.
    a.ok("SEARCH RECENT").await.exactly(&["* SEARCH 1"]);
    b.ok("SEARCH RECENT").await.exactly(&["* SEARCH"]);
}

#[tokio::test]
async fn message_expunged_by_another_session_fetched_by_uid() {
    let (_w, addr) = world_with(2).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await;
    b.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.ok("UID EXPUNGE 2").await;
    // By sequence number: no EXPUNGE may come (RFC 9051 §7.5.1), and the
    // message's content is gone; the engine returns no data for it and OK
    // (one of the choices RFC 2180 §4.1.2 describes).
    let r = a.ok("FETCH 2 (BODY.PEEK[])").await;
    no_expunge(&r);
    r.exactly(&[]);
    // By UID: the UID is gone; the EXPUNGE may now come (RFC 9051 §7.5.1).
    a.ok("UID FETCH 2 (BODY.PEEK[])")
        .await
        .exactly(&["* 2 EXPUNGE"]);
    // RFC 9051 §6.4.8: a UID that does not exist is no error, just no data.
    a.ok("UID FETCH 2 (FLAGS)").await.exactly(&[]);
    a.ok("UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await
        .exactly(&["* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: m1\r\n\r\n)"]);
}

// ---------------------------------------------------------------- NOTIFY

// covers: NOTIFY
#[tokio::test]
async fn notify_reports_other_mailboxes_while_the_client_is_quiet() {
    let (_w, addr) = world_with(0).await;
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    for m in ["Lists", "Lists/a", "Other"] {
        b.ok(&format!("CREATE {m}")).await;
    }
    b.append("Lists/a", &msg(1)).await.tagged_starts("OK");
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    // RFC 5465 §3.1: STATUS for each watched mailbox before the tagged OK;
    // §6.6 SUBTREE is the mailbox and those under it.
    let r = a
        .ok("NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge FlagChange)) (personal (MailboxName SubscriptionChange))")
        .await;
    assert_eq!(
        r.starting("* STATUS Lists/a (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
            .len(),
        1,
        "{r}"
    );
    assert_eq!(
        r.starting("* STATUS Lists (MESSAGES 0 UIDNEXT 1 ").len(),
        1,
        "{r}"
    );
    assert!(
        r.one("* STATUS Lists/a")
            .contains(" UNSEEN 1 HIGHESTMODSEQ "),
        "{r}"
    );
    r.lacks("* STATUS Other").lacks("* STATUS INBOX");
    // §5.2: a new message in a watched mailbox, told without a command.
    b.append("Lists/a", &msg(2)).await.tagged_starts("OK");
    let l = a
        .expect_start("* STATUS Lists/a (MESSAGES 2 UIDNEXT 3 ")
        .await;
    assert!(l.contains(" UNSEEN 2 "), "{l}");
    // §5.1: a flag change there.
    b.ok("SELECT Lists/a").await;
    b.ok("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let l = a
        .expect_start("* STATUS Lists/a (MESSAGES 2 UIDNEXT 3 ")
        .await;
    assert!(l.contains(" UNSEEN 1 "), "{l}");
    // §5.3: an expunge.
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    a.expect_start("* STATUS Lists/a (MESSAGES 2 UIDNEXT 3 ")
        .await;
    b.ok("EXPUNGE").await;
    a.expect_start("* STATUS Lists/a (MESSAGES 1 UIDNEXT 3 ")
        .await;
    // §5.4: names created, renamed (with OLDNAME) and deleted, as LIST.
    b.ok("CREATE New").await;
    a.expect("* LIST () \"/\" New").await;
    b.ok("RENAME New Newer").await;
    a.expect("* LIST () \"/\" Newer (\"OLDNAME\" (\"New\"))")
        .await;
    b.ok("DELETE Newer").await;
    a.expect("* LIST (\\NonExistent) \"/\" Newer").await;
    // §5.5: subscriptions.
    b.ok("SUBSCRIBE Other").await;
    a.expect("* LIST (\\Subscribed) \"/\" Other").await;
    b.ok("UNSUBSCRIBE Other").await;
    a.expect("* LIST () \"/\" Other").await;
    // Other is watched for names only: a new message there says nothing,
    // and what follows is the next event, in Lists/a.
    b.append("Other", &msg(3)).await.tagged_starts("OK");
    b.append("Lists/a", &msg(4)).await.tagged_starts("OK");
    a.expect_start("* STATUS Lists/a (MESSAGES 2 UIDNEXT 4 ")
        .await;
    // §3.2: NOTIFY NONE, and quiet again.
    a.ok("NOTIFY NONE").await.exactly(&[]);
    b.append("Lists/a", &msg(5)).await.tagged_starts("OK");
    b.ok("CREATE Quiet").await;
    a.ok("NOOP").await.exactly(&[]);
}

// covers: NOTIFY
#[tokio::test]
async fn notify_reports_the_selected_mailbox_as_it_changes() {
    let w = Arc::new(World::new().await);
    w.user(ALICE, "pw").await;
    let addr = w.imap().await;
    let mut a = Wire::imap_login(addr, ALICE, "pw").await;
    a.ok("SELECT INBOX").await;
    a.ok("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge FlagChange))")
        .await
        .exactly(&[]);
    // RFC 5465 §5.2: EXISTS, then MessageNew's FETCH items, at once.
    w.deliver(ALICE, &msg(1)).await;
    a.expect("* 1 EXISTS").await;
    a.expect("* 1 RECENT").await;
    a.expect("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {15}")
        .await;
    assert_eq!(a.bytes(15).await, b"Subject: m1\r\n\r\n");
    a.expect(")").await;
    // §5.1 and §5.3: another session's flag change and expunge, at once.
    let mut b = Wire::imap_login(addr, ALICE, "pw").await;
    b.ok("SELECT INBOX").await;
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    a.expect("* 1 FETCH (FLAGS (\\Flagged \\Recent))").await;
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.expect("* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))")
        .await;
    b.ok("EXPUNGE").await;
    a.expect("* 1 EXPUNGE").await;
    // §6.2 SELECTED-DELAYED: the expunge waits for a command that may
    // announce it; the new message does not.
    a.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
        .await
        .exactly(&[]);
    w.deliver(ALICE, &msg(2)).await;
    a.expect("* 1 EXISTS").await;
    a.expect("* 1 RECENT").await;
    b.ok("NOOP").await;
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    // The view is brought in step as a whole: flags come along.
    a.expect("* 1 FETCH (FLAGS (\\Deleted \\Recent))").await;
    b.ok("EXPUNGE").await;
    w.deliver(ALICE, &msg(3)).await;
    a.expect("* 2 EXISTS").await;
    a.expect("* 2 RECENT").await;
    a.ok("NOOP").await.has("* 1 EXPUNGE");
}

#[tokio::test]
async fn notify_refusals() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 5465 §3: NOTIFY is for the authenticated states.
    c.bad("NOTIFY NONE").await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    // §5.9: events the server does not report are named in BADEVENT.
    let r = c
        .imap("NOTIFY SET (personal (MessageNew MailboxMetadataChange))")
        .await;
    r.tagged_starts(
        "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]",
    );
    // §5.2, §5.3: for the selected mailbox MessageNew and MessageExpunge
    // go together; §8: syntax.
    for bad in [
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (inboxes (MessageNew (UID)))",
        "NOTIFY SET (somewhere (MessageNew))",
        "NOTIFY SET",
        "NOTIFY SET (selected (MessageNew (UID NOSUCH) MessageExpunge))",
    ] {
        c.bad(bad).await;
    }
    c.ok("NOOP").await;
}

// ----------------------------------------------------------------- timeouts

#[tokio::test]
async fn unauthenticated_session_times_out() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    c.patient();
    tokio::time::pause();
    // The engine allows two minutes before login (less than the 30-minute
    // autologout RFC 9051 §5.4 asks for once authenticated).
    tokio::time::advance(Duration::from_secs(121)).await;
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn authenticated_session_is_logged_out_after_idle_timeout() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.patient();
    tokio::time::pause();
    // Past the pre-login limit but within [imap] idle_timeout: still there.
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    tokio::time::resume();
    c.ok("NOOP").await.exactly(&[]);
    tokio::time::pause();
    // RFC 9051 §5.4: the autologout timer, then BYE (§7.1.5) and the close.
    tokio::time::advance(Duration::from_secs(31 * 60 + 1)).await;
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn activity_keeps_sessions_alive() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user(ALICE, "pw").await;
    let addr = w.imap().await;
    let mut pre = Wire::connect(addr).await;
    pre.line().await;
    let mut authed = Wire::imap_login(addr, ALICE, "pw").await;
    authed.ok("SELECT INBOX").await;
    pre.patient();
    authed.patient();
    // Three times 110 s: over the two-minute pre-login limit in all, but
    // never that long without a command.
    for _ in 0..3 {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(110)).await;
        tokio::time::resume();
        pre.ok("NOOP").await.exactly(&[]);
        authed.ok("NOOP").await.exactly(&[]);
    }
    // Twice 30 minutes: over [imap] idle_timeout in all, never in one go.
    for _ in 0..2 {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(30 * 60)).await;
        tokio::time::resume();
        authed.ok("NOOP").await.exactly(&[]);
    }
    // The pre-login session had its own silence meanwhile, and is gone.
    pre.expect("* BYE Autologout; idle for too long").await;
    pre.expect_closed().await;
}

// ----------------------------------------------------------------- literals

#[tokio::test]
async fn login_with_synchronising_literals() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 9051 §4.3 / §7.5: a synchronising literal waits for "+".
    c.send_line(&format!("A1 LOGIN {{{}}}", ALICE.len())).await;
    c.expect_start("+ ").await;
    c.send(format!("{ALICE} {{2}}\r\n").as_bytes()).await;
    c.expect_start("+ ").await;
    c.send(b"pw\r\n").await;
    c.replies("A1", "LOGIN")
        .await
        .exactly(&[])
        .tagged_starts("OK [CAPABILITY ");
}

// covers: LITERAL+
#[tokio::test]
async fn login_with_non_synchronising_literals() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 7888 §3: "{n+}" is sent without waiting; no continuation comes.
    c.send(format!("A1 LOGIN {{{}+}}\r\n{ALICE} {{2+}}\r\npw\r\n", ALICE.len()).as_bytes())
        .await;
    c.replies("A1", "LOGIN")
        .await
        .exactly(&[])
        .tagged_starts("OK [CAPABILITY ");
}

#[tokio::test]
async fn too_large_a_literal_is_bad_and_the_session_goes_on() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 9051 §7.5: refusing a synchronising literal, the server answers
    // with the tagged BAD instead of "+", and the client sends no data.
    c.bad("LOGIN {1000000}").await.exactly(&[]);
    c.ok(&format!("LOGIN {ALICE} pw")).await;
    c.ok("NOOP").await;
}

#[tokio::test]
async fn a_line_over_the_limit_ends_the_session() {
    let (_w, addr) = world_with(0).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    // One byte over the engine's 256 KiB line limit, without a line end:
    // the engine cannot find where this command ends, so it says why and
    // closes (RFC 9051 §7.1.5 BYE, RFC 5530 §3 TOOBIG). Exactly that many
    // bytes, so that the server has read them all before closing.
    let mut line = b"A2 NOOP ".to_vec();
    line.resize(256 * 1024 + 1, b'x');
    c.send(&line).await;
    c.expect("* BYE [TOOBIG] Line or literal too long").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn a_long_line_within_the_limit_is_taken() {
    let (_w, addr) = world_with(3).await;
    let mut c = Wire::imap_login(addr, ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    // RFC 7162 §4: servers should take command lines of at least 8192
    // octets; this one is 100 KiB (a long UID set).
    let set: Vec<String> = (1..=16000).map(|n| n.to_string()).collect();
    let cmd = format!("UID FETCH {} (UID)", set.join(","));
    assert!(cmd.len() > 80 * 1024);
    c.ok(&cmd).await.exactly(&[
        "* 1 FETCH (UID 1)",
        "* 2 FETCH (UID 2)",
        "* 3 FETCH (UID 3)",
    ]);
}
