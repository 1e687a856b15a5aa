//! Time at start: whether the system clock is synchronized, and the anchor
//! that ties this process's monotonic offsets to the wall clock.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::detector::truncate_ms;

/// Whether the system clock was synchronized at start, and how that was found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSync {
    pub synchronized: Option<bool>,
    pub check: String,
}

impl ClockSync {
    /// Asks `timedatectl` (systemd-timedated reports the kernel's NTP state from
    /// `adjtimex`); `unsafe` is denied in this crate and no maintained crate wraps
    /// `adjtimex` safely, so without systemd the state is recorded as unknown.
    pub async fn detect() -> Self {
        let mut cmd = tokio::process::Command::new("timedatectl");
        // systemd tools report their exit status to $NOTIFY_SOCKET; keep the
        // child from speaking to the service manager in our name.
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        cmd.args(["show", "-p", "NTPSynchronized", "--value"])
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        match tokio::time::timeout(Duration::from_secs(2), cmd.output()).await {
            Ok(Ok(out)) if out.status.success() => {
                let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let synchronized = match v.as_str() {
                    "yes" => Some(true),
                    "no" => Some(false),
                    _ => None,
                };
                Self {
                    synchronized,
                    check: format!("timedatectl NTPSynchronized={v}"),
                }
            }
            Ok(Ok(out)) => Self {
                synchronized: None,
                check: format!(
                    "unknown: timedatectl failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .next()
                        .unwrap_or("no output")
                ),
            },
            Ok(Err(e)) => Self {
                synchronized: None,
                check: format!("unknown: failed to run timedatectl: {e}"),
            },
            Err(_) => Self {
                synchronized: None,
                check: "unknown: timedatectl did not answer within 2s".to_string(),
            },
        }
    }
}

/// This run's time origin: monotonic offsets are measured from `epoch`, which
/// was at wall time `wall` (truncated to the journal's milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    pub epoch: Instant,
    pub wall: Timestamp,
}

impl Anchor {
    /// Anchors now.
    pub fn now() -> Self {
        Self {
            epoch: Instant::now(),
            wall: truncate_ms(Timestamp::now()),
        }
    }

    /// Monotonic time since the anchor.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }
}
