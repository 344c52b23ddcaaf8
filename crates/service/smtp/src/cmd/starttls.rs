//! STARTTLS (RFC 3207).
use crate::reply::Reply;
use crate::session::{Session, State};

impl Session {
    pub(crate) async fn handle_starttls(&mut self, line: &[u8]) -> Reply {
        if self.is_tls() {
            return Reply::bad_sequence("TLS already active");
        }
        // RFC 3207 §4: STARTTLS takes no parameters.
        let args = line
            .strip_suffix(b"\n")
            .unwrap_or(line)
            .strip_suffix(b"\r")
            .unwrap_or(line);
        if args.len() > "STARTTLS".len() && !args[8..].iter().all(u8::is_ascii_whitespace) {
            return Reply::new(501, "5.5.4", "Syntax: STARTTLS");
        }
        self.send(&Reply::new(220, "2.0.0", "Ready to start TLS"));
        if self.flush().await.is_err() {
            return Reply::new(421, "4.4.2", "Connection failed").closing();
        }
        // RFC 3207 §4.2: anything the client pipelined after STARTTLS was sent in
        // the clear and must not be acted on under TLS.
        self.discard_input();
        let Some(plain) = self.stream.take() else {
            return Reply::new(421, "4.4.2", "Connection failed").closing();
        };
        let tls = self.tls.clone();
        match tokio::time::timeout(
            postgate_runtime::listener::TLS_HANDSHAKE_TIMEOUT,
            plain.start_tls(&tls),
        )
        .await
        {
            Ok(Ok(stream)) => {
                self.stream = Some(stream);
                // RFC 3207 §4.2: forget everything learned before TLS, HELO included.
                self.state = State::Fresh;
                self.user = None;
                Reply::none()
            }
            _ => {
                tracing::debug!("STARTTLS handshake failed");
                Reply::none().closing()
            }
        }
    }
}
