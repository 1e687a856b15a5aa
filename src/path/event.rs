//! The snapshot record (`path` journal line) and its wording: what a
//! snapshot says on its own, against a baseline, and as an outage's summary.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Host;
use crate::probe::trace::{Hop, Reprobe, Trace, TraceProtocol};
use crate::ts_ms;

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

impl PathEvent {
    /// A snapshot of `group` not traced yet: what is known before the trace.
    pub(super) fn new(
        group: &str,
        (id, when): (Option<String>, When),
        target: &Host,
        protocol: TraceProtocol,
        at: Timestamp,
    ) -> Self {
        Self {
            id,
            group: group.to_string(),
            when,
            target: target.to_string(),
            at,
            dest: None,
            mode: None,
            protocol,
            reached: false,
            partial: false,
            duration_ms: 0.0,
            packets: 0,
            last_hop: None,
            hops: Vec::new(),
            error: None,
            reprobe: None,
        }
    }

    /// The snapshot with what the trace found.
    pub(super) fn with_trace(mut self, t: Trace) -> Self {
        self.last_hop = t
            .last_hop()
            .and_then(|h| h.addr.map(|addr| LastHop { ttl: h.ttl, addr }));
        self.dest = Some(t.dest);
        self.mode = Some(t.mode);
        self.protocol = t.protocol;
        self.reached = t.reached;
        self.partial = t.partial;
        self.duration_ms = t.duration_ms;
        self.packets = t.packets;
        self.hops = t.hops;
        self.error = t.error;
        self.reprobe = t.reprobe;
        self
    }

    /// Not reached, and the re-probed hop after the last answer stayed
    /// silent (see [`Trace::rate_limited`]).
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

    /// The log line for a recorded snapshot.
    pub fn emit(&self) {
        tracing::info!(
            id = self.id.as_deref().unwrap_or(""),
            group = %self.group,
            when = self.when.as_str(),
            target = %self.target,
            reached = self.reached,
            partial = self.partial,
            hops = self.hop_count(),
            last_hop = ?self.last_hop.map(|h| h.addr),
            packets = self.packets,
            reprobed = ?self.reprobe.map(|r| r.ttl),
            rate_limited = self.rate_limited(),
            duration_ms = self.duration_ms,
            error = self.error.as_deref().unwrap_or(""),
            "path snapshot recorded"
        );
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

/// "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6
/// hops": a snapshot against the group's last baseline before it.
pub fn compare(snapshot: &PathEvent, baseline: Option<&PathEvent>) -> String {
    let now = snapshot.describe();
    match baseline {
        Some(b) => format!("{now}; the baseline {}", b.describe()),
        None => format!("{now}; no baseline recorded before it"),
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
