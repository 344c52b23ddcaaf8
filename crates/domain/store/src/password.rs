//! Password hashing with argon2id (RFC 9106), the only scheme Postgate stores.
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use postgate_types::Secret;
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// A valid hash of a password nobody knows, verified against when a login names
/// no user, so that timing does not reveal which users exist.
pub fn dummy_hash() -> String {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("\u{0}no user has this password").unwrap_or_default());
    DUMMY.clone()
}

/// Argon2 costs ~19 MiB and tens of milliseconds per call: at most this many
/// run at once, so a burst of logins cannot exhaust memory or every blocking thread.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(4));

/// Hashes a password with argon2id and the crate's default (OWASP) parameters,
/// returning the PHC string to store. What argon2's `hash_password` does
/// (a random 16-byte salt, version 0x13), with memory from [`blocks`].
pub fn hash(password: &str) -> Result<String, String> {
    let argon = Argon2::default();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let mut memory = blocks(argon.params().block_count());
    argon
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory[..])
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| e.to_string())?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string. Anything unparsable fails.
///
/// What argon2's own `verify_password` does (recompute with the hash's
/// algorithm, version, parameters and salt; compare in constant time), with
/// the ~19 MiB of blocks from [`blocks`] instead of the crate's allocation.
pub fn verify(stored: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let mut memory = blocks(argon.params().block_count());
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|o| &o == expected)
}

/// Argon2's memory: `n` zeroed blocks in an allocation glibc always maps
/// afresh and unmaps on free. Allocated as argon2 does it (19 MiB), glibc
/// serves the second one from the thread's arena (its mmap threshold rises
/// to the size of a freed mapping, up to 32 MiB, mallopt(3)) and keeps the
/// memory after free: measured, ~58 MB of RSS per blocking thread that had
/// verified a login, ~300 MB in all, for good. Capacity past 32 MiB stays
/// on the mmap path; only the `n` blocks used are ever touched.
fn blocks(n: usize) -> Vec<Block> {
    const ALWAYS_MAPPED: usize = (32 << 20) / Block::SIZE + 1;
    let mut v = Vec::with_capacity(n.max(ALWAYS_MAPPED));
    v.resize(n, Block::new());
    v
}

/// [`verify`] on a blocking thread, behind the hashing semaphore.
pub async fn verify_blocking(stored: String, password: Secret<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify(&stored, password.expose()))
        .await
        .unwrap_or(false)
}

/// [`hash`] on a blocking thread, behind the hashing semaphore.
pub async fn hash_blocking(password: Secret<String>) -> Result<String, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || hash(password.expose()))
        .await
        .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // argon2's own verifier takes it.
        use argon2::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", h.as_str())
                .is_ok()
        );
        assert_ne!(h, hash("correct horse").unwrap(), "a fresh salt each time");
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "wrong"));
        assert!(!verify("garbage", "x"));
        assert!(!verify(&dummy_hash(), ""));
    }

    /// Hashes made with other algorithms, versions and parameters (as other
    /// servers' exports carry them) verify as argon2's own verifier says.
    #[test]
    fn agrees_with_the_crate_verifier() {
        use argon2::{PasswordHasher, PasswordVerifier};
        for (algorithm, version, m, t, p) in [
            (Algorithm::Argon2id, Version::V0x13, 19_456, 2, 1),
            (Algorithm::Argon2i, Version::V0x13, 4_096, 3, 2),
            (Algorithm::Argon2d, Version::V0x10, 1_024, 1, 1),
            (Algorithm::Argon2id, Version::V0x13, 40_000, 1, 4),
        ] {
            let argon = Argon2::new(algorithm, version, Params::new(m, t, p, None).unwrap());
            let h = argon.hash_password(b"s3cret").unwrap().to_string();
            for (password, right) in [("s3cret", true), ("s3cre", false), ("", false)] {
                let crate_says = Argon2::default()
                    .verify_password(password.as_bytes(), h.as_str())
                    .is_ok();
                assert_eq!(crate_says, right, "{h}");
                assert_eq!(verify(&h, password), right, "{h} {password:?}");
            }
        }
    }
}
