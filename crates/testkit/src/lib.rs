//! Test support: the real `postgate` binary on 127.0.0.1:0, driven by real clients.
//!
//! What it is for: integration tests start the server as users run it (a child
//! process with a config file), find the ports it printed, administer it with its
//! own CLI, kill it with SIGKILL when a test needs a crash, and talk to it with
//! real clients (Python's standard library, swaks, …) or the minimal raw clients
//! here when a test needs byte-level control.
//!
//! Outside tools: [`tool`] finds one; when it is missing the test is skipped with
//! a loud message, unless `POSTGATE_REQUIRE_INTEROP=1` (as `.ci/run` sets), where
//! a missing tool fails the test.
//!
//! For outbound delivery tests, [`sink`] is a scripted SMTP server standing for
//! the receiving side, and [`dns`] a loopback DNS responder for MX lookups;
//! [`https`] serves a web host (an MTA-STS policy) over TLS with certificates
//! from [`ca`], a test certificate authority that the sink's STARTTLS can
//! present too.
//!
//! With the `world` feature, [`world`] serves the engines inside the test
//! process instead: a store in a temporary directory, engines on
//! 127.0.0.1:0, and a wire client that checks replies byte for byte.
#![deny(missing_docs)]

pub mod ca;
pub mod dns;
pub mod https;
pub mod sink;
#[cfg(feature = "world")]
pub mod world;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print "ready".
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server in its own temporary data directory.
#[derive(Debug)]
pub struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    listeners: HashMap<String, SocketAddr>,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts `bin serve` with every listener on 127.0.0.1:0 and `extra` TOML
    /// appended to the config (sections given there replace the defaults:
    /// write whole sections, e.g. "[smtp]\nlisten = [\"127.0.0.1:0\"]\nthreads = 2").
    pub fn start(bin: &Path, extra: &str) -> Server {
        let mut s = Server::stopped(bin, extra);
        s.spawn();
        s
    }

    /// A server's directory and configuration, as [`Server::start`] makes
    /// them, with nothing running and no data directory yet: for commands
    /// that must come first (`postgate restore`). [`Server::restart`]
    /// starts it.
    pub fn stopped(bin: &Path, extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("postgate.toml");
        let data = dir.path().join("data");
        let mut text = format!(
            "data_dir = {:?}\nhostname = \"mx.test.example\"\nlog = \"info\"\n",
            data.display().to_string()
        );
        // Every listener on port 0 unless the test's own section says
        // otherwise: a test's section gets the listeners it leaves out
        // (a fixed default port would collide with tests running beside it).
        let defaults: [(&str, &[&str]); 6] = [
            ("smtp", &["listen", "submission", "smtps"]),
            ("imap", &["listen", "imaps"]),
            ("pop3", &["listen", "pop3s"]),
            ("ldap", &["listen", "ldaps"]),
            ("snmp", &["listen"]),
            ("console", &["listen"]),
        ];
        let mut doc: toml_edit::DocumentMut = extra.parse().expect("a test's config is TOML");
        for (name, keys) in defaults {
            let section = doc
                .entry(name)
                .or_insert(toml_edit::table())
                .as_table_mut()
                .expect("a listener section is a table");
            // `[smtp.timeouts]` alone makes `smtp` implicit: give it its header.
            section.set_implicit(false);
            for key in keys {
                if !section.contains_key(key) {
                    let port0 = toml_edit::Array::from_iter(["127.0.0.1:0"]);
                    section.insert(key, toml_edit::value(port0));
                }
            }
        }
        let extra = doc.to_string();
        let extra = extra.as_str();
        // POSTGATE_TEST_BACKEND=postgres runs every server test on a fresh
        // PostgreSQL database of the test cluster.
        if !extra.contains("[store]")
            && std::env::var("POSTGATE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
        {
            let url = pg_database().expect("POSTGATE_TEST_BACKEND=postgres needs POSTGATE_TEST_PG");
            text.push_str(&pg_store_section(&url, "node-a"));
        }
        text.push_str(extra);
        std::fs::write(&config, text).expect("write config");
        let stderr_log = dir.path().join("stderr.log");
        Server {
            bin: bin.to_path_buf(),
            dir,
            config,
            child: None,
            listeners: HashMap::new(),
            stderr_log,
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_log)
            .expect("stderr log");
        let mut child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start postgate");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        self.listeners.clear();
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!(
                    "postgate did not become ready; stderr:\n{}",
                    std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
                ),
            };
            // "postgate: smtp listening on 127.0.0.1:34669 (smtp, STARTTLS)"
            if let Some(rest) = line.strip_prefix("postgate: ") {
                if rest.starts_with("ready") {
                    break;
                }
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [_service, "listening", "on", addr, role, ..] = words.as_slice() {
                    let role = role.trim_matches(|c| c == '(' || c == ')' || c == ',');
                    if let Ok(a) = addr.parse() {
                        self.listeners.insert(role.to_string(), a);
                    }
                }
            }
        }
    }

    /// The address of the listener with this role ("smtp", "submission", "imap", …).
    pub fn addr(&self, role: &str) -> SocketAddr {
        *self
            .listeners
            .get(role)
            .unwrap_or_else(|| panic!("no {role} listener; have {:?}", self.listeners))
    }

    /// Runs the CLI on this server's data directory; panics if it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args, None);
        assert!(
            out.status.success(),
            "postgate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI, feeding `stdin`, and returns its whole output.
    pub fn cli_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run postgate");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("postgate output")
    }

    /// `item list ADDRESS --folder FOLDER --json`, parsed.
    pub fn items(&self, address: &str, folder: &str) -> Vec<serde_json::Value> {
        let out = self.cli(&["item", "list", address, "--folder", folder, "--json"]);
        serde_json::from_str(&out).expect("item list JSON")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM, as an operator would, and waits for
    /// it to exit (at most 30 s, then SIGKILL).
    pub fn terminate(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The temporary directory holding config and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Adds a group with its members.
    pub fn group(&self, address: &str, name: &str, members: &[&str]) {
        self.cli(&["group", "add", address, "--name", name]);
        for m in members {
            self.cli(&["group", "member", "add", address, m]);
        }
    }

    /// Sets a user's password (through `user passwd`, on standard input).
    pub fn set_password(&self, address: &str, password: &str) {
        let out = self.cli_output(&["user", "passwd", address], Some(&format!("{password}\n")));
        assert!(
            out.status.success(),
            "user passwd {address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Calls the client API with curl, as `user` ("address:password"), with
    /// an optional body (content type, bytes). `None` when curl is missing
    /// (see [`tool`]).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<(&str, &[u8])>,
    ) -> Option<ApiReply> {
        let curl = tool("curl")?;
        let url = format!("https://127.0.0.1:{}{path}", self.addr("console").port());
        let headers = self
            .dir
            .path()
            .join(format!("api-headers-{}", std::process::id()));
        let mut cmd = Command::new(curl);
        cmd.args([
            "-sk",
            "-X",
            method,
            "-u",
            user,
            "-w",
            "\n%{http_code}",
            "-D",
        ])
        .arg(&headers)
        .arg(&url);
        let body_file = self.dir.path().join("api-body");
        if let Some((content_type, bytes)) = body {
            std::fs::write(&body_file, bytes).expect("write API body");
            cmd.args([
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
            ])
            .arg(format!("@{}", body_file.display()));
        }
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Some(ApiReply {
            status: code.trim().parse().unwrap_or(0),
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        })
    }

    /// Calls the client API with a JSON body (or none).
    pub fn api_json(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<&serde_json::Value>,
    ) -> Option<ApiReply> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.api(
            method,
            path,
            user,
            bytes.as_deref().map(|b| ("application/json", b)),
        )
    }

    /// Adds a domain and users ("alice@example.org:Alice Smith").
    pub fn populate(&self, domain: &str, users: &[(&str, &str)]) {
        self.cli(&["domain", "add", domain]);
        for (address, name) in users {
            self.cli(&["user", "add", address, "--name", name]);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the client API answered.
#[derive(Debug, Clone)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
    /// The response header block, as received.
    pub headers: String,
}

impl ApiReply {
    /// A response header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Whether python3 can import `module`. When it cannot: panics under
/// `POSTGATE_REQUIRE_INTEROP=1`, else prints a loud skip notice.
pub fn python_module(module: &str) -> bool {
    let Some(py) = tool("python3") else {
        return false;
    };
    let ok = Command::new(py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!(
            "\n\n*** SKIPPED: the Python module `{module}` is not installed; this interop \
             test did not run. Install it (pip install {module}; see .ci/run). ***\n"
        );
        if interop_required() {
            panic!("{msg} POSTGATE_REQUIRE_INTEROP=1: a skip is a failure.");
        }
        eprintln!("{msg}");
    }
    ok
}

/// A fresh, empty database on the test cluster `POSTGATE_TEST_PG` names
/// (`.ci/run` starts one with `.ci/pg-cluster`), as a URL. Without that
/// variable: a loud skip notice and `None`, or a panic under
/// `POSTGATE_REQUIRE_INTEROP=1`.
pub fn pg_database() -> Option<String> {
    let Some(url) = std::env::var("POSTGATE_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let msg = "\n\n*** SKIPPED: POSTGATE_TEST_PG is not set; this PostgreSQL test did not run. \
                   `.ci/pg-cluster start DIR` starts a throwaway cluster and prints its URL. ***\n";
        if interop_required() {
            panic!("{msg} POSTGATE_REQUIRE_INTEROP=1: a skip is a failure.");
        }
        eprintln!("{msg}");
        return None;
    };
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let psql = tool("psql")?;
    let out = Command::new(psql)
        .arg(&url)
        .args(["-qAt", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = url
        .rsplit_once('/')
        .expect("POSTGATE_TEST_PG is a postgres:// URL");
    Some(format!("{base}/{name}"))
}

/// The `[store]` section for a node on the PostgreSQL database at `url`.
pub fn pg_store_section(url: &str, node: &str) -> String {
    format!("\n[store]\nbackend = \"postgres\"\nurl = {url:?}\nnode = {node:?}\npool_size = 8\n")
}

/// Whether tests must have every outside tool (`POSTGATE_REQUIRE_INTEROP=1`).
pub fn interop_required() -> bool {
    std::env::var("POSTGATE_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Finds an outside program on PATH. When missing: panics under
/// `POSTGATE_REQUIRE_INTEROP=1`, else prints a loud skip notice and returns `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "\n\n*** SKIPPED: `{name}` is not installed; this interop test did not run. \
             Install it (see .ci/run) or run .ci/run. ***\n"
        );
        if interop_required() {
            panic!("{msg} POSTGATE_REQUIRE_INTEROP=1: a skip is a failure.");
        }
        eprintln!("{msg}");
    }
    found
}

/// Runs a Python 3 script (its source in `script`) with `args`; returns
/// (success, stdout, stderr). `None` if python3 is missing (see [`tool`]).
pub fn python(script: &str, args: &[String]) -> Option<(bool, String, String)> {
    let py = tool("python3")?;
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A raw line-oriented client for byte-level protocol tests.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    /// Connects with a 30-second read timeout.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        RawClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one line (without CRLF); `None` at EOF.
    pub fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line);
                return Some(s.trim_end_matches(['\r', '\n']).to_string());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads one SMTP-style reply (continuation lines "250-…" up to "250 …");
    /// returns its lines.
    pub fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let Some(l) = self.line() else {
                return lines;
            };
            let last = l.len() < 4 || l.as_bytes()[3] != b'-';
            lines.push(l);
            if last {
                return lines;
            }
        }
    }

    /// Sends a line (CRLF added) and returns the reply's last line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply().pop().unwrap_or_default()
    }

    /// Whether the server has closed the connection (EOF within a second).
    pub fn is_closed(&mut self) -> bool {
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }
}

/// Delivers `count` small messages to `rcpt` over one pipelined SMTP session
/// (BDAT, so no dot-stuffing); message `i` has the subject "message i".
pub fn smtp_fill(addr: SocketAddr, rcpt: &str, count: usize) {
    let mut c = RawClient::connect(addr);
    c.reply();
    c.cmd("EHLO filler.test");
    for i in 0..count {
        let body = format!(
            "From: Sender {i} <s{i}@remote.test>\r\nTo: {rcpt}\r\nSubject: message {i}\r\nMessage-ID: <fill{i}@remote.test>\r\n\r\nbody {i}\r\n.starts with a dot\r\n"
        );
        c.send(
            format!(
                "MAIL FROM:<s{i}@remote.test>\r\nRCPT TO:<{rcpt}>\r\nBDAT {} LAST\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(body.as_bytes());
        for _ in 0..3 {
            let r = c.reply();
            assert!(r.first().is_some_and(|l| l.starts_with("250")), "{r:?}");
        }
    }
    c.cmd("QUIT");
}
