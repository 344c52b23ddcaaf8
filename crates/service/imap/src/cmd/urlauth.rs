//! URLAUTH (RFC 4467): URLs to a message or part of one that carry their
//! own authorization (GENURLAUTH), read with URLFETCH by whom the URL's
//! access identifier allows, until the mailbox's key is reset (RESETKEY).
//!
//! The INTERNAL mechanism (RFC 4467 §7) is HMAC-SHA256 of the rump URL
//! under a 256-bit key per mailbox, kept in the store with the mailbox's
//! metadata (under a name no client can set) and made when first needed.
use super::misc::quote;
use crate::error::{ImapError, Result};
use crate::session::{Done, Session};
use crate::url::ImapUrl;
use postgate_types::{EmailAddress, UserId};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Where a mailbox's key is kept among its metadata entries: outside
/// /private and /shared, so no client can read or set it (RFC 5464 §3.2).
const KEY_ENTRY: &str = "urlauth-key";
/// The one mechanism (RFC 4467 §7).
const MECHANISM: &str = "INTERNAL";

/// The URLAUTH commands (RFC 4467 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlCommand {
    /// RESETKEY [mailbox [mechanism …]] (§6.1).
    ResetKey,
    /// GENURLAUTH url mechanism … (§6.2).
    GenUrlAuth,
    /// URLFETCH url … (§6.3).
    UrlFetch,
}

impl UrlCommand {
    /// The command for a command name.
    pub fn of(name: &str) -> Option<UrlCommand> {
        Some(match name {
            "RESETKEY" => UrlCommand::ResetKey,
            "GENURLAUTH" => UrlCommand::GenUrlAuth,
            "URLFETCH" => UrlCommand::UrlFetch,
            _ => return None,
        })
    }

    /// Its name, for counters.
    pub fn name(self) -> &'static str {
        match self {
            UrlCommand::ResetKey => "RESETKEY",
            UrlCommand::GenUrlAuth => "GENURLAUTH",
            UrlCommand::UrlFetch => "URLFETCH",
        }
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Session {
    /// A URLAUTH command; `args` are its arguments (astrings).
    pub(crate) async fn handle_urlauth(
        &mut self,
        command: UrlCommand,
        args: Vec<Vec<u8>>,
    ) -> Result<Done> {
        let user = self.user()?.id;
        match command {
            UrlCommand::ResetKey => self.reset_key(user, args).await,
            UrlCommand::GenUrlAuth => self.gen_url_auth(user, args).await,
            UrlCommand::UrlFetch => self.url_fetch(args).await,
        }
    }

    /// RESETKEY (RFC 4467 §6.1): new keys, so every URL made before stops
    /// working; for one mailbox, or without one for all of the user's.
    async fn reset_key(&mut self, user: UserId, args: Vec<Vec<u8>>) -> Result<Done> {
        let folders = match args.first() {
            Some(name) => {
                for m in &args[1..] {
                    if !m.eq_ignore_ascii_case(MECHANISM.as_bytes()) {
                        return Err(ImapError::no(None, "Unknown URLAUTH mechanism"));
                    }
                }
                let name = self.mailbox_arg(name)?;
                vec![self.folder_by_name(user, &name).await?]
            }
            None => self.ctx.store.folders(user).await?,
        };
        for f in folders {
            // Removed: the next GENURLAUTH makes a new one.
            self.ctx
                .store
                .set_metadata(user, Some(f.id), vec![(KEY_ENTRY.into(), None)])
                .await?;
        }
        Ok(Done::default())
    }

    /// GENURLAUTH (RFC 4467 §6.2): each URL (a rump: no verifier yet, the
    /// user's own mailbox) with its authorization added.
    async fn gen_url_auth(&mut self, user: UserId, args: Vec<Vec<u8>>) -> Result<Done> {
        if args.is_empty() || !args.len().is_multiple_of(2) {
            return Err(ImapError::bad(
                "GENURLAUTH takes URLs, each with a mechanism",
            ));
        }
        let me = self.user()?.address.to_string();
        let mut made = Vec::new();
        for pair in args.chunks(2) {
            let text = String::from_utf8(pair[0].clone())
                .map_err(|_| ImapError::bad("URL is not UTF-8"))?;
            let badurl = || {
                ImapError::no(
                    Some(&format!("BADURL {}", text.replace([']', '\r', '\n'], ""))),
                    "Not a URL this server authorizes",
                )
            };
            if !pair[1].eq_ignore_ascii_case(MECHANISM.as_bytes()) {
                return Err(ImapError::no(None, "Unknown URLAUTH mechanism"));
            }
            let url = ImapUrl::parse(&text).ok_or_else(badurl)?;
            // §6.2: a rump URL, to the user's own mailbox.
            let (Some(owner), Some(rump), None) = (&url.owner, &url.rump, &url.verifier) else {
                return Err(badurl());
            };
            if !owner.eq_ignore_ascii_case(&me) || !valid_access(url.access.as_deref()) {
                return Err(badurl());
            }
            let folder = self
                .ctx
                .store
                .folder(user, &url.mailbox)
                .await?
                .ok_or_else(badurl)?;
            let key = self
                .mailbox_key(user, folder.id, true)
                .await?
                .ok_or_else(badurl)?;
            let tag = hmac::sign(&key, rump.as_bytes());
            made.push(format!("{rump}:{MECHANISM}:{}", hex(tag.as_ref())));
        }
        let line = made.iter().map(|u| quote(u)).collect::<Vec<_>>().join(" ");
        self.untagged(&format!("GENURLAUTH {line}"));
        Ok(Done::default())
    }

    /// URLFETCH (RFC 4467 §6.3): each URL's data, or NIL for a URL that is
    /// invalid, not authorized for this session, or to nothing.
    async fn url_fetch(&mut self, args: Vec<Vec<u8>>) -> Result<Done> {
        if args.is_empty() {
            return Err(ImapError::bad("URLFETCH needs a URL"));
        }
        for raw in args {
            let text = String::from_utf8_lossy(&raw).into_owned();
            let data = match ImapUrl::parse(&text) {
                Some(url) if url.owner.is_some() => match self.authorized_owner(&url).await? {
                    Some(owner) => self.url_bytes(owner, &url).await?,
                    None => None,
                },
                _ => None,
            };
            let mut line = format!("* URLFETCH {} ", quote(&text)).into_bytes();
            match data {
                Some(d) => {
                    line.extend_from_slice(format!("{{{}}}\r\n", d.len()).as_bytes());
                    line.extend_from_slice(&d);
                }
                None => line.extend_from_slice(b"NIL"),
            }
            line.extend_from_slice(b"\r\n");
            self.raw(&line);
            self.flush_if_full()
                .await
                .map_err(|_| ImapError::bad("Connection lost"))?;
        }
        Ok(Done::default())
    }

    /// The owner of an absolute URL whose authorization holds for this
    /// session (RFC 4467 §3, §7): its access identifier admits the session
    /// user, it has not expired, and its token is the owner's mailbox key's.
    pub(crate) async fn authorized_owner(&mut self, url: &ImapUrl) -> Result<Option<UserId>> {
        let (Some(owner), Some(access), Some(rump), Some((mech, token))) =
            (&url.owner, &url.access, &url.rump, &url.verifier)
        else {
            return Ok(None);
        };
        let me = self.user()?.address.to_string();
        let admitted = match access.to_ascii_lowercase().as_str() {
            // §3: any user of this server once logged in; anyone.
            "authuser" | "anonymous" => true,
            a => a
                .strip_prefix("user+")
                .is_some_and(|u| u.eq_ignore_ascii_case(&me)),
            // "submit+" is for a submission server reading on a user's behalf.
        };
        if !admitted || !mech.eq_ignore_ascii_case(MECHANISM) {
            return Ok(None);
        }
        if let Some(expire) = &url.expire {
            // §3: an expired URL is invalid.
            match chrono::DateTime::parse_from_rfc3339(expire) {
                Ok(t) if t > chrono::Utc::now() => {}
                _ => return Ok(None),
            }
        }
        let Ok(address) = EmailAddress::parse(owner) else {
            return Ok(None);
        };
        let Some(owner) = self.ctx.store.user(&address).await? else {
            return Ok(None);
        };
        let Some(folder) = self.ctx.store.folder(owner.id, &url.mailbox).await? else {
            return Ok(None);
        };
        let (Some(key), Some(token)) = (
            self.mailbox_key(owner.id, folder.id, false).await?,
            unhex(token),
        ) else {
            return Ok(None);
        };
        Ok(hmac::verify(&key, rump.as_bytes(), &token)
            .is_ok()
            .then_some(owner.id))
    }

    /// A mailbox's URLAUTH key; made (and stored) if it has none and `make`.
    async fn mailbox_key(
        &self,
        user: UserId,
        folder: postgate_types::FolderId,
        make: bool,
    ) -> Result<Option<hmac::Key>> {
        let entries = self.ctx.store.metadata(user, Some(folder)).await?;
        if let Some((_, k)) = entries.iter().find(|(n, _)| n == KEY_ENTRY) {
            return Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, k)));
        }
        if !make {
            return Ok(None);
        }
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| ImapError::no(Some("SERVERBUG"), "No randomness"))?;
        self.ctx
            .store
            .set_metadata(
                user,
                Some(folder),
                vec![(KEY_ENTRY.into(), Some(k.to_vec()))],
            )
            .await?;
        Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, &k)))
    }
}

/// Whether an access identifier is one RFC 4467 §3 defines.
fn valid_access(access: Option<&str>) -> bool {
    let Some(a) = access.map(str::to_ascii_lowercase) else {
        return false;
    };
    matches!(a.as_str(), "authuser" | "anonymous")
        || a.strip_prefix("user+").is_some_and(|u| !u.is_empty())
        || a.strip_prefix("submit+").is_some_and(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert!(valid_access(Some("user+joe@example.org")));
        assert!(!valid_access(Some("user+")));
        assert!(!valid_access(Some("someone")));
    }
}
