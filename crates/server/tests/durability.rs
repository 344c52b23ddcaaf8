//! Nothing acknowledged is lost: 200 concurrent deliveries, SIGKILL in the
//! middle, restart; every message that got its 250 is in the store.
use postgate_testkit::{RawClient, Server};
use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SENDERS: usize = 200;

#[test]
fn acknowledged_deliveries_survive_sigkill() {
    let mut s = Server::start(
        std::path::Path::new(BIN),
        "[smtp]\nlisten = [\"127.0.0.1:0\"]\nthreads = 400\n",
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    let addr = s.addr("smtp");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let barrier = Arc::new(Barrier::new(SENDERS + 1));
    let body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(1500);
    let threads: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (acked, barrier, body) = (acked.clone(), barrier.clone(), body.clone());
            std::thread::spawn(move || {
                let mut c = RawClient::connect(addr);
                c.reply();
                barrier.wait();
                let subject = format!("durable-{i}");
                c.send(format!("EHLO c{i}\r\nMAIL FROM:<s{i}@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n").as_bytes());
                for _ in 0..4 {
                    c.reply();
                }
                c.send(format!("Subject: {subject}\r\n\r\n{body}.\r\n").as_bytes());
                let reply = c.reply();
                if reply.first().is_some_and(|l| l.starts_with("250 2.0.0")) {
                    acked.lock().unwrap().push(subject);
                }
            })
        })
        .collect();
    barrier.wait();
    // Kill once some, not all, have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < SENDERS / 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    s.kill();
    let at_kill = acked.lock().unwrap().len();
    for t in threads {
        let _ = t.join();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(at_kill > 0, "nothing was acknowledged before the kill");
    eprintln!(
        "acknowledged before SIGKILL: {at_kill}; in all: {} of {SENDERS}",
        acked.len()
    );

    s.restart();
    let stored: HashSet<String> = s
        .items("alice@example.org", "Inbox")
        .into_iter()
        .filter_map(|i| i["subject"].as_str().map(str::to_string))
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(stored.len() >= acked.len());

    // The store is whole: the restarted server delivers and the UIDs go on.
    let mut c = RawClient::connect(s.addr("smtp"));
    c.reply();
    assert!(c.cmd("EHLO again").starts_with("250"));
    c.cmd("MAIL FROM:<x@remote.test>");
    assert_eq!(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
    c.cmd("DATA");
    assert!(
        c.cmd("Subject: after restart\r\n\r\nok\r\n.")
            .starts_with("250 2.0.0")
    );
    let items = s.items("alice@example.org", "Inbox");
    assert_eq!(items.last().unwrap()["subject"], "after restart");
    let uids: Vec<u64> = items.iter().map(|i| i["uid"].as_u64().unwrap()).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
}
