//! The PostgreSQL backend: several Postgate nodes on one database.
//!
//! Why tokio-postgres with deadpool-postgres rather than sqlx: the store's
//! SQL is hand-written and per backend anyway (the embedded one is rusqlite),
//! so sqlx's compile-time checked queries would need a database at build time
//! for no gain, and sqlx's SQLite driver links a second libsqlite3 beside
//! rusqlite's (shared/DEPENDENCIES.md). tokio-postgres gives LISTEN/NOTIFY
//! on a plain connection, binary parameters and a per-connection statement
//! cache (through deadpool's `prepare_cached`); deadpool gives a pool that
//! recycles broken connections by itself when the database comes back.
//!
//! Shape: every write is one transaction on a pooled connection, READ
//! COMMITTED. What must be ordered takes a row lock: a folder's UID and modseq
//! counters are bumped with `UPDATE … RETURNING`, which holds the folder row
//! until commit, so a second append to that folder (on any node) waits and
//! gets the next UID, and UIDs become visible in ascending order (RFC 3501
//! §2.3.1.1). Group commit is PostgreSQL's own: concurrent commits share WAL
//! flushes (`synchronous_commit = on` is left as it is: an acknowledged
//! message is on disk).
//!
//! Across nodes: committed mailbox changes are also sent with `pg_notify`
//! inside their transaction (delivered on commit) and each node LISTENs
//! ([`listener`]); a node that loses its listening connection wakes every
//! subscriber once it is back, and they re-read "changes since modseq". The
//! directory generation, POP3 maildrop locks, \Recent claims and queue
//! leases are rows, not memory.
mod access;
mod batch;
mod calendar;
mod directory;
mod dkim;
mod listener;
mod mailboxes;
mod messages;
mod queue;
pub(crate) mod schema;
mod stats;

pub(crate) use directory::bump_generation;

use crate::{ChangeFeed, Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgate_types::Change;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// How to reach the database, from `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` or libpq `key=value` pairs;
    /// `sslmode` disable/prefer/require is honoured.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// This node's name (unique among the nodes sharing the database).
    pub node: String,
    /// PEM file of the certificate authorities the server's certificate is
    /// checked against (default: the system's).
    pub ca_file: Option<std::path::PathBuf>,
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    node: String,
    /// This process: the node's name and a per-start suffix. What a process
    /// holds that must end when it dies (maildrop locks) names its
    /// instance, whose heartbeat then stops.
    instance: String,
    feed: ChangeFeed,
    resolutions: crate::cache::ResolveCache,
    /// Deliveries waiting for the next group commit.
    deliveries: tokio::sync::mpsc::UnboundedSender<batch::Job>,
}

/// How often the directory generation is read (how long a directory change
/// made on another node may take to reach this node's resolution cache), and
/// how often the node's heartbeat is written.
const GENERATION_INTERVAL: Duration = Duration::from_millis(250);
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A node not heard from for this long is gone: its maildrop locks are free.
pub(crate) const NODE_TIMEOUT_SECS: i64 = 30;
/// How long a pooled connection may be waited for before the request fails
/// with a try-later error (the database is unreachable or saturated).
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Attempts of a transaction that hit a deadlock or serialization failure.
pub(crate) const RETRIES: usize = 5;

/// The NOTIFY channel committed mailbox changes are sent on.
pub(crate) const CHANNEL: &str = "postgate_changes";

impl PgStore {
    /// Connects, applies migrations, and starts the node's background tasks
    /// (listener, heartbeat, directory generation). Must run inside a tokio
    /// runtime.
    pub async fn open(options: &PgOptions) -> Result<PgStore> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("[store] url: {e}")))?;
        // A database that becomes unreachable (not refused: silent) must
        // not hold sessions for the kernel's retransmission timeout
        // (~15 minutes): give up on a connection after 30 s without an
        // answer, so requests fail over to try-later replies and the pool
        // reconnects. The URL's own settings win.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        if !options.url.contains("keepalives_idle") {
            config
                .keepalives_idle(Duration::from_secs(10))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3);
        }
        if !options.url.contains("tcp_user_timeout") {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        let tls = tls(options.ca_file.as_deref())?;
        let mut direct = connect(&config, &tls).await?;
        schema::migrate(&mut direct).await.map_err(pg)?;
        drop(direct);
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("connection pool: {e}")))?;
        let (deliveries, queued) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            pool,
            node: options.node.clone(),
            instance: format!(
                "{}#{}.{}",
                options.node,
                std::process::id(),
                chrono::Utc::now().timestamp_micros()
            ),
            feed: ChangeFeed::default(),
            resolutions: crate::cache::ResolveCache::default(),
            deliveries,
        });
        batch::start(queued, Arc::downgrade(&inner));
        let store = PgStore { inner };
        store.heartbeat().await?;
        let listening = listener::start(config, tls, Arc::downgrade(&store.inner));
        tokio::spawn(housekeeper(Arc::downgrade(&store.inner)));
        // Returned before it listens, the node's subscribers would miss
        // what other nodes commit meanwhile. If it cannot listen yet, it
        // serves all the same and wakes every subscriber once it does.
        if tokio::time::timeout(POOL_WAIT, listening).await.is_err() {
            tracing::warn!("store: not yet listening for other nodes' changes");
        }
        Ok(store)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("database unavailable: {e}")))
    }

    /// Records that this process is alive, and forgets processes gone for a day.
    async fn heartbeat(&self) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO node (name, seen) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET seen = excluded.seen",
            &[&self.inner.instance, &now()],
        )
        .await
        .map_err(pg)?;
        c.execute(
            "DELETE FROM node WHERE seen < $1 \
             AND NOT EXISTS (SELECT 1 FROM maildrop_lock l WHERE l.node = node.name)",
            &[&(now() - 86_400)],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    /// Publishes committed changes to this node's subscribers (other nodes
    /// hear them through NOTIFY, sent by [`notify`] in the transaction).
    pub(crate) fn publish(&self, changes: Vec<Change>) {
        self.inner.feed.publish(changes);
    }
}

/// Runs `$body` in a transaction named `$tx` on a pooled connection of
/// `$store`, committing at the end; retries the whole transaction on a
/// deadlock or serialization failure. `$body` is an expression evaluating to
/// `Result<T>` and may use `?`.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0usize;
        loop {
            let mut client = $store.client().await?;
            let out: $crate::Result<_> = async {
                let $tx = client.transaction().await.map_err($crate::postgres::pg)?;
                let v = { $body }?;
                $crate::postgres::commit($tx, 1).await?;
                Ok(v)
            }
            .await;
            match out {
                Err(e)
                    if $crate::postgres::retryable(&e) && attempt < $crate::postgres::RETRIES =>
                {
                    attempt += 1;
                    continue;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use in_tx;

/// Commits a transaction carrying `jobs` writes, for the store's commit
/// counters (deliveries come in batches, other writes one at a time).
pub(crate) async fn commit(tx: deadpool_postgres::Transaction<'_>, jobs: usize) -> Result<()> {
    let started = std::time::Instant::now();
    tx.commit().await.map_err(pg)?;
    let counters = postgate_metrics::metrics();
    counters.commit_jobs.observe(jobs as f64);
    counters
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(())
}

/// The prefix of a failure worth running the transaction again for.
const RETRY_PREFIX: &str = "retry: ";

/// Maps a database error to the store's terms: lost connections and server
/// trouble are `Backend` (transient: the protocols answer try-later).
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            StoreError::Backend(format!("{RETRY_PREFIX}{e}"))
        }
        // 53100 disk_full: the database server's disk is full (RFC 3463
        // §3.4 "mail system full" to the protocols).
        Some(c) if *c == SqlState::DISK_FULL => StoreError::Full(
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string()),
        ),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Exists(
            e.as_db_error()
                .and_then(|d| d.constraint().map(str::to_string))
                .unwrap_or_else(|| "row".into()),
        ),
        _ => StoreError::Backend(match e.as_db_error() {
            Some(d) => format!("{}: {}", d.code().code(), d.message()),
            None => e.to_string(),
        }),
    }
}

/// A parameter of a statement put together at run time (filters).
pub(crate) type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// Parameters as `query` takes them.
pub(crate) fn param_refs(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// Whether a failed transaction is worth running again.
pub(crate) fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(m) if m.starts_with(RETRY_PREFIX))
}

impl PgStore {
    /// Sends committed mailbox changes to the other nodes: `pg_notify`
    /// inside the transaction, delivered when (and only if) it commits.
    /// Payloads stay under PostgreSQL's 8000-byte limit by splitting.
    pub(crate) async fn notify(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        changes: &[Change],
    ) -> Result<()> {
        for payload in listener::encode(&self.inner.node, changes) {
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await
                .map_err(pg)?;
        }
        Ok(())
    }
}

type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS connector: rustls with ring, the system's (or `ca_file`'s)
/// certificate authorities. Used as `sslmode` says: not at all for
/// `disable`, if offered for `prefer` (the default), always for `require`.
fn tls(ca_file: Option<&std::path::Path>) -> Result<Tls> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let files: Vec<std::path::PathBuf> = match ca_file {
        Some(f) => vec![f.to_path_buf()],
        None => [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .filter(|p| p.exists())
        .take(1)
        .collect(),
    };
    for f in files {
        let certs = CertificateDer::pem_file_iter(&f)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", f.display())))?;
        for cert in certs.flatten() {
            let _ = roots.add(cert);
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A connection outside the pool (migrations, LISTEN), its driver spawned.
async fn connect(config: &tokio_postgres::Config, tls: &Tls) -> Result<tokio_postgres::Client> {
    let (client, connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "store: direct connection ended");
        }
    });
    Ok(client)
}

/// Reads the directory generation for the resolution cache, and keeps the
/// node's heartbeat; ends when the store is dropped.
async fn housekeeper(store: std::sync::Weak<Inner>) {
    let mut last_beat = std::time::Instant::now();
    loop {
        tokio::time::sleep(GENERATION_INTERVAL).await;
        let Some(inner) = store.upgrade() else { break };
        let s = PgStore { inner };
        match directory::generation(&s).await {
            Ok(g) => s.inner.resolutions.observe(g),
            Err(e) => tracing::debug!(error = %e, "store: reading the directory generation"),
        }
        if last_beat.elapsed() >= HEARTBEAT_INTERVAL {
            last_beat = std::time::Instant::now();
            if let Err(e) = s.heartbeat().await {
                tracing::warn!(error = %e, "store: node heartbeat");
            }
        }
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
