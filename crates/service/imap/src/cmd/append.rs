//! APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID, RFC 3516 literal8, RFC 7889
//! APPENDLIMIT) and MULTIAPPEND (RFC 3502).
use super::store::split_flags;
use crate::error::{ImapError, Result};
use crate::names;
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
        let folder = match self.ctx.store.folder(user, &name).await? {
            Some(f) => f,
            // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
            None => return Err(ImapError::no(Some("TRYCREATE"), "Mailbox doesn't exist")),
        };
        if names::read_only(folder.role) {
            return Err(ImapError::no(Some("CANNOT"), "Mailbox is read-only"));
        }
        let (flags, keywords) = split_flags(&flag_list)?;
        // The message: read aside if large, else from the parsed command.
        let raw = match streamed {
            Some(r) => r,
            None => match data {
                LiteralOrLiteral8::Literal(l) => l.as_ref().to_vec(),
                LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
            },
        };
        if raw.is_empty() {
            return Err(ImapError::no(None, "Empty message"));
        }
        if raw.len() as u64 > self.ctx.config.max_append_size {
            return Err(ImapError::no(Some("TOOBIG"), "Message too large"));
        }
        let quota = self.ctx.config.quota;
        if quota > 0 {
            let used = self.ctx.store.usage(user).await?;
            if used + raw.len() as u64 > quota {
                // RFC 9208 §4.2: OVERQUOTA.
                return Err(ImapError::no(Some("OVERQUOTA"), "Quota exceeded"));
            }
        }
        let internal_date = date
            .map(|d| d.as_ref().timestamp())
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
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
    /// APPEND of several messages (RFC 3502): all are stored in one commit
    /// or none is (§6.3.11); the tagged OK's APPENDUID names their UIDs as
    /// a set (RFC 4315 §3). Each message's options are parsed by imap-codec
    /// as one APPEND's would be.
    pub(crate) async fn handle_multiappend(
        &mut self,
        bytes: &[u8],
        mailbox: std::ops::Range<usize>,
        messages: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
        aside: Vec<(usize, Vec<u8>)>,
    ) -> Result<Done> {
        use imap_types::command::CommandBody;
        let user = self.user()?.id;
        let mut aside = aside.into_iter().peekable();
        let mut parsed = Vec::with_capacity(messages.len());
        let mut name = None;
        for (opts, literal) in messages {
            let mut one = b"m APPEND ".to_vec();
            one.extend_from_slice(&bytes[mailbox.clone()]);
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
            let raw = match aside.peek() {
                Some((at, _)) if *at == literal.start => {
                    aside.next().map(|(_, d)| d).unwrap_or_default()
                }
                _ => {
                    // Inline: the data after the literal's "{n}" CRLF.
                    let lit = &bytes[literal];
                    let header = lit
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(lit.len(), |i| i + 1);
                    lit[header..].to_vec()
                }
            };
            let (flags, keywords) = split_flags(&flags)?;
            parsed.push((flags, keywords, date.map(|d| d.as_ref().timestamp()), raw));
        }
        let name = name.unwrap_or_default();
        let folder = match self.ctx.store.folder(user, &name).await? {
            Some(f) => f,
            // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
            None => return Err(ImapError::no(Some("TRYCREATE"), "Mailbox doesn't exist")),
        };
        if names::read_only(folder.role) {
            return Err(ImapError::no(Some("CANNOT"), "Mailbox is read-only"));
        }
        let mut total = 0u64;
        for (_, _, _, raw) in &parsed {
            if raw.is_empty() {
                return Err(ImapError::no(None, "Empty message"));
            }
            if raw.len() as u64 > self.ctx.config.max_append_size {
                return Err(ImapError::no(Some("TOOBIG"), "Message too large"));
            }
            total += raw.len() as u64;
        }
        let quota = self.ctx.config.quota;
        if quota > 0 && self.ctx.store.usage(user).await? + total > quota {
            // RFC 9208 §4.2: OVERQUOTA, and nothing is stored.
            return Err(ImapError::no(Some("OVERQUOTA"), "Quota exceeded"));
        }
        let now = chrono::Utc::now().timestamp();
        let batch = tokio::task::spawn_blocking(move || {
            parsed
                .into_iter()
                .map(|(flags, keywords, date, raw)| {
                    let content = postgate_mime::parse_message(&raw).content;
                    NewMessage {
                        raw,
                        content,
                        flags,
                        keywords,
                        internal_date: date.unwrap_or(now),
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
}
