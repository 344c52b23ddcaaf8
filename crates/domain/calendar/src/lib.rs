//! Scheduling: appointments and tasks between the post office and the Internet.
//!
//! What it is for: deciding what calendar changes and what iMIP mail each
//! scheduling act makes, and planning them as one [`Plan`] that delivery
//! commits at once (the calendar changes and the queued mail in one
//! transaction, so a crash never leaves one without the other):
//! - mail that arrives with a text/calendar part ([`Scheduler::inbound`]):
//!   iTIP applied to each local recipient's calendar (RFC 5546, via
//!   postgate-ical), REFRESH and VFREEBUSY requests answered afterwards
//!   ([`Scheduler::answer`]);
//! - what users do through the client API or the command line
//!   ([`organize`]): create, change and delete appointments and tasks,
//!   answer invitations, accept or decline counter-proposals, complete
//!   tasks, import iCalendar files. Local attendees get the change in their
//!   calendar directly, the others an iMIP message (RFC 6047) through the
//!   outbound queue;
//! - what is on when ([`query`]): occurrences in a span, free/busy.
//!
//! What it is not for: I/O beyond the store, protocol replies, sending
//! (delivery carries plans out), iCalendar syntax (postgate-ical).
#![deny(missing_docs)]

mod merge;
pub mod organize;
pub mod query;
mod render;

pub use merge::ItipMerge;
pub use render::render_item;

use postgate_ical::Context;
use postgate_store::{CalendarUpdate, Store, StoreError};
use postgate_types::UserId;
use std::fmt;
use std::sync::Arc;

/// How many occurrences one object may yield to one query, and one query
/// in all (reported as truncated when reached).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Per object.
    pub per_item: usize,
    /// Per query.
    pub per_query: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            per_item: 1_000,
            per_query: 10_000,
        }
    }
}

/// One iMIP message to send (RFC 6047).
#[derive(Debug, Clone)]
pub struct Imip {
    /// The envelope sender (the user acting, or empty for the system).
    pub mail_from: String,
    /// The local user who sends it (DSNs about it go to their Inbox).
    pub sender_user: Option<UserId>,
    /// Recipients outside the post office.
    pub remote: Vec<String>,
    /// Local users who get it in their Inbox as mail.
    pub local: Vec<UserId>,
    /// The RFC 5322 message.
    pub raw: Vec<u8>,
}

/// What one scheduling act does: calendar changes and mail, committed together.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Calendar changes.
    pub updates: Vec<CalendarUpdate>,
    /// Mail to send.
    pub mails: Vec<Imip>,
}

impl Plan {
    /// Whether it does nothing.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.mails.is_empty()
    }
    /// Adds another plan's work.
    pub fn extend(&mut self, other: Plan) {
        self.updates.extend(other.updates);
        self.mails.extend(other.mails);
    }
}

/// Why a scheduling act cannot be done, as the client API answers it.
#[derive(Debug)]
pub enum CalendarError {
    /// The request is malformed (HTTP 400).
    Invalid(String),
    /// It names an unknown local recipient (HTTP 422).
    Unknown(String),
    /// No such object (HTTP 404).
    NotFound,
    /// Not the user's to do (HTTP 403).
    Forbidden(String),
    /// The object changed meanwhile (HTTP 409).
    Conflict(String),
    /// The store failed (HTTP 503).
    Store(StoreError),
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalendarError::Invalid(m) | CalendarError::Unknown(m) => f.write_str(m),
            CalendarError::NotFound => f.write_str("no such appointment or task"),
            CalendarError::Forbidden(m) | CalendarError::Conflict(m) => f.write_str(m),
            CalendarError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CalendarError {}

impl From<StoreError> for CalendarError {
    fn from(e: StoreError) -> CalendarError {
        match e {
            StoreError::Conflict(m) => CalendarError::Conflict(m),
            StoreError::NotFound(_) => CalendarError::NotFound,
            e => CalendarError::Store(e),
        }
    }
}

/// One `Result` for the crate.
pub type Result<T> = std::result::Result<T, CalendarError>;

/// The scheduling agent.
#[derive(Debug, Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    ctx: Context,
    hostname: String,
    caps: Caps,
    answer_freebusy: bool,
    cache: Arc<std::sync::Mutex<query::Cache>>,
}

impl Scheduler {
    /// A scheduler over `store`; floating times and dates are read in `zone`.
    pub fn new(store: Arc<dyn Store>, zone: chrono_tz::Tz, hostname: String) -> Scheduler {
        Scheduler {
            store,
            ctx: Context {
                zone,
                ..Context::default()
            },
            hostname,
            caps: Caps::default(),
            answer_freebusy: true,
            cache: Arc::default(),
        }
    }

    /// With other occurrence caps.
    pub fn with_caps(mut self, caps: Caps) -> Scheduler {
        self.caps = caps;
        self
    }

    /// Whether VFREEBUSY requests from outside are answered (RFC 5546 §3.3.2).
    pub fn with_freebusy_answers(mut self, on: bool) -> Scheduler {
        self.answer_freebusy = on;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// How iCalendar is read.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The occurrence caps.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// A Message-ID for mail the scheduler writes.
    fn message_id(&self) -> String {
        format!("{}@{}", unique(), self.hostname)
    }
}

/// A random token: UIDs and Message-IDs.
pub(crate) fn unique() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 12];
    let _ = SystemRandom::new().fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{:x}-{hex}", chrono::Utc::now().timestamp_millis())
}

mod inbound;
pub use inbound::{Inbound, Later};
