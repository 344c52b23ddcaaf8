//! The SNMP agent as a datagram from the network reaches it: BER decoding
//! (rasn-snmp), the community check, and the answer to whatever PDU
//! decoded (GET, GETNEXT, GETBULK with any repetitions, SET). Nothing may
//! panic or answer without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

fn agent() -> &'static Arc<postgate_snmp::Agent> {
    static A: OnceLock<Arc<postgate_snmp::Agent>> = OnceLock::new();
    A.get_or_init(|| {
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
            v3: None,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(answer) = agent().answer(data, IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        assert!(answer.len() <= 65_535);
    }
});
