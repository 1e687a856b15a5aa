//! The receiving side: `/api/v1/peer/*` for the sites listed in `[[peer]]`.
//!
//! Every request is checked in this order, each refusal counted in
//! `linkwatch_peer_requests_total{peer,endpoint,result}`:
//! 1. the bearer token against every peer's ([`PeerTokens`]): none matches
//!    -> 401, counted under `peer=""`; the match names the caller and
//!    counts as the peer being seen (`linkwatch_peer_last_seen_*`, `_up`);
//! 2. the caller's rate ([`RateLimiter`]): 429 with `Retry-After`;
//! 3. the method, the query or body: 405/400 (`bad_request`), a body over
//!    [`MAX_REQUEST_BODY`] or not complete within [`BODY_READ_TIMEOUT`]:
//!    413 (`too_large`) / 408 (`bad_request`). Only `POST …/witness` has a
//!    body read at all.
//!
//! A peer is *silent* once it made no call for 3 × `witness_every`:
//! `linkwatch_peer_up` goes to 0 and the `site_silent` channels are told;
//! they are told again when it is back. The last call of each peer before
//! a restart is read from the journal's `witness` lines, so a site that went
//! dark before this daemon restarted is still known as silent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::config::notify::NotifyEvent;
use crate::history::{HistoryQuery, HistoryStore};
use crate::journal::{ChainHead, Entry, JournalPusher, Receipt, WitnessReceived};
use crate::metrics::Metrics;
use crate::notify::NotifyHandle;
use crate::notify::message::Notification;
use crate::peer::auth::{PeerTokens, RateLimiter};
use crate::peer::wire::{
    ENDPOINT_OBSERVATIONS, ENDPOINT_WITNESS, ENDPOINT_WITNESSES, MAX_REQUEST_BODY, MAX_WITNESSES,
    MinuteObservation, Observations, ObservationsRequest, PATH_OBSERVATIONS, PATH_WITNESS,
    PATH_WITNESSES, STEP_SECONDS, TargetObservations, WitnessRecord, WitnessRequest,
};

/// The path prefix the server hands to [`PeerServer::handle`].
pub const PREFIX: &str = "/api/v1/peer/";
/// Longest a witness body may take to arrive once the head is in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a witness waits for its journal line to be durable.
pub const WITNESS_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer is silent after this many `witness_every` without a call.
pub const SILENT_AFTER: u32 = 3;
/// How often silence is judged.
const WATCH_EVERY: Duration = Duration::from_secs(1);

type Body = Full<Bytes>;

/// What a reload may change.
struct Settings {
    /// Our site name as peers see it (`[daemon] site`, else "linkwatch").
    site: String,
    /// Our target names.
    targets: Vec<String>,
    witness_every: Duration,
    /// Configured peer names.
    peers: Vec<String>,
}

impl Settings {
    fn of(config: &Config) -> Self {
        Self {
            site: site_name(config),
            targets: config.targets.iter().map(|t| t.name.clone()).collect(),
            witness_every: config.daemon.witness_every,
            peers: config.peers.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// Our name as peers see it.
pub fn site_name(config: &Config) -> String {
    config
        .daemon
        .site
        .clone()
        .unwrap_or_else(|| "linkwatch".to_owned())
}

/// The peer endpoints' state.
pub struct PeerServer {
    tokens: PeerTokens,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
    history: Arc<HistoryStore>,
    journal: JournalPusher,
    data_dir: PathBuf,
    settings: RwLock<Settings>,
    /// Each peer's last authenticated call.
    seen: Mutex<HashMap<String, Timestamp>>,
    notify: Option<NotifyHandle>,
}

impl PeerServer {
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        history: Arc<HistoryStore>,
        journal: JournalPusher,
        notify: Option<NotifyHandle>,
    ) -> Self {
        Self {
            tokens: PeerTokens::new(&config.peers),
            limiter: RateLimiter::default(),
            metrics,
            history,
            journal,
            data_dir: config.daemon.data_dir.clone(),
            settings: RwLock::new(Settings::of(config)),
            seen: Mutex::new(HashMap::new()),
            notify,
        }
    }

    /// Applies a reloaded configuration (tokens, targets, witness_every).
    pub fn reload(&self, config: &Config) {
        self.tokens.set(&config.peers);
        self.limiter.retain(&config.peers);
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Settings::of(config);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| config.peers.iter().any(|p| &p.name == name));
    }

    fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, peer: &str, endpoint: &str, result: &str) {
        self.metrics
            .peer
            .requests
            .with_label_values(&[peer, endpoint, result])
            .inc();
    }

    /// Records an authenticated call of `peer` at `at`.
    fn seen(&self, peer: &str, at: Timestamp) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let last = seen.entry(peer.to_owned()).or_insert(at);
        *last = (*last).max(at);
        self.metrics
            .peer
            .last_seen
            .with_label_values(&[peer])
            .set(last.as_millisecond() as f64 / 1e3);
    }

    /// Answers one request under [`PREFIX`].
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let endpoint = match req.uri().path() {
            PATH_OBSERVATIONS => ENDPOINT_OBSERVATIONS,
            PATH_WITNESS => ENDPOINT_WITNESS,
            PATH_WITNESSES => ENDPOINT_WITNESSES,
            _ => return error(StatusCode::NOT_FOUND, "no such peer endpoint"),
        };
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let Some(peer) = self.tokens.identify(auth) else {
            self.count("", endpoint, "unauthorized");
            tracing::debug!(endpoint, "peer request without a valid token refused");
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid peer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"linkwatch-peer\""),
            );
            return r;
        };
        self.seen(&peer, Timestamp::now());
        if let Err(wait) = self.limiter.take(&peer, tokio::time::Instant::now()) {
            self.count(&peer, endpoint, "rate_limited");
            tracing::debug!(peer = %peer, endpoint, "peer request over its rate refused");
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        let (method, query) = (
            req.method().clone(),
            req.uri().query().unwrap_or("").to_owned(),
        );
        let want = if endpoint == ENDPOINT_WITNESS {
            Method::POST
        } else {
            Method::GET
        };
        if method != want {
            self.count(&peer, endpoint, "bad_request");
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            if let Ok(v) = HeaderValue::from_str(want.as_str()) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        let (result, response) = match endpoint {
            ENDPOINT_OBSERVATIONS => self.observations(&query).await,
            ENDPOINT_WITNESSES => self.witnesses(&peer, &query).await,
            _ => self.witness(&peer, req).await,
        };
        if let Some(result) = result {
            self.count(&peer, endpoint, result);
        }
        response
    }

    /// `GET /api/v1/peer/observations`.
    async fn observations(&self, query: &str) -> (Option<&'static str>, Response<Body>) {
        let asked = match ObservationsRequest::parse_query(query) {
            Ok(a) => a,
            Err(e) => return (Some("bad_request"), error(StatusCode::BAD_REQUEST, &e)),
        };
        let (site, ours) = {
            let s = self.settings();
            (s.site.clone(), s.targets.clone())
        };
        let history = self.history.clone();
        let answer =
            tokio::task::spawn_blocking(move || observe(&history, &site, &ours, &asked)).await;
        match answer {
            Ok(Ok(obs)) => (Some("ok"), json(StatusCode::OK, &obs)),
            Ok(Err(e)) => (Some("bad_request"), error(StatusCode::BAD_REQUEST, &e)),
            Err(e) => {
                tracing::error!(error = %e, "peer observations failed");
                (
                    None,
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                )
            }
        }
    }

    /// `POST /api/v1/peer/witness`: journals the caller's head, answers
    /// with the receipt of that line.
    async fn witness(
        &self,
        peer: &str,
        req: Request<hyper::body::Incoming>,
    ) -> (Option<&'static str>, Response<Body>) {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
            return (Some("too_large"), too_large());
        }
        let body = Limited::new(req.into_body(), MAX_REQUEST_BODY);
        let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
            Err(_) => {
                return (
                    Some("bad_request"),
                    error(
                        StatusCode::REQUEST_TIMEOUT,
                        "the body did not arrive in time",
                    ),
                );
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return (Some("too_large"), too_large());
            }
            Ok(Err(_)) => {
                return (
                    Some("bad_request"),
                    error(StatusCode::BAD_REQUEST, "the body could not be read"),
                );
            }
            Ok(Ok(c)) => c.to_bytes(),
        };
        let w: WitnessRequest = match serde_json::from_slice(&bytes) {
            Ok(w) => w,
            Err(e) => {
                let why = format!("the body is not a witness {{site, seq, hash, at}}: {e}");
                return (Some("bad_request"), error(StatusCode::BAD_REQUEST, &why));
            }
        };
        if let Err(why) = w.check() {
            return (Some("bad_request"), error(StatusCode::BAD_REQUEST, why));
        }
        let entry = Entry::Witness(WitnessReceived {
            peer: peer.to_owned(),
            site: w.site,
            head: ChainHead {
                seq: w.seq,
                hash: w.hash,
            },
            at: w.at,
        });
        let written = self.journal.push_acked(Timestamp::now(), entry).await;
        match tokio::time::timeout(WITNESS_WRITE_TIMEOUT, written).await {
            Ok(Ok(line)) => {
                tracing::debug!(peer, seq = line.seq, "peer witness journaled");
                let receipt = Receipt {
                    site: self.settings().site.clone(),
                    seq: line.seq,
                    hash: line.hash,
                };
                (Some("ok"), json(StatusCode::OK, &receipt))
            }
            _ => {
                tracing::warn!(peer, "a peer witness could not be journaled in time");
                (
                    None,
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the journal did not confirm the witness in time",
                    ),
                )
            }
        }
    }

    /// `GET /api/v1/peer/witnesses?site=NAME[&since=]`: the caller's own
    /// witness records, newest [`MAX_WITNESSES`], oldest first.
    async fn witnesses(&self, peer: &str, query: &str) -> (Option<&'static str>, Response<Body>) {
        let mut site = None;
        let mut since = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "site" => site = Some(v.into_owned()),
                "since" => match v.parse::<Timestamp>() {
                    Ok(t) => since = Some(t),
                    Err(e) => {
                        let why = format!("`since` is not an RFC 3339 time: {e}");
                        return (Some("bad_request"), error(StatusCode::BAD_REQUEST, &why));
                    }
                },
                _ => {
                    return (
                        Some("bad_request"),
                        error(
                            StatusCode::BAD_REQUEST,
                            "unknown parameter; valid: site, since",
                        ),
                    );
                }
            }
        }
        let Some(site) = site else {
            return (
                Some("bad_request"),
                error(StatusCode::BAD_REQUEST, "`site` is required"),
            );
        };
        let dir = self.data_dir.clone();
        let peer = peer.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            witness_lines(&dir).map(|lines| {
                let mut out: Vec<WitnessRecord> = lines
                    .into_iter()
                    .filter(|(_, w)| w.peer == peer && w.site == site)
                    .filter(|(received, _)| since.is_none_or(|s| *received >= s))
                    .map(|(received, w)| WitnessRecord {
                        seq: w.head.seq,
                        hash: w.head.hash,
                        at: w.at,
                        received,
                    })
                    .collect();
                let skip = out.len().saturating_sub(MAX_WITNESSES);
                out.drain(..skip);
                out
            })
        })
        .await;
        match read {
            Ok(Ok(records)) => (Some("ok"), json(StatusCode::OK, &records)),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the journal could not be read for a peer's witnesses");
                (
                    None,
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the journal could not be read",
                    ),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "peer witnesses failed");
                (
                    None,
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                )
            }
        }
    }

    /// Judges silence every second until `stop`: `linkwatch_peer_up`, and
    /// a `site_silent` notification when a peer goes silent and when it is
    /// back. Starts from the journal's `witness` lines.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let dir = self.data_dir.clone();
        if let Ok(Ok(lines)) = tokio::task::spawn_blocking(move || witness_lines(&dir)).await {
            let configured = self.settings().peers.clone();
            for (received, w) in lines {
                if configured.contains(&w.peer) {
                    self.seen(&w.peer, received);
                }
            }
        }
        let mut up: HashMap<String, bool> = HashMap::new();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.judge(&mut up, Timestamp::now()).await;
        }
    }

    async fn judge(&self, up: &mut HashMap<String, bool>, now: Timestamp) {
        let (peers, every, site) = {
            let s = self.settings();
            (s.peers.clone(), s.witness_every, s.site.clone())
        };
        let bound = every.saturating_mul(SILENT_AFTER);
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        up.retain(|name, _| peers.contains(name));
        for name in &peers {
            let last = seen.get(name).copied();
            let is_up = last.is_some_and(|t| {
                now.as_millisecond() - t.as_millisecond() < bound.as_millis() as i64
            });
            self.metrics
                .peer
                .up
                .with_label_values(&[name])
                .set(i64::from(is_up));
            let was = up.insert(name.clone(), is_up);
            let Some(last) = last else { continue };
            match (was, is_up) {
                (Some(true), false) => {
                    tracing::warn!(peer = %name, last_seen = %last, "peer site silent: no call for {}s", bound.as_secs());
                    self.tell(name, &site, now, last, true).await;
                }
                (Some(false), true) => {
                    tracing::info!(peer = %name, "peer site is back");
                    self.tell(name, &site, now, last, false).await;
                }
                _ => {}
            }
        }
    }

    async fn tell(&self, peer: &str, site: &str, now: Timestamp, last: Timestamp, silent: bool) {
        let Some(notify) = &self.notify else { return };
        let state = if silent { "silent" } else { "back" };
        let id = format!("{site}:peer:{peer}:{state}:{}", now.as_millisecond());
        let mut n = Notification::new(
            id,
            NotifyEvent::SiteSilent.as_str(),
            0,
            site.to_owned(),
            now,
        );
        n.group = Some(peer.to_owned());
        if silent {
            n.start = Some(last);
            n.title = format!("{peer} went silent");
            n.text = format!(
                "the site {peer} has not called {site} since {last}: its link or its linkwatch may be down"
            );
        } else {
            n.end = Some(now);
            n.title = format!("{peer} is back");
            n.text = format!(
                "the site {peer} calls {site} again (last silent since the call at {last} before)"
            );
        }
        notify.push_external(NotifyEvent::SiteSilent, n).await;
    }
}

/// The observations of `asked` from the history store.
fn observe(
    history: &HistoryStore,
    site: &str,
    ours: &[String],
    asked: &ObservationsRequest,
) -> Result<Observations, String> {
    let known: Vec<String> = asked
        .targets
        .iter()
        .filter(|t| ours.contains(t))
        .cloned()
        .collect();
    let mut series = if known.is_empty() {
        Vec::new()
    } else {
        let q = HistoryQuery::new(known, asked.since, asked.until, STEP_SECONDS as i64)
            .map_err(|e| e.to_string())?;
        history.query(&q)
    };
    let round = |v: Option<f64>| v.map(|v| (v * 1e6).round() / 1e6);
    let targets = asked
        .targets
        .iter()
        .map(|name| {
            let Some(i) = series.iter().position(|s| &s.target == name) else {
                return TargetObservations {
                    target: name.clone(),
                    known: ours.contains(name),
                    minutes: Vec::new(),
                };
            };
            let s = series.swap_remove(i);
            TargetObservations {
                target: name.clone(),
                known: true,
                minutes: s
                    .points
                    .iter()
                    .filter(|p| p.summary.probes > 0)
                    .map(|p| MinuteObservation {
                        t: p.start,
                        probes: u64::from(p.summary.probes),
                        failures: u64::from(p.summary.failures),
                        rtt_p50_seconds: round(p.rtt(0.5)),
                        rtt_p95_seconds: round(p.rtt(0.95)),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Observations {
        site: site.to_owned(),
        since: asked.since,
        until: asked.until,
        step_seconds: STEP_SECONDS,
        targets,
    })
}

/// Every `witness` line of the journal: (the line's time, the record).
fn witness_lines(data_dir: &std::path::Path) -> std::io::Result<Vec<(Timestamp, WitnessReceived)>> {
    let contents = crate::journal::read(data_dir)?;
    Ok(contents
        .lines
        .into_iter()
        .filter_map(|l| match l.line.entry {
            Entry::Witness(w) => Some((l.line.ts, w)),
            _ => None,
        })
        .collect())
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json", body),
        Err(e) => {
            tracing::error!(error = %e, "failed to serialize a peer answer");
            response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                b"serialization failed\n".to_vec(),
            )
        }
    }
}

fn error(status: StatusCode, why: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": why }))
}

fn too_large() -> Response<Body> {
    let why = format!("the body is larger than {MAX_REQUEST_BODY} bytes");
    error(StatusCode::PAYLOAD_TOO_LARGE, &why)
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
