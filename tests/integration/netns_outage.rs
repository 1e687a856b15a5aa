//! Outages of the real binary in a fake internet with real faults (see
//! `fakenet`): links taken down on their far side, servers killed, random
//! loss, and `kill -9` mid-outage. Each scenario compares the recorded start
//! and end (API and `linkwatch outages --json`) with the instants the test
//! injected and removed the fault, and verifies the journal's hash chain.
//!
//! Each test builds its own namespaces, so they run in parallel. Timing errors
//! are printed as `TIMING` lines (run with `--nocapture` to see them).

use std::time::Duration;

use crate::harness::fakenet::{
    FakeNet, GROUPS, Hop, Outage, Params, Timing, Watcher, check_outage, report,
};
use jiff::Timestamp;

/// How long to wait for the daemon to notice a fault or a repair.
const NOTICE: Duration = Duration::from_secs(8);

/// Finishes a scenario: checks that no outage appears late, stops the daemon
/// cleanly, and checks the API, the CLI and the journal against `expect`
/// (group, cause). Returns the outages (from the CLI) and their timings.
fn finish(
    scenario: &'static str,
    w: &mut Watcher,
    expect: &[(&str, &str)],
    injected: Timestamp,
    removed: Timestamp,
    restarted: bool,
) -> (Vec<Outage>, Vec<Timing>) {
    // Anything still settling (a late, wrongly attributed outage) would show
    // up within a few probe intervals.
    std::thread::sleep(w.params.interval * (w.params.fail_after + 2));
    let api = w.wait_all_closed(NOTICE);
    let metrics = w.api_text("/metrics");
    w.stop();
    let cli = w.cli_outages();
    assert_eq!(
        api.iter()
            .map(|o| (&o.id, o.start, o.end))
            .collect::<Vec<_>>(),
        cli.iter()
            .map(|o| (&o.id, o.start, o.end))
            .collect::<Vec<_>>(),
        "{scenario}: the API and the CLI disagree"
    );
    let mut timings = Vec::new();
    for group in GROUPS {
        let of_group: Vec<&Outage> = cli.iter().filter(|o| o.group == group).collect();
        match expect.iter().find(|(g, _)| *g == group) {
            Some((_, cause)) => {
                assert_eq!(
                    of_group.len(),
                    1,
                    "{scenario}: expected one {group} outage: {cli:#?}"
                );
                timings.push(check_outage(
                    scenario,
                    of_group[0],
                    cause,
                    injected,
                    removed,
                    &w.params,
                ));
            }
            None => assert!(
                of_group.is_empty(),
                "{scenario}: unexpected {group} outage: {cli:#?}"
            ),
        }
    }
    check_metrics(scenario, &metrics, &cli, restarted, &w.params);
    w.verify();
    let events = w.journal_events();
    let count = |e: &str| events.get(e).copied().unwrap_or(0);
    assert_eq!(count("outage_start"), expect.len(), "{events:?}");
    assert_eq!(count("outage_end"), expect.len(), "{events:?}");
    assert_eq!(count("daemon_stop"), 1, "{events:?}");
    (cli, timings)
}

/// The outage metrics of the last run agree with the recorded outages: none
/// active, one started per outage (unless they began in an earlier run), and
/// the downtime counted within one probe interval of each outage's length.
fn check_metrics(scenario: &str, m: &str, outages: &[Outage], restarted: bool, p: &Params) {
    use crate::harness::daemon::{sample, sum};
    assert_eq!(
        sum(m, "linkwatch_outage_active", &[]),
        0.0,
        "{scenario}: {m}"
    );
    if restarted {
        return;
    }
    assert_eq!(
        sum(m, "linkwatch_outages_total", &[]),
        outages.len() as f64,
        "{scenario}: {m}"
    );
    for o in outages {
        let labels = [("group", o.group.as_str()), ("cause", o.cause.as_str())];
        assert_eq!(
            sample(m, "linkwatch_outages_total", &labels),
            Some(1.0),
            "{scenario}: {m}"
        );
        let down = sample(m, "linkwatch_downtime_seconds_total", &labels[..1]).unwrap();
        assert!(
            (down - o.duration_seconds).abs() <= p.interval.as_secs_f64(),
            "{scenario}: {} downtime {down} s, outage {} s",
            o.group,
            o.duration_seconds
        );
    }
}

/// Takes a link down on its far side, then repairs it, and checks the
/// outages `expect` (group, cause).
fn link_down_scenario(scenario: &'static str, hop: Hop, expect: &[(&str, &str)]) {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    assert!(w.api_outages().is_empty(), "{:#?}", w.api_outages());
    let injected = net.break_link(hop);
    let groups: Vec<&str> = expect.iter().map(|(g, _)| *g).collect();
    w.wait_open(&groups, NOTICE);
    // Hold the fault a little longer: an upstream group going down late must
    // not be missed.
    std::thread::sleep(w.params.interval * 3);
    let removed = net.repair(hop);
    let (_, timings) = finish(scenario, &mut w, expect, injected, removed, false);
    report(timings);
}

#[test]
fn lan_link_down_is_an_outage_of_every_group_caused_by_lan() {
    link_down_scenario(
        "lan-down",
        Hop::Lan,
        &[
            ("lan", "lan"),
            ("isp", "lan"),
            ("internet", "lan"),
            ("dns", "lan"),
        ],
    );
}

#[test]
fn isp_uplink_down_is_caused_by_isp_with_no_lan_outage() {
    link_down_scenario(
        "isp-down",
        Hop::Uplink,
        &[("isp", "isp"), ("internet", "isp"), ("dns", "isp")],
    );
}

#[test]
fn far_link_down_is_an_internet_outage_only() {
    // The DNS servers are in `inet`, behind the same link.
    link_down_scenario(
        "far-down",
        Hop::Far,
        &[("internet", "internet"), ("dns", "internet")],
    );
}

#[test]
fn dns_servers_stopped_is_a_dns_outage_only() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let mut net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    assert!(w.api_outages().is_empty(), "{:#?}", w.api_outages());
    // down_when = "all": the group is down once the last server is gone, and
    // up again as soon as the first one answers.
    let injected = net.stop_dns();
    w.wait_open(&["dns"], NOTICE);
    std::thread::sleep(w.params.interval * 3);
    let removed = net.start_dns();
    let (_, timings) = finish(
        "dns-stop",
        &mut w,
        &[("dns", "dns")],
        injected,
        removed,
        false,
    );
    report(timings);
}

/// Sum of `linkwatch_probes_total` over the groups behind the router, by result.
fn probes_behind_router(metrics: &str, result: Option<&str>) -> f64 {
    ["isp", "internet", "dns"]
        .iter()
        .map(|g| {
            let mut labels = vec![("group", *g)];
            if let Some(r) = result {
                labels.push(("result", r));
            }
            crate::harness::daemon::sum(metrics, "linkwatch_probes_total", &labels)
        })
        .sum()
}

/// 20 % of the packets leaving the router towards the ISP are dropped for 20
/// probe intervals: probes fail, no outage is recorded.
///
/// Why a false outage is extremely unlikely: the rule drops requests only
/// (one direction), so every probe behind the router fails independently with
/// q = 0.2 (ICMP echo, TCP SYN and DNS query are one packet each, and a
/// retransmission would come after the 200 ms timeout), HTTP with at most
/// q = 1 - 0.8² = 0.36 (SYN or request segment). A target goes down after
/// fail_after = 4 consecutive failures. Over at most 25 probes (20 under loss
/// plus margin) a run of 4 occurs with probability 0.0282 for q = 0.2 and
/// 0.224 for q = 0.36 (exact, by a Markov chain over the current run length).
/// A group outage needs every one of its targets down at some point, and the
/// targets are independent: isp (3 × ICMP) and dns (3 servers) each at most
/// 0.0282³ = 2.2e-5, internet at most 0.0282³ × 0.224 = 5e-6; lan is in front
/// of the rule. So below 5e-5 per run. (With fail_after 3 and q = 0.3 a single
/// target would go down in 38 % of runs, hence these numbers.)
#[test]
fn random_packet_loss_is_not_an_outage() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let p = Params {
        fail_after: 4,
        ..Params::FAST
    };
    let mut w = net.watch(p);
    let before = w.api_text("/metrics");
    let rule = [
        "FORWARD",
        "-o",
        net.uplink.b_if.as_str(),
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        "0.2",
        "-j",
        "DROP",
    ];
    let iptables = |op: &str| {
        let mut args = vec!["iptables", "-w", op];
        args.extend(rule);
        net.router.exec(&args);
    };
    iptables("-A");
    std::thread::sleep(p.interval * 20);
    let dropped = net
        .router
        .exec(&["iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n"]);
    iptables("-D");
    let after = w.api_text("/metrics");
    let probes = probes_behind_router(&after, None) - probes_behind_router(&before, None);
    let failed = probes
        - (probes_behind_router(&after, Some("success"))
            - probes_behind_router(&before, Some("success")));
    eprintln!("LOSS: {failed} of {probes} probes behind the router failed under 20 % loss");
    // The loss was real: about 22 % of the probes are expected to fail.
    assert!(probes >= 100.0, "{probes} probes\n{after}");
    assert!(
        failed >= 0.08 * probes && failed <= 0.45 * probes,
        "{failed} of {probes} probes failed\n{dropped}"
    );
    // A target whose streak was cut off by the end of the loss settles now.
    std::thread::sleep(p.interval * (p.fail_after + 2));
    w.wait_all_up(NOTICE);
    assert_eq!(w.api_outages(), Vec::new());
    w.stop();
    assert_eq!(w.cli_outages(), Vec::new());
    w.verify();
    let events = w.journal_events();
    assert!(
        // Path snapshots (baselines) are not outage events.
        events
            .keys()
            .all(|e| e.starts_with("daemon_") || e == "path"),
        "{events:?}"
    );
}

/// `kill -9` while the ISP uplink is down, restart while it is still down:
/// one outage per affected group from the fault to the repair, the same ids
/// before and after, and a gap covering the time no daemon ran.
#[test]
fn kill9_mid_outage_and_restart_while_down_is_one_outage_with_a_gap() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    let p = w.params;
    let expect = [("isp", "isp"), ("internet", "isp"), ("dns", "isp")];
    let affected = expect.map(|(g, _)| g);
    let injected = net.break_link(Hop::Uplink);
    let first = w.wait_open(&affected, NOTICE);
    std::thread::sleep(p.interval * 3);
    let killed = w.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let restarted = Timestamp::now();
    w.start();
    let resumed = w.wait("the outages resumed by the new run", NOTICE, |w| {
        let states = w.group_states();
        (affected.iter().all(|g| states[*g] == "down") && states["lan"] == "up")
            .then(|| w.api_outages())
    });
    for g in affected {
        let before: Vec<&Outage> = first.iter().filter(|o| o.group == g).collect();
        let after: Vec<&Outage> = resumed.iter().filter(|o| o.group == g).collect();
        assert_eq!(before.len(), 1, "{first:#?}");
        assert_eq!(after.len(), 1, "{resumed:#?}");
        assert_eq!(
            after[0].id, before[0].id,
            "{g}: the id changed across the restart"
        );
        assert_eq!(after[0].end, None, "{resumed:#?}");
        assert_eq!(after[0].gaps.len(), 1, "{resumed:#?}");
    }
    std::thread::sleep(p.interval * 3);
    let removed = net.repair(Hop::Uplink);
    let (cli, timings) = finish("kill9", &mut w, &expect, injected, removed, true);
    for o in &cli {
        let was = first.iter().find(|f| f.group == o.group).unwrap();
        assert_eq!(o.id, was.id, "{o:#?}");
        assert_eq!(o.gaps.len(), 1, "{o:#?}");
        let (from, to) = o.gaps[0];
        // The gap covers the time no daemon ran; it begins at the killed run's
        // last sign of life (a journal line or its heartbeat, written every
        // 5 s) and ends at the new run's first failed probe.
        assert!(
            from <= killed && to >= restarted,
            "gap {from}..{to} does not cover {killed}..{restarted}"
        );
        let hb = (linkwatch::outage::HEARTBEAT_INTERVAL + Duration::from_secs(1)).as_secs_f64();
        assert!(
            from >= o.start && crate::harness::fakenet::ms_between(killed, from) <= hb * 1e3,
            "gap starts at {from}, killed at {killed}: {o:#?}"
        );
        assert!(
            crate::harness::fakenet::ms_between(to, restarted) <= 3000.0,
            "gap ends at {to}, restarted at {restarted}: {o:#?}"
        );
        assert_eq!(o.duration_clock, "wall", "{o:#?}");
        let span = o.end.unwrap().duration_since(o.start).as_secs_f64();
        assert!((o.duration_seconds - span).abs() < 0.002, "{o:#?}");
        eprintln!(
            "GAP kill9 {:<9} from {:+.0} ms (vs kill) to {:+.0} ms (vs restart)",
            o.group,
            crate::harness::fakenet::ms_between(from, killed),
            crate::harness::fakenet::ms_between(to, restarted)
        );
    }
    let events = w.journal_events();
    assert_eq!(events.get("daemon_start"), Some(&2), "{events:?}");
    assert_eq!(events.get("outage_resume"), Some(&3), "{events:?}");
    report(timings);
}

/// `kill -9` mid-outage, repaired while no daemon runs: the next run closes
/// each outage at the killed run's last sign of life, marks the end as not
/// observed, records the gap, and starts nothing new.
#[test]
fn kill9_mid_outage_and_repair_while_stopped_closes_unobserved() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch(Params::FAST);
    let p = w.params;
    let affected = ["internet", "dns"];
    let injected = net.break_link(Hop::Far);
    let first = w.wait_open(&affected, NOTICE);
    std::thread::sleep(p.interval * 3);
    let killed = w.kill9();
    net.repair(Hop::Far);
    std::thread::sleep(Duration::from_millis(500));
    let restarted = Timestamp::now();
    w.start();
    w.wait_all_up(NOTICE);
    let api = w.wait_all_closed(NOTICE);
    let metrics = w.api_text("/metrics");
    w.stop();
    let cli = w.cli_outages();
    assert_eq!(api, cli, "the API and the CLI disagree");
    assert_eq!(cli.len(), 2, "{cli:#?}");
    check_metrics("unobserved", &metrics, &cli, true, &p);
    for o in &cli {
        let was = first.iter().find(|f| f.group == o.group).unwrap();
        assert_eq!(o.id, was.id, "{o:#?}");
        assert_eq!(o.cause, "internet", "{o:#?}");
        assert_eq!(o.end_observed, Some(false), "{o:#?}");
        let tol = p.tolerance().as_secs_f64() * 1e3;
        assert!(
            crate::harness::fakenet::ms_between(o.start, injected).abs() <= tol,
            "{o:#?}"
        );
        let end = o.end.unwrap();
        let hb = (linkwatch::outage::HEARTBEAT_INTERVAL + Duration::from_secs(1)).as_secs_f64();
        assert!(
            end <= killed && crate::harness::fakenet::ms_between(killed, end) <= hb * 1e3,
            "end {end} vs killed {killed}: {o:#?}"
        );
        assert_eq!(o.gaps.len(), 1, "{o:#?}");
        let (from, to) = o.gaps[0];
        assert_eq!(from, end, "{o:#?}");
        assert!(to >= restarted, "{o:#?}");
        eprintln!(
            "UNOBSERVED {:<9} end {:+.0} ms (vs kill), gap to {:+.0} ms (vs restart)",
            o.group,
            crate::harness::fakenet::ms_between(end, killed),
            crate::harness::fakenet::ms_between(to, restarted)
        );
    }
    w.verify();
    let events = w.journal_events();
    assert_eq!(events.get("outage_start"), Some(&2), "{events:?}");
    assert_eq!(events.get("outage_end"), Some(&2), "{events:?}");
    assert_eq!(events.get("outage_resume"), None, "{events:?}");
}
