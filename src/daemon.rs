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
//!
//! Reload (SIGHUP, `POST /-/reload`, [`Reloader`]): the file is read and
//! validated and the new probers set up first, so a reload that fails
//! changes nothing; then one switch between two results (see [`collect`]).

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
use crate::config::diff::Diff;
use crate::history::HistoryStore;
use crate::journal::{DataDirLock, LockError};
use crate::metrics::Metrics;
use crate::outage::{OutageHandle, OutageService, StartOptions};
use crate::probe::{ProbeResult, Probers};
use crate::scheduler::{self, Scheduler};
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
    #[error("{0}")]
    Tls(String),
    #[error(transparent)]
    Outage(#[from] crate::outage::StartError),
    #[error(transparent)]
    DataDir(#[from] LockError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error(transparent)]
    Notify(#[from] crate::notify::SetupError),
}

/// Runs the daemon until `shutdown` resolves. `on_listen` receives the bound
/// HTTP address (useful with port 0).
///
/// `file_daemon` is what the file itself says of `[daemon]` (the running
/// `config.daemon` may differ by `--data-dir` or the embedded default's
/// fallback): a reload warns only about start-up settings changed in the file.
pub async fn run(
    config: Config,
    file_daemon: crate::config::DaemonConfig,
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
        tls = parts.tls.is_some(),
        "linkwatch listening on {}://{}/metrics",
        if parts.tls.is_some() { "https" } else { "http" },
        parts.addr
    );
    if let Some(tx) = on_listen {
        let _ = tx.send(parts.addr);
    }
    Running::spawn(config, file_daemon, parts)
        .until_stopped(shutdown)
        .await;
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
    notify: crate::notify::NotifyHandle,
    /// The calling side of `[[peer]]`s with a `url` (witnesses, corroboration).
    peers: crate::peer::caller::PeerCalls,
    /// `[daemon] tls_cert`/`tls_key` loaded; `None`: plain HTTP.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// `/api/v1/peer/*`.
    peer: Arc<crate::peer::serve::PeerServer>,
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
        let tls = server::tls::load(&config.daemon).map_err(StartError::Tls)?;
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
        history.register_metrics(metrics.registry())?;
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
        // Notifications: fed from the journal once its lines are durable.
        let notify = crate::notify::NotifyHandle::start(config.clone(), metrics.registry())?;
        // Peers: fed from the journal too; appends through the journal's queue.
        let peers = crate::peer::caller::PeerCalls::start(
            config.clone(),
            outages.journal_pusher(),
            crate::peer::client::Calls::new(metrics.peer.calls.clone()),
        );
        let peer = Arc::new(crate::peer::serve::PeerServer::new(
            config,
            metrics.clone(),
            history.clone(),
            outages.journal_pusher(),
            Some(notify.clone()),
        ));
        Ok(Self {
            listener,
            addr,
            probers,
            metrics,
            status,
            outages,
            outage_handle,
            history,
            notify,
            peers,
            tls,
            peer,
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
    /// Takes SIGHUP and `POST /-/reload` ([`Reloader::serve`]).
    reload_task: JoinHandle<()>,
    notify: crate::notify::NotifyHandle,
    peers: crate::peer::caller::PeerCalls,
}

impl Running {
    /// Starts the server, the collector, the scheduler and the watchdog, and
    /// tells systemd we are ready.
    fn spawn(config: Arc<Config>, file_daemon: crate::config::DaemonConfig, parts: Parts) -> Self {
        let scheduler_alive = Arc::new(AtomicBool::new(true));
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let trusted_peers = server::admission::TrustedPeers::new(&config.daemon.trusted_peers);
        let state = Arc::new(AppState {
            metrics: parts.metrics.clone(),
            status: parts.status.clone(),
            outages: parts.outage_handle.clone(),
            history: parts.history.clone(),
            scheduler_alive: scheduler_alive.clone(),
            started: jiff::Timestamp::now(),
            reload: Some(reload_tx),
            trusted_peers: trusted_peers.clone(),
            data_dir: config.daemon.data_dir.clone(),
            journal_cache: Default::default(),
            peer: Some(parts.peer.clone()),
            tls: server::tls::TlsSlot::new(parts.tls),
        });
        let tls = state.tls.clone();
        let server_stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(
            parts.listener,
            state,
            server_stop.clone().cancelled_owned(),
            HTTP_GRACE,
        ));
        let (tx, rx) = mpsc::channel::<ProbeResult>(config.targets.len().clamp(64, 65_536));
        let (control_tx, control_rx) = mpsc::channel(1);
        let (sched_reload_tx, sched_reload_rx) = mpsc::channel(1);
        let hold = parts.outages.path_tracer().map(|t| t.hold());
        let collector = tokio::spawn(collect(
            Results {
                rx,
                control: control_rx,
                scheduler: sched_reload_tx,
            },
            parts.metrics.clone(),
            parts.status,
            parts.history.clone(),
            parts.outages,
            config.clone(),
        ));
        let reloader = Arc::new(Reloader {
            current: tokio::sync::Mutex::new(Loaded {
                running: config.clone(),
                file_daemon,
            }),
            metrics: parts.metrics.clone(),
            control: control_tx,
            trusted_peers,
            notify: parts.notify.clone(),
            peers: parts.peers.clone(),
            tls,
            peer: parts.peer.clone(),
        });
        let reload_task = tokio::spawn(reloader.serve(reload_rx));
        let history_stop = CancellationToken::new();
        tokio::spawn(parts.peer.clone().watch(history_stop.clone()));
        tokio::spawn(
            parts
                .history
                .clone()
                .flush_periodically(history_stop.clone()),
        );
        let cancel = CancellationToken::new();
        let scheduler = tokio::spawn(
            Scheduler::new(config.clone(), parts.probers, tx, Some(parts.metrics))
                .with_spent_today(spent_today(&config))
                .with_reloads(sched_reload_rx)
                .with_hold(hold)
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
            reload_task,
            notify: parts.notify,
            peers: parts.peers,
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
        // No reload starts once stopping; one in progress is cut (it changes
        // nothing until the collector applies it, which then is drained anyway).
        self.reload_task.abort();
        // Peer calls in flight are cut; what they would have journaled is
        // asked for again by the next start (derived from the journal).
        if tokio::time::timeout(Duration::from_millis(300), self.peers.stop())
            .await
            .is_err()
        {
            tracing::warn!("the peer service did not stop in time");
        }
        self.stop_scheduler().await;
        let disk_answers = match tokio::time::timeout(remaining(), self.collector).await {
            // Writes daemon_stop; outages still open stay open and are
            // resumed or closed (with a gap) by the next start. Bounded by
            // itself: what the disk does not take in time is dumped, not lost.
            Ok(Ok(outages)) => outages.shutdown(remaining()).await,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "result collector failed");
                true
            }
            Err(_) => {
                tracing::warn!("result collector did not drain in time");
                true
            }
        };
        self.notify.stop().await;
        self.history_stop.cancel();
        if disk_answers {
            let history = self.history.clone();
            let flush =
                tokio::task::spawn_blocking(move || history.flush(jiff::Timestamp::now(), true));
            match tokio::time::timeout(remaining(), flush).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "failed to write the last history rows")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "the last history flush failed"),
                Err(_) => tracing::warn!("the last history rows were not written in time"),
            }
        } else {
            // A thread blocked in that filesystem would keep the process
            // from exiting until it answers again.
            tracing::error!(
                "the last history rows are not written: the data directory's filesystem does not answer"
            );
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

/// A reload on its way to the collector, with the probers already built.
struct Apply {
    config: Arc<Config>,
    diff: Arc<Diff>,
    prober: Arc<Probers>,
    done: oneshot::Sender<()>,
}

/// The collector's inputs: probe results, and reloads (passed on to the
/// scheduler, which answers with the new generation's results channel).
struct Results {
    rx: mpsc::Receiver<ProbeResult>,
    control: mpsc::Receiver<Apply>,
    scheduler: mpsc::Sender<scheduler::Reload<Probers>>,
}

/// Results channels of earlier configurations still in use by probes
/// started before a reload, each with the map from its target numbering to
/// the current one (`None`: the target was removed or changed), and its
/// probers, kept until the channel closes (their probes in flight end first).
type Draining = Vec<(
    mpsc::Receiver<ProbeResult>,
    Vec<Option<usize>>,
    Arc<Probers>,
)>;

/// The next result from an earlier generation, renumbered; results of
/// removed targets are discarded (counted nowhere); closed channels go.
async fn next_draining(draining: &mut Draining) -> ProbeResult {
    std::future::poll_fn(|cx| {
        let mut i = 0;
        while i < draining.len() {
            let (rx, map, _) = &mut draining[i];
            match rx.poll_recv(cx) {
                std::task::Poll::Ready(Some(mut r)) => {
                    if let Some(Some(now)) = map.get(r.target) {
                        r.target = *now;
                        return std::task::Poll::Ready(r);
                    }
                    tracing::debug!(
                        target_index = r.target,
                        "result of a probe of a target the reload removed; discarded"
                    );
                }
                std::task::Poll::Ready(None) => {
                    draining.swap_remove(i);
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Consumes probe results: metrics, status store, outage detector (which
/// journals before it announces), debug log of failures. Returns the outage
/// service once every sender is gone, for an orderly close.
///
/// A reload is applied here, between two results, in one step: the
/// scheduler switches first (and moves the per-target metrics) while this
/// task waits, then the status store, the history and the outage service
/// follow. Results of probes started before the switch arrive on the
/// previous channel and are renumbered (or discarded, for a removed
/// target); they are read before the new channel's, so a kept target's
/// results stay in order and none is lost or counted twice.
async fn collect(
    inputs: Results,
    metrics: Arc<Metrics>,
    status: Arc<StatusStore>,
    history: Arc<HistoryStore>,
    mut outages: OutageService,
    mut config: Arc<Config>,
) -> OutageService {
    let Results {
        rx,
        mut control,
        scheduler,
    } = inputs;
    let mut current = Some(rx);
    let mut draining: Draining = Vec::new();
    let mut control_open = true;
    // The degradation windows need time to pass without results too.
    let mut tick = tokio::time::interval(crate::outage::degraded::TICK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if current.is_none() && draining.is_empty() {
            break;
        }
        let r = tokio::select! {
            biased;
            apply = control.recv(), if control_open => {
                match apply {
                    Some(a) => {
                        if let Some(rx) = current.as_mut() {
                            let switched = switch(a, &scheduler, &mut config, &status, &history, &mut outages).await;
                            if let Some((new_rx, map, retired)) = switched {
                                for (_, m, _) in &mut draining {
                                    for slot in m.iter_mut() {
                                        *slot = slot.and_then(|i| map.get(i).copied().flatten());
                                    }
                                }
                                let old = std::mem::replace(rx, new_rx);
                                draining.push((old, map, retired));
                            }
                        }
                    }
                    None => control_open = false,
                }
                continue;
            }
            r = next_draining(&mut draining), if !draining.is_empty() => r,
            r = recv_current(&mut current), if current.is_some() => match r {
                Some(r) => r,
                None => {
                    current = None;
                    continue;
                }
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

async fn recv_current(current: &mut Option<mpsc::Receiver<ProbeResult>>) -> Option<ProbeResult> {
    match current {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

/// Applies one reload in the collector (see [`collect`]): returns the new
/// generation's results channel, the map from the old numbering and the
/// old probers.
async fn switch(
    a: Apply,
    scheduler: &mpsc::Sender<scheduler::Reload<Probers>>,
    config: &mut Arc<Config>,
    status: &StatusStore,
    history: &HistoryStore,
    outages: &mut OutageService,
) -> Option<(
    mpsc::Receiver<ProbeResult>,
    Vec<Option<usize>>,
    Arc<Probers>,
)> {
    let (switched, new_rx) = oneshot::channel();
    let reload = scheduler::Reload {
        config: a.config.clone(),
        prober: a.prober,
        diff: a.diff.clone(),
        switched,
    };
    // Either fails only when the scheduler has stopped: nothing to switch.
    scheduler.send(reload).await.ok()?;
    let scheduler::Switched { results, retired } = new_rx.await.ok()?;
    let kept = &a.diff.targets;
    status.reload(&a.config, kept);
    history.reload(history_targets(&a.config), kept);
    outages.reload(config, &a.config, &a.diff).await;
    let map = a.diff.old_to_new(config.targets.len());
    *config = a.config;
    let _ = a.done.send(());
    Some((results, map, retired))
}

/// What the history store keeps of each target: its name and whether it is a throughput test.
fn history_targets(config: &Config) -> Vec<(String, bool)> {
    config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.kind() == crate::config::Kind::Throughput))
        .collect()
}

/// Reads the configuration from `source` (a path, or the embedded default).
fn load_source(source: &str) -> Result<Config, crate::config::ConfigErrors> {
    if source == crate::config::DEFAULT_SOURCE {
        crate::config::default_config()
    } else {
        crate::config::load(std::path::Path::new(source))
    }
}

/// The configuration running now, and the `[daemon]` settings its file had.
struct Loaded {
    running: Arc<Config>,
    file_daemon: crate::config::DaemonConfig,
}

/// Re-reads the configuration file on request (SIGHUP, `POST /-/reload`)
/// and applies it; one reload at a time.
struct Reloader {
    /// Held for the whole of a reload.
    current: tokio::sync::Mutex<Loaded>,
    metrics: Arc<Metrics>,
    control: mpsc::Sender<Apply>,
    /// The HTTP server's `trusted_peers`, which a reload changes in place.
    trusted_peers: server::admission::TrustedPeers,
    notify: crate::notify::NotifyHandle,
    peers: crate::peer::caller::PeerCalls,
    /// The server's TLS acceptor: certificate and key re-read on every reload.
    tls: server::tls::TlsSlot,
    peer: Arc<crate::peer::serve::PeerServer>,
}

impl Reloader {
    /// Takes SIGHUP and the HTTP endpoint's requests until aborted.
    async fn serve(
        self: Arc<Self>,
        mut requests: mpsc::Receiver<oneshot::Sender<server::ReloadOutcome>>,
    ) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "failed to listen for SIGHUP; reload with POST /-/reload");
                None
            }
        };
        loop {
            tokio::select! {
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    tracing::info!(signal = "SIGHUP", "reloading the configuration");
                    let _ = self.reload().await;
                }
                req = requests.recv() => match req {
                    Some(reply) => {
                        tracing::info!(via = server::RELOAD_PATH, "reloading the configuration");
                        let outcome = self.reload().await;
                        let _ = reply.send(outcome);
                    }
                    None => return,
                },
            }
        }
    }

    /// Re-reads and validates the file, then applies it. A file that does
    /// not validate changes nothing: every problem is logged with file, line
    /// and column, and `linkwatch_config_last_reload_successful` goes to 0.
    async fn reload(&self) -> server::ReloadOutcome {
        let mut current = self.current.lock().await;
        let outcome = self.apply(&mut current).await;
        self.metrics.reload_done(outcome.is_ok());
        outcome
    }

    async fn apply(&self, loaded: &mut Loaded) -> server::ReloadOutcome {
        let current = loaded.running.clone();
        let new = match load_source(&current.source) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(
                        file = %e.file,
                        line = e.line,
                        column = e.column,
                        key = %e.key,
                        problem = %e,
                        "configuration reload failed; nothing changed"
                    );
                }
                return Err(errors.to_string());
            }
        };
        // Certificate files are re-read on every reload, even of an
        // unchanged file (a renewed certificate): one that does not load
        // changes nothing.
        let tls = match server::tls::load(&new.daemon) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(problem = %e, "configuration reload failed; nothing changed");
                return Err(e);
            }
        };
        let mut diff = Diff::between(&current, &new);
        diff.restart_only = crate::config::diff::restart_only(&loaded.file_daemon, &new.daemon);
        let file_daemon = new.daemon.clone();
        for key in &diff.restart_only {
            tracing::warn!(
                key = *key,
                "this setting changed in the file but only takes effect on a restart; the running value stays"
            );
        }
        let new = Arc::new(crate::config::diff::with_running_daemon(&current, new));
        if new.digest == current.digest {
            loaded.file_daemon = file_daemon;
            self.tls.set(tls);
            // Token files may have changed.
            self.peer.reload(&new);
            // Secret files may have changed; paused channels are tried again.
            self.notify.reload(new.clone()).await;
            self.peers.reload(new.clone()).await;
            tracing::info!(config_digest = %new.digest, "configuration unchanged; nothing to reload");
            return Ok(format!("unchanged (config_digest {})", new.digest));
        }
        let prober = match Probers::new(&new).await {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed: the probes of the new configuration could not be set up; nothing changed");
                return Err(format!("failed to set up probes: {e}"));
            }
        };
        if let Some(icmp) = prober.icmp() {
            for (family, mode) in icmp.modes() {
                self.metrics.set_icmp_mode(family, mode.as_str());
            }
        }
        let (done, applied) = oneshot::channel();
        let apply = Apply {
            config: new.clone(),
            diff: Arc::new(diff.clone()),
            prober,
            done,
        };
        if self.control.send(apply).await.is_err() || applied.await.is_err() {
            return Err("the daemon is stopping; reload not applied".into());
        }
        self.trusted_peers.set(&new.daemon.trusted_peers);
        self.tls.set(tls);
        self.peer.reload(&new);
        self.notify.reload(new.clone()).await;
        self.peers.reload(new.clone()).await;
        loaded.running = new.clone();
        loaded.file_daemon = file_daemon;
        Ok(format!(
            "reloaded: config_digest {}; added {:?}, removed {:?}, changed {:?}{}{}",
            new.digest,
            diff.added,
            diff.removed,
            diff.changed,
            diff.peers_text(),
            if diff.restart_only.is_empty() {
                String::new()
            } else {
                format!("; restart needed for {}", diff.restart_only.join(", "))
            }
        ))
    }
}

/// Resolves on the first SIGINT, SIGTERM or SIGABRT. SIGABRT is what
/// systemd sends when the watchdog is not fed (a stalled journal withholds
/// it): handled like a stop, queued journal lines are written or dumped
/// rather than lost. SIGHUP reloads the configuration (the running daemon
/// listens for it, [`Reloader::serve`]); it is taken here too so that one
/// arriving before the daemon runs does not kill it (its default action).
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
                tracing::debug!(signal = "SIGHUP", "SIGHUP received (the daemon reloads its configuration)");
            }
        }
    }
}

/// What each throughput target (by index) spent of its daily data budget
/// since local midnight, as the history store recorded it: a restart (or a
/// crash loop) does not get a fresh budget. Empty without throughput targets
/// (the store is then not read at all).
fn spent_today(config: &Config) -> Vec<u64> {
    let names: Vec<String> = config
        .targets
        .iter()
        .filter(|t| t.kind() == crate::config::Kind::Throughput)
        .map(|t| t.name.clone())
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let now = jiff::Timestamp::now();
    let midnight = now
        .to_zoned(jiff::tz::TimeZone::system())
        .start_of_day()
        .map_or(now, |z| z.timestamp());
    let moved = crate::history::bytes_moved(&config.daemon.data_dir, &names, midnight, now);
    let spent: Vec<u64> = config
        .targets
        .iter()
        .map(|t| {
            names
                .iter()
                .position(|n| *n == t.name)
                .and_then(|i| moved.get(i).copied())
                .unwrap_or(0)
        })
        .collect();
    for (t, bytes) in config.targets.iter().zip(&spent) {
        if *bytes > 0 {
            tracing::info!(
                target_name = %t.name,
                bytes = *bytes,
                "throughput budget: bytes already spent today, before this start"
            );
        }
    }
    spent
}
