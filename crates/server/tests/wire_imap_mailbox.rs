//! IMAP on the wire, mailboxes: SELECT and EXAMINE as RFC 9051 §6.3.2 fixes
//! their replies, ENABLE (RFC 5161), CONDSTORE and QRESYNC resynchronisation
//! (RFC 7162), UNSELECT (RFC 3691), NAMESPACE (RFC 2342), ID (RFC 2971),
//! LIST/LSUB with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
//! SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348), CREATE/DELETE/RENAME,
//! SUBSCRIBE, STATUS, QUOTA (RFC 9208) and mailbox name encodings.
use postgate_testkit::world::{Reply, Wire, World};

const ALICE: &str = "alice@test.example";

/// The default folders of a new user as a plain `LIST "" *` shows them.
const DEFAULT_LIST: [&str; 7] = [
    "* LIST (\\HasNoChildren) \"/\" Calendar",
    "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
    "* LIST (\\HasNoChildren) \"/\" INBOX",
    "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
    "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"",
    "* LIST (\\HasNoChildren) \"/\" Tasks",
    "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
];

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

/// The number in `* OK [CODE n] …` (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ).
#[track_caller]
fn code_value(r: &Reply, code: &str) -> u64 {
    let line = r.one(&format!("* OK [{code} "));
    let rest = &line[format!("* OK [{code} ").len()..];
    rest[..rest.find(']').expect("]")].parse().expect("number")
}

/// UIDVALIDITY, HIGHESTMODSEQ and MAILBOXID (RFC 8474 §4.3) of `mailbox`,
/// read by a separate session (so that the session under test enables
/// nothing by asking).
async fn uv_modseq(w: &World, mailbox: &str) -> (u64, u64, String) {
    let mut s = w.imap_login(ALICE, "pw").await;
    let r = s
        .ok(&format!(
            "STATUS {mailbox} (UIDVALIDITY HIGHESTMODSEQ MAILBOXID)"
        ))
        .await;
    let line = r.one(&format!("* STATUS {mailbox} ("));
    let nums: Vec<u64> = line
        .trim_end_matches(')')
        .split(' ')
        .filter_map(|t| t.parse().ok())
        .collect();
    let id = &line[line.find("MAILBOXID (").expect("MAILBOXID") + "MAILBOXID (".len()..];
    (nums[0], nums[1], id[..id.find(')').unwrap()].to_string())
}

// ---------------------------------------------------------------- SELECT

#[tokio::test]
async fn select_reports_flags_counts_and_codes_exactly() {
    let w = alice_with(2, "").await;
    let (uv, modseq, id) = uv_modseq(&w, "INBOX").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let r = c.ok("SELECT INBOX").await;
    // RFC 9051 §6.3.2 / RFC 3501 §6.3.1: FLAGS, EXISTS, RECENT, UNSEEN,
    // PERMANENTFLAGS, UIDVALIDITY, UIDNEXT; RFC 7162 §3.1.2.1 HIGHESTMODSEQ;
    // RFC 8474 §4.2 MAILBOXID.
    r.exactly(&[
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
        "* 2 EXISTS",
        "* 2 RECENT",
        "* OK [UNSEEN 1] First unseen",
        &format!("* OK [UIDVALIDITY {uv}] UIDs valid"),
        "* OK [UIDNEXT 3] Predicted next UID",
        &format!("* OK [HIGHESTMODSEQ {modseq}] Highest"),
        &format!("* OK [MAILBOXID ({id})] Ok"),
    ]);
    // RFC 9051 §6.3.2: READ-WRITE on the tagged OK of SELECT.
    r.tagged_starts("OK [READ-WRITE]");
    // RFC 3501 §2.3.2: this session claimed the messages as recent; another
    // session's SELECT no longer sees them so.
    let mut d = w.imap_login(ALICE, "pw").await;
    d.ok("SELECT INBOX").await.has("* 0 RECENT");
}

#[tokio::test]
async fn examine_is_read_only_and_leaves_recent_alone() {
    let w = alice_with(2, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let r = c.ok("EXAMINE INBOX").await;
    // RFC 9051 §6.3.3: READ-ONLY, and no flag may be changed permanently.
    r.has("* OK [PERMANENTFLAGS ()] Read-only mailbox")
        .has("* 2 EXISTS")
        .has("* 2 RECENT")
        .tagged_starts("OK [READ-ONLY]");
    c.no("STORE 1 +FLAGS (\\Deleted)")
        .await
        .tagged_starts("NO [READ-ONLY]");
    c.no("EXPUNGE").await;
    c.ok("CLOSE").await;
    // RFC 3501 §6.3.2: EXAMINE does not take \Recent away.
    c.ok("SELECT INBOX").await.has("* 2 RECENT");
    c.ok("FETCH 1 (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (FLAGS (\\Recent))"]);
}

// covers: IMAP4rev2
#[tokio::test]
async fn rev2_select_drops_recent_and_sends_the_list_data() {
    let w = alice_with(1, "").await;
    let (uv, modseq, id) = uv_modseq(&w, "INBOX").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("ENABLE IMAP4rev2")
        .await
        .exactly(&["* ENABLED IMAP4rev2"]);
    // RFC 9051 §6.3.2: no RECENT or UNSEEN any more, a LIST reply instead.
    c.ok("SELECT INBOX").await.exactly(&[
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
        "* 1 EXISTS",
        &format!("* OK [UIDVALIDITY {uv}] UIDs valid"),
        "* OK [UIDNEXT 2] Predicted next UID",
        &format!("* OK [HIGHESTMODSEQ {modseq}] Highest"),
        &format!("* OK [MAILBOXID ({id})] Ok"),
        "* LIST () \"/\" INBOX",
    ]);
    // RFC 9051 §7.5.2: no \Recent in FETCH FLAGS either.
    c.ok("FETCH 1 (FLAGS)")
        .await
        .exactly(&["* 1 FETCH (FLAGS ())"]);
    // RFC 9051 §6.3.2: CLOSED before the new mailbox's replies.
    let r = c.ok("EXAMINE Trash").await;
    assert_eq!(
        r.untagged[0], "* OK [CLOSED] Previous mailbox closed",
        "{r}"
    );
}

// covers: ENABLE
#[tokio::test]
async fn enable_lists_only_what_it_newly_enabled() {
    let w = alice_with(0, "").await;
    let addr = w.imap().await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 5161 §3.1: ENABLE is valid only once authenticated.
    c.bad("ENABLE CONDSTORE").await;
    c.ok("LOGIN alice@test.example pw").await;
    c.ok("ENABLE CONDSTORE")
        .await
        .exactly(&["* ENABLED CONDSTORE"]);
    // RFC 5161 §3.2: ENABLED names only extensions this command enabled;
    // unknown ones are ignored.
    c.ok("ENABLE CONDSTORE X-NOTHING")
        .await
        .exactly(&["* ENABLED"]);
    c.ok("ENABLE QRESYNC").await.exactly(&["* ENABLED QRESYNC"]);
    c.ok("ENABLE QRESYNC IMAP4rev2")
        .await
        .exactly(&["* ENABLED IMAP4rev2"]);
}

// covers: CONDSTORE
#[tokio::test]
async fn select_condstore_then_modseq_in_fetch_and_changedsince() {
    let w = alice_with(3, "").await;
    let (_, modseq, _) = uv_modseq(&w, "INBOX").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 7162 §3.1.8: SELECT (CONDSTORE) enables CONDSTORE.
    let r = c.ok("SELECT INBOX (CONDSTORE)").await;
    assert_eq!(code_value(&r, "HIGHESTMODSEQ"), modseq);
    // RFC 7162 §3.1.4: every message's MODSEQ, at most the mailbox's.
    let r = c.ok("FETCH 1:* (UID MODSEQ)").await;
    assert_eq!(r.untagged.len(), 3, "{r}");
    for (i, l) in r.untagged.iter().enumerate() {
        let m: u64 = l
            .rsplit_once("MODSEQ (")
            .and_then(|(_, v)| v.strip_suffix("))"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no MODSEQ in {l}"));
        assert!(m >= 1 && m <= modseq, "{l}");
        assert!(
            l.starts_with(&format!("* {} FETCH (UID {} ", i + 1, i + 1)),
            "{l}"
        );
    }
    // RFC 7162 §3.1.3: a flag change gets a new, higher modseq, shown at once.
    let r = c.ok("STORE 2 +FLAGS (\\Seen)").await;
    let stored = r.one("* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (");
    let m2: u64 = stored
        .trim_start_matches("* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (")
        .trim_end_matches("))")
        .parse()
        .unwrap();
    assert!(m2 > modseq, "{stored}");
    // RFC 7162 §3.1.4.1: CHANGEDSINCE returns only what changed after it.
    c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})"))
        .await
        .exactly(&[&format!(
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ ({m2}))"
        )]);
    c.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {m2})"))
        .await
        .exactly(&[]);
    // RFC 7162 §3.1.7: STATUS HIGHESTMODSEQ follows.
    c.ok("STATUS INBOX (HIGHESTMODSEQ)")
        .await
        .has(&format!("* STATUS INBOX (HIGHESTMODSEQ {m2})"));
}

/// Deletes and expunges `uids` in INBOX from a separate session, and sets
/// \Seen on `seen`; returns the modseq of that flag change.
async fn change_elsewhere(w: &World, seen: u32, expunge: &str) -> u64 {
    let mut s = w.imap_login(ALICE, "pw").await;
    s.ok("SELECT INBOX (CONDSTORE)").await;
    let r = s.ok(&format!("UID STORE {seen} +FLAGS (\\Seen)")).await;
    let line = r.one("* ");
    let m = line
        .rsplit_once("MODSEQ (")
        .and_then(|(_, v)| v.strip_suffix("))"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MODSEQ in {line}"));
    s.ok(&format!("UID STORE {expunge} +FLAGS.SILENT (\\Deleted)"))
        .await;
    s.ok("EXPUNGE").await;
    s.ok("LOGOUT").await;
    m
}

// covers: QRESYNC
#[tokio::test]
async fn select_qresync_reports_vanished_then_changed_flags() {
    let w = alice_with(5, "").await;
    let (uv, modseq, _) = uv_modseq(&w, "INBOX").await;
    let m = change_elsewhere(&w, 2, "3:4").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("ENABLE QRESYNC").await;
    let r = c
        .ok(&format!("SELECT INBOX (QRESYNC ({uv} {modseq}))"))
        .await;
    r.has("* 3 EXISTS").tagged_starts("OK [READ-WRITE]");
    // RFC 7162 §3.2.5.1: the UIDs expunged since, then the flags changed since.
    let vanished = r
        .untagged
        .iter()
        .position(|l| l == "* VANISHED (EARLIER) 3:4")
        .unwrap_or_else(|| panic!("no VANISHED (EARLIER) 3:4 in\n{r}"));
    let fetch = r
        .untagged
        .iter()
        .position(|l| *l == format!("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({m}))"))
        .unwrap_or_else(|| panic!("no FETCH of UID 2 in\n{r}"));
    assert!(vanished < fetch, "{r}");
    assert_eq!(
        r.starting("* 1 FETCH").len() + r.starting("* 3 FETCH").len(),
        0
    );
    // RFC 7162 §3.2.5.1: known-uids narrows VANISHED to UIDs the client had.
    let r = c
        .ok(&format!("EXAMINE INBOX (QRESYNC ({uv} {modseq} 1:3))"))
        .await;
    assert_eq!(
        r.untagged[0], "* OK [CLOSED] Previous mailbox closed",
        "{r}"
    );
    r.has("* VANISHED (EARLIER) 3");
    // RFC 7162 §3.2.5.1: a UIDVALIDITY that does not match gets no changes.
    let r = c
        .ok(&format!("EXAMINE INBOX (QRESYNC ({} {modseq}))", uv + 1))
        .await;
    r.lacks("* VANISHED").lacks("* 2 FETCH");
}

#[tokio::test]
async fn select_qresync_needs_enable_first() {
    let w = alice_with(1, "").await;
    let (uv, modseq, _) = uv_modseq(&w, "INBOX").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 7162 §3.2.5: QRESYNC parameters without ENABLE QRESYNC are BAD.
    c.bad(&format!("SELECT INBOX (QRESYNC ({uv} {modseq}))"))
        .await;
    // RFC 7162 §3.2.6: so is the VANISHED modifier.
    c.ok("SELECT INBOX").await;
    c.bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await;
}

// covers: QRESYNC CONDSTORE
#[tokio::test]
async fn qresync_session_sees_vanished_instead_of_expunge() {
    let w = alice_with(4, "").await;
    let (_, modseq, _) = uv_modseq(&w, "INBOX").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("ENABLE QRESYNC").await;
    c.ok("SELECT INBOX").await;
    change_elsewhere(&w, 1, "2:3").await;
    // RFC 7162 §3.2.10: VANISHED (not EXPUNGE) for others' expunges.
    let r = c.ok("NOOP").await;
    r.has("* VANISHED 2:3").lacks("* 2 EXPUNGE");
    // RFC 7162 §3.2.4: with QRESYNC, unsolicited FETCH carries the UID.
    r.one("* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 MODSEQ (");
    // RFC 7162 §3.2.6: UID FETCH … (CHANGEDSINCE n VANISHED).
    let r = c
        .ok(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"
        ))
        .await;
    assert_eq!(r.untagged[0], "* VANISHED (EARLIER) 2:3", "{r}");
    r.one("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (");
    // And for its own EXPUNGE, with the new HIGHESTMODSEQ (RFC 7162 §3.2.7).
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    r.exactly(&["* VANISHED 4"])
        .tagged_starts("OK [HIGHESTMODSEQ ");
}

#[tokio::test]
async fn reselect_closes_first_and_a_failed_select_leaves_none() {
    let w = alice_with(1, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // Without QRESYNC or IMAP4rev2 there is no CLOSED code.
    c.ok("SELECT INBOX").await;
    c.ok("SELECT Trash").await.lacks("* OK [CLOSED]");
    c.ok("ENABLE QRESYNC").await;
    // RFC 7162 §3.2.11: CLOSED first when SELECT replaces a selected mailbox.
    let r = c.ok("SELECT INBOX").await;
    assert_eq!(
        r.untagged[0], "* OK [CLOSED] Previous mailbox closed",
        "{r}"
    );
    // RFC 9051 §6.3.2: a failed SELECT still closed the previous one.
    let r = c.no("SELECT Nowhere").await;
    r.exactly(&["* OK [CLOSED] Previous mailbox closed"])
        .tagged_starts("NO [NONEXISTENT]");
    c.bad("FETCH 1 (FLAGS)").await;
    // Nothing selected now, so no CLOSED next time.
    c.ok("SELECT INBOX").await.lacks("* OK [CLOSED]");
}

// covers: UNSELECT
#[tokio::test]
async fn unselect_returns_to_authenticated_state() {
    let w = alice_with(1, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 3691 §2: UNSELECT needs a selected mailbox.
    c.bad("UNSELECT").await;
    c.ok("SELECT INBOX").await;
    c.ok("UNSELECT").await.exactly(&[]);
    c.bad("FETCH 1 (FLAGS)").await;
    c.bad("UNSELECT").await;
    // Authenticated-state commands still work.
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 1)");
}

// covers: STATUS=SIZE
#[tokio::test]
async fn status_size_is_the_sum_of_message_sizes() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let msgs: Vec<String> = (1..=3)
        .map(|i| format!("Subject: s{i}\r\n\r\n{}\r\n", "z".repeat(100 * i)))
        .collect();
    for m in &msgs {
        c.append("INBOX", m.as_bytes()).await.tagged_starts("OK");
    }
    let total: usize = msgs.iter().map(String::len).sum();
    // RFC 8438 §3: SIZE is the total of the RFC822.SIZE of every message.
    c.ok("STATUS INBOX (MESSAGES SIZE)")
        .await
        .exactly(&[&format!("* STATUS INBOX (MESSAGES 3 SIZE {total})")]);
    c.ok("STATUS Drafts (SIZE)")
        .await
        .exactly(&["* STATUS Drafts (SIZE 0)"]);
    // An expunged message no longer counts.
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    c.ok("UNSELECT").await;
    let left = total - msgs[1].len();
    c.ok("STATUS INBOX (SIZE)")
        .await
        .exactly(&[&format!("* STATUS INBOX (SIZE {left})")]);
    c.no("STATUS Nowhere (SIZE)").await;
}

// covers: ACL RIGHTS=texk
#[tokio::test]
async fn acl_of_own_mailboxes() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 4314 §3.5, §2.1: the owner holds every right on its mailboxes
    // (RIGHTS=texk: the t, e, x and k rights are the RFC 4314 ones).
    c.ok("MYRIGHTS INBOX")
        .await
        .exactly(&["* MYRIGHTS INBOX lrswipkxtea"]);
    c.ok("MYRIGHTS \"Sent Items\"")
        .await
        .exactly(&["* MYRIGHTS \"Sent Items\" lrswipkxtea"]);
    // Calendar is read-only over IMAP: lookup and read only.
    c.ok("MYRIGHTS Calendar")
        .await
        .exactly(&["* MYRIGHTS Calendar lr"]);
    // RFC 4314 §3.3: the owner is the one identifier in the ACL.
    c.ok("GETACL inbox")
        .await
        .exactly(&[&format!("* ACL INBOX {ALICE} lrswipkxtea")]);
    // RFC 4314 §3.4: what an identifier always has, then what could be
    // granted: the owner everything, anyone else nothing.
    c.ok(&format!("LISTRIGHTS INBOX {ALICE}"))
        .await
        .exactly(&[&format!("* LISTRIGHTS INBOX {ALICE} lrswipkxtea")]);
    c.ok("LISTRIGHTS INBOX bob@test.example")
        .await
        .exactly(&["* LISTRIGHTS INBOX bob@test.example \"\""]);
    // No sharing yet: SETACL and DELETEACL are refused, nothing changes.
    c.no("SETACL INBOX bob@test.example lr")
        .await
        .tagged_starts("NO [CANNOT]");
    c.no(&format!("DELETEACL INBOX {ALICE}"))
        .await
        .tagged_starts("NO [CANNOT]");
    c.ok("GETACL INBOX")
        .await
        .exactly(&[&format!("* ACL INBOX {ALICE} lrswipkxtea")]);
    // Errors: a missing mailbox, the wrong number of arguments.
    c.no("MYRIGHTS Nowhere")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    c.bad("MYRIGHTS").await;
    c.bad("GETACL INBOX extra").await;
    c.bad("LISTRIGHTS INBOX").await;
    // Before login: not allowed.
    let mut d = postgate_testkit::world::Wire::connect(w.imap().await).await;
    d.line().await;
    d.bad("MYRIGHTS INBOX").await;
}

// ------------------------------------------------------- NAMESPACE, ID

// covers: NAMESPACE
#[tokio::test]
async fn namespace_is_one_personal_namespace() {
    let w = alice_with(0, "").await;
    let addr = w.imap().await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 2342 §5: authenticated state only.
    c.bad("NAMESPACE").await;
    c.ok("LOGIN alice@test.example pw").await;
    // RFC 2342 §5: personal, other users', shared; "/" the delimiter.
    c.ok("NAMESPACE")
        .await
        .exactly(&["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
}

// covers: ID
#[tokio::test]
async fn id_answers_in_any_state() {
    let w = alice_with(0, "").await;
    let addr = w.imap().await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    // RFC 2971 §3.1: ID works before login; the reply is one ID response.
    let expect = format!(
        "* ID (\"name\" \"Postgate\" \"version\" \"{}\" \"vendor\" \"Postgate\")",
        env!("CARGO_PKG_VERSION")
    );
    c.ok("ID NIL").await.exactly(&[&expect]);
    c.ok("ID (\"name\" \"wire-test\" \"version\" \"1.0\")")
        .await
        .exactly(&[&expect]);
    // RFC 2971 §4: "ID" SP id_params_list, NIL or a parenthesised list.
    c.bad("ID").await;
    c.bad("ID name").await;
    c.ok("LOGIN alice@test.example pw").await;
    c.ok("ID NIL").await.exactly(&[&expect]);
}

// -------------------------------------------------------------- LIST

// covers: CHILDREN
#[tokio::test]
async fn list_shows_hierarchy_and_children() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 9051 §6.3.9: LIST "" "" gives the delimiter and the root.
    c.ok("LIST \"\" \"\"")
        .await
        .exactly(&["* LIST (\\Noselect) \"/\" \"\""]);
    c.ok("LIST \"\" *").await.exactly(&DEFAULT_LIST);
    // RFC 9051 §6.3.4: CREATE makes the superior names too.
    c.ok("CREATE Projects/2024/Q1").await;
    // RFC 9051 §7.3.1 (from RFC 3348): \HasChildren and \HasNoChildren.
    c.ok("LIST \"\" Projects*").await.exactly(&[
        "* LIST (\\HasChildren) \"/\" Projects",
        "* LIST (\\HasChildren) \"/\" Projects/2024",
        "* LIST (\\HasNoChildren) \"/\" Projects/2024/Q1",
    ]);
    // RFC 9051 §6.3.9: "%" stops at the delimiter; the reference is prefixed.
    c.ok("LIST \"\" Proj%")
        .await
        .exactly(&["* LIST (\\HasChildren) \"/\" Projects"]);
    c.ok("LIST Projects/ %")
        .await
        .exactly(&["* LIST (\\HasChildren) \"/\" Projects/2024"]);
    c.ok("LIST \"\" nothing*").await.exactly(&[]);
}

// covers: SPECIAL-USE
#[tokio::test]
async fn special_use_marks_the_default_folders() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Archive2").await;
    // RFC 6154 §2: the SPECIAL-USE selection option lists only those.
    c.ok("LIST (SPECIAL-USE) \"\" *").await.exactly(&[
        "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
    ]);
    // RFC 6154 §2: the return option puts them on the mailboxes' LIST replies.
    let r = c.ok("LIST \"\" * RETURN (SPECIAL-USE)").await;
    r.has("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"")
        .has("* LIST (\\HasNoChildren) \"/\" Archive2")
        .has("* LIST (\\HasNoChildren) \"/\" INBOX");
    // RFC 5258 §3: RECURSIVEMATCH with SPECIAL-USE is allowed.
    c.ok("LIST (SPECIAL-USE RECURSIVEMATCH) \"\" %")
        .await
        .one("* LIST (\\HasNoChildren \\Trash) ");
}

// covers: CREATE-SPECIAL-USE
#[tokio::test]
async fn create_with_a_special_use_takes_the_role() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 6154 §3: CREATE … (USE (attr)); the folder that had the use
    // (one per use here) no longer shows it.
    c.ok("CREATE Spam/Caught (USE (\\Junk))")
        .await
        .tagged_starts("OK [MAILBOXID (");
    c.ok("CREATE \"My Drafts\" (use (\\drafts))").await;
    c.ok("LIST (SPECIAL-USE) \"\" *").await.exactly(&[
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"My Drafts\"",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Spam/Caught",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
    ]);
    c.ok("LIST \"\" Junk RETURN (SPECIAL-USE)")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Junk"]);
    // RFC 6154 §3: a use that cannot be given is NO [USEATTR] and no
    // mailbox is made.
    c.no("CREATE Old (USE (\\Archive))")
        .await
        .tagged_starts("NO [USEATTR]");
    c.no("CREATE Both (USE (\\Sent \\Trash))")
        .await
        .tagged_starts("NO [USEATTR]");
    c.ok("LIST \"\" Old").await.exactly(&[]);
    c.ok("LIST \"\" Both").await.exactly(&[]);
    // RFC 4466 §2.2: an unknown CREATE parameter is a syntax error; an
    // existing name is ALREADYEXISTS and moves no use.
    c.bad("CREATE Odd (COLOR (red))").await;
    c.bad("CREATE Odd (USE (Junk))").await;
    c.no("CREATE Junk (USE (\\Junk))")
        .await
        .tagged_starts("NO [ALREADYEXISTS]");
    c.ok("LIST (SPECIAL-USE) \"\" Spam/*")
        .await
        .exactly(&["* LIST (\\HasNoChildren \\Junk) \"/\" Spam/Caught"]);
    // An empty USE list is a plain CREATE.
    c.ok("CREATE Plain (USE ())").await;
    c.ok("LIST \"\" Plain RETURN (SPECIAL-USE)")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Plain"]);
}

// covers: LIST-EXTENDED
#[tokio::test]
async fn list_extended_selection_and_return_options() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE a/b/c").await;
    c.ok("SUBSCRIBE a/b/c").await;
    c.ok("SUBSCRIBE ghost").await;
    // RFC 5258 §3.1: SUBSCRIBED selects subscribed names, \Subscribed on
    // each, \NonExistent where no mailbox is.
    c.ok("LIST (SUBSCRIBED) \"\" *").await.exactly(&[
        "* LIST (\\Subscribed) \"/\" Calendar",
        "* LIST (\\Subscribed) \"/\" Drafts",
        "* LIST (\\Subscribed) \"/\" INBOX",
        "* LIST (\\Subscribed) \"/\" Junk",
        "* LIST (\\Subscribed) \"/\" \"Sent Items\"",
        "* LIST (\\Subscribed) \"/\" Tasks",
        "* LIST (\\Subscribed) \"/\" Trash",
        "* LIST (\\Subscribed) \"/\" a/b/c",
        "* LIST (\\Subscribed \\NonExistent) \"/\" ghost",
    ]);
    // RFC 5258 §3.5: RECURSIVEMATCH reports a parent whose subscribed child
    // the pattern hides, with CHILDINFO.
    c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" a%")
        .await
        .exactly(&["* LIST () \"/\" a (\"CHILDINFO\" (\"SUBSCRIBED\"))"]);
    // RFC 5258 §3: RECURSIVEMATCH alone is BAD; unknown options too.
    c.bad("LIST (RECURSIVEMATCH) \"\" *").await;
    c.bad("LIST (NOSUCHOPTION) \"\" *").await;
    c.bad("LIST \"\" * RETURN (NOSUCHOPTION)").await;
    // RFC 5258 §3.1: REMOTE is accepted (there are no remote mailboxes).
    c.ok("LIST (REMOTE) \"\" a")
        .await
        .exactly(&["* LIST (\\HasChildren) \"/\" a"]);
    // RFC 5258 §3.2: return options SUBSCRIBED and CHILDREN.
    c.ok("LIST \"\" a/% RETURN (CHILDREN SUBSCRIBED)")
        .await
        .exactly(&["* LIST (\\HasChildren) \"/\" a/b"]);
    c.ok("LIST \"\" a/b/% RETURN (SUBSCRIBED)")
        .await
        .exactly(&["* LIST (\\HasNoChildren \\Subscribed) \"/\" a/b/c"]);
    c.ok("LIST (SUBSCRIBED) \"\" a/b/c RETURN (CHILDREN)")
        .await
        .exactly(&["* LIST (\\Subscribed \\HasNoChildren) \"/\" a/b/c"]);
    // RFC 5258 §3: several patterns in one LIST, each mailbox once.
    c.ok("LIST \"\" (INBOX a a% Trash)").await.exactly(&[
        "* LIST (\\HasNoChildren) \"/\" INBOX",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
        "* LIST (\\HasChildren) \"/\" a",
    ]);
}

// covers: LIST-STATUS
#[tokio::test]
async fn list_status_follows_each_mailbox() {
    let w = alice_with(2, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Lists").await;
    c.ok("CREATE Lists/Sub").await;
    // RFC 5819 §2: a STATUS reply right after each selectable mailbox's LIST.
    c.ok("LIST \"\" (INBOX Lists Drafts) RETURN (STATUS (MESSAGES UIDNEXT UNSEEN))")
        .await
        .exactly(&[
            "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
            "* STATUS Drafts (MESSAGES 0 UIDNEXT 1 UNSEEN 0)",
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 2)",
            "* LIST (\\HasChildren) \"/\" Lists",
            "* STATUS Lists (MESSAGES 0 UIDNEXT 1 UNSEEN 0)",
        ]);
    // RFC 5819 §2: not for a name that is no mailbox (\NonExistent).
    c.ok("SUBSCRIBE gone").await;
    c.ok("LIST (SUBSCRIBED) \"\" gone RETURN (STATUS (MESSAGES))")
        .await
        .exactly(&["* LIST (\\Subscribed \\NonExistent) \"/\" gone"]);
}

#[tokio::test]
async fn lsub_lists_subscriptions_and_hidden_parents() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE a/b/c").await;
    c.ok("SUBSCRIBE a/b/c").await;
    // RFC 3501 §6.3.9: only subscribed names; "a" and "a/b" are not.
    c.ok("LSUB \"\" a*")
        .await
        .exactly(&["* LSUB () \"/\" a/b/c"]);
    // RFC 3501 §6.3.9: with "%" hiding "a/b/c", its parent comes back
    // flagged \Noselect.
    c.ok("LSUB \"\" a%")
        .await
        .exactly(&["* LSUB (\\Noselect) \"/\" a"]);
    c.ok("LSUB \"\" a/%")
        .await
        .exactly(&["* LSUB (\\Noselect) \"/\" a/b"]);
    c.ok("UNSUBSCRIBE a/b/c").await;
    c.ok("LSUB \"\" a*").await.exactly(&[]);
    c.ok("LSUB \"\" INBOX")
        .await
        .exactly(&["* LSUB () \"/\" INBOX"]);
}

// ------------------------------------------------ CREATE, DELETE, RENAME

#[tokio::test]
async fn create_and_delete_follow_rfc_9051() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Work/Clients").await;
    // RFC 9051 §6.3.4: a trailing delimiter names the mailbox before it.
    c.ok("CREATE Notes/").await;
    c.ok("LIST \"\" Notes*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Notes"]);
    // RFC 9051 §6.3.4 / RFC 5530 §3: an existing name, INBOX in any case.
    c.no("CREATE Work")
        .await
        .tagged_starts("NO [ALREADYEXISTS]");
    c.no("CREATE inbox")
        .await
        .tagged_starts("NO [ALREADYEXISTS]");
    // RFC 9051 §6.3.5: INBOX cannot be deleted; nor a name that is not there.
    c.no("DELETE INBOX").await;
    c.no("DELETE Nowhere")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    // RFC 9051 §6.3.5: refusing to delete a mailbox with inferiors says
    // HASCHILDREN.
    c.no("DELETE Work").await.tagged_starts("NO [HASCHILDREN]");
    c.ok("DELETE Work/Clients").await;
    c.ok("DELETE Work").await;
    c.ok("LIST \"\" Work*").await.exactly(&[]);
    // Deleting the selected mailbox leaves nothing selected.
    c.ok("SELECT Notes").await;
    c.ok("DELETE Notes").await;
    c.bad("FETCH 1 (FLAGS)").await;
}

#[tokio::test]
async fn rename_moves_the_hierarchy() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Old/Child/Leaf").await;
    c.ok("CREATE Taken").await;
    // RFC 9051 §6.3.6: RENAME takes the inferior names along and creates
    // missing superiors of the new name.
    c.ok("RENAME Old New/Place").await;
    c.ok("LIST \"\" Old*").await.exactly(&[]);
    c.ok("LIST \"\" New*").await.exactly(&[
        "* LIST (\\HasChildren) \"/\" New",
        "* LIST (\\HasChildren) \"/\" New/Place",
        "* LIST (\\HasChildren) \"/\" New/Place/Child",
        "* LIST (\\HasNoChildren) \"/\" New/Place/Child/Leaf",
    ]);
    // RFC 9051 §6.3.6 / RFC 5530: to an existing name, from a missing one.
    c.no("RENAME Taken New")
        .await
        .tagged_starts("NO [ALREADYEXISTS]");
    c.no("RENAME Nowhere Else")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    c.no("RENAME Taken Taken/Below").await;
}

#[tokio::test]
async fn rename_inbox_moves_its_messages_and_leaves_it_empty() {
    let w = alice_with(2, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    let before = c.ok("STATUS INBOX (UIDNEXT UIDVALIDITY)").await;
    let before = before.one("* STATUS INBOX (").to_string();
    c.ok("RENAME INBOX Saved").await;
    // RFC 9051 §6.3.6: all of INBOX's messages move to the new mailbox,
    // INBOX stays, empty, its UIDs not reused.
    c.ok("STATUS Saved (MESSAGES)")
        .await
        .has("* STATUS Saved (MESSAGES 2)");
    c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        .await
        .has(&before.replace("INBOX (", "INBOX (MESSAGES 0 "));
    c.ok("SELECT Saved").await.has("* 2 EXISTS");
    let r = c.ok("FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    r.has("* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: m1\r\n\r\n)");
    r.has("* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: m2\r\n\r\n)");
}

#[tokio::test]
async fn subscribe_and_unsubscribe() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Lists").await;
    c.ok("LSUB \"\" Lists").await.exactly(&[]);
    c.ok("SUBSCRIBE Lists").await;
    c.ok("LSUB \"\" Lists")
        .await
        .exactly(&["* LSUB () \"/\" Lists"]);
    // RFC 9051 §6.3.7: a name need not exist to be subscribed.
    c.ok("SUBSCRIBE Future").await;
    c.ok("LSUB \"\" Future")
        .await
        .exactly(&["* LSUB () \"/\" Future"]);
    c.ok("UNSUBSCRIBE Lists").await;
    c.ok("LSUB \"\" Lists").await.exactly(&[]);
    // The mailbox itself stays.
    c.ok("LIST \"\" Lists")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Lists"]);
    // Unsubscribing a name that is not subscribed fails (NO, RFC 9051 §6.3.8).
    c.no("UNSUBSCRIBE Lists").await;
}

// -------------------------------------------------------------- STATUS

#[tokio::test]
async fn status_reports_the_requested_items() {
    let w = alice_with(0, "").await;
    w.deliver(ALICE, b"Subject: one\r\n\r\n1\r\n").await; // 19 octets
    w.deliver(ALICE, b"Subject: two\r\n\r\n22\r\n").await; // 20 octets
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS (\\Seen \\Deleted)").await;
    let (uv, modseq, _) = uv_modseq(&w, "INBOX").await;
    // RFC 9051 §6.3.11: the items asked for, in the order asked.
    c.ok("STATUS INBOX (UIDNEXT MESSAGES UNSEEN UIDVALIDITY)")
        .await
        .exactly(&[&format!(
            "* STATUS INBOX (UIDNEXT 3 MESSAGES 2 UNSEEN 1 UIDVALIDITY {uv})"
        )]);
    // RFC 9051 §6.3.11: DELETED and SIZE (octets of all messages).
    c.ok("STATUS INBOX (DELETED SIZE)")
        .await
        .exactly(&["* STATUS INBOX (DELETED 1 SIZE 39)"]);
    // RFC 7162 §3.1.7: STATUS HIGHESTMODSEQ.
    c.ok("STATUS INBOX (HIGHESTMODSEQ)")
        .await
        .has(&format!("* STATUS INBOX (HIGHESTMODSEQ {modseq})"));
    c.ok("STATUS \"Sent Items\" (MESSAGES)")
        .await
        .exactly(&["* STATUS \"Sent Items\" (MESSAGES 0)"]);
    // RFC 5530 §3: NONEXISTENT.
    c.no("STATUS Nowhere (MESSAGES)")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    c.bad("STATUS INBOX (NOSUCHITEM)").await;
}

// -------------------------------------------------------------- QUOTA

// covers: QUOTA QUOTA=RES-STORAGE
#[tokio::test]
async fn quota_root_and_storage_usage() {
    let w = alice_with(0, "[imap]\nallow_plaintext = true\nquota = \"10K\"\n").await;
    w.deliver(ALICE, &[b'x'; 1500]).await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 9208 §4.1.2: QUOTAROOT names the roots, then each root's QUOTA;
    // §5.1: STORAGE usage and limit in units of 1024 octets.
    c.ok("GETQUOTAROOT INBOX")
        .await
        .exactly(&["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 2 10)"]);
    c.ok("GETQUOTA \"\"")
        .await
        .exactly(&["* QUOTA \"\" (STORAGE 2 10)"]);
    c.no("GETQUOTA \"other\"").await;
    c.no("GETQUOTAROOT Nowhere")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    // RFC 9208 §4.1.3: the administrator sets quotas, not the user.
    c.no("SETQUOTA \"\" (STORAGE 100)").await;
}

#[tokio::test]
async fn no_quota_configured_means_no_quota_root() {
    let w = alice_with(1, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 9208 §4.1.2: a mailbox without quota root.
    c.ok("GETQUOTAROOT INBOX")
        .await
        .exactly(&["* QUOTAROOT INBOX"]);
    c.no("GETQUOTA \"\"").await;
}

// covers: QUOTA
#[tokio::test]
async fn append_over_quota_is_refused_with_overquota() {
    let w = alice_with(0, "[imap]\nallow_plaintext = true\nquota = \"2K\"\n").await;
    w.deliver(ALICE, &[b'y'; 1500]).await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.send(b"A1 APPEND INBOX {400+}\r\n").await;
    c.send(&[b'z'; 400]).await;
    c.send(b"\r\n").await;
    c.replies("A1", "APPEND 400").await.tagged_starts("OK");
    c.send(b"A2 APPEND INBOX {400+}\r\n").await;
    c.send(&[b'z'; 400]).await;
    c.send(b"\r\n").await;
    // RFC 9208 §4.3.1: OVERQUOTA when the append would exceed the limit.
    c.replies("A2", "APPEND 400")
        .await
        .tagged_starts("NO [OVERQUOTA]");
    c.ok("STATUS INBOX (MESSAGES)")
        .await
        .has("* STATUS INBOX (MESSAGES 2)");
    c.ok("GETQUOTA \"\"")
        .await
        .exactly(&["* QUOTA \"\" (STORAGE 2 2)"]);
}

// ------------------------------------------------------- name encodings

#[tokio::test]
async fn mailbox_names_are_modified_utf7_in_rev1() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 3501 §5.1.3: "Café" is "Caf&AOk-", "&" is "&-".
    c.ok("CREATE Caf&AOk-").await;
    c.ok("CREATE \"Tom &- Jerry\"").await;
    c.ok("LIST \"\" Caf*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Caf&AOk-"]);
    c.ok("LIST \"\" Tom*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" \"Tom &- Jerry\""]);
    c.ok("STATUS Caf&AOk- (MESSAGES)")
        .await
        .exactly(&["* STATUS Caf&AOk- (MESSAGES 0)"]);
    // RFC 3501 §5.1.3: a bare "&", or 8-bit octets, are not modified UTF-7.
    c.no("CREATE \"a&b\"").await;
    c.no("CREATE \"Café\"").await;
    c.ok("LIST \"\" a*").await.exactly(&[]);
}

// covers: UTF8=ACCEPT
#[tokio::test]
async fn utf8_accept_names_and_utf8_append() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Caf&AOk-").await;
    // RFC 6855 §3: ENABLE UTF8=ACCEPT; names are UTF-8 from then on, in a
    // rev1 session too (\Recent stays).
    c.ok("ENABLE UTF8=ACCEPT")
        .await
        .exactly(&["* ENABLED UTF8=ACCEPT"]);
    c.ok("LIST \"\" Caf*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" {5}\r\nCafé"]);
    c.ok("CREATE \"Grüße\"").await;
    // RFC 6855 §4: APPEND's UTF8 data extension, a literal8 of a message
    // whose header is UTF-8 (RFC 6532).
    let msg = "From: Jörg <jörg@exämple.org>\r\nSubject: Grüße\r\n\r\nHallo\r\n";
    let r = c
        .imap(&format!(
            "APPEND \"Grüße\" (\\Seen) UTF8 (~{{{}+}}\r\n{msg})",
            msg.len()
        ))
        .await;
    assert!(r.tagged.starts_with("OK [APPENDUID "), "{r}");
    c.ok("SELECT \"Grüße\"")
        .await
        .has("* 1 EXISTS")
        .has("* 1 RECENT");
    c.ok("FETCH 1 (FLAGS BODY.PEEK[])")
        .await
        .exactly(&[&format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] {{{}}}\r\n{msg})",
            msg.len()
        )]);
    // The parentheses hold exactly one literal.
    c.bad("APPEND INBOX UTF8 (\"x\")").await;
    // A session that did not enable it still sees modified UTF-7.
    let mut d = w.imap_login(ALICE, "pw").await;
    d.ok("LIST \"\" Gr*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" Gr&APwA3w-e"]);
}

#[tokio::test]
async fn mailbox_names_are_utf8_after_enable_imap4rev2() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    c.ok("CREATE Caf&AOk-").await;
    c.ok("ENABLE IMAP4rev2").await;
    // RFC 9051 §5.1: names are UTF-8 now, modified UTF-7 no more (the name
    // comes back as a literal, a string form that carries any octets).
    c.ok("LIST \"\" Caf*")
        .await
        .exactly(&["* LIST (\\HasNoChildren) \"/\" {5}\r\nCafé"]);
    // RFC 9051 §9: a quoted string may hold UTF-8.
    c.ok("CREATE \"Straße\"").await;
    c.ok("STATUS \"Straße\" (MESSAGES)")
        .await
        .exactly(&["* STATUS {7}\r\nStraße (MESSAGES 0)"]);
    c.ok("SELECT \"Café\"")
        .await
        .has("* LIST () \"/\" {5}\r\nCafé");
    // "&" is itself now: this is a new mailbox, not "Café" again.
    c.ok("CREATE \"Caf&AOk-\"").await;
    c.ok("LIST \"\" Caf*").await.exactly(&[
        "* LIST (\\HasNoChildren) \"/\" Caf&AOk-",
        "* LIST (\\HasNoChildren) \"/\" {5}\r\nCafé",
    ]);
    // A rev1 session sees the same mailboxes in modified UTF-7.
    let mut d = w.imap_login(ALICE, "pw").await;
    d.ok("LIST \"\" *")
        .await
        .has("* LIST (\\HasNoChildren) \"/\" Stra&AN8-e")
        .has("* LIST (\\HasNoChildren) \"/\" Caf&AOk-")
        .has("* LIST (\\HasNoChildren) \"/\" Caf&-AOk-");
}

// ------------------------------------------------------------- METADATA

// covers: METADATA
#[tokio::test]
async fn metadata_on_mailboxes_and_the_server() {
    let w = alice_with(0, "").await;
    let mut c = w.imap_login(ALICE, "pw").await;
    // RFC 5464 §4.3: values as strings and literals; §4.2: read back.
    c.ok("SETMETADATA INBOX (/private/comment \"My comment\" /shared/Vendor/x {5+}\r\na\"b\\c)")
        .await
        .exactly(&[]);
    c.ok("GETMETADATA INBOX /private/comment")
        .await
        .exactly(&["* METADATA INBOX (/private/comment \"My comment\")"]);
    // §3.2: names are case-insensitive; absent entries are NIL.
    c.ok("GETMETADATA \"INBOX\" (/PRIVATE/COMMENT /private/none)")
        .await
        .exactly(&["* METADATA INBOX (/private/comment \"My comment\" /private/none NIL)"]);
    // §4.2.2 DEPTH: what is under a name.
    c.ok("GETMETADATA (DEPTH infinity) INBOX (/shared)")
        .await
        .exactly(&["* METADATA INBOX (/shared/vendor/x {5}\r\na\"b\\c)"]);
    c.ok("GETMETADATA (DEPTH 1) INBOX (/shared)")
        .await
        .exactly(&[]);
    // §4.2.1 MAXSIZE: larger values left out, and said so.
    c.ok("GETMETADATA (MAXSIZE 4) INBOX /private/comment")
        .await
        .exactly(&[])
        .tagged_starts("OK [METADATA LONGENTRIES 10]");
    // §4.3: NIL removes; limits; bad names; no such mailbox.
    c.ok("SETMETADATA INBOX (/private/comment NIL)").await;
    c.ok("GETMETADATA INBOX /private/comment")
        .await
        .exactly(&["* METADATA INBOX (/private/comment NIL)"]);
    let big = "x".repeat(40_000);
    c.imap(&format!(
        "SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})",
        big.len()
    ))
    .await
    .tagged_starts("NO [METADATA MAXSIZE 32768]");
    let many: Vec<String> = (0..101).map(|i| format!("/private/n{i} \"v\"")).collect();
    c.imap(&format!("SETMETADATA INBOX ({})", many.join(" ")))
        .await
        .tagged_starts("NO [METADATA TOOMANY]");
    c.bad("SETMETADATA INBOX (/elsewhere/x \"v\")").await;
    c.bad("GETMETADATA INBOX /private/a*").await;
    c.imap("GETMETADATA Nowhere /private/comment")
        .await
        .tagged_starts("NO [NONEXISTENT]");
    // Server entries: the user's private ones; the administrator's contact.
    c.ok("SETMETADATA \"\" (/private/comment \"mine\")").await;
    c.imap("SETMETADATA \"\" (/shared/comment \"all\")")
        .await
        .tagged_starts("NO [NOPERM]");
    let r = c
        .ok("GETMETADATA \"\" (/private/comment /shared/admin)")
        .await;
    let line = r.one("* METADATA ");
    assert!(
        line.starts_with(
            "* METADATA \"\" (/private/comment \"mine\" /shared/admin \"mailto:postmaster@"
        ),
        "{line}"
    );
    // Entries follow their mailbox through RENAME and go with DELETE.
    c.ok("CREATE Box").await;
    c.ok("SETMETADATA Box (/private/comment \"boxed\")").await;
    c.ok("RENAME Box Crate").await;
    c.ok("GETMETADATA Crate /private/comment")
        .await
        .exactly(&["* METADATA Crate (/private/comment \"boxed\")"]);
    c.ok("DELETE Crate").await;
    c.ok("CREATE Crate").await;
    c.ok("GETMETADATA Crate /private/comment")
        .await
        .exactly(&["* METADATA Crate (/private/comment NIL)"]);
}
