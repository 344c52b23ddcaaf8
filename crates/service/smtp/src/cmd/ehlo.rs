//! EHLO and HELO (RFC 5321 §4.1.1.1).
use crate::reply::Reply;
use crate::session::{Helo, Session, State};

impl Session {
    pub(crate) fn handle_ehlo(&mut self, host: String, extended: bool) -> Reply {
        // RFC 5321 §4.1.4: EHLO/HELO during a transaction resets it, like RSET.
        self.state = State::Ready(Helo {
            name: host.clone(),
            extended,
        });
        let greeting = format!(
            "{} Hello {host} [{}]",
            self.settings.hostname,
            self.peer.ip()
        );
        if !extended {
            return Reply::new(250, "", greeting);
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".into(),                                       // RFC 2920
            format!("SIZE {}", self.settings.config.max_message_size), // RFC 1870
            "8BITMIME".into(),                                         // RFC 6152
            "SMTPUTF8".into(),                                         // RFC 6531
            "ENHANCEDSTATUSCODES".into(),                              // RFC 2034
            "CHUNKING".into(),                                         // RFC 3030
            "DSN".into(),                                              // RFC 3461
        ];
        if !self.is_tls() {
            lines.push("STARTTLS".into()); // RFC 3207; not offered again under TLS
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into()); // RFC 4954 §3
        }
        lines.push("HELP".into());
        // RFC 2034 §3: EHLO's reply lines carry no enhanced codes.
        Reply {
            code: 250,
            esc: "",
            lines,
            close: false,
        }
    }
}
