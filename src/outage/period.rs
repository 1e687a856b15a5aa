//! One period lifecycle, shared by outages (the [detector](super::detector))
//! and slow periods (the [slow-period tracker](super::slow)): a period of a
//! group is *pending* (judged on, not announced: its cause is settling), then
//! *open* (announced, with an id), then *ended*. This module owns what both
//! kinds of period do alike; each owner keeps only its own judgement (which
//! groups are down; which thresholds trip) and its own records.
//!
//! - Adoption after a restart: a period the previous run left open is
//!   [`Carried`] over. Seen on again it [resumes](Carried::resume) under its
//!   id with a gap from its last sign of life; never seen on again it
//!   [ends unseen](Carried::end_unseen) at its last sign of life
//!   (`end_observed: false`), the time since as a gap.
//! - Time: an open period's wall times are its start plus the monotonic time
//!   since ([`Open::wall_at`]), so a wall-clock step cannot bend it; a
//!   resumed one counts from the moment it was seen again, and its duration
//!   is a wall difference ([`DurationClock::Wall`]).
//! - Accounting: [`Accrual`] hands out the time a period was on, up to the
//!   moment its owner vouches for (the first success of a recovery, the end
//!   the evidence dates), never over a stall.
//! - Ids: `<start unix ms>-<group><suffix>`, `-N` when taken ([`mint`]).
//! - Causes: the farthest-upstream group on the `needs` chain whose own
//!   judgement says it was affected ([`farthest_upstream`]).

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

use super::ids::Ids;
use crate::journal::{DurationClock, Gap};

#[cfg(test)]
mod tests;

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

/// `ts` plus `d`, at the journal's precision.
pub(crate) fn add(ts: Timestamp, d: Duration) -> Timestamp {
    truncate_ms(ts.checked_add(d).unwrap_or(ts))
}

/// Seconds from `from` to `to` on the wall clock (never negative).
pub(crate) fn wall_seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

/// A new period id: `<start unix ms>-<group><suffix>` (`-2`, `-3`, … when taken).
pub(crate) fn mint(ids: &mut Ids, start: Timestamp, group: &str, suffix: &str) -> String {
    ids.mint(format!("{}-{group}{suffix}", start.as_millisecond()))
}

/// A period the previous run left open, with what its owner keeps of it (`X`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Carried<X> {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    /// Gaps already recorded for it.
    pub gaps: Vec<Gap>,
    /// The last moment it was known to be on (the previous run's last sign of life).
    pub last_seen: Timestamp,
    pub extra: X,
}

impl<X> Carried<X> {
    /// The period `id` of group cause `cause`, on from `start` until at
    /// least `last_seen`, with the gaps recorded so far and its owner's part.
    pub fn new(
        id: String,
        cause: String,
        start: Timestamp,
        gaps: Vec<Gap>,
        last_seen: Timestamp,
        extra: X,
    ) -> Self {
        Carried {
            id,
            cause,
            start,
            gaps,
            last_seen,
            extra,
        }
    }

    /// Seen on again from `at`: it goes on under its id, with the gap from its
    /// last sign of life to `at`. `extra` makes the open period's own part.
    pub fn resume<Y>(self, at: Stamp, extra: impl FnOnce(X) -> Y) -> (Gap, Open<Y>) {
        let gap = Gap {
            from: self.last_seen,
            to: at.wall.max(self.last_seen),
        };
        let mut gaps = self.gaps;
        gaps.push(gap);
        let open = Open {
            id: self.id,
            cause: self.cause,
            start: self.start,
            start_mono: None,
            resumed: Some(at),
            gaps,
            extra: extra(self.extra),
        };
        (gap, open)
    }

    /// Never seen on again by this run (it is found over at `seen_again`): it
    /// ended at its last sign of life, unobserved, with the time up to
    /// `seen_again` as a gap (merged with the gaps it touches when `merge`).
    pub fn end_unseen(self, seen_again: Timestamp, merge: bool) -> Closed<X> {
        let mut gaps = self.gaps;
        let gap = Gap {
            from: self.last_seen,
            to: truncate_ms(seen_again).max(self.last_seen),
        };
        if merge {
            crate::journal::push_gap(&mut gaps, gap);
        } else {
            gaps.push(gap);
        }
        Closed {
            id: self.id,
            cause: self.cause,
            start: self.start,
            end: self.last_seen,
            duration_seconds: wall_seconds(self.start, self.last_seen),
            clock: DurationClock::Wall,
            end_observed: false,
            gaps,
            extra: self.extra,
        }
    }
}

/// An announced period (or a carried one seen on again), with its owner's part `X`.
#[derive(Debug, Clone)]
pub(crate) struct Open<X> {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    /// Set when it started in this process.
    pub start_mono: Option<Duration>,
    /// Set when it was carried over from a previous run and seen on again.
    pub resumed: Option<Stamp>,
    pub gaps: Vec<Gap>,
    pub extra: X,
}

impl<X> Open<X> {
    /// A period announced by this process, started at `start`.
    pub fn new(id: String, cause: String, start: Stamp, gaps: Vec<Gap>, extra: X) -> Self {
        Open {
            id,
            cause,
            start: start.wall,
            start_mono: Some(start.mono),
            resumed: None,
            gaps,
            extra,
        }
    }

    /// The wall time of moment `s` in this period's frame: its start plus the
    /// monotonic time since (so that a wall-clock step cannot bend it, and
    /// its end and its gaps line up to the millisecond).
    pub fn wall_at(&self, s: Stamp) -> Timestamp {
        match (self.start_mono, self.resumed) {
            (Some(start_mono), _) => add(self.start, s.mono.saturating_sub(start_mono)),
            (None, Some(resumed)) => add(resumed.wall, s.mono.saturating_sub(resumed.mono)),
            (None, None) => s.wall,
        }
    }

    /// Earliest mono this process vouches for.
    pub fn floor(&self) -> Duration {
        self.start_mono
            .or(self.resumed.map(|r| r.mono))
            .unwrap_or(Duration::ZERO)
    }

    /// Ends it at `at` (seen: `end_observed`), in its own frame: a monotonic
    /// duration when it started in this process, a wall one otherwise.
    pub fn close(self, at: Stamp, end_observed: bool) -> Closed<X> {
        let end = self.wall_at(at);
        let (duration_seconds, clock) = match self.start_mono {
            Some(start_mono) => (
                at.mono.saturating_sub(start_mono).as_secs_f64(),
                DurationClock::Monotonic,
            ),
            None => (wall_seconds(self.start, end), DurationClock::Wall),
        };
        Closed {
            id: self.id,
            cause: self.cause,
            start: self.start,
            end,
            duration_seconds,
            clock,
            end_observed,
            gaps: self.gaps,
            extra: self.extra,
        }
    }
}

/// An ended period, ready to become its owner's end record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Closed<X> {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    /// With `end_observed: false`: the last moment it was known on.
    pub end: Timestamp,
    pub duration_seconds: f64,
    pub clock: DurationClock,
    pub end_observed: bool,
    pub gaps: Vec<Gap>,
    pub extra: X,
}

impl<X> Closed<X> {
    /// The record's common part, and its owner's.
    pub fn split(self) -> (Closed<()>, X) {
        let c = Closed {
            id: self.id,
            cause: self.cause,
            start: self.start,
            end: self.end,
            duration_seconds: self.duration_seconds,
            clock: self.clock,
            end_observed: self.end_observed,
            gaps: self.gaps,
            extra: (),
        };
        (c, self.extra)
    }
}

/// Where a group's period is: none, pending (`P`: what waits with it), open.
#[derive(Debug, Clone)]
pub(crate) enum Phase<P, O> {
    Idle,
    Pending(P),
    Open(Open<O>),
}

impl<P, O> Phase<P, O> {
    pub fn is_idle(&self) -> bool {
        matches!(self, Phase::Idle)
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, Phase::Pending(_))
    }

    pub fn open(&self) -> Option<&Open<O>> {
        match self {
            Phase::Open(o) => Some(o),
            _ => None,
        }
    }

    pub fn open_mut(&mut self) -> Option<&mut Open<O>> {
        match self {
            Phase::Open(o) => Some(o),
            _ => None,
        }
    }

    /// Takes the open period out, leaving it idle (a pending one stays).
    pub fn take_open(&mut self) -> Option<Open<O>> {
        match std::mem::replace(self, Phase::Idle) {
            Phase::Open(o) => Some(o),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Takes the pending period out, leaving it idle (an open one stays).
    pub fn take_pending(&mut self) -> Option<P> {
        match std::mem::replace(self, Phase::Idle) {
            Phase::Pending(p) => Some(p),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// How many recent periods a group remembers for judging causes.
const RECENT: usize = 16;

/// One group's periods: the current one, one carried over from the previous
/// run, recent ended ones (for causes) and the time not handed out yet.
#[derive(Debug, Clone)]
pub(crate) struct Life<A, P, O> {
    pub phase: Phase<P, O>,
    pub carried: Option<Carried<A>>,
    /// Recent ended periods, `(from, to)` in mono, oldest first.
    recent: VecDeque<(Duration, Duration)>,
    pub time: Accrual,
}

impl<A, P, O> Default for Life<A, P, O> {
    fn default() -> Self {
        Life {
            phase: Phase::Idle,
            carried: None,
            recent: VecDeque::new(),
            time: Accrual::default(),
        }
    }
}

impl<A, P, O> Life<A, P, O> {
    /// Remembers an ended period `(from, to)` in mono (the oldest of
    /// [`RECENT`] is forgotten).
    pub fn remember(&mut self, from: Duration, to: Duration) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((from, to));
    }

    /// The recent ended periods, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &(Duration, Duration)> {
        self.recent.iter()
    }

    /// Id of the period open (announced or carried over).
    pub fn open_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Open(o) => Some(o.id.as_str()),
            _ => self.carried.as_ref().map(|a| a.id.as_str()),
        }
    }
}

/// Hands a carried-over period to its group's `life` (when the group
/// exists: `false` otherwise), its id taken for good.
pub(crate) fn adopt<A, P, O>(
    ids: &mut Ids,
    life: Option<&mut Life<A, P, O>>,
    c: Carried<A>,
) -> bool {
    match life {
        Some(l) => {
            ids.take(&c.id);
            l.carried = Some(c);
            true
        }
        None => false,
    }
}

/// The time a period was on, handed out as it passes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accrual {
    /// Accounted up to here (mono) while a period runs.
    accounted: Option<Duration>,
    /// Time of ended periods (or before a stall) not yet handed out.
    owed: Duration,
}

impl Accrual {
    /// A period runs from `at`.
    pub fn begin(&mut self, at: Duration) {
        self.accounted = Some(at);
    }

    /// The period stopped at `at`: what ran since the last hand-out is owed.
    pub fn stop(&mut self, at: Duration) {
        if let Some(acc) = self.accounted.take() {
            self.owed += at.saturating_sub(acc);
        }
    }

    /// Nothing was observed from `from` to `to`: not time on.
    pub fn stall(&mut self, from: Duration, to: Duration) {
        if let Some(acc) = self.accounted.as_mut() {
            self.owed += from.saturating_sub(*acc);
            *acc = (*acc).max(to);
        }
    }

    /// Whether there is anything to hand out (a period runs, or time is owed).
    pub fn due(&self) -> bool {
        self.accounted.is_some() || !self.owed.is_zero()
    }

    /// The time to hand out now, counting a running period up to `certain`
    /// (the latest moment its owner vouches it was on); `None` for none.
    pub fn take(&mut self, certain: Duration) -> Option<Duration> {
        let mut add = std::mem::take(&mut self.owed);
        if let Some(acc) = self.accounted.as_mut()
            && certain > *acc
        {
            add += certain - *acc;
            *acc = certain;
        }
        (!add.is_zero()).then_some(add)
    }
}

/// Groups `0..n` ordered upstream first (`needs(g)`: the group `g` needs).
pub(crate) fn upstream_first(n: usize, needs: impl Fn(usize) -> Option<usize>) -> Vec<usize> {
    let depth = |mut g: usize| {
        let mut d = 0;
        while let Some(u) = needs(g) {
            d += 1;
            g = u;
            if d > n {
                break;
            }
        }
        d
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|g| depth(*g));
    order
}

/// The cause of group `g`'s period (of `n` groups): the farthest-upstream
/// group on its `needs` chain that `affected` says was affected
/// (`Some(true)`), else `g` itself; `None` while `affected` cannot tell yet
/// for one of them.
pub(crate) fn farthest_upstream(
    g: usize,
    n: usize,
    needs: impl Fn(usize) -> Option<usize>,
    mut affected: impl FnMut(usize) -> Option<bool>,
) -> Option<usize> {
    let mut cause = g;
    let mut cur = needs(g);
    let mut hops = 0;
    while let Some(u) = cur {
        hops += 1;
        if hops > n {
            break;
        }
        cur = needs(u);
        match affected(u) {
            Some(true) => cause = u,
            Some(false) => {}
            None => return None,
        }
    }
    Some(cause)
}
