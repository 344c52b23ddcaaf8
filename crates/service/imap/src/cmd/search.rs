//! SEARCH, SORT, THREAD and their UID forms (RFC 9051 §6.4.4, RFC 4731 ESEARCH,
//! RFC 5182 SEARCHRES, RFC 5256 SORT/THREAD, RFC 5957 SORT=DISPLAY, RFC 7162
//! MODSEQ search).
//!
//! Text keys match case-insensitively against decoded text: addresses and
//! subjects as the item holds them (RFC 2047 decoded), bodies in UTF-8 whatever
//! their charset, header fields with their encoded words decoded.
use crate::error::{ImapError, Result};
use crate::mailbox::{Meta, Selected};
use crate::rewrite::{SearchReturn, format_set};
use crate::session::{Done, Session};
use imap_types::core::Vec1;
use imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_types::extensions::thread::ThreadingAlgorithm;
use imap_types::search::SearchKey;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use postgate_imap_proto::envelope;
use postgate_imap_proto::sort::{self, SortItem};
use postgate_imap_proto::thread::{self, ThreadItem};
use postgate_store::{MessageMeta, MessageRef};
use postgate_types::{Flags, ItemContent};
use std::collections::HashMap;

/// Messages examined per round trip to the store.
const CHUNK: usize = 256;

/// What evaluating the keys needs besides the mailbox view.
#[derive(Debug, Default, Clone, Copy)]
struct Needs {
    meta: bool,
    content: bool,
    raw: bool,
}

fn needs(keys: &[SearchKey<'_>], n: &mut Needs) {
    for k in keys {
        match k {
            SearchKey::And(v) => needs(v.as_ref(), n),
            SearchKey::Not(k) => needs(std::slice::from_ref(k.as_ref()), n),
            SearchKey::Or(a, b) => {
                needs(std::slice::from_ref(a.as_ref()), n);
                needs(std::slice::from_ref(b.as_ref()), n);
            }
            SearchKey::Larger(_)
            | SearchKey::Smaller(_)
            | SearchKey::Before(_)
            | SearchKey::Older(_)
            | SearchKey::Younger(_)
            | SearchKey::On(_)
            | SearchKey::Since(_) => n.meta = true,
            SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_) => {
                n.meta = true;
                n.raw = true;
            }
            SearchKey::From(_) | SearchKey::To(_) | SearchKey::Cc(_) | SearchKey::Bcc(_) => {
                n.meta = true;
                n.raw = true;
            }
            SearchKey::Subject(_) | SearchKey::Body(_) => {
                n.meta = true;
                n.content = true;
            }
            SearchKey::Text(_) => {
                n.meta = true;
                n.content = true;
                n.raw = true;
            }
            SearchKey::Header(name, _) => {
                n.meta = true;
                n.raw |= saved_key(name).is_none();
            }
            _ => {}
        }
    }
}

/// One message as the evaluator sees it.
struct Msg<'a> {
    index: usize,
    uid: u32,
    view: &'a Meta,
    meta: Option<&'a MessageMeta>,
    content: Option<&'a ItemContent>,
    raw: Option<&'a [u8]>,
    /// Header fields, unfolded and decoded, parsed on first use.
    headers: std::cell::OnceCell<Vec<(String, String)>>,
}

impl Msg<'_> {
    fn headers(&self) -> &[(String, String)] {
        self.headers.get_or_init(|| {
            let raw = self.raw.unwrap_or_default();
            let end = header_end(raw);
            let text = String::from_utf8_lossy(&raw[..end]);
            let mut out: Vec<(String, String)> = Vec::new();
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.starts_with([' ', '\t']) {
                    if let Some(last) = out.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(line.trim());
                    }
                } else if let Some((name, value)) = line.split_once(':') {
                    out.push((name.trim().to_string(), value.trim().to_string()));
                }
            }
            for h in &mut out {
                h.1 = postgate_mime::utf7::decode_words(&h.1);
            }
            out
        })
    }
}

/// Where the header of a message ends (after the blank line).
fn header_end(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        let line_end = memchr::memchr(b'\n', &raw[i..])
            .map(|p| i + p + 1)
            .unwrap_or(raw.len());
        let line = &raw[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        i = line_end;
    }
    raw.len()
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Address keys (RFC 9051 §6.4.4 FROM, TO, CC, BCC) match any address of
/// the field: its decoded display name, its addr-spec, or a group's name.
fn address_matches(m: &Msg<'_>, field: &str, needle: &str) -> bool {
    let Some(value) = raw_header(m.raw.unwrap_or_default(), field) else {
        return false;
    };
    envelope::parse_addresses(value.as_bytes()).iter().any(|a| {
        let name = a
            .name
            .as_deref()
            .map(|n| postgate_mime::utf7::decode_words(&String::from_utf8_lossy(n)))
            .unwrap_or_default();
        let mailbox = String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or_default());
        let text = match &a.domain {
            Some(d) => format!("{name} <{mailbox}@{}>", String::from_utf8_lossy(d)),
            None => format!("{name} {mailbox}"),
        };
        contains_ci(&text, needle)
    })
}

/// The first field named `name` in a message's header, unfolded.
fn raw_header(raw: &[u8], name: &str) -> Option<String> {
    let end = header_end(raw);
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn astr(a: &impl AsRef<[u8]>) -> String {
    String::from_utf8_lossy(a.as_ref()).into_owned()
}

/// The day of a time in a zone (minutes east of UTC): RFC 3501 §6.4.4's
/// dates "disregarding time and timezone" are the date the time shows.
fn day_of(ts: i64, zone: i32) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(ts + i64::from(zone) * 60, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

/// The field-name prefix the command rewrite gives RFC 8514's SAVED*
/// keys (rewrite.rs): "SAVED:BEFORE", "SAVED:ON", "SAVED:SINCE".
const SAVED_PREFIX: &str = "SAVED:";

/// Which SAVED* key a HEADER key stands for, if it stands for one.
fn saved_key(name: &impl AsRef<[u8]>) -> Option<std::cmp::Ordering> {
    let name = std::str::from_utf8(name.as_ref()).ok()?;
    let rest = name.strip_prefix(SAVED_PREFIX)?;
    // The ordering the save day must have against the date given.
    match rest {
        "BEFORE" => Some(std::cmp::Ordering::Less),
        "ON" => Some(std::cmp::Ordering::Equal),
        "SINCE" => Some(std::cmp::Ordering::Greater),
        _ => None,
    }
}

fn in_set(set: &SequenceSet, n: u32, star: u32) -> bool {
    set.0.as_ref().iter().any(|s| {
        let v = |x: &SeqOrUid| match x {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => star,
        };
        match s {
            Sequence::Single(x) => v(x) == n,
            Sequence::Range(a, b) => (v(a).min(v(b))..=v(a).max(v(b))).contains(&n),
        }
    })
}

/// Evaluates a key (RFC 9051 §6.4.4).
fn eval(key: &SearchKey<'_>, m: &Msg<'_>, count: u32, max_uid: u32) -> bool {
    let f = m.view.flags;
    let size = m.meta.map(|x| x.size).unwrap_or(0);
    let internal = m.meta.map(|x| day_of(x.internal_date, x.internal_zone));
    let sent = || {
        m.raw
            .and_then(postgate_mime::sent_day)
            .and_then(|(y, mo, d)| chrono::NaiveDate::from_ymd_opt(y, mo, d))
            .or(internal)
    };
    let c = m.content;
    match key {
        SearchKey::And(v) => v.as_ref().iter().all(|k| eval(k, m, count, max_uid)),
        SearchKey::Or(a, b) => eval(a, m, count, max_uid) || eval(b, m, count, max_uid),
        SearchKey::Not(k) => !eval(k, m, count, max_uid),
        SearchKey::SequenceSet(s) => in_set(s, m.index as u32 + 1, count),
        SearchKey::Uid(s) => in_set(s, m.uid, max_uid),
        SearchKey::All => true,
        SearchKey::Answered => f.contains(Flags::ANSWERED),
        SearchKey::Unanswered => !f.contains(Flags::ANSWERED),
        SearchKey::Deleted => f.contains(Flags::DELETED),
        SearchKey::Undeleted => !f.contains(Flags::DELETED),
        SearchKey::Draft => f.contains(Flags::DRAFT),
        SearchKey::Undraft => !f.contains(Flags::DRAFT),
        SearchKey::Flagged => f.contains(Flags::FLAGGED),
        SearchKey::Unflagged => !f.contains(Flags::FLAGGED),
        SearchKey::Seen => f.contains(Flags::SEEN),
        SearchKey::Unseen => !f.contains(Flags::SEEN),
        SearchKey::Recent => m.view.recent,
        SearchKey::Old => !m.view.recent,
        // RFC 3501: NEW is RECENT UNSEEN.
        SearchKey::New => m.view.recent && !f.contains(Flags::SEEN),
        SearchKey::Keyword(k) => m
            .view
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        SearchKey::Unkeyword(k) => !m
            .view
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        SearchKey::Larger(n) => size > *n as u64,
        SearchKey::Smaller(n) => size < *n as u64,
        SearchKey::Before(d) => internal.is_some_and(|x| x < *d.as_ref()),
        SearchKey::On(d) => internal.is_some_and(|x| x == *d.as_ref()),
        SearchKey::Since(d) => internal.is_some_and(|x| x >= *d.as_ref()),
        // RFC 5032 §3: OLDER n is an internal date at or before now - n
        // seconds, YOUNGER n one at or after it, to the second.
        SearchKey::Older(n) => m.meta.is_some_and(|x| {
            x.internal_date <= chrono::Utc::now().timestamp() - i64::from(n.get())
        }),
        SearchKey::Younger(n) => m.meta.is_some_and(|x| {
            x.internal_date >= chrono::Utc::now().timestamp() - i64::from(n.get())
        }),
        SearchKey::SentBefore(d) => sent().is_some_and(|x| x < *d.as_ref()),
        SearchKey::SentOn(d) => sent().is_some_and(|x| x == *d.as_ref()),
        SearchKey::SentSince(d) => sent().is_some_and(|x| x >= *d.as_ref()),
        SearchKey::From(s) => address_matches(m, "From", &astr(s)),
        SearchKey::To(s) => address_matches(m, "To", &astr(s)),
        SearchKey::Cc(s) => address_matches(m, "Cc", &astr(s)),
        SearchKey::Bcc(s) => address_matches(m, "Bcc", &astr(s)),
        SearchKey::Subject(s) => {
            c.is_some_and(|c| contains_ci(c.subject.as_deref().unwrap_or(""), &astr(s)))
        }
        SearchKey::Body(s) => c.is_some_and(|c| body_matches(c, &astr(s))),
        SearchKey::Text(s) => {
            let needle = astr(s);
            c.is_some_and(|c| body_matches(c, &needle))
                || m.headers()
                    .iter()
                    .any(|(n, v)| contains_ci(&format!("{n}: {v}"), &needle))
        }
        SearchKey::Header(name, value) => match saved_key(name) {
            // RFC 8514 §4.2: the save day (UTC, as FETCH SAVEDATE shows it)
            // against the date; the internal date where none was kept.
            Some(want) => {
                let Some(date) = crate::rewrite::search_date(value.as_ref()) else {
                    return false;
                };
                m.meta.is_some_and(|x| {
                    let day = match x.save_date {
                        Some(t) => day_of(t, 0),
                        None => day_of(x.internal_date, x.internal_zone),
                    };
                    let order = day.cmp(&date);
                    order == want || (want.is_gt() && order.is_eq())
                })
            }
            None => {
                let (name, value) = (astr(name), astr(value));
                m.headers()
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(&name) && contains_ci(v, &value))
            }
        },
        SearchKey::ModSequence { modseq, .. } => m.view.modseq >= *modseq,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

fn body_matches(c: &ItemContent, needle: &str) -> bool {
    c.text.as_deref().is_some_and(|t| contains_ci(t, needle))
        || c.html.as_deref().is_some_and(|t| contains_ci(t, needle))
}

fn has_modseq_key(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(v) => has_modseq_key(v.as_ref()),
        SearchKey::Not(k) => has_modseq_key(std::slice::from_ref(k.as_ref())),
        SearchKey::Or(a, b) => {
            has_modseq_key(std::slice::from_ref(a.as_ref()))
                || has_modseq_key(std::slice::from_ref(b.as_ref()))
        }
        _ => false,
    })
}

/// Data loaded for a chunk of messages.
#[derive(Default)]
struct Loaded {
    meta: HashMap<u32, MessageMeta>,
    content: HashMap<MessageRef, ItemContent>,
    raw: HashMap<MessageRef, Vec<u8>>,
}

impl Session {
    /// Loads what `need` says for the messages at `indices`.
    async fn load(&self, folder: i64, uids: &[u32], need: Needs) -> Result<Loaded> {
        let store = &self.ctx.store;
        let mut l = Loaded::default();
        if !need.meta {
            return Ok(l);
        }
        l.meta = store
            .messages_meta(folder, uids.to_vec())
            .await?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect();
        for m in l.meta.values() {
            if need.content
                && let Some(c) = store.message_content(m.message).await?
            {
                l.content.insert(m.message, c);
            }
            if need.raw
                && let Some(r) = store.message_bytes(m.message).await?
            {
                l.raw.insert(m.message, r);
            }
        }
        Ok(l)
    }

    /// The view indices matching `keys`, ascending.
    async fn matching(&mut self, keys: &[SearchKey<'_>], extra: Needs) -> Result<Vec<usize>> {
        self.matching_reported(keys, extra, false).await
    }

    /// As [`Session::matching`]; with `report`, a search that runs past the
    /// progress interval says how many messages it has examined of how many
    /// (RFC 9585 §3), between chunks.
    async fn matching_reported(
        &mut self,
        keys: &[SearchKey<'_>],
        extra: Needs,
        report: bool,
    ) -> Result<Vec<usize>> {
        let every = self.ctx.config.progress_interval;
        let mut last = tokio::time::Instant::now();
        let mut need = extra;
        needs(keys, &mut need);
        let (folder, uids, count, max_uid) = {
            let sel = self.selected_mut()?;
            (
                sel.folder,
                sel.uids.clone(),
                sel.uids.len() as u32,
                sel.uids.last().copied().unwrap_or(0),
            )
        };
        let mut out = Vec::new();
        for (c, chunk) in uids.chunks(CHUNK).enumerate() {
            if report && c > 0 && last.elapsed() >= every {
                let done = (c * CHUNK) as u64;
                self.in_progress(Some(done), Some(uids.len() as u64), "Searching")
                    .await;
                last = tokio::time::Instant::now();
            }
            let loaded = self.load(folder, chunk, need).await?;
            let sel: &Selected = self.selected_mut()?;
            for (k, uid) in chunk.iter().enumerate() {
                let index = c * CHUNK + k;
                let meta = loaded.meta.get(uid);
                if need.meta && meta.is_none() {
                    continue; // expunged meanwhile
                }
                let m = Msg {
                    index,
                    uid: *uid,
                    view: &sel.meta[index],
                    meta,
                    content: meta.and_then(|m| loaded.content.get(&m.message)),
                    raw: meta
                        .and_then(|m| loaded.raw.get(&m.message))
                        .map(Vec::as_slice),
                    headers: std::cell::OnceCell::new(),
                };
                if keys.iter().all(|k| eval(k, &m, count, max_uid)) {
                    out.push(index);
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn handle_search(
        &mut self,
        criteria: Vec1<SearchKey<'_>>,
        uid: bool,
        ret: Option<SearchReturn>,
        _empty_saved: bool,
    ) -> Result<Done> {
        let keys = criteria.as_ref();
        let modseq_key = has_modseq_key(keys);
        if modseq_key {
            self.enable_condstore();
        }
        let hits = self.matching_reported(keys, Needs::default(), true).await?;
        let sel = self.selected_mut()?;
        let ids: Vec<u32> = hits
            .iter()
            .map(|&i| if uid { sel.uids[i] } else { i as u32 + 1 })
            .collect();
        let highest = hits.iter().map(|&i| sel.meta[i].modseq).max();
        let rev2 = self.enabled.rev2;
        let ret = ret.or_else(|| {
            rev2.then(|| SearchReturn {
                all: true,
                ..SearchReturn::default()
            })
        });
        match ret {
            None => {
                let mut line = String::from("SEARCH");
                for id in &ids {
                    line.push_str(&format!(" {id}"));
                }
                if modseq_key && let Some(h) = highest {
                    // RFC 7162 §3.1.5.
                    line.push_str(&format!(" (MODSEQ {h})"));
                }
                self.untagged(&line);
            }
            Some(r) => {
                if r.save {
                    let sel = self.selected_mut()?;
                    let mut saved: Vec<u32> = hits.iter().map(|&i| sel.uids[i]).collect();
                    saved.sort_unstable();
                    // RFC 5182 §2.4: with MIN or MAX only those are saved.
                    if (r.min || r.max) && !r.all && !r.count {
                        let mut keep = Vec::new();
                        if r.min
                            && let Some(&f) = saved.first()
                        {
                            keep.push(f);
                        }
                        if r.max
                            && let Some(&l) = saved.last()
                        {
                            keep.push(l);
                        }
                        keep.dedup();
                        saved = keep;
                    }
                    sel.saved = saved;
                }
                if r.update {
                    // RFC 5267 §4.3: from now on, changes to this result are
                    // reported.
                    let sel = self.selected_mut()?;
                    let results: Vec<u32> = hits.iter().map(|&i| sel.uids[i]).collect();
                    self.keep_live(criteria.as_ref(), uid, None, results)?;
                }
                let only_save = r.save && !r.min && !r.max && !r.all && !r.count;
                if !only_save {
                    // RFC 4731 §3.1: ESEARCH (TAG "…") [UID] items (the
                    // hits are in ascending order).
                    let mut line = esearch_line(&self.current_tag, uid, &r, &ids);
                    if modseq_key && !ids.is_empty() {
                        // RFC 7162 §3.1.5 with RFC 4731: the highest modseq of
                        // the messages returned (only MIN/MAX if that is all).
                        let sel = self.selected_mut()?;
                        let returned: Vec<usize> = if r.all || r.count {
                            hits.clone()
                        } else {
                            let mut v = Vec::new();
                            if r.min
                                && let Some(&f) = hits.first()
                            {
                                v.push(f);
                            }
                            if r.max
                                && let Some(&l) = hits.last()
                            {
                                v.push(l);
                            }
                            v
                        };
                        if let Some(h) = returned.iter().map(|&i| sel.meta[i].modseq).max() {
                            line.push_str(&format!(" MODSEQ {h}"));
                        }
                    }
                    self.untagged(&line);
                }
            }
        }
        self.sync(uid).await?;
        Ok(Done::default())
    }

    /// The messages matching `keys`, each made into an item for SORT or
    /// THREAD by `make` (id: UID or sequence number, metadata, decoded
    /// content, raw bytes), loaded a chunk at a time.
    async fn matching_items<T>(
        &mut self,
        keys: &[SearchKey<'_>],
        uid: bool,
        make: fn(u32, &MessageMeta, Option<&ItemContent>, &[u8]) -> T,
    ) -> Result<Vec<T>> {
        let need = Needs {
            meta: true,
            content: true,
            raw: true,
        };
        let hits = self.matching_reported(keys, Needs::default(), true).await?;
        let (folder, uids): (i64, Vec<u32>) = {
            let sel = self.selected_mut()?;
            (sel.folder, hits.iter().map(|&i| sel.uids[i]).collect())
        };
        let mut items = Vec::with_capacity(hits.len());
        for (chunk_hits, chunk_uids) in hits.chunks(CHUNK).zip(uids.chunks(CHUNK)) {
            let loaded = self.load(folder, chunk_uids, need).await?;
            for (&i, u) in chunk_hits.iter().zip(chunk_uids) {
                let Some(meta) = loaded.meta.get(u) else {
                    continue;
                };
                let content = loaded.content.get(&meta.message);
                let raw = loaded
                    .raw
                    .get(&meta.message)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                items.push(make(
                    if uid { *u } else { i as u32 + 1 },
                    meta,
                    content,
                    raw,
                ));
            }
        }
        Ok(items)
    }

    pub(crate) async fn handle_sort(
        &mut self,
        criteria: Vec1<SortCriterion>,
        keys: Vec1<SearchKey<'_>>,
        uid: bool,
        esort: Option<crate::rewrite::SearchReturn>,
    ) -> Result<Done> {
        let mut items = self.matching_items(keys.as_ref(), uid, sort_item).await?;
        let crit: Vec<(sort::SortKey, bool)> = criteria
            .as_ref()
            .iter()
            .map(|c| {
                let k = match c.key {
                    SortKey::Arrival => sort::SortKey::Arrival,
                    SortKey::Cc => sort::SortKey::Cc,
                    SortKey::Date => sort::SortKey::Date,
                    SortKey::From => sort::SortKey::From,
                    SortKey::Size => sort::SortKey::Size,
                    SortKey::Subject => sort::SortKey::Subject,
                    SortKey::To => sort::SortKey::To,
                    SortKey::DisplayFrom => sort::SortKey::DisplayFrom,
                    SortKey::DisplayTo => sort::SortKey::DisplayTo,
                };
                (k, c.reverse)
            })
            .collect();
        sort::sort(&mut items, &crit);
        let ids: Vec<u32> = items.iter().map(|it| it.id).collect();
        let line = match esort {
            None => {
                let mut line = String::from("SORT");
                for id in &ids {
                    line.push_str(&format!(" {id}"));
                }
                line
            }
            Some(r) => {
                if r.update {
                    // RFC 5267 §4.3: CONTEXT=SORT, the result kept in order.
                    let sel = self.selected_mut()?;
                    let results: Vec<u32> = if uid {
                        ids.clone()
                    } else {
                        ids.iter().map(|&n| sel.uids[n as usize - 1]).collect()
                    };
                    self.keep_live(keys.as_ref(), uid, Some(crit.clone()), results)?;
                }
                // RFC 5267 §3.1: ESEARCH, with MIN and MAX the first and the
                // last in the sort order and ALL the sorted list.
                esearch_line(&self.current_tag, uid, &r, &ids)
            }
        };
        self.untagged(&line);
        self.sync(uid).await?;
        Ok(Done::default())
    }

    pub(crate) async fn handle_thread(
        &mut self,
        algorithm: ThreadingAlgorithm<'_>,
        keys: Vec1<SearchKey<'_>>,
        uid: bool,
        _empty_saved: bool,
    ) -> Result<Done> {
        let alg = match algorithm {
            ThreadingAlgorithm::OrderedSubject => thread::Algorithm::OrderedSubject,
            ThreadingAlgorithm::References => thread::Algorithm::References,
            ThreadingAlgorithm::Other(_) => {
                return Err(ImapError::bad("Unsupported threading algorithm"));
            }
        };
        let items = self.matching_items(keys.as_ref(), uid, thread_item).await?;
        let threads = thread::thread(&items, alg);
        let mut out = b"* THREAD ".to_vec();
        thread::write(&mut out, &threads);
        if out.ends_with(b" ") {
            out.pop();
        }
        out.extend_from_slice(b"\r\n");
        self.raw(&out);
        self.sync(uid).await?;
        Ok(Done::default())
    }
}

/// The RFC 5256 §3 key (addr-mailbox) and RFC 5957 display key of the first
/// address of a field; a group counts by its name.
fn first_address_keys(raw: &[u8], field: &str) -> (String, String) {
    let Some(value) = raw_header(raw, field) else {
        return (String::new(), String::new());
    };
    let list = envelope::parse_addresses(value.as_bytes());
    let Some(a) = list.first() else {
        return (String::new(), String::new());
    };
    let mailbox = String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or_default()).into_owned();
    let domain = a
        .domain
        .as_deref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    let name = a
        .name
        .as_deref()
        .map(|n| postgate_mime::utf7::decode_words(&String::from_utf8_lossy(n)))
        .filter(|n| !n.is_empty());
    (
        sort::addr_mailbox_key(&mailbox),
        sort::display_key(name.as_deref(), &mailbox, domain.as_deref()),
    )
}

fn sort_item(id: u32, meta: &MessageMeta, content: Option<&ItemContent>, raw: &[u8]) -> SortItem {
    let (from, display_from) = first_address_keys(raw, "From");
    let (to, display_to) = first_address_keys(raw, "To");
    let (cc, _) = first_address_keys(raw, "Cc");
    SortItem {
        id,
        arrival: meta.internal_date,
        sent: meta.sent_date,
        size: meta.size,
        cc,
        from,
        to,
        display_from,
        display_to,
        subject: sort::base_subject(content.and_then(|c| c.subject.as_deref()).unwrap_or("")),
    }
}

fn thread_item(
    id: u32,
    meta: &MessageMeta,
    content: Option<&ItemContent>,
    raw: &[u8],
) -> ThreadItem {
    let header = |name: &str| raw_header(raw, name);
    let subject = content.and_then(|c| c.subject.clone()).unwrap_or_default();
    let (base, is_reply) = sort::base_subject_and_reply(&subject);
    ThreadItem {
        id,
        sent_date: meta.sent_date.unwrap_or(meta.internal_date),
        message_id: header("Message-ID").and_then(|v| thread::parse_msg_ids(&v).into_iter().next()),
        references: header("References")
            .map(|v| thread::parse_msg_ids(&v))
            .unwrap_or_default(),
        in_reply_to: header("In-Reply-To")
            .and_then(|v| thread::parse_msg_ids(&v).into_iter().next()),
        base_subject: base,
        is_reply,
    }
}

/// An ESEARCH reply (RFC 4731 §3.1) to SEARCH or SORT: MIN and MAX the
/// first and last of `ids` in their order (ascending for SEARCH, the sort
/// order for SORT, RFC 5267 §3.1), ALL all of them in that order, COUNT,
/// and PARTIAL (RFC 5267 §4.4).
fn esearch_line(tag: &str, uid: bool, r: &SearchReturn, ids: &[u32]) -> String {
    let mut line = crate::mailbox::esearch_head(tag, uid);
    if r.min
        && let Some(v) = ids.first()
    {
        line.push_str(&format!(" MIN {v}"));
    }
    if r.max
        && let Some(v) = ids.last()
    {
        line.push_str(&format!(" MAX {v}"));
    }
    if r.all && !ids.is_empty() {
        line.push_str(&format!(" ALL {}", format_set(ids)));
    }
    if r.count {
        line.push_str(&format!(" COUNT {}", ids.len()));
    }
    if let Some(range) = r.partial {
        line.push_str(&partial_item(range, ids));
    }
    line
}

/// " PARTIAL (low:high set)" of a result list in its order (RFC 5267 §4.4;
/// RFC 9394 §3.1: negative positions count from the end), NIL for none.
fn partial_item((low, high): (i64, i64), ids: &[u32]) -> String {
    let set = match partial_span((low, high), ids.len()) {
        Some(span) => format_set(&ids[span]),
        None => "NIL".to_string(),
    };
    format!(" PARTIAL ({low}:{high} {set})")
}

/// Where a PARTIAL range (1-based positions, both ends inclusive; RFC 9394
/// §3.1: negative ones count back from the last) falls in a list of `n`,
/// clamped to it; `None` if outside. For SEARCH's PARTIAL and FETCH's.
pub(crate) fn partial_span((low, high): (i64, i64), n: usize) -> Option<std::ops::Range<usize>> {
    let n = n as i64;
    let (from, to) = if low < 0 {
        (n + low + 1, n + high + 1)
    } else {
        (low, high)
    };
    let (from, to) = (from.max(1), to.min(n));
    (from <= to).then(|| (from - 1) as usize..to as usize)
}

impl Session {
    /// Keeps a result live (RFC 5267 §4.3): `results` are its UIDs,
    /// ascending or in the order of `sort`. Past the limit the search is
    /// answered but not kept: NOUPDATE (§4.2).
    fn keep_live(
        &mut self,
        keys: &[SearchKey<'_>],
        uid: bool,
        sort: Option<Vec<(sort::SortKey, bool)>>,
        results: Vec<u32>,
    ) -> Result<()> {
        let tag = self.current_tag.clone();
        let sel = self.selected_mut()?;
        if sel.live.len() >= crate::mailbox::MAX_LIVE_SEARCHES {
            self.untagged(&format!("NO [NOUPDATE \"{tag}\"] Too many live searches"));
            return Ok(());
        }
        sel.live.retain(|l| l.tag != tag);
        sel.live.push(crate::mailbox::LiveSearch {
            tag,
            keys: keys
                .iter()
                .cloned()
                .map(imap_types::IntoStatic::into_static)
                .collect(),
            uid,
            sort,
            results,
        });
        Ok(())
    }

    /// CANCELUPDATE (RFC 5267 §4.3.1): the named live searches end.
    pub(crate) fn handle_cancelupdate(&mut self, tags: &[String]) -> Result<Done> {
        let sel = self.selected_mut()?;
        sel.live.retain(|l| !tags.contains(&l.tag));
        Ok(Done::default())
    }

    /// Re-evaluates every live search and reports what left (REMOVEFROM)
    /// and what joined (ADDTO) its result (RFC 5267 §4.3). Unsorted
    /// results have no positions: 0 stands for them.
    pub(crate) async fn update_live_searches(&mut self) -> Result<()> {
        let count = self.selected_mut()?.live.len();
        for k in 0..count {
            let keys = std::mem::take(&mut self.selected_mut()?.live[k].keys);
            let sort = self.selected_mut()?.live[k].sort.clone();
            // The result now: UIDs in the sort order, or ascending.
            let now = match sort {
                Some(crit) => self
                    .matching_items(&keys, true, sort_item)
                    .await
                    .map(|mut items| {
                        sort::sort(&mut items, &crit);
                        items.iter().map(|it| it.id).collect::<Vec<u32>>()
                    }),
                None => match self.matching(&keys, Needs::default()).await {
                    // View indices ascend, so do their UIDs.
                    Ok(hits) => {
                        let sel = self.selected_mut()?;
                        Ok(hits.iter().map(|&i| sel.uids[i]).collect())
                    }
                    Err(e) => Err(e),
                },
            };
            let sel = self.selected_mut()?;
            sel.live[k].keys = keys;
            let view = &sel.uids;
            let lines =
                sel.live[k].report(now?, |u| view.binary_search(&u).map_or(0, |i| i as u32 + 1));
            for l in lines {
                self.untagged(&l);
            }
        }
        Ok(())
    }
}
