//! The Prometheus exporter's probe and scheduler metrics, in an owned registry.
//!
//! Every per-target label set is created at start, so each series exists (at 0)
//! before the first probe and a dashboard never shows "no data" for a target
//! that simply has not been probed yet. Handles are resolved once per target,
//! so recording a result does no label hashing or allocation.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::{Config, Kind, Target};
use crate::probe::{Outcome, Phase, ProbeResult, RESULTS};

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

/// Buckets for probe durations: 0.5 ms (a LAN ping) to 10 s (a crawling HTTPS
/// fetch over a congested international link), roughly ×2-2.5 per step so
/// quantiles stay within ~25 % anywhere in the range.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for schedule lateness: a healthy scheduler starts probes within
/// microseconds; anything past 5 ms is the scaling limit showing.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

const TARGET_LABELS: [&str; 3] = ["target", "group", "kind"];

/// Per-target metric handles, resolved once at start.
struct TargetMetrics {
    success: IntGauge,
    probes: [IntCounter; 3],
    duration: Histogram,
    phases: [Option<Gauge>; 5],
    labels: [String; 3],
}

/// All metrics of the probe pipeline.
pub struct Metrics {
    registry: Registry,
    targets: Vec<TargetMetrics>,
    probe_errors: IntCounterVec,
    icmp_mode: IntGaugeVec,
    cert_expiry: GaugeVec,
    download_bps: GaugeVec,
    http_status: IntGaugeVec,
    dns_answers: IntGaugeVec,
    pub lateness: Histogram,
    pub skipped: IntCounterVec,
    pub in_flight: IntGauge,
    pub concurrency_limit: IntGauge,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to register metric: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates the registry and every series the configuration implies.
    pub fn new(config: &Config) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(None, None)?;

        let success = IntGaugeVec::new(
            Opts::new(
                PROBE_SUCCESS,
                "1 if the target's last probe succeeded, else 0.",
            ),
            &TARGET_LABELS,
        )?;
        let probes = IntCounterVec::new(
            Opts::new(
                PROBES_TOTAL,
                "Probes completed, by result (success, timeout, error).",
            ),
            &["target", "group", "kind", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                PROBE_DURATION_SECONDS,
                "Duration of successful probes in seconds (round-trip time for icmp, connect time for tcp).",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &TARGET_LABELS,
        )?;
        let phases = GaugeVec::new(
            Opts::new(
                PROBE_PHASE_SECONDS,
                "Duration of each phase of the target's last successful probe, in seconds.",
            ),
            &["target", "group", "kind", "phase"],
        )?;
        let probe_errors = IntCounterVec::new(
            Opts::new(
                PROBE_ERRORS_TOTAL,
                "Failed probes by reason (timeout included as reason \"timeout\").",
            ),
            &["target", "group", "kind", "reason"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(BUILD_INFO, "Always 1; labelled with the linkwatch version."),
            &["version"],
        )?;
        let icmp_mode = IntGaugeVec::new(
            Opts::new(
                ICMP_SOCKET_MODE,
                "1 for the ICMP socket mode in use per address family (dgram: unprivileged, raw: CAP_NET_RAW).",
            ),
            &["family", "mode"],
        )?;
        let cert_expiry = GaugeVec::new(
            Opts::new(
                TLS_CERT_EXPIRY,
                "Earliest notAfter of the certificate chain seen by the last probe, Unix seconds.",
            ),
            &TARGET_LABELS,
        )?;
        let download_bps = GaugeVec::new(
            Opts::new(
                HTTP_DOWNLOAD_BPS,
                "Body bytes per second over the transfer phase of the last successful HTTP probe.",
            ),
            &TARGET_LABELS,
        )?;
        let http_status = IntGaugeVec::new(
            Opts::new(HTTP_STATUS_CODE, "HTTP status code of the last response."),
            &TARGET_LABELS,
        )?;
        let dns_answers = IntGaugeVec::new(
            Opts::new(
                DNS_ANSWERS,
                "Number of answer records in the last DNS response.",
            ),
            &TARGET_LABELS,
        )?;
        let lateness = Histogram::with_opts(
            HistogramOpts::new(
                SCHEDULE_LATENESS_SECONDS,
                "How late probes started against their schedule, in seconds.",
            )
            .buckets(LATENESS_BUCKETS.to_vec()),
        )?;
        let skipped = IntCounterVec::new(
            Opts::new(
                PROBES_SKIPPED_TOTAL,
                "Scheduled probes not sent because the target's previous slot overran (the process fell behind).",
            ),
            &TARGET_LABELS,
        )?;
        let in_flight = IntGauge::new(PROBES_IN_FLIGHT, "Probes currently in flight.")?;
        let concurrency_limit = IntGauge::new(
            PROBE_CONCURRENCY_LIMIT,
            "Configured bound on probes in flight (daemon.max_concurrency).",
        )?;
        let targets_gauge =
            IntGaugeVec::new(Opts::new(TARGETS, "Configured targets by kind."), &["kind"])?;

        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(success.clone()),
            Box::new(probes.clone()),
            Box::new(duration.clone()),
            Box::new(phases.clone()),
            Box::new(probe_errors.clone()),
            Box::new(build_info.clone()),
            Box::new(icmp_mode.clone()),
            Box::new(cert_expiry.clone()),
            Box::new(download_bps.clone()),
            Box::new(http_status.clone()),
            Box::new(dns_answers.clone()),
            Box::new(lateness.clone()),
            Box::new(skipped.clone()),
            Box::new(in_flight.clone()),
            Box::new(concurrency_limit.clone()),
            Box::new(targets_gauge.clone()),
        ];
        for c in collectors {
            registry.register(c)?;
        }
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        concurrency_limit.set(i64::try_from(config.daemon.max_concurrency).unwrap_or(i64::MAX));
        for kind in Kind::ALL {
            let n = config.targets.iter().filter(|t| t.kind() == kind).count();
            targets_gauge
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }

        let targets = config
            .targets
            .iter()
            .map(|t| {
                let labels = target_labels(t);
                let l = [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()];
                let probes = RESULTS.map(|r| probes.with_label_values(&[l[0], l[1], l[2], r]));
                let mut phase_gauges: [Option<Gauge>; 5] = Default::default();
                for p in Phase::for_kind(t.kind()) {
                    phase_gauges[*p as usize] =
                        Some(phases.with_label_values(&[l[0], l[1], l[2], p.as_str()]));
                }
                skipped.with_label_values(&l);
                match t.kind() {
                    Kind::Http => {
                        download_bps.with_label_values(&l);
                        http_status.with_label_values(&l);
                        if matches!(&t.spec, crate::config::TargetSpec::Http(h) if h.url.scheme() == "https")
                        {
                            cert_expiry.with_label_values(&l);
                        }
                    }
                    Kind::Dns => {
                        dns_answers.with_label_values(&l);
                    }
                    Kind::Icmp | Kind::Tcp => {}
                }
                TargetMetrics {
                    success: success.with_label_values(&l),
                    probes,
                    duration: duration.with_label_values(&l),
                    phases: phase_gauges,
                    labels,
                }
            })
            .collect();

        Ok(Self {
            registry,
            targets,
            probe_errors,
            icmp_mode,
            cert_expiry,
            download_bps,
            http_status,
            dns_answers,
            lateness,
            skipped,
            in_flight,
            concurrency_limit,
        })
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
        let Some(t) = self.targets.get(result.target) else {
            return;
        };
        let outcome = &result.report.outcome;
        let idx = match outcome {
            Outcome::Success { .. } => 0,
            Outcome::Timeout { .. } => 1,
            Outcome::Error(_) => 2,
        };
        t.probes[idx].inc();
        let l = [
            t.labels[0].as_str(),
            t.labels[1].as_str(),
            t.labels[2].as_str(),
        ];
        match outcome {
            Outcome::Success { duration, phases } => {
                t.success.set(1);
                t.duration.observe(duration.as_secs_f64());
                for (phase, d) in phases.iter() {
                    if let Some(g) = &t.phases[phase as usize] {
                        g.set(d.as_secs_f64());
                    }
                }
                if let Some(bps) = result.report.info.bytes_per_second {
                    self.download_bps.with_label_values(&l).set(bps);
                }
            }
            Outcome::Timeout { .. } => {
                t.success.set(0);
                self.probe_errors
                    .with_label_values(&[l[0], l[1], l[2], "timeout"])
                    .inc();
            }
            Outcome::Error(e) => {
                t.success.set(0);
                self.probe_errors
                    .with_label_values(&[l[0], l[1], l[2], e.reason.as_str()])
                    .inc();
            }
        }
        let info = &result.report.info;
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

    /// Counts probe slots skipped for a target.
    pub fn add_skipped(&self, target: usize, n: u64) {
        if let Some(t) = self.targets.get(target) {
            let l = [
                t.labels[0].as_str(),
                t.labels[1].as_str(),
                t.labels[2].as_str(),
            ];
            self.skipped.with_label_values(&l).inc_by(n);
        }
    }

    /// Encodes every metric in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> Result<Vec<u8>, MetricsError> {
        let mut buf = Vec::with_capacity(64 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }
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
