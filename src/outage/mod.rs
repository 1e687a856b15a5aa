//! Outages: the [`detector`] (pure state machine), the [`journal`] (hash-chained
//! evidence file and heartbeat), recovery across restarts, and the async
//! [`OutageService`] tying them to metrics, logs and the HTTP API.
//!
//! Order per event: the journal line is written and fsynced first; only then is
//! the event logged, counted and shown by the API. If the disk refuses, the line
//! stays queued in memory (retried on every event and heartbeat) and monitoring
//! goes on.

pub mod clock;
pub mod degradation;
pub mod degraded;
pub mod detector;
pub mod event;
pub mod history;
pub mod journal;
pub mod listing;
pub mod live;
pub mod metrics;
mod recovery;
pub mod ts_ms;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::probe::ProbeResult;
use clock::Anchor;
use degraded::SlowPeriods;
use detector::{Detector, Event, State};
use event::{DaemonStart, DaemonStop};
use history::History;
use journal::{Entry, FileSink, Heartbeat, JournalCounters, JournalSink, JournalWriter};
use live::{LiveOutages, write};

pub use clock::ClockSync;
pub use history::OutageRecord;
pub use live::{GroupStatus, OutageHandle};
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
    #[error(transparent)]
    ReadJournal(#[from] history::ReadError),
    #[error("failed to register outage metrics: {0}")]
    Metrics(#[from] prometheus::Error),
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

/// Receives each target's state after hysteresis when it changes: the
/// status read model, which the API and the status page show.
pub trait TargetStates: Send + Sync {
    fn set(&self, target: usize, state: State, since: Timestamp);
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
    live: Arc<RwLock<LiveOutages>>,
    anchor: Anchor,
    data_dir: PathBuf,
    run: u64,
    heartbeat: JoinHandle<()>,
    target_labels: Vec<[String; 3]>,
    group_names: Vec<String>,
    /// When downtime was last accrued (monotonic offset).
    downtime_at: Duration,
    target_states: Option<Arc<dyn TargetStates>>,
    /// Degradation periods (slow, not down).
    slow: SlowPeriods,
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
        let data_dir = create_data_dir(config)?;
        let metrics = OutageMetrics::register(config, registry)?;
        let history = load_history(&data_dir)?;
        let clock = match options.clock {
            Some(c) => c,
            None => ClockSync::detect().await,
        };
        let mut writer = open_writer(&data_dir, options.sink, &history, &metrics)?;
        let anchor = Anchor::now();
        let run = writer.next_seq();
        // Proves the directory is writable before anything else happens.
        journal::write_heartbeat(&data_dir, &heartbeat(run, &anchor, anchor.wall)).map_err(
            |source| StartError::NotWritable {
                path: data_dir.clone(),
                source,
            },
        )?;
        let start = daemon_start(config, &clock, &history);
        if let Err(e) = writer.append(anchor.wall, Entry::DaemonStart(start.clone())) {
            tracing::error!(error = %e, "daemon_start not yet written; queued");
        }
        start.emit();

        let mut detector = Detector::new(config);
        let recovered = recovery::recover(&history, &mut detector, anchor.wall);
        let mut closed = history.closed.clone();
        for ended in recovered.closed {
            if let Err(e) = writer.append(anchor.wall, Entry::OutageEnd(ended.clone())) {
                tracing::error!(error = %e, id = %ended.id, "outage_end not yet written; queued");
            }
            ended.emit(&metrics);
            closed.push(OutageRecord::from(&ended));
        }
        let (mut slow, unobserved) = SlowPeriods::new(config, registry, &history, anchor.wall)?;
        for ev in unobserved {
            if let Err(e) = writer.append(anchor.wall, degraded::entry(&ev)) {
                tracing::error!(error = %e, "degraded_end not yet written; queued");
            }
            slow.publish(&ev);
        }
        let live = Arc::new(RwLock::new(LiveOutages::new(
            config,
            &detector,
            closed,
            recovered.open,
        )));
        let journal = Arc::new(Mutex::new(writer));
        let heartbeat = tokio::spawn(heartbeat_task(
            data_dir.clone(),
            journal.clone(),
            run,
            anchor,
            options.heartbeat_interval,
        ));
        let service = OutageService {
            detector,
            journal,
            metrics,
            live,
            anchor,
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
            target_states: None,
            slow,
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
        }
    }

    /// Sends every later change of a target's state to `states`.
    pub fn publish_target_states(&mut self, states: Arc<dyn TargetStates>) {
        self.target_states = Some(states);
    }

    /// The instant monotonic offsets are measured from.
    pub fn epoch(&self) -> Instant {
        self.anchor.epoch
    }

    /// Feeds one probe result (from the collector, in any target order).
    pub async fn observe(&mut self, result: &ProbeResult) {
        let mono = result.mono.saturating_duration_since(self.anchor.epoch);
        self.observe_at(
            result.target,
            result.at,
            mono,
            result.observation.outcome.is_success(),
        )
        .await;
        let at = detector::Stamp {
            wall: result.at,
            mono,
        };
        let events = self
            .slow
            .observe(result.target, at, &result.observation.outcome);
        self.degradation_events(events).await;
    }

    /// Lets time pass for the degradation windows (expiry, hysteresis, the
    /// wait for a cause) and exports their figures; call it every
    /// [`degraded::TICK_EVERY`].
    pub async fn tick(&mut self) {
        let now = detector::Stamp {
            wall: Timestamp::now(),
            mono: self.anchor.elapsed(),
        };
        let events = self.slow.tick(now);
        self.degradation_events(events).await;
    }

    /// Journals, then logs, counts and shows each degradation event.
    async fn degradation_events(&mut self, events: Vec<degradation::DegradationEvent>) {
        for ev in events {
            self.append(degraded::entry(&ev)).await;
            self.slow.publish(&ev);
        }
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
                if let Some(states) = &self.target_states {
                    states.set(target, state, since.wall);
                }
                self.slow.target_state(target, state);
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
                self.degradation_events(events).await;
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
                write(&self.live).started(&e, start_mono);
            }
            Event::Resumed(e) => {
                self.append(Entry::OutageResume(e.clone())).await;
                e.emit(&self.metrics);
                write(&self.live).resumed(&e);
            }
            Event::Ended(e) => {
                self.append(Entry::OutageEnd(e.clone())).await;
                e.emit(&self.metrics);
                write(&self.live).ended(&e);
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
        let hb = heartbeat(self.run, &self.anchor, Timestamp::now());
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
    anchor: Anchor,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        let hb = heartbeat(run, &anchor, Timestamp::now());
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

/// Creates the data directory if needed.
fn create_data_dir(config: &Config) -> Result<PathBuf, StartError> {
    let data_dir = config.daemon.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::CreateDataDir {
        path: data_dir.clone(),
        source,
    })?;
    Ok(data_dir)
}

/// The previous runs, with every journal problem logged.
fn load_history(data_dir: &Path) -> Result<History, StartError> {
    let history = History::load(data_dir)?;
    for w in &history.warnings {
        tracing::warn!(line = w.line, kind = ?w.kind, problem = %w.message, "outage journal problem");
    }
    if let Some(e) = &history.heartbeat_error {
        tracing::warn!(error = %e, "heartbeat unreadable; the previous run's end is taken from the journal");
    }
    Ok(history)
}

/// The writer continuing the chain where `history` ends.
fn open_writer(
    data_dir: &Path,
    sink: Option<Box<dyn JournalSink>>,
    history: &History,
    metrics: &OutageMetrics,
) -> Result<JournalWriter, StartError> {
    let sink: Box<dyn JournalSink> = match sink {
        Some(s) => s,
        None => Box::new(
            FileSink::open(data_dir).map_err(|source| StartError::NotWritable {
                path: data_dir.to_path_buf(),
                source,
            })?,
        ),
    };
    let counters = JournalCounters {
        writes: metrics.journal_writes_total.clone(),
        errors: metrics.journal_errors_total.clone(),
    };
    Ok(JournalWriter::new(sink, &history.tail, counters))
}

/// This run's `daemon_start`, with what is known of the previous run.
fn daemon_start(config: &Config, clock: &ClockSync, history: &History) -> DaemonStart {
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
    }
}

fn heartbeat(run: u64, anchor: &Anchor, wall: Timestamp) -> Heartbeat {
    Heartbeat {
        run,
        wall,
        mono_ms: anchor.elapsed().as_millis() as u64,
        pid: std::process::id(),
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
