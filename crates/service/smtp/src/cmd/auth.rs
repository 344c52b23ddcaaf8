//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
use crate::reply::Reply;
use crate::session::{Session, State};
use base64::Engine;
use postgate_types::{EmailAddress, Secret};
use std::time::Duration;

/// Pause after a failed AUTH: slows guessing without holding a worker long.
const FAILURE_DELAY: Duration = Duration::from_secs(1);

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

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
            // RFC 4616: [authzid] NUL authcid NUL passwd.
            let Some(raw) = b64(&data) else {
                return Reply::new(501, "5.5.2", "Invalid base64");
            };
            let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
            let [authzid, authcid, passwd] = parts.as_slice() else {
                return Reply::new(501, "5.5.2", "Invalid PLAIN response");
            };
            if !authzid.is_empty() && authzid != authcid {
                return Reply::new(535, "5.7.8", "Cannot act as another user");
            }
            (
                String::from_utf8_lossy(authcid).into_owned(),
                String::from_utf8_lossy(passwd).into_owned(),
            )
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
            match (b64(&user), b64(&pass)) {
                (Some(u), Some(p)) => (
                    String::from_utf8_lossy(&u).into_owned(),
                    String::from_utf8_lossy(&p).into_owned(),
                ),
                _ => return Reply::new(501, "5.5.2", "Invalid base64"),
            }
        } else {
            return Reply::new(504, "5.5.4", "Unrecognized authentication type");
        };
        let user = match EmailAddress::parse(&login) {
            Ok(a) => self.auth.authenticate(&a, &Secret::new(password)).await,
            Err(_) => Ok(None),
        };
        match user {
            Ok(Some(u)) => {
                tracing::info!(user = %u.address, "SMTP AUTH");
                self.user = Some(Box::new(u));
                Reply::new(235, "2.7.0", "Authentication successful")
            }
            Ok(None) => {
                tokio::time::sleep(FAILURE_DELAY).await;
                Reply::new(535, "5.7.8", "Authentication credentials invalid")
            }
            Err(e) => e.into(),
        }
    }
}
