//! RSET, VRFY, HELP (RFC 5321 §4.1.1.5, §4.1.1.6, §4.1.1.8).
use crate::reply::Reply;
use crate::session::{Session, State};
use postgate_store::Resolution;
use postgate_types::EmailAddress;

impl Session {
    pub(crate) fn handle_rset(&mut self) -> Reply {
        // RFC 5321 §4.1.1.5: abort the transaction, keep the HELO.
        self.state = match std::mem::replace(&mut self.state, State::Fresh) {
            State::Mail(helo, _) | State::Ready(helo) => State::Ready(helo),
            State::Fresh => State::Fresh,
        };
        Reply::ok()
    }

    pub(crate) async fn handle_vrfy(&mut self, value: String) -> Reply {
        if !self.settings.config.vrfy {
            // RFC 5321 §3.5.3: 252 when we will not verify but will accept.
            return Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            );
        }
        let Ok(address) = EmailAddress::parse(&value) else {
            return Reply::new(501, "5.5.4", "Syntax: VRFY <address>");
        };
        match self.delivery.resolve(&address).await {
            Ok(Resolution::Users(users)) if users.len() == 1 => {
                Reply::new(250, "2.1.5", format!("<{}>", users[0].address))
            }
            // A group: RFC 5321 §3.5.1 says VRFY is not for lists.
            Ok(Resolution::Users(_)) => Reply::new(252, "2.5.0", "Address is a list; try EXPN"),
            Ok(Resolution::Ambiguous) => Reply::new(553, "5.1.4", "User ambiguous"),
            Ok(Resolution::Unknown) => Reply::new(550, "5.1.1", "User unknown"),
            Ok(Resolution::NotLocal) => Reply::new(551, "5.1.6", "User not local"),
            Err(e) => e.into(),
        }
    }

    pub(crate) fn handle_help(&mut self) -> Reply {
        Reply::new(
            214,
            "2.0.0",
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS",
        )
    }
}
