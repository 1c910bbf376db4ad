//! TLS for the proxy: a rustls server configuration from PEM files.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why TLS could not be set up. Each message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read TLS certificate chain {path}: {reason}; pass a PEM file with --tls-cert")]
    Certificate { path: String, reason: String },
    #[error("cannot read TLS private key {path}: {reason}; pass a PEM private key with --tls-key")]
    PrivateKey { path: String, reason: String },
    #[error("TLS certificate and key do not form a valid configuration: {0}")]
    Config(String),
}

/// Loads the certificate chain and key and builds a server configuration (h2 and http/1.1).
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let certificate_path = files.certificate_chain.display().to_string();
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.certificate_chain)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|error| TlsSetupError::Certificate {
                path: certificate_path.clone(),
                reason: error.to_string(),
            })?;
    if certificates.is_empty() {
        return Err(TlsSetupError::Certificate {
            path: certificate_path,
            reason: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.private_key).map_err(|error| {
        TlsSetupError::PrivateKey {
            path: files.private_key.display().to_string(),
            reason: error.to_string(),
        }
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| TlsSetupError::Config(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
