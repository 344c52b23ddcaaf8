//! APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID, RFC 3516 literal8, RFC 7889 APPENDLIMIT).
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
