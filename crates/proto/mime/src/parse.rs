//! MIME → item.
use crate::utf7;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};
use postgate_types::{Attachment, Contact, Importance, ItemBody, ItemContent};

/// The parser: the fields an item needs are parsed; every other field (Received
/// among them, a visible share of delivery time when parsed) is kept raw.
static PARSER: std::sync::LazyLock<MessageParser> = std::sync::LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
});

/// What parsing a message yields: the item content, plus the top-level header
/// fields for rules that look at headers (such as Junk filing).
#[derive(Debug, Clone, Default)]
pub struct ParsedMessage {
    /// The decoded content.
    pub content: ItemContent,
    /// Top-level header fields in order: name as written, unfolded raw value, trimmed.
    pub headers: Vec<(String, String)>,
    /// The calendar parts (text/calendar, application/ics), decoded, in
    /// order; none from a report (see [`ParsedMessage::report`]) or from
    /// inside an attached message.
    pub calendars: Vec<CalendarPart>,
    /// The message is a report (multipart/report, RFC 6522: a DSN, an MDN):
    /// what it quotes is not addressed to the recipient.
    pub report: bool,
}

/// One calendar part of a message (RFC 6047 §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPart {
    /// The iCalendar text, decoded (transfer encoding and charset).
    pub text: String,
    /// The Content-Type's `method` parameter (RFC 6047 §2.4), if given.
    pub method: Option<String>,
    /// Sent as an attachment (an .ics file) rather than as a body part.
    pub attached: bool,
}

impl ParsedMessage {
    /// Values of every top-level field named `name` (case-insensitive, RFC 5322 §1.2.2).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Converts RFC 5322/MIME bytes into an item. Never fails: what cannot be
/// decoded is left empty.
///
/// ```
/// let raw = b"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\n\
///             Subject: =?UTF-8?B?SGVsbG8g8J+Riw==?=\r\n\
///             Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n";
/// let m = postgate_mime::parse_message(raw);
/// assert_eq!(m.content.subject.as_deref(), Some("Hello 👋"));
/// assert_eq!(m.content.from.unwrap().name.as_deref(), Some("André"));
/// assert_eq!(m.content.text.as_deref().map(str::trim), Some("Привет"));
/// ```
pub fn parse_message(raw: &[u8]) -> ParsedMessage {
    // mail-parser can panic on hostile input (a debug assertion on nested
    // message/rfc822 parts, tests/fuzzed.rs; index panics on broken
    // attached messages, stalwartlabs/mail-parser#120). A message that trips
    // it is converted from its header alone (no bodies, attachments or
    // calendar parts) instead of taking its SMTP session or IMAP APPEND
    // down with it.
    std::panic::catch_unwind(|| parse_with(raw, false))
        .or_else(|_| std::panic::catch_unwind(|| parse_with(raw, true)))
        .unwrap_or_default()
}

/// [`parse_message`], of the whole message or of its header only.
fn parse_with(raw: &[u8], header_only: bool) -> ParsedMessage {
    let parsed = if header_only {
        PARSER.parse_headers(raw)
    } else {
        PARSER.parse(raw)
    };
    let Some(message) = parsed else {
        return ParsedMessage::default();
    };

    let headers = message
        .headers_raw()
        .map(|(n, v)| (n.to_string(), unfold(v)))
        .collect::<Vec<_>>();

    let first = |a: Option<&Address<'_>>| a.and_then(|a| contacts(a).into_iter().next());
    let list = |a: Option<&Address<'_>>| a.map(contacts).unwrap_or_default();

    // Text: every text part the reader would see, in order (RFC 2046 §5.1.3
    // multipart/mixed shows each in turn); html: the first real HTML part
    // (not a conversion of a text part).
    let text = (0..message.text_body_count())
        .filter(|&i| {
            message
                .text_part(i as u32)
                .is_some_and(|p| matches!(p.body, PartType::Text(_)))
        })
        .filter_map(|i| part_text(&message, i))
        .reduce(|a, b| a + "\n" + &b)
        .or_else(|| message.body_text(0).map(|t| t.into_owned()));
    let html = (0..message.html_body_count())
        .find(|&i| {
            message
                .html_part(i as u32)
                .is_some_and(|p| matches!(p.body, PartType::Html(_)))
        })
        .and_then(|i| message.body_html(i))
        .map(|h| h.into_owned());

    let attachments = message
        .attachments
        .iter()
        .filter_map(|&id| message.parts.get(id as usize).map(|p| (id, p)))
        .map(|(id, part)| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| match part.body {
                    PartType::Message(_) => "message/rfc822".into(),
                    PartType::Text(_) => "text/plain".into(),
                    PartType::Html(_) => "text/html".into(),
                    _ => "application/octet-stream".into(),
                })
                .to_ascii_lowercase();
            let name = utf7_file_name(&message, part)
                .or_else(|| part.attachment_name().map(str::to_string))
                .or_else(|| {
                    // A forwarded message without a file name: name it by its subject.
                    part.message()
                        .and_then(|m| m.subject())
                        .map(|s| format!("{s}.eml"))
                });
            let inline = matches!(part.body, PartType::InlineBinary(_))
                || part
                    .content_disposition()
                    .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
            Attachment {
                name,
                content_type,
                size: part.len() as u64,
                part: id,
                inline,
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_string()),
            }
        })
        .collect();

    let mut from = first(message.from());
    let mut subject = message.subject().map(str::to_string);
    // mail-parser's UTF-7 decoding is broken (see `utf7`): redo those words.
    if let Some(raw) = message.header_raw("Subject")
        && raw.to_ascii_lowercase().contains("=?utf-7?")
    {
        subject = Some(utf7::decode_words(raw));
    }
    if let Some(raw) = message.header_raw("From")
        && raw.to_ascii_lowercase().contains("=?utf-7?")
        && let Some(f) = from.as_mut()
    {
        let phrase = raw.split('<').next().unwrap_or("").trim().trim_matches('"');
        f.name = Some(utf7::decode_words(phrase)).filter(|n| !n.is_empty());
    }

    let content = ItemContent {
        body: ItemBody::Mail,
        from,
        sender: first(message.sender()),
        to: list(message.to()),
        cc: list(message.cc()),
        bcc: list(message.bcc()),
        reply_to: list(message.reply_to()),
        subject,
        date: message.date().map(|d| d.to_timestamp()),
        message_id: message.message_id().map(str::to_string),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        text,
        html,
        attachments,
        importance: importance(&headers),
    };
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let calendars = if report {
        Vec::new()
    } else {
        calendar_parts(&message)
    };
    ParsedMessage {
        content,
        headers,
        calendars,
        report,
    }
}

/// At most this many calendar parts are taken from one message.
const MAX_CALENDAR_PARTS: usize = 8;

/// The text/calendar and application/ics parts of a message, not those of
/// messages it carries as attachments (their parts are not in `parts`).
fn calendar_parts(message: &Message<'_>) -> Vec<CalendarPart> {
    let mut out = Vec::new();
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let (t, sub) = (ct.ctype(), ct.subtype().unwrap_or(""));
        let is_calendar = (t.eq_ignore_ascii_case("text") && sub.eq_ignore_ascii_case("calendar"))
            || (t.eq_ignore_ascii_case("application") && sub.eq_ignore_ascii_case("ics"))
            || (t.eq_ignore_ascii_case("application")
                && sub.eq_ignore_ascii_case("octet-stream")
                && part
                    .attachment_name()
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".ics")));
        if !is_calendar {
            continue;
        }
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                // iCalendar's charset is UTF-8 (RFC 5545 §3.1.4).
                String::from_utf8_lossy(b).into_owned()
            }
            _ => continue,
        };
        let attached = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        out.push(CalendarPart {
            text,
            method: ct
                .attribute("method")
                .map(|m| m.trim().to_ascii_uppercase()),
            attached,
        });
        if out.len() >= MAX_CALENDAR_PARTS {
            break;
        }
    }
    out
}

/// The decoded text of text part number `i`; UTF-7 parts are decoded here.
fn part_text(message: &Message<'_>, i: usize) -> Option<String> {
    let part = message.text_part(i as u32)?;
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .unwrap_or("");
    if !utf7::is_utf7(charset) {
        return message.body_text(i).map(|t| t.into_owned());
    }
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        Encoding::Base64 => base64_decode(raw)?,
        Encoding::QuotedPrintable => quoted_printable_decode(raw)?,
        Encoding::None => raw.to_vec(),
    };
    Some(
        utf7::decode(&bytes)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    )
}

/// A file name given in UTF-7 (RFC 2231 `filename*=utf-7''…` or an RFC 2047
/// word), decoded here; `None` for every other charset.
fn utf7_file_name(message: &Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    for h in &part.headers {
        let name = h.name.as_str();
        if !name.eq_ignore_ascii_case("Content-Disposition")
            && !name.eq_ignore_ascii_case("Content-Type")
        {
            continue;
        }
        let raw = message
            .raw_message
            .get(h.offset_start as usize..h.offset_end as usize)?;
        let raw = String::from_utf8_lossy(raw);
        for param in raw.split(';').map(str::trim) {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"');
            let lower = value.to_ascii_lowercase();
            if (key == "filename*" || key == "name*") && lower.starts_with("utf-7'") {
                return utf7::decode_rfc2231(value);
            }
            if (key == "filename" || key == "name") && lower.contains("=?utf-7?") {
                return Some(utf7::decode_words(value));
            }
        }
    }
    None
}

/// The calendar day of a message's Date field in the field's own time zone
/// (IMAP SENTON/SENTBEFORE/SENTSINCE compare dates "disregarding time and
/// timezone", RFC 9051 §6.4.4): (year, month, day).
pub fn sent_day(raw: &[u8]) -> Option<(i32, u32, u32)> {
    // Guarded as parse_message is.
    std::panic::catch_unwind(|| {
        let msg = MessageParser::new()
            .with_date_headers()
            .parse_headers(raw)?;
        let d = msg.date()?;
        Some((d.year as i32, d.month as u32, d.day as u32))
    })
    .ok()
    .flatten()
}

fn contacts(a: &Address<'_>) -> Vec<Contact> {
    a.iter()
        .map(|addr| Contact {
            name: addr
                .name()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            address: addr.address().map(str::to_string),
        })
        .collect()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Importance from `Importance:` (RFC 2156 §5.3), else `X-Priority:` (1–2 high,
/// 4–5 low, the de-facto Outlook scale), else `Priority:` (RFC 2156: urgent / non-urgent).
fn importance(headers: &[(String, String)]) -> Importance {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if let Some(v) = get("Importance") {
        match v.as_str() {
            "high" => return Importance::High,
            "low" => return Importance::Low,
            _ => {}
        }
    }
    if let Some(v) = get("X-Priority") {
        match v.chars().next() {
            Some('1' | '2') => return Importance::High,
            Some('4' | '5') => return Importance::Low,
            _ => {}
        }
    }
    if let Some(v) = get("Priority") {
        match v.as_str() {
            "urgent" => return Importance::High,
            "non-urgent" => return Importance::Low,
            _ => {}
        }
    }
    Importance::Normal
}

/// RFC 5322 §2.2.3: unfolding removes the CRLF before each folded whitespace.
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, line) in v.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 && line.is_empty() {
            continue;
        }
        out.push_str(line);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_still_parses() {
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"garbage without headers",
            b"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nunterminated",
            b"Subject: =?UTF-8?B?!!!?=\r\n\r\nbody",
            b"From: <<<@@@>>>\r\nDate: yesterday\r\n\r\n",
        ] {
            let m = parse_message(raw);
            assert_eq!(m.content.kind(), postgate_types::ItemKind::Mail);
        }
    }

    #[test]
    fn importance_headers() {
        let m = parse_message(b"X-Priority: 1 (Highest)\r\n\r\nx");
        assert_eq!(m.content.importance, Importance::High);
        let m = parse_message(b"Importance: low\r\n\r\nx");
        assert_eq!(m.content.importance, Importance::Low);
        let m = parse_message(b"Subject: x\r\n\r\nx");
        assert_eq!(m.content.importance, Importance::Normal);
    }

    #[test]
    fn multipart_alternative_with_attachment() {
        let raw = b"From: a@b\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n\
--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n\
--i\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html text</p>\r\n--i--\r\n\
--o\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--o--\r\n";
        let m = parse_message(raw);
        let c = m.content;
        assert_eq!(c.text.as_deref().map(str::trim), Some("plain text"));
        assert!(c.html.unwrap().contains("<p>html text</p>"));
        assert_eq!(c.attachments.len(), 1);
        assert_eq!(c.attachments[0].name.as_deref(), Some("résumé.pdf"));
        assert_eq!(c.attachments[0].content_type, "application/pdf");
        assert_eq!(c.attachments[0].size, 5);
    }

    #[test]
    fn calendar_parts_inline_and_attached_but_not_from_reports() {
        let ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";
        let raw = format!(
            "From: a@b\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n\
--i\r\nContent-Type: text/plain\r\n\r\nInvitation\r\n\
--i\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n{ics}\r\n--i--\r\n\
--o\r\nContent-Type: application/ics; name=invite.ics\r\n\
Content-Disposition: attachment; filename=invite.ics\r\n\
Content-Transfer-Encoding: base64\r\n\r\nQkVHSU46VkNBTEVOREFSDQpFTkQ6VkNBTEVOREFSDQo=\r\n--o--\r\n"
        );
        let m = parse_message(raw.as_bytes());
        assert!(!m.report);
        assert_eq!(m.calendars.len(), 2);
        assert_eq!(m.calendars[0].method.as_deref(), Some("REQUEST"));
        assert!(m.calendars[0].text.starts_with("BEGIN:VCALENDAR"));
        assert!(!m.calendars[0].attached);
        assert!(m.calendars[1].attached);
        assert_eq!(m.calendars[1].text, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");
        let bounce = format!(
            "From: MAILER-DAEMON@b\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--r\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{ics}\r\n--r--\r\n"
        );
        let m = parse_message(bounce.as_bytes());
        assert!(m.report);
        assert!(m.calendars.is_empty());
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let m = parse_message(b"x-spam-flag:  YES\r\n\r\nx");
        assert_eq!(m.header_values("X-Spam-Flag").collect::<Vec<_>>(), ["YES"]);
    }
}
