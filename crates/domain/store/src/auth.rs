//! Password checks with a cache of recent successes, shared by every protocol
//! that logs users in (IMAP, POP3, SMTP AUTH, LDAP bind).
//!
//! Argon2id costs tens of milliseconds of CPU per check by design; a client
//! that logs in every minute (as POP3 and many IMAP clients do) would spend a
//! core on it. Like Dovecot's auth cache, a successful check is remembered for
//! a while as a keyed digest of the password (never the password): the next
//! login with the same password and the same stored hash costs one SHA-256. A
//! changed password (a different stored hash) or a different password misses
//! the cache and goes through argon2id again. Failures are never cached.
use crate::{Result, Store, User, password};
use postgate_types::{EmailAddress, Secret};
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a successful check is remembered.
const TTL: Duration = Duration::from_secs(3600);
/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// Checks logins against the directory.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Per-process random key, so the cached digests are useless outside it.
    key: [u8; 32],
    cache: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    password: [u8; 32],
    stored_hash: [u8; 32],
    at: Instant,
}

impl Authenticator {
    /// An authenticator over `store`.
    pub fn new(store: Arc<dyn Store>) -> Authenticator {
        let mut key = [0u8; 32];
        // If the system RNG fails the key stays zero: still keyed by nothing
        // secret, but then the cache holds only digests of what was verified.
        let _ = SystemRandom::new().fill(&mut key);
        Authenticator {
            store,
            inner: Arc::new(Inner {
                key,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        ctx.update(&self.inner.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Checks `login` (address or alias) and `password`; the user on success.
    pub async fn authenticate(
        &self,
        login: &EmailAddress,
        password: &Secret<String>,
    ) -> Result<Option<User>> {
        let Some((user, Some(hash))) = self.store.credentials(login).await? else {
            // Spend the time a real check takes, so timing does not reveal users.
            password::verify_blocking(password::dummy_hash(), password.clone()).await;
            return Ok(None);
        };
        let key = user.address.key();
        let pw = self.digest(&[key.as_bytes(), password.expose().as_bytes()]);
        let stored = self.digest(&[hash.as_bytes()]);
        let hit = self
            .inner
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .is_some_and(|e| e.password == pw && e.stored_hash == stored && e.at.elapsed() < TTL);
        if hit {
            return Ok(Some(user));
        }
        if !password::verify_blocking(hash, password.clone()).await {
            return Ok(None);
        }
        if let Ok(mut c) = self.inner.cache.lock() {
            if c.len() >= MAX_ENTRIES {
                c.clear();
            }
            c.insert(
                key,
                Entry {
                    password: pw,
                    stored_hash: stored,
                    at: Instant::now(),
                },
            );
        }
        Ok(Some(user))
    }
}
