//! The history store: per target, one summary per minute (probes, failures
//! and an RTT histogram good for median, p10/p90, min and max), plus every
//! throughput test as it was measured. It is what the status page's charts
//! and `GET /api/v1/history` read, and it survives restarts.
//!
//! # On disk
//! Three layers in `<data_dir>/history` (see [`layers`] and [`sealed`]):
//! - raw: `<YYYY-MM-DD>T<HH>.<run>.lwh`, one text file per UTC hour and
//!   daemon run (`run` = the run's start in Unix milliseconds), so two runs
//!   never share a file and nothing is rewritten. Lines, tab separated, each
//!   naming its target, so that every line stands alone:
//!
//! ```text
//! m  <minute> <target name> <probes> <failures> <sum_us> <min_us> <max_us> <bucket:count,…>
//! t  <at_ms> <target name> <bytes> <seconds> <bits_per_second>   (a throughput test)
//! ```
//!
//! - sealed minutes: `<YYYY-MM-DD>T<HH>.m.lwx`, an hour of every target,
//!   binary, indexed by target, written [`SEAL_AFTER`] after the hour ends;
//! - sealed hours: `<YYYY-MM-DD>.h.lwx`, a day of hourly summaries (probes,
//!   failures, monitored minutes, the same RTT histogram, every throughput
//!   test), written from the day's minute files once it is over.
//!
//! Minute files are kept `minutes_days`, hour files `hours_days`
//! (`[history]`); a read takes each hour of its period from one layer.
//!
//! `minute` is Unix seconds / 60. Rows are appended in batches by
//! [`HistoryStore::flush`] (the daemon calls it every [`FLUSH_INTERVAL`] and at
//! shutdown): one `write` and one `fsync` per batch, never one per probe. A
//! minute may appear in several rows (a partial minute flushed at shutdown,
//! then continued by the next run): readers add them up. The flush also runs
//! the upkeep (sealing, roll-ups, expiry) every five minutes.
//!
//! Files of earlier releases (`<YYYY-MM-DD>.<run>.lwh`, one per day; format
//! 1: a name table `N <idx> <name>` at the start and after a reload, rows
//! `M`/`T` with the index) are read too, and sealed and rolled up like the
//! hourly ones.
//!
//! # Damage
//! The reader takes every line that reads as one and skips the rest: a torn
//! last line (a crash mid-write), garbage (up to the next line end, control
//! byte or line start), a line with a mangled name. Control bytes split lines
//! (a line end turned into NUL loses nothing), and a line start found inside
//! garbage is read from there. What was skipped is counted per file
//! ([`FileDamage`]): said once per file and process in the log, counted in
//! `linkwatch_history_damaged_rows_total`, and listed with every answer it
//! touches (`damaged_files`). In a format 1 file, rows whose name line was lost
//! count as damaged: format 2 has no such line to lose.
//!
//! # Bound
//! Disk use per target: ~22 bytes per probed minute for the days of
//! minutes, ~30 bytes per probed hour for the days of hours (plus each
//! file's index, ~40 bytes and the name per target), and the raw text of
//! the last hour or so (~61 bytes plus the name per minute). Measured
//! figures: `cargo bench --bench history_gen` and BENCHMARKS.md.

mod bucket;
mod error;
mod file;
mod layers;
mod query;
mod row;
pub mod sealed;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;

use crate::config::Config;
use crate::probe::{Outcome, ProbeResult};

use bucket::Tally;
pub use bucket::{BUCKETS, Minute};
pub use error::HistoryError;
pub use layers::{Retention, SEAL_AFTER, Upkeep, Used};
pub use query::{HistoryQuery, Point, QueryError, Series, TargetTests};
pub use row::{FileDamage, LoadedRow, RowSink, Throughput};

/// How often buffered rows are written (and fsynced).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(60);
/// An HTTP response body at least this long counts as a throughput test.
pub const THROUGHPUT_MIN_BYTES: u64 = 1 << 20;

/// The store: in-memory accumulators for the current minute, rows waiting
/// for the next flush, and the files of earlier batches and runs.
pub struct HistoryStore {
    dir: PathBuf,
    /// Target names and kinds by index; replaced by a reload.
    layout: RwLock<Layout>,
    inner: Mutex<Inner>,
    /// Serialises flushes (the buffer lock is not held while writing).
    writer: Mutex<file::Writer>,
    /// `linkwatch_history_damaged_rows_total`.
    damaged_rows: prometheus::IntCounter,
    /// Damaged rows counted so far, by file (every query reads them again).
    counted: Mutex<std::collections::HashMap<PathBuf, u64>>,
    /// Files found undamaged: later queries skip their unwanted rows unchecked.
    clean: file::Clean,
    /// How long each layer is kept; replaced by a reload.
    retention: Mutex<Retention>,
    /// Held by reads (shared) and by the upkeep while it deletes files.
    swap: RwLock<()>,
    /// The upkeep's last five-minute slot (`None`: due at the next flush).
    upkeep: Mutex<Option<i64>>,
}

/// What the indices of results and rows mean.
struct Layout {
    /// Shared with the writer (one copy of 10 000 names, not two).
    names: Arc<[String]>,
    /// Throughput targets (by index): every successful result is a test.
    throughput: Vec<bool>,
}

#[derive(Default)]
struct Inner {
    /// Per target: the minute being accumulated (empty: none yet).
    current: Vec<Tally>,
    /// Finished minutes and throughput tests not yet written.
    pending: Vec<row::Row>,
    /// A reload's new name table, for the writer before `pending`'s rows.
    rename: Option<Arc<[String]>>,
}

impl HistoryStore {
    /// Opens (creates) `<data_dir>/history` for a run starting now.
    pub fn open(config: &Config) -> Result<Self, HistoryError> {
        let store = Self::open_at(
            &config.daemon.data_dir,
            config
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.kind().as_str() == "throughput"))
                .collect(),
            Timestamp::now(),
        )?;
        store.set_retention(config.history);
        Ok(store)
    }

    /// How long each layer is kept from now on (a reload may change it).
    pub fn set_retention(&self, keep: Retention) {
        *self.retention.lock().unwrap_or_else(|p| p.into_inner()) = keep;
    }

    /// How long each layer is kept.
    pub fn retention(&self) -> Retention {
        *self.retention.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the store under `data_dir` for targets `(name, is_throughput)`.
    pub fn open_at(
        data_dir: &Path,
        targets: Vec<(String, bool)>,
        now: Timestamp,
    ) -> Result<Self, HistoryError> {
        let dir = data_dir.join("history");
        std::fs::create_dir_all(&dir).map_err(|source| HistoryError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let (names, throughput): (Vec<String>, Vec<bool>) = targets.into_iter().unzip();
        let names: Arc<[String]> = names.into();
        let run = now.as_millisecond();
        Ok(Self {
            writer: Mutex::new(file::Writer::new(dir.clone(), run, names.clone())),
            dir,
            inner: Mutex::new(Inner {
                current: vec![Tally::default(); names.len()],
                pending: Vec::new(),
                rename: None,
            }),
            layout: RwLock::new(Layout { names, throughput }),
            damaged_rows: prometheus::IntCounter::new(
                "linkwatch_history_damaged_rows_total",
                "History rows skipped as damaged (unreadable stretches of the files, rows whose target's name was lost), each file counted once.",
            )
            .map_err(|e| HistoryError::Metric(e.to_string()))?,
            counted: Mutex::default(),
            clean: file::Clean::default(),
            retention: Mutex::new(Retention::default()),
            swap: RwLock::new(()),
            upkeep: Mutex::new(None),
        })
    }

    /// Registers the store's metric (`linkwatch_history_damaged_rows_total`).
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> Result<(), HistoryError> {
        registry
            .register(Box::new(self.damaged_rows.clone()))
            .map_err(|e| HistoryError::Metric(e.to_string()))
    }

    /// Counts the damaged rows of `found` not counted yet.
    fn count_damage(&self, found: &[(PathBuf, FileDamage)]) -> Vec<FileDamage> {
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        for (path, d) in found {
            let seen = counted.entry(path.clone()).or_default();
            if d.damaged_rows > *seen {
                self.damaged_rows.inc_by(d.damaged_rows - *seen);
                *seen = d.damaged_rows;
            }
        }
        found.iter().map(|(_, d)| d.clone()).collect()
    }

    fn layout(&self) -> std::sync::RwLockReadGuard<'_, Layout> {
        self.layout.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a configuration reload: `targets` are the new ones (name, is
    /// throughput); `kept[i]` is the old index of new target `i` when it is
    /// kept. A kept target's minute goes on under its new index; rows not
    /// yet written are renumbered; a removed (or changed) target's
    /// unwritten rows keep its name under an index past the new targets.
    /// The files get the new name table before the next rows.
    pub fn reload(&self, targets: Vec<(String, bool)>, kept: &[Option<usize>]) {
        // Never waits for the writer (a flush may be stuck on a frozen
        // disk): the new name table goes with the renumbered rows, and the
        // flush that takes them writes it first.
        let mut layout = self.layout.write().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        let Inner {
            current,
            pending,
            rename,
        } = &mut *inner;
        let old_names = std::mem::replace(&mut layout.names, Arc::from(Vec::<String>::new()));
        let (mut names, mut throughput): (Vec<String>, Vec<bool>) = targets.into_iter().unzip();
        let mut map: Vec<Option<usize>> = vec![None; old_names.len().max(current.len())];
        for (new, old) in kept.iter().enumerate() {
            if let Some(slot) = old.and_then(|o| map.get_mut(o)) {
                *slot = Some(new);
            }
        }
        let mut index_of = |old: usize, map: &mut Vec<Option<usize>>| -> usize {
            if let Some(Some(n)) = map.get(old) {
                return *n;
            }
            let n = names.len();
            names.push(old_names.get(old).cloned().unwrap_or_default());
            throughput.push(false);
            if let Some(slot) = map.get_mut(old) {
                *slot = Some(n);
            }
            n
        };
        for row in pending.iter_mut() {
            match row {
                row::Row::Minute(idx, _) | row::Row::Throughput(idx, _) => {
                    *idx = index_of(*idx, &mut map);
                }
            }
        }
        let mut moved = vec![Tally::default(); kept.len()];
        for (old, slot) in current.iter_mut().enumerate() {
            if slot.is_empty() {
                continue;
            }
            let acc = std::mem::take(slot);
            match map.get(old).copied().flatten() {
                Some(n) if n < moved.len() && kept[n] == Some(old) => moved[n] = acc,
                _ => {
                    let n = index_of(old, &mut map);
                    pending.push(row::Row::Minute(n, acc));
                }
            }
        }
        moved.resize(names.len(), Tally::default());
        *current = moved;
        let names: Arc<[String]> = names.into();
        *rename = Some(names.clone());
        *layout = Layout { names, throughput };
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one probe result (the probe hot path: no I/O, no allocation
    /// unless a minute ends).
    pub fn record(&self, r: &ProbeResult) {
        let minute = r.at.as_second().div_euclid(60);
        let outcome = &r.observation.outcome;
        let rtt = match outcome {
            Outcome::Success { duration, .. } => Some(*duration),
            _ => None,
        };
        let test = self.throughput_test(r);
        let mut inner = self.lock();
        let Inner {
            current, pending, ..
        } = &mut *inner;
        let Some(slot) = current.get_mut(r.target) else {
            return;
        };
        if !slot.is_empty() && (slot.minute != minute || slot.full()) {
            pending.push(row::Row::Minute(r.target, std::mem::take(slot)));
        }
        if slot.is_empty() {
            slot.minute = minute;
        }
        slot.add(rtt);
        if let Some(t) = test {
            pending.push(row::Row::Throughput(r.target, t));
        }
    }

    fn throughput_test(&self, r: &ProbeResult) -> Option<Throughput> {
        let Outcome::Success { duration, .. } = &r.observation.outcome else {
            return None;
        };
        let info = &r.observation.info;
        let bytes = info.body_bytes?;
        let declared = self
            .layout()
            .throughput
            .get(r.target)
            .copied()
            .unwrap_or(false);
        if !declared && bytes < THROUGHPUT_MIN_BYTES {
            return None;
        }
        let seconds = duration.as_secs_f64();
        // A throughput test's own figure (its ramp left out), as exported.
        let bps = info
            .throughput
            .as_ref()
            .and_then(|t| t.bits_per_second)
            .or(info.bytes_per_second.map(|b| b * 8.0))
            .unwrap_or_else(|| bytes as f64 * 8.0 / seconds.max(1e-6));
        Some(Throughput {
            at: r.at,
            bytes,
            seconds,
            bits_per_second: bps,
            loaded: info
                .throughput
                .as_ref()
                .and_then(|t| t.loaded.as_ref())
                .map(row::LoadedRow::of),
        })
    }

    /// Writes every finished minute (and, with `all`, the minutes still
    /// being accumulated: at shutdown) in one batch, then fsyncs. Deletes
    /// files past the retention once an hour.
    pub fn flush(&self, now: Timestamp, all: bool) -> Result<usize, HistoryError> {
        let now_minute = now.as_second().div_euclid(60);
        let (rows, rename) = {
            let mut inner = self.lock();
            let Inner {
                current,
                pending,
                rename,
            } = &mut *inner;
            for (idx, slot) in current.iter_mut().enumerate() {
                if !slot.is_empty() && (all || slot.minute < now_minute) {
                    pending.push(row::Row::Minute(idx, std::mem::take(slot)));
                }
            }
            (std::mem::take(pending), rename.take())
        };
        let n = rows.len();
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = rename {
            // Written before `rows` (renumbered by the reload), and again
            // after a failed write.
            writer.rename(names);
        }
        if let Err(e) = writer.write(&rows, now) {
            // Keep the rows for the next attempt (the disk may come back).
            self.lock().pending.splice(0..0, rows);
            return Err(e);
        }
        drop(writer);
        if !all {
            // Not at shutdown: sealing may take seconds.
            self.upkeep_due(now);
        }
        // Give the emptied buffer back: the next minute's rows fill it
        // without growing a new one step by step.
        let mut rows = rows;
        rows.clear();
        let mut inner = self.lock();
        if inner.pending.capacity() < rows.capacity() {
            rows.append(&mut inner.pending);
            inner.pending = rows;
        }
        Ok(n)
    }

    /// Seals, rolls up and expires (see [`layers`]) every five minutes of
    /// `now`, or at once while earlier work is left; never two at a time.
    fn upkeep_due(&self, now: Timestamp) {
        let slot = now.as_second().div_euclid(300);
        let Ok(mut last) = self.upkeep.try_lock() else {
            return; // another flush is at it
        };
        if *last == Some(slot) {
            return;
        }
        match self.upkeep_now(now) {
            Ok(u) => {
                if u != Upkeep::default() {
                    tracing::info!(
                        hours_sealed = u.hours_sealed,
                        days_rolled_up = u.days_rolled_up,
                        files_deleted = u.files_deleted,
                        failed = u.failed,
                        more = u.more,
                        "history upkeep"
                    );
                }
                *last = (!u.more).then_some(slot);
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "history upkeep failed; the raw files stay and it is tried again");
                *last = Some(slot);
            }
        }
    }

    /// Seals the hours that are over, rolls up the days that are over and
    /// deletes what is past retention, now (the daemon does it from its
    /// flushes; tests and the benchmark generator call it).
    pub fn upkeep_now(&self, now: Timestamp) -> std::io::Result<Upkeep> {
        layers::upkeep(&self.dir, now, self.retention(), &self.swap)
    }

    /// Rows of `names` between `since` and `until`, in steps of `step`,
    /// from disk and from memory (what is not flushed yet). A step of
    /// whole hours reads the hourly summaries where there are some; so do
    /// days whose minutes are past retention.
    pub fn query(&self, q: &HistoryQuery) -> Vec<Series> {
        self.query_read(q).0
    }

    /// [`Self::query`], and which layers it read.
    pub fn query_read(&self, q: &HistoryQuery) -> (Vec<Series>, Used) {
        let mut acc = query::Accumulator::new(q);
        let (damaged, used) = {
            let _r = self.swap.read().unwrap_or_else(|p| p.into_inner());
            layers::read(
                &self.dir,
                q.since,
                q.until,
                q.step % 3600 == 0,
                &mut acc,
                Some(&self.clean),
            )
        };
        let damaged = self.count_damage(&damaged);
        {
            let layout = self.layout();
            let inner = self.lock();
            for row in &inner.pending {
                acc.add_row(&layout.names, row);
            }
            for (idx, slot) in inner.current.iter().enumerate() {
                if !slot.is_empty() {
                    acc.add_minute(
                        layout.names.get(idx).map(String::as_str),
                        slot.minute,
                        &slot.to_minute(),
                    );
                }
            }
        }
        (acc.finish(&damaged), used)
    }

    /// Runs until `stop`, flushing every [`FLUSH_INTERVAL`]; the final
    /// flush (with partial minutes) is the caller's, after the last result.
    pub async fn flush_periodically(
        self: std::sync::Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let store = self.clone();
            match tokio::task::spawn_blocking(move || store.flush(Timestamp::now(), false)).await {
                Ok(Ok(rows)) => tracing::trace!(rows, "history flushed"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "history flush failed; rows kept for the next attempt")
                }
                Err(e) => tracing::error!(error = %e, "history flush task failed"),
            }
        }
    }
}

/// The throughput tests of `targets` in `[since, until)` as the files under
/// `<data_dir>/history` hold them (what a running daemon has not flushed
/// yet, at most its last [`FLUSH_INTERVAL`], is not there): for
/// `linkwatch report`, which runs without a daemon.
pub fn read_tests(
    data_dir: &Path,
    targets: &[String],
    since: Timestamp,
    until: Timestamp,
) -> Vec<TargetTests> {
    let mut acc = query::TestCollector::new(targets, since, until);
    if !targets.is_empty() {
        layers::read(
            &data_dir.join("history"),
            since,
            until,
            false,
            &mut acc,
            None,
        );
    }
    acc.finish()
}

/// The files under `<data_dir>/history` whose days may hold `[since,
/// until)` that could not be read in full (each warned about once per
/// process): for `linkwatch report`, which says its history is incomplete.
pub fn damaged_files(data_dir: &Path, since: Timestamp, until: Timestamp) -> Vec<FileDamage> {
    let mut nothing = query::TestCollector::new(&[], since, until);
    layers::read(
        &data_dir.join("history"),
        since,
        until,
        false,
        &mut nothing,
        None,
    )
    .0
    .into_iter()
    .map(|(_, d)| d)
    .collect()
}

/// Bytes the good throughput tests of `targets` moved in `[since, until)`,
/// by target (in `targets`' order), as written to the store: what a restart
/// carries over of the daily data budgets. Failed tests' partial bytes are not
/// recorded, nor tests of the last minute before a crash.
pub fn bytes_moved(
    data_dir: &Path,
    targets: &[String],
    since: Timestamp,
    until: Timestamp,
) -> Vec<u64> {
    let found = read_tests(data_dir, targets, since, until);
    targets
        .iter()
        .map(|name| {
            found
                .iter()
                .filter(|t| &t.target == name)
                .flat_map(|t| &t.tests)
                .map(|t| t.bytes)
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod layer_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod reload_tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::{Observation, Outcome};

    fn ok(target: usize, at: Timestamp) -> ProbeResult {
        ProbeResult {
            target,
            at,
            mono: tokio::time::Instant::now(),
            lateness: Duration::ZERO,
            observation: Observation::new(Outcome::Success {
                duration: Duration::from_millis(5),
                phases: Default::default(),
            }),
        }
    }

    fn probes(store: &HistoryStore, name: &str, since: Timestamp) -> u64 {
        let q = HistoryQuery::new(
            vec![name.into()],
            since,
            since + Duration::from_secs(600),
            600,
        )
        .unwrap();
        store.query(&q)[0]
            .points
            .iter()
            .map(|p| p.summary.probes)
            .map(u64::from)
            .sum()
    }

    #[test]
    fn a_reload_renumbers_kept_targets_and_keeps_removed_ones_rows_under_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let t0: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let names = vec![("a".to_string(), false), ("b".to_string(), false)];
        let store = HistoryStore::open_at(dir.path(), names, t0).unwrap();
        // a: 3 probes in minute 0 and 1 in minute 1 (so minute 0 is pending); b: 2.
        for s in [1, 20, 40] {
            store.record(&ok(0, t0 + Duration::from_secs(s)));
        }
        store.record(&ok(1, t0 + Duration::from_secs(2)));
        store.record(&ok(0, t0 + Duration::from_secs(61)));
        store.record(&ok(1, t0 + Duration::from_secs(62)));
        // New: c added first, a kept (now index 1), b removed.
        store.reload(
            vec![("c".into(), false), ("a".into(), false)],
            &[None, Some(0)],
        );
        store.record(&ok(1, t0 + Duration::from_secs(70)));
        store.record(&ok(0, t0 + Duration::from_secs(71)));
        for at in [t0, t0 + Duration::from_secs(200)] {
            // In memory, then from the file (flushed with the new name table).
            assert_eq!(probes(&store, "a", t0), 5);
            assert_eq!(probes(&store, "b", t0), 2);
            assert_eq!(probes(&store, "c", t0), 1);
            store.flush(at + Duration::from_secs(3600), true).unwrap();
        }
    }
}
