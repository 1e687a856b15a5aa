//! One daemon run as the journal shows it: from its `daemon_start` to its
//! last sign of life, with the plan and throughput targets in force.

use jiff::Timestamp;

use crate::journal::record::run::{PlanRecord, ThroughputTarget};

/// One daemon run, from its `daemon_start` to its last sign of life.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `seq` of its `daemon_start` line.
    pub start_seq: u64,
    pub started: Timestamp,
    /// Last moment known alive: its last line, or what the next run recorded.
    pub alive_until: Timestamp,
    /// Ended with `daemon_stop`.
    pub clean: bool,
    pub clock_synchronized: Option<bool>,
    /// Its `daemon_start`'s site (`[daemon] site`), when set.
    pub site: Option<String>,
    /// Where its configuration came from (a file's path), as recorded.
    pub config_source: String,
    /// Its `[plan]`, when configured and recorded.
    pub plan: Option<PlanRecord>,
    /// Its throughput targets.
    pub throughput_targets: Vec<ThroughputTarget>,
    /// The plan and throughput targets each `config_reload` of the run
    /// switched to, oldest first.
    pub reloads: Vec<RunConfig>,
}

/// A run's `[plan]` and throughput targets from a moment on (a reload).
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub at: Timestamp,
    pub plan: Option<PlanRecord>,
    pub throughput_targets: Vec<ThroughputTarget>,
}

impl Run {
    /// The `[plan]` and throughput targets in force at `at`: the last reload
    /// at or before it, or the run's start.
    pub fn config_at(&self, at: Timestamp) -> (Option<PlanRecord>, &[ThroughputTarget]) {
        match self.reloads.iter().rev().find(|r| r.at <= at) {
            Some(r) => (r.plan, &r.throughput_targets),
            None => (self.plan, &self.throughput_targets),
        }
    }

    /// Every throughput target the run had, at start or after a reload.
    pub fn all_throughput_targets(&self) -> impl Iterator<Item = &ThroughputTarget> {
        self.throughput_targets
            .iter()
            .chain(self.reloads.iter().flat_map(|r| &r.throughput_targets))
    }
}
