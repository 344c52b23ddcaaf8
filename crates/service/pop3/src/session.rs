//! One POP3 session: I/O, the AUTHORIZATION / TRANSACTION / UPDATE states of
//! RFC 1939 §3, and the commands.
use crate::Context;
use crate::maildrop::{DeleteOverride, LoginOptions, Maildrop};
use postgate_pop3_proto::{Command, MAX_LINE, ParseError, parse, top, write_multiline};
use postgate_runtime::config::DeleteMode;
use postgate_runtime::tls::Tls;
use postgate_runtime::{Conn, Shutdown, Stream};
use postgate_store::User;
use postgate_store::auth::{Attempt, Refusal, SaslError, sasl_plain};
use postgate_types::Service;
use postgate_types::access::PopDelete;
use postgate_types::{FolderId, Secret};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Failed logins before the session is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// Read granularity.
const READ_CHUNK: usize = 4096;

/// Where the session is (RFC 1939 §3).
#[derive(Debug)]
enum State {
    /// Not logged in; maybe USER given.
    Authorization { user: Option<String> },
    /// Logged in, maildrop locked.
    Transaction(Box<Transaction>),
}

#[derive(Debug)]
struct Transaction {
    user: User,
    maildrop: Maildrop,
    /// Messages read ahead with the last one fetched from the store, by
    /// number: clients retrieve in order, so the next RETR or TOP is most
    /// often served from here, without a round trip (at most
    /// [`READ_AHEAD_MESSAGES`] and [`READ_AHEAD_BYTES`]).
    ahead: Vec<(u32, Vec<u8>)>,
    /// Released when the session ends, whatever the way.
    _lock: LockGuard,
}

/// At most this many messages are read ahead (see `Transaction::ahead`)…
const READ_AHEAD_MESSAGES: usize = 16;
/// …and at most this many octets, the one asked for included: a large
/// message is read alone.
const READ_AHEAD_BYTES: u64 = 256 * 1024;

/// Holds a maildrop lock (in the store, so every node sees it) until
/// dropped.
#[derive(Debug)]
struct LockGuard {
    ctx: Arc<Context>,
    folder: FolderId,
    holder: String,
}

impl LockGuard {
    async fn release(mut self) {
        let holder = std::mem::take(&mut self.holder);
        if let Err(e) = self.ctx.store.unlock_maildrop(self.folder, &holder).await {
            tracing::warn!(error = %e, folder = self.folder, "releasing a POP3 maildrop lock");
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.holder.is_empty() {
            return; // released
        }
        let (store, folder, holder) = (
            self.ctx.store.clone(),
            self.folder,
            std::mem::take(&mut self.holder),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.unlock_maildrop(folder, &holder).await {
                    tracing::warn!(error = %e, folder, "releasing a POP3 maildrop lock");
                }
            });
        }
    }
}

/// A reply and whether the session ends after it.
struct Reply {
    bytes: Vec<u8>,
    close: bool,
}

fn ok(text: &str) -> Reply {
    Reply {
        bytes: format!("+OK {text}\r\n").into_bytes(),
        close: false,
    }
}

fn err(text: &str) -> Reply {
    Reply {
        bytes: format!("-ERR {text}\r\n").into_bytes(),
        close: false,
    }
}

/// One session.
#[derive(Debug)]
pub struct Session {
    stream: Option<Stream>,
    rbuf: Vec<u8>,
    rpos: usize,
    out: Vec<u8>,
    ctx: Arc<Context>,
    state: State,
    tls: Tls,
    shutdown: Shutdown,
    cleartext_port: bool,
    auth_failures: u32,
    peer: std::net::SocketAddr,
    /// The session's number, for the maildrop lock's holder.
    id: u64,
}

impl Session {
    /// A session on an accepted connection.
    pub fn new(conn: Conn, ctx: Arc<Context>) -> Session {
        Session {
            cleartext_port: !conn.stream.is_tls(),
            stream: Some(conn.stream),
            rbuf: Vec::new(),
            rpos: 0,
            out: Vec::new(),
            ctx,
            state: State::Authorization { user: None },
            tls: conn.tls,
            shutdown: conn.shutdown,
            auth_failures: 0,
            peer: conn.peer,
            id: conn.id,
        }
    }

    fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    fn login_allowed(&self) -> bool {
        self.is_tls() || self.ctx.config.allow_plaintext
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        self.out.extend_from_slice(
            format!("+OK {} Postgate POP3 ready\r\n", self.ctx.hostname).as_bytes(),
        );
        loop {
            let line = match self.read_line().await {
                Ok(l) => l,
                Err(Stop::TooLong) => {
                    self.out.extend_from_slice(b"-ERR Line too long\r\n");
                    continue;
                }
                Err(Stop::Timeout) => {
                    self.out
                        .extend_from_slice(b"-ERR Autologout; idle for too long\r\n");
                    break;
                }
                Err(Stop::Shutdown) => {
                    self.out
                        .extend_from_slice(b"-ERR [SYS/TEMP] Server shutting down\r\n");
                    break;
                }
                Err(Stop::Closed) => break,
            };
            use postgate_metrics::ErrorKind;
            let counters = postgate_metrics::metrics();
            let reply = match parse(&line) {
                Ok(cmd) => {
                    counters.command("pop3", cmd.name());
                    let reply = self.dispatch(cmd).await;
                    if reply.bytes.starts_with(b"-ERR") {
                        // RFC 3206 §4: SYS/TEMP and IN-USE say "try again later".
                        let temporary = reply.bytes.starts_with(b"-ERR [SYS/TEMP]")
                            || reply.bytes.starts_with(b"-ERR [IN-USE]");
                        counters.error(
                            "pop3",
                            if temporary {
                                ErrorKind::Temporary
                            } else {
                                ErrorKind::Refused
                            },
                        );
                    }
                    reply
                }
                Err(e) => {
                    counters.command("pop3", "other");
                    counters.error("pop3", ErrorKind::Syntax);
                    match e {
                        ParseError::Unknown(_) => err("Unknown command"),
                        ParseError::Syntax(what) => err(&format!("Syntax: {what}")),
                    }
                }
            };
            self.out.extend_from_slice(&reply.bytes);
            if reply.close {
                break;
            }
            if self.out.len() > 64 * 1024 && self.flush().await.is_err() {
                break;
            }
        }
        // Release the maildrop before the last reply goes out (QUIT's +OK),
        // so the client's next login finds it free.
        let state = std::mem::replace(&mut self.state, State::Authorization { user: None });
        if let State::Transaction(t) = state {
            t._lock.release().await;
        }
        let _ = self.flush().await;
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Reply {
        match cmd {
            Command::Capa => self.handle_capa(),
            Command::Noop => match self.state {
                State::Transaction(_) => ok(""),
                _ => err("Not logged in"),
            },
            Command::Quit => self.handle_quit().await,
            Command::Stls => self.handle_stls().await,
            Command::User(u) => self.handle_user(u),
            Command::Pass(p) => self.handle_pass(p).await,
            Command::Auth { mechanism, initial } => self.handle_auth(mechanism, initial).await,
            Command::Stat => self.with_drop(|d| {
                let (n, size) = d.stat();
                ok(&format!("{n} {size}"))
            }),
            Command::List(None) => self.with_drop(|d| {
                let (n, size) = d.stat();
                let mut body = String::new();
                for (i, m) in d.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    body.push_str(&format!("{} {}\r\n", i + 1, m.size));
                }
                let mut r = ok(&format!("{n} messages ({size} octets)"));
                write_multiline(&mut r.bytes, body.as_bytes());
                r
            }),
            Command::List(Some(n)) => self.with_drop(|d| match d.get(n) {
                Some(m) => ok(&format!("{n} {}", m.size)),
                None => err("No such message"),
            }),
            Command::Uidl(None) => self.with_drop(|d| {
                let mut body = String::new();
                for (i, m) in d.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    body.push_str(&format!("{} {}\r\n", i + 1, d.uidl(m)));
                }
                let mut r = ok("");
                write_multiline(&mut r.bytes, body.as_bytes());
                r
            }),
            Command::Uidl(Some(n)) => self.with_drop(|d| match d.get(n) {
                Some(m) => ok(&format!("{n} {}", d.uidl(m))),
                None => err("No such message"),
            }),
            Command::Dele(n) => match &mut self.state {
                State::Transaction(t) => {
                    match t.maildrop.messages.get_mut((n as usize).wrapping_sub(1)) {
                        Some(m) if !m.deleted => {
                            m.deleted = true;
                            ok(&format!("Message {n} deleted"))
                        }
                        Some(_) => err("Message already deleted"),
                        None => err("No such message"),
                    }
                }
                _ => err("Not logged in"),
            },
            Command::Rset => match &mut self.state {
                State::Transaction(t) => {
                    for m in &mut t.maildrop.messages {
                        m.deleted = false;
                    }
                    let (n, size) = t.maildrop.stat();
                    ok(&format!("{n} messages ({size} octets)"))
                }
                _ => err("Not logged in"),
            },
            Command::Retr(n) => self.send_message(n, None).await,
            Command::Top(n, lines) => self.send_message(n, Some(lines)).await,
        }
    }

    fn with_drop(&self, f: impl FnOnce(&Maildrop) -> Reply) -> Reply {
        match &self.state {
            State::Transaction(t) => f(&t.maildrop),
            _ => err("Not logged in"),
        }
    }

    fn handle_capa(&self) -> Reply {
        // RFC 2449 §5.
        let mut caps = vec![
            "TOP".to_string(),
            "UIDL".into(),
            "RESP-CODES".into(),
            "AUTH-RESP-CODE".into(),
            "PIPELINING".into(),
        ];
        // RFC 2449 §5: "Capabilities available in the AUTHORIZATION state
        // MUST be announced in both states" (STLS, USER and SASL too).
        if self.cleartext_port && !self.is_tls() {
            caps.push("STLS".into());
        }
        if self.login_allowed() {
            caps.push("USER".into());
            caps.push("SASL PLAIN".into());
        }
        caps.push(match self.ctx.config.expire {
            Some(d) => format!("EXPIRE {d}"),
            None => "EXPIRE NEVER".into(),
        });
        if self.ctx.config.login_delay > 0 {
            caps.push(format!("LOGIN-DELAY {}", self.ctx.config.login_delay));
        }
        caps.push(format!(
            "IMPLEMENTATION Postgate-{}",
            env!("CARGO_PKG_VERSION")
        ));
        let mut r = ok("Capability list follows");
        let body: String = caps.iter().map(|c| format!("{c}\r\n")).collect();
        write_multiline(&mut r.bytes, body.as_bytes());
        r
    }

    async fn handle_stls(&mut self) -> Reply {
        if self.is_tls() {
            return err("TLS is already active");
        }
        if !matches!(self.state, State::Authorization { user: None }) {
            return err("STLS is only allowed before login");
        }
        // RFC 2595 §4: +OK, then the handshake; nothing sent before it counts.
        self.out.extend_from_slice(b"+OK Begin TLS negotiation\r\n");
        if self.flush().await.is_err() {
            return Reply {
                bytes: Vec::new(),
                close: true,
            };
        }
        self.rbuf.clear();
        self.rpos = 0;
        let Some(plain) = self.stream.take() else {
            return Reply {
                bytes: Vec::new(),
                close: true,
            };
        };
        let tls = self.tls.clone();
        match tokio::time::timeout(
            postgate_runtime::listener::TLS_HANDSHAKE_TIMEOUT,
            plain.start_tls(&tls),
        )
        .await
        {
            Ok(Ok(s)) => {
                self.stream = Some(s);
                Reply {
                    bytes: Vec::new(),
                    close: false,
                }
            }
            _ => Reply {
                bytes: Vec::new(),
                close: true,
            },
        }
    }

    fn handle_user(&mut self, name: String) -> Reply {
        if !self.login_allowed() {
            // RFC 2449 §8.1.1 AUTH: the problem is the authentication, not the user.
            return err("[AUTH] Plaintext authentication is not allowed without TLS; use STLS");
        }
        match &mut self.state {
            State::Authorization { user } => {
                *user = Some(name);
                ok("Send PASS")
            }
            _ => err("Already logged in"),
        }
    }

    async fn handle_pass(&mut self, password: String) -> Reply {
        let user = match &mut self.state {
            State::Authorization { user } => user.take(),
            _ => return err("Already logged in"),
        };
        let Some(user) = user else {
            return err("Send USER first");
        };
        self.log_in(&user, password).await
    }

    async fn handle_auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Reply {
        if !matches!(self.state, State::Authorization { .. }) {
            return err("Already logged in");
        }
        let Some(mechanism) = mechanism else {
            // RFC 5034 §4 note: a bare AUTH lists the mechanisms (as CAPA SASL does).
            let mut r = ok("");
            write_multiline(
                &mut r.bytes,
                if self.login_allowed() {
                    b"PLAIN\r\n"
                } else {
                    b""
                },
            );
            return r;
        };
        if mechanism != "PLAIN" {
            return err("Unsupported mechanism");
        }
        if !self.login_allowed() {
            return err("[AUTH] Plaintext authentication is not allowed without TLS; use STLS");
        }
        let b64 = match initial {
            // RFC 5034 §4: "=" is an empty initial response.
            Some(i) if i == "=" => String::new(),
            Some(i) => i,
            None => {
                self.out.extend_from_slice(b"+ \r\n");
                match self.read_line().await {
                    Ok(l) => String::from_utf8_lossy(&l).trim().to_string(),
                    Err(_) => {
                        return Reply {
                            bytes: Vec::new(),
                            close: true,
                        };
                    }
                }
            }
        };
        if b64 == "*" {
            return err("Authentication cancelled");
        }
        let (login, password) = match sasl_plain(&b64) {
            Ok(c) => c,
            Err(SaslError::Base64) => return err("Invalid base64"),
            Err(SaslError::Malformed) => return err("Invalid PLAIN response"),
            Err(SaslError::ActAs) => return err("[AUTH] Cannot act as another user"),
        };
        self.log_in(&login, password).await
    }

    async fn log_in(&mut self, login: &str, password: String) -> Reply {
        if !self.login_allowed() {
            return err("[AUTH] Plaintext authentication is not allowed without TLS; use STLS");
        }
        let (address, mut options) = match LoginOptions::split(login) {
            Ok(x) => x,
            Err(why) => return err(&format!("[AUTH] {why}")),
        };
        let attempt = Attempt {
            service: Service::Pop3,
            peer: self.peer.ip(),
            login: address,
            password: Secret::new(password),
            channel_ok: self.login_allowed(),
        };
        let user = match self.ctx.auth.login(attempt).await {
            Ok(u) => u,
            // RFC 3206 §4: [AUTH] for credentials, [SYS/PERM] for a refusal
            // that trying again will not change.
            Err(Refusal::Credentials) => {
                self.auth_failures += 1;
                let mut r = err("[AUTH] Authentication failed");
                r.close = self.auth_failures >= MAX_AUTH_FAILURES;
                return r;
            }
            Err(Refusal::Denied(why)) => return err(&format!("[SYS/PERM] {why}")),
            Err(Refusal::TlsRequired) => {
                return err("[AUTH] Plaintext authentication is not allowed without TLS; use STLS");
            }
            Err(Refusal::Unavailable(e)) => {
                tracing::error!(error = %e, "store error during POP3 login");
                return err("[SYS/TEMP] Temporary failure, try again later");
            }
        };
        // The class of service: what DELE does, how far back the list goes.
        let mut delete = self.ctx.config.delete;
        match self.ctx.auth.policy().class_of(&user).await {
            Ok(class) => {
                match class.settings.pop3_delete {
                    Some(PopDelete::Trash) => delete = DeleteMode::Trash,
                    Some(PopDelete::Purge) => delete = DeleteMode::Purge,
                    Some(PopDelete::Keep) => options.delete = Some(DeleteOverride::Keep),
                    None => {}
                }
                let days = class.settings.pop3_max_days;
                if days > 0 {
                    options.days = Some(options.days.map_or(days, |d| d.min(days)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store error during POP3 login");
                return err("[SYS/TEMP] Temporary failure, try again later");
            }
        }
        // RFC 2449 §6.8: LOGIN-DELAY.
        let delay = self.ctx.config.login_delay;
        if delay > 0
            && let Ok(mut last) = self.ctx.last_login.lock()
        {
            if let Some(t) = last.get(&user.id)
                && t.elapsed() < Duration::from_secs(delay)
            {
                return err("[LOGIN-DELAY] Logged in too recently");
            }
            last.insert(user.id, Instant::now());
        }
        let folder = match &options.folder {
            Some(path) => self.ctx.store.folder(user.id, path).await,
            None => self.ctx.store.folder(user.id, "INBOX").await,
        };
        let folder = match folder {
            Ok(Some(f)) => f,
            Ok(None) => return err("[SYS/PERM] No such folder"),
            Err(_) => return err("[SYS/TEMP] Temporary failure, try again later"),
        };
        // RFC 2449 §8.1.1: one session per maildrop.
        let holder = format!("{}:{}", self.ctx.hostname, self.id);
        match self.ctx.store.lock_maildrop(folder.id, &holder).await {
            Ok(true) => {}
            Ok(false) => return err("[IN-USE] Mailbox is locked by another session"),
            Err(_) => return err("[SYS/TEMP] Temporary failure, try again later"),
        }
        let lock = LockGuard {
            ctx: self.ctx.clone(),
            folder: folder.id,
            holder,
        };
        let maildrop = match Maildrop::open(&self.ctx.store, folder, &options, delete).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "opening a POP3 maildrop");
                return err("[SYS/TEMP] Temporary failure, try again later");
            }
        };
        let (n, size) = maildrop.stat();
        tracing::info!(user = %user.address, messages = n, "POP3 login");
        self.state = State::Transaction(Box::new(Transaction {
            user,
            maildrop,
            ahead: Vec::new(),
            _lock: lock,
        }));
        ok(&format!("Logged in, {n} messages ({size} octets)"))
    }

    async fn send_message(&mut self, n: u32, lines: Option<u32>) -> Reply {
        let store = self.ctx.store.clone();
        let State::Transaction(t) = &mut self.state else {
            return err("Not logged in");
        };
        let Some(m) = t.maildrop.get(n) else {
            return err("No such message");
        };
        let size = m.size;
        let raw = match t.ahead.iter().position(|(k, _)| *k == n) {
            Some(i) => t.ahead.swap_remove(i).1,
            None => {
                // This message and the ones after it, as many as fit.
                let mut wanted = vec![(n, m.message)];
                let mut bytes = size;
                for k in n + 1..=t.maildrop.messages.len() as u32 {
                    let Some(next) = t.maildrop.get(k) else {
                        continue; // deleted
                    };
                    if wanted.len() >= READ_AHEAD_MESSAGES || bytes + next.size > READ_AHEAD_BYTES {
                        break;
                    }
                    bytes += next.size;
                    wanted.push((k, next.message));
                }
                let refs = wanted.iter().map(|(_, r)| *r).collect();
                let mut got = match store.messages_bytes(refs).await {
                    Ok(g) => g.into_iter(),
                    Err(_) => return err("[SYS/TEMP] Temporary failure, try again later"),
                };
                let Some(Some(raw)) = got.next() else {
                    return err("[SYS/PERM] Message no longer exists");
                };
                let State::Transaction(t) = &mut self.state else {
                    return err("Not logged in");
                };
                t.ahead = wanted
                    .into_iter()
                    .skip(1)
                    .zip(got)
                    .filter_map(|((k, _), b)| Some((k, b?)))
                    .collect();
                raw
            }
        };
        let mut r = ok(&format!("{size} octets"));
        match lines {
            None => {
                write_multiline(&mut r.bytes, &raw);
                if let State::Transaction(t) = &mut self.state
                    && let Some(m) = t.maildrop.messages.get_mut(n as usize - 1)
                {
                    m.retrieved = true;
                }
            }
            Some(l) => write_multiline(&mut r.bytes, top(&raw, l)),
        }
        r
    }

    async fn handle_quit(&mut self) -> Reply {
        let State::Transaction(t) = &self.state else {
            return Reply {
                bytes: b"+OK Bye\r\n".to_vec(),
                close: true,
            };
        };
        // RFC 1939 §6: the UPDATE state.
        match t
            .maildrop
            .commit(&self.ctx.store, self.ctx.config.expire)
            .await
        {
            Ok(n) => {
                tracing::info!(user = %t.user.address, removed = n, "POP3 update");
                Reply {
                    bytes: format!("+OK Bye ({n} messages removed)\r\n").into_bytes(),
                    close: true,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "POP3 update failed");
                Reply {
                    bytes: b"-ERR [SYS/TEMP] Some deleted messages were not removed\r\n".to_vec(),
                    close: true,
                }
            }
        }
    }

    // ------------------------------------------------------------------ I/O

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or(std::io::ErrorKind::NotConnected)?;
        let r = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        }
        .await;
        self.out.clear();
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::new();
        }
        r
    }

    /// The next command line; pending replies go out first only when no
    /// complete command is already buffered (RFC 2449 §6.6 PIPELINING).
    /// The whole line must come within the idle timeout (RFC 1939 §3: the
    /// autologout timer), not each read of it: a client trickling a byte
    /// now and then (slowloris) is logged out like a silent one.
    async fn read_line(&mut self) -> Result<Vec<u8>, Stop> {
        let deadline = tokio::time::Instant::now() + self.ctx.config.idle_timeout;
        let mut discarding = false;
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                let line = pending[..=i].to_vec();
                self.rpos += i + 1;
                if discarding || line.len() > MAX_LINE {
                    return Err(Stop::TooLong);
                }
                return Ok(line);
            }
            if pending.len() > MAX_LINE {
                discarding = true;
                self.rpos = self.rbuf.len();
            }
            if self.flush().await.is_err() {
                return Err(Stop::Closed);
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            self.rbuf.reserve(READ_CHUNK);
            let Some(stream) = self.stream.as_mut() else {
                return Err(Stop::Closed);
            };
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, stream.read_buf(&mut self.rbuf)) => r,
                _ = self.shutdown.wait() => return Err(Stop::Shutdown),
            };
            match read {
                Err(_) => return Err(Stop::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Stop::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Why reading stopped.
#[derive(Debug)]
enum Stop {
    Closed,
    Timeout,
    Shutdown,
    TooLong,
}
