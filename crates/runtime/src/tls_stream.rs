//! The server's end of a TLS connection, on rustls's unbuffered API: the
//! connection's buffers are ours, and an idle connection holds none.
//!
//! tokio-rustls drives rustls's buffered connection, whose receive buffer
//! stays at 4 KB between reads for the connection's whole life (rustls's
//! `DeframerVecBuffer::prepare_read` never shrinks it below that): 40 MB for
//! ten thousand idle IMAPS clients. Here the bytes received, the bytes
//! decrypted and the bytes waiting to be sent each live in a `Vec` that is
//! freed as soon as it is empty, and the socket is read only once it is
//! readable, so a connection waiting for its client owns no buffer at all.
use rustls::server::{ServerConfig, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Room made for one read from the socket: one whole TLS record
/// (RFC 8446 §5.2: 2^14 bytes of plaintext, 256 of expansion, 5 of header).
const READ_SIZE: usize = 16_384 + 256 + 5;

/// The most received bytes kept unprocessed: a handshake message may span
/// records, and rustls joins it in our buffer, up to 64 KB (what its own
/// buffered connection allows, `MAX_HANDSHAKE_SIZE`), plus a read. After the
/// handshake only a partial record and one read are ever kept.
const MAX_INCOMING: usize = 0xffff + READ_SIZE;

/// How much plaintext one `poll_write` takes: it is encrypted at once, so
/// this bounds what waits in the send buffer.
const WRITE_CHUNK: usize = 64 * 1024;

/// A TLS connection over TCP, server side.
pub struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received and not yet processed: a partial record, or records not yet
    /// decrypted.
    incoming: Vec<u8>,
    /// Decrypted and not yet read; `plain_pos` is how much was read.
    plain: Vec<u8>,
    plain_pos: usize,
    /// Records to send; `out_pos` is how much was sent.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The client's close_notify arrived, or its TCP stream ended.
    read_closed: bool,
    /// Our close_notify is queued.
    write_closed: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").field("tcp", &self.tcp).finish()
    }
}

/// Where [`TlsStream::process`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Everything received is processed; more can be sent.
    Open,
    /// The handshake waits for the client.
    NeedData,
    /// Both ends sent close_notify.
    Closed,
}

/// What [`TlsStream::process`] does once the connection may send.
enum Outgoing<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends what `write` puts into a slice to `out`, growing the slice to
/// the size rustls asks for when the first guess is short.
fn append<E>(
    out: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    short: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    let mut room = guess;
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => {
                out.truncate(start);
                match short(&e) {
                    Some(required) if required > room => room = required,
                    _ => return Err(e),
                }
            }
        }
    }
}

/// Appends the record rustls has ready to send (handshake, alert) to `out`.
fn encode_record<Data>(
    out: &mut Vec<u8>,
    data: &mut EncodeTlsData<'_, Data>,
) -> Result<(), EncodeError> {
    append(
        out,
        1024,
        |o| data.encode(o),
        |e| match e {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            EncodeError::AlreadyEncoded => None,
        },
    )
}

/// The room an encryption asked for, when that is why it failed.
fn encrypt_room(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        EncryptError::EncryptExhausted => None,
    }
}

impl TlsStream {
    /// Performs the server's side of the handshake over `tcp`.
    pub async fn accept(config: Arc<ServerConfig>, tcp: TcpStream) -> io::Result<TlsStream> {
        let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut tls = TlsStream {
            tcp,
            conn,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            read_closed: false,
            write_closed: false,
        };
        loop {
            let step = tls.process(Outgoing::Nothing).map_err(|e| tls.fail(e))?;
            poll_fn(|cx| tls.poll_send(cx)).await?;
            if !tls.conn.is_handshaking() {
                return Ok(tls);
            }
            if step == Step::Closed {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if poll_fn(|cx| tls.poll_receive(cx)).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The negotiated session: version, cipher suite.
    pub fn session(&self) -> &rustls::CommonState {
        &self.conn
    }

    /// Runs rustls over what was received: application data is decrypted
    /// into `plain`, records to send are encoded into `outgoing`; once the
    /// connection may send, `send` is encrypted too.
    fn process(&mut self, mut send: Outgoing<'_>) -> Result<Step, rustls::Error> {
        let general = |e: &dyn std::fmt::Display| rustls::Error::General(e.to_string());
        loop {
            let status = self.conn.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let step: Result<Option<Step>, rustls::Error> = match status.state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut read = Ok(None);
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                self.plain.extend_from_slice(record.payload);
                            }
                            Err(e) => {
                                read = Err(e);
                                break;
                            }
                        }
                    }
                    read
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode_record(&mut self.outgoing, &mut data)
                        .map(|()| None)
                        .map_err(|e| general(&e))
                }
                // What was encoded is in `outgoing`, which is sent before
                // anything waits for the client.
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    data.done();
                    Ok(None)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Step::NeedData)),
                Ok(ConnectionState::PeerClosed) => {
                    self.read_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => {
                    self.read_closed = true;
                    Ok(Some(Step::Closed))
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let sent = match std::mem::replace(&mut send, Outgoing::Nothing) {
                        Outgoing::Nothing => Ok(()),
                        Outgoing::Data(data) => append(
                            &mut self.outgoing,
                            // Per record of up to 2^14 bytes: a header, the
                            // content type and the AEAD tag (RFC 8446 §5.2).
                            data.len() + (data.len() / 16_384 + 1) * 32,
                            |out| traffic.encrypt(data, out),
                            encrypt_room,
                        ),
                        Outgoing::CloseNotify => append(
                            &mut self.outgoing,
                            64,
                            |out| traffic.queue_close_notify(out),
                            encrypt_room,
                        ),
                    };
                    sent.map(|()| Some(Step::Open)).map_err(|e| general(&e))
                }
                // Early data is never accepted (the configuration leaves
                // max_early_data_size at 0), so rustls never yields it.
                Ok(_) => Err(rustls::Error::General("unexpected TLS state".into())),
            };
            // rustls: the discard comes before anything else, errors included.
            self.incoming.drain(..discard.min(self.incoming.len()));
            if let Some(step) = step? {
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
                return Ok(step);
            }
        }
    }

    /// After a TLS error: queues the alert rustls made for the client,
    /// sends what it can without waiting, and turns the error into an I/O one.
    fn fail(&mut self, e: rustls::Error) -> io::Error {
        // rustls queued the alert; the next call hands it over before it
        // looks at the received bytes again (the same buffer: it may hold a
        // handshake message rustls was joining there). Once nothing is
        // queued, no further call: it would deframe the bad bytes again.
        while self.conn.wants_write() {
            let status = self.conn.process_tls_records(&mut self.incoming);
            let Ok(ConnectionState::EncodeTlsData(mut data)) = status.state else {
                break;
            };
            if encode_record(&mut self.outgoing, &mut data).is_err() {
                break;
            }
        }
        self.incoming = Vec::new();
        if self.out_pos < self.outgoing.len() {
            let _ = self.tcp.try_write(&self.outgoing[self.out_pos..]);
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        invalid(e)
    }

    /// Sends everything in `outgoing`, then frees it.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(crate::stream::poll_write_out(
            &mut self.tcp,
            cx,
            &self.outgoing,
            &mut self.out_pos
        ))?;
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads from the socket into `incoming`, making room only once the
    /// socket is readable; 0 at the end of the TCP stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            if self.incoming.len() >= MAX_INCOMING {
                return Poll::Ready(Err(invalid("TLS message too large")));
            }
            ready!(self.tcp.poll_read_ready(cx))?;
            if self.incoming.capacity() - self.incoming.len() < READ_SIZE {
                self.incoming.reserve(READ_SIZE);
            }
            match self.tcp.try_read_buf(&mut self.incoming) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.incoming.is_empty() {
                        self.incoming = Vec::new();
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_pos < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.plain_pos);
                buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + n]);
                this.plain_pos += n;
                if this.plain_pos == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.process(Outgoing::Nothing) {
                return Poll::Ready(Err(this.fail(e)));
            }
            // Records rustls answered with (a key update, tickets) go out
            // now; if the socket is full they go with the next write.
            if this.out_pos < this.outgoing.len()
                && let Poll::Ready(Err(e)) = this.poll_send(cx)
            {
                return Poll::Ready(Err(e));
            }
            if this.plain_pos < this.plain.len() || this.read_closed {
                continue;
            }
            if ready!(this.poll_receive(cx))? == 0 {
                // The TCP stream ended without close_notify: the session
                // ends as it would on a plain connection.
                this.read_closed = true;
                this.incoming = Vec::new();
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.outgoing.len() - this.out_pos >= WRITE_CHUNK {
            ready!(this.poll_send(cx))?;
        }
        if this.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let data = &buf[..buf.len().min(WRITE_CHUNK)];
        match this.process(Outgoing::Data(data)) {
            Ok(Step::Open) => {}
            Ok(_) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Err(e) => return Poll::Ready(Err(this.fail(e))),
        }
        // Sent now if the socket takes it; a full socket waits for the
        // next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed {
            this.write_closed = true;
            // RFC 8446 §6.1: close_notify before closing the write side.
            if let Err(e) = this.process(Outgoing::CloseNotify) {
                return Poll::Ready(Err(this.fail(e)));
            }
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server config and a client config that trusts it.
    fn configs(dir: &std::path::Path) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let tls = crate::tls::acceptor(None, None, dir, "localhost").unwrap();
        let pem = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        (tls.0, Arc::new(client))
    }

    async fn pair(
        server: Arc<ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> (TlsStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connect = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            tokio_rustls::TlsConnector::from(client)
                .connect(name, tcp)
                .await
                .unwrap()
        };
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            TlsStream::accept(server, tcp).await.unwrap()
        };
        tokio::join!(accept, connect)
    }

    /// A listener's accepted end and a plain TCP client of it, with the
    /// server config: for clients that do not speak TLS properly.
    async fn raw(dir: &std::path::Path) -> (Arc<ServerConfig>, TcpStream, TcpStream) {
        let (server_config, _) = configs(dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server_tcp, _) = listener.accept().await.unwrap();
        (server_config, client, server_tcp)
    }

    fn holds_no_buffer(s: &TlsStream) -> bool {
        s.incoming.capacity() == 0 && s.plain.capacity() == 0 && s.outgoing.capacity() == 0
    }

    #[tokio::test]
    async fn a_megabyte_each_way_arrives_whole_and_an_idle_connection_holds_no_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let (server_config, client_config) = configs(dir.path());
        let (mut server, client) = pair(server_config, client_config).await;
        assert!(server.session().protocol_version().is_some());
        assert!(holds_no_buffer(&server), "after the handshake");

        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            // Uneven pieces, so records and reads do not line up.
            for piece in sent.chunks(7_777) {
                client_write.write_all(piece).await.unwrap();
            }
            client_write.shutdown().await.unwrap(); // close_notify
            client_write
        });
        // The server echoes what it reads, in reads of its own size.
        let mut echoed = 0;
        let mut buf = vec![0; 3_000];
        let echo_back = tokio::spawn(async move {
            let mut back = Vec::new();
            client_read.read_to_end(&mut back).await.unwrap();
            back
        });
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            server.write_all(&buf[..n]).await.unwrap();
            echoed += n;
        }
        assert_eq!(echoed, data.len());
        server.flush().await.unwrap();
        assert!(
            holds_no_buffer(&server),
            "after everything was read and sent"
        );
        server.shutdown().await.unwrap();
        let _client_write = writer.await.unwrap();
        assert_eq!(echo_back.await.unwrap(), data);
    }

    #[tokio::test]
    async fn an_idle_connection_waits_with_no_buffer_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (server_config, client_config) = configs(dir.path());
        let (mut server, mut client) = pair(server_config, client_config).await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(200), server.read(&mut buf)).await;
        assert!(read.is_err(), "nothing was sent");
        assert!(holds_no_buffer(&server), "while waiting for the client");
        client.write_all(b"a1 NOOP\r\n").await.unwrap();
        client.flush().await.unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"a1 NOOP\r\n");
        assert!(holds_no_buffer(&server));
    }

    #[tokio::test]
    async fn a_client_that_does_not_speak_tls_gets_an_alert_and_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (server_config, mut tcp, server_tcp) = raw(dir.path()).await;
        tcp.write_all(b"EHLO client.example\r\n").await.unwrap();
        let err = TlsStream::accept(server_config, server_tcp)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let mut back = Vec::new();
        tcp.read_to_end(&mut back).await.unwrap();
        // An alert record (RFC 8446 §5.1: content type 21).
        assert_eq!(back.first(), Some(&21), "{back:?}");
    }

    #[tokio::test]
    async fn an_endless_handshake_message_is_refused_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let (server_config, mut tcp, server_tcp) = raw(dir.path()).await;
        let server = tokio::spawn(TlsStream::accept(server_config, server_tcp));
        // A ClientHello declared 16 MB long (RFC 8446 §4: a 24-bit length),
        // sent in full records (§5.1) until the server gives up.
        let mut sent = 0usize;
        let mut first = true;
        while sent < 4 << 20 {
            let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
            let mut body = vec![0u8; 0x4000];
            if first {
                body[..4].copy_from_slice(&[0x01, 0xff, 0xff, 0xff]);
                first = false;
            }
            record.extend_from_slice(&body);
            if tcp.write_all(&record).await.is_err() {
                break;
            }
            sent += record.len();
            if server.is_finished() {
                break;
            }
        }
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(sent < 4 << 20, "the server never gave up");
        eprintln!("endless handshake: {err} after {sent} bytes sent");
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_mid_handshake_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (server_config, tcp, server_tcp) = raw(dir.path()).await;
        drop(tcp);
        let err = TlsStream::accept(server_config, server_tcp)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }
}
