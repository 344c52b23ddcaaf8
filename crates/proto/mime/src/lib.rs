//! MIME ⇄ item conversion: the wire format of mail, in and out of the post office.
//!
//! What it is for: turning the RFC 5322/MIME bytes of a message into the post
//! office's own [`ItemContent`] (decoded addresses, subject, bodies, attachment
//! list, importance), whatever the transfer encoding (RFC 2045 §6), header
//! encoding (RFC 2047, RFC 2231) or charset. Parsing is delegated to
//! `mail-parser`, which decodes every charset in common use (with its
//! `full_encoding` feature: the ISO-8859 and Windows code pages, KOI8, the CJK
//! multi-byte sets, UTF-7, UTF-16).
//!
//! What it is not for: I/O, storage, policy. The caller decides where an item goes;
//! this crate only says what it is. It never panics on input and never refuses a
//! message: malformed mail yields best-effort fields, and the caller keeps the raw bytes.
//!
//! Modules: [`parse`] (MIME → item), [`build`] (item → MIME, with
//! mail-builder), [`dsn`] (delivery status notifications), [`utf7`].
#![deny(missing_docs)]

pub mod build;
pub mod dsn;
pub mod parse;
pub mod utf7;

pub use parse::{CalendarPart, ParsedMessage, parse_message, sent_day};
pub use postgate_types::ItemContent;
