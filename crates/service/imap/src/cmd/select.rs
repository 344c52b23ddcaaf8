//! SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE, IDLE (RFC 9051 §6.3.2-3, §6.4.2-3,
//! RFC 2177 IDLE, RFC 4315 UID EXPUNGE, RFC 7162 CONDSTORE/QRESYNC).
use crate::error::{ImapError, Result};
use crate::mailbox::{Meta, Selected, announce_expunged, flag_list, flags_responses};
use crate::names;
use crate::rewrite::format_set;
use crate::session::{Done, Session, State, Wake};
use imap_types::command::SelectParameter;
use imap_types::mailbox::Mailbox;
use imap_types::sequence::SequenceSet;
use postgate_types::Flags;
use std::collections::BTreeSet;
use std::time::Duration;

impl Session {
    pub(crate) async fn handle_select(
        &mut self,
        mailbox: Mailbox<'_>,
        parameters: Vec<SelectParameter>,
        examine: bool,
    ) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected, so leave now.
        if matches!(self.state, State::Selected(..)) {
            self.deselect();
            if self.enabled.qresync || self.enabled.rev2 {
                // RFC 7162 §3.2.11.
                self.untagged("OK [CLOSED] Previous mailbox closed");
            }
        }
        let user = self.user()?.id;
        let folder = self.folder_by_name(user, &name).await?;
        let mut qresync = None;
        for p in &parameters {
            match p {
                SelectParameter::CondStore => self.enabled.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.enabled.qresync {
                        // RFC 7162 §3.2.5: QRESYNC must be ENABLEd first.
                        return Err(ImapError::bad("QRESYNC is not enabled"));
                    }
                    qresync = Some((
                        uid_validity.get(),
                        mod_sequence_value.get(),
                        known_uids.clone(),
                    ));
                }
            }
        }
        let store = self.ctx.store.clone();
        // Subscribe before reading, so that nothing committed in between is missed.
        let changes = store.changes().subscribe(folder.id);
        let snap = store.snapshot(folder.id).await?;
        let read_only = examine || names::read_only(folder.role);
        let top = snap.entries.last().map(|e| e.uid).unwrap_or(0);
        // RFC 3501 §2.3.2: SELECT claims the new messages as recent; EXAMINE only looks.
        let recent_after = if read_only || top == 0 {
            snap.recent_uid
        } else {
            store.claim_recent(folder.id, top).await?
        };
        let mut sel = Selected {
            folder: folder.id,
            name: names::imap_name(&snap.folder),
            read_only,
            uid_validity: snap.folder.uid_validity,
            uid_next: snap.folder.uid_next,
            highest_modseq: snap.folder.highest_modseq,
            uids: snap.entries.iter().map(|e| e.uid).collect(),
            meta: snap
                .entries
                .iter()
                .map(|e| Meta {
                    flags: e.flags,
                    keywords: e.keywords.clone(),
                    modseq: e.modseq,
                    recent: e.uid > recent_after,
                })
                .collect(),
            keywords: snap.keywords.iter().cloned().collect::<BTreeSet<_>>(),
            changes,
            dirty: false,
            pending_expunge: BTreeSet::new(),
            saved: Vec::new(),
            live: Vec::new(),
        };
        let show_recent = self.show_recent();
        let (flags, permanent) = flags_responses(&sel.keywords, read_only);
        self.untagged(&flags);
        self.untagged(&permanent);
        self.untagged(&format!("{} EXISTS", sel.exists()));
        if show_recent {
            self.untagged(&format!(
                "{} RECENT",
                sel.meta.iter().filter(|m| m.recent).count()
            ));
            // RFC 3501 §6.3.1: the first unseen message (not in IMAP4rev2).
            if let Some(i) = sel.meta.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
                self.untagged(&format!("OK [UNSEEN {}] First unseen", i + 1));
            }
        }
        self.untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", sel.uid_validity));
        self.untagged(&format!("OK [UIDNEXT {}] Predicted next UID", sel.uid_next));
        // RFC 7162 §3.1.2.1: every SELECT/EXAMINE reports HIGHESTMODSEQ.
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            sel.highest_modseq
        ));
        // RFC 8474 §4.2: the mailbox's id.
        self.untagged(&format!(
            "OK [MAILBOXID ({})] Ok",
            super::mailboxes::mailbox_id(sel.folder, sel.uid_validity)
        ));
        if self.enabled.rev2 {
            // RFC 9051 §6.3.2: the mailbox's LIST data.
            let wire = super::misc::quote(&self.wire_name(&sel.name));
            self.untagged(&format!("LIST () \"/\" {wire}"));
        }
        if let Some((validity, since, known)) = qresync
            && validity == sel.uid_validity
        {
            // RFC 7162 §3.2.5.1: what changed since the client's last sync.
            let ch = store.changes_since(folder.id, since).await?;
            let vanished: Vec<u32> = ch
                .vanished
                .iter()
                .copied()
                .filter(|u| match &known {
                    Some(k) => uid_in_set(k, *u),
                    None => true,
                })
                .collect();
            if !vanished.is_empty() {
                self.untagged(&format!("VANISHED (EARLIER) {}", format_set(&vanished)));
            }
            for e in &ch.changed {
                if let Some(i) = sel.index_of(e.uid) {
                    let line = format!(
                        "{} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                        i + 1,
                        e.uid,
                        flag_list(&sel.meta[i], show_recent),
                        e.modseq
                    );
                    self.untagged(&line);
                }
            }
        }
        sel.dirty = false;
        let user = match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Authenticated(u) | State::Selected(u, _) => u,
            other => {
                self.state = other;
                return Err(ImapError::bad("Log in first"));
            }
        };
        self.state = State::Selected(user, Box::new(sel));
        Ok(Done::code(if read_only {
            "READ-ONLY"
        } else {
            "READ-WRITE"
        }))
    }

    pub(crate) async fn handle_close(&mut self, expunge: bool) -> Result<Done> {
        if expunge {
            // RFC 9051 §6.4.1: CLOSE expunges silently in a read-write mailbox.
            let store = self.ctx.store.clone();
            let sel = self.selected_mut()?;
            if !sel.read_only {
                let deleted: Vec<u32> = sel
                    .uids
                    .iter()
                    .zip(&sel.meta)
                    .filter(|(_, m)| m.flags.contains(Flags::DELETED))
                    .map(|(u, _)| *u)
                    .collect();
                if !deleted.is_empty() {
                    store.expunge(sel.folder, deleted).await?;
                }
            }
        }
        self.deselect();
        Ok(Done::default())
    }

    pub(crate) async fn handle_expunge(&mut self, uids: Option<SequenceSet>) -> Result<Done> {
        let store = self.ctx.store.clone();
        let qresync = self.enabled.qresync;
        let sel = self.selected_mut()?;
        if sel.read_only {
            return Err(ImapError::no(Some("READ-ONLY"), "Mailbox is read-only"));
        }
        let allowed: Option<BTreeSet<usize>> = match &uids {
            Some(set) => Some(sel.resolve(set, true)?.into_iter().collect()),
            None => None,
        };
        let deleted: Vec<u32> = sel
            .uids
            .iter()
            .zip(&sel.meta)
            .enumerate()
            .filter(|(i, (_, m))| {
                m.flags.contains(Flags::DELETED) && allowed.as_ref().is_none_or(|a| a.contains(i))
            })
            .map(|(_, (u, _))| *u)
            .collect();
        let removed = if deleted.is_empty() {
            Vec::new()
        } else {
            store.expunge(sel.folder, deleted).await?
        };
        let lines = announce_expunged(sel, &removed, qresync);
        for l in lines {
            self.untagged(&l);
        }
        self.sync(true).await?;
        if self.enabled.condstore
            && let State::Selected(_, sel) = &self.state
        {
            // RFC 7162 §3.1.10: the mailbox's modseq after the expunge.
            let folder = self.ctx.store.changes_since(sel.folder, u64::MAX).await?;
            return Ok(Done::code(format!(
                "HIGHESTMODSEQ {}",
                folder.highest_modseq
            )));
        }
        Ok(Done::default())
    }

    pub(crate) async fn handle_idle(&mut self) -> Result<Done> {
        // RFC 2177.
        self.raw(b"+ idling\r\n");
        if matches!(self.state, State::Selected(..)) {
            Box::pin(self.sync(true)).await?;
        }
        self.flush()
            .await
            .map_err(|_| ImapError::bad("Connection lost"))?;
        let timeout = self.ctx.config.idle_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                self.untagged("BYE Autologout; idle for too long");
                self.state = State::Logout;
                return Ok(Done {
                    sent: true,
                    ..Done::default()
                });
            }
            let woke = self.wait_input_or_change(left).await;
            match woke {
                Wake::Input => {
                    let line = match Box::pin(self.read_line(Duration::from_secs(60))).await {
                        Ok(l) => l,
                        Err(_) => {
                            self.state = State::Logout;
                            return Ok(Done {
                                sent: true,
                                ..Done::default()
                            });
                        }
                    };
                    if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                        if matches!(self.state, State::Selected(..)) {
                            Box::pin(self.sync(true)).await?;
                        }
                        return Ok(Done::default());
                    }
                    return Err(ImapError::bad("Expected DONE"));
                }
                Wake::Change | Wake::Notify => {
                    if woke == Wake::Notify {
                        Box::pin(self.notify_others()).await?;
                    } else if self.notifies_selected() {
                        // RFC 5465 §5.2: with MessageNew's FETCH items.
                        Box::pin(self.notify_selected()).await?;
                    } else {
                        Box::pin(self.sync(true)).await?;
                        // RFC 5267 §4.3: live results change as they
                        // happen, during IDLE too.
                        if let State::Selected(_, sel) = &self.state
                            && !sel.live.is_empty()
                        {
                            Box::pin(self.update_live_searches()).await?;
                        }
                    }
                    if matches!(self.state, State::Logout) {
                        return Ok(Done {
                            sent: true,
                            ..Done::default()
                        });
                    }
                    if self.flush().await.is_err() {
                        self.state = State::Logout;
                        return Ok(Done {
                            sent: true,
                            ..Done::default()
                        });
                    }
                }
                Wake::Shutdown => {
                    self.untagged("BYE [UNAVAILABLE] Server shutting down");
                    self.state = State::Logout;
                    return Ok(Done {
                        sent: true,
                        ..Done::default()
                    });
                }
                Wake::Timeout => {}
                Wake::Closed => {
                    self.state = State::Logout;
                    return Ok(Done {
                        sent: true,
                        ..Done::default()
                    });
                }
            }
        }
    }
}

/// Whether a UID is in a UID set (for QRESYNC known-uids).
fn uid_in_set(set: &SequenceSet, uid: u32) -> bool {
    use imap_types::sequence::{SeqOrUid, Sequence};
    set.0.as_ref().iter().any(|s| {
        let v = |x: &SeqOrUid| match x {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => u32::MAX,
        };
        match s {
            Sequence::Single(x) => v(x) == uid,
            Sequence::Range(a, b) => {
                let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
                (lo..=hi).contains(&uid)
            }
        }
    })
}
