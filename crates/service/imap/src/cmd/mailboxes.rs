//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS
//! (RFC 9051 §6.3; LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE
//! RFC 6154, CHILDREN RFC 3348).
use super::misc::quote;
use crate::error::{ImapError, Result};
use crate::names::{self, SEPARATOR};
use crate::rewrite::ListCommand;
use crate::session::{Done, Session, State};
use imap_types::mailbox::Mailbox;
use imap_types::status::StatusDataItemName;
use postgate_imap_proto::pattern;
use postgate_store::{Folder, StoreError};
use postgate_types::{Flags, UserId};
use std::collections::{BTreeMap, BTreeSet};

impl Session {
    /// The UTF-8 name a command's mailbox argument stands for.
    pub(crate) fn mailbox_name(&self, m: &Mailbox<'_>) -> Result<String> {
        match m {
            Mailbox::Inbox => Ok("INBOX".into()),
            Mailbox::Other(o) => self.mailbox_arg(o.as_ref()),
        }
    }

    /// The same for a mailbox argument as its bytes (the commands parsed
    /// here rather than by imap-codec): INBOX in any case is INBOX (RFC
    /// 9051 §5.1).
    pub(crate) fn mailbox_arg(&self, bytes: &[u8]) -> Result<String> {
        if bytes.eq_ignore_ascii_case(b"INBOX") {
            return Ok("INBOX".into());
        }
        self.name_from_wire(bytes)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ImapError::no(Some("CANNOT"), "Invalid mailbox name"))
    }

    /// A mailbox name as the client wrote it: UTF-8 once IMAP4rev2 or
    /// UTF8=ACCEPT is enabled (RFC 9051 §5.1, RFC 6855 §3), modified UTF-7
    /// before (RFC 3501 §5.1.3).
    pub(crate) fn name_from_wire(&self, bytes: &[u8]) -> Option<String> {
        if self.enabled.utf8_names() {
            names::from_wire_utf8(bytes)
        } else {
            names::from_wire(bytes)
        }
    }

    /// A mailbox name as the client reads it (the inverse of [`Self::name_from_wire`]).
    pub(crate) fn wire_name(&self, name: &str) -> String {
        if self.enabled.utf8_names() {
            name.to_string()
        } else {
            names::to_wire(name)
        }
    }

    /// A folder by IMAP name, or NO [NONEXISTENT].
    pub(crate) async fn folder_by_name(&self, user: UserId, name: &str) -> Result<Folder> {
        self.ctx
            .store
            .folder(user, name)
            .await?
            .ok_or_else(ImapError::nonexistent)
    }

    pub(crate) async fn handle_create(
        &mut self,
        mailbox: Mailbox<'_>,
        uses: Option<Vec<String>>,
    ) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(ImapError::no(Some("ALREADYEXISTS"), "INBOX already exists"));
        }
        // RFC 6154 §3: a special use the server cannot give is NO
        // [USEATTR], and the mailbox is not created. A folder has one role
        // here; giving it to the new mailbox takes it from the one that had
        // it (what a client choosing its Drafts or Junk folder means).
        let role = match uses.as_deref().unwrap_or_default() {
            [] => None,
            [one] => Some(names::role_of_special_use(one).ok_or_else(|| {
                ImapError::no(
                    Some("USEATTR"),
                    format!("{one} is not a special use mailboxes can be created for"),
                )
            })?),
            _ => {
                return Err(ImapError::no(
                    Some("USEATTR"),
                    "A mailbox has one special use here",
                ));
            }
        };
        let user = self.user()?.id;
        match self.ctx.store.create_folder_for(user, &name, role).await {
            // RFC 8474 §4.1: the new mailbox's id in the tagged OK.
            Ok(f) => Ok(Done {
                code: Some(format!("MAILBOXID ({})", mailbox_id(f.id, f.uid_validity))),
                text: None,
                sent: false,
            }),
            Err(StoreError::Exists(_)) => Err(ImapError::no(
                Some("ALREADYEXISTS"),
                "Mailbox already exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn handle_delete(&mut self, mailbox: Mailbox<'_>) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(ImapError::no(Some("CANNOT"), "INBOX cannot be deleted"));
        }
        let user = self.user()?.id;
        let folder = self.folder_by_name(user, &name).await?;
        let below = format!("{}{SEPARATOR}", names::imap_name(&folder));
        if self
            .ctx
            .store
            .folders(user)
            .await?
            .iter()
            .any(|f| names::imap_name(f).starts_with(&below))
        {
            // RFC 9051 §6.3.5: a server that keeps inferior names refuses
            // with HASCHILDREN.
            return Err(ImapError::no(
                Some("HASCHILDREN"),
                "Mailbox has inferior mailboxes; delete them first",
            ));
        }
        self.ctx.store.delete_folder(user, &name).await?;
        // Deleting the selected mailbox closes it.
        if let State::Selected(_, sel) = &self.state
            && sel.folder == folder.id
        {
            self.deselect();
        }
        Ok(Done::default())
    }

    pub(crate) async fn handle_rename(
        &mut self,
        from: Mailbox<'_>,
        to: Mailbox<'_>,
    ) -> Result<Done> {
        let from = self.mailbox_name(&from)?;
        let to = self.mailbox_name(&to)?;
        let user = self.user()?.id;
        self.folder_by_name(user, &from).await?;
        match self.ctx.store.rename_folder(user, &from, &to).await {
            Ok(()) => Ok(Done::default()),
            Err(StoreError::Exists(_)) => Err(ImapError::no(
                Some("ALREADYEXISTS"),
                "Target mailbox already exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn handle_subscribe(
        &mut self,
        mailbox: Mailbox<'_>,
        on: bool,
    ) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        let user = self.user()?.id;
        if on {
            // RFC 9051 §6.3.7: subscribing to a name that does not exist is allowed
            // but servers may refuse; Postgate lets clients keep such names.
        } else if !self
            .ctx
            .store
            .subscriptions(user)
            .await?
            .iter()
            .any(|s| names::canonical(s) == name)
        {
            return Err(ImapError::no(Some("NONEXISTENT"), "Not subscribed"));
        }
        self.ctx.store.set_subscribed(user, &name, on).await?;
        Ok(Done::default())
    }

    pub(crate) async fn handle_list(&mut self, cmd: ListCommand) -> Result<Done> {
        let user = self.user()?.id;
        let reference = self.name_from_wire(&cmd.reference).unwrap_or_default();
        let reference = if cmd.reference.ends_with(b"/") && !reference.is_empty() {
            format!("{reference}/")
        } else {
            reference
        };
        // RFC 9051 §6.3.9: LIST "" "" returns the hierarchy delimiter.
        if cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() && !cmd.lsub {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(Done::default());
        }
        let folders = self.ctx.store.folders(user).await?;
        let subscribed: BTreeSet<String> = self
            .ctx
            .store
            .subscriptions(user)
            .await?
            .into_iter()
            .map(|s| names::canonical(&s))
            .collect();
        let existing: BTreeMap<String, &Folder> =
            folders.iter().map(|f| (names::imap_name(f), f)).collect();
        let patterns: Vec<String> = cmd
            .patterns
            .iter()
            .map(|p| {
                let p = String::from_utf8_lossy(p);
                let p = if self.enabled.utf8_names() {
                    // RFC 9051 §5.1: UTF-8 as it is.
                    p.into_owned()
                } else {
                    postgate_imap_proto::utf7::decode(&p).unwrap_or_else(|| p.into_owned())
                };
                names::canonical(&pattern::join(&reference, &p, SEPARATOR))
            })
            .collect();
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|p| pattern::matches(p, name, SEPARATOR))
        };
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            existing.keys().any(|k| k.starts_with(&prefix))
        };
        // RFC 5258 §3.5: CHILDINFO when a subscribed descendant exists that
        // does not match the patterns itself.
        let subscribed_child = |name: &str| {
            let prefix = format!("{name}/");
            subscribed
                .iter()
                .any(|k| k.starts_with(&prefix) && !matches(k))
        };

        let selecting_subscribed = cmd.lsub || cmd.select_subscribed;
        let mut out: Vec<(String, Vec<&str>, Option<&str>)> = Vec::new();
        if selecting_subscribed {
            // Subscribed names, existing or not, and (for % / RECURSIVEMATCH)
            // their parents.
            let mut candidates: BTreeSet<String> = subscribed.clone();
            for s in &subscribed {
                let mut p = s.as_str();
                while let Some((parent, _)) = p.rsplit_once(SEPARATOR) {
                    candidates.insert(parent.to_string());
                    p = parent;
                }
            }
            for name in candidates {
                if !matches(&name) {
                    continue;
                }
                let is_sub = subscribed.contains(&name);
                let folder = existing.get(&name);
                let mut attrs = Vec::new();
                let mut childinfo = None;
                if cmd.lsub {
                    if !is_sub {
                        // RFC 3501 §6.3.9: a parent of a subscribed name, itself not
                        // subscribed, only when the pattern's "%" hides that name.
                        if !subscribed_child(&name) {
                            continue;
                        }
                        attrs.push("\\Noselect");
                    }
                } else {
                    if !is_sub {
                        if cmd.recursive_match && subscribed_child(&name) {
                            childinfo = Some("(\"CHILDINFO\" (\"SUBSCRIBED\"))");
                        } else {
                            continue;
                        }
                    } else {
                        attrs.push("\\Subscribed");
                    }
                    if folder.is_none() {
                        attrs.push("\\NonExistent");
                    }
                }
                if let Some(f) = folder {
                    if let Some(su) = names::special_use(f.role)
                        && (cmd.select_special_use || cmd.return_special_use || !cmd.extended)
                    {
                        attrs.push(su);
                    }
                    if !cmd.lsub && (cmd.return_children || !cmd.extended) {
                        attrs.push(if has_children(&name) {
                            "\\HasChildren"
                        } else {
                            "\\HasNoChildren"
                        });
                    }
                }
                if cmd.select_special_use
                    && folder.and_then(|f| names::special_use(f.role)).is_none()
                {
                    continue;
                }
                out.push((name, attrs, childinfo));
            }
        } else {
            for (name, f) in &existing {
                if !matches(name) {
                    continue;
                }
                let special = names::special_use(f.role);
                if cmd.select_special_use && special.is_none() {
                    continue;
                }
                let mut attrs = Vec::new();
                attrs.push(if has_children(name) {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if cmd.return_subscribed && subscribed.contains(name) {
                    attrs.push("\\Subscribed");
                }
                if let Some(su) = special {
                    attrs.push(su);
                }
                out.push((name.clone(), attrs, None));
            }
        }
        let verb = if cmd.lsub { "LSUB" } else { "LIST" };
        for (name, attrs, childinfo) in out {
            let wire = quote(&self.wire_name(&name));
            let mut line = format!("{verb} ({}) \"/\" {wire}", attrs.join(" "));
            if let Some(ci) = childinfo {
                line.push(' ');
                line.push_str(ci);
            }
            self.untagged(&line);
            // RFC 5819: STATUS right after the LIST of each selectable mailbox.
            if let (Some(items), Some(f)) = (&cmd.return_status, existing.get(&name)) {
                let items: Vec<String> = items.clone();
                let status = self.status_line(f, &items).await?;
                self.untagged(&format!("STATUS {wire} ({status})"));
            }
        }
        Ok(Done::default())
    }

    pub(crate) async fn handle_status(
        &mut self,
        mailbox: Mailbox<'_>,
        items: &[StatusDataItemName],
        extras: crate::rewrite::StatusExtras,
    ) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        let user = self.user()?.id;
        let folder = self.folder_by_name(user, &name).await?;
        // With only items imap-codec does not know, MESSAGES stood in for
        // them (rewrite).
        let items = if extras.only { &[][..] } else { items };
        let mut names: Vec<String> = items
            .iter()
            .map(|i| {
                match i {
                    StatusDataItemName::Messages => "MESSAGES",
                    StatusDataItemName::Recent => "RECENT",
                    StatusDataItemName::UidNext => "UIDNEXT",
                    StatusDataItemName::UidValidity => "UIDVALIDITY",
                    StatusDataItemName::Unseen => "UNSEEN",
                    StatusDataItemName::Deleted => "DELETED",
                    StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
                    StatusDataItemName::Size => "SIZE",
                    StatusDataItemName::HighestModSeq => "HIGHESTMODSEQ",
                }
                .to_string()
            })
            .collect();
        // RFC 7889 §3: the limit for this mailbox, as APPENDLIMIT=n says.
        if extras.appendlimit {
            names.push("APPENDLIMIT".into());
        }
        if extras.mailboxid {
            names.push("MAILBOXID".into());
        }
        let status = self.status_line(&folder, &names).await?;
        let wire = quote(&self.wire_name(&names::imap_name(&folder)));
        self.untagged(&format!("STATUS {wire} ({status})"));
        Ok(Done::default())
    }

    /// The STATUS items of a folder, as "MESSAGES 3 UIDNEXT 7 …".
    pub(crate) async fn status_line(&mut self, f: &Folder, items: &[String]) -> Result<String> {
        let needs_snapshot = items.iter().any(|i| {
            matches!(
                i.as_str(),
                "RECENT" | "DELETED" | "SIZE" | "DELETED-STORAGE"
            )
        });
        let snapshot = if needs_snapshot {
            Some(self.ctx.store.snapshot(f.id).await?)
        } else {
            None
        };
        let mut parts = Vec::new();
        for item in items {
            let value = match item.as_str() {
                "MESSAGES" => f.total.to_string(),
                "UIDNEXT" => f.uid_next.to_string(),
                "UIDVALIDITY" => f.uid_validity.to_string(),
                "UNSEEN" => f.unseen.to_string(),
                "HIGHESTMODSEQ" => {
                    self.enable_condstore();
                    f.highest_modseq.to_string()
                }
                "APPENDLIMIT" => self.ctx.config.max_append_size.to_string(),
                // RFC 8474 §4: "MAILBOXID" SP "(" objectid ")".
                "MAILBOXID" => format!("({})", mailbox_id(f.id, f.uid_validity)),
                "RECENT" => snapshot
                    .as_ref()
                    .map(|s| s.entries.iter().filter(|e| e.uid > s.recent_uid).count())
                    .unwrap_or(0)
                    .to_string(),
                "DELETED" => snapshot
                    .as_ref()
                    .map(|s| {
                        s.entries
                            .iter()
                            .filter(|e| e.flags.contains(Flags::DELETED))
                            .count()
                    })
                    .unwrap_or(0)
                    .to_string(),
                "SIZE" | "DELETED-STORAGE" => {
                    let s = snapshot.as_ref().map(|s| {
                        s.entries
                            .iter()
                            .filter(|e| item == "SIZE" || e.flags.contains(Flags::DELETED))
                            .map(|e| e.uid)
                            .collect::<Vec<_>>()
                    });
                    let meta = self
                        .ctx
                        .store
                        .messages_meta(f.id, s.unwrap_or_default())
                        .await?;
                    meta.iter().map(|m| m.size).sum::<u64>().to_string()
                }
                _ => continue,
            };
            parts.push(format!("{item} {value}"));
        }
        Ok(parts.join(" "))
    }
}

/// A mailbox's object id (RFC 8474 §4, objectid: letters, digits, "-" and
/// "_"): its row and its UIDVALIDITY, both kept by RENAME and never given
/// to another mailbox (UIDVALIDITY values come from one server-wide
/// counter).
pub(crate) fn mailbox_id(folder: postgate_types::FolderId, uid_validity: u32) -> String {
    format!("F{folder}-{uid_validity}")
}
