//! HTTP(S) probe over a hand-driven hyper HTTP/1.1 connection, so that every
//! phase is timed on its own: `resolve`, `connect`, `tls`, `first_byte` (request
//! sent → first response byte) and `transfer` (first byte → body read, up to
//! `max_body`). Each redirect hop is a new connection; phases add up over hops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::time::Instant;
use url::Url;

use super::net::stream::{self, Timed, add_phase};
use super::net::tls::{self, TlsConfigs, TlsSetupError};
use super::net::{resolve, x509};
use super::seam::{self, Completion, Probe};
use super::{Info, Observation, Outcome, Phase, Phases, Reason};
use crate::config::interference::BlockpageRule;
use crate::config::{BodyMatch, Config, Host, HttpSpec, IpVersion, Target, TargetSpec};
use crate::interference::{Check, Evidence, Extra};

mod tlscheck;
pub use tlscheck::ISSUERS_FILE;

/// The User-Agent sent unless a target's `headers` set one.
pub const USER_AGENT: &str = concat!("linkwatch/", env!("CARGO_PKG_VERSION"));

/// The HTTP prober could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("failed to set up TLS for target {target}")]
    Tls {
        target: String,
        #[source]
        source: TlsSetupError,
    },
}

/// Probes HTTP(S) targets with TLS configs built once at start.
pub struct HttpProber {
    tls: TlsConfigs,
    /// For `sni_control` handshakes: the certificate is not judged, only
    /// that the server answered the name.
    control: Arc<ClientConfig>,
    /// `[interference] blockpage`, tried after a target's own rules.
    blockpage: Vec<BlockpageRule>,
    /// The usual TLS issuers of each target (`<data_dir>/tls_issuers.json`).
    issuers: Arc<tlscheck::IssuerBook>,
}

/// The seam's entry point; the work is [`HttpProber::probe`], in a task of its own.
impl Probe for HttpProber {
    fn start(self: &Arc<Self>, req: seam::Request, done: Completion) {
        let me = self.clone();
        seam::spawn(req.deadline(), done, async move {
            match req.spec::<HttpSpec>() {
                Ok(spec) => {
                    me.probe(req.index(), req.target(), spec, req.deadline())
                        .await
                }
                Err(o) => Observation::new(o),
            }
        });
    }
}

impl HttpProber {
    /// Builds one TLS config per distinct `(ca_file, tls_verify)` among the HTTP
    /// targets. Warns (once, here) about targets without verification.
    pub fn new(config: &Config) -> Result<Self, HttpSetupError> {
        let mut tls = TlsConfigs::new(&[tls::ALPN_HTTP1]);
        for target in &config.targets {
            let TargetSpec::Http(spec) = &target.spec else {
                continue;
            };
            tls.prepare(spec.ca_file.as_deref(), spec.tls_verify)
                .map_err(|source| HttpSetupError::Tls {
                    target: target.name.clone(),
                    source,
                })?;
            if !spec.tls_verify {
                tracing::warn!(
                    target_name = %target.name,
                    url = %crate::config::redact::redact_url(&spec.url),
                    "TLS certificate verification is disabled for this target (tls_verify = false)"
                );
            }
        }
        let control = tls::client_config(None, false, &[tls::ALPN_HTTP1])
            .map(Arc::new)
            .map_err(|source| HttpSetupError::Tls {
                target: "(sni_control)".into(),
                source,
            })?;
        Ok(Self {
            tls,
            control,
            blockpage: config.interference.blockpage.clone(),
            issuers: Arc::new(tlscheck::IssuerBook::new(Some(&config.daemon.data_dir))),
        })
    }

    /// Probes `spec.url` once, following up to `follow_redirects` redirects.
    pub async fn probe(
        &self,
        _index: usize,
        target: &Target,
        spec: &HttpSpec,
        deadline: Instant,
    ) -> Observation {
        let start = Instant::now();
        let mut acc = Acc::default();
        let outcome = self.run(&target.name, spec, deadline, &mut acc).await;
        let mut info = acc.info;
        let outcome = match outcome {
            Ok(()) => {
                let duration = start.elapsed();
                // Throughput only from a body actually transferred: a HEAD, a 204
                // or a failed probe says nothing about the link's speed.
                if let (Some(bytes), Some(transfer)) =
                    (info.body_bytes, acc.phases.get(Phase::Transfer))
                    && bytes > 0
                    && !transfer.is_zero()
                {
                    info.bytes_per_second = Some(bytes as f64 / transfer.as_secs_f64());
                }
                Outcome::Success {
                    duration,
                    phases: acc.phases,
                }
            }
            Err(outcome) => outcome,
        };
        Observation::with_info(outcome, info)
    }

    async fn run(
        &self,
        target: &str,
        spec: &HttpSpec,
        deadline: Instant,
        acc: &mut Acc,
    ) -> Result<(), Outcome> {
        let tls = self
            .tls
            .for_probe(spec.ca_file.as_deref(), spec.tls_verify)?;
        let checks = Checks {
            prober: self,
            target,
            spec,
            host: Endpoint::of(&spec.url, "probe")
                .map(|e| e.host_text)
                .unwrap_or_default(),
        };
        let blockpages = !spec.blockpage.is_empty() || !self.blockpage.is_empty();
        let method = match spec.method {
            crate::config::HttpMethod::Get => Method::GET,
            crate::config::HttpMethod::Head => Method::HEAD,
        };
        let mut url = spec.url.clone();
        let mut redirects = 0u8;
        loop {
            let following = spec.follow_redirects > 0;
            let want_body = |status: StatusCode, headers: &HeaderMap| {
                !(following && redirect_location(status, headers).is_some())
                    && (blockpages || status_ok(status, &spec.expect_status))
            };
            let request = Request {
                url: &url,
                method: method.clone(),
                headers: &spec.headers,
                body: Bytes::new(),
                ip_version: spec.ip_version,
                max_body: spec.max_body,
                keep_body: spec.body_match.is_some() || blockpages,
            };
            let response =
                exchange_checked(&request, tls, deadline, acc, &want_body, Some(&checks)).await?;
            acc.info.status = Some(response.status.as_u16());
            if following
                && let Some(location) = redirect_location(response.status, &response.headers)
            {
                if redirects >= spec.follow_redirects {
                    return Err(Outcome::error(
                        Reason::TooManyRedirects,
                        format!(
                            "{url} redirects again (HTTP {}) after {redirects} redirects, the limit",
                            response.status.as_u16()
                        ),
                    ));
                }
                url = url.join(location).map_err(|e| {
                    Outcome::error(
                        Reason::Malformed,
                        format!("{url} redirects to an invalid Location {location:?}: {e}"),
                    )
                })?;
                redirects += 1;
                continue;
            }
            let status = response.status.as_u16();
            if let Some((rule, from)) =
                tlscheck::blockpage(&spec.blockpage, &self.blockpage, status, &response.body)
            {
                let evidence =
                    tlscheck::blockpage_evidence(rule, from, &url, status, &response.body);
                let detail = evidence.detail.clone();
                acc.info.evidence = Some(Box::new(evidence));
                return Err(Outcome::error(Reason::Blockpage, detail));
            }
            if !status_ok(response.status, &spec.expect_status) {
                let expected = if spec.expect_status.is_empty() {
                    "any 2xx or 3xx".to_string()
                } else {
                    format!("one of {:?}", spec.expect_status)
                };
                return Err(Outcome::error(
                    Reason::StatusMismatch,
                    format!(
                        "{url} answered HTTP {}, expected {expected}",
                        response.status.as_u16()
                    ),
                ));
            }
            if let Some(check) = &spec.body_match {
                let text = String::from_utf8_lossy(&response.body);
                let (ok, what) = match check {
                    BodyMatch::Substring(s) => {
                        (text.contains(s.as_str()), format!("contain {s:?}"))
                    }
                    BodyMatch::Regex(re) => {
                        (re.is_match(&text), format!("match /{}/", re.as_str()))
                    }
                };
                if !ok {
                    return Err(Outcome::error(
                        Reason::BodyMismatch,
                        format!(
                            "the body of {url} ({} bytes read) does not {what}",
                            response.body_bytes
                        ),
                    ));
                }
            }
            return Ok(());
        }
    }
}

/// The interference checks of one probe of an HTTP target, applied to the
/// connections to the URL's own host (not to redirect hops elsewhere).
pub(crate) struct Checks<'a> {
    prober: &'a HttpProber,
    target: &'a str,
    spec: &'a HttpSpec,
    host: String,
}

/// What a probe accumulates over its hops.
#[derive(Default)]
pub(crate) struct Acc {
    pub phases: Phases,
    pub info: Info,
}

/// One HTTP/1.1 request on a new connection.
pub(crate) struct Request<'a> {
    pub url: &'a Url,
    pub method: Method,
    /// Headers that replace the defaults of the same name (or add to them).
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub body: Bytes,
    pub ip_version: IpVersion,
    /// Body bytes read at most; the rest is left unread and the connection dropped.
    pub max_body: u64,
    /// Keep the bytes read (for body checks); otherwise only count them.
    pub keep_body: bool,
}

/// The response of [`exchange`].
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The bytes read, when `keep_body` (at most `max_body`).
    pub body: Vec<u8>,
    pub body_bytes: u64,
    /// Request written → body read (or head received, when the body was not wanted).
    pub exchange: Duration,
}

/// Sends `req` on a new connection and reads the response, timing each phase into `acc`.
/// The body is read only when `want_body(status, headers)`.
pub(crate) async fn exchange(
    req: &Request<'_>,
    tls: &Arc<ClientConfig>,
    deadline: Instant,
    acc: &mut Acc,
    want_body: &(dyn Fn(StatusCode, &HeaderMap) -> bool + Sync),
) -> Result<Response, Outcome> {
    exchange_checked(req, tls, deadline, acc, want_body, None).await
}

/// [`exchange`] with an HTTP target's interference checks on its TLS handshake.
async fn exchange_checked(
    req: &Request<'_>,
    tls: &Arc<ClientConfig>,
    deadline: Instant,
    acc: &mut Acc,
    want_body: &(dyn Fn(StatusCode, &HeaderMap) -> bool + Sync),
    checks: Option<&Checks<'_>>,
) -> Result<Response, Outcome> {
    let url = req.url;
    let end = Endpoint::of(url, "probe")?;
    let http_request = build_request(req)?;
    let stream = match checks {
        Some(c) if end.https && end.host_text == c.host => {
            open_checked(req, &end, tls, deadline, acc, c).await?
        }
        _ => open_stream(req, &end, tls, deadline, acc).await?,
    };

    let (timed, first_byte) = Timed::new(stream);
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(timed)).await {
            Ok(pair) => pair,
            Err(e) => return Err(classify_hyper(&e, url)),
        };
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;

    let sent = Instant::now();
    let response = match tokio::time::timeout_at(
        deadline,
        drive(
            conn.as_mut(),
            &mut conn_done,
            sender.send_request(http_request),
        ),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if is_reset(&e) => {
            return Err(Outcome::error(
                Reason::ResetAfterRequest,
                format!(
                    "the connection to {url} was reset after the request, before the response: {e}"
                ),
            ));
        }
        Ok(Err(e)) => return Err(classify_hyper(&e, url)),
        Err(_) => {
            let phase = if first_byte.get().is_some() {
                Phase::Transfer
            } else {
                Phase::FirstByte
            };
            return Err(Outcome::Timeout { phase: Some(phase) });
        }
    };
    let first = first_byte.get().copied().unwrap_or_else(Instant::now);
    add_phase(
        &mut acc.phases,
        Phase::FirstByte,
        first.saturating_duration_since(sent),
    );

    let (parts, mut body) = response.into_parts();
    let mut kept = Vec::new();
    let mut count = 0u64;
    if want_body(parts.status, &parts.headers) {
        while count < req.max_body {
            let frame = match tokio::time::timeout_at(
                deadline,
                drive(conn.as_mut(), &mut conn_done, body.frame()),
            )
            .await
            {
                Err(_) => {
                    add_phase(&mut acc.phases, Phase::Transfer, first.elapsed());
                    acc.info.body_bytes = Some(count);
                    return Err(Outcome::Timeout {
                        phase: Some(Phase::Transfer),
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    acc.info.body_bytes = Some(count);
                    return Err(classify_hyper(&e, url));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                let room = req.max_body - count;
                let take = usize::try_from(room).map_or(data.len(), |room| data.len().min(room));
                if req.keep_body {
                    kept.extend_from_slice(&data[..take]);
                }
                count += take as u64;
            }
        }
    }
    add_phase(&mut acc.phases, Phase::Transfer, first.elapsed());
    acc.info.body_bytes = Some(count);
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body: kept,
        body_bytes: count,
        exchange: sent.elapsed(),
    })
    // The connection (and any unread rest of the body) is dropped here.
}

/// Resolves `end`, connects (and does the TLS handshake for `https`),
/// recording the phases, the peer and the earliest certificate expiry seen.
async fn open_stream(
    req: &Request<'_>,
    end: &Endpoint,
    tls: &Arc<ClientConfig>,
    deadline: Instant,
    acc: &mut Acc,
) -> Result<stream::Stream, Outcome> {
    let (ip, resolve_time) = resolve::resolve_by(&end.host, req.ip_version, deadline).await?;
    add_phase(&mut acc.phases, Phase::Resolve, resolve_time);
    acc.info.peer = Some(ip);
    let addr = std::net::SocketAddr::new(ip, end.port);

    let tls = if end.https {
        Some((tls, tls::server_name(&end.host_text)?))
    } else {
        None
    };
    let (stream, opened) = stream::open(addr, tls, deadline, &mut acc.phases).await?;
    if let Some(not_after) = opened.cert_not_after {
        acc.info.cert_not_after = Some(
            acc.info
                .cert_not_after
                .map_or(not_after, |seen| seen.min(not_after)),
        );
    }
    Ok(stream)
}

/// Like [`open_stream`] for an HTTPS connection to the target's own host,
/// with its interference checks: the leaf's issuer and SPKI are recorded
/// (also when validation fails) and judged against `pin_spki`,
/// `expect_issuer` and the learned issuers (`tls_intercepted`); a validated
/// issuer is learned; a handshake reset or timed out is retried once on the
/// same address with `sni_control` (`sni_blocked` when that one answers).
async fn open_checked(
    req: &Request<'_>,
    end: &Endpoint,
    tls: &Arc<ClientConfig>,
    deadline: Instant,
    acc: &mut Acc,
    checks: &Checks<'_>,
) -> Result<stream::Stream, Outcome> {
    let spec = checks.spec;
    let (ip, resolve_time) = resolve::resolve_by(&end.host, req.ip_version, deadline).await?;
    add_phase(&mut acc.phases, Phase::Resolve, resolve_time);
    acc.info.peer = Some(ip);
    let addr = std::net::SocketAddr::new(ip, end.port);
    let name = tls::server_name(&end.host_text)?;
    let control = spec.sni_control.as_deref();
    let (opened, seen) = tls::record(stream::open_reserving(
        addr,
        Some((tls, name)),
        deadline,
        control.is_some(),
        &mut acc.phases,
    ))
    .await;
    let leaf = match &opened {
        Ok((stream::Stream::Tls(s), _)) => s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec()),
        _ => None,
    }
    .or_else(|| seen.leaf.as_ref().map(|c| c.to_vec()));
    let facts = leaf.as_deref().and_then(x509::leaf_facts);
    if let Some(f) = &facts {
        acc.info.tls_issuer = Some(f.issuer.to_string());
        acc.info.tls_spki = Some(f.spki.clone());
    }
    let validation = match &seen.verdict {
        Some(Err(e)) => Some(tls::describe(e)),
        _ => None,
    };
    let peer = addr.to_string();
    let judge = |f: &x509::LeafFacts, validation: Option<&str>| {
        let usual = checks.prober.issuers.usual(checks.target);
        tlscheck::judge(
            f,
            &spec.pin_spki,
            spec.expect_issuer.as_deref(),
            &usual,
            validation,
            &end.host_text,
            &peer,
        )
    };
    let intercepted = |acc: &mut Acc, evidence: Evidence| {
        let detail = evidence.detail.clone();
        acc.info.evidence = Some(Box::new(evidence));
        Outcome::error(Reason::TlsIntercepted, detail)
    };
    match opened {
        Ok((stream, opened)) => {
            if let Some(not_after) = opened.cert_not_after {
                acc.info.cert_not_after = Some(
                    acc.info
                        .cert_not_after
                        .map_or(not_after, |seen| seen.min(not_after)),
                );
            }
            if let Some(f) = &facts {
                if let Some(evidence) = judge(f, None) {
                    return Err(intercepted(acc, evidence));
                }
                if spec.tls_verify {
                    checks
                        .prober
                        .issuers
                        .learn(checks.target, &f.issuer.to_string())
                        .await;
                }
            }
            Ok(stream)
        }
        Err(outcome) => {
            if let (Some(f), Some(v)) = (&facts, &validation)
                && let Some(evidence) = judge(f, Some(v))
            {
                return Err(intercepted(acc, evidence));
            }
            let aborted = validation.is_none()
                && match &outcome {
                    Outcome::Timeout { phase } => *phase == Some(Phase::Tls),
                    Outcome::Error(e) => matches!(e.reason, Reason::ResetAfterHello | Reason::Tls),
                    Outcome::Success { .. } => false,
                };
            let Some(control) = control.filter(|_| aborted) else {
                return Err(outcome);
            };
            acc.info.extra = Some(Extra::SniControl);
            Err(sni_control(
                checks.prober,
                addr,
                &end.host_text,
                control,
                deadline,
                acc,
                outcome,
            )
            .await)
        }
    }
}

/// One handshake with `control` as the server name on `addr`, right after the
/// real one failed (`failed`): `sni_blocked` when it completes, else the
/// real failure, with the control's result added to its detail.
async fn sni_control(
    prober: &HttpProber,
    addr: std::net::SocketAddr,
    name: &str,
    control: &str,
    deadline: Instant,
    acc: &mut Acc,
    failed: Outcome,
) -> Outcome {
    let how = match &failed {
        Outcome::Timeout { .. } => {
            "no answer to the ClientHello (timeout in the tls phase)".to_string()
        }
        Outcome::Error(e) => format!("{}: {}", e.reason, e.detail),
        Outcome::Success { .. } => "success".to_string(),
    };
    let start = Instant::now();
    let result = match tls::server_name(control) {
        Ok(sni) => {
            let mut phases = Phases::default();
            stream::open(addr, Some((&prober.control, sni)), deadline, &mut phases)
                .await
                .map(|_| start.elapsed())
        }
        Err(o) => Err(o),
    };
    match result {
        Ok(took) => {
            let detail = format!(
                "TLS to {addr} as {name} failed ({how}); the same address completed a handshake as {control} (sni_control) in {} ms",
                took.as_millis()
            );
            acc.info.evidence = Some(Box::new(
                Evidence::new(Check::SniBlocked, name, detail.clone()).with_raw(vec![
                    format!("{name}: {how}"),
                    format!("{control}: handshake completed in {} ms", took.as_millis()),
                ]),
            ));
            Outcome::error(Reason::SniBlocked, detail)
        }
        Err(control_failed) => {
            let also = match &control_failed {
                Outcome::Timeout { .. } => "timed out".to_string(),
                Outcome::Error(e) => format!("{}: {}", e.reason, e.detail),
                Outcome::Success { .. } => "succeeded".to_string(),
            };
            tracing::debug!(address = %addr, name, control, result = %also, "sni_control failed too: not SNI filtering");
            match failed {
                Outcome::Error(mut e) => {
                    e.detail = format!("{}; sni_control {control} failed too ({also})", e.detail);
                    Outcome::Error(e)
                }
                other => other,
            }
        }
    }
}

/// Whether a request failed because the peer reset the connection
/// (ECONNRESET, not a close), before any response head.
fn is_reset(e: &hyper::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        cause = err.source();
    }
    false
}

/// Where an `http`/`https` URL points: scheme, host (as configured and as
/// text for TLS) and port.
pub(crate) struct Endpoint {
    pub https: bool,
    pub host: Host,
    pub host_text: String,
    pub port: u16,
}

impl Endpoint {
    /// `verb` names the use in messages (`cannot probe …`, `cannot test …`).
    pub(crate) fn of(url: &Url, verb: &str) -> Result<Self, Outcome> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(Outcome::error(
                    Reason::Malformed,
                    format!("cannot {verb} {url}: unsupported scheme {other:?}"),
                ));
            }
        };
        let (host, host_text) = match url.host() {
            Some(url::Host::Domain(d)) => (Host::Name(d.to_string()), d.to_string()),
            Some(url::Host::Ipv4(ip)) => (Host::Ip(ip.into()), ip.to_string()),
            Some(url::Host::Ipv6(ip)) => (Host::Ip(ip.into()), ip.to_string()),
            None => {
                return Err(Outcome::error(
                    Reason::Malformed,
                    format!("cannot {verb} {url}: no host"),
                ));
            }
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            https,
            host,
            host_text,
            port,
        })
    }
}

/// Polls `fut` while driving the connection that serves it.
pub(crate) async fn drive<C, F>(conn: Pin<&mut C>, conn_done: &mut bool, fut: F) -> F::Output
where
    C: Future<Output = Result<(), hyper::Error>>,
    F: Future,
{
    if *conn_done {
        return fut.await;
    }
    let mut fut = std::pin::pin!(fut);
    tokio::select! {
        biased;
        out = &mut fut => out,
        _ = conn => {
            // The connection ended (closed or failed); a failure is also
            // delivered to the pending request or body, which finishes now.
            *conn_done = true;
            fut.await
        }
    }
}

fn build_request(req: &Request<'_>) -> Result<http::Request<Full<Bytes>>, Outcome> {
    let url = req.url;
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(request_target(url));
    let Some(headers) = builder.headers_mut() else {
        return Err(invalid_request(url, "invalid method or URI"));
    };
    *headers = default_headers(url)?;
    apply_headers(headers, req.headers);
    builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| invalid_request(url, e))
}

/// The request target of `url`: its path and query (`/` at least).
pub(crate) fn request_target(url: &Url) -> String {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    if target.is_empty() {
        "/".into()
    } else {
        target
    }
}

/// The headers every request of ours carries: `Host`, `User-Agent`,
/// `Accept: */*` and `Connection: close` (one request per connection).
pub(crate) fn default_headers(url: &Url) -> Result<HeaderMap, Outcome> {
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    let mut headers = HeaderMap::new();
    let host = HeaderValue::from_str(&host).map_err(|e| invalid_request(url, e))?;
    headers.insert(header::HOST, host);
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(headers)
}

/// Applies a target's `headers`: each name replaces the default of that
/// name; a name given twice (in two spellings) is sent twice.
pub(crate) fn apply_headers(headers: &mut HeaderMap, extra: &[(HeaderName, HeaderValue)]) {
    let mut seen: Vec<&HeaderName> = Vec::new();
    for (name, value) in extra {
        if seen.contains(&name) {
            headers.append(name, value.clone());
        } else {
            headers.insert(name, value.clone());
            seen.push(name);
        }
    }
}

pub(crate) fn invalid_request(url: &Url, e: impl std::fmt::Display) -> Outcome {
    Outcome::error(
        Reason::Io,
        format!("failed to build the request for {url}: {e}"),
    )
}

/// The `Location` of a followable redirect (301, 302, 303, 307, 308).
fn redirect_location(status: StatusCode, headers: &HeaderMap) -> Option<&str> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    headers.get(header::LOCATION)?.to_str().ok()
}

/// `expect` empty: any 2xx or 3xx.
fn status_ok(status: StatusCode, expect: &[u16]) -> bool {
    if expect.is_empty() {
        status.is_success() || status.is_redirection()
    } else {
        expect.contains(&status.as_u16())
    }
}

/// Classifies a hyper error by walking its `source()` chain.
pub(crate) fn classify_hyper(e: &hyper::Error, url: &Url) -> Outcome {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return tls::classify_error(io, url.as_str());
            }
            let reason = match io.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => Reason::ConnectionReset,
                _ => Reason::Io,
            };
            return Outcome::error(reason, format!("request to {url} failed: {e}: {io}"));
        }
        cause = err.source();
    }
    let reason = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Reason::Malformed
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        Reason::ConnectionReset
    } else {
        Reason::Io
    };
    Outcome::error(reason, format!("request to {url} failed: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_status_range_is_2xx_3xx() {
        assert!(status_ok(StatusCode::NO_CONTENT, &[]));
        assert!(status_ok(StatusCode::FOUND, &[]));
        assert!(!status_ok(StatusCode::NOT_FOUND, &[]));
        assert!(!status_ok(StatusCode::OK, &[204]));
        assert!(status_ok(StatusCode::NO_CONTENT, &[204]));
    }

    #[test]
    fn spec_headers_override_defaults() {
        let url = Url::parse("http://example.test:8080/a/b?x=1").unwrap();
        let header = |n: &str, v: &str| {
            (
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        };
        let headers = vec![
            header("User-Agent", "custom"),
            header("X-A", "1"),
            header("x-a", "2"),
        ];
        let req = Request {
            url: &url,
            method: Method::GET,
            headers: &headers,
            body: Bytes::new(),
            ip_version: IpVersion::Any,
            max_body: 10,
            keep_body: false,
        };
        let built = build_request(&req).unwrap();
        assert_eq!(built.uri(), "/a/b?x=1");
        assert_eq!(built.headers()[header::HOST], "example.test:8080");
        assert_eq!(built.headers()[header::USER_AGENT], "custom");
        let xa: Vec<_> = built.headers().get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
    }

    #[test]
    fn only_real_redirects_with_location_are_followed() {
        let mut headers = HeaderMap::new();
        assert_eq!(redirect_location(StatusCode::FOUND, &headers), None);
        headers.insert(header::LOCATION, HeaderValue::from_static("/next"));
        assert_eq!(
            redirect_location(StatusCode::FOUND, &headers),
            Some("/next")
        );
        assert_eq!(redirect_location(StatusCode::NOT_MODIFIED, &headers), None);
    }
}
