//! The records the store traits speak.
use postgate_types::{
    CalendarObject, EmailAddress, Flags, FolderId, FolderRole, ItemContent, ItemKind, ItemSummary,
    Secret, UserId,
};

/// A domain this system serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Domain {
    /// Row id.
    pub id: i64,
    /// The domain name, lower-case.
    pub name: String,
    /// Post offices in the domain.
    pub post_offices: Vec<String>,
    /// Number of users.
    pub users: u64,
}

/// A user of the post office.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Primary address.
    pub address: EmailAddress,
    /// The post office the user belongs to.
    pub post_office: String,
    /// Display name ("Full Name").
    pub display_name: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Telephone number.
    pub phone: Option<String>,
    /// Other addresses that reach the user.
    pub aliases: Vec<EmailAddress>,
    /// Whether a password is set (the hash itself never leaves the store but for
    /// [`crate::Directory::credentials`]).
    pub has_password: bool,
}

/// A user to be added.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Primary address; its domain must already be served.
    pub address: EmailAddress,
    /// Post office within the domain; the domain's first when `None`.
    pub post_office: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Telephone number.
    pub phone: Option<String>,
    /// An argon2id PHC string (see [`crate::password::hash`]).
    pub password_hash: Option<String>,
}

/// A group (distribution list).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// Row id.
    pub id: i64,
    /// The group's address.
    pub address: EmailAddress,
    /// Display name.
    pub display_name: String,
    /// Member addresses (users, aliases or other groups), sorted.
    pub members: Vec<EmailAddress>,
}

/// A user mail is delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// Row id.
    pub id: UserId,
    /// Primary address.
    pub address: EmailAddress,
}

/// What a recipient address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these users (one for a user or alias, the expanded members for a group).
    Users(Vec<UserRef>),
    /// The domain is ours, the address is not anyone's.
    Unknown,
    /// The address matches more than one user (First.Last shared by two people).
    Ambiguous,
    /// The domain is not one we serve.
    NotLocal,
}

/// A folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Folder {
    /// Row id.
    pub id: FolderId,
    /// Owner.
    pub user: UserId,
    /// Full path, "/"-separated ("Projects/2026").
    pub path: String,
    /// The system role, if it has one.
    pub role: Option<FolderRole>,
    /// IMAP UIDVALIDITY (RFC 9051 §2.3.1.1): changes only if UIDs are reused.
    pub uid_validity: u32,
    /// The UID the next item will get.
    pub uid_next: u32,
    /// The highest modseq given to any change in the folder (RFC 7162).
    pub highest_modseq: u64,
    /// Subscribed (IMAP LSUB / LIST (SUBSCRIBED)).
    pub subscribed: bool,
    /// Number of items.
    pub total: u64,
    /// Number of items without `\Seen`.
    pub unseen: u64,
}

/// A stored item with its decoded content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemRecord {
    /// The listing view.
    pub summary: ItemSummary,
    /// The decoded content.
    pub content: ItemContent,
}

/// The SMTP envelope a message arrived with, kept for DSNs (RFC 3461) and tracing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>`.
    pub mail_from: String,
    /// RFC 3461 §4.4 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 §4.3 RET: `FULL` or `HDRS`.
    pub ret: Option<String>,
    /// BODY= (7BIT, 8BITMIME).
    pub body: Option<String>,
    /// The SMTPUTF8 parameter was given (RFC 6531).
    pub smtputf8: bool,
    /// The recipients as given in RCPT TO, with their DSN parameters.
    pub rcpts: Vec<EnvelopeRcpt>,
    /// The client's IP address.
    pub peer: Option<String>,
    /// The HELO/EHLO name.
    pub helo: Option<String>,
    /// Whether the session was under TLS.
    pub tls: bool,
    /// The TLS version and cipher suite, when known; for accounting, not
    /// stored.
    #[serde(skip)]
    pub tls_description: Option<String>,
    /// The user who authenticated (RFC 4954 AUTH, or the client API's
    /// login); for accounting, not stored.
    #[serde(skip)]
    pub auth_user: Option<String>,
    /// The client's forward-confirmed reverse name, when checked; for
    /// accounting, not stored.
    #[serde(skip)]
    pub peer_reverse: Option<String>,
    /// A check (`[smtp.checks]`) asked for the message to be filed in Junk;
    /// not stored.
    #[serde(skip)]
    pub junk: bool,
    /// Each check's outcome ("dnsbl" → "pass", "spf" → "fail", …), for
    /// accounting; not stored.
    #[serde(skip)]
    pub checks: Vec<(&'static str, String)>,
}

/// One RCPT TO and its DSN parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeRcpt {
    /// The address as given.
    pub address: String,
    /// RFC 3461 §4.2 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 §4.1 NOTIFY: any of SUCCESS, FAILURE, DELAY, or NEVER.
    pub notify: Vec<String>,
    /// Beyond the post office: relayed by the outbound gateway.
    #[serde(default)]
    pub remote: bool,
}

/// Where one copy of a delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The user.
    pub user: UserId,
    /// Their folder with this role.
    pub role: FolderRole,
    /// Initial flags of this copy (the sender's Sent Items copy is \\Seen).
    pub flags: Flags,
}

/// A message to be stored in one or more mailboxes in one commit.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The RFC 5322 bytes, exactly as they are to be served by IMAP and POP3.
    pub raw: Vec<u8>,
    /// Decoded content.
    pub content: ItemContent,
    /// The SMTP envelope, when it came over SMTP.
    pub envelope: Option<Envelope>,
    /// Who gets a copy, and in which folder.
    pub targets: Vec<Target>,
    /// Recipients outside the post office: queued for the outbound gateway in
    /// the same commit as the local copies.
    pub outbound: Option<Outbound>,
    /// Arrival time (IMAP INTERNALDATE), Unix seconds.
    pub received_at: i64,
    /// Calendar changes the message makes (iMIP, RFC 6047), committed with it.
    pub calendar: Vec<CalendarUpdate>,
}

/// What the outbound queue needs to send a message on: its SMTP envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    /// Reverse path; empty for the null sender (DSNs).
    pub mail_from: String,
    /// RFC 3461 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 RET (`FULL` or `HDRS`).
    pub ret: Option<String>,
    /// The message needs SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The message has 8-bit content (RFC 6152 BODY=8BITMIME).
    pub eight_bit: bool,
    /// The local user who sent it, if any: DSNs for them go into their Inbox.
    pub sender_user: Option<UserId>,
    /// The remote recipients.
    pub rcpts: Vec<OutboundRcpt>,
}

/// One remote recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRcpt {
    /// The address.
    pub address: String,
    /// RFC 3461 ORCPT, as given (`rfc822;user@host`).
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY.
    pub notify: Notify,
}

/// RFC 3461 §4.1 NOTIFY; `Default` is "not given".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    /// NOTIFY was given at all.
    pub given: bool,
    /// SUCCESS
    pub success: bool,
    /// FAILURE
    pub failure: bool,
    /// DELAY
    pub delay: bool,
}

impl Notify {
    /// The NOTIFY parameter as stored.
    pub fn to_bits(self) -> i64 {
        (self.given as i64)
            | (self.success as i64) << 1
            | (self.failure as i64) << 2
            | (self.delay as i64) << 3
    }
    /// The inverse of [`Notify::to_bits`].
    pub fn from_bits(b: i64) -> Notify {
        Notify {
            given: b & 1 != 0,
            success: b & 2 != 0,
            failure: b & 4 != 0,
            delay: b & 8 != 0,
        }
    }
    /// Parses NOTIFY keywords (`SUCCESS`, `FAILURE`, `DELAY`, `NEVER`).
    pub fn from_keywords<S: AsRef<str>>(words: &[S]) -> Notify {
        let mut n = Notify::default();
        for w in words {
            n.given = true;
            match w.as_ref().to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => {}
            }
        }
        n
    }
    /// Whether a failure is reported (RFC 3461 §4.1: when NOTIFY is absent,
    /// FAILURE is implied; Postgate also implies DELAY, as Postfix does).
    pub fn wants_failure(self) -> bool {
        !self.given || self.failure
    }
    /// Whether a delay is reported.
    pub fn wants_delay(self) -> bool {
        !self.given || self.delay
    }
}

/// How many recipients wait in the outbound queue, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Never tried yet.
    pub due: u64,
    /// Tried, waiting for their next attempt.
    pub deferred: u64,
    /// Claimed by a runner now.
    pub in_flight: u64,
    /// Held by an operator (`postgate queue hold`): not tried until released.
    pub held: u64,
    /// When the oldest message still waiting was queued (Unix seconds);
    /// held recipients do not count.
    pub oldest: Option<i64>,
}

/// A queued message with its recipients that are due, as the runner claims it.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Queue id.
    pub id: i64,
    /// The message bytes.
    pub message: MessageRef,
    /// Size in octets.
    pub size: u64,
    /// The envelope (recipients: those claimed).
    pub outbound: Outbound,
    /// When it was queued, Unix seconds.
    pub created: i64,
    /// The claimed recipients.
    pub rcpts: Vec<QueuedRcpt>,
}

/// A queued recipient.
#[derive(Debug, Clone)]
pub struct QueuedRcpt {
    /// Recipient row id.
    pub id: i64,
    /// The address.
    pub address: String,
    /// Its domain, lower-case.
    pub domain: String,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY.
    pub notify: Notify,
    /// Attempts made so far.
    pub attempts: u32,
    /// A delay DSN was already sent.
    pub delay_warned: bool,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// When the next attempt is due.
    pub next_attempt: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// What happened to one recipient on an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted by the next hop (or a final local delivery).
    Sent,
    /// Permanently refused or given up on: the DSN, if any, has been made.
    Failed(String),
    /// Try again at the given time.
    Retry {
        /// When, Unix seconds.
        at: i64,
        /// Why this attempt failed.
        error: String,
        /// A delay DSN was sent now.
        delay_warned: bool,
    },
}

/// One copy stored by a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The user.
    pub user: UserId,
    /// The folder.
    pub folder: FolderId,
    /// The UID the item got.
    pub uid: u32,
    /// The folder's modseq after the append.
    pub modseq: u64,
}

/// One message of a folder as a mailbox view tracks it: enough to number it,
/// show its flags and notice changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntry {
    /// UID.
    pub uid: u32,
    /// System flags.
    pub flags: Flags,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Modification sequence of the last change.
    pub modseq: u64,
}

/// A folder and every message in it, in UID order: what SELECT starts from.
#[derive(Debug, Clone)]
pub struct MailboxSnapshot {
    /// The folder, with its counters as of the snapshot.
    pub folder: Folder,
    /// The messages.
    pub entries: Vec<MailboxEntry>,
    /// Every keyword in use in the folder, sorted.
    pub keywords: Vec<String>,
    /// The highest UID already seen as \Recent by some session (RFC 3501 §2.3.2).
    pub recent_uid: u32,
}

/// What changed in a folder after a modseq (RFC 7162 §3.1.4.1 CHANGEDSINCE,
/// §3.2.5.2 VANISHED).
#[derive(Debug, Clone, Default)]
pub struct FolderChanges {
    /// The folder's modseq now.
    pub highest_modseq: u64,
    /// The next UID now.
    pub uid_next: u32,
    /// Messages added or changed since, in UID order.
    pub changed: Vec<MailboxEntry>,
    /// UIDs expunged since, in order.
    pub vanished: Vec<u32>,
}

/// What writes to a folder read of it: its owner and counters, not its
/// message counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderHead {
    /// The owner.
    pub user: UserId,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// HIGHEST_MODSEQ (RFC 7162).
    pub highest_modseq: u64,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

impl FlagOp {
    /// A message's flags and keywords after this operation with `flags`
    /// and `keywords` (keywords compare case-insensitively, RFC 9051 §2.3.2).
    pub fn apply(
        self,
        have_flags: Flags,
        have_keywords: &[String],
        flags: Flags,
        keywords: &[String],
    ) -> (Flags, Vec<String>) {
        match self {
            FlagOp::Replace => (flags, keywords.to_vec()),
            FlagOp::Add => {
                let mut k = have_keywords.to_vec();
                for kw in keywords {
                    if !k.iter().any(|have| have.eq_ignore_ascii_case(kw)) {
                        k.push(kw.clone());
                    }
                }
                (have_flags.with(flags), k)
            }
            FlagOp::Remove => {
                let k = have_keywords
                    .iter()
                    .filter(|have| !keywords.iter().any(|kw| kw.eq_ignore_ascii_case(have)))
                    .cloned()
                    .collect();
                (have_flags.without(flags), k)
            }
        }
    }
}

/// What a flag change did.
#[derive(Debug, Clone, Default)]
pub struct FlagOutcome {
    /// Messages whose flags changed, with their new state.
    pub changed: Vec<MailboxEntry>,
    /// Messages left alone because they changed after UNCHANGEDSINCE (RFC 7162 §3.1.3).
    pub conflicts: Vec<u32>,
}

/// What COPY or MOVE did (RFC 4315 COPYUID).
#[derive(Debug, Clone, Default)]
pub struct CopyOutcome {
    /// UIDVALIDITY of the destination.
    pub uid_validity: u32,
    /// (source UID, destination UID) pairs, in source UID order.
    pub pairs: Vec<(u32, u32)>,
}

/// Per-message data FETCH needs beyond the mailbox view.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// Size of the RFC 5322 message.
    pub size: u64,
    /// IMAP INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// INTERNALDATE's zone, minutes east of UTC.
    pub internal_zone: i32,
    /// When it was saved to this folder (RFC 8514), Unix seconds; `None`
    /// if saved before the store kept it.
    pub save_date: Option<i64>,
    /// Origination date (Date:), Unix seconds, if it parsed.
    pub sent_date: Option<i64>,
    /// The stored message it shows (for [`crate::Mailboxes::message_bytes`]).
    pub message: MessageRef,
}

/// A reference to stored message bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageRef(pub i64);

/// A message to append to a folder (IMAP APPEND, Sent Items).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// RFC 5322 bytes.
    pub raw: Vec<u8>,
    /// Decoded content.
    pub content: ItemContent,
    /// Initial flags.
    pub flags: Flags,
    /// Initial keywords.
    pub keywords: Vec<String>,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// INTERNALDATE's zone, minutes east of UTC (RFC 3501 §9 zone: kept as
    /// APPEND gave it, and shown so by FETCH).
    pub internal_zone: i32,
}

/// An appointment or task as a user's calendar holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    /// Row id: stays the same across updates (the client API's `id`).
    pub id: i64,
    /// Whose calendar.
    pub user: UserId,
    /// Appointment or task.
    pub kind: ItemKind,
    /// The folder its MIME form is in (Calendar or Tasks).
    pub folder: FolderId,
    /// The IMAP UID of its MIME form there (a new one after each change).
    pub item_uid: u32,
    /// The object.
    pub object: CalendarObject,
    /// The time it covers, for range queries: (first start, last end),
    /// `i64::MAX` for a series without end.
    pub span: Option<(i64, i64)>,
}

/// What to store for a calendar object.
#[derive(Debug, Clone)]
pub struct CalendarWrite {
    /// The item: its body holds the object (`ItemBody::Appointment` or `Task`).
    pub content: ItemContent,
    /// Its MIME form, served by IMAP (a message with a text/calendar part).
    pub raw: Vec<u8>,
    /// The time it covers (see [`CalendarEntry::span`]).
    pub span: Option<(i64, i64)>,
    /// Flags of the IMAP item.
    pub flags: Flags,
    /// The object as range queries read it: JSON, without its iCalendar
    /// text (see [`Calendars::calendar_range`](crate::Calendars::calendar_range)).
    pub listing: String,
}

impl CalendarWrite {
    /// A write of `content`, whose body must be an appointment or a task.
    pub fn new(content: ItemContent, raw: Vec<u8>, span: Option<(i64, i64)>, flags: Flags) -> Self {
        let listing = match content.body.calendar() {
            Some(o) => listing_json(o),
            None => String::new(),
        };
        CalendarWrite {
            content,
            raw,
            span,
            flags,
            listing,
        }
    }
}

/// An object as range queries read it: JSON without the iCalendar text
/// (the larger part of it, and not needed to list or expand occurrences).
pub fn listing_json(o: &CalendarObject) -> String {
    #[derive(serde::Serialize)]
    struct Listing<'a> {
        uid: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        master: Option<&'a postgate_types::CalendarComponent>,
        #[serde(skip_serializing_if = "<[postgate_types::CalendarComponent]>::is_empty")]
        overrides: &'a [postgate_types::CalendarComponent],
        #[serde(skip_serializing_if = "<[postgate_types::calendar::ZoneRule]>::is_empty")]
        zones: &'a [postgate_types::calendar::ZoneRule],
        #[serde(skip_serializing_if = "<[postgate_types::calendar::Counter]>::is_empty")]
        counters: &'a [postgate_types::calendar::Counter],
        ical: &'a str,
    }
    serde_json::to_string(&Listing {
        uid: &o.uid,
        master: o.master.as_ref(),
        overrides: &o.overrides,
        zones: &o.zones,
        counters: &o.counters,
        ical: "",
    })
    .unwrap_or_default()
}

/// What a [`CalendarMerge`] decides.
#[derive(Debug, Clone)]
pub enum MergeResult {
    /// Leave the calendar as it is, for this reason.
    Keep(String),
    /// Store this (creating or replacing), for this reason.
    Put(Box<CalendarWrite>, String),
    /// Remove the object, for this reason.
    Remove(String),
    /// What the change was based on is no longer what is held: refuse it,
    /// and the whole commit it is part of ([`crate::StoreError::Conflict`]).
    Conflict(String),
}

/// A change to one calendar object that depends on what is held: run by
/// the store inside the transaction that writes its result, so that two
/// changes to one object never overwrite each other.
pub trait CalendarMerge: Send + Sync + std::fmt::Debug {
    /// What to do, given the object held now (if any).
    fn merge(&self, current: Option<&CalendarEntry>) -> MergeResult;
}

/// A change to the object with iCalendar UID `uid` in `user`'s calendar.
#[derive(Debug, Clone)]
pub struct CalendarUpdate {
    /// Whose calendar.
    pub user: UserId,
    /// Appointment or task.
    pub kind: ItemKind,
    /// The iCalendar UID.
    pub uid: String,
    /// What to do.
    pub merge: std::sync::Arc<dyn CalendarMerge>,
}

/// What a [`CalendarUpdate`] did.
#[derive(Debug, Clone)]
pub struct CalendarOutcome {
    /// Whose calendar.
    pub user: UserId,
    /// The object as held now (`None`: none, or removed).
    pub entry: Option<CalendarEntry>,
    /// Whether anything changed.
    pub changed: bool,
    /// The merge's reason.
    pub note: String,
}

/// Which users [`crate::Directory::find_users`] returns: those matching
/// every field given.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// A piece of the primary address or of the display name, matched
    /// case-insensitively (Unicode lower case) anywhere in either; `None`
    /// or blank: any user.
    pub text: Option<String>,
    /// Only the users of this domain (matched case-insensitively); blank:
    /// any.
    pub domain: Option<String>,
}

/// Changes to a user's details ([`crate::Directory::update_user`]): each
/// field `None` leaves the detail as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// A new display name (it may not be blank).
    pub display_name: Option<String>,
    /// A new job title; `Some(None)` (or a blank one) clears it.
    pub title: Option<Option<String>>,
    /// A new department; `Some(None)` (or a blank one) clears it.
    pub department: Option<Option<String>>,
    /// A new telephone number; `Some(None)` (or a blank one) clears it.
    pub phone: Option<Option<String>>,
}

/// Which queue entries [`crate::Queue::queue_page`] returns: those matching
/// every field given.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Entries with at least one recipient in this state, named as the
    /// queue's depth ([`QueueDepth`]) and the `postgate_queue_recipients`
    /// gauge's `state` label name them: `due` (never tried yet), `deferred`
    /// (tried, waiting for the next attempt), `in_flight` (claimed by a
    /// runner now; `sending` is accepted too) or `held` (held by an
    /// operator). Any other name is refused ([`crate::StoreError::Invalid`]).
    /// With `domain` as well, one recipient must match both. Blank: any.
    pub state: Option<String>,
    /// Entries with at least one recipient in this domain (compared
    /// lower-case, exactly: `example.com` does not match `mx.example.com`);
    /// blank: any.
    pub domain: Option<String>,
    /// Entries whose reverse path (MAIL FROM) holds this piece, ASCII
    /// letters compared case-insensitively; blank: any.
    pub sender: Option<String>,
    /// Entries queued before this time (Unix seconds).
    pub created_before: Option<i64>,
}

/// One point of a counter's history ([`crate::Stats::stats_history`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatPoint {
    /// The start of the bucket (Unix seconds).
    pub at: i64,
    /// The counter.
    pub name: String,
    /// What it counted in the bucket, over every node.
    pub value: u64,
}

/// A DKIM signing algorithm (RFC 6376 §3.3, RFC 8463 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum DkimAlgorithm {
    /// `rsa-sha256` (RFC 6376 §3.3.1): what every verifier knows.
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463 §3): short keys, fast; not yet known to
    /// every verifier, so sent beside an RSA signature (RFC 8463 §5).
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The `a=` tag value (RFC 6376 §3.5), as the store keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// From [`DkimAlgorithm::as_str`]'s form.
    pub fn parse(s: &str) -> Option<DkimAlgorithm> {
        match s {
            "rsa-sha256" => Some(DkimAlgorithm::RsaSha256),
            "ed25519-sha256" => Some(DkimAlgorithm::Ed25519Sha256),
            _ => None,
        }
    }
}

impl std::fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DKIM signing key ([`crate::DkimKeys`]): one selector of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The signing domain (`d=`, RFC 6376 §3.5): lower case, no final dot.
    pub domain: String,
    /// The selector (`s=`, RFC 6376 §3.1): lower case; the public key is
    /// published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// The algorithm the key is for.
    pub algorithm: DkimAlgorithm,
    /// The private key, PKCS#8 DER (RFC 5208).
    pub private_key: Secret<Vec<u8>>,
    /// When it was added (Unix seconds); the store sets it.
    pub created: i64,
}
