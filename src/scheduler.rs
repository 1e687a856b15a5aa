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
//! - **Bounded**: every probe is cut at its deadline (start + timeout).
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe::seam::Slots;
use crate::probe::{Completion, Probe, ProbeResult, Request};

/// What a probe in flight holds, released through [`Slots`]: one
/// concurrency permit (forgotten at launch, added back on release) and its
/// target's busy flag, counted in `linkwatch_probes_in_flight`.
struct Bookkeeping {
    semaphore: Arc<Semaphore>,
    busy: Box<[AtomicBool]>,
    metrics: Option<Arc<Metrics>>,
}

impl Slots for Bookkeeping {
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
        }
    }

    /// Runs until `cancel` fires and every probe in flight has ended.
    pub async fn run(self, cancel: CancellationToken) {
        let mut run = Run::new(self);
        run.schedule(&cancel).await;
        run.drain().await;
    }
}

/// The scheduler's state while it runs.
struct Run<P: Probe> {
    s: Scheduler<P>,
    /// Next slot of every target not waiting for a permit.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Probes due but waiting for a concurrency permit, oldest first.
    waiting: VecDeque<(usize, Instant)>,
    queued: Vec<bool>,
    slots: Arc<Bookkeeping>,
    skipped: RateLimited,
    delayed: RateLimited,
}

impl<P: Probe> Run<P> {
    fn new(s: Scheduler<P>) -> Self {
        let start = Instant::now();
        let n = s.config.targets.len();
        let heap = s
            .config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| Reverse((start + first_offset(t.interval, i, n), i)))
            .collect();
        Self {
            heap,
            waiting: VecDeque::new(),
            queued: vec![false; n],
            slots: Arc::new(Bookkeeping {
                semaphore: s.semaphore.clone(),
                busy: (0..n).map(|_| AtomicBool::new(false)).collect(),
                metrics: s.metrics.clone(),
            }),
            skipped: RateLimited::default(),
            delayed: RateLimited::default(),
            s,
        }
    }

    async fn schedule(&mut self, cancel: &CancellationToken) {
        let Some(&Reverse((first, _))) = self.heap.peek() else {
            cancel.cancelled().await;
            return;
        };
        let sleep = tokio::time::sleep_until(first);
        tokio::pin!(sleep);
        let mut armed = first;
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
            }
        }
    }

    /// Starts (or queues, or skips) every target whose slot is at or before `now`.
    fn due(&mut self, now: Instant) {
        while let Some(&Reverse((slot, i))) = self.heap.peek() {
            if slot > now {
                break;
            }
            self.heap.pop();
            let interval = self.s.config.targets[i].interval;
            let (slot, next, mut missed) = catch_up(slot, interval, now);
            self.heap.push(Reverse((next, i)));
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

    fn skip(&mut self, i: usize, missed: u64, lateness: Duration, now: Instant) {
        if let Some(m) = &self.s.metrics {
            m.add_skipped(i, missed);
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
        let deadline = started + config.targets[i].timeout;
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
    use crate::config::Target;
    use crate::config::{
        DaemonConfig, Defaults, DownWhen, Group, Host, IcmpSpec, IpVersion, LogFormat, TargetSpec,
    };
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
        let targets = (0..n)
            .map(|i| Target {
                name: format!("t{i}"),
                group: "g".into(),
                interval,
                timeout,
                fail_after: 3,
                recover_after: 2,
                spec: TargetSpec::Icmp(IcmpSpec {
                    host: Host::Ip("127.0.0.1".parse().unwrap()),
                    ip_version: IpVersion::Any,
                    payload_size: 56,
                }),
            })
            .collect();
        Arc::new(Config {
            source: "test".into(),
            digest: String::new(),
            daemon: DaemonConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: "/nonexistent".into(),
                log_format: LogFormat::Text,
                max_concurrency: max_conc,
                allow_symlinks: false,
                trace: Default::default(),
                site: None,
            },
            defaults: Defaults {
                interval,
                timeout,
                fail_after: 3,
                recover_after: 2,
            },
            groups: vec![Group {
                name: "g".into(),
                needs: None,
                down_when: DownWhen::All,
                trace: Default::default(),
            }],
            targets,
        })
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

    #[test]
    fn offsets_cover_the_interval() {
        let i = Duration::from_secs(1);
        assert_eq!(first_offset(i, 0, 4), Duration::ZERO);
        assert_eq!(first_offset(i, 3, 4), Duration::from_millis(750));
        assert_eq!(first_offset(i, 0, 0), Duration::ZERO);
    }
}
