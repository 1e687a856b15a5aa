//! Hop figures, the silence count, the UDP end, the baseline mask.
#![allow(clippy::unwrap_used)]

use tokio::time::Instant;

use super::model::{
    DEFAULT_BOUND, DEFAULT_PROBE_TIMEOUT, Hop, REPROBE_QUIET, REPROBE_ROOM, REPROBE_SPACING,
    REPROBES, Trace, TraceOptions, hop_mask,
};
use super::run::{Request, is_port_unreachable, silent_run};
use crate::config::TraceProtocol;

fn hop(ttl: u8, addr: Option<&str>, sent: u32, rtts: &[f64]) -> Hop {
    Hop {
        ttl,
        addr: addr.map(|a| a.parse().unwrap()),
        also: Vec::new(),
        sent,
        received: rtts.len() as u32,
        rtt_ms: rtts.to_vec(),
        unreachable: None,
    }
}

fn req(ttl: u8, done: bool) -> Request {
    Request {
        ttl,
        sent: Instant::now(),
        sent_wall: None,
        done,
    }
}

#[test]
fn hop_figures() {
    let h = hop(1, Some("10.0.0.1"), 3, &[1.0, 3.0]);
    assert!((h.loss() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(h.best_ms(), Some(1.0));
    assert_eq!(h.worst_ms(), Some(3.0));
    assert_eq!(h.avg_ms(), Some(2.0));
    assert_eq!(hop(2, None, 3, &[]).avg_ms(), None);
    assert_eq!(hop(2, None, 0, &[]).loss(), 0.0);
}

#[test]
fn silence_counts_settled_hops_after_the_last_answer() {
    let hops = vec![
        hop(1, Some("10.0.0.1"), 1, &[1.0]),
        hop(2, None, 1, &[]),
        hop(3, None, 1, &[]),
        hop(4, None, 1, &[]),
    ];
    let all_done = vec![req(1, true), req(2, true), req(3, true), req(4, true)];
    assert_eq!(silent_run(&hops, &all_done), 3);
    // A hop still waiting hides the silence above it from the count.
    let waiting = vec![req(1, true), req(2, false), req(3, true), req(4, true)];
    assert_eq!(silent_run(&hops, &waiting), 2);
    // A silent hop below an answered one does not count.
    let mid = vec![hop(1, None, 1, &[]), hop(2, Some("10.0.0.2"), 1, &[1.0])];
    assert_eq!(silent_run(&mid, &[req(1, true), req(2, true)]), 0);
}

#[test]
fn a_udp_trace_ends_at_port_unreachable_only() {
    assert!(is_port_unreachable(false, 3, 3));
    assert!(is_port_unreachable(true, 1, 4));
    // Host unreachable, admin prohibited: the path ends, not reached.
    assert!(!is_port_unreachable(false, 3, 1));
    assert!(!is_port_unreachable(false, 3, 13));
    assert!(!is_port_unreachable(true, 1, 3));
    // Time exceeded is a hop.
    assert!(!is_port_unreachable(false, 11, 0));
    assert!(!is_port_unreachable(true, 3, 0));
}

#[test]
fn the_baseline_mask_names_the_hops_to_reprobe() {
    let o = TraceOptions {
        baseline_hops: hop_mask([1, 2, 64, 65, 0]),
        ..TraceOptions::default()
    };
    assert!(o.baseline_had(1) && o.baseline_had(2) && o.baseline_had(64));
    assert!(!o.baseline_had(3) && !o.baseline_had(0) && !o.baseline_had(65));
    assert!(!TraceOptions::default().baseline_had(1));
    // Re-probes fit the default bound after a break's 2 s of waiting.
    let room = DEFAULT_BOUND.saturating_sub(DEFAULT_PROBE_TIMEOUT + REPROBE_ROOM);
    assert!(room >= REPROBE_QUIET * 2, "two held re-probes fit");
    assert!(room >= REPROBE_SPACING * u32::from(REPROBES - 1));
}

#[test]
fn last_hop_is_the_farthest_answer() {
    let t = Trace {
        dest: "10.0.0.9".parse().unwrap(),
        mode: "dgram".into(),
        protocol: TraceProtocol::Udp,
        reached: false,
        partial: false,
        duration_ms: 1.0,
        packets: 9,
        hops: vec![
            hop(1, Some("10.0.0.1"), 3, &[1.0]),
            hop(2, Some("10.0.0.2"), 3, &[1.0]),
            hop(3, None, 3, &[]),
        ],
        error: None,
        reprobe: None,
    };
    assert_eq!(t.last_hop().unwrap().ttl, 2);
    assert_eq!(t.addresses().len(), 2);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["hops"][2]["addr"], serde_json::Value::Null);
    assert!(json.get("error").is_none());
    assert!(json.get("reprobe").is_none());
    assert!(!t.rate_limited());
    let back: Trace = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
}
