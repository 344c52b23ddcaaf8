//! Postgate's IMAP engine: IMAP4rev1 (RFC 3501) and, once a client ENABLEs it,
//! IMAP4rev2 (RFC 9051), over the post office's folders.
//!
//! Implementation notes:
//! - Commands are parsed by imap-codec. Framing (lines and literals) is ours,
//!   so that an APPEND's message literal is read once into the buffer that
//!   goes to the store, never copied into a command buffer. Syntax imap-codec
//!   does not know (LIST-EXTENDED, SEARCH RETURN, SEARCHRES `$`) is handled in
//!   [`rewrite`] before it parses.
//! - The selected mailbox is a view ([`mailbox`]): UIDs in sequence order with
//!   their flags and modseqs. Other sessions' changes arrive as wake-ups from
//!   the store's per-folder change feed; the view then asks the store what
//!   changed since its modseq and reports EXISTS, EXPUNGE/VANISHED and FETCH
//!   FLAGS in the order RFC 9051 §7.5 and RFC 7162 allow: never an EXPUNGE
//!   during FETCH, STORE or SEARCH (RFC 3501 §7.4.1).
//! - \Recent (RFC 3501 §2.3.2) is claimed in the store, so exactly one session
//!   sees a message as recent.
//! - Message structure (ENVELOPE, BODYSTRUCTURE, sections) comes from
//!   `postgate-imap-proto`, computed from the stored bytes, which are served
//!   byte-exact.
//!
//! Modules: [`session`] (I/O, framing, state, dispatch), [`mailbox`] (the
//! selected view and its synchronisation), [`names`] (folders ⇄ mailbox names),
//! [`rewrite`] (extension syntax), [`notify`] (NOTIFY's syntax), [`error`]
//! (replies), `cmd/*` (one file per group of commands).
#![deny(missing_docs)]

mod cmd;
pub mod error;
pub mod mailbox;
pub mod names;
pub mod notify;
pub mod rewrite;
pub mod session;
pub mod url;

use async_trait::async_trait;
use postgate_runtime::config::ImapConfig;
use postgate_runtime::{Conn, Service};
use postgate_store::Store;
use postgate_store::auth::Authenticator;
use std::sync::Arc;

/// What sessions share.
#[derive(Debug)]
pub struct Context {
    /// Our name, in the greeting.
    pub hostname: String,
    /// The `[imap]` section.
    pub config: ImapConfig,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Login checks.
    pub auth: Authenticator,
}

/// The IMAP service.
#[derive(Debug, Clone)]
pub struct ImapService {
    ctx: Arc<Context>,
}

impl ImapService {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> ImapService {
        ImapService { ctx: Arc::new(ctx) }
    }
}

#[async_trait]
impl Service for ImapService {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn busy_reply(&self) -> &'static [u8] {
        // RFC 9051 §7.1.5: BYE in place of the greeting when a connection is refused.
        b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: Conn) {
        session::Session::new(conn, self.ctx.clone()).run().await;
    }
}
