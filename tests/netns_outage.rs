//! Outages of the real binary in a fake internet with real faults (see
//! `fakenet`): links taken down on their far side, servers killed, random
//! loss, and `kill -9` mid-outage. Each scenario compares the recorded start
//! and end (API and `linkwatch outages --json`) with the instants the test
//! injected and removed the fault, and verifies the journal's hash chain.
//!
//! Each test builds its own namespaces, so they run in parallel. Timing errors
//! are printed as `TIMING` lines (run with `--nocapture` to see them).

#![allow(clippy::unwrap_used, clippy::disallowed_types)]

mod common;
mod fakenet;
mod support;

use std::time::Duration;

use common::netns::require_root;
use fakenet::{FakeNet, GROUPS, Hop, Outage, Params, Timing, Watcher, check_outage, report};
use jiff::Timestamp;

/// The server half, run inside `inet` by `fakenet::Server`.
#[test]
#[ignore = "inner half: started inside a namespace by the outage scenarios"]
fn inner_serve() {
    if common::is_inner() {
        fakenet::serve_main();
    }
}

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
) -> (Vec<Outage>, Vec<Timing>) {
    // Anything still settling (a late, wrongly attributed outage) would show
    // up within a few probe intervals.
    std::thread::sleep(w.params.interval * (w.params.fail_after + 2));
    let api = w.wait_all_closed(NOTICE);
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
    w.verify();
    let events = w.journal_events();
    let count = |e: &str| events.get(e).copied().unwrap_or(0);
    assert_eq!(count("outage_start"), expect.len(), "{events:?}");
    assert_eq!(count("outage_end"), expect.len(), "{events:?}");
    assert_eq!(count("daemon_stop"), 1, "{events:?}");
    (cli, timings)
}

/// Takes a link down on its far side, then repairs it, and checks the
/// outages `expect` (group, cause).
fn link_down_scenario(scenario: &'static str, hop: Hop, expect: &[(&str, &str)]) {
    if !require_root() {
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
    let (_, timings) = finish(scenario, &mut w, expect, injected, removed);
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
    if !require_root() {
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
    let (_, timings) = finish("dns-stop", &mut w, &[("dns", "dns")], injected, removed);
    report(timings);
}
