//! MIME structure of a stored message: where each part's header and body lie
//! in the raw bytes (RFC 2045, RFC 2046 §5.1) and the Content-* data that
//! FETCH BODYSTRUCTURE reports for it (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
//!
//! [`parse`] makes one left-to-right sweep over the message and never fails:
//! malformed input yields the structure Dovecot 2.3 would report, so that
//! BODYSTRUCTURE, `BODY[section]` and BINARY agree with what imaptest and
//! real clients expect. Where the RFCs leave room, the conventions are
//! Dovecot's (`src/lib-mail/message-parser.c`, `message-header-parser.c`,
//! `message-part-data.c`, `rfc822-parser.c`, `rfc2231-parser.c`):
//!
//! - A boundary line is recognised by prefix: `--` followed by the boundary
//!   of any enclosing multipart, the longest match winning and the innermost
//!   multipart winning ties. Lines are checked in headers as well as bodies,
//!   so a part whose header is cut short by a boundary ends there.
//! - The line break before a delimiter line belongs to the delimiter
//!   (RFC 2046 §5.1.1), unless the delimiter is the first line of the part;
//!   when the body is empty, that line break is the header's blank line.
//! - Without `MIME-Version` or `Content-Type`, a message's Content-* fields are
//!   ignored (text/plain). Parts of a multipart are always MIME.
//! - Only the first `Content-Type`, `Content-ID`, `Content-Description`,
//!   `Content-MD5`, `Content-Location` count; `Content-Transfer-Encoding` and
//!   `Content-Language` take the first valid one.
//! - Types, subtypes, parameter names and values are kept as written; RFC 2231
//!   continuations (`name*0*=…; name*1*=…`) are joined into one `name*`
//!   parameter whose value stays percent-encoded, as Dovecot reports it.
//! - Body sizes are the octets as stored; line counts count LF octets.
//!
//! Nesting is bounded by [`MAX_DEPTH`] and the part count by [`MAX_PARTS`];
//! beyond them parts are reported as opaque, as Dovecot does.

use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting of parts, the root being depth 0. A multipart or
/// message/rfc822 part that would exceed it is left undivided and reported as
/// application/octet-stream (Dovecot's `MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS`).
/// It also bounds the recursion of every walker in this crate.
pub const MAX_DEPTH: usize = 100;

/// Most parts a message is split into; past it boundaries are no longer
/// looked for (Dovecot's `MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS`), which
/// keeps the work per FETCH linear in the message size.
pub const MAX_PARTS: usize = 10_000;

/// RFC 2046 §5.1.1 allows 70 boundary characters; like Dovecot, keep a few
/// more and ignore the rest, since boundaries match by prefix anyway.
const BOUNDARY_MAX: usize = 80;

/// On a final line with no LF, Dovecot compares at most this much of it.
const BOUNDARY_LINE_MAX: usize = BOUNDARY_MAX + 4;

/// Header field names longer than this are treated as part of the value
/// (Dovecot's `MESSAGE_HEADER_NAME_MAX_LEN`).
const HEADER_NAME_MAX: usize = 1000;

/// U+FFFD, which Dovecot puts in place of NUL in header values.
pub(crate) const REPLACEMENT: &[u8] = b"\xEF\xBF\xBD";

/// One node of the MIME tree of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Absolute offsets of the header, including the blank line that ends it
    /// when there is one. This is what `BODY[n.MIME]` returns. When a delimiter
    /// line follows the blank line at once, Dovecot gives the blank line to
    /// the delimiter as its preceding line break, and so does this parser.
    pub header: Range<usize>,
    /// Absolute offsets of the body: `BODY[n]` (RFC 3501 §6.4.5). Starts where
    /// the header ends; excludes the line break before a delimiter line.
    pub body: Range<usize>,
    /// How the body is divided.
    pub structure: Structure,
    /// `Content-Type` type and subtype as written, or `None` when the part
    /// has no (MIME) `Content-Type`: text/plain, or message/rfc822 in a
    /// multipart/digest (RFC 2046 §5.1.5).
    pub media_type: Option<MediaType>,
    /// `Content-Type` parameters in Dovecot's order: plain ones as written,
    /// then merged RFC 2231 ones sorted by name.
    pub params: Vec<Param>,
    /// `Content-ID`, unfolded.
    pub id: Option<Vec<u8>>,
    /// `Content-Description`, unfolded, not RFC 2047 decoded.
    pub description: Option<Vec<u8>>,
    /// `Content-Transfer-Encoding` token as written; `None` means 7bit.
    pub encoding: Option<Vec<u8>>,
    /// `Content-Disposition` (RFC 2183).
    pub disposition: Option<Disposition>,
    /// `Content-Language` tags (RFC 3282); empty when absent.
    pub language: Vec<Vec<u8>>,
    /// `Content-Location` (RFC 2557), unfolded.
    pub location: Option<Vec<u8>>,
    /// `Content-MD5` (RFC 1864), unfolded.
    pub md5: Option<Vec<u8>>,
    /// Number of LF octets in the body: the body-fld-lines of RFC 3501
    /// §7.4.2. A last line without a line break is not counted (Dovecot).
    pub lines: usize,
    /// Set when [`MAX_DEPTH`] or [`MAX_PARTS`] stopped this part from being
    /// divided although its type asks for it.
    pub overflow: bool,
}

/// How a part's body is divided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Structure {
    /// A leaf: the body is content.
    Single,
    /// multipart/*: the body parts between the delimiter lines. Empty when
    /// the boundary parameter is missing or never occurs; BODYSTRUCTURE then
    /// reports one empty text/plain part, as Dovecot does.
    Multipart {
        /// multipart/digest, whose parts default to message/rfc822.
        digest: bool,
        /// The body parts, in order; preamble and epilogue are not parts.
        parts: Vec<Part>,
    },
    /// message/rfc822: the body is a message whose root part this is.
    Message(Box<Part>),
}

/// A `Content-Type` media type as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Top-level type, e.g. `text`; empty when the field was unparsable.
    pub top: Vec<u8>,
    /// Subtype, e.g. `plain`; empty when missing.
    pub sub: Vec<u8>,
}

/// A MIME parameter (RFC 2045 §5.1), unquoted but not RFC 2231 decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Attribute as written; `name*` when it was RFC 2231 extended.
    pub name: Vec<u8>,
    /// Value with quoting removed.
    pub value: Vec<u8>,
}

/// A `Content-Disposition` field (RFC 2183).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// Disposition type as written, e.g. `attachment`.
    pub value: Vec<u8>,
    /// Its parameters.
    pub params: Vec<Param>,
}

impl Part {
    fn empty(at: usize) -> Part {
        Part {
            header: at..at,
            body: at..at,
            structure: Structure::Single,
            media_type: None,
            params: Vec::new(),
            id: None,
            description: None,
            encoding: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            md5: None,
            lines: 0,
            overflow: false,
        }
    }

    /// The part at an IMAP section path (RFC 3501 §6.4.5), `[]` being the
    /// message itself. As in Dovecot's `imap_msgpart_find()`: in a multipart,
    /// `n` is its n-th body part; any other part only has a part `1`, itself;
    /// and after a message/rfc822 part the path continues inside the
    /// enclosed message. Part number 0 does not exist.
    ///
    /// ```
    /// let raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n\
    ///             --x\r\n\r\none\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n\
    ///             Subject: inner\r\n\r\ntwo\r\n--x--\r\n";
    /// let root = postgate_imap_proto::mime::parse(raw);
    /// let one = root.find(&[1]).unwrap();
    /// assert_eq!(&raw[one.body.clone()], b"one");
    /// let two = root.find(&[2, 1]).unwrap();
    /// assert_eq!(&raw[two.body.clone()], b"two");
    /// assert!(root.find(&[3]).is_none());
    /// ```
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let mut part = self;
        for (i, &n) in path.iter().enumerate() {
            let more = i + 1 < path.len();
            part = match &part.structure {
                Structure::Multipart { parts, .. } => {
                    let idx = usize::try_from(n).ok()?.checked_sub(1)?;
                    parts.get(idx)?
                }
                Structure::Message(_) if n == 1 => part,
                Structure::Single if n == 1 && !more => part,
                _ => return None,
            };
            if more && let Structure::Message(inner) = &part.structure {
                part = inner;
            }
        }
        Some(part)
    }

    /// The body parts of a multipart; empty for any other part.
    pub fn children(&self) -> &[Part] {
        match &self.structure {
            Structure::Multipart { parts, .. } => parts,
            _ => &[],
        }
    }

    /// The root part of the message enclosed by a message/rfc822 part.
    pub fn message(&self) -> Option<&Part> {
        match &self.structure {
            Structure::Message(inner) => Some(inner),
            _ => None,
        }
    }

    /// Body size in octets as stored (RFC 3501 body-fld-octets).
    pub fn size(&self) -> usize {
        self.body.end.saturating_sub(self.body.start)
    }

    /// Whether BODYSTRUCTURE reports this leaf as application/octet-stream
    /// because its declared type could not be honoured (Dovecot's
    /// `part_is_truncated()`): message/rfc822 or multipart beyond the
    /// limits, or `Content-Type: multipart` without a subtype.
    pub fn is_opaque(&self) -> bool {
        if !matches!(self.structure, Structure::Single) {
            return false;
        }
        match &self.media_type {
            Some(m) => {
                (m.top.eq_ignore_ascii_case(b"message") && m.sub.eq_ignore_ascii_case(b"rfc822"))
                    || m.top.eq_ignore_ascii_case(b"multipart")
            }
            None => self.overflow,
        }
    }

    /// Whether BODYSTRUCTURE reports this part as text/*, with a line count
    /// and a default `charset` parameter.
    pub fn is_text(&self) -> bool {
        matches!(self.structure, Structure::Single)
            && !self.is_opaque()
            && self
                .media_type
                .as_ref()
                .is_none_or(|m| m.top.eq_ignore_ascii_case(b"text"))
    }
}

/// Parses the MIME structure of `raw`. Never panics; CRLF and bare LF line
/// endings are both accepted.
///
/// ```
/// use postgate_imap_proto::mime::{parse, Structure};
/// let raw = b"Subject: hi\r\n\r\nHello\r\n";
/// let root = parse(raw);
/// assert_eq!(root.header, 0..15);
/// assert_eq!(root.body, 15..22);
/// assert_eq!(root.lines, 1);
/// assert!(matches!(root.structure, Structure::Single));
/// ```
pub fn parse(raw: &[u8]) -> Part {
    let mut p = Parser {
        raw,
        bounds: Vec::new(),
        total: 1,
        lf_pos: 0,
        lf_count: 0,
    };
    p.part(0, 0, false, false).0
}

/// An active multipart boundary.
struct Bound {
    text: Vec<u8>,
}

/// A delimiter line found while looking for the end of a part.
#[derive(Debug, Clone, Copy)]
struct Hit {
    /// Index into `Parser::bounds` of the multipart it delimits.
    idx: usize,
    /// Start of the `--boundary` line.
    line: usize,
    /// Where the delimiter begins, its preceding line break included: the
    /// end of the innermost part it closes.
    delim: usize,
    /// The end of the other parts it closes. Equal to `delim`, except when
    /// the delimiter cut a header short: Dovecot then moves the line break
    /// before it (a header line's, or the blank line) to the parent's body,
    /// so an enclosing message/rfc822 part ends after it.
    outer: usize,
    /// `--boundary--` (RFC 2046 §5.1.1 close-delimiter).
    closing: bool,
}

struct Parser<'a> {
    raw: &'a [u8],
    /// Boundaries of the enclosing multiparts, innermost last.
    bounds: Vec<Bound>,
    /// Parts created so far.
    total: usize,
    /// LF octets in `raw[..lf_pos]`; positions are asked for in increasing
    /// order, so line counts cost one pass over the message.
    lf_pos: usize,
    lf_count: usize,
}

/// What the header of a part says about its content.
#[derive(Default)]
struct HeaderInfo {
    mime_version: bool,
    /// The first `Content-Type`, as Dovecot's parser normalised it.
    content_type: Option<Vec<u8>>,
    boundary: Option<Vec<u8>>,
    media_type: Option<MediaType>,
    params: Vec<Param>,
    id: Option<Vec<u8>>,
    description: Option<Vec<u8>>,
    encoding: Option<Vec<u8>>,
    disposition: Option<Disposition>,
    language: Vec<Vec<u8>>,
    location: Option<Vec<u8>>,
    md5: Option<Vec<u8>>,
}

/// How a part's `Content-Type` asks it to be divided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Single,
    Multipart { digest: bool },
    Message,
}

impl Parser<'_> {
    /// Parses the part starting at `start`. Returns it and the delimiter line
    /// that ended it, if any (otherwise it ran to the end of the message).
    fn part(
        &mut self,
        start: usize,
        depth: usize,
        in_multipart: bool,
        parent_digest: bool,
    ) -> (Part, Option<Hit>) {
        let raw = self.raw;
        let (mut header_end, blank, mut header_hit) = self.scan_header(start);
        let info = header_info(raw, start..header_end);

        // Non-strict MIME detection, as Dovecot: Content-Type alone suffices.
        let is_mime = in_multipart || info.mime_version || info.content_type.is_some();
        let mut class = match (&info.content_type, is_mime) {
            (Some(ct), true) => classify(ct),
            _ if parent_digest => Class::Message, // RFC 2046 §5.1.5
            _ => Class::Single,                   // RFC 2045 §5.2
        };

        let mut part = Part::empty(start);
        if is_mime {
            part.media_type = info.media_type;
            part.params = info.params;
            part.id = info.id;
            part.description = info.description;
            part.encoding = info.encoding;
            part.disposition = info.disposition;
            part.language = info.language;
            part.location = info.location;
            part.md5 = info.md5;
        }

        // The boundary only applies once the header is complete.
        let mut own = None;
        if let (Class::Multipart { .. }, Some(_), Some(b)) = (class, blank, info.boundary) {
            if depth + 1 < MAX_DEPTH {
                self.bounds.push(Bound { text: b });
                own = Some(self.bounds.len() - 1);
            } else {
                class = Class::Single;
                part.overflow = true;
            }
        }
        if class == Class::Message && !(depth + 1 < MAX_DEPTH && self.total < MAX_PARTS) {
            class = Class::Single;
            part.overflow = true;
        }

        // A delimiter of an enclosing multipart right after the blank line
        // takes that line as its preceding line break (RFC 2046 §5.1.1): the
        // header ends before it and the body is empty, as in Dovecot.
        if let Some(blank_start) = blank
            && let Some(mut h) = self.boundary_at(header_end, header_end)
            && Some(h.idx) != own
        {
            if let Some(bi) = own.take() {
                self.bounds.truncate(bi);
            }
            h.delim = blank_start;
            h.outer = h.line;
            header_end = blank_start;
            header_hit = Some(h);
        }
        part.header = start..header_end;

        let body_start = header_end;
        let lf_start = self.lf_at(body_start);
        let (end, hit) = if let Some(h) = header_hit {
            // The header was cut short by a delimiter: the body is empty,
            // and a message/rfc822 part encloses an empty message.
            if class == Class::Message {
                self.total += 1;
                part.structure = Structure::Message(Box::new(Part::empty(h.delim)));
            } else if let Class::Multipart { digest } = class {
                part.structure = Structure::Multipart {
                    digest,
                    parts: Vec::new(),
                };
            }
            (h.delim, Some(h))
        } else {
            match class {
                Class::Multipart { digest } => {
                    let mut parts = Vec::new();
                    let ended = match own {
                        Some(bi) => self.multipart_body(body_start, bi, depth, digest, &mut parts),
                        None => self.leaf_body(body_start),
                    };
                    part.structure = Structure::Multipart { digest, parts };
                    ended
                }
                Class::Message => {
                    self.total += 1;
                    let (inner, h) = self.part(body_start, depth + 1, false, false);
                    let end = h.map_or(inner.body.end, |h| h.outer);
                    part.structure = Structure::Message(Box::new(inner));
                    (end, h)
                }
                Class::Single => self.leaf_body(body_start),
            }
        };
        part.body = body_start..end;
        part.lines = self.lf_at(end).saturating_sub(lf_start);
        (part, hit)
    }

    /// Finds the end of the header starting at `start`: after the blank line
    /// (RFC 5322 §2.1), at the end of the message, or where a delimiter line
    /// of an enclosing multipart begins. Returns (end, start of the blank
    /// line if there is one, hit).
    fn scan_header(&mut self, start: usize) -> (usize, Option<usize>, Option<Hit>) {
        let raw = self.raw;
        let mut line = start;
        loop {
            if line >= raw.len() {
                return (raw.len(), None, None);
            }
            if let Some(h) = self.boundary_at(line, start) {
                return (h.delim, None, Some(Hit { outer: h.line, ..h }));
            }
            match raw[line] {
                b'\n' => return (line + 1, Some(line), None),
                b'\r' if raw.get(line + 1) == Some(&b'\n') => return (line + 2, Some(line), None),
                _ => {}
            }
            match find_lf(raw, line) {
                Some(lf) => line = lf + 1,
                None => return (raw.len(), None, None),
            }
        }
    }

    /// Scans a body from `from` for a delimiter line of any enclosing
    /// multipart; returns (end of body, hit).
    fn leaf_body(&mut self, from: usize) -> (usize, Option<Hit>) {
        let hit = self.scan_body(from);
        (hit.map_or(self.raw.len(), |h| h.delim), hit)
    }

    fn scan_body(&mut self, from: usize) -> Option<Hit> {
        if self.bounds.is_empty() {
            return None;
        }
        let raw = self.raw;
        let mut line = from;
        while line < raw.len() {
            if let Some(h) = self.boundary_at(line, from) {
                return Some(h);
            }
            line = find_lf(raw, line)? + 1;
        }
        None
    }

    /// Parses the body of a multipart whose boundary is `bounds[bi]`: the
    /// preamble, the body parts, the epilogue (RFC 2046 §5.1.1). Returns the
    /// end of the body and the delimiter of an enclosing multipart that
    /// ended it, if any.
    fn multipart_body(
        &mut self,
        body_start: usize,
        bi: usize,
        depth: usize,
        digest: bool,
        parts: &mut Vec<Part>,
    ) -> (usize, Option<Hit>) {
        let len = self.raw.len();
        let mut hit = self.scan_body(body_start);
        loop {
            let Some(h) = hit else { return (len, None) };
            if h.idx != bi {
                // An enclosing multipart's delimiter ends this one too.
                return (h.outer, Some(h));
            }
            // The rest of the delimiter line is transport padding. A last
            // line without LF opens no part (Dovecot).
            let Some(lf) = find_lf(self.raw, h.line) else {
                return (len, None);
            };
            let after = lf + 1;
            if h.closing {
                self.bounds.truncate(bi);
                return self.leaf_body(after);
            }
            self.bounds.truncate(bi + 1);
            self.total += 1;
            let (child, h) = self.part(after, depth + 1, true, digest);
            parts.push(child);
            hit = h;
        }
    }

    /// Whether the line at `line` is a delimiter line of an enclosing
    /// multipart (RFC 2046 §5.1.1), `region` being where the current header
    /// or body began.
    fn boundary_at(&self, line: usize, region: usize) -> Option<Hit> {
        if self.bounds.is_empty() {
            return None;
        }
        let raw = self.raw;
        let rest = raw.get(line..)?;
        let data = rest.strip_prefix(b"--")?;
        if self.total >= MAX_PARTS {
            return None;
        }
        let (size, dashes) = match data.iter().position(|&b| b == b'\n') {
            Some(mut n) => {
                if n > 0 && data[n - 1] == b'\r' {
                    n -= 1;
                }
                (n, n > 2 && data[n - 1] == b'-' && data[n - 2] == b'-')
            }
            None => (data.len().min(BOUNDARY_LINE_MAX), false),
        };
        // Innermost first; the longest prefix wins, so a boundary that is a
        // prefix of an inner one does not steal its lines.
        let mut best: Option<usize> = None;
        for (idx, b) in self.bounds.iter().enumerate().rev() {
            let n = b.text.len();
            if n <= size
                && data.starts_with(&b.text)
                && best.is_none_or(|bi| self.bounds[bi].text.len() < n)
            {
                best = Some(idx);
                if n == size || (n + 2 == size && dashes) {
                    break;
                }
            }
        }
        let idx = best?;
        let n = self.bounds[idx].text.len();
        let closing = data.get(n..n + 2) == Some(b"--");
        // RFC 2046 §5.1.1: the CRLF preceding the boundary delimiter line is
        // conceptually attached to the boundary.
        let delim = if line == region {
            line
        } else if line >= region + 2 && raw[line - 2] == b'\r' {
            line - 2
        } else {
            line - 1
        };
        Some(Hit {
            idx,
            line,
            delim,
            outer: delim,
            closing,
        })
    }

    /// LF octets in `raw[..pos]`.
    fn lf_at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.raw.len());
        if pos >= self.lf_pos {
            self.lf_count += count_lf(&self.raw[self.lf_pos..pos]);
            self.lf_pos = pos;
            self.lf_count
        } else {
            self.lf_count - count_lf(&self.raw[pos..self.lf_pos])
        }
    }
}

fn count_lf(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b == b'\n').count()
}

fn find_lf(raw: &[u8], from: usize) -> Option<usize> {
    raw.get(from..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i)
}

/// Dovecot's flags from the normalised Content-Type string.
fn classify(ct: &[u8]) -> Class {
    if ct.eq_ignore_ascii_case(b"message/rfc822") {
        Class::Message
    } else if ct.len() >= 10 && ct[..10].eq_ignore_ascii_case(b"multipart/") {
        Class::Multipart {
            digest: ct[10..].eq_ignore_ascii_case(b"digest"),
        }
    } else {
        Class::Single
    }
}

fn header_info(raw: &[u8], header: Range<usize>) -> HeaderInfo {
    let mut info = HeaderInfo::default();
    let mut disposition_params = false;
    for f in fields(raw, header) {
        let name = f.name;
        if name.eq_ignore_ascii_case(b"MIME-Version") {
            info.mime_version = true; // RFC 2045 §4
            continue;
        }
        let Some(rest) = strip_prefix_ic(name, b"Content-") else {
            continue;
        };
        let value = f.value();
        if rest.eq_ignore_ascii_case(b"Type") {
            if info.content_type.is_none() {
                content_type(&value, &mut info);
            }
        } else if rest.eq_ignore_ascii_case(b"Transfer-Encoding") {
            // RFC 2045 §6.1: a single token.
            if info.encoding.is_none() {
                let mut lx = Lexer::new(&value);
                lx.skip_lwsp();
                let mut tok = Vec::new();
                if lx.mime_token(&mut tok) != St::Bad
                    && lx.skip_lwsp() == St::End
                    && !tok.is_empty()
                {
                    info.encoding = Some(tok);
                }
            }
        } else if rest.eq_ignore_ascii_case(b"ID") {
            info.id
                .get_or_insert_with(|| replace_nul(&value).into_owned());
        } else if rest.eq_ignore_ascii_case(b"Description") {
            info.description
                .get_or_insert_with(|| replace_nul(&value).into_owned());
        } else if rest.eq_ignore_ascii_case(b"MD5") {
            info.md5
                .get_or_insert_with(|| replace_nul(&value).into_owned());
        } else if rest.eq_ignore_ascii_case(b"Location") {
            info.location
                .get_or_insert_with(|| replace_nul(&value).into_owned());
        } else if rest.eq_ignore_ascii_case(b"Language") {
            // RFC 3282: 1#Language-tag. The first field with any tag counts.
            if info.language.is_empty() {
                let mut lx = Lexer::new(&value);
                lx.skip_lwsp();
                loop {
                    let mut tag = Vec::new();
                    if lx.atom(&mut tag) == St::Bad {
                        break;
                    }
                    info.language.push(tag);
                    if lx.peek() != Some(b',') {
                        break;
                    }
                    lx.pos += 1;
                    lx.skip_lwsp();
                }
            }
        } else if rest.eq_ignore_ascii_case(b"Disposition") {
            // RFC 2183. Dovecot lets a later field replace one that had no
            // parameters.
            if !disposition_params {
                let mut lx = Lexer::new(&value);
                lx.skip_lwsp();
                let mut tok = Vec::new();
                if lx.mime_token(&mut tok) != St::Bad {
                    let params = params(&mut lx);
                    disposition_params = !params.is_empty();
                    info.disposition = Some(Disposition { value: tok, params });
                }
            }
        }
    }
    info
}

/// RFC 2045 §5.1 `Content-Type := type "/" subtype *(";" parameter)`.
fn content_type(value: &[u8], info: &mut HeaderInfo) {
    let mut lx = Lexer::new(value);
    lx.skip_lwsp();
    let mut ct = Vec::new();
    let ok = lx.content_type(&mut ct) != St::Bad;
    let media = match ct.iter().position(|&b| b == b'/') {
        Some(i) => MediaType {
            top: ct[..i].to_vec(),
            sub: ct[i + 1..].to_vec(),
        },
        None => MediaType {
            top: ct.clone(),
            sub: Vec::new(),
        },
    };
    if ok {
        info.params = params(&mut lx);
        if let Class::Multipart { .. } = classify(&ct) {
            info.boundary = info
                .params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(b"boundary"))
                .map(|p| p.value[..p.value.len().min(BOUNDARY_MAX)].to_vec());
        }
    }
    info.media_type = Some(media);
    info.content_type = Some(ct);
}

/// Parses `*(";" parameter)` and joins RFC 2231 §3 continuations the way
/// Dovecot's `rfc2231_parse()` does: plain parameters first in their order,
/// then the `name*N[*]` groups sorted by name, each joined into one `name`
/// (or `name*` if any piece was extended, with `''` prepended when the first
/// piece was not) without percent-decoding. A group with a missing index is
/// passed through piece by piece.
pub(crate) fn params(lx: &mut Lexer<'_>) -> Vec<Param> {
    struct Piece {
        key: Vec<u8>,
        idx: u32,
        extended: bool,
        value: Vec<u8>,
    }
    lx.nul_replace = true;
    let mut plain = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    loop {
        let (key, value) = match lx.content_param() {
            ParamResult::End => break,
            ParamResult::Bad => {
                // Skip a character and try to continue, as Dovecot does.
                if lx.pos >= lx.data.len() {
                    break;
                }
                lx.pos += 1;
                continue;
            }
            ParamResult::Param(k, v) => (k, v),
        };
        if let Some(star) = key.iter().position(|&b| b == b'*') {
            let mut p = star;
            let mut idx: u32 = 0;
            if p + 1 < key.len() {
                p += 1;
                while let Some(d) = key.get(p).filter(|d| d.is_ascii_digit()) {
                    idx = idx.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                    p += 1;
                }
            }
            let extended = key.get(p) == Some(&b'*');
            if extended {
                p += 1;
            }
            if p == key.len() {
                pieces.push(Piece {
                    key: key[..star].to_vec(),
                    idx,
                    extended,
                    value,
                });
                continue;
            }
        }
        plain.push(Param { name: key, value });
    }
    lx.nul_replace = false;
    if pieces.is_empty() {
        return plain;
    }
    pieces.sort_by(|a, b| a.key.cmp(&b.key).then(a.idx.cmp(&b.idx)));
    let mut i = 0;
    while i < pieces.len() {
        let mut j = i;
        let mut ok = true;
        let mut any_ext = false;
        let mut next_idx = 0u32;
        while j < pieces.len() && pieces[j].key.eq_ignore_ascii_case(&pieces[i].key) {
            ok &= pieces[j].idx == next_idx;
            any_ext |= pieces[j].extended;
            next_idx = next_idx.wrapping_add(1);
            j += 1;
        }
        let group = &pieces[i..j];
        if !ok {
            for piece in group {
                let mut name = piece.key.clone();
                name.push(b'*');
                name.extend_from_slice(piece.idx.to_string().as_bytes());
                if piece.extended {
                    name.push(b'*');
                }
                plain.push(Param {
                    name,
                    value: piece.value.clone(),
                });
            }
        } else {
            let mut value = Vec::new();
            if any_ext && !group[0].extended {
                value.extend_from_slice(b"''"); // RFC 2231 §4: empty charset and language
            }
            for piece in group {
                if any_ext && !piece.extended {
                    for &b in &piece.value {
                        if b == b'%' {
                            value.extend_from_slice(b"%25");
                        } else {
                            value.push(b);
                        }
                    }
                } else {
                    value.extend_from_slice(&piece.value);
                }
            }
            let mut name = group[0].key.clone();
            if any_ext {
                name.push(b'*');
            }
            plain.push(Param { name, value });
        }
        i = j;
    }
    plain
}

fn strip_prefix_ic<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Replaces NUL octets with U+FFFD, as Dovecot does for header values it
/// reports verbatim.
pub(crate) fn replace_nul(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&0) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len() + 8);
    for &b in s {
        if b == 0 {
            out.extend_from_slice(REPLACEMENT);
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Header fields

/// Iterates the fields of a header block (RFC 5322 §2.2) within `header`,
/// stopping at the blank line that ends it.
///
/// ```
/// let raw = b"Subject: a\r\n  b\r\nTo: x@y\r\n\r\nbody";
/// let f: Vec<_> = postgate_imap_proto::mime::fields(raw, 0..raw.len()).collect();
/// assert_eq!(f.len(), 2);
/// assert_eq!(f[0].name, b"Subject");
/// assert_eq!(&*f[0].value(), b"a  b");
/// assert_eq!(&raw[f[1].span.clone()], b"To: x@y\r\n");
/// ```
pub fn fields(raw: &[u8], header: Range<usize>) -> Fields<'_> {
    let end = header.end.min(raw.len());
    Fields {
        raw,
        pos: header.start.min(end),
        end,
        terminator: None,
    }
}

/// Iterator over header fields; see [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
    terminator: Option<Range<usize>>,
}

impl Fields<'_> {
    /// Once the iterator is exhausted: the blank line it stopped at, if it
    /// stopped at one rather than at the end of the range.
    pub fn terminator(&self) -> Option<Range<usize>> {
        self.terminator.clone()
    }
}

/// One header field: a line and its continuation lines (RFC 5322 §2.2.3).
#[derive(Debug, Clone)]
pub struct Field<'a> {
    /// Name as written, without whitespace before the colon. Empty for a
    /// line without a colon, which Dovecot keeps as a nameless field.
    pub name: &'a [u8],
    /// Offsets of the whole field, final line ending included.
    pub span: Range<usize>,
    raw: &'a [u8],
    /// Where the value starts on the first line, and whether leading
    /// whitespace is skipped there (not for nameless fields).
    value_start: usize,
    skip_lwsp: bool,
    /// End of the first line's content, and start of the next line.
    first_end: usize,
    first_next: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let raw = self.raw;
        if self.pos >= self.end {
            return None;
        }
        let start = self.pos;
        let (content_end, next) = line_end(raw, start, self.end);
        if content_end == start {
            // The blank line ending the header.
            self.terminator = Some(start..next);
            self.pos = self.end;
            return None;
        }
        let line = &raw[start..content_end];
        let (name, value_start, skip_lwsp) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let mut n = colon;
                while n > 0 && is_lwsp(line[n - 1]) {
                    n -= 1;
                }
                if n > HEADER_NAME_MAX {
                    (&raw[start..start], start, false)
                } else {
                    (&line[..n], start + colon + 1, true)
                }
            }
            None => (&raw[start..start], start, false),
        };
        let mut pos = next;
        while pos < self.end && is_lwsp(raw[pos]) {
            pos = line_end(raw, pos, self.end).1;
        }
        self.pos = pos;
        Some(Field {
            name,
            span: start..pos,
            raw,
            value_start,
            skip_lwsp,
            first_end: content_end,
            first_next: next,
        })
    }
}

impl<'a> Field<'a> {
    /// The value unfolded (RFC 5322 §2.2.3): leading whitespace after the
    /// colon skipped (only one character if that is all there is, as Dovecot
    /// does), and each line break removed, keeping the whitespace after it.
    /// Not RFC 2047 decoded; NUL octets are left in place.
    pub fn value(&self) -> Cow<'a, [u8]> {
        let raw = self.raw;
        let first = &raw[self.value_start..self.first_end];
        let skip = if self.skip_lwsp {
            let n = first.iter().take_while(|&&b| is_lwsp(b)).count();
            if n == first.len() { n.min(1) } else { n }
        } else {
            0
        };
        let first = &first[skip..];
        if self.first_next >= self.span.end {
            return Cow::Borrowed(first);
        }
        let mut out = first.to_vec();
        let mut pos = self.first_next;
        while pos < self.span.end {
            let (content_end, next) = line_end(raw, pos, self.span.end);
            out.extend_from_slice(&raw[pos..content_end]);
            pos = next;
        }
        Cow::Owned(out)
    }
}

/// The line at `pos`: (end of content without CRLF or LF, start of next line).
fn line_end(raw: &[u8], pos: usize, end: usize) -> (usize, usize) {
    match raw[pos..end].iter().position(|&b| b == b'\n') {
        Some(i) => {
            let lf = pos + i;
            let content = if lf > pos && raw[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (content, lf + 1)
        }
        None => (end, end),
    }
}

fn is_lwsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

// ---------------------------------------------------------------------------
// RFC 5322 / RFC 2045 lexical scanning, with Dovecot's error recovery.

/// Outcome of a lexer step, ordered like Dovecot's -1 / 0 / 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum St {
    /// Syntax error.
    Bad,
    /// Success, and the input is exhausted.
    End,
    /// Success, and input remains.
    More,
}

pub(crate) enum ParamResult {
    End,
    Bad,
    Param(Vec<u8>, Vec<u8>),
}

/// RFC 5322 §3.2.3 atext; 8-bit octets count as atext, as in Dovecot.
pub(crate) fn is_atext(c: u8) -> bool {
    c >= 0x80 || c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c)
}

/// RFC 2045 §5.1 token characters, plus '.'.
fn is_token(c: u8) -> bool {
    (is_atext(c) && !matches!(c, b'/' | b'=' | b'?')) || c == b'.'
}

/// A cursor over a header value that skips CFWS (RFC 5322 §3.2.2).
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
    /// When set, collects the text of the last comment skipped.
    pub(crate) comment: Option<Vec<u8>>,
    /// Replace NUL with U+FFFD in quoted strings, comments, domain literals.
    pub(crate) nul_replace: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Lexer<'a> {
        Lexer {
            data,
            pos: 0,
            comment: None,
            nul_replace: false,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn status(&self) -> St {
        if self.at_end() { St::End } else { St::More }
    }

    /// Appends `data[start..end]` followed by U+FFFD, for a NUL at `end`.
    fn push_nul(&self, out: &mut Vec<u8>, start: usize, end: usize) {
        out.extend_from_slice(&self.data[start..end]);
        out.extend_from_slice(REPLACEMENT);
    }

    /// Skips a comment at `(`, with nesting and quoted-pairs
    /// (RFC 5322 §3.2.2).
    fn skip_comment(&mut self) -> St {
        let data = self.data;
        let nul = self.nul_replace;
        let mut text = self.comment.take();
        if let Some(t) = text.as_mut() {
            t.clear();
        }
        self.pos += 1;
        let mut start = self.pos;
        let mut level = 1u32;
        let mut result = St::Bad;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if nul => {
                    if let Some(t) = text.as_mut() {
                        self.push_nul(t, start, self.pos);
                        start = self.pos + 1;
                    }
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if let Some(t) = text.as_mut() {
                            t.extend_from_slice(&data[start..self.pos]);
                        }
                        self.pos += 1;
                        result = self.status();
                        break;
                    }
                }
                b'\n' => {
                    if let Some(t) = text.as_mut() {
                        let mut e = self.pos;
                        if e > start && data[e - 1] == b'\r' {
                            e -= 1;
                        }
                        t.extend_from_slice(&data[start..e]);
                        start = self.pos + 1;
                    }
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        break;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        // Not a quoted-pair: the backslash stays as text.
                        self.pos -= 1;
                    } else {
                        if let Some(t) = text.as_mut() {
                            t.extend_from_slice(&data[start..self.pos - 1]);
                        }
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.comment = text;
        result
    }

    /// Skips whitespace, line breaks and comments.
    pub(crate) fn skip_lwsp(&mut self) -> St {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() == St::Bad {
                        return St::Bad;
                    }
                }
                _ => break,
            }
        }
        self.status()
    }

    /// RFC 5322 §3.2.3 atom.
    pub(crate) fn atom(&mut self, out: &mut Vec<u8>) -> St {
        if !self.peek().is_some_and(is_atext) {
            return St::Bad;
        }
        let start = self.pos;
        while self.peek().is_some_and(is_atext) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            St::End
        } else {
            self.skip_lwsp()
        }
    }

    /// RFC 5322 §3.2.3 dot-atom, allowing CFWS around the dots (RFC 822).
    pub(crate) fn dot_atom(&mut self, out: &mut Vec<u8>) -> St {
        if !self.peek().is_some_and(is_atext) {
            return St::Bad;
        }
        let mut start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek() {
            if is_atext(c) {
                self.pos += 1;
                continue;
            }
            if start == self.pos {
                return St::Bad;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            let r = self.skip_lwsp();
            if r != St::More {
                return r;
            }
            if self.peek() != Some(b'.') {
                return St::More;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() != St::More {
                return St::Bad;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        St::End
    }

    /// RFC 2045 §5.1 token (possibly empty), dots allowed.
    pub(crate) fn mime_token(&mut self, out: &mut Vec<u8>) -> St {
        let start = self.pos;
        while self.peek().is_some_and(is_token) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            St::End
        } else {
            self.skip_lwsp()
        }
    }

    /// RFC 5322 §3.2.4 quoted-string at `"`: quoted-pairs resolved, folding
    /// line breaks removed.
    pub(crate) fn quoted_string(&mut self, out: &mut Vec<u8>) -> St {
        let data = self.data;
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if self.nul_replace => {
                    self.push_nul(out, start, self.pos);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(&data[start..self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut e = self.pos;
                    if e > start && data[e - 1] == b'\r' {
                        e -= 1;
                    }
                    out.extend_from_slice(&data[start..e]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        return St::Bad;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        out.extend_from_slice(&data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        St::Bad
    }

    fn atom_or_dot(&mut self, out: &mut Vec<u8>) -> St {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_atext(c) || c == b'.') {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            St::End
        } else {
            self.skip_lwsp()
        }
    }

    /// RFC 5322 §3.2.5 phrase, obs-phrase dots allowed; words are joined
    /// with single spaces.
    pub(crate) fn phrase(&mut self, out: &mut Vec<u8>) -> St {
        match self.peek() {
            None => return St::End,
            Some(b'.') => return St::Bad,
            Some(_) => {}
        }
        loop {
            let r = if self.peek() == Some(b'"') {
                self.quoted_string(out)
            } else {
                self.atom_or_dot(out)
            };
            if r != St::More {
                return r;
            }
            match self.peek() {
                Some(c) if is_atext(c) || c == b'"' || c == b'.' => out.push(b' '),
                _ => break,
            }
        }
        self.skip_lwsp()
    }

    /// RFC 5322 §3.4.1 domain-literal at `[`, kept with its brackets and
    /// backslashes.
    fn domain_literal(&mut self, out: &mut Vec<u8>) -> St {
        let data = self.data;
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < data.len() {
            match data[self.pos] {
                0 if self.nul_replace => {
                    self.push_nul(out, start, self.pos);
                    start = self.pos + 1;
                }
                b'[' => return St::Bad,
                b']' => {
                    out.extend_from_slice(&data[start..=self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut e = self.pos;
                    if e > start && data[e - 1] == b'\r' {
                        e -= 1;
                    }
                    out.extend_from_slice(&data[start..e]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= data.len() {
                        return St::Bad;
                    }
                    if matches!(data[self.pos], b'\r' | b'\n' | 0) {
                        out.extend_from_slice(&data[start..self.pos]);
                        start = self.pos;
                        self.pos -= 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        St::Bad
    }

    /// RFC 5322 §3.4.1 domain, at the `@` before it.
    pub(crate) fn domain(&mut self, out: &mut Vec<u8>) -> St {
        self.pos += 1;
        if self.skip_lwsp() != St::More {
            return St::Bad;
        }
        if self.peek() == Some(b'[') {
            self.domain_literal(out)
        } else {
            self.dot_atom(out)
        }
    }

    /// RFC 2045 §5.1 `type "/" subtype`, normalised into `out` as Dovecot's
    /// `rfc822_parse_content_type()` does: on a bad subtype `out` is left
    /// empty; on a bad type it keeps what was read.
    fn content_type(&mut self, out: &mut Vec<u8>) -> St {
        if self.skip_lwsp() != St::More {
            return St::Bad;
        }
        let l0 = out.len();
        if self.mime_token(out) != St::More || out.len() == l0 {
            return St::Bad;
        }
        if self.peek() != Some(b'/') {
            out.truncate(l0);
            return St::Bad;
        }
        self.pos += 1;
        if self.skip_lwsp() != St::More {
            out.truncate(l0);
            return St::Bad;
        }
        out.push(b'/');
        let l1 = out.len();
        let r = self.mime_token(out);
        if r == St::Bad || out.len() == l1 || self.peek().is_some_and(|c| c != b';') {
            out.truncate(l0);
            return St::Bad;
        }
        r
    }

    /// One `";" attribute "=" value` (RFC 2045 §5.1).
    fn content_param(&mut self) -> ParamResult {
        match self.peek() {
            None => return ParamResult::End,
            Some(b';') => self.pos += 1,
            Some(_) => return ParamResult::Bad,
        }
        if self.skip_lwsp() != St::More {
            return ParamResult::Bad;
        }
        let mut key = Vec::new();
        if self.mime_token(&mut key) != St::More || self.peek() != Some(b'=') {
            return ParamResult::Bad;
        }
        self.pos += 1;
        let mut value = Vec::new();
        let mut r = self.skip_lwsp();
        if r == St::More {
            match self.peek() {
                Some(b'"') => r = self.quoted_string(&mut value),
                Some(b'=') => {
                    // Broken input such as name==?utf-8?b?...?= is kept raw.
                    while let Some(c) = self.peek() {
                        if matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n') {
                            break;
                        }
                        value.push(c);
                        self.pos += 1;
                    }
                }
                _ => r = self.mime_token(&mut value),
            }
        }
        if r == St::Bad {
            ParamResult::Bad
        } else {
            ParamResult::Param(key, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body<'a>(raw: &'a [u8], p: &Part) -> &'a [u8] {
        &raw[p.body.clone()]
    }

    fn head<'a>(raw: &'a [u8], p: &Part) -> &'a [u8] {
        &raw[p.header.clone()]
    }

    const NESTED: &[u8] = b"From: a@b\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
first\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
\r\n\
alt one\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>alt two</p>\r\n\
--inner--\r\n\
inner epilogue\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: enclosed\r\n\
\r\n\
enclosed body\r\n\
--outer--\r\n\
epilogue\r\n";

    #[test]
    fn crlf_before_delimiter_belongs_to_delimiter() {
        let root = parse(NESTED);
        assert_eq!(root.children().len(), 3);
        let first = &root.children()[0];
        assert_eq!(body(NESTED, first), b"first");
        assert_eq!(head(NESTED, first), b"Content-Type: text/plain\r\n\r\n");
        assert_eq!(first.lines, 0);
    }

    #[test]
    fn preamble_and_epilogue_are_not_parts() {
        let root = parse(NESTED);
        let b = body(NESTED, &root);
        assert!(b.starts_with(b"preamble\r\n--outer\r\n"));
        assert!(b.ends_with(b"--outer--\r\nepilogue\r\n"));
        assert_eq!(root.body.end, NESTED.len());
        assert!(
            root.children()
                .iter()
                .all(|p| !body(NESTED, p).starts_with(b"preamble"))
        );
    }

    #[test]
    fn nested_multipart() {
        let root = parse(NESTED);
        let alt = &root.children()[1];
        assert!(matches!(
            alt.structure,
            Structure::Multipart { digest: false, .. }
        ));
        assert_eq!(alt.children().len(), 2);
        assert_eq!(body(NESTED, &alt.children()[0]), b"alt one");
        assert_eq!(head(NESTED, &alt.children()[0]), b"\r\n");
        assert!(alt.children()[0].media_type.is_none());
        assert_eq!(body(NESTED, &alt.children()[1]), b"<p>alt two</p>");
        // The inner multipart's body runs through its epilogue.
        assert!(body(NESTED, alt).ends_with(b"--inner--\r\ninner epilogue"));
        assert_eq!(
            root.find(&[2, 2]).map(|p| body(NESTED, p)),
            Some(&b"<p>alt two</p>"[..])
        );
    }

    #[test]
    fn message_rfc822_with_own_header() {
        let root = parse(NESTED);
        let m = &root.children()[2];
        let inner = m.message().expect("enclosed message");
        assert_eq!(head(NESTED, inner), b"Subject: enclosed\r\n\r\n");
        assert_eq!(body(NESTED, inner), b"enclosed body");
        assert_eq!(body(NESTED, m), b"Subject: enclosed\r\n\r\nenclosed body");
        assert_eq!(m.lines, 2);
        assert_eq!(m.size(), 34);
        // 3 is the message/rfc822 part, 3.1 the enclosed message's body.
        assert_eq!(root.find(&[3]), Some(m));
        assert_eq!(root.find(&[3, 1]), Some(inner));
        assert_eq!(root.find(&[3, 2]), None);
    }

    #[test]
    fn part_numbering() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let root = parse(raw);
        assert_eq!(root.find(&[]), Some(&root));
        assert_eq!(root.find(&[1]), Some(&root));
        assert_eq!(root.find(&[2]), None);
        assert_eq!(root.find(&[1, 1]), None);
        assert_eq!(root.find(&[0]), None);
        // Dovecot: in a multipart, n.1 of a leaf part n is that part.
        let root = parse(NESTED);
        assert_eq!(root.find(&[1, 1]), root.find(&[1]));
        assert_eq!(root.find(&[1, 2]), None);
        assert_eq!(root.find(&[4]), None);
    }

    #[test]
    fn missing_closing_boundary() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n";
        let root = parse(raw);
        assert_eq!(root.children().len(), 2);
        assert_eq!(body(raw, &root.children()[0]), b"one");
        assert_eq!(body(raw, &root.children()[1]), b"two\r\n");
        assert_eq!(root.body.end, raw.len());
    }

    #[test]
    fn missing_boundary_parameter() {
        let raw = b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\ntext\r\n";
        let root = parse(raw);
        assert!(matches!(&root.structure, Structure::Multipart { parts, .. } if parts.is_empty()));
        assert_eq!(body(raw, &root), b"--b\r\n\r\ntext\r\n");
        assert_eq!(root.find(&[1]), None);
        // A boundary that never occurs: the whole body is preamble.
        let raw = b"Content-Type: multipart/mixed; boundary=ab\n\nbody\n";
        let root = parse(raw);
        assert!(root.children().is_empty());
        assert_eq!(root.lines, 1);
    }

    #[test]
    fn part_without_header_defaults() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nplain\r\n--b--\r\n";
        let root = parse(raw);
        let p = &root.children()[0];
        assert_eq!(p.header.len(), 2);
        assert!(p.media_type.is_none());
        assert!(p.is_text());
        assert!(p.encoding.is_none());
    }

    #[test]
    fn digest_parts_default_to_message() {
        let raw = b"Content-Type: multipart/digest; boundary=\"foo\"\n\nprologue\n\n--foo \n\n\
From: m1@example.com\nSubject: m1\n\nm1 body\n\n--foo \nX-Mime: m2 header\n\n\
From: m2@example.com\nSubject: m2\n\nm2 body\n\n--foo--\n\nepilogue\n";
        let root = parse(raw);
        assert_eq!(root.children().len(), 2);
        let m1 = &root.children()[0];
        assert!(matches!(m1.structure, Structure::Message(_)));
        assert_eq!(head(raw, m1), b"\n");
        assert_eq!(
            body(raw, m1),
            b"From: m1@example.com\nSubject: m1\n\nm1 body\n"
        );
        let inner = m1.message().map(|m| body(raw, m));
        assert_eq!(inner, Some(&b"m1 body\n"[..]));
        let m2 = &root.children()[1];
        assert_eq!(head(raw, m2), b"X-Mime: m2 header\n\n");
        assert_eq!(
            root.find(&[2, 1]).map(|p| body(raw, p)),
            Some(&b"m2 body\n"[..])
        );
        // An explicit type is honoured inside a digest.
        let raw = b"Content-Type: multipart/digest; boundary=d\n\n--d\nContent-Type: text/plain\n\nx\n--d--\n";
        assert!(parse(raw).children()[0].is_text());
    }

    #[test]
    fn bare_lf_line_endings() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nline1\nline2\n--b--\n";
        let root = parse(raw);
        let p = &root.children()[0];
        assert_eq!(body(raw, p), b"line1\nline2");
        assert_eq!(p.lines, 1);
        assert_eq!(root.header, 0..43);
    }

    #[test]
    fn line_count_without_final_newline() {
        // Dovecot counts LF octets: a last line without one is not counted.
        let raw = b"Subject: x\r\n\r\none\r\ntwo";
        assert_eq!(parse(raw).lines, 1);
        let raw = b"Subject: x\r\n\r\none\r\ntwo\r\n";
        assert_eq!(parse(raw).lines, 2);
        assert_eq!(parse(b"Subject: x\r\n\r\n").lines, 0);
    }

    #[test]
    fn header_without_body() {
        let raw = b"Subject: x\r\nFrom: y";
        let root = parse(raw);
        assert_eq!(root.header, 0..raw.len());
        assert_eq!(root.body, raw.len()..raw.len());
        let root = parse(b"");
        assert_eq!((root.header.clone(), root.body.clone()), (0..0, 0..0));
    }

    #[test]
    fn header_cut_short_by_boundary() {
        // Dovecot's "truncated mime headers" case.
        let raw = b"Content-Type: multipart/mixed; boundary=\":foo\"\n\n--:foo\n--:foo\n\
Content-Type: text/plain\n--:foo\nContent-Type: text/plain\r\n--:foo\nContent-Type: text/html\n--:foo--\n";
        let root = parse(raw);
        let c = root.children();
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].header.clone(), c[0].size()), (55..55, 0));
        assert_eq!((c[1].header.clone(), c[1].size()), (62..86, 0));
        assert_eq!((c[2].header.clone(), c[2].size()), (94..118, 0));
        assert_eq!((c[3].header.clone(), c[3].size()), (127..150, 0));
        assert_eq!(root.header.len(), 48);
        assert_eq!(root.size(), 112);
        assert_eq!(root.lines, 8);
        assert!(c[1].media_type.is_some());
    }

    #[test]
    fn inner_multipart_with_prefix_boundary() {
        // Dovecot's "truncated mime headers 2": boundary "a" is a prefix of
        // the outer "ab"; the outer one wins on "--ab".
        let raw = b"Content-Type: multipart/mixed; boundary=\"ab\"\n\n--ab\n\
Content-Type: multipart/mixed; boundary=\"a\"\n\n--ab\nContent-Type: text/plain\n\n--a\n\n";
        let root = parse(raw);
        let c = root.children();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].header.clone(), c[0].size()), (51..95, 0));
        assert!(c[0].children().is_empty());
        assert_eq!(
            (
                c[1].header.start,
                c[1].header.len(),
                c[1].size(),
                c[1].lines
            ),
            (101, 26, 5, 2)
        );
        assert_eq!((root.size(), root.lines), (86, 8));
    }

    #[test]
    fn same_boundary_nested() {
        // Dovecot's "duplicate mime boundary": the innermost owner wins.
        let raw = b"Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\n\
Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\nContent-Type: text/plain\n\nbody\n";
        let root = parse(raw);
        assert_eq!(root.children().len(), 1);
        let inner = &root.children()[0];
        assert_eq!((inner.header.len(), inner.size(), inner.lines), (45, 35, 4));
        assert_eq!(inner.children().len(), 1);
        assert_eq!(body(raw, &inner.children()[0]), b"body\n");
    }

    #[test]
    fn boundary_suffix_garbage_and_dashes() {
        let raw =
            b"Content-Type: multipart/mixed; boundary=a\n\n--a\n\nx\n--a--garbage\nepi\n--a\n\ny\n";
        let root = parse(raw);
        // After the close-delimiter the boundary is gone: "--a" is epilogue.
        assert_eq!(root.children().len(), 1);
        assert_eq!(body(raw, &root.children()[0]), b"x");
        let raw = b"Content-Type: multipart/mixed; boundary=a\n\n--a  \n\nx\n--aXY\n\ny\n--a--\n";
        let root = parse(raw);
        assert_eq!(root.children().len(), 2);
        assert_eq!(body(raw, &root.children()[1]), b"y");
    }

    #[test]
    fn non_mime_message_ignores_content_fields() {
        let raw = b"Content-Transfer-Encoding: base64\r\nContent-ID: <x>\r\n\r\nAAAA\r\n";
        let root = parse(raw);
        assert!(root.encoding.is_none() && root.id.is_none());
        let raw = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <x>\r\n\r\nAAAA\r\n";
        let root = parse(raw);
        assert_eq!(root.encoding.as_deref(), Some(&b"base64"[..]));
        assert_eq!(root.id.as_deref(), Some(&b"<x>"[..]));
    }

    #[test]
    fn content_type_forms() {
        let ct = |v: &[u8]| {
            let mut raw = b"Content-Type: ".to_vec();
            raw.extend_from_slice(v);
            raw.extend_from_slice(b"\r\n\r\n");
            let p = parse(&raw);
            (p.media_type.map(|m| (m.top, m.sub)), p.params)
        };
        let t = |a: &str, b: &str| Some((a.as_bytes().to_vec(), b.as_bytes().to_vec()));
        let p = |n: &str, v: &str| Param {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(ct(b"Text/PLAIN"), (t("Text", "PLAIN"), vec![]));
        assert_eq!(
            ct(b"text / plain (c) ; charset = \"utf-8\""),
            (t("text", "plain"), vec![p("charset", "utf-8")])
        );
        assert_eq!(ct(b"text"), (t("text", ""), vec![]));
        assert_eq!(ct(b"text/plain garbage; a=b"), (t("", ""), vec![]));
        assert_eq!(ct(b""), (t("", ""), vec![]));
        assert_eq!(
            ct(b"text/plain; format=flowed;\r\n  delsp=\"no\"; x=\"a\\\"b\""),
            (
                t("text", "plain"),
                vec![p("format", "flowed"), p("delsp", "no"), p("x", "a\"b")]
            )
        );
        // After garbage Dovecot skips a character, here the ';', and then up
        // to the next ';': c=d is lost.
        assert_eq!(
            ct(b"a/b; junk; c=d; e==?q?x?= ;f=g"),
            (t("a", "b"), vec![p("e", "=?q?x?="), p("f", "g")])
        );
        // Folded quoted boundary: the line break goes, the space stays.
        assert_eq!(
            ct(b"multipart/mixed; boundary=\"foo\r\n bar\"").1,
            vec![p("boundary", "foo bar")]
        );
    }

    #[test]
    fn rfc2231_parameters_kept_raw() {
        let params = |v: &[u8]| {
            let mut lx = Lexer::new(v);
            params(&mut lx)
        };
        let p = |n: &str, v: &str| Param {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            params(b"; name*=utf-8''%E2%82%AC.pdf"),
            vec![p("name*", "utf-8''%E2%82%AC.pdf")]
        );
        assert_eq!(
            params(b"; title*1=\"b\"; title*0=\"a\""),
            vec![p("title", "ab")]
        );
        assert_eq!(
            params(b"; name*0*=us-ascii'en'a%20; name*1=\"5%\"; charset=x"),
            vec![p("charset", "x"), p("name*", "us-ascii'en'a%205%25")]
        );
        assert_eq!(params(b"; name*0=a; name*1*=b"), vec![p("name*", "''ab")]);
        // A missing index: passed through piece by piece.
        assert_eq!(
            params(b"; n*0=a; n*2=c"),
            vec![p("n*0", "a"), p("n*2", "c")]
        );
        assert_eq!(params(b"; n*x=a"), vec![p("n*x", "a")]);
    }

    #[test]
    fn first_content_fields_win() {
        let raw = b"MIME-Version: 1.0\r\nContent-ID: <1>\r\nContent-ID: <2>\r\n\
Content-Transfer-Encoding: x y\r\nContent-Transfer-Encoding: Base64\r\n\
Content-Language: en, (c) fi\r\nContent-Language: de\r\n\
Content-Disposition: inline\r\nContent-Disposition: attachment; filename=a.txt\r\n\
Content-Disposition: inline; filename=b\r\nContent-Description: a\r\n\tb\r\n\r\n";
        let root = parse(raw);
        assert_eq!(root.id.as_deref(), Some(&b"<1>"[..]));
        assert_eq!(root.encoding.as_deref(), Some(&b"Base64"[..]));
        assert_eq!(root.language, vec![b"en".to_vec(), b"fi".to_vec()]);
        let d = root.disposition.expect("disposition");
        assert_eq!(d.value, b"attachment");
        assert_eq!(
            d.params,
            vec![Param {
                name: b"filename".to_vec(),
                value: b"a.txt".to_vec()
            }]
        );
        assert_eq!(root.description.as_deref(), Some(&b"a\tb"[..]));
    }

    #[test]
    fn unfolding_and_names() {
        let raw = b"Subject :  \r\n  x\r\n\tyy\r\nX-Empty:\r\nX-Blank:   \r\nno colon here\r\n\r\n";
        let f: Vec<_> = fields(raw, 0..raw.len()).collect();
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].name, b"Subject");
        assert_eq!(&*f[0].value(), b"   x\tyy");
        assert_eq!(&*f[1].value(), b"");
        assert_eq!(&*f[2].value(), b"  ");
        assert_eq!(f[3].name, b"");
        assert_eq!(&*f[3].value(), b"no colon here");
        let mut it = fields(raw, 0..raw.len());
        assert_eq!(it.by_ref().count(), 4);
        assert_eq!(it.terminator(), Some(raw.len() - 2..raw.len()));
        let mut it = fields(b"A: b\r\n", 0..6);
        assert_eq!((it.by_ref().count(), it.terminator()), (1, None));
        let mut it = fields(b"\n", 0..1);
        assert_eq!((it.by_ref().count(), it.terminator()), (0, Some(0..1)));
    }

    #[test]
    fn depth_is_bounded() {
        let mut raw = Vec::new();
        for _ in 0..150 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: bottom\r\n\r\nx\r\n");
        let root = parse(&raw);
        let mut depth = 0;
        let mut p = &root;
        while let Some(m) = p.message() {
            p = m;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH - 1);
        assert!(p.overflow && p.is_opaque());
        assert_eq!(p.body.end, raw.len());

        let mut raw = Vec::new();
        for i in 0..150 {
            raw.extend_from_slice(
                format!(
                    "--b{i}\r\nContent-Type: multipart/mixed; boundary=b{}\r\n\r\n",
                    i + 1
                )
                .as_bytes(),
            );
        }
        let root = parse(&raw[5..]);
        let _ = root.find(&[1; 200]);
    }

    #[test]
    fn blank_line_before_delimiter_belongs_to_it() {
        // Offsets checked against Dovecot 2.3.19.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n--b\r\n\r\n\r\n--b--\r\n";
        let root = parse(raw);
        let c = root.children();
        assert_eq!(c.len(), 3);
        assert_eq!(head(raw, &c[0]), b"Content-Type: text/plain\r\n");
        assert_eq!(c[0].size(), 0);
        // The enclosed header loses its blank line, which moves to the
        // body of the message/rfc822 part (Dovecot's size 14, 2 lines).
        let inner = c[1].message().expect("enclosed message");
        assert_eq!(head(raw, inner), b"Subject: x\r\n");
        assert_eq!(body(raw, &c[1]), b"Subject: x\r\n\r\n");
        assert_eq!((c[1].size(), c[1].lines), (14, 2));
        // A header that is only a blank line keeps it: no line precedes it.
        assert_eq!(
            (head(raw, &c[2]), body(raw, &c[2])),
            (&b"\r\n"[..], &b""[..])
        );
    }

    #[test]
    fn header_line_cut_by_delimiter_in_enclosed_message() {
        // The last header line's break goes to the message/rfc822 part.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: x\r\nFrom: y\r\n--b--\r\n";
        let root = parse(raw);
        let m = &root.children()[0];
        let inner = m.message().expect("enclosed message");
        assert_eq!(head(raw, inner), b"Subject: x\r\nFrom: y");
        assert_eq!(body(raw, m), b"Subject: x\r\nFrom: y\r\n");
        assert!(body(raw, &root).ends_with(b"From: y\r\n--b--\r\n"));
    }

    #[test]
    fn delimiter_without_line_break_at_end_opens_no_part() {
        // Dovecot only starts a part after the delimiter line's LF.
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a";
        let root = parse(raw);
        assert_eq!(root.children().len(), 1);
        assert_eq!(body(raw, &root.children()[0]), b"x");
        assert_eq!(root.body.end, raw.len());
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a\r\n";
        assert_eq!(parse(raw).children().len(), 2);
    }

    #[test]
    fn message_part_with_header_cut_short() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n--b--\r\n";
        let root = parse(raw);
        let m = &root.children()[0];
        assert_eq!(head(raw, m), b"Content-Type: message/rfc822");
        let inner = m.message().expect("empty enclosed message");
        assert_eq!(
            (inner.header.clone(), inner.body.clone()),
            (m.body.clone(), m.body.clone())
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: [&[u8]; 12] = [
            b"\r",
            b"\n",
            b"--",
            b":",
            b"Content-Type: multipart/x; boundary=\"\"\n\n--\n--\n",
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a",
            b"Content-Type: (",
            b"Content-Type: a/b; c=\"",
            b"Content-Type: a/b; c*0*=x; c*=y; c*1=z",
            b"From: \"\\",
            b"\x00\x00:\x00\n\n\x00",
            b"Content-Type: multipart/mixed; boundary=a\n\n--a\r",
        ];
        for s in samples {
            let root = parse(s);
            assert!(root.body.end <= s.len());
        }
        // Every prefix of a real message.
        for n in 0..NESTED.len() {
            let root = parse(&NESTED[..n]);
            assert!(root.body.end == n && root.header.start == 0);
        }
    }
}
