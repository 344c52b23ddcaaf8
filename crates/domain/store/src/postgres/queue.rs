//! [`Queue`](crate::Queue) for the PostgreSQL store.
use super::pg;
use crate::{Outbound, Result};
use deadpool_postgres::GenericClient;

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
