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
            throughput: Some(Box::new(crate::probe::throughput::ThroughputInfo {
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
            })),
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
    cfg.targets[0].spec = TargetSpec::Throughput(Box::new(spec));
    Arc::new(cfg)
}

#[tokio::test(start_paused = true)]
async fn throughput_slots_are_jittered_around_a_grid_that_does_not_drift() {
    let cfg = throughput_config(1, u64::MAX);
    let spender = Spender::new(1, Duration::ZERO);
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let handle = tokio::spawn(Scheduler::new(cfg, spender.clone(), tx, None).run(cancel.clone()));
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
    let sched =
        Scheduler::new(cfg, spender.clone(), tx, Some(metrics.clone())).with_spent_today(vec![20]);
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
    let handle = tokio::spawn(Scheduler::new(cfg, spender.clone(), tx, None).run(cancel.clone()));
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
