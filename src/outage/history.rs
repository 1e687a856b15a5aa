//! Everything on disk about past runs, loaded once: the journal's outages and
//! runs, its problems and chain tail, and the heartbeat. Used by recovery at
//! start, by `linkwatch outages` and by `linkwatch report`.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use super::degraded::DegradationHistory;
use super::event::{
    DurationClock, EndReason, Gap, OutageEnded, OutageStarted, PlanRecord, Stalled,
    ThroughputTarget, push_gap,
};
use super::journal::{self, ChainHead, ChainTail, Entry, Heartbeat, JournalWarning, NumberedLine};
use super::ts_ms;
use crate::path::{PathEvent, PeriodRecord, WithPaths};

/// Reading the journal failed as a whole (the file exists but cannot be read).
#[derive(Debug, thiserror::Error)]
#[error("failed to read the outage journal in {}: {source}", dir.display())]
pub struct ReadError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

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
        }
    }
}

/// An outage record as the API shows it: the record and its path summaries.
pub type OutageWithPaths = WithPaths<OutageRecord>;

impl PeriodRecord for OutageRecord {
    fn period_id(&self) -> &str {
        &self.id
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
        }
    }

    /// The record of an outage as its `outage_start` line says it began.
    pub fn started(e: &OutageStarted) -> Self {
        Self {
            start_observed: e.start_observed,
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

/// An outage still open at the end of the journal, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOutage {
    pub record: OutageRecord,
    /// Index into [`History::runs`] of the last run that saw it down.
    pub last_run: Option<usize>,
}

/// Everything the journal and the heartbeat say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Closed outages in journal order.
    pub closed: Vec<OutageRecord>,
    /// Outages with no `outage_end`, in journal order.
    pub open: Vec<OpenOutage>,
    /// Stalls of running daemons (periods they observed nothing), in journal order.
    pub stalls: Vec<Stalled>,
    pub runs: Vec<Run>,
    /// Every outage id seen.
    pub ids: Vec<String>,
    /// Every problem found in the journal, by line number.
    pub warnings: Vec<JournalWarning>,
    /// Path snapshots in journal order.
    pub paths: Vec<PathEvent>,
    /// Where the next line continues the chain (after lines that fallback
    /// files add, see [`journal::fallback`]).
    pub tail: ChainTail,
    /// What fallback files add to the journal file: the next start appends it.
    pub continuation: journal::Continuation,
    /// Lines in the file, skipped ones included.
    pub total_lines: u64,
    /// Lines that parsed as journal lines.
    pub valid_lines: u64,
    /// The heartbeat file, when there is a readable one.
    pub heartbeat: Option<Heartbeat>,
    /// Why the heartbeat file could not be read, when it exists but cannot.
    pub heartbeat_error: Option<String>,
    /// Degradation periods (slow, not down).
    pub degradations: DegradationHistory,
}

impl History {
    /// Reads `<data_dir>/journal.jsonl` once (a missing file is an empty
    /// journal) and the heartbeat, and replays them.
    ///
    /// The heartbeat extends its run's `alive_until` whether or not that run
    /// stopped cleanly: a clean stop writes its last heartbeat just before
    /// `daemon_stop`, so the `max` changes nothing there, and where the stop
    /// line is missing the heartbeat is the best evidence of life there is.
    pub fn load(data_dir: &Path) -> Result<Self, ReadError> {
        let contents = journal::read(data_dir).map_err(|source| ReadError {
            dir: data_dir.to_path_buf(),
            source,
        })?;
        let mut history = Self::rebuild(&contents.lines);
        match journal::read_heartbeat(data_dir) {
            Ok(hb) => history.heartbeat = hb,
            Err(e) => history.heartbeat_error = Some(e),
        }
        if let (Some(hb), Some(run)) = (&history.heartbeat, history.runs.last_mut())
            && hb.run == run.start_seq
        {
            run.alive_until = run.alive_until.max(hb.wall);
        }
        let anchors = journal::check_anchors(
            &contents,
            history.heartbeat.as_ref().and_then(|hb| hb.head.as_ref()),
        );
        history.warnings = contents.warnings;
        history.warnings.extend(anchors);
        history.tail = contents.tail;
        history.continuation = contents.continuation;
        history.total_lines = contents.total_lines;
        Ok(history)
    }

    /// The last line of the chain, `None` for an empty journal.
    pub fn head(&self) -> Option<ChainHead> {
        self.tail.next_seq.checked_sub(1).map(|seq| ChainHead {
            seq,
            hash: self.tail.last_hash.clone(),
        })
    }

    /// The first line where the hash chain is broken.
    pub fn first_chain_break(&self) -> Option<&JournalWarning> {
        self.warnings
            .iter()
            .find(|w| w.kind == journal::WarningKind::ChainBroken)
    }

    /// Replays journal lines in order.
    pub fn rebuild(lines: &[NumberedLine]) -> Self {
        let mut h = History {
            valid_lines: lines.len() as u64,
            ..History::default()
        };
        for nl in lines {
            let line = &nl.line;
            if let Some(run) = h.runs.last_mut()
                && !matches!(line.entry, Entry::DaemonStart(_))
            {
                run.alive_until = run.alive_until.max(line.ts);
            }
            match &line.entry {
                Entry::DaemonStart(ds) => {
                    if let (Some(prev), Some(until)) =
                        (h.runs.last_mut(), ds.previous_run_alive_until)
                    {
                        prev.alive_until = prev.alive_until.max(until);
                    }
                    h.runs.push(Run {
                        start_seq: line.seq,
                        started: line.ts,
                        alive_until: line.ts,
                        clean: false,
                        clock_synchronized: ds.clock_synchronized,
                        site: ds.site.clone(),
                        config_source: ds.config_source.clone(),
                        plan: ds.plan,
                        throughput_targets: ds.throughput_targets.clone(),
                        reloads: Vec::new(),
                    });
                }
                Entry::DaemonStop(_) => {
                    if let Some(run) = h.runs.last_mut() {
                        run.clean = true;
                    }
                }
                Entry::OutageStart(e) => {
                    h.ids.push(e.id.clone());
                    let record = OutageRecord::started(e);
                    h.open.push(OpenOutage {
                        record,
                        last_run: h.runs.len().checked_sub(1),
                    });
                }
                Entry::Stall(st) => {
                    // Every outage open at this point was open across it.
                    for o in &mut h.open {
                        push_gap(&mut o.record.gaps, st.gap());
                    }
                    h.stalls.push(st.clone());
                }
                Entry::OutageResume(e) => {
                    let last_run = h.runs.len().checked_sub(1);
                    if let Some(o) = h.open.iter_mut().find(|o| o.record.id == e.id) {
                        o.record.gaps.push(e.gap);
                        o.record.targets = e.targets.clone();
                        o.record.duration_clock = DurationClock::Wall;
                        o.last_run = last_run;
                    } else {
                        // Its start line is lost (corrupt); keep what this line says.
                        h.ids.push(e.id.clone());
                        h.open.push(OpenOutage {
                            record: OutageRecord::open(
                                &e.id,
                                &e.group,
                                &e.cause,
                                e.start,
                                &e.targets,
                                vec![e.gap],
                                DurationClock::Wall,
                            ),
                            last_run,
                        });
                    }
                }
                Entry::DegradedStart(_) | Entry::DegradedResume(_) | Entry::DegradedEnd(_) => {
                    let run = h.runs.len().checked_sub(1);
                    h.degradations.apply(&line.entry, run);
                }
                Entry::ConfigReload(r) => {
                    if let Some(run) = h.runs.last_mut() {
                        run.reloads.push(RunConfig {
                            at: line.ts,
                            plan: r.plan,
                            throughput_targets: r.throughput_targets.clone(),
                        });
                    }
                }
                Entry::JournalReopened(_) => {}
                Entry::Path(p) => h.paths.push(p.clone()),
                Entry::OutageEnd(e) => {
                    h.open.retain(|o| o.record.id != e.id);
                    if !h.ids.contains(&e.id) {
                        h.ids.push(e.id.clone());
                    }
                    h.closed.push(OutageRecord::from(e));
                }
            }
        }
        h
    }

    /// Last moment outage `o` was known down: the end of the last run that saw it.
    pub fn last_seen(&self, o: &OpenOutage) -> Timestamp {
        o.last_run
            .and_then(|r| self.runs.get(r))
            .map_or(o.record.start, |r| r.alive_until)
            .max(o.record.start)
    }
}
