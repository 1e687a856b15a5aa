//! The HTTP server: `/metrics`, `/healthz`, `/api/v1/*` and a small status page.
//!
//! Hardened for a hostile or broken client: a connection cap in all and per
//! peer ([`admission`]: extra connections are closed at once, counted and
//! logged), slots of their own for trusted peers (`[daemon] trusted_peers`:
//! a flood from elsewhere does not keep the local scraper out), a short
//! header read timeout for every request head, the first and each next one
//! on a kept-alive connection (a silent, trickling or idle client is dropped
//! and counted), header size and count limits, and a lifetime cap per
//! connection. Requests carry no body we read, except `POST
//! /api/v1/peer/witness` (capped and time-bounded, see `crate::peer::serve`).
//!
//! With `[daemon] tls_cert` / `tls_key` the listener serves HTTPS only
//! ([`tls`]); admission, the header read timeout and the lifetime cap apply
//! to TLS connections alike, and the handshake has its own bound.
//!
//! [`bind`] and [`serve`] are two steps, so that the daemon can fail on a
//! taken port before it touches anything else.

pub(crate) mod admission;
mod chart;
pub(crate) mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

use crate::history::{HistoryQuery, HistoryStore};
use crate::metrics::{self, Metrics};
use crate::outage::OutageHandle;
use crate::page::{self, Period, Range};
use crate::status::StatusStore;
use admission::{Admission, TrustedPeers};

/// Time a client has to send a request's headers (and, on a kept-alive
/// connection, the next request's, counted from the end of the last
/// response). A scrape's head is one packet: 3 s allows for a retransmission
/// or two on a poor link, and bounds how long a silent, trickling or idle
/// client holds one of its peer's slots. The timer starts once per head:
/// bytes trickling in do not extend it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a single connection may live.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Request head buffer limit.
pub const MAX_BUF: usize = 16 * 1024;
/// Header count limit.
pub const MAX_HEADERS: usize = 32;

/// The reload endpoint's path.
pub const RELOAD_PATH: &str = "/-/reload";

/// Everything the handlers read.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusStore>,
    pub outages: OutageHandle,
    pub history: Arc<HistoryStore>,
    /// Cleared when the scheduler has stopped or died; `/healthz` then fails.
    pub scheduler_alive: Arc<AtomicBool>,
    pub started: jiff::Timestamp,
    /// Where `POST /-/reload` asks for a configuration reload; `None`: not offered.
    pub reload: Option<ReloadRequests>,
    /// `[daemon] trusted_peers`, which a reload may change.
    pub trusted_peers: TrustedPeers,
    /// The data directory: the page and `/api/v1/availability` read its
    /// journal for their figures, as `linkwatch report` does.
    pub data_dir: std::path::PathBuf,
    /// The journal as last read, kept until the file changes.
    pub journal_cache: JournalCache,
    /// `/api/v1/peer/*` (`[[peer]]`); `None`: answered 404.
    pub peer: Option<Arc<crate::peer::serve::PeerServer>>,
    /// The TLS acceptor, replaced by a reload; empty: plain HTTP.
    pub tls: tls::TlsSlot,
}

/// The journal read model the page and `/api/v1/availability` last loaded,
/// with the file's length and modification time then: re-read only when the
/// file changed (a page view parsed 5 000 lines in 30 ms otherwise).
#[derive(Default)]
pub struct JournalCache(
    std::sync::Mutex<Option<(u64, std::time::SystemTime, Arc<crate::journal::Ledger>)>>,
);

/// The answer to a reload request: `Ok` with a summary, or `Err` with
/// every problem (one per line, `file:line:column: …`).
pub type ReloadOutcome = Result<String, String>;

/// Sends reload requests to the daemon, each with where its outcome goes.
pub type ReloadRequests = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<ReloadOutcome>>;

/// `POST /-/reload` (as Prometheus and blackbox_exporter): re-reads the
/// configuration file; 200 with a summary when applied, 400 with the
/// problems when the file does not validate (nothing changes then), 503
/// while the daemon cannot take it. Any other method: 405, `Allow: POST`.
async fn reload(state: &AppState, method: &Method) -> Response<Body> {
    if method != Method::POST {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use POST to reload\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return r;
    }
    let Some(requests) = &state.reload else {
        return text(StatusCode::NOT_FOUND, "reload is not offered\n");
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if requests.send(tx).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n");
    }
    match rx.await {
        Ok(Ok(summary)) => response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            format!("{summary}\n").into_bytes(),
        ),
        Ok(Err(problems)) => response(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            format!("{problems}\n").into_bytes(),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n"),
    }
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
    let mut admission = Admission::new(state.metrics.registry(), state.trusted_peers.clone());
    let timeouts = admission.timeouts();
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
        let conn = Connection {
            state: state.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
            timeouts: timeouts.clone(),
            peer,
            trusted: permit.trusted(),
        };
        match state.tls.get() {
            None => {
                tokio::spawn(async move {
                    conn.serve(stream).await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => conn.serve(tls).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => {
                            conn.timeouts.count_handshake();
                            tracing::debug!(%peer, "TLS handshake not done within its timeout");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after the grace period; dropping them");
    }
}

/// What serving one accepted connection needs.
struct Connection {
    state: Arc<AppState>,
    builder: hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    timeouts: admission::Timeouts,
    peer: SocketAddr,
    /// Whether it has one of the trusted peers' slots.
    trusted: bool,
}

impl Connection {
    /// Serves HTTP/1 on `io` (plain or TLS) until it closes, times out or
    /// reaches its lifetime cap.
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            state,
            builder,
            watcher,
            timeouts,
            peer,
            trusted,
        } = self;
        // Requests this connection has sent, to tell a timeout on the first
        // head from one on an idle kept-alive connection.
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let conn = builder.serve_connection(
            TokioIo::new(io),
            service_fn(move |req: Request<Incoming>| {
                counted.fetch_add(1, Ordering::Relaxed);
                let state = state.clone();
                async move {
                    if req.uri().path().starts_with(crate::peer::serve::PREFIX) {
                        let resp = match &state.peer {
                            Some(p) => p.handle(req).await,
                            None => text(StatusCode::NOT_FOUND, "no [[peer]] is configured\n"),
                        };
                        return Ok::<_, Infallible>(resp);
                    }
                    let (method, uri) = (req.method().clone(), req.uri().clone());
                    drop(req);
                    if uri.path() == RELOAD_PATH {
                        return Ok::<_, Infallible>(reload(&state, &method).await);
                    }
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
        let conn = watcher.watch(conn);
        match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_timeout() => {
                let requests = requests.load(Ordering::Relaxed);
                timeouts.count(requests);
                tracing::debug!(%peer, requests, trusted, "HTTP connection closed: no complete request head within the header read timeout");
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error")
            }
            Err(_) => tracing::debug!(%peer, "HTTP connection reached its lifetime cap"),
        }
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
        "/metrics" => metrics_text(state),
        "/healthz" => healthz(state),
        "/api/v1/status" => status_json(state),
        "/api/v1/outages" => match parse_range(query) {
            Ok((since, until)) => json(StatusCode::OK, &{
                let mut v = state.outages.outages_with_paths(since, until);
                corroborate(state, v.iter_mut().map(|o| &mut o.record), []);
                v
            }),
            Err(msg) => bad_request(msg),
        },
        "/api/v1/paths" => match parse_paths_query(query) {
            Ok((group, since)) => json(
                StatusCode::OK,
                &state.outages.paths(group.as_deref(), since),
            ),
            Err(msg) => bad_request(msg),
        },
        "/api/v1/history" => match history_query(state, query) {
            Ok(q) => history_answer(state, &q),
            Err(msg) => bad_request(msg),
        },
        "/api/v1/degradations" => match parse_range(query) {
            Ok((since, until)) => json(StatusCode::OK, &{
                let mut v = state.outages.degradations(since, until);
                corroborate(state, [], &mut v);
                v
            }),
            Err(msg) => bad_request(msg),
        },
        "/api/v1/availability" => availability(state, query),
        "/api/v1/interference" => match parse_range(query) {
            Ok((since, until)) => json(StatusCode::OK, &interference(state, since, until)),
            Err(msg) => bad_request(msg),
        },
        "/" => status_page(state, query),
        "/static/page.css" => stylesheet(),
        path if path.starts_with(page::chart::PREFIX) => chart::chart(state, path, query),
        path => detail(state, path),
    }
}

/// `GET /metrics`.
fn metrics_text(state: &AppState) -> Response<Body> {
    let encoded = state.metrics.encode();
    // The registry's families are freed; the body is mapped on its own.
    crate::heap::trim();
    match encoded {
        Ok(body) => response(StatusCode::OK, metrics::CONTENT_TYPE, body),
        Err(e) => {
            tracing::error!(error = %e, "failed to encode metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to encode metrics\n",
            )
        }
    }
}

/// `GET /healthz`: 503 when the scheduler stopped or the journal cannot be written.
fn healthz(state: &AppState) -> Response<Body> {
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

/// `GET /api/v1/status`.
fn status_json(state: &AppState) -> Response<Body> {
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

/// `GET /api/v1/availability`: each group's figures over the range (the last 24 h by default).
fn availability(state: &AppState, query: &str) -> Response<Body> {
    match parse_range(query) {
        Ok((since, until)) => {
            let now = jiff::Timestamp::now();
            let until = until.unwrap_or(now).min(now);
            let since = since.unwrap_or_else(|| {
                jiff::Timestamp::from_second(until.as_second() - 86_400).unwrap_or(until)
            });
            if since >= until {
                bad_request("`since` must be before `until` (and before now)")
            } else {
                let status = state.status.status(&state.outages, state.started);
                let history = load_history(state);
                let figs = page_figures(&history, &status, now, &state.data_dir);
                let groups: Vec<_> = status
                    .groups
                    .iter()
                    .map(|g| figs.group(&g.name, since, until))
                    .collect();
                json(StatusCode::OK, &groups)
            }
        }
        Err(msg) => bad_request(msg),
    }
}

/// `GET /api/v1/interference`: the journal's `interference` lines with
/// `since <= at < until` (each bound optional), oldest first.
fn interference(
    state: &AppState,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
) -> Vec<crate::journal::InterferenceSeen> {
    let history = load_history(state);
    let mut v: Vec<_> = history
        .interference
        .iter()
        .filter(|l| since.is_none_or(|s| l.at >= s) && until.is_none_or(|u| l.at < u))
        .cloned()
        .collect();
    v.sort_by_key(|l| l.at);
    v
}

/// `GET /static/page.css`.
fn stylesheet() -> Response<Body> {
    let mut r = response(
        StatusCode::OK,
        "text/css; charset=utf-8",
        page::STYLESHEET.as_bytes().to_vec(),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=300"),
    );
    r
}

/// An outage's or slow period's page (see [`detail_path`]), else 404.
fn detail(state: &AppState, path: &str) -> Response<Body> {
    match detail_path(path) {
        Some((kind, id)) => match detail_page(state, kind, id) {
            Some(body) => html(body),
            None => text(
                StatusCode::NOT_FOUND,
                match kind {
                    page::Kind::Outage => "no such outage\n",
                    page::Kind::Degradation => "no such slow period\n",
                },
            ),
        },
        None => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A 400 answer with the reason as JSON (`{"error": …}`).
fn bad_request(msg: impl serde::Serialize) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": msg }),
    )
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

/// `target` (repeated or comma separated; default every target), `since`
/// (default 24 h ago), `until` (default now), `step` (seconds or a span like
/// `5m`; default the smallest whole minute giving at most 1440 points).
fn history_query(state: &AppState, query: &str) -> Result<HistoryQuery, String> {
    let now = jiff::Timestamp::now();
    let mut targets = Vec::new();
    let (mut since, mut until, mut step) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "target" => targets.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string)),
            "since" | "until" => {
                let t =
                    crate::timeparse::parse_time(&v, now).map_err(|e| format!("bad `{k}`: {e}"))?;
                if k == "since" {
                    since = Some(t)
                } else {
                    until = Some(t)
                }
            }
            "step" => {
                step = Some(
                    v.parse::<i64>()
                        .ok()
                        .or_else(|| crate::timeparse::parse_span(&v))
                        .ok_or_else(|| {
                            format!("bad `step`: `{v}` is not seconds or a span like 5m")
                        })?,
                )
            }
            _ => return Err(format!("unknown query parameter `{k}`")),
        }
    }
    let known = state.status.target_names();
    if targets.is_empty() {
        targets = known;
    } else if let Some(bad) = targets.iter().find(|t| !known.contains(t)) {
        return Err(format!("unknown target `{bad}`"));
    }
    let until = until.unwrap_or(now);
    let since = since.unwrap_or_else(|| {
        jiff::Timestamp::from_second(until.as_second() - 86_400).unwrap_or(until)
    });
    let step = step.unwrap_or_else(|| {
        let span = (until.as_second() - since.as_second()).max(60);
        ((span + 1440 * 60 - 1) / (1440 * 60)).max(1) * 60
    });
    let q = HistoryQuery::new(targets, since, until, step).map_err(|e| e.to_string())?;
    let total = q.points().saturating_mul(q.targets.len() as i64);
    if total > MAX_API_POINTS {
        return Err(format!(
            "{total} points asked for ({} targets × {}); name fewer targets, a shorter period or a larger `step` (at most {MAX_API_POINTS})",
            q.targets.len(),
            q.points()
        ));
    }
    Ok(q)
}

/// `/api/v1/history`'s answer: each series with the store's retention and
/// the resolution it was read at (`resolution_seconds`: 3600 when any part
/// came from the hourly summaries, 60 otherwise).
fn history_answer(state: &AppState, q: &HistoryQuery) -> Response<Body> {
    #[derive(serde::Serialize)]
    struct Retention {
        minutes_days: i64,
        hours_days: i64,
    }
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        #[serde(flatten)]
        series: &'a crate::history::Series,
        resolution_seconds: i64,
        retention: &'a Retention,
    }
    let (series, used) = state.history.query_read(q);
    let keep = state.history.retention();
    let retention = Retention {
        minutes_days: keep.minutes_days,
        hours_days: keep.hours_days,
    };
    let resolution_seconds = if used.hours { 3600 } else { 60 };
    let answer: Vec<Answer<'_>> = series
        .iter()
        .map(|series| Answer {
            series,
            resolution_seconds,
            retention: &retention,
        })
        .collect();
    json(StatusCode::OK, &answer)
}

/// Most points one `/api/v1/history` response carries (~100 MB of JSON).
const MAX_API_POINTS: i64 = 500_000;

/// How many targets an outage's detail view charts.
pub const PAGE_CHARTS: usize = 60;

/// Outages and slow periods (degradations) of the last 30 days, and open ones.
fn periods(state: &AppState, now: jiff::Timestamp) -> Vec<Period> {
    let since = jiff::Timestamp::from_second(now.as_second() - 31 * 86_400).unwrap_or(now);
    let mut outages = state.outages.outages(Some(since), None);
    let mut slow = state.outages.degradations(Some(since), None);
    corroborate(state, &mut outages, &mut slow);
    outages
        .iter()
        .map(Period::from)
        .chain(slow.iter().map(Period::from))
        .collect()
}

/// Attaches what peers said (`corroboration` events in the journal) to the
/// live view's records: corroboration arrives after a period ended, in this
/// run or an earlier one, and the journal holds it either way.
fn corroborate<'a>(
    state: &AppState,
    outages: impl IntoIterator<Item = &'a mut crate::journal::OutageRecord>,
    slow: impl IntoIterator<Item = &'a mut crate::journal::SlowPeriodRecord>,
) {
    let history = load_history(state);
    if history.corroborations.is_empty() {
        return;
    }
    outages
        .into_iter()
        .for_each(|r| history.corroborate_outage(r));
    slow.into_iter().for_each(|r| history.corroborate_slow(r));
}

/// The journal as the page and the API read it (cached until the file
/// changes); an unreadable one is empty (logged), and the figures then say
/// "not monitored". The heartbeat, which `History::load` also reads, changes
/// nothing here: the daemon itself watches the journal, so its last run
/// reaches now.
fn load_history(state: &AppState) -> Arc<crate::journal::Ledger> {
    let path = crate::journal::journal_path(&state.data_dir);
    let stamp = std::fs::metadata(&path)
        .ok()
        .and_then(|m| Some((m.len(), m.modified().ok()?)));
    let mut cache = state
        .journal_cache
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let (Some((len, at)), Some((clen, cat, h))) = (stamp, cache.as_ref())
        && len == *clen
        && at == *cat
    {
        return h.clone();
    }
    let history = Arc::new(
        crate::journal::Ledger::load(&state.data_dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "failed to read the journal for the page's figures");
            Default::default()
        }),
    );
    *cache = stamp.map(|(len, at)| (len, at, history.clone()));
    history
}

/// The shared figures over `history` as this daemon sees them: it watches
/// the journal, and its `unknown` groups are not yet judged.
fn page_figures<'a>(
    history: &'a crate::journal::Ledger,
    status: &crate::status::Status,
    now: jiff::Timestamp,
    data_dir: &std::path::Path,
) -> crate::outage::figures::Figures<'a> {
    use crate::outage::detector::State;
    // This daemon watches the journal (it holds the data directory's lock).
    let _ = data_dir;
    let alive = crate::journal::Liveness::Alive {
        pid: std::process::id().to_string(),
    };
    crate::outage::figures::Figures::new(history, now, &alive).with_undecided(
        status
            .groups
            .iter()
            .filter(|g| g.state == State::Unknown)
            .map(|g| (g.name.as_str(), g.since)),
    )
}

/// The `[plan]` rate of each throughput target's direction, as the journal's
/// last run configured it.
fn plans(history: &crate::journal::Ledger, now: jiff::Timestamp) -> Vec<(String, f64)> {
    history
        .runs
        .last()
        .map(|r| {
            let (plan, targets) = r.config_at(now);
            targets
                .iter()
                .filter_map(|t| {
                    plan.and_then(|p| p.rate(&t.direction))
                        .filter(|r| *r > 0.0)
                        .map(|r| (t.target.clone(), r))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /`: reads no history (but, every few minutes, whether files are
/// damaged: [`chart::damaged`]); the charts are `/chart/…` images.
fn status_page(state: &AppState, query: &str) -> Response<Body> {
    let q = match page::PageQuery::parse(query) {
        Ok(q) => q,
        Err(msg) => return bad_request(msg),
    };
    let status = state.status.status(&state.outages, state.started);
    let now = status.now;
    let history = load_history(state);
    let figs = page_figures(&history, &status, now, &state.data_dir);
    let range = q
        .range
        .unwrap_or_else(|| Range::fitted(history.runs.first().map(|r| r.started), now));
    let Some(targets) = page::select(&status, &q) else {
        return text(StatusCode::NOT_FOUND, "no such group\n");
    };
    let periods = periods(state, now);
    let ago = |s: i64| jiff::Timestamp::from_second(now.as_second() - s).unwrap_or(now);
    let monitored = figs.monitored(ago(31 * 86_400), now);
    let tz = jiff::tz::TimeZone::system();
    let figures = page::group_figures(&figs, &status, &tz);
    let damaged = chart::damaged(state, &status, range);
    let signs = interference(state, Some(ago(86_400)), None);
    html(page::status_page(&page::PageData {
        status: &status,
        periods: &periods,
        figures: &figures,
        monitored: &monitored,
        targets,
        range,
        damaged: &damaged,
        tz: &tz,
        interference: &signs,
    }))
}

/// The period kind and id of a detail view's path: `/outage/ID` or
/// `/degradation/ID` (the page links each period by its kind).
fn detail_path(path: &str) -> Option<(page::Kind, &str)> {
    [page::Kind::Outage, page::Kind::Degradation]
        .into_iter()
        .find_map(|k| {
            path.strip_prefix('/')?
                .strip_prefix(k.word())?
                .strip_prefix('/')
                .map(|id| (k, id))
        })
}

fn detail_page(state: &AppState, kind: page::Kind, id: &str) -> Option<String> {
    let id: String = url::form_urlencoded::parse(format!("id={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let status = state.status.status(&state.outages, state.started);
    let p = periods(state, status.now)
        .into_iter()
        .find(|p| p.kind == kind && p.id == id)?;
    let end = p.end.unwrap_or(status.now);
    let pad = ((end.as_second() - p.start.as_second()) * 2).clamp(600, 86_400);
    let since = jiff::Timestamp::from_second(p.start.as_second() - pad).unwrap_or(p.start);
    // Up to now, or further if the outage is recent: it stays in the middle.
    let until = jiff::Timestamp::from_second(end.as_second() + pad).unwrap_or(end);
    let span = (until.as_second() - since.as_second()).max(60);
    let step = ((span + 240 * 60 - 1) / (240 * 60)).max(1) * 60;
    let targets: Vec<String> = status
        .targets
        .iter()
        .filter(|t| t.group == p.group)
        .take(PAGE_CHARTS)
        .map(|t| t.name.clone())
        .collect();
    let charts = HistoryQuery::new(targets, since, until, step)
        .map(|q| state.history.query(&q))
        .unwrap_or_default();
    let tz = jiff::tz::TimeZone::system();
    let signs: Vec<_> = interference(state, Some(p.start), None)
        .into_iter()
        .filter(|l| l.group == p.group && l.at <= end)
        .collect();
    Some(page::detail_page(&p, &charts, &status, &tz, &signs))
}

/// An HTML response under the page's CSP.
fn html(body: String) -> Response<Body> {
    let mut r = response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        body.into_bytes(),
    );
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(page::CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    r
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
