//! Postgate's LDAPv3 engine (RFC 4511): the post office directory, read-only,
//! for address books. Anonymous public access by default (configurable),
//! simple binds with an entry DN or a mail address and the post office
//! password (RFC 4513), StartTLS and LDAPS, "Who am I?" (RFC 4532), every
//! filter type, paged results (RFC 2696), server-side sorting (RFC 2891) and
//! Virtual List View. Writes are refused with unwillingToPerform.
#![deny(missing_docs)]

mod search;
mod session;
pub mod view;

use async_trait::async_trait;
use postgate_ldap_proto::schema::AttributeType;
use postgate_runtime::Service;
use postgate_runtime::config::LdapConfig;
use postgate_runtime::listener::Conn;
use postgate_store::Store;
use postgate_store::auth::Authenticator;
use std::sync::Arc;

/// RFC 4511 §4.14.1: the StartTLS extended operation.
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
/// RFC 4511 §4.4.1: the Notice of Disconnection.
pub const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// What sessions share.
#[derive(Debug)]
pub struct Context {
    /// The configuration.
    pub config: LdapConfig,
    /// Login checks.
    pub auth: Authenticator,
    /// The directory view.
    pub view: view::View,
    public: Arc<Vec<&'static str>>,
}

/// The attributes a client may see and filter on, besides operational
/// ones; `None`: all.
pub type Allowed = Option<Arc<Vec<&'static str>>>;

fn known(names: &[String]) -> Vec<&'static str> {
    names
        .iter()
        .filter_map(|a| postgate_ldap_proto::schema::attribute(a).map(|t| t.name))
        .collect()
}

impl Context {
    /// The context over `store`.
    pub fn new(config: LdapConfig, store: Arc<dyn Store>, auth: Authenticator) -> Context {
        let public = Arc::new(known(&config.attributes));
        Context {
            view: view::View::new(store, config.base_dn.clone()),
            config,
            auth,
            public,
        }
    }

    /// Whether a client allowed `allowed` may see `at`.
    pub fn visible(&self, at: &AttributeType, allowed: Option<&[&'static str]>) -> bool {
        at.operational || allowed.is_none_or(|a| a.contains(&at.name))
    }

    /// What a client that has not bound may see: the `default` class's
    /// `ldap.attributes`, else `[ldap] attributes`.
    pub async fn anonymous(&self) -> Allowed {
        match self.auth.policy().default_settings().await {
            Ok(s) if !s.ldap_attributes.is_empty() => Some(Arc::new(known(&s.ldap_attributes))),
            _ => Some(self.public.clone()),
        }
    }

    /// What a user whose class allows `names` may see (empty: all).
    pub fn for_class(names: &[String]) -> Allowed {
        (!names.is_empty()).then(|| Arc::new(known(names)))
    }
}

/// The LDAP service.
#[derive(Debug)]
pub struct LdapService {
    ctx: Arc<Context>,
}

impl LdapService {
    /// The service.
    pub fn new(ctx: Context) -> LdapService {
        LdapService { ctx: Arc::new(ctx) }
    }
}

#[async_trait]
impl Service for LdapService {
    fn name(&self) -> &'static str {
        "ldap"
    }

    fn busy_reply(&self) -> &'static [u8] {
        // A Notice of Disconnection (RFC 4511 §4.4.1) with busy (51).
        &session::BUSY_NOTICE
    }

    async fn serve(&self, conn: Conn) {
        session::Session::new(conn, self.ctx.clone()).run().await;
    }
}
