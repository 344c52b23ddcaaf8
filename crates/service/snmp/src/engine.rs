//! The local SNMP engine (RFC 3411 §3.1.1): its snmpEngineID, its
//! snmpEngineBoots, kept across restarts in `<data_dir>/snmp-engine`, and
//! its snmpEngineTime, the seconds since this start (RFC 3414 §2.2).
//!
//! The file is two `key = value` lines, rewritten at each start (a temporary
//! file, fsync, rename), so that boots only ever grows:
//!
//! ```text
//! engine_id = 80007ed905…
//! boots = 3
//! ```
use crate::mib::ENTERPRISE;
use std::path::Path;
use std::time::Instant;

/// The file in the data directory that keeps the engine's state.
pub const STATE_FILE: &str = "snmp-engine";

/// RFC 3414 §2.2.2: snmpEngineBoots stops here, and then no message is in
/// the time window until the engine ID is configured anew.
pub const MAX_BOOTS: u32 = 2_147_483_647;

/// The local SNMP engine: who it is and since when it runs.
#[derive(Debug, Clone)]
pub struct Engine {
    id: Vec<u8>,
    boots: u32,
    started: Instant,
}

impl Engine {
    /// An engine with this ID and boots count, whose time starts now.
    pub fn new(id: Vec<u8>, boots: u32) -> Engine {
        Engine {
            id,
            boots: boots.min(MAX_BOOTS),
            started: Instant::now(),
        }
    }

    /// The engine kept in `data_dir`, with one more boot (RFC 3414 §2.2:
    /// snmpEngineBoots counts the (re-)initialisations since snmpEngineID
    /// was last configured). `configured` is `[snmp] engine_id`; without it
    /// the ID already kept is used, or a new one is made (RFC 3411 §5,
    /// format 5: the enterprise number, then 8 random octets). A configured
    /// ID other than the one kept starts boots again at 1.
    pub fn load(data_dir: &Path, configured: Option<&[u8]>) -> std::io::Result<Engine> {
        let path = data_dir.join(STATE_FILE);
        let (kept_id, kept_boots) = match std::fs::read_to_string(&path) {
            Ok(text) => parse_state(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0),
            Err(e) => return Err(e),
        };
        let id = match (configured, &kept_id) {
            (Some(c), _) => c.to_vec(),
            (None, Some(k)) => k.clone(),
            (None, None) => default_id(random_octets()?),
        };
        let boots = if kept_id.as_deref() == Some(id.as_slice()) {
            kept_boots.saturating_add(1).min(MAX_BOOTS)
        } else {
            1
        };
        let text = format!(
            "# Postgate's SNMP engine (RFC 3414 §2.2): rewritten at each start.\nengine_id = {}\nboots = {boots}\n",
            hex(&id)
        );
        crate::control::write_atomic(&path, text.as_bytes())?;
        Ok(Engine::new(id, boots))
    }

    /// snmpEngineID.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// snmpEngineBoots.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// snmpEngineTime: seconds since this start (RFC 3414 §2.2.1), at most
    /// 2^31-1.
    pub fn time(&self) -> u32 {
        self.started.elapsed().as_secs().min(MAX_BOOTS as u64) as u32
    }
}

/// RFC 3411 §5: an SnmpEngineID of format 5 (octets, administratively
/// assigned): the first bit set, then the enterprise number, the format
/// octet and the octets.
pub fn default_id(octets: [u8; 8]) -> Vec<u8> {
    let mut id = (0x8000_0000 | ENTERPRISE).to_be_bytes().to_vec();
    id.push(5);
    id.extend_from_slice(&octets);
    id
}

/// An engine ID written in hex (`80007ed9…`, optionally `0x…`), checked for
/// RFC 3411's SnmpEngineID size (5 to 32 octets).
pub fn parse_id(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if !t.len().is_multiple_of(2) || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("\"{text}\" is not an even number of hex digits"));
    }
    let id: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex digits"))
        .collect();
    // RFC 3411 §5: SnmpEngineID ::= OCTET STRING (SIZE(5..32)).
    if !(5..=32).contains(&id.len()) {
        return Err(format!(
            "an engine ID has 5 to 32 octets (RFC 3411 §5), not {}",
            id.len()
        ));
    }
    Ok(id)
}

/// Lower-case hex, as net-snmp's `createUser -e 0x…` takes it.
pub fn hex(octets: &[u8]) -> String {
    octets.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_state(text: &str) -> (Option<Vec<u8>>, u32) {
    let mut id = None;
    let mut boots = 0;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "engine_id" => id = parse_id(v).ok(),
            "boots" => boots = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    (id, boots)
}

/// A random 64-bit value (for the salt and msgID counters' starts); the
/// clock's nanoseconds should the system have none to give.
pub(crate) fn random_u64() -> u64 {
    random_octets().map(u64::from_be_bytes).unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

fn random_octets() -> std::io::Result<[u8; 8]> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| std::io::Error::other("no random octets from the system"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_grow_across_starts_and_the_id_stays() {
        let dir = tempfile::tempdir().unwrap();
        let a = Engine::load(dir.path(), None).unwrap();
        assert_eq!(a.boots(), 1);
        // enterprises.32473, format 5, eight octets.
        assert_eq!(&a.id()[..5], &[0x80, 0x00, 0x7e, 0xd9, 0x05]);
        assert_eq!(a.id().len(), 13);
        let b = Engine::load(dir.path(), None).unwrap();
        assert_eq!(b.boots(), 2);
        assert_eq!(a.id(), b.id());
        // A configured ID starts counting anew; the same one goes on.
        let id = parse_id("0x8000000004706f7374").unwrap();
        assert_eq!(Engine::load(dir.path(), Some(&id)).unwrap().boots(), 1);
        let c = Engine::load(dir.path(), Some(&id)).unwrap();
        assert_eq!((c.boots(), c.id()), (2, id.as_slice()));
        assert!(!dir.path().join("snmp-engine.tmp").exists());
        // Latched at the top (RFC 3414 §2.2.2).
        std::fs::write(
            dir.path().join(STATE_FILE),
            format!("engine_id = {}\nboots = {MAX_BOOTS}\n", hex(&id)),
        )
        .unwrap();
        assert_eq!(
            Engine::load(dir.path(), Some(&id)).unwrap().boots(),
            MAX_BOOTS
        );
    }

    #[test]
    fn engine_ids_are_checked() {
        assert_eq!(parse_id("800000000401").unwrap().len(), 6);
        assert!(parse_id("8000").is_err());
        assert!(parse_id("80000000040").is_err());
        assert!(parse_id("zz00000000").is_err());
        assert!(parse_id(&"00".repeat(33)).is_err());
    }
}
