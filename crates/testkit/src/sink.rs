//! A scripted SMTP server standing for "the Internet" in outbound tests.
//!
//! [`Sink::start`] listens on 127.0.0.1:0 and serves every connection on its own
//! thread (RFC 5321, with PIPELINING, STARTTLS, AUTH, DSN, CHUNKING, 8BITMIME and
//! SMTPUTF8 as [`SinkOptions`] says). A delivery agent under test connects to it;
//! the test scripts the replies it wants ([`Sink::script_rcpt`],
//! [`Sink::script_data`], [`Sink::script_mail`]) and then looks at what was
//! accepted ([`Sink::received`], [`Sink::wait_for`]).
//!
//! Replies given to the script methods are whole reply lines such as
//! `"550 5.1.1 no such user"`; a reply with several lines is written with `\n`
//! between its lines, each with its own code (`"451-first\n451 second"`).

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a connection may wait for the client before the sink hangs up.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The SIZE the sink advertises (it does not enforce it).
const MAX_SIZE: u64 = 104_857_600;

/// The largest BDAT chunk the sink reads; a larger one closes the connection.
const MAX_CHUNK: u64 = 2 * MAX_SIZE;

/// How long the sink waits for the client to close after a non-2xx greeting.
const LINGER: Duration = Duration::from_secs(5);

/// What a [`Sink`] advertises and how it behaves.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Advertise and implement STARTTLS with a self-signed certificate for
    /// [`SinkOptions::name`] (or [`SinkOptions::identity`]). Default true.
    pub starttls: bool,
    /// The certificate STARTTLS presents instead of the self-signed one,
    /// e.g. one from a [`crate::ca::TestCa`]. Default `None`.
    pub identity: Option<crate::ca::Identity>,
    /// Advertise DSN (RFC 3461). Default false. (DSN parameters are recorded
    /// whether or not it is advertised.)
    pub dsn: bool,
    /// Advertise PIPELINING. Default true. (The sink copes with pipelined
    /// commands either way.)
    pub pipelining: bool,
    /// Advertise CHUNKING and accept BDAT (RFC 3030). Default false; when
    /// false, BDAT is an unknown command.
    pub chunking: bool,
    /// Advertise 8BITMIME and SMTPUTF8. Default true.
    pub eight_bit: bool,
    /// Advertise AUTH PLAIN LOGIN (only under TLS when `starttls` is set) and
    /// require these (user, password) credentials before MAIL
    /// (`530 5.7.0` otherwise). Default `None`.
    pub auth: Option<(String, String)>,
    /// Sleep this long before answering the end of DATA or BDAT LAST (a slow
    /// sink). Default zero.
    pub data_delay: Duration,
    /// A whole reply line to greet with instead of `"220 <name> ESMTP"`, e.g.
    /// `"554 5.3.2 busy"`; unless it is 2xx, the sink then closes the
    /// connection. Default `None`.
    pub greeting: Option<String>,
    /// The host name in the greeting, the EHLO reply and the certificate.
    /// Default `"sink.test"`.
    pub name: String,
    /// The port to listen on (on 127.0.0.1); default 0, any free port. A
    /// test sets it to start a sink where a refused connection was before.
    pub port: u16,
}

impl Default for SinkOptions {
    fn default() -> SinkOptions {
        SinkOptions {
            starttls: true,
            identity: None,
            dsn: false,
            pipelining: true,
            chunking: false,
            eight_bit: true,
            auth: None,
            data_delay: Duration::ZERO,
            greeting: None,
            name: "sink.test".to_string(),
            port: 0,
        }
    }
}

/// One accepted transaction: the end of its data got a 2xx reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse path without `<>` (empty for the null reverse path).
    pub mail_from: String,
    /// MAIL FROM parameters as given, e.g. `["SIZE=123", "RET=HDRS"]`.
    pub mail_params: Vec<String>,
    /// Accepted recipients (address without `<>`) with their RCPT parameters,
    /// in the order they were given.
    pub rcpts: Vec<(String, Vec<String>)>,
    /// The message: dot-unstuffed for DATA, without the final `".\r\n"`.
    pub data: Vec<u8>,
    /// The 1-based number of the connection it came on.
    pub connection: u64,
    /// Whether the connection was under TLS at the time.
    pub tls: bool,
    /// The user the client authenticated as, if it did.
    pub authenticated: Option<String>,
    /// The EHLO or HELO argument.
    pub helo: String,
}

/// A running scripted SMTP server; stops accepting and closes its
/// connections when dropped.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What the accept thread, the connection threads and the [`Sink`] share.
struct Shared {
    opts: SinkOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    /// Open connections by number, to shut them down when the sink stops.
    live: Mutex<HashMap<u64, TcpStream>>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Bumped whenever `received` changes.
    generation: u64,
    connections: u64,
    mail_script: VecDeque<String>,
    rcpt_script: HashMap<String, VecDeque<String>>,
    data_script: VecDeque<String>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("addr", &self.addr)
            .field("options", &self.shared.opts)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Starts a sink on 127.0.0.1:0; panics if it cannot.
    pub fn start(opts: SinkOptions) -> Sink {
        let tls = opts.starttls.then(|| match &opts.identity {
            Some(identity) => identity.server_config(),
            None => crate::ca::Identity::self_signed(&[&opts.name]).server_config(),
        });
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let shared = Arc::new(Shared {
            opts,
            tls,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sink-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("spawn sink accept thread")
        };
        Sink {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replies for RCPT TO of `address` (case-insensitive, with or without
    /// `<>`), used in order, one per RCPT of that address; when used up, the
    /// default `"250 2.1.5 OK"`. A 4xx or 5xx reply rejects that recipient.
    /// Appended to replies scripted earlier and not used yet.
    pub fn script_rcpt(&self, address: &str, replies: &[&str]) {
        let key = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        self.shared
            .state()
            .rcpt_script
            .entry(key)
            .or_default()
            .extend(replies.iter().map(|r| r.to_string()));
    }

    /// Replies for the end of DATA (or BDAT LAST), used in order, one per
    /// transaction; when used up, `"250 2.0.0 OK queued as <n>"` (`n` the
    /// message's number in [`Sink::received`]). Only a 2xx reply records the
    /// message. Appended to replies scripted earlier and not used yet.
    pub fn script_data(&self, replies: &[&str]) {
        self.shared
            .state()
            .data_script
            .extend(replies.iter().map(|r| r.to_string()));
    }

    /// Replies for MAIL FROM, used in order; when used up, `"250 2.1.0 OK"`.
    /// A 4xx or 5xx reply means the transaction did not start. Appended to
    /// replies scripted earlier and not used yet.
    pub fn script_mail(&self, replies: &[&str]) {
        self.shared
            .state()
            .mail_script
            .extend(replies.iter().map(|r| r.to_string()));
    }

    /// The transactions accepted so far, in order of acceptance.
    pub fn received(&self) -> Vec<Received> {
        self.shared.state().received.clone()
    }

    /// How many TCP connections it has accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.state().connections
    }

    /// Waits until `pred(&received)` is true or `timeout` passes; returns the
    /// last snapshot of [`Sink::received`] and whether `pred` held.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> (Vec<Received>, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let (snapshot, generation) = {
                let st = self.shared.state();
                (st.received.clone(), st.generation)
            };
            if pred(&snapshot) {
                return (snapshot, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (snapshot, false);
            }
            let guard = self.shared.state();
            let _ = self
                .shared
                .changed
                .wait_timeout_while(guard, left, |st| st.generation == generation);
        }
    }

    /// Writes each received message's data to `dir/NNNN.eml` (1-based,
    /// zero-padded to 4 digits, e.g. `0001.eml`), creating `dir` if needed, and
    /// returns the paths in order; panics if it cannot write.
    pub fn write_messages(&self, dir: &Path) -> Vec<PathBuf> {
        std::fs::create_dir_all(dir).expect("create message directory");
        self.received()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let path = dir.join(format!("{:04}.eml", i + 1));
                std::fs::write(&path, &r.data).expect("write message");
                path
            })
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, s) in self.shared.live().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let number = {
            let mut st = shared.state();
            st.connections += 1;
            st.connections
        };
        if let Ok(clone) = stream.try_clone() {
            shared.live().insert(number, clone);
        }
        let shared2 = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("sink-conn-{number}"))
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
                let _ = stream.set_nodelay(true);
                let mut session = Session {
                    shared: &shared2,
                    reader: BufReader::new(Conn::Plain(stream)),
                    number,
                    tls: false,
                    helo: None,
                    authenticated: None,
                    tx: None,
                };
                let _ = session.run();
                session.reader.get_mut().close();
                shared2.live().remove(&number);
            });
        if spawned.is_err() {
            shared.live().remove(&number);
        }
    }
}

/// The connection, plain or under TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    /// Only while being upgraded.
    Closed,
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(s) => Some(s),
            Conn::Tls(s) => Some(&s.sock),
            Conn::Closed => None,
        }
    }

    /// Sends close_notify under TLS and shuts the socket down for writing.
    fn close(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        if let Some(t) = self.tcp() {
            let _ = t.shutdown(Shutdown::Write);
        }
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Closed => Err(not_connected()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Closed => Err(not_connected()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Closed => Err(not_connected()),
        }
    }
}

/// A mail transaction in progress.
struct Tx {
    mail_from: String,
    mail_params: Vec<String>,
    rcpts: Vec<(String, Vec<String>)>,
    /// The BDAT chunks so far.
    chunks: Option<Vec<u8>>,
}

/// One SMTP connection.
struct Session<'a> {
    shared: &'a Shared,
    reader: BufReader<Conn>,
    number: u64,
    tls: bool,
    helo: Option<String>,
    authenticated: Option<String>,
    tx: Option<Tx>,
}

fn positive(reply: &str) -> bool {
    reply.starts_with('2')
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "client closed the connection")
}

/// `s` without the case-insensitive ASCII `prefix`.
fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let n = prefix.len();
    (s.len() >= n && s.as_bytes()[..n].eq_ignore_ascii_case(prefix.as_bytes())).then(|| &s[n..])
}

/// Parses `<address> PARAM PARAM…` (after "FROM:" or "TO:"), leniently: a
/// space before `<` and a missing `<>` are tolerated; a source route is dropped.
fn parse_path(s: &str) -> Option<(String, Vec<String>)> {
    let s = s.trim_start();
    let (addr, rest) = if let Some(inner) = s.strip_prefix('<') {
        let end = inner.find('>')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        (&s[..end], &s[end..])
    };
    let addr = match addr.strip_prefix('@') {
        Some(route) => route.split_once(':').map(|(_, a)| a)?,
        None => addr,
    };
    let params = rest.split_whitespace().map(str::to_string).collect();
    Some((addr.to_string(), params))
}

impl Session<'_> {
    /// Writes a reply (lines separated by `\n`), CRLF-terminated, and flushes.
    fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut out = String::with_capacity(text.len() + 2);
        for line in text.split('\n') {
            out.push_str(line.trim_end_matches('\r'));
            out.push_str("\r\n");
        }
        let conn = self.reader.get_mut();
        conn.write_all(out.as_bytes())?;
        conn.flush()
    }

    /// Reads one line with its line end; `None` at EOF.
    fn raw_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            return Ok(None);
        }
        Ok(Some(line))
    }

    /// Reads one line without its line end (CRLF or bare LF); an error at EOF.
    fn line(&mut self) -> io::Result<String> {
        let line = self.raw_line()?.ok_or_else(eof)?;
        let s = String::from_utf8_lossy(&line);
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    }

    fn run(&mut self) -> io::Result<()> {
        let opts = &self.shared.opts;
        let greeting = opts
            .greeting
            .clone()
            .unwrap_or_else(|| format!("220 {} ESMTP", opts.name));
        self.reply(&greeting)?;
        if !positive(&greeting) {
            self.linger();
            return Ok(());
        }
        loop {
            let line = self.line()?;
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v, a.trim()),
                None => (line.as_str(), ""),
            };
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => self.ehlo(arg)?,
                "HELO" => self.helo(arg)?,
                "STARTTLS" if self.shared.tls.is_some() => self.starttls(arg)?,
                "AUTH" if self.shared.opts.auth.is_some() => self.auth(arg)?,
                "MAIL" => self.mail(arg)?,
                "RCPT" => self.rcpt(arg)?,
                "DATA" => self.data()?,
                "BDAT" if self.shared.opts.chunking => self.bdat(arg)?,
                "RSET" => {
                    self.tx = None;
                    self.reply("250 2.0.0 OK")?;
                }
                "NOOP" => self.reply("250 2.0.0 OK")?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => self.reply("500 5.5.2 Command not recognized")?,
            }
        }
    }

    /// After a non-2xx greeting: stop writing, and wait (a while) for the
    /// client to close so that the greeting is not lost to a reset.
    fn linger(&mut self) {
        let conn = self.reader.get_mut();
        conn.close();
        if let Some(t) = conn.tcp() {
            let _ = t.set_read_timeout(Some(LINGER));
        }
        let deadline = Instant::now() + LINGER;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn ehlo(&mut self, arg: &str) -> io::Result<()> {
        if arg.is_empty() {
            return self.reply("501 5.5.4 Syntax: EHLO domain");
        }
        self.helo = Some(arg.to_string());
        self.tx = None;
        let opts = &self.shared.opts;
        let mut lines = vec![opts.name.clone()];
        if opts.pipelining {
            lines.push("PIPELINING".into());
        }
        if opts.eight_bit {
            lines.push("8BITMIME".into());
            lines.push("SMTPUTF8".into());
        }
        if opts.dsn {
            lines.push("DSN".into());
        }
        if opts.chunking {
            lines.push("CHUNKING".into());
        }
        if self.shared.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        if opts.auth.is_some() && (self.tls || !opts.starttls) {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push(format!("SIZE {MAX_SIZE}"));
        let last = lines.len() - 1;
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect();
        self.reply(&text.join("\n"))
    }

    fn helo(&mut self, arg: &str) -> io::Result<()> {
        if arg.is_empty() {
            return self.reply("501 5.5.4 Syntax: HELO domain");
        }
        self.helo = Some(arg.to_string());
        self.tx = None;
        let text = format!("250 {}", self.shared.opts.name);
        self.reply(&text)
    }

    fn starttls(&mut self, arg: &str) -> io::Result<()> {
        if self.tls {
            return self.reply("503 5.5.1 TLS already active");
        }
        if !arg.is_empty() {
            return self.reply("501 5.5.4 Syntax: STARTTLS");
        }
        let Some(config) = self.shared.tls.clone() else {
            return self.reply("500 5.5.2 Command not recognized");
        };
        self.reply("220 2.0.0 Ready to start TLS")?;
        // Anything pipelined after STARTTLS is dropped (RFC 3207 §4.2): the
        // client must wait for the handshake.
        let old = std::mem::replace(&mut self.reader, BufReader::new(Conn::Closed));
        let Conn::Plain(tcp) = old.into_inner() else {
            return Err(not_connected());
        };
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            let (read, written) = tls.conn.complete_io(&mut tls.sock)?;
            if read == 0 && written == 0 && tls.conn.is_handshaking() {
                return Err(eof());
            }
        }
        self.reader = BufReader::new(Conn::Tls(Box::new(tls)));
        self.tls = true;
        self.helo = None;
        self.authenticated = None;
        self.tx = None;
        Ok(())
    }

    fn auth(&mut self, arg: &str) -> io::Result<()> {
        let Some((user, password)) = self.shared.opts.auth.clone() else {
            return self.reply("500 5.5.2 Command not recognized");
        };
        if self.shared.opts.starttls && !self.tls {
            return self
                .reply("538 5.7.11 Encryption required for requested authentication mechanism");
        }
        if self.helo.is_none() {
            return self.reply("503 5.5.1 EHLO first");
        }
        if self.authenticated.is_some() {
            return self.reply("503 5.5.1 Already authenticated");
        }
        if self.tx.is_some() {
            return self.reply("503 5.5.1 AUTH not permitted during a mail transaction");
        }
        let mut words = arg.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        let (authcid, given) = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(r) => r,
                    None => {
                        self.reply("334 ")?;
                        self.line()?
                    }
                };
                let Some(decoded) = self.sasl_decode(&response)? else {
                    return Ok(());
                };
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                let [_authzid, authcid, passwd] = parts.as_slice() else {
                    return self.reply("535 5.7.8 Authentication credentials invalid");
                };
                (
                    String::from_utf8_lossy(authcid).into_owned(),
                    String::from_utf8_lossy(passwd).into_owned(),
                )
            }
            "LOGIN" => {
                let response = match initial {
                    Some(r) => r,
                    None => {
                        self.reply("334 VXNlcm5hbWU6")?;
                        self.line()?
                    }
                };
                let Some(name) = self.sasl_decode(&response)? else {
                    return Ok(());
                };
                self.reply("334 UGFzc3dvcmQ6")?;
                let response = self.line()?;
                let Some(passwd) = self.sasl_decode(&response)? else {
                    return Ok(());
                };
                (
                    String::from_utf8_lossy(&name).into_owned(),
                    String::from_utf8_lossy(&passwd).into_owned(),
                )
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type"),
        };
        if authcid == user && given == password {
            self.authenticated = Some(authcid);
            self.reply("235 2.7.0 Authentication successful")
        } else {
            self.reply("535 5.7.8 Authentication credentials invalid")
        }
    }

    /// Decodes a SASL response; on "*" or bad base64, replies and returns `None`.
    fn sasl_decode(&mut self, response: &str) -> io::Result<Option<Vec<u8>>> {
        let response = response.trim();
        if response == "*" {
            self.reply("501 5.0.0 Authentication cancelled")?;
            return Ok(None);
        }
        if response == "=" {
            return Ok(Some(Vec::new()));
        }
        match base64_decode(response) {
            Some(d) => Ok(Some(d)),
            None => {
                self.reply("501 5.5.2 Invalid base64 data")?;
                Ok(None)
            }
        }
    }

    fn mail(&mut self, arg: &str) -> io::Result<()> {
        if self.helo.is_none() {
            return self.reply("503 5.5.1 EHLO or HELO first");
        }
        if self.shared.opts.auth.is_some() && self.authenticated.is_none() {
            return self.reply("530 5.7.0 Authentication required");
        }
        if self.tx.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        let Some((mail_from, mail_params)) = strip_prefix_ci(arg, "FROM:").and_then(parse_path)
        else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>");
        };
        let reply = self
            .shared
            .state()
            .mail_script
            .pop_front()
            .unwrap_or_else(|| "250 2.1.0 OK".to_string());
        if positive(&reply) {
            self.tx = Some(Tx {
                mail_from,
                mail_params,
                rcpts: Vec::new(),
                chunks: None,
            });
        }
        self.reply(&reply)
    }

    fn rcpt(&mut self, arg: &str) -> io::Result<()> {
        if self.tx.is_none() {
            return self.reply("503 5.5.1 MAIL first");
        }
        let Some((address, params)) = strip_prefix_ci(arg, "TO:")
            .and_then(parse_path)
            .filter(|(a, _)| !a.is_empty())
        else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        let reply = self
            .shared
            .state()
            .rcpt_script
            .get_mut(&address.to_lowercase())
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| "250 2.1.5 OK".to_string());
        if positive(&reply)
            && let Some(tx) = self.tx.as_mut()
        {
            tx.rcpts.push((address, params));
        }
        self.reply(&reply)
    }

    fn data(&mut self) -> io::Result<()> {
        match &self.tx {
            None => return self.reply("503 5.5.1 MAIL first"),
            Some(tx) if tx.rcpts.is_empty() => return self.reply("554 5.5.1 No valid recipients"),
            Some(tx) if tx.chunks.is_some() => return self.reply("503 5.5.1 DATA after BDAT"),
            Some(_) => {}
        }
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")?;
        let mut data = Vec::new();
        loop {
            let line = self.raw_line()?.ok_or_else(eof)?;
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(line);
        }
        self.finish(data)
    }

    fn bdat(&mut self, arg: &str) -> io::Result<()> {
        let words: Vec<&str> = arg.split_whitespace().collect();
        let (size, last) = match words.as_slice() {
            [n] => (n.parse::<u64>().ok(), false),
            [n, l] if l.eq_ignore_ascii_case("LAST") => (n.parse::<u64>().ok(), true),
            _ => (None, false),
        };
        let Some(size) = size else {
            return self.reply("501 5.5.4 Syntax: BDAT size [LAST]");
        };
        if size > MAX_CHUNK {
            self.reply("552 5.3.4 Chunk too big")?;
            return Err(eof());
        }
        let mut chunk = Vec::new();
        (&mut self.reader).take(size).read_to_end(&mut chunk)?;
        if chunk.len() as u64 != size {
            return Err(eof());
        }
        let Some(tx) = self.tx.as_mut() else {
            return self.reply("503 5.5.1 MAIL first");
        };
        if tx.rcpts.is_empty() {
            return self.reply("554 5.5.1 No valid recipients");
        }
        let chunks = tx.chunks.get_or_insert_with(Vec::new);
        chunks.extend_from_slice(&chunk);
        if last {
            let data = std::mem::take(chunks);
            self.finish(data)
        } else {
            self.reply(&format!("250 2.0.0 {size} octets received"))
        }
    }

    /// Answers the end of the data of the current transaction.
    fn finish(&mut self, data: Vec<u8>) -> io::Result<()> {
        let Some(tx) = self.tx.take() else {
            return self.reply("503 5.5.1 MAIL first");
        };
        let delay = self.shared.opts.data_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let reply = {
            let mut st = self.shared.state();
            let n = st.received.len() + 1;
            let reply = st
                .data_script
                .pop_front()
                .unwrap_or_else(|| format!("250 2.0.0 OK queued as {n}"));
            if positive(&reply) {
                st.received.push(Received {
                    mail_from: tx.mail_from,
                    mail_params: tx.mail_params,
                    rcpts: tx.rcpts,
                    data,
                    connection: self.number,
                    tls: self.tls,
                    authenticated: self.authenticated.clone(),
                    helo: self.helo.clone().unwrap_or_default(),
                });
                st.generation += 1;
                self.shared.changed.notify_all();
            }
            reply
        };
        self.reply(&reply)
    }
}

/// Decodes standard base64 (padding optional); `None` if it is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in body.as_bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawClient;

    fn b64(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.len();
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= n {
                    out.push(ALPHABET[(v >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn plain_opts() -> SinkOptions {
        SinkOptions {
            starttls: false,
            ..SinkOptions::default()
        }
    }

    /// Connects, reads the greeting and sends EHLO; returns the client and the
    /// EHLO reply lines.
    fn connect(sink: &Sink) -> (RawClient, Vec<String>) {
        let mut c = RawClient::connect(sink.addr());
        let greeting = c.reply();
        assert_eq!(greeting, vec!["220 sink.test ESMTP".to_string()]);
        c.send(b"EHLO client.test\r\n");
        let ehlo = c.reply();
        (c, ehlo)
    }

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"\0user\0pass word"] {
            assert_eq!(base64_decode(&b64(data)).as_deref(), Some(data));
        }
        assert_eq!(base64_decode("VXNlcm5hbWU6").unwrap(), b"Username:");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("ab!c").is_none());
    }

    #[test]
    fn ehlo_shows_the_options() {
        let sink = Sink::start(SinkOptions::default());
        let (mut c, ehlo) = connect(&sink);
        assert_eq!(
            ehlo,
            [
                "250-sink.test",
                "250-PIPELINING",
                "250-8BITMIME",
                "250-SMTPUTF8",
                "250-STARTTLS",
                "250-ENHANCEDSTATUSCODES",
                "250 SIZE 104857600"
            ]
        );
        assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
        assert!(c.is_closed());

        let sink = Sink::start(SinkOptions {
            starttls: false,
            dsn: true,
            pipelining: false,
            chunking: true,
            eight_bit: false,
            auth: Some(("u".into(), "p".into())),
            ..SinkOptions::default()
        });
        let (mut c, ehlo) = connect(&sink);
        assert_eq!(
            ehlo,
            [
                "250-sink.test",
                "250-DSN",
                "250-CHUNKING",
                "250-AUTH PLAIN LOGIN",
                "250-ENHANCEDSTATUSCODES",
                "250 SIZE 104857600"
            ]
        );
        assert_eq!(c.cmd("STARTTLS"), "500 5.5.2 Command not recognized");
        assert_eq!(c.cmd("VRFY bob"), "500 5.5.2 Command not recognized");
        assert_eq!(c.cmd("noop"), "250 2.0.0 OK");
        assert_eq!(sink.connections(), 1);
    }

    #[test]
    fn pipelined_transaction_with_a_rejected_recipient() {
        let sink = Sink::start(plain_opts());
        sink.script_rcpt("<Carol@X.test>", &["550 5.1.1 no such user"]);
        let (mut c, _) = connect(&sink);
        c.send(
            b"MAIL FROM:<alice@a.test> SIZE=123 BODY=8BITMIME\r\n\
              RCPT TO:<bob@x.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@x.test\r\n\
              RCPT TO:<carol@x.test>\r\n\
              DATA\r\n",
        );
        assert_eq!(c.reply(), ["250 2.1.0 OK"]);
        assert_eq!(c.reply(), ["250 2.1.5 OK"]);
        assert_eq!(c.reply(), ["550 5.1.1 no such user"]);
        assert_eq!(c.reply()[0], "354 Start mail input; end with <CRLF>.<CRLF>");
        c.send(b"Subject: hi\r\n\r\n..dot\r\n..\r\nlast\r\n.\r\nNOOP\r\n");
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 1"]);
        assert_eq!(c.reply(), ["250 2.0.0 OK"]);
        let got = sink.received();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(r.mail_from, "alice@a.test");
        assert_eq!(r.mail_params, ["SIZE=123", "BODY=8BITMIME"]);
        assert_eq!(
            r.rcpts,
            [(
                "bob@x.test".to_string(),
                vec![
                    "NOTIFY=SUCCESS".to_string(),
                    "ORCPT=rfc822;bob@x.test".to_string()
                ]
            )]
        );
        assert_eq!(r.data, b"Subject: hi\r\n\r\n.dot\r\n.\r\nlast\r\n");
        assert_eq!(r.connection, 1);
        assert!(!r.tls);
        assert_eq!(r.authenticated, None);
        assert_eq!(r.helo, "client.test");

        // The script is used up: carol is accepted now.
        c.send(b"MAIL FROM:<>\r\nRCPT TO:<carol@x.test>\r\nDATA\r\n");
        assert_eq!(c.reply(), ["250 2.1.0 OK"]);
        assert_eq!(c.reply(), ["250 2.1.5 OK"]);
        assert!(c.reply()[0].starts_with("354"));
        c.send(b"x\r\n.\r\n");
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 2"]);
        assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
        let (got, ok) = sink.wait_for(Duration::from_secs(5), |r| r.len() == 2);
        assert!(ok, "{got:?}");
        assert_eq!(got[1].mail_from, "");
        assert_eq!(got[1].rcpts[0].0, "carol@x.test");
    }

    #[test]
    fn sequence_errors() {
        let sink = Sink::start(plain_opts());
        let mut c = RawClient::connect(sink.addr());
        c.reply();
        assert_eq!(
            c.cmd("MAIL FROM:<a@b.test>"),
            "503 5.5.1 EHLO or HELO first"
        );
        assert_eq!(c.cmd("HELO client.test"), "250 sink.test");
        assert_eq!(c.cmd("RCPT TO:<b@c.test>"), "503 5.5.1 MAIL first");
        assert_eq!(c.cmd("DATA"), "503 5.5.1 MAIL first");
        assert_eq!(c.cmd("mail from: <a@b.test>"), "250 2.1.0 OK");
        assert_eq!(
            c.cmd("MAIL FROM:<a@b.test>"),
            "503 5.5.1 Nested MAIL command"
        );
        assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients");
        assert_eq!(c.cmd("RCPT TO:<>"), "501 5.5.4 Syntax: RCPT TO:<address>");
        assert_eq!(c.cmd("BDAT 3 LAST"), "500 5.5.2 Command not recognized");
        assert_eq!(c.cmd("RSET"), "250 2.0.0 OK");
        assert_eq!(c.cmd("RCPT TO:<b@c.test>"), "503 5.5.1 MAIL first");
        // Bare LF line ends are tolerated.
        c.send(b"MAIL FROM:<a@b.test>\nRCPT TO:<b@c.test>\nDATA\n");
        assert_eq!(c.reply(), ["250 2.1.0 OK"]);
        assert_eq!(c.reply(), ["250 2.1.5 OK"]);
        assert!(c.reply()[0].starts_with("354"));
        c.send(b"line\n.\n");
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 1"]);
        assert_eq!(sink.received()[0].data, b"line\n");
        assert_eq!(sink.received()[0].helo, "client.test");
    }

    #[test]
    fn scripted_mail_and_data_replies() {
        let sink = Sink::start(plain_opts());
        sink.script_mail(&["451 4.3.0 not now"]);
        sink.script_data(&["451 4.3.0 try later"]);
        let (mut c, _) = connect(&sink);
        assert_eq!(c.cmd("MAIL FROM:<a@a.test>"), "451 4.3.0 not now");
        assert_eq!(c.cmd("RCPT TO:<b@b.test>"), "503 5.5.1 MAIL first");
        for (i, expect) in ["451 4.3.0 try later", "250 2.0.0 OK queued as 1"]
            .iter()
            .enumerate()
        {
            c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
            assert_eq!(c.reply(), ["250 2.1.0 OK"]);
            assert_eq!(c.reply(), ["250 2.1.5 OK"]);
            assert!(c.reply()[0].starts_with("354"));
            c.send(format!("message {i}\r\n.\r\n").as_bytes());
            assert_eq!(c.reply(), [*expect]);
        }
        let got = sink.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, b"message 1\r\n");

        // Multi-line scripted reply.
        sink.script_data(&["452-4.3.1 first\n452 4.3.1 second"]);
        c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
        c.reply();
        c.reply();
        c.reply();
        c.send(b"x\r\n.\r\n");
        assert_eq!(c.reply(), ["452-4.3.1 first", "452 4.3.1 second"]);
        assert_eq!(sink.received().len(), 1);
    }

    #[test]
    fn bdat_when_chunking() {
        let sink = Sink::start(SinkOptions {
            chunking: true,
            ..plain_opts()
        });
        let (mut c, ehlo) = connect(&sink);
        assert!(ehlo.iter().any(|l| l == "250-CHUNKING"));
        let first = b"Subject: chunks\r\n\r\n";
        let second = b".not stuffed\r\nBDAT in body\r\n";
        let mut wire = Vec::new();
        wire.extend_from_slice(b"MAIL FROM:<a@a.test> BODY=BINARYMIME\r\nRCPT TO:<b@b.test>\r\n");
        wire.extend_from_slice(format!("BDAT {}\r\n", first.len()).as_bytes());
        wire.extend_from_slice(first);
        wire.extend_from_slice(format!("BDAT {} LAST\r\n", second.len()).as_bytes());
        wire.extend_from_slice(second);
        wire.extend_from_slice(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nBDAT 0 LAST\r\n");
        c.send(&wire);
        assert_eq!(c.reply(), ["250 2.1.0 OK"]);
        assert_eq!(c.reply(), ["250 2.1.5 OK"]);
        assert_eq!(
            c.reply(),
            [format!("250 2.0.0 {} octets received", first.len())]
        );
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 1"]);
        assert_eq!(c.reply(), ["250 2.1.0 OK"]);
        assert_eq!(c.reply(), ["250 2.1.5 OK"]);
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 2"]);
        let got = sink.received();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].data,
            b"Subject: chunks\r\n\r\n.not stuffed\r\nBDAT in body\r\n"
        );
        assert_eq!(got[0].mail_params, ["BODY=BINARYMIME"]);
        assert!(got[1].data.is_empty());
        // A chunk without a transaction is read and refused.
        c.send(b"BDAT 5 LAST\r\nhello");
        assert_eq!(c.reply(), ["503 5.5.1 MAIL first"]);
        assert_eq!(c.cmd("NOOP"), "250 2.0.0 OK");
    }

    #[test]
    fn auth_required_when_set() {
        let sink = Sink::start(SinkOptions {
            auth: Some(("user".into(), "secret".into())),
            ..plain_opts()
        });
        let (mut c, ehlo) = connect(&sink);
        assert!(ehlo.iter().any(|l| l == "250-AUTH PLAIN LOGIN"));
        assert_eq!(
            c.cmd("MAIL FROM:<a@a.test>"),
            "530 5.7.0 Authentication required"
        );
        assert_eq!(
            c.cmd(&format!("AUTH PLAIN {}", b64(b"\0user\0wrong"))),
            "535 5.7.8 Authentication credentials invalid"
        );
        assert_eq!(
            c.cmd("AUTH CRAM-MD5"),
            "504 5.5.4 Unrecognized authentication type"
        );
        assert_eq!(c.cmd("AUTH PLAIN"), "334 ");
        assert_eq!(c.cmd("*"), "501 5.0.0 Authentication cancelled");
        assert_eq!(c.cmd("AUTH PLAIN"), "334 ");
        assert_eq!(
            c.cmd(&b64(b"\0user\0secret")),
            "235 2.7.0 Authentication successful"
        );
        assert_eq!(c.cmd("AUTH PLAIN"), "503 5.5.1 Already authenticated");
        c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
        c.reply();
        c.reply();
        c.reply();
        c.send(b"hi\r\n.\r\n");
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 1"]);
        assert_eq!(sink.received()[0].authenticated.as_deref(), Some("user"));

        // AUTH LOGIN on a second connection.
        let (mut c, _) = connect(&sink);
        assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
        assert_eq!(c.cmd(&b64(b"user")), "334 UGFzc3dvcmQ6");
        assert_eq!(
            c.cmd(&b64(b"secret")),
            "235 2.7.0 Authentication successful"
        );
        assert_eq!(c.cmd("MAIL FROM:<a@a.test>"), "250 2.1.0 OK");
        assert_eq!(sink.connections(), 2);
    }

    #[test]
    fn auth_needs_tls_when_starttls() {
        let sink = Sink::start(SinkOptions {
            auth: Some(("user".into(), "secret".into())),
            ..SinkOptions::default()
        });
        let (mut c, ehlo) = connect(&sink);
        assert!(!ehlo.iter().any(|l| l.contains("AUTH")));
        assert!(
            c.cmd(&format!("AUTH PLAIN {}", b64(b"\0user\0secret")))
                .starts_with("538 5.7.11")
        );
        assert_eq!(
            c.cmd("MAIL FROM:<a@a.test>"),
            "530 5.7.0 Authentication required"
        );
    }

    #[test]
    fn refusing_greeting_closes() {
        let sink = Sink::start(SinkOptions {
            greeting: Some("554 5.3.2 busy".into()),
            ..plain_opts()
        });
        let mut c = RawClient::connect(sink.addr());
        assert_eq!(c.reply(), ["554 5.3.2 busy"]);
        assert!(c.is_closed());
        assert_eq!(sink.connections(), 1);
    }

    #[test]
    fn slow_sink_and_wait_for() {
        let sink = Sink::start(SinkOptions {
            data_delay: Duration::from_millis(300),
            ..plain_opts()
        });
        let (mut c, _) = connect(&sink);
        let (none, ok) = sink.wait_for(Duration::from_millis(50), |r| !r.is_empty());
        assert!(!ok && none.is_empty());
        c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
        c.reply();
        c.reply();
        c.reply();
        let started = Instant::now();
        c.send(b"Subject: slow\r\n\r\nbody\r\n.\r\n");
        assert_eq!(c.reply(), ["250 2.0.0 OK queued as 1"]);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let (got, ok) = sink.wait_for(Duration::from_secs(5), |r| r.len() == 1);
        assert!(ok);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = sink.write_messages(&dir.path().join("out"));
        assert_eq!(paths, [dir.path().join("out").join("0001.eml")]);
        assert_eq!(std::fs::read(&paths[0]).unwrap(), got[0].data);
    }

    #[test]
    fn drop_closes_connections() {
        let sink = Sink::start(plain_opts());
        let addr = sink.addr();
        let (mut c, _) = connect(&sink);
        drop(sink);
        assert!(c.is_closed());
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    }

    /// Accepts any server certificate.
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &rustls_pki_types::CertificateDer<'_>,
            _intermediates: &[rustls_pki_types::CertificateDer<'_>],
            _server_name: &rustls_pki_types::ServerName<'_>,
            _ocsp_response: &[u8],
            _now: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls_pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls_pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    fn read_reply(r: &mut impl BufRead) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap() == 0 {
                return lines;
            }
            let l = l.trim_end().to_string();
            let last = l.len() < 4 || l.as_bytes()[3] != b'-';
            lines.push(l);
            if last {
                return lines;
            }
        }
    }

    fn cmd(c: &mut BufReader<impl Read + Write>, line: &str) -> Vec<String> {
        c.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        read_reply(c)
    }

    #[test]
    fn starttls_then_auth_and_transaction() {
        let sink = Sink::start(SinkOptions {
            auth: Some(("user".into(), "secret".into())),
            ..SinkOptions::default()
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        for (i, version) in [&rustls::version::TLS13, &rustls::version::TLS12]
            .into_iter()
            .enumerate()
        {
            let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(&[version])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(Arc::clone(&provider))))
                .with_no_client_auth();
            let tcp = TcpStream::connect(sink.addr()).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut plain = BufReader::new(tcp);
            assert_eq!(read_reply(&mut plain), ["220 sink.test ESMTP"]);
            plain.get_mut().write_all(b"EHLO client.test\r\n").unwrap();
            let ehlo = read_reply(&mut plain);
            assert!(ehlo.iter().any(|l| l == "250-STARTTLS"), "{ehlo:?}");
            plain.get_mut().write_all(b"STARTTLS\r\n").unwrap();
            assert_eq!(read_reply(&mut plain), ["220 2.0.0 Ready to start TLS"]);
            assert!(plain.buffer().is_empty());
            let conn = rustls::ClientConnection::new(
                Arc::new(config),
                rustls_pki_types::ServerName::try_from("sink.test").unwrap(),
            )
            .unwrap();
            let tls = rustls::StreamOwned::new(conn, plain.into_inner());
            let mut c = BufReader::new(tls);
            assert_eq!(
                cmd(&mut c, "MAIL FROM:<a@a.test>"),
                ["503 5.5.1 EHLO or HELO first"]
            );
            let ehlo = cmd(&mut c, "EHLO client.test");
            assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
            assert!(ehlo.iter().any(|l| l == "250-AUTH PLAIN LOGIN"), "{ehlo:?}");
            assert_eq!(cmd(&mut c, "STARTTLS"), ["503 5.5.1 TLS already active"]);
            assert_eq!(
                cmd(&mut c, &format!("AUTH PLAIN {}", b64(b"\0user\0secret"))),
                ["235 2.7.0 Authentication successful"]
            );
            c.get_mut()
                .write_all(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n")
                .unwrap();
            assert_eq!(read_reply(&mut c), ["250 2.1.0 OK"]);
            assert_eq!(read_reply(&mut c), ["250 2.1.5 OK"]);
            assert!(read_reply(&mut c)[0].starts_with("354"));
            assert_eq!(
                cmd(&mut c, "secret stuff\r\n."),
                [format!("250 2.0.0 OK queued as {}", i + 1)]
            );
            assert_eq!(cmd(&mut c, "QUIT"), ["221 2.0.0 Bye"]);
        }
        let got = sink.received();
        assert_eq!(got.len(), 2);
        for (i, r) in got.iter().enumerate() {
            assert!(r.tls);
            assert_eq!(r.authenticated.as_deref(), Some("user"));
            assert_eq!(r.data, b"secret stuff\r\n");
            assert_eq!(r.connection, i as u64 + 1);
        }
    }

    /// Python's smtplib, as a real client: STARTTLS, AUTH, DSN options, 8BITMIME.
    #[test]
    fn python_smtplib_cross_check() {
        let sink = Sink::start(SinkOptions {
            dsn: true,
            auth: Some(("user".into(), "secret".into())),
            ..SinkOptions::default()
        });
        sink.script_rcpt("nobody@x.test", &["550 5.1.1 no such user"]);
        let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.test", timeout=30)
s.starttls(context=ctx)
s.login("user", "secret")
refused = s.sendmail("a@a.test", ["bob@x.test", "nobody@x.test"],
    b"Subject: py\r\n\r\n.leading dot\r\n\xc3\xa9\r\n",
    mail_options=["BODY=8BITMIME"], rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
print(sorted(refused))
s.quit()
"#;
        let Some((ok, out, err)) = crate::python(script, &[sink.port().to_string()]) else {
            return;
        };
        assert!(ok, "python failed: {err}");
        assert_eq!(out.trim(), "['nobody@x.test']");
        let got = sink.received();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert!(r.tls);
        assert_eq!(r.helo, "py.test");
        assert_eq!(r.authenticated.as_deref(), Some("user"));
        assert!(r.mail_params.iter().any(|p| p == "BODY=8BITMIME"));
        assert_eq!(
            r.rcpts,
            [(
                "bob@x.test".to_string(),
                vec!["NOTIFY=SUCCESS,FAILURE".to_string()]
            )]
        );
        assert_eq!(r.data, b"Subject: py\r\n\r\n.leading dot\r\n\xc3\xa9\r\n");
    }
}
