//! TLS for https targets: the client configuration of llmpulse's own stamped sockets (the
//! kernel and socket clocks), which checks certificates as reqwest does (the platform verifier:
//! the system's roots, SNI, the host name) plus a target's `ca_file`; the extra roots for
//! reqwest's own connections (the client clock); and telling a failed handshake apart from other
//! connection failures (`error_kind = "tls"`).

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The client configuration of one target's stamped connections: TLS 1.2 and 1.3 over ring,
/// the platform verifier with `extra_roots` added, ALPN offering HTTP/1.1 (a target asking for
/// HTTP/2 offers h2 on its own copy: see `socket_clock`).
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    super::http::install_crypto();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())?
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.iter().cloned(),
            provider.clone(),
        )?
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (`ca_file`), or why there are none.
pub fn load_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (no -----BEGIN CERTIFICATE----- block)",
            path.display()
        ));
    }
    Ok(certs)
}

/// A protocol version as records write it.
pub fn version_name(v: rustls::ProtocolVersion) -> Option<&'static str> {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        _ => None,
    }
}

/// A TLS handshake that failed on a stamped connection; carried inside the `io::Error` the
/// connector returns, so the transport can tell it from a refused or timed-out connection.
#[derive(Debug)]
pub struct HandshakeFailed(pub String);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

/// Whether a connection error was TLS's (a certificate refused, a handshake broken): a
/// [`HandshakeFailed`] or a `rustls::Error` anywhere in its chain, including inside an
/// `io::Error`, however deeply nested (an `io::Error`'s `source()` skips the error it wraps, and
/// hyper-rustls wraps tokio-rustls's `io::Error` in another).
pub fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(e) = pending.pop() {
        if e.is::<HandshakeFailed>() || e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
        if let Some(source) = e.source() {
            pending.push(source);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = std::env::temp_dir().join(format!("llmpulse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = load_pem(&empty).unwrap_err();
        assert!(err.contains("empty.pem holds no certificate"), "{err}");
        let err = load_pem(&dir.join("missing.pem")).unwrap_err();
        assert!(
            err.starts_with("cannot read ") && err.contains("missing.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_a_tls_failure() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        assert!(is_tls_failure(&io));
        assert!(
            is_tls_failure(&std::io::Error::other(io)),
            "nested as hyper-rustls nests it"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_tls_failure(&refused));
    }
}
