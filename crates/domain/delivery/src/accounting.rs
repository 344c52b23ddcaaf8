//! Accounting: one JSON line per message that comes in, goes out or bounces,
//! for billing, audits and traffic reports.
//!
//! Who writes: [`Delivery::deliver`](crate::Delivery::deliver) for mail
//! accepted over SMTP, submission and the client API (`"in"`); the outbound
//! agent for each attempt to send a queued message to one destination
//! (`"out"`) and for each failure report it sends (`"bounce"`). The server
//! opens the file once (daily `accounting-YYYY-MM-DD.jsonl`) and hands it to
//! [`Accounting::to`]; with accounting off, [`Accounting::off`] makes every
//! call a no-op and callers skip building records ([`Accounting::is_on`]).
//!
//! A line, with every key always present (`null` when unknown):
//!
//! ```json
//! {"time":"2026-05-01T09:30:00.123Z","direction":"in","queue_id":null,
//!  "message_id":"<a1@example.net>","sender":"ann@example.net",
//!  "recipients":[{"address":"bob@example.org","outcome":"delivered","status":null}],
//!  "size":2048,"peer":"192.0.2.7","peer_name":"mx.example.net",
//!  "tls":"TLSv1_3 with cipher TLS13_AES_256_GCM_SHA384","user":null,
//!  "peer_reverse":"mx.example.net","checks":{"dnsbl":"pass","spf":"pass"}}
//! ```
//!
//! `peer`, `peer_name`, `tls` and `user` describe the SMTP session the
//! message moved on: the client's for `"in"` (its address, HELO/EHLO name,
//! TLS and AUTH user), ours to the next hop for `"out"` (its address and
//! host name, and the user we authenticated as, if any).
//!
//! Writes take a std mutex and append one line with one `write` and a flush:
//! short enough to do from async code, and whole lines even when sessions
//! write at once.
use serde::Serialize;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Accepted: from the Internet, by submission, or through the client API.
    In,
    /// An attempt to send a queued message to one destination.
    Out,
    /// A failure report (RFC 3464 DSN) we sent to a message's sender: its
    /// `sender` is empty (the null reverse path, RFC 3461 §6.2), its one
    /// recipient the original sender, `queue_id` that of the message that
    /// failed.
    Bounce,
}

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Stored in a local mailbox.
    Delivered,
    /// Put in the outbound queue for a remote recipient.
    Queued,
    /// Accepted by the next hop.
    Sent,
    /// Refused for now; to be tried again.
    Deferred,
    /// Given up on (refused for good, or too old to retry).
    Failed,
}

/// One recipient of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// What became of it.
    pub outcome: Outcome,
    /// The enhanced status code (RFC 3463), when known ("5.1.1").
    pub status: Option<String>,
}

/// One line of the accounting file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// When, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// Which way.
    pub direction: Direction,
    /// The outbound queue id (`postgate queue show ID`), for `"out"` and
    /// `"bounce"`.
    pub queue_id: Option<i64>,
    /// The Message-ID header field's value, when the message has one.
    pub message_id: Option<String>,
    /// The envelope sender (RFC 5321 MAIL FROM); empty for `<>`.
    pub sender: String,
    /// The envelope recipients.
    pub recipients: Vec<Recipient>,
    /// The message's size in octets.
    pub size: u64,
    /// The other side's IP address.
    pub peer: Option<String>,
    /// Its HELO/EHLO name (in) or host name (out).
    pub peer_name: Option<String>,
    /// The TLS version and cipher suite, or "TLS" when only known to be
    /// encrypted; `null` in clear text.
    pub tls: Option<String>,
    /// The authenticated user.
    pub user: Option<String>,
    /// The client's forward-confirmed reverse DNS name (`"in"`), when
    /// `[smtp.checks]` looked it up.
    pub peer_reverse: Option<String>,
    /// The outcome of each check made (`"in"`: `[smtp.checks]` and mail
    /// authentication, e.g. `{"dnsbl":"pass","spf":"fail","dkim":"pass"}`;
    /// `"out"`: `mta_sts`, `dkim_sign`); `{}` when none were.
    pub checks: std::collections::BTreeMap<String, String>,
}

impl Record {
    /// A record stamped now, with nothing else known yet.
    pub fn new(direction: Direction) -> Record {
        Record {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            direction,
            queue_id: None,
            message_id: None,
            sender: String::new(),
            recipients: Vec::new(),
            size: 0,
            peer: None,
            peer_name: None,
            tls: None,
            user: None,
            peer_reverse: None,
            checks: Default::default(),
        }
    }
}

/// The accounting sink: cheap to clone, shared by every writer.
#[derive(Clone, Default)]
pub struct Accounting {
    sink: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
}

impl std::fmt::Debug for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounting")
            .field("on", &self.is_on())
            .finish()
    }
}

impl Accounting {
    /// No accounting: records are dropped.
    pub fn off() -> Accounting {
        Accounting::default()
    }

    /// Accounting into `writer`, one line per record.
    pub fn to(writer: impl Write + Send + 'static) -> Accounting {
        Accounting {
            sink: Some(Arc::new(Mutex::new(Box::new(writer)))),
        }
    }

    /// Whether records are kept (build them only then).
    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Appends one record. A failure to write is logged and otherwise
    /// ignored: accounting never refuses mail.
    pub fn record(&self, record: &Record) {
        let Some(sink) = &self.sink else { return };
        let mut line = match serde_json::to_vec(record) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "accounting: cannot encode a record");
                return;
            }
        };
        line.push(b'\n');
        let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.write_all(&line).and_then(|()| w.flush()) {
            tracing::warn!(error = %e, "accounting: cannot write a record");
        }
    }
}

/// The Message-ID of an RFC 5322 message (§3.6.4), read from its header
/// section only; folded lines are unfolded (§2.2.3).
pub fn message_id(raw: &[u8]) -> Option<String> {
    let mut found: Option<String> = None;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header section
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(v) = &mut found {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if found.is_some() {
            break; // the field ended
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            found = Some(
                String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_string(),
            );
        }
    }
    found
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_json_line_per_record_with_every_key() {
        let buffer = Buffer::default();
        let acct = Accounting::to(buffer.clone());
        assert!(acct.is_on());
        let mut r = Record::new(Direction::Out);
        r.queue_id = Some(42);
        r.sender = "ann@example.org".into();
        r.recipients.push(Recipient {
            address: "bob@example.net".into(),
            outcome: Outcome::Failed,
            status: Some("5.1.1".into()),
        });
        r.size = 1234;
        acct.record(&r);
        acct.clone().record(&Record::new(Direction::Bounce));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"time\":\""), "{}", lines[0]);
        assert!(
            lines[0].ends_with(
                "\"direction\":\"out\",\"queue_id\":42,\"message_id\":null,\
                 \"sender\":\"ann@example.org\",\"recipients\":[{\"address\":\"bob@example.net\",\
                 \"outcome\":\"failed\",\"status\":\"5.1.1\"}],\"size\":1234,\"peer\":null,\
                 \"peer_name\":null,\"tls\":null,\"user\":null,\"peer_reverse\":null,\
                 \"checks\":{}}"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("\"direction\":\"bounce\""));
        // RFC 3339, UTC, e.g. 2026-05-01T09:30:00.123Z.
        let time = &lines[0][9..33];
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        Accounting::off().record(&r);
    }

    #[test]
    fn message_id_from_the_header_section_only() {
        let raw = b"From: a@b\r\nMessage-ID:\r\n <x1@example.org>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id(raw).as_deref(), Some("<x1@example.org>"));
        assert_eq!(
            message_id(b"message-id: <y@z>\nTo: c@d\n\n").as_deref(),
            Some("<y@z>")
        );
        assert_eq!(
            message_id(b"Subject: none\r\n\r\nMessage-ID: <b@x>\r\n"),
            None
        );
    }
}
