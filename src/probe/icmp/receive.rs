//! The receive task of one socket: drains it, matches replies to requests,
//! completes them, and times out the requests nobody answered.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::socket::{IcmpMode, recv_one, rtt};
use super::table::{Pending, Shared, lock};
use super::wire::{Answer, classify_icmp, decode};
use crate::probe::{Completion, Info, Observation, Outcome, Phase, Phases, ProbeError, Reason};

/// Packets read per wake-up before other tasks get a turn.
const RECV_BATCH: usize = 256;

/// Least time between two sweeps for expired requests: one wake-up per
/// request deadline (every 0.1 ms at 10 000 probes a second) cost more than
/// the sweep itself. A timeout is reported at most this much after its deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// Drains the socket, matches replies to requests, and times out requests
/// at their deadlines. Runs until the family is dropped.
pub(super) async fn receive_loop(shared: Arc<Shared>) {
    let raw_v4 = !shared.v6 && shared.mode == IcmpMode::Raw;
    let mut buf = vec![0u8; 65_536];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut done: Vec<(Completion, Observation)> = Vec::new();
    let mut expired: Vec<(IpAddr, Pending)> = Vec::new();
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    let mut swept = Instant::now();
    loop {
        let next = lock(&shared.table)
            .deadlines
            .peek()
            .map(|Reverse((d, ..))| (*d).max(swept + SWEEP_EVERY));
        if next != armed {
            if let Some(d) = next {
                sleep.as_mut().reset(d);
            }
            armed = next;
        }
        tokio::select! {
            ready = shared.sock.readable() => match ready {
                Ok(mut guard) => {
                    for _ in 0..RECV_BATCH {
                        match guard.try_io(|s| recv_one(s.get_ref(), &mut buf, &mut cmsg)) {
                            Ok(Ok(r)) => {
                                let now = Instant::now();
                                let Some(from) = r.from else { continue };
                                let Some(packet) = buf.get(..r.len) else { continue };
                                let Some(answer) = decode(packet, from, raw_v4) else { continue };
                                if let Some(d) = deliver(&shared, answer, from, now, r.wall) {
                                    done.push(d);
                                }
                            }
                            Ok(Err(e)) => {
                                debug!(error = %e, "failed to receive from the ICMP socket");
                                break;
                            }
                            Err(_would_block) => break,
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "ICMP socket failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                swept = Instant::now();
                sweep(&shared, swept, &mut expired);
                for (ip, p) in expired.drain(..) {
                    done.push((p.waiter.done, observed(Outcome::Timeout { phase: None }, ip)));
                }
            }
            () = shared.wake.notified() => {}
        }
        for (completion, observation) in done.drain(..) {
            completion.complete(observation).await;
        }
    }
}

/// An observation of a probe to `ip`.
pub(super) fn observed(outcome: Outcome, ip: IpAddr) -> Observation {
    let info = Info {
        peer: Some(ip),
        ..Info::default()
    };
    Observation::with_info(outcome, info)
}

/// Removes the requests whose deadline is at or before `now` into `out`.
fn sweep(shared: &Shared, now: Instant, out: &mut Vec<(IpAddr, Pending)>) {
    let mut table = lock(&shared.table);
    while let Some(&Reverse((deadline, token, ip, seq))) = table.deadlines.peek() {
        if deadline > now {
            break;
        }
        table.deadlines.pop();
        if let MapEntry::Occupied(o) = table.by_key.entry((ip, seq))
            && o.get().token == token
        {
            out.push((ip, o.remove()));
        }
    }
}

/// Takes the request an answer belongs to out of the table; returns its
/// completion and observation.
fn deliver(
    shared: &Shared,
    answer: Answer,
    from: IpAddr,
    now: Instant,
    rx_wall: Option<Duration>,
) -> Option<(Completion, Observation)> {
    let pending = {
        let mut table = lock(&shared.table);
        match table.by_key.entry((answer.dest, answer.seq)) {
            MapEntry::Occupied(o)
                if shared.mode == IcmpMode::Dgram || o.get().ident == answer.ident =>
            {
                o.remove()
            }
            _ => return None,
        }
    };
    let ip = answer.dest;
    let outcome = match answer.error {
        None => {
            let d = rtt(pending.sent, pending.sent_wall, now, rx_wall);
            if d >= pending.timeout {
                Outcome::Timeout { phase: None }
            } else {
                success(d, pending.waiter.resolved)
            }
        }
        Some((ty, code)) => {
            let what = classify_icmp(shared.v6, ty, code)
                .err()
                .unwrap_or("echo reply");
            Outcome::Error(ProbeError::new(
                Reason::Unreachable,
                format!("ICMP echo to {ip} answered by {from}: {what} (type {ty}, code {code})"),
            ))
        }
    };
    Some((pending.waiter.done, observed(outcome, ip)))
}

/// A successful echo: the RTT, and the `resolve` phase when there was one
/// (a literal address has none).
fn success(rtt: Duration, resolved: Option<Duration>) -> Outcome {
    let mut phases = Phases::default();
    if let Some(d) = resolved {
        phases.set(Phase::Resolve, d);
    }
    Outcome::Success {
        duration: rtt,
        phases,
    }
}
