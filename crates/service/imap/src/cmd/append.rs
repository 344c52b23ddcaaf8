//! APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID, RFC 3516 literal8, RFC 7889
//! APPENDLIMIT) and MULTIAPPEND (RFC 3502).
use super::store::split_flags;
use crate::error::{ImapError, Result};
use crate::names;
use crate::rewrite::{AppendData, CatPart};
use crate::session::{Done, Session};
use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::Flag;
use imap_types::mailbox::Mailbox;
use postgate_store::NewMessage;

impl Session {
    pub(crate) async fn handle_append(
        &mut self,
        mailbox: Mailbox<'_>,
        flag_list: Vec<Flag<'_>>,
        date: Option<DateTime>,
        data: LiteralOrLiteral8<'_>,
        streamed: Option<Vec<u8>>,
    ) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        let user = self.user()?.id;
        let folder = self.append_target(user, &name).await?;
        let (flags, keywords) = split_flags(&flag_list)?;
        // The message: read aside if large, else from the parsed command.
        let raw = match streamed {
            Some(r) => r,
            None => match data {
                LiteralOrLiteral8::Literal(l) => l.as_ref().to_vec(),
                LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
            },
        };
        self.check_appended(&raw)?;
        self.check_quota(user, raw.len() as u64).await?;
        // RFC 3501 §6.3.11: the date-time's zone is kept with the
        // INTERNALDATE and given back by FETCH.
        let (internal_date, internal_zone) = date
            .map(|d| instant_and_zone(&d))
            .unwrap_or_else(|| (chrono::Utc::now().timestamp(), 0));
        // Large messages are parsed off the async threads; the bytes move
        // there and back, never copied.
        let (raw, content) = if raw.len() > 256 * 1024 {
            tokio::task::spawn_blocking(move || {
                let c = postgate_mime::parse_message(&raw).content;
                (raw, c)
            })
            .await
            .map_err(|_| ImapError::no(Some("SERVERBUG"), "Parser failed"))?
        } else {
            let c = postgate_mime::parse_message(&raw).content;
            (raw, c)
        };
        let (validity, uid) = self
            .ctx
            .store
            .append(
                folder.id,
                NewMessage {
                    raw,
                    content,
                    flags,
                    keywords,
                    internal_date,
                    internal_zone,
                },
            )
            .await?;
        // RFC 9051 §6.3.12: EXISTS at once if the mailbox is the selected one.
        if matches!(self.state, crate::session::State::Selected(..)) {
            self.sync(true).await?;
        }
        Ok(Done::code(format!("APPENDUID {validity} {uid}")))
    }
}

impl Session {
    /// APPEND of several messages (RFC 3502) or of messages put together
    /// (CATENATE, RFC 4469): all are stored in one commit or none is (RFC
    /// 3502 §6.3.11, RFC 4469 §5); the tagged OK's APPENDUID names their
    /// UIDs as a set (RFC 4315 §3). Each message's options are parsed by
    /// imap-codec as one APPEND's would be.
    pub(crate) async fn handle_multiappend(
        &mut self,
        bytes: &[u8],
        mailbox: std::ops::Range<usize>,
        messages: Vec<(std::ops::Range<usize>, AppendData)>,
        aside: Vec<(usize, Vec<u8>)>,
    ) -> Result<Done> {
        use imap_types::command::CommandBody;
        let user = self.user()?.id;
        let mut aside: std::collections::HashMap<usize, Vec<u8>> = aside.into_iter().collect();
        // A literal's data: read aside if large, else after its "{n}" CRLF.
        let mut literal = |range: &std::ops::Range<usize>| -> Vec<u8> {
            aside.remove(&range.start).unwrap_or_else(|| {
                let lit = &bytes[range.clone()];
                let header = lit
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(lit.len(), |i| i + 1);
                lit[header..].to_vec()
            })
        };
        let mut parsed = Vec::with_capacity(messages.len());
        let mut name = None;
        for (opts, data) in messages {
            let mut one = b"m APPEND ".to_vec();
            one.extend_from_slice(&crate::rewrite::for_codec(&bytes[mailbox.clone()]));
            one.extend_from_slice(&bytes[opts]);
            one.extend_from_slice(b"{0}\r\n\r\n");
            let cmd = crate::rewrite::decode(&one)?;
            let CommandBody::Append {
                mailbox,
                flags,
                date,
                ..
            } = cmd.body
            else {
                return Err(ImapError::bad("Invalid APPEND"));
            };
            if name.is_none() {
                name = Some(self.mailbox_name(&mailbox)?);
            }
            // Literals now (their data is in this command); URLs once the
            // target is known to exist (RFC 4469 §5: TRYCREATE first).
            let parts: Vec<std::result::Result<Vec<u8>, String>> = match data {
                AppendData::Literal(r) => vec![Ok(literal(&r))],
                AppendData::Catenate(parts) => parts
                    .into_iter()
                    .map(|p| match p {
                        CatPart::Text(r) => Ok(literal(&r)),
                        CatPart::Url(u) => Err(u),
                    })
                    .collect(),
            };
            let (flags, keywords) = split_flags(&flags)?;
            parsed.push((flags, keywords, date.map(|d| instant_and_zone(&d)), parts));
        }
        let folder = self.append_target(user, &name.unwrap_or_default()).await?;
        let limit = self.ctx.config.max_append_size;
        let mut total = 0u64;
        let mut ready = Vec::with_capacity(parsed.len());
        for (flags, keywords, date, parts) in parsed {
            let mut raw = Vec::new();
            for part in parts {
                match part {
                    Ok(data) => raw.extend_from_slice(&data),
                    Err(url) => raw.extend_from_slice(&self.catenate_url(user, &url).await?),
                }
                if raw.len() as u64 > limit {
                    // RFC 4469 §5: TOOBIG for a result over the limit.
                    return Err(ImapError::no(Some("TOOBIG"), "Message too large"));
                }
            }
            self.check_appended(&raw)?;
            total += raw.len() as u64;
            ready.push((flags, keywords, date, raw));
        }
        // Nothing is stored if all of them do not fit.
        self.check_quota(user, total).await?;
        let now = chrono::Utc::now().timestamp();
        let batch = tokio::task::spawn_blocking(move || {
            ready
                .into_iter()
                .map(|(flags, keywords, date, raw)| {
                    let content = postgate_mime::parse_message(&raw).content;
                    let (internal_date, internal_zone) = date.unwrap_or((now, 0));
                    NewMessage {
                        raw,
                        content,
                        flags,
                        keywords,
                        internal_date,
                        internal_zone,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|_| ImapError::no(Some("SERVERBUG"), "Parser failed"))?;
        let (validity, uids) = self.ctx.store.append_batch(folder.id, batch).await?;
        if matches!(self.state, crate::session::State::Selected(..)) {
            self.sync(true).await?;
        }
        Ok(Done::code(format!(
            "APPENDUID {validity} {}",
            crate::rewrite::format_set(&uids)
        )))
    }

    /// The folder an APPEND stores into: NO [TRYCREATE] if there is none
    /// (RFC 9051 §6.3.12), NO [CANNOT] if IMAP may not change it.
    async fn append_target(
        &self,
        user: postgate_types::UserId,
        name: &str,
    ) -> Result<postgate_store::Folder> {
        match self.ctx.store.folder(user, name).await? {
            Some(f) if names::read_only(f.role) => {
                Err(ImapError::no(Some("CANNOT"), "Mailbox is read-only"))
            }
            Some(f) => Ok(f),
            None => Err(ImapError::no(Some("TRYCREATE"), "Mailbox doesn't exist")),
        }
    }

    /// A message APPEND may store: not empty, and within APPENDLIMIT (RFC
    /// 7889 §4: TOOBIG).
    fn check_appended(&self, raw: &[u8]) -> Result<()> {
        if raw.is_empty() {
            return Err(ImapError::no(None, "Empty message"));
        }
        if raw.len() as u64 > self.ctx.config.max_append_size {
            return Err(ImapError::no(Some("TOOBIG"), "Message too large"));
        }
        Ok(())
    }

    /// Room for `adding` more octets in the user's quota (RFC 9208 §4.2:
    /// OVERQUOTA).
    async fn check_quota(&self, user: postgate_types::UserId, adding: u64) -> Result<()> {
        let quota = self.ctx.config.quota;
        if quota > 0 && self.ctx.store.usage(user).await? + adding > quota {
            return Err(ImapError::no(Some("OVERQUOTA"), "Quota exceeded"));
        }
        Ok(())
    }

    /// The bytes an IMAP URL (RFC 5092) names, for CATENATE (RFC 4469
    /// §5): a relative URL into the user's own mailboxes, or an absolute
    /// one that URLAUTH authorizes (RFC 4467 §3). Anything else, or a
    /// message that is not there, is NO [BADURL url].
    async fn catenate_url(&mut self, user: postgate_types::UserId, url: &str) -> Result<Vec<u8>> {
        let bad = || {
            ImapError::no(
                Some(&format!("BADURL {}", url.replace([']', '\r', '\n'], ""))),
                "Invalid or unknown URL",
            )
        };
        let parsed = crate::url::ImapUrl::parse(url).ok_or_else(bad)?;
        let owner = if parsed.owner.is_some() {
            self.authorized_owner(&parsed).await?.ok_or_else(bad)?
        } else {
            user
        };
        self.url_bytes(owner, &parsed).await?.ok_or_else(bad)
    }

    /// The bytes a URL names in `owner`'s mailboxes: the message, or the
    /// section (as FETCH BODY[section] reads it, RFC 5092 §4), and of it
    /// the partial range (RFC 5092 §5); `None` if there is no such message.
    pub(crate) async fn url_bytes(
        &mut self,
        owner: postgate_types::UserId,
        url: &crate::url::ImapUrl,
    ) -> Result<Option<Vec<u8>>> {
        let Some(folder) = self.ctx.store.folder(owner, &url.mailbox).await? else {
            return Ok(None);
        };
        if url.uid_validity.is_some_and(|v| v != folder.uid_validity) {
            return Ok(None);
        }
        let Some(raw) = self.ctx.store.raw(folder.id, url.uid).await? else {
            return Ok(None);
        };
        let data = match &url.section {
            None => raw,
            Some(section) => {
                // The section parsed by imap-codec, as FETCH's.
                let mut fetch = b"x FETCH 1 BODY.PEEK[".to_vec();
                fetch.extend_from_slice(section);
                fetch.extend_from_slice(b"]\r\n");
                let Ok(cmd) = crate::rewrite::decode(&fetch) else {
                    return Ok(None);
                };
                let imap_types::command::CommandBody::Fetch {
                    macro_or_item_names:
                        imap_types::fetch::MacroOrMessageDataItemNames::MessageDataItemNames(items),
                    ..
                } = cmd.body
                else {
                    return Ok(None);
                };
                let Some(imap_types::fetch::MessageDataItemName::BodyExt { section: sec, .. }) =
                    items.first()
                else {
                    return Ok(None);
                };
                let (path, spec, _) = super::fetch::section_spec(sec.as_ref());
                let root = postgate_imap_proto::mime::parse(&raw);
                postgate_imap_proto::section::section(&raw, &root, &path, &spec)
                    .map(|d| d.to_vec())
                    .unwrap_or_default()
            }
        };
        Ok(Some(match url.partial {
            // RFC 5092 §5: octets from the offset, as many as the length.
            Some((off, len)) => {
                let from = off.min(data.len());
                let to = len.map_or(data.len(), |l| from.saturating_add(l).min(data.len()));
                data[from..to].to_vec()
            }
            None => data,
        }))
    }
}

/// An APPEND date-time as the store keeps it: Unix seconds, and its zone in
/// minutes east of UTC (kept so that FETCH gives the date back as it came).
fn instant_and_zone(d: &DateTime) -> (i64, i32) {
    let d = d.as_ref();
    (d.timestamp(), d.offset().local_minus_utc() / 60)
}
