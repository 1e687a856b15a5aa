//! The outage metrics, registered in the caller's registry with every label set
//! created at start.

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
    pub target_up: GaugeVec,
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
            target_up: GaugeVec::new(
                Opts::new(
                    TARGET_UP,
                    "Target state after hysteresis: 1 up, 0 down, NaN not yet known",
                ),
                &["target", "group", "kind"],
            )?,
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

        for t in &config.targets {
            m.target_up
                .with_label_values(&[t.name.as_str(), t.group.as_str(), t.kind().as_str()])
                .set(f64::NAN);
        }
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
        let kept_old: Vec<usize> = kept.iter().flatten().copied().collect();
        for (i, t) in old.targets.iter().enumerate() {
            if !kept_old.contains(&i) {
                let _ = self.target_up.remove_label_values(&[
                    t.name.as_str(),
                    t.group.as_str(),
                    t.kind().as_str(),
                ]);
            }
        }
        for (t, k) in new.targets.iter().zip(kept) {
            if k.is_none() {
                self.target_up
                    .with_label_values(&[t.name.as_str(), t.group.as_str(), t.kind().as_str()])
                    .set(f64::NAN);
            }
        }
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
