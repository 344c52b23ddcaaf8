//! METADATA (RFC 5464): annotations on mailboxes and on the server
//! (GETMETADATA, SETMETADATA), kept by the store with each folder (or the
//! user's server entries), within limits a client is told of.
use super::misc::quote;
use crate::error::{ImapError, Result};
use crate::rewrite::{self, Token};
use crate::session::{Done, Session};

/// The largest value stored (RFC 5464 §4.3 MAXSIZE).
pub const MAX_SIZE: usize = 32 * 1024;
/// The most entries one mailbox (or the server) holds (§4.3 TOOMANY).
pub const MAX_ENTRIES: usize = 100;

/// GETMETADATA's DEPTH (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The entries named only.
    Zero,
    /// And their children.
    One,
    /// And everything under them.
    Infinity,
}

/// A METADATA command as parsed (RFC 5464 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataCommand {
    /// GETMETADATA [options] mailbox entries (§4.2).
    Get {
        /// MAXSIZE (§4.2.1).
        maxsize: Option<u64>,
        /// DEPTH (§4.2.2).
        depth: Depth,
        /// The mailbox ("" for the server).
        mailbox: Vec<u8>,
        /// The entry names.
        entries: Vec<Vec<u8>>,
    },
    /// SETMETADATA mailbox (entry value …) (§4.3); NIL removes.
    Set {
        /// The mailbox ("" for the server).
        mailbox: Vec<u8>,
        /// The entries and their values.
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
}

impl MetadataCommand {
    /// The command's name, for counters.
    pub fn name(&self) -> &'static str {
        match self {
            MetadataCommand::Get { .. } => "GETMETADATA",
            MetadataCommand::Set { .. } => "SETMETADATA",
        }
    }
}

/// Parses GETMETADATA or SETMETADATA (RFC 5464 §5).
pub(crate) fn parse(bytes: &[u8], set: bool) -> Result<MetadataCommand> {
    let bad = || ImapError::bad("Invalid METADATA arguments");
    let tokens = rewrite::tokenize(bytes)?;
    let value = |t: &Token<'_>| match t {
        Token::Atom(a) => Some(a.to_vec()),
        Token::Quoted(q) => Some(q.clone()),
        Token::Literal(l) => Some(l.to_vec()),
        _ => None,
    };
    let mut i = 2;
    if set {
        // setmetadata = "SETMETADATA" SP mailbox SP entry-values
        let mailbox = tokens.get(i).and_then(|(t, _)| value(t)).ok_or_else(bad)?;
        if tokens.get(i + 1).map(|t| &t.0) != Some(&Token::Open) {
            return Err(bad());
        }
        i += 2;
        let mut entries = Vec::new();
        loop {
            match tokens.get(i) {
                Some((Token::Close, _)) if !entries.is_empty() && i + 1 == tokens.len() => break,
                Some((name, _)) => {
                    let name = value(name).ok_or_else(bad)?;
                    // value = nstring / literal8
                    let v = match tokens.get(i + 1) {
                        Some((Token::Atom(a), _)) if a.eq_ignore_ascii_case(b"NIL") => None,
                        Some((Token::Quoted(q), _)) => Some(q.clone()),
                        Some((Token::Literal(l), _)) => Some(l.to_vec()),
                        _ => return Err(bad()),
                    };
                    entries.push((name, v));
                    i += 2;
                }
                None => return Err(bad()),
            }
        }
        return Ok(MetadataCommand::Set { mailbox, entries });
    }
    // getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
    let (mut maxsize, mut depth) = (None, Depth::Zero);
    if tokens.get(i).map(|t| &t.0) == Some(&Token::Open) {
        i += 1;
        loop {
            let word = |j: usize| match tokens.get(j) {
                Some((Token::Atom(a), _)) => Some(a.to_ascii_uppercase()),
                _ => None,
            };
            match (tokens.get(i).map(|t| &t.0), word(i)) {
                (Some(Token::Close), _) => break,
                (_, Some(w)) if w == b"MAXSIZE" => {
                    let n = word(i + 1).ok_or_else(bad)?;
                    maxsize = Some(
                        std::str::from_utf8(&n)
                            .ok()
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(bad)?,
                    );
                }
                (_, Some(w)) if w == b"DEPTH" => {
                    depth = match word(i + 1).as_deref() {
                        Some(b"0") => Depth::Zero,
                        Some(b"1") => Depth::One,
                        Some(b"INFINITY") => Depth::Infinity,
                        _ => return Err(bad()),
                    };
                }
                _ => return Err(bad()),
            }
            i += 2;
        }
        i += 1;
    }
    let mailbox = tokens.get(i).and_then(|(t, _)| value(t)).ok_or_else(bad)?;
    i += 1;
    let mut entries = Vec::new();
    match tokens.get(i) {
        Some((Token::Open, _)) => {
            i += 1;
            while let Some((t, _)) = tokens.get(i) {
                if *t == Token::Close {
                    break;
                }
                entries.push(value(t).ok_or_else(bad)?);
                i += 1;
            }
        }
        Some((t, _)) => entries.push(value(t).ok_or_else(bad)?),
        None => {}
    }
    if entries.is_empty() || i + 1 != tokens.len() {
        return Err(bad());
    }
    Ok(MetadataCommand::Get {
        maxsize,
        depth,
        mailbox,
        entries,
    })
}

/// An entry name as RFC 5464 §3.2 allows it, lower-cased (names are
/// case-insensitive): "/private/…" or "/shared/…", slash-separated
/// components of printable ASCII, no wildcards, no empty component.
pub fn entry_name(raw: &[u8]) -> Result<String> {
    entry_name_or_root(raw, false)
}

/// The same, or with `root` also "/private" or "/shared" alone (what
/// GETMETADATA's DEPTH looks under, §4.2.2).
fn entry_name_or_root(raw: &[u8], root: bool) -> Result<String> {
    let bad = || {
        ImapError::bad(format!(
            "Invalid entry name {}",
            String::from_utf8_lossy(raw)
        ))
    };
    let s = std::str::from_utf8(raw)
        .map_err(|_| bad())?
        .to_ascii_lowercase();
    if root && (s == "/private" || s == "/shared") {
        return Ok(s);
    }
    let rest = s
        .strip_prefix("/private/")
        .or_else(|| s.strip_prefix("/shared/"))
        .ok_or_else(bad)?;
    if rest.is_empty()
        || rest.split('/').any(str::is_empty)
        || !s
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'*' && b != b'%')
    {
        return Err(bad());
    }
    Ok(s)
}

/// A value on the wire: quoted when it can be, else a literal (literal8
/// for data holding NUL, RFC 3516 §4.2, as RFC 5464 §5 allows).
fn value_bytes(out: &mut Vec<u8>, v: &[u8]) {
    if v.len() < 1024
        && v.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(v);
        out.push(b'"');
    } else {
        if v.contains(&0) {
            out.push(b'~');
        }
        out.extend_from_slice(format!("{{{}}}\r\n", v.len()).as_bytes());
        out.extend_from_slice(v);
    }
}

impl Session {
    /// GETMETADATA and SETMETADATA.
    pub(crate) async fn handle_metadata(&mut self, cmd: MetadataCommand) -> Result<Done> {
        match cmd {
            MetadataCommand::Get {
                maxsize,
                depth,
                mailbox,
                entries,
            } => self.get_metadata(maxsize, depth, &mailbox, &entries).await,
            MetadataCommand::Set { mailbox, entries } => self.set_metadata(&mailbox, entries).await,
        }
    }

    /// The folder a mailbox argument names, `None` for "" (the server),
    /// and its name as replies give it.
    async fn metadata_target(
        &self,
        mailbox: &[u8],
    ) -> Result<(Option<postgate_types::FolderId>, String)> {
        if mailbox.is_empty() {
            return Ok((None, String::new()));
        }
        let user = self.user()?.id;
        let name = self.mailbox_arg(mailbox)?;
        let folder = self.folder_by_name(user, &name).await?;
        Ok((
            Some(folder.id),
            self.wire_name(&crate::names::imap_name(&folder)),
        ))
    }

    /// GETMETADATA (RFC 5464 §4.2).
    async fn get_metadata(
        &mut self,
        maxsize: Option<u64>,
        depth: Depth,
        mailbox: &[u8],
        names: &[Vec<u8>],
    ) -> Result<Done> {
        let names: Vec<String> = names
            .iter()
            .map(|n| entry_name_or_root(n, true))
            .collect::<Result<_>>()?;
        let user = self.user()?.id;
        let (folder, wire) = self.metadata_target(mailbox).await?;
        let mut stored = self.ctx.store.metadata(user, folder).await?;
        if folder.is_none() {
            // §3.2.1.2: where to reach the administrator.
            stored.push((
                "/shared/admin".into(),
                format!("mailto:postmaster@{}", self.ctx.hostname).into_bytes(),
            ));
        }
        let mut found: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for name in &names {
            let exact = stored.iter().find(|(n, _)| n == name);
            // Asked for and not there: NIL, as Dovecot answers (but for
            // the roots, which hold no value of their own).
            if exact.is_some() || name.matches('/').count() > 1 {
                found.push((name, exact.map(|(_, v)| v.as_slice())));
            }
            if depth == Depth::Zero {
                continue;
            }
            let prefix = format!("{name}/");
            for (n, v) in &stored {
                if let Some(rest) = n.strip_prefix(&prefix)
                    && (depth == Depth::Infinity || !rest.contains('/'))
                    && !found.iter().any(|(f, _)| f == n)
                {
                    found.push((n, Some(v)));
                }
            }
        }
        // §4.2.1: values over MAXSIZE are left out; LONGENTRIES says how
        // large the largest of them is.
        let mut longest = 0usize;
        let mut line = format!("* METADATA {} (", quote(&wire)).into_bytes();
        let mut first = true;
        for (name, value) in &found {
            if let (Some(max), Some(v)) = (maxsize, value)
                && v.len() as u64 > max
            {
                longest = longest.max(v.len());
                continue;
            }
            if !first {
                line.push(b' ');
            }
            first = false;
            line.extend_from_slice(name.as_bytes());
            line.push(b' ');
            match value {
                Some(v) => value_bytes(&mut line, v),
                None => line.extend_from_slice(b"NIL"),
            }
        }
        line.extend_from_slice(b")\r\n");
        if !first {
            self.raw(&line);
        }
        Ok(if longest > 0 {
            Done::code(format!("METADATA LONGENTRIES {longest}"))
        } else {
            Done::default()
        })
    }

    /// SETMETADATA (RFC 5464 §4.3): all the entries or none.
    async fn set_metadata(
        &mut self,
        mailbox: &[u8],
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Done> {
        let mut changes = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            changes.push((entry_name(&name)?, value));
        }
        let user = self.user()?.id;
        let (folder, _) = self.metadata_target(mailbox).await?;
        if folder.is_none() && changes.iter().any(|(n, _)| n.starts_with("/shared/")) {
            // §3.2: shared server entries are the administrator's.
            return Err(ImapError::no(
                Some("NOPERM"),
                "Shared server entries are set by the administrator",
            ));
        }
        // §4.3: MAXSIZE, the largest value taken.
        if changes
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v.len() > MAX_SIZE))
        {
            return Err(ImapError::no(
                Some(&format!("METADATA MAXSIZE {MAX_SIZE}")),
                "Value too large",
            ));
        }
        // §4.3: TOOMANY, counting what there will be.
        let stored = self.ctx.store.metadata(user, folder).await?;
        let mut names: std::collections::BTreeSet<&str> = stored
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with('/'))
            .collect();
        for (n, v) in &changes {
            if v.is_some() {
                names.insert(n);
            } else {
                names.remove(n.as_str());
            }
        }
        if names.len() > MAX_ENTRIES {
            return Err(ImapError::no(Some("METADATA TOOMANY"), "Too many entries"));
        }
        self.ctx.store.set_metadata(user, folder, changes).await?;
        Ok(Done::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let g = parse(
            b"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) \"INBOX\" (/private/a /shared/b)\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            g,
            MetadataCommand::Get {
                maxsize: Some(1024),
                depth: Depth::Infinity,
                mailbox: b"INBOX".to_vec(),
                entries: vec![b"/private/a".to_vec(), b"/shared/b".to_vec()],
            }
        );
        let s = parse(
            b"a SETMETADATA \"\" (/private/a \"x\" /private/b NIL /private/c {2}\r\nhi)\r\n",
            true,
        )
        .unwrap();
        assert_eq!(
            s,
            MetadataCommand::Set {
                mailbox: vec![],
                entries: vec![
                    (b"/private/a".to_vec(), Some(b"x".to_vec())),
                    (b"/private/b".to_vec(), None),
                    (b"/private/c".to_vec(), Some(b"hi".to_vec())),
                ],
            }
        );
        for (bad, set) in [
            (&b"a GETMETADATA INBOX\r\n"[..], false),
            (b"a GETMETADATA (DEPTH 2) INBOX /private/a\r\n", false),
            (b"a GETMETADATA (MAXSIZE x) INBOX /private/a\r\n", false),
            (b"a GETMETADATA INBOX /private/a extra\r\n", false),
            (b"a SETMETADATA INBOX ()\r\n", true),
            (b"a SETMETADATA INBOX (/private/a)\r\n", true),
            (b"a SETMETADATA INBOX /private/a x\r\n", true),
        ] {
            assert!(parse(bad, set).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn entry_names() {
        assert_eq!(entry_name(b"/Private/Comment").unwrap(), "/private/comment");
        assert_eq!(
            entry_name(b"/shared/vendor/x/y").unwrap(),
            "/shared/vendor/x/y"
        );
        for bad in [
            &b"/private"[..],
            b"/private/",
            b"/other/x",
            b"private/x",
            b"/private//x",
            b"/private/x/",
            b"/private/a*",
            b"/private/a%",
            b"/private/a b",
            b"urlauth-key",
        ] {
            assert!(entry_name(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn values() {
        let mut out = Vec::new();
        value_bytes(&mut out, b"plain text");
        assert_eq!(out, b"\"plain text\"");
        out.clear();
        value_bytes(&mut out, b"say \"hi\"");
        assert_eq!(out, b"{8}\r\nsay \"hi\"");
        out.clear();
        value_bytes(&mut out, b"a\0b");
        assert_eq!(out, b"~{3}\r\na\0b");
    }
}
