//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7, RFC 6851 MOVE, RFC 4315 COPYUID).
use crate::error::{ImapError, Result};
use crate::mailbox::announce_expunged;
use crate::names;
use crate::rewrite::format_set;
use crate::session::{Done, Session};
use imap_types::mailbox::Mailbox;
use imap_types::sequence::SequenceSet;

impl Session {
    pub(crate) async fn handle_copy(
        &mut self,
        set: SequenceSet,
        mailbox: Mailbox<'_>,
        uid: bool,
        is_move: bool,
        empty_saved: bool,
    ) -> Result<Done> {
        let dest_name = self.mailbox_name(&mailbox)?;
        let user = self.user()?.id;
        let dest = match self.ctx.store.folder(user, &dest_name).await? {
            Some(f) => f,
            // RFC 9051 §6.4.7: TRYCREATE when the destination does not exist.
            None => return Err(ImapError::no(Some("TRYCREATE"), "Mailbox doesn't exist")),
        };
        if names::read_only(dest.role) {
            return Err(ImapError::no(Some("CANNOT"), "Destination is read-only"));
        }
        if empty_saved {
            return Ok(Done::default());
        }
        let store = self.ctx.store.clone();
        let qresync = self.enabled.qresync;
        let sel = self.selected_mut()?;
        if is_move && sel.read_only {
            return Err(ImapError::no(Some("READ-ONLY"), "Mailbox is read-only"));
        }
        let indices = sel.resolve(&set, uid)?;
        let uids: Vec<u32> = indices.iter().map(|&i| sel.uids[i]).collect();
        if uids.is_empty() {
            return Ok(Done::default());
        }
        let (folder, goal) = (sel.folder, uids.len() as u64);
        let work = store.copy_messages(folder, uids, dest.id, is_move);
        let text = if is_move { "Moving" } else { "Copying" };
        let outcome = self.with_progress(work, Some(goal), text).await?;
        let (src, dst): (Vec<u32>, Vec<u32>) = outcome.pairs.iter().copied().unzip();
        let copyuid = format!(
            "COPYUID {} {} {}",
            outcome.uid_validity,
            format_set(&src),
            format_set(&dst)
        );
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
            self.untagged(&format!("OK [{copyuid}] Moved"));
            let sel = self.selected_mut()?;
            let lines = announce_expunged(sel, &src, qresync);
            for l in lines {
                self.untagged(&l);
            }
            self.sync(true).await?;
            return Ok(Done::default());
        }
        self.sync(true).await?;
        Ok(Done::code(copyuid))
    }
}
