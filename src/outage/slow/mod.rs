//! Slow periods: the [`SlowTracker`], a pure state machine (no I/O, no clock
//! of its own) fed probe samples with their wall and monotonic times
//! ([`Stamp`]) and the groups' up/down states from the outage
//! [`Detector`](super::detector::Detector); it emits slow-period events and
//! exposes the window figures for metrics. Its periods live the lifecycle of
//! [`period`] (pending, open, ended; adoption, ids, time); this module only
//! judges which thresholds trip, and when a period ends.
//!
//! Names: the code says "slow period" throughout. The contract keeps its
//! older names, unchanged: journal events `degraded_start`,
//! `degraded_resume` and `degraded_end` (the record types
//! [`DegradedStarted`], [`DegradedResumed`], [`DegradedEnded`]), ids ending
//! in `-degraded`, metrics `linkwatch_degraded_*` (hence
//! [`SlowTracker::degraded`] and [`SlowTracker::take_degraded_time`]) and
//! the configuration section `[degraded]`.
//!
//! Files: [`window`] (the sliding window in time buckets and back-dating), [`histogram`],
//! [`end`] (dating the end), [`figures`] (window and period figures,
//! triggers), [`sample`] (the input).
//!
//! Rules (the DESIGN contract, plus the decisions noted here):
//! - Per group, a sliding window of the last `window` holds the probe samples
//!   in time buckets of `min(1 s, window/60)` (`mono` in milliseconds, buckets
//!   aligned to multiples of their width). A bucket holds counts (samples,
//!   loss, successes and how many were over each threshold) and a sparse
//!   log-linear histogram of the latencies; the window's figures are the sums
//!   of its buckets'. A bucket is in the window while `now - start < window`
//!   (`now` being the newest sample or tick of the group), so a sample leaves
//!   with its bucket, up to one bucket width early; a late sample goes into
//!   its own bucket while that is still in the window.
//! - Figures: `loss_ratio` = failed / all over ICMP, TCP and DNS probes. HTTP is
//!   left out: an HTTP failure is as often the server's answer (a 5xx, a TLS
//!   error) as the network, and the issue defines loss over ICMP/TCP/DNS.
//!   `rtt_p50`/`rtt_p95` over successful ICMP/TCP probes, `dns_p95` and
//!   `http_p95` over successful DNS/HTTP probes (their total duration). Failed
//!   probes carry no latency and only count towards loss.
//! - Quantiles are nearest-rank (the `ceil(q·n)`-th smallest). Whether a
//!   quantile is over its threshold is decided exactly (each sample is compared
//!   with the threshold when it arrives and counted in its bucket), so only
//!   the reported values carry the histogram's error: **at most 1 %** relative
//!   (1/128: 64 linear sub-buckets per power of two, the bucket's midpoint
//!   reported; see [`Histogram`]), for latencies up to about 1100 s.
//! - Each figure needs at least `min_samples` samples of its own population in
//!   the window (a p95 of three probes is noise). Throughput has its own rule:
//!   its figure is the median of the successful tests in the window plus the
//!   last successful test while it is younger than `throughput_hold` (tests run
//!   30 minutes apart, so the last one stands for the link until the next);
//!   one test is enough. Failed or partial tests are never figures.
//! - A slow period *trips* when a figure crosses its threshold. Its start is
//!   back-dated to the window's change point for that figure: the "bad" sample
//!   (a loss, an RTT over the threshold, a slow test) from which on the bad
//!   samples exceed the threshold's rate by the most (CUSUM), so the figure
//!   over the rest of the window is over its threshold from there; a step
//!   change is dated to its first bad sample and a stray old one is ignored.
//!   With several triggers, the earliest of their change points. The walk is
//!   over time buckets, a bucket's bad samples taken as its newest: the
//!   change point is exact to the bucket (exact for a step change), and the
//!   start is that bucket's first bad sample.
//! - A tripped slow period is *pending* (the gauge already says degraded) and is
//!   announced only when (a) `settle` has passed since the trip, so that a
//!   failing streak about to become an outage does not leave a slow period in
//!   the journal (the caller sets `settle` to the time the outage detector needs
//!   to call the group down), and (b) its cause is settled.
//! - `cause`: the farthest-upstream group on the `needs` chain that is degraded
//!   (pending, open or ended) or down at the start. An upstream period counts
//!   if it began no later than `start + window/10` (two groups seeing the same
//!   fault date it from their own first bad sample, seconds apart) and had not
//!   ended before `start`. While an upstream group could still trip with such a
//!   start (it has bad samples dated before that moment in its window) the
//!   announcement waits: at most one upstream window.
//! - A slow period ends when every figure has been on the good side for a whole
//!   `window` (hysteresis); the end is back-dated to the first evaluation that
//!   found every figure good, as outages end at the first success.
//! - Down supersedes: when the caller reports a group down, an open slow period
//!   ends at the (back-dated) start of the down period (`superseded: true`), a
//!   pending one is dropped, and the window is cleared; samples are ignored
//!   while down, and after the group is up again only samples from the up
//!   moment on count, so an outage's failures never read as loss afterwards.
//! - Durations are monotonic differences; an end's wall time is the start's wall
//!   time plus that duration. Wall times of window samples are derived from the
//!   newest sample's wall time minus the monotonic difference, at milliseconds.
//! - Ids are `<start unix ms>-<group>-degraded` (a `-N` suffix if taken): they
//!   never collide with outage ids (`<ms>-<group>`) of the same journal.
//! - Cost: amortised O(1) per sample (a counter update and a binary search in
//!   the newest bucket's sparse histogram, a dense histogram add), a bucket's
//!   sparse histogram taken out of the sums as it expires; O(buckets) once per
//!   trip for back-dating. Memory per group, whatever the number of probes:
//!   three histograms of [`BUCKETS`] × 4 bytes (26 KiB), and per time bucket
//!   holding samples ~100 bytes plus 8 per distinct latency bucket hit in it
//!   (at most `window / bucket` buckets: 300 for a 5 m window; about 1.2 KB a
//!   bucket whose samples hit ~128 latency buckets, two octaves, as 10 000
//!   loopback targets do: ~0.4 MB); 72 KiB of period histograms while a slow
//!   period is open.

use std::time::Duration;

use jiff::Timestamp;

use super::detector::State;
use super::ids::Ids;
use super::period::{self, Carried, Closed, Life, Open, Phase, Stamp, truncate_ms};
use crate::interference::{CAUSE, Check};
use crate::journal::record::InterferenceSummary;
pub use crate::journal::{
    DegradedEnded, DegradedResumed, DegradedStarted, DurationClock, EndReason, Figures, Gap,
    PeriodFigures, Trigger,
};
use end::EndTrack;
use figures::PeriodStats;
pub(crate) use figures::median;
use histogram::representative;
pub use histogram::{BUCKETS, Histogram};
pub use sample::{GroupSpec, Sample, SampleKind, Thresholds};
use window::{Fed, Th, Window, ms};

mod end;
mod figures;
mod histogram;
mod sample;
#[cfg(test)]
mod tests;
mod window;

/// What the tracker reports. A few per period edge, never per probe: the
/// size difference of the variants costs nothing worth a box.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum SlowEvent {
    Started(DegradedStarted),
    Resumed(DegradedResumed),
    Ended(DegradedEnded),
}

/// A slow period left open by a previous run, handed to [`SlowTracker::adopt`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptedSlowPeriod {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    pub triggers: Vec<Trigger>,
    pub gaps: Vec<Gap>,
    /// The last moment it was known to be on (the previous run's last sign of life).
    pub last_seen: Timestamp,
}

impl From<AdoptedSlowPeriod> for Carried<Vec<Trigger>> {
    fn from(a: AdoptedSlowPeriod) -> Self {
        Carried::new(a.id, a.cause, a.start, a.gaps, a.last_seen, a.triggers)
    }
}

#[derive(Debug, Clone)]
struct Pending {
    trip: Stamp,
    start: Stamp,
    triggers: u8,
    figures: Figures,
    samples: u64,
    tests: u64,
}

/// What an open slow period keeps besides its lifecycle ([`period`]): every
/// threshold crossed so far and its sampled figures.
#[derive(Debug, Clone)]
struct Slow {
    triggers: u8,
    period: Box<PeriodStats>,
    /// When its cause is `interference`: failures with an interference
    /// reason (and throttled tests), out of all failures (and throttled
    /// tests), over the period so far.
    interference: Option<(u64, u64)>,
}

/// A group's slow periods.
type SlowLife = Life<Vec<Trigger>, Pending, Slow>;

#[derive(Debug)]
struct Track {
    name: String,
    needs: Option<usize>,
    th: Th,
    settle: Duration,
    win: Window,
    state: State,
    down_since: Option<Stamp>,
    /// Samples before this mono (ms) are ignored (the up moment after a down period).
    floor_ms: u64,
    /// Its slow period (pending, open or carried over from the previous
    /// run); recent ended slow and down periods, `(start, end)` in mono;
    /// time not yet handed out.
    life: SlowLife,
    /// First evaluation of the current all-good stretch.
    good_since: Option<Stamp>,
    judged: bool,
    /// Dates the end of the pending or open period.
    end: EndTrack,
    /// The last down period inside the pending or open period: its start,
    /// and its end once up again. The period goes on through it.
    period_down: Option<(Stamp, Option<Stamp>)>,
}

impl Track {
    /// Starts dating the end of a period that starts at `start`, from the
    /// window's samples since then.
    fn begin_end_track(&mut self, start: Stamp) {
        let mut end = EndTrack::new(&self.th);
        let from = ms(start.mono);
        for s in self.win.slots.iter().filter(|s| s.last_ms() >= from) {
            end.feed_slot(s, |ms| self.win.stamp_of(ms));
        }
        for t in self.win.tests.iter().filter(|t| t.at.mono >= start.mono) {
            end.feed(
                Fed::Test(t.bps, t.increase, false, t.throttled),
                t.at,
                &self.th,
            );
        }
        for t in self.win.up_tests.iter().filter(|t| t.at.mono >= start.mono) {
            end.feed(
                Fed::Test(t.bps, t.increase, true, t.throttled),
                t.at,
                &self.th,
            );
        }
        self.end = end;
        self.period_down = None;
    }

    /// The period's end as the evidence dates it: the end so far, unless a
    /// down period followed it with nothing bad after that down period's
    /// end: then the period ended where the outage began, if not before
    /// (`true`: superseded by it).
    fn dated_end(&self, mask: u8, fallback: Stamp) -> (Stamp, bool) {
        let e = self.end.end(mask).unwrap_or(fallback);
        match self.period_down {
            Some((d, up)) if up.is_none_or(|u| e.mono < u.mono) && e.mono >= d.mono => (d, true),
            _ => (e, false),
        }
    }

    fn remember(&mut self, from: Duration, to: Duration) {
        self.life.remember(from, to.max(from));
    }
}

/// The slow period state machine for every group.
#[derive(Debug)]
pub struct SlowTracker {
    groups: Vec<Track>,
    /// Groups ordered upstream first.
    order: Vec<usize>,
    ids: Ids,
    pending: usize,
    now: Option<Stamp>,
}

impl SlowTracker {
    pub fn new(specs: Vec<GroupSpec>) -> Self {
        let n = specs.len();
        let groups: Vec<Track> = specs.into_iter().map(|s| Track::new(s, n)).collect();
        Self {
            order: order_of(&groups),
            groups,
            ids: Ids::default(),
            pending: 0,
            now: None,
        }
    }

    /// Applies a configuration reload at `now`: `specs` are the new groups;
    /// `carry[g]` is the old index of new group `g` when it is unchanged
    /// (same definition and members), and then it keeps its window, state
    /// and open slow period. Every other old group's open slow period ends
    /// at `now`, with `end_reason` `removed` (its group is gone) or
    /// `reconfigured` (redefined: its window starts again, empty).
    pub fn reload(
        &mut self,
        specs: Vec<GroupSpec>,
        carry: &[Option<usize>],
        now: Stamp,
    ) -> Vec<SlowEvent> {
        let mut events = Vec::new();
        for old in 0..self.groups.len() {
            if carry.contains(&Some(old)) {
                continue;
            }
            let reason = if specs.iter().any(|s| s.name == self.groups[old].name) {
                EndReason::Reconfigured
            } else {
                EndReason::Removed
            };
            let before = events.len();
            if let Some(a) = self.groups[old].life.carried.take() {
                events.push(unobserved_end(&self.groups[old].name, a, now.wall, false));
            }
            self.end(old, now, false, &mut events);
            for ev in &mut events[before..] {
                if let SlowEvent::Ended(e) = ev {
                    e.end_reason = Some(reason);
                }
            }
        }
        let n = specs.len();
        let mut old: Vec<Option<Track>> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(Some)
            .collect();
        self.groups = specs
            .into_iter()
            .zip(carry.iter().chain(std::iter::repeat(&None)))
            .map(|(s, c)| {
                let fresh = Track::new(s, n);
                match c.and_then(|o| old.get_mut(o)).and_then(Option::take) {
                    Some(mut t) => {
                        t.needs = fresh.needs;
                        t
                    }
                    None => fresh,
                }
            })
            .collect();
        self.order = order_of(&self.groups);
        self.pending = self
            .groups
            .iter()
            .filter(|t| t.life.phase.is_pending())
            .count();
        events
    }
}

impl Track {
    /// A group of `n` as `s` describes it, nothing known yet.
    fn new(s: GroupSpec, n: usize) -> Self {
        Track {
            name: s.name,
            needs: s.needs.filter(|u| *u < n),
            th: Th::new(&s.thresholds),
            settle: s.settle,
            win: Window::new(),
            state: State::Unknown,
            down_since: None,
            floor_ms: 0,
            life: SlowLife::default(),
            good_since: None,
            judged: false,
            end: EndTrack::new(&Th::new(&s.thresholds)),
            period_down: None,
        }
    }
}

/// Groups ordered upstream first.
fn order_of(groups: &[Track]) -> Vec<usize> {
    period::upstream_first(groups.len(), |g| groups[g].needs)
}

impl SlowTracker {
    /// Hands over a slow period left open by a previous run. When the group next
    /// trips it continues under the same id (a `Resumed` event with the gap);
    /// when a whole window passes without a trip, or the group goes down, it is
    /// closed with `end_observed: false` at `last_seen`. Returns `false` if the
    /// group does not exist.
    pub fn adopt(&mut self, group: &str, d: AdoptedSlowPeriod) -> bool {
        let life = self.groups.iter_mut().find(|g| g.name == group);
        period::adopt(&mut self.ids, life.map(|g| &mut g.life), d.into())
    }

    /// Marks ids as taken (ids already in the journal).
    pub fn reserve_ids<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        self.ids.reserve(ids);
    }

    /// Feeds one probe sample.
    pub fn observe(&mut self, s: &Sample) -> Vec<SlowEvent> {
        let mut events = Vec::new();
        // Wall times are truncated to milliseconds where they leave the module
        // (starts, ends, gaps), not here on the hot path.
        let at = s.at;
        self.bump(at);
        let Some(g) = self.groups.get_mut(s.group) else {
            return events;
        };
        if g.state == State::Down || ms(at.mono) < g.floor_ms {
            return events;
        }
        let Some(fed) = g.win.push(s, &g.th) else {
            return events;
        };
        if !g.life.phase.is_idle() {
            g.end.feed(fed, at, &g.th);
            let tests = u64::from(s.kind.is_throughput() && s.success);
            if let Phase::Open(o) = &mut g.life.phase
                && let Some((signs, of)) = &mut o.extra.interference
            {
                let throttled = s.interference == Some(Check::ThrottledName);
                let lost = !s.success && !s.kind.is_throughput() && s.kind != SampleKind::Http;
                if throttled || lost {
                    *of += 1;
                    *signs += u64::from(throttled || s.interference.is_some());
                }
            }
            match &mut g.life.phase {
                Phase::Pending(p) if !s.kind.is_throughput() => p.samples += 1,
                Phase::Pending(p) => p.tests += tests,
                Phase::Open(o) if !s.kind.is_throughput() => o.extra.period.samples += 1,
                Phase::Open(o) => o.extra.period.tests += tests,
                Phase::Idle => {}
            }
        }
        self.step(s.group, at, &mut events);
        self.resolve(&mut events);
        events
    }

    /// Lets time pass without a sample (expiry, hysteresis, cause waits);
    /// call it every second or so.
    pub fn tick(&mut self, now: Stamp) -> Vec<SlowEvent> {
        let mut events = Vec::new();
        self.bump(now);
        for g in 0..self.groups.len() {
            let t = &mut self.groups[g];
            if t.state == State::Down {
                continue;
            }
            t.win.advance(now, &t.th);
            self.step(g, now, &mut events);
        }
        self.resolve(&mut events);
        events
    }

    /// The group's up/down state from the outage detector (`since`: back-dated).
    pub fn set_group_state(&mut self, group: usize, state: State, since: Stamp) -> Vec<SlowEvent> {
        let mut events = Vec::new();
        let Some(g) = self.groups.get_mut(group) else {
            return events;
        };
        let old = g.state;
        if old == state {
            return events;
        }
        g.state = state;
        if state == State::Down {
            // An outage inside a slow stretch sits inside its period: the
            // period goes on, and ends where the outage began only if
            // nothing bad follows the outage. A pending trip made of the
            // outage's own first failures (it began about when the outage
            // did) is dropped: that was no slow period.
            let margin = (g.th.window / 10).max(Duration::from_secs(1));
            match &g.life.phase {
                Phase::Pending(p) if p.start.mono.saturating_add(margin) >= since.mono => {
                    g.life.phase = Phase::Idle;
                    self.pending -= 1;
                }
                Phase::Pending(_) | Phase::Open(_) => g.period_down = Some((since, None)),
                Phase::Idle => {}
            }
            let g = &mut self.groups[group];
            if let Some(a) = g.life.carried.take() {
                events.push(unobserved_end(&g.name, a, since.wall, true));
            }
            g.down_since = Some(since);
            g.win.clear();
            g.good_since = None;
        } else if old == State::Down {
            if let Some(d) = g.down_since.take() {
                g.remember(d.mono, since.mono);
            }
            if let Some((_, up @ None)) = &mut g.period_down {
                *up = Some(since);
                g.end.interrupt();
            }
            g.win.clear();
            g.floor_ms = ms(since.mono);
            g.good_since = None;
        }
        self.resolve(&mut events);
        events
    }

    fn bump(&mut self, at: Stamp) {
        if self.now.is_none_or(|n| at.mono > n.mono) {
            self.now = Some(at);
        }
    }

    fn step(&mut self, g: usize, now: Stamp, events: &mut Vec<SlowEvent>) {
        let t = &mut self.groups[g];
        let mask = t.win.crossing(&t.th);
        t.judged |= mask != 0 || t.win.judged(&t.th);
        if mask != 0 {
            t.good_since = None;
        } else if t.good_since.is_none() {
            t.good_since = Some(now);
        }
        let clean_window = t
            .good_since
            .is_some_and(|gs| now.mono.saturating_sub(gs.mono) >= t.th.window);
        match &mut t.life.phase {
            Phase::Idle if mask != 0 => {
                let (start, samples) = t.win.back_date(mask, &t.th);
                t.begin_end_track(start);
                let tests = t
                    .win
                    .tests
                    .iter()
                    .chain(&t.win.up_tests)
                    .filter(|x| x.at.mono >= start.mono)
                    .count() as u64;
                t.life.phase = Phase::Pending(Pending {
                    trip: now,
                    start,
                    triggers: mask,
                    figures: t.win.figures(),
                    samples,
                    tests,
                });
                self.pending += 1;
            }
            Phase::Idle => {
                if clean_window && let Some(a) = t.life.carried.take() {
                    let gs = t.good_since.map_or(now.wall, |s| s.wall);
                    events.push(unobserved_end(&t.name, a, gs, false));
                }
            }
            Phase::Pending(p) => p.triggers |= mask,
            Phase::Open(o) => {
                // A threshold the period had not crossed, crossed by a run
                // that began after the period's end so far: a new fault of
                // another kind (loss after a throttle), not the same one.
                let (fresh, had) = (mask & !o.extra.triggers, o.extra.triggers);
                if fresh != 0
                    && let Some(end) = t.end.end(had)
                    && end.mono <= now.mono
                    && t.win.back_date(fresh, &t.th).0.mono > end.mono
                {
                    let (at, superseded) = t.dated_end(had, end);
                    self.end(g, at, superseded, events);
                    // The next sample or tick trips the new period.
                    return;
                }
                o.extra.triggers |= mask;
                // Only while a figure is over: once all are good the period's
                // (back-dated) end has passed, and the clean window that
                // confirms it is not part of the period.
                if mask != 0 && o.extra.period.due(now.mono) {
                    o.extra.period.record(now.mono, &t.win.figures());
                }
                let triggers = o.extra.triggers;
                let floor = o.floor();
                let end = t
                    .end
                    .end(triggers)
                    .unwrap_or_else(|| t.win.stamp_of(ms(floor)));
                let since_end = now.mono.saturating_sub(end.mono);
                let mut evidence = mask;
                if t.end.throughput_held() {
                    evidence &= !Trigger::Throughput.bit();
                }
                if evidence != 0 && since_end >= t.th.window {
                    t.end.rebase(now);
                }
                // Confirmed once a whole window has been seen after the end
                // (and after the last outage inside it) with every figure good.
                let seen_from = end.mono.max(Duration::from_millis(t.floor_ms));
                if mask == 0 && now.mono.saturating_sub(seen_from) >= t.th.window {
                    let (at, superseded) = t.dated_end(triggers, end);
                    self.end(g, at, superseded, events);
                }
            }
        }
    }

    /// Announces the pending slow periods whose wait is over, upstream first.
    fn resolve(&mut self, events: &mut Vec<SlowEvent>) {
        if self.pending == 0 {
            return;
        }
        let Some(now) = self.now else { return };
        for i in 0..self.order.len() {
            let g = self.order[i];
            let Phase::Pending(p) = &self.groups[g].life.phase else {
                continue;
            };
            if now.mono < p.trip.mono.saturating_add(self.groups[g].settle) {
                continue;
            }
            if let Some(cause) = self.cause_of(g, p.start.mono, now.mono) {
                self.announce(g, cause, events);
            }
        }
    }

    /// The farthest-upstream group degraded or down at `start` of `g`'s
    /// slow period; `None` while an upstream group could still turn out to be.
    fn cause_of(&self, g: usize, start: Duration, now: Duration) -> Option<usize> {
        let limit = start.saturating_add(self.groups[g].th.window / 10);
        let needs = |u: usize| self.groups[u].needs;
        period::farthest_upstream(g, self.groups.len(), needs, |u| {
            self.affected(u, start, limit, now)
        })
    }

    /// Whether group `u` had a slow period or down period that began no later
    /// than `limit` and had not ended before `start`; `None` if not yet settled.
    fn affected(&self, u: usize, start: Duration, limit: Duration, now: Duration) -> Option<bool> {
        let t = &self.groups[u];
        if t.state == State::Down && t.down_since.is_some_and(|d| d.mono <= limit) {
            return Some(true);
        }
        match &t.life.phase {
            Phase::Pending(p) if p.start.mono <= limit => return Some(true),
            Phase::Open(o) if o.floor() <= limit => return Some(true),
            _ => {}
        }
        if t.life
            .recent()
            .any(|(from, to)| *from <= limit && *to >= start)
        {
            return Some(true);
        }
        if t.life.carried.is_some() {
            return None;
        }
        if now < limit {
            return None;
        }
        match t.win.first_bad(&t.th) {
            Some(b) if Duration::from_millis(b) <= limit => None,
            _ => Some(false),
        }
    }

    fn announce(&mut self, g: usize, cause: usize, events: &mut Vec<SlowEvent>) {
        let Some(p) = self.groups[g].life.phase.take_pending() else {
            return;
        };
        self.pending -= 1;
        // Its own group is the farthest upstream, and it is a throttled
        // name, or its loss is mostly failures with interference reasons.
        let t = &self.groups[g];
        let (lost, lost_signs) = t.win.lost_since(p.start.mono);
        let throttled = t.win.throttled_since(p.start.mono);
        let has = |tr: Trigger| p.triggers & tr.bit() != 0;
        let interference = cause == g
            && (has(Trigger::ThrottledName) || (has(Trigger::Loss) && lost_signs * 2 > lost));
        let counts = interference.then_some((lost_signs + throttled, lost + throttled));
        let cause = if interference {
            CAUSE.to_string()
        } else {
            self.groups[cause].name.clone()
        };
        let name = self.groups[g].name.clone();
        let mut period = Box::new(PeriodStats::new(p.samples));
        period.tests = p.tests;
        let triggers = Trigger::list(p.triggers);
        let mut open = match self.groups[g].life.carried.take() {
            Some(a) => {
                let (gap, open) = a.resume(p.start, |had| Slow {
                    triggers: had.iter().fold(p.triggers, |m, t| m | t.bit()),
                    period,
                    interference: None,
                });
                events.push(SlowEvent::Resumed(DegradedResumed {
                    id: open.id.clone(),
                    group: name,
                    cause: open.cause.clone(),
                    start: open.start,
                    gap,
                    triggers,
                    figures: p.figures,
                }));
                open
            }
            None => {
                let id = period::mint(&mut self.ids, p.start.wall, &name, "-degraded");
                events.push(SlowEvent::Started(DegradedStarted {
                    interference: counts.map(|c| summary(p.triggers, c)),
                    id: id.clone(),
                    group: name,
                    cause: cause.clone(),
                    start: p.start.wall,
                    triggers,
                    figures: p.figures,
                }));
                let slow = Slow {
                    triggers: p.triggers,
                    period,
                    interference: counts,
                };
                Open::new(id, cause, p.start, Vec::new(), slow)
            }
        };
        let t = &mut self.groups[g];
        if let Some(now) = t.win.now {
            open.extra.period.record(now.mono, &t.win.figures());
        }
        t.life.time.begin(p.start.mono);
        t.life.phase = Phase::Open(open);
    }

    fn end(&mut self, g: usize, at: Stamp, superseded: bool, events: &mut Vec<SlowEvent>) {
        let t = &mut self.groups[g];
        let Phase::Open(o) = std::mem::replace(&mut t.life.phase, Phase::Idle) else {
            return;
        };
        let floor = o.floor();
        let at = Stamp {
            wall: truncate_ms(at.wall),
            mono: at.mono.max(floor),
        };
        t.remember(floor, at.mono);
        t.life.time.stop(at.mono);
        let (closed, slow) = o.close(at, true).split();
        let figures = PeriodFigures {
            loss_ratio: t.end.loss_ratio(),
            ..slow.period.finish()
        };
        let triggers = Trigger::list(slow.triggers);
        let interference = slow.interference.map(|c| summary(slow.triggers, c));
        let mut ended = slow_ended(&t.name, closed, superseded, triggers, figures);
        if let SlowEvent::Ended(e) = &mut ended {
            e.interference = interference;
        }
        events.push(ended);
    }

    /// Degraded time to add per group since the last call, never past the
    /// start of a recovery still in progress (like `Detector::take_downtime`).
    pub fn take_degraded_time(&mut self, now: Duration) -> Vec<(usize, Duration)> {
        let mut out = Vec::new();
        for (g, t) in self.groups.iter_mut().enumerate() {
            if !t.life.time.due() {
                continue;
            }
            // Never past the end the evidence dates so far: the journal's
            // record ends there, and so does the counter.
            let certain = match &t.life.phase {
                Phase::Open(o) => t.end.end(o.extra.triggers).map_or(now, |e| e.mono.min(now)),
                _ => t.good_since.map_or(now, |gs| gs.mono.min(now)),
            };
            if let Some(add) = t.life.time.take(certain) {
                out.push((g, add));
            }
        }
        out
    }

    /// Whether group `g` is degraded: `Some(true)` from the trip (even while
    /// the announcement waits), `Some(false)` while down or judged fine,
    /// `None` while unknown (no figure has had enough samples yet, or a
    /// slow period adopted from the previous run is not decided yet).
    pub fn degraded(&self, g: usize) -> Option<bool> {
        let t = self.groups.get(g)?;
        if t.state == State::Down {
            return Some(false);
        }
        if !t.life.phase.is_idle() {
            return Some(true);
        }
        if t.life.carried.is_some() || !t.judged {
            return None;
        }
        Some(false)
    }

    /// Successful ICMP/TCP probes in group `g`'s window and the sum of their
    /// RTTs in seconds (from the histogram: each at its bucket's midpoint,
    /// within 0.8 %), for the summary's `_count` and `_sum`.
    pub fn window_rtt_count_sum(&self, g: usize) -> Option<(u64, f64)> {
        let h = &self.groups.get(g)?.win.rtt.hist;
        let sum: f64 = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| f64::from(*c) * representative(b))
            .sum();
        Some((h.total, sum / 1e9))
    }

    /// The current window figures of group `g` (for the metrics).
    pub fn window_figures(&self, g: usize) -> Option<Figures> {
        self.groups.get(g).map(|t| t.win.figures())
    }

    /// Id of the slow period open for group `g` (announced or adopted).
    pub fn open_period(&self, g: usize) -> Option<&str> {
        self.groups.get(g)?.life.open_id()
    }

    /// Monotonic start of the slow period open for `g`, when it started in this process.
    pub fn open_start_mono(&self, g: usize) -> Option<Duration> {
        self.groups.get(g)?.life.phase.open()?.start_mono
    }

    /// Ids of every slow period open or adopted and not yet settled.
    pub fn open_ids(&self) -> Vec<String> {
        (0..self.groups.len())
            .filter_map(|g| self.open_period(g).map(str::to_string))
            .collect()
    }
}

/// The summary of an `interference` slow period as the tracker knows it
/// (counts, and `throttled_name` when that tripped); the service adds the
/// checks, targets and names its probes showed.
fn summary(triggers: u8, (failures, of_failures): (u64, u64)) -> Box<InterferenceSummary> {
    let checks = if triggers & Trigger::ThrottledName.bit() != 0 {
        vec![Check::ThrottledName.as_str().to_string()]
    } else {
        Vec::new()
    };
    Box::new(InterferenceSummary {
        checks,
        targets: Vec::new(),
        names: Vec::new(),
        failures,
        of_failures,
    })
}

/// An adopted slow period closed without being seen to end.
fn unobserved_end(
    group: &str,
    a: Carried<Vec<Trigger>>,
    seen_again: Timestamp,
    superseded: bool,
) -> SlowEvent {
    let (closed, triggers) = a.end_unseen(seen_again, false).split();
    let figures = PeriodFigures::default();
    slow_ended(group, closed, superseded, triggers, figures)
}

/// The `degraded_end` of a closed slow period of `group`.
fn slow_ended(
    group: &str,
    c: Closed<()>,
    superseded: bool,
    triggers: Vec<Trigger>,
    figures: PeriodFigures,
) -> SlowEvent {
    SlowEvent::Ended(DegradedEnded {
        interference: None,
        id: c.id,
        group: group.to_string(),
        cause: c.cause,
        start: c.start,
        end: c.end,
        duration_seconds: c.duration_seconds,
        duration_clock: c.clock,
        end_observed: c.end_observed,
        superseded,
        triggers,
        figures,
        gaps: c.gaps,
        end_reason: None,
    })
}
//END
