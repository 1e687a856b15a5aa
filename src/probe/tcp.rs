//! TCP connect probe: the time from `connect()` to an established connection.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpSocket;
use tokio::time::Instant;

use super::{Observation, Outcome, Phase, Phases, Reason, resolve};
use crate::config::{Target, TcpSpec};

pub struct TcpProber;

impl Default for TcpProber {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpProber {
    pub fn new() -> Self {
        Self
    }

    pub async fn probe(&self, _target: &Target, spec: &TcpSpec, deadline: Instant) -> Observation {
        let (ip, resolve_time) =
            match resolve::resolve_by(&spec.host, spec.ip_version, deadline).await {
                Ok(r) => r,
                Err(outcome) => return Observation::new(outcome),
            };
        let addr = SocketAddr::new(ip, spec.port);
        let mut report = Observation::new(Outcome::Timeout {
            phase: Some(Phase::Connect),
        });
        report.info.peer = Some(ip);
        let (outcome, _stream) = connect(addr, deadline).await;
        report.outcome = match outcome {
            Ok(connect_time) => {
                let mut phases = Phases::default();
                phases.set(Phase::Resolve, resolve_time);
                phases.set(Phase::Connect, connect_time);
                Outcome::Success {
                    duration: connect_time,
                    phases,
                }
            }
            Err(outcome) => outcome,
        };
        report
    }
}

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
