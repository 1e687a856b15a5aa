//! `path`: one traceroute snapshot, tied to an outage or slow-period id (or
//! a baseline), and what an outage record says about it.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::config::TraceProtocol;
use crate::journal::ts_ms;

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// An outage or degradation period started.
    Start,
    /// It ended.
    End,
    /// The regular snapshot of the normal path.
    Baseline,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Start => "start",
            When::End => "end",
            When::Baseline => "baseline",
        }
    }
}

/// The farthest hop that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastHop {
    pub ttl: u8,
    pub addr: IpAddr,
}

/// `path`: one traceroute snapshot, tied to an outage or degradation id
/// (`null` for a baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathEvent {
    pub id: Option<String>,
    pub group: String,
    pub when: When,
    /// The host traced to, as configured.
    pub target: String,
    /// When the trace started.
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    /// The address traced to; `null` when the host could not be resolved.
    pub dest: Option<IpAddr>,
    /// `dgram` or `raw`; `null` when no socket was opened.
    pub mode: Option<String>,
    /// `icmp` (echo requests) or `udp` (datagrams to ports 33434 and up):
    /// the group's `trace_protocol`. Lines written before UDP traces
    /// existed lack it and were ICMP.
    #[serde(default)]
    pub protocol: TraceProtocol,
    pub reached: bool,
    /// Cut at the time bound.
    pub partial: bool,
    pub duration_ms: f64,
    /// Requests sent (echo requests or UDP datagrams).
    pub packets: u32,
    pub last_hop: Option<LastHop>,
    pub hops: Vec<Hop>,
    /// Why the trace did not run, or stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hop after the last answer probed again because the baseline had
    /// a router there (see the module doc); absent when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprobe: Option<Reprobe>,
}

/// What an outage record says about a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathSummary {
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    pub last_hop: Option<LastHop>,
    /// Hops to the last one that answered (the destination when reached).
    pub hops: u8,
    pub reached: bool,
    pub partial: bool,
    /// The hop after the last answer, a router in the baseline, stayed
    /// silent through its re-probes: most likely rate-limited replies, not
    /// a break after `last_hop`. Absent (false) in records from before.
    #[serde(default)]
    pub rate_limited: bool,
}

/// One TTL of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub ttl: u8,
    /// The first address that answered at this TTL; `null` for a silent hop.
    pub addr: Option<IpAddr>,
    /// Other addresses that answered at this TTL (load-balanced paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<IpAddr>,
    pub sent: u32,
    pub received: u32,
    /// Round-trip times of the answered requests, in milliseconds.
    pub rtt_ms: Vec<f64>,
    /// The ICMP error that ended the path at this hop (`host unreachable`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

impl Hop {
    /// Lost requests over sent ones (0 when none was sent).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            f64::from(self.sent - self.received.min(self.sent)) / f64::from(self.sent)
        }
    }

    fn stat(&self, f: impl Fn(&[f64]) -> f64) -> Option<f64> {
        (!self.rtt_ms.is_empty()).then(|| f(&self.rtt_ms))
    }

    pub fn best_ms(&self) -> Option<f64> {
        self.stat(|r| r.iter().copied().fold(f64::INFINITY, f64::min))
    }

    pub fn worst_ms(&self) -> Option<f64> {
        self.stat(|r| r.iter().copied().fold(0.0, f64::max))
    }

    pub fn avg_ms(&self) -> Option<f64> {
        self.stat(|r| r.iter().sum::<f64>() / r.len() as f64)
    }
}

/// The re-probes of the hop after the last answer (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reprobe {
    /// The TTL probed again.
    pub ttl: u8,
    /// Requests sent in the re-probes.
    pub sent: u32,
    /// Of them, answered.
    pub received: u32,
}

impl PathEvent {
    /// Not reached, and the re-probed hop after the last answer stayed
    /// silent (see `probe::trace::Trace::rate_limited`).
    pub fn rate_limited(&self) -> bool {
        !self.reached && self.reprobe.is_some_and(|r| r.sent > 0 && r.received == 0)
    }

    /// Hops to the farthest answer (0 when nothing answered).
    pub fn hop_count(&self) -> u8 {
        self.last_hop.map_or(0, |h| h.ttl)
    }

    /// Every responding address in TTL order.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.hops.iter().filter_map(|h| h.addr).collect()
    }

    pub fn summary(&self) -> PathSummary {
        PathSummary {
            at: self.at,
            last_hop: self.last_hop,
            hops: self.hop_count(),
            reached: self.reached,
            partial: self.partial,
            rate_limited: self.rate_limited(),
        }
    }

    /// "stopped after hop 3 (10.20.0.1)", "stopped after hop 2 (10.20.0.1):
    /// network unreachable", "reaches the target in 6 hops", "no answer
    /// beyond hop 1 (192.168.1.1); routers rate-limit their replies", …
    pub fn describe(&self) -> String {
        let mut s = match (self.reached, self.last_hop) {
            (true, _) => format!("reaches the target in {}", hops(self.hop_count())),
            (false, last) if self.rate_limited() => rate_limited_text(last),
            (false, Some(h)) => {
                let why = self
                    .hops
                    .iter()
                    .find(|x| x.ttl == h.ttl)
                    .and_then(|x| x.unreachable.as_deref())
                    .map(|u| format!(": {}", u.split(" (type ").next().unwrap_or(u)))
                    .unwrap_or_default();
                format!("stopped after hop {} ({}){why}", h.ttl, h.addr)
            }
            (false, None) => match &self.error {
                Some(e) if self.hops.is_empty() => format!("not traced: {e}"),
                _ => "no hop answered".to_string(),
            },
        };
        if self.partial {
            s.push_str(" (partial: cut at the time bound)");
        }
        s
    }
}

impl PathSummary {
    /// "stopped after hop 2 (10.231.2.1)", "reached in 3 hops", "no hop
    /// answered"; a `*` when the trace was cut at its time bound.
    pub fn short(&self) -> String {
        let s = match (self.reached, self.last_hop) {
            (true, _) => format!("reached in {}", hops(self.hops)),
            (false, last) if self.rate_limited => rate_limited_text(last),
            (false, Some(h)) => format!("stopped after hop {} ({})", h.ttl, h.addr),
            (false, None) => "no hop answered".to_string(),
        };
        if self.partial { s + "*" } else { s }
    }
}

/// "no answer beyond hop 1 (192.168.1.1); routers rate-limit their
/// replies": where answers stopped when the next hop, a router in the
/// baseline, stayed silent through its re-probes.
fn rate_limited_text(last: Option<LastHop>) -> String {
    match last {
        Some(h) => format!(
            "no answer beyond hop {} ({}); routers rate-limit their replies",
            h.ttl, h.addr
        ),
        None => "no hop answered; routers rate-limit their replies".to_string(),
    }
}

/// "1 hop", "3 hops".
fn hops(n: impl Into<u64>) -> String {
    let n = n.into();
    format!("{n} hop{}", if n == 1 { "" } else { "s" })
}
