//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE
//! and VANISHED).
use crate::error::{ImapError, Result};
use crate::mailbox::flag_list;
use crate::rewrite::{FetchExtras, format_set};
use crate::session::{Done, Session};
use imap_types::command::FetchModifier;
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Part, Section};
use imap_types::sequence::SequenceSet;
use postgate_imap_proto::section::SectionSpec;
use postgate_imap_proto::{bodystructure, envelope, mime, section, wire};
use postgate_store::{FlagOp, MessageMeta};
use postgate_types::Flags;
use std::collections::HashMap;
use std::num::NonZeroU32;

/// Messages fetched per round trip to the store: bounds memory for a FETCH of
/// the whole of a large mailbox.
const CHUNK: usize = 64;

impl Session {
    pub(crate) async fn handle_fetch(
        &mut self,
        set: SequenceSet,
        names: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
        extras: FetchExtras,
    ) -> Result<Done> {
        let expanded;
        let mut items: Vec<MessageDataItemName<'_>> = match names {
            MacroOrMessageDataItemNames::Macro(m) => {
                expanded = m;
                expanded.expand()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
        };
        let mut changed_since = None;
        let mut vanished = false;
        for m in &modifiers {
            match m {
                FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && (!uid || !self.enabled.qresync || changed_since.is_none()) {
            // RFC 7162 §3.2.6.
            return Err(ImapError::bad(
                "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE",
            ));
        }
        if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
            // RFC 7162 §3.1: a CONDSTORE enabling command.
            self.enable_condstore();
        }
        if extras.only {
            // UID stood in for the items taken out (rewrite::FetchExtras).
            items.retain(|w| *w != MessageDataItemName::Uid);
        }
        if (uid || vanished) && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        let needs_meta = extras.preview
            || extras.emailid
            || extras.savedate
            || items.iter().any(|w| {
                !matches!(
                    w,
                    MessageDataItemName::Uid
                        | MessageDataItemName::Flags
                        | MessageDataItemName::ModSeq
                )
            });
        let needs_raw = items.iter().any(|w| {
            matches!(
                w,
                MessageDataItemName::Envelope
                    | MessageDataItemName::Body
                    | MessageDataItemName::BodyStructure
                    | MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Binary { .. }
                    | MessageDataItemName::BinarySize { .. }
            )
        });
        let store = self.ctx.store.clone();
        let show_recent = self.show_recent();
        let sel = self.selected_mut()?;
        let sets_seen = !sel.read_only
            && items.iter().any(|w| {
                matches!(
                    w,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Binary { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let mut indices = sel.resolve(&set, uid)?;
        if let Some(cs) = changed_since {
            indices.retain(|&i| sel.meta[i].modseq > cs);
        }
        if let Some(range) = extras.partial {
            // RFC 9394 §3.3: of the messages the set (and CHANGEDSINCE)
            // leaves, in ascending order, those at the range's positions.
            indices = match super::search::partial_span(range, indices.len()) {
                Some(span) => indices[span].to_vec(),
                None => Vec::new(),
            };
        }
        let folder = sel.folder;
        if vanished && let Some(cs) = changed_since {
            // RFC 7162 §3.2.6: expunged UIDs in the set, as VANISHED (EARLIER).
            let ch = store.changes_since(folder, cs).await?;
            let in_set: Vec<u32> = ch
                .vanished
                .into_iter()
                .filter(|u| uid_in(&set, *u))
                .collect();
            if !in_set.is_empty() {
                self.untagged(&format!("VANISHED (EARLIER) {}", format_set(&in_set)));
            }
        }
        let mut failed_cte = false;
        for chunk in indices.chunks(CHUNK) {
            let (uids, unseen): (Vec<u32>, Vec<u32>) = {
                let sel = self.selected_mut()?;
                let uids: Vec<u32> = chunk
                    .iter()
                    .filter_map(|&i| sel.uids.get(i).copied())
                    .collect();
                let unseen = chunk
                    .iter()
                    .filter(|&&i| !sel.meta[i].flags.contains(Flags::SEEN))
                    .map(|&i| sel.uids[i])
                    .collect();
                (uids, unseen)
            };
            // RFC 9051 §6.4.5: BODY[] without .PEEK sets \Seen; the FETCH then
            // carries the new FLAGS.
            let mut now_seen = Vec::new();
            if sets_seen && !unseen.is_empty() {
                let out = store
                    .store_flags(folder, unseen, FlagOp::Add, Flags::SEEN, Vec::new(), None)
                    .await?;
                let sel = self.selected_mut()?;
                for e in &out.changed {
                    sel.apply(e);
                    now_seen.push(e.uid);
                }
                self.announce_keywords(&out.changed);
            }
            let metas: HashMap<u32, MessageMeta> = if needs_meta {
                store
                    .messages_meta(folder, uids.clone())
                    .await?
                    .into_iter()
                    .map(|m| (m.uid, m))
                    .collect()
            } else {
                HashMap::new()
            };
            for &i in chunk {
                let (uid_i, meta_flags) = {
                    let sel = self.selected_mut()?;
                    (sel.uids[i], sel.meta[i].clone())
                };
                let meta = metas.get(&uid_i);
                if needs_meta && meta.is_none() {
                    // Expunged by another session since; its EXPUNGE comes later.
                    continue;
                }
                let raw = match (needs_raw, meta) {
                    (true, Some(m)) => match store.message_bytes(m.message).await? {
                        Some(r) => Some(r),
                        None => continue,
                    },
                    _ => None,
                };
                let root = raw.as_deref().map(mime::parse);
                let mut out = Vec::with_capacity(256);
                out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
                let mut first = true;
                let mut wrote_flags = false;
                for w in &items {
                    // Where this item starts (before its separator), to take
                    // it back out if it cannot be given.
                    let (mark, was_first) = (out.len(), first);
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    match w {
                        MessageDataItemName::Uid => {
                            out.extend_from_slice(format!("UID {uid_i}").as_bytes())
                        }
                        MessageDataItemName::Flags => {
                            wrote_flags = true;
                            out.extend_from_slice(
                                format!("FLAGS {}", flag_list(&meta_flags, show_recent)).as_bytes(),
                            )
                        }
                        MessageDataItemName::ModSeq => out.extend_from_slice(
                            format!("MODSEQ ({})", meta_flags.modseq).as_bytes(),
                        ),
                        MessageDataItemName::InternalDate => {
                            let m = meta.ok_or_else(|| ImapError::bad("internal error"))?;
                            out.extend_from_slice(
                                format!(
                                    "INTERNALDATE \"{}\"",
                                    imap_date(m.internal_date, m.internal_zone)
                                )
                                .as_bytes(),
                            )
                        }
                        MessageDataItemName::Rfc822Size => {
                            let m = meta.ok_or_else(|| ImapError::bad("internal error"))?;
                            out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes())
                        }
                        MessageDataItemName::Envelope => {
                            let (raw, root) = (raw.as_deref().unwrap_or_default(), root.as_ref());
                            out.extend_from_slice(b"ENVELOPE ");
                            match root {
                                Some(r) => envelope::envelope(&mut out, raw, r.header.clone()),
                                None => out.extend_from_slice(b"NIL"),
                            }
                        }
                        MessageDataItemName::Body => {
                            out.extend_from_slice(b"BODY ");
                            if let (Some(raw), Some(root)) = (raw.as_deref(), root.as_ref()) {
                                bodystructure::body(&mut out, raw, root);
                            }
                        }
                        MessageDataItemName::BodyStructure => {
                            out.extend_from_slice(b"BODYSTRUCTURE ");
                            if let (Some(raw), Some(root)) = (raw.as_deref(), root.as_ref()) {
                                bodystructure::bodystructure(&mut out, raw, root);
                            }
                        }
                        MessageDataItemName::BodyExt {
                            section: sec,
                            partial,
                            ..
                        } => {
                            let (raw, root) = match (raw.as_deref(), root.as_ref()) {
                                (Some(r), Some(p)) => (r, p),
                                _ => continue,
                            };
                            let (path, spec, label) = section_spec(sec.as_ref());
                            out.extend_from_slice(format!("BODY[{label}]").as_bytes());
                            let data = section::section(raw, root, &path, &spec);
                            write_partial(&mut out, data.as_deref(), *partial);
                        }
                        MessageDataItemName::Rfc822 => {
                            out.extend_from_slice(b"RFC822 ");
                            wire::literal(&mut out, raw.as_deref().unwrap_or_default());
                        }
                        MessageDataItemName::Rfc822Header | MessageDataItemName::Rfc822Text => {
                            // RFC 3501 §6.4.5: BODY.PEEK[HEADER] and BODY[TEXT] by old names.
                            let (name, spec): (&[u8], _) =
                                if matches!(w, MessageDataItemName::Rfc822Header) {
                                    (b"RFC822.HEADER ", SectionSpec::Header)
                                } else {
                                    (b"RFC822.TEXT ", SectionSpec::Text)
                                };
                            out.extend_from_slice(name);
                            let data = match (raw.as_deref(), root.as_ref()) {
                                (Some(r), Some(p)) => section::section(r, p, &[], &spec),
                                _ => None,
                            };
                            wire::literal(&mut out, data.as_deref().unwrap_or_default());
                        }
                        MessageDataItemName::Binary {
                            section: path,
                            partial,
                            ..
                        } => {
                            let (raw, root) = match (raw.as_deref(), root.as_ref()) {
                                (Some(r), Some(p)) => (r, p),
                                _ => continue,
                            };
                            let path: Vec<u32> = path.iter().map(|n| n.get()).collect();
                            let label = path
                                .iter()
                                .map(|n| n.to_string())
                                .collect::<Vec<_>>()
                                .join(".");
                            match section::binary(raw, root, &path) {
                                Ok(data) => {
                                    out.extend_from_slice(format!("BINARY[{label}]").as_bytes());
                                    write_partial_binary(&mut out, data.as_deref(), *partial);
                                }
                                Err(_) => {
                                    failed_cte = true;
                                    // Take the item and its separator back out.
                                    out.truncate(mark);
                                    first = was_first;
                                }
                            }
                        }
                        MessageDataItemName::BinarySize { section: path } => {
                            let (raw, root) = match (raw.as_deref(), root.as_ref()) {
                                (Some(r), Some(p)) => (r, p),
                                _ => continue,
                            };
                            let path: Vec<u32> = path.iter().map(|n| n.get()).collect();
                            let label = path
                                .iter()
                                .map(|n| n.to_string())
                                .collect::<Vec<_>>()
                                .join(".");
                            match section::binary(raw, root, &path) {
                                Ok(data) => out.extend_from_slice(
                                    format!("BINARY.SIZE[{label}] {}", data.map_or(0, |d| d.len()))
                                        .as_bytes(),
                                ),
                                Err(_) => {
                                    failed_cte = true;
                                    out.truncate(mark);
                                    first = was_first;
                                }
                            }
                        }
                    }
                }
                let mut item = |out: &mut Vec<u8>, text: &[u8]| {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    out.extend_from_slice(text);
                };
                if let Some(m) = meta {
                    if extras.preview {
                        // RFC 8970 §4: "PREVIEW" SP nstring; generated now,
                        // so never NIL, even for LAZY.
                        let text = match store.message_content(m.message).await? {
                            Some(c) => preview(&c),
                            None => String::new(),
                        };
                        let mut v = b"PREVIEW ".to_vec();
                        wire::string(&mut v, text.as_bytes());
                        item(&mut out, &v);
                    }
                    if extras.emailid {
                        // RFC 8474 §5.1: the same for every copy of the
                        // stored message, kept by COPY and MOVE.
                        item(&mut out, format!("EMAILID (M{})", m.message.0).as_bytes());
                    }
                    if extras.savedate {
                        // RFC 8514 §4.1: NIL for a message saved before
                        // the store kept save dates.
                        let v = match m.save_date {
                            Some(t) => format!("SAVEDATE \"{}\"", imap_date(t, 0)),
                            None => "SAVEDATE NIL".into(),
                        };
                        item(&mut out, v.as_bytes());
                    }
                }
                if extras.threadid && (meta.is_some() || !needs_meta) {
                    // RFC 8474 §5.2: NIL where the server keeps no thread
                    // identity.
                    item(&mut out, b"THREADID NIL");
                }
                if now_seen.contains(&uid_i) && !wrote_flags {
                    let meta_now = self.selected_mut()?.meta[i].clone();
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    out.extend_from_slice(
                        format!("FLAGS {}", flag_list(&meta_now, show_recent)).as_bytes(),
                    );
                }
                if first {
                    // RFC 9051 §9 msg-att: a FETCH response names at least one
                    // item; when every item failed (UNKNOWN-CTE) there is none.
                    continue;
                }
                out.extend_from_slice(b")\r\n");
                self.raw(&out);
                self.flush_if_full()
                    .await
                    .map_err(|_| ImapError::bad("Connection lost"))?;
            }
        }
        // RFC 3501 §7.4.1: no EXPUNGE during FETCH; UID FETCH may carry them.
        self.sync(uid).await?;
        if failed_cte {
            // RFC 3516 §4.2.
            return Err(ImapError::no(
                Some("UNKNOWN-CTE"),
                "Unknown Content-Transfer-Encoding",
            ));
        }
        Ok(Done::default())
    }
}

/// Whether a UID is in a UID set ("*" standing for any large number).
fn uid_in(set: &SequenceSet, uid: u32) -> bool {
    use imap_types::sequence::{SeqOrUid, Sequence};
    set.0.as_ref().iter().any(|s| {
        let v = |x: &SeqOrUid| match x {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => u32::MAX,
        };
        match s {
            Sequence::Single(x) => v(x) == uid,
            Sequence::Range(a, b) => (v(a).min(v(b))..=v(a).max(v(b))).contains(&uid),
        }
    })
}

/// The section as imap-proto takes it, and its label as the reply echoes it.
pub(crate) fn section_spec(sec: Option<&Section<'_>>) -> (Vec<u32>, SectionSpec, String) {
    let path_of = |p: &Option<Part>| -> Vec<u32> {
        p.as_ref()
            .map(|p| p.0.as_ref().iter().map(|n: &NonZeroU32| n.get()).collect())
            .unwrap_or_default()
    };
    let label_of = |path: &[u32], rest: &str| {
        let mut l = path
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".");
        if !rest.is_empty() {
            if !l.is_empty() {
                l.push('.');
            }
            l.push_str(rest);
        }
        l
    };
    let names = |v: &[imap_types::core::AString<'_>]| -> (Vec<Vec<u8>>, String) {
        let bytes: Vec<Vec<u8>> = v.iter().map(|a| a.as_ref().to_vec()).collect();
        let label = bytes
            .iter()
            .map(|b| String::from_utf8_lossy(b).to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ");
        (bytes, label)
    };
    match sec {
        None => (Vec::new(), SectionSpec::Full, String::new()),
        Some(Section::Part(p)) => {
            let path: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
            let label = label_of(&path, "");
            (path, SectionSpec::Full, label)
        }
        Some(Section::Header(p)) => {
            let path = path_of(p);
            let label = label_of(&path, "HEADER");
            (path, SectionSpec::Header, label)
        }
        Some(Section::HeaderFields(p, v)) => {
            let path = path_of(p);
            let (n, l) = names(v.as_ref());
            let label = label_of(&path, &format!("HEADER.FIELDS ({l})"));
            (
                path,
                SectionSpec::HeaderFields {
                    names: n,
                    not: false,
                },
                label,
            )
        }
        Some(Section::HeaderFieldsNot(p, v)) => {
            let path = path_of(p);
            let (n, l) = names(v.as_ref());
            let label = label_of(&path, &format!("HEADER.FIELDS.NOT ({l})"));
            (
                path,
                SectionSpec::HeaderFields {
                    names: n,
                    not: true,
                },
                label,
            )
        }
        Some(Section::Text(p)) => {
            let path = path_of(p);
            let label = label_of(&path, "TEXT");
            (path, SectionSpec::Text, label)
        }
        Some(Section::Mime(p)) => {
            let path: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
            let label = label_of(&path, "MIME");
            (path, SectionSpec::Mime, label)
        }
    }
}

/// Writes `<origin> data` for BODY[…]<origin.length>, or ` data`.
fn write_partial(out: &mut Vec<u8>, data: Option<&[u8]>, partial: Option<(u32, NonZeroU32)>) {
    let data = data.unwrap_or_default();
    match partial {
        Some((origin, len)) => {
            // RFC 9051 §6.4.5: the reply names only the origin.
            out.extend_from_slice(format!("<{origin}> ").as_bytes());
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(len.get() as usize).min(data.len());
            wire::literal(out, &data[start..end]);
        }
        None => {
            out.push(b' ');
            wire::literal(out, data);
        }
    }
}

/// Like [`write_partial`], as literal8 (`~{n}`) when the data holds NUL (RFC 3516 §4.2).
fn write_partial_binary(
    out: &mut Vec<u8>,
    data: Option<&[u8]>,
    partial: Option<(u32, NonZeroU32)>,
) {
    let data = data.unwrap_or_default();
    let (slice, origin) = match partial {
        Some((origin, len)) => {
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(len.get() as usize).min(data.len());
            (&data[start..end], Some(origin))
        }
        None => (data, None),
    };
    if let Some(o) = origin {
        out.extend_from_slice(format!("<{o}>").as_bytes());
    }
    out.push(b' ');
    if slice.contains(&0) {
        out.extend_from_slice(format!("~{{{}}}\r\n", slice.len()).as_bytes());
        out.extend_from_slice(slice);
    } else {
        wire::literal(out, slice);
    }
}

/// IMAP date-time (RFC 9051 §9 `date-time`): "26-Nov-2026 18:38:59 +0100",
/// in the zone given (minutes east of UTC), as APPEND stored it.
pub(crate) fn imap_date(ts: i64, zone: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(zone * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"));
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| {
            d.with_timezone(&offset)
                .format("%d-%b-%Y %H:%M:%S %z")
                .to_string()
        })
        .unwrap_or_else(|| "01-Jan-1970 00:00:00 +0000".into())
}

/// At most this many characters of preview (RFC 8970 §3.1).
const PREVIEW_CHARS: usize = 256;

/// The preview of a message (RFC 8970 §3): the start of its text (or of
/// its HTML with the markup taken out), each run of white space one space.
pub(crate) fn preview(c: &postgate_types::ItemContent) -> String {
    let source: std::borrow::Cow<'_, str> = match (&c.text, &c.html) {
        (Some(t), _) if !t.trim().is_empty() => t.into(),
        (_, Some(h)) => html_text(h).into(),
        _ => "".into(),
    };
    let mut out = String::new();
    let mut n = 0;
    for word in source.split_whitespace() {
        let need = word.chars().count() + usize::from(n > 0);
        if n + need > PREVIEW_CHARS {
            // A word that does not fit is cut at the limit.
            if n > 0 {
                out.push(' ');
                n += 1;
            }
            out.extend(word.chars().take(PREVIEW_CHARS - n));
            break;
        }
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        n += need;
    }
    out
}

/// The text of an HTML body for a preview: markup, comments, style and
/// script left out, the common entities decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(4096));
    let mut rest = html;
    while !rest.is_empty() && out.len() < 4 * PREVIEW_CHARS * 4 {
        match rest.find('<') {
            Some(i) => {
                out.push_str(&rest[..i]);
                let tag = &rest[i..];
                let lower: String = tag.chars().take(8).collect::<String>().to_ascii_lowercase();
                let skip_to = if tag.starts_with("<!--") {
                    tag.find("-->").map(|e| e + 3)
                } else if lower.starts_with("<style") {
                    tag.to_ascii_lowercase().find("</style>").map(|e| e + 8)
                } else if lower.starts_with("<script") {
                    tag.to_ascii_lowercase().find("</script>").map(|e| e + 9)
                } else {
                    tag.find('>').map(|e| e + 1)
                };
                out.push(' ');
                rest = skip_to.map_or("", |e| &tag[e..]);
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(text: Option<&str>, html: Option<&str>) -> postgate_types::ItemContent {
        postgate_types::ItemContent {
            text: text.map(str::to_string),
            html: html.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn preview_collapses_white_space_and_stops_at_256_characters() {
        let c = content(Some("  Hello,\r\n\r\n\tworld  and   all  \r\n"), None);
        assert_eq!(preview(&c), "Hello, world and all");
        let long = "é".repeat(300);
        let p = preview(&content(Some(&format!("x {long}")), None));
        assert_eq!(p.chars().count(), PREVIEW_CHARS);
        assert!(p.starts_with("x éé"));
        let words = "word ".repeat(100);
        let p = preview(&content(Some(&words), None));
        assert!(p.chars().count() <= PREVIEW_CHARS, "{}", p.len());
        assert_eq!(preview(&content(None, None)), "");
    }

    #[test]
    fn preview_of_html_leaves_the_markup_out() {
        let c = content(
            Some("  \r\n"),
            Some(
                "<html><head><style>p { color: red }</style></head><body><!-- hidden --><p>Fish &amp; chips</p><script>x()</script><b>today</b></body></html>",
            ),
        );
        assert_eq!(preview(&c), "Fish & chips today");
    }
}
