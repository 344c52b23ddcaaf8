//! CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 §6.1.1, §6.2).
use crate::error::{ImapError, Result};
use crate::session::{Done, Enabled, IoStream, Session, State};
use base64::Engine;
use imap_types::auth::AuthMechanism;
use imap_types::core::AString;
use imap_types::secret::Secret;
use postgate_store::auth::{Attempt, Refusal, SaslError, sasl_plain_decoded};
use postgate_types::Service;
use std::borrow::Cow;
use std::time::Duration;

impl Session {
    /// The capability list for the current state.
    pub(crate) fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
        ];
        if matches!(self.state, State::NotAuthenticated) {
            if self.cleartext_port && !self.is_tls() {
                caps.push("STARTTLS");
            }
            if self.login_allowed() {
                caps.push("AUTH=PLAIN");
            } else {
                // RFC 9051 §6.2.3: no cleartext passwords before TLS.
                caps.push("LOGINDISABLED");
            }
        }
        let mut s = caps.join(" ");
        s.push_str(
            " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE \
             CONDSTORE QRESYNC ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT \
             THREAD=REFERENCES QUOTA QUOTA=RES-STORAGE BINARY COMPRESS=DEFLATE STATUS=SIZE WITHIN UNAUTHENTICATE PREVIEW OBJECTID MULTIAPPEND CATENATE UTF8=ACCEPT ESORT CONTEXT=SEARCH CONTEXT=SORT ACL RIGHTS=texk NOTIFY URLAUTH METADATA SAVEDATE CREATE-SPECIAL-USE PARTIAL",
        );
        s.push_str(&format!(" APPENDLIMIT={}", self.ctx.config.max_append_size));
        s
    }

    pub(crate) fn handle_capability(&mut self) -> Result<Done> {
        let caps = self.capabilities();
        self.untagged(&format!("CAPABILITY {caps}"));
        Ok(Done::default())
    }

    /// UNAUTHENTICATE (RFC 8437 §3): back to the not authenticated state on
    /// the same connection, for another login.
    pub(crate) fn handle_unauthenticate(&mut self) -> Result<Done> {
        match self.state {
            State::Authenticated(_) | State::Selected(..) => {}
            _ => return Err(ImapError::bad("Not logged in")),
        }
        // RFC 8437 §3: the selected mailbox is closed without expunging,
        // and what the old user ENABLEd (RFC 5161) no longer applies;
        // TLS and COMPRESS stay in place.
        self.deselect();
        self.enabled = Enabled::default();
        self.notify = None;
        if let State::Authenticated(user) = &self.state {
            tracing::info!(user = %user.address, peer = %self.peer, "unauthenticated");
        }
        self.state = State::NotAuthenticated;
        Ok(Done::default())
    }

    pub(crate) async fn handle_starttls(&mut self, tag: &str) -> Result<Done> {
        if self.is_tls() {
            return Err(ImapError::bad("TLS is already active"));
        }
        if !matches!(self.state, State::NotAuthenticated) {
            return Err(ImapError::bad("STARTTLS is only allowed before login"));
        }
        // RFC 9051 §6.2.1: the tagged OK, then the handshake; anything the
        // client pipelined in the clear is discarded.
        self.tagged(tag, "OK", None, "Begin TLS negotiation now");
        if self.flush().await.is_err() {
            self.state = State::Logout;
            return Ok(Done {
                sent: true,
                ..Done::default()
            });
        }
        self.discard_input();
        let tls = self.tls.clone();
        let upgraded = match self.stream.take() {
            Some(IoStream::Plain(plain)) => tokio::time::timeout(
                postgate_runtime::listener::TLS_HANDSHAKE_TIMEOUT,
                plain.start_tls(&tls),
            )
            .await
            .ok()
            .and_then(|r| r.ok()),
            _ => None,
        };
        match upgraded {
            Some(s) => self.stream = Some(IoStream::Plain(s)),
            None => self.state = State::Logout,
        }
        Ok(Done {
            sent: true,
            ..Done::default()
        })
    }

    pub(crate) async fn handle_login(
        &mut self,
        username: AString<'_>,
        password: Secret<AString<'_>>,
    ) -> Result<Done> {
        let user = String::from_utf8_lossy(username.as_ref()).into_owned();
        let pw = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
        self.log_in(&user, pw).await
    }

    pub(crate) async fn handle_authenticate(
        &mut self,
        mechanism: AuthMechanism<'_>,
        initial: Option<Secret<Cow<'_, [u8]>>>,
    ) -> Result<Done> {
        if !matches!(mechanism, AuthMechanism::Plain) {
            return Err(ImapError::no(
                Some("CANNOT"),
                "Unsupported authentication mechanism",
            ));
        }
        if !self.login_allowed() {
            return Err(ImapError::no(Some("PRIVACYREQUIRED"), "Use STARTTLS first"));
        }
        // RFC 4959 SASL-IR: the response may come with the command; else ask.
        let data = match initial {
            Some(d) => d.declassify().to_vec(),
            None => {
                self.raw(b"+ \r\n");
                let timeout = Duration::from_secs(60);
                let line = self
                    .read_line(timeout)
                    .await
                    .map_err(|_| ImapError::bad("Connection lost"))?;
                let line = line.trim_ascii();
                if line == b"*" {
                    // RFC 9051 §6.2.2: the client cancels.
                    return Err(ImapError::bad("Authentication cancelled"));
                }
                base64::engine::general_purpose::STANDARD
                    .decode(line)
                    .map_err(|_| ImapError::bad("Invalid base64"))?
            }
        };
        let (user, pw) = match sasl_plain_decoded(&data) {
            Ok(c) => c,
            Err(SaslError::ActAs) => {
                return Err(ImapError::no(
                    Some("AUTHORIZATIONFAILED"),
                    "Cannot act as another user",
                ));
            }
            Err(_) => return Err(ImapError::bad("Invalid PLAIN response")),
        };
        self.log_in(&user, pw).await
    }

    async fn log_in(&mut self, login: &str, password: String) -> Result<Done> {
        if !self.login_allowed() {
            return Err(ImapError::no(Some("PRIVACYREQUIRED"), "Use STARTTLS first"));
        }
        let attempt = Attempt {
            service: Service::Imap,
            peer: self.peer.ip(),
            login,
            password: postgate_types::Secret::new(password),
            channel_ok: self.login_allowed(),
        };
        let user = match self.ctx.auth.login(attempt).await {
            Ok(u) => u,
            // RFC 5530 §3.
            Err(Refusal::Credentials) => {
                return Err(ImapError::no(
                    Some("AUTHENTICATIONFAILED"),
                    "Authentication failed",
                ));
            }
            Err(Refusal::Denied(why)) => return Err(ImapError::no(Some("CONTACTADMIN"), why)),
            Err(Refusal::TlsRequired) => {
                return Err(ImapError::no(Some("PRIVACYREQUIRED"), "Use STARTTLS first"));
            }
            Err(Refusal::Unavailable(e)) => return Err(e.into()),
        };
        tracing::info!(user = %user.address, peer = %self.peer, "logged in");
        self.state = State::Authenticated(Box::new(user));
        let caps = self.capabilities();
        Ok(Done {
            code: Some(format!("CAPABILITY {caps}")),
            text: Some("Logged in".into()),
            sent: false,
        })
    }
}
