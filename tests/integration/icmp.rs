//! ICMP probe: loopback, many targets on one socket, privileges, and faults
//! injected between test network namespaces.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::configs::{config, icmp, inner_lines};
use crate::harness::netns::{Netns, link, require_root};
use linkwatch::config::Config;
use linkwatch::probe::icmp::{FIX_SYSCTL, IcmpProber};
use linkwatch::probe::{Observation, Outcome, Phase, Request, seam};
use tokio::time::Instant;

/// Opens the prober on the host, or skips (panics when `CI=true`) when the
/// host grants neither unprivileged nor raw ICMP.
fn prober(cfg: &Config) -> Option<Arc<IcmpProber>> {
    match IcmpProber::new(cfg) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{e}"),
        Err(e) => {
            eprintln!("SKIPPED: no ICMP socket on this host: {e}");
            None
        }
    }
}

async fn probe(p: &Arc<IcmpProber>, cfg: &Arc<Config>, i: usize) -> Observation {
    let deadline = Instant::now() + cfg.targets[i].timeout;
    seam::observe(p, Request::new(cfg.clone(), i, deadline).unwrap()).await
}

fn assert_plausible(report: &Observation) {
    match &report.outcome {
        Outcome::Success { duration, .. } => {
            assert!(*duration > Duration::ZERO, "{report:?}");
            assert!(*duration < Duration::from_millis(100), "{report:?}");
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_v4_v6_and_name_succeed_with_plausible_rtt() {
    let cfg = Arc::new(config(
        vec![icmp("127.0.0.1"), icmp("::1"), icmp("localhost")],
        Duration::from_secs(1),
    ));
    let Some(p) = prober(&cfg) else { return };
    assert!(p.mode_v6().is_some(), "IPv6 ICMP unavailable on loopback");
    for round in 0..20 {
        for i in 0..3 {
            let report = probe(&p, &cfg, i).await;
            assert_plausible(&report);
            let peer = report.info.peer.expect("peer set");
            assert!(peer.is_loopback(), "{peer}");
            if round == 0 && i < 2 {
                assert_eq!(peer.to_string(), ["127.0.0.1", "::1"][i]);
            }
            // Only a name has a resolve phase; a literal address has none.
            let resolved = match &report.outcome {
                Outcome::Success { phases, .. } => phases.get(Phase::Resolve),
                _ => None,
            };
            assert_eq!(resolved.is_some(), i == 2, "target {i}: {report:?}");
        }
    }
}

#[tokio::test]
async fn two_hundred_targets_and_same_host_pairs_share_one_socket() {
    let mut specs: Vec<_> = (1..=200).map(|x| icmp(&format!("127.0.0.{x}"))).collect();
    // Four targets on one host and two on ::1: their requests must not collide.
    specs.extend([icmp("127.0.0.1"), icmp("127.0.0.1"), icmp("127.0.0.1")]);
    specs.extend([icmp("::1"), icmp("::1")]);
    let cfg = Arc::new(config(specs, Duration::from_secs(2)));
    let Some(p) = prober(&cfg) else { return };
    for _ in 0..3 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..cfg.targets.len() {
            let (p, cfg) = (p.clone(), cfg.clone());
            set.spawn(async move { (i, probe(&p, &cfg, i).await) });
        }
        for (i, report) in set.join_all().await {
            assert!(report.outcome.is_success(), "target {i}: {report:?}");
        }
    }
}

/// Output lines of one inner run.
fn run(
    ns: &Netns,
    user: Option<(&str, &str)>,
    targets: &[String],
    rounds: usize,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let targets = targets.join(",");
    let rounds = rounds.to_string();
    let out = ns.run_inner(
        user,
        crate::harness::INNER_PROBE,
        &[
            ("LWT_TARGETS", &targets),
            ("LWT_TIMEOUT_MS", "1000"),
            ("LWT_ROUNDS", &rounds),
        ],
    );
    (
        inner_lines(&out, "setup-error"),
        inner_lines(&out, "mode"),
        inner_lines(&out, "probe"),
    )
}

const NOBODY: Option<(&str, &str)> = Some(("nobody", "nogroup"));

#[test]
fn privileges_closed_range_fails_with_both_fixes_open_range_is_dgram_root_is_raw() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let targets = ["icmp:127.0.0.1".to_string(), "icmp:::1".to_string()];

    ns.sysctl("net.ipv4.ping_group_range", "1 0");
    let (errors, _, probes) = run(&ns, NOBODY, &targets, 1);
    assert_eq!(
        errors.len(),
        1,
        "expected a setup error, probes: {probes:?}"
    );
    let e = &errors[0];
    assert!(e.contains(FIX_SYSCTL), "{e}");
    assert!(e.contains("sudo setcap cap_net_raw+ep /"), "{e}");
    assert!(
        e.contains("os error 13"),
        "DGRAM error (EACCES) missing: {e}"
    );
    assert!(e.contains("os error 1)"), "RAW error (EPERM) missing: {e}");

    ns.sysctl("net.ipv4.ping_group_range", "65534 65534");
    let (errors, modes, probes) = run(&ns, NOBODY, &targets, 1);
    assert!(errors.is_empty(), "{errors:?}");
    // One datagram socket per family, no raw socket.
    assert_eq!(
        modes,
        ["v4=dgram v6=dgram surge_v4=SOCK_DGRAM kernel_raw=0 kernel_dgram=2"]
    );
    assert!(probes.iter().all(|l| l.contains("success")), "{probes:?}");

    ns.sysctl("net.ipv4.ping_group_range", "1 0");
    let (errors, modes, probes) = run(&ns, None, &targets, 1);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        modes,
        ["v4=raw v6=raw surge_v4=SOCK_RAW kernel_raw=2 kernel_dgram=0"]
    );
    assert!(probes.iter().all(|l| l.contains("success")), "{probes:?}");
}

#[test]
fn many_targets_in_dgram_mode_do_not_collide() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.ping_group_range", "65534 65534");
    let mut targets: Vec<String> = (1..=200).map(|x| format!("icmp:127.0.0.{x}")).collect();
    // In DGRAM mode only (host, seq) tells requests apart.
    targets.extend(["icmp:127.0.0.1", "icmp:127.0.0.1", "icmp:::1", "icmp:::1"].map(String::from));
    let (errors, modes, probes) = run(&ns, NOBODY, &targets, 3);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(modes[0].starts_with("v4=dgram v6=dgram"), "{modes:?}");
    assert_eq!(probes.len(), 3 * targets.len());
    let failed: Vec<_> = probes.iter().filter(|l| !l.contains("success")).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn far_link_down_turns_success_into_timeout() {
    if !require_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let l = link(&a, &b, 1);
    let targets = [format!("icmp:{}", l.b_v4), format!("icmp:{}", l.b_v6)];
    let (_, _, probes) = run(&a, None, &targets, 1);
    assert!(probes.iter().all(|p| p.contains("success")), "{probes:?}");
    assert!(
        probes[0].contains(&format!("peer={}", l.b_v4)),
        "{probes:?}"
    );

    b.ip(&["link", "set", &l.b_if, "down"]);
    let (_, _, probes) = run(&a, None, &targets, 1);
    assert_eq!(probes.len(), 2);
    assert!(
        probes.iter().all(|p| p.contains("timeout phase=None")),
        "{probes:?}"
    );
}

/// `b` routes 10.232.<n>.0/24 and fd00:232:<n>::/64 to "unreachable" and
/// answers `a`'s packets for them with ICMP errors.
fn unreachable_behind(
    a: &Netns,
    b: &Netns,
    l: &crate::harness::netns::Link,
    n: u8,
) -> (String, String) {
    let (v4, v6) = (format!("10.232.{n}.0/24"), format!("fd00:232:{n}::/64"));
    b.sysctl("net.ipv4.ip_forward", "1");
    b.sysctl("net.ipv6.conf.all.forwarding", "1");
    b.ip(&["route", "add", "unreachable", &v4]);
    b.ip(&["-6", "route", "add", "unreachable", &v6]);
    a.ip(&["route", "add", &v4, "via", &l.b_v4.to_string()]);
    a.ip(&["-6", "route", "add", &v6, "via", &l.b_v6.to_string()]);
    (format!("10.232.{n}.5"), format!("fd00:232:{n}::5"))
}

#[test]
fn icmp_errors_are_unreachable_in_raw_mode_and_timeouts_in_dgram_mode() {
    if !require_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let l = link(&a, &b, 2);
    let (v4, v6) = unreachable_behind(&a, &b, &l, 2);
    let targets = [
        format!("icmp:{v4}"),
        format!("icmp:{v6}"),
        "icmp:10.233.0.1".to_string(),
    ];

    // Root in a namespace with a closed range: raw sockets see the errors.
    let (_, modes, probes) = run(&a, None, &targets, 1);
    assert!(modes[0].starts_with("v4=raw"), "{modes:?}");
    assert!(probes[0].starts_with("0 unreachable"), "{probes:?}");
    assert!(
        probes[0].contains("host unreachable (type 3, code 1)"),
        "{probes:?}"
    );
    assert!(probes[1].starts_with("1 unreachable"), "{probes:?}");
    assert!(probes[1].contains("type 1, code"), "{probes:?}");
    // No route at all: the send fails locally.
    assert!(probes[2].starts_with("2 unreachable"), "{probes:?}");
    assert!(probes[2].contains("failed to send ICMP echo"), "{probes:?}");

    // DGRAM sockets do not deliver ICMP errors: the same request times out.
    a.sysctl("net.ipv4.ping_group_range", "65534 65534");
    let (_, modes, probes) = run(&a, NOBODY, &targets[..2], 1);
    assert!(modes[0].starts_with("v4=dgram"), "{modes:?}");
    assert!(probes.iter().all(|p| p.contains("timeout")), "{probes:?}");
}

#[test]
fn firewall_drop_on_output_is_blocked_not_a_privilege_problem() {
    if !require_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let l = link(&a, &b, 3);
    let dst = l.b_v4.to_string();
    a.exec(&[
        "iptables", "-A", "OUTPUT", "-d", &dst, "-p", "icmp", "-j", "DROP",
    ]);
    let (_, _, probes) = run(&a, None, &[format!("icmp:{dst}")], 1);
    assert!(probes[0].starts_with("0 blocked"), "{probes:?}");
    assert!(probes[0].contains("firewall"), "{probes:?}");
    assert!(!probes[0].contains("setcap"), "{probes:?}");
}
