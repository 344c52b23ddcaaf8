//! NOTIFY (RFC 5465): the client names the mailboxes and events it wants
//! to hear of, and hears of them as they happen, between commands and
//! during IDLE.
//!
//! Events come from the store's change feed: the selected mailbox's own
//! subscription (which wakes the view, as IDLE does), and, for other
//! mailboxes, a subscription to everything of the user
//! ([`postgate_store::ChangeFeed::subscribe_user`]). The feed is only a
//! wake-up: what is reported comes from the store, compared with what the
//! session last reported (the counts of each folder, the folder list, the
//! subscriptions), so lost or merged wake-ups cost nothing but a re-read.
use super::misc::quote;
use crate::error::Result;
use crate::names;
use crate::notify::{Events, Filter, Group, NotifyCommand, fetch_command};
use crate::rewrite::{self, Prepared};
use crate::session::{Done, Session, State};
use imap_types::command::CommandBody;
use postgate_store::Folder;
use postgate_types::{Change, ChangeKind, FolderId};
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio::sync::broadcast;

/// Which of the user's mailboxes a non-selected event group watches, names
/// decoded and case-folded.
#[derive(Debug, Clone)]
enum Watch {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

/// What the session last reported of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    name: String,
    uid_validity: u32,
    uid_next: u32,
    total: u64,
    unseen: u64,
    highest_modseq: u64,
}

impl Known {
    fn of(f: &Folder) -> Known {
        Known {
            name: names::imap_name(f),
            uid_validity: f.uid_validity,
            uid_next: f.uid_next,
            total: f.total,
            unseen: f.unseen,
            highest_modseq: f.highest_modseq,
        }
    }
}

/// A session's NOTIFY state.
#[derive(Debug)]
pub(crate) struct Notify {
    /// Events for the selected mailbox, if any (RFC 5465 §6.1, §6.2).
    pub selected: Option<Group>,
    groups: Vec<(Watch, Events)>,
    /// The user's changes, when any group watches other mailboxes.
    pub rx: Option<broadcast::Receiver<Change>>,
    known: HashMap<FolderId, Known>,
    /// Subscribed names, case-folded.
    subscriptions: BTreeSet<String>,
    /// Wake-ups not yet acted on.
    touched: HashSet<FolderId>,
    list_changed: bool,
    subscriptions_changed: bool,
    /// Wake-ups were lost: compare everything.
    everything: bool,
}

impl Notify {
    /// Notes a wake-up.
    pub fn record(&mut self, c: std::result::Result<Change, broadcast::error::RecvError>) {
        match c {
            Ok(c) => match c.kind {
                ChangeKind::Mailboxes => self.list_changed = true,
                ChangeKind::Subscriptions => self.subscriptions_changed = true,
                _ => {
                    self.touched.insert(c.folder);
                }
            },
            Err(broadcast::error::RecvError::Lagged(_)) => self.everything = true,
            Err(broadcast::error::RecvError::Closed) => self.rx = None,
        }
    }

    fn drain(&mut self) {
        while let Some(rx) = self.rx.as_mut() {
            let c = match rx.try_recv() {
                Ok(c) => Ok(c),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
                Err(broadcast::error::TryRecvError::Closed) => {
                    Err(broadcast::error::RecvError::Closed)
                }
                Err(broadcast::error::TryRecvError::Empty) => break,
            };
            self.record(c);
        }
    }

    fn pending(&self) -> bool {
        !self.touched.is_empty()
            || self.list_changed
            || self.subscriptions_changed
            || self.everything
    }

    /// The events watched for a mailbox (by IMAP name).
    fn events_for(&self, name: &str) -> Events {
        let key = name.to_lowercase();
        let mut ev = Events::default();
        for (w, e) in &self.groups {
            let hit = match w {
                Watch::Inboxes => key == "inbox",
                Watch::Personal => true,
                Watch::Subscribed => self.subscriptions.contains(&key),
                Watch::Subtree(names) => names.iter().any(|n| {
                    key == *n
                        || (key.starts_with(n.as_str())
                            && key[n.len()..].starts_with(names::SEPARATOR))
                }),
                Watch::Mailboxes(names) => names.contains(&key),
            };
            if hit {
                ev = ev.union(*e);
            }
        }
        ev
    }

    fn watches_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|(w, e)| matches!(w, Watch::Subscribed) || e.subscription)
    }
}

/// A name as a quoted string (RFC 9051 §9 quoted), as OLDNAME's value is
/// written (RFC 5465 §5.4's example, and Dovecot's).
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Session {
    /// NOTIFY (RFC 5465 §3).
    pub(crate) async fn handle_notify(&mut self, cmd: NotifyCommand) -> Result<Done> {
        let user = self.user()?.id;
        let (status, groups) = match cmd {
            NotifyCommand::None => {
                // §3.2: no more notifications.
                self.notify = None;
                return Ok(Done::default());
            }
            NotifyCommand::Set { status, groups } => (status, groups),
        };
        let mut selected = None;
        let mut watched = Vec::new();
        for g in groups {
            let decode = |list: &[Vec<u8>]| -> Result<Vec<String>> {
                list.iter()
                    .map(|n| self.mailbox_arg(n).map(|s| s.to_lowercase()))
                    .collect()
            };
            let watch = match &g.filter {
                Filter::Selected { .. } => {
                    selected = Some(g);
                    continue;
                }
                Filter::Inboxes => Watch::Inboxes,
                Filter::Personal => Watch::Personal,
                Filter::Subscribed => Watch::Subscribed,
                Filter::Subtree(l) => Watch::Subtree(decode(l)?),
                Filter::Mailboxes(l) => Watch::Mailboxes(decode(l)?),
            };
            if g.events != Events::default() {
                watched.push((watch, g.events));
            }
        }
        // Subscribe before reading, so nothing falls between.
        let rx = (!watched.is_empty()).then(|| self.ctx.store.changes().subscribe_user(user));
        let mut n = Notify {
            selected: selected.filter(|g| g.events != Events::default()),
            groups: watched,
            rx,
            known: HashMap::new(),
            subscriptions: BTreeSet::new(),
            touched: HashSet::new(),
            list_changed: false,
            subscriptions_changed: false,
            everything: false,
        };
        if n.rx.is_some() {
            let folders = self.ctx.store.folders(user).await?;
            if n.watches_subscriptions() {
                n.subscriptions = self.subscribed_keys(user).await?;
            }
            n.known = folders.iter().map(|f| (f.id, Known::of(f))).collect();
            if status {
                // §3.1: STATUS for each mailbox with message events, but
                // the selected one, before the tagged OK.
                let selected_id = self.selected_folder();
                for f in &folders {
                    let ev = n.events_for(&names::imap_name(f));
                    if ev.messages() && Some(f.id) != selected_id {
                        self.notify_status(f, ev).await?;
                    }
                }
            }
        }
        self.notify = Some(Box::new(n));
        Ok(Done::default())
    }

    fn selected_folder(&self) -> Option<FolderId> {
        match &self.state {
            State::Selected(_, s) => Some(s.folder),
            _ => None,
        }
    }

    async fn subscribed_keys(&self, user: postgate_types::UserId) -> Result<BTreeSet<String>> {
        Ok(self
            .ctx
            .store
            .subscriptions(user)
            .await?
            .iter()
            .map(|s| names::canonical(s).to_lowercase())
            .collect())
    }

    /// An unsolicited STATUS for a watched mailbox (RFC 5465 §5.1-§5.3:
    /// MESSAGES and UIDNEXT for new and expunged messages, HIGHESTMODSEQ
    /// for flag changes; UIDVALIDITY and UNSEEN with them, as a client
    /// keeping a mailbox list wants).
    async fn notify_status(&mut self, f: &Folder, ev: Events) -> Result<()> {
        let mut items: Vec<String> = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]
            .map(String::from)
            .to_vec();
        if ev.flags || self.enabled.condstore {
            items.push("HIGHESTMODSEQ".into());
        }
        let status = self.status_line(f, &items).await?;
        let wire = quote(&self.wire_name(&names::imap_name(f)));
        self.untagged(&format!("STATUS {wire} ({status})"));
        Ok(())
    }

    /// Reports what changed in watched mailboxes other than the selected
    /// one since the last report (RFC 5465 §5), if a wake-up came.
    pub(crate) async fn notify_others(&mut self) -> Result<()> {
        let Some(n) = self.notify.as_mut() else {
            return Ok(());
        };
        n.drain();
        if !n.pending() {
            return Ok(());
        }
        let touched = std::mem::take(&mut n.touched);
        let everything = std::mem::take(&mut n.everything);
        let list = std::mem::take(&mut n.list_changed) || everything;
        let subs = std::mem::take(&mut n.subscriptions_changed) || everything;
        let user = self.user()?.id;
        let selected_id = self.selected_folder();
        let folders = self.ctx.store.folders(user).await?;
        let new_subs = if subs
            && self
                .notify
                .as_ref()
                .is_some_and(|n| n.watches_subscriptions())
        {
            Some(self.subscribed_keys(user).await?)
        } else {
            None
        };
        let Some(mut n) = self.notify.take() else {
            return Ok(());
        };
        let mut lines = Vec::new();
        // §5.5 SubscriptionChange: LIST with or without \Subscribed.
        if let Some(now) = new_subs {
            let old = std::mem::replace(&mut n.subscriptions, now);
            let added = n.subscriptions.difference(&old).map(|k| (k, true));
            let removed = old.difference(&n.subscriptions).map(|k| (k, false));
            for (key, on) in added.chain(removed) {
                if !n.events_for(key).subscription {
                    continue;
                }
                // The name as the folder spells it, if there is one.
                let name = folders
                    .iter()
                    .map(names::imap_name)
                    .find(|m| m.to_lowercase() == *key)
                    .unwrap_or_else(|| names::canonical(key));
                let attr = if on { "\\Subscribed" } else { "" };
                lines.push(format!(
                    "LIST ({attr}) \"/\" {}",
                    quote(&self.wire_name(&name))
                ));
            }
        }
        let now: HashMap<FolderId, Known> = folders.iter().map(|f| (f.id, Known::of(f))).collect();
        // §5.4 MailboxName: created, deleted (\NonExistent) and renamed
        // (OLDNAME) mailboxes, as LIST.
        if list {
            for (id, k) in &now {
                match n.known.get(id) {
                    None if n.events_for(&k.name).name => {
                        lines.push(format!("LIST () \"/\" {}", quote(&self.wire_name(&k.name))))
                    }
                    Some(old)
                        if old.name != k.name
                            && (n.events_for(&k.name).name || n.events_for(&old.name).name) =>
                    {
                        lines.push(format!(
                            "LIST () \"/\" {} (\"OLDNAME\" ({}))",
                            quote(&self.wire_name(&k.name)),
                            quoted(&self.wire_name(&old.name))
                        ))
                    }
                    _ => {}
                }
            }
            for (id, old) in &n.known {
                if !now.contains_key(id) && n.events_for(&old.name).name {
                    lines.push(format!(
                        "LIST (\\NonExistent) \"/\" {}",
                        quote(&self.wire_name(&old.name))
                    ));
                }
            }
        }
        for l in &lines {
            self.untagged(l);
        }
        // §5.1-§5.3: STATUS for mailboxes whose messages changed in a way
        // watched for.
        for f in &folders {
            if Some(f.id) == selected_id || !(list || touched.contains(&f.id)) {
                continue;
            }
            let ev = n.events_for(&names::imap_name(f));
            if !ev.messages() {
                continue;
            }
            let k = &now[&f.id];
            let happened = match n.known.get(&f.id) {
                None => Events {
                    new: f.total > 0,
                    ..Events::default()
                },
                Some(old) if old == k => Events::default(),
                Some(old) => {
                    let arrived = u64::from(k.uid_next.saturating_sub(old.uid_next));
                    Events {
                        new: arrived > 0 || k.uid_validity != old.uid_validity,
                        expunge: k.total < old.total + arrived,
                        flags: k.unseen != old.unseen || k.highest_modseq != old.highest_modseq,
                        ..Events::default()
                    }
                }
            };
            if (happened.new && ev.new)
                || (happened.expunge && ev.expunge)
                || (happened.flags && ev.flags)
            {
                self.notify_status(f, ev).await?;
            }
        }
        n.known = now;
        self.notify = Some(n);
        Ok(())
    }

    /// Reports a change to the selected mailbox at once (RFC 5465 §5.2,
    /// §5.3, §6.1): EXISTS, EXPUNGE (not for SELECTED-DELAYED, §6.2) and
    /// flag changes, then MessageNew's FETCH items for the new messages,
    /// and live search results (§7, RFC 5267 §4.3).
    pub(crate) async fn notify_selected(&mut self) -> Result<()> {
        let (delayed, fetch) = match self.notify.as_ref().and_then(|n| n.selected.as_ref()) {
            Some(g) => (
                matches!(g.filter, Filter::Selected { delayed: true }),
                g.fetch.clone().filter(|_| g.events.new),
            ),
            None => (false, None),
        };
        let before = match &self.state {
            State::Selected(_, s) => s.uid_next,
            _ => return Ok(()),
        };
        self.sync(!delayed).await?;
        let State::Selected(_, sel) = &self.state else {
            return Ok(());
        };
        let new: Vec<u32> = sel.uids.iter().copied().filter(|&u| u >= before).collect();
        let live = !sel.live.is_empty();
        if let Some(atts) = fetch
            && !new.is_empty()
        {
            let line = fetch_command(&rewrite::format_set(&new), &atts);
            if let Prepared::Command { bytes, fetch, .. } = rewrite::prepare(line.as_bytes(), None)?
                && let CommandBody::Fetch {
                    sequence_set,
                    macro_or_item_names,
                    uid,
                    modifiers,
                } = rewrite::decode(&bytes)?.body
            {
                self.handle_fetch(sequence_set, macro_or_item_names, uid, modifiers, fetch)
                    .await?;
            }
        }
        if live {
            self.update_live_searches().await?;
        }
        Ok(())
    }

    /// Whether changes to the selected mailbox are reported as they happen.
    pub(crate) fn notifies_selected(&self) -> bool {
        self.notify.as_ref().is_some_and(|n| n.selected.is_some())
    }
}
