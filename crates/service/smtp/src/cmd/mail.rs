//! MAIL FROM (RFC 5321 §4.1.1.2) and its parameters.
use crate::reply::Reply;
use crate::session::{Session, State, Transaction};
use postgate_types::EmailAddress;
use postgate_types::access::Direction;
use smtp_proto::MailFrom;

impl Session {
    pub(crate) async fn handle_mail(&mut self, from: MailFrom<String>) -> Reply {
        let helo = match &self.state {
            State::Fresh => return Reply::bad_sequence("Send HELO/EHLO first"),
            State::Mail(..) => return Reply::bad_sequence("Nested MAIL command"),
            State::Ready(helo) => helo.clone(),
        };
        if self.shutting_down() {
            return Reply::new(421, "4.3.2", "Service shutting down").closing();
        }
        let extended = helo.extended;
        // ESMTP parameters need EHLO (RFC 5321 §4.1.1.2: parameters are extensions).
        let has_params = from.flags != 0 || from.size != 0 || from.env_id.is_some();
        if has_params && !extended {
            return Reply::new(555, "5.5.4", "Parameters need EHLO");
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            // RFC 3030 §3: BINARYMIME is not offered here.
            return Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported");
        }
        if let Some(param) = unoffered(&from) {
            // RFC 5321 §4.1.1.11: 555 for a parameter not implemented.
            return Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"));
        }
        let max = self.settings.config.max_message_size;
        if from.size as u64 > max {
            // RFC 1870 §6.1: the declared size exceeds the fixed maximum.
            return Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max} octets)"),
            );
        }
        if self.auth_required && self.user.is_none() && !self.trusted {
            // RFC 6409 §4.3 / RFC 4954 §6: submission needs authentication.
            return Reply::new(530, "5.7.0", "Authentication required");
        }
        if let Some(sender) = self.mailbomb_sender()
            && self.checks.over_limit(sender)
        {
            // `[smtp.checks] mailbomb`; RFC 3463 4.7.0: a temporary refusal.
            tracing::info!(peer = %self.peer, ?sender, "mailbomb limit reached");
            return Reply::new(421, "4.7.0", "Too many messages, try again later").closing();
        }
        if let Some(user) = self.user.as_deref() {
            // RFC 6409 §8.1: a user sends as themselves; RFC 4954 5.7.1 otherwise.
            let owner = match EmailAddress::parse(&from.address) {
                Ok(a) => self.delivery.store().user(&a).await.ok().flatten(),
                Err(_) => None,
            };
            if owner.map(|o| o.id) != Some(user.id) {
                return Reply::new(
                    553,
                    "5.7.1",
                    format!(
                        "<{}>: Sender address not owned by {}",
                        from.address, user.address
                    ),
                );
            }
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if !from.address.is_empty() {
            match EmailAddress::parse(&from.address) {
                Ok(a) if a.is_utf8() && !smtputf8 => {
                    // RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8.
                    return Reply::new(553, "5.6.7", "Sender address needs SMTPUTF8");
                }
                Ok(_) => {}
                Err(_) => return Reply::new(553, "5.1.7", "Bad sender address syntax"),
            }
        }
        let mut class_max = 0;
        if let Some(user) = self.user.as_deref() {
            // The sender's class of service: its size limit for mail out.
            match self.auth.policy().class_of(user).await {
                Ok(c) => class_max = c.settings.smtp_send_max_size,
                Err(e) => return e.into(),
            }
        } else if !self.trusted {
            // A sender domain or HELO name blocked inbound (the client's
            // address was checked at connect).
            let domain = from.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            let names: Vec<&str> = [domain, helo.name.as_str()]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect();
            match self
                .auth
                .policy()
                .blocked(Direction::In, None, &names)
                .await
            {
                Ok(Some(b)) => {
                    return Reply::new(
                        550,
                        "5.7.1",
                        format!("<{}>: Sender blocked ({})", from.address, b.pattern),
                    );
                }
                Ok(None) => {}
                Err(e) => return e.into(),
            }
        }
        if class_max > 0 && from.size as u64 > class_max {
            // RFC 1870 §6.1, for this sender's class of service.
            return Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds the sender's limit ({class_max} octets)"),
            );
        }
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some("FULL".to_string())
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some("HDRS".to_string())
        } else {
            None
        };
        let body = if from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0 {
            Some("8BITMIME".to_string())
        } else if from.flags & smtp_proto::MAIL_BODY_7BIT != 0 {
            Some("7BIT".to_string())
        } else {
            None
        };
        // RFC 7208 §2.4: SPF of the MAIL FROM identity, before any
        // recipient, so a `fail` under `spf = "reject"` costs no data.
        let auth = if self.verifies() {
            let (spf, refuse) = self.check_spf(&helo.name, &from.address).await;
            if let Some(reply) = refuse {
                return reply;
            }
            Some(Box::new(crate::session::TxAuth {
                spf: Some(spf),
                ..Default::default()
            }))
        } else {
            None
        };
        self.commands_since_mail = 0;
        self.state = State::Mail(
            helo,
            Transaction {
                mail_from: from.address,
                env_id: from.env_id,
                ret,
                body,
                smtputf8,
                class_max,
                auth,
                ..Transaction::default()
            },
        );
        Reply::new(250, "2.1.0", "Ok")
    }
}

/// A parameter the parser knows but EHLO does not offer (REQUIRETLS of
/// RFC 8689, BY of RFC 2852, HOLDFOR/HOLDUNTIL of RFC 4865, MT-PRIORITY of
/// RFC 6710, CONPERM, MTRK, SOLICIT, TRANSID): taking one would promise
/// handling the server does not give. AUTH= (RFC 4954 §5) is taken.
fn unoffered(from: &MailFrom<String>) -> Option<&'static str> {
    use smtp_proto::{
        MAIL_BY_NOTIFY, MAIL_BY_RETURN, MAIL_BY_TRACE, MAIL_CONPERM, MAIL_REQUIRETLS,
    };
    [
        (from.flags & MAIL_REQUIRETLS != 0, "REQUIRETLS"),
        (
            from.by != 0 || from.flags & (MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE) != 0,
            "BY",
        ),
        (from.hold_for != 0, "HOLDFOR"),
        (from.hold_until != 0, "HOLDUNTIL"),
        (from.mt_priority != 0, "MT-PRIORITY"),
        (from.flags & MAIL_CONPERM != 0, "CONPERM"),
        (from.mtrk.is_some(), "MTRK"),
        (from.solicit.is_some(), "SOLICIT"),
        (from.trans_id.is_some(), "TRANSID"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name))
}
