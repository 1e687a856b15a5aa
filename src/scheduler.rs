//! Drives every target on its own interval, from one task.
//!
//! Invariants:
//! - **Spread start**: target `i` of `n` first fires at `interval * i / n`, so
//!   a thousand targets at 1 s do not all fire in the first millisecond.
//! - **Drift-free**: slot `k` of a target is at `first + k * interval`,
//!   whatever the previous probe took. A probe's timeout is always shorter
//!   than its interval, so only a stalled process (or a saturated concurrency
//!   bound) can miss a slot; missed slots are skipped, counted and logged
//!   (rate-limited), and the next probe goes at the next slot, never in a
//!   catch-up burst.
//! - **One in flight per target**: a slot that comes due while the target's
//!   previous probe still runs (or still waits for a concurrency permit) is
//!   skipped.
//! - **Global bound**: a semaphore caps probes in flight over all targets;
//!   probes that find it exhausted wait in arrival order, and that is counted
//!   and logged too.
//! - **Bounded**: every probe is cut at its deadline (start + timeout; for
//!   a throughput test, start + its whole worst case).
//! - **Jitter** (throughput targets only): each slot fires at a random
//!   offset of up to 10 % of the interval after its grid position, so that
//!   many homes running the same config do not test one server at the same
//!   second. The grid itself does not move (no drift), and the next slot is
//!   always after the current one (skip, never burst).
//! - **One speed test at a time**: a throughput test that comes due while
//!   another throughput target's test runs waits for it (rechecked every
//!   [`TEST_RETRY`]); two tests sharing the link would each read about half
//!   of it. Its grid slot stays where it was; if the wait passes the next
//!   slot, the slot is skipped as usual.
//! - **Daily budget** (throughput targets only): a test starts only when its
//!   `max_bytes` fit in what is left of `max_bytes_per_day` for the local day
//!   (bytes of failed and partial tests are spent too); otherwise the slot is
//!   skipped and counted (`reason="budget"`). Budgets reset at local midnight.
//! - **Campaign** (`schedule = "campaign"` throughput targets): the slots
//!   are the planned times of [`crate::campaign::day_plan`] (10 a local
//!   day, by the BNetzA sampling rules) instead of a grid; the plan carries
//!   its own jitter. Missed planned slots are skipped and counted as above,
//!   and the daily budget still caps.
//! - **Cancellation**: once `cancel` fires no new probe starts; probes in
//!   flight finish or hit their deadline; [`Scheduler::run`] then returns.
//!
//! Cost: one timer and one wake-up per due instant for all targets together
//! (a binary heap of next slots), not one task per target. Every probe is
//! started through the one seam, [`Probe::start`], with a [`Completion`]
//! that carries the probe's slot; the prober decides whether it needs a task
//! (the shared ICMP socket completes literal-address probes without one).
//! The scheduler never waits on a probe: it learns that one ended when its
//! slot is released ([`Slots::release`]), after the result is queued.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::config::diff::Diff;
use crate::config::{Config, Kind, Schedule, Target, TargetSpec};
use crate::metrics::{Metrics, Skip};
use crate::probe::seam::Slots;
use crate::probe::{Completion, Probe, ProbeResult, Request};

/// What a probe in flight holds, released through [`Slots`]: one
/// concurrency permit (forgotten at launch, added back on release) and its
/// target's busy flag, counted in `linkwatch_probes_in_flight`.
struct Bookkeeping {
    semaphore: Arc<Semaphore>,
    /// Shared with the next generation's bookkeeping for targets a reload
    /// keeps, so a probe started before the swap still holds its target.
    busy: Box<[Arc<AtomicBool>]>,
    metrics: Option<Arc<Metrics>>,
    budgets: Budgets,
    /// The clock budget days are read from.
    wall: Wall,
}

impl Slots for Bookkeeping {
    fn observed(&self, result: &ProbeResult) {
        if let Some(tp) = &result.observation.info.throughput {
            self.budgets
                .charge(result.target, tp.bytes, self.wall.at(Instant::now()));
        }
    }

    fn release(&self, index: usize) {
        if let Some(b) = self.busy.get(index) {
            b.store(false, Ordering::Release);
        }
        if let Some(m) = &self.metrics {
            m.in_flight.dec();
        }
        self.semaphore.add_permits(1);
    }
}

pub struct Scheduler<P: Probe> {
    config: Arc<Config>,
    prober: Arc<P>,
    results: mpsc::Sender<ProbeResult>,
    metrics: Option<Arc<Metrics>>,
    semaphore: Arc<Semaphore>,
    reloads: Option<mpsc::Receiver<Reload<P>>>,
    /// Bytes each target already spent today (by index), from before a restart.
    spent_today: Vec<u64>,
    /// Slots of held groups are skipped ([`crate::probe::hold::ProbeHold`]).
    hold: Option<crate::probe::hold::ProbeHold>,
    wall: Wall,
}

/// A configuration reload for the running scheduler, applied between two
/// scheduling steps ([`Scheduler::with_reloads`]).
pub struct Reload<P> {
    pub config: Arc<Config>,
    /// Probers built for `config`.
    pub prober: Arc<P>,
    /// From the running configuration to `config`.
    pub diff: Arc<Diff>,
    /// Told once the scheduler has switched.
    pub switched: oneshot::Sender<Switched<P>>,
}

/// What a switch hands back: the channel of the new generation's results,
/// and the previous probers. Results of probes started before the switch
/// keep arriving on the previous channel, numbered in the old
/// configuration, until it closes; the previous probers must live until
/// then (the shared ICMP socket completes its probes in flight: dropping it
/// would lose them).
pub struct Switched<P> {
    pub results: mpsc::Receiver<ProbeResult>,
    pub retired: Arc<P>,
}

/// The first slot of target `index` of `count`, as an offset from the start.
pub fn first_offset(interval: Duration, index: usize, count: usize) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let nanos = interval.as_nanos() * index as u128 / count as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// For a slot that came due at or before `now`: the latest slot of the grid
/// at or before `now` (the one to probe), the slot after it, and how many
/// earlier slots were passed over.
pub fn catch_up(slot: Instant, interval: Duration, now: Instant) -> (Instant, Instant, u64) {
    let behind = now.saturating_duration_since(slot).as_nanos();
    let k = behind / interval.as_nanos().max(1);
    let k32 = u32::try_from(k).unwrap_or(u32::MAX);
    let current = slot + interval.saturating_mul(k32);
    (
        current,
        current + interval,
        u64::try_from(k).unwrap_or(u64::MAX),
    )
}

/// The daily data budgets of throughput targets, by target index.
pub struct Budgets {
    tz: TimeZone,
    /// Shared with the next generation for targets a reload keeps (the day's spending goes on).
    targets: Box<[Option<Arc<Budget>>]>,
}

/// One throughput target's budget.
struct Budget {
    per_test: u64,
    per_day: u64,
    day: Mutex<Day>,
}

/// Bytes spent on one local day.
struct Day {
    date: Option<Date>,
    spent: u64,
    /// The "budget spent" message was logged for this day.
    told: bool,
}

/// What [`Budgets::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Not a metered target, or its test fits.
    Yes,
    /// Today's budget cannot hold another test; `first` on the first refusal of the day.
    Spent {
        spent: u64,
        per_day: u64,
        first: bool,
    },
}

impl Budgets {
    /// Budgets for `config`'s throughput targets, by days of time zone `tz`.
    pub fn new(config: &Config, tz: TimeZone) -> Self {
        let targets = config
            .targets
            .iter()
            .map(|t| match &t.spec {
                TargetSpec::Throughput(s) => Some(Arc::new(Budget {
                    per_test: s.max_bytes,
                    per_day: s.max_bytes_per_day,
                    day: Mutex::new(Day {
                        date: None,
                        spent: 0,
                        told: false,
                    }),
                })),
                _ => None,
            })
            .collect();
        Self { tz, targets }
    }

    /// The budgets of `config` after a reload: target `i` keeps old target
    /// `kept[i]`'s budget (and what it spent today).
    fn reloaded(&self, config: &Config, kept: &[Option<usize>]) -> Self {
        let fresh = Self::new(config, self.tz.clone());
        let targets = fresh
            .targets
            .iter()
            .zip(kept.iter().chain(std::iter::repeat(&None)))
            .map(|(new, k)| {
                k.and_then(|o| self.targets.get(o).cloned().flatten())
                    .or_else(|| new.clone())
            })
            .collect();
        Self {
            tz: self.tz.clone(),
            targets,
        }
    }

    /// The day record of target `i` as of `now`, reset on a new local day.
    fn today<'a>(&self, b: &'a Budget, now: Timestamp) -> std::sync::MutexGuard<'a, Day> {
        let date = now.to_zoned(self.tz.clone()).date();
        let mut day = b
            .day
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if day.date != Some(date) {
            *day = Day {
                date: Some(date),
                spent: 0,
                told: false,
            };
        }
        day
    }

    /// Whether target `i` has a daily budget (a throughput target).
    pub fn metered(&self, i: usize) -> bool {
        matches!(self.targets.get(i), Some(Some(_)))
    }

    /// Whether target `i` may start a test at `now`: its `max_bytes` fit in
    /// what is left today.
    pub fn admit(&self, i: usize, now: Timestamp) -> Admit {
        let Some(Some(b)) = self.targets.get(i) else {
            return Admit::Yes;
        };
        let mut day = self.today(b, now);
        if day.spent.saturating_add(b.per_test) <= b.per_day {
            return Admit::Yes;
        }
        let first = !day.told;
        day.told = true;
        Admit::Spent {
            spent: day.spent,
            per_day: b.per_day,
            first,
        }
    }

    /// Charges `bytes` moved by a test of target `i` (ended at `now`).
    pub fn charge(&self, i: usize, bytes: u64, now: Timestamp) {
        if let Some(Some(b)) = self.targets.get(i) {
            let mut day = self.today(b, now);
            day.spent = day.spent.saturating_add(bytes);
        }
    }
}

/// The next reload, or `None` once the sender is gone.
async fn recv<P>(reloads: &mut Option<mpsc::Receiver<Reload<P>>>) -> Option<Reload<P>> {
    match reloads {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// How often a throughput test that waits for another one rechecks.
pub const TEST_RETRY: Duration = Duration::from_secs(1);

/// The random offset of one slot of a target whose slots may move by up to `max`.
fn jitter(max: Duration) -> Duration {
    match u64::try_from(max.as_nanos()) {
        Ok(0) | Err(_) => Duration::ZERO,
        Ok(n) => Duration::from_nanos(rand::random_range(0..n)),
    }
}

/// How far a target's slots may move: 10 % of the interval for throughput
/// targets, none for the rest.
pub fn max_jitter(target: &Target) -> Duration {
    if target.kind() == Kind::Throughput && campaign(target).is_none() {
        target.interval / 10
    } else {
        Duration::ZERO
    }
}

/// `Some` for a `schedule = "campaign"` target.
fn campaign(target: &Target) -> Option<()> {
    match &target.spec {
        TargetSpec::Throughput(s) if s.schedule == Schedule::Campaign => Some(()),
        _ => None,
    }
}

/// Where wall-clock time is read: the system clock, or (tests) a wall time
/// anchored at a tokio instant and advanced with the tokio clock.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
enum Wall {
    System,
    Anchored(Timestamp, Instant),
}

impl Wall {
    /// The wall-clock time at `at`.
    fn at(self, at: Instant) -> Timestamp {
        let (ts, base) = match self {
            Wall::System => (Timestamp::now(), Instant::now()),
            Wall::Anchored(ts, base) => (ts, base),
        };
        let d = if at >= base {
            SignedDuration::try_from(at - base).unwrap_or(SignedDuration::MAX)
        } else {
            -SignedDuration::try_from(base - at).unwrap_or(SignedDuration::MAX)
        };
        ts.saturating_add(d).unwrap_or(ts)
    }

    /// The tokio instant of wall time `ts`, seen from `now`.
    fn instant(self, ts: Timestamp, now: Instant) -> Instant {
        let ahead = ts.duration_since(self.at(now));
        match Duration::try_from(ahead) {
            Ok(d) => now + d,
            Err(_) => now.checked_sub(ahead.unsigned_abs()).unwrap_or(now),
        }
    }
}

/// How often at most the scheduler warns about skipped or delayed probes.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accumulates a condition between rate-limited warnings.
#[derive(Debug, Default)]
pub struct RateLimited {
    last: Option<Instant>,
    /// Occurrences since the last warning.
    pub count: u64,
    /// Worst lateness seen since the last warning.
    pub worst: Duration,
}

impl RateLimited {
    /// Records `n` occurrences; returns true when a warning is due (then the
    /// caller logs `count`/`worst` and calls [`RateLimited::reset`]).
    pub fn note(&mut self, n: u64, lateness: Duration, now: Instant) -> bool {
        self.count += n;
        self.worst = self.worst.max(lateness);
        self.last
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
    }

    pub fn reset(&mut self, now: Instant) {
        self.last = Some(now);
        self.count = 0;
        self.worst = Duration::ZERO;
    }
}

impl<P: Probe> Scheduler<P> {
    pub fn new(
        config: Arc<Config>,
        prober: Arc<P>,
        results: mpsc::Sender<ProbeResult>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let semaphore = Arc::new(Semaphore::new(config.daemon.max_concurrency.max(1)));
        Self {
            config,
            prober,
            results,
            metrics,
            semaphore,
            spent_today: Vec::new(),
            reloads: None,
            hold: None,
            wall: Wall::System,
        }
    }

    /// Skips the slots of the groups `hold` holds (a path trace's re-probe
    /// needs the router's ICMP error budget the failing probes spend).
    pub fn with_hold(mut self, hold: Option<crate::probe::hold::ProbeHold>) -> Self {
        self.hold = hold;
        self
    }

    /// Starts the daily data budgets with what each target (by index)
    /// already spent today, before a restart.
    pub fn with_spent_today(mut self, spent: Vec<u64>) -> Self {
        self.spent_today = spent;
        self
    }

    /// Tests: wall-clock time is `now` at the tokio instant this is called,
    /// and advances with the tokio clock (which tests pause and move).
    #[cfg(test)]
    fn with_wall_clock(mut self, now: Timestamp) -> Self {
        self.wall = Wall::Anchored(now, Instant::now());
        self
    }

    /// Takes configuration reloads from `reloads` while running.
    pub fn with_reloads(mut self, reloads: mpsc::Receiver<Reload<P>>) -> Self {
        self.reloads = Some(reloads);
        self
    }

    /// Runs until `cancel` fires and every probe in flight has ended.
    /// Throughput budgets follow the system time zone's days.
    pub async fn run(self, cancel: CancellationToken) {
        self.run_in(cancel, TimeZone::system()).await;
    }

    /// [`Scheduler::run`] with budget days in time zone `tz`.
    pub async fn run_in(self, cancel: CancellationToken, tz: TimeZone) {
        let mut run = Run::new(self, tz);
        run.schedule(&cancel).await;
        run.drain().await;
    }
}

/// The scheduler's state while it runs.
struct Run<P: Probe> {
    s: Scheduler<P>,
    /// When every target not waiting for a permit fires next: its next grid
    /// slot plus that slot's jitter.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Next grid slot of every target (`first + k * interval`).
    grid: Vec<Instant>,
    /// How far each target's slots may be moved ([`max_jitter`]).
    jitter: Vec<Duration>,
    /// The throughput targets (speed tests), which never run two at a time.
    tests: Vec<usize>,
    /// The days of campaigns (and budgets).
    tz: TimeZone,
    /// Campaign targets: their plan's seed and the wall time of their next
    /// planned slot (`grid`); `None` for the rest.
    plans: Vec<Option<Plan>>,
    /// Probes due but waiting for a concurrency permit, oldest first.
    waiting: VecDeque<(usize, Instant)>,
    queued: Vec<bool>,
    slots: Arc<Bookkeeping>,
    skipped: RateLimited,
    delayed: RateLimited,
}

/// A campaign target's plan: its seed and its next planned test.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seed: u64,
    next: Timestamp,
}

/// The first slot of target `i` of `n` from `start`: spread over its
/// interval, or a campaign's next planned test.
fn first_slot(
    t: &Target,
    i: usize,
    n: usize,
    start: Instant,
    wall: Wall,
    tz: &TimeZone,
) -> (Instant, Option<Plan>) {
    let spread = start + first_offset(t.interval, i, n);
    if campaign(t).is_none() {
        return (spread, None);
    }
    let seed = crate::campaign::seed(&t.name);
    let now = wall.at(start);
    let Some(next) = crate::campaign::next_after(now, tz, seed) else {
        return (spread, None);
    };
    if let Some(today) = crate::campaign::day_plan(now.to_zoned(tz.clone()).date(), tz, seed) {
        tracing::info!(
            target_name = %t.name,
            today = %crate::campaign::describe(&today, tz),
            next = %next,
            "measuring campaign: 10 throughput tests a day at planned times"
        );
    }
    (wall.instant(next, start), Some(Plan { seed, next }))
}

impl<P: Probe> Run<P> {
    fn new(s: Scheduler<P>, tz: TimeZone) -> Self {
        let start = Instant::now();
        let n = s.config.targets.len();
        let (grid, plans): (Vec<Instant>, Vec<Option<Plan>>) = s
            .config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| first_slot(t, i, n, start, s.wall, &tz))
            .unzip();
        let max: Vec<Duration> = s.config.targets.iter().map(max_jitter).collect();
        let heap = grid
            .iter()
            .zip(&max)
            .enumerate()
            .map(|(i, (g, m))| Reverse((*g + jitter(*m), i)))
            .collect();
        let tests = s
            .config
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind() == Kind::Throughput)
            .map(|(i, _)| i)
            .collect();
        Self {
            heap,
            grid,
            jitter: max,
            tests,
            plans,
            waiting: VecDeque::new(),
            queued: vec![false; n],
            slots: Arc::new(Bookkeeping {
                semaphore: s.semaphore.clone(),
                busy: (0..n).map(|_| Arc::new(AtomicBool::new(false))).collect(),
                metrics: s.metrics.clone(),
                budgets: {
                    let b = Budgets::new(&s.config, tz.clone());
                    let now = s.wall.at(start);
                    for (i, bytes) in s.spent_today.iter().enumerate() {
                        if *bytes > 0 {
                            b.charge(i, *bytes, now);
                        }
                    }
                    b
                },
                wall: s.wall,
            }),
            skipped: RateLimited::default(),
            delayed: RateLimited::default(),
            tz,
            s,
        }
    }

    async fn schedule(&mut self, cancel: &CancellationToken) {
        let first = self
            .heap
            .peek()
            .map_or_else(Instant::now, |Reverse((first, _))| *first);
        let sleep = tokio::time::sleep_until(first);
        tokio::pin!(sleep);
        let mut armed = first;
        let mut reloads = self.s.reloads.take();
        loop {
            if let Some(&Reverse((next, _))) = self.heap.peek()
                && next != armed
            {
                sleep.as_mut().reset(next);
                armed = next;
            }
            let semaphore = self.s.semaphore.clone();
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                permit = semaphore.acquire_owned(), if !self.waiting.is_empty() => {
                    let Ok(permit) = permit else { return };
                    if let Some((i, slot)) = self.waiting.pop_front() {
                        self.queued[i] = false;
                        self.launch(i, slot, permit);
                    }
                }
                () = &mut sleep, if !self.heap.is_empty() => self.due(Instant::now()),
                reload = recv(&mut reloads), if reloads.is_some() => match reload {
                    Some(r) => self.reload(r),
                    None => reloads = None,
                },
            }
        }
    }

    /// Switches to a reloaded configuration at this one point between two
    /// scheduling steps. A kept target keeps its grid (schedule phase), its
    /// busy flag (a probe in flight still holds it: never two at once) and
    /// its daily budget; an added target's first slot is spread over its
    /// interval from now, as at start. Probes waiting for a permit are
    /// renumbered, those of removed targets dropped. The per-target metrics
    /// move to the new numbering here too: the collector waits for
    /// [`Reload::switched`] before recording anything more.
    fn reload(&mut self, r: Reload<P>) {
        let now = Instant::now();
        let kept = &r.diff.targets;
        let kept_of = |i: usize| kept.get(i).copied().flatten();
        let old_to_new = r.diff.old_to_new(self.s.config.targets.len());
        let config = r.config;
        let n = config.targets.len();
        if let Some(m) = &self.s.metrics {
            m.reload(&self.s.config, &config, kept);
        }
        let wall = self.s.wall;
        (self.grid, self.plans) = (0..n)
            .map(
                |i| match kept_of(i).and_then(|o| self.grid.get(o).zip(self.plans.get(o))) {
                    Some((g, p)) => (*g, *p),
                    None => first_slot(&config.targets[i], i, n, now, wall, &self.tz),
                },
            )
            .unzip();
        self.jitter = config.targets.iter().map(max_jitter).collect();
        self.heap = self
            .grid
            .iter()
            .zip(&self.jitter)
            .enumerate()
            .map(|(i, (g, m))| Reverse((*g + jitter(*m), i)))
            .collect();
        self.tests = config
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind() == Kind::Throughput)
            .map(|(i, _)| i)
            .collect();
        let waiting = std::mem::take(&mut self.waiting);
        self.queued = vec![false; n];
        for (old, slot) in waiting {
            if let Some(Some(new)) = old_to_new.get(old) {
                self.queued[*new] = true;
                self.waiting.push_back((*new, slot));
            }
        }
        let busy = (0..n)
            .map(|i| match kept_of(i).and_then(|o| self.slots.busy.get(o)) {
                Some(b) => b.clone(),
                None => Arc::new(AtomicBool::new(false)),
            })
            .collect();
        self.slots = Arc::new(Bookkeeping {
            semaphore: self.s.semaphore.clone(),
            busy,
            metrics: self.s.metrics.clone(),
            budgets: self.slots.budgets.reloaded(&config, kept),
            wall,
        });
        let (tx, rx) = mpsc::channel(self.s.results.max_capacity());
        self.s.results = tx;
        self.s.config = config;
        let retired = std::mem::replace(&mut self.s.prober, r.prober);
        tracing::debug!(
            targets = n,
            "scheduler switched to the reloaded configuration"
        );
        // The collector is gone only when the daemon is stopping.
        let _ = r.switched.send(Switched {
            results: rx,
            retired,
        });
    }

    /// Starts (or queues, or skips) every target whose slot is at or before `now`.
    fn due(&mut self, now: Instant) {
        while let Some(&Reverse((fire, i))) = self.heap.peek() {
            if fire > now {
                break;
            }
            self.heap.pop();
            if self.another_test_runs(i) {
                // Same grid slot, a little later.
                self.heap.push(Reverse((now + TEST_RETRY, i)));
                continue;
            }
            let interval = self.s.config.targets[i].interval;
            let grid = self.grid[i];
            let (current, next, mut missed) = match self.planned(i, now) {
                Some(c) => c,
                None => catch_up(grid, interval, now),
            };
            // The planned start: the slot plus its jitter when on time, the
            // grid position of the latest slot when slots were passed over.
            let slot = if current == grid { fire } else { current };
            self.grid[i] = next;
            self.heap.push(Reverse((next + jitter(self.jitter[i]), i)));
            let occupied = self.queued[i] || self.slots.busy[i].load(Ordering::Acquire);
            if occupied {
                missed += 1;
            }
            if missed > 0 {
                self.skip(i, missed, now.saturating_duration_since(slot), now);
            }
            if occupied {
                continue;
            }
            if let Some(h) = &self.s.hold
                && h.holds(&self.s.config.targets[i].group, now)
            {
                if let Some(m) = &self.s.metrics {
                    m.add_skipped(i, Skip::Hold, 1);
                }
                continue;
            }
            if !self.within_budget(i) {
                continue;
            }
            if !self.waiting.is_empty() {
                self.wait(i, slot, now);
                continue;
            }
            match self.s.semaphore.clone().try_acquire_owned() {
                Ok(permit) => self.launch(i, slot, permit),
                Err(TryAcquireError::NoPermits) => self.wait(i, slot, now),
                Err(TryAcquireError::Closed) => {}
            }
        }
    }

    /// [`catch_up`] for a campaign target: the latest planned slot at or
    /// before `now`, the next planned one (which becomes its slot), and how
    /// many planned slots were passed over. `None` for other targets.
    fn planned(&mut self, i: usize, now: Instant) -> Option<(Instant, Instant, u64)> {
        let plan = self.plans.get_mut(i)?.as_mut()?;
        let wall = self.s.wall;
        let now_ts = wall.at(now);
        let mut current = plan.next;
        let mut missed = 0u64;
        // A stalled process (or a suspend) passed over planned slots: they
        // are skipped, never run in a burst. Bounded: ten a day.
        while missed < 100_000 {
            match crate::campaign::next_after(current, &self.tz, plan.seed) {
                Some(n) if n <= now_ts => {
                    current = n;
                    missed += 1;
                }
                _ => break,
            }
        }
        let next = crate::campaign::next_after(current.max(now_ts), &self.tz, plan.seed)?;
        plan.next = next;
        let current_at = if missed == 0 {
            self.grid[i]
        } else {
            wall.instant(current, now)
        };
        Some((current_at, wall.instant(next, now), missed))
    }

    fn skip(&mut self, i: usize, missed: u64, lateness: Duration, now: Instant) {
        if let Some(m) = &self.s.metrics {
            m.add_skipped(i, Skip::Behind, missed);
        }
        if self.skipped.note(missed, lateness, now) {
            tracing::warn!(
                skipped = self.skipped.count,
                last_target = %self.s.config.targets[i].name,
                worst_lateness = ?self.skipped.worst,
                "fell behind schedule; skipped probe slots (process stalled or max_concurrency reached); \
                 see linkwatch_probes_skipped_total"
            );
            self.skipped.reset(now);
        }
    }

    /// True when `i` is a throughput target and another one's test is in
    /// flight (or waits for a permit).
    fn another_test_runs(&self, i: usize) -> bool {
        self.tests.contains(&i)
            && self
                .tests
                .iter()
                .any(|&j| j != i && (self.queued[j] || self.slots.busy[j].load(Ordering::Acquire)))
    }

    /// False (and the slot counted as skipped) when a throughput target's
    /// daily budget cannot hold another test.
    fn within_budget(&self, i: usize) -> bool {
        // The probe hot path: no clock read for the targets with no budget.
        if !self.slots.budgets.metered(i) {
            return true;
        }
        let Admit::Spent {
            spent,
            per_day,
            first,
        } = self.slots.budgets.admit(i, self.s.wall.at(Instant::now()))
        else {
            return true;
        };
        if let Some(m) = &self.s.metrics {
            m.add_skipped(i, Skip::Budget, 1);
        }
        if first {
            tracing::warn!(
                target_name = %self.s.config.targets[i].name,
                spent_bytes = spent,
                max_bytes_per_day = per_day,
                "daily data budget spent: throughput tests of this target are skipped until \
                 local midnight; see linkwatch_probes_skipped_total{{reason=\"budget\"}}"
            );
        }
        false
    }

    fn wait(&mut self, i: usize, slot: Instant, now: Instant) {
        self.queued[i] = true;
        self.waiting.push_back((i, slot));
        if let Some(m) = &self.s.metrics {
            m.queued.inc();
        }
        if self.delayed.note(1, Duration::ZERO, now) {
            tracing::warn!(
                delayed = self.delayed.count,
                max_concurrency = self.s.config.daemon.max_concurrency,
                "max_concurrency reached; probes wait for a free slot and start late; \
                 see linkwatch_probes_queued_total"
            );
            self.delayed.reset(now);
        }
    }

    fn launch(&mut self, i: usize, slot: Instant, permit: OwnedSemaphorePermit) {
        let config = &self.s.config;
        let started = Instant::now();
        let lateness = started.saturating_duration_since(slot);
        let deadline = started + config.targets[i].max_probe_time();
        let Some(req) = Request::new(config.clone(), i, deadline) else {
            return;
        };
        if let Some(m) = &self.s.metrics {
            m.observe_lateness(lateness);
            m.in_flight.inc();
        }
        self.slots.busy[i].store(true, Ordering::Release);
        // The permit is given back by `Bookkeeping::release`.
        permit.forget();
        let slots: Arc<dyn Slots> = self.slots.clone();
        let done = Completion::new(i, started, lateness, self.s.results.clone(), slots);
        self.s.prober.start(req, done);
    }

    /// After cancellation: waits for every probe in flight (each ends by its
    /// deadline and gives its permit back then).
    async fn drain(mut self) {
        self.waiting.clear();
        let all = u32::try_from(self.s.config.daemon.max_concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = self.s.semaphore.acquire_many(all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Group, Host, IcmpSpec, Target, TargetSpec};
    use crate::probe::{Observation, Outcome, Phases};
    use std::sync::Mutex;

    /// A fake prober that records (target, start) and takes a scripted time.
    struct Fake {
        calls: Mutex<Vec<(usize, Instant)>>,
        in_flight: Mutex<Vec<usize>>,
        max_in_flight_per_target: Mutex<usize>,
        delay: Box<dyn Fn(usize, usize) -> Duration + Send + Sync>,
    }

    impl Fake {
        fn new(delay: impl Fn(usize, usize) -> Duration + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(Self {
                calls: Mutex::new(Vec::new()),
                in_flight: Mutex::new(Vec::new()),
                max_in_flight_per_target: Mutex::new(0),
                delay: Box::new(delay),
            })
        }
        fn starts(&self, target: usize) -> Vec<Instant> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| *t == target)
                .map(|(_, at)| *at)
                .collect()
        }
    }

    impl Probe for Fake {
        fn start(self: &Arc<Self>, req: Request, done: Completion) {
            let me = self.clone();
            tokio::spawn(async move {
                let observation = me.probe(req.index(), req.deadline()).await;
                done.complete(observation).await;
            });
        }
    }

    impl Fake {
        async fn probe(&self, index: usize, deadline: Instant) -> Observation {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push((index, Instant::now()));
                calls.iter().filter(|(t, _)| *t == index).count()
            };
            {
                let mut f = self.in_flight.lock().unwrap();
                f.push(index);
                let same = f.iter().filter(|t| **t == index).count();
                let mut m = self.max_in_flight_per_target.lock().unwrap();
                *m = (*m).max(same);
            }
            let d = (self.delay)(index, n);
            let outcome = if Instant::now() + d >= deadline {
                tokio::time::sleep_until(deadline).await;
                Outcome::Timeout { phase: None }
            } else {
                tokio::time::sleep(d).await;
                Outcome::Success {
                    duration: d,
                    phases: Phases::default(),
                }
            };
            let mut f = self.in_flight.lock().unwrap();
            if let Some(pos) = f.iter().position(|t| *t == index) {
                f.remove(pos);
            }
            Observation::new(outcome)
        }
    }

    fn config(n: usize, interval: Duration, timeout: Duration, max_conc: usize) -> Arc<Config> {
        let mut cfg = Config::new(vec![Group::new("g")], Vec::new());
        cfg.daemon.max_concurrency = max_conc;
        cfg.defaults.interval = interval;
        cfg.defaults.timeout = timeout;
        let spec = TargetSpec::Icmp(IcmpSpec::new(Host::Ip("127.0.0.1".parse().unwrap())));
        cfg.targets = (0..n)
            .map(|i| Target::new(&format!("t{i}"), "g", &cfg.defaults, spec.clone()))
            .collect();
        Arc::new(cfg)
    }

    /// Runs the scheduler for `run_for` of paused time and returns the fake.
    async fn run(
        cfg: Arc<Config>,
        fake: Arc<Fake>,
        run_for: Duration,
    ) -> (Arc<Fake>, Vec<ProbeResult>, Instant) {
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let sched = Scheduler::new(cfg, fake.clone(), tx, None);
        let handle = tokio::spawn(sched.run(cancel.clone()));
        let collect = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(r) = rx.recv().await {
                v.push(r);
            }
            v
        });
        tokio::time::sleep(run_for).await;
        cancel.cancel();
        handle.await.unwrap();
        (fake, collect.await.unwrap(), start)
    }

    #[tokio::test(start_paused = true)]
    async fn slots_of_a_held_group_are_skipped_until_the_hold_passes() {
        let cfg = config(2, Duration::from_secs(1), Duration::from_millis(500), 100);
        let fake = Fake::new(|_, _| Duration::from_millis(1));
        let hold = crate::probe::hold::ProbeHold::default();
        let start = Instant::now();
        // Held from 1.2 s to 3.5 s (+ the 0.1 s past the re-probe).
        let (tx, _rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let sched = Scheduler::new(cfg, fake.clone(), tx, None).with_hold(Some(hold.clone()));
        let handle = tokio::spawn(sched.run(cancel.clone()));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        hold.reprobe_at(
            start + Duration::from_millis(3500),
            vec!["g".into()],
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
        cancel.cancel();
        handle.await.unwrap();
        // Target 0 fires at 0, 1, 2, 3, 4 s; target 1 at 0.5, 1.5, …: the
        // slots in [1.2, 3.6) are skipped.
        let secs = |i| {
            fake.starts(i)
                .iter()
                .map(|t| (*t - start).as_millis())
                .collect::<Vec<_>>()
        };
        assert_eq!(secs(0), [0, 1000, 4000]);
        assert_eq!(secs(1), [500, 4500]);
    }

    #[tokio::test(start_paused = true)]
    async fn first_probes_are_spread_over_the_interval() {
        let cfg = config(10, Duration::from_secs(1), Duration::from_millis(500), 100);
        let fake = Fake::new(|_, _| Duration::from_millis(1));
        let (fake, _, start) = run(cfg, fake, Duration::from_millis(999)).await;
        for i in 0..10 {
            let starts = fake.starts(i);
            assert_eq!(starts.len(), 1, "target {i}");
            assert_eq!(starts[0] - start, Duration::from_millis(100 * i as u64));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_do_not_drift_with_slow_probes() {
        // Probe durations vary from 1 ms to 400 ms; starts must stay on the grid.
        let cfg = config(1, Duration::from_secs(1), Duration::from_millis(900), 100);
        let fake = Fake::new(|_, n| Duration::from_millis([1, 400, 250, 37, 399][n % 5]));
        let (fake, results, start) = run(cfg, fake, Duration::from_millis(20_500)).await;
        let starts = fake.starts(0);
        assert_eq!(starts.len(), 21);
        for (k, s) in starts.iter().enumerate() {
            assert_eq!(*s - start, Duration::from_secs(k as u64), "slot {k}");
        }
        assert!(results.iter().all(|r| r.lateness == Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_bounded_and_do_not_shift_the_grid() {
        // Every probe hangs: each is cut at the 300 ms timeout, slots stay at 1 s.
        let cfg = config(1, Duration::from_secs(1), Duration::from_millis(300), 100);
        let fake = Fake::new(|_, _| Duration::from_secs(3600));
        let (fake, results, start) = run(cfg, fake, Duration::from_millis(5_500)).await;
        let starts = fake.starts(0);
        assert_eq!(starts.len(), 6);
        for (k, s) in starts.iter().enumerate() {
            assert_eq!(*s - start, Duration::from_secs(k as u64));
        }
        assert!(
            results
                .iter()
                .all(|r| matches!(r.observation.outcome, Outcome::Timeout { .. }))
        );
        assert_eq!(*fake.max_in_flight_per_target.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_burst_after_a_stall() {
        // One concurrency slot shared by two targets whose probes take 1.5
        // intervals: each must skip slots, never fire a catch-up volley.
        let cfg = config(2, Duration::from_secs(1), Duration::from_millis(990), 1);
        let fake = Fake::new(|_, _| Duration::from_millis(980));
        let (fake, results, _) = run(cfg, fake, Duration::from_secs(30)).await;
        for t in 0..2 {
            let starts = fake.starts(t);
            for w in starts.windows(2) {
                assert!(
                    w[1] - w[0] >= Duration::from_millis(980),
                    "probes of target {t} bunched: {:?}",
                    w[1] - w[0]
                );
            }
        }
        // Total probes bounded by what one slot can serve: ~30 s / 0.98 s.
        assert!(results.len() <= 31, "{}", results.len());
        assert!(results.iter().any(|r| r.lateness > Duration::ZERO));
        assert_eq!(*fake.max_in_flight_per_target.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn overload_is_counted_in_metrics() {
        // Three targets share one permit; probes take 0.98 s: most slots wait or are skipped.
        let cfg = config(3, Duration::from_secs(1), Duration::from_millis(990), 1);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let fake = Fake::new(|_, _| Duration::from_millis(980));
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let sched = Scheduler::new(cfg, fake.clone(), tx, Some(metrics.clone()));
        let handle = tokio::spawn(sched.run(cancel.clone()));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(20)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        let value = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                .sum()
        };
        assert!(value("linkwatch_probes_skipped_total{") >= 10.0, "{text}");
        assert!(value("linkwatch_probes_queued_total ") >= 5.0, "{text}");
        assert_eq!(value("linkwatch_probes_in_flight "), 0.0);
        // Probes that waited started late, and the histogram says so.
        assert!(
            value("linkwatch_schedule_lateness_seconds_sum ") > 1.0,
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_scheduling_but_lets_in_flight_finish() {
        let cfg = config(1, Duration::from_secs(10), Duration::from_secs(5), 10);
        let fake = Fake::new(|_, _| Duration::from_secs(2));
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let handle = tokio::spawn(Scheduler::new(cfg, fake.clone(), tx, None).run(cancel.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
        handle.await.unwrap();
        // The probe in flight at cancellation finished and was delivered.
        let r = rx.recv().await.expect("in-flight result delivered");
        assert!(r.observation.outcome.is_success());
        assert!(Instant::now() - start >= Duration::from_secs(2));
        assert!(rx.recv().await.is_none());
        assert_eq!(fake.starts(0).len(), 1);
    }

    /// Drops every completion unanswered, as a panicking probe does.
    #[derive(Default)]
    struct Dropper(Mutex<usize>);

    impl Probe for Dropper {
        fn start(self: &Arc<Self>, _req: Request, done: Completion) {
            *self.0.lock().unwrap() += 1;
            drop(done);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_completion_frees_its_slot() {
        // One permit: had a dropped completion kept it, only one probe would ever start.
        let cfg = config(2, Duration::from_secs(1), Duration::from_millis(500), 1);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let dropper = Arc::new(Dropper::default());
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let sched = Scheduler::new(cfg, dropper.clone(), tx, Some(metrics.clone()));
        let handle = tokio::spawn(sched.run(cancel.clone()));
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        cancel.cancel();
        handle.await.unwrap();
        assert_eq!(*dropper.0.lock().unwrap(), 10);
        assert!(rx.recv().await.is_none());
        assert_eq!(metrics.in_flight.get(), 0);
    }

    #[test]
    fn catch_up_probes_the_latest_due_slot_and_counts_the_rest() {
        let t0 = Instant::now();
        let i = Duration::from_secs(1);
        assert_eq!(catch_up(t0, i, t0), (t0, t0 + i, 0));
        assert_eq!(
            catch_up(t0, i, t0 + Duration::from_millis(999)),
            (t0, t0 + i, 0)
        );
        assert_eq!(
            catch_up(t0, i, t0 + Duration::from_millis(3500)),
            (t0 + 3 * i, t0 + 4 * i, 3)
        );
    }

    #[test]
    fn warnings_are_rate_limited_and_accumulate() {
        let t0 = Instant::now();
        let mut r = RateLimited::default();
        assert!(r.note(2, Duration::from_millis(5), t0));
        r.reset(t0);
        for k in 1..100 {
            assert!(!r.note(
                1,
                Duration::from_millis(k),
                t0 + Duration::from_millis(k * 10)
            ));
        }
        assert_eq!(r.count, 99);
        assert_eq!(r.worst, Duration::from_millis(99));
        assert!(r.note(1, Duration::ZERO, t0 + WARN_EVERY));
        assert_eq!(r.count, 100);
    }

    /// Completes every probe after `hold` as a throughput test that moved `bytes`.
    struct Spender {
        bytes: u64,
        hold: Duration,
        starts: Mutex<Vec<Instant>>,
        /// (target, start, end) of every test.
        runs: Arc<Mutex<Vec<(usize, Instant, Instant)>>>,
    }

    impl Spender {
        fn new(bytes: u64, hold: Duration) -> Arc<Self> {
            Arc::new(Self {
                bytes,
                hold,
                starts: Mutex::new(Vec::new()),
                runs: Arc::new(Mutex::new(Vec::new())),
            })
        }
    }

    impl Probe for Spender {
        fn start(self: &Arc<Self>, req: Request, done: Completion) {
            let started = Instant::now();
            self.starts.lock().unwrap().push(started);
            let info = crate::probe::Info {
                throughput: Some(crate::probe::throughput::ThroughputInfo {
                    direction: crate::config::Direction::Download,
                    bits_per_second: Some(1e6),
                    bytes: self.bytes,
                    transfer_seconds: 1.0,
                    time_to_first_byte_seconds: None,
                    streams: 1,
                    streams_finished: 1,
                    ended_by: None,
                    partial: false,
                    loaded: None,
                }),
                ..Default::default()
            };
            let o = Observation::with_info(
                Outcome::Success {
                    duration: Duration::from_millis(1),
                    phases: Phases::default(),
                },
                info,
            );
            let (hold, runs, i) = (self.hold, self.runs.clone(), req.index());
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                runs.lock().unwrap().push((i, started, Instant::now()));
                done.complete(o).await;
            });
        }
    }

    /// One throughput target (interval 100 s) spending `per_test` of `per_day`.
    fn throughput_config(per_test: u64, per_day: u64) -> Arc<Config> {
        let mut cfg = (*config(1, Duration::from_secs(100), Duration::from_secs(5), 10)).clone();
        let mut spec = crate::config::ThroughputSpec::new(
            "http://127.0.0.1:9/x".parse().unwrap(),
            crate::config::Direction::Download,
        );
        spec.max_bytes = per_test;
        spec.max_bytes_per_day = per_day;
        spec.max_duration = Duration::from_secs(10);
        cfg.targets[0].spec = TargetSpec::Throughput(spec);
        Arc::new(cfg)
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_slots_are_jittered_around_a_grid_that_does_not_drift() {
        let cfg = throughput_config(1, u64::MAX);
        let spender = Spender::new(1, Duration::ZERO);
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let handle =
            tokio::spawn(Scheduler::new(cfg, spender.clone(), tx, None).run(cancel.clone()));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(100 * 50 - 1)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        let starts = spender.starts.lock().unwrap().clone();
        // One test per slot, no slot lost or doubled over 50 intervals.
        assert_eq!(starts.len(), 50);
        let mut offsets = Vec::new();
        for (k, s) in starts.iter().enumerate() {
            let grid = start + Duration::from_secs(100 * k as u64);
            let offset = *s - grid;
            // Within 10 % of the interval after its own grid slot: no drift.
            assert!(
                *s >= grid && offset < Duration::from_secs(10),
                "slot {k}: {offset:?}"
            );
            offsets.push(offset);
        }
        // Random: not one fixed offset (50 draws from 10 s of nanoseconds).
        offsets.sort();
        offsets.dedup();
        assert!(offsets.len() > 40, "{offsets:?}");
        // Spread: some in each half of the jitter window.
        assert!(offsets.iter().any(|o| *o < Duration::from_secs(5)));
        assert!(offsets.iter().any(|o| *o >= Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_skips_tests_and_counts_them() {
        // 10 bytes a test, 25 a day: two tests fit (20), the third would pass 25.
        let cfg = throughput_config(10, 25);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let spender = Spender::new(10, Duration::ZERO);
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let sched = Scheduler::new(cfg, spender.clone(), tx, Some(metrics.clone()));
        // A zone where it is about noon now: local midnight is hours away
        // from this (wall-clock) run, whatever the machine's zone and time.
        let utc_hour = jiff::Timestamp::now().to_zoned(TimeZone::UTC).hour();
        let tz = TimeZone::fixed(jiff::tz::offset(12 - utc_hour));
        let handle = tokio::spawn(sched.run_in(cancel.clone(), tz));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(100 * 10 - 1)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        assert_eq!(spender.starts.lock().unwrap().len(), 2);
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        let budget = text
            .lines()
            .find(|l| {
                l.starts_with("linkwatch_probes_skipped_total{") && l.contains("reason=\"budget\"")
            })
            .unwrap();
        assert!(budget.ends_with(" 8"), "{budget}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("linkwatch_probes_skipped_total{")
                    && l.ends_with("reason=\"behind\"} 0")),
            "{text}"
        );
    }

    /// What a previous run spent today counts: after a restart with 20 of
    /// 25 bytes spent, no 10-byte test fits any more.
    #[tokio::test(start_paused = true)]
    async fn a_budget_spent_before_a_restart_stays_spent() {
        let cfg = throughput_config(10, 25);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let spender = Spender::new(10, Duration::ZERO);
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let sched = Scheduler::new(cfg, spender.clone(), tx, Some(metrics.clone()))
            .with_spent_today(vec![20]);
        let utc_hour = jiff::Timestamp::now().to_zoned(TimeZone::UTC).hour();
        let tz = TimeZone::fixed(jiff::tz::offset(12 - utc_hour));
        let handle = tokio::spawn(sched.run_in(cancel.clone(), tz));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(100 * 10 - 1)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        assert_eq!(spender.starts.lock().unwrap().len(), 0);
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("linkwatch_probes_skipped_total{")
                    && l.contains("reason=\"budget\"")
                    && l.ends_with(" 10")),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn speed_tests_never_overlap_and_keep_their_slots() {
        // Two throughput targets at 100 s (first slots at 0 and 50 s) whose
        // tests take 70 s: each second test must wait for the first to end.
        let mut cfg = (*throughput_config(1, u64::MAX)).clone();
        let second = cfg.targets[0].clone();
        cfg.targets.push(Target {
            name: "t1".into(),
            ..second
        });
        let cfg = Arc::new(cfg);
        let spender = Spender::new(1, Duration::from_secs(70));
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let handle =
            tokio::spawn(Scheduler::new(cfg, spender.clone(), tx, None).run(cancel.clone()));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(1000)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        let mut runs = spender.runs.lock().unwrap().clone();
        runs.sort_by_key(|r| r.1);
        for w in runs.windows(2) {
            assert!(w[1].1 >= w[0].2, "tests overlap: {:?} and {:?}", w[0], w[1]);
        }
        // Both targets keep testing (no starvation), and never more than once a slot.
        for t in 0..2 {
            let n = runs.iter().filter(|r| r.0 == t).count();
            assert!((4..=10).contains(&n), "target {t}: {n} tests in 1000 s");
        }
        // A waiting test starts within TEST_RETRY of the other's end.
        let waited = runs
            .windows(2)
            .filter(|w| w[1].1 - w[0].2 <= TEST_RETRY)
            .count();
        assert!(waited >= 2, "{runs:?}");
        assert!(runs.iter().all(|r| r.1 >= start));
    }

    /// One `schedule = "campaign"` target spending `per_test` of `per_day`.
    fn campaign_config(per_test: u64, per_day: u64) -> Arc<Config> {
        let mut cfg = (*throughput_config(per_test, per_day)).clone();
        if let TargetSpec::Throughput(s) = &mut cfg.targets[0].spec {
            s.schedule = Schedule::Campaign;
        }
        Arc::new(cfg)
    }

    /// Runs a campaign target from local midnight of 2026-12-07 in Berlin for
    /// three days and returns the wall-clock starts of its tests.
    async fn campaign_run(
        cfg: Arc<Config>,
        metrics: Option<Arc<Metrics>>,
        hold: Duration,
    ) -> Vec<Timestamp> {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let midnight: Timestamp = "2026-12-06T23:00:00Z".parse().unwrap();
        let spender = Spender::new(10, hold);
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let sched = Scheduler::new(cfg, spender.clone(), tx, metrics).with_wall_clock(midnight);
        let handle = tokio::spawn(sched.run_in(cancel.clone(), tz));
        let collect = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_secs(3 * 86_400)).await;
        cancel.cancel();
        handle.await.unwrap();
        collect.await.unwrap();
        let starts = spender.starts.lock().unwrap().clone();
        starts
            .iter()
            .map(|s| midnight + SignedDuration::try_from(*s - start).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_campaign_target_tests_at_the_planned_times_of_each_day() {
        let cfg = campaign_config(10, 1000);
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let seed = crate::campaign::seed(&cfg.targets[0].name);
        let starts = campaign_run(cfg, None, Duration::from_secs(60)).await;
        let mut planned = Vec::new();
        let mut day = jiff::civil::Date::constant(2026, 12, 7);
        for _ in 0..3 {
            planned.extend(crate::campaign::day_plan(day, &tz, seed).unwrap());
            day = day.tomorrow().unwrap();
        }
        // 30 tests, each within a few ms of its planned time (the timer's
        // millisecond resolution): no grid, no interval, no extra jitter.
        assert_eq!(starts.len(), 30, "{starts:?}");
        for (s, p) in starts.iter().zip(&planned) {
            let late = s.duration_since(*p);
            assert!(
                late >= SignedDuration::ZERO && late < SignedDuration::from_millis(10),
                "started {s}, planned {p}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_budget_still_caps_a_campaign() {
        // 10 bytes a test, 95 a day: 9 of the 10 planned tests fit each day.
        let cfg = campaign_config(10, 95);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let starts = campaign_run(cfg, Some(metrics.clone()), Duration::from_secs(60)).await;
        assert_eq!(starts.len(), 27, "{starts:?}");
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("linkwatch_probes_skipped_total{")
                    && l.contains("reason=\"budget\"")
                    && l.ends_with(" 3")),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_campaign_test_still_running_skips_the_next_planned_one() {
        // Tests that take 20 min outlast the 8-15 min steps: a planned test
        // that finds the previous one running is skipped and counted, never
        // started late or twice.
        let cfg = campaign_config(10, 1000);
        let metrics = Arc::new(Metrics::new(&cfg).unwrap());
        let starts = campaign_run(cfg, Some(metrics.clone()), Duration::from_secs(20 * 60)).await;
        for w in starts.windows(2) {
            assert!(
                w[1].duration_since(w[0]) >= SignedDuration::from_mins(20),
                "{w:?}"
            );
        }
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        let behind: usize = text
            .lines()
            .find(|l| {
                l.starts_with("linkwatch_probes_skipped_total{") && l.contains("reason=\"behind\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(behind > 0 && starts.len() < 30, "{starts:?}");
        assert_eq!(starts.len() + behind, 30, "{starts:?}");
    }

    #[test]
    fn budgets_reset_at_local_midnight_and_count_every_byte() {
        let cfg = throughput_config(10, 25);
        // UTC+5 (Almaty): local midnight is 19:00 UTC.
        let tz = TimeZone::fixed(jiff::tz::offset(5));
        let b = Budgets::new(&cfg, tz);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(b.admit(0, at("2026-11-30T10:00:00Z")), Admit::Yes);
        b.charge(0, 10, at("2026-11-30T10:00:05Z"));
        // A failed test that moved 6 bytes spends them too: 16 + 10 > 25.
        b.charge(0, 6, at("2026-11-30T11:00:05Z"));
        assert_eq!(
            b.admit(0, at("2026-11-30T18:59:59Z")),
            Admit::Spent {
                spent: 16,
                per_day: 25,
                first: true
            }
        );
        assert!(matches!(
            b.admit(0, at("2026-11-30T18:59:59Z")),
            Admit::Spent { first: false, .. }
        ));
        // 19:00 UTC is midnight in UTC+5: a new day, a new budget.
        assert_eq!(b.admit(0, at("2026-11-30T19:00:00Z")), Admit::Yes);
        // Targets that are not throughput tests are never metered.
        let icmp = Budgets::new(
            &config(1, Duration::from_secs(1), Duration::from_millis(500), 1),
            TimeZone::UTC,
        );
        icmp.charge(0, u64::MAX, at("2026-11-30T10:00:00Z"));
        assert_eq!(icmp.admit(0, at("2026-11-30T10:00:00Z")), Admit::Yes);
    }

    #[test]
    fn offsets_cover_the_interval() {
        let i = Duration::from_secs(1);
        assert_eq!(first_offset(i, 0, 4), Duration::ZERO);
        assert_eq!(first_offset(i, 3, 4), Duration::from_millis(750));
        assert_eq!(first_offset(i, 0, 0), Duration::ZERO);
    }

    /// Records each probe's target name and start; answers after `hold`.
    struct Named {
        hold: Duration,
        starts: Mutex<Vec<(String, Instant)>>,
    }

    impl Probe for Named {
        fn start(self: &Arc<Self>, req: Request, done: Completion) {
            self.starts
                .lock()
                .unwrap()
                .push((req.target().name.clone(), Instant::now()));
            let hold = self.hold;
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                done.complete(Observation::new(Outcome::Success {
                    duration: hold,
                    phases: Phases::default(),
                }))
                .await;
            });
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_the_phase_of_kept_targets_and_never_doubles_a_probe() {
        // t0 and t1 at 1 s (first slots at 0 and 0.5 s); probes take 300 ms.
        let old = config(2, Duration::from_secs(1), Duration::from_millis(500), 10);
        let named = Arc::new(Named {
            hold: Duration::from_millis(300),
            starts: Mutex::new(Vec::new()),
        });
        let (tx, mut old_rx) = mpsc::channel(1024);
        let (reload_tx, reload_rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let handle = tokio::spawn(
            Scheduler::new(old.clone(), named.clone(), tx, None)
                .with_reloads(reload_rx)
                .run(cancel.clone()),
        );
        // At 3.6 s t1's probe of 3.5 s is in flight. New: t1 kept (now
        // index 0), t0 removed, t9 added.
        tokio::time::sleep(Duration::from_millis(3600)).await;
        let mut new = (*old).clone();
        let mut t9 = new.targets[0].clone();
        t9.name = "t9".into();
        new.targets = vec![new.targets[1].clone(), t9];
        let new = Arc::new(new);
        let diff = Arc::new(Diff::between(&old, &new));
        assert_eq!(diff.targets, vec![Some(1), None]);
        let (switched, new_rx) = oneshot::channel();
        reload_tx
            .send(Reload {
                config: new,
                prober: named.clone(),
                diff,
                switched,
            })
            .await
            .unwrap();
        let switched = new_rx.await.unwrap();
        // The previous probers come back, to be kept until their probes end.
        assert!(Arc::ptr_eq(&switched.retired, &named));
        let mut new_rx = switched.results;
        tokio::time::sleep(Duration::from_millis(4000)).await;
        cancel.cancel();
        handle.await.unwrap();
        let starts = named.starts.lock().unwrap().clone();
        let of = |n: &str| -> Vec<Duration> {
            starts
                .iter()
                .filter(|(name, _)| name == n)
                .map(|(_, at)| *at - start)
                .collect()
        };
        // t1: every slot of its grid, before and after, once.
        let expected: Vec<Duration> = (0..8)
            .map(|k| Duration::from_millis(500 + 1000 * k))
            .collect();
        assert_eq!(of("t1"), expected);
        // t0: nothing after the reload; t9: spread from the reload on.
        assert!(of("t0").iter().all(|at| *at < Duration::from_millis(3600)));
        assert_eq!(of("t0").len(), 4);
        let t9 = of("t9");
        assert_eq!(t9.len(), 4, "{t9:?}");
        assert_eq!(t9[0], Duration::from_millis(3600 + 500));
        // The probe in flight at the switch came on the old channel, as target 1.
        let mut old_results = Vec::new();
        while let Some(r) = old_rx.recv().await {
            old_results.push(r.target);
        }
        assert_eq!(old_results.iter().filter(|t| **t == 1).count(), 4);
        let mut new_results = Vec::new();
        while let Some(r) = new_rx.recv().await {
            new_results.push(r.target);
        }
        assert_eq!(new_results.iter().filter(|t| **t == 0).count(), 4);
        assert_eq!(new_results.iter().filter(|t| **t == 1).count(), 4);
    }
}
