//! Time at start: whether the system clock is synchronized (the anchor of
//! monotonic offsets is [`crate::journal::Anchor`]).

use std::time::Duration;

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
