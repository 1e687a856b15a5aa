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

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::net::{resolve, routes};
use super::seam::{self, Completion, Probe, Request};
use super::{Info, Observation, Outcome, Phase, Phases, ProbeError, Reason};
use crate::config::{Config, Host, IcmpSpec, TargetSpec};

/// Which kind of ICMP socket is in use (exported as `linkwatch_icmp_socket_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMode {
    /// Unprivileged ICMP datagram socket (`net.ipv4.ping_group_range`).
    Dgram,
    /// Raw socket (`CAP_NET_RAW`).
    Raw,
}

impl IcmpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IcmpMode::Dgram => "dgram",
            IcmpMode::Raw => "raw",
        }
    }
}

/// The sysctl that lets a group open unprivileged ICMP sockets (IPv4 and IPv6 alike).
pub const FIX_SYSCTL: &str = "sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"";

/// Neither an unprivileged nor a raw IPv4 ICMP socket could be opened.
#[derive(Debug)]
pub struct IcmpSetupError {
    /// Why the unprivileged datagram socket failed (EACCES when the gid is outside the range).
    pub dgram: io::Error,
    /// Why the raw socket failed (EPERM without `CAP_NET_RAW`).
    pub raw: io::Error,
    /// The executable the `setcap` fix applies to.
    pub exe: String,
}

/// Opens an ICMP socket of the family: the unprivileged datagram kind, else
/// raw. Shared by the probe engine and the path tracer, so both follow the
/// same privilege story and fail with the same advice.
pub(super) fn open_socket(v6: bool) -> Result<(Socket, IcmpMode), IcmpSetupError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, IcmpMode::Dgram)),
        Err(dgram) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => Ok((s, IcmpMode::Raw)),
            Err(raw) => Err(IcmpSetupError::new(dgram, raw)),
        },
    }
}

impl IcmpSetupError {
    /// Why both socket kinds failed, naming this executable for the fix.
    pub fn new(dgram: io::Error, raw: io::Error) -> Self {
        Self {
            dgram,
            raw,
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/path/to/linkwatch".to_string()),
        }
    }

    /// The command that grants the raw-socket capability to this executable.
    pub fn setcap_fix(&self) -> String {
        format!("sudo setcap cap_net_raw+ep {}", self.exe)
    }
}

impl std::fmt::Display for IcmpSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to open an ICMP socket: unprivileged datagram socket: {}; raw socket: {}. \
             Enable one of: (1) unprivileged ICMP for your group (covers ICMPv6 too; persist it \
             in /etc/sysctl.d/): `{}`, or (2) the raw-socket capability: `{}`",
            self.dgram,
            self.raw,
            FIX_SYSCTL,
            self.setcap_fix()
        )
    }
}

impl std::error::Error for IcmpSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.dgram)
    }
}

/// Echo requests in flight at once on a raw socket. A raw socket queues every
/// ICMP packet of the host (on loopback our own requests too); 200
/// simultaneous loopback pings once lost ~12 % of replies to a full 208 KiB
/// receive buffer. A request over the limit waits (in a task) for a free
/// place until its deadline. Datagram sockets get only their own replies and
/// are not limited.
pub const RAW_IN_FLIGHT: usize = 64;

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;

/// Packets read per wake-up before other tasks get a turn.
const RECV_BATCH: usize = 256;

/// Tries left after a sequence collision before the probe gives up.
const COLLISION_RETRIES: usize = 4;

/// Least time between two sweeps for expired requests: one wake-up per
/// request deadline (every 0.1 ms at 10 000 probes a second) cost more than
/// the sweep itself. A timeout is reported at most this much after its deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// Per-target request state: a fixed identifier and an increasing sequence.
struct TargetState {
    ident: u16,
    seq: AtomicU16,
}

/// Who waits for a reply, and what the observation needs besides the RTT.
struct Waiter {
    done: Completion,
    /// How long resolving the host took; `None` for a literal address.
    resolved: Option<Duration>,
    /// RAW mode: the request's place under [`RAW_IN_FLIGHT`], freed with it.
    _permit: Option<OwnedSemaphorePermit>,
}

/// A request in flight.
struct Pending {
    token: u64,
    ident: u16,
    sent: Instant,
    /// CLOCK_REALTIME at send, to compare with the kernel's receive stamp.
    sent_wall: Option<Duration>,
    timeout: Duration,
    waiter: Waiter,
}

/// Requests in flight on one socket.
#[derive(Default)]
struct Table {
    by_key: HashMap<(IpAddr, u16), Pending>,
    /// Every request's deadline; entries already answered are skipped when popped.
    deadlines: BinaryHeap<Reverse<(Instant, u64, IpAddr, u16)>>,
    next_token: u64,
}

/// What the socket and its receive task share.
struct Shared {
    sock: AsyncFd<Socket>,
    table: Mutex<Table>,
    /// Wakes the receive task when a deadline earlier than all others arrives.
    wake: Notify,
    v6: bool,
    mode: IcmpMode,
}

/// One address family's shared socket.
struct Family {
    shared: Arc<Shared>,
    mode: IcmpMode,
    /// RAW mode only: bounds requests in flight ([`RAW_IN_FLIGHT`]).
    in_flight: Option<Arc<Semaphore>>,
    receiver: tokio::task::JoinHandle<()>,
}

impl Drop for Family {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

fn lock(m: &Mutex<Table>) -> MutexGuard<'_, Table> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn wall_now() -> Option<Duration> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok()
}

impl Family {
    /// Opens the family's socket (DGRAM, else RAW) and starts its receive task.
    /// On failure returns why each socket type failed.
    fn open(v6: bool) -> Result<Self, (io::Error, io::Error)> {
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
    fn try_permit(&self) -> Result<Option<OwnedSemaphorePermit>, Arc<Semaphore>> {
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
    fn send(
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

/// The RTT from the send instants and the receipt: the kernel's stamp when it
/// is consistent with the monotonic clock, else the monotonic reading.
pub(super) fn rtt(
    sent: Instant,
    sent_wall: Option<Duration>,
    now: Instant,
    rx_wall: Option<Duration>,
) -> Duration {
    let mono = now.saturating_duration_since(sent);
    // Realtime may be slewed by NTP (at most 500 ppm) but not stepped.
    let tolerance = mono / 1000 + Duration::from_micros(50);
    match (sent_wall, rx_wall) {
        (Some(s), Some(r)) => match r.checked_sub(s) {
            Some(k) if k <= mono + tolerance => k,
            _ => mono,
        },
        _ => mono,
    }
}

/// A reply as read off the socket.
pub(super) struct Received {
    pub(super) len: usize,
    pub(super) from: Option<IpAddr>,
    pub(super) wall: Option<Duration>,
}

pub(super) fn recv_one(sock: &Socket, buf: &mut [u8], cmsg: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let from = msg.address.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|s| IpAddr::V4(s.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
    });
    let mut wall = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c
                && let (Ok(s), Ok(ns)) = (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec()))
            {
                wall = Some(Duration::new(s, ns));
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        from,
        wall,
    })
}

/// Drains the socket, matches replies to requests, and times out requests
/// at their deadlines. Runs until the family is dropped.
async fn receive_loop(shared: Arc<Shared>) {
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
fn observed(outcome: Outcome, ip: IpAddr) -> Observation {
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

/// What a received packet answers.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Answer {
    /// The destination of the request answered.
    pub(super) dest: IpAddr,
    pub(super) ident: u16,
    pub(super) seq: u16,
    /// ICMP type and code when the answer is an error, not an echo reply.
    pub(super) error: Option<(u8, u8)>,
}

/// Decodes an echo reply, or an ICMP error quoting one of our echo requests.
/// `from` is the sender; `ip_header` is set for raw IPv4 sockets, which
/// deliver the IP header too. Anything else (our own requests seen on a raw
/// socket, neighbour discovery, …) is `None`.
pub(super) fn decode(packet: &[u8], from: IpAddr, ip_header: bool) -> Option<Answer> {
    let v6 = from.is_ipv6();
    let icmp = if ip_header {
        packet.get(usize::from(packet.first()? & 0x0f) * 4..)?
    } else {
        packet
    };
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    let ident_seq = |h: &[u8]| -> Option<(u16, u16)> {
        Some((
            u16::from_be_bytes([*h.get(4)?, *h.get(5)?]),
            u16::from_be_bytes([*h.get(6)?, *h.get(7)?]),
        ))
    };
    if (!v6 && ty == 0) || (v6 && ty == 129) {
        let (ident, seq) = ident_seq(icmp)?;
        return Some(Answer {
            dest: from,
            ident,
            seq,
            error: None,
        });
    }
    let is_error = if v6 {
        (1..=4).contains(&ty)
    } else {
        matches!(ty, 3 | 4 | 5 | 11 | 12)
    };
    if !is_error {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let (dest, request, echo_request) = if v6 {
        // Next header must be ICMPv6 (extension headers are not followed).
        if *quoted.get(6)? != 58 {
            return None;
        }
        let d: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
        (IpAddr::V6(d.into()), quoted.get(40..)?, 128)
    } else {
        if *quoted.get(9)? != 1 {
            return None;
        }
        let d: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
        let ihl = usize::from(quoted.first()? & 0x0f) * 4;
        (IpAddr::V4(d.into()), quoted.get(ihl..)?, 8)
    };
    if *request.first()? != echo_request {
        return None;
    }
    let (ident, seq) = ident_seq(request)?;
    Some(Answer {
        dest,
        ident,
        seq,
        error: Some((ty, code)),
    })
}

/// Writes an echo request; `packet` is 8 bytes longer than `payload`. The
/// kernel computes ICMPv6 checksums itself.
pub(super) fn write_echo(packet: &mut [u8], v6: bool, ident: u16, seq: u16, payload: &[u8]) {
    packet[0] = if v6 { 128 } else { 8 };
    packet[1..4].fill(0);
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(payload);
    if !v6 {
        let sum = checksum(packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends ICMP echo requests for every ICMP target over two shared sockets.
pub struct IcmpProber {
    v4: Family,
    /// `Err` holds why IPv6 ICMP is unavailable; IPv6 probes report it.
    v6: Result<Family, String>,
    /// Indexed like `Config::targets`.
    targets: Vec<TargetState>,
    /// Payload bytes, sliced to each target's `payload_size`.
    payload: Vec<u8>,
}

impl IcmpProber {
    /// Opens the IPv4 and IPv6 sockets. Must run inside the tokio runtime.
    ///
    /// Fails only when no IPv4 ICMP socket can be opened; a missing IPv6 stack
    /// is logged and turns IPv6 probes into errors.
    pub fn new(config: &Config) -> Result<Self, IcmpSetupError> {
        let v4 = Family::open(false).map_err(|(dgram, raw)| IcmpSetupError::new(dgram, raw))?;
        let v6 = Family::open(true).map_err(|(dgram, raw)| {
            warn!(dgram = %dgram, raw = %raw, "failed to open an ICMPv6 socket; IPv6 ICMP targets will fail");
            format!(
                "IPv6 ICMP is unavailable: failed to open an ICMPv6 socket: datagram: {dgram}; raw: {raw}"
            )
        });
        info!(
            v4 = v4.mode.as_str(),
            v6 = v6.as_ref().map_or("unavailable", |f| f.mode.as_str()),
            "opened ICMP sockets"
        );
        let payload_size = config
            .targets
            .iter()
            .filter_map(|t| match &t.spec {
                TargetSpec::Icmp(s) => Some(s.payload_size),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Ok(Self {
            v4,
            v6,
            targets: target_states(config),
            payload: payload(payload_size),
        })
    }

    /// Socket mode of the IPv4 socket (always open when the prober exists).
    pub fn mode(&self) -> IcmpMode {
        self.v4.mode
    }

    /// The socket mode per open address family (`ipv4`, `ipv6`), for the metric.
    pub fn modes(&self) -> Vec<(&'static str, IcmpMode)> {
        let mut v = vec![("ipv4", self.mode())];
        if let Some(m6) = self.mode_v6() {
            v.push(("ipv6", m6));
        }
        v
    }

    /// Socket mode of the IPv6 socket, `None` when IPv6 ICMP is unavailable.
    pub fn mode_v6(&self) -> Option<IcmpMode> {
        self.v6.as_ref().ok().map(|f| f.mode)
    }

    fn family(&self, ip: IpAddr) -> Result<&Family, Outcome> {
        match ip {
            IpAddr::V4(_) => Ok(&self.v4),
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .map_err(|e| Outcome::error(Reason::Io, e.clone())),
        }
    }

    /// Sends the echo request once `ip` is known, when a place under
    /// [`RAW_IN_FLIGHT`] is free (waiting for one in a task otherwise).
    fn echo(
        self: &Arc<Self>,
        req: Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        done: Completion,
    ) {
        let place = match self.family(ip) {
            Ok(family) => family.try_permit(),
            Err(outcome) => return seam::finish(done, observed(outcome, ip)),
        };
        match place {
            Ok(permit) => self.send(&req, ip, resolved, permit, done),
            Err(sem) => {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = match tokio::time::timeout_at(req.deadline(), sem.acquire_owned())
                        .await
                    {
                        Ok(Ok(permit)) => return me.send(&req, ip, resolved, Some(permit), done),
                        Ok(Err(_)) => Outcome::error(Reason::Io, "ICMP prober shut down"),
                        Err(_) => Outcome::Timeout { phase: None },
                    };
                    done.complete(observed(outcome, ip)).await;
                });
            }
        }
    }

    /// Sends the echo request and registers `done` for its reply; a failure
    /// to send completes it at once.
    fn send(
        &self,
        req: &Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
        done: Completion,
    ) {
        if let Err((done, outcome)) = self.try_send(req, ip, resolved, permit, done) {
            seam::finish(done, observed(outcome, ip));
        }
    }

    // The error hands the completion back by value; boxing it would allocate
    // on every send to save a copy on the rare failure.
    #[allow(clippy::result_large_err)]
    fn try_send(
        &self,
        req: &Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
        done: Completion,
    ) -> Result<(), (Completion, Outcome)> {
        let family = match self.family(ip) {
            Ok(f) => f,
            Err(outcome) => return Err((done, outcome)),
        };
        let target = req.target();
        let (Some(state), Ok(spec)) = (self.targets.get(req.index()), req.spec::<IcmpSpec>())
        else {
            let detail = format!("no ICMP state for target {}", target.name);
            return Err((done, Outcome::error(Reason::Io, detail)));
        };
        let fallback;
        let payload = match self.payload.get(..spec.payload_size) {
            Some(p) => p,
            // Sized at start to the largest payload_size of its configuration.
            None => {
                fallback = payload(spec.payload_size);
                &fallback[..]
            }
        };
        if req.deadline() <= Instant::now() {
            return Err((done, Outcome::Timeout { phase: None }));
        }
        let scope_id = match ip {
            IpAddr::V6(v6) if is_link_local(v6) => routes::link_local_scope(v6).unwrap_or(0),
            _ => 0,
        };
        let waiter = Waiter {
            done,
            resolved,
            _permit: permit,
        };
        family
            .send(
                ip,
                scope_id,
                state,
                payload,
                target.timeout,
                req.deadline(),
                waiter,
            )
            .map_err(|(waiter, outcome)| (waiter.done, outcome))
    }
}

impl Probe for IcmpProber {
    /// A literal address is sent to at once; a name or `@gateway` is
    /// resolved in a task first, bounded by the deadline.
    fn start(self: &Arc<Self>, req: Request, done: Completion) {
        let (host, ip_version) = match req.spec::<IcmpSpec>() {
            Ok(spec) => (&spec.host, spec.ip_version),
            Err(outcome) => return seam::finish(done, Observation::new(outcome)),
        };
        if let Host::Ip(ip) = *host {
            return self.echo(req, ip, None, done);
        }
        let (me, host) = (self.clone(), host.clone());
        tokio::spawn(async move {
            match resolve::resolve_by(&host, ip_version, req.deadline()).await {
                Ok((ip, took)) => me.echo(req, ip, Some(took), done),
                Err(outcome) => done.complete(Observation::new(outcome)).await,
            }
        });
    }
}

/// Distinct random identifiers, and sequence starts that put targets sharing a
/// configured host evenly apart in the sequence space.
fn target_states(config: &Config) -> Vec<TargetState> {
    let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in config.targets.iter().enumerate() {
        if let TargetSpec::Icmp(s) = &t.spec {
            by_host.entry(s.host.to_string()).or_default().push(i);
        }
    }
    let mut starts: Vec<u16> = (0..config.targets.len()).map(|_| rand::random()).collect();
    for indices in by_host.values() {
        for (i, start) in spaced_starts(rand::random(), indices.len())
            .into_iter()
            .enumerate()
        {
            starts[indices[i]] = start;
        }
    }
    let mut used = HashSet::new();
    starts
        .into_iter()
        .map(|start| {
            let mut ident: u16 = rand::random();
            // Distinct while there are fewer targets than identifiers.
            while used.len() < usize::from(u16::MAX) && !used.insert(ident) {
                ident = rand::random();
            }
            TargetState {
                ident,
                seq: AtomicU16::new(start),
            }
        })
        .collect()
}

/// `n` sequence starts from `base`, spaced 65536/n apart (wrapping).
fn spaced_starts(base: u16, n: usize) -> Vec<u16> {
    let step = 65536 / n.clamp(1, 65536);
    (0..n)
        .map(|k| base.wrapping_add(((k * step) % 65536) as u16))
        .collect()
}

/// A payload of `len` bytes in ping(8)'s pattern (0x00, 0x01, …).
pub(super) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// `Ok` for an echo reply (type 0 in ICMPv4, 129 in ICMPv6), else a description.
pub(super) fn classify_icmp(v6: bool, ty: u8, code: u8) -> Result<(), &'static str> {
    let what = if !v6 {
        match (ty, code) {
            (0, _) => return Ok(()),
            (3, 0) => "network unreachable",
            (3, 1) => "host unreachable",
            (3, 2) => "protocol unreachable",
            (3, 3) => "port unreachable",
            (3, 4) => "fragmentation needed",
            (3, 9 | 10 | 13) => "administratively prohibited",
            (3, _) => "destination unreachable",
            (5, _) => "redirect",
            (11, _) => "time exceeded",
            (12, _) => "parameter problem",
            _ => "unexpected ICMP message",
        }
    } else {
        match (ty, code) {
            (129, _) => return Ok(()),
            (1, 0) => "no route to destination",
            (1, 1) => "administratively prohibited",
            (1, 3) => "address unreachable",
            (1, 4) => "port unreachable",
            (1, 5 | 6) => "rejected by policy",
            (1, _) => "destination unreachable",
            (2, _) => "packet too big",
            (3, _) => "time exceeded",
            (4, _) => "parameter problem",
            _ => "unexpected ICMPv6 message",
        }
    };
    Err(what)
}

/// Classifies an error from `send_to`. EPERM here is a firewall rule
/// rejecting the packet (the socket is already open), not missing privileges.
/// ENOBUFS is the kernel dropping the packet at a local queue (seen for IPv6
/// when the link is down): a lost packet, reported as a timeout like the IPv4
/// request that the same fault drops silently.
fn send_error(e: &io::Error, ip: IpAddr) -> Outcome {
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

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn echo_replies_pass_and_errors_are_described() {
        assert_eq!(classify_icmp(false, 0, 0), Ok(()));
        assert_eq!(classify_icmp(true, 129, 0), Ok(()));
        assert_eq!(classify_icmp(false, 3, 1), Err("host unreachable"));
        assert_eq!(
            classify_icmp(false, 3, 13),
            Err("administratively prohibited")
        );
        assert_eq!(classify_icmp(false, 11, 0), Err("time exceeded"));
        assert_eq!(classify_icmp(true, 1, 3), Err("address unreachable"));
        assert_eq!(classify_icmp(true, 3, 0), Err("time exceeded"));
        // Type numbers differ per family: 0 is no reply in ICMPv6, 129 none in ICMPv4.
        assert!(classify_icmp(true, 0, 0).is_err());
        assert!(classify_icmp(false, 129, 0).is_err());
    }

    /// A destination unreachable as a raw IPv4 socket delivers it: IP header,
    /// ICMP type 3 code 1, then the quoted IP header and echo header.
    fn v4_unreachable() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // outer IPv4
            3, 1, 0, 0, 0, 0, 0, 0, // ICMP dest unreachable, host unreachable
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 9, 9, 9, // quoted IPv4
            8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, // quoted echo request ident 0x1234 seq 7
        ];
        p.truncate(56);
        p
    }

    #[test]
    fn raw_v4_unreachable_is_matched_through_the_quoted_request() {
        let from: IpAddr = "10.0.0.1".parse().unwrap();
        let a = decode(&v4_unreachable(), from, true).unwrap();
        assert_eq!(
            a,
            Answer {
                dest: "10.9.9.9".parse().unwrap(),
                ident: 0x1234,
                seq: 7,
                error: Some((3, 1)),
            }
        );
        assert_eq!(classify_icmp(false, 3, 1), Err("host unreachable"));
    }

    #[test]
    fn echo_replies_decode_with_and_without_ip_header() {
        let reply = [0, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4];
        let from: IpAddr = "127.0.0.5".parse().unwrap();
        let want = Answer {
            dest: from,
            ident: 0x1234,
            seq: 9,
            error: None,
        };
        assert_eq!(decode(&reply, from, false), Some(want));
        let mut with_header = vec![0x45u8; 1];
        with_header.extend([0u8; 19]);
        with_header.extend(reply);
        assert_eq!(decode(&with_header, from, true).map(|a| a.seq), Some(9));
        // Our own request, seen by a raw socket on loopback, is ignored.
        let request = [8, 0, 0, 0, 0x12, 0x34, 0, 9];
        assert_eq!(decode(&request, from, false), None);
        // Truncated packets are ignored, not a panic.
        assert_eq!(decode(&reply[..5], from, false), None);
        assert_eq!(decode(&[], from, false), None);
    }

    #[test]
    fn v6_echo_reply_and_error_decode() {
        let host: IpAddr = "fd00::2".parse().unwrap();
        let reply = [129, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4];
        assert_eq!(decode(&reply, host, false).unwrap().error, None);
        // Address unreachable quoting an echo request to fd00:232::5.
        let mut err = vec![1u8, 3, 0, 0, 0, 0, 0, 0];
        let mut ip6 = vec![0x60u8, 0, 0, 0, 0, 16, 58, 64];
        ip6.extend("fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        ip6.extend("fd00:232::5".parse::<Ipv6Addr>().unwrap().octets());
        err.extend(ip6);
        err.extend([128, 0, 0, 0, 0xab, 0xcd, 0x01, 0x02]);
        let a = decode(&err, "fd00::9".parse().unwrap(), false).unwrap();
        assert_eq!(a.dest, "fd00:232::5".parse::<IpAddr>().unwrap());
        assert_eq!((a.ident, a.seq, a.error), (0xabcd, 0x0102, Some((1, 3))));
        // Neighbour solicitation (135) is not ours.
        assert_eq!(decode(&[135, 0, 0, 0, 0, 0, 0, 0], host, false), None);
    }

    #[test]
    fn echo_request_has_a_valid_checksum() {
        let payload: Vec<u8> = payload(56);
        let mut p = vec![0u8; 64];
        write_echo(&mut p, false, 0xbeef, 42, &payload);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0xbe, 0xef, 0, 42]);
        // A packet including its checksum sums to zero.
        assert_eq!(checksum(&p), 0);
        let mut odd = vec![0u8; 8 + 3];
        write_echo(&mut odd, false, 1, 2, &[1, 2, 3]);
        assert_eq!(checksum(&odd), 0);
        let mut v6 = vec![0u8; 8];
        write_echo(&mut v6, true, 1, 2, &[]);
        assert_eq!(v6, [128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn rtt_prefers_the_kernel_stamp_unless_the_wall_clock_stepped() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_micros(500);
        let wall = Duration::from_secs(1_700_000_000);
        // Kernel says 40 µs; the task ran later.
        let rx = Some(wall + Duration::from_micros(40));
        assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(40));
        // Wall clock stepped forward by a second: monotonic reading.
        let rx = Some(wall + Duration::from_secs(1));
        assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(500));
        // Stepped backwards, or no stamp: monotonic reading.
        let rx = Some(wall - Duration::from_secs(1));
        assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(500));
        assert_eq!(rtt(t0, Some(wall), now, None), Duration::from_micros(500));
    }

    #[test]
    fn send_errors_map_to_reasons() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let reason = |e: io::Error| match send_error(&e, ip) {
            Outcome::Error(e) => e.reason,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(reason(io::Error::from_raw_os_error(1)), Reason::Blocked);
        assert_eq!(
            reason(io::Error::from_raw_os_error(101)),
            Reason::Unreachable
        );
        assert_eq!(
            reason(io::Error::from_raw_os_error(113)),
            Reason::Unreachable
        );
        assert_eq!(
            reason(io::Error::from_raw_os_error(99)),
            Reason::Unreachable
        );
        assert_eq!(reason(io::Error::from_raw_os_error(90)), Reason::Io);
        assert_eq!(
            send_error(&io::Error::from_raw_os_error(105), ip),
            Outcome::Timeout { phase: None }
        );
        match send_error(&io::Error::from_raw_os_error(1), ip) {
            Outcome::Error(e) => assert!(e.detail.contains("firewall"), "{}", e.detail),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn same_host_targets_get_disjoint_sequence_spaces() {
        assert_eq!(spaced_starts(10, 1), vec![10]);
        assert_eq!(spaced_starts(10, 2), vec![10, 10 + 32768]);
        assert_eq!(spaced_starts(65535, 4), vec![65535, 16383, 32767, 49151]);
        let many = spaced_starts(0, 70_000);
        assert_eq!(many.len(), 70_000);
    }

    #[test]
    fn setup_error_names_both_fixes_and_both_causes() {
        let e = IcmpSetupError {
            dgram: io::Error::from_raw_os_error(13),
            raw: io::Error::from_raw_os_error(1),
            exe: "/usr/bin/linkwatch".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains(FIX_SYSCTL), "{msg}");
        assert!(
            msg.contains("sudo setcap cap_net_raw+ep /usr/bin/linkwatch"),
            "{msg}"
        );
        assert!(msg.contains("Permission denied"), "{msg}");
        assert!(msg.contains("Operation not permitted"), "{msg}");
        assert!(!msg.contains("ipv6.ping_group_range"), "{msg}");
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        assert!(is_link_local("fe80::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fd00::1".parse().unwrap()));
    }
}
