//! [`Directory`](crate::Directory) for the PostgreSQL store: the embedded
//! store's directory, on PostgreSQL.
//!
//! Every directory write runs in one transaction that first bumps the
//! directory generation (`write_directory!`). The bump locks the generation
//! row until commit, so directory writes from every node take turns, as they
//! do behind the embedded store's single writer: a check such as "is this
//! local part free?" still holds when the insert that follows it commits
//! (uniqueness across users, aliases and groups is not a constraint the
//! schema can state).
use super::messages::insert_folder;
use super::{Param, PgStore, now, param_refs, pg};
use crate::rules::{
    DEFAULT_POST_OFFICE, MAX_GROUP_DEPTH, detail, dotted_key, filter_domain, search_key,
    search_text, valid_domain_name,
};
use crate::{
    Directory, Domain, Group, NewUser, Resolution, Result, StoreError, User, UserFilter, UserRef,
    UserUpdate,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use postgate_types::{EmailAddress, FolderRole, UserId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use tokio_postgres::Row;

const USER_COLUMNS: &str = "u.id, u.local_part, d.name, p.name, u.display_name, u.given_name, \
     u.surname, u.title, u.department, u.phone, u.password_hash IS NOT NULL";

/// Runs a directory (or access rules) write: the generation bump and `$body`
/// in one transaction (see `in_tx!`), then forgets this node's cached
/// resolutions, whether or not the write succeeded. The bump comes first: it
/// holds the generation row until commit, so directory writes on every node
/// run one at a time.
macro_rules! write_directory {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let out = $crate::postgres::in_tx!($store, |$tx| {
            $crate::postgres::directory::bump_generation(&$tx).await?;
            let r: $crate::Result<_> = $body;
            r
        });
        $store.inner.resolutions.invalidate();
        out
    }};
}
pub(crate) use write_directory;

fn user_row(r: &Row) -> Result<User> {
    let local: String = r.get(1);
    let domain: String = r.get(2);
    Ok(User {
        id: r.get(0),
        address: EmailAddress::parse(&format!("{local}@{domain}"))
            .map_err(|e| StoreError::Backend(format!("stored address {local}@{domain}: {e}")))?,
        post_office: r.get(3),
        display_name: r.get(4),
        given_name: r.get(5),
        surname: r.get(6),
        title: r.get(7),
        department: r.get(8),
        phone: r.get(9),
        aliases: Vec::new(),
        has_password: r.get(10),
    })
}

fn user_rows(rows: &[Row]) -> Result<Vec<User>> {
    rows.iter().map(user_row).collect()
}

async fn domain_id(c: &impl GenericClient, name: &str) -> Result<Option<i64>> {
    let s = c
        .prepare_cached("SELECT id FROM domain WHERE name = $1")
        .await
        .map_err(pg)?;
    Ok(c.query_opt(&s, &[&name])
        .await
        .map_err(pg)?
        .map(|r| r.get(0)))
}

async fn require_domain(c: &impl GenericClient, name: &str) -> Result<i64> {
    domain_id(c, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
}

/// Which kind of directory entry holds a local part, if any (a user before
/// an alias before a group).
async fn taken_by(c: &impl GenericClient, domain: i64, key: &str) -> Result<Option<&'static str>> {
    let s = c
        .prepare_cached(
            "SELECT CASE \
               WHEN EXISTS (SELECT 1 FROM users WHERE domain_id = $1 AND local_key = $2) THEN 'user' \
               WHEN EXISTS (SELECT 1 FROM alias WHERE domain_id = $1 AND local_key = $2) THEN 'alias' \
               WHEN EXISTS (SELECT 1 FROM grp WHERE domain_id = $1 AND local_key = $2) THEN 'group' \
             END",
        )
        .await
        .map_err(pg)?;
    let what: Option<String> = c.query_one(&s, &[&domain, &key]).await.map_err(pg)?.get(0);
    Ok(match what.as_deref() {
        Some("user") => Some("user"),
        Some("alias") => Some("alias"),
        Some("group") => Some("group"),
        _ => None,
    })
}

async fn ensure_free(c: &impl GenericClient, domain: i64, address: &EmailAddress) -> Result<()> {
    match taken_by(c, domain, &address.local_key()).await? {
        Some(what) => Err(StoreError::Exists(format!("{what} {address}"))),
        None => Ok(()),
    }
}

/// Fills in the users' aliases, in one query for all of them.
async fn load_aliases(c: &impl GenericClient, users: &mut [User]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let s = c
        .prepare_cached(
            "SELECT a.user_id, a.local_part, d.name FROM alias a JOIN domain d ON d.id = a.domain_id \
             WHERE a.user_id = ANY($1) \
             ORDER BY a.user_id, d.name COLLATE \"C\", a.local_key COLLATE \"C\"",
        )
        .await
        .map_err(pg)?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let mut by_user: HashMap<UserId, Vec<EmailAddress>> = HashMap::new();
    for r in c.query(&s, &[&ids]).await.map_err(pg)? {
        let (user, local, domain): (UserId, String, String) = (r.get(0), r.get(1), r.get(2));
        if let Ok(a) = EmailAddress::parse(&format!("{local}@{domain}")) {
            by_user.entry(user).or_default().push(a);
        }
    }
    for u in users {
        u.aliases = by_user.remove(&u.id).unwrap_or_default();
    }
    Ok(())
}

/// The user whose primary address or alias is `address`.
async fn find_user(c: &impl GenericClient, address: &EmailAddress) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN domain d ON d.id = u.domain_id \
         JOIN post_office p ON p.id = u.post_office_id \
         WHERE d.name = $1 AND (u.local_key = $2 OR u.id IN \
           (SELECT a.user_id FROM alias a WHERE a.domain_id = d.id AND a.local_key = $2))"
    );
    let s = c.prepare_cached(&sql).await.map_err(pg)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&address.domain(), &address.local_key()];
    let mut row = c.query_opt(&s, &params).await.map_err(pg)?;
    // An alias may live in another local domain than its user.
    if row.is_none() {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM alias a JOIN domain ad ON ad.id = a.domain_id \
             JOIN users u ON u.id = a.user_id JOIN domain d ON d.id = u.domain_id \
             JOIN post_office p ON p.id = u.post_office_id \
             WHERE ad.name = $1 AND a.local_key = $2"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        row = c.query_opt(&s, &params).await.map_err(pg)?;
    }
    let mut users = user_rows(row.as_slice())?;
    load_aliases(c, &mut users).await?;
    Ok(users.pop())
}

async fn user_by_id(c: &impl GenericClient, id: UserId) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN domain d ON d.id = u.domain_id \
         JOIN post_office p ON p.id = u.post_office_id WHERE u.id = $1"
    );
    let s = c.prepare_cached(&sql).await.map_err(pg)?;
    let row = c.query_opt(&s, &[&id]).await.map_err(pg)?;
    let mut users = user_rows(row.as_slice())?;
    load_aliases(c, &mut users).await?;
    Ok(users.pop())
}

async fn group_id(c: &impl GenericClient, address: &EmailAddress) -> Result<Option<(i64, String)>> {
    let s = c
        .prepare_cached(
            "SELECT g.id, g.display_name FROM grp g JOIN domain d ON d.id = g.domain_id \
             WHERE d.name = $1 AND g.local_key = $2",
        )
        .await
        .map_err(pg)?;
    Ok(c.query_opt(&s, &[&address.domain(), &address.local_key()])
        .await
        .map_err(pg)?
        .map(|r| (r.get(0), r.get(1))))
}

/// Bumps the directory generation (in the caller's transaction), so that
/// every node's resolution cache notices.
pub(crate) async fn bump_generation(c: &impl GenericClient) -> Result<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('directory_generation', 1) \
         ON CONFLICT (key) DO UPDATE SET value = meta.value + 1",
        &[],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// The current directory generation.
pub(crate) async fn generation(s: &PgStore) -> Result<u64> {
    let c = s.client().await?;
    let row = c
        .query_opt(
            "SELECT value FROM meta WHERE key = 'directory_generation'",
            &[],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
}

/// The next UIDVALIDITY: the current time in seconds, but always greater than
/// any given before, on any node, so a folder deleted and re-created never
/// repeats one (RFC 9051 §2.3.1.1). The meta row is locked until commit.
pub(crate) async fn next_uid_validity(c: &impl GenericClient) -> Result<u32> {
    let now = super::now() & 0xffff_ffff;
    let row = c
        .query_one(
            "INSERT INTO meta (key, value) VALUES ('uid_validity', $1) \
             ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value + 1, excluded.value) \
             RETURNING value",
            &[&now],
        )
        .await
        .map_err(pg)?;
    Ok(row.get::<_, i64>(0) as u32)
}

/// The user a local part reaches directly (primary address or alias): the lean
/// lookup behind resolution, one indexed query each, no alias lists loaded.
async fn lookup_user(c: &impl GenericClient, domain: i64, key: &str) -> Result<Option<UserRef>> {
    const BY_USER: &str = "SELECT u.id, u.local_part, d.name FROM users u \
         JOIN domain d ON d.id = u.domain_id WHERE u.domain_id = $1 AND u.local_key = $2";
    const BY_ALIAS: &str = "SELECT u.id, u.local_part, d.name FROM alias a \
         JOIN users u ON u.id = a.user_id JOIN domain d ON d.id = u.domain_id \
         WHERE a.domain_id = $1 AND a.local_key = $2";
    for sql in [BY_USER, BY_ALIAS] {
        let s = c.prepare_cached(sql).await.map_err(pg)?;
        let row = c.query_opt(&s, &[&domain, &key]).await.map_err(pg)?;
        if let Some(r) = row {
            let (id, local, dom): (UserId, String, String) = (r.get(0), r.get(1), r.get(2));
            if let Ok(address) = EmailAddress::parse(&format!("{local}@{dom}")) {
                return Ok(Some(UserRef { id, address }));
            }
        }
    }
    Ok(None)
}

/// Recursive resolution, collecting users into `out`.
fn resolve_into<'a, C: GenericClient>(
    c: &'a C,
    address: &'a EmailAddress,
    depth: usize,
    seen_groups: &'a mut HashSet<i64>,
    out: &'a mut Vec<UserRef>,
) -> Pin<Box<dyn Future<Output = Result<Resolution>> + Send + 'a>> {
    Box::pin(async move {
        let Some(domain) = domain_id(c, address.domain()).await? else {
            return Ok(Resolution::NotLocal);
        };
        let key = address.local_key();
        if let Some(user) = lookup_user(c, domain, &key).await? {
            out.push(user);
            return Ok(Resolution::Users(Vec::new()));
        }
        if let Some((gid, _)) = group_id(c, address).await? {
            if depth >= MAX_GROUP_DEPTH || !seen_groups.insert(gid) {
                return Ok(Resolution::Users(Vec::new()));
            }
            let s = c
                .prepare_cached("SELECT member FROM grp_member WHERE group_id = $1")
                .await
                .map_err(pg)?;
            let members: Vec<String> = c
                .query(&s, &[&gid])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for m in members {
                if let Ok(m) = EmailAddress::parse(&m) {
                    match resolve_into(c, &m, depth + 1, seen_groups, out).await? {
                        Resolution::Users(_) => {}
                        other => tracing::warn!(group = %address, member = %m, ?other,
                            "group member does not resolve; skipped"),
                    }
                }
            }
            return Ok(Resolution::Users(Vec::new()));
        }
        // First.Last@domain.
        let s = c
            .prepare_cached("SELECT id FROM users WHERE domain_id = $1 AND dotted_key = $2 LIMIT 2")
            .await
            .map_err(pg)?;
        let dotted: Vec<UserId> = c
            .query(&s, &[&domain, &key])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match dotted.as_slice() {
            [id] => {
                if let Some(user) = user_by_id(c, *id).await? {
                    out.push(UserRef {
                        id: user.id,
                        address: user.address,
                    });
                    return Ok(Resolution::Users(Vec::new()));
                }
            }
            [_, _, ..] => return Ok(Resolution::Ambiguous),
            [] => {}
        }
        // Sub-addressing: user+detail@domain reaches user@domain (RFC 5233 §1).
        if let Some((base, _)) = address.local().split_once('+')
            && !base.is_empty()
            && let Ok(base) = EmailAddress::parse(&format!("{base}@{}", address.domain()))
        {
            return resolve_into(c, &base, depth + 1, seen_groups, out).await;
        }
        Ok(Resolution::Unknown)
    })
}

/// What a user search matches on: the user's search key, or for a row
/// written without one (by a version before the key), the lower-cased
/// address and display name.
const SEARCH_KEY: &str =
    "coalesce(u.search_key, lower(u.local_key || '@' || d.name || chr(10) || u.display_name))";

/// A page of the users matching `filter`, and how many match (in the
/// caller's snapshot).
async fn find_users(
    c: &impl GenericClient,
    filter: &UserFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<User>, u64)> {
    let mut conds = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    if let Some(domain) = filter_domain(filter.domain.as_deref()) {
        params.push(Box::new(domain));
        conds.push(format!("d.name = ${}", params.len()));
    }
    if let Some(text) = search_text(filter.text.as_deref()) {
        params.push(Box::new(text));
        conds.push(format!("strpos({SEARCH_KEY}, ${}) > 0", params.len()));
    }
    let filter_sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let total: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM users u JOIN domain d ON d.id = u.domain_id {filter_sql}"
            ),
            &param_refs(&params),
        )
        .await
        .map_err(pg)?
        .get(0);
    let n = params.len();
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN domain d ON d.id = u.domain_id \
         JOIN post_office p ON p.id = u.post_office_id {filter_sql} \
         ORDER BY d.name COLLATE \"C\", u.local_key COLLATE \"C\" LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    params.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
    params.push(Box::new(i64::try_from(offset).unwrap_or(i64::MAX)));
    let rows = c.query(&sql, &param_refs(&params)).await.map_err(pg)?;
    let mut users = user_rows(&rows)?;
    load_aliases(c, &mut users).await?;
    Ok((users, total as u64))
}

/// Changes a user's details (inside a directory write).
async fn update_user(
    c: &impl GenericClient,
    address: &EmailAddress,
    update: &UserUpdate,
) -> Result<User> {
    let user = find_user(c, address)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
    let display_name = match &update.display_name {
        Some(n) if n.trim().is_empty() => {
            return Err(StoreError::Invalid("a user needs a display name".into()));
        }
        Some(n) => n.trim().to_string(),
        None => user.display_name.clone(),
    };
    let title = update.title.clone().map_or(user.title.clone(), detail);
    let department = update
        .department
        .clone()
        .map_or(user.department.clone(), detail);
    let phone = update.phone.clone().map_or(user.phone.clone(), detail);
    c.execute(
        "UPDATE users SET display_name = $2, title = $3, department = $4, phone = $5, \
         search_key = $6 WHERE id = $1",
        &[
            &user.id,
            &display_name,
            &title,
            &department,
            &phone,
            &search_key(&user.address, &display_name),
        ],
    )
    .await
    .map_err(pg)?;
    user_by_id(c, user.id)
        .await?
        .ok_or_else(|| StoreError::Backend("user vanished".into()))
}

#[async_trait]
impl Directory for PgStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = valid_domain_name(name)?;
        write_directory!(self, |tx| {
            if domain_id(&tx, &name).await?.is_some() {
                return Err(StoreError::Exists(format!("domain {name}")));
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO domain (name, created) VALUES ($1, $2) RETURNING id",
                    &[&name, &now()],
                )
                .await
                .map_err(pg)?
                .get(0);
            tx.execute(
                "INSERT INTO post_office (domain_id, name) VALUES ($1, $2)",
                &[&id, &DEFAULT_POST_OFFICE],
            )
            .await
            .map_err(pg)?;
            Ok(Domain {
                id,
                name: name.clone(),
                post_offices: vec![DEFAULT_POST_OFFICE.into()],
                users: 0,
            })
        })
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT d.id, d.name, \
                   ARRAY(SELECT name FROM post_office WHERE domain_id = d.id ORDER BY id), \
                   (SELECT count(*) FROM users WHERE domain_id = d.id) \
                 FROM domain d ORDER BY d.name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| Domain {
                id: r.get(0),
                name: r.get(1),
                post_offices: r.get(2),
                users: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.trim().to_lowercase();
        write_directory!(self, |tx| {
            let id = require_domain(&tx, &name).await?;
            for (table, what) in [("users", "users"), ("alias", "aliases"), ("grp", "groups")] {
                let n: i64 = tx
                    .query_one(
                        &format!("SELECT count(*) FROM {table} WHERE domain_id = $1"),
                        &[&id],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                if n > 0 {
                    return Err(StoreError::Invalid(format!(
                        "domain {name} still has {n} {what}; remove them first"
                    )));
                }
            }
            tx.execute("DELETE FROM domain WHERE id = $1", &[&id])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.trim_end_matches('.').to_lowercase();
        let c = self.client().await?;
        Ok(domain_id(&c, &domain).await?.is_some())
    }

    async fn add_user(&self, new: NewUser) -> Result<User> {
        if new.display_name.trim().is_empty() {
            return Err(StoreError::Invalid("a user needs a display name".into()));
        }
        let address = &new.address;
        write_directory!(self, |tx| {
            let domain = require_domain(&tx, address.domain()).await?;
            ensure_free(&tx, domain, address).await?;
            let po: i64 = match &new.post_office {
                Some(name) => {
                    tx.execute(
                        "INSERT INTO post_office (domain_id, name) VALUES ($1, $2) \
                         ON CONFLICT (domain_id, name) DO NOTHING",
                        &[&domain, name],
                    )
                    .await
                    .map_err(pg)?;
                    tx.query_one(
                        "SELECT id FROM post_office WHERE domain_id = $1 AND name = $2",
                        &[&domain, name],
                    )
                    .await
                    .map_err(pg)?
                    .get(0)
                }
                None => tx
                    .query_one(
                        "SELECT id FROM post_office WHERE domain_id = $1 ORDER BY id LIMIT 1",
                        &[&domain],
                    )
                    .await
                    .map_err(pg)?
                    .get(0),
            };
            let id: UserId = tx
                .query_one(
                    "INSERT INTO users (domain_id, post_office_id, local_part, local_key, display_name, \
                       given_name, surname, title, department, phone, password_hash, dotted_key, created, \
                       search_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                    &[
                        &domain,
                        &po,
                        &address.local(),
                        &address.local_key(),
                        &new.display_name.trim(),
                        &new.given_name,
                        &new.surname,
                        &new.title,
                        &new.department,
                        &new.phone,
                        &new.password_hash,
                        &dotted_key(new.given_name.as_deref(), new.surname.as_deref()),
                        &now(),
                        &search_key(address, &new.display_name),
                    ],
                )
                .await
                .map_err(pg)?
                .get(0);
            for role in FolderRole::ALL {
                let name = role.default_name();
                insert_folder(&tx, id, name, Some(role.as_str())).await?;
                // The system folders start subscribed, as clients expect to see them.
                tx.execute(
                    "INSERT INTO subscription (user_id, path_key, path) VALUES ($1, $2, $3)",
                    &[&id, &name.to_lowercase(), &name],
                )
                .await
                .map_err(pg)?;
            }
            user_by_id(&tx, id)
                .await?
                .ok_or_else(|| StoreError::Backend("user vanished".into()))
        })
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>> {
        let domain = domain.map(|d| d.to_lowercase());
        let c = self.client().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN domain d ON d.id = u.domain_id \
             JOIN post_office p ON p.id = u.post_office_id \
             WHERE $1::text IS NULL OR d.name = $1 \
             ORDER BY d.name COLLATE \"C\", u.local_key COLLATE \"C\""
        );
        let rows = c.query(&sql, &[&domain]).await.map_err(pg)?;
        let mut users = user_rows(&rows)?;
        load_aliases(&c, &mut users).await?;
        Ok(users)
    }

    async fn directory_generation(&self) -> Result<u64> {
        generation(self).await
    }

    async fn users_page(&self, after: UserId, limit: usize) -> Result<Vec<User>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN domain d ON d.id = u.domain_id \
             JOIN post_office p ON p.id = u.post_office_id \
             WHERE u.id > $1 ORDER BY u.id LIMIT $2"
        );
        let s = c.prepare_cached(&sql).await.map_err(pg)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c.query(&s, &[&after, &limit]).await.map_err(pg)?;
        let mut users = user_rows(&rows)?;
        load_aliases(&c, &mut users).await?;
        Ok(users)
    }

    async fn user(&self, address: &EmailAddress) -> Result<Option<User>> {
        let c = self.client().await?;
        find_user(&c, address).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let c = self.client().await?;
        user_by_id(&c, id).await
    }

    async fn remove_user(&self, address: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let user = find_user(&tx, address)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
            if user.address != *address && user.address.key() != address.key() {
                return Err(StoreError::Invalid(format!(
                    "{address} is an alias of {}; remove the alias or the user by its address",
                    user.address
                )));
            }
            let mut keys = vec![user.address.key()];
            keys.extend(user.aliases.iter().map(EmailAddress::key));
            tx.execute("DELETE FROM grp_member WHERE member = ANY($1)", &[&keys])
                .await
                .map_err(pg)?;
            // The messages the user's items and calendar objects refer to:
            // those nothing else refers to go too (their blobs cascade). Only
            // these are looked at, not every message as the embedded store
            // does: here every other path releases its messages as it goes
            // (`release_message`), and a scan of the whole table at every
            // removal would cost as much as the store is large.
            let messages: Vec<i64> = tx
                .query(
                    "SELECT i.message_id FROM item i JOIN folder f ON f.id = i.folder_id \
                     WHERE f.user_id = $1 \
                     UNION SELECT message_id FROM cal_object WHERE user_id = $1",
                    &[&user.id],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.execute("DELETE FROM users WHERE id = $1", &[&user.id])
                .await
                .map_err(pg)?;
            super::messages::release_messages(&tx, &messages).await?;
            Ok(())
        })
    }

    async fn set_password_hash(&self, address: &EmailAddress, hash: Option<String>) -> Result<()> {
        write_directory!(self, |tx| {
            let user = find_user(&tx, address)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
            tx.execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &[&hash, &user.id],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn credentials(&self, login: &EmailAddress) -> Result<Option<(User, Option<String>)>> {
        let c = self.client().await?;
        let Some(user) = find_user(&c, login).await? else {
            return Ok(None);
        };
        let row = c
            .query_opt("SELECT password_hash FROM users WHERE id = $1", &[&user.id])
            .await
            .map_err(pg)?;
        // A user removed between the two reads has no credentials.
        Ok(row.map(|r| (user, r.get(0))))
    }

    async fn add_alias(&self, alias: &EmailAddress, target: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let domain = require_domain(&tx, alias.domain()).await?;
            ensure_free(&tx, domain, alias).await?;
            let user = find_user(&tx, target)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {target}")))?;
            tx.execute(
                "INSERT INTO alias (domain_id, local_part, local_key, user_id) VALUES ($1, $2, $3, $4)",
                &[&domain, &alias.local(), &alias.local_key(), &user.id],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn remove_alias(&self, alias: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let n = tx
                .execute(
                    "DELETE FROM alias WHERE local_key = $2 AND domain_id = \
                       (SELECT id FROM domain WHERE name = $1)",
                    &[&alias.domain(), &alias.local_key()],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alias {alias}")));
            }
            tx.execute("DELETE FROM grp_member WHERE member = $1", &[&alias.key()])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    async fn add_group(&self, address: &EmailAddress, display_name: &str) -> Result<Group> {
        let display_name = display_name.trim().to_string();
        write_directory!(self, |tx| {
            let domain = require_domain(&tx, address.domain()).await?;
            ensure_free(&tx, domain, address).await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO grp (domain_id, local_part, local_key, display_name) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[
                        &domain,
                        &address.local(),
                        &address.local_key(),
                        &display_name,
                    ],
                )
                .await
                .map_err(pg)?
                .get(0);
            Ok(Group {
                id,
                address: address.clone(),
                display_name: display_name.clone(),
                members: Vec::new(),
            })
        })
    }

    async fn remove_group(&self, address: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let (gid, _) = group_id(&tx, address)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("group {address}")))?;
            tx.execute("DELETE FROM grp WHERE id = $1", &[&gid])
                .await
                .map_err(pg)?;
            tx.execute(
                "DELETE FROM grp_member WHERE member = $1",
                &[&address.key()],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn list_groups(&self, domain: Option<&str>) -> Result<Vec<Group>> {
        let domain = domain.map(|d| d.to_lowercase());
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT g.id, g.local_part, d.name, g.display_name, m.member \
                 FROM grp g JOIN domain d ON d.id = g.domain_id \
                 LEFT JOIN grp_member m ON m.group_id = g.id \
                 WHERE $1::text IS NULL OR d.name = $1 \
                 ORDER BY d.name COLLATE \"C\", g.local_key COLLATE \"C\", m.member COLLATE \"C\"",
                &[&domain],
            )
            .await
            .map_err(pg)?;
        let mut groups: BTreeMap<i64, Group> = BTreeMap::new();
        let mut order = Vec::new();
        for r in &rows {
            let (id, local, dom, name, member): (i64, String, String, String, Option<String>) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let g = groups.entry(id).or_insert_with(|| {
                order.push(id);
                Group {
                    id,
                    address: EmailAddress::parse(&format!("{local}@{dom}"))
                        .unwrap_or_else(|_| EmailAddress::parse("invalid@invalid").unwrap()),
                    display_name: name,
                    members: Vec::new(),
                }
            });
            if let Some(m) = member.and_then(|m| EmailAddress::parse(&m).ok()) {
                g.members.push(m);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| groups.remove(&id))
            .collect())
    }

    async fn add_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let (gid, _) = group_id(&tx, group)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("group {group}")))?;
            if member.key() == group.key() {
                return Err(StoreError::Invalid("a group cannot contain itself".into()));
            }
            // Members must be known here: a typo would otherwise drop mail silently.
            let known =
                find_user(&tx, member).await?.is_some() || group_id(&tx, member).await?.is_some();
            if !known {
                return Err(StoreError::NotFound(format!(
                    "user or group {member} (group members must be local)"
                )));
            }
            let n = tx
                .execute(
                    "INSERT INTO grp_member (group_id, member) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&gid, &member.key()],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::Exists(format!("member {member} of {group}")));
            }
            Ok(())
        })
    }

    async fn remove_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        write_directory!(self, |tx| {
            let (gid, _) = group_id(&tx, group)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("group {group}")))?;
            let n = tx
                .execute(
                    "DELETE FROM grp_member WHERE group_id = $1 AND member = $2",
                    &[&gid, &member.key()],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {member} of {group}")));
            }
            Ok(())
        })
    }

    async fn find_users(
        &self,
        filter: UserFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<User>, u64)> {
        self.read_snapshot(async |tx| find_users(tx, &filter, offset, limit).await)
            .await
    }

    async fn update_user(&self, address: &EmailAddress, update: UserUpdate) -> Result<User> {
        write_directory!(self, |tx| update_user(&tx, address, &update).await)
    }

    async fn set_console_admin(&self, user: &EmailAddress, admin: bool) -> Result<()> {
        write_directory!(self, |tx| {
            let found = find_user(&tx, user)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
            let sql = if admin {
                "INSERT INTO console_admin (user_id) VALUES ($1) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM console_admin WHERE user_id = $1"
            };
            tx.execute(sql, &[&found.id]).await.map_err(pg)?;
            Ok(())
        })
    }

    async fn console_admins(&self) -> Result<Vec<EmailAddress>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT u.local_part, d.name FROM console_admin a \
                 JOIN users u ON u.id = a.user_id JOIN domain d ON d.id = u.domain_id \
                 ORDER BY d.name COLLATE \"C\", u.local_key COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                EmailAddress::parse(&format!(
                    "{}@{}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(1)
                ))
                .ok()
            })
            .collect())
    }

    async fn is_console_admin(&self, user: UserId) -> Result<bool> {
        let c = self.client().await?;
        let s = c
            .prepare_cached("SELECT 1 FROM console_admin WHERE user_id = $1")
            .await
            .map_err(pg)?;
        Ok(c.query_opt(&s, &[&user]).await.map_err(pg)?.is_some())
    }

    async fn resolve(&self, address: &EmailAddress) -> Result<Resolution> {
        let key = address.key();
        if let Some(users) = self.inner.resolutions.get(&key) {
            return Ok(Resolution::Users(users));
        }
        let c = self.client().await?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let resolved = match resolve_into(&c, address, 0, &mut seen, &mut out).await? {
            Resolution::Users(_) => {
                let mut ids = HashSet::new();
                out.retain(|u| ids.insert(u.id));
                if out.is_empty() {
                    // A group with no deliverable member.
                    Resolution::Unknown
                } else {
                    Resolution::Users(out)
                }
            }
            other => other,
        };
        if let Resolution::Users(users) = &resolved {
            self.inner.resolutions.put(key, users.clone());
        }
        Ok(resolved)
    }
}
