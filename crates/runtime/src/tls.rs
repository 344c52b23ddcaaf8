//! TLS for every service: one acceptor, from the operator's certificate or a
//! self-signed one generated into the data directory on first start.
use crate::tls_stream::TlsStream;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a certificate or key file failed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
}

/// The TLS configuration every service shares. Cheap to clone.
#[derive(Clone)]
pub struct Tls(pub(crate) Arc<ServerConfig>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Performs the server's side of the handshake over `tcp`.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream> {
        TlsStream::accept(self.0.clone(), tcp).await
    }
}

/// Where the generated certificate lives inside the data directory.
pub const GENERATED_DIR: &str = "tls";

/// Builds the acceptor: from `cert` and `key` (PEM) when given, else from the
/// self-signed pair in `data_dir/tls/`, generated for `hostname` and localhost if absent.
pub fn acceptor(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    hostname: &str,
) -> Result<Tls, TlsError> {
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => ensure_self_signed(data_dir, hostname)?,
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::File {
            path: cert.clone(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: cert,
            message: "no certificate in file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| TlsError::File {
        path: key.clone(),
        message: e.to_string(),
    })?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Tls(Arc::new(config)))
}

fn ensure_self_signed(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join(GENERATED_DIR);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let file_err = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
    // The host name, and the loopback names a local client connects with.
    let mut names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.dedup();
    let generate = || -> Result<(String, String), rcgen::Error> {
        let mut params = rcgen::CertificateParams::new(names)?;
        // Clients that still look at the subject (fetchmail) see the host name.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hostname);
        let signing_key = rcgen::KeyPair::generate()?;
        let certificate = params.self_signed(&signing_key)?;
        Ok((certificate.pem(), signing_key.serialize_pem()))
    };
    let (cert_pem, key_pem) = generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key, key_pem.as_bytes()).map_err(|e| file_err(&key, e))?;
    std::fs::write(&cert, cert_pem).map_err(|e| file_err(&cert, e))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        acceptor(None, None, dir.path(), "mail.example.org").unwrap();
        let pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        acceptor(None, None, dir.path(), "mail.example.org").unwrap();
        assert_eq!(pem, std::fs::read(dir.path().join("tls/cert.pem")).unwrap());
    }
}
