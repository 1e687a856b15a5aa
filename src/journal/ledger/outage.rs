//! One outage as the API, the CLI and the report show it, replayed from
//! `outage_start`, `outage_resume` and `outage_end`.

use jiff::Timestamp;
use serde::Serialize;

use super::peer::Elsewhere;
use crate::journal::record::gap::Gap;
use crate::journal::record::interference::InterferenceSummary;
use crate::journal::record::outage::{DurationClock, EndReason, OutageEnded, OutageStarted};
use crate::journal::ts_ms;

/// One outage as the API and CLI show it (`GET /api/v1/outages`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageRecord {
    pub id: String,
    pub group: String,
    pub cause: String,
    /// With `start_observed: false`, the earliest moment it could have begun.
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// `false` when the start lies in the first gap (the group went down
    /// while the daemon observed nothing).
    pub start_observed: bool,
    /// `null` while open.
    #[serde(with = "ts_ms::option")]
    pub end: Option<Timestamp>,
    /// Closed: the outage's length. Open: the time since it started, so far.
    pub duration_seconds: f64,
    /// Targets of the group that were down during the outage.
    pub targets: Vec<String>,
    /// Periods nobody observed (the daemon was not running, or stalled).
    pub gaps: Vec<Gap>,
    /// `false` when the end lies in the last gap; `null` while open.
    pub end_observed: Option<bool>,
    /// Which clock `duration_seconds` comes from.
    pub duration_clock: DurationClock,
    /// Why it ended when not by recovering (`"removed"`: a reload removed
    /// its group); absent for a recovery or while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Read offline while no daemon runs: the outage is still open in the
    /// journal, nobody has watched it since this moment (its last heartbeat),
    /// and `duration_seconds` ends here.
    #[serde(
        with = "ts_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_until: Option<Timestamp>,
    /// What peers saw of it (`corroboration`, `peer_verdicts`,
    /// `local_cause`); absent without corroboration.
    #[serde(flatten)]
    pub elsewhere: Elsewhere,
    /// Why its cause is `interference` (checks, targets, names); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

impl From<&OutageEnded> for OutageRecord {
    fn from(e: &OutageEnded) -> Self {
        Self {
            id: e.id.clone(),
            group: e.group.clone(),
            cause: e.cause.clone(),
            start: e.start,
            start_observed: e.start_observed,
            end: Some(e.end),
            duration_seconds: e.duration_seconds,
            targets: e.targets.clone(),
            gaps: e.gaps.clone(),
            end_observed: Some(e.end_observed),
            duration_clock: e.duration_clock,
            end_reason: e.end_reason,
            observed_until: None,
            elsewhere: Elsewhere::default(),
            interference: e.interference.clone(),
        }
    }
}

impl OutageRecord {
    /// An outage that has not ended (yet), as recorded at its start or resume.
    pub fn open(
        id: &str,
        group: &str,
        cause: &str,
        start: Timestamp,
        targets: &[String],
        gaps: Vec<Gap>,
        duration_clock: DurationClock,
    ) -> Self {
        Self {
            id: id.to_string(),
            group: group.to_string(),
            cause: cause.to_string(),
            start,
            start_observed: true,
            end: None,
            duration_seconds: 0.0,
            targets: targets.to_vec(),
            gaps,
            end_observed: None,
            duration_clock,
            end_reason: None,
            observed_until: None,
            elsewhere: Elsewhere::default(),
            interference: None,
        }
    }

    /// The record of an outage as its `outage_start` line says it began.
    pub fn started(e: &OutageStarted) -> Self {
        Self {
            start_observed: e.start_observed,
            interference: e.interference.clone(),
            ..Self::open(
                &e.id,
                &e.group,
                &e.cause,
                e.start,
                &e.targets,
                e.gaps.clone(),
                DurationClock::Monotonic,
            )
        }
    }

    /// Whether the outage overlaps `[since, until)`.
    pub fn overlaps(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
        let ends_after = match (since, self.end) {
            (Some(s), Some(e)) => e >= s,
            _ => true,
        };
        let starts_before = until.is_none_or(|u| self.start < u);
        ends_after && starts_before
    }
}

/// An outage still open at the end of the journal, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOutage {
    pub record: OutageRecord,
    /// Index into [`Ledger::runs`](super::Ledger::runs) of the last run that saw it down.
    pub last_run: Option<usize>,
}
