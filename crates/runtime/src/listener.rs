//! The listener layer every service runs on: accept, implicit TLS, the worker
//! limit with the protocol's own try-later reply, per-session tracing span, and
//! graceful shutdown.
use crate::tls::Tls;
use crate::{Shutdown, Stream};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// How long a client has to complete a TLS handshake: generous for slow links,
/// short enough that half-open handshakes cannot hold workers for long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Refused connections are answered by small tasks of their own; at most this
/// many at once, so a connection flood cannot turn refusals into a new load.
const MAX_REFUSALS: usize = 64;

/// A protocol engine.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Name for logs and metrics ("smtp", "imap").
    fn name(&self) -> &'static str;
    /// What a client gets when every worker is busy, before it is closed:
    /// the protocol's own try-later reply, CRLF included.
    fn busy_reply(&self) -> &'static [u8];
    /// Serves one connection to its end.
    async fn serve(&self, conn: Conn);
}

/// One accepted connection and its context.
#[derive(Debug)]
pub struct Conn {
    /// The stream (already under TLS for an implicit-TLS listener).
    pub stream: Stream,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// What the listener is for, as the service named it at bind time
    /// (e.g. "smtp", "submission", "smtps").
    pub role: &'static str,
    /// The acceptor for STARTTLS.
    pub tls: Tls,
    /// The shutdown signal.
    pub shutdown: Shutdown,
    /// A process-unique session number, for logs.
    pub id: u64,
}

/// The worker pool of one service: at most `max` sessions at once, across all
/// of its listeners.
#[derive(Debug, Clone)]
pub struct Workers {
    sem: Arc<Semaphore>,
    max: usize,
    /// Sessions per client address, when capped.
    per_ip: Option<(usize, PerIp)>,
}

/// Sessions per client address.
type PerIp = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One client address's hold on a share of [`Workers`]' per-address cap.
struct IpSlot {
    ip: std::net::IpAddr,
    map: PerIp,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Workers {
    /// A pool of `max` workers.
    pub fn new(max: usize) -> Workers {
        Workers {
            sem: Arc::new(Semaphore::new(max)),
            max,
            per_ip: None,
        }
    }

    /// The same, with at most `per_ip` sessions from one client address
    /// (0: no cap); past it a client gets the service's try-later reply.
    pub fn with_per_ip(max: usize, per_ip: usize) -> Workers {
        let mut w = Workers::new(max);
        if per_ip > 0 {
            w.per_ip = Some((per_ip, Arc::default()));
        }
        w
    }

    /// Takes a share of the per-address cap for `ip`; `None` when it is full.
    fn ip_slot(&self, ip: std::net::IpAddr) -> Option<Option<IpSlot>> {
        let Some((cap, map)) = &self.per_ip else {
            return Some(None);
        };
        let mut m = map.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= *cap {
            return None;
        }
        *n += 1;
        Some(Some(IpSlot {
            ip,
            map: map.clone(),
        }))
    }
    /// Sessions being served now.
    pub fn busy(&self) -> usize {
        self.max - self.sem.available_permits()
    }
    /// Waits until every session has ended, or `timeout` passes. Returns whether all ended.
    pub async fn drain(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.sem.acquire_many(self.max as u32))
            .await
            .is_ok()
    }
}

/// A listener to run: where, what for, and whether TLS starts at once.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// What it is for (passed to sessions as [`Conn::role`]).
    pub role: &'static str,
    /// Implicit TLS (SMTPS, IMAPS, POP3S, LDAPS) rather than cleartext with STARTTLS.
    pub implicit_tls: bool,
}

impl Listener {
    /// Binds `addr`.
    pub async fn bind(
        addr: SocketAddr,
        role: &'static str,
        implicit_tls: bool,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            socket: TcpListener::bind(addr).await?,
            role,
            implicit_tls,
        })
    }
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// Runs the accept loop of one listener until shutdown.
pub async fn run(
    listener: Listener,
    service: Arc<dyn Service>,
    workers: Workers,
    tls: Tls,
    mut shutdown: Shutdown,
) {
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(service = service.name(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let id = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("session", service = service.name(), role = listener.role, id, %peer);
        let implicit = listener.implicit_tls;
        let slot = workers.ip_slot(peer.ip());
        let capped = slot.is_none();
        if slot.is_none() {
            tracing::info!(parent: &span, "too many connections from this address");
            postgate_metrics::metrics().refuse(service.name(), "per_ip");
        }
        match slot.and_then(|s| workers.sem.clone().try_acquire_owned().ok().map(|p| (p, s))) {
            Some((permit, ip_slot)) => {
                let (service, tls, shutdown, role) = (
                    service.clone(),
                    tls.clone(),
                    shutdown.clone(),
                    listener.role,
                );
                tokio::spawn(
                    async move {
                        let _open = postgate_metrics::Open::new(service.name());
                        let stream = if implicit {
                            // Boxed: the handshake's state (a whole rustls
                            // connection) is needed only until it is done;
                            // inline, the task would keep room for it for
                            // the connection's life.
                            match Box::pin(tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                tls.accept(tcp),
                            ))
                            .await
                            {
                                Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake timed out");
                                    return;
                                }
                            }
                        } else {
                            Stream::Plain(tcp)
                        };
                        tracing::debug!("connected");
                        service
                            .serve(Conn {
                                stream,
                                peer,
                                local,
                                role,
                                tls,
                                shutdown,
                                id,
                            })
                            .await;
                        tracing::debug!("disconnected");
                        drop(permit);
                        drop(ip_slot);
                    }
                    .instrument(span),
                );
            }
            None => {
                let Ok(slot) = refusals.clone().try_acquire_owned() else {
                    // Even the refusals are saturated: just close.
                    continue;
                };
                let (reply, tls) = (service.busy_reply(), tls.clone());
                tracing::info!(parent: &span, "every worker busy; connection refused");
                if !capped {
                    postgate_metrics::metrics().refuse(service.name(), "busy");
                }
                tokio::spawn(async move {
                    let deadline = Duration::from_secs(5);
                    let _ = tokio::time::timeout(deadline, async {
                        let mut stream = if implicit {
                            Stream::Tls(Box::new(tls.accept(tcp).await?))
                        } else {
                            Stream::Plain(tcp)
                        };
                        stream.write_all(reply).await?;
                        stream.shutdown().await
                    })
                    .await;
                    drop(slot);
                });
            }
        }
    }
}
