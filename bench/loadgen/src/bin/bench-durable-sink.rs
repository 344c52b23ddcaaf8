//! A durable SMTP sink for bench/smtp_inbound.sh (not a test, not shipped):
//! what Postfix's smtp-sink is, plus the one thing every real server must
//! do before its 250: make the message durable. It answers SMTP as
//! smtp-sink does, appends each message's bytes to one file, and replies
//! 250 to the end of the data (RFC 5321 §4.1.1.4) only after an
//! `fdatasync` of that file has returned. Messages that end while a sync
//! runs share the next one (group commit), as Postgate's store does.
//!
//! It parses nothing, converts nothing and indexes nothing: its figure is
//! the ceiling of any server that keeps the "nothing lost" rule on this
//! machine, beside smtp-sink's ceiling of a server that keeps nothing.
//!
//! Usage: `bench-durable-sink FILE [--no-sync] [--batch N --linger-us US]`.
//! Listens on 127.0.0.1:0, prints the port, serves until killed. FILE is
//! emptied whenever it passes 256 MiB.
//! - `--no-sync` leaves the `fdatasync` out (its engine beside smtp-sink's).
//! - `--batch N --linger-us US`: a sync waits up to US microseconds for N
//!   messages before it starts (tuned to a known load, the ceiling rises:
//!   fewer, fuller syncs). Without them a sync takes what is waiting.
use std::fs::File;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

type Job = (Vec<u8>, oneshot::Sender<bool>);

/// When the committer syncs.
struct Policy {
    sync: bool,
    /// Messages a sync waits for (up to `linger`) before it starts.
    batch: usize,
    linger: Duration,
}

const FILE_MAX: u64 = 256 << 20;

fn main() {
    let usage = || -> ! {
        eprintln!("usage: bench-durable-sink FILE [--no-sync] [--batch N --linger-us US]");
        std::process::exit(2);
    };
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else { usage() };
    let mut policy = Policy {
        sync: true,
        batch: 1,
        linger: Duration::ZERO,
    };
    while let Some(arg) = args.next() {
        let mut number = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--no-sync" => policy.sync = false,
            "--batch" => policy.batch = number() as usize,
            "--linger-us" => policy.linger = Duration::from_micros(number()),
            _ => usage(),
        }
    }
    let file = match File::options().create(true).append(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench-durable-sink: {path}: {e}");
            std::process::exit(2);
        }
    };
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::spawn(move || commit(file, rx, policy));
    // The sessions on one thread, as smtp-sink's; the sync on another, so
    // that they go on while it waits for the disk. (Measured here: two
    // runtime threads, or the sync on the sessions' thread, were slower.)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{}", listener.local_addr().expect("addr").port());
        let _ = out.flush();
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = session(stream, tx).await;
                });
            }
        }
    });
}

/// The group commit: every message waiting is written in one call, then one
/// `fdatasync` covers them all, then each hears that it is durable.
fn commit(mut file: File, rx: mpsc::Receiver<Job>, policy: Policy) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let until = Instant::now() + policy.linger;
        while batch.len() < policy.batch {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        buf.clear();
        for (message, _) in &batch {
            buf.extend_from_slice(message);
        }
        if size > FILE_MAX {
            let _ = file.set_len(0);
            size = 0;
        }
        let ok = file.write_all(&buf).is_ok() && (!policy.sync || file.sync_data().is_ok());
        size += buf.len() as u64;
        for (_, done) in batch {
            let _ = done.send(ok);
        }
    }
}

async fn session(stream: TcpStream, tx: mpsc::Sender<Job>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    w.write_all(b"220 durable-sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-durable-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n",
            b"HELO" | b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 Ok\r\n",
            b"QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            b"DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let message = read_data(&mut r).await?;
                let (done, durable) = oneshot::channel();
                let ok = tx.send((message, done)).is_ok() && durable.await == Ok(true);
                if ok {
                    b"250 2.0.0 Ok: durable\r\n"
                } else {
                    b"451 4.3.0 Not stored\r\n"
                }
            }
            _ => b"502 5.5.2 Not implemented\r\n",
        };
        w.write_all(reply).await?;
    }
}

/// The message up to the line holding one dot, dot-unstuffed (RFC 5321
/// §4.5.2).
async fn read_data<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut message = Vec::with_capacity(16 * 1024);
    loop {
        let start = message.len();
        if r.read_until(b'\n', &mut message).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match &message[start..] {
            b".\r\n" | b".\n" => {
                message.truncate(start);
                return Ok(message);
            }
            [b'.', ..] => {
                message.remove(start);
            }
            _ => {}
        }
    }
}
