//! The SNMP agent with net-snmp's own tools (Debian's `snmp` package):
//! snmpget, snmpwalk and snmpbulkwalk over v2c and v1, after known traffic;
//! a wrong community gets no answer.
use postgate_testkit::{Server, python, smtp_fill, tool};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");

/// Runs a net-snmp tool (`AGENT OID…`) against the agent; (success,
/// stdout + stderr). `None` when the tool is missing (a loud skip).
fn snmp_oids(s: &Server, program: &str, opts: &[&str], oids: &[&str]) -> Option<(bool, String)> {
    let exe = tool(program)?;
    let agent = format!("udp:127.0.0.1:{}", s.addr("snmp").port());
    let out = Command::new(exe)
        .args(["-t", "2", "-r", "0", "-On", "-M", "/nonexistent", "-m", ""])
        .args(opts)
        .arg(&agent)
        .args(oids)
        .output()
        .expect("run net-snmp");
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

fn value_of<'a>(text: &'a str, oid: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" = ")?;
        (k.trim() == oid).then_some(v.trim())
    })
}

#[test]
fn walks_the_standard_groups_and_postgate_mib_with_net_snmp() {
    let s = Server::start(Path::new(BIN), "");
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.set_password("alice@example.org", "pw");
    let Some((ok, out)) = snmp_oids(
        &s,
        "snmpget",
        &["-v2c", "-c", "public"],
        &[".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.2.0"],
    ) else {
        return;
    };
    assert!(ok, "{out}");
    assert_eq!(
        value_of(&out, ".1.3.6.1.2.1.1.5.0"),
        Some("STRING: \"mx.test.example\""),
        "{out}"
    );
    assert_eq!(
        value_of(&out, ".1.3.6.1.2.1.1.2.0"),
        Some("OID: .1.3.6.1.4.1.32473.1"),
        "{out}"
    );

    smtp_fill(s.addr("smtp"), "alice@example.org", 20);
    let bad = "import imaplib,ssl,sys\nctx=ssl.create_default_context();ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\nfor i in range(3):\n  m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\n  try:\n    m.login('alice@example.org','wrong'); sys.exit(1)\n  except imaplib.IMAP4.error: pass\n";
    let (ok, _, err) = python(bad, &[s.addr("imaps").port().to_string()]).unwrap();
    assert!(ok, "{err}");

    // The system group, walked.
    let (ok, out) = snmp_oids(
        &s,
        "snmpwalk",
        &["-v2c", "-c", "public"],
        &[".1.3.6.1.2.1.1"],
    )
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(value_of(&out, ".1.3.6.1.2.1.1.1.0").is_some_and(|v| v.contains("Postgate")));
    assert!(value_of(&out, ".1.3.6.1.2.1.1.3.0").is_some_and(|v| v.starts_with("Timeticks:")));

    // The whole tree with GETBULK: applTable, mtaTable, POSTGATE-MIB.
    let (ok, all) = snmp_oids(
        &s,
        "snmpbulkwalk",
        &["-v2c", "-c", "public", "-Cr20"],
        &[".1"],
    )
    .unwrap();
    assert!(ok, "{all}");
    assert!(all.lines().count() > 60, "{all}");
    assert_eq!(
        value_of(&all, ".1.3.6.1.2.1.27.1.1.2.1"),
        Some("STRING: \"postgate-smtp\""),
        "{all}"
    );
    assert_eq!(
        value_of(&all, ".1.3.6.1.2.1.27.1.1.5.1"),
        Some("INTEGER: 1")
    );
    // mtaReceivedMessages and mtaReceivedRecipients of the SMTP row.
    assert_eq!(
        value_of(&all, ".1.3.6.1.2.1.28.1.1.1.1"),
        Some("Counter32: 20"),
        "{all}"
    );
    assert_eq!(
        value_of(&all, ".1.3.6.1.2.1.28.1.1.7.1"),
        Some("Counter32: 20")
    );
    // POSTGATE-MIB: messages in; IMAP's failed logins (service row 2).
    assert_eq!(
        value_of(&all, ".1.3.6.1.4.1.32473.1.1.4.0"),
        Some("Counter64: 20"),
        "{all}"
    );
    assert_eq!(
        value_of(&all, ".1.3.6.1.4.1.32473.1.1.3.1.9.2"),
        Some("Counter32: 3"),
        "{all}"
    );
    assert_eq!(
        value_of(&all, ".1.3.6.1.4.1.32473.1.1.3.1.2.2"),
        Some("STRING: \"imap\"")
    );
    // The same walk with GETNEXT agrees on the OIDs.
    let (ok, walked) = snmp_oids(&s, "snmpwalk", &["-v2c", "-c", "public"], &[".1"]).unwrap();
    assert!(ok, "{walked}");
    let oids = |t: &str| {
        t.lines()
            .filter_map(|l| l.split_once(" = ").map(|x| x.0.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(oids(&walked), oids(&all));

    // v1: a missing object is noSuchName.
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &["-v1", "-c", "public"],
        &[".1.3.6.1.2.1.1.5.0"],
    )
    .unwrap();
    assert!(ok && out.contains("mx.test.example"), "{out}");
    let (_, out) = snmp_oids(
        &s,
        "snmpget",
        &["-v1", "-c", "public"],
        &[".1.3.6.1.2.1.1.99.0"],
    )
    .unwrap();
    assert!(
        out.contains("noSuchName") || out.contains("There is no such variable"),
        "{out}"
    );
    // Read-only: SET is refused.
    let (ok, out) = snmp_oids(
        &s,
        "snmpset",
        &["-v2c", "-c", "public"],
        &[".1.3.6.1.2.1.1.5.0", "s", "x"],
    )
    .unwrap();
    assert!(!ok && out.to_lowercase().contains("notwritable"), "{out}");
    // A wrong community gets no answer at all.
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &["-v2c", "-c", "wrong"],
        &[".1.3.6.1.2.1.1.5.0"],
    )
    .unwrap();
    assert!(!ok && out.contains("Timeout"), "{out}");
}

/// postgateStarted and postgateStopping reach net-snmp's snmptrapd.
#[test]
fn start_and_stop_send_traps_to_snmptrapd() {
    let Some(trapd) = tool("snmptrapd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("snmptrapd.conf");
    std::fs::write(&conf, "disableAuthorization yes\n").unwrap();
    // A free UDP port for the receiver.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("traps.log");
    let mut receiver = Command::new(trapd)
        .args(["-f", "-C", "-c"])
        .arg(&conf)
        .args(["-M", "/nonexistent", "-m", "", "-On", "-Lf"])
        .arg(&log)
        .arg(format!("udp:127.0.0.1:{port}"))
        .spawn()
        .expect("start snmptrapd");
    // snmptrapd says so in its log once it listens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("NET-SNMP version")) {
        assert!(
            std::time::Instant::now() < deadline,
            "snmptrapd did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut s = Server::start(
        Path::new(BIN),
        &format!(
            "[snmp]\nlisten = [\"127.0.0.1:0\"]\ntrap_receivers = [\"127.0.0.1:{port}\"]\ntrap_community = \"traps\"\n"
        ),
    );
    let wait_for = |oid: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(oid) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no trap {oid}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // snmpTrapOID.0 = postgateStarted (postgate.0.1).
    let text = wait_for(".1.3.6.1.4.1.32473.1.0.1");
    assert!(text.contains(".1.3.6.1.6.3.1.1.4.1.0"), "{text}");
    s.terminate();
    wait_for(".1.3.6.1.4.1.32473.1.0.2");
    let _ = receiver.kill();
    let _ = receiver.wait();
}
