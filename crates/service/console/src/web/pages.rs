//! Status, statistics, log and configuration pages.
use super::chart::{Line, chart};
use super::{Admin, PageResult, Problem, WebState, age, enc, given, page, size, when};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use postgate_metrics::{RefusedLabel, ServiceLabel, metrics};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

pub(crate) fn routes(r: Router<WebState>) -> Router<WebState> {
    r.route("/console/", get(status))
        .route("/console/stats", get(stats))
        .route("/console/log", get(log))
        .route("/console/log/stream", get(log_stream))
        .route("/console/config", get(config))
}

/// Free space for the data directory's file system, in octets.
fn disk_free(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Below this much free space the status page warns.
const LOW_DISK: u64 = 1 << 30;

async fn status(State(web): State<WebState>, admin: Admin) -> PageResult {
    let s = &web.ctx.web;
    let store = web.ctx.delivery.store();
    let depth = store.queue_depth().await?;
    let waiting = depth.due + depth.deferred + depth.in_flight;
    let free = disk_free(&s.data_dir);
    let services = s.board.services();
    let m = metrics();
    let mut warnings = Vec::new();
    for svc in services.iter().filter(|svc| svc.failed) {
        warnings.push(format!(
            "Service {} has failed: its listener stopped. See the log.",
            svc.name
        ));
    }
    if s.self_signed {
        warnings.push(
            "TLS uses the self-signed certificate made at first start: clients will warn. Set [tls] cert and key."
                .to_string(),
        );
    }
    warnings.extend(s.config_warnings.iter().cloned());
    if s.queue_threshold > 0 && waiting > s.queue_threshold {
        warnings.push(format!(
            "The queue holds {waiting} recipients, over the threshold of {}.",
            s.queue_threshold
        ));
    }
    if let Some(f) = free.filter(|f| *f < LOW_DISK) {
        warnings.push(format!("Only {} free for the data directory.", size(f)));
    }
    let now = super::now();
    let body = html! {
        main id="status" {
            h1 { "Status" }
            @if !warnings.is_empty() {
                ul id="warnings" {
                    @for w in &warnings { li { (w) } }
                }
            }
            dl id="summary" {
                dt { "Version" } dd { (s.version) }
                dt { "Uptime" } dd { (age(s.board.uptime().as_secs() as i64)) }
                dt { "Node" } dd { (s.node) }
                dt { "Data store" } dd { (s.backend) }
                dt { "Queue depth" } dd {
                    a href="/console/queue" { (waiting) (if waiting == 1 { " recipient waiting" } else { " recipients waiting" }) }
                    @if depth.held > 0 { ", " (depth.held) " held" }
                    " (" (depth.due) " due, " (depth.deferred) " deferred, " (depth.in_flight) " being sent)"
                }
                dt { "Oldest entry" } dd {
                    @match depth.oldest {
                        Some(t) => { (age(now - t)) " old (" (when(t)) ")" }
                        None => { "none" }
                    }
                }
                dt { "Disk free" } dd {
                    @match free {
                        Some(f) => { (size(f)) " for " code { (s.data_dir.display().to_string()) } }
                        None => { "unknown" }
                    }
                }
            }
            h2 { "Services" }
            div class="scroll" {
                table id="services" {
                    thead { tr {
                        th scope="col" { "Service" }
                        th scope="col" { "Listening on" }
                        th scope="col" { "State" }
                        th scope="col" { "Workers" }
                        th scope="col" { "Busy" }
                        th scope="col" { "Connections now" }
                        th scope="col" { "Since start" }
                        th scope="col" { "Refused" }
                    } }
                    tbody {
                        @for svc in &services {
                            @let label = ServiceLabel { service: svc.name };
                            @let refused: u64 = ["busy", "per_ip", "blocked"].iter().map(|reason| m.refused.get_or_create(&RefusedLabel { service: svc.name, reason }).get()).sum();
                            tr data-service=(svc.name) {
                                th scope="row" { (svc.name) }
                                td { ul class="plain" {
                                    @for e in &svc.endpoints {
                                        li { code { (e.addr.to_string()) } " " (e.role) ", " (e.transport) }
                                    }
                                } }
                                td class=(if svc.failed { "state failed" } else { "state up" }) {
                                    (if svc.failed { "failed" } else { "up" })
                                }
                                td class="num" { @if svc.workers.is_some() { (svc.threads) } @else { "-" } }
                                td class="num" { @match &svc.workers { Some(w) => (w.busy()), None => "-" } }
                                td class="num" { (m.connections_current.get_or_create(&label).get()) }
                                td class="num" { (m.connections.get_or_create(&label).get()) }
                                td class="num" { (refused) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&admin, "Status", "status", body))
}

/// A statistics range: its length and the width of one point.
fn range(name: &str) -> (&'static str, i64, i64) {
    match name {
        "day" => ("day", 86_400, 900),
        "week" => ("week", 7 * 86_400, 7200),
        _ => ("hour", 3600, 60),
    }
}

async fn stats(
    State(web): State<WebState>,
    admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (name, span, bucket) = range(q.get("range").map(String::as_str).unwrap_or("hour"));
    let now = super::now();
    // Points end with the bucket in progress.
    let end = now / bucket * bucket;
    let start = end - span + bucket;
    let n = (span / bucket) as usize;
    let history = web
        .ctx
        .delivery
        .store()
        .stats_history(start, bucket)
        .await?;
    let mut series: HashMap<String, Vec<f64>> = HashMap::new();
    for p in history {
        let i = ((p.at - start) / bucket) as usize;
        if i < n {
            series.entry(p.name).or_insert_with(|| vec![0.0; n])[i] += p.value as f64;
        }
    }
    // This node's counts not yet sampled go into the latest point.
    for (k, v) in web.ctx.sampler.pending() {
        series.entry(k).or_insert_with(|| vec![0.0; n])[n - 1] += v as f64;
    }
    // Per minute: a point's total over its minutes.
    let per_minute = bucket as f64 / 60.0;
    let get = |k: &str| -> Vec<f64> {
        series
            .get(k)
            .map(|v| v.iter().map(|x| x / per_minute).collect())
            .unwrap_or_else(|| vec![0.0; n])
    };
    let fmt = if span > 86_400 { "%a %H:%M" } else { "%H:%M" };
    let labels: Vec<String> = (0..n)
        .map(|i| {
            chrono::DateTime::from_timestamp(start + i as i64 * bucket, 0)
                .map(|t| t.format(fmt).to_string())
                .unwrap_or_default()
        })
        .collect();
    let (blue, orange) = ("#0969da", "#bc4c00");
    let charts = html! {
        div id="charts" {
            (chart("chart-messages", "Messages", "per minute", &labels, &[
                Line { label: "in", colour: blue, points: get("messages_in") },
                Line { label: "out", colour: orange, points: get("messages_out") },
            ]))
            (chart("chart-bytes", "Bytes", "octets per minute", &labels, &[
                Line { label: "in", colour: blue, points: get("bytes_in") },
                Line { label: "out", colour: orange, points: get("bytes_out") },
            ]))
            (chart("chart-recipients", "Recipients", "per minute", &labels, &[
                Line { label: "in", colour: blue, points: get("recipients_in") },
                Line { label: "out", colour: orange, points: get("recipients_out") },
            ]))
            (chart("chart-bounces", "Bounces", "per minute", &labels, &[
                Line { label: "bounces", colour: "#cf222e", points: get("bounces") },
            ]))
            (chart("chart-logins", "Logins", "per minute", &labels, &[
                Line { label: "ok", colour: "#1a7f37", points: get("logins_ok") },
                Line { label: "failed", colour: "#cf222e", points: get("logins_failed") },
            ]))
            (chart("chart-errors", "Errors", "per minute", &labels, &[
                Line { label: "error answers", colour: "#8250df", points: get("errors") },
            ]))
            (chart("chart-connections", "Connections", "per minute", &labels, &[
                Line { label: "accepted", colour: blue, points: get("connections") },
            ]))
        }
    };
    let totals = crate::sampler::current();
    let body = html! {
        main id="stats" data-refresh="60" {
            h1 { "Statistics" }
            nav aria-label="Range" class="tabs" {
                ul {
                    @for r in ["hour", "day", "week"] {
                        li {
                            @if r == name {
                                a href=(format!("/console/stats?range={r}")) aria-current="page" { "Last " (r) }
                            } @else {
                                a href=(format!("/console/stats?range={r}")) { "Last " (r) }
                            }
                        }
                    }
                }
            }
            p { "Per minute, averaged over each point's " (age(bucket)) "; every node sharing the store counted. Updated every minute while the page is open." }
            (charts)
            h2 { "Since this node started" }
            table id="totals" {
                thead { tr { th scope="col" { "Counter" } th scope="col" { "Total" } } }
                tbody {
                    @for k in crate::sampler::SERIES {
                        tr data-name=(k) {
                            th scope="row" { (k.replace('_', " ")) }
                            td class="num" {
                                @let v = totals.get(k).copied().unwrap_or(0);
                                @if k.starts_with("bytes") { (size(v)) } @else { (v) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&admin, "Statistics", "stats", body))
}

/// The services the log page filters on.
const LOG_FILTER_SERVICES: &[&str] = &[
    "smtp", "imap", "pop3", "ldap", "outbound", "console", "snmp", "store", "delivery", "server",
];
/// Lines the log page shows at most.
const LOG_SHOWN: usize = 500;
/// Accounting records a search shows at most.
const ACCOUNTING_SHOWN: usize = 200;
/// Octets of accounting files a search reads at most.
const ACCOUNTING_SCAN: u64 = 256 << 20;

fn log_item(l: &postgate_runtime::logring::LogLine) -> Markup {
    html! {
        li data-level=(l.level) data-service=(l.service) {
            time datetime=(l.time) { (l.time) }
            " " span class=(format!("level {}", l.level.to_ascii_lowercase())) { (l.level) }
            " " span class="svc" { (l.service) }
            " " span class="text" { (l.text) }
        }
    }
}

fn keep_line(
    l: &postgate_runtime::logring::LogLine,
    level: Option<&str>,
    service: Option<&str>,
) -> bool {
    level.is_none_or(|lv| l.at_least(lv)) && service.is_none_or(|s| l.service == s)
}

async fn log(
    State(web): State<WebState>,
    admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let level = given(q.get("level"));
    let service = given(q.get("service"));
    let search = given(q.get("q"));
    let lines = web.ctx.web.log.lines();
    let kept: Vec<_> = lines
        .iter()
        .filter(|l| keep_line(l, level.as_deref(), service.as_deref()))
        .collect();
    let shown = &kept[kept.len().saturating_sub(LOG_SHOWN)..];
    let records = match (&search, &web.ctx.web.accounting_dir) {
        (Some(s), Some(dir)) => {
            let (dir, s) = (dir.clone(), s.clone());
            Some(
                tokio::task::spawn_blocking(move || search_accounting(&dir, &s))
                    .await
                    .map_err(Problem::internal)?,
            )
        }
        _ => None,
    };
    let stream = format!(
        "/console/log/stream?level={}&service={}",
        enc(level.as_deref().unwrap_or("")),
        enc(service.as_deref().unwrap_or(""))
    );
    let body = html! {
        main id="log" {
            h1 { "Log" }
            form id="log-filter" method="get" action="/console/log" class="inline" {
                label for="log-level" { "Level" }
                select id="log-level" name="level" {
                    @for (v, t) in [("", "any"), ("error", "error"), ("warn", "warning"), ("info", "info"), ("debug", "debug")] {
                        option value=(v) selected[level.as_deref().unwrap_or("") == v] { (t) }
                    }
                }
                label for="log-service" { "Service" }
                select id="log-service" name="service" {
                    option value="" selected[service.is_none()] { "any" }
                    @for s in LOG_FILTER_SERVICES {
                        option value=(s) selected[service.as_deref() == Some(*s)] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            p id="follow-state" aria-live="polite" { "Showing the latest " (shown.len()) " lines." }
            ol id="log-lines" data-stream=(stream) {
                @for l in shown { (log_item(l)) }
            }
            h2 id="accounting-heading" { "Accounting records" }
            @if web.ctx.web.accounting_dir.is_none() {
                p { "Accounting is off: set " code { "[logging] accounting = true" } "." }
            } @else {
                form id="accounting-search" method="get" action="/console/log#accounting-heading" class="inline" {
                    label for="acct-q" { "Address or message id" }
                    input id="acct-q" type="search" name="q" value=(search.as_deref().unwrap_or(""));
                    button type="submit" { "Search" }
                }
                @if let Some(records) = &records {
                    p { (records.len()) " records found"
                        @if records.len() >= ACCOUNTING_SHOWN { " (the latest " (ACCOUNTING_SHOWN) " shown)" } "." }
                    div class="scroll" {
                        table id="accounting" {
                            thead { tr {
                                th scope="col" { "Time" } th scope="col" { "Direction" } th scope="col" { "Sender" }
                                th scope="col" { "Recipients" } th scope="col" { "Message-ID" } th scope="col" { "Size" }
                                th scope="col" { "Peer" }
                            } }
                            tbody {
                                @for r in records {
                                    tr {
                                        td { (r["time"].as_str().unwrap_or("")) }
                                        td { (r["direction"].as_str().unwrap_or("")) }
                                        td { (r["sender"].as_str().unwrap_or("")) }
                                        td { ul class="plain" {
                                            @for rc in r["recipients"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                                li { (rc["address"].as_str().unwrap_or("")) " " (rc["outcome"].as_str().unwrap_or(""))
                                                    @if let Some(st) = rc["status"].as_str() { " " (st) } }
                                            }
                                        } }
                                        td { (r["message_id"].as_str().unwrap_or("")) }
                                        td class="num" { (size(r["size"].as_u64().unwrap_or(0))) }
                                        td { (r["peer"].as_str().unwrap_or("")) " " (r["peer_name"].as_str().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&admin, "Log", "log", body))
}

/// Accounting records (newest first) whose sender, recipients or message id
/// contain `q`, case-insensitively.
fn search_accounting(dir: &std::path::Path, q: &str) -> Vec<serde_json::Value> {
    let q = q.to_lowercase();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("accounting-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut read = 0u64;
    for f in files.iter().rev() {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        let mut day = Vec::new();
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            read += line.len() as u64 + 1;
            if read > ACCOUNTING_SCAN {
                break;
            }
            if !line.to_lowercase().contains(&q) {
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let hit = v["sender"]
                .as_str()
                .is_some_and(|s| s.to_lowercase().contains(&q))
                || v["message_id"]
                    .as_str()
                    .is_some_and(|s| s.to_lowercase().contains(&q))
                || v["recipients"].as_array().is_some_and(|rs| {
                    rs.iter().any(|r| {
                        r["address"]
                            .as_str()
                            .is_some_and(|a| a.to_lowercase().contains(&q))
                    })
                });
            if hit {
                day.push(v);
            }
        }
        // Newest first.
        out.extend(day.into_iter().rev());
        if out.len() >= ACCOUNTING_SHOWN || read > ACCOUNTING_SCAN {
            break;
        }
    }
    out.truncate(ACCOUNTING_SHOWN);
    out
}

/// `GET /console/log/stream`: each new log line (filtered like the page) as
/// a Server-Sent Event whose data is `{"time","level","service","text"}`.
async fn log_stream(
    State(web): State<WebState>,
    _admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let level = given(q.get("level"));
    let service = given(q.get("service"));
    let rx = web.ctx.web.log.follow();
    let shutdown = web.ctx.shutdown.clone();
    let stream = futures_util::stream::unfold((rx, shutdown), move |(mut rx, mut shutdown)| {
        let (level, service) = (level.clone(), service.clone());
        async move {
            loop {
                let line = tokio::select! {
                    _ = shutdown.wait() => return None,
                    r = rx.recv() => r,
                };
                match line {
                    Ok(l) => {
                        if !keep_line(&l, level.as_deref(), service.as_deref()) {
                            continue;
                        }
                        let data = serde_json::json!({
                            "time": l.time, "level": l.level, "service": l.service, "text": l.text,
                        });
                        let ev = Event::default().data(data.to_string());
                        return Some((Ok::<_, std::convert::Infallible>(ev), (rx, shutdown)));
                    }
                    // Fell behind: go on from the newest.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn config(State(web): State<WebState>, admin: Admin) -> PageResult {
    let s = &web.ctx.web;
    let body = html! {
        main id="config" {
            h1 { "Configuration" }
            p id="config-source" {
                @match &s.config_source {
                    Some(p) => { "Read from " code { (p.display().to_string()) } "; defaults fill what it leaves out. Secrets are shown as ********." }
                    None => { "Built-in defaults (no configuration file). Secrets are shown as ********." }
                }
            }
            pre id="config-text" { code { (s.config_text) } }
        }
    };
    Ok(page(&admin, "Configuration", "config", body))
}
