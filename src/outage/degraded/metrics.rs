//! The degradation metrics, with every series created at start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary};
use prometheus::{CounterVec, Gauge, GaugeVec, IntCounterVec, Opts, Registry};

use crate::config::Config;
use crate::journal::Figures;
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
    /// A summary (quantile 0.5 and 0.95, `_sum`, `_count`): promtool accepts a
    /// `quantile` label only on a summary.
    pub group_rtt_seconds: WindowRtt,
    /// Per group (config order): degraded, loss ratio.
    per_group: Vec<[Gauge; 2]>,
}

/// One group's window RTT figures.
#[derive(Debug, Clone, Copy, Default)]
struct Rtt {
    p50: Option<f64>,
    p95: Option<f64>,
    count: u64,
    sum: f64,
}

/// `linkwatch_group_rtt_seconds{group,quantile}` as a summary over the window.
#[derive(Clone)]
pub struct WindowRtt {
    desc: Arc<Desc>,
    /// Per group (config order): its name and figures; replaced on a reload.
    values: Arc<Mutex<Vec<(String, Rtt)>>>,
}

impl WindowRtt {
    fn new(groups: Vec<String>) -> Result<Self, prometheus::Error> {
        let desc = Desc::new(
            GROUP_RTT_SECONDS.into(),
            "RTT quantiles of the group's successful ICMP/TCP probes over its degradation window (NaN: none)".into(),
            vec!["group".into()],
            HashMap::new(),
        )?;
        Ok(Self {
            desc: Arc::new(desc),
            values: Arc::new(Mutex::new(
                groups.into_iter().map(|g| (g, Rtt::default())).collect(),
            )),
        })
    }

    fn set(&self, g: usize, v: Rtt) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = values.get_mut(g) {
            slot.1 = v;
        }
    }

    /// The groups are now `groups` (a reload): figures start empty until the next tick.
    fn regroup(&self, groups: Vec<String>) {
        *self.values.lock().unwrap_or_else(|p| p.into_inner()) =
            groups.into_iter().map(|g| (g, Rtt::default())).collect();
    }
}

impl Collector for WindowRtt {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = values
            .iter()
            .map(|(name, v)| {
                let mut label = LabelPair::default();
                label.set_name("group".into());
                label.set_value(name.clone());
                let quantiles = [(0.5, v.p50), (0.95, v.p95)]
                    .into_iter()
                    .map(|(q, value)| {
                        let mut quantile = Quantile::default();
                        quantile.set_quantile(q);
                        quantile.set_value(value.unwrap_or(f64::NAN));
                        quantile
                    })
                    .collect();
                let mut summary = Summary::default();
                summary.set_sample_count(v.count);
                summary.set_sample_sum(v.sum);
                summary.set_quantile(quantiles);
                let mut m = Metric::default();
                m.set_label(vec![label]);
                m.set_summary(summary);
                m
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(GROUP_RTT_SECONDS.into());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::SUMMARY);
        family.set_metric(metrics);
        vec![family]
    }
}

impl DegradationMetrics {
    /// After a reload from `old` to `new`: removed groups' series go, added
    /// ones are created, the per-group gauges follow the new group order.
    pub fn reload(&mut self, old: &Config, new: &Config) {
        for g in &old.groups {
            let name = g.name.as_str();
            let gone = new.group(name).is_none();
            if gone {
                let _ = self.group_degraded.remove_label_values(&[name]);
                let _ = self.group_loss_ratio.remove_label_values(&[name]);
                let _ = self.degraded_seconds_total.remove_label_values(&[name]);
            }
            let causes = possible_causes(new, name);
            for cause in possible_causes(old, name) {
                if gone || !causes.contains(&cause) {
                    let _ = self
                        .degradations_total
                        .remove_label_values(&[name, cause.as_str()]);
                }
            }
        }
        self.per_group = new
            .groups
            .iter()
            .map(|g| {
                let name = g.name.as_str();
                self.degraded_seconds_total.with_label_values(&[name]);
                for cause in possible_causes(new, name) {
                    self.degradations_total
                        .with_label_values(&[name, cause.as_str()]);
                }
                let gauges = [
                    self.group_degraded.with_label_values(&[name]),
                    self.group_loss_ratio.with_label_values(&[name]),
                ];
                if old.group(name).is_none() {
                    for gauge in &gauges {
                        gauge.set(f64::NAN);
                    }
                }
                gauges
            })
            .collect();
        self.group_rtt_seconds
            .regroup(new.groups.iter().map(|g| g.name.clone()).collect());
    }

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
        let group_rtt_seconds =
            WindowRtt::new(config.groups.iter().map(|g| g.name.clone()).collect())?;
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

    /// Sets group `g`'s series from its state and window figures (and the
    /// window's RTT count and sum).
    pub fn set_group(
        &self,
        g: usize,
        degraded: Option<bool>,
        f: Option<&Figures>,
        rtt: Option<(u64, f64)>,
    ) {
        let Some([deg, loss]) = self.per_group.get(g) else {
            return;
        };
        deg.set(match degraded {
            Some(true) => 1.0,
            Some(false) => 0.0,
            None => f64::NAN,
        });
        let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        loss.set(or_nan(f.and_then(|f| f.loss_ratio)));
        let (count, sum) = rtt.unwrap_or_default();
        self.group_rtt_seconds.set(
            g,
            Rtt {
                p50: f.and_then(|f| f.rtt_p50_seconds),
                p95: f.and_then(|f| f.rtt_p95_seconds),
                count,
                sum,
            },
        );
    }
}
