//! `BODY[section]` (RFC 3501 §6.4.5, RFC 9051 §6.4.5) and `BINARY[section]` /
//! `BINARY.SIZE[section]` (RFC 3516 §4.2, RFC 9051 §6.4.5): the bytes a FETCH
//! returns for a section of a message parsed by [`crate::mime`].
//!
//! Partial fetches (`<offset.length>`) are the caller's: slice the result.
//! The conventions are Dovecot 2.3's (`src/lib-imap-storage/imap-msgpart.c`,
//! `src/lib-storage/index/index-mail-binary.c`, `src/lib-mail/istream-header-filter.c`):
//!
//! - A part that does not exist is `None`; Dovecot then answers with an
//!   empty string (`BODY[4] {0}`, `BINARY.SIZE[4] 0`), and so should the
//!   server. HEADER, HEADER.FIELDS and TEXT of a part that is not
//!   message/rfc822 do not exist either.
//! - `n.MIME` is part n's own header, also for a message/rfc822 part and for
//!   part 1 of a single-part message (the message header).
//! - HEADER.FIELDS[.NOT] returns the selected fields as stored, in message
//!   order, each with its continuation lines, then the blank line. When the
//!   message has no blank line, HEADER.FIELDS of the message adds one, while
//!   HEADER.FIELDS.NOT leaves it out (RFC 3501 §6.4.5); HEADER.FIELDS[.NOT]
//!   of a message/rfc822 part reads to the first blank line, as Dovecot's
//!   header filter does.
//! - BODY sections are returned as stored, except that NUL octets become
//!   0x80 since IMAP literals cannot hold NUL; BINARY keeps NUL (the server
//!   must then use `~{n}`, RFC 3516 §4.3).
//! - BINARY decodes base64 and quoted-printable leaves; for a multipart or
//!   message/rfc822 part it decodes every leaf inside and rewrites each
//!   decoded part's header to `Content-Transfer-Encoding: binary` (when no
//!   body needed decoding, the original bytes are returned unchanged). It
//!   uses the last `Content-Transfer-Encoding` field of a part, MIME or not,
//!   unfolded. Identity encodings are returned as stored. An encoding other
//!   than 7bit, 8bit, binary, base64 or quoted-printable is
//!   [`BinaryError::UnknownCte`] (answer `NO [UNKNOWN-CTE]`), and base64 or
//!   quoted-printable data that does not decode is [`BinaryError::Corrupt`]:
//!   Dovecot's decoders reject it too (it then drops the connection; a NO
//!   is kinder).

use std::borrow::Cow;
use std::ops::Range;

use crate::mime::{self, Lexer, Part, St, Structure};

/// What a `BODY[…]` section names, after the part path (RFC 3501 §6.4.5
/// `section-msgtext` / `section-text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionSpec {
    /// No text specifier: the whole message for an empty path (`BODY[]`),
    /// else the part's body (`BODY[1.2]`).
    Full,
    /// `HEADER`: the header of the message or of the message/rfc822 part.
    Header,
    /// `HEADER.FIELDS (…)` or, with `not`, `HEADER.FIELDS.NOT (…)`.
    HeaderFields {
        /// Field names, matched case-insensitively.
        names: Vec<Vec<u8>>,
        /// Select the fields not named instead.
        not: bool,
    },
    /// `TEXT`: the body of the message or of the message/rfc822 part.
    Text,
    /// `MIME`: the part's own header. Needs a non-empty path; the command
    /// parser should reject `BODY[MIME]`, and here it is `None`.
    Mime,
}

/// Why BINARY cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// A Content-Transfer-Encoding this server cannot decode: the server
    /// answers `NO [UNKNOWN-CTE]` (RFC 3516 §4.3, RFC 9051 §7.1).
    UnknownCte,
    /// base64 or quoted-printable content that is not valid.
    Corrupt,
}

impl std::fmt::Display for BinaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BinaryError::UnknownCte => "unknown Content-Transfer-Encoding",
            BinaryError::Corrupt => "invalid base64 or quoted-printable data",
        })
    }
}

impl std::error::Error for BinaryError {}

/// The bytes of `BODY[path.spec]` of the message `raw` parsed into `root`,
/// or `None` if that section does not exist (the server then sends `""`,
/// as Dovecot does).
///
/// ```
/// use postgate_imap_proto::{mime, section::{section, SectionSpec}};
/// let raw = b"Subject: s\r\nFrom: a@b\r\n\r\nhello\r\n";
/// let root = mime::parse(raw);
/// let fields = SectionSpec::HeaderFields { names: vec![b"FROM".to_vec()], not: false };
/// assert_eq!(section(raw, &root, &[], &fields).as_deref(), Some(&b"From: a@b\r\n\r\n"[..]));
/// assert_eq!(section(raw, &root, &[1], &SectionSpec::Full).as_deref(), Some(&b"hello\r\n"[..]));
/// assert_eq!(section(raw, &root, &[2], &SectionSpec::Full), None);
/// ```
pub fn section<'a>(
    raw: &'a [u8],
    root: &Part,
    path: &[u32],
    spec: &SectionSpec,
) -> Option<Cow<'a, [u8]>> {
    let out = if path.is_empty() {
        match spec {
            SectionSpec::Full => Cow::Borrowed(raw),
            SectionSpec::Mime => return None,
            _ => message_text(raw, root, spec, true),
        }
    } else {
        let part = root.find(path)?;
        match spec {
            SectionSpec::Full => Cow::Borrowed(slice(raw, &part.body)),
            SectionSpec::Mime => Cow::Borrowed(slice(raw, &part.header)),
            _ => message_text(raw, part.message()?, spec, false),
        }
    };
    Some(without_nul(out))
}

/// HEADER, HEADER.FIELDS[.NOT] or TEXT of the message whose root is `msg`;
/// `top` when that is the whole message rather than a message/rfc822 part.
fn message_text<'a>(raw: &'a [u8], msg: &Part, spec: &SectionSpec, top: bool) -> Cow<'a, [u8]> {
    match spec {
        SectionSpec::Header => Cow::Borrowed(slice(raw, &msg.header)),
        SectionSpec::Text => Cow::Borrowed(slice(raw, &msg.body)),
        SectionSpec::HeaderFields { names, not } => {
            // Dovecot's header filter: for the message itself it reads the
            // header and always ends the result with a blank line; for a
            // message/rfc822 part it reads from the part's header to the
            // first blank line, which only differs when a delimiter cut
            // that header short.
            let range = if top {
                msg.header.clone()
            } else {
                msg.header.start..raw.len()
            };
            let add_blank = top && !*not;
            Cow::Owned(header_fields(raw, range, names, *not, add_blank))
        }
        SectionSpec::Full | SectionSpec::Mime => Cow::Borrowed(&[]),
    }
}

/// The fields of the header block in `raw[header]` whose name is (or, with
/// `not`, is not) in `names`, as stored and in message order, followed by
/// the blank line ending the block. With `add_blank`, a blank line (and a
/// line break for an unterminated last field) is added when the block has
/// none.
pub fn header_fields(
    raw: &[u8],
    header: Range<usize>,
    names: &[Vec<u8>],
    not: bool,
    add_blank: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fields = mime::fields(raw, header);
    for f in fields.by_ref() {
        let named = names.iter().any(|n| n.eq_ignore_ascii_case(f.name));
        if named != not {
            out.extend_from_slice(slice(raw, &f.span));
        }
    }
    match fields.terminator() {
        Some(blank) => out.extend_from_slice(slice(raw, &blank)),
        None if add_blank => {
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        None => {}
    }
    out
}

/// The content of `BINARY[path]` (RFC 3516 §4.2): the decoded body of the
/// part, or for an empty path the whole message with every part decoded.
/// `Ok(None)` when the part does not exist; BINARY.SIZE is the length of the
/// result.
///
/// ```
/// use postgate_imap_proto::{mime, section::binary};
/// let raw = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n";
/// let root = mime::parse(raw);
/// assert_eq!(binary(raw, &root, &[1]), Ok(Some(b"hello".to_vec())));
/// ```
pub fn binary(raw: &[u8], root: &Part, path: &[u32]) -> Result<Option<Vec<u8>>, BinaryError> {
    let (part, with_header) = if path.is_empty() {
        (root, true)
    } else {
        match root.find(path) {
            Some(p) => (p, false),
            None => return Ok(None),
        }
    };
    let start = if with_header {
        part.header.start
    } else {
        part.body.start
    };
    let mut w = BinaryWriter {
        raw,
        out: Vec::with_capacity(part.body.end.saturating_sub(start)),
        copied: start,
        decoded: false,
    };
    w.part(part, with_header)?;
    if !w.decoded {
        // Dovecot sends the original when no body needed decoding, even if
        // a header would have been rewritten.
        return Ok(Some(slice(raw, &(start..part.body.end)).to_vec()));
    }
    Ok(Some(w.out))
}

/// Dovecot's `message_cte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

/// Builds BINARY output: raw bytes are copied up to each decoded body or
/// rewritten header.
struct BinaryWriter<'a> {
    raw: &'a [u8],
    out: Vec<u8>,
    /// Offset in `raw` up to which the output is complete.
    copied: usize,
    /// Whether any non-empty body was decoded.
    decoded: bool,
}

impl BinaryWriter<'_> {
    fn copy_to(&mut self, end: usize) {
        if end > self.copied {
            self.out
                .extend_from_slice(slice(self.raw, &(self.copied..end)));
            self.copied = end;
        }
    }

    fn part(&mut self, part: &Part, with_header: bool) -> Result<(), BinaryError> {
        let raw = self.raw;
        let cte = cte(raw, &part.header);
        if cte == Cte::Unknown {
            return Err(BinaryError::UnknownCte);
        }
        let converted = matches!(cte, Cte::Base64 | Cte::QuotedPrintable);
        if with_header && converted {
            self.copy_to(part.header.start);
            self.binary_header(&part.header);
        } else if with_header {
            self.copy_to(part.header.end);
        }
        self.copied = part.body.start.max(self.copied);
        match &part.structure {
            Structure::Multipart { parts, .. } if !parts.is_empty() => {
                for child in parts {
                    self.part(child, true)?;
                }
                self.copy_to(part.body.end);
                return Ok(());
            }
            Structure::Message(inner) => {
                self.part(inner, true)?;
                self.copy_to(part.body.end);
                return Ok(());
            }
            _ => {}
        }
        let body = slice(raw, &part.body);
        self.decoded |= converted && !body.is_empty();
        match cte {
            Cte::Base64 => decode_base64(body, &mut self.out)?,
            Cte::QuotedPrintable => decode_qp(body, &mut self.out)?,
            Cte::Identity | Cte::Unknown => self.out.extend_from_slice(body),
        }
        self.copied = part.body.end;
        Ok(())
    }

    /// The header without its Content-Transfer-Encoding fields, declaring
    /// `Content-Transfer-Encoding: binary` before the blank line.
    fn binary_header(&mut self, header: &Range<usize>) {
        let raw = self.raw;
        let mut fields = mime::fields(raw, header.clone());
        for f in fields.by_ref() {
            if !f.name.eq_ignore_ascii_case(b"Content-Transfer-Encoding") {
                self.out.extend_from_slice(slice(raw, &f.span));
            }
        }
        if let Some(blank) = fields.terminator() {
            self.out
                .extend_from_slice(b"Content-Transfer-Encoding: binary");
            self.out.extend_from_slice(slice(raw, &blank));
            self.out.extend_from_slice(slice(raw, &blank));
        }
        self.copied = header.end;
    }
}

/// The transfer encoding BINARY decodes: the last Content-Transfer-Encoding
/// field, a token optionally followed by `;` (Dovecot's
/// `message_decoder_parse_cte()`); none means 7bit.
fn cte(raw: &[u8], header: &Range<usize>) -> Cte {
    let mut cte = Cte::Identity;
    for f in mime::fields(raw, header.clone()) {
        if !f.name.eq_ignore_ascii_case(b"Content-Transfer-Encoding") {
            continue;
        }
        let value = f.value();
        let mut lx = Lexer::new(&value);
        lx.skip_lwsp();
        let mut tok = Vec::new();
        if lx.mime_token(&mut tok) == St::More {
            lx.skip_lwsp();
            if lx.peek() != Some(b';') {
                cte = Cte::Unknown;
                continue;
            }
        }
        // RFC 2045 §6.1 mechanisms, case-insensitive.
        cte = if tok.eq_ignore_ascii_case(b"7bit")
            || tok.eq_ignore_ascii_case(b"8bit")
            || tok.eq_ignore_ascii_case(b"binary")
        {
            Cte::Identity
        } else if tok.eq_ignore_ascii_case(b"base64") {
            Cte::Base64
        } else if tok.eq_ignore_ascii_case(b"quoted-printable") {
            Cte::QuotedPrintable
        } else {
            Cte::Unknown
        };
    }
    cte
}

/// RFC 2045 §6.8 base64, as strictly as Dovecot: whitespace is skipped,
/// anything else outside the alphabet, data after the padding, or a
/// truncated final quantum is an error.
fn decode_base64(input: &[u8], out: &mut Vec<u8>) -> Result<(), BinaryError> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    out.reserve(input.len() / 4 * 3);
    let mut acc = 0u32;
    let mut n = 0; // sextets in `acc`
    let mut pad = 0; // '=' seen
    for &c in input {
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        if pad > 0 {
            // After "xx=" one more '=' may follow; after "xxx=" nothing.
            if c == b'=' && n == 2 && pad == 1 {
                pad = 2;
                continue;
            }
            return Err(BinaryError::Corrupt);
        }
        if c == b'=' {
            match n {
                2 => {
                    out.push((acc >> 4) as u8);
                    pad = 1;
                }
                3 => {
                    out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
                    pad = 2;
                }
                _ => return Err(BinaryError::Corrupt),
            }
            continue;
        }
        acc = (acc << 6) | value(c).ok_or(BinaryError::Corrupt)?;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    if (pad == 0 && n != 0) || (pad == 1 && n == 2) {
        return Err(BinaryError::Corrupt);
    }
    Ok(())
}

/// RFC 2045 §6.7 quoted-printable, as Dovecot's `qp-decoder.c`: hard line
/// breaks become CRLF, trailing whitespace is dropped, soft line breaks
/// (`=` then optional whitespace then a line break) vanish, lowercase hex is
/// accepted; a stray `=`, a lone CR, or more than 76 whitespace octets in
/// front of text is an error.
fn decode_qp(input: &[u8], out: &mut Vec<u8>) -> Result<(), BinaryError> {
    const MAX_WS: usize = 76;
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    out.reserve(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'=' => {
                let rest = &input[i + 1..];
                if let (Some(h), Some(l)) = (
                    rest.first().and_then(|&c| hex(c)),
                    rest.get(1).and_then(|&c| hex(c)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // Soft line break: "=" *WSP CRLF (RFC 2045 §6.7 rule 5).
                let ws = rest
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                match &rest[ws..] {
                    [b'\n', ..] => i += ws + 2,
                    [b'\r', b'\n', ..] => i += ws + 3,
                    _ => return Err(BinaryError::Corrupt),
                }
            }
            b' ' | b'\t' => {
                let ws = input[i..]
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                match &input[i + ws..] {
                    // Trailing whitespace is dropped (rule 3), also at the end.
                    [] | [b'\n', ..] | [b'\r', b'\n', ..] => {}
                    [b'\r', ..] => return Err(BinaryError::Corrupt),
                    _ if ws > MAX_WS => return Err(BinaryError::Corrupt),
                    _ => out.extend_from_slice(&input[i..i + ws]),
                }
                i += ws;
            }
            b'\r' => {
                if input.get(i + 1) != Some(&b'\n') {
                    return Err(BinaryError::Corrupt);
                }
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            _ => {
                let run = input[i..]
                    .iter()
                    .take_while(|&&b| !matches!(b, b'=' | b' ' | b'\t' | b'\r' | b'\n'))
                    .count();
                out.extend_from_slice(&input[i..i + run]);
                i += run;
            }
        }
    }
    Ok(())
}

/// `raw[range]`, or nothing if the range does not fit (a `Part` from another
/// message).
fn slice<'a>(raw: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    raw.get(range.clone()).unwrap_or(&[])
}

/// NUL cannot be sent in an IMAP literal (RFC 3501 §4.3): Dovecot sends 0x80
/// in its place.
fn without_nul(s: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    if !s.contains(&0) {
        return s;
    }
    Cow::Owned(s.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::parse;

    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    fn get(raw: &[u8], path: &[u32], spec: SectionSpec) -> Option<String> {
        let root = parse(raw);
        section(raw, &root, path, &spec).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn fields(names: &[&str], not: bool) -> SectionSpec {
        SectionSpec::HeaderFields {
            names: names.iter().map(|n| n.as_bytes().to_vec()).collect(),
            not,
        }
    }

    /// imaptest's fetch-body-mime message.
    const MIME_MSG: &str = "From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n\nRoot MIME prologue\n\n--foo bar\n\
Content-Type: text/x-myown; charset=us-ascii\n\nhello\n\n--foo bar\nContent-Type: message/rfc822\n\n\
From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\
Content-Type: multipart/alternative; boundary=\"sub1\"\n\nSub MIME prologue\n--sub1\nContent-Type: text/html\n\n\
<p>Hello world</p>\n\n--sub1\nContent-Type: text/plain\n\nHello another world\n\n--sub1--\nSub MIME epilogue\n\n\
--foo bar--\nRoot MIME epilogue\n";

    #[test]
    fn imaptest_fetch_body_mime() {
        let raw = crlf(MIME_MSG);
        let c = |s: &str| Some(s.replace('\n', "\r\n"));
        assert_eq!(get(&raw, &[], SectionSpec::Full), c(MIME_MSG));
        assert!(
            get(&raw, &[], SectionSpec::Text)
                .is_some_and(|t| t.starts_with("Root MIME prologue\r\n\r\n--foo bar\r\n"))
        );
        assert_eq!(get(&raw, &[1], SectionSpec::Full), c("hello\n"));
        assert_eq!(
            get(&raw, &[1], SectionSpec::Mime),
            c("Content-Type: text/x-myown; charset=us-ascii\n\n")
        );
        assert!(
            get(&raw, &[2], SectionSpec::Full)
                .is_some_and(|t| t.starts_with("From: sub@domain.org\r\n")
                    && t.ends_with("--sub1--\r\nSub MIME epilogue\r\n"))
        );
        assert_eq!(
            get(&raw, &[2], SectionSpec::Mime),
            c("Content-Type: message/rfc822\n\n")
        );
        assert_eq!(
            get(&raw, &[2], SectionSpec::Header),
            c(
                "From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\
Content-Type: multipart/alternative; boundary=\"sub1\"\n\n"
            )
        );
        assert_eq!(
            get(&raw, &[2], fields(&["from", "subject", "X-foo"], false)),
            c("From: sub@domain.org\nSubject: submsg\n\n")
        );
        assert_eq!(
            get(&raw, &[2], fields(&["from", "subject", "X-foo"], true)),
            c(
                "Date: Sun, 12 Aug 2012 12:34:56 +0300\nContent-Type: multipart/alternative; boundary=\"sub1\"\n\n"
            )
        );
        assert!(
            get(&raw, &[2], SectionSpec::Text)
                .is_some_and(|t| t.starts_with("Sub MIME prologue\r\n--sub1"))
        );
        assert_eq!(
            get(&raw, &[2, 1], SectionSpec::Mime),
            c("Content-Type: text/html\n\n")
        );
        assert_eq!(
            get(&raw, &[2, 1], SectionSpec::Full),
            c("<p>Hello world</p>\n")
        );
        assert_eq!(
            get(&raw, &[2, 2], SectionSpec::Mime),
            c("Content-Type: text/plain\n\n")
        );
        assert_eq!(
            get(&raw, &[2, 2], SectionSpec::Full),
            c("Hello another world\n")
        );
    }

    #[test]
    fn imaptest_fetch_body_message_rfc822() {
        let msg = "From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: message/rfc822\n\nFrom: user2@domain.org\nDate: Fri, 23 Mar 2007 11:22:33 +0200\nMime-Version: 1.0\n\
Content-Type: message/rfc822\n\nFrom: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\n\
Hello world\n";
        let raw = crlf(msg);
        let c = |s: &str| Some(s.replace('\n', "\r\n"));
        let inner = "From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\nHello world\n";
        assert_eq!(get(&raw, &[1, 1], SectionSpec::Full), c(inner));
        assert_eq!(get(&raw, &[1, 1, 1], SectionSpec::Full), c("Hello world\n"));
        assert_eq!(
            get(&raw, &[1], SectionSpec::Header),
            c(
                "From: user2@domain.org\nDate: Fri, 23 Mar 2007 11:22:33 +0200\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n"
            )
        );
        assert_eq!(get(&raw, &[1], SectionSpec::Text), c(inner));
        assert_eq!(get(&raw, &[1, 1], SectionSpec::Text), c("Hello world\n"));
        assert_eq!(
            get(&raw, &[1, 1], SectionSpec::Header),
            c("From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\n")
        );
        assert_eq!(
            get(&raw, &[1, 1], fields(&["subject"], false)),
            c("Subject: submsg\n\n")
        );
    }

    #[test]
    fn imaptest_digest_mime_headers() {
        let msg = "From: user@domain.org\nMime-Version: 1.0\nContent-Type: message/rfc822\n\n\
From: sub@domain.org\nSubject: submsg\nContent-Type: multipart/digest; boundary=\"foo\"\n\nprologue\n\n--foo \n\n\
From: m1@example.com\nSubject: m1\n\nm1 body\n\n--foo \nX-Mime: m2 header\n\nFrom: m2@example.com\nSubject: m2\n\n\
m2 body\n\n--foo--\n\nepilogue\n";
        let raw = crlf(msg);
        let c = |s: &str| Some(s.replace('\n', "\r\n"));
        assert_eq!(
            get(&raw, &[1, 1], SectionSpec::Full),
            c("From: m1@example.com\nSubject: m1\n\nm1 body\n")
        );
        assert_eq!(get(&raw, &[1, 1], SectionSpec::Mime), c("\n"));
        assert_eq!(
            get(&raw, &[1, 1], SectionSpec::Header),
            c("From: m1@example.com\nSubject: m1\n\n")
        );
        assert_eq!(get(&raw, &[1, 1], SectionSpec::Text), c("m1 body\n"));
        assert_eq!(
            get(&raw, &[1, 2], SectionSpec::Mime),
            c("X-Mime: m2 header\n\n")
        );
        assert_eq!(get(&raw, &[1, 2], SectionSpec::Text), c("m2 body\n"));
    }

    #[test]
    fn header_fields_selection() {
        let raw = crlf(
            "From: User1 <user1@domain.org>\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nSubject: s1\n \
folded\nX-No-Colon\n\nbody1\n",
        );
        let c = |s: &str| Some(s.replace('\n', "\r\n"));
        assert_eq!(
            get(&raw, &[], fields(&["from"], false)),
            c("From: User1 <user1@domain.org>\n\n")
        );
        assert_eq!(
            get(&raw, &[], fields(&["from", "FROM"], false)),
            c("From: User1 <user1@domain.org>\n\n")
        );
        assert_eq!(
            get(&raw, &[], fields(&["subject", "from"], false)),
            c("From: User1 <user1@domain.org>\nSubject: s1\n folded\n\n")
        );
        assert_eq!(
            get(&raw, &[], fields(&["date", "date"], true)),
            c("From: User1 <user1@domain.org>\nSubject: s1\n folded\nX-No-Colon\n\n")
        );
        assert_eq!(get(&raw, &[], fields(&["xyz"], false)), c("\n"));
        // No blank line in the message: HEADER.FIELDS adds one (Dovecot),
        // HEADER.FIELDS.NOT does not (RFC 3501 §6.4.5).
        let raw = b"Subject: x\r\nFrom: y\r\n";
        assert_eq!(
            get(raw, &[], fields(&["from"], false)).as_deref(),
            Some("From: y\r\n\r\n")
        );
        assert_eq!(
            get(raw, &[], fields(&["from"], true)).as_deref(),
            Some("Subject: x\r\n")
        );
        assert_eq!(
            get(b"Subject: x", &[], fields(&["subject"], false)).as_deref(),
            Some("Subject: x\r\n\r\n")
        );
        assert_eq!(
            get(b"", &[], fields(&["subject"], false)).as_deref(),
            Some("\r\n")
        );
        assert_eq!(
            get(raw, &[], SectionSpec::Header).as_deref(),
            Some("Subject: x\r\nFrom: y\r\n")
        );
        assert_eq!(get(raw, &[], SectionSpec::Text).as_deref(), Some(""));
    }

    #[test]
    fn header_fields_of_enclosed_message_read_to_blank_line() {
        // Dovecot's header filter reads past a header that a delimiter cut
        // short, up to the next blank line.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n--b\r\n\r\n--b--\r\n";
        assert_eq!(
            get(raw, &[1], SectionSpec::Header).as_deref(),
            Some("Subject: x\r\n")
        );
        assert_eq!(
            get(raw, &[1], fields(&["subject"], false)).as_deref(),
            Some("Subject: x\r\n\r\n")
        );
        assert_eq!(
            get(raw, &[1], fields(&["subject"], true)).as_deref(),
            Some("\r\n")
        );
        assert_eq!(
            get(raw, &[1], SectionSpec::Full).as_deref(),
            Some("Subject: x\r\n\r\n")
        );
    }

    #[test]
    fn header_and_text_of_root() {
        let raw = crlf("Subject: s\n\nbody1\n\n\n");
        assert_eq!(
            get(&raw, &[], SectionSpec::Header).as_deref(),
            Some("Subject: s\r\n\r\n")
        );
        assert_eq!(
            get(&raw, &[], SectionSpec::Text).as_deref(),
            Some("body1\r\n\r\n\r\n")
        );
        // Part 1 of a single-part message is its body; 1.MIME its header.
        assert_eq!(
            get(&raw, &[1], SectionSpec::Full).as_deref(),
            Some("body1\r\n\r\n\r\n")
        );
        assert_eq!(
            get(&raw, &[1], SectionSpec::Mime).as_deref(),
            Some("Subject: s\r\n\r\n")
        );
    }

    #[test]
    fn nonexistent_sections() {
        let raw = crlf(MIME_MSG);
        assert_eq!(get(&raw, &[3], SectionSpec::Full), None);
        assert_eq!(get(&raw, &[1, 2], SectionSpec::Full), None);
        assert_eq!(get(&raw, &[2, 3], SectionSpec::Mime), None);
        // HEADER and TEXT only exist for message/rfc822 parts.
        assert_eq!(get(&raw, &[1], SectionSpec::Header), None);
        assert_eq!(get(&raw, &[1], SectionSpec::Text), None);
        assert_eq!(get(&raw, &[2, 1], fields(&["a"], false)), None);
        assert_eq!(get(&raw, &[], SectionSpec::Mime), None);
    }

    #[test]
    fn nul_becomes_0x80_in_body_not_in_binary() {
        let raw = b"Subject: x\r\n\r\na\0b";
        assert_eq!(
            get(raw, &[], SectionSpec::Text).map(String::into_bytes),
            Some(b"a\x80b".to_vec()).map(|v| String::from_utf8_lossy(&v).into_owned().into_bytes())
        );
        let root = parse(raw);
        assert_eq!(
            section(raw, &root, &[1], &SectionSpec::Full).as_deref(),
            Some(&b"a\x80b"[..])
        );
        assert_eq!(binary(raw, &root, &[1]), Ok(Some(b"a\0b".to_vec())));
        assert!(matches!(
            section(
                b"Subject: x\r\n\r\nab",
                &parse(b"Subject: x\r\n\r\nab"),
                &[],
                &SectionSpec::Full
            ),
            Some(Cow::Borrowed(_))
        ));
    }

    /// imaptest's fetch-binary-mime-base64 message.
    #[test]
    fn imaptest_binary_base64() {
        let msg = "From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n\
Root MIME prologue\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n\n\
aGVs\nbG8gd29y\nbGQ=\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n\
  aGVs    \n bG8g  \n   d29y  \t \n    bGQ= \n\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\
Content-Transfer-Encoding: base64\n\naGVsbG8g\ndG8geW91IHRv\nbw==\n\n--foo bar\n\
Content-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\naGVsbG8gdG8gZXZlcnlvbmUh\n\
--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n\
YWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6\n\n--foo bar--\nRoot MIME epilogue\n";
        let raw = crlf(msg);
        let root = parse(&raw);
        let b = |n: u32| binary(&raw, &root, &[n]);
        assert_eq!(b(1), Ok(Some(b"hello world".to_vec())));
        assert_eq!(b(2), Ok(Some(b"hello world".to_vec())));
        assert_eq!(b(3), Ok(Some(b"hello to you too".to_vec())));
        assert_eq!(b(4), Ok(Some(b"hello to everyone!".to_vec())));
        assert_eq!(
            b(5),
            Ok(Some(b"abcdefg\rhijkl\r\nmno\npqrstuvqxyz".to_vec()))
        );
        assert_eq!(b(6), Ok(None));
        // BINARY[] rewrites the decoded parts' headers.
        let all = binary(&raw, &root, &[]).ok().flatten().unwrap_or_default();
        let all = String::from_utf8_lossy(&all);
        assert!(all.contains(
            "--foo bar\r\nContent-Type: text/x-myown; charset=us-ascii\r\n\
Content-Transfer-Encoding: binary\r\n\r\nhello world\r\n--foo bar\r\n"
        ));
        assert!(
            all.starts_with("From: user@domain.org\r\n")
                && all.ends_with("--foo bar--\r\nRoot MIME epilogue\r\n")
        );
    }

    /// imaptest's fetch-binary-mime-qp message: BINARY.SIZE[1] is 65.
    #[test]
    fn imaptest_binary_qp() {
        let msg = "From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n\
Root MIME prologue\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\
Content-Transfer-Encoding: quoted-printable\n\nhello  \nbar=\n\nfoo\t=\nbar\nfoo\t \t= \n=62\nfoo = \t\nbar\n\
foo =\n=62\nfoo  \nbar=\n\nfoo_bar\n\n--foo bar--\nRoot MIME epilogue\n";
        for raw in [crlf(msg), msg.as_bytes().to_vec()] {
            let root = parse(&raw);
            let got = binary(&raw, &root, &[1]).ok().flatten().unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&got),
                "hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
            );
            assert_eq!(got.len(), 65);
        }
    }

    /// imaptest's fetch-binary-mime: nothing to convert, so BINARY is BODY.
    #[test]
    fn imaptest_binary_identity() {
        let raw = crlf(MIME_MSG);
        let root = parse(&raw);
        assert_eq!(
            binary(&raw, &root, &[]).ok().flatten().map(|v| v.len()),
            Some(602)
        );
        assert_eq!(binary(&raw, &root, &[]), Ok(Some(raw.clone())));
        let size = |p: &[u32]| binary(&raw, &root, p).ok().flatten().map(|v| v.len());
        assert_eq!(size(&[1]), Some(7));
        assert_eq!(size(&[2]), Some(298));
        assert_eq!(size(&[2, 1]), Some(20));
        assert_eq!(size(&[2, 2]), Some(21));
    }

    #[test]
    fn binary_unknown_and_corrupt() {
        let one = |header: &str, body: &str| {
            let raw = format!("MIME-Version: 1.0\r\n{header}\r\n\r\n{body}");
            let root = parse(raw.as_bytes());
            binary(raw.as_bytes(), &root, &[1])
        };
        assert_eq!(
            one("Content-Transfer-Encoding: x-uuencode", "x"),
            Err(BinaryError::UnknownCte)
        );
        assert_eq!(
            one("Content-Transfer-Encoding:", "x"),
            Err(BinaryError::UnknownCte)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64 binary", "x"),
            Err(BinaryError::UnknownCte)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: BASE64 (c); x=y", "aGk="),
            Ok(Some(b"hi".to_vec()))
        );
        assert_eq!(
            one("Content-Transfer-Encoding: 8BIT", "\u{e9}"),
            Ok(Some("\u{e9}".as_bytes().to_vec()))
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", "aGk*"),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", "aGk"),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", "aGk=x"),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", "aG= ="),
            Ok(Some(b"h".to_vec()))
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", "a==="),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: base64", ""),
            Ok(Some(Vec::new()))
        );
        assert_eq!(
            one("Content-Transfer-Encoding: quoted-printable", "a=3d=3Db"),
            Ok(Some(b"a==b".to_vec()))
        );
        assert_eq!(
            one("Content-Transfer-Encoding: quoted-printable", "a=zz"),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: quoted-printable", "a="),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: quoted-printable", "a\rb"),
            Err(BinaryError::Corrupt)
        );
        assert_eq!(
            one("Content-Transfer-Encoding: quoted-printable", "a  "),
            Ok(Some(b"a".to_vec()))
        );
        // The last Content-Transfer-Encoding field decides.
        assert_eq!(
            one(
                "Content-Transfer-Encoding: x-foo\r\nContent-Transfer-Encoding: base64",
                "aGk="
            ),
            Ok(Some(b"hi".to_vec()))
        );
        // Unknown encodings inside a multipart fail BINARY[] as a whole.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: x\r\n\r\nx\r\n--b--\r\n";
        let root = parse(raw);
        assert_eq!(binary(raw, &root, &[]), Err(BinaryError::UnknownCte));
        assert_eq!(binary(raw, &root, &[2]), Ok(None));
    }

    #[test]
    fn binary_without_decoding_is_the_original() {
        // A header would be rewritten, but no body is decoded: Dovecot then
        // sends the message unchanged.
        let raw = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\
Content-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        let root = parse(raw);
        assert_eq!(binary(raw, &root, &[]), Ok(Some(raw.to_vec())));
        assert_eq!(binary(raw, &root, &[1]), Ok(Some(b"x".to_vec())));
    }

    #[test]
    fn binary_of_enclosed_message() {
        let raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nMIME-Version: 1.0\r\n\
Content-Transfer-Encoding: Base64\r\n\r\naGk=\r\n";
        let root = parse(raw);
        assert_eq!(
            binary(raw, &root, &[1]),
            Ok(Some(
                b"Subject: in\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\nhi"
                    .to_vec()
            ))
        );
        assert_eq!(binary(raw, &root, &[1, 1]), Ok(Some(b"hi".to_vec())));
    }
}
