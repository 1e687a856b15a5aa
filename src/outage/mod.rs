//! Outages: the [`detector`] (pure state machine), the [`journal`] (hash-chained
//! evidence file and heartbeat), recovery across restarts, and the async
//! [`OutageService`] tying them to metrics, logs and the HTTP API.
//!
//! Order per event: the journal line is written and fsynced first; only then is
//! the event logged, counted and shown by the API. If the disk refuses, the line
//! stays queued in memory (retried on every event and heartbeat) and monitoring
//! goes on.

pub mod degradation;
pub mod detector;
pub mod event;
pub mod history;
pub mod journal;
pub mod metrics;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::probe::ProbeResult;
use detector::{Adopted, Detector, Event, State};
use event::{DaemonStart, DaemonStop, DurationClock, Gap};
use journal::{Entry, FileSink, Heartbeat, JournalCounters, JournalSink, JournalWriter, ts_ms};

pub use history::OutageRecord;
pub use metrics::OutageMetrics;

/// How often the heartbeat file is replaced (and queued journal lines retried).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Why the outage service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "failed to create data directory {path}: {source}; set daemon.data_dir (or --data-dir) to a directory linkwatch's user can create and write"
    )]
    CreateDataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is not writable (journal and heartbeat live there): {source}; give linkwatch's user write access (e.g. chown it) or set daemon.data_dir / --data-dir"
    )]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the outage journal in {path}: {source}")]
    ReadJournal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to register outage metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Whether the system clock was synchronized at start, and how that was found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSync {
    pub synchronized: Option<bool>,
    pub check: String,
}

impl ClockSync {
    /// Asks `timedatectl` (systemd-timedated reports the kernel's NTP state from
    /// `adjtimex`); `unsafe` is denied in this crate and no maintained crate wraps
    /// `adjtimex` safely, so without systemd the state is recorded as unknown.
    pub async fn detect() -> Self {
        let mut cmd = tokio::process::Command::new("timedatectl");
        // systemd tools report their exit status to $NOTIFY_SOCKET; keep the
        // child from speaking to the service manager in our name.
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        cmd.args(["show", "-p", "NTPSynchronized", "--value"])
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        match tokio::time::timeout(Duration::from_secs(2), cmd.output()).await {
            Ok(Ok(out)) if out.status.success() => {
                let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let synchronized = match v.as_str() {
                    "yes" => Some(true),
                    "no" => Some(false),
                    _ => None,
                };
                Self {
                    synchronized,
                    check: format!("timedatectl NTPSynchronized={v}"),
                }
            }
            Ok(Ok(out)) => Self {
                synchronized: None,
                check: format!(
                    "unknown: timedatectl failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .next()
                        .unwrap_or("no output")
                ),
            },
            Ok(Err(e)) => Self {
                synchronized: None,
                check: format!("unknown: failed to run timedatectl: {e}"),
            },
            Err(_) => Self {
                synchronized: None,
                check: "unknown: timedatectl did not answer within 2s".to_string(),
            },
        }
    }
}

/// Knobs for [`OutageService::start_with`]; `Default` is what the daemon uses.
pub struct StartOptions {
    pub heartbeat_interval: Duration,
    /// Replaces the journal file sink (tests inject disk errors through this).
    pub sink: Option<Box<dyn JournalSink>>,
    /// Skips detection and records this instead.
    pub clock: Option<ClockSync>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            sink: None,
            clock: None,
        }
    }
}

/// A target's state for the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub state: State,
    #[serde(with = "ts_ms::option")]
    pub since: Option<Timestamp>,
}

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
}

#[derive(Debug, Clone)]
struct OpenEntry {
    record: OutageRecord,
    /// Monotonic offset of the start, when it started in this process.
    start_mono: Option<Duration>,
}

#[derive(Debug, Default)]
struct Shared {
    closed: Vec<OutageRecord>,
    open: Vec<OpenEntry>,
    groups: Vec<GroupStatus>,
    targets: Vec<TargetStatus>,
}

/// Cheap, cloneable read access for the HTTP API and status page.
#[derive(Clone)]
pub struct OutageHandle {
    shared: Arc<RwLock<Shared>>,
    epoch: Instant,
}

impl OutageHandle {
    /// Outages overlapping `[since, until)`, oldest first; open ones have `end: None`
    /// and their duration so far.
    pub fn outages(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Vec<OutageRecord> {
        let shared = read(&self.shared);
        let now_mono = Instant::now().saturating_duration_since(self.epoch);
        let now = Timestamp::now();
        let mut out: Vec<OutageRecord> = shared
            .closed
            .iter()
            .filter(|r| r.overlaps(since, until))
            .cloned()
            .collect();
        for o in &shared.open {
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

    /// Every group with its state, in configuration order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        read(&self.shared).groups.clone()
    }

    /// Every target with its state after hysteresis, in configuration order.
    pub fn targets(&self) -> Vec<TargetStatus> {
        read(&self.shared).targets.clone()
    }
}

fn read(lock: &RwLock<Shared>) -> std::sync::RwLockReadGuard<'_, Shared> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write(lock: &RwLock<Shared>) -> std::sync::RwLockWriteGuard<'_, Shared> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

type SharedWriter = Arc<Mutex<JournalWriter>>;

fn lock(w: &SharedWriter) -> std::sync::MutexGuard<'_, JournalWriter> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outage service: feed it every probe result; it journals, logs and counts outages.
pub struct OutageService {
    detector: Detector,
    journal: SharedWriter,
    metrics: OutageMetrics,
    shared: Arc<RwLock<Shared>>,
    epoch: Instant,
    data_dir: PathBuf,
    run: u64,
    heartbeat: JoinHandle<()>,
    target_labels: Vec<[String; 3]>,
    group_names: Vec<String>,
    /// When downtime was last accrued (monotonic offset).
    downtime_at: Duration,
}

/// How often downtime is accrued without an event: accruing walks every
/// target of every down group, too much to do for each of thousands of
/// probes a second.
const DOWNTIME_EVERY: Duration = Duration::from_millis(250);

impl OutageService {
    /// Opens (creating if needed) the data directory and journal, recovers outages
    /// left open by the previous run, writes `daemon_start` and starts the
    /// heartbeat task. Must run inside the tokio runtime.
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
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::CreateDataDir {
            path: data_dir.clone(),
            source,
        })?;
        let metrics = OutageMetrics::register(config, registry)?;
        let contents = journal::read(&data_dir).map_err(|source| StartError::ReadJournal {
            path: data_dir.clone(),
            source,
        })?;
        for w in &contents.warnings {
            tracing::warn!(line = w.line, kind = ?w.kind, problem = %w.message, "outage journal problem");
        }
        let mut history = history::History::rebuild(&contents.lines);
        let heartbeat = journal::read_heartbeat(&data_dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "heartbeat unreadable; the previous run's end is taken from the journal");
            None
        });
        if let (Some(hb), Some(run)) = (heartbeat, history.runs.last_mut())
            && hb.run == run.start_seq
        {
            run.alive_until = run.alive_until.max(hb.wall);
        }
        let clock = match options.clock {
            Some(c) => c,
            None => ClockSync::detect().await,
        };
        let sink: Box<dyn JournalSink> =
            match options.sink {
                Some(s) => s,
                None => Box::new(FileSink::open(&data_dir).map_err(|source| {
                    StartError::NotWritable {
                        path: data_dir.clone(),
                        source,
                    }
                })?),
            };
        let counters = JournalCounters {
            writes: metrics.journal_writes_total.clone(),
            errors: metrics.journal_errors_total.clone(),
        };
        let mut writer = JournalWriter::new(sink, &contents.tail, counters);
        let epoch = Instant::now();
        let now = detector::truncate_ms(Timestamp::now());
        let run = writer.next_seq();
        // Proves the directory is writable before anything else happens.
        journal::write_heartbeat(
            &data_dir,
            &Heartbeat {
                run,
                wall: now,
                mono_ms: 0,
                pid: std::process::id(),
            },
        )
        .map_err(|source| StartError::NotWritable {
            path: data_dir.clone(),
            source,
        })?;
        let previous = history.runs.last();
        let start = DaemonStart {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: config.digest.clone(),
            config_source: config.source.clone(),
            pid: std::process::id(),
            clock_synchronized: clock.synchronized,
            clock_check: clock.check.clone(),
            previous_run_alive_until: previous.map(|r| r.alive_until),
            previous_run_clean: previous.map(|r| r.clean),
            torn_line: contents.tail.torn_line,
        };
        if let Err(e) = writer.append(now, Entry::DaemonStart(start.clone())) {
            tracing::error!(error = %e, "daemon_start not yet written; queued");
        }
        start.emit();

        let mut detector = Detector::new(config);
        detector.reserve_ids(history.ids.iter().cloned());
        let mut shared = Shared {
            closed: history.closed.clone(),
            ..Shared::default()
        };
        for o in &history.open {
            let last_seen = history.last_seen(o);
            let adopted = Adopted {
                id: o.record.id.clone(),
                cause: o.record.cause.clone(),
                start: o.record.start,
                targets: o.record.targets.clone(),
                gaps: o.record.gaps.clone(),
                last_seen,
            };
            let mut record = o.record.clone();
            record.duration_clock = DurationClock::Wall;
            if detector.adopt(&o.record.group, adopted) {
                tracing::warn!(id = %o.record.id, group = %o.record.group, last_seen = %ts_ms::format(&last_seen), "outage open at the last run; waiting to see whether it goes on");
                record.gaps.push(Gap {
                    from: last_seen,
                    to: now.max(last_seen),
                });
                shared.open.push(OpenEntry {
                    record,
                    start_mono: None,
                });
            } else {
                // Its group is gone from the configuration: close it honestly, unobserved.
                let mut gaps = o.record.gaps.clone();
                gaps.push(Gap {
                    from: last_seen,
                    to: now.max(last_seen),
                });
                let ended = event::OutageEnded {
                    id: o.record.id.clone(),
                    group: o.record.group.clone(),
                    cause: o.record.cause.clone(),
                    start: o.record.start,
                    end: last_seen,
                    duration_seconds: last_seen
                        .duration_since(o.record.start)
                        .as_secs_f64()
                        .max(0.0),
                    duration_clock: DurationClock::Wall,
                    end_observed: false,
                    targets: o.record.targets.clone(),
                    gaps,
                };
                if let Err(e) = writer.append(now, Entry::OutageEnd(ended.clone())) {
                    tracing::error!(error = %e, id = %ended.id, "outage_end not yet written; queued");
                }
                ended.emit(&metrics);
                shared.closed.push(OutageRecord::from(&ended));
            }
        }
        history.open.clear();
        shared.targets = config
            .targets
            .iter()
            .map(|t| TargetStatus {
                name: t.name.clone(),
                group: t.group.clone(),
                kind: t.kind().as_str().to_string(),
                state: State::Unknown,
                since: None,
            })
            .collect();
        shared.groups = config
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| GroupStatus {
                name: grp.name.clone(),
                needs: grp.needs.clone(),
                state: State::Unknown,
                since: None,
                outage: detector.open_outage(g).map(str::to_string),
            })
            .collect();
        let shared = Arc::new(RwLock::new(shared));
        let journal = Arc::new(Mutex::new(writer));
        let heartbeat = tokio::spawn(heartbeat_task(
            data_dir.clone(),
            journal.clone(),
            run,
            epoch,
            options.heartbeat_interval,
        ));
        let service = OutageService {
            detector,
            journal,
            metrics,
            shared: shared.clone(),
            epoch,
            data_dir,
            run,
            heartbeat,
            target_labels: config
                .targets
                .iter()
                .map(|t| {
                    [
                        t.name.clone(),
                        t.group.clone(),
                        t.kind().as_str().to_string(),
                    ]
                })
                .collect(),
            group_names: config.groups.iter().map(|g| g.name.clone()).collect(),
            downtime_at: Duration::ZERO,
        };
        Ok((service, OutageHandle { shared, epoch }))
    }

    /// A read handle (same as the one returned by `start`).
    pub fn handle(&self) -> OutageHandle {
        OutageHandle {
            shared: self.shared.clone(),
            epoch: self.epoch,
        }
    }

    /// The instant monotonic offsets are measured from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Feeds one probe result (from the collector, in any target order).
    pub async fn observe(&mut self, result: &ProbeResult) {
        let mono = result.mono.saturating_duration_since(self.epoch);
        self.observe_at(
            result.target,
            result.at,
            mono,
            result.report.outcome.is_success(),
        )
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
        let events = self.detector.observe(target, wall, mono, success);
        let changed = !events.is_empty();
        for ev in events {
            self.handle_event(ev).await;
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

    async fn append(&self, entry: Entry) {
        let journal = self.journal.clone();
        let name = entry.name();
        let res =
            tokio::task::spawn_blocking(move || lock(&journal).append(Timestamp::now(), entry))
                .await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(event = name, error = %e, "journal line queued in memory until the disk accepts it");
            }
            Err(e) => tracing::error!(event = name, error = %e, "journal writer task failed"),
        }
    }

    async fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Target {
                target,
                state,
                since,
            } => {
                if let Some(l) = self.target_labels.get(target) {
                    self.metrics
                        .target_up
                        .with_label_values(&[l[0].as_str(), l[1].as_str(), l[2].as_str()])
                        .set(state.gauge());
                }
                if let Some(t) = write(&self.shared).targets.get_mut(target) {
                    t.state = state;
                    t.since = Some(since.wall);
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
                if let Some(g) = write(&self.shared).groups.get_mut(group) {
                    g.state = state;
                    g.since = Some(since.wall);
                    g.outage = outage;
                }
            }
            Event::Started(e) => {
                self.append(Entry::OutageStart(e.clone())).await;
                e.emit(&self.metrics);
                let start_mono = self
                    .group_names
                    .iter()
                    .position(|n| *n == e.group)
                    .and_then(|g| self.detector.group_state(g))
                    .and_then(|(_, since)| since)
                    .map(|s| s.mono);
                let mut shared = write(&self.shared);
                if let Some(g) = shared.groups.iter_mut().find(|g| g.name == e.group) {
                    g.outage = Some(e.id.clone());
                }
                shared.open.push(OpenEntry {
                    record: OutageRecord {
                        id: e.id,
                        group: e.group,
                        cause: e.cause,
                        start: e.start,
                        end: None,
                        duration_seconds: 0.0,
                        targets: e.targets,
                        gaps: Vec::new(),
                        end_observed: None,
                        duration_clock: DurationClock::Monotonic,
                    },
                    start_mono,
                });
            }
            Event::Resumed(e) => {
                self.append(Entry::OutageResume(e.clone())).await;
                e.emit(&self.metrics);
                let mut shared = write(&self.shared);
                if let Some(o) = shared.open.iter_mut().find(|o| o.record.id == e.id) {
                    // Replace the provisional gap with the recorded one.
                    o.record.gaps.pop();
                    o.record.gaps.push(e.gap);
                    o.record.targets = e.targets;
                }
            }
            Event::Ended(e) => {
                self.append(Entry::OutageEnd(e.clone())).await;
                e.emit(&self.metrics);
                let mut shared = write(&self.shared);
                shared.open.retain(|o| o.record.id != e.id);
                if let Some(g) = shared.groups.iter_mut().find(|g| g.name == e.group) {
                    g.outage = None;
                }
                shared.closed.push(OutageRecord::from(&e));
            }
        }
    }

    /// Simulates `kill -9`: stops the heartbeat and writes nothing more.
    #[cfg(test)]
    pub(crate) async fn crash(self) {
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
    }

    /// Stops cleanly: a last heartbeat and `daemon_stop`. Outages still open stay
    /// open in the journal; the next start continues or closes them, with a gap.
    pub async fn shutdown(self) {
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        let open = self.detector.open_ids();
        let data_dir = self.data_dir.clone();
        let hb = Heartbeat {
            run: self.run,
            wall: Timestamp::now(),
            mono_ms: Instant::now()
                .saturating_duration_since(self.epoch)
                .as_millis() as u64,
            pid: std::process::id(),
        };
        let journal = self.journal.clone();
        let res = tokio::task::spawn_blocking(move || {
            if let Err(e) = journal::write_heartbeat(&data_dir, &hb) {
                tracing::warn!(error = %e, "final heartbeat not written");
            }
            let mut j = lock(&journal);
            let r = j.append(
                hb.wall,
                Entry::DaemonStop(DaemonStop { open_outages: open }),
            );
            (r, j.pending())
        })
        .await;
        match res {
            Ok((Ok(_), _)) => tracing::info!("outage journal closed"),
            Ok((Err(e), pending)) => {
                tracing::error!(error = %e, pending, "journal lines could not be written before exit and are lost")
            }
            Err(e) => tracing::error!(error = %e, "journal writer task failed at shutdown"),
        }
    }
}

async fn heartbeat_task(
    data_dir: PathBuf,
    journal: SharedWriter,
    run: u64,
    epoch: Instant,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        let hb = Heartbeat {
            run,
            wall: Timestamp::now(),
            mono_ms: Instant::now().saturating_duration_since(epoch).as_millis() as u64,
            pid: std::process::id(),
        };
        let dir = data_dir.clone();
        let journal = journal.clone();
        let res = tokio::task::spawn_blocking(move || {
            let hb_res = journal::write_heartbeat(&dir, &hb);
            let mut j = lock(&journal);
            if j.pending() > 0 {
                let _ = j.flush();
            }
            hb_res
        })
        .await;
        match res {
            Ok(Ok(())) if failing => {
                tracing::info!("heartbeat written again");
                failing = false;
            }
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if !failing {
                    tracing::error!(error = %e, "heartbeat write failed; retrying every interval");
                }
                failing = true;
            }
            Err(e) => tracing::error!(error = %e, "heartbeat task failed"),
        }
    }
}

/// Where the journal of a data directory lives.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(journal::JOURNAL_FILE)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
