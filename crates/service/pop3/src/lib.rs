//! Postgate's POP3 engine: RFC 1939 with CAPA and its extensions (RFC 2449:
//! TOP, UIDL, USER, RESP-CODES, AUTH-RESP-CODE, PIPELINING, EXPIRE,
//! LOGIN-DELAY), STLS (RFC 2595) and SASL PLAIN (RFC 5034).
//!
//! Implementation notes:
//! - The maildrop is a snapshot taken at login ([`maildrop`]): message numbers,
//!   sizes and UIDL values do not change during the session (RFC 1939 §5).
//!   UIDLs are "UIDVALIDITY.UID" of the folder, so never reused.
//! - A maildrop is locked for the session; a second session gets `-ERR [IN-USE]`
//!   (RFC 2449 §8.1.1).
//! - DELE marks; only QUIT's UPDATE state acts, moving the messages to Trash or
//!   purging them (config, or per session through login options), so IMAP
//!   sessions see the result through the store's change feed.
//! - Login options follow the user name after a colon:
//!   `alice@example.org:days=7:sdl=20` ([`maildrop::LoginOptions`]).
#![deny(missing_docs)]

pub mod maildrop;
pub mod session;

use async_trait::async_trait;
use postgate_runtime::config::Pop3Config;
use postgate_runtime::{Conn, Service};
use postgate_store::Store;
use postgate_store::auth::Authenticator;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What sessions share.
#[derive(Debug)]
pub struct Context {
    /// Our name, in the greeting.
    pub hostname: String,
    /// The `[pop3]` section.
    pub config: Pop3Config,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Login checks.
    pub auth: Authenticator,
    /// When each user last logged in (for LOGIN-DELAY).
    pub last_login: Mutex<HashMap<i64, Instant>>,
}

impl Context {
    /// A context with no locks held.
    pub fn new(
        hostname: String,
        config: Pop3Config,
        store: Arc<dyn Store>,
        auth: Authenticator,
    ) -> Context {
        Context {
            hostname,
            config,
            store,
            auth,
            last_login: Mutex::new(HashMap::new()),
        }
    }
}

/// The POP3 service.
#[derive(Debug, Clone)]
pub struct Pop3Service {
    ctx: Arc<Context>,
}

impl Pop3Service {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Pop3Service {
        Pop3Service { ctx: Arc::new(ctx) }
    }
}

#[async_trait]
impl Service for Pop3Service {
    fn name(&self) -> &'static str {
        "pop3"
    }

    fn busy_reply(&self) -> &'static [u8] {
        // RFC 2449 §8.1.2: SYS/TEMP for a transient system condition.
        b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: Conn) {
        session::Session::new(conn, self.ctx.clone()).run().await;
    }
}
