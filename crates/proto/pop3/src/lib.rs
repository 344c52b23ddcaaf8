//! POP3's wire format: commands (RFC 1939 §5-7, CAPA and STLS of RFC 2449 and
//! RFC 2595, AUTH of RFC 5034) and multi-line replies.
//!
//! What it is for: turning a command line into a [`Command`], and writing a
//! message as a dot-stuffed multi-line reply ([`write_multiline`], [`top`]).
//! What it is not for: sessions, mailboxes, I/O (see `postgate-pop3`).
#![deny(missing_docs)]

/// Longest command line accepted, CRLF included (RFC 2449 §4: 255 octets).
pub const MAX_LINE: usize = 255;

/// A POP3 command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// USER name (RFC 1939 §7).
    User(String),
    /// PASS password: the rest of the line, spaces included.
    Pass(String),
    /// AUTH mechanism [initial-response] (RFC 5034 §4); AUTH alone lists mechanisms.
    Auth {
        /// The mechanism, upper-cased; `None` for a bare AUTH.
        mechanism: Option<String>,
        /// The initial response (base64), if given.
        initial: Option<String>,
    },
    /// STLS (RFC 2595 §4).
    Stls,
    /// CAPA (RFC 2449 §5).
    Capa,
    /// STAT.
    Stat,
    /// LIST [msg].
    List(Option<u32>),
    /// RETR msg.
    Retr(u32),
    /// DELE msg.
    Dele(u32),
    /// NOOP.
    Noop,
    /// RSET.
    Rset,
    /// TOP msg n.
    Top(u32, u32),
    /// UIDL [msg].
    Uidl(Option<u32>),
    /// QUIT.
    Quit,
}

impl Command {
    /// The command's keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stls => "STLS",
            Command::Capa => "CAPA",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Quit => "QUIT",
        }
    }
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command this server knows.
    Unknown(String),
    /// A known command with bad arguments; the text says what is expected.
    Syntax(&'static str),
}

fn number(s: Option<&str>) -> Option<u32> {
    let s = s?;
    // RFC 1939 §3: message numbers are decimal; no signs or spaces.
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one command line (with or without its CRLF).
///
/// ```
/// use postgate_pop3_proto::{parse, Command};
/// assert_eq!(parse(b"retr 3\r\n"), Ok(Command::Retr(3)));
/// assert_eq!(parse(b"PASS two words\r\n"), Ok(Command::Pass("two words".into())));
/// assert_eq!(parse(b"TOP 1 10"), Ok(Command::Top(1, 10)));
/// ```
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (text.as_ref(), None),
    };
    let keyword = keyword.to_ascii_uppercase();
    let mut args = rest.unwrap_or("").split(' ').filter(|a| !a.is_empty());
    let arg1 = args.next();
    let arg2 = args.next();
    let extra = args.next().is_some();
    let no_args = |c: Command| {
        if arg1.is_some() {
            Err(ParseError::Syntax("no arguments"))
        } else {
            Ok(c)
        }
    };
    match keyword.as_str() {
        "USER" => match (arg1, arg2) {
            (Some(u), None) => Ok(Command::User(u.to_string())),
            _ => Err(ParseError::Syntax("USER name")),
        },
        "PASS" => match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_string())),
            _ => Err(ParseError::Syntax("PASS password")),
        },
        "AUTH" if !extra => Ok(Command::Auth {
            mechanism: arg1.map(|m| m.to_ascii_uppercase()),
            initial: arg2.map(str::to_string),
        }),
        "AUTH" => Err(ParseError::Syntax("AUTH mechanism [initial-response]")),
        "STLS" => no_args(Command::Stls),
        "CAPA" => no_args(Command::Capa),
        "STAT" => no_args(Command::Stat),
        "NOOP" => no_args(Command::Noop),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "LIST" | "UIDL" if arg2.is_none() => {
            let n = match arg1 {
                None => None,
                Some(_) => Some(number(arg1).ok_or(ParseError::Syntax("a message number"))?),
            };
            Ok(if keyword == "LIST" {
                Command::List(n)
            } else {
                Command::Uidl(n)
            })
        }
        "LIST" | "UIDL" => Err(ParseError::Syntax("[msg]")),
        "RETR" | "DELE" if arg2.is_none() => {
            let n = number(arg1).ok_or(ParseError::Syntax("a message number"))?;
            Ok(if keyword == "RETR" {
                Command::Retr(n)
            } else {
                Command::Dele(n)
            })
        }
        "RETR" | "DELE" => Err(ParseError::Syntax("msg")),
        "TOP" if !extra => match (number(arg1), number(arg2)) {
            (Some(m), Some(n)) => Ok(Command::Top(m, n)),
            _ => Err(ParseError::Syntax("TOP msg n")),
        },
        "TOP" => Err(ParseError::Syntax("TOP msg n")),
        other => Err(ParseError::Unknown(other.chars().take(16).collect())),
    }
}

/// Appends `body` as the data of a multi-line reply: lines starting with "."
/// get another "." (RFC 1939 §3 byte-stuffing), the data ends with CRLF if it
/// did not, and the terminating ".\r\n" follows.
pub fn write_multiline(out: &mut Vec<u8>, body: &[u8]) {
    out.reserve(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    let mut rest = body;
    while !rest.is_empty() {
        if at_line_start && rest[0] == b'.' {
            out.push(b'.');
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.extend_from_slice(&rest[..=i]);
                rest = &rest[i + 1..];
                at_line_start = true;
            }
            None => {
                out.extend_from_slice(rest);
                rest = &[];
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The part TOP returns (RFC 1939 §7): the header, the blank line, and the
/// first `lines` lines of the body.
///
/// ```
/// let m = b"Subject: x\r\n\r\none\r\ntwo\r\nthree\r\n";
/// assert_eq!(postgate_pop3_proto::top(m, 2), b"Subject: x\r\n\r\none\r\ntwo\r\n");
/// assert_eq!(postgate_pop3_proto::top(m, 0), b"Subject: x\r\n\r\n");
/// ```
pub fn top(message: &[u8], lines: u32) -> &[u8] {
    // Find the end of the header: the first empty line.
    let mut i = 0;
    let header_end = loop {
        match message[i..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                let line = &message[i..i + p + 1];
                i += p + 1;
                if line == b"\r\n" || line == b"\n" {
                    break i;
                }
            }
            None => return message,
        }
    };
    let mut end = header_end;
    for _ in 0..lines {
        match message[end..].iter().position(|&b| b == b'\n') {
            Some(p) => end += p + 1,
            None => {
                end = message.len();
                break;
            }
        }
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse(b"USER alice@example.org:sdl=5"),
            Ok(Command::User("alice@example.org:sdl=5".into()))
        );
        assert_eq!(parse(b"user a b"), Err(ParseError::Syntax("USER name")));
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"uidl 7"), Ok(Command::Uidl(Some(7))));
        assert_eq!(
            parse(b"LIST x"),
            Err(ParseError::Syntax("a message number"))
        );
        assert_eq!(
            parse(b"RETR -1"),
            Err(ParseError::Syntax("a message number"))
        );
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse(b"AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial: None
            })
        );
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown("XYZZY".into())));
        assert_eq!(parse(b"QUIT now"), Err(ParseError::Syntax("no arguments")));
    }

    #[test]
    fn stuffing() {
        let mut out = Vec::new();
        write_multiline(&mut out, b".hidden\r\nplain\r\n..two\r\n.\r\nend");
        assert_eq!(out, b"..hidden\r\nplain\r\n...two\r\n..\r\nend\r\n.\r\n");
        out.clear();
        write_multiline(&mut out, b"");
        assert_eq!(out, b".\r\n");
    }

    #[test]
    fn top_without_body() {
        assert_eq!(
            top(b"Subject: only header\r\n", 3),
            b"Subject: only header\r\n"
        );
    }
}
