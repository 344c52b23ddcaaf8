//! SNMPv3 with the User-based Security Model against net-snmp's own tools
//! (Debian's `snmp` and `snmptrapd` packages): authPriv with SHA-256 and
//! AES-128 reads the same tree as v2c; a wrong password, a wrong privacy
//! password, an unknown user or a lower security level gets no value and is
//! counted in usmStats; snmpEngineBoots grows at each restart; a v3 trap
//! reaches snmptrapd.
use postgate_testkit::{Server, tool};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");

/// A fixed engine ID (RFC 3411 §5, format 4: text "pgtest"), so that
/// snmptrapd can be told the user's keys before the server starts.
const ENGINE_ID: &str = "80007ed904706774657374";

fn config(extra: &str) -> String {
    format!(
        "[snmp]\nlisten = [\"127.0.0.1:0\"]\n{extra}\n[snmp.users.ops]\nauth_password = \"authpass1\"\npriv_password = \"privpass1\"\n"
    )
}

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

/// authPriv as user `ops`, with these passwords.
fn v3(auth: &'static str, privacy: &'static str) -> Vec<&'static str> {
    vec![
        "-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", auth, "-x", "AES", "-X",
        privacy,
    ]
}

fn value_of<'a>(text: &'a str, oid: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" = ")?;
        (k.trim() == oid).then_some(v.trim())
    })
}

fn oids(t: &str) -> Vec<String> {
    t.lines()
        .filter_map(|l| l.split_once(" = ").map(|x| x.0.to_string()))
        .collect()
}

/// usmStats (RFC 3414 §5), read over v2c: unsupportedSecLevels,
/// notInTimeWindows, unknownUserNames, unknownEngineIDs, wrongDigests,
/// decryptionErrors.
fn usm_stats(s: &Server) -> [u32; 6] {
    let (ok, out) = snmp_oids(
        s,
        "snmpwalk",
        &["-v2c", "-c", "public"],
        &[".1.3.6.1.6.3.15.1.1"],
    )
    .unwrap();
    assert!(ok, "{out}");
    let mut v = [0; 6];
    for (i, n) in v.iter_mut().enumerate() {
        let text = value_of(&out, &format!(".1.3.6.1.6.3.15.1.1.{}.0", i + 1))
            .unwrap_or_else(|| panic!("usmStats {}: {out}", i + 1));
        *n = text
            .strip_prefix("Counter32: ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
    }
    v
}

#[test]
fn authpriv_reads_the_same_tree_as_v2c_and_refusals_are_counted() {
    let s = Server::start(Path::new(BIN), &config(""));
    let Some((ok, out)) = snmp_oids(
        &s,
        "snmpget",
        &v3("authpass1", "privpass1"),
        &[".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.1.0"],
    ) else {
        return;
    };
    assert!(ok, "{out}");
    assert_eq!(
        value_of(&out, ".1.3.6.1.2.1.1.5.0"),
        Some("STRING: \"mx.test.example\""),
        "{out}"
    );
    assert!(
        value_of(&out, ".1.3.6.1.2.1.1.1.0").is_some_and(|v| v.contains("Postgate")),
        "{out}"
    );

    // The whole tree, with GETNEXT and GETBULK over v3, OID for OID as v2c
    // walks it (snmpEngine and usmStats included).
    let (ok, v2) = snmp_oids(&s, "snmpwalk", &["-v2c", "-c", "public"], &[".1"]).unwrap();
    assert!(ok, "{v2}");
    assert!(
        value_of(&v2, ".1.3.6.1.6.3.10.2.1.1.0")
            .is_some_and(|v| v.starts_with("Hex-STRING: 80 00 7E D9")),
        "{v2}"
    );
    assert!(value_of(&v2, ".1.3.6.1.6.3.15.1.1.5.0").is_some(), "{v2}");
    let (ok, walked) = snmp_oids(&s, "snmpwalk", &v3("authpass1", "privpass1"), &[".1"]).unwrap();
    assert!(ok, "{walked}");
    assert_eq!(oids(&walked), oids(&v2));
    let mut bulk_opts = v3("authpass1", "privpass1");
    bulk_opts.push("-Cr20");
    let (ok, bulk) = snmp_oids(&s, "snmpbulkwalk", &bulk_opts, &[".1"]).unwrap();
    assert!(ok, "{bulk}");
    assert_eq!(oids(&bulk), oids(&v2));
    assert!(oids(&v2).len() > 60, "{v2}");

    // A wrong authentication password: net-snmp is told (usmStatsWrongDigests
    // Report), no value comes back, and the counter grows.
    let before = usm_stats(&s);
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &v3("wrongpass1", "privpass1"),
        &[".1.3.6.1.2.1.1.5.0"],
    )
    .unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("Authentication failure"), "{out}");
    assert!(!out.contains("mx.test.example"), "{out}");
    let after = usm_stats(&s);
    assert_eq!(after[4], before[4] + 1, "{before:?} {after:?}");

    // A wrong privacy password: a decryption error, no value.
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &v3("authpass1", "wrongpriv1"),
        &[".1.3.6.1.2.1.1.5.0"],
    )
    .unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("Decryption error"), "{out}");
    assert!(!out.contains("mx.test.example"), "{out}");
    let next = usm_stats(&s);
    assert_eq!(next[5], after[5] + 1, "{after:?} {next:?}");

    // An unknown user.
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &[
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "eve",
            "-a",
            "SHA-256",
            "-A",
            "authpass1",
            "-x",
            "AES",
            "-X",
            "privpass1",
        ],
        &[".1.3.6.1.2.1.1.5.0"],
    )
    .unwrap();
    assert!(!ok && out.contains("Unknown user name"), "{out}");
    assert!(!out.contains("mx.test.example"), "{out}");
    let last = usm_stats(&s);
    assert_eq!(last[2], next[2] + 1, "{next:?} {last:?}");

    // authNoPriv and noAuthNoPriv: only authPriv is served.
    for level in [
        &[
            "-v3",
            "-l",
            "authNoPriv",
            "-u",
            "ops",
            "-a",
            "SHA-256",
            "-A",
            "authpass1",
        ][..],
        &["-v3", "-l", "noAuthNoPriv", "-u", "ops"][..],
    ] {
        let (ok, out) = snmp_oids(&s, "snmpget", level, &[".1.3.6.1.2.1.1.5.0"]).unwrap();
        assert!(!ok && out.contains("Unsupported security level"), "{out}");
        assert!(!out.contains("mx.test.example"), "{out}");
    }
    let end = usm_stats(&s);
    assert_eq!(end[0], last[0] + 2, "{last:?} {end:?}");
    // Every net-snmp run above began with engine discovery.
    assert!(end[3] >= 8, "{end:?}");
}

/// snmpEngineBoots grows at each start and the engine ID made at the first
/// start stays (RFC 3414 §2.2); v3 works after the restart.
#[test]
fn engine_boots_grow_across_restarts() {
    let mut s = Server::start(Path::new(BIN), &config(""));
    let engine = [".1.3.6.1.6.3.10.2.1.1.0", ".1.3.6.1.6.3.10.2.1.2.0"];
    let Some((ok, first)) = snmp_oids(&s, "snmpget", &["-v2c", "-c", "public"], &engine) else {
        return;
    };
    assert!(ok, "{first}");
    assert_eq!(value_of(&first, engine[1]), Some("INTEGER: 1"), "{first}");
    // enterprises.32473, format 5 (RFC 3411 §5), then 8 octets.
    assert!(
        value_of(&first, engine[0]).is_some_and(|v| v.starts_with("Hex-STRING: 80 00 7E D9 05 ")),
        "{first}"
    );
    let kept = std::fs::read_to_string(s.dir().join("data/snmp-engine")).unwrap();
    assert!(kept.contains("boots = 1"), "{kept}");

    s.restart();
    let (ok, second) = snmp_oids(&s, "snmpget", &["-v2c", "-c", "public"], &engine).unwrap();
    assert!(ok, "{second}");
    assert_eq!(value_of(&second, engine[1]), Some("INTEGER: 2"), "{second}");
    assert_eq!(value_of(&second, engine[0]), value_of(&first, engine[0]));
    let (ok, out) = snmp_oids(
        &s,
        "snmpget",
        &v3("authpass1", "privpass1"),
        &[".1.3.6.1.6.3.10.2.1.2.0"],
    )
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(
        value_of(&out, ".1.3.6.1.6.3.10.2.1.2.0"),
        Some("INTEGER: 2")
    );
}

/// SET over v3: a user with `write` changes a threshold; one without gets
/// noAccess (RFC 3416 §4.2.5) and nothing changes.
#[test]
fn only_a_writing_v3_user_may_set() {
    let s = Server::start(
        Path::new(BIN),
        &config(
            "[snmp.users.admin]\nauth_password = \"adminauth1\"\npriv_password = \"adminpriv1\"\nwrite = true\n",
        ),
    );
    // postgateQueueDepthThreshold.
    let threshold = ".1.3.6.1.4.1.32473.1.1.16.0";
    let admin = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "admin",
        "-a",
        "SHA-256",
        "-A",
        "adminauth1",
        "-x",
        "AES",
        "-X",
        "adminpriv1",
    ];
    let Some((ok, out)) = snmp_oids(
        &s,
        "snmpset",
        &v3("authpass1", "privpass1"),
        &[threshold, "u", "7"],
    ) else {
        return;
    };
    assert!(!ok && out.contains("noAccess"), "{out}");
    let (ok, out) = snmp_oids(&s, "snmpset", &admin, &[threshold, "u", "500"]).unwrap();
    assert!(ok, "{out}");
    let (ok, out) = snmp_oids(&s, "snmpget", &v3("authpass1", "privpass1"), &[threshold]).unwrap();
    assert!(ok, "{out}");
    assert_eq!(value_of(&out, threshold), Some("Gauge32: 500"), "{out}");
}

/// With `trap_user`, postgateStarted and postgateStopping reach snmptrapd as
/// SNMPv3 authPriv (snmptrapd accepts only user `ops`, no community).
#[test]
fn traps_go_out_as_v3_authpriv_to_snmptrapd() {
    let Some(trapd) = tool("snmptrapd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("snmptrapd.conf");
    std::fs::write(
        &conf,
        format!(
            "createUser -e 0x{ENGINE_ID} ops SHA-256 authpass1 AES privpass1\nauthUser log ops\n"
        ),
    )
    .unwrap();
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
        &config(&format!(
            "engine_id = \"0x{ENGINE_ID}\"\ntrap_user = \"ops\"\ntrap_receivers = [\"127.0.0.1:{port}\"]\ntrap_community = \"not-accepted\""
        )),
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
