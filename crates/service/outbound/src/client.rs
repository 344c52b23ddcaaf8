//! One SMTP client session to a next hop (RFC 5321), over mail-send's
//! client: greeting, EHLO (HELO if refused), STARTTLS by policy (RFC 3207),
//! AUTH to a smart host (RFC 4954), then transactions, pipelined when the
//! server offers PIPELINING (RFC 2920) and sent with BDAT when it offers
//! CHUNKING (RFC 3030).
use crate::Settings;
use crate::route::Hop;
use mail_send::SmtpClient;
use postgate_runtime::config::TlsPolicy;
use postgate_store::{Outbound, QueuedRcpt};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use smtp_proto::{
    EXT_8BIT_MIME, EXT_AUTH, EXT_CHUNKING, EXT_DSN, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse, Response,
};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// TLS client configurations: one that takes any certificate (opportunistic
/// and "require" policies: RFC 7435 unauthenticated encryption, as MTAs do),
/// one that verifies against the platform's roots plus `[outbound] tls_ca`
/// (the "verify" policy, MTA-STS enforce, and MTA-STS policy fetches).
#[derive(Clone)]
pub struct Connector {
    any: TlsConnector,
    verify: TlsConnector,
    /// The verifying configuration's verifier, also asked after the fact
    /// about sessions opened without verification (MTA-STS testing mode).
    verifier: Arc<rustls_platform_verifier::Verifier>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// Both configurations; `extra_roots` are trusted beside the platform's.
    pub fn new(extra_roots: Vec<CertificateDer<'static>>) -> Result<Connector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
                .map_err(|e| format!("certificate verifier: {e}"))?,
        );
        // rustls speaks TLS 1.2 and 1.3 only, as RFC 8461 §4.2 asks.
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Connector {
            any: mail_send::smtp::tls::build_tls_connector(true)?,
            verify: TlsConnector::from(Arc::new(config)),
            verifier,
        })
    }

    fn for_policy(&self, p: TlsPolicy) -> &TlsConnector {
        if p == TlsPolicy::Verify {
            &self.verify
        } else {
            &self.any
        }
    }

    /// The verifying connector (for HTTPS, too).
    pub fn verifying(&self) -> &TlsConnector {
        &self.verify
    }
}

/// The connection under the client: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<TlsStream<TcpStream>>),
    /// Between the two during the upgrade, or after a failure.
    Gone,
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Wire::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Wire::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_flush(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Wire::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Wire::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What became of a recipient (or of everything, for connection failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// 2: accepted; 4: try again; 5: never.
    pub class: u8,
    /// Enhanced status code (RFC 3463), from the reply or derived from it.
    pub status: String,
    /// The reply, or what went wrong ("550 5.1.1 no such user").
    pub text: String,
    /// The reply came from the remote host (it goes in the DSN's
    /// Diagnostic-Code and Remote-MTA), rather than from us.
    pub remote: bool,
    /// Why it did not deliver, for the counters (`postgate_outbound_failures`):
    /// "dns", "connection", "timeout", "tls", "4xx", "5xx" or "local".
    pub failure: &'static str,
}

impl Verdict {
    /// A temporary failure of our own making.
    pub fn temporary(status: &str, text: &str) -> Verdict {
        Verdict {
            class: 4,
            status: status.into(),
            text: text.into(),
            remote: false,
            failure: "local",
        }
    }
    /// A permanent failure of our own making.
    pub fn permanent(status: &str, text: &str) -> Verdict {
        Verdict {
            class: 5,
            status: status.into(),
            text: text.into(),
            remote: false,
            failure: "local",
        }
    }
    /// The same verdict, with why it did not deliver.
    pub fn because(mut self, failure: &'static str) -> Verdict {
        self.failure = failure;
        self
    }
    fn sent(r: &Response<String>) -> Verdict {
        Verdict::from_reply(r)
    }
    /// From the server's reply.
    fn from_reply(r: &Response<String>) -> Verdict {
        let class = match r.code / 100 {
            2 | 3 => 2,
            4 => 4,
            _ => 5,
        };
        let status = if r.esc[0] != 0 {
            format!("{}.{}.{}", r.esc[0], r.esc[1], r.esc[2])
        } else {
            format!("{class}.0.0")
        };
        let message = r.message.replace(['\r', '\n'], " ");
        let text = if r.esc[0] != 0 {
            format!("{} {status} {message}", r.code)
        } else {
            format!("{} {message}", r.code)
        };
        Verdict {
            class,
            status,
            text,
            remote: true,
            failure: if class == 5 { "5xx" } else { "4xx" },
        }
    }
    /// From a client error: a broken or timed-out connection.
    fn from_error(e: &mail_send::Error) -> Verdict {
        match e {
            mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
                let mut v = Verdict::from_reply(r);
                if v.class == 2 {
                    v.class = 4;
                    v.failure = "4xx";
                }
                v
            }
            mail_send::Error::Timeout => {
                Verdict::temporary("4.4.2", "timed out waiting for the server").because("timeout")
            }
            other => Verdict::temporary("4.4.2", &format!("connection lost: {other}"))
                .because("connection"),
        }
    }
}

/// An open session, ready for a transaction.
pub struct Session {
    client: SmtpClient<Wire>,
    caps: EhloResponse<String>,
    peer: String,
    addr: SocketAddr,
    tls: TlsPolicy,
    user: Option<String>,
    authenticated: bool,
    sent: usize,
    broken: bool,
    command_timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("addr", &self.addr)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects, reads the greeting, says EHLO, starts TLS and authenticates
    /// as the policy and credentials ask.
    pub async fn connect(
        connector: &Connector,
        hop: &Hop,
        addr: SocketAddr,
        tls: TlsPolicy,
        credentials: Option<&(String, String)>,
        settings: &Settings,
    ) -> Result<Session, Verdict> {
        match Self::connect_once(connector, hop, addr, tls, credentials, settings).await {
            // RFC 7435 §3: opportunistic TLS that fails falls back to clear
            // text rather than not delivering at all.
            Err(v) if tls == TlsPolicy::May && v.status == "4.7.5" => {
                tracing::info!(host = %hop.host, %addr, error = %v.text, "outbound: STARTTLS failed; retrying without TLS");
                Self::connect_once(connector, hop, addr, TlsPolicy::None, credentials, settings)
                    .await
                    .map(|mut s| {
                        s.tls = TlsPolicy::May;
                        s
                    })
            }
            other => other,
        }
    }

    async fn connect_once(
        connector: &Connector,
        hop: &Hop,
        addr: SocketAddr,
        tls: TlsPolicy,
        credentials: Option<&(String, String)>,
        settings: &Settings,
    ) -> Result<Session, Verdict> {
        let tcp = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                Verdict::temporary("4.4.1", &format!("connect to {addr}: timed out"))
                    .because("timeout")
            })?
            .map_err(|e| {
                Verdict::temporary("4.4.1", &format!("connect to {addr}: {e}"))
                    .because("connection")
            })?;
        let _ = tcp.set_nodelay(true);
        let server_name = ServerName::try_from(hop.host.clone()).map_err(|_| {
            Verdict::temporary("4.4.0", &format!("bad host name {}", hop.host)).because("dns")
        })?;
        let mut is_tls = false;
        let wire = if hop.implicit_tls {
            let s = connector
                .for_policy(tls)
                .connect(server_name.clone(), tcp)
                .await
                .map_err(|e| {
                    Verdict::temporary("4.7.5", &format!("TLS with {addr}: {e}")).because("tls")
                })?;
            is_tls = true;
            Wire::Tls(Box::new(s))
        } else {
            Wire::Plain(tcp)
        };
        let mut client = SmtpClient {
            stream: wire,
            timeout: settings.command_timeout,
        };
        // RFC 5321 §4.5.3.2.1: the greeting within 5 minutes.
        let greeting = tokio::time::timeout(settings.command_timeout, client.read())
            .await
            .map_err(|_| Verdict::temporary("4.4.2", "no greeting").because("timeout"))?
            .map_err(|e| Verdict::from_error(&e))?;
        if greeting.code != 220 {
            // §3.1: a 554 greeting means no service here; the next host may
            // serve, so this is not final for the recipients.
            let mut v = Verdict::from_reply(&greeting);
            v.class = 4;
            return Err(v);
        }
        let mut caps = Self::hello(&mut client, &settings.hostname).await?;
        if !is_tls && tls != TlsPolicy::None {
            if caps.has_capability(EXT_START_TLS) {
                let r = client
                    .cmd(b"STARTTLS\r\n")
                    .await
                    .map_err(|e| Verdict::from_error(&e))?;
                if r.code != 220 {
                    let mut v = Verdict::from_reply(&r);
                    v.class = 4;
                    v.status = "4.7.5".into();
                    return Err(v);
                }
                let Wire::Plain(tcp) = std::mem::replace(&mut client.stream, Wire::Gone) else {
                    return Err(Verdict::temporary("4.7.5", "TLS state").because("tls"));
                };
                let s = tokio::time::timeout(
                    settings.command_timeout,
                    connector.for_policy(tls).connect(server_name, tcp),
                )
                .await
                .map_err(|_| Verdict::temporary("4.7.5", "TLS handshake timed out").because("tls"))?
                .map_err(|e| {
                    Verdict::temporary("4.7.5", &format!("TLS handshake: {e}")).because("tls")
                })?;
                client.stream = Wire::Tls(Box::new(s));
                is_tls = true;
                // RFC 3207 §4.2: forget what was said before TLS.
                caps = Self::hello(&mut client, &settings.hostname).await?;
            } else if tls != TlsPolicy::May {
                return Err(Verdict::temporary(
                    "4.7.4",
                    &format!(
                        "{} does not offer STARTTLS, which policy requires",
                        hop.host
                    ),
                )
                .because("tls"));
            }
        }
        let mut authenticated = false;
        if let Some((user, password)) = credentials {
            if !is_tls && !addr.ip().is_loopback() {
                return Err(Verdict::temporary(
                    "4.7.4",
                    "will not send relay credentials without TLS",
                )
                .because("tls"));
            }
            if caps.has_capability(EXT_AUTH) {
                let creds = mail_send::Credentials::new(user.clone(), password.clone());
                client
                    .authenticate(&creds, &caps)
                    .await
                    .map_err(|e| Verdict::from_error(&e))?;
                authenticated = true;
            }
        }
        Ok(Session {
            client,
            caps,
            peer: hop.host.clone(),
            addr,
            tls,
            user: credentials.map(|c| c.0.clone()),
            authenticated,
            sent: 0,
            broken: false,
            command_timeout: settings.command_timeout,
        })
    }

    async fn hello(
        client: &mut SmtpClient<Wire>,
        hostname: &str,
    ) -> Result<EhloResponse<String>, Verdict> {
        match client.ehlo(hostname).await {
            Ok(caps) => Ok(caps),
            // §4.1.4: a server that refuses EHLO may still take HELO.
            Err(mail_send::Error::UnexpectedReply(r)) if r.code >= 500 => {
                let r = client
                    .cmd(format!("HELO {hostname}\r\n"))
                    .await
                    .map_err(|e| Verdict::from_error(&e))?;
                if r.code != 250 {
                    let mut v = Verdict::from_reply(&r);
                    v.class = 4;
                    return Err(v);
                }
                Ok(EhloResponse::new(String::new()))
            }
            Err(e) => Err(Verdict::from_error(&e)),
        }
    }

    /// The host's name, for logs and DSNs.
    pub fn peer_name(&self) -> &str {
        &self.peer
    }
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The TLS policy it was opened under.
    pub fn policy(&self) -> TlsPolicy {
        self.tls
    }
    /// The user name of the credentials it was opened with.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The TLS version and cipher suite, as the inbound side writes them
    /// (`postgate_runtime::Stream::tls_description`); `None` in clear text.
    pub fn tls_description(&self) -> Option<String> {
        let Wire::Tls(tls) = &self.client.stream else {
            return None;
        };
        Some(postgate_runtime::stream::describe_tls(tls.get_ref().1))
    }
    /// Whether the session would pass for a verified one (RFC 8461 §4.2:
    /// TLS, with a certificate chaining to a trusted root and valid for the
    /// host's name, RFC 6125); the reason when not. For sessions opened
    /// without verification, whose certificate is checked after the fact.
    pub fn verify_peer(&self, connector: &Connector) -> Result<(), String> {
        let Wire::Tls(tls) = &self.client.stream else {
            return Err(format!("{} did not negotiate TLS", self.peer));
        };
        let certs = tls
            .get_ref()
            .1
            .peer_certificates()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("{} sent no certificate", self.peer))?;
        let name = ServerName::try_from(self.peer.clone())
            .map_err(|_| format!("bad host name {}", self.peer))?;
        connector
            .verifier
            .verify_server_cert(&certs[0], &certs[1..], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("certificate of {}: {e}", self.peer))
    }
    /// Whether it authenticated.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }
    /// Messages sent on it.
    pub fn sent(&self) -> usize {
        self.sent
    }
    /// The server takes RFC 3461 DSN parameters.
    pub fn has_dsn(&self) -> bool {
        self.caps.has_capability(EXT_DSN)
    }
    /// The connection failed and cannot be used again.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Checks that an idle session still answers.
    pub async fn probe(&mut self) -> bool {
        match tokio::time::timeout(self.command_timeout, self.client.cmd(b"RSET\r\n")).await {
            Ok(Ok(r)) => r.code == 250,
            _ => false,
        }
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.cmd(b"QUIT\r\n")).await;
        let _ = self.client.stream.shutdown().await;
    }

    /// One transaction: the message to these recipients. Returns a verdict
    /// per recipient, in order.
    pub async fn send(
        &mut self,
        ob: &Outbound,
        rcpts: &[QueuedRcpt],
        data: &[u8],
        data_timeout: Duration,
    ) -> Vec<Verdict> {
        let all = |v: Verdict| vec![v; rcpts.len()];
        // RFC 6531 §3.2: mail that needs SMTPUTF8 cannot go to a server
        // without it (no downgrade is defined).
        if ob.smtputf8 && !self.caps.has_capability(EXT_SMTP_UTF8) {
            return all(Verdict::permanent(
                "5.6.7",
                &format!(
                    "{} does not support SMTPUTF8, which this message needs",
                    self.peer
                ),
            ));
        }
        // RFC 1870 §6: don't send what the server said it would refuse.
        if self.caps.size > 0 && data.len() > self.caps.size {
            return all(Verdict::permanent(
                "5.3.4",
                &format!(
                    "message of {} octets exceeds {}'s limit of {}",
                    data.len(),
                    self.peer,
                    self.caps.size
                ),
            ));
        }
        // RFC 6152 §3: 8-bit data only to a server that offers 8BITMIME. What
        // counts is the bytes, whatever the submitter declared.
        let eight_bit = data.iter().any(|&b| b >= 0x80);
        if eight_bit && !self.caps.has_capability(EXT_8BIT_MIME) {
            return all(Verdict::permanent(
                "5.6.3",
                &format!(
                    "{} does not support 8BITMIME, and this message has 8-bit content",
                    self.peer
                ),
            ));
        }
        let dsn = self.has_dsn();
        let mut mail = format!("MAIL FROM:<{}>", ob.mail_from);
        if self.caps.has_capability(EXT_SIZE) {
            mail.push_str(&format!(" SIZE={}", data.len()));
        }
        if eight_bit {
            mail.push_str(" BODY=8BITMIME"); // RFC 6152 §2
        }
        if ob.smtputf8 {
            mail.push_str(" SMTPUTF8"); // RFC 6531 §3.4
        }
        if dsn {
            // RFC 3461 §4.3, §4.4: passed on to a DSN-capable next hop.
            if let Some(ret) = &ob.ret {
                mail.push_str(&format!(" RET={ret}"));
            }
            if let Some(id) = &ob.env_id {
                mail.push_str(&format!(" ENVID={}", xtext(id)));
            }
        }
        mail.push_str("\r\n");
        let mut commands = vec![mail.into_bytes()];
        for r in rcpts {
            let mut cmd = format!("RCPT TO:<{}>", r.address);
            if dsn {
                // RFC 3461 §4.1, §4.2.
                if r.notify.given {
                    let mut words = Vec::new();
                    if r.notify.success {
                        words.push("SUCCESS");
                    }
                    if r.notify.failure {
                        words.push("FAILURE");
                    }
                    if r.notify.delay {
                        words.push("DELAY");
                    }
                    if words.is_empty() {
                        words.push("NEVER");
                    }
                    cmd.push_str(&format!(" NOTIFY={}", words.join(",")));
                }
                // ORCPT as given, else the address itself (§4.2: "SHOULD"
                // be supplied when relaying).
                let original = r.orcpt.as_deref().unwrap_or(&r.address);
                let original = original.strip_prefix("rfc822;").unwrap_or(original);
                cmd.push_str(&format!(" ORCPT=rfc822;{}", xtext(original)));
            }
            cmd.push_str("\r\n");
            commands.push(cmd.into_bytes());
        }
        let chunking = self.caps.has_capability(EXT_CHUNKING);
        let pipelining = self.caps.has_capability(EXT_PIPELINING);
        let verdicts = if pipelining {
            self.send_pipelined(commands, rcpts.len(), data, chunking, data_timeout)
                .await
        } else {
            self.send_stepwise(commands, rcpts.len(), data, chunking, data_timeout)
                .await
        };
        match verdicts {
            Ok(v) => {
                if v.iter().any(|v| v.class == 2) {
                    self.sent += 1;
                }
                v
            }
            Err(v) => {
                self.broken = true;
                all(v)
            }
        }
    }

    /// RFC 2920 §3.1: MAIL, every RCPT and DATA (or the whole BDAT) in one
    /// write; then the replies in order.
    async fn send_pipelined(
        &mut self,
        mut commands: Vec<Vec<u8>>,
        n: usize,
        data: &[u8],
        chunking: bool,
        data_timeout: Duration,
    ) -> Result<Vec<Verdict>, Verdict> {
        if chunking {
            let mut bdat = format!("BDAT {} LAST\r\n", data.len()).into_bytes();
            bdat.extend_from_slice(data);
            commands.push(bdat);
        } else {
            commands.push(b"DATA\r\n".to_vec());
        }
        let count = commands.len();
        let timeout = if chunking {
            data_timeout
        } else {
            self.command_timeout
        };
        let replies = tokio::time::timeout(timeout, async {
            for c in &commands {
                self.client.stream.write_all(c).await?;
            }
            self.client.stream.flush().await?;
            self.client.read_many(count).await
        })
        .await
        .map_err(|_| {
            Verdict::temporary("4.4.2", "timed out waiting for the server").because("timeout")
        })?
        .map_err(|e| Verdict::from_error(&e))?;
        let mail = &replies[0];
        let rcpt_replies = &replies[1..=n];
        let last = &replies[n + 1];
        if let Some(closing) = replies[..=n].iter().find(|r| r.code == 421) {
            return Err(Verdict::from_reply(closing));
        }
        if !(200..300).contains(&mail.code) {
            if !chunking && last.code == 354 {
                // The server wants data after all: give it none.
                let _ = self.finish_data(b"", data_timeout).await;
            }
            self.reset().await?;
            return Ok(vec![Verdict::from_reply(mail); n]);
        }
        let accepted = rcpt_replies
            .iter()
            .filter(|r| (200..300).contains(&r.code))
            .count();
        let final_reply = if chunking {
            last.clone()
        } else if last.code == 354 {
            let body: &[u8] = if accepted > 0 { data } else { b"" };
            self.finish_data(body, data_timeout).await?
        } else {
            last.clone()
        };
        if accepted == 0 {
            self.reset().await?;
        } else if final_reply.code == 421 {
            self.broken = true;
        }
        Ok(combine(rcpt_replies, &final_reply))
    }

    /// Without PIPELINING: one command, one reply.
    async fn send_stepwise(
        &mut self,
        commands: Vec<Vec<u8>>,
        n: usize,
        data: &[u8],
        chunking: bool,
        data_timeout: Duration,
    ) -> Result<Vec<Verdict>, Verdict> {
        let mut replies = Vec::with_capacity(n + 1);
        for c in &commands {
            let r = self
                .client
                .cmd(c)
                .await
                .map_err(|e| Verdict::from_error(&e))?;
            if r.code == 421 {
                return Err(Verdict::from_reply(&r));
            }
            let refused_mail = replies.is_empty() && !(200..300).contains(&r.code);
            replies.push(r);
            if refused_mail {
                self.reset().await?;
                return Ok(vec![Verdict::from_reply(&replies[0]); n]);
            }
        }
        let rcpt_replies = &replies[1..];
        if !rcpt_replies.iter().any(|r| (200..300).contains(&r.code)) {
            self.reset().await?;
            return Ok(rcpt_replies.iter().map(Verdict::from_reply).collect());
        }
        let final_reply = if chunking {
            let mut bdat = format!("BDAT {} LAST\r\n", data.len()).into_bytes();
            bdat.extend_from_slice(data);
            tokio::time::timeout(data_timeout, async {
                self.client.stream.write_all(&bdat).await?;
                self.client.stream.flush().await?;
                self.client.read().await
            })
            .await
            .map_err(|_| {
                Verdict::temporary("4.4.2", "timed out after the data").because("timeout")
            })?
            .map_err(|e| Verdict::from_error(&e))?
        } else {
            let r = self
                .client
                .cmd(b"DATA\r\n")
                .await
                .map_err(|e| Verdict::from_error(&e))?;
            if r.code != 354 {
                r
            } else {
                self.finish_data(data, data_timeout).await?
            }
        };
        if final_reply.code == 421 {
            self.broken = true;
        }
        Ok(combine(rcpt_replies, &final_reply))
    }

    /// Sends the message after a 354, dot-stuffed (RFC 5321 §4.5.2), and
    /// reads the final reply.
    async fn finish_data(
        &mut self,
        data: &[u8],
        data_timeout: Duration,
    ) -> Result<Response<String>, Verdict> {
        let body = dot_stuff(data);
        tokio::time::timeout(data_timeout, async {
            self.client.stream.write_all(&body).await?;
            self.client.stream.flush().await?;
            self.client.read().await
        })
        .await
        .map_err(|_| Verdict::temporary("4.4.2", "timed out after the data").because("timeout"))?
        .map_err(|e| Verdict::from_error(&e))
    }

    async fn reset(&mut self) -> Result<(), Verdict> {
        let r = self
            .client
            .cmd(b"RSET\r\n")
            .await
            .map_err(|e| Verdict::from_error(&e))?;
        if r.code != 250 {
            self.broken = true;
        }
        Ok(())
    }
}

/// Per-recipient verdicts: a refused RCPT speaks for itself; the others get
/// the reply to the data.
fn combine(rcpt_replies: &[Response<String>], final_reply: &Response<String>) -> Vec<Verdict> {
    rcpt_replies
        .iter()
        .map(|r| {
            if (200..300).contains(&r.code) {
                Verdict::sent(final_reply)
            } else {
                Verdict::from_reply(r)
            }
        })
        .collect()
}

/// RFC 3461 §4: xtext, "+" and hex for "+", "=", controls, space and
/// anything beyond ASCII.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The message as DATA sends it: lines starting with "." doubled, CRLF at the
/// end, then the terminating ".".
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in data {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !data.is_empty() && !data.ends_with(b"\r\n") {
        if data.ends_with(b"\n") {
            out.pop();
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"a\r\n"), b"a\r\n.\r\n");
    }

    #[test]
    fn xtext_encoding() {
        assert_eq!(xtext("George @Tax-ME=x+y"), "George+20@Tax-ME+3Dx+2By");
    }

    #[test]
    fn verdicts_from_replies() {
        let r = Response {
            code: 550,
            esc: [5, 1, 1],
            message: "no such user".to_string(),
        };
        let v = Verdict::from_reply(&r);
        assert_eq!((v.class, v.status.as_str()), (5, "5.1.1"));
        assert_eq!(v.text, "550 5.1.1 no such user");
        let r = Response {
            code: 451,
            esc: [0, 0, 0],
            message: "later".to_string(),
        };
        assert_eq!(Verdict::from_reply(&r).status, "4.0.0");
    }
}
