//! POP3 retrieval load in Rust, so that the generator is not what limits the
//! figure (../shared/bench/pop3_load.py runs Python processes on a two-core
//! machine). Non-destructive: never sends DELE.
//!
//! `bench-pop3 HOST PORT [--secs 30] [--conns 4] [--threads 1]
//! [--max-msgs 1000000] [--user-fmt pop%d] [--nusers 20] [--password pass]
//! [--per-session 0]`
//!
//! pop3_load.py's loop, on `--conns` concurrent clients: connect, USER/PASS,
//! STAT, RETR 1..k (k = all messages, or --per-session), QUIT; users taken
//! round-robin from --user-fmt with %d = 1..--nusers. A message is read raw
//! up to its CRLF.CRLF terminator (no per-line work), so the client stays
//! cheap. Stops after --secs or --max-msgs messages, loopback only. Prints
//! pop3_load's fields plus the generator's own CPU use (user+system seconds
//! per wall second, in percent of one core):
//!
//! `pop3_load host=H port=P client=rust conns=C threads=T secs=S sessions=N
//! msgs=M msgs_per_s=X mb_per_s=Y sessions_per_s=Z errors=E loadgen_cpu_pct=U`
use postgate_loadgen::{Args, run_clients, step};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Cfg {
    host: String,
    port: u16,
    user_fmt: String,
    nusers: u64,
    password: String,
    per_session: u64,
    conns: u64,
    deadline: Instant,
    quota: u64,
}

/// A POP3 connection with its read buffer (`buf[at..]` not yet consumed).
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    at: usize,
}

fn refused(what: &str, line: &[u8]) -> io::Error {
    io::Error::other(format!(
        "{what} -> {}",
        String::from_utf8_lossy(&line[..line.len().min(80)])
    ))
}

impl Conn {
    async fn fill(&mut self) -> io::Result<()> {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at > 1 << 20 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 256 * 1024, 0);
        let n = step(self.s.read(&mut self.buf[len..])).await?;
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// The next line, without its CRLF.
    async fn line(&mut self) -> io::Result<Vec<u8>> {
        // Octets past `at` already looked through (fill may move `at`).
        let mut seen = 0;
        loop {
            let from = self.at + seen;
            if let Some(i) = self.buf[from..].windows(2).position(|w| w == b"\r\n") {
                let end = from + i;
                let line = self.buf[self.at..end].to_vec();
                self.at = end + 2;
                return Ok(line);
            }
            seen = (self.buf.len() - self.at).saturating_sub(1);
            self.fill().await?;
        }
    }

    /// After a +OK status line: the multi-line body up to CRLF.CRLF; its
    /// length in octets (the terminator not counted).
    async fn multiline(&mut self) -> io::Result<usize> {
        if self.buf.len() - self.at < 3 {
            self.fill().await?;
        }
        let mut seen = 0;
        loop {
            if self.buf[self.at..].starts_with(b".\r\n") {
                self.at += 3;
                return Ok(0);
            }
            let from = self.at + seen;
            if let Some(i) = self.buf[from..].windows(5).position(|w| w == b"\r\n.\r\n") {
                let end = from + i;
                let n = end + 2 - self.at;
                self.at = end + 5;
                return Ok(n);
            }
            seen = (self.buf.len() - self.at).saturating_sub(4);
            self.fill().await?;
        }
    }

    /// Sends a command; its +OK line, or an error for -ERR.
    async fn cmd(&mut self, c: &str) -> io::Result<Vec<u8>> {
        step(self.s.write_all(format!("{c}\r\n").as_bytes())).await?;
        let line = self.line().await?;
        if !line.starts_with(b"+OK") {
            return Err(refused(c.split(' ').next().unwrap_or(c), &line));
        }
        Ok(line)
    }
}

#[derive(Default)]
struct Tally {
    msgs: u64,
    bytes: u64,
    sessions: u64,
    errors: u64,
}

/// One session; adds what it retrieved to `t`.
async fn session(cfg: &Cfg, user: &str, t: &mut Tally, done: &AtomicU64) -> io::Result<()> {
    let s = step(async { TcpStream::connect((cfg.host.as_str(), cfg.port)).await }).await?;
    s.set_nodelay(true)?;
    let mut c = Conn {
        s,
        buf: Vec::with_capacity(256 * 1024),
        at: 0,
    };
    let greeting = c.line().await?;
    if !greeting.starts_with(b"+OK") {
        return Err(refused("greeting", &greeting));
    }
    c.cmd(&format!("USER {user}")).await?;
    c.cmd(&format!("PASS {}", cfg.password)).await?;
    let stat = c.cmd("STAT").await?;
    let mut n: u64 = String::from_utf8_lossy(&stat)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| refused("STAT", &stat))?;
    if cfg.per_session > 0 {
        n = n.min(cfg.per_session);
    }
    for m in 1..=n {
        if Instant::now() >= cfg.deadline || done.fetch_add(1, Ordering::Relaxed) >= cfg.quota {
            break;
        }
        c.cmd(&format!("RETR {m}")).await?;
        t.bytes += c.multiline().await? as u64;
        t.msgs += 1;
    }
    c.cmd("QUIT").await?;
    t.sessions += 1;
    Ok(())
}

async fn worker(idx: u64, cfg: Arc<Cfg>, done: Arc<AtomicU64>) -> Tally {
    let mut t = Tally::default();
    let mut u = idx;
    while Instant::now() < cfg.deadline && done.load(Ordering::Relaxed) < cfg.quota {
        let user = cfg
            .user_fmt
            .replacen("%d", &(u % cfg.nusers + 1).to_string(), 1);
        u += cfg.conns;
        if let Err(e) = session(&cfg, &user, &mut t, &done).await {
            t.errors += 1;
            if t.errors <= 3 {
                eprintln!("bench-pop3: client {idx}: {e}");
            }
            if t.errors > 100 {
                break;
            }
        }
    }
    t
}

fn main() {
    let mut a = Args::from_env("bench-pop3 HOST PORT [--secs S] [--conns C] …");
    let host = a.positional("HOST");
    let port: u16 = a.positional("PORT").parse().expect("PORT");
    postgate_loadgen::loopback_only(&host);
    let secs: f64 = a.opt("--secs", 30.0_f64).min(600.0);
    let conns: u64 = a.opt("--conns", 4);
    let threads: usize = a.opt("--threads", 1);
    let cfg = Arc::new(Cfg {
        host: host.clone(),
        port,
        user_fmt: a.opt("--user-fmt", "pop%d".to_string()),
        nusers: a.opt("--nusers", 20_u64).max(1),
        password: a.opt("--password", "pass".to_string()),
        per_session: a.opt("--per-session", 0),
        conns,
        deadline: Instant::now() + Duration::from_secs_f64(secs),
        quota: a.opt("--max-msgs", 1_000_000),
    });
    a.done();
    let done = Arc::new(AtomicU64::new(0));
    let run = run_clients(conns, threads, |i| worker(i, cfg.clone(), done.clone()));
    let (tallies, wall, cpu) = (run.results, run.wall, run.cpu);
    let mut all = Tally::default();
    for t in tallies {
        all.msgs += t.msgs;
        all.bytes += t.bytes;
        all.sessions += t.sessions;
        all.errors += t.errors;
    }
    println!(
        "pop3_load host={host} port={port} client=rust conns={conns} threads={threads} \
         secs={wall:.1} sessions={} msgs={} msgs_per_s={:.1} mb_per_s={:.1} \
         sessions_per_s={:.1} errors={} loadgen_cpu_pct={:.0}",
        all.sessions,
        all.msgs,
        all.msgs as f64 / wall,
        all.bytes as f64 / wall / 1e6,
        all.sessions as f64 / wall,
        all.errors,
        100.0 * cpu / wall
    );
}
