//! One IMAP session: its I/O and framing, its state, and command dispatch.
use crate::Context;
use crate::error::{ImapError, Kind, Result};
use crate::mailbox::Selected;
use crate::rewrite::{self, Prepared};
use imap_types::command::{Command, CommandBody};
use postgate_runtime::deflate::DeflateStream;
use postgate_runtime::tls::Tls;
use postgate_runtime::{Conn, Shutdown, Stream};
use postgate_store::User;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// Longest line (outside literals) accepted: long enough for a UID set of a
/// large mailbox, short enough to bound memory.
const MAX_LINE: usize = 256 * 1024;
/// Literals up to this size are read into the command; larger ones only as the
/// message of APPEND, read straight into the buffer that goes to the store.
const INLINE_LITERAL_MAX: usize = 64 * 1024;
/// Replies are written once this much is buffered, even mid-command (a FETCH of
/// 100,000 messages streams instead of piling up).
pub(crate) const FLUSH_AT: usize = 128 * 1024;
/// How long a client that has not logged in may take to send a command.
const PREAUTH_TIMEOUT: Duration = Duration::from_secs(120);

/// How long reading a command's next line or literal may take.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// This long from when its reading starts (after login: a line whole,
    /// each read of a literal afresh, so a large APPEND on a slow link is
    /// not cut while its bytes flow).
    Each(Duration),
    /// Until a fixed moment (before login: the whole command).
    Until(Instant),
}

impl Wait {
    fn deadline(self) -> Instant {
        match self {
            Wait::Each(d) => Instant::now() + d,
            Wait::Until(t) => t,
        }
    }
}
/// Read granularity; the buffer shrinks back after bursts so idle sessions stay small.
const READ_CHUNK: usize = 4 * 1024;

/// Extensions the client ENABLEd (RFC 5161).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Enabled {
    /// CONDSTORE: MODSEQ in FETCH responses (RFC 7162 §3.1).
    pub condstore: bool,
    /// QRESYNC: VANISHED instead of EXPUNGE (RFC 7162 §3.2).
    pub qresync: bool,
    /// IMAP4rev2 (RFC 9051): no \Recent, ESEARCH replies.
    pub rev2: bool,
    /// UTF8=ACCEPT (RFC 6855 §3): mailbox names in UTF-8.
    pub utf8: bool,
}

impl Enabled {
    /// Whether mailbox names travel as UTF-8 (RFC 9051 §5.1, RFC 6855 §3)
    /// rather than modified UTF-7 (RFC 3501 §5.1.3).
    pub fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }
}

/// Where the session is (RFC 9051 §3).
#[derive(Debug)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(Box<User>),
    Selected(Box<User>, Box<Selected>),
    Logout,
}

/// The connection, possibly compressed (RFC 4978).
#[derive(Debug)]
pub(crate) enum IoStream {
    Plain(Stream),
    Deflate(Box<DeflateStream<Stream>>),
}

impl IoStream {
    fn is_tls(&self) -> bool {
        match self {
            IoStream::Plain(s) => s.is_tls(),
            IoStream::Deflate(d) => d.get_ref().is_tls(),
        }
    }
}

impl AsyncRead for IoStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            IoStream::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for IoStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            IoStream::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_flush(cx),
            IoStream::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            IoStream::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    Eof,
    Timeout,
    Shutdown,
    Io,
    /// A line or literal too long to take; the session must end.
    TooLong,
}

/// What ended a wait in IDLE.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The client sent something.
    Input,
    /// The selected mailbox changed.
    Change,
    /// The server is shutting down.
    Shutdown,
    /// Something happened in another watched mailbox (NOTIFY).
    Notify,
    /// Nothing happened in time.
    Timeout,
    /// The connection is gone.
    Closed,
}

/// A complete command as read from the wire.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The command, literals inline (but for large APPEND messages).
    pub bytes: Vec<u8>,
    /// APPEND message literals over [`INLINE_LITERAL_MAX`], read aside, in
    /// order, each with where its place in `bytes` (a `{0}` or `~{0}`)
    /// begins.
    pub aside: Vec<(usize, Vec<u8>)>,
}

/// What a successful command says in its tagged OK.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub code: Option<String>,
    pub text: Option<String>,
    /// The handler already sent the tagged reply (STARTTLS, COMPRESS).
    pub sent: bool,
}

impl Done {
    pub fn code(code: impl Into<String>) -> Done {
        Done {
            code: Some(code.into()),
            text: None,
            sent: false,
        }
    }
}

/// One IMAP session.
#[derive(Debug)]
pub struct Session {
    pub(crate) stream: Option<IoStream>,
    rbuf: Vec<u8>,
    rpos: usize,
    pub(crate) out: Vec<u8>,
    pub(crate) ctx: Arc<Context>,
    pub(crate) state: State,
    pub(crate) tls: Tls,
    pub(crate) shutdown: Shutdown,
    pub(crate) peer: SocketAddr,
    /// The cleartext port (STARTTLS), as opposed to IMAPS.
    pub(crate) cleartext_port: bool,
    pub(crate) enabled: Enabled,
    /// The tag of the command being executed (ESEARCH replies name it).
    pub(crate) current_tag: String,
    /// What the client asked to hear of with NOTIFY (RFC 5465).
    pub(crate) notify: Option<Box<crate::cmd::notify::Notify>>,
    /// An IDLE command (tagged `current_tag`) accepted and not yet started.
    idle_pending: bool,
}

impl Session {
    /// A session on an accepted connection.
    pub fn new(conn: Conn, ctx: Arc<Context>) -> Session {
        Session {
            cleartext_port: !conn.stream.is_tls(),
            stream: Some(IoStream::Plain(conn.stream)),
            rbuf: Vec::new(),
            rpos: 0,
            out: Vec::new(),
            ctx,
            state: State::NotAuthenticated,
            tls: conn.tls,
            shutdown: conn.shutdown,
            peer: conn.peer,
            enabled: Enabled::default(),
            current_tag: String::new(),
            notify: None,
            idle_pending: false,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(IoStream::is_tls)
    }

    /// Whether LOGIN/AUTHENTICATE may be used now (RFC 9051 §6.2.3 LOGINDISABLED).
    pub(crate) fn login_allowed(&self) -> bool {
        self.is_tls() || self.ctx.config.allow_plaintext
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        // A temporary, not a local: the list would otherwise be held for
        // the session's life.
        self.untagged(&format!(
            "OK [CAPABILITY {}] {} Postgate IMAP ready",
            self.capabilities(),
            self.ctx.hostname
        ));
        loop {
            let timeout = match self.state {
                State::NotAuthenticated => PREAUTH_TIMEOUT.min(self.ctx.config.idle_timeout),
                _ => self.ctx.config.idle_timeout,
            };
            // RFC 5465: with NOTIFY, events are reported while the
            // client is quiet, not only in reply to its commands.
            if self.notify.is_some() && !self.input_pending() {
                if let Err(e) = self.wait_notifying(timeout).await {
                    self.bye_for(e).await;
                    break;
                }
                if matches!(self.state, State::Logout) {
                    break;
                }
            }
            let frame = match self.read_command(timeout).await {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    self.bye_for(e).await;
                    break;
                }
            };
            // Boxed: a command's future lives on the heap only while it
            // runs, so what a session holds between commands is its own
            // state, not room for the largest command (issue 17: memory per
            // idle connection).
            Box::pin(self.execute(frame)).await;
            // IDLE (RFC 2177) waits here rather than inside the command's
            // future, for the same reason: an idling session is small.
            if std::mem::take(&mut self.idle_pending) {
                let tag = self.current_tag.clone();
                let result = self.handle_idle().await;
                Box::pin(self.finish(&tag, "IDLE", result)).await;
            }
            if matches!(self.state, State::Logout) {
                break;
            }
        }
        let _ = self.flush().await;
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
    }

    /// Between commands with NOTIFY active: reports events as they come,
    /// until the client sends something (or `timeout` passes).
    async fn wait_notifying(&mut self, timeout: Duration) -> std::result::Result<(), ReadError> {
        let deadline = Instant::now() + timeout;
        // The reply to the last command goes first.
        self.flush().await?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            let reported = match self.wait_input_or_change(left).await {
                Wake::Input => return Ok(()),
                Wake::Change if self.notifies_selected() => Box::pin(self.notify_selected()).await,
                Wake::Change => Ok(()),
                Wake::Notify => Box::pin(self.notify_others()).await,
                Wake::Shutdown => return Err(ReadError::Shutdown),
                Wake::Timeout => return Err(ReadError::Timeout),
                Wake::Closed => return Err(ReadError::Eof),
            };
            if let Err(e) = reported {
                tracing::warn!(error = %e.text, "notification failed");
            }
            if matches!(self.state, State::Logout) {
                return Ok(());
            }
            self.flush().await?;
        }
    }

    async fn bye_for(&mut self, e: ReadError) {
        let text = match e {
            // RFC 9051 §5.4 autologout.
            ReadError::Timeout => "BYE Autologout; idle for too long",
            ReadError::Shutdown => "BYE [UNAVAILABLE] Server shutting down",
            ReadError::TooLong => "BYE [TOOBIG] Line or literal too long",
            ReadError::Eof | ReadError::Io => return,
        };
        self.untagged(text);
        let _ = self.flush().await;
    }

    // ---------------------------------------------------------------- output

    /// Queues an untagged response line (`* ` and CRLF added).
    pub(crate) fn untagged(&mut self, line: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Queues raw bytes.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes queued output.
    pub(crate) async fn flush(&mut self) -> std::result::Result<(), ReadError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadError::Io);
        };
        let r = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        }
        .await;
        self.out.clear();
        r.map_err(|_| ReadError::Io)
    }

    /// Tells the client how far the command has got (RFC 9585 §3:
    /// `OK [INPROGRESS ("tag" state goal)]`, NIL where unknown) and sends it
    /// at once.
    pub(crate) async fn in_progress(&mut self, state: Option<u64>, goal: Option<u64>, text: &str) {
        let n = |v: Option<u64>| v.map_or_else(|| "NIL".to_string(), |v| v.to_string());
        let line = format!(
            "OK [INPROGRESS (\"{}\" {} {})] {text}",
            self.current_tag,
            n(state),
            n(goal)
        );
        self.untagged(&line);
        let _ = self.flush().await;
    }

    /// Awaits `work`, telling the client every progress interval that it
    /// is still going (RFC 9585), with its goal if known.
    pub(crate) async fn with_progress<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
        goal: Option<u64>,
        text: &str,
    ) -> T {
        let every = self.ctx.config.progress_interval;
        let mut next = tokio::time::Instant::now() + every;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                _ = tokio::time::sleep_until(next) => {
                    self.in_progress(None, goal, text).await;
                    next = tokio::time::Instant::now()
                        + every.max(std::time::Duration::from_millis(1));
                }
            }
        }
    }

    /// Writes queued output if there is a lot of it.
    pub(crate) async fn flush_if_full(&mut self) -> std::result::Result<(), ReadError> {
        if self.out.len() >= FLUSH_AT {
            self.flush().await
        } else {
            Ok(())
        }
    }

    pub(crate) fn tagged(&mut self, tag: &str, status: &str, code: Option<&str>, text: &str) {
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(status.as_bytes());
        self.out.push(b' ');
        if let Some(c) = code {
            self.out.push(b'[');
            self.out.extend_from_slice(c.as_bytes());
            self.out.extend_from_slice(b"] ");
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    // ----------------------------------------------------------------- input

    /// Before waiting for the client: with everything owed sent, a session
    /// that now goes quiet keeps no output buffer (the next reply allocates
    /// anew).
    fn release_output(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// Reads more bytes, flushing pending output first; waits until
    /// `deadline` at most.
    async fn fill(&mut self, deadline: Instant) -> std::result::Result<(), ReadError> {
        self.flush().await?;
        self.release_output();
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > READ_CHUNK * 4 {
            self.rbuf = Vec::new();
        }
        self.rbuf.reserve(READ_CHUNK);
        let stream = self.stream.as_mut().ok_or(ReadError::Io)?;
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

    /// The next line, CRLF (or LF) included, which must arrive whole within
    /// `timeout` (see [`Session::read_line_until`]).
    pub(crate) async fn read_line(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Vec<u8>, ReadError> {
        self.read_line_until(Instant::now() + timeout).await
    }

    /// The next line, CRLF (or LF) included, by `deadline`: one deadline for
    /// the line, not one per read, so that a client trickling a byte now
    /// and then (slowloris) is logged out like a silent one.
    async fn read_line_until(
        &mut self,
        deadline: Instant,
    ) -> std::result::Result<Vec<u8>, ReadError> {
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                let line = pending[..=i].to_vec();
                self.rpos += i + 1;
                return Ok(line);
            }
            if pending.len() > MAX_LINE {
                return Err(ReadError::TooLong);
            }
            self.fill(deadline).await?;
        }
    }

    /// Reads exactly `n` bytes into `out` (or discards them), each read
    /// within `wait`.
    async fn read_exact(
        &mut self,
        out: Option<&mut Vec<u8>>,
        n: usize,
        wait: Wait,
    ) -> std::result::Result<(), ReadError> {
        let mut left = n;
        let mut out = out;
        loop {
            let pending = &self.rbuf[self.rpos..];
            let take = pending.len().min(left);
            if let Some(o) = out.as_deref_mut() {
                o.extend_from_slice(&pending[..take]);
            }
            self.rpos += take;
            left -= take;
            if left == 0 {
                return Ok(());
            }
            self.fill(wait.deadline()).await?;
        }
    }

    /// Reads one complete command: lines and their literals (RFC 9051 §4.3,
    /// RFC 7888 LITERAL+). `Ok(None)` when the command was refused while being
    /// read (a literal too big), the refusal already queued.
    ///
    /// Before login the whole command must arrive within `timeout`: nobody
    /// holds a session unauthenticated by trickling bytes (slowloris).
    /// After it, each line of the command must arrive whole within
    /// `timeout` from when the server starts reading it, and its literals
    /// are waited for read by read (a large APPEND on a slow link).
    async fn read_command(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Option<Frame>, ReadError> {
        let wait = if matches!(self.state, State::NotAuthenticated) {
            Wait::Until(Instant::now() + timeout)
        } else {
            Wait::Each(timeout)
        };
        let mut bytes = Vec::new();
        let mut aside: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut aside_total = 0usize;
        loop {
            let line = self.read_line_until(wait.deadline()).await?;
            bytes.extend_from_slice(&line);
            if bytes.len() > MAX_LINE {
                return Err(ReadError::TooLong);
            }
            let Some(lit) = rewrite::literal_at_end(&line) else {
                return Ok(Some(Frame { bytes, aside }));
            };
            let is_append = rewrite::command_name(&bytes).eq_ignore_ascii_case("APPEND");
            let tag = rewrite::tag_of(&bytes).unwrap_or("*").to_string();
            let limit = self.ctx.config.max_append_size as usize;
            let big = lit.len > INLINE_LITERAL_MAX;
            // A MULTIAPPEND (RFC 3502) may carry several messages, each up
            // to the limit; the command as a whole is held to four.
            let refusal = if big && !is_append {
                Some(format!("{tag} BAD Literal too large\r\n"))
            } else if big && lit.len > limit {
                // RFC 7889 §4: the limit, answered before the client sends the data.
                Some(format!(
                    "{tag} NO [TOOBIG] Message too large (limit {limit} octets)\r\n"
                ))
            } else if big && aside_total + lit.len > limit.saturating_mul(4) {
                Some(format!(
                    "{tag} NO [TOOBIG] Messages too large together (limit {} octets)\r\n",
                    limit.saturating_mul(4)
                ))
            } else {
                None
            };
            if let Some(refusal) = refusal {
                if lit.non_sync {
                    // The client sends the data anyway (LITERAL+): read past it
                    // to stay in step, unless it is absurd.
                    if lit.len > limit.max(INLINE_LITERAL_MAX) * 2 {
                        return Err(ReadError::TooLong);
                    }
                    self.read_exact(None, lit.len, wait).await?;
                    // And the rest of the command line.
                    self.skip_rest_of_command(wait).await?;
                }
                self.raw(refusal.as_bytes());
                return Ok(None);
            }
            if !lit.non_sync {
                // RFC 9051 §7.5: the continuation request for a synchronizing literal.
                self.raw(b"+ Ready for literal data\r\n");
                self.flush().await?;
            }
            if big {
                let mut data = Vec::with_capacity(lit.len.min(1 << 20));
                self.read_exact(Some(&mut data), lit.len, wait).await?;
                // Leave an empty literal in the command for the parser.
                let head = bytes.len() - lit.marker_len;
                bytes.truncate(head);
                bytes.extend_from_slice(if lit.binary { b"~{0}\r\n" } else { b"{0}\r\n" });
                aside_total += data.len();
                aside.push((head, data));
            } else {
                self.read_exact(Some(&mut bytes), lit.len, wait).await?;
            }
        }
    }

    /// After refusing a LITERAL+ literal, drops the rest of that command.
    async fn skip_rest_of_command(&mut self, wait: Wait) -> std::result::Result<(), ReadError> {
        loop {
            let line = self.read_line_until(wait.deadline()).await?;
            match rewrite::literal_at_end(&line) {
                Some(l) if l.non_sync && l.len <= INLINE_LITERAL_MAX => {
                    self.read_exact(None, l.len, wait).await?
                }
                Some(_) => return Err(ReadError::TooLong),
                None => return Ok(()),
            }
        }
    }

    /// Waits for client input (read into the buffer), a change to the selected
    /// mailbox, shutdown, or the timeout (IDLE). The buffer is released first:
    /// an idle session should hold almost no memory.
    pub(crate) async fn wait_input_or_change(&mut self, timeout: Duration) -> Wake {
        if self.input_pending() {
            return Wake::Input;
        }
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.release_output();
        let mut shutdown = self.shutdown.clone();
        let Some(stream) = self.stream.as_mut() else {
            return Wake::Closed;
        };
        let changes = match &mut self.state {
            State::Selected(_, sel) => Some(&mut sel.changes),
            _ => None,
        };
        let change = async {
            match changes {
                Some(rx) => {
                    let _ = rx.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let others = self.notify.as_mut().and_then(|n| n.rx.as_mut());
        let other = async {
            match others {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let mut heard = None;
        // read_buf is cancel-safe: if another branch wins, nothing was read;
        // so is recv.
        let woke = tokio::select! {
            r = stream.read_buf(&mut self.rbuf) => match r {
                Ok(0) | Err(_) => Wake::Closed,
                Ok(_) => Wake::Input,
            },
            _ = change => Wake::Change,
            c = other => {
                heard = Some(c);
                Wake::Notify
            }
            _ = shutdown.wait() => Wake::Shutdown,
            _ = tokio::time::sleep(timeout) => Wake::Timeout,
        };
        if let Some(c) = heard
            && let Some(n) = self.notify.as_mut()
        {
            n.record(c);
        }
        if woke == Wake::Change
            && let State::Selected(_, sel) = &mut self.state
        {
            sel.dirty = true;
        }
        woke
    }

    /// Discards buffered input (after STARTTLS, RFC 9051 §6.2.1).
    pub(crate) fn discard_input(&mut self) {
        self.rbuf.clear();
        self.rpos = 0;
    }

    /// Whether unread input is waiting (a pipelined command).
    pub(crate) fn input_pending(&self) -> bool {
        self.rpos < self.rbuf.len()
    }

    // -------------------------------------------------------------- dispatch

    async fn execute(&mut self, frame: Frame) {
        let tag = match rewrite::tag_of(&frame.bytes) {
            Some(t) => t.to_string(),
            None => {
                self.untagged("BAD Missing or invalid tag");
                return;
            }
        };
        self.current_tag = tag.clone();
        let prepared = match rewrite::prepare(&frame.bytes, self.saved_search()) {
            Ok(p) => p,
            Err(e) => {
                self.finish(&tag, "", Err(e)).await;
                return;
            }
        };
        let (result, name) = match prepared {
            Prepared::List(list) => (self.handle_list(list).await, "LIST"),
            Prepared::Id => (self.handle_id(), "ID"),
            Prepared::Unauthenticate => (self.handle_unauthenticate(), "UNAUTHENTICATE"),
            Prepared::CancelUpdate(tags) => (self.handle_cancelupdate(&tags), "CANCELUPDATE"),
            Prepared::Url { command, args } => (
                match self.state {
                    State::NotAuthenticated => Err(ImapError::bad("Log in first")),
                    _ => self.handle_urlauth(command, args).await,
                },
                command.name(),
            ),
            Prepared::Metadata(cmd) => {
                let name = cmd.name();
                let r = match self.state {
                    State::NotAuthenticated => Err(ImapError::bad("Log in first")),
                    _ => self.handle_metadata(cmd).await,
                };
                (r, name)
            }
            Prepared::Notify(cmd) => (
                match self.state {
                    State::NotAuthenticated => Err(ImapError::bad("Log in first")),
                    _ => self.handle_notify(cmd).await,
                },
                "NOTIFY",
            ),
            Prepared::Acl { command, args } => {
                (self.handle_acl(command, args).await, command.name())
            }
            Prepared::MultiAppend { mailbox, messages } => (
                self.handle_multiappend(&frame.bytes, mailbox, messages, frame.aside)
                    .await,
                "APPEND",
            ),
            Prepared::Command {
                bytes,
                search_return,
                empty_saved,
                status,
                fetch,
                create_use,
            } => match rewrite::decode(&bytes) {
                Ok(cmd) => {
                    let name = cmd.body.name();
                    let r = self
                        .dispatch(
                            cmd,
                            frame.aside.into_iter().next().map(|(_, m)| m),
                            Extras {
                                search_return,
                                empty_saved,
                                status,
                                fetch,
                                create_use,
                            },
                        )
                        .await;
                    (r, name)
                }
                Err(e) => (Err(e), ""),
            },
        };
        if self.idle_pending {
            return;
        }
        self.finish(&tag, name, result).await;
    }

    /// Sends what the session owes the client before the tagged reply, then the reply.
    async fn finish(&mut self, tag: &str, name: &'static str, result: Result<Done>) {
        // RFC 5465 §5: what happened meanwhile in other watched mailboxes.
        if self.notify.is_some()
            && let Err(e) = self.notify_others().await
        {
            tracing::warn!(error = %e.text, "notification failed");
        }
        // RFC 5267 §4.3: live search results changed by this command (or by
        // others, as synced) are reported before its completion.
        if let State::Selected(_, sel) = &self.state
            && !sel.live.is_empty()
            && let Err(e) = self.update_live_searches().await
        {
            tracing::warn!(error = %e.text, "live search update failed");
        }
        let counters = postgate_metrics::metrics();
        counters.command("imap", if name.is_empty() { "other" } else { name });
        if let Err(e) = &result {
            use postgate_metrics::ErrorKind;
            // RFC 5530 §3: UNAVAILABLE and INUSE say "try again later".
            let kind = match (&e.kind, e.code.as_deref()) {
                (Kind::Bad, _) => ErrorKind::Syntax,
                (Kind::No, Some(c)) if c.starts_with("UNAVAILABLE") || c.starts_with("INUSE") => {
                    ErrorKind::Temporary
                }
                (Kind::No, _) => ErrorKind::Refused,
            };
            counters.error("imap", kind);
        }
        match result {
            Ok(done) if done.sent => {}
            Ok(done) => {
                let text = done.text.unwrap_or_else(|| {
                    format!(
                        "{} completed",
                        if name.is_empty() { "Command" } else { name }
                    )
                });
                self.tagged(tag, "OK", done.code.as_deref(), &text);
            }
            Err(e) => {
                let status = match e.kind {
                    Kind::No => "NO",
                    Kind::Bad => "BAD",
                };
                self.tagged(tag, status, e.code.as_deref(), &e.text);
            }
        }
    }

    async fn dispatch(
        &mut self,
        cmd: Command<'_>,
        message: Option<Vec<u8>>,
        extras: Extras,
    ) -> Result<Done> {
        let Extras {
            search_return,
            empty_saved,
            status,
            fetch,
            create_use,
        } = extras;
        use CommandBody as C;
        let authed = !matches!(self.state, State::NotAuthenticated);
        let selected = matches!(self.state, State::Selected(..));
        match cmd.body {
            C::Capability => self.handle_capability(),
            C::Noop | C::Check => {
                if selected {
                    self.sync(true).await?;
                }
                Ok(Done::default())
            }
            C::Logout => {
                self.untagged("BYE Logging out");
                self.state = State::Logout;
                Ok(Done::default())
            }
            C::StartTLS => self.handle_starttls(cmd.tag.inner()).await,
            C::Authenticate {
                mechanism,
                initial_response,
            } if !authed => self.handle_authenticate(mechanism, initial_response).await,
            C::Login { username, password } if !authed => {
                self.handle_login(username, password).await
            }
            C::Authenticate { .. } | C::Login { .. } => {
                Err(ImapError::bad("Already authenticated"))
            }
            _ if !authed => Err(ImapError::bad("Log in first")),
            C::Select {
                mailbox,
                parameters,
            } => self.handle_select(mailbox, parameters, false).await,
            C::Examine {
                mailbox,
                parameters,
            } => self.handle_select(mailbox, parameters, true).await,
            C::Create { mailbox } => self.handle_create(mailbox, create_use).await,
            C::Delete { mailbox } => self.handle_delete(mailbox).await,
            C::Rename { from, to } => self.handle_rename(from, to).await,
            C::Subscribe { mailbox } => self.handle_subscribe(mailbox, true).await,
            C::Unsubscribe { mailbox } => self.handle_subscribe(mailbox, false).await,
            C::List {
                reference,
                mailbox_wildcard,
            } => {
                self.handle_list(rewrite::ListCommand::simple(
                    &reference,
                    &mailbox_wildcard,
                    false,
                ))
                .await
            }
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.handle_list(rewrite::ListCommand::simple(
                    &reference,
                    &mailbox_wildcard,
                    true,
                ))
                .await
            }
            C::Status {
                mailbox,
                item_names,
            } => self.handle_status(mailbox, &item_names, status).await,
            C::Append {
                mailbox,
                flags,
                date,
                message: data,
            } => {
                self.handle_append(mailbox, flags, date, data, message)
                    .await
            }
            C::Namespace => self.handle_namespace(),
            C::Id { .. } => self.handle_id(),
            C::Enable { capabilities } => self.handle_enable(capabilities).await,
            C::Compress { .. } => self.handle_compress(cmd.tag.inner()).await,
            C::GetQuota { root } => self.handle_getquota(root.as_ref()).await,
            C::GetQuotaRoot { mailbox } => self.handle_getquotaroot(mailbox).await,
            C::SetQuota { .. } => Err(ImapError::no(
                Some("NOPERM"),
                "Quotas are set by the administrator",
            )),
            C::Idle => {
                // Run by `run` once this command's future is gone.
                self.idle_pending = true;
                Ok(Done::default())
            }
            _ if !selected => Err(ImapError::not_selected()),
            C::Unselect => self.handle_close(false).await,
            C::Close => self.handle_close(true).await,
            C::Expunge => self.handle_expunge(None).await,
            C::ExpungeUid { sequence_set } => self.handle_expunge(Some(sequence_set)).await,
            C::Search {
                criteria,
                uid,
                charset,
            } => {
                check_charset(charset.as_ref().map(|c| c.as_ref()))?;
                self.handle_search(criteria, uid, search_return, empty_saved)
                    .await
            }
            C::Sort {
                sort_criteria,
                search_criteria,
                uid,
                charset,
            } => {
                check_charset(Some(charset.as_ref()))?;
                self.handle_sort(sort_criteria, search_criteria, uid, search_return)
                    .await
            }
            C::Thread {
                algorithm,
                search_criteria,
                uid,
                charset,
            } => {
                check_charset(Some(charset.as_ref()))?;
                self.handle_thread(algorithm, search_criteria, uid, empty_saved)
                    .await
            }
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                if empty_saved {
                    return Ok(Done::default());
                }
                self.handle_fetch(sequence_set, macro_or_item_names, uid, modifiers, fetch)
                    .await
            }
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                if empty_saved {
                    return Ok(Done::default());
                }
                self.handle_store(sequence_set, kind, response, flags, uid, modifiers)
                    .await
            }
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.handle_copy(sequence_set, mailbox, uid, false, empty_saved)
                    .await
            }
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.handle_copy(sequence_set, mailbox, uid, true, empty_saved)
                    .await
            }
        }
    }

    /// The saved SEARCHRES result (RFC 5182) as UIDs, if any.
    fn saved_search(&self) -> Option<rewrite::Saved<'_>> {
        match &self.state {
            State::Selected(_, s) => Some(s.saved_for_rewrite()),
            _ => None,
        }
    }

    /// The selected mailbox, or BAD.
    pub(crate) fn selected_mut(&mut self) -> Result<&mut Selected> {
        match &mut self.state {
            State::Selected(_, s) => Ok(s),
            _ => Err(ImapError::not_selected()),
        }
    }

    /// Turns CONDSTORE on for a CONDSTORE enabling command (RFC 7162 §3.1):
    /// the first time, with a mailbox selected, the client is told its
    /// HIGHESTMODSEQ.
    pub(crate) fn enable_condstore(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let State::Selected(_, sel) = &self.state {
            let line = format!("OK [HIGHESTMODSEQ {}] Highest", sel.highest_modseq);
            self.untagged(&line);
        }
    }

    /// Leaves the selected state for the authenticated one.
    pub(crate) fn deselect(&mut self) {
        if let State::Selected(u, _) = std::mem::replace(&mut self.state, State::NotAuthenticated) {
            self.state = State::Authenticated(u);
        }
    }

    /// The logged-in user.
    pub(crate) fn user(&self) -> Result<&User> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Ok(u),
            _ => Err(ImapError::bad("Log in first")),
        }
    }
}

/// SEARCH, SORT and THREAD strings are compared as Unicode text; the charsets
/// they may come in are those every client uses (RFC 9051 §6.4.4: others get
/// NO [BADCHARSET] with the list).
fn check_charset(charset: Option<&str>) -> Result<()> {
    match charset {
        None => Ok(()),
        Some(c)
            if ["UTF-8", "US-ASCII", "UTF8"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(c)) =>
        {
            Ok(())
        }
        Some(_) => Err(ImapError::no(
            Some("BADCHARSET (UTF-8 US-ASCII)"),
            "Unsupported charset",
        )),
    }
}

/// What the command rewrite took out of a command for the session to act on
/// (rewrite::Prepared::Command).
struct Extras {
    search_return: Option<rewrite::SearchReturn>,
    empty_saved: bool,
    status: rewrite::StatusExtras,
    fetch: rewrite::FetchExtras,
    create_use: Option<Vec<String>>,
}
