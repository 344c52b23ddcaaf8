//! Everything FETCH, SORT and THREAD compute from a stored message, over
//! arbitrary message bytes (`postgate_imap_proto`): the MIME structure,
//! ENVELOPE, BODY and BODYSTRUCTURE, `BODY[section]` for every part and
//! every section text (plus arbitrary part paths taken from the input's
//! first bytes, part 0 and 2^32-1 included), BINARY, the header-field
//! iterator, address lists, message ids, base subjects, SORT and both THREAD
//! algorithms over the message and the messages it carries, modified UTF-7
//! names and LIST patterns.
//!
//! Beyond "no panic", what the server writes must be IMAP: every value is
//! a well-formed parenthesised list of atoms, quoted strings and literals,
//! with no NUL (RFC 9051 §4.3), and part ranges lie inside the message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postgate_imap_proto::mime::{self, Part, Structure};
use postgate_imap_proto::section::{self, SectionSpec};
use postgate_imap_proto::sort::{self, SortItem, SortKey};
use postgate_imap_proto::thread::{self, Algorithm, ThreadItem};
use postgate_imap_proto::{bodystructure, envelope, pattern, utf7, wire};

/// Parts visited per input (the parser allows 10,000; a few hundred is
/// enough to reach every code path and keeps an input under a second).
const MAX_VISIT: usize = 200;

fuzz_target!(|data: &[u8]| {
    let root = mime::parse(data);
    let mut paths = Vec::new();
    collect(&root, data.len(), &mut Vec::new(), &mut paths, 0);
    // Arbitrary section paths (RFC 9051 §6.4.5 section-part), from the
    // first bytes: part numbers 0 to 4 and one absurd one.
    for w in data.chunks(3).take(4) {
        let p: Vec<u32> = w
            .iter()
            .map(|&b| {
                if b == 0xff {
                    u32::MAX
                } else {
                    u32::from(b % 5)
                }
            })
            .collect();
        paths.push(p);
    }

    let mut out = Vec::new();
    envelope::envelope(&mut out, data, root.header.clone());
    check_value(&out, "ENVELOPE");
    out.clear();
    bodystructure::body(&mut out, data, &root);
    check_value(&out, "BODY");
    out.clear();
    bodystructure::bodystructure(&mut out, data, &root);
    check_value(&out, "BODYSTRUCTURE");

    // The field names the message uses, for HEADER.FIELDS (and one it does not).
    let mut names: Vec<Vec<u8>> = mime::fields(data, root.header.clone())
        .take(8)
        .map(|f| f.name.to_vec())
        .collect();
    names.push(b"X-NOT-THERE".to_vec());
    let specs = [
        SectionSpec::Full,
        SectionSpec::Header,
        SectionSpec::Text,
        SectionSpec::Mime,
        SectionSpec::HeaderFields {
            names: names.clone(),
            not: false,
        },
        SectionSpec::HeaderFields { names, not: true },
    ];
    for path in &paths {
        for spec in &specs {
            if let Some(bytes) = section::section(data, &root, path, spec) {
                // RFC 9051 §4.3: a literal holds no NUL; BODY[] turns them into 0x80.
                assert!(!bytes.contains(&0), "NUL in BODY[{path:?} {spec:?}]");
                if *spec == SectionSpec::Full
                    && !path.is_empty()
                    && let Some(p) = root.find(path)
                {
                    // RFC 9051 §6.4.5: BODY[n] is the part's body as stored.
                    assert_eq!(bytes.len(), p.body.len(), "BODY[{path:?}] size");
                }
            }
        }
        if let Ok(Some(b)) = section::binary(data, &root, path) {
            let _ = b.len();
        }
    }

    // SORT and THREAD: the message and every message/rfc822 part inside.
    let mut items = Vec::new();
    let mut sorts = Vec::new();
    let mut messages = vec![&root];
    let mut i = 0;
    while i < messages.len() && messages.len() < 16 {
        walk_messages(messages[i], &mut messages, 0);
        i += 1;
    }
    for (n, m) in messages.iter().enumerate() {
        let header = |name: &str| {
            mime::fields(data, m.header.clone())
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .last()
                .map(|f| String::from_utf8_lossy(&f.value()).into_owned())
        };
        let subject = header("Subject").unwrap_or_default();
        let (base, is_reply) = sort::base_subject_and_reply(&subject);
        let id = n as u32 + 1;
        items.push(ThreadItem {
            id,
            sent_date: i64::from(data.len() as u32 % 7) - n as i64,
            message_id: header("Message-ID")
                .and_then(|v| thread::parse_msg_ids(&v).into_iter().next()),
            references: header("References")
                .map(|v| thread::parse_msg_ids(&v))
                .unwrap_or_default(),
            in_reply_to: header("In-Reply-To")
                .and_then(|v| thread::parse_msg_ids(&v).into_iter().next()),
            base_subject: base.clone(),
            is_reply,
        });
        let key = |name: &str| {
            let list = header(name)
                .map(|v| envelope::parse_addresses(v.as_bytes()))
                .unwrap_or_default();
            let Some(a) = list.first() else {
                return (String::new(), String::new());
            };
            let lossy = |b: &Option<Vec<u8>>| {
                b.as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            let mailbox = lossy(&a.mailbox).unwrap_or_default();
            (
                sort::addr_mailbox_key(&mailbox),
                sort::display_key(
                    lossy(&a.name).as_deref(),
                    &mailbox,
                    lossy(&a.domain).as_deref(),
                ),
            )
        };
        let (from, display_from) = key("From");
        let (to, display_to) = key("To");
        sorts.push(SortItem {
            id,
            arrival: n as i64,
            sent: None,
            size: m.size() as u64,
            cc: key("Cc").0,
            from,
            to,
            display_from,
            display_to,
            subject: base,
        });
    }
    for alg in [Algorithm::OrderedSubject, Algorithm::References] {
        let threads = thread::thread(&items, alg);
        let mut out = Vec::new();
        thread::write(&mut out, &threads);
        check_thread(&out, items.len());
    }
    let keys = [
        SortKey::Arrival,
        SortKey::Cc,
        SortKey::Date,
        SortKey::From,
        SortKey::Size,
        SortKey::Subject,
        SortKey::To,
        SortKey::DisplayFrom,
        SortKey::DisplayTo,
    ];
    let criteria: Vec<(SortKey, bool)> = keys.iter().map(|&k| (k, k as usize % 2 == 1)).collect();
    sort::sort(&mut sorts, &criteria);

    // Every header value of the top-level header, as the other helpers see it.
    for f in mime::fields(data, root.header.clone()).take(32) {
        let v = f.value();
        let _ = envelope::parse_addresses(&v);
        let text = String::from_utf8_lossy(&v);
        let _ = thread::parse_msg_ids(&text);
        let _ = sort::base_subject(&text);
        // NUL included: a literal carries it as 0x80 (RFC 9051 §4.3).
        let mut w = Vec::new();
        wire::astring(&mut w, &v);
        w.push(b' ');
        wire::nstring(&mut w, Some(&v));
        check_value(&w, "astring nstring");
    }

    // Mailbox names: decode(encode(x)) == x (RFC 3501 §5.1.3), and LIST
    // patterns over names taken from the input (bounded, the matcher is
    // worst-case quadratic).
    let text = String::from_utf8_lossy(&data[..data.len().min(256)]);
    let enc = utf7::encode(&text);
    if !text.contains('\0') {
        // NUL is no part of a mailbox name: decode refuses it by design.
        assert_eq!(
            utf7::decode(&enc).as_deref(),
            Some(text.as_ref()),
            "modified UTF-7 round trip of {enc:?}"
        );
    }
    let _ = utf7::decode(&text);
    let mut lines = text.lines();
    if let (Some(pat), Some(name)) = (lines.next(), lines.next()) {
        let pat: String = pat.chars().take(64).collect();
        let name: String = name.chars().take(64).collect();
        for delim in ['/', '.'] {
            let _ = pattern::matches(&pat, &name, delim);
            let _ = pattern::matches(&pattern::join(&name, &pat, delim), &name, delim);
        }
    }
});

/// Collects the section path of every part (bounded), checking that each
/// part's ranges lie inside the message.
fn collect(p: &Part, len: usize, path: &mut Vec<u32>, out: &mut Vec<Vec<u32>>, depth: usize) {
    for r in [&p.header, &p.body] {
        assert!(
            r.start <= r.end && r.end <= len,
            "part range {r:?} of {len}"
        );
    }
    if out.len() >= MAX_VISIT {
        return;
    }
    out.push(path.clone());
    match &p.structure {
        Structure::Single => {
            if path.is_empty() {
                out.push(vec![1]);
            }
        }
        Structure::Multipart { parts, .. } => {
            for (i, c) in parts.iter().enumerate() {
                path.push(i as u32 + 1);
                collect(c, len, path, out, depth + 1);
                path.pop();
            }
        }
        Structure::Message(inner) => {
            // Inside a message/rfc822 part, the path continues with the
            // enclosed message's parts.
            if path.is_empty() {
                path.push(1);
                collect(inner, len, path, out, depth + 1);
                path.pop();
            } else {
                for r in [&inner.header, &inner.body] {
                    assert!(
                        r.start <= r.end && r.end <= len,
                        "part range {r:?} of {len}"
                    );
                }
                for (i, c) in inner.children().iter().enumerate() {
                    path.push(i as u32 + 1);
                    collect(c, len, path, out, depth + 1);
                    path.pop();
                }
                if inner.children().is_empty() {
                    path.push(1);
                    out.push(path.clone());
                    path.pop();
                }
            }
        }
    }
}

/// The roots of messages carried as message/rfc822 parts under `p`.
fn walk_messages<'a>(p: &'a Part, out: &mut Vec<&'a Part>, depth: usize) {
    if depth > 8 || out.len() >= 16 {
        return;
    }
    match &p.structure {
        Structure::Single => {}
        Structure::Multipart { parts, .. } => {
            for c in parts {
                walk_messages(c, out, depth + 1);
            }
        }
        Structure::Message(inner) => out.push(inner),
    }
}

/// Checks that `v` is a sequence of IMAP values (RFC 9051 §4): atoms and
/// numbers, NIL, quoted strings (no CR, LF or NUL inside, RFC 9051 §4.3),
/// literals `{n}\r\n` with exactly n octets and no NUL, and balanced
/// parentheses.
fn check_value(v: &[u8], what: &str) {
    let fail = |at: usize, why: &str| -> ! {
        panic!("{what}: {why} at {at} in {:?}", String::from_utf8_lossy(v))
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                if depth == 0 {
                    fail(i, "unbalanced )");
                }
                depth -= 1;
                i += 1;
            }
            b' ' => i += 1,
            b'"' => {
                i += 1;
                loop {
                    match v.get(i) {
                        None => fail(i, "unterminated quoted string"),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            if !matches!(v.get(i + 1), Some(b'"' | b'\\')) {
                                fail(i, "bad escape in quoted string");
                            }
                            i += 2;
                        }
                        // RFC 9051 §4.3: TEXT-CHAR excludes CR and LF; no NUL.
                        Some(b'\r' | b'\n' | 0) => fail(i, "CR, LF or NUL in quoted string"),
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'{' => {
                let close = v[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .unwrap_or_else(|| fail(i, "unterminated literal length"));
                let n: usize = std::str::from_utf8(&v[i + 1..i + close])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| fail(i, "bad literal length"));
                let start = i + close + 1;
                if v.get(start..start + 2) != Some(b"\r\n") {
                    fail(start, "literal length not followed by CRLF");
                }
                let Some(body) = v.get(start + 2..start + 2 + n) else {
                    fail(start, "literal shorter than announced")
                };
                // RFC 9051 §4.3: literal = "{" number64 "}" CRLF *CHAR8 (no NUL).
                if body.contains(&0) {
                    fail(start, "NUL in literal");
                }
                i = start + 2 + n;
            }
            b'\r' | b'\n' | 0 => fail(i, "CR, LF or NUL outside a literal"),
            _ => {
                // An atom, number or NIL: up to a delimiter.
                while i < v.len() && !matches!(v[i], b' ' | b'(' | b')' | b'"' | b'{') {
                    if matches!(v[i], b'\r' | b'\n' | 0) {
                        fail(i, "CR, LF or NUL in an atom");
                    }
                    i += 1;
                }
            }
        }
    }
    if depth != 0 {
        fail(v.len(), "unbalanced (");
    }
}

/// Checks a THREAD reply (RFC 5256 §4 `thread-list`): balanced
/// parentheses, every message number in 1..=n at most once.
fn check_thread(v: &[u8], n: usize) {
    let text = std::str::from_utf8(v).expect("THREAD reply is ASCII");
    let mut depth = 0i64;
    let mut seen = vec![false; n + 1];
    for tok in text
        .replace('(', " ( ")
        .replace(')', " ) ")
        .split_ascii_whitespace()
    {
        match tok {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                assert!(depth >= 0, "THREAD {text}: unbalanced )");
            }
            num => {
                let id: usize = num.parse().expect("THREAD number");
                assert!((1..=n).contains(&id), "THREAD {text}: {id} not a message");
                assert!(!seen[id], "THREAD {text}: {id} twice");
                seen[id] = true;
            }
        }
    }
    assert_eq!(depth, 0, "THREAD {text}: unbalanced (");
    // RFC 5256 §4: every message is in the reply.
    assert!(
        seen[1..].iter().all(|&s| s),
        "THREAD {text}: a message is missing of {n}"
    );
}
