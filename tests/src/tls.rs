//! A self-signed certificate for 127.0.0.1 and localhost, written to a temporary directory.

use std::path::PathBuf;

/// PEM files of a certificate the test trusts explicitly.
#[derive(Debug)]
pub struct TestCertificate {
    pub certificate_pem: String,
    pub certificate_path: PathBuf,
    pub key_path: PathBuf,
    _directory: tempfile::TempDir,
}

impl TestCertificate {
    /// Makes a fresh certificate and key.
    pub fn generate() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let directory = tempfile::tempdir().unwrap();
        let certificate_path = directory.path().join("cert.pem");
        let key_path = directory.path().join("key.pem");
        let certificate_pem = certified.cert.pem();
        std::fs::write(&certificate_path, &certificate_pem).unwrap();
        std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
        Self {
            certificate_pem,
            certificate_path,
            key_path,
            _directory: directory,
        }
    }

    /// A server configuration presenting this certificate, loaded as `serve --tls-cert`
    /// loads one, offering `alpn` (for example `[b"h2", b"http/1.1"]`).
    pub fn server_config(&self, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ServerConfig> {
        let files = proxy::config::TlsFiles {
            certificate_chain: self.certificate_path.clone(),
            private_key: self.key_path.clone(),
        };
        let mut config = (*proxy::tls::load_server_config(&files).unwrap()).clone();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        std::sync::Arc::new(config)
    }

    /// The `serve` flags that use this certificate.
    pub fn serve_flags(&self) -> [String; 4] {
        [
            "--tls-cert".to_owned(),
            self.certificate_path.display().to_string(),
            "--tls-key".to_owned(),
            self.key_path.display().to_string(),
        ]
    }
}
