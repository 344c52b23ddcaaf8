//! The console's listings at the size of a large post office: 100,000
//! users and 100,000 queue entries, filled through the traits. Ignored by
//! default (filling takes minutes); run by hand, which prints how long
//! each listing takes, on the embedded store:
//!
//! ```text
//! cargo test -p postgate-store --test scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! or, with `POSTGATE_SCALE_BACKEND=postgres`, in a new database on the
//! cluster `POSTGATE_TEST_PG` names.
use postgate_store::{
    Backend, NewDelivery, NewUser, Notify, Outbound, OutboundRcpt, QueueFilter, RcptOutcome, Store,
    Target, UserFilter,
};
use postgate_types::{EmailAddress, Flags, FolderRole, ItemContent};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: usize = 100_000;
const ENTRIES: usize = 100_000;
/// Writes in flight at once while filling: the embedded store's share
/// group commits; PostgreSQL's take pooled connections (and directory
/// writes take turns), so fewer wait there.
fn concurrency() -> usize {
    if postgres() { 16 } else { 256 }
}

fn postgres() -> bool {
    std::env::var("POSTGATE_SCALE_BACKEND").as_deref() == Ok("postgres")
}

/// Runs `f` five times; the fastest and the slowest run.
async fn timed<T, F: AsyncFnMut() -> T>(what: &str, mut f: F) -> T {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..5 {
        let started = Instant::now();
        out = Some(f().await);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{what:<48} best {:>8.2} ms  worst {:>8.2} ms",
        ms(times[0]),
        ms(times[4])
    );
    out.unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the futures `make` gives for 0..n, [`concurrency`] at a time.
async fn fill<F>(n: usize, make: impl Fn(usize) -> F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tasks.spawn(make(i));
        while tasks.len() >= concurrency() {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
}

/// The store to fill: embedded in `dir`, or a new PostgreSQL database.
async fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    if !postgres() {
        return postgate_store::open(&Backend::Embedded {
            data_dir: dir.to_path_buf(),
        })
        .await
        .unwrap();
    }
    let url = std::env::var("POSTGATE_TEST_PG").expect("POSTGATE_TEST_PG");
    let name = format!(
        "scale_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    postgate_store::open(&Backend::Postgres(postgate_store::postgres::PgOptions {
        url: format!("{base}/{name}"),
        pool_size: 16,
        node: "scale".into(),
        ca_file: None,
    }))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fills 100,000 users; run by hand for the timings"]
async fn user_search_at_100k_users() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.add_domain("example.org").await.unwrap();
    s.add_domain("example.net").await.unwrap();
    let started = Instant::now();
    fill(USERS, |i| {
        let s = s.clone();
        async move {
            // A tenth in example.net.
            let domain = if i % 10 == 0 {
                "example.net"
            } else {
                "example.org"
            };
            s.add_user(NewUser {
                address: EmailAddress::parse(&format!("user{i:06}@{domain}")).unwrap(),
                post_office: None,
                display_name: format!("Person {i:06} Müller"),
                given_name: Some("Person".into()),
                surname: Some(format!("M{i:06}")),
                title: None,
                department: None,
                phone: None,
                password_hash: None,
            })
            .await
            .unwrap();
        }
    })
    .await;
    println!(
        "filled {USERS} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let find = |text: Option<&str>, domain: Option<&str>, offset: usize| {
        let s = s.clone();
        let filter = UserFilter {
            text: text.map(str::to_string),
            domain: domain.map(str::to_string),
        };
        async move { s.find_users(filter, offset, 50).await.unwrap() }
    };
    let (page, total) = timed("find_users: first page of all + count", async || {
        find(None, None, 0).await
    })
    .await;
    assert_eq!((page.len(), total), (50, USERS as u64));
    let (page, total) = timed("find_users: page at offset 50,000", async || {
        find(None, None, 50_000).await
    })
    .await;
    assert_eq!((page.len(), total), (50, USERS as u64));
    let (page, total) = timed("find_users: domain (10,000 of them)", async || {
        find(None, Some("example.net"), 0).await
    })
    .await;
    assert_eq!((page.len(), total), (50, (USERS / 10) as u64));
    let (page, total) = timed("find_users: text matching 1,000", async || {
        find(Some("PERSON 042"), None, 0).await
    })
    .await;
    assert_eq!((page.len(), total), (50, 1000));
    let (page, total) = timed("find_users: text matching one", async || {
        find(Some("user042424"), None, 0).await
    })
    .await;
    assert_eq!((page.len(), total), (1, 1));
    let (page, total) = timed("find_users: text matching none", async || {
        find(Some("nobody"), None, 0).await
    })
    .await;
    assert_eq!((page.len(), total), (0, 0));
    let (_, total) = timed("find_users: text (non-ASCII) and domain", async || {
        find(Some("MÜLLER"), Some("example.net"), 0).await
    })
    .await;
    assert_eq!(total, (USERS / 10) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fills 100,000 queue entries; run by hand for the timings"]
async fn queue_page_at_100k_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.add_domain("example.org").await.unwrap();
    let alice = s
        .add_user(NewUser {
            address: EmailAddress::parse("alice@example.org").unwrap(),
            post_office: None,
            display_name: "Alice".into(),
            given_name: None,
            surname: None,
            title: None,
            department: None,
            phone: None,
            password_hash: None,
        })
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    fill(ENTRIES, |i| {
        let s = s.clone();
        async move {
            // Two recipients each, in 50 domains; senders in 100 domains.
            let rcpt = |n: usize| OutboundRcpt {
                address: format!("r{i}@d{}.test", (i + n) % 50),
                orcpt: None,
                notify: Notify::default(),
            };
            s.deliver(NewDelivery {
                raw: format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes(),
                content: ItemContent::default(),
                envelope: None,
                targets: vec![Target {
                    user: alice.id,
                    role: FolderRole::Sent,
                    flags: Flags::SEEN,
                }],
                outbound: Some(Outbound {
                    mail_from: format!("sender{i}@s{}.example", i % 100),
                    sender_user: Some(alice.id),
                    rcpts: vec![rcpt(0), rcpt(1)],
                    ..Outbound::default()
                }),
                received_at: now - 200_000 + i as i64,
                calendar: Vec::new(),
            })
            .await
            .unwrap();
        }
    })
    .await;
    println!(
        "filled {ENTRIES} queue entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // 1,000 recipients in flight, 10,000 deferred, 100 entries held.
    let claimed = s.claim_due(now, 600, 11_000).await.unwrap();
    let deferred: Vec<_> = claimed
        .iter()
        .flat_map(|m| m.rcpts.iter().map(|r| r.id))
        .skip(1_000)
        .map(|id| {
            (
                id,
                RcptOutcome::Retry {
                    at: now + 3600,
                    error: "451 later".into(),
                    delay_warned: false,
                },
            )
        })
        .collect();
    s.record(deferred).await.unwrap();
    let listed = s.queue_list().await.unwrap();
    for m in listed.iter().rev().take(100) {
        s.queue_hold(Some(m.id), true).await.unwrap();
    }

    let depth = timed("queue_depth", async || s.queue_depth().await.unwrap()).await;
    println!("  {depth:?}");
    assert_eq!(
        (depth.due, depth.deferred, depth.in_flight, depth.held),
        (188_800, 10_000, 1_000, 200)
    );
    let page = |filter: QueueFilter, offset: usize| {
        let s = s.clone();
        async move {
            let (entries, total) = s.queue_page(filter, offset, 50).await.unwrap();
            (entries.len(), total)
        }
    };
    let state = |name: &str| QueueFilter {
        state: Some(name.into()),
        ..QueueFilter::default()
    };
    let got = timed("queue_page: first page of all + count", async || {
        page(QueueFilter::default(), 0).await
    })
    .await;
    assert_eq!(got, (50, ENTRIES as u64));
    let got = timed("queue_page: page at offset 50,000", async || {
        page(QueueFilter::default(), 50_000).await
    })
    .await;
    assert_eq!(got, (50, ENTRIES as u64));
    let got = timed("queue_page: state due", async || {
        page(state("due"), 0).await
    })
    .await;
    assert_eq!(got.0, 50);
    let got = timed("queue_page: state deferred", async || {
        page(state("deferred"), 0).await
    })
    .await;
    assert_eq!(got.0, 50);
    let got = timed("queue_page: state in_flight", async || {
        page(state("in_flight"), 0).await
    })
    .await;
    assert_eq!(got.0, 50);
    let got = timed("queue_page: state held (100 entries)", async || {
        page(state("held"), 0).await
    })
    .await;
    assert_eq!(got, (50, 100));
    let got = timed("queue_page: recipient domain (4,000 entries)", async || {
        page(
            QueueFilter {
                domain: Some("d7.test".into()),
                ..QueueFilter::default()
            },
            0,
        )
        .await
    })
    .await;
    assert_eq!(got, (50, 4_000));
    let got = timed("queue_page: state deferred and domain", async || {
        page(
            QueueFilter {
                state: Some("deferred".into()),
                domain: Some("d7.test".into()),
                ..QueueFilter::default()
            },
            0,
        )
        .await
    })
    .await;
    assert_eq!(got.0, 50);
    let got = timed("queue_page: sender (1,000 entries)", async || {
        page(
            QueueFilter {
                sender: Some("@S42.EXAMPLE".into()),
                ..QueueFilter::default()
            },
            0,
        )
        .await
    })
    .await;
    assert_eq!(got, (50, 1_000));
    let got = timed("queue_page: older than (half)", async || {
        page(
            QueueFilter {
                created_before: Some(now - 200_000 + (ENTRIES / 2) as i64),
                ..QueueFilter::default()
            },
            0,
        )
        .await
    })
    .await;
    assert_eq!(got, (50, (ENTRIES / 2) as u64));
}
