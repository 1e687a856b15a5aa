//! Outages: the [`detector`] (pure state machine) feeding the journal
//! ([`crate::journal`]: hash-chained evidence file and heartbeat), recovery across restarts, and the async
//! [`OutageService`] tying them to metrics, logs and the HTTP API.
//!
//! Order per event: the detector's decision is shown by the API, logged and
//! counted at once, and its journal line is queued for the journal's own
//! writer thread, which fsyncs it. If the disk refuses or stalls, the line
//! stays queued (retried every second, reported by `/healthz`, the watchdog and
//! `linkwatch_journal_backlog_*`) and monitoring goes on.

mod clock;
pub mod degraded;
pub mod detector;
mod event;
pub mod figures;
mod ids;
pub mod interference;
pub mod listing;
mod live;
mod metrics;
pub mod period;
mod recovery;
pub mod slow;
mod stall;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::config::diff::Diff;
use crate::journal::InterferenceSeen;
use crate::journal::{
    self, Anchor, ConfigReload, DaemonStart, DaemonStop, DataDirLock, Entry, FileSink, Heartbeat,
    JournalCounters, JournalPusher, JournalQueue, JournalSink, JournalWriter, Ledger, LockError,
    QueueOptions, Stalled, lock,
};
use crate::path::{self, PathTracer};
use crate::probe::ProbeResult;
use degraded::SlowPeriods;
use detector::{Detector, Event, State};
use interference::{LineLimiter, Sign};
use live::{LiveOutages, write};
use stall::StallWatch;

pub use crate::journal::When;
pub use crate::journal::{JournalHealth, OutageRecord};
pub use clock::ClockSync;
pub use live::{GroupStatus, OutageHandle};
pub use metrics::OutageMetrics;

/// How often the heartbeat file is replaced (and the journal file checked).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Why the outage service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] LockError),
    #[error(
        "data directory {path} is not writable (journal and heartbeat live there): {source}; give linkwatch's user write access (e.g. chown it) or set daemon.data_dir / --data-dir"
    )]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    ReadJournal(#[from] journal::ReadError),
    #[error("failed to register outage metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("failed to start the journal writer thread: {0}")]
    Thread(std::io::Error),
}

/// Knobs for [`OutageService::start_with`]; `Default` is what the daemon uses.
pub struct StartOptions {
    pub heartbeat_interval: Duration,
    /// Replaces the journal file sink (tests inject disk errors through this).
    pub sink: Option<Box<dyn JournalSink>>,
    /// Skips detection and records this instead.
    pub clock: Option<ClockSync>,
    /// The data directory's lock, when the caller took it already (the
    /// daemon does, before it binds its listener); else it is taken here.
    pub lock: Option<DataDirLock>,
    /// Backlog age beyond which the journal reports unhealthy.
    pub stall_bound: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            sink: None,
            clock: None,
            lock: None,
            stall_bound: journal::STALL_BOUND,
        }
    }
}

/// Receives each target's state after hysteresis when it changes: the
/// status read model, which the API and the status page show.
pub trait TargetStates: Send + Sync {
    fn set(&self, target: usize, state: State, since: Timestamp);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outage service: feed it every probe result; it journals, logs and counts outages.
pub struct OutageService {
    detector: Detector,
    journal: JournalQueue,
    metrics: OutageMetrics,
    live: Arc<RwLock<LiveOutages>>,
    anchor: Anchor,
    group_names: Vec<String>,
    /// When downtime was last accrued (monotonic offset).
    downtime_at: Duration,
    target_states: Option<Arc<dyn TargetStates>>,
    /// Degradation periods (slow, not down).
    slow: SlowPeriods,
    /// Held until the journal is closed: one writer per data directory.
    _lock: DataDirLock,
    /// Stall detection, shared with the `stall_tick` task.
    stalls: Arc<Mutex<StallWatch>>,
    stall_tick: JoinHandle<()>,
    /// Each target's probe timeout (to tell which results a stall cut).
    timeouts: Vec<Duration>,
    /// Start of the last stall whose voided probes were logged.
    voided_logged: Option<Timestamp>,
    /// Path snapshots for the API (earlier runs' from the journal).
    paths: path::PathStore,
    /// Set by [`Self::enable_path_tracer`]: traces at outage start and end.
    tracer: Option<PathTracer>,
    /// Rate limit of the `interference` lines.
    lines: LineLimiter,
}

/// How often downtime is accrued without an event: accruing walks every
/// target of every down group, too much to do for each of thousands of
/// probes a second.
const DOWNTIME_EVERY: Duration = Duration::from_millis(250);

impl OutageService {
    /// Locks the data directory (unless the caller did), reads the journal,
    /// writes the heartbeat and `daemon_start`, recovers outages left open by
    /// the previous run and starts the journal's writer thread. Must run
    /// inside the tokio runtime.
    pub async fn start(
        config: &Config,
        registry: &prometheus::Registry,
    ) -> Result<(OutageService, OutageHandle), StartError> {
        Self::start_with(config, registry, StartOptions::default()).await
    }

    /// [`Self::start`] with explicit options.
    pub async fn start_with(
        config: &Config,
        registry: &prometheus::Registry,
        options: StartOptions,
    ) -> Result<(OutageService, OutageHandle), StartError> {
        let data_dir = config.daemon.data_dir.clone();
        let allow_symlinks = config.daemon.allow_symlinks;
        let dir_lock = match options.lock {
            Some(l) => l,
            None => DataDirLock::acquire(&data_dir, allow_symlinks)?,
        };
        refuse_symlinks(&data_dir, allow_symlinks)?;
        let metrics = OutageMetrics::register(config, registry)?;
        let history = load_history(&data_dir)?;
        // Writer children hold the lock while they run (see `journal::child`).
        let lock_for_children = dir_lock.share().ok();
        let clock = match options.clock {
            Some(c) => c,
            None => ClockSync::detect().await,
        };
        let mut writer = open_writer(
            &data_dir,
            allow_symlinks,
            options.sink,
            &history,
            &metrics,
            lock_for_children,
        )?;
        let anchor = Anchor::now();
        let run = writer.next_seq();
        // Proves the directory is writable before anything else happens.
        journal::write_heartbeat(&data_dir, &heartbeat(run, &anchor, &writer)).map_err(
            |source| StartError::NotWritable {
                path: data_dir.clone(),
                source,
            },
        )?;
        let Startup {
            detector,
            live,
            slow,
            unwritten,
        } = record_start_and_recover(
            config,
            registry,
            &clock,
            &history,
            &metrics,
            &mut writer,
            anchor.wall,
        )?;
        let journal = JournalQueue::spawn(
            writer,
            unwritten,
            QueueOptions {
                data_dir,
                run,
                anchor,
                heartbeat_interval: options.heartbeat_interval,
                stall_bound: options.stall_bound,
            },
        )
        .map_err(StartError::Thread)?;
        journal::metrics::JournalCollector::register(registry, journal.health())?;
        let (stalls, stall_tick) = spawn_stall_watch(config, &journal, &metrics, anchor);
        let service = OutageService {
            detector,
            journal,
            metrics,
            live,
            anchor,
            group_names: config.groups.iter().map(|g| g.name.clone()).collect(),
            downtime_at: Duration::ZERO,
            target_states: None,
            slow,
            _lock: dir_lock,
            stalls,
            stall_tick,
            timeouts: config.targets.iter().map(|t| t.timeout).collect(),
            voided_logged: None,
            paths: path::PathStore::new(&history.paths),
            tracer: None,
            lines: LineLimiter::default(),
        };
        let handle = service.handle();
        Ok((service, handle))
    }

    /// A read handle (same as the one returned by `start`).
    pub fn handle(&self) -> OutageHandle {
        OutageHandle {
            live: self.live.clone(),
            degradations: self.slow.live(),
            anchor: self.anchor,
            journal: self.journal.health(),
            stalls: self.stalls.clone(),
            paths: self.paths.clone(),
        }
    }

    /// Sends every later change of a target's state to `states`.
    pub fn publish_target_states(&mut self, states: Arc<dyn TargetStates>) {
        self.target_states = Some(states);
    }

    /// Starts the path tracer (baselines, and a snapshot at every outage
    /// start and end) unless `max_traces_per_minute` is 0. Must run inside
    /// the tokio runtime.
    pub fn enable_path_tracer(
        &mut self,
        config: &Config,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        if config.daemon.trace.max_per_minute == 0 {
            tracing::info!("path tracing is off (daemon.max_traces_per_minute = 0)");
            return Ok(());
        }
        let journal = self.journal.pusher();
        let record: path::Recorder = Arc::new(move |event| {
            let journal = journal.clone();
            Box::pin(async move { journal.push(Timestamp::now(), Entry::Path(event)).await })
        });
        self.tracer = Some(PathTracer::start(
            config,
            registry,
            record,
            self.paths.clone(),
        )?);
        Ok(())
    }

    /// The path tracer, when enabled (slow periods request through it too).
    pub fn path_tracer(&self) -> Option<&PathTracer> {
        self.tracer.as_ref()
    }

    /// Another producer of this service's journal queue (the peer service's lines).
    pub fn journal_pusher(&self) -> JournalPusher {
        self.journal.pusher()
    }

    /// The instant monotonic offsets are measured from.
    pub fn epoch(&self) -> Instant {
        self.anchor.epoch
    }

    /// Feeds one probe result (from the collector, in any target order).
    ///
    /// A stall found since the last check is recorded first. A timeout whose
    /// probe a stall cut (the deadline passed while the process was stopped)
    /// is no evidence of failure: it is counted in
    /// `linkwatch_probes_voided_total` and not fed to the detector.
    ///
    /// A success whose exchange a stall cut (it started before the process
    /// stopped and completed after — the kernel finished a TCP handshake
    /// while nobody watched) proves the target answered at some unknown
    /// moment of the stall, not at the probe's start: it is fed to the
    /// detector at the stall's end, so a recovery it reports is bounded by
    /// the stall (unobserved), and its duration, which holds the stall, is no
    /// RTT sample for the slow-period windows.
    pub async fn observe(&mut self, result: &ProbeResult) {
        self.check_stalls().await;
        let raw = result.mono.saturating_duration_since(self.anchor.epoch);
        let timeout = self.timeouts.get(result.target).copied();
        let (at, crossed) = {
            let w = lock(&self.stalls);
            let start = w.elapsed(raw);
            let span = match &result.observation.outcome {
                crate::probe::Outcome::Success { duration, .. } => Some(*duration),
                crate::probe::Outcome::Timeout { .. } => timeout,
                crate::probe::Outcome::Error(_) => None,
            };
            let crossed = span
                .and_then(|d| w.crossed(start, w.elapsed(raw + d)))
                .cloned();
            let at = detector::Stamp {
                wall: result.at,
                mono: start,
            };
            (at, crossed)
        };
        self.interference_line(result, at).await;
        let success = result.observation.outcome.is_success();
        let sign = Sign::of_failure(&result.observation);
        if let Some(stall) = crossed {
            if !success {
                self.void(result, &stall.event);
                return;
            }
            tracing::debug!(
                target_index = result.target,
                probe_start = %journal::ts_ms::format(&result.at),
                stall_to = %journal::ts_ms::format(&stall.event.to),
                "probe succeeded across a stall; counted as seen at the stall's end"
            );
            self.observe_at(result.target, stall.to.wall, stall.to.mono, true)
                .await;
            return;
        }
        self.observe_sign(result.target, at.wall, at.mono, success, sign)
            .await;
        // The slow-period windows leave out a target's samples only while
        // its group counts it down (an outage of that target, not loss of
        // its group): under random loss its own `fail_after` streak is not
        // enough, and dropping from there on would starve the window.
        let counted = if self.detector.counted_down(result.target) {
            State::Down
        } else {
            State::Up
        };
        self.slow.target_state(result.target, counted);
        let name = self
            .detector
            .names_of(result.target)
            .map_or("", |(name, _)| name);
        let events = self
            .slow
            .observe(result.target, name, at, &result.observation);
        self.slow_period_events(events).await;
    }

    /// Lets time pass for the outage detector (targets' votes expire) and
    /// the slow-period windows (expiry, hysteresis, the wait for a cause),
    /// and exports their figures; call it every
    /// [`degraded::TICK_EVERY`].
    pub async fn tick(&mut self) {
        // The detector's clock (it counts suspends), as the samples carry.
        let mono = lock(&self.stalls).elapsed(self.anchor.elapsed());
        let now = detector::Stamp {
            wall: Timestamp::now(),
            mono,
        };
        // Targets' votes expire with time, not only with results.
        for ev in self.detector.tick(now) {
            self.handle_event(ev).await;
        }
        let events = self.slow.tick(now);
        self.slow_period_events(events).await;
    }

    /// Logs, counts and shows each slow-period event, and queues it for the
    /// journal (as outage events are).
    async fn slow_period_events(&mut self, events: Vec<slow::SlowEvent>) {
        for ev in events {
            self.slow.publish(&ev);
            // A path snapshot at the edges of a slow period too, tied to its id.
            if let Some(t) = &self.tracer {
                match &ev {
                    slow::SlowEvent::Started(e) => {
                        t.request(&e.group, Some(e.id.clone()), When::Start)
                    }
                    slow::SlowEvent::Resumed(e) => t.outage_resumed(&e.group, &e.id),
                    slow::SlowEvent::Ended(e) => t.request(&e.group, Some(e.id.clone()), When::End),
                }
            }
            self.journal
                .push(Timestamp::now(), degraded::entry(&ev))
                .await;
        }
    }

    /// Drops a timeout that a stall cut, counting it and logging once per stall.
    fn void(&mut self, result: &ProbeResult, stall: &Stalled) {
        self.metrics.probes_voided_total.inc();
        if self.voided_logged != Some(stall.from) {
            self.voided_logged = Some(stall.from);
            let target = self.metrics.target_up.name(result.target);
            let target = target.as_deref().unwrap_or("?");
            tracing::warn!(
                target_name = target,
                probe_start = %journal::ts_ms::format(&result.at),
                stall_from = %journal::ts_ms::format(&stall.from),
                stall_to = %journal::ts_ms::format(&stall.to),
                "probe timed out across a stall; not counted as a failure (further ones of this stall: linkwatch_probes_voided_total)"
            );
        }
    }

    /// Checks the clocks now; journals a stall found here, and hands every
    /// stall not yet known to the detector (found here or by the tick).
    async fn check_stalls(&mut self) {
        let (found, unseen) = {
            let mut w = lock(&self.stalls);
            let found = w.check(
                self.anchor.elapsed(),
                Timestamp::now(),
                stall::suspended_since_boot(),
            );
            (found, w.take_unseen())
        };
        if let Some(s) = found {
            record_stall(&self.journal.pusher(), &self.metrics, s).await;
        }
        for d in unseen {
            for ev in self.detector.stall(d.from, d.to) {
                self.handle_event(ev).await;
            }
        }
    }

    /// Journals an `interference` line for a probe that carried evidence:
    /// the first of its (target, check), then at most one an hour while it
    /// goes on (see [`interference::LineLimiter`]), with a warning.
    async fn interference_line(&mut self, result: &ProbeResult, at: detector::Stamp) {
        let Some(ev) = &result.observation.info.evidence else {
            return;
        };
        // Names from the detector, which holds them anyway: no per-target
        // copy for a line that is rare (10k targets × 2 names was ~1 MiB).
        let Some((target, group)) = self.detector.names_of(result.target) else {
            return;
        };
        let Some(count) = self.lines.seen(target, ev.check, at.mono) else {
            return;
        };
        let line = InterferenceSeen {
            target: target.to_string(),
            group: group.to_string(),
            check: ev.check.as_str().to_string(),
            at: detector::truncate_ms(result.at),
            name: ev.name.clone(),
            detail: ev.detail.clone(),
            raw: ev.raw.clone(),
            count,
        };
        tracing::warn!(
            target_name = %line.target,
            group = %line.group,
            check = %line.check,
            name = %line.name,
            detail = %line.detail,
            raw = %line.raw.join("; "),
            count = line.count,
            "sign of interference"
        );
        self.journal
            .push(Timestamp::now(), Entry::Interference(line))
            .await;
    }

    /// [`Self::observe`] with explicit times (`mono` = offset since [`Self::epoch`]).
    pub async fn observe_at(
        &mut self,
        target: usize,
        wall: Timestamp,
        mono: Duration,
        success: bool,
    ) {
        self.observe_sign(target, wall, mono, success, None).await;
    }

    /// [`Self::observe_at`] of a failure that carried a sign of interference.
    async fn observe_sign(
        &mut self,
        target: usize,
        wall: Timestamp,
        mono: Duration,
        success: bool,
        sign: Option<Sign<'_>>,
    ) {
        let events = self
            .detector
            .observe_sign(target, wall, mono, success, sign);
        let changed = !events.is_empty();
        for ev in events {
            self.handle_event(ev).await;
        }
        // The live view of an open `interference` outage follows its failures.
        if !success && let Some((id, summary)) = self.detector.open_interference(target) {
            write(&self.live).set_interference(id, summary);
        }
        if !changed && mono.saturating_sub(self.downtime_at) < DOWNTIME_EVERY {
            return;
        }
        self.downtime_at = mono;
        for (g, d) in self.detector.take_downtime(mono) {
            if let Some(name) = self.group_names.get(g) {
                self.metrics
                    .downtime_seconds_total
                    .with_label_values(&[name.as_str()])
                    .inc_by(d.as_secs_f64());
            }
        }
    }

    /// Shows, logs and counts one event, and queues its journal line. The
    /// writer thread makes it durable; nothing here waits for the disk.
    async fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Target {
                target,
                state,
                since,
            } => {
                self.metrics.target_up.set(target, state.gauge());
                if let Some(states) = &self.target_states {
                    states.set(target, state, since.wall);
                }
            }
            Event::Group {
                group,
                state,
                since,
            } => {
                if let Some(name) = self.group_names.get(group) {
                    self.metrics
                        .group_up
                        .with_label_values(&[name.as_str()])
                        .set(state.gauge());
                }
                let outage = self.detector.open_outage(group).map(str::to_string);
                write(&self.live).set_group(group, state, since.wall, outage);
                let events = self.slow.group_state(group, state, since);
                self.slow_period_events(events).await;
            }
            Event::Started(e) => {
                let start_mono = self
                    .group_names
                    .iter()
                    .position(|n| *n == e.group)
                    .and_then(|g| self.detector.group_state(g))
                    .and_then(|(_, since)| since)
                    .map(|s| s.mono);
                write(&self.live).started(&e, start_mono);
                if let Some(t) = &self.tracer {
                    t.request(&e.group, Some(e.id.clone()), When::Start);
                }
                e.emit(&self.metrics);
                self.journal
                    .push(Timestamp::now(), Entry::OutageStart(e))
                    .await;
            }
            Event::Resumed(e) => {
                write(&self.live).resumed(&e);
                if let Some(t) = &self.tracer {
                    t.outage_resumed(&e.group, &e.id);
                }
                e.emit(&self.metrics);
                self.journal
                    .push(Timestamp::now(), Entry::OutageResume(e))
                    .await;
            }
            Event::Ended(e) => {
                write(&self.live).ended(&e);
                if let Some(t) = &self.tracer {
                    t.request(&e.group, Some(e.id.clone()), When::End);
                }
                e.emit(&self.metrics);
                self.journal
                    .push(Timestamp::now(), Entry::OutageEnd(e))
                    .await;
            }
            Event::Gaps { id, gaps } => write(&self.live).set_gaps(&id, &gaps),
        }
    }

    /// Applies a configuration reload from `old` to `config` (`diff` between
    /// them) at this moment: journals `config_reload` (first, so that the
    /// outage ends it causes follow it in the journal), then moves the
    /// detector, the slow-period tracker, the live view and the metrics'
    /// label sets to the new configuration. Called by the collector between
    /// two results, so no result is judged half in the old configuration
    /// and half in the new.
    pub async fn reload(&mut self, old: &Config, config: &Config, diff: &Diff) {
        let mono = lock(&self.stalls).elapsed(self.anchor.elapsed());
        let now = detector::Stamp {
            wall: Timestamp::now(),
            mono,
        };
        let record = ConfigReload {
            config_digest: config.digest.clone(),
            config_source: config.source.clone(),
            previous_digest: old.digest.clone(),
            added: diff.added.clone(),
            removed: diff.removed.clone(),
            changed: diff.changed.clone(),
            added_groups: diff.added_groups.clone(),
            removed_groups: diff.removed_groups.clone(),
            restart_only: diff.restart_only.iter().map(|k| k.to_string()).collect(),
            plan: journal::PlanRecord::of(config),
            throughput_targets: journal::ThroughputTarget::of(config),
        };
        record.emit();
        self.journal
            .push(now.wall, Entry::ConfigReload(record))
            .await;
        // Downtime of groups that stay is accrued up to here in the old layout.
        self.downtime_at = mono;
        for (g, d) in self.detector.take_downtime(mono) {
            if let Some(name) = self.group_names.get(g) {
                self.metrics
                    .downtime_seconds_total
                    .with_label_values(&[name.as_str()])
                    .inc_by(d.as_secs_f64());
            }
        }
        let events = self.detector.reload(config, diff, now);
        let (slow_events, restarted) = self.slow.reload(old, config, diff, now);
        self.group_names = config.groups.iter().map(|g| g.name.clone()).collect();
        self.timeouts = config.targets.iter().map(|t| t.timeout).collect();
        self.lines
            .retain(|t| config.targets.iter().any(|c| c.name == t));
        write(&self.live).regroup(config, &self.detector);
        for ev in events {
            self.handle_event(ev).await;
        }
        self.slow_period_events(slow_events).await;
        // A group whose slow-period tracking started again learns its state.
        for g in restarted {
            if let Some((state, Some(since))) = self.detector.group_state(g)
                && state != State::Unknown
            {
                let events = self.slow.group_state(g, state, since);
                self.slow_period_events(events).await;
            }
        }
        // Last: the ends above set the series of removed groups, which go now.
        self.metrics.reload(old, config, &diff.targets);
    }

    /// Simulates `kill -9`: the writer stops at once and writes nothing more.
    #[cfg(test)]
    pub(crate) async fn crash(self) {
        self.stall_tick.abort();
        self.journal.abandon().await;
    }

    /// Stops cleanly within `budget`: `daemon_stop` and a last heartbeat.
    /// Outages still open stay open; the next start continues or closes them,
    /// with a gap. What cannot be written in time is logged in full at ERROR
    /// and saved to a fallback file; the data directory's lock is released last.
    /// Returns `false` when the journal's writer was stuck in the kernel (a
    /// frozen or hung filesystem): nothing else should write there now.
    pub async fn shutdown(self, budget: Duration) -> bool {
        if let Some(t) = &self.tracer {
            t.stop().await;
        }
        self.stall_tick.abort();
        let stop = DaemonStop {
            open_outages: self.detector.open_ids(),
            open_degradations: self.slow.open_ids(),
        };
        self.journal.stop(Entry::DaemonStop(stop), budget).await
    }
}

/// Journals a stall, then logs and counts it.
async fn record_stall(journal: &JournalPusher, metrics: &OutageMetrics, s: Stalled) {
    s.emit(metrics);
    journal.push(Timestamp::now(), Entry::Stall(s)).await;
}

/// The service's tick: checks the clocks every [`stall::TICK`], so a stall is
/// recorded when the process runs again even if no probe result follows.
async fn stall_task(
    watch: Arc<Mutex<StallWatch>>,
    journal: JournalPusher,
    metrics: OutageMetrics,
    anchor: Anchor,
) {
    let mut tick = tokio::time::interval(stall::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let found = lock(&watch).check(
            anchor.elapsed(),
            Timestamp::now(),
            stall::suspended_since_boot(),
        );
        if let Some(s) = found {
            record_stall(&journal, &metrics, s).await;
        }
    }
}

/// Refuses a symbolic link at the journal's or the heartbeat's path unless allowed.
fn refuse_symlinks(data_dir: &Path, allow_symlinks: bool) -> Result<(), LockError> {
    for name in [journal::JOURNAL_FILE, journal::HEARTBEAT_FILE] {
        lock::refuse_symlink(&data_dir.join(name), allow_symlinks)?;
    }
    Ok(())
}

/// What [`OutageService::start_with`] has recorded and recovered before
/// the journal's writer thread takes the writer.
struct Startup {
    detector: Detector,
    live: Arc<RwLock<LiveOutages>>,
    slow: SlowPeriods,
    /// Journal lines the writer refused, for the thread to retry.
    unwritten: Vec<(Timestamp, Entry)>,
}

/// Writes `daemon_start`, closes the outages the previous run left open
/// whose group is gone, adopts the rest, and journals the slow periods
/// that ended unobserved; `wall` is this run's start.
fn record_start_and_recover(
    config: &Config,
    registry: &prometheus::Registry,
    clock: &ClockSync,
    history: &Ledger,
    metrics: &OutageMetrics,
    writer: &mut JournalWriter,
    wall: Timestamp,
) -> Result<Startup, StartError> {
    let start = daemon_start(config, clock, history);
    let mut unwritten = Vec::new();
    write_now(
        writer,
        &mut unwritten,
        wall,
        Entry::DaemonStart(start.clone()),
    );
    start.emit();

    let mut detector = Detector::new(config);
    let recovered = recovery::recover(history, &mut detector, wall);
    let mut closed = history.closed.clone();
    for ended in recovered.closed {
        write_now(
            writer,
            &mut unwritten,
            wall,
            Entry::OutageEnd(ended.clone()),
        );
        ended.emit(metrics);
        closed.push(OutageRecord::from(&ended));
    }
    let (mut slow, unobserved) = SlowPeriods::new(config, registry, history, wall)?;
    for ev in unobserved {
        write_now(writer, &mut unwritten, wall, degraded::entry(&ev));
        slow.publish(&ev);
    }
    let live = Arc::new(RwLock::new(LiveOutages::new(
        config,
        &detector,
        closed,
        recovered.open,
    )));
    Ok(Startup {
        detector,
        live,
        slow,
        unwritten,
    })
}

/// The stall watch and its ticking task.
fn spawn_stall_watch(
    config: &Config,
    journal: &JournalQueue,
    metrics: &OutageMetrics,
    anchor: Anchor,
) -> (Arc<Mutex<StallWatch>>, JoinHandle<()>) {
    let stalls = Arc::new(Mutex::new(StallWatch::new(
        stall::threshold(config.targets.iter().map(|t| t.interval).min()),
        anchor.elapsed(),
        Timestamp::now(),
        stall::suspended_since_boot(),
    )));
    let stall_tick = tokio::spawn(stall_task(
        stalls.clone(),
        journal.pusher(),
        metrics.clone(),
        anchor,
    ));
    (stalls, stall_tick)
}

/// Writes one start-up line at once; what the disk refuses is queued for the writer thread.
fn write_now(
    writer: &mut JournalWriter,
    unwritten: &mut Vec<(Timestamp, Entry)>,
    ts: Timestamp,
    entry: Entry,
) {
    if !unwritten.is_empty() || writer.append(ts, &entry).is_err() {
        tracing::error!(event = entry.name(), "journal line not yet written; queued");
        unwritten.push((ts, entry));
    }
}

/// The previous runs, with every journal problem logged.
fn load_history(data_dir: &Path) -> Result<Ledger, StartError> {
    let history = Ledger::load(data_dir)?;
    for w in &history.warnings {
        if w.kind == journal::WarningKind::Continued {
            // Not a problem: the writer takes these lines back (and says so).
            tracing::info!(line = w.line, note = %w.message, "outage journal continues in a fallback file");
        } else if w.kind == journal::WarningKind::AnchorMissing {
            tracing::error!(line = w.line, kind = ?w.kind, problem = %w.message, "outage journal problem");
        } else {
            tracing::warn!(line = w.line, kind = ?w.kind, problem = %w.message, "outage journal problem");
        }
    }
    if let Some(e) = &history.heartbeat_error {
        tracing::warn!(error = %e, "heartbeat unreadable; the previous run's end is taken from the journal");
    }
    Ok(history)
}

/// The writer continuing the chain where `history` ends.
fn open_writer(
    data_dir: &Path,
    allow_symlinks: bool,
    sink: Option<Box<dyn JournalSink>>,
    history: &Ledger,
    metrics: &OutageMetrics,
    lock: Option<std::fs::File>,
) -> Result<JournalWriter, StartError> {
    let sink: Box<dyn JournalSink> = match sink {
        Some(s) => s,
        None => Box::new(
            FileSink::open(data_dir, allow_symlinks)
                .map_err(|source| StartError::NotWritable {
                    path: data_dir.to_path_buf(),
                    source,
                })?
                .holding(lock),
        ),
    };
    let counters = JournalCounters {
        writes: metrics.journal_writes_total.clone(),
        errors: metrics.journal_errors_total.clone(),
    };
    // The journal file's own end: lines that fallback files add go first.
    let mut writer = JournalWriter::new(sink, &history.continuation.file_tail, counters);
    writer.take_back(&history.continuation);
    Ok(writer)
}

/// This run's `daemon_start`, with what is known of the previous run.
fn daemon_start(config: &Config, clock: &ClockSync, history: &Ledger) -> DaemonStart {
    let previous = history.runs.last();
    DaemonStart {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config_digest: config.digest.clone(),
        config_source: config.source.clone(),
        pid: std::process::id(),
        clock_synchronized: clock.synchronized,
        clock_check: clock.check.clone(),
        previous_run_alive_until: previous.map(|r| r.alive_until),
        previous_run_clean: previous.map(|r| r.clean),
        torn_line: history.tail.torn_line,
        previous_head: history.heartbeat.as_ref().and_then(|hb| hb.head.clone()),
        site: config.daemon.site.clone(),
        plan: journal::PlanRecord::of(config),
        throughput_targets: journal::ThroughputTarget::of(config),
    }
}

fn heartbeat(run: u64, anchor: &Anchor, writer: &JournalWriter) -> Heartbeat {
    Heartbeat {
        run,
        wall: anchor.wall,
        mono_ms: anchor.elapsed().as_millis() as u64,
        pid: std::process::id(),
        head: writer.head(),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
