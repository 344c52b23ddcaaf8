//! IMAP wire formats for Postgate, apart from command parsing (imap-codec does
//! that): what the server computes from a message or a mailbox and writes back.
//!
//! What it is for: the MIME structure of a stored message with exact byte
//! offsets ([`mime`]), ENVELOPE ([`envelope`]), BODY/BODYSTRUCTURE
//! ([`bodystructure`]), BODY[section] and BINARY extraction ([`section`]),
//! SORT keys and base subjects of RFC 5256 ([`sort`]), THREAD algorithms
//! ([`thread`]), modified UTF-7 mailbox names of RFC 3501 §5.1.3 ([`utf7`]),
//! LIST wildcards ([`pattern`]), and the string forms of IMAP ([`wire`]).
//!
//! What it is not for: I/O, sessions, the store. Everything here is a pure
//! function of bytes, so it can be unit-tested and fuzzed alone.
#![deny(missing_docs)]

pub mod bodystructure;
pub mod envelope;
pub mod mime;
pub mod pattern;
pub mod section;
pub mod sort;
pub mod thread;
pub mod utf7;
pub mod wire;
