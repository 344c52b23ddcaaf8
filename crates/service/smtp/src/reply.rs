//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463), and how
//! errors map to them.
use postgate_store::StoreError;

/// One reply: code, enhanced status code, text lines, and whether the session
/// ends after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code ("2.1.0"); empty for the greeting, which has none (RFC 2034 §3).
    pub esc: &'static str,
    /// Text; several lines make a multi-line reply.
    pub lines: Vec<String>,
    /// Close the connection after sending.
    pub close: bool,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, esc: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            esc,
            lines: vec![text.into()],
            close: false,
        }
    }

    /// The same reply, closing the session after it.
    pub fn closing(mut self) -> Reply {
        self.close = true;
        self
    }

    /// Whether the reply is positive (2xx or 3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if !self.esc.is_empty() {
                out.extend_from_slice(self.esc.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Nothing to send: the handler has already answered (STARTTLS's 220 goes
    /// out before the handshake).
    pub fn none() -> Reply {
        Reply {
            code: 0,
            esc: "",
            lines: Vec::new(),
            close: false,
        }
    }

    /// `250 2.0.0 Ok`
    pub fn ok() -> Reply {
        Reply::new(250, "2.0.0", "Ok")
    }
    /// 503: a command out of order (RFC 5321 §4.3.2).
    pub fn bad_sequence(text: &str) -> Reply {
        Reply::new(503, "5.5.1", text)
    }
    /// 451: our failure, the client should try again (RFC 5321 §4.2.2).
    pub fn local_error() -> Reply {
        Reply::new(451, "4.3.0", "Temporary local problem, try again later")
    }
}

impl From<StoreError> for Reply {
    fn from(e: StoreError) -> Reply {
        tracing::error!(error = %e, "store error during SMTP session");
        match e {
            // RFC 5321 §4.2.2 452 "insufficient system storage" (a reply to
            // the end of DATA, §4.3.2), RFC 3463 §3.4 X.3.1 "mail system
            // full": the client keeps the message and tries again later.
            StoreError::Full(_) => Reply::new(452, "4.3.1", "Mail system full, try again later"),
            _ => Reply::local_error(),
        }
    }
}

/// Replies for what the command parser refuses.
impl From<smtp_proto::Error> for Reply {
    fn from(e: smtp_proto::Error) -> Reply {
        use smtp_proto::Error as E;
        match e {
            // RFC 5321 §4.2.4: 500 for an unrecognized command.
            E::UnknownCommand => Reply::new(500, "5.5.2", "Syntax error, command unrecognized"),
            E::InvalidSenderAddress => Reply::new(553, "5.1.7", "Bad sender address syntax"),
            E::InvalidRecipientAddress => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            E::SyntaxError { syntax } => Reply::new(501, "5.5.4", format!("Syntax: {syntax}")),
            E::InvalidParameter { param } => {
                Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
            }
            // RFC 5321 §4.1.1.11: 555 for parameters not recognized or not implemented.
            E::UnsupportedParameter { param } => Reply::new(
                555,
                "5.5.4",
                format!(
                    "Unsupported parameter {}",
                    param.chars().take(64).collect::<String>()
                ),
            ),
            E::NeedsMoreData { .. } | E::ResponseTooLong | E::InvalidResponse { .. } => {
                Reply::new(500, "5.5.2", "Syntax error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let mut out = Vec::new();
        Reply::ok().write_to(&mut out);
        Reply {
            code: 250,
            esc: "",
            lines: vec!["a".into(), "b".into()],
            close: false,
        }
        .write_to(&mut out);
        assert_eq!(out, b"250 2.0.0 Ok\r\n250-a\r\n250 b\r\n");
    }

    /// A full store is 452 4.3.1; other store failures stay 451 4.3.0.
    #[test]
    fn full_store_is_452() {
        let mut out = Vec::new();
        Reply::from(StoreError::Full("database or disk is full".into())).write_to(&mut out);
        // RFC 5321 §4.2.2 452; RFC 3463 §3.4 X.3.1 "mail system full".
        assert_eq!(out, b"452 4.3.1 Mail system full, try again later\r\n");
        let r = Reply::from(StoreError::Backend("disk I/O error".into()));
        // RFC 5321 §4.2.2 451 "local error in processing".
        assert_eq!((r.code, r.esc), (451, "4.3.0"));
        assert!(!r.close);
    }
}
