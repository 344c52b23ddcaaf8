//! The load of bench/slowloris.sh.
//!
//! `bench-slowloris PORTS SLOW SECS INTERVAL USER PASSWORD`: SLOW slow
//! clients spread evenly over the SMTP, IMAP and POP3 listeners of PORTS,
//! each from its own loopback address (127.0.A.B, A = 1…, B = 1…250: a
//! per-address cap sees one client each), started over the first 10 s.
//! Each reads the greeting, then sends one byte of a command that never
//! ends (no line feed) every INTERVAL seconds, and when the server closes
//! the connection connects again, until SECS are over. Meanwhile a normal
//! client on 127.0.0.1 runs, once a second, an SMTP transaction to USER, an
//! IMAP session (LOGIN, SELECT INBOX, FETCH of the last message, LOGOUT)
//! and a POP3 session (USER, PASS, STAT, QUIT) as USER/PASSWORD.
//!
//! Prints one line per listener for the slow clients (`slow ROLE
//! connects=… accepted=… refused=… cut=… cut_p50_s=… cut_max_s=…
//! open_at_end=… connect_errors=…`: refused is a try-later greeting,
//! cut a close by the server after an accepted greeting, with the seconds
//! it took), one per protocol for the normal client (`normal ROLE runs=…
//! failed=… p50_ms=… p99_ms=… max_ms=…`), then the summary line
//! `slowloris …`.
use postgate_loadgen::{Conn, Imap, Pop3, Ports, Rng, message, percentile, smtp_send, stuffed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROLES: [&str; 3] = ["smtp", "imap", "pop3"];
/// Slow clients start over this long, not all at once (the listen backlog).
const RAMP: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Slow {
    connects: u64,
    accepted: u64,
    refused: u64,
    cut: Vec<f64>,
    open_at_end: u64,
    connect_errors: u64,
    /// What the server said when it cut (first words), counted.
    last_words: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Normal {
    runs: u64,
    failed: u64,
    ms: Vec<f64>,
    errors: std::collections::BTreeMap<String, u64>,
}

fn accepted(role: &str, greeting: &[u8]) -> bool {
    match role {
        "smtp" => greeting.starts_with(b"220"),
        "imap" => greeting.starts_with(b"* OK"),
        _ => greeting.starts_with(b"+OK"),
    }
}

/// The first words of what the server sent before closing (its goodbye).
fn words(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let last = text.lines().last().unwrap_or("").trim();
    if last.is_empty() {
        return "(nothing)".into();
    }
    last.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn slow_client(
    k: usize,
    addr: SocketAddr,
    role: &'static str,
    interval: Duration,
    end: Instant,
    stats: Arc<Mutex<Slow>>,
) {
    let from = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (k / 250) as u8,
        1 + (k % 250) as u8,
    ));
    let mut rng = Rng::new(k as u64 + 1);
    while Instant::now() < end {
        stats.lock().unwrap().connects += 1;
        let mut c = match Conn::connect_from(from, addr).await {
            Ok(c) => c,
            Err(_) => {
                stats.lock().unwrap().connect_errors += 1;
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        let greeting = match c.line().await {
            Ok(g) => g,
            Err(_) => {
                stats.lock().unwrap().refused += 1;
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        if !accepted(role, &greeting) {
            {
                let mut s = stats.lock().unwrap();
                s.refused += 1;
                *s.last_words.entry(words(&greeting)).or_default() += 1;
            }
            tokio::time::sleep(interval).await;
            continue;
        }
        stats.lock().unwrap().accepted += 1;
        let started = Instant::now();
        let cut = loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            // A little jitter, so that the bytes do not all come at once.
            let wait = interval
                .mul_f64(0.75 + rng.below(50) as f64 / 100.0)
                .min(left);
            if let Some(said) = c.until_closed(wait).await {
                break Some(said);
            }
            if Instant::now() >= end {
                break None;
            }
            // A command that never ends: letters, never a line feed.
            if c.send(b"N").await.is_err() {
                break Some(Vec::new());
            }
        };
        let mut s = stats.lock().unwrap();
        match cut {
            Some(said) => {
                s.cut.push(started.elapsed().as_secs_f64());
                *s.last_words.entry(words(&said)).or_default() += 1;
            }
            None => s.open_at_end += 1,
        }
    }
}

async fn normal_smtp(addr: SocketAddr, user: &str, n: u64) -> Result<(), String> {
    let id = format!("normal-{}-{n}@bench.test", std::process::id());
    let body = stuffed(&message(&id, "normal", user, 2000));
    match smtp_send(addr, None, "bench@remote.test", user, &body).await {
        Ok((250, _)) => Ok(()),
        Ok((_, text)) => Err(text.chars().take(40).collect()),
        Err(e) => Err(e.kind().to_string()),
    }
}

async fn normal_imap(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let run = async {
        let mut imap = Imap::connect(addr).await?;
        for cmd in [
            format!("LOGIN {user} {password}"),
            "SELECT INBOX".to_string(),
            "FETCH * (FLAGS BODY.PEEK[])".to_string(),
            "LOGOUT".to_string(),
        ] {
            let r = imap.cmd(&cmd).await?;
            if !r.ok() {
                return Err(std::io::Error::other(r.done));
            }
        }
        Ok::<(), std::io::Error>(())
    };
    run.await
        .map_err(|e| e.to_string().chars().take(40).collect())
}

async fn normal_pop3(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let run = async {
        let mut pop = Pop3::connect(addr).await?;
        for cmd in [
            format!("USER {user}"),
            format!("PASS {password}"),
            "STAT".to_string(),
            "QUIT".to_string(),
        ] {
            let r = pop.cmd(&cmd).await?;
            if !r.starts_with("+OK") {
                return Err(std::io::Error::other(r));
            }
        }
        Ok::<(), std::io::Error>(())
    };
    run.await
        .map_err(|e| e.to_string().chars().take(40).collect())
}

async fn normal_client(
    ports: Ports,
    user: String,
    password: String,
    end: Instant,
    stats: Arc<Mutex<[Normal; 3]>>,
) {
    let mut n = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        for (i, role) in ROLES.iter().enumerate() {
            let addr = ports.addr(role).expect("port");
            let started = Instant::now();
            let r = match *role {
                "smtp" => normal_smtp(addr, &user, n).await,
                "imap" => normal_imap(addr, &user, &password).await,
                _ => normal_pop3(addr, &user, &password).await,
            };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let mut s = stats.lock().unwrap();
            let s = &mut s[i];
            s.runs += 1;
            match r {
                Ok(()) => s.ms.push(ms),
                Err(e) => {
                    s.failed += 1;
                    *s.errors.entry(e).or_default() += 1;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: bench-slowloris PORTS SLOW SECS INTERVAL USER PASSWORD");
        std::process::exit(2);
    }
    let ports = Ports::read(std::path::Path::new(&args[1]));
    let slow: usize = args[2].parse().expect("SLOW");
    assert!(
        slow <= 60_000,
        "SLOW capped at 60,000 (240 × 250 addresses)"
    );
    let secs: u64 = args[3].parse().expect("SECS");
    assert!(secs <= 3600, "SECS capped at an hour");
    let interval = Duration::from_secs_f64(args[4].parse().expect("INTERVAL"));
    let (user, password) = (args[5].clone(), args[6].clone());
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let slow_stats: Vec<Arc<Mutex<Slow>>> = ROLES.iter().map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for k in 0..slow {
        let role = ROLES[k % 3];
        let addr = ports.addr(role).unwrap_or_else(|| panic!("no {role} port"));
        let stats = slow_stats[k % 3].clone();
        let delay = RAMP.mul_f64(k as f64 / slow.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            slow_client(k, addr, role, interval, end, stats).await;
        }));
    }
    let normal_stats: Arc<Mutex<[Normal; 3]>> = Arc::default();
    let normal = tokio::spawn(normal_client(
        ports.clone(),
        user,
        password,
        end,
        normal_stats.clone(),
    ));
    let _ = normal.await;
    // Every slow client ends by `end` (its waits are bounded by it), give
    // or take one step's timeout.
    for t in tasks {
        let _ = t.await;
    }
    let mut summary = format!("slowloris slow={slow} secs={secs} interval_s={}", args[4]);
    for (role, s) in ROLES.iter().zip(&slow_stats) {
        let mut s = s.lock().unwrap();
        let cut = s.cut.len();
        let p50 = percentile(&mut s.cut, 50.0);
        let max = percentile(&mut s.cut, 100.0);
        println!(
            "slow {role} connects={} accepted={} refused={} cut={cut} cut_p50_s={p50:.1} cut_max_s={max:.1} open_at_end={} connect_errors={} goodbyes={:?}",
            s.connects, s.accepted, s.refused, s.open_at_end, s.connect_errors, s.last_words
        );
        summary.push_str(&format!(
            " {role}_slow_cut={cut} {role}_slow_cut_p50_s={p50:.1} {role}_slow_refused={}",
            s.refused
        ));
    }
    let mut normal = normal_stats.lock().unwrap();
    for (role, s) in ROLES.iter().zip(normal.iter_mut()) {
        let p50 = percentile(&mut s.ms, 50.0);
        let p99 = percentile(&mut s.ms, 99.0);
        let max = percentile(&mut s.ms, 100.0);
        println!(
            "normal {role} runs={} failed={} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} errors={:?}",
            s.runs, s.failed, s.errors
        );
        summary.push_str(&format!(
            " normal_{role}_p50_ms={p50:.1} normal_{role}_p99_ms={p99:.1} normal_{role}_failed={}",
            s.failed
        ));
    }
    println!("{summary}");
}
