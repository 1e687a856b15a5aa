//! What the slow-period tracker is fed: a group's thresholds and the probe samples.

use std::time::Duration;

use crate::outage::period::Stamp;

/// Thresholds of one group (`[group.degraded]`, resolved by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub window: Duration,
    /// Samples of a figure's own population needed before it may trip.
    pub min_samples: u32,
    /// Ratio 0..1.
    pub loss_above: Option<f64>,
    pub rtt_p50_above: Option<Duration>,
    pub rtt_p95_above: Option<Duration>,
    /// Bits per second (a percentage of the plan already resolved): the
    /// floor of the download tests' median.
    pub throughput_below: Option<f64>,
    /// The floor of the upload tests' median (a percentage resolved
    /// against `[plan] upload`); `None`: uploads are not judged.
    pub throughput_upload_below: Option<f64>,
    /// How long the last successful throughput test stands for the link when
    /// no newer one exists (e.g. 1.5 × the longest throughput interval of the
    /// group, allowing for jitter); never less than `window`.
    pub throughput_hold: Duration,
    pub dns_p95_above: Option<Duration>,
    pub http_p95_above: Option<Duration>,
    /// Latency under load: the median increase of the window's tests (and
    /// the last one, held like throughput) above this trips `loaded_latency`.
    pub loaded_latency_above: Option<Duration>,
}

/// One group as the slow period tracker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// Index of the group this one needs.
    pub needs: Option<usize>,
    pub thresholds: Thresholds,
    /// Minimum wait between a trip and its announcement: the time the outage
    /// detector needs to call the group down (`fail_after` × the longest
    /// probe interval of its targets).
    pub settle: Duration,
}

/// What kind of probe a sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Icmp,
    Tcp,
    Http,
    Dns,
    /// A download test.
    Throughput,
    /// An upload test: its own median and floor, the same trigger.
    ThroughputUpload,
}

impl SampleKind {
    /// A throughput test, either direction.
    pub fn is_throughput(self) -> bool {
        matches!(self, Self::Throughput | Self::ThroughputUpload)
    }
}

/// One probe result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub group: usize,
    pub at: Stamp,
    pub kind: SampleKind,
    pub success: bool,
    /// RTT (ICMP/TCP) or total duration (DNS/HTTP) of a success.
    pub latency: Option<Duration>,
    /// Goodput of a successful throughput test.
    pub throughput_bps: Option<f64>,
    /// Its latency under load over idle (graded tests only).
    pub loaded_increase: Option<Duration>,
    /// A sign of interference: the check of a failure's interference reason,
    /// or `throttled_name` on a test that carried that evidence.
    pub interference: Option<crate::interference::Check>,
}
