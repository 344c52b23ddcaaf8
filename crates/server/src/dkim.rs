//! `postgate dkim generate|list|remove`: DKIM signing keys (RFC 6376) and
//! the DNS records that publish them.
//!
//! Keys are made here and stored as PKCS#8 DER ([`postgate_store::DkimKeys`]);
//! the outbound agent signs with them (`postgate_outbound::dkim`). Ed25519
//! keys come from ring (through mail-auth); RSA keys from aws-lc-rs (ring
//! cannot generate RSA keys), which also signs with them.
use crate::cli::DkimCmd;
use anyhow::{Context, bail};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use postgate_dns::mail_auth::common::crypto::Ed25519Key;
use postgate_store::{DkimAlgorithm, DkimKey, Store, StoreError};
use postgate_types::Secret;
use std::io::Write;
use std::sync::Arc;

/// RSA modulus size: RFC 8301 §3.2 requires at least 1024 bits and
/// recommends 2048; 2048 still fits one DNS TXT record (as two strings).
const RSA_BITS: aws_lc_rs::rsa::KeySize = aws_lc_rs::rsa::KeySize::Rsa2048;

/// Runs a `dkim` command.
pub async fn command(
    store: &Arc<dyn Store>,
    cmd: DkimCmd,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        DkimCmd::Generate {
            domain,
            selector,
            algorithm,
        } => {
            let algorithm = match algorithm.as_str() {
                "ed25519" => DkimAlgorithm::Ed25519Sha256,
                _ => DkimAlgorithm::RsaSha256,
            };
            let private_key = tokio::task::spawn_blocking(move || generate(algorithm))
                .await
                .context("key generation")??;
            let given = selector.is_some();
            let base = selector.unwrap_or_else(|| default_selector(algorithm));
            let mut n = 1;
            let key = loop {
                let selector = if n == 1 {
                    base.clone()
                } else {
                    format!("{base}{n}")
                };
                let added = store
                    .add_dkim_key(DkimKey {
                        domain: domain.clone(),
                        selector,
                        algorithm,
                        private_key: Secret::new(private_key.clone()),
                        created: 0,
                    })
                    .await;
                match added {
                    // A default selector taken (a second key this month): the next number.
                    Err(StoreError::Exists(_)) if !given && n < 99 => n += 1,
                    other => break other?,
                }
            };
            writeln!(
                out,
                "added DKIM key {} for {} ({}); publish in DNS:",
                key.selector, key.domain, key.algorithm
            )?;
            writeln!(out, "{}", zone_line(&key)?)?;
        }
        DkimCmd::List { domain, json } => {
            let keys = store.dkim_keys(domain.as_deref()).await?;
            if json {
                let list = keys
                    .iter()
                    .map(|k| {
                        Ok(serde_json::json!({
                            "domain": k.domain,
                            "selector": k.selector,
                            "algorithm": k.algorithm,
                            "created": created(k.created),
                            "name": record_name(k),
                            "txt": record_text(k)?,
                        }))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for k in &keys {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        k.domain,
                        k.selector,
                        k.algorithm,
                        created(k.created)
                    )?;
                    writeln!(out, "  {}", zone_line(k)?)?;
                }
            }
        }
        DkimCmd::Remove { domain, selector } => {
            if !store.remove_dkim_key(&domain, &selector).await? {
                bail!("no DKIM key {selector} for {domain}");
            }
            writeln!(
                out,
                "removed DKIM key {selector} for {domain}; mail is no longer signed with it \
                 (remove {selector}._domainkey.{domain} from DNS once mail signed with it \
                 has been delivered)"
            )?;
        }
    }
    Ok(())
}

/// A new private key, PKCS#8 DER.
fn generate(algorithm: DkimAlgorithm) -> anyhow::Result<Vec<u8>> {
    Ok(match algorithm {
        DkimAlgorithm::Ed25519Sha256 => {
            Ed25519Key::generate_pkcs8().map_err(|e| anyhow::anyhow!("{e}"))?
        }
        DkimAlgorithm::RsaSha256 => {
            let key = RsaKeyPair::generate(RSA_BITS)
                .map_err(|_| anyhow::anyhow!("cannot make an RSA key"))?;
            let der: Pkcs8V1Der = key
                .as_der()
                .map_err(|_| anyhow::anyhow!("cannot encode the RSA key"))?;
            der.as_ref().to_vec()
        }
    })
}

/// `pgYYYYMM` and `r` or `e`: a new selector each month, so that
/// rotating is adding a key (the old selector keeps verifying mail in
/// transit until removed).
fn default_selector(algorithm: DkimAlgorithm) -> String {
    let suffix = match algorithm {
        DkimAlgorithm::RsaSha256 => 'r',
        DkimAlgorithm::Ed25519Sha256 => 'e',
    };
    format!("pg{}{suffix}", chrono::Utc::now().format("%Y%m"))
}

fn created(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

/// Where the record goes (RFC 6376 §3.6.2.1): `SELECTOR._domainkey.DOMAIN.`
fn record_name(key: &DkimKey) -> String {
    format!("{}._domainkey.{}.", key.selector, key.domain)
}

/// The key record's text (RFC 6376 §3.6.1).
pub fn record_text(key: &DkimKey) -> anyhow::Result<String> {
    let der = key.private_key.expose();
    let (k, public) = match key.algorithm {
        // RFC 6376 §3.6.1 `p=`: the public key as DER SubjectPublicKeyInfo
        // (what `openssl rsa -pubout` gives, RFC 6376 Appendix C), base64.
        DkimAlgorithm::RsaSha256 => ("rsa", {
            let spki: PublicKeyX509Der = RsaKeyPair::from_pkcs8(der)
                .map_err(|e| anyhow::anyhow!("the stored RSA key: {e}"))?
                .public_key()
                .as_der()
                .map_err(|_| anyhow::anyhow!("cannot encode the RSA public key"))?;
            spki.as_ref().to_vec()
        }),
        // RFC 8463 §4: `k=ed25519`, `p=` the raw 32-octet public key, base64.
        DkimAlgorithm::Ed25519Sha256 => (
            "ed25519",
            Ed25519Key::from_pkcs8_der(der)
                .map_err(|e| anyhow::anyhow!("the stored Ed25519 key: {e}"))?
                .public_key(),
        ),
    };
    Ok(format!(
        "v=DKIM1; k={k}; p={}",
        base64::engine::general_purpose::STANDARD.encode(public)
    ))
}

/// The record as a zone file line: the text as quoted strings of at most
/// 255 octets (RFC 1035 §3.3.14: a TXT record's character-strings; DKIM
/// verifiers join them, RFC 6376 §3.6.2.2).
fn zone_line(key: &DkimKey) -> anyhow::Result<String> {
    let text = record_text(key)?;
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    Ok(format!("{} IN TXT {}", record_name(key), strings.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(algorithm: DkimAlgorithm) -> DkimKey {
        DkimKey {
            domain: "example.org".into(),
            selector: "s1".into(),
            algorithm,
            private_key: Secret::new(generate(algorithm).unwrap()),
            created: 0,
        }
    }

    #[test]
    fn records_for_both_algorithms() {
        let ed = key(DkimAlgorithm::Ed25519Sha256);
        let text = record_text(&ed).unwrap();
        let p = text.strip_prefix("v=DKIM1; k=ed25519; p=").unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        assert_eq!(raw.len(), 32, "RFC 8463 §4: the raw public key");
        assert_eq!(
            zone_line(&ed).unwrap(),
            format!("s1._domainkey.example.org. IN TXT \"{text}\"")
        );

        let rsa = key(DkimAlgorithm::RsaSha256);
        // ring (mail-auth's verifier side) reads what aws-lc-rs wrote.
        postgate_dns::mail_auth::common::crypto::RsaKey::<
            postgate_dns::mail_auth::common::crypto::Sha256,
        >::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs8(
            rsa.private_key.expose().clone().into(),
        ))
        .unwrap();
        let text = record_text(&rsa).unwrap();
        assert!(text.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"), "{text}");
        let line = zone_line(&rsa).unwrap();
        let strings = line.split_once(" IN TXT ").unwrap().1;
        let quoted: Vec<&str> = strings
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap()
            .split("\" \"")
            .collect();
        assert_eq!(quoted.len(), 2, "{line}");
        assert_eq!(quoted[0].len(), 255);
        assert_eq!(quoted.concat(), text);
    }
}
