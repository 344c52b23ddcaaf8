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
        .message_id(m.message_id.as_str())
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
            a.content_type.as_str(),
            a.filename.as_str(),
            a.data.as_slice(),
        );
    }
    b.write_to_vec().unwrap_or_default()
}
