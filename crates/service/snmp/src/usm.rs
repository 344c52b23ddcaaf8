//! The User-based Security Model's cryptography (RFC 3414), with the one
//! pair of protocols Postgate offers: usmHMAC192SHA256AuthProtocol (RFC 7860)
//! for authentication and usmAesCfb128Protocol (RFC 3826) for privacy.
//!
//! Passwords become keys once, when the agent starts ([`User::new`]: the
//! 1 MB stretch of RFC 3414 §A.2.1, then localisation to the engine ID),
//! never per message. Message processing itself is in [`crate::v3`].
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sha2::digest::Digest;

/// RFC 7860 §4.2: usmHMAC192SHA256AuthProtocol's msgAuthenticationParameters
/// are the first 24 octets of the HMAC.
pub const DIGEST_LEN: usize = 24;
/// RFC 3826 §3.1.1.1: AES-128's key is the first 16 octets of the
/// localised privacy key.
const PRIV_KEY_LEN: usize = 16;
/// RFC 3826 §3.1.2.1: msgPrivacyParameters is the 64-bit salt.
pub const SALT_LEN: usize = 8;
/// RFC 3414 §11.2: shorter passwords are refused (as net-snmp does).
pub const MIN_PASSWORD_LEN: usize = 8;

/// RFC 3414 §A.2.1 (and RFC 7860 §9.3 for SHA-2): the password repeated
/// over 1,048,576 octets, hashed: the user's key Ku, the same for every
/// engine.
pub fn password_to_key<D: Digest>(password: &[u8]) -> Vec<u8> {
    const STRETCH: usize = 1_048_576;
    let mut h = D::new();
    if !password.is_empty() {
        // 64-octet chunks of the endless repetition, as in the RFC's code.
        let mut chunk = [0u8; 64];
        let mut at = 0;
        for _ in 0..STRETCH / 64 {
            for b in chunk.iter_mut() {
                *b = password[at % password.len()];
                at += 1;
            }
            h.update(chunk);
        }
    }
    h.finalize().to_vec()
}

/// RFC 3414 §2.6 / §A.2.2: Kul = H(Ku ‖ engineID ‖ Ku), the key of this
/// user at this engine alone.
pub fn localize<D: Digest>(ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
    let mut h = D::new();
    h.update(ku);
    h.update(engine_id);
    h.update(ku);
    h.finalize().to_vec()
}

/// The localised keys of one user (never printed).
#[derive(Clone)]
pub struct Keys {
    auth: [u8; 32],
    privacy: [u8; PRIV_KEY_LEN],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    /// Both keys from the passwords, localised to `engine_id`. The privacy
    /// key is localised with the authentication protocol's hash (RFC 3826
    /// §1.2, RFC 3414 §2.6), SHA-256 here: 32 octets, of which AES-128
    /// takes the first 16 (as net-snmp does).
    pub fn new(auth_password: &[u8], priv_password: &[u8], engine_id: &[u8]) -> Keys {
        let a = localize::<Sha256>(&password_to_key::<Sha256>(auth_password), engine_id);
        let p = localize::<Sha256>(&password_to_key::<Sha256>(priv_password), engine_id);
        let mut keys = Keys {
            auth: [0; 32],
            privacy: [0; PRIV_KEY_LEN],
        };
        keys.auth.copy_from_slice(&a);
        keys.privacy.copy_from_slice(&p[..PRIV_KEY_LEN]);
        keys
    }

    /// RFC 7860 §4.2.1: HMAC-SHA-256 over the whole message (its
    /// msgAuthenticationParameters 24 zero octets), first 24 octets.
    pub fn sign(&self, whole_msg: &[u8]) -> [u8; DIGEST_LEN] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.auth).expect("any key length");
        mac.update(whole_msg);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; DIGEST_LEN];
        out.copy_from_slice(&full[..DIGEST_LEN]);
        out
    }

    /// RFC 7860 §4.2.2: whether `digest` is this key's for `whole_msg` (its
    /// msgAuthenticationParameters already zeroed), compared in constant
    /// time.
    pub fn verify(&self, whole_msg: &[u8], digest: &[u8]) -> bool {
        if digest.len() != DIGEST_LEN {
            return false;
        }
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.auth).expect("any key length");
        mac.update(whole_msg);
        mac.verify_truncated_left(digest).is_ok()
    }

    /// RFC 3826 §3.1.3: AES-128 in CFB-128 mode, in place; the IV is the
    /// authoritative engine's boots and time and the salt (§3.1.2.1). No
    /// padding: the ciphertext is as long as the plaintext.
    pub fn encrypt(&self, boots: u32, time: u32, salt: &[u8; SALT_LEN], data: &mut [u8]) {
        use cfb_mode::cipher::KeyIvInit;
        let iv = iv(boots, time, salt);
        cfb_mode::Encryptor::<aes::Aes128>::new(&self.privacy.into(), &iv.into()).encrypt(data);
    }

    /// RFC 3826 §3.1.4: the reverse of [`Keys::encrypt`], with the
    /// message's msgAuthoritativeEngineBoots/Time and msgPrivacyParameters.
    pub fn decrypt(&self, boots: u32, time: u32, salt: &[u8; SALT_LEN], data: &mut [u8]) {
        use cfb_mode::cipher::KeyIvInit;
        let iv = iv(boots, time, salt);
        cfb_mode::Decryptor::<aes::Aes128>::new(&self.privacy.into(), &iv.into()).decrypt(data);
    }
}

/// RFC 3826 §3.1.2.1: IV = snmpEngineBoots (4 octets, big-endian) ‖
/// snmpEngineTime (4) ‖ salt (8).
fn iv(boots: u32, time: u32, salt: &[u8; SALT_LEN]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    iv
}

/// A user of the local engine (usmUserTable, RFC 3414 §5): always authPriv,
/// with SHA-256 and AES-128.
#[derive(Debug, Clone)]
pub struct User {
    /// usmUserName (= securityName), 1 to 32 octets.
    pub name: Vec<u8>,
    /// The keys, localised to the local engine.
    pub keys: Keys,
    /// May SET (RFC 3416 §4.2.5); `[snmp.users.NAME] write`, default no.
    pub write: bool,
}

impl User {
    /// The same user, allowed to SET (`write`).
    pub fn writer(mut self, write: bool) -> User {
        self.write = write;
        self
    }

    /// A user whose keys are made from the passwords for `engine_id`: about
    /// 2 MB of hashing, so once at start.
    /// The user may not SET until [`User::writer`].
    pub fn new(name: &str, auth_password: &str, priv_password: &str, engine_id: &[u8]) -> User {
        User {
            name: name.as_bytes().to_vec(),
            keys: Keys::new(
                auth_password.as_bytes(),
                priv_password.as_bytes(),
                engine_id,
            ),
            write: false,
        }
    }
}

/// SNMPv3's settings: the local engine, its users, and who notifications
/// are sent as.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The local engine (authoritative for requests and for notifications).
    pub engine: crate::engine::Engine,
    /// usmUserTable.
    pub users: Vec<User>,
    /// When set, notifications go out as SNMPv3 authPriv from this user
    /// (one of `users`) rather than with the trap community.
    pub trap_user: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const ENGINE: &str = "000000000000000000000002";

    /// RFC 3414 §A.3.2: "maplesyrup" with SHA-1.
    #[test]
    fn rfc3414_sha1_key_localisation() {
        let ku = password_to_key::<sha1::Sha1>(b"maplesyrup");
        assert_eq!(ku, unhex("9fb5cc0381497b3793528939ff788d5d79145211"));
        assert_eq!(
            localize::<sha1::Sha1>(&ku, &unhex(ENGINE)),
            unhex("6695febc9288e36282235fc7151f128497b38f3f")
        );
    }

    /// The same with SHA-256 (RFC 7860 §9.3 gives the algorithm, not a
    /// vector): the values net-snmp, pysnmp and others compute, checked
    /// here with Python's hashlib; the interop tests check it against
    /// net-snmp itself.
    #[test]
    fn sha256_key_localisation() {
        let ku = password_to_key::<Sha256>(b"maplesyrup");
        assert_eq!(
            ku,
            unhex("ab51014d1e077f6017df2b12bee5f5aa72993177e9bb569c4dff5a4ca0b4afac")
        );
        assert_eq!(
            localize::<Sha256>(&ku, &unhex(ENGINE)),
            unhex("8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b")
        );
        let k = Keys::new(b"maplesyrup", b"maplesyrup", &unhex(ENGINE));
        assert_eq!(k.auth.to_vec(), localize::<Sha256>(&ku, &unhex(ENGINE)));
        assert_eq!(k.privacy.to_vec(), k.auth[..16].to_vec());
    }

    /// HMAC-SHA-256-192 and AES-128-CFB against values from Python's hmac
    /// and cryptography modules, then a round trip of odd length.
    #[test]
    fn sign_verify_encrypt_decrypt() {
        let k = Keys::new(b"maplesyrup", b"maplesyrup", &unhex(ENGINE));
        let msg = b"Postgate USM known answer";
        let d = k.sign(msg);
        assert_eq!(d.to_vec(), unhex(HMAC_KAT));
        assert!(k.verify(msg, &d));
        let mut bad = d;
        bad[23] ^= 1;
        assert!(!k.verify(msg, &bad));
        assert!(!k.verify(msg, &d[..12]));
        assert!(!k.verify(b"Postgate USM known answeR", &d));

        let salt = 0x0102_0304_0506_0708u64.to_be_bytes();
        let mut data = msg.to_vec();
        k.encrypt(7, 1234, &salt, &mut data);
        assert_eq!(data, unhex(AES_KAT));
        k.decrypt(7, 1234, &salt, &mut data);
        assert_eq!(data, msg);
        // Another time, another ciphertext; a wrong key gives garbage.
        let mut other = msg.to_vec();
        k.encrypt(7, 1235, &salt, &mut other);
        assert_ne!(other, unhex(AES_KAT));
        let wrong = Keys::new(b"maplesyrup", b"maplesugar", &unhex(ENGINE));
        let mut data = unhex(AES_KAT);
        wrong.decrypt(7, 1234, &salt, &mut data);
        assert_ne!(data, msg);
    }

    const HMAC_KAT: &str = "36ed20d6d2ea9416c709e25952e33418585cde6f35bbb21b";
    const AES_KAT: &str = "a3b6322914f11a0d20c5621df925ee344075e2babd2f0c5b9c";
}
