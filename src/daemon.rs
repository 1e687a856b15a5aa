//! `linkwatch run`: wires config, probers, scheduler, metrics and the HTTP
//! server together, and shuts them down in order.
//!
//! Start-up order: the data directory's lock, the HTTP listener, probes and
//! metrics, and only then the journal, so that a start that fails (a second
//! daemon, a port in use, no ICMP privilege) writes nothing.
//!
//! Shutdown order (one cancellation tree, bounded by [`SHUTDOWN_BUDGET`]):
//! 1. stop scheduling; probes in flight finish or hit their deadline, and are
//!    cut after [`PROBE_GRACE`] at the latest;
//! 2. the collector drains the results that were produced;
//! 3. the journal writes `daemon_stop`; what the disk does not take in time is
//!    logged in full and saved to a fallback file; the lock is released;
//! 4. the HTTP server stops last, so a final scrape still sees everything.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::history::HistoryStore;
use crate::metrics::Metrics;
use crate::outage::lock::{DataDirLock, LockError};
use crate::outage::{OutageHandle, OutageService, StartOptions};
use crate::probe::{ProbeResult, Probers};
use crate::scheduler::Scheduler;
use crate::sdnotify::Notifier;
use crate::server::{self, AppState};
use crate::status::StatusStore;

/// Longest in-flight probes may run after a stop signal.
pub const PROBE_GRACE: Duration = Duration::from_millis(1200);
/// Longest the HTTP server waits for requests in progress at the end.
pub const HTTP_GRACE: Duration = Duration::from_millis(300);
/// Upper bound on the whole shutdown (the contract promises exit within 2 s).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_millis(1900);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to set up probes: {0}")]
    Probe(#[from] crate::probe::SetupError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{0}")]
    Listen(std::io::Error),
    #[error(transparent)]
    Outage(#[from] crate::outage::StartError),
    #[error(transparent)]
    DataDir(#[from] LockError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

/// Runs the daemon until `shutdown` resolves. `on_listen` receives the bound
/// HTTP address (useful with port 0).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_listen: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), StartError> {
    let config = Arc::new(config);
    let parts = Parts::start(&config).await?;
    tracing::info!(
        addr = %parts.addr,
        config = %config.source,
        targets = config.targets.len(),
        groups = config.groups.len(),
        version = env!("CARGO_PKG_VERSION"),
        "linkwatch listening on http://{}/metrics", parts.addr
    );
    if let Some(tx) = on_listen {
        let _ = tx.send(parts.addr);
    }
    Running::spawn(config, parts).until_stopped(shutdown).await;
    Ok(())
}

/// What start-up builds before anything runs.
struct Parts {
    listener: TcpListener,
    addr: SocketAddr,
    probers: Arc<Probers>,
    metrics: Arc<Metrics>,
    status: Arc<StatusStore>,
    outages: OutageService,
    outage_handle: OutageHandle,
    history: Arc<HistoryStore>,
}

impl Parts {
    /// Everything that can fail comes before the journal is touched, so a
    /// start that fails writes nothing: the data directory's lock first (one
    /// writer per directory), then the listener, then probes and metrics; the
    /// outage service reads and writes the journal last.
    async fn start(config: &Arc<Config>) -> Result<Self, StartError> {
        let dir_lock = DataDirLock::acquire(&config.daemon.data_dir, config.daemon.allow_symlinks)?;
        let listener = server::bind(config.daemon.listen)
            .await
            .map_err(StartError::Listen)?;
        let addr = listener.local_addr().map_err(StartError::Listen)?;
        let probers = Arc::new(Probers::new(config).await?);
        let metrics = Arc::new(Metrics::new(config)?);
        if let Some(icmp) = probers.icmp() {
            for (family, mode) in icmp.modes() {
                metrics.set_icmp_mode(family, mode.as_str());
            }
        }
        let status = Arc::new(StatusStore::new(config));
        // Reads the stored history; like everything above, before the journal.
        let history = Arc::new(HistoryStore::open(config)?);
        let (mut outages, outage_handle) = OutageService::start_with(
            config,
            metrics.registry(),
            StartOptions {
                lock: Some(dir_lock),
                ..StartOptions::default()
            },
        )
        .await?;
        outages.publish_target_states(status.clone());
        outages
            .enable_path_tracer(config, metrics.registry())
            .map_err(crate::outage::StartError::Metrics)?;
        Ok(Self {
            listener,
            addr,
            probers,
            metrics,
            status,
            outages,
            outage_handle,
            history,
        })
    }
}

/// Sends `WATCHDOG=1` at the manager's pace while the scheduler is alive and
/// the journal keeps up; a stalled journal is also said in `STATUS=`.
fn spawn_watchdog(
    notifier: &Arc<Notifier>,
    alive: &Arc<AtomicBool>,
    outages: OutageHandle,
) -> Option<JoinHandle<()>> {
    let every = notifier.watchdog_interval()?;
    let notifier = notifier.clone();
    let alive = alive.clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stalled = false;
        loop {
            tick.tick().await;
            // This task running at all shows the runtime is not stalled.
            match outages.journal_health() {
                Err(why) => {
                    if !stalled {
                        tracing::error!(reason = %why, "journal stalled; withholding the systemd watchdog ping");
                        notifier.notify(&format!("STATUS={why}"));
                    }
                    stalled = true;
                }
                Ok(()) => {
                    stalled = false;
                    if alive.load(Ordering::Acquire) {
                        notifier.notify("WATCHDOG=1");
                    }
                }
            }
        }
    }))
}

/// The daemon's tasks while it runs, stopped in order by [`Running::until_stopped`].
struct Running {
    scheduler: JoinHandle<()>,
    cancel: CancellationToken,
    scheduler_alive: Arc<AtomicBool>,
    collector: JoinHandle<OutageService>,
    server: JoinHandle<()>,
    server_stop: CancellationToken,
    notifier: Arc<Notifier>,
    watchdog: Option<JoinHandle<()>>,
    history: Arc<HistoryStore>,
    history_stop: CancellationToken,
}

impl Running {
    /// Starts the server, the collector, the scheduler and the watchdog, and
    /// tells systemd we are ready.
    fn spawn(config: Arc<Config>, parts: Parts) -> Self {
        let scheduler_alive = Arc::new(AtomicBool::new(true));
        let state = Arc::new(AppState {
            metrics: parts.metrics.clone(),
            status: parts.status.clone(),
            outages: parts.outage_handle.clone(),
            history: parts.history.clone(),
            scheduler_alive: scheduler_alive.clone(),
            started: jiff::Timestamp::now(),
        });
        let server_stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(
            parts.listener,
            state,
            server_stop.clone().cancelled_owned(),
            HTTP_GRACE,
        ));
        let (tx, rx) = mpsc::channel::<ProbeResult>(config.targets.len().clamp(64, 65_536));
        let collector = tokio::spawn(collect(
            rx,
            parts.metrics.clone(),
            parts.status,
            parts.history.clone(),
            parts.outages,
            config.clone(),
        ));
        let history_stop = CancellationToken::new();
        tokio::spawn(
            parts
                .history
                .clone()
                .flush_periodically(history_stop.clone()),
        );
        let cancel = CancellationToken::new();
        let scheduler = tokio::spawn(
            Scheduler::new(config.clone(), parts.probers, tx, Some(parts.metrics))
                .run(cancel.clone()),
        );
        let notifier = Arc::new(Notifier::from_env());
        notifier.notify(&format!(
            "READY=1\nSTATUS=probing {} targets, serving http://{}",
            config.targets.len(),
            parts.addr
        ));
        let watchdog = spawn_watchdog(&notifier, &scheduler_alive, parts.outage_handle);
        Self {
            scheduler,
            cancel,
            scheduler_alive,
            collector,
            server,
            server_stop,
            notifier,
            watchdog,
            history: parts.history,
            history_stop,
        }
    }

    /// Waits for `shutdown` (or the scheduler dying), then stops everything
    /// within [`SHUTDOWN_BUDGET`]: scheduler, collector and journal, server.
    async fn until_stopped(mut self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            () = shutdown => {}
            res = &mut self.scheduler => {
                tracing::error!(error = ?res.err(), "the scheduler stopped unexpectedly");
                self.scheduler_alive.store(false, Ordering::Release);
            }
        }
        let begun = tokio::time::Instant::now();
        let remaining = || SHUTDOWN_BUDGET.saturating_sub(begun.elapsed());
        self.notifier.notify("STOPPING=1");
        if let Some(w) = &self.watchdog {
            w.abort();
        }
        self.stop_scheduler().await;
        match tokio::time::timeout(remaining(), self.collector).await {
            // Writes daemon_stop; outages still open stay open and are
            // resumed or closed (with a gap) by the next start. Bounded by
            // itself: what the disk does not take in time is dumped, not lost.
            Ok(Ok(outages)) => outages.shutdown(remaining()).await,
            Ok(Err(e)) => tracing::error!(error = %e, "result collector failed"),
            Err(_) => tracing::warn!("result collector did not drain in time"),
        }
        self.history_stop.cancel();
        if let Err(e) = self.history.flush(jiff::Timestamp::now(), true) {
            tracing::warn!(error = %e, "failed to write the last history rows");
        }
        self.server_stop.cancel();
        if tokio::time::timeout(remaining(), self.server)
            .await
            .is_err()
        {
            tracing::warn!("HTTP server did not stop in time");
        }
        tracing::info!(took = ?begun.elapsed(), "stopped");
    }

    /// No new probes; probes in flight finish or are cut after [`PROBE_GRACE`].
    async fn stop_scheduler(&mut self) {
        tracing::info!("stopping: no new probes; waiting for probes in flight");
        self.cancel.cancel();
        if !self.scheduler.is_finished()
            && tokio::time::timeout(PROBE_GRACE, &mut self.scheduler)
                .await
                .is_err()
        {
            tracing::warn!(grace = ?PROBE_GRACE, "probes still in flight after the grace period; abandoning them");
            self.scheduler.abort();
        }
        self.scheduler_alive.store(false, Ordering::Release);
    }
}

/// Consumes probe results: metrics, status store, outage detector (which
/// journals before it announces), debug log of failures. Returns the outage
/// service once every sender is gone, for an orderly close.
async fn collect(
    mut rx: mpsc::Receiver<ProbeResult>,
    metrics: Arc<Metrics>,
    status: Arc<StatusStore>,
    history: Arc<HistoryStore>,
    mut outages: OutageService,
    config: Arc<Config>,
) -> OutageService {
    // The degradation windows need time to pass without results too.
    let mut tick = tokio::time::interval(crate::outage::degraded::TICK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let r = tokio::select! {
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
            _ = tick.tick() => {
                outages.tick().await;
                continue;
            }
        };
        metrics.record(&r);
        status.record(&r);
        history.record(&r);
        outages.observe(&r).await;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let target = config.targets.get(r.target);
            let name = target.map_or("?", |t| t.name.as_str());
            let outcome = &r.observation.outcome;
            // Error texts quote URLs: no credentials in the log either.
            let text = target.map_or_else(
                || outcome.to_string(),
                |t| crate::status::Secrets::of(&t.spec).scrub(&outcome.to_string()),
            );
            tracing::debug!(target_name = name, result = outcome.result_label(), outcome = %text, "probe finished");
        }
    }
    outages
}

/// Resolves on the first SIGINT, SIGTERM or SIGABRT. SIGABRT is what
/// systemd sends when the watchdog is not fed (a stalled journal withholds
/// it): handled like a stop, queued journal lines are written or dumped
/// rather than lost. SIGHUP is logged and ignored (configuration reload is
/// not supported; restart to apply a new config) rather than killing the
/// daemon, which is its default action.
pub async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    /// `SIGABRT` on Linux (tokio names no kind for it).
    const SIGABRT: i32 = 6;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut abrt = signal(SignalKind::from_raw(SIGABRT))?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!(signal = "SIGTERM", "received stop signal"); return Ok(()); }
            _ = int.recv() => { tracing::info!(signal = "SIGINT", "received stop signal"); return Ok(()); }
            _ = abrt.recv() => { tracing::error!(signal = "SIGABRT", "received abort signal (systemd watchdog?); stopping in order"); return Ok(()); }
            _ = hup.recv() => {
                tracing::warn!(signal = "SIGHUP", "configuration reload is not supported; restart linkwatch to apply a changed config");
            }
        }
    }
}
