//! The post office store: who exists (the directory) and what they hold (mailboxes).
//!
//! What it is for: one async trait family, [`Directory`] and [`Mailboxes`], joined
//! as [`Store`], that every engine (SMTP, IMAP, POP3, LDAP, console) talks to, and
//! the [`ChangeFeed`] they subscribe to. Backends implement the traits; the
//! embedded one ([`embedded::EmbeddedStore`], SQLite in WAL mode under one data
//! directory) is the default; [`postgres::PgStore`] keeps the post office in
//! PostgreSQL for several nodes. Nothing outside this crate names a backend.
//!
//! What it is not for: protocol logic, MIME parsing (callers hand in decoded
//! [`ItemContent`](postgate_types::ItemContent)), policy.
//!
//! Durability contract: a future returned by [`Mailboxes::deliver`] resolves only
//! once the delivery is committed and on disk (fsync'd). Concurrent deliveries
//! share commits (group commit): see [`embedded`].
//!
//! Modules: [`model`] (records the traits speak), [`password`] (argon2id),
//! [`feed`] (change feed), [`embedded`] (the SQLite backend).
#![deny(missing_docs)]

pub mod access;
pub mod auth;
mod cache;
pub mod check;
mod content;
pub mod copy;
pub mod embedded;
pub mod feed;
pub mod model;
pub mod password;
pub mod postgres;
mod rules;

use async_trait::async_trait;
use postgate_types::access::{Assignee, Block, Class, ClassSettings};
use postgate_types::{
    EmailAddress, Flags, FolderId, ItemContent, ItemKind, ItemSummary, Secret, UserId,
};

pub use feed::ChangeFeed;
pub use model::*;

/// Which backend holds the post office, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in WAL mode, in this data directory (the default: nothing
    /// else to run).
    Embedded {
        /// The data directory.
        data_dir: std::path::PathBuf,
    },
    /// PostgreSQL: several nodes may share it.
    Postgres(postgres::PgOptions),
}

/// Opens the store: the one way every part of Postgate (the server and each
/// CLI command) gets one. Nothing outside this crate names a backend.
pub async fn open(backend: &Backend) -> Result<std::sync::Arc<dyn Store>> {
    match backend {
        Backend::Embedded { data_dir } => Ok(std::sync::Arc::new(
            embedded::EmbeddedStore::open(data_dir).map_err(|e| match e {
                StoreError::Backend(m) => {
                    StoreError::Backend(format!("opening the store in {}: {m}", data_dir.display()))
                }
                other => other,
            })?,
        )),
        Backend::Postgres(options) => {
            Ok(std::sync::Arc::new(postgres::PgStore::open(options).await?))
        }
    }
}

/// One `Result` for the crate.
pub type Result<T> = std::result::Result<T, StoreError>;

/// What can go wrong in the store, in terms callers can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The named thing already exists (or its name is taken).
    #[error("{0} already exists")]
    Exists(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (I/O, corruption, locking); worth retrying later.
    #[error("storage failure: {0}")]
    Backend(String),
    /// The storage is full (the disk, or the database's own size limit):
    /// nothing more can be written until space is freed, while reads go on.
    /// Worth retrying later: SMTP answers `452 4.3.1` (RFC 3463 §3.4, "mail
    /// system full"), IMAP a tagged NO.
    #[error("storage full: {0}")]
    Full(String),
    /// The store has shut down.
    #[error("store is closed")]
    Closed,
    /// What the request was based on changed meanwhile; read it again.
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// Whether the failure is the store's, not the request's: protocols answer
    /// these with their try-again-later reply (SMTP 451 4.3.0, IMAP NO
    /// [UNAVAILABLE]; a full store: SMTP 452 4.3.1, IMAP NO [OVERQUOTA]).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Backend(_) | StoreError::Full(_) | StoreError::Closed
        )
    }
}

/// Domains, post offices, users, aliases and groups, credentials, and who
/// administers the post office through the web console.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Adds a domain this system serves, with its default post office.
    async fn add_domain(&self, name: &str) -> Result<Domain>;
    /// Every domain.
    async fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Removes an empty domain (no users, aliases or groups).
    async fn remove_domain(&self, name: &str) -> Result<()>;
    /// Whether mail for `domain` is ours to deliver.
    async fn is_local_domain(&self, domain: &str) -> Result<bool>;

    /// Adds a user with the standard folders.
    async fn add_user(&self, user: NewUser) -> Result<User>;
    /// Users, all or of one domain, ordered by address.
    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>>;
    /// A user by primary address or alias.
    async fn user(&self, address: &EmailAddress) -> Result<Option<User>>;
    /// A user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// Removes a user and everything they hold.
    async fn remove_user(&self, address: &EmailAddress) -> Result<()>;
    /// Sets (or clears, with `None`) a user's argon2id password hash.
    async fn set_password_hash(&self, address: &EmailAddress, hash: Option<String>) -> Result<()>;
    /// The user and their stored password hash, by address or alias: for authentication.
    async fn credentials(&self, login: &EmailAddress) -> Result<Option<(User, Option<String>)>>;

    /// Adds `alias` as another address of the user at `target`.
    async fn add_alias(&self, alias: &EmailAddress, target: &EmailAddress) -> Result<()>;
    /// Removes an alias.
    async fn remove_alias(&self, alias: &EmailAddress) -> Result<()>;

    /// Adds a group (distribution list).
    async fn add_group(&self, address: &EmailAddress, display_name: &str) -> Result<Group>;
    /// Removes a group.
    async fn remove_group(&self, address: &EmailAddress) -> Result<()>;
    /// Groups, all or of one domain.
    async fn list_groups(&self, domain: Option<&str>) -> Result<Vec<Group>>;
    /// Adds a member (a local user, alias or group address) to a group.
    async fn add_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()>;
    /// Removes a member from a group.
    async fn remove_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()>;

    /// A number that changes whenever the directory does (users, aliases,
    /// groups, domains), from this process or another: for caches of it.
    async fn directory_generation(&self) -> Result<u64>;
    /// Users after `after` (a user id) in id order, at most `limit`: for
    /// walking a large directory in bounded memory.
    async fn users_page(&self, after: UserId, limit: usize) -> Result<Vec<User>>;

    /// Users matching `filter`, ordered by address as
    /// [`Directory::list_users`] orders them (domain, then local part,
    /// case-folded): the at most `limit` after the first `offset`, and how
    /// many match in all (for paging).
    async fn find_users(
        &self,
        filter: UserFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<User>, u64)>;
    /// Changes a user's details (the user named by address or alias);
    /// returns the user as changed. A directory change like any other: it
    /// bumps [`Directory::directory_generation`].
    async fn update_user(&self, address: &EmailAddress, update: UserUpdate) -> Result<User>;

    /// Grants (`admin`) or revokes (`!admin`) the right to administer the
    /// post office through the web console, for the user named by address
    /// or alias ([`StoreError::NotFound`] if none). Granting twice, or
    /// revoking what was not granted, changes nothing. The grant goes with
    /// the user when it is removed. A directory change: it bumps
    /// [`Directory::directory_generation`], for caches of who may sign in.
    async fn set_console_admin(&self, user: &EmailAddress, admin: bool) -> Result<()>;
    /// The console administrators' primary addresses, ordered as
    /// [`Directory::list_users`] orders users.
    async fn console_admins(&self) -> Result<Vec<EmailAddress>>;
    /// Whether the user may administer the post office through the web
    /// console (`false` for no such user).
    async fn is_console_admin(&self, user: UserId) -> Result<bool>;

    /// Resolves a recipient address to the users who should receive mail sent to it:
    /// user, alias, group (expanded recursively), First.Last, plus-addressing.
    async fn resolve(&self, address: &EmailAddress) -> Result<Resolution>;

    /// Checks a login (address or alias) and password; argon2id verification runs
    /// off the async threads.
    async fn authenticate(
        &self,
        login: &EmailAddress,
        password: &Secret<String>,
    ) -> Result<Option<User>> {
        let Some((user, Some(hash))) = self.credentials(login).await? else {
            // Spend the same time as a real check so a missing user is not revealed by timing.
            password::verify_blocking(password::dummy_hash(), password.clone()).await;
            return Ok(None);
        };
        Ok(password::verify_blocking(hash, password.clone())
            .await
            .then_some(user))
    }
}

/// Access control as stored: classes of service, their assignments, blocked
/// hosts. Evaluated by [`access::Access`]; every change bumps the directory
/// generation ([`Directory::directory_generation`]).
#[async_trait]
pub trait AccessRules: Send + Sync {
    /// Adds a class of service (all settings at their defaults: allow).
    async fn add_class(&self, name: &str, description: &str) -> Result<()>;
    /// Removes a class and its assignments.
    async fn remove_class(&self, name: &str) -> Result<()>;
    /// Replaces a class's settings.
    async fn set_class(&self, name: &str, settings: ClassSettings) -> Result<()>;
    /// Every class with its assignments, by name.
    async fn classes(&self) -> Result<Vec<Class>>;
    /// Assigns a class (replacing the class the assignee had).
    async fn assign_class(&self, name: &str, to: Assignee) -> Result<()>;
    /// Removes an assignment.
    async fn unassign_class(&self, name: &str, from: Assignee) -> Result<()>;
    /// Adds (or replaces) a block.
    async fn add_block(&self, block: Block) -> Result<()>;
    /// Removes a block; whether there was one.
    async fn remove_block(&self, pattern: &str) -> Result<bool>;
    /// Every block.
    async fn blocks(&self) -> Result<Vec<Block>>;
    /// The groups a user is in, directly or through nested groups.
    async fn groups_of(&self, user: &User) -> Result<Vec<EmailAddress>>;
}

/// Folders and items.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    /// Stores one message for every target in one durable commit; resolves after
    /// the commit is on disk. Users are delivered to once each, however many
    /// targets name them.
    async fn deliver(&self, delivery: NewDelivery) -> Result<Vec<Delivered>>;

    /// Takes a folder's POP3 maildrop lock for `holder` (RFC 2449 §8.1.1:
    /// one session per maildrop; RFC 1939 §8 exclusive access); whether it
    /// was free. The lock lives where every node sharing the store sees it.
    async fn lock_maildrop(&self, folder: FolderId, holder: &str) -> Result<bool>;
    /// Releases a maildrop lock `holder` took (nothing if it holds none).
    async fn unlock_maildrop(&self, folder: FolderId, holder: &str) -> Result<()>;

    /// A user's folders, ordered by path, with counts.
    async fn folders(&self, user: UserId) -> Result<Vec<Folder>>;
    /// A folder by path (case-insensitive; `INBOX` always names the Inbox).
    async fn folder(&self, user: UserId, path: &str) -> Result<Option<Folder>>;
    /// Creates a folder and any missing parents (RFC 9051 §6.3.4 CREATE semantics).
    async fn create_folder(&self, user: UserId, path: &str) -> Result<Folder> {
        self.create_folder_for(user, path, None).await
    }
    /// Creates a folder as [`Mailboxes::create_folder`] does and, with a
    /// role, makes it the user's folder for that role (the folder that had
    /// it loses it), in one commit: either both happen or neither (RFC 6154
    /// §3, CREATE with USE).
    async fn create_folder_for(
        &self,
        user: UserId,
        path: &str,
        role: Option<postgate_types::FolderRole>,
    ) -> Result<Folder>;

    /// The items of a folder in UID order.
    async fn items(&self, folder: FolderId) -> Result<Vec<ItemSummary>>;
    /// One item with its decoded content.
    async fn item(&self, folder: FolderId, uid: u32) -> Result<Option<ItemRecord>>;
    /// The RFC 5322 bytes of an item, byte-exact as stored.
    async fn raw(&self, folder: FolderId, uid: u32) -> Result<Option<Vec<u8>>>;

    /// The change feed: every committed mailbox change, in commit order.
    fn changes(&self) -> &ChangeFeed;

    /// Renames a folder and everything under it (RFC 9051 §6.3.6). Renaming the
    /// Inbox moves its messages to a new folder and leaves the Inbox empty.
    async fn rename_folder(&self, user: UserId, from: &str, to: &str) -> Result<()>;
    /// Deletes a folder and its messages. System folders and folders with
    /// subfolders are refused.
    async fn delete_folder(&self, user: UserId, path: &str) -> Result<()>;
    /// Subscribes or unsubscribes a name (it need not exist: RFC 9051 §6.3.7).
    async fn set_subscribed(&self, user: UserId, path: &str, subscribed: bool) -> Result<()>;
    /// The subscribed names, sorted.
    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>>;

    /// A folder and all its messages' UIDs and flags (what SELECT needs).
    async fn snapshot(&self, folder: FolderId) -> Result<MailboxSnapshot>;
    /// Messages added or changed, and UIDs expunged, after `modseq`.
    async fn changes_since(&self, folder: FolderId, modseq: u64) -> Result<FolderChanges>;
    /// Claims the messages up to `upto` as \Recent for the calling session
    /// (RFC 3501 §2.3.2: recent in exactly one session); returns the highest UID
    /// claimed before, so the caller's recent messages are (returned, upto].
    async fn claim_recent(&self, folder: FolderId, upto: u32) -> Result<u32>;
    /// Changes flags and keywords of the listed UIDs, each changed message
    /// getting a new modseq; with `unchanged_since`, messages modified after it
    /// are left alone and reported (RFC 7162 §3.1.3).
    async fn store_flags(
        &self,
        folder: FolderId,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Flags,
        keywords: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome>;
    /// Removes the listed UIDs, remembering them for VANISHED; returns those removed.
    async fn expunge(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<u32>>;
    /// Copies (or, with `remove`, moves) messages to another folder in one commit.
    async fn copy_messages(
        &self,
        from: FolderId,
        uids: Vec<u32>,
        to: FolderId,
        remove: bool,
    ) -> Result<CopyOutcome>;
    /// Appends one message; returns (UIDVALIDITY, UID).
    async fn append(&self, folder: FolderId, message: NewMessage) -> Result<(u32, u32)>;
    /// Appends messages to one folder in one commit, in the order given:
    /// they get ascending UIDs, and either all are stored or none (an
    /// import commits a batch at a time, and resumes after the last batch
    /// it saw committed). Returns the UIDVALIDITY and the UIDs, in order.
    async fn append_batch(
        &self,
        folder: FolderId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)>;
    /// FETCH metadata of the listed UIDs (those that exist), in UID order.
    async fn messages_meta(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<MessageMeta>>;
    /// The RFC 5322 bytes of a stored message.
    async fn message_bytes(&self, message: MessageRef) -> Result<Option<Vec<u8>>>;
    /// The bytes of several stored messages, in the order given (`None` for
    /// one that is gone), in one round trip where the backend can: POP3
    /// reads the next messages ahead with the one asked for.
    async fn messages_bytes(&self, messages: Vec<MessageRef>) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.message_bytes(m).await?);
        }
        Ok(out)
    }
    /// The decoded content of a stored message (bodies included).
    async fn message_content(&self, message: MessageRef) -> Result<Option<ItemContent>>;
    /// Octets stored in all of a user's folders (RFC 9208 STORAGE).
    async fn usage(&self, user: UserId) -> Result<u64>;

    /// The metadata entries (RFC 5464) of one of a user's folders, or with
    /// `None` the user's server entries: (name, value), ordered by name.
    /// Names are kept lower-cased.
    async fn metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Sets (`Some`) or removes (`None`) entries of a folder (or the
    /// user's server entries) in one commit. Entries go with their folder
    /// when it is deleted, and stay with it when it is renamed.
    async fn set_metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<()>;
}

/// The outbound queue: messages waiting for remote recipients.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Claims up to `limit` due recipients, grouped by message: their next
    /// attempt moves `lease` seconds ahead, so no other runner takes them while
    /// this one works, and if it dies they come due again.
    async fn claim_due(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<QueuedMessage>>;
    /// Records what attempts did (by recipient id); a message with no
    /// recipient left to try (none waiting or held) leaves the queue.
    async fn record(&self, outcomes: Vec<(i64, RcptOutcome)>) -> Result<()>;
    /// Every queued message with all its recipients.
    async fn queue_list(&self) -> Result<Vec<QueuedMessage>>;
    /// How many recipients wait, by state, and the oldest message's age: a
    /// count, not a listing (for counters).
    async fn queue_depth(&self) -> Result<QueueDepth>;
    /// One queued message with all its recipients.
    async fn queue_get(&self, id: i64) -> Result<Option<QueuedMessage>>;
    /// Drops a queued message without sending or bouncing it.
    async fn queue_remove(&self, id: i64) -> Result<bool>;
    /// Makes the waiting recipients of one message (or all) due now;
    /// returns how many. Recipients a runner is working on are left alone,
    /// and so are held ones.
    async fn queue_retry(&self, id: Option<i64>) -> Result<usize>;
    /// Holds (`hold`) or releases (`!hold`) the recipients of one message
    /// (or, with `None`, of all); returns how many changed. Holding makes
    /// waiting recipients (status `queued`, not claimed) `held`: never
    /// claimed, and keeping their message in the queue until released or
    /// removed. Releasing makes held recipients `queued` and due now.
    /// Recipients a runner is working on (claimed) are left alone: hold
    /// again after their attempt if they are still waiting.
    async fn queue_hold(&self, id: Option<i64>, hold: bool) -> Result<usize>;
    /// Queued messages matching `filter`, in id order, each with all its
    /// recipients (as [`Queue::queue_get`] gives them): the at most
    /// `limit` after the first `offset`, and how many match in all (for
    /// paging). An unknown state name is [`StoreError::Invalid`].
    async fn queue_page(
        &self,
        filter: QueueFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<QueuedMessage>, u64)>;
    /// Ends every claim at once, making those recipients due now: for a node
    /// that starts knowing it is the only one (the embedded store), so that
    /// work cut short by a crash resumes at once rather than when its lease
    /// runs out. Returns how many.
    async fn release_leases(&self) -> Result<usize>;
}

/// Appointments and tasks: each user's calendar objects, by iCalendar UID,
/// with their MIME forms in the Calendar and Tasks folders (for IMAP) and
/// an index of the time they cover.
#[async_trait]
pub trait Calendars: Send + Sync {
    /// Runs calendar changes in one commit; each merge sees what is held
    /// when it runs.
    async fn update_calendar(&self, updates: Vec<CalendarUpdate>) -> Result<Vec<CalendarOutcome>>;
    /// One object, by its id.
    async fn calendar_entry(&self, user: UserId, id: i64) -> Result<Option<CalendarEntry>>;
    /// One object, by its iCalendar UID.
    async fn calendar_by_uid(
        &self,
        user: UserId,
        kind: ItemKind,
        uid: &str,
    ) -> Result<Option<CalendarEntry>>;
    /// Every object of a kind, by id.
    async fn calendar_entries(&self, user: UserId, kind: ItemKind) -> Result<Vec<CalendarEntry>>;
    /// The objects whose span meets `[from, to]`, as (id, item UID: which
    /// version): an index query, not a scan. The caller expands recurrences
    /// to find the occurrences.
    async fn calendar_range_keys(
        &self,
        user: UserId,
        kind: ItemKind,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u32)>>;
    /// Objects by id, as range queries read them: without their iCalendar
    /// text (`ical` is empty; read one with [`Calendars::calendar_entry`]
    /// for that).
    async fn calendar_listings(&self, user: UserId, ids: Vec<i64>) -> Result<Vec<CalendarEntry>>;
    /// The objects whose span meets `[from, to]`, as listings.
    async fn calendar_range(
        &self,
        user: UserId,
        kind: ItemKind,
        from: i64,
        to: i64,
    ) -> Result<Vec<CalendarEntry>> {
        let keys = self.calendar_range_keys(user, kind, from, to).await?;
        self.calendar_listings(user, keys.into_iter().map(|k| k.0).collect())
            .await
    }
}

/// Counter history: per-minute increments of named counters (messages in,
/// logins, …), recorded by each node and kept where every node sees them,
/// so that the console charts the whole system, and pruned by age.
#[async_trait]
pub trait Stats: Send + Sync {
    /// Adds `deltas` (counter name, increment) to what `node` counted in
    /// the minute starting at `minute` (Unix seconds, rounded down to a
    /// whole minute): recording a counter again for that minute and node
    /// adds to it. One commit for all of them.
    async fn record_stats(&self, minute: i64, node: &str, deltas: Vec<(String, u64)>)
    -> Result<()>;
    /// The counters from `since` on, summed over every node and over
    /// buckets of `bucket` seconds (a positive multiple of 60, else
    /// [`StoreError::Invalid`]). Buckets start at multiples of `bucket`
    /// since the epoch (`at` is the start), and the first is the one that
    /// holds `since`, whole. Ordered by `at`, then by name (bytewise); a
    /// bucket in which a counter recorded nothing has no point for it.
    async fn stats_history(&self, since: i64, bucket: i64) -> Result<Vec<StatPoint>>;
    /// Deletes what was recorded for minutes before `before`; returns how
    /// many (minute, node, counter) rows went.
    async fn prune_stats(&self, before: i64) -> Result<u64>;
}

/// DKIM signing keys (RFC 6376): the private keys the outbound agent signs
/// with, by domain and selector. Kept where every node sees them, so that
/// `postgate dkim generate` on one is picked up by all (the agent reads
/// them again periodically, see `postgate_outbound::dkim`). A domain may
/// have several keys: the agent signs with each (RSA beside Ed25519, RFC
/// 8463 §5), and rotating is adding a key under a new selector, then
/// removing the old one once its DNS record is gone.
#[async_trait]
pub trait DkimKeys: Send + Sync {
    /// Adds a key; its `created` is set to now and the key as stored
    /// (domain and selector lower-cased) is returned.
    /// [`StoreError::Exists`] if the domain already has the selector;
    /// [`StoreError::Invalid`] for a domain or selector that is not a DNS
    /// name, or an empty key.
    async fn add_dkim_key(&self, key: DkimKey) -> Result<DkimKey>;
    /// The keys, all or of one domain, ordered by domain, then selector.
    async fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>>;
    /// Removes a key; whether there was one.
    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> Result<bool>;
}

/// The whole store: what engines hold as `Arc<dyn Store>`.
pub trait Store:
    Directory + Mailboxes + Queue + Calendars + AccessRules + Stats + DkimKeys + std::fmt::Debug
{
}
impl<
    T: Directory + Mailboxes + Queue + Calendars + AccessRules + Stats + DkimKeys + std::fmt::Debug,
> Store for T
{
}
