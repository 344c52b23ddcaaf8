//! `postgate serve`: open the store, bind every configured listener, run until
//! SIGINT/SIGTERM, then shut down gracefully.
use anyhow::Context;
use postgate_delivery::{Delivery, JunkRule};
use postgate_runtime::config::Listen;
use postgate_runtime::listener::{self, Listener, Workers};
use postgate_runtime::{Config, Service, shutdown, tls};

use postgate_types::EmailAddress;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long shutdown waits for sessions to finish before leaving anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One service with its listeners and worker pool.
struct Running {
    service: Arc<dyn Service>,
    workers: Workers,
}

pub async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    // Standard error, and the daily files of `[logging] dir` (crate::logs).
    crate::logs::init(&config)?;
    // One crypto backend for the process (../DEPENDENCIES: ring, not aws-lc-rs).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let store = crate::open_store(&config).await?;
    let tls = tls::acceptor(
        config.tls.cert.as_deref(),
        config.tls.key.as_deref(),
        &config.data_dir,
        &config.hostname,
    )?;
    let junk = config
        .delivery
        .junk_headers
        .iter()
        .filter_map(|r| JunkRule::parse(r))
        .collect();
    let postmaster = config
        .delivery
        .postmaster
        .as_deref()
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("[delivery] postmaster: {e}"))?;
    let scheduler = postgate_calendar::Scheduler::new(
        store.clone(),
        config.calendar.time_zone,
        config.hostname.clone(),
    )
    .with_caps(postgate_calendar::Caps {
        per_item: config.calendar.max_occurrences_per_item,
        per_query: config.calendar.max_occurrences_per_query,
    })
    .with_freebusy_answers(config.calendar.answer_freebusy);
    let delivery = Delivery::new(store.clone(), junk, postmaster, config.hostname.clone())
        .with_scheduler(scheduler)
        .with_accounting(crate::logs::accounting(&config)?);
    let limits = &config.limits;
    let auth = postgate_store::auth::Authenticator::new(store.clone()).with_throttle(
        limits.login_free_failures,
        limits.login_penalty,
        limits.login_penalty_max,
    );

    // The SNMP agent: made first, so that a listener that stops unasked can
    // say so (postgateServiceFailed). Thresholds set over SNMP are kept in
    // the data directory and take the place of the config's.
    // SNMPv3, when users are configured: the local engine (one boot more
    // than last time, RFC 3414 §2.2) and each user's keys, localised once
    // here rather than per request (RFC 3414 §2.6).
    let snmp_v3 = if config.snmp.users.is_empty() {
        None
    } else {
        let engine =
            postgate_snmp::engine::Engine::load(&config.data_dir, config.snmp.engine_id.as_deref())
                .with_context(|| {
                    format!(
                        "snmp: cannot keep the engine's boots in {}",
                        config.data_dir.display()
                    )
                })?;
        let users = config
            .snmp
            .users
            .iter()
            .map(|(name, u)| {
                postgate_snmp::usm::User::new(name, &u.auth_password, &u.priv_password, engine.id())
                    .writer(u.write)
            })
            .collect();
        tracing::info!(
            engine_id = %format!("0x{}", postgate_snmp::engine::hex(engine.id())),
            boots = engine.boots(),
            "snmp: SNMPv3 engine"
        );
        Some(postgate_snmp::usm::Settings {
            engine,
            users,
            trap_user: config.snmp.trap_user.clone(),
        })
    };
    let snmp_config = &config.snmp;
    let snmp = postgate_snmp::Agent::with_state(
        postgate_snmp::Settings {
            community: snmp_config.community.clone(),
            write_community: snmp_config.write_community.clone(),
            allowed: snmp_config.allowed_networks.clone(),
            system: postgate_snmp::mib::System {
                contact: snmp_config.contact.clone(),
                name: snmp_config
                    .name
                    .clone()
                    .unwrap_or_else(|| config.hostname.clone()),
                location: snmp_config.location.clone(),
            },
            trap_receivers: snmp_config.trap_receivers.clone(),
            trap_community: snmp_config
                .trap_community
                .clone()
                .unwrap_or_else(|| snmp_config.community.clone()),
            inform: snmp_config.inform,
            queue_depth_threshold: snmp_config.queue_depth_threshold,
            deferred_age_threshold: snmp_config
                .deferred_age_threshold
                .as_secs()
                .min(u32::MAX as u64) as u32,
            auth_failure_storm: snmp_config.auth_failure_storm,
            auth_failure_window: snmp_config.auth_failure_window,
            v3: snmp_v3,
        },
        &config.data_dir,
    )
    .map_err(|e| anyhow::anyhow!("[snmp]: {e} (fix the file or remove it)"))?;

    let (trigger, shutdown) = shutdown::channel();
    let mut running = Vec::new();
    // What the console's status page shows of this process.
    let board = postgate_runtime::status::StatusBoard::new();
    let mut out = std::io::stdout().lock();

    let per_ip = config.limits.per_ip_connections;
    let mut start = |service: Arc<dyn Service>, threads: usize, listeners: Vec<Listener>| {
        let workers = Workers::with_per_ip(threads, per_ip);
        postgate_metrics::metrics()
            .workers
            .get_or_create(&postgate_metrics::ServiceLabel {
                service: service.name(),
            })
            .set(threads as i64);
        for l in listeners {
            let kind = if l.implicit_tls {
                "implicit TLS"
            } else {
                "STARTTLS"
            };
            writeln!(
                out,
                "postgate: {} listening on {} ({}, {kind})",
                service.name(),
                l.local_addr()?,
                l.role
            )?;
            board.add(
                service.name(),
                postgate_runtime::status::Endpoint {
                    addr: l.local_addr()?,
                    role: l.role,
                    transport: kind,
                },
                Some(workers.clone()),
                threads,
            );
            let accept = tokio::spawn(listener::run(
                l,
                service.clone(),
                workers.clone(),
                tls.clone(),
                shutdown.clone(),
            ));
            watch_listener(
                accept,
                service.name(),
                snmp.clone(),
                board.clone(),
                shutdown.clone(),
            );
        }
        running.push(Running { service, workers });
        anyhow::Ok(())
    };

    // The one resolver (`[dns]`): inbound checks, mail authentication, MX
    // lookups and MTA-STS share it and its caches.
    let dns = postgate_dns::Dns::new(
        &config.dns.servers(),
        config.dns.cache_size,
        config.dns.timeout,
    )
    .map_err(|e| anyhow::anyhow!("[dns]: {e}"))?;

    // SMTP: inbound, submission (STARTTLS) and SMTPS (implicit TLS); the
    // session knows which by the listener's role.
    let smtp = Arc::new(postgate_smtp::SmtpService::new(
        postgate_smtp::Settings {
            hostname: config.hostname.clone(),
            config: config.smtp.clone(),
            dns: dns.clone(),
        },
        delivery.clone(),
        auth.clone(),
    ));
    let mut smtp_listeners = bind_all(&config.smtp.listen, "smtp", false).await?;
    smtp_listeners.extend(bind_all(&config.smtp.submission, "submission", false).await?);
    smtp_listeners.extend(bind_all(&config.smtp.smtps, "smtps", true).await?);
    start(smtp, config.smtp.threads, smtp_listeners)?;

    let imap = Arc::new(postgate_imap::ImapService::new(postgate_imap::Context {
        hostname: config.hostname.clone(),
        config: config.imap.clone(),
        store: store.clone(),
        auth: auth.clone(),
    }));
    let mut imap_listeners = bind_all(&config.imap.listen, "imap", false).await?;
    imap_listeners.extend(bind_all(&config.imap.imaps, "imaps", true).await?);
    start(imap, config.imap.threads, imap_listeners)?;

    let pop3 = Arc::new(postgate_pop3::Pop3Service::new(
        postgate_pop3::Context::new(
            config.hostname.clone(),
            config.pop3.clone(),
            store.clone(),
            auth.clone(),
        ),
    ));
    let mut pop3_listeners = bind_all(&config.pop3.listen, "pop3", false).await?;
    pop3_listeners.extend(bind_all(&config.pop3.pop3s, "pop3s", true).await?);
    start(pop3, config.pop3.threads, pop3_listeners)?;

    // LDAP: the directory for address books (StartTLS and LDAPS).
    let ldap = Arc::new(postgate_ldap::LdapService::new(
        postgate_ldap::Context::new(config.ldap.clone(), store.clone(), auth.clone()),
    ));
    let mut ldap_listeners = bind_all(&config.ldap.listen, "ldap", false).await?;
    ldap_listeners.extend(bind_all(&config.ldap.ldaps, "ldaps", true).await?);
    start(ldap, config.ldap.threads, ldap_listeners)?;

    // HTTPS: the client API and the web console, TLS only. The console's
    // charts come from the counters sampled into the store every minute.
    let node = config
        .store
        .node
        .clone()
        .unwrap_or_else(|| config.hostname.clone());
    let sampler = postgate_console::sampler::Sampler::new();
    tokio::spawn(
        sampler
            .clone()
            .run(store.clone(), node.clone(), shutdown.clone()),
    );
    let console = Arc::new(postgate_console::ConsoleService::new(
        postgate_console::Context {
            hostname: config.hostname.clone(),
            delivery: delivery.clone(),
            auth: auth.clone(),
            max_message_size: config.smtp.max_message_size,
            metrics_token: config.console.metrics_token.clone(),
            web: postgate_console::web::WebSettings {
                board: board.clone(),
                log: postgate_runtime::logring::LogRing::global().clone(),
                version: env!("CARGO_PKG_VERSION"),
                node,
                backend: match config.store.backend {
                    postgate_runtime::config::StoreBackend::Embedded => "embedded (SQLite)",
                    postgate_runtime::config::StoreBackend::Postgres => "postgres (PostgreSQL)",
                },
                data_dir: config.data_dir.clone(),
                self_signed: config.tls.cert.is_none(),
                queue_threshold: u64::from(config.snmp.queue_depth_threshold),
                config_warnings: config_warnings(&config),
                config_text: config.effective_toml(),
                config_source: config.source.clone(),
                accounting_dir: config.logging.accounting.then(|| config.accounting_dir()),
            },
            sampler,
            shutdown: shutdown.clone(),
        },
    ));
    let console_listeners = bind_all(&config.console.listen, "console", true).await?;
    start(console, config.console.threads, console_listeners)?;

    // SNMP over UDP: off unless `[snmp] listen` names addresses (the agent
    // was made before the services, to hear of their failures).
    for a in &config.snmp.listen {
        let socket = tokio::net::UdpSocket::bind(a.0)
            .await
            .with_context(|| format!("snmp: cannot listen on {}", a.0))?;
        writeln!(
            out,
            "postgate: snmp listening on {} (snmp, udp)",
            socket.local_addr()?
        )?;
        board.add(
            "snmp",
            postgate_runtime::status::Endpoint {
                addr: socket.local_addr()?,
                role: "snmp",
                transport: "udp",
            },
            None,
            0,
        );
        let serve = tokio::spawn(snmp.clone().run(socket, shutdown.clone()));
        watch_listener(serve, "snmp", snmp.clone(), board.clone(), shutdown.clone());
    }
    // Queue thresholds and failed-login storms, watched for notifications.
    tokio::spawn(snmp.clone().monitor(shutdown.clone()));

    // The delivery agent: the outbound queue to the Internet. The embedded
    // store has one node, so claims a crash left behind are taken back now.
    let agent = postgate_outbound::Agent::new(
        postgate_outbound::Settings::from_config(&config, true),
        delivery.clone(),
        auth.policy().clone(),
        dns.clone(),
    )
    .map_err(|e| anyhow::anyhow!("[outbound]: {e}"))?;
    let agent_task = tokio::spawn(agent.run(shutdown.clone()));

    // Before "ready": a signal from then on begins an orderly shutdown.
    let signalled = shutdown_signal();
    writeln!(
        out,
        "postgate: ready (data in {})",
        config.data_dir.display()
    )?;
    out.flush()?;
    drop(out);

    snmp.notify(postgate_snmp::Notification::Started).await;
    signalled.await;
    tracing::info!("shutting down");
    snmp.notify(postgate_snmp::Notification::Stopping).await;
    trigger.trigger();
    if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(5), agent_task)
        .await
        .is_err()
    {
        tracing::warn!("outbound deliveries still under way at shutdown");
    }
    for r in &running {
        if !r.workers.drain(DRAIN_TIMEOUT).await {
            tracing::warn!(
                service = r.service.name(),
                sessions = r.workers.busy(),
                "sessions still open at shutdown"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the console's status page warns of in the configuration itself.
fn config_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !config.snmp.listen.is_empty() && config.snmp.community == "public" {
        out.push(
            "SNMP answers to the community \"public\": set [snmp] community, or SNMPv3 users."
                .to_string(),
        );
    }
    out
}

/// Waits for a listener's task: if it ends (returns or panics) before
/// shutdown began, its service has failed: postgateServiceFailed, and the
/// console's status page says so.
fn watch_listener(
    task: tokio::task::JoinHandle<()>,
    service: &'static str,
    snmp: Arc<postgate_snmp::Agent>,
    board: postgate_runtime::status::StatusBoard,
    shutdown: shutdown::Shutdown,
) {
    tokio::spawn(async move {
        let ended = task.await;
        if shutdown.is_triggered() {
            return;
        }
        if let Err(e) = ended {
            tracing::error!(service, error = %e, "listener task died");
        }
        board.failed(service);
        snmp.service_failed(service).await;
    });
}

async fn bind_all(
    addrs: &[Listen],
    role: &'static str,
    implicit: bool,
) -> anyhow::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(
            Listener::bind(a.0, role, implicit)
                .await
                .with_context(|| format!("{role}: cannot listen on {}", a.0))?,
        );
    }
    Ok(out)
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal that comes between "ready" and
/// the wait (while postgateStarted is sent) is not lost to the default
/// action, which ends the process without a word.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn wait(s: Option<&mut Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = wait(term.as_mut()) => {}
            _ = wait(int.as_mut()) => {}
        }
    }
}
