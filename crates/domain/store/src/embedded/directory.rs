//! [`Directory`] for the embedded store.
use super::messages::in_read_tx;
use super::{EmbeddedStore, backend, now};
use crate::rules::{
    DEFAULT_POST_OFFICE, MAX_GROUP_DEPTH, detail, dotted_key, filter_domain, search_key,
    search_text, valid_domain_name,
};
use crate::{
    Directory, Domain, Group, NewUser, Resolution, Result, StoreError, User, UserFilter, UserRef,
    UserUpdate,
};
use async_trait::async_trait;
use postgate_types::{EmailAddress, FolderRole, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};

const USER_COLUMNS: &str = "u.id, u.local_part, d.name, p.name, u.display_name, u.given_name, \
     u.surname, u.title, u.department, u.phone, u.password_hash IS NOT NULL";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let local: String = r.get(1)?;
    let domain: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        address: EmailAddress::parse(&format!("{local}@{domain}"))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
        post_office: r.get(3)?,
        display_name: r.get(4)?,
        given_name: r.get(5)?,
        surname: r.get(6)?,
        title: r.get(7)?,
        department: r.get(8)?,
        phone: r.get(9)?,
        aliases: Vec::new(),
        has_password: r.get(10)?,
    })
}

fn domain_id(conn: &Connection, name: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM domain WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)
}

fn require_domain(conn: &Connection, name: &str) -> Result<i64> {
    domain_id(conn, name)?.ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
}

/// Which kind of directory entry holds a local part, if any.
fn taken_by(conn: &Connection, domain: i64, key: &str) -> Result<Option<&'static str>> {
    for (table, what) in [("user", "user"), ("alias", "alias"), ("grp", "group")] {
        let hit: Option<i64> = conn
            .query_row(
                &format!("SELECT 1 FROM {table} WHERE domain_id = ?1 AND local_key = ?2"),
                params![domain, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if hit.is_some() {
            return Ok(Some(what));
        }
    }
    Ok(None)
}

fn ensure_free(conn: &Connection, domain: i64, address: &EmailAddress) -> Result<()> {
    match taken_by(conn, domain, &address.local_key())? {
        Some(what) => Err(StoreError::Exists(format!("{what} {address}"))),
        None => Ok(()),
    }
}

fn load_aliases(conn: &Connection, users: &mut [User]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.local_part, d.name FROM alias a JOIN domain d ON d.id = a.domain_id \
             WHERE a.user_id = ?1 ORDER BY d.name, a.local_key",
        )
        .map_err(backend)?;
    for u in users {
        u.aliases = stmt
            .query_map([u.id], |r| {
                Ok(format!(
                    "{}@{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .map_err(backend)?
            .filter_map(|a| a.ok().and_then(|a| EmailAddress::parse(&a).ok()))
            .collect();
    }
    Ok(())
}

/// The user whose primary address or alias is `address`.
fn find_user(conn: &Connection, address: &EmailAddress) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM user u JOIN domain d ON d.id = u.domain_id \
         JOIN post_office p ON p.id = u.post_office_id \
         WHERE d.name = ?1 AND (u.local_key = ?2 OR u.id IN \
           (SELECT a.user_id FROM alias a WHERE a.domain_id = d.id AND a.local_key = ?2))"
    );
    let user = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![address.domain(), address.local_key()], user_row)
                .optional()
        })
        .map_err(backend)?;
    // An alias may live in another local domain than its user.
    let user = match user {
        Some(u) => Some(u),
        None => {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM alias a JOIN domain ad ON ad.id = a.domain_id \
                 JOIN user u ON u.id = a.user_id JOIN domain d ON d.id = u.domain_id \
                 JOIN post_office p ON p.id = u.post_office_id \
                 WHERE ad.name = ?1 AND a.local_key = ?2"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![address.domain(), address.local_key()], user_row)
                        .optional()
                })
                .map_err(backend)?
        }
    };
    let mut users: Vec<User> = user.into_iter().collect();
    load_aliases(conn, &mut users)?;
    Ok(users.pop())
}

fn user_by_id(conn: &Connection, id: UserId) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM user u JOIN domain d ON d.id = u.domain_id \
         JOIN post_office p ON p.id = u.post_office_id WHERE u.id = ?1"
    );
    let mut users: Vec<User> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id], user_row).optional())
        .map_err(backend)?
        .into_iter()
        .collect();
    load_aliases(conn, &mut users)?;
    Ok(users.pop())
}

fn group_id(conn: &Connection, address: &EmailAddress) -> Result<Option<(i64, String)>> {
    conn.prepare_cached(
        "SELECT g.id, g.display_name FROM grp g JOIN domain d ON d.id = g.domain_id \
         WHERE d.name = ?1 AND g.local_key = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![address.domain(), address.local_key()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
    })
    .map_err(backend)
}

/// Bumps the directory generation: every directory write does, in its own
/// transaction, so that every process's resolution cache notices.
pub(crate) fn bump_generation(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('directory_generation', 1) \
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(backend)?;
    Ok(())
}

/// The current directory generation.
pub(crate) fn generation(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'directory_generation'")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|v| v.unwrap_or(0) as u64)
        .map_err(backend)
}

/// The next UIDVALIDITY: the current time in seconds, but always greater than any
/// given before, so a folder deleted and re-created never repeats one (RFC 9051 §2.3.1.1).
pub(crate) fn next_uid_validity(conn: &Connection) -> Result<u32> {
    let last: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'uid_validity'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?
        .unwrap_or(0);
    let next = (now() & 0xffff_ffff).max(last + 1) as u32;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('uid_validity', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [next as i64],
    )
    .map_err(backend)?;
    Ok(next)
}

/// The user a local part reaches directly (primary address or alias): the lean
/// lookup behind resolution, one indexed query each, no alias lists loaded.
fn lookup_user(conn: &Connection, domain: i64, key: &str) -> Result<Option<UserRef>> {
    const BY_USER: &str = "SELECT u.id, u.local_part, d.name FROM user u \
         JOIN domain d ON d.id = u.domain_id WHERE u.domain_id = ?1 AND u.local_key = ?2";
    const BY_ALIAS: &str = "SELECT u.id, u.local_part, d.name FROM alias a \
         JOIN user u ON u.id = a.user_id JOIN domain d ON d.id = u.domain_id \
         WHERE a.domain_id = ?1 AND a.local_key = ?2";
    for sql in [BY_USER, BY_ALIAS] {
        let row: Option<(UserId, String, String)> = conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![domain, key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(backend)?;
        if let Some((id, local, dom)) = row
            && let Ok(address) = EmailAddress::parse(&format!("{local}@{dom}"))
        {
            return Ok(Some(UserRef { id, address }));
        }
    }
    Ok(None)
}

/// Recursive resolution, collecting users into `out`.
fn resolve_into(
    conn: &Connection,
    address: &EmailAddress,
    depth: usize,
    seen_groups: &mut HashSet<i64>,
    out: &mut Vec<UserRef>,
) -> Result<Resolution> {
    let Some(domain) = domain_id(conn, address.domain())? else {
        return Ok(Resolution::NotLocal);
    };
    let key = address.local_key();
    if let Some(user) = lookup_user(conn, domain, &key)? {
        out.push(user);
        return Ok(Resolution::Users(Vec::new()));
    }
    if let Some((gid, _)) = group_id(conn, address)? {
        if depth >= MAX_GROUP_DEPTH || !seen_groups.insert(gid) {
            return Ok(Resolution::Users(Vec::new()));
        }
        let members: Vec<String> = conn
            .prepare_cached("SELECT member FROM grp_member WHERE group_id = ?1")
            .and_then(|mut s| {
                s.query_map([gid], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(backend)?;
        for m in members {
            if let Ok(m) = EmailAddress::parse(&m) {
                match resolve_into(conn, &m, depth + 1, seen_groups, out)? {
                    Resolution::Users(_) => {}
                    other => tracing::warn!(group = %address, member = %m, ?other,
                        "group member does not resolve; skipped"),
                }
            }
        }
        return Ok(Resolution::Users(Vec::new()));
    }
    // First.Last@domain.
    let dotted: Vec<UserId> = conn
        .prepare_cached("SELECT id FROM user WHERE domain_id = ?1 AND dotted_key = ?2 LIMIT 2")
        .and_then(|mut s| {
            s.query_map(params![domain, key], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<UserId>>>()
        })
        .map_err(backend)?;
    match dotted.as_slice() {
        [id] => {
            if let Some(user) = user_by_id(conn, *id)? {
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
        return resolve_into(conn, &base, depth + 1, seen_groups, out);
    }
    Ok(Resolution::Unknown)
}

/// What a user search matches on: the user's search key, or for a row
/// written without one (by a version before the key), the ASCII-folded
/// address and display name.
const SEARCH_KEY: &str =
    "coalesce(u.search_key, lower(u.local_key || '@' || d.name || char(10) || u.display_name))";

/// A page of the users matching `filter`, and how many match, in one snapshot.
fn find_users(
    conn: &Connection,
    filter: &UserFilter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<User>, u64)> {
    // The statement holds only the conditions given, so that the planner
    // (which does not look at bound values, see schema::configure) can walk
    // a domain's users by its index when a domain is given.
    let mut conds = Vec::new();
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(domain) = filter_domain(filter.domain.as_deref()) {
        params.push(domain.into());
        conds.push(format!("d.name = ?{}", params.len()));
    }
    if let Some(text) = search_text(filter.text.as_deref()) {
        params.push(text.into());
        conds.push(format!("instr({SEARCH_KEY}, ?{}) > 0", params.len()));
    }
    let filter_sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    in_read_tx(conn, || {
        // Every user has its domain: without conditions, the users alone
        // are counted (in their smallest index).
        let count_sql = if conds.is_empty() {
            "SELECT count(*) FROM user".to_string()
        } else {
            format!("SELECT count(*) FROM user u JOIN domain d ON d.id = u.domain_id {filter_sql}")
        };
        let total: i64 = conn
            .prepare_cached(&count_sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0)))
            .map_err(backend)?;
        let n = params.len();
        // Domains first (CROSS JOIN fixes SQLite's join order): the users
        // then come in the order asked for, domain by domain through the
        // (domain, local part) index, and a page stops once it is full,
        // rather than every matching user being sorted for it.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM domain d CROSS JOIN user u ON u.domain_id = d.id \
             JOIN post_office p ON p.id = u.post_office_id {filter_sql} \
             ORDER BY d.name, u.local_key LIMIT ?{} OFFSET ?{}",
            n + 1,
            n + 2
        );
        let mut page_params = params.clone();
        page_params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        page_params.push(i64::try_from(offset).unwrap_or(i64::MAX).into());
        let mut users: Vec<User> = conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(page_params.iter()), user_row)?
                    .collect()
            })
            .map_err(backend)?;
        load_aliases(conn, &mut users)?;
        Ok((users, total as u64))
    })
}

/// Changes a user's details (inside a directory write).
fn update_user(conn: &Connection, address: &EmailAddress, update: UserUpdate) -> Result<User> {
    let user =
        find_user(conn, address)?.ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
    let display_name = match update.display_name {
        Some(n) if n.trim().is_empty() => {
            return Err(StoreError::Invalid("a user needs a display name".into()));
        }
        Some(n) => n.trim().to_string(),
        None => user.display_name.clone(),
    };
    let title = update.title.map_or(user.title.clone(), detail);
    let department = update.department.map_or(user.department.clone(), detail);
    let phone = update.phone.map_or(user.phone.clone(), detail);
    conn.prepare_cached(
        "UPDATE user SET display_name = ?2, title = ?3, department = ?4, phone = ?5, \
         search_key = ?6 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            user.id,
            display_name,
            title,
            department,
            phone,
            search_key(&user.address, &display_name)
        ])
    })
    .map_err(backend)?;
    user_by_id(conn, user.id)?.ok_or_else(|| StoreError::Backend("user vanished".into()))
}

/// Grants or revokes console administration (inside a directory write).
fn set_console_admin(conn: &Connection, address: &EmailAddress, admin: bool) -> Result<()> {
    let user =
        find_user(conn, address)?.ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
    let sql = if admin {
        "INSERT INTO console_admin (user_id) VALUES (?1) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM console_admin WHERE user_id = ?1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([user.id]))
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl Directory for EmbeddedStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = valid_domain_name(name)?;
        self.write_directory(move |conn| {
            if domain_id(conn, &name)?.is_some() {
                return Err(StoreError::Exists(format!("domain {name}")));
            }
            conn.execute(
                "INSERT INTO domain (name, created) VALUES (?1, ?2)",
                params![name, now()],
            )
            .map_err(backend)?;
            let id = conn.last_insert_rowid();
            conn.execute(
                "INSERT INTO post_office (domain_id, name) VALUES (?1, ?2)",
                params![id, DEFAULT_POST_OFFICE],
            )
            .map_err(backend)?;
            Ok(Domain {
                id,
                name,
                post_offices: vec![DEFAULT_POST_OFFICE.into()],
                users: 0,
            })
        })
        .await
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT d.id, d.name, \
                       (SELECT group_concat(name, char(10)) FROM post_office WHERE domain_id = d.id), \
                       (SELECT count(*) FROM user WHERE domain_id = d.id) \
                     FROM domain d ORDER BY d.name",
                )
                .map_err(backend)?;
            stmt.query_map([], |r| {
                let pos: Option<String> = r.get(2)?;
                Ok(Domain {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    post_offices: pos
                        .map(|p| p.lines().map(str::to_string).collect())
                        .unwrap_or_default(),
                    users: r.get::<_, i64>(3)? as u64,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(backend)
        })
        .await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.trim().to_lowercase();
        self.write_directory(move |conn| {
            let id = require_domain(conn, &name)?;
            for (table, what) in [("user", "users"), ("alias", "aliases"), ("grp", "groups")] {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM {table} WHERE domain_id = ?1"),
                        [id],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if n > 0 {
                    return Err(StoreError::Invalid(format!(
                        "domain {name} still has {n} {what}; remove them first"
                    )));
                }
            }
            conn.execute("DELETE FROM domain WHERE id = ?1", [id])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.trim_end_matches('.').to_lowercase();
        self.read(move |conn| Ok(domain_id(conn, &domain)?.is_some()))
            .await
    }

    async fn add_user(&self, new: NewUser) -> Result<User> {
        if new.display_name.trim().is_empty() {
            return Err(StoreError::Invalid("a user needs a display name".into()));
        }
        self.write_directory(move |conn| {
            let address = &new.address;
            let domain = require_domain(conn, address.domain())?;
            ensure_free(conn, domain, address)?;
            let po_name = new.post_office.clone();
            let po: i64 = match &po_name {
                Some(name) => {
                    conn.execute(
                        "INSERT INTO post_office (domain_id, name) VALUES (?1, ?2) \
                         ON CONFLICT (domain_id, name) DO NOTHING",
                        params![domain, name],
                    )
                    .map_err(backend)?;
                    conn.query_row(
                        "SELECT id FROM post_office WHERE domain_id = ?1 AND name = ?2",
                        params![domain, name],
                        |r| r.get(0),
                    )
                    .map_err(backend)?
                }
                None => conn
                    .query_row(
                        "SELECT id FROM post_office WHERE domain_id = ?1 ORDER BY id LIMIT 1",
                        [domain],
                        |r| r.get(0),
                    )
                    .map_err(backend)?,
            };
            conn.execute(
                "INSERT INTO user (domain_id, post_office_id, local_part, local_key, display_name, \
                   given_name, surname, title, department, phone, password_hash, dotted_key, created, \
                   search_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    domain,
                    po,
                    address.local(),
                    address.local_key(),
                    new.display_name.trim(),
                    new.given_name,
                    new.surname,
                    new.title,
                    new.department,
                    new.phone,
                    new.password_hash,
                    dotted_key(new.given_name.as_deref(), new.surname.as_deref()),
                    now(),
                    search_key(address, &new.display_name),
                ],
            )
            .map_err(backend)?;
            let id = conn.last_insert_rowid();
            for role in FolderRole::ALL {
                let name = role.default_name();
                conn.execute(
                    "INSERT INTO folder (user_id, path, path_key, role, uid_validity) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, name, name.to_lowercase(), role.as_str(), next_uid_validity(conn)?],
                )
                .map_err(backend)?;
                // The system folders start subscribed, as clients expect to see them.
                conn.execute(
                    "INSERT INTO subscription (user_id, path_key, path) VALUES (?1, ?2, ?3)",
                    params![id, name.to_lowercase(), name],
                )
                .map_err(backend)?;
            }
            user_by_id(conn, id)?.ok_or_else(|| StoreError::Backend("user vanished".into()))
        })
        .await
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>> {
        let domain = domain.map(|d| d.to_lowercase());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM user u JOIN domain d ON d.id = u.domain_id \
                 JOIN post_office p ON p.id = u.post_office_id \
                 WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, u.local_key"
            );
            let mut users: Vec<User> = conn
                .prepare(&sql)
                .and_then(|mut s| s.query_map([&domain], user_row)?.collect())
                .map_err(backend)?;
            load_aliases(conn, &mut users)?;
            Ok(users)
        })
        .await
    }

    async fn directory_generation(&self) -> Result<u64> {
        self.read(generation).await
    }

    async fn users_page(&self, after: UserId, limit: usize) -> Result<Vec<User>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM user u JOIN domain d ON d.id = u.domain_id \
                 JOIN post_office p ON p.id = u.post_office_id \
                 WHERE u.id > ?1 ORDER BY u.id LIMIT ?2"
            );
            let mut users: Vec<User> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(rusqlite::params![after, limit as i64], user_row)?
                        .collect()
                })
                .map_err(backend)?;
            load_aliases(conn, &mut users)?;
            Ok(users)
        })
        .await
    }

    async fn user(&self, address: &EmailAddress) -> Result<Option<User>> {
        let address = address.clone();
        self.read(move |conn| find_user(conn, &address)).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read(move |conn| user_by_id(conn, id)).await
    }

    async fn remove_user(&self, address: &EmailAddress) -> Result<()> {
        let address = address.clone();
        self.write_directory(move |conn| {
            let user = find_user(conn, &address)?
                .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
            if user.address != address && user.address.key() != address.key() {
                return Err(StoreError::Invalid(format!(
                    "{address} is an alias of {}; remove the alias or the user by its address",
                    user.address
                )));
            }
            let mut keys = vec![user.address.key()];
            keys.extend(user.aliases.iter().map(EmailAddress::key));
            for key in keys {
                conn.execute("DELETE FROM grp_member WHERE member = ?1", [key])
                    .map_err(backend)?;
            }
            conn.execute("DELETE FROM user WHERE id = ?1", [user.id])
                .map_err(backend)?;
            // Messages no item refers to any more go too (their blobs cascade).
            conn.execute(
                "DELETE FROM message WHERE NOT EXISTS \
                   (SELECT 1 FROM item WHERE item.message_id = message.id) \
                   AND NOT EXISTS (SELECT 1 FROM queue WHERE queue.message_id = message.id)",
                [],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn set_password_hash(&self, address: &EmailAddress, hash: Option<String>) -> Result<()> {
        let address = address.clone();
        self.write_directory(move |conn| {
            let user = find_user(conn, &address)?
                .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
            conn.execute(
                "UPDATE user SET password_hash = ?1 WHERE id = ?2",
                params![hash, user.id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn credentials(&self, login: &EmailAddress) -> Result<Option<(User, Option<String>)>> {
        let login = login.clone();
        self.read(move |conn| {
            let Some(user) = find_user(conn, &login)? else {
                return Ok(None);
            };
            let hash: Option<String> = conn
                .query_row(
                    "SELECT password_hash FROM user WHERE id = ?1",
                    [user.id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(Some((user, hash)))
        })
        .await
    }

    async fn add_alias(&self, alias: &EmailAddress, target: &EmailAddress) -> Result<()> {
        let (alias, target) = (alias.clone(), target.clone());
        self.write_directory(move |conn| {
            let domain = require_domain(conn, alias.domain())?;
            ensure_free(conn, domain, &alias)?;
            let user = find_user(conn, &target)?
                .ok_or_else(|| StoreError::NotFound(format!("user {target}")))?;
            conn.execute(
                "INSERT INTO alias (domain_id, local_part, local_key, user_id) VALUES (?1, ?2, ?3, ?4)",
                params![domain, alias.local(), alias.local_key(), user.id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn remove_alias(&self, alias: &EmailAddress) -> Result<()> {
        let alias = alias.clone();
        self.write_directory(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM alias WHERE local_key = ?2 AND domain_id = \
                       (SELECT id FROM domain WHERE name = ?1)",
                    params![alias.domain(), alias.local_key()],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alias {alias}")));
            }
            conn.execute("DELETE FROM grp_member WHERE member = ?1", [alias.key()])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn add_group(&self, address: &EmailAddress, display_name: &str) -> Result<Group> {
        let address = address.clone();
        let display_name = display_name.trim().to_string();
        self.write_directory(move |conn| {
            let domain = require_domain(conn, address.domain())?;
            ensure_free(conn, domain, &address)?;
            conn.execute(
                "INSERT INTO grp (domain_id, local_part, local_key, display_name) VALUES (?1, ?2, ?3, ?4)",
                params![domain, address.local(), address.local_key(), display_name],
            )
            .map_err(backend)?;
            Ok(Group {
                id: conn.last_insert_rowid(),
                address,
                display_name,
                members: Vec::new(),
            })
        })
        .await
    }

    async fn remove_group(&self, address: &EmailAddress) -> Result<()> {
        let address = address.clone();
        self.write_directory(move |conn| {
            let (gid, _) = group_id(conn, &address)?
                .ok_or_else(|| StoreError::NotFound(format!("group {address}")))?;
            conn.execute("DELETE FROM grp WHERE id = ?1", [gid])
                .map_err(backend)?;
            conn.execute("DELETE FROM grp_member WHERE member = ?1", [address.key()])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_groups(&self, domain: Option<&str>) -> Result<Vec<Group>> {
        let domain = domain.map(|d| d.to_lowercase());
        self.read(move |conn| {
            let mut groups: BTreeMap<i64, Group> = BTreeMap::new();
            let mut stmt = conn
                .prepare(
                    "SELECT g.id, g.local_part, d.name, g.display_name, m.member \
                     FROM grp g JOIN domain d ON d.id = g.domain_id \
                     LEFT JOIN grp_member m ON m.group_id = g.id \
                     WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, g.local_key, m.member",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([&domain], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(backend)?;
            let mut order = Vec::new();
            for row in rows {
                let (id, local, dom, name, member) = row.map_err(backend)?;
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
        })
        .await
    }

    async fn add_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        let (group, member) = (group.clone(), member.clone());
        self.write_directory(move |conn| {
            let (gid, _) = group_id(conn, &group)?
                .ok_or_else(|| StoreError::NotFound(format!("group {group}")))?;
            if member.key() == group.key() {
                return Err(StoreError::Invalid("a group cannot contain itself".into()));
            }
            // Members must be known here: a typo would otherwise drop mail silently.
            let known = find_user(conn, &member)?.is_some() || group_id(conn, &member)?.is_some();
            if !known {
                return Err(StoreError::NotFound(format!(
                    "user or group {member} (group members must be local)"
                )));
            }
            let n = conn
                .execute(
                    "INSERT INTO grp_member (group_id, member) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![gid, member.key()],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Exists(format!("member {member} of {group}")));
            }
            Ok(())
        })
        .await
    }

    async fn remove_group_member(&self, group: &EmailAddress, member: &EmailAddress) -> Result<()> {
        let (group, member) = (group.clone(), member.clone());
        self.write_directory(move |conn| {
            let (gid, _) = group_id(conn, &group)?
                .ok_or_else(|| StoreError::NotFound(format!("group {group}")))?;
            let n = conn
                .execute(
                    "DELETE FROM grp_member WHERE group_id = ?1 AND member = ?2",
                    params![gid, member.key()],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {member} of {group}")));
            }
            Ok(())
        })
        .await
    }

    async fn find_users(
        &self,
        filter: UserFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<User>, u64)> {
        self.read(move |conn| find_users(conn, &filter, offset, limit))
            .await
    }

    async fn update_user(&self, address: &EmailAddress, update: UserUpdate) -> Result<User> {
        let address = address.clone();
        self.write_directory(move |conn| update_user(conn, &address, update))
            .await
    }

    async fn set_console_admin(&self, user: &EmailAddress, admin: bool) -> Result<()> {
        let user = user.clone();
        self.write_directory(move |conn| set_console_admin(conn, &user, admin))
            .await
    }

    async fn console_admins(&self) -> Result<Vec<EmailAddress>> {
        self.read(|conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached(
                    "SELECT u.local_part, d.name FROM console_admin c \
                     JOIN user u ON u.id = c.user_id JOIN domain d ON d.id = u.domain_id \
                     ORDER BY d.name, u.local_key",
                )
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(backend)?;
            Ok(rows
                .into_iter()
                .filter_map(|(local, domain)| {
                    EmailAddress::parse(&format!("{local}@{domain}")).ok()
                })
                .collect())
        })
        .await
    }

    async fn is_console_admin(&self, user: UserId) -> Result<bool> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM console_admin WHERE user_id = ?1")
                .and_then(|mut s| s.query_row([user], |_| Ok(())).optional())
                .map(|hit| hit.is_some())
                .map_err(backend)
        })
        .await
    }

    async fn resolve(&self, address: &EmailAddress) -> Result<Resolution> {
        let key = address.key();
        if let Some(users) = self.inner.resolutions.get(&key) {
            return Ok(Resolution::Users(users));
        }
        let address = address.clone();
        let resolved = self
            .read(move |conn| {
                let mut out = Vec::new();
                let mut seen = HashSet::new();
                Ok(
                    match resolve_into(conn, &address, 0, &mut seen, &mut out)? {
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
                    },
                )
            })
            .await?;
        if let Resolution::Users(users) = &resolved {
            self.inner.resolutions.put(key, users.clone());
        }
        Ok(resolved)
    }
}
