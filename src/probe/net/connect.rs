//! Opening a TCP connection by a deadline, and naming why it failed.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::probe::{Outcome, Phase, Reason};

/// Connects to `addr` by `deadline`. Returns the connect time, or the failure
/// as an outcome, plus the stream (closed by dropping).
pub async fn connect(
    addr: SocketAddr,
    deadline: Instant,
) -> (
    Result<std::time::Duration, Outcome>,
    Option<tokio::net::TcpStream>,
) {
    let socket = match if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    } {
        Ok(s) => s,
        Err(e) => return (Err(classify(&e, addr)), None),
    };
    // A probe connection carries no data: close with RST rather than leaving
    // TIME_WAIT sockets behind at thousands of probes a second.
    let _ = socket.set_zero_linger();
    let start = Instant::now();
    match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
        Ok(Ok(stream)) => (Ok(start.elapsed()), Some(stream)),
        Ok(Err(e)) => (Err(classify(&e, addr)), None),
        Err(_) => (
            Err(Outcome::Timeout {
                phase: Some(Phase::Connect),
            }),
            None,
        ),
    }
}

/// Maps a connect error to its distinct reason: refused, unreachable, blocked, other.
pub fn classify(e: &io::Error, addr: SocketAddr) -> Outcome {
    let reason = match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectRefused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Reason::Unreachable,
        io::ErrorKind::PermissionDenied => Reason::Blocked,
        io::ErrorKind::TimedOut => {
            return Outcome::Timeout {
                phase: Some(Phase::Connect),
            };
        }
        io::ErrorKind::ConnectionReset => Reason::ConnectionReset,
        _ => match e.raw_os_error() {
            // EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENONET, EADDRNOTAVAIL (no source address)
            Some(113) | Some(101) | Some(112) | Some(64) | Some(99) => Reason::Unreachable,
            Some(1) => Reason::Blocked,
            _ => Reason::Io,
        },
    };
    Outcome::error(reason, format!("failed to connect to {addr}: {e}"))
}
