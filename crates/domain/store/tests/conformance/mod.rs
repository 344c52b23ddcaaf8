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
}

/// One `#[tokio::test]` per case, over the harness `$make` builds.
#[macro_export]
macro_rules! suite {
    ($make:expr) => {
        #[tokio::test]
        async fn access_rules_and_their_precedence() {
            {
                let h = $make;
                if h.available() {
                    conformance::access_rules_and_their_precedence(&h).await
                }
            }
        }
        #[tokio::test]
        async fn maildrop_locks() {
            {
                let h = $make;
                if h.available() {
                    conformance::maildrop_locks(&h).await
                }
            }
        }
        #[tokio::test]
        async fn directory_resolution() {
            {
                let h = $make;
                if h.available() {
                    conformance::directory_resolution(&h).await
                }
            }
        }
        #[tokio::test]
        async fn passwords() {
            {
                let h = $make;
                if h.available() {
                    conformance::passwords(&h).await
                }
            }
        }
        #[tokio::test]
        async fn concurrent_deliveries_share_blobs_and_get_increasing_uids() {
            {
                let h = $make;
                if h.available() {
                    conformance::concurrent_deliveries_share_blobs_and_get_increasing_uids(&h).await
                }
            }
        }
        #[tokio::test]
        async fn resolution_cache_follows_other_processes() {
            {
                let h = $make;
                if h.available() {
                    conformance::resolution_cache_follows_other_processes(&h).await
                }
            }
        }
        #[tokio::test]
        async fn delivery_to_vanished_users_is_refused_not_lost() {
            {
                let h = $make;
                if h.available() {
                    conformance::delivery_to_vanished_users_is_refused_not_lost(&h).await
                }
            }
        }
        #[tokio::test]
        async fn imap_operations() {
            {
                let h = $make;
                if h.available() {
                    conformance::imap_operations(&h).await
                }
            }
        }
        #[tokio::test]
        async fn authenticator_caches_successes_only() {
            {
                let h = $make;
                if h.available() {
                    conformance::authenticator_caches_successes_only(&h).await
                }
            }
        }
        #[tokio::test]
        async fn outbound_queue_claims_leases_and_settles() {
            {
                let h = $make;
                if h.available() {
                    conformance::outbound_queue_claims_leases_and_settles(&h).await
                }
            }
        }
        #[tokio::test]
        async fn calendar_objects_items_and_time_range_index() {
            {
                let h = $make;
                if h.available() {
                    conformance::calendar_objects_items_and_time_range_index(&h).await
                }
            }
        }
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
    }
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
