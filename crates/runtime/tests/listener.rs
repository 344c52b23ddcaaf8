//! The listener layer over real sockets: implicit TLS, STARTTLS, the worker
//! limit with the service's own try-later reply, and shutdown.
use async_trait::async_trait;
use postgate_runtime::listener::{self, Listener, Workers};
use postgate_runtime::{Conn, Service, shutdown, tls};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Greets, then on "STARTTLS" upgrades; on anything else answers "echo LINE"; holds
/// the connection until the client closes.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl Service for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn busy_reply(&self) -> &'static [u8] {
        b"BUSY try later\r\n"
    }
    async fn serve(&self, conn: Conn) {
        let tls = conn.tls.clone();
        let mut stream = conn.stream;
        let greeting = if stream.is_tls() {
            "hello tls\r\n"
        } else {
            "hello\r\n"
        };
        if stream.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        loop {
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            drop(reader);
            if line.trim() == "STARTTLS" {
                let _ = stream.write_all(b"go ahead\r\n").await;
                stream = match stream.start_tls(&tls).await {
                    Ok(s) => s,
                    Err(_) => return,
                };
                let _ = stream.write_all(b"secure\r\n").await;
            } else {
                let _ = stream
                    .write_all(format!("echo {}\r\n", line.trim()).as_bytes())
                    .await;
            }
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    connector: tokio_rustls::TlsConnector,
    plain: std::net::SocketAddr,
    implicit: std::net::SocketAddr,
    trigger: shutdown::ShutdownTrigger,
}

async fn fixture(workers: usize) -> Fixture {
    fixture_with(Workers::new(workers)).await
}

async fn fixture_with(workers: Workers) -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let acceptor = tls::acceptor(None, None, dir.path(), "mx.test").unwrap();
    // The client trusts the generated self-signed certificate itself.
    let cert =
        rustls_pki_types::CertificateDer::from_pem_file(dir.path().join("tls/cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (trigger, shut) = shutdown::channel();
    let service: Arc<dyn Service> = Arc::new(Echo);
    let plain = Listener::bind("127.0.0.1:0".parse().unwrap(), "plain", false)
        .await
        .unwrap();
    let implicit = Listener::bind("127.0.0.1:0".parse().unwrap(), "tls", true)
        .await
        .unwrap();
    let (pa, ia) = (plain.local_addr().unwrap(), implicit.local_addr().unwrap());
    for l in [plain, implicit] {
        tokio::spawn(listener::run(
            l,
            service.clone(),
            workers.clone(),
            acceptor.clone(),
            shut.clone(),
        ));
    }
    Fixture {
        _dir: dir,
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        plain: pa,
        implicit: ia,
        trigger,
    }
}

async fn line<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> String {
    let mut l = String::new();
    s.read_line(&mut l).await.unwrap();
    l.trim_end().to_string()
}

#[tokio::test]
async fn implicit_tls_and_starttls() {
    let f = fixture(10).await;
    let name = ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(f.implicit).await.unwrap();
    let tls = f.connector.connect(name.clone(), tcp).await.unwrap();
    let mut s = BufReader::new(tls);
    assert_eq!(line(&mut s).await, "hello tls");
    s.get_mut().write_all(b"ping\r\n").await.unwrap();
    assert_eq!(line(&mut s).await, "echo ping");

    let tcp = TcpStream::connect(f.plain).await.unwrap();
    let mut s = BufReader::new(tcp);
    assert_eq!(line(&mut s).await, "hello");
    s.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
    assert_eq!(line(&mut s).await, "go ahead");
    let tls = f.connector.connect(name, s.into_inner()).await.unwrap();
    let mut s = BufReader::new(tls);
    assert_eq!(line(&mut s).await, "secure");
    s.get_mut().write_all(b"after\r\n").await.unwrap();
    assert_eq!(line(&mut s).await, "echo after");
}

#[tokio::test]
async fn busy_reply_beyond_the_worker_limit_in_the_clear_and_under_tls() {
    let f = fixture(1).await;
    let mut first = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
    assert_eq!(line(&mut first).await, "hello");
    // Plain: the service's own try-later reply, then EOF.
    let mut second = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
    assert_eq!(line(&mut second).await, "BUSY try later");
    assert_eq!(line(&mut second).await, "");
    // Implicit TLS: the same reply, under TLS.
    let tcp = TcpStream::connect(f.implicit).await.unwrap();
    let tls = f
        .connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut third = BufReader::new(tls);
    assert_eq!(line(&mut third).await, "BUSY try later");
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut again = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
    assert_eq!(line(&mut again).await, "hello");
    // Shutdown stops accepting.
    f.trigger.trigger();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let refused = TcpStream::connect(f.plain).await;
    if let Ok(s) = refused {
        let mut s = BufReader::new(s);
        assert_eq!(line(&mut s).await, "", "no session after shutdown");
    }
}

#[tokio::test]
async fn per_address_cap_answers_busy_and_frees_on_close() {
    let f = fixture_with(Workers::with_per_ip(10, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
        assert_eq!(line(&mut s).await, "hello");
        held.push(s);
    }
    // A third from the same address gets the service's try-later reply.
    let mut third = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
    assert_eq!(line(&mut third).await, "BUSY try later");
    // Closing one frees its share.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut s = BufReader::new(TcpStream::connect(f.plain).await.unwrap());
        if line(&mut s).await == "hello" {
            again = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the freed share was not reused");
    drop(f.trigger);
}
