//! The latest log lines, kept in memory for the console's Log page and its
//! live view, whatever `[logging]` writes to files.
//!
//! [`LogRing::layer`] is a `tracing` layer installed beside the standard
//! error and file writers, under the same level filter; it keeps the last
//! [`CAPACITY`] events and hands each new one to whoever follows.
use crate::config::LOG_SERVICES;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Events kept.
pub const CAPACITY: usize = 2000;
/// Events a slow follower may fall behind before it skips ahead.
const FOLLOW_BACKLOG: usize = 512;
/// The longest text kept of one event.
const MAX_TEXT: usize = 4096;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its number since start, counting from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// "ERROR", "WARN", "INFO", "DEBUG" or "TRACE".
    pub level: &'static str,
    /// The service it belongs to ("smtp", "imap", …; "store", "delivery",
    /// "server" and the like for the rest).
    pub service: String,
    /// The message, then its fields as `key=value`.
    pub text: String,
}

impl LogLine {
    /// Whether the line is at `level` or more severe (`level` as in
    /// [`LogLine::level`], any case).
    pub fn at_least(&self, level: &str) -> bool {
        rank(self.level) <= rank(&level.to_ascii_uppercase())
    }
}

fn rank(level: &str) -> u8 {
    match level {
        "ERROR" => 0,
        "WARN" => 1,
        "INFO" => 2,
        "DEBUG" => 3,
        _ => 4,
    }
}

#[derive(Debug)]
struct Inner {
    lines: VecDeque<Arc<LogLine>>,
    seq: u64,
}

/// The ring and its followers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogRing {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<LogLine>>,
}

impl Default for LogRing {
    fn default() -> Self {
        LogRing::new()
    }
}

impl LogRing {
    /// An empty ring.
    pub fn new() -> LogRing {
        LogRing {
            inner: Arc::new(Mutex::new(Inner {
                lines: VecDeque::with_capacity(CAPACITY),
                seq: 0,
            })),
            tx: broadcast::channel(FOLLOW_BACKLOG).0,
        }
    }

    /// The ring shared by the process (the one [`LogRing::layer`] of the
    /// installed subscriber writes to).
    pub fn global() -> &'static LogRing {
        static RING: std::sync::OnceLock<LogRing> = std::sync::OnceLock::new();
        RING.get_or_init(LogRing::new)
    }

    /// The layer that feeds this ring.
    pub fn layer(&self) -> RingLayer {
        RingLayer { ring: self.clone() }
    }

    /// Adds a line.
    pub fn push(&self, level: &'static str, service: String, text: String) {
        let line = {
            let Ok(mut inner) = self.inner.lock() else {
                return;
            };
            inner.seq += 1;
            let line = Arc::new(LogLine {
                seq: inner.seq,
                time: chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
                level,
                service,
                text,
            });
            if inner.lines.len() == CAPACITY {
                inner.lines.pop_front();
            }
            inner.lines.push_back(line.clone());
            line
        };
        // Nobody following is not an error.
        let _ = self.tx.send(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<Arc<LogLine>> {
        self.inner
            .lock()
            .map(|i| i.lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every line from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.tx.subscribe()
    }
}

/// See [`LogRing::layer`].
#[derive(Debug)]
pub struct RingLayer {
    ring: LogRing,
}

/// The service of an event: its `service` field when it has one, else the
/// crate it came from.
fn service_of(target: &str, field: Option<&str>) -> String {
    if let Some(s) = field {
        return s.to_string();
    }
    let krate = target.split("::").next().unwrap_or(target);
    if let Some((name, _)) = LOG_SERVICES.iter().find(|(_, t)| *t == krate) {
        return name.to_string();
    }
    krate.strip_prefix("postgate_").unwrap_or(krate).to_string()
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    service: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "service" => self.service = Some(value.to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "service" => self.service = Some(format!("{value:?}").trim_matches('"').to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let mut text = f.message;
        text.push_str(&f.rest);
        if text.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let level = match *meta.level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARN",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        self.ring
            .push(level, service_of(meta.target(), f.service.as_deref()), text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_are_kept_in_order_with_service_and_fields() {
        let ring = LogRing::new();
        let mut follower = ring.follow();
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "postgate_smtp::session", peer = "127.0.0.1", "connected");
            tracing::warn!(service = "imap", "too many");
            tracing::error!(target: "postgate_store::embedded", "disk full");
        });
        let lines = ring.lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].service, "smtp");
        assert_eq!(lines[0].text, "connected peer=\"127.0.0.1\"");
        assert_eq!(lines[0].level, "INFO");
        assert_eq!(lines[1].service, "imap");
        assert_eq!(lines[2].service, "store");
        assert!(lines[2].at_least("warn") && !lines[0].at_least("warn"));
        assert_eq!(follower.try_recv().map(|l| l.seq).ok(), Some(1));
    }

    #[test]
    fn the_ring_keeps_only_the_latest() {
        let ring = LogRing::new();
        for i in 0..CAPACITY + 10 {
            ring.push("INFO", "smtp".into(), format!("line {i}"));
        }
        let lines = ring.lines();
        assert_eq!(lines.len(), CAPACITY);
        assert_eq!(lines[0].text, "line 10");
        assert_eq!(lines[CAPACITY - 1].seq, (CAPACITY + 10) as u64);
    }
}
