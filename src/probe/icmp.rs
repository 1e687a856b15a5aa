//! ICMP echo probe over one shared socket per address family.
//!
//! One `surge_ping::Client` (one socket and one receive task) serves every
//! target of its family: N raw sockets would each receive a copy of every ICMP
//! packet on the host. The unprivileged datagram socket is tried first and
//! surge falls back to a raw socket by itself; the mode actually obtained is
//! read back from the socket.
//!
//! Matching: surge pairs a reply with its request by (host, identifier,
//! sequence), but in DGRAM mode the kernel owns the identifier (it is the
//! socket's "port"), so only (host, sequence) distinguishes requests. Each
//! target therefore keeps its own increasing sequence, and targets configured
//! with the same host start evenly spaced apart in the 16-bit sequence space,
//! so neither a concurrent request nor a late reply of one target is taken for
//! the other's. A target's sequence repeats only after 65536 of its probes,
//! and an RTT at or above the timeout is discarded.
//!
//! ICMP errors: an unconnected DGRAM socket never sees them (the kernel drops
//! them), so an unreachable host reads as a timeout. In RAW mode surge returns
//! the error as `Ok`, matched through the request it quotes; anything but an
//! echo reply becomes `Reason::Unreachable` with its type and code.
//!
//! RTT accuracy: surge takes the send instant after `send_to` returns and the
//! receive instant in its receive task right after `recv_from` returns, both
//! in userspace; the probe reports that difference, the closest to the wire
//! the crate allows. `ping(8)` stamps the send before `sendmsg` and the receipt
//! in the kernel. Measured on loopback (`examples/icmp_rtt.rs`, 500 pings each,
//! 2 busy cores): surge median 23-33 µs against ping(8) mean 32-39 µs, i.e.
//! 5-15 µs low, in RAW and DGRAM mode, IPv4 and IPv6. In 2-8 % of loopback
//! pings the reply is handled before `send_to` returns and surge reads 0; the
//! probe then reports the time around the whole `ping()` call instead, which
//! reads 45-65 µs high (two task wake-ups). Off loopback the reply cannot
//! beat the send and the error stays at the ~10 µs scale.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Info, Outcome, Phase, Phases, ProbeError, Reason, Report, resolve};
use crate::config::{Config, IcmpSpec, Target, TargetSpec};

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

    fn of(sock_type: Type) -> Self {
        if sock_type == Type::RAW {
            IcmpMode::Raw
        } else {
            IcmpMode::Dgram
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

impl IcmpSetupError {
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

/// One address family's shared socket.
struct Family {
    client: Client,
    mode: IcmpMode,
    /// RAW mode only: bounds the requests in flight (see [`RAW_IN_FLIGHT`]).
    in_flight: Option<Semaphore>,
}

/// Echo requests in flight at once on a raw socket. A raw socket queues every
/// ICMP packet of the host (on loopback our own requests too) in its default
/// 208 KiB receive buffer, which holds about 180 small packets; 200 concurrent
/// loopback pings lost ~12 % of replies to overflow. Datagram sockets get only
/// their own replies, demultiplexed by the kernel, and are not limited.
/// (Raising `SO_RCVBUF` would need the socket's fd as `AsFd`, which surge only
/// exposes as a raw fd, and `unsafe` is not used here.)
pub const RAW_IN_FLIGHT: usize = 64;

/// Per-target request state: a fixed identifier and an increasing sequence.
struct TargetState {
    ident: u16,
    seq: AtomicU16,
}

/// Tries left after a sequence collision before the probe gives up.
const COLLISION_RETRIES: usize = 4;

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
        let v4 = open(ICMP::V4).map_err(|e| setup_error(Domain::IPV4, Protocol::ICMPV4, e))?;
        let v6 = open(ICMP::V6).map_err(|e| {
            warn!(error = %e, "failed to open an ICMPv6 socket; IPv6 ICMP targets will fail");
            format!("IPv6 ICMP is unavailable: failed to open an ICMPv6 socket: {e}")
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

    /// Sends one echo request for target `index` and waits for its reply until `deadline`.
    pub async fn probe(
        &self,
        index: usize,
        target: &Target,
        spec: &IcmpSpec,
        deadline: Instant,
    ) -> Report {
        let (ip, resolve_time) =
            match tokio::time::timeout_at(deadline, resolve::resolve(&spec.host, spec.ip_version))
                .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(outcome)) => return Report::new(outcome),
                Err(_) => {
                    return Report::new(Outcome::Timeout {
                        phase: Some(Phase::Resolve),
                    });
                }
            };
        let info = Info {
            peer: Some(ip),
            ..Info::default()
        };
        let outcome = match self.echo(index, target, spec, ip, deadline).await {
            Ok(rtt) => {
                let mut phases = Phases::default();
                phases.set(Phase::Resolve, resolve_time);
                Outcome::Success {
                    duration: rtt,
                    phases,
                }
            }
            Err(outcome) => outcome,
        };
        Report::with_info(outcome, info)
    }

    async fn echo(
        &self,
        index: usize,
        target: &Target,
        spec: &IcmpSpec,
        ip: IpAddr,
        deadline: Instant,
    ) -> Result<Duration, Outcome> {
        let family = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .map_err(|e| Outcome::error(Reason::Io, e.clone()))?,
        };
        let state = self.targets.get(index).ok_or_else(|| {
            Outcome::error(
                Reason::Io,
                format!("no ICMP state for target index {index} ({})", target.name),
            )
        })?;
        let fallback;
        let payload = match self.payload.get(..spec.payload_size) {
            Some(p) => p,
            None => {
                fallback = payload(spec.payload_size);
                &fallback[..]
            }
        };
        let _permit = match &family.in_flight {
            Some(sem) => match tokio::time::timeout_at(deadline, sem.acquire()).await {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(_)) => return Err(Outcome::error(Reason::Io, "ICMP prober shut down")),
                Err(_) => return Err(Outcome::Timeout { phase: None }),
            },
            None => None,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Outcome::Timeout { phase: None });
        }
        let mut pinger = family.client.pinger(ip, PingIdentifier(state.ident)).await;
        pinger.timeout(remaining);
        if let IpAddr::V6(v6) = ip
            && is_link_local(v6)
        {
            pinger.scope_id(link_local_scope(v6).unwrap_or(0));
        }
        let mut attempt = 0;
        let (packet, wire_rtt, outer_rtt) = loop {
            let seq = PingSequence(state.seq.fetch_add(1, Ordering::Relaxed));
            let start = Instant::now();
            match pinger.ping(seq, payload).await {
                Ok((packet, rtt)) => break (packet, rtt, start.elapsed()),
                // Nothing was sent: another request waits on (host, seq). Skip to the next seq.
                Err(SurgeError::IdenticalRequests { .. }) if attempt + 1 < COLLISION_RETRIES => {
                    attempt += 1;
                }
                Err(e) => return Err(surge_outcome(e, ip)),
            }
        };
        classify_reply(&packet, ip).map_err(Outcome::Error)?;
        let rtt = if wire_rtt.is_zero() {
            outer_rtt
        } else {
            wire_rtt
        };
        if rtt >= target.timeout {
            return Err(Outcome::Timeout { phase: None });
        }
        Ok(rtt)
    }
}

fn open(kind: ICMP) -> io::Result<Family> {
    let config = surge_ping::Config::builder()
        .kind(kind)
        .sock_type_hint(Type::DGRAM)
        .build();
    let client = Client::new(&config)?;
    let mode = IcmpMode::of(client.get_socket().get_type());
    let in_flight = (mode == IcmpMode::Raw).then(|| Semaphore::new(RAW_IN_FLIGHT));
    Ok(Family {
        client,
        mode,
        in_flight,
    })
}

/// Builds the setup error with both underlying errors. surge reports only the
/// first (and names a sysctl that does not exist for IPv6), so each socket
/// type is tried once more here to capture its own error.
fn setup_error(domain: Domain, proto: Protocol, surge_err: io::Error) -> IcmpSetupError {
    let attempt = |ty: Type| Socket::new(domain, ty, Some(proto)).err();
    let dgram = attempt(Type::DGRAM);
    let raw = attempt(Type::RAW);
    let (dgram, raw) = match (dgram, raw) {
        (Some(d), Some(r)) => (d, r),
        (Some(d), None) => (d, surge_err),
        (None, Some(r)) => (surge_err, r),
        (None, None) => (
            surge_err,
            io::Error::other("opened on retry; the failure above came from configuring it"),
        ),
    };
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/path/to/linkwatch".to_string());
    IcmpSetupError { dgram, raw, exe }
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
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// Accepts an echo reply and turns an ICMP error (which surge returns as `Ok`
/// in RAW mode, matched through the request quoted inside it) into an outcome.
fn classify_reply(packet: &IcmpPacket, ip: IpAddr) -> Result<(), ProbeError> {
    let (v6, ty, code, from) = match packet {
        IcmpPacket::V4(p) => (
            false,
            p.get_icmp_type().0,
            p.get_icmp_code().0,
            IpAddr::V4(p.get_source()),
        ),
        IcmpPacket::V6(p) => (
            true,
            p.get_icmpv6_type().0,
            p.get_icmpv6_code().0,
            IpAddr::V6(p.get_source()),
        ),
    };
    classify_icmp(v6, ty, code).map_err(|what| {
        ProbeError::new(
            Reason::Unreachable,
            format!("ICMP echo to {ip} answered by {from}: {what} (type {ty}, code {code})"),
        )
    })
}

/// `Ok` for an echo reply (type 0 in ICMPv4, 129 in ICMPv6), else a description.
fn classify_icmp(v6: bool, ty: u8, code: u8) -> Result<(), &'static str> {
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

/// Maps a surge error to the outcome label it stands for.
fn surge_outcome(e: SurgeError, ip: IpAddr) -> Outcome {
    match e {
        SurgeError::Timeout { .. } => Outcome::Timeout { phase: None },
        SurgeError::IOError(e) => send_error(&e, ip),
        SurgeError::MalformedPacket(e) => Outcome::error(
            Reason::Malformed,
            format!("failed to decode the ICMP reply from {ip}: {e}"),
        ),
        SurgeError::IdenticalRequests { seq, .. } => Outcome::error(
            Reason::Io,
            format!(
                "failed to send ICMP echo to {ip}: sequence {seq} already in flight after {COLLISION_RETRIES} tries"
            ),
        ),
        e @ (SurgeError::ClientDestroyed
        | SurgeError::NetworkError
        | SurgeError::IncorrectBufferSize
        | SurgeError::EchoRequestPacket) => {
            Outcome::error(Reason::Io, format!("failed to ping {ip}: {e}"))
        }
    }
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

/// The interface a link-local address is reached on, from the route that uses
/// it as gateway (how `@gateway` yields link-local IPv6 addresses).
fn link_local_scope(ip: Ipv6Addr) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    let dev = gateway_device(&table, ip)?;
    std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The device of the first route in `/proc/net/ipv6_route` whose next hop is `gw`.
fn gateway_device(table: &str, gw: Ipv6Addr) -> Option<String> {
    table.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let hop = u128::from_str_radix(cols.get(4)?, 16).ok()?;
        (Ipv6Addr::from(hop) == gw).then(|| cols.get(9).map(|d| d.to_string()))?
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use surge_ping::{Icmpv4Packet, Icmpv6Packet};

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
    fn raw_v4_unreachable_is_an_unreachable_error() {
        let packet = Icmpv4Packet::decode(
            &v4_unreachable(),
            Type::RAW,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .unwrap();
        assert_eq!(packet.get_real_dest(), Ipv4Addr::new(10, 9, 9, 9));
        assert_eq!(packet.get_sequence(), PingSequence(7));
        let target: IpAddr = "10.9.9.9".parse().unwrap();
        let err = classify_reply(&IcmpPacket::V4(packet), target).unwrap_err();
        assert_eq!(err.reason, Reason::Unreachable);
        assert!(err.detail.contains("host unreachable"), "{}", err.detail);
        assert!(err.detail.contains("type 3, code 1"), "{}", err.detail);
        assert!(err.detail.contains("10.0.0.1"), "{}", err.detail);
    }

    #[test]
    fn v6_echo_reply_is_accepted() {
        let reply = [129, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4];
        let host: Ipv6Addr = "fd00::2".parse().unwrap();
        let packet = Icmpv6Packet::decode(&reply, host).unwrap();
        assert!(classify_reply(&IcmpPacket::V6(packet), IpAddr::V6(host)).is_ok());
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
    fn surge_timeout_is_a_timeout_without_phase() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            surge_outcome(
                SurgeError::Timeout {
                    seq: PingSequence(3)
                },
                ip
            ),
            Outcome::Timeout { phase: None }
        );
        let collision = SurgeError::IdenticalRequests {
            host: ip,
            ident: None,
            seq: PingSequence(3),
        };
        assert!(
            matches!(surge_outcome(collision, ip), Outcome::Error(e) if e.reason == Reason::Io)
        );
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
    fn gateway_device_is_found_for_link_local_next_hop() {
        let table = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
";
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        assert_eq!(gateway_device(table, gw).as_deref(), Some("eth0"));
        assert_eq!(gateway_device(table, "fe80::2".parse().unwrap()), None);
        assert!(is_link_local(gw));
        assert!(!is_link_local("fd00::1".parse().unwrap()));
    }
}
