//! The period lifecycle shared by outages and slow periods.

use std::time::Duration;

use jiff::Timestamp;

/// A moment: wall-clock time and monotonic offset since an arbitrary fixed epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub wall: Timestamp,
    pub mono: Duration,
}

/// `ts` truncated to whole milliseconds (the journal's precision).
pub fn truncate_ms(ts: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts)
}
