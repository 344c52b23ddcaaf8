//! Framing helpers and the syntax imap-codec does not parse.
//!
//! - [`literal_at_end`]: whether a line ends in a literal announcement
//!   (`{n}`, `{n+}` of RFC 7888, `~{n}` of RFC 3516).
//! - LIST and LSUB, including LIST-EXTENDED (RFC 5258) selection and return
//!   options, LIST-STATUS (RFC 5819) and multiple patterns, are parsed here.
//! - `SEARCH RETURN (…)` (ESEARCH, RFC 4731) is taken out before imap-codec
//!   parses the rest.
//! - `$` (SEARCHRES, RFC 5182) is replaced by the saved result as a sequence
//!   or UID set, whichever the position calls for.
use crate::error::{ImapError, Result};
use std::borrow::Cow;

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    /// Octets that follow.
    pub len: usize,
    /// `{n+}`: the client does not wait for a continuation (RFC 7888).
    pub non_sync: bool,
    /// `~{n}`: literal8 (RFC 3516).
    pub binary: bool,
    /// Length of the announcement with its line end, to cut it out.
    pub marker_len: usize,
}

/// Recognizes `{123}\r\n`, `{123+}\r\n`, `~{123}\r\n` at the end of `line`.
pub fn literal_at_end(line: &[u8]) -> Option<Literal> {
    let body = line.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let eol = line.len() - body.len();
    let inner = body.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let non_sync = digits.ends_with(b"+");
    if non_sync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let binary = open > 0 && inner[open - 1] == b'~';
    let start = if binary { open - 1 } else { open };
    Some(Literal {
        len,
        non_sync,
        binary,
        marker_len: body.len() - start + eol,
    })
}

/// The tag of a command: its first token, if it is a valid tag (RFC 9051 `tag`).
pub fn tag_of(bytes: &[u8]) -> Option<&str> {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = &bytes[..end];
    let ok = !tag.is_empty()
        && tag.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        });
    if ok {
        std::str::from_utf8(tag).ok()
    } else {
        None
    }
}

/// The command name (the second token; `UID` for UID commands).
pub fn command_name(bytes: &[u8]) -> &str {
    let mut it = bytes.split(|&b| b == b' ' || b == b'\r' || b == b'\n');
    let _tag = it.next();
    it.next()
        .and_then(|n| std::str::from_utf8(n).ok())
        .unwrap_or("")
}

/// Parses a command that [`prepare`] left for imap-codec: the session's
/// parsing entry after framing and [`prepare`] (public so that the command
/// grammar can be fuzzed alone, fuzz/fuzz_targets/imap_command.rs). Bytes
/// after the first complete command are ignored, as the session frames one
/// command at a time.
pub fn decode(bytes: &[u8]) -> Result<imap_types::command::Command<'_>> {
    use imap_codec::decode::Decoder;
    imap_codec::CommandCodec::default()
        .decode(bytes)
        .map(|(_, c)| c)
        .map_err(|_| ImapError::bad("Invalid command or arguments"))
}

/// ESEARCH return options (RFC 4731 §3.1, RFC 5182 SAVE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// MIN
    pub min: bool,
    /// MAX
    pub max: bool,
    /// ALL
    pub all: bool,
    /// COUNT
    pub count: bool,
    /// SAVE (RFC 5182)
    pub save: bool,
    /// UPDATE (RFC 5267 §4.3): keep the result live, reporting changes.
    pub update: bool,
    /// PARTIAL (RFC 5267 §4.4, RFC 9394 §3.1): the range of result
    /// positions, low to high; both negative counts from the end.
    pub partial: Option<(i64, i64)>,
}

/// LIST or LSUB, with the options of RFC 5258 and RFC 5819.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    /// LSUB rather than LIST.
    pub lsub: bool,
    /// Whether LIST-EXTENDED syntax was used (selection or return options, or
    /// several patterns): then the extended reply rules apply.
    pub extended: bool,
    /// Selection: SUBSCRIBED.
    pub select_subscribed: bool,
    /// Selection: RECURSIVEMATCH.
    pub recursive_match: bool,
    /// Selection: SPECIAL-USE (RFC 6154).
    pub select_special_use: bool,
    /// The reference name (raw wire bytes, modified UTF-7).
    pub reference: Vec<u8>,
    /// The patterns (raw wire bytes).
    pub patterns: Vec<Vec<u8>>,
    /// Return: SUBSCRIBED.
    pub return_subscribed: bool,
    /// Return: CHILDREN.
    pub return_children: bool,
    /// Return: SPECIAL-USE.
    pub return_special_use: bool,
    /// Return: STATUS (items), RFC 5819.
    pub return_status: Option<Vec<String>>,
}

impl ListCommand {
    /// A LIST or LSUB as imap-codec parsed it (kept for completeness; the
    /// session parses LIST itself).
    pub fn simple(
        reference: &imap_types::mailbox::Mailbox<'_>,
        pattern: &imap_types::mailbox::ListMailbox<'_>,
        lsub: bool,
    ) -> ListCommand {
        use imap_types::mailbox::{ListMailbox, Mailbox};
        let reference = match reference {
            Mailbox::Inbox => b"INBOX".to_vec(),
            Mailbox::Other(o) => o.as_ref().to_vec(),
        };
        let pattern = match pattern {
            ListMailbox::Token(t) => t.as_ref().to_vec(),
            ListMailbox::String(s) => s.as_ref().to_vec(),
        };
        ListCommand {
            lsub,
            reference,
            patterns: vec![pattern],
            ..ListCommand::default()
        }
    }
}

/// A saved search result and the mailbox view, to substitute `$`.
#[derive(Debug, Clone, Copy)]
pub struct Saved<'a> {
    /// Saved UIDs, sorted.
    pub uids: &'a [u32],
    /// The mailbox's UIDs in sequence order.
    pub view: &'a [u32],
}

/// What [`prepare`] made of a command.
#[derive(Debug)]
pub enum Prepared<'a> {
    /// LIST or LSUB, parsed here.
    List(ListCommand),
    /// ID (RFC 2971), checked here: imap-codec refuses values longer than the
    /// RFC's advice, which real clients and imaptest exceed.
    Id,
    /// UNAUTHENTICATE (RFC 8437), which imap-codec does not know.
    Unauthenticate,
    /// CANCELUPDATE (RFC 5267 §4.3.1): the tags whose live searches end.
    CancelUpdate(Vec<String>),
    /// APPEND of several messages (MULTIAPPEND, RFC 3502 §6.3.11) or of
    /// messages put together (CATENATE, RFC 4469): the mailbox's bytes and,
    /// per message, the bytes of its options (flag list, date), for
    /// imap-codec to parse as one APPEND's would be, and its data.
    MultiAppend {
        /// The mailbox argument as sent.
        mailbox: std::ops::Range<usize>,
        /// Per message: its options and its data.
        messages: Vec<(std::ops::Range<usize>, AppendData)>,
    },
    /// An ACL command (RFC 4314 §3), which imap-codec does not know, with
    /// its arguments (astrings).
    Acl {
        /// Which one.
        command: AclCommand,
        /// The mailbox first, then the identifier and rights as the command
        /// has them.
        args: Vec<Vec<u8>>,
    },
    /// A URLAUTH command (RFC 4467 §6), which imap-codec does not know,
    /// with its arguments (astrings).
    Url {
        /// Which one.
        command: crate::cmd::urlauth::UrlCommand,
        /// Its arguments.
        args: Vec<Vec<u8>>,
    },
    /// GETMETADATA or SETMETADATA (RFC 5464), parsed here.
    Metadata(crate::cmd::metadata::MetadataCommand),
    /// NOTIFY (RFC 5465), which imap-codec does not know.
    Notify(crate::notify::NotifyCommand),
    /// Anything else, for imap-codec.
    Command {
        /// The command, rewritten if needed.
        bytes: Cow<'a, [u8]>,
        /// SEARCH RETURN options, taken out.
        search_return: Option<SearchReturn>,
        /// `$` named an empty saved result: the command acts on nothing.
        empty_saved: bool,
        /// STATUS items taken out.
        status: StatusExtras,
        /// FETCH items taken out.
        fetch: FetchExtras,
        /// CREATE's USE attributes (RFC 6154 §3), taken out.
        create_use: Option<Vec<String>>,
    },
}

/// An argument as imap-codec takes it: a quoted string holding UTF-8
/// (RFC 9051 §9 QUOTED-CHAR), which its quoted rule refuses, becomes the
/// same string as a literal; anything else is left as it is.
pub fn for_codec(arg: &[u8]) -> Cow<'_, [u8]> {
    match tokenize(arg).ok().as_deref() {
        Some([(t, _)]) => utf8_as_literal(t).map_or(Cow::Borrowed(arg), Cow::Owned),
        _ => Cow::Borrowed(arg),
    }
}

/// A quoted string holding UTF-8 as a literal (RFC 9051 §9 QUOTED-CHAR:
/// imap-codec's quoted rule refuses what its literal takes); None for any
/// other token.
fn utf8_as_literal(t: &Token<'_>) -> Option<Vec<u8>> {
    match t {
        Token::Quoted(v) if !v.is_ascii() => {
            let mut lit = format!("{{{}}}\r\n", v.len()).into_bytes();
            lit.extend_from_slice(v);
            Some(lit)
        }
        _ => None,
    }
}

/// What one message of an APPEND is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// A literal (its header and data, as the command holds them).
    Literal(std::ops::Range<usize>),
    /// CATENATE (RFC 4469 §5): parts put together in order.
    Catenate(Vec<CatPart>),
}

/// A CATENATE part (RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// TEXT literal: its header and data, as the command holds them.
    Text(std::ops::Range<usize>),
    /// URL: an IMAP URL (RFC 5092) to a message or a part of one.
    Url(String),
}

/// The parts of a CATENATE list whose first part is at `tokens[i]`, and
/// the index of its closing parenthesis (RFC 4469 §5: cat-part = "TEXT" SP
/// literal / "URL" SP astring).
fn catenate_parts(
    tokens: &[(Token<'_>, std::ops::Range<usize>)],
    mut i: usize,
) -> Result<(Vec<CatPart>, usize)> {
    let bad = || ImapError::bad("Invalid CATENATE part");
    let mut parts = Vec::new();
    loop {
        match tokens.get(i) {
            Some((Token::Close, _)) if !parts.is_empty() => return Ok((parts, i)),
            Some((Token::Atom(a), _)) if a.eq_ignore_ascii_case(b"TEXT") => match tokens.get(i + 1)
            {
                Some((Token::Literal(_), r)) => parts.push(CatPart::Text(r.clone())),
                _ => return Err(bad()),
            },
            Some((Token::Atom(a), _)) if a.eq_ignore_ascii_case(b"URL") => {
                let url = match tokens.get(i + 1) {
                    Some((Token::Atom(u), _)) => u.to_vec(),
                    Some((Token::Quoted(u), _)) => u.clone(),
                    Some((Token::Literal(u), _)) => u.to_vec(),
                    _ => return Err(bad()),
                };
                parts.push(CatPart::Url(String::from_utf8(url).map_err(|_| bad())?));
            }
            _ => return Err(bad()),
        }
        i += 2;
    }
}

/// The ACL commands (RFC 4314 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclCommand {
    /// SETACL mailbox identifier rights (§3.1).
    SetAcl,
    /// DELETEACL mailbox identifier (§3.2).
    DeleteAcl,
    /// GETACL mailbox (§3.3).
    GetAcl,
    /// LISTRIGHTS mailbox identifier (§3.4).
    ListRights,
    /// MYRIGHTS mailbox (§3.5).
    MyRights,
}

impl AclCommand {
    fn of(name: &str) -> Option<(AclCommand, usize)> {
        Some(match name {
            "SETACL" => (AclCommand::SetAcl, 3),
            "DELETEACL" => (AclCommand::DeleteAcl, 2),
            "GETACL" => (AclCommand::GetAcl, 1),
            "LISTRIGHTS" => (AclCommand::ListRights, 2),
            "MYRIGHTS" => (AclCommand::MyRights, 1),
            _ => return None,
        })
    }

    /// The command's name, for counters.
    pub fn name(self) -> &'static str {
        match self {
            AclCommand::SetAcl => "SETACL",
            AclCommand::DeleteAcl => "DELETEACL",
            AclCommand::GetAcl => "GETACL",
            AclCommand::ListRights => "LISTRIGHTS",
            AclCommand::MyRights => "MYRIGHTS",
        }
    }
}

/// STATUS items imap-codec does not know, taken out of the list and answered
/// by the session: APPENDLIMIT (RFC 7889 §3) and MAILBOXID (RFC 8474 §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusExtras {
    /// APPENDLIMIT was asked for.
    pub appendlimit: bool,
    /// MAILBOXID was asked for.
    pub mailboxid: bool,
    /// Nothing else was: MESSAGES stands in for them in the parsed command
    /// and is left out of the reply.
    pub only: bool,
}

/// FETCH items imap-codec does not know, taken out of the list and answered
/// by the session: PREVIEW (RFC 8970 §4), EMAILID and THREADID (RFC 8474
/// §5), SAVEDATE (RFC 8514 §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchExtras {
    /// PREVIEW, with or without (LAZY).
    pub preview: bool,
    /// EMAILID.
    pub emailid: bool,
    /// THREADID.
    pub threadid: bool,
    /// SAVEDATE (RFC 8514 §4.1).
    pub savedate: bool,
    /// The PARTIAL modifier's range (RFC 9394 §3.3), taken out of the
    /// modifier list.
    pub partial: Option<(i64, i64)>,
    /// Nothing else was asked for: UID stands in for them in the parsed
    /// command and is answered only where UID FETCH calls for it.
    pub only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// An atom or number (any run of non-special bytes).
    Atom(&'a [u8]),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// A literal's content.
    Literal(&'a [u8]),
    Open,
    Close,
}

/// A search date, "1-Feb-2020" (RFC 9051 §9 `date-text`).
pub(crate) fn search_date(text: &[u8]) -> Option<chrono::NaiveDate> {
    let text = std::str::from_utf8(text).ok()?;
    // date-year is 4DIGIT, and nothing comes before date-day: chrono's %Y
    // takes fewer digits and its %d leading white space.
    let year = text.rsplit('-').next()?;
    if year.len() != 4 || text.starts_with(|c: char| !c.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(text, "%d-%b-%Y").ok()
}

/// Splits a command into tokens with their byte ranges.
pub(crate) fn tokenize(bytes: &[u8]) -> Result<Vec<(Token<'_>, std::ops::Range<usize>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = bytes.len();
    while i < n {
        let b = bytes[i];
        match b {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((Token::Open, i..i + 1));
                i += 1;
            }
            b')' => {
                out.push((Token::Close, i..i + 1));
                i += 1;
            }
            b'"' => {
                let start = i;
                let mut v = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        Some(b'\\') => {
                            if let Some(&c) = bytes.get(i + 1) {
                                v.push(c);
                            }
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\r' | b'\n') | None => {
                            return Err(ImapError::bad("Unterminated string"));
                        }
                        Some(&c) => {
                            v.push(c);
                            i += 1;
                        }
                    }
                }
                out.push((Token::Quoted(v), start..i));
            }
            b'{' | b'~' if literal_prefix(&bytes[i..]).is_some() => {
                let (len, header) = literal_prefix(&bytes[i..]).unwrap_or((0, 0));
                let start = i;
                let data_start = i + header;
                let data_end = data_start + len;
                if data_end > n {
                    return Err(ImapError::bad("Truncated literal"));
                }
                out.push((
                    Token::Literal(&bytes[data_start..data_end]),
                    start..data_end,
                ));
                i = data_end;
            }
            _ => {
                let start = i;
                while i < n && !matches!(bytes[i], b' ' | b'\r' | b'\n' | b'(' | b')') {
                    i += 1;
                }
                out.push((Token::Atom(&bytes[start..i]), start..i));
            }
        }
    }
    Ok(out)
}

/// `{n}\r\n` / `{n+}\r\n` / `~{n}\r\n` at the start of `b`: (n, header length).
fn literal_prefix(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    if b.first() == Some(&b'~') {
        i = 1;
    }
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let close = b.iter().skip(i).position(|&c| c == b'}')? + i;
    let mut digits = &b[i + 1..close];
    if digits.ends_with(b"+") {
        digits = &digits[..digits.len() - 1];
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let mut j = close + 1;
    if b.get(j) == Some(&b'\r') {
        j += 1;
    }
    if b.get(j) != Some(&b'\n') {
        return None;
    }
    Some((len, j + 1))
}

fn word<'a>(t: &'a Token<'_>) -> Option<&'a [u8]> {
    match t {
        Token::Atom(a) => Some(a),
        _ => None,
    }
}

fn string_value(t: &Token<'_>) -> Option<Vec<u8>> {
    match t {
        Token::Atom(a) => Some(a.to_vec()),
        Token::Quoted(q) => Some(q.clone()),
        Token::Literal(l) => Some(l.to_vec()),
        _ => None,
    }
}

/// Prepares a command for parsing; see the module documentation.
pub fn prepare<'a>(bytes: &'a [u8], saved: Option<Saved<'_>>) -> Result<Prepared<'a>> {
    let name = command_name(bytes).to_ascii_uppercase();
    if name == "LIST" || name == "LSUB" {
        return parse_list(bytes, name == "LSUB").map(Prepared::List);
    }
    if name == "ID" {
        // RFC 2971: "ID" SP ("NIL" / "(" *(string SP nstring) ")").
        let tokens = tokenize(bytes)?;
        let ok = match tokens.get(2).map(|t| &t.0) {
            Some(Token::Atom(a)) => a.eq_ignore_ascii_case(b"NIL") && tokens.len() == 3,
            Some(Token::Open) => tokens.last().map(|t| &t.0) == Some(&Token::Close),
            _ => false,
        };
        return if ok {
            Ok(Prepared::Id)
        } else {
            Err(ImapError::bad("Invalid ID arguments"))
        };
    }
    if name == "UNAUTHENTICATE" {
        // RFC 8437 §3: "UNAUTHENTICATE", no arguments.
        let rest = bytes.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
        return if rest.trim_ascii().is_empty() {
            Ok(Prepared::Unauthenticate)
        } else {
            Err(ImapError::bad("UNAUTHENTICATE takes no arguments"))
        };
    }
    if name == "NOTIFY" {
        return crate::notify::parse(bytes).map(Prepared::Notify);
    }
    if name == "GETMETADATA" || name == "SETMETADATA" {
        return crate::cmd::metadata::parse(bytes, name == "SETMETADATA").map(Prepared::Metadata);
    }
    let tokens = tokenize(bytes)?;
    if name == "CANCELUPDATE" {
        // RFC 5267 §4.3.1: "CANCELUPDATE" 1*(SP quoted).
        let tags: Vec<String> = tokens
            .get(2..)
            .unwrap_or_default()
            .iter()
            .map(|(t, _)| match t {
                Token::Quoted(q) => Ok(String::from_utf8_lossy(q).into_owned()),
                _ => Err(ImapError::bad("CANCELUPDATE takes quoted tags")),
            })
            .collect::<Result<_>>()?;
        if tags.is_empty() {
            return Err(ImapError::bad("CANCELUPDATE needs a tag"));
        }
        return Ok(Prepared::CancelUpdate(tags));
    }
    if let Some(command) = crate::cmd::urlauth::UrlCommand::of(&name) {
        // RFC 4467 §9: each argument an astring (URLs, mechanisms, a mailbox).
        let args: Vec<Vec<u8>> = tokens
            .get(2..)
            .unwrap_or_default()
            .iter()
            .map(|(t, _)| string_value(t).ok_or_else(|| ImapError::bad("Invalid arguments")))
            .collect::<Result<_>>()?;
        return Ok(Prepared::Url { command, args });
    }
    if let Some((command, count)) = AclCommand::of(&name) {
        // RFC 4314 §3: each argument an astring, so many of them.
        let args: Vec<Vec<u8>> = tokens
            .get(2..)
            .unwrap_or_default()
            .iter()
            .map(|(t, _)| match t {
                Token::Atom(a) => Ok(a.to_vec()),
                Token::Quoted(q) => Ok(q.clone()),
                Token::Literal(l) => Ok(l.to_vec()),
                _ => Err(ImapError::bad("Invalid ACL arguments")),
            })
            .collect::<Result<_>>()?;
        if args.len() != count {
            return Err(ImapError::bad(format!(
                "{name} takes {count} argument{}",
                if count == 1 { "" } else { "s" }
            )));
        }
        return Ok(Prepared::Acl { command, args });
    }
    if name == "APPEND"
        && let Some((_, mailbox)) = tokens.get(2)
    {
        // RFC 3502 §6.3.11: append-message = append-opts SP append-data,
        // one or more; each literal at the top level ends one, and so does
        // each CATENATE list (RFC 4469 §5).
        let mut messages = Vec::new();
        let mut from = mailbox.end;
        let mut depth = 0;
        let mut catenate = false;
        let mut wrapped = false;
        let mut i = 3;
        while let Some((t, r)) = tokens.get(i) {
            match t {
                Token::Open => depth += 1,
                Token::Close => depth -= 1,
                Token::Literal(_) if depth == 0 => {
                    messages.push((from..r.start, AppendData::Literal(r.clone())));
                    from = r.end;
                }
                // RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")".
                Token::Atom(a)
                    if depth == 0
                        && a.eq_ignore_ascii_case(b"UTF8")
                        && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Open) =>
                {
                    let (Some((Token::Literal(_), lit)), Some((Token::Close, close))) =
                        (tokens.get(i + 2), tokens.get(i + 3))
                    else {
                        return Err(ImapError::bad("UTF8 needs one literal in parentheses"));
                    };
                    wrapped = true;
                    messages.push((from..r.start, AppendData::Literal(lit.clone())));
                    from = close.end;
                    i += 3;
                }
                Token::Atom(a)
                    if depth == 0
                        && a.eq_ignore_ascii_case(b"CATENATE")
                        && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Open) =>
                {
                    catenate = true;
                    let (parts, close) = catenate_parts(&tokens, i + 2)?;
                    messages.push((from..r.start, AppendData::Catenate(parts)));
                    from = tokens[close].1.end;
                    i = close;
                }
                _ => {}
            }
            i += 1;
        }
        if messages.len() > 1 || catenate || wrapped {
            if !bytes[from..].trim_ascii().is_empty() {
                return Err(ImapError::bad("Junk after the last message"));
            }
            return Ok(Prepared::MultiAppend {
                mailbox: mailbox.clone(),
                messages,
            });
        }
    }
    // RFC 4466 §2.2 create-params, of which RFC 6154 §3 defines USE:
    // "CREATE name (USE (\\Drafts))". The list is taken out; the session
    // acts on the attributes.
    let mut edits: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
    let mut create_use = None;
    if name == "CREATE" && tokens.len() > 3 {
        let bad = || ImapError::bad("CREATE parameters: (USE (attributes))");
        let (Some((Token::Open, _)), Some((Token::Close, close))) = (tokens.get(3), tokens.last())
        else {
            return Err(bad());
        };
        let inner = &tokens[4..tokens.len() - 1];
        let attrs = match inner {
            [
                (Token::Atom(u), _),
                (Token::Open, _),
                attrs @ ..,
                (Token::Close, _),
            ] if u.eq_ignore_ascii_case(b"USE") => attrs
                .iter()
                .map(|(t, _)| match t {
                    Token::Atom(a) if a.starts_with(b"\\") => {
                        Ok(String::from_utf8_lossy(a).into_owned())
                    }
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(bad()),
        };
        create_use = Some(attrs);
        edits.push((tokens[2].1.end..close.end, Vec::new()));
    }
    let is_uid = name == "UID";
    let verb = if is_uid {
        tokens
            .get(2)
            .and_then(|(t, _)| word(t))
            .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
            .unwrap_or_default()
    } else {
        name.clone()
    };
    let mut search_return = None;
    let mut empty_saved = false;
    let mut status = StatusExtras::default();
    let mut fetch = FetchExtras::default();
    let args_from = if is_uid { 3 } else { 2 };

    // RFC 7889 §3, RFC 8474 §4: "STATUS mailbox (… APPENDLIMIT MAILBOXID
    // …)": those items are answered by the session; imap-codec gets the
    // list without them.
    if verb == "STATUS" && !is_uid {
        let open = tokens.iter().position(|(t, _)| *t == Token::Open);
        let close = tokens.iter().rposition(|(t, _)| *t == Token::Close);
        if let (Some(open), Some(close)) = (open, close)
            && open < close
        {
            let inner = tokens[open].1.end..tokens[close].1.start;
            if let Some(items) = list_items(bytes, inner.clone()) {
                let mut kept = Vec::new();
                for r in items {
                    let item = &bytes[r.clone()];
                    if item.eq_ignore_ascii_case(b"APPENDLIMIT") {
                        status.appendlimit = true;
                    } else if item.eq_ignore_ascii_case(b"MAILBOXID") {
                        status.mailboxid = true;
                    } else {
                        kept.push(item);
                    }
                }
                if status.appendlimit || status.mailboxid {
                    status.only = kept.is_empty();
                    edits.push((inner, rejoin(&kept, b"MESSAGES")));
                }
            }
        }
    }

    // RFC 8970 §4, RFC 8474 §5: PREVIEW [(LAZY)], EMAILID and THREADID in a
    // FETCH item list (or alone in place of one).
    if verb == "FETCH"
        && let Some((t, r)) = tokens.get(args_from + 1)
    {
        let is_extra = |a: &[u8]| {
            [&b"PREVIEW"[..], b"EMAILID", b"THREADID", b"SAVEDATE"]
                .iter()
                .any(|x| a.eq_ignore_ascii_case(x))
        };
        // Where the item names are: a list's inside, or one of these alone
        // with PREVIEW's "(LAZY)" after it (a list that does not start with
        // LAZY is FETCH's own modifiers).
        let stretch = match t {
            Token::Open => {
                let mut depth = 0;
                tokens[args_from + 1..]
                    .iter()
                    .find(|(t, _)| {
                        match t {
                            Token::Open => depth += 1,
                            Token::Close => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map(|(_, close)| r.end..close.start)
            }
            Token::Atom(a) if is_extra(a) => {
                let mut end = r.end;
                if let (Some((Token::Open, _)), Some((Token::Atom(m), _))) =
                    (tokens.get(args_from + 2), tokens.get(args_from + 3))
                    && m.eq_ignore_ascii_case(b"LAZY")
                {
                    end = tokens[args_from + 2..]
                        .iter()
                        .find(|(t, _)| *t == Token::Close)
                        .ok_or_else(|| ImapError::bad("Unclosed PREVIEW modifiers"))?
                        .1
                        .end;
                }
                Some(r.start..end)
            }
            _ => None,
        };
        if let Some(stretch) = stretch
            && let Some(items) = list_items(bytes, stretch.clone())
        {
            let mut kept = Vec::new();
            let mut after_preview = false;
            for r in items {
                let item = &bytes[r.clone()];
                if after_preview && item.starts_with(b"(") {
                    check_preview_mods(item)?;
                } else if item.eq_ignore_ascii_case(b"PREVIEW") {
                    fetch.preview = true;
                } else if item.eq_ignore_ascii_case(b"EMAILID") {
                    fetch.emailid = true;
                } else if item.eq_ignore_ascii_case(b"THREADID") {
                    fetch.threadid = true;
                } else if item.eq_ignore_ascii_case(b"SAVEDATE") {
                    fetch.savedate = true;
                } else {
                    kept.push(item);
                }
                after_preview = item.eq_ignore_ascii_case(b"PREVIEW");
            }
            if fetch != FetchExtras::default() {
                // UID stands in when nothing else is left (FetchExtras::only).
                fetch.only = kept.is_empty();
                edits.push((stretch, rejoin(&kept, b"UID")));
            }
        }
    }

    // RFC 8514 §4.2: SAVEDBEFORE / SAVEDON / SAVEDSINCE date and
    // SAVEDATESUPPORTED, which imap-codec does not know, become keys it
    // does: HEADER with a field name no message can have (a colon cannot be
    // in one, RFC 5322 §3.6.8), answered by the search (cmd/search.rs
    // SAVED_PREFIX), and ALL (every mailbox here keeps save dates).
    if matches!(verb.as_str(), "SEARCH" | "SORT" | "THREAD" | "ESEARCH") {
        // Keys whose next argument is a string, which is never a key.
        const TAKES_STRING: [&[u8]; 10] = [
            b"BCC",
            b"BODY",
            b"CC",
            b"FROM",
            b"KEYWORD",
            b"SUBJECT",
            b"TEXT",
            b"TO",
            b"UNKEYWORD",
            b"CHARSET",
        ];
        let word_at = |i: usize| match tokens.get(i) {
            Some((Token::Atom(a), _)) => Some(*a),
            _ => None,
        };
        for i in args_from..tokens.len() {
            let Some(a) = word_at(i) else { continue };
            // The key as imap-codec's, and whether a date follows it.
            let (with, dated): (&[u8], bool) = if a.eq_ignore_ascii_case(b"SAVEDBEFORE") {
                (b"HEADER SAVED:BEFORE", true)
            } else if a.eq_ignore_ascii_case(b"SAVEDON") {
                (b"HEADER SAVED:ON", true)
            } else if a.eq_ignore_ascii_case(b"SAVEDSINCE") {
                (b"HEADER SAVED:SINCE", true)
            } else if a.eq_ignore_ascii_case(b"SAVEDATESUPPORTED") {
                (b"ALL", false)
            } else {
                continue;
            };
            let after = |back: usize, k: &[u8]| {
                i.checked_sub(back)
                    .and_then(word_at)
                    .is_some_and(|p| p.eq_ignore_ascii_case(k))
            };
            if TAKES_STRING.iter().any(|k| after(1, k))
                || after(1, b"HEADER")
                || after(2, b"HEADER")
            {
                continue; // a string that reads like the key
            }
            // date = date-text / DQUOTE date-text DQUOTE (RFC 9051 §9).
            let date = match tokens.get(i + 1) {
                Some((Token::Atom(d), _)) => Some(*d),
                Some((Token::Quoted(d), _)) => Some(d.as_slice()),
                _ => None,
            };
            if dated && date.and_then(search_date).is_none() {
                return Err(ImapError::bad(format!(
                    "{} needs a date",
                    String::from_utf8_lossy(a).to_ascii_uppercase()
                )));
            }
            edits.push((tokens[i].1.clone(), with.to_vec()));
        }
    }

    // RFC 9394 §3.3: "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 PARTIAL -1:-10)":
    // the PARTIAL modifier and its range are taken out of the modifier
    // list (the list too, if nothing is left in it).
    if verb == "FETCH" {
        // Past the sequence set and the items (a list, or one item with
        // PREVIEW's "(LAZY)" perhaps after it): the modifier list.
        let mut i = args_from + 1;
        let skip_group = |from: usize| -> usize {
            let mut depth = 0;
            let mut j = from;
            while let Some((t, _)) = tokens.get(j) {
                match t {
                    Token::Open => depth += 1,
                    Token::Close => depth -= 1,
                    _ => {}
                }
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            j
        };
        i = skip_group(i);
        if let (Some((Token::Open, _)), Some((Token::Atom(m), _))) =
            (tokens.get(i), tokens.get(i + 1))
            && m.eq_ignore_ascii_case(b"LAZY")
        {
            i = skip_group(i);
        }
        if let Some((Token::Open, open)) = tokens.get(i) {
            let end = skip_group(i);
            let inner = &tokens[i + 1..end.saturating_sub(1).max(i + 1)];
            if let Some(k) = inner.iter().position(
                |(t, _)| matches!(t, Token::Atom(a) if a.eq_ignore_ascii_case(b"PARTIAL")),
            ) {
                let Some((Token::Atom(range), range_at)) = inner.get(k + 1) else {
                    return Err(ImapError::bad("PARTIAL needs a range"));
                };
                fetch.partial = Some(partial_range(range)?);
                let alone = inner.len() == 2;
                let close = &tokens[end - 1].1;
                let cut = if alone {
                    // The whole list, with the space before it.
                    let from = if open.start > 0 && bytes[open.start - 1] == b' ' {
                        open.start - 1
                    } else {
                        open.start
                    };
                    from..close.end
                } else if k == 0 {
                    inner[0].1.start..inner[2].1.start
                } else {
                    inner[k - 1].1.end..range_at.end
                };
                edits.push((cut, Vec::new()));
            }
        }
    }

    // ESEARCH: "SEARCH RETURN (...)".
    // ESORT (RFC 5267 §3): "SORT RETURN (...)" likewise.
    if (verb == "SEARCH" || verb == "SORT")
        && let Some((Token::Atom(w), r)) = tokens.get(args_from)
        && w.eq_ignore_ascii_case(b"RETURN")
    {
        let mut opts = SearchReturn::default();
        let mut j = args_from + 1;
        if tokens.get(j).map(|t| &t.0) != Some(&Token::Open) {
            return Err(ImapError::bad("RETURN needs a list of options"));
        }
        j += 1;
        let mut any = false;
        loop {
            match tokens.get(j) {
                Some((Token::Close, close)) => {
                    // With the space after it, so that one space is left.
                    let end = if bytes.get(close.end) == Some(&b' ') {
                        close.end + 1
                    } else {
                        close.end
                    };
                    edits.push((r.start..end, Vec::new()));
                    break;
                }
                Some((Token::Atom(o), _)) => {
                    any = true;
                    match o.to_ascii_uppercase().as_slice() {
                        b"MIN" => opts.min = true,
                        b"MAX" => opts.max = true,
                        b"ALL" => opts.all = true,
                        b"COUNT" => opts.count = true,
                        // RFC 5182 defines SAVE for SEARCH only.
                        b"SAVE" if verb == "SEARCH" => opts.save = true,
                        // CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4).
                        b"UPDATE" => opts.update = true,
                        b"PARTIAL" => {
                            j += 1;
                            let Some((Token::Atom(range), _)) = tokens.get(j) else {
                                return Err(ImapError::bad("PARTIAL needs a range"));
                            };
                            opts.partial = Some(partial_range(range)?);
                        }
                        _ => return Err(ImapError::bad("Unknown SEARCH RETURN option")),
                    }
                }
                _ => return Err(ImapError::bad("Invalid SEARCH RETURN options")),
            }
            j += 1;
        }
        // RFC 4731 §3.1: "RETURN ()" means ALL; so does UPDATE alone (the
        // initial result is then the whole of it, RFC 5267 §4.3).
        if !any || (opts.update && !opts.min && !opts.max && !opts.count && opts.partial.is_none())
        {
            opts.all = true;
        }
        if opts.update && opts.partial.is_some() {
            // RFC 5267 §4.4: a partial result cannot be kept live here.
            return Err(ImapError::bad("UPDATE with PARTIAL is not supported"));
        }
        search_return = Some(opts);
    }

    // SEARCHRES: "$" in a set position.
    let set_commands = [
        "FETCH", "STORE", "COPY", "MOVE", "SEARCH", "SORT", "THREAD", "EXPUNGE",
    ];
    if set_commands.contains(&verb.as_str()) {
        for (k, (t, r)) in tokens.iter().enumerate().skip(args_from) {
            if *t != Token::Atom(b"$") {
                continue;
            }
            let Some(saved) = saved else {
                return Err(ImapError::bad("No saved search result ($)"));
            };
            // A UID set after the UID search key, or the set of a UID command
            // other than SEARCH/SORT/THREAD; a sequence set otherwise.
            let prev_is_uid_key = k > 0
                && matches!(&tokens[k - 1].0, Token::Atom(w) if w.eq_ignore_ascii_case(b"UID"));
            let searchish = matches!(verb.as_str(), "SEARCH" | "SORT" | "THREAD");
            let as_uids = prev_is_uid_key || (is_uid && !searchish);
            let set = if as_uids {
                saved.uids.to_vec()
            } else {
                saved
                    .uids
                    .iter()
                    .filter_map(|u| saved.view.binary_search(u).ok().map(|i| i as u32 + 1))
                    .collect()
            };
            if set.is_empty() {
                empty_saved = true;
                edits.push((r.clone(), b"4294967295".to_vec()));
            } else {
                edits.push((r.clone(), format_set(&set).into_bytes()));
            }
        }
    }

    // RFC 9051 §9 (QUOTED-CHAR): a quoted string may hold UTF-8, which
    // imap-codec's quoted rule refuses; the same string as a literal it takes.
    for (t, r) in &tokens {
        if let Some(lit) = utf8_as_literal(t) {
            edits.push((r.clone(), lit));
        }
    }

    if edits.is_empty() {
        return Ok(Prepared::Command {
            bytes: Cow::Borrowed(bytes),
            search_return,
            empty_saved,
            status,
            fetch,
            create_use,
        });
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut pos = 0;
    for (r, with) in edits {
        if r.start < pos {
            // Two rewrites of one stretch (say `$` inside a FETCH item list
            // that is rebuilt): no valid command needs both.
            return Err(ImapError::bad("Invalid command arguments"));
        }
        out.extend_from_slice(&bytes[pos..r.start]);
        out.extend_from_slice(&with);
        pos = r.end;
    }
    out.extend_from_slice(&bytes[pos..]);
    Ok(Prepared::Command {
        bytes: Cow::Owned(out),
        search_return,
        empty_saved,
        status,
        fetch,
        create_use,
    })
}

/// A PARTIAL range (RFC 5267 §4.4 `partial-range`, RFC 9394 §3.1 with
/// negative positions counting from the end): two non-zero numbers of one
/// sign, put in order ("4:2" is "2:4", "-1:-5" is "-5:-1").
fn partial_range(range: &[u8]) -> Result<(i64, i64)> {
    let bad = || ImapError::bad("Invalid PARTIAL range");
    let text = std::str::from_utf8(range).map_err(|_| bad())?;
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let num = |t: &str| -> Result<i64> {
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t),
        };
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        if n == 0 || n > i64::from(u32::MAX) {
            return Err(bad());
        }
        Ok(if neg { -n } else { n })
    };
    let (a, b) = (num(a)?, num(b)?);
    if (a < 0) != (b < 0) {
        return Err(bad());
    }
    Ok((a.min(b), a.max(b)))
}

/// PREVIEW's modifier list, "(LAZY)": only LAZY is defined (RFC 8970 §4).
fn check_preview_mods(list: &[u8]) -> Result<()> {
    let inner = list
        .strip_prefix(b"(")
        .and_then(|l| l.strip_suffix(b")"))
        .unwrap_or_default();
    let mods: Vec<&[u8]> = inner
        .split(|&b| b == b' ')
        .filter(|m| !m.is_empty())
        .collect();
    if mods.is_empty() {
        return Err(ImapError::bad("Empty PREVIEW modifiers"));
    }
    if !mods.iter().all(|m| m.eq_ignore_ascii_case(b"LAZY")) {
        return Err(ImapError::bad("Unknown PREVIEW modifier"));
    }
    Ok(())
}

/// The items of a parenthesized list's inside, split at the spaces outside
/// any nested parentheses, brackets or quoted string; None if it holds a
/// literal (left to imap-codec as it is).
fn list_items(bytes: &[u8], inner: std::ops::Range<usize>) -> Option<Vec<std::ops::Range<usize>>> {
    let mut items = Vec::new();
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    let mut start = None;
    for i in inner.clone() {
        let b = bytes[i];
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'{' => return None,
            b'"' => quoted = true,
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b' ' if depth == 0 => {
                if let Some(s) = start.take() {
                    items.push(s..i);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        items.push(s..inner.end);
    }
    (depth == 0 && !quoted).then_some(items)
}

/// Kept list items joined by single spaces, or `instead` if none is left.
fn rejoin(kept: &[&[u8]], instead: &[u8]) -> Vec<u8> {
    if kept.is_empty() {
        return instead.to_vec();
    }
    kept.join(&b' ')
}

/// Writes numbers as an IMAP sequence set ("1:3,7,9:10"): each ascending
/// run of neighbours becomes a range, and their order is kept, so a sorted
/// list stays sorted and a list in sort order keeps that order (RFC 5267
/// §3.1).
pub fn format_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Parses LIST / LSUB (RFC 9051 §6.3.9, RFC 5258 §3, RFC 5819).
fn parse_list(bytes: &[u8], lsub: bool) -> Result<ListCommand> {
    let tokens = tokenize(bytes)?;
    let bad = || ImapError::bad("Invalid LIST arguments");
    let mut cmd = ListCommand {
        lsub,
        ..ListCommand::default()
    };
    let mut i = 2; // after tag and command
    // Selection options.
    if !lsub && tokens.get(i).map(|t| &t.0) == Some(&Token::Open) {
        cmd.extended = true;
        i += 1;
        loop {
            match tokens.get(i).map(|t| &t.0) {
                Some(Token::Close) => break,
                Some(Token::Atom(o)) => match o.to_ascii_uppercase().as_slice() {
                    b"SUBSCRIBED" => cmd.select_subscribed = true,
                    b"RECURSIVEMATCH" => cmd.recursive_match = true,
                    b"SPECIAL-USE" => cmd.select_special_use = true,
                    b"REMOTE" => {}
                    _ => return Err(ImapError::bad("Unknown LIST selection option")),
                },
                _ => return Err(bad()),
            }
            i += 1;
        }
        i += 1;
        // RFC 5258 §3: RECURSIVEMATCH alone is an error.
        if cmd.recursive_match && !cmd.select_subscribed && !cmd.select_special_use {
            return Err(ImapError::bad(
                "RECURSIVEMATCH needs another selection option",
            ));
        }
    }
    cmd.reference = tokens
        .get(i)
        .and_then(|t| string_value(&t.0))
        .ok_or_else(bad)?;
    i += 1;
    match tokens.get(i).map(|t| &t.0) {
        Some(Token::Open) if !lsub => {
            cmd.extended = true;
            i += 1;
            loop {
                match tokens.get(i).map(|t| &t.0) {
                    Some(Token::Close) => break,
                    Some(t) => cmd.patterns.push(string_value(t).ok_or_else(bad)?),
                    None => return Err(bad()),
                }
                i += 1;
            }
            i += 1;
        }
        Some(t) => {
            cmd.patterns.push(string_value(t).ok_or_else(bad)?);
            i += 1;
        }
        None => return Err(bad()),
    }
    // Return options.
    if let Some((Token::Atom(w), _)) = tokens.get(i) {
        if lsub || !w.eq_ignore_ascii_case(b"RETURN") {
            return Err(bad());
        }
        cmd.extended = true;
        i += 1;
        if tokens.get(i).map(|t| &t.0) != Some(&Token::Open) {
            return Err(bad());
        }
        i += 1;
        loop {
            match tokens.get(i).map(|t| &t.0) {
                Some(Token::Close) => break,
                Some(Token::Atom(o)) => match o.to_ascii_uppercase().as_slice() {
                    b"SUBSCRIBED" => cmd.return_subscribed = true,
                    b"CHILDREN" => cmd.return_children = true,
                    b"SPECIAL-USE" => cmd.return_special_use = true,
                    b"STATUS" => {
                        i += 1;
                        if tokens.get(i).map(|t| &t.0) != Some(&Token::Open) {
                            return Err(bad());
                        }
                        let mut items = Vec::new();
                        loop {
                            i += 1;
                            match tokens.get(i).map(|t| &t.0) {
                                Some(Token::Close) => break,
                                Some(Token::Atom(a)) => {
                                    items.push(String::from_utf8_lossy(a).to_ascii_uppercase())
                                }
                                _ => return Err(bad()),
                            }
                        }
                        cmd.return_status = Some(items);
                    }
                    _ => return Err(ImapError::bad("Unknown LIST return option")),
                },
                _ => return Err(bad()),
            }
            i += 1;
        }
        i += 1;
    }
    if i < tokens.len() {
        return Err(bad());
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(
            literal_at_end(b"a LOGIN {5}\r\n").map(|l| (l.len, l.non_sync, l.marker_len)),
            Some((5, false, 5))
        );
        assert_eq!(
            literal_at_end(b"a APPEND x {10+}\r\n").map(|l| (l.len, l.non_sync)),
            Some((10, true))
        );
        assert!(literal_at_end(b"a APPEND x ~{3}\r\n").unwrap().binary);
        assert_eq!(literal_at_end(b"a NOOP\r\n"), None);
        assert_eq!(literal_at_end(b"a X {}\r\n"), None);
    }

    #[test]
    fn tags_and_names() {
        assert_eq!(tag_of(b"a1 NOOP\r\n"), Some("a1"));
        assert_eq!(tag_of(b"+ NOOP\r\n"), None);
        assert_eq!(command_name(b"a1 uid fetch 1 flags\r\n"), "uid");
    }

    #[test]
    fn search_return_is_taken_out() {
        let p = prepare(b"t SEARCH RETURN (MIN COUNT) UNSEEN\r\n", None).unwrap();
        let Prepared::Command {
            bytes,
            search_return,
            ..
        } = p
        else {
            panic!()
        };
        assert_eq!(&*bytes, b"t SEARCH UNSEEN\r\n");
        let r = search_return.unwrap();
        assert!(r.min && r.count && !r.all);
        let p = prepare(b"t UID SEARCH RETURN () ALL\r\n", None).unwrap();
        let Prepared::Command {
            bytes,
            search_return,
            ..
        } = p
        else {
            panic!()
        };
        assert_eq!(&*bytes, b"t UID SEARCH ALL\r\n");
        assert!(search_return.unwrap().all);
    }

    #[test]
    fn status_extras_are_taken_out() {
        let also = StatusExtras {
            appendlimit: true,
            ..StatusExtras::default()
        };
        let cases: [(&[u8], &[u8], StatusExtras); 6] = [
            (
                b"t STATUS INBOX (MESSAGES APPENDLIMIT UIDNEXT)\r\n",
                b"t STATUS INBOX (MESSAGES UIDNEXT)\r\n",
                also,
            ),
            (
                b"t STATUS INBOX (UIDNEXT appendlimit)\r\n",
                b"t STATUS INBOX (UIDNEXT)\r\n",
                also,
            ),
            (
                b"t STATUS INBOX (APPENDLIMIT)\r\n",
                b"t STATUS INBOX (MESSAGES)\r\n",
                StatusExtras { only: true, ..also },
            ),
            (
                b"t STATUS INBOX (MAILBOXID APPENDLIMIT)\r\n",
                b"t STATUS INBOX (MESSAGES)\r\n",
                StatusExtras {
                    mailboxid: true,
                    only: true,
                    ..also
                },
            ),
            (
                b"t STATUS INBOX (MAILBOXID UNSEEN)\r\n",
                b"t STATUS INBOX (UNSEEN)\r\n",
                StatusExtras {
                    mailboxid: true,
                    ..StatusExtras::default()
                },
            ),
            (
                b"t STATUS INBOX (MESSAGES)\r\n",
                b"t STATUS INBOX (MESSAGES)\r\n",
                StatusExtras::default(),
            ),
        ];
        for (given, want, kind) in cases {
            let Prepared::Command { bytes, status, .. } = prepare(given, None).unwrap() else {
                panic!()
            };
            assert_eq!(&*bytes, want, "{}", String::from_utf8_lossy(given));
            assert_eq!(status, kind);
            decode(&bytes).unwrap();
        }
    }

    #[test]
    fn search_dates_are_date_text() {
        let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(search_date(b"1-Feb-2020"), d(2020, 2, 1));
        assert_eq!(search_date(b"01-feb-2020"), d(2020, 2, 1));
        for bad in [
            &b"1-Feb-20"[..],
            b" 1-Feb-2020",
            b"31-Feb-2020",
            b"1-Fooo-2020",
            b"",
        ] {
            assert_eq!(search_date(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn fetch_extras_are_taken_out() {
        let fx = |preview, emailid, threadid, only| FetchExtras {
            preview,
            emailid,
            threadid,
            only,
            savedate: false,
            partial: None,
        };
        let cases: [(&[u8], &[u8], FetchExtras); 7] = [
            (
                b"t FETCH 1:* (FLAGS PREVIEW)\r\n",
                b"t FETCH 1:* (FLAGS)\r\n",
                fx(true, false, false, false),
            ),
            (
                b"t UID FETCH 1 (PREVIEW (LAZY) UID EMAILID)\r\n",
                b"t UID FETCH 1 (UID)\r\n",
                fx(true, true, false, false),
            ),
            (
                b"t FETCH 1 PREVIEW\r\n",
                b"t FETCH 1 UID\r\n",
                fx(true, false, false, true),
            ),
            (
                b"t FETCH 1 preview (lazy)\r\n",
                b"t FETCH 1 UID\r\n",
                fx(true, false, false, true),
            ),
            (
                b"t FETCH 2 (EMAILID THREADID)\r\n",
                b"t FETCH 2 (UID)\r\n",
                fx(false, true, true, true),
            ),
            (
                b"t FETCH 1 (BODY.PEEK[HEADER.FIELDS (PREVIEW)] THREADID) (CHANGEDSINCE 3)\r\n",
                b"t FETCH 1 (BODY.PEEK[HEADER.FIELDS (PREVIEW)]) (CHANGEDSINCE 3)\r\n",
                fx(false, false, true, false),
            ),
            (
                b"t FETCH 1 (FLAGS)\r\n",
                b"t FETCH 1 (FLAGS)\r\n",
                FetchExtras::default(),
            ),
        ];
        for (given, want, kind) in cases {
            let Prepared::Command { bytes, fetch, .. } = prepare(given, None).unwrap() else {
                panic!()
            };
            assert_eq!(&*bytes, want, "{}", String::from_utf8_lossy(given));
            assert_eq!(fetch, kind, "{}", String::from_utf8_lossy(given));
            decode(&bytes).unwrap();
        }
        let Prepared::Command { bytes, fetch, .. } =
            prepare(b"t UID FETCH 1:* (FLAGS SAVEDATE)\r\n", None).unwrap()
        else {
            panic!()
        };
        assert_eq!(&*bytes, b"t UID FETCH 1:* (FLAGS)\r\n");
        assert!(fetch.savedate && !fetch.only);
        assert!(prepare(b"t FETCH 1 (PREVIEW (EAGER))\r\n", None).is_err());
        assert!(prepare(b"t FETCH 1 (PREVIEW ())\r\n", None).is_err());
    }

    #[test]
    fn utf8_quoted_becomes_a_literal() {
        let p = prepare("t CREATE \"Straße\"\r\n".as_bytes(), None).unwrap();
        let Prepared::Command { bytes, .. } = p else {
            panic!()
        };
        assert_eq!(&*bytes, "t CREATE {7}\r\nStraße\r\n".as_bytes());
        // A literal's content is left alone (no space squeezing).
        let p = prepare(b"t SEARCH RETURN (COUNT) BODY {4}\r\na  b\r\n", None).unwrap();
        let Prepared::Command { bytes, .. } = p else {
            panic!()
        };
        assert_eq!(&*bytes, b"t SEARCH BODY {4}\r\na  b\r\n");
    }

    #[test]
    fn dollar_is_replaced() {
        let view = [3, 5, 7, 9];
        let saved = Saved {
            uids: &[5, 7],
            view: &view,
        };
        let p = prepare(b"t FETCH $ FLAGS\r\n", Some(saved)).unwrap();
        let Prepared::Command { bytes, .. } = p else {
            panic!()
        };
        assert_eq!(&*bytes, b"t FETCH 2:3 FLAGS\r\n");
        let p = prepare(b"t UID FETCH $ FLAGS\r\n", Some(saved)).unwrap();
        let Prepared::Command { bytes, .. } = p else {
            panic!()
        };
        assert_eq!(&*bytes, b"t UID FETCH 5,7 FLAGS\r\n");
        let p = prepare(b"t SEARCH UID $ \"$\"\r\n", Some(saved)).unwrap();
        let Prepared::Command { bytes, .. } = p else {
            panic!()
        };
        assert_eq!(&*bytes, b"t SEARCH UID 5,7 \"$\"\r\n");
        let empty = Saved {
            uids: &[],
            view: &view,
        };
        let p = prepare(b"t FETCH $ FLAGS\r\n", Some(empty)).unwrap();
        assert!(matches!(
            p,
            Prepared::Command {
                empty_saved: true,
                ..
            }
        ));
    }

    #[test]
    fn list_forms() {
        let Prepared::List(l) = prepare(b"t LIST \"\" *\r\n", None).unwrap() else {
            panic!()
        };
        assert_eq!(l.patterns, vec![b"*".to_vec()]);
        assert!(!l.extended);
        let Prepared::List(l) =
            prepare(b"t LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a\" b%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n", None).unwrap()
        else {
            panic!()
        };
        assert!(l.extended && l.select_subscribed && l.recursive_match && l.return_children);
        assert_eq!(l.patterns, vec![b"a".to_vec(), b"b%".to_vec()]);
        assert_eq!(
            l.return_status,
            Some(vec!["MESSAGES".into(), "UNSEEN".into()])
        );
        let Prepared::List(l) = prepare(b"t LSUB \"\" {1}\r\n*\r\n", None).unwrap() else {
            panic!()
        };
        assert!(l.lsub);
        assert_eq!(l.patterns, vec![b"*".to_vec()]);
        assert!(prepare(b"t LIST (RECURSIVEMATCH) \"\" *\r\n", None).is_err());
    }

    #[test]
    fn sets() {
        assert_eq!(format_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(format_set(&[4]), "4");
        // In any other order the order is kept (ESORT ALL, RFC 5267 §3.1).
        assert_eq!(format_set(&[5, 6, 7, 2, 9, 8, 1]), "5:7,2,9,8,1");
        assert_eq!(format_set(&[3]), "3");
        assert_eq!(format_set(&[]), "");
    }
}

#[cfg(test)]
mod short_commands {
    /// Found by fuzzing (fuzz/seeds/imap_command/found-acl-short): a
    /// command name the tokenizer sees inside a quoted string leaves fewer
    /// tokens than the name's position; the reply is BAD, not a panic.
    #[test]
    fn acl_and_cancelupdate_with_too_few_tokens_are_bad() {
        for cmd in [
            &b"A1 \" *\r\n GETACL INBOZ\r\nE\"\" *\r\n"[..],
            b"A1 \"x CANCELUPDATE\"\r\n",
            b"A1 \"x MYRIGHTS\"\r\n",
            // Found too: `$` inside a FETCH list that is rebuilt.
            b"A7 FETCH 1:* (PREVIEW SRE(LALISTSZY)$ E)\r\n",
        ] {
            let saved = super::Saved {
                uids: &[1, 2],
                view: &[1, 2, 3],
            };
            let _ = super::prepare(cmd, None);
            let _ = super::prepare(cmd, Some(saved));
        }
    }
}
