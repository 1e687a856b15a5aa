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
                    // With `control_url`, room for the control test too.
                    per_test: s.bytes_per_test(),
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
mod tests;
