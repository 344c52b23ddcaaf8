//! The store's rules, the same for every backend: what a domain name, a
//! class name, a First.Last key and a user search key are, the limits of
//! expansion, the queue's state names and the statistics' buckets.
use crate::{Result, StoreError};
use postgate_types::EmailAddress;

/// The post office a domain gets when it is added.
pub(crate) const DEFAULT_POST_OFFICE: &str = "main";
/// How deep groups may nest before expansion stops (a loop guard beside the visited set).
pub(crate) const MAX_GROUP_DEPTH: usize = 16;

/// A domain name as the directory keeps it: lower case, no final dot, LDH labels.
pub(crate) fn valid_domain_name(name: &str) -> Result<String> {
    let name = name.trim().trim_end_matches('.').to_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(name)
    } else {
        Err(StoreError::Invalid(format!("not a domain name: {name:?}")))
    }
}

/// "Given.Surname", case-folded, with inner spaces as dots: what First.Last@domain matches.
pub(crate) fn dotted_key(given: Option<&str>, surname: Option<&str>) -> Option<String> {
    let (g, s) = (given?.trim(), surname?.trim());
    if g.is_empty() || s.is_empty() {
        return None;
    }
    Some(
        format!("{g}.{s}")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase(),
    )
}

pub(crate) fn valid_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty()
        || n.len() > 64
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(StoreError::Invalid(format!(
            "{name:?}: a class name is 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(n.to_string())
}

/// What a user search ([`crate::Directory::find_users`]) looks in: the
/// primary address and the display name, lower-cased, one per line (so
/// that a piece of text on one line never matches across both). Kept in
/// the user's row (written with it) so that a search compares stored text
/// and the backends fold case alike: SQLite's `lower()` folds ASCII
/// letters only.
pub(crate) fn search_key(address: &EmailAddress, display_name: &str) -> String {
    format!("{}\n{}", address.key(), display_name.trim().to_lowercase())
}

/// A filter's text field as given: trimmed, `None` when blank.
pub(crate) fn given(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|f| !f.is_empty())
}

/// The piece of text a user search looks for, folded as [`search_key`]
/// folds; `None` when there is nothing to look for.
pub(crate) fn search_text(text: Option<&str>) -> Option<String> {
    given(text).map(str::to_lowercase)
}

/// A domain as a filter names it: lower case, without a final dot.
pub(crate) fn filter_domain(domain: Option<&str>) -> Option<String> {
    given(domain).map(|d| d.trim_end_matches('.').to_lowercase())
}

/// A user detail as an update sets it: trimmed, blank as none.
pub(crate) fn detail(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A state of a queued recipient, as [`crate::QueueFilter::state`] names
/// it; each backend says what it is in its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RcptState {
    /// Waiting, never tried.
    Due,
    /// Waiting, tried before.
    Deferred,
    /// Claimed by a runner.
    InFlight,
    /// Held by an operator.
    Held,
}

impl RcptState {
    /// Parses a state name (as the queue gauges' `state` label has it).
    pub(crate) fn parse(name: &str) -> Result<RcptState> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "due" => RcptState::Due,
            "deferred" => RcptState::Deferred,
            "in_flight" | "sending" => RcptState::InFlight,
            "held" => RcptState::Held,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "{name:?}: a queue state is due, deferred, in_flight (or sending) or held"
                )));
            }
        })
    }
}

/// The bucket a stats history groups minutes in: a positive multiple of
/// a minute.
pub(crate) fn stats_bucket(bucket: i64) -> Result<i64> {
    if bucket <= 0 || bucket % 60 != 0 {
        return Err(StoreError::Invalid(format!(
            "a statistics bucket is a positive number of whole minutes, not {bucket} s"
        )));
    }
    Ok(bucket)
}

/// Counter increments as the stats tables take them: each name once (the
/// increments given for it added up), in name order (so that two writers
/// lock rows in one order), as signed 64-bit values (saturating).
pub(crate) fn stat_deltas(deltas: Vec<(String, u64)>) -> Vec<(String, i64)> {
    let mut merged: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (name, v) in deltas {
        let e = merged.entry(name).or_default();
        *e = e.saturating_add(v);
    }
    merged
        .into_iter()
        .map(|(n, v)| (n, i64::try_from(v).unwrap_or(i64::MAX)))
        .collect()
}

/// A DKIM key as the store keeps it (RFC 6376 §3.1: the selector is
/// `sub-domain *( "." sub-domain )`; RFC 6376 §3.5 `d=` is a domain name):
/// domain and selector lower case, no final dot; the key not empty.
pub(crate) fn dkim_key(mut key: crate::DkimKey) -> Result<crate::DkimKey> {
    key.domain = valid_domain_name(&key.domain)?;
    let selector = key
        .selector
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ok = !selector.is_empty()
        && selector.len() <= 63
        && selector.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    if !ok {
        return Err(StoreError::Invalid(format!(
            "not a DKIM selector: {:?}",
            key.selector
        )));
    }
    key.selector = selector;
    if key.private_key.expose().is_empty() {
        return Err(StoreError::Invalid("empty DKIM private key".into()));
    }
    Ok(key)
}
