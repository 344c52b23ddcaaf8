//! Password hashing with argon2id (RFC 9106), the only scheme Postgate stores.
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
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
/// returning the PHC string to store.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string. Anything unparsable fails.
pub fn verify(stored: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
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
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "wrong"));
        assert!(!verify("garbage", "x"));
        assert!(!verify(&dummy_hash(), ""));
    }
}
