//! Several Postgate nodes on one PostgreSQL database (issue 11's "Done
//! when"): IDLE on node B wakes for mail delivered on node A; concurrent
//! APPENDs on both nodes keep UIDs ascending; POP3 on A locks the maildrop
//! against B; node A killed with 500 messages in its queue, node B delivers
//! them all. Each test makes its own database on the `POSTGATE_TEST_PG`
//! cluster and skips loudly without one.
use postgate_testkit::sink::{Sink, SinkOptions};
use postgate_testkit::{Server, pg_database, pg_store_section, python, smtp_fill};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SCRIPT: &str = include_str!("py/multinode.py");

/// Two nodes on a fresh database; alice@example.org (password "secret")
/// added through node A's CLI.
fn two_nodes(extra_a: &str, extra_b: &str) -> Option<(Server, Server)> {
    let url = pg_database()?;
    let a = Server::start(
        Path::new(BIN),
        &format!("{}{extra_a}", pg_store_section(&url, "node-a")),
    );
    let b = Server::start(
        Path::new(BIN),
        &format!("{}{extra_b}", pg_store_section(&url, "node-b")),
    );
    a.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    a.set_password("alice@example.org", "secret");
    Some((a, b))
}

fn run(case: &str, ports: &[u16], a: &Server, b: &Server) {
    let args: Vec<String> = std::iter::once(case.to_string())
        .chain(ports.iter().map(u16::to_string))
        .collect();
    let Some((ok, out, err)) = python(SCRIPT, &args) else {
        return;
    };
    eprintln!("{out}");
    assert!(
        ok && out.contains("ok"),
        "multinode {case}: {out}\n{err}\n--- node A ---\n{}\n--- node B ---\n{}",
        a.log(),
        b.log()
    );
}

#[test]
fn idle_on_one_node_wakes_for_mail_delivered_on_another() {
    let Some((a, b)) = two_nodes("", "") else {
        return;
    };
    run(
        "idle",
        &[b.addr("imaps").port(), a.addr("smtp").port()],
        &a,
        &b,
    );
}

#[test]
fn concurrent_appends_on_two_nodes_keep_uids_ascending() {
    let Some((a, b)) = two_nodes("", "") else {
        return;
    };
    run(
        "appends",
        &[a.addr("imaps").port(), b.addr("imaps").port(), 40],
        &a,
        &b,
    );
}

#[test]
fn pop3_maildrop_is_locked_across_nodes() {
    let Some((a, b)) = two_nodes("", "") else {
        return;
    };
    smtp_fill(a.addr("smtp"), "alice@example.org", 3);
    run(
        "pop3",
        &[a.addr("pop3s").port(), b.addr("pop3s").port()],
        &a,
        &b,
    );
}

#[test]
fn a_killed_nodes_queue_is_delivered_by_another() {
    const MESSAGES: usize = 500;
    // A slow Internet: every message takes a while to be accepted.
    let sink = Sink::start(SinkOptions {
        data_delay: Duration::from_millis(40),
        ..SinkOptions::default()
    });
    let outbound = format!(
        "\n[outbound]\nrelay = \"127.0.0.1:{}\"\nthreads = 2\nlease = \"10s\"\nretry_intervals = [\"1s\"]\n",
        sink.port()
    );
    // Node B's outbound side stays idle until A is gone: it starts with
    // no workers to spare (threads = 1, and it is started after the fill).
    let relay = "\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nrelay_networks = [\"127.0.0.1\"]\n";
    let Some(url) = pg_database() else {
        return;
    };
    let mut a = Server::start(
        Path::new(BIN),
        &format!("{}{relay}{outbound}", pg_store_section(&url, "node-a")),
    );
    a.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    smtp_fill(a.addr("smtp"), "someone@remote.test", MESSAGES);
    // Let A get going, then kill it mid-delivery.
    let (got, _) = sink.wait_for(Duration::from_secs(60), |r| r.len() >= 20);
    a.kill();
    let before = got.len();
    assert!(
        before < MESSAGES,
        "node A finished before it could be killed"
    );
    let b = Server::start(
        Path::new(BIN),
        &format!("{}{relay}{outbound}", pg_store_section(&url, "node-b")),
    );
    let ids = |r: &[postgate_testkit::sink::Received]| -> HashSet<String> {
        r.iter()
            .filter_map(|m| {
                let text = String::from_utf8_lossy(&m.data);
                text.lines()
                    .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
            })
            .collect()
    };
    let (got, all) = sink.wait_for(Duration::from_secs(240), |r| ids(r).len() >= MESSAGES);
    assert!(
        all,
        "node B delivered {} of {MESSAGES} distinct messages ({} received in all, {before} before the kill)\n--- node B ---\n{}",
        ids(&got).len(),
        got.len(),
        b.log()
    );
    eprintln!(
        "{MESSAGES} delivered: {before} by node A before SIGKILL, {} received in all ({} duplicates)",
        got.len(),
        got.len() - MESSAGES
    );
}
