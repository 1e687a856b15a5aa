//! Throughput test: the goodput a user gets from `streams` parallel HTTP/1.1
//! connections to one URL, downloading (GET) or uploading (POST of generated
//! bytes), until `max_bytes` (all streams together) or `max_duration` is reached.
//!
//! The figure is body bytes over the transfer phase, from the first byte of
//! any stream to the last byte of any stream, or to the end of the
//! `max_duration` window when that cut the download (silence at the end of the
//! window is part of what the link delivered). A download leaves out its ramp:
//! bytes are also counted by arrival time in short slots, and the leading
//! intervals whose rate is still below 90 % of the test's median interval
//! (TCP slow start, a first flight lost to a shallow queue) are dropped, at
//! most half of the transfer; the figure is the bytes over the time of the
//! rest, dips included (see [`stable_phase`]). Bytes are counted as they come
//! off the wire: `Accept-Encoding: identity` is sent and a compressed body is
//! never decoded, so a gzip bomb costs at most `max_bytes`. Each body frame is
//! counted and dropped (no growing buffer); one shared atomic counter caps all
//! streams together.
//!
//! Uploads count the body bytes handed to the connection, and end the transfer
//! phase when the server's response arrives: a server answers after reading the
//! whole body, so every counted byte was read by it within the measured time.
//! `TCP_NOTSENT_LOWAT` keeps the socket's unsent backlog small, so the drain
//! after the last byte is about one round trip instead of a full send buffer.
//!
//! `timeout` bounds name resolution, connection set-up and the time to first
//! byte (one deadline from the start of the test); after that, any stream that
//! makes no progress for `timeout` ends the test as a stall, with its partial
//! figure. A download whose object ends (a closed connection, or a declared
//! `Content-Length`) before `min_bytes` is `short_body`, never a fast link, and
//! so is any test that moved fewer than `min_bytes` in all, whatever ended it
//! (a server trickling a few bytes until `max_duration` is not a measurement).
//!
//! `control_url` (issue 21, `throttled_name`): when a good test is slow —
//! below its group's `throughput_below` in its direction, or any good test
//! when the group sets none — one test of the control URL follows at once,
//! with the same settings ([`ThroughputProber::run_checked`]). It is counted
//! as the extra connection `throughput_control`, and its bytes are part of
//! the test's `bytes` (what the test spent of the daily budget, which the
//! scheduler sizes for both). When the target's rate is below
//! `throttled_below` × the control's, the observation carries
//! [`Evidence`] `throttled_name`; a failed control says nothing. The
//! test itself stays a success either way: a throttled name is slow, not down.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::http::{
    Endpoint, apply_headers, classify_hyper, default_headers, drive, request_target,
};
use super::loaded::{self, LoadedLatency};
use super::net::resolve;
use super::net::stream::{self, Stream, Timed};
use super::net::tls::{self, TlsConfigs, TlsSetupError};
use super::seam::{self, Completion, Probe};
use super::{Info, Observation, Outcome, Phase, Phases, Reason};
use crate::config::{Config, TargetSpec};
pub use crate::config::{Direction, ThroughputSpec};
use crate::interference::{Check, Evidence, Extra};

/// Most parallel connections a test may open.
pub const MAX_STREAMS: usize = ThroughputSpec::MAX_STREAMS;

/// Upload body chunk: one static, incompressible buffer, sliced without copying.
const CHUNK: usize = 64 * 1024;
static PATTERN: [u8; CHUNK] = pattern();
/// Unsent bytes the kernel may hold per upload socket (`TCP_NOTSENT_LOWAT`).
const UPLOAD_NOTSENT_LOWAT: u32 = 128 * 1024;
/// hyper's buffer limit on upload connections (bounds the client-side backlog).
const UPLOAD_MAX_BUF: usize = 128 * 1024;
/// Shortest arrival-time slot of a download, and most slots per test.
const MIN_SLOT: Duration = Duration::from_millis(10);
const MAX_SLOTS: u32 = 500;
/// The stable-phase estimate looks at the transfer in about this many
/// intervals, and trims nothing with fewer than `MIN_INTERVALS`.
const INTERVALS: usize = 20;
const MIN_INTERVALS: usize = 5;
/// A leading interval below this share of the median interval is ramp.
const RAMP_SHARE: f64 = 0.9;

/// xorshift bytes: a body no link compresses.
const fn pattern() -> [u8; CHUNK] {
    let mut out = [0u8; CHUNK];
    let mut x: u32 = 0x9e37_79b9;
    let mut i = 0;
    while i < CHUNK {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = x as u8;
        i += 1;
    }
    out
}

/// What ended a test that measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    MaxBytes,
    MaxDuration,
    /// Every stream's object ended (downloads), or the server answered (uploads).
    EndOfObject,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxBytes => "max_bytes",
            Self::MaxDuration => "max_duration",
            Self::EndOfObject => "end_of_object",
        }
    }
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputResult {
    pub direction: Direction,
    /// Success (a good test), `Timeout` (set-up or first byte), or an error:
    /// `short_body`, `stall`, or the connect/TLS/HTTP reasons of the http kind.
    pub outcome: Outcome,
    /// Goodput over the transfer phase; on an error, the partial figure (see `partial`).
    pub bits_per_second: Option<f64>,
    /// Body bytes counted, all streams (at most `max_bytes`).
    pub bytes: u64,
    /// First byte to last byte, all streams together.
    pub transfer: Duration,
    /// The leading part of a download's transfer left out of the figure as
    /// ramp (zero for uploads and for a transfer that was stable from the start).
    pub ramp: Duration,
    /// Download: request sent → first response byte, of the first stream to
    /// answer. Upload: `None` (the response follows the whole body).
    pub time_to_first_byte: Option<Duration>,
    /// Streams opened.
    pub streams: usize,
    /// Streams that ended without an error (object end or a cap).
    pub streams_finished: usize,
    /// Set on a good test.
    pub ended_by: Option<EndedBy>,
    /// The figures are from a failed test (a stall, a reset): never a good test.
    pub partial: bool,
    pub peer: Option<IpAddr>,
    /// HTTP status of the first stream that got a response.
    pub status: Option<u16>,
    /// HTTPS: earliest `notAfter` in the peer's chain, Unix seconds.
    pub cert_not_after: Option<i64>,
    /// Latency under load (see [`super::loaded`]); `None` when the test
    /// never reached its transfer phase.
    pub loaded: Option<LoadedLatency>,
}

impl ThroughputResult {
    fn empty(spec: &ThroughputSpec, streams: usize) -> Self {
        Self {
            direction: spec.direction,
            outcome: Outcome::Timeout { phase: None },
            bits_per_second: None,
            bytes: 0,
            transfer: Duration::ZERO,
            ramp: Duration::ZERO,
            time_to_first_byte: None,
            streams,
            streams_finished: 0,
            ended_by: None,
            partial: false,
            peer: None,
            status: None,
            cert_not_after: None,
            loaded: None,
        }
    }

    /// The result in the shape every probe reports: the outcome, the peer,
    /// status and certificate, and the test's figures in
    /// [`Info::throughput`] (on failures too: a partial figure is labelled).
    pub fn observation(&self) -> Observation {
        Observation::with_info(
            self.outcome.clone(),
            Info {
                peer: self.peer,
                status: self.status,
                body_bytes: Some(self.bytes),
                cert_not_after: self.cert_not_after,
                throughput: Some(Box::new(ThroughputInfo {
                    direction: self.direction,
                    bits_per_second: self.bits_per_second,
                    bytes: self.bytes,
                    transfer_seconds: self.transfer.as_secs_f64(),
                    time_to_first_byte_seconds: self.time_to_first_byte.map(|d| d.as_secs_f64()),
                    streams: self.streams,
                    streams_finished: self.streams_finished,
                    ended_by: self.ended_by,
                    partial: self.partial,
                    loaded: self.loaded.clone(),
                })),
                ..Info::default()
            },
        )
    }
}

/// A throughput test's figures, next to its outcome in [`Info`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputInfo {
    pub direction: Direction,
    /// Goodput over the transfer phase; on a failed test the partial figure
    /// (`partial`), never a good test.
    pub bits_per_second: Option<f64>,
    /// Body bytes moved, all streams: what the test spent of the budget.
    pub bytes: u64,
    pub transfer_seconds: f64,
    pub time_to_first_byte_seconds: Option<f64>,
    pub streams: usize,
    pub streams_finished: usize,
    pub ended_by: Option<EndedBy>,
    pub partial: bool,
    /// Latency under load, when the test got to its transfer phase.
    pub loaded: Option<LoadedLatency>,
}

/// Runs throughput tests with TLS configs built once at start.
pub struct ThroughputProber {
    tls: TlsConfigs,
}

/// The seam's entry point: one test in a task of its own. The request's
/// deadline is start + [`ThroughputSpec::worst_case`]
/// ([`crate::config::Target::max_probe_time`]), which the test keeps by itself.
impl Probe for ThroughputProber {
    fn start(self: &Arc<Self>, req: seam::Request, done: Completion) {
        let me = self.clone();
        seam::spawn(req.deadline(), done, async move {
            match req.spec::<ThroughputSpec>() {
                Ok(spec) => {
                    let slow_below = slow_below(req.config(), req.target(), spec.direction);
                    me.run_checked(spec, slow_below).await
                }
                Err(o) => Observation::new(o),
            }
        });
    }
}

/// The rate below which a test of `target` is slow: its group's
/// `throughput_below` in that direction (`None`: the group judges none).
fn slow_below(
    config: &Config,
    target: &crate::config::Target,
    direction: Direction,
) -> Option<f64> {
    let floor = config.group(&target.group)?.degraded.throughput_below?;
    match direction {
        Direction::Download => floor.bps,
        Direction::Upload => floor.upload_bps,
    }
}

/// A good test's figure, or `None`.
fn good_bps(r: &ThroughputResult) -> Option<f64> {
    r.bits_per_second
        .filter(|b| r.outcome.is_success() && !r.partial && b.is_finite())
}

/// The URL's host, for the evidence's name.
fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_string()
}

impl ThroughputProber {
    /// Runs one test of `spec` and, when it has a `control_url` and the test
    /// was good but slow (below `slow_below`, or any when `None`), one test
    /// of the control right after; see the module's notes.
    pub async fn run_checked(&self, spec: &ThroughputSpec, slow_below: Option<f64>) -> Observation {
        let result = self.run(spec).await;
        let mut observation = result.observation();
        let Some(control_url) = &spec.control_url else {
            return observation;
        };
        let Some(bps) = good_bps(&result) else {
            return observation;
        };
        if slow_below.is_some_and(|floor| bps >= floor) {
            return observation;
        }
        let mut control_spec = spec.clone();
        control_spec.url = control_url.clone();
        control_spec.control_url = None;
        let control = self.run(&control_spec).await;
        observation.info.extra = Some(Extra::ThroughputControl);
        if let Some(tp) = &mut observation.info.throughput {
            tp.bytes = tp.bytes.saturating_add(control.bytes);
        }
        let name = host_of(&spec.url);
        let control_bps = good_bps(&control);
        let verdict = throttled(bps, control_bps, spec.throttled_below);
        tracing::debug!(
            url = %spec.url,
            control_url = %control_url,
            bits_per_second = bps,
            control_bits_per_second = control_bps,
            control_result = control.outcome.result_label(),
            throttled = verdict,
            "throughput control test done"
        );
        if verdict && let Some(c) = control_bps {
            let pct = |x: f64| format!("{:.0}%", x * 100.0);
            let detail = format!(
                "a test of {url} moved {a} while a control test of {control_url} right after \
                 moved {b} ({ratio} of the control's rate; throttled below {th})",
                url = spec.url,
                a = crate::config::format_rate(bps),
                b = crate::config::format_rate(c),
                ratio = pct(bps / c),
                th = pct(spec.throttled_below),
            );
            observation.info.evidence = Some(Box::new(
                Evidence::new(Check::ThrottledName, name, detail).with_raw(vec![
                    format!("{}: {:.0} bit/s", spec.url, bps),
                    format!("{control_url}: {c:.0} bit/s"),
                ]),
            ));
        }
        observation
    }
}

/// The throughput prober could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("failed to set up TLS for target {target}")]
pub struct ThroughputSetupError {
    target: String,
    #[source]
    source: TlsSetupError,
}

impl ThroughputProber {
    /// The prober for a configuration's throughput targets. Warns (once,
    /// here) about targets without certificate verification and about
    /// intervals short enough to spend real data.
    pub fn for_config(config: &Config) -> Result<Self, ThroughputSetupError> {
        let mut tls = TlsConfigs::new(&[tls::ALPN_HTTP1]);
        for target in &config.targets {
            let TargetSpec::Throughput(spec) = &target.spec else {
                continue;
            };
            tls.prepare(spec.ca_file.as_deref(), spec.tls_verify)
                .map_err(|source| ThroughputSetupError {
                    target: target.name.clone(),
                    source,
                })?;
            if !spec.tls_verify {
                tracing::warn!(
                    target_name = %target.name,
                    url = %spec.url,
                    "TLS certificate verification is disabled for this target (tls_verify = false)"
                );
            }
        }
        for warning in config.warnings() {
            tracing::warn!(%warning, "configuration warning");
        }
        Ok(Self { tls })
    }

    /// Builds one TLS config per distinct `(ca_file, tls_verify)` among `specs`.
    pub fn new<'a>(
        specs: impl IntoIterator<Item = &'a ThroughputSpec>,
    ) -> Result<Self, TlsSetupError> {
        let mut tls = TlsConfigs::new(&[tls::ALPN_HTTP1]);
        for spec in specs {
            tls.prepare(spec.ca_file.as_deref(), spec.tls_verify)?;
        }
        Ok(Self { tls })
    }

    /// Runs one test. Returns within [`ThroughputSpec::one_test`] (plus a second).
    pub async fn run(&self, spec: &ThroughputSpec) -> ThroughputResult {
        let streams = spec.streams.clamp(1, MAX_STREAMS);
        let mut result = ThroughputResult::empty(spec, streams);
        let t0 = Instant::now();
        let hard_stop = t0 + spec.one_test() + Duration::from_secs(1);
        if tokio::time::timeout_at(hard_stop, self.run_inner(spec, streams, t0, &mut result))
            .await
            .is_err()
        {
            result.outcome = Outcome::Timeout {
                phase: Some(Phase::Transfer),
            };
            result.partial = result.bytes > 0;
        }
        tracing::debug!(
            url = %spec.url,
            direction = spec.direction.as_str(),
            result = result.outcome.result_label(),
            bits_per_second = result.bits_per_second,
            bytes = result.bytes,
            transfer_seconds = result.transfer.as_secs_f64(),
            ramp_seconds = result.ramp.as_secs_f64(),
            streams_finished = result.streams_finished,
            partial = result.partial,
            loaded_rtt_p50_seconds = result.loaded.as_ref().and_then(|l| l.loaded_rtt_p50_seconds),
            latency_increase_seconds = result.loaded.as_ref().and_then(|l| l.latency_increase_seconds),
            grade = result.loaded.as_ref().map(|l| l.grade_text()),
            "throughput test done"
        );
        result
    }

    async fn run_inner(
        &self,
        spec: &ThroughputSpec,
        streams: usize,
        t0: Instant,
        result: &mut ThroughputResult,
    ) {
        let (ctx, resolve_time) = match self.prepare(spec, t0).await {
            Ok(s) => s,
            Err(outcome) => {
                result.outcome = outcome;
                return;
            }
        };
        result.peer = Some(ctx.addr.ip());

        let mut set = JoinSet::new();
        for _ in 0..streams {
            set.spawn(run_stream(Arc::clone(&ctx)));
        }
        let stop = CancellationToken::new();
        let load = async {
            let out = self.join_streams(&ctx, &mut set, streams).await;
            stop.cancel();
            out
        };
        let sampler = loaded::sample(
            ctx.addr,
            ctx.direction,
            &ctx.counter,
            &ctx.shared,
            stop.clone(),
        );
        let ((reports, first_error), raw) = tokio::join!(load, sampler);
        if ctx.started.get().is_some() {
            // The idle baseline: the load connections' own handshakes, made
            // before any load (extra connects just before the test cost a
            // slow link's first seconds: -13 % at 2 Mbit/s down).
            let mut connects: Vec<Duration> = reports
                .iter()
                .filter_map(|r| r.phases.get(Phase::Connect))
                .collect();
            connects.sort_unstable();
            let idle = connects.get(connects.len() / 2).copied();
            result.loaded = Some(loaded::summarise(
                idle,
                connects.len(),
                raw,
                loaded::congestion_of(&ctx.shared),
            ));
        }
        aggregate(&ctx, resolve_time, &reports, first_error, result);
    }

    /// Waits for every stream; the first error cancels the others.
    async fn join_streams(
        &self,
        ctx: &Arc<Ctx>,
        set: &mut JoinSet<StreamReport>,
        streams: usize,
    ) -> (Vec<StreamReport>, Option<Outcome>) {
        let mut reports = Vec::with_capacity(streams);
        let mut first_error: Option<Outcome> = None;
        while let Some(joined) = set.join_next().await {
            let report = joined.unwrap_or_else(|e| StreamReport {
                end: Err(Outcome::error(
                    Reason::Io,
                    format!("a stream of the test of {} failed: {e}", ctx.url),
                )),
                ..StreamReport::default()
            });
            if let Err(outcome) = &report.end {
                first_error.get_or_insert_with(|| outcome.clone());
                ctx.abort.cancel();
            }
            reports.push(report);
        }
        (reports, first_error)
    }

    /// Checks the URL, builds the request head and resolves the host (bounded by `timeout`).
    async fn prepare(
        &self,
        spec: &ThroughputSpec,
        t0: Instant,
    ) -> Result<(Arc<Ctx>, Duration), Outcome> {
        let url = &spec.url;
        let end = Endpoint::of(url, "test")?;
        let headers = build_headers(spec)?;
        let tls = if end.https {
            let config = self
                .tls
                .for_probe(spec.ca_file.as_deref(), spec.tls_verify)?;
            Some((Arc::clone(config), tls::server_name(&end.host_text)?))
        } else {
            None
        };
        let (ip, resolve_time) =
            resolve::resolve_by(&end.host, spec.ip_version, t0 + spec.timeout).await?;
        let addr = SocketAddr::new(ip, end.port);
        let ctx = Ctx {
            url: url.clone(),
            target: request_target(url),
            headers,
            direction: spec.direction,
            addr,
            tls,
            t0,
            timeout: spec.timeout,
            max_duration: spec.max_duration,
            max_bytes: spec.max_bytes.max(1),
            min_bytes: spec.min_bytes,
            counter: AtomicU64::new(0),
            samples: Samples::new(spec.max_duration),
            started: OnceLock::new(),
            abort: CancellationToken::new(),
            shared: loaded::Shared::default(),
            congestion: spec.congestion.clone(),
        };
        Ok((Arc::new(ctx), resolve_time))
    }
}

/// What all streams of one test share.
struct Ctx {
    url: Url,
    /// Request target (path and query).
    target: String,
    headers: HeaderMap,
    direction: Direction,
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    t0: Instant,
    timeout: Duration,
    max_duration: Duration,
    max_bytes: u64,
    min_bytes: u64,
    /// Body bytes claimed by all streams (may pass `max_bytes` by the last frames).
    counter: AtomicU64,
    /// Download bytes by arrival time, for the stable-phase figure.
    samples: Samples,
    /// Start of the transfer phase: the first byte of any stream.
    started: OnceLock<Instant>,
    /// Cancelled when a stream failed (or a download reached `max_bytes`).
    abort: CancellationToken,
    /// The load connections, for `TCP_INFO` samples.
    shared: loaded::Shared,
    /// `TCP_CONGESTION` to set on every load connection.
    congestion: Option<String>,
}

impl Ctx {
    fn capped(&self) -> bool {
        self.counter.load(Ordering::Relaxed) >= self.max_bytes
    }

    fn stall(&self, bytes: u64) -> Outcome {
        Outcome::error(
            Reason::Stall,
            format!(
                "the transfer from {} made no progress for {:?} after {bytes} bytes on this stream (partial figure)",
                self.url, self.timeout
            ),
        )
    }
}

/// How one stream ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    EndOfObject,
    MaxBytes,
    MaxDuration,
    /// Another stream failed.
    Stopped,
}

/// One stream's figures.
struct StreamReport {
    end: Result<StreamEnd, Outcome>,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    ttfb: Option<Duration>,
    phases: Phases,
    status: Option<u16>,
    cert_not_after: Option<i64>,
}

impl Default for StreamReport {
    fn default() -> Self {
        Self {
            end: Ok(StreamEnd::Stopped),
            bytes: 0,
            first: None,
            last: None,
            ttfb: None,
            phases: Phases::default(),
            status: None,
            cert_not_after: None,
        }
    }
}

async fn run_stream(ctx: Arc<Ctx>) -> StreamReport {
    let mut report = StreamReport::default();
    let end = tokio::select! {
        end = stream_inner(&ctx, &mut report) => end,
        _ = ctx.abort.cancelled() => Ok(if ctx.direction == Direction::Download && ctx.capped() {
            StreamEnd::MaxBytes
        } else {
            StreamEnd::Stopped
        }),
    };
    report.end = end;
    report
}

async fn stream_inner(ctx: &Arc<Ctx>, report: &mut StreamReport) -> Result<StreamEnd, Outcome> {
    let setup_deadline = ctx.t0 + ctx.timeout;
    let tls = ctx.tls.as_ref().map(|(c, n)| (c, n.clone()));
    let (stream, opened) = stream::open(ctx.addr, tls, setup_deadline, &mut report.phases).await?;
    report.cert_not_after = opened.cert_not_after;
    let tcp = match &stream {
        Stream::Plain(s) => s,
        Stream::Tls(s) => s.get_ref().0,
    };
    if let Some(cc) = &ctx.congestion {
        loaded::set_congestion(tcp, cc).map_err(|e| Outcome::error(Reason::Io, e))?;
    }
    let _registered = ctx.shared.add(tcp);
    match ctx.direction {
        Direction::Download => download(ctx, report, stream, setup_deadline).await,
        Direction::Upload => upload(ctx, report, stream).await,
    }
}

fn request(ctx: &Ctx, body: GenBody) -> Result<http::Request<GenBody>, Outcome> {
    let method = match ctx.direction {
        Direction::Download => Method::GET,
        Direction::Upload => Method::POST,
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(ctx.target.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = ctx.headers.clone();
    }
    builder.body(body).map_err(|e| {
        Outcome::error(
            Reason::Io,
            format!("failed to build the request for {}: {e}", ctx.url),
        )
    })
}

async fn download(
    ctx: &Ctx,
    report: &mut StreamReport,
    stream: Stream,
    setup_deadline: Instant,
) -> Result<StreamEnd, Outcome> {
    let (timed, first_byte) = Timed::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(timed))
        .await
        .map_err(|e| classify_hyper(&e, &ctx.url))?;
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;
    let sent = Instant::now();
    let req = request(ctx, GenBody::empty())?;
    let response = match tokio::time::timeout_at(
        setup_deadline,
        drive(conn.as_mut(), &mut conn_done, sender.send_request(req)),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(classify_hyper(&e, &ctx.url)),
        Err(_) => {
            return Err(Outcome::Timeout {
                phase: Some(Phase::FirstByte),
            });
        }
    };
    let first = first_byte.get().copied().unwrap_or_else(Instant::now);
    let ttfb = first.saturating_duration_since(sent);
    report.phases.set(Phase::FirstByte, ttfb);
    report.ttfb = Some(ttfb);
    let status = response.status();
    report.status = Some(status.as_u16());
    check_status(ctx, status)?;
    check_declared_length(ctx, response.headers())?;
    let start = *ctx.started.get_or_init(|| first);
    report.first = Some(first);
    let end_at = start + ctx.max_duration;
    let mut last = first;
    let mut body = response.into_body();
    loop {
        let wake = (last + ctx.timeout).min(end_at);
        let frame = match tokio::time::timeout_at(
            wake,
            drive(
                conn.as_mut(),
                &mut conn_done,
                http_body_util::BodyExt::frame(&mut body),
            ),
        )
        .await
        {
            Err(_) if wake == end_at => {
                // The measurement window closed: the transfer ran until now,
                // even if the last byte came earlier (a burst, then nothing,
                // for less than `timeout`, must not read as a fast link).
                report.last = Some(end_at);
                return Ok(StreamEnd::MaxDuration);
            }
            Err(_) => return Err(ctx.stall(report.bytes)),
            Ok(None) => {
                if report.bytes < ctx.min_bytes {
                    return Err(short_body(ctx, report.bytes, "the object ended"));
                }
                return Ok(StreamEnd::EndOfObject);
            }
            Ok(Some(Err(e))) => return Err(body_error(ctx, report.bytes, &e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        let now = Instant::now();
        let n = data.len() as u64;
        let before = ctx.counter.fetch_add(n, Ordering::Relaxed);
        let take = n.min(ctx.max_bytes.saturating_sub(before));
        if take > 0 {
            report.bytes += take;
            report.last = Some(now);
            last = now;
            ctx.samples.add(start, now, take);
        }
        if before + n >= ctx.max_bytes {
            // Enough for the test: the other streams stop too, and the rest
            // of every object is left unread (the connections are dropped).
            ctx.abort.cancel();
            return Ok(StreamEnd::MaxBytes);
        }
    }
}

/// Refuses a response whose Content-Length is below `min_bytes`.
fn check_declared_length(ctx: &Ctx, headers: &HeaderMap) -> Result<(), Outcome> {
    if let Some(len) = content_length(headers)
        && len < ctx.min_bytes
    {
        return Err(Outcome::error(
            Reason::ShortBody,
            format!(
                "{} declares a body of {len} bytes (Content-Length), less than min_bytes ({})",
                ctx.url, ctx.min_bytes
            ),
        ));
    }
    Ok(())
}

/// The outcome of a body read that failed after `bytes` bytes: a reset
/// before `min_bytes` is a short body.
fn body_error(ctx: &Ctx, bytes: u64, e: &hyper::Error) -> Outcome {
    let outcome = classify_hyper(e, &ctx.url);
    if let Outcome::Error(err) = &outcome
        && err.reason == Reason::ConnectionReset
        && bytes < ctx.min_bytes
    {
        return short_body(
            ctx,
            bytes,
            &format!("the connection ended ({})", err.detail),
        );
    }
    outcome
}

fn short_body(ctx: &Ctx, bytes: u64, how: &str) -> Outcome {
    Outcome::error(
        Reason::ShortBody,
        format!(
            "{how} after {bytes} bytes of {}, less than min_bytes ({})",
            ctx.url, ctx.min_bytes
        ),
    )
}

fn check_status(ctx: &Ctx, status: StatusCode) -> Result<(), Outcome> {
    if status.is_success() {
        return Ok(());
    }
    Err(Outcome::error(
        Reason::StatusMismatch,
        format!(
            "{} answered HTTP {}, expected 2xx (redirects are not followed by throughput tests)",
            ctx.url,
            status.as_u16()
        ),
    ))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn upload(
    ctx: &Arc<Ctx>,
    report: &mut StreamReport,
    stream: Stream,
) -> Result<StreamEnd, Outcome> {
    let tcp = match &stream {
        Stream::Plain(s) => s,
        Stream::Tls(s) => s.get_ref().0,
    };
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(UPLOAD_NOTSENT_LOWAT) {
        tracing::debug!(url = %ctx.url, error = %e, "failed to set TCP_NOTSENT_LOWAT on an upload connection");
    }
    let state = Arc::new(UploadState::default());
    let io = Progress {
        inner: stream,
        state: Arc::clone(&state),
        t0: ctx.t0,
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(UPLOAD_MAX_BUF)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| classify_hyper(&e, &ctx.url))?;
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;
    let req = request(ctx, GenBody::upload(ctx, Arc::clone(&state)))?;
    let exchange = drive(conn.as_mut(), &mut conn_done, sender.send_request(req));
    let mut exchange = std::pin::pin!(exchange);
    let outcome = loop {
        let progress = state.progress(ctx.t0);
        match tokio::time::timeout_at(progress + ctx.timeout, exchange.as_mut()).await {
            Ok(outcome) => break outcome,
            Err(_) if state.progress(ctx.t0) > progress => continue,
            Err(_) => {
                record_upload(report, &state, None);
                return Err(if report.bytes == 0 {
                    Outcome::Timeout {
                        phase: Some(Phase::FirstByte),
                    }
                } else {
                    ctx.stall(report.bytes)
                });
            }
        }
    };
    let answered = Instant::now();
    record_upload(report, &state, Some(answered));
    let response = outcome.map_err(|e| classify_hyper(&e, &ctx.url))?;
    report.status = Some(response.status().as_u16());
    check_status(ctx, response.status())?;
    let end = state.end.load(Ordering::Relaxed);
    if report.bytes == 0 {
        // The other streams had taken all of `max_bytes` before this one
        // sent a byte: nothing to measure here, and nothing wrong.
        if end == END_MAX_BYTES {
            return Ok(StreamEnd::Stopped);
        }
        return Err(ctx.stall(0));
    }
    Ok(match end {
        END_MAX_BYTES => StreamEnd::MaxBytes,
        END_MAX_DURATION => StreamEnd::MaxDuration,
        END_STOPPED => StreamEnd::Stopped,
        _ => StreamEnd::EndOfObject,
    })
}

/// Copies an upload's counters into its report; `answered` ends its transfer phase.
fn record_upload(report: &mut StreamReport, state: &UploadState, answered: Option<Instant>) {
    report.bytes = state.bytes.load(Ordering::Relaxed);
    if report.bytes == 0 {
        // A stream that sent no body byte has no place in the transfer phase.
        return;
    }
    report.first = state.first.get().copied();
    report.last = match answered {
        Some(at) if report.first.is_some() => Some(at),
        _ => state.last.get().copied().or(report.first),
    };
}

const END_NONE: u8 = 0;
const END_MAX_BYTES: u8 = 1;
const END_MAX_DURATION: u8 = 2;
const END_STOPPED: u8 = 3;

/// An upload stream's counters, shared by its body and its watchdog.
struct UploadState {
    /// Body bytes handed to the connection.
    bytes: AtomicU64,
    /// Nanoseconds after `t0` of the last write to the socket.
    progress_ns: AtomicU64,
    first: OnceLock<Instant>,
    /// When the body ended (the last body byte handed over).
    last: OnceLock<Instant>,
    end: AtomicU8,
}

impl Default for UploadState {
    fn default() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            progress_ns: AtomicU64::new(0),
            first: OnceLock::new(),
            last: OnceLock::new(),
            end: AtomicU8::new(END_NONE),
        }
    }
}

impl UploadState {
    fn progress(&self, t0: Instant) -> Instant {
        t0 + Duration::from_nanos(self.progress_ns.load(Ordering::Relaxed))
    }

    fn mark_progress(&self, t0: Instant) {
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.progress_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// The request body: nothing (downloads) or generated bytes until a cap (uploads).
struct GenBody {
    upload: Option<(Arc<Ctx>, Arc<UploadState>)>,
    done: bool,
}

impl GenBody {
    fn empty() -> Self {
        Self {
            upload: None,
            done: true,
        }
    }

    fn upload(ctx: &Arc<Ctx>, state: Arc<UploadState>) -> Self {
        Self {
            upload: Some((Arc::clone(ctx), state)),
            done: false,
        }
    }
}

impl Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some((ctx, state)) = &this.upload else {
            return Poll::Ready(None);
        };
        if this.done {
            return Poll::Ready(None);
        }
        // hyper asks for the next frame only when its buffer has room: the
        // body runs at the connection's pace and never returns Pending.
        let now = Instant::now();
        let start = *ctx.started.get_or_init(|| now);
        let _ = state.first.get_or_init(|| now);
        let end = if ctx.abort.is_cancelled() {
            END_STOPPED
        } else if now >= start + ctx.max_duration {
            END_MAX_DURATION
        } else {
            let before = ctx.counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
            let take = ctx.max_bytes.saturating_sub(before).min(CHUNK as u64);
            if take > 0 {
                state.bytes.fetch_add(take, Ordering::Relaxed);
                // `take` is at most CHUNK, a usize.
                let take = usize::try_from(take).unwrap_or(CHUNK);
                return Poll::Ready(Some(Ok(Frame::data(
                    Bytes::from_static(&PATTERN).slice(..take),
                ))));
            }
            END_MAX_BYTES
        };
        this.done = true;
        state.end.store(end, Ordering::Relaxed);
        let _ = state.last.get_or_init(|| now);
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// An upload connection's stream, recording each write to the socket as progress.
struct Progress {
    inner: Stream,
    state: Arc<UploadState>,
    t0: Instant,
}

impl AsyncRead for Progress {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Progress {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.state.mark_progress(this.t0);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // `Stream` does not forward vectored writes; without them hyper would
        // copy every body chunk into its own buffer.
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.state.mark_progress(this.t0);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Sums the streams into the test's result.
fn aggregate(
    ctx: &Ctx,
    resolve_time: Duration,
    reports: &[StreamReport],
    first_error: Option<Outcome>,
    result: &mut ThroughputResult,
) {
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let first = reports.iter().filter_map(|r| r.first).min();
    let last = reports.iter().filter_map(|r| r.last).max();
    let transfer = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    result.bytes = bytes;
    result.transfer = transfer;
    // Downloads count bytes as they arrive, so their ramp can be told from
    // the rest. Uploads count bytes handed to the socket: the first slots hold
    // a burst into the send buffers, not the link's pace, so an upload keeps
    // the whole transfer (which ends when the server has read every byte).
    let (counted, measured) = match (ctx.direction, ctx.started.get(), last) {
        (Direction::Download, Some(&origin), Some(l)) => {
            let window = l.saturating_duration_since(origin);
            let stable = stable_phase(&ctx.samples.snapshot(), ctx.samples.slot, window);
            result.ramp = stable.ramp;
            (
                bytes.saturating_sub(stable.dropped),
                transfer.saturating_sub(stable.ramp),
            )
        }
        _ => (bytes, transfer),
    };
    result.bits_per_second =
        (counted > 0 && !measured.is_zero()).then(|| counted as f64 * 8.0 / measured.as_secs_f64());
    result.time_to_first_byte = reports.iter().filter_map(|r| r.ttfb).min();
    result.status = reports.iter().find_map(|r| r.status);
    result.cert_not_after = reports.iter().filter_map(|r| r.cert_not_after).min();
    result.streams_finished = reports
        .iter()
        .filter(|r| matches!(r.end, Ok(e) if e != StreamEnd::Stopped))
        .count();

    // Set-up phases of the slowest stream: the time until every stream ran.
    let mut phases = Phases::default();
    phases.set(Phase::Resolve, resolve_time);
    for phase in [Phase::Connect, Phase::Tls, Phase::FirstByte] {
        if let Some(worst) = reports.iter().filter_map(|r| r.phases.get(phase)).max() {
            phases.set(phase, worst);
        }
    }
    phases.set(Phase::Transfer, transfer);

    if let Some(error) = first_error {
        result.outcome = error;
        result.partial = bytes > 0;
        return;
    }
    let ends: Vec<StreamEnd> = reports
        .iter()
        .filter_map(|r| r.end.as_ref().ok().copied())
        .collect();
    let ended_by = if ends.contains(&StreamEnd::MaxBytes) {
        EndedBy::MaxBytes
    } else if ends.contains(&StreamEnd::MaxDuration) {
        EndedBy::MaxDuration
    } else {
        EndedBy::EndOfObject
    };
    if bytes == 0 {
        result.outcome = Outcome::error(
            Reason::Stall,
            format!(
                "no body byte from {} within max_duration ({:?})",
                ctx.url, ctx.max_duration
            ),
        );
        return;
    }
    if bytes < ctx.min_bytes {
        // Whatever ended it (max_duration on a trickle, a stream's object),
        // a test this small says nothing about the link's speed.
        result.outcome = Outcome::error(
            Reason::ShortBody,
            format!(
                "the test of {} moved {bytes} bytes before it ended ({}), less than min_bytes ({})",
                ctx.url,
                ended_by.as_str(),
                ctx.min_bytes
            ),
        );
        result.partial = true;
        return;
    }
    result.ended_by = Some(ended_by);
    result.outcome = Outcome::Success {
        duration: transfer,
        phases,
    };
}

/// Body bytes by arrival time: slot `i` holds the bytes that arrived in
/// `[i, i + 1) × slot` after the start of the transfer phase (the last slot
/// also holds anything later).
struct Samples {
    slot: Duration,
    bytes: Box<[AtomicU64]>,
}

impl Samples {
    fn new(max_duration: Duration) -> Self {
        let slot = (max_duration / MAX_SLOTS).max(MIN_SLOT);
        let n = max_duration.as_nanos() / slot.as_nanos() + 2;
        let n = usize::try_from(n).unwrap_or(MAX_SLOTS as usize + 2);
        Self {
            slot,
            bytes: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn add(&self, origin: Instant, at: Instant, n: u64) {
        let i = at.saturating_duration_since(origin).as_nanos() / self.slot.as_nanos();
        let last = self.bytes.len() - 1;
        let i = usize::try_from(i).map_or(last, |i| i.min(last));
        self.bytes[i].fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<u64> {
        self.bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// What [`stable_phase`] leaves out: the ramp's length and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stable {
    ramp: Duration,
    dropped: u64,
}

/// The ramp at the start of a transfer of `window` whose bytes arrived in
/// `slots`: the window is cut into about [`INTERVALS`] equal intervals, and
/// the leading ones whose bytes are below [`RAMP_SHARE`] of the median
/// interval's are the ramp, at most half of them. Only a prefix is ever left
/// out, and only intervals slower than the median: a later dip stays in the
/// figure, and a burst followed by silence (median zero) drops nothing.
fn stable_phase(slots: &[u64], slot: Duration, window: Duration) -> Stable {
    const NONE: Stable = Stable {
        ramp: Duration::ZERO,
        dropped: 0,
    };
    let full = usize::try_from(window.as_nanos() / slot.as_nanos().max(1))
        .unwrap_or(usize::MAX)
        .min(slots.len());
    let per = (full / INTERVALS).max(1);
    let count = full / per;
    if count < MIN_INTERVALS {
        return NONE;
    }
    let intervals: Vec<u64> = slots[..count * per]
        .chunks(per)
        .map(|c| c.iter().sum())
        .collect();
    let mut sorted = intervals.clone();
    sorted.sort_unstable();
    let threshold = sorted[count / 2] as f64 * RAMP_SHARE;
    let ramp = intervals
        .iter()
        .take(count / 2)
        .take_while(|&&b| (b as f64) < threshold)
        .count();
    Stable {
        // `ramp * per` is at most the slot count, a few hundred.
        ramp: slot * u32::try_from(ramp * per).unwrap_or(0),
        dropped: intervals[..ramp].iter().sum(),
    }
}

/// Our default headers, then the spec's (which replace defaults of the same name).
fn build_headers(spec: &ThroughputSpec) -> Result<HeaderMap, Outcome> {
    let mut headers = default_headers(&spec.url)?;
    // Bytes on the wire are the figure: nothing is compressed or decoded.
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if spec.direction == Direction::Upload {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    apply_headers(&mut headers, &spec.headers);
    Ok(headers)
}

/// Whether a test at `bps` is throttled against a good control at
/// `control`: below `share` of the control's rate. No good control: no.
pub fn throttled(bps: f64, control: Option<f64>, share: f64) -> bool {
    control.is_some_and(|c| c > 0.0 && bps < share * c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_not_constant() {
        let distinct = PATTERN
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert!(distinct > 200, "{distinct} distinct byte values");
    }

    const MS10: Duration = Duration::from_millis(10);

    /// 300 slots of 10 ms (a 3 s download): `ramp` slots doubling up to
    /// `rate` bytes a slot, then `rate` a slot.
    fn slow_start(ramp: usize, rate: u64) -> Vec<u64> {
        (0..300)
            .map(|i| {
                if i < ramp {
                    rate >> (ramp - i).min(63)
                } else {
                    rate
                }
            })
            .collect()
    }

    #[test]
    fn stable_phase_drops_a_slow_start_ramp() {
        let slots = slow_start(60, 2500);
        let s = stable_phase(&slots, MS10, Duration::from_secs(3));
        // Intervals of 150 ms: the first (up to 600 ms) are below 90 % of the median.
        assert_eq!(s.ramp, Duration::from_millis(600), "{s:?}");
        let total: u64 = slots.iter().sum();
        let rest = (total - s.dropped) as f64 / 2.4;
        assert!((rest - 250_000.0).abs() < 1.0, "{rest}");
    }

    #[test]
    fn stable_phase_keeps_a_flat_transfer_and_later_dips_whole() {
        let flat = vec![2500u64; 300];
        assert_eq!(
            stable_phase(&flat, MS10, Duration::from_secs(3)).ramp,
            Duration::ZERO
        );
        // A dip in the middle (rebuffering, a loss) is part of the figure.
        let mut dip = flat.clone();
        dip[100..160].iter_mut().for_each(|b| *b = 0);
        assert_eq!(
            stable_phase(&dip, MS10, Duration::from_secs(3)).ramp,
            Duration::ZERO
        );
        // A burst, then silence until max_duration: the median interval is
        // empty, nothing is ramp, the whole window counts.
        let mut burst = vec![0u64; 300];
        burst[0] = 2_000_000;
        assert_eq!(
            stable_phase(&burst, MS10, Duration::from_secs(3)).dropped,
            0
        );
    }

    #[test]
    fn stable_phase_drops_at_most_half_and_nothing_from_short_transfers() {
        // Still ramping at the end: only the intervals below 90 % of the
        // median one (9 of 20) are left out, never more than half.
        let ramping: Vec<u64> = (0..300).map(|i| i as u64 * 10).collect();
        let s = stable_phase(&ramping, MS10, Duration::from_secs(3));
        assert_eq!(s.ramp, Duration::from_millis(1350), "{s:?}");
        // 40 ms: four slots, too few to tell a ramp from noise.
        let short = [0, 0, 100, 100, 0];
        let s = stable_phase(&short, MS10, Duration::from_millis(40));
        assert_eq!(s.dropped, 0);
        // A window longer than the slots (clamped, not a panic).
        let s = stable_phase(&[5, 5], MS10, Duration::from_secs(60));
        assert_eq!(s.dropped, 0);
    }

    #[test]
    fn samples_put_bytes_in_arrival_slots() {
        let samples = Samples::new(Duration::from_secs(1));
        assert_eq!(samples.slot, MS10);
        let t0 = Instant::now();
        samples.add(t0, t0 + Duration::from_millis(25), 7);
        samples.add(t0, t0 + Duration::from_secs(3600), 1);
        let s = samples.snapshot();
        assert_eq!(s[2], 7);
        assert_eq!(s[s.len() - 1], 1);
        // Long tests get wider slots, never more than MAX_SLOTS (+2).
        let long = Samples::new(Duration::from_secs(300));
        assert_eq!(long.slot, Duration::from_millis(600));
        assert!(long.bytes.len() <= MAX_SLOTS as usize + 2);
    }

    #[test]
    fn spec_headers_replace_defaults() {
        let mut spec = ThroughputSpec::new(
            Url::parse("http://example.test:8080/a?b=1").unwrap(),
            Direction::Upload,
        );
        spec.headers = vec![(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"))];
        let headers = build_headers(&spec).unwrap();
        assert_eq!(headers[header::HOST], "example.test:8080");
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
        assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    }
}
