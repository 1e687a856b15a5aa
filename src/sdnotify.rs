//! systemd service notification (`sd_notify(3)`): `READY=1` once the HTTP
//! server listens and probing has begun, `WATCHDOG=1` while the scheduler is
//! alive (when the unit sets `WatchdogSec=`), `STOPPING=1` at shutdown.
//!
//! The protocol is one datagram per message to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). Outside
//! systemd the variable is unset and every call is a no-op.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, or nothing when not run by systemd.
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// Half the `WatchdogSec=` the manager asked for, if any.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (honouring `$WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let watchdog_for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .filter(|_| watchdog_for_us)
            .and_then(|u| u.trim().parse::<u64>().ok());
        Self::new(socket.as_deref(), watchdog)
    }

    /// From an explicit socket address and watchdog period (microseconds).
    pub fn new(socket: Option<&str>, watchdog_usec: Option<u64>) -> Self {
        let socket = socket.filter(|s| !s.is_empty()).and_then(|s| match open(s) {
            Ok(pair) => Some(pair),
            Err(e) => {
                tracing::warn!(notify_socket = s, error = %e, "failed to use NOTIFY_SOCKET; systemd notifications disabled");
                None
            }
        });
        let watchdog = match (&socket, watchdog_usec) {
            (Some(_), Some(us)) if us > 0 => Some(Duration::from_micros(us) / 2),
            _ => None,
        };
        Self { socket, watchdog }
    }

    /// How often to send `WATCHDOG=1` (half the manager's timeout), if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (e.g. `READY=1`); failures are logged, never fatal.
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.socket
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            tracing::warn!(state, error = %e, "failed to notify systemd");
        }
    }
}

fn open(spec: &str) -> io::Result<(UnixDatagram, std::os::unix::net::SocketAddr)> {
    let addr = if let Some(name) = spec.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?
    } else {
        std::os::unix::net::SocketAddr::from_pathname(spec)?
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str(), Some(2_000_000));
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(1)));
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn sends_to_abstract_sockets() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("linkwatch-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(Some(&format!("@{name}")), None).notify("STOPPING=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }

    #[test]
    fn without_a_socket_everything_is_a_no_op() {
        let n = Notifier::new(None, Some(1_000_000));
        assert_eq!(n.watchdog_interval(), None);
        n.notify("READY=1");
        let n = Notifier::new(Some("/nonexistent/dir/sock"), None);
        n.notify("READY=1");
    }
}
