//! Stall detection: periods in which the running daemon observed nothing.
//!
//! Two clocks tell: the service's tick (every [`TICK`]) finding that its
//! monotonic clock jumped by more than the threshold since the last check —
//! the process did not run (SIGSTOP, a VM pause, a swap storm, a starved
//! runtime) — and `CLOCK_BOOTTIME` advancing past `CLOCK_MONOTONIC`, which
//! only a system suspend does (the monotonic clock stops while suspended).
//!
//! The detector works in *elapsed* time: the monotonic offset plus the time
//! the system spent suspended before it, so that an outage spanning a suspend
//! lasts as long as it did and a target's observations either side of one are
//! as far apart as they were.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use nix::time::{ClockId, clock_gettime};

use super::detector::Stamp;
use crate::journal::{StallCause, Stalled};

/// How often the service checks its clocks.
pub const TICK: Duration = Duration::from_millis(250);

/// The smallest stall that is recorded.
pub const MIN_THRESHOLD: Duration = Duration::from_secs(2);

/// Stalls kept to judge results that arrive after them (a probe's result
/// arrives one timeout after its start at most).
const KEEP: usize = 16;

/// The stall threshold for a configuration whose smallest probe interval is
/// `min_interval`: `max(2 s, 2 × min_interval)`. Below it, a delay costs no
/// more than the one probe any target may miss anyway.
pub fn threshold(min_interval: Option<Duration>) -> Duration {
    min_interval.map_or(MIN_THRESHOLD, |i| MIN_THRESHOLD.max(i.saturating_mul(2)))
}

/// Time spent in system suspend since boot (`CLOCK_BOOTTIME` −
/// `CLOCK_MONOTONIC`), or `None` where those clocks cannot be read.
pub fn suspended_since_boot() -> Option<Duration> {
    let mono = Duration::from(clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?);
    let boot = Duration::from(clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?);
    Some(boot.saturating_sub(mono))
}

/// A detected stall: the journal event, and its bounds in the detector's clocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub event: Stalled,
    pub from: Stamp,
    pub to: Stamp,
}

/// The clocks' last check and what was found; shared by the service's tick
/// and its probe-result path, so that whichever runs first after a stall
/// detects it, once.
#[derive(Debug)]
pub struct StallWatch {
    threshold: Duration,
    /// Monotonic offset and wall time of the last check.
    last_mono: Duration,
    last_wall: Timestamp,
    /// `CLOCK_BOOTTIME − CLOCK_MONOTONIC` at the last check.
    last_suspended: Option<Duration>,
    /// Suspended time since start, and from which monotonic offset on each
    /// total applies.
    marks: VecDeque<(Duration, Duration)>,
    /// Recent stalls (for results measured across them).
    recent: VecDeque<Detected>,
    /// Stalls the detector has not been told about yet.
    unseen: Vec<Detected>,
}

impl StallWatch {
    /// Starts watching at monotonic offset `mono` and wall time `wall`.
    pub fn new(
        threshold: Duration,
        mono: Duration,
        wall: Timestamp,
        suspended: Option<Duration>,
    ) -> Self {
        Self {
            threshold,
            last_mono: mono,
            last_wall: wall,
            last_suspended: suspended,
            marks: VecDeque::new(),
            recent: VecDeque::new(),
            unseen: Vec::new(),
        }
    }

    /// Suspended time accrued before monotonic offset `mono`.
    fn offset(&self, mono: Duration) -> Duration {
        self.marks
            .iter()
            .rev()
            .find(|(at, _)| *at <= mono)
            .map_or(Duration::ZERO, |(_, total)| *total)
    }

    /// The detector's clock for monotonic offset `mono`: plus the time the
    /// system was suspended before it.
    pub fn elapsed(&self, mono: Duration) -> Duration {
        mono + self.offset(mono)
    }

    /// Checks the clocks at monotonic offset `mono`, wall time `wall` and
    /// suspended-since-boot `suspended`; returns a stall found since the last
    /// check (also kept for [`Self::take_unseen`] and [`Self::crossed`]).
    pub fn check(
        &mut self,
        mono: Duration,
        wall: Timestamp,
        suspended: Option<Duration>,
    ) -> Option<Stalled> {
        if mono < self.last_mono {
            return None; // an older reading raced a newer one
        }
        let before = self.offset(self.last_mono);
        let slept = match (self.last_suspended, suspended) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        if suspended.is_some() {
            self.last_suspended = suspended;
        }
        if !slept.is_zero() {
            if self.marks.len() == KEEP {
                self.marks.pop_front();
            }
            self.marks.push_back((mono, before + slept));
        }
        let jump = mono - self.last_mono;
        let cause = if slept > self.threshold {
            Some(StallCause::SystemSuspended)
        } else if jump > self.threshold {
            Some(StallCause::ProcessStopped)
        } else {
            None
        };
        let from = Stamp {
            wall: self.last_wall,
            mono: self.last_mono + before,
        };
        self.last_mono = mono;
        self.last_wall = wall;
        let cause = cause?;
        let to = Stamp {
            wall: wall.max(from.wall),
            mono: self.elapsed(mono),
        };
        let event = Stalled {
            from: from.wall,
            to: to.wall,
            cause,
            seconds: (to.mono - from.mono).as_secs_f64(),
        };
        let found = Detected {
            event: event.clone(),
            from,
            to,
        };
        if self.recent.len() == KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(found.clone());
        self.unseen.push(found);
        Some(event)
    }

    /// Stalls the detector has not been told about, oldest first.
    pub fn take_unseen(&mut self) -> Vec<Detected> {
        std::mem::take(&mut self.unseen)
    }

    /// The stall, if any, that stopped a probe running over `[start,
    /// deadline]` (elapsed time): one that began before its deadline and
    /// ended after its start.
    pub fn crossed(&self, start: Duration, deadline: Duration) -> Option<&Detected> {
        self.recent
            .iter()
            .find(|d| d.from.mono < deadline && d.to.mono > start)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::outage::testutil::wall;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn threshold_is_two_seconds_or_two_intervals() {
        assert_eq!(threshold(None), secs(2.0));
        assert_eq!(threshold(Some(secs(0.5))), secs(2.0));
        assert_eq!(threshold(Some(secs(5.0))), secs(10.0));
    }

    #[test]
    fn a_jump_of_the_monotonic_clock_is_a_stopped_process() {
        let mut w = StallWatch::new(secs(2.0), secs(0.0), wall(0.0), Some(secs(100.0)));
        for i in 1..8 {
            let t = i as f64 * 0.25;
            assert!(w.check(secs(t), wall(t), Some(secs(100.0))).is_none());
        }
        let s = w
            .check(secs(31.75), wall(31.75), Some(secs(100.0)))
            .unwrap();
        assert_eq!(s.cause, StallCause::ProcessStopped);
        assert_eq!((s.from, s.to), (wall(1.75), wall(31.75)));
        assert!((s.seconds - 30.0).abs() < 1e-9);
        let d = w.take_unseen();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].from.mono, d[0].to.mono), (secs(1.75), secs(31.75)));
        assert!(w.take_unseen().is_empty(), "handed over once");
        // The next check is not a stall again; time is not shifted.
        assert!(w.check(secs(32.0), wall(32.0), Some(secs(100.0))).is_none());
        assert_eq!(w.elapsed(secs(32.0)), secs(32.0));
        // A probe from 1.5 with its deadline at 2.5 was cut by the stall; one after it was not.
        assert!(w.crossed(secs(1.5), secs(2.5)).is_some());
        assert!(w.crossed(secs(31.8), secs(32.8)).is_none());
        assert!(w.crossed(secs(0.5), secs(1.5)).is_none());
    }

    #[test]
    fn boottime_passing_monotonic_is_a_suspend_and_shifts_elapsed_time() {
        let mut w = StallWatch::new(secs(2.0), secs(0.0), wall(0.0), Some(secs(100.0)));
        assert!(w.check(secs(0.25), wall(0.25), Some(secs(100.0))).is_none());
        // Suspended for 600 s: the monotonic clock barely moved, the wall clock did.
        let s = w.check(secs(0.5), wall(600.5), Some(secs(700.0))).unwrap();
        assert_eq!(s.cause, StallCause::SystemSuspended);
        assert_eq!((s.from, s.to), (wall(0.25), wall(600.5)));
        assert!((s.seconds - 600.25).abs() < 1e-9);
        let d = w.take_unseen();
        assert_eq!((d[0].from.mono, d[0].to.mono), (secs(0.25), secs(600.5)));
        assert_eq!(w.elapsed(secs(0.1)), secs(0.1), "before the suspend");
        assert_eq!(w.elapsed(secs(1.0)), secs(601.0), "after it");
        // A short suspend still shifts the clock but is no stall.
        assert!(w.check(secs(1.0), wall(601.5), Some(secs(700.5))).is_none());
        assert_eq!(w.elapsed(secs(2.0)), secs(602.5));
    }

    #[test]
    fn suspend_clocks_are_readable_here() {
        assert!(suspended_since_boot().is_some());
    }
}
