//! The administration commands: directory and mailbox inspection, straight on the
//! store in the data directory (SQLite arbitrates with a running server).
use crate::cli::{
    AccessCmd, AdminCmd, AliasCmd, BlockCmd, CalendarCmd, ClassCmd, Command, DomainCmd, FolderCmd,
    GroupCmd, ItemCmd, MemberCmd, QueueCmd, Target, UserCmd,
};
use anyhow::{Context, bail};
use postgate_runtime::Config;
use postgate_store::{NewUser, QueuedMessage, Store, User, password};
use postgate_types::access::{Assignee, Block, Class, Direction, Pattern, Service};
use postgate_types::{EmailAddress, ItemSummary, Secret};
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

fn addr(s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(s).with_context(|| format!("{s:?} is not an address"))
}

/// Reads a password from the first line of standard input.
fn read_password() -> anyhow::Result<Secret<String>> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(Secret::new(pw))
}

async fn user_of(store: &Arc<dyn Store>, address: &str) -> anyhow::Result<User> {
    store
        .user(&addr(address)?)
        .await?
        .with_context(|| format!("no user {address}"))
}

/// Parses LDIF (RFC 2849): entries as (attribute, value) lists. Folded
/// lines are joined, `::` values base64-decoded, comments skipped.
fn parse_ldif(text: &str) -> Vec<Vec<(String, String)>> {
    use base64::Engine;
    let mut lines: Vec<String> = Vec::new();
    for raw in text.lines() {
        if let Some(cont) = raw.strip_prefix(' ')
            && let Some(last) = lines.last_mut()
            && !last.is_empty()
        {
            last.push_str(cont);
            continue;
        }
        lines.push(raw.to_string());
    }
    let mut entries = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                entries.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((attr, rest)) = line.split_once(':') else {
            continue;
        };
        let value = if let Some(b64) = rest.strip_prefix(':') {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        } else {
            rest.trim_start().to_string()
        };
        let attr = attr.split(';').next().unwrap_or(attr).to_ascii_lowercase();
        cur.push((attr, value));
    }
    if !cur.is_empty() {
        entries.push(cur);
    }
    entries
}

/// Imports the people of an LDIF file: (imported, present, skipped).
async fn import_ldif(
    store: &Arc<dyn Store>,
    text: &str,
    add_domains: bool,
    passwords: bool,
) -> anyhow::Result<(usize, usize, usize)> {
    let entries = parse_ldif(text);
    let mut served: std::collections::HashSet<String> = store
        .list_domains()
        .await?
        .into_iter()
        .map(|d| d.name.to_lowercase())
        .collect();
    // Every entry's domain is checked before anyone is added: a file with an
    // unserved domain (without --add-domains) imports nothing, rather than
    // whatever the concurrent adds had committed when the check failed.
    if !add_domains {
        for e in &entries {
            if let Some((_, mail)) = e.iter().find(|(a, _)| a == "mail") {
                let domain = addr(mail)?.domain().to_lowercase();
                if !served.contains(&domain) {
                    bail!("{mail}: domain {domain} is not served (add it, or use --add-domains)");
                }
            }
        }
    }
    let (mut imported, mut present, mut skipped) = (0, 0, 0);
    let mut tasks = tokio::task::JoinSet::new();
    for e in entries {
        let get = |name: &str| e.iter().find(|(a, _)| a == name).map(|(_, v)| v.clone());
        let Some(mail) = get("mail") else {
            skipped += 1;
            continue;
        };
        let address = addr(&mail)?;
        let domain = address.domain().to_lowercase();
        if !served.contains(&domain) {
            // Only with --add-domains (checked above).
            store.add_domain(&domain).await?;
            served.insert(domain);
        }
        let display = get("displayname").or_else(|| get("cn")).unwrap_or_default();
        let password = if passwords { get("userpassword") } else { None };
        let user = NewUser {
            address,
            post_office: None,
            display_name: display,
            given_name: get("givenname"),
            surname: get("sn"),
            title: get("title"),
            department: get("departmentnumber").or_else(|| get("ou")),
            phone: get("telephonenumber"),
            password_hash: None,
        };
        let store = store.clone();
        // Concurrent adds share the store's commits (group commit).
        tasks.spawn(async move {
            let mut user = user;
            if let Some(pw) = password {
                user.password_hash = Some(if pw.starts_with("$argon2") {
                    pw
                } else {
                    password::hash_blocking(Secret::new(pw))
                        .await
                        .map_err(anyhow::Error::msg)?
                });
            }
            let address = user.address.clone();
            match store.add_user(user).await {
                Ok(_) => Ok(true),
                Err(postgate_store::StoreError::Exists(_)) => Ok(false),
                Err(e) => Err(anyhow::anyhow!("{address}: {e}")),
            }
        });
        while tasks.len() >= 64 {
            match tasks.join_next().await {
                Some(Ok(Ok(true))) => imported += 1,
                Some(Ok(Ok(false))) => present += 1,
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(true) => imported += 1,
            Ok(false) => present += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((imported, present, skipped))
}

/// A queued message as `queue list --json` and `queue show --json` print it.
fn queued_json(m: &QueuedMessage) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "created": m.created,
        "size": m.size,
        "from": m.outbound.mail_from,
        "env_id": m.outbound.env_id,
        "ret": m.outbound.ret,
        "recipients": m.rcpts.iter().map(|r| serde_json::json!({
            "address": r.address,
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt": r.next_attempt,
            "last_error": r.last_error,
        })).collect::<Vec<_>>(),
    })
}

fn age(since: i64) -> String {
    let s = (chrono::Utc::now().timestamp() - since).max(0);
    match s {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

async fn queue(store: &Arc<dyn Store>, cmd: QueueCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { json } => {
            let list = store.queue_list().await?;
            if json {
                let v: Vec<_> = list.iter().map(queued_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else if list.is_empty() {
                writeln!(out, "queue is empty")?;
            } else {
                for m in &list {
                    let from = if m.outbound.mail_from.is_empty() {
                        "<>"
                    } else {
                        &m.outbound.mail_from
                    };
                    writeln!(out, "{}\t{}\t{}\t{}", m.id, age(m.created), m.size, from)?;
                    for r in &m.rcpts {
                        let state = match r.status.as_str() {
                            s @ ("queued" | "held") => format!(
                                "{}, {} attempts{}",
                                if s == "held" { "held" } else { "waiting" },
                                r.attempts,
                                r.last_error
                                    .as_deref()
                                    .map(|e| format!(": {e}"))
                                    .unwrap_or_default()
                            ),
                            other => other.to_string(),
                        };
                        writeln!(out, "\t{}\t{state}", r.address)?;
                    }
                }
            }
        }
        QueueCmd::Show { id, json } => {
            let m = store
                .queue_get(id)
                .await?
                .with_context(|| format!("no queued message {id}"))?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&queued_json(&m))?)?;
            } else {
                writeln!(out, "id:        {}", m.id)?;
                writeln!(out, "queued:    {} ago", age(m.created))?;
                writeln!(out, "size:      {}", m.size)?;
                writeln!(out, "from:      <{}>", m.outbound.mail_from)?;
                if let Some(e) = &m.outbound.env_id {
                    writeln!(out, "envid:     {e}")?;
                }
                for r in &m.rcpts {
                    let next = chrono::DateTime::from_timestamp(r.next_attempt, 0)
                        .map(|d| d.to_rfc3339())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "to:        <{}> {} attempts={} next={next}",
                        r.address, r.status, r.attempts
                    )?;
                    if let Some(e) = &r.last_error {
                        writeln!(out, "           last error: {e}")?;
                    }
                }
            }
        }
        QueueCmd::Retry { id } => {
            let n = store.queue_retry(id).await?;
            writeln!(out, "{n} recipients due now")?;
        }
        QueueCmd::Hold { id, all: _ } | QueueCmd::Release { id, all: _ } => {
            let hold = matches!(cmd, QueueCmd::Hold { .. });
            let n = store.queue_hold(id, hold).await?;
            if let Some(id) = id
                && n == 0
                && store.queue_get(id).await?.is_none()
            {
                bail!("no queued message {id}");
            }
            let done = if hold { "held" } else { "released (due now)" };
            writeln!(out, "{n} recipients {done}")?;
        }
        QueueCmd::Flush => {
            let n = store.queue_retry(None).await?;
            writeln!(out, "{n} recipients due now")?;
        }
        QueueCmd::Remove { id } => {
            if !store.queue_remove(id).await? {
                bail!("no queued message {id}");
            }
            writeln!(out, "removed queued message {id}")?;
        }
    }
    Ok(())
}

async fn calendar(
    config: &Config,
    store: &Arc<dyn Store>,
    cmd: CalendarCmd,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let shared: Arc<dyn Store> = store.clone();
    let scheduler = postgate_calendar::Scheduler::new(
        shared.clone(),
        config.calendar.time_zone,
        config.hostname.clone(),
    );
    match cmd {
        CalendarCmd::Import { address, file } => {
            let u = user_of(store, &address).await?;
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::stdin().read_to_string(&mut t)?;
                t
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let postgate_calendar::organize::Import {
                plan,
                imported: done,
                problems,
            } = scheduler
                .import(&u, &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let delivery =
                postgate_delivery::Delivery::new(shared, Vec::new(), None, config.hostname.clone())
                    .with_scheduler(scheduler);
            delivery.carry_out(plan).await?;
            for p in &problems {
                writeln!(out, "note: {p}")?;
            }
            writeln!(
                out,
                "imported {} appointments and tasks into {address}",
                done.len()
            )?;
        }
        CalendarCmd::Export { address } => {
            let u = user_of(store, &address).await?;
            let text = scheduler
                .export(&u)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// `postgate store copy --to URL`: the embedded store in `data_dir` into
/// PostgreSQL, with a progress bar.
pub async fn store_copy(config: &Config, to: &str, quiet: bool) -> anyhow::Result<ExitCode> {
    let target = postgate_store::postgres::PgOptions {
        url: to.to_string(),
        pool_size: 2,
        node: format!("{}-copy", config.hostname),
        ca_file: config.store.ca_file.clone(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .progress_chars("=> ");
    let mut bar: Option<(&'static str, indicatif::ProgressBar)> = None;
    let report = postgate_store::copy::embedded_to_postgres(&config.data_dir, &target, |p| {
        if quiet {
            return;
        }
        match &bar {
            Some((t, b)) if *t == p.table => b.set_position(p.done),
            _ => {
                if let Some((_, b)) = bar.take() {
                    b.finish();
                }
                let b = indicatif::ProgressBar::new(p.total)
                    .with_style(style.clone())
                    .with_prefix(p.table);
                b.set_position(p.done);
                bar = Some((p.table, b));
            }
        }
    })
    .await?;
    if let Some((_, b)) = bar.take() {
        b.finish();
    }
    let mut out = std::io::stdout().lock();
    for (table, rows) in report {
        writeln!(out, "{table}: {rows} rows copied")?;
    }
    writeln!(
        out,
        "copied {} into PostgreSQL; set [store] backend = \"postgres\" and url to use it",
        config.data_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `postgate store check`: "ok" and success when the store is whole, else
/// every problem found and failure.
pub async fn store_check(config: &Config) -> anyhow::Result<ExitCode> {
    let report = postgate_store::check::check(&crate::store_backend(config)).await?;
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(out, "problem: {p}")?;
    }
    if report.unlisted > 0 {
        writeln!(out, "problem: … and {} more", report.unlisted)?;
    }
    let counts = format!(
        "{} messages ({} bytes), {} items, {} folders",
        report.messages, report.bytes, report.items, report.folders
    );
    if report.is_clean() {
        writeln!(out, "ok: {counts}")?;
        Ok(ExitCode::SUCCESS)
    } else {
        let n = report.problems.len() as u64 + report.unlisted;
        writeln!(out, "damaged: {n} problem(s); {counts}")?;
        Ok(ExitCode::FAILURE)
    }
}

pub async fn run(config: Config, command: Command) -> anyhow::Result<ExitCode> {
    let shared = crate::open_store(&config).await?;
    let store = &shared;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Domain(cmd) => match cmd {
            DomainCmd::Add { name } => {
                let d = store.add_domain(&name).await?;
                writeln!(
                    out,
                    "added domain {} (post office {})",
                    d.name,
                    d.post_offices.join(", ")
                )?;
            }
            DomainCmd::List { json } => {
                let domains = store.list_domains().await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&domains)?)?;
                } else {
                    for d in domains {
                        writeln!(
                            out,
                            "{}\tusers={}\tpost offices: {}",
                            d.name,
                            d.users,
                            d.post_offices.join(", ")
                        )?;
                    }
                }
            }
            DomainCmd::Remove { name } => {
                store.remove_domain(&name).await?;
                writeln!(out, "removed domain {name}")?;
            }
        },
        Command::User(cmd) => match cmd {
            UserCmd::Add(a) => {
                let address = addr(&a.address)?;
                let words: Vec<&str> = a.name.split_whitespace().collect();
                let password_hash = if a.password_stdin {
                    let pw = read_password()?;
                    Some(
                        password::hash_blocking(pw)
                            .await
                            .map_err(anyhow::Error::msg)?,
                    )
                } else {
                    None
                };
                let user = store
                    .add_user(NewUser {
                        address,
                        post_office: a.post_office,
                        display_name: a.name.trim().to_string(),
                        given_name: a.given.or_else(|| words.first().map(|s| s.to_string())),
                        surname: a.surname.or_else(|| {
                            (words.len() > 1).then(|| words[words.len() - 1].to_string())
                        }),
                        title: a.title,
                        department: a.department,
                        phone: a.phone,
                        password_hash,
                    })
                    .await?;
                writeln!(out, "added user {} ({})", user.address, user.display_name)?;
            }
            UserCmd::List { domain, json } => {
                let users = store.list_users(domain.as_deref()).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&users)?)?;
                } else {
                    for u in users {
                        writeln!(out, "{}\t{}\t{}", u.address, u.display_name, u.post_office)?;
                    }
                }
            }
            UserCmd::Show { address, json } => {
                let u = user_of(store, &address).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&u)?)?;
                } else {
                    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
                    writeln!(out, "address:      {}", u.address)?;
                    writeln!(out, "name:         {}", u.display_name)?;
                    writeln!(out, "given name:   {}", opt(&u.given_name))?;
                    writeln!(out, "surname:      {}", opt(&u.surname))?;
                    writeln!(out, "title:        {}", opt(&u.title))?;
                    writeln!(out, "department:   {}", opt(&u.department))?;
                    writeln!(out, "phone:        {}", opt(&u.phone))?;
                    writeln!(out, "post office:  {}", u.post_office)?;
                    let aliases: Vec<String> = u.aliases.iter().map(|a| a.to_string()).collect();
                    writeln!(out, "aliases:      {}", aliases.join(", "))?;
                    writeln!(
                        out,
                        "password:     {}",
                        if u.has_password { "set" } else { "not set" }
                    )?;
                }
            }
            UserCmd::Remove { address } => {
                store.remove_user(&addr(&address)?).await?;
                writeln!(out, "removed user {address}")?;
            }
            UserCmd::Import {
                file,
                add_domains,
                passwords,
            } => {
                let text = if file.as_os_str() == "-" {
                    let mut t = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
                    t
                } else {
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                };
                let r = import_ldif(store, &text, add_domains, passwords).await?;
                writeln!(
                    out,
                    "imported {} users ({} already present, {} entries without mail skipped)",
                    r.0, r.1, r.2
                )?;
            }
            UserCmd::Passwd { address, .. } => {
                let address = addr(&address)?;
                let pw = read_password()?;
                let hash = password::hash_blocking(pw)
                    .await
                    .map_err(anyhow::Error::msg)?;
                store.set_password_hash(&address, Some(hash)).await?;
                writeln!(out, "password set for {address}")?;
            }
        },
        Command::Alias(cmd) => match cmd {
            AliasCmd::Add { alias, user } => {
                store.add_alias(&addr(&alias)?, &addr(&user)?).await?;
                writeln!(out, "{alias} now reaches {user}")?;
            }
            AliasCmd::Remove { alias } => {
                store.remove_alias(&addr(&alias)?).await?;
                writeln!(out, "removed alias {alias}")?;
            }
        },
        Command::Group(cmd) => match cmd {
            GroupCmd::Add { address, name } => {
                let a = addr(&address)?;
                let name = name.unwrap_or_else(|| a.local().to_string());
                let g = store.add_group(&a, &name).await?;
                writeln!(out, "added group {} ({})", g.address, g.display_name)?;
            }
            GroupCmd::Remove { address } => {
                store.remove_group(&addr(&address)?).await?;
                writeln!(out, "removed group {address}")?;
            }
            GroupCmd::List { json } => {
                let groups = store.list_groups(None).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&groups)?)?;
                } else {
                    for g in groups {
                        let m: Vec<String> = g.members.iter().map(|m| m.to_string()).collect();
                        writeln!(out, "{}\t{}\t{}", g.address, g.display_name, m.join(", "))?;
                    }
                }
            }
            GroupCmd::Member(MemberCmd::Add { group, address }) => {
                store
                    .add_group_member(&addr(&group)?, &addr(&address)?)
                    .await?;
                writeln!(out, "added {address} to {group}")?;
            }
            GroupCmd::Member(MemberCmd::Remove { group, address }) => {
                store
                    .remove_group_member(&addr(&group)?, &addr(&address)?)
                    .await?;
                writeln!(out, "removed {address} from {group}")?;
            }
        },
        Command::Folder(cmd) => match cmd {
            FolderCmd::List { address, json } => {
                let u = user_of(store, &address).await?;
                let folders = store.folders(u.id).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&folders)?)?;
                } else {
                    for f in folders {
                        let role = f.role.map(|r| r.to_string()).unwrap_or_default();
                        writeln!(
                            out,
                            "{}\t{role}\ttotal={}\tunseen={}",
                            f.path, f.total, f.unseen
                        )?;
                    }
                }
            }
            FolderCmd::Add { address, path } => {
                let u = user_of(store, &address).await?;
                let f = store.create_folder(u.id, &path).await?;
                writeln!(out, "created folder {}", f.path)?;
            }
        },
        Command::Item(cmd) => match cmd {
            ItemCmd::List {
                address,
                folder,
                json,
            } => {
                let u = user_of(store, &address).await?;
                let f = store
                    .folder(u.id, &folder)
                    .await?
                    .with_context(|| format!("{address} has no folder {folder:?}"))?;
                let items = store.items(f.id).await?;
                if json {
                    let rows: Vec<serde_json::Value> = items.iter().map(item_json).collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                } else {
                    writeln!(out, "UID\tKIND\tDATE\tSIZE\tFLAGS\tFROM\tSUBJECT")?;
                    for i in &items {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            i.uid,
                            i.kind,
                            date(i.date),
                            i.size,
                            flags(i).join(" "),
                            i.from.as_ref().map(|f| f.to_string()).unwrap_or_default(),
                            i.subject.clone().unwrap_or_default()
                        )?;
                    }
                }
            }
            ItemCmd::Show {
                address,
                uid,
                folder,
                raw,
                json,
            } => {
                let u = user_of(store, &address).await?;
                let f = store
                    .folder(u.id, &folder)
                    .await?
                    .with_context(|| format!("{address} has no folder {folder:?}"))?;
                if raw {
                    let bytes = store
                        .raw(f.id, uid)
                        .await?
                        .with_context(|| format!("no item {uid} in {folder}"))?;
                    out.write_all(&bytes)?;
                } else {
                    let rec = store
                        .item(f.id, uid)
                        .await?
                        .with_context(|| format!("no item {uid} in {folder}"))?;
                    if json {
                        let mut v = item_json(&rec.summary);
                        v["content"] = serde_json::to_value(&rec.content)?;
                        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                    } else {
                        let c = &rec.content;
                        let list = |l: &[postgate_types::Contact]| {
                            l.iter()
                                .map(|c| c.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        writeln!(out, "uid:          {}", rec.summary.uid)?;
                        writeln!(out, "kind:         {}", rec.summary.kind)?;
                        writeln!(
                            out,
                            "from:         {}",
                            c.from.as_ref().map(|f| f.to_string()).unwrap_or_default()
                        )?;
                        writeln!(out, "to:           {}", list(&c.to))?;
                        writeln!(out, "cc:           {}", list(&c.cc))?;
                        writeln!(
                            out,
                            "subject:      {}",
                            c.subject.clone().unwrap_or_default()
                        )?;
                        writeln!(out, "date:         {}", date(rec.summary.date))?;
                        writeln!(out, "importance:   {}", c.importance.as_str())?;
                        writeln!(out, "size:         {}", rec.summary.size)?;
                        writeln!(out, "flags:        {}", flags(&rec.summary).join(" "))?;
                        for a in &c.attachments {
                            writeln!(
                                out,
                                "attachment:   {} ({}, {} bytes{})",
                                a.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                                a.content_type,
                                a.size,
                                if a.inline { ", inline" } else { "" }
                            )?;
                        }
                        writeln!(out)?;
                        writeln!(out, "{}", c.text.clone().unwrap_or_default())?;
                    }
                }
            }
        },
        Command::Queue(cmd) => queue(store, cmd, &mut out).await?,
        Command::Calendar(cmd) => calendar(&config, store, cmd, &mut out).await?,
        Command::Class(cmd) => class(store, cmd, &mut out).await?,
        Command::Access(cmd) => access(&shared, cmd, &mut out).await?,
        Command::Block(cmd) => block(store, cmd, &mut out).await?,
        Command::Admin(cmd) => console_admin(store, cmd, &mut out).await?,
        Command::Dkim(cmd) => crate::dkim::command(store, cmd, &mut out).await?,
        Command::Serve
        | Command::CheckConfig { .. }
        | Command::Log(_)
        | Command::Store(_)
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Import(_) => {
            bail!("not an administration command")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

fn flags(i: &ItemSummary) -> Vec<String> {
    i.flags
        .names()
        .map(str::to_string)
        .chain(i.keywords.iter().cloned())
        .collect()
}

fn item_json(i: &ItemSummary) -> serde_json::Value {
    serde_json::json!({
        "uid": i.uid,
        "kind": i.kind,
        "from": i.from,
        "subject": i.subject,
        "date": date(i.date),
        "size": i.size,
        "flags": flags(i),
    })
}

fn assignee(t: Target) -> anyhow::Result<Assignee> {
    Ok(match t {
        Target { user: Some(u), .. } => Assignee::User(addr(&u)?.key()),
        Target { group: Some(g), .. } => Assignee::Group(addr(&g)?.key()),
        Target {
            post_office: Some(p),
            ..
        } => Assignee::PostOffice(p.trim().to_ascii_lowercase()),
        Target {
            domain: Some(d), ..
        } => Assignee::Domain(d.trim().trim_end_matches('.').to_ascii_lowercase()),
        _ => bail!("give --user, --group, --post-office or --domain"),
    })
}

async fn find_class(store: &Arc<dyn Store>, name: &str) -> anyhow::Result<Class> {
    store
        .classes()
        .await?
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
        .with_context(|| format!("no class {name}"))
}

async fn class(store: &Arc<dyn Store>, cmd: ClassCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        ClassCmd::Add { name, description } => {
            store
                .add_class(&name, description.as_deref().unwrap_or(""))
                .await?;
            writeln!(out, "added class {name}")?;
        }
        ClassCmd::Set { name, key, value } => {
            let mut c = find_class(store, &name).await?;
            c.settings.set(&key, &value).map_err(anyhow::Error::msg)?;
            store.set_class(&c.name, c.settings).await?;
            writeln!(out, "class {}: {key} = {value}", c.name)?;
        }
        ClassCmd::Assign { name, target } => {
            let a = assignee(target)?;
            store.assign_class(&name, a.clone()).await?;
            writeln!(out, "assigned class {name} to {a}")?;
        }
        ClassCmd::Unassign { name, target } => {
            let a = assignee(target)?;
            store.unassign_class(&name, a.clone()).await?;
            writeln!(out, "removed class {name} from {a}")?;
        }
        ClassCmd::List { json } => {
            let classes = store.classes().await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&classes)?)?;
            } else {
                for c in classes {
                    let to: Vec<String> = c.assigned.iter().map(|a| a.to_string()).collect();
                    writeln!(out, "{}\t{}\t{}", c.name, c.description, to.join(", "))?;
                }
            }
        }
        ClassCmd::Show { name, json } => {
            let c = find_class(store, &name).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?;
            } else {
                writeln!(out, "class {}\t{}", c.name, c.description)?;
                for (k, v) in c.settings.entries() {
                    writeln!(out, "  {k} = {v}")?;
                }
                for a in &c.assigned {
                    writeln!(out, "  assigned to {a}")?;
                }
            }
        }
        ClassCmd::Remove { name } => {
            store.remove_class(&name).await?;
            writeln!(out, "removed class {name}")?;
        }
    }
    Ok(())
}

async fn access(
    shared: &Arc<dyn Store>,
    cmd: AccessCmd,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = shared;
    let AccessCmd::Explain {
        address,
        service,
        json,
    } = cmd;
    let user = user_of(store, &address).await?;
    let service = service
        .map(|s| Service::parse(&s).with_context(|| format!("no service {s:?}")))
        .transpose()?;
    let policy = postgate_store::access::Policy::new(shared.clone());
    let effective = policy.class_of(&user).await?;
    // The chain, in the order it is searched.
    let classes = store.classes().await?;
    let assigned_to = |a: &Assignee| {
        classes
            .iter()
            .find(|c| c.assigned.contains(a))
            .map(|c| c.name.clone())
    };
    let mut chain: Vec<(String, Option<String>)> = vec![(
        format!("user {}", user.address),
        assigned_to(&Assignee::User(user.address.key())),
    )];
    for g in store.groups_of(&user).await? {
        chain.push((format!("group {g}"), assigned_to(&Assignee::Group(g.key()))));
    }
    chain.push((
        format!("post office {}", user.post_office),
        assigned_to(&Assignee::PostOffice(user.post_office.to_ascii_lowercase())),
    ));
    chain.push((
        format!("domain {}", user.address.domain()),
        assigned_to(&Assignee::Domain(
            user.address.domain().to_ascii_lowercase(),
        )),
    ));
    let verdicts: Vec<(&str, bool)> = [
        Service::Imap,
        Service::Pop3,
        Service::Ldap,
        Service::Api,
        Service::SmtpSend,
        Service::SmtpReceive,
    ]
    .into_iter()
    .filter(|s| service.is_none_or(|want| want == *s))
    .map(|s| (s.as_str(), effective.settings.allows(s)))
    .collect();
    if json {
        let v = serde_json::json!({
            "user": user.address.to_string(),
            "class": effective.class,
            "from": effective.origin.as_ref().map(|o| o.to_string()).unwrap_or_else(|| "built-in default".into()),
            "chain": chain.iter().map(|(at, c)| serde_json::json!({"at": at, "class": c})).collect::<Vec<_>>(),
            "settings": &*effective.settings,
            "services": verdicts.iter().map(|(s, ok)| (s.to_string(), serde_json::Value::from(if *ok { "allow" } else { "deny" }))).collect::<serde_json::Map<_, _>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: class {} (from {})",
        user.address,
        effective.class,
        effective
            .origin
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_else(|| "the built-in default".into())
    )?;
    writeln!(out, "searched:")?;
    for (at, c) in &chain {
        writeln!(out, "  {at}: {}", c.as_deref().unwrap_or("-"))?;
    }
    writeln!(out, "  default")?;
    for (s, ok) in verdicts {
        writeln!(out, "{s}: {}", if ok { "allow" } else { "deny" })?;
    }
    Ok(())
}

async fn block(store: &Arc<dyn Store>, cmd: BlockCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        BlockCmd::Add {
            pattern,
            direction,
            note,
        } => {
            let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
            if Pattern::parse(&p).is_none() {
                bail!("{pattern:?} is not an address, network, host, domain or *.domain");
            }
            let direction = Direction::parse(&direction)
                .with_context(|| format!("{direction:?}: give in, out or both"))?;
            store
                .add_block(Block {
                    pattern: p.clone(),
                    direction,
                    note: note.unwrap_or_default(),
                })
                .await?;
            writeln!(out, "blocked {p} ({})", direction.as_str())?;
        }
        BlockCmd::List { json } => {
            let blocks = store.blocks().await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&blocks)?)?;
            } else {
                for b in blocks {
                    writeln!(out, "{}\t{}\t{}", b.pattern, b.direction.as_str(), b.note)?;
                }
            }
        }
        BlockCmd::Remove { pattern } => {
            if !store.remove_block(&pattern).await? {
                bail!("no block {pattern}");
            }
            writeln!(out, "unblocked {pattern}")?;
        }
    }
    Ok(())
}

/// `admin grant|revoke|list`: console administrators.
async fn console_admin(
    store: &Arc<dyn Store>,
    cmd: AdminCmd,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (address, grant) = match cmd {
        AdminCmd::Grant { address } => (address, true),
        AdminCmd::Revoke { address } => (address, false),
        AdminCmd::List => {
            for a in store.console_admins().await? {
                writeln!(out, "{a}")?;
            }
            return Ok(());
        }
    };
    // By its primary address, whichever address named it.
    let user = user_of(store, &address).await?;
    store.set_console_admin(&user.address, grant).await?;
    if grant {
        writeln!(out, "{} may administer the console", user.address)?;
    } else {
        writeln!(out, "{} may no longer administer the console", user.address)?;
    }
    Ok(())
}
