//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
use crate::reply::Reply;
use crate::session::{Session, State};
use postgate_store::auth::{Attempt, Refusal, SaslError, sasl_plain, sasl_text};
use postgate_types::{Secret, Service};

impl Session {
    /// Whether AUTH is offered: under TLS, or in the clear if the operator allows.
    pub(crate) fn auth_offered(&self) -> bool {
        self.user.is_none() && (self.is_tls() || self.settings.config.allow_plaintext_auth)
    }

    /// Reads one line of a SASL exchange, after a 334 challenge.
    async fn sasl_line(&mut self, challenge: &str) -> Option<String> {
        self.send(&Reply::new(334, "", challenge));
        let timeout = self.settings.config.timeouts.command;
        let line = self.read_line(timeout).await.ok()?;
        Some(String::from_utf8_lossy(&line).trim().to_string())
    }

    pub(crate) async fn handle_auth(&mut self, mechanism: u64, initial: String) -> Reply {
        if !matches!(self.state, State::Ready(_)) {
            // RFC 4954 §4: after EHLO, not during a transaction, once.
            return Reply::bad_sequence(if self.user.is_some() {
                "Already authenticated"
            } else {
                "Send EHLO first"
            });
        }
        if self.user.is_some() {
            return Reply::bad_sequence("Already authenticated");
        }
        if !self.is_tls() && !self.settings.config.allow_plaintext_auth {
            // RFC 4954 §6: 538 5.7.11 encryption required.
            return Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        let (login, password) = if mechanism == smtp_proto::AUTH_PLAIN {
            let data = if initial.is_empty() {
                match self.sasl_line("").await {
                    Some(l) => l,
                    None => return Reply::none().closing(),
                }
            } else {
                initial
            };
            if data == "*" {
                return Reply::new(501, "5.7.0", "Authentication cancelled");
            }
            match sasl_plain(&data) {
                Ok(c) => c,
                Err(SaslError::Base64) => return Reply::new(501, "5.5.2", "Invalid base64"),
                Err(SaslError::Malformed) => {
                    return Reply::new(501, "5.5.2", "Invalid PLAIN response");
                }
                Err(SaslError::ActAs) => {
                    return Reply::new(535, "5.7.8", "Cannot act as another user");
                }
            }
        } else if mechanism == smtp_proto::AUTH_LOGIN {
            // The LOGIN mechanism (draft-murchison-sasl-login): "Username:", "Password:".
            let user = if initial.is_empty() {
                match self.sasl_line("VXNlcm5hbWU6").await {
                    Some(l) => l,
                    None => return Reply::none().closing(),
                }
            } else {
                initial
            };
            if user == "*" {
                return Reply::new(501, "5.7.0", "Authentication cancelled");
            }
            let pass = match self.sasl_line("UGFzc3dvcmQ6").await {
                Some(l) => l,
                None => return Reply::none().closing(),
            };
            if pass == "*" {
                return Reply::new(501, "5.7.0", "Authentication cancelled");
            }
            match (sasl_text(&user), sasl_text(&pass)) {
                (Some(u), Some(p)) => (u, p),
                _ => return Reply::new(501, "5.5.2", "Invalid base64"),
            }
        } else {
            return Reply::new(504, "5.5.4", "Unrecognized authentication type");
        };
        let attempt = Attempt {
            service: Service::Submission,
            peer: self.peer.ip(),
            login: &login,
            password: Secret::new(password),
            channel_ok: self.is_tls() || self.settings.config.allow_plaintext_auth,
        };
        match self.auth.login(attempt).await {
            Ok(u) => {
                tracing::info!(user = %u.address, "SMTP AUTH");
                self.user = Some(Box::new(u));
                Reply::new(235, "2.7.0", "Authentication successful")
            }
            Err(Refusal::Credentials) => {
                Reply::new(535, "5.7.8", "Authentication credentials invalid")
            }
            Err(Refusal::Denied(why)) => Reply::new(550, "5.7.1", why),
            // RFC 4954 §6.
            Err(Refusal::TlsRequired) => Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ),
            Err(Refusal::Unavailable(e)) => {
                tracing::warn!(error = %e, "AUTH: store unavailable");
                Reply::new(454, "4.7.0", "Temporary authentication failure")
            }
        }
    }
}
