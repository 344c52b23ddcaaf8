//! The policy point: classes of service and blocked hosts, as every engine
//! asks about them, and the failure throttle of the login front door
//! ([`crate::auth::Authenticator::login`]).
//!
//! The rules live in the store ([`crate::AccessRules`]), so a change made on
//! any node (or by the CLI, in another process) applies at once everywhere:
//! the evaluated snapshot is kept while the directory generation stays the
//! same, and the generation is read again at most every
//! [`RECHECK`]. A user's effective class is the first assigned to the user,
//! then to a group the user is in (nested groups count), then to the user's
//! post office, then to the user's domain; then the class named `default` if
//! the operator made one, else the built-in default, which allows everything.
use crate::{Result, Store, User, UserRef};
use postgate_types::UserId;
use postgate_types::access::{Assignee, Block, ClassSettings, Direction, Pattern};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the directory generation is read again: a change by another
/// process is seen within this.
pub const RECHECK: Duration = Duration::from_millis(100);

/// Users whose effective class is remembered; past it the memo starts over.
const MAX_USERS: usize = 100_000;

/// A user's class of service and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The class's name (`default` for the built-in one).
    pub class: String,
    /// The assignment that chose it; `None` for the default.
    pub origin: Option<Assignee>,
    /// Its settings.
    pub settings: Arc<ClassSettings>,
}

/// The rules as evaluated at one directory generation.
#[derive(Debug, Default)]
struct Snapshot {
    generation: u64,
    classes: HashMap<String, Arc<ClassSettings>>,
    /// Assignee → class name.
    assigned: HashMap<Assignee, String>,
    any_group: bool,
    blocks: Vec<(Pattern, Block)>,
}

#[derive(Debug)]
struct Inner {
    snapshot: Mutex<(Arc<Snapshot>, Option<Instant>)>,
    users: Mutex<HashMap<UserId, (u64, Arc<Effective>)>>,
    /// Serializes reloads, so a burst of sessions after a change loads once.
    reload: tokio::sync::Mutex<()>,
}

/// Evaluates the access rules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policy {
    store: Arc<dyn Store>,
    inner: Arc<Inner>,
}

impl Policy {
    /// The policy of `store`.
    pub fn new(store: Arc<dyn Store>) -> Policy {
        Policy {
            store,
            inner: Arc::new(Inner {
                snapshot: Mutex::new((Arc::new(Snapshot::default()), None)),
                users: Mutex::new(HashMap::new()),
                reload: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        let g = self.inner.snapshot.lock().ok()?;
        match g.1 {
            Some(at) if at.elapsed() < RECHECK => Some(g.0.clone()),
            _ => None,
        }
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let _one = self.inner.reload.lock().await;
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let generation = self.store.directory_generation().await?;
        let old = self.inner.snapshot.lock().map(|g| g.0.clone()).ok();
        let snap = match old {
            Some(o) if o.generation == generation && generation != 0 => o,
            _ => Arc::new(self.load(generation).await?),
        };
        if let Ok(mut g) = self.inner.snapshot.lock() {
            *g = (snap.clone(), Some(Instant::now()));
        }
        Ok(snap)
    }

    async fn load(&self, generation: u64) -> Result<Snapshot> {
        let mut s = Snapshot {
            generation,
            ..Snapshot::default()
        };
        for c in self.store.classes().await? {
            let key = c.name.to_ascii_lowercase();
            for a in c.assigned {
                s.any_group |= matches!(a, Assignee::Group(_));
                s.assigned.insert(a, key.clone());
            }
            s.classes.insert(key, Arc::new(c.settings));
        }
        for b in self.store.blocks().await? {
            if let Some(p) = Pattern::parse(&b.pattern) {
                s.blocks.push((p, b));
            }
        }
        Ok(s)
    }

    /// Forgets what was evaluated, so the next question reads the store
    /// (after a change made through this process).
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.inner.snapshot.lock() {
            g.1 = None;
            g.0 = Arc::new(Snapshot::default());
        }
    }

    /// A user's class as worked out at `generation`, if it was.
    fn memo(&self, user: UserId, generation: u64) -> Option<Arc<Effective>> {
        let (g, e) = self.inner.users.lock().ok()?.get(&user).cloned()?;
        (g == generation).then_some(e)
    }

    /// The effective class of `user`, and where it came from.
    pub async fn class_of(&self, user: &User) -> Result<Arc<Effective>> {
        let snap = self.snapshot().await?;
        if let Some(e) = self.memo(user.id, snap.generation) {
            return Ok(e);
        }
        let pick = |a: Assignee| snap.assigned.get(&a).map(|c| (c.clone(), a));
        let mut found = pick(Assignee::User(user.address.key()));
        if found.is_none() && snap.any_group {
            for g in self.store.groups_of(user).await? {
                found = pick(Assignee::Group(g.key()));
                if found.is_some() {
                    break;
                }
            }
        }
        let found = found
            .or_else(|| pick(Assignee::PostOffice(user.post_office.to_ascii_lowercase())))
            .or_else(|| pick(Assignee::Domain(user.address.domain().to_ascii_lowercase())));
        let e = Arc::new(match found {
            Some((class, origin)) => Effective {
                settings: snap.classes.get(&class).cloned().unwrap_or_default(),
                class,
                origin: Some(origin),
            },
            None => Effective {
                settings: snap.classes.get("default").cloned().unwrap_or_default(),
                class: "default".into(),
                origin: None,
            },
        });
        if let Ok(mut m) = self.inner.users.lock() {
            if m.len() >= MAX_USERS {
                m.clear();
            }
            m.insert(user.id, (snap.generation, e.clone()));
        }
        Ok(e)
    }

    /// Whether no class and no block exists: every question's answer is
    /// "allowed", and callers may skip asking per recipient.
    pub async fn inert(&self) -> Result<bool> {
        let snap = self.snapshot().await?;
        Ok(snap.classes.is_empty() && snap.assigned.is_empty() && snap.blocks.is_empty())
    }

    /// The settings of the `default` class: the operator's, if made, else
    /// the built-in ones (for whoever has not logged in).
    pub async fn default_settings(&self) -> Result<Arc<ClassSettings>> {
        let snap = self.snapshot().await?;
        Ok(snap.classes.get("default").cloned().unwrap_or_default())
    }

    /// [`Policy::class_of`] for a resolved recipient.
    pub async fn class_of_ref(&self, user: &UserRef) -> Result<Arc<Effective>> {
        let snap = self.snapshot().await?;
        if let Some(e) = self.memo(user.id, snap.generation) {
            return Ok(e);
        }
        match self.store.user_by_id(user.id).await? {
            Some(u) => self.class_of(&u).await,
            None => Err(crate::StoreError::NotFound(format!(
                "user {}",
                user.address
            ))),
        }
    }

    /// The block, if any, on a peer going `way`: a client or sender at `ip`
    /// named `names` (reverse name, HELO, mail domain) coming in, or a
    /// destination host or mail domain going out.
    pub async fn blocked(
        &self,
        way: Direction,
        ip: Option<IpAddr>,
        names: &[&str],
    ) -> Result<Option<Block>> {
        let snap = self.snapshot().await?;
        Ok(snap
            .blocks
            .iter()
            .find(|(p, b)| {
                b.direction.covers(way)
                    && (p.matches(ip, None) || names.iter().any(|n| p.matches(None, Some(n))))
            })
            .map(|(_, b)| b.clone()))
    }
}

/// Counts failed logins per client address and per account, across every
/// service, and says how long the next attempt waits.
#[derive(Debug)]
pub struct Throttle {
    free: u32,
    initial: Duration,
    max: Duration,
    inner: Mutex<Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    ips: HashMap<IpAddr, (u32, Instant)>,
    accounts: HashMap<String, (u32, Instant)>,
}

/// Failures older than this are forgotten.
const FORGET: Duration = Duration::from_secs(15 * 60);
/// Addresses and accounts tracked before the oldest are dropped.
const MAX_TRACKED: usize = 100_000;

impl Throttle {
    /// `free` failures answered at once; then `initial`, doubling, up to `max`.
    pub fn new(free: u32, initial: Duration, max: Duration) -> Throttle {
        Throttle {
            free,
            initial,
            max,
            inner: Mutex::new(Failures::default()),
        }
    }

    fn penalty(&self, failures: u32) -> Duration {
        if failures < self.free.max(1) || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free.max(1)).min(16);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    /// How long an attempt from `ip` for `account` waits before it is checked.
    pub fn delay(&self, ip: IpAddr, account: &str) -> Duration {
        let Ok(f) = self.inner.lock() else {
            return Duration::ZERO;
        };
        let count = |e: Option<&(u32, Instant)>| {
            e.filter(|(_, at)| at.elapsed() < FORGET)
                .map(|e| e.0)
                .unwrap_or(0)
        };
        let n = count(f.ips.get(&ip)).max(count(f.accounts.get(account)));
        self.penalty(n)
    }

    /// How long until the penalty of the latest failure from `ip` or for
    /// `account` has run out (zero: it has). Unlike [`Throttle::delay`],
    /// which a protocol session sleeps before checking, this is for callers
    /// that answer "try again later" at once (the web console), and counts
    /// the time since that failure.
    pub fn retry_after(&self, ip: IpAddr, account: &str) -> Duration {
        let Ok(f) = self.inner.lock() else {
            return Duration::ZERO;
        };
        let left = |e: Option<&(u32, Instant)>| {
            e.filter(|(_, at)| at.elapsed() < FORGET)
                .map(|(n, at)| self.penalty(*n).saturating_sub(at.elapsed()))
                .unwrap_or(Duration::ZERO)
        };
        left(f.ips.get(&ip)).max(left(f.accounts.get(account)))
    }

    /// An attempt refused because of [`Throttle::retry_after`]: the penalty
    /// starts again from now (the count stays), so a client that keeps
    /// trying stays held, while one that waits gets through.
    pub fn held(&self, ip: IpAddr, account: &str) {
        let Ok(mut f) = self.inner.lock() else { return };
        let now = Instant::now();
        if let Some(e) = f.ips.get_mut(&ip) {
            e.1 = now;
        }
        if let Some(e) = f.accounts.get_mut(account) {
            e.1 = now;
        }
    }

    /// Counts a failure.
    pub fn failed(&self, ip: IpAddr, account: &str) {
        let Ok(mut f) = self.inner.lock() else { return };
        if f.ips.len() + f.accounts.len() >= MAX_TRACKED {
            f.ips.retain(|_, (_, at)| at.elapsed() < FORGET);
            f.accounts.retain(|_, (_, at)| at.elapsed() < FORGET);
            if f.ips.len() + f.accounts.len() >= MAX_TRACKED {
                f.ips.clear();
                f.accounts.clear();
            }
        }
        bump(f.ips.entry(ip).or_insert((0, Instant::now())));
        bump(
            f.accounts
                .entry(account.to_string())
                .or_insert((0, Instant::now())),
        );
    }

    /// A success clears the address's and the account's failures.
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        if let Ok(mut f) = self.inner.lock() {
            f.ips.remove(&ip);
            f.accounts.remove(account);
        }
    }
}

fn bump(e: &mut (u32, Instant)) {
    if e.1.elapsed() >= FORGET {
        e.0 = 0;
    }
    e.0 = e.0.saturating_add(1);
    e.1 = Instant::now();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_counts_down_from_the_latest_failure() {
        let ip = IpAddr::from([192, 0, 2, 1]);
        let t = Throttle::new(2, Duration::from_millis(300), Duration::from_secs(15));
        t.failed(ip, "a@example.com");
        assert_eq!(t.retry_after(ip, "a@example.com"), Duration::ZERO);
        t.failed(ip, "a@example.com");
        let left = t.retry_after(ip, "a@example.com");
        assert!(
            left > Duration::from_millis(200) && left <= Duration::from_millis(300),
            "{left:?}"
        );
        // Another account from the same address waits as long.
        assert!(t.retry_after(ip, "b@example.com") > Duration::ZERO);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(t.retry_after(ip, "a@example.com"), Duration::ZERO);
        // The failures still count for the protocols' delay.
        assert!(t.delay(ip, "a@example.com") > Duration::ZERO);
        // An attempt while held starts the penalty again.
        t.failed(ip, "a@example.com");
        std::thread::sleep(Duration::from_millis(400));
        t.held(ip, "a@example.com");
        assert!(t.retry_after(ip, "a@example.com") > Duration::from_millis(400));
    }

    #[test]
    fn penalty_doubles_to_its_cap() {
        let t = Throttle::new(2, Duration::from_secs(2), Duration::from_secs(15));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(t.delay(ip, "a@x").as_secs());
            t.failed(ip, "a@x");
        }
        assert_eq!(seen, [0, 0, 2, 4, 8, 15, 15]);
        // The account is throttled from another address too.
        assert_eq!(t.delay(other, "a@x").as_secs(), 15);
        // And the address for another account.
        assert_eq!(t.delay(ip, "b@x").as_secs(), 15);
        t.succeeded(ip, "a@x");
        assert_eq!(t.delay(ip, "a@x"), Duration::ZERO);
    }
}
