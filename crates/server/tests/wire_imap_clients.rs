//! Real clients' IMAP sessions replayed command by command: the shapes
//! Thunderbird (128) and Apple Mail (macOS 15, iOS 18) send, as their
//! protocol logs show them, with the extensions each uses (ID, ENABLE,
//! CONDSTORE/QRESYNC, LIST-EXTENDED with SPECIAL-USE, UTF8=ACCEPT,
//! COMPRESS, IDLE, MOVE, UIDPLUS, partial fetches). Every command must
//! complete OK with the replies the client reads.
use postgate_testkit::world::{Reply, Wire, World};
use std::sync::Arc;

const ALICE: &str = "alice@test.example";

/// A message as a correspondent's client sends it.
fn letter(n: u32) -> Vec<u8> {
    format!(
        "From: Bob <bob@remote.example>\r\nTo: alice@test.example\r\n\
         Subject: letter {n}\r\nDate: Mon, 30 Nov 2026 10:0{n}:00 +0100\r\n\
         Message-ID: <l{n}@remote.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello {n}</p>\r\n--b--\r\n"
    )
    .into_bytes()
}

/// The number in `* OK [CODE n] …`.
#[track_caller]
fn code(r: &Reply, name: &str) -> u64 {
    let line = r.one(&format!("* OK [{name} "));
    line[format!("* OK [{name} ").len()..]
        .split(']')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

async fn world() -> (Arc<World>, std::net::SocketAddr) {
    let w = Arc::new(World::new().await);
    w.user(ALICE, "pw").await;
    for n in 1..=3 {
        w.deliver(ALICE, &letter(n)).await;
    }
    let addr = w.imap().await;
    (w, addr)
}

#[tokio::test]
async fn thunderbird_session_replayed() {
    let (w, addr) = world().await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    c.ok("capability").await.has_start("* CAPABILITY ");
    c.ok(&format!("authenticate PLAIN {}", plain()))
        .await
        .tagged_starts("OK");
    c.ok("ID (\"name\" \"Thunderbird\" \"version\" \"128.5.0\")")
        .await
        .has_start("* ID (");
    // Thunderbird turns on UTF-8 names when offered (RFC 6855).
    c.ok("ENABLE UTF8=ACCEPT")
        .await
        .has("* ENABLED UTF8=ACCEPT");
    c.start_deflate_after("COMPRESS DEFLATE").await;
    c.ok("namespace")
        .await
        .has_start("* NAMESPACE ((\"\" \"/\"))");
    let r = c
        .ok("list (subscribed) \"\" \"*\" return (special-use)")
        .await;
    r.has_start("* LIST (\\Subscribed");
    c.ok("list \"\" \"*\" return (special-use)")
        .await
        .has("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"");
    let r = c.ok("select \"INBOX\" (CONDSTORE)").await;
    r.has("* 3 EXISTS");
    let modseq = code(&r, "HIGHESTMODSEQ");
    c.ok("getquotaroot \"INBOX\"")
        .await
        .has_start("* QUOTAROOT INBOX");
    c.ok("UID fetch 1:* (FLAGS)")
        .await
        .has("* 3 FETCH (UID 3 FLAGS (\\Recent))");
    c.ok("UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])")
        .await
        .has_start("* 1 FETCH (UID 1 RFC822.SIZE ");
    c.ok("UID fetch 2 (UID RFC822.SIZE BODY.PEEK[])")
        .await
        .has_start("* 2 FETCH (UID 2 RFC822.SIZE ");
    c.ok("UID store 2 +Flags (\\Seen)")
        .await
        .has_start("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (");
    // Changes since the last sync (RFC 7162 §3.1.4).
    c.ok(&format!("UID fetch 1:* (FLAGS) (CHANGEDSINCE {modseq})"))
        .await
        .has_start("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (");
    // New mail while idling.
    let tag = c.next_tag();
    c.send_line(&format!("{tag} IDLE")).await;
    c.expect("+ idling").await;
    w.deliver(ALICE, &letter(4)).await;
    c.expect("* 4 EXISTS").await;
    c.expect("* 4 RECENT").await;
    c.send_line("DONE").await;
    c.replies(&tag, "IDLE").await.tagged_starts("OK");
    c.ok("UID move 1 \"Trash\"")
        .await
        .has_start("* OK [COPYUID ")
        .has("* 1 EXPUNGE");
    let draft = "From: alice@test.example\r\nSubject: Grüße\r\n\r\ndraft\r\n";
    c.ok(&format!(
        "APPEND \"Drafts\" (\\Seen \\Draft) {{{}+}}\r\n{draft}",
        draft.len()
    ))
    .await
    .tagged_starts("OK [APPENDUID ");
    c.ok("STATUS \"Drafts\" (UIDNEXT MESSAGES UNSEEN RECENT)")
        .await
        .has_start("* STATUS Drafts (UIDNEXT 2 MESSAGES 1 UNSEEN 0 RECENT ");
    c.ok("UID store 3 +Flags (\\Deleted)").await;
    c.ok("UID expunge 3").await.has("* 2 EXPUNGE");
    c.ok("noop").await;
    c.ok("logout").await.has("* BYE Logging out");
}

#[tokio::test]
async fn apple_mail_session_replayed() {
    let (w, addr) = world().await;
    let mut c = Wire::connect(addr).await;
    c.line().await;
    c.ok("ID (\"name\" \"Mac OS X Mail\" \"version\" \"16.0 (3826.200.121)\" \"os\" \"Mac OS X\" \"os-version\" \"15.1 (24B83)\" \"vendor\" \"Apple Inc.\")")
        .await
        .has_start("* ID (");
    c.ok(&format!("AUTHENTICATE PLAIN {}", plain())).await;
    c.ok("CAPABILITY").await.has_start("* CAPABILITY ");
    c.ok("ENABLE QRESYNC").await.has("* ENABLED QRESYNC");
    c.ok("LIST \"\" \"\"")
        .await
        .exactly(&["* LIST (\\Noselect) \"/\" \"\""]);
    c.ok("LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ))")
        .await
        .has_start("* STATUS INBOX (MESSAGES 3 UNSEEN 3 UIDNEXT 4 UIDVALIDITY ");
    c.ok("LSUB \"\" \"*\"").await;
    let r = c.ok("SELECT INBOX (CONDSTORE)").await;
    let (validity, modseq) = (code(&r, "UIDVALIDITY"), code(&r, "HIGHESTMODSEQ"));
    c.ok("UID SEARCH 1:* NOT DELETED")
        .await
        .has("* SEARCH 1 2 3");
    c.ok("UID FETCH 1:3 (BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (from to cc bcc subject date message-id in-reply-to references reply-to content-type x-priority x-uniform-type-identifier x-universally-unique-identifier list-id list-unsubscribe)] INTERNALDATE RFC822.SIZE FLAGS)")
        .await
        .has_start("* 3 FETCH (UID 3 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\")");
    // The first part's start, as a preview.
    c.ok("UID FETCH 2 BODY.PEEK[1]<0.10240>")
        .await
        .exactly(&["* 2 FETCH (UID 2 BODY[1]<0> {7}\r\nHello 2)"]);
    c.ok("UID STORE 1 +FLAGS.SILENT (\\Seen)")
        .await
        .exactly(&[]);
    // QRESYNC is on: VANISHED in place of EXPUNGE (RFC 7162 §3.2.10).
    c.ok("UID MOVE 3 Junk").await.has("* VANISHED 3");
    c.ok("CLOSE").await;
    // A later session resyncs with QRESYNC (RFC 7162 §3.2.5): what
    // changed, and what vanished, since the modseq it had.
    let mut d = Wire::connect(addr).await;
    d.line().await;
    d.ok(&format!("AUTHENTICATE PLAIN {}", plain())).await;
    d.ok("ENABLE QRESYNC").await;
    let r = d
        .ok(&format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:3))"))
        .await;
    r.has("* VANISHED (EARLIER) 3")
        .has_start("* 1 FETCH (UID 1 FLAGS (\\Seen")
        .has("* 2 EXISTS");
    d.ok("STATUS Junk (MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
        .await
        .has_start("* STATUS Junk (MESSAGES 1 UNSEEN 1 UIDNEXT 2 ");
    let tag = d.next_tag();
    d.send_line(&format!("{tag} IDLE")).await;
    d.expect("+ idling").await;
    w.deliver(ALICE, &letter(5)).await;
    d.expect("* 3 EXISTS").await;
    d.send_line("DONE").await;
    let r = d.replies(&tag, "IDLE").await;
    r.tagged_starts("OK");
    d.ok("UID FETCH 4:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await
        .has_start("* 3 FETCH (UID 4 FLAGS (");
    d.ok("LOGOUT").await;
}

/// SASL PLAIN for alice (RFC 4616 §2), base64.
fn plain() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{ALICE}\0pw"))
}

trait ReplyExt {
    fn has_start(&self, prefix: &str) -> &Self;
}

impl ReplyExt for Reply {
    /// At least one untagged reply starts with `prefix`.
    #[track_caller]
    fn has_start(&self, prefix: &str) -> &Reply {
        assert!(
            !self.starting(prefix).is_empty(),
            "{}: no untagged reply starting {prefix:?} in\n{self}",
            self.command
        );
        self
    }
}

trait WireExt {
    async fn start_deflate_after(&mut self, command: &str);
}

impl WireExt for Wire {
    /// Sends COMPRESS (RFC 4978 §3) and compresses from its OK on.
    async fn start_deflate_after(&mut self, command: &str) {
        self.ok(command).await;
        self.start_deflate();
    }
}
