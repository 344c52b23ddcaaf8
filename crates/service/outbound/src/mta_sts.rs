//! MTA-STS (RFC 8461): a recipient domain's declaration that its MX hosts
//! take TLS with certificates valid for their names.
//!
//! For a domain reached through MX lookup, [`Resolver::policy`] looks up
//! `_mta-sts.DOMAIN` TXT (§3.1, through the shared [`postgate_dns::Dns`]) and,
//! when its id is not the one of the policy already cached, fetches
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (§3.3) and parses it
//! ([`Policy::parse`], §3.2). Policies are kept in memory for their
//! `max_age` (§5.1), at most [`CACHE_LIMIT`] domains. The agent then applies
//! the policy (lib.rs, `deliver_domain`): in `enforce` mode only MX hosts
//! matching the policy ([`Policy::allows`], §4.1) are tried, over TLS
//! verified for the host's name (§4.2); in `testing` mode it delivers as
//! usual and logs what enforce would have refused.
//!
//! Not here: TLS reporting (RFC 8460), proactive refreshes before expiry
//! (§5.1 "SHOULD" proactively refresh; here a policy is refetched when it
//! is needed after its TXT id changed or it expired).
use crate::client::Connector;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// §3.3: the policy's well-known path.
const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// §3.3: "a suggested maximum policy size is 64 kilobytes"; a larger body is
/// a failed fetch, not memory spent on a hostile server.
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// §3.3: "a suggested timeout is one minute" for the whole fetch (connect,
/// TLS, request, body): the domain's mail waits for it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// §3.2: max_age is at most 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Domains whose policies are cached at most: enough for the domains a busy
/// server sends to, bounded so that mail to many domains cannot grow it
/// without end. When full, expired entries go first, then the one closest
/// to expiry.
pub const CACHE_LIMIT: usize = 10_000;

/// §3.2: what the policy asks of senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts over verified TLS.
    Enforce,
    /// Deliver as usual; failures are reported (here: logged).
    Testing,
    /// As if there were no policy.
    None,
}

impl Mode {
    /// The policy file's word, also the counters' and accounting's.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// MX host patterns, lower case without a final dot: names, or
    /// "*.example.net" for any one label in front of example.net.
    pub mx: Vec<String>,
    /// How long the policy may be cached, in seconds.
    pub max_age: u64,
}

impl Policy {
    /// Parses a policy body (§3.2): "key: value" lines ended by LF or CRLF;
    /// `version: STSv1`, `mode`, `max_age` and (unless mode is none) at
    /// least one `mx` are required; unknown keys are ignored.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        // §3.2: sts-policy-term = LF / CRLF.
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("not a \"key: value\" line: {line:?}"));
            };
            // §3.2: sts-policy-field = key ":" *WSP value, then *WSP.
            let value = value.trim_matches([' ', '\t']);
            // A repeated field other than mx: the first counts.
            match key.to_ascii_lowercase().as_str() {
                "version" => {
                    version.get_or_insert(value);
                }
                "mode" => {
                    mode.get_or_insert(value);
                }
                "max_age" => {
                    max_age.get_or_insert(value);
                }
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                // §3.2: "unknown fields SHOULD be ignored".
                _ => {}
            }
        }
        // §3.2: sts-policy-version-value = %s"STSv1" (case-sensitive).
        if version != Some("STSv1") {
            return Err(format!(
                "version is {:?}, not STSv1",
                version.unwrap_or("missing")
            ));
        }
        let mode = match mode.map(str::to_ascii_lowercase).as_deref() {
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            other => return Err(format!("mode {:?} is not enforce, testing or none", other)),
        };
        // §3.2: max_age = 1*10DIGIT, "up to a maximum of 31557600".
        let max_age = max_age.ok_or("max_age is missing")?;
        let max_age = (max_age.len() <= 10 && max_age.bytes().all(|b| b.is_ascii_digit()))
            .then(|| max_age.parse::<u64>().ok())
            .flatten()
            .filter(|&a| a <= MAX_AGE_LIMIT)
            .ok_or_else(|| format!("max_age {max_age:?} is not 0 to {MAX_AGE_LIMIT} seconds"))?;
        for pattern in &mx {
            let name = pattern.strip_prefix("*.").unwrap_or(pattern);
            if name.is_empty() || name.contains(['*', ' ', '/', ':']) {
                return Err(format!("mx {pattern:?} is not a host name pattern"));
            }
        }
        if mx.is_empty() && mode != Mode::None {
            return Err("no mx".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether `host` is an MX host the policy names (§4.1).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| mx_matches(p, &host))
    }
}

/// §4.1: a pattern matches the name itself, or with "*." exactly one
/// leftmost label ("*.example.com" matches "mx.example.com", neither
/// "example.com" nor "a.mx.example.com"). Both in lower case.
fn mx_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => pattern == host,
    }
}

/// A policy in the cache, with the TXT id it was fetched under.
#[derive(Debug)]
struct Cached {
    id: String,
    policy: Arc<Policy>,
    expires: Instant,
}

/// What [`Resolver::policy`] found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The policy to apply; `None` when the domain has none (or none could
    /// be had: §5.1, deliver as without MTA-STS).
    pub policy: Option<Arc<Policy>>,
    /// A policy fetch failed on the way (counted as "fetch_failed").
    pub fetch_failed: Option<String>,
}

/// Policies by domain, each until its max_age runs out (§5.1), at most
/// [`CACHE_LIMIT`] of them.
#[derive(Debug, Default)]
struct PolicyCache(Mutex<HashMap<String, Cached>>);

impl PolicyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The unexpired policy of `domain`, with its id.
    fn get(&self, domain: &str) -> Option<(String, Arc<Policy>)> {
        let mut cache = self.lock();
        match cache.get(domain) {
            Some(c) if c.expires > Instant::now() => Some((c.id.clone(), c.policy.clone())),
            Some(_) => {
                cache.remove(domain);
                None
            }
            None => None,
        }
    }

    fn put(&self, domain: &str, id: String, policy: Arc<Policy>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT && !cache.contains_key(domain) {
            let now = Instant::now();
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= CACHE_LIMIT
                && let Some(soonest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.expires)
                    .map(|(d, _)| d.clone())
            {
                cache.remove(&soonest);
            }
        }
        let expires = Instant::now() + Duration::from_secs(policy.max_age);
        cache.insert(
            domain.to_string(),
            Cached {
                id,
                policy,
                expires,
            },
        );
    }
}

/// Finds and caches domains' policies.
#[derive(Debug)]
pub(crate) struct Resolver {
    dns: postgate_dns::Dns,
    connector: Connector,
    /// The HTTPS port of policy hosts (443; `[outbound] mta_sts_port`).
    port: u16,
    cache: PolicyCache,
}

impl Resolver {
    pub(crate) fn new(dns: postgate_dns::Dns, connector: Connector, port: u16) -> Resolver {
        Resolver {
            dns,
            connector,
            port,
            cache: PolicyCache::default(),
        }
    }

    /// The policy to apply to mail for `domain` (lower case).
    pub(crate) async fn policy(&self, domain: &str) -> Found {
        let cached = self.cache.get(domain);
        let id = match self.dns.mta_sts_id(domain).await {
            Ok(Some(id)) => id,
            // §5.1: with no live record (none, or the lookup failed), a
            // cached unexpired policy still applies.
            Ok(None) => {
                return Found {
                    policy: cached.map(|(_, p)| p),
                    fetch_failed: None,
                };
            }
            Err(e) => {
                tracing::debug!(domain, error = %e, "outbound: MTA-STS TXT lookup failed");
                return Found {
                    policy: cached.map(|(_, p)| p),
                    fetch_failed: None,
                };
            }
        };
        // §5.1: the id unchanged, the cached policy is current.
        if let Some((cached_id, policy)) = &cached
            && *cached_id == id
        {
            return Found {
                policy: Some(policy.clone()),
                fetch_failed: None,
            };
        }
        match self.fetch(domain).await {
            Ok(policy) => {
                tracing::info!(domain, id, mode = policy.mode.as_str(), max_age = policy.max_age, mx = ?policy.mx, "outbound: MTA-STS policy fetched");
                let policy = Arc::new(policy);
                self.cache.put(domain, id, policy.clone());
                Found {
                    policy: Some(policy),
                    fetch_failed: None,
                }
            }
            Err(e) => {
                // §5.1: a failed update keeps the cached policy; with none,
                // delivery goes on as though the domain had no policy.
                tracing::warn!(domain, error = %e, cached = cached.is_some(), "outbound: MTA-STS policy fetch failed");
                Found {
                    policy: cached.map(|(_, p)| p),
                    fetch_failed: Some(e),
                }
            }
        }
    }

    /// Fetches and parses `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
    ///
    /// Over hyper's HTTP/1.1 client connection (`http1::handshake` on
    /// tokio-rustls) rather than a hand-written GET: hyper is in the build
    /// already (the console serves with it), and it gets chunked bodies,
    /// header folding and status lines right, which a policy host on any
    /// web server may send; no pooled client (hyper-util's legacy client)
    /// is needed for one request per policy.
    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        tokio::time::timeout(FETCH_TIMEOUT, self.fetch_from(&host))
            .await
            .map_err(|_| format!("https://{host}{POLICY_PATH}: timed out"))?
            .map_err(|e| format!("https://{host}{POLICY_PATH}: {e}"))
    }

    async fn fetch_from(&self, host: &str) -> Result<Policy, String> {
        let mut addrs: Vec<IpAddr> = Vec::new();
        let (v4, v6) = tokio::join!(self.dns.ipv4(host), self.dns.ipv6(host));
        if let Ok(a) = &v4 {
            addrs.extend(a.iter().map(|&ip| IpAddr::from(ip)));
        }
        if let Ok(a) = &v6 {
            addrs.extend(a.iter().map(|&ip| IpAddr::from(ip)));
        }
        if addrs.is_empty() {
            return Err(match (v4, v6) {
                (Err(e), _) | (_, Err(e)) => format!("address lookup: {e}"),
                _ => "no address records".into(),
            });
        }
        let mut tcp = None;
        let mut last = String::new();
        for ip in addrs {
            match TcpStream::connect(SocketAddr::new(ip, self.port)).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {ip}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        // §3.3: the certificate must be valid for the mta-sts host name and
        // chain to a trusted root.
        let name = ServerName::try_from(host.to_string()).map_err(|_| "bad host name")?;
        let tls = self
            .connector
            .verifying()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let conn = AbortOnDrop(tokio::spawn(conn));
        let request = Request::get(POLICY_PATH)
            .header(header::HOST, host)
            .header(header::USER_AGENT, "postgate")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        // §3.3: "senders MUST NOT follow redirects", and only a 200 carries
        // a policy.
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP status {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_POLICY_SIZE)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        drop(conn);
        let text = std::str::from_utf8(&body).map_err(|_| "policy is not UTF-8")?;
        Policy::parse(text).map_err(|e| format!("policy: {e}"))
    }
}

/// A spawned connection task that ends with the fetch.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_example_and_variants() {
        // §3.2's example, with CRLF.
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        // LF, extra whitespace, unknown keys, a final dot and upper case.
        let p = Policy::parse(
            "version: STSv1\nmode:  testing\t\nfuture: thing\nmx: MX.Example.ORG.\nmax_age: 86400",
        )
        .unwrap();
        assert_eq!(
            (p.mode, p.mx.as_slice()),
            (Mode::Testing, &["mx.example.org".to_string()][..])
        );
        // Mode none needs no mx.
        assert_eq!(
            Policy::parse("version: STSv1\nmode: none\nmax_age: 1\n")
                .unwrap()
                .mode,
            Mode::None
        );
    }

    #[test]
    fn rejects_broken_policies() {
        for (text, why) in [
            ("mode: enforce\nmx: a.b\nmax_age: 1\n", "version"),
            (
                "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
                "version",
            ),
            (
                "version: stsv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
                "version",
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
                "mode",
            ),
            ("version: STSv1\nmode: enforce\nmx: a.b\n", "max_age"),
            (
                "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
                "max_age",
            ),
            ("version: STSv1\nmode: enforce\nmax_age: 10\n", "no mx"),
            (
                "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 10\n",
                "mx",
            ),
            (
                "version: STSv1\nmode enforce\nmx: a.b\nmax_age: 10\n",
                "key: value",
            ),
            ("<html>moved</html>", "key: value"),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert!(
            Policy::parse(&format!(
                "version: STSv1\nmode: none\nmax_age: {MAX_AGE_LIMIT}"
            ))
            .is_ok()
        );
    }

    #[test]
    fn mx_patterns_match_one_leftmost_label() {
        let p = Policy {
            mode: Mode::Enforce,
            mx: vec!["mail.example.com".into(), "*.example.net".into()],
            max_age: 1,
        };
        assert!(p.allows("mail.example.com"));
        assert!(p.allows("MAIL.example.com."));
        assert!(!p.allows("mail.example.com.evil"));
        assert!(!p.allows("x.mail.example.com"));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("example.net"), "the wildcard needs a label");
        assert!(!p.allows("a.b.example.net"), "only one label");
        assert!(!p.allows(".example.net"));
        assert!(!p.allows("mx1.example.network"));
    }

    #[test]
    fn cache_keeps_at_most_its_limit() {
        let cache = PolicyCache::default();
        let policy = |max_age| {
            Arc::new(Policy {
                mode: Mode::Testing,
                mx: vec!["mx.example".into()],
                max_age,
            })
        };
        cache.put("short.example", "1".into(), policy(1));
        for i in 1..CACHE_LIMIT {
            cache.put(&format!("d{i}.example"), "1".into(), policy(1000));
        }
        assert_eq!(cache.lock().len(), CACHE_LIMIT);
        cache.put("new.example", "2".into(), policy(1000));
        assert_eq!(cache.lock().len(), CACHE_LIMIT);
        assert_eq!(cache.get("new.example").unwrap().0, "2");
        assert!(
            cache.get("short.example").is_none(),
            "the soonest to expire went"
        );
        cache.put("new.example", "3".into(), policy(1000));
        assert_eq!(
            cache.get("new.example").unwrap().0,
            "3",
            "a new id replaces"
        );
        cache.put("gone.example", "4".into(), policy(0));
        assert!(
            cache.get("gone.example").is_none(),
            "max_age 0 is expired at once"
        );
    }
}
