//! IMAP SEARCH, UID SEARCH, ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
//! CONDSTORE's MODSEQ key (RFC 7162 §3.1.5), SORT (RFC 5256), SORT=DISPLAY
//! (RFC 5957) and THREAD (RFC 5256) on the wire.
//!
//! The mailbox: a first message delivered and expunged (so that message n
//! has UID n + 1), then six messages with distinct senders, recipients,
//! dates (two in time zones that change their order in UTC), sizes and
//! subjects, three of them a reply chain and one a forward, one subject an
//! RFC 2047 encoded word. Expected sizes are computed from the bytes.
use postgate_testkit::world::{Reply, Wire, World};

const USER: &str = "bob@test.example";

const S1: &str = "Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n\
From: Alice Example <alice@example.org>\r\n\
To: Bob <bob@test.example>\r\n\
Subject: Quarterly report\r\n\
Message-ID: <s1@example.org>\r\n\
\r\n\
Numbers attached.\r\n";

/// 2 Feb 20:00 UTC: after S1 although its own date says 3 Feb.
fn s2() -> String {
    format!(
        "Date: Tue, 3 Feb 2026 01:00:00 +0500\r\n\
         From: Carol <carol@example.net>\r\n\
         To: Bob <bob@test.example>\r\n\
         Cc: Dave <dave@example.com>\r\n\
         Subject: Re: Quarterly report\r\n\
         Message-ID: <s2@example.net>\r\n\
         In-Reply-To: <s1@example.org>\r\n\
         References: <s1@example.org>\r\n\
         \r\n\
         Looks good.\r\n{}",
        format!("{}\r\n", "x".repeat(60)).repeat(20)
    )
}

const S3: &str = "Date: Thu, 1 Jan 2026 09:00:00 +0000\r\n\
From: Zed <zed@example.com>\r\n\
To: Adam <yann@example.org>\r\n\
Subject: =?UTF-8?B?Wm9vIMOpbMOodmU=?=\r\n\
Message-ID: <s3@example.com>\r\n\
X-Tracker: blue-42\r\n\
\r\n\
Bonjour tout le monde.\r\n";

/// 4 Feb 22:30 UTC: before S5 although its own date says 5 Feb.
const S4: &str = "Date: Thu, 5 Feb 2026 00:30:00 +0200\r\n\
From: Bob <bob@test.example>\r\n\
To: Alice Example <alice@example.org>\r\n\
Subject: Lunch?\r\n\
Message-ID: <s4@test.example>\r\n\
\r\n\
Pizza at noon?\r\n";

const S5: &str = "Date: Wed, 4 Feb 2026 23:00:00 +0000\r\n\
From: Alice Example <alice@example.org>\r\n\
To: Carol <carol@example.net>\r\n\
Cc: Bob <bob@test.example>\r\n\
Subject: Re: Re: Quarterly report\r\n\
Message-ID: <s5@example.org>\r\n\
In-Reply-To: <s2@example.net>\r\n\
References: <s1@example.org> <s2@example.net>\r\n\
\r\n\
Agreed.\r\n";

const S6: &str = "Date: Fri, 6 Feb 2026 12:00:00 +0000\r\n\
From: Aaron Dave <dave@example.com>\r\n\
To: bob@test.example\r\n\
Subject: Fwd: Lunch?\r\n\
Message-ID: <s6@example.com>\r\n\
\r\n\
See below.\r\n";

/// A second reply to S1, delivered by the THREAD test.
const S7: &str = "Date: Thu, 5 Feb 2026 09:00:00 +0000\r\n\
From: Eve <eve@example.com>\r\n\
To: Alice Example <alice@example.org>\r\n\
Subject: Re: Quarterly report\r\n\
Message-ID: <s7@example.com>\r\n\
In-Reply-To: <s1@example.org>\r\n\
References: <s1@example.org>\r\n\
\r\n\
Me too.\r\n";

fn messages() -> Vec<String> {
    vec![
        S1.to_string(),
        s2(),
        S3.to_string(),
        S4.to_string(),
        S5.to_string(),
        S6.to_string(),
    ]
}

/// The mailbox above, in a fresh session with INBOX selected (messages 1–6,
/// UIDs 2–7).
async fn mailbox() -> (World, Wire) {
    let w = World::new().await;
    w.user(USER, "pw").await;
    let messages = messages();
    let messages: Vec<&[u8]> = messages.iter().map(|m| m.as_bytes()).collect();
    let c = w.mailbox_after_expunge(USER, "pw", &messages).await;
    (w, c)
}

/// `* SEARCH` and `ids` (RFC 3501 §7.2.5; IMAP4rev1 sessions get this form).
fn search_line(ids: &[u32]) -> String {
    let mut s = String::from("* SEARCH");
    for id in ids {
        s.push_str(&format!(" {id}"));
    }
    s
}

/// Runs a SEARCH-like command and asserts the one untagged reply is `line`.
#[track_caller]
fn expect_one<'a>(
    c: &'a mut Wire,
    cmd: &'a str,
    line: String,
) -> impl std::future::Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let r = c.imap(cmd).await;
        assert!(r.tagged.starts_with("OK"), "{caller}: {cmd}\n{r}");
        assert_eq!(r.untagged, [line], "{caller}: {cmd}\n{r}");
    }
}

/// Sends `cmd` with a tag it returns, for replies that name the tag.
async fn tagged(c: &mut Wire, cmd: &str) -> (String, Reply) {
    let tag = c.next_tag();
    c.send_line(&format!("{tag} {cmd}")).await;
    let r = c.replies(&tag, cmd).await;
    (tag, r)
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

/// Sequence numbers (1-based) ordered by size, ties by number.
fn by_size(reverse: bool) -> Vec<u32> {
    let sizes: Vec<usize> = messages().iter().map(String::len).collect();
    let mut ids: Vec<u32> = (1..=sizes.len() as u32).collect();
    ids.sort_by(|a, b| {
        let (x, y) = (sizes[*a as usize - 1], sizes[*b as usize - 1]);
        // RFC 5256 §3: REVERSE does not reverse the implicit sequence order.
        (if reverse { y.cmp(&x) } else { x.cmp(&y) }).then(a.cmp(b))
    });
    ids
}

#[tokio::test]
async fn search_flags_and_keywords() {
    let (_w, mut c) = mailbox().await;
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Flagged)").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    c.ok("STORE 3 +FLAGS.SILENT ($Work)").await;
    // RFC 9051 §6.4.4: ALL, FLAGGED, UNSEEN, SEEN, KEYWORD, UNKEYWORD;
    // several keys are ANDed.
    expect_one(&mut c, "SEARCH ALL", search_line(&[1, 2, 3, 4, 5, 6])).await;
    expect_one(&mut c, "SEARCH FLAGGED", search_line(&[2, 4])).await;
    expect_one(&mut c, "SEARCH UNFLAGGED", search_line(&[1, 3, 5, 6])).await;
    expect_one(&mut c, "SEARCH UNSEEN", search_line(&[2, 3, 4, 5, 6])).await;
    expect_one(&mut c, "SEARCH SEEN", search_line(&[1])).await;
    expect_one(&mut c, "SEARCH KEYWORD $Work", search_line(&[3])).await;
    expect_one(
        &mut c,
        "SEARCH UNKEYWORD $Work",
        search_line(&[1, 2, 4, 5, 6]),
    )
    .await;
    expect_one(&mut c, "SEARCH SEEN FLAGGED", search_line(&[])).await;
    expect_one(&mut c, "SEARCH UNSEEN FLAGGED", search_line(&[2, 4])).await;
    // RFC 9051 §6.4.4: UID SEARCH answers with UIDs.
    expect_one(&mut c, "UID SEARCH FLAGGED", search_line(&[3, 5])).await;
    expect_one(&mut c, "UID SEARCH KEYWORD $work", search_line(&[4])).await;
}

#[tokio::test]
async fn search_addresses_subject_body_text_and_header() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.4: substring matches, case-insensitive, on the fields.
    expect_one(&mut c, "SEARCH FROM alice", search_line(&[1, 5])).await;
    expect_one(&mut c, "SEARCH FROM \"example.org\"", search_line(&[1, 5])).await;
    expect_one(&mut c, "SEARCH FROM aaron", search_line(&[6])).await;
    expect_one(&mut c, "SEARCH TO ALICE", search_line(&[4])).await;
    expect_one(&mut c, "SEARCH TO bob", search_line(&[1, 2, 6])).await;
    expect_one(&mut c, "SEARCH CC bob", search_line(&[5])).await;
    expect_one(&mut c, "SEARCH CC dave", search_line(&[2])).await;
    expect_one(&mut c, "SEARCH SUBJECT quarterly", search_line(&[1, 2, 5])).await;
    expect_one(
        &mut c,
        "SEARCH SUBJECT \"re: quarterly\"",
        search_line(&[2, 5]),
    )
    .await;
    expect_one(&mut c, "SEARCH SUBJECT zoo", search_line(&[3])).await;
    // BODY looks at the body only; TEXT at header and body.
    expect_one(&mut c, "SEARCH BODY pizza", search_line(&[4])).await;
    expect_one(&mut c, "SEARCH BODY quarterly", search_line(&[])).await;
    expect_one(&mut c, "SEARCH TEXT quarterly", search_line(&[1, 2, 5])).await;
    expect_one(&mut c, "SEARCH TEXT PIZZA", search_line(&[4])).await;
    expect_one(&mut c, "SEARCH TEXT blue-42", search_line(&[3])).await;
    // HEADER: the named field contains the string; the empty string
    // matches every message that has the field.
    expect_one(&mut c, "SEARCH HEADER X-Tracker blue", search_line(&[3])).await;
    expect_one(
        &mut c,
        "SEARCH HEADER In-Reply-To \"\"",
        search_line(&[2, 5]),
    )
    .await;
    expect_one(
        &mut c,
        "SEARCH HEADER Message-ID s4@test",
        search_line(&[4]),
    )
    .await;
    expect_one(&mut c, "SEARCH HEADER X-Missing \"\"", search_line(&[])).await;
    expect_one(&mut c, "UID SEARCH FROM alice", search_line(&[2, 6])).await;
}

#[tokio::test]
async fn search_charset_utf8_and_encoded_words() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.4: the search strings are in the given charset, and
    // RFC 2047 encoded words in the header are decoded to compare.
    let needle = "élève";
    let tag = c.next_tag();
    c.send(
        format!(
            "{tag} SEARCH CHARSET UTF-8 SUBJECT {{{}+}}\r\n{needle}\r\n",
            needle.len()
        )
        .as_bytes(),
    )
    .await;
    let r = c.replies(&tag, "SEARCH CHARSET UTF-8 SUBJECT élève").await;
    assert!(r.tagged.starts_with("OK"), "{r}");
    r.exactly(&[&search_line(&[3])]);
    let tag = c.next_tag();
    c.send(
        format!(
            "{tag} UID SEARCH CHARSET UTF-8 TEXT {{{}+}}\r\n{needle}\r\n",
            needle.len()
        )
        .as_bytes(),
    )
    .await;
    let r = c.replies(&tag, "UID SEARCH CHARSET UTF-8 TEXT élève").await;
    r.exactly(&[&search_line(&[4])]);
    expect_one(
        &mut c,
        "SEARCH CHARSET US-ASCII FROM zed",
        search_line(&[3]),
    )
    .await;
    // RFC 9051 §6.4.4: an unsupported charset is NO [BADCHARSET], not BAD.
    let r = c.no("SEARCH CHARSET KOI8-R ALL").await;
    r.tagged_starts("NO [BADCHARSET").exactly(&[]);
}

#[tokio::test]
async fn search_larger_and_smaller() {
    let (_w, mut c) = mailbox().await;
    let sizes: Vec<usize> = messages().iter().map(String::len).collect();
    let pick = |f: &dyn Fn(usize) -> bool| -> Vec<u32> {
        (1..=sizes.len() as u32)
            .filter(|&n| f(sizes[n as usize - 1]))
            .collect()
    };
    // RFC 9051 §6.4.4: LARGER/SMALLER compare RFC822.SIZE strictly.
    for &at in &[sizes[0], sizes[1], sizes[3]] {
        let larger = pick(&|s| s > at);
        let smaller = pick(&|s| s < at);
        assert!(!larger.is_empty() || !smaller.is_empty());
        expect_one(&mut c, &format!("SEARCH LARGER {at}"), search_line(&larger)).await;
        expect_one(
            &mut c,
            &format!("SEARCH SMALLER {at}"),
            search_line(&smaller),
        )
        .await;
    }
    expect_one(&mut c, "SEARCH LARGER 1000", search_line(&[2])).await;
    let same = pick(&|s| s == sizes[4]);
    assert!(same.contains(&5));
    expect_one(
        &mut c,
        &format!("SEARCH NOT LARGER {} NOT SMALLER {}", sizes[4], sizes[4]),
        search_line(&same),
    )
    .await;
}

#[tokio::test]
async fn search_sent_dates_disregard_time_and_zone() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.4: SENTBEFORE/SENTON/SENTSINCE use the Date: field's
    // date, disregarding time and time zone (S4 is 4 Feb in UTC, 5 Feb in
    // its own zone; S2 is 2 Feb in UTC, 3 Feb in its own).
    expect_one(&mut c, "SEARCH SENTBEFORE 2-Feb-2026", search_line(&[3])).await;
    expect_one(&mut c, "SEARCH SENTSINCE 5-Feb-2026", search_line(&[4, 6])).await;
    expect_one(&mut c, "SEARCH SENTON 5-Feb-2026", search_line(&[4])).await;
    expect_one(&mut c, "SEARCH SENTON 4-Feb-2026", search_line(&[5])).await;
    expect_one(&mut c, "SEARCH SENTON 3-Feb-2026", search_line(&[2])).await;
    expect_one(
        &mut c,
        "SEARCH SENTSINCE 2-Feb-2026 SENTBEFORE 4-Feb-2026",
        search_line(&[1, 2]),
    )
    .await;
}

/// APPENDs `raw` dated `date` with a non-synchronizing literal (RFC 7888).
async fn append(c: &mut Wire, mailbox: &str, date: &str, raw: &str) {
    c.append(&format!("{mailbox} \"{date}\""), raw.as_bytes())
        .await
        .tagged_starts("OK");
}

// covers: SORT
#[tokio::test]
async fn internal_dates_search_and_sort_by_arrival() {
    let (_w, mut c) = mailbox().await;
    c.ok("CREATE Dated").await;
    // Appended out of date order, so that ARRIVAL differs from sequence order.
    append(
        &mut c,
        "Dated",
        "20-Mar-2020 23:59:59 +0000",
        "Subject: a\r\n\r\na\r\n",
    )
    .await;
    append(
        &mut c,
        "Dated",
        "10-Mar-2020 00:00:00 +0000",
        "Subject: b\r\n\r\nb\r\n",
    )
    .await;
    append(
        &mut c,
        "Dated",
        "15-Mar-2020 12:00:00 +0000",
        "Subject: c\r\n\r\nc\r\n",
    )
    .await;
    c.ok("SELECT Dated").await.has("* 3 EXISTS");
    // RFC 9051 §6.4.4: BEFORE/ON/SINCE use the internal date.
    expect_one(&mut c, "SEARCH BEFORE 15-Mar-2020", search_line(&[2])).await;
    expect_one(&mut c, "SEARCH ON 15-Mar-2020", search_line(&[3])).await;
    expect_one(&mut c, "SEARCH SINCE 15-Mar-2020", search_line(&[1, 3])).await;
    expect_one(&mut c, "SEARCH SINCE 21-Mar-2020", search_line(&[])).await;
    expect_one(&mut c, "SEARCH ON 20-Mar-2020", search_line(&[1])).await;
    // RFC 5256 §3: ARRIVAL is the internal date.
    let sort = |ids: &[u32]| search_line(ids).replacen("SEARCH", "SORT", 1);
    expect_one(&mut c, "SORT (ARRIVAL) UTF-8 ALL", sort(&[2, 3, 1])).await;
    expect_one(&mut c, "SORT (REVERSE ARRIVAL) UTF-8 ALL", sort(&[1, 3, 2])).await;
    expect_one(&mut c, "UID SORT (ARRIVAL) UTF-8 ALL", sort(&[2, 3, 1])).await;
}

#[tokio::test]
async fn search_sequence_and_uid_sets() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.4: a sequence set key, and UID with a UID set.
    expect_one(&mut c, "SEARCH 2,4:5", search_line(&[2, 4, 5])).await;
    expect_one(&mut c, "SEARCH 5:*", search_line(&[5, 6])).await;
    expect_one(&mut c, "UID SEARCH 2,4:5", search_line(&[3, 5, 6])).await;
    expect_one(&mut c, "SEARCH UID 3:5", search_line(&[2, 3, 4])).await;
    expect_one(&mut c, "UID SEARCH UID 3:5", search_line(&[3, 4, 5])).await;
    // "*" is the highest UID, so 7:* and 100:* both name the last message.
    expect_one(&mut c, "SEARCH UID 100:*", search_line(&[6])).await;
    expect_one(&mut c, "SEARCH UID 1", search_line(&[])).await;
    expect_one(&mut c, "SEARCH 1:3 FROM alice", search_line(&[1])).await;
}

#[tokio::test]
async fn search_not_or_and_parentheses() {
    let (_w, mut c) = mailbox().await;
    // RFC 9051 §6.4.4: NOT, OR, and a parenthesised list (AND).
    expect_one(&mut c, "SEARCH NOT FROM alice", search_line(&[2, 3, 4, 6])).await;
    expect_one(
        &mut c,
        "SEARCH OR FROM carol SUBJECT lunch",
        search_line(&[2, 4, 6]),
    )
    .await;
    expect_one(
        &mut c,
        "SEARCH NOT OR FROM carol SUBJECT lunch",
        search_line(&[1, 3, 5]),
    )
    .await;
    expect_one(
        &mut c,
        "SEARCH OR (FROM alice SUBJECT \"re:\") (FROM zed)",
        search_line(&[3, 5]),
    )
    .await;
    expect_one(
        &mut c,
        "SEARCH OR OR FROM zed FROM bob CC dave",
        search_line(&[2, 3, 4]),
    )
    .await;
    c.bad("SEARCH OR FROM alice").await;
    c.bad("SEARCH FROB").await;
    c.bad("SEARCH (FROM alice").await;
    c.ok("NOOP").await;
}

// covers: ESEARCH
#[tokio::test]
async fn esearch_return_options() {
    let (_w, mut c) = mailbox().await;
    // RFC 4731 §3.1: ESEARCH (TAG "…") [UID] and the data asked for.
    let (tag, r) = tagged(
        &mut c,
        "UID SEARCH RETURN (MIN MAX COUNT) SUBJECT quarterly",
    )
    .await;
    assert!(r.tagged.starts_with("OK"), "{r}");
    r.exactly(&[&format!(
        "* ESEARCH (TAG \"{tag}\") UID MIN 2 MAX 6 COUNT 3"
    )]);
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (ALL) SUBJECT quarterly").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") ALL 1:2,5")]);
    // RFC 4731 §3.1: RETURN () means RETURN (ALL).
    let (tag, r) = tagged(&mut c, "UID SEARCH RETURN () ALL").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") UID ALL 2:7")]);
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (MIN) FROM alice").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") MIN 1")]);
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (COUNT) UNSEEN").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") COUNT 6")]);
    // RFC 4731 §3.1: no MIN, MAX or ALL when nothing matches; the ESEARCH
    // reply is still sent, and COUNT is 0.
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nowhere").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") COUNT 0")]);
    let (tag, r) = tagged(&mut c, "UID SEARCH RETURN (MIN MAX) SUBJECT nowhere").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") UID")]);
    c.bad("SEARCH RETURN (FROB) ALL").await;
    c.bad("SEARCH RETURN MIN ALL").await;
    // Plain SEARCH still answers with SEARCH (RFC 4731 §3.1).
    expect_one(&mut c, "SEARCH FROM alice", search_line(&[1, 5])).await;
}

// covers: SEARCHRES
#[tokio::test]
async fn searchres_saves_and_dollar_refers_to_it() {
    let (_w, mut c) = mailbox().await;
    // RFC 5182 §2.1: after SELECT "$" is empty: a valid set matching nothing.
    c.ok("FETCH $ FLAGS").await.exactly(&[]);
    c.ok("STORE $ +FLAGS (\\Deleted)").await.exactly(&[]);
    expect_one(&mut c, "SEARCH $", search_line(&[])).await;
    expect_one(&mut c, "UID SEARCH UID $", search_line(&[])).await;
    // RFC 5182 §2.1: SAVE alone gives no ESEARCH reply.
    c.ok("SEARCH RETURN (SAVE) FROM alice").await.exactly(&[]);
    c.ok("FETCH $ (UID)")
        .await
        .exactly(&["* 1 FETCH (UID 2)", "* 5 FETCH (UID 6)"]);
    c.ok("UID FETCH $ (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (UID 2 FLAGS ())", "* 5 FETCH (UID 6 FLAGS ())"]);
    c.ok("STORE $ +FLAGS (\\Flagged)").await.exactly(&[
        "* 1 FETCH (FLAGS (\\Flagged))",
        "* 5 FETCH (FLAGS (\\Flagged))",
    ]);
    expect_one(&mut c, "SEARCH FLAGGED", search_line(&[1, 5])).await;
    expect_one(&mut c, "SEARCH $ SUBJECT \"re:\"", search_line(&[5])).await;
    expect_one(&mut c, "SEARCH NOT $", search_line(&[2, 3, 4, 6])).await;
    expect_one(&mut c, "UID SEARCH UID $", search_line(&[2, 6])).await;
    // SAVE with other options: the ESEARCH comes, and $ is replaced.
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (SAVE ALL) SUBJECT lunch").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") ALL 4,6")]);
    c.ok("FETCH $ (UID)")
        .await
        .exactly(&["* 4 FETCH (UID 5)", "* 6 FETCH (UID 7)"]);
    // RFC 5182 §2.1: with MIN (and neither ALL nor COUNT) only MIN is saved.
    let (tag, r) = tagged(&mut c, "UID SEARCH RETURN (SAVE MIN) SUBJECT quarterly").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") UID MIN 2")]);
    c.ok("FETCH $ (UID)").await.exactly(&["* 1 FETCH (UID 2)"]);
    // RFC 5182 §2.1: SELECT empties it again.
    c.ok("SELECT INBOX").await;
    expect_one(&mut c, "SEARCH $", search_line(&[])).await;
    c.ok("FETCH $ FLAGS").await.exactly(&[]);
}

#[tokio::test]
async fn searchres_forgets_expunged_messages() {
    let (_w, mut c) = mailbox().await;
    c.ok("SEARCH RETURN (SAVE) SUBJECT quarterly")
        .await
        .exactly(&[]);
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await.exactly(&["* 2 EXPUNGE"]);
    // RFC 5182 §2.1: an expunged message leaves the saved result; the others
    // are named by their new sequence numbers.
    c.ok("FETCH $ (UID)")
        .await
        .exactly(&["* 1 FETCH (UID 2)", "* 4 FETCH (UID 6)"]);
    expect_one(&mut c, "UID SEARCH UID $", search_line(&[2, 6])).await;
}

#[tokio::test]
async fn condstore_modseq_search_key() {
    let (_w, mut c) = mailbox().await;
    let r = c.ok("FETCH 1:* (MODSEQ)").await;
    let top = (1..=6)
        .map(|n| modseq(r.one(&format!("* {n} FETCH ("))))
        .max()
        .unwrap();
    let r = c.ok("STORE 2 +FLAGS (\\Seen)").await;
    let a = modseq(r.one("* 2 FETCH ("));
    let r = c.ok("STORE 3 +FLAGS (\\Seen)").await;
    let b = modseq(r.one("* 3 FETCH ("));
    assert!(top < a && a < b, "{top} {a} {b}");
    // RFC 7162 §3.1.5: MODSEQ n matches modseqs of n and above; RFC 7162
    // §3.1.6: the reply ends with the highest modseq of the matches.
    expect_one(
        &mut c,
        &format!("SEARCH MODSEQ {a}"),
        format!("* SEARCH 2 3 (MODSEQ {b})"),
    )
    .await;
    expect_one(
        &mut c,
        &format!("SEARCH MODSEQ {b}"),
        format!("* SEARCH 3 (MODSEQ {b})"),
    )
    .await;
    expect_one(
        &mut c,
        &format!("UID SEARCH MODSEQ {a}"),
        format!("* SEARCH 3 4 (MODSEQ {b})"),
    )
    .await;
    expect_one(
        &mut c,
        &format!("SEARCH MODSEQ {a} NOT 3"),
        format!("* SEARCH 2 (MODSEQ {a})"),
    )
    .await;
    // RFC 7162 §3.1.6: no match, no MODSEQ.
    expect_one(
        &mut c,
        &format!("SEARCH MODSEQ {}", b + 1),
        search_line(&[]),
    )
    .await;
    // RFC 4731 §3.2 with RFC 7162: ESEARCH carries MODSEQ as a return item.
    let (tag, r) = tagged(&mut c, &format!("SEARCH RETURN (COUNT) MODSEQ {a}")).await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") COUNT 2 MODSEQ {b}")]);
}

// covers: SORT SORT=DISPLAY
#[tokio::test]
async fn sort_criteria() {
    let (_w, mut c) = mailbox().await;
    let sort = |ids: &[u32]| search_line(ids).replacen("SEARCH", "SORT", 1);
    // RFC 5256 §3, §2.2: DATE is the Date: field compared in UTC.
    expect_one(&mut c, "SORT (DATE) UTF-8 ALL", sort(&[3, 1, 2, 4, 5, 6])).await;
    expect_one(
        &mut c,
        "SORT (REVERSE DATE) UTF-8 ALL",
        sort(&[6, 5, 4, 2, 1, 3]),
    )
    .await;
    expect_one(
        &mut c,
        "UID SORT (DATE) UTF-8 ALL",
        sort(&[4, 2, 3, 5, 6, 7]),
    )
    .await;
    // RFC 5256 §3: FROM, TO, CC compare the first address's local part; a
    // missing field sorts as the empty string.
    expect_one(&mut c, "SORT (FROM) UTF-8 ALL", sort(&[1, 5, 4, 2, 6, 3])).await;
    expect_one(&mut c, "SORT (TO) UTF-8 ALL", sort(&[4, 1, 2, 6, 5, 3])).await;
    expect_one(&mut c, "SORT (CC) UTF-8 ALL", sort(&[1, 3, 4, 6, 5, 2])).await;
    // RFC 5256 §2.1: SUBJECT compares the base subject ("Re:", "Fwd:" off,
    // the encoded word decoded); ties keep sequence order.
    expect_one(
        &mut c,
        "SORT (SUBJECT) UTF-8 ALL",
        sort(&[4, 6, 1, 2, 5, 3]),
    )
    .await;
    expect_one(
        &mut c,
        "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
        sort(&[6, 4, 5, 2, 1, 3]),
    )
    .await;
    expect_one(&mut c, "SORT (SIZE) UTF-8 ALL", sort(&by_size(false))).await;
    expect_one(
        &mut c,
        "SORT (REVERSE SIZE) UTF-8 ALL",
        sort(&by_size(true)),
    )
    .await;
    // RFC 5957 §3: DISPLAYFROM/DISPLAYTO compare the display name, or the
    // address when there is none.
    expect_one(
        &mut c,
        "SORT (DISPLAYFROM) UTF-8 ALL",
        sort(&[6, 1, 5, 4, 2, 3]),
    )
    .await;
    expect_one(
        &mut c,
        "SORT (DISPLAYTO) UTF-8 ALL",
        sort(&[3, 4, 1, 2, 6, 5]),
    )
    .await;
    expect_one(
        &mut c,
        "SORT (REVERSE DISPLAYFROM) UTF-8 ALL",
        sort(&[3, 2, 4, 1, 5, 6]),
    )
    .await;
    // The search keys select what is sorted.
    expect_one(
        &mut c,
        "SORT (REVERSE DATE) UTF-8 SUBJECT quarterly",
        sort(&[5, 2, 1]),
    )
    .await;
    expect_one(&mut c, "SORT (DATE) UTF-8 SUBJECT nowhere", sort(&[])).await;
    // An unknown criterion is a syntax error (RFC 9051 §7.1.3 BAD); an
    // unknown charset is NO [BADCHARSET] as for SEARCH (RFC 9051 §6.4.4).
    c.bad("SORT (FROB) UTF-8 ALL").await;
    c.no("SORT (DATE) KOI8-R ALL")
        .await
        .tagged_starts("NO [BADCHARSET");
}

// covers: THREAD=ORDEREDSUBJECT THREAD=REFERENCES
#[tokio::test]
async fn thread_orderedsubject_and_references() {
    let (w, mut c) = mailbox().await;
    // RFC 5256 §3 ORDEREDSUBJECT: threads by base subject, ordered by the
    // date of their first message; the first is the parent of all others,
    // which are siblings in date order. RFC 5256 §4: one child is written
    // after its parent, several each in parentheses.
    expect_one(
        &mut c,
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "* THREAD (3)(1 (2)(5))(4 6)".into(),
    )
    .await;
    // RFC 5256 §3 REFERENCES: parents from References/In-Reply-To (1 → 2 →
    // 5); the forward without references joins the thread of its base
    // subject under the original (4 → 6); threads in date order.
    expect_one(
        &mut c,
        "THREAD REFERENCES UTF-8 ALL",
        "* THREAD (3)(1 2 5)(4 6)".into(),
    )
    .await;
    expect_one(
        &mut c,
        "UID THREAD REFERENCES UTF-8 ALL",
        "* THREAD (4)(2 3 6)(5 7)".into(),
    )
    .await;
    expect_one(
        &mut c,
        "THREAD REFERENCES UTF-8 SUBJECT quarterly",
        "* THREAD (1 2 5)".into(),
    )
    .await;
    // A second reply to 1 makes it a branch: 1 has children 2 (then 5) and 7.
    w.deliver(USER, S7.as_bytes()).await;
    c.ok("NOOP").await.has("* 7 EXISTS");
    expect_one(
        &mut c,
        "THREAD REFERENCES UTF-8 ALL",
        "* THREAD (3)(1 (2 5)(7))(4 6)".into(),
    )
    .await;
    expect_one(
        &mut c,
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "* THREAD (3)(1 (2)(5)(7))(4 6)".into(),
    )
    .await;
    expect_one(
        &mut c,
        "UID THREAD REFERENCES UTF-8 NOT FROM zed",
        "* THREAD (2 (3 6)(8))(5 7)".into(),
    )
    .await;
    // Nothing matches: an empty THREAD reply (RFC 5256 §4).
    expect_one(
        &mut c,
        "THREAD REFERENCES UTF-8 SUBJECT nowhere",
        "* THREAD".into(),
    )
    .await;
    c.bad("THREAD FROB UTF-8 ALL").await;
}

// covers: WITHIN
#[tokio::test]
async fn within_older_and_younger_count_seconds_back_from_now() {
    let w = World::new().await;
    w.user(USER, "pw").await;
    let mut c = w.imap_login(USER, "pw").await;
    let now = chrono::Utc::now();
    let date = |secs: i64| {
        (now - chrono::Duration::seconds(secs))
            .format("\"%d-%b-%Y %H:%M:%S +0000\"")
            .to_string()
    };
    // Messages 1-3: internal dates two days, two hours and ten seconds ago.
    for (i, age) in [172_800, 7_200, 10].into_iter().enumerate() {
        c.append(
            &format!("INBOX {}", date(age)),
            format!("Subject: w{i}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .tagged_starts("OK");
    }
    c.ok("SELECT INBOX").await;
    // RFC 5032 §3: OLDER n matches internal dates at least n seconds ago,
    // YOUNGER n those at most n seconds ago.
    expect_one(&mut c, "SEARCH OLDER 3600", search_line(&[1, 2])).await;
    expect_one(&mut c, "SEARCH YOUNGER 3600", search_line(&[3])).await;
    expect_one(&mut c, "SEARCH OLDER 86400", search_line(&[1])).await;
    expect_one(&mut c, "SEARCH YOUNGER 86400", search_line(&[2, 3])).await;
    expect_one(&mut c, "SEARCH YOUNGER 7000", search_line(&[3])).await;
    expect_one(&mut c, "SEARCH OLDER 300000", search_line(&[])).await;
    expect_one(&mut c, "SEARCH NOT OLDER 3600", search_line(&[3])).await;
    expect_one(
        &mut c,
        "UID SEARCH OLDER 3600 YOUNGER 86400",
        search_line(&[2]),
    )
    .await;
    // The interval is an nz-number (RFC 5032 §4).
    c.bad("SEARCH OLDER 0").await;
    c.bad("SEARCH YOUNGER x").await;
}

// covers: ESORT
#[tokio::test]
async fn esort_returns_min_max_all_and_count_in_sort_order() {
    let (_w, mut c) = mailbox().await;
    // Dates (see the top): 3, 1, 2, 4, 5, 6 in DATE order.
    let (tag, r) = tagged(&mut c, "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL").await;
    assert!(r.tagged.starts_with("OK"), "{r}");
    // RFC 5267 §3.1: MIN and MAX are the first and last in the sort order,
    // ALL the matches in that order (RFC 4731 §3.1 reply form).
    r.exactly(&[&format!(
        "* ESEARCH (TAG \"{tag}\") MIN 3 MAX 6 ALL 3,1:2,4:6 COUNT 6"
    )]);
    let (tag, r) = tagged(&mut c, "UID SORT RETURN (MIN MAX) (REVERSE DATE) UTF-8 ALL").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") UID MIN 7 MAX 4")]);
    // By size: the order computed from the messages' lengths.
    let order = by_size(false);
    let (tag, r) = tagged(&mut c, "SORT RETURN (ALL) (SIZE) UTF-8 ALL").await;
    let all: Vec<String> = order.iter().map(u32::to_string).collect();
    let joined = all.join(",");
    // Only ascending neighbours fold into ranges; compare expanded.
    let line = r.one(&format!("* ESEARCH (TAG \"{tag}\") ALL "));
    let got = &line[format!("* ESEARCH (TAG \"{tag}\") ALL ").len()..];
    let expanded: Vec<String> = got
        .split(',')
        .flat_map(|p| match p.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                assert!(a < b, "{line}");
                (a..=b).map(|n| n.to_string()).collect::<Vec<_>>()
            }
            None => vec![p.to_string()],
        })
        .collect();
    assert_eq!(expanded.join(","), joined, "{line}");
    // RETURN () means ALL; nothing matching gives the bare ESEARCH (with
    // COUNT 0 when asked).
    let (tag, r) = tagged(&mut c, "SORT RETURN () (DATE) UTF-8 FROM alice").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") ALL 1,5")]);
    let (tag, r) = tagged(&mut c, "SORT RETURN (COUNT MIN) (DATE) UTF-8 FROM nobody").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") COUNT 0")]);
    // SAVE belongs to SEARCH (RFC 5182); unknown options are errors.
    c.bad("SORT RETURN (SAVE) (DATE) UTF-8 ALL").await;
    c.bad("SORT RETURN (NEAREST) (DATE) UTF-8 ALL").await;
    // Plain SORT is unchanged.
    expect_one(
        &mut c,
        "SORT (DATE) UTF-8 ALL",
        search_line(&[3, 1, 2, 4, 5, 6]).replacen("SEARCH", "SORT", 1),
    )
    .await;
}

// covers: CONTEXT=SEARCH
#[tokio::test]
async fn context_search_partial_ranges() {
    let (_w, mut c) = mailbox().await;
    // RFC 5267 §4.4: PARTIAL low:high of the result positions, echoed in
    // order; past the end NIL. RFC 9394 §3.1: negative ones count back.
    let cases = [
        ("SEARCH RETURN (PARTIAL 1:1) ALL", "PARTIAL (1:1 1)"),
        ("SEARCH RETURN (PARTIAL 4:2) ALL", "PARTIAL (2:4 2:4)"),
        ("SEARCH RETURN (PARTIAL 5:10) ALL", "PARTIAL (5:10 5:6)"),
        ("SEARCH RETURN (PARTIAL 7:9) ALL", "PARTIAL (7:9 NIL)"),
        ("SEARCH RETURN (PARTIAL -1:-2) ALL", "PARTIAL (-2:-1 5:6)"),
        ("SEARCH RETURN (PARTIAL 2:3) FROM alice", "PARTIAL (2:3 5)"),
        (
            "UID SEARCH RETURN (PARTIAL 1:2) ALL",
            "UID PARTIAL (1:2 2:3)",
        ),
        (
            "SEARCH RETURN (COUNT PARTIAL 1:2) ALL",
            "COUNT 6 PARTIAL (1:2 1:2)",
        ),
    ];
    for (cmd, want) in cases {
        let (tag, r) = tagged(&mut c, cmd).await;
        r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") {want}")]);
    }
    for bad in [
        "SEARCH RETURN (PARTIAL 1) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL 0:3) ALL",
        "SEARCH RETURN (PARTIAL -1:3) ALL",
        "SEARCH RETURN (PARTIAL) ALL",
    ] {
        c.bad(bad).await;
    }
}

// covers: CONTEXT=SEARCH
#[tokio::test]
async fn context_search_update_reports_changes_until_cancelled() {
    let (w, mut c) = mailbox().await;
    c.ok("STORE 1,2 +FLAGS.SILENT (\\Seen)").await;
    // RFC 5267 §4.3: the initial result, then changes as they happen.
    let (live, r) = tagged(&mut c, "SEARCH RETURN (UPDATE) SEEN").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{live}\") ALL 1:2")]);
    let r = c.ok("STORE 3,5 +FLAGS.SILENT (\\Seen)").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{live}\") ADDTO (0 3,5)")]);
    let r = c.ok("STORE 1 -FLAGS.SILENT (\\Seen)").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{live}\") REMOVEFROM (0 1)")]);
    // A UID search alongside reports UIDs (message n has UID n + 1).
    let (uidlive, r) = tagged(&mut c, "UID SEARCH RETURN (UPDATE ALL) UNSEEN").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{uidlive}\") UID ALL 2,5,7")]);
    // Expunged: REMOVEFROM before the EXPUNGE, in the numbers before it.
    c.ok("STORE 3,4 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    assert_eq!(
        r.untagged,
        [
            format!("* ESEARCH (TAG \"{live}\") REMOVEFROM (0 3)"),
            format!("* ESEARCH (TAG \"{uidlive}\") UID REMOVEFROM (0 5)"),
            "* 3 EXPUNGE".to_string(),
            "* 3 EXPUNGE".to_string(),
        ],
        "{r}"
    );
    // New mail from elsewhere (UID 8) joins after its EXISTS.
    w.deliver(USER, b"Subject: late\r\n\r\nlate\r\n").await;
    let r = c.ok("NOOP").await;
    assert_eq!(
        r.untagged,
        [
            "* 5 EXISTS".to_string(),
            "* 1 RECENT".to_string(),
            format!("* ESEARCH (TAG \"{uidlive}\") UID ADDTO (0 8)"),
        ],
        "{r}"
    );
    // CANCELUPDATE: no more reports for that search; the other goes on.
    c.ok(&format!("CANCELUPDATE \"{live}\"")).await;
    let r = c.ok("STORE 1:5 +FLAGS.SILENT (\\Seen)").await;
    r.exactly(&[&format!(
        "* ESEARCH (TAG \"{uidlive}\") UID REMOVEFROM (0 2,7:8)"
    )]);
    c.ok(&format!("CANCELUPDATE \"{uidlive}\"")).await;
    c.ok("STORE 1 -FLAGS.SILENT (\\Seen)").await.exactly(&[]);
    c.bad("CANCELUPDATE").await;
    c.bad("CANCELUPDATE unquoted").await;
    // PARTIAL cannot be kept live.
    c.bad("SEARCH RETURN (UPDATE PARTIAL 1:2) ALL").await;
    // At most five live searches; the sixth gets NOUPDATE (RFC 5267 §4.2).
    for _ in 0..5 {
        c.ok("SEARCH RETURN (UPDATE) SEEN").await;
    }
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (UPDATE) SEEN").await;
    r.has(&format!("* NO [NOUPDATE \"{tag}\"] Too many live searches"));
    assert!(r.tagged.starts_with("OK"), "{r}");
    // Closing the mailbox ends them all.
    c.ok("UNSELECT").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 1 -FLAGS.SILENT (\\Seen)").await.exactly(&[]);
    // During IDLE, changes from elsewhere come as they happen (§4.3).
    let (live, _) = tagged(&mut c, "SEARCH RETURN (UPDATE) SUBJECT late2").await;
    let tag = c.next_tag();
    c.send_line(&format!("{tag} IDLE")).await;
    c.expect("+ idling").await;
    w.deliver(USER, b"Subject: late2\r\n\r\nlate\r\n").await;
    c.expect("* 6 EXISTS").await;
    c.expect("* 1 RECENT").await;
    c.expect(&format!("* ESEARCH (TAG \"{live}\") ADDTO (0 6)"))
        .await;
    c.send_line("DONE").await;
    c.replies(&tag, "IDLE").await.tagged_starts("OK");
}

// covers: CONTEXT=SORT
#[tokio::test]
async fn context_sort_partial_and_update_keep_the_sort_order() {
    let (w, mut c) = mailbox().await;
    // Dates (see the top): 3, 1, 2, 4, 5, 6 in DATE order; UID = n + 1.
    let (tag, r) = tagged(&mut c, "SORT RETURN (PARTIAL 2:4) (DATE) UTF-8 ALL").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") PARTIAL (2:4 1:2,4)")]);
    let (tag, r) = tagged(
        &mut c,
        "SORT RETURN (PARTIAL -2:-1) (REVERSE DATE) UTF-8 ALL",
    )
    .await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{tag}\") PARTIAL (-2:-1 1,3)")]);
    // RFC 5267 §4.3: a live sorted result; changes name their positions.
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Flagged)").await;
    let (live, r) = tagged(&mut c, "UID SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED").await;
    // Flagged: 2 (UID 3) and 4 (UID 5), in date order 2 then 4.
    r.exactly(&[&format!("* ESEARCH (TAG \"{live}\") UID ALL 3,5")]);
    // 3 is the earliest by date: it joins at position 1; 6 the latest.
    let r = c.ok("STORE 3,6 +FLAGS.SILENT (\\Flagged)").await;
    r.exactly(&[&format!(
        "* ESEARCH (TAG \"{live}\") UID ADDTO (1 4) ADDTO (4 7)"
    )]);
    // Leaving: from the last position first.
    let r = c.ok("STORE 2,6 -FLAGS.SILENT (\\Flagged)").await;
    r.exactly(&[&format!(
        "* ESEARCH (TAG \"{live}\") UID REMOVEFROM (4 7) REMOVEFROM (2 3)"
    )]);
    // Expunged: removed from its position before the EXPUNGE.
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    assert_eq!(
        r.untagged,
        [
            format!("* ESEARCH (TAG \"{live}\") UID REMOVEFROM (2 5)"),
            "* 4 EXPUNGE".to_string(),
        ],
        "{r}"
    );
    // New mail dated before everything joins at the front.
    w.deliver(
        USER,
        b"Date: Mon, 1 Dec 2025 00:00:00 +0000\r\nSubject: old\r\n\r\nold\r\n",
    )
    .await;
    c.ok("NOOP").await;
    let r = c.ok("STORE 6 +FLAGS.SILENT (\\Flagged)").await;
    r.exactly(&[&format!("* ESEARCH (TAG \"{live}\") UID ADDTO (1 8)")]);
    c.ok(&format!("CANCELUPDATE \"{live}\"")).await;
    c.ok("STORE 1:* -FLAGS.SILENT (\\Flagged)")
        .await
        .exactly(&[]);
    c.bad("SORT RETURN (UPDATE PARTIAL 1:2) (DATE) UTF-8 ALL")
        .await;
}

/// RFC 9585: a SEARCH or COPY running past `[imap] progress_interval`
/// (here none) reports its progress under its own tag.
#[tokio::test]
async fn long_search_and_copy_report_their_progress() {
    let w =
        World::with_config("[imap]\nallow_plaintext = true\nprogress_interval = \"0s\"\n").await;
    w.user(USER, "pw").await;
    for i in 1..=300 {
        w.deliver(USER, format!("Subject: n{i}\r\n\r\nx\r\n").as_bytes())
            .await;
    }
    let mut c = w.imap_login(USER, "pw").await;
    c.ok("SELECT INBOX").await.has("* 300 EXISTS");
    // Between chunks of the search: how many examined, of how many.
    c.send_line("P1 SEARCH SUBJECT n29").await;
    let r = c.replies("P1", "SEARCH").await;
    assert!(r.tagged.starts_with("OK"), "{r}");
    r.has("* OK [INPROGRESS (\"P1\" 256 300)] Searching")
        .has("* SEARCH 29 290 291 292 293 294 295 296 297 298 299");
    // While the copy is stored: the goal, the state unknown (NIL).
    c.ok("CREATE Kept").await;
    c.send_line("P2 COPY 1:* Kept").await;
    let r = c.replies("P2", "COPY").await;
    assert!(r.tagged.starts_with("OK [COPYUID "), "{r}");
    assert!(!r.untagged.is_empty(), "{r}");
    for line in &r.untagged {
        assert_eq!(line, "* OK [INPROGRESS (\"P2\" NIL 300)] Copying", "{r}");
    }
}
