//! `/api/v1`: the client API.
use crate::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use postgate_delivery::Sender;
use postgate_mime::build::{NewAttachment, NewMessage, build_message};
use postgate_store::auth::{Attempt, Refusal};
use postgate_store::{Envelope, EnvelopeRcpt, Resolution, User, UserRef};
use postgate_types::{EmailAddress, Importance, ItemSummary, Secret, Service};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// The client's address, for the trace the message keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

pub(crate) type Ctx = Arc<Context>;

/// The header that carries the client's address to [`user`], set here and
/// never taken from the client.
pub(crate) const PEER_HEADER: &str = "x-postgate-peer";

/// Puts the client's address where [`user`] finds it (any such header the
/// client sent is dropped first).
pub(crate) async fn mark_peer(
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let h = req.headers_mut();
    h.remove(PEER_HEADER);
    if let Ok(v) = axum::http::HeaderValue::from_str(&peer.ip().to_string()) {
        h.insert(PEER_HEADER, v);
    }
    next.run(req).await
}

pub(crate) fn router(ctx: Ctx) -> Router {
    // Base64 grows attachments by a third; JSON adds a little more.
    let limit = (ctx.max_message_size as usize)
        .saturating_mul(4)
        .saturating_div(3)
        .saturating_add(1 << 20);
    let router = Router::new()
        .route("/api/v1/messages", post(send))
        .route("/api/v1/folders", get(folders))
        .route("/api/v1/folders/{name}/items", get(items))
        .route("/metrics", get(metrics));
    crate::calendar::routes(router)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(ctx)
}

/// `GET /metrics`: every counter in the OpenMetrics text format
/// (Prometheus reads it), for the bearer of `[console] metrics_token`.
async fn metrics(State(ctx): State<Ctx>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(token) = ctx.metrics_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "/metrics is off: set [console] metrics_token",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    // The same time whatever the token's first wrong byte.
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "bearer token required").into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(r);
    }
    let body = postgate_metrics::metrics().encode();
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}

/// An error as JSON: `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "client API");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the post office is unavailable; try again",
        )
    }
    /// A failed write: a full store is 507 (RFC 4918 §11.5 Insufficient
    /// Storage), anything else [`ApiError::internal`].
    pub(crate) fn store(e: postgate_store::StoreError) -> ApiError {
        match e {
            postgate_store::StoreError::Full(_) => {
                tracing::error!(error = %e, "client API");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the post office is full; try again later",
                )
            }
            e => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 7617 §2: the challenge, with the charset the credentials use.
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Postgate\", charset=\"UTF-8\""),
            );
        }
        r
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such resource")
}

/// RFC 7617: `Authorization: Basic base64(user-id ":" password)`.
pub(crate) async fn user(ctx: &Context, headers: &HeaderMap) -> Result<User, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("authentication required"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized("use Basic authentication"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let (login, password) = decoded
        .split_once(':')
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let peer = headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let attempt = Attempt {
        service: Service::Api,
        peer,
        login,
        password: Secret::new(password.to_string()),
        channel_ok: true, // the API is served over HTTPS only
    };
    match ctx.auth.login(attempt).await {
        Ok(u) => Ok(u),
        Err(Refusal::Credentials) => Err(unauthorized("invalid credentials")),
        Err(Refusal::Denied(why)) => Err(ApiError::new(StatusCode::FORBIDDEN, why)),
        Err(Refusal::TlsRequired) => Err(ApiError::new(StatusCode::FORBIDDEN, "use HTTPS")),
        Err(Refusal::Unavailable(e)) => Err(ApiError::internal(e)),
    }
}

/// `GET /api/v1/folders`.
async fn folders(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let u = user(&ctx, &headers).await?;
    let folders = ctx
        .delivery
        .store()
        .folders(u.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(Value::Array(
        folders
            .iter()
            .map(|f| {
                json!({
                    "name": f.path,
                    "role": f.role.map(|r| r.as_str()),
                    "total": f.total,
                    "unread": f.unseen,
                })
            })
            .collect(),
    )))
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

fn item_json(i: &ItemSummary) -> Value {
    let flags: Vec<String> = i
        .flags
        .names()
        .map(str::to_string)
        .chain(i.keywords.iter().cloned())
        .collect();
    json!({
        "id": i.uid,
        "kind": i.kind,
        "from": i.from,
        "subject": i.subject,
        "date": rfc3339(i.date),
        "size": i.size,
        "flags": flags,
    })
}

/// `GET /api/v1/folders/{name}/items` (a nested folder's "/" written %2F).
async fn items(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let u = user(&ctx, &headers).await?;
    let store = ctx.delivery.store();
    let folder = store
        .folder(u.id, &name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no folder {name:?}")))?;
    let items = store.items(folder.id).await.map_err(ApiError::internal)?;
    Ok(axum::Json(Value::Array(
        items.iter().map(item_json).collect(),
    )))
}

/// The body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outgoing {
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    #[serde(default)]
    subject: String,
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    importance: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment {
    filename: String,
    content_type: Option<String>,
    data_base64: String,
}

/// "Name <addr@example.org>" or "addr@example.org".
fn mailbox(s: &str) -> Result<(String, EmailAddress), ApiError> {
    let s = s.trim();
    let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => (
            s[..i].trim().trim_matches('"').trim().to_string(),
            &s[i + 1..s.len() - 1],
        ),
        _ => (String::new(), s),
    };
    let address = EmailAddress::parse(addr.trim())
        .map_err(|e| ApiError::bad(format!("{s:?} is not an address: {e}")))?;
    Ok((name, address))
}

fn unique_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut b);
    format!(
        "{:x}.{}",
        chrono::Utc::now().timestamp_millis(),
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// `POST /api/v1/messages`: compose and send.
async fn send(
    State(ctx): State<Ctx>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let req: Outgoing = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("the body is not a valid message: {e}")))?;
    let to = req
        .to
        .iter()
        .map(|s| mailbox(s))
        .collect::<Result<Vec<_>, _>>()?;
    let cc = req
        .cc
        .iter()
        .map(|s| mailbox(s))
        .collect::<Result<Vec<_>, _>>()?;
    let bcc = req
        .bcc
        .iter()
        .map(|s| mailbox(s))
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(ApiError::bad(
            "give at least one recipient in to, cc or bcc",
        ));
    }
    let importance = match req
        .importance
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("normal") => Importance::Normal,
        Some("high") => Importance::High,
        Some("low") => Importance::Low,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "importance {other:?} is not low, normal or high"
            )));
        }
    };
    let mut attachments = Vec::with_capacity(req.attachments.len());
    for a in &req.attachments {
        let compact: String = a.data_base64.split_whitespace().collect();
        let data = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| ApiError::bad(format!("attachment {:?}: bad base64: {e}", a.filename)))?;
        let content_type = a
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        if !content_type.contains('/') || content_type.contains(['\r', '\n']) {
            return Err(ApiError::bad(format!(
                "attachment {:?}: {content_type:?} is not a MIME type",
                a.filename
            )));
        }
        // A text/* part without a charset is read as US-ASCII (RFC 2046
        // §4.1.2): say utf-8 when its bytes are.
        let content_type = if content_type.to_ascii_lowercase().starts_with("text/")
            && !content_type.to_ascii_lowercase().contains("charset")
            && std::str::from_utf8(&data).is_ok()
        {
            format!("{content_type}; charset=utf-8")
        } else {
            content_type
        };
        attachments.push(NewAttachment {
            filename: a.filename.clone(),
            content_type,
            data,
        });
    }

    let mut send_limit = ctx.max_message_size;
    // Every recipient must exist before anything is sent, as SMTP refuses an
    // unknown local recipient at RCPT (RFC 5321 §3.3).
    let mut local: Vec<UserRef> = Vec::new();
    let mut rcpts: Vec<EnvelopeRcpt> = Vec::new();
    let mut unknown = Vec::new();
    for (_, address) in to.iter().chain(&cc).chain(&bcc) {
        let text = address.to_string();
        if rcpts.iter().any(|r| r.address.eq_ignore_ascii_case(&text)) {
            continue;
        }
        let remote = match ctx
            .delivery
            .resolve(address)
            .await
            .map_err(ApiError::internal)?
        {
            Resolution::Users(users) => {
                for user in users {
                    if !local.iter().any(|l| l.id == user.id) {
                        local.push(user);
                    }
                }
                false
            }
            Resolution::NotLocal => true,
            Resolution::Unknown | Resolution::Ambiguous => {
                unknown.push(text.clone());
                continue;
            }
        };
        rcpts.push(EnvelopeRcpt {
            address: text,
            orcpt: None,
            notify: Vec::new(),
            remote,
        });
    }
    if !unknown.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no such recipient: {}", unknown.join(", ")),
        ));
    }

    // The sender's class of service and the blocked destinations, for what
    // goes to the Internet (mail to local recipients stays allowed).
    if rcpts.iter().any(|r| r.remote) {
        let policy = ctx.auth.policy();
        let class = policy.class_of(&u).await.map_err(ApiError::internal)?;
        for r in rcpts.iter().filter(|r| r.remote) {
            let domain = r.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            if !class.settings.smtp_send.allows(Some(domain), None) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{}: {} may not send to the Internet (class of service {})",
                        r.address, u.address, class.class
                    ),
                ));
            }
            if let Some(b) = policy
                .blocked(postgate_types::access::Direction::Out, None, &[domain])
                .await
                .map_err(ApiError::internal)?
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("{}: destination blocked ({})", r.address, b.pattern),
                ));
            }
        }
        let max = class.settings.smtp_send_max_size;
        if max > 0 && max < ctx.max_message_size {
            send_limit = max;
        }
    }

    let message_id = format!("{}@{}", unique_id(), ctx.hostname);
    let pair = |(n, a): &(String, EmailAddress)| (n.clone(), a.to_string());
    let raw = build_message(&NewMessage {
        from: (u.display_name.clone(), u.address.to_string()),
        to: to.iter().map(pair).collect(),
        cc: cc.iter().map(pair).collect(),
        subject: req.subject,
        text: req.text,
        html: req.html,
        attachments,
        importance,
        message_id: message_id.clone(),
        date: chrono::Utc::now().timestamp(),
    });
    if raw.len() as u64 > send_limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the message is {} octets; the limit is {}",
                raw.len(),
                send_limit
            ),
        ));
    }
    let smtputf8 = rcpts.iter().any(|r| !r.address.is_ascii()) || !u.address.to_string().is_ascii();
    let queued = rcpts.iter().filter(|r| r.remote).count();
    let envelope = Envelope {
        mail_from: u.address.to_string(),
        env_id: None,
        ret: None,
        body: None,
        smtputf8,
        rcpts,
        peer: Some(peer.ip().to_string()),
        helo: None,
        tls: true,
        tls_description: None,
        auth_user: Some(u.address.to_string()),
        ..Default::default()
    };
    let report = ctx
        .delivery
        .deliver(
            raw,
            envelope,
            &local,
            Some(Sender {
                user: u.id,
                sent_copy: true,
            }),
        )
        .await
        .map_err(ApiError::store)?;
    let sent = report.stored.first().filter(|d| d.user == u.id).copied();
    let folder = match sent {
        Some(d) => ctx
            .delivery
            .store()
            .folders(u.id)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .find(|f| f.id == d.folder)
            .map(|f| f.path),
        None => None,
    };
    tracing::info!(user = %u.address, message_id, local = local.len(), queued, "client API: message sent");
    let body = json!({
        "id": sent.map(|d| d.uid),
        "folder": folder,
        "message_id": format!("<{message_id}>"),
        "delivered": local.len(),
        "queued": queued,
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/openapi.yaml documents every route served here.
    #[test]
    fn openapi_documents_every_route() {
        let spec = include_str!("../../../../docs/openapi.yaml");
        for path in [
            "/api/v1/messages:",
            "/api/v1/folders:",
            "/api/v1/folders/{name}/items:",
            "/api/v1/calendar:",
            "/api/v1/calendar/import:",
            "/api/v1/calendar/{id}:",
            "/api/v1/calendar/{id}/reply:",
            "/api/v1/calendar/{id}/counters/{n}/accept:",
            "/api/v1/calendar/{id}/counters/{n}/decline:",
            "/api/v1/tasks:",
            "/api/v1/tasks/{id}:",
            "/api/v1/tasks/{id}/complete:",
            "/api/v1/freebusy:",
        ] {
            assert!(spec.contains(path), "{path} missing from docs/openapi.yaml");
        }
    }

    #[test]
    fn mailboxes_parse() {
        let (n, a) = mailbox("Carol Ωmega <carol@example.net>").unwrap();
        assert_eq!(
            (n.as_str(), a.to_string().as_str()),
            ("Carol Ωmega", "carol@example.net")
        );
        let (n, a) = mailbox(" \"Bob\" <bob@example.org> ").unwrap();
        assert_eq!(
            (n.as_str(), a.to_string().as_str()),
            ("Bob", "bob@example.org")
        );
        assert!(mailbox("not an address").is_err());
    }
}
