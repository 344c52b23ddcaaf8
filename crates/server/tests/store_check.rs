//! `postgate store check`: a clean store is "ok" (also while the server
//! runs, and with appointments, whose messages are addressed by bytes and
//! content); a store damaged on purpose, one kind of damage at a time, is
//! reported with the damaged row named and a failing exit status.
use postgate_testkit::{Server, pg_database, pg_store_section, smtp_fill, tool};
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const MESSAGES: usize = 12;
/// The damage tests edit the embedded store's file: their servers keep it
/// whatever POSTGATE_TEST_BACKEND says (PostgreSQL has its own test below).
const EMBEDDED: &str = "[store]\nbackend = \"embedded\"\n";

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//check//EN\r\n\
BEGIN:VEVENT\r\nUID:check-1@example.org\r\nDTSTAMP:20250101T000000Z\r\n\
DTSTART:20250102T100000Z\r\nDTEND:20250102T110000Z\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n\
BEGIN:VTODO\r\nUID:check-2@example.org\r\nDTSTAMP:20250101T000000Z\r\nSUMMARY:Report\r\nEND:VTODO\r\n\
END:VCALENDAR\r\n";

/// A server holding MESSAGES mails and an appointment and a task for alice.
fn populated() -> Server {
    populated_with("")
}

fn populated_with(extra: &str) -> Server {
    let s = Server::start(std::path::Path::new(BIN), extra);
    s.populate("example.org", &[("alice@example.org", "Alice")]);
    smtp_fill(s.addr("smtp"), "alice@example.org", MESSAGES);
    let ics = s.dir().join("import.ics");
    std::fs::write(&ics, ICS).unwrap();
    s.cli(&[
        "calendar",
        "import",
        "alice@example.org",
        ics.to_str().unwrap(),
    ]);
    s
}

fn check(s: &Server) -> (bool, String) {
    let out: Output = s.cli_output(&["store", "check"], None);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs SQL on the stopped server's database, foreign keys off (as a
/// damaged file would be), and returns the first column of the first row
/// of `query` run before it.
fn damage(s: &Server, query: &str, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(s.dir().join("data/postgate.db")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let id: i64 = db.query_row(query, [], |r| r.get(0)).unwrap();
    db.execute(sql, [id]).unwrap();
    id
}

#[test]
fn clean_store_is_ok_while_running_and_stopped() {
    let mut s = populated();
    let (ok, out) = check(&s);
    assert!(ok, "{out}");
    // The mails, the appointment and the task (its MIME form's hash covers
    // its content too), and nothing else.
    assert!(
        out.starts_with(&format!("ok: {} messages", MESSAGES + 2)),
        "{out}"
    );
    assert!(!out.contains("problem"), "{out}");
    s.terminate();
    let (ok, out) = check(&s);
    assert!(ok, "{out}");
}

#[test]
fn truncated_blob_is_reported() {
    let mut s = populated_with(EMBEDDED);
    s.terminate();
    let id = damage(
        &s,
        "SELECT max(id) FROM blob",
        "UPDATE blob SET data = substr(data, 1, 10) WHERE id = ?1",
    );
    let (ok, out) = check(&s);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("problem: message {id}: 10 bytes stored,")),
        "{out}"
    );
    assert!(out.contains("damaged: 1 problem(s)"), "{out}");
}

#[test]
fn missing_blob_is_reported() {
    let mut s = populated_with(EMBEDDED);
    s.terminate();
    let id = damage(
        &s,
        "SELECT min(id) FROM blob",
        "DELETE FROM blob WHERE id = ?1",
    );
    let (ok, out) = check(&s);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "problem: message {id}: its bytes (blob) are missing"
        )),
        "{out}"
    );
}

#[test]
fn altered_bytes_of_the_same_size_are_reported() {
    let mut s = populated_with(EMBEDDED);
    s.terminate();
    // One byte changed: same size, another hash.
    let id = damage(
        &s,
        "SELECT min(id) FROM blob",
        "UPDATE blob SET data = CAST('X' || substr(data, 2) AS BLOB) WHERE id = ?1",
    );
    let (ok, out) = check(&s);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "problem: message {id}: its bytes do not match its SHA-256 address"
        )),
        "{out}"
    );
}

#[test]
fn item_without_its_message_and_stale_counters_are_reported() {
    let mut s = populated_with(EMBEDDED);
    s.terminate();
    let message = damage(
        &s,
        "SELECT min(message_id) FROM item",
        "DELETE FROM message WHERE id = ?1",
    );
    let folder = damage(
        &s,
        "SELECT folder_id FROM item GROUP BY folder_id ORDER BY count(*) DESC LIMIT 1",
        "UPDATE folder SET uid_next = 2 WHERE id = ?1",
    );
    let (ok, out) = check(&s);
    assert!(!ok, "{out}");
    // SQLite's foreign key check: the item (and the blob) now refer to
    // nothing.
    assert!(
        out.contains("problem: item row") && out.contains("refers to a message row"),
        "{out}"
    );
    assert!(
        !out.contains(&format!("message {message}: its bytes")),
        "{out}"
    );
    // RFC 9051 §2.3.1.1: uid_next must stay above every UID assigned.
    assert!(
        out.contains(&format!(
            "problem: folder {folder}: uid_next 2 but it holds UID"
        )),
        "{out}"
    );
}

/// On PostgreSQL the same checks run through SQL (sizes and SHA-256 on
/// the server): clean, then a truncated blob and a stale counter reported.
#[test]
fn postgres_store_is_checked_through_sql() {
    let Some(url) = pg_database() else { return };
    let Some(psql) = tool("psql") else { return };
    let s = populated_with(&pg_store_section(&url, "node-a"));
    let (ok, out) = check(&s);
    assert!(ok, "{out}");
    assert!(
        out.starts_with(&format!("ok: {} messages", MESSAGES + 2)),
        "{out}"
    );
    let sql = |q: &str| {
        let out = std::process::Command::new(&psql)
            .arg(&url)
            .args(["-qAt", "-c", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let id = sql("UPDATE blob SET data = substring(data from 1 for 10) \
         WHERE id = (SELECT max(id) FROM blob) RETURNING id");
    let folder = sql(
        "UPDATE folder SET uid_next = 2 WHERE id = (SELECT folder_id FROM item \
         GROUP BY folder_id ORDER BY count(*) DESC LIMIT 1) RETURNING id",
    );
    let (ok, out) = check(&s);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("problem: message {id}: 10 bytes stored,")),
        "{out}"
    );
    // RFC 9051 §2.3.1.1: UIDs stay below uid_next.
    assert!(
        out.contains(&format!(
            "problem: folder {folder}: uid_next 2 but it holds UID"
        )),
        "{out}"
    );
    assert!(out.contains("damaged: 2 problem(s)"), "{out}");
}
