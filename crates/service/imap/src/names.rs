//! Folders as IMAP mailboxes: names, separator, attributes.
//!
//! The Inbox is `INBOX` (RFC 9051 §5.1, case-insensitive); other folders keep
//! their paths with "/" as the hierarchy separator. On the wire, names are in
//! modified UTF-7 (RFC 3501 §5.1.3).
use postgate_imap_proto::utf7;
use postgate_store::Folder;
use postgate_types::FolderRole;

/// The hierarchy separator.
pub const SEPARATOR: char = '/';

/// The IMAP name of a folder: `INBOX` for the Inbox and under it.
pub fn imap_name(folder: &Folder) -> String {
    if folder.role == Some(FolderRole::Inbox) {
        return "INBOX".into();
    }
    canonical(&folder.path)
}

/// A name with its first segment written `INBOX` if it is the Inbox's.
pub fn canonical(path: &str) -> String {
    match path.split_once(SEPARATOR) {
        Some((first, rest)) if first.eq_ignore_ascii_case("inbox") => format!("INBOX/{rest}"),
        None if path.eq_ignore_ascii_case("inbox") => "INBOX".into(),
        _ => path.to_string(),
    }
}

/// Decodes a mailbox name from the wire (modified UTF-7); `None` if invalid.
pub fn from_wire(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    let name = utf7::decode(s)?;
    // Strip one trailing separator: "foo/" names "foo" (RFC 9051 §6.3.4).
    let name = name.strip_suffix(SEPARATOR).unwrap_or(&name).to_string();
    Some(canonical(&name))
}

/// Takes a mailbox name from a session that enabled IMAP4rev2, where names
/// are UTF-8 as they are (RFC 9051 §5.1: Net-Unicode, no modified UTF-7);
/// `None` if not UTF-8 or holding control characters.
pub fn from_wire_utf8(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    if s.chars().any(char::is_control) {
        return None;
    }
    let name = s.strip_suffix(SEPARATOR).unwrap_or(s);
    Some(canonical(name))
}

/// Encodes a mailbox name for the wire.
pub fn to_wire(name: &str) -> String {
    utf7::encode(name)
}

/// The SPECIAL-USE attribute of a folder (RFC 6154 §2).
pub fn special_use(role: Option<FolderRole>) -> Option<&'static str> {
    match role? {
        FolderRole::Sent => Some("\\Sent"),
        FolderRole::Drafts => Some("\\Drafts"),
        FolderRole::Trash => Some("\\Trash"),
        FolderRole::Junk => Some("\\Junk"),
        FolderRole::Inbox | FolderRole::Calendar | FolderRole::Tasks => None,
    }
}

/// The role a SPECIAL-USE attribute names, for CREATE's USE (RFC 6154 §3);
/// `None` for those no folder role stands for (\All, \Archive, \Flagged).
pub fn role_of_special_use(attr: &str) -> Option<FolderRole> {
    [
        FolderRole::Sent,
        FolderRole::Drafts,
        FolderRole::Trash,
        FolderRole::Junk,
    ]
    .into_iter()
    .find(|r| special_use(Some(*r)).is_some_and(|s| s.eq_ignore_ascii_case(attr)))
}

/// Whether IMAP clients may change a folder's contents: Calendar and Tasks hold
/// items rendered as iCalendar, read-only over IMAP.
pub fn read_only(role: Option<FolderRole>) -> bool {
    matches!(role, Some(FolderRole::Calendar | FolderRole::Tasks))
}
