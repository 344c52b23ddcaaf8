//! The merges the store runs inside its transactions.
use crate::render::render_item;
use postgate_ical::itip::{Incoming, Outcome, apply};
use postgate_ical::{Context, Method};
use postgate_store::{CalendarEntry, CalendarMerge, CalendarWrite, MergeResult};
use postgate_types::ItemKind;
use postgate_types::calendar::CalendarObject;

/// An iTIP message applied to one user's calendar (RFC 5546): by mail from
/// outside, or from a local user directly.
#[derive(Debug)]
pub struct ItipMerge {
    pub(crate) method: Method,
    pub(crate) kind: ItemKind,
    pub(crate) object: CalendarObject,
    pub(crate) senders: Vec<String>,
    pub(crate) recipient: Vec<String>,
    pub(crate) now: i64,
    pub(crate) ctx: Context,
    /// What to store when nothing is held yet, worked out before the
    /// commit (outside the store's single writer, which every delivery waits
    /// for): a new invitation needs no look at the calendar.
    pub(crate) fresh: Option<std::sync::Arc<CalendarWrite>>,
}

impl ItipMerge {
    /// Works out, ahead of the commit, what this merge stores when the
    /// calendar holds nothing for the UID yet.
    pub(crate) fn prepare(&mut self) {
        if let Outcome::Store(p, _) = apply(None, &self.incoming(), &self.ctx) {
            self.fresh = Some(std::sync::Arc::new(render_item(
                p.kind,
                p.object,
                self.ctx.zone,
            )));
        }
    }

    fn incoming(&self) -> Incoming<'_> {
        Incoming {
            method: &self.method,
            kind: self.kind,
            object: &self.object,
            senders: &self.senders,
            recipient: &self.recipient,
            now: self.now,
        }
    }
}

impl CalendarMerge for ItipMerge {
    fn merge(&self, current: Option<&CalendarEntry>) -> MergeResult {
        if current.is_none()
            && let Some(w) = &self.fresh
        {
            tracing::info!(method = %self.method, uid = %self.object.uid, to = ?self.recipient.first(), "calendar: invitation added");
            return MergeResult::Put(Box::new((**w).clone()), "invitation added".into());
        }
        match apply(current.map(|c| &c.object), &self.incoming(), &self.ctx) {
            Outcome::Store(p, why) => {
                tracing::info!(method = %self.method, uid = %self.object.uid, to = ?self.recipient.first(), "calendar: {why}");
                MergeResult::Put(Box::new(render_item(p.kind, p.object, self.ctx.zone)), why)
            }
            Outcome::Unchanged(why) => {
                tracing::info!(method = %self.method, uid = %self.object.uid, to = ?self.recipient.first(), "calendar: unchanged: {why}");
                MergeResult::Keep(why)
            }
        }
    }
}

/// A change a user made on what they read: stored only if the object is
/// still what they read (its item's UID changes with every version).
#[derive(Debug)]
pub(crate) struct PutIf {
    /// The version read (`None`: there was none).
    pub(crate) expected: Option<u32>,
    /// What to store (`None`: remove).
    pub(crate) write: Option<CalendarWrite>,
    pub(crate) note: String,
}

impl CalendarMerge for PutIf {
    fn merge(&self, current: Option<&CalendarEntry>) -> MergeResult {
        if current.map(|c| c.item_uid) != self.expected {
            return MergeResult::Conflict(
                "the appointment or task changed meanwhile; read it again".into(),
            );
        }
        match &self.write {
            Some(w) => MergeResult::Put(Box::new(w.clone()), self.note.clone()),
            None => MergeResult::Remove(self.note.clone()),
        }
    }
}

/// Stores an object whatever is held (an import).
#[derive(Debug)]
pub(crate) struct Put(pub(crate) CalendarWrite);

impl CalendarMerge for Put {
    fn merge(&self, _current: Option<&CalendarEntry>) -> MergeResult {
        MergeResult::Put(Box::new(self.0.clone()), "imported".into())
    }
}
