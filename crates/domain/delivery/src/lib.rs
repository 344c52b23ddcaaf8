//! Local delivery: the step between an engine that accepted a message and the store.
//!
//! What it is for: resolving recipients through the directory (users, aliases,
//! groups, First.Last, postmaster), converting the MIME bytes into an item
//! ([`postgate_mime`]), deciding the folder (Inbox, or Junk when a configured
//! header says so), and handing the store one durable delivery. SMTP uses it
//! today; submission and the client API will deliver to local users through it too.
//!
//! What it is not for: protocol replies (the engine maps [`DeliveryError`] and
//! [`Resolution`] to its own wire replies) or remote delivery (the outbound queue).
#![deny(missing_docs)]

use postgate_store::{Envelope, NewDelivery, Resolution, Store, StoreError, Target, UserRef};
use postgate_types::{EmailAddress, Flags, FolderRole};
use std::sync::Arc;

/// Messages larger than this are parsed on a blocking thread, so that a 20 MB
/// message does not stall the other sessions sharing the async worker.
const PARSE_INLINE_MAX: usize = 256 * 1024;

/// A header rule that files a message in Junk: `Name: value`, value matched
/// case-insensitively, a trailing `*` matching as a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunkRule {
    header: String,
    value: String,
    prefix: bool,
}

impl JunkRule {
    /// Parses "X-Spam-Flag: YES". `None` if there is no colon.
    pub fn parse(rule: &str) -> Option<JunkRule> {
        let (h, v) = rule.split_once(':')?;
        let v = v.trim();
        let (value, prefix) = match v.strip_suffix('*') {
            Some(p) => (p.trim_end(), true),
            None => (v, false),
        };
        Some(JunkRule {
            header: h.trim().to_string(),
            value: value.to_ascii_lowercase(),
            prefix,
        })
    }

    fn matches(&self, value: &str) -> bool {
        let v = value.trim().to_ascii_lowercase();
        if self.prefix {
            v.starts_with(&self.value)
        } else {
            v == self.value
        }
    }
}

/// Why a delivery failed.
pub type DeliveryError = StoreError;

/// What a finished delivery did.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// Copies stored.
    pub copies: usize,
    /// Whether it was filed in Junk.
    pub junk: bool,
}

/// The delivery agent.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    junk: Vec<JunkRule>,
    postmaster: Option<EmailAddress>,
}

impl Delivery {
    /// A delivery agent over `store`, with Junk rules and the postmaster fallback.
    pub fn new(
        store: Arc<dyn Store>,
        junk: Vec<JunkRule>,
        postmaster: Option<EmailAddress>,
    ) -> Delivery {
        Delivery {
            store,
            junk,
            postmaster,
        }
    }

    /// Resolves a recipient. `postmaster@` a served domain falls back to the
    /// configured postmaster (RFC 5321 §4.5.1).
    pub async fn resolve(&self, rcpt: &EmailAddress) -> Result<Resolution, DeliveryError> {
        let r = self.store.resolve(rcpt).await?;
        if r == Resolution::Unknown
            && rcpt.local().eq_ignore_ascii_case("postmaster")
            && let Some(pm) = &self.postmaster
        {
            return self.store.resolve(pm).await;
        }
        Ok(r)
    }

    /// Converts and stores `raw` for `users`, durably; returns once on disk.
    pub async fn deliver(
        &self,
        raw: Vec<u8>,
        envelope: Option<Envelope>,
        users: &[UserRef],
    ) -> Result<DeliveryReport, DeliveryError> {
        let (raw, parsed) = if raw.len() > PARSE_INLINE_MAX {
            tokio::task::spawn_blocking(move || {
                let p = postgate_mime::parse_message(&raw);
                (raw, p)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("parser task: {e}")))?
        } else {
            let p = postgate_mime::parse_message(&raw);
            (raw, p)
        };
        let junk = self
            .junk
            .iter()
            .any(|rule| parsed.header_values(&rule.header).any(|v| rule.matches(v)));
        let role = if junk {
            FolderRole::Junk
        } else {
            FolderRole::Inbox
        };
        let delivered = self
            .store
            .deliver(NewDelivery {
                raw,
                content: parsed.content,
                envelope,
                targets: users.iter().map(|u| Target { user: u.id, role }).collect(),
                flags: Flags::default(),
                received_at: chrono::Utc::now().timestamp(),
            })
            .await?;
        Ok(DeliveryReport {
            copies: delivered.len(),
            junk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_rules() {
        let r = JunkRule::parse("X-Spam-Flag: YES").unwrap();
        assert!(r.matches(" yes "));
        assert!(!r.matches("no"));
        let r = JunkRule::parse("X-Spam-Status: Yes*").unwrap();
        assert!(r.matches("Yes, score=7.1"));
        assert!(!r.matches("No, score=0.1"));
        assert!(JunkRule::parse("nonsense").is_none());
    }
}
