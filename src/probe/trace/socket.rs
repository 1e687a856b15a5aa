//! The socket of one trace: ICMP (datagram with `IP_RECVERR`, else raw) or
//! UDP, its TTL, sending a request, and reading the answers off the normal
//! and the error queue.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{SockAddr, Socket};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;
use tracing::debug;

use super::model::TraceError;
use crate::config::TraceProtocol;
use crate::probe::icmp::socket::{IcmpMode, open_socket, recv_one};
use crate::probe::icmp::wire::{decode, write_echo};

/// Messages read per wake-up and queue before yielding.
const RECV_BATCH: usize = 64;

/// An answer to one of our requests.
pub(super) struct Reply {
    pub(super) seq: u16,
    pub(super) from: IpAddr,
    /// ICMP type and code of an error; `None` for the echo reply.
    pub(super) error: Option<(u8, u8)>,
    pub(super) now: Instant,
    pub(super) wall: Option<Duration>,
}

/// The socket of one trace.
pub(super) struct TraceSocket {
    pub(super) fd: AsyncFd<Socket>,
    pub(super) mode: IcmpMode,
    pub(super) v6: bool,
    /// RAW mode: our identifier (DGRAM: the kernel's).
    pub(super) ident: u16,
    /// UDP datagrams rather than ICMP echo requests.
    pub(super) udp: bool,
}

impl TraceSocket {
    pub(super) fn open(v6: bool, protocol: TraceProtocol) -> Result<Self, TraceError> {
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
            open_socket(v6).map_err(TraceError::Setup)?
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
        // See the ICMP prober's `Family::open` on the deprecation.
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

    pub(super) fn set_ttl(&self, ttl: u8) -> io::Result<()> {
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
    pub(super) fn send(&self, dest: IpAddr, seq: u16, payload: &[u8]) -> io::Result<()> {
        let (packet, addr) = if self.udp {
            (payload.to_vec(), SocketAddr::new(dest, seq))
        } else {
            let mut packet = vec![0u8; 8 + payload.len()];
            write_echo(&mut packet, self.v6, self.ident, seq, payload);
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
    pub(super) fn drain(&self, dest: IpAddr, buf: &mut [u8], out: &mut Vec<Reply>) {
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
            match recv_one(sock, buf, &mut cmsg) {
                Ok(r) => {
                    let now = Instant::now();
                    let (Some(from), Some(packet)) = (r.from, buf.get(..r.len)) else {
                        continue;
                    };
                    let Some(a) = decode(packet, from, raw_v4) else {
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
