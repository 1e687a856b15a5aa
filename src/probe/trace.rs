//! Path tracing: ICMP echo requests with increasing TTL, hop by hop, on the
//! ICMP engine's packet code ([`super::icmp`]) and its privilege story.
//!
//! Each trace opens its own socket and closes it at the end. Unprivileged
//! first: a datagram ICMP socket (`net.ipv4.ping_group_range`) with
//! `IP_RECVERR`, which makes the kernel queue the time-exceeded and
//! unreachable messages routers send back on the socket's error queue
//! (`MSG_ERRQUEUE`, with the router's address in the extended error). A
//! datagram socket is demultiplexed by the kernel (its identifier is the
//! socket's "port"), so a trace never sees the probes' replies or another
//! trace's. Otherwise a raw socket (`CAP_NET_RAW`), which receives every
//! ICMP packet of the host: the requests are matched by identifier and
//! sequence through the quoted header, as the probes do. When neither opens
//! the error is [`IcmpSetupError`], the same words as the ICMP probes'.
//!
//! Schedule: [`TraceOptions::probes_per_hop`] requests per TTL sent together,
//! the next TTL [`SPACING`] later, never more than [`GIVE_UP_SILENT`] TTLs
//! beyond the farthest answer. A request is lost after
//! [`TraceOptions::probe_timeout`]. The trace ends when every request up to
//! the last useful TTL is answered or lost: the destination's echo reply
//! (hops past it are dropped), an unreachable error (the path ends at that
//! router), [`GIVE_UP_SILENT`] silent TTLs in a row after the last answer,
//! or `max_hops`. It is cut at [`TraceOptions::bound`] and then `partial`.
//!
//! Re-probes: routers rate-limit the ICMP errors they send (Linux: one per
//! second per peer after a burst of six, `net.ipv4.icmp_ratelimit`; an
//! unreachable for a missing route is charged twice, once by the routing
//! code and once by `icmp_send`, so it costs 2 s of that budget). During an
//! outage the host's own probes spend that budget, and the router that
//! holds the broken route stays silent: the trace seems to stop one hop
//! early. So when the answers stop at TTL k, the destination was not
//! reached and the caller's baseline had a router at k + 1
//! ([`TraceOptions::baseline_hops`]), TTL k + 1 is probed again with fresh
//! requests, one at a time, at most [`REPROBES`], [`REPROBE_SPACING`] apart
//! (each finds the router's budget refilled), and each sent only when an
//! answer still fits before the bound. A caller that can hold its own
//! traffic through that router is told before each re-probe
//! ([`trace_quiet`]); the re-probe then waits [`REPROBE_QUIET`] after it. An
//! answer ends the re-probes: an unreachable ends the path there as above, a
//! time-exceeded adds the hop. The result says what was done
//! ([`Trace::reprobe`]); a re-probed hop that stayed silent is most likely
//! rate limiting, not where the path breaks ([`Trace::rate_limited`]).
//!
//! With [`TraceProtocol::Udp`] (classic traceroute) the requests are UDP
//! datagrams to port [`UDP_BASE_PORT`] plus the request's index, on an
//! ordinary UDP socket with `IP_RECVERR` / `IPV6_RECVERR`: it needs no
//! privilege at all. Routers answer with time-exceeded and the destination
//! with port unreachable ("reached"), both read off the error queue; the
//! request is told by the destination port the kernel reports with each
//! error (`msg_name`), the router by the extended error's offender address.
//!
//! RTTs are the kernel's receive stamp (`SO_TIMESTAMPNS`, also delivered
//! with error-queue messages) minus the wall clock just before `sendto`,
//! checked against the monotonic clock like the probes' (see `icmp::rtt`).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use serde::{Deserialize, Serialize};
use socket2::{SockAddr, Socket};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;
use tracing::debug;

use super::icmp::{self, IcmpMode, IcmpSetupError};
use super::net::resolve;
pub use crate::config::TraceProtocol;
use crate::config::{Config, DnsServer, Group, Host, IpVersion, Nameserver, Target, TargetSpec};
pub use crate::journal::{Hop, Reprobe};

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
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Echo payload bytes (small: routers quote only the first 8 anyway).
const PAYLOAD: usize = 32;
/// UDP requests go to this port plus their index (traceroute's 33434 + n).
pub const UDP_BASE_PORT: u16 = 33434;
/// Messages read per wake-up and queue before yielding.
const RECV_BATCH: usize = 64;
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
const REPROBE_ROOM: Duration = Duration::from_secs(1);

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

/// The result of one trace.
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

/// The host a target's probes go to, if it has one (the server of a DNS
/// target, the URL's host of an HTTP or throughput target).
pub fn target_host(target: &Target) -> Option<Host> {
    let url_host = |url: &url::Url| match url.host()? {
        url::Host::Ipv4(ip) => Some(Host::Ip(ip.into())),
        url::Host::Ipv6(ip) => Some(Host::Ip(ip.into())),
        url::Host::Domain(d) => Some(Host::Name(d.to_string())),
    };
    match &target.spec {
        TargetSpec::Icmp(s) => Some(s.host.clone()),
        TargetSpec::Tcp(s) => Some(s.host.clone()),
        TargetSpec::Http(s) => url_host(&s.url),
        TargetSpec::Throughput(s) => url_host(&s.url),
        TargetSpec::Dns(s) => match &s.server {
            DnsServer::Udp(Nameserver::Addr { host, .. })
            | DnsServer::Tcp(Nameserver::Addr { host, .. })
            | DnsServer::Tls { host, .. } => Some(host.clone()),
            DnsServer::Udp(Nameserver::System) | DnsServer::Tcp(Nameserver::System) => None,
            DnsServer::Https { url, .. } => url_host(url),
        },
    }
}

/// Where a group's path is traced to: its `trace_target`, else the host of
/// its first target that has one.
pub fn group_trace_host(config: &Config, group: &Group) -> Option<Host> {
    group.trace.target.clone().or_else(|| {
        config
            .targets
            .iter()
            .filter(|t| t.group == group.name)
            .find_map(target_host)
    })
}

/// Resolves `host` (a name is looked up now) and traces the path to it.
pub async fn trace_host(host: &Host, options: &TraceOptions) -> Result<Trace, TraceError> {
    trace_host_quiet(host, options, None).await
}

/// [`trace_host`], telling `quiet` before each re-probe (see [`trace_quiet`]).
pub async fn trace_host_quiet(
    host: &Host,
    options: &TraceOptions,
    quiet: Option<&Quiet<'_>>,
) -> Result<Trace, TraceError> {
    let (ip, _) = resolve::resolve(host, IpVersion::Any)
        .await
        .map_err(|outcome| TraceError::Resolve {
            host: host.to_string(),
            detail: outcome.to_string(),
        })?;
    trace_quiet(ip, options, quiet).await
}

/// One request.
struct Request {
    ttl: u8,
    sent: Instant,
    sent_wall: Option<Duration>,
    done: bool,
}

/// An answer to one of our requests.
struct Reply {
    seq: u16,
    from: IpAddr,
    /// ICMP type and code of an error; `None` for the echo reply.
    error: Option<(u8, u8)>,
    now: Instant,
    wall: Option<Duration>,
}

/// The socket of one trace.
struct TraceSocket {
    fd: AsyncFd<Socket>,
    mode: IcmpMode,
    v6: bool,
    /// RAW mode: our identifier (DGRAM: the kernel's).
    ident: u16,
    /// UDP datagrams rather than ICMP echo requests.
    udp: bool,
}

impl TraceSocket {
    fn open(v6: bool, protocol: TraceProtocol) -> Result<Self, TraceError> {
        let udp = protocol == TraceProtocol::Udp;
        let (sock, mode) = if udp {
            let domain = if v6 {
                socket2::Domain::IPV6
            } else {
                socket2::Domain::IPV4
            };
            let sock = Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
                .map_err(TraceError::Udp)?;
            (sock, IcmpMode::Dgram)
        } else {
            super::icmp::open_socket(v6).map_err(TraceError::Setup)?
        };
        let io = |e: nix::Error| TraceError::Socket(io::Error::from(e));
        sock.set_nonblocking(true).map_err(TraceError::Socket)?;
        if mode == IcmpMode::Dgram {
            if v6 {
                setsockopt(&sock, sockopt::Ipv6RecvErr, &true).map_err(io)?;
            } else {
                setsockopt(&sock, sockopt::Ipv4RecvErr, &true).map_err(io)?;
            }
        }
        if let Err(e) = setsockopt(&sock, sockopt::ReceiveTimestampns, &true) {
            debug!(error = %e, "no kernel receive timestamps for the trace socket");
        }
        // See `icmp::Family::open` on the deprecation.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(sock, Interest::READABLE | Interest::ERROR)
            .map_err(TraceError::Socket)?;
        Ok(Self {
            fd,
            mode,
            v6,
            ident: rand::random(),
            udp,
        })
    }

    fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        let sock = self.fd.get_ref();
        let r = if self.v6 {
            setsockopt(sock, sockopt::Ipv6Ttl, &i32::from(ttl))
        } else {
            setsockopt(sock, sockopt::Ipv4Ttl, &i32::from(ttl))
        };
        r.map_err(io::Error::from)
    }

    /// Sends one echo request. With `IP_RECVERR`, an ICMP error a router
    /// sent for an earlier request is also the socket's pending error, which
    /// the next `sendto` would fail with (EHOSTUNREACH for a time-exceeded):
    /// it is cleared first, and a send that fails right after an error
    /// arrived is tried once more.
    ///
    /// A UDP request is `payload` sent to port `seq`.
    fn send(&self, dest: IpAddr, seq: u16, payload: &[u8]) -> io::Result<()> {
        let (packet, addr) = if self.udp {
            (payload.to_vec(), SocketAddr::new(dest, seq))
        } else {
            let mut packet = vec![0u8; 8 + payload.len()];
            icmp::write_echo(&mut packet, self.v6, self.ident, seq, payload);
            (packet, SocketAddr::new(dest, 0))
        };
        let addr = SockAddr::from(addr);
        let sock = self.fd.get_ref();
        let mut retried = false;
        loop {
            let stale = sock.take_error().ok().flatten();
            match sock.send_to(&packet, &addr) {
                Ok(_) => return Ok(()),
                Err(e) if self.mode == IcmpMode::Dgram && !retried => {
                    debug!(error = %e, stale = ?stale, "trace send failed; trying once more");
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads every queued answer (normal queue and, in DGRAM mode, the
    /// error queue) into `out`.
    fn drain(&self, dest: IpAddr, buf: &mut [u8], out: &mut Vec<Reply>) {
        let sock = self.fd.get_ref();
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let raw_v4 = !self.v6 && self.mode == IcmpMode::Raw;
        // UDP: our datagrams' answers are errors; the normal queue is
        // read for a service that answers (see `drain_udp`).
        let normal = if self.udp {
            self.drain_udp(dest, buf, out);
            0
        } else {
            RECV_BATCH
        };
        for _ in 0..normal {
            match icmp::recv_one(sock, buf, &mut cmsg) {
                Ok(r) => {
                    let now = Instant::now();
                    let (Some(from), Some(packet)) = (r.from, buf.get(..r.len)) else {
                        continue;
                    };
                    let Some(a) = icmp::decode(packet, from, raw_v4) else {
                        continue;
                    };
                    if a.dest != dest || (self.mode == IcmpMode::Raw && a.ident != self.ident) {
                        continue;
                    }
                    out.push(Reply {
                        seq: a.seq,
                        from,
                        error: a.error,
                        now,
                        wall: r.wall,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A pending ICMP error is also reported once by a plain
                // receive (the socket's error); it is read off the error queue.
                Err(e) => debug!(error = %e, "trace socket receive"),
            }
        }
        if self.mode != IcmpMode::Dgram {
            return;
        }
        let mut cmsg = nix::cmsg_space!(
            nix::libc::sock_extended_err,
            nix::libc::sockaddr_in6,
            nix::sys::time::TimeSpec
        );
        for _ in 0..RECV_BATCH {
            match recv_error(sock, buf, &mut cmsg, self.v6, self.udp.then_some(dest)) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!(error = %e, "trace socket error queue");
                    break;
                }
            }
        }
    }
}

impl TraceSocket {
    /// The normal queue of a UDP trace socket: a datagram back from the
    /// destination port of one of our requests (a UDP service that answers)
    /// means the destination was reached; anything else is read and dropped.
    fn drain_udp(&self, dest: IpAddr, buf: &mut [u8], out: &mut Vec<Reply>) {
        let fd = self.fd.get_ref().as_raw_fd();
        for _ in 0..RECV_BATCH {
            match nix::sys::socket::recvfrom::<SockaddrStorage>(fd, buf) {
                Ok((_, Some(from))) => {
                    if let Some(from) = socket_addr(&from)
                        && from.ip() == dest
                    {
                        out.push(Reply {
                            seq: from.port(),
                            from: from.ip(),
                            error: None,
                            now: Instant::now(),
                            wall: None,
                        });
                    }
                }
                Ok((_, None)) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                // A pending ICMP error is also reported once by a plain
                // receive (the socket's error); it is read off the error queue.
                Err(e) => debug!(error = %e, "trace socket receive"),
            }
        }
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::from((v4.ip(), v4.port())))
    } else {
        a.as_sockaddr_in6()
            .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
    }
}

/// One message off a DGRAM socket's error queue: the ICMP error a router
/// sent, with our request (its ICMP header at least) as the data. For a UDP
/// request (`udp_dest` set) the data is our payload and the request is told
/// by the destination port in the message's address.
fn recv_error(
    sock: &Socket,
    buf: &mut [u8],
    cmsg: &mut [u8],
    v6: bool,
    udp_dest: Option<IpAddr>,
) -> io::Result<Option<Reply>> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let now = Instant::now();
    let len = msg.bytes;
    let original = msg.address.as_ref().and_then(socket_addr);
    let mut wall = None;
    let mut err: Option<(u8, u8, u8, Option<IpAddr>)> = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                if let (Ok(s), Ok(ns)) = (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec())) {
                    wall = Some(Duration::new(s, ns));
                }
            }
            ControlMessageOwned::Ipv4RecvErr(e, addr) => {
                let from =
                    addr.map(|a| IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()));
                err = Some((e.ee_origin, e.ee_type, e.ee_code, from));
            }
            ControlMessageOwned::Ipv6RecvErr(e, addr) => {
                let from = addr.map(|a| IpAddr::from(a.sin6_addr.s6_addr));
                err = Some((e.ee_origin, e.ee_type, e.ee_code, from));
            }
            _ => {}
        }
    }
    let Some((origin, ty, code, Some(from))) = err else {
        return Ok(None);
    };
    let icmp_origin = if v6 {
        nix::libc::SO_EE_ORIGIN_ICMP6
    } else {
        nix::libc::SO_EE_ORIGIN_ICMP
    };
    if origin != icmp_origin {
        return Ok(None);
    }
    if let Some(dest) = udp_dest {
        return Ok(original.filter(|o| o.ip() == dest).map(|o| Reply {
            seq: o.port(),
            from,
            error: Some((ty, code)),
            now,
            wall,
        }));
    }
    // The data is the request we sent: an echo request with our sequence.
    let Some(request) = buf.get(..len) else {
        return Ok(None);
    };
    let echo_request = if v6 { 128 } else { 8 };
    if request.first() != Some(&echo_request) {
        return Ok(None);
    }
    let (Some(&hi), Some(&lo)) = (request.get(6), request.get(7)) else {
        return Ok(None);
    };
    Ok(Some(Reply {
        seq: u16::from_be_bytes([hi, lo]),
        from,
        error: Some((ty, code)),
        now,
        wall,
    }))
}

/// Is this ICMP error a router saying the TTL ran out (not an unreachable)?
fn is_time_exceeded(v6: bool, ty: u8) -> bool {
    if v6 { ty == 3 } else { ty == 11 }
}

/// Is this ICMP error the destination saying nobody listens on the port
/// (the end of a UDP trace)?
fn is_port_unreachable(v6: bool, ty: u8, code: u8) -> bool {
    if v6 {
        ty == 1 && code == 4
    } else {
        ty == 3 && code == 3
    }
}

/// Traces the path to `dest`. Must run inside the tokio runtime.
pub async fn trace(dest: IpAddr, options: &TraceOptions) -> Result<Trace, TraceError> {
    trace_quiet(dest, options, None).await
}

/// [`trace`], telling `quiet` before each re-probe of the hop after the last
/// answer (see the module doc) when the request is due; it answers when the
/// request may go (that instant or later), and may hold other traffic
/// through the path until then.
pub async fn trace_quiet(
    dest: IpAddr,
    options: &TraceOptions,
    quiet: Option<&Quiet<'_>>,
) -> Result<Trace, TraceError> {
    let v6 = dest.is_ipv6();
    let udp = options.protocol == TraceProtocol::Udp;
    let sock = TraceSocket::open(v6, options.protocol)?;
    let started = Instant::now();
    let deadline = started + options.bound;
    let max_hops = options.max_hops.max(1);
    let per_hop = options.probes_per_hop.max(1);
    let payload = icmp::payload(PAYLOAD);
    // ICMP: a random first sequence; UDP: the first destination port.
    let base: u16 = if udp { UDP_BASE_PORT } else { rand::random() };

    let mut hops: Vec<Hop> = (1..=max_hops)
        .map(|ttl| Hop {
            ttl,
            addr: None,
            also: Vec::new(),
            sent: 0,
            received: 0,
            rtt_ms: Vec::new(),
            unreachable: None,
        })
        .collect();
    let mut requests: Vec<Request> = Vec::new();
    let mut next_ttl: u8 = 1;
    let mut next_send = started;
    let mut ends = Ends::default();
    let mut error = None;
    let mut partial = false;
    let mut buf = vec![0u8; 65_536];
    let mut replies = Vec::new();

    loop {
        let now = Instant::now();
        for r in requests.iter_mut().filter(|r| !r.done) {
            if now.saturating_duration_since(r.sent) >= options.probe_timeout {
                r.done = true;
            }
        }
        let waiting_below =
            |requests: &[Request], limit: u8| requests.iter().any(|r| !r.done && r.ttl <= limit);
        let farthest_answer = hops
            .iter()
            .rev()
            .find(|h| h.received > 0)
            .map_or(0, |h| h.ttl);
        let gave_up = silent_run(&hops, &requests) >= GIVE_UP_SILENT;
        let sending = error.is_none()
            && !gave_up
            && next_ttl <= max_hops
            && ends.end_ttl.is_none_or(|e| next_ttl <= e);
        let limit = ends.end_ttl.unwrap_or(next_ttl.saturating_sub(1));
        if !sending && !waiting_below(&requests, limit) {
            break;
        }
        if now >= deadline {
            partial = true;
            break;
        }
        if sending && now >= next_send && next_ttl <= farthest_answer.saturating_add(GIVE_UP_SILENT)
        {
            if let Err(e) = sock.set_ttl(next_ttl) {
                error = Some(format!("failed to set TTL {next_ttl}: {e}"));
                continue;
            }
            for _ in 0..per_hop {
                let Ok(index) = u16::try_from(requests.len()) else {
                    break;
                };
                let sent_wall = icmp::wall_now();
                let sent = Instant::now();
                match sock.send(dest, base.wrapping_add(index), &payload) {
                    Ok(()) => {
                        requests.push(Request {
                            ttl: next_ttl,
                            sent,
                            sent_wall,
                            done: false,
                        });
                        if let Some(h) = hops.get_mut(usize::from(next_ttl) - 1) {
                            h.sent += 1;
                        }
                    }
                    Err(e) => {
                        error = Some(format!("failed to send to {dest} with TTL {next_ttl}: {e}"));
                        break;
                    }
                }
            }
            next_ttl += 1;
            next_send = Instant::now() + SPACING;
            continue;
        }
        // Sleep until the next send, the next request timeout or the bound,
        // unless an answer arrives first.
        let mut wake = deadline;
        if sending {
            wake = wake.min(next_send.max(now + Duration::from_millis(1)));
        }
        if let Some(first) = requests.iter().filter(|r| !r.done).map(|r| r.sent).min() {
            wake = wake
                .min(first + options.probe_timeout)
                .min(now + POLL_EVERY);
        }
        tokio::select! {
            ready = sock.fd.ready(Interest::READABLE | Interest::ERROR) => match ready {
                Ok(mut guard) => {
                    sock.drain(dest, &mut buf, &mut replies);
                    guard.clear_ready();
                }
                Err(e) => {
                    error = Some(format!("trace socket failed: {e}"));
                }
            },
            // A safety net: were a readiness notification for the error
            // queue ever missed, its answer would otherwise wait there until
            // its request timed out. Reading costs one syscall per queue.
            () = tokio::time::sleep_until(wake) => sock.drain(dest, &mut buf, &mut replies),
        }
        for reply in replies.drain(..) {
            record(reply, base, &sock, &mut requests, &mut hops, &mut ends);
        }
    }
    // The hop after the last answer, again (see the module doc).
    let mut reprobe = None;
    if !partial && error.is_none() && !ends.reached && ends.end_ttl.is_none() {
        let farthest = hops
            .iter()
            .rev()
            .find(|h| h.received > 0)
            .map_or(0, |h| h.ttl);
        let ttl = farthest.saturating_add(1);
        let was_sent = hops
            .get(usize::from(ttl).saturating_sub(1))
            .is_some_and(|h| h.ttl == ttl && h.sent > 0);
        if was_sent && options.baseline_had(ttl) {
            let first = requests.len();
            let mut r = Reprobe {
                ttl,
                sent: 0,
                received: 0,
            };
            let mut last = requests
                .iter()
                .filter(|q| q.ttl == ttl)
                .map(|q| q.sent)
                .max();
            // Sends, each after its wait, until one is answered.
            while r.sent < u32::from(REPROBES) && r.received == 0 && error.is_none() {
                let now = Instant::now();
                let mut at = last.map_or(now, |l| l + REPROBE_SPACING).max(now);
                if let Some(q) = quiet {
                    at = at.max(now + REPROBE_QUIET);
                    // No hold asked for a re-probe that cannot be sent.
                    if at + REPROBE_ROOM > deadline {
                        break;
                    }
                    at = q(at);
                }
                if at + REPROBE_ROOM > deadline {
                    break;
                }
                debug!(%dest, ttl, at = ?at.saturating_duration_since(started), "re-probing the hop after the last answer");
                while Instant::now() < at && r.received == 0 {
                    if let Err(e) = listen(&sock, dest, at, &mut buf, &mut replies).await {
                        error = Some(e);
                        break;
                    }
                    r.received += reprobe_answers(
                        &mut replies,
                        (base, first),
                        &sock,
                        (&mut requests, &mut hops),
                        &mut ends,
                    );
                }
                if r.received > 0 || error.is_some() {
                    break;
                }
                if let Err(e) = sock.set_ttl(ttl) {
                    error = Some(format!("failed to set TTL {ttl}: {e}"));
                    break;
                }
                let Ok(index) = u16::try_from(requests.len()) else {
                    break;
                };
                let sent_wall = icmp::wall_now();
                let sent = Instant::now();
                if let Err(e) = sock.send(dest, base.wrapping_add(index), &payload) {
                    error = Some(format!("failed to send to {dest} with TTL {ttl}: {e}"));
                    break;
                }
                requests.push(Request {
                    ttl,
                    sent,
                    sent_wall,
                    done: false,
                });
                if let Some(h) = hops.get_mut(usize::from(ttl) - 1) {
                    h.sent += 1;
                }
                r.sent += 1;
                last = Some(sent);
            }
            // The last ones' answers, until they are lost or the bound.
            if let Some(l) = last.filter(|_| r.sent > 0) {
                let until = (l + options.probe_timeout).min(deadline);
                while Instant::now() < until && r.received == 0 && error.is_none() {
                    if let Err(e) = listen(&sock, dest, until, &mut buf, &mut replies).await {
                        error = Some(e);
                        break;
                    }
                    r.received += reprobe_answers(
                        &mut replies,
                        (base, first),
                        &sock,
                        (&mut requests, &mut hops),
                        &mut ends,
                    );
                }
            }
            for q in requests.iter_mut().skip(first) {
                q.done = true;
            }
            // None sent (no room before the bound): nothing to report.
            reprobe = (r.sent > 0).then_some(r);
        }
    }
    let Ends { reached, end_ttl } = ends;
    let probed = next_ttl.saturating_sub(1);
    let keep = end_ttl.map_or(probed, |e| e.min(probed));
    hops.truncate(usize::from(keep));
    // Requests sent past the end (before it was known) are not part of the path.
    let packets = requests.len() as u32;
    Ok(Trace {
        dest,
        mode: sock.mode.as_str().to_string(),
        protocol: options.protocol,
        reached,
        partial,
        duration_ms: micros_as_ms(started.elapsed()),
        packets,
        hops,
        error,
        reprobe,
    })
}

/// Waits for answers until `until` (at most [`POLL_EVERY`]) and reads them into `out`.
async fn listen(
    sock: &TraceSocket,
    dest: IpAddr,
    until: Instant,
    buf: &mut [u8],
    out: &mut Vec<Reply>,
) -> Result<(), String> {
    let wake = until.min(Instant::now() + POLL_EVERY);
    tokio::select! {
        ready = sock.fd.ready(Interest::READABLE | Interest::ERROR) => match ready {
            Ok(mut guard) => {
                sock.drain(dest, buf, out);
                guard.clear_ready();
            }
            Err(e) => return Err(format!("trace socket failed: {e}")),
        },
        () = tokio::time::sleep_until(wake) => sock.drain(dest, buf, out),
    }
    Ok(())
}

/// Records the answers in `replies`; returns how many answered a re-probe
/// (a request from index `first` on; `seq` is `base` plus the index).
fn reprobe_answers(
    replies: &mut Vec<Reply>,
    (base, first): (u16, usize),
    sock: &TraceSocket,
    (requests, hops): (&mut [Request], &mut [Hop]),
    ends: &mut Ends,
) -> u32 {
    let mut n = 0;
    for reply in replies.drain(..) {
        if record(reply, base, sock, requests, hops, ends).is_some_and(|i| i >= first) {
            n += 1;
        }
    }
    n
}

/// Where the path ends, as far as the answers say.
#[derive(Default)]
struct Ends {
    /// The destination answered.
    reached: bool,
    /// The TTL at which the path ends (destination reached or unreachable).
    end_ttl: Option<u8>,
}

/// Applies one answer to its request and hop; returns the request's index,
/// or `None` when it matches no request still waiting.
fn record(
    reply: Reply,
    base: u16,
    sock: &TraceSocket,
    requests: &mut [Request],
    hops: &mut [Hop],
    ends: &mut Ends,
) -> Option<usize> {
    let (v6, udp) = (sock.v6, sock.udp);
    let index = usize::from(reply.seq.wrapping_sub(base));
    let req = requests.get_mut(index)?;
    if req.done {
        return None;
    }
    req.done = true;
    let ttl = req.ttl;
    let rtt = icmp::rtt(req.sent, req.sent_wall, reply.now, reply.wall);
    let hop = hops.get_mut(usize::from(ttl) - 1)?;
    hop.received += 1;
    hop.rtt_ms.push(micros_as_ms(rtt));
    match hop.addr {
        None => hop.addr = Some(reply.from),
        Some(a) if a != reply.from && !hop.also.contains(&reply.from) => hop.also.push(reply.from),
        Some(_) => {}
    }
    let end = |ends: &mut Ends| {
        ends.end_ttl = Some(ends.end_ttl.map_or(ttl, |e| e.min(ttl)));
    };
    match reply.error {
        None => {
            ends.reached = true;
            end(ends);
        }
        Some((ty, _)) if is_time_exceeded(v6, ty) => {}
        Some((ty, code)) if udp && is_port_unreachable(v6, ty, code) => {
            ends.reached = true;
            end(ends);
        }
        Some((ty, code)) => {
            let what = icmp::classify_icmp(v6, ty, code)
                .err()
                .unwrap_or("destination unreachable");
            hop.unreachable = Some(format!("{what} (type {ty}, code {code})"));
            end(ends);
        }
    }
    Some(index)
}

/// Milliseconds to the microsecond (what the clocks here resolve honestly).
fn micros_as_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

/// Silent TTLs in a row at the top of what was sent, all of whose requests
/// are settled: counted down from the highest TTL sent, stopping at the
/// first hop that answered or still waits.
fn silent_run(hops: &[Hop], requests: &[Request]) -> u8 {
    let settled = |ttl: u8| {
        requests.iter().any(|r| r.ttl == ttl) && requests.iter().all(|r| r.ttl != ttl || r.done)
    };
    let mut run = 0u8;
    for h in hops.iter().rev() {
        if h.sent == 0 {
            continue;
        }
        if h.received > 0 {
            break;
        }
        if !settled(h.ttl) {
            break;
        }
        run = run.saturating_add(1);
    }
    run
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
