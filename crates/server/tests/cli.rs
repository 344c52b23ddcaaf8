//! The administration CLI, as operators use it, against a running server.
use postgate_testkit::Server;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");

#[test]
fn example_config_is_valid() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../postgate.example.toml");
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn directory_administration() {
    let s = Server::start(std::path::Path::new(BIN), "");
    s.cli(&["domain", "add", "example.org"]);
    s.cli(&["domain", "add", "example.net"]);
    let out = s.cli_output(&["domain", "add", "example.org"], None);
    assert!(!out.status.success(), "duplicate domain refused");
    let out = s.cli_output(
        &[
            "user",
            "add",
            "alice@example.org",
            "--name",
            "Alice Mary Smith",
            "--title",
            "CTO",
            "--department",
            "R&D",
            "--phone",
            "+1 555 0100",
            "--password-stdin",
        ],
        Some("s3cret pass\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: serde_json::Value =
        serde_json::from_str(&s.cli(&["user", "show", "alice@example.org", "--json"])).unwrap();
    assert_eq!(user["display_name"], "Alice Mary Smith");
    assert_eq!(user["given_name"], "Alice", "first word of --name");
    assert_eq!(user["surname"], "Smith", "last word of --name");
    assert_eq!(user["title"], "CTO");
    assert_eq!(user["department"], "R&D");
    assert_eq!(user["phone"], "+1 555 0100");
    assert_eq!(user["has_password"], true);
    assert_eq!(user["post_office"], "main");

    s.cli(&[
        "user",
        "add",
        "bob@example.net",
        "--name",
        "Robert Jones",
        "--given",
        "Bob",
        "--post-office",
        "Branch",
    ]);
    let list = s.cli(&["user", "list"]);
    assert!(
        list.contains("alice@example.org")
            && list.contains("bob@example.net\tRobert Jones\tBranch"),
        "{list}"
    );
    let out = s.cli_output(
        &["user", "add", "carol@nowhere.test", "--name", "Carol"],
        None,
    );
    assert!(!out.status.success(), "unknown domain refused");

    s.cli(&["alias", "add", "ali@example.net", "alice@example.org"]);
    let show = s.cli(&["user", "show", "ali@example.net"]);
    assert!(show.contains("address:      alice@example.org"), "{show}");
    assert!(show.contains("aliases:      ali@example.net"), "{show}");
    s.cli(&["alias", "remove", "ali@example.net"]);

    s.cli(&["group", "add", "team@example.org", "--name", "Team"]);
    s.cli(&[
        "group",
        "member",
        "add",
        "team@example.org",
        "alice@example.org",
    ]);
    s.cli(&[
        "group",
        "member",
        "add",
        "team@example.org",
        "bob@example.net",
    ]);
    let groups = s.cli(&["group", "list"]);
    assert!(
        groups.contains("team@example.org\tTeam\talice@example.org, bob@example.net"),
        "{groups}"
    );
    s.cli(&[
        "group",
        "member",
        "remove",
        "team@example.org",
        "bob@example.net",
    ]);
    s.cli(&["group", "remove", "team@example.org"]);

    // Password change, then removal.
    let out = s.cli_output(
        &["user", "passwd", "bob@example.net"],
        Some("another one\n"),
    );
    assert!(out.status.success());
    s.cli(&["folder", "add", "bob@example.net", "Projects/2026"]);
    let folders = s.cli(&["folder", "list", "bob@example.net"]);
    for f in [
        "Inbox",
        "Sent Items",
        "Drafts",
        "Trash",
        "Junk",
        "Calendar",
        "Tasks",
        "Projects",
        "Projects/2026",
    ] {
        assert!(
            folders.lines().any(|l| l.starts_with(&format!("{f}\t"))),
            "{f} missing in {folders}"
        );
    }
    s.cli(&["user", "remove", "bob@example.net"]);
    let out = s.cli_output(&["domain", "remove", "example.org"], None);
    assert!(!out.status.success(), "a domain with users is not removed");
    s.cli(&["domain", "remove", "example.net"]);
    let domains = s.cli(&["domain", "list"]);
    assert!(
        domains.contains("example.org") && !domains.contains("example.net"),
        "{domains}"
    );
}

#[test]
fn console_administrators() {
    let s = Server::start(std::path::Path::new(BIN), "");
    s.cli(&["domain", "add", "example.org"]);
    for (address, name) in [
        ("bob@example.org", "Bob Jones"),
        ("alice@example.org", "Alice Smith"),
    ] {
        s.cli(&["user", "add", address, "--name", name]);
    }
    s.cli(&["alias", "add", "ali@example.org", "alice@example.org"]);
    assert_eq!(s.cli(&["admin", "list"]), "", "nobody at first");
    let out = s.cli(&["admin", "grant", "bob@example.org"]);
    assert!(out.contains("bob@example.org may administer"), "{out}");
    // Through an alias, and twice: the user, once.
    s.cli(&["admin", "grant", "ali@example.org"]);
    s.cli(&["admin", "grant", "alice@example.org"]);
    assert_eq!(
        s.cli(&["admin", "list"]),
        "alice@example.org\nbob@example.org\n"
    );
    let out = s.cli_output(&["admin", "grant", "nobody@example.org"], None);
    assert!(!out.status.success(), "an unknown user is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody@example.org"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.cli(&["admin", "revoke", "alice@example.org"]);
    assert!(out.contains("alice@example.org may no longer"), "{out}");
    s.cli(&["admin", "revoke", "alice@example.org"]);
    assert_eq!(s.cli(&["admin", "list"]), "bob@example.org\n");
    // Removing the user removes the grant.
    s.cli(&["user", "remove", "bob@example.org"]);
    assert_eq!(s.cli(&["admin", "list"]), "");
}
