//! The outbound queue of the embedded store.
use super::messages::in_read_tx;
use super::messages::release_message;
use super::{EmbeddedStore, backend, now};
use crate::rules::{RcptState, filter_domain, given};
use crate::{
    MessageRef, Notify, Outbound, OutboundRcpt, Queue, QueueDepth, QueueFilter, QueuedMessage,
    QueuedRcpt, RcptOutcome, Result,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// Adds a queue entry for a stored message (inside the delivery's transaction).
pub(crate) fn enqueue(conn: &Connection, message: i64, ob: &Outbound, created: i64) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO queue (message_id, mail_from, env_id, ret, smtputf8, eight_bit, sender_user, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            message,
            ob.mail_from,
            ob.env_id,
            ob.ret,
            ob.smtputf8,
            ob.eight_bit,
            ob.sender_user,
            created
        ])
    })
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    for r in &ob.rcpts {
        let domain = r
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_lowercase())
            .unwrap_or_default();
        conn.prepare_cached(
            "INSERT INTO queue_rcpt (queue_id, address, domain, orcpt, notify, next_attempt) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                r.address,
                domain,
                r.orcpt,
                r.notify.to_bits(),
                created
            ])
        })
        .map_err(backend)?;
    }
    Ok(id)
}

/// A row of `SELECT r.queue_id, {RCPT_COLUMNS}`: (queue id, recipient).
fn rcpt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, QueuedRcpt)> {
    Ok((
        r.get(0)?,
        QueuedRcpt {
            id: r.get(1)?,
            address: r.get(2)?,
            domain: r.get(3)?,
            orcpt: r.get(4)?,
            notify: Notify::from_bits(r.get(5)?),
            attempts: r.get::<_, i64>(6)? as u32,
            delay_warned: r.get(7)?,
            status: r.get(8)?,
            next_attempt: r.get(9)?,
            last_error: r.get(10)?,
        },
    ))
}

const RCPT_COLUMNS: &str = "r.id, r.address, r.domain, r.orcpt, r.notify, r.attempts, r.delay_warned, r.status, r.next_attempt, r.last_error";

/// Queue entries with the given recipients.
fn messages_with(conn: &Connection, rcpts: Vec<(i64, QueuedRcpt)>) -> Result<Vec<QueuedMessage>> {
    let mut by_queue: BTreeMap<i64, Vec<QueuedRcpt>> = BTreeMap::new();
    for (q, r) in rcpts {
        by_queue.entry(q).or_default().push(r);
    }
    let mut out = Vec::with_capacity(by_queue.len());
    for (id, rcpts) in by_queue {
        let row = conn
            .prepare_cached(
                "SELECT q.message_id, m.size, q.mail_from, q.env_id, q.ret, q.smtputf8, q.eight_bit, \
                   q.sender_user, q.created FROM queue q JOIN message m ON m.id = q.message_id WHERE q.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        Outbound {
                            mail_from: r.get(2)?,
                            env_id: r.get(3)?,
                            ret: r.get(4)?,
                            smtputf8: r.get(5)?,
                            eight_bit: r.get(6)?,
                            sender_user: r.get(7)?,
                            rcpts: Vec::new(),
                        },
                        r.get::<_, i64>(8)?,
                    ))
                })
                .optional()
            })
            .map_err(backend)?;
        let Some((message, size, mut outbound, created)) = row else {
            continue;
        };
        outbound.rcpts = rcpts
            .iter()
            .map(|r| OutboundRcpt {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                notify: r.notify,
            })
            .collect();
        out.push(QueuedMessage {
            id,
            message: MessageRef(message),
            size: size as u64,
            outbound,
            created,
            rcpts,
        });
    }
    Ok(out)
}

fn claim_due(conn: &Connection, now: i64, lease: i64, limit: usize) -> Result<Vec<QueuedMessage>> {
    let sql = format!(
        "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r \
         WHERE r.status = 'queued' AND r.next_attempt <= ?1 ORDER BY r.next_attempt, r.id LIMIT ?2"
    );
    let due: Vec<(i64, QueuedRcpt)> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map(params![now, limit as i64], rcpt_row)?.collect())
        .map_err(backend)?;
    // The lease: until it runs out nobody else takes these; if this runner
    // dies, they come due again then.
    for (_, r) in &due {
        conn.prepare_cached("UPDATE queue_rcpt SET next_attempt = ?2, leased = 1 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![r.id, now + lease]))
            .map_err(backend)?;
    }
    messages_with(conn, due)
}

fn record(conn: &Connection, outcomes: &[(i64, RcptOutcome)]) -> Result<()> {
    let mut touched = Vec::new();
    for (id, o) in outcomes {
        let queue: Option<i64> = conn
            .prepare_cached("SELECT queue_id FROM queue_rcpt WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(backend)?;
        let Some(queue) = queue else { continue };
        touched.push(queue);
        match o {
            RcptOutcome::Sent => conn
                .prepare_cached(
                    "UPDATE queue_rcpt SET status = 'sent', attempts = attempts + 1, leased = 0, last_error = NULL WHERE id = ?1",
                )
                .and_then(|mut s| s.execute([id])),
            RcptOutcome::Failed(e) => conn
                .prepare_cached(
                    "UPDATE queue_rcpt SET status = 'failed', attempts = attempts + 1, leased = 0, last_error = ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, e])),
            RcptOutcome::Retry { at, error, delay_warned } => conn
                .prepare_cached(
                    "UPDATE queue_rcpt SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3, leased = 0, \
                     delay_warned = delay_warned OR ?4 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, at, error, delay_warned])),
        }
        .map_err(backend)?;
    }
    touched.sort_unstable();
    touched.dedup();
    for q in touched {
        finish_if_done(conn, q)?;
    }
    Ok(())
}

/// Removes a queue entry whose recipients are all sent or failed (a held
/// recipient keeps it, as a waiting one does).
fn finish_if_done(conn: &Connection, queue: i64) -> Result<()> {
    let pending: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM queue_rcpt WHERE queue_id = ?1 AND status IN ('queued', 'held')",
        )
        .and_then(|mut s| s.query_row([queue], |r| r.get(0)))
        .map_err(backend)?;
    if pending > 0 {
        return Ok(());
    }
    let message: Option<i64> = conn
        .prepare_cached("DELETE FROM queue WHERE id = ?1 RETURNING message_id")
        .and_then(|mut s| s.query_row([queue], |r| r.get(0)).optional())
        .map_err(backend)?;
    if let Some(m) = message {
        release_message(conn, m)?;
    }
    Ok(())
}

/// The recipients of one queue entry, or of all. Two statements, not one
/// with `?1 IS NULL OR …`: a plan made without looking at the bound value
/// (see schema::configure) could not use the index for one entry, and
/// would read every recipient in the queue to find one entry's.
fn all_rcpts(conn: &Connection, queue: Option<i64>) -> Result<Vec<(i64, QueuedRcpt)>> {
    match queue {
        Some(id) => conn
            .prepare_cached(&format!(
                "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r WHERE r.queue_id = ?1 \
                 ORDER BY r.id"
            ))
            .and_then(|mut s| s.query_map([id], rcpt_row)?.collect()),
        None => conn
            .prepare_cached(&format!(
                "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r ORDER BY r.queue_id, r.id"
            ))
            .and_then(|mut s| s.query_map([], rcpt_row)?.collect()),
    }
    .map_err(backend)
}

/// A recipient state as a condition on `queue_rcpt r` (what
/// [`Queue::queue_depth`] counts it by).
fn state_sql(state: RcptState) -> &'static str {
    match state {
        RcptState::Due => "r.status = 'queued' AND r.leased = 0 AND r.attempts = 0",
        RcptState::Deferred => "r.status = 'queued' AND r.leased = 0 AND r.attempts > 0",
        RcptState::InFlight => "r.status = 'queued' AND r.leased = 1",
        RcptState::Held => "r.status = 'held'",
    }
}

/// A page of the queue entries matching `filter`, and how many match, in
/// one snapshot.
fn queue_page(
    conn: &Connection,
    filter: &QueueFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<QueuedMessage>, u64)> {
    let state = given(filter.state.as_deref())
        .map(RcptState::parse)
        .transpose()?;
    // Only the conditions given, as in `find_users`, as conditions on the
    // entry (`q`) and on a recipient (`r`).
    let mut entry = Vec::new();
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(t) = filter.created_before {
        params.push(t.into());
        entry.push(format!("q.created < ?{}", params.len()));
    }
    if let Some(sender) = given(filter.sender.as_deref()) {
        params.push(sender.to_ascii_lowercase().into());
        entry.push(format!("instr(lower(q.mail_from), ?{}) > 0", params.len()));
    }
    let mut rcpt = Vec::new();
    if let Some(state) = state {
        rcpt.push(state_sql(state).to_string());
    }
    if let Some(domain) = filter_domain(filter.domain.as_deref()) {
        params.push(domain.into());
        rcpt.push(format!("r.domain = ?{}", params.len()));
    }
    let (entry, rcpt) = (entry.join(" AND "), rcpt.join(" AND "));
    // Recipient conditions are read in an index (the state's or the
    // domain's), never as a probe per entry: an index on (state, …,
    // queue_id) probed by queue id reads every recipient in a state whose
    // condition is a range (deferred: attempts > 0) for each entry.
    let (count_sql, page_sql) = match (entry.is_empty(), rcpt.is_empty()) {
        (true, true) => (
            "SELECT count(*) FROM queue q".to_string(),
            "SELECT q.id FROM queue q ORDER BY q.id".to_string(),
        ),
        (false, true) => (
            format!("SELECT count(*) FROM queue q WHERE {entry}"),
            format!("SELECT q.id FROM queue q WHERE {entry} ORDER BY q.id"),
        ),
        // The entries' ids straight from the recipients' index: in its
        // order when the state is an equality (due), so that a page
        // stops early.
        (true, false) => (
            format!("SELECT count(DISTINCT r.queue_id) FROM queue_rcpt r WHERE {rcpt}"),
            format!(
                "SELECT DISTINCT r.queue_id FROM queue_rcpt r WHERE {rcpt} ORDER BY r.queue_id"
            ),
        ),
        (false, false) => {
            let cond =
                format!("{entry} AND q.id IN (SELECT r.queue_id FROM queue_rcpt r WHERE {rcpt})");
            (
                format!("SELECT count(*) FROM queue q WHERE {cond}"),
                format!("SELECT q.id FROM queue q WHERE {cond} ORDER BY q.id"),
            )
        }
    };
    in_read_tx(conn, || {
        let total: i64 = conn
            .prepare_cached(&count_sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0)))
            .map_err(backend)?;
        let n = params.len();
        let mut page_params = params.clone();
        page_params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        page_params.push(i64::try_from(offset).unwrap_or(i64::MAX).into());
        let ids: Vec<i64> = conn
            .prepare_cached(&format!("{page_sql} LIMIT ?{} OFFSET ?{}", n + 1, n + 2))
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(page_params.iter()), |r| r.get(0))?
                    .collect()
            })
            .map_err(backend)?;
        let mut rcpts = Vec::new();
        for id in ids {
            rcpts.extend(all_rcpts(conn, Some(id))?);
        }
        Ok((messages_with(conn, rcpts)?, total as u64))
    })
}

#[async_trait]
impl Queue for EmbeddedStore {
    async fn queue_depth(&self) -> Result<QueueDepth> {
        self.read(|conn| {
            in_read_tx(conn, || {
                // Counted in the state index (queue_rcpt_state) alone, a
                // range of it each, not in the recipients' rows.
                let mut depth = conn
                    .prepare_cached(
                        "SELECT \
                           (SELECT count(*) FROM queue_rcpt \
                            WHERE status = 'queued' AND leased = 0 AND attempts = 0), \
                           (SELECT count(*) FROM queue_rcpt \
                            WHERE status = 'queued' AND leased = 0 AND attempts > 0), \
                           (SELECT count(*) FROM queue_rcpt WHERE status = 'queued' AND leased = 1), \
                           (SELECT count(*) FROM queue_rcpt WHERE status = 'held')",
                    )
                    .and_then(|mut s| {
                        s.query_row([], |r| {
                            Ok(QueueDepth {
                                due: r.get::<_, i64>(0)? as u64,
                                deferred: r.get::<_, i64>(1)? as u64,
                                in_flight: r.get::<_, i64>(2)? as u64,
                                held: r.get::<_, i64>(3)? as u64,
                                oldest: None,
                            })
                        })
                    })
                    .map_err(backend)?;
                // The oldest entry with a recipient waiting: entries in
                // order of age (queue_created) until one has. `+r.status`
                // keeps SQLite from reading an entry's recipients in the
                // state index (all the queued ones) rather than by its id.
                depth.oldest = conn
                    .prepare_cached(
                        "SELECT q.created FROM queue q WHERE EXISTS \
                           (SELECT 1 FROM queue_rcpt r WHERE r.queue_id = q.id AND +r.status = 'queued') \
                         ORDER BY q.created LIMIT 1",
                    )
                    .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
                    .map_err(backend)?;
                Ok(depth)
            })
        })
        .await
    }

    async fn claim_due(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<QueuedMessage>> {
        self.write(move |conn| claim_due(conn, now, lease, limit))
            .await
    }

    async fn record(&self, outcomes: Vec<(i64, RcptOutcome)>) -> Result<()> {
        self.write(move |conn| record(conn, &outcomes)).await
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        self.read(move |conn| {
            let rcpts = all_rcpts(conn, None)?;
            messages_with(conn, rcpts)
        })
        .await
    }

    async fn queue_page(
        &self,
        filter: QueueFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<QueuedMessage>, u64)> {
        self.read(move |conn| queue_page(conn, &filter, offset, limit))
            .await
    }

    async fn queue_get(&self, id: i64) -> Result<Option<QueuedMessage>> {
        self.read(move |conn| {
            let rcpts = all_rcpts(conn, Some(id))?;
            Ok(messages_with(conn, rcpts)?.pop())
        })
        .await
    }

    async fn queue_remove(&self, id: i64) -> Result<bool> {
        self.write(move |conn| {
            let message: Option<i64> = conn
                .prepare_cached("DELETE FROM queue WHERE id = ?1 RETURNING message_id")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(backend)?;
            if let Some(m) = message {
                release_message(conn, m)?;
            }
            Ok(message.is_some())
        })
        .await
    }

    async fn release_leases(&self) -> Result<usize> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE queue_rcpt SET leased = 0, next_attempt = min(next_attempt, ?1) \
                 WHERE leased = 1 AND status = 'queued'",
            )
            .and_then(|mut s| s.execute([now()]))
            .map_err(backend)
        })
        .await
    }

    async fn queue_retry(&self, id: Option<i64>) -> Result<usize> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE queue_rcpt SET next_attempt = ?2 WHERE status = 'queued' AND leased = 0 \
                 AND (?1 IS NULL OR queue_id = ?1)",
            )
            .and_then(|mut s| s.execute(params![id, now()]))
            .map_err(backend)
        })
        .await
    }

    async fn queue_hold(&self, id: Option<i64>, hold: bool) -> Result<usize> {
        self.write(move |conn| {
            if hold {
                conn.prepare_cached(
                    "UPDATE queue_rcpt SET status = 'held' WHERE status = 'queued' AND leased = 0 \
                     AND (?1 IS NULL OR queue_id = ?1)",
                )
                .and_then(|mut s| s.execute([id]))
            } else {
                conn.prepare_cached(
                    "UPDATE queue_rcpt SET status = 'queued', next_attempt = ?2 WHERE status = 'held' \
                     AND (?1 IS NULL OR queue_id = ?1)",
                )
                .and_then(|mut s| s.execute(params![id, now()]))
            }
            .map_err(backend)
        })
        .await
    }
}
