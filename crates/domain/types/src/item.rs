//! Items: the post office's own format for mail, appointments and tasks.
//!
//! An item is not MIME. Mail that arrived from the Internet keeps its original
//! RFC 5322 bytes beside the item (for IMAP and POP3, byte-exact), but what the
//! post office reasons about (who sent it, to whom, its bodies and attachments)
//! is decoded once, at delivery, into [`ItemContent`]. An appointment or a task
//! is an item whose [`ItemBody`] holds its calendar object; its MIME form (a
//! message with a text/calendar part) is a view rendered once, for IMAP.
use crate::calendar::ItemBody;
use std::fmt;

/// What kind of item this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A mail message.
    Mail,
    /// A calendar appointment.
    Appointment,
    /// A task.
    Task,
}

impl ItemKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Mail => "mail",
            ItemKind::Appointment => "appointment",
            ItemKind::Task => "task",
        }
    }
    /// Inverse of [`ItemKind::as_str`]; `None` for a name that is no kind
    /// (never silently mail).
    pub fn parse(s: &str) -> Option<ItemKind> {
        match s {
            "mail" => Some(ItemKind::Mail),
            "appointment" => Some(ItemKind::Appointment),
            "task" => Some(ItemKind::Task),
            _ => None,
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ItemContent {
    /// The kind of item.
    pub fn kind(&self) -> ItemKind {
        self.body.kind()
    }
}

/// How important the sender says the item is (RFC 2156 Importance, X-Priority).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    /// Low.
    Low,
    /// Normal: the default when nothing is said.
    #[default]
    Normal,
    /// High.
    High,
}

impl Importance {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
        }
    }
    /// Inverse of [`Importance::as_str`].
    pub fn parse(s: &str) -> Importance {
        match s {
            "low" => Importance::Low,
            "high" => Importance::High,
            _ => Importance::Normal,
        }
    }
}

/// A person or address as named in a message: display name and address, both decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    /// Display name (RFC 2047 decoded), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address, if any (a group or a broken header can lack one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.address) {
            (Some(n), Some(a)) => write!(f, "{n} <{a}>"),
            (None, Some(a)) => f.write_str(a),
            (Some(n), None) => f.write_str(n),
            (None, None) => Ok(()),
        }
    }
}

/// An attachment as the item knows it; the bytes stay in the original message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    /// File name (RFC 2231 / RFC 2047 decoded), if the sender gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Decoded size in octets.
    pub size: u64,
    /// Index of the MIME part in the parsed message, to fetch the bytes again.
    pub part: u32,
    /// Shown inline (e.g. an image referenced from HTML) rather than as a file.
    #[serde(default)]
    pub inline: bool,
    /// Content-ID, for inline images referenced by `cid:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// The post office's own record of an item's content.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ItemContent {
    /// What the item is: mail, or an appointment or task with its calendar
    /// object. The fields below are what a reader sees of it (for an
    /// appointment: its organizer, attendees, summary and description).
    #[serde(default, skip_serializing_if = "ItemBody::is_mail")]
    pub body: ItemBody,
    /// The author (From).
    pub from: Option<Contact>,
    /// The agent that sent it on the author's behalf (Sender), when different.
    pub sender: Option<Contact>,
    /// Primary recipients.
    pub to: Vec<Contact>,
    /// Carbon-copy recipients.
    pub cc: Vec<Contact>,
    /// Blind carbon-copy recipients (known only for items born here or when the header survived).
    pub bcc: Vec<Contact>,
    /// Where replies go.
    pub reply_to: Vec<Contact>,
    /// Subject, decoded.
    pub subject: Option<String>,
    /// Origination date (RFC 5322 Date) as Unix seconds.
    pub date: Option<i64>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids.
    pub in_reply_to: Vec<String>,
    /// References ids.
    pub references: Vec<String>,
    /// Plain-text body, decoded to UTF-8.
    pub text: Option<String>,
    /// HTML body, decoded to UTF-8.
    pub html: Option<String>,
    /// Attachments and inline parts.
    pub attachments: Vec<Attachment>,
    /// Importance.
    pub importance: Importance,
}

/// IMAP system flags (RFC 9051 §2.3.2) as a bit set. `\Recent` is per session
/// and not stored.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Flags(pub u32);

impl Flags {
    /// `\Seen`
    pub const SEEN: Flags = Flags(1);
    /// `\Answered`
    pub const ANSWERED: Flags = Flags(2);
    /// `\Flagged`
    pub const FLAGGED: Flags = Flags(4);
    /// `\Deleted`
    pub const DELETED: Flags = Flags(8);
    /// `\Draft`
    pub const DRAFT: Flags = Flags(16);

    const NAMES: [(Flags, &'static str); 5] = [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ];

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    /// Difference.
    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
    /// The IMAP names of the flags set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
    /// The flag an IMAP name stands for, case-insensitively.
    pub fn from_name(name: &str) -> Option<Flags> {
        Flags::NAMES
            .into_iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| f)
    }
}

/// One item in a folder, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemSummary {
    /// IMAP UID within the folder.
    pub uid: u32,
    /// Kind.
    pub kind: ItemKind,
    /// Author.
    pub from: Option<Contact>,
    /// Subject.
    pub subject: Option<String>,
    /// Origination date, else arrival, Unix seconds.
    pub date: i64,
    /// Arrival time in this folder (IMAP INTERNALDATE), Unix seconds.
    pub internal_date: i64,
    /// Size of the RFC 5322 form in octets.
    pub size: u64,
    /// System flags.
    pub flags: Flags,
    /// Keywords (IMAP user flags).
    pub keywords: Vec<String>,
    /// Modification sequence (RFC 7162).
    pub modseq: u64,
}

/// What happened to a mailbox; published on the change feed after commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new item arrived.
    Append,
    /// Flags or keywords changed.
    Flags,
    /// An item was removed.
    Expunge,
    /// The owner's folders changed: one was created, deleted or renamed
    /// (the change names no folder; subscribers re-read the list).
    Mailboxes,
    /// The owner's subscriptions changed (likewise).
    Subscriptions,
}

impl ChangeKind {
    /// Whether the change is to one folder's items (it names the folder),
    /// rather than to the owner's list of folders or subscriptions.
    pub fn is_item(self) -> bool {
        matches!(
            self,
            ChangeKind::Append | ChangeKind::Flags | ChangeKind::Expunge
        )
    }
}

/// One committed change to one folder, with the folder's new modseq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Owner of the folder.
    pub user: crate::UserId,
    /// The folder.
    pub folder: crate::FolderId,
    /// The folder's modseq after the change (RFC 7162 §3.1.1).
    pub modseq: u64,
    /// The item's UID.
    pub uid: u32,
    /// What changed.
    pub kind: ChangeKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let f = Flags::SEEN.with(Flags::DELETED);
        assert!(f.contains(Flags::SEEN));
        assert!(!f.contains(Flags::DRAFT));
        assert_eq!(f.names().collect::<Vec<_>>(), ["\\Seen", "\\Deleted"]);
        assert_eq!(Flags::from_name("\\seen"), Some(Flags::SEEN));
        assert_eq!(f.without(Flags::SEEN), Flags::DELETED);
    }
}
