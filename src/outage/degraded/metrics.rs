//! The degradation metrics, with every series created at start.

use prometheus::{CounterVec, Gauge, GaugeVec, IntCounterVec, Opts, Registry};

use crate::config::Config;
use crate::outage::degradation::Figures;
use crate::outage::metrics::possible_causes;

pub const GROUP_DEGRADED: &str = "linkwatch_group_degraded";
pub const DEGRADATIONS_TOTAL: &str = "linkwatch_degradations_total";
pub const DEGRADED_SECONDS_TOTAL: &str = "linkwatch_degraded_seconds_total";
pub const GROUP_LOSS_RATIO: &str = "linkwatch_group_loss_ratio";
pub const GROUP_RTT_SECONDS: &str = "linkwatch_group_rtt_seconds";

/// Handles to the degradation metrics.
#[derive(Clone)]
pub struct DegradationMetrics {
    /// 1 degraded, 0 not, NaN not yet known.
    pub group_degraded: GaugeVec,
    pub degradations_total: IntCounterVec,
    pub degraded_seconds_total: CounterVec,
    pub group_loss_ratio: GaugeVec,
    pub group_rtt_seconds: GaugeVec,
    /// Per group (config order): degraded, loss ratio, RTT p50, RTT p95.
    per_group: Vec<[Gauge; 4]>,
}

impl DegradationMetrics {
    pub fn register(config: &Config, registry: &Registry) -> Result<Self, prometheus::Error> {
        let group_degraded = GaugeVec::new(
            Opts::new(
                GROUP_DEGRADED,
                "1 while the group is degraded (a [group.degraded] threshold crossed over its window), 0 if not, NaN not yet known",
            ),
            &["group"],
        )?;
        let degradations_total = IntCounterVec::new(
            Opts::new(
                DEGRADATIONS_TOTAL,
                "Degradation periods started, by group and cause",
            ),
            &["group", "cause"],
        )?;
        let degraded_seconds_total = CounterVec::new(
            Opts::new(
                DEGRADED_SECONDS_TOTAL,
                "Seconds the group has been degraded, as observed by this process",
            ),
            &["group"],
        )?;
        let group_loss_ratio = GaugeVec::new(
            Opts::new(
                GROUP_LOSS_RATIO,
                "Failed ICMP/TCP/DNS probes over all of them in the group's degradation window (NaN: none)",
            ),
            &["group"],
        )?;
        let group_rtt_seconds = GaugeVec::new(
            Opts::new(
                GROUP_RTT_SECONDS,
                "RTT quantiles of the group's successful ICMP/TCP probes over its degradation window (NaN: none)",
            ),
            &["group", "quantile"],
        )?;
        for c in [
            Box::new(group_degraded.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(degradations_total.clone()),
            Box::new(degraded_seconds_total.clone()),
            Box::new(group_loss_ratio.clone()),
            Box::new(group_rtt_seconds.clone()),
        ] {
            registry.register(c)?;
        }
        let mut per_group = Vec::with_capacity(config.groups.len());
        for g in &config.groups {
            let name = g.name.as_str();
            degraded_seconds_total.with_label_values(&[name]);
            for cause in possible_causes(config, name) {
                degradations_total.with_label_values(&[name, cause.as_str()]);
            }
            let gauges = [
                group_degraded.with_label_values(&[name]),
                group_loss_ratio.with_label_values(&[name]),
                group_rtt_seconds.with_label_values(&[name, "0.5"]),
                group_rtt_seconds.with_label_values(&[name, "0.95"]),
            ];
            for gauge in &gauges {
                gauge.set(f64::NAN);
            }
            per_group.push(gauges);
        }
        Ok(Self {
            group_degraded,
            degradations_total,
            degraded_seconds_total,
            group_loss_ratio,
            group_rtt_seconds,
            per_group,
        })
    }

    /// Sets group `g`'s gauges from its state and window figures.
    pub fn set_group(&self, g: usize, degraded: Option<bool>, f: Option<&Figures>) {
        let Some([deg, loss, p50, p95]) = self.per_group.get(g) else {
            return;
        };
        deg.set(match degraded {
            Some(true) => 1.0,
            Some(false) => 0.0,
            None => f64::NAN,
        });
        let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        loss.set(or_nan(f.and_then(|f| f.loss_ratio)));
        p50.set(or_nan(f.and_then(|f| f.rtt_p50_seconds)));
        p95.set(or_nan(f.and_then(|f| f.rtt_p95_seconds)));
    }
}
