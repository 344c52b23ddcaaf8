//! The store conformance suite: every backend runs every case, through the
//! traits alone (see `suite!`). A backend's test file implements [`Harness`]
//! and invokes `suite!` once.
#![allow(dead_code)]
use postgate_store::{
    FlagOp, NewDelivery, NewMessage, NewUser, Resolution, Store, StoreError, Target,
};
use postgate_types::{EmailAddress, Flags, FolderRole, ItemContent, Secret};
use std::sync::Arc;

/// Opens stores for the suite.
pub trait Harness: Send + Sync {
    /// Another handle on the one database this harness made, as another
    /// process or node would open it (the first call makes it, empty).
    fn open(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>> + Send + '_>>;
    /// Whether the backend can run here (a loud skip otherwise).
    fn available(&self) -> bool {
        true
    }
    /// Whether the handles are nodes of one shared store, sharing what the
    /// embedded store keeps per process: POP3 maildrop locks and the change
    /// feed (in memory), and queue leases by node (the embedded store's
    /// `release_leases` ends every lease: it is the only node). The cases
    /// that need it skip, loudly, without it.
    fn shared_across_handles(&self) -> bool {
        false
    }
}

/// One test per case, over the harness `$make` builds: `#[tokio::test]`
/// for most; the cases where concurrency matters run on a multi-thread
/// runtime, so that their tasks run in parallel.
#[macro_export]
macro_rules! suite {
    ($make:expr) => {
        suite!(@current_thread $make;
            access_rules_and_their_precedence,
            maildrop_locks,
            directory_resolution,
            passwords,
            concurrent_deliveries_share_blobs_and_get_increasing_uids,
            resolution_cache_follows_other_processes,
            delivery_to_vanished_users_is_refused_not_lost,
            imap_operations,
            authenticator_caches_successes_only,
            outbound_queue_claims_leases_and_settles,
            outbound_queue_hold_and_release,
            calendar_objects_items_and_time_range_index,
            console_administrators,
            user_search_pages_and_counts,
            user_update,
            queue_page_filters_and_counts,
            stats_history_sums_nodes_and_buckets,
            dkim_keys_add_list_remove,
            append_batch_keeps_order_flags_and_dates,
            user_feed_hears_every_folder_and_the_list,
            metadata_entries,
            created_with_a_role,
        );
        suite!(@multi_thread $make;
            two_handles_claim_every_due_recipient_once,
            concurrent_records_of_the_last_recipients_settle_the_message,
            parallel_appends_from_two_handles_keep_uids_ascending,
            raced_recent_claims_give_each_message_to_one_claimer,
            concurrent_calendar_changes_from_two_handles_do_not_overwrite,
            colliding_directory_writes_from_two_handles,
            maildrop_locks_across_handles,
            change_feed_crosses_handles,
            release_leases_leaves_other_handles_leases,
        );
    };
    (@current_thread $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let h = $make;
                if h.available() {
                    conformance::$case(&h).await
                }
            }
        )*
    };
    (@multi_thread $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let h = $make;
                if h.available() {
                    conformance::$case(&h).await
                }
            }
        )*
    };
}

/// Classes, assignments and blocks as stored, and their evaluation: the
/// user, the groups it is in (nested), its post office, its domain, then
/// `default`; a change is seen by another handle (node) at once.
pub async fn access_rules_and_their_precedence(h: &dyn Harness) {
    use postgate_store::access::Policy;
    use postgate_types::access::{Assignee, Block, Direction};
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    s.add_group(&addr("inner@example.org"), "Inner")
        .await
        .unwrap();
    s.add_group(&addr("outer@example.org"), "Outer")
        .await
        .unwrap();
    s.add_group_member(&addr("inner@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("outer@example.org"), &addr("inner@example.org"))
        .await
        .unwrap();
    let mut groups: Vec<String> = s
        .groups_of(&alice)
        .await
        .unwrap()
        .iter()
        .map(|g| g.to_string())
        .collect();
    groups.sort();
    assert_eq!(groups, ["inner@example.org", "outer@example.org"]);

    for c in ["dom", "grp", "usr"] {
        s.add_class(c, "").await.unwrap();
    }
    assert!(matches!(
        s.add_class("dom", "").await,
        Err(StoreError::Exists(_))
    ));
    assert!(s.add_class("bad name", "").await.is_err());
    let mut deny = postgate_types::access::ClassSettings::default();
    deny.set("imap", "deny").unwrap();
    s.set_class("grp", deny.clone()).await.unwrap();
    s.assign_class("dom", Assignee::Domain("example.org".into()))
        .await
        .unwrap();
    assert!(matches!(
        s.assign_class("dom", Assignee::User("nobody@example.org".into()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let policy = Policy::new(s.clone());
    let e = policy.class_of(&alice).await.unwrap();
    assert_eq!(
        (e.class.as_str(), e.origin.clone()),
        ("dom", Some(Assignee::Domain("example.org".into())))
    );
    // A class on an outer group: alice is in it through the inner one.
    s.assign_class("grp", Assignee::Group("outer@example.org".into()))
        .await
        .unwrap();
    // Another node's policy sees the change within its recheck interval.
    let other = Policy::new(h.open().await);
    std::thread::sleep(postgate_store::access::RECHECK);
    let e = other.class_of(&alice).await.unwrap();
    assert_eq!(e.class, "grp");
    assert!(!e.settings.allows(postgate_types::Service::Imap));
    s.assign_class("usr", Assignee::User("alice@example.org".into()))
        .await
        .unwrap();
    std::thread::sleep(postgate_store::access::RECHECK);
    assert_eq!(other.class_of(&alice).await.unwrap().class, "usr");
    let listed = s.classes().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().any(|c| c.name == "grp" && c.settings == deny));
    s.unassign_class("usr", Assignee::User("alice@example.org".into()))
        .await
        .unwrap();
    s.remove_class("grp").await.unwrap();
    std::thread::sleep(postgate_store::access::RECHECK);
    assert_eq!(other.class_of(&alice).await.unwrap().class, "dom");

    s.add_block(Block {
        pattern: "192.0.2.0/24".into(),
        direction: Direction::In,
        note: "test".into(),
    })
    .await
    .unwrap();
    s.add_block(Block {
        pattern: "*.evil.test".into(),
        direction: Direction::Out,
        note: String::new(),
    })
    .await
    .unwrap();
    std::thread::sleep(postgate_store::access::RECHECK);
    let ip = Some("192.0.2.9".parse().unwrap());
    assert!(
        other
            .blocked(Direction::In, ip, &[])
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        other
            .blocked(Direction::Out, ip, &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        other
            .blocked(Direction::Out, None, &["mx.evil.test"])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.blocks().await.unwrap().len(), 2);
    assert!(s.remove_block("192.0.2.0/24").await.unwrap());
    assert!(!s.remove_block("192.0.2.0/24").await.unwrap());
}

/// One POP3 session per maildrop (RFC 2449 §8.1.1).
pub async fn maildrop_locks(h: &dyn Harness) {
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let inbox = s.folder(alice.id, "INBOX").await.unwrap().unwrap();
    assert!(s.lock_maildrop(inbox.id, "node-a:1").await.unwrap());
    assert!(!s.lock_maildrop(inbox.id, "node-a:2").await.unwrap());
    // Someone else's release does nothing.
    s.unlock_maildrop(inbox.id, "node-a:2").await.unwrap();
    assert!(!s.lock_maildrop(inbox.id, "node-b:7").await.unwrap());
    s.unlock_maildrop(inbox.id, "node-a:1").await.unwrap();
    assert!(s.lock_maildrop(inbox.id, "node-b:7").await.unwrap());
}

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

async fn fixture(h: &dyn Harness) -> Arc<dyn Store> {
    let store = h.open().await;
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
    store
}

fn users(r: Resolution) -> Vec<String> {
    match r {
        Resolution::Users(u) => u.into_iter().map(|u| u.address.to_string()).collect(),
        other => panic!("expected users, got {other:?}"),
    }
}

pub async fn directory_resolution(h: &dyn Harness) {
    let s = fixture(h).await;
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

pub async fn passwords(h: &dyn Harness) {
    let s = fixture(h).await;
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

pub async fn concurrent_deliveries_share_blobs_and_get_increasing_uids(h: &dyn Harness) {
    let s = fixture(h).await;
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

pub async fn resolution_cache_follows_other_processes(h: &dyn Harness) {
    let server = fixture(h).await;
    let alice = addr("alice@example.org");
    assert!(matches!(
        server.resolve(&alice).await.unwrap(),
        Resolution::Users(_)
    ));
    // The CLI is another process: another store on the same file, its own cache.
    let cli = h.open().await;
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

pub async fn delivery_to_vanished_users_is_refused_not_lost(h: &dyn Harness) {
    let s = fixture(h).await;
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
        internal_zone: 0,
    }
}

/// `append_batch` (imports): one commit, UIDs ascending in the order
/// given after what the folder held, each message's bytes, flags,
/// keywords and internal date as given, every append on the change feed;
/// an empty batch stores nothing; a missing folder is NotFound.
pub async fn append_batch_keeps_order_flags_and_dates(h: &dyn Harness) {
    use postgate_types::ChangeKind;
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let folder = s.create_folder(alice.id, "Archive/2020").await.unwrap();
    let (_, first) = s.append(folder.id, msg("before")).await.unwrap();
    let mut feed = s.changes().subscribe(folder.id);
    let batch: Vec<NewMessage> = (0..3)
        .map(|i| NewMessage {
            flags: [Flags::SEEN, Flags::FLAGGED.with(Flags::ANSWERED), Flags(0)][i],
            keywords: if i == 1 {
                vec!["$Label1".into(), "Work".into()]
            } else {
                Vec::new()
            },
            internal_date: 1_500_000_000 + i as i64 * 3600,
            // Minutes east of UTC: +05:30, -08:00, UTC.
            internal_zone: [330, -480, 0][i],
            ..msg(&format!("batch {i}"))
        })
        .collect();
    let (validity, uids) = s.append_batch(folder.id, batch.clone()).await.unwrap();
    assert_eq!(validity, folder.uid_validity);
    // RFC 9051 §2.3.1.1: UIDs strictly ascending, in the order appended.
    assert_eq!(uids, vec![first + 1, first + 2, first + 3]);
    let items = s.items(folder.id).await.unwrap();
    assert_eq!(items.len(), 4);
    for (m, uid) in batch.iter().zip(&uids) {
        let item = items.iter().find(|i| i.uid == *uid).unwrap();
        assert_eq!(item.flags, m.flags, "uid {uid}");
        assert_eq!(item.keywords, m.keywords, "uid {uid}");
        assert_eq!(item.internal_date, m.internal_date, "uid {uid}");
        assert_eq!(s.raw(folder.id, *uid).await.unwrap().unwrap(), m.raw);
    }
    for uid in &uids {
        let c = heard(&mut feed, *uid)
            .await
            .expect("batch append published");
        assert_eq!(
            (c.kind, c.folder, c.user),
            (ChangeKind::Append, folder.id, alice.id)
        );
    }
    // The INTERNALDATE keeps its zone (RFC 3501 §6.3.11), through COPY
    // too; the save date (RFC 8514 §2) is now, for the copy as well.
    let now = chrono::Utc::now().timestamp();
    let meta = s.messages_meta(folder.id, uids.clone()).await.unwrap();
    assert_eq!(
        meta.iter().map(|m| m.internal_zone).collect::<Vec<_>>(),
        vec![330, -480, 0]
    );
    // Several messages' bytes in one call, in the order asked, None for
    // one that does not exist.
    let mut refs: Vec<_> = meta.iter().rev().map(|m| m.message).collect();
    refs.push(postgate_store::MessageRef(i64::MAX));
    let got = s.messages_bytes(refs).await.unwrap();
    let want: Vec<Option<Vec<u8>>> = batch
        .iter()
        .rev()
        .map(|m| Some(m.raw.clone()))
        .chain([None])
        .collect();
    assert_eq!(got, want);
    for m in &meta {
        let saved = m.save_date.expect("save date kept");
        assert!((saved - now).abs() < 120, "save date {saved} vs now {now}");
    }
    let other = s.create_folder(alice.id, "Copies").await.unwrap();
    s.copy_messages(folder.id, uids.clone(), other.id, false)
        .await
        .unwrap();
    let copied = s.snapshot(other.id).await.unwrap().entries;
    let copied: Vec<u32> = copied.iter().map(|e| e.uid).collect();
    let meta = s.messages_meta(other.id, copied).await.unwrap();
    assert_eq!(
        meta.iter()
            .map(|m| (m.internal_date, m.internal_zone, m.save_date.is_some()))
            .collect::<Vec<_>>(),
        vec![
            (1_500_000_000, 330, true),
            (1_500_003_600, -480, true),
            (1_500_007_200, 0, true)
        ]
    );
    let (validity, none) = s.append_batch(folder.id, Vec::new()).await.unwrap();
    assert_eq!((validity, none.len()), (folder.uid_validity, 0));
    assert_eq!(s.items(folder.id).await.unwrap().len(), 4);
    let missing = folder.id + 1_000_000;
    assert!(matches!(
        s.append_batch(missing, vec![msg("lost")]).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn imap_operations(h: &dyn Harness) {
    let s = fixture(h).await;
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

pub async fn authenticator_caches_successes_only(h: &dyn Harness) {
    let s = fixture(h).await;
    let alice = addr("alice@example.org");
    s.set_password_hash(&alice, Some(postgate_store::password::hash("one").unwrap()))
        .await
        .unwrap();
    let auth = postgate_store::auth::Authenticator::new(s.clone());
    let pw = |p: &str| Secret::new(p.to_string());
    let t = std::time::Instant::now();
    assert!(
        auth.authenticate(&alice, &pw("one"))
            .await
            .unwrap()
            .is_some()
    );
    let verified = t.elapsed();
    let t = std::time::Instant::now();
    assert!(
        auth.authenticate(&alice, &pw("one"))
            .await
            .unwrap()
            .is_some()
    );
    // The cached check still reads the stored hash (a database round trip),
    // but spends no argon2id time.
    assert!(
        t.elapsed() < verified / 4,
        "second check served from the cache ({:?} against {verified:?})",
        t.elapsed()
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

pub async fn outbound_queue_claims_leases_and_settles(h: &dyn Harness) {
    use postgate_store::{Notify, Outbound, OutboundRcpt, RcptOutcome};
    let s = fixture(h).await;
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
    let depth = s.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.deferred, depth.in_flight), (2, 0, 0));
    assert_eq!(depth.oldest, Some(1000));
    let claimed = s.claim_due(now, 600, 100).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(s.queue_depth().await.unwrap().in_flight, 2);
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
    let depth = s.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.deferred, depth.in_flight), (0, 1, 0));
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
    assert_eq!(
        s.queue_depth().await.unwrap(),
        postgate_store::QueueDepth::default()
    );
    // The body stays for the Sent copy; removing that frees it.
    let sent = s.folder(alice.id, "Sent Items").await.unwrap().unwrap();
    assert_eq!(s.items(sent.id).await.unwrap().len(), 1);
}

/// Holding and releasing (`postgate queue hold` / `release`): a held
/// recipient is never claimed, is counted held, keeps its message in the
/// queue while the others settle, and is due again once released; a claimed
/// one is left alone; removing a held message works.
pub async fn outbound_queue_hold_and_release(h: &dyn Harness) {
    use postgate_store::{Notify, Outbound, OutboundRcpt, QueueDepth, RcptOutcome};
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    for (n, rcpts) in [
        (1, &["carol@remote.test", "dave@remote.test"][..]),
        (2, &["erin@remote.test"][..]),
    ] {
        s.deliver(NewDelivery {
            content: postgate_mime_free_content(n),
            raw: format!("Subject: out {n}\r\n\r\nbody\r\n").into_bytes(),
            envelope: None,
            targets: vec![Target {
                user: alice.id,
                role: FolderRole::Sent,
                flags: Flags::SEEN,
            }],
            outbound: Some(Outbound {
                mail_from: "alice@example.org".into(),
                sender_user: Some(alice.id),
                rcpts: rcpts
                    .iter()
                    .map(|a| OutboundRcpt {
                        address: (*a).into(),
                        orcpt: None,
                        notify: Notify::default(),
                    })
                    .collect(),
                ..Outbound::default()
            }),
            received_at: 1000,
            calendar: Vec::new(),
        })
        .await
        .unwrap();
    }
    let listed = s.queue_list().await.unwrap();
    let (q1, q2) = (listed[0].id, listed[1].id);
    let now = chrono_now();
    // A runner claims carol; dave and erin wait.
    let claimed = s.claim_due(now, 600, 1).await.unwrap();
    assert_eq!(claimed[0].id, q1);
    let carol = claimed[0].rcpts[0].id;
    assert_eq!(claimed[0].rcpts[0].address, "carol@remote.test");
    // Holding q1 takes dave only: carol is being tried.
    assert_eq!(s.queue_hold(Some(q1), true).await.unwrap(), 1);
    assert_eq!(s.queue_hold(Some(q2), true).await.unwrap(), 1);
    assert_eq!(s.queue_hold(None, true).await.unwrap(), 0, "already held");
    assert_eq!(
        s.queue_depth().await.unwrap(),
        QueueDepth {
            due: 0,
            deferred: 0,
            in_flight: 1,
            held: 2,
            oldest: Some(1000),
        }
    );
    // Held: never claimed, not made due by retry.
    assert!(s.claim_due(now, 600, 100).await.unwrap().is_empty());
    assert_eq!(s.queue_retry(None).await.unwrap(), 0);
    // Carol settles; the message stays for dave, held.
    s.record(vec![(carol, RcptOutcome::Sent)]).await.unwrap();
    let m = s
        .queue_get(q1)
        .await
        .unwrap()
        .expect("a held recipient keeps the message");
    let states: Vec<&str> = m.rcpts.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(states, ["sent", "held"]);
    let depth = s.queue_depth().await.unwrap();
    assert_eq!(
        (depth.due, depth.in_flight, depth.held, depth.oldest),
        (0, 0, 2, None)
    );
    // Released: due now, claimed, settled, gone.
    assert_eq!(s.queue_hold(Some(q1), false).await.unwrap(), 1);
    assert_eq!(s.queue_hold(Some(q1), false).await.unwrap(), 0);
    let depth = s.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.held), (1, 1));
    let claimed = s.claim_due(chrono_now(), 600, 100).await.unwrap();
    assert_eq!(claimed.len(), 1, "erin is still held");
    assert_eq!(claimed[0].id, q1);
    assert_eq!(claimed[0].rcpts.len(), 1);
    assert_eq!(claimed[0].rcpts[0].address, "dave@remote.test");
    s.record(vec![(claimed[0].rcpts[0].id, RcptOutcome::Sent)])
        .await
        .unwrap();
    assert!(s.queue_get(q1).await.unwrap().is_none());
    // A held message can be removed.
    assert!(s.queue_remove(q2).await.unwrap());
    assert!(s.queue_list().await.unwrap().is_empty());
    assert_eq!(s.queue_depth().await.unwrap(), QueueDepth::default());
    assert_eq!(s.queue_hold(None, false).await.unwrap(), 0);
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
        use postgate_store::MergeResult;
        if current.map(|c| c.item_uid) != self.expected {
            return MergeResult::Conflict("changed".into());
        }
        let Some((summary, span)) = &self.object else {
            return MergeResult::Remove("gone".into());
        };
        put_appointment(&self.uid, summary, *span)
    }
}

/// A merge's decision to store an appointment with this summary.
fn put_appointment(
    uid: &str,
    summary: &str,
    span: Option<(i64, i64)>,
) -> postgate_store::MergeResult {
    use postgate_store::{CalendarWrite, MergeResult};
    let object = postgate_types::CalendarObject {
        uid: uid.to_string(),
        master: Some(postgate_types::CalendarComponent {
            summary: Some(summary.to_string()),
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
                subject: Some(summary.to_string()),
                ..ItemContent::default()
            },
            format!("Subject: {summary}\r\n\r\n{summary}\r\n").into_bytes(),
            span,
            Flags::default(),
        )),
        "put".into(),
    )
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

pub async fn calendar_objects_items_and_time_range_index(h: &dyn Harness) {
    use postgate_types::ItemKind::Appointment;
    let s = fixture(h).await;
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

// ---- Concurrency, and what handles (processes, nodes) share ----

/// A message `sender` sends to remote `rcpts`: its Sent copy and its queue
/// entry, in one delivery.
fn outbound_delivery(
    sender: postgate_types::UserId,
    tag: &str,
    rcpts: &[String],
    received_at: i64,
) -> NewDelivery {
    use postgate_store::{Notify, Outbound, OutboundRcpt};
    NewDelivery {
        content: ItemContent {
            subject: Some(tag.into()),
            ..ItemContent::default()
        },
        raw: format!("Subject: {tag}\r\n\r\nbody of {tag}\r\n").into_bytes(),
        envelope: None,
        targets: vec![Target {
            user: sender,
            role: FolderRole::Sent,
            flags: Flags::SEEN,
        }],
        outbound: Some(Outbound {
            mail_from: "alice@example.org".into(),
            sender_user: Some(sender),
            rcpts: rcpts
                .iter()
                .map(|a| OutboundRcpt {
                    address: a.clone(),
                    orcpt: None,
                    notify: Notify::default(),
                })
                .collect::<Vec<_>>(),
            ..Outbound::default()
        }),
        received_at,
        calendar: Vec::new(),
    }
}

/// Every recipient id of every queued message.
async fn queued_rcpt_ids(s: &Arc<dyn Store>) -> std::collections::BTreeSet<i64> {
    s.queue_list()
        .await
        .unwrap()
        .iter()
        .flat_map(|m| m.rcpts.iter().map(|r| r.id))
        .collect()
}

/// Claims due recipients until none is left; returns their ids.
async fn claim_loop(s: Arc<dyn Store>, now: i64, lease: i64, limit: usize) -> Vec<i64> {
    let mut got = Vec::new();
    loop {
        let claimed = s.claim_due(now, lease, limit).await.unwrap();
        if claimed.is_empty() {
            return got;
        }
        let n: usize = claimed.iter().map(|m| m.rcpts.len()).sum();
        assert!(n <= limit, "{n} recipients claimed with a limit of {limit}");
        for m in claimed {
            assert_eq!(
                m.outbound.rcpts.len(),
                m.rcpts.len(),
                "a claimed message lists the recipients claimed"
            );
            got.extend(m.rcpts.iter().map(|r| r.id));
        }
        tokio::task::yield_now().await;
    }
}

/// Two handles, three claim loops each, claim 200 due recipients at once:
/// no recipient is claimed twice while leased, and together they claim
/// every one. Once the leases run out another handle claims them all.
pub async fn two_handles_claim_every_due_recipient_once(h: &dyn Harness) {
    let a = fixture(h).await;
    let b = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let now = chrono_now();
    // 40 messages of 5 recipients each, over a few domains.
    for i in 0..40 {
        let rcpts: Vec<String> = (0..5)
            .map(|j| format!("r{j}.m{i}@d{}.test", i % 7))
            .collect();
        let s = if i % 2 == 0 { &a } else { &b };
        s.deliver(outbound_delivery(
            alice.id,
            &format!("q{i}"),
            &rcpts,
            now - 100 + i,
        ))
        .await
        .unwrap();
    }
    let all = queued_rcpt_ids(&b).await;
    assert_eq!(all.len(), 200);
    assert_eq!(b.queue_depth().await.unwrap().due, 200);

    let mut tasks = Vec::new();
    for s in [&a, &b, &a, &b, &a, &b] {
        tasks.push(tokio::spawn(claim_loop(s.clone(), now, 600, 7)));
    }
    let mut claimed = std::collections::BTreeSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(claimed.insert(id), "recipient {id} claimed twice");
        }
    }
    assert_eq!(claimed, all, "between them the handles claimed every one");
    assert!(a.claim_due(now, 600, 1000).await.unwrap().is_empty());
    assert!(b.claim_due(now + 599, 600, 1000).await.unwrap().is_empty());
    let depth = a.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.in_flight), (0, 200));

    // The leases run out (their runners died): another handle takes them.
    let c = h.open().await;
    let again: std::collections::BTreeSet<i64> = c
        .claim_due(now + 601, 600, 1000)
        .await
        .unwrap()
        .iter()
        .flat_map(|m| m.rcpts.iter().map(|r| r.id))
        .collect();
    assert_eq!(again, all, "every expired lease is claimable elsewhere");
    assert!(
        a.claim_due(now + 700, 600, 1000).await.unwrap().is_empty(),
        "the new leases hold"
    );
}

/// Two handles recording the outcomes of a message's last two recipients
/// at once (one each): the message leaves the queue.
pub async fn concurrent_records_of_the_last_recipients_settle_the_message(h: &dyn Harness) {
    use postgate_store::RcptOutcome;
    let a = fixture(h).await;
    let b = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let now = chrono_now();
    for round in 0..3 {
        for i in 0..30 {
            let rcpts = vec!["x@x.test".to_string(), "y@y.test".to_string()];
            a.deliver(outbound_delivery(
                alice.id,
                &format!("c{round}.{i}"),
                &rcpts,
                now,
            ))
            .await
            .unwrap();
        }
        let claimed = a.claim_due(now, 60, 1000).await.unwrap();
        assert_eq!(claimed.len(), 30);
        assert!(claimed.iter().all(|m| m.rcpts.len() == 2));
        let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
        let xs: Vec<(i64, RcptOutcome)> = claimed
            .iter()
            .map(|m| (m.rcpts[0].id, RcptOutcome::Sent))
            .collect();
        // The other order, so that the two meet in the middle.
        let ys: Vec<(i64, RcptOutcome)> = claimed
            .iter()
            .rev()
            .map(|m| (m.rcpts[1].id, RcptOutcome::Failed("550 no".into())))
            .collect();
        let ta = tokio::spawn({
            let a = a.clone();
            async move { a.record(xs).await }
        });
        let tb = tokio::spawn({
            let b = b.clone();
            async move { b.record(ys).await }
        });
        ta.await.unwrap().unwrap();
        tb.await.unwrap().unwrap();
        for id in ids {
            assert!(
                a.queue_get(id).await.unwrap().is_none(),
                "round {round}: message {id} is settled but still queued"
            );
            assert!(b.queue_get(id).await.unwrap().is_none());
        }
        assert!(a.queue_list().await.unwrap().is_empty());
        assert_eq!(
            b.queue_depth().await.unwrap(),
            postgate_store::QueueDepth::default()
        );
    }
}

/// What a reader polling a folder has seen of it.
#[derive(Default)]
struct UidWatch {
    seen: std::collections::BTreeSet<u32>,
    modseq: u64,
    polls: usize,
}

impl UidWatch {
    /// New UIDs must all be above every UID seen before (RFC 3501
    /// §2.3.1.1: UIDs appear in ascending order).
    fn saw(&mut self, uids: &[u32], how: &str) {
        let max = self.seen.last().copied().unwrap_or(0);
        for &u in uids {
            assert!(
                self.seen.contains(&u) || u > max,
                "{how}: UID {u} appeared after UID {max} had been seen"
            );
        }
        self.seen.extend(uids.iter().copied());
        self.polls += 1;
    }

    /// A folder's highest modseq never goes back.
    fn modseq(&mut self, highest: u64, how: &str) {
        assert!(
            highest >= self.modseq,
            "{how}: HIGHESTMODSEQ went back from {} to {highest}",
            self.modseq
        );
        self.modseq = highest;
    }
}

/// Polls a folder (snapshots and changes since the modseq last seen, as an
/// IMAP client with CONDSTORE would) until `done`, then once more.
async fn watch_folder(
    s: Arc<dyn Store>,
    folder: postgate_types::FolderId,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> UidWatch {
    let mut w = UidWatch::default();
    let mut last = false;
    let mut i = 0u32;
    while !last {
        last = done.load(std::sync::atomic::Ordering::SeqCst);
        i += 1;
        if i.is_multiple_of(3) {
            let snap = s.snapshot(folder).await.unwrap();
            let uids: Vec<u32> = snap.entries.iter().map(|e| e.uid).collect();
            assert!(
                w.seen.iter().all(|u| uids.binary_search(u).is_ok()),
                "snapshot: a UID seen before is missing (nothing was expunged)"
            );
            // Each append takes the folder's next UID and next modseq
            // together: in UID order, modseqs strictly increase.
            assert!(
                snap.entries.windows(2).all(|p| p[0].modseq < p[1].modseq),
                "snapshot: modseqs do not increase with UIDs"
            );
            if let Some(e) = snap.entries.last() {
                assert!(e.modseq <= snap.folder.highest_modseq);
                assert!(e.uid < snap.folder.uid_next);
            }
            w.saw(&uids, "snapshot");
            w.modseq(snap.folder.highest_modseq, "snapshot");
        } else {
            let since = w.modseq;
            let ch = s.changes_since(folder, since).await.unwrap();
            assert!(ch.vanished.is_empty());
            let uids: Vec<u32> = ch.changed.iter().map(|e| e.uid).collect();
            for e in &ch.changed {
                assert!(e.modseq > since && e.modseq <= ch.highest_modseq);
                // Nothing but appends happen here: a message changed since
                // a modseq is one not seen at that modseq.
                assert!(
                    !w.seen.contains(&e.uid),
                    "changes since {since}: UID {} was already seen at or below it",
                    e.uid
                );
            }
            w.saw(&uids, "changes since");
            w.modseq(ch.highest_modseq, "changes since");
        }
        if !last {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    w
}

/// Two handles, four tasks each, append 200 messages to one folder while a
/// third handle polls it: the UIDs are 1..=200, each given once; the reader
/// never sees a UID appear below one it saw before (RFC 3501 §2.3.1.1),
/// and following "changes since" it misses none; modseqs increase.
pub async fn parallel_appends_from_two_handles_keep_uids_ascending(h: &dyn Harness) {
    let a = fixture(h).await;
    let b = h.open().await;
    let reader = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let folder = a.create_folder(alice.id, "Race").await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = tokio::spawn(watch_folder(reader.clone(), folder.id, done.clone()));
    let mut tasks = Vec::new();
    for (n, s) in [&a, &b, &a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let s = s.clone();
        let f = folder.id;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                got.push(s.append(f, msg(&format!("w{n}.{i}"))).await.unwrap());
            }
            got
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        for (validity, uid) in t.await.unwrap() {
            assert_eq!(validity, folder.uid_validity);
            uids.push(uid);
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let w = watcher.await.unwrap();
    uids.sort_unstable();
    assert_eq!(uids, (1..=200).collect::<Vec<u32>>(), "distinct, no gaps");
    assert_eq!(
        w.seen.iter().copied().collect::<Vec<u32>>(),
        uids,
        "the reader saw every message ({} polls)",
        w.polls
    );
    let snap = a.snapshot(folder.id).await.unwrap();
    assert_eq!(
        snap.entries.iter().map(|e| e.uid).collect::<Vec<u32>>(),
        uids
    );
    assert!(snap.entries.windows(2).all(|p| p[0].modseq < p[1].modseq));
    assert_eq!(snap.folder.uid_next, 201);
    assert_eq!(
        snap.folder.highest_modseq,
        snap.entries.last().unwrap().modseq
    );
    assert_eq!(
        b.folder(alice.id, "race").await.unwrap().unwrap().total,
        200
    );
}

/// \Recent claims raced from three handles, two claimers each, while
/// messages arrive: each message is recent to exactly one claimer (RFC
/// 3501 §2.3.2): the ranges (before, upto] claimed chain from 0 to the
/// last UID with neither overlap nor gap.
pub async fn raced_recent_claims_give_each_message_to_one_claimer(h: &dyn Harness) {
    let a = fixture(h).await;
    let b = h.open().await;
    let c = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let folder = a.create_folder(alice.id, "Recent").await.unwrap().id;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut claimers = Vec::new();
    for s in [&a, &b, &c, &a, &b, &c] {
        let (s, done) = (s.clone(), done.clone());
        let user = alice.id;
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                // Read before the UID, so that the last claim covers every
                // message appended.
                let last = done.load(std::sync::atomic::Ordering::SeqCst);
                let upto = s.folder(user, "Recent").await.unwrap().unwrap().uid_next - 1;
                let before = s.claim_recent(folder, upto).await.unwrap();
                if upto > before {
                    mine.push((before, upto));
                }
                if last {
                    return mine;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }));
    }
    let mut appenders = Vec::new();
    for (n, s) in [&a, &b].into_iter().enumerate() {
        let s = s.clone();
        appenders.push(tokio::spawn(async move {
            for i in 0..40 {
                s.append(folder, msg(&format!("r{n}.{i}"))).await.unwrap();
            }
        }));
    }
    for t in appenders {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut ranges = Vec::new();
    for t in claimers {
        ranges.extend(t.await.unwrap());
    }
    ranges.sort_unstable();
    let mut next = 0;
    for &(before, upto) in &ranges {
        assert_eq!(before, next, "claims overlap or leave a gap: {ranges:?}");
        next = upto;
    }
    assert_eq!(next, 80, "every message was claimed: {ranges:?}");
    assert_eq!(c.snapshot(folder).await.unwrap().recent_uid, 80);

    // All six at once for the same new messages: exactly one gets them.
    for i in 0..5 {
        a.append(folder, msg(&format!("late{i}"))).await.unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(6));
    let mut racers = Vec::new();
    for s in [&a, &b, &c, &a, &b, &c] {
        let (s, barrier) = (s.clone(), barrier.clone());
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            s.claim_recent(folder, 85).await.unwrap()
        }));
    }
    let mut befores = Vec::new();
    for t in racers {
        befores.push(t.await.unwrap());
    }
    befores.sort_unstable();
    assert_eq!(befores, [80, 85, 85, 85, 85, 85]);
}

/// A calendar change that counts: the summary of what is held, plus one.
#[derive(Debug)]
struct Increment {
    uid: String,
}

impl postgate_store::CalendarMerge for Increment {
    fn merge(
        &self,
        current: Option<&postgate_store::CalendarEntry>,
    ) -> postgate_store::MergeResult {
        let n: u32 = match current {
            None => 0,
            Some(c) => c
                .object
                .master
                .as_ref()
                .and_then(|m| m.summary.as_deref())
                .and_then(|s| s.parse().ok())
                .expect("a count"),
        };
        put_appointment(&self.uid, &(n + 1).to_string(), None)
    }
}

/// Two handles, two runners each, change one calendar object at once, each
/// change based on the version it read (a conflict: read again and retry),
/// while the same runners count up another object with merges that read
/// what is held: no change overwrites another, none is lost.
pub async fn concurrent_calendar_changes_from_two_handles_do_not_overwrite(h: &dyn Harness) {
    use postgate_types::ItemKind::Appointment;
    let a = fixture(h).await;
    let b = h.open().await;
    let alice = a
        .user(&addr("alice@example.org"))
        .await
        .unwrap()
        .unwrap()
        .id;
    let v0 = a
        .update_calendar(vec![update(alice, "x", None, Some(("v0", None)))])
        .await
        .unwrap()[0]
        .entry
        .clone()
        .unwrap();
    let mut tasks = Vec::new();
    for (n, s) in [&a, &b, &a, &b].into_iter().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // (the version a change was based on, the version it made)
            let mut made = Vec::new();
            for done in 0..10 {
                let counted = s
                    .update_calendar(vec![postgate_store::CalendarUpdate {
                        user: alice,
                        kind: Appointment,
                        uid: "n".into(),
                        merge: Arc::new(Increment { uid: "n".into() }),
                    }])
                    .await
                    .unwrap();
                assert!(counted[0].changed);
                let summary = format!("r{n}-{done}");
                loop {
                    let cur = s
                        .calendar_by_uid(alice, Appointment, "x")
                        .await
                        .unwrap()
                        .unwrap();
                    match s
                        .update_calendar(vec![update(
                            alice,
                            "x",
                            Some(cur.item_uid),
                            Some((&summary, None)),
                        )])
                        .await
                    {
                        Ok(out) => {
                            let e = out[0].entry.as_ref().unwrap();
                            assert_eq!(
                                e.object.master.as_ref().unwrap().summary.as_deref(),
                                Some(summary.as_str())
                            );
                            made.push((cur.item_uid, e.item_uid));
                            break;
                        }
                        // Changed meanwhile: read it again.
                        Err(StoreError::Conflict(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            made
        }));
    }
    let mut made = std::collections::BTreeMap::new();
    for t in tasks {
        for (from, to) in t.await.unwrap() {
            assert!(
                made.insert(from, to).is_none(),
                "two changes were based on version {from}: one overwrote the other"
            );
        }
    }
    // The 40 changes form one chain from v0 to what is held.
    let mut cur = v0.item_uid;
    for _ in 0..40 {
        cur = *made.get(&cur).expect("a change based on each version");
    }
    let x = b
        .calendar_by_uid(alice, Appointment, "x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x.item_uid, cur);
    assert_eq!(x.id, v0.id);
    let n = b
        .calendar_by_uid(alice, Appointment, "n")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        n.object.master.unwrap().summary.as_deref(),
        Some("40"),
        "every count counted"
    );
    // 81 versions stored, each but the last of each object replaced.
    let cal = a.folder(alice, "Calendar").await.unwrap().unwrap();
    assert_eq!(cal.uid_next, 82);
    let items = a.items(cal.id).await.unwrap();
    let mut held: Vec<u32> = items.iter().map(|i| i.uid).collect();
    held.sort_unstable();
    let mut expected = vec![x.item_uid, n.item_uid];
    expected.sort_unstable();
    assert_eq!(held, expected);
    assert_eq!(a.changes_since(cal.id, 0).await.unwrap().vanished.len(), 79);
}

/// Directory writes from two handles that collide (a user and an alias, or
/// a group, with one address; two groups): exactly one succeeds, the other
/// hears `Exists`, and what is held is the winner's.
pub async fn colliding_directory_writes_from_two_handles(h: &dyn Harness) {
    let a = fixture(h).await;
    let b = h.open().await;
    let bob = addr("bob@example.org");
    let mut groups = 0;
    for i in 0..10 {
        let name = format!("x{i}@example.org");
        let x = addr(&name);
        let ua = tokio::spawn({
            let (a, name) = (a.clone(), name.clone());
            async move { a.add_user(new_user(&name, "X", "X", &name)).await }
        });
        let ab = tokio::spawn({
            let (b, x, bob) = (b.clone(), x.clone(), bob.clone());
            async move { b.add_alias(&x, &bob).await }
        });
        let (ra, rb) = (ua.await.unwrap(), ab.await.unwrap());
        let held = b.user(&x).await.unwrap().expect("one of them").address;
        match (&ra, &rb) {
            (Ok(_), Err(StoreError::Exists(_))) => assert_eq!(held, x),
            (Err(StoreError::Exists(_)), Ok(())) => assert_eq!(held, bob),
            other => panic!("user and alias {name}: {other:?}"),
        }

        let name = format!("y{i}@example.org");
        let y = addr(&name);
        let (ga, gb) = (
            tokio::spawn({
                let (a, y) = (a.clone(), y.clone());
                async move { a.add_group(&y, "Y from a").await }
            }),
            tokio::spawn({
                let (b, y) = (b.clone(), y.clone());
                async move { b.add_group(&y, "Y from b").await }
            }),
        );
        let (ra, rb) = (ga.await.unwrap(), gb.await.unwrap());
        let winner = match (&ra, &rb) {
            (Ok(_), Err(StoreError::Exists(_))) => "Y from a",
            (Err(StoreError::Exists(_)), Ok(_)) => "Y from b",
            other => panic!("two groups {name}: {other:?}"),
        };
        groups += 1;
        let listed = a.list_groups(Some("example.org")).await.unwrap();
        let g: Vec<_> = listed.iter().filter(|g| g.address == y).collect();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].display_name, winner);

        let name = format!("z{i}@example.org");
        let z = addr(&name);
        let (ua, gb) = (
            tokio::spawn({
                let (b, name) = (b.clone(), name.clone());
                async move { b.add_user(new_user(&name, "Z", "Z", &name)).await }
            }),
            tokio::spawn({
                let (a, z) = (a.clone(), z.clone());
                async move { a.add_group(&z, "Z").await }
            }),
        );
        let (ru, rg) = (ua.await.unwrap(), gb.await.unwrap());
        match (&ru, &rg) {
            (Ok(_), Err(StoreError::Exists(_))) => {
                assert!(a.user(&z).await.unwrap().is_some())
            }
            (Err(StoreError::Exists(_)), Ok(_)) => {
                groups += 1;
                assert!(a.user(&z).await.unwrap().is_none())
            }
            other => panic!("user and group {name}: {other:?}"),
        }
    }
    assert_eq!(b.list_groups(None).await.unwrap().len(), groups);
}

/// Skips a case that needs what handles share; says so.
fn skip_unless_shared(h: &dyn Harness, case: &str) -> bool {
    if h.shared_across_handles() {
        return false;
    }
    eprintln!("{case}: skipped: this backend's handles do not share process state");
    true
}

/// A POP3 maildrop lock taken on one handle (node) is refused on another,
/// whoever asks, until it is released (RFC 1939 §8); raced from both, it
/// goes to exactly one session.
pub async fn maildrop_locks_across_handles(h: &dyn Harness) {
    if skip_unless_shared(h, "maildrop_locks_across_handles") {
        return;
    }
    let a = fixture(h).await;
    let b = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = a.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let inbox = a.folder(alice.id, "INBOX").await.unwrap().unwrap().id;
    assert!(a.lock_maildrop(inbox, "pop3:1").await.unwrap());
    assert!(!b.lock_maildrop(inbox, "pop3:2").await.unwrap());
    // The same session name on another node is another session.
    assert!(!b.lock_maildrop(inbox, "pop3:1").await.unwrap());
    b.unlock_maildrop(inbox, "pop3:1").await.unwrap();
    assert!(
        !b.lock_maildrop(inbox, "pop3:2").await.unwrap(),
        "another node's release does nothing"
    );
    a.unlock_maildrop(inbox, "pop3:1").await.unwrap();
    assert!(b.lock_maildrop(inbox, "pop3:2").await.unwrap());
    assert!(!a.lock_maildrop(inbox, "pop3:1").await.unwrap());
    b.unlock_maildrop(inbox, "pop3:2").await.unwrap();
    assert!(a.lock_maildrop(inbox, "pop3:1").await.unwrap());

    let bob_inbox = a.folder(bob.id, "INBOX").await.unwrap().unwrap().id;
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for (n, s) in [&a, &b, &a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let (s, barrier) = (s.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.lock_maildrop(bob_inbox, &format!("pop3:race{n}"))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one session holds the maildrop");
}

/// Waits up to 2 s for a change to `uid` on `feed`.
async fn heard(
    feed: &mut tokio::sync::broadcast::Receiver<postgate_types::Change>,
    uid: u32,
) -> Option<postgate_types::Change> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Err(_) => return None,
            Ok(Ok(c)) if c.uid == uid => return Some(c),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("change feed: {e}"),
        }
    }
}

/// A subscriber on one handle (node) hears what another commits: a
/// delivery, an append, a flag change, an expunge, each within 2 s.
pub async fn change_feed_crosses_handles(h: &dyn Harness) {
    use postgate_types::ChangeKind;
    if skip_unless_shared(h, "change_feed_crosses_handles") {
        return;
    }
    let a = fixture(h).await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = a.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let inbox = a.folder(alice.id, "INBOX").await.unwrap().unwrap().id;
    // A node that has just started: what it subscribes to from then on,
    // it hears.
    let b = h.open().await;
    let mut feed = b.changes().subscribe(inbox);
    let delivered = a
        .deliver(NewDelivery {
            content: postgate_mime_free_content(1),
            raw: b"Subject: m1\r\n\r\nbody\r\n".to_vec(),
            envelope: None,
            targets: vec![
                Target {
                    user: alice.id,
                    role: FolderRole::Inbox,
                    flags: Flags::default(),
                },
                Target {
                    user: bob.id,
                    role: FolderRole::Inbox,
                    flags: Flags::default(),
                },
            ],
            outbound: None,
            received_at: 1_700_000_000,
            calendar: Vec::new(),
        })
        .await
        .unwrap();
    let mine = delivered.iter().find(|d| d.folder == inbox).unwrap();
    let c = heard(&mut feed, mine.uid)
        .await
        .expect("another node's delivery heard within 2 s");
    assert_eq!(
        (c.folder, c.user, c.kind, c.modseq),
        (inbox, alice.id, ChangeKind::Append, mine.modseq)
    );
    let (_, uid) = a.append(inbox, msg("m2")).await.unwrap();
    let c = heard(&mut feed, uid)
        .await
        .expect("another node's append heard within 2 s");
    assert_eq!(c.kind, ChangeKind::Append);
    a.store_flags(inbox, vec![uid], FlagOp::Add, Flags::SEEN, vec![], None)
        .await
        .unwrap();
    let c = heard(&mut feed, uid)
        .await
        .expect("another node's flag change heard within 2 s");
    assert_eq!(c.kind, ChangeKind::Flags);
    a.expunge(inbox, vec![mine.uid]).await.unwrap();
    let c = heard(&mut feed, mine.uid)
        .await
        .expect("another node's expunge heard within 2 s");
    assert_eq!(c.kind, ChangeKind::Expunge);
    // Only the folder subscribed to: bob's copy was not heard here.
    while let Ok(c) = feed.try_recv() {
        assert_eq!(c.folder, inbox, "a change to another folder was heard");
    }
}

/// Metadata entries (IMAP METADATA, RFC 5464): per user and folder (or
/// the user's server entries), names case-insensitive, set and removed in
/// one commit, kept through a rename and gone with the folder.
pub async fn metadata_entries(h: &dyn Harness) {
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let f = s.create_folder(alice.id, "Notes").await.unwrap();
    let set = |n: &str, v: Option<&[u8]>| (n.to_string(), v.map(<[u8]>::to_vec));
    s.set_metadata(
        alice.id,
        Some(f.id),
        vec![
            set("/private/Comment", Some(b"mine")),
            set("/shared/comment", Some(b"\x00binary\xff")),
        ],
    )
    .await
    .unwrap();
    s.set_metadata(
        alice.id,
        None,
        vec![set("/private/comment", Some(b"server"))],
    )
    .await
    .unwrap();
    let got = s.metadata(alice.id, Some(f.id)).await.unwrap();
    assert_eq!(
        got,
        [
            ("/private/comment".to_string(), b"mine".to_vec()),
            ("/shared/comment".to_string(), b"\x00binary\xff".to_vec()),
        ]
    );
    assert_eq!(
        s.metadata(alice.id, None).await.unwrap(),
        [("/private/comment".to_string(), b"server".to_vec())]
    );
    assert!(s.metadata(bob.id, Some(f.id)).await.unwrap().is_empty());
    assert!(s.metadata(bob.id, None).await.unwrap().is_empty());
    // Replaced, and removed (by any case of the name).
    s.set_metadata(
        alice.id,
        Some(f.id),
        vec![
            set("/PRIVATE/COMMENT", Some(b"changed")),
            set("/Shared/Comment", None),
        ],
    )
    .await
    .unwrap();
    s.rename_folder(alice.id, "Notes", "Jottings")
        .await
        .unwrap();
    assert_eq!(
        s.metadata(alice.id, Some(f.id)).await.unwrap(),
        [("/private/comment".to_string(), b"changed".to_vec())]
    );
    s.delete_folder(alice.id, "Jottings").await.unwrap();
    assert!(s.metadata(alice.id, Some(f.id)).await.unwrap().is_empty());
    assert_eq!(s.metadata(alice.id, None).await.unwrap().len(), 1);
}

/// A subscriber to all of a user's changes (IMAP NOTIFY) hears item
/// changes in any of the user's folders and changes to the folder list and
/// subscriptions; on a shared store, from another handle (node) too.
pub async fn user_feed_hears_every_folder_and_the_list(h: &dyn Harness) {
    use postgate_types::ChangeKind;
    let a = fixture(h).await;
    let b = if h.shared_across_handles() {
        h.open().await
    } else {
        a.clone()
    };
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = a.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let mut feed = b.changes().subscribe_user(alice.id);
    async fn kind_of(
        feed: &mut tokio::sync::broadcast::Receiver<postgate_types::Change>,
    ) -> (ChangeKind, postgate_types::FolderId) {
        let c = tokio::time::timeout(std::time::Duration::from_secs(2), feed.recv())
            .await
            .expect("heard within 2 s")
            .expect("change feed");
        (c.kind, c.folder)
    }
    let made = a.create_folder(alice.id, "Fresh").await.unwrap();
    assert_eq!(kind_of(&mut feed).await.0, ChangeKind::Mailboxes);
    let (_, _) = a.append(made.id, msg("m1")).await.unwrap();
    assert_eq!(kind_of(&mut feed).await, (ChangeKind::Append, made.id));
    a.set_subscribed(alice.id, "Fresh", true).await.unwrap();
    assert_eq!(kind_of(&mut feed).await.0, ChangeKind::Subscriptions);
    a.rename_folder(alice.id, "Fresh", "Staler").await.unwrap();
    assert_eq!(kind_of(&mut feed).await.0, ChangeKind::Mailboxes);
    // Bob's changes are not Alice's.
    a.create_folder(bob.id, "Elsewhere").await.unwrap();
    a.delete_folder(alice.id, "Staler").await.unwrap();
    let mut kinds = vec![kind_of(&mut feed).await.0, kind_of(&mut feed).await.0];
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(kinds, [ChangeKind::Expunge, ChangeKind::Mailboxes]);
    assert!(feed.try_recv().is_err(), "nothing else heard");
}

/// `release_leases` (a node starting up) ends that node's claims only:
/// another node's leases hold.
pub async fn release_leases_leaves_other_handles_leases(h: &dyn Harness) {
    if skip_unless_shared(h, "release_leases_leaves_other_handles_leases") {
        return;
    }
    let a = fixture(h).await;
    let b = h.open().await;
    let alice = a.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let now = chrono_now();
    for i in 0..4 {
        let rcpts: Vec<String> = (0..3).map(|j| format!("r{j}@m{i}.test")).collect();
        a.deliver(outbound_delivery(
            alice.id,
            &format!("l{i}"),
            &rcpts,
            now - 10 + i,
        ))
        .await
        .unwrap();
    }
    let ids = |c: Vec<postgate_store::QueuedMessage>| -> std::collections::BTreeSet<i64> {
        c.iter()
            .flat_map(|m| m.rcpts.iter().map(|r| r.id))
            .collect()
    };
    let by_a = ids(a.claim_due(now, 600, 5).await.unwrap());
    let by_b = ids(b.claim_due(now, 600, 100).await.unwrap());
    assert_eq!((by_a.len(), by_b.len()), (5, 7));
    assert!(by_a.is_disjoint(&by_b));
    assert_eq!(a.release_leases().await.unwrap(), 5);
    assert_eq!(a.release_leases().await.unwrap(), 0);
    let depth = b.queue_depth().await.unwrap();
    assert_eq!((depth.due, depth.in_flight), (5, 7));
    // What a released is due again; what b holds is not.
    let again = ids(a.claim_due(chrono_now(), 600, 100).await.unwrap());
    assert_eq!(again, by_a);
    assert_eq!(b.release_leases().await.unwrap(), 7);
    assert_eq!(b.queue_depth().await.unwrap().in_flight, 5);
}

// ---- What the web console needs ----

/// Console administrators: granted (twice is fine, through an alias too),
/// listed in directory order by primary address, seen by another handle,
/// revoked (twice is fine), refused for no such user, and gone with the
/// user; every change bumps the directory generation.
pub async fn console_administrators(h: &dyn Harness) {
    let s = fixture(h).await;
    let other = h.open().await;
    s.add_domain("a.example").await.unwrap();
    s.add_user(new_user("zoe@a.example", "Zoe Adams", "Zoe", "Adams"))
        .await
        .unwrap();
    s.add_alias(&addr("a.smith@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    assert!(s.console_admins().await.unwrap().is_empty());
    assert!(!s.is_console_admin(alice.id).await.unwrap());

    let g0 = s.directory_generation().await.unwrap();
    s.set_console_admin(&addr("bob@example.org"), true)
        .await
        .unwrap();
    let g1 = s.directory_generation().await.unwrap();
    assert!(g1 > g0, "a grant bumps the directory generation");
    s.set_console_admin(&addr("bob@example.org"), true)
        .await
        .unwrap();
    s.set_console_admin(&addr("A.Smith@example.org"), true)
        .await
        .unwrap();
    s.set_console_admin(&addr("zoe@a.example"), true)
        .await
        .unwrap();
    let listed = |v: Vec<EmailAddress>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let all = ["zoe@a.example", "alice@example.org", "bob@example.org"];
    assert_eq!(listed(s.console_admins().await.unwrap()), all);
    assert_eq!(listed(other.console_admins().await.unwrap()), all);
    assert!(other.is_console_admin(alice.id).await.unwrap());
    assert!(other.is_console_admin(bob.id).await.unwrap());
    assert!(!other.is_console_admin(-1).await.unwrap());

    for admin in [true, false] {
        assert!(matches!(
            s.set_console_admin(&addr("nobody@example.org"), admin)
                .await,
            Err(StoreError::NotFound(_))
        ));
    }
    let g2 = s.directory_generation().await.unwrap();
    s.set_console_admin(&addr("alice@example.org"), false)
        .await
        .unwrap();
    assert!(s.directory_generation().await.unwrap() > g2);
    s.set_console_admin(&addr("alice@example.org"), false)
        .await
        .unwrap();
    assert!(!other.is_console_admin(alice.id).await.unwrap());
    assert_eq!(
        listed(other.console_admins().await.unwrap()),
        ["zoe@a.example", "bob@example.org"]
    );

    // Removing a user drops its grant; a new user at the address has none.
    other.remove_user(&addr("bob@example.org")).await.unwrap();
    assert_eq!(listed(s.console_admins().await.unwrap()), ["zoe@a.example"]);
    assert!(!s.is_console_admin(bob.id).await.unwrap());
    let bob2 = s
        .add_user(new_user("bob@example.org", "Bob Jones", "Bob", "Jones"))
        .await
        .unwrap();
    assert!(!s.is_console_admin(bob2.id).await.unwrap());
    assert_eq!(s.console_admins().await.unwrap().len(), 1);
}

/// User search: pages in directory order (domain, then local part) with
/// the total matching; text matched case-insensitively (Unicode too) in
/// the address or the display name; a domain filter; both together.
pub async fn user_search_pages_and_counts(h: &dyn Harness) {
    use postgate_store::UserFilter;
    let s = fixture(h).await;
    s.add_domain("example.net").await.unwrap();
    s.add_user(new_user("emile@example.net", "Émile Zola", "Émile", "Zola"))
        .await
        .unwrap();
    s.add_user(new_user(
        "zoe@example.net",
        "Zoë Ångström",
        "Zoë",
        "Ångström",
    ))
    .await
    .unwrap();
    for i in 0..25 {
        s.add_user(new_user(
            &format!("user{i:02}@example.net"),
            &format!("Test User {i:02}"),
            "Test",
            &format!("User{i:02}"),
        ))
        .await
        .unwrap();
    }
    s.add_alias(&addr("al@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    let find = |text: Option<&str>, domain: Option<&str>, offset: usize, limit: usize| {
        let s = s.clone();
        let filter = UserFilter {
            text: text.map(str::to_string),
            domain: domain.map(str::to_string),
        };
        async move {
            let (users, total) = s.find_users(filter, offset, limit).await.unwrap();
            let names: Vec<String> = users.iter().map(|u| u.address.to_string()).collect();
            (names, total)
        }
    };
    let mut everyone = vec!["emile@example.net".to_string()];
    everyone.extend((0..25).map(|i| format!("user{i:02}@example.net")));
    everyone.push("zoe@example.net".into());
    everyone.extend(["alice@example.org".into(), "bob@example.org".into()]);
    assert_eq!(find(None, None, 0, 100).await, (everyone.clone(), 29));
    assert_eq!(find(None, None, 0, 10).await, (everyone[..10].to_vec(), 29));
    assert_eq!(
        find(None, None, 20, 10).await,
        (everyone[20..].to_vec(), 29)
    );
    assert_eq!(find(None, None, 29, 10).await, (vec![], 29));
    assert_eq!(find(Some("  "), Some(""), 0, 3).await.1, 29, "blank: any");
    assert_eq!(
        s.list_users(None)
            .await
            .unwrap()
            .iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        everyone,
        "the order list_users has"
    );

    let one = |a: &str| (vec![a.to_string()], 1);
    for text in ["ÉMILE", "émile z", "zola"] {
        assert_eq!(
            find(Some(text), None, 0, 10).await,
            one("emile@example.net")
        );
    }
    for text in ["ångström", "ÅNGSTRÖM", "zoë"] {
        assert_eq!(find(Some(text), None, 0, 10).await, one("zoe@example.net"));
    }
    assert_eq!(
        find(Some("E.ORG"), None, 0, 10).await,
        (
            vec!["alice@example.org".into(), "bob@example.org".into()],
            2
        ),
        "a piece of the address"
    );
    assert_eq!(
        find(Some("Smith"), None, 0, 10).await,
        one("alice@example.org")
    );
    assert_eq!(find(Some("nobody at all"), None, 0, 10).await, (vec![], 0));
    let (page, total) = find(Some("user1"), None, 0, 3).await;
    assert_eq!((page.len(), total), (3, 10));
    assert_eq!(page[0], "user10@example.net");
    let (page, total) = find(Some("USER 2"), None, 2, 10).await;
    assert_eq!(
        (page, total),
        (
            vec![
                "user22@example.net".into(),
                "user23@example.net".into(),
                "user24@example.net".into()
            ],
            5
        ),
        "a piece of the display name, paged"
    );

    assert_eq!(
        find(None, Some("Example.ORG"), 0, 10).await,
        (
            vec!["alice@example.org".into(), "bob@example.org".into()],
            2
        )
    );
    assert_eq!(
        find(Some("example.net"), Some("example.org"), 0, 10).await,
        (vec![], 0)
    );
    assert_eq!(
        find(Some("o"), Some("example.org"), 1, 10).await,
        (vec!["bob@example.org".into()], 2)
    );
    assert_eq!(find(None, Some("nowhere.test"), 0, 10).await, (vec![], 0));

    // The users come whole, aliases too.
    let (users, _) = s
        .find_users(
            UserFilter {
                text: Some("alice".into()),
                domain: None,
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(users[0].aliases, [addr("al@example.org")]);
    assert_eq!(
        users[0],
        s.user(&addr("alice@example.org")).await.unwrap().unwrap()
    );
}

/// Editing a user's details: each field set, kept or cleared as asked,
/// seen by another handle and by searches, through an alias too; a blank
/// display name and an unknown user refused; every edit bumps the
/// directory generation.
pub async fn user_update(h: &dyn Harness) {
    use postgate_store::{UserFilter, UserUpdate};
    let s = fixture(h).await;
    let other = h.open().await;
    let alice = addr("alice@example.org");
    let g0 = s.directory_generation().await.unwrap();
    let u = s
        .update_user(
            &alice,
            UserUpdate {
                title: Some(Some("CTO".into())),
                phone: Some(Some(" +1 555 0100 ".into())),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            u.display_name.as_str(),
            u.title.as_deref(),
            u.department.as_deref(),
            u.phone.as_deref()
        ),
        ("Alice Smith", Some("CTO"), None, Some("+1 555 0100"))
    );
    let g1 = s.directory_generation().await.unwrap();
    assert!(g1 > g0, "an edit bumps the directory generation");
    assert_eq!(other.user(&alice).await.unwrap().unwrap(), u);

    s.add_alias(&addr("a.smith@example.org"), &alice)
        .await
        .unwrap();
    let u = other
        .update_user(
            &addr("A.Smith@example.org"),
            UserUpdate {
                display_name: Some("  Alice Jones-Smith ".into()),
                department: Some(Some("R&D".into())),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.address, alice);
    assert_eq!(
        (
            u.display_name.as_str(),
            u.title.as_deref(),
            u.department.as_deref()
        ),
        ("Alice Jones-Smith", Some("CTO"), Some("R&D"))
    );
    assert_eq!(u.aliases, [addr("a.smith@example.org")]);
    assert!(s.directory_generation().await.unwrap() > g1);
    // Searches see the new name, and not the old one.
    let (found, total) = s
        .find_users(
            UserFilter {
                text: Some("JONES".into()),
                domain: None,
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        found
            .iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        ["alice@example.org", "bob@example.org"]
    );
    let (_, total) = s
        .find_users(
            UserFilter {
                text: Some("alice smith".into()),
                domain: None,
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 0);

    let u = s
        .update_user(
            &alice,
            UserUpdate {
                title: Some(None),
                phone: Some(Some("   ".into())),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.title, u.phone, u.department.as_deref()),
        (None, None, Some("R&D"))
    );
    // Nothing asked, nothing changed (but for the generation).
    let g2 = s.directory_generation().await.unwrap();
    let same = s.update_user(&alice, UserUpdate::default()).await.unwrap();
    assert_eq!(same, s.user(&alice).await.unwrap().unwrap());
    assert!(s.directory_generation().await.unwrap() > g2);

    assert!(matches!(
        s.update_user(
            &alice,
            UserUpdate {
                display_name: Some(" ".into()),
                ..UserUpdate::default()
            }
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.user(&alice).await.unwrap().unwrap().display_name,
        "Alice Jones-Smith"
    );
    assert!(matches!(
        s.update_user(&addr("nobody@example.org"), UserUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A queue entry from `from` to `rcpts`, queued at `created`.
fn queued(sender: postgate_types::UserId, from: &str, rcpts: &[&str], created: i64) -> NewDelivery {
    let rcpts: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
    let mut d = outbound_delivery(sender, &format!("{from} {created}"), &rcpts, created);
    if let Some(o) = d.outbound.as_mut() {
        o.mail_from = from.into();
    }
    d
}

/// The console's queue page: entries in id order with the total matching,
/// by recipient state (as the queue's depth names them), by recipient
/// domain (the one recipient matching both when both are given), by sender
/// and by age; each entry with all its recipients.
pub async fn queue_page_filters_and_counts(h: &dyn Harness) {
    use postgate_store::{QueueDepth, QueueFilter, RcptOutcome};
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let now = chrono_now();
    for (from, rcpts, age) in [
        (
            "Alice@Example.org",
            &["a@gmail.com", "b@yahoo.com"][..],
            5000,
        ),
        ("bob@example.org", &["c@gmail.com"][..], 4000),
        ("", &["d@hotmail.com"][..], 3000),
        (
            "carol@Shop.example",
            &["e@yahoo.com", "f@gmail.com"][..],
            2000,
        ),
        ("alice@example.org", &["g@GMAIL.com"][..], 1000),
    ] {
        s.deliver(queued(alice.id, from, rcpts, now - age))
            .await
            .unwrap();
    }
    let ids: Vec<i64> = s.queue_list().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 5);
    // a@gmail.com is being tried; b@yahoo.com was tried and waits; the
    // entry to hotmail is held; the others are due.
    let claimed = s.claim_due(now, 600, 1).await.unwrap();
    assert_eq!(claimed[0].rcpts[0].address, "a@gmail.com");
    let claimed = s.claim_due(now, 600, 1).await.unwrap();
    assert_eq!(claimed[0].rcpts[0].address, "b@yahoo.com");
    s.record(vec![(
        claimed[0].rcpts[0].id,
        RcptOutcome::Retry {
            at: now + 300,
            error: "451 later".into(),
            delay_warned: false,
        },
    )])
    .await
    .unwrap();
    assert_eq!(s.queue_hold(Some(ids[2]), true).await.unwrap(), 1);
    assert_eq!(
        s.queue_depth().await.unwrap(),
        QueueDepth {
            due: 4,
            deferred: 1,
            in_flight: 1,
            held: 1,
            oldest: Some(now - 5000),
        }
    );

    let page = |filter: QueueFilter, offset: usize, limit: usize| {
        let s = s.clone();
        async move {
            let (entries, total) = s.queue_page(filter, offset, limit).await.unwrap();
            (entries.iter().map(|m| m.id).collect::<Vec<_>>(), total)
        }
    };
    let pick = |n: &[usize]| n.iter().map(|&i| ids[i]).collect::<Vec<_>>();
    let all = QueueFilter::default();
    assert_eq!(page(all.clone(), 0, 100).await, (ids.clone(), 5));
    assert_eq!(page(all.clone(), 0, 2).await, (pick(&[0, 1]), 5));
    assert_eq!(page(all.clone(), 2, 2).await, (pick(&[2, 3]), 5));
    assert_eq!(page(all.clone(), 4, 2).await, (pick(&[4]), 5));
    assert_eq!(page(all.clone(), 9, 2).await, (vec![], 5));

    // Each entry with all its recipients, as queue_get has them.
    let (entries, _) = s.queue_page(all.clone(), 0, 1).await.unwrap();
    let got = s.queue_get(ids[0]).await.unwrap().unwrap();
    let states = |m: &postgate_store::QueuedMessage| {
        m.rcpts
            .iter()
            .map(|r| (r.id, r.address.clone(), r.status.clone(), r.attempts))
            .collect::<Vec<_>>()
    };
    assert_eq!(states(&entries[0]), states(&got));
    assert_eq!(entries[0].rcpts.len(), 2);
    assert_eq!(entries[0].outbound.mail_from, "Alice@Example.org");
    assert_eq!(entries[0].created, now - 5000);
    assert_eq!(entries[0].message, got.message);

    let state = |name: &str| QueueFilter {
        state: Some(name.into()),
        ..QueueFilter::default()
    };
    assert_eq!(page(state("due"), 0, 10).await, (pick(&[1, 3, 4]), 3));
    assert_eq!(page(state("due"), 1, 1).await, (pick(&[3]), 3));
    assert_eq!(page(state("deferred"), 0, 10).await, (pick(&[0]), 1));
    assert_eq!(page(state("in_flight"), 0, 10).await, (pick(&[0]), 1));
    assert_eq!(page(state("sending"), 0, 10).await, (pick(&[0]), 1));
    assert_eq!(page(state("held"), 0, 10).await, (pick(&[2]), 1));
    assert_eq!(page(state(""), 0, 10).await, (ids.clone(), 5), "blank: any");
    assert!(matches!(
        s.queue_page(state("bogus"), 0, 10).await,
        Err(StoreError::Invalid(_))
    ));

    let domain = |d: &str| QueueFilter {
        domain: Some(d.into()),
        ..QueueFilter::default()
    };
    assert_eq!(
        page(domain("gmail.com"), 0, 10).await,
        (pick(&[0, 1, 3, 4]), 4)
    );
    assert_eq!(
        page(domain("GMAIL.COM"), 0, 10).await,
        (pick(&[0, 1, 3, 4]), 4)
    );
    assert_eq!(page(domain("yahoo.com"), 0, 10).await, (pick(&[0, 3]), 2));
    assert_eq!(page(domain("mail.com"), 0, 10).await, (vec![], 0), "exact");
    let both = |st: &str, d: &str| QueueFilter {
        state: Some(st.into()),
        domain: Some(d.into()),
        ..QueueFilter::default()
    };
    // b@yahoo.com (entry 0) is deferred: due at yahoo.com is entry 3 only.
    assert_eq!(page(both("due", "yahoo.com"), 0, 10).await, (pick(&[3]), 1));
    assert_eq!(
        page(both("deferred", "yahoo.com"), 0, 10).await,
        (pick(&[0]), 1)
    );
    assert_eq!(
        page(both("in_flight", "yahoo.com"), 0, 10).await,
        (vec![], 0)
    );

    let sender = |t: &str| QueueFilter {
        sender: Some(t.into()),
        ..QueueFilter::default()
    };
    assert_eq!(page(sender("ALICE"), 0, 10).await, (pick(&[0, 4]), 2));
    assert_eq!(page(sender("shop.EX"), 0, 10).await, (pick(&[3]), 1));
    assert_eq!(page(sender("nobody"), 0, 10).await, (vec![], 0));

    let before = |t: i64| QueueFilter {
        created_before: Some(t),
        ..QueueFilter::default()
    };
    assert_eq!(page(before(now - 2500), 0, 10).await, (pick(&[0, 1, 2]), 3));
    assert_eq!(
        page(before(now - 5000), 0, 10).await,
        (vec![], 0),
        "strictly before"
    );
    assert_eq!(page(before(now), 0, 10).await, (ids.clone(), 5));

    let mixed = QueueFilter {
        state: Some("due".into()),
        domain: Some("gmail.com".into()),
        sender: Some("example.org".into()),
        created_before: Some(now - 1500),
    };
    assert_eq!(page(mixed, 0, 10).await, (pick(&[1]), 1));
    let mixed = QueueFilter {
        sender: Some("alice".into()),
        created_before: Some(now - 2500),
        ..QueueFilter::default()
    };
    assert_eq!(page(mixed, 0, 10).await, (pick(&[0]), 1));

    // A removed entry is gone from the pages and the counts.
    assert!(s.queue_remove(ids[1]).await.unwrap());
    assert_eq!(page(state("due"), 0, 10).await, (pick(&[3, 4]), 2));
    assert_eq!(page(all, 0, 10).await.1, 4);
}

/// Statistics history: per-minute increments add up per (minute, node,
/// counter), sum over nodes and buckets (aligned to the bucket, the first
/// one whole), in order of time then name; pruning deletes by age.
pub async fn stats_history_sums_nodes_and_buckets(h: &dyn Harness) {
    use postgate_store::StatPoint;
    let a = h.open().await;
    let b = h.open().await;
    let m0 = 1_700_000_000 - 1_700_000_000 % 3600;
    let d = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(n, x)| (n.to_string(), *x)).collect()
    };
    a.record_stats(
        m0,
        "node-a",
        d(&[("messages_in", 3), ("logins_ok", 1), ("messages_in", 2)]),
    )
    .await
    .unwrap();
    // Within the minute: the same minute.
    a.record_stats(m0 + 59, "node-a", d(&[("messages_in", 1)]))
        .await
        .unwrap();
    b.record_stats(m0, "node-b", d(&[("messages_in", 10)]))
        .await
        .unwrap();
    b.record_stats(m0 + 60, "node-b", d(&[("bytes_in", 1000)]))
        .await
        .unwrap();
    a.record_stats(m0 + 300, "node-a", d(&[("messages_in", 7)]))
        .await
        .unwrap();
    a.record_stats(m0 + 3600, "node-a", d(&[("messages_in", 1)]))
        .await
        .unwrap();
    a.record_stats(m0 + 3600, "node-a", Vec::new())
        .await
        .unwrap();
    let p = |at: i64, name: &str, value: u64| StatPoint {
        at,
        name: name.into(),
        value,
    };
    let minutes = vec![
        p(m0, "logins_ok", 1),
        p(m0, "messages_in", 16),
        p(m0 + 60, "bytes_in", 1000),
        p(m0 + 300, "messages_in", 7),
        p(m0 + 3600, "messages_in", 1),
    ];
    assert_eq!(a.stats_history(m0, 60).await.unwrap(), minutes);
    assert_eq!(b.stats_history(0, 60).await.unwrap(), minutes);
    let fives = vec![
        p(m0, "bytes_in", 1000),
        p(m0, "logins_ok", 1),
        p(m0, "messages_in", 16),
        p(m0 + 300, "messages_in", 7),
        p(m0 + 3600, "messages_in", 1),
    ];
    assert_eq!(b.stats_history(m0, 300).await.unwrap(), fives);
    assert_eq!(
        b.stats_history(m0 + 120, 300).await.unwrap(),
        fives,
        "the bucket holding `since` comes whole"
    );
    assert_eq!(
        a.stats_history(m0 + 301, 60).await.unwrap(),
        minutes[3..].to_vec()
    );
    assert_eq!(
        a.stats_history(m0, 3600).await.unwrap(),
        vec![
            p(m0, "bytes_in", 1000),
            p(m0, "logins_ok", 1),
            p(m0, "messages_in", 23),
            p(m0 + 3600, "messages_in", 1),
        ]
    );
    assert!(a.stats_history(m0 + 7200, 60).await.unwrap().is_empty());
    for bad in [0, -60, 90] {
        assert!(matches!(
            a.stats_history(m0, bad).await,
            Err(StoreError::Invalid(_))
        ));
    }

    assert_eq!(b.prune_stats(m0 + 300).await.unwrap(), 4);
    assert_eq!(b.prune_stats(m0 + 300).await.unwrap(), 0);
    assert_eq!(a.stats_history(0, 60).await.unwrap(), minutes[3..].to_vec());
    // What is recorded after pruning adds up from nothing.
    a.record_stats(m0, "node-a", d(&[("messages_in", 2)]))
        .await
        .unwrap();
    assert_eq!(
        a.stats_history(m0, 60).await.unwrap()[0],
        p(m0, "messages_in", 2)
    );
}

/// DKIM keys: added under (domain, selector) once, listed in order (all or
/// by domain) with their bytes as given, seen by another handle, removed.
pub async fn dkim_keys_add_list_remove(h: &dyn Harness) {
    use postgate_store::{DkimAlgorithm, DkimKey};
    let a = h.open().await;
    let b = h.open().await;
    let key = |domain: &str, selector: &str, algorithm, bytes: &[u8]| DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
        private_key: Secret::new(bytes.to_vec()),
        created: 0,
    };
    assert!(a.dkim_keys(None).await.unwrap().is_empty());
    let before = chrono_now();
    let added = a
        .add_dkim_key(key(
            "Example.ORG.",
            "PG202601R",
            DkimAlgorithm::RsaSha256,
            &[0, 1, 2, 255],
        ))
        .await
        .unwrap();
    assert_eq!(
        (added.domain.as_str(), added.selector.as_str()),
        ("example.org", "pg202601r"),
        "stored lower case, without the final dot"
    );
    assert!(added.created >= before && added.created <= chrono_now() + 1);
    a.add_dkim_key(key(
        "example.org",
        "pg202601e",
        DkimAlgorithm::Ed25519Sha256,
        &[9; 48],
    ))
    .await
    .unwrap();
    a.add_dkim_key(key(
        "another.test",
        "s1",
        DkimAlgorithm::Ed25519Sha256,
        &[7; 48],
    ))
    .await
    .unwrap();
    // The primary key is (domain, selector), case-folded.
    assert!(matches!(
        b.add_dkim_key(key(
            "example.org",
            "PG202601E",
            DkimAlgorithm::RsaSha256,
            &[1]
        ))
        .await,
        Err(StoreError::Exists(_))
    ));
    for bad in [
        key("example.org", "", DkimAlgorithm::RsaSha256, &[1]),
        key("example.org", "a b", DkimAlgorithm::RsaSha256, &[1]),
        key("example.org", "-x", DkimAlgorithm::RsaSha256, &[1]),
        key("not a domain", "s", DkimAlgorithm::RsaSha256, &[1]),
        key("example.org", "s", DkimAlgorithm::RsaSha256, &[]),
    ] {
        assert!(
            matches!(
                b.add_dkim_key(bad.clone()).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    let all = b.dkim_keys(None).await.unwrap();
    let names: Vec<(&str, &str, DkimAlgorithm)> = all
        .iter()
        .map(|k| (k.domain.as_str(), k.selector.as_str(), k.algorithm))
        .collect();
    assert_eq!(
        names,
        [
            ("another.test", "s1", DkimAlgorithm::Ed25519Sha256),
            ("example.org", "pg202601e", DkimAlgorithm::Ed25519Sha256),
            ("example.org", "pg202601r", DkimAlgorithm::RsaSha256),
        ]
    );
    assert_eq!(all[2].private_key.expose(), &[0, 1, 2, 255]);
    assert_eq!(all[1].private_key.expose(), &[9; 48]);
    let one = b.dkim_keys(Some("EXAMPLE.org")).await.unwrap();
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|k| k.domain == "example.org"));
    assert!(b.dkim_keys(Some("nowhere.test")).await.unwrap().is_empty());
    assert!(b.remove_dkim_key("example.org", "PG202601R").await.unwrap());
    assert!(!a.remove_dkim_key("example.org", "pg202601r").await.unwrap());
    let left: Vec<String> = a
        .dkim_keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| format!("{}/{}", k.domain, k.selector))
        .collect();
    assert_eq!(left, ["another.test/s1", "example.org/pg202601e"]);
}

/// `create_folder_for` with a role (RFC 6154 §3 CREATE … USE): the new
/// folder has the role and the folder that had it no longer does; a name
/// taken is Exists and changes no role.
pub async fn created_with_a_role(h: &dyn Harness) {
    let s = fixture(h).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let role_of = |fs: &[postgate_store::Folder], p: &str| {
        fs.iter()
            .find(|f| f.path.eq_ignore_ascii_case(p))
            .unwrap_or_else(|| panic!("{p}"))
            .role
    };
    let before = s.folders(alice.id).await.unwrap();
    assert_eq!(role_of(&before, "Junk"), Some(FolderRole::Junk));
    let f = s
        .create_folder_for(alice.id, "Spam/Caught", Some(FolderRole::Junk))
        .await
        .unwrap();
    assert_eq!(f.role, Some(FolderRole::Junk));
    let after = s.folders(alice.id).await.unwrap();
    assert_eq!(role_of(&after, "Junk"), None);
    assert_eq!(role_of(&after, "Spam"), None);
    assert_eq!(role_of(&after, "Spam/Caught"), Some(FolderRole::Junk));
    assert_eq!(
        after
            .iter()
            .filter(|f| f.role == Some(FolderRole::Junk))
            .count(),
        1
    );
    assert!(matches!(
        s.create_folder_for(alice.id, "Junk", Some(FolderRole::Junk))
            .await,
        Err(StoreError::Exists(_))
    ));
    let again = s.folders(alice.id).await.unwrap();
    assert_eq!(role_of(&again, "Spam/Caught"), Some(FolderRole::Junk));
    assert_eq!(role_of(&again, "Junk"), None);
}
