//! The selected mailbox as the session sees it, and keeping it in step with
//! the store (RFC 9051 §7.5, RFC 7162).
use crate::error::{ImapError, Result};
use crate::rewrite::{Saved, format_set};
use crate::session::{Session, State};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use postgate_store::MailboxEntry;
use postgate_types::{Change, Flags, FolderId};
use std::collections::BTreeSet;
use tokio::sync::broadcast;

/// Per-message state of the view.
#[derive(Debug, Clone)]
pub struct Meta {
    /// System flags.
    pub flags: Flags,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Modseq as last reported to the client.
    pub modseq: u64,
    /// \Recent in this session (RFC 3501 §2.3.2).
    pub recent: bool,
}

/// The selected mailbox.
#[derive(Debug)]
pub struct Selected {
    /// The folder.
    pub folder: FolderId,
    /// Its IMAP name.
    pub name: String,
    /// EXAMINE, or a folder IMAP may not change.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT as last known.
    pub uid_next: u32,
    /// The modseq the view is in step with.
    pub highest_modseq: u64,
    /// UIDs in sequence order: `uids[seq - 1]`.
    pub uids: Vec<u32>,
    /// State of each message, parallel to `uids`.
    pub meta: Vec<Meta>,
    /// Keywords the client has been told about in FLAGS.
    pub keywords: BTreeSet<String>,
    /// Wake-ups from the store.
    pub changes: broadcast::Receiver<Change>,
    /// Something may have changed since the last sync.
    pub dirty: bool,
    /// UIDs expunged by others, not yet announced (EXPUNGE may not be sent now).
    pub pending_expunge: BTreeSet<u32>,
    /// The SEARCHRES result (RFC 5182), UIDs.
    pub saved: Vec<u32>,
    /// Searches kept live by RETURN (UPDATE) (RFC 5267 §4.3).
    pub live: Vec<LiveSearch>,
}

/// A search whose result changes are reported as they happen (RFC 5267
/// §4.3): its tag, its keys, and the result last reported.
#[derive(Debug)]
pub struct LiveSearch {
    /// The tag of the SEARCH that started it (ESEARCH replies name it).
    pub tag: String,
    /// The search keys, re-evaluated after each command.
    pub keys: Vec<imap_types::search::SearchKey<'static>>,
    /// UID SEARCH: changes are reported as UIDs, else as message numbers.
    pub uid: bool,
    /// SORT's criteria (CONTEXT=SORT): the result is kept in this order
    /// and changes name their positions in it.
    pub sort: Option<Vec<(postgate_imap_proto::sort::SortKey, bool)>>,
    /// The UIDs in the result as last reported: ascending, or in the sort
    /// order.
    pub results: Vec<u32>,
}

impl LiveSearch {
    /// Moves the result to `now` (UIDs, ascending or in the sort order) and
    /// says what changed, as ESEARCH replies (RFC 5267 §4.3), message
    /// numbers from `seq` unless this is a UID search:
    /// - unsorted: one REMOVEFROM and one ADDTO reply with the sets, at
    ///   position 0 (no order to place them in);
    /// - sorted: one reply, what left each from its position (the last
    ///   first), then what joined each at its place in the new order (the
    ///   first first), so that every position holds when the client
    ///   applies them in turn. Sort keys never change, so what stays keeps
    ///   its order.
    pub fn report(&mut self, now: Vec<u32>, seq: impl Fn(u32) -> u32) -> Vec<String> {
        if now == self.results {
            return Vec::new();
        }
        let id = |u: u32| if self.uid { u } else { seq(u) };
        // What is in one list and not the other, with its position there.
        let missing = |from: &[u32], other: &[u32]| -> Vec<(usize, u32)> {
            let other: std::collections::HashSet<u32> = other.iter().copied().collect();
            from.iter()
                .enumerate()
                .filter(|(_, u)| !other.contains(u))
                .map(|(p, &u)| (p, u))
                .collect()
        };
        let removed = missing(&self.results, &now);
        let added = missing(&now, &self.results);
        let head = esearch_head(&self.tag, self.uid);
        let lines = if self.sort.is_some() {
            let mut items = String::new();
            for (p, u) in removed.iter().rev() {
                items.push_str(&format!(" REMOVEFROM ({} {})", p + 1, id(*u)));
            }
            for (p, u) in &added {
                items.push_str(&format!(" ADDTO ({} {})", p + 1, id(*u)));
            }
            vec![format!("{head}{items}")]
        } else {
            let set = |v: &[(usize, u32)]| {
                let mut ids: Vec<u32> = v.iter().map(|&(_, u)| id(u)).collect();
                ids.sort_unstable();
                format_set(&ids)
            };
            let mut lines = Vec::new();
            if !removed.is_empty() {
                lines.push(format!("{head} REMOVEFROM (0 {})", set(&removed)));
            }
            if !added.is_empty() {
                lines.push(format!("{head} ADDTO (0 {})", set(&added)));
            }
            lines
        };
        self.results = now;
        lines
    }
}

/// The start of an ESEARCH reply (RFC 4731 §3.1): its tag, and UID for a
/// UID command.
pub fn esearch_head(tag: &str, uid: bool) -> String {
    format!("ESEARCH (TAG \"{tag}\"){}", if uid { " UID" } else { "" })
}

/// Live searches one session may keep (RFC 5267 §4.3: beyond, NOUPDATE).
pub const MAX_LIVE_SEARCHES: usize = 5;

impl Selected {
    /// Number of messages (EXISTS).
    pub fn exists(&self) -> usize {
        self.uids.len()
    }

    /// The index of a UID.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.uids.binary_search(&uid).ok()
    }

    /// `$` for the rewriter: the saved UIDs still in the view.
    pub fn saved_for_rewrite(&self) -> Saved<'_> {
        Saved {
            uids: &self.saved,
            view: &self.uids,
        }
    }

    /// Resolves a sequence set (or, with `uid`, a UID set) to view indices,
    /// ascending and without repeats. Message numbers beyond the mailbox are an
    /// error (RFC 9051 §6.4.5: BAD); UIDs that do not exist are ignored.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>> {
        let n = self.uids.len();
        let mut out: Vec<usize> = Vec::new();
        if uid {
            let max_uid = self.uids.last().copied();
            for seq in set.0.as_ref() {
                let (a, b) = match seq {
                    Sequence::Single(x) => (x, x),
                    Sequence::Range(a, b) => (a, b),
                };
                let v = |x: &SeqOrUid| match x {
                    SeqOrUid::Value(v) => v.get(),
                    // RFC 9051 §6.4.8: "*" is the highest UID in use.
                    SeqOrUid::Asterisk => max_uid.unwrap_or(0),
                };
                let (lo, hi) = {
                    let (x, y) = (v(a), v(b));
                    (x.min(y), x.max(y))
                };
                let start = self.uids.partition_point(|&u| u < lo);
                let end = self.uids.partition_point(|&u| u <= hi);
                out.extend(start..end);
            }
        } else {
            for seq in set.0.as_ref() {
                let (a, b) = match seq {
                    Sequence::Single(x) => (x, x),
                    Sequence::Range(a, b) => (a, b),
                };
                let v = |x: &SeqOrUid| -> Result<usize> {
                    match x {
                        SeqOrUid::Value(v) => {
                            let v = v.get() as usize;
                            if v > n {
                                Err(ImapError::bad("Invalid message sequence number"))
                            } else {
                                Ok(v)
                            }
                        }
                        SeqOrUid::Asterisk if n > 0 => Ok(n),
                        SeqOrUid::Asterisk => Err(ImapError::bad("No messages")),
                    }
                };
                let (x, y) = (v(a)?, v(b)?);
                out.extend(x.min(y) - 1..x.max(y));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Indices matched by a set in SEARCH, where numbers beyond the mailbox
    /// simply match nothing.
    pub fn resolve_lenient(&self, set: &SequenceSet, uid: bool) -> BTreeSet<usize> {
        if uid {
            return self
                .resolve(set, true)
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        let n = self.uids.len();
        let mut out = BTreeSet::new();
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(x) => (x, x),
                Sequence::Range(a, b) => (a, b),
            };
            let v = |x: &SeqOrUid| match x {
                SeqOrUid::Value(v) => v.get() as usize,
                SeqOrUid::Asterisk => n,
            };
            let (x, y) = (v(a), v(b));
            let (lo, hi) = (x.min(y), x.max(y).min(n));
            if lo >= 1 && lo <= hi {
                out.extend(lo - 1..hi);
            }
        }
        out
    }

    /// Replaces a message's flags after this session changed them.
    pub fn apply(&mut self, e: &MailboxEntry) {
        if let Some(i) = self.index_of(e.uid) {
            let m = &mut self.meta[i];
            m.flags = e.flags;
            m.keywords = e.keywords.clone();
            m.modseq = m.modseq.max(e.modseq);
        }
    }
}

/// The flag list of a message as FETCH FLAGS shows it.
pub fn flag_list(m: &Meta, show_recent: bool) -> String {
    let mut parts: Vec<&str> = m.flags.names().collect();
    if show_recent && m.recent {
        parts.push("\\Recent");
    }
    parts.extend(m.keywords.iter().map(String::as_str));
    format!("({})", parts.join(" "))
}

/// FLAGS and PERMANENTFLAGS for a mailbox (RFC 9051 §7.3.5, §7.1).
pub fn flags_responses(keywords: &BTreeSet<String>, read_only: bool) -> (String, String) {
    let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for k in keywords {
        flags.push(' ');
        flags.push_str(k);
    }
    let permanent = if read_only {
        "OK [PERMANENTFLAGS ()] Read-only mailbox".to_string()
    } else {
        format!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted")
    };
    (format!("FLAGS ({flags})"), permanent)
}

impl Session {
    /// Tells the client about keywords in `entries` it has not heard of, in
    /// FLAGS and PERMANENTFLAGS, before any FETCH shows them (RFC 9051 §7.3.5:
    /// a client may only see keywords the FLAGS response listed).
    pub(crate) fn announce_keywords(&mut self, entries: &[MailboxEntry]) {
        let State::Selected(_, sel) = &mut self.state else {
            return;
        };
        let mut new = false;
        for k in entries.iter().flat_map(|e| e.keywords.iter()) {
            if !sel.keywords.contains(k) {
                sel.keywords.insert(k.clone());
                new = true;
            }
        }
        if new {
            let (flags, permanent) = flags_responses(&sel.keywords, sel.read_only);
            self.untagged(&flags);
            self.untagged(&permanent);
        }
    }

    /// Whether \Recent is shown (not once IMAP4rev2 is enabled: RFC 9051 removed it).
    pub(crate) fn show_recent(&self) -> bool {
        !self.enabled.rev2
    }

    /// Brings the view in step with the store and tells the client what changed.
    /// `allow_expunge` is false during FETCH, STORE and SEARCH (RFC 3501 §7.4.1),
    /// which may not renumber messages: expunges wait for a later command.
    pub(crate) async fn sync(&mut self, allow_expunge: bool) -> Result<()> {
        let store = self.ctx.store.clone();
        let condstore = self.enabled.condstore;
        let qresync = self.enabled.qresync;
        let show_recent = self.show_recent();
        let State::Selected(_, sel) = &mut self.state else {
            return Ok(());
        };
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = sel.changes.try_recv() {
            sel.dirty = true;
        }
        let mut lines: Vec<String> = Vec::new();
        if sel.dirty {
            sel.dirty = false;
            let changes = match store.changes_since(sel.folder, sel.highest_modseq).await {
                Ok(c) => c,
                Err(postgate_store::StoreError::NotFound(_)) => {
                    // RFC 9051 §7.1.5: the selected mailbox is gone; so is the session.
                    self.untagged("BYE Selected mailbox was deleted");
                    self.state = State::Logout;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            for uid in &changes.vanished {
                if sel.index_of(*uid).is_some() {
                    sel.pending_expunge.insert(*uid);
                }
            }
            let last = sel.uids.last().copied().unwrap_or(0);
            let mut new: Vec<&MailboxEntry> = Vec::new();
            let mut new_keywords = false;
            for e in &changes.changed {
                if let Some(i) = sel.index_of(e.uid) {
                    let m = &mut sel.meta[i];
                    if e.modseq > m.modseq {
                        m.flags = e.flags;
                        m.keywords = e.keywords.clone();
                        m.modseq = e.modseq;
                        for k in &e.keywords {
                            new_keywords |= sel.keywords.insert(k.clone());
                        }
                        let mut line =
                            format!("{} FETCH (FLAGS {}", i + 1, flag_list(m, show_recent));
                        if qresync {
                            line.push_str(&format!(" UID {}", e.uid));
                        }
                        if condstore {
                            line.push_str(&format!(" MODSEQ ({})", e.modseq));
                        }
                        line.push(')');
                        lines.push(line);
                    }
                } else if e.uid > last && !changes.vanished.contains(&e.uid) {
                    new.push(e);
                }
            }
            if new_keywords {
                let (flags, permanent) = flags_responses(&sel.keywords, sel.read_only);
                lines.insert(0, permanent);
                lines.insert(0, flags);
            }
            let new: Vec<MailboxEntry> = new.into_iter().cloned().collect();
            let mut recent_from = u32::MAX;
            if let Some(max_new) = new.last().map(|e| e.uid)
                && !sel.read_only
            {
                recent_from = store.claim_recent(sel.folder, max_new).await? + 1;
            }
            let had = sel.uids.len();
            for e in &new {
                for k in &e.keywords {
                    if sel.keywords.insert(k.clone()) {
                        let (flags, permanent) = flags_responses(&sel.keywords, sel.read_only);
                        lines.push(flags);
                        lines.push(permanent);
                    }
                }
                sel.uids.push(e.uid);
                sel.meta.push(Meta {
                    flags: e.flags,
                    keywords: e.keywords.clone(),
                    modseq: e.modseq,
                    recent: e.uid >= recent_from,
                });
            }
            if sel.uids.len() != had {
                lines.push(format!("{} EXISTS", sel.uids.len()));
                if show_recent {
                    let recent = sel.meta.iter().filter(|m| m.recent).count();
                    lines.push(format!("{recent} RECENT"));
                }
            }
            sel.highest_modseq = sel.highest_modseq.max(changes.highest_modseq);
            sel.uid_next = sel.uid_next.max(changes.uid_next);
        }
        let expunge_lines = if allow_expunge && !sel.pending_expunge.is_empty() {
            let gone: Vec<u32> = std::mem::take(&mut sel.pending_expunge)
                .into_iter()
                .collect();
            announce_expunged(sel, &gone, qresync)
        } else {
            Vec::new()
        };
        // FETCH and EXISTS first: their numbers were computed before the
        // expunges, which then renumber what follows them.
        for l in lines.into_iter().chain(expunge_lines) {
            self.untagged(&l);
        }
        Ok(())
    }
}

/// Removes UIDs from the view and writes EXPUNGE (ascending, each number as it
/// is at that point: RFC 9051 §7.5.1) or one VANISHED (RFC 7162 §3.2.10).
pub(crate) fn announce_expunged(sel: &mut Selected, uids: &[u32], qresync: bool) -> Vec<String> {
    let mut lines = Vec::new();
    // RFC 5267 §4.3: expunged messages leave live results; each search
    // says so first, in the numbers the client still has.
    let view = &sel.uids;
    for live in &mut sel.live {
        let now: Vec<u32> = live
            .results
            .iter()
            .copied()
            .filter(|u| !uids.contains(u))
            .collect();
        lines.extend(live.report(now, |u| view.binary_search(&u).map_or(0, |i| i as u32 + 1)));
    }
    let mut gone = Vec::new();
    for uid in uids {
        if let Some(i) = sel.index_of(*uid) {
            sel.uids.remove(i);
            sel.meta.remove(i);
            gone.push(*uid);
            if !qresync {
                lines.push(format!("{} EXPUNGE", i + 1));
            }
        }
        sel.saved.retain(|u| u != uid);
    }
    if qresync && !gone.is_empty() {
        gone.sort_unstable();
        lines.push(format!("VANISHED {}", format_set(&gone)));
    }
    lines
}
