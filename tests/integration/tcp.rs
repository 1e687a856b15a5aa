//! TCP connect probe: loopback listener and closed port, and faults injected
//! between test network namespaces.

use std::time::Duration;

use crate::harness::configs::{config, inner_lines, tcp};
use crate::harness::netns::{Netns, link, require_root};
use linkwatch::config::TargetSpec;
use linkwatch::probe::tcp::TcpProber;
use linkwatch::probe::{Observation, Outcome, Phase, Reason};
use tokio::time::Instant;

async fn probe_once(host: &str, port: u16) -> Observation {
    let cfg = config(vec![tcp(host, port)], Duration::from_secs(1));
    let t = &cfg.targets[0];
    let TargetSpec::Tcp(spec) = &t.spec else {
        unreachable!()
    };
    TcpProber::new()
        .probe(t, spec, Instant::now() + t.timeout)
        .await
}

#[tokio::test]
async fn listener_succeeds_with_connect_phase() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let report = probe_once("127.0.0.1", port).await;
    match &report.outcome {
        Outcome::Success { duration, phases } => {
            assert_eq!(phases.get(Phase::Connect), Some(*duration));
            assert!(*duration < Duration::from_millis(100));
        }
        other => panic!("expected success, got {other:?}"),
    }
    assert_eq!(report.info.peer, Some("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn closed_port_is_connect_refused() {
    // Bound but not listening: the port stays ours (no parallel test can
    // take it, as one could a freed port) and connecting to it is refused.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = holder.local_addr().unwrap().port();
    let report = probe_once("127.0.0.1", port).await;
    drop(holder);
    match &report.outcome {
        Outcome::Error(e) => assert_eq!(e.reason, Reason::ConnectRefused, "{e}"),
        other => panic!("expected refused, got {other:?}"),
    }
}

fn run(ns: &Netns, targets: &[String]) -> Vec<String> {
    let out = ns.run_inner(
        None,
        crate::harness::INNER_PROBE,
        &[
            ("LWT_TARGETS", &targets.join(",")),
            ("LWT_TIMEOUT_MS", "1000"),
        ],
    );
    inner_lines(&out, "probe")
}

const PORT: u16 = 8443;

#[test]
fn far_link_down_turns_success_into_timeout() {
    if !require_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let l = link(&a, &b, 11);
    b.spawn_inner(
        crate::harness::INNER_PROBE,
        &[("LWT_LISTEN", &format!("[::]:{PORT}"))],
    );
    b.wait_listening(PORT);
    let targets = [
        format!("tcp:{}:{PORT}", l.b_v4),
        format!("tcp:[{}]:{PORT}", l.b_v6),
    ];
    let probes = run(&a, &targets);
    assert_eq!(probes.len(), 2);
    assert!(probes.iter().all(|p| p.contains("success")), "{probes:?}");

    b.ip(&["link", "set", &l.b_if, "down"]);
    let probes = run(&a, &targets);
    assert_eq!(probes.len(), 2);
    assert!(
        probes
            .iter()
            .all(|p| p.contains("timeout phase=Some(Connect)")),
        "{probes:?}"
    );
}

#[test]
fn unreachable_is_distinguished_from_timeout_and_refused() {
    if !require_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let l = link(&a, &b, 12);
    // `b` answers for 10.232.12.0/24 with ICMP host unreachable.
    b.sysctl("net.ipv4.ip_forward", "1");
    b.ip(&["route", "add", "unreachable", "10.232.12.0/24"]);
    a.ip(&["route", "add", "10.232.12.0/24", "via", &l.b_v4.to_string()]);
    let targets = [
        "tcp:10.232.12.5:80".to_string(), // ICMP error from b
        "tcp:10.233.0.1:80".to_string(),  // no route in a at all
        format!("tcp:{}:{PORT}", l.b_v4), // nothing listens: RST
    ];
    let probes = run(&a, &targets);
    assert!(probes[0].starts_with("0 unreachable"), "{probes:?}");
    assert!(probes[1].starts_with("1 unreachable"), "{probes:?}");
    assert!(probes[2].starts_with("2 connect_refused"), "{probes:?}");
}
