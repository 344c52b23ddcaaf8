//! NAMESPACE, ID, ENABLE, COMPRESS, QUOTA.
use crate::error::{ImapError, Result};
use crate::session::{Done, IoStream, Session, State};
use imap_types::core::Vec1;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::mailbox::Mailbox;
use postgate_runtime::deflate::DeflateStream;

impl Session {
    pub(crate) fn handle_namespace(&mut self) -> Result<Done> {
        // RFC 2342: one personal namespace, no others.
        self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
        Ok(Done::default())
    }

    pub(crate) fn handle_id(&mut self) -> Result<Done> {
        // RFC 2971.
        self.untagged(&format!(
            "ID (\"name\" \"Postgate\" \"version\" \"{}\" \"vendor\" \"Postgate\")",
            env!("CARGO_PKG_VERSION")
        ));
        Ok(Done::default())
    }

    pub(crate) async fn handle_enable(&mut self, caps: Vec1<CapabilityEnable<'_>>) -> Result<Done> {
        // RFC 5161.
        let mut enabled = Vec::new();
        for c in caps.as_ref() {
            let name = match c {
                CapabilityEnable::CondStore => "CONDSTORE".to_string(),
                other => other.to_string().to_ascii_uppercase(),
            };
            match name.as_str() {
                "CONDSTORE" if !self.enabled.condstore => {
                    self.enabled.condstore = true;
                    enabled.push("CONDSTORE");
                }
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                "QRESYNC" if !self.enabled.qresync => {
                    self.enabled.qresync = true;
                    self.enabled.condstore = true;
                    enabled.push("QRESYNC");
                }
                // RFC 6855 §3: mailbox names in UTF-8 from now on.
                "UTF8=ACCEPT" if !self.enabled.utf8 => {
                    self.enabled.utf8 = true;
                    enabled.push("UTF8=ACCEPT");
                }
                "IMAP4REV2" if !self.enabled.rev2 => {
                    self.enabled.rev2 = true;
                    enabled.push("IMAP4rev2");
                }
                _ => {}
            }
        }
        self.untagged(&format!(
            "ENABLED{}",
            enabled.iter().map(|e| format!(" {e}")).collect::<String>()
        ));
        Ok(Done::default())
    }

    pub(crate) async fn handle_compress(&mut self, tag: &str) -> Result<Done> {
        if matches!(self.stream, Some(IoStream::Deflate(_))) {
            return Err(ImapError::no(
                Some("COMPRESSIONACTIVE"),
                "Compression is already active",
            ));
        }
        // RFC 4978 §3: the tagged OK in the clear, everything after compressed.
        self.tagged(tag, "OK", None, "DEFLATE active");
        if self.flush().await.is_err() {
            self.state = State::Logout;
        }
        if let Some(IoStream::Plain(s)) = self.stream.take() {
            self.stream = Some(IoStream::Deflate(Box::new(DeflateStream::new(s))));
        }
        Ok(Done {
            sent: true,
            ..Done::default()
        })
    }

    fn quota_line(&self, used: u64) -> Option<String> {
        let limit = self.ctx.config.quota;
        // RFC 9208 §5.2: STORAGE in units of 1024 octets.
        (limit > 0).then(|| {
            format!(
                "QUOTA \"\" (STORAGE {} {})",
                used.div_ceil(1024),
                limit / 1024
            )
        })
    }

    pub(crate) async fn handle_getquota(&mut self, root: &[u8]) -> Result<Done> {
        if !root.is_empty() || self.ctx.config.quota == 0 {
            return Err(ImapError::no(Some("NONEXISTENT"), "No such quota root"));
        }
        let used = self.ctx.store.usage(self.user()?.id).await?;
        if let Some(l) = self.quota_line(used) {
            self.untagged(&l);
        }
        Ok(Done::default())
    }

    pub(crate) async fn handle_getquotaroot(&mut self, mailbox: Mailbox<'_>) -> Result<Done> {
        let name = self.mailbox_name(&mailbox)?;
        let user = self.user()?.id;
        self.folder_by_name(user, &name).await?;
        let wire = self.wire_name(&name);
        if self.ctx.config.quota == 0 {
            // RFC 9208 §4.3.2: no quota root applies.
            self.untagged(&format!("QUOTAROOT {}", quote(&wire)));
            return Ok(Done::default());
        }
        self.untagged(&format!("QUOTAROOT {} \"\"", quote(&wire)));
        let used = self.ctx.store.usage(user).await?;
        if let Some(l) = self.quota_line(used) {
            self.untagged(&l);
        }
        Ok(Done::default())
    }
}

/// A mailbox name as an IMAP astring.
pub(crate) fn quote(name: &str) -> String {
    let mut out = Vec::new();
    postgate_imap_proto::wire::astring(&mut out, name.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}
