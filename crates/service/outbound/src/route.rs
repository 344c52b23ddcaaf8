//! Where mail for a domain goes: the route table, the smart host, or the
//! domain's MX hosts (RFC 5321 §5.1, RFC 7505 null MX).
use crate::Settings;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use std::net::IpAddr;

/// A host to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Its name (or address, for literals), as in EHLO greetings and DSNs.
    pub host: String,
    /// Its address when given literally ("[192.0.2.1]").
    pub literal: Option<IpAddr>,
    /// The port.
    pub port: u16,
    /// Implicit TLS (RFC 8314 submissions port 465) rather than STARTTLS.
    pub implicit_tls: bool,
    /// A name from configuration (resolved like any local program does,
    /// /etc/hosts included) rather than from DNS.
    pub configured: bool,
}

impl Hop {
    /// A configured next hop: a host name or an address.
    pub fn named(host: &str, port: u16) -> Hop {
        Hop {
            host: host.to_string(),
            literal: host.parse().ok(),
            port,
            implicit_tls: port == 465,
            configured: true,
        }
    }
}

/// The hosts for a domain, best first.
#[derive(Debug, Clone)]
pub struct Hops {
    /// In order of preference.
    pub hops: Vec<Hop>,
    /// They are the smart host (its TLS policy and credentials apply).
    pub relay: bool,
    /// They came from the domain's MX records (or its implicit MX), not
    /// from configuration or an address literal: MTA-STS applies.
    pub mx: bool,
}

/// Why there is nowhere to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Try later (DNS server failure, timeout).
    Temporary(String),
    /// Never (no such domain, null MX).
    Permanent {
        /// Enhanced status code (RFC 3463).
        status: &'static str,
        /// What happened.
        text: String,
    },
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Temporary(t) => f.write_str(t),
            RouteError::Permanent { status, text } => write!(f, "{status} {text}"),
        }
    }
}

/// Finds next hops.
#[derive(Debug)]
pub struct Router {
    resolver: TokioResolver,
}

impl Router {
    /// A router asking `dns`: the server's one resolver, or the one
    /// `[outbound] resolver` makes (see [`crate::Agent::new`]).
    pub fn new(dns: &postgate_dns::Dns) -> Router {
        Router {
            resolver: dns.resolver().clone(),
        }
    }

    /// The next hops for `domain`: a route, else the smart host, else MX.
    pub async fn route(&self, domain: &str, settings: &Settings) -> Result<Hops, RouteError> {
        if let Some(hop) = route_for(&settings.routes, domain) {
            return Ok(Hops {
                hops: vec![hop.clone()],
                relay: false,
                mx: false,
            });
        }
        if let Some(relay) = &settings.relay {
            return Ok(Hops {
                hops: vec![relay.clone()],
                relay: true,
                mx: false,
            });
        }
        // A domain literal, "[192.0.2.1]" (RFC 5321 §4.1.3): no lookup.
        if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip = inner.strip_prefix("IPv6:").unwrap_or(inner);
            return match ip.parse::<IpAddr>() {
                Ok(ip) => Ok(Hops {
                    hops: vec![Hop {
                        host: format!("[{inner}]"),
                        literal: Some(ip),
                        port: settings.port,
                        implicit_tls: false,
                        configured: false,
                    }],
                    relay: false,
                    mx: false,
                }),
                Err(_) => Err(RouteError::Permanent {
                    status: "5.1.2",
                    text: format!("bad address literal {domain}"),
                }),
            };
        }
        let hosts = self.mx(domain).await?;
        Ok(Hops {
            hops: hosts
                .into_iter()
                .map(|host| Hop {
                    literal: None,
                    port: settings.port,
                    implicit_tls: false,
                    configured: false,
                    host,
                })
                .collect(),
            relay: false,
            mx: true,
        })
    }

    /// The MX hosts of a domain in order (RFC 5321 §5.1).
    async fn mx(&self, domain: &str) -> Result<Vec<String>, RouteError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut mx: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(m) => Some((m.preference, m.exchange.to_utf8())),
                        _ => None,
                    })
                    .collect();
                // RFC 7505 §3: a single MX of "." says the domain takes no mail.
                if mx.iter().any(|(_, h)| h == "." || h.is_empty()) {
                    return Err(RouteError::Permanent {
                        status: "5.1.10",
                        text: format!("{domain} accepts no mail (null MX, RFC 7505)"),
                    });
                }
                if mx.is_empty() {
                    return Ok(vec![domain.to_string()]);
                }
                // §5.1: lowest preference first; equal preferences in random
                // order, spreading the load.
                let salt = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                mx.sort_by_key(|(p, h)| (*p, spread(h, salt)));
                Ok(mx
                    .into_iter()
                    .map(|(_, h)| h.trim_end_matches('.').to_string())
                    .collect())
            }
            Err(e) if e.is_nx_domain() => Err(RouteError::Permanent {
                status: "5.1.2",
                text: format!("domain {domain} does not exist"),
            }),
            // §5.1: no MX records, the domain itself is the host (implicit MX).
            Err(e) if e.is_no_records_found() => Ok(vec![domain.to_string()]),
            Err(e) => Err(RouteError::Temporary(format!(
                "MX lookup for {domain} failed: {e}"
            ))),
        }
    }

    /// The addresses of a hop, in the resolver's order.
    pub async fn addresses(&self, hop: &Hop) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = hop.literal {
            return Ok(vec![ip]);
        }
        if hop.configured {
            // A configured name resolves the way the operator's tools do.
            let addrs = tokio::net::lookup_host((hop.host.as_str(), hop.port))
                .await
                .map_err(|e| e.to_string())?;
            let mut out: Vec<IpAddr> = Vec::new();
            for a in addrs {
                if !out.contains(&a.ip()) {
                    out.push(a.ip());
                }
            }
            return Ok(out);
        }
        let fqdn = format!("{}.", hop.host);
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_no_records_found() => Err("no address records".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The route table entry for a domain: exact, else the nearest ".parent".
fn route_for<'a>(routes: &'a [(String, Hop)], domain: &str) -> Option<&'a Hop> {
    if let Some((_, h)) = routes.iter().find(|(d, _)| d == domain) {
        return Some(h);
    }
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        let key = format!(".{parent}");
        if let Some((_, h)) = routes.iter().find(|(d, _)| *d == key) {
            return Some(h);
        }
        rest = parent;
    }
    None
}

/// A per-run pseudo-random order key.
fn spread(host: &str, salt: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    salt.hash(&mut h);
    host.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_matches_exact_then_parents() {
        let routes = vec![
            ("example.net".to_string(), Hop::named("10.0.0.5", 25)),
            (
                ".example.org".to_string(),
                Hop::named("relay.example.org", 2525),
            ),
        ];
        assert_eq!(route_for(&routes, "example.net").unwrap().port, 25);
        assert!(route_for(&routes, "a.example.net").is_none());
        assert_eq!(route_for(&routes, "mx.a.example.org").unwrap().port, 2525);
        assert!(route_for(&routes, "example.org").is_none());
        assert_eq!(
            Hop::named("10.0.0.5", 25).literal,
            Some([10, 0, 0, 5].into())
        );
        assert!(Hop::named("smtp.example.com", 465).implicit_tls);
    }
}
