//! The journal's read model, the **ledger**: everything on disk about past
//! runs, loaded once and replayed in order: runs, outages, slow periods,
//! stalls and path snapshots, the journal's problems and chain tail, the
//! heartbeat, and what peers said (corroboration attached to its period,
//! witnessed heads: `peer`). Used by recovery at start, by `linkwatch outages`, by
//! `linkwatch report`, by the status page and by the API. (`crate::history`
//! is the per-minute RTT store, a different thing.)

mod outage;
mod peer;
#[cfg(test)]
pub(crate) mod peer_fixture;
mod run;
mod slow;

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::journal::chain::ChainHead;
use crate::journal::contents::{
    ChainTail, Continuation, JournalWarning, NumberedLine, WarningKind,
};
use crate::journal::heartbeat::{Heartbeat, read_heartbeat};
use crate::journal::line::{Entry, Line};
use crate::journal::read::{check_anchors, read};
use crate::journal::record::gap::push_gap;
use crate::journal::record::outage::DurationClock;
use crate::journal::record::path::PathEvent;
use crate::journal::record::stall::Stalled;
use crate::journal::record::{DaemonStart, InterferenceSeen, OutageResumed, PeriodKind};

pub use outage::{OpenOutage, OutageRecord};
pub use peer::{
    Corroborations, DESTINATION, Elsewhere, PeerJudgement, PeerWitnessReceived, PeerWitnessed,
    Witnesses, loss_text, target_word, verdict_word,
};
pub use run::{Run, RunConfig};
pub use slow::{OpenSlowPeriod, SlowPeriodLedger, SlowPeriodRecord};

/// Reading the journal failed as a whole (the file exists but cannot be read).
#[derive(Debug, thiserror::Error)]
#[error("failed to read the outage journal in {}: {source}", dir.display())]
pub struct ReadError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn corroborate_outage(c: &Corroborations, r: &mut OutageRecord, ended: bool) {
    let events = c.of(PeriodKind::Outage, &r.id);
    if !events.is_empty() {
        r.elsewhere.attach(&mut r.cause, events, ended);
    }
}

fn corroborate_slow(c: &Corroborations, r: &mut SlowPeriodRecord, ended: bool) {
    let events = c.of(PeriodKind::Slow, &r.id);
    if !events.is_empty() {
        r.elsewhere.attach(&mut r.cause, events, ended);
    }
}

/// Everything the journal and the heartbeat say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ledger {
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
    /// files add, see `fallback`).
    pub tail: ChainTail,
    /// What fallback files add to the journal file: the next start appends it.
    pub continuation: Continuation,
    /// Lines in the file, skipped ones included.
    pub total_lines: u64,
    /// Lines that parsed as journal lines.
    pub valid_lines: u64,
    /// The heartbeat file, when there is a readable one.
    pub heartbeat: Option<Heartbeat>,
    /// Why the heartbeat file could not be read, when it exists but cannot.
    pub heartbeat_error: Option<String>,
    /// Degradation periods (slow, not down).
    pub degradations: SlowPeriodLedger,
    /// Every `corroboration` event, by period (already attached to the
    /// records above; kept for records read elsewhere, see
    /// [`Ledger::corroborate_outage`]).
    pub corroborations: Corroborations,
    /// `witnessed` and `witness` events.
    pub witnesses: Witnesses,
    /// `interference` events (signs of interference), in journal order.
    pub interference: Vec<InterferenceSeen>,
}

impl Ledger {
    /// Reads `<data_dir>/journal.jsonl` once (a missing file is an empty
    /// journal) and the heartbeat, and replays them.
    ///
    /// The heartbeat extends its run's `alive_until` whether or not that run
    /// stopped cleanly: a clean stop writes its last heartbeat just before
    /// `daemon_stop`, so the `max` changes nothing there, and where the stop
    /// line is missing the heartbeat is the best evidence of life there is.
    pub fn load(data_dir: &Path) -> Result<Self, ReadError> {
        let contents = read(data_dir).map_err(|source| ReadError {
            dir: data_dir.to_path_buf(),
            source,
        })?;
        let mut history = Self::rebuild(&contents.lines);
        match read_heartbeat(data_dir) {
            Ok(hb) => history.heartbeat = hb,
            Err(e) => history.heartbeat_error = Some(e),
        }
        if let (Some(hb), Some(run)) = (&history.heartbeat, history.runs.last_mut())
            && hb.run == run.start_seq
        {
            run.alive_until = run.alive_until.max(hb.wall);
        }
        let anchors = check_anchors(
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
            .find(|w| w.kind == WarningKind::ChainBroken)
    }

    /// Replays journal lines in order.
    pub fn rebuild(lines: &[NumberedLine]) -> Self {
        let mut h = Ledger {
            valid_lines: lines.len() as u64,
            ..Ledger::default()
        };
        for nl in lines {
            let line = &nl.line;
            if let Some(run) = h.runs.last_mut()
                && !matches!(line.entry, Entry::DaemonStart(_))
            {
                run.alive_until = run.alive_until.max(line.ts);
            }
            match &line.entry {
                Entry::DaemonStart(ds) => h.start_run(line, ds),
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
                Entry::OutageResume(e) => h.resume_outage(e),
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
                // Peer evidence: read by peer-show's ledger work (issue 20).
                Entry::Path(p) => h.paths.push(p.clone()),
                Entry::OutageEnd(e) => {
                    h.open.retain(|o| o.record.id != e.id);
                    if !h.ids.contains(&e.id) {
                        h.ids.push(e.id.clone());
                    }
                    h.closed.push(OutageRecord::from(e));
                }
                Entry::Corroboration(c) => h.corroborations.add(c),
                Entry::Witnessed(w) => h.witnesses.witnessed(w, line.ts),
                Entry::Witness(w) => h.witnesses.received(w, line.ts),
                Entry::Interference(i) => h.interference.push(i.clone()),
            }
        }
        h.attach_corroboration();
        h
    }

    /// Attaches the `corroboration` events to their records (an event may
    /// come before its period's end line: the whole journal is read first).
    fn attach_corroboration(&mut self) {
        if self.corroborations.is_empty() {
            return;
        }
        let c = &self.corroborations;
        for r in &mut self.closed {
            corroborate_outage(c, r, true);
        }
        for o in &mut self.open {
            corroborate_outage(c, &mut o.record, false);
        }
        for r in &mut self.degradations.closed {
            corroborate_slow(c, r, true);
        }
        for o in &mut self.degradations.open {
            corroborate_slow(c, &mut o.record, false);
        }
    }

    /// Whether the journal holds anything peers said (corroboration or
    /// witness events).
    pub fn has_peer_evidence(&self) -> bool {
        !self.corroborations.is_empty() || !self.witnesses.is_empty()
    }

    /// Attaches what peers said of outage `r` (a record read elsewhere, e.g.
    /// the running daemon's live view); `cause` reads `destination` only
    /// once it ended.
    pub fn corroborate_outage(&self, r: &mut OutageRecord) {
        let ended = r.end.is_some();
        corroborate_outage(&self.corroborations, r, ended);
    }

    /// [`Self::corroborate_outage`] for a slow period.
    pub fn corroborate_slow(&self, r: &mut SlowPeriodRecord) {
        let ended = r.end.is_some() && r.observed_until.is_none();
        corroborate_slow(&self.corroborations, r, ended);
    }

    /// A `daemon_start` line: the previous run was alive at least until the
    /// line says, and a new run begins.
    fn start_run(&mut self, line: &Line, ds: &DaemonStart) {
        if let (Some(prev), Some(until)) = (self.runs.last_mut(), ds.previous_run_alive_until) {
            prev.alive_until = prev.alive_until.max(until);
        }
        self.runs.push(Run {
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

    /// An `outage_resume` line: the open outage goes on in the current run
    /// (or, its start line lost, opens from what this line says).
    fn resume_outage(&mut self, e: &OutageResumed) {
        let last_run = self.runs.len().checked_sub(1);
        if let Some(o) = self.open.iter_mut().find(|o| o.record.id == e.id) {
            o.record.gaps.push(e.gap);
            o.record.targets = e.targets.clone();
            o.record.duration_clock = DurationClock::Wall;
            o.last_run = last_run;
        } else {
            // Its start line is lost (corrupt); keep what this line says.
            self.ids.push(e.id.clone());
            self.open.push(OpenOutage {
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

    /// Last moment outage `o` was known down: the end of the last run that saw it.
    pub fn last_seen(&self, o: &OpenOutage) -> Timestamp {
        o.last_run
            .and_then(|r| self.runs.get(r))
            .map_or(o.record.start, |r| r.alive_until)
            .max(o.record.start)
    }
}
