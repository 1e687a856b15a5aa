//! Drives every target on its own interval.
//!
//! Invariants:
//! - **Spread start**: target `i` of `n` first fires at `interval * i / n`, so
//!   a thousand targets at 1 s do not all fire in the first millisecond.
//! - **Drift-free**: slot `k` of a target is at `first + k * interval`,
//!   whatever the previous probe took. A probe's timeout is always shorter
//!   than its interval, so only a stalled process (or a saturated concurrency
//!   bound) can miss a slot; missed slots are skipped, counted and logged, and
//!   the next probe goes at the next slot, never in a catch-up burst.
//! - **One in flight per target**: each target's loop awaits its own probe.
//! - **Global bound**: a semaphore caps probes in flight over all targets.
//! - **Bounded**: every probe is cut at its deadline (start + timeout).
//! - **Cancellation**: once `cancel` fires no new probe starts; probes in
//!   flight finish or hit their deadline; [`Scheduler::run`] then returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Target};
use crate::metrics::Metrics;
use crate::probe::{ProbeResult, Probers, Report};

/// Something that probes a target once, by a deadline. [`Probers`] in the
/// daemon; a scripted fake in the scheduler's tests.
pub trait Probe: Send + Sync + 'static {
    fn probe(
        &self,
        index: usize,
        target: &Target,
        deadline: Instant,
    ) -> impl Future<Output = Report> + Send;
}

impl Probe for Probers {
    fn probe(
        &self,
        index: usize,
        target: &Target,
        deadline: Instant,
    ) -> impl Future<Output = Report> + Send {
        Probers::probe(self, index, target, deadline)
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

/// Given the slot just used and the current time, the next slot to use and
/// how many slots were missed in between.
pub fn next_slot(slot: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    let next = slot + interval;
    if next > now {
        return (next, 0);
    }
    let behind = now.duration_since(next).as_nanos();
    let missed = behind / interval.as_nanos().max(1) + 1;
    let missed64 = u64::try_from(missed).unwrap_or(u64::MAX);
    let step = interval.saturating_mul(u32::try_from(missed).unwrap_or(u32::MAX));
    (next + step, missed64)
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

    /// Runs until `cancel` fires and every target's loop has ended.
    pub async fn run(self, cancel: CancellationToken) {
        let start = Instant::now();
        let count = self.config.targets.len();
        let mut tasks = JoinSet::new();
        for index in 0..count {
            let first = start + first_offset(self.config.targets[index].interval, index, count);
            tasks.spawn(target_loop(
                index,
                first,
                self.config.clone(),
                self.prober.clone(),
                self.results.clone(),
                self.metrics.clone(),
                self.semaphore.clone(),
                cancel.clone(),
            ));
        }
        drop(self.results);
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined
                && e.is_panic()
            {
                tracing::error!(error = %e, "a target's probe loop panicked");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn target_loop<P: Probe>(
    index: usize,
    first: Instant,
    config: Arc<Config>,
    prober: Arc<P>,
    results: mpsc::Sender<ProbeResult>,
    metrics: Option<Arc<Metrics>>,
    semaphore: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let target = &config.targets[index];
    let mut slot = first;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(slot) => {}
        }
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            p = semaphore.acquire() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        let at = jiff::Timestamp::now();
        let lateness = started.saturating_duration_since(slot);
        if let Some(m) = &metrics {
            m.observe_lateness(lateness);
            m.in_flight.inc();
        }
        let report = prober.probe(index, target, started + target.timeout).await;
        drop(permit);
        if let Some(m) = &metrics {
            m.in_flight.dec();
        }
        let result = ProbeResult {
            target: index,
            at,
            mono: started,
            lateness,
            report,
        };
        if results.send(result).await.is_err() {
            return;
        }
        let (next, missed) = next_slot(slot, target.interval, Instant::now());
        if missed > 0 {
            tracing::warn!(
                target_name = %target.name,
                missed,
                interval = ?target.interval,
                lateness = ?Instant::now().saturating_duration_since(slot + target.interval),
                "fell behind schedule; skipping missed probe slots (process stalled or max_concurrency reached)"
            );
            if let Some(m) = &metrics {
                m.add_skipped(index, missed);
            }
        }
        slot = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        DaemonConfig, Defaults, DownWhen, Group, Host, IcmpSpec, IpVersion, LogFormat, TargetSpec,
    };
    use crate::probe::{Outcome, Phases};
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
        async fn probe(&self, index: usize, _target: &Target, deadline: Instant) -> Report {
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
            Report::new(outcome)
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
                .all(|r| matches!(r.report.outcome, Outcome::Timeout { .. }))
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
        assert!(r.report.outcome.is_success());
        assert!(Instant::now() - start >= Duration::from_secs(2));
        assert!(rx.recv().await.is_none());
        assert_eq!(fake.starts(0).len(), 1);
    }

    #[test]
    fn next_slot_skips_missed_slots() {
        let t0 = Instant::now();
        let i = Duration::from_secs(1);
        assert_eq!(
            next_slot(t0, i, t0 + Duration::from_millis(10)),
            (t0 + i, 0)
        );
        assert_eq!(
            next_slot(t0, i, t0 + Duration::from_millis(1500)),
            (t0 + 2 * i, 1)
        );
        assert_eq!(next_slot(t0, i, t0 + 3 * i), (t0 + 4 * i, 3));
    }

    #[test]
    fn offsets_cover_the_interval() {
        let i = Duration::from_secs(1);
        assert_eq!(first_offset(i, 0, 4), Duration::ZERO);
        assert_eq!(first_offset(i, 3, 4), Duration::from_millis(750));
        assert_eq!(first_offset(i, 0, 0), Duration::ZERO);
    }
}
