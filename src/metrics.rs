//! The Prometheus exporter's probe and scheduler metrics.
//!
//! Every per-target label set is created at start, so each series exists (at 0)
//! before the first probe and a dashboard never shows "no data" for a target
//! that simply has not been probed yet.
//!
//! The per-target families (success, probes, duration histogram, phases,
//! errors, skipped slots) are plain atomics per target, written out by
//! [`Metrics::encode`] itself with each target's label set escaped once at
//! start: with thousands of targets, gathering them through the `prometheus`
//! crate rebuilt every label pair and bucket on every scrape and dominated
//! its cost. Recording a result is a few relaxed atomic operations. The
//! remaining families (scheduler, build info, HTTP/DNS details, outage and
//! process metrics) stay in an owned `prometheus` registry, encoded after.

use std::io::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::diff::carry_over;
use crate::config::{Config, Direction, Kind, Plan, Target};
use crate::probe::{Outcome, Phase, ProbeResult, RESULTS, Reason};

pub const PROBE_SUCCESS: &str = "linkwatch_probe_success";
pub const PROBES_TOTAL: &str = "linkwatch_probes_total";
pub const PROBE_DURATION_SECONDS: &str = "linkwatch_probe_duration_seconds";
pub const PROBE_PHASE_SECONDS: &str = "linkwatch_probe_phase_seconds";
pub const PROBE_ERRORS_TOTAL: &str = "linkwatch_probe_errors_total";
pub const BUILD_INFO: &str = "linkwatch_build_info";
pub const ICMP_SOCKET_MODE: &str = "linkwatch_icmp_socket_mode";
pub const TLS_CERT_EXPIRY: &str = "linkwatch_tls_cert_expiry_timestamp_seconds";
pub const HTTP_DOWNLOAD_BPS: &str = "linkwatch_http_download_bytes_per_second";
pub const HTTP_STATUS_CODE: &str = "linkwatch_http_status_code";
pub const DNS_ANSWERS: &str = "linkwatch_dns_answers";
pub const SCHEDULE_LATENESS_SECONDS: &str = "linkwatch_schedule_lateness_seconds";
pub const PROBES_SKIPPED_TOTAL: &str = "linkwatch_probes_skipped_total";
pub const PROBES_IN_FLIGHT: &str = "linkwatch_probes_in_flight";
pub const PROBE_CONCURRENCY_LIMIT: &str = "linkwatch_probe_concurrency_limit";
pub const TARGETS: &str = "linkwatch_targets";
pub const PROBES_QUEUED_TOTAL: &str = "linkwatch_probes_queued_total";
pub const INTERFERENCE_TOTAL: &str = "linkwatch_interference_total";
pub const INTERFERENCE_EXTRA_TOTAL: &str = "linkwatch_interference_extra_total";
/// Throughput figures are in bytes per second, Prometheus's base unit (they
/// were `_bits_per_second` until the rename; dashboards multiply by 8).
pub const THROUGHPUT_BPS: &str = "linkwatch_throughput_bytes_per_second";
pub const THROUGHPUT_TESTS_BPS: &str = "linkwatch_throughput_tests_bytes_per_second";
pub const THROUGHPUT_BYTES_TOTAL: &str = "linkwatch_throughput_bytes_total";
// Latency under load (issue 22): one contiguous block, see `LoadedMetrics`.
pub const THROUGHPUT_LOADED_RTT: &str = "linkwatch_throughput_loaded_rtt_seconds";
pub const THROUGHPUT_LATENCY_INCREASE: &str = "linkwatch_throughput_latency_increase_seconds";
pub const RESPONSIVENESS_RPM: &str = "linkwatch_responsiveness_rpm";
pub const PLAN_BPS: &str = "linkwatch_plan_bytes_per_second";
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "linkwatch_config_last_reload_successful";
pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP: &str =
    "linkwatch_config_last_reload_success_timestamp_seconds";
pub const CONFIG_RELOADS_TOTAL: &str = "linkwatch_config_reloads_total";
// Peers (issue 20): one contiguous block, see `PeerMetrics`.
pub const PEER_REQUESTS_TOTAL: &str = "linkwatch_peer_requests_total";
pub const PEER_UP: &str = "linkwatch_peer_up";
pub const PEER_LAST_SEEN: &str = "linkwatch_peer_last_seen_timestamp_seconds";
pub const PEER_CALLS_TOTAL: &str = "linkwatch_peer_calls_total";
/// The `endpoint` label of the peer families.
pub const PEER_ENDPOINTS: [&str; 3] = ["observations", "witness", "witnesses"];
/// The `result` label of `linkwatch_peer_requests_total` (calls we answered).
pub const PEER_REQUEST_RESULTS: [&str; 5] = [
    "ok",
    "unauthorized",
    "rate_limited",
    "bad_request",
    "too_large",
];
/// The `result` label of `linkwatch_peer_calls_total` (calls we made).
pub const PEER_CALL_RESULTS: [&str; 6] = [
    "ok",
    "unreachable",
    "timeout",
    "http_error",
    "bad_answer",
    "rejected",
];

/// Buckets for throughput tests in bytes per second: 100 kbit/s (a throttled
/// mobile link) to 10 Gbit/s, 1-2-5 per decade of bits (log-spaced, steps of
/// ×2-2.5, so a halving of the rate always moves a test by at least one bucket).
pub const THROUGHPUT_BUCKETS: &[f64] = &[
    1.25e4, 2.5e4, 6.25e4, 1.25e5, 2.5e5, 6.25e5, 1.25e6, 2.5e6, 6.25e6, 1.25e7, 2.5e7, 6.25e7,
    1.25e8, 2.5e8, 6.25e8, 1.25e9,
];

/// Why a scheduled probe was not sent: the `reason` label of
/// `linkwatch_probes_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The target's previous probe still ran, or the process fell behind.
    Behind,
    /// A throughput target's `max_bytes_per_day` is spent for today.
    Budget,
    /// Held while a path trace re-probes (see `probe::hold::ProbeHold`).
    Hold,
}

impl Skip {
    pub const ALL: [Skip; 3] = [Skip::Behind, Skip::Budget, Skip::Hold];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Behind => "behind",
            Skip::Budget => "budget",
            Skip::Hold => "hold",
        }
    }
}

/// Buckets for probe durations: 0.5 ms (a LAN ping) to 10 s (a crawling HTTPS
/// fetch over a congested international link), roughly ×2-2.5 per step so
/// quantiles stay within ~25 % anywhere in the range.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for schedule lateness: tokio's timers tick every millisecond, so a
/// healthy scheduler starts probes within 0-1.x ms; the finer steps around
/// that keep p50/p99 readable, and anything past 5 ms is the scaling limit
/// showing.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

const TARGET_LABELS: [&str; 3] = ["target", "group", "kind"];

/// Failures by reason: "timeout", then every [`Reason`] in [`Reason::ALL`] order.
const FAILURES: usize = 1 + Reason::COUNT;

/// Index of a failed outcome in a [`FAILURES`] table; `None` for a success.
fn failure_index(outcome: &Outcome) -> Option<usize> {
    match outcome {
        Outcome::Success { .. } => None,
        Outcome::Timeout { .. } => Some(0),
        Outcome::Error(e) => Some(1 + e.reason.index()),
    }
}

/// A float stored as its bits.
#[derive(Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }
}

/// One target's series.
struct TargetMetrics {
    /// `target="…",group="…",kind="…"`, escaped once.
    labels: String,
    /// The same values unescaped, for the registry-held HTTP/DNS families.
    values: [String; 3],
    kind: Kind,
    success: AtomicI64,
    /// By result, in [`RESULTS`] order.
    probes: [AtomicU64; RESULTS.len()],
    /// Non-cumulative counts per [`DURATION_BUCKETS`] bound, then +Inf.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum: AtomicF64,
    phases: [AtomicF64; Phase::COUNT],
    /// Failures by [`failure_index`].
    errors: [AtomicU64; FAILURES],
    /// By [`Skip`], in [`Skip::ALL`] order.
    skipped: [AtomicU64; Skip::ALL.len()],
}

/// All metrics of the probe pipeline.
pub struct Metrics {
    registry: Registry,
    /// By target index; replaced (kept targets moved) by a reload.
    targets: RwLock<Vec<TargetMetrics>>,
    targets_gauge: IntGaugeVec,
    reload: ReloadMetrics,
    icmp_mode: IntGaugeVec,
    cert_expiry: GaugeVec,
    download_bps: GaugeVec,
    http_status: IntGaugeVec,
    dns_answers: IntGaugeVec,
    throughput_bps: GaugeVec,
    throughput_tests: HistogramVec,
    throughput_bytes: IntCounterVec,
    /// `[plan]`, one series per direction it names.
    plan: GaugeVec,
    loaded: LoadedMetrics,
    /// The `[[peer]]` families.
    pub peer: PeerMetrics,
    /// Bytes of the last scrape, to size the next buffer.
    last_size: AtomicUsize,
    pub lateness: Histogram,
    pub in_flight: IntGauge,
    pub concurrency_limit: IntGauge,
    /// Probes that waited for a permit under `max_concurrency`.
    pub queued: IntCounter,
    /// Probes that carried evidence of interference, by target and check.
    interference: IntCounterVec,
    /// Extra connections the interference checks made, by target and kind.
    interference_extra: IntCounterVec,
}

/// Latency under load of the last throughput test, by target.
struct LoadedMetrics {
    rtt: GaugeVec,
    increase: GaugeVec,
    rpm: GaugeVec,
}

impl LoadedMetrics {
    fn drop_series(&self, target: &str) {
        for q in ["0.5", "0.9"] {
            let _ = self.rtt.remove_label_values(&[target, q]);
        }
        let _ = self.increase.remove_label_values(&[target]);
        let _ = self.rpm.remove_label_values(&[target]);
    }

    fn observe(&self, target: &str, l: &crate::probe::loaded::LoadedLatency) {
        for (q, v) in [
            ("0.5", l.loaded_rtt_p50_seconds),
            ("0.9", l.loaded_rtt_p90_seconds),
        ] {
            if let Some(v) = v {
                self.rtt.with_label_values(&[target, q]).set(v);
            }
        }
        if let Some(v) = l.latency_increase_seconds {
            self.increase.with_label_values(&[target]).set(v);
        }
        if let Some(v) = l.rpm {
            self.rpm.with_label_values(&[target]).set(v);
        }
    }
}

/// The peer families (issue 20). Every configured peer's series exist from
/// the start: requests at 0, `linkwatch_peer_up` at 0 until its first call.
pub struct PeerMetrics {
    /// `{peer, endpoint, result}`: calls we answered (peer "" when unauthorized).
    pub requests: IntCounterVec,
    /// `{peer}`: 1 while the peer called within 3 × witness_every.
    pub up: IntGaugeVec,
    /// `{peer}`: Unix time of its last authenticated call.
    pub last_seen: GaugeVec,
    /// `{peer, endpoint, result}`: calls we made to peers with a `url`.
    pub calls: IntCounterVec,
}

impl PeerMetrics {
    /// Creates every series of `peers` (and of the unauthorized caller),
    /// and drops those of peers no longer configured.
    pub fn set_peers(&self, peers: &[crate::config::peer::PeerSpec]) {
        for (family, values) in self.existing_labels() {
            let peer = values.first().map_or("", String::as_str);
            if peer.is_empty() || peers.iter().any(|p| p.name == peer) {
                continue;
            }
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let _ = match family {
                "requests" => self.requests.remove_label_values(&values),
                "calls" => self.calls.remove_label_values(&values),
                "up" => self.up.remove_label_values(&values),
                _ => self.last_seen.remove_label_values(&values),
            };
        }
        for e in PEER_ENDPOINTS {
            self.requests.with_label_values(&["", e, "unauthorized"]);
        }
        for p in peers {
            let n = p.name.as_str();
            for e in PEER_ENDPOINTS {
                for r in PEER_REQUEST_RESULTS {
                    self.requests.with_label_values(&[n, e, r]);
                }
                if p.url.is_some() {
                    for r in PEER_CALL_RESULTS {
                        self.calls.with_label_values(&[n, e, r]);
                    }
                }
            }
            self.up.with_label_values(&[n]);
            self.last_seen.with_label_values(&[n]);
        }
    }

    /// The label values (`peer` first, in label order) of every series
    /// held, by family.
    fn existing_labels(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut out = Vec::new();
        let families: [(&'static str, Vec<prometheus::proto::MetricFamily>); 4] = [
            ("requests", self.requests.collect()),
            ("calls", self.calls.collect()),
            ("up", self.up.collect()),
            ("last_seen", self.last_seen.collect()),
        ];
        for (name, fams) in families {
            for f in fams {
                for m in f.get_metric() {
                    // The exposition sorts labels by name: put them back
                    // in the family's order.
                    let value = |label: &str| {
                        m.get_label()
                            .iter()
                            .find(|l| l.name() == label)
                            .map_or(String::new(), |l| l.value().to_string())
                    };
                    let values = match name {
                        "requests" | "calls" => {
                            vec![value("peer"), value("endpoint"), value("result")]
                        }
                        _ => vec![value("peer")],
                    };
                    out.push((name, values));
                }
            }
        }
        out
    }
}

/// The outcome of configuration reloads (Prometheus's names).
struct ReloadMetrics {
    successful: IntGauge,
    success_timestamp: Gauge,
    total: IntCounterVec,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to register metric: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates the registry and every series the configuration implies.
    pub fn new(config: &Config) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(None, None)?;
        let r = Register(&registry);
        let build_info: IntGaugeVec = r.add(&family::BUILD_INFO)?;
        let m = Self {
            targets: RwLock::new(Vec::new()),
            targets_gauge: r.add(&family::TARGETS)?,
            reload: ReloadMetrics {
                successful: r.add(&family::RELOAD_SUCCESSFUL)?,
                success_timestamp: r.add(&family::RELOAD_SUCCESS_TIMESTAMP)?,
                total: r.add(&family::RELOADS_TOTAL)?,
            },
            icmp_mode: r.add(&family::ICMP_SOCKET_MODE)?,
            cert_expiry: r.add(&family::TLS_CERT_EXPIRY)?,
            download_bps: r.add(&family::HTTP_DOWNLOAD_BPS)?,
            http_status: r.add(&family::HTTP_STATUS_CODE)?,
            dns_answers: r.add(&family::DNS_ANSWERS)?,
            throughput_bps: r.add(&family::THROUGHPUT_BPS)?,
            throughput_tests: r.add(&family::THROUGHPUT_TESTS_BPS)?,
            throughput_bytes: r.add(&family::THROUGHPUT_BYTES_TOTAL)?,
            plan: r.add(&family::PLAN_BPS)?,
            loaded: LoadedMetrics {
                rtt: r.add(&family::THROUGHPUT_LOADED_RTT)?,
                increase: r.add(&family::THROUGHPUT_LATENCY_INCREASE)?,
                rpm: r.add(&family::RESPONSIVENESS_RPM)?,
            },
            peer: PeerMetrics {
                requests: r.add(&family::PEER_REQUESTS_TOTAL)?,
                up: r.add(&family::PEER_UP)?,
                last_seen: r.add(&family::PEER_LAST_SEEN)?,
                calls: r.add(&family::PEER_CALLS_TOTAL)?,
            },
            last_size: AtomicUsize::new(64 * 1024),
            lateness: r.add(&family::SCHEDULE_LATENESS_SECONDS)?,
            in_flight: r.add(&family::PROBES_IN_FLIGHT)?,
            concurrency_limit: r.add(&family::PROBE_CONCURRENCY_LIMIT)?,
            queued: r.add(&family::PROBES_QUEUED_TOTAL)?,
            interference: r.add(&family::INTERFERENCE_TOTAL)?,
            interference_extra: r.add(&family::INTERFERENCE_EXTRA_TOTAL)?,
            registry,
        };
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        m.reload.successful.set(1);
        m.reload
            .success_timestamp
            .set(jiff::Timestamp::now().as_millisecond() as f64 / 1e3);
        for result in ["success", "failure"] {
            m.reload.total.with_label_values(&[result]);
        }
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                config.daemon.site.as_deref().unwrap_or(""),
            ])
            .set(1);
        m.concurrency_limit
            .set(i64::try_from(config.daemon.max_concurrency).unwrap_or(i64::MAX));
        m.count_targets(config);
        let targets = config.targets.iter().map(|t| m.series(t)).collect();
        *m.targets.write().unwrap_or_else(|p| p.into_inner()) = targets;
        m.set_plan(config.plan.as_ref());
        m.peer.set_peers(&config.peers);
        Ok(m)
    }

    /// `linkwatch_targets`: the configured targets by kind.
    fn count_targets(&self, config: &Config) {
        for kind in Kind::ALL {
            let n = config.targets.iter().filter(|t| t.kind() == kind).count();
            self.targets_gauge
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Exports `[plan]` (at start, and again after a reload): one series per
    /// direction the plan names, none for a direction it leaves out.
    pub fn set_plan(&self, plan: Option<&Plan>) {
        self.plan.reset();
        for d in Direction::ALL {
            if let Some(bps) = plan.and_then(|p| p.rate(d)) {
                self.plan.with_label_values(&[d.as_str()]).set(bps / 8.0);
            }
        }
    }

    /// Creates target `t`'s series (at 0) and returns its per-target metrics.
    fn series(&self, t: &Target) -> TargetMetrics {
        let values = target_labels(t);
        let l = [values[0].as_str(), values[1].as_str(), values[2].as_str()];
        match t.kind() {
            Kind::Http => {
                self.download_bps.with_label_values(&l);
                self.http_status.with_label_values(&l);
                if matches!(&t.spec, crate::config::TargetSpec::Http(h) if h.url.scheme() == "https")
                {
                    self.cert_expiry.with_label_values(&l);
                }
            }
            Kind::Dns => {
                self.dns_answers.with_label_values(&l);
            }
            Kind::Throughput => {
                if let crate::config::TargetSpec::Throughput(s) = &t.spec {
                    let tl = [l[0], l[1], s.direction.as_str()];
                    self.throughput_tests.with_label_values(&tl);
                    self.throughput_bytes.with_label_values(&tl);
                    if s.url.scheme() == "https" {
                        self.cert_expiry.with_label_values(&l);
                    }
                }
            }
            Kind::Icmp | Kind::Tcp => {}
        }
        TargetMetrics {
            labels: format!(
                "target=\"{}\",group=\"{}\",kind=\"{}\"",
                escape(l[0]),
                escape(l[1]),
                escape(l[2])
            ),
            values,
            kind: t.kind(),
            success: AtomicI64::new(0),
            probes: Default::default(),
            buckets: Default::default(),
            duration_sum: AtomicF64::default(),
            phases: Default::default(),
            errors: Default::default(),
            skipped: Default::default(),
        }
    }

    /// Removes target `t`'s registry-held series (a reload removed or changed it).
    fn drop_series(&self, t: &Target) {
        let values = target_labels(t);
        let l = [values[0].as_str(), values[1].as_str(), values[2].as_str()];
        for family in [&self.download_bps, &self.cert_expiry] {
            let _ = family.remove_label_values(&l);
        }
        for family in [&self.http_status, &self.dns_answers] {
            let _ = family.remove_label_values(&l);
        }
        for c in crate::interference::Check::ALL {
            let _ = self.interference.remove_label_values(&[l[0], c.as_str()]);
        }
        for x in crate::interference::Extra::ALL {
            let _ = self
                .interference_extra
                .remove_label_values(&[l[0], x.as_str()]);
        }
        if let crate::config::TargetSpec::Throughput(s) = &t.spec {
            let tl = [l[0], l[1], s.direction.as_str()];
            let _ = self.throughput_bps.remove_label_values(&tl);
            let _ = self.throughput_tests.remove_label_values(&tl);
            let _ = self.throughput_bytes.remove_label_values(&tl);
            self.loaded.drop_series(l[0]);
        }
    }

    /// Applies a configuration reload from `old` to `new`: target `i` of
    /// `new` keeps the counters of old target `kept[i]` (so
    /// `linkwatch_probes_total` goes on without a reset); the others start at
    /// 0 and the series of removed targets go. Called at the scheduler's
    /// swap point, while no result is being recorded.
    pub fn reload(&self, old: &Config, new: &Config, kept: &[Option<usize>]) {
        let kept_old: Vec<usize> = kept.iter().flatten().copied().collect();
        for (i, t) in old.targets.iter().enumerate() {
            if !kept_old.contains(&i) {
                self.drop_series(t);
            }
        }
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        *targets = carry_over(
            std::mem::take(&mut *targets),
            kept,
            new.targets.len(),
            |i| self.series(&new.targets[i]),
        );
        self.set_plan(new.plan.as_ref());
        self.count_targets(new);
        self.peer.set_peers(&new.peers);
    }

    /// Records the outcome of a reload attempt.
    pub fn reload_done(&self, ok: bool) {
        self.reload.successful.set(i64::from(ok));
        self.reload
            .total
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
        if ok {
            self.reload
                .success_timestamp
                .set(jiff::Timestamp::now().as_millisecond() as f64 / 1e3);
        }
    }

    /// The registry, for other parts (outage metrics) to register into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records which ICMP socket mode is in use for an address family (`ipv4`/`ipv6`).
    pub fn set_icmp_mode(&self, family: &str, mode: &str) {
        self.icmp_mode.with_label_values(&[family, mode]).set(1);
    }

    /// Records one probe result.
    pub fn record(&self, result: &ProbeResult) {
        let targets = self.targets.read().unwrap_or_else(|p| p.into_inner());
        let Some(t) = targets.get(result.target) else {
            return;
        };
        let outcome = &result.observation.outcome;
        t.probes[outcome.result_index()].fetch_add(1, Ordering::Relaxed);
        let l = [
            t.values[0].as_str(),
            t.values[1].as_str(),
            t.values[2].as_str(),
        ];
        match outcome {
            Outcome::Success { duration, phases } => {
                t.success.store(1, Ordering::Relaxed);
                let secs = duration.as_secs_f64();
                let b = DURATION_BUCKETS.partition_point(|le| *le < secs);
                t.buckets[b].fetch_add(1, Ordering::Relaxed);
                t.duration_sum.add(secs);
                for (phase, d) in phases.iter() {
                    t.phases[phase.index()].set(d.as_secs_f64());
                }
                if let Some(bps) = result.observation.info.bytes_per_second {
                    self.download_bps.with_label_values(&l).set(bps);
                }
            }
            Outcome::Timeout { .. } | Outcome::Error(_) => {
                t.success.store(0, Ordering::Relaxed);
                if let Some(i) = failure_index(outcome) {
                    t.errors[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let info = &result.observation.info;
        if let Some(status) = info.status {
            self.http_status
                .with_label_values(&l)
                .set(i64::from(status));
        }
        if let Some(not_after) = info.cert_not_after {
            // f64 holds Unix seconds exactly for any realistic date.
            #[allow(clippy::cast_precision_loss)]
            self.cert_expiry.with_label_values(&l).set(not_after as f64);
        }
        if let Some(tp) = &info.throughput {
            let tl = [l[0], l[1], tp.direction.as_str()];
            self.throughput_bytes
                .with_label_values(&tl)
                .inc_by(tp.bytes);
            // Only a good test is a figure; a partial one never is.
            if let (true, false, Some(bps)) = (outcome.is_success(), tp.partial, tp.bits_per_second)
            {
                // The figure is in bits per second; the metrics in bytes.
                self.throughput_bps.with_label_values(&tl).set(bps / 8.0);
                self.throughput_tests
                    .with_label_values(&tl)
                    .observe(bps / 8.0);
                if let Some(loaded) = &tp.loaded {
                    self.loaded.observe(l[0], loaded);
                }
            }
        }
        // Series appear at first use: most targets never show any.
        if let Some(ev) = &info.evidence {
            self.interference
                .with_label_values(&[l[0], ev.check.as_str()])
                .inc();
        }
        if let Some(extra) = info.extra {
            self.interference_extra
                .with_label_values(&[l[0], extra.as_str()])
                .inc();
        }
        if info.rcode.is_some() {
            self.dns_answers
                .with_label_values(&l)
                .set(i64::try_from(info.answers.len()).unwrap_or(i64::MAX));
        }
    }

    /// Records how late a probe started against its schedule.
    pub fn observe_lateness(&self, lateness: Duration) {
        self.lateness.observe(lateness.as_secs_f64());
    }

    /// Counts probe slots skipped for a target, and why.
    pub fn add_skipped(&self, target: usize, why: Skip, n: u64) {
        if let Some(t) = self
            .targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(target)
        {
            t.skipped[why as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Encodes every metric in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> Result<Vec<u8>, MetricsError> {
        let mut buf = Vec::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);
        self.encode_targets(&mut buf);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        self.last_size.store(buf.len(), Ordering::Relaxed);
        Ok(buf)
    }

    /// Writes the per-target families, in the layout `TextEncoder` uses.
    fn encode_targets(&self, w: &mut Vec<u8>) {
        let ts = &*self.targets.read().unwrap_or_else(|p| p.into_inner());
        encode_success(w, ts);
        encode_probes(w, ts);
        encode_durations(w, ts);
        encode_phases(w, ts);
        encode_errors(w, ts);
        encode_skipped(w, ts);
    }
}

fn encode_success(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    header(w, &family::PROBE_SUCCESS);
    for t in ts {
        line(
            w,
            PROBE_SUCCESS,
            &t.labels,
            "",
            Value::Int(t.success.load(Ordering::Relaxed)),
        );
    }
}

fn encode_probes(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    header(w, &family::PROBES_TOTAL);
    for t in ts {
        for (i, r) in RESULTS.iter().enumerate() {
            let v = t.probes[i].load(Ordering::Relaxed);
            line(
                w,
                PROBES_TOTAL,
                &t.labels,
                &format_label("result", r),
                Value::Uint(v),
            );
        }
    }
}

fn encode_durations(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    header(w, &family::PROBE_DURATION_SECONDS);
    let bucket = format!("{PROBE_DURATION_SECONDS}_bucket");
    let sum = format!("{PROBE_DURATION_SECONDS}_sum");
    let count = format!("{PROBE_DURATION_SECONDS}_count");
    let les: Vec<String> = DURATION_BUCKETS
        .iter()
        .map(|b| format_label("le", &b.to_string()))
        .chain(std::iter::once(format_label("le", "+Inf")))
        .collect();
    for t in ts {
        let mut cum = 0;
        for (b, le) in t.buckets.iter().zip(&les) {
            cum += b.load(Ordering::Relaxed);
            line(w, &bucket, &t.labels, le, Value::Uint(cum));
        }
        line(w, &sum, &t.labels, "", Value::Float(t.duration_sum.get()));
        line(w, &count, &t.labels, "", Value::Uint(cum));
    }
}

fn encode_phases(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    header(w, &family::PROBE_PHASE_SECONDS);
    let phase_labels: Vec<String> = Phase::ALL
        .iter()
        .map(|p| format_label("phase", p.as_str()))
        .collect();
    for t in ts {
        for p in Phase::for_kind(t.kind) {
            let v = t.phases[p.index()].get();
            line(
                w,
                PROBE_PHASE_SECONDS,
                &t.labels,
                &phase_labels[p.index()],
                Value::Float(v),
            );
        }
    }
}

fn encode_errors(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    // Failure series appear with a target's first failure of that reason.
    let mark = w.len();
    header(w, &family::PROBE_ERRORS_TOTAL);
    let head = w.len();
    let reason_labels: Vec<String> = std::iter::once("timeout")
        .chain(Reason::ALL.iter().map(|r| r.as_str()))
        .map(|r| format_label("reason", r))
        .collect();
    for t in ts {
        for (e, label) in t.errors.iter().zip(&reason_labels) {
            let v = e.load(Ordering::Relaxed);
            if v > 0 {
                line(w, PROBE_ERRORS_TOTAL, &t.labels, label, Value::Uint(v));
            }
        }
    }
    if w.len() == head {
        w.truncate(mark);
    }
}

fn encode_skipped(w: &mut Vec<u8>, ts: &[TargetMetrics]) {
    header(w, &family::PROBES_SKIPPED_TOTAL);
    let skip_labels = Skip::ALL.map(|r| format_label("reason", r.as_str()));
    for t in ts {
        for why in Skip::ALL {
            if why == Skip::Budget && t.kind != Kind::Throughput {
                continue;
            }
            line(
                w,
                PROBES_SKIPPED_TOTAL,
                &t.labels,
                &skip_labels[why as usize],
                Value::Uint(t.skipped[why as usize].load(Ordering::Relaxed)),
            );
        }
    }
}

/// One metric family as the exposition describes it: name, type, labels
/// (for a per-target family, those after `target`, `group`, `kind`), help,
/// and a histogram's buckets.
struct Family {
    name: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
    buckets: &'static [f64],
}

/// Every family, as a table: adding a metric is one row here, plus its
/// field in [`Metrics`] (registry-held) or its writer (per target). Kept out
/// of rustfmt so that each row stays one line.
#[rustfmt::skip]
mod family {
    use super::Family;

    const fn f(name: &'static str, kind: &'static str, labels: &'static [&'static str], help: &'static str) -> Family {
        Family { name, kind, labels, help, buckets: &[] }
    }

    const fn histogram(name: &'static str, labels: &'static [&'static str], buckets: &'static [f64], help: &'static str) -> Family {
        Family { name, kind: "histogram", labels, help, buckets }
    }

    const TARGET: &[&str] = &super::TARGET_LABELS;
    const THROUGHPUT: &[&str] = &["target", "group", "direction"];

    // Per target, written by `Metrics::encode_targets`.
    pub(super) const PROBE_SUCCESS: Family =          f(super::PROBE_SUCCESS, "gauge", &[], "1 if the target's last probe succeeded, else 0.");
    pub(super) const PROBES_TOTAL: Family =           f(super::PROBES_TOTAL, "counter", &["result"], "Probes completed, by result (success, timeout, error).");
    pub(super) const PROBE_DURATION_SECONDS: Family = histogram(super::PROBE_DURATION_SECONDS, &[], super::DURATION_BUCKETS, "Duration of successful probes in seconds (round-trip time for icmp, connect time for tcp).");
    pub(super) const PROBE_PHASE_SECONDS: Family =    f(super::PROBE_PHASE_SECONDS, "gauge", &["phase"], "Duration of each phase of the target's last successful probe, in seconds.");
    pub(super) const PROBE_ERRORS_TOTAL: Family =     f(super::PROBE_ERRORS_TOTAL, "counter", &["reason"], "Failed probes by reason (timeout included as reason \"timeout\").");
    pub(super) const PROBES_SKIPPED_TOTAL: Family =   f(super::PROBES_SKIPPED_TOTAL, "counter", &["reason"], "Scheduled probes not sent: reason \"behind\" when the target's previous slot overran (the process fell behind), \"budget\" when a throughput target's max_bytes_per_day is spent, \"hold\" when its group was held for a path trace's re-probe.");

    // Held in the registry.
    pub(super) const BUILD_INFO: Family =             f(super::BUILD_INFO, "gauge", &["version", "site"], "Always 1; labelled with the linkwatch version and [daemon] site (empty when unset).");
    pub(super) const ICMP_SOCKET_MODE: Family =       f(super::ICMP_SOCKET_MODE, "gauge", &["family", "mode"], "1 for the ICMP socket mode in use per address family (dgram: unprivileged, raw: CAP_NET_RAW).");
    pub(super) const TLS_CERT_EXPIRY: Family =        f(super::TLS_CERT_EXPIRY, "gauge", TARGET, "Earliest notAfter of the certificate chain seen by the last probe, Unix seconds.");
    pub(super) const HTTP_DOWNLOAD_BPS: Family =      f(super::HTTP_DOWNLOAD_BPS, "gauge", TARGET, "Body bytes per second over the transfer phase of the last successful HTTP probe.");
    pub(super) const HTTP_STATUS_CODE: Family =       f(super::HTTP_STATUS_CODE, "gauge", TARGET, "HTTP status code of the last response.");
    pub(super) const DNS_ANSWERS: Family =            f(super::DNS_ANSWERS, "gauge", TARGET, "Number of answer records in the last DNS response.");
    pub(super) const THROUGHPUT_BPS: Family =         f(super::THROUGHPUT_BPS, "gauge", THROUGHPUT, "Goodput of the target's last good throughput test, bytes per second (its ramp left out).");
    pub(super) const THROUGHPUT_TESTS_BPS: Family =   histogram(super::THROUGHPUT_TESTS_BPS, THROUGHPUT, super::THROUGHPUT_BUCKETS, "Good throughput tests by goodput, bytes per second (for percentiles).");
    pub(super) const THROUGHPUT_BYTES_TOTAL: Family = f(super::THROUGHPUT_BYTES_TOTAL, "counter", THROUGHPUT, "Body bytes moved by throughput tests, failed and partial tests included (data spent).");
    pub(super) const PLAN_BPS: Family =               f(super::PLAN_BPS, "gauge", &["direction"], "The rate [plan] promises, bytes per second, by direction (absent without [plan]): divide linkwatch_throughput_bytes_per_second by it for the share of the plan.");
    pub(super) const THROUGHPUT_LOADED_RTT: Family =  f(super::THROUGHPUT_LOADED_RTT, "gauge", &["target", "quantile"], "Round trip of a new connection to the test server during the target's last throughput test (counted samples), seconds.");
    pub(super) const THROUGHPUT_LATENCY_INCREASE: Family = f(super::THROUGHPUT_LATENCY_INCREASE, "gauge", &["target"], "Loaded round trip (median) minus the idle one, in the target's last throughput test, seconds.");
    pub(super) const RESPONSIVENESS_RPM: Family =     f(super::RESPONSIVENESS_RPM, "gauge", &["target"], "Round trips per minute under load in the target's last throughput test (draft-ietf-ippm-responsiveness).");
    pub(super) const SCHEDULE_LATENESS_SECONDS: Family = histogram(super::SCHEDULE_LATENESS_SECONDS, &[], super::LATENESS_BUCKETS, "How late probes started against their schedule, in seconds.");
    pub(super) const PROBES_IN_FLIGHT: Family =       f(super::PROBES_IN_FLIGHT, "gauge", &[], "Probes currently in flight.");
    pub(super) const PROBE_CONCURRENCY_LIMIT: Family = f(super::PROBE_CONCURRENCY_LIMIT, "gauge", &[], "Configured bound on probes in flight (daemon.max_concurrency).");
    pub(super) const TARGETS: Family =                f(super::TARGETS, "gauge", &["kind"], "Configured targets by kind.");
    pub(super) const PROBES_QUEUED_TOTAL: Family =    f(super::PROBES_QUEUED_TOTAL, "counter", &[], "Probes that waited for a free slot because daemon.max_concurrency probes were in flight.");
    pub(super) const INTERFERENCE_TOTAL: Family =     f(super::INTERFERENCE_TOTAL, "counter", &["target", "check"], "Probes that showed a sign of interference, by target and check (dns_inconsistent, dns_bogon, tls_intercepted, sni_blocked, blockpage, throttled_name).");
    pub(super) const INTERFERENCE_EXTRA_TOTAL: Family = f(super::INTERFERENCE_EXTRA_TOTAL, "counter", &["target", "check"], "Extra connections the interference checks made (at most one per probe), by target and kind (tls_tie_break, sni_control, throughput_control).");
    pub(super) const RELOAD_SUCCESSFUL: Family =      f(super::CONFIG_LAST_RELOAD_SUCCESSFUL, "gauge", &[], "1 if the last configuration reload applied (1 at start), 0 if the file did not validate.");
    pub(super) const RELOAD_SUCCESS_TIMESTAMP: Family = f(super::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP, "gauge", &[], "Unix time of the last configuration applied (the start, until a reload succeeds).");
    pub(super) const RELOADS_TOTAL: Family =          f(super::CONFIG_RELOADS_TOTAL, "counter", &["result"], "Configuration reloads (SIGHUP, POST /-/reload) by result (success, failure).");
    pub(super) const PEER_REQUESTS_TOTAL: Family =    f(super::PEER_REQUESTS_TOTAL, "counter", &["peer", "endpoint", "result"], "Calls to /api/v1/peer/* by calling [[peer]] (\"\" when no token matched), endpoint and result (ok, unauthorized, rate_limited, bad_request, too_large).");
    pub(super) const PEER_UP: Family =                f(super::PEER_UP, "gauge", &["peer"], "1 if the [[peer]] made an authenticated call within 3 x daemon.witness_every, else 0 (0 from the start until its first call).");
    pub(super) const PEER_LAST_SEEN: Family =         f(super::PEER_LAST_SEEN, "gauge", &["peer"], "Unix time of the [[peer]]'s last authenticated call (0 until its first).");
    pub(super) const PEER_CALLS_TOTAL: Family =       f(super::PEER_CALLS_TOTAL, "counter", &["peer", "endpoint", "result"], "Calls this site made to a [[peer]] with a url, by endpoint and result (ok, unreachable, timeout, http_error, bad_answer, rejected).");
}

/// A registry-held metric that a [`Family`] row describes; its type says
/// the family's kind.
trait FromFamily: Collector + Clone + Sized + 'static {
    const KIND: &'static str;
    fn from_family(f: &Family) -> prometheus::Result<Self>;
}

macro_rules! from_family {
    ($kind:literal: $($single:ty),* ; $($vec:ty),*) => {
        $(impl FromFamily for $single {
            const KIND: &'static str = $kind;
            fn from_family(f: &Family) -> prometheus::Result<Self> {
                <$single>::new(f.name, f.help)
            }
        })*
        $(impl FromFamily for $vec {
            const KIND: &'static str = $kind;
            fn from_family(f: &Family) -> prometheus::Result<Self> {
                <$vec>::new(Opts::new(f.name, f.help), f.labels)
            }
        })*
    };
}
from_family!("gauge": IntGauge, Gauge; IntGaugeVec, GaugeVec);
from_family!("counter": IntCounter; IntCounterVec);

impl FromFamily for Histogram {
    const KIND: &'static str = "histogram";
    fn from_family(f: &Family) -> prometheus::Result<Self> {
        Histogram::with_opts(HistogramOpts::new(f.name, f.help).buckets(f.buckets.to_vec()))
    }
}

impl FromFamily for HistogramVec {
    const KIND: &'static str = "histogram";
    fn from_family(f: &Family) -> prometheus::Result<Self> {
        HistogramVec::new(
            HistogramOpts::new(f.name, f.help).buckets(f.buckets.to_vec()),
            f.labels,
        )
    }
}

/// Creates the metrics of table rows and registers them.
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<T: FromFamily>(&self, f: &Family) -> Result<T, MetricsError> {
        debug_assert_eq!(f.kind, T::KIND, "{}: the table's type", f.name);
        let m = T::from_family(f)?;
        self.0.register(Box::new(m.clone()))?;
        Ok(m)
    }
}

/// `# HELP` and `# TYPE` of a family written by hand.
fn header(w: &mut Vec<u8>, f: &Family) {
    let _ = write!(
        w,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n",
        name = f.name,
        help = f.help,
        kind = f.kind
    );
}

/// A sample value.
enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
}

/// `,name="value"` (value escaped), appended after the target labels.
fn format_label(name: &str, value: &str) -> String {
    format!(",{name}=\"{}\"", escape(value))
}

fn line(w: &mut Vec<u8>, name: &str, labels: &str, extra: &str, v: Value) {
    w.extend_from_slice(name.as_bytes());
    w.push(b'{');
    w.extend_from_slice(labels.as_bytes());
    w.extend_from_slice(extra.as_bytes());
    w.extend_from_slice(b"} ");
    match v {
        Value::Int(i) => {
            let _ = write!(w, "{i}");
        }
        Value::Uint(u) => {
            let _ = write!(w, "{u}");
        }
        Value::Float(f) if f.is_nan() => w.extend_from_slice(b"NaN"),
        Value::Float(f) if f.is_infinite() => {
            w.extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" })
        }
        Value::Float(f) => {
            let _ = write!(w, "{f}");
        }
    }
    w.push(b'\n');
}

/// Escapes a label value for the text format: backslash, double quote, newline.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

fn target_labels(t: &Target) -> [String; 3] {
    [
        t.name.clone(),
        t.group.clone(),
        t.kind().as_str().to_string(),
    ]
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod build_info_tests {
    use super::*;

    fn build_info_line(site: Option<&str>) -> String {
        let daemon = site.map_or(String::new(), |s| format!("[daemon]\nsite = \"{s}\"\n"));
        let text = format!(
            "{daemon}[[group]]\nname = \"lan\"\n\n[[target]]\nname = \"router\"\n\
             group = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n"
        );
        let config = crate::config::parse(&text, "<test>").unwrap();
        let m = Metrics::new(&config).unwrap();
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        text.lines()
            .find(|l| l.starts_with(BUILD_INFO))
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_plan_is_exported_per_direction_it_names() {
        let base = "[[group]]\nname = \"lan\"\n\n[[target]]\nname = \"router\"\n\
                    group = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n";
        let lines = |text: &str| -> Vec<String> {
            let config = crate::config::parse(text, "<test>").unwrap();
            let m = Metrics::new(&config).unwrap();
            String::from_utf8(m.encode().unwrap())
                .unwrap()
                .lines()
                .filter(|l| l.starts_with(PLAN_BPS))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            lines(&format!("[plan]\ndownload = \"100 Mbit/s\"\n{base}")),
            [format!("{PLAN_BPS}{{direction=\"download\"}} 12500000")]
        );
        assert_eq!(
            lines(&format!(
                "[plan]\ndownload = \"100 Mbit/s\"\nupload = \"20 Mbit/s\"\n{base}"
            ))
            .len(),
            2
        );
        assert!(lines(base).is_empty(), "no series without [plan]");
    }

    #[test]
    fn build_info_carries_the_site() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            build_info_line(Some("almaty-home")),
            format!("{BUILD_INFO}{{site=\"almaty-home\",version=\"{v}\"}} 1")
        );
        // Unset: an empty label, which Prometheus treats as absent (so a
        // scrape-side `site` label does not collide with it).
        assert_eq!(
            build_info_line(None),
            format!("{BUILD_INFO}{{site=\"\",version=\"{v}\"}} 1")
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod loaded_tests {
    use super::*;
    use crate::probe::loaded::{Confidence, LoadedLatency};
    use crate::probe::throughput::ThroughputInfo;
    use crate::probe::{Info, Observation, Outcome};

    #[test]
    fn a_good_tests_latency_under_load_is_exported() {
        let text = "[[group]]\nname = \"net\"\n\n[[target]]\nname = \"up\"\ngroup = \"net\"\n\
                    kind = \"throughput\"\nurl = \"http://127.0.0.1:9/upload\"\ndirection = \"upload\"\n";
        let config = crate::config::parse(text, "<test>").unwrap();
        let m = Metrics::new(&config).unwrap();
        let info = Info {
            throughput: Some(Box::new(ThroughputInfo {
                direction: crate::config::Direction::Upload,
                bits_per_second: Some(19e6),
                bytes: 1,
                transfer_seconds: 1.0,
                time_to_first_byte_seconds: None,
                streams: 4,
                streams_finished: 4,
                ended_by: None,
                partial: false,
                loaded: Some(LoadedLatency {
                    idle_rtt_seconds: Some(0.001),
                    loaded_rtt_p50_seconds: Some(0.452),
                    loaded_rtt_p90_seconds: Some(0.484),
                    self_rtt_p50_seconds: None,
                    latency_increase_seconds: Some(0.451),
                    rpm: Some(136.0),
                    grade: None,
                    samples: 30,
                    foreign_samples: 30,
                    self_samples: 0,
                    probes_lost: 0,
                    probe_connections: 35,
                    confidence: Confidence::Normal,
                    not_saturated: false,
                    congestion: None,
                    note: None,
                }),
            })),
            ..Info::default()
        };
        m.record(&ProbeResult {
            target: 0,
            at: jiff::Timestamp::now(),
            mono: tokio::time::Instant::now(),
            lateness: Duration::ZERO,
            observation: Observation::with_info(
                Outcome::Success {
                    duration: Duration::from_secs(1),
                    phases: Default::default(),
                },
                info,
            ),
        });
        let out = String::from_utf8(m.encode().unwrap()).unwrap();
        for line in [
            format!("{THROUGHPUT_LOADED_RTT}{{quantile=\"0.5\",target=\"up\"}} 0.452"),
            format!("{THROUGHPUT_LOADED_RTT}{{quantile=\"0.9\",target=\"up\"}} 0.484"),
            format!("{THROUGHPUT_LATENCY_INCREASE}{{target=\"up\"}} 0.451"),
            format!("{RESPONSIVENESS_RPM}{{target=\"up\"}} 136"),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod peer_tests {
    use super::*;

    fn config(dir: &std::path::Path, peers: &[(&str, bool)]) -> Config {
        use std::os::unix::fs::PermissionsExt;
        let mut text = String::from(
            "[[group]]\nname = \"lan\"\n[[target]]\nname = \"router\"\ngroup = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n",
        );
        for (name, url) in peers {
            let tok = dir.join(name);
            std::fs::write(&tok, format!("token-{name}")).unwrap();
            std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
            text += &format!(
                "[[peer]]\nname = \"{name}\"\ntoken_file = \"{}\"\n",
                tok.display()
            );
            if *url {
                text += "url = \"http://127.0.0.1:9\"\n";
            }
        }
        crate::config::parse(&text, "<test>").unwrap()
    }

    fn scrape(m: &Metrics) -> String {
        String::from_utf8(m.encode().unwrap()).unwrap()
    }

    #[test]
    fn every_peer_series_exists_from_the_start_and_goes_with_its_peer() {
        let dir = tempfile::tempdir().unwrap();
        let old = config(dir.path(), &[("home", false), ("abroad", true)]);
        let m = Metrics::new(&old).unwrap();
        let text = scrape(&m);
        assert!(
            text.contains("linkwatch_peer_up{peer=\"home\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("linkwatch_peer_last_seen_timestamp_seconds{peer=\"abroad\"} 0"),
            "{text}"
        );
        assert!(text.contains("linkwatch_peer_requests_total{endpoint=\"witness\",peer=\"\",result=\"unauthorized\"} 0"), "{text}");
        assert!(text.contains("linkwatch_peer_requests_total{endpoint=\"observations\",peer=\"home\",result=\"too_large\"} 0"), "{text}");
        assert!(text.contains("linkwatch_peer_calls_total{endpoint=\"witness\",peer=\"abroad\",result=\"timeout\"} 0"), "{text}");
        // Only peers with a url are called.
        assert!(
            !text.contains("linkwatch_peer_calls_total{endpoint=\"witness\",peer=\"home\""),
            "{text}"
        );
        let new = config(dir.path(), &[("abroad", true)]);
        m.reload(&old, &new, &[Some(0)]);
        let text = scrape(&m);
        assert!(!text.contains("peer=\"home\""), "{text}");
        assert!(
            text.contains("linkwatch_peer_up{peer=\"abroad\"} 0"),
            "{text}"
        );
        assert!(text.contains("peer=\"\",result=\"unauthorized\""), "{text}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod interference_tests {
    use super::*;
    use crate::interference::{Check, Evidence, Extra};
    use crate::probe::{Info, Observation, Outcome, Reason};

    /// Issue 21: a probe with evidence counts once by its check, its extra
    /// connection once by its kind; the series appear at first use and go
    /// with their target on a reload.
    #[test]
    fn interference_and_its_extra_connections_are_counted_by_target_and_check() {
        let text = "[[group]]\nname = \"lan\"\n\n[[target]]\nname = \"site\"\n\
                    group = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n";
        let config = crate::config::parse(text, "<test>").unwrap();
        let m = Metrics::new(&config).unwrap();
        let lines = |m: &Metrics| -> Vec<String> {
            String::from_utf8(m.encode().unwrap())
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("linkwatch_interference"))
                .map(str::to_owned)
                .collect()
        };
        assert!(lines(&m).is_empty(), "no series before first use");
        let result = |evidence: bool, extra: bool| ProbeResult {
            target: 0,
            at: jiff::Timestamp::now(),
            mono: tokio::time::Instant::now(),
            lateness: Duration::ZERO,
            observation: Observation::with_info(
                Outcome::error(Reason::SniBlocked, "reset"),
                Info {
                    evidence: evidence.then(|| {
                        Box::new(Evidence::new(Check::SniBlocked, "blocked.example", "reset"))
                    }),
                    extra: extra.then_some(Extra::SniControl),
                    ..Info::default()
                },
            ),
        };
        m.record(&result(true, true));
        m.record(&result(true, true));
        m.record(&result(false, true));
        m.record(&result(false, false));
        assert_eq!(
            lines(&m),
            [
                "linkwatch_interference_extra_total{check=\"sni_control\",target=\"site\"} 3",
                "linkwatch_interference_total{check=\"sni_blocked\",target=\"site\"} 2",
            ]
        );
        m.reload(&config, &config, &[None]);
        assert!(lines(&m).is_empty(), "{:?}", lines(&m));
    }
}
