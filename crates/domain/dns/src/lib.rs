//! Postgate's one DNS resolver.
//!
//! Every lookup the server makes goes through one [`Dns`], built once at
//! start from `[dns]`: the inbound checks (blocklists, reverse DNS, HELO),
//! the authentication of inbound mail (SPF, DKIM, DMARC, ARC through
//! mail-auth), MX and address lookups of the delivery agent, and MTA-STS.
//!
//! Two caches keep a burst from one host to one lookup, both honouring the
//! answers' TTLs: hickory's record cache (`cache_size` answers), and
//! mail-auth's caches of parsed records (SPF, DKIM keys, DMARC policies,
//! addresses and reverse names), held here in [`TtlCache`]s shared by every
//! session.
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
pub use mail_auth;
use mail_auth::{MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The parameters mail-auth's verifiers take, with this resolver's caches.
pub type Params<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

/// The resolver and its caches; cheap to clone (shared).
#[derive(Clone)]
pub struct Dns {
    inner: Arc<Inner>,
}

struct Inner {
    auth: MessageAuthenticator,
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").finish_non_exhaustive()
    }
}

impl Dns {
    /// A resolver asking `servers` (UDP, then TCP for truncated answers),
    /// or the system's name servers (/etc/resolv.conf) when there are none;
    /// `cache_size` answers are cached, each query waits `timeout`.
    pub fn new(
        servers: &[SocketAddr],
        cache_size: usize,
        timeout: Duration,
    ) -> Result<Dns, String> {
        let (config, mut opts) = if servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("system resolver configuration: {e}"))?
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    ns.connections = vec![udp, tcp];
                    ns
                })
                .collect();
            (
                ResolverConfig::from_name_servers(name_servers),
                ResolverOpts::default(),
            )
        };
        opts.cache_size = cache_size as u64;
        opts.timeout = timeout;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("resolver: {e}"))?;
        Ok(Dns::from_resolver(resolver, cache_size))
    }

    /// Over an existing resolver.
    fn from_resolver(resolver: TokioResolver, cache_size: usize) -> Dns {
        let n = cache_size.max(16);
        Dns {
            inner: Arc::new(Inner {
                auth: MessageAuthenticator(resolver),
                txt: TtlCache::new(n),
                mx: TtlCache::new(n),
                ipv4: TtlCache::new(n),
                ipv6: TtlCache::new(n),
                ptr: TtlCache::new(n),
            }),
        }
    }

    /// The hickory resolver, for plain lookups (MX, addresses).
    pub fn resolver(&self) -> &TokioResolver {
        &self.inner.auth.0
    }

    /// mail-auth's authenticator over the same resolver.
    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.inner.auth
    }

    /// mail-auth's verifier parameters around `params`, with the shared caches.
    pub fn params<P>(&self, params: P) -> Params<'_, P> {
        let i = &self.inner;
        Parameters {
            params,
            cache_txt: Some(&i.txt),
            cache_mx: Some(&i.mx),
            cache_ptr: Some(&i.ptr),
            cache_ipv4: Some(&i.ipv4),
            cache_ipv6: Some(&i.ipv6),
        }
    }

    /// The IPv4 addresses of `name` (cached); empty when it has none.
    /// `Err` only when the lookup itself failed (time-out, SERVFAIL).
    pub async fn ipv4(&self, name: &str) -> Result<Arc<[Ipv4Addr]>, String> {
        match self
            .inner
            .auth
            .ipv4_lookup(name, Some(&self.inner.ipv4))
            .await
        {
            Ok(set) => Ok(set.rrset),
            Err(e) if not_found(&e) => Ok(Arc::from([])),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The IPv6 addresses of `name` (cached); empty when it has none.
    pub async fn ipv6(&self, name: &str) -> Result<Arc<[Ipv6Addr]>, String> {
        match self
            .inner
            .auth
            .ipv6_lookup(name, Some(&self.inner.ipv6))
            .await
        {
            Ok(set) => Ok(set.rrset),
            Err(e) if not_found(&e) => Ok(Arc::from([])),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The MX records of `name` (cached); empty when it has none.
    pub async fn mx(&self, name: &str) -> Result<Arc<[MX]>, String> {
        match self.inner.auth.mx_lookup(name, Some(&self.inner.mx)).await {
            Ok(set) => Ok(set.rrset),
            Err(e) if not_found(&e) => Ok(Arc::from([])),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The reverse names (PTR) of `ip` (cached); empty when it has none.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Arc<[Box<str>]>, String> {
        match self.inner.auth.ptr_lookup(ip, Some(&self.inner.ptr)).await {
            Ok(set) => Ok(set.rrset),
            Err(e) if not_found(&e) => Ok(Arc::from([])),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The MTA-STS policy id of `domain` from its `_mta-sts` TXT record
    /// (RFC 8461 §3.1: `v=STSv1; id=…`, parsed by mail-auth), cached with
    /// hickory's record cache; `None` when the domain publishes none. `Err`
    /// when the lookup failed.
    pub async fn mta_sts_id(&self, domain: &str) -> Result<Option<String>, String> {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::mta_sts::MtaSts;
        let name = format!("_mta-sts.{}", domain.trim_end_matches('.'));
        let records = self.txt(&name).await?;
        // §3.1: records not beginning "v=STSv1;" are discarded; more than
        // one left (or one that does not parse) means no policy.
        let mut ids = records
            .iter()
            .filter(|r| r.trim_ascii_start().starts_with(b"v=STSv1"))
            .map(|r| MtaSts::parse(r).ok().map(|m| m.id));
        match (ids.next(), ids.next()) {
            (Some(id), None) => Ok(id),
            _ => Ok(None),
        }
    }

    /// The TXT strings at `name`, each record's strings joined (not cached
    /// beyond hickory's record cache); empty when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, String> {
        use hickory_resolver::proto::rr::RData;
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match self.resolver().txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(t.txt_data.iter().flatten().copied().collect()),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether an error says only that the name or the record does not exist
/// (NXDOMAIN, or NOERROR with no answer).
pub fn not_found(e: &mail_auth::Error) -> bool {
    matches!(
        e,
        mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_))
    )
}

/// A cache of parsed answers, each kept until its TTL runs out, holding at
/// most `capacity` (when full, the expired go first, then everything: a
/// rare event that costs only lookups).
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// An empty cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> TtlCache<K, V> {
        TtlCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.lock();
        match map.get(name) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_honours_ttl_and_capacity() {
        let c: TtlCache<Box<str>, u32> = TtlCache::new(2);
        let later = Instant::now() + Duration::from_secs(60);
        c.insert("a".into(), 1, later);
        c.insert("gone".into(), 2, Instant::now());
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("gone"), None, "an expired answer is not served");
        c.insert("b".into(), 3, later);
        c.insert("c".into(), 4, later);
        assert_eq!(c.get("c"), Some(4));
        assert!(c.lock().len() <= 2);
    }
}
