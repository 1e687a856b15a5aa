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
use super::interference::{Sign, Tally};
use super::period::{self, Carried, Closed, Life, Open, Phase, add};
pub use super::period::{Stamp, truncate_ms};
use crate::config::diff::Diff;
use crate::config::{Config, DownWhen};
use crate::interference::CAUSE;
use crate::journal::record::InterferenceSummary;
use crate::journal::{EndReason, Gap, OutageEnded, OutageResumed, OutageStarted, push_gap};

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
    /// Its interference summary, when its cause is `interference`.
    pub interference: Option<Box<InterferenceSummary>>,
}

impl From<Adopted> for Carried<Outage> {
    fn from(a: Adopted) -> Self {
        let start_observed = a.start_observed;
        let outage = Outage {
            start_observed,
            targets: a.targets,
            tally: a
                .interference
                .as_deref()
                .map(Tally::from_summary)
                .unwrap_or_default(),
        };
        Carried::new(a.id, a.cause, a.start, a.gaps, a.last_seen, outage)
    }
}

/// What an outage keeps besides its lifecycle ([`period`]).
#[derive(Debug, Clone, PartialEq)]
struct Outage {
    start_observed: bool,
    targets: Vec<String>,
    /// Failures of its down targets over the whole period (see
    /// [`super::interference`]): the summary of an `interference` outage.
    tally: Tally,
}

/// A group's outages: the pending one waits with the stalls met meanwhile.
type Outages = Life<Outage, Vec<Gap>, Outage>;

/// The `outage_end` of a closed outage of `group`.
fn outage_ended(group: &str, c: Closed<Outage>, end_reason: Option<EndReason>) -> OutageEnded {
    OutageEnded {
        interference: (c.cause == CAUSE).then(|| Box::new(c.extra.tally.summary())),
        id: c.id,
        group: group.to_string(),
        cause: c.cause,
        start: c.start,
        start_observed: c.extra.start_observed,
        end: c.end,
        duration_seconds: c.duration_seconds,
        duration_clock: c.clock,
        end_observed: c.end_observed,
        targets: c.extra.targets,
        gaps: c.gaps,
        end_reason,
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
    /// Failures of its current failing streak, those with a sign of
    /// interference, and the signs' checks and names (boxed: most targets
    /// never show one, and this is per target).
    streak_fails: u32,
    streak_signs: u32,
    streak_seen: Option<Box<Tally>>,
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

    /// Its current failing streak, tallied (see [`super::interference`]).
    fn streak_tally(&self) -> Tally {
        let mut t = self.streak_seen.as_deref().cloned().unwrap_or_default();
        t.failures = u64::from(self.streak_signs);
        t.of_failures = u64::from(self.streak_fails);
        t
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
    /// Its outage: pending while down and not announced yet (its cause is
    /// still being settled), open, or carried over from the previous run;
    /// recent finished down periods of this process, `(lower bound, end)`
    /// in mono; downtime not yet handed out.
    life: Outages,
}

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
    let removed = Some(EndReason::Removed);
    if let Some(a) = grp.life.carried.take() {
        // Adopted from the previous run and not seen again: as recovery
        // closes one whose group is gone, at its last sign of life.
        let closed = a.end_unseen(now.wall, true);
        events.push(Event::Ended(outage_ended(&grp.name, closed, removed)));
    }
    if grp.life.phase.is_pending() {
        tracing::info!(group = %grp.name, "group removed by a reload while down, before its outage was announced; no outage recorded");
    }
    if let Some(open) = grp.life.phase.take_open() {
        let closed = open.close(now, true);
        events.push(Event::Ended(outage_ended(&grp.name, closed, removed)));
    }
}

/// Groups ordered upstream first.
fn order_of(groups: &[GroupTrack]) -> Vec<usize> {
    period::upstream_first(groups.len(), |g| groups[g].needs)
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
            streak_fails: 0,
            streak_signs: 0,
            streak_seen: None,
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
            life: Outages::default(),
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
        let life = self.groups.iter_mut().find(|g| g.name == group);
        period::adopt(&mut self.ids, life.map(|g| &mut g.life), outage.into())
    }

    /// Feeds one probe result of target index `target` (into `Config::targets`).
    pub fn observe(
        &mut self,
        target: usize,
        wall: Timestamp,
        mono: Duration,
        success: bool,
    ) -> Vec<Event> {
        self.observe_sign(target, wall, mono, success, None)
    }

    /// [`Self::observe`] of a result whose failure carried a sign of
    /// interference (`sign`, only on a failure): it counts towards the cause
    /// `interference` (see [`super::interference`]).
    pub fn observe_sign(
        &mut self,
        target: usize,
        wall: Timestamp,
        mono: Duration,
        success: bool,
        sign: Option<Sign<'_>>,
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
        if !success {
            if t.fail_streak == 1 {
                t.streak_fails = 0;
                t.streak_signs = 0;
                t.streak_seen = None;
            }
            t.streak_fails = t.streak_fails.saturating_add(1);
            if let Some(s) = sign {
                t.streak_signs = t.streak_signs.saturating_add(1);
                t.streak_seen
                    .get_or_insert_with(Box::default)
                    .saw(&t.name, s);
            }
        }
        if changed.is_none()
            && !success
            && t.state == State::Down
            && t.votes
            && let Some(open) = self
                .groups
                .get_mut(t.group)
                .and_then(|g| g.life.phase.open_mut())
        {
            // A failure of a down target of the open outage (every down
            // target of its group is one of its targets; no lookup per
            // probe): the whole period's tally.
            open.extra.tally.fail(&t.name, sign);
        }
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
                    && let Some(open) = g.life.phase.open_mut()
                {
                    // It joins the outage with its failing streak.
                    open.extra.tally.merge(&t.streak_tally());
                    if !open.extra.targets.contains(&name) {
                        open.extra.targets.push(name);
                    }
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
            grp.life.time.stall(from.mono, to.mono);
            match &mut grp.life.phase {
                Phase::Open(open) => {
                    let gap = Gap {
                        from: open.wall_at(from),
                        to: open.wall_at(to),
                    };
                    push_gap(&mut open.gaps, gap);
                    events.push(Event::Gaps {
                        id: open.id.clone(),
                        gaps: open.gaps.clone(),
                    });
                }
                Phase::Pending(gaps) => push_gap(gaps, gap),
                Phase::Idle => {}
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

    /// Judges group `g` again after a change at `trigger` (`edge`: the
    /// change was unseen) and moves it to its new state.
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
            State::Down => self.mark_down(g, trigger, edge, events),
            State::Up => self.mark_up(g, old, trigger, edge, events),
            State::Unknown => self.mark_unknown(g, trigger, events),
        }
    }

    /// Group `g` is down: its outage goes on, resumes (adopted) or waits
    /// for its cause (pending).
    fn mark_down(&mut self, g: usize, trigger: Stamp, edge: Option<Edge>, events: &mut Vec<Event>) {
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
        let streaks = self.down_streaks(g);
        self.set_state(g, State::Down, start, events);
        let grp = &mut self.groups[g];
        if !grp.life.phase.is_idle() {
            // Down → Unknown → Down: the same outage goes on.
            return;
        }
        grp.down_start = Some(start);
        grp.down_lower = lower;
        grp.down_edge = start_edge;
        // Downtime counts from the first failure seen, not from a guess.
        grp.life
            .time
            .begin(start_edge.map_or(start.mono, |e| e.hi.mono));
        grp.life.phase = match grp.life.carried.take() {
            Some(a) => {
                let (gap, mut open) = a.resume(start, |o| o);
                open.extra.tally.merge(&streaks);
                let targets = &mut open.extra.targets;
                for n in down_names {
                    if !targets.contains(&n) {
                        targets.push(n);
                    }
                }
                events.push(Event::Resumed(OutageResumed {
                    id: open.id.clone(),
                    group: grp.name.clone(),
                    cause: open.cause.clone(),
                    start: open.start,
                    gap,
                    targets: targets.clone(),
                }));
                Phase::Open(open)
            }
            None => Phase::Pending(Vec::new()),
        };
    }

    /// Group `g` is up (it was `old`): its outage ends, announced first if
    /// its cause was still settling.
    fn mark_up(
        &mut self,
        g: usize,
        old: State,
        trigger: Stamp,
        edge: Option<Edge>,
        events: &mut Vec<Event>,
    ) {
        let floor = self.groups[g].down_start;
        let mut since = trigger;
        if let Some(f) = floor
            && old != State::Up
            && since.mono < f.mono
        {
            since = f;
        }
        self.set_state(g, State::Up, since, events);
        if self.groups[g].life.phase.is_pending() {
            // Ending before its cause settled: decide with what is known now.
            let cause = self.cause_of(g, true).unwrap_or(g);
            self.announce(g, cause, events);
        }
        self.end(g, since, edge, events);
    }

    /// Group `g` is undecided from `at` (an open outage stays open).
    fn mark_unknown(&mut self, g: usize, at: Stamp, events: &mut Vec<Event>) {
        self.set_state(g, State::Unknown, at, events);
    }

    /// Group `g` is `state` from `since`.
    fn set_state(&mut self, g: usize, state: State, since: Stamp, events: &mut Vec<Event>) {
        let grp = &mut self.groups[g];
        grp.state = state;
        grp.since = Some(since);
        events.push(Event::Group {
            group: g,
            state,
            since,
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

    /// The failing streaks of group `g`'s down targets, tallied.
    fn down_streaks(&self, g: usize) -> Tally {
        let mut tally = Tally::default();
        for t in &self.groups[g].targets {
            let t = &self.targets[*t];
            if t.state == State::Down {
                tally.merge(&t.streak_tally());
            }
        }
        tally
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
        if let Some(a) = grp.life.carried.take() {
            // Adopted, never seen down again: it ended while nobody watched.
            let closed = a.end_unseen(at.wall, true);
            events.push(Event::Ended(outage_ended(&grp.name, closed, None)));
        }
        if let Some(open) = grp.life.phase.take_open() {
            if let Some(start) = grp.down_start {
                grp.life.remember(grp.down_lower, at.mono.max(start.mono));
            }
            grp.life.time.stop(at.mono);
            let mut closed = open.close(at, edge.is_none());
            if let Some(e) = edge {
                // The true end lies in the last gap: from the last moment seen
                // down to the first success seen. A stall that began before
                // `end` is folded in from `end` on: the group was seen down
                // then, so the process ran (a stall's start is its last tick
                // before stopping, a little early).
                let end = closed.end;
                let mut last = Gap {
                    from: end,
                    to: add(end, e.hi.mono.saturating_sub(at.mono)),
                };
                closed.gaps.retain(|g| {
                    let after = g.to >= end;
                    if after {
                        last.to = last.to.max(g.to);
                    }
                    !after
                });
                closed.gaps.push(last);
            }
            events.push(Event::Ended(outage_ended(&grp.name, closed, None)));
        }
        grp.down_start = None;
        grp.down_edge = None;
        grp.life.phase = Phase::Idle;
    }

    fn announce(&mut self, g: usize, cause: usize, events: &mut Vec<Event>) {
        let Some(start) = self.groups[g].down_start else {
            return;
        };
        let targets = self.down_target_names(g);
        // Its own failures: the failing streaks of its down targets.
        let tally = self.down_streaks(g);
        // The farthest-upstream group down is this one, and its failures
        // are mostly signs of interference: made on purpose, not a broken link.
        let interference = cause == g && tally.majority();
        let cause = if interference {
            CAUSE.to_string()
        } else {
            self.groups[cause].name.clone()
        };
        let name = self.groups[g].name.clone();
        let id = period::mint(&mut self.ids, start.wall, &name, "");
        let grp = &mut self.groups[g];
        let mut gaps = grp.life.phase.take_pending().unwrap_or_default();
        if let Some(e) = grp.down_edge {
            push_gap(&mut gaps, e.gap());
        }
        let start_observed = grp.down_edge.is_none();
        events.push(Event::Started(OutageStarted {
            interference: interference.then(|| Box::new(tally.summary())),
            id: id.clone(),
            group: name,
            cause: cause.clone(),
            start: start.wall,
            start_observed,
            targets: targets.clone(),
            gaps: gaps.clone(),
        }));
        let outage = Outage {
            start_observed,
            targets,
            tally,
        };
        grp.life.phase = Phase::Open(Open::new(id, cause, start, gaps, outage));
    }

    fn resolve_pending(&mut self, events: &mut Vec<Event>) {
        for i in 0..self.order.len() {
            let g = self.order[i];
            if self.groups[g].life.phase.is_pending()
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
        let needs = |u: usize| self.groups[u].needs;
        period::farthest_upstream(g, self.groups.len(), needs, |u| {
            if self.groups[u].targets.is_empty() {
                return Some(false); // cannot be judged; look further upstream
            }
            match self.down_at(u, s) {
                None if force => Some(false),
                affected => affected,
            }
        })
    }

    /// Whether group `u` was down at mono `s`: `Some(true/false)`, or `None` when
    /// that is not settled yet.
    fn down_at(&self, u: usize, s: Duration) -> Option<bool> {
        let grp = &self.groups[u];
        if grp.life.recent().any(|(lo, end)| *lo <= s && s < *end) {
            return Some(true);
        }
        if grp.down_start.is_some() && (grp.state == State::Down || !grp.life.phase.is_idle()) {
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
            if !self.groups[g].life.time.due() {
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
            if let Some(add) = self.groups[g].life.time.take(certain) {
                out.push((g, add));
            }
        }
        out
    }

    /// State of target `t` and since when.
    pub fn target_state(&self, t: usize) -> Option<(State, Option<Stamp>)> {
        self.targets.get(t).map(|t| (t.state, t.since))
    }

    /// Whether target `t`'s group counts it down now: it votes, and it is
    /// down with a failing streak of its loss-adjusted need (held once its
    /// group is down). A target down by its own `fail_after` streak during
    /// random loss is not, yet.
    pub fn counted_down(&self, t: usize) -> bool {
        self.targets.get(t).is_some_and(|tr| {
            let holding = self
                .groups
                .get(tr.group)
                .is_some_and(|g| g.state == State::Down);
            tr.votes && tr.counts_down(holding)
        })
    }

    /// State of group `g` and since when.
    pub fn group_state(&self, g: usize) -> Option<(State, Option<Stamp>)> {
        self.groups.get(g).map(|g| (g.state, g.since))
    }

    /// Id of the outage open for group `g` (announced or adopted).
    pub fn open_outage(&self, g: usize) -> Option<&str> {
        self.groups.get(g)?.life.open_id()
    }

    /// The id and the summary so far of target `t`'s group's open outage,
    /// when its cause is `interference`.
    /// Target `t`'s name and its group's, when `t` is a target.
    pub fn names_of(&self, t: usize) -> Option<(&str, &str)> {
        let track = self.targets.get(t)?;
        let group = self.groups.get(track.group)?;
        Some((track.name.as_str(), group.name.as_str()))
    }

    pub fn open_interference(&self, t: usize) -> Option<(&str, InterferenceSummary)> {
        let g = self.groups.get(self.targets.get(t)?.group)?;
        let open = g.life.phase.open()?;
        (open.cause == CAUSE).then(|| (open.id.as_str(), open.extra.tally.summary()))
    }

    /// Ids of every outage open or adopted and not yet settled.
    pub fn open_ids(&self) -> Vec<String> {
        (0..self.groups.len())
            .filter_map(|g| self.open_outage(g).map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests;
