//! Search (RFC 4511 §4.5): scope, filter, attribute selection, size and time
//! limits, paged results (RFC 2696), server-side sorting (RFC 2891) and
//! Virtual List View (draft-ietf-ldapext-ldapv3-vlv-09).
//!
//! A plain search streams: entries are matched and written out one by one,
//! flushed every 64 KiB under the socket's backpressure, so memory stays
//! bounded whatever the result's size. Sorted, paged and VLV searches keep
//! only the matching entries' numbers (4 octets each) between pages.
use crate::session::{FLUSH_AT, Session, result};
use crate::view::{Entry, INDEXED, NO_PARENT, Snapshot, TRIGRAM};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope};
use postgate_ldap_proto::controls::{self, VlvTarget};
use postgate_ldap_proto::filter::{self, Filter, Tri, Value};
use postgate_ldap_proto::matching::normalize;
use postgate_ldap_proto::schema::{self, AttributeType};
use postgate_ldap_proto::{ber, dn};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// A paged search under way.
#[derive(Debug)]
pub(crate) struct Paged {
    snapshot: Arc<Snapshot>,
    /// The request it belongs to (RFC 2696 §3: the same search with the cookie).
    fingerprint: String,
    matches: Vec<u32>,
    pos: usize,
}

/// Which attributes to return (RFC 4511 §4.5.1.8, RFC 3673 "+").
struct Selection {
    all_user: bool,
    all_operational: bool,
    named: Vec<&'static str>,
}

impl Selection {
    fn new(attrs: &[String]) -> Selection {
        let mut s = Selection {
            all_user: attrs.is_empty(),
            all_operational: false,
            named: Vec::new(),
        };
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                name => {
                    if let Some(t) = schema::attribute(name) {
                        s.named.push(t.name);
                    }
                }
            }
        }
        s
    }
    fn wants(&self, at: &AttributeType) -> bool {
        if at.operational {
            self.all_operational || self.named.contains(&at.name)
        } else {
            self.all_user || self.named.contains(&at.name)
        }
    }
}

/// How entries are chosen before the filter.
enum Scope<'a> {
    Base(&'a Entry),
    /// Children of this entry (`NO_PARENT`: the naming context).
    One(u32),
    /// This entry and below (`None`: everything); `with_base` false for the
    /// "children" scope.
    Sub(Option<u32>, bool),
}

/// One sort key (RFC 2891 §1.1).
struct SortKey {
    at: &'static AttributeType,
    reverse: bool,
}

impl Session {
    fn done(&mut self, id: i32, code: LdapResultCode, msg: &str, ctrl: Vec<LdapControl>) {
        if ctrl.is_empty() && code == LdapResultCode::Success {
            // The common end of a search (no error to count), without
            // building the codec's tree.
            ber::encode_done(id, LdapResultCode::Success as i64, "", msg, &mut self.wbuf);
        } else {
            self.send(id, LdapOp::SearchResultDone(result(code, msg)), ctrl);
        }
    }

    /// Encodes an entry with the selected, visible attributes.
    fn send_entry(&mut self, id: i32, e: &Entry, sel: &Selection, types_only: bool) {
        let allowed = self.allowed.as_deref().map(|v| v.as_slice());
        let none: &[Value] = &[];
        let attributes: Vec<ber::EntryAttribute<'_, Value>> = e
            .attrs()
            .filter(|a| sel.wants(a.at) && self.ctx.visible(a.at, allowed))
            .map(|a| (a.at.name, if types_only { none } else { a.values }))
            .collect();
        ber::encode_entry(id, &e.dn, &attributes, &mut self.wbuf);
    }

    pub(crate) async fn search(
        &mut self,
        id: i32,
        req: LdapSearchRequest,
        ctrl: Vec<LdapControl>,
    ) -> std::io::Result<()> {
        let started = Instant::now();
        let Some(base_norm) = dn::normalize(&req.base) else {
            self.done(
                id,
                LdapResultCode::InvalidDNSyntax,
                "invalid base DN",
                Vec::new(),
            );
            return Ok(());
        };
        let snap = match self.ctx.view.get().await {
            Ok(s) => s,
            Err(e) => {
                self.done(id, LdapResultCode::Unavailable, &e.to_string(), Vec::new());
                return Ok(());
            }
        };
        let bound = self.bound.is_some();
        let special = base_norm.is_empty() || *base_norm == *snap.subschema.dn_norm;
        let public_entry = special && req.scope == LdapSearchScope::Base;
        if !(bound || self.ctx.config.anonymous || public_entry) {
            self.done(
                id,
                LdapResultCode::InsufficentAccessRights,
                "anonymous access is disabled; bind first",
                Vec::new(),
            );
            return Ok(());
        }

        // Controls.
        let mut paged: Option<(i64, Vec<u8>)> = None;
        let mut sort: Option<Vec<ldap3_proto::control::ServerSortRequet>> = None;
        let mut vlv: Option<controls::VlvRequest> = None;
        for c in &ctrl {
            match c {
                LdapControl::SimplePagedResults { size, cookie } => {
                    paged = Some((*size, cookie.clone()))
                }
                LdapControl::ServerSort { sort_requests } => sort = Some(sort_requests.clone()),
                LdapControl::Unknown { oid, value, .. } if oid == controls::VLV_REQUEST => {
                    match value.as_deref().and_then(controls::decode_vlv) {
                        Some(v) => vlv = Some(v),
                        None => {
                            self.done(
                                id,
                                LdapResultCode::ProtocolError,
                                "malformed VLV request control",
                                Vec::new(),
                            );
                            return Ok(());
                        }
                    }
                }
                _ => {}
            }
        }
        if paged.is_some() && vlv.is_some() {
            self.done(
                id,
                LdapResultCode::UnwillingToPerform,
                "paged results and VLV cannot be combined",
                Vec::new(),
            );
            return Ok(());
        }

        let scope = if special && req.scope == LdapSearchScope::Base {
            match snap.lookup(&base_norm) {
                Some(e) => Scope::Base(e),
                None => unreachable!("the root DSE and subschema always exist"),
            }
        } else if base_norm.is_empty() {
            // A search from the root over one level or a subtree: the naming
            // context and what is under it (clients with an empty base DN).
            match req.scope {
                LdapSearchScope::OneLevel => Scope::One(NO_PARENT),
                _ => Scope::Sub(None, true),
            }
        } else {
            match snap.lookup(&base_norm) {
                None => {
                    let mut r = result(LdapResultCode::NoSuchObject, "no such entry");
                    r.matcheddn = snap.matched(&base_norm);
                    self.send(id, LdapOp::SearchResultDone(r), Vec::new());
                    return Ok(());
                }
                Some(e) => {
                    let n = snap.number(&base_norm).unwrap_or(NO_PARENT);
                    match req.scope {
                        LdapSearchScope::Base => Scope::Base(e),
                        LdapSearchScope::OneLevel => Scope::One(n),
                        LdapSearchScope::Subtree => Scope::Sub(Some(n), true),
                        LdapSearchScope::Children => Scope::Sub(Some(n), false),
                    }
                }
            }
        };

        let ctx = self.ctx.clone();
        self.allowed = match &self.bound {
            Some(b) => b.allowed.clone(),
            None => ctx.anonymous().await,
        };
        let allowed = self.allowed.clone();
        let visible =
            |at: &AttributeType| ctx.visible(at, allowed.as_deref().map(|v| v.as_slice()));
        let compiled = filter::compile(&req.filter, &visible);
        let sel = Selection::new(&req.attrs);
        let server_limit = self.ctx.config.max_entries.max(1);
        let client_limit = if req.sizelimit > 0 {
            req.sizelimit as usize
        } else {
            usize::MAX
        };
        let time_limit =
            (req.timelimit > 0).then(|| std::time::Duration::from_secs(req.timelimit as u64));

        // Base scope: one entry at most.
        if let Scope::Base(e) = &scope {
            if compiled.eval(*e) == Tri::True {
                let e = (*e).clone();
                self.send_entry(id, &e, &sel, req.typesonly);
            }
            self.done(id, LdapResultCode::Success, "", Vec::new());
            return Ok(());
        }

        let in_scope = |i: u32| match &scope {
            Scope::Base(_) => false,
            Scope::One(parent) => snap.entries[i as usize].parent == *parent,
            Scope::Sub(None, _) => true,
            Scope::Sub(Some(base), with_base) => {
                snap.is_under(i, *base) && (*with_base || i != *base)
            }
        };
        let candidates = candidates(&snap, &compiled);
        let matches = |i: u32| in_scope(i) && compiled.eval(&snap.entries[i as usize]) == Tri::True;

        // Sorted, paged or VLV: the matching entries' numbers first.
        if sort.is_some() || paged.is_some() || vlv.is_some() {
            let fingerprint = format!("{base_norm}|{:?}|{:?}", req.scope, req.filter);
            let (size, cookie) = paged.clone().unwrap_or((0, Vec::new()));
            // RFC 2696 §3: a later page of a search under way.
            let mut state = if cookie.is_empty() {
                None
            } else {
                match self.paged.remove(&cookie) {
                    Some(p) if p.fingerprint == fingerprint => Some(p),
                    _ => {
                        self.done(
                            id,
                            LdapResultCode::UnwillingToPerform,
                            "unknown or stale paged results cookie",
                            Vec::new(),
                        );
                        return Ok(());
                    }
                }
            };
            if paged.is_some() && size <= 0 {
                // RFC 2696 §3: size 0 abandons the paged search.
                self.done(
                    id,
                    LdapResultCode::Success,
                    "",
                    vec![LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    }],
                );
                return Ok(());
            }
            let mut response_controls = Vec::new();
            if state.is_none() {
                let mut list: Vec<u32> = match &candidates {
                    Some(c) => c.iter().copied().filter(|&i| matches(i)).collect(),
                    None => (0..snap.entries.len() as u32)
                        .filter(|&i| matches(i))
                        .collect(),
                };
                if let Some(keys) = &sort {
                    let code = sort_list(&snap, &mut list, keys, &visible);
                    response_controls.push(LdapControl::Unknown {
                        oid: controls::SORT_RESPONSE.into(),
                        criticality: false,
                        value: Some(controls::encode_sort_response(code.0 as i64, code.1)),
                    });
                }
                state = Some(Paged {
                    snapshot: snap.clone(),
                    fingerprint: fingerprint.clone(),
                    matches: list,
                    pos: 0,
                });
            }
            let mut state = state.expect("state");
            let total = state.matches.len();

            // VLV: a window around a target (draft §6.1).
            if let Some(v) = &vlv {
                let Some(keys) = &sort else {
                    // §6.2.1: VLV needs a sort control. The control says
                    // sortControlMissing (60); the result is unwillingToPerform,
                    // which every client knows (ldap3 fails on 60 and 76).
                    self.done(
                        id,
                        LdapResultCode::UnwillingToPerform,
                        "VLV needs a server-side sort control",
                        vec![vlv_control(0, total, 60)],
                    );
                    return Ok(());
                };
                let target = match &v.target {
                    VlvTarget::ByOffset {
                        offset,
                        content_count,
                    } => {
                        if *offset < 1 && total > 0 {
                            // offsetRangeError (61) in the control.
                            self.done(
                                id,
                                LdapResultCode::UnwillingToPerform,
                                "VLV offset must be at least 1",
                                vec![vlv_control(0, total, 61)],
                            );
                            return Ok(());
                        }
                        let pos = if *content_count > 0 {
                            ((*offset as f64) * (total as f64) / (*content_count as f64)).round()
                                as usize
                        } else {
                            *offset as usize
                        };
                        pos.clamp(1, total.max(1))
                    }
                    VlvTarget::GreaterOrEqual(value) => {
                        let key = keys
                            .first()
                            .and_then(|k| schema::attribute(&k.attribute_name));
                        match key {
                            Some(at) => {
                                let want = normalize(at.syntax, value);
                                let snap = &state.snapshot;
                                state
                                    .matches
                                    .iter()
                                    .position(|&i| {
                                        first_key(&snap.entries[i as usize], at)
                                            .is_some_and(|k| filter::compare(at, k, &want).is_ge())
                                    })
                                    .map(|p| p + 1)
                                    .unwrap_or(total + 1)
                            }
                            None => total + 1,
                        }
                    }
                };
                let from = target.saturating_sub(v.before as usize).max(1);
                let to = (target + v.after as usize).min(total);
                let snap = state.snapshot.clone();
                let window: Vec<u32> = if total == 0 || from > to {
                    Vec::new()
                } else {
                    state.matches[from - 1..to].to_vec()
                };
                let mut code = LdapResultCode::Success;
                for (sent, i) in window.into_iter().enumerate() {
                    if sent >= client_limit.min(server_limit) {
                        code = LdapResultCode::SizeLimitExceeded;
                        break;
                    }
                    let e = &snap.entries[i as usize];
                    self.send_entry(id, e, &sel, req.typesonly);
                }
                response_controls.push(vlv_control(target, total, 0));
                self.done(id, code, "", response_controls);
                return Ok(());
            }

            // A page, or the whole sorted list.
            let page = match paged {
                Some((size, _)) => (size as usize).min(server_limit),
                None => server_limit,
            };
            let mut sent = 0;
            let mut code = LdapResultCode::Success;
            let snap = state.snapshot.clone();
            while state.pos < total && sent < page {
                if sent >= client_limit {
                    code = LdapResultCode::SizeLimitExceeded;
                    break;
                }
                if let Some(t) = time_limit
                    && started.elapsed() > t
                {
                    code = LdapResultCode::TimeLimitExceeded;
                    break;
                }
                let e = &snap.entries[state.matches[state.pos] as usize];
                self.send_entry(id, e, &sel, req.typesonly);
                state.pos += 1;
                sent += 1;
                if self.wbuf.len() >= FLUSH_AT {
                    self.flush().await?;
                    if self.abandoned(id).await {
                        return Ok(());
                    }
                }
            }
            if paged.is_some() {
                let more = state.pos < total && code == LdapResultCode::Success;
                let cookie = if more {
                    let c = self.next_cookie.to_be_bytes().to_vec();
                    self.next_cookie += 1;
                    self.paged.insert(c.clone(), state);
                    // A client that never finishes its pages must not hold many.
                    if self.paged.len() > 16
                        && let Some(k) = self.paged.keys().next().cloned()
                    {
                        self.paged.remove(&k);
                    }
                    c
                } else {
                    Vec::new()
                };
                response_controls.push(LdapControl::SimplePagedResults {
                    size: total as i64,
                    cookie,
                });
            } else if state.pos < total && code == LdapResultCode::Success {
                code = LdapResultCode::SizeLimitExceeded;
            }
            self.done(id, code, "", response_controls);
            return Ok(());
        }

        // A plain search: streamed.
        let limit = client_limit.min(server_limit);
        let mut sent = 0usize;
        let mut code = LdapResultCode::Success;
        let mut checked = 0usize;
        let ids: Box<dyn Iterator<Item = u32> + Send> = match &candidates {
            Some(c) => Box::new(c.iter().copied()),
            None => Box::new(0..snap.entries.len() as u32),
        };
        for i in ids {
            checked += 1;
            if checked.is_multiple_of(1024)
                && let Some(t) = time_limit
                && started.elapsed() > t
            {
                code = LdapResultCode::TimeLimitExceeded;
                break;
            }
            if !matches(i) {
                continue;
            }
            if sent == limit {
                code = LdapResultCode::SizeLimitExceeded;
                break;
            }
            let e = &snap.entries[i as usize];
            self.send_entry(id, e, &sel, req.typesonly);
            sent += 1;
            if self.wbuf.len() >= FLUSH_AT {
                self.flush().await?;
                if self.abandoned(id).await {
                    return Ok(());
                }
            }
        }
        let message = if code == LdapResultCode::SizeLimitExceeded {
            format!("more than {limit} entries match; narrow the search or page through it")
        } else {
            String::new()
        };
        self.done(id, code, &message, Vec::new());
        Ok(())
    }
}

/// A candidate list this short is checked as it is, not narrowed further.
const NARROW_BELOW: usize = 4;
/// At most this many more trigram lists narrow a substring search's
/// candidates (each costs a pass; the rarest do most of the work).
const NARROW_LISTS: usize = 3;

/// Keeps in `out` (sorted) the numbers `list` (sorted) also holds; each is
/// looked for after the last one found, so the pass is one walk of `out`
/// with binary searches over what is left of `list`.
fn intersect(out: &mut Vec<u32>, list: &[u32]) {
    let mut rest = list;
    out.retain(|x| {
        let p = rest.partition_point(|y| y < x);
        rest = &rest[p..];
        rest.first() == Some(x)
    });
}

/// The entries the indexes narrow a search to (a superset of the matches,
/// in entry order), or `None` when every entry must be looked at. An
/// index's own list is lent, not copied.
fn candidates<'a>(snap: &'a Snapshot, f: &Filter) -> Option<Cow<'a, [u32]>> {
    match f {
        Filter::Equal(at, v) => {
            let k = INDEXED.iter().position(|n| *n == at.name)?;
            Some(
                snap.index[k]
                    .get(v.as_str())
                    .map_or(Cow::Borrowed(&[][..]), |l| Cow::Borrowed(l.as_slice())),
            )
        }
        Filter::Substrings(at, initial, any, final_) if TRIGRAM.contains(&at.name) => {
            // A match holds every trigram of every piece: the entries in
            // all their lists. The rarest list, narrowed by the next rarest
            // while that pays.
            let mut lists: Vec<&Vec<u32>> = Vec::new();
            for piece in initial.iter().chain(any.iter()).chain(final_.iter()) {
                for w in piece.as_bytes().windows(3) {
                    match snap.trigrams.get(&[w[0], w[1], w[2]]) {
                        // A trigram no value holds: nothing matches.
                        None => return Some(Cow::Borrowed(&[])),
                        Some(list) => lists.push(list),
                    }
                }
            }
            lists.sort_unstable_by_key(|l| l.len());
            lists.dedup_by(|a, b| std::ptr::eq(*a, *b));
            let (first, rest) = lists.split_first()?;
            if first.len() <= NARROW_BELOW || rest.is_empty() {
                return Some(Cow::Borrowed(first.as_slice()));
            }
            let mut out = first.to_vec();
            for list in rest.iter().take(NARROW_LISTS) {
                intersect(&mut out, list);
                if out.len() <= NARROW_BELOW {
                    break;
                }
            }
            Some(Cow::Owned(out))
        }
        Filter::And(v) => v
            .iter()
            .filter_map(|f| candidates(snap, f))
            .min_by_key(|c| c.len()),
        Filter::Or(v) if !v.is_empty() => {
            let mut out = Vec::new();
            for f in v {
                out.extend_from_slice(&candidates(snap, f)?);
            }
            out.sort_unstable();
            out.dedup();
            Some(Cow::Owned(out))
        }
        _ => None,
    }
}

fn first_key<'a>(e: &'a Entry, at: &AttributeType) -> Option<&'a str> {
    e.attr(at).and_then(|a| a.norm.first()).map(|v| &**v)
}

/// Sorts by the keys (RFC 2891 §1.1: entries without the attribute last).
/// Returns the sort result code and the attribute it is about.
fn sort_list(
    snap: &Snapshot,
    list: &mut [u32],
    keys: &[ldap3_proto::control::ServerSortRequet],
    visible: &dyn Fn(&AttributeType) -> bool,
) -> (u8, Option<&'static str>) {
    let mut resolved = Vec::new();
    for k in keys {
        let Some(at) = schema::attribute(&k.attribute_name).filter(|a| visible(a)) else {
            return (16, None); // noSuchAttribute
        };
        if let Some(rule) = &k.ordering_rule {
            let ok = matches!(
                rule.to_ascii_lowercase().as_str(),
                "caseignoreorderingmatch" | "2.5.13.3" | "caseexactorderingmatch" | "2.5.13.6"
            );
            if !ok {
                return (18, Some(at.name)); // inappropriateMatching
            }
        }
        resolved.push(SortKey {
            at,
            reverse: k.reverse_order,
        });
    }
    list.sort_by(|&a, &b| {
        let (ea, eb) = (&snap.entries[a as usize], &snap.entries[b as usize]);
        for k in &resolved {
            let ord = match (first_key(ea, k.at), first_key(eb, k.at)) {
                (Some(x), Some(y)) => {
                    let o = filter::compare(k.at, x, y);
                    if k.reverse { o.reverse() } else { o }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    (0, None)
}

fn vlv_control(target: usize, total: usize, code: i64) -> LdapControl {
    LdapControl::Unknown {
        oid: controls::VLV_RESPONSE.into(),
        criticality: false,
        value: Some(controls::encode_vlv_response(
            target as i64,
            total as i64,
            code,
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::intersect;

    #[test]
    fn intersect_keeps_what_both_lists_hold() {
        let cases: &[(&[u32], &[u32], &[u32])] = &[
            (&[1, 3, 5, 7, 9], &[0, 3, 4, 9, 10], &[3, 9]),
            (&[1, 2, 3], &[], &[]),
            (&[], &[1, 2], &[]),
            (&[5], &[1, 2, 3, 4, 5], &[5]),
            (&[0, 100, 200], &[0, 100, 200], &[0, 100, 200]),
            (&[2, 4, 6], &[1, 3, 5, 7], &[]),
        ];
        for (a, b, want) in cases {
            let mut out = a.to_vec();
            intersect(&mut out, b);
            assert_eq!(out, *want, "{a:?} ∩ {b:?}");
        }
    }
}
