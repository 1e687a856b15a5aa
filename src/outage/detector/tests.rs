//! Tests of the outage detector: target streaks, group judgement, causes, stalls, adoption and downtime.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;
use crate::journal::DurationClock;
use crate::outage::testutil::{chain, config, wall};

/// Feeds `(target, second, success)` with wall = base + second and mono = second.
fn run(d: &mut Detector, stream: &[(usize, f64, bool)]) -> Vec<Event> {
    stream
        .iter()
        .flat_map(|(t, s, ok)| d.observe(*t, wall(*s), Duration::from_secs_f64(*s), *ok))
        .collect()
}

fn started(ev: &[Event]) -> Vec<&OutageStarted> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Started(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn ended(ev: &[Event]) -> Vec<&OutageEnded> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Ended(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn single() -> Detector {
    Detector::new(&config(
        &[("internet", None, DownWhen::All)],
        &[("a", "internet")],
        Path::new("/nonexistent"),
    ))
}

/// One target, probes every second from `from`, `pattern` of successes.
fn seq(t: usize, from: f64, pattern: &str) -> Vec<(usize, f64, bool)> {
    pattern
        .chars()
        .enumerate()
        .map(|(i, c)| (t, from + i as f64, c == '+'))
        .collect()
}

#[test]
fn down_after_fail_after_and_up_after_recover_after_backdated() {
    let mut d = single();
    let ev = run(&mut d, &seq(0, 0.0, "++---"));
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].start, wall(2.0), "back-dated to the first failure");
    assert_eq!(s[0].cause, "internet");
    assert_eq!(s[0].targets, vec!["a".to_string()]);
    assert_eq!(s[0].id, format!("{}-internet", wall(2.0).as_millisecond()));
    let ev = run(&mut d, &seq(0, 5.0, "-+"));
    assert!(ended(&ev).is_empty(), "one success is not a recovery");
    let ev = run(&mut d, &seq(0, 7.0, "+"));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].end,
        wall(6.0),
        "back-dated to the first success of the streak"
    );
    assert_eq!(e[0].duration_seconds, 4.0);
    assert_eq!(e[0].duration_clock, DurationClock::Monotonic);
    assert!(e[0].end_observed);
}

#[test]
fn flapping_shorter_than_fail_after_is_no_outage() {
    let mut d = single();
    let ev = run(&mut d, &seq(0, 0.0, "++--+--+-+--+--++"));
    assert!(started(&ev).is_empty());
    assert_eq!(d.target_state(0).unwrap().0, State::Up);
}

#[test]
fn recovery_streak_broken_by_a_failure_restarts() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++---"));
    // +-+-+ never gives two successes in a row; then ++ at 10,11.
    let ev = run(&mut d, &seq(0, 5.0, "+-+-+-"));
    assert!(ended(&ev).is_empty());
    let ev = run(&mut d, &seq(0, 11.0, "++"));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].end, wall(11.0));
    assert_eq!(e[0].duration_seconds, 9.0);
}

fn three(dw: DownWhen) -> Detector {
    Detector::new(&config(
        &[("g", None, dw)],
        &[("a", "g"), ("b", "g"), ("c", "g")],
        Path::new("/nonexistent"),
    ))
}

/// All three targets up, then the first `down` targets fail from second 10
/// (staggered by 0.1 s). Returns the outage starts.
fn fail_some(d: &mut Detector, down: usize) -> Vec<Event> {
    let mut ev = Vec::new();
    for s in 0..10 {
        for t in 0..3 {
            ev.extend(d.observe(t, wall(s as f64), Duration::from_secs(s), true));
        }
    }
    for s in 10..14 {
        for t in 0..3 {
            let at = s as f64 + t as f64 * 0.1;
            ev.extend(d.observe(t, wall(at), Duration::from_secs_f64(at), t >= down));
        }
    }
    ev
}

#[test]
fn group_all_needs_every_target_down() {
    for (down, expect) in [(1, 0), (2, 0), (3, 1)] {
        let mut d = three(DownWhen::All);
        let ev = fail_some(&mut d, down);
        assert_eq!(started(&ev).len(), expect, "{down} down");
    }
    let mut d = three(DownWhen::All);
    let ev = fail_some(&mut d, 3);
    // One fault: it began after the group's last success (9.2, c) and by
    // the first failure seen since (10.0, a), not when the last of them
    // noticed it (10.2).
    assert_eq!(started(&ev)[0].start, wall(10.0));
    assert_eq!(started(&ev)[0].targets, vec!["a", "b", "c"]);
}

/// A group of `a` probed every second and `slow`, a target that tests
/// every 30 s (as a throughput target does).
fn fast_and_slow(slow_votes: bool) -> Detector {
    let mut cfg = config(
        &[("g", None, DownWhen::All)],
        &[("a", "g"), ("slow", "g")],
        Path::new("/x"),
    );
    cfg.targets[1].interval = Duration::from_secs(30);
    if !slow_votes {
        let url = url::Url::parse("http://127.0.0.1:9/blob").unwrap();
        cfg.targets[1].spec = crate::config::TargetSpec::Throughput(Box::new(
            crate::config::ThroughputSpec::new(url, crate::config::Direction::Download),
        ));
    }
    Detector::new(&cfg)
}

#[test]
fn throughput_target_never_holds_a_group_up() {
    let mut d = fast_and_slow(false);
    // The speed test succeeded at 0 s and 30 s; a answers until 40 s, then a
    // blackout: every probe of a fails from 40 s on.
    let mut ev = Vec::new();
    for s in 0..50u64 {
        if s % 30 == 0 {
            ev.extend(d.observe(1, wall(s as f64), Duration::from_secs(s), true));
        }
        ev.extend(d.observe(0, wall(s as f64), Duration::from_secs(s), s < 40));
    }
    let st = started(&ev);
    assert_eq!(st.len(), 1, "the blackout is an outage: {ev:?}");
    assert_eq!(st[0].start, wall(40.0));
    assert_eq!(st[0].targets, vec!["a"], "only voting targets are named");
}

#[test]
fn a_vote_expires_after_fail_after_intervals() {
    // `slow` votes (a target every 30 s): its success at 0 s holds the
    // group up only until its horizon (3 × 30 s + 0.5 s) has passed.
    let mut d = fast_and_slow(true);
    let mut ev = Vec::new();
    ev.extend(d.observe(1, wall(0.0), Duration::ZERO, true));
    for s in 0..100u64 {
        ev.extend(d.observe(0, wall(s as f64), Duration::from_secs(s), s < 5));
        ev.extend(d.tick(Stamp {
            wall: wall(s as f64 + 0.5),
            mono: Duration::from_secs_f64(s as f64 + 0.5),
        }));
        // its next test is skipped (e.g. the day's data budget is spent)
    }
    let st = started(&ev);
    assert_eq!(st.len(), 1, "{ev:?}");
    // Announced once `slow`'s vote expired (90.5 s), back-dated to a's
    // first failure.
    assert_eq!(st[0].start, wall(5.0));
    assert_eq!(d.group_state(0).unwrap().0, State::Down);
}

#[test]
fn random_loss_needs_a_longer_streak_than_a_clean_link() {
    let mut d = three(DownWhen::All);
    // 60 s of every other probe lost on all three targets, then a cut.
    let mut ev = Vec::new();
    let mut s = 0.0;
    for i in 0..60 {
        for t in 0..3 {
            // after 20 s, the three targets also lose a run of three or
            // four probes at the same time every 10 s: by fail_after
            // alone, each run would be an outage.
            let lost = i % 2 == 0 || (i >= 20 && (4..7).contains(&(i % 10)));
            ev.extend(d.observe(t, wall(s), Duration::from_secs_f64(s), !lost));
        }
        s += 1.0;
    }
    assert!(
        started(&ev).is_empty(),
        "runs of three or four amid 50 % loss are no outage: {ev:?}"
    );
    let cut = s;
    for _ in 0..12 {
        for t in 0..3 {
            ev.extend(d.observe(t, wall(s), Duration::from_secs_f64(s), false));
        }
        s += 1.0;
    }
    let st = started(&ev);
    assert_eq!(st.len(), 1, "a real cut still is: {ev:?}");
    assert!(st[0].start <= wall(cut), "back-dated to its first failure");
}

#[test]
fn clean_link_keeps_fail_after() {
    let mut d = three(DownWhen::All);
    let mut ev = Vec::new();
    for s in 0..30u64 {
        for t in 0..3 {
            ev.extend(d.observe(t, wall(s as f64), Duration::from_secs(s), s < 20));
        }
    }
    let st = started(&ev);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].start, wall(20.0));
    // Announced on the third failure (22 s), as before.
    assert!(
        d.group_state(0)
            .unwrap()
            .1
            .is_some_and(|s| s.wall == wall(20.0)),
        "{:?}",
        d.group_state(0)
    );
}

#[test]
fn group_any_needs_one_target_down() {
    let mut d = three(DownWhen::Any);
    let ev = fail_some(&mut d, 1);
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].start, wall(10.0));
    assert_eq!(s[0].targets, vec!["a"]);
}

#[test]
fn group_count_needs_n_targets_down() {
    for (down, expect) in [(1, 0), (2, 1), (3, 1)] {
        let mut d = three(DownWhen::AtLeast(2));
        let ev = fail_some(&mut d, down);
        assert_eq!(started(&ev).len(), expect, "{down} down");
        if expect == 1 {
            assert_eq!(
                started(&ev)[0].start,
                wall(10.0),
                "the first failure after the group's last success"
            );
        }
    }
}

/// Probes the chain's three targets each second, internet first and lan last
/// within the second; `ok(target, second)` says which succeed.
fn drive(
    d: &mut Detector,
    secs: std::ops::Range<u32>,
    ok: impl Fn(usize, u32) -> bool,
) -> Vec<Event> {
    let mut ev = Vec::new();
    for s in secs {
        for (i, t) in [2usize, 1, 0].into_iter().enumerate() {
            let at = s as f64 + i as f64 * 0.3;
            ev.extend(d.observe(t, wall(at), Duration::from_secs_f64(at), ok(t, s)));
        }
    }
    ev
}

#[test]
fn cause_is_farthest_upstream_on_three_level_chain() {
    let mut d = Detector::new(&chain(Path::new("/x")));
    drive(&mut d, 0..10, |_, _| true);
    // LAN fault at 10: everything fails. The internet target is probed first
    // in each second, so the internet group is judged down before lan is.
    let ev = drive(&mut d, 10..15, |_, _| false);
    let s = started(&ev);
    assert_eq!(s.len(), 3);
    for o in &s {
        assert_eq!(o.cause, "lan", "{} outage", o.group);
    }
    let ev = drive(&mut d, 20..23, |_, _| true);
    assert_eq!(ended(&ev).len(), 3);
    assert!(ended(&ev).iter().all(|e| e.cause == "lan"));
}

#[test]
fn isp_fault_gives_cause_isp_and_no_lan_outage() {
    let mut d = Detector::new(&chain(Path::new("/x")));
    drive(&mut d, 0..10, |_, _| true);
    let ev = drive(&mut d, 10..15, |t, _| t == 0);
    let s = started(&ev);
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|o| o.cause == "isp"));
    assert!(s.iter().all(|o| o.group != "lan"));
}

#[test]
fn far_side_fault_is_only_that_group() {
    let mut d = Detector::new(&chain(Path::new("/x")));
    drive(&mut d, 0..10, |_, _| true);
    let ev = drive(&mut d, 10..15, |t, _| t != 2);
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].group.as_str(), s[0].cause.as_str()),
        ("internet", "internet")
    );
}

#[test]
fn upstream_failing_later_is_not_the_cause() {
    let mut d = Detector::new(&chain(Path::new("/x")));
    drive(&mut d, 0..10, |_, _| true);
    // internet fails from 10, lan only from 20: internet's cause stays internet.
    let ev = drive(&mut d, 10..25, |t, s| match t {
        2 => false,
        0 => s < 20,
        _ => true,
    });
    let s = started(&ev);
    let internet = s.iter().find(|o| o.group == "internet").unwrap();
    assert_eq!(internet.cause, "internet");
    let lan = s.iter().find(|o| o.group == "lan").unwrap();
    assert_eq!(lan.cause, "lan");
}

#[test]
fn wall_clock_jump_mid_outage_does_not_bend_duration() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++---"));
    // The wall clock steps back one hour at mono 6; mono goes on.
    let mut ev = Vec::new();
    for (i, ok) in [false, false, true, true].into_iter().enumerate() {
        let mono = 6.0 + i as f64;
        ev.extend(d.observe(0, wall(mono - 3600.0), Duration::from_secs_f64(mono), ok));
    }
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].duration_seconds, 6.0,
        "from 2 to 8 by the monotonic clock"
    );
    assert_eq!(e[0].start, wall(2.0));
    assert_eq!(
        e[0].end,
        wall(8.0),
        "start + monotonic duration, not the stepped wall clock"
    );
    // And a forward jump of a day.
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++---"));
    let ev: Vec<Event> = [false, true, true]
        .into_iter()
        .enumerate()
        .flat_map(|(i, ok)| {
            let mono = 5.0 + i as f64;
            d.observe(0, wall(mono + 86400.0), Duration::from_secs_f64(mono), ok)
        })
        .collect();
    assert_eq!(ended(&ev)[0].duration_seconds, 4.0);
}

#[test]
fn never_answered_target_is_not_a_phantom_up() {
    let mut d = Detector::new(&config(
        &[("g", None, DownWhen::All)],
        &[("a", "g"), ("b", "g")],
        Path::new("/x"),
    ));
    // b is never probed; a answers once: nothing is decided.
    d.observe(0, wall(0.0), Duration::ZERO, true);
    assert_eq!(d.target_state(0).unwrap().0, State::Unknown);
    assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
    // a fails three times: a is down, b unknown → the group is not judged.
    let ev = run(&mut d, &seq(0, 1.0, "---"));
    assert_eq!(d.target_state(0).unwrap().0, State::Down);
    assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
    assert!(started(&ev).is_empty());
    // b never answered and fails three times: it is down (never up), group down.
    let ev = run(&mut d, &seq(1, 1.5, "---"));
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(
        started(&ev)[0].start,
        wall(1.0),
        "the first failure after the group's last success (a at 0.0)"
    );
    // A group with no targets is reported unknown.
    let d = Detector::new(&config(
        &[("empty", None, DownWhen::All), ("g", None, DownWhen::Any)],
        &[("a", "g")],
        Path::new("/x"),
    ));
    assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
}

#[test]
fn failing_from_start_is_down_back_dated_to_first_probe() {
    let mut d = single();
    let ev = run(&mut d, &seq(0, 0.0, "---"));
    assert_eq!(started(&ev)[0].start, wall(0.0));
}

#[test]
fn adopted_outage_resumes_with_a_gap_when_still_down() {
    let mut d = single();
    assert!(d.adopt(
        "internet",
        Adopted {
            id: "old-internet".into(),
            cause: "internet".into(),
            start: wall(-100.0),
            targets: vec!["a".into()],
            gaps: vec![],
            last_seen: wall(-50.0),
            interference: None,
            start_observed: true,
        }
    ));
    assert_eq!(d.open_outage(0), Some("old-internet"));
    let ev = run(&mut d, &seq(0, 0.0, "---"));
    assert!(started(&ev).is_empty(), "the same outage continues");
    let r = ev
        .iter()
        .find_map(|e| match e {
            Event::Resumed(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.id, "old-internet");
    assert_eq!(
        r.gap,
        Gap {
            from: wall(-50.0),
            to: wall(0.0)
        }
    );
    let ev = run(&mut d, &seq(0, 3.0, "++"));
    let e = ended(&ev);
    assert_eq!(e[0].id, "old-internet");
    assert_eq!(e[0].end, wall(3.0));
    assert_eq!(e[0].gaps.len(), 1);
    assert!(e[0].end_observed);
    assert_eq!(e[0].duration_clock, DurationClock::Wall);
    assert_eq!(e[0].duration_seconds, 103.0);
}

#[test]
fn adopted_outage_found_up_is_closed_unobserved() {
    let mut d = single();
    d.adopt(
        "internet",
        Adopted {
            id: "old".into(),
            cause: "internet".into(),
            start: wall(-100.0),
            targets: vec!["a".into()],
            gaps: vec![],
            last_seen: wall(-50.0),
            interference: None,
            start_observed: true,
        },
    );
    let ev = run(&mut d, &seq(0, 0.0, "++"));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert!(!e[0].end_observed);
    assert_eq!(e[0].end, wall(-50.0), "the last moment it was seen down");
    assert_eq!(
        e[0].gaps,
        vec![Gap {
            from: wall(-50.0),
            to: wall(0.0)
        }]
    );
    assert_eq!(e[0].duration_seconds, 50.0);
}

#[test]
fn ids_never_collide() {
    let mut d = single();
    d.reserve_ids([format!("{}-internet", wall(2.0).as_millisecond())]);
    let ev = run(&mut d, &seq(0, 0.0, "++---"));
    assert_eq!(
        started(&ev)[0].id,
        format!("{}-internet-2", wall(2.0).as_millisecond())
    );
}

#[test]
fn downtime_never_counts_past_the_recovery() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++---"));
    let mut total = Duration::ZERO;
    total += d
        .take_downtime(Duration::from_secs(5))
        .iter()
        .map(|x| x.1)
        .sum::<Duration>();
    run(&mut d, &seq(0, 5.0, "+"));
    total += d
        .take_downtime(Duration::from_secs(6))
        .iter()
        .map(|x| x.1)
        .sum::<Duration>();
    run(&mut d, &seq(0, 6.0, "+"));
    total += d
        .take_downtime(Duration::from_secs(7))
        .iter()
        .map(|x| x.1)
        .sum::<Duration>();
    assert_eq!(total, Duration::from_secs(3), "down from 2 to 5");
    assert!(d.take_downtime(Duration::from_secs(9)).is_empty());
}

fn at(s: f64) -> Stamp {
    Stamp {
        wall: wall(s),
        mono: Duration::from_secs_f64(s),
    }
}

fn gap(from: f64, to: f64) -> Gap {
    Gap {
        from: wall(from),
        to: wall(to),
    }
}

#[test]
fn outage_ending_inside_a_stall_has_an_unobserved_end_bounded_by_it() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++--------"));
    // Stopped from 9.5 to 39.5; the fault ended at about 14.5.
    let ev = d.stall(at(9.5), at(39.5));
    assert_eq!(
        ev,
        vec![Event::Gaps {
            id: d.open_outage(0).unwrap().to_string(),
            gaps: vec![gap(9.5, 39.5)]
        }],
        "the open outage shows the stall at once"
    );
    let ev = run(&mut d, &seq(0, 40.0, "++"));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert!(!e[0].end_observed, "nobody saw it end");
    assert!(e[0].start_observed);
    assert_eq!(e[0].end, wall(9.5), "the last moment it was known down");
    assert_eq!(
        e[0].gaps,
        vec![gap(9.5, 40.0)],
        "the end lies in the last gap"
    );
    assert_eq!(e[0].duration_seconds, 7.5);
    assert_eq!(e[0].duration_clock, DurationClock::Monotonic);

    // The stall's start is the last tick before the stop; a failure seen
    // after it is the last moment seen down, and the last gap starts there.
    let mut d = single();
    let mut stream = seq(0, 0.0, "++--------");
    stream.push((0, 9.7, false));
    run(&mut d, &stream);
    d.stall(at(9.5), at(39.5));
    let ev = run(&mut d, &seq(0, 40.0, "++"));
    let e = ended(&ev);
    assert!(!e[0].end_observed);
    assert_eq!(e[0].end, wall(9.7));
    assert_eq!(e[0].gaps, vec![gap(9.7, 40.0)]);
}

#[test]
fn outage_starting_inside_a_stall_has_an_unobserved_start_at_its_beginning() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++++++++++"));
    assert!(d.stall(at(9.5), at(39.5)).is_empty(), "nothing open");
    let ev = run(&mut d, &seq(0, 40.0, "---"));
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert!(!s[0].start_observed);
    assert_eq!(s[0].start, wall(9.5), "the earliest it could have begun");
    assert_eq!(s[0].gaps, vec![gap(9.5, 40.0)]);
    let ev = run(&mut d, &seq(0, 43.0, "++"));
    let e = ended(&ev);
    assert!(!e[0].start_observed);
    assert!(e[0].end_observed);
    assert_eq!(e[0].end, wall(43.0));
    assert_eq!(e[0].gaps, vec![gap(9.5, 40.0)]);
    assert_eq!(e[0].duration_seconds, 33.5);
}

#[test]
fn a_stall_with_no_outage_changes_nothing() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++++++++++"));
    assert!(d.stall(at(9.5), at(39.5)).is_empty());
    let ev = run(&mut d, &seq(0, 40.0, "++++"));
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(d.target_state(0).unwrap().0, State::Up);
    assert!(d.take_downtime(Duration::from_secs(44)).is_empty());
}

#[test]
fn a_stall_during_an_outage_that_goes_on_is_one_of_its_gaps_and_not_downtime() {
    let mut d = single();
    run(&mut d, &seq(0, 0.0, "++--------"));
    let mut downtime = Duration::ZERO;
    let mut take = |d: &mut Detector, now: f64| {
        downtime += d
            .take_downtime(Duration::from_secs_f64(now))
            .iter()
            .map(|x| x.1)
            .sum::<Duration>();
    };
    take(&mut d, 9.0);
    d.stall(at(9.5), at(39.5));
    let ev = run(&mut d, &seq(0, 40.0, "-----"));
    assert!(ended(&ev).is_empty() && started(&ev).is_empty());
    take(&mut d, 44.0);
    let ev = run(&mut d, &seq(0, 45.0, "++"));
    take(&mut d, 46.0);
    let e = ended(&ev);
    assert!(e[0].start_observed && e[0].end_observed, "both edges seen");
    assert_eq!(e[0].end, wall(45.0));
    assert_eq!(e[0].gaps, vec![gap(9.5, 39.5)]);
    assert_eq!(e[0].duration_seconds, 43.0);
    assert_eq!(
        downtime,
        Duration::from_secs(13),
        "2 to 9.5 and 39.5 to 45: the stall is not counted"
    );
}

#[test]
fn edges_between_observations_more_than_two_intervals_apart_are_unobserved() {
    // Exactly two intervals apart: still seen.
    let mut d = single();
    let mut stream = seq(0, 0.0, "+++");
    stream.extend(seq(0, 4.0, "---"));
    let s = run(&mut d, &stream);
    assert!(started(&s)[0].start_observed);
    assert_eq!(started(&s)[0].start, wall(4.0));
    // Six seconds without an observation (no stall reported: a starved
    // scheduler, say): the start is bounded by the two observations.
    let mut d = single();
    let mut stream = seq(0, 0.0, "++++++++++");
    stream.extend(seq(0, 15.0, "------"));
    let ev = run(&mut d, &stream);
    let s = started(&ev);
    assert!(!s[0].start_observed);
    assert_eq!(s[0].start, wall(9.0), "just after the last success");
    assert_eq!(s[0].gaps, vec![gap(9.0, 15.0)]);
    // And the end: last failure at 20, next observation at 30.
    let ev = run(&mut d, &seq(0, 30.0, "++"));
    let e = ended(&ev);
    assert!(!e[0].end_observed);
    assert_eq!(e[0].end, wall(20.0));
    assert_eq!(e[0].gaps, vec![gap(9.0, 15.0), gap(20.0, 30.0)]);
    assert_eq!(e[0].duration_seconds, 11.0);
}

#[test]
fn a_group_start_inside_a_stall_is_unobserved_for_every_group_on_the_chain() {
    let mut d = Detector::new(&chain(Path::new("/x")));
    drive(&mut d, 0..10, |_, _| true);
    d.stall(at(9.95), at(39.5));
    // A LAN fault began during the stall: everything fails after it.
    let ev = drive(&mut d, 40..45, |_, _| false);
    let s = started(&ev);
    assert_eq!(s.len(), 3);
    for o in &s {
        assert_eq!(o.cause, "lan", "{}", o.group);
        assert!(!o.start_observed);
        assert_eq!(o.start, wall(9.95));
    }
}

#[test]
fn a_reload_keeps_kept_outages_ends_removed_ones_and_starts_added_targets_unknown() {
    use crate::config::diff::Diff;
    let dir = Path::new("/x");
    let old = config(
        &[
            ("lan", None, DownWhen::All),
            ("gone", None, DownWhen::All),
            ("wan", None, DownWhen::All),
        ],
        &[("a", "lan"), ("g", "gone"), ("w", "wan")],
        dir,
    );
    let mut d = Detector::new(&old);
    // a and g fail: outages of lan and gone; w is up.
    let mut stream = seq(0, 0.0, "-----");
    stream.extend(seq(1, 0.0, "-----"));
    stream.extend(seq(2, 0.0, "+++++"));
    let ev = run(&mut d, &stream);
    let s = started(&ev);
    assert_eq!(s.len(), 2);
    let lan_id = s.iter().find(|o| o.group == "lan").unwrap().id.clone();
    // New: `gone` removed, `w` kept, `x` added to wan, groups reordered.
    let new = config(
        &[("wan", None, DownWhen::All), ("lan", None, DownWhen::All)],
        &[("x", "wan"), ("w", "wan"), ("a", "lan")],
        dir,
    );
    let diff = Diff::between(&old, &new);
    assert_eq!(diff.targets, vec![None, Some(2), Some(0)]);
    let ev = d.reload(&new, &diff, at(5.5));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].group, "gone");
    assert_eq!(e[0].end_reason, Some(EndReason::Removed));
    assert_eq!(e[0].end, wall(5.5));
    assert!(started(&ev).is_empty());
    // lan (now group 1, target 2) goes on: same outage, its streak too.
    assert_eq!(d.open_outage(1), Some(lan_id.as_str()));
    assert_eq!(d.target_state(2).unwrap().0, State::Down);
    assert_eq!(d.target_state(1).unwrap().0, State::Up);
    assert_eq!(d.target_state(0).unwrap().0, State::Unknown);
    // wan: w up, x unknown → up (down_when all cannot hold with w up).
    assert_eq!(d.group_state(0).unwrap().0, State::Up);
    let ev = run(&mut d, &seq(2, 6.0, "-"));
    assert!(started(&ev).is_empty() && ended(&ev).is_empty());
    // lan recovers: its one outage ends normally, not split.
    let ev = run(&mut d, &seq(2, 7.0, "++"));
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].id, lan_id);
    assert_eq!(e[0].start, wall(0.0));
    assert_eq!(e[0].end_reason, None);
}

#[test]
fn a_group_redefined_so_that_it_is_no_longer_down_ends_as_reconfigured() {
    use crate::config::diff::Diff;
    let dir = Path::new("/x");
    let old = config(
        &[("lan", None, DownWhen::Any)],
        &[("a", "lan"), ("b", "lan")],
        dir,
    );
    let mut d = Detector::new(&old);
    let mut stream = seq(0, 0.0, "----");
    stream.extend(seq(1, 0.0, "++++"));
    assert_eq!(started(&run(&mut d, &stream)).len(), 1);
    // `a` is removed: with `b` alone, lan is up.
    let new = config(&[("lan", None, DownWhen::Any)], &[("b", "lan")], dir);
    let ev = d.reload(&new, &Diff::between(&old, &new), at(4.5));
    let e = ended(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].end_reason, Some(EndReason::Reconfigured));
    assert_eq!(d.group_state(0).unwrap().0, State::Up);
}

/// Like [`seq`], with `x` an interference failure (sni_blocked of
/// `blocked.example`), `-` an ordinary one (a timeout).
fn signs(d: &mut Detector, t: usize, from: f64, pattern: &str) -> Vec<Event> {
    let sign = Sign {
        check: crate::interference::Check::SniBlocked,
        name: "blocked.example",
    };
    pattern
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let s = from + i as f64;
            d.observe_sign(
                t,
                wall(s),
                Duration::from_secs_f64(s),
                c == '+',
                (c == 'x').then_some(sign),
            )
        })
        .collect()
}

#[test]
fn failures_mostly_interference_make_the_cause_interference_with_a_summary() {
    let mut d = single();
    let ev = signs(&mut d, 0, 0.0, "++xx-x");
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].cause, "interference");
    let sum = s[0].interference.as_deref().unwrap();
    assert_eq!(sum.checks, vec!["sni_blocked"]);
    assert_eq!(sum.targets, vec!["a"]);
    assert_eq!(sum.names, vec!["blocked.example"]);
    assert_eq!(
        (sum.failures, sum.of_failures),
        (2, 3),
        "the streak that made it down"
    );
    // Later failures of the period are counted; the cause stays.
    let ev = signs(&mut d, 0, 6.0, "x--++");
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].cause, "interference");
    let sum = e[0].interference.as_deref().unwrap();
    assert_eq!(
        (sum.failures, sum.of_failures),
        (4, 7),
        "over the whole period"
    );
}

#[test]
fn a_link_down_outage_never_becomes_interference() {
    // Timeouts and unreachable failures only.
    let mut d = single();
    let ev = signs(&mut d, 0, 0.0, "++---");
    let s = started(&ev);
    assert_eq!(s[0].cause, "internet");
    assert!(s[0].interference.is_none());
    let ev = signs(&mut d, 0, 5.0, "++");
    let e = ended(&ev);
    assert!(e[0].interference.is_none());

    // Signs before the link went down are outvoted by its failures.
    let mut d = single();
    let ev = signs(&mut d, 0, 0.0, "+x+x+x-");
    assert!(started(&ev).is_empty());
    let ev = signs(&mut d, 0, 7.0, "--");
    let s = started(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].cause, "internet", "half or less is not interference");
    assert!(s[0].interference.is_none());

    // The LAN is down: every group's outage is the LAN's, whatever the
    // downstream target's failures carried.
    let mut d = Detector::new(&chain(Path::new("/nonexistent")));
    let mut ev = Vec::new();
    for i in 0..4 {
        let s = i as f64;
        ev.extend(d.observe(0, wall(s), Duration::from_secs_f64(s), false));
        ev.extend(d.observe(1, wall(s), Duration::from_secs_f64(s), false));
        ev.extend(signs(&mut d, 2, s, "x"));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 3, "{ev:?}");
    for o in s {
        assert_eq!(o.cause, "lan", "{}", o.group);
        assert!(o.interference.is_none());
    }
}

#[test]
fn an_adopted_interference_outage_keeps_its_summary_to_its_end() {
    let mut d = single();
    let summary = InterferenceSummary {
        checks: vec!["blockpage".into()],
        targets: vec!["a".into()],
        names: vec!["x.example".into()],
        failures: 5,
        of_failures: 5,
    };
    assert!(d.adopt(
        "internet",
        Adopted {
            id: "1-internet".into(),
            cause: "interference".into(),
            start: wall(-100.0),
            start_observed: true,
            targets: vec!["a".into()],
            gaps: vec![],
            last_seen: wall(-50.0),
            interference: Some(Box::new(summary)),
        }
    ));
    let ev = signs(&mut d, 0, 0.0, "xxxx++");
    let e = ended(&ev);
    assert_eq!(e.len(), 1);
    let sum = e[0].interference.as_deref().unwrap();
    assert_eq!(sum.checks, vec!["blockpage", "sni_blocked"], "sorted");
    assert_eq!(sum.names, vec!["blocked.example", "x.example"]);
    assert_eq!(
        (sum.failures, sum.of_failures),
        (9, 9),
        "the journaled 5 and this run's 4"
    );
}
