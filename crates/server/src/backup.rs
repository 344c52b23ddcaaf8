//! `postgate backup DIR` and `postgate restore DIR`.
//!
//! A backup directory holds `postgate.db` (a consistent snapshot of the
//! embedded store, messages included: see `postgate_store::embedded::backup`),
//! the data directory's other state (the generated TLS identity in `tls/`,
//! the SNMP engine's boot counter), and `backup.json`: when, from where,
//! what it holds, and the SHA-256 of every file, so that a restore notices
//! a backup damaged since. Left out: `log/` (the log files are not state)
//! and `import-state/` (an import's progress describes the store as it was
//! when the import ran, not the snapshot).
//!
//! Both commands check before they declare success: the backup is checked
//! after it is written (integrity, references, every message's hash), and
//! again, with the file hashes, before a restore puts it in place.
use anyhow::{Context, bail};
use postgate_runtime::Config;
use postgate_runtime::config::StoreBackend;
use postgate_store::embedded::{DB_FILE, backup as store_backup};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The manifest's name.
const MANIFEST: &str = "backup.json";
/// What the data directory holds that is not copied.
const SKIPPED: &[&str] = &["log", "import-state"];

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// The manifest format.
    format: u32,
    /// When the snapshot was taken (RFC 3339).
    created: String,
    /// The server's hostname.
    hostname: String,
    /// The data directory it came from.
    data_dir: PathBuf,
    /// The postgate version that made it.
    version: String,
    /// What the store held.
    store: store_backup::Inventory,
    /// Every file, relative to the backup, with its SHA-256.
    files: Vec<(String, String)>,
}

fn postgres_refusal(config: &Config, what: &str) -> anyhow::Result<()> {
    if config.store.backend == StoreBackend::Postgres {
        bail!(
            "the store is PostgreSQL ([store] backend = \"postgres\"): {what} it with PostgreSQL's tools, \
             pg_dump (e.g. `pg_dump -Fc -f postgate.dump DBNAME`) and pg_restore; \
             postgate backup and restore handle the embedded store only"
        );
    }
    Ok(())
}

/// `postgate backup DIR`.
pub async fn backup(config: &Config, dir: &Path) -> anyhow::Result<ExitCode> {
    postgres_refusal(config, "back up")?;
    if dir.exists() {
        if std::fs::read_dir(dir)?.next().is_some() {
            bail!("{} is not empty", dir.display());
        }
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let created = chrono::Utc::now().to_rfc3339();
    let started = std::time::Instant::now();
    let data_dir = config.data_dir.clone();
    let db = dir.join(DB_FILE);
    let inventory = {
        let (data_dir, db) = (data_dir.clone(), db.clone());
        tokio::task::spawn_blocking(move || store_backup::snapshot(&data_dir, &db)).await??
    };
    // The other state files, after the snapshot: they change rarely, and
    // none refers to the store's contents.
    let mut files = vec![(DB_FILE.to_string(), file_hash(&db)?)];
    copy_state(&data_dir, dir, Path::new(""), &mut files)?;
    let manifest = Manifest {
        format: 1,
        created,
        hostname: config.hostname.clone(),
        data_dir,
        version: env!("CARGO_PKG_VERSION").to_string(),
        store: inventory.clone(),
        files,
    };
    let path = dir.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(&path)?.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    println!(
        "backed up {} into {} in {:.1} s: {} users, {} folders, {} items, {} messages ({} bytes), checked",
        config.data_dir.display(),
        dir.display(),
        started.elapsed().as_secs_f64(),
        inventory.users,
        inventory.folders,
        inventory.items,
        inventory.messages,
        inventory.message_bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// Copies the data directory's files other than the store's (`rel` is the
/// subdirectory being copied), recording their hashes.
fn copy_state(
    from: &Path,
    to: &Path,
    rel: &Path,
    files: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(from.join(rel)) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let rel_path = rel.join(&name);
        let name = name.to_string_lossy();
        if rel.as_os_str().is_empty()
            && (SKIPPED.contains(&name.as_ref()) || name.starts_with(DB_FILE))
        {
            continue;
        }
        let kind = e.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir_all(to.join(&rel_path))?;
            copy_state(from, to, &rel_path, files)?;
        } else if kind.is_file() {
            let dest = to.join(&rel_path);
            // std::fs::copy keeps the permissions (the TLS key's 0600).
            std::fs::copy(e.path(), &dest)
                .with_context(|| format!("copying {}", e.path().display()))?;
            std::fs::File::open(&dest)?.sync_all()?;
            files.push((rel_path.display().to_string(), file_hash(&dest)?));
        }
    }
    Ok(())
}

fn file_hash(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(crate::import::hex(ctx.finish().as_ref()))
}

/// `postgate restore DIR`.
pub async fn restore(config: &Config, dir: &Path) -> anyhow::Result<ExitCode> {
    postgres_refusal(config, "restore")?;
    let data_dir = config.data_dir.clone();
    if data_dir.exists() && std::fs::read_dir(&data_dir)?.next().is_some() {
        bail!(
            "{} is not empty: restore into an empty or new data directory (stop the server and move the old one aside first)",
            data_dir.display()
        );
    }
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join(MANIFEST))
            .with_context(|| format!("{}: not a postgate backup", dir.display()))?,
    )
    .with_context(|| format!("reading {}", dir.join(MANIFEST).display()))?;
    // Every file as it was written.
    for (rel, hash) in &manifest.files {
        let path = dir.join(rel);
        if file_hash(&path)? != *hash {
            bail!(
                "{}: changed or damaged since the backup was made",
                path.display()
            );
        }
    }
    let inventory = {
        let (db, data_dir) = (dir.join(DB_FILE), data_dir.clone());
        tokio::task::spawn_blocking(move || store_backup::restore(&db, &data_dir)).await??
    };
    if inventory != manifest.store {
        bail!("{}: holds other than its manifest says", dir.display());
    }
    for (rel, _) in manifest.files.iter().filter(|(r, _)| r != DB_FILE) {
        let dest = data_dir.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(dir.join(rel), &dest).with_context(|| format!("copying {rel}"))?;
    }
    println!(
        "restored the backup of {} ({}) into {}: {} users, {} folders, {} items, {} messages, checked",
        manifest.data_dir.display(),
        manifest.created,
        data_dir.display(),
        inventory.users,
        inventory.folders,
        inventory.items,
        inventory.messages
    );
    Ok(ExitCode::SUCCESS)
}
