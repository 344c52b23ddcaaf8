//! Folder and message operations behind IMAP: snapshots, changes since a
//! modseq, flags, expunge, copy and move, append, rename, delete, subscriptions.
//! Each function runs on one connection inside the caller's transaction.
use super::backend;
use super::directory::next_uid_validity;
use crate::content::{Sealed, valid_path};
use crate::{
    CopyOutcome, FlagOp, FlagOutcome, Folder, FolderChanges, FolderHead, MailboxEntry,
    MailboxSnapshot, MessageMeta, MessageRef, NewMessage, Result, StoreError,
};
use postgate_types::{Flags, FolderId, FolderRole, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;

pub(crate) const FOLDER_COLUMNS: &str = "f.id, f.user_id, f.path, f.role, f.uid_validity, f.uid_next, \
     f.highest_modseq, \
     EXISTS (SELECT 1 FROM subscription s WHERE s.user_id = f.user_id AND s.path_key = f.path_key), \
     (SELECT count(*) FROM item WHERE folder_id = f.id), \
     (SELECT count(*) FROM item WHERE folder_id = f.id AND flags & 1 = 0)";

pub(crate) fn folder_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Folder> {
    Ok(Folder {
        id: r.get(0)?,
        user: r.get(1)?,
        path: r.get(2)?,
        role: r
            .get::<_, Option<String>>(3)?
            .and_then(|s| FolderRole::parse(&s)),
        uid_validity: r.get::<_, i64>(4)? as u32,
        uid_next: r.get::<_, i64>(5)? as u32,
        highest_modseq: r.get::<_, i64>(6)? as u64,
        subscribed: r.get(7)?,
        total: r.get::<_, i64>(8)? as u64,
        unseen: r.get::<_, i64>(9)? as u64,
    })
}

/// Stores a sealed message (once, by hash) and returns its row id.
pub(crate) fn store_sealed(conn: &Connection, raw: &[u8], m: &Sealed) -> Result<i64> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM message WHERE hash = ?1")
        .and_then(|mut s| s.query_row([m.hash.as_ref()], |r| r.get(0)).optional())
        .map_err(backend)?;
    if let Some(id) = existing {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO message (hash, size, kind, from_name, from_addr, subject, sent_date, content, \
           text_body, html_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.hash.as_ref(),
            raw.len() as i64,
            m.kind,
            m.from_name,
            m.from_addr,
            m.subject,
            m.sent_date,
            m.content,
            m.text,
            m.html,
        ])
    })
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO blob (id, data) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![id, raw]))
        .map_err(backend)?;
    Ok(id)
}

pub(crate) fn find_folder(conn: &Connection, user: UserId, path: &str) -> Result<Option<Folder>> {
    // RFC 9051 §5.1: INBOX is case-insensitive. The post office treats every
    // folder name that way, as its other clients do.
    let sql = if path.eq_ignore_ascii_case("inbox") {
        format!(
            "SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = ?1 AND f.role = 'inbox' AND ?2 = ?2"
        )
    } else {
        format!("SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.user_id = ?1 AND f.path_key = ?2")
    };
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![user, path.to_lowercase()], folder_row)
                .optional()
        })
        .map_err(backend)
}

/// A folder by id.
pub(crate) fn folder_by_id(conn: &Connection, id: FolderId) -> Result<Folder> {
    let sql = format!("SELECT {FOLDER_COLUMNS} FROM folder f WHERE f.id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id], folder_row).optional())
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {id}")))
}

/// A folder's owner, UIDVALIDITY and HIGHEST_MODSEQ: what writes need,
/// without [`folder_by_id`]'s message counts (a scan of the folder).
pub(crate) fn folder_head(conn: &Connection, id: FolderId) -> Result<FolderHead> {
    conn.prepare_cached("SELECT user_id, uid_validity, highest_modseq FROM folder WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(FolderHead {
                    user: r.get(0)?,
                    uid_validity: r.get::<_, i64>(1)? as u32,
                    highest_modseq: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()
        })
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {id}")))
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxEntry> {
    let keywords: String = r.get(2)?;
    Ok(MailboxEntry {
        uid: r.get::<_, i64>(0)? as u32,
        flags: Flags(r.get::<_, i64>(1)? as u32),
        keywords: split_keywords(&keywords),
        modseq: r.get::<_, i64>(3)? as u64,
    })
}

fn split_keywords(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn join_keywords(k: &[String]) -> String {
    k.join(" ")
}

/// Runs `f` inside one read transaction, so that what it reads is one snapshot.
pub(crate) fn in_read_tx<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.prepare_cached("BEGIN")
        .and_then(|mut s| s.execute([]))
        .map_err(backend)?;
    let out = f();
    let _ = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]));
    out
}

pub(crate) fn snapshot(conn: &Connection, folder: FolderId) -> Result<MailboxSnapshot> {
    in_read_tx(conn, || {
        let f = folder_by_id(conn, folder)?;
        let entries: Vec<MailboxEntry> = conn
            .prepare_cached(
                "SELECT uid, flags, keywords, modseq FROM item WHERE folder_id = ?1 ORDER BY uid",
            )
            .and_then(|mut s| s.query_map([folder], entry_row)?.collect())
            .map_err(backend)?;
        let recent_uid: i64 = conn
            .prepare_cached("SELECT recent_uid FROM folder WHERE id = ?1")
            .and_then(|mut s| s.query_row([folder], |r| r.get(0)))
            .map_err(backend)?;
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
    })
}

pub(crate) fn changes_since(
    conn: &Connection,
    folder: FolderId,
    since: u64,
) -> Result<FolderChanges> {
    in_read_tx(conn, || {
        let (highest, uid_next): (i64, i64) = conn
            .prepare_cached("SELECT highest_modseq, uid_next FROM folder WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([folder], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))?;
        let changed = conn
            .prepare_cached(
                "SELECT uid, flags, keywords, modseq FROM item \
                 WHERE folder_id = ?1 AND modseq > ?2 ORDER BY uid",
            )
            .and_then(|mut s| {
                s.query_map(params![folder, since as i64], entry_row)?
                    .collect()
            })
            .map_err(backend)?;
        let vanished = conn
            .prepare_cached(
                "SELECT uid FROM expunged WHERE folder_id = ?1 AND modseq > ?2 ORDER BY uid",
            )
            .and_then(|mut s| {
                s.query_map(params![folder, since as i64], |r| {
                    Ok(r.get::<_, i64>(0)? as u32)
                })?
                .collect()
            })
            .map_err(backend)?;
        Ok(FolderChanges {
            highest_modseq: highest as u64,
            uid_next: uid_next as u32,
            changed,
            vanished,
        })
    })
}

pub(crate) fn claim_recent(conn: &Connection, folder: FolderId, upto: u32) -> Result<u32> {
    let before: i64 = conn
        .prepare_cached("SELECT recent_uid FROM folder WHERE id = ?1")
        .and_then(|mut s| s.query_row([folder], |r| r.get(0)).optional())
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {folder}")))?;
    if (upto as i64) > before {
        conn.prepare_cached("UPDATE folder SET recent_uid = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![folder, upto as i64]))
            .map_err(backend)?;
    }
    Ok(before as u32)
}

/// The next modseq of a folder (RFC 7162 §3.1.1: strictly increasing per mailbox).
fn next_modseq(conn: &Connection, folder: FolderId) -> Result<u64> {
    conn.prepare_cached(
        "UPDATE folder SET highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING highest_modseq",
    )
    .and_then(|mut s| s.query_row([folder], |r| r.get::<_, i64>(0)))
    .map(|m| m as u64)
    .map_err(backend)
}

/// An item as copy and expunge handle it: its entry, stored message, internal date.
type ItemRow = (MailboxEntry, i64, (i64, i32));

/// The entries of a folder whose UIDs are in `uids` (sorted, deduplicated).
fn entries_in(conn: &Connection, folder: FolderId, uids: &[u32]) -> Result<Vec<ItemRow>> {
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let wanted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, flags, keywords, modseq, message_id, internal_date, internal_zone FROM item \
             WHERE folder_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![folder, lo as i64, hi as i64], |r| {
            Ok((
                entry_row(r)?,
                r.get::<_, i64>(4)?,
                (r.get::<_, i64>(5)?, r.get::<_, i32>(6)?),
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let row = row.map_err(backend)?;
        if wanted.contains(&row.0.uid) {
            out.push(row);
        }
    }
    Ok(out)
}

fn sorted(mut uids: Vec<u32>) -> Vec<u32> {
    uids.sort_unstable();
    uids.dedup();
    uids
}

pub(crate) fn store_flags(
    conn: &Connection,
    folder: FolderId,
    uids: Vec<u32>,
    op: FlagOp,
    flags: Flags,
    keywords: Vec<String>,
    unchanged_since: Option<u64>,
) -> Result<FlagOutcome> {
    let uids = sorted(uids);
    let mut out = FlagOutcome::default();
    for (entry, _, _) in entries_in(conn, folder, &uids)? {
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
        let modseq = next_modseq(conn, folder)?;
        conn.prepare_cached(
            "UPDATE item SET flags = ?3, keywords = ?4, modseq = ?5 WHERE folder_id = ?1 AND uid = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                folder,
                entry.uid as i64,
                new_flags.0 as i64,
                join_keywords(&new_keywords),
                modseq as i64
            ])
        })
        .map_err(backend)?;
        out.changed.push(MailboxEntry {
            uid: entry.uid,
            flags: new_flags,
            keywords: new_keywords,
            modseq,
        });
    }
    Ok(out)
}

/// Deletes a stored message once no item or queue entry refers to it.
pub(crate) fn release_message(conn: &Connection, message: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM message WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM item WHERE message_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM cal_object WHERE message_id = ?1)",
    )
    .and_then(|mut s| s.execute([message]))
    .map_err(backend)?;
    Ok(())
}

/// Removes items and leaves tombstones for VANISHED (RFC 7162 §3.2.5).
fn remove_items(conn: &Connection, folder: FolderId, items: &[ItemRow]) -> Result<Vec<u32>> {
    let mut removed = Vec::with_capacity(items.len());
    for (entry, message, _) in items {
        conn.prepare_cached("DELETE FROM item WHERE folder_id = ?1 AND uid = ?2")
            .and_then(|mut s| s.execute(params![folder, entry.uid as i64]))
            .map_err(backend)?;
        let modseq = next_modseq(conn, folder)?;
        conn.prepare_cached(
            "INSERT INTO expunged (folder_id, uid, modseq) VALUES (?1, ?2, ?3) \
             ON CONFLICT (folder_id, uid) DO UPDATE SET modseq = excluded.modseq",
        )
        .and_then(|mut s| s.execute(params![folder, entry.uid as i64, modseq as i64]))
        .map_err(backend)?;
        release_message(conn, *message)?;
        removed.push(entry.uid);
    }
    Ok(removed)
}

pub(crate) fn expunge(
    conn: &Connection,
    folder: FolderId,
    uids: Vec<u32>,
) -> Result<(Vec<u32>, u64)> {
    let uids = sorted(uids);
    let items = entries_in(conn, folder, &uids)?;
    let removed = remove_items(conn, folder, &items)?;
    let modseq = folder_head(conn, folder)?.highest_modseq;
    Ok((removed, modseq))
}

/// Appends an item for an already stored message: the folder's next UID and
/// next modseq (RFC 7162 §3.1.1: every change gets a modseq greater than any
/// before in the mailbox). The one place UIDs are given. Returns (uid, modseq).
pub(crate) fn add_item(
    conn: &Connection,
    folder: FolderId,
    message: i64,
    flags: Flags,
    keywords: &[String],
    (internal_date, internal_zone): (i64, i32),
) -> Result<(u32, u64)> {
    let (uid, modseq): (i64, i64) = conn
        .prepare_cached(
            "UPDATE folder SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 \
             WHERE id = ?1 RETURNING uid_next - 1, highest_modseq",
        )
        .and_then(|mut s| s.query_row([folder], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(backend)?;
    conn.prepare_cached(
        "INSERT INTO item (folder_id, uid, message_id, flags, keywords, modseq, internal_date, \
         internal_zone, save_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, unixepoch())",
    )
    .and_then(|mut s| {
        s.execute(params![
            folder,
            uid,
            message,
            flags.0 as i64,
            join_keywords(keywords),
            modseq,
            internal_date,
            internal_zone
        ])
    })
    .map_err(backend)?;
    Ok((uid as u32, modseq as u64))
}

/// What a copy did: the outcome, the (uid, modseq) appended to the
/// destination, and the UIDs removed from the source (for a move).
pub(crate) type Copied = (CopyOutcome, Vec<(u32, u64)>, Vec<u32>);

pub(crate) fn copy_messages(
    conn: &Connection,
    from: FolderId,
    uids: Vec<u32>,
    to: FolderId,
    remove: bool,
) -> Result<Copied> {
    let dest = folder_head(conn, to)?;
    let uids = sorted(uids);
    let items = entries_in(conn, from, &uids)?;
    let mut out = CopyOutcome {
        uid_validity: dest.uid_validity,
        pairs: Vec::with_capacity(items.len()),
    };
    let mut appended = Vec::with_capacity(items.len());
    for (entry, message, date) in &items {
        // RFC 9051 §6.4.7: the copy keeps flags and internal date.
        let (uid, modseq) = add_item(conn, to, *message, entry.flags, &entry.keywords, *date)?;
        out.pairs.push((entry.uid, uid));
        appended.push((uid, modseq));
    }
    let removed = if remove {
        remove_items(conn, from, &items)?
    } else {
        Vec::new()
    };
    Ok((out, appended, removed))
}

pub(crate) fn append(
    conn: &Connection,
    folder: FolderId,
    m: NewMessage,
    sealed: Sealed,
) -> Result<(u32, u32, u64)> {
    let f = folder_head(conn, folder)?;
    let message = store_sealed(conn, &m.raw, &sealed)?;
    let (uid, modseq) = add_item(
        conn,
        folder,
        message,
        m.flags,
        &m.keywords,
        (m.internal_date, m.internal_zone),
    )?;
    Ok((f.uid_validity, uid, modseq))
}

pub(crate) fn messages_meta(
    conn: &Connection,
    folder: FolderId,
    uids: Vec<u32>,
) -> Result<Vec<MessageMeta>> {
    let uids = sorted(uids);
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let wanted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut stmt = conn
        .prepare_cached(
            "SELECT i.uid, m.size, i.internal_date, m.sent_date, i.message_id, i.internal_zone, \
             i.save_date FROM item i JOIN message m ON m.id = i.message_id \
             WHERE i.folder_id = ?1 AND i.uid BETWEEN ?2 AND ?3 ORDER BY i.uid",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![folder, lo as i64, hi as i64], |r| {
            Ok(MessageMeta {
                uid: r.get::<_, i64>(0)? as u32,
                size: r.get::<_, i64>(1)? as u64,
                internal_date: r.get(2)?,
                sent_date: r.get(3)?,
                message: MessageRef(r.get(4)?),
                internal_zone: r.get(5)?,
                save_date: r.get(6)?,
            })
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let m = row.map_err(backend)?;
        if wanted.contains(&m.uid) {
            out.push(m);
        }
    }
    Ok(out)
}

pub(crate) fn message_bytes(conn: &Connection, message: MessageRef) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM blob WHERE id = ?1")
        .and_then(|mut s| s.query_row([message.0], |r| r.get(0)).optional())
        .map_err(backend)
}

pub(crate) fn usage(conn: &Connection, user: UserId) -> Result<u64> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(m.size), 0) FROM item i JOIN folder f ON f.id = i.folder_id \
         JOIN message m ON m.id = i.message_id WHERE f.user_id = ?1",
    )
    .and_then(|mut s| s.query_row([user], |r| r.get::<_, i64>(0)))
    .map(|n| n as u64)
    .map_err(backend)
}

fn path_key(p: &str) -> String {
    p.to_lowercase()
}

/// Creates the missing parents of `path` (RFC 9051 §6.3.4, §6.3.6).
fn create_parents(conn: &Connection, user: UserId, path: &str) -> Result<()> {
    let segments: Vec<&str> = path.split('/').collect();
    for depth in 1..segments.len() {
        let prefix = segments[..depth].join("/");
        if find_folder(conn, user, &prefix)?.is_none() {
            conn.execute(
                "INSERT INTO folder (user_id, path, path_key, uid_validity) VALUES (?1, ?2, ?3, ?4)",
                params![user, prefix, path_key(&prefix), next_uid_validity(conn)?],
            )
            .map_err(backend)?;
        }
    }
    Ok(())
}

pub(crate) fn rename_folder(
    conn: &Connection,
    user: UserId,
    from: &str,
    to: &str,
) -> Result<Vec<(FolderId, Vec<u32>)>> {
    let to = valid_path(to)?.to_string();
    let source = find_folder(conn, user, from)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {from}")))?;
    if to.eq_ignore_ascii_case("inbox") || find_folder(conn, user, &to)?.is_some() {
        return Err(StoreError::Exists(format!("folder {to}")));
    }
    if source.role == Some(FolderRole::Inbox) {
        // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox
        // and leaves INBOX empty.
        create_parents(conn, user, &to)?;
        conn.execute(
            "INSERT INTO folder (user_id, path, path_key, uid_validity) VALUES (?1, ?2, ?3, ?4)",
            params![user, to, path_key(&to), next_uid_validity(conn)?],
        )
        .map_err(backend)?;
        let dest = conn.last_insert_rowid();
        let uids: Vec<u32> = conn
            .prepare("SELECT uid FROM item WHERE folder_id = ?1 ORDER BY uid")
            .and_then(|mut s| {
                s.query_map([source.id], |r| Ok(r.get::<_, i64>(0)? as u32))?
                    .collect()
            })
            .map_err(backend)?;
        let (_, _, removed) = copy_messages(conn, source.id, uids, dest, true)?;
        return Ok(vec![(source.id, removed)]);
    }
    let old_key = path_key(&source.path);
    if path_key(&to).starts_with(&format!("{old_key}/")) {
        return Err(StoreError::Invalid(
            "cannot rename a folder into itself".into(),
        ));
    }
    create_parents(conn, user, &to)?;
    // The folder and every folder below it.
    let below: Vec<(FolderId, String)> = conn
        .prepare("SELECT id, path FROM folder WHERE user_id = ?1 AND substr(path_key, 1, ?2) = ?3")
        .and_then(|mut s| {
            s.query_map(
                params![
                    user,
                    old_key.chars().count() as i64 + 1,
                    format!("{old_key}/")
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect()
        })
        .map_err(backend)?;
    let mut renames = vec![(source.id, to.clone())];
    for (id, path) in below {
        let rest: String = path.chars().skip(source.path.chars().count()).collect();
        renames.push((id, format!("{to}{rest}")));
    }
    for (id, new_path) in &renames {
        conn.execute(
            "UPDATE folder SET path = ?2, path_key = ?3 WHERE id = ?1",
            params![id, new_path, path_key(new_path)],
        )
        .map_err(backend)?;
    }
    // Subscriptions follow the folders, as Dovecot's do.
    conn.execute(
        "UPDATE subscription SET path = ?3 || substr(path, ?4), path_key = ?5 || substr(path_key, ?4) \
         WHERE user_id = ?1 AND (path_key = ?2 OR substr(path_key, 1, length(?2) + 1) = ?2 || '/')",
        params![user, old_key, to, old_key.chars().count() as i64 + 1, path_key(&to)],
    )
    .map_err(backend)?;
    Ok(Vec::new())
}

pub(crate) fn delete_folder(conn: &Connection, user: UserId, path: &str) -> Result<FolderId> {
    let f = find_folder(conn, user, path)?
        .ok_or_else(|| StoreError::NotFound(format!("folder {path}")))?;
    if f.role.is_some() {
        return Err(StoreError::Invalid(format!(
            "{} is a system folder and cannot be deleted",
            f.path
        )));
    }
    let key = path_key(&f.path);
    let children: i64 = conn
        .query_row(
            "SELECT count(*) FROM folder WHERE user_id = ?1 AND substr(path_key, 1, length(?2) + 1) = ?2 || '/'",
            params![user, key],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if children > 0 {
        return Err(StoreError::Invalid(format!(
            "{} has subfolders; delete them first",
            f.path
        )));
    }
    let messages: Vec<i64> = conn
        .prepare("SELECT DISTINCT message_id FROM item WHERE folder_id = ?1")
        .and_then(|mut s| s.query_map([f.id], |r| r.get(0))?.collect())
        .map_err(backend)?;
    conn.execute("DELETE FROM folder WHERE id = ?1", [f.id])
        .map_err(backend)?;
    conn.execute(
        "DELETE FROM metadata WHERE user_id = ?1 AND folder_id = ?2",
        params![user, f.id],
    )
    .map_err(backend)?;
    for m in messages {
        release_message(conn, m)?;
    }
    Ok(f.id)
}

/// Metadata entries of a folder (0: the user's server entries), by name.
pub(crate) fn metadata(
    conn: &Connection,
    user: UserId,
    folder: FolderId,
) -> Result<Vec<(String, Vec<u8>)>> {
    conn.prepare_cached(
        "SELECT name, value FROM metadata WHERE user_id = ?1 AND folder_id = ?2 ORDER BY name",
    )
    .and_then(|mut s| {
        s.query_map(params![user, folder], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .map_err(backend)
}

/// Sets or removes metadata entries of a folder (0: server entries).
pub(crate) fn set_metadata(
    conn: &Connection,
    user: UserId,
    folder: FolderId,
    entries: &[(String, Option<Vec<u8>>)],
) -> Result<()> {
    for (name, value) in entries {
        let name = name.to_lowercase();
        match value {
            Some(v) => conn.execute(
                "INSERT INTO metadata (user_id, folder_id, name, value) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id, folder_id, name) DO UPDATE SET value = excluded.value",
                params![user, folder, name, v],
            ),
            None => conn.execute(
                "DELETE FROM metadata WHERE user_id = ?1 AND folder_id = ?2 AND name = ?3",
                params![user, folder, name],
            ),
        }
        .map_err(backend)?;
    }
    Ok(())
}

pub(crate) fn set_subscribed(conn: &Connection, user: UserId, path: &str, on: bool) -> Result<()> {
    let path = valid_path(path)?;
    if on {
        conn.execute(
            "INSERT INTO subscription (user_id, path_key, path) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id, path_key) DO UPDATE SET path = excluded.path",
            params![user, path_key(path), path],
        )
    } else {
        conn.execute(
            "DELETE FROM subscription WHERE user_id = ?1 AND path_key = ?2",
            params![user, path_key(path)],
        )
    }
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn subscriptions(conn: &Connection, user: UserId) -> Result<Vec<String>> {
    conn.prepare_cached("SELECT path FROM subscription WHERE user_id = ?1 ORDER BY path_key")
        .and_then(|mut s| s.query_map([user], |r| r.get(0))?.collect())
        .map_err(backend)
}
