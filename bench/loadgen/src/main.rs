//! Load generators for bench/ (not a test, not shipped).
//!
//! `smtp PORT COUNT SESSIONS TEMPLATE RCPT [TIMEOUT_SECS] [FIRST]`: sends COUNT
//! messages to 127.0.0.1:PORT over SESSIONS concurrent senders, a new
//! connection per message (as smtp-source does by default), each message
//! the TEMPLATE file with every `{N}` replaced by the message's number
//! (FIRST, FIRST+1, …; default 0), so that no two are alike (an invitation
//! with its own UID, say). Prints one
//! summary line: `loadgen_smtp msgs=… ok=… failed=… secs=… msgs_per_s=…`.
//!
//! `imap-login PORT COUNT SESSIONS USERS PASSWORD [TIMEOUT_SECS]`: COUNT
//! IMAP logins over SESSIONS concurrent clients, a new connection each
//! (greeting, `LOGIN userN@example.test PASSWORD` for N cycling through
//! 1..=USERS, `LOGOUT`). Prints `loadgen_imap_login logins=… ok=… failed=…
//! secs=… logins_per_s=…`.
//!
//! Stops after COUNT or TIMEOUT_SECS (default 300), loopback only.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0));
        }
    }
}

async fn one(port: u16, rcpt: &str, body: &[u8]) -> std::io::Result<bool> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    if reply(&mut r).await? != 220 {
        return Ok(false);
    }
    for (cmd, want) in [
        ("EHLO loadgen.test\r\n".to_string(), 250),
        ("MAIL FROM:<bench@remote.test>\r\n".to_string(), 250),
        (format!("RCPT TO:<{rcpt}>\r\n"), 250),
        ("DATA\r\n".to_string(), 354),
    ] {
        w.write_all(cmd.as_bytes()).await?;
        if reply(&mut r).await? != want {
            return Ok(false);
        }
    }
    w.write_all(body).await?;
    w.write_all(b".\r\n").await?;
    let ok = reply(&mut r).await? == 250;
    w.write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut r).await;
    Ok(ok)
}

async fn login(port: u16, user: &str, password: &str) -> std::io::Result<bool> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    if !line.starts_with("* OK") {
        return Ok(false);
    }
    w.write_all(format!("a LOGIN {user} {password}\r\n").as_bytes())
        .await?;
    let ok = loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(false);
        }
        if let Some(rest) = line.strip_prefix("a ") {
            break rest.starts_with("OK");
        }
    };
    w.write_all(b"b LOGOUT\r\n").await?;
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 || line.starts_with("b ") {
            break;
        }
    }
    Ok(ok)
}

async fn imap_logins(args: &[String]) {
    let port: u16 = args[2].parse().expect("PORT");
    let count: usize = args[3].parse().expect("COUNT");
    let sessions: usize = args[4].parse().expect("SESSIONS");
    let users: usize = args[5].parse().expect("USERS");
    let password = Arc::new(args[6].clone());
    let timeout = Duration::from_secs(args.get(7).and_then(|t| t.parse().ok()).unwrap_or(300));
    let (ok, failed, secs) = drive(count, sessions, timeout, move |n| {
        let password = password.clone();
        async move {
            let user = format!("user{}@example.test", n % users.max(1) + 1);
            matches!(login(port, &user, &password).await, Ok(true))
        }
    })
    .await;
    println!(
        "loadgen_imap_login logins={count} ok={ok} failed={failed} secs={secs:.2} logins_per_s={:.1}",
        ok as f64 / secs
    );
}

/// Runs `one(n)` for n in 0..count over `sessions` concurrent tasks, until
/// done or `timeout`; (succeeded, failed, seconds).
async fn drive<F, Fut>(
    count: usize,
    sessions: usize,
    timeout: Duration,
    one: F,
) -> (usize, usize, f64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    assert!(count <= 1_000_000, "COUNT capped at 1,000,000");
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + timeout;
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (next, ok, failed, one) = (next.clone(), ok.clone(), failed.clone(), one.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count || Instant::now() > deadline {
                    break;
                }
                if one(n).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// The message as sent: `{N}` replaced, lines CRLF, leading dots doubled.
fn render(template: &str, n: usize) -> Vec<u8> {
    postgate_loadgen::stuffed(&template.replace("{N}", &n.to_string()))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 7 && args[1] == "imap-login" {
        imap_logins(&args).await;
        return;
    }
    if args.len() < 7 || args[1] != "smtp" {
        eprintln!(
            "usage: postgate-loadgen smtp PORT COUNT SESSIONS TEMPLATE RCPT [TIMEOUT_SECS] [FIRST]\n       postgate-loadgen imap-login PORT COUNT SESSIONS USERS PASSWORD [TIMEOUT_SECS]"
        );
        std::process::exit(2);
    }
    let port: u16 = args[2].parse().expect("PORT");
    let count: usize = args[3].parse().expect("COUNT");
    let sessions: usize = args[4].parse().expect("SESSIONS");
    let template = Arc::new(std::fs::read_to_string(&args[5]).expect("TEMPLATE"));
    let rcpt = Arc::new(args[6].clone());
    let timeout = Duration::from_secs(args.get(7).and_then(|t| t.parse().ok()).unwrap_or(300));
    let first: usize = args.get(8).and_then(|f| f.parse().ok()).unwrap_or(0);
    let (ok, failed, secs) = drive(count, sessions, timeout, move |n| {
        let (template, rcpt) = (template.clone(), rcpt.clone());
        async move {
            let body = render(&template, first + n);
            matches!(one(port, &rcpt, &body).await, Ok(true))
        }
    })
    .await;
    println!(
        "loadgen_smtp msgs={count} ok={ok} failed={failed} secs={secs:.2} msgs_per_s={:.1}",
        ok as f64 / secs
    );
}
