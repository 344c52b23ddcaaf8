//! [`AccessRules`] for the embedded store.
use super::{EmbeddedStore, backend};
use crate::rules::valid_name;
use crate::{AccessRules, Result, StoreError, User};
use async_trait::async_trait;
use postgate_types::EmailAddress;
use postgate_types::access::{Assignee, Block, Class, ClassSettings, Direction};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};

/// How deep group nesting is followed (as delivery does).
const MAX_DEPTH: usize = 16;

fn require_class(conn: &Connection, name: &str) -> Result<String> {
    conn.prepare_cached("SELECT name FROM cos_class WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("class {name}")))
}

/// The rows of a query that selects three text columns.
fn texts3(conn: &Connection, sql: &str) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

#[async_trait]
impl AccessRules for EmbeddedStore {
    async fn add_class(&self, name: &str, description: &str) -> Result<()> {
        let name = valid_name(name)?;
        let description = description.trim().to_string();
        self.write_directory(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO cos_class (name, description) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![name, description],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Exists(format!("class {name}")));
            }
            Ok(())
        })
        .await
    }

    async fn remove_class(&self, name: &str) -> Result<()> {
        let name = name.trim().to_string();
        self.write_directory(move |conn| {
            let name = require_class(conn, &name)?;
            conn.execute("DELETE FROM cos_assign WHERE class = ?1", [&name])
                .map_err(backend)?;
            conn.execute("DELETE FROM cos_class WHERE name = ?1", [&name])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn set_class(&self, name: &str, settings: ClassSettings) -> Result<()> {
        let name = name.trim().to_string();
        let json =
            serde_json::to_string(&settings).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.write_directory(move |conn| {
            let name = require_class(conn, &name)?;
            conn.execute(
                "UPDATE cos_class SET settings = ?2 WHERE name = ?1",
                params![name, json],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn classes(&self) -> Result<Vec<Class>> {
        self.read(|conn| {
            let mut out: BTreeMap<String, Class> = BTreeMap::new();
            let rows = texts3(conn, "SELECT name, description, settings FROM cos_class")?;
            for row in rows {
                let (name, description, settings) = row;
                // A setting this version does not know is ignored, not fatal.
                let settings = serde_json::from_str(&settings).unwrap_or_default();
                out.insert(
                    name.to_ascii_lowercase(),
                    Class {
                        name,
                        description,
                        settings,
                        assigned: Vec::new(),
                    },
                );
            }
            let rows = texts3(
                conn,
                "SELECT kind, target, class FROM cos_assign ORDER BY kind, target",
            )?;
            for row in rows {
                let (kind, target, class) = row;
                if let (Some(c), Some(a)) = (
                    out.get_mut(&class.to_ascii_lowercase()),
                    Assignee::from_parts(&kind, &target),
                ) {
                    c.assigned.push(a);
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    async fn assign_class(&self, name: &str, to: Assignee) -> Result<()> {
        let name = name.trim().to_string();
        self.write_directory(move |conn| {
            let name = require_class(conn, &name)?;
            // The assignee must exist: a typo would otherwise assign nothing.
            let target = to.name().to_string();
            let exists: Option<i64> = match &to {
                Assignee::User(a) | Assignee::Group(a) => {
                    let addr = EmailAddress::parse(a)
                        .map_err(|e| StoreError::Invalid(format!("{a}: {e}")))?;
                    let table = if matches!(to, Assignee::User(_)) {
                        "user"
                    } else {
                        "grp"
                    };
                    conn.query_row(
                        &format!(
                            "SELECT 1 FROM {table} t JOIN domain d ON d.id = t.domain_id \
                             WHERE d.name = ?1 AND t.local_key = ?2"
                        ),
                        params![addr.domain(), addr.local_key()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?
                }
                Assignee::PostOffice(p) => conn
                    .query_row(
                        "SELECT 1 FROM post_office WHERE name = ?1 COLLATE NOCASE",
                        [p],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?,
                Assignee::Domain(d) => conn
                    .query_row("SELECT 1 FROM domain WHERE name = ?1", [d], |r| r.get(0))
                    .optional()
                    .map_err(backend)?,
            };
            if exists.is_none() {
                return Err(StoreError::NotFound(to.to_string()));
            }
            let target = match &to {
                Assignee::User(a) | Assignee::Group(a) => {
                    EmailAddress::parse(a).map(|a| a.key()).unwrap_or(target)
                }
                _ => target,
            };
            conn.execute(
                "INSERT INTO cos_assign (kind, target, class) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (kind, target) DO UPDATE SET class = excluded.class",
                params![to.kind(), target, name],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn unassign_class(&self, name: &str, from: Assignee) -> Result<()> {
        let name = name.trim().to_string();
        self.write_directory(move |conn| {
            let name = require_class(conn, &name)?;
            let target = match &from {
                Assignee::User(a) | Assignee::Group(a) => EmailAddress::parse(a)
                    .map(|a| a.key())
                    .unwrap_or_else(|_| a.clone()),
                other => other.name().to_string(),
            };
            let n = conn
                .execute(
                    "DELETE FROM cos_assign WHERE kind = ?1 AND target = ?2 AND class = ?3",
                    params![from.kind(), target, name],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("class {name} on {from}")));
            }
            Ok(())
        })
        .await
    }

    async fn add_block(&self, block: Block) -> Result<()> {
        self.write_directory(move |conn| {
            conn.execute(
                "INSERT INTO access_block (pattern, direction, note) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (pattern) DO UPDATE SET direction = excluded.direction, note = excluded.note",
                params![block.pattern, block.direction.as_str(), block.note],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn remove_block(&self, pattern: &str) -> Result<bool> {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        self.write_directory(move |conn| {
            let n = conn
                .execute("DELETE FROM access_block WHERE pattern = ?1", [pattern])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn blocks(&self) -> Result<Vec<Block>> {
        self.read(|conn| {
            let rows = texts3(
                conn,
                "SELECT pattern, direction, note FROM access_block ORDER BY pattern",
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (pattern, direction, note) = row;
                out.push(Block {
                    pattern,
                    direction: Direction::parse(&direction).unwrap_or(Direction::Both),
                    note,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn groups_of(&self, user: &User) -> Result<Vec<EmailAddress>> {
        let mut frontier: Vec<String> = std::iter::once(&user.address)
            .chain(user.aliases.iter())
            .map(|a| a.key())
            .collect();
        self.read(move |conn| {
            let mut seen: HashSet<String> = HashSet::new();
            let mut out = Vec::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT g.local_part, d.name, g.local_key FROM grp_member m \
                     JOIN grp g ON g.id = m.group_id JOIN domain d ON d.id = g.domain_id \
                     WHERE m.member = ?1",
                )
                .map_err(backend)?;
            for _ in 0..MAX_DEPTH {
                let mut next = Vec::new();
                for member in &frontier {
                    let rows = stmt
                        .query_map([member], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                            ))
                        })
                        .map_err(backend)?;
                    for row in rows {
                        let (local, domain, key) = row.map_err(backend)?;
                        let k = format!("{key}@{domain}");
                        if seen.insert(k.clone()) {
                            if let Ok(a) = EmailAddress::parse(&format!("{local}@{domain}")) {
                                out.push(a);
                            }
                            next.push(k);
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
            Ok(out)
        })
        .await
    }
}
