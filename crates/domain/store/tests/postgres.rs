//! The PostgreSQL backend runs the store conformance suite, each case in a
//! database of its own on the cluster `POSTGATE_TEST_PG` names (`.ci/run`
//! starts a throwaway one with `.ci/pg-cluster`). Without it the cases skip
//! loudly, and fail under `POSTGATE_REQUIRE_INTEROP=1`.
mod conformance;

use conformance::Harness;
use postgate_store::postgres::PgOptions;
use postgate_store::{Backend, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A fresh database on the test cluster; each `open` is another node.
struct Pg {
    url: Option<String>,
    database: OnceLock<String>,
    nodes: AtomicUsize,
    first: OnceLock<Arc<dyn Store>>,
}

impl Pg {
    fn new() -> Pg {
        let url = std::env::var("POSTGATE_TEST_PG")
            .ok()
            .filter(|u| !u.is_empty());
        if url.is_none() {
            eprintln!(
                "\n*** SKIPPED: POSTGATE_TEST_PG is not set; the PostgreSQL backend was not tested \
                 (.ci/pg-cluster start DIR prints a URL for it) ***\n"
            );
            assert!(
                std::env::var_os("POSTGATE_REQUIRE_INTEROP").is_none(),
                "POSTGATE_REQUIRE_INTEROP=1 but POSTGATE_TEST_PG is not set"
            );
        }
        Pg {
            url,
            database: OnceLock::new(),
            nodes: AtomicUsize::new(0),
            first: OnceLock::new(),
        }
    }
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a postgres:// URL");
    format!("{base}/{db}")
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database(url: &str) -> String {
    let name = format!("conf_{}_{}", std::process::id(), chrono_free_nanos());
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connecting to POSTGATE_TEST_PG");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    with_database(url, &name)
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl Harness for Pg {
    fn available(&self) -> bool {
        self.url.is_some()
    }

    /// Each handle is another node on the one database: maildrop locks,
    /// the change feed (LISTEN/NOTIFY) and queue leases span them.
    fn shared_across_handles(&self) -> bool {
        true
    }

    fn open(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>> + Send + '_>> {
        Box::pin(async move {
            let url = self.url.as_deref().expect("available");
            if self.database.get().is_none() {
                let db = fresh_database(url).await;
                let _ = self.database.set(db);
            }
            let n = self.nodes.fetch_add(1, Ordering::SeqCst);
            let backend = Backend::Postgres(PgOptions {
                url: self.database.get().unwrap().clone(),
                pool_size: 8,
                node: format!("node-{n}"),
                ca_file: None,
            });
            let store = postgate_store::open(&backend).await.unwrap();
            self.first.get_or_init(|| store.clone());
            store
        })
    }
}

suite!(Pg::new());

/// A database from before the search key (schema version 2): its users get
/// theirs, folded beyond ASCII, when migration 3 runs, and are found.
#[tokio::test]
async fn migration_fills_in_search_keys() {
    use postgate_store::{NewUser, UserFilter};
    let h = Pg::new();
    if !h.available() {
        return;
    }
    let store = h.open().await;
    store.add_domain("example.net").await.unwrap();
    store
        .add_user(NewUser {
            address: postgate_types::EmailAddress::parse("Emile@example.net").unwrap(),
            post_office: None,
            display_name: "ÉMILE Zola".into(),
            given_name: None,
            surname: None,
            title: None,
            department: None,
            phone: None,
            password_hash: None,
        })
        .await
        .unwrap();
    drop(store);
    // Back to version 2, as an older Postgate left it.
    let (client, conn) = tokio_postgres::connect(h.database.get().unwrap(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "ALTER TABLE users DROP COLUMN search_key;
             DROP TABLE console_admin, stat_minute, dkim_key, metadata;
             ALTER TABLE item DROP COLUMN internal_zone, DROP COLUMN save_date;
             DROP INDEX queue_rcpt_domain, queue_rcpt_state, queue_created;
             UPDATE schema_version SET version = 2;",
        )
        .await
        .unwrap();
    let store = h.open().await;
    let key: String = client
        .query_one("SELECT search_key FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(key, "emile@example.net\némile zola");
    let (found, total) = store
        .find_users(
            UserFilter {
                text: Some("émile".into()),
                domain: None,
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!((found.len(), total), (1, 1));
}
