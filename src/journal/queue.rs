//! The journal's own writer thread behind a bounded queue.
//!
//! The service pushes events into the queue and goes on: the live view, logs
//! and metrics never wait for `fsync`. The thread writes the queue in order,
//! retries a failing disk every [`RETRY_EVERY`], and writes the heartbeat
//! (with the chain head) every heartbeat interval. An event leaves the queue
//! only once it is durable, so the queue is also the unwritten backlog that
//! health checks and metrics report on.
//!
//! At stop the thread retries until its deadline; whatever is still unwritten
//! is then logged in full at ERROR and written to a fallback file
//! (`journal.unwritten.<pid>.<ms>.jsonl` in the data directory, else in the
//! temporary directory). If the thread itself is stuck (a frozen filesystem),
//! the stopping service does the same from its side of the queue.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::anchor::Anchor;
use super::chain::ChainHead;
use super::contents::RawLine;
use super::fallback;
use super::heartbeat::Heartbeat;
use super::line::Entry;
use super::write::JournalWriter;

/// Events the queue holds before a producer waits for room. Outage events
/// are rare (a few per outage), so this is hours of a stalled disk.
pub const QUEUE_CAPACITY: usize = 4096;
/// `/healthz` and the watchdog report unhealthy when an unwritten event, or
/// the write in progress, is older than this. A healthy `fsync` takes
/// milliseconds; ten seconds is a stall, not a slow disk.
pub const STALL_BOUND: Duration = Duration::from_secs(10);
/// How often a failing write is retried (or every heartbeat, if that is sooner).
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often a failing write is retried while stopping.
const RETRY_WHILE_STOPPING: Duration = Duration::from_millis(100);
/// Kept from the stop budget for dumping what could not be written.
const DUMP_MARGIN: Duration = Duration::from_millis(250);

/// Where the position of an event's line goes once it is durable (taken
/// once; shared so that the queued event stays cloneable).
type Ack = Arc<Mutex<Option<oneshot::Sender<ChainHead>>>>;

/// One event waiting to be written.
#[derive(Debug, Clone)]
struct Queued {
    queued_at: Instant,
    ts: Timestamp,
    entry: Entry,
    /// Told the line's seq and hash once written ([`JournalPusher::push_acked`]).
    ack: Option<Ack>,
}

#[derive(Debug, Default)]
struct BacklogState {
    events: VecDeque<Queued>,
    /// When the write (or heartbeat) in progress began.
    busy_since: Option<Instant>,
    /// The last durable line.
    head: Option<ChainHead>,
    /// Lines in the chain (the head's `seq` + 1).
    events_total: u64,
    /// Set by [`JournalQueue::stop`]: write what can be written until then.
    stop_by: Option<Instant>,
    /// Set by a simulated crash: exit at once, writing nothing more.
    abandon: bool,
    /// Lines taken back from fallback files at start, for a dump from the
    /// stopping side when the thread is stuck (those up to `head` are written).
    taken_back: Vec<RawLine>,
}

struct Backlog {
    state: Mutex<BacklogState>,
    stall_bound: Duration,
    /// Wakes the thread: an event queued, stop or abandon requested.
    wake: Condvar,
    /// Wakes a producer waiting for room.
    room: Notify,
    /// The data directory's lock, for the children that write a fallback file.
    lock: Option<std::fs::File>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, BacklogState> {
        // Every critical section is a few field updates; a panic mid-way
        // leaves nothing half-done worth refusing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the thread needs besides the writer.
pub struct QueueOptions {
    pub data_dir: PathBuf,
    /// `seq` of this run's `daemon_start` (the heartbeat's `run`).
    pub run: u64,
    pub anchor: Anchor,
    pub heartbeat_interval: Duration,
    /// Backlog age beyond which the journal reports unhealthy ([`STALL_BOUND`]).
    pub stall_bound: Duration,
}

/// The producer side: push events, read the backlog, stop.
pub struct JournalQueue {
    backlog: Arc<Backlog>,
    finished: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Read access to the backlog for `/healthz`, the watchdog and metrics.
#[derive(Clone)]
pub struct JournalHealth {
    backlog: Arc<Backlog>,
}

/// Another producer of the same queue (the stall tick), pushing as the
/// service does.
#[derive(Clone)]
pub struct JournalPusher {
    backlog: Arc<Backlog>,
}

impl JournalPusher {
    /// Queues one event; waits only while the queue is full.
    pub async fn push(&self, ts: Timestamp, entry: Entry) {
        push_to(&self.backlog, ts, entry, None).await;
    }

    /// Queues one event like [`Self::push`]; the receiver gets the seq and
    /// hash of its line once the line is durable (fsynced). Other events
    /// are written as before: nothing waits for this one's answer. The
    /// receiver errs when the line was never written (the daemon stopped
    /// first and the event went to a fallback file).
    pub async fn push_acked(&self, ts: Timestamp, entry: Entry) -> oneshot::Receiver<ChainHead> {
        let (tx, rx) = oneshot::channel();
        push_to(
            &self.backlog,
            ts,
            entry,
            Some(Arc::new(Mutex::new(Some(tx)))),
        )
        .await;
        rx
    }
}

/// Queues one event on `backlog`; waits only while the queue is full.
async fn push_to(backlog: &Backlog, ts: Timestamp, entry: Entry, ack: Option<Ack>) {
    loop {
        let room = backlog.room.notified();
        {
            let mut s = backlog.lock();
            if s.events.len() < QUEUE_CAPACITY {
                s.events.push_back(Queued {
                    queued_at: Instant::now(),
                    ts,
                    entry,
                    ack,
                });
                drop(s);
                backlog.wake.notify_one();
                return;
            }
        }
        tracing::warn!(
            capacity = QUEUE_CAPACITY,
            event = entry.name(),
            "journal queue full; waiting for the disk"
        );
        room.await;
    }
}

impl JournalQueue {
    /// Starts the writer thread with `initial` events already queued (the
    /// run's `daemon_start` and what recovery closed).
    pub fn spawn(
        writer: JournalWriter,
        initial: Vec<(Timestamp, Entry)>,
        options: QueueOptions,
    ) -> io::Result<Self> {
        let now = Instant::now();
        let state = BacklogState {
            events: initial
                .into_iter()
                .map(|(ts, entry)| Queued {
                    queued_at: now,
                    ts,
                    entry,
                    ack: None,
                })
                .collect(),
            head: writer.head(),
            events_total: lines_in(&writer),
            taken_back: writer.taken_back().cloned().collect(),
            ..BacklogState::default()
        };
        let backlog = Arc::new(Backlog {
            state: Mutex::new(state),
            stall_bound: options.stall_bound,
            wake: Condvar::new(),
            room: Notify::new(),
            lock: writer.lock().and_then(|l| l.try_clone().ok()),
        });
        let (done, finished) = oneshot::channel();
        let thread = WriterThread {
            writer,
            backlog: backlog.clone(),
            options,
            done: Some(done),
        };
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || thread.run())?;
        Ok(Self {
            backlog,
            finished: Some(finished),
            thread: Some(thread),
        })
    }

    /// Queues one event; waits only while the queue is full.
    pub async fn push(&self, ts: Timestamp, entry: Entry) {
        push_to(&self.backlog, ts, entry, None).await;
    }

    /// A cloneable producer for tasks beside the service (the stall tick).
    pub fn pusher(&self) -> JournalPusher {
        JournalPusher {
            backlog: self.backlog.clone(),
        }
    }

    /// A cloneable view of the backlog.
    pub fn health(&self) -> JournalHealth {
        JournalHealth {
            backlog: self.backlog.clone(),
        }
    }

    /// Queues `last` (the run's `daemon_stop`), lets the thread write until
    /// `within` is nearly spent, and makes sure nothing unwritten is silently
    /// gone: the thread dumps what it could not write, or, if it is stuck
    /// inside the kernel, this side does. Returns `false` in that case: the
    /// data directory does not answer.
    pub async fn stop(mut self, last: Entry, within: Duration) -> bool {
        let begun = Instant::now();
        {
            let mut s = self.backlog.lock();
            s.events.push_back(Queued {
                queued_at: begun,
                ts: Timestamp::now(),
                entry: last,
                ack: None,
            });
            s.stop_by = Some(begun + within.saturating_sub(DUMP_MARGIN));
        }
        self.backlog.wake.notify_one();
        let finished = self.finished.take();
        let waited = match finished {
            Some(rx) => tokio::time::timeout(within.saturating_sub(DUMP_MARGIN / 2), rx)
                .await
                .is_ok(),
            None => false,
        };
        if waited {
            if let Some(t) = self.thread.take() {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            return true;
        }
        // The thread is stuck in a write: dump from here. Only the temporary
        // directory: the data directory's filesystem is the one not answering.
        let (events, head, taken_back) = {
            let mut s = self.backlog.lock();
            s.abandon = true;
            (
                std::mem::take(&mut s.events),
                s.head.clone(),
                std::mem::take(&mut s.taken_back),
            )
        };
        tracing::error!(
            pending = events.len(),
            "the journal writer is stuck (a frozen or hung filesystem?); dumping what it has not confirmed"
        );
        let dirs = [std::env::temp_dir()];
        let backlog = self.backlog.clone();
        let dump = tokio::task::spawn_blocking(move || {
            fallback::dump(
                &taken_back,
                &pairs(&events),
                head,
                &dirs,
                backlog.lock.as_ref(),
            )
        });
        if tokio::time::timeout(DUMP_MARGIN / 2, dump).await.is_err() {
            tracing::error!(
                "the fallback file could not be written in time; the events above are in the log only"
            );
        }
        false
    }

    /// Simulates `kill -9`: the thread exits without writing anything more.
    #[cfg(test)]
    pub(crate) async fn abandon(mut self) {
        self.backlog.lock().abandon = true;
        self.backlog.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for JournalQueue {
    /// Dropped without [`Self::stop`] (the service went away): the thread
    /// still writes or dumps what is queued, then exits.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.backlog.lock().stop_by.get_or_insert_with(Instant::now);
            self.backlog.wake.notify_one();
        }
    }
}

impl JournalHealth {
    /// Events queued and not yet durable.
    pub fn backlog(&self) -> usize {
        self.backlog.lock().events.len()
    }

    /// Age of the oldest unwritten event or of the write in progress.
    pub fn oldest(&self) -> Option<Duration> {
        let s = self.backlog.lock();
        let oldest = match (s.events.front().map(|q| q.queued_at), s.busy_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        oldest.map(|t| t.elapsed())
    }

    /// `Err` with a reason when the journal has fallen behind by more than
    /// the stall bound ([`STALL_BOUND`] in the daemon).
    pub fn check(&self) -> Result<(), String> {
        let bound = self.backlog.stall_bound;
        match self.oldest() {
            Some(age) if age > bound => Err(format!(
                "journal writes stalled: {} event(s) unwritten, oldest {:.1}s (bound {:.1}s)",
                self.backlog(),
                age.as_secs_f64(),
                bound.as_secs_f64()
            )),
            _ => Ok(()),
        }
    }

    /// The last durable line and the number of lines in the chain.
    pub fn head(&self) -> (Option<ChainHead>, u64) {
        let s = self.backlog.lock();
        (s.head.clone(), s.events_total)
    }
}

/// What the thread decided to do next, taken under the lock.
enum Job {
    Write(Box<Queued>),
    Heartbeat,
    Finish,
    Exit,
}

struct WriterThread {
    writer: JournalWriter,
    backlog: Arc<Backlog>,
    options: QueueOptions,
    done: Option<oneshot::Sender<()>>,
}

impl WriterThread {
    fn run(mut self) {
        let mut next_heartbeat = Instant::now() + self.options.heartbeat_interval;
        let mut retry_at: Option<Instant> = None;
        let mut heartbeat_failing = false;
        loop {
            match self.next_job(next_heartbeat, retry_at) {
                Job::Exit => return,
                Job::Write(q) => {
                    let res = self.writer.append(q.ts, &q.entry);
                    let mut s = self.backlog.lock();
                    s.busy_since = None;
                    s.head = self.writer.head();
                    s.events_total = lines_in(&self.writer);
                    match res {
                        Ok(()) => {
                            s.events.pop_front();
                            retry_at = None;
                            let head = s.head.clone();
                            drop(s);
                            self.backlog.room.notify_waiters();
                            // The line just written is the head (a
                            // `journal_reopened` line, if any, came before it).
                            if let (Some(ack), Some(head)) = (&q.ack, head) {
                                let tx = ack.lock().unwrap_or_else(|p| p.into_inner()).take();
                                if let Some(tx) = tx {
                                    let _ = tx.send(head);
                                }
                            }
                        }
                        Err(_) => {
                            let every = if s.stop_by.is_some() {
                                RETRY_WHILE_STOPPING
                            } else {
                                RETRY_EVERY.min(self.options.heartbeat_interval)
                            };
                            retry_at = Some(Instant::now() + every);
                        }
                    }
                }
                Job::Heartbeat => {
                    let res = self.heartbeat();
                    next_heartbeat = Instant::now() + self.options.heartbeat_interval;
                    match res {
                        Ok(()) if heartbeat_failing => {
                            tracing::info!("heartbeat written again");
                            heartbeat_failing = false;
                        }
                        Ok(()) => {}
                        Err(e) => {
                            if !heartbeat_failing {
                                tracing::error!(error = %e, "heartbeat write failed; retrying every interval");
                            }
                            heartbeat_failing = true;
                        }
                    }
                }
                Job::Finish => {
                    if let Err(e) = self.heartbeat() {
                        tracing::warn!(error = %e, "final heartbeat not written");
                    }
                    let (events, head) = {
                        let mut s = self.backlog.lock();
                        (std::mem::take(&mut s.events), s.head.clone())
                    };
                    if events.is_empty() {
                        tracing::info!("outage journal closed");
                    } else {
                        let dirs = [self.options.data_dir.clone(), std::env::temp_dir()];
                        let taken_back: Vec<RawLine> = self.writer.taken_back().cloned().collect();
                        fallback::dump(
                            &taken_back,
                            &pairs(&events),
                            head,
                            &dirs,
                            self.writer.lock(),
                        );
                    }
                    if let Some(done) = self.done.take() {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Waits until there is something to do.
    fn next_job(&self, next_heartbeat: Instant, retry_at: Option<Instant>) -> Job {
        let mut s = self.backlog.lock();
        loop {
            if s.abandon {
                return Job::Exit;
            }
            let now = Instant::now();
            let retry_due = retry_at.is_none_or(|t| now >= t);
            if let Some(stop_by) = s.stop_by
                && (s.events.is_empty() || now >= stop_by)
            {
                return Job::Finish;
            }
            if retry_due && let Some(front) = s.events.front().cloned() {
                s.busy_since = Some(now);
                return Job::Write(Box::new(front));
            }
            if now >= next_heartbeat {
                s.busy_since = Some(now);
                return Job::Heartbeat;
            }
            let mut until = next_heartbeat;
            if let Some(t) = retry_at.filter(|_| !s.events.is_empty()) {
                until = until.min(t);
            }
            if let Some(t) = s.stop_by {
                until = until.min(t);
            }
            s = self
                .backlog
                .wake
                .wait_timeout(s, until.saturating_duration_since(now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Checks the journal file and replaces the heartbeat, naming the head.
    fn heartbeat(&mut self) -> io::Result<()> {
        let wall = Timestamp::now();
        let checked = self.writer.check_file(wall);
        let hb = Heartbeat {
            run: self.options.run,
            wall,
            mono_ms: self.options.anchor.elapsed().as_millis() as u64,
            pid: std::process::id(),
            head: self.writer.head(),
        };
        let written = super::heartbeat::write_heartbeat_detached(
            &self.options.data_dir,
            &hb,
            self.writer.lock(),
        );
        let mut s = self.backlog.lock();
        s.busy_since = None;
        s.head = self.writer.head();
        s.events_total = lines_in(&self.writer);
        drop(s);
        checked.and(written)
    }
}

/// Lines durable in the chain (the head's `seq` + 1).
fn lines_in(writer: &JournalWriter) -> u64 {
    writer.head().map_or(0, |h| h.seq + 1)
}

fn pairs(events: &VecDeque<Queued>) -> Vec<(Timestamp, Entry)> {
    events.iter().map(|q| (q.ts, q.entry.clone())).collect()
}
