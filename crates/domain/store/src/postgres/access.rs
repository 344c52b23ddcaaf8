//! [`AccessRules`](crate::AccessRules) for the PostgreSQL store: the embedded
//! store's access rules, on PostgreSQL. Every write is a directory write
//! (`write_directory!`): it bumps the directory generation in its
//! transaction, so every node's policy notices.
use super::directory::write_directory;
use super::{PgStore, pg};
use crate::rules::valid_name;
use crate::{AccessRules, Result, StoreError, User};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use postgate_types::EmailAddress;
use postgate_types::access::{Assignee, Block, Class, ClassSettings, Direction};
use std::collections::{BTreeMap, HashSet};

/// How deep group nesting is followed (as delivery does).
const MAX_DEPTH: usize = 16;

/// A class's stored name, found case-insensitively (as the embedded store's
/// `COLLATE NOCASE` column finds it).
async fn require_class(c: &impl GenericClient, name: &str) -> Result<String> {
    let s = c
        .prepare_cached("SELECT name FROM cos_class WHERE lower(name) = lower($1)")
        .await
        .map_err(pg)?;
    c.query_opt(&s, &[&name])
        .await
        .map_err(pg)?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound(format!("class {name}")))
}

/// The rows of a query that selects three text columns.
async fn texts3(c: &impl GenericClient, sql: &str) -> Result<Vec<(String, String, String)>> {
    let s = c.prepare_cached(sql).await.map_err(pg)?;
    Ok(c.query(&s, &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

#[async_trait]
impl AccessRules for PgStore {
    async fn add_class(&self, name: &str, description: &str) -> Result<()> {
        let name = valid_name(name)?;
        let description = description.trim().to_string();
        write_directory!(self, |tx| {
            // No conflict target: the case-folded unique index counts too.
            let n = tx
                .execute(
                    "INSERT INTO cos_class (name, description) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&name, &description],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::Exists(format!("class {name}")));
            }
            Ok(())
        })
    }

    async fn remove_class(&self, name: &str) -> Result<()> {
        let name = name.trim().to_string();
        write_directory!(self, |tx| {
            let name = require_class(&tx, &name).await?;
            tx.execute("DELETE FROM cos_assign WHERE class = $1", &[&name])
                .await
                .map_err(pg)?;
            tx.execute("DELETE FROM cos_class WHERE name = $1", &[&name])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    async fn set_class(&self, name: &str, settings: ClassSettings) -> Result<()> {
        let name = name.trim().to_string();
        let json =
            serde_json::to_string(&settings).map_err(|e| StoreError::Invalid(e.to_string()))?;
        write_directory!(self, |tx| {
            let name = require_class(&tx, &name).await?;
            tx.execute(
                "UPDATE cos_class SET settings = $2 WHERE name = $1",
                &[&name, &json],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn classes(&self) -> Result<Vec<Class>> {
        let c = self.client().await?;
        let mut out: BTreeMap<String, Class> = BTreeMap::new();
        for (name, description, settings) in
            texts3(&c, "SELECT name, description, settings FROM cos_class").await?
        {
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
        for (kind, target, class) in texts3(
            &c,
            "SELECT kind, target, class FROM cos_assign \
             ORDER BY kind COLLATE \"C\", target COLLATE \"C\"",
        )
        .await?
        {
            if let (Some(c), Some(a)) = (
                out.get_mut(&class.to_ascii_lowercase()),
                Assignee::from_parts(&kind, &target),
            ) {
                c.assigned.push(a);
            }
        }
        Ok(out.into_values().collect())
    }

    async fn assign_class(&self, name: &str, to: Assignee) -> Result<()> {
        let name = name.trim().to_string();
        write_directory!(self, |tx| {
            let name = require_class(&tx, &name).await?;
            // The assignee must exist: a typo would otherwise assign nothing.
            let target = to.name().to_string();
            let exists = match &to {
                Assignee::User(a) | Assignee::Group(a) => {
                    let addr = EmailAddress::parse(a)
                        .map_err(|e| StoreError::Invalid(format!("{a}: {e}")))?;
                    let table = if matches!(to, Assignee::User(_)) {
                        "users"
                    } else {
                        "grp"
                    };
                    tx.query_opt(
                        &format!(
                            "SELECT 1 FROM {table} t JOIN domain d ON d.id = t.domain_id \
                             WHERE d.name = $1 AND t.local_key = $2"
                        ),
                        &[&addr.domain(), &addr.local_key()],
                    )
                    .await
                }
                Assignee::PostOffice(p) => {
                    tx.query_opt(
                        "SELECT 1 FROM post_office WHERE lower(name) = lower($1)",
                        &[p],
                    )
                    .await
                }
                Assignee::Domain(d) => {
                    tx.query_opt("SELECT 1 FROM domain WHERE name = $1", &[d])
                        .await
                }
            }
            .map_err(pg)?;
            if exists.is_none() {
                return Err(StoreError::NotFound(to.to_string()));
            }
            let target = match &to {
                Assignee::User(a) | Assignee::Group(a) => {
                    EmailAddress::parse(a).map(|a| a.key()).unwrap_or(target)
                }
                _ => target,
            };
            tx.execute(
                "INSERT INTO cos_assign (kind, target, class) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, target) DO UPDATE SET class = excluded.class",
                &[&to.kind(), &target, &name],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn unassign_class(&self, name: &str, from: Assignee) -> Result<()> {
        let name = name.trim().to_string();
        write_directory!(self, |tx| {
            let name = require_class(&tx, &name).await?;
            let target = match &from {
                Assignee::User(a) | Assignee::Group(a) => EmailAddress::parse(a)
                    .map(|a| a.key())
                    .unwrap_or_else(|_| a.clone()),
                other => other.name().to_string(),
            };
            let n = tx
                .execute(
                    "DELETE FROM cos_assign WHERE kind = $1 AND target = $2 AND class = $3",
                    &[&from.kind(), &target, &name],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("class {name} on {from}")));
            }
            Ok(())
        })
    }

    async fn add_block(&self, block: Block) -> Result<()> {
        write_directory!(self, |tx| {
            tx.execute(
                "INSERT INTO access_block (pattern, direction, note) VALUES ($1, $2, $3) \
                 ON CONFLICT (pattern) DO UPDATE SET direction = excluded.direction, note = excluded.note",
                &[&block.pattern, &block.direction.as_str(), &block.note],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    async fn remove_block(&self, pattern: &str) -> Result<bool> {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        write_directory!(self, |tx| {
            let n = tx
                .execute("DELETE FROM access_block WHERE pattern = $1", &[&pattern])
                .await
                .map_err(pg)?;
            Ok(n > 0)
        })
    }

    async fn blocks(&self) -> Result<Vec<Block>> {
        let c = self.client().await?;
        Ok(texts3(
            &c,
            "SELECT pattern, direction, note FROM access_block ORDER BY pattern COLLATE \"C\"",
        )
        .await?
        .into_iter()
        .map(|(pattern, direction, note)| Block {
            pattern,
            direction: Direction::parse(&direction).unwrap_or(Direction::Both),
            note,
        })
        .collect())
    }

    async fn groups_of(&self, user: &User) -> Result<Vec<EmailAddress>> {
        let mut frontier: Vec<String> = std::iter::once(&user.address)
            .chain(user.aliases.iter())
            .map(|a| a.key())
            .collect();
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT g.local_part, d.name, g.local_key FROM grp_member m \
                 JOIN grp g ON g.id = m.group_id JOIN domain d ON d.id = g.domain_id \
                 WHERE m.member = $1",
            )
            .await
            .map_err(pg)?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for _ in 0..MAX_DEPTH {
            let mut next = Vec::new();
            for member in &frontier {
                for r in c.query(&stmt, &[member]).await.map_err(pg)? {
                    let (local, domain, key): (String, String, String) =
                        (r.get(0), r.get(1), r.get(2));
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
    }
}
