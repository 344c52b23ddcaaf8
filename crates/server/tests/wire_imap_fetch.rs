//! IMAP FETCH, UID FETCH, BINARY, CONDSTORE on FETCH, and STORE/UID STORE on
//! the wire (RFC 9051 §6.4.5, §6.4.6, §6.4.9, §7.5.2; RFC 3516; RFC 7162 §3.1).
//!
//! Every test works on the same mailbox: a first message delivered and
//! expunged (so that UIDs are one more than sequence numbers), then a plain
//! text message, a multipart/mixed one (quoted-printable text, a base64
//! attachment, a message/rfc822 part) and a message with an unknown
//! Content-Transfer-Encoding. Expected sizes and line counts are computed
//! from the bytes built here.
use postgate_testkit::world::{Wire, World};

const USER: &str = "bob@test.example";

const PLAIN_HEADER: &str = "Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n\
From: Alice Example <alice@example.org>\r\n\
To: Bob <bob@test.example>\r\n\
Subject: Plain one\r\n\
Message-ID: <m1@example.org>\r\n\
\r\n";
const PLAIN_TEXT: &str = "Hello Bob.\r\nSecond line.\r\n";

const MULTI_HEADER: &str = "Date: Tue, 3 Feb 2026 11:30:00 +0100\r\n\
From: \"Carol C.\" <carol@example.net>\r\n\
To: bob@test.example, Dave <dave@example.com>\r\n\
Cc: Eve <eve@example.com>\r\n\
Subject: =?UTF-8?B?w4lsw6h2ZQ==?= report\r\n\
Message-ID: <m2@example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n";
/// Part 1: quoted-printable UTF-8 text, and what it decodes to.
const QP_MIME: &str = "Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n";
const QP_BODY: &str = "Caf=C3=A9 cr=C3=A8me\r\n";
const QP_DECODED: &str = "Café crème\r\n";
/// Part 2: a base64 attachment whose content holds NUL (so literal8).
const B64_MIME: &str = "Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
\r\n";
const B64_BODY: &str = "AAFoZWxsb38NCndvcmxk\r\n";
const B64_DECODED: &str = "\0\x01hello\x7f\r\nworld";
/// Part 3: an encapsulated message.
const INNER_HEADER: &str = "From: Frank <frank@example.org>\r\n\
Subject: Inner\r\n\
Date: Wed, 4 Feb 2026 08:00:00 +0000\r\n\
\r\n";
const INNER_TEXT: &str = "Inner body.\r\n";
const RFC822_MIME: &str = "Content-Type: message/rfc822\r\n\r\n";

/// A single part in a transfer encoding nobody knows.
const ODD: &str = "Subject: odd\r\nContent-Transfer-Encoding: x-frob\r\n\r\nabc\r\n";

fn plain() -> String {
    format!("{PLAIN_HEADER}{PLAIN_TEXT}")
}

fn inner() -> String {
    format!("{INNER_HEADER}{INNER_TEXT}")
}

/// The multipart's body (after its header); the CRLF before each boundary
/// belongs to the boundary (RFC 2046 §5.1.1), so each part's body is exactly
/// the constant above.
fn multi_text() -> String {
    format!(
        "preamble\r\n--XYZ\r\n{QP_MIME}{QP_BODY}\r\n--XYZ\r\n{B64_MIME}{B64_BODY}\r\n--XYZ\r\n\
         {RFC822_MIME}{}\r\n--XYZ--\r\n",
        inner()
    )
}

fn multi() -> String {
    format!("{MULTI_HEADER}{}", multi_text())
}

/// Lines of a body as body-fld-lines counts them.
fn lines(s: &str) -> usize {
    s.matches("\r\n").count()
}

/// A literal as the wire client shows it: `{n}` CRLF and the bytes.
fn lit(s: &str) -> String {
    format!("{{{}}}\r\n{s}", s.len())
}

/// The mailbox described at the top, in a fresh session (the set-up session
/// claimed \Recent, RFC 3501 §2.3.2, so these FLAGS hold none), INBOX selected.
async fn mailbox() -> (World, Wire) {
    let w = World::new().await;
    w.user(USER, "pw").await;
    let (plain, multi) = (plain(), multi());
    let c = w
        .mailbox_after_expunge(
            USER,
            "pw",
            &[plain.as_bytes(), multi.as_bytes(), ODD.as_bytes()],
        )
        .await;
    (w, c)
}

/// The number in `MODSEQ (n)` of a FETCH line.
fn modseq(line: &str) -> u64 {
    let at = line.find("MODSEQ (").expect("MODSEQ item") + "MODSEQ (".len();
    line[at..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .expect("modseq")
}

// covers: IMAP4rev1
#[tokio::test]
async fn fetch_flags_internaldate_and_size() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §7.5.2: RFC822.SIZE is the size of the message as stored.
    c.ok("FETCH 1:3 (FLAGS RFC822.SIZE)").await.exactly(&[
        &format!("* 1 FETCH (FLAGS () RFC822.SIZE {})", plain().len()),
        &format!("* 2 FETCH (FLAGS () RFC822.SIZE {})", multi().len()),
        &format!("* 3 FETCH (FLAGS () RFC822.SIZE {})", ODD.len()),
    ]);
    // RFC 9051 §6.3.12: APPEND's date-time becomes the internal date.
    let raw = "Subject: dated\r\n\r\nx\r\n";
    let r = c
        .append(
            "INBOX (\\Flagged) \"15-Mar-2020 09:00:05 +0000\"",
            raw.as_bytes(),
        )
        .await;
    r.tagged_starts("OK").has("* 4 EXISTS");
    let r = c.ok("FETCH 4 (INTERNALDATE RFC822.SIZE)").await;
    r.exactly(&[&format!(
        "* 4 FETCH (INTERNALDATE \"15-Mar-2020 09:00:05 +0000\" RFC822.SIZE {})",
        raw.len()
    )]);
    // FAST is FLAGS INTERNALDATE RFC822.SIZE (RFC 9051 §6.4.5).
    c.ok("FETCH 4 FAST").await.exactly(&[&format!(
        "* 4 FETCH (FLAGS (\\Flagged \\Recent) INTERNALDATE \"15-Mar-2020 09:00:05 +0000\" RFC822.SIZE {})",
        raw.len()
    )]);
}

#[tokio::test]
async fn fetch_envelope() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §7.5.2 ENVELOPE: date, subject, from, sender, reply-to, to, cc,
    // bcc, in-reply-to, message-id; sender and reply-to default to from;
    // strings as in the header (the encoded word is not decoded).
    c.ok("FETCH 1:2 ENVELOPE").await.exactly(&[
        "* 1 FETCH (ENVELOPE (\"Mon, 2 Feb 2026 10:00:00 +0000\" \"Plain one\" \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((\"Bob\" NIL \"bob\" \"test.example\")) NIL NIL NIL \"<m1@example.org>\"))",
        "* 2 FETCH (ENVELOPE (\"Tue, 3 Feb 2026 11:30:00 +0100\" \
         \"=?UTF-8?B?w4lsw6h2ZQ==?= report\" \
         ((\"Carol C.\" NIL \"carol\" \"example.net\")) \
         ((\"Carol C.\" NIL \"carol\" \"example.net\")) \
         ((\"Carol C.\" NIL \"carol\" \"example.net\")) \
         ((NIL NIL \"bob\" \"test.example\")(\"Dave\" NIL \"dave\" \"example.com\")) \
         ((\"Eve\" NIL \"eve\" \"example.com\")) NIL NIL \"<m2@example.net>\"))",
    ]);
}

#[tokio::test]
async fn fetch_body_and_bodystructure() {
    let (_w, mut c) = mailbox().await;
    let inner_env = "(\"Wed, 4 Feb 2026 08:00:00 +0000\" \"Inner\" \
                     ((\"Frank\" NIL \"frank\" \"example.org\")) \
                     ((\"Frank\" NIL \"frank\" \"example.org\")) \
                     ((\"Frank\" NIL \"frank\" \"example.org\")) NIL NIL NIL NIL NIL)";
    // RFC 9051 §7.5.2 BODYSTRUCTURE: body-type-text with its line count, a
    // text part without charset gets us-ascii (RFC 2045 §5.2); body-ext-1part
    // md5, disposition, language, location; body-type-msg with the
    // encapsulated envelope, body and line count; the multipart's subtype and
    // body-ext-mpart (parameters, disposition, language, location).
    let bs_plain = format!(
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {} NIL NIL NIL NIL)",
        PLAIN_TEXT.len(),
        lines(PLAIN_TEXT)
    );
    let bs_inner = format!(
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {} NIL NIL NIL NIL)",
        INNER_TEXT.len(),
        lines(INNER_TEXT)
    );
    let bs_multi = format!(
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" {} {} NIL NIL NIL NIL)\
         (\"application\" \"octet-stream\" (\"name\" \"data.bin\") NIL NIL \"base64\" {} NIL \
         (\"attachment\" (\"filename\" \"data.bin\")) NIL NIL)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" {} {inner_env} {bs_inner} {} NIL NIL NIL NIL) \
         \"mixed\" (\"boundary\" \"XYZ\") NIL NIL NIL)",
        QP_BODY.len(),
        lines(QP_BODY),
        B64_BODY.len(),
        inner().len(),
        lines(&inner()),
    );
    c.ok("FETCH 1:2 BODYSTRUCTURE").await.exactly(&[
        &format!("* 1 FETCH (BODYSTRUCTURE {bs_plain})"),
        &format!("* 2 FETCH (BODYSTRUCTURE {bs_multi})"),
    ]);
    // BODY is the same without extension data (RFC 9051 §7.5.2 BODY).
    let body_multi = format!(
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" {} {})\
         (\"application\" \"octet-stream\" (\"name\" \"data.bin\") NIL NIL \"base64\" {})\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" {} {inner_env} \
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {}) {}) \"mixed\")",
        QP_BODY.len(),
        lines(QP_BODY),
        B64_BODY.len(),
        inner().len(),
        INNER_TEXT.len(),
        lines(INNER_TEXT),
        lines(&inner()),
    );
    c.ok("FETCH 2 BODY")
        .await
        .exactly(&[&format!("* 2 FETCH (BODY {body_multi})")]);
    // Neither is a body section: no \Seen (RFC 9051 §6.4.5).
    c.ok("FETCH 1:2 FLAGS")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);
}

#[tokio::test]
async fn fetch_header_sections() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.5: HEADER is the header with its blank line; the
    // HEADER.FIELDS forms keep the blank line and the message's field order;
    // TEXT is the body; BODY[] the whole message.
    let fields = "From: Alice Example <alice@example.org>\r\nSubject: Plain one\r\n\r\n";
    let not = "To: Bob <bob@test.example>\r\nMessage-ID: <m1@example.org>\r\n\r\n";
    let r = c
        .ok(
            "FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] \
             BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM DATE)] BODY.PEEK[TEXT])",
        )
        .await;
    r.exactly(&[&format!(
        "* 1 FETCH (BODY[HEADER] {} BODY[HEADER.FIELDS (SUBJECT FROM)] {} \
         BODY[HEADER.FIELDS.NOT (SUBJECT FROM DATE)] {} BODY[TEXT] {})",
        lit(PLAIN_HEADER),
        lit(fields),
        lit(not),
        lit(PLAIN_TEXT)
    )]);
    c.ok("FETCH 1 BODY.PEEK[]")
        .await
        .exactly(&[&format!("* 1 FETCH (BODY[] {})", lit(&plain()))]);
    // RFC822.HEADER is BODY.PEEK[HEADER] under its old name (RFC 3501 §6.4.5).
    c.ok("FETCH 1 RFC822.HEADER")
        .await
        .exactly(&[&format!("* 1 FETCH (RFC822.HEADER {})", lit(PLAIN_HEADER))]);
    c.ok("FETCH 1 FLAGS")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())"]);
}

#[tokio::test]
async fn fetch_numbered_parts_and_mime_headers() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.5: a part number of a multipart, its MIME header, and
    // the header, text and part 1 of an encapsulated message/rfc822.
    let r = c
        .ok("FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[3])")
        .await;
    r.exactly(&[&format!(
        "* 2 FETCH (BODY[1] {} BODY[1.MIME] {} BODY[2] {} BODY[2.MIME] {} BODY[3] {})",
        lit(QP_BODY),
        lit(QP_MIME),
        lit(B64_BODY),
        lit(B64_MIME),
        lit(&inner())
    )]);
    let r = c
        .ok("FETCH 2 (BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[3.MIME])")
        .await;
    r.exactly(&[&format!(
        "* 2 FETCH (BODY[3.HEADER] {} BODY[3.TEXT] {} BODY[3.1] {} BODY[3.MIME] {})",
        lit(INNER_HEADER),
        lit(INNER_TEXT),
        lit(INNER_TEXT),
        lit(RFC822_MIME)
    )]);
    // RFC 9051 §6.4.5: the body of the whole multipart is TEXT; a message
    // that is not multipart has a part 1, its body.
    c.ok("FETCH 2 BODY.PEEK[TEXT]")
        .await
        .exactly(&[&format!("* 2 FETCH (BODY[TEXT] {})", lit(&multi_text()))]);
    c.ok("FETCH 1 BODY.PEEK[1]")
        .await
        .exactly(&[&format!("* 1 FETCH (BODY[1] {})", lit(PLAIN_TEXT))]);
}

#[tokio::test]
async fn fetch_partial_ranges() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.5: <origin.length>; the reply names the origin only;
    // fewer octets when the text ends first; empty past the end.
    let r = c
        .ok("FETCH 1 (BODY.PEEK[TEXT]<3.4> BODY.PEEK[TEXT]<20.100> BODY.PEEK[]<0.6>)")
        .await;
    r.exactly(&[&format!(
        "* 1 FETCH (BODY[TEXT]<3> {} BODY[TEXT]<20> {} BODY[]<0> {})",
        lit(&PLAIN_TEXT[3..7]),
        lit(&PLAIN_TEXT[20..]),
        lit(&plain()[..6])
    )]);
    c.ok("FETCH 1 BODY.PEEK[]<1000.10>")
        .await
        .exactly(&["* 1 FETCH (BODY[]<1000> {0}\r\n)"]);
    c.ok("FETCH 2 BODY.PEEK[1]<4.5>")
        .await
        .exactly(&[&format!("* 2 FETCH (BODY[1]<4> {})", lit(&QP_BODY[4..9]))]);
}

#[tokio::test]
async fn uid_fetch_reports_uids() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.9: UID FETCH takes UIDs, and every FETCH it causes
    // carries UID whether asked for or not.
    c.ok("UID FETCH 3 FLAGS")
        .await
        .exactly(&["* 2 FETCH (UID 3 FLAGS ())"]);
    c.ok("UID FETCH 2:3 (UID RFC822.SIZE)").await.exactly(&[
        &format!("* 1 FETCH (UID 2 RFC822.SIZE {})", plain().len()),
        &format!("* 2 FETCH (UID 3 RFC822.SIZE {})", multi().len()),
    ]);
    // RFC 9051 §6.4.9: UIDs that do not exist (1 was expunged) are ignored.
    c.ok("UID FETCH 1 FLAGS").await.exactly(&[]);
    c.ok("UID FETCH 50:60 FLAGS").await.exactly(&[]);
    // RFC 9051 §9 seq-range: "10:*" includes the last UID even though it is
    // less than 10.
    c.ok("UID FETCH 10:* FLAGS")
        .await
        .exactly(&["* 3 FETCH (UID 4 FLAGS ())"]);
    // Sequence-number FETCH of the same message does not add UID.
    c.ok("FETCH 2 FLAGS")
        .await
        .exactly(&["* 2 FETCH (FLAGS ())"]);
}

#[tokio::test]
async fn body_sets_seen_and_peek_does_not() {
    let (_w, mut c) = mailbox().await;
    c.ok("FETCH 1 BODY.PEEK[TEXT]")
        .await
        .exactly(&[&format!("* 1 FETCH (BODY[TEXT] {})", lit(PLAIN_TEXT))]);
    c.ok("FETCH 1 FLAGS")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())"]);
    // RFC 9051 §6.4.5: BODY[…] sets \Seen; the changed flags come with it.
    c.ok("FETCH 1 BODY[TEXT]").await.exactly(&[&format!(
        "* 1 FETCH (BODY[TEXT] {} FLAGS (\\Seen))",
        lit(PLAIN_TEXT)
    )]);
    // Already seen: nothing changes, no FLAGS.
    c.ok("FETCH 1 BODY[TEXT]")
        .await
        .exactly(&[&format!("* 1 FETCH (BODY[TEXT] {})", lit(PLAIN_TEXT))]);
    // RFC 3516 §4.2: BINARY[…] sets \Seen like BODY[…].
    c.ok("FETCH 2 BINARY[1]").await.exactly(&[&format!(
        "* 2 FETCH (BINARY[1] {} FLAGS (\\Seen))",
        lit(QP_DECODED)
    )]);
    // RFC822.TEXT is BODY[TEXT] (RFC 3501 §6.4.5): it sets \Seen as well.
    c.ok("STORE 1 -FLAGS.SILENT (\\Seen)").await.exactly(&[]);
    c.ok("FETCH 1 RFC822.TEXT").await.exactly(&[&format!(
        "* 1 FETCH (RFC822.TEXT {} FLAGS (\\Seen))",
        lit(PLAIN_TEXT)
    )]);
    // RFC 9051 §6.3.3: EXAMINE is read-only; BODY[] sets no \Seen there.
    c.ok("EXAMINE INBOX").await.tagged_starts("OK [READ-ONLY]");
    c.ok("FETCH 3 BODY[]")
        .await
        .exactly(&[&format!("* 3 FETCH (BODY[] {})", lit(ODD))]);
    c.ok("FETCH 1:3 FLAGS").await.exactly(&[
        "* 1 FETCH (FLAGS (\\Seen))",
        "* 2 FETCH (FLAGS (\\Seen))",
        "* 3 FETCH (FLAGS ())",
    ]);
}

// covers: BINARY
#[tokio::test]
async fn binary_decodes_quoted_printable_and_base64() {
    let (_w, mut c) = mailbox().await;
    // RFC 3516 §4.2: BINARY returns the part decoded from its
    // Content-Transfer-Encoding; data holding NUL comes as literal8 (~{n}).
    let r = c
        .ok("FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2])")
        .await;
    r.exactly(&[&format!(
        "* 2 FETCH (BINARY[1] {} BINARY.SIZE[1] {} BINARY[2] ~{} BINARY.SIZE[2] {})",
        lit(QP_DECODED),
        QP_DECODED.len(),
        lit(B64_DECODED),
        B64_DECODED.len()
    )]);
    // RFC 3516 §4.2: a partial BINARY names its origin, like BODY.
    c.ok("FETCH 2 BINARY.PEEK[2]<2.5>")
        .await
        .exactly(&[&format!("* 2 FETCH (BINARY[2]<2> {})", lit("hello"))]);
    // A 7bit message/rfc822 part decodes to itself; a single-part
    // message's part 1 is its body.
    c.ok("FETCH 2 BINARY.PEEK[3]")
        .await
        .exactly(&[&format!("* 2 FETCH (BINARY[3] {})", lit(&inner()))]);
    c.ok("UID FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])")
        .await
        .exactly(&[&format!(
            "* 1 FETCH (UID 2 BINARY.SIZE[1] {} BINARY[1] {})",
            PLAIN_TEXT.len(),
            lit(PLAIN_TEXT)
        )]);
    // .PEEK and BINARY.SIZE leave \Seen alone (RFC 3516 §4.2).
    c.ok("FETCH 1:2 FLAGS")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);
}

#[tokio::test]
async fn binary_of_unknown_encoding_is_no_unknown_cte() {
    let (_w, mut c) = mailbox().await;
    // RFC 3516 §4.2: an unknown Content-Transfer-Encoding is a tagged
    // NO [UNKNOWN-CTE]; RFC 9051 §9 msg-att: a FETCH response names at least
    // one item, so with nothing else asked there is none.
    let r = c.no("FETCH 3 BINARY.PEEK[1]").await;
    r.tagged_starts("NO [UNKNOWN-CTE]").exactly(&[]);
    let r = c.no("FETCH 3 BINARY.SIZE[1]").await;
    r.tagged_starts("NO [UNKNOWN-CTE]").exactly(&[]);
    // The other items are still given, separated by one space.
    let r = c.no("UID FETCH 4 (BINARY.PEEK[1] FLAGS)").await;
    r.tagged_starts("NO [UNKNOWN-CTE]")
        .exactly(&["* 3 FETCH (UID 4 FLAGS ())"]);
    let r = c.no("FETCH 3 (BINARY.SIZE[1] RFC822.SIZE)").await;
    r.tagged_starts("NO [UNKNOWN-CTE]")
        .exactly(&[&format!("* 3 FETCH (RFC822.SIZE {})", ODD.len())]);
    // BODY[] is not decoded, so it is served.
    c.ok("FETCH 3 BODY.PEEK[1]")
        .await
        .exactly(&[&format!("* 3 FETCH (BODY[1] {})", lit("abc\r\n"))]);
    c.ok("NOOP").await;
}

// covers: CONDSTORE
#[tokio::test]
async fn condstore_fetch_modseq_and_changedsince() {
    let (_w, mut c) = mailbox().await;
    // RFC 7162 §3.1.4: MODSEQ is a fetch item, "MODSEQ (n)".
    let r = c.ok("FETCH 1:3 (MODSEQ)").await;
    let before: Vec<u64> = (1..=3)
        .map(|n| modseq(r.one(&format!("* {n} FETCH (MODSEQ ("))))
        .collect();
    assert_eq!(
        r.starting("* ")
            .iter()
            .filter(|l| l.contains(" FETCH "))
            .count(),
        3
    );
    let highest = *before.iter().max().unwrap();
    // RFC 7162 §3.1.3: with CONDSTORE on, STORE replies carry MODSEQ, and the
    // change gets a modseq above every earlier one (RFC 7162 §2).
    let r = c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    let line = r.one("* 2 FETCH (FLAGS (\\Flagged) MODSEQ (");
    let m2 = modseq(line);
    assert!(m2 > highest, "{m2} after {before:?}");
    assert_eq!(line, format!("* 2 FETCH (FLAGS (\\Flagged) MODSEQ ({m2}))"));
    // RFC 7162 §3.1.4.1: CHANGEDSINCE gives only messages whose modseq is
    // greater, and implies MODSEQ.
    c.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .await
        .exactly(&[&format!("* 2 FETCH (FLAGS (\\Flagged) MODSEQ ({m2}))")]);
    c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .await
        .exactly(&[&format!(
            "* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ({m2}))"
        )]);
    c.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {m2})"))
        .await
        .exactly(&[]);
    // The older messages keep their modseqs.
    c.ok("FETCH 1,3 (MODSEQ)").await.exactly(&[
        &format!("* 1 FETCH (MODSEQ ({}))", before[0]),
        &format!("* 3 FETCH (MODSEQ ({}))", before[2]),
    ]);
}

#[tokio::test]
async fn store_adds_removes_and_replaces_flags_and_keywords() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.6: +FLAGS adds, and the new flags are returned; a new
    // keyword is announced with FLAGS (RFC 9051 §7.3.5) before the FETCH.
    let r = c.ok("STORE 1 +FLAGS (\\Flagged $Work)").await;
    r.has("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)")
        .has("* 1 FETCH (FLAGS (\\Flagged $Work))");
    assert_eq!(r.starting("* FLAGS ").len(), 1, "{r}");
    assert_eq!(
        r.untagged.last().unwrap(),
        "* 1 FETCH (FLAGS (\\Flagged $Work))"
    );
    // Adding again changes nothing but still reports the flags.
    c.ok("STORE 1:2 +FLAGS ($Work)").await.exactly(&[
        "* 1 FETCH (FLAGS (\\Flagged $Work))",
        "* 2 FETCH (FLAGS ($Work))",
    ]);
    // -FLAGS removes.
    c.ok("STORE 1 -FLAGS ($Work \\Flagged)")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())"]);
    // FLAGS replaces the whole set (keywords included).
    c.ok("STORE 2 FLAGS (\\Seen \\Answered)")
        .await
        .exactly(&["* 2 FETCH (FLAGS (\\Seen \\Answered))"]);
    c.ok("STORE 2 FLAGS ()")
        .await
        .exactly(&["* 2 FETCH (FLAGS ())"]);
    // Keywords are atoms, compared without regard to case (RFC 9051 §9:
    // "all alphabetic characters are case-insensitive").
    c.ok("STORE 3 +FLAGS (Later)")
        .await
        .has("* 3 FETCH (FLAGS (Later))");
    c.ok("STORE 3 -FLAGS (LATER)")
        .await
        .exactly(&["* 3 FETCH (FLAGS ())"]);
    c.ok("FETCH 1:3 FLAGS").await.exactly(&[
        "* 1 FETCH (FLAGS ())",
        "* 2 FETCH (FLAGS ())",
        "* 3 FETCH (FLAGS ())",
    ]);
}

#[tokio::test]
async fn store_silent_and_uid_store() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.6: .SILENT suppresses the FETCH replies.
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Seen)").await.exactly(&[]);
    c.ok("STORE 2 -FLAGS.SILENT (\\Seen)").await.exactly(&[]);
    c.ok("STORE 3 FLAGS.SILENT (\\Draft)").await.exactly(&[]);
    c.ok("FETCH 1:3 FLAGS").await.exactly(&[
        "* 1 FETCH (FLAGS (\\Seen))",
        "* 2 FETCH (FLAGS ())",
        "* 3 FETCH (FLAGS (\\Draft))",
    ]);
    // RFC 9051 §6.4.9: UID STORE takes UIDs and its FETCH replies carry UID.
    c.ok("UID STORE 3:4 +FLAGS (\\Answered)").await.exactly(&[
        "* 2 FETCH (UID 3 FLAGS (\\Answered))",
        "* 3 FETCH (UID 4 FLAGS (\\Answered \\Draft))",
    ]);
    // A UID that does not exist is ignored (RFC 9051 §6.4.9).
    c.ok("UID STORE 1,40 +FLAGS (\\Flagged)").await.exactly(&[]);
    c.ok("UID STORE 2 +FLAGS.SILENT (\\Flagged)")
        .await
        .exactly(&[]);
    c.ok("FETCH 1 FLAGS")
        .await
        .exactly(&["* 1 FETCH (FLAGS (\\Seen \\Flagged))"]);
}

#[tokio::test]
async fn store_unchangedsince_reports_modified() {
    let (_w, mut c) = mailbox().await;
    let r = c.ok("FETCH 1:3 (MODSEQ)").await;
    let m: Vec<u64> = (1..=3)
        .map(|n| modseq(r.one(&format!("* {n} FETCH ("))))
        .collect();
    // Change message 1 so its modseq passes everyone else's.
    let r = c.ok("STORE 1 +FLAGS (\\Flagged)").await;
    let m1 = modseq(r.one("* 1 FETCH ("));
    let limit = m[1].max(m[2]);
    assert!(m1 > limit);
    // RFC 7162 §3.1.3: messages changed since UNCHANGEDSINCE are not stored
    // to and are named in MODIFIED (sequence numbers for STORE); the others
    // are stored and reported with their new MODSEQ.
    let r = c
        .ok(&format!(
            "STORE 1:3 (UNCHANGEDSINCE {limit}) +FLAGS (\\Answered)"
        ))
        .await;
    r.tagged_starts("OK [MODIFIED 1]");
    let l2 = r.one("* 2 FETCH (").to_string();
    let l3 = r.one("* 3 FETCH (").to_string();
    r.lacks("* 1 FETCH");
    let (n2, n3) = (modseq(&l2), modseq(&l3));
    assert!(n2 > m1 && n3 > m1, "{r}");
    assert_eq!(l2, format!("* 2 FETCH (FLAGS (\\Answered) MODSEQ ({n2}))"));
    assert_eq!(l3, format!("* 3 FETCH (FLAGS (\\Answered) MODSEQ ({n3}))"));
    // UID STORE names UIDs in MODIFIED (RFC 7162 §3.1.3).
    let r = c
        .ok(&format!(
            "UID STORE 2:4 (UNCHANGEDSINCE {m1}) -FLAGS (\\Flagged)"
        ))
        .await;
    r.tagged_starts("OK [MODIFIED 3:4]");
    let line = r.one("* 1 FETCH (").to_string();
    let n1 = modseq(&line);
    assert_eq!(line, format!("* 1 FETCH (UID 2 FLAGS () MODSEQ ({n1}))"));
    // RFC 7162 §3.1.3: UNCHANGEDSINCE 0 always fails for an existing message.
    c.ok("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
        .await
        .tagged_starts("OK [MODIFIED 1]")
        .exactly(&[]);
    c.ok("FETCH 1:3 (FLAGS MODSEQ)").await.exactly(&[
        &format!("* 1 FETCH (FLAGS () MODSEQ ({n1}))"),
        &format!("* 2 FETCH (FLAGS (\\Answered) MODSEQ ({n2}))"),
        &format!("* 3 FETCH (FLAGS (\\Answered) MODSEQ ({n3}))"),
    ]);
}

#[tokio::test]
async fn store_unchangedsince_silent_still_reports_modseq() {
    let (_w, mut c) = mailbox().await;
    let r = c.ok("FETCH 1:3 (MODSEQ)").await;
    let top = (1..=3)
        .map(|n| modseq(r.one(&format!("* {n} FETCH ("))))
        .max()
        .unwrap();
    // RFC 7162 §3.1.3: with UNCHANGEDSINCE an untagged FETCH with MODSEQ is
    // sent for each message stored to, even with .SILENT.
    let r = c
        .ok(&format!(
            "STORE 1:2 (UNCHANGEDSINCE {top}) +FLAGS.SILENT (\\Seen)"
        ))
        .await;
    let l1 = r.one("* 1 FETCH (").to_string();
    let l2 = r.one("* 2 FETCH (").to_string();
    assert_eq!(r.untagged.len(), 2, "{r}");
    assert_eq!(
        l1,
        format!("* 1 FETCH (FLAGS (\\Seen) MODSEQ ({}))", modseq(&l1))
    );
    assert_eq!(
        l2,
        format!("* 2 FETCH (FLAGS (\\Seen) MODSEQ ({}))", modseq(&l2))
    );
    assert!(modseq(&l1) > top && modseq(&l2) > top);
}

#[tokio::test]
async fn bad_syntax_and_bad_numbers_then_the_session_continues() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §9 seq-number: a sequence number beyond the mailbox's
    // messages is answered with a tagged BAD.
    c.bad("FETCH 4 FLAGS").await.exactly(&[]);
    c.bad("FETCH 2:9 FLAGS").await.exactly(&[]);
    c.bad("STORE 7 +FLAGS (\\Seen)").await.exactly(&[]);
    // RFC 9051 §7.1.3 BAD: syntax errors.
    c.bad("FETCH 0 FLAGS").await;
    c.bad("FETCH 1 (FLAGS").await;
    c.bad("FETCH 1 BOGUS").await;
    c.bad("FETCH 1 BODY[HEADER.FIELDS]").await;
    c.bad("FETCH").await;
    c.bad("STORE 1 +FLAGS").await;
    c.bad("STORE 1 FROB (\\Seen)").await;
    // Nothing was changed, and the session goes on.
    c.ok("FETCH 1:3 FLAGS").await.exactly(&[
        "* 1 FETCH (FLAGS ())",
        "* 2 FETCH (FLAGS ())",
        "* 3 FETCH (FLAGS ())",
    ]);
    // RFC 9051 §9 seq-number: "*" in an empty mailbox is BAD too.
    c.ok("CREATE Empty").await;
    c.ok("SELECT Empty").await.has("* 0 EXISTS");
    c.bad("FETCH 1:* FLAGS").await.exactly(&[]);
    c.bad("FETCH * FLAGS").await.exactly(&[]);
    c.ok("UID FETCH 1:* FLAGS").await.exactly(&[]);
    c.ok("NOOP").await;
}

// covers: PREVIEW
#[tokio::test]
async fn preview_is_the_start_of_the_text_with_white_space_folded() {
    let (w, mut c) = mailbox().await;
    // RFC 8970 §4: "PREVIEW" SP nstring; the text part of a multipart, its
    // transfer encoding decoded; UTF-8 travels as a literal.
    c.ok("FETCH 1:2 (PREVIEW)").await.exactly(&[
        "* 1 FETCH (PREVIEW \"Hello Bob. Second line.\")",
        &format!("* 2 FETCH (PREVIEW {})", lit("Café crème")),
    ]);
    // LAZY changes nothing here: the preview is always available.
    c.ok("UID FETCH 2 (PREVIEW (LAZY) FLAGS)")
        .await
        .exactly(&["* 1 FETCH (UID 2 FLAGS () PREVIEW \"Hello Bob. Second line.\")"]);
    c.ok("FETCH 1 PREVIEW (LAZY)")
        .await
        .exactly(&["* 1 FETCH (PREVIEW \"Hello Bob. Second line.\")"]);
    // Only LAZY is a modifier (RFC 8970 §4).
    c.bad("FETCH 1 (PREVIEW (EAGER))").await;
    // An HTML-only message: its text without the markup; a long one: at
    // most 256 characters (RFC 8970 §3.1).
    let long_word = "w".repeat(40);
    let body = format!("{long_word} ").repeat(20);
    w.deliver(
        USER,
        b"Subject: html\r\nContent-Type: text/html\r\n\r\n<html><body><style>p{}</style><p>Fish &amp;\r\n  chips</p></body></html>\r\n",
    )
    .await;
    w.deliver(USER, format!("Subject: long\r\n\r\n{body}\r\n").as_bytes())
        .await;
    c.ok("NOOP").await;
    let r = c.ok("FETCH 4:5 (PREVIEW)").await;
    r.has("* 4 FETCH (PREVIEW \"Fish & chips\")");
    let line = r.one("* 5 FETCH (PREVIEW \"");
    let text = &line["* 5 FETCH (PREVIEW \"".len()..line.len() - 2];
    assert_eq!(text.chars().count(), 256, "{line}");
    assert!(body.starts_with(text), "{line}");
    // PREVIEW does not set \Seen (RFC 8970 §3).
    c.ok("FETCH 1:5 (FLAGS)")
        .await
        .lacks("* 1 FETCH (FLAGS (\\Seen");
}

// covers: OBJECTID
#[tokio::test]
async fn emailid_survives_copy_and_move_threadid_is_nil() {
    let (_w, mut c) = mailbox().await;
    let r = c.ok("FETCH 1:2 (EMAILID THREADID)").await;
    let id = |r: &postgate_testkit::world::Reply, n: u32| -> String {
        let line = r.one(&format!("* {n} FETCH (EMAILID ("));
        let rest = &line[format!("* {n} FETCH (EMAILID (").len()..];
        let id = &rest[..rest.find(')').unwrap()];
        // RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
        assert!(
            !id.is_empty()
                && id.len() <= 255
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{line}"
        );
        // RFC 8474 §5.2: NIL where no thread id is kept.
        assert!(line.ends_with(" THREADID NIL)"), "{line}");
        id.to_string()
    };
    let (one, two) = (id(&r, 1), id(&r, 2));
    assert_ne!(one, two);
    // Only what was asked for: UID stood in for imap-codec, not on the wire.
    c.ok("FETCH 1 (EMAILID)")
        .await
        .exactly(&[&format!("* 1 FETCH (EMAILID ({one}))")]);
    c.ok("UID FETCH 3 EMAILID")
        .await
        .exactly(&[&format!("* 2 FETCH (UID 3 EMAILID ({two}))")]);
    // RFC 8474 §5.1: a copy and a moved message keep the EMAILID.
    c.ok("CREATE Kept").await;
    c.ok("COPY 1 Kept").await;
    c.ok("MOVE 2 Kept").await;
    c.ok("SELECT Kept").await;
    let r = c.ok("FETCH 1:2 (EMAILID THREADID)").await;
    assert_eq!((id(&r, 1), id(&r, 2)), (one, two));
}

// covers: OBJECTID
#[tokio::test]
async fn mailboxid_in_create_select_and_status_kept_by_rename() {
    let w = World::new().await;
    w.user(USER, "pw").await;
    let mut c = w.imap_login(USER, "pw").await;
    let inside = |s: &str, prefix: &str| -> String {
        let at = s.find(prefix).unwrap_or_else(|| panic!("{prefix} in {s}")) + prefix.len();
        s[at..at + s[at..].find(')').unwrap()].to_string()
    };
    // RFC 8474 §4.1: CREATE's tagged OK names the new mailbox's id.
    let r = c.ok("CREATE Work").await;
    assert!(r.tagged.starts_with("OK [MAILBOXID ("), "{r}");
    let work = inside(&r.tagged, "[MAILBOXID (");
    // RFC 8474 §4.2, §4.3: SELECT's response code and STATUS agree.
    let r = c.ok("STATUS Work (MAILBOXID)").await;
    r.exactly(&[&format!("* STATUS Work (MAILBOXID ({work}))")]);
    c.ok("STATUS Work (MESSAGES MAILBOXID APPENDLIMIT)")
        .await
        .has(&format!(
            "* STATUS Work (MESSAGES 0 APPENDLIMIT {} MAILBOXID ({work}))",
            50u64 << 20
        ));
    let r = c.ok("SELECT Work").await;
    r.has(&format!("* OK [MAILBOXID ({work})] Ok"));
    let r = c.ok("SELECT INBOX").await;
    let inbox = inside(r.one("* OK [MAILBOXID ("), "[MAILBOXID (");
    assert_ne!(inbox, work);
    // RENAME keeps the id; a mailbox created again under the old name
    // gets another (RFC 8474 §4).
    c.ok("RENAME Work Play").await;
    c.ok("STATUS Play (MAILBOXID)")
        .await
        .exactly(&[&format!("* STATUS Play (MAILBOXID ({work}))")]);
    let r = c.ok("CREATE Work").await;
    assert_ne!(inside(&r.tagged, "[MAILBOXID ("), work);
    c.ok("DELETE Play").await;
    c.no("STATUS Play (MAILBOXID)").await;
}

// covers: PARTIAL
#[tokio::test]
async fn fetch_partial_pages_through_what_the_set_leaves() {
    let (_w, mut c) = mailbox().await;
    // RFC 9394 §3.3: positions among the messages the set names, in
    // ascending order; negative ones count back from the last.
    c.ok("UID FETCH 1:* (UID) (PARTIAL 1:2)")
        .await
        .exactly(&["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]);
    c.ok("UID FETCH 1:* (UID) (PARTIAL -1:-1)")
        .await
        .exactly(&["* 3 FETCH (UID 4)"]);
    c.ok("UID FETCH 3:* UID (PARTIAL -5:-2)")
        .await
        .exactly(&["* 2 FETCH (UID 3)"]);
    c.ok("FETCH 1:* (UID) (PARTIAL 3:2)")
        .await
        .exactly(&["* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)"]);
    c.ok("UID FETCH 1:* (UID) (PARTIAL 5:9)").await.exactly(&[]);
    // With CHANGEDSINCE, PARTIAL pages through the changed ones.
    let r = c.ok("FETCH 1:* (MODSEQ)").await;
    let before = r
        .starting("* ")
        .iter()
        .filter(|l| l.contains(" FETCH "))
        .map(|l| modseq(l))
        .max()
        .unwrap();
    c.ok("STORE 1,3 +FLAGS.SILENT (\\Flagged)").await;
    let r = c
        .ok(&format!(
            "UID FETCH 1:* (UID) (CHANGEDSINCE {before} PARTIAL -1:-1)"
        ))
        .await;
    assert_eq!(r.untagged.len(), 1, "{r}");
    assert!(
        r.untagged[0].starts_with("* 3 FETCH (UID 4 MODSEQ ("),
        "{r}"
    );
    let r = c
        .ok(&format!(
            "UID FETCH 1:* (UID) (PARTIAL 1:1 CHANGEDSINCE {before})"
        ))
        .await;
    assert_eq!(r.untagged.len(), 1, "{r}");
    assert!(
        r.untagged[0].starts_with("* 1 FETCH (UID 2 MODSEQ ("),
        "{r}"
    );
    // RFC 9394 §3.1 partial-range: non-zero, one sign.
    c.bad("UID FETCH 1:* (UID) (PARTIAL 0:1)").await;
    c.bad("UID FETCH 1:* (UID) (PARTIAL 1:-1)").await;
    c.bad("UID FETCH 1:* (UID) (PARTIAL)").await;
    c.ok("NOOP").await;
}
