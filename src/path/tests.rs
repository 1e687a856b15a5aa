//! The dispatcher's bounds, the hold, and the snapshots' wording.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::dispatch::{RATE_WINDOW, Request, Slot, State, baseline_routers, due};
use super::event::{LastHop, PathEvent, PathSummary, When, compare};
use crate::config::Host;
use crate::probe::hold::{HOLD_AFTER, ProbeHold};
use crate::probe::trace::{Hop, REPROBE_QUIET, Reprobe, TraceProtocol};

fn slot(group: &str, every: Duration, now: Instant) -> Slot {
    Slot {
        group: group.into(),
        host: Some(Host::Ip("10.0.0.1".parse().unwrap())),
        every,
        protocol: TraceProtocol::Icmp,
        busy: false,
        pending: None,
        in_outage: false,
        next_baseline: now + every,
    }
}

fn state(groups: &[&str], now: Instant) -> State {
    State {
        slots: groups
            .iter()
            .map(|g| slot(g, Duration::from_secs(3600), now))
            .collect(),
        started: VecDeque::new(),
    }
}

fn req(when: When, id: &str) -> Request {
    Request {
        id: Some(id.into()),
        when,
    }
}

#[test]
fn a_flood_starts_no_more_than_the_limit_and_keeps_the_latest_per_group() {
    let now = Instant::now();
    let mut st = state(&["a", "b", "c"], now);
    for s in &mut st.slots {
        s.pending = Some(req(When::Start, "x"));
    }
    let (start, next) = due(&mut st, 2, None, now);
    assert_eq!(start.len(), 2);
    assert_eq!(next, now + RATE_WINDOW);
    // Finished, but the window is full: nothing more starts.
    for s in &mut st.slots {
        s.busy = false;
    }
    let (start, _) = due(&mut st, 2, None, now + Duration::from_secs(59));
    assert!(start.is_empty());
    // The window frees: the waiting group goes.
    let (start, _) = due(&mut st, 2, None, now + Duration::from_secs(60));
    assert_eq!(start.len(), 1);
    assert_eq!(st.slots[start[0].0].group, "c");
}

#[test]
fn one_trace_per_group_in_flight() {
    let now = Instant::now();
    let mut st = state(&["a"], now);
    st.slots[0].pending = Some(req(When::Start, "x"));
    let (start, _) = due(&mut st, 10, None, now);
    assert_eq!(start.len(), 1);
    st.slots[0].pending = Some(req(When::End, "x"));
    let (start, _) = due(&mut st, 10, None, now);
    assert!(start.is_empty(), "the group is busy");
    st.slots[0].busy = false;
    let (start, _) = due(&mut st, 10, None, now);
    assert_eq!(start[0].2.when, When::End);
}

#[test]
fn baselines_come_due_except_during_an_outage_and_go_after_outage_requests() {
    let now = Instant::now();
    let mut st = state(&["a", "b"], now);
    let later = now + Duration::from_secs(3600);
    st.slots[1].in_outage = true;
    let (start, next) = due(&mut st, 1, None, later);
    assert_eq!(start.len(), 1);
    assert_eq!(start[0].2.when, When::Baseline);
    assert_eq!(st.slots[start[0].0].group, "a");
    assert!(next > later);
    // An urgent request is served before a waiting baseline.
    let mut st = state(&["a", "b"], now);
    st.slots[0].pending = Some(Request {
        id: None,
        when: When::Baseline,
    });
    st.slots[1].pending = Some(req(When::Start, "y"));
    let (start, _) = due(&mut st, 1, None, now);
    assert_eq!(start[0].2.when, When::Start);
}

fn event(reached: bool, last: Option<(u8, &str)>, partial: bool) -> PathEvent {
    PathEvent {
        id: None,
        group: "isp".into(),
        when: When::Baseline,
        target: "10.0.0.9".into(),
        at: Timestamp::UNIX_EPOCH,
        dest: Some("10.0.0.9".parse().unwrap()),
        mode: Some("dgram".into()),
        protocol: TraceProtocol::Icmp,
        reached,
        partial,
        duration_ms: 1.0,
        packets: 3,
        last_hop: last.map(|(ttl, a)| LastHop {
            ttl,
            addr: a.parse().unwrap(),
        }),
        hops: Vec::new(),
        error: None,
        reprobe: None,
    }
}

#[test]
fn comparison_wording() {
    let broken = event(false, Some((3, "10.20.0.1")), false);
    let base = event(true, Some((6, "10.0.0.9")), false);
    assert_eq!(
        compare(&broken, Some(&base)),
        "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6 hops"
    );
    assert_eq!(
        compare(&event(false, None, true), None),
        "no hop answered (partial: cut at the time bound); no baseline recorded before it"
    );
}

fn hop(ttl: u8, addr: Option<&str>, unreachable: Option<&str>) -> Hop {
    Hop {
        ttl,
        addr: addr.map(|a| a.parse().unwrap()),
        also: Vec::new(),
        sent: 3,
        received: u32::from(addr.is_some()),
        rtt_ms: Vec::new(),
        unreachable: unreachable.map(str::to_string),
    }
}

#[test]
fn a_silent_reprobed_hop_reads_as_rate_limiting_not_as_the_break() {
    let base = event(true, Some((3, "10.0.0.9")), false);
    let mut e = event(false, Some((1, "192.168.1.1")), false);
    e.hops = vec![hop(1, Some("192.168.1.1"), None), hop(2, None, None)];
    // Not re-probed (no baseline router there): the old words.
    assert_eq!(e.describe(), "stopped after hop 1 (192.168.1.1)");
    assert!(!e.summary().rate_limited);
    e.reprobe = Some(Reprobe {
        ttl: 2,
        sent: 3,
        received: 0,
    });
    assert!(e.rate_limited());
    assert_eq!(
        compare(&e, Some(&base)),
        "no answer beyond hop 1 (192.168.1.1); routers rate-limit their replies; \
         the baseline reaches the target in 3 hops"
    );
    let sum = e.summary();
    assert!(sum.rate_limited);
    assert_eq!(
        sum.short(),
        "no answer beyond hop 1 (192.168.1.1); routers rate-limit their replies"
    );
    let json = serde_json::to_value(&sum).unwrap();
    assert_eq!(json["rate_limited"], true);
    // A summary from before the field reads as not rate-limited.
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("rate_limited");
    let back: PathSummary = serde_json::from_value(old).unwrap();
    assert!(!back.rate_limited);

    // Nothing answered at all, hop 1 re-probed in vain.
    let mut none = event(false, None, false);
    none.reprobe = Some(Reprobe {
        ttl: 1,
        sent: 2,
        received: 0,
    });
    assert_eq!(
        none.describe(),
        "no hop answered; routers rate-limit their replies"
    );
    assert_eq!(
        none.summary().short(),
        "no hop answered; routers rate-limit their replies"
    );

    // The re-probe got the router's unreachable: the path ends there, named.
    let mut got = event(false, Some((2, "10.20.0.1")), false);
    got.hops = vec![
        hop(1, Some("192.168.1.1"), None),
        hop(
            2,
            Some("10.20.0.1"),
            Some("network unreachable (type 3, code 0)"),
        ),
    ];
    got.reprobe = Some(Reprobe {
        ttl: 2,
        sent: 1,
        received: 1,
    });
    assert!(!got.rate_limited());
    assert_eq!(
        got.describe(),
        "stopped after hop 2 (10.20.0.1): network unreachable"
    );
    assert_eq!(got.summary().short(), "stopped after hop 2 (10.20.0.1)");
}

#[test]
fn only_a_baseline_router_is_reprobed_not_the_destination() {
    let mut b = event(true, Some((3, "10.0.0.9")), false);
    b.hops = vec![
        hop(1, Some("192.168.1.1"), None),
        hop(2, None, None),
        hop(3, Some("10.0.0.9"), None),
    ];
    assert_eq!(baseline_routers(&b).collect::<Vec<_>>(), [1]);
    // Not reached: every answer is a router's.
    let mut b = event(false, Some((2, "10.20.0.1")), false);
    b.hops = vec![
        hop(1, Some("192.168.1.1"), None),
        hop(2, Some("10.20.0.1"), None),
    ];
    assert_eq!(baseline_routers(&b).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_hold_names_groups_until_it_passes_and_spaces_reprobes() {
    let now = Instant::now();
    let hold = ProbeHold::default();
    assert!(!hold.holds("internet", now));
    let at = hold.reprobe_at(
        now + Duration::from_secs(2),
        vec!["internet".into(), "dns".into()],
        now,
    );
    assert_eq!(at, now + Duration::from_secs(2));
    assert!(hold.holds("internet", now));
    assert!(hold.holds("dns", now + Duration::from_secs(2)));
    assert!(!hold.holds("lan", now));
    assert_eq!(hold.until(now), Some(at + HOLD_AFTER));
    assert!(!hold.holds("internet", at + HOLD_AFTER));
    // Another trace's re-probe goes a whole quiet spell after this one.
    let other = hold.reprobe_at(now, vec!["isp".into()], now);
    assert_eq!(other, at + REPROBE_QUIET);
    assert!(hold.holds("isp", now) && hold.holds("internet", now));
    // No trace starts under the hold (its requests would spend the
    // budget); the dispatcher looks again when it ends.
    let mut st = state(&["a"], now);
    st.slots[0].pending = Some(req(When::Start, "x"));
    let (start, next) = due(&mut st, 10, hold.until(now), now);
    assert!(start.is_empty());
    assert_eq!(next, other + HOLD_AFTER);
    let (start, _) = due(&mut st, 10, hold.until(next), next);
    assert_eq!(start.len(), 1);
}
