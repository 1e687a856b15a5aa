//! Opening an ICMP socket (the privilege story: datagram, else raw, else
//! the advice), and reading one packet with the kernel's receive stamp.
//! Shared by the ICMP prober and the path tracer.

use std::io::{self, IoSliceMut};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::time::Instant;

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
pub(in crate::probe) fn open_socket(v6: bool) -> Result<(Socket, IcmpMode), IcmpSetupError> {
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

/// CLOCK_REALTIME now, as the kernel's receive stamps read it.
pub(in crate::probe) fn wall_now() -> Option<Duration> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok()
}

/// The RTT from the send instants and the receipt: the kernel's stamp when it
/// is consistent with the monotonic clock, else the monotonic reading.
pub(in crate::probe) fn rtt(
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
pub(in crate::probe) struct Received {
    pub(in crate::probe) len: usize,
    pub(in crate::probe) from: Option<IpAddr>,
    pub(in crate::probe) wall: Option<Duration>,
}

/// Reads one packet without waiting, with its sender and the kernel's
/// receive stamp (`SO_TIMESTAMPNS`) when there is one.
pub(in crate::probe) fn recv_one(
    sock: &Socket,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> io::Result<Received> {
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
