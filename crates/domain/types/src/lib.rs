//! Postgate's shared vocabulary: the nouns every other crate speaks.
//!
//! What it is for: validated newtypes (addresses, ids), the post office's own
//! item format ([`ItemContent`]), folders and their roles, IMAP-style flags, and
//! the [`Change`] events of the mailbox change feed.
//!
//! What it is not for: I/O, storage, wire formats. Those live in `postgate-store`
//! and the `proto/*` crates; this crate has no async and no dependencies beyond serde.
//!
//! Modules: [`address`] (RFC 5321 mailbox addresses), [`item`] (items, attachments,
//! flags), [`calendar`] (appointments and tasks), [`folder`] (folder roles), [`secret`] (redacted secrets).
#![deny(missing_docs)]

pub mod access;
pub mod address;
pub mod calendar;
pub mod folder;
pub mod item;
pub mod secret;

pub use access::{Network, Service};
pub use address::{AddressError, EmailAddress};
pub use calendar::{CalTime, CalendarComponent, CalendarObject, ItemBody};
pub use folder::FolderRole;
pub use item::{
    Attachment, Change, ChangeKind, Contact, Flags, Importance, ItemContent, ItemKind, ItemSummary,
};
pub use secret::Secret;

/// Row id of a domain served by this post office system.
pub type DomainId = i64;
/// Row id of a user.
pub type UserId = i64;
/// Row id of a folder.
pub type FolderId = i64;
/// Row id of a stored message (one per distinct RFC 5322 byte string).
pub type MessageId = i64;
