//! The runtime every Postgate service shares.
//!
//! What it is for: the operator's configuration ([`config`]), TLS for every
//! service with one acceptor ([`tls`]), the connection stream that can be upgraded
//! by STARTTLS ([`stream`]), and the listener layer ([`listener`]): bind, implicit
//! TLS, the per-service worker limit with the protocol's own try-later reply, and
//! graceful shutdown ([`shutdown`]). Daily log and accounting files, pruned by
//! age and total size, are in [`logfile`]; the latest lines in memory for the
//! console, in [`logring`]; what the process serves, for its status page, in
//! [`status`].
//!
//! What it is not for: protocol logic. Engines implement [`listener::Service`] and
//! receive a [`listener::Conn`]: a stream and its context, nothing else.
#![deny(missing_docs)]

pub mod config;
pub mod deflate;
pub mod listener;
pub mod logfile;
pub mod logring;
pub mod shutdown;
pub mod status;
pub mod stream;
pub mod tls;
pub mod tls_stream;

pub use config::Config;
pub use listener::{Conn, Service};
pub use shutdown::Shutdown;
pub use stream::Stream;
