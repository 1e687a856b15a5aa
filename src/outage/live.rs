//! The live view of outages and states that the HTTP API and status page read:
//! written by the service as the detector decides, read through [`OutageHandle`].

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::degraded::{self, LiveSlowPeriods, SlowPeriodRecord};
use super::detector::{Detector, State};
use super::stall::StallWatch;
use crate::config::Config;
use crate::journal::Anchor;
use crate::journal::InterferenceSummary;
use crate::journal::JournalHealth;
use crate::journal::OutageRecord;
use crate::journal::PathEvent;
use crate::journal::ts_ms;
use crate::journal::{Gap, OutageEnded, OutageResumed, OutageStarted};
use crate::path::{OutageWithPaths, PathStore};

/// A group's state for the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub needs: Option<String>,
    pub state: State,
    #[serde(with = "ts_ms::option")]
    pub since: Option<Timestamp>,
    /// Id of the open outage, if any.
    pub outage: Option<String>,
    /// Slow while up (see `[group.degraded]`); `null` while not yet known.
    pub degraded: Option<bool>,
}

/// An outage open in this process.
#[derive(Debug, Clone)]
pub struct OpenEntry {
    pub record: OutageRecord,
    /// Monotonic offset of the start, when it started in this process.
    pub start_mono: Option<Duration>,
}

/// Outages and states as this process knows them.
#[derive(Debug, Default)]
pub struct LiveOutages {
    closed: Vec<OutageRecord>,
    open: Vec<OpenEntry>,
    groups: Vec<GroupStatus>,
}

impl LiveOutages {
    /// Every target and group unknown; `closed` and `open` from the journal
    /// and recovery; groups show the outage the detector adopted.
    pub fn new(
        config: &Config,
        detector: &Detector,
        closed: Vec<OutageRecord>,
        open: Vec<OpenEntry>,
    ) -> Self {
        let groups = config
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| GroupStatus {
                name: grp.name.clone(),
                needs: grp.needs.clone(),
                state: State::Unknown,
                since: None,
                outage: detector.open_outage(g).map(str::to_string),
                degraded: None,
            })
            .collect();
        Self {
            closed,
            open,
            groups,
        }
    }

    /// After a reload: the groups of `config`, in its order; a kept group
    /// keeps what is shown of it, an added one starts unknown.
    pub fn regroup(&mut self, config: &Config, detector: &Detector) {
        let before = std::mem::take(&mut self.groups);
        self.groups = config
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let kept = before.iter().find(|b| b.name == grp.name);
                GroupStatus {
                    name: grp.name.clone(),
                    needs: grp.needs.clone(),
                    state: kept.map_or(State::Unknown, |k| k.state),
                    since: kept.and_then(|k| k.since),
                    outage: detector.open_outage(g).map(str::to_string),
                    degraded: None,
                }
            })
            .collect();
    }

    pub fn set_group(
        &mut self,
        group: usize,
        state: State,
        since: Timestamp,
        outage: Option<String>,
    ) {
        if let Some(g) = self.groups.get_mut(group) {
            g.state = state;
            g.since = Some(since);
            g.outage = outage;
        }
    }

    pub fn started(&mut self, e: &OutageStarted, start_mono: Option<Duration>) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.name == e.group) {
            g.outage = Some(e.id.clone());
        }
        let record = OutageRecord::started(e);
        self.open.push(OpenEntry { record, start_mono });
    }

    /// The interference summary of open outage `id` so far.
    pub fn set_interference(&mut self, id: &str, summary: InterferenceSummary) {
        if let Some(o) = self.open.iter_mut().find(|o| o.record.id == id) {
            o.record.interference = Some(Box::new(summary));
        }
    }

    /// The gaps of open outage `id` are now `gaps` (a stall overlapped it).
    pub fn set_gaps(&mut self, id: &str, gaps: &[Gap]) {
        if let Some(o) = self.open.iter_mut().find(|o| o.record.id == id) {
            o.record.gaps = gaps.to_vec();
        }
    }

    pub fn resumed(&mut self, e: &OutageResumed) {
        if let Some(o) = self.open.iter_mut().find(|o| o.record.id == e.id) {
            // Replace the provisional gap with the recorded one.
            o.record.gaps.pop();
            o.record.gaps.push(e.gap);
            o.record.targets = e.targets.clone();
        }
    }

    pub fn ended(&mut self, e: &OutageEnded) {
        self.open.retain(|o| o.record.id != e.id);
        if let Some(g) = self.groups.iter_mut().find(|g| g.name == e.group) {
            g.outage = None;
        }
        self.closed.push(OutageRecord::from(e));
    }
}

/// Cheap, cloneable read access for the HTTP API and status page.
#[derive(Clone)]
pub struct OutageHandle {
    pub(super) live: Arc<RwLock<LiveOutages>>,
    pub(super) degradations: Arc<RwLock<LiveSlowPeriods>>,
    pub(super) anchor: Anchor,
    pub(super) journal: JournalHealth,
    /// Maps the monotonic clock to the detector's (which counts suspends).
    pub(super) stalls: Arc<Mutex<StallWatch>>,
    /// Path snapshots (earlier runs' and this run's).
    pub(super) paths: PathStore,
}

impl OutageHandle {
    /// Outages overlapping `[since, until)`, oldest first; open ones have `end: None`
    /// and their duration so far.
    pub fn outages(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Vec<OutageRecord> {
        let now_mono = {
            let w = self.stalls.lock().unwrap_or_else(|p| p.into_inner());
            w.elapsed(self.anchor.elapsed())
        };
        let live = read(&self.live);
        let now = Timestamp::now();
        let mut out: Vec<OutageRecord> = live
            .closed
            .iter()
            .filter(|r| r.overlaps(since, until))
            .cloned()
            .collect();
        for o in &live.open {
            let mut r = o.record.clone();
            r.duration_seconds = match o.start_mono {
                Some(s) => now_mono.saturating_sub(s).as_secs_f64(),
                None => now.duration_since(r.start).as_secs_f64().max(0.0),
            };
            if r.overlaps(since, until) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Slow periods overlapping `[since, until)`, oldest first; open ones have
    /// `end: None` and their duration so far.
    pub fn degradations(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Vec<SlowPeriodRecord> {
        degraded::read(&self.degradations).records(
            since,
            until,
            Timestamp::now(),
            self.anchor.elapsed(),
        )
    }

    /// Whether group `name` is degraded now (`None`: not yet known).
    pub fn group_degraded(&self, name: &str) -> Option<bool> {
        degraded::read(&self.degradations).group_degraded(name)
    }

    /// `Err` with a reason when journal writes have stalled beyond
    /// [`crate::journal::STALL_BOUND`] (`/healthz` and the watchdog use it).
    pub fn journal_health(&self) -> Result<(), String> {
        self.journal.check()
    }

    /// [`Self::outages`] with each outage's path snapshot summaries.
    pub fn outages_with_paths(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Vec<OutageWithPaths> {
        self.paths.annotate(self.outages(since, until))
    }

    /// Path snapshots of `group` (every group when `None`) since `since`, oldest first.
    pub fn paths(&self, group: Option<&str>, since: Option<Timestamp>) -> Vec<PathEvent> {
        self.paths.query(group, since)
    }

    /// Every group with its state, in configuration order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        let mut groups = read(&self.live).groups.clone();
        let slow = degraded::read(&self.degradations);
        for g in &mut groups {
            g.degraded = slow.group_degraded(&g.name);
        }
        groups
    }
}

/// A poisoned lock still holds consistent data here (every writer does one
/// small update), so the guard is taken either way.
pub(super) fn read(lock: &RwLock<LiveOutages>) -> RwLockReadGuard<'_, LiveOutages> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn write(lock: &RwLock<LiveOutages>) -> RwLockWriteGuard<'_, LiveOutages> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
