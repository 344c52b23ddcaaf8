//! The HTTPS listener: the post office's client API, `/api/v1` (documented in
//! docs/openapi.yaml), with HTTP Basic authentication (RFC 7617) against the
//! post office's own credentials, and the web console under `/console/` for
//! administrators ([`web`]'s module documentation). Every connection is TLS:
//! the listener is implicit-TLS, so credentials never cross the wire in
//! clear text.
//!
//! Sending (`POST /api/v1/messages`) builds the RFC 5322 form once
//! (postgate-mime's builder), then hands it to delivery in one commit: the
//! sender's Sent Items copy, an item for each local recipient (no SMTP), and
//! the outbound queue entry for the others.
#![deny(missing_docs)]

mod api;
mod calendar;
pub mod sampler;
pub mod web;

use async_trait::async_trait;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use postgate_delivery::Delivery;
use postgate_runtime::Service;
use postgate_runtime::listener::Conn;
use postgate_store::auth::Authenticator;
use std::sync::Arc;
use std::time::Duration;

/// What the API needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// Our host name (Message-ID right-hand side).
    pub hostname: String,
    /// Delivery, and through it the store.
    pub delivery: Delivery,
    /// Login checks.
    pub auth: Authenticator,
    /// The largest message the API builds (SMTP's limit).
    pub max_message_size: u64,
    /// The bearer token that reads `/metrics`; none: not served.
    pub metrics_token: Option<String>,
    /// What the web console shows besides the store.
    pub web: web::WebSettings,
    /// The statistics sampler (the charts' latest, unsampled minute).
    pub sampler: sampler::Sampler,
    /// Ends the console's long answers (the log's live stream) at shutdown.
    pub shutdown: postgate_runtime::Shutdown,
}

/// The HTTPS service.
#[derive(Debug)]
pub struct ConsoleService {
    router: axum::Router,
}

impl ConsoleService {
    /// The service over `ctx`.
    pub fn new(ctx: Context) -> ConsoleService {
        let ctx = Arc::new(ctx);
        ConsoleService {
            router: api::router(ctx.clone()).merge(web::router(ctx)),
        }
    }
}

#[async_trait]
impl Service for ConsoleService {
    fn name(&self) -> &'static str {
        "console"
    }

    fn busy_reply(&self) -> &'static [u8] {
        // Written before TLS, so a client sees a failed handshake; the
        // worker limit keeps the server itself safe.
        b""
    }

    async fn serve(&self, conn: Conn) {
        let peer = conn.peer;
        let io = TokioIo::new(conn.stream);
        let service = TowerToHyperService::new(
            self.router
                .clone()
                .layer(axum::middleware::from_fn(api::mark_peer))
                .layer(axum::Extension(api::Peer(peer))),
        );
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut shutdown = conn.shutdown.clone();
        tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "console connection ended");
                }
            }
            _ = shutdown.wait() => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            }
        }
    }
}
