//! Group commit for deliveries on PostgreSQL.
//!
//! Every delivery to a folder takes the folder's row lock (its UID and
//! modseq counters) until its transaction commits, and a commit waits for
//! its WAL flush: one delivery per transaction would let a busy mailbox take
//! one delivery per fsync. So deliveries queue here, and a committer task
//! runs whatever queued up while the previous commit was on its way to disk
//! in one transaction, their statements pipelined (sent together, one round
//! trip for the batch), with one flush for all of them: the more concurrent
//! deliveries, the more each flush carries. If one fails, the batch runs
//! again with a savepoint per delivery, so that it rolls back alone. As
//! behind the embedded store's writer, each caller hears back only once the
//! commit is durable.
use super::{Inner, pg};
use crate::content::Sealed;
use crate::{Delivered, NewDelivery, Result, StoreError};
use postgate_types::Change;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// Upper bound on deliveries per transaction, so a flood still commits
/// (and answers) in steady steps.
const MAX_BATCH: usize = 256;

/// A delivery made ready for the store.
pub(crate) type Prepared = Arc<(NewDelivery, Sealed, Option<String>)>;

pub(crate) struct Job {
    pub(crate) delivery: Prepared,
    pub(crate) reply: oneshot::Sender<Result<(Vec<Delivered>, Vec<Change>)>>,
}

/// Starts the node's committer; it ends when the store is dropped (the
/// sender with it). One committer: deliveries to a busy mailbox wait for its
/// folder row in turn anyway, and one committer makes the batches larger
/// (measured: 2 committers took fewer messages a second into one mailbox).
pub(crate) fn start(rx: mpsc::UnboundedReceiver<Job>, store: Weak<Inner>) {
    tokio::spawn(run(rx, store));
}

async fn run(mut rx: mpsc::UnboundedReceiver<Job>, store: Weak<Inner>) {
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let Some(inner) = store.upgrade() else { return };
        commit_batch(super::PgStore { inner }, batch).await;
    }
}

type Outcome = Result<(Vec<Delivered>, Vec<Change>)>;

/// Runs every delivery of the batch in one transaction; commits only if
/// all succeeded or `savepoints` isolated those that failed.
async fn run_batch(
    store: &super::PgStore,
    client: &mut deadpool_postgres::Object,
    batch: &[Job],
    savepoints: bool,
) -> Result<Vec<Outcome>> {
    let mut tx = client.transaction().await.map_err(pg)?;
    let mut results = Vec::with_capacity(batch.len());
    // Changes the delivery statements did not announce themselves.
    let mut unannounced = Vec::new();
    let node = store.inner.node.as_str();
    if savepoints {
        for job in batch {
            let (d, sealed, envelope) = &*job.delivery;
            let mut sp = tx.savepoint("delivery").await.map_err(pg)?;
            match super::mailboxes::deliver(&mut sp, d, sealed, envelope.as_deref(), node).await {
                Ok((delivered, changes, announced)) => {
                    sp.commit().await.map_err(pg)?;
                    unannounced.extend_from_slice(&changes[announced..]);
                    results.push(Ok((delivered, changes)));
                }
                Err(e) => {
                    sp.rollback().await.map_err(pg)?;
                    results.push(Err(e));
                }
            }
        }
    } else {
        // Every statement at once (pipelined on the connection: one round
        // trip for the batch), then what follows each, in order.
        let statement = super::mailboxes::deliver_prepared(&tx).await?;
        let rows = futures_util::future::join_all(batch.iter().map(|job| {
            let (d, sealed, envelope) = &*job.delivery;
            super::mailboxes::deliver_statement(
                &tx,
                &statement,
                d,
                sealed,
                envelope.as_deref(),
                node,
            )
        }))
        .await;
        for (job, rows) in batch.iter().zip(rows) {
            let outcome = match rows {
                Ok(rows) => super::mailboxes::deliver_finish(&mut tx, &job.delivery.0, rows).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok((delivered, changes, announced)) => {
                    unannounced.extend_from_slice(&changes[announced..]);
                    results.push(Ok((delivered, changes)));
                }
                Err(e) => {
                    // The caller runs the batch again, with savepoints.
                    results.push(Err(e));
                    return Ok(results);
                }
            }
        }
    }
    if !unannounced.is_empty() {
        store.notify(&tx, &unannounced).await?;
    }
    super::commit(tx, batch.len()).await?;
    Ok(results)
}

async fn commit_batch(store: super::PgStore, batch: Vec<Job>) {
    let mut client = match store.client().await {
        Ok(c) => c,
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Backend(e.to_string())));
            }
            return;
        }
    };
    // Deliveries almost never fail on their own: first the whole batch
    // without savepoints (a round trip less each); if one fails, the batch
    // is rolled back and run again with a savepoint per delivery, so that
    // only the failing one is refused.
    let mut outcome = run_batch(&store, &mut client, &batch, false).await;
    if matches!(&outcome, Ok(results) if results.iter().any(|r| r.is_err())) {
        outcome = run_batch(&store, &mut client, &batch, true).await;
    }
    match outcome {
        Ok(results) => {
            for (job, r) in batch.into_iter().zip(results) {
                if let Ok((_, changes)) = &r {
                    store.publish(changes.clone());
                }
                let _ = job.reply.send(r);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, deliveries = batch.len(), "store: delivery batch failed");
            for job in batch {
                let _ = job.reply.send(Err(match &e {
                    StoreError::Backend(m) => StoreError::Backend(m.clone()),
                    StoreError::Full(m) => StoreError::Full(m.clone()),
                    other => StoreError::Backend(other.to_string()),
                }));
            }
        }
    }
}
