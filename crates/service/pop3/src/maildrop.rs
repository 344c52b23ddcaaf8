//! The maildrop of a POP3 session: login options, the message list fixed at
//! login, and what QUIT does with it.
use postgate_runtime::config::DeleteMode;
use postgate_store::{Folder, MessageRef, Store, StoreError};
use postgate_types::FolderRole;
use std::sync::Arc;

/// Options given after the user name: `alice@example.org:days=7:sdl=20`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOptions {
    /// `sdl=N`: at most N messages this session (the oldest first).
    pub sdl: Option<usize>,
    /// `days=N`: only messages that arrived in the last N days.
    pub days: Option<u32>,
    /// `folder=PATH`: this folder instead of the Inbox.
    pub folder: Option<String>,
    /// `keep` / `purge`: override what DELE does.
    pub delete: Option<DeleteOverride>,
}

/// What a session's DELE does, when the login says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOverride {
    /// Nothing is removed: DELE only hides the message for the rest of the session.
    Keep,
    /// Messages are removed for good rather than moved to Trash.
    Purge,
}

impl LoginOptions {
    /// Splits `login` into the address and its options; an unknown or malformed
    /// option is an error naming it.
    ///
    /// ```
    /// use postgate_pop3::maildrop::LoginOptions;
    /// let (user, o) = LoginOptions::split("alice@example.org:days=7:sdl=20").unwrap();
    /// assert_eq!(user, "alice@example.org");
    /// assert_eq!((o.days, o.sdl), (Some(7), Some(20)));
    /// assert!(LoginOptions::split("alice:colour=blue").is_err());
    /// ```
    pub fn split(login: &str) -> Result<(&str, LoginOptions), String> {
        let mut parts = login.split(':');
        let user = parts.next().unwrap_or_default();
        let mut o = LoginOptions::default();
        for opt in parts {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v)),
                None => (opt.to_ascii_lowercase(), None),
            };
            let num = |v: Option<&str>| -> Result<u64, String> {
                v.and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("option {name} needs a number"))
            };
            match (name.as_str(), value) {
                ("sdl", v) => o.sdl = Some(num(v)? as usize),
                ("days", v) => o.days = Some(num(v)? as u32),
                ("folder", Some(f)) if !f.is_empty() => o.folder = Some(f.to_string()),
                ("keep", None) => o.delete = Some(DeleteOverride::Keep),
                ("purge", None) => o.delete = Some(DeleteOverride::Purge),
                _ => return Err(format!("unknown login option \"{opt}\"")),
            }
        }
        Ok((user, o))
    }
}

/// One message of the maildrop.
#[derive(Debug, Clone)]
pub struct Message {
    /// UID in the folder.
    pub uid: u32,
    /// Size in octets (RFC 1939 §5 "exact size").
    pub size: u64,
    /// Where the bytes are.
    pub message: MessageRef,
    /// Arrival time.
    pub internal_date: i64,
    /// Marked by DELE.
    pub deleted: bool,
    /// Sent by RETR (for EXPIRE).
    pub retrieved: bool,
}

/// The maildrop as fixed at login.
#[derive(Debug)]
pub struct Maildrop {
    /// The folder.
    pub folder: Folder,
    /// The messages, numbered from 1.
    pub messages: Vec<Message>,
    /// What DELE does.
    pub delete: DeleteMode,
    /// DELE removes nothing.
    pub keep: bool,
}

impl Maildrop {
    /// Takes the snapshot of `folder` that the session will number.
    pub async fn open(
        store: &Arc<dyn Store>,
        folder: Folder,
        options: &LoginOptions,
        delete: DeleteMode,
    ) -> Result<Maildrop, StoreError> {
        let snap = store.snapshot(folder.id).await?;
        let uids: Vec<u32> = snap.entries.iter().map(|e| e.uid).collect();
        let mut meta = store.messages_meta(folder.id, uids).await?;
        if let Some(days) = options.days {
            let since = chrono::Utc::now().timestamp() - days as i64 * 86_400;
            meta.retain(|m| m.internal_date >= since);
        }
        if let Some(n) = options.sdl {
            meta.truncate(n);
        }
        Ok(Maildrop {
            folder,
            messages: meta
                .into_iter()
                .map(|m| Message {
                    uid: m.uid,
                    size: m.size,
                    message: m.message,
                    internal_date: m.internal_date,
                    deleted: false,
                    retrieved: false,
                })
                .collect(),
            delete: match options.delete {
                Some(DeleteOverride::Purge) => DeleteMode::Purge,
                _ => delete,
            },
            keep: options.delete == Some(DeleteOverride::Keep),
        })
    }

    /// The message numbered `n` (from 1), unless deleted.
    pub fn get(&self, n: u32) -> Option<&Message> {
        let m = self.messages.get((n as usize).checked_sub(1)?)?;
        (!m.deleted).then_some(m)
    }

    /// The UIDL of a message: unique in this folder forever (RFC 1939 §7).
    pub fn uidl(&self, m: &Message) -> String {
        format!("{}.{}", self.folder.uid_validity, m.uid)
    }

    /// (count, octets) of the messages not deleted.
    pub fn stat(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.size))
    }

    /// UPDATE (RFC 1939 §6): removes what DELE marked, and what EXPIRE says
    /// (`expire` days after arrival, for messages retrieved in this session).
    pub async fn commit(
        &self,
        store: &Arc<dyn Store>,
        expire: Option<u32>,
    ) -> Result<usize, StoreError> {
        if self.keep {
            return Ok(0);
        }
        let now = chrono::Utc::now().timestamp();
        let gone: Vec<u32> = self
            .messages
            .iter()
            .filter(|m| {
                m.deleted
                    || (m.retrieved
                        && expire.is_some_and(|days| now - m.internal_date >= days as i64 * 86_400))
            })
            .map(|m| m.uid)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let to_trash =
            self.delete == DeleteMode::Trash && self.folder.role != Some(FolderRole::Trash);
        if to_trash {
            let trash = store
                .folders(self.folder.user)
                .await?
                .into_iter()
                .find(|f| f.role == Some(FolderRole::Trash));
            if let Some(trash) = trash {
                store
                    .copy_messages(self.folder.id, gone.clone(), trash.id, true)
                    .await?;
                return Ok(gone.len());
            }
        }
        Ok(store.expunge(self.folder.id, gone).await?.len())
    }
}
