//! A test certificate authority (rcgen): certificates for loopback servers
//! that a client trusting the CA's certificate verifies, as it would a
//! public CA's.
//!
//! [`TestCa::new`] makes a self-signed CA; [`TestCa::issue`] signs a server
//! certificate for some names; [`TestCa::pem`] is what the client is told to
//! trust (e.g. `[outbound] tls_ca`). [`Identity::self_signed`] makes one no
//! CA vouches for.

use std::sync::Arc;

/// A certificate chain and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate (and any intermediates), PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl Identity {
    /// A self-signed certificate for `names`.
    pub fn self_signed(names: &[&str]) -> Identity {
        let key = rcgen::KeyPair::generate().expect("generate key");
        let cert = leaf_params(names)
            .self_signed(&key)
            .expect("self-sign certificate");
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A rustls server configuration presenting it.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS server configuration");
        Arc::new(config)
    }
}

/// Parameters of a server certificate for `names` (the first is the CN).
fn leaf_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone()).expect("certificate parameters");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.as_str());
    }
    params
}

/// A self-signed certificate authority.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

impl TestCa {
    /// A new CA ("Postgate Test CA").
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Postgate Test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("generate CA key");
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM: the trust anchor.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Identity {
        let key = rcgen::KeyPair::generate().expect("generate key");
        let cert = leaf_params(names)
            .signed_by(&key, &self.issuer)
            .expect("sign certificate");
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
