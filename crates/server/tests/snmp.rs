//! The SNMP agent with net-snmp's own tools (Debian's `snmp` and
//! `snmptrapd` packages): snmpget, snmpwalk and snmpbulkwalk over v2c and
//! v1, after known traffic; a wrong community gets no answer; the shipped
//! POSTGATE-MIB (mibs/) walked by name and held against the agent object
//! for object; snmpset of the thresholds and the statistics reset, kept
//! across a restart, and its errors; traps and informs to snmptrapd.
use postgate_testkit::{Server, python, smtp_fill, tool};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUBMIT: &str = include_str!("py/submit.py");

/// `mibs/` and `mibs/ietf/` of this repository, for `-M`.
fn mib_dirs() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the repository");
    format!(
        "+{}:{}",
        root.join("mibs").display(),
        root.join("mibs/ietf").display()
    )
}

/// The modules the named walks load: ours and the standard ones the agent
/// serves (Debian's default list has neither).
const MODULES: &str = "+POSTGATE-MIB:SNMPv2-MIB:NETWORK-SERVICES-MIB:MTA-MIB";

/// Runs a net-snmp tool with the shipped MIBs loaded (`-M`, `-m`); `None`
/// when the tool is missing.
fn with_mibs(program: &str, args: &[&str]) -> Option<(bool, String, String)> {
    let exe = tool(program)?;
    let out = Command::new(exe)
        .args(["-M", &mib_dirs(), "-m", MODULES])
        .args(args)
        .output()
        .expect("run net-snmp");
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
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
        value_of(&all, ".1.3.6.1.2.1.27.1.1.6.1"),
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

/// net-snmp's snmptrapd on a free loopback port, logging numeric OIDs to a
/// file; killed when dropped.
struct Trapd {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Trapd {
    /// Starts snmptrapd with `conf` as its configuration; `None` when it is
    /// missing (a loud skip).
    fn start(conf: &str) -> Option<Trapd> {
        let exe = tool("snmptrapd")?;
        let dir = tempfile::tempdir().unwrap();
        let conf_path = dir.path().join("snmptrapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // A free UDP port for the receiver.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("traps.log");
        let child = Command::new(exe)
            .args(["-f", "-C", "-c"])
            .arg(&conf_path)
            .args(["-M", "/nonexistent", "-m", "", "-On", "-Lf"])
            .arg(&log)
            .arg(format!("udp:127.0.0.1:{port}"))
            .spawn()
            .expect("start snmptrapd");
        let t = Trapd {
            child,
            port,
            log,
            _dir: dir,
        };
        // snmptrapd says so in its log once it listens.
        t.wait_for("NET-SNMP version", Duration::from_secs(10));
        Some(t)
    }

    /// The log once it contains `text`; panics after `within`.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text} in:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The notifications logged, each as its varbinds' text.
    fn notifications(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.split("\n20")
            .filter(|n| n.contains(".1.3.6.1.6.3.1.1.4.1.0"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Trapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// postgateStarted and postgateStopping reach net-snmp's snmptrapd.
#[test]
fn start_and_stop_send_traps_to_snmptrapd() {
    let Some(trapd) = Trapd::start("disableAuthorization yes\n") else {
        return;
    };
    let mut s = Server::start(
        Path::new(BIN),
        &format!(
            "[snmp]\nlisten = [\"127.0.0.1:0\"]\ntrap_receivers = [\"127.0.0.1:{}\"]\ntrap_community = \"traps\"\n",
            trapd.port
        ),
    );
    // snmpTrapOID.0 = postgateStarted (postgate.0.1), with postgateVersion.0.
    let text = trapd.wait_for(".1.3.6.1.4.1.32473.1.0.1", Duration::from_secs(10));
    assert!(text.contains(".1.3.6.1.6.3.1.1.4.1.0"), "{text}");
    assert!(
        text.contains(".1.3.6.1.4.1.32473.1.1.1.0 = STRING: \"Postgate"),
        "{text}"
    );
    s.terminate();
    if !trapd
        .notifications()
        .iter()
        .any(|n| n.contains(".1.3.6.1.4.1.32473.1.0.2"))
    {
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(
        trapd
            .notifications()
            .iter()
            .any(|n| n.contains(".1.3.6.1.4.1.32473.1.0.2")),
        "server log:\n{}",
        s.log()
    );
}

/// The agent walked by name through the shipped MIBs: every object under
/// postgate resolves to a POSTGATE-MIB name (an unknown one would print as
/// SNMPv2-SMI::enterprises.32473…), and applTable and mtaTable to theirs.
#[test]
fn walks_by_name_through_the_shipped_mib() {
    let s = Server::start(
        Path::new(BIN),
        "[snmp.users.ops]\nauth_password = \"authpass1\"\npriv_password = \"privpass1\"\n",
    );
    let agent = format!("udp:127.0.0.1:{}", s.addr("snmp").port());
    // net-snmp says "Wrong Type (should be …)" where the agent's value has
    // another syntax than the module gives the object.
    let walk = |root: &str| {
        let r = with_mibs(
            "snmpwalk",
            &["-v2c", "-c", "public", "-t", "2", "-r", "0", &agent, root],
        );
        if let Some((_, out, _)) = &r {
            assert!(!out.contains("Wrong Type"), "{out}");
        }
        r
    };
    let Some((ok, out, err)) = walk("POSTGATE-MIB::postgate") else {
        return;
    };
    assert!(ok, "{out}{err}");
    assert!(out.lines().count() > 40, "{out}{err}");
    for line in out.lines() {
        assert!(line.starts_with("POSTGATE-MIB::postgate"), "{line}");
        assert!(!line.contains("Wrong Type"), "{line}");
    }
    for name in [
        "POSTGATE-MIB::postgateVersion.0 = STRING: Postgate",
        "POSTGATE-MIB::postgateServiceName.2 = STRING: imap",
        "POSTGATE-MIB::postgateServiceStatus.1 = INTEGER: running(1)",
        "POSTGATE-MIB::postgateQueueDepthThreshold.0 = Gauge32: 0",
        "POSTGATE-MIB::postgateResetStats.0 = INTEGER: noOp(2)",
        "POSTGATE-MIB::postgateStatsResetTime.0 = STRING: 0-0-0,0:0:0.0",
        "POSTGATE-MIB::postgateAuthFailureWindow.0 = Gauge32: 60 seconds",
    ] {
        assert!(out.contains(name), "no {name} in\n{out}");
    }
    let (ok, out, err) = walk("NETWORK-SERVICES-MIB::applTable").unwrap();
    assert!(
        ok && out.contains("NETWORK-SERVICES-MIB::applName.1 = STRING: postgate-smtp"),
        "{out}{err}"
    );
    assert!(
        out.contains("NETWORK-SERVICES-MIB::applOperStatus.1 = INTEGER: up(1)"),
        "{out}"
    );
    let (ok, out, err) = walk("MTA-MIB::mtaTable").unwrap();
    assert!(
        ok && out.contains("MTA-MIB::mtaReceivedMessages.1 = Counter32: "),
        "{out}{err}"
    );
    let (ok, out, err) = walk("SNMPv2-MIB::system").unwrap();
    assert!(
        ok && out.contains("SNMPv2-MIB::sysObjectID.0 = OID: POSTGATE-MIB::postgate"),
        "{out}{err}"
    );
    // The same names over SNMPv3 authPriv, walked and bulk-walked.
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.split_once(" = ").map(|x| x.0.to_string()))
            .collect()
    };
    let (_, v2c, _) = walk("POSTGATE-MIB::postgate").unwrap();
    for program in ["snmpwalk", "snmpbulkwalk"] {
        let (ok, out, err) = with_mibs(
            program,
            &[
                "-v3",
                "-l",
                "authPriv",
                "-u",
                "ops",
                "-a",
                "SHA-256",
                "-A",
                "authpass1",
                "-x",
                "AES",
                "-X",
                "privpass1",
                "-t",
                "2",
                "-r",
                "0",
                &agent,
                "POSTGATE-MIB::postgate",
            ],
        )
        .unwrap();
        assert!(ok && !out.contains("Wrong Type"), "{program}: {out}{err}");
        assert_eq!(names(&out), names(&v2c), "{program} over v3");
    }
}

/// mibs/POSTGATE-MIB.txt and the agent's table (mib.rs) agree object for
/// object: every instance the agent serves under postgate belongs to an
/// accessible object of the MIB, every accessible object of the MIB has an
/// instance, the syntax matches (net-snmp says "Wrong Type" otherwise), and
/// exactly the MIB's read-write objects take a SET.
#[test]
fn mib_file_and_agent_agree_object_for_object() {
    let s = Server::start(
        Path::new(BIN),
        "[snmp]\nlisten = [\"127.0.0.1:0\"]\nwrite_community = \"s3cret-w\"\n",
    );
    // The MIB's nodes under postgateObjects and their access.
    let Some((ok, table, err)) = with_mibs("snmptranslate", &["-Tz"]) else {
        return;
    };
    assert!(ok, "{err}");
    let mut objects = std::collections::BTreeMap::new();
    for line in table.lines() {
        let mut f = line.split('"').filter(|x| !x.trim().is_empty());
        let (Some(name), Some(oid)) = (f.next(), f.next()) else {
            continue;
        };
        if !oid.starts_with("1.3.6.1.4.1.32473.1.1.") {
            continue;
        }
        let (ok, def, err) =
            with_mibs("snmptranslate", &["-Td", &format!("POSTGATE-MIB::{name}")]).unwrap();
        assert!(ok, "{err}");
        let access = def
            .lines()
            .find_map(|l| l.trim().strip_prefix("MAX-ACCESS"))
            .map(|a| a.trim().to_string());
        if let Some(a) = access.filter(|a| a.starts_with("read-")) {
            objects.insert(format!(".{oid}"), (name.to_string(), a));
        }
    }
    assert!(objects.len() >= 29, "{objects:?}");
    // The agent's instances, walked numerically without any MIB.
    let (ok, walked) = snmp_oids(
        &s,
        "snmpwalk",
        &["-v2c", "-c", "public"],
        &[".1.3.6.1.4.1.32473.1"],
    )
    .unwrap();
    assert!(ok, "{walked}");
    let mut served = std::collections::BTreeSet::new();
    for line in walked.lines() {
        let Some((instance, value)) = line.split_once(" = ") else {
            continue;
        };
        if value.starts_with("No more variables") {
            continue; // the walk ran into the end of the agent's tree
        }
        // The object: the longest MIB object the instance is under.
        let object = objects
            .keys()
            .filter(|o| instance.starts_with(&format!("{o}.")))
            .max_by_key(|o| o.len())
            .unwrap_or_else(|| panic!("{instance} is in no object of POSTGATE-MIB"));
        served.insert(object.clone());
        let (name, access) = &objects[object];
        // Write the value back: read-write objects take it, the others are
        // notWritable (RFC 3416 §4.2.5).
        let (kind, text) = value.split_once(": ").unwrap_or((value, ""));
        let typed = match kind {
            "Gauge32" => ("u", text.split_whitespace().next().unwrap().to_string()),
            "INTEGER" => ("i", text.to_string()),
            "Counter32" | "Counter64" | "Timeticks" | "STRING" | "Hex-STRING" => {
                assert_eq!(access, "read-only", "{name}");
                ("s", "x".to_string())
            }
            other => panic!("{instance}: {other}"),
        };
        let (ok, out) = snmp_oids(
            &s,
            "snmpset",
            &["-v2c", "-c", "s3cret-w"],
            &[instance, typed.0, &typed.1],
        )
        .unwrap();
        if access == "read-write" {
            assert!(ok, "{name}: {out}");
        } else {
            assert!(!ok && out.contains("notWritable"), "{name}: {out}");
        }
    }
    let missing: Vec<_> = objects
        .iter()
        .filter(|(o, _)| !served.contains(*o))
        .map(|(_, (n, _))| n)
        .collect();
    assert!(
        missing.is_empty(),
        "the agent serves no instance of {missing:?}"
    );
}

/// `.1.3.6.1.4.1.32473.1.1.N.0`: a POSTGATE-MIB scalar's instance.
fn scalar(n: u32) -> String {
    format!(".1.3.6.1.4.1.32473.1.1.{n}.0")
}

/// snmpset of the thresholds and postgateResetStats with the write
/// community; what the errors say; both kept across a restart, over the
/// config's value.
#[test]
fn set_thresholds_and_reset_kept_across_a_restart() {
    let mut s = Server::start(
        Path::new(BIN),
        "[snmp]\nlisten = [\"127.0.0.1:0\"]\nwrite_community = \"s3cret-w\"\nqueue_depth_threshold = 3\n",
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    let depth = scalar(16);
    let age = scalar(17);
    let get = |s: &Server, oid: &str| {
        let (ok, out) = snmp_oids(s, "snmpget", &["-v2c", "-c", "public"], &[oid]).unwrap();
        assert!(ok, "{out}");
        value_of(&out, oid).unwrap().to_string()
    };
    let set = |s: &Server, community: &str, args: &[&str]| {
        snmp_oids(s, "snmpset", &["-v2c", "-c", community], args).unwrap()
    };
    let Some((ok, out)) = snmp_oids(&s, "snmpget", &["-v2c", "-c", "public"], &[&depth]) else {
        return;
    };
    assert!(ok && out.contains("Gauge32: 3"), "from the config: {out}");
    // Both thresholds in one SET.
    let (ok, out) = set(&s, "s3cret-w", &[&depth, "u", "7", &age, "u", "3600"]);
    assert!(ok, "{out}");
    assert_eq!(get(&s, &depth), "Gauge32: 7");
    assert_eq!(get(&s, &age), "Gauge32: 3600");
    // Errors, as snmpset prints them; nothing changes.
    for (community, args, error) in [
        ("s3cret-w", vec![depth.as_str(), "i", "5"], "wrongType"),
        (
            "s3cret-w",
            vec![depth.as_str(), "u", "100000001"],
            "wrongValue",
        ),
        (
            "s3cret-w",
            vec![age.as_str(), "u", "99999999"],
            "wrongValue",
        ),
        (
            "s3cret-w",
            vec![".1.3.6.1.4.1.32473.1.1.18.0", "i", "3"],
            "wrongValue",
        ),
        (
            "s3cret-w",
            vec![".1.3.6.1.2.1.1.5.0", "s", "x"],
            "notWritable",
        ),
        (
            "s3cret-w",
            vec![".1.3.6.1.4.1.32473.1.1.16.1", "u", "5"],
            "noCreation",
        ),
        ("public", vec![depth.as_str(), "u", "5"], "noAccess"),
    ] {
        let (ok, out) = set(&s, community, &args);
        assert!(!ok && out.contains(error), "{args:?}: {out}");
        assert_eq!(get(&s, &depth), "Gauge32: 7");
    }
    // SNMPv1 hears it as v1 says it (RFC 3584 §4.4): wrongType is badValue.
    let (ok, out) = snmp_oids(
        &s,
        "snmpset",
        &["-v1", "-c", "s3cret-w"],
        &[&depth, "i", "5"],
    )
    .unwrap();
    assert!(!ok && out.contains("badValue"), "{out}");

    // Counters, then a reset: POSTGATE-MIB's read 0, the standard ones not.
    smtp_fill(s.addr("smtp"), "alice@example.org", 3);
    let messages_in = scalar(4);
    assert_eq!(get(&s, &messages_in), "Counter64: 3");
    assert_eq!(get(&s, &scalar(19)), "Hex-STRING: 00 00 00 00 00 00 00 00");
    let (ok, out) = set(&s, "s3cret-w", &[&scalar(18), "i", "1"]);
    assert!(ok, "{out}");
    assert_eq!(get(&s, &messages_in), "Counter64: 0");
    assert_eq!(
        get(&s, ".1.3.6.1.2.1.28.1.1.1.1"),
        "Counter32: 3",
        "mtaReceivedMessages stays"
    );
    let reset_at = get(&s, &scalar(19));
    assert!(reset_at.starts_with("Hex-STRING: 07 "), "{reset_at}");
    smtp_fill(s.addr("smtp"), "alice@example.org", 2);
    assert_eq!(get(&s, &messages_in), "Counter64: 2");

    // What SET changed is in the data directory, and outlives a crash.
    let state = std::fs::read_to_string(s.dir().join("data/snmp-settings.toml")).unwrap();
    assert!(state.contains("queue_depth_threshold = 7"), "{state}");
    s.restart();
    assert_eq!(
        get(&s, &depth),
        "Gauge32: 7",
        "SET outlives the restart, over the config's 3"
    );
    assert_eq!(get(&s, &age), "Gauge32: 3600");
    assert_eq!(get(&s, &scalar(19)), reset_at);
}

/// A server whose mail to the Internet goes to a relay that refuses every
/// connection (a closed port), so it stays queued.
fn with_dead_relay(snmp: &str) -> Server {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[outbound]\nrelay = \"127.0.0.1:{port}\"\nretry_intervals = [\"1h\"]\n\
             [limits]\nlogin_free_failures = 100\n{snmp}"
        ),
    );
    s.populate("example.org", &[("alice@example.org", "Alice Smith")]);
    s.set_password("alice@example.org", "pw");
    s
}

/// postgateQueueOverThreshold when mail stays queued, and
/// postgateAuthFailureStorm after failed IMAP and POP3 logins, as traps.
#[test]
fn queue_threshold_and_login_storm_traps() {
    let Some(trapd) = Trapd::start("disableAuthorization yes\n") else {
        return;
    };
    let s = with_dead_relay(&format!(
        "[snmp]\nlisten = [\"127.0.0.1:0\"]\ntrap_receivers = [\"127.0.0.1:{}\"]\n\
         queue_depth_threshold = 2\nauth_failure_storm = 4\nauth_failure_window = \"60s\"\n",
        trapd.port
    ));
    trapd.wait_for(".1.3.6.1.4.1.32473.1.0.1", Duration::from_secs(10));
    // Two recipients outbound: the queue reaches the threshold.
    let args: Vec<String> = [
        s.addr("submission").port().to_string(),
        "starttls".into(),
        "alice@example.org".into(),
        "pw".into(),
        "alice@example.org".into(),
        "one@remote.test,two@remote.test".into(),
    ]
    .into();
    let Some((ok, out, err)) = python(SUBMIT, &args) else {
        return;
    };
    assert!(ok && out.contains("\"sent\": 1"), "{out}{err}");
    // The queue is sampled every 5 s.
    let log = trapd.wait_for(".1.3.6.1.4.1.32473.1.0.3", Duration::from_secs(20));
    // postgateQueueDepth.0 and postgateQueueDepthThreshold.0 ride along.
    assert!(
        log.contains(".1.3.6.1.4.1.32473.1.1.15.0 = Gauge32: 2"),
        "{log}"
    );
    assert!(
        log.contains(".1.3.6.1.4.1.32473.1.1.16.0 = Gauge32: 2"),
        "{log}"
    );

    // Four failed logins across IMAP and POP3 within the window.
    let bad = "import imaplib,poplib,ssl,sys\nctx=ssl.create_default_context();ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\nfor i in range(2):\n  m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\n  try:\n    m.login('alice@example.org','wrong'); sys.exit(1)\n  except imaplib.IMAP4.error: pass\n  p=poplib.POP3_SSL('127.0.0.1',int(sys.argv[2]),context=ctx)\n  p.user('alice@example.org')\n  try:\n    p.pass_('wrong'); sys.exit(1)\n  except poplib.error_proto: pass\n";
    let (ok, _, err) = python(
        bad,
        &[
            s.addr("imaps").port().to_string(),
            s.addr("pop3s").port().to_string(),
        ],
    )
    .unwrap();
    assert!(ok, "{err}");
    let log = trapd.wait_for(".1.3.6.1.4.1.32473.1.0.5", Duration::from_secs(10));
    assert!(
        log.contains(".1.3.6.1.4.1.32473.1.1.20.0 = Gauge32: 4"),
        "{log}"
    );
    // Once per crossing, once per window.
    std::thread::sleep(Duration::from_secs(6));
    let n = |oid: &str| {
        trapd
            .notifications()
            .iter()
            .filter(|t| t.contains(&format!("OID: {oid}")))
            .count()
    };
    assert_eq!(n(".1.3.6.1.4.1.32473.1.0.3"), 1);
    assert_eq!(n(".1.3.6.1.4.1.32473.1.0.5"), 1);
}

/// `inform = true`: InformRequests, acknowledged by snmptrapd (which
/// answers only the communities it is told to accept).
#[test]
fn informs_are_acknowledged_by_snmptrapd() {
    let Some(trapd) = Trapd::start("authCommunity log,execute,net informs\n") else {
        return;
    };
    let mut s = Server::start(
        Path::new(BIN),
        &format!(
            "[snmp]\nlisten = [\"127.0.0.1:0\"]\ntrap_receivers = [\"127.0.0.1:{}\"]\n\
             trap_community = \"informs\"\ninform = true\n\
             [console]\nlisten = [\"127.0.0.1:0\"]\nmetrics_token = \"t0ken\"\n",
            trapd.port
        ),
    );
    trapd.wait_for(".1.3.6.1.4.1.32473.1.0.1", Duration::from_secs(10));
    // The agent counts it sent only once the Response came.
    let scrape = "import http.client,ssl,sys\nctx=ssl.create_default_context();ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\nh=http.client.HTTPSConnection('127.0.0.1',int(sys.argv[1]),context=ctx)\nh.request('GET','/metrics',headers={'Authorization':'Bearer t0ken'})\nprint(h.getresponse().read().decode())\n";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out, err) = python(scrape, &[s.addr("console").port().to_string()]).unwrap();
        assert!(ok, "{err}");
        if out.contains("postgate_snmp_notifications_total{outcome=\"sent\"} 1") {
            assert!(
                !out.contains("postgate_snmp_notifications_total{outcome=\"failed\"}"),
                "{out}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!s.log().contains("not delivered"), "{}", s.log());
    s.terminate();
    trapd.wait_for(".1.3.6.1.4.1.32473.1.0.2", Duration::from_secs(10));
    assert!(!s.log().contains("not delivered"), "{}", s.log());
}
