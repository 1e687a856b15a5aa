//! Calling a peer: one HTTP/1.1 request on a connection of its own (calls
//! are a few an hour), `Authorization: Bearer <token>`, JSON both ways.
//!
//! Every call is bounded: the connection by [`Limits::connect`], the whole
//! call (connect, TLS, request, the complete answer) by [`Limits::total`],
//! and the answer's body by [`Limits::max_body`] (read frame by frame and
//! cut at the cap, a `Content-Length` above it refused before reading). A
//! peer that answers slowly, with nonsense or with too much costs bounded
//! time and memory and is counted by reason in
//! `linkwatch_peer_calls_total{peer,endpoint,result}`; nothing here panics
//! on what the peer sends.
//!
//! `https://` verifies the peer's certificate against the web PKI roots, or
//! only against the peer's `ca_file` when one is set (a self-signed peer is
//! trusted for itself and nothing else). The token never appears in a log
//! line or an error: errors name the peer by `scheme://host:port`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prometheus::IntCounterVec;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::notify::Secret;

/// Time to open the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole call, the complete answer included (the largest
/// answer, ~3 MB, takes ~25 s over a 1 Mbit/s link).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this much of an error answer's body is quoted.
const QUOTE_MAX: usize = 200;

/// The bounds of one call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub total: Duration,
    /// Largest answer body read; a longer one is a `bad_answer`.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect: CONNECT_TIMEOUT,
            total: CALL_TIMEOUT,
            max_body: super::wire::MAX_RESPONSE_BODY,
        }
    }
}

/// Why a call gave no usable answer. [`CallError::result`] is its
/// `linkwatch_peer_calls_total` label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No connection, a TLS failure, a connection cut before the answer.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the call's time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The peer answered with a status other than 2xx.
    #[error("HTTP {status}: {said}")]
    Http { status: u16, said: String },
    /// Not HTTP, not the JSON asked for, or larger than the cap.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// A well-formed answer whose figures are impossible (checked by the caller).
    #[error("rejected: {0}")]
    Rejected(String),
}

impl CallError {
    pub fn result(&self) -> &'static str {
        match self {
            CallError::Unreachable(_) => "unreachable",
            CallError::Timeout(_) => "timeout",
            CallError::Http { .. } => "http_error",
            CallError::BadAnswer(_) => "bad_answer",
            CallError::Rejected(_) => "rejected",
        }
    }

    /// Whether the peer could not be reached at all (the next try waits for
    /// every pending call of this peer, not only this one).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CallError::Unreachable(_) | CallError::Timeout(_))
    }
}

/// `linkwatch_peer_calls_total{peer,endpoint,result}`, or nothing (tests, the CLI).
#[derive(Clone, Default)]
pub struct Calls(Option<IntCounterVec>);

impl Calls {
    pub fn new(counter: IntCounterVec) -> Self {
        Self(Some(counter))
    }

    /// Counts one call of `endpoint` to `peer`.
    pub fn count(&self, peer: &str, endpoint: &str, result: &str) {
        if let Some(c) = &self.0 {
            c.with_label_values(&[peer, endpoint, result]).inc();
        }
    }
}

/// A peer that can be called: its base URL, token and TLS set-up.
pub struct PeerClient {
    name: String,
    url: Url,
    token: Secret,
    tls: Option<Arc<ClientConfig>>,
    limits: Limits,
    calls: Calls,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("name", &self.name)
            .field("url", &self.shown())
            .finish_non_exhaustive()
    }
}

/// A peer client could not be set up (its `ca_file`, its URL).
#[derive(Debug, thiserror::Error)]
#[error("peer {peer}: {reason}")]
pub struct ClientSetupError {
    pub peer: String,
    pub reason: String,
}

impl PeerClient {
    /// A client for the peer `name` at `url` (`http` or `https`); `ca_file`
    /// (PEM, one or more certificates) replaces the web PKI roots.
    pub fn new(
        name: &str,
        url: &Url,
        token: Secret,
        ca_file: Option<&Path>,
        calls: Calls,
    ) -> Result<Self, ClientSetupError> {
        let err = |reason: String| ClientSetupError {
            peer: name.to_owned(),
            reason,
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err(format!("url {url} has no host")));
        }
        let tls = match url.scheme() {
            "https" => Some(Arc::new(tls_config(ca_file).map_err(err)?)),
            "http" => None,
            other => return Err(err(format!("url scheme {other:?}: use http or https"))),
        };
        Ok(Self {
            name: name.to_owned(),
            url: url.clone(),
            token,
            tls,
            limits: Limits::default(),
            calls,
        })
    }

    /// The same client with other bounds (tests, the command line).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts a call's outcome decided after the exchange (a `rejected`
    /// answer whose figures the caller found impossible).
    pub fn count(&self, endpoint: &str, result: &str) {
        self.calls.count(&self.name, endpoint, result);
    }

    /// `GET path?query` (`query` already encoded; empty for none), the
    /// answer parsed as `T`; counted under `endpoint` when it fails (the
    /// caller counts `ok`, or `rejected`, once it has checked the answer:
    /// see [`Self::count`]).
    pub async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
        query: &str,
    ) -> Result<T, CallError> {
        self.call(endpoint, Method::GET, path, query, None).await
    }

    /// `POST path` with `body` as JSON, the answer parsed as `T`.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| CallError::BadAnswer(format!("cannot encode the request: {e}")))?;
        self.call(endpoint, Method::POST, path, "", Some(body.into()))
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Bytes>,
    ) -> Result<T, CallError> {
        let total = self.limits.total;
        let r = match tokio::time::timeout(total, self.exchange(method, path, query, body)).await {
            Ok(Ok(bytes)) => serde_json::from_slice::<T>(&bytes).map_err(|e| {
                CallError::BadAnswer(format!(
                    "{}: the answer is not the JSON expected: {e}",
                    self.shown()
                ))
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CallError::Timeout(format!(
                "{}: no complete answer within {}",
                self.shown(),
                humantime::format_duration(total)
            ))),
        };
        if let Err(e) = &r {
            self.calls.count(&self.name, endpoint, e.result());
        }
        r
    }

    /// The peer as errors name it: `scheme://host:port`, no path, user or query.
    pub fn shown(&self) -> String {
        format!(
            "{}://{}{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or(""),
            self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }

    /// The request's target: the peer URL's path (a prefix, for a peer
    /// behind a reverse proxy) joined with `path`, and the query.
    fn target(&self, path: &str, query: &str) -> String {
        let base = self.url.path().trim_end_matches('/');
        if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        }
    }

    /// Connects, sends one request and reads the answer's body (capped).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, CallError> {
        let shown = self.shown();
        let host = self
            .url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = self
            .url
            .port_or_known_default()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let connect = self.limits.connect;
        let stream = tokio::time::timeout(connect, connect_any(&host, port))
            .await
            .map_err(|_| {
                CallError::Timeout(format!(
                    "{shown}: no connection within {}",
                    humantime::format_duration(connect)
                ))
            })?
            .map_err(|e| CallError::Unreachable(format!("{shown}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let authority = match self.url.port() {
            Some(p) if host.contains(':') => format!("[{host}]:{p}"),
            Some(p) => format!("{host}:{p}"),
            None if host.contains(':') => format!("[{host}]"),
            None => host.clone(),
        };
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                CallError::Unreachable(format!(
                    "{shown}: the token holds characters a header cannot carry"
                ))
            })?;
        auth.set_sensitive(true);
        let mut req = Request::builder()
            .method(method)
            .uri(self.target(path, query))
            .header(header::HOST, authority)
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("linkwatch/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default())).map_err(|e| {
            CallError::Unreachable(format!("{shown}: cannot build the request: {e}"))
        })?;
        let max = self.limits.max_body;
        match &self.tls {
            Some(tls) => {
                let name = crate::probe::net::tls::server_name(&host).map_err(|_| {
                    CallError::Unreachable(format!("{shown}: {host} is not a TLS server name"))
                })?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| CallError::Unreachable(format!("{shown}: {}", tls_cause(&e))))?;
                send(TokioIo::new(stream), req, max, &shown).await
            }
            None => send(TokioIo::new(stream), req, max, &shown).await,
        }
    }
}

/// Connects to the first address of `host:port` that answers.
async fn connect_any(host: &str, port: u16) -> Result<tokio::net::TcpStream, String> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = None;
    for a in addrs {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(format!("cannot connect to {a}: {e}")),
        }
    }
    Err(last.unwrap_or_else(|| format!("{host} has no address")))
}

/// Sends `req` on `io` and reads a 2xx answer's body up to `max` bytes; any
/// other status is [`CallError::Http`] with the start of what the peer said.
async fn send<I>(
    io: I,
    req: Request<Full<Bytes>>,
    max: usize,
    shown: &str,
) -> Result<Bytes, CallError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| classify(&e, shown))?;
    let conn = tokio::spawn(conn);
    let answer = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| classify(&e, shown))?;
        let status = resp.status();
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let cap = if status.is_success() { max } else { QUOTE_MAX };
        if status.is_success()
            && let Some(n) = declared
            && n > max as u64
        {
            return Err(CallError::BadAnswer(format!(
                "{shown}: the answer announces {n} bytes, more than the {max} allowed"
            )));
        }
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e, shown))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > cap {
                    if status.is_success() {
                        return Err(CallError::BadAnswer(format!(
                            "{shown}: the answer is longer than the {max} bytes allowed"
                        )));
                    }
                    bytes.extend_from_slice(&data[..cap - bytes.len()]);
                    break;
                }
                bytes.extend_from_slice(&data);
            }
        }
        if status.is_success() {
            Ok(Bytes::from(bytes))
        } else {
            Err(http_error(status, &bytes))
        }
    }
    .await;
    conn.abort();
    answer
}

/// A non-2xx answer, with the start of its text (printable characters only).
fn http_error(status: StatusCode, body: &[u8]) -> CallError {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    CallError::Http {
        status: status.as_u16(),
        said: text.trim().to_owned(),
    }
}

/// Sorts a hyper error: a peer that does not speak HTTP is a bad answer;
/// a connection cut or refused is unreachable.
fn classify(e: &hyper::Error, shown: &str) -> CallError {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        CallError::BadAnswer(format!("{shown}: not an HTTP answer: {text}"))
    } else {
        CallError::Unreachable(format!("{shown}: {text}"))
    }
}

/// A failed TLS handshake in words (a certificate problem named as such).
fn tls_cause(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => format!(
            "TLS handshake failed: {}",
            crate::probe::net::tls::describe(tls)
        ),
        None => format!("TLS handshake failed: {e}"),
    }
}

/// The client TLS set-up for a peer: only `ca_file`'s certificates when it
/// is set, else the web PKI roots.
fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "ca_file {}: it holds no PEM certificate",
                    path.display()
                ));
            }
        }
    }
    let mut config = ClientConfig::builder_with_provider(crate::probe::net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![crate::probe::net::tls::ALPN_HTTP1.to_vec()];
    Ok(config)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
