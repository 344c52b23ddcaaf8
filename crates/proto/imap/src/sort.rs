//! SORT (RFC 5256) and SORT=DISPLAY (RFC 5957): the base subject of a
//! message, the keys messages are compared by, and the sort itself.
//!
//! The caller reads each message's headers (RFC 2047-decoded, addresses
//! parsed), builds a [`SortItem`] with the key helpers of this module and
//! calls [`sort`]. [`base_subject`] and [`is_reply_or_forward`] serve THREAD
//! too (see the `thread` module).
//!
//! Case: RFC 5256 §1 asks servers to collate as I18NLEVEL=1 (RFC 5255), that
//! is with `i;unicode-casemap` (RFC 5051). Every string key made here is
//! passed through [`casemap`], which uppercases with Unicode's full mapping
//! (so `ß` becomes `SS` and `a`/`A` compare equal), and keys are then
//! compared by code point. It leaves out RFC 5051's NFKD normalization,
//! which would need Unicode tables; precomposed and decomposed forms of an
//! accented letter therefore sort apart. Uppercase rather than lowercase
//! matters for ASCII order: `[` and `_` sort after `Z`, as with Dovecot.

use std::cmp::Ordering;

/// A sort criterion of RFC 5256 §3, plus the two of RFC 5957.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// Internal date and time (INTERNALDATE).
    Arrival,
    /// The addr-mailbox of the first Cc address.
    Cc,
    /// The sent date (Date header), else the internal date (RFC 5256 §2.2).
    Date,
    /// The addr-mailbox of the first From address.
    From,
    /// RFC822.SIZE.
    Size,
    /// The base subject (RFC 5256 §2.1).
    Subject,
    /// The addr-mailbox of the first To address.
    To,
    /// The display name of the first From address, else its addr-spec
    /// (RFC 5957 §3).
    DisplayFrom,
    /// The display name of the first To address, else its addr-spec
    /// (RFC 5957 §3).
    DisplayTo,
}

/// What [`sort`] needs to know about one message. The string keys must be
/// made with this module's helpers, so they are case-mapped alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortItem {
    /// The number the response carries: the sequence number, or the UID for
    /// UID SORT. Both rise together in a mailbox, so either gives the final
    /// tie-break of RFC 5256 §3 ("an implicit sort criterion of 'sequence
    /// number'").
    pub id: u32,
    /// Internal date, seconds since the epoch.
    pub arrival: i64,
    /// Sent date from the Date header, normalized to UTC, seconds since the
    /// epoch; `None` when it is missing or does not parse.
    pub sent: Option<i64>,
    /// RFC822.SIZE in octets.
    pub size: u64,
    /// [`addr_mailbox_key`] of the first Cc address.
    pub cc: String,
    /// [`addr_mailbox_key`] of the first From address.
    pub from: String,
    /// [`addr_mailbox_key`] of the first To address.
    pub to: String,
    /// [`display_key`] of the first From address.
    pub display_from: String,
    /// [`display_key`] of the first To address.
    pub display_to: String,
    /// [`base_subject`] of the Subject header ("" when there is none).
    pub subject: String,
}

impl SortItem {
    /// The sent date, or the internal date when there is none (RFC 5256 §2.2:
    /// "If the sent date cannot be determined (a Date: header is missing or
    /// cannot be parsed), the INTERNALDATE for that message is used as the
    /// sent date").
    pub fn sent_or_arrival(&self) -> i64 {
        self.sent.unwrap_or(self.arrival)
    }
}

/// Sorts `messages` by `criteria`, each a key and whether it is REVERSEd
/// (RFC 5256 §3). Messages equal under every criterion are ordered by
/// [`SortItem::id`] ascending, whatever the REVERSE flags: RFC 5256 §3,
/// "there is an implicit sort criterion of 'sequence number'", and
/// "REVERSE only reverses a single criterion, and does not affect the
/// implicit 'sequence number' sort criterion".
///
/// ```
/// use postgate_imap_proto::sort::{sort, SortItem, SortKey};
/// let mut m = vec![
///     SortItem { id: 1, size: 300, ..Default::default() },
///     SortItem { id: 2, size: 100, ..Default::default() },
///     SortItem { id: 3, size: 300, ..Default::default() },
/// ];
/// sort(&mut m, &[(SortKey::Size, true)]);
/// assert_eq!(m.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 3, 2]);
/// ```
pub fn sort(messages: &mut [SortItem], criteria: &[(SortKey, bool)]) {
    messages.sort_by(|a, b| {
        criteria
            .iter()
            .map(|&(key, reverse)| {
                let o = compare(a, b, key);
                if reverse { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.id.cmp(&b.id))
    });
}

/// Compares two messages by one key, ascending.
fn compare(a: &SortItem, b: &SortItem, key: SortKey) -> Ordering {
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Cc => a.cc.cmp(&b.cc),
        SortKey::Date => a.sent_or_arrival().cmp(&b.sent_or_arrival()),
        SortKey::From => a.from.cmp(&b.from),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => a.subject.cmp(&b.subject),
        SortKey::To => a.to.cmp(&b.to),
        SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
        SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
    }
}

/// The comparison form of a string: uppercased with Unicode's full case
/// mapping. See the module notes for how this stands in for
/// `i;unicode-casemap`.
pub fn casemap(s: &str) -> String {
    s.to_uppercase()
}

/// The CC, FROM and TO key (RFC 5256 §3): the addr-mailbox (local part) of
/// the first address of the header, case-mapped. Pass `""` when the header
/// is missing or has no address (RFC 5256 §3: an absent header "is treated
/// as the empty string", which sorts first). When the first entry is a group, its
/// addr-mailbox in ENVELOPE terms is the group name, so pass that.
///
/// ```
/// assert_eq!(postgate_imap_proto::sort::addr_mailbox_key("User1"), "USER1");
/// ```
pub fn addr_mailbox_key(local_part: &str) -> String {
    casemap(local_part)
}

/// The DISPLAYFROM and DISPLAYTO key (RFC 5957 §3): the display name of the
/// first address, RFC 2047-decoded by the caller, if it is not empty; else
/// the addr-spec `local@domain` (just the local part when there is no
/// domain); case-mapped. When the first entry is a group, pass the group
/// name as `display_name` (this is what imaptest's sort-display-to expects:
/// `a: xx@xx.org;` sorts as `A`).
///
/// ```
/// use postgate_imap_proto::sort::display_key;
/// assert_eq!(display_key(Some("foo bar"), "a", Some("b.c")), "FOO BAR");
/// assert_eq!(display_key(None, "b", Some("c.d")), "B@C.D");
/// assert_eq!(display_key(Some(""), "d", None), "D");
/// ```
pub fn display_key(display_name: Option<&str>, local_part: &str, domain: Option<&str>) -> String {
    match (display_name, domain) {
        (Some(name), _) if !name.is_empty() => casemap(name),
        (_, Some(domain)) if !domain.is_empty() => casemap(&format!("{local_part}@{domain}")),
        _ => casemap(local_part),
    }
}

/// The base subject of RFC 5256 §2.1, case-mapped with [`casemap`] so it can
/// be compared as is (for SORT, and for grouping by subject in THREAD).
/// `subject` is the header value already RFC 2047-decoded (step 1's
/// decoding is the caller's); pass `""` when there is no Subject header.
///
/// ```
/// use postgate_imap_proto::sort::base_subject;
/// assert_eq!(base_subject("Re: [list] Fwd: Lunch (fwd)"), "LUNCH");
/// assert_eq!(base_subject("[fwd: Re: lunch]"), "LUNCH");
/// assert_eq!(base_subject("[xyz]"), "[XYZ]");
/// ```
pub fn base_subject(subject: &str) -> String {
    base_subject_and_reply(subject).0
}

/// Whether extracting the base subject removed a reply or forward marker: a
/// `subj-refwd` (`Re:`, `Fw:`, `Fwd:`, RFC 5256 §2.1 step 3), the
/// `[fwd: …]` wrapper (step 6), or a `(fwd)` trailer (step 2). THREAD uses
/// this (RFC 5256 §4, REFERENCES step 5). RFC 5256 names the first two; the
/// `(fwd)` trailer counts as well, as in Dovecot, since it marks a forward
/// just the same.
///
/// ```
/// use postgate_imap_proto::sort::is_reply_or_forward;
/// assert!(is_reply_or_forward("RE: lunch"));
/// assert!(is_reply_or_forward("lunch (fwd)"));
/// assert!(!is_reply_or_forward("[list] lunch"));
/// ```
pub fn is_reply_or_forward(subject: &str) -> bool {
    base_subject_and_reply(subject).1
}

/// [`base_subject`] and [`is_reply_or_forward`] in one pass.
pub fn base_subject_and_reply(subject: &str) -> (String, bool) {
    // RFC 5256 §2.1 (1): tabs and continuations become a space, runs of
    // spaces one space. (RFC 2047 decoding was the caller's.)
    let mut text = String::with_capacity(subject.len());
    let mut in_space = false;
    for c in subject.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !in_space {
                text.push(' ');
            }
            in_space = true;
        } else {
            text.push(c);
            in_space = false;
        }
    }

    // The base subject is text[start..end]; both only ever move past ASCII
    // bytes, so they stay on character boundaries.
    let b = text.as_bytes();
    let (mut start, mut end) = (0, b.len());
    let mut reply = false;
    loop {
        // RFC 5256 §2.1 (2): remove subj-trailer = "(fwd)" / WSP, repeatedly.
        loop {
            if end > start && b[end - 1] == b' ' {
                end -= 1;
            } else if end - start >= 5 && b[end - 5..end].eq_ignore_ascii_case(b"(fwd)") {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        loop {
            let mut found = false;
            // RFC 5256 §2.1 (3): remove a subj-leader.
            if let Some((len, refwd)) = subj_leader(&b[start..end]) {
                start += len;
                reply |= refwd;
                found = true;
            }
            // RFC 5256 §2.1 (4): remove a leading subj-blob if what is left
            // is a non-empty subj-base.
            if let Some(len) = subj_blob(&b[start..end])
                && start + len < end
            {
                start += len;
                found = true;
            }
            // RFC 5256 §2.1 (5): repeat (3) and (4) until nothing matches.
            if !found {
                break;
            }
        }
        // RFC 5256 §2.1 (6): unwrap "[fwd:" subject "]" and go back to (2).
        // Six bytes at least, so the two markers do not overlap.
        let rest = &b[start..end];
        if rest.len() >= 6
            && rest[..5].eq_ignore_ascii_case(b"[fwd:")
            && rest[rest.len() - 1] == b']'
        {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    // RFC 5256 §2.1 (7): what is left is the base subject.
    let base = text.get(start..end).unwrap_or_default();
    (casemap(base), reply)
}

/// The length of a subj-leader at the start of `s`, and whether it was a
/// subj-refwd (RFC 5256 §2.1):
///
/// ```text
/// subj-leader = (*subj-blob subj-refwd) / WSP
/// subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
/// ```
fn subj_leader(s: &[u8]) -> Option<(usize, bool)> {
    if s.first() == Some(&b' ') {
        return Some((1, false));
    }
    let mut i = 0;
    while s.get(i) == Some(&b'[') {
        i += subj_blob(&s[i..])?;
    }
    let word = &s[i..];
    let starts = |p: &[u8]| word.len() >= p.len() && word[..p.len()].eq_ignore_ascii_case(p);
    // "fwd" before "fw": after "fw" only WSP, "[" or ":" may follow, so a
    // "d" there can only be the optional one.
    i += if starts(b"re") {
        2
    } else if starts(b"fwd") {
        3
    } else if starts(b"fw") {
        2
    } else {
        return None;
    };
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    if s.get(i) == Some(&b'[') {
        i += subj_blob(&s[i..])?;
    }
    if s.get(i) != Some(&b':') {
        return None;
    }
    Some((i + 1, true))
}

/// The length of a subj-blob at the start of `s` (RFC 5256 §2.1):
///
/// ```text
/// subj-blob = "[" *BLOBCHAR "]" *WSP
/// BLOBCHAR  = %x01-5a / %x5c / %x5e-ff   ; any CHAR except "[" and "]"
/// ```
fn subj_blob(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    loop {
        match s.get(i)? {
            b']' => break,
            b'[' | 0 => return None,
            _ => i += 1,
        }
    }
    i += 1;
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(m: &[SortItem]) -> Vec<u32> {
        m.iter().map(|m| m.id).collect()
    }

    /// Known answers for RFC 5256 §2.1, step by step.
    #[test]
    fn base_subjects() {
        let cases = [
            // (1) whitespace
            ("a\t\tb  c\r\n d", "A B C D", false),
            ("   ", "", false),
            ("", "", false),
            // (2) trailers
            ("lunch (fwd)", "LUNCH", true),
            ("lunch (FWD)  (fwd) ", "LUNCH", true),
            ("lunch(fwd)", "LUNCH", true),
            ("(fwd)", "", true),
            ("lunch (fwd) x", "LUNCH (FWD) X", false),
            // (3) leaders
            ("Re: lunch", "LUNCH", true),
            ("RE:lunch", "LUNCH", true),
            ("re : lunch", "LUNCH", true),
            ("Fw: lunch", "LUNCH", true),
            ("FWD: lunch", "LUNCH", true),
            ("Re[2]: lunch", "LUNCH", true),
            ("Re [2] : lunch", "LUNCH", true),
            ("[list] Re: lunch", "LUNCH", true),
            ("[a][b] re: lunch", "LUNCH", true),
            ("Re: Re: Fwd: lunch", "LUNCH", true),
            ("Ref: lunch", "REF: LUNCH", false),
            ("Re lunch", "RE LUNCH", false),
            ("Re[2 lunch", "RE[2 LUNCH", false),
            ("Fwdd: lunch", "FWDD: LUNCH", false),
            ("Aw: lunch", "AW: LUNCH", false),
            // (4) blobs, kept when nothing would be left
            ("[list] lunch", "LUNCH", false),
            ("[list]lunch", "LUNCH", false),
            ("[list]", "[LIST]", false),
            ("[a] [b]", "[B]", false),
            ("[a] [b] (fwd)", "[B]", true),
            ("[unclosed lunch", "[UNCLOSED LUNCH", false),
            ("[a[b] lunch", "[A[B] LUNCH", false),
            // (6) the [fwd: ] wrapper
            ("[fwd: lunch]", "LUNCH", true),
            ("[FWD: Re: lunch (fwd)]", "LUNCH", true),
            ("[fwd: lunch", "[FWD: LUNCH", false),
            ("[fwd:]", "", true),
            ("[fwd: [fwd: lunch]]", "LUNCH", true),
            ("Re: [fwd: [list] lunch]", "LUNCH", true),
            // non-ASCII text passes through, case-mapped
            ("Re: Grüße aus Köln", "GRÜSSE AUS KÖLN", true),
            ("Re: 台北", "台北", true),
        ];
        for (subject, base, reply) in cases {
            assert_eq!(
                base_subject_and_reply(subject),
                (base.to_owned(), reply),
                "{subject:?}"
            );
        }
    }

    /// The subjects of imaptest's sort-subject.mbox (RFC 2047 already
    /// decoded), in message order.
    const IMAPTEST_SUBJECTS: [&str; 15] = [
        "a",
        "C",
        "b",
        "_",
        "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)",
        "b (a)",
        "Re: [FWD: c]",
        "[xyz]",
        "",      // no Subject header
        " ",     // =?iso-8859-1?q?_?=
        "Re: b", // Re: =?utf-8?q?b?=
        "RE: C", // =?iso-8859-1?q?RE:_C?=
        "Re: c", // =?us-ascii?b?UmU6IGM=?=
        "Ad: Re: Ad: Re: Ad: x",
        "re: [fwd: [fwd: re: [fwd: babylon]]]",
    ];

    /// RFC822.SIZE of the messages of sort-subject.mbox.
    const IMAPTEST_SUBJECT_SIZES: [u64; 15] =
        [17, 17, 17, 17, 56, 22, 29, 22, 5, 35, 100, 171, 265, 38, 53];

    fn imaptest_subject_items() -> Vec<SortItem> {
        IMAPTEST_SUBJECTS
            .iter()
            .zip(IMAPTEST_SUBJECT_SIZES)
            .enumerate()
            .map(|(i, (s, size))| SortItem {
                id: i as u32 + 1,
                size,
                subject: base_subject(s),
                ..Default::default()
            })
            .collect()
    }

    /// imaptest sort-subject.
    #[test]
    fn imaptest_sort_subject() {
        let mut m = imaptest_subject_items();
        sort(&mut m, &[(SortKey::Subject, false)]);
        assert_eq!(ids(&m), [9, 10, 1, 14, 3, 5, 11, 6, 15, 2, 7, 12, 13, 8, 4]);
        sort(&mut m, &[(SortKey::Subject, true)]);
        assert_eq!(ids(&m), [4, 8, 2, 7, 12, 13, 15, 6, 3, 5, 11, 14, 1, 9, 10]);
        sort(&mut m, &[(SortKey::Subject, false), (SortKey::Size, true)]);
        assert_eq!(ids(&m), [10, 9, 1, 14, 11, 5, 3, 6, 15, 13, 12, 7, 2, 8, 4]);
    }

    /// imaptest sort-addresses: from/to/cc keys, and ties under REVERSE.
    #[test]
    fn imaptest_sort_addresses() {
        // From/To/Cc local parts of the three messages; message 2's Cc is
        // the group "user2: blah@domain1.org;", whose addr-mailbox is the
        // group name.
        let locals = ["user2", "user2", "user1"];
        let mut m: Vec<SortItem> = locals
            .iter()
            .enumerate()
            .map(|(i, l)| SortItem {
                id: i as u32 + 1,
                arrival: i as i64,
                from: addr_mailbox_key(l),
                to: addr_mailbox_key(l),
                cc: addr_mailbox_key(l),
                ..Default::default()
            })
            .collect();
        for key in [SortKey::From, SortKey::To, SortKey::Cc] {
            sort(&mut m, &[(key, false)]);
            assert_eq!(ids(&m), [3, 1, 2], "{key:?}");
            sort(&mut m, &[(key, true)]);
            assert_eq!(ids(&m), [1, 2, 3], "reverse {key:?}");
            sort(&mut m, &[(key, false), (SortKey::Arrival, true)]);
            assert_eq!(ids(&m), [3, 2, 1], "{key:?} reverse arrival");
        }
    }

    /// imaptest sort-display-from and sort-display-to.
    #[test]
    fn imaptest_sort_display() {
        let to = [
            display_key(Some("foo bar"), "a", Some("b.c")),
            display_key(None, "b", Some("c.d")),
            display_key(None, "d", None),
            display_key(Some("foo aar"), "e", Some("f.g")),
            display_key(Some("foo car"), "f", Some("g.h")),
            display_key(Some("a"), "xx", Some("xx.org")), // group "a:"
            display_key(Some("z"), "aa", Some("aa.org")), // group "z:"
            display_key(Some("empty"), "", None),         // group "empty:;"
        ];
        let mut m: Vec<SortItem> = to
            .iter()
            .enumerate()
            .map(|(i, k)| SortItem {
                id: i as u32 + 1,
                display_to: k.clone(),
                display_from: k.clone(),
                ..Default::default()
            })
            .collect();
        sort(&mut m, &[(SortKey::DisplayTo, false)]);
        assert_eq!(ids(&m), [6, 2, 3, 8, 4, 1, 5, 7]);
        sort(&mut m, &[(SortKey::DisplayTo, true)]);
        assert_eq!(ids(&m), [7, 5, 1, 4, 8, 3, 2, 6]);

        // sort-display-from has the first five messages only.
        let mut m: Vec<SortItem> = m.into_iter().filter(|m| m.id <= 5).collect();
        sort(&mut m, &[(SortKey::DisplayFrom, false)]);
        assert_eq!(ids(&m), [2, 3, 4, 1, 5]);
        sort(&mut m, &[(SortKey::DisplayFrom, true)]);
        assert_eq!(ids(&m), [5, 1, 4, 3, 2]);
    }

    /// Builds items from (internal date, Date header, size) in message order.
    fn items(data: &[(i64, Option<i64>, u64)]) -> Vec<SortItem> {
        data.iter()
            .enumerate()
            .map(|(i, &(arrival, sent, size))| SortItem {
                id: i as u32 + 1,
                arrival,
                sent,
                size,
                ..Default::default()
            })
            .collect()
    }

    /// imaptest sort-date: a missing Date header falls back to the internal
    /// date (RFC 5256 §2.2). Times in minutes, all in the same zone.
    #[test]
    fn imaptest_sort_date() {
        let mut m = items(&[
            (23 * 60, Some(0), 44),
            (22 * 60, Some(120), 44),
            (21 * 60, Some(60), 45),
            (20 * 60, Some(120), 45),
            (90, None, 23),
            (18 * 60, Some(120), 47),
            (60, None, 46),
        ]);
        sort(&mut m, &[(SortKey::Date, false)]);
        assert_eq!(ids(&m), [1, 3, 7, 5, 2, 4, 6]);
        sort(&mut m, &[(SortKey::Date, true)]);
        assert_eq!(ids(&m), [2, 4, 6, 5, 3, 7, 1]);
        sort(&mut m, &[(SortKey::Date, false), (SortKey::Size, true)]);
        assert_eq!(ids(&m), [1, 7, 3, 5, 6, 4, 2]);
    }

    /// imaptest sort-arrival.
    #[test]
    fn imaptest_sort_arrival() {
        let mut m = items(&[
            (0, None, 5),
            (120, None, 5),
            (60, None, 6),
            (120, None, 6),
            (120, None, 8),
        ]);
        sort(&mut m, &[(SortKey::Arrival, false)]);
        assert_eq!(ids(&m), [1, 3, 2, 4, 5]);
        sort(&mut m, &[(SortKey::Arrival, true)]);
        assert_eq!(ids(&m), [2, 4, 5, 3, 1]);
        sort(&mut m, &[(SortKey::Arrival, false), (SortKey::Size, true)]);
        assert_eq!(ids(&m), [1, 3, 5, 4, 2]);
    }

    /// imaptest sort-size.
    #[test]
    fn imaptest_sort_size() {
        let sizes = [44, 45, 46, 47, 46, 45, 47, 44];
        let data: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| (i as i64 * 60, None, s))
            .collect();
        let mut m = items(&data);
        sort(&mut m, &[(SortKey::Size, false)]);
        assert_eq!(ids(&m), [1, 8, 2, 6, 3, 5, 4, 7]);
        sort(&mut m, &[(SortKey::Size, true)]);
        assert_eq!(ids(&m), [4, 7, 3, 5, 2, 6, 1, 8]);
        sort(&mut m, &[(SortKey::Size, false), (SortKey::Arrival, true)]);
        assert_eq!(ids(&m), [8, 1, 6, 2, 5, 3, 7, 4]);
    }

    #[test]
    fn no_criteria_is_sequence_order() {
        let mut m: Vec<SortItem> = [3, 1, 2]
            .iter()
            .map(|&id| SortItem {
                id,
                ..Default::default()
            })
            .collect();
        sort(&mut m, &[]);
        assert_eq!(ids(&m), [1, 2, 3]);
    }

    /// Odd input never panics and always yields something.
    #[test]
    fn odd_subjects() {
        for s in [
            "[",
            "]",
            "[]",
            "[fwd:",
            "re:",
            "re",
            ":",
            "\0",
            "[\0]",
            "re:[",
            "(fwd",
            "ß(fwd)",
            "\u{10ffff}",
        ] {
            let _ = base_subject_and_reply(s);
        }
        assert_eq!(base_subject("re:"), "");
        assert_eq!(base_subject("[]"), "[]");
        assert_eq!(base_subject("[] x"), "X");
        assert_eq!(base_subject("[\0] x"), "[\0] X");
    }
}
