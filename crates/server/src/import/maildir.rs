//! Maildir++ trees (Dovecot's and Courier's layout) into a user's folders.
//!
//! The layout: the root's `cur/` and `new/` are the Inbox; each `.A.B`
//! directory beside them is the folder `A/B` (its name in modified UTF-7,
//! RFC 3501 §5.1.3, as Dovecot writes it). `tmp/` holds deliveries in
//! progress and is left alone.
//!
//! A message's state is in its file name: `BASE:2,FLAGS` (the Maildir
//! "info"), with D Draft, F Flagged, R Answered (replied), S Seen, T
//! Deleted (trashed), and Dovecot's keywords as the lower-case letters
//! `a`–`z`, the n-th letter naming line `n` of the folder's
//! `dovecot-keywords` file. Files in `new/` have no flags. The internal
//! date is the file's modification time, as Dovecot takes it; if that is
//! unset (0), the delivery time the base name starts with.
//!
//! Order and resuming: a folder's messages are taken in Dovecot's UID
//! order when its `dovecot-uidlist` is there (new files after, by name),
//! else by base name (which starts with the delivery time). The cursor is,
//! per folder, the (order, base name) of the last message stored: a re-run
//! takes only what sorts after it, so a file a mail client moved from
//! `new/` to `cur/` meanwhile (its base name stays) is not taken twice.
use super::{Incoming, Sink};
use anyhow::Context;
use postgate_types::Flags;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a message sorts: its Dovecot UID (`u32::MAX` for one not in the
/// UID list) and its base name.
type Key = (u64, String);

/// One message file.
#[derive(Debug)]
struct Entry {
    key: Key,
    path: PathBuf,
    info: String,
}

/// Runs the import of the tree at `root`.
pub async fn import(sink: &mut Sink, root: &Path) -> anyhow::Result<()> {
    if !root.join("cur").is_dir() && !root.join("new").is_dir() {
        anyhow::bail!("{}: not a Maildir (no cur/ or new/)", root.display());
    }
    let folders = folders(root)?;
    let mut cursor: HashMap<String, Key> =
        serde_json::from_value(sink.cursor().get("folders").cloned().unwrap_or_default())
            .unwrap_or_default();
    // Listing first (names only), to know the total.
    let mut plan = Vec::new();
    let mut total = 0u64;
    for (path, dir) in folders {
        let after = cursor.get(&path).cloned();
        let entries: Vec<Entry> = messages(&dir)?
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| e.key > *a))
            .collect();
        total += entries.len() as u64;
        plan.push((path, dir, entries));
    }
    sink.bar_messages(total);
    for (path, dir, entries) in plan {
        let keywords = keyword_names(&dir);
        for e in entries {
            let raw = match tokio::fs::read(&e.path).await {
                Ok(r) => crate::import::crlf(r),
                // Expunged or moved by a client meanwhile.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    sink.note(&format!("{}: gone, skipped", e.path.display()));
                    sink.advance(1);
                    continue;
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", e.path.display()));
                }
            };
            let mtime = std::fs::metadata(&e.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .filter(|&t| t > 0);
            let (flags, kw) = parse_info(&e.info, &keywords);
            let internal_date = mtime.or_else(|| name_time(&e.key.1));
            cursor.insert(path.clone(), e.key.clone());
            sink.push(
                &path,
                Incoming {
                    raw,
                    flags,
                    keywords: kw,
                    internal_date,
                },
                serde_json::json!({ "folders": cursor }),
            )
            .await?;
            sink.advance(1);
        }
    }
    Ok(())
}

/// The folders of the tree: ("INBOX", root), then each `.A.B` as "A/B",
/// by name.
fn folders(root: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = vec![("INBOX".to_string(), root.to_path_buf())];
    let mut subs = Vec::new();
    for e in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        if rest.is_empty() || rest == "." || !e.path().is_dir() {
            continue;
        }
        let decoded = postgate_imap_proto::utf7::decode(rest).unwrap_or_else(|| rest.to_string());
        let path: Vec<&str> = decoded.split('.').filter(|s| !s.is_empty()).collect();
        if path.is_empty() {
            continue;
        }
        // Dovecot's `.INBOX.x` (a subfolder of the Inbox) stays under it.
        subs.push((path.join("/"), e.path()));
    }
    subs.sort();
    out.extend(subs);
    Ok(out)
}

/// A folder's message files in import order.
fn messages(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let uids = uid_list(dir);
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e?;
            if !e.file_type()?.is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let (base, info) = match name.split_once(':') {
                Some((b, i)) => (b.to_string(), i.to_string()),
                None => (name.clone(), String::new()),
            };
            let order = uids.get(&base).copied().unwrap_or(u64::from(u32::MAX));
            out.push(Entry {
                key: (order, base),
                path: e.path(),
                info: if sub == "new" { String::new() } else { info },
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    Ok(out)
}

/// Dovecot's `dovecot-uidlist`: base name → UID. Version 3 lines are
/// `UID [extensions] :BASE`; version 1 lines `UID BASE`.
fn uid_list(dir: &Path) -> HashMap<String, u64> {
    let Ok(text) = std::fs::read_to_string(dir.join("dovecot-uidlist")) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    let v3 = lines.next().is_some_and(|l| l.starts_with('3'));
    lines
        .filter_map(|l| {
            let (uid, rest) = l.split_once(' ')?;
            let uid: u64 = uid.parse().ok()?;
            let name = if v3 {
                rest.split_once(':').map(|(_, n)| n)?
            } else {
                rest.trim()
            };
            let base = name.split_once(':').map_or(name, |(b, _)| b);
            Some((base.to_string(), uid))
        })
        .collect()
}

/// Dovecot's `dovecot-keywords`: `N NAME` lines; letter `a` + N stands for
/// NAME in file names.
fn keyword_names(dir: &Path) -> HashMap<char, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("dovecot-keywords")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let (n, name) = l.split_once(' ')?;
            let n: u8 = n.parse().ok()?;
            (n < 26).then(|| ((b'a' + n) as char, name.trim().to_string()))
        })
        .collect()
}

/// Flags and keywords from a Maildir info (`2,DFRST…`).
fn parse_info(info: &str, keywords: &HashMap<char, String>) -> (Flags, Vec<String>) {
    let mut flags = Flags::default();
    let mut kw = Vec::new();
    let Some(letters) = info.strip_prefix("2,") else {
        return (flags, kw);
    };
    for c in letters.chars() {
        match c {
            'D' => flags = flags.with(Flags::DRAFT),
            'F' => flags = flags.with(Flags::FLAGGED),
            'R' => flags = flags.with(Flags::ANSWERED),
            'S' => flags = flags.with(Flags::SEEN),
            'T' => flags = flags.with(Flags::DELETED),
            'a'..='z' => {
                if let Some(name) = keywords.get(&c) {
                    kw.push(name.clone());
                }
            }
            _ => {}
        }
    }
    (flags, kw)
}

/// The delivery time a base name starts with (`1700000000.M….host`).
fn name_time(base: &str) -> Option<i64> {
    base.split('.')
        .next()?
        .parse()
        .ok()
        .filter(|&t: &i64| t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_flags_and_keywords() {
        let kw: HashMap<char, String> = [('a', "$Label1".into()), ('c', "Work".into())].into();
        let (f, k) = parse_info("2,FRSTDac", &kw);
        assert_eq!(
            f,
            Flags::FLAGGED
                .with(Flags::ANSWERED)
                .with(Flags::SEEN)
                .with(Flags::DELETED)
                .with(Flags::DRAFT)
        );
        assert_eq!(k, vec!["$Label1", "Work"]);
        assert_eq!(parse_info("", &kw), (Flags::default(), vec![]));
        // P (passed) has no IMAP flag; unknown letters are ignored.
        assert_eq!(parse_info("2,Pb", &kw), (Flags::default(), vec![]));
    }

    #[test]
    fn tree_order_and_names() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for sub in ["cur", "new", "tmp", ".Work.2024/cur", ".&AOQ-rger/new"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("cur/200.M1.h:2,S"), "x").unwrap();
        std::fs::write(root.join("new/100.M1.h"), "x").unwrap();
        std::fs::write(root.join("cur/300.M1.h:2,"), "x").unwrap();
        std::fs::write(
            root.join("dovecot-uidlist"),
            "3 V1 N4\n1 :300.M1.h\n2 W10 :200.M1.h:2,S\n",
        )
        .unwrap();
        let names: Vec<String> = folders(root).unwrap().into_iter().map(|f| f.0).collect();
        assert_eq!(names, vec!["INBOX", "Work/2024", "ärger"]);
        let order: Vec<String> = messages(root)
            .unwrap()
            .into_iter()
            .map(|e| e.key.1)
            .collect();
        assert_eq!(order, vec!["300.M1.h", "200.M1.h", "100.M1.h"]);
        assert_eq!(name_time("100.M1.h"), Some(100));
    }
}
