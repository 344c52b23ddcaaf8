//! The POP3 engine on the wire, state by state (RFC 1939 §3): the greeting,
//! CAPA (RFC 2449), USER/PASS and SASL PLAIN (RFC 5034), STLS (RFC 2595),
//! the TRANSACTION commands with their exact reply formats, the UPDATE state,
//! the maildrop lock, the line limit and the autologout timer (paused clock).
use base64::Engine as _;
use postgate_store::UserRef;
use postgate_testkit::world::{Wire, World};
use postgate_types::FolderRole;
use std::time::Duration;

const ALICE: &str = "alice@test.example";
const GREETING: &str = "+OK mx.test.example Postgate POP3 ready";
const NOT_LOGGED_IN: &str = "-ERR Not logged in";

/// A plain message.
const M1: &[u8] = b"From: a@remote.test\r\nSubject: one\r\n\r\nfirst body\r\n";
/// A message whose lines start with dots: each must be stuffed on the wire,
/// and the line "." alone would end the reply early if it were not.
const M2: &[u8] =
    b"Subject: dots\r\nX-Dot: .\r\n\r\n.hidden\r\nplain\r\n..\r\n.\r\n...three\r\nend\r\n";
/// A message with numbered body lines, for TOP.
const M3: &[u8] = b"Subject: top\r\nX-Two: 2\r\n\r\nline 1\r\nline 2\r\n.line 3\r\nline 4\r\n";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A world with alice (password "pw") and `messages` in her Inbox.
async fn world(config: &str, messages: &[&[u8]]) -> (World, UserRef) {
    let w = World::with_config(config).await;
    let alice = w.user(ALICE, "pw").await;
    for m in messages {
        w.deliver(ALICE, m).await;
    }
    (w, alice)
}

/// A new connection to `addr` with the greeting read.
async fn connect_to(addr: std::net::SocketAddr) -> Wire {
    let mut c = Wire::connect(addr).await;
    c.expect(GREETING).await;
    c
}

/// A new connection to a new listener, with the greeting read.
async fn connect(w: &World) -> Wire {
    connect_to(w.pop3().await).await
}

/// Sends one command line and returns the status line.
async fn st(c: &mut Wire, line: &str) -> String {
    c.send_line(line).await;
    c.line().await
}

/// A session on `addr` in TRANSACTION state through USER/PASS.
async fn login_at(addr: std::net::SocketAddr, user: &str) -> Wire {
    let mut c = connect_to(addr).await;
    assert_eq!(st(&mut c, &format!("USER {user}")).await, "+OK Send PASS");
    let r = st(&mut c, "PASS pw").await;
    assert!(r.starts_with("+OK Logged in, "), "{r}");
    c
}

/// A session on a new listener in TRANSACTION state through USER/PASS.
async fn login(w: &World, user: &str) -> Wire {
    login_at(w.pop3().await, user).await
}

/// CAPA's list (RFC 2449 §5), after checking the status line.
async fn capa(c: &mut Wire) -> Vec<String> {
    assert_eq!(st(c, "CAPA").await, "+OK Capability list follows");
    c.pop3_multiline().await
}

/// The raw lines of a multi-line reply up to the terminating ".", CRLF
/// included (for checking the stuffing as sent).
async fn raw_multiline(c: &mut Wire) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    loop {
        let l = c
            .read_line_raw()
            .await
            .expect("connection closed mid-reply");
        assert!(l.ends_with(b"\r\n"), "line without CRLF: {l:?}");
        if l == b".\r\n" {
            return lines;
        }
        lines.push(l);
    }
}

/// RFC 1939 §3: a line starting with "." is sent with another "." in front;
/// the receiver removes it. Returns the unstuffed bytes.
fn unstuff(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        match l.strip_prefix(b".") {
            Some(rest) => out.extend_from_slice(rest),
            None => out.extend_from_slice(l),
        }
    }
    out
}

/// How many messages a folder of alice's (by role) holds in the store.
async fn count(w: &World, user: &UserRef, role: FolderRole) -> usize {
    let folder = w
        .store
        .folders(user.id)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.role == Some(role))
        .unwrap_or_else(|| panic!("no {role:?} folder"));
    w.store.snapshot(folder.id).await.unwrap().entries.len()
}

/// The Inbox's UIDVALIDITY, the first half of each UIDL.
async fn uid_validity(w: &World, user: &UserRef) -> u32 {
    w.store
        .folder(user.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .uid_validity
}

fn caps(extra_auth: &[&str], expire: &str) -> Vec<String> {
    let mut v: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra_auth.iter().map(|s| s.to_string()));
    v.push(expire.to_string());
    v
}

fn implementation() -> String {
    format!("IMPLEMENTATION Postgate-{}", env!("CARGO_PKG_VERSION"))
}

// ------------------------------------------------------------ AUTHORIZATION

#[tokio::test]
async fn greeting_has_our_name_and_no_apop_timestamp() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await; // the exact greeting, checked by connect
    // RFC 1939 §7: APOP needs a timestamp in the greeting; none was given,
    // so APOP is not a command here.
    assert!(!GREETING.contains('<'));
    assert_eq!(
        st(
            &mut c,
            "APOP alice@test.example c4c9334bac560ecc979e58001b3e22fb"
        )
        .await,
        "-ERR Unknown command"
    );
    // RFC 1939 §6: QUIT in AUTHORIZATION ends the session without UPDATE.
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye");
    c.expect_closed().await;
}

#[tokio::test]
async fn capa_lists_exactly_what_the_session_may_use() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    // RFC 2449 §5: one capability per line; STLS (RFC 2595 §4) on the
    // cleartext port; USER and SASL PLAIN since plaintext logins are allowed.
    let mut want = caps(&["STLS", "USER", "SASL PLAIN"], "EXPIRE NEVER");
    want.push(implementation());
    assert_eq!(capa(&mut c).await, want);
}

#[tokio::test]
async fn capa_is_the_same_in_both_states() {
    let (w, _) = world("", &[M1]).await;
    let mut c = connect(&w).await;
    let before = capa(&mut c).await;
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS pw").await,
        format!("+OK Logged in, 1 messages ({} octets)", M1.len())
    );
    // RFC 2449 §5: "Capabilities available in the AUTHORIZATION state MUST
    // be announced in both states."
    assert_eq!(capa(&mut c).await, before);
}

#[tokio::test]
async fn expire_and_login_delay_are_advertised_as_configured() {
    let (w, _) = world(
        "[pop3]\nallow_plaintext = true\nexpire = 0\nlogin_delay = 60\n",
        &[],
    )
    .await;
    let mut c = connect(&w).await;
    // RFC 2449 §6: EXPIRE 0 (deleted once retrieved) and LOGIN-DELAY seconds.
    let mut want = caps(&["STLS", "USER", "SASL PLAIN"], "EXPIRE 0");
    want.push("LOGIN-DELAY 60".into());
    want.push(implementation());
    assert_eq!(capa(&mut c).await, want);
}

#[tokio::test]
async fn without_plaintext_logins_only_stls_is_offered() {
    let (w, _) = world("[pop3]\nallow_plaintext = false\n", &[]).await;
    let mut c = connect(&w).await;
    let mut want = caps(&["STLS"], "EXPIRE NEVER");
    want.push(implementation());
    assert_eq!(capa(&mut c).await, want);
    // RFC 2595 §4 / RFC 3206 §4: refused as an authentication matter.
    let refusal = "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS";
    assert_eq!(st(&mut c, "USER alice@test.example").await, refusal);
    assert_eq!(
        st(
            &mut c,
            &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw"))
        )
        .await,
        refusal
    );
    // RFC 5034 §4: a bare AUTH lists the mechanisms: none here.
    assert_eq!(st(&mut c, "AUTH").await, "+OK ");
    assert_eq!(c.pop3_multiline().await, Vec::<String>::new());
}

#[tokio::test]
async fn user_and_pass_log_in_and_count_the_maildrop() {
    let (w, _) = world("", &[M1, M2]).await;
    let mut c = connect(&w).await;
    // RFC 1939 §7: USER, then PASS (the rest of the line, spaces included).
    assert_eq!(st(&mut c, "user alice@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS pw").await,
        format!("+OK Logged in, 2 messages ({} octets)", M1.len() + M2.len())
    );
    assert_eq!(st(&mut c, "NOOP").await, "+OK ");
}

#[tokio::test]
async fn a_password_with_spaces_is_the_rest_of_the_line() {
    let w = World::new().await;
    w.user("bob@test.example", "two words here").await;
    let mut c = connect(&w).await;
    assert_eq!(
        st(&mut c, "PASS two words here").await,
        "-ERR Send USER first"
    );
    assert_eq!(st(&mut c, "USER bob@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS two words here").await,
        "+OK Logged in, 0 messages (0 octets)"
    );
}

#[tokio::test]
async fn wrong_passwords_get_auth_codes_and_the_third_ends_the_session() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    // RFC 3206 §4 (AUTH-RESP-CODE): [AUTH] for bad credentials; an unknown
    // user gets the same answer as a wrong password.
    for user in ["alice@test.example", "nobody@test.example"] {
        assert_eq!(st(&mut c, &format!("USER {user}")).await, "+OK Send PASS");
        assert_eq!(
            st(&mut c, "PASS wrong").await,
            "-ERR [AUTH] Authentication failed"
        );
    }
    // The USER was used up by the failed PASS.
    assert_eq!(st(&mut c, "PASS pw").await, "-ERR Send USER first");
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS wrong").await,
        "-ERR [AUTH] Authentication failed"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn unknown_login_options_are_refused_and_known_ones_apply() {
    let (w, _) = world("", &[M1, M2, M3]).await;
    let mut c = connect(&w).await;
    assert_eq!(
        st(&mut c, "USER alice@test.example:colour=blue").await,
        "+OK Send PASS"
    );
    assert_eq!(
        st(&mut c, "PASS pw").await,
        "-ERR [AUTH] unknown login option \"colour=blue\""
    );
    assert_eq!(
        st(&mut c, "USER alice@test.example:sdl=2").await,
        "+OK Send PASS"
    );
    assert_eq!(
        st(&mut c, "PASS pw").await,
        format!("+OK Logged in, 2 messages ({} octets)", M1.len() + M2.len())
    );
}

#[tokio::test]
async fn auth_plain_with_an_initial_response() {
    let (w, _) = world("", &[M1]).await;
    let mut c = connect(&w).await;
    // RFC 5034 §4 with RFC 4616 §2: [authzid] NUL authcid NUL passwd.
    let r = st(
        &mut c,
        &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw")),
    )
    .await;
    assert_eq!(
        r,
        format!("+OK Logged in, 1 messages ({} octets)", M1.len())
    );
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 1 {}", M1.len()));
}

#[tokio::test]
async fn auth_plain_after_an_empty_challenge() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    // RFC 5034 §4: "+" SP and the (empty) base64 challenge.
    assert_eq!(st(&mut c, "auth plain").await, "+ ");
    let r = st(&mut c, &b64(b"alice@test.example\0alice@test.example\0pw")).await;
    assert_eq!(r, "+OK Logged in, 0 messages (0 octets)");
}

#[tokio::test]
async fn auth_cancelled_with_a_star_leaves_authorization_open() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    assert_eq!(st(&mut c, "AUTH PLAIN").await, "+ ");
    // RFC 5034 §4: "*" cancels; the server answers -ERR.
    assert_eq!(st(&mut c, "*").await, "-ERR Authentication cancelled");
    assert_eq!(st(&mut c, "STAT").await, NOT_LOGGED_IN);
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    assert!(st(&mut c, "PASS pw").await.starts_with("+OK Logged in"));
}

#[tokio::test]
async fn auth_refuses_bad_responses_and_other_mechanisms() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    // RFC 5034 §4: a bare AUTH lists the mechanisms, multi-line.
    assert_eq!(st(&mut c, "AUTH").await, "+OK ");
    assert_eq!(c.pop3_multiline().await, ["PLAIN"]);
    assert_eq!(
        st(&mut c, "AUTH CRAM-MD5").await,
        "-ERR Unsupported mechanism"
    );
    assert_eq!(st(&mut c, "AUTH PLAIN !!!").await, "-ERR Invalid base64");
    assert_eq!(
        st(&mut c, &format!("AUTH PLAIN {}", b64(b"no-nuls"))).await,
        "-ERR Invalid PLAIN response"
    );
    assert_eq!(
        st(
            &mut c,
            &format!(
                "AUTH PLAIN {}",
                b64(b"bob@test.example\0alice@test.example\0pw")
            )
        )
        .await,
        "-ERR [AUTH] Cannot act as another user"
    );
    assert_eq!(
        st(
            &mut c,
            &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0bad"))
        )
        .await,
        "-ERR [AUTH] Authentication failed"
    );
}

// ------------------------------------------------------------------- STLS

#[tokio::test]
async fn stls_upgrades_and_capa_no_longer_offers_it() {
    let (w, _) = world("[pop3]\nallow_plaintext = false\n", &[M1]).await;
    let mut c = connect(&w).await;
    // RFC 2595 §4: +OK, then the TLS negotiation at once.
    assert_eq!(st(&mut c, "STLS").await, "+OK Begin TLS negotiation");
    c.start_tls(&w.cert_pem()).await;
    // Under TLS: USER and SASL now, STLS no more.
    let mut want = caps(&["USER", "SASL PLAIN"], "EXPIRE NEVER");
    want.push(implementation());
    assert_eq!(capa(&mut c).await, want);
    assert_eq!(st(&mut c, "STLS").await, "-ERR TLS is already active");
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS pw").await,
        format!("+OK Logged in, 1 messages ({} octets)", M1.len())
    );
}

#[tokio::test]
async fn commands_pipelined_after_stls_are_discarded() {
    let (w, _) = world("[pop3]\nallow_plaintext = false\n", &[]).await;
    let mut c = connect(&w).await;
    // A USER injected in cleartext behind STLS must not count under TLS
    // (RFC 2595 §4; the same attack as RFC 3207 §4.2's).
    c.send(b"STLS\r\nUSER alice@test.example\r\n").await;
    c.expect("+OK Begin TLS negotiation").await;
    // start_tls fails if the server answered the USER in the clear.
    c.start_tls(&w.cert_pem()).await;
    assert_eq!(st(&mut c, "PASS pw").await, "-ERR Send USER first");
}

#[tokio::test]
async fn stls_is_refused_once_logged_in() {
    let (w, _) = world("", &[]).await;
    let mut c = login(&w, ALICE).await;
    // RFC 2595 §4: STLS is valid in the AUTHORIZATION state only.
    assert_eq!(
        st(&mut c, "STLS").await,
        "-ERR STLS is only allowed before login"
    );
    assert_eq!(st(&mut c, "NOOP").await, "+OK ");
}

// ------------------------------------------------------------- TRANSACTION

#[tokio::test]
async fn stat_list_and_uidl_have_the_exact_formats() {
    let (w, alice) = world("", &[M1, M2, M3]).await;
    let v = uid_validity(&w, &alice).await;
    let mut c = login(&w, ALICE).await;
    let total = M1.len() + M2.len() + M3.len();
    // RFC 1939 §5: "+OK nn mm" (count, octets).
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 3 {total}"));
    // RFC 1939 §5: LIST, a scan listing per message "msg octets".
    assert_eq!(
        st(&mut c, "LIST").await,
        format!("+OK 3 messages ({total} octets)")
    );
    assert_eq!(
        c.pop3_multiline().await,
        [
            format!("1 {}", M1.len()),
            format!("2 {}", M2.len()),
            format!("3 {}", M3.len())
        ]
    );
    assert_eq!(st(&mut c, "LIST 2").await, format!("+OK 2 {}", M2.len()));
    assert_eq!(st(&mut c, "LIST 4").await, "-ERR No such message");
    assert_eq!(st(&mut c, "LIST 0").await, "-ERR No such message");
    // RFC 1939 §7: UIDL, "msg unique-id"; the ids stay fixed.
    assert_eq!(st(&mut c, "UIDL").await, "+OK ");
    let uidl = c.pop3_multiline().await;
    assert_eq!(
        uidl,
        [format!("1 {v}.1"), format!("2 {v}.2"), format!("3 {v}.3")]
    );
    for l in &uidl {
        let id = l.split(' ').nth(1).unwrap();
        // RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
        assert!(
            (1..=70).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{id}"
        );
    }
    assert_eq!(st(&mut c, "UIDL 3").await, format!("+OK 3 {v}.3"));
    assert_eq!(st(&mut c, "UIDL 9").await, "-ERR No such message");
}

#[tokio::test]
async fn bad_arguments_are_syntax_errors() {
    let (w, _) = world("", &[M1]).await;
    let mut c = login(&w, ALICE).await;
    for (line, want) in [
        ("LIST x", "-ERR Syntax: a message number"),
        ("LIST 1 2", "-ERR Syntax: [msg]"),
        ("UIDL -1", "-ERR Syntax: a message number"),
        ("RETR", "-ERR Syntax: a message number"),
        ("RETR 1 2", "-ERR Syntax: msg"),
        ("DELE +1", "-ERR Syntax: a message number"),
        ("TOP 1", "-ERR Syntax: TOP msg n"),
        ("TOP 1 x", "-ERR Syntax: TOP msg n"),
        ("STAT 1", "-ERR Syntax: no arguments"),
        ("QUIT now", "-ERR Syntax: no arguments"),
    ] {
        assert_eq!(st(&mut c, line).await, want, "{line}");
    }
    // Still in TRANSACTION, nothing changed.
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 1 {}", M1.len()));
}

#[tokio::test]
async fn retr_is_byte_exact_with_dot_stuffing() {
    let (w, _) = world("", &[M1, M2]).await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(
        st(&mut c, "RETR 2").await,
        format!("+OK {} octets", M2.len())
    );
    let lines = raw_multiline(&mut c).await;
    // RFC 1939 §3: each line starting with "." goes out with one more.
    let stuffed: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    assert_eq!(
        stuffed,
        [
            &b"Subject: dots\r\n"[..],
            b"X-Dot: .\r\n",
            b"\r\n",
            b"..hidden\r\n",
            b"plain\r\n",
            b"...\r\n",
            b"..\r\n",
            b"....three\r\n",
            b"end\r\n",
        ]
    );
    assert_eq!(unstuff(&lines), M2);
    // And the plain one, unchanged.
    assert_eq!(
        st(&mut c, "retr 1").await,
        format!("+OK {} octets", M1.len())
    );
    assert_eq!(unstuff(&raw_multiline(&mut c).await), M1);
    assert_eq!(st(&mut c, "RETR 3").await, "-ERR No such message");
}

#[tokio::test]
async fn top_sends_the_header_and_n_body_lines() {
    let (w, _) = world("", &[M3]).await;
    let mut c = login(&w, ALICE).await;
    let header = b"Subject: top\r\nX-Two: 2\r\n\r\n".as_slice();
    // RFC 1939 §7: the header, the blank line, then n lines of the body.
    for (n, body) in [
        (0, &b""[..]),
        (1, b"line 1\r\n"),
        (3, b"line 1\r\nline 2\r\n.line 3\r\n"),
        (99, b"line 1\r\nline 2\r\n.line 3\r\nline 4\r\n"),
    ] {
        assert!(st(&mut c, &format!("TOP 1 {n}")).await.starts_with("+OK "));
        let got = unstuff(&raw_multiline(&mut c).await);
        assert_eq!(got, [header, body].concat(), "TOP 1 {n}");
    }
    // The stuffed line on the wire.
    assert!(st(&mut c, "TOP 1 3").await.starts_with("+OK "));
    let lines = raw_multiline(&mut c).await;
    assert_eq!(lines.last().unwrap(), b"..line 3\r\n");
    assert_eq!(st(&mut c, "TOP 2 1").await, "-ERR No such message");
}

#[tokio::test]
async fn dele_marks_and_rset_unmarks() {
    let (w, alice) = world("", &[M1, M2]).await;
    let v = uid_validity(&w, &alice).await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "DELE 1").await, "+OK Message 1 deleted");
    // RFC 1939 §5: a deleted message may not be referred to again.
    assert_eq!(st(&mut c, "DELE 1").await, "-ERR Message already deleted");
    assert_eq!(st(&mut c, "DELE 3").await, "-ERR No such message");
    assert_eq!(st(&mut c, "RETR 1").await, "-ERR No such message");
    assert_eq!(st(&mut c, "TOP 1 0").await, "-ERR No such message");
    assert_eq!(st(&mut c, "LIST 1").await, "-ERR No such message");
    assert_eq!(st(&mut c, "UIDL 1").await, "-ERR No such message");
    // RFC 1939 §5: STAT and LIST leave deleted messages out; numbers stay.
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 1 {}", M2.len()));
    st(&mut c, "LIST").await;
    assert_eq!(c.pop3_multiline().await, [format!("2 {}", M2.len())]);
    st(&mut c, "UIDL").await;
    assert_eq!(c.pop3_multiline().await, [format!("2 {v}.2")]);
    // RFC 1939 §5 RSET: every mark removed.
    assert_eq!(
        st(&mut c, "RSET").await,
        format!("+OK 2 messages ({} octets)", M1.len() + M2.len())
    );
    assert_eq!(
        st(&mut c, "STAT").await,
        format!("+OK 2 {}", M1.len() + M2.len())
    );
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (0 messages removed)");
    c.expect_closed().await;
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 2);
}

#[tokio::test]
async fn quit_enters_update_and_a_new_session_sees_the_result() {
    let (w, alice) = world("", &[M1, M2, M3]).await;
    let v = uid_validity(&w, &alice).await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "DELE 1").await, "+OK Message 1 deleted");
    assert_eq!(st(&mut c, "DELE 3").await, "+OK Message 3 deleted");
    // RFC 1939 §6: QUIT in TRANSACTION removes the marked messages.
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (2 messages removed)");
    c.expect_closed().await;
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 1);
    // [pop3] delete = "trash" (the default): they went to Trash.
    assert_eq!(count(&w, &alice, FolderRole::Trash).await, 2);
    // At once: the lock is free, the survivor is message 1 with its UIDL.
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 1 {}", M2.len()));
    assert_eq!(st(&mut c, "UIDL 1").await, format!("+OK 1 {v}.2"));
}

#[tokio::test]
async fn delete_purge_removes_for_good() {
    let (w, alice) = world(
        "[pop3]\nallow_plaintext = true\ndelete = \"purge\"\n",
        &[M1],
    )
    .await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "DELE 1").await, "+OK Message 1 deleted");
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (1 messages removed)");
    c.expect_closed().await;
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 0);
    assert_eq!(count(&w, &alice, FolderRole::Trash).await, 0);
}

#[tokio::test]
async fn a_session_that_ends_without_quit_removes_nothing() {
    let (w, alice) = world("", &[M1, M2]).await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "DELE 1").await, "+OK Message 1 deleted");
    assert_eq!(st(&mut c, "DELE 2").await, "+OK Message 2 deleted");
    // RFC 1939 §6: no QUIT, no UPDATE state.
    c.shutdown_write().await;
    c.expect_closed().await;
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 2);
    assert_eq!(count(&w, &alice, FolderRole::Trash).await, 0);
}

#[tokio::test]
async fn expire_zero_removes_what_was_retrieved() {
    let (w, alice) = world(
        "[pop3]\nallow_plaintext = true\nexpire = 0\n",
        &[M1, M2, M3],
    )
    .await;
    let mut c = login(&w, ALICE).await;
    // RFC 2449 §6 EXPIRE 0: retrieved messages go at the session's end;
    // TOP is not a retrieval.
    assert!(st(&mut c, "RETR 2").await.starts_with("+OK "));
    raw_multiline(&mut c).await;
    assert!(st(&mut c, "TOP 3 0").await.starts_with("+OK "));
    raw_multiline(&mut c).await;
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (1 messages removed)");
    c.expect_closed().await;
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 2);
}

#[tokio::test]
async fn commands_of_the_wrong_state_are_refused() {
    let (w, _) = world("", &[M1]).await;
    let mut c = connect(&w).await;
    // RFC 1939 §4: only USER/PASS/AUTH (and QUIT, CAPA, STLS) before login.
    for cmd in [
        "STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP",
    ] {
        assert_eq!(st(&mut c, cmd).await, NOT_LOGGED_IN, "{cmd}");
    }
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    assert!(st(&mut c, "PASS pw").await.starts_with("+OK Logged in"));
    // RFC 1939 §5: once in TRANSACTION, no second login.
    for cmd in ["USER alice@test.example", "PASS pw", "AUTH PLAIN"] {
        assert_eq!(st(&mut c, cmd).await, "-ERR Already logged in", "{cmd}");
    }
    assert_eq!(st(&mut c, "STAT").await, format!("+OK 1 {}", M1.len()));
}

#[tokio::test]
async fn unknown_commands_are_refused_and_the_session_goes_on() {
    let (w, _) = world("", &[]).await;
    let mut c = connect(&w).await;
    assert_eq!(st(&mut c, "XYZZY").await, "-ERR Unknown command");
    assert_eq!(st(&mut c, "").await, "-ERR Unknown command");
    assert_eq!(st(&mut c, "EHLO client.test").await, "-ERR Unknown command");
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
}

#[tokio::test]
async fn lines_longer_than_255_octets_are_refused_whole() {
    let (w, _) = world("", &[M1]).await;
    let mut c = connect(&w).await;
    // RFC 2449 §4: commands are at most 255 octets, CRLF included. A USER
    // line one octet too long is refused and sets no user.
    let user = |len: usize| {
        let head = "USER alice@test.example:sdl=";
        format!("{head}{}1", "0".repeat(len - 2 - head.len() - 1))
    };
    assert_eq!(user(256).len() + 2, 256);
    assert_eq!(st(&mut c, &user(256)).await, "-ERR Line too long");
    assert_eq!(st(&mut c, "PASS pw").await, "-ERR Send USER first");
    // A longer one in pieces: refused once, at its end; nothing of it runs.
    c.send(format!("USER {}", "b".repeat(3000)).as_bytes())
        .await;
    c.send(b"\r\nPASS pw\r\n").await;
    c.expect("-ERR Line too long").await;
    c.expect("-ERR Send USER first").await;
    // Exactly 255 octets is a command (sdl=000…1: one message).
    assert_eq!(st(&mut c, &user(255)).await, "+OK Send PASS");
    assert_eq!(
        st(&mut c, "PASS pw").await,
        format!("+OK Logged in, 1 messages ({} octets)", M1.len())
    );
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let (w, alice) = world("", &[M1, M2]).await;
    let v = uid_validity(&w, &alice).await;
    let mut c = connect(&w).await;
    // RFC 2449 §6 PIPELINING: several commands in one write.
    c.send(b"USER alice@test.example\r\nPASS pw\r\nSTAT\r\nLIST 2\r\nUIDL 1\r\nDELE 1\r\nSTAT\r\nQUIT\r\n")
        .await;
    c.expect("+OK Send PASS").await;
    c.expect(&format!(
        "+OK Logged in, 2 messages ({} octets)",
        M1.len() + M2.len()
    ))
    .await;
    c.expect(&format!("+OK 2 {}", M1.len() + M2.len())).await;
    c.expect(&format!("+OK 2 {}", M2.len())).await;
    c.expect(&format!("+OK 1 {v}.1")).await;
    c.expect("+OK Message 1 deleted").await;
    c.expect(&format!("+OK 1 {}", M2.len())).await;
    c.expect("+OK Bye (1 messages removed)").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn a_second_session_finds_the_maildrop_in_use() {
    let (w, _) = world("", &[M1]).await;
    let mut a = login(&w, ALICE).await;
    let mut b = connect(&w).await;
    assert_eq!(st(&mut b, "USER alice@test.example").await, "+OK Send PASS");
    // RFC 2449 §8.1.2: the credentials were right, the maildrop is busy.
    assert_eq!(
        st(&mut b, "PASS pw").await,
        "-ERR [IN-USE] Mailbox is locked by another session"
    );
    assert_eq!(
        st(
            &mut b,
            &format!("AUTH PLAIN {}", b64(b"\0alice@test.example\0pw"))
        )
        .await,
        "-ERR [IN-USE] Mailbox is locked by another session"
    );
    assert_eq!(st(&mut b, "STAT").await, NOT_LOGGED_IN);
    // Once the first session has quit, the second may log in.
    assert_eq!(st(&mut a, "QUIT").await, "+OK Bye (0 messages removed)");
    a.expect_closed().await;
    assert_eq!(st(&mut b, "USER alice@test.example").await, "+OK Send PASS");
    assert_eq!(
        st(&mut b, "PASS pw").await,
        format!("+OK Logged in, 1 messages ({} octets)", M1.len())
    );
}

#[tokio::test]
async fn the_maildrop_is_free_as_soon_as_quit_is_answered() {
    let (w, _) = world("", &[M1]).await;
    let addr = w.pop3().await;
    for _ in 0..3 {
        let mut c = login_at(addr, ALICE).await;
        assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (0 messages removed)");
        // The next login comes at once, before the close is read: the lock
        // was released before QUIT's +OK, so no -ERR [IN-USE].
    }
}

#[tokio::test]
async fn login_delay_refuses_a_login_too_soon() {
    let (w, _) = world("[pop3]\nallow_plaintext = true\nlogin_delay = 600\n", &[]).await;
    let addr = w.pop3().await;
    let mut c = login_at(addr, ALICE).await;
    assert_eq!(st(&mut c, "QUIT").await, "+OK Bye (0 messages removed)");
    c.expect_closed().await;
    let mut c = connect_to(addr).await;
    assert_eq!(st(&mut c, "USER alice@test.example").await, "+OK Send PASS");
    // RFC 2449 §8.1.1: LOGIN-DELAY.
    assert_eq!(
        st(&mut c, "PASS pw").await,
        "-ERR [LOGIN-DELAY] Logged in too recently"
    );
    assert_eq!(st(&mut c, "STAT").await, NOT_LOGGED_IN);
}

#[tokio::test]
async fn an_idle_session_is_logged_out_without_update() {
    let (w, alice) = world(
        "[pop3]\nallow_plaintext = true\nidle_timeout = \"10m\"\n",
        &[M1],
    )
    .await;
    let mut c = login(&w, ALICE).await;
    assert_eq!(st(&mut c, "DELE 1").await, "+OK Message 1 deleted");
    c.patient();
    tokio::time::pause();
    // RFC 1939 §3: the timer is at least 10 minutes; not yet.
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    assert_eq!(st(&mut c, "NOOP").await, "+OK ");
    // Any command restarts it: 10 minutes from the NOOP, it fires.
    tokio::time::advance(Duration::from_secs(10 * 60 + 1)).await;
    c.expect("-ERR Autologout; idle for too long").await;
    c.expect_closed().await;
    tokio::time::resume();
    // RFC 1939 §3: "the session does NOT enter the UPDATE state".
    assert_eq!(count(&w, &alice, FolderRole::Inbox).await, 1);
}

/// RETR reads the next messages ahead with the one asked for (at most 16,
/// 256 KiB in all): whatever the order of RETR and TOP, with DELE between
/// them and a message too large to join the others, each reply is that
/// message's own bytes.
#[tokio::test]
async fn retrieval_in_any_order_gets_each_message_whole() {
    let big = format!("Subject: big\r\n\r\n{}\r\n", "b".repeat(300_000));
    let small: Vec<String> = (1..=20)
        .map(|i| format!("Subject: s{i}\r\n\r\nbody of {i}\r\n.dot {i}\r\n"))
        .collect();
    let mut all: Vec<&[u8]> = small.iter().map(|m| m.as_bytes()).collect();
    all.insert(5, big.as_bytes());
    let (w, _) = world("", &all).await;
    let mut c = login(&w, ALICE).await;
    // In order, then out of order, with a DELE in between (RFC 1939 §6).
    assert!(st(&mut c, "DELE 3").await.starts_with("+OK"));
    for n in [1, 2, 4, 5, 6, 7, 21, 8, 9, 20, 10] {
        let r = st(&mut c, &format!("RETR {n}")).await;
        assert_eq!(r, format!("+OK {} octets", all[n - 1].len()), "RETR {n}");
        let body = unstuff(&raw_multiline(&mut c).await);
        assert_eq!(body, all[n - 1], "RETR {n}");
    }
    assert_eq!(st(&mut c, "RETR 3").await, "-ERR No such message");
    // TOP from what was read ahead: the header and one line.
    assert!(st(&mut c, "TOP 11 1").await.starts_with("+OK"));
    assert_eq!(
        unstuff(&raw_multiline(&mut c).await),
        b"Subject: s10\r\n\r\nbody of 10\r\n"
    );
    assert!(st(&mut c, "RETR 11").await.starts_with("+OK"));
    assert_eq!(unstuff(&raw_multiline(&mut c).await), all[10]);
    assert!(st(&mut c, "RSET").await.starts_with("+OK"));
    assert!(st(&mut c, "RETR 3").await.starts_with("+OK"));
    assert_eq!(unstuff(&raw_multiline(&mut c).await), all[2]);
    assert!(st(&mut c, "QUIT").await.starts_with("+OK"));
}
