//! Reading mbox files one message at a time (RFC 4155, and the mboxrd and
//! mboxo quoting conventions), from any byte offset a previous run stopped
//! at.
//!
//! Where a message starts: a line beginning `From ` (the From_ line) that
//! is the first of the file or follows an empty line, and whose date parses
//! (`From sender Www Mmm dd hh:mm:ss yyyy`, as `asctime` writes it). The
//! date is required so that a body line beginning `From ` that no writer
//! quoted (mboxo files often have them) does not split a message. The
//! empty line before a From_ line belongs to the mbox, not to the message
//! (RFC 4155 §2), and is dropped, as is the one at the end of the file.
//!
//! What is changed on the way: quoted From_ lines are unquoted (mboxrd:
//! `>From `, `>>From `, … lose one `>`; mboxo: only `>From ` does), lines
//! end in CRLF as RFC 5322 §2.1 requires (mbox files use LF), and the
//! header fields mail stores keep their state in (`Status`, `X-Status`,
//! `X-Keywords`, `X-Mozilla-Status`, `X-Mozilla-Status2`, `X-Mozilla-Keys`,
//! `X-UID`, `X-IMAP`, `X-IMAPbase`) become flags and keywords and are
//! removed, as Dovecot and Thunderbird hide them.
use postgate_types::Flags;
use std::io::BufRead;

/// How From_ lines in bodies were quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Every `>*From ` line was quoted with one more `>`: unquoting is exact.
    Mboxrd,
    /// Only `From ` lines were quoted: `>From ` loses its `>`.
    Mboxo,
}

/// One message read from the file.
#[derive(Debug)]
pub struct Message {
    /// Byte offset just after it (the next From_ line, or the end).
    pub end: u64,
    /// Its RFC 5322 bytes.
    pub raw: Vec<u8>,
    /// Flags from its status fields.
    pub flags: Flags,
    /// Keywords from its keyword fields.
    pub keywords: Vec<String>,
    /// The From_ line's date, Unix seconds (UTC unless the line gives a zone).
    pub date: Option<i64>,
}

/// Reads messages one at a time; never holds more than one.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
    format: Format,
    /// Offset of the next byte to read.
    pos: u64,
    /// The From_ line that starts the next message.
    next_from: Option<Vec<u8>>,
}

impl<R: BufRead> Reader<R> {
    /// A reader whose input starts at byte `offset` of the file, which must
    /// be the start of a From_ line (the file's start, or where a previous
    /// run's last committed message ended). Empty input has no messages.
    pub fn new(mut input: R, offset: u64, format: Format) -> std::io::Result<Reader<R>> {
        let mut line = Vec::new();
        let n = input.read_until(b'\n', &mut line)?;
        let next_from = match n {
            0 => None,
            _ if line.starts_with(b"From ") => Some(line),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("no From_ line at byte {offset}: not an mbox, or not where it was"),
                ));
            }
        };
        Ok(Reader {
            input,
            format,
            pos: offset + n as u64,
            next_from,
        })
    }

    /// The next message, or `None` at the end.
    pub fn next_message(&mut self) -> std::io::Result<Option<Message>> {
        let Some(from_line) = self.next_from.take() else {
            return Ok(None);
        };
        let mut head: Vec<Vec<u8>> = Vec::new();
        let mut in_head = true;
        let mut body: Vec<u8> = Vec::new();
        // Whether the last line added was empty, and how many bytes it added.
        let mut last_empty: Option<usize> = None;
        let mut prev_empty = false;
        let mut line = Vec::new();
        let end = loop {
            line.clear();
            let at = self.pos;
            let n = self.input.read_until(b'\n', &mut line)?;
            if n == 0 {
                break at;
            }
            self.pos += n as u64;
            if prev_empty && is_from_line(&line) {
                self.next_from = Some(std::mem::take(&mut line));
                break at;
            }
            let empty = line == b"\n" || line == b"\r\n";
            prev_empty = empty;
            unquote(&mut line, self.format);
            if in_head {
                if empty {
                    in_head = false;
                    last_empty = Some(2);
                    body.extend_from_slice(b"\r\n");
                } else {
                    head.push(line.clone());
                }
                continue;
            }
            let before = body.len();
            push_crlf(&mut body, &line);
            last_empty = empty.then(|| body.len() - before);
        };
        // The empty line before the next From_ line (or closing the file)
        // is the mbox's.
        if let Some(n) = last_empty {
            body.truncate(body.len() - n);
        }
        let (raw_head, flags, keywords) = status_fields(&head);
        let mut raw = raw_head;
        raw.extend_from_slice(&body);
        Ok(Some(Message {
            end,
            raw,
            flags,
            keywords,
            date: from_line_date(&from_line),
        }))
    }
}

/// Appends a line with its ending made CRLF (a last line without one stays
/// without).
fn push_crlf(out: &mut Vec<u8>, line: &[u8]) {
    match line.strip_suffix(b"\n") {
        Some(text) => {
            out.extend_from_slice(text.strip_suffix(b"\r").unwrap_or(text));
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(line),
    }
}

/// Removes one level of From_ quoting.
fn unquote(line: &mut Vec<u8>, format: Format) {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    let quoted = quotes > 0
        && line[quotes..].starts_with(b"From ")
        && (format == Format::Mboxrd || quotes == 1);
    if quoted {
        line.remove(0);
    }
}

/// Whether a line (after an empty one) starts a message.
fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ") && from_line_date(line).is_some()
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The date of a From_ line: `From sender Www Mmm dd hh:mm[:ss] [zone] yyyy
/// [zone]` (RFC 4155 §2: asctime, UTC unless a numeric zone is given).
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().skip(1).collect();
    let m = words.iter().position(|w| {
        w.len() >= 3
            && w.is_char_boundary(3)
            && MONTHS.contains(&w[..3].to_ascii_lowercase().as_str())
    })?;
    let month = MONTHS
        .iter()
        .position(|n| words[m][..3].eq_ignore_ascii_case(n))? as u32
        + 1;
    let day: u32 = words.get(m + 1)?.parse().ok()?;
    let mut time = words.get(m + 2)?.split(':');
    let hour: u32 = time.next()?.parse().ok()?;
    let minute: u32 = time.next()?.parse().ok()?;
    let second: u32 = time.next().map_or(Some(0), |s| s.parse().ok())?;
    let mut year = None;
    let mut offset = 0i64;
    for w in words.iter().skip(m + 3).take(3) {
        if w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()) {
            year = w.parse::<i32>().ok();
        } else if let Some(sign) = w.strip_prefix(['+', '-'])
            && sign.len() == 4
            && sign.bytes().all(|b| b.is_ascii_digit())
        {
            let v: i64 = sign.parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            offset = if w.starts_with('-') { -secs } else { secs };
        }
    }
    let date = chrono::NaiveDate::from_ymd_opt(year?, month, day)?;
    let t = date.and_hms_opt(hour, minute, second)?;
    Some(t.and_utc().timestamp() - offset)
}

/// The header fields (unfolded into whole fields), the status ones taken
/// out: (header bytes in CRLF, flags, keywords).
fn status_fields(lines: &[Vec<u8>]) -> (Vec<u8>, Flags, Vec<String>) {
    let mut fields: Vec<Vec<&[u8]>> = Vec::new();
    for l in lines {
        match (l.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(f)) => f.push(l),
            _ => fields.push(vec![l]),
        }
    }
    let mut out = Vec::new();
    let mut flags = Flags::default();
    let mut keywords = Vec::new();
    for f in fields {
        let first = String::from_utf8_lossy(f[0]);
        let (name, _) = first.split_once(':').unwrap_or((&first, ""));
        let name = name.trim().to_ascii_lowercase();
        let value = || {
            let joined: Vec<u8> = f.concat();
            let text = String::from_utf8_lossy(&joined).into_owned();
            text.split_once(':')
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        match name.as_str() {
            "status" => {
                if value().contains('R') {
                    flags = flags.with(Flags::SEEN);
                }
            }
            "x-status" => {
                for c in value().chars() {
                    flags = flags.with(match c {
                        'A' => Flags::ANSWERED,
                        'F' => Flags::FLAGGED,
                        'T' => Flags::DRAFT,
                        'D' => Flags::DELETED,
                        _ => Flags::default(),
                    });
                }
            }
            "x-mozilla-status" => {
                let bits = u32::from_str_radix(value().trim(), 16).unwrap_or(0);
                for (bit, flag) in [
                    (0x1, Flags::SEEN),
                    (0x2, Flags::ANSWERED),
                    (0x4, Flags::FLAGGED),
                    (0x8, Flags::DELETED),
                ] {
                    if bits & bit != 0 {
                        flags = flags.with(flag);
                    }
                }
            }
            "x-keywords" | "x-mozilla-keys" => keywords.extend(
                value()
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
            ),
            "x-mozilla-status2" | "x-uid" | "x-imap" | "x-imapbase" => {}
            _ => {
                for l in f {
                    push_crlf(&mut out, l);
                }
            }
        }
    }
    (out, flags, keywords)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], format: Format) -> Vec<Message> {
        let mut r = Reader::new(text, 0, format).unwrap();
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn from_line_dates() {
        // RFC 4155 §2: asctime, UTC.
        assert_eq!(
            from_line_date(b"From MAILER-DAEMON Thu Jan  1 00:00:10 1970\n"),
            Some(10)
        );
        assert_eq!(
            from_line_date(b"From - Sat Jan 03 01:05:34 1996\n"),
            Some(820631134)
        );
        assert_eq!(
            from_line_date(b"From a@b Sat Jan  3 02:05:34 1996 +0100\n"),
            Some(820631134)
        );
        assert_eq!(from_line_date(b"From here on we talk.\n"), None);
        assert_eq!(from_line_date(b"From a@b Feb 30 00:00:00 2001\n"), None);
    }

    #[test]
    fn messages_split_unquoted_flagged() {
        let text = b"From a@b Thu Jan  1 00:00:10 1970\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, Work\nSubject: one\n\n>From quoted\n>>From twice\nFrom here on, in the body.\n\nFrom the body too, after an empty line\n\nFrom c@d Thu Jan  1 00:00:20 1970\nSubject: two\n\nlast line without newline";
        let m = read_all(text, Format::Mboxrd);
        assert_eq!(m.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&m[0].raw),
            "Subject: one\r\n\r\nFrom quoted\r\n>From twice\r\nFrom here on, in the body.\r\n\r\nFrom the body too, after an empty line\r\n"
        );
        assert_eq!(
            m[0].flags,
            Flags::SEEN.with(Flags::ANSWERED).with(Flags::FLAGGED)
        );
        assert_eq!(m[0].keywords, vec!["$Label1", "Work"]);
        assert_eq!((m[0].date, m[1].date), (Some(10), Some(20)));
        assert_eq!(m[1].end, text.len() as u64);
        assert_eq!(
            String::from_utf8_lossy(&m[1].raw),
            "Subject: two\r\n\r\nlast line without newline"
        );
        let o = read_all(text, Format::Mboxo);
        assert!(String::from_utf8_lossy(&o[0].raw).contains("\r\n>>From twice\r\n"));
    }

    #[test]
    fn resumes_at_an_offset_and_refuses_elsewhere() {
        let text = b"From a@b Thu Jan  1 00:00:10 1970\nSubject: one\n\nx\n\nFrom c@d Thu Jan  1 00:00:20 1970\nSubject: two\n\ny\n";
        let all = read_all(text, Format::Mboxrd);
        let at = all[0].end as usize;
        let mut r = Reader::new(&text[at..], at as u64, Format::Mboxrd).unwrap();
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(m.raw, all[1].raw);
        assert_eq!(m.end, all[1].end);
        assert!(r.next_message().unwrap().is_none());
        assert!(Reader::new(&text[3..], 3, Format::Mboxrd).is_err());
    }

    #[test]
    fn folded_status_fields_and_mozilla_ones() {
        let text = b"From a@b Thu Jan  1 00:00:10 1970\nX-Mozilla-Status: 0005\nX-Mozilla-Keys: $label1\n  todo\nSubject: s\n  folded\n\nb\n";
        let m = read_all(text, Format::Mboxrd);
        assert_eq!(m[0].flags, Flags::SEEN.with(Flags::FLAGGED));
        assert_eq!(m[0].keywords, vec!["$label1", "todo"]);
        assert_eq!(m[0].raw, b"Subject: s\r\n  folded\r\n\r\nb\r\n");
    }
}
