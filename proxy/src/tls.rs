//! TLS for the proxy: a rustls server configuration from PEM files.

use std::path::Path;
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
    let certificates = read_certificates(&files.certificate_chain).map_err(|reason| {
        TlsSetupError::Certificate {
            path: files.certificate_chain.display().to_string(),
            reason,
        }
    })?;
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

/// Why a bundle of certificate authorities could not be used. The message names the file
/// and the flag that gives it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use the CA bundle {path} for Bedrock: {reason}; give --bedrock-ca-bundle (or \
     TOLLGATE_BEDROCK_CA_BUNDLE) a PEM file of the certificate authorities that Bedrock's \
     endpoint chains to, or leave it unset to trust the public roots"
)]
pub struct CaBundleError {
    path: String,
    reason: String,
}

/// The certificate authorities in the PEM file at `path`, for a client to trust instead of
/// the public roots (a private CA, or a TLS-inspecting egress proxy in front of AWS).
pub fn load_ca_bundle(path: &Path) -> Result<rustls::RootCertStore, CaBundleError> {
    let error = |reason: String| CaBundleError {
        path: path.display().to_string(),
        reason,
    };
    let certificates = read_certificates(path).map_err(error)?;
    let mut roots = rustls::RootCertStore::empty();
    for (index, certificate) in certificates.into_iter().enumerate() {
        roots.add(certificate).map_err(|reason| {
            error(format!(
                "its certificate {} is not valid: {reason}",
                index + 1
            ))
        })?;
    }
    Ok(roots)
}

/// The certificates of a PEM file, at least one; or why there are none.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| error.to_string())?;
    if certificates.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certificates)
}

/// A new self-signed certificate for `names` (tests): the certificate, for a client to
/// trust, and a server configuration presenting it, loaded from PEM files as the server's
/// own are.
#[cfg(test)]
pub(crate) fn self_signed_for_tests(
    names: &[&str],
) -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let names = names
        .iter()
        .map(|name| (*name).to_owned())
        .collect::<Vec<_>>();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        certificate_chain: directory.path().join("cert.pem"),
        private_key: directory.path().join("key.pem"),
    };
    std::fs::write(&files.certificate_chain, certified.cert.pem()).unwrap();
    std::fs::write(&files.private_key, certified.signing_key.serialize_pem()).unwrap();
    (
        certified.cert.der().clone(),
        load_server_config(&files).unwrap(),
    )
}
