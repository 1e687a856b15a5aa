//! ICMP echo probe over one shared socket per address family.
//!
//! One socket per family serves every ICMP target, drained by one receive
//! task: N raw sockets would each receive a copy of every ICMP packet on the
//! host. The unprivileged datagram socket is tried first, then a raw socket;
//! the mode obtained is exported.
//!
//! One way in, [`Probe::start`]: a literal address is sent to at once, a name
//! or `@gateway` is resolved in a task first (and only then has a `resolve`
//! phase). Either way the request is registered with its [`Completion`] and
//! the receive task completes it from the reply, or at its deadline; for a
//! literal address there is no task, timer or allocation per probe. The same
//! limits hold for every request: [`RAW_IN_FLIGHT`] on a raw socket, and the
//! interface lookup for link-local IPv6.
//!
//! Matching: a reply is looked up by (destination, sequence); in RAW mode the
//! identifier must match too. In DGRAM mode the kernel owns the identifier (it
//! is the socket's "port"), so only (host, sequence) distinguishes requests.
//! Each target therefore keeps its own increasing sequence, and targets
//! configured with the same host start evenly spaced apart in the 16-bit
//! sequence space, so neither a concurrent request nor a late reply of one
//! target is taken for the other's. A target's sequence repeats only after
//! 65536 of its probes, a reply after the request's deadline finds nothing,
//! and an RTT at or above the timeout is discarded.
//!
//! ICMP errors: an unconnected DGRAM socket never sees them (the kernel drops
//! them), so an unreachable host reads as a timeout. A RAW socket receives
//! them; they are matched through the request they quote, and anything but an
//! echo reply becomes `Reason::Unreachable` with its type and code.
//!
//! RTT: the send instant is read just before `sendto`, the receive instant is
//! stamped by the kernel when the reply arrives (`SO_TIMESTAMPNS`), as
//! ping(8) does, so the RTT does not include the time the receive task waits
//! to run on a busy host. Both are CLOCK_REALTIME; a wall-clock step between
//! them is caught against the monotonic clock, whose reading at receipt is
//! used instead (also when the kernel gives no timestamp).
//!
//! Files, in the order a probe flows: [`IcmpProber`] (`prober`) starts it,
//! `family` sends it on the family's socket (opened by `socket`) and
//! registers it in the `table`, `receive` completes it from the reply that
//! `wire` decodes. The path tracer uses `wire` and `socket` only.
//!
//! [`Probe::start`]: crate::probe::Probe::start
//! [`Completion`]: crate::probe::Completion

mod family;
mod prober;
mod receive;
pub(super) mod socket;
mod table;
pub(super) mod wire;

#[cfg(test)]
mod tests;

pub use family::RAW_IN_FLIGHT;
pub use prober::IcmpProber;
pub use socket::{FIX_SYSCTL, IcmpMode, IcmpSetupError};
