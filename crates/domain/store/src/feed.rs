//! The change feed: every committed mailbox change, published after commit.
//!
//! Subscriptions are per folder, so that a change wakes only the sessions
//! watching that folder: with ten thousand IMAP clients in IDLE, a delivery to
//! one mailbox must not wake the other 9,999. Subscribers that fall behind get
//! `Lagged` from tokio's broadcast channel and re-read the folder from the
//! store, which is always the truth: the feed is only a wake-up. On PostgreSQL it
//! is fed across nodes by LISTEN/NOTIFY.
//!
//! A user's sessions may also subscribe to everything of that user
//! ([`ChangeFeed::subscribe_user`]): item changes in any folder, and changes
//! to the folder list and subscriptions, for IMAP NOTIFY (RFC 5465).
use postgate_types::{Change, ChangeKind, FolderId, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many changes a slow subscriber of one folder may fall behind before it
/// must re-sync. Small: a lagging subscriber re-reads the folder anyway.
const CAPACITY: usize = 64;
/// The same for a subscriber to all of a user's folders.
const USER_CAPACITY: usize = 256;

/// Publishes committed changes to the subscribers of each folder.
#[derive(Debug, Clone, Default)]
pub struct ChangeFeed {
    folders: Arc<Mutex<HashMap<FolderId, broadcast::Sender<Change>>>>,
    users: Arc<Mutex<HashMap<UserId, broadcast::Sender<Change>>>>,
}

impl ChangeFeed {
    /// Publishes changes; called by backends after their commit.
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let Ok(mut folders) = self.folders.lock() else {
            return;
        };
        let Ok(mut users) = self.users.lock() else {
            return;
        };
        for c in changes {
            if c.kind.is_item()
                && let Some(tx) = folders.get(&c.folder)
                && tx.send(c).is_err()
            {
                // Nobody listens any more.
                folders.remove(&c.folder);
            }
            if !users.is_empty()
                && let Some(tx) = users.get(&c.user)
                && tx.send(c).is_err()
            {
                users.remove(&c.user);
            }
        }
    }

    /// Wakes every subscriber with a change that names no message (UID 0,
    /// modseq 0): they re-read their folder from the store. For when changes
    /// may have been missed (another node's notifications, while the
    /// connection that hears them was down).
    pub fn wake_all(&self) {
        let Ok(folders) = self.folders.lock() else {
            return;
        };
        for (folder, tx) in folders.iter() {
            let _ = tx.send(Change {
                user: 0,
                folder: *folder,
                modseq: 0,
                uid: 0,
                kind: ChangeKind::Flags,
            });
        }
        drop(folders);
        let Ok(users) = self.users.lock() else {
            return;
        };
        // A user's subscribers re-read the folder list, and with it every
        // folder's counts.
        for (user, tx) in users.iter() {
            let _ = tx.send(Change {
                user: *user,
                folder: 0,
                modseq: 0,
                uid: 0,
                kind: ChangeKind::Mailboxes,
            });
        }
    }

    /// A subscription to one folder's changes, starting now.
    pub fn subscribe(&self, folder: FolderId) -> broadcast::Receiver<Change> {
        let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        // Drop senders nobody listens to, now and then, so the map stays the
        // size of what is watched.
        if folders.len() > 64 && folders.len().is_power_of_two() {
            folders.retain(|_, tx| tx.receiver_count() > 0);
        }
        folders
            .entry(folder)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// A subscription to all of one user's changes, starting now: item
    /// changes in every folder, and [`ChangeKind::Mailboxes`] and
    /// [`ChangeKind::Subscriptions`].
    pub fn subscribe_user(&self, user: UserId) -> broadcast::Receiver<Change> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() > 64 && users.len().is_power_of_two() {
            users.retain(|_, tx| tx.receiver_count() > 0);
        }
        users
            .entry(user)
            .or_insert_with(|| broadcast::channel(USER_CAPACITY).0)
            .subscribe()
    }

    /// Publishes a change to a user's folder list or subscriptions.
    pub fn publish_user(&self, user: UserId, kind: ChangeKind) {
        self.publish([Change {
            user,
            folder: 0,
            modseq: 0,
            uid: 0,
            kind,
        }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(folder: FolderId, uid: u32) -> Change {
        Change {
            user: 1,
            folder,
            modseq: uid as u64,
            uid,
            kind: ChangeKind::Append,
        }
    }

    #[test]
    fn only_the_folder_subscribers_hear() {
        let feed = ChangeFeed::default();
        let mut a = feed.subscribe(1);
        let mut b = feed.subscribe(2);
        feed.publish([change(1, 10)]);
        assert_eq!(a.try_recv().unwrap().uid, 10);
        assert!(b.try_recv().is_err());
        drop(a);
        feed.publish([change(1, 11)]);
        assert!(
            feed.folders.lock().unwrap().get(&1).is_none(),
            "unwatched folder forgotten"
        );
        feed.publish([change(2, 12)]);
        assert_eq!(b.try_recv().unwrap().uid, 12);
    }

    #[test]
    fn user_subscribers_hear_every_folder_and_the_list() {
        let feed = ChangeFeed::default();
        let mut all = feed.subscribe_user(1);
        let mut one = feed.subscribe(2);
        feed.publish([change(2, 5)]);
        feed.publish_user(1, ChangeKind::Mailboxes);
        feed.publish([Change {
            user: 9,
            ..change(3, 6)
        }]);
        assert_eq!(all.try_recv().unwrap().uid, 5);
        assert_eq!(all.try_recv().unwrap().kind, ChangeKind::Mailboxes);
        assert!(all.try_recv().is_err(), "another user's change");
        assert_eq!(one.try_recv().unwrap().uid, 5);
        assert!(one.try_recv().is_err(), "list changes go to users only");
        feed.wake_all();
        assert_eq!(all.try_recv().unwrap().kind, ChangeKind::Mailboxes);
    }
}
