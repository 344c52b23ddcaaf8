//! One SMTP session: its I/O, its state, and the dispatch of commands.
use crate::Settings;
use crate::checks::{Checks, Sender, Verdict};
use crate::reply::Reply;
use postgate_delivery::Delivery;
use postgate_runtime::{Conn, Shutdown, Stream};
use postgate_store::UserRef;
use postgate_types::access::Direction;
use smtp_proto::Request;
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes asked of the socket per read; also the unit by which a message
/// may overshoot the size limit in memory before being cut off.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes asked of the socket per read while waiting for a command: a
/// session between commands (most of them, most of the time; thousands
/// during a slowloris) holds this much buffer, not [`READ_CHUNK`]
/// (measured: 78 KB of RSS per idle session with 64 KiB, against 4 for
/// an IMAP session).
const LINE_CHUNK: usize = 4 * 1024;

/// What the client said in HELO/EHLO.
#[derive(Debug, Clone)]
pub(crate) struct Helo {
    /// The name the client gave.
    pub name: String,
    /// EHLO (extended SMTP) rather than HELO.
    pub extended: bool,
}

/// A recipient accepted by RCPT.
#[derive(Debug, Clone)]
pub(crate) struct Rcpt {
    /// The address as given.
    pub address: String,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY.
    pub notify: Vec<String>,
    /// Beyond the post office (relayed for an authenticated user).
    pub remote: bool,
}

/// A mail transaction: from MAIL to the end of DATA or BDAT LAST.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Reverse path; empty for `<>`.
    pub mail_from: String,
    /// RFC 3461 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 RET.
    pub ret: Option<String>,
    /// RFC 6152 BODY.
    pub body: Option<String>,
    /// RFC 6531 SMTPUTF8.
    pub smtputf8: bool,
    /// Recipients accepted so far.
    pub rcpts: Vec<Rcpt>,
    /// The users they resolve to, without repeats.
    pub users: Vec<UserRef>,
    /// BDAT chunks received so far (RFC 3030), or `None` if BDAT has not started.
    pub bdat: Option<Vec<u8>>,
    /// A BDAT chunk pushed the message over the size limit; the rest is discarded.
    pub bdat_oversize: bool,
    /// The smallest size limit of the classes of service involved (0: the
    /// server's).
    pub class_max: u64,
    /// Mail authentication's state, when mail is verified (`[smtp.checks]
    /// verify`).
    pub auth: Option<Box<TxAuth>>,
}

/// What mail authentication found in one transaction.
#[derive(Debug, Default)]
pub(crate) struct TxAuth {
    /// The SPF result of MAIL FROM, for Authentication-Results and DMARC.
    pub spf: Option<postgate_dns::mail_auth::SpfOutput>,
    /// A policy asked for this message to be filed in Junk.
    pub junk: bool,
    /// Each outcome, for the accounting record.
    pub checks: Vec<(&'static str, String)>,
}

/// Where the session is in RFC 5321's command sequence (§4.1.4).
#[derive(Debug)]
pub(crate) enum State {
    /// Connected (or just past STARTTLS); no HELO/EHLO yet.
    Fresh,
    /// HELO/EHLO done; no transaction.
    Ready(Helo),
    /// Inside a mail transaction.
    Mail(Helo, Transaction),
}

/// Why reading from the client stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection.
    Eof,
    /// The client said nothing within the time allowed.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    /// A command line exceeded the limit (and was discarded to its end).
    TooLong,
    /// The connection failed.
    Io,
}

/// One session.
#[derive(Debug)]
pub struct Session {
    pub(crate) stream: Option<Stream>,
    pub(crate) rbuf: Vec<u8>,
    pub(crate) rpos: usize,
    pub(crate) wbuf: Vec<u8>,
    pub(crate) state: State,
    pub(crate) settings: Arc<Settings>,
    pub(crate) delivery: Delivery,
    pub(crate) peer: SocketAddr,
    /// The TLS acceptor, for STARTTLS.
    pub(crate) tls: postgate_runtime::tls::Tls,
    shutdown: Shutdown,
    /// Commands since the last MAIL (RFC 5321 gives no limit; this bounds abuse).
    pub(crate) commands_since_mail: usize,
    /// Error replies so far.
    pub(crate) errors: usize,
    /// Whether a command has been received (the greeting timeout applies until then).
    started: bool,
    /// AUTH checks.
    pub(crate) auth: postgate_store::auth::Authenticator,
    /// The user who authenticated (RFC 4954).
    pub(crate) user: Option<Box<postgate_store::User>>,
    /// MAIL needs AUTH first: submission, SMTPS, or `[smtp] require_auth`.
    pub(crate) auth_required: bool,
    /// The client is in `[smtp] relay_networks` and on the inbound port: it
    /// may relay without AUTH.
    pub(crate) trusted: bool,
    /// On the inbound port (role "smtp"), where `[smtp.checks]` apply.
    pub(crate) inbound: bool,
    /// Our address the client connected to.
    pub(crate) local: SocketAddr,
    /// `[smtp.checks]`, shared by the service's sessions.
    pub(crate) checks: Arc<Checks>,
    /// What the checks found at connect and HELO; `None` when they do not
    /// apply (none configured, another port, a trusted client).
    pub(crate) verdict: Option<Box<Verdict>>,
}

impl Session {
    /// A session on an accepted connection.
    pub fn new(
        conn: Conn,
        settings: Arc<Settings>,
        delivery: Delivery,
        auth: postgate_store::auth::Authenticator,
        checks: Arc<Checks>,
    ) -> Session {
        let auth_required = conn.role != "smtp" || settings.config.require_auth;
        let trusted = conn.role == "smtp"
            && settings
                .config
                .relay_networks
                .iter()
                .any(|n| n.contains(conn.peer.ip()));
        Session {
            trusted,
            inbound: conn.role == "smtp",
            local: conn.local,
            checks,
            verdict: None,
            auth,
            user: None,
            auth_required,
            stream: Some(conn.stream),
            rbuf: Vec::with_capacity(4096),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            state: State::Fresh,
            settings,
            delivery,
            peer: conn.peer,
            tls: conn.tls,
            shutdown: conn.shutdown,
            commands_since_mail: 0,
            errors: 0,
            started: false,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        let blocked = self
            .auth
            .policy()
            .blocked(Direction::In, Some(self.peer.ip()), &[])
            .await;
        if let Ok(Some(b)) = blocked {
            // RFC 5321 §3.1: 554 instead of the greeting; no service here.
            tracing::info!(peer = %self.peer, pattern = %b.pattern, "blocked client refused");
            postgate_metrics::metrics().refuse("smtp", "blocked");
            let r = Reply::new(
                554,
                "5.7.1",
                format!("Access denied: {} is blocked", self.peer.ip()),
            );
            self.send(&r);
            let _ = self.flush().await;
            if let Some(mut s) = self.stream.take() {
                let _ = s.shutdown().await;
            }
            return;
        }
        if self.checks.active() && self.inbound && !self.trusted {
            let checks = &self.settings.config.checks;
            match self
                .checks
                .connect(checks, &self.settings.dns, self.peer.ip())
                .await
            {
                Ok(v) => self.verdict = Some(Box::new(v)),
                Err(refusal) => {
                    // RFC 5321 §3.1: the refusal replaces the greeting.
                    self.send(&refusal);
                    let _ = self.flush().await;
                    if let Some(mut s) = self.stream.take() {
                        let _ = s.shutdown().await;
                    }
                    return;
                }
            }
        }
        // RFC 5321 §4.3.1: the greeting. No enhanced code (RFC 2034 §3).
        let greeting = Reply::new(
            220,
            "",
            format!("{} ESMTP Postgate", self.settings.hostname),
        );
        self.send(&greeting);
        loop {
            let timeout = if self.started {
                self.settings.config.timeouts.command
            } else {
                self.settings.config.timeouts.greeting
            };
            let line = match self.read_line(timeout).await {
                Ok(line) => line,
                Err(ReadError::TooLong) => {
                    // RFC 5321 §4.5.3.1.4 / §4.2.4: "500 Line too long".
                    let r = Reply::new(500, "5.5.2", "Line too long");
                    if self.finish(r).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    self.end_on(e).await;
                    break;
                }
            };
            self.started = true;
            let reply = self.dispatch(&line).await;
            if self.finish(reply).await {
                break;
            }
        }
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
    }

    /// Sends a reply, counts errors and commands; returns true if the session must end.
    async fn finish(&mut self, mut reply: Reply) -> bool {
        if reply.code >= 500 || reply.code == 421 {
            self.errors += 1;
        }
        if reply.code >= 400 {
            use postgate_metrics::ErrorKind;
            // RFC 5321 §4.2.4: 500–504 are the syntax errors.
            let kind = match reply.code {
                500..=504 => ErrorKind::Syntax,
                400..=499 => ErrorKind::Temporary,
                _ => ErrorKind::Refused,
            };
            postgate_metrics::metrics().error("smtp", kind);
        }
        if !reply.close && self.errors > self.settings.config.max_errors {
            reply = Reply::new(421, "4.7.0", "Too many errors, closing connection").closing();
        }
        self.send(&reply);
        if reply.close {
            let _ = self.flush().await;
            return true;
        }
        false
    }

    async fn end_on(&mut self, e: ReadError) {
        let host = self.settings.hostname.clone();
        let reply = match e {
            // RFC 5321 §3.8: a server that times out should say 421 first.
            ReadError::Timeout => {
                Reply::new(421, "4.4.2", format!("{host} Error: timeout exceeded"))
            }
            ReadError::Shutdown => {
                Reply::new(421, "4.3.2", format!("{host} Service shutting down"))
            }
            ReadError::Eof | ReadError::Io | ReadError::TooLong => return,
        };
        self.send(&reply);
        let _ = self.flush().await;
    }

    /// Parses one command line and runs its handler.
    async fn dispatch(&mut self, line: &[u8]) -> Reply {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                postgate_metrics::metrics().command("smtp", "other");
                self.commands_since_mail += 1;
                return e.into();
            }
        };
        postgate_metrics::metrics().command("smtp", verb(&request));
        if !matches!(
            request,
            Request::Mail { .. } | Request::Rcpt { .. } | Request::Data | Request::Bdat { .. }
        ) {
            self.commands_since_mail += 1;
            if self.commands_since_mail > self.settings.config.max_commands_before_mail {
                return Reply::new(421, "4.7.0", "Too many commands, closing connection").closing();
            }
        }
        match request {
            Request::Ehlo { host } => self.handle_ehlo(host, true).await,
            Request::Helo { host } => self.handle_ehlo(host, false).await,
            Request::Mail { from } => self.handle_mail(from).await,
            Request::Rcpt { mut to } => {
                // smtp-proto reads "<Postmaster>" as "", as it does "<>";
                // RFC 5321 §4.5.1 wants the former (see handle_rcpt).
                if to.address.is_empty()
                    && line
                        .windows(10)
                        .any(|w| w.eq_ignore_ascii_case(b"postmaster"))
                {
                    to.address = "postmaster".into();
                }
                self.handle_rcpt(to).await
            }
            Request::Data => self.handle_data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.handle_bdat(chunk_size, is_last).await,
            Request::Rset => self.handle_rset(),
            Request::Noop { .. } => Reply::ok(),
            Request::Vrfy { value } => self.handle_vrfy(value).await,
            Request::Expn { .. } => Reply::new(502, "5.5.1", "EXPN not available"),
            Request::Help { .. } => self.handle_help(),
            Request::Quit => Reply::new(221, "2.0.0", "Bye").closing(),
            Request::StartTls => self.handle_starttls(line).await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.handle_auth(mechanism, initial_response).await,
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                // RFC 5321 §4.2.4: 502 for a command we recognize but do not implement.
                Reply::new(502, "5.5.1", "Command not implemented")
            }
        }
    }

    /// Queues a reply for the next flush.
    pub(crate) fn send(&mut self, reply: &Reply) {
        reply.write_to(&mut self.wbuf);
    }

    /// Writes queued replies.
    pub(crate) async fn flush(&mut self) -> Result<(), ReadError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadError::Io);
        };
        let r = async {
            stream.write_all(&self.wbuf).await?;
            stream.flush().await
        }
        .await;
        self.wbuf.clear();
        r.map_err(|_| ReadError::Io)
    }

    /// Reads more bytes into the buffer, flushing pending replies first (so that
    /// pipelined replies go out together, RFC 2920 §3.1); waits until
    /// `deadline` at most, asking for `chunk` bytes.
    async fn fill(
        &mut self,
        deadline: tokio::time::Instant,
        chunk: usize,
    ) -> Result<(), ReadError> {
        self.flush().await?;
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        // Give back what a message's data took once it is read.
        if self.rbuf.is_empty() && self.rbuf.capacity() > chunk * 4 {
            self.rbuf = Vec::with_capacity(chunk);
        }
        let stream = self.stream.as_mut().ok_or(ReadError::Io)?;
        self.rbuf.reserve(chunk);
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read_buf(&mut self.rbuf)) => r,
            _ = self.shutdown.wait() => return Err(ReadError::Shutdown),
        };
        match read {
            Err(_) => Err(ReadError::Timeout),
            Ok(Ok(0)) => Err(ReadError::Eof),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ReadError::Io),
        }
    }

    /// The next command line (or SASL response line), LF included. The
    /// whole line must arrive within `timeout`, not each read of it: a
    /// client trickling a byte now and then (slowloris) would otherwise
    /// hold its session, and a worker, for ever. RFC 5321 §4.5.3.2.7: the
    /// server's wait for the next command; one deadline for it.
    pub(crate) async fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let max = self.settings.config.max_line_length;
        let mut discarding = false;
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                let line = pending[..=i].to_vec();
                self.rpos += i + 1;
                if discarding || line.len() > max {
                    return Err(ReadError::TooLong);
                }
                return Ok(line);
            }
            if pending.len() > max {
                // Drop what we have and keep reading to the end of the line.
                discarding = true;
                self.rpos = self.rbuf.len();
            }
            self.fill(deadline, LINE_CHUNK).await?;
        }
    }

    /// Reads DATA content up to `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4), dot-unstuffed,
    /// appending to `out`. Returns false if it exceeded `limit` octets (the rest was
    /// read and discarded, the content cut back to what was there before).
    pub(crate) async fn read_data(
        &mut self,
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<bool, ReadError> {
        let base = out.len();
        let timeout = self.settings.config.timeouts.data;
        let mut rx = DataReceiver::new();
        let mut discard: Option<DummyDataReceiver> = None;
        loop {
            let pending = &self.rbuf[self.rpos..];
            let mut iter = pending.iter();
            let done = match &mut discard {
                Some(d) => d.ingest(&mut iter),
                None => rx.ingest(&mut iter, out),
            };
            self.rpos += pending.len() - iter.as_slice().len();
            if discard.is_none() && (out.len() - base) as u64 > limit {
                discard = Some(DummyDataReceiver::new_data(&rx));
                out.truncate(base);
                out.shrink_to(base + READ_CHUNK);
            }
            if done {
                return Ok(discard.is_none());
            }
            // RFC 5321 §4.5.3.2: data blocks, each read waited for afresh.
            self.fill(tokio::time::Instant::now() + timeout, READ_CHUNK)
                .await?;
        }
    }

    /// Reads a BDAT chunk of exactly `size` octets (RFC 3030 §2), appending it to
    /// `out` unless `keep` is false.
    pub(crate) async fn read_chunk(
        &mut self,
        out: &mut Vec<u8>,
        size: usize,
        keep: bool,
    ) -> Result<(), ReadError> {
        let timeout = self.settings.config.timeouts.data;
        let mut rx = BdatReceiver::new(size, true);
        let mut dummy = DummyDataReceiver::new_bdat(size);
        loop {
            let pending = &self.rbuf[self.rpos..];
            let mut iter = pending.iter();
            let done = if keep {
                rx.ingest(&mut iter, out)
            } else {
                dummy.ingest(&mut iter)
            };
            self.rpos += pending.len() - iter.as_slice().len();
            if done {
                return Ok(());
            }
            // RFC 5321 §4.5.3.2: data blocks, each read waited for afresh.
            self.fill(tokio::time::Instant::now() + timeout, READ_CHUNK)
                .await?;
        }
    }

    /// Discards everything buffered but not yet read: after STARTTLS, nothing sent
    /// in cleartext may be taken as sent under TLS (RFC 3207 §4.2).
    pub(crate) fn discard_input(&mut self) {
        self.rbuf.clear();
        self.rpos = 0;
    }

    /// Whom the mailbomb limit counts this session's messages against: the
    /// authenticated user, else an unauthenticated client on the inbound
    /// port that the checks apply to (not trusted, allowed or allowlisted).
    pub(crate) fn mailbomb_sender(&self) -> Option<Sender> {
        if !self.checks.mailbomb() {
            return None;
        }
        if let Some(u) = &self.user {
            return Some(Sender::User(u.id));
        }
        match &self.verdict {
            Some(v) if !v.exempt => Some(Sender::Ip(self.peer.ip().to_canonical())),
            _ => None,
        }
    }

    /// The verdict of checks that still apply: not to an authenticated
    /// user, nor to an allowed client.
    pub(crate) fn applicable_verdict(&mut self) -> Option<&mut Verdict> {
        match self.verdict.as_deref_mut() {
            Some(v) if !v.exempt && self.user.is_none() => Some(v),
            _ => None,
        }
    }

    /// Whether the shutdown signal has fired.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }
}

/// A command's name for the counters.
fn verb<T>(request: &Request<T>) -> &'static str {
    match request {
        Request::Ehlo { .. } => "EHLO",
        Request::Helo { .. } => "HELO",
        Request::Lhlo { .. } => "LHLO",
        Request::Mail { .. } => "MAIL",
        Request::Rcpt { .. } => "RCPT",
        Request::Data => "DATA",
        Request::Bdat { .. } => "BDAT",
        Request::Rset => "RSET",
        Request::Noop { .. } => "NOOP",
        Request::Vrfy { .. } => "VRFY",
        Request::Expn { .. } => "EXPN",
        Request::Help { .. } => "HELP",
        Request::Quit => "QUIT",
        Request::StartTls => "STARTTLS",
        Request::Auth { .. } => "AUTH",
        Request::Etrn { .. } => "ETRN",
        Request::Atrn { .. } => "ATRN",
        Request::Burl { .. } => "BURL",
    }
}
