//! What can go wrong in a command, and the reply that says so (RFC 9051 §7.1).
use postgate_store::StoreError;

/// The kind of failure reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `NO`: the command was understood and failed.
    No,
    /// `BAD`: the command was not valid (syntax, state, arguments).
    Bad,
}

/// A failed command: its reply, with an optional response code (RFC 5530).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapError {
    /// NO or BAD.
    pub kind: Kind,
    /// Response code such as `NONEXISTENT`, without brackets.
    pub code: Option<String>,
    /// Human-readable text.
    pub text: String,
}

impl ImapError {
    /// A NO reply.
    pub fn no(code: Option<&str>, text: impl Into<String>) -> ImapError {
        ImapError {
            kind: Kind::No,
            code: code.map(str::to_string),
            text: text.into(),
        }
    }
    /// A BAD reply.
    pub fn bad(text: impl Into<String>) -> ImapError {
        ImapError {
            kind: Kind::Bad,
            code: None,
            text: text.into(),
        }
    }
    /// The mailbox does not exist (RFC 5530 NONEXISTENT).
    pub fn nonexistent() -> ImapError {
        ImapError::no(Some("NONEXISTENT"), "Mailbox doesn't exist")
    }
    /// A command that needs a selected mailbox.
    pub fn not_selected() -> ImapError {
        ImapError::bad("No mailbox selected")
    }
}

/// One `Result` for the crate's handlers.
pub type Result<T> = std::result::Result<T, ImapError>;

impl From<StoreError> for ImapError {
    fn from(e: StoreError) -> ImapError {
        match e {
            StoreError::NotFound(_) => ImapError::nonexistent(),
            StoreError::Exists(what) => {
                ImapError::no(Some("ALREADYEXISTS"), format!("{what} already exists"))
            }
            StoreError::Invalid(why) | StoreError::Conflict(why) => {
                ImapError::no(Some("CANNOT"), why)
            }
            // RFC 5530 §3 OVERQUOTA: the operation would need space the
            // server does not have (Dovecot answers a full disk the same
            // way); nothing was stored, and reads go on.
            StoreError::Full(_) => {
                tracing::error!(error = %e, "store full in IMAP session");
                ImapError::no(Some("OVERQUOTA"), "Mail system full, try again later")
            }
            StoreError::Backend(_) | StoreError::Closed => {
                tracing::error!(error = %e, "store error in IMAP session");
                ImapError::no(Some("UNAVAILABLE"), "Temporary failure, try again later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full store is a NO with OVERQUOTA, not UNAVAILABLE or SERVERBUG.
    #[test]
    fn full_store_is_overquota() {
        let e = ImapError::from(StoreError::Full("database or disk is full".into()));
        // RFC 9051 §7.1 / RFC 5530 §3: NO [OVERQUOTA].
        assert_eq!(e.kind, Kind::No);
        assert_eq!(e.code.as_deref(), Some("OVERQUOTA"));
        let e = ImapError::from(StoreError::Backend("disk I/O error".into()));
        assert_eq!(e.code.as_deref(), Some("UNAVAILABLE"));
    }
}
