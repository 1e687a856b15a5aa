//! What the tracer adds to the journal's snapshot record ([`PathEvent`],
//! defined in `crate::journal`): building one from a trace, its log line, and
//! the comparison with the group's baseline.

use jiff::Timestamp;

use crate::config::Host;
pub use crate::journal::{LastHop, PathEvent, PathSummary, When};
use crate::probe::trace::{Trace, TraceProtocol};

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

/// "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6
/// hops": a snapshot against the group's last baseline before it.
pub fn compare(snapshot: &PathEvent, baseline: Option<&PathEvent>) -> String {
    let now = snapshot.describe();
    match baseline {
        Some(b) => format!("{now}; the baseline {}", b.describe()),
        None => format!("{now}; no baseline recorded before it"),
    }
}
