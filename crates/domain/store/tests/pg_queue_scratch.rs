//! Scratch tests of the PostgreSQL store's queue and calendars, before its
//! Directory and Mailboxes exist: fixtures are inserted with SQL. Needs a
//! server: `POSTGATE_TEST_PG` (default the one of this branch's builders).
//! Deleted at merge, when the PostgreSQL backend runs the conformance suite.
use postgate_store::postgres::{PgOptions, PgStore};
use postgate_store::{
    CalendarEntry, CalendarUpdate, CalendarWrite, Calendars, MergeResult, Queue, QueueDepth,
    RcptOutcome, StoreError,
};
use postgate_types::{Flags, FolderRole, ItemContent, ItemKind};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::{Client, NoTls};

const DEFAULT_URL: &str = "postgres://postgate@127.0.0.1:44239/postgres";

fn admin_url() -> String {
    std::env::var("POSTGATE_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.into())
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh database; dropped (forcibly) by [`Db::drop_db`].
struct Db {
    name: String,
    url: String,
    sql: Client,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

async fn fresh_db() -> Db {
    let admin = admin_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "qtest_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    connect(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    // The store migrates; the fixture client connects after.
    let _ = open(&url, "migrate").await;
    let sql = connect(&url).await;
    Db { name, url, sql }
}

impl Db {
    async fn drop_db(self) {
        drop(self.sql);
        let _ = connect(&admin_url())
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await;
    }
}

async fn open(url: &str, node: &str) -> PgStore {
    PgStore::open(&PgOptions {
        url: url.into(),
        pool_size: 4,
        node: node.into(),
        ca_file: None,
    })
    .await
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A user with the standard folders (as the embedded add_user makes them);
/// returns (user id, folder ids by role).
async fn add_user(db: &Db, local: &str) -> (i64, HashMap<FolderRole, i64>) {
    let c = &db.sql;
    let domain: i64 = match c
        .query_opt("SELECT id FROM domain WHERE name = 'example.org'", &[])
        .await
        .unwrap()
    {
        Some(r) => r.get(0),
        None => {
            let d: i64 = c
                .query_one(
                    "INSERT INTO domain (name, created) VALUES ('example.org', 0) RETURNING id",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            c.execute(
                "INSERT INTO post_office (domain_id, name) VALUES ($1, 'main')",
                &[&d],
            )
            .await
            .unwrap();
            d
        }
    };
    let po: i64 = c
        .query_one(
            "SELECT id FROM post_office WHERE domain_id = $1",
            &[&domain],
        )
        .await
        .unwrap()
        .get(0);
    let user: i64 = c
        .query_one(
            "INSERT INTO users (domain_id, post_office_id, local_part, local_key, display_name, created) \
             VALUES ($1, $2, $3, $4, $3, 0) RETURNING id",
            &[&domain, &po, &local, &local.to_lowercase()],
        )
        .await
        .unwrap()
        .get(0);
    let mut folders = HashMap::new();
    for (i, role) in FolderRole::ALL.iter().enumerate() {
        let name = role.default_name();
        let id: i64 = c
            .query_one(
                "INSERT INTO folder (user_id, path, path_key, role, uid_validity) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &user,
                    &name,
                    &name.to_lowercase(),
                    &role.as_str(),
                    &(1000 + i as i64),
                ],
            )
            .await
            .unwrap()
            .get(0);
        folders.insert(*role, id);
    }
    (user, folders)
}

/// A stored message (as deliver stores it), with an item in `folder` if
/// given, and a queue entry for `rcpts` (as enqueue makes it). Returns
/// (queue id, message id).
async fn queue_message(
    db: &Db,
    tag: &str,
    rcpts: &[&str],
    created: i64,
    folder: Option<i64>,
) -> (i64, i64) {
    let c = &db.sql;
    let raw = format!("Subject: {tag}\r\n\r\nbody\r\n").into_bytes();
    let hash = tag.as_bytes().to_vec();
    let message: i64 = c
        .query_one(
            "INSERT INTO message (hash, size, kind, content) VALUES ($1, $2, 'mail', '{}') RETURNING id",
            &[&hash, &(raw.len() as i64)],
        )
        .await
        .unwrap()
        .get(0);
    c.execute(
        "INSERT INTO blob (id, data) VALUES ($1, $2)",
        &[&message, &raw],
    )
    .await
    .unwrap();
    if let Some(f) = folder {
        c.execute(
            "WITH b AS (UPDATE folder SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 \
               WHERE id = $1 RETURNING uid_next - 1 AS uid, highest_modseq) \
             INSERT INTO item (folder_id, uid, message_id, flags, modseq, internal_date) \
             SELECT $1, uid, $2, 1, highest_modseq, 1000 FROM b",
            &[&f, &message],
        )
        .await
        .unwrap();
    }
    let queue: i64 = c
        .query_one(
            "INSERT INTO queue (message_id, mail_from, smtputf8, eight_bit, sender_user, created) \
             VALUES ($1, 'alice@example.org', FALSE, TRUE, NULL, $2) RETURNING id",
            &[&message, &created],
        )
        .await
        .unwrap()
        .get(0);
    for r in rcpts {
        let domain = r.rsplit_once('@').unwrap().1.to_lowercase();
        c.execute(
            "INSERT INTO queue_rcpt (queue_id, address, domain, notify, next_attempt) \
             VALUES ($1, $2, $3, 0, $4)",
            &[&queue, r, &domain, &created],
        )
        .await
        .unwrap();
    }
    (queue, message)
}

async fn message_exists(db: &Db, id: i64) -> bool {
    db.sql
        .query_opt("SELECT 1 FROM message WHERE id = $1", &[&id])
        .await
        .unwrap()
        .is_some()
}

/// `outbound_queue_claims_leases_and_settles` of the conformance suite.
#[tokio::test]
async fn queue_claims_leases_and_settles() {
    let db = fresh_db().await;
    let s = open(&db.url, "a").await;
    let (alice, folders) = add_user(&db, "alice").await;
    let _ = alice;
    let sent = folders[&FolderRole::Sent];
    let (q, message) = queue_message(
        &db,
        "out",
        &["carol@remote.test", "dave@Other.TEST"],
        1000,
        Some(sent),
    )
    .await;
    let now = now();
    let depth = s.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.deferred, depth.in_flight), (2, 0, 0));
    assert_eq!(depth.oldest, Some(1000));
    let claimed = s.claim_due(now, 600, 100).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(s.queue_depth().await.unwrap().in_flight, 2);
    let m = &claimed[0];
    assert_eq!(m.id, q);
    assert_eq!(m.message.0, message);
    assert_eq!(m.size, b"Subject: out\r\n\r\nbody\r\n".len() as u64);
    assert!(m.outbound.eight_bit && !m.outbound.smtputf8);
    assert_eq!(m.outbound.mail_from, "alice@example.org");
    assert_eq!(m.created, 1000);
    let domains: Vec<&str> = m.rcpts.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(domains, ["remote.test", "other.test"]);
    let addrs: Vec<&str> = m
        .outbound
        .rcpts
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addrs, ["carol@remote.test", "dave@Other.TEST"]);
    // As the embedded store: the recipient as it was when it came due.
    assert_eq!(m.rcpts[0].next_attempt, 1000);
    let nodes: Vec<Option<String>> = db
        .sql
        .query("SELECT lease_node FROM queue_rcpt ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(nodes, [Some("a".to_string()), Some("a".to_string())]);
    // Leased: nobody else gets them until the lease runs out...
    assert!(s.claim_due(now + 500, 600, 100).await.unwrap().is_empty());
    assert_eq!(s.claim_due(now + 601, 600, 100).await.unwrap().len(), 1);
    // ...or a lone node starting up takes them back.
    assert_eq!(s.release_leases().await.unwrap(), 2);
    assert_eq!(s.queue_depth().await.unwrap().due, 2);
    let claimed = s.claim_due(crate::now(), 600, 100).await.unwrap();
    let (carol, dave) = (claimed[0].rcpts[0].id, claimed[0].rcpts[1].id);
    s.record(vec![
        (carol, RcptOutcome::Sent),
        (
            dave,
            RcptOutcome::Retry {
                at: now + 300,
                error: "451 later".into(),
                delay_warned: false,
            },
        ),
        // A recipient that is not (or no longer) queued is passed over.
        (999_999, RcptOutcome::Failed("gone".into())),
    ])
    .await
    .unwrap();
    let depth = s.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.deferred, depth.in_flight), (0, 1, 0));
    let listed = s.queue_list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].rcpts.len(), 2, "the listing has every recipient");
    assert_eq!(listed[0].rcpts[0].status, "sent");
    assert_eq!(listed[0].rcpts[1].attempts, 1);
    assert_eq!(listed[0].rcpts[1].last_error.as_deref(), Some("451 later"));
    assert!(!listed[0].rcpts[1].delay_warned);
    assert_eq!(listed[0].rcpts[1].next_attempt, now + 300);
    assert!(s.claim_due(now + 299, 600, 100).await.unwrap().is_empty());
    assert_eq!(s.queue_retry(None).await.unwrap(), 1);
    let claimed = s.claim_due(crate::now(), 600, 100).await.unwrap();
    assert_eq!(claimed[0].rcpts.len(), 1, "only dave is left to try");
    // A running attempt is not made due by a retry.
    assert_eq!(s.queue_retry(None).await.unwrap(), 0);
    s.record(vec![(dave, RcptOutcome::Failed("550 no".into()))])
        .await
        .unwrap();
    assert!(s.queue_list().await.unwrap().is_empty());
    assert!(s.queue_get(q).await.unwrap().is_none());
    assert_eq!(s.queue_depth().await.unwrap(), QueueDepth::default());
    // The body stays for the Sent copy.
    assert!(message_exists(&db, message).await);
    drop(s);
    db.drop_db().await;
}

#[tokio::test]
async fn queue_get_remove_retry_and_release_of_messages() {
    let db = fresh_db().await;
    let s = open(&db.url, "a").await;
    let t = now();
    // No folder item: once it leaves the queue its message goes.
    let (q1, m1) = queue_message(&db, "one", &["x@one.test"], t - 50, None).await;
    let (q2, m2) = queue_message(&db, "two", &["y@two.test", "z@two.test"], t - 40, None).await;
    let (q3, m3) = queue_message(&db, "three", &["w@three.test"], t - 30, None).await;
    let got = s.queue_get(q2).await.unwrap().unwrap();
    assert_eq!(got.rcpts.len(), 2);
    assert_eq!(got.outbound.rcpts.len(), 2);
    assert!(s.queue_get(12345).await.unwrap().is_none());
    let depth = s.queue_depth().await.unwrap();
    assert_eq!(
        (depth.due, depth.deferred, depth.in_flight, depth.oldest),
        (4, 0, 0, Some(t - 50))
    );

    // Remove: the entry and its message.
    assert!(s.queue_remove(q1).await.unwrap());
    assert!(!s.queue_remove(q1).await.unwrap());
    assert!(!message_exists(&db, m1).await);

    // Sent to all: the entry leaves and its message goes.
    let claimed = s.claim_due(t, 60, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, q2, "oldest due first, limit honoured");
    assert_eq!(claimed[0].rcpts.len(), 1);
    let y = claimed[0].rcpts[0].id;
    s.record(vec![(y, RcptOutcome::Sent)]).await.unwrap();
    assert!(
        s.queue_get(q2).await.unwrap().is_some(),
        "z is still queued"
    );
    let claimed = s.claim_due(t, 60, 10).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
    assert_eq!(ids, [q2, q3]);
    let z = claimed[0].rcpts[0].id;
    let w = claimed[1].rcpts[0].id;
    s.record(vec![(
        z,
        RcptOutcome::Retry {
            at: t + 1000,
            error: "later".into(),
            delay_warned: true,
        },
    )])
    .await
    .unwrap();
    let got = s.queue_get(q2).await.unwrap().unwrap();
    assert!(got.rcpts[1].delay_warned);
    // delay_warned stays once set.
    let claimed = s.claim_due(t + 1000, 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "z due again, w's lease ran out");
    s.record(vec![(
        z,
        RcptOutcome::Retry {
            at: t + 2000,
            error: "later".into(),
            delay_warned: false,
        },
    )])
    .await
    .unwrap();
    assert!(s.queue_get(q2).await.unwrap().unwrap().rcpts[1].delay_warned);
    // Retry of one message only.
    assert_eq!(s.queue_retry(Some(q3)).await.unwrap(), 0, "w is leased");
    assert_eq!(s.release_leases().await.unwrap(), 1);
    assert_eq!(s.queue_retry(Some(q3)).await.unwrap(), 1);
    assert_eq!(s.queue_retry(Some(q2)).await.unwrap(), 1);
    s.record(vec![(z, RcptOutcome::Sent), (w, RcptOutcome::Sent)])
        .await
        .unwrap();
    assert!(s.queue_list().await.unwrap().is_empty());
    assert!(!message_exists(&db, m2).await);
    assert!(!message_exists(&db, m3).await);
    assert_eq!(s.queue_depth().await.unwrap(), QueueDepth::default());
    assert!(s.claim_due(t, 60, 0).await.unwrap().is_empty());
    drop(s);
    db.drop_db().await;
}

/// Two nodes claiming at once, with several runners each, never take the
/// same recipient, and between them take every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_claim_the_same_recipient() {
    let db = fresh_db().await;
    let a = open(&db.url, "a").await;
    let b = open(&db.url, "b").await;
    let t = now();
    let mut total = 0;
    for i in 0..60 {
        let rcpts: Vec<String> = (0..10).map(|j| format!("r{j}@d{}.test", i % 7)).collect();
        let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        queue_message(&db, &format!("m{i}"), &rcpts, t - 100 + i, None).await;
        total += 10;
    }
    let mut tasks = Vec::new();
    for (store, runners) in [(a.clone(), 3), (b.clone(), 3)] {
        for _ in 0..runners {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let claimed = store.claim_due(t, 600, 7).await.unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    for m in claimed {
                        assert_eq!(m.outbound.rcpts.len(), m.rcpts.len());
                        got.extend(m.rcpts.iter().map(|r| r.id));
                    }
                    tokio::task::yield_now().await;
                }
                (store.node().to_string(), got)
            }));
        }
    }
    let mut seen = HashSet::new();
    let mut by_node: HashMap<String, Vec<i64>> = HashMap::new();
    for task in tasks {
        let (node, got) = task.await.unwrap();
        for id in &got {
            assert!(seen.insert(*id), "recipient {id} claimed twice");
        }
        by_node.entry(node).or_default().extend(got);
    }
    assert_eq!(seen.len(), total, "every recipient was claimed");
    assert!(a.claim_due(t, 600, 100).await.unwrap().is_empty());
    assert!(b.claim_due(t, 600, 100).await.unwrap().is_empty());
    // The lease names the node that holds it.
    for (node, ids) in &by_node {
        let n: i64 = db
            .sql
            .query_one(
                "SELECT count(*) FROM queue_rcpt WHERE id = ANY($1) AND leased AND lease_node = $2",
                &[ids, node],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n as usize, ids.len(), "node {node}");
    }
    let depth = a.queue_depth().await.unwrap();
    assert_eq!(depth.in_flight as usize, total);
    // Each node releases only its own leases.
    let a_count = by_node.get("a").map_or(0, Vec::len);
    let b_count = by_node.get("b").map_or(0, Vec::len);
    assert_eq!(a.release_leases().await.unwrap(), a_count);
    assert_eq!(a.release_leases().await.unwrap(), 0);
    assert_eq!(a.queue_depth().await.unwrap().in_flight as usize, b_count);
    assert_eq!(b.release_leases().await.unwrap(), b_count);
    assert_eq!(a.queue_depth().await.unwrap().due as usize, total);
    drop((a, b));
    db.drop_db().await;
}

/// A node that dies mid-delivery: once its lease runs out another node
/// claims its recipients; releasing leases at the dead node's restart does
/// not take them back from the node that holds them now.
#[tokio::test]
async fn expired_leases_are_claimed_by_another_node() {
    let db = fresh_db().await;
    let a = open(&db.url, "a").await;
    let b = open(&db.url, "b").await;
    let t = now();
    let (q, _) = queue_message(&db, "m", &["x@x.test", "y@y.test"], t - 10, None).await;
    let (q2, _) = queue_message(&db, "m2", &["z@z.test"], t - 5, None).await;
    // a takes the first message, b the second.
    let got = a.claim_due(t, 60, 2).await.unwrap();
    assert_eq!((got.len(), got[0].id), (1, q));
    let got = b.claim_due(t, 60, 10).await.unwrap();
    assert_eq!((got.len(), got[0].id), (1, q2));
    assert!(b.claim_due(t + 30, 60, 10).await.unwrap().is_empty());
    // a's lease runs out (and b's: it is claimed again with it).
    let got = b.claim_due(t + 61, 60, 10).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|m| m.id).collect();
    assert_eq!(ids, [q, q2]);
    let holders: Vec<String> = db
        .sql
        .query("SELECT lease_node FROM queue_rcpt ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(holders, ["b", "b", "b"]);
    // a restarts: nothing of its own to release.
    assert_eq!(a.release_leases().await.unwrap(), 0);
    assert!(a.claim_due(t + 62, 60, 10).await.unwrap().is_empty());
    // a's late report of the first attempt still counts (as in the
    // embedded store, a record is by recipient id, not by lease).
    let x = got[0].rcpts[0].id;
    a.record(vec![(x, RcptOutcome::Sent)]).await.unwrap();
    assert_eq!(a.queue_depth().await.unwrap().in_flight, 2);
    assert_eq!(b.release_leases().await.unwrap(), 2);
    drop((a, b));
    db.drop_db().await;
}

/// Two nodes settling the last two recipients of one message at once: the
/// message leaves the queue (neither sees the other's as still queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_finish_the_message() {
    let db = fresh_db().await;
    let a = open(&db.url, "a").await;
    let b = open(&db.url, "b").await;
    let t = now();
    let mut pairs = Vec::new();
    for i in 0..30 {
        let (q, m) = queue_message(&db, &format!("c{i}"), &["x@x.test", "y@y.test"], t, None).await;
        pairs.push((q, m));
    }
    let all = a.claim_due(t, 60, 1000).await.unwrap();
    assert_eq!(all.len(), 30);
    let xs: Vec<(i64, RcptOutcome)> = all
        .iter()
        .map(|m| (m.rcpts[0].id, RcptOutcome::Sent))
        .collect();
    let ys: Vec<(i64, RcptOutcome)> = all
        .iter()
        .rev()
        .map(|m| (m.rcpts[1].id, RcptOutcome::Failed("550".into())))
        .collect();
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.record(xs).await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.record(ys).await }
        })
    );
    ra.unwrap().unwrap();
    rb.unwrap().unwrap();
    assert!(a.queue_list().await.unwrap().is_empty());
    for (_, m) in pairs {
        assert!(!message_exists(&db, m).await);
    }
    drop((a, b));
    db.drop_db().await;
}

/// A calendar change for the tests: put (or remove) if what is held has
/// the expected item UID.
#[derive(Debug)]
struct PutIf {
    kind: ItemKind,
    uid: String,
    expected: Option<u32>,
    object: Option<(String, Option<(i64, i64)>)>,
}

impl postgate_store::CalendarMerge for PutIf {
    fn merge(&self, current: Option<&CalendarEntry>) -> MergeResult {
        if current.map(|c| c.item_uid) != self.expected {
            return MergeResult::Conflict("changed".into());
        }
        let Some((summary, span)) = &self.object else {
            return MergeResult::Remove("gone".into());
        };
        if summary == "panic" {
            panic!("a merge that panics");
        }
        if summary == "keep" {
            return MergeResult::Keep("kept".into());
        }
        let object = postgate_types::CalendarObject {
            uid: self.uid.clone(),
            master: Some(postgate_types::CalendarComponent {
                summary: Some(summary.clone()),
                ..Default::default()
            }),
            ical: format!(
                "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            ),
            ..Default::default()
        };
        let body = if self.kind == ItemKind::Task {
            postgate_types::ItemBody::Task(Box::new(object))
        } else {
            postgate_types::ItemBody::Appointment(Box::new(object))
        };
        MergeResult::Put(
            Box::new(CalendarWrite::new(
                ItemContent {
                    body,
                    subject: Some(summary.clone()),
                    ..ItemContent::default()
                },
                format!("Subject: {summary}\r\n\r\n{summary}\r\n").into_bytes(),
                *span,
                Flags::default(),
            )),
            "put".into(),
        )
    }
}

fn update_kind(
    kind: ItemKind,
    user: i64,
    uid: &str,
    expected: Option<u32>,
    object: Option<(&str, Option<(i64, i64)>)>,
) -> CalendarUpdate {
    CalendarUpdate {
        user,
        kind,
        uid: uid.into(),
        merge: Arc::new(PutIf {
            kind,
            uid: uid.into(),
            expected,
            object: object.map(|(s, span)| (s.to_string(), span)),
        }),
    }
}

fn update(
    user: i64,
    uid: &str,
    expected: Option<u32>,
    object: Option<(&str, Option<(i64, i64)>)>,
) -> CalendarUpdate {
    update_kind(ItemKind::Appointment, user, uid, expected, object)
}

async fn item_count(db: &Db, folder: i64) -> i64 {
    db.sql
        .query_one("SELECT count(*) FROM item WHERE folder_id = $1", &[&folder])
        .await
        .unwrap()
        .get(0)
}

/// The NOTIFY payloads sent on the change channel, gathered.
async fn listen(url: &str) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute("LISTEN postgate_changes")
        .await
        .unwrap();
    (client, rx)
}

/// Change lines (`user folder modseq uid kind`) received within a moment.
async fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(p)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await
    {
        let mut lines = p.lines();
        assert_eq!(lines.next(), Some("a"), "sent by node a");
        out.extend(lines.map(str::to_string));
    }
    out
}

/// `calendar_objects_items_and_time_range_index` of the conformance suite.
#[tokio::test]
async fn calendar_objects_items_and_time_range_index() {
    use ItemKind::Appointment;
    let db = fresh_db().await;
    let s = open(&db.url, "a").await;
    let (alice, alice_folders) = add_user(&db, "alice").await;
    let (bob, _) = add_user(&db, "bob").await;
    let cal = alice_folders[&FolderRole::Calendar];
    let (_listener, mut notes) = listen(&db.url).await;
    // 1,000 one-hour appointments, an hour apart, and one that never ends.
    let h = 3600;
    let t0 = 1_800_000_000;
    let mut ups: Vec<_> = (0..1000)
        .map(|i| {
            update(
                alice,
                &format!("e{i}"),
                None,
                Some(("event", Some((t0 + i * 2 * h, t0 + i * 2 * h + h)))),
            )
        })
        .collect();
    ups.push(update(
        alice,
        "forever",
        None,
        Some(("series", Some((t0, i64::MAX)))),
    ));
    ups.push(update(
        bob,
        "bobs",
        None,
        Some(("bob's", Some((t0, t0 + h)))),
    ));
    let out = s.update_calendar(ups).await.unwrap();
    assert!(out.iter().all(|o| o.changed));
    assert!(out.iter().all(|o| o.entry.is_some()), "read back");
    assert_eq!(item_count(&db, cal).await, 1001);
    // Every append went to the other nodes.
    let lines = drain(&mut notes).await;
    assert_eq!(lines.len(), 1002, "{:?}", lines.first());
    assert!(lines.iter().all(|l| l.ends_with(" a")));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{alice} {cal} ")))
            .count(),
        1001
    );
    // The span [t0+10h, t0+13h] meets e5 (10–11h), e6 (12–13h) and the series.
    let mut got: Vec<String> = s
        .calendar_range(alice, Appointment, t0 + 10 * h, t0 + 13 * h)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.object.uid.clone())
        .collect();
    got.sort();
    assert_eq!(got, ["e5", "e6", "forever"]);
    // Listings carry no iCalendar text; entries do.
    let listed = s
        .calendar_range(alice, Appointment, t0 + 10 * h, t0 + 11 * h)
        .await
        .unwrap();
    assert!(listed.iter().all(|e| e.object.ical.is_empty()));
    let keys = s
        .calendar_range_keys(alice, Appointment, t0 + 10 * h, t0 + 11 * h)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    // Far in the future only the series.
    let later = s
        .calendar_range(alice, Appointment, t0 + 10_000 * h, t0 + 10_001 * h)
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .map(|e| e.object.uid.as_str())
            .collect::<Vec<_>>(),
        ["forever"]
    );
    assert_eq!(later[0].span, Some((t0, i64::MAX)));
    // Not another user's.
    assert!(
        s.calendar_range(bob, Appointment, t0 + 10 * h, t0 + 13 * h)
            .await
            .unwrap()
            .is_empty()
    );
    // Listings by id: in the order asked, only the user's own.
    let e1 = s
        .calendar_by_uid(alice, Appointment, "e1")
        .await
        .unwrap()
        .unwrap();
    let e2 = s
        .calendar_by_uid(alice, Appointment, "e2")
        .await
        .unwrap()
        .unwrap();
    let bobs = s
        .calendar_by_uid(bob, Appointment, "bobs")
        .await
        .unwrap()
        .unwrap();
    let l = s
        .calendar_listings(alice, vec![e2.id, bobs.id, e1.id, 999_999])
        .await
        .unwrap();
    assert_eq!(
        l.iter().map(|e| e.object.uid.as_str()).collect::<Vec<_>>(),
        ["e2", "e1"]
    );
    assert!(!e1.object.ical.is_empty());
    assert_eq!(e1.folder, cal);
    assert_eq!(e1.user, alice);
    assert_eq!(e1.kind, Appointment);
    assert_eq!(l[1].item_uid, e1.item_uid);
    assert!(
        s.calendar_entry(bob, e1.id).await.unwrap().is_none(),
        "not bob's"
    );
    assert_eq!(s.calendar_entry(alice, e1.id).await.unwrap().unwrap(), e1);
    assert!(
        s.calendar_by_uid(alice, ItemKind::Task, "e1")
            .await
            .unwrap()
            .is_none()
    );
    let all = s.calendar_entries(alice, Appointment).await.unwrap();
    assert_eq!(all.len(), 1001);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));

    // An update keeps the id, gives the item a new UID and moves the span.
    let e5 = s
        .calendar_by_uid(alice, Appointment, "e5")
        .await
        .unwrap()
        .unwrap();
    let out = s
        .update_calendar(vec![update(
            alice,
            "e5",
            Some(e5.item_uid),
            Some(("moved", Some((t0 + 5000 * h, t0 + 5001 * h)))),
        )])
        .await
        .unwrap();
    let moved = out[0].entry.clone().unwrap();
    assert_eq!(moved.id, e5.id);
    assert_ne!(moved.item_uid, e5.item_uid);
    assert_eq!(
        moved.object.master.unwrap().summary.as_deref(),
        Some("moved")
    );
    assert_eq!(item_count(&db, cal).await, 1001, "the old item is expunged");
    let lines = drain(&mut notes).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with(&format!(" {} a", moved.item_uid)));
    assert!(lines[1].ends_with(&format!(" {} e", e5.item_uid)));
    let expunged: i64 = db
        .sql
        .query_one(
            "SELECT count(*) FROM expunged WHERE folder_id = $1 AND uid = $2",
            &[&cal, &(e5.item_uid as i64)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(expunged, 1);
    assert!(
        s.calendar_range(alice, Appointment, t0 + 10 * h, t0 + 11 * h)
            .await
            .unwrap()
            .iter()
            .all(|e| e.object.uid != "e5")
    );
    assert_eq!(
        s.calendar_range(alice, Appointment, t0 + 5000 * h, t0 + 5000 * h)
            .await
            .unwrap()
            .iter()
            .map(|e| e.object.uid.as_str())
            .collect::<Vec<_>>()
            .len(),
        2,
        "e5 and the series"
    );
    // A change based on what is no longer held is refused, and nothing is
    // written (not even the changes before it in the same commit).
    let messages: i64 = db
        .sql
        .query_one("SELECT count(*) FROM message", &[])
        .await
        .unwrap()
        .get(0);
    let r = s
        .update_calendar(vec![
            update(alice, "new-one", None, Some(("new", None))),
            update(alice, "e5", Some(e5.item_uid), Some(("stale", None))),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(
        s.calendar_by_uid(alice, Appointment, "new-one")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(item_count(&db, cal).await, 1001);
    let after: i64 = db
        .sql
        .query_one("SELECT count(*) FROM message", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, messages);
    assert!(
        drain(&mut notes).await.is_empty(),
        "nothing sent for a rollback"
    );
    // Keep, and a merge that panics, change nothing.
    let out = s
        .update_calendar(vec![
            update(alice, "e5", Some(moved.item_uid), Some(("keep", None))),
            update(alice, "e6", None, Some(("panic", None))),
        ])
        .await;
    // e6 exists, so PutIf(expected None) conflicts before it could panic:
    assert!(matches!(out, Err(StoreError::Conflict(_))));
    let e6 = s
        .calendar_by_uid(alice, Appointment, "e6")
        .await
        .unwrap()
        .unwrap();
    let out = s
        .update_calendar(vec![
            update(alice, "e5", Some(moved.item_uid), Some(("keep", None))),
            update(alice, "e6", Some(e6.item_uid), Some(("panic", None))),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(|o| !o.changed));
    assert_eq!(
        out[0].entry.as_ref().unwrap().id,
        e5.id,
        "keep gives what is held"
    );
    assert_eq!(out[1].note, "the calendar change failed");
    // Removal takes the item and the index entry.
    let out = s
        .update_calendar(vec![update(alice, "e5", Some(moved.item_uid), None)])
        .await
        .unwrap();
    assert!(out[0].changed && out[0].entry.is_none());
    assert!(s.calendar_entry(alice, e5.id).await.unwrap().is_none());
    assert_eq!(item_count(&db, cal).await, 1000);
    assert!(
        !message_exists(&db, {
            // The moved version's message went with it.
            let m: Option<i64> = db
                .sql
                .query_opt("SELECT id FROM message WHERE subject = 'moved'", &[])
                .await
                .unwrap()
                .map(|r| r.get(0));
            m.unwrap_or(-1)
        })
        .await
    );
    assert!(
        s.calendar_range(alice, Appointment, t0 + 5000 * h, t0 + 5001 * h)
            .await
            .unwrap()
            .iter()
            .all(|e| e.object.uid != "e5")
    );
    // Removing what is not held changes nothing.
    let out = s
        .update_calendar(vec![update(alice, "e5", None, None)])
        .await
        .unwrap();
    assert!(!out[0].changed);
    // Removing the user removes their calendar.
    db.sql
        .execute("DELETE FROM users WHERE id = $1", &[&bob])
        .await
        .unwrap();
    assert!(
        s.calendar_entries(bob, Appointment)
            .await
            .unwrap()
            .is_empty()
    );
    drop(s);
    db.drop_db().await;
}

/// Tasks go to the Tasks folder; objects without a span are listed but in
/// no range; a user without the folder is refused.
#[tokio::test]
async fn tasks_unspanned_objects_and_missing_folders() {
    let db = fresh_db().await;
    let s = open(&db.url, "a").await;
    let (alice, folders) = add_user(&db, "alice").await;
    let out = s
        .update_calendar(vec![
            update_kind(ItemKind::Task, alice, "t1", None, Some(("todo", None))),
            update_kind(
                ItemKind::Task,
                alice,
                "t2",
                None,
                Some(("dated", Some((100, 200)))),
            ),
            update(alice, "t1", None, Some(("same uid, other kind", None))),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.changed));
    assert_eq!(item_count(&db, folders[&FolderRole::Tasks]).await, 2);
    assert_eq!(item_count(&db, folders[&FolderRole::Calendar]).await, 1);
    let tasks = s.calendar_entries(alice, ItemKind::Task).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0].span, None);
    assert_eq!(tasks[0].folder, folders[&FolderRole::Tasks]);
    assert_eq!(tasks[0].kind, ItemKind::Task);
    let r = s
        .calendar_range(alice, ItemKind::Task, i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        r.iter().map(|e| e.object.uid.as_str()).collect::<Vec<_>>(),
        ["t2"]
    );
    // Edges are inclusive: [from, to] meets [lo, hi] when lo <= to and hi >= from.
    assert_eq!(
        s.calendar_range_keys(alice, ItemKind::Task, 200, 300)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.calendar_range_keys(alice, ItemKind::Task, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.calendar_range_keys(alice, ItemKind::Task, 201, 300)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.calendar_range_keys(alice, ItemKind::Task, 0, 99)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.calendar_listings(alice, vec![]).await.unwrap().is_empty());
    assert!(s.update_calendar(vec![]).await.unwrap().is_empty());
    // No Tasks folder: refused, nothing written.
    db.sql
        .execute(
            "DELETE FROM folder WHERE id = $1",
            &[&folders[&FolderRole::Tasks]],
        )
        .await
        .unwrap();
    assert!(
        s.calendar_entries(alice, ItemKind::Task)
            .await
            .unwrap()
            .is_empty()
    );
    let r = s
        .update_calendar(vec![update_kind(
            ItemKind::Task,
            alice,
            "t3",
            None,
            Some(("x", None)),
        )])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    drop(s);
    db.drop_db().await;
}

/// Two nodes changing one object at once: each merge sees what the other
/// committed (none is based on a version that is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calendar_changes_from_two_nodes_do_not_overwrite() {
    let db = fresh_db().await;
    let a = open(&db.url, "a").await;
    let b = open(&db.url, "b").await;
    let (alice, folders) = add_user(&db, "alice").await;
    a.update_calendar(vec![update(alice, "x", None, Some(("v0", None)))])
        .await
        .unwrap();
    // Each runner reads the version it holds and bases its change on it;
    // a Conflict means another node changed it meanwhile: read and retry.
    let mut tasks = Vec::new();
    for (n, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < 10 {
                let cur = store
                    .calendar_by_uid(alice, ItemKind::Appointment, "x")
                    .await
                    .unwrap()
                    .unwrap();
                let summary = format!("r{n}-{done}");
                match store
                    .update_calendar(vec![update(
                        alice,
                        "x",
                        Some(cur.item_uid),
                        Some((&summary, None)),
                    )])
                    .await
                {
                    Ok(_) => done += 1,
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 1 + 40 versions were stored, each replacing the one before: one item
    // left, 40 expunged.
    let cal = folders[&FolderRole::Calendar];
    assert_eq!(item_count(&db, cal).await, 1);
    let uid_next: i64 = db
        .sql
        .query_one("SELECT uid_next FROM folder WHERE id = $1", &[&cal])
        .await
        .unwrap()
        .get(0);
    assert_eq!(uid_next, 42);
    let messages: i64 = db
        .sql
        .query_one("SELECT count(*) FROM message", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(messages, 1, "every replaced version's message released");
    drop((a, b));
    db.drop_db().await;
}
