//! The simulator over https (`llmpulse sim --tls-cert … --tls-key …`): TLS (rustls) over the
//! stamped connections, so a request's schedule still runs from the kernel's receive time of the
//! packet that completed it; ALPN offers HTTP/2 and HTTP/1.1. Each handshake runs in its own
//! task, after an optional delay (`handshake_delay`: a server whose TLS set-up is slow by a known
//! amount, for testing how a client splits a connection's set-up).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::arrival::{Arrivals, StampedListener, StampedStream};

/// How the simulator serves https.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// How long the server waits after accepting a connection before it reads the client's
    /// first handshake message.
    pub handshake_delay: Duration,
}

/// A server configuration from a PEM certificate chain and its PEM private key, or why not
/// (naming the file).
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("no private key in {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("{} and its key: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts stamped TCP connections and hands axum the ones whose handshake completed.
pub(super) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<StampedStream>, Arrivals)>,
    local: io::Result<Arrivals>,
}

impl TlsListener {
    pub(super) fn new(mut tcp: StampedListener, tls: Tls) -> Self {
        let local = tcp.local_addr();
        let (tx, ready) = mpsc::channel(1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (io, arrivals) = tcp.accept().await;
                let (tx, acceptor, delay) = (tx.clone(), acceptor.clone(), tls.handshake_delay);
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    match acceptor.accept(io).await {
                        Ok(stream) => {
                            let _ = tx.send((stream, arrivals)).await;
                        }
                        // A client that refused the certificate, as the tests' clients do.
                        Err(e) => tracing::debug!("TLS handshake failed: {e}"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<StampedStream>;
    type Addr = Arrivals;

    async fn accept(&mut self) -> (Self::Io, Arrivals) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task ended (the runtime is going away): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Arrivals> {
        match &self.local {
            Ok(a) => Ok(a.clone()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Arrivals {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}
