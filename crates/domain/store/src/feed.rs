//! The change feed: every committed mailbox change, published after commit.
//!
//! IMAP IDLE, multi-session updates, POP3 and the console read it. Subscribers
//! that fall behind get `Lagged` from tokio's broadcast channel and must re-read
//! the folder state from the store, which is always the truth; the feed is only a
//! wake-up. On PostgreSQL it will be fed by LISTEN/NOTIFY.
use postgate_types::Change;
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it must re-sync.
const CAPACITY: usize = 4096;

/// Publishes committed changes to every subscriber.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    tx: broadcast::Sender<Change>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl ChangeFeed {
    /// Publishes changes; called by backends after their commit.
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        for c in changes {
            // No subscribers is not an error.
            let _ = self.tx.send(c);
        }
    }
    /// A new subscription, starting now.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}
