//! The in-process test world: a store in a temporary directory and the
//! engines served on 127.0.0.1:0 inside the test's own runtime, with a wire
//! client that checks replies line by line.
//!
//! Where [`crate::Server`] runs the binary as users do, a [`World`] runs the
//! same engines through the same listener layer (`postgate_runtime::listener`)
//! in the test process, so that a test can:
//! - start in milliseconds and set up users and mail through the store
//!   directly;
//! - pause tokio's clock and step past a timeout instead of sleeping through
//!   it (the test runtime must be current-thread, tokio's default for
//!   `#[tokio::test]`: call `tokio::time::pause()` once the session is where
//!   the test wants it, then `tokio::time::advance`).
//!
//! The wire client, [`Wire`], speaks any of the line protocols: send a line,
//! expect a line byte for byte, or (IMAP) run a tagged command and get its
//! untagged replies and tagged completion, with literals read in place.
//!
//! ```ignore
//! let w = World::new().await;
//! w.user("alice@test.example", "pw").await;
//! w.deliver("alice@test.example", b"Subject: hi\r\n\r\nbody\r\n").await;
//! let mut c = w.imap_login("alice@test.example", "pw").await;
//! let r = c.ok("SELECT INBOX").await;
//! r.has("* 1 EXISTS");
//! ```
use postgate_delivery::Delivery;
use postgate_runtime::Service;
use postgate_runtime::config::Config;
use postgate_runtime::listener::{self, Listener, Workers};
use postgate_runtime::shutdown::{self, Shutdown, ShutdownTrigger};
use postgate_runtime::tls::Tls;
use postgate_store::auth::Authenticator;
use postgate_store::{Envelope, NewUser, Store, UserRef};
use postgate_types::EmailAddress;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The domain every world serves.
pub const DOMAIN: &str = "test.example";

/// How long a wire read waits before the test fails (real time; a paused
/// clock turns it off, see [`Wire::patient`]).
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One post office in a temporary directory, with engines on demand.
pub struct World {
    dir: tempfile::TempDir,
    /// The configuration the engines were given (`[imap]`, `[pop3]`,
    /// `[smtp]` with plaintext logins allowed unless the test said otherwise).
    pub config: Config,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The login front door the engines share.
    pub auth: Authenticator,
    /// Delivery, as SMTP and the client API use it.
    pub delivery: Delivery,
    tls: Tls,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
    users: Mutex<HashMap<String, UserRef>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world with the default configuration, plaintext logins allowed on
    /// the cleartext ports (tests speak without TLS unless they ask for it).
    pub async fn new() -> World {
        World::with_config("").await
    }

    /// A world with `toml` (whole sections, as in `postgate.toml`) over the
    /// defaults; `allow_plaintext = true` is added to `[imap]` and `[pop3]`
    /// (`allow_plaintext_auth` to `[smtp]`) when those sections the text does not give.
    pub async fn with_config(toml: &str) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = format!(
            "data_dir = {:?}\nhostname = \"mx.test.example\"\n",
            dir.path().join("data").display().to_string()
        );
        for (section, key) in [
            ("imap", "allow_plaintext"),
            ("pop3", "allow_plaintext"),
            ("smtp", "allow_plaintext_auth"),
        ] {
            if !toml.contains(&format!("[{section}]")) {
                text.push_str(&format!("[{section}]\n{key} = true\n"));
            }
        }
        text.push_str(toml);
        let config = postgate_runtime::config::check(&text)
            .unwrap_or_else(|e| panic!("world config {text}: {e:?}"));
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let store = postgate_store::open(&postgate_store::Backend::Embedded {
            data_dir: config.data_dir.clone(),
        })
        .await
        .expect("open store");
        store.add_domain(DOMAIN).await.expect("add domain");
        let auth = Authenticator::new(store.clone());
        let delivery = Delivery::new(store.clone(), Vec::new(), None, config.hostname.clone());
        let tls = postgate_runtime::tls::acceptor(None, None, &config.data_dir, &config.hostname)
            .expect("tls");
        let (trigger, shutdown) = shutdown::channel();
        World {
            dir,
            config,
            store,
            auth,
            delivery,
            tls,
            trigger,
            shutdown,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// The PEM certificate the engines present (self-signed for
    /// "mx.test.example"), for [`Wire::start_tls`].
    pub fn cert_pem(&self) -> std::path::PathBuf {
        self.config
            .data_dir
            .join(postgate_runtime::tls::GENERATED_DIR)
            .join("cert.pem")
    }

    /// Adds a user with `password` (argon2id, as the CLI stores it).
    pub async fn user(&self, address: &str, password: &str) -> UserRef {
        let hash = postgate_store::password::hash(password).expect("hash");
        let user = self
            .store
            .add_user(NewUser {
                address: EmailAddress::parse(address).expect("address"),
                post_office: None,
                display_name: address.split('@').next().unwrap_or_default().into(),
                given_name: None,
                surname: None,
                title: None,
                department: None,
                phone: None,
                password_hash: Some(hash),
            })
            .await
            .expect("add user");
        let r = UserRef {
            id: user.id,
            address: user.address.clone(),
        };
        self.users
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase(), r.clone());
        r
    }

    /// Delivers `raw` to `address`'s Inbox as SMTP would (one durable commit).
    pub async fn deliver(&self, address: &str, raw: &[u8]) {
        let user = self
            .users
            .lock()
            .unwrap()
            .get(&address.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| panic!("{address} is not a user of this world"));
        self.delivery
            .deliver(raw.to_vec(), Envelope::default(), &[user], None)
            .await
            .expect("deliver");
    }

    /// Serves `service` on a new listener on 127.0.0.1:0 and returns its
    /// address; `role` is what sessions see as the listener's role
    /// ("imap", "imaps", "smtp", "submission", …), `implicit_tls` whether TLS
    /// starts at once.
    pub async fn serve(
        &self,
        service: Arc<dyn Service>,
        role: &'static str,
        implicit_tls: bool,
        workers: usize,
    ) -> SocketAddr {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap(), role, implicit_tls)
            .await
            .expect("bind");
        let addr = l.local_addr().expect("local addr");
        tokio::spawn(listener::run(
            l,
            service,
            Workers::new(workers),
            self.tls.clone(),
            self.shutdown.clone(),
        ));
        addr
    }

    /// The IMAP engine on a cleartext (STARTTLS) listener.
    pub async fn imap(&self) -> SocketAddr {
        let svc = postgate_imap::ImapService::new(postgate_imap::Context {
            hostname: self.config.hostname.clone(),
            config: self.config.imap.clone(),
            store: self.store.clone(),
            auth: self.auth.clone(),
        });
        self.serve(Arc::new(svc), "imap", false, 1000).await
    }

    /// The POP3 engine on a cleartext (STLS) listener.
    pub async fn pop3(&self) -> SocketAddr {
        let svc = postgate_pop3::Pop3Service::new(postgate_pop3::Context::new(
            self.config.hostname.clone(),
            self.config.pop3.clone(),
            self.store.clone(),
            self.auth.clone(),
        ));
        self.serve(Arc::new(svc), "pop3", false, 1000).await
    }

    /// The SMTP engine on a cleartext listener with `role` "smtp" (inbound)
    /// or "submission".
    pub async fn smtp(&self, role: &'static str) -> SocketAddr {
        let dns = postgate_dns::Dns::new(&[], 64, Duration::from_secs(1)).expect("resolver");
        let svc = postgate_smtp::SmtpService::new(
            postgate_smtp::Settings {
                hostname: self.config.hostname.clone(),
                config: self.config.smtp.clone(),
                dns,
            },
            self.delivery.clone(),
            self.auth.clone(),
        );
        self.serve(Arc::new(svc), role, false, 1000).await
    }

    /// A logged-in IMAP session on a new connection (greeting read, `LOGIN`
    /// answered OK).
    pub async fn imap_login(&self, address: &str, password: &str) -> Wire {
        let addr = self.imap().await;
        Wire::imap_login(addr, address, password).await
    }

    /// Delivers a first message and then `messages` to `address`, expunges
    /// the first (so that message n has UID n + 1: sequence numbers and
    /// UIDs differ), and returns a new logged-in session with INBOX
    /// selected. The set-up session claimed \Recent (RFC 3501 §2.3.2), so
    /// the returned one sees none.
    pub async fn mailbox_after_expunge(
        &self,
        address: &str,
        password: &str,
        messages: &[&[u8]],
    ) -> Wire {
        self.deliver(
            address,
            b"Subject: first\r\n\r\nexpunged so that UIDs differ from sequence numbers\r\n",
        )
        .await;
        for m in messages {
            self.deliver(address, m).await;
        }
        let n = messages.len();
        let mut c = self.imap_login(address, password).await;
        c.ok("SELECT INBOX")
            .await
            .has(&format!("* {} EXISTS", n + 1));
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        c.ok("EXPUNGE").await.has("* 1 EXPUNGE");
        c.ok("LOGOUT").await;
        let mut c = self.imap_login(address, password).await;
        c.ok("SELECT INBOX")
            .await
            .has(&format!("* {n} EXISTS"))
            .has("* 0 RECENT");
        c
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

/// One command's replies: the untagged lines (literals joined in place) and
/// the tagged completion.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The command as sent (for failure messages).
    pub command: String,
    /// Every line before the completion, CRLF removed; a line that carried
    /// literals holds them inline, each still announced by its `{n}`.
    pub untagged: Vec<String>,
    /// The tagged completion without the tag: "OK …", "NO …" or "BAD …".
    pub tagged: String,
}

impl Reply {
    /// Asserts that `line` is one of the untagged replies, exactly.
    #[track_caller]
    pub fn has(&self, line: &str) -> &Reply {
        assert!(
            self.untagged.iter().any(|l| l == line),
            "{}: no untagged reply {line:?} in\n{self}",
            self.command
        );
        self
    }

    /// Asserts that no untagged reply starts with `prefix`.
    #[track_caller]
    pub fn lacks(&self, prefix: &str) -> &Reply {
        assert!(
            !self.untagged.iter().any(|l| l.starts_with(prefix)),
            "{}: unexpected untagged reply starting {prefix:?} in\n{self}",
            self.command
        );
        self
    }

    /// The untagged replies starting with `prefix`.
    pub fn starting(&self, prefix: &str) -> Vec<&str> {
        self.untagged
            .iter()
            .filter(|l| l.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }

    /// The one untagged reply starting with `prefix` (fails on none or several).
    #[track_caller]
    pub fn one(&self, prefix: &str) -> &str {
        let v = self.starting(prefix);
        assert!(
            v.len() == 1,
            "{}: expected exactly one untagged reply starting {prefix:?}, got {} in\n{self}",
            self.command,
            v.len()
        );
        v[0]
    }

    /// Asserts the untagged replies are exactly `lines`, in order.
    #[track_caller]
    pub fn exactly(&self, lines: &[&str]) -> &Reply {
        assert_eq!(
            self.untagged, lines,
            "{}: untagged replies differ\n{self}",
            self.command
        );
        self
    }

    /// Asserts the completion starts with `prefix` (e.g. "OK [READ-WRITE]").
    #[track_caller]
    pub fn tagged_starts(&self, prefix: &str) -> &Reply {
        assert!(
            self.tagged.starts_with(prefix),
            "{}: completion does not start {prefix:?}\n{self}",
            self.command
        );
        self
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.untagged {
            writeln!(f, "  {l}")?;
        }
        write!(f, "  <tag> {}", self.tagged)
    }
}

/// What a [`Wire`] reads and writes: TCP, then maybe TLS, then maybe DEFLATE.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A client connection that checks the server's bytes: send lines, expect
/// lines exactly, run IMAP commands; upgrade to TLS ([`Wire::start_tls`])
/// or DEFLATE ([`Wire::start_deflate`]) in place.
pub struct Wire {
    io: Option<BufReader<Box<dyn Io>>>,
    tag: u32,
    timeout: Option<Duration>,
    /// Every line read so far (for failure messages).
    transcript: Vec<String>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("tag", &self.tag)
            .field("read", &self.transcript.len())
            .finish_non_exhaustive()
    }
}

impl Wire {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Wire {
        let s = TcpStream::connect(addr).await.expect("connect");
        let _ = s.set_nodelay(true);
        Wire {
            io: Some(BufReader::new(Box::new(s))),
            tag: 0,
            timeout: Some(READ_TIMEOUT),
            transcript: Vec::new(),
        }
    }

    fn io(&mut self) -> &mut BufReader<Box<dyn Io>> {
        self.io.as_mut().expect("stream")
    }

    /// Takes the stream for an upgrade; nothing may be buffered unread
    /// (bytes the server sent in the clear after agreeing to the upgrade
    /// would be an injection, RFC 3207 §4.2 / RFC 9051 §6.2.1).
    #[track_caller]
    fn take_for_upgrade(&mut self) -> Box<dyn Io> {
        let io = self.io.take().expect("stream");
        assert!(
            io.buffer().is_empty(),
            "the server sent {:?} after agreeing to the upgrade",
            String::from_utf8_lossy(io.buffer())
        );
        io.into_inner()
    }

    /// Starts TLS on the connection (after the server's go-ahead to
    /// STARTTLS/STLS), trusting the certificate in `cert_pem` (a world's
    /// [`World::cert_pem`]) for the name "mx.test.example".
    #[track_caller]
    pub fn start_tls<'a>(
        &'a mut self,
        cert_pem: &'a std::path::Path,
    ) -> impl std::future::Future<Output = ()> + 'a {
        let inner = self.take_for_upgrade();
        async move {
            let pem = std::fs::read(cert_pem).expect("certificate");
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                roots.add(c.expect("pem")).expect("root");
            }
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls_pki_types::ServerName::try_from("mx.test.example").unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, inner)
                .await
                .expect("TLS handshake");
            self.io = Some(BufReader::new(Box::new(tls)));
        }
    }

    /// Starts raw DEFLATE in both directions (after IMAP COMPRESS DEFLATE's
    /// OK, RFC 4978 §3).
    #[track_caller]
    pub fn start_deflate(&mut self) {
        let inner = self.take_for_upgrade();
        self.io = Some(BufReader::new(Box::new(
            postgate_runtime::deflate::DeflateStream::new(inner),
        )));
    }

    /// Connects to an IMAP listener, reads the greeting and logs in.
    pub async fn imap_login(addr: SocketAddr, address: &str, password: &str) -> Wire {
        let mut c = Wire::connect(addr).await;
        let g = c.line().await;
        assert!(g.starts_with("* OK"), "IMAP greeting: {g}");
        c.ok(&format!("LOGIN {} {}", quote(address), quote(password)))
            .await;
        c
    }

    /// Reads without a timeout from now on: for tests that pause tokio's
    /// clock (a paused clock would fire the read timeout at once whenever
    /// the runtime has nothing else to do).
    pub fn patient(&mut self) {
        self.timeout = None;
    }

    /// Sends `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.io().get_mut();
        io.write_all(bytes).await.expect("send");
        io.flush().await.expect("flush");
    }

    /// Sends `line` and CRLF.
    pub async fn send_line(&mut self, line: &str) {
        let mut b = Vec::with_capacity(line.len() + 2);
        b.extend_from_slice(line.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.send(&b).await;
    }

    /// Closes our sending side (the server reads end of stream).
    pub async fn shutdown_write(&mut self) {
        let _ = self.io().get_mut().shutdown().await;
    }

    /// Reads raw bytes up to and including LF; `None` at end of stream.
    pub async fn read_line_raw(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let timeout = self.timeout;
        let read = self.io().read_until(b'\n', &mut buf);
        let n = match timeout {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r.expect("read"),
                Err(_) => panic!(
                    "no reply within {t:?}; had read so far:\n{}\npartial: {:?}",
                    self.transcript.join("\n"),
                    String::from_utf8_lossy(&buf)
                ),
            },
            None => read.await.expect("read"),
        };
        if n == 0 { None } else { Some(buf) }
    }

    /// Reads one line, which must end in CRLF (RFC 5321 §2.3.8, RFC 9051 §2.2,
    /// RFC 1939 §3), and returns it without the CRLF. Fails at end of stream.
    #[track_caller]
    pub fn line(&mut self) -> impl std::future::Future<Output = String> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let Some(raw) = self.read_line_raw().await else {
                panic!(
                    "{caller}: connection closed; had read:\n{}",
                    self.transcript.join("\n")
                )
            };
            assert!(
                raw.ends_with(b"\r\n"),
                "{caller}: line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&raw)
            );
            let s = String::from_utf8_lossy(&raw[..raw.len() - 2]).into_owned();
            self.transcript.push(s.clone());
            s
        }
    }

    /// Reads exactly `n` bytes.
    pub async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        let timeout = self.timeout;
        let read = self.io().read_exact(&mut b);
        match timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .expect("read timed out")
                .expect("read"),
            None => read.await.expect("read"),
        };
        b
    }

    /// Reads one line and asserts it is `expected`, byte for byte.
    #[track_caller]
    pub fn expect<'a>(
        &'a mut self,
        expected: &'a str,
    ) -> impl std::future::Future<Output = ()> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let got = self.line().await;
            assert_eq!(got, expected, "{caller}: line differs");
        }
    }

    /// Reads one line and asserts it starts with `prefix`; returns it.
    #[track_caller]
    pub fn expect_start<'a>(
        &'a mut self,
        prefix: &'a str,
    ) -> impl std::future::Future<Output = String> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let got = self.line().await;
            assert!(
                got.starts_with(prefix),
                "{caller}: expected a line starting {prefix:?}, got {got:?}"
            );
            got
        }
    }

    /// Whether the server has closed the connection (reads until end of
    /// stream, failing on any further line).
    #[track_caller]
    pub fn expect_closed(&mut self) -> impl std::future::Future<Output = ()> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            if let Some(l) = self.read_line_raw().await {
                panic!(
                    "{caller}: expected the connection closed, got {:?}",
                    String::from_utf8_lossy(&l)
                );
            }
        }
    }

    /// `APPEND {args} {literal+}` (RFC 7888 LITERAL+: no wait for a
    /// continuation) of `message`; `args` is the mailbox and any flags and
    /// date. Returns the replies, completion unchecked.
    pub async fn append(&mut self, args: &str, message: &[u8]) -> Reply {
        let tag = self.next_tag();
        let mut cmd = format!("{tag} APPEND {args} {{{}+}}\r\n", message.len()).into_bytes();
        cmd.extend_from_slice(message);
        cmd.extend_from_slice(b"\r\n");
        self.send(&cmd).await;
        self.replies(&tag, "APPEND").await
    }

    /// The next tag ("A1", "A2", …).
    pub fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("A{}", self.tag)
    }

    /// Sends `TAG command` and reads replies up to the tagged completion.
    /// Continuation requests ("+ …") are kept among the untagged replies.
    pub async fn imap(&mut self, command: &str) -> Reply {
        let tag = self.next_tag();
        self.send_line(&format!("{tag} {command}")).await;
        self.replies(&tag, command).await
    }

    /// Reads replies up to `tag`'s completion (after a command sent by hand).
    pub async fn replies(&mut self, tag: &str, command: &str) -> Reply {
        let mut untagged = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let line = self.imap_line().await;
            if let Some(rest) = line.strip_prefix(&prefix) {
                return Reply {
                    command: command.into(),
                    untagged,
                    tagged: rest.into(),
                };
            }
            untagged.push(line);
        }
    }

    /// Reads one IMAP response line with its literals inline: a line that
    /// ends in `{n}` (or `~{n}`) is followed by n bytes and the rest of the
    /// line, joined as they came.
    pub async fn imap_line(&mut self) -> String {
        let mut line = self.line().await;
        while let Some(n) = literal_len(&line) {
            let bytes = self.bytes(n).await;
            line.push_str("\r\n");
            line.push_str(&String::from_utf8_lossy(&bytes));
            let rest = self.line().await;
            line.push_str(&rest);
        }
        line
    }

    /// Runs an IMAP command and asserts it completes OK.
    #[track_caller]
    pub fn ok<'a>(&'a mut self, command: &'a str) -> impl std::future::Future<Output = Reply> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let r = self.imap(command).await;
            assert!(
                r.tagged.starts_with("OK"),
                "{caller}: {command} did not complete OK\n{r}"
            );
            r
        }
    }

    /// Runs an IMAP command and asserts it completes NO.
    #[track_caller]
    pub fn no<'a>(&'a mut self, command: &'a str) -> impl std::future::Future<Output = Reply> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let r = self.imap(command).await;
            assert!(
                r.tagged.starts_with("NO"),
                "{caller}: {command} did not complete NO\n{r}"
            );
            r
        }
    }

    /// Runs an IMAP command and asserts it completes BAD.
    #[track_caller]
    pub fn bad<'a>(
        &'a mut self,
        command: &'a str,
    ) -> impl std::future::Future<Output = Reply> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let r = self.imap(command).await;
            assert!(
                r.tagged.starts_with("BAD"),
                "{caller}: {command} did not complete BAD\n{r}"
            );
            r
        }
    }

    /// Sends an SMTP or POP3 command line and returns the whole reply: every
    /// line of a multi-line SMTP reply (RFC 5321 §4.2.1: "250-…" up to
    /// "250 …"), or the one POP3 status line.
    pub async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send_line(line).await;
        self.smtp_reply().await
    }

    /// Reads one SMTP reply (all its lines), or one POP3 status line.
    pub async fn smtp_reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            let more = l.len() > 3
                && l.as_bytes()[3] == b'-'
                && l[..3].bytes().all(|b| b.is_ascii_digit());
            lines.push(l);
            if !more {
                return lines;
            }
        }
    }

    /// Reads a POP3 multi-line body up to the terminating ".", with
    /// byte-stuffing removed (RFC 1939 §3); the lines without CRLF.
    pub async fn pop3_multiline(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            if l == "." {
                return lines;
            }
            lines.push(match l.strip_prefix('.') {
                Some(rest) => rest.to_string(),
                None => l,
            });
        }
    }
}

/// `{n}` or `~{n}` (or `{n+}`) at the end of a line: a literal of n bytes follows.
fn literal_len(line: &str) -> Option<usize> {
    let body = line.strip_suffix('}')?;
    let open = body.rfind('{')?;
    let n = body[open + 1..].trim_end_matches('+');
    n.parse().ok()
}

/// An IMAP quoted string (RFC 9051 §4.3).
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len("* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_len("* 1 FETCH (BINARY[] ~{3}"), Some(3));
        assert_eq!(literal_len("* OK {not}"), None);
        assert_eq!(literal_len("* OK done"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
