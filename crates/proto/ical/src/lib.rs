//! iCalendar (RFC 5545) and iTIP (RFC 5546) for the post office.
//!
//! What it is for: turning the text/calendar parts of mail into appointment
//! and task items ([`parse`]), reading their time zones ([`zone`]: IANA
//! names, Windows names as Exchange writes them, VTIMEZONE definitions),
//! expanding recurrence within a span, with hard bounds ([`expand`]),
//! deciding what an incoming iTIP message does to what a calendar holds
//! ([`itip`]), and writing the iCalendar the post office sends: invitations,
//! replies, cancellations, free/busy ([`write`]).
//!
//! What it is not for: I/O, storage, MIME (postgate-mime wraps what this
//! crate writes into iMIP messages, RFC 6047), or deciding who may do what
//! beyond what iTIP itself says.
//!
//! Parsing and writing are calcard's (Stalwart's iCalendar crate): it parses
//! leniently and writes back every property it read, knows the Windows and
//! Lotus zone names, and expands RRULEs (its recurrence code is rust-rrule's,
//! which follows python-dateutil). `icalendar` + `rrule` + `chrono-tz` were
//! the other candidate: `icalendar` rewrites properties it does not model,
//! and neither knows Windows zone names.
//!
//! Every function takes untrusted text and never panics on it; limits
//! ([`parse::Limits`]) bound the work any text can cause.
#![deny(missing_docs)]

pub mod expand;
pub mod itip;
pub mod parse;
pub mod write;
pub mod zone;

/// Property names, for [`write::Doc`] edits.
pub use calcard::icalendar::ICalendarProperty as Property;
/// The IANA zones (chrono-tz), as [`Context::zone`] names them.
pub use chrono_tz::Tz;
pub use parse::{Context, Limits, Method, ParseError, Parsed, ParsedObject, parse_all, parse_one};
