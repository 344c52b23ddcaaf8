//! The directory as LDAP sees it: a read-only snapshot of the post office's
//! users and groups as entries, rebuilt when the directory changes (the
//! store's directory generation), shared by every session.
//!
//! The tree under the naming context `B` (config, or the first domain's
//! "dc=" form):
//!
//! ```text
//! B                                   the naming context (dcObject/organization)
//!   ou=People,B                       users of the domain B is named after
//!     uid=alice,ou=People,B           inetOrgPerson
//!   ou=Groups,B
//!     cn=team,ou=Groups,B             groupOfNames (+ mail)
//!   o=other.example,B                 each other domain, with its own
//!     ou=People,o=other.example,B     People and Groups
//! ```
//!
//! Entries keep each value's normal form beside it, so that filters compare
//! without normalizing per search, and equality on mail, uid and cn is an
//! index lookup.
use postgate_ldap_proto::dn::{self, escape};
use postgate_ldap_proto::filter;
use postgate_ldap_proto::matching::normalize;
use postgate_ldap_proto::schema::{self, AttributeType};
use postgate_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One attribute of an entry.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Its type.
    pub at: &'static AttributeType,
    /// The values.
    pub values: Vec<String>,
    /// Their normal forms.
    pub norm: Vec<String>,
}

/// One entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The DN as shown.
    pub dn: String,
    /// Its normal form.
    pub dn_norm: String,
    /// The parent's normal form ("" for the naming context).
    pub parent_norm: String,
    /// The attributes, operational ones included.
    pub attrs: Vec<Attr>,
    /// For user entries: the address to authenticate.
    pub login: Option<String>,
}

impl Entry {
    fn new(dn: String) -> Entry {
        let dn_norm = dn::normalize(&dn).unwrap_or_else(|| dn.to_lowercase());
        let parent_norm = dn::parent_of(&dn_norm).to_string();
        Entry {
            dn,
            dn_norm,
            parent_norm,
            attrs: Vec::new(),
            login: None,
        }
    }

    /// Adds values (skipped when none).
    fn add<I, S>(&mut self, name: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let Some(at) = schema::attribute(name) else {
            return;
        };
        let mut vals: Vec<String> = Vec::new();
        for v in values {
            let v: String = v.into();
            if !v.is_empty() && !vals.contains(&v) {
                vals.push(v);
            }
        }
        if vals.is_empty() {
            return;
        }
        let norm = vals.iter().map(|v| normalize(at.syntax, v)).collect();
        self.attrs.push(Attr {
            at,
            values: vals,
            norm,
        });
    }

    /// An attribute by type.
    pub fn attr(&self, at: &AttributeType) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.at.name == at.name)
    }
}

impl filter::Entry for Entry {
    fn normalized(&self, at: &'static AttributeType) -> Option<&[String]> {
        self.attr(at).map(|a| a.norm.as_slice())
    }
    fn raw(&self, at: &'static AttributeType) -> Option<&[String]> {
        self.attr(at).map(|a| a.values.as_slice())
    }
    fn dn(&self) -> &str {
        &self.dn
    }
}

/// A snapshot of the directory.
#[derive(Debug)]
pub struct Snapshot {
    /// The directory generation it was built from.
    pub generation: u64,
    /// The naming context as shown.
    pub base: String,
    /// Its normal form.
    pub base_norm: String,
    /// Every entry under the naming context, parents before children.
    pub entries: Vec<Entry>,
    /// Entry index by normalized DN.
    pub by_dn: HashMap<String, u32>,
    /// User entry index by login address (lower case).
    pub by_login: HashMap<String, u32>,
    /// Entry indexes by (attribute name, normalized value), for mail, uid and cn.
    pub index: HashMap<(&'static str, String), Vec<u32>>,
    /// The root DSE.
    pub root_dse: Entry,
    /// The subschema entry.
    pub subschema: Entry,
}

/// Attributes with an equality index.
pub const INDEXED: [&str; 4] = ["mail", "uid", "cn", "objectClass"];

/// The DN of the subschema entry.
pub const SUBSCHEMA_DN: &str = "cn=Subschema";

/// The "dc=" form of a domain ("example.org" → "dc=example,dc=org").
pub fn dc_form(domain: &str) -> String {
    domain
        .trim_end_matches('.')
        .split('.')
        .map(|l| format!("dc={}", escape(l)))
        .collect::<Vec<_>>()
        .join(",")
}

impl Snapshot {
    /// Builds the snapshot from the store, users read a page at a time.
    pub async fn build(
        store: &Arc<dyn Store>,
        base_dn: Option<&str>,
        generation: u64,
    ) -> Result<Snapshot, StoreError> {
        let domains = store.list_domains().await?;
        let base = match base_dn {
            Some(b) => b.to_string(),
            None => domains
                .first()
                .map(|d| dc_form(&d.name))
                .unwrap_or_else(|| "dc=postgate,dc=invalid".into()),
        };
        let base_norm = dn::normalize(&base).unwrap_or_else(|| base.to_lowercase());
        let mut entries = Vec::new();

        // The naming context entry, by its RDN's attribute.
        let mut root = Entry::new(base.clone());
        let first = dn::Dn::parse(&base)
            .ok()
            .and_then(|d| d.0.first().and_then(|r| r.first().cloned()));
        match first
            .as_ref()
            .map(|a| (a.attr.to_ascii_lowercase(), a.value.clone()))
        {
            Some((a, v)) if a == "dc" => {
                root.add("objectClass", ["top", "dcObject", "organization"]);
                root.add("dc", [v]);
                root.add(
                    "o",
                    [domains
                        .first()
                        .map(|d| d.name.clone())
                        .unwrap_or_else(|| base.clone())],
                );
            }
            Some((a, v)) if a == "o" => {
                root.add("objectClass", ["top", "organization"]);
                root.add("o", [v]);
            }
            Some((a, v)) if a == "ou" => {
                root.add("objectClass", ["top", "organizationalUnit"]);
                root.add("ou", [v]);
            }
            _ => root.add("objectClass", ["top", "extensibleObject"]),
        }
        entries.push(root);

        // Where each domain's entries live.
        let mut domain_base: HashMap<String, String> = HashMap::new();
        for d in &domains {
            let name = d.name.to_lowercase();
            let db = if dn::normalize(&dc_form(&name)).as_deref() == Some(base_norm.as_str()) {
                base.clone()
            } else {
                let db = format!("o={},{base}", escape(&name));
                let mut e = Entry::new(db.clone());
                e.add("objectClass", ["top", "organization"]);
                e.add("o", [name.clone()]);
                entries.push(e);
                db
            };
            for ou in ["People", "Groups"] {
                let mut e = Entry::new(format!("ou={ou},{db}"));
                e.add("objectClass", ["top", "organizationalUnit"]);
                e.add("ou", [ou]);
                entries.push(e);
            }
            domain_base.insert(name, db);
        }

        // Users, a page at a time.
        let mut dn_of_address: HashMap<String, String> = HashMap::new();
        let mut after = 0;
        loop {
            let page = store.users_page(after, 2000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for u in page {
                let domain = u.address.domain().to_lowercase();
                let Some(db) = domain_base.get(&domain) else {
                    continue;
                };
                let local = u.address.local().to_string();
                let mut e = Entry::new(format!("uid={},ou=People,{db}", escape(&local)));
                let words: Vec<&str> = u.display_name.split_whitespace().collect();
                let cn = if u.display_name.trim().is_empty() {
                    u.address.to_string()
                } else {
                    u.display_name.trim().to_string()
                };
                let sn = u
                    .surname
                    .clone()
                    .filter(|s| !s.is_empty())
                    .or_else(|| (words.len() > 1).then(|| words[words.len() - 1].to_string()))
                    .unwrap_or_else(|| cn.clone());
                e.add(
                    "objectClass",
                    ["top", "person", "organizationalPerson", "inetOrgPerson"],
                );
                e.add("cn", [cn.clone()]);
                e.add("sn", [sn]);
                e.add("givenName", u.given_name.clone());
                e.add("displayName", [cn]);
                e.add(
                    "mail",
                    std::iter::once(u.address.to_string())
                        .chain(u.aliases.iter().map(|a| a.to_string())),
                );
                e.add("uid", [local]);
                e.add("telephoneNumber", u.phone.clone());
                e.add("title", u.title.clone());
                e.add(
                    "ou",
                    u.department
                        .clone()
                        .into_iter()
                        .chain([u.post_office.clone()]),
                );
                e.add("o", [domain.clone()]);
                e.login = Some(u.address.to_string());
                dn_of_address.insert(u.address.key(), e.dn.clone());
                for a in &u.aliases {
                    dn_of_address.insert(a.key(), e.dn.clone());
                }
                entries.push(e);
            }
        }

        // Groups: names first, so that members may be groups too.
        let groups = store.list_groups(None).await?;
        let mut group_entries = Vec::with_capacity(groups.len());
        for g in &groups {
            let domain = g.address.domain().to_lowercase();
            let Some(db) = domain_base.get(&domain) else {
                continue;
            };
            let local = g.address.local().to_string();
            let e = Entry::new(format!("cn={},ou=Groups,{db}", escape(&local)));
            dn_of_address.insert(g.address.key(), e.dn.clone());
            group_entries.push((g, e, local, domain));
        }
        for (g, mut e, local, domain) in group_entries {
            e.add("objectClass", ["top", "groupOfNames", "extensibleObject"]);
            let display = g.display_name.trim();
            e.add("cn", [display.to_string(), local]);
            if !display.is_empty() {
                e.add("displayName", [display.to_string()]);
            }
            e.add("mail", [g.address.to_string()]);
            e.add(
                "member",
                g.members
                    .iter()
                    .filter_map(|m| dn_of_address.get(&m.key()).cloned()),
            );
            e.add("o", [domain]);
            entries.push(e);
        }

        // Operational attributes (RFC 4512 §3.4, RFC 3045, RFC 5020).
        let mut children: HashMap<String, usize> = HashMap::new();
        for e in &entries {
            *children.entry(e.parent_norm.clone()).or_default() += 1;
        }
        for e in &mut entries {
            let n = children.get(&e.dn_norm).copied().unwrap_or(0);
            let structural = e
                .attr(schema::attribute("objectClass").expect("objectClass"))
                .map(|a| {
                    a.values
                        .iter()
                        .rev()
                        .find(|v| schema::object_class(v).is_some_and(|c| c.kind == "STRUCTURAL"))
                        .cloned()
                        .unwrap_or_else(|| "top".into())
                })
                .unwrap_or_default();
            let dn = e.dn.clone();
            e.add("entryDN", [dn]);
            e.add("subschemaSubentry", [SUBSCHEMA_DN]);
            e.add("hasSubordinates", [if n > 0 { "TRUE" } else { "FALSE" }]);
            e.add("numSubordinates", [n.to_string()]);
            e.add("structuralObjectClass", [structural]);
        }

        let mut by_dn = HashMap::with_capacity(entries.len());
        let mut by_login = HashMap::new();
        let mut index: HashMap<(&'static str, String), Vec<u32>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_dn.insert(e.dn_norm.clone(), i as u32);
            if let Some(l) = &e.login {
                by_login.insert(l.to_lowercase(), i as u32);
            }
            for a in &e.attrs {
                if let Some(name) = INDEXED.iter().find(|n| **n == a.at.name) {
                    for v in &a.norm {
                        index.entry((name, v.clone())).or_default().push(i as u32);
                    }
                }
            }
        }
        Ok(Snapshot {
            generation,
            root_dse: root_dse(&base),
            subschema: subschema(),
            base,
            base_norm,
            entries,
            by_dn,
            by_login,
            index,
        })
    }

    /// The entry with this normalized DN: the root DSE, the subschema entry,
    /// or one of the directory's.
    pub fn lookup(&self, dn_norm: &str) -> Option<&Entry> {
        if dn_norm.is_empty() {
            return Some(&self.root_dse);
        }
        if dn_norm == self.subschema.dn_norm {
            return Some(&self.subschema);
        }
        self.by_dn.get(dn_norm).map(|&i| &self.entries[i as usize])
    }

    /// The deepest existing entry above `dn_norm` (for noSuchObject's matchedDN).
    pub fn matched(&self, dn_norm: &str) -> String {
        let mut d = dn_norm;
        while !d.is_empty() {
            d = dn::parent_of(d);
            if let Some(&i) = self.by_dn.get(d) {
                return self.entries[i as usize].dn.clone();
            }
        }
        String::new()
    }
}

fn root_dse(base: &str) -> Entry {
    let mut e = Entry::new(String::new());
    e.dn_norm = String::new();
    e.parent_norm = String::new();
    e.add("objectClass", ["top", "extensibleObject"]);
    e.add("namingContexts", [base]);
    e.add("subschemaSubentry", [SUBSCHEMA_DN]);
    e.add("supportedLDAPVersion", ["3"]);
    e.add(
        "supportedControl",
        [
            postgate_ldap_proto::controls::PAGED,
            postgate_ldap_proto::controls::SORT_REQUEST,
            postgate_ldap_proto::controls::VLV_REQUEST,
            postgate_ldap_proto::controls::MANAGE_DSA_IT,
        ],
    );
    e.add(
        "supportedExtension",
        [crate::OID_STARTTLS, ldap3_proto::proto::OID_WHOAMI],
    );
    // RFC 3673 all operational attributes ("+"); RFC 4526 absolute filters.
    e.add(
        "supportedFeatures",
        ["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"],
    );
    e.add("vendorName", ["Postgate"]);
    e.add(
        "vendorVersion",
        [concat!("Postgate ", env!("CARGO_PKG_VERSION"))],
    );
    e
}

fn subschema() -> Entry {
    let mut e = Entry::new(SUBSCHEMA_DN.into());
    e.parent_norm = String::new();
    e.add(
        "objectClass",
        ["top", "subentry", "subschema", "extensibleObject"],
    );
    e.add("cn", ["Subschema"]);
    e.add("attributeTypes", schema::attribute_type_descriptions());
    e.add("objectClasses", schema::object_class_descriptions());
    e.add("matchingRules", schema::matching_rule_descriptions());
    e.add("ldapSyntaxes", schema::syntax_descriptions());
    e.add("structuralObjectClass", ["subentry"]);
    e.add("entryDN", [SUBSCHEMA_DN]);
    e.add("subschemaSubentry", [SUBSCHEMA_DN]);
    e
}

/// How often the directory generation is checked.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// The shared, lazily rebuilt snapshot.
#[derive(Debug)]
pub struct View {
    store: Arc<dyn Store>,
    base_dn: Option<String>,
    state: tokio::sync::Mutex<Option<(Arc<Snapshot>, Instant)>>,
}

impl View {
    /// A view over `store`.
    pub fn new(store: Arc<dyn Store>, base_dn: Option<String>) -> View {
        View {
            store,
            base_dn,
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// The current snapshot, rebuilt first if the directory changed.
    pub async fn get(&self) -> Result<Arc<Snapshot>, StoreError> {
        let mut state = self.state.lock().await;
        if let Some((snap, checked)) = state.as_ref()
            && checked.elapsed() < CHECK_EVERY
        {
            return Ok(snap.clone());
        }
        let generation = self.store.directory_generation().await?;
        if let Some((snap, checked)) = state.as_mut()
            && snap.generation == generation
        {
            *checked = Instant::now();
            return Ok(snap.clone());
        }
        let started = Instant::now();
        let snap =
            Arc::new(Snapshot::build(&self.store, self.base_dn.as_deref(), generation).await?);
        tracing::info!(
            entries = snap.entries.len(),
            ms = started.elapsed().as_millis() as u64,
            "ldap: directory view rebuilt"
        );
        *state = Some((snap.clone(), Instant::now()));
        Ok(snap)
    }
}
