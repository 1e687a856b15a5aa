//! The HTTP server: `/metrics`, `/healthz`, `/api/v1/*` and a small status page.
//!
//! Hardened for a hostile or broken client: a connection cap in all and per
//! peer ([`admission`]: extra connections are closed at once, counted and
//! logged), a short header read timeout (a slowloris client is dropped),
//! header size and count limits, and a lifetime cap per connection. Requests
//! carry no body we read.
//!
//! [`bind`] and [`serve`] are two steps, so that the daemon can fail on a
//! taken port before it touches anything else.

pub mod admission;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::metrics::{self, Metrics};
use crate::outage::OutageHandle;
use crate::status::StatusStore;
use admission::Admission;

/// Time a client has to send a request's headers (and, on a kept-alive
/// connection, the next request's). A scrape's head is one packet: 3 s
/// allows for a retransmission or two on a poor link, and bounds how long a
/// silent or trickling client holds one of its peer's slots.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a single connection may live.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Request head buffer limit.
pub const MAX_BUF: usize = 16 * 1024;
/// Header count limit.
pub const MAX_HEADERS: usize = 32;

/// Everything the handlers read.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusStore>,
    pub outages: OutageHandle,
    /// Cleared when the scheduler has stopped or died; `/healthz` then fails.
    pub scheduler_alive: Arc<AtomicBool>,
    pub started: jiff::Timestamp,
}

type Body = Full<Bytes>;

/// Serves `listener` until `shutdown` resolves, then closes idle connections
/// and waits (bounded by `grace`) for requests in progress.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut admission = Admission::new(state.metrics.registry());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let warn_due = admission.warn_due();
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(warn_due.unwrap_or_else(Instant::now)), if warn_due.is_some() => {
                admission.warn(Instant::now());
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "failed to accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(permit) = admission.admit(peer.ip(), Instant::now()) else {
            drop(stream);
            continue;
        };
        let state = state.clone();
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let (method, uri) = (req.method().clone(), req.uri().clone());
                async move {
                    // Encoding 10 000 targets' metrics takes tens of
                    // milliseconds: do it off the runtime's worker threads so
                    // probes keep their schedule during a scrape.
                    let resp = tokio::task::spawn_blocking(move || handle(&state, &method, &uri))
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "HTTP handler failed");
                            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
                        });
                    Ok::<_, Infallible>(resp)
                }
            }),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error")
                }
                Err(_) => tracing::debug!(%peer, "HTTP connection reached its lifetime cap"),
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after the grace period; dropping them");
    }
}

/// Routes one request.
pub fn handle(state: &AppState, method: &Method, uri: &http::Uri) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let query = uri.query().unwrap_or("");
    match uri.path() {
        "/metrics" => match state.metrics.encode() {
            Ok(body) => response(StatusCode::OK, metrics::CONTENT_TYPE, body),
            Err(e) => {
                tracing::error!(error = %e, "failed to encode metrics");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "failed to encode metrics\n",
                )
            }
        },
        "/healthz" => {
            let journal = state.outages.journal_health();
            if !state.scheduler_alive.load(Ordering::Acquire) {
                text(StatusCode::SERVICE_UNAVAILABLE, "scheduler stopped\n")
            } else if let Err(why) = journal {
                response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("{why}\n").into_bytes(),
                )
            } else {
                text(StatusCode::OK, "ok\n")
            }
        }
        "/api/v1/status" => {
            let status = state.status.status(&state.outages, state.started);
            // Through `Value`, whose maps sort their keys: the API has always
            // listed every object's keys in alphabetical order.
            match serde_json::to_value(status) {
                Ok(v) => json(StatusCode::OK, &v),
                Err(e) => {
                    tracing::error!(error = %e, "failed to serialize the status");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "serialization failed\n")
                }
            }
        }
        "/api/v1/outages" => match parse_range(query) {
            Ok((since, until)) => json(
                StatusCode::OK,
                &state.outages.outages_with_paths(since, until),
            ),
            Err(msg) => json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": msg }),
            ),
        },
        "/api/v1/paths" => match parse_paths_query(query) {
            Ok((group, since)) => json(
                StatusCode::OK,
                &state.outages.paths(group.as_deref(), since),
            ),
            Err(msg) => json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": msg }),
            ),
        },
        "/api/v1/degradations" => match parse_range(query) {
            Ok((since, until)) => json(StatusCode::OK, &state.outages.degradations(since, until)),
            Err(msg) => json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": msg }),
            ),
        },
        "/" => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            status_page(state).into_bytes(),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Parses `since` and `until` query parameters (RFC 3339, a date, or a span like `7d`).
fn parse_range(query: &str) -> Result<(Option<jiff::Timestamp>, Option<jiff::Timestamp>), String> {
    let mut since = None;
    let mut until = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let t = crate::timeparse::parse_time(&v, jiff::Timestamp::now())
            .map_err(|e| format!("bad `{k}`: {e}"))?;
        match k.as_ref() {
            "since" => since = Some(t),
            "until" => until = Some(t),
            _ => return Err(format!("unknown query parameter `{k}`")),
        }
    }
    Ok((since, until))
}

/// Parses the `group` and `since` query parameters of `/api/v1/paths`.
fn parse_paths_query(query: &str) -> Result<(Option<String>, Option<jiff::Timestamp>), String> {
    let mut group = None;
    let mut since = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "group" => group = Some(v.into_owned()),
            "since" => {
                since = Some(
                    crate::timeparse::parse_time(&v, jiff::Timestamp::now())
                        .map_err(|e| format!("bad `since`: {e}"))?,
                )
            }
            _ => return Err(format!("unknown query parameter `{k}`")),
        }
    }
    Ok((group, since))
}

fn status_page(state: &AppState) -> String {
    let status = state.status.status(&state.outages, state.started);
    let mut rows = String::new();
    for t in &status.targets {
        let (result, detail, at) = match &t.last {
            Some(l) => (
                l.result,
                l.detail
                    .clone()
                    .or_else(|| l.duration_seconds.map(|d| format!("{:.3} ms", d * 1e3)))
                    .unwrap_or_default(),
                l.at.clone(),
            ),
            None => ("pending", String::new(), String::new()),
        };
        rows.push_str(&format!(
            "<tr class=\"{result}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&t.name),
            escape(&t.group),
            t.kind,
            escape(&t.probes),
            t.state.as_str(),
            result,
            escape(&detail),
            at
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>linkwatch</title>\
<meta http-equiv=\"refresh\" content=\"10\">\
<style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;text-align:left}}\
.success td:nth-child(6){{color:green}}.timeout td:nth-child(6),.error td:nth-child(6){{color:#b00}}</style>\
</head><body><h1>linkwatch {}</h1><p>Started {}. <a href=\"/metrics\">metrics</a> · \
<a href=\"/api/v1/status\">status JSON</a> · <a href=\"/api/v1/outages\">outages JSON</a></p>\
<table><tr><th>target</th><th>group</th><th>kind</th><th>probes</th><th>state</th><th>last result</th>\
<th>detail</th><th>at (UTC)</th></tr>\n{rows}</table></body></html>\n",
        status.version,
        crate::status::format_ts(status.started),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            response(status, "application/json", body)
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to serialize a JSON response");
            text(StatusCode::INTERNAL_SERVER_ERROR, "serialization failed\n")
        }
    }
}

/// Binds the listen address with a clear error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "failed to listen on {addr} (daemon.listen): {e}; {}",
                match e.kind() {
                    std::io::ErrorKind::AddrInUse =>
                        "another process (perhaps another linkwatch) uses this port: stop it or choose another port",
                    std::io::ErrorKind::PermissionDenied =>
                        "ports below 1024 need privileges: choose a port of 1024 or above",
                    std::io::ErrorKind::AddrNotAvailable =>
                        "this machine has no such address: use 127.0.0.1, 0.0.0.0 or one of its own addresses",
                    _ => "check daemon.listen",
                }
            ),
        )
    })
}
