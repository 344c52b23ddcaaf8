//! IMAP on the wire, putting messages in and taking them out: APPEND with
//! synchronising and LITERAL+ literals (RFC 9051 §6.3.12, RFC 7888), flags
//! and internal dates, APPENDUID/COPYUID and UID EXPUNGE (RFC 4315),
//! APPENDLIMIT (RFC 7889), COPY and MOVE (RFC 9051 §6.4.7, RFC 6851),
//! EXPUNGE, and what CLOSE and UNSELECT do with \Deleted messages.
use postgate_testkit::world::{Wire, World};

const ALICE: &str = "alice@test.example";

/// A world with alice and `n` messages in her Inbox ("Subject: m1" …).
async fn alice_with(n: usize, config: &str) -> World {
    let w = World::with_config(config).await;
    w.user(ALICE, "pw").await;
    for i in 1..=n {
        w.deliver(
            ALICE,
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        )
        .await;
    }
    w
}

/// UIDVALIDITY of `mailbox`.
async fn uidvalidity(c: &mut Wire, mailbox: &str) -> u64 {
    let r = c.ok(&format!("STATUS {mailbox} (UIDVALIDITY)")).await;
    let line = r.one("* STATUS ");
    line.rsplit_once("UIDVALIDITY ")
        .and_then(|(_, v)| v.strip_suffix(')'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {line}"))
}

/// The subjects of every message in the selected mailbox, in order.
async fn subjects(c: &mut Wire) -> Vec<String> {
    let r = c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    r.untagged
        .iter()
        .filter_map(|l| {
            l.split("Subject: ")
                .nth(1)
                .map(|s| s.split('\r').next().unwrap_or("").to_string())
        })
        .collect()
}

// --------------------------------------------------------------- APPEND

// covers: UIDPLUS
#[tokio::test]
async fn append_with_a_synchronising_literal_waits_for_the_go_ahead() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let uv = uidvalidity(&mut c, "INBOX").await;
    let msg = b"Subject: sync\r\n\r\nhello\r\n";
    c.send_line(&format!("A1 APPEND INBOX {{{}}}", msg.len()))
        .await;
    // RFC 9051 §7.5: a continuation request before the literal's octets.
    c.expect_start("+ ").await;
    c.send(msg).await;
    c.send(b"\r\n").await;
    // RFC 4315 §3: APPENDUID uidvalidity uid.
    let r = c.replies("A1", "APPEND").await;
    r.exactly(&[])
        .tagged_starts(&format!("OK [APPENDUID {uv} 1]"));
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    assert_eq!(subjects(&mut c).await, ["sync"]);
}

// covers: LITERAL+
#[tokio::test]
async fn append_with_literal_plus_needs_no_continuation() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let uv = uidvalidity(&mut c, "INBOX").await;
    // RFC 7888 §3: "{n+}" and the octets at once; no "+" comes back.
    let r = c.append("INBOX", b"Subject: one\r\n\r\n1\r\n").await;
    r.exactly(&[])
        .tagged_starts(&format!("OK [APPENDUID {uv} 1]"));
    // Two in one write, pipelined.
    let (two, three) = ("Subject: two\r\n\r\n2\r\n", "Subject: three\r\n\r\n3\r\n");
    let both = format!(
        "P1 APPEND INBOX {{{}+}}\r\n{two}\r\nP2 APPEND INBOX {{{}+}}\r\n{three}\r\n",
        two.len(),
        three.len()
    );
    c.send(both.as_bytes()).await;
    c.replies("P1", "APPEND")
        .await
        .exactly(&[])
        .tagged_starts(&format!("OK [APPENDUID {uv} 2]"));
    c.replies("P2", "APPEND")
        .await
        .exactly(&[])
        .tagged_starts(&format!("OK [APPENDUID {uv} 3]"));
    c.ok("SELECT INBOX").await.has("* 3 EXISTS");
    assert_eq!(subjects(&mut c).await, ["one", "two", "three"]);
}

#[tokio::test]
async fn append_flags_and_internal_date_come_back_in_fetch() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let r = c
        .append(
            "INBOX (\\Seen \\Flagged $Work) \"14-Jul-2021 02:44:25 -0700\"",
            b"Subject: dated\r\n\r\nx\r\n",
        )
        .await;
    r.tagged_starts("OK [APPENDUID ");
    c.ok("SELECT INBOX")
        .await
        .has("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)");
    // RFC 9051 §6.3.12: the flags and the internal date given, in the
    // zone given; RFC 3501 §2.3.2: \Recent for the first session.
    c.ok("FETCH 1 (FLAGS INTERNALDATE)").await.exactly(&[
        "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Recent $Work) INTERNALDATE \"14-Jul-2021 02:44:25 -0700\")",
    ]);
    // RFC 3501 §6.4.4: dates disregarding time and timezone are the day
    // the internal date shows: 13 July, 23:30 at -0100, is the 14th in
    // UTC but ON 13-Jul-2021; 14 July, 00:30 at +0200, is the 13th in UTC
    // but ON 14-Jul-2021.
    c.append(
        "INBOX \"13-Jul-2021 23:30:00 -0100\"",
        b"Subject: late\r\n\r\nx\r\n",
    )
    .await
    .tagged_starts("OK");
    c.append(
        "INBOX \"14-Jul-2021 00:30:00 +0200\"",
        b"Subject: early\r\n\r\nx\r\n",
    )
    .await
    .tagged_starts("OK");
    c.ok("FETCH 2:3 INTERNALDATE").await.exactly(&[
        "* 2 FETCH (INTERNALDATE \"13-Jul-2021 23:30:00 -0100\")",
        "* 3 FETCH (INTERNALDATE \"14-Jul-2021 00:30:00 +0200\")",
    ]);
    c.ok("SEARCH ON 13-Jul-2021").await.exactly(&["* SEARCH 2"]);
    c.ok("SEARCH ON 14-Jul-2021")
        .await
        .exactly(&["* SEARCH 1 3"]);
    c.ok("SEARCH BEFORE 14-Jul-2021")
        .await
        .exactly(&["* SEARCH 2"]);
    // RFC 9051 §6.3.12: an invalid date-time is a syntax error.
    c.append("INBOX \"31-Foo-2021 02:44:25 -0700\"", b"x\r\n")
        .await
        .tagged_starts("BAD");
    c.ok("NOOP").await.lacks("* 4 EXISTS");
}

// covers: SAVEDATE
#[tokio::test]
async fn savedate_is_when_the_message_came_into_this_mailbox() {
    let w = alice_with(1, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.append(
        "INBOX \"01-Feb-2001 10:00:00 +0000\"",
        b"Subject: old\r\n\r\nx\r\n",
    )
    .await
    .tagged_starts("OK");
    c.ok("SELECT INBOX").await.has("* 2 EXISTS");
    // RFC 8514 §4.1: the save date is today (however old the internal
    // date), asked for alone or beside other items.
    let today = chrono::Utc::now().format("%d-%b-%Y").to_string();
    let r = c.ok("FETCH 1:2 SAVEDATE").await;
    assert_eq!(r.untagged.len(), 2, "{r}");
    for line in &r.untagged {
        let date = line
            .split("SAVEDATE \"")
            .nth(1)
            .unwrap_or_else(|| panic!("no SAVEDATE in {line}"));
        // Around midnight the day may have turned between APPEND and now.
        let yesterday = (chrono::Utc::now() - chrono::Duration::hours(1))
            .format("%d-%b-%Y")
            .to_string();
        assert!(
            date.starts_with(&today) || date.starts_with(&yesterday),
            "{line}"
        );
        assert!(date.ends_with(" +0000\")"), "{line}");
    }
    let r = c.ok("UID FETCH 2 (FLAGS SAVEDATE INTERNALDATE)").await;
    let line = r.one(
        "* 2 FETCH (UID 2 FLAGS (\\Recent) INTERNALDATE \"01-Feb-2001 10:00:00 +0000\" SAVEDATE \"",
    );
    assert!(line.contains(&today), "{line}");
    // RFC 8514 §4.2: SAVED* keys compare the save day; the internal
    // date does not count. SAVEDATESUPPORTED: every message here.
    c.ok(&format!("SEARCH SAVEDON {today}"))
        .await
        .exactly(&["* SEARCH 1 2"]);
    c.ok("SEARCH SAVEDSINCE 1-Jan-2020")
        .await
        .exactly(&["* SEARCH 1 2"]);
    c.ok("SEARCH SAVEDBEFORE 1-Jan-2020")
        .await
        .exactly(&["* SEARCH"]);
    c.ok("SEARCH SAVEDBEFORE 1-Jan-2100 BEFORE 2-Feb-2001")
        .await
        .exactly(&["* SEARCH 2"]);
    c.ok("UID SEARCH SAVEDATESUPPORTED")
        .await
        .exactly(&["* SEARCH 1 2"]);
    let r = c
        .ok("SEARCH RETURN (COUNT) NOT SAVEDSINCE \"1-Jan-2020\"")
        .await;
    assert!(r.one("* ESEARCH (TAG ").ends_with(") COUNT 0"), "{r}");
    // A key's name as a searched string stays a string.
    c.ok("SEARCH SUBJECT SAVEDON").await.exactly(&["* SEARCH"]);
    c.bad("SEARCH SAVEDON 31-Foo-2020").await;
    c.bad("SEARCH SAVEDSINCE").await;
    // COPY is a new save (RFC 8514 §3), and so is MOVE.
    c.ok("CREATE Kept").await;
    c.ok("COPY 2 Kept").await;
    c.ok("SELECT Kept").await;
    let r = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").await;
    let line = r.one("* 1 FETCH (INTERNALDATE \"01-Feb-2001 10:00:00 +0000\" SAVEDATE \"");
    assert!(line.contains(&today), "{line}");
}

#[tokio::test]
async fn append_stores_the_octets_exactly() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // 8-bit octets (not UTF-8), a line that is only ".", a tab, a bare LF
    // and no final CRLF: all kept as they came.
    let mut msg = b"From: a@test.example\r\nSubject: raw\r\n\r\n".to_vec();
    msg.extend_from_slice(b"8-bit \xff\xfe\xe9 here\r\n.\r\n..two dots\r\n\ttab\nbare LF\r\nend");
    c.append("INBOX", &msg)
        .await
        .tagged_starts("OK [APPENDUID ");
    c.ok("SELECT INBOX").await;
    c.send_line("F1 FETCH 1 (BODY.PEEK[])").await;
    // RFC 9051 §6.4.5: BODY[] is the whole message, octet for octet.
    c.expect(&format!("* 1 FETCH (BODY[] {{{}}}", msg.len()))
        .await;
    assert_eq!(c.bytes(msg.len()).await, msg);
    c.expect(")").await;
    c.expect_start("F1 OK").await;
    c.ok("FETCH 1 (RFC822.SIZE)")
        .await
        .exactly(&[&format!("* 1 FETCH (RFC822.SIZE {})", msg.len())]);
}

#[tokio::test]
async fn nul_is_sent_as_0x80_in_literals_and_as_is_in_literal8() {
    let w = alice_with(0, "").await;
    // NUL can arrive over SMTP (BDAT); stored as it came.
    let msg = b"From: a@test.example\r\nSubject: nul\0here\r\n\r\nbody \0 nul\r\n";
    w.deliver(ALICE, msg).await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    // RFC 9051 §4.3: a literal is *CHAR8 (no NUL); the same length, each
    // NUL as 0x80 (as Dovecot sends it).
    c.send_line("F1 FETCH 1 (BODY.PEEK[])").await;
    c.expect(&format!("* 1 FETCH (BODY[] {{{}}}", msg.len()))
        .await;
    let sent: Vec<u8> = msg.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
    assert_eq!(c.bytes(msg.len()).await, sent);
    c.expect(")").await;
    c.expect_start("F1 OK").await;
    // RFC 3516 §4.2: BINARY's literal8 carries NUL as it is.
    c.send_line("F2 FETCH 1 (BINARY.PEEK[1])").await;
    c.expect("* 1 FETCH (BINARY[1] ~{12}").await;
    assert_eq!(c.bytes(12).await, b"body \0 nul\r\n");
    c.expect(")").await;
    c.expect_start("F2 OK").await;
}

#[tokio::test]
async fn append_to_the_selected_mailbox_announces_it() {
    let w = alice_with(1, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    // RFC 9051 §6.3.12: EXISTS at once when the target is selected.
    c.append("INBOX", b"Subject: new\r\n\r\nn\r\n")
        .await
        .has("* 2 EXISTS")
        .tagged_starts("OK [APPENDUID ");
    // Appending elsewhere does not touch the selected mailbox's view.
    c.append("Drafts (\\Draft)", b"Subject: d\r\n\r\nd\r\n")
        .await
        .lacks("* 3 EXISTS")
        .tagged_starts("OK [APPENDUID ");
    c.ok("STATUS Drafts (MESSAGES)")
        .await
        .has("* STATUS Drafts (MESSAGES 1)");
}

#[tokio::test]
async fn append_to_a_missing_mailbox_says_trycreate() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
    c.append("Nowhere", b"Subject: x\r\n\r\nx\r\n")
        .await
        .tagged_starts("NO [TRYCREATE]");
    c.ok("LIST \"\" Nowhere").await.exactly(&[]);
    // The session is in step: the next command is read as a command.
    c.ok("CREATE Nowhere").await;
    c.append("Nowhere", b"Subject: x\r\n\r\nx\r\n")
        .await
        .tagged_starts("OK [APPENDUID ");
}

// covers: APPENDLIMIT
#[tokio::test]
async fn appendlimit_is_advertised_and_enforced() {
    let w = alice_with(0, "[imap]\nallow_plaintext = true\nmax_append_size = 100\n").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 7889 §3.1: the limit in the capability.
    let caps = c.ok("CAPABILITY").await;
    let caps = caps.one("* CAPABILITY ");
    assert!(caps.split(' ').any(|t| t == "APPENDLIMIT=100"), "{caps}");
    // RFC 7889 §4: exactly the limit is allowed.
    let mut msg = b"Subject: fits\r\n\r\n".to_vec();
    msg.resize(100, b'a');
    c.append("INBOX", &msg)
        .await
        .tagged_starts("OK [APPENDUID ");
    // RFC 7889 §4: one octet more is TOOBIG; a large synchronising literal
    // is refused before the client sends it (no continuation request).
    c.send_line("A1 APPEND INBOX {70000}").await;
    c.replies("A1", "APPEND")
        .await
        .exactly(&[])
        .tagged_starts("NO [TOOBIG]");
    // A small one over the limit may be taken first, then refused.
    c.send_line("A2 APPEND INBOX {101}").await;
    c.expect_start("+ ").await;
    c.send(&[b'b'; 101]).await;
    c.send(b"\r\n").await;
    c.replies("A2", "APPEND").await.tagged_starts("NO [TOOBIG]");
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 1)");
    // RFC 7889 §3: the limit as a STATUS item, alone and among others.
    c.ok("STATUS INBOX (APPENDLIMIT)")
        .await
        .exactly(&["* STATUS INBOX (APPENDLIMIT 100)"]);
    c.ok("STATUS INBOX (MESSAGES APPENDLIMIT UIDNEXT)")
        .await
        .exactly(&["* STATUS INBOX (MESSAGES 1 UIDNEXT 2 APPENDLIMIT 100)"]);
}

// covers: APPENDLIMIT LITERAL+
#[tokio::test]
async fn a_refused_literal_plus_is_skipped_and_the_session_goes_on() {
    let w = alice_with(0, "[imap]\nallow_plaintext = true\nmax_append_size = 100\n").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 7888 §4 / RFC 7889 §4: the client sends a {n+} literal anyway;
    // the server refuses and reads past its octets.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.resize(70_000, b'x');
    c.append("INBOX", &big).await.tagged_starts("NO [TOOBIG]");
    c.append("INBOX", &[b'y'; 101])
        .await
        .tagged_starts("NO [TOOBIG]");
    // The octets were not taken for commands: the next ones work.
    c.ok("NOOP").await.exactly(&[]);
    c.append("INBOX", b"Subject: small\r\n\r\ns\r\n")
        .await
        .tagged_starts("OK [APPENDUID ");
    c.ok("SELECT INBOX").await.has("* 1 EXISTS");
    assert_eq!(subjects(&mut c).await, ["small"]);
}

// covers: MULTIAPPEND UIDPLUS
#[tokio::test]
async fn multiappend_stores_every_message_with_its_own_flags_and_date() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let uv = uidvalidity(&mut c, "INBOX").await;
    let (a, b) = (
        "Subject: first\r\n\r\n1\r\n",
        "Subject: second\r\n\r\n2\r\n",
    );
    // A large one travels aside (over 64 KiB), between inline ones.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.resize(100_000, b'z');
    // RFC 3502 §6.3.11: one APPEND, several messages, each with its own
    // options, and a continuation request for every synchronising literal.
    c.send_line(&format!("M1 APPEND INBOX (\\Seen) {{{}}}", a.len()))
        .await;
    c.expect_start("+ ").await;
    c.send(a.as_bytes()).await;
    c.send_line(&format!(
        " (\\Flagged $Work) \"14-Jul-2021 02:44:25 -0700\" {{{}}}",
        big.len()
    ))
    .await;
    c.expect_start("+ ").await;
    c.send(&big).await;
    c.send(format!(" {{{}+}}\r\n{b}\r\n", b.len()).as_bytes())
        .await;
    // RFC 4315 §3: APPENDUID with the UIDs as a set.
    c.replies("M1", "APPEND")
        .await
        .exactly(&[])
        .tagged_starts(&format!("OK [APPENDUID {uv} 1:3]"));
    c.ok("SELECT INBOX").await.has("* 3 EXISTS");
    assert_eq!(subjects(&mut c).await, ["first", "big", "second"]);
    let r = c.ok("FETCH 1:3 (FLAGS INTERNALDATE RFC822.SIZE)").await;
    assert!(
        r.one("* 1 FETCH").contains("FLAGS (\\Seen \\Recent)"),
        "{r}"
    );
    r.has(&format!(
        "* 2 FETCH (FLAGS (\\Flagged \\Recent $Work) INTERNALDATE \"14-Jul-2021 02:44:25 -0700\" RFC822.SIZE {})",
        big.len()
    ));
    assert!(r.one("* 3 FETCH").contains("FLAGS (\\Recent)"), "{r}");
    let r = c.ok("FETCH 2 (BODY.PEEK[TEXT])").await;
    let n = big.len() - 16;
    let text = format!("{{{n}}}\r\n{}", "z".repeat(n));
    assert!(
        r.untagged[0] == format!("* 2 FETCH (BODY[TEXT] {text})"),
        "the large message's text differs ({} octets in the reply)",
        r.untagged[0].len()
    );
}

// covers: MULTIAPPEND
#[tokio::test]
async fn multiappend_is_all_or_nothing() {
    let w = alice_with(0, "[imap]\nallow_plaintext = true\nmax_append_size = 100\n").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let ok = "Subject: ok\r\n\r\nfine\r\n";
    // RFC 3502 §6.3.11: if one message cannot be appended, none is. Here
    // the third is over the limit (RFC 7889 §4), the second has a bad date.
    let cmd = format!(
        "X1 APPEND INBOX {{{n}+}}\r\n{ok} {{{n}+}}\r\n{ok} {{101+}}\r\n{big}\r\n",
        n = ok.len(),
        big = "b".repeat(101)
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X1", "APPEND").await.tagged_starts("NO [TOOBIG]");
    let cmd = format!(
        "X2 APPEND INBOX {{{n}+}}\r\n{ok} \"31-Foo-2021 02:44:25 -0700\" {{{n}+}}\r\n{ok}\r\n",
        n = ok.len()
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X2", "APPEND").await.tagged_starts("BAD");
    let cmd = format!(
        "X3 APPEND INBOX {{{n}+}}\r\n{ok} {{0+}}\r\n\r\n",
        n = ok.len()
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X3", "APPEND").await.tagged_starts("NO");
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .exactly(&["* STATUS INBOX (MESSAGES 0)"]);
    // RFC 9051 §6.3.12: TRYCREATE for a mailbox that does not exist.
    let cmd = format!(
        "X4 APPEND Nowhere {{{n}+}}\r\n{ok} {{{n}+}}\r\n{ok}\r\n",
        n = ok.len()
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X4", "APPEND")
        .await
        .tagged_starts("NO [TRYCREATE]");
    // Junk after the last message is a syntax error.
    let cmd = format!(
        "X5 APPEND INBOX {{{n}+}}\r\n{ok} {{{n}+}}\r\n{ok} junk\r\n",
        n = ok.len()
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X5", "APPEND").await.tagged_starts("BAD");
    // And the session goes on.
    let cmd = format!(
        "X6 APPEND INBOX {{{n}+}}\r\n{ok} {{{n}+}}\r\n{ok}\r\n",
        n = ok.len()
    );
    c.send(cmd.as_bytes()).await;
    c.replies("X6", "APPEND")
        .await
        .tagged_starts("OK [APPENDUID ");
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .exactly(&["* STATUS INBOX (MESSAGES 2)"]);
}

// covers: CATENATE
#[tokio::test]
async fn catenate_puts_text_and_parts_of_stored_messages_together() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let uv = uidvalidity(&mut c, "INBOX").await;
    let plain = "From: a@example.org\r\nSubject: one\r\n\r\nHello body\r\n";
    let multi = "Subject: two\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b--\r\n";
    c.append("INBOX", plain.as_bytes())
        .await
        .tagged_starts("OK");
    c.append("INBOX", multi.as_bytes())
        .await
        .tagged_starts("OK");
    c.ok("CREATE Out").await;
    // RFC 4469 §5: TEXT literals and URLs (RFC 5092) into the user's own
    // mailboxes, put together in order; sections as FETCH reads them.
    let cases: [(String, String); 5] = [
        (
            "URL \"/INBOX/;uid=1/;section=HEADER\" TEXT {7+}\r\nbody 1\n".to_string(),
            "From: a@example.org\r\nSubject: one\r\n\r\nbody 1\n".to_string(),
        ),
        (
            format!("URL \"/INBOX;UIDVALIDITY={uv}/;UID=1/;SECTION=TEXT\" TEXT {{2+}}\r\n!!"),
            "Hello body\r\n!!".to_string(),
        ),
        (
            "TEXT {14+}\r\nSubject: x\r\n\r\n URL \"/INBOX/;uid=2/;section=1\"".to_string(),
            "Subject: x\r\n\r\npart one".to_string(),
        ),
        (
            "TEXT {6+}\r\nHi: \r\n URL \"/INBOX/;uid=1/;partial=6.13\"".to_string(),
            "Hi: \r\na@example.org".to_string(),
        ),
        (
            "URL \"/INBOX/;uid=1/;section=HEADER.FIELDS%20(SUBJECT)\" TEXT {1+}\r\n.".to_string(),
            "Subject: one\r\n\r\n.".to_string(),
        ),
    ];
    for (parts, _) in &cases {
        c.send(format!("C1 APPEND Out CATENATE ({parts})\r\n").as_bytes())
            .await;
        c.replies("C1", "APPEND")
            .await
            .tagged_starts("OK [APPENDUID ");
    }
    c.ok("SELECT Out").await;
    for (i, (_, want)) in cases.iter().enumerate() {
        let r = c.ok(&format!("FETCH {} (BODY.PEEK[])", i + 1)).await;
        assert_eq!(
            r.untagged,
            [format!(
                "* {} FETCH (BODY[] {{{}}}\r\n{want})",
                i + 1,
                want.len()
            )],
            "case {i}"
        );
    }
    c.ok("UNSELECT").await;
    // A URL that names nothing (wrong UIDVALIDITY, no such UID, another
    // server, no UID) is NO [BADURL], and nothing is stored.
    for url in [
        "/INBOX;UIDVALIDITY=1/;UID=1".to_string(),
        "/INBOX/;UID=9".to_string(),
        "/Nowhere/;UID=1".to_string(),
        "imap://alice@elsewhere.example/INBOX/;UID=1".to_string(),
        "/INBOX".to_string(),
    ] {
        c.send(format!("C2 APPEND Out CATENATE (TEXT {{3+}}\r\nabc URL \"{url}\")\r\n").as_bytes())
            .await;
        c.replies("C2", "APPEND")
            .await
            .tagged_starts(&format!("NO [BADURL {url}]"));
    }
    c.ok("STATUS Out (MESSAGES)")
        .await
        .exactly(&["* STATUS Out (MESSAGES 5)"]);
    // The target is checked first: TRYCREATE, even with a bad URL.
    c.send(b"C3 APPEND Missing CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=1\")\r\n")
        .await;
    c.replies("C3", "APPEND")
        .await
        .tagged_starts("NO [TRYCREATE]");
    // With MULTIAPPEND (RFC 4469 §6): a CATENATE and a literal, one commit.
    c.send(b"C4 APPEND Out (\\Seen) CATENATE (URL \"/INBOX/;UID=2\") {5+}\r\nfifth\r\n")
        .await;
    c.replies("C4", "APPEND")
        .await
        .tagged_starts("OK [APPENDUID ");
    c.ok("STATUS Out (MESSAGES)")
        .await
        .exactly(&["* STATUS Out (MESSAGES 7)"]);
    // Malformed lists are syntax errors.
    c.bad("APPEND Out CATENATE ()").await;
    c.bad("APPEND Out CATENATE (TEXT \"x\")").await;
    c.bad("APPEND Out CATENATE (BODY \"x\")").await;
}

// ------------------------------------------------------------ COPY, MOVE

// covers: UIDPLUS
#[tokio::test]
async fn copy_reports_copyuid_and_keeps_the_source() {
    let w = alice_with(3, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let trash = uidvalidity(&mut c, "Trash").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    // RFC 4315 §3: COPYUID validity source-uids destination-uids.
    c.ok("COPY 2:3 Trash")
        .await
        .exactly(&[])
        .tagged_starts(&format!("OK [COPYUID {trash} 2:3 1:2]"));
    c.ok("UID COPY 1,3 Trash")
        .await
        .exactly(&[])
        .tagged_starts(&format!("OK [COPYUID {trash} 1,3 3:4]"));
    // The source is untouched.
    c.ok("NOOP").await.exactly(&[]);
    assert_eq!(subjects(&mut c).await, ["m1", "m2", "m3"]);
    // RFC 9051 §6.4.7: the copy keeps flags and internal date.
    let date = c.ok("FETCH 2 (INTERNALDATE)").await;
    let date = date.one("* 2 FETCH (INTERNALDATE ")["* 2 FETCH (".len()..].to_string();
    c.ok("SELECT Trash").await.has("* 4 EXISTS");
    c.ok("UID FETCH 1 (FLAGS INTERNALDATE)")
        .await
        .exactly(&[&format!(
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) {date}"
        )]);
    assert_eq!(subjects(&mut c).await, ["m2", "m3", "m1", "m3"]);
}

#[tokio::test]
async fn copy_and_move_refusals() {
    let w = alice_with(2, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    // RFC 9051 §6.4.7: TRYCREATE for a missing destination.
    c.no("COPY 1 Nowhere").await.tagged_starts("NO [TRYCREATE]");
    c.no("MOVE 1 Nowhere").await.tagged_starts("NO [TRYCREATE]");
    // RFC 9051 §6.4.7: message numbers beyond the mailbox are an error.
    c.bad("COPY 3 Trash").await;
    // UIDs that do not exist copy nothing.
    c.ok("UID COPY 99 Trash").await.exactly(&[]);
    c.ok("STATUS Trash (MESSAGES)")
        .await
        .has("* STATUS Trash (MESSAGES 0)");
    // MOVE from a read-only mailbox is refused; COPY from it works.
    c.ok("EXAMINE INBOX").await;
    c.no("MOVE 1 Trash").await;
    c.ok("COPY 1 Trash").await.tagged_starts("OK [COPYUID ");
    c.bad("COPY 1").await;
}

// covers: MOVE UIDPLUS
#[tokio::test]
async fn move_sends_copyuid_then_the_expunges() {
    let w = alice_with(4, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let junk = uidvalidity(&mut c, "Junk").await;
    c.ok("SELECT INBOX").await;
    // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs (RFC 6851
    // §3.3, each number as it is when sent: RFC 9051 §7.5.1).
    c.ok("MOVE 2:3 Junk").await.exactly(&[
        &format!("* OK [COPYUID {junk} 2:3 1:2] Moved"),
        "* 2 EXPUNGE",
        "* 2 EXPUNGE",
    ]);
    assert_eq!(subjects(&mut c).await, ["m1", "m4"]);
    c.ok("UID MOVE 4 Junk")
        .await
        .exactly(&[&format!("* OK [COPYUID {junk} 4 3] Moved"), "* 2 EXPUNGE"]);
    c.ok("STATUS Junk (MESSAGES UIDNEXT)")
        .await
        .has("* STATUS Junk (MESSAGES 3 UIDNEXT 4)");
    c.ok("SELECT Junk").await;
    assert_eq!(subjects(&mut c).await, ["m2", "m3", "m4"]);
}

// covers: MOVE QRESYNC
#[tokio::test]
async fn move_with_qresync_sends_vanished() {
    let w = alice_with(3, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let trash = uidvalidity(&mut c, "Trash").await;
    c.ok("ENABLE QRESYNC").await;
    c.ok("SELECT INBOX").await;
    // RFC 6851 §4.4: VANISHED instead of EXPUNGE once QRESYNC is on.
    c.ok("UID MOVE 1,3 Trash").await.exactly(&[
        &format!("* OK [COPYUID {trash} 1,3 1:2] Moved"),
        "* VANISHED 1,3",
    ]);
    assert_eq!(subjects(&mut c).await, ["m2"]);
}

// --------------------------------------------------------- EXPUNGE, CLOSE

#[tokio::test]
async fn expunge_removes_deleted_messages_and_renumbers() {
    let w = alice_with(5, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)").await;
    // RFC 9051 §7.5.1: one EXPUNGE per message, each number as it is then.
    c.ok("EXPUNGE")
        .await
        .exactly(&["* 2 EXPUNGE", "* 2 EXPUNGE", "* 3 EXPUNGE"]);
    assert_eq!(subjects(&mut c).await, ["m1", "m4"]);
    c.ok("EXPUNGE").await.exactly(&[]);
    // Another session sees the result.
    let mut d = w.imap_login(ALICE, "pw").await;
    d.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 2)");
}

// covers: UIDPLUS
#[tokio::test]
async fn uid_expunge_removes_only_the_given_uids() {
    let w = alice_with(4, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)").await;
    // RFC 4315 §2.1: only messages both \Deleted and in the UID set.
    c.ok("UID EXPUNGE 2:4")
        .await
        .exactly(&["* 2 EXPUNGE", "* 2 EXPUNGE"]);
    assert_eq!(subjects(&mut c).await, ["m1", "m4"]);
    c.ok("FETCH 1 (UID FLAGS)")
        .await
        .exactly(&["* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"]);
    // RFC 4315 §2.1: UID EXPUNGE needs a selected mailbox.
    c.ok("UNSELECT").await;
    c.bad("UID EXPUNGE 1").await;
}

#[tokio::test]
async fn close_expunges_silently_but_unselect_does_not() {
    let w = alice_with(3, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    // RFC 3691 §2: UNSELECT leaves \Deleted messages in place.
    c.ok("UNSELECT").await.exactly(&[]);
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 3)");
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    // RFC 9051 §6.4.1: CLOSE removes them, with no EXPUNGE responses.
    c.ok("CLOSE").await.exactly(&[]);
    c.bad("FETCH 1 (FLAGS)").await;
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 1)");
    c.ok("SELECT INBOX").await;
    assert_eq!(subjects(&mut c).await, ["m3"]);
}

#[tokio::test]
async fn close_after_examine_removes_nothing() {
    let w = alice_with(2, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXAMINE INBOX").await;
    // RFC 9051 §6.4.1: no messages are removed from a mailbox selected by
    // EXAMINE; EXPUNGE there is refused.
    c.no("EXPUNGE").await;
    c.ok("CLOSE").await.exactly(&[]);
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 2)");
}

// -------------------------------------------------------------- URLAUTH

/// The URL in a `* GENURLAUTH "…"` reply.
fn genurl(r: &postgate_testkit::world::Reply) -> String {
    r.one("* GENURLAUTH ")
        .strip_prefix("* GENURLAUTH ")
        .unwrap()
        .trim_matches('"')
        .to_string()
}

// covers: URLAUTH CATENATE
#[tokio::test]
async fn urlauth_urls_are_read_by_whom_they_name_until_the_key_is_reset() {
    const BOB: &str = "bob@test.example";
    let w = alice_with(0, "").await;
    w.user(BOB, "pw").await;
    let mut a = w.imap_login(ALICE, "pw").await;
    let multi = "Subject: two\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b--\r\n";
    a.append("INBOX", multi.as_bytes())
        .await
        .tagged_starts("OK");
    // RFC 4467 §6.2: a rump URL to the user's own message gets its
    // authorization, :INTERNAL: and a token.
    let base = format!("imap://{}@test.example/INBOX/;uid=1", "alice");
    let for_bob = genurl(
        &a.ok(&format!(
            "GENURLAUTH \"{base}/;section=1;urlauth=user+{BOB}\" INTERNAL"
        ))
        .await,
    );
    assert!(
        for_bob.starts_with(&format!("{base}/;section=1;urlauth=user+{BOB}:INTERNAL:")),
        "{for_bob}"
    );
    let for_anyone = genurl(
        &a.ok(&format!("GENURLAUTH \"{base};urlauth=authuser\" INTERNAL"))
            .await,
    );
    let for_alice = genurl(
        &a.ok(&format!(
            "GENURLAUTH \"{base};urlauth=user+{ALICE}\" INTERNAL"
        ))
        .await,
    );
    let expired = genurl(
        &a.ok(&format!(
            "GENURLAUTH \"{base};expire=2020-01-01T00:00:00Z;urlauth=authuser\" INTERNAL"
        ))
        .await,
    );
    // §6.2: not a rump, not the user's own mailbox, an unknown mechanism.
    a.no(&format!("GENURLAUTH \"{for_bob}\" INTERNAL")).await;
    a.no("GENURLAUTH \"imap://bob@test.example/INBOX/;uid=1;urlauth=authuser\" INTERNAL")
        .await;
    a.no(&format!("GENURLAUTH \"{base};urlauth=authuser\" OTHER"))
        .await;
    // §6.3: Bob reads what names him or any user, NIL for the rest.
    let mut b = w.imap_login(BOB, "pw").await;
    let r = b
        .ok(&format!(
            "URLFETCH \"{for_bob}\" \"{for_anyone}\" \"{for_alice}\" \"{expired}\""
        ))
        .await;
    let text = r.untagged.join("\n");
    assert!(
        text.contains(&format!("* URLFETCH {for_bob} {{8}}\r\npart one")),
        "{r}"
    );
    assert!(
        text.contains(&format!("* URLFETCH {for_anyone} {{{}}}", multi.len())),
        "{r}"
    );
    r.has(&format!("* URLFETCH {for_alice} NIL"))
        .has(&format!("* URLFETCH {expired} NIL"));
    // A token changed by one digit is no token.
    let last = for_anyone.chars().last().unwrap();
    let forged = format!(
        "{}{}",
        &for_anyone[..for_anyone.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    b.ok(&format!("URLFETCH \"{forged}\""))
        .await
        .has(&format!("* URLFETCH {forged} NIL"));
    // RFC 4469 §5 with RFC 4467: Bob puts Alice's part into a message of his.
    b.ok(&format!(
        "APPEND INBOX CATENATE (TEXT {{14+}}\r\nSubject: x\r\n\r\n URL \"{for_bob}\")"
    ))
    .await;
    b.ok("SELECT INBOX").await;
    b.ok("FETCH 1 BODY.PEEK[TEXT]")
        .await
        .has("* 1 FETCH (BODY[TEXT] {8}\r\npart one)");
    // §6.1: RESETKEY, and every URL made before is dead.
    a.ok("RESETKEY INBOX INTERNAL").await;
    b.ok(&format!("URLFETCH \"{for_bob}\""))
        .await
        .has(&format!("* URLFETCH {for_bob} NIL"));
    let again = genurl(
        &a.ok(&format!("GENURLAUTH \"{base};urlauth=authuser\" INTERNAL"))
            .await,
    );
    assert_ne!(again, for_anyone, "a new key makes a new token");
    a.ok("RESETKEY").await;
    b.ok(&format!("URLFETCH \"{again}\""))
        .await
        .has(&format!("* URLFETCH {again} NIL"));
    a.no("RESETKEY Nowhere").await;
}
