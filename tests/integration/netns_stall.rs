//! The real binary stopped with SIGSTOP (what a VM pause, a laptop suspend or
//! a swap storm looks like) while a fault begins or ends: the stall is a gap
//! in the journal, the edge that fell inside it is marked unobserved and
//! bounded by it, and `linkwatch report` does not count it as monitored.
//!
//! The two scenarios build their own fake internets and run in parallel
//! (about 30 s each).

use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::daemon::{BIN, sample};
use crate::harness::fakenet::{FakeNet, Hop, Outage, Params, Watcher, ms_between};

/// How long the daemon is stopped.
const STALL: Duration = Duration::from_secs(18);
/// When, inside the stall, the fault begins or ends.
const INTO: Duration = Duration::from_secs(5);
const NOTICE: Duration = Duration::from_secs(8);
/// The groups behind the far link.
const AFFECTED: [&str; 2] = ["internet", "dns"];

/// The daemon's pid (`ip netns exec` execs it in place).
fn pid(w: &Watcher) -> u32 {
    let pid = w
        .daemon
        .as_ref()
        .and_then(|d| d.child.as_ref())
        .expect("no daemon running")
        .id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "linkwatch", "pid {pid} is not the daemon");
    pid
}

/// Sends `signal` (`-STOP`, `-CONT`) to the daemon; returns when it was sent.
fn signal(w: &Watcher, signal: &str) -> Timestamp {
    let status = Command::new("kill")
        .args([signal, &pid(w).to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} failed");
    Timestamp::now()
}

/// The journal's `stall` events.
fn stalls(w: &Watcher) -> Vec<Value> {
    std::fs::read_to_string(w.data.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "stall")
        .collect()
}

fn ts(v: &Value) -> Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

/// Checks the one stall of the journal against the SIGSTOP/SIGCONT instants,
/// the stall metrics, and that `linkwatch report` leaves it out of coverage.
fn check_stall(w: &Watcher, metrics: &str, stopped: Timestamp, resumed: Timestamp) {
    let st = stalls(w);
    assert_eq!(st.len(), 1, "{st:#?}\n{}", w.log());
    assert_eq!(st[0]["cause"], "process_stopped", "{st:#?}");
    let (from, to) = (ts(&st[0]["from"]), ts(&st[0]["to"]));
    // The tick runs every 250 ms: the last one before the stop is at most
    // that (plus scheduling) before it; the first after is right after SIGCONT.
    assert!(
        (0.0..=600.0).contains(&ms_between(stopped, from)),
        "stall from {from}, stopped at {stopped}"
    );
    assert!(
        (-50.0..=1000.0).contains(&ms_between(to, resumed)),
        "stall to {to}, resumed at {resumed}"
    );
    let stall_s = STALL.as_secs_f64();
    let seconds = st[0]["seconds"].as_f64().unwrap();
    assert!((seconds - stall_s).abs() < 1.5, "{st:#?}");
    assert_eq!(
        sample(
            metrics,
            "linkwatch_stalls_total",
            &[("cause", "process_stopped")]
        ),
        Some(1.0),
        "{metrics}"
    );
    let stalled = sample(metrics, "linkwatch_stalled_seconds_total", &[]).unwrap();
    assert!((stalled - seconds).abs() < 0.01, "{stalled} vs {seconds}");
    let voided = sample(metrics, "linkwatch_probes_voided_total", &[]).unwrap();
    eprintln!(
        "STALL {from} .. {to} ({seconds:.1} s), stopped {:+.0} ms, resumed {:+.0} ms, {voided} probe(s) voided",
        ms_between(from, stopped),
        ms_between(to, resumed)
    );

    let out = Command::new(BIN)
        .args(["report", "--format", "json", "--since", "10m", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["stalls"], 1, "{r:#}");
    let reported = r["stalled_seconds"].as_f64().unwrap();
    assert!((reported - stall_s).abs() < 1.5, "{r:#}");
    let unmonitored: Vec<(Timestamp, Timestamp)> = r["unmonitored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (ts(&p[0]), ts(&p[1])))
        .collect();
    assert!(
        unmonitored.contains(&(from, to)),
        "the stall is not listed as unmonitored: {r:#}"
    );
}

fn of_group<'a>(outages: &'a [Outage], group: &str) -> &'a Outage {
    let of: Vec<&Outage> = outages.iter().filter(|o| o.group == group).collect();
    assert_eq!(of.len(), 1, "{outages:#?}");
    of[0]
}

/// The far link fails, the daemon is stopped, the link is repaired 5 s into
/// the stall: each outage ends unobserved at the stall's start, the stall in
/// its gaps (the last one, which holds the true end).
#[test]
fn outage_ending_during_a_sigstop_has_an_unobserved_end_bounded_by_the_stall() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    let p = w.params;
    let injected = net.break_link(Hop::Far);
    w.wait_open(&AFFECTED, NOTICE);
    std::thread::sleep(Duration::from_secs(1));
    let stopped = signal(&w, "-STOP");
    std::thread::sleep(INTO);
    let repaired = net.repair(Hop::Far);
    std::thread::sleep(STALL - INTO);
    let resumed = signal(&w, "-CONT");
    w.wait_all_up(NOTICE);
    let api = w.wait_all_closed(NOTICE);
    let metrics = w.api_text("/metrics");
    w.stop();
    let cli = w.cli_outages();
    assert_eq!(api, cli, "the API and the CLI disagree");
    assert_eq!(cli.len(), AFFECTED.len(), "{cli:#?}");
    let tol = p.tolerance().as_secs_f64() * 1e3;
    for g in AFFECTED {
        let o = of_group(&cli, g);
        assert_eq!(o.cause, "internet", "{o:#?}");
        assert_eq!(o.start_observed, Some(true), "{o:#?}");
        assert!(ms_between(o.start, injected).abs() <= tol, "{o:#?}");
        assert_eq!(o.end_observed, Some(false), "nobody saw it end: {o:#?}");
        let end = o.end.unwrap();
        // The last moment seen down: the stall's start, or the last failure
        // just before it.
        let before_stop = ms_between(stopped, end);
        assert!(
            (-50.0..=p.interval.as_secs_f64() * 1e3 + 600.0).contains(&before_stop),
            "end {end} is {before_stop:.0} ms before the stop at {stopped}: {o:#?}"
        );
        let (from, to) = *o.gaps.last().unwrap();
        assert_eq!(from, end, "the end lies in the last gap: {o:#?}");
        // (`resumed` is taken when `kill -CONT` returns, when the daemon
        // may already have started a probe.)
        assert!(
            ms_between(to, resumed) >= -100.0 && from <= repaired,
            "gap {from}..{to} does not hold the repair at {repaired} or reach the resume at {resumed}: {o:#?}"
        );
        assert_eq!(o.gaps.len(), 1, "{o:#?}");
        eprintln!(
            "SIGSTOP-END {g:<9} recorded {:.1} s (true {:.1} s), end {before_stop:+.0} ms before the stop, gap {:.1} s",
            o.duration_seconds,
            repaired.duration_since(injected).as_secs_f64(),
            to.duration_since(from).as_secs_f64()
        );
    }
    check_stall(&w, &metrics, stopped, resumed);
    w.verify();
}

/// The daemon is stopped, the far link fails 5 s into the stall and is
/// repaired after the resume: each outage starts unobserved at the stall's
/// start (the earliest it could have begun), its duration within the stall's
/// bound of the true one.
#[test]
fn outage_starting_during_a_sigstop_has_an_unobserved_start_at_the_stall() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    let p = w.params;
    w.wait_all_up(NOTICE);
    std::thread::sleep(Duration::from_secs(1));
    let stopped = signal(&w, "-STOP");
    std::thread::sleep(INTO);
    let injected = net.break_link(Hop::Far);
    std::thread::sleep(STALL - INTO);
    let resumed = signal(&w, "-CONT");
    w.wait_open(&AFFECTED, NOTICE);
    std::thread::sleep(Duration::from_secs(1));
    let repaired = net.repair(Hop::Far);
    w.wait_all_up(NOTICE);
    let api = w.wait_all_closed(NOTICE);
    let metrics = w.api_text("/metrics");
    w.stop();
    let cli = w.cli_outages();
    assert_eq!(api, cli, "the API and the CLI disagree");
    assert_eq!(cli.len(), AFFECTED.len(), "{cli:#?}");
    let tol = p.tolerance().as_secs_f64() * 1e3;
    for g in AFFECTED {
        let o = of_group(&cli, g);
        assert_eq!(o.cause, "internet", "{o:#?}");
        assert_eq!(o.start_observed, Some(false), "nobody saw it start: {o:#?}");
        let before_stop = ms_between(stopped, o.start);
        assert!(
            (-50.0..=p.interval.as_secs_f64() * 1e3 + 600.0).contains(&before_stop),
            "start {} is {before_stop:.0} ms before the stop at {stopped}: {o:#?}",
            o.start
        );
        assert_eq!(o.gaps.len(), 1, "{o:#?}");
        let (from, to) = o.gaps[0];
        assert_eq!(from, o.start, "the start lies in the first gap: {o:#?}");
        assert!(
            ms_between(to, resumed) >= -100.0 && from <= injected,
            "{o:#?}"
        );
        assert_eq!(o.end_observed, Some(true), "{o:#?}");
        let end = o.end.unwrap();
        assert!(ms_between(end, repaired).abs() <= tol, "{o:#?}");
        // Longer than the true outage by at most the part of the stall before
        // the fault, give or take a probe.
        let truth = repaired.duration_since(injected).as_secs_f64();
        let over = o.duration_seconds - truth;
        let bound = injected.duration_since(stopped).as_secs_f64() + tol / 1e3 + 0.6;
        assert!(
            over >= -tol / 1e3 && over <= bound,
            "recorded {:.1} s, true {truth:.1} s: {o:#?}",
            o.duration_seconds
        );
        eprintln!(
            "SIGSTOP-START {g:<9} recorded {:.1} s (true {truth:.1} s), start {before_stop:+.0} ms before the stop",
            o.duration_seconds
        );
    }
    check_stall(&w, &metrics, stopped, resumed);
    w.verify();
}
