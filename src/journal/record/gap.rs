//! Unobserved periods: what every record that spans a restart or a stall carries.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::ts_ms;

/// A period the daemon did not observe (it was not running, it was stopped or
/// the system suspended, or a target's edge fell between two observations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(with = "ts_ms")]
    pub from: Timestamp,
    #[serde(with = "ts_ms")]
    pub to: Timestamp,
}

impl Gap {
    /// Length by the wall clock (the only clock spanning two processes), never negative.
    pub fn seconds(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64().max(0.0)
    }

    /// Whether the two gaps overlap or touch.
    pub fn touches(&self, other: &Gap) -> bool {
        self.from <= other.to && other.from <= self.to
    }
}

/// Adds `gap` to `gaps` (kept in time order), merging it with any gap it
/// overlaps or touches, so one unobserved period is listed once.
pub fn push_gap(gaps: &mut Vec<Gap>, gap: Gap) {
    let mut merged = gap;
    gaps.retain(|g| {
        if g.touches(&merged) {
            merged.from = merged.from.min(g.from);
            merged.to = merged.to.max(g.to);
            false
        } else {
            true
        }
    });
    let at = gaps.partition_point(|g| g.from < merged.from);
    gaps.insert(at, merged);
}
