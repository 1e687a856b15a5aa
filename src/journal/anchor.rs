//! This run's time origin: ties the process's monotonic offsets to the wall
//! clock (the heartbeat records both).

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

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
        let now = Timestamp::now();
        Self {
            epoch: Instant::now(),
            wall: Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now),
        }
    }

    /// Monotonic time since the anchor.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }
}
