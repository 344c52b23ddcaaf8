//! [`Queue`](crate::Queue) for the PostgreSQL store.
use super::messages::release_message;
use super::{Param, PgStore, in_tx, now, param_refs, pg};
use crate::rules::{RcptState, filter_domain, given};
use crate::{
    MessageRef, Notify, Outbound, OutboundRcpt, Queue, QueueDepth, QueueFilter, QueuedMessage,
    QueuedRcpt, RcptOutcome, Result,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::Row;

/// Adds a queue entry for a stored message (inside the delivery's transaction).
pub(crate) async fn enqueue(
    c: &impl GenericClient,
    message: i64,
    ob: &Outbound,
    created: i64,
) -> Result<i64> {
    let sender_user = ob.sender_user;
    let id: i64 = c
        .query_one(
            "INSERT INTO queue (message_id, mail_from, env_id, ret, smtputf8, eight_bit, sender_user, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &message,
                &ob.mail_from,
                &ob.env_id,
                &ob.ret,
                &ob.smtputf8,
                &ob.eight_bit,
                &sender_user,
                &created,
            ],
        )
        .await
        .map_err(pg)?
        .get(0);
    let insert = c
        .prepare_cached(
            "INSERT INTO queue_rcpt (queue_id, address, domain, orcpt, notify, next_attempt) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(pg)?;
    for r in &ob.rcpts {
        let domain = r
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_lowercase())
            .unwrap_or_default();
        c.execute(
            &insert,
            &[
                &id,
                &r.address,
                &domain,
                &r.orcpt,
                &r.notify.to_bits(),
                &created,
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(id)
}

/// A row of `SELECT r.queue_id, {RCPT_COLUMNS}`: (queue id, recipient).
fn rcpt_row(r: &Row) -> (i64, QueuedRcpt) {
    (
        r.get(0),
        QueuedRcpt {
            id: r.get(1),
            address: r.get(2),
            domain: r.get(3),
            orcpt: r.get(4),
            notify: Notify::from_bits(r.get(5)),
            attempts: r.get::<_, i64>(6) as u32,
            delay_warned: r.get(7),
            status: r.get(8),
            next_attempt: r.get(9),
            last_error: r.get(10),
        },
    )
}

const RCPT_COLUMNS: &str = "r.id, r.address, r.domain, r.orcpt, r.notify, r.attempts, r.delay_warned, r.status, r.next_attempt, r.last_error";

/// Queue entries with the given recipients (those whose entry is gone are
/// left out), in queue id order.
async fn messages_with(
    c: &impl GenericClient,
    rcpts: Vec<(i64, QueuedRcpt)>,
) -> Result<Vec<QueuedMessage>> {
    let mut by_queue: BTreeMap<i64, Vec<QueuedRcpt>> = BTreeMap::new();
    for (q, r) in rcpts {
        by_queue.entry(q).or_default().push(r);
    }
    if by_queue.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = by_queue.keys().copied().collect();
    let s = c
        .prepare_cached(
            "SELECT q.id, q.message_id, m.size, q.mail_from, q.env_id, q.ret, q.smtputf8, q.eight_bit, \
               q.sender_user, q.created FROM queue q JOIN message m ON m.id = q.message_id \
             WHERE q.id = ANY($1)",
        )
        .await
        .map_err(pg)?;
    let mut heads: HashMap<i64, (i64, i64, Outbound, i64)> = c
        .query(&s, &[&ids])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                (
                    r.get::<_, i64>(1),
                    r.get::<_, i64>(2),
                    Outbound {
                        mail_from: r.get(3),
                        env_id: r.get(4),
                        ret: r.get(5),
                        smtputf8: r.get(6),
                        eight_bit: r.get(7),
                        sender_user: r.get(8),
                        rcpts: Vec::new(),
                    },
                    r.get::<_, i64>(9),
                ),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(by_queue.len());
    for (id, rcpts) in by_queue {
        let Some((message, size, mut outbound, created)) = heads.remove(&id) else {
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

/// Claims due recipients for `node`. `FOR UPDATE SKIP LOCKED`: a recipient
/// another node is claiming right now is passed over, and one it has just
/// claimed no longer matches once its row is read again, so no two nodes
/// ever hold the same recipient. A lease that ran out (its node died
/// mid-delivery) is due like any other recipient.
async fn claim_due(
    c: &impl GenericClient,
    node: &str,
    now: i64,
    lease: i64,
    limit: usize,
) -> Result<Vec<QueuedMessage>> {
    // RETURNING gives the recipient as it was before the claim (its
    // next_attempt the one that made it due), as the embedded store does.
    let sql = format!(
        "WITH due AS ( \
           SELECT id, next_attempt FROM queue_rcpt \
           WHERE status = 'queued' AND next_attempt <= $1 \
           ORDER BY next_attempt, id LIMIT $2 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE queue_rcpt r SET next_attempt = $3, leased = TRUE, lease_node = $4 \
         FROM due WHERE r.id = due.id \
         RETURNING r.queue_id, {RCPT_COLUMNS_BEFORE}"
    );
    let s = c.prepare_cached(&sql).await.map_err(pg)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut due: Vec<(i64, QueuedRcpt)> = c
        .query(&s, &[&now, &limit, &(now.saturating_add(lease)), &node])
        .await
        .map_err(pg)?
        .iter()
        .map(rcpt_row)
        .collect();
    due.sort_by_key(|(_, r)| (r.next_attempt, r.id));
    messages_with(c, due).await
}

/// [`RCPT_COLUMNS`] with `next_attempt` from before the claim (`due`).
const RCPT_COLUMNS_BEFORE: &str = "r.id, r.address, r.domain, r.orcpt, r.notify, r.attempts, r.delay_warned, r.status, due.next_attempt, r.last_error";

async fn record(c: &impl GenericClient, outcomes: &[(i64, RcptOutcome)]) -> Result<()> {
    let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
    let s = c
        .prepare_cached(
            "SELECT DISTINCT queue_id FROM queue_rcpt WHERE id = ANY($1) ORDER BY queue_id",
        )
        .await
        .map_err(pg)?;
    let queues: Vec<i64> = c
        .query(&s, &[&ids])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The queue rows are locked (in id order, so two runners cannot
    // deadlock) before their recipients change: two nodes settling the last
    // recipients of one message then run one after the other, and the
    // second sees that none is left.
    let lock = c
        .prepare_cached("SELECT 1 FROM queue WHERE id = $1 FOR UPDATE")
        .await
        .map_err(pg)?;
    for q in &queues {
        c.query_opt(&lock, &[q]).await.map_err(pg)?;
    }
    let queue_of = c
        .prepare_cached("SELECT queue_id FROM queue_rcpt WHERE id = $1")
        .await
        .map_err(pg)?;
    let mut touched = Vec::new();
    for (id, o) in outcomes {
        let Some(row) = c.query_opt(&queue_of, &[id]).await.map_err(pg)? else {
            continue;
        };
        touched.push(row.get::<_, i64>(0));
        match o {
            RcptOutcome::Sent => {
                let s = c
                    .prepare_cached(
                        "UPDATE queue_rcpt SET status = 'sent', attempts = attempts + 1, leased = FALSE, \
                         lease_node = NULL, last_error = NULL WHERE id = $1",
                    )
                    .await
                    .map_err(pg)?;
                c.execute(&s, &[id]).await
            }
            RcptOutcome::Failed(e) => {
                let s = c
                    .prepare_cached(
                        "UPDATE queue_rcpt SET status = 'failed', attempts = attempts + 1, leased = FALSE, \
                         lease_node = NULL, last_error = $2 WHERE id = $1",
                    )
                    .await
                    .map_err(pg)?;
                c.execute(&s, &[id, e]).await
            }
            RcptOutcome::Retry {
                at,
                error,
                delay_warned,
            } => {
                let s = c
                    .prepare_cached(
                        "UPDATE queue_rcpt SET attempts = attempts + 1, next_attempt = $2, last_error = $3, \
                         leased = FALSE, lease_node = NULL, delay_warned = delay_warned OR $4 WHERE id = $1",
                    )
                    .await
                    .map_err(pg)?;
                c.execute(&s, &[id, at, error, delay_warned]).await
            }
        }
        .map_err(pg)?;
    }
    touched.sort_unstable();
    touched.dedup();
    for q in touched {
        finish_if_done(c, q).await?;
    }
    Ok(())
}

/// Removes a queue entry whose recipients are all sent or failed (a held
/// recipient keeps it, as a waiting one does), and releases its message
/// (kept if a folder item still holds it).
async fn finish_if_done(c: &impl GenericClient, queue: i64) -> Result<()> {
    let s = c
        .prepare_cached(
            "SELECT count(*) FROM queue_rcpt WHERE queue_id = $1 AND status IN ('queued', 'held')",
        )
        .await
        .map_err(pg)?;
    let pending: i64 = c.query_one(&s, &[&queue]).await.map_err(pg)?.get(0);
    if pending > 0 {
        return Ok(());
    }
    remove(c, queue).await.map(|_| ())
}

/// Deletes a queue entry and releases its message; whether there was one.
async fn remove(c: &impl GenericClient, queue: i64) -> Result<bool> {
    let s = c
        .prepare_cached("DELETE FROM queue WHERE id = $1 RETURNING message_id")
        .await
        .map_err(pg)?;
    let message: Option<i64> = c
        .query_opt(&s, &[&queue])
        .await
        .map_err(pg)?
        .map(|r| r.get(0));
    if let Some(m) = message {
        release_message(c, m).await?;
    }
    Ok(message.is_some())
}

/// The recipients of one queue entry, or of all. Two statements, not one
/// with `$1 IS NULL OR …`, as in the embedded store: a generic plan of
/// that (which PostgreSQL may settle on for a cached statement) could not
/// use the index for one entry, and would read every recipient in the
/// queue; and each run is planned once, not again for its value.
async fn all_rcpts(c: &impl GenericClient, queue: Option<i64>) -> Result<Vec<(i64, QueuedRcpt)>> {
    let rows = match queue {
        Some(id) => {
            let sql = format!(
                "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r WHERE r.queue_id = $1 \
                 ORDER BY r.id"
            );
            let s = c.prepare_cached(&sql).await.map_err(pg)?;
            c.query(&s, &[&id]).await
        }
        None => {
            let sql = format!(
                "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r ORDER BY r.queue_id, r.id"
            );
            let s = c.prepare_cached(&sql).await.map_err(pg)?;
            c.query(&s, &[]).await
        }
    }
    .map_err(pg)?;
    Ok(rows.iter().map(rcpt_row).collect())
}

/// A recipient state as a condition on `queue_rcpt r` (what
/// [`Queue::queue_depth`] counts it by).
fn state_sql(state: RcptState) -> &'static str {
    match state {
        RcptState::Due => "r.status = 'queued' AND NOT r.leased AND r.attempts = 0",
        RcptState::Deferred => "r.status = 'queued' AND NOT r.leased AND r.attempts > 0",
        RcptState::InFlight => "r.status = 'queued' AND r.leased",
        RcptState::Held => "r.status = 'held'",
    }
}

/// A page of the queue entries matching `filter`, and how many match (in
/// the caller's snapshot).
async fn queue_page(
    c: &impl GenericClient,
    filter: &QueueFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<QueuedMessage>, u64)> {
    let state = given(filter.state.as_deref())
        .map(RcptState::parse)
        .transpose()?;
    // Conditions on the entry (`q`) and on a recipient (`r`), as in the
    // embedded store.
    let mut entry = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    if let Some(t) = filter.created_before {
        params.push(Box::new(t));
        entry.push(format!("q.created < ${}", params.len()));
    }
    if let Some(sender) = given(filter.sender.as_deref()) {
        // Under the "C" collation lower() folds ASCII letters only,
        // whatever the database's locale: as SQLite's lower() does.
        params.push(Box::new(sender.to_ascii_lowercase()));
        entry.push(format!(
            "strpos(lower(q.mail_from COLLATE \"C\"), ${}) > 0",
            params.len()
        ));
    }
    let mut rcpt = Vec::new();
    if let Some(state) = state {
        rcpt.push(state_sql(state).to_string());
    }
    if let Some(domain) = filter_domain(filter.domain.as_deref()) {
        params.push(Box::new(domain));
        rcpt.push(format!("r.domain = ${}", params.len()));
    }
    let (entry, rcpt) = (entry.join(" AND "), rcpt.join(" AND "));
    let (count_sql, page_sql) = match (entry.is_empty(), rcpt.is_empty()) {
        (true, true) => (
            "SELECT count(*) FROM queue q".to_string(),
            "SELECT q.id FROM queue q ORDER BY q.id".to_string(),
        ),
        (false, true) => (
            format!("SELECT count(*) FROM queue q WHERE {entry}"),
            format!("SELECT q.id FROM queue q WHERE {entry} ORDER BY q.id"),
        ),
        // The entries' ids straight from the recipients' indexes (in
        // their order when the state is an equality: due), not a probe of
        // the recipients per entry.
        (true, false) => (
            format!("SELECT count(DISTINCT r.queue_id) FROM queue_rcpt r WHERE {rcpt}"),
            format!(
                "SELECT DISTINCT r.queue_id FROM queue_rcpt r WHERE {rcpt} ORDER BY r.queue_id"
            ),
        ),
        (false, false) => {
            let cond = format!(
                "{entry} AND EXISTS (SELECT 1 FROM queue_rcpt r WHERE r.queue_id = q.id AND {rcpt})"
            );
            (
                format!("SELECT count(*) FROM queue q WHERE {cond}"),
                format!("SELECT q.id FROM queue q WHERE {cond} ORDER BY q.id"),
            )
        }
    };
    let total: i64 = c
        .query_one(&count_sql, &param_refs(&params))
        .await
        .map_err(pg)?
        .get(0);
    let n = params.len();
    params.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
    params.push(Box::new(i64::try_from(offset).unwrap_or(i64::MAX)));
    let ids: Vec<i64> = c
        .query(
            &format!("{page_sql} LIMIT ${} OFFSET ${}", n + 1, n + 2),
            &param_refs(&params),
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let sql = format!(
        "SELECT r.queue_id, {RCPT_COLUMNS} FROM queue_rcpt r \
         WHERE r.queue_id = ANY($1) ORDER BY r.queue_id, r.id"
    );
    let s = c.prepare_cached(&sql).await.map_err(pg)?;
    let rcpts = c
        .query(&s, &[&ids])
        .await
        .map_err(pg)?
        .iter()
        .map(rcpt_row)
        .collect();
    Ok((messages_with(c, rcpts).await?, total as u64))
}

#[async_trait]
impl Queue for PgStore {
    async fn queue_depth(&self) -> Result<QueueDepth> {
        // Each state counted in its range of the state index, and the
        // oldest waiting entry found through the entries' age
        // (queue_created), as in the embedded store: not a join of every
        // waiting recipient to its entry.
        self.read_snapshot(async |tx| {
            let s = tx
                .prepare_cached(
                    "SELECT \
                       (SELECT count(*) FROM queue_rcpt \
                        WHERE status = 'queued' AND NOT leased AND attempts = 0), \
                       (SELECT count(*) FROM queue_rcpt \
                        WHERE status = 'queued' AND NOT leased AND attempts > 0), \
                       (SELECT count(*) FROM queue_rcpt WHERE status = 'queued' AND leased), \
                       (SELECT count(*) FROM queue_rcpt WHERE status = 'held'), \
                       (SELECT q.created FROM queue q WHERE EXISTS \
                          (SELECT 1 FROM queue_rcpt r WHERE r.queue_id = q.id AND r.status = 'queued') \
                        ORDER BY q.created LIMIT 1)",
                )
                .await
                .map_err(pg)?;
            let r = tx.query_one(&s, &[]).await.map_err(pg)?;
            Ok(QueueDepth {
                due: r.get::<_, i64>(0) as u64,
                deferred: r.get::<_, i64>(1) as u64,
                in_flight: r.get::<_, i64>(2) as u64,
                held: r.get::<_, i64>(3) as u64,
                oldest: r.get(4),
            })
        })
        .await
    }

    async fn claim_due(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<QueuedMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let node = &self.inner.node;
        in_tx!(self, |tx| claim_due(&tx, node, now, lease, limit).await)
    }

    async fn record(&self, outcomes: Vec<(i64, RcptOutcome)>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        in_tx!(self, |tx| record(&tx, &outcomes).await)
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        in_tx!(self, |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(pg)?;
            let rcpts = all_rcpts(&tx, None).await?;
            messages_with(&tx, rcpts).await
        })
    }

    async fn queue_page(
        &self,
        filter: QueueFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<QueuedMessage>, u64)> {
        self.read_snapshot(async |tx| queue_page(tx, &filter, offset, limit).await)
            .await
    }

    async fn queue_get(&self, id: i64) -> Result<Option<QueuedMessage>> {
        in_tx!(self, |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(pg)?;
            let rcpts = all_rcpts(&tx, Some(id)).await?;
            Ok::<_, crate::StoreError>(messages_with(&tx, rcpts).await?.pop())
        })
    }

    async fn queue_remove(&self, id: i64) -> Result<bool> {
        in_tx!(self, |tx| remove(&tx, id).await)
    }

    async fn release_leases(&self) -> Result<usize> {
        let c = self.client().await?;
        let s = c
            .prepare_cached(
                "UPDATE queue_rcpt SET leased = FALSE, lease_node = NULL, next_attempt = least(next_attempt, $1) \
                 WHERE leased AND status = 'queued' AND lease_node = $2",
            )
            .await
            .map_err(pg)?;
        let n = c
            .execute(&s, &[&now(), &self.inner.node])
            .await
            .map_err(pg)?;
        Ok(n as usize)
    }

    async fn queue_retry(&self, id: Option<i64>) -> Result<usize> {
        let c = self.client().await?;
        let s = c
            .prepare_cached(
                "UPDATE queue_rcpt SET next_attempt = $2 WHERE status = 'queued' AND NOT leased \
                 AND ($1::BIGINT IS NULL OR queue_id = $1)",
            )
            .await
            .map_err(pg)?;
        let n = c.execute(&s, &[&id, &now()]).await.map_err(pg)?;
        Ok(n as usize)
    }

    async fn queue_hold(&self, id: Option<i64>, hold: bool) -> Result<usize> {
        // A recipient being claimed meanwhile is locked by the claim; this
        // waits for it and then sees it leased (or, holding first, the
        // claim skips it and then sees it held): never both.
        let c = self.client().await?;
        let n = if hold {
            let s = c
                .prepare_cached(
                    "UPDATE queue_rcpt SET status = 'held' WHERE status = 'queued' AND NOT leased \
                     AND ($1::BIGINT IS NULL OR queue_id = $1)",
                )
                .await
                .map_err(pg)?;
            c.execute(&s, &[&id]).await
        } else {
            let s = c
                .prepare_cached(
                    "UPDATE queue_rcpt SET status = 'queued', next_attempt = $2 WHERE status = 'held' \
                     AND ($1::BIGINT IS NULL OR queue_id = $1)",
                )
                .await
                .map_err(pg)?;
            c.execute(&s, &[&id, &now()]).await
        }
        .map_err(pg)?;
        Ok(n as usize)
    }
}
