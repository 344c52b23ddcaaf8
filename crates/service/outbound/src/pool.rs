//! Idle connections kept for a few seconds, so that mail arriving one message
//! at a time for the same host still shares connections (as Postfix's
//! connection cache does).
use crate::client::Session;
use postgate_runtime::config::TlsPolicy;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Idle sessions kept per host at most.
const PER_HOST: usize = 32;

type Key = (SocketAddr, TlsPolicy, Option<String>);

/// The idle sessions.
#[derive(Debug)]
pub(crate) struct Pool {
    keep: Duration,
    idle: Mutex<HashMap<Key, Vec<(Session, Instant)>>>,
}

impl Pool {
    pub(crate) fn new(keep: Duration) -> Pool {
        Pool {
            keep,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// An idle session to `addr` opened under the same policy and
    /// credentials, checked with RSET.
    pub(crate) async fn take(
        &self,
        addr: SocketAddr,
        tls: TlsPolicy,
        credentials: Option<&(String, String)>,
    ) -> Option<Session> {
        let key = (addr, tls, credentials.map(|c| c.0.clone()));
        loop {
            let candidate = {
                let mut idle = self.idle.lock().await;
                let list = idle.get_mut(&key)?;
                let c = list.pop();
                if list.is_empty() {
                    idle.remove(&key);
                }
                c
            };
            let (mut s, since) = candidate?;
            if since.elapsed() < self.keep && s.probe().await {
                return Some(s);
            }
            tokio::spawn(s.quit());
        }
    }

    /// Keeps a session that is still good.
    pub(crate) async fn put(&self, s: Session) {
        if s.is_broken() {
            return;
        }
        let key = (s.addr(), s.policy(), s.user().map(str::to_string));
        let mut idle = self.idle.lock().await;
        let list = idle.entry(key).or_default();
        if list.len() >= PER_HOST {
            drop(idle);
            s.quit().await;
            return;
        }
        list.push((s, Instant::now()));
    }

    /// Closes sessions idle too long.
    pub(crate) async fn sweep(&self) {
        let expired: Vec<Session> = {
            let mut idle = self.idle.lock().await;
            let mut out = Vec::new();
            idle.retain(|_, list| {
                let (old, young): (Vec<_>, Vec<_>) =
                    list.drain(..).partition(|(_, t)| t.elapsed() >= self.keep);
                out.extend(old.into_iter().map(|(s, _)| s));
                *list = young;
                !list.is_empty()
            });
            out
        };
        for s in expired {
            tokio::spawn(s.quit());
        }
    }

    /// Closes every idle session.
    pub(crate) async fn close_all(&self) {
        let all: Vec<Session> = {
            let mut idle = self.idle.lock().await;
            idle.drain()
                .flat_map(|(_, l)| l.into_iter().map(|(s, _)| s))
                .collect()
        };
        for s in all {
            s.quit().await;
        }
    }
}
