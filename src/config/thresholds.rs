//! The resolved thresholds of a group's `degraded` table, as the model
//! holds them; `degraded.rs` reads and checks the tables that give them.

use std::time::Duration;

/// The degradation thresholds of one group, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Degraded {
    /// Sliding window the figures are computed over.
    pub window: Duration,
    /// Probes of a figure's own kinds needed in the window before it may trip.
    pub min_samples: u32,
    /// Failed ICMP/TCP/DNS probes over all of them, as a ratio 0..=1.
    pub loss_above: Option<f64>,
    /// Over successful ICMP/TCP probes.
    pub rtt_p50_above: Option<Duration>,
    pub rtt_p95_above: Option<Duration>,
    /// Median of the window's download tests (and the last one), and of
    /// its upload tests, each against its floor.
    pub throughput_below: Option<ThroughputFloor>,
    /// Over successful DNS probes (their whole duration).
    pub dns_p95_above: Option<Duration>,
    /// Over successful HTTP probes (their whole duration).
    pub http_p95_above: Option<Duration>,
    /// Median latency-under-load increase of the window's download tests
    /// (and the last one) above this: slow (`loaded_latency`).
    pub loaded_latency_increase_above: Option<Duration>,
}

/// `throughput_below`, resolved to bits per second per direction: an
/// absolute rate is both floors; a percentage resolves against `[plan]
/// download` for download tests and `[plan] upload` for upload tests
/// (`None`: that direction is not judged, the plan names no such rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThroughputFloor {
    /// The download tests' floor.
    pub bps: Option<f64>,
    /// The upload tests' floor.
    pub upload_bps: Option<f64>,
    /// Set when written as a percentage of `[plan]`.
    pub percent_of_plan: Option<f64>,
}

impl Degraded {
    /// Built-in `window` when neither table sets one.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
    /// Built-in `min_samples`.
    pub const DEFAULT_MIN_SAMPLES: u32 = 20;
    pub const MIN_WINDOW: Duration = Duration::from_secs(1);
    pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

    /// Whether any threshold is set (otherwise the group is never degraded).
    pub fn any_threshold(&self) -> bool {
        self.loss_above.is_some()
            || self.rtt_p50_above.is_some()
            || self.rtt_p95_above.is_some()
            || self.throughput_below.is_some()
            || self.dns_p95_above.is_some()
            || self.http_p95_above.is_some()
            || self.loaded_latency_increase_above.is_some()
    }
}

impl Default for Degraded {
    fn default() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
            min_samples: Self::DEFAULT_MIN_SAMPLES,
            loss_above: None,
            rtt_p50_above: None,
            rtt_p95_above: None,
            throughput_below: None,
            dns_p95_above: None,
            http_p95_above: None,
            loaded_latency_increase_above: None,
        }
    }
}
