//! The shared figures over crafted journals: the page, the report and the
//! API all read these numbers, so they are checked against the journal here.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
use crate::journal::{
    DaemonStart, DaemonStop, DurationClock, OutageEnded, OutageStarted, StallCause, Stalled,
};

pub(crate) fn t0() -> Timestamp {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

pub(crate) fn at(s: f64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs_f64(s)).unwrap()
}

pub(crate) struct J(JournalWriter);

impl J {
    pub(crate) fn new(dir: &Path) -> Self {
        let counters = JournalCounters {
            writes: prometheus::IntCounter::new("w", "w").unwrap(),
            errors: prometheus::IntCounter::new("e", "e").unwrap(),
        };
        let tail = journal::read(dir).unwrap().tail;
        J(JournalWriter::new(
            Box::new(FileSink::open(dir, false).unwrap()),
            &tail,
            counters,
        ))
    }

    pub(crate) fn start(&mut self, s: f64) {
        self.0
            .append(
                at(s),
                &Entry::DaemonStart(DaemonStart {
                    version: "test".into(),
                    config_digest: "d".into(),
                    config_source: "<test>".into(),
                    pid: 1,
                    clock_synchronized: Some(true),
                    clock_check: "test".into(),
                    previous_run_alive_until: None,
                    previous_run_clean: None,
                    torn_line: None,
                    previous_head: None,
                    site: None,
                    plan: None,
                    throughput_targets: Vec::new(),
                }),
            )
            .unwrap();
    }

    pub(crate) fn stop(&mut self, s: f64) {
        self.0
            .append(
                at(s),
                &Entry::DaemonStop(DaemonStop {
                    open_outages: vec![],
                    open_degradations: vec![],
                }),
            )
            .unwrap();
    }

    pub(crate) fn outage_start(&mut self, group: &str, s: f64) -> String {
        let id = format!("{}-{group}", at(s).as_millisecond());
        self.0
            .append(
                at(s),
                &Entry::OutageStart(OutageStarted {
                    interference: None,
                    id: id.clone(),
                    group: group.into(),
                    cause: group.into(),
                    start: at(s),
                    start_observed: true,
                    targets: vec![format!("{group}-t")],
                    gaps: vec![],
                }),
            )
            .unwrap();
        id
    }

    pub(crate) fn outage_end(&mut self, id: &str, group: &str, s: f64, e: f64) {
        self.0
            .append(
                at(e),
                &Entry::OutageEnd(OutageEnded {
                    interference: None,
                    id: id.into(),
                    group: group.into(),
                    cause: group.into(),
                    start: at(s),
                    start_observed: true,
                    end: at(e),
                    duration_seconds: e - s,
                    duration_clock: DurationClock::Monotonic,
                    end_observed: true,
                    targets: vec![format!("{group}-t")],
                    gaps: vec![],
                    end_reason: None,
                }),
            )
            .unwrap();
    }

    pub(crate) fn stall(&mut self, from: f64, to: f64) {
        self.0
            .append(
                at(to),
                &Entry::Stall(Stalled {
                    from: at(from),
                    to: at(to),
                    cause: StallCause::ProcessStopped,
                    seconds: to - from,
                }),
            )
            .unwrap();
    }
}

/// The measured case: a router never reachable (lan), 45.8 s of isp down
/// in 213 s, a group without outages; one run, stopped.
pub(crate) fn measured(dir: &Path) {
    let mut j = J::new(dir);
    j.start(0.0);
    j.outage_start("lan", 0.4);
    let id = j.outage_start("isp", 100.0);
    j.outage_end(&id, "isp", 100.0, 145.8);
    j.stop(213.0);
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn a_router_never_reachable_is_0_percent_and_isp_is_downtime_over_judged_time() {
    let dir = tempfile::tempdir().unwrap();
    measured(dir.path());
    let h = Ledger::load(dir.path()).unwrap();
    let f = Figures::new(&h, at(1000.0), &Liveness::NotRunning);
    let (since, until) = (at(0.0), at(213.0));

    let lan = f.group("lan", since, until);
    assert!(close(lan.monitored_seconds, 213.0, 1e-6), "{lan:?}");
    // The open outage ends at the run's last sign of life (its stop).
    assert!(close(lan.down_seconds, 212.6, 1e-6), "{lan:?}");
    assert!(close(lan.not_judged_seconds, 0.4, 1e-6), "{lan:?}");
    assert_eq!(lan.availability_percent, Some(0.0));
    assert_eq!(lan.availability_text(), "0.00 %");

    let isp = f.group("isp", since, until);
    assert!(close(isp.down_seconds, 45.8, 1e-6), "{isp:?}");
    let want = 100.0 * (213.0 - 45.8) / 213.0; // 78.497 %
    assert!(
        close(isp.availability_percent.unwrap(), want, 0.01),
        "{isp:?}"
    );
    assert_eq!(isp.availability_text(), "78.49 %");

    let other = f.group("internet", since, until);
    assert_eq!(other.availability_percent, Some(100.0));
    assert_eq!(
        lan.up_seconds.to_bits(),
        0.0f64.to_bits(),
        "never up is exactly 0 s"
    );
    // Always up is exactly 100 % whatever the monitored seconds are.
    for end in [0.123, 5.367, 7.1, 213.0, 86_399.999] {
        let g = f.group("internet", since, at(end));
        assert_eq!(g.availability_percent, Some(100.0), "{end}");
        assert_eq!(g.availability_text(), "100 %", "{end}");
    }
    assert_eq!(other.outages, 0);
    assert_eq!(other.down_seconds.to_bits(), 0.0f64.to_bits(), "not -0.0");

    // A window after the run: nothing monitored, never 100 %.
    let later = f.group("internet", at(300.0), at(400.0));
    assert_eq!(later.availability_percent, None);
    assert_eq!(later.availability_text(), "not monitored");
}

#[test]
fn undecided_groups_are_not_yet_judged_never_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = J::new(dir.path());
    j.start(0.0);
    drop(j);
    let h = Ledger::load(dir.path()).unwrap();
    // A daemon watching: the run reaches now.
    let alive = Liveness::Alive { pid: "1".into() };
    let f = Figures::new(&h, at(600.0), &alive).with_undecided([("wan", None)]);
    let wan = f.group("wan", at(0.0), at(600.0));
    assert!(close(wan.monitored_seconds, 600.0, 1e-6), "{wan:?}");
    assert!(close(wan.not_judged_seconds, 600.0, 1e-6), "{wan:?}");
    assert_eq!(wan.availability_percent, None);
    assert_eq!(wan.availability_text(), "not yet judged");
    // Undecided from 400 s on: judged (up) before.
    let f = Figures::new(&h, at(600.0), &alive).with_undecided([("wan", Some(at(400.0)))]);
    let wan = f.group("wan", at(0.0), at(600.0));
    assert!(close(wan.judged_seconds, 400.0, 1e-6), "{wan:?}");
    assert_eq!(wan.availability_percent, Some(100.0));
}

#[test]
fn zero_successes_over_restarts_and_stalls_stay_at_0_percent() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = J::new(dir.path());
    j.start(0.0);
    let id = j.outage_start("lan", 1.0);
    j.stall(50.0, 80.0);
    j.outage_end(&id, "lan", 1.0, 100.0);
    j.stop(100.0);
    // Not running 100..200; the next run fails from its first probe again.
    j.start(200.0);
    j.outage_start("lan", 203.0);
    j.stop(300.0);
    drop(j);
    let h = Ledger::load(dir.path()).unwrap();
    let f = Figures::new(&h, at(1000.0), &Liveness::NotRunning);
    let lan = f.group("lan", at(0.0), at(300.0));
    assert!(close(lan.monitored_seconds, 170.0, 1e-6), "{lan:?}");
    assert!(close(lan.not_judged_seconds, 4.0, 1e-6), "{lan:?}");
    assert!(close(lan.down_seconds, 166.0, 1e-6), "{lan:?}");
    assert_eq!(lan.availability_percent, Some(0.0));
    assert_eq!(lan.outages, 2);
    // An outage that starts well after the run did is not a first verdict:
    // the time before it counts as judged.
    let dir = tempfile::tempdir().unwrap();
    let mut j = J::new(dir.path());
    j.start(0.0);
    j.outage_start("isp", 120.0);
    j.stop(240.0);
    drop(j);
    let h = Ledger::load(dir.path()).unwrap();
    let f = Figures::new(&h, at(1000.0), &Liveness::NotRunning);
    let isp = f.group("isp", at(0.0), at(240.0));
    assert!(close(isp.not_judged_seconds, 0.0, 1e-9), "{isp:?}");
    assert!(
        close(isp.availability_percent.unwrap(), 50.0, 1e-9),
        "{isp:?}"
    );
}

#[test]
fn span_arithmetic() {
    let s = |a: f64, b: f64| (at(a), at(b));
    assert_eq!(
        union(vec![s(5.0, 9.0), s(0.0, 3.0), s(2.0, 4.0)]),
        vec![s(0.0, 4.0), s(5.0, 9.0)]
    );
    assert_eq!(
        subtract(&[s(0.0, 10.0)], &[s(2.0, 3.0), s(8.0, 12.0)]),
        vec![s(0.0, 2.0), s(3.0, 8.0)]
    );
    assert_eq!(
        intersect(&[s(0.0, 10.0)], &[s(2.0, 3.0), s(8.0, 12.0)]),
        vec![s(2.0, 3.0), s(8.0, 10.0)]
    );
    assert_eq!(total(&[]).to_bits(), 0.0f64.to_bits());
}
