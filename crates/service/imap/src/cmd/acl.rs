//! ACL (RFC 4314) for the user's own mailboxes: MYRIGHTS, GETACL and
//! LISTRIGHTS answer what the owner holds; SETACL and DELETEACL are refused,
//! as no mailbox is shared with anyone else yet.
use super::misc::quote;
use crate::error::{ImapError, Result};
use crate::names;
use crate::rewrite::AclCommand;
use crate::session::{Done, Session};

/// Every right of RFC 4314 §2.1 (with the RFC 2086 ones it keeps): what the
/// owner holds on a mailbox it may change.
const ALL_RIGHTS: &str = "lrswipkxtea";
/// What the owner holds on a mailbox IMAP may only read (Calendar, Tasks):
/// lookup and read.
const READ_RIGHTS: &str = "lr";

impl Session {
    pub(crate) async fn handle_acl(
        &mut self,
        command: AclCommand,
        args: Vec<Vec<u8>>,
    ) -> Result<Done> {
        let user = self.user()?;
        let (user_id, owner) = (user.id, user.address.to_string());
        let name = self.mailbox_arg(&args[0])?;
        let folder = self.folder_by_name(user_id, &name).await?;
        let rights = if names::read_only(folder.role) {
            READ_RIGHTS
        } else {
            ALL_RIGHTS
        };
        let wire = quote(&self.wire_name(&names::imap_name(&folder)));
        match command {
            // RFC 4314 §3.5: MYRIGHTS mailbox -> * MYRIGHTS mailbox rights.
            AclCommand::MyRights => self.untagged(&format!("MYRIGHTS {wire} {rights}")),
            // RFC 4314 §3.3: GETACL mailbox -> * ACL mailbox (identifier
            // rights)*; the owner is the only identifier.
            AclCommand::GetAcl => {
                self.untagged(&format!("ACL {wire} {} {rights}", quote(&owner)));
            }
            // RFC 4314 §3.4: the rights always granted to the identifier,
            // then those that could be: the owner holds them all, anyone
            // else none, and nothing can be granted yet.
            AclCommand::ListRights => {
                let id = String::from_utf8_lossy(&args[1]).into_owned();
                let required = if id.eq_ignore_ascii_case(&owner) {
                    rights
                } else {
                    "\"\""
                };
                self.untagged(&format!("LISTRIGHTS {wire} {} {required}", quote(&id)));
            }
            AclCommand::SetAcl | AclCommand::DeleteAcl => {
                return Err(ImapError::no(
                    Some("CANNOT"),
                    "Mailboxes cannot be shared on this server yet",
                ));
            }
        }
        Ok(Done::default())
    }
}
