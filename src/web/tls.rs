//! TLS for the web server: the user's certificate, or a self-signed one generated on first
//! start (rcgen) and kept in the data dir so browsers can pin the exception.

use crate::config::TlsFiles;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM {what}; give a PEM file")]
    Empty { path: PathBuf, what: &'static str },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the self-signed pair lives inside the data dir.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join("tls-cert.pem"), data_dir.join("tls-key.pem"))
}

/// Builds the rustls config (HTTP/2 and HTTP/1.1 via ALPN), generating the self-signed
/// pair first if needed.
pub fn server_config(files: &TlsFiles, data_dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = plain_server_config(files, data_dir)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The same certificate without ALPN: what the syslog TLS receiver (RFC 5425) uses.
pub fn plain_server_config(files: &TlsFiles, data_dir: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let (cert_path, key_path) = match files {
        TlsFiles::User { cert, key } => (cert.clone(), key.clone()),
        TlsFiles::SelfSigned => {
            let (cert, key) = self_signed_paths(data_dir);
            if !cert.is_file() || !key.is_file() {
                generate_self_signed(&cert, &key)?;
            }
            (cert, key)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(config)
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let host = hostname();
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !host.is_empty() && host != "localhost" {
        names.push(host);
    }
    let pair = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(key_path, pair.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, pair.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(data).map_err(err)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or fails.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .ok()
        .flatten()
        .ok_or(TlsError::Empty {
            path: path.to_path_buf(),
            what: "private key",
        })
}
