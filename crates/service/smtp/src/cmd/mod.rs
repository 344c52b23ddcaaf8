//! One file per command; each adds `handle_<verb>` to [`Session`](crate::session::Session).
mod auth;
mod data;
mod ehlo;
mod mail;
mod misc;
mod rcpt;
mod starttls;
