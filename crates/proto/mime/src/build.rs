//! Item → MIME: the RFC 5322 form of a message composed in the post office
//! (client API, calendar), built with mail-builder.
//!
//! Headers are RFC 2047-encoded where they are not ASCII and bodies quoted-
//! printable or base64 as needed, so the result is 7-bit clean and fits any
//! next hop; text and HTML together make a multipart/alternative (RFC 2046
//! §5.1.4); attachments are base64 with RFC 2231 file names; lines stay
//! within RFC 5322 §2.1.1's 998 octets.
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use postgate_types::Importance;

/// An attachment to build in.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name (any Unicode).
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A message as the post office composes it.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Author: (display name, address).
    pub from: (String, String),
    /// Primary recipients.
    pub to: Vec<(String, String)>,
    /// Carbon copies.
    pub cc: Vec<(String, String)>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<NewAttachment>,
    /// Importance.
    pub importance: Importance,
    /// Message-ID without brackets.
    pub message_id: String,
    /// Date, Unix seconds.
    pub date: i64,
}

fn addr(a: &(String, String)) -> Address<'_> {
    if a.0.is_empty() {
        Address::new_address(None::<&str>, a.1.as_str())
    } else {
        Address::new_address(Some(a.0.as_str()), a.1.as_str())
    }
}

fn list(v: &[(String, String)]) -> Address<'_> {
    Address::new_list(v.iter().map(addr).collect())
}

/// Builds the RFC 5322 message. Bcc recipients are not written (RFC 5322
/// §3.6.3: the message sent to others must not reveal them).
///
/// ```
/// use postgate_mime::build::{build_message, NewMessage};
/// let raw = build_message(&NewMessage {
///     from: ("Ann".into(), "ann@example.org".into()),
///     to: vec![("".into(), "bob@example.net".into())],
///     subject: "Grüße".into(),
///     text: Some("Hallo".into()),
///     message_id: "1@example.org".into(),
///     date: 1_800_000_000,
///     ..NewMessage::default()
/// });
/// let text = String::from_utf8(raw.clone()).unwrap();
/// assert!(text.is_ascii());
/// assert!(text.contains("Subject: =?utf-8?"));
/// assert_eq!(postgate_mime::parse_message(&raw).content.subject.as_deref(), Some("Grüße"));
/// ```
pub fn build_message(m: &NewMessage) -> Vec<u8> {
    let mut b = MessageBuilder::new()
        .from(addr(&m.from))
        .subject(m.subject.as_str())
        .message_id(msg_id(&m.message_id).into_owned())
        .date(m.date);
    if !m.to.is_empty() {
        b = b.to(list(&m.to));
    }
    if !m.cc.is_empty() {
        b = b.cc(list(&m.cc));
    }
    // RFC 2156 Importance, and the X-Priority Outlook and others read.
    match m.importance {
        Importance::High => {
            b = b
                .header("Importance", Raw::new("high"))
                .header("X-Priority", Raw::new("1"))
        }
        Importance::Low => {
            b = b
                .header("Importance", Raw::new("low"))
                .header("X-Priority", Raw::new("5"))
        }
        Importance::Normal => {}
    }
    if let Some(t) = &m.text {
        b = b.text_body(t.as_str());
    }
    if let Some(h) = &m.html {
        b = b.html_body(h.as_str());
    }
    if m.text.is_none() && m.html.is_none() {
        b = b.text_body("");
    }
    for a in &m.attachments {
        b = b.attachment(
            mime_type(&a.content_type),
            a.filename.as_str(),
            a.data.as_slice(),
        );
    }
    b.write_to_vec().unwrap_or_default()
}

/// A Message-ID as given when it can stand between `<` and `>` as RFC 5322
/// §3.6.4 writes one (printable US-ASCII, no angle brackets), else with each
/// other byte (and `%`) written `%XX`: the header stays 7-bit, and distinct
/// IDs stay distinct. A msg-id cannot be folded, so one too long for the
/// 998-octet line (RFC 5322 §2.1.1) is replaced by a digest of it.
fn msg_id(id: &str) -> std::borrow::Cow<'_, str> {
    /// "Message-ID: <" and ">" leave room to spare within 998.
    const LONGEST: usize = 900;
    let fine = |b: u8| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'%');
    let written: std::borrow::Cow<'_, str> = if id.bytes().all(fine) {
        id.into()
    } else {
        let mut out = String::with_capacity(id.len() * 3);
        for b in id.bytes() {
            if fine(b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out.into()
    };
    if written.len() <= LONGEST {
        return written;
    }
    use std::hash::{Hash, Hasher};
    let digest = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}@long-id.invalid", digest(1), digest(2)).into()
}

/// `content_type` when it is a MIME type as RFC 2045 §5.1 writes one
/// (`type "/" subtype *(";" parameter)`, US-ASCII, no controls), else
/// `application/octet-stream` (RFC 2046 §4.5.1): whatever a caller or a
/// message from outside names, the header written stays 7-bit and one line.
fn mime_type(content_type: &str) -> &str {
    // RFC 2045 §5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>.
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let valid = kind
        .trim()
        .split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s))
        && params
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic());
    if valid {
        content_type
    } else {
        "application/octet-stream"
    }
}

/// A message carrying an iCalendar object: an iMIP message (RFC 6047) when
/// it has a METHOD, else the MIME form of an appointment or task as the
/// Calendar folder shows it over IMAP.
#[derive(Debug, Clone, Default)]
pub struct CalendarMessage {
    /// Author: (display name, address).
    pub from: (String, String),
    /// Recipients.
    pub to: Vec<(String, String)>,
    /// Subject.
    pub subject: String,
    /// The readable summary, plain text.
    pub text: String,
    /// The readable summary, HTML (none: text only).
    pub html: Option<String>,
    /// The iTIP METHOD (RFC 6047 §2.4: also the Content-Type's `method`).
    pub method: Option<String>,
    /// The iCalendar text.
    pub ical: String,
    /// Also attach the object as `invite.ics`, as Outlook and Google do, for
    /// clients that only look at attachments.
    pub attach: bool,
    /// Message-ID without brackets.
    pub message_id: String,
    /// Date, Unix seconds.
    pub date: i64,
}

/// Builds a [`CalendarMessage`]: multipart/alternative of the summary
/// (text, HTML) and the text/calendar part (RFC 6047 §2.4: one iCalendar
/// object, its METHOD in the Content-Type), wrapped with the .ics
/// attachment in a multipart/mixed when `attach` is set.
///
/// ```
/// use postgate_mime::build::{build_calendar_message, CalendarMessage};
/// let raw = build_calendar_message(&CalendarMessage {
///     from: ("Ann".into(), "ann@example.org".into()),
///     to: vec![("".into(), "bob@example.net".into())],
///     subject: "Invitation: Plan".into(),
///     text: "Plan, Monday 9:00".into(),
///     method: Some("REQUEST".into()),
///     ical: "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n".into(),
///     attach: true,
///     message_id: "1@example.org".into(),
///     date: 1_800_000_000,
///     ..CalendarMessage::default()
/// });
/// let m = postgate_mime::parse_message(&raw);
/// assert_eq!(m.calendars.len(), 2);
/// assert_eq!(m.calendars[0].method.as_deref(), Some("REQUEST"));
/// assert!(m.calendars[1].attached);
/// assert_eq!(m.calendars[1].text, m.calendars[0].text);
/// ```
pub fn build_calendar_message(m: &CalendarMessage) -> Vec<u8> {
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::mime::MimePart;
    let mut b = MessageBuilder::new()
        .from(addr(&m.from))
        .subject(m.subject.as_str())
        .message_id(msg_id(&m.message_id).into_owned())
        .date(m.date);
    if !m.to.is_empty() {
        b = b.to(list(&m.to));
    }
    let mut calendar = ContentType::new("text/calendar").attribute("charset", "utf-8");
    if let Some(method) = &m.method {
        calendar = calendar.attribute("method", method.as_str());
    }
    let mut alternative = vec![MimePart::new("text/plain", m.text.as_str())];
    if let Some(h) = &m.html {
        alternative.push(MimePart::new("text/html", h.as_str()));
    }
    alternative.push(MimePart::new(calendar, m.ical.as_str()));
    let alternative = MimePart::new("multipart/alternative", alternative);
    let body = if m.attach {
        let ics = MimePart::new(
            ContentType::new("application/ics").attribute("name", "invite.ics"),
            m.ical.as_bytes(),
        )
        .attachment("invite.ics");
        MimePart::new("multipart/mixed", vec![alternative, ics])
    } else {
        alternative
    };
    b.body(body).write_to_vec().unwrap_or_default()
}
