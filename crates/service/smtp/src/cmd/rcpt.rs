//! RCPT TO (RFC 5321 §4.1.1.3): recipients resolve through the directory.
use crate::reply::Reply;
use crate::session::{Rcpt, Session, State};
use postgate_store::{Resolution, UserRef};
use postgate_types::EmailAddress;
use postgate_types::access::Direction;
use smtp_proto::RcptTo;

impl Session {
    /// The policy point's word on one recipient: blocked destinations and
    /// the sender's class for mail out; each local recipient's class for
    /// mail in from the Internet. The recipients that may receive, and the
    /// smallest size limit among the classes involved.
    async fn rcpt_policy(
        &self,
        address: &EmailAddress,
        users: Vec<UserRef>,
        remote: bool,
    ) -> Result<(Vec<UserRef>, u64), Reply> {
        let policy = self.auth.policy();
        if policy.inert().await.map_err(Reply::from)? {
            return Ok((users, 0));
        }
        let State::Mail(_, tx) = &self.state else {
            return Err(Reply::bad_sequence("Need MAIL command"));
        };
        if remote {
            if let Some(b) = policy
                .blocked(Direction::Out, None, &[address.domain()])
                .await
                .map_err(Reply::from)?
            {
                return Err(Reply::new(
                    550,
                    "5.7.1",
                    format!("<{address}>: Destination blocked ({})", b.pattern),
                ));
            }
            let Some(user) = self.user.as_deref() else {
                return Ok((users, 0));
            };
            let class = policy.class_of(user).await.map_err(Reply::from)?;
            if !class
                .settings
                .smtp_send
                .allows(Some(address.domain()), None)
            {
                return Err(Reply::new(
                    550,
                    "5.7.1",
                    format!(
                        "<{address}>: {} may not send to the Internet (class of service {})",
                        user.address, class.class
                    ),
                ));
            }
            return Ok((users, class.settings.smtp_send_max_size));
        }
        if self.user.is_some() || self.trusted {
            // Local mail from a local user or a trusted network.
            return Ok((users, 0));
        }
        // From the Internet: each recipient's class decides.
        let sender = tx.mail_from.rsplit_once('@').map(|(_, d)| d);
        let ip = Some(self.peer.ip());
        let (mut kept, mut max) = (Vec::with_capacity(users.len()), 0u64);
        for u in users {
            let class = policy.class_of_ref(&u).await.map_err(Reply::from)?;
            if class.settings.smtp_receive.allows(sender, ip) {
                let m = class.settings.smtp_receive_max_size;
                if m > 0 && (max == 0 || m < max) {
                    max = m;
                }
                kept.push(u);
            }
        }
        if kept.is_empty() {
            return Err(Reply::new(
                550,
                "5.7.1",
                format!("<{address}>: Recipient may not receive mail from the Internet"),
            ));
        }
        Ok((kept, max))
    }

    /// RFC 5321 §4.5.1: the bare "Postmaster" recipient, as postmaster at
    /// our host name or the nearest parent domain of it that we serve,
    /// else at the first domain we serve (by name); `None` if we serve none.
    async fn bare_postmaster(&self) -> Result<Option<String>, postgate_store::StoreError> {
        let store = self.delivery.store();
        let mut name = self.settings.hostname.as_str();
        while name.contains('.') {
            if store.is_local_domain(name).await? {
                return Ok(Some(format!("postmaster@{name}")));
            }
            name = name.split_once('.').map_or("", |(_, parent)| parent);
        }
        let first = store.list_domains().await?.into_iter().next();
        Ok(first.map(|d| format!("postmaster@{}", d.name)))
    }

    pub(crate) async fn handle_rcpt(&mut self, mut to: RcptTo<String>) -> Reply {
        let State::Mail(_, tx) = &self.state else {
            return Reply::bad_sequence("Need MAIL command");
        };
        if tx.rcpts.len() >= self.settings.config.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452, and the client sends the rest later.
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        let rrvs = smtp_proto::RCPT_RRVS_REJECT | smtp_proto::RCPT_RRVS_CONTINUE;
        if to.rrvs != 0 || to.flags & rrvs != 0 {
            // RFC 5321 §4.1.1.11: RRVS (RFC 7293) is not offered; taking it
            // would skip the check it asks for.
            return Reply::new(555, "5.5.4", "Unsupported parameter RRVS");
        }
        if to.flags & smtp_proto::RCPT_CONNEG != 0 {
            // RFC 5321 §4.1.1.11: CONNEG (RFC 4141) is not offered.
            return Reply::new(555, "5.5.4", "Unsupported parameter CONNEG");
        }
        let smtputf8 = tx.smtputf8;
        if to.address.eq_ignore_ascii_case("postmaster") {
            // RFC 5321 §4.5.1: "RCPT TO:<Postmaster>" with no domain MUST work.
            match self.bare_postmaster().await {
                Ok(Some(a)) => to.address = a,
                Ok(None) => {}
                Err(e) => return e.into(),
            }
        }
        let Ok(address) = EmailAddress::parse(&to.address) else {
            return Reply::new(501, "5.1.3", "Bad recipient address syntax");
        };
        if address.is_utf8() && !smtputf8 {
            // RFC 6531 §3.4.
            return Reply::new(553, "5.6.7", format!("<{address}>: address needs SMTPUTF8"));
        }
        let mut remote = false;
        let users = match self.delivery.resolve(&address).await {
            Ok(Resolution::Users(users)) => users,
            Ok(Resolution::NotLocal) if self.user.is_some() || self.trusted => {
                // Authenticated (RFC 6409 §5), or from a network the operator
                // trusts: relayed through the queue.
                remote = true;
                Vec::new()
            }
            Ok(Resolution::Unknown) => {
                return Reply::new(
                    550,
                    "5.1.1",
                    format!("<{address}>: Recipient address rejected: User unknown"),
                );
            }
            Ok(Resolution::Ambiguous) => {
                return Reply::new(
                    550,
                    "5.1.4",
                    format!("<{address}>: Recipient address is ambiguous"),
                );
            }
            Ok(Resolution::NotLocal) => {
                // Not ours to deliver, and no authenticated relaying on this port.
                return Reply::new(550, "5.7.1", format!("<{address}>: Relaying denied"));
            }
            Err(e) => return e.into(),
        };
        let (users, class_max) = match self.rcpt_policy(&address, users, remote).await {
            Ok(x) => x,
            Err(r) => return r,
        };
        let State::Mail(_, tx) = &mut self.state else {
            return Reply::bad_sequence("Need MAIL command");
        };
        if class_max > 0 && (tx.class_max == 0 || class_max < tx.class_max) {
            tx.class_max = class_max;
        }
        for u in users {
            if !tx.users.iter().any(|have| have.id == u.id) {
                tx.users.push(u);
            }
        }
        let notify = [
            (smtp_proto::RCPT_NOTIFY_SUCCESS, "SUCCESS"),
            (smtp_proto::RCPT_NOTIFY_FAILURE, "FAILURE"),
            (smtp_proto::RCPT_NOTIFY_DELAY, "DELAY"),
            (smtp_proto::RCPT_NOTIFY_NEVER, "NEVER"),
        ]
        .into_iter()
        .filter(|(bit, _)| to.flags & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
        tx.rcpts.push(Rcpt {
            address: to.address,
            orcpt: to.orcpt,
            notify,
            remote,
        });
        Reply::new(250, "2.1.5", "Ok")
    }
}
