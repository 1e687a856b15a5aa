//! Tests of the shared period lifecycle: adoption, resume with a gap,
//! unobserved ends, time frames, accounting, ids and causes.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::journal::push_gap;
use crate::outage::testutil::wall;

fn at(secs: f64) -> Stamp {
    Stamp {
        wall: truncate_ms(wall(secs)),
        mono: Duration::from_secs_f64(secs),
    }
}

fn gap(from: f64, to: f64) -> Gap {
    Gap {
        from: wall(from),
        to: wall(to),
    }
}

fn carried(last_seen: f64) -> Carried<&'static str> {
    Carried::new(
        "1000-isp".into(),
        "isp".into(),
        wall(1.0),
        vec![gap(5.0, 6.0)],
        wall(last_seen),
        "mine",
    )
}

fn carried_as(id: String) -> Carried<&'static str> {
    Carried { id, ..carried(2.0) }
}

#[test]
fn a_carried_period_resumes_under_its_id_with_the_gap_since_its_last_sign_of_life() {
    let (g, open) = carried(20.0).resume(at(50.0), |x| x.len());
    assert_eq!(g, gap(20.0, 50.0));
    assert_eq!(open.id, "1000-isp");
    assert_eq!(open.start, wall(1.0));
    assert_eq!(open.gaps, vec![gap(5.0, 6.0), gap(20.0, 50.0)]);
    assert_eq!(open.extra, 4);
    assert_eq!(open.start_mono, None);
    // Its frame counts from the moment it was seen again.
    assert_eq!(open.floor(), Duration::from_secs(50));
    assert_eq!(open.wall_at(at(60.0)), wall(60.0));
    let c = open.close(at(70.0), true);
    assert_eq!(
        (c.end, c.clock, c.end_observed),
        (wall(70.0), DurationClock::Wall, true)
    );
    assert_eq!(c.duration_seconds, 69.0);
}

#[test]
fn a_carried_period_seen_again_before_its_last_sign_of_life_has_an_empty_gap() {
    let (g, _) = carried(20.0).resume(at(10.0), |x| x);
    assert_eq!(g, gap(20.0, 20.0));
}

#[test]
fn a_carried_period_never_seen_again_ends_unobserved_at_its_last_sign_of_life() {
    let c = carried(20.0).end_unseen(wall(30.0), false);
    assert_eq!(c.end, wall(20.0));
    assert!(!c.end_observed);
    assert_eq!(c.clock, DurationClock::Wall);
    assert_eq!(c.duration_seconds, 19.0);
    assert_eq!(c.gaps, vec![gap(5.0, 6.0), gap(20.0, 30.0)]);
    assert_eq!(c.extra, "mine");
    // Merged (outages) a touching gap becomes one; plain (slow periods) it is appended.
    let mut touching = carried(20.0);
    touching.gaps = vec![gap(25.0, 40.0)];
    let merged = touching.clone().end_unseen(wall(30.0), true);
    assert_eq!(merged.gaps, vec![gap(20.0, 40.0)]);
    let plain = touching.end_unseen(wall(30.0), false);
    assert_eq!(plain.gaps, vec![gap(25.0, 40.0), gap(20.0, 30.0)]);
    let mut expect = vec![gap(25.0, 40.0)];
    push_gap(&mut expect, gap(20.0, 30.0));
    assert_eq!(merged.gaps, expect);
}

#[test]
fn a_period_started_here_keeps_monotonic_time_across_a_wall_clock_step() {
    let open = Open::new("id".into(), "isp".into(), at(10.0), Vec::new(), ());
    // The wall clock jumped an hour back: the end is still start + mono.
    let stepped = Stamp {
        wall: wall(40.0 - 3600.0),
        mono: Duration::from_secs(40),
    };
    assert_eq!(open.wall_at(stepped), wall(40.0));
    let c = open.close(stepped, true);
    assert_eq!(c.end, wall(40.0));
    assert_eq!(c.duration_seconds, 30.0);
    assert_eq!(c.clock, DurationClock::Monotonic);
    let (common, ()) = c.split();
    assert_eq!(common.id, "id");
}

#[test]
fn accrual_hands_out_time_up_to_the_moment_vouched_for_and_not_over_a_stall() {
    let mut a = Accrual::default();
    assert!(!a.due());
    assert_eq!(a.take(Duration::from_secs(5)), None);
    a.begin(Duration::from_secs(10));
    assert!(a.due());
    // Not yet vouched past the start: nothing.
    assert_eq!(a.take(Duration::from_secs(8)), None);
    assert_eq!(
        a.take(Duration::from_secs(15)),
        Some(Duration::from_secs(5))
    );
    // A stall from 20 to 50: 15..20 is owed, 20..50 never counts.
    a.stall(Duration::from_secs(20), Duration::from_secs(50));
    assert_eq!(
        a.take(Duration::from_secs(55)),
        Some(Duration::from_secs(10))
    );
    a.stop(Duration::from_secs(60));
    assert!(a.due());
    assert_eq!(
        a.take(Duration::from_secs(999)),
        Some(Duration::from_secs(5))
    );
    assert!(!a.due());
}

#[test]
fn adoption_takes_the_id_and_needs_the_group() {
    let mut ids = Ids::default();
    let mut life: Life<&str, (), ()> = Life::default();
    assert!(!adopt(
        &mut ids,
        None::<&mut Life<&str, (), ()>>,
        carried(2.0)
    ));
    assert!(adopt(&mut ids, Some(&mut life), carried(2.0)));
    assert_eq!(life.open_id(), Some("1000-isp"));
    // A new period of the same millisecond and group gets a suffix.
    let ms = wall(1.0).as_millisecond();
    assert!(adopt(
        &mut ids,
        Some(&mut life),
        carried_as(format!("{ms}-isp"))
    ));
    assert_eq!(mint(&mut ids, wall(1.0), "isp", ""), format!("{ms}-isp-2"));
    let slow = format!("{ms}-isp-degraded");
    assert_eq!(mint(&mut ids, wall(1.0), "isp", "-degraded"), slow);
    assert_eq!(
        mint(&mut ids, wall(1.0), "isp", "-degraded"),
        format!("{slow}-2")
    );
}

#[test]
fn phases_hand_out_only_what_they_hold() {
    let mut p: Phase<u8, ()> = Phase::Pending(3);
    assert!(p.take_open().is_none());
    assert!(p.is_pending());
    assert_eq!(p.take_pending(), Some(3));
    assert!(p.is_idle());
    p = Phase::Open(Open::new("x".into(), "g".into(), at(1.0), Vec::new(), ()));
    assert!(p.take_pending().is_none());
    assert_eq!(p.open().map(|o| o.id.as_str()), Some("x"));
    assert!(p.take_open().is_some());
    assert!(p.is_idle());
}

#[test]
fn a_life_remembers_its_last_sixteen_periods_and_its_open_id() {
    let mut life: Life<(), (), ()> = Life::default();
    for i in 0..20u64 {
        life.remember(Duration::from_secs(i), Duration::from_secs(i + 1));
    }
    let recent: Vec<_> = life.recent().map(|(from, _)| from.as_secs()).collect();
    assert_eq!(recent, (4..20).collect::<Vec<_>>());
    assert_eq!(life.open_id(), None);
    life.phase = Phase::Open(Open::new("o".into(), "g".into(), at(1.0), Vec::new(), ()));
    assert_eq!(life.open_id(), Some("o"));
}

#[test]
fn the_cause_is_the_farthest_upstream_group_affected_and_waits_while_unsettled() {
    // 3 needs 2 needs 1 needs 0.
    let needs = [None, Some(0), Some(1), Some(2)];
    let n = needs.len();
    assert_eq!(upstream_first(n, |g| needs[g]), vec![0, 1, 2, 3]);
    let chain =
        |affected: [Option<bool>; 4]| farthest_upstream(3, n, |g| needs[g], |u| affected[u]);
    let (yes, no) = (Some(true), Some(false));
    assert_eq!(chain([no, yes, no, no]), Some(1));
    assert_eq!(chain([yes, yes, no, no]), Some(0));
    assert_eq!(chain([no, no, no, no]), Some(3));
    assert_eq!(chain([None, yes, no, no]), None);
    // A cycle in `needs` ends the walk.
    let looped = [Some(1), Some(0)];
    assert_eq!(
        farthest_upstream(0, 2, |g| looped[g], |_| Some(true)),
        Some(0)
    );
}
