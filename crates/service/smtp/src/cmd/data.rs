//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030 §2), and the delivery at their end.
use crate::reply::Reply;
use crate::session::{ReadError, Session, State, Transaction};
use postgate_store::{Envelope, EnvelopeRcpt};
use std::sync::atomic::{AtomicU64, Ordering};

/// Queue ids: unique in this process and, with the time in front, across restarts.
static QUEUE_SEQ: AtomicU64 = AtomicU64::new(0);

fn queue_id() -> String {
    let seq = QUEUE_SEQ.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now();
    format!(
        "{:X}{:05X}{:04X}",
        now.timestamp(),
        now.timestamp_subsec_micros() & 0xFFFFF,
        seq & 0xFFFF
    )
}

impl Session {
    pub(crate) async fn handle_data(&mut self) -> Reply {
        match &self.state {
            State::Mail(_, tx) if tx.bdat.is_some() => {
                // RFC 3030 §2: DATA may not follow BDAT in one transaction.
                return Reply::bad_sequence("DATA not allowed after BDAT");
            }
            State::Mail(_, tx) if tx.rcpts.is_empty() => {
                // RFC 5321 §3.3: no valid recipients.
                return Reply::new(554, "5.5.1", "No valid recipients");
            }
            State::Mail(..) => {}
            _ => return Reply::bad_sequence("Need MAIL command"),
        }
        self.send(&Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
        let id = queue_id();
        let mut message = self.trace_headers(&id);
        let trace = message.len();
        let limit = self.size_limit();
        match self.read_data(&mut message, limit).await {
            Ok(true) => {
                self.fix_up(&mut message, trace, &id);
                if let Some(refused) = self.verify(&mut message, trace).await {
                    return refused;
                }
                self.deliver(id, message).await
            }
            Ok(false) => {
                self.reset_transaction();
                // RFC 1870 §6.2 / RFC 3463 5.3.4: message too big for system.
                Reply::new(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                )
            }
            Err(e) => read_failure(e),
        }
    }

    /// The size limit of this transaction: the server's, or a smaller one of
    /// a class of service involved (RFC 1870 §6.2; 552 5.3.4 past it).
    pub(crate) fn size_limit(&self) -> u64 {
        let server = self.settings.config.max_message_size;
        match &self.state {
            State::Mail(_, tx) if tx.class_max > 0 => server.min(tx.class_max),
            _ => server,
        }
    }

    pub(crate) async fn handle_bdat(&mut self, size: usize, last: bool) -> Reply {
        let limit = self.size_limit();
        // The chunk follows the command whatever we think of it (RFC 3030 §2:
        // the server reads it before replying), so work out where it goes first.
        let keep = match &mut self.state {
            State::Mail(_, tx) if !tx.rcpts.is_empty() => {
                let have = tx.bdat.as_ref().map_or(0, Vec::len);
                if tx.bdat_oversize || (have + size) as u64 > limit {
                    tx.bdat_oversize = true;
                    tx.bdat.get_or_insert_with(Vec::new).clear();
                    false
                } else {
                    true
                }
            }
            _ => false,
        };
        let mut chunk = Vec::new();
        let mut buffer = match (&mut self.state, keep) {
            (State::Mail(_, tx), true) => tx.bdat.take().unwrap_or_default(),
            _ => Vec::new(),
        };
        let target = if keep { &mut buffer } else { &mut chunk };
        if let Err(e) = self.read_chunk(target, size, keep).await {
            return read_failure(e);
        }
        let tx = match &mut self.state {
            State::Mail(_, tx) => tx,
            _ => return Reply::bad_sequence("Need MAIL command"),
        };
        if tx.rcpts.is_empty() {
            return Reply::new(554, "5.5.1", "No valid recipients");
        }
        if tx.bdat_oversize {
            if last {
                self.reset_transaction();
            }
            return Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        if !last {
            let n = size;
            tx.bdat = Some(buffer);
            return Reply::new(250, "2.0.0", format!("{n} octets received"));
        }
        let id = queue_id();
        let mut message = self.trace_headers(&id);
        let trace = message.len();
        message.extend_from_slice(&buffer);
        drop(buffer);
        self.fix_up(&mut message, trace, &id);
        if let Some(refused) = self.verify(&mut message, trace).await {
            return refused;
        }
        self.deliver(id, message).await
    }

    /// Mail authentication at the end of the data, when this session's
    /// mail is verified: Authentication-Results written into the message,
    /// and the refusal when a policy refuses it (the transaction ends).
    async fn verify(&mut self, message: &mut Vec<u8>, trace: usize) -> Option<Reply> {
        if !self.verifies() {
            return None;
        }
        let (helo, mut tx) = match std::mem::replace(&mut self.state, State::Fresh) {
            State::Mail(helo, tx) => (helo, tx),
            other => {
                self.state = other;
                return None;
            }
        };
        let mut auth = tx.auth.take().unwrap_or_default();
        let verdict = self
            .authenticate(&mut auth, &tx.mail_from, &helo.name, message, trace)
            .await;
        match verdict {
            crate::authn::Verdict::Accept { junk } => {
                auth.junk |= junk;
                tx.auth = Some(auth);
                self.state = State::Mail(helo, tx);
                None
            }
            crate::authn::Verdict::Refuse(reply) => {
                tracing::info!(
                    peer = %self.peer,
                    from = %tx.mail_from,
                    reply = %reply.lines.join(" "),
                    "message refused by mail authentication"
                );
                self.state = State::Ready(helo);
                Some(reply)
            }
        }
    }

    /// Submission fix-ups (RFC 6409 §8.2, §8.3), for an authenticated
    /// sender only: a message without Message-ID or Date gets them, placed
    /// after our trace headers (which start at 0 and end at `trace`).
    fn fix_up(&self, message: &mut Vec<u8>, trace: usize, id: &str) {
        if self.user.is_none() {
            return;
        }
        let (has_date, has_id) = present_headers(&message[trace..]);
        let mut add = String::new();
        if !has_date {
            add.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
        }
        if !has_id {
            add.push_str(&format!(
                "Message-ID: <{id}@{}>\r\n",
                self.settings.hostname
            ));
        }
        if !add.is_empty() {
            message.splice(trace..trace, add.into_bytes());
        }
    }

    /// Return-Path (RFC 5321 §4.4: added at final delivery) and Received
    /// (RFC 5321 §4.4, with the protocol names of RFC 3848 and RFC 6531 §3.7.3).
    fn trace_headers(&self, id: &str) -> Vec<u8> {
        let State::Mail(helo, tx) = &self.state else {
            return Vec::new();
        };
        let tls = self.stream.as_ref().and_then(|s| s.tls_description());
        // RFC 3848 and RFC 6531 §3.7.3: "S" for TLS, "A" for AUTH.
        let base = match (tx.smtputf8, helo.extended) {
            (true, _) => "UTF8SMTP",
            (false, true) => "ESMTP",
            (false, false) => "SMTP",
        };
        let with = format!(
            "{base}{}{}",
            if tls.is_some() { "S" } else { "" },
            if self.user.is_some() { "A" } else { "" }
        );
        let tls = tls
            .map(|t| format!("\r\n\t(using {t})"))
            .unwrap_or_default();
        // Name the recipient only when there is one: a multi-recipient message
        // must not reveal each to the others, and one body serves them all.
        let for_clause = match tx.rcpts.as_slice() {
            [one] => format!("\r\n\tfor <{}>", one.address),
            _ => String::new(),
        };
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(format!("Return-Path: <{}>\r\n", tx.mail_from).as_bytes());
        // RFC 5321 §4.4 TCP-info: the forward-confirmed reverse name, when
        // the checks looked it up, before the address literal.
        let reverse = self
            .verdict
            .as_ref()
            .and_then(|v| v.reverse.as_deref())
            .map(|n| format!("{n} "))
            .unwrap_or_default();
        out.extend_from_slice(
            format!(
                "Received: from {} ({reverse}[{}]){tls}\r\n\tby {} (Postgate) with {with} id {id}{for_clause};\r\n\t{}\r\n",
                sanitize(&helo.name),
                self.peer.ip(),
                self.settings.hostname,
                chrono::Utc::now().to_rfc2822(),
            )
            .as_bytes(),
        );
        out
    }

    async fn deliver(&mut self, id: String, message: Vec<u8>) -> Reply {
        let (helo, tx) = match std::mem::replace(&mut self.state, State::Fresh) {
            State::Mail(helo, tx) => (helo, tx),
            other => {
                self.state = other;
                return Reply::bad_sequence("Need MAIL command");
            }
        };
        let envelope = self.envelope(&helo.name, &tx);
        let sender = self.user.as_ref().map(|u| postgate_delivery::Sender {
            user: u.id,
            sent_copy: false,
        });
        let result = self
            .delivery
            .deliver(message, envelope, &tx.users, sender)
            .await;
        self.state = State::Ready(helo);
        match result {
            Ok(report) => {
                if let Some(sender) = self.mailbomb_sender() {
                    self.checks.count(sender);
                }
                tracing::info!(
                    id,
                    from = %tx.mail_from,
                    rcpts = tx.rcpts.len(),
                    copies = report.copies,
                    junk = report.junk,
                    "delivered"
                );
                Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
            }
            Err(e) => e.into(),
        }
    }

    fn envelope(&mut self, helo: &str, tx: &Transaction) -> Envelope {
        let mailbomb = self.mailbomb_sender().is_some();
        let (peer_reverse, junk, mut checks) = match self.applicable_verdict() {
            Some(v) => (v.reverse.clone(), v.junk(), v.outcomes()),
            // Allowed or allowlisted: only that is recorded.
            None => match self.verdict.as_deref() {
                Some(v) => (v.reverse.clone(), false, v.results.clone()),
                None => (None, false, Vec::new()),
            },
        };
        if mailbomb {
            // Past MAIL: the limit was not reached.
            checks.push(("mailbomb", "pass".into()));
        }
        // Mail authentication's outcomes (`verify`).
        if let Some(auth) = &tx.auth {
            checks.extend(auth.checks.iter().cloned());
        }
        let junk = junk || tx.auth.as_ref().is_some_and(|a| a.junk);
        Envelope {
            peer_reverse,
            junk,
            checks,
            mail_from: tx.mail_from.clone(),
            env_id: tx.env_id.clone(),
            ret: tx.ret.clone(),
            body: tx.body.clone(),
            smtputf8: tx.smtputf8,
            rcpts: tx
                .rcpts
                .iter()
                .map(|r| EnvelopeRcpt {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    notify: r.notify.clone(),
                    remote: r.remote,
                })
                .collect(),
            peer: Some(self.peer.ip().to_string()),
            helo: Some(helo.to_string()),
            tls: self.is_tls(),
            tls_description: self.stream.as_ref().and_then(|s| s.tls_description()),
            auth_user: self.user.as_ref().map(|u| u.address.to_string()),
        }
    }

    pub(crate) fn reset_transaction(&mut self) {
        if let State::Mail(helo, _) = std::mem::replace(&mut self.state, State::Fresh) {
            self.state = State::Ready(helo);
        }
    }
}

/// The reply when the client vanished or stalled in the middle of the data.
fn read_failure(e: ReadError) -> Reply {
    match e {
        ReadError::Timeout => {
            Reply::new(421, "4.4.2", "Timeout exceeded while reading data").closing()
        }
        ReadError::Shutdown => Reply::new(421, "4.3.2", "Service shutting down").closing(),
        _ => Reply::none().closing(),
    }
}

/// The HELO name as it may appear in a header: printable, no CR/LF, bounded.
fn sanitize(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(255).collect()
}

/// Whether a message's header section has a Date and a Message-ID field.
fn present_headers(message: &[u8]) -> (bool, bool) {
    let (mut date, mut id) = (false, false);
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // the end of the header section
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // a folded continuation
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        date |= name.eq_ignore_ascii_case(b"date");
        id |= name.eq_ignore_ascii_case(b"message-id");
    }
    (date, id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn present_headers() {
        assert_eq!(
            super::present_headers(b"Subject: x\r\nDATE: now\r\n\r\nMessage-ID: no"),
            (true, false)
        );
        assert_eq!(
            super::present_headers(b"Message-Id:\r\n <a@b>\r\n\r\n"),
            (false, true)
        );
    }
}
