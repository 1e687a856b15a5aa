//! The outage metrics, registered in the caller's registry with every label set
//! created at start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Counter, CounterVec, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::config::Config;
use crate::journal::StallCause;

pub const TARGET_UP: &str = "linkwatch_target_up";
pub const GROUP_UP: &str = "linkwatch_group_up";
pub const OUTAGE_ACTIVE: &str = "linkwatch_outage_active";
pub const OUTAGES_TOTAL: &str = "linkwatch_outages_total";
pub const DOWNTIME_SECONDS_TOTAL: &str = "linkwatch_downtime_seconds_total";
pub const JOURNAL_WRITES_TOTAL: &str = "linkwatch_journal_writes_total";
pub const JOURNAL_ERRORS_TOTAL: &str = "linkwatch_journal_errors_total";
pub const STALLS_TOTAL: &str = "linkwatch_stalls_total";
pub const STALLED_SECONDS_TOTAL: &str = "linkwatch_stalled_seconds_total";
pub const PROBES_VOIDED_TOTAL: &str = "linkwatch_probes_voided_total";

/// Handles to the outage metrics.
#[derive(Clone)]
pub struct OutageMetrics {
    /// 1 up, 0 down, NaN while unknown (not yet decided since start).
    pub target_up: TargetUp,
    /// 1 up, 0 down, NaN while unknown (no decided targets, or none at all).
    pub group_up: GaugeVec,
    pub outage_active: GaugeVec,
    pub outages_total: IntCounterVec,
    pub downtime_seconds_total: CounterVec,
    pub journal_writes_total: IntCounter,
    pub journal_errors_total: IntCounter,
    /// Stalls (periods the daemon observed nothing), by cause.
    pub stalls_total: IntCounterVec,
    pub stalled_seconds_total: Counter,
    /// Failed probes whose deadline passed during a stall, not used as evidence.
    pub probes_voided_total: IntCounter,
}

impl OutageMetrics {
    /// Creates and registers the metrics, with a series for every target, group
    /// and (group, possible cause) pair.
    pub fn register(config: &Config, registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            target_up: TargetUp::new(config)?,
            group_up: GaugeVec::new(
                Opts::new(GROUP_UP, "Group state: 1 up, 0 down, NaN not known"),
                &["group"],
            )?,
            outage_active: GaugeVec::new(
                Opts::new(OUTAGE_ACTIVE, "1 while an outage of the group is open"),
                &["group", "cause"],
            )?,
            outages_total: IntCounterVec::new(
                Opts::new(OUTAGES_TOTAL, "Outages started, by group and cause"),
                &["group", "cause"],
            )?,
            downtime_seconds_total: CounterVec::new(
                Opts::new(
                    DOWNTIME_SECONDS_TOTAL,
                    "Seconds the group has been down, as observed by this process",
                ),
                &["group"],
            )?,
            journal_writes_total: IntCounter::new(
                JOURNAL_WRITES_TOTAL,
                "Journal lines written and fsynced",
            )?,
            journal_errors_total: IntCounter::new(
                JOURNAL_ERRORS_TOTAL,
                "Failed journal write attempts (the lines are kept and retried)",
            )?,
            stalls_total: IntCounterVec::new(
                Opts::new(
                    STALLS_TOTAL,
                    "Periods the daemon observed nothing (process stopped, system suspended), by cause",
                ),
                &["cause"],
            )?,
            stalled_seconds_total: Counter::new(
                STALLED_SECONDS_TOTAL,
                "Seconds of stalls: time the running daemon observed nothing",
            )?,
            probes_voided_total: IntCounter::new(
                PROBES_VOIDED_TOTAL,
                "Timed-out probes whose deadline passed during a stall; not counted as failures by the outage detector",
            )?,
        };
        for cause in [StallCause::ProcessStopped, StallCause::SystemSuspended] {
            m.stalls_total.with_label_values(&[cause.as_str()]);
        }
        registry.register(Box::new(m.target_up.clone()))?;
        registry.register(Box::new(m.group_up.clone()))?;
        registry.register(Box::new(m.outage_active.clone()))?;
        registry.register(Box::new(m.outages_total.clone()))?;
        registry.register(Box::new(m.downtime_seconds_total.clone()))?;
        registry.register(Box::new(m.journal_writes_total.clone()))?;
        registry.register(Box::new(m.journal_errors_total.clone()))?;
        registry.register(Box::new(m.stalls_total.clone()))?;
        registry.register(Box::new(m.stalled_seconds_total.clone()))?;
        registry.register(Box::new(m.probes_voided_total.clone()))?;

        for g in &config.groups {
            m.group_up
                .with_label_values(&[g.name.as_str()])
                .set(f64::NAN);
            m.downtime_seconds_total
                .with_label_values(&[g.name.as_str()]);
            for cause in possible_causes(config, &g.name) {
                m.outage_active
                    .with_label_values(&[g.name.as_str(), cause.as_str()])
                    .set(0.0);
                m.outages_total
                    .with_label_values(&[g.name.as_str(), cause.as_str()]);
            }
        }
        Ok(m)
    }
}

/// The group itself and every group upstream of it on its `needs` chain.
impl OutageMetrics {
    /// After a reload from `old` to `new`: the series of removed (and
    /// changed) targets and of removed groups go; those of added targets
    /// and groups are created (`unknown`, counters at 0); kept ones stay.
    pub fn reload(&self, old: &Config, new: &Config, kept: &[Option<usize>]) {
        self.target_up.reload(new, kept);
        for g in &old.groups {
            let name = g.name.as_str();
            let gone = new.group(name).is_none();
            if gone {
                let _ = self.group_up.remove_label_values(&[name]);
                let _ = self.downtime_seconds_total.remove_label_values(&[name]);
            }
            let causes = possible_causes(new, name);
            for cause in possible_causes(old, name) {
                if gone || !causes.contains(&cause) {
                    let _ = self
                        .outage_active
                        .remove_label_values(&[name, cause.as_str()]);
                    let _ = self
                        .outages_total
                        .remove_label_values(&[name, cause.as_str()]);
                }
            }
        }
        for g in &new.groups {
            let name = g.name.as_str();
            if old.group(name).is_none() {
                self.group_up.with_label_values(&[name]).set(f64::NAN);
                self.downtime_seconds_total.with_label_values(&[name]);
            }
            let causes = possible_causes(old, name);
            for cause in possible_causes(new, name) {
                if !causes.contains(&cause) {
                    self.outage_active
                        .with_label_values(&[name, cause.as_str()])
                        .set(0.0);
                    self.outages_total
                        .with_label_values(&[name, cause.as_str()]);
                }
            }
        }
    }
}

pub fn possible_causes(config: &Config, group: &str) -> Vec<String> {
    let mut out = vec![group.to_string()];
    let mut cur = config.group(group).and_then(|g| g.needs.clone());
    while let Some(name) = cur {
        if out.contains(&name) {
            break; // validated acyclic; guard anyway
        }
        cur = config.group(&name).and_then(|g| g.needs.clone());
        out.push(name);
    }
    out
}

/// `linkwatch_target_up`: one series per target, in configuration order,
/// each its value and its labels (the group's name shared). A `GaugeVec`
/// kept a hash map of labelled gauges, about 450 bytes a target (4.5 MB
/// at 10 000 targets); this keeps about 60 plus the target's name.
#[derive(Clone)]
pub struct TargetUp {
    desc: Desc,
    series: Arc<Mutex<Vec<TargetSeries>>>,
}

struct TargetSeries {
    target: Box<str>,
    group: Arc<str>,
    kind: &'static str,
    value: f64,
}

impl TargetUp {
    fn new(config: &Config) -> Result<Self, prometheus::Error> {
        let desc = Desc::new(
            TARGET_UP.to_string(),
            "Target state after hysteresis: 1 up, 0 down, NaN not yet known".to_string(),
            vec!["target".into(), "group".into(), "kind".into()],
            HashMap::new(),
        )?;
        Ok(Self {
            desc,
            series: Arc::new(Mutex::new(Self::series_of(config, &[], Vec::new()))),
        })
    }

    /// The series of `config`'s targets: a kept one (`kept[i]` its old
    /// index in `old`) keeps its value, the others are unknown (NaN).
    fn series_of(
        config: &Config,
        kept: &[Option<usize>],
        mut old: Vec<TargetSeries>,
    ) -> Vec<TargetSeries> {
        let groups: HashMap<&str, Arc<str>> = config
            .groups
            .iter()
            .map(|g| (g.name.as_str(), Arc::from(g.name.as_str())))
            .collect();
        config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| TargetSeries {
                target: t.name.as_str().into(),
                group: groups
                    .get(t.group.as_str())
                    .cloned()
                    .unwrap_or_else(|| Arc::from(t.group.as_str())),
                kind: t.kind().as_str(),
                value: kept
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|o| old.get_mut(o))
                    .map_or(f64::NAN, |s| s.value),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TargetSeries>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets target `target`'s value (an index of the current configuration).
    pub fn set(&self, target: usize, value: f64) {
        if let Some(s) = self.lock().get_mut(target) {
            s.value = value;
        }
    }

    /// Target `target`'s value.
    pub fn get(&self, target: usize) -> Option<f64> {
        self.lock().get(target).map(|s| s.value)
    }

    /// Target `target`'s name.
    pub fn name(&self, target: usize) -> Option<String> {
        self.lock().get(target).map(|s| s.target.to_string())
    }

    /// After a reload to `new` (`kept[i]`: the old index of new target `i`
    /// when it is unchanged): removed targets' series go, added ones are
    /// unknown, kept ones keep their value.
    fn reload(&self, new: &Config, kept: &[Option<usize>]) {
        let mut series = self.lock();
        let old = std::mem::take(&mut *series);
        *series = Self::series_of(new, kept, old);
    }
}

impl Collector for TargetUp {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let pair = |name: &str, value: &str| {
            let mut p = LabelPair::default();
            p.set_name(name.to_string());
            p.set_value(value.to_string());
            p
        };
        let metrics = self
            .lock()
            .iter()
            .map(|s| {
                let mut g = proto::Gauge::default();
                g.set_value(s.value);
                let mut m = proto::Metric::default();
                // Sorted by name, as `GaugeVec` makes them.
                m.set_label(vec![
                    pair("group", &s.group),
                    pair("kind", s.kind),
                    pair("target", &s.target),
                ]);
                m.set_gauge(g);
                m
            })
            .collect();
        let mut f = MetricFamily::default();
        f.set_name(TARGET_UP.to_string());
        f.set_help(self.desc.help.clone());
        f.set_field_type(MetricType::GAUGE);
        f.set_metric(metrics);
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::DownWhen;
    use crate::outage::testutil::config;
    use prometheus::{Encoder, TextEncoder};

    fn text(r: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Issue 23: the compact `linkwatch_target_up` writes the same text as
    /// the `GaugeVec` it replaces, values, NaN and reloads included.
    #[test]
    fn target_up_encodes_like_a_gauge_vec() {
        let dir = std::path::Path::new("/nonexistent");
        let groups = [("lan", None, DownWhen::All), ("wan", None, DownWhen::All)];
        let old = config(&groups, &[("b", "lan"), ("a", "wan"), ("c", "lan")], dir);
        let new = config(&groups, &[("c", "lan"), ("d", "wan"), ("b", "lan")], dir);
        let compact = TargetUp::new(&old).unwrap();
        let vec = GaugeVec::new(
            Opts::new(
                TARGET_UP,
                "Target state after hysteresis: 1 up, 0 down, NaN not yet known",
            ),
            &["target", "group", "kind"],
        )
        .unwrap();
        let (r1, r2) = (Registry::new(), Registry::new());
        r1.register(Box::new(compact.clone())).unwrap();
        r2.register(Box::new(vec.clone())).unwrap();
        let set = |cfg: &Config, i: usize, v: f64| {
            let t = &cfg.targets[i];
            vec.with_label_values(&[t.name.as_str(), t.group.as_str(), t.kind().as_str()])
                .set(v);
        };
        for i in 0..3 {
            set(&old, i, f64::NAN);
        }
        compact.set(0, 1.0);
        set(&old, 0, 1.0);
        compact.set(2, 0.0);
        set(&old, 2, 0.0);
        compact.set(7, 1.0);
        assert_eq!(text(&r1), text(&r2));
        assert!(
            text(&r1).contains("linkwatch_target_up{group=\"lan\",kind=\"tcp\",target=\"b\"} 1")
        );
        // Reload: c and b kept (old 2 and 0), d new, a removed.
        compact.reload(&new, &[Some(2), None, Some(0)]);
        vec.remove_label_values(&["a", "wan", "tcp"]).unwrap();
        set(&new, 1, f64::NAN);
        assert_eq!(text(&r1), text(&r2));
        assert_eq!(compact.get(0), Some(0.0));
        assert!(compact.get(1).unwrap().is_nan());
        assert_eq!(compact.name(2).as_deref(), Some("b"));
    }
}
