//! DKIM signing (RFC 6376) of every message the agent sends.
//!
//! Keys live in the store ([`postgate_store::DkimKeys`], made by `postgate
//! dkim generate`); [`Signer`] holds them parsed, by domain, and reads the
//! store again every `[outbound] dkim_refresh` ([`Signer::refresh_every`]),
//! so a key added or removed by the CLI or on another node takes effect
//! within that. With no key at all, a message costs one lock and an
//! emptiness check; with keys for other domains, also finding its From
//! domain and one hash lookup.
//!
//! What is signed, just before a message goes to a next hop, once per
//! attempt:
//! - by the domain of the From header's (first) address, so that `d=` is
//!   the RFC5322.From domain and aligns for DMARC (RFC 7489 §3.1.1); a
//!   message without a usable From (bench generators' mail) is signed for
//!   its envelope sender's domain instead;
//! - with every key of that domain, each signature computed on the message
//!   as it was (RFC 8463 §5: an RSA beside an Ed25519 signature, so that a
//!   verifier that knows only one of them still finds a good signature);
//! - relaxed/relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4), which
//!   survives the header refolding and whitespace changes of relays;
//! - the header fields of [`SIGNED`] that the message has, and From once
//!   more (RFC 6376 §8.15, §5.4.2: a listed name without a field left
//!   signs "no further one", so no second From can be added).
use postgate_dns::mail_auth::Error;
use postgate_dns::mail_auth::common::crypto::{
    Algorithm, CryptoError, Ed25519Key, Sha256, SigningKey,
};
use postgate_dns::mail_auth::common::headers::{HeaderWriter, Writable};
use postgate_dns::mail_auth::dkim::{Canonicalization, DkimSigner};
use postgate_runtime::shutdown::Shutdown;
use postgate_store::{DkimAlgorithm, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header fields signed when the message has them (RFC 6376 §5.4.1's
/// list of those that carry the message's meaning, plus the list headers
/// whose forgery would matter). `From` comes first: it is always there to
/// sign, and it is listed again after these.
pub const SIGNED: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Sender",
    "List-Id",
    "List-Unsubscribe",
];

/// One parsed key, shared by the signatures made with it.
struct Loaded {
    selector: String,
    algorithm: DkimAlgorithm,
    /// When the key was added: with the selector, what tells a key read
    /// again from one to parse anew (a selector removed and made again).
    created: i64,
    key: Arc<Key>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A parsed private key. RSA signs through aws-lc-rs rather than
/// mail-auth's ring: its RSA-2048 private operation uses the CPU's
/// AVX-512 IFMA units where they exist and takes 0.28 ms here against
/// ring's 0.47 ms, and one RSA signature per message is most of what
/// signing costs a relay (issue 14's bench). Ed25519 stays with ring
/// (microseconds either way).
enum Key {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Ed25519(Ed25519Key),
}

/// A parsed key handed to mail-auth's signer without giving the key up
/// (its signer takes the key by value; the keys cannot be cloned).
struct Shared(Arc<Key>);

impl SigningKey for Shared {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> postgate_dns::mail_auth::Result<Vec<u8>> {
        match &*self.0 {
            Key::Rsa(key) => {
                // RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 with SHA-256 over the
                // header hash input mail-auth writes.
                let mut data = Vec::with_capacity(512);
                input.write(&mut data);
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    &data,
                    &mut signature,
                )
                .map_err(|e| Error::Crypto(CryptoError::Library(format!("rsa: {e}"))))?;
                Ok(signature)
            }
            Key::Ed25519(key) => key.sign(input),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match &*self.0 {
            Key::Rsa(_) => Algorithm::RsaSha256,
            Key::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }
}

/// The keys by domain (lower case).
type Keys = HashMap<String, Arc<[Loaded]>>;

/// What signing a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The signing domain has no key: sent as it was.
    NoKey,
    /// Signed with these algorithms (`a=` values), one signature each.
    Signed(Vec<&'static str>),
    /// A key failed to sign (the message is sent unsigned rather than held).
    Error(String),
}

impl Outcome {
    /// The counter's result name ([`postgate_metrics::Metrics::check`]).
    pub fn result(&self) -> &'static str {
        match self {
            Outcome::NoKey => "nokey",
            Outcome::Signed(_) => "signed",
            Outcome::Error(_) => "error",
        }
    }
}

/// The DKIM keys, parsed, and the signing done with them. Cheap to share.
#[derive(Debug)]
pub struct Signer {
    store: Arc<dyn Store>,
    keys: Mutex<Arc<Keys>>,
}

impl Signer {
    /// A signer over `store`'s keys; none until [`Signer::refresh`].
    pub fn new(store: Arc<dyn Store>) -> Signer {
        Signer {
            store,
            keys: Mutex::new(Arc::default()),
        }
    }

    fn current(&self) -> Arc<Keys> {
        self.keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Reads the keys from the store again, parsing only those not held
    /// already. A key that cannot be parsed is logged and left out.
    pub async fn refresh(&self) -> postgate_store::Result<()> {
        let stored = self.store.dkim_keys(None).await?;
        let old = self.current();
        let mut next: HashMap<String, Vec<Loaded>> = HashMap::new();
        for k in stored {
            let held = old.get(&k.domain).and_then(|l| {
                l.iter()
                    .find(|l| l.selector == k.selector && l.created == k.created)
            });
            let key = match held {
                Some(l) => l.key.clone(),
                None => match parse(k.algorithm, k.private_key.expose()) {
                    Ok(key) => Arc::new(key),
                    Err(e) => {
                        tracing::error!(domain = %k.domain, selector = %k.selector, error = %e,
                            "dkim: cannot use a stored key");
                        continue;
                    }
                },
            };
            next.entry(k.domain).or_default().push(Loaded {
                selector: k.selector,
                algorithm: k.algorithm,
                created: k.created,
                key,
            });
        }
        let next: Keys = next.into_iter().map(|(d, l)| (d, l.into())).collect();
        if let Ok(mut k) = self.keys.lock() {
            *k = Arc::new(next);
        }
        Ok(())
    }

    /// Refreshes the keys every `every` until shutdown.
    pub async fn refresh_every(self: Arc<Self>, every: Duration, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => break,
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "dkim: cannot read the signing keys");
            }
        }
    }

    /// Signs `message` for its From domain (else `envelope_domain`, the
    /// reverse path's) with each of that domain's keys, prepending the
    /// DKIM-Signature fields; counts the outcome. The message comes back
    /// as it was when there is no key or signing fails.
    pub async fn sign(&self, message: Vec<u8>, envelope_domain: &str) -> (Vec<u8>, Outcome) {
        let outcome_of = |(m, o): (Vec<u8>, Outcome)| {
            postgate_metrics::metrics().check("dkim_sign", o.result());
            (m, o)
        };
        let keys = self.current();
        if keys.is_empty() {
            return outcome_of((message, Outcome::NoKey));
        }
        // The header fields, read once for the signing domain and `h=`.
        let present = fields(&message);
        let domain = domain_of(&present).unwrap_or_else(|| envelope_domain.to_ascii_lowercase());
        let Some(loaded) = keys.get(domain.trim_end_matches('.')).cloned() else {
            return outcome_of((message, Outcome::NoKey));
        };
        let names = names_of(&present);
        // RSA signing and body hashing take milliseconds: off the async
        // threads. The message is shared, not copied, with the task.
        let message = Arc::new(message);
        let signed = tokio::task::spawn_blocking({
            let message = message.clone();
            move || sign_with(&loaded, &domain, &names, &message)
        })
        .await
        .unwrap_or_else(|e| Err(format!("signing task: {e}")));
        let message = Arc::try_unwrap(message).unwrap_or_else(|m| m.to_vec());
        outcome_of(match signed {
            Ok((fields, algorithms)) => {
                let mut out = Vec::with_capacity(fields.len() + message.len());
                out.extend_from_slice(fields.as_bytes());
                out.extend_from_slice(&message);
                (out, Outcome::Signed(algorithms))
            }
            Err(e) => {
                tracing::error!(error = %e, "dkim: signing failed; sending unsigned");
                (message, Outcome::Error(e))
            }
        })
    }
}

/// A stored private key (PKCS#8 DER) as it signs.
fn parse(algorithm: DkimAlgorithm, der: &[u8]) -> Result<Key, String> {
    match algorithm {
        DkimAlgorithm::RsaSha256 => aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der)
            .map(Key::Rsa)
            .map_err(|e| e.to_string()),
        DkimAlgorithm::Ed25519Sha256 => Ed25519Key::from_pkcs8_der(der)
            .map(Key::Ed25519)
            .map_err(|e| e.to_string()),
    }
}

/// One DKIM-Signature field per key (RFC 6376 §3.5), in key order; and
/// the algorithms used.
fn sign_with(
    keys: &[Loaded],
    domain: &str,
    names: &[&str],
    message: &[u8],
) -> Result<(String, Vec<&'static str>), String> {
    let mut fields = String::new();
    let mut algorithms = Vec::with_capacity(keys.len());
    for k in keys {
        let signature = DkimSigner::from_key(Shared(k.key.clone()))
            .domain(domain)
            .selector(&k.selector)
            .headers(names.iter().copied())
            // RFC 6376 §3.4.2, §3.4.4.
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .sign(message)
            .map_err(|e| format!("{}._domainkey.{domain}: {e}", k.selector))?;
        fields.push_str(&signature.to_header());
        algorithms.push(k.algorithm.as_str());
    }
    Ok((fields, algorithms))
}

/// The header section: up to the first empty line.
fn header_section(message: &[u8]) -> &[u8] {
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |p| at + p + 1);
        let line = &message[at..end];
        if line == b"\r\n" || line == b"\n" {
            return &message[..at];
        }
        at = end;
    }
    message
}

/// The header fields as (name, unfolded value), in order.
fn fields(message: &[u8]) -> Vec<(&str, String)> {
    let text = String::from_utf8_lossy(header_section(message)).into_owned();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            // RFC 5322 §2.2.3: a continuation of the field before.
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    // Names borrowed from the static list, so callers need not hold `text`.
    out.into_iter()
        .map(|(n, v)| {
            let name = SIGNED
                .iter()
                .copied()
                .find(|s| s.eq_ignore_ascii_case(&n))
                .unwrap_or("");
            (name, v)
        })
        .collect()
}

/// The names to sign (`h=`): those of [`SIGNED`] the message has, in that
/// order, and From again (RFC 6376 §8.15).
#[cfg(test)]
fn signed_names(message: &[u8]) -> Vec<&'static str> {
    names_of(&fields(message))
}

/// [`signed_names`] from the fields already read.
fn names_of(present: &[(&str, String)]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = SIGNED
        .iter()
        .copied()
        .filter(|s| present.iter().any(|(n, _)| n == s))
        .collect();
    names.push("From");
    names
}

/// The domain of the From field's first address (RFC 5322 §3.6.2),
/// lower case; `None` without a From field or an address in it.
pub fn from_domain(message: &[u8]) -> Option<String> {
    domain_of(&fields(message))
}

/// [`from_domain`] from the fields already read.
fn domain_of(present: &[(&str, String)]) -> Option<String> {
    let (_, value) = present.iter().find(|(n, _)| *n == "From")?;
    // `Name <local@domain>` or a bare `local@domain`; comments in
    // parentheses dropped, the first of several addresses taken.
    let mut plain = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 && !quoted => plain.push(c),
            _ => {}
        }
    }
    let address = match (plain.find('<'), plain.find('>')) {
        (Some(a), Some(b)) if a < b => &plain[a + 1..b],
        _ => plain.split(',').next().unwrap_or(""),
    };
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain
        .trim()
        .trim_end_matches('.')
        .trim_matches(|c| c == '[' || c == ']');
    (!domain.is_empty() && !domain.contains(char::is_whitespace))
        .then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_of_the_forms_a_from_field_takes() {
        let m = |from: &str| format!("Subject: x\r\n{from}\r\n\r\nFrom: body@wrong.test\r\n");
        for (field, want) in [
            ("From: alice@Example.ORG", Some("example.org")),
            (
                "From: \"Smith, Alice\" <alice@example.org>",
                Some("example.org"),
            ),
            ("FROM:Alice <alice@example.org.>", Some("example.org")),
            (
                "From: (a@comment.test) alice@example.org",
                Some("example.org"),
            ),
            (
                "From: \"a@quoted.test\" <b@example.org>",
                Some("example.org"),
            ),
            ("From: Alice\r\n <alice@folded.test>", Some("folded.test")),
            ("From: a@one.test, b@two.test", Some("one.test")),
            ("From: undisclosed", None),
            ("X-From: a@x.test", None),
        ] {
            assert_eq!(from_domain(m(field).as_bytes()).as_deref(), want, "{field}");
        }
        assert_eq!(
            from_domain(b"Subject: none\r\n\r\nFrom: a@body.test\r\n"),
            None
        );
    }

    #[test]
    fn signs_the_present_fields_and_from_twice() {
        let m = b"from: a@example.org\r\nTo: b@remote.test\r\nReceived: x\r\n\
                  Subject: s\r\nList-Id: <l.example.org>\r\n\r\nTo: not@a.header\r\n";
        assert_eq!(
            signed_names(m),
            ["From", "To", "Subject", "List-Id", "From"]
        );
    }

    #[tokio::test]
    async fn both_algorithms_sign_and_the_signatures_name_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = postgate_store::open(&postgate_store::Backend::Embedded {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
        let signer = Signer::new(store.clone());
        let message = b"From: Alice <alice@example.org>\r\nTo: bob@remote.test\r\n\
                        Subject: hi\r\n\r\nHello.\r\n"
            .to_vec();
        // No key at all.
        let (out, o) = signer.sign(message.clone(), "example.org").await;
        assert_eq!((out.as_slice(), o), (message.as_slice(), Outcome::NoKey));
        let ed = Ed25519Key::generate_pkcs8().unwrap();
        store
            .add_dkim_key(postgate_store::DkimKey {
                domain: "example.org".into(),
                selector: "e1".into(),
                algorithm: DkimAlgorithm::Ed25519Sha256,
                private_key: postgate_types::Secret::new(ed),
                created: 0,
            })
            .await
            .unwrap();
        signer.refresh().await.unwrap();
        let (out, o) = signer.sign(message.clone(), "other.test").await;
        assert_eq!(o, Outcome::Signed(vec!["ed25519-sha256"]));
        let text = String::from_utf8(out).unwrap();
        let (field, rest) = text.split_once("\r\nFrom:").unwrap();
        assert!(field.starts_with("DKIM-Signature: "), "{text}");
        assert!(rest.ends_with("\r\n\r\nHello.\r\n"));
        let field = field.replace(['\r', '\n', ' ', '\t'], "");
        for tag in [
            "a=ed25519-sha256",
            "d=example.org",
            "s=e1",
            "c=relaxed/relaxed",
        ] {
            assert!(field.contains(tag), "{tag} in {field}");
        }
        // mail-auth lists the fields bottom up; From is there twice.
        let h = field
            .split(";h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let mut h: Vec<&str> = h.split(':').collect();
        h.sort();
        assert_eq!(h, ["From", "From", "Subject", "To"], "{field}");
        // Another domain's mail is not signed.
        let other = b"From: x@other.test\r\n\r\nx\r\n".to_vec();
        assert_eq!(signer.sign(other, "other.test").await.1, Outcome::NoKey);
        // A bad key is left out, the good one still used.
        store
            .add_dkim_key(postgate_store::DkimKey {
                domain: "example.org".into(),
                selector: "broken".into(),
                algorithm: DkimAlgorithm::RsaSha256,
                private_key: postgate_types::Secret::new(vec![1, 2, 3]),
                created: 0,
            })
            .await
            .unwrap();
        signer.refresh().await.unwrap();
        assert_eq!(
            signer.sign(message, "example.org").await.1,
            Outcome::Signed(vec!["ed25519-sha256"])
        );
    }
}
