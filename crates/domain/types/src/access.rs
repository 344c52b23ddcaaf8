//! Access control's vocabulary: the services a user may be allowed or denied,
//! classes of service and their settings, assignments, and blocked hosts.
//!
//! A class of service (GroupWise's model) is a named set of [`ClassSettings`]
//! assigned to a user, a group, a post office or a domain; a user's effective
//! class is the first found in that order, then the built-in `default` class,
//! which allows everything. Evaluation lives in `postgate-store::access`.
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An IP network, written "192.0.2.0/24", "2001:db8::/32" or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The address.
    pub addr: std::net::IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Network, String> {
        let bad = || format!("\"{s}\" is not a network (write \"192.0.2.0/24\" or an address)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }
}

impl<'de> serde::Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod network_tests {
    use super::Network;

    #[test]
    fn networks() {
        let n: Network = "127.0.0.0/8".parse().unwrap();
        assert!(n.contains("127.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// What a user may be allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// IMAP4 login.
    Imap,
    /// POP3 login.
    Pop3,
    /// LDAP bind (and what a search may read).
    Ldap,
    /// The HTTPS client API.
    Api,
    /// The web console: who may sign in is who was made an administrator
    /// (`postgate admin grant`), not the class of service.
    Console,
    /// SMTP submission: logging in is always allowed; what may be sent to
    /// the Internet is [`Service::SmtpSend`].
    Submission,
    /// Sending to the Internet.
    SmtpSend,
    /// Receiving from the Internet.
    SmtpReceive,
}

impl Service {
    /// The name in logs, the CLI and class settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Ldap => "ldap",
            Service::Api => "api",
            Service::Console => "console",
            Service::Submission => "submission",
            Service::SmtpSend => "smtp.send",
            Service::SmtpReceive => "smtp.receive",
        }
    }

    /// Parses a name given by [`Service::as_str`].
    pub fn parse(s: &str) -> Option<Service> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "imap" => Service::Imap,
            "pop3" => Service::Pop3,
            "ldap" => Service::Ldap,
            "api" => Service::Api,
            "console" => Service::Console,
            "submission" => Service::Submission,
            "smtp.send" => Service::SmtpSend,
            "smtp.receive" => Service::SmtpReceive,
            _ => return None,
        })
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permit {
    /// Allowed.
    #[default]
    Allow,
    /// Denied.
    Deny,
}

/// What POP3 DELE does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PopDelete {
    /// The message moves to Trash (GroupWise's way: recoverable).
    Trash,
    /// The message is expunged (RFC 1939's way).
    Purge,
    /// The message stays where it is.
    Keep,
}

/// A permission with exceptions: peers (domains, hosts, `*.domain`, IPs,
/// CIDRs) for which the opposite holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rule {
    /// The rule.
    #[serde(default)]
    pub permit: Permit,
    /// Where the opposite holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

impl Rule {
    /// Whether the rule allows a peer named `domain` (or host) at `ip`.
    pub fn allows(&self, domain: Option<&str>, ip: Option<IpAddr>) -> bool {
        let excepted = self
            .except
            .iter()
            .any(|p| Pattern::parse(p).is_some_and(|p| p.matches(ip, domain)));
        (self.permit == Permit::Allow) != excepted
    }
}

/// The settings of a class of service. Every setting's default allows (the
/// built-in `default` class is the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassSettings {
    /// IMAP4 login.
    pub imap: Permit,
    /// POP3 login.
    pub pop3: Permit,
    /// LDAP bind.
    pub ldap: Permit,
    /// The HTTPS client API.
    pub api: Permit,
    /// Sending to the Internet (the exceptions are destination domains,
    /// hosts or networks).
    pub smtp_send: Rule,
    /// Receiving from the Internet (the exceptions are sender domains, client
    /// hosts or networks).
    pub smtp_receive: Rule,
    /// Largest message sent to the Internet, bytes; 0: the server's limit.
    pub smtp_send_max_size: u64,
    /// Largest message received from the Internet, bytes; 0: the server's limit.
    pub smtp_receive_max_size: u64,
    /// What POP3 DELE does; `None`: the server's `[pop3] delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop3_delete: Option<PopDelete>,
    /// POP3 lists only messages newer than this many days; 0: all.
    pub pop3_max_days: u32,
    /// The LDAP attributes this class may read; empty: the server's
    /// `[ldap] attributes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ldap_attributes: Vec<String>,
}

/// The keys `class set` takes, in the order `class show` prints them.
pub const CLASS_KEYS: &[&str] = &[
    "imap",
    "pop3",
    "ldap",
    "api",
    "smtp.send",
    "smtp.send.except",
    "smtp.send.max_size",
    "smtp.receive",
    "smtp.receive.except",
    "smtp.receive.max_size",
    "pop3.delete",
    "pop3.max_days",
    "ldap.attributes",
];

fn permit(v: &str) -> Result<Permit, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "allow" => Ok(Permit::Allow),
        "deny" => Ok(Permit::Deny),
        _ => Err(format!("{v:?}: give allow or deny")),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl ClassSettings {
    /// Whether the class lets its users log in to `service`.
    pub fn allows(&self, service: Service) -> bool {
        match service {
            Service::Imap => self.imap == Permit::Allow,
            Service::Pop3 => self.pop3 == Permit::Allow,
            Service::Ldap => self.ldap == Permit::Allow,
            Service::Api => self.api == Permit::Allow,
            Service::Console => true,
            // Logging in to submit is always allowed: local mail stays
            // possible; what may go out is asked per recipient.
            Service::Submission => true,
            Service::SmtpSend => self.smtp_send.permit == Permit::Allow,
            Service::SmtpReceive => self.smtp_receive.permit == Permit::Allow,
        }
    }

    /// Each setting as `(key, value)`, in [`CLASS_KEYS`] order, the value
    /// written the way [`ClassSettings::set`] reads it (`-` for an empty
    /// list): what the CLI's `class show` and the console print.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let permit = |p: Permit| match p {
            Permit::Allow => "allow".to_string(),
            Permit::Deny => "deny".to_string(),
        };
        let list = |l: &[String]| {
            if l.is_empty() {
                "-".to_string()
            } else {
                l.join(",")
            }
        };
        CLASS_KEYS
            .iter()
            .map(|k| {
                let value = match *k {
                    "imap" => permit(self.imap),
                    "pop3" => permit(self.pop3),
                    "ldap" => permit(self.ldap),
                    "api" => permit(self.api),
                    "smtp.send" => permit(self.smtp_send.permit),
                    "smtp.receive" => permit(self.smtp_receive.permit),
                    "smtp.send.except" => list(&self.smtp_send.except),
                    "smtp.receive.except" => list(&self.smtp_receive.except),
                    "smtp.send.max_size" => self.smtp_send_max_size.to_string(),
                    "smtp.receive.max_size" => self.smtp_receive_max_size.to_string(),
                    "pop3.delete" => match self.pop3_delete {
                        None => "server",
                        Some(PopDelete::Trash) => "trash",
                        Some(PopDelete::Purge) => "purge",
                        Some(PopDelete::Keep) => "keep",
                    }
                    .to_string(),
                    "pop3.max_days" => self.pop3_max_days.to_string(),
                    "ldap.attributes" => list(&self.ldap_attributes),
                    _ => String::new(),
                };
                (*k, value)
            })
            .collect()
    }

    /// Sets one key (see [`CLASS_KEYS`]); lists are comma-separated.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let number = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{v:?}: give a whole number"))
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "imap" => self.imap = permit(value)?,
            "pop3" => self.pop3 = permit(value)?,
            "ldap" => self.ldap = permit(value)?,
            "api" => self.api = permit(value)?,
            "smtp.send" => self.smtp_send.permit = permit(value)?,
            "smtp.receive" => self.smtp_receive.permit = permit(value)?,
            k @ ("smtp.send.except" | "smtp.receive.except") => {
                let l = list(value);
                if let Some(bad) = l.iter().find(|p| Pattern::parse(p).is_none()) {
                    return Err(format!(
                        "{bad:?} is not a domain, host, *.domain, address or network"
                    ));
                }
                if k == "smtp.send.except" {
                    self.smtp_send.except = l;
                } else {
                    self.smtp_receive.except = l;
                }
            }
            "smtp.send.max_size" => self.smtp_send_max_size = number(value)?,
            "smtp.receive.max_size" => self.smtp_receive_max_size = number(value)?,
            "pop3.delete" => {
                self.pop3_delete = match value.trim().to_ascii_lowercase().as_str() {
                    "trash" => Some(PopDelete::Trash),
                    "purge" => Some(PopDelete::Purge),
                    "keep" => Some(PopDelete::Keep),
                    "server" => None,
                    _ => return Err(format!("{value:?}: give trash, purge, keep or server")),
                }
            }
            "pop3.max_days" => {
                self.pop3_max_days = u32::try_from(number(value)?)
                    .map_err(|_| format!("{value:?}: too many days"))?
            }
            "ldap.attributes" => self.ldap_attributes = list(value),
            other => {
                return Err(format!(
                    "no setting {other:?} (the settings: {})",
                    CLASS_KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// What a class is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Assignee {
    /// A user, by address.
    User(String),
    /// A group, by address: its members (directly or through nested groups).
    Group(String),
    /// A post office, by name.
    PostOffice(String),
    /// A domain.
    Domain(String),
}

impl Assignee {
    /// "user", "group", "post_office" or "domain".
    pub fn kind(&self) -> &'static str {
        match self {
            Assignee::User(_) => "user",
            Assignee::Group(_) => "group",
            Assignee::PostOffice(_) => "post_office",
            Assignee::Domain(_) => "domain",
        }
    }

    /// The name (case-folded).
    pub fn name(&self) -> &str {
        match self {
            Assignee::User(n)
            | Assignee::Group(n)
            | Assignee::PostOffice(n)
            | Assignee::Domain(n) => n,
        }
    }

    /// From a kind and a name, as stored.
    pub fn from_parts(kind: &str, name: &str) -> Option<Assignee> {
        let name = name.trim().to_ascii_lowercase();
        Some(match kind {
            "user" => Assignee::User(name),
            "group" => Assignee::Group(name),
            "post_office" => Assignee::PostOffice(name),
            "domain" => Assignee::Domain(name),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind().replace('_', " "), self.name())
    }
}

/// A class of service as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its settings.
    pub settings: ClassSettings,
    /// Where it is assigned.
    pub assigned: Vec<Assignee>,
}

/// Which way a block applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Clients and senders reaching the post office.
    In,
    /// Destinations the post office sends to.
    Out,
    /// Both.
    Both,
}

impl Direction {
    /// "in", "out" or "both".
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }

    /// Parses [`Direction::as_str`].
    pub fn parse(s: &str) -> Option<Direction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    /// Whether a block in this direction applies to traffic going `way`.
    pub fn covers(self, way: Direction) -> bool {
        self == Direction::Both || self == way
    }
}

/// A blocked host, domain, address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// As the operator wrote it (case-folded).
    pub pattern: String,
    /// Which way.
    pub direction: Direction,
    /// Why.
    pub note: String,
}

/// A peer pattern: an address or network, a name, or every name under a
/// domain (`*.example.com`, which also matches `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// An address or network.
    Net(Network),
    /// A host or domain name, exactly.
    Name(String),
    /// A domain and every name under it.
    Suffix(String),
}

impl Pattern {
    /// Parses a pattern; `None` if it is none of the forms.
    pub fn parse(s: &str) -> Option<Pattern> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if s.is_empty() {
            return None;
        }
        if let Ok(n) = s.parse::<Network>() {
            return Some(Pattern::Net(n));
        }
        let (suffix, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, s.clone()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return None;
        }
        Some(if suffix {
            Pattern::Suffix(name)
        } else {
            Pattern::Name(name)
        })
    }

    /// Whether a peer at `ip` named `name` (a host or a mail domain) matches.
    pub fn matches(&self, ip: Option<IpAddr>, name: Option<&str>) -> bool {
        match self {
            Pattern::Net(n) => ip.is_some_and(|ip| n.contains(ip)),
            Pattern::Name(want) => {
                name.is_some_and(|n| n.trim_end_matches('.').eq_ignore_ascii_case(want))
            }
            Pattern::Suffix(dom) => name.is_some_and(|n| {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                n == *dom
                    || (n.len() > dom.len()
                        && n.ends_with(dom.as_str())
                        && n.as_bytes()[n.len() - dom.len() - 1] == b'.')
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(
            Pattern::parse("127.0.0.2")
                .unwrap()
                .matches(ip("127.0.0.2"), None)
        );
        assert!(
            !Pattern::parse("127.0.0.2")
                .unwrap()
                .matches(ip("127.0.0.1"), None)
        );
        assert!(
            Pattern::parse("10.0.0.0/8")
                .unwrap()
                .matches(ip("10.9.9.9"), None)
        );
        assert!(
            Pattern::parse("2001:db8::/32")
                .unwrap()
                .matches(ip("2001:db8::5"), None)
        );
        let s = Pattern::parse("*.Evil.test").unwrap();
        assert!(s.matches(None, Some("mx.evil.test")));
        assert!(s.matches(None, Some("evil.test")));
        assert!(!s.matches(None, Some("notevil.test")));
        assert!(
            Pattern::parse("evil.test")
                .unwrap()
                .matches(None, Some("EVIL.test."))
        );
        assert!(Pattern::parse("a b").is_none());
        assert!(Pattern::parse("").is_none());
    }

    #[test]
    fn classes() {
        let mut c = ClassSettings::default();
        assert!(c.allows(Service::Imap));
        c.set("imap", "deny").unwrap();
        assert!(!c.allows(Service::Imap));
        c.set("smtp.receive", "deny").unwrap();
        c.set("smtp.receive.except", "partner.test, 192.0.2.0/24")
            .unwrap();
        assert!(c.smtp_receive.allows(Some("partner.test"), None));
        assert!(
            c.smtp_receive
                .allows(None, Some("192.0.2.9".parse().unwrap()))
        );
        assert!(!c.smtp_receive.allows(Some("other.test"), None));
        assert!(c.set("nope", "1").is_err());
        assert!(c.set("pop3.delete", "shred").is_err());
        assert!(c.set("smtp.send.except", "not a host").is_err());
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ClassSettings>(&json).unwrap(), c);
        assert_eq!(
            serde_json::from_str::<ClassSettings>("{}").unwrap(),
            ClassSettings::default()
        );
    }
}
