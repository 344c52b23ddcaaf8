//! MIME → item, as delivery does it with a message from the Internet
//! (`postgate_mime::parse_message`): the item content, the header values
//! the Junk rules and accounting read, the calendar parts handed to the
//! iCalendar parser, and the SEARCH SENT* day. Then item → MIME: the parsed
//! item built back into a message (`build::build_message`, as the client API
//! composes one), a calendar message carrying its first calendar part, and a
//! DSN quoting the input, each parsed again. Nothing may panic; what the
//! builders promise (7-bit output, RFC 5322 §2.1.1 line lengths) must hold.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common/hook.rs"]
mod hook;
use postgate_mime::build::{CalendarMessage, NewAttachment, NewMessage};
use postgate_mime::{build, dsn, parse_message, sent_day};

fuzz_target!(|data: &[u8]| {
    hook::install();
    let parsed = parse_message(data);
    // What delivery reads besides the content.
    let _ = parsed.header_values("Message-ID").count();
    let _ = parsed.header_values("X-Spam-Flag").count();
    let _ = sent_day(data);
    let ctx = postgate_ical::Context::default();
    for cal in parsed.calendars.iter().take(2) {
        let _ = postgate_ical::parse_all(&cal.text, &ctx);
    }
    let c = &parsed.content;
    // Addresses as the client API passes them to `build`: only what
    // EmailAddress::parse accepts (RFC 5321 §4.5.3.1 lengths, no controls);
    // an address cannot fold, so a longer one would break the line limit.
    let contact = |k: &postgate_types::Contact| {
        let address = k
            .address
            .as_deref()
            .and_then(|a| postgate_types::EmailAddress::parse(a).ok())
            .map(|a| a.to_string())
            .unwrap_or_else(|| "someone@test.example".into());
        (k.name.clone().unwrap_or_default(), address)
    };
    let msg = NewMessage {
        from: c.from.as_ref().map(contact).unwrap_or_default(),
        to: c.to.iter().take(8).map(contact).collect(),
        cc: c.cc.iter().take(8).map(contact).collect(),
        subject: c.subject.clone().unwrap_or_default(),
        text: c.text.clone(),
        html: c.html.clone(),
        attachments: c
            .attachments
            .iter()
            .take(4)
            .map(|a| NewAttachment {
                filename: a.name.clone().unwrap_or_default(),
                content_type: a.content_type.clone(),
                data: data.get(..a.size.min(64) as usize).unwrap_or(data).to_vec(),
            })
            .collect(),
        importance: c.importance,
        message_id: c.message_id.clone().unwrap_or_default(),
        date: c.date.unwrap_or(0),
    };
    let built = build::build_message(&msg);
    // RFC 6532 §3.2: an internationalized address is written in UTF-8 (the
    // message then needs SMTPUTF8); everything else stays 7-bit.
    let utf8 = std::iter::once(&msg.from)
        .chain(&msg.to)
        .chain(&msg.cc)
        .any(|(_, a)| !a.is_ascii());
    check_built(&built, utf8);
    let _ = parse_message(&built);
    if let Some(cal) = parsed.calendars.first() {
        let built = build::build_calendar_message(&CalendarMessage {
            from: msg.from.clone(),
            to: msg.to.clone(),
            subject: msg.subject.clone(),
            text: c.text.clone().unwrap_or_default(),
            html: None,
            method: cal.method.clone(),
            ical: cal.text.clone(),
            attach: true,
            message_id: msg.message_id.clone(),
            date: msg.date,
        });
        check_built(&built, utf8);
        let _ = parse_message(&built);
    }
    // A DSN quoting the message (RFC 3464 with RET=HDRS and RET=FULL).
    for return_full in [false, true] {
        let report = dsn::build(
            &dsn::Report {
                reporting_mta: "mx.test.example",
                to: "sender@test.example",
                env_id: None,
                arrival: 0,
                recipients: vec![dsn::Recipient {
                    address: "rcpt@test.example".into(),
                    original: None,
                    action: dsn::Action::Failed,
                    status: "5.1.1".into(),
                    remote_mta: None,
                    diagnostic: None,
                    last_attempt: None,
                    will_retry_until: None,
                }],
                original: data,
                return_full,
            },
            1,
        );
        // RFC 6522 §3: a report never reaches the iMIP path.
        assert!(parse_message(&report).report);
    }
});

/// What `build` promises: 7-bit clean (RFC 2047 headers, QP or base64
/// bodies) unless an address is internationalized (`utf8`), and no line
/// longer than 998 octets (RFC 5322 §2.1.1).
fn check_built(raw: &[u8], utf8: bool) {
    assert!(
        utf8 || raw.is_ascii(),
        "build produced 8-bit output: {:?}",
        String::from_utf8_lossy(raw)
    );
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // RFC 5322 §2.1.1: at most 998 characters, excluding the CRLF.
        assert!(
            line.len() <= 998,
            "build produced a line of {} octets: {:?}",
            line.len(),
            String::from_utf8_lossy(&line[..80])
        );
    }
}
