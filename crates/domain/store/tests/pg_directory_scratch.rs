//! Scratch tests for the PostgreSQL store's Directory and AccessRules, until
//! the whole conformance suite can run against it (Mailboxes, Queue and
//! Calendars are still to come). Each test makes its own database on the
//! server at `POSTGATE_TEST_PG` (default `postgres://postgate@127.0.0.1:44239`),
//! and drops it when the test passes.
use async_trait::async_trait;
use postgate_store::postgres::{PgOptions, PgStore};
use postgate_store::*;
use postgate_types::access::{Assignee, Block, ClassSettings, Direction};
use postgate_types::{EmailAddress, Flags, FolderId, ItemContent, ItemKind, Secret, UserId};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn server_url() -> String {
    std::env::var("POSTGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgate@127.0.0.1:44239".into())
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    client
}

/// A fresh database; dropped when the test ends well.
struct Db {
    name: String,
}

impl Db {
    async fn new() -> Db {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "dirtest_{}_{}_{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Db { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// Another node on this database.
    async fn open(&self) -> PgStore {
        PgStore::open(&PgOptions {
            url: self.url(),
            pool_size: 4,
            node: format!("n{}", N2.fetch_add(1, Ordering::Relaxed)),
            ca_file: None,
        })
        .await
        .unwrap()
    }

    /// A node as the whole store (`Arc<dyn Store>`), for the policy.
    async fn open_dyn(&self) -> Arc<dyn Store> {
        Arc::new(Node(self.open().await, ChangeFeed::default()))
    }

    /// A plain connection, to look at rows directly.
    async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    async fn drop(self) {
        admin()
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

static N2: AtomicUsize = AtomicUsize::new(0);

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

async fn fixture<S: Directory + ?Sized>(store: &S) {
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
}

fn users(r: Resolution) -> Vec<String> {
    match r {
        Resolution::Users(u) => u.into_iter().map(|u| u.address.to_string()).collect(),
        other => panic!("expected users, got {other:?}"),
    }
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(e) => format!("{e:?}"),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ---- The conformance cases that need only the directory and access rules ----

#[tokio::test]
async fn directory_resolution() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
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
    drop(s);
    db.drop().await;
}

#[tokio::test]
async fn passwords() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
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
    // By alias, and after clearing.
    s.add_alias(&addr("al@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    assert!(
        s.authenticate(&addr("AL@example.org"), &Secret::new("s3cret".into()))
            .await
            .unwrap()
            .is_some()
    );
    let (u, h) = s
        .credentials(&addr("al@example.org"))
        .await
        .unwrap()
        .unwrap();
    assert!(u.has_password && h.is_some());
    s.set_password_hash(&addr("alice@example.org"), None)
        .await
        .unwrap();
    let (u, h) = s
        .credentials(&addr("alice@example.org"))
        .await
        .unwrap()
        .unwrap();
    assert!(!u.has_password && h.is_none());
    assert!(
        s.credentials(&addr("zed@example.org"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        err_text(s.set_password_hash(&addr("zed@example.org"), None).await),
        r#"NotFound("user zed@example.org")"#
    );
    drop(s);
    db.drop().await;
}

#[tokio::test]
async fn resolution_cache_follows_other_processes() {
    let db = Db::new().await;
    let server = db.open().await;
    fixture(&server).await;
    let alice = addr("alice@example.org");
    assert!(matches!(
        server.resolve(&alice).await.unwrap(),
        Resolution::Users(_)
    ));
    // Another node: another store on the same database, its own cache.
    let cli = db.open().await;
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
    drop((server, cli));
    db.drop().await;
}

#[tokio::test]
async fn access_rules_and_their_precedence() {
    use postgate_store::access::Policy;
    let db = Db::new().await;
    let s = db.open_dyn().await;
    fixture(&*s).await;
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
    let mut deny = ClassSettings::default();
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
    let other = Policy::new(db.open_dyn().await);
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
    drop((s, policy, other));
    db.drop().await;
}

// ---- Every Directory method, with the embedded store's messages ----

#[tokio::test]
async fn domains() {
    let db = Db::new().await;
    let s = db.open().await;
    let g0 = s.directory_generation().await.unwrap();
    let d = s.add_domain(" Example.ORG. ").await.unwrap();
    assert_eq!(d.name, "example.org");
    assert_eq!(d.post_offices, ["main"]);
    assert_eq!(d.users, 0);
    assert!(s.directory_generation().await.unwrap() > g0);
    assert_eq!(
        err_text(s.add_domain("example.org").await),
        r#"Exists("domain example.org")"#
    );
    assert_eq!(
        err_text(s.add_domain("bad_domain!").await),
        r#"Invalid("not a domain name: \"bad_domain!\"")"#
    );
    assert!(matches!(
        s.add_domain("-x.org").await,
        Err(StoreError::Invalid(_))
    ));
    s.add_domain("b.example").await.unwrap();
    assert!(s.is_local_domain("EXAMPLE.org.").await.unwrap());
    assert!(!s.is_local_domain("other.org").await.unwrap());
    s.add_user(new_user("a@example.org", "A", "A", "A"))
        .await
        .unwrap();
    s.add_user(NewUser {
        post_office: Some("second".into()),
        ..new_user("b@example.org", "B", "B", "B")
    })
    .await
    .unwrap();
    let list = s.list_domains().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|d| (d.name.as_str(), d.post_offices.clone(), d.users))
            .collect::<Vec<_>>(),
        [
            ("b.example", vec!["main".to_string()], 0),
            (
                "example.org",
                vec!["main".to_string(), "second".to_string()],
                2
            ),
        ]
    );
    assert_eq!(
        err_text(s.remove_domain("example.org").await),
        r#"Invalid("domain example.org still has 2 users; remove them first")"#
    );
    assert_eq!(
        err_text(s.remove_domain("nowhere.org").await),
        r#"NotFound("domain nowhere.org")"#
    );
    s.add_alias(&addr("x@b.example"), &addr("a@example.org"))
        .await
        .unwrap();
    assert_eq!(
        err_text(s.remove_domain("B.example").await),
        r#"Invalid("domain b.example still has 1 aliases; remove them first")"#
    );
    s.remove_alias(&addr("x@b.example")).await.unwrap();
    s.add_group(&addr("g@b.example"), "G").await.unwrap();
    assert_eq!(
        err_text(s.remove_domain("b.example").await),
        r#"Invalid("domain b.example still has 1 groups; remove them first")"#
    );
    s.remove_group(&addr("g@b.example")).await.unwrap();
    s.remove_domain(" B.Example").await.unwrap();
    assert!(!s.is_local_domain("b.example").await.unwrap());
    assert_eq!(s.list_domains().await.unwrap().len(), 1);
    drop(s);
    db.drop().await;
}

#[tokio::test]
async fn users_and_their_folders() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
    assert_eq!(
        err_text(s.add_user(new_user("x@nowhere.org", "X", "X", "X")).await),
        r#"NotFound("domain nowhere.org")"#
    );
    assert_eq!(
        err_text(
            s.add_user(new_user("ALICE@example.org", "X", "X", "X"))
                .await
        ),
        r#"Exists("user ALICE@example.org")"#
    );
    assert_eq!(
        err_text(
            s.add_user(new_user("new@example.org", "  ", "X", "X"))
                .await
        ),
        r#"Invalid("a user needs a display name")"#
    );
    let carol = s
        .add_user(NewUser {
            address: addr("Carol.Ann@example.org"),
            post_office: Some("north".into()),
            display_name: " Carol Ann Lee ".into(),
            given_name: Some("Carol Ann".into()),
            surname: Some("Lee".into()),
            title: Some("Boss".into()),
            department: Some("Ops".into()),
            phone: Some("123".into()),
            password_hash: Some(postgate_store::password::hash("pw").unwrap()),
        })
        .await
        .unwrap();
    assert_eq!(carol.address.to_string(), "Carol.Ann@example.org");
    assert_eq!(carol.post_office, "north");
    assert_eq!(carol.display_name, "Carol Ann Lee");
    assert_eq!(carol.title.as_deref(), Some("Boss"));
    assert_eq!(carol.department.as_deref(), Some("Ops"));
    assert_eq!(carol.phone.as_deref(), Some("123"));
    assert!(carol.has_password);
    assert!(carol.aliases.is_empty());
    // First.Last with inner spaces as dots.
    assert_eq!(
        users(s.resolve(&addr("carol.ann.lee@example.org")).await.unwrap()),
        ["Carol.Ann@example.org"]
    );
    assert_eq!(
        s.authenticate(&addr("carol.ann@example.org"), &Secret::new("pw".into()))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(carol.id)
    );

    // The standard folders, each with a distinct UIDVALIDITY, subscribed.
    let sql = db.sql().await;
    let rows = sql
        .query(
            "SELECT path, path_key, role, uid_validity FROM folder WHERE user_id = $1 ORDER BY id",
            &[&carol.id],
        )
        .await
        .unwrap();
    let folders: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(String, String, Option<String>)> = postgate_types::FolderRole::ALL
        .iter()
        .map(|r| {
            (
                r.default_name().to_string(),
                r.default_name().to_lowercase(),
                Some(r.as_str().to_string()),
            )
        })
        .collect();
    assert_eq!(folders, expected);
    let mut validities: Vec<i64> = rows.iter().map(|r| r.get(3)).collect();
    validities.dedup();
    assert_eq!(validities.len(), expected.len());
    assert!(validities.windows(2).all(|w| w[0] < w[1]));
    let subs: Vec<String> = sql
        .query(
            "SELECT path FROM subscription WHERE user_id = $1 ORDER BY path_key",
            &[&carol.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut names: Vec<String> = postgate_types::FolderRole::ALL
        .iter()
        .map(|r| r.default_name().to_string())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(subs, names);

    // Lookups.
    let alice = s.user(&addr("Alice@Example.org")).await.unwrap().unwrap();
    assert_eq!(s.user_by_id(alice.id).await.unwrap().unwrap(), alice);
    assert!(s.user_by_id(9_999_999).await.unwrap().is_none());
    assert!(s.user(&addr("nobody@example.org")).await.unwrap().is_none());
    assert!(s.user(&addr("alice@nowhere.org")).await.unwrap().is_none());

    // Aliases, here and in another local domain.
    s.add_domain("other.net").await.unwrap();
    s.add_alias(&addr("zz@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_alias(&addr("Ally@other.net"), &addr("ALICE@example.org"))
        .await
        .unwrap();
    s.add_alias(&addr("aa@example.org"), &addr("zz@example.org"))
        .await
        .unwrap();
    let by_alias = s.user(&addr("ally@other.net")).await.unwrap().unwrap();
    assert_eq!(by_alias.id, alice.id);
    assert_eq!(
        by_alias
            .aliases
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["aa@example.org", "zz@example.org", "Ally@other.net"]
    );
    assert_eq!(
        users(s.resolve(&addr("ally+x@other.net")).await.unwrap()),
        ["alice@example.org"]
    );
    assert_eq!(
        err_text(
            s.add_alias(&addr("q@example.org"), &addr("nobody@example.org"))
                .await
        ),
        r#"NotFound("user nobody@example.org")"#
    );
    assert_eq!(
        err_text(
            s.add_alias(&addr("q@nowhere.org"), &addr("alice@example.org"))
                .await
        ),
        r#"NotFound("domain nowhere.org")"#
    );
    assert_eq!(
        err_text(
            s.add_alias(&addr("ZZ@example.org"), &addr("bob@example.org"))
                .await
        ),
        r#"Exists("alias ZZ@example.org")"#
    );
    assert_eq!(
        err_text(s.remove_alias(&addr("none@example.org")).await),
        r#"NotFound("alias none@example.org")"#
    );
    s.add_group(&addr("grp@example.org"), "G").await.unwrap();
    assert_eq!(
        err_text(
            s.add_alias(&addr("grp@example.org"), &addr("bob@example.org"))
                .await
        ),
        r#"Exists("group grp@example.org")"#
    );

    // Listing: by domain and address, with aliases.
    let all = s.list_users(None).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        [
            "alice@example.org",
            "bob@example.org",
            "Carol.Ann@example.org"
        ]
    );
    assert_eq!(all[0].aliases.len(), 3);
    assert_eq!(s.list_users(Some("EXAMPLE.org")).await.unwrap().len(), 3);
    assert!(s.list_users(Some("other.net")).await.unwrap().is_empty());

    // Paging in id order.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.users_page(after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().unwrap().id;
        seen.extend(page);
    }
    let mut ids: Vec<UserId> = all.iter().map(|u| u.id).collect();
    ids.sort();
    assert_eq!(seen.iter().map(|u| u.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        seen.iter()
            .find(|u| u.id == alice.id)
            .unwrap()
            .aliases
            .len(),
        3
    );

    // Removing: by alias refused; memberships of the user and its aliases go.
    s.add_group_member(&addr("grp@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("grp@example.org"), &addr("zz@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("grp@example.org"), &addr("bob@example.org"))
        .await
        .unwrap();
    assert_eq!(
        err_text(s.remove_user(&addr("zz@example.org")).await),
        r#"Invalid("zz@example.org is an alias of alice@example.org; remove the alias or the user by its address")"#
    );
    assert_eq!(
        err_text(s.remove_user(&addr("nobody@example.org")).await),
        r#"NotFound("user nobody@example.org")"#
    );
    s.remove_user(&addr("ALICE@example.org")).await.unwrap();
    assert!(s.user_by_id(alice.id).await.unwrap().is_none());
    assert!(s.user(&addr("ally@other.net")).await.unwrap().is_none());
    let groups = s.list_groups(None).await.unwrap();
    assert_eq!(
        groups[0]
            .members
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["bob@example.org"]
    );
    let n: i64 = sql
        .query_one(
            "SELECT count(*) FROM folder WHERE user_id = $1",
            &[&alice.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(s);
    db.drop().await;
}

#[tokio::test]
async fn groups() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
    s.add_domain("b.example").await.unwrap();
    let g = s
        .add_group(&addr("Team@example.org"), " The Team ")
        .await
        .unwrap();
    assert_eq!(g.address.to_string(), "Team@example.org");
    assert_eq!(g.display_name, "The Team");
    assert!(g.members.is_empty());
    assert_eq!(
        err_text(s.add_group(&addr("team@example.org"), "x").await),
        r#"Exists("group team@example.org")"#
    );
    assert_eq!(
        err_text(s.add_group(&addr("bob@example.org"), "x").await),
        r#"Exists("user bob@example.org")"#
    );
    assert_eq!(
        err_text(s.add_group(&addr("g@nowhere.org"), "x").await),
        r#"NotFound("domain nowhere.org")"#
    );
    assert_eq!(
        err_text(
            s.add_user(new_user("team@example.org", "X", "X", "X"))
                .await
        ),
        r#"Exists("group team@example.org")"#
    );
    // An empty group resolves to no one.
    assert_eq!(
        s.resolve(&addr("team@example.org")).await.unwrap(),
        Resolution::Unknown
    );
    assert_eq!(
        err_text(
            s.add_group_member(&addr("team@example.org"), &addr("TEAM@example.org"))
                .await
        ),
        r#"Invalid("a group cannot contain itself")"#
    );
    assert_eq!(
        err_text(
            s.add_group_member(&addr("none@example.org"), &addr("bob@example.org"))
                .await
        ),
        r#"NotFound("group none@example.org")"#
    );
    assert_eq!(
        err_text(
            s.add_group_member(&addr("team@example.org"), &addr("zed@example.org"))
                .await
        ),
        r#"NotFound("user or group zed@example.org (group members must be local)")"#
    );
    s.add_group_member(&addr("team@example.org"), &addr("Bob@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("team@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    assert_eq!(
        err_text(
            s.add_group_member(&addr("team@example.org"), &addr("bob@example.org"))
                .await
        ),
        r#"Exists("member bob@example.org of team@example.org")"#
    );
    s.add_group(&addr("b-list@b.example"), "B").await.unwrap();
    s.add_group_member(&addr("b-list@b.example"), &addr("team@example.org"))
        .await
        .unwrap();
    let listed = s.list_groups(None).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|g| (
                g.address.to_string(),
                g.display_name.clone(),
                g.members.iter().map(|m| m.to_string()).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>(),
        [
            (
                "b-list@b.example".to_string(),
                "B".to_string(),
                vec!["team@example.org".to_string()]
            ),
            (
                "Team@example.org".to_string(),
                "The Team".to_string(),
                vec![
                    "alice@example.org".to_string(),
                    "bob@example.org".to_string()
                ]
            ),
        ]
    );
    assert_eq!(s.list_groups(Some("B.EXAMPLE")).await.unwrap().len(), 1);
    let mut r = users(s.resolve(&addr("b-list@b.example")).await.unwrap());
    r.sort();
    assert_eq!(r, ["alice@example.org", "bob@example.org"]);
    assert_eq!(
        err_text(
            s.remove_group_member(&addr("team@example.org"), &addr("zed@example.org"))
                .await
        ),
        r#"NotFound("member zed@example.org of team@example.org")"#
    );
    assert_eq!(
        err_text(
            s.remove_group_member(&addr("nope@example.org"), &addr("bob@example.org"))
                .await
        ),
        r#"NotFound("group nope@example.org")"#
    );
    s.remove_group_member(&addr("team@example.org"), &addr("BOB@example.org"))
        .await
        .unwrap();
    assert_eq!(
        users(s.resolve(&addr("b-list@b.example")).await.unwrap()),
        ["alice@example.org"]
    );
    // Removing a group removes it from the groups it was in.
    s.remove_group(&addr("TEAM@example.org")).await.unwrap();
    assert!(
        s.list_groups(Some("b.example")).await.unwrap()[0]
            .members
            .is_empty()
    );
    assert_eq!(
        err_text(s.remove_group(&addr("team@example.org")).await),
        r#"NotFound("group team@example.org")"#
    );

    // Deep nesting stops at the depth guard (16 levels).
    let level = |i: usize| addr(&format!("l{i}@example.org"));
    for i in 0..20 {
        s.add_group(&level(i), "L").await.unwrap();
    }
    for i in 0..19 {
        s.add_group_member(&level(i), &level(i + 1)).await.unwrap();
    }
    s.add_group_member(&level(19), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_group_member(&level(15), &addr("bob@example.org"))
        .await
        .unwrap();
    assert_eq!(
        users(s.resolve(&level(0)).await.unwrap()),
        ["bob@example.org"]
    );
    // From l4, l19 is 15 levels down: expanded.
    let mut r = users(s.resolve(&level(4)).await.unwrap());
    r.sort();
    assert_eq!(r, ["alice@example.org", "bob@example.org"]);
    drop(s);
    db.drop().await;
}

#[tokio::test]
async fn every_write_bumps_the_generation() {
    let db = Db::new().await;
    let s = db.open().await;
    let other = db.open().await;
    let mut last = s.directory_generation().await.unwrap();
    macro_rules! bumped {
        ($e:expr) => {{
            let r = $e;
            let g = other.directory_generation().await.unwrap();
            assert!(g > last, "{} did not bump the generation", stringify!($e));
            last = g;
            r
        }};
    }
    bumped!(fixture(&s).await);
    bumped!(
        s.add_alias(&addr("al@example.org"), &addr("alice@example.org"))
            .await
            .unwrap()
    );
    bumped!(s.add_group(&addr("g@example.org"), "G").await.unwrap());
    bumped!(
        s.add_group_member(&addr("g@example.org"), &addr("al@example.org"))
            .await
            .unwrap()
    );
    bumped!(
        s.remove_group_member(&addr("g@example.org"), &addr("al@example.org"))
            .await
            .unwrap()
    );
    bumped!(
        s.set_password_hash(&addr("alice@example.org"), Some("x".into()))
            .await
            .unwrap()
    );
    bumped!(s.add_class("c", "").await.unwrap());
    bumped!(s.set_class("c", ClassSettings::default()).await.unwrap());
    bumped!(
        s.assign_class("c", Assignee::Domain("example.org".into()))
            .await
            .unwrap()
    );
    bumped!(
        s.unassign_class("c", Assignee::Domain("example.org".into()))
            .await
            .unwrap()
    );
    bumped!(s.remove_class("c").await.unwrap());
    bumped!(
        s.add_block(Block {
            pattern: "x.test".into(),
            direction: Direction::Both,
            note: String::new()
        })
        .await
        .unwrap()
    );
    bumped!(s.remove_block("x.test").await.unwrap());
    bumped!(s.remove_group(&addr("g@example.org")).await.unwrap());
    bumped!(s.remove_alias(&addr("al@example.org")).await.unwrap());
    bumped!(s.remove_user(&addr("bob@example.org")).await.unwrap());
    // A failed write changes nothing.
    assert!(s.add_domain("example.org").await.is_err());
    assert_eq!(other.directory_generation().await.unwrap(), last);
    // The other node's cache hears of it through the generation.
    assert!(matches!(
        other.resolve(&addr("alice@example.org")).await.unwrap(),
        Resolution::Users(_)
    ));
    s.add_alias(&addr("x@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.remove_user(&addr("alice@example.org")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        other.resolve(&addr("alice@example.org")).await.unwrap(),
        Resolution::Unknown
    );
    drop((s, other));
    db.drop().await;
}

/// Two nodes adding the same name at once: exactly one wins, and the other
/// hears the embedded store's message (directory writes take turns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_take_turns() {
    let db = Db::new().await;
    let a = db.open().await;
    let b = db.open().await;
    fixture(&a).await;
    for i in 0..10 {
        let name = format!("x{i}@example.org");
        let (x, bob) = (addr(&name), addr("bob@example.org"));
        let (ra, rb) = tokio::join!(
            a.add_user(new_user(&name, "X", "X", "X")),
            b.add_alias(&x, &bob),
        );
        match (ra, rb) {
            (Ok(_), Err(StoreError::Exists(m))) => assert_eq!(m, format!("user {name}")),
            (Err(StoreError::Exists(m)), Ok(())) => assert_eq!(m, format!("alias {name}")),
            other => panic!("{other:?}"),
        }
        let name = format!("y{i}@example.org");
        let y = addr(&name);
        let (ra, rb) = tokio::join!(a.add_group(&y, "Y"), b.add_group(&y, "Y"));
        assert!(
            matches!((&ra, &rb), (Ok(_), Err(StoreError::Exists(m))) | (Err(StoreError::Exists(m)), Ok(_)) if *m == format!("group {name}")),
            "{ra:?} {rb:?}"
        );
    }
    drop((a, b));
    db.drop().await;
}

/// Removing a user removes the stored messages only it referred to.
#[tokio::test]
async fn remove_user_releases_its_messages() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    let sql = db.sql().await;
    let inbox = |u: UserId| {
        let sql = &sql;
        async move {
            sql.query_one(
                "SELECT id FROM folder WHERE user_id = $1 AND role = 'inbox'",
                &[&u],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    let (ai, bi) = (inbox(alice.id).await, inbox(bob.id).await);
    let mut ids = Vec::new();
    for h in [b"own".as_slice(), b"shared", b"queued"] {
        let id: i64 = sql
            .query_one(
                "INSERT INTO message (hash, size, kind, content) VALUES ($1, 1, 'mail', '{}') RETURNING id",
                &[&h],
            )
            .await
            .unwrap()
            .get(0);
        sql.execute("INSERT INTO blob (id, data) VALUES ($1, 'x')", &[&id])
            .await
            .unwrap();
        sql.execute(
            "INSERT INTO item (folder_id, uid, message_id, modseq, internal_date) VALUES ($1, $2, $3, 1, 0)",
            &[&ai, &id, &id],
        )
        .await
        .unwrap();
        ids.push(id);
    }
    sql.execute(
        "INSERT INTO item (folder_id, uid, message_id, modseq, internal_date) VALUES ($1, 1, $2, 1, 0)",
        &[&bi, &ids[1]],
    )
    .await
    .unwrap();
    sql.execute(
        "INSERT INTO queue (message_id, mail_from, created) VALUES ($1, '', 0)",
        &[&ids[2]],
    )
    .await
    .unwrap();
    s.remove_user(&addr("alice@example.org")).await.unwrap();
    let left: Vec<i64> = sql
        .query("SELECT id FROM message ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [ids[1], ids[2]]);
    let blobs: i64 = sql
        .query_one("SELECT count(*) FROM blob", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blobs, 2);
    drop(s);
    db.drop().await;
}

// ---- Every AccessRules method, with the embedded store's messages ----

#[tokio::test]
async fn access_rules() {
    let db = Db::new().await;
    let s = db.open().await;
    fixture(&s).await;
    s.add_class(" Staff ", " People who work here ")
        .await
        .unwrap();
    assert_eq!(
        err_text(s.add_class("STAFF", "").await),
        r#"Exists("class STAFF")"#
    );
    assert_eq!(
        err_text(s.add_class("", "").await),
        r#"Invalid("\"\": a class name is 1 to 64 letters, digits, '-', '_' or '.'")"#
    );
    assert!(s.add_class(&"x".repeat(65), "").await.is_err());
    s.add_class("default", "").await.unwrap();
    let mut settings = ClassSettings::default();
    settings.set("pop3", "deny").unwrap();
    s.set_class("staff", settings.clone()).await.unwrap();
    assert_eq!(
        err_text(s.set_class("nope", ClassSettings::default()).await),
        r#"NotFound("class nope")"#
    );
    // Assignments: to each kind of assignee, checked to exist, case-folded.
    s.add_group(&addr("Team@example.org"), "T").await.unwrap();
    s.add_user(NewUser {
        post_office: Some("North".into()),
        ..new_user("carol@example.org", "C", "C", "C")
    })
    .await
    .unwrap();
    s.assign_class("STAFF", Assignee::User("ALICE@example.org".into()))
        .await
        .unwrap();
    s.assign_class("staff", Assignee::Group("team@example.org".into()))
        .await
        .unwrap();
    s.assign_class("staff", Assignee::PostOffice("north".into()))
        .await
        .unwrap();
    s.assign_class("default", Assignee::Domain("example.org".into()))
        .await
        .unwrap();
    // Reassigning replaces.
    s.assign_class("staff", Assignee::Domain("example.org".into()))
        .await
        .unwrap();
    for (class, to, msg) in [
        (
            "staff",
            Assignee::User("zed@example.org".into()),
            "NotFound",
        ),
        (
            "staff",
            Assignee::Group("alice@example.org".into()),
            "NotFound",
        ),
        ("staff", Assignee::PostOffice("south".into()), "NotFound"),
        ("staff", Assignee::Domain("nowhere.org".into()), "NotFound"),
        ("nope", Assignee::Domain("example.org".into()), "NotFound"),
        ("staff", Assignee::User("not an address".into()), "Invalid"),
    ] {
        let e = err_text(s.assign_class(class, to.clone()).await);
        assert!(e.starts_with(msg), "{class} {to}: {e}");
    }
    assert_eq!(
        err_text(
            s.assign_class("nope", Assignee::Domain("example.org".into()))
                .await
        ),
        r#"NotFound("class nope")"#
    );
    let classes = s.classes().await.unwrap();
    assert_eq!(
        classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["default", "Staff"]
    );
    assert!(classes[0].assigned.is_empty());
    let staff = &classes[1];
    assert_eq!(staff.description, "People who work here");
    assert_eq!(staff.settings, settings);
    let mut assigned = staff.assigned.clone();
    assigned.sort_by_key(|a| a.to_string());
    let mut expected = vec![
        Assignee::Domain("example.org".into()),
        Assignee::Group("team@example.org".into()),
        Assignee::PostOffice("north".into()),
        Assignee::User("alice@example.org".into()),
    ];
    expected.sort_by_key(|a| a.to_string());
    assert_eq!(assigned, expected);
    let on = Assignee::Domain("example.org".into());
    assert!(matches!(
        s.unassign_class("default", on.clone()).await,
        Err(StoreError::NotFound(m)) if m == format!("class default on {on}")
    ));
    s.unassign_class("STAFF", Assignee::User("Alice@Example.org".into()))
        .await
        .unwrap();
    s.unassign_class("staff", Assignee::PostOffice("north".into()))
        .await
        .unwrap();
    assert_eq!(s.classes().await.unwrap()[1].assigned.len(), 2);
    // Removing a class removes its assignments.
    s.remove_class("STAFF").await.unwrap();
    assert_eq!(
        err_text(s.remove_class("staff").await),
        r#"NotFound("class staff")"#
    );
    s.add_class("staff", "").await.unwrap();
    assert!(s.classes().await.unwrap()[1].assigned.is_empty());

    // Blocks: replaced by pattern, listed by pattern, removed normalised.
    s.add_block(Block {
        pattern: "b.test".into(),
        direction: Direction::In,
        note: "one".into(),
    })
    .await
    .unwrap();
    s.add_block(Block {
        pattern: "a.test".into(),
        direction: Direction::Both,
        note: String::new(),
    })
    .await
    .unwrap();
    s.add_block(Block {
        pattern: "b.test".into(),
        direction: Direction::Out,
        note: "two".into(),
    })
    .await
    .unwrap();
    let blocks = s.blocks().await.unwrap();
    assert_eq!(
        blocks
            .iter()
            .map(|b| (b.pattern.as_str(), b.direction, b.note.as_str()))
            .collect::<Vec<_>>(),
        [
            ("a.test", Direction::Both, ""),
            ("b.test", Direction::Out, "two")
        ]
    );
    assert!(s.remove_block(" B.TEST. ").await.unwrap());
    assert!(!s.remove_block("b.test").await.unwrap());
    assert_eq!(s.blocks().await.unwrap().len(), 1);

    // groups_of: through aliases and nested groups, loops included.
    s.add_alias(&addr("al@example.org"), &addr("alice@example.org"))
        .await
        .unwrap();
    s.add_group(&addr("outer@example.org"), "O").await.unwrap();
    s.add_group_member(&addr("team@example.org"), &addr("al@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("outer@example.org"), &addr("team@example.org"))
        .await
        .unwrap();
    s.add_group_member(&addr("team@example.org"), &addr("outer@example.org"))
        .await
        .unwrap();
    let alice = s.user(&addr("alice@example.org")).await.unwrap().unwrap();
    let mut g: Vec<String> = s
        .groups_of(&alice)
        .await
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    g.sort();
    assert_eq!(g, ["Team@example.org", "outer@example.org"]);
    let bob = s.user(&addr("bob@example.org")).await.unwrap().unwrap();
    assert!(s.groups_of(&bob).await.unwrap().is_empty());
    drop(s);
    db.drop().await;
}

// ---- A node as the whole store, for the policy: the directory and access
// rules are the PostgreSQL store's; nothing here uses the rest. ----

#[derive(Debug)]
struct Node(PgStore, ChangeFeed);

#[async_trait]
impl Directory for Node {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        self.0.add_domain(name).await
    }
    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.0.list_domains().await
    }
    async fn remove_domain(&self, name: &str) -> Result<()> {
        self.0.remove_domain(name).await
    }
    async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        self.0.is_local_domain(domain).await
    }
    async fn add_user(&self, user: NewUser) -> Result<User> {
        self.0.add_user(user).await
    }
    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>> {
        self.0.list_users(domain).await
    }
    async fn user(&self, address: &EmailAddress) -> Result<Option<User>> {
        self.0.user(address).await
    }
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.0.user_by_id(id).await
    }
    async fn remove_user(&self, address: &EmailAddress) -> Result<()> {
        self.0.remove_user(address).await
    }
    async fn set_password_hash(&self, address: &EmailAddress, hash: Option<String>) -> Result<()> {
        self.0.set_password_hash(address, hash).await
    }
    async fn credentials(&self, login: &EmailAddress) -> Result<Option<(User, Option<String>)>> {
        self.0.credentials(login).await
    }
    async fn add_alias(&self, alias: &EmailAddress, target: &EmailAddress) -> Result<()> {
        self.0.add_alias(alias, target).await
    }
    async fn remove_alias(&self, alias: &EmailAddress) -> Result<()> {
        self.0.remove_alias(alias).await
    }
    async fn add_group(&self, address: &EmailAddress, display_name: &str) -> Result<Group> {
        self.0.add_group(address, display_name).await
    }
    async fn remove_group(&self, address: &EmailAddress) -> Result<()> {
        self.0.remove_group(address).await
    }
    async fn list_groups(&self, domain: Option<&str>) -> Result<Vec<Group>> {
        self.0.list_groups(domain).await
    }
    async fn add_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        self.0.add_group_member(group, member).await
    }
    async fn remove_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        self.0.remove_group_member(group, member).await
    }
    async fn directory_generation(&self) -> Result<u64> {
        self.0.directory_generation().await
    }
    async fn users_page(&self, after: UserId, limit: usize) -> Result<Vec<User>> {
        self.0.users_page(after, limit).await
    }
    async fn resolve(&self, address: &EmailAddress) -> Result<Resolution> {
        self.0.resolve(address).await
    }
}

#[async_trait]
impl AccessRules for Node {
    async fn add_class(&self, name: &str, description: &str) -> Result<()> {
        self.0.add_class(name, description).await
    }
    async fn remove_class(&self, name: &str) -> Result<()> {
        self.0.remove_class(name).await
    }
    async fn set_class(&self, name: &str, settings: ClassSettings) -> Result<()> {
        self.0.set_class(name, settings).await
    }
    async fn classes(&self) -> Result<Vec<postgate_types::access::Class>> {
        self.0.classes().await
    }
    async fn assign_class(&self, name: &str, to: Assignee) -> Result<()> {
        self.0.assign_class(name, to).await
    }
    async fn unassign_class(&self, name: &str, from: Assignee) -> Result<()> {
        self.0.unassign_class(name, from).await
    }
    async fn add_block(&self, block: Block) -> Result<()> {
        self.0.add_block(block).await
    }
    async fn remove_block(&self, pattern: &str) -> Result<bool> {
        self.0.remove_block(pattern).await
    }
    async fn blocks(&self) -> Result<Vec<Block>> {
        self.0.blocks().await
    }
    async fn groups_of(&self, user: &User) -> Result<Vec<EmailAddress>> {
        self.0.groups_of(user).await
    }
}

#[async_trait]
impl Mailboxes for Node {
    async fn deliver(&self, _: NewDelivery) -> Result<Vec<Delivered>> {
        unimplemented!()
    }
    async fn lock_maildrop(&self, _: FolderId, _: &str) -> Result<bool> {
        unimplemented!()
    }
    async fn unlock_maildrop(&self, _: FolderId, _: &str) -> Result<()> {
        unimplemented!()
    }
    async fn folders(&self, _: UserId) -> Result<Vec<Folder>> {
        unimplemented!()
    }
    async fn folder(&self, _: UserId, _: &str) -> Result<Option<Folder>> {
        unimplemented!()
    }
    async fn create_folder(&self, _: UserId, _: &str) -> Result<Folder> {
        unimplemented!()
    }
    async fn items(&self, _: FolderId) -> Result<Vec<postgate_types::ItemSummary>> {
        unimplemented!()
    }
    async fn item(&self, _: FolderId, _: u32) -> Result<Option<ItemRecord>> {
        unimplemented!()
    }
    async fn raw(&self, _: FolderId, _: u32) -> Result<Option<Vec<u8>>> {
        unimplemented!()
    }
    fn changes(&self) -> &ChangeFeed {
        &self.1
    }
    async fn rename_folder(&self, _: UserId, _: &str, _: &str) -> Result<()> {
        unimplemented!()
    }
    async fn delete_folder(&self, _: UserId, _: &str) -> Result<()> {
        unimplemented!()
    }
    async fn set_subscribed(&self, _: UserId, _: &str, _: bool) -> Result<()> {
        unimplemented!()
    }
    async fn subscriptions(&self, _: UserId) -> Result<Vec<String>> {
        unimplemented!()
    }
    async fn snapshot(&self, _: FolderId) -> Result<MailboxSnapshot> {
        unimplemented!()
    }
    async fn changes_since(&self, _: FolderId, _: u64) -> Result<FolderChanges> {
        unimplemented!()
    }
    async fn claim_recent(&self, _: FolderId, _: u32) -> Result<u32> {
        unimplemented!()
    }
    async fn store_flags(
        &self,
        _: FolderId,
        _: Vec<u32>,
        _: FlagOp,
        _: Flags,
        _: Vec<String>,
        _: Option<u64>,
    ) -> Result<FlagOutcome> {
        unimplemented!()
    }
    async fn expunge(&self, _: FolderId, _: Vec<u32>) -> Result<Vec<u32>> {
        unimplemented!()
    }
    async fn copy_messages(
        &self,
        _: FolderId,
        _: Vec<u32>,
        _: FolderId,
        _: bool,
    ) -> Result<CopyOutcome> {
        unimplemented!()
    }
    async fn append(&self, _: FolderId, _: NewMessage) -> Result<(u32, u32)> {
        unimplemented!()
    }
    async fn messages_meta(&self, _: FolderId, _: Vec<u32>) -> Result<Vec<MessageMeta>> {
        unimplemented!()
    }
    async fn message_bytes(&self, _: MessageRef) -> Result<Option<Vec<u8>>> {
        unimplemented!()
    }
    async fn message_content(&self, _: MessageRef) -> Result<Option<ItemContent>> {
        unimplemented!()
    }
    async fn usage(&self, _: UserId) -> Result<u64> {
        unimplemented!()
    }
}

#[async_trait]
impl Queue for Node {
    async fn claim_due(&self, _: i64, _: i64, _: usize) -> Result<Vec<QueuedMessage>> {
        unimplemented!()
    }
    async fn record(&self, _: Vec<(i64, RcptOutcome)>) -> Result<()> {
        unimplemented!()
    }
    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        unimplemented!()
    }
    async fn queue_depth(&self) -> Result<QueueDepth> {
        unimplemented!()
    }
    async fn queue_get(&self, _: i64) -> Result<Option<QueuedMessage>> {
        unimplemented!()
    }
    async fn queue_remove(&self, _: i64) -> Result<bool> {
        unimplemented!()
    }
    async fn queue_retry(&self, _: Option<i64>) -> Result<usize> {
        unimplemented!()
    }
    async fn release_leases(&self) -> Result<usize> {
        unimplemented!()
    }
}

#[async_trait]
impl Calendars for Node {
    async fn update_calendar(&self, _: Vec<CalendarUpdate>) -> Result<Vec<CalendarOutcome>> {
        unimplemented!()
    }
    async fn calendar_entry(&self, _: UserId, _: i64) -> Result<Option<CalendarEntry>> {
        unimplemented!()
    }
    async fn calendar_by_uid(
        &self,
        _: UserId,
        _: ItemKind,
        _: &str,
    ) -> Result<Option<CalendarEntry>> {
        unimplemented!()
    }
    async fn calendar_entries(&self, _: UserId, _: ItemKind) -> Result<Vec<CalendarEntry>> {
        unimplemented!()
    }
    async fn calendar_range_keys(
        &self,
        _: UserId,
        _: ItemKind,
        _: i64,
        _: i64,
    ) -> Result<Vec<(i64, u32)>> {
        unimplemented!()
    }
    async fn calendar_listings(&self, _: UserId, _: Vec<i64>) -> Result<Vec<CalendarEntry>> {
        unimplemented!()
    }
}
