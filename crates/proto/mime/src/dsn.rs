//! Delivery status notifications (RFC 3464, in the multipart/report of RFC
//! 6522), as the gateway sends them for RFC 3461 NOTIFY.
use std::fmt::Write;

/// RFC 3464 §2.3.3 Action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Could not be delivered.
    Failed,
    /// Not delivered yet; still trying.
    Delayed,
    /// Delivered into the recipient's mailbox.
    Delivered,
    /// Handed to a next hop that does not report DSNs.
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient's report (RFC 3464 §2.3).
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The recipient address (Final-Recipient, `rfc822;` type).
    pub address: String,
    /// The ORCPT parameter as given, if any (Original-Recipient).
    pub original: Option<String>,
    /// What happened.
    pub action: Action,
    /// Enhanced status code, e.g. `5.1.1` (RFC 3463).
    pub status: String,
    /// The host that answered, if any (Remote-MTA).
    pub remote_mta: Option<String>,
    /// Its reply, e.g. `550 5.1.1 User unknown` (Diagnostic-Code, `smtp;` type).
    pub diagnostic: Option<String>,
    /// Unix seconds of the last attempt.
    pub last_attempt: Option<i64>,
    /// Unix seconds until which delivery continues (for Delayed).
    pub will_retry_until: Option<i64>,
}

/// A DSN to build.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Our host name (Reporting-MTA, and the From: domain).
    pub reporting_mta: &'a str,
    /// Who gets the report: the original envelope sender.
    pub to: &'a str,
    /// RFC 3461 ENVID, echoed as Original-Envelope-Id.
    pub env_id: Option<&'a str>,
    /// When the original arrived.
    pub arrival: i64,
    /// The recipients reported on.
    pub recipients: Vec<Recipient>,
    /// The original message.
    pub original: &'a [u8],
    /// RFC 3461 RET=FULL: return the whole original; else only its header.
    pub return_full: bool,
}

fn rfc2822(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc2822())
        .unwrap_or_default()
}

fn header_of(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        let end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..end];
        if line == b"\r\n" || line == b"\n" {
            return &raw[..end];
        }
        i = end;
    }
    raw
}

/// Builds the DSN message (RFC 6522 multipart/report; RFC 3464 fields).
///
/// ```
/// use postgate_mime::dsn::{build, Action, Recipient, Report};
/// let raw = build(&Report {
///     reporting_mta: "mx.example.org",
///     to: "ann@example.org",
///     env_id: Some("QQ314159"),
///     arrival: 1_800_000_000,
///     recipients: vec![Recipient {
///         address: "bob@example.net".into(), original: None, action: Action::Failed,
///         status: "5.1.1".into(), remote_mta: Some("mx.example.net".into()),
///         diagnostic: Some("550 5.1.1 unknown".into()), last_attempt: Some(1_800_000_060),
///         will_retry_until: None,
///     }],
///     original: b"Subject: hi\r\n\r\nbody\r\n",
///     return_full: false,
/// }, 7);
/// let text = String::from_utf8(raw).unwrap();
/// assert!(text.contains("report-type=delivery-status"));
/// assert!(text.contains("Final-Recipient: rfc822; bob@example.net"));
/// assert!(text.contains("Status: 5.1.1"));
/// assert!(!text.contains("body"), "RET=HDRS returns the header only");
/// ```
pub fn build(r: &Report<'_>, unique: u64) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp();
    let boundary = format!("{unique:x}.{now:x}/{}", r.reporting_mta);
    let worst = r
        .recipients
        .iter()
        .map(|x| x.action)
        .fold(Action::Delivered, |a, b| match (a, b) {
            (Action::Failed, _) | (_, Action::Failed) => Action::Failed,
            (Action::Delayed, _) | (_, Action::Delayed) => Action::Delayed,
            (Action::Relayed, _) | (_, Action::Relayed) => Action::Relayed,
            _ => Action::Delivered,
        });
    let subject = match worst {
        Action::Failed => "Undelivered Mail Returned to Sender",
        Action::Delayed => "Delayed Mail (still being retried)",
        Action::Delivered | Action::Relayed => "Successful Mail Delivery Report",
    };
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{unique:x}.{now:x}.dsn@{mta}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated delivery status notification.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n",
        mta = r.reporting_mta,
        to = r.to,
        date = rfc2822(now),
    );
    let _ = write!(m, "This is the mail system at {}.\r\n\r\n", r.reporting_mta);
    for x in &r.recipients {
        let what = match x.action {
            Action::Failed => "could not be delivered",
            Action::Delayed => "has not been delivered yet; delivery continues",
            Action::Delivered => "was delivered",
            Action::Relayed => "was relayed to a system that does not report delivery",
        };
        let _ = write!(m, "Your message to <{}> {what}.\r\n", x.address);
        if let Some(d) = &x.diagnostic {
            let host = x.remote_mta.as_deref().unwrap_or("the remote system");
            let _ = write!(m, "  {host} said: {d}\r\n");
        }
    }
    // RFC 3464 §2.2: per-message fields.
    let _ = write!(
        m,
        "\r\n--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {}\r\n",
        r.reporting_mta
    );
    if let Some(e) = r.env_id {
        let _ = write!(m, "Original-Envelope-Id: {e}\r\n");
    }
    let _ = write!(m, "Arrival-Date: {}\r\n", rfc2822(r.arrival));
    // RFC 3464 §2.3: per-recipient fields, each group after a blank line.
    for x in &r.recipients {
        let _ = write!(m, "\r\nFinal-Recipient: rfc822; {}\r\n", x.address);
        if let Some(o) = &x.original {
            // ORCPT is "addr-type;xtext-address": keep its type.
            let o = if o.contains(';') {
                o.replacen(';', "; ", 1)
            } else {
                format!("rfc822; {o}")
            };
            // RFC 3464 §2.3.1: address-type ";" address; SMTP gives the
            // address decoded, without its type (RFC 3461 §4.2: rfc822).
            if o.contains(';') {
                let _ = write!(m, "Original-Recipient: {o}\r\n");
            } else {
                let _ = write!(m, "Original-Recipient: rfc822;{o}\r\n");
            }
        }
        let _ = write!(
            m,
            "Action: {}\r\nStatus: {}\r\n",
            x.action.as_str(),
            x.status
        );
        if let Some(h) = &x.remote_mta {
            let _ = write!(m, "Remote-MTA: dns; {h}\r\n");
        }
        if let Some(d) = &x.diagnostic {
            let _ = write!(m, "Diagnostic-Code: smtp; {d}\r\n");
        }
        if let Some(t) = x.last_attempt {
            let _ = write!(m, "Last-Attempt-Date: {}\r\n", rfc2822(t));
        }
        if let Some(t) = x.will_retry_until {
            let _ = write!(m, "Will-Retry-Until: {}\r\n", rfc2822(t));
        }
    }
    let mut out = m.into_bytes();
    // RFC 3462 §2: the original, whole (message/rfc822) or its header
    // (text/rfc822-headers), as RET asked.
    if r.return_full {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(r.original);
    } else {
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(header_of(r.original));
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}
