//! The requests in flight on one socket, and what the socket and its
//! receive task share.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::AtomicU16;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::socket::IcmpMode;
use crate::probe::Completion;

/// Per-target request state: a fixed identifier and an increasing sequence.
pub(super) struct TargetState {
    pub(super) ident: u16,
    pub(super) seq: AtomicU16,
}

/// Who waits for a reply, and what the observation needs besides the RTT.
pub(super) struct Waiter {
    pub(super) done: Completion,
    /// How long resolving the host took; `None` for a literal address.
    pub(super) resolved: Option<Duration>,
    /// RAW mode: the request's place under [`RAW_IN_FLIGHT`](super::family::RAW_IN_FLIGHT), freed with it.
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

/// A request in flight.
pub(super) struct Pending {
    pub(super) token: u64,
    pub(super) ident: u16,
    pub(super) sent: Instant,
    /// CLOCK_REALTIME at send, to compare with the kernel's receive stamp.
    pub(super) sent_wall: Option<Duration>,
    pub(super) timeout: Duration,
    pub(super) waiter: Waiter,
}

/// Requests in flight on one socket.
#[derive(Default)]
pub(super) struct Table {
    pub(super) by_key: HashMap<(IpAddr, u16), Pending>,
    /// Every request's deadline; entries already answered are skipped when popped.
    pub(super) deadlines: BinaryHeap<Reverse<(Instant, u64, IpAddr, u16)>>,
    pub(super) next_token: u64,
}

/// What the socket and its receive task share.
pub(super) struct Shared {
    pub(super) sock: AsyncFd<Socket>,
    pub(super) table: Mutex<Table>,
    /// Wakes the receive task when a deadline earlier than all others arrives.
    pub(super) wake: Notify,
    pub(super) v6: bool,
    pub(super) mode: IcmpMode,
}

pub(super) fn lock(m: &Mutex<Table>) -> MutexGuard<'_, Table> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
