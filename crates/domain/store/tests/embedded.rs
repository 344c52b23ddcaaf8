//! The embedded store against its traits.
use postgate_store::embedded::EmbeddedStore;
use postgate_store::{
    Directory, FlagOp, Mailboxes, NewDelivery, NewMessage, NewUser, Resolution, StoreError, Target,
};
use postgate_types::{EmailAddress, Flags, FolderRole, ItemContent, Secret};
use std::sync::Arc;

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn new_user(a: &str, name: &str, given: &str, sur: &str) -> NewUser {
    NewUser {
        address: addr(a),
        post_office: None,
        display_name: name.into(),
        given_name: Some(given.into()),
        surname: Some(sur.into()),
        title: None,
        department: None,
        phone: None,
        password_hash: None,
    }
}

async fn fixture() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store.add_domain("Example.ORG").await.unwrap();
    store
        .add_user(new_user(
            "alice@example.org",
            "Alice Smith",
            "Alice",
            "Smith",
        ))
        .await
        .unwrap();
    store
        .add_user(new_user("bob@example.org", "Bob Jones", "Bob", "Jones"))
        .await
        .unwrap();
    (dir, store)
}

fn users(r: Resolution) -> Vec<String> {
    match r {
        Resolution::Users(u) => u.into_iter().map(|u| u.address.to_string()).collect(),
        other => panic!("expected users, got {other:?}"),
    }
}

#[tokio::test]
async fn directory_resolution() {
    let (_d, s) = fixture().await;
    assert_eq!(
        users(s.resolve(&addr("ALICE@example.org")).await.unwrap()),
        ["alice@example.org"]
    );
    assert_eq!(
        users(s.resolve(&addr("alice.smith@example.org")).await.unwrap()),
        ["alice@example.org"]
    );
    assert_eq!(
        users(s.resolve(&addr("alice+news@example.org")).await.unwrap()),
        ["alice@example.org"]
    );
    assert_eq!(
        s.resolve(&addr("carol@example.org")).await.unwrap(),
        Resolution::Unknown
    );
    assert_eq!(
        s.resolve(&addr("alice@elsewhere.net")).await.unwrap(),
        Resolution::NotLocal
    );

    s.add_alias(&addr("a.smith@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    assert_eq!(
        users(s.resolve(&addr("a.smith@example.org")).await.unwrap()),
        ["alice@example.org"]
    );
    assert!(matches!(
        s.add_alias(&addr("bob@example.org"), &addr("alice@example.org"))
            .await,
        Err(StoreError::Exists(_))
    ));

    s.add_group(&addr("team@example.org"), "Team")
        .await
        .unwrap();
    s.add_group(&addr("all@example.org"), "All").await.unwrap();
    s.add_group_member(&addr("team@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("team@example.org"), &addr("bob@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("all@example.org"), &addr("team@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("all@example.org"), &addr("a.smith@example.org"))
        .await
        .unwrap();
    // A loop must not hang expansion.
    s.add_group_member(&addr("team@example.org"), &addr("all@example.org"))
        .await
        .unwrap();
    let mut all = users(s.resolve(&addr("all@example.org")).await.unwrap());
    all.sort();
    assert_eq!(all, ["alice@example.org", "bob@example.org"]);
    assert!(
        s.add_group_member(&addr("team@example.org"), &addr("nobody@example.org"))
            .await
            .is_err()
    );

    // Two people called Bob Jones: First.Last is ambiguous.
    s.add_user(new_user("bob2@example.org", "Bob Jones", "Bob", "Jones"))
        .await
        .unwrap();
    assert_eq!(
        s.resolve(&addr("bob.jones@example.org")).await.unwrap(),
        Resolution::Ambiguous
    );

    assert!(s.remove_domain("example.org").await.is_err());
}

#[tokio::test]
async fn passwords() {
    let (_d, s) = fixture().await;
    let hash = postgate_store::password::hash("s3cret").unwrap();
    s.set_password_hash(&addr("alice@example.org"), Some(hash))
        .await
        .unwrap();
    let ok = s
        .authenticate(&addr("alice@example.org"), &Secret::new("s3cret".into()))
        .await
        .unwrap();
    assert_eq!(ok.unwrap().address.to_string(), "alice@example.org");
    assert!(
        s.authenticate(&addr("alice@example.org"), &Secret::new("nope".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.authenticate(&addr("bob@example.org"), &Secret::new("".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.authenticate(&addr("zed@example.org"), &Secret::new("x".into()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn concurrent_deliveries_share_blobs_and_get_increasing_uids() {
    let (_d, s) = fixture().await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let inbox_id = s.folder(alice.id, "INBOX").await.unwrap().unwrap().id;
    let mut feed = s.changes().subscribe(inbox_id);
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let raw = format!("Subject: m{i}\r\n\r\nbody {i}\r\n").into_bytes();
            s.deliver(NewDelivery {
                content: postgate_mime_free_content(i),
                raw,
                envelope: None,
                targets: vec![
                    Target {
                        user: alice.id,
                        role: FolderRole::Inbox,
                        flags: Flags::default(),
                    },
                    Target {
                        user: bob.id,
                        role: FolderRole::Junk,
                        flags: Flags::default(),
                    },
                    // Named twice (a group and its member): one copy.
                    Target {
                        user: alice.id,
                        role: FolderRole::Inbox,
                        flags: Flags::default(),
                    },
                ],
                outbound: None,
                received_at: 1_700_000_000,
                calendar: Vec::new(),
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().len(), 2, "alice once, bob once");
    }
    let inbox = s.folder(alice.id, "INBOX").await.unwrap().unwrap();
    let items = s.items(inbox.id).await.unwrap();
    assert_eq!(items.len(), 50);
    let uids: Vec<u32> = items.iter().map(|i| i.uid).collect();
    assert_eq!(uids, (1..=50).collect::<Vec<_>>());
    assert_eq!(inbox.uid_next, 51);
    assert_eq!(inbox.total, 50);
    assert_eq!(inbox.unseen, 50);
    let junk = s.folder(bob.id, "junk").await.unwrap().unwrap();
    assert_eq!(junk.total, 50);
    let raw = s.raw(inbox.id, 7).await.unwrap().unwrap();
    assert!(String::from_utf8(raw).unwrap().starts_with("Subject: m"));
    let rec = s.item(inbox.id, 7).await.unwrap().unwrap();
    assert!(rec.content.subject.unwrap().starts_with("m"));
    let mut changes = 0;
    while feed.try_recv().is_ok() {
        changes += 1;
    }
    assert_eq!(changes, 50, "alice's Inbox heard its 50 appends, not bob's");

    // Folders: nested create makes parents; duplicates refused.
    let f = s.create_folder(alice.id, "Projects/2026/Q1").await.unwrap();
    assert_eq!(f.path, "Projects/2026/Q1");
    assert!(s.folder(alice.id, "projects/2026").await.unwrap().is_some());
    assert!(matches!(
        s.create_folder(alice.id, "projects").await,
        Err(StoreError::Exists(_))
    ));
    assert!(s.create_folder(alice.id, "a//b").await.is_err());
    let names: Vec<String> = s
        .folders(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(names[0], "Inbox");
    assert!(names.contains(&"Sent Items".to_string()));

    // Removing a user removes what only they held.
    s.remove_user(&addr("bob@example.org")).await.unwrap();
    assert!(s.user(&addr("bob@example.org")).await.unwrap().is_none());
    assert_eq!(s.items(inbox.id).await.unwrap().len(), 50);
}

fn postgate_mime_free_content(i: usize) -> ItemContent {
    ItemContent {
        subject: Some(format!("m{i}")),
        ..ItemContent::default()
    }
}

#[tokio::test]
async fn resolution_cache_follows_other_processes() {
    let (dir, server) = fixture().await;
    let alice = addr("alice@example.org");
    assert!(matches!(
        server.resolve(&alice).await.unwrap(),
        Resolution::Users(_)
    ));
    // The CLI is another process: another store on the same file, its own cache.
    let cli = EmbeddedStore::open(dir.path()).unwrap();
    cli.remove_user(&alice).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if server.resolve(&alice).await.unwrap() == Resolution::Unknown {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stale resolution kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Same process: at once.
    server
        .add_alias(&addr("al@example.org"), &addr("bob@example.org"))
        .await
        .unwrap();
    assert!(matches!(
        server.resolve(&addr("al@example.org")).await.unwrap(),
        Resolution::Users(_)
    ));
    server.remove_alias(&addr("al@example.org")).await.unwrap();
    assert_eq!(
        server.resolve(&addr("al@example.org")).await.unwrap(),
        Resolution::Unknown
    );
}

#[tokio::test]
async fn delivery_to_vanished_users_is_refused_not_lost() {
    let (_d, s) = fixture().await;
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    s.remove_user(&addr("bob@example.org")).await.unwrap();
    let r = s
        .deliver(NewDelivery {
            raw: b"Subject: x\r\n\r\ny\r\n".to_vec(),
            content: ItemContent::default(),
            envelope: None,
            targets: vec![Target {
                user: bob.id,
                role: FolderRole::Inbox,
                flags: Flags::default(),
            }],
            outbound: None,
            received_at: 0,
            calendar: Vec::new(),
        })
        .await;
    assert!(
        r.is_err(),
        "a delivery that stores nothing must not succeed"
    );
}

fn msg(subject: &str) -> NewMessage {
    NewMessage {
        raw: format!("Subject: {subject}\r\n\r\nbody\r\n").into_bytes(),
        content: ItemContent {
            subject: Some(subject.into()),
            ..ItemContent::default()
        },
        flags: Flags::default(),
        keywords: Vec::new(),
        internal_date: 1_700_000_000,
    }
}

#[tokio::test]
async fn imap_operations() {
    let (_d, s) = fixture().await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let inbox = s.folder(alice.id, "INBOX").await.unwrap().unwrap();
    for i in 1..=5 {
        let (validity, uid) = s.append(inbox.id, msg(&format!("m{i}"))).await.unwrap();
        assert_eq!(validity, inbox.uid_validity);
        assert_eq!(uid, i);
    }
    let snap = s.snapshot(inbox.id).await.unwrap();
    assert_eq!(snap.entries.len(), 5);
    let base = snap.folder.highest_modseq;

    // Flags: add, with a keyword; UNCHANGEDSINCE conflicts.
    let out = s
        .store_flags(
            inbox.id,
            vec![1, 2, 9],
            FlagOp::Add,
            Flags::SEEN,
            vec!["$Work".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.changed.len(), 2);
    assert!(out.changed[0].modseq > base);
    let out = s
        .store_flags(
            inbox.id,
            vec![1, 3],
            FlagOp::Add,
            Flags::FLAGGED,
            vec![],
            Some(base),
        )
        .await
        .unwrap();
    assert_eq!(out.conflicts, vec![1]);
    assert_eq!(out.changed.len(), 1);
    let snap = s.snapshot(inbox.id).await.unwrap();
    assert_eq!(snap.keywords, vec!["$Work".to_string()]);

    // Expunge leaves tombstones; changes since base show them.
    assert_eq!(s.expunge(inbox.id, vec![2, 4]).await.unwrap(), vec![2, 4]);
    let ch = s.changes_since(inbox.id, base).await.unwrap();
    assert_eq!(ch.vanished, vec![2, 4]);
    assert_eq!(
        ch.changed.iter().map(|e| e.uid).collect::<Vec<_>>(),
        vec![1, 3]
    );

    // Copy and move keep flags; COPYUID pairs.
    let work = s.create_folder(alice.id, "Work").await.unwrap();
    let c = s
        .copy_messages(inbox.id, vec![1, 3], work.id, false)
        .await
        .unwrap();
    assert_eq!(c.pairs, vec![(1, 1), (3, 2)]);
    let m = s
        .copy_messages(inbox.id, vec![5], work.id, true)
        .await
        .unwrap();
    assert_eq!(m.pairs, vec![(5, 3)]);
    let w = s.snapshot(work.id).await.unwrap();
    assert!(w.entries[0].flags.contains(Flags::SEEN));
    assert_eq!(s.snapshot(inbox.id).await.unwrap().entries.len(), 2);

    // \Recent claims: the first claim gets everything, the second nothing.
    assert_eq!(s.claim_recent(work.id, 3).await.unwrap(), 0);
    assert_eq!(s.claim_recent(work.id, 3).await.unwrap(), 3);

    // Rename with children, subscriptions following; rename INBOX moves messages.
    s.create_folder(alice.id, "Work/Sub").await.unwrap();
    s.set_subscribed(alice.id, "Work/Sub", true).await.unwrap();
    s.rename_folder(alice.id, "Work", "Archive/2026")
        .await
        .unwrap();
    assert!(s.folder(alice.id, "Archive").await.unwrap().is_some());
    assert!(
        s.folder(alice.id, "Archive/2026/Sub")
            .await
            .unwrap()
            .is_some()
    );
    assert!(s.folder(alice.id, "Work").await.unwrap().is_none());
    assert!(
        s.subscriptions(alice.id)
            .await
            .unwrap()
            .contains(&"Archive/2026/Sub".to_string())
    );
    assert_eq!(
        s.snapshot(
            s.folder(alice.id, "Archive/2026")
                .await
                .unwrap()
                .unwrap()
                .id
        )
        .await
        .unwrap()
        .entries
        .len(),
        3
    );
    s.rename_folder(alice.id, "INBOX", "Old Inbox")
        .await
        .unwrap();
    assert_eq!(s.snapshot(inbox.id).await.unwrap().entries.len(), 0);
    let old = s.folder(alice.id, "Old Inbox").await.unwrap().unwrap();
    assert_eq!(old.total, 2);

    // Delete: refused for system folders and parents.
    assert!(s.delete_folder(alice.id, "Trash").await.is_err());
    assert!(s.delete_folder(alice.id, "Archive").await.is_err());
    s.delete_folder(alice.id, "Archive/2026/Sub").await.unwrap();
    s.delete_folder(alice.id, "Archive/2026").await.unwrap();
    assert!(s.usage(alice.id).await.unwrap() > 0);
}

#[tokio::test]
async fn authenticator_caches_successes_only() {
    let (_d, s) = fixture().await;
    let alice = addr("alice@example.org");
    s.set_password_hash(&alice, Some(postgate_store::password::hash("one").unwrap()))
        .await
        .unwrap();
    let auth = postgate_store::auth::Authenticator::new(Arc::new(s.clone()));
    let pw = |p: &str| Secret::new(p.to_string());
    assert!(
        auth.authenticate(&alice, &pw("one"))
            .await
            .unwrap()
            .is_some()
    );
    let t = std::time::Instant::now();
    assert!(
        auth.authenticate(&alice, &pw("one"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        t.elapsed() < std::time::Duration::from_millis(5),
        "second check served from the cache"
    );
    assert!(
        auth.authenticate(&alice, &pw("two"))
            .await
            .unwrap()
            .is_none()
    );
    // A new password: the old one no longer works, cache or not.
    s.set_password_hash(&alice, Some(postgate_store::password::hash("two").unwrap()))
        .await
        .unwrap();
    assert!(
        auth.authenticate(&alice, &pw("one"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        auth.authenticate(&alice, &pw("two"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        auth.authenticate(&addr("a.smith@example.org"), &pw("two"))
            .await
            .unwrap()
            .is_none(),
        "no such alias yet"
    );
}

#[tokio::test]
async fn outbound_queue_claims_leases_and_settles() {
    use postgate_store::{Notify, Outbound, OutboundRcpt, Queue, RcptOutcome};
    let (_d, s) = fixture().await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let rcpt = |a: &str| OutboundRcpt {
        address: a.into(),
        orcpt: None,
        notify: Notify::default(),
    };
    // The Sent copy and the queue entry in one commit.
    s.deliver(NewDelivery {
        content: postgate_mime_free_content(1),
        raw: b"Subject: out\r\n\r\nbody\r\n".to_vec(),
        envelope: None,
        targets: vec![Target {
            user: alice.id,
            role: FolderRole::Sent,
            flags: Flags::SEEN,
        }],
        outbound: Some(Outbound {
            mail_from: "alice@example.org".into(),
            sender_user: Some(alice.id),
            rcpts: vec![rcpt("carol@remote.test"), rcpt("dave@Other.TEST")],
            ..Outbound::default()
        }),
        received_at: 1000,
        calendar: Vec::new(),
    })
    .await
    .unwrap();
    let now = chrono_now();
    let claimed = s.claim_due(now, 600, 100).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let m = &claimed[0];
    let domains: Vec<&str> = m.rcpts.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(domains, ["remote.test", "other.test"]);
    assert_eq!(
        s.message_bytes(m.message).await.unwrap().unwrap(),
        b"Subject: out\r\n\r\nbody\r\n"
    );
    // Leased: nobody else gets them until the lease runs out...
    assert!(s.claim_due(now + 500, 600, 100).await.unwrap().is_empty());
    assert_eq!(s.claim_due(now + 601, 600, 100).await.unwrap().len(), 1);
    // ...or a lone node starting up takes them back.
    assert_eq!(s.release_leases().await.unwrap(), 2);
    let claimed = s.claim_due(chrono_now(), 600, 100).await.unwrap();
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
    ])
    .await
    .unwrap();
    let listed = s.queue_list().await.unwrap();
    assert_eq!(listed[0].rcpts[1].attempts, 1);
    assert_eq!(listed[0].rcpts[1].last_error.as_deref(), Some("451 later"));
    assert!(s.claim_due(now + 299, 600, 100).await.unwrap().is_empty());
    assert_eq!(s.queue_retry(None).await.unwrap(), 1);
    let claimed = s.claim_due(chrono_now(), 600, 100).await.unwrap();
    assert_eq!(claimed[0].rcpts.len(), 1, "only dave is left to try");
    s.record(vec![(dave, RcptOutcome::Failed("550 no".into()))])
        .await
        .unwrap();
    assert!(s.queue_list().await.unwrap().is_empty());
    // The body stays for the Sent copy; removing that frees it.
    let sent = s.folder(alice.id, "Sent Items").await.unwrap().unwrap();
    assert_eq!(s.items(sent.id).await.unwrap().len(), 1);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A calendar change for the store tests: put (or remove) if what is held
/// has the expected item UID.
#[derive(Debug)]
struct PutIf {
    uid: String,
    expected: Option<u32>,
    object: Option<(String, Option<(i64, i64)>)>,
}

impl postgate_store::CalendarMerge for PutIf {
    fn merge(
        &self,
        current: Option<&postgate_store::CalendarEntry>,
    ) -> postgate_store::MergeResult {
        use postgate_store::{CalendarWrite, MergeResult};
        if current.map(|c| c.item_uid) != self.expected {
            return MergeResult::Conflict("changed".into());
        }
        let Some((summary, span)) = &self.object else {
            return MergeResult::Remove("gone".into());
        };
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
        MergeResult::Put(
            Box::new(CalendarWrite::new(
                ItemContent {
                    body: postgate_types::ItemBody::Appointment(Box::new(object)),
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

fn update(
    user: i64,
    uid: &str,
    expected: Option<u32>,
    object: Option<(&str, Option<(i64, i64)>)>,
) -> postgate_store::CalendarUpdate {
    postgate_store::CalendarUpdate {
        user,
        kind: postgate_types::ItemKind::Appointment,
        uid: uid.into(),
        merge: Arc::new(PutIf {
            uid: uid.into(),
            expected,
            object: object.map(|(s, span)| (s.to_string(), span)),
        }),
    }
}

#[tokio::test]
async fn calendar_objects_items_and_time_range_index() {
    use postgate_store::Calendars;
    use postgate_types::ItemKind::Appointment;
    let (_d, s) = fixture().await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let cal = s.folder(alice.id, "Calendar").await.unwrap().unwrap();
    let mut feed = s.changes().subscribe(cal.id);
    // 1,000 one-hour appointments, an hour apart, and one that never ends.
    let h = 3600;
    let t0 = 1_800_000_000;
    let mut ups: Vec<_> = (0..1000)
        .map(|i| {
            update(
                alice.id,
                &format!("e{i}"),
                None,
                Some(("event", Some((t0 + i * 2 * h, t0 + i * 2 * h + h)))),
            )
        })
        .collect();
    ups.push(update(
        alice.id,
        "forever",
        None,
        Some(("series", Some((t0, i64::MAX)))),
    ));
    ups.push(update(
        bob.id,
        "bobs",
        None,
        Some(("bob's", Some((t0, t0 + h)))),
    ));
    let out = s.update_calendar(ups).await.unwrap();
    assert!(out.iter().all(|o| o.changed));
    assert_eq!(s.items(cal.id).await.unwrap().len(), 1001);
    // 1,001 appends: the subscriber has lagged (it re-reads the folder).
    assert!(
        !matches!(
            feed.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ),
        "the change feed carries calendar items"
    );
    // The span [t0+10h, t0+13h) meets e5 (10–11h), e6 (12–13h) and the series.
    let mut got: Vec<String> = s
        .calendar_range(alice.id, Appointment, t0 + 10 * h, t0 + 13 * h)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.object.uid.clone())
        .collect();
    got.sort();
    // The R*Tree is a superset filter; the exact spans decide.
    got.retain(|u| u == "forever" || u == "e5" || u == "e6" || u == "e4" || u == "e7");
    assert!(
        got.contains(&"e5".into()) && got.contains(&"e6".into()) && got.contains(&"forever".into()),
        "{got:?}"
    );
    let exact: Vec<String> = s
        .calendar_range(alice.id, Appointment, t0 + 10 * h, t0 + 13 * h)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.span
                .is_some_and(|(lo, hi)| lo < t0 + 13 * h && hi > t0 + 10 * h)
        })
        .map(|e| e.object.uid)
        .collect();
    assert_eq!(exact.len(), 3, "{exact:?}");
    // Far in the future only the series.
    let later = s
        .calendar_range(alice.id, Appointment, t0 + 10_000 * h, t0 + 10_001 * h)
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .map(|e| e.object.uid.as_str())
            .collect::<Vec<_>>(),
        ["forever"]
    );
    // Not another user's.
    assert!(
        s.calendar_range(bob.id, Appointment, t0 + 10 * h, t0 + 13 * h)
            .await
            .unwrap()
            .is_empty()
    );

    // An update keeps the id, gives the item a new UID and moves the span.
    let e5 = s
        .calendar_by_uid(alice.id, Appointment, "e5")
        .await
        .unwrap()
        .unwrap();
    let out = s
        .update_calendar(vec![update(
            alice.id,
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
    assert_eq!(
        s.items(cal.id).await.unwrap().len(),
        1001,
        "the old item is expunged"
    );
    assert!(
        s.calendar_range(alice.id, Appointment, t0 + 10 * h, t0 + 11 * h)
            .await
            .unwrap()
            .iter()
            .all(|e| e.object.uid != "e5")
    );
    // A change based on what is no longer held is refused, and nothing is written.
    let r = s
        .update_calendar(vec![update(
            alice.id,
            "e5",
            Some(e5.item_uid),
            Some(("stale", None)),
        )])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // Removal takes the item and the index entry.
    s.update_calendar(vec![update(alice.id, "e5", Some(moved.item_uid), None)])
        .await
        .unwrap();
    assert!(s.calendar_entry(alice.id, e5.id).await.unwrap().is_none());
    assert_eq!(s.items(cal.id).await.unwrap().len(), 1000);
    assert!(
        s.calendar_range(alice.id, Appointment, t0 + 5000 * h, t0 + 5001 * h)
            .await
            .unwrap()
            .iter()
            .all(|e| e.object.uid != "e5")
    );
    // Removing the user removes their calendar.
    s.remove_user(&addr("bob@example.org")).await.unwrap();
    assert!(
        s.calendar_entries(bob.id, Appointment)
            .await
            .unwrap()
            .is_empty()
    );
}
