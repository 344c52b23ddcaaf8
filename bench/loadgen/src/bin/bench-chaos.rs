//! The load of bench/chaos.sh, and its verdict.
//!
//! `bench-chaos load PORTS ACKS STOP SESSIONS USER PASSWORD`: SESSIONS SMTP
//! senders and SESSIONS IMAP appenders, each message with its own
//! Message-ID, to USER's INBOX, until the file STOP exists. A message is
//! written to ACKS (`smtp ID` or `imap ID`, one a line) only once the
//! server acknowledged it: `250` to the end of DATA (RFC 5321 §4.1.1.4),
//! tagged `OK` to APPEND (RFC 9051 §6.3.12). The server is killed and
//! restarted under it: ports are read again from PORTS before each try,
//! and a refused or cut connection is a failed try, retried after a pause.
//! Prints `chaos_load tries=… acked=… failed=…`.
//!
//! `bench-chaos verify PORTS ACKS USER PASSWORD`: every acknowledged
//! Message-ID must be in USER's INBOX (one IMAP FETCH of the header field).
//! Prints `chaos_verify acked=… present=… missing=… extra=…` (extra: stored
//! though never acknowledged, as when the server died between its commit
//! and its reply: allowed) and the first missing ids; exits 1 if any is
//! missing.
use postgate_loadgen::{Imap, Ports, imap_message_ids, message, smtp_send, stuffed};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pause after a failed try (the server is down or restarting).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Bound on the whole load: it stops by itself even if STOP never comes.
const MAX_RUN: Duration = Duration::from_secs(1800);

struct Load {
    ports: PathBuf,
    acks: Mutex<std::fs::File>,
    stop: PathBuf,
    user: String,
    password: String,
    tries: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    run: String,
}

impl Load {
    fn record(&self, kind: &str, id: &str) {
        let mut f = self.acks.lock().expect("acks");
        // One write per line, to a file the load generator alone writes: it
        // is in the kernel's hands before the next try starts.
        let _ = f.write_all(format!("{kind} {id}\n").as_bytes());
        self.acked.fetch_add(1, Ordering::Relaxed);
    }

    fn done(&self) -> bool {
        self.stop.exists()
    }
}

async fn smtp_sender(load: Arc<Load>, n: usize) {
    let mut i = 0u64;
    while !load.done() {
        let Some(addr) = Ports::read(&load.ports).addr("smtp") else {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        i += 1;
        let id = format!("chaos-{}-s{n}-{i}@bench.test", load.run);
        let body = stuffed(&message(&id, &format!("smtp {n} {i}"), &load.user, 3000));
        load.tries.fetch_add(1, Ordering::Relaxed);
        match smtp_send(addr, None, "bench@remote.test", &load.user, &body).await {
            Ok((250, _)) => load.record("smtp", &id),
            _ => {
                load.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

async fn imap_appender(load: Arc<Load>, n: usize) {
    let mut i = 0u64;
    while !load.done() {
        let Some(addr) = Ports::read(&load.ports).addr("imap") else {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        // One session for many APPENDs, as a client would; a new one after
        // any failure.
        let session = async {
            let mut imap = Imap::connect(addr).await?;
            let r = imap
                .cmd(&format!("LOGIN {} {}", load.user, load.password))
                .await?;
            if !r.ok() {
                return Err(std::io::Error::other(r.done));
            }
            while !load.done() {
                i += 1;
                let id = format!("chaos-{}-i{n}-{i}@bench.test", load.run);
                let m = message(&id, &format!("imap {n} {i}"), &load.user, 3000);
                load.tries.fetch_add(1, Ordering::Relaxed);
                let r = imap.append("INBOX", &stuffed_crlf(&m)).await?;
                if r.ok() {
                    load.record("imap", &id);
                } else {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = imap.cmd("LOGOUT").await;
            Ok::<(), std::io::Error>(())
        };
        if session.await.is_err() {
            load.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// A message as APPEND sends it: CRLF lines, no dot-stuffing.
fn stuffed_crlf(m: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() + 64);
    for line in m.lines() {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn load(args: &[String]) {
    let sessions: usize = args[5].parse().expect("SESSIONS");
    let load = Arc::new(Load {
        ports: PathBuf::from(&args[2]),
        acks: Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&args[3])
                .expect("ACKS"),
        ),
        stop: PathBuf::from(&args[4]),
        user: args[6].clone(),
        password: args[7].clone(),
        tries: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        run: format!("{}", std::process::id()),
    });
    let mut tasks = Vec::new();
    for n in 0..sessions {
        tasks.push(tokio::spawn(smtp_sender(load.clone(), n)));
        tasks.push(tokio::spawn(imap_appender(load.clone(), n)));
    }
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(MAX_RUN, all).await.is_err() {
        eprintln!("bench-chaos: stopped after {MAX_RUN:?} without STOP");
    }
    println!(
        "chaos_load tries={} acked={} failed={}",
        load.tries.load(Ordering::Relaxed),
        load.acked.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed)
    );
}

async fn verify(args: &[String]) -> bool {
    let ports = Ports::read(std::path::Path::new(&args[2]));
    let acks = std::fs::read_to_string(&args[3]).expect("ACKS");
    let acked: Vec<&str> = acks
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, id)| id))
        .collect();
    let addr = ports.addr("imap").expect("imap port in PORTS");
    let mut imap = Imap::connect(addr).await.expect("IMAP connect");
    let r = imap
        .cmd(&format!("LOGIN {} {}", args[4], args[5]))
        .await
        .expect("LOGIN");
    assert!(r.ok(), "LOGIN: {}", r.done);
    let stored: HashSet<String> = imap_message_ids(&mut imap, "INBOX")
        .await
        .expect("FETCH")
        .into_iter()
        .collect();
    let _ = imap.cmd("LOGOUT").await;
    let acked_set: HashSet<&str> = acked.iter().copied().collect();
    let missing: Vec<&str> = acked
        .iter()
        .copied()
        .filter(|id| !stored.contains(*id))
        .collect();
    let extra = stored
        .iter()
        .filter(|id| id.starts_with("chaos-") && !acked_set.contains(id.as_str()))
        .count();
    println!(
        "chaos_verify acked={} present={} missing={} extra={}",
        acked.len(),
        acked.len() - missing.len(),
        missing.len(),
        extra
    );
    for id in missing.iter().take(20) {
        eprintln!("missing: {id}");
    }
    missing.is_empty()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("load") if args.len() == 8 => load(&args).await,
        Some("verify") if args.len() == 6 => {
            if !verify(&args).await {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: bench-chaos load PORTS ACKS STOP SESSIONS USER PASSWORD\n       bench-chaos verify PORTS ACKS USER PASSWORD"
            );
            std::process::exit(2);
        }
    }
}
