//! The folders every user has, and what they are for.
use std::fmt;

/// A system folder's role. IMAP maps these to SPECIAL-USE flags (RFC 6154);
/// delivery uses them to find Inbox and Junk without matching on names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderRole {
    /// Where mail arrives.
    Inbox,
    /// Copies of what the user sent.
    Sent,
    /// Unsent drafts.
    Drafts,
    /// Deleted items.
    Trash,
    /// Mail judged to be spam.
    Junk,
    /// Appointments.
    Calendar,
    /// Tasks.
    Tasks,
}

impl FolderRole {
    /// Every role, in the order folders are created for a new user.
    pub const ALL: [FolderRole; 7] = [
        FolderRole::Inbox,
        FolderRole::Sent,
        FolderRole::Drafts,
        FolderRole::Trash,
        FolderRole::Junk,
        FolderRole::Calendar,
        FolderRole::Tasks,
    ];

    /// The folder's display name as created for a new user.
    pub fn default_name(self) -> &'static str {
        match self {
            FolderRole::Inbox => "Inbox",
            FolderRole::Sent => "Sent Items",
            FolderRole::Drafts => "Drafts",
            FolderRole::Trash => "Trash",
            FolderRole::Junk => "Junk",
            FolderRole::Calendar => "Calendar",
            FolderRole::Tasks => "Tasks",
        }
    }

    /// The stored name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderRole::Inbox => "inbox",
            FolderRole::Sent => "sent",
            FolderRole::Drafts => "drafts",
            FolderRole::Trash => "trash",
            FolderRole::Junk => "junk",
            FolderRole::Calendar => "calendar",
            FolderRole::Tasks => "tasks",
        }
    }

    /// The inverse of [`FolderRole::as_str`].
    pub fn parse(s: &str) -> Option<FolderRole> {
        FolderRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for FolderRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
