//! Slow periods (the journal's and the API's "degradations") as the API, the CLI and the report show them, and
//! their replay from the journal (`degraded_start`, `degraded_resume`,
//! `degraded_end`).

use jiff::Timestamp;
use serde::Serialize;

use super::peer::Elsewhere;
use super::run::Run;
use crate::journal::line::Entry;
use crate::journal::record::gap::Gap;
use crate::journal::record::interference::InterferenceSummary;
use crate::journal::record::outage::{DurationClock, EndReason};
use crate::journal::record::slow::{
    DegradedEnded, DegradedResumed, DegradedStarted, Figures, PeriodFigures, Trigger,
};
use crate::journal::ts_ms;

/// One degradation period (`GET /api/v1/degradations`): the outage record's
/// shape (without `targets`: a degradation is a group's figure, not a set of
/// targets down) plus `triggers` and `figures`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowPeriodRecord {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// `null` while open.
    #[serde(with = "ts_ms::option")]
    pub end: Option<Timestamp>,
    /// Closed: its length. Open: the time since it started, so far.
    pub duration_seconds: f64,
    /// Periods nobody observed (the daemon was not running).
    pub gaps: Vec<Gap>,
    /// `false` when the end lies in the last gap; `null` while open.
    pub end_observed: Option<bool>,
    pub duration_clock: DurationClock,
    /// The thresholds crossed (at the start; every one crossed, once ended).
    pub triggers: Vec<Trigger>,
    /// The window's figures when it started.
    pub figures: Figures,
    /// Medians, worst values and sample counts over the whole period, once ended.
    pub period: Option<PeriodFigures>,
    /// Ended because the group went down (an outage followed); `null` while open.
    pub superseded: Option<bool>,
    /// Ended by a reload that removed (`removed`) or redefined
    /// (`reconfigured`) its group, not by the figures recovering; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Open in the journal while no daemon runs: its last sign of life,
    /// where it is ended for reading (`end`, with `end_observed: false`),
    /// so that a listing never grows with the reader's clock.
    #[serde(with = "ts_ms::option", skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<Timestamp>,
    /// What peers saw of it (`corroboration`, `peer_verdicts`,
    /// `local_cause`); absent without corroboration.
    #[serde(flatten)]
    pub elsewhere: Elsewhere,
    /// Why its cause is `interference` (checks, targets, names); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<InterferenceSummary>>,
}

impl SlowPeriodRecord {
    /// A degradation that has not ended (yet).
    pub fn open(e: &DegradedStarted) -> Self {
        Self {
            id: e.id.clone(),
            group: e.group.clone(),
            cause: e.cause.clone(),
            start: e.start,
            end: None,
            duration_seconds: 0.0,
            gaps: Vec::new(),
            end_observed: None,
            duration_clock: DurationClock::Monotonic,
            triggers: e.triggers.clone(),
            figures: e.figures.clone(),
            period: None,
            superseded: None,
            end_reason: None,
            observed_until: None,
            elsewhere: Elsewhere::default(),
            interference: e.interference.clone(),
        }
    }

    /// A resumed one whose start line is lost.
    fn resumed(e: &DegradedResumed) -> Self {
        Self {
            id: e.id.clone(),
            group: e.group.clone(),
            cause: e.cause.clone(),
            start: e.start,
            end: None,
            duration_seconds: 0.0,
            gaps: vec![e.gap],
            end_observed: None,
            duration_clock: DurationClock::Wall,
            triggers: e.triggers.clone(),
            figures: e.figures.clone(),
            period: None,
            superseded: None,
            end_reason: None,
            observed_until: None,
            elsewhere: Elsewhere::default(),
            interference: None,
        }
    }

    /// The closed record; `figures` are the start's when known.
    pub fn ended(e: &DegradedEnded, figures: Option<Figures>) -> Self {
        Self {
            id: e.id.clone(),
            group: e.group.clone(),
            cause: e.cause.clone(),
            start: e.start,
            end: Some(e.end),
            duration_seconds: e.duration_seconds,
            gaps: e.gaps.clone(),
            end_observed: Some(e.end_observed),
            duration_clock: e.duration_clock,
            triggers: e.triggers.clone(),
            figures: figures.unwrap_or_default(),
            period: Some(e.figures.clone()),
            superseded: Some(e.superseded),
            end_reason: e.end_reason,
            observed_until: None,
            elsewhere: Elsewhere::default(),
            interference: e.interference.clone(),
        }
    }

    /// Whether it overlaps `[since, until)`.
    pub fn overlaps(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
        let ends_after = match (since, self.end) {
            (Some(s), Some(e)) => e >= s,
            _ => true,
        };
        ends_after && until.is_none_or(|u| self.start < u)
    }
}

/// A degradation still open at the end of the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSlowPeriod {
    pub record: SlowPeriodRecord,
    /// Index into the runs of the last run that saw it.
    pub last_run: Option<usize>,
}

/// The journal's degradations, replayed in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlowPeriodLedger {
    pub closed: Vec<SlowPeriodRecord>,
    pub open: Vec<OpenSlowPeriod>,
    /// Every degradation id seen.
    pub ids: Vec<String>,
}

impl SlowPeriodLedger {
    /// Replays one journal entry (others are ignored); `run` is the index of
    /// the run that wrote it.
    pub fn apply(&mut self, entry: &Entry, run: Option<usize>) {
        match entry {
            Entry::DegradedStart(e) => {
                self.ids.push(e.id.clone());
                self.open.push(OpenSlowPeriod {
                    record: SlowPeriodRecord::open(e),
                    last_run: run,
                });
            }
            Entry::DegradedResume(e) => {
                if let Some(o) = self.open.iter_mut().find(|o| o.record.id == e.id) {
                    o.record.gaps.push(e.gap);
                    o.record.duration_clock = DurationClock::Wall;
                    o.last_run = run;
                } else {
                    self.ids.push(e.id.clone());
                    self.open.push(OpenSlowPeriod {
                        record: SlowPeriodRecord::resumed(e),
                        last_run: run,
                    });
                }
            }
            Entry::DegradedEnd(e) => {
                let figures = self
                    .open
                    .iter()
                    .find(|o| o.record.id == e.id)
                    .map(|o| o.record.figures.clone());
                self.open.retain(|o| o.record.id != e.id);
                if !self.ids.contains(&e.id) {
                    self.ids.push(e.id.clone());
                }
                self.closed.push(SlowPeriodRecord::ended(e, figures));
            }
            _ => {}
        }
    }

    /// Last moment `o` was known on: the end of the last run that saw it.
    pub fn last_seen(o: &OpenSlowPeriod, runs: &[Run]) -> Timestamp {
        o.last_run
            .and_then(|r| runs.get(r))
            .map_or(o.record.start, |r| r.alive_until)
            .max(o.record.start)
    }

    /// Every degradation, oldest start first; open ones get a duration up to
    /// `now` and, when `watched` is false (no daemon is running), the time
    /// since their last sign of life as a trailing gap.
    pub fn records(&self, runs: &[Run], now: Timestamp, watched: bool) -> Vec<SlowPeriodRecord> {
        let mut out = self.closed.clone();
        for o in &self.open {
            let mut r = o.record.clone();
            r.duration_clock = DurationClock::Wall;
            let until = if watched {
                now
            } else {
                // No daemon watches it: it ended, for reading, at the last
                // sign of life (unobserved), and never grows with `now`.
                let last = Self::last_seen(o, runs);
                r.end = Some(last);
                r.end_observed = Some(false);
                r.observed_until = Some(last);
                last
            };
            r.duration_seconds = until.duration_since(r.start).as_secs_f64().max(0.0);
            out.push(r);
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
        out
    }
}
