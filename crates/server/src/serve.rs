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

    let (trigger, shutdown) = shutdown::channel();
    let mut running = Vec::new();
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
            tokio::spawn(listener::run(
                l,
                service.clone(),
                workers.clone(),
                tls.clone(),
                shutdown.clone(),
            ));
        }
        running.push(Running { service, workers });
        anyhow::Ok(())
    };

    // SMTP: inbound, submission (STARTTLS) and SMTPS (implicit TLS); the
    // session knows which by the listener's role.
    let smtp = Arc::new(postgate_smtp::SmtpService::new(
        postgate_smtp::Settings {
            hostname: config.hostname.clone(),
            config: config.smtp.clone(),
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

    // HTTPS: the client API (and the web console to come), TLS only.
    let console = Arc::new(postgate_console::ConsoleService::new(
        postgate_console::Context {
            hostname: config.hostname.clone(),
            delivery: delivery.clone(),
            auth: auth.clone(),
            max_message_size: config.smtp.max_message_size,
            metrics_token: config.console.metrics_token.clone(),
        },
    ));
    let console_listeners = bind_all(&config.console.listen, "console", true).await?;
    start(console, config.console.threads, console_listeners)?;

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
    // SNMP over UDP: off unless `[snmp] listen` names addresses.
    let snmp = postgate_snmp::Agent::new(postgate_snmp::Settings {
        community: config.snmp.community.clone(),
        allowed: config.snmp.allowed_networks.clone(),
        system: postgate_snmp::mib::System {
            contact: config.snmp.contact.clone(),
            name: config
                .snmp
                .name
                .clone()
                .unwrap_or_else(|| config.hostname.clone()),
            location: config.snmp.location.clone(),
        },
        trap_receivers: config.snmp.trap_receivers.clone(),
        trap_community: config
            .snmp
            .trap_community
            .clone()
            .unwrap_or_else(|| config.snmp.community.clone()),
        v3: snmp_v3,
    });
    for a in &config.snmp.listen {
        let socket = tokio::net::UdpSocket::bind(a.0)
            .await
            .with_context(|| format!("snmp: cannot listen on {}", a.0))?;
        writeln!(
            out,
            "postgate: snmp listening on {} (snmp, udp)",
            socket.local_addr()?
        )?;
        tokio::spawn(snmp.clone().run(socket, shutdown.clone()));
    }

    // The delivery agent: the outbound queue to the Internet. The embedded
    // store has one node, so claims a crash left behind are taken back now.
    let agent = postgate_outbound::Agent::new(
        postgate_outbound::Settings::from_config(&config, true),
        delivery.clone(),
        auth.policy().clone(),
    )
    .map_err(|e| anyhow::anyhow!("[outbound]: {e}"))?;
    let agent_task = tokio::spawn(agent.run(shutdown.clone()));

    writeln!(
        out,
        "postgate: ready (data in {})",
        config.data_dir.display()
    )?;
    out.flush()?;
    drop(out);

    snmp.notify(postgate_snmp::Notification::Started).await;
    wait_for_signal().await;
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

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
