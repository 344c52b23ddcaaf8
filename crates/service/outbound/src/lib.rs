//! The delivery agent: empties the outbound queue to the Internet over SMTP
//! (RFC 5321), the way a production MTA does.
//!
//! Data flow: submission, the client API and DSNs put mail in the store's
//! queue (one row per message, one per remote recipient, in the same commit
//! that acknowledged it). [`Agent::run`] claims due recipients with a lease,
//! groups them by destination domain, finds the next hops (route table, smart
//! host, or MX per RFC 5321 §5.1), and sends over one connection per host for
//! as many messages as it can ([`client`]), reusing idle connections for a
//! while after. Each recipient's outcome is recorded as soon as its message is
//! done: sent, failed (with a DSN to the sender, RFC 3464), or retried later on
//! the configured schedule until `max_age`, with one delay DSN on the way.
//!
//! Nothing is lost: a claim is a lease, so work cut short by a crash comes due
//! again (at once on restart, see [`postgate_store::Queue::release_leases`]);
//! the worst a crash can do is send a message twice.
#![deny(missing_docs)]

pub mod client;
pub mod dkim;
pub mod mta_sts;
mod pool;
pub mod route;
mod settle;

use client::{Session, Verdict};
use mta_sts::Mode;
use pool::Pool;
use postgate_delivery::Delivery;
use postgate_runtime::config::TlsPolicy;
use postgate_runtime::shutdown::Shutdown;
use postgate_store::{QueuedMessage, QueuedRcpt, RcptOutcome};
use postgate_types::access::Direction;
use route::{Hop, RouteError, Router};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How many recipients one claim takes at most.
const CLAIM_LIMIT: usize = 500;
/// How often the queue is looked at when nobody signals new mail (for
/// retries coming due, and mail queued by other nodes or the CLI).
const POLL: Duration = Duration::from_secs(1);
/// How long an idle connection is kept for the next message to its host.
const IDLE_KEEP: Duration = Duration::from_secs(5);

/// What the agent needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our name, for EHLO.
    pub hostname: String,
    /// Concurrent deliveries.
    pub threads: usize,
    /// A smart host for everything not routed otherwise.
    pub relay: Option<Hop>,
    /// AUTH credentials for the smart host.
    pub relay_credentials: Option<(String, String)>,
    /// Per-domain next hops: a domain, or ".domain" for it and its subdomains.
    pub routes: Vec<(String, Hop)>,
    /// A DNS server to ask instead of the server's one resolver (`[dns]`).
    pub resolver: Option<SocketAddr>,
    /// The port of MX hosts.
    pub port: u16,
    /// The STARTTLS policy.
    pub tls: TlsPolicy,
    /// Per-domain STARTTLS policies.
    pub tls_domains: HashMap<String, TlsPolicy>,
    /// Waits between attempts; the last repeats.
    pub retry_intervals: Vec<Duration>,
    /// When to give up.
    pub max_age: Duration,
    /// When to send a delay DSN.
    pub delay_warning: Duration,
    /// How long a claim lasts.
    pub lease: Duration,
    /// Connecting.
    pub connect_timeout: Duration,
    /// A reply to a command.
    pub command_timeout: Duration,
    /// The reply after the data.
    pub data_timeout: Duration,
    /// Messages per connection.
    pub max_messages_per_connection: usize,
    /// This node is the only one on its store (the embedded store): claims
    /// left by a previous run are taken back at once on start.
    pub exclusive: bool,
    /// MTA-STS (RFC 8461) for destinations found by MX lookup.
    pub mta_sts: bool,
    /// The HTTPS port of MTA-STS policy hosts (443).
    pub mta_sts_port: u16,
    /// Trust anchors (a PEM file) beside the system's roots, for verified
    /// TLS to next hops and to MTA-STS policy hosts.
    pub tls_ca: Option<PathBuf>,
    /// How often the DKIM keys are read again from the store.
    pub dkim_refresh: Duration,
}

impl Settings {
    /// The settings from the `[outbound]` section.
    pub fn from_config(c: &postgate_runtime::config::Config, exclusive: bool) -> Settings {
        let o = &c.outbound;
        let hop = |s: &str| {
            postgate_runtime::config::parse_next_hop(s, 25)
                .map(|(host, port)| Hop::named(&host, port))
        };
        Settings {
            hostname: c.hostname.clone(),
            threads: o.threads.max(1),
            relay: o.relay.as_deref().and_then(hop),
            relay_credentials: o.relay_user.clone().zip(o.relay_password.clone()),
            routes: o
                .routes
                .iter()
                .filter_map(|(d, h)| Some((d.to_ascii_lowercase(), hop(h)?)))
                .collect(),
            resolver: o.resolver.as_deref().and_then(|r| r.parse().ok()),
            port: o.port,
            tls: o.tls,
            tls_domains: o
                .tls_domains
                .iter()
                .map(|(d, p)| (d.to_ascii_lowercase(), *p))
                .collect(),
            retry_intervals: o.retry_intervals.clone(),
            max_age: o.max_age,
            delay_warning: o.delay_warning,
            lease: o.lease,
            connect_timeout: o.connect_timeout,
            command_timeout: o.command_timeout,
            data_timeout: o.data_timeout,
            max_messages_per_connection: o.max_messages_per_connection.max(1),
            exclusive,
            mta_sts: o.mta_sts,
            mta_sts_port: o.mta_sts_port,
            tls_ca: o.tls_ca.clone(),
            // Never a busy loop of store reads.
            dkim_refresh: o.dkim_refresh.max(Duration::from_millis(100)),
        }
    }

    /// The STARTTLS policy for a domain.
    fn tls_for(&self, domain: &str) -> TlsPolicy {
        self.tls_domains.get(domain).copied().unwrap_or(self.tls)
    }
}

/// One message's recipients for one domain, as claimed.
#[derive(Debug, Clone)]
struct Job {
    message: Arc<QueuedMessage>,
    rcpts: Vec<QueuedRcpt>,
    /// The MTA-STS mode applied to the attempt ("enforce", "testing",
    /// "none"), for the accounting record; `None` when MTA-STS was not
    /// looked at (a route, the relay, or off).
    mta_sts: Option<&'static str>,
}

/// The delivery agent.
#[derive(Debug)]
pub struct Agent {
    settings: Settings,
    delivery: Delivery,
    router: Router,
    pool: Pool,
    connector: client::Connector,
    /// Blocked destinations (`postgate block add … --direction out`).
    policy: postgate_store::access::Policy,
    /// MTA-STS policies (RFC 8461); `None` when `[outbound] mta_sts` is off.
    mta_sts: Option<mta_sts::Resolver>,
    /// DKIM keys, parsed, refreshed from the store while running.
    dkim: Arc<dkim::Signer>,
}

/// How often the queue's depth is sampled for the counters.
const QUEUE_SAMPLE: Duration = Duration::from_secs(5);

/// Sets the queue counters from the store.
async fn sample_queue(store: &dyn postgate_store::Store) {
    let Ok(d) = store.queue_depth().await else {
        return;
    };
    let m = postgate_metrics::metrics();
    for (state, n) in [
        ("due", d.due),
        ("deferred", d.deferred),
        ("in_flight", d.in_flight),
        ("held", d.held),
    ] {
        m.queue
            .get_or_create(&postgate_metrics::QueueLabel { state })
            .set(n as i64);
    }
    m.queue_oldest_seconds
        .set(d.oldest.map_or(0, |t| (now() - t).max(0)));
}

impl Agent {
    /// An agent over the delivery's store, asking `policy` (the server's
    /// one policy point) about blocked destinations.
    pub fn new(
        settings: Settings,
        delivery: Delivery,
        policy: postgate_store::access::Policy,
        dns: postgate_dns::Dns,
    ) -> Result<Arc<Agent>, String> {
        // MX lookups and MTA-STS see the same DNS: the shared resolver, or
        // `[outbound] resolver` when that overrides it.
        let dns = match settings.resolver {
            Some(addr) => postgate_dns::Dns::new(&[addr], 1024, Duration::from_secs(5))?,
            None => dns,
        };
        let router = Router::new(&dns);
        let extra_roots = match &settings.tls_ca {
            Some(path) => load_certificates(path)?,
            None => Vec::new(),
        };
        let connector = client::Connector::new(extra_roots)?;
        let mta_sts = settings
            .mta_sts
            .then(|| mta_sts::Resolver::new(dns, connector.clone(), settings.mta_sts_port));
        Ok(Arc::new(Agent {
            dkim: Arc::new(dkim::Signer::new(delivery.store().clone())),
            policy,
            settings,
            delivery,
            router,
            pool: Pool::new(IDLE_KEEP),
            connector,
            mta_sts,
        }))
    }

    /// Runs until shutdown: claims due mail and hands it to workers.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let store = self.delivery.store().clone();
        if self.settings.exclusive {
            match store.release_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(recipients = n, "outbound: resuming deliveries cut short"),
                Err(e) => tracing::error!(error = %e, "outbound: cannot release leases"),
            }
        }
        if let Err(e) = self.dkim.refresh().await {
            tracing::error!(error = %e, "outbound: cannot read the DKIM keys");
        }
        let dkim_refresh = tokio::spawn(
            self.dkim
                .clone()
                .refresh_every(self.settings.dkim_refresh, shutdown.clone()),
        );
        let signal = self.delivery.queue_signal();
        // The queue's depth by state, sampled for the counters.
        let sampler = {
            let (store, mut shutdown) = (store.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    sample_queue(store.as_ref()).await;
                    tokio::select! {
                        _ = tokio::time::sleep(QUEUE_SAMPLE) => {}
                        _ = shutdown.wait() => break,
                    }
                }
            })
        };
        let workers = Arc::new(Semaphore::new(self.settings.threads));
        let lease = self.settings.lease.as_secs().max(10) as i64;
        loop {
            if shutdown.is_triggered() {
                break;
            }
            // Claim only when a worker is free: waiting work stays in the
            // queue, where other nodes can take it, not in this one's memory.
            let permit = tokio::select! {
                p = workers.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.wait() => break,
            };
            let batch = match store.claim_due(now(), lease, CLAIM_LIMIT).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "outbound: cannot read the queue");
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.wait() => break,
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                drop(permit);
                self.pool.sweep().await;
                tokio::select! {
                    _ = signal.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.wait() => break,
                }
                continue;
            }
            let mut permit = Some(permit);
            for (domain, jobs) in by_domain(batch) {
                let agent = self.clone();
                let held = permit.take();
                let workers = workers.clone();
                tokio::spawn(async move {
                    let _permit = match held {
                        Some(p) => p,
                        None => match workers.acquire_owned().await {
                            Ok(p) => p,
                            Err(_) => return,
                        },
                    };
                    agent.deliver_domain(&domain, jobs).await;
                });
            }
        }
        // Let deliveries under way finish (their leases cover them if not).
        let all = self.settings.threads as u32;
        let _ = tokio::time::timeout(Duration::from_secs(10), workers.acquire_many(all)).await;
        self.pool.close_all().await;
        sampler.abort();
        dkim_refresh.abort();
    }

    /// Sends every job for one domain.
    async fn deliver_domain(&self, domain: &str, mut jobs: Vec<Job>) {
        let blocked = self.policy.blocked(Direction::Out, None, &[domain]).await;
        let refuse = match blocked {
            Ok(Some(b)) => Some(Verdict::permanent(
                "5.7.1",
                &format!("delivery to {domain} is blocked by policy ({})", b.pattern),
            )),
            Ok(None) => None,
            Err(e) => Some(Verdict::temporary("4.3.0", &e.to_string())),
        };
        if let Some(verdict) = refuse {
            // Never connected to.
            for job in &jobs {
                let all = vec![verdict.clone(); job.rcpts.len()];
                self.settle(job, &all, None, None, None).await;
            }
            return;
        }
        let mut hops = match self.router.route(domain, &self.settings).await {
            Ok(h) => h,
            Err(e) => {
                let verdict = match e {
                    RouteError::Temporary(text) => {
                        Verdict::temporary("4.4.3", &text).because("dns")
                    }
                    RouteError::Permanent { status, text } => {
                        Verdict::permanent(status, &text).because("dns")
                    }
                };
                for job in &jobs {
                    let all = vec![verdict.clone(); job.rcpts.len()];
                    self.settle(job, &all, None, None, None).await;
                }
                return;
            }
        };
        let mut tls = if hops.relay {
            self.settings.tls
        } else {
            self.settings.tls_for(domain)
        };
        // RFC 8461 applies to hosts found by MX lookup only, not to routes
        // or the smart host the operator chose.
        let sts = match &self.mta_sts {
            Some(resolver) if hops.mx => {
                let found = self
                    .apply_mta_sts(resolver, domain, &mut hops, &mut tls)
                    .await;
                let mode = found
                    .as_ref()
                    .map_or("enforce", |m| m.map_or("none", Mode::as_str));
                for job in &mut jobs {
                    job.mta_sts = Some(mode);
                }
                match found {
                    Ok(mode) => mode.map(|m| (domain, m)),
                    Err(verdict) => {
                        for job in &jobs {
                            let all = vec![verdict.clone(); job.rcpts.len()];
                            self.settle(job, &all, None, None, None).await;
                        }
                        return;
                    }
                }
            }
            _ => None,
        };
        let credentials = if hops.relay {
            self.settings.relay_credentials.as_ref()
        } else {
            None
        };
        let mut session: Option<Session> = None;
        let mut jobs = jobs.into_iter().peekable();
        while let Some(job) = jobs.next() {
            if session
                .as_ref()
                .is_some_and(|s| s.sent() >= self.settings.max_messages_per_connection)
                && let Some(s) = session.take()
            {
                s.quit().await;
            }
            if session.is_none() {
                match self.open(&hops.hops, tls, credentials, sts).await {
                    Ok(s) => session = Some(s),
                    Err(verdict) => {
                        // No host takes connections: everything for this
                        // domain waits for its next try.
                        let all = vec![verdict.clone(); job.rcpts.len()];
                        self.settle(&job, &all, None, None, None).await;
                        for job in jobs.by_ref() {
                            let all = vec![verdict.clone(); job.rcpts.len()];
                            self.settle(&job, &all, None, None, None).await;
                        }
                        return;
                    }
                }
            }
            let Some(s) = session.as_mut() else { continue };
            let data = match self
                .delivery
                .store()
                .message_bytes(job.message.message)
                .await
            {
                Ok(Some(d)) => d,
                Ok(None) => {
                    tracing::error!(
                        queue = job.message.id,
                        "outbound: queued message has no content"
                    );
                    let all = vec![
                        Verdict::permanent("5.3.0", "message content missing");
                        job.rcpts.len()
                    ];
                    self.settle(&job, &all, None, None, None).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbound: cannot read a queued message");
                    let all = vec![Verdict::temporary("4.3.0", &e.to_string()); job.rcpts.len()];
                    self.settle(&job, &all, None, None, None).await;
                    continue;
                }
            };
            // RFC 6376: signed just before it goes, once per attempt.
            let envelope_domain = job
                .message
                .outbound
                .mail_from
                .rsplit_once('@')
                .map_or("", |(_, d)| d);
            let (data, dkim) = self.dkim.sign(data, envelope_domain).await;
            let verdicts = s
                .send(
                    &job.message.outbound,
                    &job.rcpts,
                    &data,
                    self.settings.data_timeout,
                )
                .await;
            let broken = s.is_broken();
            self.settle(&job, &verdicts, Some(&*s), Some(&data), Some(&dkim))
                .await;
            if broken {
                session = None;
                // The next job reconnects; it is not charged for this one's
                // broken connection unless the reconnect fails too.
                if jobs.peek().is_none() {
                    break;
                }
            }
        }
        if let Some(s) = session {
            self.pool.put(s).await;
        }
    }

    /// RFC 8461 §4, §5: finds `domain`'s MTA-STS policy and counts it.
    /// Enforce: takes the MX hosts the policy does not name out of `hops`
    /// (§4.1) and makes TLS verified (§4.2), overriding a weaker `tls`;
    /// `Err` (temporary) when no host is left. Testing: logs the hosts
    /// enforce would skip. The mode applied (`None`: no policy, or "none").
    async fn apply_mta_sts(
        &self,
        resolver: &mta_sts::Resolver,
        domain: &str,
        hops: &mut route::Hops,
        tls: &mut TlsPolicy,
    ) -> Result<Option<Mode>, Verdict> {
        let counters = postgate_metrics::metrics();
        let found = resolver.policy(domain).await;
        if found.fetch_failed.is_some() {
            counters.check("mta_sts", "fetch_failed");
        }
        let Some(policy) = found.policy.filter(|p| p.mode != Mode::None) else {
            counters.check("mta_sts", "none");
            return Ok(None);
        };
        counters.check("mta_sts", policy.mode.as_str());
        let refused: Vec<String> = hops
            .hops
            .iter()
            .filter(|h| !policy.allows(&h.host))
            .map(|h| h.host.clone())
            .collect();
        if !refused.is_empty() {
            counters.check("mta_sts", "mx_mismatch");
        }
        for mx in &refused {
            let reason = format!(
                "MX host {mx} does not match the policy's mx {:?}",
                policy.mx
            );
            match policy.mode {
                Mode::Enforce => {
                    tracing::info!(
                        domain,
                        mx,
                        reason,
                        "outbound: MTA-STS (enforce): host skipped"
                    )
                }
                _ => tracing::warn!(
                    domain,
                    mx,
                    reason,
                    "outbound: MTA-STS (testing): enforce would not deliver"
                ),
            }
        }
        if policy.mode == Mode::Testing {
            return Ok(Some(Mode::Testing));
        }
        // §4.1: only hosts the policy names, in the MX order.
        hops.hops.retain(|h| policy.allows(&h.host));
        if hops.hops.is_empty() {
            // §4.2: no valid MX host; the mail waits (§5: a temporary
            // failure) for the policy or the MX records to change.
            return Err(Verdict::temporary(
                "4.7.5",
                &format!(
                    "MTA-STS policy of {domain} (enforce): no MX host matches its mx {:?} ({})",
                    policy.mx,
                    refused.join(", ")
                ),
            )
            .because("dns"));
        }
        // §4.2: TLS with a certificate valid for the MX host, whatever the
        // configured policy.
        *tls = TlsPolicy::Verify;
        Ok(Some(Mode::Enforce))
    }

    /// A session with the first host that takes one, reusing an idle one.
    /// `sts` is the domain and the MTA-STS mode in force (enforce or
    /// testing): TLS failures under it are counted and named, and under
    /// testing the certificate is checked after the fact (RFC 8461 §5).
    async fn open(
        &self,
        hops: &[Hop],
        tls: TlsPolicy,
        credentials: Option<&(String, String)>,
        sts: Option<(&str, Mode)>,
    ) -> Result<Session, Verdict> {
        let mut last = Verdict::temporary("4.4.1", "no host to connect to").because("dns");
        let (mut tried, mut blocked) = (0, 0);
        for hop in hops {
            let addrs = match self.router.addresses(hop).await {
                Ok(a) => a,
                Err(e) => {
                    last =
                        Verdict::temporary("4.4.3", &format!("{}: {e}", hop.host)).because("dns");
                    continue;
                }
            };
            for addr in addrs {
                tried += 1;
                match self
                    .policy
                    .blocked(Direction::Out, Some(addr), &[hop.host.as_str()])
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(b)) => {
                        tracing::info!(host = %hop.host, %addr, pattern = %b.pattern, "outbound: destination blocked");
                        blocked += 1;
                        continue;
                    }
                    Err(e) => return Err(Verdict::temporary("4.3.0", &e.to_string())),
                }
                let target = SocketAddr::new(addr, hop.port);
                let opened = match self.pool.take(target, tls, credentials).await {
                    Some(s) => Ok(s),
                    None => {
                        Session::connect(
                            &self.connector,
                            hop,
                            target,
                            tls,
                            credentials,
                            &self.settings,
                        )
                        .await
                    }
                };
                match opened {
                    Ok(s) => {
                        if let Some((domain, Mode::Testing)) = sts
                            && let Err(reason) = s.verify_peer(&self.connector)
                        {
                            postgate_metrics::metrics().check("mta_sts", "tls_failed");
                            tracing::warn!(domain, mx = %hop.host, reason, "outbound: MTA-STS (testing): enforce would not deliver");
                        }
                        return Ok(s);
                    }
                    Err(mut v) => {
                        if let Some((domain, Mode::Enforce)) = sts
                            && v.failure == "tls"
                        {
                            // §4.2: the host fails the policy; the next may not.
                            postgate_metrics::metrics().check("mta_sts", "tls_failed");
                            v.text = format!("MTA-STS policy of {domain} (enforce): {}", v.text);
                        }
                        tracing::info!(host = %hop.host, addr = %target, error = %v.text, "outbound: connection failed");
                        last = v;
                    }
                }
            }
        }
        if tried > 0 && blocked == tried {
            return Err(Verdict::permanent(
                "5.7.1",
                "every host for the destination is blocked by policy",
            ));
        }
        Err(last)
    }

    /// Records each recipient's outcome, after sending the DSNs they call
    /// for: a crash between the two repeats a DSN rather than losing one.
    /// `session` is the connection the verdicts came from (`None` when none
    /// was made). `data` is the message when the caller has it; it is read
    /// only if a DSN (or accounting, for its Message-ID) needs it. `dkim`:
    /// how the message sent was signed, for the accounting record.
    async fn settle(
        &self,
        job: &Job,
        verdicts: &[Verdict],
        session: Option<&Session>,
        data: Option<&[u8]>,
        dkim: Option<&dkim::Outcome>,
    ) {
        let peer = session.map(|s| (s.peer_name(), s.has_dsn()));
        let now = now();
        let counters = postgate_metrics::metrics();
        let mut sent = 0;
        for v in verdicts {
            let outcome = match v.class {
                2 => {
                    sent += 1;
                    counters
                        .outbound_seconds
                        .observe((now - job.message.created).max(0) as f64);
                    "sent"
                }
                4 => "deferred",
                _ => "failed",
            };
            if v.class != 2 {
                counters
                    .outbound_failures
                    .get_or_create(&postgate_metrics::FailureLabel { kind: v.failure })
                    .inc();
            }
            counters
                .outbound
                .get_or_create(&postgate_metrics::OutcomeLabel { outcome })
                .inc();
        }
        if sent > 0 {
            counters.message("out", data.map_or(0, |d| d.len() as u64), sent);
        }
        let plan = settle::plan(
            &self.settings,
            &job.message,
            &job.rcpts,
            verdicts,
            peer,
            now,
        );
        for line in &plan.log {
            tracing::info!("{line}");
        }
        let accounting = self.delivery.accounting();
        let loaded;
        let data = match data {
            Some(d) => d,
            None if !plan.report.is_empty() || accounting.is_on() => {
                loaded = self
                    .delivery
                    .store()
                    .message_bytes(job.message.message)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                &loaded
            }
            None => &[],
        };
        if accounting.is_on() {
            accounting.record(&settle::out_record(
                job, verdicts, &plan, session, data, dkim,
            ));
        }
        if !plan.report.is_empty() {
            counters.dsns.inc();
            let bounce = plan
                .report
                .iter()
                .any(|r| r.action == postgate_mime::dsn::Action::Failed);
            let ob = &job.message.outbound;
            let sent = self
                .delivery
                .report(
                    &ob.mail_from,
                    ob.env_id.as_deref(),
                    job.message.created,
                    plan.report,
                    data,
                    ob.ret
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case("FULL")),
                )
                .await;
            if bounce && sent.is_some() {
                counters.bounces.inc();
            }
            if bounce
                && accounting.is_on()
                && let Some(dsn) = sent
            {
                accounting.record(&settle::bounce_record(job.message.id, dsn));
            }
        }
        if let Err(e) = self.delivery.store().record(plan.outcomes).await {
            // The lease brings these recipients back: a repeat, not a loss.
            tracing::error!(error = %e, queue = job.message.id, "outbound: cannot record outcomes");
        }
    }
}

/// Groups claimed recipients by destination domain, keeping message order.
fn by_domain(batch: Vec<QueuedMessage>) -> BTreeMap<String, Vec<Job>> {
    let mut out: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for mut m in batch {
        let rcpts = std::mem::take(&mut m.rcpts);
        let message = Arc::new(m);
        let mut per: BTreeMap<String, Vec<QueuedRcpt>> = BTreeMap::new();
        for r in rcpts {
            per.entry(r.domain.clone()).or_default().push(r);
        }
        for (domain, rcpts) in per {
            out.entry(domain).or_default().push(Job {
                message: message.clone(),
                rcpts,
                mta_sts: None,
            });
        }
    }
    out
}

/// The certificates of a PEM file (`[outbound] tls_ca`).
fn load_certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("tls_ca {}: no certificates", path.display()));
    }
    Ok(certs)
}

/// Unix seconds now.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What to do with a recipient, apart from the DSN.
pub(crate) fn outcome_for_log(o: &RcptOutcome) -> &'static str {
    match o {
        RcptOutcome::Sent => "sent",
        RcptOutcome::Failed(_) => "bounced",
        RcptOutcome::Retry { .. } => "deferred",
    }
}
