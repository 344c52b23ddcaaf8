//! [`Mailboxes`] for the PostgreSQL store.
use super::messages::{self, FOLDER_COLUMNS, find_folder, folder_row};
use super::{NODE_TIMEOUT_SECS, PgStore, in_tx, now, pg};
use crate::content::{Sealed, seal_delivery, seal_message, unseal, valid_path};
use crate::{
    ChangeFeed, CopyOutcome, Delivered, FlagOp, FlagOutcome, Folder, FolderChanges, ItemRecord,
    MailboxSnapshot, Mailboxes, MessageMeta, MessageRef, NewDelivery, NewMessage, Result,
    StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use postgate_types::{
    Change, ChangeKind, Contact, Flags, FolderId, ItemContent, ItemKind, ItemSummary, UserId,
};
use std::collections::HashSet;
use std::sync::Arc;
use tokio_postgres::Row;

const SUMMARY_COLUMNS: &str = "i.uid, m.kind, m.from_name, m.from_addr, m.subject, \
     COALESCE(m.sent_date, i.internal_date), i.internal_date, m.size, i.flags, i.keywords, i.modseq";

fn summary_row(r: &Row) -> Result<ItemSummary> {
    let name: Option<String> = r.get(2);
    let address: Option<String> = r.get(3);
    let keywords: String = r.get(9);
    let kind: String = r.get(1);
    Ok(ItemSummary {
        uid: r.get::<_, i64>(0) as u32,
        kind: ItemKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown item kind {kind:?}")))?,
        from: (name.is_some() || address.is_some()).then_some(Contact { name, address }),
        subject: r.get(4),
        date: r.get(5),
        internal_date: r.get(6),
        size: r.get::<_, i64>(7) as u64,
        flags: Flags(r.get::<_, i64>(8) as u32),
        keywords: keywords.split_whitespace().map(str::to_string).collect(),
        modseq: r.get::<_, i64>(10) as u64,
    })
}

/// What a delivery writes in one statement (one round trip): the message
/// (once, by hash: an existing one is locked, not rewritten), its bytes if
/// new, the envelope, and an item in each target folder with the folder's
/// next UID and modseq, the folder rows locked until commit (see
/// [`messages::add_item`]: the same counters, RFC 3501 §2.3.1.1 and RFC 7162
/// §3.1.1). A target whose folder is gone (the user was removed between
/// RCPT and the end of DATA) gets no row. Returns the message id, then per
/// copy (folder, user, uid, modseq).
const DELIVER: &str = "\
WITH m AS (
  INSERT INTO message (hash, size, kind, from_name, from_addr, subject, sent_date, content,
                       text_body, html_body)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (hash) DO UPDATE SET size = excluded.size
  RETURNING id, (xmax = 0) AS fresh
), b AS (
  INSERT INTO blob (id, data) SELECT id, $11 FROM m WHERE fresh
), e AS (
  INSERT INTO envelope (message_id, received_at, data)
  SELECT id, $12, $13 FROM m WHERE $13::text IS NOT NULL
), f AS (
  UPDATE folder SET uid_next = folder.uid_next + 1, highest_modseq = folder.highest_modseq + 1
  FROM unnest($14::bigint[], $15::text[], $16::bigint[]) AS t(user_id, role, flags)
  WHERE folder.user_id = t.user_id AND folder.role = t.role
  RETURNING folder.id, folder.user_id, folder.uid_next - 1 AS uid, folder.highest_modseq AS modseq,
            t.flags
), i AS (
  INSERT INTO item (folder_id, uid, message_id, flags, keywords, modseq, internal_date, save_date)
  SELECT f.id, f.uid, m.id, f.flags, '', f.modseq, $12, $12 FROM f, m
), n AS (
  SELECT pg_notify($17, $18 || string_agg(E'\\n' || f.user_id || ' ' || f.id || ' ' || f.modseq
                                          || ' ' || f.uid || ' a', ''))
  FROM f HAVING $19 AND count(*) > 0
)
SELECT m.id, f.id, f.user_id, f.uid, f.modseq FROM m LEFT JOIN f ON TRUE LEFT JOIN n ON TRUE";

/// Deliveries to at most this many folders are announced to the other
/// nodes by the delivery statement itself (one NOTIFY payload, within
/// PostgreSQL's 8000 bytes); larger ones by the batch.
const INLINE_NOTIFY_MAX: usize = 100;

/// The folders a delivery writes to, once each: a group and its member,
/// or a user named twice, get one copy; the sender's Sent copy and their
/// Inbox copy (a message to oneself) are two.
struct Targets<'a> {
    users: Vec<UserId>,
    roles: Vec<&'a str>,
    flags: Vec<i64>,
}

fn targets(d: &NewDelivery) -> Targets<'_> {
    let mut seen = HashSet::new();
    let mut t = Targets {
        users: Vec::new(),
        roles: Vec::new(),
        flags: Vec::new(),
    };
    for target in &d.targets {
        if seen.insert((target.user, target.role)) {
            t.users.push(target.user);
            t.roles.push(target.role.as_str());
            t.flags.push(target.flags.0 as i64);
        }
    }
    t
}

/// Runs a delivery's one statement ([`DELIVER`]). Several may be in flight
/// on one connection at once: tokio-postgres pipelines them, so a batch
/// of deliveries costs one round trip rather than one each. Returns the
/// rows and how many distinct folders the delivery targeted.
pub(crate) async fn deliver_statement(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    d: &NewDelivery,
    sealed: &Sealed,
    envelope: Option<&str>,
    node: &str,
) -> Result<(Vec<Row>, usize)> {
    let t = targets(d);
    // The listener's payload format (listener::encode): the node, then a
    // line per change.
    let inline = t.users.len() <= INLINE_NOTIFY_MAX;
    tx.query(
        statement,
        &[
            &sealed.hash.as_slice(),
            &(d.raw.len() as i64),
            &sealed.kind,
            &sealed.from_name,
            &sealed.from_addr,
            &sealed.subject,
            &sealed.sent_date,
            &sealed.content,
            &sealed.text,
            &sealed.html,
            &d.raw,
            &d.received_at,
            &envelope,
            &t.users,
            &t.roles,
            &t.flags,
            &super::CHANNEL,
            &node,
            &inline,
        ],
    )
    .await
    .map(|rows| (rows, t.users.len()))
    .map_err(pg)
}

/// The prepared [`DELIVER`] statement of this connection.
pub(crate) async fn deliver_prepared(
    tx: &deadpool_postgres::Transaction<'_>,
) -> Result<tokio_postgres::Statement> {
    tx.prepare_cached(DELIVER).await.map_err(pg)
}

/// A delivery in one transaction: the message, a copy per target, the
/// queue entry, the calendar changes. Returns the copies, every change to
/// publish, and how many of those the statement announced itself.
pub(crate) async fn deliver(
    tx: &mut deadpool_postgres::Transaction<'_>,
    d: &NewDelivery,
    sealed: &Sealed,
    envelope: Option<&str>,
    node: &str,
) -> Result<(Vec<Delivered>, Vec<Change>, usize)> {
    let s = deliver_prepared(tx).await?;
    let statement = deliver_statement(tx, &s, d, sealed, envelope, node).await?;
    deliver_finish(tx, d, statement).await
}

/// What follows a delivery's statement in its transaction: the outbound
/// queue entry and the calendar changes; `statement` is what
/// [`deliver_statement`] returned.
pub(crate) async fn deliver_finish(
    tx: &mut deadpool_postgres::Transaction<'_>,
    d: &NewDelivery,
    (rows, targets): (Vec<Row>, usize),
) -> Result<(Vec<Delivered>, Vec<Change>, usize)> {
    let inline = targets <= INLINE_NOTIFY_MAX;
    let message: i64 = rows
        .first()
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Backend("delivery stored no message".into()))?;
    let mut out: Vec<Delivered> = rows
        .iter()
        .filter_map(|r| {
            Some(Delivered {
                folder: r.get::<_, Option<FolderId>>(1)?,
                user: r.get(2),
                uid: r.get::<_, i64>(3) as u32,
                modseq: r.get::<_, i64>(4) as u64,
            })
        })
        .collect();
    if out.len() < targets {
        tracing::warn!(
            targets,
            delivered = out.len(),
            "delivery target has no such folder; skipped"
        );
    }
    if let Some(ob) = &d.outbound
        && !ob.rcpts.is_empty()
    {
        super::queue::enqueue(&*tx, message, ob, d.received_at).await?;
    }
    if out.is_empty() && !d.targets.is_empty() {
        // Every recipient vanished: refuse, so that the sender keeps the
        // message and tries again.
        return Err(StoreError::NotFound("every recipient's mailbox".into()));
    }
    out.sort_by_key(|d| (d.user, d.folder));
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
    // The item changes went out with the statement; the rest (calendar
    // changes) are the caller's to announce.
    let announced = if inline { changes.len() } else { 0 };
    for update in d.calendar.iter().cloned() {
        // As in the embedded store: a failing calendar change is logged and
        // left out; one whose basis changed refuses the whole delivery.
        match super::calendar::apply_in_savepoint(tx, update, d.received_at, &mut changes).await {
            Ok(_) => {}
            Err(e @ StoreError::Conflict(_)) => return Err(e),
            // A deadlock: the whole transaction runs again.
            Err(e) if super::retryable(&e) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "calendar change not applied"),
        }
    }
    Ok((out, changes, announced))
}

/// A change to a user's folder list or subscriptions (it names no folder).
fn list_change(user: UserId, kind: ChangeKind) -> Change {
    Change {
        user,
        folder: 0,
        modseq: 0,
        uid: 0,
        kind,
    }
}

fn changes_of(
    user: UserId,
    folder: FolderId,
    kind: ChangeKind,
    changes: impl IntoIterator<Item = (u32, u64)>,
) -> Vec<Change> {
    changes
        .into_iter()
        .map(|(uid, modseq)| Change {
            user,
            folder,
            modseq,
            uid,
            kind,
        })
        .collect()
}

impl PgStore {
    /// Runs a read on a pooled connection inside one REPEATABLE READ
    /// transaction, so that what it reads is one snapshot.
    pub(crate) async fn read_snapshot<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let out = f(&tx).await?;
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }
}

#[async_trait]
impl Mailboxes for PgStore {
    async fn lock_maildrop(&self, folder: FolderId, holder: &str) -> Result<bool> {
        // RFC 1939 §8: one session per maildrop, across every node. A lock
        // whose process stopped its heartbeat is free.
        let holder = format!("{}/{holder}", self.inner.instance);
        let c = self.client().await?;
        let row = c
            .query_opt(
                "INSERT INTO maildrop_lock AS l (folder_id, holder, node, taken) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (folder_id) DO UPDATE SET holder = excluded.holder, node = excluded.node, \
                   taken = excluded.taken \
                 WHERE l.holder = excluded.holder OR NOT EXISTS \
                   (SELECT 1 FROM node n WHERE n.name = l.node AND n.seen > $5) \
                 RETURNING 1",
                &[
                    &folder,
                    &holder,
                    &self.inner.instance,
                    &now(),
                    &(now() - NODE_TIMEOUT_SECS),
                ],
            )
            .await;
        match row {
            Ok(r) => Ok(r.is_some()),
            // The folder is gone: nothing to lock.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(StoreError::NotFound(format!("folder {folder}")))
            }
            Err(e) => Err(pg(e)),
        }
    }

    async fn unlock_maildrop(&self, folder: FolderId, holder: &str) -> Result<()> {
        let holder = format!("{}/{holder}", self.inner.instance);
        let c = self.client().await?;
        c.execute(
            "DELETE FROM maildrop_lock WHERE folder_id = $1 AND holder = $2",
            &[&folder, &holder],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn deliver(&self, delivery: NewDelivery) -> Result<Vec<Delivered>> {
        let prepared: super::batch::Prepared = Arc::new(seal_delivery(delivery).await?);
        let mut attempt = 0;
        loop {
            // Into the next group commit (see `batch`); the answer comes
            // once it is durable.
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.inner
                .deliveries
                .send(super::batch::Job {
                    delivery: prepared.clone(),
                    reply,
                })
                .map_err(|_| StoreError::Closed)?;
            match answer.await.map_err(|_| StoreError::Closed)? {
                Err(e) if super::retryable(&e) && attempt < super::RETRIES => attempt += 1,
                Err(e) => return Err(e),
                Ok((delivered, _)) => return Ok(delivered),
            }
        }
    }

    async fn folders(&self, user: UserId) -> Result<Vec<Folder>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = $1 \
             ORDER BY f.role IS DISTINCT FROM 'inbox', f.path_key"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        Ok(c.query(&s, &[&user])
            .await
            .map_err(pg)?
            .iter()
            .map(folder_row)
            .collect())
    }

    async fn folder(&self, user: UserId, path: &str) -> Result<Option<Folder>> {
        let c = self.client().await?;
        find_folder(&c, user, path).await
    }

    async fn create_folder_for(
        &self,
        user: UserId,
        path: &str,
        role: Option<postgate_types::FolderRole>,
    ) -> Result<Folder> {
        let path = valid_path(path)?.to_string();
        in_tx!(self, |tx| async {
            if find_folder(&tx, user, &path).await?.is_some() {
                return Err(StoreError::Exists(format!("folder {path}")));
            }
            messages::create_path(&tx, user, &path, false).await?;
            if let Some(role) = role {
                tx.execute(
                    "UPDATE folder SET role = CASE WHEN path_key = $3 THEN $2 END \
                     WHERE user_id = $1 AND (role = $2 OR path_key = $3)",
                    &[&user, &role.as_str(), &path.to_lowercase()],
                )
                .await
                .map_err(pg)?;
            }
            self.notify(&tx, &[list_change(user, ChangeKind::Mailboxes)])
                .await?;
            find_folder(&tx, user, &path)
                .await?
                .ok_or_else(|| StoreError::Backend("folder vanished".into()))
        }
        .await)
        .map_err(|e| match e {
            // Another session created it meanwhile.
            StoreError::Exists(_) => StoreError::Exists(format!("folder {path}")),
            e => e,
        })
        .inspect(|_| self.publish(vec![list_change(user, ChangeKind::Mailboxes)]))
    }

    async fn items(&self, folder: FolderId) -> Result<Vec<ItemSummary>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM item i JOIN message m ON m.id = i.message_id \
             WHERE i.folder_id = $1 ORDER BY i.uid"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        c.query(&s, &[&folder])
            .await
            .map_err(pg)?
            .iter()
            .map(summary_row)
            .collect()
    }

    async fn item(&self, folder: FolderId, uid: u32) -> Result<Option<ItemRecord>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, m.content, m.text_body, m.html_body \
             FROM item i JOIN message m ON m.id = i.message_id \
             WHERE i.folder_id = $1 AND i.uid = $2"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        let Some(r) = c
            .query_opt(&s, &[&folder, &(uid as i64)])
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        Ok(Some(ItemRecord {
            summary: summary_row(&r)?,
            content: unseal(r.get(11), r.get(12), r.get(13))?,
        }))
    }

    async fn raw(&self, folder: FolderId, uid: u32) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        let s = c
            .prepare_cached(
                "SELECT b.data FROM item i JOIN blob b ON b.id = i.message_id \
                 WHERE i.folder_id = $1 AND i.uid = $2",
            )
            .await
            .map_err(pg)?;
        Ok(c.query_opt(&s, &[&folder, &(uid as i64)])
            .await
            .map_err(pg)?
            .map(|r| r.get(0)))
    }

    fn changes(&self) -> &ChangeFeed {
        &self.inner.feed
    }

    async fn rename_folder(&self, user: UserId, from: &str, to: &str) -> Result<()> {
        let changes = in_tx!(self, |tx| async {
            let expunged = messages::rename_folder(&tx, user, from, to).await?;
            let changes: Vec<Change> = expunged
                .into_iter()
                .flat_map(|(folder, uids)| {
                    changes_of(
                        user,
                        folder,
                        ChangeKind::Expunge,
                        uids.into_iter().map(|u| (u, 0)),
                    )
                })
                .chain([list_change(user, ChangeKind::Mailboxes)])
                .collect();
            self.notify(&tx, &changes).await?;
            Ok(changes)
        }
        .await)?;
        self.publish(changes);
        Ok(())
    }

    async fn delete_folder(&self, user: UserId, path: &str) -> Result<()> {
        let changes = in_tx!(self, |tx| async {
            let folder = messages::delete_folder(&tx, user, path).await?;
            let mut changes = changes_of(user, folder, ChangeKind::Expunge, [(0, 0)]);
            changes.push(list_change(user, ChangeKind::Mailboxes));
            self.notify(&tx, &changes).await?;
            Ok(changes)
        }
        .await)?;
        self.publish(changes);
        Ok(())
    }

    async fn set_subscribed(&self, user: UserId, path: &str, subscribed: bool) -> Result<()> {
        let changes = vec![list_change(user, ChangeKind::Subscriptions)];
        in_tx!(self, |tx| async {
            messages::set_subscribed(&tx, user, path, subscribed).await?;
            self.notify(&tx, &changes).await
        }
        .await)?;
        self.publish(changes);
        Ok(())
    }

    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        let c = self.client().await?;
        messages::subscriptions(&c, user).await
    }

    async fn snapshot(&self, folder: FolderId) -> Result<MailboxSnapshot> {
        self.read_snapshot(async |tx| messages::snapshot(tx, folder).await)
            .await
    }

    async fn changes_since(&self, folder: FolderId, modseq: u64) -> Result<FolderChanges> {
        self.read_snapshot(async |tx| messages::changes_since(tx, folder, modseq).await)
            .await
    }

    async fn claim_recent(&self, folder: FolderId, upto: u32) -> Result<u32> {
        in_tx!(self, |tx| messages::claim_recent(&tx, folder, upto).await)
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
        let (outcome, changes) = in_tx!(self, |tx| async {
            let owner = messages::folder_head(&tx, folder).await?.user;
            let o = messages::store_flags(
                &tx,
                folder,
                uids.clone(),
                op,
                flags,
                keywords.clone(),
                unchanged_since,
            )
            .await?;
            let changes = changes_of(
                owner,
                folder,
                ChangeKind::Flags,
                o.changed.iter().map(|e| (e.uid, e.modseq)),
            );
            self.notify(&tx, &changes).await?;
            Ok((o, changes))
        }
        .await)?;
        self.publish(changes);
        Ok(outcome)
    }

    async fn expunge(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<u32>> {
        let (removed, changes) = in_tx!(self, |tx| async {
            let owner = messages::folder_head(&tx, folder).await?.user;
            let (removed, modseq) = messages::expunge(&tx, folder, uids.clone()).await?;
            let changes = changes_of(
                owner,
                folder,
                ChangeKind::Expunge,
                removed.iter().map(|u| (*u, modseq)),
            );
            self.notify(&tx, &changes).await?;
            Ok((removed, changes))
        }
        .await)?;
        self.publish(changes);
        Ok(removed)
    }

    async fn copy_messages(
        &self,
        from: FolderId,
        uids: Vec<u32>,
        to: FolderId,
        remove: bool,
    ) -> Result<CopyOutcome> {
        let (outcome, changes) = in_tx!(self, |tx| async {
            let owner = messages::folder_head(&tx, to).await?.user;
            let (o, appended, removed) =
                messages::copy_messages(&tx, from, uids.clone(), to, remove).await?;
            let mut changes = changes_of(owner, to, ChangeKind::Append, appended);
            changes.extend(changes_of(
                owner,
                from,
                ChangeKind::Expunge,
                removed.into_iter().map(|u| (u, 0)),
            ));
            self.notify(&tx, &changes).await?;
            Ok((o, changes))
        }
        .await)?;
        self.publish(changes);
        Ok(outcome)
    }

    async fn append(&self, folder: FolderId, message: NewMessage) -> Result<(u32, u32)> {
        let (message, sealed) = seal_message(message).await?;
        let (validity, uid, changes) = in_tx!(self, |tx| async {
            let f = messages::folder_head(&tx, folder).await?;
            let stored = messages::store_sealed(&tx, &message.raw, &sealed).await?;
            let (uid, modseq) = messages::add_item(
                &tx,
                folder,
                stored,
                message.flags,
                &message.keywords,
                (message.internal_date, message.internal_zone),
            )
            .await?;
            let changes = changes_of(f.user, folder, ChangeKind::Append, [(uid, modseq)]);
            self.notify(&tx, &changes).await?;
            Ok((f.uid_validity, uid, changes))
        }
        .await)?;
        self.publish(changes);
        Ok((validity, uid))
    }

    async fn append_batch(
        &self,
        folder: FolderId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        let sealed = crate::content::seal_messages(messages).await?;
        let sealed = &sealed;
        let (validity, uids, changes) = in_tx!(self, |tx| async {
            let f = messages::folder_head(&tx, folder).await?;
            let mut added = Vec::with_capacity(sealed.len());
            for (message, s) in sealed {
                let stored = messages::store_sealed(&tx, &message.raw, s).await?;
                added.push(
                    messages::add_item(
                        &tx,
                        folder,
                        stored,
                        message.flags,
                        &message.keywords,
                        (message.internal_date, message.internal_zone),
                    )
                    .await?,
                );
            }
            let uids: Vec<u32> = added.iter().map(|(u, _)| *u).collect();
            let changes = changes_of(f.user, folder, ChangeKind::Append, added);
            if !changes.is_empty() {
                self.notify(&tx, &changes).await?;
            }
            Ok((f.uid_validity, uids, changes))
        }
        .await)?;
        self.publish(changes);
        Ok((validity, uids))
    }

    async fn messages_meta(&self, folder: FolderId, uids: Vec<u32>) -> Result<Vec<MessageMeta>> {
        let c = self.client().await?;
        messages::messages_meta(&c, folder, uids).await
    }

    async fn message_bytes(&self, message: MessageRef) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        messages::message_bytes(&c, message).await
    }

    async fn message_content(&self, message: MessageRef) -> Result<Option<ItemContent>> {
        let c = self.client().await?;
        let s = c
            .prepare_cached("SELECT content, text_body, html_body FROM message WHERE id = $1")
            .await
            .map_err(pg)?;
        c.query_opt(&s, &[&message.0])
            .await
            .map_err(pg)?
            .map(|r| unseal(r.get(0), r.get(1), r.get(2)))
            .transpose()
    }

    async fn usage(&self, user: UserId) -> Result<u64> {
        let c = self.client().await?;
        messages::usage(&c, user).await
    }

    async fn metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let c = self.client().await?;
        messages::metadata(&c, user, folder.unwrap_or(0)).await
    }

    async fn set_metadata(
        &self,
        user: UserId,
        folder: Option<FolderId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<()> {
        let folder = folder.unwrap_or(0);
        in_tx!(self, |tx| async {
            messages::set_metadata(&tx, user, folder, &entries).await
        }
        .await)
    }
}
