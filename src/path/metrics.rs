//! The path metrics: hops of the last baseline, baseline changes, traces run.

use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

use super::event::When;
use crate::config::Config;

pub const PATH_HOPS: &str = "linkwatch_path_hops";
pub const PATH_CHANGES_TOTAL: &str = "linkwatch_path_changes_total";
pub const PATH_TRACES_TOTAL: &str = "linkwatch_path_traces_total";

/// The path metrics.
#[derive(Clone)]
pub(super) struct PathMetrics {
    pub hops: GaugeVec,
    pub changes: IntCounterVec,
    pub traces: IntCounterVec,
}

impl PathMetrics {
    pub(super) fn register(
        config: &Config,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let m = Self {
            hops: GaugeVec::new(
                Opts::new(
                    PATH_HOPS,
                    "Hops to the farthest answer in the group's last baseline path snapshot",
                ),
                &["group"],
            )?,
            changes: IntCounterVec::new(
                Opts::new(
                    PATH_CHANGES_TOTAL,
                    "Baselines whose responding addresses differ from the previous baseline's",
                ),
                &["group"],
            )?,
            traces: IntCounterVec::new(
                Opts::new(PATH_TRACES_TOTAL, "Path traces run, by group and reason"),
                &["group", "when"],
            )?,
        };
        registry.register(Box::new(m.hops.clone()))?;
        registry.register(Box::new(m.changes.clone()))?;
        registry.register(Box::new(m.traces.clone()))?;
        for g in &config.groups {
            m.changes.with_label_values(&[g.name.as_str()]);
            for w in [When::Start, When::End, When::Baseline] {
                m.traces.with_label_values(&[g.name.as_str(), w.as_str()]);
            }
        }
        Ok(m)
    }
}
