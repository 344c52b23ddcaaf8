//! The login front door, shared by every protocol that logs users in (IMAP,
//! POP3, SMTP AUTH, LDAP bind, the HTTPS API): SASL decoded once
//! ([`sasl_plain`], [`sasl_text`]), then [`Authenticator::login`]: the channel
//! checked before any password is, the failure throttle of
//! [`crate::access::Throttle`], the password, then the user's class of
//! service. Engines only map a [`Refusal`] to their own reply.
//!
//! Password checks keep a cache of recent successes.
//!
//! Argon2id costs tens of milliseconds of CPU per check by design; a client
//! that logs in every minute (as POP3 and many IMAP clients do) would spend a
//! core on it. Like Dovecot's auth cache, a successful check is remembered for
//! a while as a keyed digest of the password (never the password): the next
//! login with the same password and the same stored hash costs one SHA-256. A
//! changed password (a different stored hash) or a different password misses
//! the cache and goes through argon2id again. Failures are never cached.
use crate::access::{Policy, Throttle};
use crate::{Result, Store, StoreError, User, password};
use base64::Engine;
use postgate_types::{EmailAddress, Secret, Service};
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::net::IpAddr;
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
    policy: Policy,
    throttle: Arc<Throttle>,
}

/// Why a login was refused; each engine has its own reply for each.
#[derive(Debug)]
pub enum Refusal {
    /// Wrong login or password; a missing account is not told apart.
    Credentials,
    /// The right password, but the user's class of service denies the
    /// service, or the client's address is blocked.
    Denied(String),
    /// A clear-text channel where the service wants TLS first: no password
    /// was checked.
    TlsRequired,
    /// The store failed; worth trying again later.
    Unavailable(StoreError),
}

/// One login attempt.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// What for.
    pub service: Service,
    /// The client's address.
    pub peer: IpAddr,
    /// The login name (an address or an alias).
    pub login: &'a str,
    /// The password.
    pub password: Secret<String>,
    /// Whether the channel is encrypted, or the operator allows passwords in
    /// the clear on it.
    pub channel_ok: bool,
}

/// Decodes base64 as SASL sends it (surrounding blanks ignored).
pub fn sasl_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

/// A base64 SASL response as text (the LOGIN mechanism's user name and
/// password).
pub fn sasl_text(s: &str) -> Option<String> {
    sasl_base64(s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Why a SASL PLAIN response could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not base64.
    Base64,
    /// Not `[authzid] NUL authcid NUL passwd`.
    Malformed,
    /// An authorization identity other than the authentication identity.
    ActAs,
}

/// Decodes a SASL PLAIN response (RFC 4616 §2: `[authzid] NUL authcid NUL
/// passwd`, base64): the login name and password.
pub fn sasl_plain(b64: &str) -> std::result::Result<(String, String), SaslError> {
    sasl_plain_decoded(&sasl_base64(b64).ok_or(SaslError::Base64)?)
}

/// [`sasl_plain`] for a response already decoded from base64 (as IMAP's
/// parser gives it).
pub fn sasl_plain_decoded(raw: &[u8]) -> std::result::Result<(String, String), SaslError> {
    let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    let [authzid, authcid, passwd] = parts.as_slice() else {
        return Err(SaslError::Malformed);
    };
    if !authzid.is_empty() && authzid != authcid {
        // Acting as another user is not offered.
        return Err(SaslError::ActAs);
    }
    Ok((
        String::from_utf8_lossy(authcid).into_owned(),
        String::from_utf8_lossy(passwd).into_owned(),
    ))
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
            policy: Policy::new(store.clone()),
            store,
            inner: Arc::new(Inner {
                key,
                cache: Mutex::new(HashMap::new()),
            }),
            throttle: Arc::new(Throttle::new(
                2,
                Duration::from_secs(2),
                Duration::from_secs(15),
            )),
        }
    }

    /// The same, with `free` failures answered at once, then a delay of
    /// `penalty` doubling up to `max` before each further attempt.
    pub fn with_throttle(mut self, free: u32, penalty: Duration, max: Duration) -> Authenticator {
        self.throttle = Arc::new(Throttle::new(free, penalty, max));
        self
    }

    /// The policy point every engine asks.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How long until earlier failures from `peer` or for `login` stop
    /// holding attempts back (zero: now). The console answers "try again
    /// later" with it at once instead of holding a browser's request.
    pub fn retry_after(&self, peer: IpAddr, login: &str) -> Duration {
        self.throttle
            .retry_after(peer, &login.trim().to_ascii_lowercase())
    }

    /// Tells the throttle that an attempt was refused for [`Authenticator::retry_after`]:
    /// the penalty starts again, so a client that keeps trying stays held.
    pub fn held(&self, peer: IpAddr, login: &str) {
        self.throttle.held(peer, &login.trim().to_ascii_lowercase());
    }

    /// The front door: checks an attempt and the user's class of service.
    pub async fn login(&self, a: Attempt<'_>) -> std::result::Result<User, Refusal> {
        let counters = postgate_metrics::metrics();
        let service = a.service.as_str();
        if !a.channel_ok {
            // Never reaches the password check, nor counts as a failure.
            counters.login(service, "tls_required");
            return Err(Refusal::TlsRequired);
        }
        let account = a.login.trim().to_ascii_lowercase();
        let wait = self.throttle.delay(a.peer, &account);
        if !wait.is_zero() {
            tracing::info!(service = a.service.as_str(), peer = %a.peer, ?wait, "login throttled");
            counters.login(service, "throttled");
            tokio::time::sleep(wait).await;
        }
        let user = match EmailAddress::parse(a.login.trim()) {
            Ok(login) => self.authenticate(&login, &a.password).await,
            Err(_) => {
                password::verify_blocking(password::dummy_hash(), a.password.clone()).await;
                Ok(None)
            }
        };
        let user = match user {
            Ok(Some(u)) => u,
            Ok(None) => {
                counters.login(service, "failed");
                self.throttle.failed(a.peer, &account);
                tracing::info!(service = a.service.as_str(), peer = %a.peer, login = %account, "login failed");
                return Err(Refusal::Credentials);
            }
            Err(e) => return Err(Refusal::Unavailable(e)),
        };
        self.throttle.succeeded(a.peer, &account);
        if let Some(b) = self
            .policy
            .blocked(postgate_types::access::Direction::In, Some(a.peer), &[])
            .await
            .map_err(Refusal::Unavailable)?
        {
            counters.login(service, "denied");
            return Err(Refusal::Denied(format!(
                "client address blocked ({})",
                b.pattern
            )));
        }
        let class = self
            .policy
            .class_of(&user)
            .await
            .map_err(Refusal::Unavailable)?;
        if !class.settings.allows(a.service) {
            tracing::info!(user = %user.address, service = a.service.as_str(), class = %class.class, "login denied by class of service");
            counters.login(service, "denied");
            return Err(Refusal::Denied(format!(
                "{} is not allowed {} (class of service {})",
                user.address,
                a.service.as_str(),
                class.class
            )));
        }
        counters.login(service, "ok");
        Ok(user)
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
