//! The LDAP request decoder, as a session feeds it what a client sends:
//! every message in the bytes, with its controls (VLV included), search
//! filters compiled and base DNs normalized. It must never panic, hang or
//! allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = postgate_ldap_proto::decode_all(data);
    let _ = postgate_ldap_proto::controls::decode_vlv(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = postgate_ldap_proto::dn::normalize(s);
    }
});
