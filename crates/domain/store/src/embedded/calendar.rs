//! [`Calendars`] for the embedded store: calendar objects, their MIME items,
//! and the R*Tree of the time they cover.
use super::messages::{add_item, expunge, release_message, store_sealed};
use super::writer::exec;
use super::{EmbeddedStore, backend, now};
use crate::content::{CalendarRow, calendar_entry, calendar_listed};
use crate::content::{Key, seal};
use crate::{
    CalendarEntry, CalendarOutcome, CalendarUpdate, CalendarWrite, Calendars, MergeResult, Result,
    StoreError,
};
use async_trait::async_trait;
use postgate_types::{Change, ChangeKind, FolderId, FolderRole, ItemKind, UserId};
use rusqlite::{Connection, OptionalExtension, params};

const COLUMNS: &str =
    "c.id, c.user_id, c.kind, c.folder_id, c.item_uid, c.span_lo, c.span_hi, m.content";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CalendarRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn query(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<CalendarEntry>> {
    let rows: Vec<CalendarRow> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_map(params, row)?.collect())
        .map_err(backend)?;
    rows.into_iter().map(calendar_entry).collect()
}

fn by_uid(
    conn: &Connection,
    user: UserId,
    kind: ItemKind,
    uid: &str,
) -> Result<Option<CalendarEntry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
         WHERE c.user_id = ?1 AND c.kind = ?2 AND c.uid = ?3"
    );
    Ok(query(conn, &sql, params![user, kind.as_str(), uid])?
        .into_iter()
        .next())
}

fn role_of(kind: ItemKind) -> FolderRole {
    if kind == ItemKind::Task {
        FolderRole::Tasks
    } else {
        FolderRole::Calendar
    }
}

/// The R*Tree's time coordinates: 32-bit floats, which it rounds outwards.
fn coord(t: i64) -> f64 {
    t as f64
}

fn index(conn: &Connection, id: i64, user: UserId, span: Option<(i64, i64)>) -> Result<()> {
    conn.prepare_cached("DELETE FROM cal_span WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(backend)?;
    if let Some((lo, hi)) = span {
        conn.prepare_cached(
            "INSERT INTO cal_span (id, user_lo, user_hi, lo, hi) VALUES (?1, ?2, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![id, user as f64, coord(lo), coord(hi)]))
        .map_err(backend)?;
    }
    Ok(())
}

/// Stores a calendar object's MIME item; returns (folder, uid, message).
fn put_item(
    conn: &Connection,
    user: UserId,
    kind: ItemKind,
    w: CalendarWrite,
    at: i64,
    changes: &mut Vec<Change>,
) -> Result<(FolderId, u32, i64, String)> {
    let role = role_of(kind);
    let folder: FolderId = conn
        .prepare_cached("SELECT id FROM folder WHERE user_id = ?1 AND role = ?2")
        .and_then(|mut s| {
            s.query_row(params![user, role.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("{role} folder of user {user}")))?;
    let sealed = seal(&w.raw, w.content, Key::BytesAndContent)?;
    let message = store_sealed(conn, &w.raw, &sealed)?;
    let (uid, modseq) = add_item(conn, folder, message, w.flags, &[], (at, 0))?;
    changes.push(Change {
        user,
        folder,
        modseq,
        uid,
        kind: ChangeKind::Append,
    });
    Ok((folder, uid, message, w.listing))
}

fn drop_item(
    conn: &Connection,
    user: UserId,
    folder: FolderId,
    uid: u32,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let (removed, modseq) = expunge(conn, folder, vec![uid])?;
    changes.extend(removed.into_iter().map(|uid| Change {
        user,
        folder,
        modseq,
        uid,
        kind: ChangeKind::Expunge,
    }));
    Ok(())
}

fn message_of(conn: &Connection, id: i64) -> Result<i64> {
    conn.prepare_cached("SELECT message_id FROM cal_object WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(backend)
}

/// Runs one update in the open transaction; `read_back`: give the object
/// as stored in the outcome (a delivery does not need it).
fn apply(
    conn: &Connection,
    u: CalendarUpdate,
    at: i64,
    changes: &mut Vec<Change>,
    read_back: bool,
) -> Result<CalendarOutcome> {
    let current = by_uid(conn, u.user, u.kind, &u.uid)?;
    // The merge runs code that reads untrusted text: it must not take the
    // writer down with it.
    let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        u.merge.merge(current.as_ref())
    }))
    .unwrap_or_else(|_| MergeResult::Keep("the calendar change failed".into()));
    match decision {
        MergeResult::Conflict(note) => Err(StoreError::Conflict(note)),
        MergeResult::Keep(note) => Ok(CalendarOutcome {
            user: u.user,
            entry: current,
            changed: false,
            note,
        }),
        MergeResult::Put(w, note) => {
            let span = w.span;
            let (folder, item_uid, message, listing) =
                put_item(conn, u.user, u.kind, *w, at, changes)?;
            let id = match &current {
                Some(cur) => {
                    let old = message_of(conn, cur.id)?;
                    conn.prepare_cached(
                        "UPDATE cal_object SET folder_id = ?2, item_uid = ?3, message_id = ?4, \
                         span_lo = ?5, span_hi = ?6, listing = ?7 WHERE id = ?1",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            cur.id,
                            folder,
                            item_uid,
                            message,
                            span.map(|s| s.0),
                            span.map(|s| s.1),
                            listing
                        ])
                    })
                    .map_err(backend)?;
                    drop_item(conn, u.user, cur.folder, cur.item_uid, changes)?;
                    release_message(conn, old)?;
                    cur.id
                }
                None => {
                    conn.prepare_cached(
                        "INSERT INTO cal_object (user_id, kind, uid, folder_id, item_uid, message_id, \
                         span_lo, span_hi, listing) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            u.user,
                            u.kind.as_str(),
                            u.uid,
                            folder,
                            item_uid,
                            message,
                            span.map(|s| s.0),
                            span.map(|s| s.1),
                            listing
                        ])
                    })
                    .map_err(backend)?;
                    conn.last_insert_rowid()
                }
            };
            index(conn, id, u.user, span)?;
            let entry = if read_back {
                let sql = format!(
                    "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id WHERE c.id = ?1"
                );
                query(conn, &sql, [id])?.into_iter().next()
            } else {
                None
            };
            Ok(CalendarOutcome {
                user: u.user,
                entry,
                changed: true,
                note,
            })
        }
        MergeResult::Remove(note) => {
            if let Some(cur) = &current {
                let old = message_of(conn, cur.id)?;
                conn.prepare_cached("DELETE FROM cal_object WHERE id = ?1")
                    .and_then(|mut s| s.execute([cur.id]))
                    .map_err(backend)?;
                drop_item(conn, u.user, cur.folder, cur.item_uid, changes)?;
                release_message(conn, old)?;
            }
            Ok(CalendarOutcome {
                user: u.user,
                entry: None,
                changed: current.is_some(),
                note,
            })
        }
    }
}

/// Runs one update of a delivery inside its own savepoint: if it fails, it
/// leaves no trace and the rest of the transaction goes on. The outcome
/// does not carry the stored object.
pub(crate) fn apply_in_savepoint(
    conn: &Connection,
    u: CalendarUpdate,
    at: i64,
    changes: &mut Vec<Change>,
) -> Result<CalendarOutcome> {
    conn.execute_batch("SAVEPOINT calendar_update")
        .map_err(backend)?;
    let mine = changes.len();
    match apply(conn, u, at, changes, false) {
        Ok(o) => {
            conn.execute_batch("RELEASE calendar_update")
                .map_err(backend)?;
            Ok(o)
        }
        Err(e) => {
            changes.truncate(mine);
            let _ = exec(conn, "ROLLBACK TO calendar_update")
                .and_then(|()| exec(conn, "RELEASE calendar_update"));
            Err(e)
        }
    }
}

#[async_trait]
impl Calendars for EmbeddedStore {
    async fn update_calendar(&self, updates: Vec<CalendarUpdate>) -> Result<Vec<CalendarOutcome>> {
        let at = now();
        let (outcomes, changes) = self
            .write(move |conn| {
                let mut changes = Vec::new();
                let mut outcomes = Vec::with_capacity(updates.len());
                for u in updates {
                    outcomes.push(apply(conn, u, at, &mut changes, true)?);
                }
                Ok((outcomes, changes))
            })
            .await?;
        self.inner.feed.publish(changes);
        Ok(outcomes)
    }

    async fn calendar_entry(&self, user: UserId, id: i64) -> Result<Option<CalendarEntry>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
                 WHERE c.id = ?1 AND c.user_id = ?2"
            );
            Ok(query(conn, &sql, params![id, user])?.into_iter().next())
        })
        .await
    }

    async fn calendar_by_uid(
        &self,
        user: UserId,
        kind: ItemKind,
        uid: &str,
    ) -> Result<Option<CalendarEntry>> {
        let uid = uid.to_string();
        self.read(move |conn| by_uid(conn, user, kind, &uid)).await
    }

    async fn calendar_entries(&self, user: UserId, kind: ItemKind) -> Result<Vec<CalendarEntry>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
                 WHERE c.user_id = ?1 AND c.kind = ?2 ORDER BY c.id"
            );
            query(conn, &sql, params![user, kind.as_str()])
        })
        .await
    }

    async fn calendar_range_keys(
        &self,
        user: UserId,
        kind: ItemKind,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u32)>> {
        self.read(move |conn| {
            // CROSS JOIN: the R*Tree first. Left to itself, the planner reads
            // every object of the user by (user_id, kind) and probes the
            // R*Tree for each: a scan of the calendar.
            conn.prepare_cached(
                "SELECT c.id, c.item_uid FROM cal_span s CROSS JOIN cal_object c ON c.id = s.id \
                 WHERE s.user_lo <= ?1 AND s.user_hi >= ?1 AND s.lo <= ?3 AND s.hi >= ?2 \
                   AND c.user_id = ?4 AND c.kind = ?5 AND c.span_lo <= ?6 AND c.span_hi >= ?7",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![
                        user as f64,
                        coord(from),
                        coord(to),
                        user,
                        kind.as_str(),
                        to,
                        from
                    ],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u32)),
                )?
                .collect()
            })
            .map_err(backend)
        })
        .await
    }

    async fn calendar_listings(&self, user: UserId, ids: Vec<i64>) -> Result<Vec<CalendarEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, user_id, kind, folder_id, item_uid, span_lo, span_hi, listing \
                     FROM cal_object WHERE id = ?1 AND user_id = ?2",
                )
                .map_err(backend)?;
            for id in ids {
                if let Some(r) = stmt
                    .query_row(params![id, user], row)
                    .optional()
                    .map_err(backend)?
                {
                    out.push(calendar_listed(r)?);
                }
            }
            Ok(out)
        })
        .await
    }
}
