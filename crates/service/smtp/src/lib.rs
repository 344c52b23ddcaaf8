//! Postgate's SMTP engine: RFC 5321 sessions on the inbound port, delivering
//! into local mailboxes, and message submission (RFC 6409) on the submission
//! and SMTPS ports, where authenticated users (RFC 4954 AUTH PLAIN and LOGIN,
//! offered only under TLS) may send to the Internet through the queue.
//!
//! Implementation notes:
//! - Commands are parsed by `smtp-proto` (Stalwart's parser, also used by
//!   mail-send); DATA is read with its dot-unstuffing receiver, which ends only at
//!   `<CRLF>.<CRLF>` (a bare `<LF>.<LF>` never ends a message: no SMTP smuggling).
//! - PIPELINING (RFC 2920): replies are buffered and written only when the
//!   session is about to wait for more input, so a pipelined group gets its
//!   replies in one write.
//! - The 250 after DATA/BDAT LAST is sent only after the store has committed the
//!   delivery to disk (see `postgate-store`).
//! - STARTTLS (RFC 3207 §4.2): input buffered before the handshake is
//!   discarded, and the session returns to its initial state.
//! - Every reply carries an enhanced status code (RFC 2034, RFC 3463).
//!
//! Modules: [`session`] (I/O, state, dispatch), `cmd/*` (one file per command),
//! [`reply`] (replies and their codes), [`checks`] (`[smtp.checks]`: DNS lists,
//! reverse DNS, HELO, the message rate limit).
#![deny(missing_docs)]

mod authn;
pub mod checks;
mod cmd;
pub mod reply;
pub mod session;

use async_trait::async_trait;
use postgate_delivery::Delivery;
use postgate_runtime::config::SmtpConfig;
use postgate_runtime::{Conn, Service};
use postgate_store::auth::Authenticator;
use std::sync::Arc;

/// What sessions need to know, fixed at start.
#[derive(Debug)]
pub struct Settings {
    /// Our name, in the greeting, EHLO and Received.
    pub hostname: String,
    /// The `[smtp]` section.
    pub config: SmtpConfig,
    /// The server's one resolver, for `[smtp.checks]`.
    pub dns: postgate_dns::Dns,
}

/// The SMTP service.
#[derive(Debug, Clone)]
pub struct SmtpService {
    settings: Arc<Settings>,
    delivery: Delivery,
    auth: Authenticator,
    /// `[smtp.checks]`, with the message counts shared by every session.
    checks: Arc<checks::Checks>,
}

impl SmtpService {
    /// A service delivering through `delivery`, checking AUTH with `auth`.
    pub fn new(settings: Settings, delivery: Delivery, auth: Authenticator) -> SmtpService {
        SmtpService {
            checks: Arc::new(checks::Checks::new(&settings.config.checks)),
            settings: Arc::new(settings),
            delivery,
            auth,
        }
    }
}

#[async_trait]
impl Service for SmtpService {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn busy_reply(&self) -> &'static [u8] {
        // RFC 5321 §3.8 / RFC 3463 4.3.2: system not accepting network messages.
        b"421 4.3.2 Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: Conn) {
        session::Session::new(
            conn,
            self.settings.clone(),
            self.delivery.clone(),
            self.auth.clone(),
            self.checks.clone(),
        )
        .run()
        .await;
    }
}
