//! The outage detector: a pure state machine (no I/O, no clock of its own) fed
//! probe results with their wall and monotonic times; it emits target, group and
//! outage events.
//!
//! Rules (the DESIGN contract, plus the decisions noted here):
//! - A target starts `Unknown`; it becomes `Down` after `fail_after` consecutive
//!   failures and `Up` after `recover_after` consecutive successes, from any state.
//!   The change is back-dated to the first probe of the streak.
//! - A group is judged only when its state no longer depends on its `Unknown`
//!   targets: with `k` = the number of down targets `down_when` asks for (`all`
//!   = every target, `any` = 1, a count capped at the number of targets), it is
//!   `Down` when at least `k` targets are down, `Up` when fewer than `k` could be
//!   down even if every `Unknown` target turned out down, and `Unknown` otherwise
//!   (also when it has no targets). An outage ends only when its group is `Up`.
//! - Downstream groups are judged from their own targets even while an upstream
//!   group is down (so a LAN failure gives every group an outage); the `cause`
//!   of an outage is the farthest-upstream group on its `needs` chain that was
//!   down when it started. Since each target only sees a fault at its next probe,
//!   an upstream group counts as down at a moment `s` when its down period, widened
//!   back by one probe interval of its targets, contains `s`. While an upstream
//!   group could still turn out to have been down at `s` (it is `Unknown`, or has
//!   failing streaks reaching back to `s`), the outage is held back, not announced
//!   with a guessed cause; that wait is bounded by `fail_after` probes.
//! - Durations are monotonic differences; the end's wall time is the start's wall
//!   time plus that duration, so a wall-clock step cannot bend an outage.
//! - Outage ids are `<start unix ms>-<group>` (a `-N` suffix if already taken).
//! - Stalls: the service reports periods in which the process observed nothing
//!   ([`Detector::stall`]: it was stopped, or the system suspended). Each is a
//!   gap of every outage open across it. A target's state change is
//!   *unobserved* when the first observation of its new streak follows the
//!   previous (opposite) observation by more than twice the target's interval,
//!   or a stall lies between them: the change is then placed at the earliest
//!   moment it could have happened (the stall's start, or that previous
//!   observation), and an outage whose start or end is decided by such a change
//!   has `start_observed` / `end_observed` false and the unobserved window in its
//!   gaps. Downtime is not accrued over a stall.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::ids::Ids;
use crate::config::diff::Diff;
use crate::config::{Config, DownWhen};
use crate::journal::{
    DurationClock, EndReason, Gap, OutageEnded, OutageResumed, OutageStarted, push_gap,
};

/// A moment: wall-clock time and monotonic offset since an arbitrary fixed epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub wall: Timestamp,
    pub mono: Duration,
}

/// State of a target or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not decided yet (too few probes since start, or no usable targets).
    Unknown,
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }

    /// The gauge value: 1 up, 0 down, NaN unknown.
    pub fn gauge(self) -> f64 {
        match self {
            State::Unknown => f64::NAN,
            State::Up => 1.0,
            State::Down => 0.0,
        }
    }
}

/// What the detector reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A target's state changed, effective at `since` (back-dated).
    Target {
        target: usize,
        state: State,
        since: Stamp,
    },
    /// A group's state changed, effective at `since`.
    Group {
        group: usize,
        state: State,
        since: Stamp,
    },
    Started(OutageStarted),
    Resumed(OutageResumed),
    Ended(OutageEnded),
    /// A stall overlapped the open outage `id`: its gaps are now `gaps`.
    Gaps {
        id: String,
        gaps: Vec<Gap>,
    },
}

/// A window in which a target's state changed unseen: after `lo` (the last
/// observation of the old state, or a stall's start) and by `hi` (the first
/// observation of the new state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    lo: Stamp,
    hi: Stamp,
}

impl Edge {
    fn gap(&self) -> Gap {
        Gap {
            from: self.lo.wall,
            to: self.hi.wall.max(self.lo.wall),
        }
    }
}

/// Stalls remembered to judge edges that straddle them (results arrive a
/// probe's timeout late at most, so a few are plenty).
const STALLS: usize = 16;

/// An outage left open by a previous run, handed to [`Detector::adopt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    /// Whether its start was seen (by the run that started it).
    pub start_observed: bool,
    pub targets: Vec<String>,
    /// Gaps already recorded for it.
    pub gaps: Vec<Gap>,
    /// The last moment it was known to be down (the previous run's last sign of life).
    pub last_seen: Timestamp,
}

impl Adopted {
    /// Ends it unseen: never seen down again by this run, so it ended at its
    /// last sign of life, with the time up to `now` as a gap.
    fn end_unseen(self, group: &str, now: Timestamp, end_reason: Option<EndReason>) -> OutageEnded {
        let mut gaps = self.gaps;
        push_gap(
            &mut gaps,
            Gap {
                from: self.last_seen,
                to: now.max(self.last_seen),
            },
        );
        OutageEnded {
            id: self.id,
            group: group.to_string(),
            cause: self.cause,
            start: self.start,
            start_observed: self.start_observed,
            end: self.last_seen,
            duration_seconds: wall_seconds(self.start, self.last_seen),
            duration_clock: DurationClock::Wall,
            end_observed: false,
            targets: self.targets,
            gaps,
            end_reason,
        }
    }
}

#[derive(Debug)]
struct TargetTrack {
    name: String,
    group: usize,
    fail_after: u32,
    recover_after: u32,
    interval: Duration,
    state: State,
    since: Option<Stamp>,
    fail_streak: u32,
    fail_first: Option<Stamp>,
    ok_streak: u32,
    ok_first: Option<Stamp>,
    /// The last observation.
    last: Option<Stamp>,
    /// Set when the current streak's first observation did not see the
    /// change (judged when the streak begins).
    streak_edge: Option<Edge>,
    /// Set when the last state change was not observed.
    edge: Option<Edge>,
    /// Whether its results vote on the group's up/down state (a throughput
    /// target judges slowness only unless it opts in).
    votes: bool,
    /// How long its last result keeps its vote ([`crate::config::Target::vote_horizon`]).
    horizon: Duration,
    /// The last success.
    last_ok: Option<Stamp>,
    /// The last 64 outcomes, newest in bit 0 (1 = failure), and how many
    /// outcomes have been seen (to know how many bits are real).
    recent: u64,
    seen: u32,
}

impl TargetTrack {
    /// Feeds one observation; on a state change returns since when (back-dated,
    /// to the lower bound of an unobserved change).
    fn feed(
        &mut self,
        s: Stamp,
        success: bool,
        stalls: &VecDeque<(Stamp, Stamp)>,
    ) -> Option<Stamp> {
        let prev = self.last.replace(s);
        self.recent = (self.recent << 1) | u64::from(!success);
        self.seen = self.seen.saturating_add(1);
        if success {
            self.last_ok = Some(s);
        }
        let (streak, first, other_streak, other_first, new) = if success {
            (
                &mut self.ok_streak,
                &mut self.ok_first,
                &mut self.fail_streak,
                &mut self.fail_first,
                State::Up,
            )
        } else {
            (
                &mut self.fail_streak,
                &mut self.fail_first,
                &mut self.ok_streak,
                &mut self.ok_first,
                State::Down,
            )
        };
        *other_streak = 0;
        *other_first = None;
        if *streak == 0 {
            *first = Some(s);
            self.streak_edge = unobserved(prev, s, self.interval, stalls);
        }
        *streak = streak.saturating_add(1);
        let needed = if success {
            self.recover_after
        } else {
            self.fail_after
        };
        if self.state == new || *streak < needed {
            return None;
        }
        let first = (*first)?;
        self.state = new;
        self.edge = self.streak_edge;
        self.since = Some(self.edge.map_or(first, |e| e.lo));
        self.since
    }

    /// Earliest moment the current down period (or failing streak) may have begun:
    /// one probe interval before its first failure.
    fn down_lower(&self) -> Option<Duration> {
        let first = match self.state {
            State::Down => self.since,
            _ if self.fail_streak > 0 => self.streak_edge.map(|e| e.lo).or(self.fail_first),
            _ => None,
        }?;
        Some(first.mono.saturating_sub(self.interval))
    }

    /// Whether its last result still counts in its group's judgement at mono
    /// `now` (never observed: it counts, as `Unknown`).
    fn fresh(&self, now: Duration) -> bool {
        self.last
            .is_none_or(|l| now.saturating_sub(l.mono) <= self.horizon)
    }

    /// The failing streak this target needs before its group may count it
    /// as down: `fail_after`, or more while the link was already losing
    /// probes at random just before the streak. With a failure ratio `q`
    /// over the (up to) 32 outcomes before the streak, a streak of `n`
    /// failures happens by chance with probability `q^n`; the streak must
    /// make that less than [`CHANCE_STREAK`] (at most `3 × fail_after`).
    /// On a clean link (`q` ≤ 10 % at the defaults) this is `fail_after`;
    /// under 36 % loss (20 % each way) it is 7. The start of a real outage
    /// is back-dated to its first failure either way: only the announcement
    /// waits.
    fn need(&self) -> u32 {
        let fa = self.fail_after;
        let streak = self.fail_streak.min(64);
        let known = self.seen.saturating_sub(streak).min(64 - streak).min(32);
        if known < 8 {
            return fa;
        }
        let before = (self.recent >> streak) & ((1u64 << known) - 1);
        let q = f64::from(before.count_ones()) / f64::from(known);
        if q <= 0.0 {
            return fa;
        }
        let n = (CHANCE_STREAK.ln() / q.ln()).ceil();
        let cap = fa.saturating_mul(3);
        if !n.is_finite() || n >= f64::from(cap) {
            return cap.max(fa);
        }
        fa.max(n as u32)
    }

    /// Whether it counts as down for its group at this moment: down, and
    /// (unless `holding`, i.e. the group is already down) failing now with
    /// a streak of [`Self::need`].
    fn counts_down(&self, holding: bool) -> bool {
        self.state == State::Down && (holding || self.fail_streak >= self.need())
    }

    /// The first failure of its current failing streak (the lower bound of
    /// an unobserved one), with that edge.
    fn streak_start(&self) -> Option<(Stamp, Option<Edge>)> {
        let first = self.fail_first?;
        Some(match self.streak_edge {
            Some(e) if self.fail_streak > 0 => (e.lo, Some(e)),
            _ => (first, None),
        })
    }
}

/// Probability below which a failing streak is no longer taken for chance
/// during random loss (see [`TargetTrack::need`]).
const CHANCE_STREAK: f64 = 1e-3;

/// The window of a change first seen at `first` after the observation `prev`,
/// when nobody could have seen it: a stall lies between the two (the change is
/// then bounded by the stall's start), or they are more than twice the
/// interval apart.
fn unobserved(
    prev: Option<Stamp>,
    first: Stamp,
    interval: Duration,
    stalls: &VecDeque<(Stamp, Stamp)>,
) -> Option<Edge> {
    let prev = prev?;
    if let Some((from, _)) = stalls
        .iter()
        .find(|(from, to)| from.mono < first.mono && to.mono > prev.mono)
    {
        let lo = if from.mono > prev.mono { *from } else { prev };
        return Some(Edge { lo, hi: first });
    }
    (first.mono.saturating_sub(prev.mono) > interval.saturating_mul(2)).then_some(Edge {
        lo: prev,
        hi: first,
    })
}

#[derive(Debug)]
struct Open {
    id: String,
    cause: String,
    start: Timestamp,
    /// Set when the outage started in this process.
    start_mono: Option<Duration>,
    start_observed: bool,
    /// Set when the outage was adopted from a previous run and seen down again.
    resumed: Option<Stamp>,
    targets: Vec<String>,
    gaps: Vec<Gap>,
}

impl Open {
    /// The wall time of moment `s` in this outage's frame: its start plus the
    /// monotonic time since (so that a wall-clock step cannot bend it, and
    /// its end and its gaps line up to the millisecond).
    fn wall_at(&self, s: Stamp) -> Timestamp {
        match (self.start_mono, self.resumed) {
            (Some(start_mono), _) => add(self.start, s.mono.saturating_sub(start_mono)),
            (None, Some(resumed)) => add(resumed.wall, s.mono.saturating_sub(resumed.mono)),
            (None, None) => s.wall,
        }
    }
}

#[derive(Debug)]
struct GroupTrack {
    name: String,
    needs: Option<usize>,
    down_when: DownWhen,
    targets: Vec<usize>,
    state: State,
    since: Option<Stamp>,
    /// Back-dated start of the current down period, and its lower bound.
    down_start: Option<Stamp>,
    down_lower: Duration,
    /// Set when the current down period began unseen.
    down_edge: Option<Edge>,
    /// Stalls met while down and not yet announced.
    pending_gaps: Vec<Gap>,
    /// Down, outage not announced yet (its cause is still being settled).
    pending: bool,
    open: Option<Open>,
    adopted: Option<Adopted>,
    /// Recent finished down periods of this process, `(lower bound, end)` in mono.
    history: VecDeque<(Duration, Duration)>,
    /// Downtime accounted up to here (mono) while down.
    accounted: Option<Duration>,
    /// Downtime of ended outages not yet handed out.
    owed: Duration,
}

const HISTORY: usize = 16;

/// The outage state machine for one configuration.
#[derive(Debug)]
pub struct Detector {
    targets: Vec<TargetTrack>,
    groups: Vec<GroupTrack>,
    /// Groups ordered upstream first.
    order: Vec<usize>,
    ids: Ids,
    /// Recent stalls, oldest first.
    stalls: VecDeque<(Stamp, Stamp)>,
    /// The newest monotonic time seen (observations, ticks): targets'
    /// votes expire against it.
    now: Duration,
}

impl Detector {
    pub fn new(config: &Config) -> Self {
        let targets: Vec<TargetTrack> = (0..config.targets.len())
            .map(|i| TargetTrack::new(config, i))
            .collect();
        let groups: Vec<GroupTrack> = (0..config.groups.len())
            .map(|gi| GroupTrack::new(config, gi, &targets))
            .collect();
        Self {
            order: order_of(&groups),
            targets,
            groups,
            ids: Ids::default(),
            stalls: VecDeque::new(),
            now: Duration::ZERO,
        }
    }

    /// Applies a configuration reload at `now` ([`Diff`] from the running
    /// configuration to `config`). Kept targets keep their state and
    /// streaks; added and changed ones start `Unknown`. A group that still
    /// exists keeps its state and open outage and is judged again with its
    /// new members and `down_when` (an outage that is no longer down by the
    /// new definition ends at `now` with `end_reason: "reconfigured"`). The
    /// open outage of a removed group ends at `now` with `end_reason:
    /// "removed"`; one it had not announced yet (cause still settling) is
    /// dropped, since it was never shown.
    pub fn reload(&mut self, config: &Config, diff: &Diff, now: Stamp) -> Vec<Event> {
        let now = Stamp {
            wall: truncate_ms(now.wall),
            mono: now.mono,
        };
        let mut old_targets: Vec<Option<TargetTrack>> = std::mem::take(&mut self.targets)
            .into_iter()
            .map(Some)
            .collect();
        let mut targets: Vec<TargetTrack> = Vec::with_capacity(config.targets.len());
        for (i, kept) in diff.targets.iter().enumerate() {
            let fresh = TargetTrack::new(config, i);
            match kept
                .and_then(|o| old_targets.get_mut(o))
                .and_then(Option::take)
            {
                Some(mut t) => {
                    t.group = fresh.group;
                    targets.push(t);
                }
                None => targets.push(fresh),
            }
        }
        let mut old_groups: Vec<Option<GroupTrack>> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(Some)
            .collect();
        let mut groups: Vec<GroupTrack> = Vec::with_capacity(config.groups.len());
        let mut rejudge = Vec::new();
        for (gi, kept) in diff.groups.iter().enumerate() {
            let fresh = GroupTrack::new(config, gi, &targets);
            match kept
                .and_then(|o| old_groups.get_mut(o))
                .and_then(Option::take)
            {
                Some(mut g) => {
                    g.needs = fresh.needs;
                    g.down_when = fresh.down_when;
                    g.targets = fresh.targets;
                    if !diff.groups_unchanged.get(gi).copied().unwrap_or(false) {
                        rejudge.push(gi);
                    }
                    groups.push(g);
                }
                None => groups.push(fresh),
            }
        }
        self.targets = targets;
        self.groups = groups;
        self.order = order_of(&self.groups);
        let mut events = Vec::new();
        for mut gone in old_groups.into_iter().flatten() {
            end_removed(&mut gone, now, &mut events);
        }
        for g in rejudge {
            let before = events.len();
            self.update_group(g, now, None, &mut events);
            for ev in &mut events[before..] {
                if let Event::Ended(e) = ev {
                    e.end_reason = Some(EndReason::Reconfigured);
                }
            }
        }
        self.resolve_pending(&mut events);
        events
    }
}

/// Ends the outage of a group a reload removed, at `now`.
fn end_removed(grp: &mut GroupTrack, now: Stamp, events: &mut Vec<Event>) {
    if let Some(a) = grp.adopted.take() {
        // Adopted from the previous run and not seen again: as recovery
        // closes one whose group is gone, at its last sign of life.
        events.push(Event::Ended(a.end_unseen(
            &grp.name,
            now.wall,
            Some(EndReason::Removed),
        )));
    }
    if grp.pending {
        tracing::info!(group = %grp.name, "group removed by a reload while down, before its outage was announced; no outage recorded");
    }
    if let Some(open) = grp.open.take() {
        let end = open.wall_at(now);
        let (duration_seconds, clock) = match open.start_mono {
            Some(start_mono) => (
                now.mono.saturating_sub(start_mono).as_secs_f64(),
                DurationClock::Monotonic,
            ),
            None => (wall_seconds(open.start, end), DurationClock::Wall),
        };
        events.push(Event::Ended(OutageEnded {
            id: open.id,
            group: grp.name.clone(),
            cause: open.cause,
            start: open.start,
            start_observed: open.start_observed,
            end,
            duration_seconds,
            duration_clock: clock,
            end_observed: true,
            targets: open.targets,
            gaps: open.gaps,
            end_reason: Some(EndReason::Removed),
        }));
    }
}

/// Groups ordered upstream first.
fn order_of(groups: &[GroupTrack]) -> Vec<usize> {
    let mut order = Vec::with_capacity(groups.len());
    let depth = |mut g: usize| {
        let mut d = 0;
        while let Some(u) = groups[g].needs {
            d += 1;
            g = u;
            if d > groups.len() {
                break;
            }
        }
        d
    };
    order.extend(0..groups.len());
    order.sort_by_key(|g| depth(*g));
    order
}

impl TargetTrack {
    /// Target `i` of `config`, `Unknown`.
    fn new(config: &Config, i: usize) -> Self {
        let t = &config.targets[i];
        Self {
            name: t.name.clone(),
            group: config
                .groups
                .iter()
                .position(|g| g.name == t.group)
                .unwrap_or(usize::MAX),
            fail_after: t.fail_after.max(1),
            recover_after: t.recover_after.max(1),
            interval: t.interval,
            state: State::Unknown,
            since: None,
            fail_streak: 0,
            fail_first: None,
            ok_streak: 0,
            ok_first: None,
            last: None,
            streak_edge: None,
            edge: None,
            votes: t.votes_on_outages(),
            horizon: t.vote_horizon(),
            last_ok: None,
            recent: 0,
            seen: 0,
        }
    }
}

impl GroupTrack {
    /// Group `gi` of `config` over `targets` (built from the same config), `Unknown`.
    fn new(config: &Config, gi: usize, targets: &[TargetTrack]) -> Self {
        let g = &config.groups[gi];
        Self {
            name: g.name.clone(),
            needs: g
                .needs
                .as_deref()
                .and_then(|n| config.groups.iter().position(|x| x.name == n)),
            down_when: g.down_when,
            targets: (0..targets.len())
                .filter(|ti| targets[*ti].group == gi && targets[*ti].votes)
                .collect(),
            state: State::Unknown,
            since: None,
            down_start: None,
            down_lower: Duration::ZERO,
            down_edge: None,
            pending_gaps: Vec::new(),
            pending: false,
            open: None,
            adopted: None,
            history: VecDeque::new(),
            accounted: None,
            owed: Duration::ZERO,
        }
    }
}

impl Detector {
    /// Marks ids as taken (ids already in the journal), so new ones never collide.
    pub fn reserve_ids<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        self.ids.reserve(ids);
    }

    /// Hands over an outage left open by a previous run. When the group is next
    /// judged `Down` it continues (a `Resumed` event, with the gap); when judged
    /// `Up` it is closed with `end_observed: false`. Returns `false` if the group
    /// does not exist in this configuration.
    pub fn adopt(&mut self, group: &str, outage: Adopted) -> bool {
        match self.groups.iter_mut().find(|g| g.name == group) {
            Some(g) => {
                self.ids.take(&outage.id);
                g.adopted = Some(outage);
                true
            }
            None => false,
        }
    }

    /// Feeds one probe result of target index `target` (into `Config::targets`).
    pub fn observe(
        &mut self,
        target: usize,
        wall: Timestamp,
        mono: Duration,
        success: bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(t) = self.targets.get_mut(target) else {
            return events;
        };
        // Evidence is kept at millisecond precision, the journal's, so that the
        // journal, the API and the logs show identical times.
        let stamp = Stamp {
            wall: truncate_ms(wall),
            mono,
        };
        self.now = self.now.max(mono);
        let changed = t.feed(stamp, success, &self.stalls);
        if changed.is_none() && !success && t.state == State::Down && t.votes {
            // A failing streak that grows may now make the group down (its
            // need rises above `fail_after` during random loss).
            let group = t.group;
            if self
                .groups
                .get(group)
                .is_some_and(|g| g.state != State::Down)
            {
                self.update_group(group, stamp, None, &mut events);
                self.resolve_pending(&mut events);
            }
            return events;
        }
        let Some(t) = self.targets.get_mut(target) else {
            return events;
        };
        if let Some(since) = changed {
            let (state, group, name, edge) = (t.state, t.group, t.name.clone(), t.edge);
            events.push(Event::Target {
                target,
                state,
                since,
            });
            if t.votes
                && let Some(g) = self.groups.get_mut(group)
            {
                if state == State::Down
                    && let Some(open) = g.open.as_mut()
                    && !open.targets.contains(&name)
                {
                    open.targets.push(name);
                }
                self.update_group(group, since, edge, &mut events);
            }
        }
        self.resolve_pending(&mut events);
        events
    }

    /// Lets time pass without an observation: a target that has not reported
    /// within its vote horizon leaves its group's judgement, which may make
    /// the group down (the others have failed) or undecided. A group already
    /// down never comes up this way (no success was seen): it becomes
    /// `Unknown` and its outage stays open. Call it every second or so.
    pub fn tick(&mut self, now: Stamp) -> Vec<Event> {
        let mut events = Vec::new();
        self.now = self.now.max(now.mono);
        let now = Stamp {
            wall: truncate_ms(now.wall),
            mono: now.mono,
        };
        for g in 0..self.groups.len() {
            let old = self.groups[g].state;
            let new = self.evaluate(g);
            if new == old || (old == State::Down && new == State::Unknown) {
                continue;
            }
            if old == State::Down {
                self.mark_unknown(g, now, &mut events);
                continue;
            }
            self.update_group(g, now, None, &mut events);
        }
        self.resolve_pending(&mut events);
        events
    }

    /// The process observed nothing from `from` to `to` (both in the clocks of
    /// [`Self::observe`]; report it before any observation made after it). The
    /// stall becomes a gap of every outage open across it, bounds target
    /// changes that straddle it, and is not downtime.
    pub fn stall(&mut self, from: Stamp, to: Stamp) -> Vec<Event> {
        let from = Stamp {
            wall: truncate_ms(from.wall),
            mono: from.mono,
        };
        let to = Stamp {
            wall: truncate_ms(to.wall).max(from.wall),
            mono: to.mono.max(from.mono),
        };
        if self.stalls.len() == STALLS {
            self.stalls.pop_front();
        }
        self.stalls.push_back((from, to));
        let gap = Gap {
            from: from.wall,
            to: to.wall,
        };
        let mut events = Vec::new();
        for grp in &mut self.groups {
            if let Some(acc) = grp.accounted.as_mut() {
                grp.owed += from.mono.saturating_sub(*acc);
                *acc = (*acc).max(to.mono);
            }
            if let Some(open) = grp.open.as_mut() {
                let gap = Gap {
                    from: open.wall_at(from),
                    to: open.wall_at(to),
                };
                push_gap(&mut open.gaps, gap);
                events.push(Event::Gaps {
                    id: open.id.clone(),
                    gaps: open.gaps.clone(),
                });
            } else if grp.pending {
                push_gap(&mut grp.pending_gaps, gap);
            }
        }
        events
    }

    /// The targets whose vote counts now: the group's voting targets that
    /// have reported within their own horizon (or never yet).
    fn voters(&self, g: usize) -> impl Iterator<Item = &TargetTrack> + '_ {
        let now = self.now;
        self.groups[g]
            .targets
            .iter()
            .map(|t| &self.targets[*t])
            .filter(move |t| t.fresh(now))
    }

    /// How many down targets `down_when` asks for out of `n` voters.
    fn k_of(&self, g: usize, n: usize) -> usize {
        match self.groups[g].down_when {
            DownWhen::All => n,
            DownWhen::Any => 1,
            DownWhen::AtLeast(k) => (k as usize).clamp(1, n.max(1)),
        }
    }

    /// How many down targets `down_when` asks for among the current voters.
    fn k(&self, g: usize) -> usize {
        self.k_of(g, self.voters(g).count())
    }

    /// The group's state from its current voters. Going down needs `k`
    /// targets failing now with streaks of their [`TargetTrack::need`];
    /// staying down needs `k` targets still down (their hysteresis).
    fn evaluate(&self, g: usize) -> State {
        let holding = self.groups[g].state == State::Down;
        let (mut n, mut down, mut unknown) = (0, 0, 0);
        for t in self.voters(g) {
            n += 1;
            if t.counts_down(holding) {
                down += 1;
            } else if t.state == State::Unknown {
                unknown += 1;
            }
        }
        if n == 0 {
            return State::Unknown;
        }
        let k = self.k_of(g, n);
        if down >= k {
            State::Down
        } else if down + unknown < k {
            State::Up
        } else {
            State::Unknown
        }
    }

    /// The k-th earliest value among the group's targets (the moment k were down).
    fn kth(&self, g: usize, mut values: Vec<Duration>) -> Option<Duration> {
        values.sort();
        values.get(self.k(g).checked_sub(1)?).copied()
    }

    fn update_group(
        &mut self,
        g: usize,
        trigger: Stamp,
        edge: Option<Edge>,
        events: &mut Vec<Event>,
    ) {
        let new = self.evaluate(g);
        let old = self.groups[g].state;
        if new == old {
            return;
        }
        match new {
            State::Down => {
                // The fault began after the group's last success and by the
                // first failure seen since: among the targets that make it
                // down, the first failure of their current streaks that
                // follows the latest success any of them saw before its
                // streak. When they all fail from one fault this is the
                // earliest first failure, whatever `down_when` asks and
                // however slow the last of them is to notice.
                let (start, start_edge) = self.group_start(g).unwrap_or((trigger, edge));
                let lowers = self.groups[g]
                    .targets
                    .iter()
                    .filter(|t| self.targets[**t].state == State::Down)
                    .filter_map(|t| self.targets[*t].down_lower())
                    .collect();
                let lower = self.kth(g, lowers).unwrap_or(start.mono).min(start.mono);
                let down_names = self.down_target_names(g);
                let grp = &mut self.groups[g];
                grp.state = State::Down;
                grp.since = Some(start);
                events.push(Event::Group {
                    group: g,
                    state: State::Down,
                    since: start,
                });
                if grp.open.is_some() || grp.pending {
                    // Down → Unknown → Down: the same outage goes on.
                    return;
                }
                grp.down_start = Some(start);
                grp.down_lower = lower;
                grp.down_edge = start_edge;
                grp.pending_gaps.clear();
                // Downtime counts from the first failure seen, not from a guess.
                grp.accounted = Some(start_edge.map_or(start.mono, |e| e.hi.mono));
                if let Some(a) = grp.adopted.take() {
                    let gap = Gap {
                        from: a.last_seen,
                        to: start.wall.max(a.last_seen),
                    };
                    let mut gaps = a.gaps;
                    gaps.push(gap);
                    let mut targets = a.targets;
                    for n in down_names {
                        if !targets.contains(&n) {
                            targets.push(n);
                        }
                    }
                    events.push(Event::Resumed(OutageResumed {
                        id: a.id.clone(),
                        group: grp.name.clone(),
                        cause: a.cause.clone(),
                        start: a.start,
                        gap,
                        targets: targets.clone(),
                    }));
                    grp.open = Some(Open {
                        id: a.id,
                        cause: a.cause,
                        start: a.start,
                        start_mono: None,
                        start_observed: a.start_observed,
                        resumed: Some(start),
                        targets,
                        gaps,
                    });
                } else {
                    grp.pending = true;
                }
            }
            State::Up => {
                let floor = self.groups[g].down_start;
                let mut since = trigger;
                if let Some(f) = floor
                    && old != State::Up
                    && since.mono < f.mono
                {
                    since = f;
                }
                self.groups[g].state = State::Up;
                self.groups[g].since = Some(since);
                events.push(Event::Group {
                    group: g,
                    state: State::Up,
                    since,
                });
                if self.groups[g].pending {
                    // Ending before its cause settled: decide with what is known now.
                    let cause = self.cause_of(g, true).unwrap_or(g);
                    self.announce(g, cause, events);
                }
                self.end(g, since, edge, events);
            }
            State::Unknown => self.mark_unknown(g, trigger, events),
        }
    }

    /// Group `g` is undecided from `at` (an open outage stays open).
    fn mark_unknown(&mut self, g: usize, at: Stamp, events: &mut Vec<Event>) {
        let grp = &mut self.groups[g];
        grp.state = State::Unknown;
        grp.since = Some(at);
        events.push(Event::Group {
            group: g,
            state: State::Unknown,
            since: at,
        });
    }

    /// The best estimate of when group `g`'s down period began (see
    /// `update_group`), and the edge when that first failure was unseen.
    fn group_start(&self, g: usize) -> Option<(Stamp, Option<Edge>)> {
        let down: Vec<&TargetTrack> = self.voters(g).filter(|t| t.counts_down(false)).collect();
        let last_ok = down.iter().filter_map(|t| t.last_ok).map(|s| s.mono).max();
        down.iter()
            .filter_map(|t| t.streak_start())
            .filter(|(f, _)| last_ok.is_none_or(|l| f.mono > l))
            .min_by_key(|(f, _)| f.mono)
    }

    fn down_target_names(&self, g: usize) -> Vec<String> {
        self.groups[g]
            .targets
            .iter()
            .filter(|t| self.targets[**t].state == State::Down)
            .map(|t| self.targets[*t].name.clone())
            .collect()
    }

    /// Ends group `g`'s outage at `at`; `edge` is set when the recovery was
    /// not seen (then `at` is the last moment it was known down).
    fn end(&mut self, g: usize, at: Stamp, edge: Option<Edge>, events: &mut Vec<Event>) {
        let grp = &mut self.groups[g];
        if let Some(a) = grp.adopted.take() {
            // Adopted, never seen down again: it ended while nobody watched.
            events.push(Event::Ended(a.end_unseen(&grp.name, at.wall, None)));
        }
        if let Some(open) = grp.open.take() {
            if let Some(start) = grp.down_start {
                let lower = grp.down_lower;
                if grp.history.len() == HISTORY {
                    grp.history.pop_front();
                }
                grp.history.push_back((lower, at.mono.max(start.mono)));
            }
            if let Some(acc) = grp.accounted.take() {
                grp.owed += at.mono.saturating_sub(acc);
            }
            let end = open.wall_at(at);
            let (duration_seconds, clock) = match open.start_mono {
                Some(start_mono) => (
                    at.mono.saturating_sub(start_mono).as_secs_f64(),
                    DurationClock::Monotonic,
                ),
                None => (wall_seconds(open.start, end), DurationClock::Wall),
            };
            let mut gaps = open.gaps;
            if let Some(e) = edge {
                // The true end lies in the last gap: from the last moment seen
                // down to the first success seen. A stall that began before
                // `end` is folded in from `end` on: the group was seen down
                // then, so the process ran (a stall's start is its last tick
                // before stopping, a little early).
                let mut last = Gap {
                    from: end,
                    to: add(end, e.hi.mono.saturating_sub(at.mono)),
                };
                gaps.retain(|g| {
                    let after = g.to >= end;
                    if after {
                        last.to = last.to.max(g.to);
                    }
                    !after
                });
                gaps.push(last);
            }
            events.push(Event::Ended(OutageEnded {
                id: open.id,
                group: grp.name.clone(),
                cause: open.cause,
                start: open.start,
                start_observed: open.start_observed,
                end,
                duration_seconds,
                duration_clock: clock,
                end_observed: edge.is_none(),
                targets: open.targets,
                gaps,
                end_reason: None,
            }));
        }
        grp.down_start = None;
        grp.down_edge = None;
        grp.pending_gaps.clear();
        grp.pending = false;
    }

    fn announce(&mut self, g: usize, cause: usize, events: &mut Vec<Event>) {
        let Some(start) = self.groups[g].down_start else {
            return;
        };
        let targets = self.down_target_names(g);
        let cause = self.groups[cause].name.clone();
        let name = self.groups[g].name.clone();
        let base = format!("{}-{}", start.wall.as_millisecond(), name);
        let id = self.ids.mint(base);
        let grp = &mut self.groups[g];
        let mut gaps = std::mem::take(&mut grp.pending_gaps);
        if let Some(e) = grp.down_edge {
            push_gap(&mut gaps, e.gap());
        }
        let start_observed = grp.down_edge.is_none();
        events.push(Event::Started(OutageStarted {
            id: id.clone(),
            group: name,
            cause: cause.clone(),
            start: start.wall,
            start_observed,
            targets: targets.clone(),
            gaps: gaps.clone(),
        }));
        grp.pending = false;
        grp.open = Some(Open {
            id,
            cause,
            start: start.wall,
            start_mono: Some(start.mono),
            start_observed,
            resumed: None,
            targets,
            gaps,
        });
    }

    fn resolve_pending(&mut self, events: &mut Vec<Event>) {
        for i in 0..self.order.len() {
            let g = self.order[i];
            if self.groups[g].pending
                && let Some(cause) = self.cause_of(g, false)
            {
                self.announce(g, cause, events);
            }
        }
    }

    /// The farthest-upstream group down when `g`'s down period started; `None`
    /// while an upstream group could still turn out to have been down then
    /// (unless `force`, which treats those as not down).
    fn cause_of(&self, g: usize, force: bool) -> Option<usize> {
        let s = self.groups[g].down_start?.mono;
        let mut cause = g;
        let mut cur = self.groups[g].needs;
        let mut hops = 0;
        while let Some(u) = cur {
            hops += 1;
            if hops > self.groups.len() {
                break;
            }
            cur = self.groups[u].needs;
            if self.groups[u].targets.is_empty() {
                continue; // cannot be judged; look further upstream
            }
            match self.down_at(u, s) {
                Some(true) => cause = u,
                Some(false) => {}
                None if force => {}
                None => return None,
            }
        }
        Some(cause)
    }

    /// Whether group `u` was down at mono `s`: `Some(true/false)`, or `None` when
    /// that is not settled yet.
    fn down_at(&self, u: usize, s: Duration) -> Option<bool> {
        let grp = &self.groups[u];
        if grp.history.iter().any(|(lo, end)| *lo <= s && s < *end) {
            return Some(true);
        }
        if grp.down_start.is_some()
            && (grp.state == State::Down || grp.open.is_some() || grp.pending)
        {
            return Some(grp.down_lower <= s);
        }
        match grp.state {
            State::Unknown => None,
            State::Down => Some(false),
            State::Up => {
                // Could failing streaks in progress make it down, back-dated to before s?
                let reaching = grp
                    .targets
                    .iter()
                    .filter(|t| {
                        let t = &self.targets[**t];
                        t.state == State::Down || t.down_lower().is_some_and(|lo| lo <= s)
                    })
                    .count();
                if reaching >= self.k(u) {
                    None
                } else {
                    Some(false)
                }
            }
        }
    }

    /// Downtime to add per group since the last call, counting only time that is
    /// certainly down: never past the first success of a recovery still in progress.
    pub fn take_downtime(&mut self, now: Duration) -> Vec<(usize, Duration)> {
        let mut out = Vec::new();
        for g in 0..self.groups.len() {
            // Only a down group (or one owed time) accrues: skip the scan of
            // its targets otherwise, which per probe is O(targets).
            if self.groups[g].accounted.is_none() && self.groups[g].owed.is_zero() {
                continue;
            }
            let certain = self.groups[g]
                .targets
                .iter()
                .filter_map(|t| {
                    let t = &self.targets[*t];
                    (t.ok_streak > 0).then_some(t.ok_first?.mono)
                })
                .min()
                .map_or(now, |m| m.min(now));
            let grp = &mut self.groups[g];
            let mut add = std::mem::take(&mut grp.owed);
            if let Some(acc) = grp.accounted.as_mut()
                && certain > *acc
            {
                add += certain - *acc;
                *acc = certain;
            }
            if !add.is_zero() {
                out.push((g, add));
            }
        }
        out
    }

    /// State of target `t` and since when.
    pub fn target_state(&self, t: usize) -> Option<(State, Option<Stamp>)> {
        self.targets.get(t).map(|t| (t.state, t.since))
    }

    /// State of group `g` and since when.
    pub fn group_state(&self, g: usize) -> Option<(State, Option<Stamp>)> {
        self.groups.get(g).map(|g| (g.state, g.since))
    }

    /// Id of the outage open for group `g` (announced or adopted).
    pub fn open_outage(&self, g: usize) -> Option<&str> {
        let grp = self.groups.get(g)?;
        grp.open
            .as_ref()
            .map(|o| o.id.as_str())
            .or(grp.adopted.as_ref().map(|a| a.id.as_str()))
    }

    /// Ids of every outage open or adopted and not yet settled.
    pub fn open_ids(&self) -> Vec<String> {
        (0..self.groups.len())
            .filter_map(|g| self.open_outage(g).map(str::to_string))
            .collect()
    }
}

fn add(ts: Timestamp, d: Duration) -> Timestamp {
    truncate_ms(ts.checked_add(d).unwrap_or(ts))
}

/// `ts` truncated to whole milliseconds (the journal's precision).
pub fn truncate_ms(ts: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts)
}

fn wall_seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::outage::testutil::{chain, config, wall};

    /// Feeds `(target, second, success)` with wall = base + second and mono = second.
    fn run(d: &mut Detector, stream: &[(usize, f64, bool)]) -> Vec<Event> {
        stream
            .iter()
            .flat_map(|(t, s, ok)| d.observe(*t, wall(*s), Duration::from_secs_f64(*s), *ok))
            .collect()
    }

    fn started(ev: &[Event]) -> Vec<&OutageStarted> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Started(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn ended(ev: &[Event]) -> Vec<&OutageEnded> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Ended(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn single() -> Detector {
        Detector::new(&config(
            &[("internet", None, DownWhen::All)],
            &[("a", "internet")],
            Path::new("/nonexistent"),
        ))
    }

    /// One target, probes every second from `from`, `pattern` of successes.
    fn seq(t: usize, from: f64, pattern: &str) -> Vec<(usize, f64, bool)> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| (t, from + i as f64, c == '+'))
            .collect()
    }

    #[test]
    fn down_after_fail_after_and_up_after_recover_after_backdated() {
        let mut d = single();
        let ev = run(&mut d, &seq(0, 0.0, "++---"));
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].start, wall(2.0), "back-dated to the first failure");
        assert_eq!(s[0].cause, "internet");
        assert_eq!(s[0].targets, vec!["a".to_string()]);
        assert_eq!(s[0].id, format!("{}-internet", wall(2.0).as_millisecond()));
        let ev = run(&mut d, &seq(0, 5.0, "-+"));
        assert!(ended(&ev).is_empty(), "one success is not a recovery");
        let ev = run(&mut d, &seq(0, 7.0, "+"));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].end,
            wall(6.0),
            "back-dated to the first success of the streak"
        );
        assert_eq!(e[0].duration_seconds, 4.0);
        assert_eq!(e[0].duration_clock, DurationClock::Monotonic);
        assert!(e[0].end_observed);
    }

    #[test]
    fn flapping_shorter_than_fail_after_is_no_outage() {
        let mut d = single();
        let ev = run(&mut d, &seq(0, 0.0, "++--+--+-+--+--++"));
        assert!(started(&ev).is_empty());
        assert_eq!(d.target_state(0).unwrap().0, State::Up);
    }

    #[test]
    fn recovery_streak_broken_by_a_failure_restarts() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++---"));
        // +-+-+ never gives two successes in a row; then ++ at 10,11.
        let ev = run(&mut d, &seq(0, 5.0, "+-+-+-"));
        assert!(ended(&ev).is_empty());
        let ev = run(&mut d, &seq(0, 11.0, "++"));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].end, wall(11.0));
        assert_eq!(e[0].duration_seconds, 9.0);
    }

    fn three(dw: DownWhen) -> Detector {
        Detector::new(&config(
            &[("g", None, dw)],
            &[("a", "g"), ("b", "g"), ("c", "g")],
            Path::new("/nonexistent"),
        ))
    }

    /// All three targets up, then the first `down` targets fail from second 10
    /// (staggered by 0.1 s). Returns the outage starts.
    fn fail_some(d: &mut Detector, down: usize) -> Vec<Event> {
        let mut ev = Vec::new();
        for s in 0..10 {
            for t in 0..3 {
                ev.extend(d.observe(t, wall(s as f64), Duration::from_secs(s), true));
            }
        }
        for s in 10..14 {
            for t in 0..3 {
                let at = s as f64 + t as f64 * 0.1;
                ev.extend(d.observe(t, wall(at), Duration::from_secs_f64(at), t >= down));
            }
        }
        ev
    }

    #[test]
    fn group_all_needs_every_target_down() {
        for (down, expect) in [(1, 0), (2, 0), (3, 1)] {
            let mut d = three(DownWhen::All);
            let ev = fail_some(&mut d, down);
            assert_eq!(started(&ev).len(), expect, "{down} down");
        }
        let mut d = three(DownWhen::All);
        let ev = fail_some(&mut d, 3);
        // One fault: it began after the group's last success (9.2, c) and by
        // the first failure seen since (10.0, a), not when the last of them
        // noticed it (10.2).
        assert_eq!(started(&ev)[0].start, wall(10.0));
        assert_eq!(started(&ev)[0].targets, vec!["a", "b", "c"]);
    }

    /// A group of `a` probed every second and `slow`, a target that tests
    /// every 30 s (as a throughput target does).
    fn fast_and_slow(slow_votes: bool) -> Detector {
        let mut cfg = config(
            &[("g", None, DownWhen::All)],
            &[("a", "g"), ("slow", "g")],
            Path::new("/x"),
        );
        cfg.targets[1].interval = Duration::from_secs(30);
        if !slow_votes {
            let url = url::Url::parse("http://127.0.0.1:9/blob").unwrap();
            cfg.targets[1].spec = crate::config::TargetSpec::Throughput(
                crate::config::ThroughputSpec::new(url, crate::config::Direction::Download),
            );
        }
        Detector::new(&cfg)
    }

    #[test]
    fn throughput_target_never_holds_a_group_up() {
        let mut d = fast_and_slow(false);
        // The speed test succeeded at 0 s and 30 s; a answers until 40 s, then a
        // blackout: every probe of a fails from 40 s on.
        let mut ev = Vec::new();
        for s in 0..50u64 {
            if s % 30 == 0 {
                ev.extend(d.observe(1, wall(s as f64), Duration::from_secs(s), true));
            }
            ev.extend(d.observe(0, wall(s as f64), Duration::from_secs(s), s < 40));
        }
        let st = started(&ev);
        assert_eq!(st.len(), 1, "the blackout is an outage: {ev:?}");
        assert_eq!(st[0].start, wall(40.0));
        assert_eq!(st[0].targets, vec!["a"], "only voting targets are named");
    }

    #[test]
    fn a_vote_expires_after_fail_after_intervals() {
        // `slow` votes (a target every 30 s): its success at 0 s holds the
        // group up only until its horizon (3 × 30 s + 0.5 s) has passed.
        let mut d = fast_and_slow(true);
        let mut ev = Vec::new();
        ev.extend(d.observe(1, wall(0.0), Duration::ZERO, true));
        for s in 0..100u64 {
            ev.extend(d.observe(0, wall(s as f64), Duration::from_secs(s), s < 5));
            ev.extend(d.tick(Stamp {
                wall: wall(s as f64 + 0.5),
                mono: Duration::from_secs_f64(s as f64 + 0.5),
            }));
            // its next test is skipped (e.g. the day's data budget is spent)
        }
        let st = started(&ev);
        assert_eq!(st.len(), 1, "{ev:?}");
        // Announced once `slow`'s vote expired (90.5 s), back-dated to a's
        // first failure.
        assert_eq!(st[0].start, wall(5.0));
        assert_eq!(d.group_state(0).unwrap().0, State::Down);
    }

    #[test]
    fn random_loss_needs_a_longer_streak_than_a_clean_link() {
        let mut d = three(DownWhen::All);
        // 60 s of every other probe lost on all three targets, then a cut.
        let mut ev = Vec::new();
        let mut s = 0.0;
        for i in 0..60 {
            for t in 0..3 {
                // after 20 s, the three targets also lose a run of three or
                // four probes at the same time every 10 s: by fail_after
                // alone, each run would be an outage.
                let lost = i % 2 == 0 || (i >= 20 && (4..7).contains(&(i % 10)));
                ev.extend(d.observe(t, wall(s), Duration::from_secs_f64(s), !lost));
            }
            s += 1.0;
        }
        assert!(
            started(&ev).is_empty(),
            "runs of three or four amid 50 % loss are no outage: {ev:?}"
        );
        let cut = s;
        for _ in 0..12 {
            for t in 0..3 {
                ev.extend(d.observe(t, wall(s), Duration::from_secs_f64(s), false));
            }
            s += 1.0;
        }
        let st = started(&ev);
        assert_eq!(st.len(), 1, "a real cut still is: {ev:?}");
        assert!(st[0].start <= wall(cut), "back-dated to its first failure");
    }

    #[test]
    fn clean_link_keeps_fail_after() {
        let mut d = three(DownWhen::All);
        let mut ev = Vec::new();
        for s in 0..30u64 {
            for t in 0..3 {
                ev.extend(d.observe(t, wall(s as f64), Duration::from_secs(s), s < 20));
            }
        }
        let st = started(&ev);
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].start, wall(20.0));
        // Announced on the third failure (22 s), as before.
        assert!(
            d.group_state(0)
                .unwrap()
                .1
                .is_some_and(|s| s.wall == wall(20.0)),
            "{:?}",
            d.group_state(0)
        );
    }

    #[test]
    fn group_any_needs_one_target_down() {
        let mut d = three(DownWhen::Any);
        let ev = fail_some(&mut d, 1);
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].start, wall(10.0));
        assert_eq!(s[0].targets, vec!["a"]);
    }

    #[test]
    fn group_count_needs_n_targets_down() {
        for (down, expect) in [(1, 0), (2, 1), (3, 1)] {
            let mut d = three(DownWhen::AtLeast(2));
            let ev = fail_some(&mut d, down);
            assert_eq!(started(&ev).len(), expect, "{down} down");
            if expect == 1 {
                assert_eq!(
                    started(&ev)[0].start,
                    wall(10.0),
                    "the first failure after the group's last success"
                );
            }
        }
    }

    /// Probes the chain's three targets each second, internet first and lan last
    /// within the second; `ok(target, second)` says which succeed.
    fn drive(
        d: &mut Detector,
        secs: std::ops::Range<u32>,
        ok: impl Fn(usize, u32) -> bool,
    ) -> Vec<Event> {
        let mut ev = Vec::new();
        for s in secs {
            for (i, t) in [2usize, 1, 0].into_iter().enumerate() {
                let at = s as f64 + i as f64 * 0.3;
                ev.extend(d.observe(t, wall(at), Duration::from_secs_f64(at), ok(t, s)));
            }
        }
        ev
    }

    #[test]
    fn cause_is_farthest_upstream_on_three_level_chain() {
        let mut d = Detector::new(&chain(Path::new("/x")));
        drive(&mut d, 0..10, |_, _| true);
        // LAN fault at 10: everything fails. The internet target is probed first
        // in each second, so the internet group is judged down before lan is.
        let ev = drive(&mut d, 10..15, |_, _| false);
        let s = started(&ev);
        assert_eq!(s.len(), 3);
        for o in &s {
            assert_eq!(o.cause, "lan", "{} outage", o.group);
        }
        let ev = drive(&mut d, 20..23, |_, _| true);
        assert_eq!(ended(&ev).len(), 3);
        assert!(ended(&ev).iter().all(|e| e.cause == "lan"));
    }

    #[test]
    fn isp_fault_gives_cause_isp_and_no_lan_outage() {
        let mut d = Detector::new(&chain(Path::new("/x")));
        drive(&mut d, 0..10, |_, _| true);
        let ev = drive(&mut d, 10..15, |t, _| t == 0);
        let s = started(&ev);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|o| o.cause == "isp"));
        assert!(s.iter().all(|o| o.group != "lan"));
    }

    #[test]
    fn far_side_fault_is_only_that_group() {
        let mut d = Detector::new(&chain(Path::new("/x")));
        drive(&mut d, 0..10, |_, _| true);
        let ev = drive(&mut d, 10..15, |t, _| t != 2);
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].group.as_str(), s[0].cause.as_str()),
            ("internet", "internet")
        );
    }

    #[test]
    fn upstream_failing_later_is_not_the_cause() {
        let mut d = Detector::new(&chain(Path::new("/x")));
        drive(&mut d, 0..10, |_, _| true);
        // internet fails from 10, lan only from 20: internet's cause stays internet.
        let ev = drive(&mut d, 10..25, |t, s| match t {
            2 => false,
            0 => s < 20,
            _ => true,
        });
        let s = started(&ev);
        let internet = s.iter().find(|o| o.group == "internet").unwrap();
        assert_eq!(internet.cause, "internet");
        let lan = s.iter().find(|o| o.group == "lan").unwrap();
        assert_eq!(lan.cause, "lan");
    }

    #[test]
    fn wall_clock_jump_mid_outage_does_not_bend_duration() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++---"));
        // The wall clock steps back one hour at mono 6; mono goes on.
        let mut ev = Vec::new();
        for (i, ok) in [false, false, true, true].into_iter().enumerate() {
            let mono = 6.0 + i as f64;
            ev.extend(d.observe(0, wall(mono - 3600.0), Duration::from_secs_f64(mono), ok));
        }
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].duration_seconds, 6.0,
            "from 2 to 8 by the monotonic clock"
        );
        assert_eq!(e[0].start, wall(2.0));
        assert_eq!(
            e[0].end,
            wall(8.0),
            "start + monotonic duration, not the stepped wall clock"
        );
        // And a forward jump of a day.
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++---"));
        let ev: Vec<Event> = [false, true, true]
            .into_iter()
            .enumerate()
            .flat_map(|(i, ok)| {
                let mono = 5.0 + i as f64;
                d.observe(0, wall(mono + 86400.0), Duration::from_secs_f64(mono), ok)
            })
            .collect();
        assert_eq!(ended(&ev)[0].duration_seconds, 4.0);
    }

    #[test]
    fn never_answered_target_is_not_a_phantom_up() {
        let mut d = Detector::new(&config(
            &[("g", None, DownWhen::All)],
            &[("a", "g"), ("b", "g")],
            Path::new("/x"),
        ));
        // b is never probed; a answers once: nothing is decided.
        d.observe(0, wall(0.0), Duration::ZERO, true);
        assert_eq!(d.target_state(0).unwrap().0, State::Unknown);
        assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
        // a fails three times: a is down, b unknown → the group is not judged.
        let ev = run(&mut d, &seq(0, 1.0, "---"));
        assert_eq!(d.target_state(0).unwrap().0, State::Down);
        assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
        assert!(started(&ev).is_empty());
        // b never answered and fails three times: it is down (never up), group down.
        let ev = run(&mut d, &seq(1, 1.5, "---"));
        assert_eq!(started(&ev).len(), 1);
        assert_eq!(
            started(&ev)[0].start,
            wall(1.0),
            "the first failure after the group's last success (a at 0.0)"
        );
        // A group with no targets is reported unknown.
        let d = Detector::new(&config(
            &[("empty", None, DownWhen::All), ("g", None, DownWhen::Any)],
            &[("a", "g")],
            Path::new("/x"),
        ));
        assert_eq!(d.group_state(0).unwrap().0, State::Unknown);
    }

    #[test]
    fn failing_from_start_is_down_back_dated_to_first_probe() {
        let mut d = single();
        let ev = run(&mut d, &seq(0, 0.0, "---"));
        assert_eq!(started(&ev)[0].start, wall(0.0));
    }

    #[test]
    fn adopted_outage_resumes_with_a_gap_when_still_down() {
        let mut d = single();
        assert!(d.adopt(
            "internet",
            Adopted {
                id: "old-internet".into(),
                cause: "internet".into(),
                start: wall(-100.0),
                targets: vec!["a".into()],
                gaps: vec![],
                last_seen: wall(-50.0),
                start_observed: true,
            }
        ));
        assert_eq!(d.open_outage(0), Some("old-internet"));
        let ev = run(&mut d, &seq(0, 0.0, "---"));
        assert!(started(&ev).is_empty(), "the same outage continues");
        let r = ev
            .iter()
            .find_map(|e| match e {
                Event::Resumed(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(r.id, "old-internet");
        assert_eq!(
            r.gap,
            Gap {
                from: wall(-50.0),
                to: wall(0.0)
            }
        );
        let ev = run(&mut d, &seq(0, 3.0, "++"));
        let e = ended(&ev);
        assert_eq!(e[0].id, "old-internet");
        assert_eq!(e[0].end, wall(3.0));
        assert_eq!(e[0].gaps.len(), 1);
        assert!(e[0].end_observed);
        assert_eq!(e[0].duration_clock, DurationClock::Wall);
        assert_eq!(e[0].duration_seconds, 103.0);
    }

    #[test]
    fn adopted_outage_found_up_is_closed_unobserved() {
        let mut d = single();
        d.adopt(
            "internet",
            Adopted {
                id: "old".into(),
                cause: "internet".into(),
                start: wall(-100.0),
                targets: vec!["a".into()],
                gaps: vec![],
                last_seen: wall(-50.0),
                start_observed: true,
            },
        );
        let ev = run(&mut d, &seq(0, 0.0, "++"));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert!(!e[0].end_observed);
        assert_eq!(e[0].end, wall(-50.0), "the last moment it was seen down");
        assert_eq!(
            e[0].gaps,
            vec![Gap {
                from: wall(-50.0),
                to: wall(0.0)
            }]
        );
        assert_eq!(e[0].duration_seconds, 50.0);
    }

    #[test]
    fn ids_never_collide() {
        let mut d = single();
        d.reserve_ids([format!("{}-internet", wall(2.0).as_millisecond())]);
        let ev = run(&mut d, &seq(0, 0.0, "++---"));
        assert_eq!(
            started(&ev)[0].id,
            format!("{}-internet-2", wall(2.0).as_millisecond())
        );
    }

    #[test]
    fn downtime_never_counts_past_the_recovery() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++---"));
        let mut total = Duration::ZERO;
        total += d
            .take_downtime(Duration::from_secs(5))
            .iter()
            .map(|x| x.1)
            .sum::<Duration>();
        run(&mut d, &seq(0, 5.0, "+"));
        total += d
            .take_downtime(Duration::from_secs(6))
            .iter()
            .map(|x| x.1)
            .sum::<Duration>();
        run(&mut d, &seq(0, 6.0, "+"));
        total += d
            .take_downtime(Duration::from_secs(7))
            .iter()
            .map(|x| x.1)
            .sum::<Duration>();
        assert_eq!(total, Duration::from_secs(3), "down from 2 to 5");
        assert!(d.take_downtime(Duration::from_secs(9)).is_empty());
    }

    fn at(s: f64) -> Stamp {
        Stamp {
            wall: wall(s),
            mono: Duration::from_secs_f64(s),
        }
    }

    fn gap(from: f64, to: f64) -> Gap {
        Gap {
            from: wall(from),
            to: wall(to),
        }
    }

    #[test]
    fn outage_ending_inside_a_stall_has_an_unobserved_end_bounded_by_it() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++--------"));
        // Stopped from 9.5 to 39.5; the fault ended at about 14.5.
        let ev = d.stall(at(9.5), at(39.5));
        assert_eq!(
            ev,
            vec![Event::Gaps {
                id: d.open_outage(0).unwrap().to_string(),
                gaps: vec![gap(9.5, 39.5)]
            }],
            "the open outage shows the stall at once"
        );
        let ev = run(&mut d, &seq(0, 40.0, "++"));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert!(!e[0].end_observed, "nobody saw it end");
        assert!(e[0].start_observed);
        assert_eq!(e[0].end, wall(9.5), "the last moment it was known down");
        assert_eq!(
            e[0].gaps,
            vec![gap(9.5, 40.0)],
            "the end lies in the last gap"
        );
        assert_eq!(e[0].duration_seconds, 7.5);
        assert_eq!(e[0].duration_clock, DurationClock::Monotonic);

        // The stall's start is the last tick before the stop; a failure seen
        // after it is the last moment seen down, and the last gap starts there.
        let mut d = single();
        let mut stream = seq(0, 0.0, "++--------");
        stream.push((0, 9.7, false));
        run(&mut d, &stream);
        d.stall(at(9.5), at(39.5));
        let ev = run(&mut d, &seq(0, 40.0, "++"));
        let e = ended(&ev);
        assert!(!e[0].end_observed);
        assert_eq!(e[0].end, wall(9.7));
        assert_eq!(e[0].gaps, vec![gap(9.7, 40.0)]);
    }

    #[test]
    fn outage_starting_inside_a_stall_has_an_unobserved_start_at_its_beginning() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++++++++++"));
        assert!(d.stall(at(9.5), at(39.5)).is_empty(), "nothing open");
        let ev = run(&mut d, &seq(0, 40.0, "---"));
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert!(!s[0].start_observed);
        assert_eq!(s[0].start, wall(9.5), "the earliest it could have begun");
        assert_eq!(s[0].gaps, vec![gap(9.5, 40.0)]);
        let ev = run(&mut d, &seq(0, 43.0, "++"));
        let e = ended(&ev);
        assert!(!e[0].start_observed);
        assert!(e[0].end_observed);
        assert_eq!(e[0].end, wall(43.0));
        assert_eq!(e[0].gaps, vec![gap(9.5, 40.0)]);
        assert_eq!(e[0].duration_seconds, 33.5);
    }

    #[test]
    fn a_stall_with_no_outage_changes_nothing() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++++++++++"));
        assert!(d.stall(at(9.5), at(39.5)).is_empty());
        let ev = run(&mut d, &seq(0, 40.0, "++++"));
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(d.target_state(0).unwrap().0, State::Up);
        assert!(d.take_downtime(Duration::from_secs(44)).is_empty());
    }

    #[test]
    fn a_stall_during_an_outage_that_goes_on_is_one_of_its_gaps_and_not_downtime() {
        let mut d = single();
        run(&mut d, &seq(0, 0.0, "++--------"));
        let mut downtime = Duration::ZERO;
        let mut take = |d: &mut Detector, now: f64| {
            downtime += d
                .take_downtime(Duration::from_secs_f64(now))
                .iter()
                .map(|x| x.1)
                .sum::<Duration>();
        };
        take(&mut d, 9.0);
        d.stall(at(9.5), at(39.5));
        let ev = run(&mut d, &seq(0, 40.0, "-----"));
        assert!(ended(&ev).is_empty() && started(&ev).is_empty());
        take(&mut d, 44.0);
        let ev = run(&mut d, &seq(0, 45.0, "++"));
        take(&mut d, 46.0);
        let e = ended(&ev);
        assert!(e[0].start_observed && e[0].end_observed, "both edges seen");
        assert_eq!(e[0].end, wall(45.0));
        assert_eq!(e[0].gaps, vec![gap(9.5, 39.5)]);
        assert_eq!(e[0].duration_seconds, 43.0);
        assert_eq!(
            downtime,
            Duration::from_secs(13),
            "2 to 9.5 and 39.5 to 45: the stall is not counted"
        );
    }

    #[test]
    fn edges_between_observations_more_than_two_intervals_apart_are_unobserved() {
        // Exactly two intervals apart: still seen.
        let mut d = single();
        let mut stream = seq(0, 0.0, "+++");
        stream.extend(seq(0, 4.0, "---"));
        let s = run(&mut d, &stream);
        assert!(started(&s)[0].start_observed);
        assert_eq!(started(&s)[0].start, wall(4.0));
        // Six seconds without an observation (no stall reported: a starved
        // scheduler, say): the start is bounded by the two observations.
        let mut d = single();
        let mut stream = seq(0, 0.0, "++++++++++");
        stream.extend(seq(0, 15.0, "------"));
        let ev = run(&mut d, &stream);
        let s = started(&ev);
        assert!(!s[0].start_observed);
        assert_eq!(s[0].start, wall(9.0), "just after the last success");
        assert_eq!(s[0].gaps, vec![gap(9.0, 15.0)]);
        // And the end: last failure at 20, next observation at 30.
        let ev = run(&mut d, &seq(0, 30.0, "++"));
        let e = ended(&ev);
        assert!(!e[0].end_observed);
        assert_eq!(e[0].end, wall(20.0));
        assert_eq!(e[0].gaps, vec![gap(9.0, 15.0), gap(20.0, 30.0)]);
        assert_eq!(e[0].duration_seconds, 11.0);
    }

    #[test]
    fn a_group_start_inside_a_stall_is_unobserved_for_every_group_on_the_chain() {
        let mut d = Detector::new(&chain(Path::new("/x")));
        drive(&mut d, 0..10, |_, _| true);
        d.stall(at(9.95), at(39.5));
        // A LAN fault began during the stall: everything fails after it.
        let ev = drive(&mut d, 40..45, |_, _| false);
        let s = started(&ev);
        assert_eq!(s.len(), 3);
        for o in &s {
            assert_eq!(o.cause, "lan", "{}", o.group);
            assert!(!o.start_observed);
            assert_eq!(o.start, wall(9.95));
        }
    }

    #[test]
    fn a_reload_keeps_kept_outages_ends_removed_ones_and_starts_added_targets_unknown() {
        use crate::config::diff::Diff;
        let dir = Path::new("/x");
        let old = config(
            &[
                ("lan", None, DownWhen::All),
                ("gone", None, DownWhen::All),
                ("wan", None, DownWhen::All),
            ],
            &[("a", "lan"), ("g", "gone"), ("w", "wan")],
            dir,
        );
        let mut d = Detector::new(&old);
        // a and g fail: outages of lan and gone; w is up.
        let mut stream = seq(0, 0.0, "-----");
        stream.extend(seq(1, 0.0, "-----"));
        stream.extend(seq(2, 0.0, "+++++"));
        let ev = run(&mut d, &stream);
        let s = started(&ev);
        assert_eq!(s.len(), 2);
        let lan_id = s.iter().find(|o| o.group == "lan").unwrap().id.clone();
        // New: `gone` removed, `w` kept, `x` added to wan, groups reordered.
        let new = config(
            &[("wan", None, DownWhen::All), ("lan", None, DownWhen::All)],
            &[("x", "wan"), ("w", "wan"), ("a", "lan")],
            dir,
        );
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.targets, vec![None, Some(2), Some(0)]);
        let ev = d.reload(&new, &diff, at(5.5));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].group, "gone");
        assert_eq!(e[0].end_reason, Some(EndReason::Removed));
        assert_eq!(e[0].end, wall(5.5));
        assert!(started(&ev).is_empty());
        // lan (now group 1, target 2) goes on: same outage, its streak too.
        assert_eq!(d.open_outage(1), Some(lan_id.as_str()));
        assert_eq!(d.target_state(2).unwrap().0, State::Down);
        assert_eq!(d.target_state(1).unwrap().0, State::Up);
        assert_eq!(d.target_state(0).unwrap().0, State::Unknown);
        // wan: w up, x unknown → up (down_when all cannot hold with w up).
        assert_eq!(d.group_state(0).unwrap().0, State::Up);
        let ev = run(&mut d, &seq(2, 6.0, "-"));
        assert!(started(&ev).is_empty() && ended(&ev).is_empty());
        // lan recovers: its one outage ends normally, not split.
        let ev = run(&mut d, &seq(2, 7.0, "++"));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].id, lan_id);
        assert_eq!(e[0].start, wall(0.0));
        assert_eq!(e[0].end_reason, None);
    }

    #[test]
    fn a_group_redefined_so_that_it_is_no_longer_down_ends_as_reconfigured() {
        use crate::config::diff::Diff;
        let dir = Path::new("/x");
        let old = config(
            &[("lan", None, DownWhen::Any)],
            &[("a", "lan"), ("b", "lan")],
            dir,
        );
        let mut d = Detector::new(&old);
        let mut stream = seq(0, 0.0, "----");
        stream.extend(seq(1, 0.0, "++++"));
        assert_eq!(started(&run(&mut d, &stream)).len(), 1);
        // `a` is removed: with `b` alone, lan is up.
        let new = config(&[("lan", None, DownWhen::Any)], &[("b", "lan")], dir);
        let ev = d.reload(&new, &Diff::between(&old, &new), at(4.5));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].end_reason, Some(EndReason::Reconfigured));
        assert_eq!(d.group_state(0).unwrap().0, State::Up);
    }
}
