//! IMAP URLs (RFC 5092) naming a message or a part of one, relative
//! ("/INBOX/;UID=3/;SECTION=1") as CATENATE takes them (RFC 4469 §5) or
//! absolute ("imap://user@host/INBOX/;UID=3") with URLAUTH's authorization
//! (RFC 4467 §3: ";EXPIRE=…;URLAUTH=access:mechanism:token").
use percent_encoding::percent_decode_str;

/// A parsed IMAP URL to a message (RFC 5092 §6 imessagepart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The login of the mailbox owner (RFC 5092 §6 enc-user), for an
    /// absolute URL; with the host appended when it has no "@" of its own
    /// (logins here are addresses).
    pub owner: Option<String>,
    /// The mailbox name, decoded (RFC 5092 §9 %XX).
    pub mailbox: String,
    /// ";UIDVALIDITY=" (RFC 5092 §6).
    pub uid_validity: Option<u32>,
    /// ";UID=".
    pub uid: u32,
    /// ";SECTION=", decoded: IMAP section text (RFC 5092 §4).
    pub section: Option<Vec<u8>>,
    /// ";PARTIAL=" offset and length (RFC 5092 §5).
    pub partial: Option<(usize, Option<usize>)>,
    /// ";EXPIRE=" (RFC 4467 §3), as given.
    pub expire: Option<String>,
    /// ";URLAUTH=" access identifier (RFC 4467 §3: "user+" name,
    /// "submit+" name, "authuser", "anonymous").
    pub access: Option<String>,
    /// The URL up to and including the access identifier: what the
    /// authorization token is computed over (RFC 4467 §7 "rump URL").
    pub rump: Option<String>,
    /// ":mechanism:token" after the rump (RFC 4467 §3 iua-verifier).
    pub verifier: Option<(String, String)>,
}

impl ImapUrl {
    /// Parses a URL; `None` if it is not one this server reads.
    pub fn parse(url: &str) -> Option<ImapUrl> {
        let (owner, path) = match strip_prefix_ci(url, "imap://") {
            Some(rest) => {
                let slash = rest.find('/')?;
                let (server, path) = rest.split_at(slash);
                // iserver = [iuserinfo "@"] host [":" port]
                let (userinfo, host) = server.rsplit_once('@')?;
                let user = userinfo.split(';').next()?;
                let user = decode(user)?;
                let host = host.split(':').next()?;
                let owner = if user.contains('@') {
                    user
                } else {
                    format!("{user}@{}", decode(host)?)
                };
                (Some(owner), path)
            }
            None => (None, url),
        };
        let path = path.strip_prefix('/')?;
        // The authorization part (RFC 4467 §3: iurlauth-rump iua-verifier)
        // ends the URL: ";EXPIRE=" date-time first, if there.
        let lower = path.to_ascii_lowercase();
        let auth_at = lower.find(";urlauth=");
        let expire_at = lower
            .find(";expire=")
            .filter(|e| auth_at.is_some_and(|a| *e < a));
        let part_end = expire_at.or(auth_at).unwrap_or(path.len());
        let (mut expire, mut access, mut rump, mut verifier) = (None, None, None, None);
        if let Some(a) = auth_at {
            // Authorization is for absolute URLs only (RFC 4467 §3).
            owner.as_ref()?;
            if let Some(e) = expire_at {
                expire = Some(path[e + ";expire=".len()..a].to_string());
            }
            let after = &path[a + ";urlauth=".len()..];
            let (acc, rest) = match after.split_once(':') {
                Some((acc, rest)) => (acc, Some(rest)),
                None => (after, None),
            };
            if acc.is_empty() {
                return None;
            }
            access = Some(decode(acc)?);
            let rump_len = url.len() - path.len() + a + ";urlauth=".len() + acc.len();
            rump = Some(url[..rump_len].to_string());
            if let Some(rest) = rest {
                let (mech, token) = rest.split_once(':')?;
                verifier = Some((mech.to_string(), token.to_string()));
            }
        }
        let mut pieces = path[..part_end].split("/;");
        let first = pieces.next()?;
        let (enc_mailbox, uid_validity) = match first.split_once(';') {
            Some((m, v)) => {
                let (key, value) = v.split_once('=')?;
                if !key.eq_ignore_ascii_case("UIDVALIDITY") {
                    return None;
                }
                (m, Some(value.parse::<u32>().ok()?))
            }
            None => (first, None),
        };
        let (mut uid, mut section, mut partial) = (None, None, None);
        for piece in pieces {
            let (key, value) = piece.split_once('=')?;
            match key.to_ascii_uppercase().as_str() {
                "UID" if uid.is_none() => uid = Some(value.parse::<u32>().ok()?),
                "SECTION" if section.is_none() => {
                    section = Some(percent_decode_str(value).collect::<Vec<u8>>())
                }
                "PARTIAL" if partial.is_none() => {
                    let (off, len) = match value.split_once('.') {
                        Some((o, l)) => (o, Some(l.parse::<usize>().ok()?)),
                        None => (value, None),
                    };
                    partial = Some((off.parse::<usize>().ok()?, len));
                }
                _ => return None,
            }
        }
        let mailbox = decode(enc_mailbox)?;
        if mailbox.is_empty() {
            return None;
        }
        Some(ImapUrl {
            owner,
            mailbox: if mailbox.eq_ignore_ascii_case("INBOX") {
                "INBOX".into()
            } else {
                mailbox
            },
            uid_validity,
            uid: uid.filter(|u| *u > 0)?,
            section,
            partial,
            expire,
            access,
            rump,
            verifier,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// %XX decoding (RFC 5092 §9, RFC 3986 §2.1) to UTF-8.
fn decode(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        let u = ImapUrl::parse("/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=1.2/;PARTIAL=5.10").unwrap();
        assert_eq!(u.owner, None);
        assert_eq!(
            (u.mailbox.as_str(), u.uid_validity, u.uid),
            ("INBOX", Some(7), 3)
        );
        assert_eq!(u.section.as_deref(), Some(&b"1.2"[..]));
        assert_eq!(u.partial, Some((5, Some(10))));
        assert_eq!(u.rump, None);
        // RFC 4467 §3's example shape.
        let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
        let u = ImapUrl::parse(url).unwrap();
        assert_eq!(u.owner.as_deref(), Some("joe@example.com"));
        assert_eq!(u.section.as_deref(), Some(&b"1.2"[..]));
        assert_eq!(u.access.as_deref(), Some("submit+fred"));
        assert_eq!(
            u.rump.as_deref(),
            Some("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred")
        );
        assert_eq!(
            u.verifier,
            Some(("internal".into(), "91354a473744909de610943775f92038".into()))
        );
        let u = ImapUrl::parse(
            "imap://a%40b.example@host/Sent%20Items/;UID=1;EXPIRE=2026-12-01T10:00:00Z;URLAUTH=authuser",
        )
        .unwrap();
        assert_eq!(u.owner.as_deref(), Some("a@b.example"));
        assert_eq!(u.mailbox, "Sent Items");
        assert_eq!(u.expire.as_deref(), Some("2026-12-01T10:00:00Z"));
        assert_eq!(u.access.as_deref(), Some("authuser"));
        assert!(u.verifier.is_none());
    }

    #[test]
    fn refusals() {
        for bad in [
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;UID=2",
            "/INBOX/;NOPE=1",
            "/INBOX/;UID=1;URLAUTH=anonymous",
            "imap://host/INBOX/;UID=1",
            "imap://u@host/INBOX/;UID=1;URLAUTH=",
            "imap://u@host/INBOX/;UID=1;URLAUTH=authuser:INTERNAL",
            "/%FF/;UID=1",
        ] {
            assert_eq!(ImapUrl::parse(bad), None, "{bad}");
        }
    }
}
