//! One address family's shared socket: opened and configured, its receive
//! task started, and echo requests sent and registered on it.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use socket2::SockAddr;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::receive::receive_loop;
use super::socket::{IcmpMode, open_socket, wall_now};
use super::table::{Pending, Shared, Table, TargetState, Waiter, lock};
use super::wire::write_echo;
use crate::probe::{Outcome, Reason};

/// Echo requests in flight at once on a raw socket. A raw socket queues every
/// ICMP packet of the host (on loopback our own requests too); 200
/// simultaneous loopback pings once lost ~12 % of replies to a full 208 KiB
/// receive buffer. A request over the limit waits (in a task) for a free
/// place until its deadline. Datagram sockets get only their own replies and
/// are not limited.
pub const RAW_IN_FLIGHT: usize = 64;

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;

/// Tries left after a sequence collision before the probe gives up.
const COLLISION_RETRIES: usize = 4;

/// One address family's shared socket.
pub(super) struct Family {
    pub(super) shared: Arc<Shared>,
    pub(super) mode: IcmpMode,
    /// RAW mode only: bounds requests in flight ([`RAW_IN_FLIGHT`]).
    pub(super) in_flight: Option<Arc<Semaphore>>,
    pub(super) receiver: tokio::task::JoinHandle<()>,
}

impl Drop for Family {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl Family {
    /// Opens the family's socket (DGRAM, else RAW) and starts its receive task.
    /// On failure returns why each socket type failed.
    pub(super) fn open(v6: bool) -> Result<Self, (io::Error, io::Error)> {
        let (sock, mode) = open_socket(v6).map_err(|e| (e.dgram, e.raw))?;
        let configured = |e: io::Error| {
            (
                io::Error::new(
                    e.kind(),
                    format!("failed to configure the ICMP socket: {e}"),
                ),
                io::Error::other("not tried: a socket was opened"),
            )
        };
        sock.set_nonblocking(true).map_err(configured)?;
        if let Err(e) = sock.set_recv_buffer_size(RECV_BUFFER) {
            debug!(error = %e, "failed to enlarge the ICMP receive buffer");
        }
        if let Err(e) = setsockopt(&sock, sockopt::ReceiveTimestampns, &true) {
            warn!(error = %e, "kernel receive timestamps (SO_TIMESTAMPNS) unavailable; ICMP RTT is taken in userspace");
        }
        // Deprecated for types that do not own their fd (tokio#8587); a
        // `Socket` owns it and closes it only when the `AsyncFd` is dropped.
        #[allow(deprecated)]
        let sock = AsyncFd::new(sock).map_err(configured)?;
        let shared = Arc::new(Shared {
            sock,
            table: Mutex::new(Table::default()),
            wake: Notify::new(),
            v6,
            mode,
        });
        let receiver = tokio::spawn(receive_loop(shared.clone()));
        Ok(Self {
            shared,
            mode,
            in_flight: (mode == IcmpMode::Raw).then(|| Arc::new(Semaphore::new(RAW_IN_FLIGHT))),
            receiver,
        })
    }

    /// A place for one more request: `Ok(None)` when unlimited (DGRAM), the
    /// permit when one is free, else the semaphore to wait on.
    pub(super) fn try_permit(&self) -> Result<Option<OwnedSemaphorePermit>, Arc<Semaphore>> {
        match &self.in_flight {
            None => Ok(None),
            Some(sem) => sem
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| sem.clone()),
        }
    }

    /// Sends one echo request and registers `waiter` for its reply. On a
    /// failure nothing stays registered and the waiter is handed back.
    // The error carries the caller's waiter back by value; boxing it would
    // allocate on every send to save a copy on the rare failure.
    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    pub(super) fn send(
        &self,
        ip: IpAddr,
        scope_id: u32,
        state: &TargetState,
        payload: &[u8],
        timeout: Duration,
        deadline: Instant,
        waiter: Waiter,
    ) -> Result<(), (Waiter, Outcome)> {
        let shared = &self.shared;
        let mut stack = [0u8; 8 + 128];
        let mut heap = Vec::new();
        let len = 8 + payload.len();
        let packet: &mut [u8] = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let addr = SockAddr::from(match ip {
            IpAddr::V4(_) => SocketAddr::new(ip, 0),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope_id)),
        });
        let mut table = lock(&shared.table);
        let mut seq = state.seq.fetch_add(1, Ordering::Relaxed);
        let mut tries = 1;
        // Nothing is sent while another request waits on (host, seq): skip to the next seq.
        while table.by_key.contains_key(&(ip, seq)) {
            if tries == COLLISION_RETRIES {
                return Err((
                    waiter,
                    Outcome::error(
                        Reason::Io,
                        format!(
                            "failed to send ICMP echo to {ip}: sequence {seq} already in flight after {COLLISION_RETRIES} tries"
                        ),
                    ),
                ));
            }
            seq = state.seq.fetch_add(1, Ordering::Relaxed);
            tries += 1;
        }
        write_echo(packet, shared.v6, state.ident, seq, payload);
        let token = table.next_token;
        table.next_token += 1;
        let earliest = table
            .deadlines
            .peek()
            .is_none_or(|Reverse((d, ..))| deadline < *d);
        table.deadlines.push(Reverse((deadline, token, ip, seq)));
        let (sent, sent_wall) = (Instant::now(), wall_now());
        table.by_key.insert(
            (ip, seq),
            Pending {
                token,
                ident: state.ident,
                sent,
                sent_wall,
                timeout,
                waiter,
            },
        );
        drop(table);
        let res = shared.sock.get_ref().send_to(packet, &addr);
        if earliest {
            shared.wake.notify_one();
        }
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut table = lock(&shared.table);
                match table.by_key.entry((ip, seq)) {
                    MapEntry::Occupied(o) if o.get().token == token => {
                        Err((o.remove().waiter, send_error(&e, ip)))
                    }
                    // Already answered (cannot happen for a failed send) or swept.
                    _ => Ok(()),
                }
            }
        }
    }
}

/// Classifies an error from `send_to`. EPERM here is a firewall rule
/// rejecting the packet (the socket is already open), not missing privileges.
/// ENOBUFS is the kernel dropping the packet at a local queue (seen for IPv6
/// when the link is down): a lost packet, reported as a timeout like the IPv4
/// request that the same fault drops silently.
pub(super) fn send_error(e: &io::Error, ip: IpAddr) -> Outcome {
    if e.raw_os_error() == Some(ENOBUFS) {
        debug!(%ip, error = %e, "ICMP echo dropped at send, counted as lost");
        return Outcome::Timeout { phase: None };
    }
    let reason = match e.kind() {
        io::ErrorKind::PermissionDenied => Reason::Blocked,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Reason::Unreachable,
        _ => match e.raw_os_error() {
            // EHOSTDOWN, ENONET, EADDRNOTAVAIL (no source address)
            Some(112) | Some(64) | Some(99) => Reason::Unreachable,
            _ => Reason::Io,
        },
    };
    let hint = if reason == Reason::Blocked {
        " (a local firewall rule rejects it)"
    } else {
        ""
    };
    Outcome::error(
        reason,
        format!("failed to send ICMP echo to {ip}: {e}{hint}"),
    )
}

const ENOBUFS: i32 = 105;
