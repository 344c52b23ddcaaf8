//! What people read: the summary of an appointment or task, its MIME form in
//! the Calendar and Tasks folders, and the iMIP messages sent about it.
use postgate_ical::Method;
use postgate_ical::expand::span;
use postgate_ical::zone::Zone;
use postgate_mime::build::{CalendarMessage, build_calendar_message};
use postgate_store::CalendarWrite;
use postgate_types::calendar::{CalTime, CalendarComponent, CalendarObject, TimeForm};
use postgate_types::{Contact, Flags, ItemBody, ItemContent, ItemKind};

/// A time as people read it: in its own zone, with the zone named.
pub(crate) fn when(t: &CalTime, default: chrono_tz::Tz) -> String {
    if t.is_date() {
        return chrono::NaiveDate::parse_from_str(&t.local, "%Y%m%d")
            .map(|d| d.format("%A, %e %B %Y").to_string().replace("  ", " "))
            .unwrap_or_else(|_| t.local.clone());
    }
    let (zone, name) = match &t.form {
        TimeForm::Utc => (Zone::Utc, "UTC".to_string()),
        TimeForm::Zone(z) => (
            postgate_ical::zone::by_name(z).unwrap_or(Zone::Utc),
            z.clone(),
        ),
        _ => (Zone::Iana(default), default.name().to_string()),
    };
    let local = zone.to_local(t.utc);
    format!("{} ({name})", local.format("%A, %e %B %Y, %H:%M")).replace("  ", " ")
}

fn contact_line(name: Option<&str>, email: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} <{email}>"),
        _ => email.to_string(),
    }
}

/// The plain-text summary: what, when, where, who.
pub(crate) fn summary_text(
    kind: ItemKind,
    c: &CalendarComponent,
    default: chrono_tz::Tz,
    intro: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(i) = intro {
        out.push_str(i);
        out.push_str("\n\n");
    }
    out.push_str(c.summary.as_deref().unwrap_or("(no title)"));
    out.push('\n');
    if let Some(s) = &c.start {
        out.push_str(&format!("When: {}", when(s, default)));
        if let Some(e) = &c.end
            && !(s.is_date() && e.utc - s.utc <= 86400)
        {
            out.push_str(&format!(" – {}", when(e, default)));
        }
        out.push('\n');
    }
    if kind == ItemKind::Task
        && let Some(d) = &c.due
    {
        out.push_str(&format!("Due: {}\n", when(d, default)));
    }
    if let Some(r) = &c.rrule {
        out.push_str(&format!("Repeats: {r}\n"));
    }
    if let Some(l) = &c.location {
        out.push_str(&format!("Where: {l}\n"));
    }
    if let Some(o) = &c.organizer {
        out.push_str(&format!(
            "Organizer: {}\n",
            contact_line(o.name.as_deref(), &o.email)
        ));
    }
    if !c.attendees.is_empty() {
        out.push_str("Attendees:\n");
        for a in c.attendees.iter().take(200) {
            out.push_str(&format!(
                "  {} ({})\n",
                contact_line(a.name.as_deref(), &a.email),
                a.partstat
            ));
        }
        if c.attendees.len() > 200 {
            out.push_str(&format!("  … and {} more\n", c.attendees.len() - 200));
        }
    }
    if let Some(cm) = &c.comment {
        out.push_str(&format!("Comment: {cm}\n"));
    }
    if let Some(d) = &c.description {
        out.push('\n');
        out.push_str(d);
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The summary as HTML (what Outlook and Google put beside the invitation).
pub(crate) fn summary_html(text: &str) -> String {
    let mut out = String::from("<!DOCTYPE html><html><body>");
    for para in text.split("\n\n") {
        let lines: Vec<String> = para.lines().map(escape).collect();
        out.push_str(&format!("<p>{}</p>", lines.join("<br>")));
    }
    out.push_str("</body></html>");
    out
}

/// The MIME form of an appointment or task, as its folder holds it for
/// IMAP: the summary and the text/calendar object (no METHOD: it is an
/// object, not a message; RFC 4791 §4.1).
pub fn render_item(kind: ItemKind, object: CalendarObject, zone: chrono_tz::Tz) -> CalendarWrite {
    let main = object.main().cloned().unwrap_or_default();
    let from = main
        .organizer
        .as_ref()
        .map(|o| (o.name.clone().unwrap_or_default(), o.email.clone()))
        .unwrap_or_else(|| (String::new(), "calendar@localhost".into()));
    let to: Vec<(String, String)> = main
        .attendees
        .iter()
        .take(500)
        .map(|a| (a.name.clone().unwrap_or_default(), a.email.clone()))
        .collect();
    let subject = main.summary.clone().unwrap_or_else(|| "(no title)".into());
    let text = summary_text(kind, &main, zone, None);
    let date = main.dtstamp.unwrap_or(0).max(0);
    let raw = build_calendar_message(&CalendarMessage {
        from: from.clone(),
        to: to.clone(),
        subject: subject.clone(),
        text: text.clone(),
        html: None,
        method: None,
        ical: object.ical.clone(),
        attach: false,
        message_id: format!(
            "{:x}.{}@calendar.invalid",
            fnv(object.uid.as_bytes()),
            object.sequence()
        ),
        date,
    });
    let contact = |(n, a): &(String, String)| Contact {
        name: (!n.is_empty()).then(|| n.clone()),
        address: Some(a.clone()),
    };
    let span = span(&object);
    let body = match kind {
        ItemKind::Task => ItemBody::Task(Box::new(object)),
        _ => ItemBody::Appointment(Box::new(object)),
    };
    CalendarWrite::new(
        ItemContent {
            body,
            from: Some(contact(&from)),
            to: to.iter().map(contact).collect(),
            subject: Some(subject),
            date: Some(date),
            text: Some(text),
            ..ItemContent::default()
        },
        raw,
        span,
        Flags::default(),
    )
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The subject line Outlook and Google use for each method.
pub(crate) fn subject(method: &Method, kind: ItemKind, c: &CalendarComponent, who: &str) -> String {
    let title = c.summary.as_deref().unwrap_or("(no title)");
    let thing = if kind == ItemKind::Task {
        "Task"
    } else {
        "Invitation"
    };
    match method {
        Method::Request => format!("{thing}: {title}"),
        Method::Cancel => format!("Cancelled: {title}"),
        Method::Reply => {
            let answer = c
                .attendees
                .first()
                .map(|a| match a.partstat.as_str() {
                    "ACCEPTED" => "Accepted",
                    "DECLINED" => "Declined",
                    "TENTATIVE" => "Tentative",
                    "DELEGATED" => "Delegated",
                    "COMPLETED" => "Completed",
                    _ => "Reply",
                })
                .unwrap_or("Reply");
            format!("{answer}: {title} ({who})")
        }
        Method::DeclineCounter => format!("New time declined: {title}"),
        Method::Counter => format!("New time proposed: {title}"),
        m => format!("{m}: {title}"),
    }
}

/// An iMIP message (RFC 6047): From the acting user, the summary in text
/// and HTML, the text/calendar part with its METHOD, and the same object as
/// an .ics attachment.
#[allow(clippy::too_many_arguments)]
pub(crate) fn imip(
    method: &Method,
    kind: ItemKind,
    about: &CalendarComponent,
    from: (String, String),
    to: Vec<(String, String)>,
    ical: String,
    zone: chrono_tz::Tz,
    message_id: String,
    intro: Option<&str>,
) -> Vec<u8> {
    let text = summary_text(kind, about, zone, intro);
    let html = summary_html(&text);
    build_calendar_message(&CalendarMessage {
        subject: subject(method, kind, about, from.0.as_str().trim()),
        from,
        to,
        text,
        html: Some(html),
        method: Some(method.as_str().to_string()),
        ical,
        attach: true,
        message_id,
        date: chrono::Utc::now().timestamp(),
    })
}
