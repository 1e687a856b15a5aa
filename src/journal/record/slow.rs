//! Slow periods (the journal's `degraded_start`, `degraded_resume` and
//! `degraded_end`; "degraded" is the contract name of a slow period in the
//! journal, the API and the metrics): what crossed which threshold, and the
//! window figures that showed it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::format_rate;
use crate::journal::record::gap::Gap;
use crate::journal::record::interference::InterferenceSummary;
use crate::journal::record::outage::{DurationClock, EndReason};
use crate::journal::ts_ms;

/// A threshold that was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Loss,
    RttP50,
    RttP95,
    Throughput,
    DnsP95,
    HttpP95,
    LoadedLatency,
    /// A throughput test to a name far below its `control_url` (see
    /// [`crate::interference::Check::ThrottledName`]).
    ThrottledName,
}

impl Trigger {
    pub const ALL: [Trigger; 8] = [
        Trigger::Loss,
        Trigger::RttP50,
        Trigger::RttP95,
        Trigger::Throughput,
        Trigger::DnsP95,
        Trigger::HttpP95,
        Trigger::LoadedLatency,
        Trigger::ThrottledName,
    ];

    /// How many triggers there are (per-trigger arrays).
    pub const N: usize = Trigger::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Loss => "loss",
            Trigger::RttP50 => "rtt_p50",
            Trigger::RttP95 => "rtt_p95",
            Trigger::Throughput => "throughput",
            Trigger::DnsP95 => "dns_p95",
            Trigger::HttpP95 => "http_p95",
            Trigger::LoadedLatency => "loaded_latency",
            Trigger::ThrottledName => "throttled_name",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub(crate) fn list(mask: u8) -> Vec<Trigger> {
        Trigger::ALL
            .into_iter()
            .filter(|t| mask & t.bit() != 0)
            .collect()
    }
}

/// Window figures (`None`: no sample of that kind in the window).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Figures {
    pub loss_ratio: Option<f64>,
    pub rtt_p50_seconds: Option<f64>,
    pub rtt_p95_seconds: Option<f64>,
    pub dns_p95_seconds: Option<f64>,
    pub http_p95_seconds: Option<f64>,
    /// Median of the window's download tests and the last one.
    pub throughput_bps: Option<f64>,
    /// The same of the window's upload tests (judged against their own
    /// floor). Absent in older journals and without upload tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_upload_bps: Option<f64>,
    /// The last successful test, while it still counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_last_bps: Option<f64>,
    /// Probes (all kinds but throughput) in the window.
    pub samples: u64,
}

/// Figures over a whole degradation: the window figures are sampled once a
/// second (monotonic) from the announcement to the end, while a figure is
/// over its threshold (not over the clean window that confirms the end).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PeriodFigures {
    /// Medians of the sampled figures (`samples`: the median window count).
    pub median: Figures,
    /// Worst values: highest loss and latencies, lowest throughput
    /// (`samples`: the smallest window count).
    pub worst: Figures,
    /// How many times the window figures were sampled.
    pub snapshots: u64,
    /// Probes seen from the back-dated start to the end.
    pub samples: u64,
    /// Successful throughput tests in the same period.
    pub throughput_tests: u64,
    /// Failed over all ICMP/TCP/DNS probes from the start to the recorded
    /// end: the loss the period itself saw (the medians above are of the
    /// sliding window, which at the edges also holds probes from outside
    /// the period). Absent in older journals and without such probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_ratio: Option<f64>,
}

/// `degraded_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedStarted {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    pub triggers: Vec<Trigger>,
    /// Window figures when it tripped.
    pub figures: Figures,
    /// Present only when `cause` is `interference`: which checks, targets and names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

/// A degradation open when the previous run ended is still on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedResumed {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// From the last moment seen degraded to the back-dated start seen again.
    pub gap: Gap,
    pub triggers: Vec<Trigger>,
    pub figures: Figures,
}

/// `degraded_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedEnded {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// With `end_observed: false`: the last moment it was known degraded.
    #[serde(with = "ts_ms")]
    pub end: Timestamp,
    pub duration_seconds: f64,
    pub duration_clock: DurationClock,
    pub end_observed: bool,
    /// Ended because the group went down (an outage follows).
    pub superseded: bool,
    /// Every threshold crossed during the period.
    pub triggers: Vec<Trigger>,
    pub figures: PeriodFigures,
    pub gaps: Vec<Gap>,
    /// Why it ended when not by the figures recovering or the group going
    /// down: a reload removed (`removed`) or redefined (`reconfigured`) its
    /// group. Absent otherwise (and in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Present only when `cause` is `interference`: which checks, targets and names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

/// Triggers as `loss,rtt_p95`.
pub fn triggers_text(t: &[Trigger]) -> String {
    t.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

/// The figures that were measured, for people: `loss 15.2% · rtt p95 41.0 ms`.
pub fn describe_figures(f: &Figures) -> String {
    let ms = |s: f64| {
        if s < 0.01 {
            format!("{:.2} ms", s * 1e3)
        } else {
            format!("{:.0} ms", s * 1e3)
        }
    };
    let mut parts = Vec::new();
    if let Some(l) = f.loss_ratio {
        parts.push(format!("loss {:.1}%", l * 100.0));
    }
    if let Some(v) = f.rtt_p50_seconds {
        parts.push(format!("rtt p50 {}", ms(v)));
    }
    if let Some(v) = f.rtt_p95_seconds {
        parts.push(format!("rtt p95 {}", ms(v)));
    }
    if let Some(v) = f.dns_p95_seconds {
        parts.push(format!("dns p95 {}", ms(v)));
    }
    if let Some(v) = f.http_p95_seconds {
        parts.push(format!("http p95 {}", ms(v)));
    }
    if let Some(v) = f.throughput_bps {
        parts.push(format!("throughput {}", format_rate(v)));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" · ")
    }
}
