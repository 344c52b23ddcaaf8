//! `[smtp.checks]`: the defences against unwanted clients on the inbound
//! port (allow list, DNS allow- and blocklists, forward-confirmed reverse
//! DNS, the HELO name) and the message rate limit per client ("mailbomb").
//!
//! What it is not: the authentication of messages (SPF, DKIM, DMARC, ARC;
//! `verify`, `spf`, `dmarc`) lives elsewhere.
//!
//! How it fits: [`Checks`] is built once per service from the configuration
//! and shared by every session (it holds the parsed allow list and the
//! mailbomb windows). At connect, before the greeting, [`Checks::connect`]
//! runs the lookups concurrently and gives either a refusal to send instead
//! of the greeting, or a [`Verdict`] the session keeps; HELO/EHLO adds the
//! HELO outcome ([`Checks::helo`]); MAIL asks [`Checks::over_limit`], and
//! each accepted message is [`Checks::count`]ed; the envelope carries the
//! verdict to delivery (Junk) and accounting.
//!
//! With no check configured, [`Checks::active`] is false and a session does
//! nothing more than test that flag: no lookups, no allocation.
//!
//! Lookup failures (time-outs, SERVFAIL) never refuse a client: they are
//! recorded as "temperror" and the session goes on.
use crate::reply::Reply;
use postgate_dns::Dns;
use postgate_runtime::config::{CheckAction, SmtpChecks};
use postgate_types::{Network, UserId};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Reverse names tried per client address: RFC 7208 §5.5 (SPF's "ptr")
/// stops at 10, and so do we, so that a client cannot make us look up
/// hundreds of names.
const MAX_PTR_NAMES: usize = 10;

/// The mailbomb windows kept at once (client addresses and users). Each
/// holds at most `messages` 4-octet timestamps, so 50 000 windows of 100
/// messages take about 20 MB at worst. When full, windows that have run
/// out are dropped (at most once a second); a new key that still finds no
/// room is not counted until some do (it passes: the limit is a defence
/// against one noisy client, not a quota).
const MAX_WINDOWS: usize = 50_000;

/// The checks of one SMTP service, shared by its sessions.
#[derive(Debug)]
pub struct Checks {
    /// Whether any connection or HELO check (dnsbl, dnswl, ptr, helo,
    /// mailbomb) is configured; when not, sessions skip this module.
    active: bool,
    /// `allow` entries that are addresses or networks.
    allow_nets: Vec<Network>,
    /// `allow` entries that are host names: exact ("mx.partner.example"),
    /// or a suffix with its leading dot (".partner.example" from
    /// "*.partner.example"); lowercase, without a trailing dot.
    allow_names: Vec<String>,
    /// The mailbomb limit and its windows.
    mailbomb: Option<Mailbomb>,
}

/// Whose messages a mailbomb window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sender {
    /// An unauthenticated client on the inbound port.
    Ip(IpAddr),
    /// An authenticated user (submission, SMTPS, or AUTH on port 25).
    User(UserId),
}

/// At most `messages` in `window`, per [`Sender`].
#[derive(Debug)]
struct Mailbomb {
    messages: usize,
    window: Duration,
    /// Where timestamps count from (milliseconds since `epoch`, wrapping:
    /// a u32 spans 49 days, far beyond any window).
    epoch: Instant,
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    /// The last `messages` acceptance times of each sender, oldest first.
    map: HashMap<Sender, VecDeque<u32>>,
    /// When windows that had run out were last dropped.
    last_purge: Option<Instant>,
}

/// What the connection checks decided for one session.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Allowed (`allow`) or listed on a DNS allowlist: no further checks.
    pub exempt: bool,
    /// The client's forward-confirmed reverse name (RFC 8601 §3 iprev).
    pub reverse: Option<String>,
    /// A connection check asked for the session's mail to go to Junk.
    pub junk: bool,
    /// Each connection check's outcome, for the envelope.
    pub results: Vec<(&'static str, String)>,
    /// The last HELO/EHLO's outcome, and whether it asks for Junk.
    pub helo: Option<(&'static str, bool)>,
}

impl Verdict {
    /// Whether the session's mail goes to Junk.
    pub fn junk(&self) -> bool {
        self.junk || self.helo.is_some_and(|(_, junk)| junk)
    }

    /// Every outcome so far, for the envelope.
    pub fn outcomes(&self) -> Vec<(&'static str, String)> {
        let mut out = self.results.clone();
        if let Some((result, _)) = self.helo {
            out.push(("helo", result.to_string()));
        }
        out
    }
}

/// One DNS list's answer for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Listed,
    NotListed,
    TempError,
}

impl Checks {
    /// The checks `config` asks for (its `allow` entries were validated by
    /// the configuration check; ones that still do not parse are ignored).
    pub fn new(config: &SmtpChecks) -> Checks {
        let mut allow_nets = Vec::new();
        let mut allow_names = Vec::new();
        for a in &config.allow {
            if let Ok(n) = a.parse::<Network>() {
                allow_nets.push(n);
            } else {
                let name = a.trim().trim_end_matches('.').to_ascii_lowercase();
                // "*.partner.example" keeps its dot: ".partner.example".
                allow_names.push(name.strip_prefix('*').unwrap_or(&name).to_string());
            }
        }
        Checks {
            active: !config.dnsbl.is_empty()
                || !config.dnswl.is_empty()
                || config.ptr != CheckAction::Off
                || config.helo != CheckAction::Off
                || config.mailbomb.is_some(),
            allow_nets,
            allow_names,
            mailbomb: config.mailbomb.map(|m| Mailbomb {
                messages: m.messages.max(1) as usize,
                window: Duration::from_secs(m.seconds),
                epoch: Instant::now(),
                windows: Mutex::new(Windows::default()),
            }),
        }
    }

    /// Whether any check is configured (the only cost when none is).
    pub fn active(&self) -> bool {
        self.active
    }

    /// The checks at connect, before the greeting: `Err` is the reply that
    /// replaces it (RFC 5321 §3.1: 554, then close).
    pub(crate) async fn connect(
        &self,
        config: &SmtpChecks,
        dns: &Dns,
        ip: IpAddr,
    ) -> Result<Verdict, Reply> {
        let ip = ip.to_canonical();
        let metrics = postgate_metrics::metrics();
        if self.allow_nets.iter().any(|n| n.contains(ip)) {
            metrics.check("allow", "pass");
            return Ok(allowed());
        }
        // Independent lookups at once: the reverse name, then every list
        // (allowlists first, each in the order configured).
        let zones: Vec<&str> = config
            .dnswl
            .iter()
            .chain(&config.dnsbl)
            .map(String::as_str)
            .collect();
        let (reverse, listings) = tokio::join!(
            forward_confirmed(dns, ip),
            join_all(zones.iter().map(|z| listed(dns, z, ip)).collect()),
        );
        let (wl, bl) = listings.split_at(config.dnswl.len());
        let names = reverse.as_deref().unwrap_or_default();
        // The first confirmed name stands for the client (in Received).
        let name = names.first().cloned();
        if names.iter().any(|n| self.allows_name(n)) {
            metrics.check("allow", "pass");
            let mut v = allowed();
            v.reverse = name;
            return Ok(v);
        }
        let mut v = Verdict {
            reverse: name,
            ..Verdict::default()
        };
        if !config.dnswl.is_empty() {
            match judge(&config.dnswl, wl) {
                (Listing::Listed, Some(zone)) => {
                    metrics.check("dnswl", "listed");
                    v.exempt = true;
                    v.results.push(("dnswl", format!("listed:{zone}")));
                    return Ok(v);
                }
                (Listing::TempError, _) => {
                    metrics.check("dnswl", "temperror");
                    v.results.push(("dnswl", "temperror".into()));
                }
                _ => {
                    metrics.check("dnswl", "none");
                    v.results.push(("dnswl", "none".into()));
                }
            }
        }
        let action = config.dnsbl_action();
        if action != CheckAction::Off {
            match judge(&config.dnsbl, bl) {
                (Listing::Listed, Some(zone)) => {
                    metrics.check("dnsbl", "listed");
                    tracing::info!(peer = %ip, zone, "client on a DNS blocklist");
                    if action == CheckAction::Reject {
                        metrics.refuse("smtp", "dnsbl");
                        // RFC 5321 §3.1: 554 instead of the greeting.
                        return Err(Reply::new(
                            554,
                            "5.7.1",
                            format!("Service unavailable; client [{ip}] blocked using {zone}"),
                        )
                        .closing());
                    }
                    v.junk = true;
                    v.results.push(("dnsbl", format!("listed:{zone}")));
                }
                (Listing::TempError, _) => {
                    metrics.check("dnsbl", "temperror");
                    v.results.push(("dnsbl", "temperror".into()));
                }
                _ => {
                    metrics.check("dnsbl", "pass");
                    v.results.push(("dnsbl", "pass".into()));
                }
            }
        }
        if config.ptr != CheckAction::Off {
            let result = match &reverse {
                Ok(names) if !names.is_empty() => "pass",
                Ok(_) => "fail",
                Err(_) => "temperror",
            };
            metrics.check("ptr", result);
            if result == "fail" {
                tracing::info!(peer = %ip, "client without forward-confirmed reverse DNS");
                if config.ptr == CheckAction::Reject {
                    metrics.refuse("smtp", "ptr");
                    // RFC 7372 §3.3: 5.7.25, reverse DNS validation failed.
                    return Err(Reply::new(
                        554,
                        "5.7.25",
                        format!("Client [{ip}] has no forward-confirmed reverse DNS"),
                    )
                    .closing());
                }
                v.junk = true;
            }
            v.results.push(("ptr", result.into()));
        }
        Ok(v)
    }

    /// Whether a forward-confirmed reverse name is on the allow list.
    fn allows_name(&self, name: &str) -> bool {
        self.allow_names.iter().any(|a| {
            if a.starts_with('.') {
                // "*.partner.example": any name below, not the domain itself.
                name.len() > a.len() && name.ends_with(a.as_str())
            } else {
                name == a
            }
        })
    }

    /// The HELO/EHLO check: `Some((result, reason))` when the name fails
    /// ("fail") or could not be checked ("temperror"), `None` when it passes.
    /// A name fails when it is neither a dotted domain nor an address
    /// literal, names us (our host name, or the address the client reached),
    /// or has no A, AAAA or MX record.
    pub(crate) async fn helo(
        &self,
        dns: &Dns,
        name: &str,
        hostname: &str,
        local: SocketAddr,
    ) -> Option<(&'static str, &'static str)> {
        let result = match helo_syntax(name) {
            HeloName::Invalid => Some(("fail", "Invalid name")),
            // An address literal: ours is a lie, another says where the
            // client is (RFC 5321 §4.1.4 forbids refusing a mismatch).
            HeloName::Literal(ip) if ip.to_canonical() == local.ip().to_canonical() => {
                Some(("fail", "That is my address"))
            }
            HeloName::Literal(_) => None,
            HeloName::Domain if name.eq_ignore_ascii_case(hostname) => {
                Some(("fail", "That is my name"))
            }
            HeloName::Domain => match resolves(dns, name).await {
                Ok(true) => None,
                Ok(false) => Some(("fail", "Host not found")),
                Err(_) => Some(("temperror", "")),
            },
        };
        postgate_metrics::metrics().check("helo", result.map_or("pass", |(r, _)| r));
        result
    }

    /// Whether `sender` has had `messages` accepted within the window (and
    /// must wait); counted as "mailbomb" "pass" or "limited".
    pub(crate) fn over_limit(&self, sender: Sender) -> bool {
        let Some(m) = &self.mailbomb else {
            return false;
        };
        let now = m.now();
        let windows = m.lock();
        let over = windows
            .map
            .get(&sender)
            .is_some_and(|w| w.len() >= m.messages && w.front().is_some_and(|&t| m.within(t, now)));
        postgate_metrics::metrics().check("mailbomb", if over { "limited" } else { "pass" });
        over
    }

    /// Counts one accepted message of `sender`.
    pub(crate) fn count(&self, sender: Sender) {
        let Some(m) = &self.mailbomb else {
            return;
        };
        let now = m.now();
        let mut windows = m.lock();
        if !windows.map.contains_key(&sender) && windows.map.len() >= MAX_WINDOWS {
            let instant = Instant::now();
            if windows
                .last_purge
                .is_none_or(|t| instant.duration_since(t) >= Duration::from_secs(1))
            {
                windows.last_purge = Some(instant);
                windows
                    .map
                    .retain(|_, w| w.back().is_some_and(|&t| m.within(t, now)));
                if windows.map.len() >= MAX_WINDOWS {
                    // Said at most once a second, with the purge.
                    tracing::warn!(
                        "mailbomb: {MAX_WINDOWS} senders counted at once; not counting more"
                    );
                }
            }
            if windows.map.len() >= MAX_WINDOWS {
                return;
            }
        }
        let w = windows.map.entry(sender).or_default();
        // The newest `messages` times are all the limit needs.
        if w.len() >= m.messages {
            w.pop_front();
        }
        w.push_back(now);
    }

    /// Whether message counting is on.
    pub(crate) fn mailbomb(&self) -> bool {
        self.mailbomb.is_some()
    }
}

impl Mailbomb {
    fn now(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Whether a message accepted at `t` is still inside the window at `now`.
    fn within(&self, t: u32, now: u32) -> bool {
        u128::from(now.wrapping_sub(t)) < self.window.as_millis()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The verdict for an allowed client.
fn allowed() -> Verdict {
    Verdict {
        exempt: true,
        results: vec![("allow", "pass".into())],
        ..Verdict::default()
    }
}

/// The first zone (in configured order) that lists the client; else
/// whether any lookup failed.
fn judge<'a>(zones: &'a [String], answers: &[Listing]) -> (Listing, Option<&'a str>) {
    if let Some(i) = answers.iter().position(|&l| l == Listing::Listed) {
        return (Listing::Listed, Some(&zones[i]));
    }
    if answers.contains(&Listing::TempError) {
        return (Listing::TempError, None);
    }
    (Listing::NotListed, None)
}

/// The client's forward-confirmed reverse names (RFC 8601 §3 "iprev"):
/// the PTR names whose addresses include the client's, in the order given.
/// Empty when there is none; `Err` when a lookup failed and none was
/// confirmed. Every name is tried (a host may have several, and the allow
/// list may name any of them).
async fn forward_confirmed(dns: &Dns, ip: IpAddr) -> Result<Vec<String>, String> {
    let names = dns.ptr(ip).await?;
    let mut confirmed = Vec::new();
    let mut failed = None;
    for name in names.iter().take(MAX_PTR_NAMES) {
        let found = match ip {
            IpAddr::V4(v4) => dns.ipv4(name).await.map(|a| a.contains(&v4)),
            IpAddr::V6(v6) => dns.ipv6(name).await.map(|a| a.contains(&v6)),
        };
        match found {
            Ok(true) => confirmed.push(name.trim_end_matches('.').to_ascii_lowercase()),
            Ok(false) => {}
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) if confirmed.is_empty() => Err(e),
        _ => Ok(confirmed),
    }
}

/// The name asked of a DNS list for `ip`: RFC 5782 §2.1, the IPv4 octets
/// reversed; §2.4, the IPv6 address as 32 reversed nibbles; under `zone`.
fn list_query(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                out.push(hex(byte & 0x0F));
                out.push('.');
                out.push(hex(byte >> 4));
                out.push('.');
            }
            out.push_str(zone);
            out.push('.');
            out
        }
    }
}

fn hex(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// Asks one DNS list about `ip`. Listed when an A record in 127.0.0.0/8
/// comes back (RFC 5782 §2.1), except 127.255.255.0/24, which list
/// operators return for errors (refused queries, over quota): a failure.
async fn listed(dns: &Dns, zone: &str, ip: IpAddr) -> Listing {
    match dns.ipv4(&list_query(ip, zone)).await {
        Ok(addrs) => answer(zone, &addrs),
        Err(e) => {
            tracing::debug!(zone, error = %e, "DNS list lookup failed");
            Listing::TempError
        }
    }
}

/// Judges a DNS list's A records (RFC 5782 §2.1, §2.3).
fn answer(zone: &str, addrs: &[Ipv4Addr]) -> Listing {
    let mut error = false;
    for a in addrs {
        let o = a.octets();
        if o[0] == 127 && !(o[1] == 255 && o[2] == 255) {
            return Listing::Listed;
        }
        error = true;
    }
    if error {
        tracing::warn!(
            zone,
            ?addrs,
            "DNS list answered with an error code; not used"
        );
        return Listing::TempError;
    }
    Listing::NotListed
}

/// What a HELO/EHLO argument is.
#[derive(Debug, PartialEq, Eq)]
enum HeloName {
    /// A dotted domain (RFC 5321 §4.1.2 Domain, with at least one dot).
    Domain,
    /// An address literal (RFC 5321 §4.1.3).
    Literal(IpAddr),
    /// Neither.
    Invalid,
}

fn helo_syntax(name: &str) -> HeloName {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        // RFC 5321 §4.1.3: IPv4-address-literal, or "IPv6:" IPv6-addr.
        return match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
                .parse::<Ipv6Addr>()
                .map_or(HeloName::Invalid, |a| HeloName::Literal(IpAddr::V6(a))),
            _ => inner
                .parse::<Ipv4Addr>()
                .map_or(HeloName::Invalid, |a| HeloName::Literal(IpAddr::V4(a))),
        };
    }
    // An address without its brackets is no domain (RFC 5321 §4.1.3).
    if name.parse::<IpAddr>().is_ok() || name.len() > 253 {
        return HeloName::Invalid;
    }
    // RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str]; a label starts and
    // ends with a letter or digit, hyphens inside; 63 octets at most
    // (RFC 1035 §2.3.4).
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    if name.contains('.') && name.split('.').all(label_ok) {
        HeloName::Domain
    } else {
        HeloName::Invalid
    }
}

/// Whether `name` has an A, AAAA or MX record; `Err` when a lookup failed
/// and none was found.
async fn resolves(dns: &Dns, name: &str) -> Result<bool, String> {
    let mut failed = None;
    match dns.ipv4(name).await {
        Ok(a) if !a.is_empty() => return Ok(true),
        Ok(_) => {}
        Err(e) => failed = Some(e),
    }
    match dns.ipv6(name).await {
        Ok(a) if !a.is_empty() => return Ok(true),
        Ok(_) => {}
        Err(e) => failed = Some(e),
    }
    match dns.mx(name).await {
        Ok(mx) if !mx.is_empty() => return Ok(true),
        Ok(_) => {}
        Err(e) => failed = Some(e),
    }
    failed.map_or(Ok(false), Err)
}

/// Runs futures concurrently and returns their outputs in order (a few
/// DNS lookups: polling them all on each wake is cheap).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (slot, result) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_names() {
        // RFC 5782 §2.1 and §2.4 examples.
        assert_eq!(
            list_query("192.0.2.99".parse().unwrap(), "bad.example.com"),
            "99.2.0.192.bad.example.com."
        );
        assert_eq!(
            list_query(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
    }

    #[test]
    fn list_answers() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(answer("z", &[a("127.0.0.2")]), Listing::Listed);
        assert_eq!(answer("z", &[a("127.0.0.10")]), Listing::Listed);
        assert_eq!(answer("z", &[]), Listing::NotListed);
        assert_eq!(answer("z", &[a("127.255.255.254")]), Listing::TempError);
        assert_eq!(answer("z", &[a("192.0.2.1")]), Listing::TempError);
        let zones = ["a".to_string(), "b".to_string()];
        assert_eq!(
            judge(&zones, &[Listing::TempError, Listing::Listed]),
            (Listing::Listed, Some("b"))
        );
        assert_eq!(
            judge(&zones, &[Listing::Listed, Listing::Listed]),
            (Listing::Listed, Some("a"))
        );
        assert_eq!(
            judge(&zones, &[Listing::NotListed, Listing::TempError]),
            (Listing::TempError, None)
        );
    }

    #[test]
    fn helo_names() {
        use HeloName::*;
        assert_eq!(helo_syntax("mail.example.com"), Domain);
        assert_eq!(helo_syntax("a-b.c0"), Domain);
        assert_eq!(
            helo_syntax("[192.0.2.1]"),
            Literal("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            helo_syntax("[IPv6:2001:db8::1]"),
            Literal("2001:db8::1".parse().unwrap())
        );
        for bad in [
            "localhost",
            "foo_bar.example",
            "-a.example",
            "a-.example",
            "a..example",
            "example.com.",
            "192.0.2.1",
            "[192.0.2.300]",
            "[2001:db8::1]",
            "[tag:x]",
            "",
        ] {
            assert_eq!(helo_syntax(bad), Invalid, "{bad}");
        }
    }

    #[test]
    fn allow_names_and_networks() {
        let c = Checks::new(&SmtpChecks {
            allow: vec![
                "198.51.100.0/24".into(),
                "mx.partner.example".into(),
                "*.friends.example".into(),
            ],
            ..SmtpChecks::default()
        });
        assert!(!c.active(), "allow alone checks nothing");
        assert_eq!(c.allow_nets.len(), 1);
        assert!(c.allows_name("mx.partner.example"));
        assert!(!c.allows_name("mx2.partner.example"));
        assert!(c.allows_name("a.b.friends.example"));
        assert!(!c.allows_name("friends.example"));
        assert!(!c.allows_name("notfriends.example"));
    }

    #[test]
    fn mailbomb_window_slides() {
        let c = Checks::new(&SmtpChecks {
            mailbomb: Some(postgate_runtime::config::Mailbomb {
                messages: 2,
                seconds: 1,
            }),
            ..SmtpChecks::default()
        });
        let s = Sender::Ip("192.0.2.1".parse().unwrap());
        let other = Sender::User(7);
        assert!(!c.over_limit(s));
        c.count(s);
        assert!(!c.over_limit(s));
        c.count(s);
        assert!(c.over_limit(s));
        assert!(!c.over_limit(other), "windows are per sender");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(!c.over_limit(s), "the window has passed");
        c.count(s);
        assert!(!c.over_limit(s));
        assert_eq!(c.mailbomb.as_ref().unwrap().lock().map[&s].len(), 2);
    }
}
