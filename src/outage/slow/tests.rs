//! Tests of the slow-period tracker: the histogram, the window, trips, back-dating, ends, causes, adoption and time accounting.
#![allow(clippy::unwrap_used)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::histogram::*;
use super::window::*;
use super::*;
use crate::outage::testutil::wall;

fn at(secs: f64) -> Stamp {
    Stamp {
        wall: truncate_ms(wall(secs)),
        mono: Duration::from_secs_f64(secs),
    }
}

fn th(window_s: u64, min: u32) -> Thresholds {
    Thresholds {
        window: Duration::from_secs(window_s),
        min_samples: min,
        loss_above: None,
        rtt_p50_above: None,
        rtt_p95_above: None,
        throughput_below: None,
        throughput_upload_below: None,
        throughput_hold: Duration::ZERO,
        dns_p95_above: None,
        http_p95_above: None,
        loaded_latency_above: None,
    }
}

fn spec(name: &str, needs: Option<usize>, thresholds: Thresholds) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        needs,
        thresholds,
        settle: Duration::ZERO,
    }
}

fn one(thresholds: Thresholds) -> SlowTracker {
    SlowTracker::new(vec![spec("internet", None, thresholds)])
}

fn probe(group: usize, secs: f64, kind: SampleKind, ok: bool, ms: f64) -> Sample {
    Sample {
        group,
        at: at(secs),
        kind,
        success: ok,
        latency: ok.then(|| Duration::from_secs_f64(ms / 1000.0)),
        throughput_bps: None,
        loaded_increase: None,
        interference: None,
    }
}

fn icmp(group: usize, secs: f64, ok: bool, ms: f64) -> Sample {
    probe(group, secs, SampleKind::Icmp, ok, ms)
}

fn test(group: usize, secs: f64, mbps: f64) -> Sample {
    Sample {
        group,
        at: at(secs),
        kind: SampleKind::Throughput,
        success: true,
        latency: None,
        throughput_bps: Some(mbps * 1e6),
        loaded_increase: None,
        interference: None,
    }
}

fn started(ev: &[SlowEvent]) -> Vec<&DegradedStarted> {
    ev.iter()
        .filter_map(|e| match e {
            SlowEvent::Started(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn ended(ev: &[SlowEvent]) -> Vec<&DegradedEnded> {
    ev.iter()
        .filter_map(|e| match e {
            SlowEvent::Ended(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Feeds one ICMP probe per second for `secs`; `ok(second)` says which succeed.
fn loss_stream(
    d: &mut SlowTracker,
    g: usize,
    secs: std::ops::Range<u32>,
    ok: impl Fn(u32) -> bool,
) -> Vec<(u32, SlowEvent)> {
    let mut out = Vec::new();
    for s in secs {
        for e in d.observe(&icmp(g, s as f64, ok(s), 20.0)) {
            out.push((s, e));
        }
    }
    out
}

fn evs(v: &[(u32, SlowEvent)]) -> Vec<SlowEvent> {
    v.iter().map(|(_, e)| e.clone()).collect()
}

#[test]
fn histogram_quantile_error_bound_and_resolution() {
    // Every value is within 1/128 of its bucket's representative.
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..100_000 {
        let v = 10f64.powf(rng.random_range(3.0..11.5)) as u64;
        let r = representative(bucket(v));
        assert!(
            (r - v as f64).abs() <= v as f64 / 128.0,
            "{v} -> bucket {} -> {r}",
            bucket(v)
        );
        let (lo, w) = bucket_bounds(bucket(v));
        assert!(lo <= v && v < lo + w, "{v} not in [{lo}, {})", lo + w);
    }
    // Buckets are contiguous.
    for b in 1..BUCKETS {
        let (lo, _) = bucket_bounds(b);
        let (plo, pw) = bucket_bounds(b - 1);
        assert_eq!(plo + pw, lo, "bucket {b}");
        assert_eq!(bucket(lo), b);
    }
    // Quantiles of random sets against the exact nearest-rank ones.
    for _ in 0..200 {
        let n = rng.random_range(1..500usize);
        let mut h = Histogram::default();
        let mut v: Vec<u64> = (0..n)
            .map(|_| (rng.random_range(0.1f64..2.0) * 1e6) as u64)
            .collect();
        v.iter().for_each(|x| h.add(*x));
        v.sort_unstable();
        for q in [P50, P95] {
            let exact = v[rank(q, n as u64).unwrap() as usize - 1] as f64;
            let got = h.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= exact / 128.0,
                "q{q} {got} vs {exact}"
            );
        }
    }
    // A 20 % change is at least 12 buckets at LAN and internet scales.
    for base_us in [200u64, 500, 2000, 20_000, 100_000, 300_000] {
        let b = base_us * 1000;
        let moved = bucket(b * 6 / 5) - bucket(b);
        assert!(moved >= 12, "{base_us} µs: {moved} buckets");
    }
    assert_eq!(h_quantile_empty(), None);
}

fn h_quantile_empty() -> Option<f64> {
    Histogram::default().quantile(P50)
}

#[test]
fn a_reload_keeps_an_unchanged_group_and_ends_removed_and_redefined_ones() {
    let mut t = th(60, 1);
    t.loss_above = Some(0.05);
    let mut d = SlowTracker::new(vec![
        spec("internet", None, t.clone()),
        spec("gone", None, t.clone()),
    ]);
    let a = started(&evs(&loss_stream(&mut d, 0, 0..5, |s| s != 3)))[0]
        .id
        .clone();
    assert_eq!(
        started(&evs(&loss_stream(&mut d, 1, 0..5, |s| s != 3))).len(),
        1
    );
    // `gone` removed; `internet` unchanged (carried from index 0).
    let ev = d.reload(vec![spec("internet", None, t.clone())], &[Some(0)], at(5.5));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].group, "gone");
    assert_eq!(e[0].end_reason, Some(EndReason::Removed));
    assert_eq!(d.open_period(0), Some(a.as_str()));
    assert_eq!(d.degraded(0), Some(true));
    // `internet` redefined: its period ends, its window starts again.
    let ev = d.reload(vec![spec("internet", None, th(30, 1))], &[None], at(6.5));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].id, a);
    assert_eq!(e[0].end_reason, Some(EndReason::Reconfigured));
    assert_eq!(d.open_period(0), None);
    assert_eq!(d.degraded(0), None);
}

#[test]
fn loss_trips_only_with_min_samples() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t.clone());
    // 10 probes, half lost: far over 5 %, but fewer than 20 samples.
    let ev = loss_stream(&mut d, 0, 0..10, |s| s % 2 == 0);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(d.degraded(0), None, "nothing judged yet");
    // Good probes until 20 samples: 5/20 lost trips at the 20th.
    let ev = loss_stream(&mut d, 0, 10..30, |_| true);
    assert_eq!(ev.len(), 1);
    let (when, SlowEvent::Started(s)) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(*when, 19, "trips with the 20th sample");
    assert_eq!(s.triggers, vec![Trigger::Loss]);
    assert_eq!(s.start, wall(1.0), "back-dated to the first loss");
    assert_eq!(s.cause, "internet");
    assert_eq!(s.figures.loss_ratio, Some(0.25));
    assert_eq!(s.figures.samples, 20);
    assert_eq!(
        s.id,
        format!("{}-internet-degraded", wall(1.0).as_millisecond())
    );
    assert_eq!(d.degraded(0), Some(true));

    // min_samples 1: the first loss trips at once.
    t.min_samples = 1;
    let mut d = one(t);
    let ev = loss_stream(&mut d, 0, 0..5, |s| s != 3);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, 3);
    assert_eq!(started(&evs(&ev))[0].start, wall(3.0));
}

#[test]
fn rtt_p95_trips_on_a_bufferbloat_rise() {
    let mut t = th(60, 20);
    t.rtt_p50_above = Some(Duration::from_millis(500));
    t.rtt_p95_above = Some(Duration::from_millis(100));
    let mut d = one(t);
    let mut rng = StdRng::seed_from_u64(3);
    let mut events = Vec::new();
    // 20 ms ± 5, then from 120 s a queue builds: +100 ms per second up to 400 ms.
    for s in 0..300u32 {
        let base = 20.0 + rng.random_range(-5.0..5.0);
        let queue = if s >= 120 {
            (100.0 * (s - 120 + 1) as f64).min(400.0)
        } else {
            0.0
        };
        events.extend(d.observe(&icmp(0, s as f64, true, base + queue)));
    }
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:?}");
    assert_eq!(s[0].triggers, vec![Trigger::RttP95]);
    assert_eq!(s[0].start, wall(120.0), "the first probe over 100 ms");
    let p95 = s[0].figures.rtt_p95_seconds.unwrap();
    assert!(p95 > 0.1, "{p95}");
    assert!(s[0].figures.rtt_p50_seconds.unwrap() < 0.03);
    // Metrics view: p50 climbs with the queue later on.
    let f = d.window_figures(0).unwrap();
    assert!((f.rtt_p50_seconds.unwrap() - 0.42).abs() < 0.02, "{f:?}");
    assert_eq!(f.loss_ratio, Some(0.0));
}

#[test]
fn end_is_back_dated_to_the_last_loss_and_announced_one_window_later() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t);
    // 20 % loss from 100 to 200 s, then clean.
    let ev = loss_stream(&mut d, 0, 0..400, |s| {
        !(100..200).contains(&s) || s % 5 != 0
    });
    let all = evs(&ev);
    assert_eq!(started(&all).len(), 1);
    assert_eq!(started(&all)[0].start, wall(100.0));
    let e = ended(&all);
    assert_eq!(e.len(), 1);
    // The last loss is at 195: the period ends at the first probe after
    // it, not when the window's figure got back under 5 % (it holds 60
    // probes, so that was at 240).
    let good_from = 196;
    assert_eq!(
        naive_first_good(0.05, 60, |s| !(100..200).contains(&s) || s % 5 != 0),
        240
    );
    assert_eq!(e[0].end, wall(good_from as f64));
    let announced = ev
        .iter()
        .find(|(_, e)| matches!(e, SlowEvent::Ended(_)))
        .unwrap()
        .0;
    assert_eq!(announced, good_from + 60, "exactly one window later");
    assert_eq!(
        e[0].duration_seconds,
        (good_from - 100) as f64,
        "monotonic duration"
    );
    assert_eq!(e[0].duration_clock, DurationClock::Monotonic);
    assert!(e[0].end_observed && !e[0].superseded);
    assert_eq!(e[0].triggers, vec![Trigger::Loss]);
    let f = &e[0].figures;
    assert!(f.worst.loss_ratio.unwrap() >= 0.2 - 1e-9, "{f:?}");
    assert!(f.median.loss_ratio.unwrap() > 0.05, "{f:?}");
    assert_eq!(f.worst.samples, 60);
    assert_eq!(
        f.samples,
        (announced - 100 + 1) as u64,
        "probes from the start"
    );
    assert_eq!(d.degraded(0), Some(false));
}

/// The first second from which the 60-probe window (one probe a second) is
/// at or below `limit` for good, computed naively.
fn naive_first_good(limit: f64, window: u32, ok: impl Fn(u32) -> bool) -> u32 {
    let over = |s: u32| {
        let from = (s + 1).saturating_sub(window);
        let lost = (from..=s).filter(|x| !ok(*x)).count() as f64;
        lost > limit * (s + 1 - from) as f64
    };
    (1..1000).rev().find(|s| over(*s - 1)).unwrap()
}

#[test]
fn borderline_stream_does_not_flap() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t);
    // 3 losses in every 60 probes (exactly 5 %, not over) plus one more every
    // 100 s: the window is over for 60 s, then good for 40 s, and so on.
    let lossy = |s: u32| s < 1000 && (s.is_multiple_of(20) || s % 100 == 10);
    let ev = evs(&loss_stream(&mut d, 0, 0..1200, |s| !lossy(s)));
    assert_eq!(started(&ev).len(), 1, "one degradation, no flapping");
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    // The stream stays at or over 5 % until its last loss (980): the
    // period ends at the probe after it.
    assert_eq!(e[0].end, wall(981.0));
}

#[test]
fn back_dated_start_ignores_a_stray_old_loss() {
    let mut t = th(300, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t);
    // One stray loss at 10 s, then 20 % loss from 100 s (first loss at 101).
    let ev = evs(&loss_stream(&mut d, 0, 0..400, |s| {
        s != 10 && !(s >= 100 && s % 5 == 1)
    }));
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].start, wall(101.0), "within one interval of the change");
}

#[test]
fn cause_is_farthest_upstream_degraded_group() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let chain = || {
        SlowTracker::new(vec![
            spec("lan", None, t.clone()),
            spec("isp", Some(0), t.clone()),
            spec("international", Some(1), t.clone()),
        ])
    };
    // ISP loss: isp and international both lose 20 %, international's
    // losses come first (it trips first), lan is clean.
    let mut d = chain();
    let mut ev = Vec::new();
    for s in 0..300u32 {
        let lossy = s >= 100 && s % 5 == 0;
        let sec = s as f64;
        ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
        ev.extend(d.observe(&icmp(1, sec + 0.4, !lossy, 10.0)));
        ev.extend(d.observe(&icmp(0, sec + 0.8, true, 1.0)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 2, "{s:?}");
    let intl = s.iter().find(|x| x.group == "international").unwrap();
    let isp = s.iter().find(|x| x.group == "isp").unwrap();
    assert_eq!(intl.cause, "isp");
    assert_eq!(isp.cause, "isp");
    assert_eq!(intl.start, wall(100.0));
    assert_eq!(isp.start, wall(100.4));
    // International alone: its own cause, announced once isp is settled.
    let mut d = chain();
    let mut ev = Vec::new();
    for s in 0..300u32 {
        let lossy = s >= 100 && s % 5 == 0;
        let sec = s as f64;
        ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
        ev.extend(d.observe(&icmp(1, sec + 0.4, true, 10.0)));
        ev.extend(d.observe(&icmp(0, sec + 0.8, true, 1.0)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].group.as_str(), s[0].cause.as_str()),
        ("international", "international")
    );
    assert_eq!(d.degraded(1), Some(false));
    // An upstream outage at the start is a cause too.
    let mut d = chain();
    for g in 0..3 {
        d.set_group_state(g, State::Up, at(0.0));
    }
    let mut ev = Vec::new();
    for s in 0..300u32 {
        let sec = s as f64;
        if s == 99 {
            ev.extend(d.set_group_state(1, State::Down, at(99.5)));
        }
        let lossy = s >= 100 && s % 5 == 0;
        ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].cause, "isp");
}

#[test]
fn an_outage_ends_a_slow_period_only_when_nothing_bad_follows_it() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t.clone());
    d.set_group_state(0, State::Up, at(0.0));
    let ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s < 50 || s % 4 != 0));
    assert_eq!(started(&ev).len(), 1);
    let ev = d.set_group_state(0, State::Down, at(99.5));
    assert!(
        ended(&ev).is_empty(),
        "the period goes on through the outage"
    );
    assert_eq!(d.degraded(0), Some(false), "down is not also degraded");
    assert!(d.open_period(0).is_some());
    // Failures while down are not loss, before or after.
    let ev = loss_stream(&mut d, 0, 100..120, |_| false);
    assert!(ev.is_empty());
    assert!(d.set_group_state(0, State::Up, at(119.5)).is_empty());
    // Clean after the outage: a window after it is up, the period is
    // ended where the outage began (its last loss at 96 came first, and
    // the failures leading into the outage continue it).
    let ev = evs(&loss_stream(&mut d, 0, 120..300, |_| true));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].end, wall(97.0), "the probe after the last loss: {e:?}");
    assert!(!e[0].superseded);
    assert_eq!(d.window_figures(0).unwrap().loss_ratio, Some(0.0));

    // Loss that leads straight into the outage, then a clean link: the
    // period ends where the outage began (superseded).
    let mut d = one(t.clone());
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = evs(&loss_stream(&mut d, 0, 0..100, |s| {
        s < 50 || s % 4 != 0 && s < 97
    }));
    ev.extend(d.set_group_state(0, State::Down, at(97.0)));
    ev.extend(d.set_group_state(0, State::Up, at(120.0)));
    ev.extend(evs(&loss_stream(&mut d, 0, 120..300, |_| true)));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].end, wall(97.0));
    assert!(e[0].superseded);

    // Loss before and after the outage: one period, the outage inside.
    let mut d = one(t.clone());
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s < 50 || s % 4 != 0));
    ev.extend(d.set_group_state(0, State::Down, at(99.5)));
    ev.extend(d.set_group_state(0, State::Up, at(119.5)));
    ev.extend(evs(&loss_stream(&mut d, 0, 120..400, |s| {
        s >= 200 || s % 4 != 0
    })));
    assert_eq!(started(&ev).len(), 1, "{ev:?}");
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].start, wall(52.0));
    assert_eq!(e[0].end, wall(197.0), "the probe after the last loss (196)");
    assert!(!e[0].superseded);

    // A trip still settling when the group goes down is dropped: it
    // was the outage's own first failures.
    let mut d = SlowTracker::new(vec![GroupSpec {
        settle: Duration::from_secs(3),
        ..spec("internet", None, t)
    }]);
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = evs(&loss_stream(&mut d, 0, 0..64, |s| s < 60));
    assert_eq!(d.degraded(0), Some(true), "tripped, waiting to settle");
    ev.extend(d.set_group_state(0, State::Down, at(60.0)));
    ev.extend(evs(&loss_stream(&mut d, 0, 64..70, |_| false)));
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(d.degraded(0), Some(false));
}

#[test]
fn loss_after_a_throttle_is_a_record_of_its_own() {
    let mut t = th(20, 10);
    t.loss_above = Some(0.05);
    t.throughput_below = Some(10e6);
    t.throughput_hold = Duration::from_secs(45);
    let mut d = one(t);
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = Vec::new();
    ev.extend(d.observe(&test(0, 0.0, 50.0)));
    // Probes every second throughout; slow tests at 10 and 20 s, a good
    // one at 30 s; loss from 40 s to 60 s (every other probe).
    for s in 1..120u32 {
        let sec = s as f64;
        match s {
            10 | 20 => ev.extend(d.observe(&test(0, sec, 3.0))),
            30 => ev.extend(d.observe(&test(0, sec, 50.0))),
            _ => {}
        }
        let lost = (40..60).contains(&s) && s % 2 == 0;
        ev.extend(d.observe(&icmp(0, sec, !lost, 20.0)));
    }
    let st = started(&ev);
    assert_eq!(st.len(), 2, "{ev:?}");
    let e = ended(&ev);
    assert_eq!(e.len(), 2, "{ev:?}");
    assert_eq!((e[0].start, e[0].end), (wall(10.0), wall(30.0)));
    assert_eq!(e[0].triggers, vec![Trigger::Throughput]);
    assert_eq!((e[1].start, e[1].end), (wall(40.0), wall(59.0)));
    assert_eq!(e[1].triggers, vec![Trigger::Loss]);
}

#[test]
fn throughput_median_and_last_test_rules() {
    let mut t = th(300, 20);
    t.throughput_below = Some(10e6);
    t.throughput_hold = Duration::from_secs(2700);
    // Tests 30 minutes apart: the last one stands until the next.
    let mut d = one(t.clone());
    let mut ev = Vec::new();
    let tick = |d: &mut SlowTracker, s: u32| d.tick(at(s as f64));
    ev.extend(d.observe(&test(0, 0.0, 50.0)));
    for s in (60..1800).step_by(60) {
        ev.extend(tick(&mut d, s));
    }
    assert!(ev.is_empty());
    assert_eq!(d.degraded(0), Some(false), "one test is a judgement");
    ev.extend(d.observe(&test(0, 1800.0, 3.0)));
    let s = started(&ev);
    assert_eq!(s.len(), 1, "one slow test is enough");
    assert_eq!(s[0].start, wall(1800.0));
    assert_eq!(s[0].triggers, vec![Trigger::Throughput]);
    assert_eq!(s[0].figures.throughput_bps, Some(3e6));
    for s in (1860..3600).step_by(60) {
        ev.extend(tick(&mut d, s));
    }
    assert!(
        ended(&ev).is_empty(),
        "still slow while the last test stands"
    );
    ev.extend(d.observe(&test(0, 3600.0, 40.0)));
    for s in (3660..4200).step_by(60) {
        ev.extend(tick(&mut d, s));
    }
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].end, wall(3600.0));
    assert_eq!(e[0].figures.worst.throughput_bps, Some(3e6));
    assert_eq!(e[0].figures.throughput_tests, 2);

    // Several tests in the window: the median decides, not one slow test.
    let mut d = one(t.clone());
    let mut ev = Vec::new();
    for (i, mbps) in [20.0, 20.0, 3.0, 20.0].into_iter().enumerate() {
        ev.extend(d.observe(&test(0, i as f64 * 60.0, mbps)));
    }
    assert!(ev.is_empty(), "{ev:?}");
    for (i, mbps) in [3.0, 3.0, 3.0].into_iter().enumerate() {
        ev.extend(d.observe(&test(0, 240.0 + i as f64 * 60.0, mbps)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    // Window (300 s) at 360 s: 20@120? no: 3@120, 20@180, 3@240, 3@300, 3@360.
    assert_eq!(
        s[0].start,
        wall(240.0),
        "the change point of the slow tests"
    );

    // A slow last test stops counting after the hold: it ends.
    let mut d = one(t);
    let mut ev = d.observe(&test(0, 0.0, 1.0));
    assert_eq!(started(&ev).len(), 1);
    for s in (60..4000).step_by(60) {
        ev.extend(d.tick(at(s as f64)));
    }
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].end, wall(2700.0));
    // A failed (partial) test is no figure.
    let mut d = one(th(300, 20));
    let mut s = test(0, 0.0, 1.0);
    s.success = false;
    d.observe(&s);
    assert_eq!(d.window_figures(0).unwrap().throughput_bps, None);
}

/// Naive window state recomputed from every sample.
fn naive(all: &[Sample], now_ms: u64, t: &Th) -> (u64, u64, [Vec<u64>; 3], u8) {
    let mut lat: [Vec<u64>; 3] = Default::default();
    let (mut total, mut failed) = (0, 0);
    let start = |s: &Sample| ms(s.at.mono) - ms(s.at.mono) % t.bucket_ms;
    for s in all.iter().filter(|s| now_ms - start(s) < t.window_ms) {
        let class = match s.kind {
            SampleKind::Icmp | SampleKind::Tcp => 0,
            SampleKind::Dns => 1,
            SampleKind::Http => 2,
            SampleKind::Throughput | SampleKind::ThroughputUpload => continue,
        };
        if class != 2 {
            total += 1;
            failed += u64::from(!s.success);
        }
        if s.success
            && let Some(l) = s.latency
        {
            lat[class].push(ns(l));
        }
    }
    lat.iter_mut().for_each(|v| v.sort_unstable());
    let q = |v: &Vec<u64>, permille, thr: Option<u64>| {
        thr.is_some_and(|thr| {
            v.len() as u64 >= t.min && v[rank(permille, v.len() as u64).unwrap() as usize - 1] > thr
        })
    };
    let mut m = 0;
    if t.loss
        .is_some_and(|l| total >= t.min && failed as f64 > l * total as f64)
    {
        m |= Trigger::Loss.bit();
    }
    if q(&lat[0], P50, t.rtt_p50) {
        m |= Trigger::RttP50.bit();
    }
    if q(&lat[0], P95, t.rtt_p95) {
        m |= Trigger::RttP95.bit();
    }
    if q(&lat[1], P95, t.dns_p95) {
        m |= Trigger::DnsP95.bit();
    }
    if q(&lat[2], P95, t.http_p95) {
        m |= Trigger::HttpP95.bit();
    }
    (total, failed, lat, m)
}

#[test]
fn window_expiry_matches_naive_recomputation() {
    let mut t = th(30, 5);
    t.loss_above = Some(0.1);
    t.rtt_p50_above = Some(Duration::from_millis(40));
    t.rtt_p95_above = Some(Duration::from_millis(80));
    t.dns_p95_above = Some(Duration::from_millis(100));
    t.http_p95_above = Some(Duration::from_millis(300));
    let th = Th::new(&t);
    let mut w = Window::new();
    let mut rng = StdRng::seed_from_u64(42);
    let mut all = Vec::new();
    let mut now = 0.0;
    for i in 0..20_000 {
        // Bursts and lulls, so the window both fills and empties.
        now += if i % 2000 < 100 {
            rng.random_range(0.0..0.05)
        } else {
            rng.random_range(0.0..3.0)
        };
        let kind = match rng.random_range(0..4) {
            0 => SampleKind::Icmp,
            1 => SampleKind::Tcp,
            2 => SampleKind::Dns,
            _ => SampleKind::Http,
        };
        let ok = rng.random_range(0.0..1.0) > 0.1;
        let s = probe(0, now, kind, ok, rng.random_range(1.0..200.0));
        assert!(w.push(&s, &th).is_some());
        all.push(s);
        let now_ms = ms(s.at.mono);
        // A sample leaves with its time bucket: once the bucket's start is a
        // whole window old.
        all.retain(|s| now_ms - (ms(s.at.mono) - ms(s.at.mono) % th.bucket_ms) < th.window_ms);
        let (total, failed, lat, mask) = naive(&all, now_ms, &th);
        assert_eq!((w.loss_total, w.loss_failed), (total, failed), "sample {i}");
        for (pop, v) in [&w.rtt, &w.dns, &w.http].into_iter().zip(&lat) {
            assert_eq!(pop.n(), v.len() as u64);
            for q in [P50, P95] {
                let exact = rank(q, v.len() as u64).map(|r| bucket(v[r as usize - 1]));
                assert_eq!(pop.hist.quantile_bucket(q), exact, "sample {i} q{q}");
            }
        }
        assert_eq!(w.crossing(&th), mask, "sample {i}");
        assert_eq!(w.samples, all.len() as u64);
    }
}

#[test]
fn adopted_degradation_resumes_or_closes_unobserved() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let adopted = || AdoptedSlowPeriod {
        id: "old-internet-degraded".into(),
        cause: "internet".into(),
        start: wall(-500.0),
        triggers: vec![Trigger::RttP95],
        gaps: vec![],
        last_seen: wall(-100.0),
    };
    // Still lossy: the same slow period continues, with the gap.
    let mut d = one(t.clone());
    assert!(d.adopt("internet", adopted()));
    assert!(!d.adopt("nope", adopted()));
    assert_eq!(d.degraded(0), None);
    assert_eq!(d.open_period(0), Some("old-internet-degraded"));
    let ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s % 4 != 0));
    assert!(started(&ev).is_empty());
    let SlowEvent::Resumed(r) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(r.id, "old-internet-degraded");
    assert_eq!(
        r.gap,
        Gap {
            from: wall(-100.0),
            to: wall(0.0)
        }
    );
    let ev = evs(&loss_stream(&mut d, 0, 100..300, |_| true));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].id, "old-internet-degraded");
    assert!(e[0].end_observed);
    assert_eq!(e[0].duration_clock, DurationClock::Wall);
    assert_eq!(e[0].triggers, vec![Trigger::Loss, Trigger::RttP95]);
    assert_eq!(e[0].gaps.len(), 1);
    // Clean after the restart: closed at the last moment seen, unobserved.
    let mut d = one(t.clone());
    d.adopt("internet", adopted());
    let ev = evs(&loss_stream(&mut d, 0, 0..100, |_| true));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert!(!e[0].end_observed);
    assert_eq!(e[0].end, wall(-100.0));
    assert_eq!(e[0].duration_seconds, 400.0);
    assert_eq!(
        e[0].gaps,
        vec![Gap {
            from: wall(-100.0),
            to: wall(0.0)
        }]
    );
    assert_eq!(ev.len(), 1);
    // Down after the restart: closed unobserved, superseded.
    let mut d = one(t);
    d.adopt("internet", adopted());
    let e = d.set_group_state(0, State::Down, at(3.0));
    assert!(matches!(&e[..], [SlowEvent::Ended(x)] if !x.end_observed && x.superseded));
    assert_eq!(d.open_ids(), Vec::<String>::new());
}

#[test]
fn degraded_time_accrues_from_the_back_dated_start_to_the_end() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    let mut d = one(t);
    let ok = |s: u32| !(100..200).contains(&s) || !s.is_multiple_of(5);
    let mut total = Duration::ZERO;
    let mut ev = Vec::new();
    for s in 0..400u32 {
        ev.extend(d.observe(&icmp(0, s as f64, ok(s), 20.0)));
        total += d
            .take_degraded_time(Duration::from_secs(s as u64))
            .iter()
            .map(|x| x.1)
            .sum::<Duration>();
    }
    let e = ended(&ev);
    assert_eq!(total.as_secs_f64(), e[0].duration_seconds);
    assert!(d.take_degraded_time(Duration::from_secs(500)).is_empty());
}

#[test]
fn ids_never_collide_and_figures_serialise_with_contract_keys() {
    let mut t = th(60, 1);
    t.loss_above = Some(0.05);
    let mut d = one(t);
    d.reserve_ids([format!("{}-internet-degraded", wall(0.0).as_millisecond())]);
    let ev = d.observe(&icmp(0, 0.0, false, 0.0));
    let s = started(&ev);
    assert_eq!(
        s[0].id,
        format!("{}-internet-degraded-2", wall(0.0).as_millisecond())
    );
    let json = serde_json::to_value(s[0]).unwrap();
    assert_eq!(json["triggers"], serde_json::json!(["loss"]));
    assert_eq!(json["start"], "2026-11-01T10:00:00.000Z");
    let keys: Vec<&str> = json["figures"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "dns_p95_seconds",
            "http_p95_seconds",
            "loss_ratio",
            "rtt_p50_seconds",
            "rtt_p95_seconds",
            "samples",
            "throughput_bps"
        ]
    );
    let back: DegradedStarted = serde_json::from_value(json).unwrap();
    assert_eq!(&back, s[0]);
}

/// `cargo test --release --lib outage::slow period::tests::cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn cost_per_sample_at_10k_targets() {
    let mut t = th(300, 20);
    t.loss_above = Some(0.05);
    t.rtt_p50_above = Some(Duration::from_millis(200));
    t.rtt_p95_above = Some(Duration::from_millis(600));
    let groups = 10;
    let mut d = SlowTracker::new(
        (0..groups)
            .map(|g| spec(&format!("g{g}"), None, t.clone()))
            .collect(),
    );
    let mut rng = StdRng::seed_from_u64(1);
    // 10 000 targets probed once a second, 10 minutes: the window fills and expires.
    let samples: Vec<Sample> = (0..600 * 10_000u64)
        .map(|i| {
            let secs = (i / 10_000) as f64 + (i % 10_000) as f64 / 10_000.0;
            let ok = rng.random_range(0u32..100) != 0;
            icmp(
                (i % groups as u64) as usize,
                secs,
                ok,
                rng.random_range(10.0..50.0),
            )
        })
        .collect();
    // On-CPU time of this thread (ns), immune to other load on the machine.
    let cpu = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
    };
    #[allow(clippy::disallowed_types)]
    let t0 = std::time::Instant::now();
    let c0 = cpu();
    let mut events = 0;
    for s in &samples {
        events += d.observe(s).len();
    }
    let el = t0.elapsed();
    let n = samples.len() as f64;
    let cpu_ns = cpu().zip(c0).map(|(b, a)| (b - a) / n);
    println!(
        "degradation windows: {} samples in {:?}: {:.1} ns/sample wall, {:.1} ns/sample on CPU ({events} events), {} time buckets and {} heap bytes in group 0's window",
        samples.len(),
        el,
        el.as_nanos() as f64 / n,
        cpu_ns.unwrap_or(f64::NAN),
        d.groups[0].win.slots.len(),
        d.groups[0].win.heap_bytes(),
    );
}

/// `loaded_latency_above`: bloated tests (fast ones) trip
/// `loaded_latency`, not `throughput`, and a good test ends it.
#[test]
fn loaded_latency_trips_on_the_tests_median_increase() {
    let mut t = th(20, 10);
    t.throughput_below = Some(10e6);
    t.loaded_latency_above = Some(Duration::from_millis(100));
    t.throughput_hold = Duration::from_secs(45);
    let mut d = one(t);
    d.set_group_state(0, State::Up, at(0.0));
    let bloated = |secs: f64, ms: u64| Sample {
        loaded_increase: Some(Duration::from_millis(ms)),
        interference: None,
        ..test(0, secs, 50.0)
    };
    let mut ev = Vec::new();
    ev.extend(d.observe(&bloated(0.0, 10)));
    for s in 1..90u32 {
        let sec = f64::from(s);
        match s {
            10 | 20 => ev.extend(d.observe(&bloated(sec, 450))),
            30 | 40 | 50 => ev.extend(d.observe(&bloated(sec, 8))),
            _ => {}
        }
        ev.extend(d.observe(&icmp(0, sec, true, 20.0)));
    }
    let st = started(&ev);
    assert_eq!(st.len(), 1, "{ev:?}");
    assert_eq!(st[0].triggers, vec![Trigger::LoadedLatency]);
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].start, wall(10.0));
    assert_eq!(Trigger::LoadedLatency.as_str(), "loaded_latency");
}

fn upload(group: usize, secs: f64, mbps: f64) -> Sample {
    Sample {
        kind: SampleKind::ThroughputUpload,
        ..test(group, secs, mbps)
    }
}

/// Fast downloads at 0/10/20/30 s, uploads at 5 s (good), 15 and 25 s
/// (slow), 35 s (good); ICMP every second throughout.
fn mixed_directions(t: Thresholds) -> Vec<SlowEvent> {
    let mut d = one(t);
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = Vec::new();
    ev.extend(d.observe(&test(0, 0.0, 50.0)));
    for s in 1..120u32 {
        let sec = f64::from(s);
        match s {
            10 | 20 | 30 => ev.extend(d.observe(&test(0, sec, 50.0))),
            5 | 35 => ev.extend(d.observe(&upload(0, sec, 5.0))),
            15 | 25 => ev.extend(d.observe(&upload(0, sec, 0.5))),
            _ => {}
        }
        ev.extend(d.observe(&icmp(0, sec, true, 20.0)));
    }
    ev
}

/// Uploads have a median and a floor of their own: slow ones trip
/// `throughput` while the downloads are fast, dated like download tests.
#[test]
fn a_slow_upload_trips_throughput_while_downloads_are_fast() {
    let mut t = th(20, 10);
    t.throughput_below = Some(10e6);
    t.throughput_upload_below = Some(3e6);
    t.throughput_hold = Duration::from_secs(45);
    let ev = mixed_directions(t);
    let st = started(&ev);
    assert_eq!(st.len(), 1, "{ev:?}");
    assert_eq!(st[0].triggers, vec![Trigger::Throughput]);
    assert_eq!(
        st[0].start,
        wall(15.0),
        "back-dated to the first slow upload"
    );
    assert_eq!(
        st[0].figures.throughput_bps,
        Some(50e6),
        "downloads are fast"
    );
    let up = st[0].figures.throughput_upload_bps.unwrap();
    assert!(up < 3e6, "{up}");
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!((e[0].start, e[0].end), (wall(15.0), wall(35.0)));
    assert_eq!(e[0].triggers, vec![Trigger::Throughput]);
    // Downloads at 20 and 30 s, uploads at 15, 25 and 35 s.
    assert_eq!(e[0].figures.throughput_tests, 5, "uploads count as tests");
}

/// Without an upload floor (a percentage and no `[plan] upload`), upload
/// tests judge nothing: the group behaves as a download-only one.
#[test]
fn uploads_without_their_floor_judge_nothing() {
    let mut t = th(20, 10);
    t.throughput_below = Some(10e6);
    t.throughput_hold = Duration::from_secs(45);
    let ev = mixed_directions(t);
    assert!(ev.is_empty(), "{ev:?}");
}

/// Old journals have no upload figure; it is left out when absent.
#[test]
fn figures_without_an_upload_median_read_and_write_as_before() {
    let old = r#"{"loss_ratio":null,"rtt_p50_seconds":null,"rtt_p95_seconds":null,"dns_p95_seconds":null,"http_p95_seconds":null,"throughput_bps":3000000.0,"samples":4}"#;
    let f: Figures = serde_json::from_str(old).unwrap();
    assert_eq!(f.throughput_upload_bps, None);
    assert_eq!(serde_json::to_string(&f).unwrap(), old);
}

/// Exact nearest-rank quantile of sorted `v`.
fn exact_quantile(v: &[u64], permille: u64) -> f64 {
    v[rank(permille, v.len() as u64).unwrap() as usize - 1] as f64
}

/// Value sets that stress a bucketed quantile: random spreads and the
/// adversarial ones (bucket edges, one value, steps, heavy tails, tiny
/// and huge values, two far modes).
fn quantile_sets(rng: &mut StdRng) -> Vec<(String, Vec<u64>)> {
    let mut sets = Vec::new();
    for round in 0..40 {
        let n = rng.random_range(1..3000usize);
        let uniform: Vec<u64> = (0..n)
            .map(|_| rng.random_range(100_000..300_000_000))
            .collect();
        let log_uniform: Vec<u64> = (0..n)
            .map(|_| 10f64.powf(rng.random_range(0.0..12.0)) as u64)
            .collect();
        // Every value on the lower or upper edge of a random bucket.
        let edges: Vec<u64> = (0..n)
            .map(|_| {
                let (lo, w) = bucket_bounds(rng.random_range(0..BUCKETS - 1));
                if rng.random() { lo } else { lo + w - 1 }
            })
            .collect();
        let same = vec![rng.random_range(1..1_000_000_000u64); n];
        let bimodal: Vec<u64> = (0..n)
            .map(|_| {
                if rng.random_range(0..100) < 94 {
                    rng.random_range(5_000..15_000)
                } else {
                    rng.random_range(2_000_000_000..3_000_000_000)
                }
            })
            .collect();
        // Pareto tail (bufferbloat): most small, a few very large.
        let pareto: Vec<u64> = (0..n)
            .map(|_| {
                let u: f64 = rng.random_range(1e-9..1.0);
                (1e6 * u.powf(-1.0 / 1.2)).min(1e12) as u64
            })
            .collect();
        // Consecutive integers across the exact/linear boundary (64).
        let tiny: Vec<u64> = (0..n as u64).map(|i| i % 200).collect();
        // A geometric ladder: one value per 1 % step.
        let ladder: Vec<u64> = (0..n)
            .map(|i| (1000.0 * 1.01f64.powi(i as i32 % 2000)) as u64)
            .collect();
        for (name, v) in [
            ("uniform", uniform),
            ("log-uniform", log_uniform),
            ("bucket edges", edges),
            ("one value", same),
            ("bimodal", bimodal),
            ("pareto", pareto),
            ("tiny", tiny),
            ("ladder", ladder),
        ] {
            sets.push((format!("{name} #{round}"), v));
        }
    }
    sets
}

/// Issue 23: every exported quantile is within 1 % of the exact one, on
/// random and adversarial sets, straight from a histogram and through a
/// window of time buckets (merged).
#[test]
fn quantiles_are_within_one_percent_of_the_exact_ones() {
    let mut rng = StdRng::seed_from_u64(23);
    let qs = [10, 100, 250, P50, 750, 900, P95, 990, 999, 1000];
    let mut worst = 0f64;
    for (name, mut v) in quantile_sets(&mut rng) {
        let mut h = Histogram::default();
        v.iter().for_each(|x| h.add(*x));
        v.sort_unstable();
        for q in qs {
            let exact = exact_quantile(&v, q);
            let got = h.quantile(q).unwrap();
            let err = (got - exact).abs() / exact.max(1.0);
            worst = worst.max(err);
            assert!(err <= 0.01, "{name} q{q}: {got} vs exact {exact} ({err})");
        }
    }
    // Through the window: many targets at random moments over several
    // time buckets, some expired; the figures against the exact quantiles
    // of the samples still in the window.
    let mut t = th(10, 1);
    t.rtt_p95_above = Some(Duration::from_millis(100));
    let th = Th::new(&t);
    for round in 0..20 {
        let mut w = Window::new();
        let mut all = Vec::new();
        let mut now = 0.0;
        for _ in 0..rng.random_range(50..4000) {
            now += rng.random_range(0.0..0.02);
            let ms = if round % 2 == 0 {
                rng.random_range(0.005..2.0)
            } else {
                10f64.powf(rng.random_range(-2.0..3.0))
            };
            let s = icmp(0, now, true, ms);
            w.push(&s, &th).unwrap();
            all.push(s);
        }
        let now_ms = ms(all.last().unwrap().at.mono);
        let mut v: Vec<u64> = all
            .iter()
            .filter(|s| now_ms - (ms(s.at.mono) - ms(s.at.mono) % th.bucket_ms) < th.window_ms)
            .map(|s| ns(s.latency.unwrap()))
            .collect();
        v.sort_unstable();
        let f = w.figures();
        for (q, got) in [(P50, f.rtt_p50_seconds), (P95, f.rtt_p95_seconds)] {
            let exact = exact_quantile(&v, q) / 1e9;
            let got = got.unwrap();
            assert!(
                (got - exact).abs() <= exact * 0.01,
                "round {round} q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(f.samples, v.len() as u64);
    }
    // The bound is the buckets' width, not luck: the worst case seen is
    // under 1/128 and the representative of a bucket's edge is at it.
    assert!(worst <= 1.0 / 128.0, "{worst}");
}

/// Issue 23: time buckets merge (histograms add), in any grouping and
/// order, to the histogram of all their values; a window's histogram is
/// the sum of its buckets' after any expiry.
#[test]
fn histogram_merges_are_associative_and_match_the_window() {
    let mut rng = StdRng::seed_from_u64(2323);
    for _ in 0..50 {
        let parts: Vec<Vec<u64>> = (0..3)
            .map(|_| {
                (0..rng.random_range(0..500))
                    .map(|_| 10f64.powf(rng.random_range(0.0..11.0)) as u64)
                    .collect()
            })
            .collect();
        let hist = |v: &[u64]| {
            let mut h = Histogram::default();
            v.iter().for_each(|x| h.add(*x));
            h
        };
        let [a, b, c] = [hist(&parts[0]), hist(&parts[1]), hist(&parts[2])];
        let mut ab_c = a.clone();
        ab_c.merge(&b);
        ab_c.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        let mut cba = c.clone();
        cba.merge(&b);
        cba.merge(&a);
        let whole = hist(&parts.concat());
        for m in [&ab_c, &a_bc, &cba] {
            assert_eq!(m.counts, whole.counts);
            assert_eq!(m.total, whole.total);
        }
    }
    // The window's histogram is always the sum of its buckets' histograms.
    let mut t = th(5, 1);
    t.rtt_p50_above = Some(Duration::from_millis(10));
    let th = Th::new(&t);
    let mut w = Window::new();
    let mut now = 100.0;
    for i in 0..5000 {
        now += rng.random_range(0.0..0.01);
        // Now and then a late result, back in an older bucket.
        let at = if i % 50 == 0 { now - 1.7 } else { now };
        let kind = if i % 3 == 0 {
            SampleKind::Dns
        } else {
            SampleKind::Icmp
        };
        w.push(
            &probe(0, at, kind, i % 7 != 0, rng.random_range(1.0..30.0)),
            &th,
        );
        if i % 97 == 0 {
            let mut sum = [
                Histogram::default(),
                Histogram::default(),
                Histogram::default(),
            ];
            for s in &w.slots {
                for &(key, count) in &s.hist {
                    let h = &mut sum[usize::from(key >> 12)];
                    h.counts[usize::from(key & 0xfff)] += count;
                    h.total += u64::from(count);
                }
            }
            for (pop, s) in [&w.rtt, &w.dns, &w.http].into_iter().zip(&sum) {
                assert_eq!(pop.hist.counts, s.counts, "sample {i}");
                assert_eq!(pop.hist.total, s.total);
            }
            assert!(
                w.slots
                    .iter()
                    .zip(w.slots.iter().skip(1))
                    .all(|(a, b)| a.start < b.start)
            );
        }
    }
}

/// The per-sample CUSUM change point (the old exact window's) of a stream.
fn exact_change_point(samples: &[(u64, bool)], rate: f64) -> Option<u64> {
    let mut cp = ChangePoint::new(rate);
    for (at, bad) in samples.iter().rev() {
        cp.feed(*bad, *at);
    }
    cp.at
}

/// Issue 23: edges are exact to the time bucket. With 40 targets probed
/// every second at random moments and a step (loss, or RTT over the p95
/// threshold) at a moment anywhere inside a bucket, the slow period
/// starts in the bucket where the exact per-sample change point is, at
/// its first bad sample; and it ends in the bucket of the first sample
/// after the fault.
#[test]
fn a_period_starts_in_the_bucket_where_the_threshold_was_first_crossed() {
    let mut rng = StdRng::seed_from_u64(9);
    for round in 0..24 {
        let rtt = round % 2 == 1;
        let mut t = th(60, 20);
        if rtt {
            t.rtt_p95_above = Some(Duration::from_millis(100));
        } else {
            t.loss_above = Some(0.05);
        }
        let mut d = one(t);
        // The step: inside second 100, anywhere (near its end included).
        let step = 100.0 + [0.03, 0.5, 0.97, rng.random_range(0.0..1.0)][round % 4];
        let stop = 160.0 + rng.random_range(0.0..1.0);
        let offsets: Vec<f64> = (0..40).map(|_| rng.random_range(0.0..1.0)).collect();
        let mut stream = Vec::new();
        for sec in 0..400u32 {
            for o in &offsets {
                let at = sec as f64 + o;
                // A third of the probes bad during the fault.
                let bad = (step..stop).contains(&at) && rng.random_range(0..3) == 0;
                stream.push((at, bad));
            }
        }
        stream.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ev = Vec::new();
        for (at, bad) in &stream {
            let s = if rtt {
                icmp(0, *at, true, if *bad { 300.0 } else { 20.0 })
            } else {
                icmp(0, *at, !bad, 20.0)
            };
            ev.extend(d.observe(&s));
        }
        let ms_of = |s: f64| ms(Duration::from_secs_f64(s)) as i64;
        let since = |w: Timestamp| w.as_millisecond() - wall(0.0).as_millisecond();
        // The exact per-sample change point over the first minute of the
        // fault is its first bad sample (nothing bad before the step).
        let first_bad = stream.iter().position(|(_, b)| *b).unwrap();
        let window: Vec<(u64, bool)> = stream[first_bad..first_bad + 2400]
            .iter()
            .map(|(a, b)| (ms_of(*a) as u64, *b))
            .collect();
        let exact = exact_change_point(&window, 0.05).unwrap() as i64;
        assert_eq!(exact, ms_of(stream[first_bad].0));
        let s = started(&ev);
        assert_eq!(s.len(), 1, "round {round}: {ev:?}");
        // Wall times of window moments are derived from the newest
        // sample's at milliseconds: up to 1 ms early.
        let start = since(s[0].start);
        assert!(
            (exact - 1..=exact).contains(&start),
            "round {round}: start {start} vs first bad {exact} (step {step})"
        );
        assert_eq!(
            (start + 1) / 1000,
            exact / 1000,
            "round {round}: its bucket"
        );
        // The end: the sample after the forward CUSUM's last peak.
        let (mut sum, mut peak, mut end) = (0.0, 0.0, None);
        for (i, (_, bad)) in stream.iter().enumerate().skip(first_bad) {
            sum += if *bad { 0.95 } else { -0.05 };
            if *bad && sum >= peak {
                peak = sum;
                end = stream.get(i + 1).map(|x| ms_of(x.0));
            }
        }
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "round {round}");
        let end = end.unwrap();
        assert_eq!(
            since(e[0].end) / 1000,
            end / 1000,
            "round {round}: end {:?} vs {end}",
            e[0].end
        );
    }
}

/// Issue 23: a group's window costs the same memory whatever the number
/// of probes feeding it: its time buckets hold counts and sparse
/// histograms, not samples.
#[test]
fn window_memory_does_not_grow_with_the_probe_count() {
    let mut t = th(60, 20);
    t.loss_above = Some(0.05);
    t.rtt_p95_above = Some(Duration::from_millis(100));
    let th = Th::new(&t);
    let mut bytes = Vec::new();
    for per_second in [1_000u32, 10_000] {
        let mut rng = StdRng::seed_from_u64(5);
        let mut w = Window::new();
        for sec in 0..90u32 {
            for i in 0..per_second {
                let at = sec as f64 + i as f64 / per_second as f64;
                let ok = rng.random_range(0..100) != 0;
                w.push(&icmp(0, at, ok, rng.random_range(10.0..50.0)), &th);
            }
        }
        assert_eq!(w.samples, 60 * u64::from(per_second));
        bytes.push(w.heap_bytes());
    }
    // Ten times the probes, the same buckets: within 10 %.
    let (small, big) = (bytes[0] as f64, bytes[1] as f64);
    assert!(big <= small * 1.1, "{bytes:?}");
    // And far below the 4 bytes a sample of the exact window (2.4 MB here).
    assert!(bytes[1] < 200_000, "{bytes:?}");
}

fn throttled(group: usize, secs: f64, mbps: f64) -> Sample {
    Sample {
        interference: Some(Check::ThrottledName),
        ..test(group, secs, mbps)
    }
}

fn started_of(ev: &[SlowEvent]) -> Vec<&DegradedStarted> {
    ev.iter()
        .filter_map(|e| match e {
            SlowEvent::Started(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn ended_of(ev: &[SlowEvent]) -> Vec<&DegradedEnded> {
    ev.iter()
        .filter_map(|e| match e {
            SlowEvent::Ended(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Issue 21: tests far below their control trip `throttled_name` (no
/// throughput floor needed), back-dated to the first throttled test; the
/// period's cause is `interference`, with its counts at the start and over
/// the whole period at the end, which comes a window after the first test
/// that is no longer throttled.
#[test]
fn throttled_tests_trip_throttled_name_with_the_cause_interference() {
    let mut t = th(60, 5);
    t.throughput_hold = Duration::from_secs(15);
    let mut d = one(t);
    d.set_group_state(0, State::Up, at(0.0));
    let mut ev = Vec::new();
    for (s, throttle) in [
        (0.0, false),
        (10.0, false),
        (20.0, true),
        (30.0, true),
        (40.0, true),
    ] {
        let sample = if throttle {
            throttled(0, s, 5.0)
        } else {
            test(0, s, 5.0)
        };
        ev.extend(d.observe(&sample));
        ev.extend(d.tick(at(s + 5.0)));
    }
    let st = started_of(&ev);
    assert_eq!(st.len(), 1, "{ev:?}");
    assert_eq!(st[0].cause, "interference");
    assert_eq!(st[0].start, at(20.0).wall, "the first throttled test");
    assert_eq!(st[0].triggers, vec![Trigger::ThrottledName]);
    let sum = st[0].interference.as_deref().unwrap();
    assert_eq!(sum.checks, vec!["throttled_name"]);
    assert_eq!((sum.failures, sum.of_failures), (1, 1));
    ev.clear();
    for i in 0..20 {
        let s = 50.0 + f64::from(i) * 10.0;
        ev.extend(d.observe(&test(0, s, 5.0)));
        ev.extend(d.tick(at(s + 5.0)));
    }
    let e = ended_of(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(
        e[0].end,
        at(50.0).wall,
        "the first test no longer throttled"
    );
    assert_eq!(e[0].cause, "interference");
    let sum = e[0].interference.as_deref().unwrap();
    assert_eq!(
        (sum.failures, sum.of_failures),
        (3, 3),
        "over the whole period"
    );
}

/// Issue 21: loss made mostly of failures with interference reasons (forged
/// DNS answers) is a slow period of cause `interference`; the same loss
/// from timeouts is not.
#[test]
fn loss_mostly_of_interference_failures_is_interference_and_timeouts_are_not() {
    for (sign, cause) in [
        (Some(Check::DnsInconsistent), "interference"),
        (None, "internet"),
    ] {
        let mut t = th(30, 5);
        t.loss_above = Some(0.1);
        let mut d = one(t);
        d.set_group_state(0, State::Up, at(0.0));
        let mut ev = Vec::new();
        for i in 0..20 {
            let s = f64::from(i);
            ev.extend(d.observe(&icmp(0, s, true, 10.0)));
            let dns = Sample {
                interference: sign.filter(|_| i >= 10),
                ..probe(0, s + 0.5, SampleKind::Dns, i < 10, 10.0)
            };
            ev.extend(d.observe(&dns));
        }
        let st = started_of(&ev);
        assert_eq!(st.len(), 1, "{ev:?}");
        assert_eq!(st[0].cause, cause);
        assert!(st[0].triggers.contains(&Trigger::Loss));
        match sign {
            Some(_) => {
                let sum = st[0].interference.as_deref().unwrap();
                assert!(sum.failures * 2 > sum.of_failures, "{sum:?}");
                assert!(sum.checks.is_empty(), "the service adds the checks it saw");
            }
            None => assert!(st[0].interference.is_none()),
        }
    }
}
