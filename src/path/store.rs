//! The snapshots kept for the API, and records annotated with theirs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use serde::Serialize;

use super::event::{PathEvent, PathSummary, When};

/// Snapshots kept in memory for the API (the journal keeps them all).
pub const MAX_KEPT: usize = 4096;

/// The snapshots the API serves: those of earlier runs (from the journal)
/// and this run's, oldest first, at most [`MAX_KEPT`].
#[derive(Clone, Default)]
pub struct PathStore(Arc<RwLock<VecDeque<PathEvent>>>);

impl PathStore {
    pub fn new(earlier: &[PathEvent]) -> Self {
        let skip = earlier.len().saturating_sub(MAX_KEPT);
        Self(Arc::new(RwLock::new(
            earlier.iter().skip(skip).cloned().collect(),
        )))
    }

    pub(super) fn push(&self, e: PathEvent) {
        let mut v = self.0.write().unwrap_or_else(|p| p.into_inner());
        if v.len() >= MAX_KEPT {
            v.pop_front();
        }
        v.push_back(e);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<PathEvent>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Snapshots of `group` (all when `None`) taken at or after `since`, oldest first.
    pub fn query(&self, group: Option<&str>, since: Option<Timestamp>) -> Vec<PathEvent> {
        self.read()
            .iter()
            .filter(|e| group.is_none_or(|g| e.group == g))
            .filter(|e| since.is_none_or(|s| e.at >= s))
            .cloned()
            .collect()
    }

    /// The last baseline of `group`.
    pub fn last_baseline(&self, group: &str) -> Option<PathEvent> {
        self.read()
            .iter()
            .rev()
            .find(|e| e.group == group && e.when == When::Baseline)
            .cloned()
    }

    /// The summary of the snapshot taken at `when` of the outage or
    /// degradation `id` (the latest, should there be more than one).
    pub fn summary(&self, id: &str, when: When) -> Option<PathSummary> {
        self.read()
            .iter()
            .rev()
            .find(|e| e.when == when && e.id.as_deref() == Some(id))
            .map(PathEvent::summary)
    }

    /// `records`, each with its start and end snapshot summaries.
    pub fn annotate<R: PeriodRecord>(&self, records: Vec<R>) -> Vec<WithPaths<R>> {
        records
            .into_iter()
            .map(|record| WithPaths {
                path_at_start: self.summary(record.period_id(), When::Start),
                path_at_end: self.summary(record.period_id(), When::End),
                record,
            })
            .collect()
    }
}

/// A record that snapshots are tied to by its id (`PathEvent::id`): an
/// outage's or a slow period's.
pub trait PeriodRecord {
    fn period_id(&self) -> &str;
}

/// A record as the API shows it: the record and its path summaries
/// (`OutageWithPaths` for an outage record).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithPaths<R> {
    #[serde(flatten)]
    pub record: R,
    pub path_at_start: Option<PathSummary>,
    pub path_at_end: Option<PathSummary>,
}

/// `records`, each with the summaries of its start and end snapshots among
/// `paths` (the journal's, all of them: what `linkwatch outages` shows).
pub fn with_paths<R: PeriodRecord>(records: Vec<R>, paths: &[PathEvent]) -> Vec<WithPaths<R>> {
    let mut latest: HashMap<(&str, When), &PathEvent> = HashMap::new();
    for p in paths {
        if let Some(id) = p.id.as_deref() {
            latest.insert((id, p.when), p);
        }
    }
    let summary = |id: &str, when: When| latest.get(&(id, when)).map(|p| p.summary());
    records
        .into_iter()
        .map(|record| WithPaths {
            path_at_start: summary(record.period_id(), When::Start),
            path_at_end: summary(record.period_id(), When::End),
            record,
        })
        .collect()
}

/// An outage record as the API shows it: the record and its path summaries.
pub type OutageWithPaths = WithPaths<crate::journal::OutageRecord>;

impl PeriodRecord for crate::journal::OutageRecord {
    fn period_id(&self) -> &str {
        &self.id
    }
}
