//! [`Calendars`] for the PostgreSQL store: calendar objects, their MIME
//! items, and the time they cover (`span_lo`/`span_hi`, under a B-tree
//! where the embedded store has an R*Tree).
//!
//! Several nodes may change one calendar at once: every change locks the
//! user's Calendar (or Tasks) folder row before it reads what is held, so
//! that each merge sees the latest object and two changes to one object
//! never overwrite each other. Putting the item there takes that lock anyway.
use super::messages::{add_item, expunge, release_message, store_sealed};
use super::{PgStore, in_tx, now, pg};
use crate::content::{CalendarRow, calendar_entry, calendar_listed};
use crate::content::{Key, seal};
use crate::{
    CalendarEntry, CalendarOutcome, CalendarUpdate, CalendarWrite, Calendars, MergeResult, Result,
    StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use postgate_types::{Change, ChangeKind, FolderId, FolderRole, ItemKind, UserId};
use std::collections::HashMap;

const COLUMNS: &str =
    "c.id, c.user_id, c.kind, c.folder_id, c.item_uid, c.span_lo, c.span_hi, m.content";

fn row(r: &tokio_postgres::Row) -> CalendarRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
    )
}

async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<CalendarEntry>> {
    let s = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&s, params)
        .await
        .map_err(pg)?
        .iter()
        .map(|r| calendar_entry(row(r)))
        .collect()
}

async fn by_uid(
    c: &impl GenericClient,
    user: UserId,
    kind: ItemKind,
    uid: &str,
) -> Result<Option<CalendarEntry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
         WHERE c.user_id = $1 AND c.kind = $2 AND c.uid = $3"
    );
    Ok(query(c, &sql, &[&user, &kind.as_str(), &uid])
        .await?
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

/// The user's folder for `kind`, its row locked until commit (see the
/// module's comment); `None` if the user has none.
async fn lock_folder(
    c: &impl GenericClient,
    user: UserId,
    kind: ItemKind,
) -> Result<Option<FolderId>> {
    let s = c
        .prepare_cached("SELECT id FROM folder WHERE user_id = $1 AND role = $2 FOR UPDATE")
        .await
        .map_err(pg)?;
    Ok(c.query_opt(&s, &[&user, &role_of(kind).as_str()])
        .await
        .map_err(pg)?
        .map(|r| r.get(0)))
}

/// Stores a calendar object's MIME item in `folder` (the user's folder for
/// `kind`, if any); returns (folder, uid, message, listing).
async fn put_item(
    c: &impl GenericClient,
    user: UserId,
    kind: ItemKind,
    folder: Option<FolderId>,
    w: CalendarWrite,
    at: i64,
    changes: &mut Vec<Change>,
) -> Result<(FolderId, u32, i64, String)> {
    let role = role_of(kind);
    let folder =
        folder.ok_or_else(|| StoreError::NotFound(format!("{role} folder of user {user}")))?;
    let sealed = seal(&w.raw, w.content, Key::BytesAndContent)?;
    let message = store_sealed(c, &w.raw, &sealed).await?;
    let (uid, modseq) = add_item(c, folder, message, w.flags, &[], (at, 0)).await?;
    changes.push(Change {
        user,
        folder,
        modseq,
        uid,
        kind: ChangeKind::Append,
    });
    Ok((folder, uid, message, w.listing))
}

async fn drop_item(
    c: &impl GenericClient,
    user: UserId,
    folder: FolderId,
    uid: u32,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let (removed, modseq) = expunge(c, folder, vec![uid]).await?;
    changes.extend(removed.into_iter().map(|uid| Change {
        user,
        folder,
        modseq,
        uid,
        kind: ChangeKind::Expunge,
    }));
    Ok(())
}

async fn message_of(c: &impl GenericClient, id: i64) -> Result<i64> {
    let s = c
        .prepare_cached("SELECT message_id FROM cal_object WHERE id = $1")
        .await
        .map_err(pg)?;
    Ok(c.query_one(&s, &[&id]).await.map_err(pg)?.get(0))
}

/// Runs one update in the open transaction; `read_back`: give the object
/// as stored in the outcome (a delivery does not need it).
async fn apply(
    c: &impl GenericClient,
    u: CalendarUpdate,
    at: i64,
    changes: &mut Vec<Change>,
    read_back: bool,
) -> Result<CalendarOutcome> {
    let folder = lock_folder(c, u.user, u.kind).await?;
    let current = by_uid(c, u.user, u.kind, &u.uid).await?;
    // The merge runs code that reads untrusted text: it must not take the
    // node down with it.
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
            let (lo, hi) = (span.map(|s| s.0), span.map(|s| s.1));
            let (folder, item_uid, message, listing) =
                put_item(c, u.user, u.kind, folder, *w, at, changes).await?;
            let item_uid = item_uid as i64;
            let id = match &current {
                Some(cur) => {
                    let old = message_of(c, cur.id).await?;
                    let s = c
                        .prepare_cached(
                            "UPDATE cal_object SET folder_id = $2, item_uid = $3, message_id = $4, \
                             span_lo = $5, span_hi = $6, listing = $7 WHERE id = $1",
                        )
                        .await
                        .map_err(pg)?;
                    c.execute(
                        &s,
                        &[&cur.id, &folder, &item_uid, &message, &lo, &hi, &listing],
                    )
                    .await
                    .map_err(pg)?;
                    drop_item(c, u.user, cur.folder, cur.item_uid, changes).await?;
                    release_message(c, old).await?;
                    cur.id
                }
                None => {
                    let s = c
                        .prepare_cached(
                            "INSERT INTO cal_object (user_id, kind, uid, folder_id, item_uid, message_id, \
                             span_lo, span_hi, listing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                             RETURNING id",
                        )
                        .await
                        .map_err(pg)?;
                    c.query_one(
                        &s,
                        &[
                            &u.user,
                            &u.kind.as_str(),
                            &u.uid,
                            &folder,
                            &item_uid,
                            &message,
                            &lo,
                            &hi,
                            &listing,
                        ],
                    )
                    .await
                    .map_err(pg)?
                    .get(0)
                }
            };
            let entry = if read_back {
                let sql = format!(
                    "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id WHERE c.id = $1"
                );
                query(c, &sql, &[&id]).await?.into_iter().next()
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
                let old = message_of(c, cur.id).await?;
                let s = c
                    .prepare_cached("DELETE FROM cal_object WHERE id = $1")
                    .await
                    .map_err(pg)?;
                c.execute(&s, &[&cur.id]).await.map_err(pg)?;
                drop_item(c, u.user, cur.folder, cur.item_uid, changes).await?;
                release_message(c, old).await?;
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

/// Runs one update of a delivery inside its own savepoint of the caller's
/// transaction: if it fails, it leaves no trace (its changes are taken back
/// out of `changes` too) and the rest of the transaction goes on. The
/// outcome does not carry the stored object. `received_at` is the internal
/// date of the item it stores. The caller sends and publishes `changes`
/// with the rest of its own. `_store` is the node the delivery runs on.
///
/// A [`StoreError::Conflict`] means the merge's basis changed; a failure
/// [`retryable`](super::retryable) (a deadlock) is returned like any other,
/// its savepoint rolled back.
pub(crate) async fn apply_in_savepoint(
    tx: &mut deadpool_postgres::Transaction<'_>,
    update: CalendarUpdate,
    received_at: i64,
    changes: &mut Vec<Change>,
) -> Result<CalendarOutcome> {
    let sp = tx.savepoint("calendar_update").await.map_err(pg)?;
    let mine = changes.len();
    let result = match apply(&sp, update, received_at, changes, false).await {
        Ok(o) => sp.commit().await.map_err(pg).map(|()| o),
        Err(e) => {
            if let Err(r) = sp.rollback().await {
                tracing::warn!(error = %r, "store: rolling back a calendar change");
            }
            Err(e)
        }
    };
    if result.is_err() {
        changes.truncate(mine);
    }
    result
}

#[async_trait]
impl Calendars for PgStore {
    async fn update_calendar(&self, updates: Vec<CalendarUpdate>) -> Result<Vec<CalendarOutcome>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let (outcomes, changes) = in_tx!(self, |tx| {
            let mut changes = Vec::new();
            let mut outcomes = Vec::with_capacity(updates.len());
            // Cloned: a transaction that deadlocks runs again from the start.
            for u in updates.iter().cloned() {
                outcomes.push(apply(&tx, u, at, &mut changes, true).await?);
            }
            self.notify(&tx, &changes).await?;
            Ok::<_, StoreError>((outcomes, changes))
        })?;
        self.publish(changes);
        Ok(outcomes)
    }

    async fn calendar_entry(&self, user: UserId, id: i64) -> Result<Option<CalendarEntry>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
             WHERE c.id = $1 AND c.user_id = $2"
        );
        Ok(query(&c, &sql, &[&id, &user]).await?.into_iter().next())
    }

    async fn calendar_by_uid(
        &self,
        user: UserId,
        kind: ItemKind,
        uid: &str,
    ) -> Result<Option<CalendarEntry>> {
        let c = self.client().await?;
        by_uid(&c, user, kind, uid).await
    }

    async fn calendar_entries(&self, user: UserId, kind: ItemKind) -> Result<Vec<CalendarEntry>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM cal_object c JOIN message m ON m.id = c.message_id \
             WHERE c.user_id = $1 AND c.kind = $2 ORDER BY c.id"
        );
        query(&c, &sql, &[&user, &kind.as_str()]).await
    }

    async fn calendar_range_keys(
        &self,
        user: UserId,
        kind: ItemKind,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u32)>> {
        let c = self.client().await?;
        // The B-tree over (user_id, kind, span_lo, span_hi): objects without
        // a span are in no range, as they are not in the embedded R*Tree.
        let s = c
            .prepare_cached(
                "SELECT id, item_uid FROM cal_object \
                 WHERE user_id = $1 AND kind = $2 AND span_lo <= $3 AND span_hi >= $4",
            )
            .await
            .map_err(pg)?;
        Ok(c.query(&s, &[&user, &kind.as_str(), &to, &from])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1) as u32))
            .collect())
    }

    async fn calendar_listings(&self, user: UserId, ids: Vec<i64>) -> Result<Vec<CalendarEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let c = self.client().await?;
        let s = c
            .prepare_cached(
                "SELECT id, user_id, kind, folder_id, item_uid, span_lo, span_hi, listing \
                 FROM cal_object WHERE id = ANY($1) AND user_id = $2",
            )
            .await
            .map_err(pg)?;
        let found: HashMap<i64, CalendarRow> = c
            .query(&s, &[&ids, &user])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                let r = row(r);
                (r.0, r)
            })
            .collect();
        // In the order asked, as the embedded store answers.
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = found.get(&id).cloned() {
                out.push(calendar_listed(r)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! Needs a server: `POSTGATE_TEST_PG` (`.ci/pg-cluster start`); skipped
    //! without it.
    use super::*;
    use crate::CalendarMerge;
    use postgate_types::{CalendarComponent, CalendarObject, Flags, ItemBody, ItemContent};
    use std::sync::Arc;

    #[derive(Debug)]
    struct Fixed(MergeResult);

    impl CalendarMerge for Fixed {
        fn merge(&self, _: Option<&CalendarEntry>) -> MergeResult {
            self.0.clone()
        }
    }

    fn put(uid: &str, listing: Option<&str>) -> MergeResult {
        let object = CalendarObject {
            uid: uid.into(),
            master: Some(CalendarComponent {
                summary: Some(uid.into()),
                ..Default::default()
            }),
            ical: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
            ..Default::default()
        };
        let mut w = CalendarWrite::new(
            ItemContent {
                body: ItemBody::Appointment(Box::new(object)),
                ..ItemContent::default()
            },
            format!("Subject: {uid}\r\n\r\n{uid}\r\n").into_bytes(),
            Some((10, 20)),
            Flags::default(),
        );
        if let Some(l) = listing {
            w.listing = l.into();
        }
        MergeResult::Put(Box::new(w), "put".into())
    }

    fn update(user: UserId, uid: &str, m: MergeResult) -> CalendarUpdate {
        CalendarUpdate {
            user,
            kind: ItemKind::Appointment,
            uid: uid.into(),
            merge: Arc::new(Fixed(m)),
        }
    }

    #[tokio::test]
    async fn a_failed_calendar_change_rolls_back_only_its_savepoint() {
        let Ok(admin) = std::env::var("POSTGATE_TEST_PG") else {
            eprintln!("skipped: POSTGATE_TEST_PG is not set");
            return;
        };
        let name = format!("caltest_{}_{}", std::process::id(), now());
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let store = PgStore::open(&crate::postgres::PgOptions {
            url,
            pool_size: 2,
            node: "a".into(),
            ca_file: None,
        })
        .await
        .unwrap();
        let mut client = store.client().await.unwrap();
        let (user, folder): (i64, i64) = {
            let r = client
                .query_one(
                    "WITH d AS (INSERT INTO domain (name, created) VALUES ('example.org', 0) RETURNING id), \
                     p AS (INSERT INTO post_office (domain_id, name) SELECT id, 'main' FROM d RETURNING id, domain_id), \
                     u AS (INSERT INTO users (domain_id, post_office_id, local_part, local_key, display_name, created) \
                           SELECT domain_id, id, 'alice', 'alice', 'Alice', 0 FROM p RETURNING id) \
                     INSERT INTO folder (user_id, path, path_key, role, uid_validity) \
                     SELECT id, 'Calendar', 'calendar', 'calendar', 1 FROM u RETURNING user_id, id",
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        let before = Change {
            user,
            folder: 999,
            modseq: 1,
            uid: 1,
            kind: ChangeKind::Append,
        };
        let mut changes = vec![before];
        let mut tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO meta (key, value) VALUES ('outer', 1)", &[])
            .await
            .unwrap();
        let o = apply_in_savepoint(
            &mut tx,
            update(user, "a", put("a", None)),
            1234,
            &mut changes,
        )
        .await
        .unwrap();
        assert!(o.changed && o.entry.is_none(), "no read-back in a delivery");
        assert_eq!(changes.len(), 2);
        // Fails in the database after its item was added: the savepoint goes.
        let r = apply_in_savepoint(
            &mut tx,
            update(user, "b", put("b", Some("nul\0"))),
            1234,
            &mut changes,
        )
        .await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
        assert_eq!(changes.len(), 2, "its changes are taken back");
        let r = apply_in_savepoint(
            &mut tx,
            update(user, "c", MergeResult::Conflict("no".into())),
            1234,
            &mut changes,
        )
        .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        let r = apply_in_savepoint(
            &mut tx,
            update(user + 1, "d", put("d", None)),
            1234,
            &mut changes,
        )
        .await;
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
        let o = apply_in_savepoint(
            &mut tx,
            update(user, "e", put("e", None)),
            1234,
            &mut changes,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(changes[0], before);
        assert_eq!(
            changes[1..]
                .iter()
                .map(|c| (c.folder, c.uid))
                .collect::<Vec<_>>(),
            [(folder, 1), (folder, 2)],
            "the failed change's UID is given again"
        );
        tx.commit().await.unwrap();
        let outer: i64 = client
            .query_one("SELECT count(*) FROM meta WHERE key = 'outer'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(outer, 1, "the transaction's own work is committed");
        let items: Vec<(i64, i64)> = client
            .query(
                "SELECT uid, internal_date FROM item WHERE folder_id = $1 ORDER BY uid",
                &[&folder],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(items, [(1, 1234), (2, 1234)]);
        let uids: Vec<String> = client
            .query("SELECT uid FROM cal_object ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(uids, ["a", "e"]);
        let messages: i64 = client
            .query_one("SELECT count(*) FROM message", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(messages, 2);
        drop(client);
        drop(store);
        let _ = c
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await;
    }
}
