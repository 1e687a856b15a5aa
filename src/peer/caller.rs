//! The calling side's service: one thread follows the journal (the same
//! [`JournalTail`] the notifier uses) and keeps what the callers need from
//! it (the chain head, the edges, the periods waiting for corroboration);
//! for each peer with a `url`, one task sends witnesses ([`witness`]) and
//! one asks for corroboration ([`corroborate`]).
//!
//! Nothing runs without a peer that has a `url`. A reload swaps the
//! configuration and restarts the peers' tasks; the journal's reading and
//! what it learned stay. Nothing here is on the probe path: the tail polls a
//! file, the tasks wait on the network, and their journal lines go through
//! the journal's queue like every other producer's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::{Calls, PeerClient};
use super::corroborate::{self, Backoff, Book, Next, Retries};
use super::witness::{self, Head};
use crate::config::Config;
use crate::journal::tail::{JournalTail, TailItem};
use crate::journal::{Entry, JOURNAL_FILE, JournalPusher};

/// How often the journal is looked at.
const POLL: Duration = Duration::from_millis(250);

/// What the journal's reader tells the peer tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Signal {
    /// The journal as it was at start has been read.
    pub caught_up: bool,
    /// Outage and slow-period edges read since.
    pub edges: u64,
    /// Periods added to the book since start.
    pub periods: u64,
}

impl Signal {
    /// Waits until the journal has been read once; `false`: cancelled first.
    pub async fn wait_caught_up(
        rx: &mut watch::Receiver<Signal>,
        cancel: &CancellationToken,
    ) -> bool {
        tokio::select! {
            r = rx.wait_for(|s| s.caught_up) => r.is_ok(),
            () = cancel.cancelled() => false,
        }
    }
}

/// What the reader and the peer tasks share.
struct Shared {
    config: RwLock<Arc<Config>>,
    book: Mutex<Book>,
    head: Mutex<Option<Head>>,
    signal: watch::Sender<Signal>,
    journal: JournalPusher,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn subscribe(&self) -> watch::Receiver<Signal> {
        self.signal.subscribe()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    pub fn head(&self) -> Option<Head> {
        lock(&self.head).clone()
    }

    pub fn witness_every(&self) -> Duration {
        self.config().daemon.witness_every
    }

    /// This site's name as peers know it.
    pub fn site(&self) -> String {
        witness::site_of(&self.config())
    }

    /// Appends `entry` to the journal (through its queue).
    pub async fn push(&self, entry: Entry) {
        self.journal.push(Timestamp::now(), entry).await;
    }
}

/// Logs a peer's failing calls without repeating itself: the first failure
/// and a change of reason at WARN, repeats at DEBUG, the recovery at INFO.
#[derive(Debug, Default)]
struct FailureLog {
    failing: Option<&'static str>,
    failed: u64,
}

impl FailureLog {
    pub fn failed(
        &mut self,
        peer: &str,
        endpoint: &str,
        kind: &'static str,
        why: &str,
        retry_in: Duration,
    ) {
        self.failed += 1;
        if self.failing != Some(kind) {
            tracing::warn!(peer, endpoint, result = kind, reason = %why, retry_in = ?retry_in, "peer call failed; retrying");
        } else {
            tracing::debug!(peer, endpoint, result = kind, reason = %why, retry_in = ?retry_in, failed_calls = self.failed, "peer call failed again");
        }
        self.failing = Some(kind);
    }

    pub fn recovered(&mut self, peer: &str, endpoint: &str) {
        if self.failing.take().is_some() {
            tracing::info!(
                peer,
                endpoint,
                failed_calls = self.failed,
                "peer answers again"
            );
        }
        self.failed = 0;
    }
}

/// One peer's tasks.
struct RunningPeer {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// The running calling side.
struct Caller {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    peers: Vec<RunningPeer>,
}

/// The peers of `config` that can be called.
fn callable(config: &Config) -> impl Iterator<Item = &crate::config::peer::PeerSpec> {
    config.peers.iter().filter(|p| p.url.is_some())
}

impl Caller {
    fn start(config: Arc<Config>, journal: JournalPusher, calls: &Calls) -> Option<Self> {
        callable(&config).next()?;
        let path = config.daemon.data_dir.join(JOURNAL_FILE);
        let (signal, _) = watch::channel(Signal::default());
        let shared = Arc::new(Shared {
            config: RwLock::new(config),
            book: Mutex::new(Book::default()),
            head: Mutex::new(None),
            signal,
            journal,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("peer-journal".into())
                .spawn(move || read_journal(&shared, path, &stop))
        };
        let reader = match reader {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the peer service's journal reader; no witnesses or corroboration this run");
                return None;
            }
        };
        let mut caller = Self {
            shared,
            stop,
            reader,
            peers: Vec::new(),
        };
        caller.spawn_peers(calls);
        Some(caller)
    }

    /// Starts the tasks of every callable peer of the current configuration.
    fn spawn_peers(&mut self, calls: &Calls) {
        let config = self.shared.config();
        for spec in callable(&config) {
            let Some(url) = &spec.url else { continue };
            let client = match PeerClient::new(
                &spec.name,
                url,
                spec.token.clone(),
                spec.ca_file.as_deref(),
                calls.clone(),
            ) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    tracing::error!(error = %e, "peer not called: its client could not be set up");
                    continue;
                }
            };
            tracing::info!(peer = %spec.name, url = %client.shown(), witness_every = ?config.daemon.witness_every, "calling peer");
            let cancel = CancellationToken::new();
            let reachable = Arc::new(tokio::sync::Notify::new());
            let tasks = vec![
                tokio::spawn(send_witnesses(
                    self.shared.clone(),
                    client.clone(),
                    reachable.clone(),
                    cancel.clone(),
                )),
                tokio::spawn(corroborate_periods(
                    self.shared.clone(),
                    client,
                    spec.compare.clone(),
                    reachable,
                    cancel.clone(),
                )),
            ];
            self.peers.push(RunningPeer { cancel, tasks });
        }
    }

    fn stop_peers(&mut self) {
        for p in self.peers.drain(..) {
            p.cancel.cancel();
            for t in p.tasks {
                t.abort();
            }
        }
    }

    async fn stop(mut self) {
        self.stop_peers();
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.reader.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for p in &self.peers {
            p.cancel.cancel();
        }
    }
}

/// The journal reader's loop: the head, the edges, the book.
fn read_journal(shared: &Shared, path: std::path::PathBuf, stop: &AtomicBool) {
    let mut tail = JournalTail::new(path, true);
    while !stop.load(Ordering::Acquire) {
        let config = shared.config();
        let now = Timestamp::now();
        let caught_up = shared.signal.borrow().caught_up;
        let (mut edges, mut periods) = (0u64, 0u64);
        let mut head = None;
        tail.read(|items| {
            let mut book = shared.book();
            for item in items {
                match item {
                    TailItem::Line { line, hash } => {
                        if let Some(hash) = hash {
                            head = Some(Head {
                                seq: line.seq,
                                hash: hash.clone(),
                                at: line.ts,
                            });
                        }
                        if caught_up && witness::is_edge(&line.entry) {
                            edges += 1;
                        }
                        if book.observe(line, &config, now) {
                            periods += 1;
                        }
                    }
                    TailItem::Other { seq, hash } => {
                        if let Some(hash) = hash {
                            head = Some(Head {
                                seq: *seq,
                                hash: hash.clone(),
                                at: now,
                            });
                        }
                    }
                    TailItem::Damaged { .. } => {}
                }
            }
            true
        });
        if let Some(h) = head {
            *lock(&shared.head) = Some(h);
        }
        let peers: Vec<String> = callable(&config).map(|p| p.name.clone()).collect();
        for (period, missing) in shared.book().expire(now, &peers) {
            for peer in missing {
                tracing::warn!(
                    peer = %peer,
                    period = %period.id,
                    group = %period.group,
                    "no corroboration from this peer 24 h after the period ended; giving up"
                );
            }
        }
        shared.signal.send_if_modified(|s| {
            let before = *s;
            s.caught_up = true;
            s.edges += edges;
            s.periods += periods;
            *s != before
        });
        std::thread::sleep(POLL);
    }
}

/// Sends the head to one peer until cancelled: every `witness_every`, at
/// once at each edge, and, while it fails, after a doubling wait (1 s up to
/// [`witness::MAX_RETRY`]) with whatever the head is then.
async fn send_witnesses(
    shared: Arc<Shared>,
    client: Arc<PeerClient>,
    reachable: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    let mut signal = shared.subscribe();
    if !Signal::wait_caught_up(&mut signal, &cancel).await {
        return;
    }
    let mut backoff = Backoff::new(Duration::from_secs(1), witness::MAX_RETRY);
    let mut failures = FailureLog::default();
    let mut edges = signal.borrow().edges;
    loop {
        let wait = match shared.head() {
            None => shared.witness_every(),
            Some(head) => match witness::send(&client, &shared.site(), &head).await {
                Ok(w) => {
                    shared.push(Entry::Witnessed(w)).await;
                    backoff.reset();
                    failures.recovered(client.name(), witness::ENDPOINT);
                    reachable.notify_one();
                    shared.witness_every()
                }
                Err((kind, why)) => {
                    let wait = backoff.next_wait();
                    failures.failed(client.name(), witness::ENDPOINT, kind, &why, wait);
                    wait
                }
            },
        };
        // The next send: after `wait`, or at the next edge.
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = signal.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = signal.borrow().edges;
                    if now != edges {
                        edges = now;
                        break;
                    }
                }
                () = cancel.cancelled() => return,
            }
        }
    }
}

/// Asks one peer for the periods waiting for it, until cancelled; an
/// answer is journaled as a `corroboration` line.
async fn corroborate_periods(
    shared: Arc<Shared>,
    client: Arc<PeerClient>,
    compare: BTreeMap<String, String>,
    reachable: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    let mut signal = shared.subscribe();
    if !Signal::wait_caught_up(&mut signal, &cancel).await {
        return;
    }
    let peer = client.name().to_owned();
    let mut retries = Retries::default();
    let mut failures = FailureLog::default();
    loop {
        let now = Timestamp::now();
        let next = {
            let book = shared.book();
            retries.prune(&book, &peer);
            match retries.next(&book, &peer, now) {
                Next::Ask(p) => Ok(p.clone()),
                Next::WaitUntil(t) => Err(Some(t)),
                Next::Idle => Err(None),
            }
        };
        let until = match next {
            Ok(period) => {
                match corroborate::ask(&client, &compare, &period).await {
                    Ok(c) => {
                        tracing::info!(
                            peer = %peer,
                            period = %period.id,
                            group = %period.group,
                            verdict = c.verdict.as_str(),
                            summary = %c.summary,
                            "corroboration received"
                        );
                        // Settled before the line is queued: the reader
                        // reads it back later.
                        shared.book().settle(&peer, &period.id);
                        shared.push(Entry::Corroboration(c)).await;
                        failures.recovered(&peer, corroborate::ENDPOINT);
                        retries.succeeded(&period.id);
                    }
                    Err(e) => {
                        let wait = retries.failed(&period.id, e.is_unreachable(), Timestamp::now());
                        failures.failed(
                            &peer,
                            corroborate::ENDPOINT,
                            e.result(),
                            &e.to_string(),
                            wait,
                        );
                    }
                }
                continue;
            }
            Err(until) => until,
        };
        let wait = until.map(|t| {
            Duration::try_from(t.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
        });
        tokio::select! {
            () = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            } => {}
            changed = signal.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = reachable.notified() => retries.reachable(),
            () = cancel.cancelled() => return,
        }
    }
}

/// The daemon's handle on the calling side: starts it when a peer has a
/// `url`, swaps its configuration on reload, stops it.
#[derive(Clone)]
pub struct PeerCalls {
    running: Arc<tokio::sync::Mutex<Option<Caller>>>,
    journal: JournalPusher,
    calls: Calls,
}

impl PeerCalls {
    /// Starts calling the peers of `config` that have a `url` (nothing
    /// runs without one); `calls` counts every call.
    pub fn start(config: Arc<Config>, journal: JournalPusher, calls: Calls) -> Self {
        let caller = Caller::start(config, journal.clone(), &calls);
        Self {
            running: Arc::new(tokio::sync::Mutex::new(caller)),
            journal,
            calls,
        }
    }

    /// Applies a reloaded configuration: the peers' tasks restart with it;
    /// what was read from the journal (pending corroborations) stays.
    pub async fn reload(&self, config: Arc<Config>) {
        let mut running = self.running.lock().await;
        let wanted = callable(&config).next().is_some();
        match running.as_mut() {
            Some(c) if wanted => {
                c.stop_peers();
                *c.shared.config.write().unwrap_or_else(|p| p.into_inner()) = config;
                c.spawn_peers(&self.calls);
            }
            Some(_) => {
                if let Some(c) = running.take() {
                    c.stop().await;
                }
                tracing::info!("no peer with a url any more; peer calls stopped");
            }
            None if wanted => {
                *running = Caller::start(config, self.journal.clone(), &self.calls);
            }
            None => {}
        }
    }

    pub async fn stop(&self) {
        if let Some(c) = self.running.lock().await.take() {
            c.stop().await;
        }
    }
}
