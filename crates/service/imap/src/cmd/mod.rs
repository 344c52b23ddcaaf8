//! Command handlers, grouped by what they act on; each adds `handle_<verb>`
//! methods to [`Session`](crate::session::Session).
mod acl;
mod append;
mod auth;
mod copy;
mod fetch;
mod mailboxes;
pub mod metadata;
mod misc;
pub(crate) mod notify;
mod search;
mod select;
mod store;
pub mod urlauth;
