//! HTTPS serving with `[daemon] tls_cert` / `tls_key` (rustls, ring).
//!
//! With both set the listener speaks TLS only: a plain-HTTP client's bytes
//! fail the handshake and the connection is closed. The handshake is bounded
//! by [`HANDSHAKE_TIMEOUT`] (a client that connects and says nothing holds
//! its slot no longer than that; counted as a timed-out connection with
//! reason `handshake`). The certificate and key are read at start and again
//! on every reload ([`TlsSlot::set`]): a renewed certificate is served to new
//! connections from then on, and one that does not load is a reload error
//! that leaves the running one in place.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::DaemonConfig;
use crate::config::peer::{read_cert_chain, read_private_key};

/// Longest a TLS handshake may take, from the accepted connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The acceptor new connections use: `None` serves plain HTTP.
#[derive(Clone, Default)]
pub struct TlsSlot(Arc<RwLock<Option<TlsAcceptor>>>);

impl TlsSlot {
    pub fn new(acceptor: Option<TlsAcceptor>) -> Self {
        Self(Arc::new(RwLock::new(acceptor)))
    }

    pub fn get(&self) -> Option<TlsAcceptor> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the acceptor (connections open now keep theirs).
    pub fn set(&self, acceptor: Option<TlsAcceptor>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
    }
}

/// The acceptor for `daemon`'s `tls_cert` and `tls_key`, read now; `None`
/// without them. The error names the file and the reason.
pub fn load(daemon: &DaemonConfig) -> Result<Option<TlsAcceptor>, String> {
    let (Some(cert), Some(key)) = (&daemon.tls_cert, &daemon.tls_key) else {
        return Ok(None);
    };
    let chain = read_cert_chain(cert).map_err(|e| format!("daemon.tls_cert: {e}"))?;
    let key = read_private_key(key).map_err(|e| format!("daemon.tls_key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "daemon.tls_cert/tls_key ({}, {}) cannot serve TLS: {e}",
                cert.display(),
                daemon.tls_key.as_deref().unwrap_or(cert).display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}
