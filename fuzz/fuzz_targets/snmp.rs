//! The SNMP agent as a datagram from the network reaches it: BER decoding
//! (rasn-snmp), the community check, and the answer to whatever PDU
//! decoded (GET, GETNEXT, GETBULK with any repetitions, SET); SNMPv3
//! messages through the USM's checks (engine ID, user, level, digest,
//! time window, decryption) and their Reports. Nothing may panic or answer
//! without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

fn agent() -> &'static Arc<postgate_snmp::Agent> {
    static A: OnceLock<Arc<postgate_snmp::Agent>> = OnceLock::new();
    A.get_or_init(|| {
        // The engine and user of seeds/snmp/v3*.ber (captured from net-snmp's
        // snmpget against this engine ID).
        let engine = postgate_snmp::engine::Engine::new(
            postgate_snmp::engine::parse_id("80007ed904667a7a").unwrap(),
            1,
        );
        let users = vec![
            postgate_snmp::usm::User::new("ops", "authpass1", "privpass1", engine.id())
                .writer(true),
        ];
        postgate_snmp::Agent::new(postgate_snmp::Settings {
            community: "public".into(),
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
            system: postgate_snmp::mib::System {
                contact: "c".into(),
                name: "n".into(),
                location: "l".into(),
            },
            trap_receivers: Vec::new(),
            trap_community: "public".into(),
            // SET is fuzzed too, in memory (no state file).
            write_community: Some("private".into()),
            inform: false,
            queue_depth_threshold: 0,
            deferred_age_threshold: 0,
            auth_failure_storm: 20,
            auth_failure_window: std::time::Duration::from_secs(60),
            v3: Some(postgate_snmp::usm::Settings {
                engine,
                users,
                trap_user: None,
            }),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(answer) = agent().answer(data, IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        assert!(answer.len() <= 65_535);
    }
});
