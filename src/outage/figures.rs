//! One set of figures: per group, over a period, how long it was monitored,
//! judged, down and up, and its availability. The status page `/`, the
//! report and `GET /api/v1/availability` all call [`Figures::group`] over
//! the same journal, so they cannot disagree.
//!
//! The intervals, all from the journal:
//! - **monitored**: a daemon was running (its runs, the last one up to now
//!   while a daemon watches the journal) and not stalled;
//! - **not yet judged**: monitored, but the group had no verdict yet. The
//!   journal records a verdict only as an outage, so this is the start of a
//!   run up to the group's first outage when that outage began within
//!   [`FIRST_VERDICT_WINDOW`] of the run's start (its streak began with the
//!   run's first probes, so nothing was decided before it), plus, on a live
//!   daemon, the time a group has been `unknown` so far;
//! - **down**: inside one of the group's outages (an open one runs to now
//!   while watched, else to its last sign of life), and monitored;
//! - **judged** = monitored − not yet judged; **up** = judged − down.
//!
//! Availability is up / judged: `None` when nothing was judged, so an
//! undecided or unmonitored group never reads 100 %, and a group that never
//! answered reads 0 %.

use jiff::Timestamp;
use serde::Serialize;

use super::listing;
use crate::journal::lock::Liveness;
use crate::journal::ts_ms;
use crate::journal::{Ledger, OutageRecord};

/// A half-open interval `[from, to)`.
pub type Span = (Timestamp, Timestamp);

/// How soon after a run's start a group's first outage must begin to count
/// as its first verdict of the run (its failing streak began with the first
/// probes). An up verdict first needs `recover_after` successes, then
/// `fail_after` failures: with the default 5 s interval that is 25 s at least.
pub const FIRST_VERDICT_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(20);

/// A group's figures over `[since, until)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    pub group: String,
    #[serde(with = "ts_ms")]
    pub since: Timestamp,
    #[serde(with = "ts_ms")]
    pub until: Timestamp,
    #[serde(serialize_with = "millis")]
    pub period_seconds: f64,
    /// A daemon was running and not stalled.
    #[serde(serialize_with = "millis")]
    pub monitored_seconds: f64,
    /// Monitored, but the group had no verdict yet.
    #[serde(serialize_with = "millis")]
    pub not_judged_seconds: f64,
    /// Monitored and judged (up or down).
    #[serde(serialize_with = "millis")]
    pub judged_seconds: f64,
    #[serde(serialize_with = "millis")]
    pub down_seconds: f64,
    #[serde(serialize_with = "millis")]
    pub up_seconds: f64,
    /// Up / judged in percent; `null` when nothing was judged.
    pub availability_percent: Option<f64>,
    /// Outages overlapping the period.
    pub outages: usize,
    /// Longest of those outages (its whole length, as recorded).
    #[serde(serialize_with = "millis")]
    pub longest_outage_seconds: f64,
}

impl GroupFigures {
    /// Monitored share of the period, in percent.
    pub fn coverage_percent(&self) -> f64 {
        if self.period_seconds > 0.0 {
            100.0 * self.monitored_seconds / self.period_seconds
        } else {
            0.0
        }
    }

    /// Availability for people: `99.95 %` (floored, so 99.999 never reads
    /// 100 %), `not monitored` or `not yet judged`.
    pub fn availability_text(&self) -> String {
        match self.availability_percent {
            Some(a) if a >= 100.0 => "100 %".into(),
            Some(a) => format!("{:.2} %", (a * 100.0).floor() / 100.0),
            None if self.monitored_seconds <= 0.0 => "not monitored".into(),
            None => "not yet judged".into(),
        }
    }
}

fn millis<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

/// The journal read for figures, as of `now`.
pub struct Figures<'a> {
    history: &'a Ledger,
    outages: Vec<OutageRecord>,
    watched: bool,
    now: Timestamp,
    /// Live daemon only: groups without a verdict now, and since when.
    undecided: Vec<(String, Timestamp)>,
}

impl<'a> Figures<'a> {
    /// Figures of `history` read at `now`; `liveness` says whether a daemon
    /// watches it (then open outages and the last run reach `now`).
    pub fn new(history: &'a Ledger, now: Timestamp, liveness: &Liveness) -> Self {
        Self {
            history,
            outages: listing::outages(history, None, now, liveness),
            watched: listing::watched(history, now, liveness),
            now,
            undecided: Vec::new(),
        }
    }

    /// The live daemon's groups without a verdict (`unknown`) and since when
    /// (`None`: since the run started).
    pub fn with_undecided<'g>(
        mut self,
        groups: impl IntoIterator<Item = (&'g str, Option<Timestamp>)>,
    ) -> Self {
        let run_start = self.history.runs.last().map_or(self.now, |r| r.started);
        self.undecided = groups
            .into_iter()
            .map(|(g, since)| (g.to_string(), since.unwrap_or(run_start).max(run_start)))
            .collect();
        self
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Every outage of the journal, open ones as read at `now`, oldest first.
    pub fn outages(&self) -> &[OutageRecord] {
        &self.outages
    }

    /// Groups the journal names (outages, slow periods, path snapshots), sorted.
    pub fn journal_groups(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .outages
            .iter()
            .map(|o| o.group.clone())
            .chain(self.history.paths.iter().map(|p| p.group.clone()))
            .chain(
                self.history
                    .degradations
                    .closed
                    .iter()
                    .map(|d| d.group.clone()),
            )
            .chain(
                self.history
                    .degradations
                    .open
                    .iter()
                    .map(|d| d.record.group.clone()),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// When a daemon was running within `[since, until)`: the union of runs,
    /// clipped; the last run reaches `now` while a daemon watches.
    pub fn runs(&self, since: Timestamp, until: Timestamp) -> Vec<Span> {
        let last = self.history.runs.len().checked_sub(1);
        union(
            self.history
                .runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let end = if self.watched && Some(i) == last {
                        r.alive_until.max(self.now)
                    } else {
                        r.alive_until
                    };
                    clip(r.started, end, since, until)
                })
                .collect(),
        )
    }

    /// Stalls (a running daemon observed nothing) within `[since, until)`.
    pub fn stalls(&self, since: Timestamp, until: Timestamp) -> Vec<Span> {
        union(
            self.history
                .stalls
                .iter()
                .filter_map(|s| clip(s.from, s.to, since, until))
                .collect(),
        )
    }

    /// Monitored time within `[since, until)`: runs less stalls.
    pub fn monitored(&self, since: Timestamp, until: Timestamp) -> Vec<Span> {
        subtract(&self.runs(since, until), &self.stalls(since, until))
    }

    /// Where an outage ends for figures: its end, else `now` while watched,
    /// else its last sign of life.
    pub fn outage_end(&self, o: &OutageRecord) -> Timestamp {
        o.end.or(o.observed_until).unwrap_or(self.now).max(o.start)
    }

    /// The group's outages as spans within `[since, until)` (not yet less
    /// unmonitored time).
    fn outage_spans(&self, group: &str, since: Timestamp, until: Timestamp) -> Vec<Span> {
        union(
            self.outages
                .iter()
                .filter(|o| o.group == group)
                .filter_map(|o| clip(o.start, self.outage_end(o), since, until))
                .collect(),
        )
    }

    /// Where the group had no verdict yet within `[since, until)` (before
    /// removing down or unmonitored time).
    fn not_judged_spans(&self, group: &str, since: Timestamp, until: Timestamp) -> Vec<Span> {
        let mut spans = Vec::new();
        for r in &self.history.runs {
            let first = self
                .outages
                .iter()
                .filter(|o| o.group == group && o.start >= r.started && o.start <= r.alive_until)
                .map(|o| o.start)
                .min();
            let window = r
                .started
                .checked_add(FIRST_VERDICT_WINDOW)
                .unwrap_or(r.started);
            // An outage carried over from the run before covers the start.
            let carried = self
                .outages
                .iter()
                .any(|o| o.group == group && o.start < r.started && self.outage_end(o) > r.started);
            if let Some(f) = first
                && f <= window
                && !carried
                && let Some(s) = clip(r.started, f, since, until)
            {
                spans.push(s);
            }
        }
        for (g, from) in &self.undecided {
            if g == group
                && let Some(s) = clip(*from, self.now, since, until)
            {
                spans.push(s);
            }
        }
        union(spans)
    }

    /// The figures of `group` over `[since, until)`.
    pub fn group(&self, group: &str, since: Timestamp, until: Timestamp) -> GroupFigures {
        let monitored = self.monitored(since, until);
        let down = intersect(&self.outage_spans(group, since, until), &monitored);
        let not_judged = subtract(
            &intersect(&self.not_judged_spans(group, since, until), &monitored),
            &down,
        );
        // Up as spans too, so that "never up" is exactly 0 s, not a
        // difference of two sums off by 1e-14.
        let up = subtract(&subtract(&monitored, &not_judged), &down);
        let monitored_s = total(&monitored);
        let down_s = total(&down);
        let not_judged_s = total(&not_judged);
        let up_s = total(&up);
        let judged = up_s + down_s;
        let of: Vec<&OutageRecord> = self
            .outages
            .iter()
            .filter(|o| o.group == group && o.overlaps(Some(since), Some(until)))
            .collect();
        GroupFigures {
            group: group.to_string(),
            since,
            until,
            period_seconds: secs(since, until),
            monitored_seconds: monitored_s,
            not_judged_seconds: not_judged_s,
            judged_seconds: judged,
            down_seconds: down_s,
            up_seconds: up_s,
            // Judged time under a millisecond is rounding, not a verdict.
            availability_percent: (judged >= 0.001)
                // The ratio first: x / x is exactly 1, 100·x / x need not be.
                .then(|| (100.0 * (up_s / judged)).clamp(0.0, 100.0)),
            outages: of.len(),
            longest_outage_seconds: of.iter().map(|o| o.duration_seconds).fold(0.0, f64::max),
        }
    }

    /// The seconds of the group's outages attributed to each cause within
    /// `[since, until)` and monitored, largest first.
    pub fn down_by_cause(
        &self,
        group: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Vec<(String, f64)> {
        let monitored = self.monitored(since, until);
        let mut by: Vec<(String, f64)> = Vec::new();
        for o in self.outages.iter().filter(|o| o.group == group) {
            let Some(s) = clip(o.start, self.outage_end(o), since, until) else {
                continue;
            };
            let d = total(&intersect(&[s], &monitored));
            match by.iter_mut().find(|(c, _)| *c == o.cause) {
                Some((_, v)) => *v += d,
                None => by.push((o.cause.clone(), d)),
            }
        }
        by.sort_by(|a, b| b.1.total_cmp(&a.1));
        by
    }
}

/// `[a, b)` clipped to `[lo, hi)`, `None` when nothing is left.
pub fn clip(a: Timestamp, b: Timestamp, lo: Timestamp, hi: Timestamp) -> Option<Span> {
    let a = a.max(lo);
    let b = b.min(hi);
    (b > a).then_some((a, b))
}

/// Sorted, disjoint union of `spans`.
pub fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut merged: Vec<Span> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// `spans` less `holes`, both sorted and disjoint.
pub fn subtract(spans: &[Span], holes: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for &(a, b) in spans {
        let mut cursor = a;
        for &(ha, hb) in holes {
            if hb <= cursor || ha >= b {
                continue;
            }
            if ha > cursor {
                out.push((cursor, ha));
            }
            cursor = cursor.max(hb);
        }
        if cursor < b {
            out.push((cursor, b));
        }
    }
    out
}

/// The parts of `a` inside `b`, both sorted and disjoint.
pub fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for &(x, y) in a {
        for &(p, q) in b {
            if let Some(s) = clip(x, y, p, q) {
                out.push(s);
            }
        }
    }
    union(out)
}

/// Seconds covered by `spans`.
pub fn total(spans: &[Span]) -> f64 {
    // A fold from +0.0: an empty `sum()` of f64 is -0.0, which JSON shows.
    spans
        .iter()
        .map(|(a, b)| secs(*a, *b))
        .fold(0.0, |x, y| x + y)
}

/// Seconds from `a` to `b`, never negative.
pub fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64().max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
