//! Folder and message SQL behind IMAP, for the PostgreSQL store: folders,
//! stored messages (once, by hash), items with their UIDs and modseqs,
//! snapshots, flags, expunge, copy and move, rename, delete, subscriptions.
//! Each function runs on the connection or transaction it is given.
use super::directory::next_uid_validity;
use super::pg;
use crate::content::{Sealed, valid_path};
use crate::{
    CopyOutcome, FlagOp, FlagOutcome, Folder, FolderChanges, FolderHead, MailboxEntry,
    MailboxSnapshot, MessageMeta, MessageRef, Result, StoreError,
};
use deadpool_postgres::GenericClient;
use postgate_types::{Flags, FolderId, FolderRole, UserId};
use std::collections::BTreeSet;
use tokio_postgres::Row;

pub(crate) const FOLDER_COLUMNS: &str = "f.id, f.user_id, f.path, f.role, f.uid_validity, f.uid_next, \
     f.highest_modseq, \
     EXISTS (SELECT 1 FROM subscription s WHERE s.user_id = f.user_id AND s.path_key = f.path_key), \
     (SELECT count(*) FROM item WHERE folder_id = f.id), \
     (SELECT count(*) FROM item WHERE folder_id = f.id AND flags & 1 = 0)";

pub(crate) fn folder_row(r: &Row) -> Folder {
    Folder {
        id: r.get(0),
        user: r.get(1),
        path: r.get(2),
        role: r
            .get::<_, Option<String>>(3)
            .and_then(|s| FolderRole::parse(&s)),
        uid_validity: r.get::<_, i64>(4) as u32,
        uid_next: r.get::<_, i64>(5) as u32,
        highest_modseq: r.get::<_, i64>(6) as u64,
        subscribed: r.get(7),
        total: r.get::<_, i64>(8) as u64,
        unseen: r.get::<_, i64>(9) as u64,
    }
}

fn path_key(p: &str) -> String {
    p.to_lowercase()
}

/// A folder by path (INBOX by role: RFC 9051 §5.1, case-insensitive).
pub(crate) async fn find_folder(
    c: &impl GenericClient,
    user: UserId,
    path: &str,
) -> Result<Option<Folder>> {
    let row = if path.eq_ignore_ascii_case("inbox") {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = $1 AND f.role = 'inbox'"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        c.query_opt(&s, &[&user]).await
    } else {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = $1 AND f.path_key = $2"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        c.query_opt(&s, &[&user, &path_key(path)]).await
    }
    .map_err(pg)?;
    Ok(row.as_ref().map(folder_row))
}

/// A folder by id.
pub(crate) async fn folder_by_id(c: &impl GenericClient, id: FolderId) -> Result<Folder> {
    let sql = format!("SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.id = $1");
    let s = c.prepare_cached(&sql).await.map_err(pg)?;
    c.query_opt(&s, &[&id])
        .await
        .map_err(pg)?
        .as_ref()
        .map(folder_row)
        .ok_or_else(|| StoreError::NotFound(format!("folder {id}")))
}

/// A folder's owner, UIDVALIDITY and HIGHEST_MODSEQ: what writes need,
/// without [`folder_by_id`]'s message counts (a scan of the folder).
pub(crate) async fn folder_head(c: &impl GenericClient, id: FolderId) -> Result<FolderHead> {
    let s = c
        .prepare_cached("SELECT user_id, uid_validity, highest_modseq FROM folder WHERE id = $1")
        .await
        .map_err(pg)?;
    c.query_opt(&s, &[&id])
        .await
        .map_err(pg)?
        .map(|r| FolderHead {
            user: r.get(0),
            uid_validity: r.get::<_, i64>(1) as u32,
            highest_modseq: r.get::<_, i64>(2) as u64,
        })
        .ok_or_else(|| StoreError::NotFound(format!("folder {id}")))
}

/// Inserts one folder row.
pub(crate) async fn insert_folder(
    c: &impl GenericClient,
    user: UserId,
    path: &str,
    role: Option<&str>,
) -> Result<FolderId> {
    let validity = next_uid_validity(c).await? as i64;
    let row = c
        .query_one(
            "INSERT INTO folder (user_id, path, path_key, role, uid_validity) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&user, &path, &path_key(path), &role, &validity],
        )
        .await
        .map_err(pg)?;
    Ok(row.get(0))
}

/// Creates `path` and its missing parents (RFC 9051 §6.3.4); with
/// `parents_only`, only the parents.
pub(crate) async fn create_path(
    c: &impl GenericClient,
    user: UserId,
    path: &str,
    parents_only: bool,
) -> Result<()> {
    let segments: Vec<&str> = path.split('/').collect();
    let last = if parents_only {
        segments.len() - 1
    } else {
        segments.len()
    };
    for depth in 1..=last {
        let prefix = segments[..depth].join("/");
        if find_folder(c, user, &prefix).await?.is_none() {
            insert_folder(c, user, &prefix, None).await?;
        }
    }
    Ok(())
}

fn entry_row(r: &Row) -> MailboxEntry {
    let keywords: String = r.get(2);
    MailboxEntry {
        uid: r.get::<_, i64>(0) as u32,
        flags: Flags(r.get::<_, i64>(1) as u32),
        keywords: split_keywords(&keywords),
        modseq: r.get::<_, i64>(3) as u64,
    }
}

fn split_keywords(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// A folder and its messages' UIDs and flags, as one snapshot (the caller
/// runs it in a REPEATABLE READ transaction where that matters).
pub(crate) async fn snapshot(c: &impl GenericClient, folder: FolderId) -> Result<MailboxSnapshot> {
    let f = folder_by_id(c, folder).await?;
    let s = c
        .prepare_cached(
            "SELECT uid, flags, keywords, modseq FROM item WHERE folder_id = $1 ORDER BY uid",
        )
        .await
        .map_err(pg)?;
    let entries: Vec<MailboxEntry> = c
        .query(&s, &[&folder])
        .await
        .map_err(pg)?
        .iter()
        .map(entry_row)
        .collect();
    let recent_uid: i64 = c
        .query_one("SELECT recent_uid FROM folder WHERE id = $1", &[&folder])
        .await
        .map_err(pg)?
        .get(0);
    let keywords: BTreeSet<&str> = entries
        .iter()
        .flat_map(|e| e.keywords.iter().map(String::as_str))
        .collect();
    let keywords = keywords.into_iter().map(str::to_string).collect();
    Ok(MailboxSnapshot {
        folder: f,
        entries,
        keywords,
        recent_uid: recent_uid as u32,
    })
}

pub(crate) async fn changes_since(
    c: &impl GenericClient,
    folder: FolderId,
    since: u64,
) -> Result<FolderChanges> {
    let row = c
        .query_opt(
            "SELECT highest_modseq, uid_next FROM folder WHERE id = $1",
            &[&folder],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))?;
    let (highest, uid_next): (i64, i64) = (row.get(0), row.get(1));
    let since = since as i64;
    let s = c
        .prepare_cached(
            "SELECT uid, flags, keywords, modseq FROM item \
             WHERE folder_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .await
        .map_err(pg)?;
    let changed = c
        .query(&s, &[&folder, &since])
        .await
        .map_err(pg)?
        .iter()
        .map(entry_row)
        .collect();
    let s = c
        .prepare_cached(
            "SELECT uid FROM expunged WHERE folder_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .await
        .map_err(pg)?;
    let vanished = c
        .query(&s, &[&folder, &since])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u32)
        .collect();
    Ok(FolderChanges {
        highest_modseq: highest as u64,
        uid_next: uid_next as u32,
        changed,
        vanished,
    })
}

/// RFC 3501 §2.3.2: \Recent in exactly one session, on any node: the
/// folder row is locked while the claim is read and moved.
pub(crate) async fn claim_recent(
    c: &impl GenericClient,
    folder: FolderId,
    upto: u32,
) -> Result<u32> {
    let before: i64 = c
        .query_opt(
            "SELECT recent_uid FROM folder WHERE id = $1 FOR UPDATE",
            &[&folder],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))?
        .get(0);
    if (upto as i64) > before {
        c.execute(
            "UPDATE folder SET recent_uid = $2 WHERE id = $1",
            &[&folder, &(upto as i64)],
        )
        .await
        .map_err(pg)?;
    }
    Ok(before as u32)
}

/// The next modseq of a folder (RFC 7162 §3.1.1: strictly increasing per
/// mailbox); the folder row stays locked until commit.
async fn next_modseq(c: &impl GenericClient, folder: FolderId) -> Result<u64> {
    let s = c
        .prepare_cached(
            "UPDATE folder SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
        )
        .await
        .map_err(pg)?;
    c.query_opt(&s, &[&folder])
        .await
        .map_err(pg)?
        .map(|r| r.get::<_, i64>(0) as u64)
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))
}

/// An item as copy and expunge handle it: its entry, stored message, internal date.
type ItemRow = (MailboxEntry, i64, (i64, i32));

fn sorted(mut uids: Vec<u32>) -> Vec<u32> {
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The items of a folder whose UIDs are in `uids` (sorted, deduplicated).
async fn entries_in(
    c: &impl GenericClient,
    folder: FolderId,
    uids: &[u32],
) -> Result<Vec<ItemRow>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<i64> = uids.iter().map(|&u| u as i64).collect();
    let s = c
        .prepare_cached(
            "SELECT uid, flags, keywords, modseq, message_id, internal_date, internal_zone \
             FROM item WHERE folder_id = $1 AND uid = ANY($2) ORDER BY uid",
        )
        .await
        .map_err(pg)?;
    Ok(c.query(&s, &[&folder, &wanted])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            (
                entry_row(r),
                r.get(4),
                (r.get(5), r.get::<_, i64>(6) as i32),
            )
        })
        .collect())
}

pub(crate) async fn store_flags(
    c: &impl GenericClient,
    folder: FolderId,
    uids: Vec<u32>,
    op: FlagOp,
    flags: Flags,
    keywords: Vec<String>,
    unchanged_since: Option<u64>,
) -> Result<FlagOutcome> {
    let uids = sorted(uids);
    let mut out = FlagOutcome::default();
    // Lock the folder first: the rows read below are then the latest.
    folder_lock(c, folder).await?;
    for (entry, _, _) in entries_in(c, folder, &uids).await? {
        // RFC 7162 §3.1.3: a message modified after UNCHANGEDSINCE is not stored to.
        if let Some(since) = unchanged_since
            && entry.modseq > since
        {
            out.conflicts.push(entry.uid);
            continue;
        }
        let (new_flags, new_keywords) = op.apply(entry.flags, &entry.keywords, flags, &keywords);
        if new_flags == entry.flags && new_keywords == entry.keywords {
            continue;
        }
        let modseq = next_modseq(c, folder).await?;
        let s = c
            .prepare_cached(
                "UPDATE item SET flags = $3, keywords = $4, modseq = $5 WHERE folder_id = $1 AND uid = $2",
            )
            .await
            .map_err(pg)?;
        c.execute(
            &s,
            &[
                &folder,
                &(entry.uid as i64),
                &(new_flags.0 as i64),
                &new_keywords.join(" "),
                &(modseq as i64),
            ],
        )
        .await
        .map_err(pg)?;
        out.changed.push(MailboxEntry {
            uid: entry.uid,
            flags: new_flags,
            keywords: new_keywords,
            modseq,
        });
    }
    Ok(out)
}

/// Locks a folder's row until commit: the order every writer of a folder
/// follows, so that its items are read and changed by one writer at a time.
pub(crate) async fn folder_lock(c: &impl GenericClient, folder: FolderId) -> Result<()> {
    let s = c
        .prepare_cached("SELECT 1 FROM folder WHERE id = $1 FOR UPDATE")
        .await
        .map_err(pg)?;
    c.query_opt(&s, &[&folder])
        .await
        .map_err(pg)?
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))
}

/// Deletes a stored message once no item, queue entry or calendar object
/// refers to it: see [`release_messages`].
pub(crate) async fn release_message(c: &impl GenericClient, message: i64) -> Result<()> {
    release_messages(c, &[message]).await
}

/// Deletes stored messages, with their bytes and envelopes, once no item,
/// queue entry or calendar object refers to them.
///
/// Another transaction may be storing the same message (same bytes, same
/// row) at this moment: its upsert holds the row's lock until it commits,
/// and what it added is invisible to this statement's snapshot. So the rows
/// are locked first (waiting for that transaction), and the references are
/// counted by the next statement, whose snapshot then includes them. This
/// lock-then-count is what keeps items from pointing at a deleted message:
/// the schema has no foreign keys from item, blob and envelope to message
/// (migration 2 says why).
pub(crate) async fn release_messages(c: &impl GenericClient, messages: &[i64]) -> Result<()> {
    lock_messages(c, messages).await?;
    let s = c
        .prepare_cached(
            "WITH gone AS (\
               DELETE FROM message m WHERE m.id = ANY($1) \
                 AND NOT EXISTS (SELECT 1 FROM item WHERE item.message_id = m.id) \
                 AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message_id = m.id) \
                 AND NOT EXISTS (SELECT 1 FROM cal_object WHERE cal_object.message_id = m.id) \
               RETURNING m.id\
             ), b AS (DELETE FROM blob WHERE id IN (SELECT id FROM gone)) \
             DELETE FROM envelope WHERE message_id IN (SELECT id FROM gone)",
        )
        .await
        .map_err(pg)?;
    c.execute(&s, &[&messages]).await.map_err(pg)?;
    Ok(())
}

/// Locks stored message rows (in id order) until commit: see
/// [`release_message`].
pub(crate) async fn lock_messages(c: &impl GenericClient, messages: &[i64]) -> Result<()> {
    let s = c
        .prepare_cached("SELECT id FROM message WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .await
        .map_err(pg)?;
    c.query(&s, &[&messages]).await.map_err(pg)?;
    Ok(())
}

/// Removes items and leaves tombstones for VANISHED (RFC 7162 §3.2.5).
async fn remove_items(
    c: &impl GenericClient,
    folder: FolderId,
    items: &[ItemRow],
) -> Result<Vec<u32>> {
    let mut removed = Vec::with_capacity(items.len());
    for (entry, message, _) in items {
        let uid = entry.uid as i64;
        c.execute(
            "DELETE FROM item WHERE folder_id = $1 AND uid = $2",
            &[&folder, &uid],
        )
        .await
        .map_err(pg)?;
        let modseq = next_modseq(c, folder).await? as i64;
        c.execute(
            "INSERT INTO expunged (folder_id, uid, modseq) VALUES ($1, $2, $3) \
             ON CONFLICT (folder_id, uid) DO UPDATE SET modseq = excluded.modseq",
            &[&folder, &uid, &modseq],
        )
        .await
        .map_err(pg)?;
        release_message(c, *message).await?;
        removed.push(entry.uid);
    }
    Ok(removed)
}

/// Removes the listed UIDs; returns those removed and the folder's modseq after.
pub(crate) async fn expunge(
    c: &impl GenericClient,
    folder: FolderId,
    uids: Vec<u32>,
) -> Result<(Vec<u32>, u64)> {
    let uids = sorted(uids);
    folder_lock(c, folder).await?;
    let items = entries_in(c, folder, &uids).await?;
    let removed = remove_items(c, folder, &items).await?;
    let modseq = folder_head(c, folder).await?.highest_modseq;
    Ok((removed, modseq))
}

/// Appends an item for an already stored message: the folder's next UID and
/// next modseq (RFC 7162 §3.1.1), taken with the folder row locked until
/// commit, so that UIDs in a folder become visible in ascending order on
/// every node (RFC 3501 §2.3.1.1). The one place UIDs are given.
/// Returns (uid, modseq).
pub(crate) async fn add_item(
    c: &impl GenericClient,
    folder: FolderId,
    message: i64,
    flags: Flags,
    keywords: &[String],
    (internal_date, internal_zone): (i64, i32),
) -> Result<(u32, u64)> {
    let s = c
        .prepare_cached(
            "UPDATE folder SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 \
             WHERE id = $1 RETURNING uid_next - 1, highest_modseq",
        )
        .await
        .map_err(pg)?;
    let row = c
        .query_opt(&s, &[&folder])
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))?;
    let (uid, modseq): (i64, i64) = (row.get(0), row.get(1));
    let s = c
        .prepare_cached(
            "INSERT INTO item (folder_id, uid, message_id, flags, keywords, modseq, internal_date, \
             internal_zone, save_date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, extract(epoch FROM now())::bigint)",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &s,
        &[
            &folder,
            &uid,
            &message,
            &(flags.0 as i64),
            &keywords.join(" "),
            &modseq,
            &internal_date,
            &i64::from(internal_zone),
        ],
    )
    .await
    .map_err(pg)?;
    Ok((uid as u32, modseq as u64))
}

/// Stores a sealed message (once, by hash) and returns its row id. The
/// upsert locks the row, so a concurrent release of the same message waits
/// for this transaction and then finds it referenced.
pub(crate) async fn store_sealed(c: &impl GenericClient, raw: &[u8], m: &Sealed) -> Result<i64> {
    let s = c
        .prepare_cached(
            "INSERT INTO message (hash, size, kind, from_name, from_addr, subject, sent_date, content, \
               text_body, html_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (hash) DO UPDATE SET size = excluded.size \
             RETURNING id, (xmax = 0)",
        )
        .await
        .map_err(pg)?;
    let row = c
        .query_one(
            &s,
            &[
                &m.hash.as_slice(),
                &(raw.len() as i64),
                &m.kind,
                &m.from_name,
                &m.from_addr,
                &m.subject,
                &m.sent_date,
                &m.content,
                &m.text,
                &m.html,
            ],
        )
        .await
        .map_err(pg)?;
    let (id, inserted): (i64, bool) = (row.get(0), row.get(1));
    if inserted {
        let s = c
            .prepare_cached("INSERT INTO blob (id, data) VALUES ($1, $2)")
            .await
            .map_err(pg)?;
        c.execute(&s, &[&id, &raw]).await.map_err(pg)?;
    }
    Ok(id)
}

/// What a copy did: the outcome, the (uid, modseq) appended to the
/// destination, and the UIDs removed from the source (for a move).
pub(crate) type Copied = (CopyOutcome, Vec<(u32, u64)>, Vec<u32>);

pub(crate) async fn copy_messages(
    c: &impl GenericClient,
    from: FolderId,
    uids: Vec<u32>,
    to: FolderId,
    remove: bool,
) -> Result<Copied> {
    // Folder rows are locked in id order, so two moves in opposite
    // directions cannot deadlock.
    let (first, second) = if from <= to { (from, to) } else { (to, from) };
    folder_lock(c, first).await?;
    if second != first {
        folder_lock(c, second).await?;
    }
    let dest = folder_head(c, to).await?;
    let uids = sorted(uids);
    let items = entries_in(c, from, &uids).await?;
    let mut out = CopyOutcome {
        uid_validity: dest.uid_validity,
        pairs: Vec::with_capacity(items.len()),
    };
    let mut appended = Vec::with_capacity(items.len());
    for (entry, message, date) in &items {
        // RFC 9051 §6.4.7: the copy keeps flags and internal date.
        let (uid, modseq) = add_item(c, to, *message, entry.flags, &entry.keywords, *date).await?;
        out.pairs.push((entry.uid, uid));
        appended.push((uid, modseq));
    }
    let removed = if remove {
        remove_items(c, from, &items).await?
    } else {
        Vec::new()
    };
    Ok((out, appended, removed))
}

pub(crate) async fn messages_meta(
    c: &impl GenericClient,
    folder: FolderId,
    uids: Vec<u32>,
) -> Result<Vec<MessageMeta>> {
    let uids = sorted(uids);
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let wanted: BTreeSet<u32> = uids.iter().copied().collect();
    let s = c
        .prepare_cached(
            "SELECT i.uid, m.size, i.internal_date, m.sent_date, i.message_id, i.internal_zone, \
             i.save_date FROM item i JOIN message m ON m.id = i.message_id \
             WHERE i.folder_id = $1 AND i.uid BETWEEN $2 AND $3 ORDER BY i.uid",
        )
        .await
        .map_err(pg)?;
    Ok(c.query(&s, &[&folder, &(lo as i64), &(hi as i64)])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| MessageMeta {
            uid: r.get::<_, i64>(0) as u32,
            size: r.get::<_, i64>(1) as u64,
            internal_date: r.get(2),
            sent_date: r.get(3),
            message: MessageRef(r.get(4)),
            internal_zone: r.get::<_, i64>(5) as i32,
            save_date: r.get(6),
        })
        .filter(|m| wanted.contains(&m.uid))
        .collect())
}

pub(crate) async fn message_bytes(
    c: &impl GenericClient,
    message: MessageRef,
) -> Result<Option<Vec<u8>>> {
    let s = c
        .prepare_cached("SELECT data FROM blob WHERE id = $1")
        .await
        .map_err(pg)?;
    Ok(c.query_opt(&s, &[&message.0])
        .await
        .map_err(pg)?
        .map(|r| r.get(0)))
}

pub(crate) async fn usage(c: &impl GenericClient, user: UserId) -> Result<u64> {
    let row = c
        .query_one(
            "SELECT COALESCE(SUM(m.size), 0)::BIGINT FROM item i JOIN folder f ON f.id = i.folder_id \
             JOIN message m ON m.id = i.message_id WHERE f.user_id = $1",
            &[&user],
        )
        .await
        .map_err(pg)?;
    Ok(row.get::<_, i64>(0) as u64)
}

pub(crate) async fn rename_folder(
    c: &impl GenericClient,
    user: UserId,
    from: &str,
    to: &str,
) -> Result<Vec<(FolderId, Vec<u32>)>> {
    let to = valid_path(to)?.to_string();
    let source = find_folder(c, user, from)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("folder {from}")))?;
    if to.eq_ignore_ascii_case("inbox") || find_folder(c, user, &to).await?.is_some() {
        return Err(StoreError::Exists(format!("folder {to}")));
    }
    if source.role == Some(FolderRole::Inbox) {
        // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox
        // and leaves INBOX empty.
        create_path(c, user, &to, true).await?;
        let dest = insert_folder(c, user, &to, None).await?;
        let uids: Vec<u32> = c
            .query(
                "SELECT uid FROM item WHERE folder_id = $1 ORDER BY uid",
                &[&source.id],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u32)
            .collect();
        let (_, _, removed) = copy_messages(c, source.id, uids, dest, true).await?;
        return Ok(vec![(source.id, removed)]);
    }
    let old_key = path_key(&source.path);
    if path_key(&to).starts_with(&format!("{old_key}/")) {
        return Err(StoreError::Invalid(
            "cannot rename a folder into itself".into(),
        ));
    }
    create_path(c, user, &to, true).await?;
    // The folder and every folder below it.
    let below: Vec<(FolderId, String)> = c
        .query(
            "SELECT id, path FROM folder WHERE user_id = $1 AND starts_with(path_key, $2)",
            &[&user, &format!("{old_key}/")],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut renames = vec![(source.id, to.clone())];
    for (id, path) in below {
        let rest: String = path.chars().skip(source.path.chars().count()).collect();
        renames.push((id, format!("{to}{rest}")));
    }
    for (id, new_path) in &renames {
        c.execute(
            "UPDATE folder SET path = $2, path_key = $3 WHERE id = $1",
            &[id, new_path, &path_key(new_path)],
        )
        .await
        .map_err(pg)?;
    }
    // Subscriptions follow the folders, as Dovecot's do.
    let from_char = old_key.chars().count() as i32 + 1;
    c.execute(
        "UPDATE subscription SET path = $3 || substr(path, $4), path_key = $5 || substr(path_key, $4) \
         WHERE user_id = $1 AND (path_key = $2 OR starts_with(path_key, $2 || '/'))",
        &[&user, &old_key, &to, &from_char, &path_key(&to)],
    )
    .await
    .map_err(pg)?;
    Ok(Vec::new())
}

pub(crate) async fn delete_folder(
    c: &impl GenericClient,
    user: UserId,
    path: &str,
) -> Result<FolderId> {
    let f = find_folder(c, user, path)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("folder {path}")))?;
    if f.role.is_some() {
        return Err(StoreError::Invalid(format!(
            "{} is a system folder and cannot be deleted",
            f.path
        )));
    }
    let key = path_key(&f.path);
    let children: i64 = c
        .query_one(
            "SELECT count(*) FROM folder WHERE user_id = $1 AND starts_with(path_key, $2 || '/')",
            &[&user, &key],
        )
        .await
        .map_err(pg)?
        .get(0);
    if children > 0 {
        return Err(StoreError::Invalid(format!(
            "{} has subfolders; delete them first",
            f.path
        )));
    }
    folder_lock(c, f.id).await?;
    let messages: Vec<i64> = c
        .query(
            "SELECT DISTINCT message_id FROM item WHERE folder_id = $1",
            &[&f.id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    c.execute("DELETE FROM folder WHERE id = $1", &[&f.id])
        .await
        .map_err(pg)?;
    c.execute(
        "DELETE FROM metadata WHERE user_id = $1 AND folder_id = $2",
        &[&user, &f.id],
    )
    .await
    .map_err(pg)?;
    for m in messages {
        release_message(c, m).await?;
    }
    Ok(f.id)
}

pub(crate) async fn set_subscribed(
    c: &impl GenericClient,
    user: UserId,
    path: &str,
    on: bool,
) -> Result<()> {
    let path = valid_path(path)?;
    if on {
        c.execute(
            "INSERT INTO subscription (user_id, path_key, path) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, path_key) DO UPDATE SET path = excluded.path",
            &[&user, &path_key(path), &path],
        )
        .await
    } else {
        c.execute(
            "DELETE FROM subscription WHERE user_id = $1 AND path_key = $2",
            &[&user, &path_key(path)],
        )
        .await
    }
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn subscriptions(c: &impl GenericClient, user: UserId) -> Result<Vec<String>> {
    let s = c
        .prepare_cached("SELECT path FROM subscription WHERE user_id = $1 ORDER BY path_key")
        .await
        .map_err(pg)?;
    Ok(c.query(&s, &[&user])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Metadata entries of a folder (0: the user's server entries), by name.
pub(crate) async fn metadata(
    c: &impl GenericClient,
    user: UserId,
    folder: FolderId,
) -> Result<Vec<(String, Vec<u8>)>> {
    let s = c
        .prepare_cached(
            "SELECT name, value FROM metadata WHERE user_id = $1 AND folder_id = $2 ORDER BY name",
        )
        .await
        .map_err(pg)?;
    Ok(c.query(&s, &[&user, &folder])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Sets or removes metadata entries of a folder (0: server entries).
pub(crate) async fn set_metadata(
    c: &impl GenericClient,
    user: UserId,
    folder: FolderId,
    entries: &[(String, Option<Vec<u8>>)],
) -> Result<()> {
    for (name, value) in entries {
        let name = name.to_lowercase();
        match value {
            Some(v) => {
                c.execute(
                    "INSERT INTO metadata (user_id, folder_id, name, value) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, folder_id, name) DO UPDATE SET value = excluded.value",
                    &[&user, &folder, &name, v],
                )
                .await
            }
            None => {
                c.execute(
                    "DELETE FROM metadata WHERE user_id = $1 AND folder_id = $2 AND name = $3",
                    &[&user, &folder, &name],
                )
                .await
            }
        }
        .map_err(pg)?;
    }
    Ok(())
}
