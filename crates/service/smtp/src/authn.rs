//! Authentication of inbound mail (`[smtp.checks] verify`): SPF (RFC 7208)
//! at MAIL FROM, DKIM (RFC 6376, RSA and Ed25519 per RFC 8463), ARC
//! (RFC 8617) and DMARC (RFC 7489) at the end of the data, all through
//! mail-auth over the server's one resolver; the results in an
//! Authentication-Results header field (RFC 8601) under our host name, any
//! such field from outside claiming our name removed (RFC 8601 §5).
//!
//! Policies: `spf` for an SPF `fail` of MAIL FROM (reject: `550 5.7.23`
//! at MAIL, RFC 7372 §3.2; junk), `dmarc = "honour"` for the sender
//! domain's policy (p=reject: `550 5.7.1` after the data; p=quarantine:
//! Junk; RFC 7489 §6.6.4).
use crate::reply::Reply;
use crate::session::{Session, TxAuth};
use postgate_dns::mail_auth::common::headers::HeaderWriter;
use postgate_dns::mail_auth::dmarc::Policy;
use postgate_dns::mail_auth::dmarc::verify::DmarcParameters;
use postgate_dns::mail_auth::spf::verify::SpfParameters;
use postgate_dns::mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, SpfOutput, SpfResult,
};
use postgate_runtime::config::{CheckAction, DmarcAction};

/// What the verification decided about one message.
pub(crate) enum Verdict {
    /// Deliver; `junk` files it in Junk.
    Accept { junk: bool },
    /// Refuse with this reply.
    Refuse(Reply),
}

impl Session {
    /// Whether this session's mail is verified: `verify` is on and the
    /// client is neither authenticated nor a trusted relay client.
    pub(crate) fn verifies(&self) -> bool {
        self.settings.config.checks.verify && self.user.is_none() && !self.trusted
    }

    /// SPF at MAIL FROM (RFC 7208 §2.4: MAIL FROM, or postmaster@HELO for
    /// the null reverse path). Returns the result and, under `spf =
    /// "reject"`, the refusal of a `fail`.
    pub(crate) async fn check_spf(
        &self,
        helo: &str,
        mail_from: &str,
    ) -> (SpfOutput, Option<Reply>) {
        let dns = &self.settings.dns;
        let ip = self.peer.ip();
        let host = self.settings.hostname.as_str();
        let params = if mail_from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo, host)
        } else {
            SpfParameters::verify_mail_from(ip, helo, host, mail_from)
        };
        let spf = dns.authenticator().verify_spf(dns.params(params)).await;
        let result = spf_name(spf.result());
        postgate_metrics::metrics().check("spf", result);
        let refuse = (spf.result() == SpfResult::Fail
            && self.settings.config.checks.spf == CheckAction::Reject
            && !self.policy_exempt())
        .then(|| {
            postgate_metrics::metrics().check("spf", "reject");
            // RFC 7372 §3.2: 5.7.23 "SPF validation failed"; RFC 7208 §8.4.
            Reply::new(
                550,
                "5.7.23",
                format!(
                    "SPF validation failed: {} is not allowed to send for {}",
                    ip,
                    spf.domain()
                ),
            )
        });
        (spf, refuse)
    }

    /// Whether the client is exempt from the policies (an `allow` entry, or
    /// listed by a `dnswl`): its mail is still verified and labelled.
    pub(crate) fn policy_exempt(&self) -> bool {
        // An `allow` entry or a DNS allowlist listing (`[smtp.checks]`).
        self.verdict.as_deref().is_some_and(|v| v.exempt)
    }

    /// DKIM, ARC and DMARC over a message at the end of its data; writes
    /// Authentication-Results into `message` (after our trace fields, which
    /// end at `trace`) and removes forged ones. The transaction's SPF result
    /// came from MAIL FROM (`tx.spf`).
    pub(crate) async fn authenticate(
        &self,
        tx: &mut TxAuth,
        mail_from: &str,
        helo: &str,
        message: &mut Vec<u8>,
        trace: usize,
    ) -> Verdict {
        let dns = &self.settings.dns;
        let auth = dns.authenticator();
        let host = self.settings.hostname.as_str();
        let ip = self.peer.ip();
        let checks = &self.settings.config.checks;
        let spf = match tx.spf.take() {
            Some(spf) => spf,
            None => self.check_spf(helo, mail_from).await.0,
        };
        let (header, junk, refuse, results) = {
            let body = &message[trace..];
            let Some(parsed) = AuthenticatedMessage::parse(body) else {
                // Not a message mail-auth can read (no header section): no
                // DKIM, ARC or DMARC to evaluate.
                tx.checks.push(("spf", spf_name(spf.result()).to_string()));
                let header = AuthenticationResults::new(host)
                    .with_spf_mailfrom_result(&spf, ip, mail_from, helo)
                    .to_header();
                let junk = spf.result() == SpfResult::Fail
                    && checks.spf == CheckAction::Junk
                    && !self.policy_exempt();
                insert_results(message, trace, host, &header);
                return Verdict::Accept { junk };
            };
            // RFC 6376 §6 and RFC 8617 §5.2 are independent of each other.
            let (dkim, arc) = tokio::join!(
                auth.verify_dkim(dns.params(&parsed)),
                auth.verify_arc(dns.params(&parsed))
            );
            let mail_from_domain = mail_from
                .rsplit_once('@')
                .map_or(helo, |(_, d)| d)
                .to_string();
            // RFC 7489 §4.2 / RFC 9989: identifier alignment of the DKIM
            // and SPF results with the RFC 5322.From domain.
            let dmarc = auth
                .verify_dmarc(dns.params(DmarcParameters {
                    message: &parsed,
                    dkim_output: &dkim,
                    dkim2_output: None,
                    rfc5321_mail_from_domain: &mail_from_domain,
                    spf_output: &spf,
                }))
                .await;
            let header_from = parsed.from.first().map(String::as_str).unwrap_or("");
            let header = AuthenticationResults::new(host)
                .with_dkim_results(&dkim, header_from)
                .with_spf_mailfrom_result(&spf, ip, mail_from, helo)
                .with_arc_result(&arc, ip)
                .with_dmarc_result(&dmarc)
                .to_header();

            let dkim_result = dkim_summary(dkim.iter().map(|d| d.result()));
            let arc_result = dkim_name(arc.result());
            let dmarc_result = match dmarc.result() {
                DmarcResult::Pass => "pass",
                DmarcResult::Fail(_) => "fail",
                DmarcResult::TempError(_) => "temperror",
                DmarcResult::PermError(_) => "permerror",
                DmarcResult::None => "none",
            };
            let m = postgate_metrics::metrics();
            m.check("dkim", dkim_result);
            m.check("arc", arc_result);
            m.check("dmarc", dmarc_result);

            let exempt = self.policy_exempt();
            let mut junk = false;
            let mut refuse = None;
            if spf.result() == SpfResult::Fail && checks.spf == CheckAction::Junk && !exempt {
                m.check("spf", "junk");
                junk = true;
            }
            // RFC 7489 §6.6.4: a Mail Receiver applies the Domain Owner's
            // policy to messages failing DMARC (mail-auth has already
            // taken a test-mode record's `t=y` into account).
            if checks.dmarc == DmarcAction::Honour
                && !exempt
                && matches!(dmarc.result(), DmarcResult::Fail(_))
            {
                match dmarc.policy() {
                    Policy::Reject => {
                        m.check("dmarc", "reject");
                        refuse = Some(Reply::new(
                            550,
                            "5.7.1",
                            format!(
                                "Message rejected: it fails the DMARC policy of {}",
                                dmarc.domain()
                            ),
                        ));
                    }
                    Policy::Quarantine => {
                        m.check("dmarc", "quarantine");
                        junk = true;
                    }
                    Policy::None | Policy::Unspecified => {}
                }
            }
            let results = [
                ("spf", spf_name(spf.result()).to_string()),
                ("dkim", dkim_result.to_string()),
                ("arc", arc_result.to_string()),
                ("dmarc", dmarc_result.to_string()),
            ];
            (header, junk, refuse, results)
        };
        tx.checks.extend(results);
        if let Some(reply) = refuse {
            return Verdict::Refuse(reply);
        }
        insert_results(message, trace, host, &header);
        Verdict::Accept { junk }
    }
}

/// Puts our Authentication-Results field at `at` (after our trace fields)
/// and removes, from the message's own header section that follows, every
/// Authentication-Results field that claims our authserv-id (RFC 8601 §5:
/// such fields from outside are forgeries).
fn insert_results(message: &mut Vec<u8>, at: usize, host: &str, header: &str) {
    strip_forged(message, at, host);
    message.splice(at..at, header.bytes());
}

/// Removes the Authentication-Results fields in the header section starting
/// at `start` whose authserv-id is `host` (case-insensitive, RFC 8601 §2.5).
fn strip_forged(message: &mut Vec<u8>, start: usize, host: &str) {
    let mut out: Vec<(usize, usize)> = Vec::new(); // ranges to remove
    let mut pos = start;
    let bytes = &message[..];
    while pos < bytes.len() {
        // One field: its first line and its folded continuations.
        let line_end = |from: usize| {
            memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i + 1)
        };
        let first_end = line_end(pos);
        let line = &bytes[pos..first_end];
        if line == b"\r\n" || line == b"\n" {
            break; // the end of the header section
        }
        let mut end = first_end;
        while end < bytes.len() && (bytes[end] == b' ' || bytes[end] == b'\t') {
            end = line_end(end);
        }
        let field = &bytes[pos..end];
        if let Some(colon) = memchr::memchr(b':', field)
            && field[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"authentication-results")
        {
            let value = String::from_utf8_lossy(&field[colon + 1..]);
            if authserv_id(&value).eq_ignore_ascii_case(host) {
                out.push((pos, end));
            }
        }
        pos = end;
    }
    for (from, to) in out.into_iter().rev() {
        message.drain(from..to);
    }
}

/// The authserv-id of an Authentication-Results value (RFC 8601 §2.2: the
/// first token, before any version and the first ';'), comments removed.
fn authserv_id(value: &str) -> String {
    let mut plain = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// RFC 8601 §2.7.2 result names for SPF.
fn spf_name(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// RFC 8601 §2.7.1 result names for DKIM (and ARC, RFC 8617 §10.1).
fn dkim_name(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// One word for several signatures: pass when any passes (RFC 6376 §6.1:
/// verifiers may accept a message on any valid signature), else the first
/// result, else none.
fn dkim_summary<'a>(mut results: impl Iterator<Item = &'a DkimResult>) -> &'static str {
    let mut first = None;
    for r in results.by_ref() {
        if *r == DkimResult::Pass {
            return "pass";
        }
        first.get_or_insert(dkim_name(r));
    }
    first.unwrap_or("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_for_our_name_are_removed() {
        let trace = b"Received: from x\r\n".to_vec();
        let mut m = trace.clone();
        m.extend_from_slice(
            b"Authentication-Results: MX.Example.Org;\r\n\tspf=pass smtp.mailfrom=a@b\r\n\
              Subject: hi\r\n\
              Authentication-Results: (comment) mx.example.org 1; dkim=pass\r\n\
              Authentication-Results: other.example; dkim=pass\r\n\
              \r\n\
              Authentication-Results: mx.example.org; in the body\r\n",
        );
        insert_results(
            &mut m,
            trace.len(),
            "mx.example.org",
            "Authentication-Results: mx.example.org; none\r\n",
        );
        let text = String::from_utf8(m).unwrap();
        assert_eq!(
            text,
            "Received: from x\r\n\
             Authentication-Results: mx.example.org; none\r\n\
             Subject: hi\r\n\
             Authentication-Results: other.example; dkim=pass\r\n\
             \r\n\
             Authentication-Results: mx.example.org; in the body\r\n"
        );
    }

    #[test]
    fn authserv_ids() {
        assert_eq!(authserv_id(" mx.example.org; spf=pass"), "mx.example.org");
        assert_eq!(
            authserv_id(" (x) mx.example.org 1 ; none"),
            "mx.example.org"
        );
        assert_eq!(authserv_id(" other;"), "other");
    }

    #[test]
    fn dkim_summaries() {
        let fail = DkimResult::Fail(postgate_dns::mail_auth::Error::Base64);
        assert_eq!(
            dkim_summary([fail.clone(), DkimResult::Pass].iter()),
            "pass"
        );
        assert_eq!(dkim_summary([fail].iter()), "fail");
        assert_eq!(dkim_summary([].iter()), "none");
    }
}
