//! `linkwatch run`: wires config, probers, scheduler, metrics and the HTTP
//! server together, and shuts them down in order.
//!
//! Shutdown order (one cancellation tree, bounded by [`SHUTDOWN_BUDGET`]):
//! 1. stop scheduling; probes in flight finish or hit their deadline, and are
//!    cut after [`PROBE_GRACE`] at the latest;
//! 2. the collector drains the results that were produced;
//! 3. the HTTP server stops last, so a final scrape still sees everything.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::outage::OutageService;
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
}

/// Runs the daemon until `shutdown` resolves. `on_listen` receives the bound
/// HTTP address (useful with port 0).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_listen: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), StartError> {
    let config = Arc::new(config);
    let probers = Arc::new(Probers::new(&config).await?);
    let metrics = Arc::new(Metrics::new(&config)?);
    if let Some(icmp) = probers.icmp() {
        for (family, mode) in icmp.modes() {
            metrics.set_icmp_mode(family, mode.as_str());
        }
    }
    let status = Arc::new(StatusStore::new(&config));
    let (mut outages, outage_handle) = OutageService::start(&config, metrics.registry()).await?;
    outages.publish_target_states(status.clone());
    let listener = server::bind(config.daemon.listen)
        .await
        .map_err(StartError::Listen)?;
    let addr = listener.local_addr().map_err(StartError::Listen)?;
    tracing::info!(
        addr = %addr,
        config = %config.source,
        targets = config.targets.len(),
        groups = config.groups.len(),
        version = env!("CARGO_PKG_VERSION"),
        "linkwatch listening on http://{addr}/metrics"
    );
    if let Some(tx) = on_listen {
        let _ = tx.send(addr);
    }

    let scheduler_alive = Arc::new(AtomicBool::new(true));
    let state = Arc::new(AppState {
        metrics: metrics.clone(),
        status: status.clone(),
        outages: outage_handle,
        scheduler_alive: scheduler_alive.clone(),
        started: jiff::Timestamp::now(),
    });
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(server::serve(
        listener,
        state,
        server_stop.clone().cancelled_owned(),
        HTTP_GRACE,
    ));
    let (tx, rx) = mpsc::channel::<ProbeResult>(config.targets.len().clamp(64, 65_536));
    let collector = tokio::spawn(collect(
        rx,
        metrics.clone(),
        status,
        outages,
        config.clone(),
    ));
    let cancel = CancellationToken::new();
    let scheduler = tokio::spawn(
        Scheduler::new(config.clone(), probers, tx, Some(metrics)).run(cancel.clone()),
    );
    let notifier = Arc::new(Notifier::from_env());
    notifier.notify(&format!(
        "READY=1\nSTATUS=probing {} targets, serving http://{addr}",
        config.targets.len()
    ));
    let watchdog = spawn_watchdog(&notifier, &scheduler_alive);
    let running = Running {
        scheduler,
        cancel,
        scheduler_alive,
        collector,
        server,
        server_stop,
        notifier,
        watchdog,
    };
    running.until_stopped(shutdown).await;
    Ok(())
}

/// Sends `WATCHDOG=1` at the manager's pace while the scheduler is alive.
fn spawn_watchdog(notifier: &Arc<Notifier>, alive: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let every = notifier.watchdog_interval()?;
    let notifier = notifier.clone();
    let alive = alive.clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // This task running at all shows the runtime is not stalled.
            if alive.load(Ordering::Acquire) {
                notifier.notify("WATCHDOG=1");
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
}

impl Running {
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
            Ok(Ok(outages)) => {
                // Writes daemon_stop; outages still open stay open and are
                // resumed or closed (with a gap) by the next start.
                if tokio::time::timeout(remaining(), outages.shutdown())
                    .await
                    .is_err()
                {
                    tracing::warn!("outage journal did not close in time");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "result collector failed"),
            Err(_) => tracing::warn!("result collector did not drain in time"),
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
        outages.observe(&r).await;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let name = config
                .targets
                .get(r.target)
                .map_or("?", |t| t.name.as_str());
            let outcome = &r.observation.outcome;
            tracing::debug!(target_name = name, result = outcome.result_label(), outcome = %outcome, "probe finished");
        }
    }
    outages
}

/// Resolves on the first SIGINT or SIGTERM. SIGHUP is logged and ignored
/// (configuration reload is not supported; restart to apply a new config)
/// rather than killing the daemon, which is its default action.
pub async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!(signal = "SIGTERM", "received stop signal"); return Ok(()); }
            _ = int.recv() => { tracing::info!(signal = "SIGINT", "received stop signal"); return Ok(()); }
            _ = hup.recv() => {
                tracing::warn!(signal = "SIGHUP", "configuration reload is not supported; restart linkwatch to apply a changed config");
            }
        }
    }
}
