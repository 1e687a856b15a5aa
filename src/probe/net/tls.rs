//! Shared rustls client setup for HTTPS, DoT and DoH probes.
//!
//! Every `ClientConfig` is built once at start (roots, CA files, verifier), so a
//! probe does no file I/O. The ring provider is set explicitly: with both
//! providers in the graph, rustls' default builder panics.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::probe::{Outcome, Reason};

/// ALPN for HTTP/1.1 (HTTPS and DoH).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The crypto provider every TLS config uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("failed to read CA file {path}: {source}")]
    ReadCaFile {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("failed to load CA file {path}: it holds no PEM certificate")]
    EmptyCaFile { path: PathBuf },
    #[error("failed to load CA file {path}: {source}")]
    BadCaCert {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("failed to build the TLS client configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// Builds a client config trusting the web PKI roots plus the PEM bundle `ca_file`,
/// or accepting any certificate when `verify` is false.
pub fn client_config(
    ca_file: Option<&Path>,
    verify: bool,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?;
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let mut added = 0;
        for cert in
            CertificateDer::pem_file_iter(path).map_err(|source| TlsSetupError::ReadCaFile {
                path: path.to_path_buf(),
                source,
            })?
        {
            let cert = cert.map_err(|source| TlsSetupError::ReadCaFile {
                path: path.to_path_buf(),
                source,
            })?;
            roots.add(cert).map_err(|source| TlsSetupError::BadCaCert {
                path: path.to_path_buf(),
                source,
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsSetupError::EmptyCaFile {
                path: path.to_path_buf(),
            });
        }
    }
    let inner: Arc<dyn ServerCertVerifier> = if verify {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsSetupError::Config(rustls::Error::General(e.to_string())))?
    } else {
        Arc::new(AcceptAnyCert(provider))
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recording(inner)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Client configs built at start, one per distinct `(ca_file, verify)`.
#[derive(Default)]
pub struct TlsConfigs {
    alpn: Vec<&'static [u8]>,
    configs: Vec<(Option<PathBuf>, bool, Arc<ClientConfig>)>,
}

impl TlsConfigs {
    /// An empty set whose configs will offer `alpn`.
    pub fn new(alpn: &[&'static [u8]]) -> Self {
        Self {
            alpn: alpn.to_vec(),
            configs: Vec::new(),
        }
    }

    /// Builds (once) the config for `(ca_file, verify)`.
    pub fn prepare(&mut self, ca_file: Option<&Path>, verify: bool) -> Result<(), TlsSetupError> {
        if self.get(ca_file, verify).is_some() {
            return Ok(());
        }
        let config = client_config(ca_file, verify, &self.alpn)?;
        self.configs
            .push((ca_file.map(Path::to_path_buf), verify, Arc::new(config)));
        Ok(())
    }

    /// The config prepared for `(ca_file, verify)`.
    pub fn get(&self, ca_file: Option<&Path>, verify: bool) -> Option<&Arc<ClientConfig>> {
        self.configs
            .iter()
            .find(|(c, v, _)| c.as_deref() == ca_file && *v == verify)
            .map(|(_, _, config)| config)
    }

    /// Like [`TlsConfigs::get`], as a probe outcome when the config was not prepared.
    pub fn for_probe(
        &self,
        ca_file: Option<&Path>,
        verify: bool,
    ) -> Result<&Arc<ClientConfig>, Outcome> {
        self.get(ca_file, verify).ok_or_else(|| {
            Outcome::error(
                Reason::Io,
                "no TLS configuration was prepared at start for this target",
            )
        })
    }
}

/// What the certificate verifier saw during one handshake, kept for the
/// caller that ran the handshake inside [`record`]: the leaf (also when it
/// fails validation, which the handshake's error alone does not carry) and
/// the verdict.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub leaf: Option<CertificateDer<'static>>,
    /// `None` when verification did not run (the handshake ended before the
    /// certificate arrived, or a resumed session skipped it).
    pub verdict: Option<Result<(), rustls::Error>>,
}

tokio::task_local! {
    static SEEN: Arc<std::sync::Mutex<Seen>>;
}

/// Runs `handshake` with the verifier recording into the returned cell.
/// The verifier is called synchronously while the handshake is polled, so a
/// task-local slot is per connection without a config per probe (and TLS
/// session resumption keeps working).
pub async fn record<F: std::future::Future>(handshake: F) -> (F::Output, Seen) {
    let cell = Arc::new(std::sync::Mutex::new(Seen::default()));
    let out = SEEN.scope(Arc::clone(&cell), handshake).await;
    let seen = cell.lock().map(|s| s.clone()).unwrap_or_default();
    (out, seen)
}

/// Wraps the real verifier (web PKI roots plus `ca_file`, or [`AcceptAnyCert`])
/// and records what it saw when the handshake runs inside [`record`].
#[derive(Debug)]
struct Recording(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let _ = SEEN.try_with(|cell| {
            if let Ok(mut seen) = cell.lock() {
                seen.leaf = Some(end_entity.clone().into_owned());
                seen.verdict = Some(verdict.as_ref().map(|_| ()).map_err(Clone::clone));
            }
        });
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// `tls_verify = false`: accepts every certificate, still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The SNI / verified name for a host given as text (a DNS name or an IP literal).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Outcome> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| {
        Outcome::error(
            Reason::Tls,
            format!("failed to use {host} as a TLS server name: {e}"),
        )
    })
}

/// Maps a failed handshake (or a TLS failure mid-stream) to `Reason::Tls` with its
/// cause, or to `Reason::ResetAfterHello` when the peer reset the connection.
pub fn classify_error(e: &io::Error, peer: &str) -> Outcome {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Outcome::error(
            Reason::Tls,
            format!("TLS handshake with {peer} failed: {}", describe(tls)),
        );
    }
    match e.kind() {
        // The client speaks first in TLS: a reset during the handshake came
        // after our ClientHello (a middlebox that filters on the name in it,
        // or a server that refuses the name).
        io::ErrorKind::ConnectionReset => Outcome::error(
            Reason::ResetAfterHello,
            format!(
                "TLS handshake with {peer} failed: the connection was reset after the ClientHello: {e}"
            ),
        ),
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Outcome::error(
            Reason::Tls,
            format!("TLS handshake with {peer} failed: the peer closed the connection: {e}"),
        ),
        _ => Outcome::error(Reason::Io, format!("TLS handshake with {peer} failed: {e}")),
    }
}

/// A short human cause for a rustls error.
pub fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "invalid certificate: unknown issuer".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "invalid certificate: expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "invalid certificate: not valid yet".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("invalid certificate: name mismatch ({cert})")
            }
            CertificateError::Revoked => "invalid certificate: revoked".into(),
            other => format!("invalid certificate: {other}"),
        },
        other => other.to_string(),
    }
}

/// The earliest `notAfter` (Unix seconds) over `certs`, skipping unparsable ones.
pub fn earliest_not_after(certs: &[CertificateDer<'_>]) -> Option<i64> {
    certs.iter().filter_map(|c| cert_not_after(c)).min()
}

/// Reads `tbsCertificate.validity.notAfter` from a DER X.509 certificate.
///
/// A deliberately small DER walk (RFC 5280 §4.1): Certificate ::= SEQUENCE {
/// tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
/// issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }.
pub fn cert_not_after(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (tag, cert, _) = super::x509::tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = super::x509::tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = super::x509::tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        let (_, _, after) = super::x509::tlv(rest)?;
        rest = after;
    }
    let (tag, validity, _) = super::x509::tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after) = super::x509::tlv(validity)?;
    let (tag, not_after, _) = super::x509::tlv(after)?;
    parse_time(tag, not_after)
}

/// UTCTime (0x17, `YYMMDDHHMMSSZ`) or GeneralizedTime (0x18, `YYYYMMDDHHMMSSZ`) to Unix seconds.
fn parse_time(tag: u8, value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i16 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i8>().ok();
    let dt = jiff::civil::DateTime::new(
        year,
        field(0)?,
        field(2)?,
        field(4)?,
        field(6)?,
        field(8)?,
        0,
    )
    .ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_second())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_forms() {
        assert_eq!(parse_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(0x17, b"300101000000Z"), Some(1_893_456_000));
        assert_eq!(parse_time(0x18, b"20300101000000Z"), Some(1_893_456_000));
        assert_eq!(parse_time(0x18, b"2030010100000Z"), None);
        assert_eq!(parse_time(0x17, b"301301000000Z"), None);
        assert_eq!(parse_time(0x17, b"30010100000aZ"), None);
    }

    #[test]
    fn truncated_or_garbage_der_is_none() {
        assert_eq!(cert_not_after(&[]), None);
        assert_eq!(cert_not_after(&[0x30, 0x85, 0, 0, 0, 0, 0]), None);
        assert_eq!(cert_not_after(&[0x30, 0x03, 0x30, 0x01]), None);
        assert_eq!(cert_not_after(b"not a certificate at all"), None);
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")), true, &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn configs_are_shared_per_combination() {
        let mut configs = TlsConfigs::new(&[ALPN_HTTP1]);
        configs.prepare(None, true).unwrap();
        configs.prepare(None, true).unwrap();
        configs.prepare(None, false).unwrap();
        assert_eq!(configs.configs.len(), 2);
        assert!(configs.get(None, true).is_some());
        assert!(configs.get(Some(Path::new("/x")), true).is_none());
    }
}
