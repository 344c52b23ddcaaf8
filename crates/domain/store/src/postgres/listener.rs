//! The change feed across nodes: each node LISTENs on one connection of its
//! own and republishes what other nodes committed on its local
//! [`ChangeFeed`](crate::ChangeFeed).
//!
//! NOTIFY is a wake-up, not a log: if the listening connection drops,
//! notifications sent meanwhile are lost, so on reconnecting the node wakes
//! every subscriber ([`ChangeFeed::wake_all`](crate::ChangeFeed::wake_all)),
//! and each re-reads its folder's changes since the modseq it last saw.
use super::{CHANNEL, Inner, Tls};
use futures_util::StreamExt;
use postgate_types::{Change, ChangeKind};
use std::sync::Weak;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The longest payload sent in one NOTIFY (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7_900;
/// How long to wait before connecting again after the connection dropped.
const RECONNECT: Duration = Duration::from_millis(500);

/// Payloads for `changes`: the sending node's name on the first line, then
/// one change per line (`user folder modseq uid kind`).
pub(crate) fn encode(node: &str, changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in changes {
        let kind = match c.kind {
            ChangeKind::Append => 'a',
            ChangeKind::Flags => 'f',
            ChangeKind::Expunge => 'e',
            ChangeKind::Mailboxes => 'm',
            ChangeKind::Subscriptions => 's',
        };
        let line = format!("\n{} {} {} {} {kind}", c.user, c.folder, c.modseq, c.uid);
        if !cur.is_empty() && cur.len() + line.len() > MAX_PAYLOAD {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            cur.push_str(node);
        }
        cur.push_str(&line);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The sending node and the changes of a payload; malformed lines are skipped.
pub(crate) fn decode(payload: &str) -> (&str, Vec<Change>) {
    let mut lines = payload.split('\n');
    let node = lines.next().unwrap_or("");
    let changes = lines
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some(Change {
                user: f.next()?.parse().ok()?,
                folder: f.next()?.parse().ok()?,
                modseq: f.next()?.parse().ok()?,
                uid: f.next()?.parse().ok()?,
                kind: match f.next()? {
                    "a" => ChangeKind::Append,
                    "f" => ChangeKind::Flags,
                    "e" => ChangeKind::Expunge,
                    "m" => ChangeKind::Mailboxes,
                    "s" => ChangeKind::Subscriptions,
                    _ => return None,
                },
            })
        })
        .collect();
    (node, changes)
}

/// Starts the listening task; it ends when the store is dropped. The
/// receiver hears once the node first listens: a change committed on
/// another node after that reaches this node's subscribers.
pub(crate) fn start(
    config: tokio_postgres::Config,
    tls: Tls,
    store: Weak<Inner>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (ready, listening_at_last) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready);
    tokio::spawn(async move {
        loop {
            if store.strong_count() == 0 {
                return;
            }
            match config.connect(tls.clone()).await {
                Ok((client, mut connection)) => {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    // The LISTEN is sent while the connection is driven below.
                    let sql = format!("LISTEN {CHANNEL}");
                    let listen = client.batch_execute(&sql);
                    tokio::pin!(listen);
                    let mut listening = false;
                    loop {
                        tokio::select! {
                            r = &mut listen, if !listening => {
                                if let Err(e) = r {
                                    tracing::warn!(error = %e, "store: LISTEN failed");
                                    break;
                                }
                                listening = true;
                                // Notifications may have been lost while the
                                // connection was down (or before it first
                                // came up, if the store was opened without
                                // waiting for it).
                                if let Some(inner) = store.upgrade() {
                                    inner.feed.wake_all();
                                }
                                if let Some(ready) = ready.take() {
                                    let _ = ready.send(());
                                }
                            }
                            m = messages.next() => match m {
                                Some(Ok(AsyncMessage::Notification(n))) => {
                                    let Some(inner) = store.upgrade() else { return };
                                    let (node, changes) = decode(n.payload());
                                    if node != inner.node {
                                        inner.feed.publish(changes);
                                    }
                                }
                                Some(Ok(_)) => {}
                                Some(Err(e)) => {
                                    tracing::warn!(error = %e, "store: change feed connection lost");
                                    break;
                                }
                                None => break,
                            },
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                                if store.strong_count() == 0 {
                                    return;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "store: change feed cannot connect"),
            }
            tokio::time::sleep(RECONNECT).await;
        }
    });
    listening_at_last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_split() {
        let changes: Vec<Change> = (0..2000)
            .map(|i| Change {
                user: 7,
                folder: 42,
                modseq: 1000 + i,
                uid: i as u32,
                kind: [
                    ChangeKind::Append,
                    ChangeKind::Flags,
                    ChangeKind::Expunge,
                    ChangeKind::Mailboxes,
                    ChangeKind::Subscriptions,
                ][i as usize % 5],
            })
            .collect();
        let payloads = encode("node-a", &changes);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD);
            let (node, c) = decode(p);
            assert_eq!(node, "node-a");
            back.extend(c);
        }
        assert_eq!(back, changes);
    }
}
