//! A loopback HTTPS server standing for a web host in tests, e.g. an MTA-STS
//! policy host (RFC 8461 §3.3, `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`).
//!
//! [`Https::start`] listens on 127.0.0.1:0 presenting a given certificate
//! (typically from a [`crate::ca::TestCa`]) and answers each HTTP/1.1 GET on
//! its own thread from the responses set with [`Https::serve`] (404 for any
//! other path), one request per connection (`Connection: close`).
//! [`Https::requests`] lists the paths asked for, so a test can see whether
//! (and how often) a client fetched.

use crate::ca::Identity;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The largest request head read; a client sending more is cut off.
const MAX_HEAD: usize = 16 * 1024;

/// How long a connection may wait for the client.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    /// Path to (status, body).
    responses: HashMap<String, (u16, Vec<u8>)>,
    /// Request paths in the order they came (each with its Host header).
    requests: Vec<(String, String)>,
}

struct Shared {
    tls: Arc<rustls::ServerConfig>,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running HTTPS server; stops when dropped.
pub struct Https {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Https {
    /// Starts on 127.0.0.1:0 presenting `identity`; panics if it cannot.
    pub fn start(identity: &Identity) -> Https {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind https");
        let addr = listener.local_addr().expect("https address");
        let shared = Arc::new(Shared {
            tls: identity.server_config(),
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("https-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let shared = Arc::clone(&shared);
                        let _ = std::thread::Builder::new().name("https-conn".into()).spawn(
                            move || {
                                let _ = serve_one(stream, &shared);
                            },
                        );
                    }
                })
                .expect("spawn https accept thread")
        };
        Https {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers GET `path` with `status` and `body` from now on.
    pub fn serve(&self, path: &str, status: u16, body: &str) {
        self.shared
            .state()
            .responses
            .insert(path.to_string(), (status, body.as_bytes().to_vec()));
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .state()
            .requests
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The Host header of each request so far, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.shared
            .state()
            .requests
            .iter()
            .map(|(_, h)| h.clone())
            .collect()
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// One connection: the TLS handshake, one request, one response.
fn serve_one(tcp: TcpStream, shared: &Shared) -> io::Result<()> {
    tcp.set_read_timeout(Some(READ_TIMEOUT))?;
    let conn = rustls::ServerConnection::new(shared.tls.clone()).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut words = request.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let host = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let (status, body) = {
        let mut state = shared.state();
        state.requests.push((path.to_string(), host));
        match (method, state.responses.get(path)) {
            ("GET", Some((status, body))) => (*status, body.clone()),
            ("GET", None) => (404, b"not found\n".to_vec()),
            _ => (405, b"method not allowed\n".to_vec()),
        }
    };
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    tls.write_all(&response)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(())
}
