//! `outage_start`, `outage_resume` and `outage_end`: a group was down.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::record::gap::Gap;
use crate::journal::record::interference::InterferenceSummary;
use crate::journal::ts_ms;

fn observed() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Which clock a duration was measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationClock {
    /// Both ends seen by one process: the monotonic clock.
    Monotonic,
    /// The outage spans a restart: wall-clock difference of start and end.
    Wall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageStarted {
    pub id: String,
    pub group: String,
    pub cause: String,
    /// With `start_observed: false`: the earliest moment it could have begun.
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// `false` when the group went down while the daemon observed nothing: the
    /// true start lies in the first gap, between `start` and that gap's `to`.
    /// Absent (older journals) means `true`.
    #[serde(default = "observed", skip_serializing_if = "is_true")]
    pub start_observed: bool,
    /// Targets of the group that were down when it started.
    pub targets: Vec<String>,
    /// Unobserved periods already known at the start (with `start_observed: false`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// Present only when `cause` is `interference`: which checks, targets and names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

/// `outage_resume`: an outage open when the previous run ended is still down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageResumed {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// The unobserved period: from the last moment seen down to the first failure seen again.
    pub gap: Gap,
    pub targets: Vec<String>,
}

/// `outage_end`: a group is up again (or was found up after a restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageEnded {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// As in `outage_start`; absent (older journals) means `true`.
    #[serde(default = "observed", skip_serializing_if = "is_true")]
    pub start_observed: bool,
    /// With `end_observed: false`: the last moment the group was seen down.
    #[serde(with = "ts_ms")]
    pub end: Timestamp,
    pub duration_seconds: f64,
    pub duration_clock: DurationClock,
    /// `false` when the group came up while the daemon was not running or not
    /// observing (a stall): the true end lies in the last gap, somewhere between
    /// `end` and that gap's `to`.
    pub end_observed: bool,
    /// Targets of the group that were down at any time during the outage.
    pub targets: Vec<String>,
    pub gaps: Vec<Gap>,
    /// Why it ended when not because the group came up: absent for a
    /// recovery (and in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Present only when `cause` is `interference`: which checks, targets and names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

/// Why an outage (or a degradation period) ended other than by recovering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A configuration reload removed its group: monitoring of it stopped
    /// at `end`; nothing is known about the group after that.
    Removed,
    /// A configuration reload changed its group (members, `down_when`,
    /// thresholds) and the group, judged by its new definition, is not down
    /// (or not degraded) any more.
    Reconfigured,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Removed => "removed",
            EndReason::Reconfigured => "reconfigured",
        }
    }

    /// For people (reports, the page): why the period ended without recovering.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::Removed => {
                "monitoring stopped: the group was removed from the configuration"
            }
            EndReason::Reconfigured => "the group was redefined in the configuration",
        }
    }
}
