//! The web console: server-rendered pages under `/console/` for post office
//! users the operator made administrators (`postgate admin grant`).
//!
//! Sign-in goes through the login front door (`Authenticator::login`, with
//! its throttling per client address and account); a session is a random
//! token in a cookie that is `Secure`, `HttpOnly`, `SameSite=Strict` and
//! expires (RFC 6265 §4.1.2). Every form carries the session's CSRF token,
//! checked before anything is done; the login form carries one bound to a
//! pre-login cookie (double submit). Pages run no inline script: the
//! Content-Security-Policy allows scripts and styles from this origin only.
//! Every administrative action is logged with who did it (target
//! `postgate_console::audit`).
mod access;
mod chart;
mod directory;
mod pages;
mod queue;

use crate::Context;
use axum::Router;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use maud::{DOCTYPE, Markup, html};
use postgate_store::auth::{Attempt, Refusal};
use postgate_types::{EmailAddress, Secret, Service, UserId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session lasts from sign-in.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; past it the oldest are dropped.
const MAX_SESSIONS: usize = 10_000;
/// The session cookie.
const SESSION_COOKIE: &str = "pg_session";
/// The login form's CSRF cookie.
const PRELOGIN_COOKIE: &str = "pg_prelogin";
/// The Content-Security-Policy of every page: nothing inline, nothing from
/// elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console shows besides the store: the process, its listeners,
/// its log and its configuration.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// The services this process serves.
    pub board: postgate_runtime::status::StatusBoard,
    /// The latest log lines.
    pub log: postgate_runtime::logring::LogRing,
    /// Postgate's version.
    pub version: &'static str,
    /// This node's name.
    pub node: String,
    /// "embedded" or "postgres".
    pub backend: &'static str,
    /// The data directory (its disk's free space is shown).
    pub data_dir: PathBuf,
    /// Whether TLS uses the self-signed certificate made at first start.
    pub self_signed: bool,
    /// The queue depth past which the status page warns (0: never).
    pub queue_threshold: u64,
    /// Warnings about the configuration itself, shown on the status page
    /// (e.g. SNMP answering to the community "public").
    pub config_warnings: Vec<String>,
    /// The effective configuration, secrets masked.
    pub config_text: String,
    /// The file it was read from.
    pub config_source: Option<PathBuf>,
    /// Where accounting records are written, when they are.
    pub accounting_dir: Option<PathBuf>,
}

/// A signed-in administrator's session.
#[derive(Debug, Clone)]
struct Session {
    admin: EmailAddress,
    user: UserId,
    csrf: String,
    expires: Instant,
    /// A message for the next page shown ("Entry 7 removed"), and whether
    /// it tells of a failure.
    flash: Option<(bool, String)>,
}

/// The console's state: the shared context and the sessions of this node.
#[derive(Debug)]
pub(crate) struct Web {
    pub(crate) ctx: Arc<Context>,
    sessions: Mutex<HashMap<String, Session>>,
    rng: ring::rand::SystemRandom,
}

pub(crate) type WebState = Arc<Web>;

/// A random token: 32 bytes, base64url.
fn token(rng: &ring::rand::SystemRandom) -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    // The system's generator does not fail on a running system.
    let _ = rng.fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Equal, in the same time whatever the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The console's routes, under `/console/`.
pub(crate) fn router(ctx: Arc<Context>) -> Router {
    let web = Arc::new(Web {
        ctx,
        sessions: Mutex::new(HashMap::new()),
        rng: ring::rand::SystemRandom::new(),
    });
    let r = Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js));
    let r = pages::routes(r);
    let r = queue::routes(r);
    let r = directory::routes(r);
    let r = access::routes(r);
    r.layer(axum::middleware::from_fn(security_headers))
        .with_state(web)
}

/// The headers every console answer carries.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", include_str!("console.css"))
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", include_str!("console.js"))
}

fn static_file(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    r
}

/// The client's address, as the listener saw it.
fn peer_ip(headers: &HeaderMap) -> IpAddr {
    headers
        .get(crate::api::PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// A signed-in administrator: what every page but the login page needs.
/// Without a valid session the request is sent to the login page.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) address: EmailAddress,
    token: String,
    csrf: String,
    flash: Option<(bool, String)>,
}

impl FromRequestParts<WebState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Admin, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let session = {
            let Ok(mut sessions) = web.sessions.lock() else {
                return Err(to_login());
            };
            match sessions.get_mut(&token) {
                Some(s) if s.expires > Instant::now() => {
                    let mut s2 = s.clone();
                    s2.flash = s.flash.take();
                    s2
                }
                Some(_) => {
                    sessions.remove(&token);
                    return Err(to_login());
                }
                None => return Err(to_login()),
            }
        };
        // A grant revoked since sign-in ends the session at once.
        match web
            .ctx
            .delivery
            .store()
            .is_console_admin(session.user)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                web.end_session(&token);
                return Err(to_login());
            }
            Err(e) => return Err(Problem::internal(e).into_response()),
        }
        Ok(Admin {
            address: session.admin,
            token,
            csrf: session.csrf,
            flash: session.flash,
        })
    }
}

impl Admin {
    /// Checks the form's CSRF token against the session's.
    pub(crate) fn check(&self, form: &HashMap<String, String>) -> Result<(), Problem> {
        match form.get("csrf") {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            )),
        }
    }

    /// The hidden field every form carries.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// Logs an administrative action with who did it.
    pub(crate) fn audit(&self, action: &str, target: &str) {
        tracing::info!(target: "postgate_console::audit", admin = %self.address, action, target, "console action");
    }
}

impl Web {
    fn end_session(&self, token: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(token);
        }
    }

    /// Leaves a message for the session's next page.
    pub(crate) fn flash(&self, admin: &Admin, message: impl Into<String>) {
        self.set_flash(admin, false, message.into());
    }

    /// Leaves an error for the session's next page.
    pub(crate) fn flash_error(&self, admin: &Admin, message: impl Into<String>) {
        self.set_flash(admin, true, message.into());
    }

    fn set_flash(&self, admin: &Admin, error: bool, message: String) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(s) = s.get_mut(&admin.token)
        {
            s.flash = Some((error, message));
        }
    }

    fn start_session(&self, user: UserId, admin: EmailAddress) -> String {
        let key = token(&self.rng);
        let session = Session {
            admin,
            user,
            csrf: token(&self.rng),
            expires: Instant::now() + SESSION_TTL,
            flash: None,
        };
        if let Ok(mut s) = self.sessions.lock() {
            if s.len() >= MAX_SESSIONS {
                let now = Instant::now();
                s.retain(|_, v| v.expires > now);
                if s.len() >= MAX_SESSIONS
                    && let Some(oldest) = s
                        .iter()
                        .min_by_key(|(_, v)| v.expires)
                        .map(|(k, _)| k.clone())
                {
                    s.remove(&oldest);
                }
            }
            s.insert(key.clone(), session);
        }
        key
    }
}

/// An error page with its status.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    message: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Problem {
        Problem {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, what)
    }
    pub(crate) fn bad(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, what)
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %e, "console");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store is not answering; try again shortly.",
        )
    }
}

impl From<postgate_store::StoreError> for Problem {
    fn from(e: postgate_store::StoreError) -> Problem {
        use postgate_store::StoreError::*;
        match e {
            NotFound(_) => Problem::not_found(e.to_string()),
            Exists(_) | Invalid(_) | Conflict(_) => Problem::bad(e.to_string()),
            // RFC 4918 §11.5: 507 Insufficient Storage.
            Full(_) => {
                tracing::error!(error = %e, "console");
                Problem::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "The store is full; free space and try again.",
                )
            }
            Backend(_) | Closed => Problem::internal(e),
        }
    }
}

/// After a form: on success the flash `done` and a redirect to `to`; on a
/// refusal the store's reason as an error on the same page; the store's own
/// failures as an error page.
pub(crate) fn after<T>(
    web: &Web,
    admin: &Admin,
    to: &str,
    r: Result<T, postgate_store::StoreError>,
    done: impl FnOnce(T) -> String,
) -> PageResult {
    match r {
        Ok(v) => web.flash(admin, done(v)),
        Err(e) if e.is_transient() => return Err(Problem::internal(e)),
        Err(e) => web.flash_error(admin, e.to_string()),
    }
    Ok(Redirect::to(to).into_response())
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = bare(
            title,
            html! {
                main id="problem" {
                    h1 { (title) }
                    p class="error" role="alert" { (self.message) }
                    p { a href="/console/" { "Back to the console" } }
                }
            },
        );
        (self.status, Html(body.into_string())).into_response()
    }
}

pub(crate) type PageResult = Result<Response, Problem>;

/// A page without the navigation (sign-in, errors).
fn bare(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Postgate" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header { p class="brand" { "Postgate" } }
                (main)
            }
        }
    }
}

/// The navigation: (path, label, page name).
const NAV: &[(&str, &str, &str)] = &[
    ("/console/", "Status", "status"),
    ("/console/stats", "Statistics", "stats"),
    ("/console/queue", "Queue", "queue"),
    ("/console/directory", "Directory", "directory"),
    ("/console/access", "Access control", "access"),
    ("/console/log", "Log", "log"),
    ("/console/config", "Configuration", "config"),
];

/// A console page: header with navigation and sign-out, the flash message,
/// then `main`. `section` is the navigation entry it belongs to.
pub(crate) fn page(admin: &Admin, title: &str, section: &str, main: Markup) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Postgate" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                header {
                    p class="brand" { a href="/console/" { "Postgate" } }
                    nav aria-label="Console" {
                        ul {
                            @for (href, label, name) in NAV {
                                li {
                                    @if *name == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form id="logout" method="post" action="/console/logout" {
                        (admin.csrf_field())
                        span class="who" { (admin.address.to_string()) }
                        " "
                        button type="submit" { "Sign out" }
                    }
                }
                @match &admin.flash {
                    Some((false, f)) => p class="notice" role="status" { (f) },
                    Some((true, f)) => p class="error" role="alert" { (f) },
                    None => {}
                }
                (main)
            }
        }
    };
    Html(body.into_string()).into_response()
}

async fn login_form(State(web): State<WebState>, headers: HeaderMap) -> Response {
    login_page(&web, &headers, StatusCode::OK, None)
}

/// The sign-in page, with a fresh pre-login CSRF cookie unless the browser
/// has one.
fn login_page(web: &Web, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let pre = cookie(headers, PRELOGIN_COOKIE)
        .filter(|c| c.len() == 43)
        .unwrap_or_else(|| token(&web.rng));
    let body = bare(
        "Sign in",
        html! {
            main id="login-page" {
                h1 { "Sign in to the console" }
                @if let Some(e) = error {
                    p class="error" role="alert" { (e) }
                }
                form id="login" method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(pre);
                    p {
                        label for="login-address" { "Address" }
                        input id="login-address" type="text" inputmode="email" name="login" autocomplete="username" required autofocus;
                    }
                    p {
                        label for="login-password" { "Password" }
                        input id="login-password" type="password" name="password" autocomplete="current-password" required;
                    }
                    p { button type="submit" { "Sign in" } }
                }
            }
        },
    );
    let mut r = (status, Html(body.into_string())).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{PRELOGIN_COOKIE}={pre}; Path=/console; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login(
    State(web): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let pre = cookie(&headers, PRELOGIN_COOKIE).unwrap_or_default();
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if pre.is_empty() || !same(&pre, given) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "The sign-in form's CSRF token is missing or wrong: reload the page and try again.",
        )
        .into_response();
    }
    let login = form.get("login").map(|s| s.trim()).unwrap_or("");
    let password = form.get("password").cloned().unwrap_or_default();
    let ip = peer_ip(&headers);
    let auth = &web.ctx.auth;
    // The front door's throttle answers at once here rather than making a
    // browser wait: a form is not a protocol session.
    let wait = auth.retry_after(ip, login);
    if !wait.is_zero() {
        auth.held(ip, login);
        let wait = auth.retry_after(ip, login).max(wait);
        postgate_metrics::metrics().login(Service::Console.as_str(), "throttled");
        tracing::info!(peer = %ip, login, "console sign-in throttled");
        return login_page(
            &web,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&match wait.as_secs().max(1) {
                1 => "Too many failed sign-ins. Try again in 1 second.".to_string(),
                n => format!("Too many failed sign-ins. Try again in {n} seconds."),
            }),
        );
    }
    let attempt = Attempt {
        service: Service::Console,
        peer: ip,
        login,
        password: Secret::new(password),
        channel_ok: true,
    };
    let user = match auth.login(attempt).await {
        Ok(u) => u,
        Err(Refusal::Credentials) => {
            return login_page(
                &web,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some("Wrong address or password."),
            );
        }
        Err(Refusal::Denied(why)) => {
            return Problem::new(StatusCode::FORBIDDEN, why).into_response();
        }
        Err(Refusal::TlsRequired) => {
            return Problem::new(StatusCode::FORBIDDEN, "TLS is required.").into_response();
        }
        Err(Refusal::Unavailable(e)) => return Problem::internal(e).into_response(),
    };
    match web.ctx.delivery.store().is_console_admin(user.id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(user = %user.address, peer = %ip, "console sign-in refused: not an administrator");
            return Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} is not a console administrator (postgate admin grant ADDRESS makes one).",
                    user.address
                ),
            )
            .into_response();
        }
        Err(e) => return Problem::internal(e).into_response(),
    }
    tracing::info!(target: "postgate_console::audit", admin = %user.address, peer = %ip, "console sign-in");
    let token = web.start_session(user.id, user.address.clone());
    let mut r = Redirect::to("/console/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/console; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pg_prelogin=; Path=/console; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

async fn logout(
    State(web): State<WebState>,
    admin: Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&form)?;
    web.end_session(&admin.token);
    tracing::info!(target: "postgate_console::audit", admin = %admin.address, "console sign-out");
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pg_session=; Path=/console; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(r)
}

/// A confirmation page for `action` (a POST to `post_to`).
pub(crate) fn confirm(
    admin: &Admin,
    section: &str,
    question: &str,
    post_to: &str,
    back: &str,
) -> Response {
    page(
        admin,
        "Confirm",
        section,
        html! {
            main id="confirm" {
                h1 { "Confirm" }
                p { (question) }
                form method="post" action=(post_to) {
                    (admin.csrf_field())
                    button type="submit" { "Confirm" }
                    " "
                    a href=(back) { "Cancel" }
                }
            }
        },
    )
}

/// "3 h 4 min" from seconds.
pub(crate) fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    }
}

/// "12.3 MB" from octets.
pub(crate) fn size(octets: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut v = octets as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{octets} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A unix time as "2026-11-30 07:10:05 UTC".
pub(crate) fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Query-string encoding of one value (for links that keep the filters).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `page` query parameter: 1 when absent or not a number.
pub(crate) fn page_number(q: &HashMap<String, String>) -> usize {
    given(q.get("page"))
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

/// Previous/Next links of a paged list at `path?keep`, when there is more
/// than one page.
pub(crate) fn pager(path: &str, keep: &str, page_no: usize, pages: usize) -> Markup {
    html! {
        @if pages > 1 {
            nav aria-label="Pages" class="pages" {
                @if page_no > 1 { a href=(format!("{path}?{keep}&page={}", page_no - 1)) rel="prev" { "Previous" } }
                " "
                @if page_no < pages { a href=(format!("{path}?{keep}&page={}", page_no + 1)) rel="next" { "Next" } }
            }
        }
    }
}

/// An empty string as `None`, trimmed.
pub(crate) fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pg_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("pg_prelogin=xyz"));
        assert_eq!(cookie(&h, "pg_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "pg_prelogin").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "session"), None);
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let rng = ring::rand::SystemRandom::new();
        let (a, b) = (token(&rng), token(&rng));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..42]));
    }

    #[test]
    fn query_values_are_encoded_and_sizes_and_ages_read_well() {
        assert_eq!(enc("a b&c=d@x.org"), "a%20b%26c%3Dd@x.org");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_500_000), "1.5 MB");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(3 * 3600 + 240), "3 h 4 min");
        assert_eq!(age(2 * 86_400 + 3600), "2 d 1 h");
    }

    #[test]
    fn markup_escapes_what_users_typed() {
        let name = "<script>alert(1)</script>";
        let out = html! { td { (name) } }.into_string();
        assert_eq!(out, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>");
    }
}
