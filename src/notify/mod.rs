//! Notifications that survive the outage they report.
//!
//! The feed is the journal itself: a thread of its own ([`Tailer`]) reads
//! `journal.jsonl` from where each channel's outbox says it stopped (the
//! `cursor`), so only lines that are already durable are told, and a crash
//! between the journal line and the outbox entry loses nothing (the next
//! start derives it again from the cursor). For each line and channel it
//! applies the channel's filters (`events`, `groups`, `min_duration`, the
//! rate limit) and appends the message and the new cursor to the channel's
//! outbox in one fsynced batch ([`outbox`]) before anything is sent.
//!
//! One delivery task per channel sends the outbox head, in order; an
//! acknowledged message is recorded (`ack`) before the next is sent, so a
//! restart resends at most the one message in flight (receivers drop it by
//! its id). A rejection (4xx, a bad token) pauses the channel until the
//! configuration is reloaded; anything else backs off, and an outage's end
//! (the link is back) cuts the back-off short.
//!
//! Nothing here is on the probe path: the tailer polls a file and the
//! delivery tasks wait on the network; probes and the journal writer never
//! wait for either.
//!
//! Seam for peers (issue 20): a peer's `site_silent` view would enter through
//! [`NotifyService::push_external`], which queues a ready notification on the
//! channels that want `site_silent` exactly as a journal-derived one.

pub mod channel;
pub mod message;
pub mod metrics;
pub mod outbox;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::config::notify::{NotifyChannel, NotifyEvent};
use crate::journal::JOURNAL_FILE;
use crate::journal::tail::{JournalTail, TailItem};
use channel::{SendError, Sender};
use message::Notification;
pub use metrics::NotifyMetrics;
use outbox::{Outbox, Record};

/// How often the tailer looks at the journal.
const POLL: Duration = Duration::from_millis(250);
/// Held-back (rate-limited) events are summarised once none came for this
/// long (or the window is over, if shorter): the flapping has calmed.
const FLAP_SETTLE: Duration = Duration::from_secs(120);
/// First retry after a failed attempt; doubles up to the channel's `retry_max`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// One channel: its sender, outbox and delivery state.
struct Chan {
    cfg: NotifyChannel,
    sender: Sender,
    outbox: Mutex<Outbox>,
    /// Something was queued.
    wake: Notify,
    /// The link is probably back: retry now.
    kick: Notify,
    kicked: AtomicBool,
    /// Why the channel is paused (a rejection), until reload.
    paused: Mutex<Option<String>>,
}

impl Chan {
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running notifier.
pub struct NotifyService {
    chans: Vec<Arc<Chan>>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tailer: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    config: Arc<Config>,
}

/// A channel that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("notify channel {channel}: {reason}")]
pub struct SetupError {
    pub channel: String,
    pub reason: String,
}

impl NotifyService {
    /// Opens every channel's outbox and starts the tailer and the delivery
    /// tasks. With no `[[notify]]` channel, nothing runs.
    pub fn start(config: Arc<Config>, metrics: NotifyMetrics) -> Result<Self, SetupError> {
        let data_dir = config.daemon.data_dir.clone();
        let journal = data_dir.join(JOURNAL_FILE);
        // Where a new channel starts; nothing to read without channels.
        let last = if config.notify.is_empty() {
            None
        } else {
            crate::journal::last_seq(&journal)
        };
        let mut chans = Vec::new();
        for cfg in &config.notify {
            let err = |reason: String| SetupError {
                channel: cfg.name.clone(),
                reason,
            };
            let sender = Sender::new(cfg.clone()).map_err(err)?;
            let path = outbox::path(&data_dir, &cfg.name);
            let mut ob = Outbox::open(&path)
                .map_err(|e| err(format!("cannot open the outbox {}: {e}", path.display())))?;
            let journal_next = last.map_or(0, |s| s + 1);
            if let Some(cursor) = ob.state.cursor
                && cursor > journal_next
            {
                // The journal was replaced by a shorter one (a new data
                // directory's journal, a restored backup): its seq started
                // again, and a cursor beyond it would never be reached.
                tracing::warn!(
                    channel = %cfg.name,
                    cursor,
                    journal_next,
                    "the journal is shorter than this channel has read; reading on from its end"
                );
                ob.append(&[Record::Cursor { next: journal_next }])
                    .map_err(|e| err(format!("cannot write the outbox {}: {e}", path.display())))?;
            }
            if ob.state.cursor.is_none() {
                // A new channel starts at the journal's end: it is told
                // what happens from now on, not the history.
                let next = last.map_or(0, |s| s + 1);
                ob.append(&[Record::Cursor { next }])
                    .map_err(|e| err(format!("cannot write the outbox {}: {e}", path.display())))?;
            }
            metrics.channel(&cfg.name);
            tracing::info!(
                channel = %cfg.name,
                kind = cfg.kind.name(),
                queued = ob.state.pending.len(),
                held = ob.state.held.len(),
                next_seq = ?ob.state.cursor,
                "notification channel ready"
            );
            chans.push(Arc::new(Chan {
                cfg: cfg.clone(),
                sender,
                outbox: Mutex::new(ob),
                wake: Notify::new(),
                kick: Notify::new(),
                kicked: AtomicBool::new(false),
                paused: Mutex::new(None),
            }));
        }
        let cancel = CancellationToken::new();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut tailer = None;
        if !chans.is_empty() {
            for c in &chans {
                tasks.push(tokio::spawn(deliver(
                    c.clone(),
                    metrics.clone(),
                    cancel.clone(),
                )));
            }
            let t = Tailer {
                journal,
                chans: chans.clone(),
                config: config.clone(),
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            let handle = std::thread::Builder::new()
                .name("notify-tailer".into())
                .spawn(move || t.run())
                .map_err(|e| SetupError {
                    channel: "*".into(),
                    reason: format!("cannot start the notify thread: {e}"),
                })?;
            tailer = Some(handle);
        }
        Ok(Self {
            chans,
            cancel,
            tasks,
            tailer,
            stop,
            config,
        })
    }

    /// Queues a notification that does not come from this site's journal
    /// (the seam for a peer's `site_silent`, issue 20) on every channel that
    /// wants `event`.
    pub fn push_external(&self, event: NotifyEvent, n: Notification) {
        for c in &self.chans {
            if !c.cfg.wants(event) {
                continue;
            }
            let r = c.outbox().append(&[Record::Msg { msg: n.clone() }]);
            match r {
                Ok(()) => c.wake.notify_one(),
                Err(e) => {
                    tracing::error!(channel = %c.cfg.name, id = %n.id, error = %e, "could not queue a notification")
                }
            }
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Stops the tailer and the delivery tasks; a message in flight is cut
    /// (it stays queued and is sent again by the next run).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
        if let Some(t) = self.tailer.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for NotifyService {
    /// Dropped without [`Self::stop`]: the tailer and the tasks still end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.cancel.cancel();
    }
}

/// Reads the journal as it grows and queues what each channel is told.
struct Tailer {
    journal: PathBuf,
    chans: Vec<Arc<Chan>>,
    config: Arc<Config>,
    metrics: NotifyMetrics,
    stop: Arc<AtomicBool>,
}

impl Tailer {
    fn run(self) {
        // A replaced or shortened file is read from its start; the cursors
        // skip what was told already.
        let mut tail = JournalTail::new(self.journal.clone(), false);
        while !self.stop.load(Ordering::Acquire) {
            tail.read(|items| self.derive_all(items));
            let now = Timestamp::now();
            for c in &self.chans {
                self.maintain(c, now);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Derives `items` for every channel; `false` when a channel could not
    /// write its outbox (a full disk): the journal is then read again from
    /// its start, and each channel's cursor skips what it has.
    fn derive_all(&self, items: &[TailItem]) -> bool {
        let mut all_written = true;
        for c in &self.chans {
            if !self.derive(c, items) {
                all_written = false;
            }
        }
        all_written
    }

    /// Queues `lines` on `c`; `false` when its outbox could not be written.
    fn derive(&self, c: &Chan, lines: &[TailItem]) -> bool {
        let mut ob = c.outbox();
        let Some(mut next) = ob.state.cursor else {
            return true;
        };
        let start_next = next;
        let mut link_back = false;
        // Simulated state for this batch: ids pending and the rate window.
        let mut batch = Batch {
            records: Vec::new(),
            pending: ob.state.pending.iter().cloned().collect(),
            recent: ob.state.recent.iter().copied().collect(),
        };
        for p in lines {
            let Some(derived) = self.message_of(p, &mut next) else {
                continue;
            };
            if matches!(
                derived.event,
                NotifyEvent::OutageEnd | NotifyEvent::SlowEnd | NotifyEvent::DaemonStart
            ) {
                link_back = true;
            }
            batch.queue(&c.cfg, derived);
        }
        let mut records = batch.records;
        if next == start_next && records.is_empty() {
            return true;
        }
        records.push(Record::Cursor { next });
        match ob.append(&records) {
            Ok(()) => {
                drop(ob);
                c.wake.notify_one();
                if link_back {
                    c.kicked.store(true, Ordering::Release);
                    c.kick.notify_one();
                }
                true
            }
            Err(e) => {
                tracing::error!(
                    channel = %c.cfg.name,
                    error = %e,
                    "could not write the notification outbox (disk full?); it is left as it was and retried"
                );
                false
            }
        }
    }

    /// What one read line makes for a channel whose cursor is `next` (moved
    /// past the line): `None` for a line already read or one that tells nothing.
    fn message_of(&self, p: &TailItem, next: &mut u64) -> Option<message::Derived> {
        match p {
            TailItem::Line { line: l, .. } => {
                if l.seq < *next {
                    return None;
                }
                *next = l.seq + 1;
                message::derive(&self.config, l)
            }
            TailItem::Other { seq, .. } => {
                if *seq >= *next {
                    *next = seq + 1;
                }
                None
            }
            TailItem::Damaged { after, what } => {
                // Told once, by the channels that had read up to it.
                let after_next = after.map_or(0, |s| s + 1);
                if after_next != *next {
                    return None;
                }
                Some(message::damage(
                    &self.config,
                    after.unwrap_or(0),
                    Timestamp::now(),
                    what,
                ))
            }
        }
    }

    /// Summaries of held-back and of too many or too old messages; gauges.
    fn maintain(&self, c: &Chan, now: Timestamp) {
        let mut ob = c.outbox();
        let site = self
            .config
            .daemon
            .site
            .clone()
            .unwrap_or_else(|| "linkwatch".into());
        let mut records = Vec::new();
        // Held back by the rate limit: one summary once calm.
        if let Some(last) = ob.state.held.last() {
            let settle = FLAP_SETTLE.min(c.cfg.rate_window);
            let calm = now.duration_since(last.at).as_secs_f64() >= settle.as_secs_f64();
            let long = ob.state.held.first().is_some_and(|f| {
                now.duration_since(f.at).as_secs_f64() >= c.cfg.rate_window.as_secs_f64()
            });
            if calm || long {
                let held: Vec<Notification> = ob.state.held.clone();
                let mut summary = message::summary(
                    &site,
                    &held,
                    "were held back by the rate limit (flapping)",
                    now,
                );
                summary.text = format!("{}{}", summary.text, latest_states(&held));
                records.push(Record::Fold {
                    ids: held.iter().map(|h| h.id.clone()).collect(),
                    summary,
                });
            }
        }
        // The outbox bound: too many or too old undelivered messages.
        if records.is_empty() {
            let pending = &ob.state.pending;
            let over = pending.len().saturating_sub(c.cfg.max_queue as usize - 1);
            let max_age = jiff::SignedDuration::try_from(c.cfg.max_age).unwrap_or_default();
            let cutoff = now.checked_sub(max_age).unwrap_or(now);
            let old = pending.iter().take_while(|p| p.at < cutoff).count();
            let fold = over.max(if old >= 2 { old } else { 0 });
            if fold >= 2 {
                let folded: Vec<Notification> = pending.iter().take(fold).cloned().collect();
                let summary = message::summary(&site, &folded, "could not be delivered", now);
                self.metrics
                    .count(&c.cfg.name, "folded", folded.len() as u64);
                tracing::warn!(
                    channel = %c.cfg.name,
                    folded = folded.len(),
                    "the notification outbox is over its bound; the oldest messages are folded into one summary"
                );
                records.push(Record::Fold {
                    ids: folded.iter().map(|f| f.id.clone()).collect(),
                    summary,
                });
            }
        }
        if !records.is_empty() {
            match ob.append(&records) {
                Ok(()) => c.wake.notify_one(),
                Err(e) => {
                    tracing::error!(channel = %c.cfg.name, error = %e, "could not write the notification outbox (disk full?); retried")
                }
            }
        }
        let oldest = ob
            .state
            .pending
            .front()
            .map_or(0.0, |p| now.duration_since(p.at).as_secs_f64().max(0.0));
        self.metrics.set_queue(
            &c.cfg.name,
            ob.state.pending.len() + ob.state.held.len(),
            oldest,
        );
    }
}

/// The outbox records one tailer pass writes for a channel, with the
/// channel's pending messages and rate window as they will be after them.
struct Batch {
    records: Vec<Record>,
    pending: Vec<Notification>,
    recent: Vec<Timestamp>,
}

impl Batch {
    /// Applies the channel's filters (`events`, `groups`, `min_duration`,
    /// the rate limit) to one derived message and records what follows.
    fn queue(&mut self, cfg: &NotifyChannel, derived: message::Derived) {
        let n = derived.notification;
        if !cfg.wants(derived.event) {
            return;
        }
        if let Some(g) = &n.group
            && !cfg.wants_group(g)
        {
            return;
        }
        let min = cfg.min_duration;
        let mut n = n;
        match derived.event {
            NotifyEvent::OutageStart | NotifyEvent::SlowStart if !min.is_zero() => {
                let start = n.start.unwrap_or(n.at);
                n.not_before = start
                    .checked_add(jiff::SignedDuration::try_from(min).unwrap_or_default())
                    .ok();
            }
            NotifyEvent::OutageEnd | NotifyEvent::SlowEnd
                if !min.is_zero() && n.duration_seconds.unwrap_or(f64::MAX) < min.as_secs_f64() =>
            {
                // Shorter than min_duration: withdraw its start if it
                // has not gone out; then the end is not told either.
                let start_event = if derived.event == NotifyEvent::OutageEnd {
                    "outage_start"
                } else {
                    "slow_start"
                };
                if let Some(i) = self
                    .pending
                    .iter()
                    .position(|p| p.period_id == n.period_id && p.event == start_event)
                {
                    let gone = self.pending.remove(i);
                    self.records.push(Record::Drop {
                        id: gone.id,
                        reason: format!(
                            "shorter than min_duration ({})",
                            message::duration(min.as_secs_f64())
                        ),
                    });
                    return;
                }
            }
            _ => {}
        }
        // The rate limit, by event time.
        let window = jiff::SignedDuration::try_from(cfg.rate_window).unwrap_or_default();
        let since = n.at.checked_sub(window).unwrap_or(n.at);
        self.recent.retain(|t| *t >= since);
        if self.recent.len() >= cfg.rate_limit as usize {
            self.recent.push(n.at);
            self.records.push(Record::Held { msg: n });
        } else {
            self.recent.push(n.at);
            self.pending.push(n.clone());
            self.records.push(Record::Msg { msg: n });
        }
    }
}

/// "; now: Internet up since 10:07" — each group's last state among the
/// held-back events, so the summary leaves no one believing a stale message.
fn latest_states(held: &[Notification]) -> String {
    let mut last: BTreeMap<&str, &Notification> = BTreeMap::new();
    for h in held {
        if let Some(g) = &h.group {
            last.insert(g, h);
        }
    }
    let parts: Vec<String> = last
        .values()
        .map(|n| {
            let t = message::clock(n.end.or(n.start).unwrap_or(n.at));
            match n.event.as_str() {
                "outage_end" => format!("{} up since {t}", n.group.as_deref().unwrap_or("")),
                "outage_start" => format!("{} down since {t}", n.group.as_deref().unwrap_or("")),
                "slow_start" => format!("{} slow since {t}", n.group.as_deref().unwrap_or("")),
                _ => format!("{} fine since {t}", n.group.as_deref().unwrap_or("")),
            }
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(". Latest: {}", parts.join(", "))
    }
}

/// The delivery loop of one channel.
async fn deliver(c: Arc<Chan>, metrics: NotifyMetrics, cancel: CancellationToken) {
    let mut backoff = FIRST_RETRY;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let wake = c.wake.notified();
        let head = c.outbox().head().cloned();
        let Some(head) = head else {
            tokio::select! {
                () = wake => {}
                () = cancel.cancelled() => return,
            }
            continue;
        };
        if c.paused.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            cancel.cancelled().await;
            return;
        }
        let now = Timestamp::now();
        if let Some(nb) = head.not_before
            && nb > now
        {
            let wait = Duration::try_from(nb.duration_since(now)).unwrap_or(POLL);
            tokio::select! {
                () = tokio::time::sleep(wait.min(Duration::from_secs(5))) => {}
                () = wake => {}
                () = cancel.cancelled() => return,
            }
            continue;
        }
        if let Some(q) = c.cfg.quiet_hours {
            let z = now.to_zoned(jiff::tz::TimeZone::system());
            let minute = (z.hour() as u16) * 60 + z.minute() as u16;
            if q.contains(minute) {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                    () = cancel.cancelled() => return,
                }
                continue;
            }
        }
        let result = tokio::select! {
            r = c.sender.send(&head) => r,
            () = cancel.cancelled() => return,
        };
        match result {
            Ok(answer) => {
                metrics.count(&c.cfg.name, "sent", 1);
                tracing::info!(channel = %c.cfg.name, id = %head.id, event = %head.event, seq = head.seq, answer = %answer, "notification delivered");
                backoff = FIRST_RETRY;
                if !acknowledge(&c, &head, &cancel).await {
                    return;
                }
            }
            Err(SendError::Rejected(reason)) => {
                metrics.count(&c.cfg.name, "rejected", 1);
                tracing::error!(
                    channel = %c.cfg.name,
                    kind = c.cfg.kind.name(),
                    id = %head.id,
                    reason = %reason,
                    "the notification channel refused the message; the channel is paused until the configuration is reloaded (messages stay queued)"
                );
                *c.paused.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                metrics.set_paused(&c.cfg.name, true);
            }
            Err(SendError::Failed(reason)) => {
                metrics.count(&c.cfg.name, "failed", 1);
                tracing::warn!(
                    channel = %c.cfg.name,
                    id = %head.id,
                    reason = %reason,
                    retry_in = ?backoff,
                    "notification not delivered; retrying"
                );
                if !back_off(&c, &mut backoff, &cancel).await {
                    return;
                }
            }
        }
    }
}

/// Records that `head` was delivered, before the next is sent; retried
/// while the disk refuses. `false`: cancelled first.
async fn acknowledge(c: &Arc<Chan>, head: &Notification, cancel: &CancellationToken) -> bool {
    loop {
        let c2 = c.clone();
        let id = head.id.clone();
        let r =
            tokio::task::spawn_blocking(move || c2.outbox().append(&[Record::Ack { id }])).await;
        match r {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => {
                tracing::error!(channel = %c.cfg.name, id = %head.id, error = %e, "could not record a delivery (disk full?); retrying")
            }
            Err(e) => {
                tracing::error!(channel = %c.cfg.name, error = %e, "outbox task failed")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = cancel.cancelled() => return false,
        }
    }
}

/// Waits out `backoff` after a failed attempt (doubling it up to
/// `retry_max`), or less when an outage's end kicks the channel, which also
/// resets it. `false`: cancelled first.
async fn back_off(c: &Chan, backoff: &mut Duration, cancel: &CancellationToken) -> bool {
    let kick = c.kick.notified();
    if !c.kicked.swap(false, Ordering::AcqRel) {
        tokio::select! {
            () = tokio::time::sleep(*backoff) => {}
            () = kick => { *backoff = FIRST_RETRY; c.kicked.store(false, Ordering::Release); return true; }
            () = cancel.cancelled() => return false,
        }
        *backoff = (*backoff * 2).min(c.cfg.retry_max);
    } else {
        *backoff = FIRST_RETRY;
    }
    true
}

/// What `check` can tell about the channels without the network: the TLS
/// set-up and an e-mail channel's `ca_file` (secrets were read by the parse).
pub fn check_offline(config: &Config) -> Result<(), SetupError> {
    for c in &config.notify {
        let err = |reason: String| SetupError {
            channel: c.name.clone(),
            reason,
        };
        Sender::new(c.clone()).map_err(err)?;
        if let crate::config::notify::ChannelKind::Email {
            ca_file: Some(path),
            ..
        } = &c.kind
        {
            let pem =
                std::fs::read(path).map_err(|e| err(format!("ca_file {}: {e}", path.display())))?;
            lettre::transport::smtp::client::Certificate::from_pem(&pem)
                .map_err(|e| err(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

/// `linkwatch notify test --channel NAME`: sends one test message, now,
/// without the outbox, and returns the channel's answer.
pub async fn send_test(config: &Config, name: &str) -> Result<String, String> {
    let Some(cfg) = config.notify.iter().find(|c| c.name == name) else {
        let names: Vec<&str> = config.notify.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "no [[notify]] channel named {name:?}; configured: {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    let sender = Sender::new(cfg.clone())?;
    let n = message::test_message(config, name);
    sender.send(&n).await.map_err(|e| e.to_string())
}

/// The daemon's handle: starts the notifier, restarts it on a reload (which
/// also resumes a channel paused by a rejection), stops it.
#[derive(Clone)]
pub struct NotifyHandle {
    running: Arc<tokio::sync::Mutex<Option<NotifyService>>>,
    metrics: NotifyMetrics,
}

impl NotifyHandle {
    /// Registers the metrics on `registry` and starts the channels of `config`.
    pub fn start(config: Arc<Config>, registry: &prometheus::Registry) -> Result<Self, SetupError> {
        let metrics = NotifyMetrics::register(registry).map_err(|e| SetupError {
            channel: "*".into(),
            reason: format!("cannot register the notification metrics: {e}"),
        })?;
        let service = NotifyService::start(config, metrics.clone())?;
        Ok(Self {
            running: Arc::new(tokio::sync::Mutex::new(Some(service))),
            metrics,
        })
    }

    /// Applies a reloaded configuration: the channels restart from their
    /// outboxes (nothing queued is lost; paused channels are tried again).
    pub async fn reload(&self, config: Arc<Config>) {
        let mut running = self.running.lock().await;
        if let Some(old) = running.take() {
            old.stop().await;
        }
        match NotifyService::start(config, self.metrics.clone()) {
            Ok(s) => {
                for c in &s.chans {
                    self.metrics.set_paused(&c.cfg.name, false);
                }
                *running = Some(s);
            }
            Err(e) => {
                tracing::error!(error = %e, "notifications stopped: the reloaded channels could not be set up")
            }
        }
    }

    /// [`NotifyService::push_external`] on the running channels (a peer's
    /// `site_silent`); nothing while they are being restarted or stopped.
    pub async fn push_external(&self, event: NotifyEvent, n: Notification) {
        if let Some(s) = self.running.lock().await.as_ref() {
            s.push_external(event, n);
        }
    }

    pub async fn stop(&self) {
        if let Some(s) = self.running.lock().await.take() {
            s.stop().await;
        }
    }
}
