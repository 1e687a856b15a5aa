//! `stall`: a period in which the running daemon observed nothing.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::record::gap::Gap;
use crate::journal::ts_ms;

/// Why the process did not observe for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCause {
    /// The process did not run (SIGSTOP, a VM pause, a swap storm, a starved
    /// runtime): its monotonic clock jumped past the service's tick.
    ProcessStopped,
    /// The system was suspended: `CLOCK_BOOTTIME` advanced past `CLOCK_MONOTONIC`.
    SystemSuspended,
}

impl StallCause {
    pub fn as_str(self) -> &'static str {
        match self {
            StallCause::ProcessStopped => "process_stopped",
            StallCause::SystemSuspended => "system_suspended",
        }
    }
}

/// `stall`: a period in which the running daemon observed nothing. It is a gap
/// of every outage it overlaps and is not monitored time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stalled {
    /// Last moment the process was seen running before the stall.
    #[serde(with = "ts_ms")]
    pub from: Timestamp,
    /// First moment it ran again.
    #[serde(with = "ts_ms")]
    pub to: Timestamp,
    pub cause: StallCause,
    /// Length measured by the clock that showed it (monotonic for a stopped
    /// process, boot time for a suspend), in seconds.
    pub seconds: f64,
}

impl Stalled {
    pub fn gap(&self) -> Gap {
        Gap {
            from: self.from,
            to: self.to.max(self.from),
        }
    }
}
