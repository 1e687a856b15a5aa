//! What a trace is asked (options, defaults, the re-probe spacing) and
//! what it gives (hops, the trace, why it could not run).

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::TraceProtocol;
pub use crate::journal::{Hop, Reprobe};
use crate::probe::icmp::socket::IcmpSetupError;

/// Hops probed at most when nothing else is said (as traceroute and mtr).
pub const DEFAULT_MAX_HOPS: u8 = 30;
/// Requests per hop (as traceroute).
pub const DEFAULT_PROBES_PER_HOP: u8 = 3;
/// The whole trace ends by this; what is unanswered then makes it `partial`.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(10);
/// A request unanswered this long is lost.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Between sending one TTL's requests and the next TTL's.
pub const SPACING: Duration = Duration::from_millis(10);
/// Silent TTLs in a row (after the last answer) that end the trace early:
/// past a broken link nothing more will answer. A single router that sends
/// no time-exceeded is one silent hop and the trace goes on. Also the
/// window: no TTL further than this beyond the farthest answer is sent, so
/// a break costs this many hops' requests and one probe timeout.
pub const GIVE_UP_SILENT: u8 = 5;
/// Longest wait between two reads of the socket while requests are out.
pub(super) const POLL_EVERY: Duration = Duration::from_millis(20);
/// Echo payload bytes (small: routers quote only the first 8 anyway).
pub(super) const PAYLOAD: usize = 32;
/// UDP requests go to this port plus their index (traceroute's 33434 + n).
pub const UDP_BASE_PORT: u16 = 33434;
/// Re-probes of the hop after the last answer, at most (see the module doc).
pub const REPROBES: u8 = 3;
/// Between two requests to the re-probed hop: more than the one second a
/// Linux router's ICMP error budget takes to refill one error.
pub const REPROBE_SPACING: Duration = Duration::from_millis(1100);
/// The quiet a caller that holds its traffic gives each re-probe: an
/// unreachable for a missing route costs a Linux router 2 s of its budget
/// (see the module doc), plus room for a request already in flight when the
/// hold began.
pub const REPROBE_QUIET: Duration = Duration::from_millis(2500);
/// A re-probe is sent only when this much is left before the bound: an
/// answer comes within one round trip (the request is then lost at the
/// bound, the trace is not partial for it).
pub(super) const REPROBE_ROOM: Duration = Duration::from_secs(1);

/// How a trace is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    pub max_hops: u8,
    pub probes_per_hop: u8,
    pub bound: Duration,
    pub probe_timeout: Duration,
    /// What is sent: ICMP echo or UDP.
    pub protocol: TraceProtocol,
    /// TTLs at which the caller's baseline had an answer (bit `ttl - 1`):
    /// the hop after the last answer is re-probed when its bit is set (see
    /// the module doc). 0: never.
    pub baseline_hops: u64,
}

impl TraceOptions {
    /// Did the baseline have an answer at `ttl`?
    pub fn baseline_had(&self, ttl: u8) -> bool {
        (1..=64).contains(&ttl) && self.baseline_hops & (1u64 << (ttl - 1)) != 0
    }
}

/// The [`TraceOptions::baseline_hops`] mask of these TTLs (above 64 ignored).
pub fn hop_mask(ttls: impl IntoIterator<Item = u8>) -> u64 {
    ttls.into_iter()
        .filter(|t| (1..=64).contains(t))
        .fold(0, |m, t| m | 1u64 << (t - 1))
}

/// Told before each re-probe when the trace's requests will go out (see
/// the module doc): whoever else sends through the path may hold until then.
pub type Quiet<'a> = dyn Fn(Instant) -> Instant + Send + Sync + 'a;

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            max_hops: DEFAULT_MAX_HOPS,
            probes_per_hop: DEFAULT_PROBES_PER_HOP,
            bound: DEFAULT_BOUND,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            protocol: TraceProtocol::Icmp,
            baseline_hops: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The address traced to.
    pub dest: IpAddr,
    /// `dgram` or `raw`: the socket used.
    pub mode: String,
    /// `icmp` (echo requests) or `udp` (datagrams to high ports).
    #[serde(default)]
    pub protocol: TraceProtocol,
    /// The destination answered.
    pub reached: bool,
    /// Cut at the time bound with requests still unanswered.
    pub partial: bool,
    pub duration_ms: f64,
    /// Requests sent (echo requests or UDP datagrams).
    pub packets: u32,
    /// TTL 1 up to the last one probed that matters (see the module doc).
    pub hops: Vec<Hop>,
    /// Why the trace stopped early for a local reason (a send failed), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hop after the last answer probed again, when it was (see the
    /// module doc); its requests are also in that hop's `sent` and
    /// `received`, and in `packets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprobe: Option<Reprobe>,
}

impl Trace {
    /// Not reached, and the hop after the last answer, where the baseline
    /// had a router, stayed silent through its re-probes: most likely the
    /// routers rate-limit their replies, not a break right after the last
    /// answer.
    pub fn rate_limited(&self) -> bool {
        !self.reached && self.reprobe.is_some_and(|r| r.sent > 0 && r.received == 0)
    }

    /// The farthest hop that answered.
    pub fn last_hop(&self) -> Option<&Hop> {
        self.hops.iter().rev().find(|h| h.addr.is_some())
    }

    /// Every responding address in TTL order (what a route change changes).
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.hops.iter().filter_map(|h| h.addr).collect()
    }
}

/// Why a trace could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0}")]
    Setup(#[from] IcmpSetupError),
    #[error("failed to open a UDP socket for the trace: {0}")]
    Udp(io::Error),
    #[error("failed to set up the trace socket: {0}")]
    Socket(io::Error),
    #[error("failed to resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
}
