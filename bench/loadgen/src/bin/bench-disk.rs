//! The probes of bench/full_disk.sh, each one line of `key=value` output.
//!
//! `bench-disk fill PORT RCPT SIZE MAX`: SIZE-byte messages over SMTP, one
//! connection each, until one is refused (or MAX were taken). Prints
//! `disk_fill stored=N reply="…"` (the refusal, verbatim).
//!
//! `bench-disk smtp PORT RCPT SIZE`: one message; prints `disk_smtp
//! reply="…"`; exits 0 on `250`.
//!
//! `bench-disk append PORT USER PASSWORD SIZE`: one IMAP APPEND to INBOX;
//! prints `disk_append reply="…"` (the tagged completion); exits 0 on OK.
//!
//! `bench-disk read IMAP_PORT POP3_PORT USER PASSWORD`: IMAP SELECT INBOX
//! and FETCH of the last message's bytes, POP3 STAT and RETR of the last
//! message. Prints `disk_read imap_exists=N imap_fetch_bytes=B pop3_count=N
//! pop3_retr_bytes=B`; exits 0 when every step succeeded.
use postgate_loadgen::{Imap, Pop3, message, smtp_send, stuffed};
use std::net::SocketAddr;

fn addr(port: &str) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port.parse::<u16>().expect("PORT")))
}

fn body(n: u64, rcpt: &str, size: usize) -> Vec<u8> {
    let id = format!("disk-{}-{n}@bench.test", std::process::id());
    stuffed(&message(&id, &format!("fill {n}"), rcpt, size))
}

async fn fill(args: &[String]) -> i32 {
    let (port, rcpt) = (addr(&args[2]), &args[3]);
    let size: usize = args[4].parse().expect("SIZE");
    let max: u64 = args[5].parse().expect("MAX");
    let mut stored = 0;
    let reply = loop {
        if stored >= max {
            break "(MAX reached)".to_string();
        }
        match smtp_send(
            port,
            None,
            "bench@remote.test",
            rcpt,
            &body(stored, rcpt, size),
        )
        .await
        {
            Ok((250, _)) => stored += 1,
            Ok((_, text)) => break text,
            Err(e) => break format!("I/O error: {e}"),
        }
    };
    println!("disk_fill stored={stored} reply=\"{reply}\"");
    0
}

async fn smtp(args: &[String]) -> i32 {
    let size: usize = args[4].parse().expect("SIZE");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    match smtp_send(
        addr(&args[2]),
        None,
        "bench@remote.test",
        &args[3],
        &body(nonce, &args[3], size),
    )
    .await
    {
        Ok((code, text)) => {
            println!("disk_smtp reply=\"{text}\"");
            i32::from(code != 250)
        }
        Err(e) => {
            println!("disk_smtp reply=\"I/O error: {e}\"");
            1
        }
    }
}

async fn append(args: &[String]) -> i32 {
    let size: usize = args[5].parse().expect("SIZE");
    let run = async {
        let mut imap = Imap::connect(addr(&args[2])).await?;
        let r = imap.cmd(&format!("LOGIN {} {}", args[3], args[4])).await?;
        if !r.ok() {
            return Ok(format!("LOGIN {}", r.done));
        }
        let id = format!("disk-append-{}@bench.test", std::process::id());
        let m = message(&id, "appended", &args[3], size);
        let r = imap.append("INBOX", m.as_bytes()).await?;
        let _ = imap.cmd("LOGOUT").await;
        Ok::<String, std::io::Error>(r.done)
    };
    match run.await {
        Ok(done) => {
            println!("disk_append reply=\"{done}\"");
            i32::from(!done.starts_with("OK"))
        }
        Err(e) => {
            println!("disk_append reply=\"I/O error: {e}\"");
            1
        }
    }
}

async fn read(args: &[String]) -> i32 {
    let imap = async {
        let mut imap = Imap::connect(addr(&args[2])).await?;
        let r = imap.cmd(&format!("LOGIN {} {}", args[4], args[5])).await?;
        if !r.ok() {
            return Err(std::io::Error::other(format!("LOGIN {}", r.done)));
        }
        let r = imap.cmd("SELECT INBOX").await?;
        let exists = r
            .untagged
            .iter()
            .filter_map(|l| {
                let t = String::from_utf8_lossy(l);
                let rest = t.strip_prefix("* ")?;
                let (n, what) = rest.split_once(' ')?;
                what.trim_end()
                    .eq_ignore_ascii_case("EXISTS")
                    .then(|| n.parse::<u64>().ok())?
            })
            .next()
            .unwrap_or(0);
        let r = imap.cmd("FETCH * (BODY.PEEK[])").await?;
        if !r.ok() {
            return Err(std::io::Error::other(format!("FETCH {}", r.done)));
        }
        let bytes: usize = r.untagged.iter().map(Vec::len).sum();
        let _ = imap.cmd("LOGOUT").await;
        Ok::<(u64, usize), std::io::Error>((exists, bytes))
    };
    let pop3 = async {
        let mut pop = Pop3::connect(addr(&args[3])).await?;
        pop.login(&args[4], &args[5]).await?;
        let count = pop.count().await?;
        let (status, body) = pop.multi(&format!("RETR {count}")).await?;
        let _ = pop.cmd("QUIT").await;
        if !status.starts_with("+OK") {
            return Err(std::io::Error::other(status));
        }
        Ok::<(u64, usize), std::io::Error>((count, body.len()))
    };
    let (i, p) = (imap.await, pop3.await);
    let mut failed = 0;
    let (exists, fetched) = i.unwrap_or_else(|e| {
        eprintln!("IMAP read: {e}");
        failed = 1;
        (0, 0)
    });
    let (count, retr) = p.unwrap_or_else(|e| {
        eprintln!("POP3 read: {e}");
        failed = 1;
        (0, 0)
    });
    println!(
        "disk_read imap_exists={exists} imap_fetch_bytes={fetched} pop3_count={count} pop3_retr_bytes={retr}"
    );
    failed
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match (args.get(1).map(String::as_str), args.len()) {
        (Some("fill"), 6) => fill(&args).await,
        (Some("smtp"), 5) => smtp(&args).await,
        (Some("append"), 6) => append(&args).await,
        (Some("read"), 6) => read(&args).await,
        _ => {
            eprintln!(
                "usage: bench-disk fill PORT RCPT SIZE MAX | smtp PORT RCPT SIZE | append PORT USER PASSWORD SIZE | read IMAP_PORT POP3_PORT USER PASSWORD"
            );
            2
        }
    };
    std::process::exit(code);
}
