//! What runs in this process, for the console's status page: each service's
//! listening addresses, worker pool and state (up, or failed when its
//! listener stopped unasked).
//!
//! `serve` fills the board as it binds listeners; the console reads it. The
//! numbers that change with traffic (connections, refusals) are the shared
//! counters', not kept here twice.
use crate::listener::Workers;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One listening socket of a service.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The bound address.
    pub addr: SocketAddr,
    /// What it is for ("smtp", "submission", "imaps", …).
    pub role: &'static str,
    /// "implicit TLS", "STARTTLS" or "udp".
    pub transport: &'static str,
}

/// One service as the board shows it.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    /// Its name ("smtp", "imap", …), as in the counters' labels.
    pub name: &'static str,
    /// Where it listens.
    pub endpoints: Vec<Endpoint>,
    /// Its worker pool (`None` for a service without one, e.g. SNMP).
    pub workers: Option<Workers>,
    /// Workers configured.
    pub threads: usize,
    /// Set when a listener of the service stopped before shutdown began.
    pub failed: bool,
}

/// The board: cheap to clone, shared by `serve` and the console.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<Vec<ServiceStatus>>>,
    started: Instant,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard::new()
    }
}

impl StatusBoard {
    /// An empty board; uptime counts from now.
    pub fn new() -> StatusBoard {
        StatusBoard {
            inner: Arc::default(),
            started: Instant::now(),
        }
    }

    /// How long the process has been serving.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Adds a service, or an endpoint to one already on the board.
    pub fn add(
        &self,
        name: &'static str,
        endpoint: Endpoint,
        workers: Option<Workers>,
        threads: usize,
    ) {
        let Ok(mut v) = self.inner.lock() else { return };
        match v.iter_mut().find(|s| s.name == name) {
            Some(s) => s.endpoints.push(endpoint),
            None => v.push(ServiceStatus {
                name,
                endpoints: vec![endpoint],
                workers,
                threads,
                failed: false,
            }),
        }
    }

    /// Marks a service failed.
    pub fn failed(&self, name: &str) {
        if let Ok(mut v) = self.inner.lock()
            && let Some(s) = v.iter_mut().find(|s| s.name == name)
        {
            s.failed = true;
        }
    }

    /// Every service, in the order they were started.
    pub fn services(&self) -> Vec<ServiceStatus> {
        self.inner.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_their_service_and_failure_sticks() {
        let b = StatusBoard::new();
        let e = |port, role| Endpoint {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            role,
            transport: "STARTTLS",
        };
        b.add("smtp", e(25, "smtp"), Some(Workers::new(4)), 4);
        b.add("smtp", e(587, "submission"), None, 4);
        b.add("imap", e(143, "imap"), Some(Workers::new(2)), 2);
        b.failed("imap");
        let s = b.services();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].endpoints.len(), 2);
        assert_eq!(s[0].workers.as_ref().map(|w| w.busy()), Some(0));
        assert!(!s[0].failed);
        assert!(s[1].failed);
    }
}
