//! NOTIFY's syntax (RFC 5465 §8): what a client asks to hear of. The
//! session's side is in `cmd/notify.rs`.
use crate::error::{ImapError, Result};
use crate::rewrite::{self, Prepared, Token};

/// The events of one event group (RFC 5465 §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// MessageNew (§5.2).
    pub new: bool,
    /// MessageExpunge (§5.3).
    pub expunge: bool,
    /// FlagChange (§5.1).
    pub flags: bool,
    /// MailboxName (§5.4).
    pub name: bool,
    /// SubscriptionChange (§5.5).
    pub subscription: bool,
}

impl Events {
    pub(crate) fn messages(self) -> bool {
        self.new || self.expunge || self.flags
    }

    pub(crate) fn union(self, o: Events) -> Events {
        Events {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
            name: self.name || o.name,
            subscription: self.subscription || o.subscription,
        }
    }
}

/// The events this server reports, as BADEVENT lists them (RFC 5465 §5.9).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";
/// Events RFC 5465 §5 defines that this server does not report.
const UNSUPPORTED: [&str; 3] = [
    "AnnotationChange",
    "MailboxMetadataChange",
    "ServerMetadataChange",
];
/// Most mailbox names one NOTIFY may list.
const MAX_NAMES: usize = 1000;

/// Which mailboxes an event group is about (RFC 5465 §6), names as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// SELECTED (§6.1) or, with `delayed`, SELECTED-DELAYED (§6.2).
    Selected {
        /// Expunges wait for a command that may announce them.
        delayed: bool,
    },
    /// INBOXES (§6.3): where new mail is delivered, the Inbox here.
    Inboxes,
    /// PERSONAL (§6.4): all of the user's mailboxes.
    Personal,
    /// SUBSCRIBED (§6.5).
    Subscribed,
    /// SUBTREE (§6.6): the mailboxes named and those under them.
    Subtree(Vec<Vec<u8>>),
    /// MAILBOXES (§6.7): the mailboxes named.
    Mailboxes(Vec<Vec<u8>>),
}

/// One event group: its mailboxes, its events, and for the selected
/// mailbox the FETCH items MessageNew sends (RFC 5465 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The mailboxes.
    pub filter: Filter,
    /// The events.
    pub events: Events,
    /// MessageNew's fetch attributes, as the command has them (a
    /// parenthesised list).
    pub fetch: Option<String>,
}

/// NOTIFY as parsed (RFC 5465 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyCommand {
    /// NOTIFY NONE (§3.2).
    None,
    /// NOTIFY SET (§3.1).
    Set {
        /// STATUS: the mailboxes' state now, before the tagged OK.
        status: bool,
        /// The event groups.
        groups: Vec<Group>,
    },
}

/// Parses NOTIFY's arguments (RFC 5465 §8: notify = "NOTIFY" SP
/// (notify-set / notify-none)). Unknown syntax is BAD; events the RFC
/// defines that are not reported here are NO [BADEVENT] (§5.9).
pub fn parse(bytes: &[u8]) -> Result<NotifyCommand> {
    let bad = || ImapError::bad("Invalid NOTIFY arguments");
    let tokens = rewrite::tokenize(bytes)?;
    let word = |i: usize| match tokens.get(i) {
        Some((Token::Atom(a), _)) => std::str::from_utf8(a).ok(),
        _ => None,
    };
    match word(2) {
        Some(w) if w.eq_ignore_ascii_case("NONE") && tokens.len() == 3 => {
            return Ok(NotifyCommand::None);
        }
        Some(w) if w.eq_ignore_ascii_case("SET") => {}
        _ => return Err(bad()),
    }
    let mut i = 3;
    // status-indicator = SP "STATUS"
    let status = word(i).is_some_and(|w| w.eq_ignore_ascii_case("STATUS"));
    if status {
        i += 1;
    }
    let mut groups = Vec::new();
    let mut names = 0usize;
    let mut unsupported: Vec<&str> = Vec::new();
    let mut selected_seen = false;
    while i < tokens.len() {
        // event-group = "(" filter-mailboxes SP events ")"
        if tokens[i].0 != Token::Open {
            return Err(bad());
        }
        let kind = word(i + 1).ok_or_else(bad)?.to_ascii_uppercase();
        i += 2;
        let filter = match kind.as_str() {
            "SELECTED" | "SELECTED-DELAYED" => {
                if selected_seen {
                    return Err(ImapError::bad("SELECTED given twice"));
                }
                selected_seen = true;
                Filter::Selected {
                    delayed: kind == "SELECTED-DELAYED",
                }
            }
            "INBOXES" => Filter::Inboxes,
            "PERSONAL" => Filter::Personal,
            "SUBSCRIBED" => Filter::Subscribed,
            "SUBTREE" | "MAILBOXES" => {
                // one-or-more-mailbox = mailbox / many-mailboxes
                let mut list = Vec::new();
                if tokens.get(i).map(|t| &t.0) == Some(&Token::Open) {
                    i += 1;
                    while let Some((t, _)) = tokens.get(i) {
                        if *t == Token::Close {
                            break;
                        }
                        list.push(astring(t).ok_or_else(bad)?);
                        i += 1;
                    }
                    if list.is_empty() || tokens.get(i).is_none() {
                        return Err(bad());
                    }
                } else {
                    list.push(
                        tokens
                            .get(i)
                            .and_then(|(t, _)| astring(t))
                            .ok_or_else(bad)?,
                    );
                }
                i += 1;
                names += list.len();
                if kind == "SUBTREE" {
                    Filter::Subtree(list)
                } else {
                    Filter::Mailboxes(list)
                }
            }
            _ => return Err(bad()),
        };
        // events = ( "(" event *(SP event) ")" ) / "NONE"
        let mut events = Events::default();
        let mut fetch = None;
        if word(i).is_some_and(|w| w.eq_ignore_ascii_case("NONE")) {
            i += 1;
        } else {
            if tokens.get(i).map(|t| &t.0) != Some(&Token::Open) {
                return Err(bad());
            }
            i += 1;
            let mut any = false;
            loop {
                match tokens.get(i) {
                    Some((Token::Close, _)) if any => break,
                    Some((Token::Atom(a), _)) => {
                        let name = std::str::from_utf8(a).map_err(|_| bad())?;
                        match name.to_ascii_lowercase().as_str() {
                            "messagenew" => {
                                events.new = true;
                                // MessageNew SP "(" fetch-att *(SP fetch-att) ")"
                                if tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Open) {
                                    if !matches!(filter, Filter::Selected { .. }) {
                                        return Err(ImapError::bad(
                                            "MessageNew fetch attributes are for the selected mailbox",
                                        ));
                                    }
                                    let (range, end) = parenthesised(&tokens, i + 1)?;
                                    let text = std::str::from_utf8(&bytes[range])
                                        .map_err(|_| bad())?
                                        .to_string();
                                    check_fetch(&text)?;
                                    fetch = Some(text);
                                    i = end;
                                }
                            }
                            "messageexpunge" => events.expunge = true,
                            "flagchange" => events.flags = true,
                            "mailboxname" => events.name = true,
                            "subscriptionchange" => events.subscription = true,
                            _ => match UNSUPPORTED.iter().find(|u| u.eq_ignore_ascii_case(name)) {
                                Some(u) => unsupported.push(u),
                                None => {
                                    return Err(ImapError::bad(format!("Unknown event {name}")));
                                }
                            },
                        }
                        any = true;
                    }
                    _ => return Err(bad()),
                }
                i += 1;
            }
            i += 1;
        }
        if tokens.get(i).map(|t| &t.0) != Some(&Token::Close) {
            return Err(bad());
        }
        i += 1;
        if let Filter::Selected { .. } = filter {
            // RFC 5465 §5.2, §5.3: MessageNew and MessageExpunge go
            // together for the selected mailbox (message numbers would
            // otherwise go wrong), and §5.1: FlagChange needs them.
            if events.new != events.expunge {
                return Err(ImapError::bad(
                    "MessageNew and MessageExpunge go together for the selected mailbox",
                ));
            }
            if events.flags && !events.expunge {
                return Err(ImapError::bad(
                    "FlagChange needs MessageNew and MessageExpunge for the selected mailbox",
                ));
            }
        }
        groups.push(Group {
            filter,
            events,
            fetch,
        });
    }
    if groups.is_empty() {
        return Err(bad());
    }
    if !unsupported.is_empty() {
        return Err(ImapError::no(
            Some(&format!("BADEVENT ({SUPPORTED})")),
            format!("Not reported here: {}", unsupported.join(" ")),
        ));
    }
    if names > MAX_NAMES {
        return Err(ImapError::no(
            Some("NOTIFICATIONOVERFLOW"),
            "Too many mailbox names",
        ));
    }
    Ok(NotifyCommand::Set { status, groups })
}

fn astring(t: &Token<'_>) -> Option<Vec<u8>> {
    match t {
        Token::Atom(a) => Some(a.to_vec()),
        Token::Quoted(q) => Some(q.clone()),
        Token::Literal(l) => Some(l.to_vec()),
        _ => None,
    }
}

/// The byte range of the parenthesised list opening at `tokens[open]`, and
/// the index of its closing token.
fn parenthesised(
    tokens: &[(Token<'_>, std::ops::Range<usize>)],
    open: usize,
) -> Result<(std::ops::Range<usize>, usize)> {
    let mut depth = 0usize;
    for (j, (t, r)) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Ok((tokens[open].1.start..r.end, j));
                }
            }
            _ => {}
        }
    }
    Err(ImapError::bad("Unbalanced parentheses"))
}

/// The FETCH command that sends MessageNew's attributes for `set`.
pub(crate) fn fetch_command(set: &str, atts: &str) -> String {
    format!("N UID FETCH {set} {atts}\r\n")
}

/// Checks fetch attributes as FETCH would take them.
fn check_fetch(atts: &str) -> Result<()> {
    let line = fetch_command("1", atts);
    match rewrite::prepare(line.as_bytes(), None)? {
        Prepared::Command { bytes, .. } => rewrite::decode(&bytes).map(|_| ()),
        _ => Err(ImapError::bad("Invalid fetch attributes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(line: &str) -> Result<NotifyCommand> {
        parse(line.as_bytes())
    }

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 5465 §3.1, with errata 1804's parentheses.
        let NotifyCommand::Set { status, groups } = set(
            "b notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))\r\n",
        )
        .unwrap() else {
            panic!()
        };
        assert!(status);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].filter, Filter::Selected { delayed: false });
        assert_eq!(
            groups[0].fetch.as_deref(),
            Some("(uid body.peek[header.fields (from to subject)])")
        );
        assert!(groups[0].events.new && groups[0].events.expunge);
        assert_eq!(groups[1].filter, Filter::Subtree(vec![b"Lists".to_vec()]));
        assert_eq!(set("a NOTIFY NONE\r\n").unwrap(), NotifyCommand::None);
        let NotifyCommand::Set { groups, .. } = set(
            "c NOTIFY SET (mailboxes (a \"b c\") (MailboxName)) (personal NONE) (selected-delayed NONE)\r\n",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            groups[0].filter,
            Filter::Mailboxes(vec![b"a".to_vec(), b"b c".to_vec()])
        );
        assert!(groups[0].events.name);
    }

    #[test]
    fn refusals() {
        for bad in [
            "a NOTIFY\r\n",
            "a NOTIFY SET\r\n",
            "a NOTIFY NONE x\r\n",
            "a NOTIFY SET (selected (MessageNew))\r\n",
            "a NOTIFY SET (selected (FlagChange))\r\n",
            "a NOTIFY SET (selected (MessageNew MessageExpunge)) (selected NONE)\r\n",
            "a NOTIFY SET (personal (MessageNew (uid)))\r\n",
            "a NOTIFY SET (personal (NoSuchEvent))\r\n",
            "a NOTIFY SET (personal ())\r\n",
            "a NOTIFY SET (nowhere (MessageNew))\r\n",
            "a NOTIFY SET (subtree (MessageNew))\r\n",
            "a NOTIFY SET (selected (MessageNew (uid nosuchitem) MessageExpunge))\r\n",
            "a NOTIFY SET (selected (MessageNew (uid (MessageExpunge))\r\n",
            "a NOTIFY SET (personal (MessageNew)\r\n",
        ] {
            let e = set(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Bad, "{bad}");
        }
        let e = set("a NOTIFY SET (personal (MessageNew AnnotationChange))\r\n").unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::No);
        assert!(e.code.unwrap().starts_with("BADEVENT ("));
    }
}
