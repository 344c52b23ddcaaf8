//! The load and the sampler of bench/soak.sh.
//!
//! `bench-soak PORTS SECS PID DATA_DIR CSV USERS PASSWORD`: for SECS seconds
//! a mixed load on the server of PORTS whose process is PID:
//! - SMTP in: `SMTP_RATE` messages a second (default 10), ~4 KB each, to
//!   user1…userUSERS@example.test in turn, a new connection each;
//! - submission: `SUBMIT_RATE` a second (default 1), AUTH PLAIN as user1,
//!   to x@relay.test (the server relays it to the sink);
//! - IMAP: `IMAP_SESSIONS` clients (default 2), each in a loop: LOGIN,
//!   SELECT INBOX, FETCH of the last 5 messages' headers and flags, STORE
//!   of \Seen on (or off) one of them, FETCH of its body, LOGOUT;
//! - POP3: `POP3_SESSIONS` clients (default 1): USER, PASS, STAT, RETR of
//!   the last message, QUIT.
//!
//! One latency per operation: an SMTP transaction from connect to the
//! reply to the end of data, an IMAP or POP3 session from connect to
//! logout. Every 10 s one CSV row: the server's RSS (VmRSS), its open file
//! descriptors, the WAL's size (DATA_DIR/postgate.db-wal; 0 if none), and
//! per protocol the operations, failures and p99 latency of those 10 s.
//!
//! Then, for each column, first, last and max, and a verdict: `flat` when
//! the mean of the last third of the rows is within 10% of the mean of the
//! middle third (or within an absolute slack, for figures too small for a
//! ratio to mean anything: 4 MiB of RSS, 8 descriptors, 8 MiB of WAL, 5 ms
//! of latency), `rising` or `falling` otherwise. The first third (warm-up,
//! caches filling) is left out. Prints `soak_column …` lines and the
//! summary `soak …`.
use postgate_loadgen::{Imap, Pop3, Ports, Rng, message, percentile, smtp_send, stuffed};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROTOCOLS: [&str; 4] = ["smtp", "submit", "imap", "pop3"];
const SAMPLE: Duration = Duration::from_secs(10);

/// Latencies (ms) and failures of the current window, per protocol.
#[derive(Debug, Default)]
struct Window {
    ms: [Vec<f64>; 4],
    failed: [u64; 4],
}

type Shared = Arc<Mutex<Window>>;

fn record(w: &Shared, proto: usize, started: Instant, ok: bool) {
    let mut w = w.lock().unwrap();
    if ok {
        w.ms[proto].push(started.elapsed().as_secs_f64() * 1000.0);
    } else {
        w.failed[proto] += 1;
    }
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends at `rate` a second until `end`, at most 16 at once.
async fn smtp_load(
    addr: SocketAddr,
    rate: f64,
    users: usize,
    auth: bool,
    password: String,
    end: Instant,
    w: Shared,
) {
    if rate <= 0.0 {
        return;
    }
    let proto = if auth { 1 } else { 0 };
    let busy = Arc::new(tokio::sync::Semaphore::new(16));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < end {
        tick.tick().await;
        let Ok(permit) = busy.clone().acquire_owned().await else {
            break;
        };
        let (w, seq, password) = (w.clone(), seq.clone(), password.clone());
        tokio::spawn(async move {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let (rcpt, creds) = if auth {
                (
                    "x@relay.test".to_string(),
                    Some(("user1@example.test", password.as_str())),
                )
            } else {
                (format!("user{}@example.test", n as usize % users + 1), None)
            };
            let id = format!("soak-{}-{proto}-{n}@bench.test", std::process::id());
            let body = stuffed(&message(&id, &format!("soak {n}"), &rcpt, 4000));
            let from = if auth {
                "user1@example.test"
            } else {
                "bench@remote.test"
            };
            let started = Instant::now();
            let ok = matches!(
                smtp_send(addr, creds, from, &rcpt, &body).await,
                Ok((250, _))
            );
            record(&w, proto, started, ok);
            drop(permit);
        });
    }
}

async fn imap_cycle(addr: SocketAddr, user: &str, password: &str, rng: &mut Rng) -> bool {
    let run = async {
        let mut imap = Imap::connect(addr).await?;
        let check = |r: postgate_loadgen::ImapResponse| {
            if r.ok() {
                Ok(r)
            } else {
                Err(std::io::Error::other(r.done))
            }
        };
        check(imap.cmd(&format!("LOGIN {user} {password}")).await?)?;
        let r = check(imap.cmd("SELECT INBOX").await?)?;
        let exists = r
            .untagged
            .iter()
            .find_map(|l| {
                let t = String::from_utf8_lossy(l);
                let rest = t.strip_prefix("* ")?;
                let (n, what) = rest.split_once(' ')?;
                what.trim_end()
                    .eq_ignore_ascii_case("EXISTS")
                    .then(|| n.parse::<u64>().ok())?
            })
            .unwrap_or(0);
        if exists > 0 {
            let first = exists.saturating_sub(4).max(1);
            check(
                imap.cmd(&format!(
                    "FETCH {first}:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)])"
                ))
                .await?,
            )?;
            let n = first + rng.below(exists - first + 1);
            let op = if rng.below(2) == 0 { "+" } else { "-" };
            check(imap.cmd(&format!("STORE {n} {op}FLAGS (\\Seen)")).await?)?;
            check(imap.cmd(&format!("FETCH {n} (BODY.PEEK[])")).await?)?;
        }
        check(imap.cmd("LOGOUT").await?)?;
        Ok::<(), std::io::Error>(())
    };
    run.await.is_ok()
}

async fn pop3_cycle(addr: SocketAddr, user: &str, password: &str) -> bool {
    let run = async {
        let mut pop = Pop3::connect(addr).await?;
        pop.login(user, password).await?;
        let count = pop.count().await?;
        if count > 0 {
            let (status, _) = pop.multi(&format!("RETR {count}")).await?;
            if !status.starts_with("+OK") {
                return Err(std::io::Error::other(status));
            }
        }
        let r = pop.cmd("QUIT").await?;
        if !r.starts_with("+OK") {
            return Err(std::io::Error::other(r));
        }
        Ok::<(), std::io::Error>(())
    };
    run.await.is_ok()
}

/// One reader: IMAP (`imap`) or POP3 sessions in a loop, a pause between.
async fn reader(
    addr: SocketAddr,
    imap: bool,
    k: usize,
    users: usize,
    password: String,
    end: Instant,
    w: Shared,
) {
    let mut rng = Rng::new(k as u64 + 7);
    let mut i = 0;
    while Instant::now() < end {
        i += 1;
        // POP3 readers take the users from the last down, IMAP ones from the
        // first up, so that they rarely want the same maildrop at once.
        let n = if imap {
            (k + i) % users + 1
        } else {
            users - (k + i) % users
        };
        let user = format!("user{n}@example.test");
        let started = Instant::now();
        let (ok, proto) = if imap {
            (imap_cycle(addr, &user, &password, &mut rng).await, 2)
        } else {
            (pop3_cycle(addr, &user, &password).await, 3)
        };
        record(&w, proto, started, ok);
        tokio::time::sleep(Duration::from_millis(if imap { 200 } else { 500 })).await;
    }
}

/// (RSS in KiB, open descriptors) of a process.
fn process(pid: u32) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    (rss, fds)
}

const COLUMNS: &[&str] = &[
    "rss_kb",
    "fds",
    "wal_kb",
    "smtp_n",
    "smtp_failed",
    "smtp_p99_ms",
    "submit_n",
    "submit_failed",
    "submit_p99_ms",
    "imap_n",
    "imap_failed",
    "imap_p99_ms",
    "pop3_n",
    "pop3_failed",
    "pop3_p99_ms",
];

/// The absolute slack under which a column counts as flat whatever the ratio.
fn slack(column: &str) -> f64 {
    match column {
        "rss_kb" => 4096.0,
        "fds" => 8.0,
        "wal_kb" => 8192.0,
        c if c.ends_with("_ms") => 5.0,
        _ => 0.0,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `flat`, `rising` or `falling`: the last third's mean against the middle
/// third's (see the module's documentation).
fn verdict(column: &str, values: &[f64]) -> &'static str {
    let third = values.len() / 3;
    if third == 0 {
        return "too-short";
    }
    let middle = mean(&values[third..2 * third]);
    let last = mean(&values[values.len() - third..]);
    let diff = last - middle;
    if diff.abs() <= slack(column) || diff.abs() <= 0.10 * middle.abs() {
        "flat"
    } else if diff > 0.0 {
        "rising"
    } else {
        "falling"
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: bench-soak PORTS SECS PID DATA_DIR CSV USERS PASSWORD");
        std::process::exit(2);
    }
    let ports = Ports::read(std::path::Path::new(&args[1]));
    let secs: u64 = args[2].parse().expect("SECS");
    assert!(secs <= 24 * 3600, "SECS capped at a day");
    let pid: u32 = args[3].parse().expect("PID");
    let wal = std::path::Path::new(&args[4]).join("postgate.db-wal");
    let users: usize = args[6].parse().expect("USERS");
    let password = args[7].clone();
    let mut csv = std::fs::File::create(&args[5]).expect("CSV");
    writeln!(csv, "t_s,{}", COLUMNS.join(",")).expect("CSV");
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let w: Shared = Arc::default();
    let port = |role: &str| ports.addr(role).unwrap_or_else(|| panic!("no {role} port"));
    let mut tasks = vec![
        tokio::spawn(smtp_load(
            port("smtp"),
            env("SMTP_RATE", 10.0),
            users,
            false,
            password.clone(),
            end,
            w.clone(),
        )),
        tokio::spawn(smtp_load(
            port("submission"),
            env("SUBMIT_RATE", 1.0),
            users,
            true,
            password.clone(),
            end,
            w.clone(),
        )),
    ];
    for k in 0..env("IMAP_SESSIONS", 2.0) as usize {
        tasks.push(tokio::spawn(reader(
            port("imap"),
            true,
            k,
            users,
            password.clone(),
            end,
            w.clone(),
        )));
    }
    for k in 0..env("POP3_SESSIONS", 1.0) as usize {
        tasks.push(tokio::spawn(reader(
            port("pop3"),
            false,
            k,
            users,
            password.clone(),
            end,
            w.clone(),
        )));
    }
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE, SAMPLE);
    while Instant::now() < end {
        tick.tick().await;
        let (rss, fds) = process(pid);
        let wal_kb = std::fs::metadata(&wal).map_or(0, |m| m.len() / 1024);
        let mut window = std::mem::take(&mut *w.lock().unwrap());
        let mut row = vec![rss as f64, fds as f64, wal_kb as f64];
        for p in 0..PROTOCOLS.len() {
            row.push(window.ms[p].len() as f64);
            row.push(window.failed[p] as f64);
            row.push(percentile(&mut window.ms[p], 99.0));
        }
        let t = started.elapsed().as_secs();
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.1}")).collect();
        writeln!(csv, "{t},{}", cells.join(",")).expect("CSV");
        rows.push(row);
        if rss == 0 {
            eprintln!("bench-soak: process {pid} is gone");
            break;
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    let mut summary = format!(
        "soak secs={} samples={}",
        started.elapsed().as_secs(),
        rows.len()
    );
    let mut flat = true;
    for (i, column) in COLUMNS.iter().enumerate() {
        let values: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        let first = values.first().copied().unwrap_or(0.0);
        let last = values.last().copied().unwrap_or(0.0);
        let max = values.iter().copied().fold(0.0, f64::max);
        let total: f64 = values.iter().sum();
        let v = verdict(column, &values);
        println!(
            "soak_column {column} first={first:.1} last={last:.1} max={max:.1} total={total:.0} verdict={v}"
        );
        if ["rss_kb", "fds", "wal_kb"].contains(column) || column.ends_with("_p99_ms") {
            summary.push_str(&format!(" {column}={first:.0}/{last:.0}/{max:.0}:{v}"));
            flat &= v != "rising";
        }
        if column.ends_with("_n") || column.ends_with("_failed") {
            summary.push_str(&format!(" {column}={total:.0}"));
        }
    }
    summary.push_str(&format!(
        " verdict={}",
        if flat { "flat" } else { "not-flat" }
    ));
    println!(
        "soak_definition first/last/max per column; flat: mean of the last third of the samples within 10% of the middle third's (or within 4 MiB RSS, 8 fds, 8 MiB WAL, 5 ms); verdict=flat when no figure is rising"
    );
    println!("{summary}");
}
