//! One LDAP session: the request loop, binds, compare, extended operations,
//! refused writes. Searches are in `search.rs`.
use crate::search::Paged;
use crate::{Context, OID_NOTICE_OF_DISCONNECTION, OID_STARTTLS};
use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapResult,
    LdapResultCode, OID_WHOAMI,
};
use postgate_ldap_proto::{RequestDecoder, dn, encode, matching, schema};
use postgate_runtime::Shutdown;
use postgate_runtime::listener::Conn;
use postgate_runtime::stream::Stream;
use postgate_runtime::tls::Tls;
use postgate_store::auth::{Attempt, Refusal};
use postgate_types::{Secret, Service};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Notice of Disconnection with busy (51), sent when every worker is taken.
pub(crate) static BUSY_NOTICE: [u8; 38] = [
    0x30, 0x24, 0x02, 0x01, 0x00, 0x78, 0x1f, 0x0a, 0x01, 0x33, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16,
    b'1', b'.', b'3', b'.', b'6', b'.', b'1', b'.', b'4', b'.', b'1', b'.', b'1', b'4', b'6', b'6',
    b'.', b'2', b'0', b'0', b'3', b'6',
];

/// Written out once this much is buffered.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// Who the client is.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// The user's entry DN.
    pub dn: String,
    /// What the user's class of service lets it see.
    pub allowed: crate::Allowed,
}

/// What to do after a request.
enum Flow {
    Continue,
    Close,
    StartTls,
}

pub(crate) struct Session {
    pub(crate) stream: Option<Stream>,
    pub(crate) rbuf: BytesMut,
    pub(crate) wbuf: BytesMut,
    decoder: RequestDecoder,
    pub(crate) ctx: Arc<Context>,
    tls: Tls,
    pub(crate) peer: SocketAddr,
    shutdown: Shutdown,
    pub(crate) bound: Option<Bound>,
    /// What the current search may show (set when it starts).
    pub(crate) allowed: crate::Allowed,
    /// Requests read while a search was being sent, to serve after it.
    pub(crate) pending: VecDeque<LdapMsg>,
    /// Paged searches under way, by cookie.
    pub(crate) paged: HashMap<Vec<u8>, Paged>,
    pub(crate) next_cookie: u64,
}

/// An LDAPResult.
pub(crate) fn result(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.into(),
        referral: Vec::new(),
    }
}

impl Session {
    pub(crate) fn new(conn: Conn, ctx: Arc<Context>) -> Session {
        Session {
            stream: Some(conn.stream),
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(16 * 1024),
            decoder: RequestDecoder::default(),
            ctx,
            tls: conn.tls,
            peer: conn.peer,
            shutdown: conn.shutdown,
            bound: None,
            allowed: None,
            pending: VecDeque::new(),
            paged: HashMap::new(),
            next_cookie: 1,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    /// Queues a response.
    pub(crate) fn send(&mut self, msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) {
        if let Some(kind) = error_kind(&op) {
            postgate_metrics::metrics().error("ldap", kind);
        }
        if let Err(e) = encode(LdapMsg { msgid, op, ctrl }, &mut self.wbuf) {
            tracing::error!(error = %e, "ldap: cannot encode a response");
        }
    }

    /// Writes out what is queued.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(s) = self.stream.as_mut() else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        s.write_all(&self.wbuf).await?;
        s.flush().await?;
        self.wbuf.clear();
        Ok(())
    }

    /// RFC 4511 §4.4.1: tells the client why the server is closing.
    async fn notice_of_disconnection(&mut self, code: LdapResultCode, why: &str) {
        self.send(
            0,
            LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(code, why),
                name: Some(OID_NOTICE_OF_DISCONNECTION.into()),
                value: None,
            }),
            Vec::new(),
        );
        let _ = self.flush().await;
    }

    /// The next request: one read while a search ran, else from the wire.
    /// `Ok(None)` at end of stream, idle timeout or shutdown.
    async fn next(&mut self) -> Result<Option<LdapMsg>, postgate_ldap_proto::DecodeError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        loop {
            if let Some(m) = self.decoder.decode(&mut self.rbuf)? {
                return Ok(Some(m));
            }
            let idle = self.ctx.config.idle_timeout;
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            let mut shutdown = self.shutdown.clone();
            let read = tokio::select! {
                r = tokio::time::timeout(idle, stream.read_buf(&mut self.rbuf)) => r,
                _ = shutdown.wait() => return Ok(None),
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
                Ok(Ok(_)) => {}
                Err(_) => {
                    self.notice_of_disconnection(LdapResultCode::Unavailable, "idle timeout")
                        .await;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads what has arrived, without waiting, while a search is being sent:
    /// true if the client abandoned `msgid` (RFC 4511 §4.11).
    pub(crate) async fn abandoned(&mut self, msgid: i32) -> bool {
        if let Some(stream) = self.stream.as_mut() {
            // A zero timeout polls the read once: data already there is taken.
            if let Ok(Ok(n)) =
                tokio::time::timeout(std::time::Duration::ZERO, stream.read_buf(&mut self.rbuf))
                    .await
                && n == 0
            {
                return true; // The client went away.
            }
        }
        let mut abandoned = false;
        while let Ok(Some(m)) = self.decoder.decode(&mut self.rbuf) {
            match m.op {
                LdapOp::AbandonRequest(id) if id == msgid => abandoned = true,
                LdapOp::AbandonRequest(_) => {}
                _ => self.pending.push_back(m),
            }
        }
        abandoned
    }

    pub(crate) async fn run(mut self) {
        loop {
            let msg = match self.next().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    // RFC 4511 §4.1.1: a PDU that cannot be parsed ends the
                    // session, with a Notice of Disconnection.
                    tracing::info!(peer = %self.peer, error = %e, "ldap: undecodable request");
                    self.notice_of_disconnection(
                        LdapResultCode::ProtocolError,
                        "malformed request",
                    )
                    .await;
                    break;
                }
            };
            let flow = match self.handle(msg).await {
                Ok(f) => f,
                Err(_) => break,
            };
            if self.flush().await.is_err() {
                break;
            }
            match flow {
                Flow::Continue => {}
                Flow::Close => break,
                Flow::StartTls => {
                    // RFC 4511 §4.14.2: nothing may follow the request
                    // before the TLS handshake.
                    if !self.rbuf.is_empty() || !self.pending.is_empty() {
                        self.notice_of_disconnection(
                            LdapResultCode::ProtocolError,
                            "data sent before the TLS handshake",
                        )
                        .await;
                        break;
                    }
                    let Some(stream) = self.stream.take() else {
                        break;
                    };
                    match tokio::time::timeout(
                        postgate_runtime::listener::TLS_HANDSHAKE_TIMEOUT,
                        stream.start_tls(&self.tls),
                    )
                    .await
                    {
                        Ok(Ok(s)) => self.stream = Some(s),
                        _ => break,
                    }
                }
            }
        }
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
    }

    /// A control the client marked critical that this operation cannot
    /// honour (RFC 4511 §4.1.11).
    fn unsupported_critical(&self, ctrl: &[LdapControl], search: bool) -> Option<String> {
        ctrl.iter().find_map(|c| match c {
            LdapControl::Unknown {
                oid,
                criticality: true,
                ..
            } if !(search && oid == postgate_ldap_proto::controls::VLV_REQUEST) => {
                Some(oid.clone())
            }
            LdapControl::SyncRequest {
                criticality: true, ..
            } => Some("1.3.6.1.4.1.4203.1.9.1.1".into()),
            LdapControl::PasswordPolicyRequest { criticality: true } => {
                Some("1.3.6.1.4.1.42.2.27.8.5.1".into())
            }
            LdapControl::SearchOptions {
                criticality: true, ..
            }
            | LdapControl::ShowDeleted { criticality: true }
            | LdapControl::SdFlags {
                criticality: true, ..
            }
            | LdapControl::ExtendedDn {
                criticality: true, ..
            } => Some("an Active Directory control".into()),
            _ => None,
        })
    }

    async fn handle(&mut self, msg: LdapMsg) -> std::io::Result<Flow> {
        let id = msg.msgid;
        postgate_metrics::metrics().command("ldap", operation(&msg.op));
        let critical =
            self.unsupported_critical(&msg.ctrl, matches!(msg.op, LdapOp::SearchRequest(_)));
        let refuse = |why: String| {
            result(
                LdapResultCode::UnavailableCriticalExtension,
                format!("unsupported critical control {why}"),
            )
        };
        match msg.op {
            LdapOp::BindRequest(req) => {
                let res = match critical {
                    Some(c) => refuse(c),
                    None => self.bind(req).await,
                };
                self.send(
                    id,
                    LdapOp::BindResponse(LdapBindResponse {
                        res,
                        saslcreds: None,
                    }),
                    Vec::new(),
                );
            }
            LdapOp::UnbindRequest => return Ok(Flow::Close),
            LdapOp::SearchRequest(req) => match critical {
                Some(c) => self.send(id, LdapOp::SearchResultDone(refuse(c)), Vec::new()),
                None => self.search(id, req, msg.ctrl).await?,
            },
            LdapOp::CompareRequest(req) => {
                let res = match critical {
                    Some(c) => refuse(c),
                    None => self.compare(req).await,
                };
                self.send(id, LdapOp::CompareResult(res), Vec::new());
            }
            // Nothing is under way between requests: nothing to abandon.
            LdapOp::AbandonRequest(_) => {}
            LdapOp::ExtendedRequest(req) => {
                let (res, name, value, flow) = match req.name.as_str() {
                    OID_STARTTLS if self.is_tls() => (
                        result(
                            LdapResultCode::OperationsError,
                            "TLS is already established",
                        ),
                        Some(OID_STARTTLS.to_string()),
                        None,
                        Flow::Continue,
                    ),
                    OID_STARTTLS => (
                        result(LdapResultCode::Success, ""),
                        Some(OID_STARTTLS.to_string()),
                        None,
                        Flow::StartTls,
                    ),
                    // RFC 4532 §2.2: "dn:" and the DN, or empty for anonymous.
                    OID_WHOAMI => (
                        result(LdapResultCode::Success, ""),
                        None,
                        Some(
                            self.bound
                                .as_ref()
                                .map(|b| format!("dn:{}", b.dn))
                                .unwrap_or_default()
                                .into_bytes(),
                        ),
                        Flow::Continue,
                    ),
                    // RFC 4511 §4.12: an unknown name gets protocolError.
                    other => (
                        result(
                            LdapResultCode::ProtocolError,
                            format!("unsupported extended operation {other}"),
                        ),
                        None,
                        None,
                        Flow::Continue,
                    ),
                };
                self.send(
                    id,
                    LdapOp::ExtendedResponse(LdapExtendedResponse { res, name, value }),
                    Vec::new(),
                );
                return Ok(flow);
            }
            // The directory is the post office's: changed by its administration,
            // not over LDAP.
            LdapOp::AddRequest(_) => self.send(id, LdapOp::AddResponse(read_only()), Vec::new()),
            LdapOp::ModifyRequest(_) => {
                self.send(id, LdapOp::ModifyResponse(read_only()), Vec::new())
            }
            LdapOp::DelRequest(_) => self.send(id, LdapOp::DelResponse(read_only()), Vec::new()),
            LdapOp::ModifyDNRequest(_) => {
                self.send(id, LdapOp::ModifyDNResponse(read_only()), Vec::new())
            }
            _ => {
                self.notice_of_disconnection(LdapResultCode::ProtocolError, "not a request")
                    .await;
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 4513 §5: anonymous, unauthenticated (refused) and name/password
    /// binds; the name is an entry DN or a mail address.
    async fn bind(&mut self, req: ldap3_proto::proto::LdapBindRequest) -> LdapResult {
        // A new bind starts from anonymous, whatever its outcome (§4.2.1).
        self.bound = None;
        if req.version != 3 {
            return result(LdapResultCode::ProtocolError, "only LDAPv3 is supported");
        }
        let password = match req.cred {
            LdapBindCred::Simple(p) => p,
            _ => {
                return result(
                    LdapResultCode::AuthMethodNotSupported,
                    "only simple binds are supported",
                );
            }
        };
        let name = req.dn.trim();
        if password.is_empty() {
            return if name.is_empty() {
                result(LdapResultCode::Success, "")
            } else {
                // §5.1.2: an unauthenticated bind is refused by default.
                result(
                    LdapResultCode::UnwillingToPerform,
                    "unauthenticated bind (name without password) refused",
                )
            };
        }
        if !self.is_tls() && !self.ctx.config.allow_plaintext {
            // §6.3.2 and RFC 4513 §5.1.2: no password in clear text.
            return result(
                LdapResultCode::ConfidentialityRequired,
                "use StartTLS or LDAPS before a password bind",
            );
        }
        let invalid = || result(LdapResultCode::InvalidCredentials, "invalid credentials");
        let login = if name.contains('=') {
            let Some(norm) = dn::normalize(name) else {
                return result(LdapResultCode::InvalidDNSyntax, "invalid DN");
            };
            let snap = match self.ctx.view.get().await {
                Ok(s) => s,
                Err(e) => return result(LdapResultCode::Unavailable, e.to_string()),
            };
            match snap.lookup(&norm).and_then(|e| e.login.clone()) {
                Some(l) => l.to_string(),
                None => {
                    // Counted and timed as any failed login.
                    let attempt = Attempt {
                        service: Service::Ldap,
                        peer: self.peer.ip(),
                        login: &norm,
                        password: Secret::new(password),
                        channel_ok: true,
                    };
                    let _ = self.ctx.auth.login(attempt).await;
                    return invalid();
                }
            }
        } else {
            name.to_string()
        };
        let attempt = Attempt {
            service: Service::Ldap,
            peer: self.peer.ip(),
            login: &login,
            password: Secret::new(password),
            channel_ok: true, // checked above
        };
        match self.ctx.auth.login(attempt).await {
            Ok(user) => {
                let snap = match self.ctx.view.get().await {
                    Ok(s) => s,
                    Err(e) => return result(LdapResultCode::Unavailable, e.to_string()),
                };
                let allowed = match self.ctx.auth.policy().class_of(&user).await {
                    Ok(c) => crate::Context::for_class(&c.settings.ldap_attributes),
                    Err(e) => return result(LdapResultCode::Unavailable, e.to_string()),
                };
                let dn = snap
                    .by_login
                    .get(user.address.to_string().to_lowercase().as_str())
                    .map(|&i| snap.entries[i as usize].dn.to_string())
                    .unwrap_or_else(|| {
                        format!(
                            "uid={},ou=People,{}",
                            dn::escape(user.address.local()),
                            snap.base
                        )
                    });
                tracing::info!(peer = %self.peer, user = %user.address, "ldap: bind");
                self.bound = Some(Bound { dn, allowed });
                result(LdapResultCode::Success, "")
            }
            Err(Refusal::Credentials) => invalid(),
            // RFC 4511 §4.2.2 / Appendix A: the right password, but not allowed.
            Err(Refusal::Denied(why)) => result(LdapResultCode::InsufficentAccessRights, why),
            Err(Refusal::TlsRequired) => result(
                LdapResultCode::ConfidentialityRequired,
                "use StartTLS or LDAPS before a password bind",
            ),
            Err(Refusal::Unavailable(e)) => result(LdapResultCode::Unavailable, e.to_string()),
        }
    }

    /// RFC 4511 §4.10.
    async fn compare(&mut self, req: ldap3_proto::proto::LdapCompareRequest) -> LdapResult {
        let Some(norm) = dn::normalize(&req.dn) else {
            return result(LdapResultCode::InvalidDNSyntax, "invalid DN");
        };
        if self.bound.is_none() && !self.ctx.config.anonymous {
            return result(
                LdapResultCode::InsufficentAccessRights,
                "anonymous access is disabled; bind first",
            );
        }
        let snap = match self.ctx.view.get().await {
            Ok(s) => s,
            Err(e) => return result(LdapResultCode::Unavailable, e.to_string()),
        };
        let Some(entry) = snap.lookup(&norm) else {
            let mut r = result(LdapResultCode::NoSuchObject, "no such entry");
            r.matcheddn = snap.matched(&norm);
            return r;
        };
        let at = match schema::attribute(&req.atype) {
            Some(at)
                if self.ctx.visible(
                    at,
                    match &self.bound {
                        Some(b) => b.allowed.clone(),
                        None => self.ctx.anonymous().await,
                    }
                    .as_deref()
                    .map(|v| v.as_slice()),
                ) =>
            {
                at
            }
            _ => {
                return result(
                    LdapResultCode::UndefinedAttributeType,
                    format!("unknown attribute {}", req.atype),
                );
            }
        };
        let Some(attr) = entry.attr(at) else {
            return result(
                LdapResultCode::NoSuchAttribute,
                format!("the entry has no {}", at.name),
            );
        };
        let value = String::from_utf8_lossy(&req.val);
        let want = matching::normalize(at.syntax, &value);
        if attr.norm.iter().any(|v| **v == *want) {
            result(LdapResultCode::CompareTrue, "")
        } else {
            result(LdapResultCode::CompareFalse, "")
        }
    }
}

fn read_only() -> LdapResult {
    result(
        LdapResultCode::UnwillingToPerform,
        "the directory is read-only over LDAP; change it with the post office's administration",
    )
}

/// A request's operation name (RFC 4511 §4.2–§4.12) for the counters.
fn operation(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "bind",
        LdapOp::UnbindRequest => "unbind",
        LdapOp::SearchRequest(_) => "search",
        LdapOp::CompareRequest(_) => "compare",
        LdapOp::AbandonRequest(_) => "abandon",
        LdapOp::ExtendedRequest(_) => "extended",
        LdapOp::AddRequest(_) => "add",
        LdapOp::ModifyRequest(_) => "modify",
        LdapOp::DelRequest(_) => "delete",
        LdapOp::ModifyDNRequest(_) => "modDN",
        _ => "other",
    }
}

/// What kind of error a response carries, if it is one: success, the
/// compare answers and a search cut short by its size limit are not.
fn error_kind(op: &LdapOp) -> Option<postgate_metrics::ErrorKind> {
    use postgate_metrics::ErrorKind;
    let res = match op {
        LdapOp::BindResponse(r) => &r.res,
        LdapOp::SearchResultDone(r)
        | LdapOp::CompareResult(r)
        | LdapOp::AddResponse(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r) => r,
        LdapOp::ExtendedResponse(r) => &r.res,
        _ => return None,
    };
    match res.code {
        LdapResultCode::Success
        | LdapResultCode::CompareFalse
        | LdapResultCode::CompareTrue
        | LdapResultCode::SizeLimitExceeded => None,
        LdapResultCode::ProtocolError => Some(ErrorKind::Syntax),
        // RFC 4511 Appendix A.1: busy and unavailable are for now.
        LdapResultCode::Busy | LdapResultCode::Unavailable => Some(ErrorKind::Temporary),
        _ => Some(ErrorKind::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_notice_is_a_notice_of_disconnection() {
        let mut buf = BytesMut::from(&BUSY_NOTICE[..]);
        let mut codec = ldap3_proto::LdapCodec::default();
        let msg = tokio_util::codec::Decoder::decode(&mut codec, &mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(msg.msgid, 0);
        let LdapOp::ExtendedResponse(r) = msg.op else {
            panic!("{msg:?}")
        };
        assert_eq!(r.res.code, LdapResultCode::Busy);
        assert_eq!(r.name.as_deref(), Some(OID_NOTICE_OF_DISCONNECTION));
    }
}
