//! [`Mailboxes`] for the embedded store.
use super::directory::next_uid_validity;
use super::messages::{self, FOLDER_COLUMNS, find_folder, folder_row, store_sealed};
use super::{EmbeddedStore, backend};
use crate::content::{Sealed, valid_path};
use crate::{
    ChangeFeed, CopyOutcome, Delivered, FlagOp, FlagOutcome, Folder, FolderChanges, ItemRecord,
    MailboxSnapshot, Mailboxes, MessageMeta, MessageRef, NewDelivery, NewMessage, Result,
    StoreError,
};
use async_trait::async_trait;
use postgate_types::{
    Change, ChangeKind, Contact, Flags, FolderId, ItemContent, ItemKind, ItemSummary, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

const SUMMARY_COLUMNS: &str = "i.uid, m.kind, m.from_name, m.from_addr, m.subject, \
     COALESCE(m.sent_date, i.internal_date), i.internal_date, m.size, i.flags, i.keywords, i.modseq";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemSummary> {
    let name: Option<String> = r.get(2)?;
    let address: Option<String> = r.get(3)?;
    let keywords: String = r.get(9)?;
    Ok(ItemSummary {
        uid: r.get::<_, i64>(0)? as u32,
        kind: {
            let k: String = r.get(1)?;
            ItemKind::parse(&k).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    format!("unknown item kind {k:?}").into(),
                )
            })?
        },
        from: (name.is_some() || address.is_some()).then_some(Contact { name, address }),
        subject: r.get(4)?,
        date: r.get(5)?,
        internal_date: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        flags: Flags(r.get::<_, i64>(8)? as u32),
        keywords: keywords.split_whitespace().map(str::to_string).collect(),
        modseq: r.get::<_, i64>(10)? as u64,
    })
}

/// A delivery in the writer's transaction: the message, a copy per target,
/// the queue entry, the calendar changes. Returns the copies and every
/// change to publish.
fn deliver(
    conn: &Connection,
    d: NewDelivery,
    sealed: Sealed,
    envelope: Option<String>,
) -> Result<(Vec<Delivered>, Vec<Change>)> {
    let message = store_sealed(conn, &d.raw, &sealed)?;
    if let Some(data) = envelope {
        conn.prepare_cached(
            "INSERT INTO envelope (message_id, received_at, data) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![message, d.received_at, data]))
        .map_err(backend)?;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(d.targets.len());
    for t in &d.targets {
        // One copy per folder: a group and its member, or a user named
        // twice, get one; the sender's Sent copy and their Inbox copy (a
        // message to oneself) are two.
        if !seen.insert((t.user, t.role)) {
            continue;
        }
        let folder: Option<FolderId> = conn
            .prepare_cached("SELECT id FROM folder WHERE user_id = ?1 AND role = ?2")
            .and_then(|mut s| {
                s.query_row(params![t.user, t.role.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)?;
        let Some(folder) = folder else {
            // The user was removed between RCPT and the end of DATA.
            tracing::warn!(user = t.user, role = %t.role, "delivery target has no such folder; skipped");
            continue;
        };
        let (uid, modseq) =
            messages::add_item(conn, folder, message, t.flags, &[], (d.received_at, 0))?;
        out.push(Delivered {
            user: t.user,
            folder,
            uid,
            modseq,
        });
    }
    if let Some(ob) = &d.outbound
        && !ob.rcpts.is_empty()
    {
        super::queue::enqueue(conn, message, ob, d.received_at)?;
    }
    if out.is_empty() && !d.targets.is_empty() {
        // Every recipient vanished (removed while the message was in transit):
        // refuse, so that the sender keeps the message and tries again.
        return Err(StoreError::NotFound("every recipient's mailbox".into()));
    }
    let mut changes: Vec<Change> = out
        .iter()
        .map(|d| Change {
            user: d.user,
            folder: d.folder,
            modseq: d.modseq,
            uid: d.uid,
            kind: ChangeKind::Append,
        })
        .collect();
    for update in d.calendar {
        // A calendar change that fails is logged and left out; the mail that
        // carried it is delivered all the same. One whose basis changed
        // meanwhile refuses the whole delivery (the mail says what it did).
        match super::calendar::apply_in_savepoint(conn, update, d.received_at, &mut changes) {
            Ok(_) => {}
            Err(e @ StoreError::Conflict(_)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "calendar change not applied"),
        }
    }
    Ok((out, changes))
}

#[async_trait]
impl Mailboxes for EmbeddedStore {
    async fn lock_maildrop(&self, folder: FolderId, holder: &str) -> Result<bool> {
        let mut m = self
            .inner
            .maildrops
            .lock()
            .map_err(|_| StoreError::Backend("maildrop locks poisoned".into()))?;
        match m.get(&folder) {
            Some(h) => Ok(h == holder),
            None => {
                m.insert(folder, holder.to_string());
                Ok(true)
            }
        }
    }

    async fn unlock_maildrop(&self, folder: FolderId, holder: &str) -> Result<()> {
        if let Ok(mut m) = self.inner.maildrops.lock()
            && m.get(&folder).is_some_and(|h| h == holder)
        {
            m.remove(&folder);
        }
        Ok(())
    }

    async fn deliver(&self, delivery: NewDelivery) -> Result<Vec<Delivered>> {
        // Hash and serialize here, not on the writer thread, which every
        // delivery waits for.
        let (delivery, sealed, envelope) = crate::content::seal_delivery(delivery).await?;
        let (delivered, changes) = self
            .write(move |conn| deliver(conn, delivery, sealed, envelope))
            .await?;
        self.inner.feed.publish(changes);
        Ok(delivered)
    }

    async fn folders(&self, user: UserId) -> Result<Vec<Folder>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = ?1 \
                 ORDER BY f.role IS NOT 'inbox', f.path_key"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.query_map([user], folder_row)?.collect())
                .map_err(backend)
        })
        .await
    }

    async fn folder(&self, user: UserId, path: &str) -> Result<Option<Folder>> {
        let path = path.to_string();
        self.read(move |conn| find_folder(conn, user, &path)).await
    }

    async fn create_folder_for(
        &self,
        user: UserId,
        path: &str,
        role: Option<postgate_types::FolderRole>,
    ) -> Result<Folder> {
        let path = valid_path(path)?.to_string();
        self.write(move |conn| {
            if find_folder(conn, user, &path)?.is_some() {
                return Err(StoreError::Exists(format!("folder {path}")));
            }
            let segments: Vec<&str> = path.split('/').collect();
            for depth in 1..=segments.len() {
                let prefix = segments[..depth].join("/");
                if find_folder(conn, user, &prefix)?.is_none() {
                    conn.execute(
                        "INSERT INTO folder (user_id, path, path_key, uid_validity) VALUES (?1, ?2, ?3, ?4)",
                        params![user, prefix, prefix.to_lowercase(), next_uid_validity(conn)?],
                    )
                    .map_err(backend)?;
                }
            }
            if let Some(role) = role {
                conn.execute(
                    "UPDATE folder SET role = CASE WHEN path_key = ?3 THEN ?2 END \
                     WHERE user_id = ?1 AND (role = ?2 OR path_key = ?3)",
                    params![user, role.as_str(), path.to_lowercase()],
                )
                .map_err(backend)?;
            }
            find_folder(conn, user, &path)?
                .ok_or_else(|| StoreError::Backend("folder vanished".into()))
        })
        .await
        .inspect(|_| self.inner.feed.publish_user(user, ChangeKind::Mailboxes))
    }

    async fn items(&self, folder: FolderId) -> Result<Vec<ItemSummary>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM item i JOIN message m ON m.id = i.message_id \
                 WHERE i.folder_id = ?1 ORDER BY i.uid"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.query_map([folder], summary_row)?.collect())
                .map_err(backend)
        })
        .await
    }

    async fn item(&self, folder: FolderId, uid: u32) -> Result<Option<ItemRecord>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS}, m.content, m.text_body, m.html_body \
                 FROM item i JOIN message m ON m.id = i.message_id \
                 WHERE i.folder_id = ?1 AND i.uid = ?2"
            );
            let row = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![folder, uid], |r| {
                        Ok((
                            summary_row(r)?,
                            r.get::<_, String>(11)?,
                            r.get::<_, Option<Vec<u8>>>(12)?,
                            r.get::<_, Option<Vec<u8>>>(13)?,
                        ))
                    })
                    .optional()
                })
                .map_err(backend)?;
            row.map(|(summary, content, text, html)| {
                Ok(ItemRecord {
                    summary,
                    content: crate::content::unseal(&content, text, html)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn raw(&self, folder: FolderId, uid: u32) -> Result<Option<Vec<u8>>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT b.data FROM item i JOIN blob b ON b.id = i.message_id \
                 WHERE i.folder_id = ?1 AND i.uid = ?2",
            )
            .and_then(|mut s| s.query_row(params![folder, uid], |r| r.get(0)).optional())
            .map_err(backend)
        })
        .await
    }

    fn changes(&self) -> &ChangeFeed {
        &self.inner.feed
    }

    async fn rename_folder(&self, user: UserId, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        let expunged = self
            .write(move |conn| messages::rename_folder(conn, user, &from, &to))
            .await?;
        for (folder, uids) in expunged {
            self.publish(
                user,
                folder,
                ChangeKind::Expunge,
                uids.into_iter().map(|u| (u, 0)),
            );
        }
        self.inner.feed.publish_user(user, ChangeKind::Mailboxes);
        Ok(())
    }

    async fn delete_folder(&self, user: UserId, path: &str) -> Result<()> {
        let path = path.to_string();
        let folder = self
            .write(move |conn| messages::delete_folder(conn, user, &path))
            .await?;
        self.publish(user, folder, ChangeKind::Expunge, [(0, 0)]);
        self.inner.feed.publish_user(user, ChangeKind::Mailboxes);
        Ok(())
    }

    async fn set_subscribed(&self, user: UserId, path: &str, subscribed: bool) -> Result<()> {
        let path = path.to_string();
        self.write(move |conn| messages::set_subscribed(conn, user, &path, subscribed))
            .await?;
        self.inner
            .feed
            .publish_user(user, ChangeKind::Subscriptions);
        Ok(())
    }

    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        self.read(move |conn| messages::subscriptions(conn, user))
            .await
    }

    async fn snapshot(&self, folder: FolderId) -> Result<MailboxSnapshot> {
        self.read(move |conn| messages::snapshot(conn, folder))
            .await
    }

    async fn changes_since(&self, folder: FolderId, modseq: u64) -> Result<FolderChanges> {
        self.read(move |conn| messages::changes_since(conn, folder, modseq))
            .await
    }

    async fn claim_recent(&self, folder: FolderId, upto: u32) -> Result<u32> {
        self.write(move |conn| messages::claim_recent(conn, folder, upto))
            .await
    }

    async fn store_flags(
        &self,
        folder: FolderId,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Flags,
        keywords: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        let out = self
            .write(move |conn| {
                let owner = messages::folder_head(conn, folder)?.user;
                messages::store_flags(conn, folder, uids, op, flags, keywords, unchanged_since)
                    .map(|o| (owner, o))
            })
            .await?;
        let (owner, outcome) = out;
        self.publish(
            owner,
            folder,
            ChangeKind::Flags,
            outcome.changed.iter().map(|e| (e.uid, e.modseq)),
        );
        Ok(outcome)
    }

    async fn expunge(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<u32>> {
        let (owner, removed, modseq) = self
            .write(move |conn| {
                let owner = messages::folder_head(conn, folder)?.user;
                let (removed, modseq) = messages::expunge(conn, folder, uids)?;
                Ok((owner, removed, modseq))
            })
            .await?;
        self.publish(
            owner,
            folder,
            ChangeKind::Expunge,
            removed.iter().map(|u| (*u, modseq)),
        );
        Ok(removed)
    }

    async fn copy_messages(
        &self,
        from: FolderId,
        uids: Vec<u32>,
        to: FolderId,
        remove: bool,
    ) -> Result<CopyOutcome> {
        let (owner, outcome, appended, removed) = self
            .write(move |conn| {
                let owner = messages::folder_head(conn, to)?.user;
                let (o, a, r) = messages::copy_messages(conn, from, uids, to, remove)?;
                Ok((owner, o, a, r))
            })
            .await?;
        self.publish(owner, to, ChangeKind::Append, appended);
        self.publish(
            owner,
            from,
            ChangeKind::Expunge,
            removed.into_iter().map(|u| (u, 0)),
        );
        Ok(outcome)
    }

    async fn append(&self, folder: FolderId, message: NewMessage) -> Result<(u32, u32)> {
        // Hash and serialize off the writer thread.
        let (message, sealed) = crate::content::seal_message(message).await?;
        let (owner, validity, uid, modseq) = self
            .write(move |conn| {
                let owner = messages::folder_head(conn, folder)?.user;
                let (v, u, m) = messages::append(conn, folder, message, sealed)?;
                Ok((owner, v, u, m))
            })
            .await?;
        self.publish(owner, folder, ChangeKind::Append, [(uid, modseq)]);
        Ok((validity, uid))
    }

    async fn append_batch(
        &self,
        folder: FolderId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        if messages.is_empty() {
            let validity = self
                .read(move |conn| messages::folder_head(conn, folder))
                .await?
                .uid_validity;
            return Ok((validity, Vec::new()));
        }
        let sealed = crate::content::seal_messages(messages).await?;
        // One job: the writer runs it inside one savepoint, so the batch is
        // committed whole or not at all.
        let (owner, validity, added) = self
            .write(move |conn| {
                let owner = messages::folder_head(conn, folder)?.user;
                let mut validity = 0;
                let mut added = Vec::with_capacity(sealed.len());
                for (m, s) in sealed {
                    let (v, u, modseq) = messages::append(conn, folder, m, s)?;
                    validity = v;
                    added.push((u, modseq));
                }
                Ok((owner, validity, added))
            })
            .await?;
        let uids = added.iter().map(|(u, _)| *u).collect();
        self.publish(owner, folder, ChangeKind::Append, added);
        Ok((validity, uids))
    }

    async fn messages_meta(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<MessageMeta>> {
        self.read(move |conn| messages::messages_meta(conn, folder, uids))
            .await
    }

    async fn message_bytes(&self, message: MessageRef) -> Result<Option<Vec<u8>>> {
        self.read(move |conn| messages::message_bytes(conn, message))
            .await
    }

    async fn messages_bytes(&self, wanted: Vec<MessageRef>) -> Result<Vec<Option<Vec<u8>>>> {
        self.read(move |conn| {
            wanted
                .into_iter()
                .map(|m| messages::message_bytes(conn, m))
                .collect()
        })
        .await
    }

    async fn message_content(&self, message: MessageRef) -> Result<Option<ItemContent>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT content, text_body, html_body FROM message WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([message.0], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<Vec<u8>>>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                        ))
                    })
                    .optional()
                })
                .map_err(backend)?;
            row.map(|(content, text, html)| crate::content::unseal(&content, text, html))
                .transpose()
        })
        .await
    }

    async fn usage(&self, user: UserId) -> Result<u64> {
        self.read(move |conn| messages::usage(conn, user)).await
    }

    async fn metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let folder = folder.unwrap_or(0);
        self.read(move |conn| messages::metadata(conn, user, folder))
            .await
    }

    async fn set_metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<()> {
        let folder = folder.unwrap_or(0);
        self.write(move |conn| messages::set_metadata(conn, user, folder, &entries))
            .await
    }
}

impl EmbeddedStore {
    /// Publishes committed changes of one folder: (uid, modseq) pairs.
    fn publish(
        &self,
        user: UserId,
        folder: FolderId,
        kind: ChangeKind,
        changes: impl IntoIterator<Item = (u32, u64)>,
    ) {
        self.inner
            .feed
            .publish(changes.into_iter().map(|(uid, modseq)| Change {
                user,
                folder,
                modseq,
                uid,
                kind,
            }));
    }
}
