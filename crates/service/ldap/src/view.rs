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
use postgate_ldap_proto::filter::{self, Value};
use postgate_ldap_proto::matching::normalize;
use postgate_ldap_proto::schema::{self, AttributeType};
use postgate_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an attribute's values are in its entry's value arrays.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: &'static AttributeType,
    start: u16,
    len: u16,
}

/// One attribute of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    /// Its type.
    pub at: &'static AttributeType,
    /// The values.
    pub values: &'a [Value],
    /// Their normal forms.
    pub norm: &'a [Value],
}

/// One entry: its values in two flat arrays (as given, and normalized),
/// equal strings shared, so that a large directory stays small in memory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The DN as shown.
    pub dn: Value,
    /// Its normal form.
    pub dn_norm: Value,
    /// The parent entry's number (`NO_PARENT` for the naming context).
    pub parent: u32,
    /// For user entries: the address to authenticate.
    pub login: Option<Value>,
    spans: Box<[Span]>,
    vals: Box<[Value]>,
    norms: Box<[Value]>,
    /// Position in `spans` of each attribute type, by its index in the
    /// schema table (NONE when absent): O(1) lookups for filters.
    slots: [u8; SLOTS],
}

/// The parent of entries without one in the snapshot.
pub const NO_PARENT: u32 = u32::MAX;

/// Attribute types the slots table has room for.
const SLOTS: usize = 48;
const NONE: u8 = u8::MAX;

/// Attributes whose values repeat across entries: one allocation each.
const SHARED: [&str; 9] = [
    "objectClass",
    "o",
    "ou",
    "title",
    "dc",
    "hasSubordinates",
    "numSubordinates",
    "structuralObjectClass",
    "subschemaSubentry",
];

/// Shares equal values of [`SHARED`] attributes while a snapshot is built.
#[derive(Debug, Default)]
pub(crate) struct Pool(HashMap<String, Value>);

impl Pool {
    fn get(&mut self, s: &str) -> Value {
        if let Some(v) = self.0.get(s) {
            return v.clone();
        }
        let v: Value = s.into();
        self.0.insert(s.to_string(), v.clone());
        v
    }
}

/// An entry being built.
struct Draft {
    dn: String,
    dn_value: Value,
    attrs: Vec<(&'static AttributeType, Vec<Value>, Vec<Value>)>,
    login: Option<String>,
}

impl Draft {
    fn new(dn: String) -> Draft {
        Draft {
            dn_value: dn.as_str().into(),
            dn,
            attrs: Vec::new(),
            login: None,
        }
    }

    /// An existing value of this entry equal to `s`, to share.
    fn existing(&self, s: &str) -> Option<Value> {
        if *self.dn_value == *s {
            return Some(self.dn_value.clone());
        }
        self.attrs
            .iter()
            .flat_map(|(_, v, n)| v.iter().chain(n.iter()))
            .find(|v| ***v == *s)
            .cloned()
    }

    /// Adds values (skipped when none).
    fn add<I, S>(&mut self, pool: &mut Pool, name: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let Some(at) = schema::attribute(name) else {
            return;
        };
        let shared = SHARED.contains(&at.name);
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
        let mut values = Vec::with_capacity(vals.len());
        let mut norm = Vec::with_capacity(vals.len());
        for v in vals {
            let n = normalize(at.syntax, &v);
            let make = |this: &Self, pool: &mut Pool, s: &str| -> Value {
                if shared {
                    pool.get(s)
                } else {
                    this.existing(s).unwrap_or_else(|| s.into())
                }
            };
            let value = make(self, pool, &v);
            let n = if *n == *value {
                value.clone()
            } else {
                make(self, pool, &n)
            };
            values.push(value);
            norm.push(n);
        }
        self.attrs.push((at, values, norm));
    }

    fn values(&self, name: &str) -> Option<&[Value]> {
        self.attrs
            .iter()
            .find(|(at, _, _)| at.name == name)
            .map(|(_, v, _)| v.as_slice())
    }

    fn finish(self) -> Entry {
        let dn_norm = dn::normalize(&self.dn).unwrap_or_else(|| self.dn.to_lowercase());
        let dn_norm: Value = if dn_norm == self.dn {
            self.dn_value.clone()
        } else {
            self.existing(&dn_norm)
                .unwrap_or_else(|| dn_norm.as_str().into())
        };
        let login = self
            .login
            .as_deref()
            .map(|l| self.existing(l).unwrap_or_else(|| l.into()));
        let mut slots = [NONE; SLOTS];
        let mut spans = Vec::with_capacity(self.attrs.len());
        let mut vals = Vec::new();
        let mut norms = Vec::new();
        for (p, (at, v, n)) in self.attrs.into_iter().enumerate() {
            if let Some(i) = schema::index_of(at) {
                slots[i] = p as u8;
            }
            spans.push(Span {
                at,
                start: vals.len() as u16,
                len: v.len() as u16,
            });
            vals.extend(v);
            norms.extend(n);
        }
        Entry {
            dn: self.dn_value,
            dn_norm,
            parent: NO_PARENT,
            login,
            spans: spans.into_boxed_slice(),
            vals: vals.into_boxed_slice(),
            norms: norms.into_boxed_slice(),
            slots,
        }
    }
}

impl Entry {
    fn span(&self, s: &Span) -> Attr<'_> {
        let r = s.start as usize..s.start as usize + s.len as usize;
        Attr {
            at: s.at,
            values: &self.vals[r.clone()],
            norm: &self.norms[r],
        }
    }

    /// An attribute by type.
    pub fn attr(&self, at: &AttributeType) -> Option<Attr<'_>> {
        let span = match schema::index_of(at) {
            Some(i) => match self.slots[i] {
                NONE => None,
                p => self.spans.get(p as usize),
            },
            None => self.spans.iter().find(|a| a.at.name == at.name),
        }?;
        Some(self.span(span))
    }

    /// Every attribute, in order.
    pub fn attrs(&self) -> impl Iterator<Item = Attr<'_>> {
        self.spans.iter().map(|s| self.span(s))
    }
}

impl filter::Entry for Entry {
    fn normalized(&self, at: &'static AttributeType) -> Option<&[Value]> {
        self.attr(at).map(|a| a.norm)
    }
    fn raw(&self, at: &'static AttributeType) -> Option<&[Value]> {
        self.attr(at).map(|a| a.values)
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
    /// Entry number by normalized DN.
    pub by_dn: HashMap<Value, u32>,
    /// User entry number by login address (lower case).
    pub by_login: HashMap<Value, u32>,
    /// Entry numbers by normalized value, per attribute of [`INDEXED`].
    pub index: [HashMap<Value, Vec<u32>>; INDEXED.len()],
    /// Entry numbers by each 3-octet window of the normalized values of the
    /// name and address attributes: substring searches ("*smi*") look at
    /// the entries holding the assertion's rarest trigram only.
    pub trigrams: HashMap<[u8; 3], Vec<u32>>,
    /// The root DSE.
    pub root_dse: Entry,
    /// The subschema entry.
    pub subschema: Entry,
}

/// Attributes with an equality index.
pub const INDEXED: [&str; 4] = ["mail", "uid", "cn", "objectClass"];

/// Attributes with a trigram index for substring searches.
pub const TRIGRAM: [&str; 6] = ["cn", "sn", "givenName", "displayName", "mail", "uid"];

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
        let mut domains = store.list_domains().await?;
        // The first domain served (the oldest) names the tree by default.
        domains.sort_by_key(|d| d.id);
        let base = match base_dn {
            Some(b) => b.to_string(),
            None => domains
                .first()
                .map(|d| dc_form(&d.name))
                .unwrap_or_else(|| "dc=postgate,dc=invalid".into()),
        };
        let base_norm = dn::normalize(&base).unwrap_or_else(|| base.to_lowercase());
        let mut pool = Pool::default();
        // Entries are finished as they are made (a large directory is never
        // held twice); the few containers wait for their children's count
        // in reserved places.
        let mut entries: Vec<Entry> = Vec::new();
        let mut containers: Vec<(u32, Draft, u32)> = Vec::new(); // (number, draft, parent)
        let mut children: HashMap<u32, usize> = HashMap::new();
        let reserve = |entries: &mut Vec<Entry>,
                       d: Draft,
                       parent: u32,
                       containers: &mut Vec<(u32, Draft, u32)>| {
            let n = entries.len() as u32;
            entries.push(Draft::new(String::new()).finish());
            containers.push((n, d, parent));
            n
        };

        // The naming context entry, by its RDN's attribute.
        let mut root = Draft::new(base.clone());
        let first = dn::Dn::parse(&base)
            .ok()
            .and_then(|d| d.0.first().and_then(|r| r.first().cloned()));
        match first
            .as_ref()
            .map(|a| (a.attr.to_ascii_lowercase(), a.value.clone()))
        {
            Some((a, v)) if a == "dc" => {
                root.add(
                    &mut pool,
                    "objectClass",
                    ["top", "dcObject", "organization"],
                );
                root.add(&mut pool, "dc", [v]);
                root.add(
                    &mut pool,
                    "o",
                    [domains
                        .first()
                        .map(|d| d.name.clone())
                        .unwrap_or_else(|| base.clone())],
                );
            }
            Some((a, v)) if a == "o" => {
                root.add(&mut pool, "objectClass", ["top", "organization"]);
                root.add(&mut pool, "o", [v]);
            }
            Some((a, v)) if a == "ou" => {
                root.add(&mut pool, "objectClass", ["top", "organizationalUnit"]);
                root.add(&mut pool, "ou", [v]);
            }
            _ => root.add(&mut pool, "objectClass", ["top", "extensibleObject"]),
        }
        let root_n = reserve(&mut entries, root, NO_PARENT, &mut containers);

        // Where each domain's entries live: (People, Groups) numbers and DNs.
        // Per domain: its People and Groups containers (number, DN).
        type Home = ((u32, String), (u32, String));
        let mut homes: HashMap<String, Home> = HashMap::new();
        for d in &domains {
            let name = d.name.to_lowercase();
            let (db, db_n) =
                if dn::normalize(&dc_form(&name)).as_deref() == Some(base_norm.as_str()) {
                    (base.clone(), root_n)
                } else {
                    let db = format!("o={},{base}", escape(&name));
                    let mut e = Draft::new(db.clone());
                    e.add(&mut pool, "objectClass", ["top", "organization"]);
                    e.add(&mut pool, "o", [name.clone()]);
                    let n = reserve(&mut entries, e, root_n, &mut containers);
                    *children.entry(root_n).or_default() += 1;
                    (db, n)
                };
            let mut home = Vec::new();
            for ou in ["People", "Groups"] {
                let dn = format!("ou={ou},{db}");
                let mut e = Draft::new(dn.clone());
                e.add(&mut pool, "objectClass", ["top", "organizationalUnit"]);
                e.add(&mut pool, "ou", [ou]);
                let n = reserve(&mut entries, e, db_n, &mut containers);
                *children.entry(db_n).or_default() += 1;
                home.push((n, dn));
            }
            let groups = home.pop().expect("groups");
            let people = home.pop().expect("people");
            homes.insert(name, (people, groups));
        }

        // A leaf's operational attributes (RFC 4512 §3.4, RFC 5020).
        let leaf = |d: &mut Draft, pool: &mut Pool, structural: &str| {
            let dn = d.dn.clone();
            d.add(pool, "entryDN", [dn]);
            d.add(pool, "subschemaSubentry", [SUBSCHEMA_DN]);
            d.add(pool, "hasSubordinates", ["FALSE"]);
            d.add(pool, "numSubordinates", ["0"]);
            d.add(pool, "structuralObjectClass", [structural]);
        };

        // Users, a page at a time.
        let mut dn_of_address: HashMap<String, Value> = HashMap::new();
        let mut after = 0;
        loop {
            let page = store.users_page(after, 2000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for u in page {
                let domain = u.address.domain().to_lowercase();
                let Some(((people_n, people), _)) = homes.get(&domain) else {
                    continue;
                };
                let local = u.address.local().to_string();
                let mut e = Draft::new(format!("uid={},{people}", escape(&local)));
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
                    &mut pool,
                    "objectClass",
                    ["top", "person", "organizationalPerson", "inetOrgPerson"],
                );
                e.add(&mut pool, "cn", [cn.clone()]);
                e.add(&mut pool, "sn", [sn]);
                e.add(&mut pool, "givenName", u.given_name.clone());
                e.add(&mut pool, "displayName", [cn]);
                e.add(
                    &mut pool,
                    "mail",
                    std::iter::once(u.address.to_string())
                        .chain(u.aliases.iter().map(|a| a.to_string())),
                );
                e.add(&mut pool, "uid", [local]);
                e.add(&mut pool, "telephoneNumber", u.phone.clone());
                e.add(&mut pool, "title", u.title.clone());
                e.add(
                    &mut pool,
                    "ou",
                    u.department
                        .clone()
                        .into_iter()
                        .chain([u.post_office.clone()]),
                );
                e.add(&mut pool, "o", [domain.clone()]);
                leaf(&mut e, &mut pool, "inetOrgPerson");
                e.login = Some(u.address.to_string());
                let mut entry = e.finish();
                entry.parent = *people_n;
                *children.entry(*people_n).or_default() += 1;
                dn_of_address.insert(u.address.key(), entry.dn.clone());
                for a in &u.aliases {
                    dn_of_address.insert(a.key(), entry.dn.clone());
                }
                entries.push(entry);
            }
        }

        // Groups: names first, so that members may be groups too.
        let groups = store.list_groups(None).await?;
        let mut group_drafts = Vec::with_capacity(groups.len());
        for g in &groups {
            let domain = g.address.domain().to_lowercase();
            let Some((_, (groups_n, groups_dn))) = homes.get(&domain) else {
                continue;
            };
            let local = g.address.local().to_string();
            let e = Draft::new(format!("cn={},{groups_dn}", escape(&local)));
            dn_of_address.insert(g.address.key(), e.dn_value.clone());
            group_drafts.push((g, e, local, domain, *groups_n));
        }
        for (g, mut e, local, domain, parent) in group_drafts {
            e.add(
                &mut pool,
                "objectClass",
                ["top", "groupOfNames", "extensibleObject"],
            );
            let display = g.display_name.trim();
            e.add(&mut pool, "cn", [display.to_string(), local]);
            if !display.is_empty() {
                e.add(&mut pool, "displayName", [display.to_string()]);
            }
            e.add(&mut pool, "mail", [g.address.to_string()]);
            e.add(
                &mut pool,
                "member",
                g.members
                    .iter()
                    .filter_map(|m| dn_of_address.get(&m.key()).map(|d| d.to_string())),
            );
            e.add(&mut pool, "o", [domain]);
            leaf(&mut e, &mut pool, "groupOfNames");
            let mut entry = e.finish();
            entry.parent = parent;
            *children.entry(parent).or_default() += 1;
            entries.push(entry);
        }
        drop(dn_of_address);

        // The containers, now that their children are counted.
        for (n, mut d, parent) in containers {
            let count = children.get(&n).copied().unwrap_or(0);
            let structural = d
                .values("objectClass")
                .and_then(|a| {
                    a.iter()
                        .rev()
                        .find(|v| schema::object_class(v).is_some_and(|c| c.kind == "STRUCTURAL"))
                        .map(|v| v.to_string())
                })
                .unwrap_or_else(|| "top".into());
            let dn = d.dn.clone();
            d.add(&mut pool, "entryDN", [dn]);
            d.add(&mut pool, "subschemaSubentry", [SUBSCHEMA_DN]);
            d.add(
                &mut pool,
                "hasSubordinates",
                [if count > 0 { "TRUE" } else { "FALSE" }],
            );
            d.add(&mut pool, "numSubordinates", [count.to_string()]);
            d.add(&mut pool, "structuralObjectClass", [structural]);
            let mut e = d.finish();
            e.parent = parent;
            entries[n as usize] = e;
        }
        drop(pool);

        let mut by_dn: HashMap<Value, u32> = HashMap::with_capacity(entries.len());
        let mut by_login = HashMap::new();
        let mut index: [HashMap<Value, Vec<u32>>; INDEXED.len()] = Default::default();
        let mut trigrams: HashMap<[u8; 3], Vec<u32>> = HashMap::new();
        let mut seen: Vec<[u8; 3]> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            by_dn.insert(e.dn_norm.clone(), i as u32);
            if let Some(l) = &e.login {
                let key: Value = if l.chars().any(char::is_uppercase) {
                    l.to_lowercase().as_str().into()
                } else {
                    l.clone()
                };
                by_login.insert(key, i as u32);
            }
            seen.clear();
            for a in e.attrs() {
                if let Some(k) = INDEXED.iter().position(|n| *n == a.at.name) {
                    for v in a.norm.iter() {
                        index[k].entry(v.clone()).or_default().push(i as u32);
                    }
                }
                if TRIGRAM.contains(&a.at.name) {
                    for v in a.norm.iter() {
                        for w in v.as_bytes().windows(3) {
                            seen.push([w[0], w[1], w[2]]);
                        }
                    }
                }
            }
            seen.sort_unstable();
            seen.dedup();
            for t in &seen {
                trigrams.entry(*t).or_default().push(i as u32);
            }
        }
        for m in &mut index {
            m.values_mut().for_each(|v| v.shrink_to_fit());
        }
        trigrams.values_mut().for_each(|v| v.shrink_to_fit());
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
            trigrams,
        })
    }

    /// The entry with this normalized DN: the root DSE, the subschema entry,
    /// or one of the directory's.
    pub fn lookup(&self, dn_norm: &str) -> Option<&Entry> {
        if dn_norm.is_empty() {
            return Some(&self.root_dse);
        }
        if dn_norm == &*self.subschema.dn_norm {
            return Some(&self.subschema);
        }
        self.by_dn.get(dn_norm).map(|&i| &self.entries[i as usize])
    }

    /// The entry number of a normalized DN in `entries`.
    pub fn number(&self, dn_norm: &str) -> Option<u32> {
        self.by_dn.get(dn_norm).copied()
    }

    /// Whether entry `i` is entry `ancestor` or below it.
    pub fn is_under(&self, mut i: u32, ancestor: u32) -> bool {
        while i != NO_PARENT {
            if i == ancestor {
                return true;
            }
            i = self.entries[i as usize].parent;
        }
        false
    }

    /// The deepest existing entry above `dn_norm` (for noSuchObject's matchedDN).
    pub fn matched(&self, dn_norm: &str) -> String {
        let mut d = dn_norm;
        while !d.is_empty() {
            d = dn::parent_of(d);
            if let Some(&i) = self.by_dn.get(d) {
                return self.entries[i as usize].dn.to_string();
            }
        }
        String::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_slots_table_holds_every_attribute_type() {
        assert!(postgate_ldap_proto::schema::ATTRIBUTES.len() <= super::SLOTS);
    }
}

fn root_dse(base: &str) -> Entry {
    let mut pool = Pool::default();
    let mut e = Draft::new(String::new());
    e.add(&mut pool, "objectClass", ["top", "extensibleObject"]);
    e.add(&mut pool, "namingContexts", [base]);
    e.add(&mut pool, "subschemaSubentry", [SUBSCHEMA_DN]);
    e.add(&mut pool, "supportedLDAPVersion", ["3"]);
    e.add(
        &mut pool,
        "supportedControl",
        [
            postgate_ldap_proto::controls::PAGED,
            postgate_ldap_proto::controls::SORT_REQUEST,
            postgate_ldap_proto::controls::VLV_REQUEST,
            postgate_ldap_proto::controls::MANAGE_DSA_IT,
        ],
    );
    e.add(
        &mut pool,
        "supportedExtension",
        [crate::OID_STARTTLS, ldap3_proto::proto::OID_WHOAMI],
    );
    // RFC 3673 all operational attributes ("+"); RFC 4526 absolute filters.
    e.add(
        &mut pool,
        "supportedFeatures",
        ["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"],
    );
    e.add(&mut pool, "vendorName", ["Postgate"]);
    e.add(
        &mut pool,
        "vendorVersion",
        [concat!("Postgate ", env!("CARGO_PKG_VERSION"))],
    );
    e.finish()
}

fn subschema() -> Entry {
    let mut pool = Pool::default();
    let mut e = Draft::new(SUBSCHEMA_DN.into());
    e.add(
        &mut pool,
        "objectClass",
        ["top", "subentry", "subschema", "extensibleObject"],
    );
    e.add(&mut pool, "cn", ["Subschema"]);
    e.add(
        &mut pool,
        "attributeTypes",
        schema::attribute_type_descriptions(),
    );
    e.add(
        &mut pool,
        "objectClasses",
        schema::object_class_descriptions(),
    );
    e.add(
        &mut pool,
        "matchingRules",
        schema::matching_rule_descriptions(),
    );
    e.add(&mut pool, "ldapSyntaxes", schema::syntax_descriptions());
    e.add(&mut pool, "structuralObjectClass", ["subentry"]);
    e.add(&mut pool, "entryDN", [SUBSCHEMA_DN]);
    e.add(&mut pool, "subschemaSubentry", [SUBSCHEMA_DN]);
    e.finish()
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
