//! The embedded store's SQLite schema and its migrations (PRAGMA user_version).
use rusqlite::Connection;

/// The schema version this build migrates to: how many migrations there are.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations in order; `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE domain (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE post_office (
    id        INTEGER PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    UNIQUE (domain_id, name)
) STRICT;

-- local_key: the case-folded local part the directory matches on.
-- dotted_key: "given.surname" case-folded, for First.Last@domain addressing.
CREATE TABLE user (
    id             INTEGER PRIMARY KEY,
    domain_id      INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    post_office_id INTEGER NOT NULL REFERENCES post_office(id) ON DELETE CASCADE,
    local_part     TEXT NOT NULL,
    local_key      TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    given_name     TEXT,
    surname        TEXT,
    title          TEXT,
    department     TEXT,
    phone          TEXT,
    password_hash  TEXT,
    dotted_key     TEXT,
    created        INTEGER NOT NULL,
    UNIQUE (domain_id, local_key)
) STRICT;
CREATE INDEX user_dotted ON user (domain_id, dotted_key);

CREATE TABLE alias (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    local_part TEXT NOT NULL,
    local_key  TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    UNIQUE (domain_id, local_key)
) STRICT;
CREATE INDEX alias_user ON alias (user_id);

CREATE TABLE grp (
    id           INTEGER PRIMARY KEY,
    domain_id    INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    local_part   TEXT NOT NULL,
    local_key    TEXT NOT NULL,
    display_name TEXT NOT NULL,
    UNIQUE (domain_id, local_key)
) STRICT;

-- Members are addresses (case-folded), resolved when mail arrives, so a group
-- may hold users, aliases and other groups.
CREATE TABLE grp_member (
    group_id INTEGER NOT NULL REFERENCES grp(id) ON DELETE CASCADE,
    member   TEXT NOT NULL,
    PRIMARY KEY (group_id, member)
) STRICT, WITHOUT ROWID;

CREATE TABLE folder (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    path_key       TEXT NOT NULL,
    role           TEXT,
    uid_validity   INTEGER NOT NULL,
    uid_next       INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    subscribed     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, path_key)
) STRICT;
CREATE INDEX folder_role ON folder (user_id, role);

-- One row per distinct RFC 5322 byte string (blobs once: keyed by SHA-256),
-- with its decoded content; items reference it. `content` is the item's
-- fields as JSON (ItemContent); its decoded bodies are in their own columns,
-- LZ4-compressed (they repeat what the blob holds, so they are kept small).
CREATE TABLE message (
    id        INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL UNIQUE,
    size      INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    from_name TEXT,
    from_addr TEXT,
    subject   TEXT,
    sent_date INTEGER,
    content   TEXT NOT NULL,
    text_body BLOB,
    html_body BLOB
) STRICT;

-- The bytes apart from the metadata, so that listing never pages through them.
CREATE TABLE blob (
    id   INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    data BLOB NOT NULL
) STRICT;

CREATE TABLE envelope (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    data        TEXT NOT NULL
) STRICT;
CREATE INDEX envelope_message ON envelope (message_id);

CREATE TABLE item (
    id            INTEGER PRIMARY KEY,
    folder_id     INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    message_id    INTEGER NOT NULL REFERENCES message(id),
    flags         INTEGER NOT NULL DEFAULT 0,
    keywords      TEXT NOT NULL DEFAULT '',
    modseq        INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    UNIQUE (folder_id, uid)
) STRICT;
CREATE INDEX item_message ON item (message_id);
"#,
    // 2: what IMAP needs beyond delivery: \Recent claims, expunge tombstones for
    // QRESYNC, subscriptions independent of folders (RFC 9051 §6.3.7), and an
    // index for changes since a modseq.
    r#"
ALTER TABLE folder ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;

CREATE TABLE expunged (
    folder_id INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    uid       INTEGER NOT NULL,
    modseq    INTEGER NOT NULL,
    PRIMARY KEY (folder_id, uid)
) STRICT, WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged (folder_id, modseq);

CREATE TABLE subscription (
    user_id  INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    path_key TEXT NOT NULL,
    path     TEXT NOT NULL,
    PRIMARY KEY (user_id, path_key)
) STRICT, WITHOUT ROWID;
INSERT INTO subscription (user_id, path_key, path)
    SELECT user_id, path_key, path FROM folder WHERE subscribed = 1;

CREATE INDEX item_modseq ON item (folder_id, modseq);
"#,
    // 3: the outbound queue. One row per message to send, one per recipient
    // with its own state, so that each recipient is retried, bounced or sent
    // on its own (RFC 5321 §4.5.4.1). A queued message holds its `message`
    // row just as an item does.
    r#"
CREATE TABLE queue (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES message(id),
    mail_from   TEXT NOT NULL,
    env_id      TEXT,
    ret         TEXT,
    smtputf8    INTEGER NOT NULL DEFAULT 0,
    eight_bit   INTEGER NOT NULL DEFAULT 0,
    sender_user INTEGER,
    created     INTEGER NOT NULL
) STRICT;
CREATE INDEX queue_message ON queue (message_id);

CREATE TABLE queue_rcpt (
    id           INTEGER PRIMARY KEY,
    queue_id     INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    domain       TEXT NOT NULL,
    orcpt        TEXT,
    notify       INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    delay_warned INTEGER NOT NULL DEFAULT 0,
    -- Claimed by a delivery agent; next_attempt is then when the claim runs out.
    leased       INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
) STRICT;
CREATE INDEX queue_rcpt_due ON queue_rcpt (status, next_attempt);
CREATE INDEX queue_rcpt_queue ON queue_rcpt (queue_id);
"#,
    // 4: appointments and tasks. One row per object (iCalendar UID) per user,
    // whose MIME form is an item of the user's Calendar or Tasks folder (the
    // row holds that item's message, as an item does). The time an object
    // covers is indexed in an R*Tree over (user, time), so "what is on
    // between A and B" reads the objects that meet the span and no others.
    // R*Tree coordinates are 32-bit floats rounded outwards: the index finds
    // a superset, the exact span is in cal_object.
    r#"
CREATE TABLE cal_object (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    uid        TEXT NOT NULL,
    folder_id  INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    item_uid   INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES message(id),
    span_lo    INTEGER,
    span_hi    INTEGER,
    -- The object without its iCalendar text, for range queries.
    listing    TEXT NOT NULL,
    UNIQUE (user_id, kind, uid)
) STRICT;
CREATE INDEX cal_object_message ON cal_object (message_id);
CREATE VIRTUAL TABLE cal_span USING rtree(id, user_lo, user_hi, lo, hi);
CREATE TRIGGER cal_object_gone AFTER DELETE ON cal_object BEGIN
    DELETE FROM cal_span WHERE id = old.id;
END;
"#,
    // Access control: classes of service (settings as JSON, see
    // postgate_types::access::ClassSettings), where they are assigned, and
    // blocked hosts. Every change bumps the directory generation, so each
    // node's policy cache sees it at once.
    r#"
CREATE TABLE cos_class (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    settings    TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE TABLE cos_assign (
    kind   TEXT NOT NULL,
    target TEXT NOT NULL,
    class  TEXT NOT NULL REFERENCES cos_class(name) ON DELETE CASCADE,
    PRIMARY KEY (kind, target)
) STRICT;
CREATE TABLE access_block (
    pattern   TEXT PRIMARY KEY,
    direction TEXT NOT NULL,
    note      TEXT NOT NULL DEFAULT ''
) STRICT;
"#,
    // 6: what the web console needs. A user's search key (address and
    // display name lower-cased, see rules::search_key; filled in by
    // `migrate` for the users already there) for user searches; who may
    // administer through the console; the counters' history, per minute
    // and node (the console's charts); and indexes to find queue entries by
    // a recipient's domain or state (which also counts the queue's depth
    // without reading the recipients' rows) and by age.
    r#"
ALTER TABLE user ADD COLUMN search_key TEXT;

CREATE TABLE console_admin (
    user_id INTEGER PRIMARY KEY REFERENCES user(id) ON DELETE CASCADE
) STRICT;

CREATE TABLE stat_minute (
    minute INTEGER NOT NULL,
    name   TEXT NOT NULL,
    node   TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (minute, name, node)
) STRICT, WITHOUT ROWID;

CREATE INDEX queue_rcpt_domain ON queue_rcpt (domain, queue_id);
CREATE INDEX queue_rcpt_state ON queue_rcpt (status, leased, attempts, queue_id);
CREATE INDEX queue_created ON queue (created);
"#,
    // 7: DKIM signing keys (RFC 6376), one per (domain, selector): the
    // algorithm (`a=`: rsa-sha256 or ed25519-sha256) and the private key
    // as PKCS#8 DER.
    r#"
CREATE TABLE dkim_key (
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
) STRICT, WITHOUT ROWID;
"#,
    // 8: mailbox and server metadata (IMAP METADATA, RFC 5464): per user,
    // per folder (0: the user's server entries), by entry name
    // (lower-cased: names are case-insensitive, RFC 5464 §3.2). Names
    // outside /private and /shared are the server's own (an URLAUTH
    // mailbox key, RFC 4467 §3).
    r#"
CREATE TABLE metadata (
    user_id   INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    folder_id INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (user_id, folder_id, name)
) STRICT, WITHOUT ROWID;
"#,
    // 9: an item's INTERNALDATE zone as APPEND gave it (RFC 3501 §6.3.11
    // date-time; minutes east of UTC), and when it was saved to its folder
    // (RFC 8514 SAVEDATE; unknown for items saved before).
    r#"
ALTER TABLE item ADD COLUMN internal_zone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE item ADD COLUMN save_date INTEGER;
"#,
];

/// The schema version (`PRAGMA user_version`) this program migrates to.
pub(crate) fn version() -> usize {
    MIGRATIONS.len()
}

/// The migration (counted from 1) that adds `user.search_key`: the users
/// already there get theirs when it runs.
const SEARCH_KEY_MIGRATION: usize = 6;

/// Opens a connection with the settings every connection needs.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL: readers never block the writer nor the writer readers.
    // synchronous=FULL: every commit fsyncs the WAL, so an acknowledged delivery
    // survives power loss, not just a crash of the process. The writer's WAL
    // writes reach the file at that sync (see `walbuf`), so it is needed there
    // for correctness too, not only for durability.
    // temp_store=MEMORY: the statement journal of each savepoint (one per job
    // in a group commit) stays in memory, not in a temporary file.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA temp_store = MEMORY;",
    )?;
    // Every hot query is prepared once per connection and kept.
    conn.set_prepared_statement_cache_capacity(128);
    // Query planner stability: plans do not depend on the values bound to a
    // statement. Without it, SQLite 3.54 re-prepares a cached statement that
    // joins tables at every execution (the planner may look at bound values,
    // and every rebinding counts as a change): a parse and plan per delivery
    // on the single writer, and per FETCH on the readers.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Brings the schema up to date, in one transaction.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        if i + 1 == SEARCH_KEY_MIGRATION {
            fill_search_keys(&tx)?;
        }
    }
    tx.commit()
}

/// Gives every user without a search key its key. In Rust, not SQL:
/// SQLite's `lower()` folds ASCII letters only.
fn fill_search_keys(conn: &Connection) -> rusqlite::Result<()> {
    let users: Vec<(i64, String, String, String)> = conn
        .prepare(
            "SELECT u.id, u.local_part, d.name, u.display_name FROM user u \
             JOIN domain d ON d.id = u.domain_id WHERE u.search_key IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE user SET search_key = ?2 WHERE id = ?1")?;
    for (id, local, domain, name) in users {
        let Ok(address) = postgate_types::EmailAddress::parse(&format!("{local}@{domain}")) else {
            continue;
        };
        update.execute(rusqlite::params![
            id,
            crate::rules::search_key(&address, &name)
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store from before the search key: its users get theirs, folded
    /// beyond ASCII, when the migration runs.
    #[test]
    fn migration_fills_in_search_keys() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..SEARCH_KEY_MIGRATION - 1] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = {};
             INSERT INTO domain (id, name, created) VALUES (1, 'example.net', 0);
             INSERT INTO post_office (id, domain_id, name) VALUES (1, 1, 'main');
             INSERT INTO user (domain_id, post_office_id, local_part, local_key, display_name, created)
                 VALUES (1, 1, 'Emile', 'emile', ' ÉMILE Zola', 0);",
            SEARCH_KEY_MIGRATION - 1
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let key: String = conn
            .query_row("SELECT search_key FROM user", [], |r| r.get(0))
            .unwrap();
        assert_eq!(key, "emile@example.net\némile zola");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }
}
