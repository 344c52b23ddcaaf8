//! RCPT TO (RFC 5321 §4.1.1.3): recipients resolve through the directory.
use crate::reply::Reply;
use crate::session::{Rcpt, Session, State};
use postgate_store::Resolution;
use postgate_types::EmailAddress;
use smtp_proto::RcptTo;

impl Session {
    pub(crate) async fn handle_rcpt(&mut self, to: RcptTo<String>) -> Reply {
        let State::Mail(_, tx) = &self.state else {
            return Reply::bad_sequence("Need MAIL command");
        };
        if tx.rcpts.len() >= self.settings.config.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452, and the client sends the rest later.
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        let smtputf8 = tx.smtputf8;
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
        let State::Mail(_, tx) = &mut self.state else {
            return Reply::bad_sequence("Need MAIL command");
        };
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
