//! IMAP with Python's imaplib, against the real server over STARTTLS and IMAPS.
use postgate_testkit::{Server, python};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUITE: &str = include_str!("py/imap_suite.py");

fn server() -> Server {
    let s = Server::start(std::path::Path::new(BIN), "");
    s.cli(&["domain", "add", "example.org"]);
    for (a, n) in [
        ("alice@example.org", "Alice Smith"),
        ("bob@example.org", "Bob Jones"),
    ] {
        let out = s.cli_output(
            &["user", "add", a, "--name", n, "--password-stdin"],
            Some("secret\n"),
        );
        assert!(out.status.success());
    }
    s
}

fn run(case: &str) {
    let s = server();
    let args = vec![
        case.to_string(),
        s.addr("imap").port().to_string(),
        s.addr("imaps").port().to_string(),
        s.addr("smtp").port().to_string(),
    ];
    let Some((ok, out, err)) = python(SUITE, &args) else {
        return;
    };
    assert!(
        ok && out.contains("ok"),
        "imap_suite {case}: {err}\n--- server log ---\n{}",
        s.log()
    );
}

#[test]
fn login_over_starttls_and_imaps() {
    run("login");
}

#[test]
fn list_create_rename_delete_subscribe_status() {
    run("mailboxes");
}

#[test]
fn append_select_fetch_search_sort_thread_store_copy_move_expunge() {
    run("messages");
}

#[test]
fn newer_extensions_as_imaplib_sends_them() {
    run("extensions");
}

#[test]
fn notify_as_imaplib_sends_it() {
    run("notify");
}

#[test]
fn idle_wakes_on_smtp_delivery() {
    run("idle");
}

#[test]
fn two_sessions_see_each_others_changes() {
    run("two_sessions");
}
