//! STORE and UID STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE).
use crate::error::{ImapError, Result};
use crate::mailbox::flag_list;
use crate::rewrite::format_set;
use crate::session::{Done, Session};
use imap_types::command::StoreModifier;
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::sequence::SequenceSet;
use postgate_store::FlagOp;
use postgate_types::Flags;

/// System flags and keywords of a flag list; `\Recent` and unknown system
/// flags are refused (RFC 9051 §2.3.2: \Recent cannot be stored).
pub(crate) fn split_flags(list: &[Flag<'_>]) -> Result<(Flags, Vec<String>)> {
    let mut flags = Flags::default();
    let mut keywords: Vec<String> = Vec::new();
    for f in list {
        match f {
            Flag::Seen => flags = flags.with(Flags::SEEN),
            Flag::Answered => flags = flags.with(Flags::ANSWERED),
            Flag::Flagged => flags = flags.with(Flags::FLAGGED),
            Flag::Deleted => flags = flags.with(Flags::DELETED),
            Flag::Draft => flags = flags.with(Flags::DRAFT),
            Flag::Keyword(k) => {
                let k = k.as_ref().to_string();
                if !keywords.iter().any(|have| have.eq_ignore_ascii_case(&k)) {
                    keywords.push(k);
                }
            }
            Flag::Extension(_) => {
                let name = f.to_string();
                if name.eq_ignore_ascii_case("\\Recent") {
                    return Err(ImapError::bad("\\Recent cannot be stored"));
                }
                return Err(ImapError::bad(format!("Unknown system flag {name}")));
            }
        }
    }
    Ok((flags, keywords))
}

impl Session {
    pub(crate) async fn handle_store(
        &mut self,
        set: SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flag_list_in: Vec<Flag<'_>>,
        uid: bool,
        modifiers: Vec<StoreModifier>,
    ) -> Result<Done> {
        let (flags, keywords) = split_flags(&flag_list_in)?;
        let unchanged_since = modifiers
            .iter()
            .map(|m| match m {
                StoreModifier::UnchangedSince(v) => *v,
            })
            .next();
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let condstore = self.enabled.condstore;
        let show_recent = self.show_recent();
        let store = self.ctx.store.clone();
        let sel = self.selected_mut()?;
        if sel.read_only {
            return Err(ImapError::no(Some("READ-ONLY"), "Mailbox is read-only"));
        }
        let indices = sel.resolve(&set, uid)?;
        let uids: Vec<u32> = indices.iter().map(|&i| sel.uids[i]).collect();
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let outcome = store
            .store_flags(
                sel.folder,
                uids.clone(),
                op,
                flags,
                keywords.clone(),
                unchanged_since,
            )
            .await?;
        for e in &outcome.changed {
            sel.apply(e);
        }
        // New keywords (ours, or another session's on the same messages)
        // are announced before any FETCH shows them.
        self.announce_keywords(&outcome.changed);
        let sel = self.selected_mut()?;
        let mut lines = Vec::new();
        let silent = matches!(response, StoreResponse::Silent);
        // RFC 9051 §6.4.6: the new flags of every message in the set, unless
        // .SILENT; RFC 7162 §3.1.3: with CONDSTORE, also MODSEQ, and .SILENT still
        // reports messages whose flags changed otherwise than asked.
        for (&i, &u) in indices.iter().zip(&uids) {
            if outcome.conflicts.contains(&u) {
                continue;
            }
            let changed = outcome.changed.iter().any(|e| e.uid == u);
            if silent && !(condstore && changed && unchanged_since.is_some()) {
                continue;
            }
            if unchanged_since.is_some() && !changed && silent {
                continue;
            }
            let m = &sel.meta[i];
            let mut line = format!("{} FETCH (", i + 1);
            if uid {
                line.push_str(&format!("UID {u} "));
            }
            line.push_str(&format!("FLAGS {}", flag_list(m, show_recent)));
            if condstore {
                line.push_str(&format!(" MODSEQ ({})", m.modseq));
            }
            line.push(')');
            lines.push(line);
        }
        for l in lines {
            self.untagged(&l);
        }
        self.sync(uid).await?;
        if !outcome.conflicts.is_empty() {
            // RFC 7162 §3.1.3: the messages not stored to.
            let sel = self.selected_mut()?;
            let mut set: Vec<u32> = if uid {
                outcome.conflicts.clone()
            } else {
                outcome
                    .conflicts
                    .iter()
                    .filter_map(|u| sel.index_of(*u).map(|i| i as u32 + 1))
                    .collect()
            };
            set.sort_unstable();
            return Ok(Done::code(format!("MODIFIED {}", format_set(&set))));
        }
        Ok(Done::default())
    }
}
