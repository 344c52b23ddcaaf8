//! EHLO and HELO (RFC 5321 §4.1.1.1).
use crate::reply::Reply;
use crate::session::{Helo, Session, State};
use postgate_runtime::config::CheckAction;

impl Session {
    pub(crate) async fn handle_ehlo(&mut self, host: String, extended: bool) -> Reply {
        if let Some(refusal) = self.check_helo(&host).await {
            // The state stays as it was: the client may say HELO again.
            return refusal;
        }
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

impl Session {
    /// `[smtp.checks] helo`: the refusal, if the name fails and the action
    /// is "reject"; else the outcome is kept for the envelope (and Junk).
    async fn check_helo(&mut self, host: &str) -> Option<Reply> {
        let action = self.settings.config.checks.helo;
        if action == CheckAction::Off || self.applicable_verdict().is_none() {
            return None;
        }
        let settings = &self.settings;
        let outcome = self
            .checks
            .helo(&settings.dns, host, &settings.hostname, self.local)
            .await;
        let peer = self.peer.ip();
        let v = self.applicable_verdict()?;
        match outcome {
            None => v.helo = Some(("pass", false)),
            // A lookup failure never refuses.
            Some(("temperror", _)) => v.helo = Some(("temperror", false)),
            Some((result, reason)) => {
                tracing::info!(%peer, helo = host, reason, "HELO check failed");
                if action == CheckAction::Reject {
                    return Some(Reply::new(
                        550,
                        "5.7.1",
                        format!("<{host}>: Helo command rejected: {reason}"),
                    ));
                }
                v.helo = Some((result, true));
            }
        }
        None
    }
}
