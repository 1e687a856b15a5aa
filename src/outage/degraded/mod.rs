//! Degradation periods wired to the daemon: the pure
//! [`SlowTracker`](super::slow::SlowTracker) tracker fed every probe
//! result and the detector's group states, its events journaled (by the
//! outage service, in the same hash chain), logged, counted and shown by the
//! API; periods left open by the previous run adopted as outages are.
//!
//! Decisions:
//! - A target's samples are fed while it is not down (after hysteresis): a
//!   target that is down (an IPv6 target on an IPv4-only line, a host that
//!   is gone) is an outage of that target, not packet loss of its group.
//!   The failures of its streak before it was called down do count.
//! - `settle` = `fail_after` × the longest interval of the group's targets,
//!   so that a failing streak about to become an outage never leaves a
//!   degradation behind; `throughput_hold` = 1.5 × the longest interval of
//!   its throughput targets (none yet: the window).
//! - Per probe the cost is index lookups and the tracker's amortised O(1)
//!   update; no lock, no allocation. Gauges are set once a second, on tick.

pub mod listing;
pub(crate) mod metrics;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use jiff::Timestamp;

use super::detector::{Stamp, State};
use super::interference::{Sign, Tally};
use super::slow::{
    AdoptedSlowPeriod, GroupSpec, Sample, SampleKind, SlowEvent, SlowTracker, Thresholds,
};
use crate::config::Direction;
use crate::config::diff::Diff;
use crate::config::{Config, Kind};
use crate::interference::Check;
use crate::journal::Entry;
use crate::journal::Ledger;
use crate::journal::record::InterferenceSummary;
use crate::journal::ts_ms;
use crate::journal::{DegradedEnded, DegradedResumed, DegradedStarted};
use crate::journal::{DurationClock, Gap};
pub use crate::journal::{SlowPeriodLedger, SlowPeriodRecord};
use crate::probe::{Observation, Outcome};
pub use metrics::DegradationMetrics;
use std::collections::VecDeque;

/// How often the window figures are exported and time passes in the tracker.
pub const TICK_EVERY: Duration = Duration::from_secs(1);

/// The tracker's view of the configuration.
pub fn group_specs(config: &Config) -> Vec<GroupSpec> {
    config
        .groups
        .iter()
        .map(|g| {
            let members = config.targets.iter().filter(|t| t.group == g.name);
            // Throughput tests run every half hour: a failing streak of them
            // takes hours to make an outage, and a slow period (slow tests
            // succeed) is not its beginning. Waiting for them would hold
            // every announcement of the group back by `fail_after` tests.
            let settle = members
                .clone()
                .filter(|t| t.kind() != Kind::Throughput)
                .map(|t| t.interval * t.fail_after)
                .max()
                .unwrap_or_default();
            let d = &g.degraded;
            GroupSpec {
                name: g.name.clone(),
                needs: g
                    .needs
                    .as_ref()
                    .and_then(|n| config.groups.iter().position(|x| &x.name == n)),
                thresholds: Thresholds {
                    window: d.window,
                    min_samples: d.min_samples,
                    loss_above: d.loss_above,
                    rtt_p50_above: d.rtt_p50_above,
                    rtt_p95_above: d.rtt_p95_above,
                    throughput_below: d.throughput_below.and_then(|f| f.bps),
                    throughput_upload_below: d.throughput_below.and_then(|f| f.upload_bps),
                    // The last test counts until about the next one is due
                    // (never less than a window).
                    throughput_hold: members
                        .clone()
                        .filter(|t| t.kind() == Kind::Throughput)
                        .map(|t| t.interval.mul_f64(1.5))
                        .max()
                        .unwrap_or_default()
                        .max(d.window),
                    dns_p95_above: d.dns_p95_above,
                    http_p95_above: d.http_p95_above,
                    loaded_latency_above: d.loaded_latency_increase_above,
                },
                settle,
            }
        })
        .collect()
}

/// Per target: its group index and what its results feed.
fn targets_of(config: &Config) -> Vec<(usize, SampleKind)> {
    config
        .targets
        .iter()
        .map(|t| {
            let g = config
                .groups
                .iter()
                .position(|g| g.name == t.group)
                .unwrap_or(usize::MAX);
            (g, sample_kind(t.kind()))
        })
        .collect()
}

/// Which figures a target's results feed.
fn sample_kind(kind: Kind) -> SampleKind {
    match kind {
        Kind::Icmp => SampleKind::Icmp,
        Kind::Tcp => SampleKind::Tcp,
        Kind::Http => SampleKind::Http,
        Kind::Dns => SampleKind::Dns,
        Kind::Throughput => SampleKind::Throughput,
    }
}

/// Slow periods as this process knows them, for the API.
#[derive(Debug, Default)]
pub struct LiveSlowPeriods {
    closed: Vec<SlowPeriodRecord>,
    /// Open ones with their monotonic start, when it is this process's.
    open: Vec<(SlowPeriodRecord, Option<Duration>)>,
    /// Per group (config order): degraded, not, or not yet known.
    degraded: Vec<(String, Option<bool>)>,
}

impl LiveSlowPeriods {
    fn started(&mut self, e: &DegradedStarted, start_mono: Option<Duration>) {
        self.open.push((SlowPeriodRecord::open(e), start_mono));
    }

    fn resumed(&mut self, e: &DegradedResumed) {
        if let Some((r, _)) = self.open.iter_mut().find(|(r, _)| r.id == e.id) {
            r.gaps.pop();
            r.gaps.push(e.gap);
        }
    }

    fn ended(&mut self, e: &DegradedEnded) {
        let figures = self
            .open
            .iter()
            .find(|(r, _)| r.id == e.id)
            .map(|(r, _)| r.figures.clone());
        self.open.retain(|(r, _)| r.id != e.id);
        self.closed.push(SlowPeriodRecord::ended(e, figures));
    }

    /// Slow periods overlapping `[since, until)`, oldest first; open ones
    /// have `end: null` and their duration so far (`now_mono`: this
    /// process's monotonic offset).
    pub fn records(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        now: Timestamp,
        now_mono: Duration,
    ) -> Vec<SlowPeriodRecord> {
        let mut out: Vec<SlowPeriodRecord> = self
            .closed
            .iter()
            .filter(|r| r.overlaps(since, until))
            .cloned()
            .collect();
        for (r, start_mono) in &self.open {
            let mut r = r.clone();
            r.duration_seconds = match start_mono {
                Some(s) => now_mono.saturating_sub(*s).as_secs_f64(),
                None => now.duration_since(r.start).as_secs_f64().max(0.0),
            };
            if r.overlaps(since, until) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Whether group `name` is degraded (`None`: not yet known or no such group).
    pub fn group_degraded(&self, name: &str) -> Option<bool> {
        self.degraded
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, d)| *d)
    }
}

pub(super) fn read(lock: &RwLock<LiveSlowPeriods>) -> RwLockReadGuard<'_, LiveSlowPeriods> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write(lock: &RwLock<LiveSlowPeriods>) -> RwLockWriteGuard<'_, LiveSlowPeriods> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Degradation tracking inside the outage service.
pub struct SlowPeriods {
    tracker: SlowTracker,
    /// Per target: its group index and what its results feed.
    targets: Vec<(usize, SampleKind)>,
    /// Per target: down after hysteresis (its samples are not fed).
    target_down: Vec<bool>,
    metrics: DegradationMetrics,
    live: Arc<RwLock<LiveSlowPeriods>>,
    group_names: Vec<String>,
    /// Per group: the signs of interference its probes showed lately, for
    /// the summaries of `interference` slow periods.
    signs: Vec<GroupSigns>,
}

/// The signs of interference one group's probes showed.
#[derive(Debug, Default)]
struct GroupSigns {
    /// The latest [`SIGNS_KEPT`]: when, target, check, name.
    recent: VecDeque<(Timestamp, String, Check, String)>,
    /// Those of its open `interference` slow period.
    open: Option<Tally>,
}

/// Signs kept per group for the start of a period (a window's worth at
/// the usual rates; the counts come from the tracker, these only name them).
const SIGNS_KEPT: usize = 64;

/// Adds the checks, targets and names of `t` to `sum` (sorted, no repeats).
fn enrich(sum: &mut InterferenceSummary, t: &Tally) {
    let more = t.summary();
    for (have, add) in [
        (&mut sum.checks, more.checks),
        (&mut sum.targets, more.targets),
        (&mut sum.names, more.names),
    ] {
        have.extend(add);
        have.sort();
        have.dedup();
    }
}

impl SlowPeriods {
    /// The tracker for `config`, with the previous run's open degradations
    /// adopted (`now` is this run's start). Returns the `degraded_end`s of
    /// periods whose group no longer exists, to be journaled.
    pub fn new(
        config: &Config,
        registry: &prometheus::Registry,
        history: &Ledger,
        now: Timestamp,
    ) -> Result<(Self, Vec<SlowEvent>), prometheus::Error> {
        let metrics = DegradationMetrics::register(config, registry)?;
        let mut tracker = SlowTracker::new(group_specs(config));
        tracker.reserve_ids(history.degradations.ids.iter().cloned());
        let mut live = LiveSlowPeriods {
            closed: history.degradations.closed.clone(),
            open: Vec::new(),
            degraded: config
                .groups
                .iter()
                .map(|g| (g.name.clone(), None))
                .collect(),
        };
        let mut closed = Vec::new();
        for o in &history.degradations.open {
            let last_seen = SlowPeriodLedger::last_seen(o, &history.runs);
            let r = &o.record;
            let adopted = AdoptedSlowPeriod {
                id: r.id.clone(),
                cause: r.cause.clone(),
                start: r.start,
                triggers: r.triggers.clone(),
                gaps: r.gaps.clone(),
                last_seen,
            };
            let unobserved = Gap {
                from: last_seen,
                to: now.max(last_seen),
            };
            if tracker.adopt(&r.group, adopted) {
                tracing::warn!(id = %r.id, group = %r.group, last_seen = %ts_ms::format(&last_seen), "degradation open at the last run; waiting to see whether it goes on");
                let mut shown = r.clone();
                shown.duration_clock = DurationClock::Wall;
                shown.gaps.push(unobserved);
                live.open.push((shown, None));
            } else {
                let mut gaps = r.gaps.clone();
                gaps.push(unobserved);
                closed.push(SlowEvent::Ended(DegradedEnded {
                    interference: None,
                    id: r.id.clone(),
                    group: r.group.clone(),
                    cause: r.cause.clone(),
                    start: r.start,
                    end: last_seen,
                    duration_seconds: last_seen.duration_since(r.start).as_secs_f64().max(0.0),
                    duration_clock: DurationClock::Wall,
                    end_observed: false,
                    superseded: false,
                    triggers: r.triggers.clone(),
                    figures: Default::default(),
                    gaps,
                    end_reason: None,
                }));
            }
        }
        Ok((
            Self {
                tracker,
                targets: targets_of(config),
                target_down: vec![false; config.targets.len()],
                metrics,
                live: Arc::new(RwLock::new(live)),
                group_names: config.groups.iter().map(|g| g.name.clone()).collect(),
                signs: config
                    .groups
                    .iter()
                    .map(|_| GroupSigns::default())
                    .collect(),
            },
            closed,
        ))
    }

    /// Applies a configuration reload from `old` to `config` at `now`: an
    /// unchanged group keeps its window and open degradation; a changed or
    /// removed group's open degradation ends (see
    /// [`SlowTracker::reload`]). Returns the events and the new indices of
    /// the groups whose tracking started again (the caller tells them their
    /// group's current state).
    pub fn reload(
        &mut self,
        old: &Config,
        config: &Config,
        diff: &Diff,
        now: Stamp,
    ) -> (Vec<SlowEvent>, Vec<usize>) {
        let carry: Vec<Option<usize>> = diff
            .groups
            .iter()
            .zip(&diff.groups_unchanged)
            .map(|(o, unchanged)| if *unchanged { *o } else { None })
            .collect();
        let mut events = self.tracker.reload(group_specs(config), &carry, now);
        self.fill(&mut events);
        let mut signs = std::mem::take(&mut self.signs);
        self.signs = carry
            .iter()
            .map(|c| {
                c.and_then(|o| signs.get_mut(o).map(std::mem::take))
                    .unwrap_or_default()
            })
            .collect();
        self.metrics.reload(old, config);
        self.targets = targets_of(config);
        let was_down = std::mem::take(&mut self.target_down);
        self.target_down = diff
            .targets
            .iter()
            .map(|k| k.and_then(|o| was_down.get(o).copied()).unwrap_or(false))
            .collect();
        self.group_names = config.groups.iter().map(|g| g.name.clone()).collect();
        let mut live = write(&self.live);
        let before = std::mem::take(&mut live.degraded);
        live.degraded = config
            .groups
            .iter()
            .zip(&carry)
            .map(|(g, c)| {
                let known = c.and_then(|_| {
                    before
                        .iter()
                        .find(|(n, _)| *n == g.name)
                        .and_then(|(_, d)| *d)
                });
                (g.name.clone(), known)
            })
            .collect();
        let restarted = carry
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_none())
            .map(|(g, _)| g)
            .collect();
        (events, restarted)
    }

    /// The live view the API reads.
    pub fn live(&self) -> Arc<RwLock<LiveSlowPeriods>> {
        self.live.clone()
    }

    /// Feeds one probe result of `target` started at `at`. A throughput test
    /// feeds only a good test's goodput, downloads and uploads each to their
    /// own median (`throughput_below` compares each with its direction's
    /// floor); a failed or partial test says nothing about that figure, and
    /// throughput is not in the loss.
    /// `name` is the target's (for the summaries of interference periods;
    /// the caller has it, so no per-target copy is kept here).
    pub fn observe(
        &mut self,
        target: usize,
        name: &str,
        at: Stamp,
        observation: &Observation,
    ) -> Vec<SlowEvent> {
        let outcome = &observation.outcome;
        let Some(&(group, kind)) = self.targets.get(target) else {
            return Vec::new();
        };
        let sign = observation
            .info
            .evidence
            .as_ref()
            .map(|e| Sign::of_evidence(e))
            .or_else(|| Sign::of_failure(observation));
        if let Some(sign) = sign {
            self.note_sign(group, name, at.wall, sign);
        }
        if self.target_down.get(target).copied().unwrap_or(false) {
            return Vec::new();
        }
        let (success, latency) = match outcome {
            Outcome::Success { duration, .. } => (true, Some(*duration)),
            _ => (false, None),
        };
        let (throughput_bps, kind) = match &observation.info.throughput {
            Some(tp) if success && !tp.partial => (
                tp.bits_per_second,
                match tp.direction {
                    Direction::Download => SampleKind::Throughput,
                    Direction::Upload => SampleKind::ThroughputUpload,
                },
            ),
            _ => (None, kind),
        };
        if kind.is_throughput() && throughput_bps.is_none() {
            return Vec::new();
        }
        let mut events = self.tracker.observe(&Sample {
            group,
            at,
            kind,
            success,
            latency,
            throughput_bps,
            // Latency under load of a graded (saturated) test.
            loaded_increase: observation
                .info
                .throughput
                .as_ref()
                .and_then(|tp| tp.loaded.as_ref())
                .filter(|l| l.grade.is_some())
                .and_then(|l| l.latency_increase_seconds)
                .map(Duration::from_secs_f64),
            interference: super::interference::Sign::of_failure(observation)
                .map(|s| s.check)
                .or(observation
                    .info
                    .evidence
                    .as_ref()
                    .map(|e| e.check)
                    .filter(|c| *c == crate::interference::Check::ThrottledName)),
        });
        self.fill(&mut events);
        events
    }

    /// Keeps a sign of interference of `target` (in `group`) seen at `at`.
    fn note_sign(&mut self, group: usize, name: &str, at: Timestamp, sign: Sign<'_>) {
        let Some(g) = self.signs.get_mut(group) else {
            return;
        };
        if let Some(t) = &mut g.open {
            t.saw(name, sign);
        }
        if g.recent.len() == SIGNS_KEPT {
            g.recent.pop_front();
        }
        g.recent
            .push_back((at, name.to_string(), sign.check, sign.name.to_string()));
    }

    /// Names the checks, targets and names of `interference` slow periods:
    /// at the start those seen since it began, at the end all of the period.
    fn fill(&mut self, events: &mut [SlowEvent]) {
        for ev in events {
            let (group, start, sum, starting) = match ev {
                SlowEvent::Started(e) => (&e.group, e.start, &mut e.interference, true),
                SlowEvent::Ended(e) => (&e.group, e.start, &mut e.interference, false),
                SlowEvent::Resumed(_) => continue,
            };
            let Some(g) = self.group_names.iter().position(|n| n == group) else {
                continue;
            };
            let Some(signs) = self.signs.get_mut(g) else {
                continue;
            };
            let Some(sum) = sum else {
                signs.open = None;
                continue;
            };
            let tally = if starting {
                let mut t = Tally::default();
                for (at, target, check, name) in &signs.recent {
                    if *at >= start {
                        t.saw(
                            target,
                            Sign {
                                check: *check,
                                name,
                            },
                        );
                    }
                }
                signs.open = Some(t.clone());
                t
            } else {
                signs.open.take().unwrap_or_default()
            };
            enrich(sum, &tally);
        }
    }

    /// A target's state after hysteresis changed.
    pub fn target_state(&mut self, target: usize, state: State) {
        if let Some(d) = self.target_down.get_mut(target) {
            *d = state == State::Down;
        }
    }

    /// A group's state changed (`since`: back-dated).
    pub fn group_state(&mut self, group: usize, state: State, since: Stamp) -> Vec<SlowEvent> {
        let mut events = self.tracker.set_group_state(group, state, since);
        self.fill(&mut events);
        events
    }

    /// Lets time pass; exports the window figures and degraded time.
    pub fn tick(&mut self, now: Stamp) -> Vec<SlowEvent> {
        let mut events = self.tracker.tick(now);
        self.fill(&mut events);
        for (g, d) in self.tracker.take_degraded_time(now.mono) {
            if let Some(name) = self.group_names.get(g) {
                self.metrics
                    .degraded_seconds_total
                    .with_label_values(&[name.as_str()])
                    .inc_by(d.as_secs_f64());
            }
        }
        let mut live = write(&self.live);
        for g in 0..self.group_names.len() {
            let degraded = self.tracker.degraded(g);
            self.metrics.set_group(
                g,
                degraded,
                self.tracker.window_figures(g).as_ref(),
                self.tracker.window_rtt_count_sum(g),
            );
            if let Some(slot) = live.degraded.get_mut(g) {
                slot.1 = degraded;
            }
        }
        events
    }

    /// After `ev` is journaled: logs, counts and shows it.
    pub fn publish(&mut self, ev: &SlowEvent) {
        match ev {
            SlowEvent::Started(e) => {
                tracing::warn!(
                    id = %e.id,
                    group = %e.group,
                    cause = %e.cause,
                    start = %ts_ms::format(&e.start),
                    triggers = %crate::journal::triggers_text(&e.triggers),
                    figures = %crate::journal::describe_figures(&e.figures),
                    "degradation started"
                );
                self.metrics
                    .degradations_total
                    .with_label_values(&[e.group.as_str(), e.cause.as_str()])
                    .inc();
                let g = self.group_names.iter().position(|n| *n == e.group);
                let start_mono = g.and_then(|g| self.tracker.open_start_mono(g));
                write(&self.live).started(e, start_mono);
            }
            SlowEvent::Resumed(e) => {
                tracing::warn!(
                    id = %e.id,
                    group = %e.group,
                    cause = %e.cause,
                    start = %ts_ms::format(&e.start),
                    gap_from = %ts_ms::format(&e.gap.from),
                    gap_to = %ts_ms::format(&e.gap.to),
                    triggers = %crate::journal::triggers_text(&e.triggers),
                    "degradation continues after a restart"
                );
                write(&self.live).resumed(e);
            }
            SlowEvent::Ended(e) => {
                tracing::info!(
                    id = %e.id,
                    group = %e.group,
                    cause = %e.cause,
                    start = %ts_ms::format(&e.start),
                    end = %ts_ms::format(&e.end),
                    duration_seconds = e.duration_seconds,
                    end_observed = e.end_observed,
                    superseded = e.superseded,
                    triggers = %crate::journal::triggers_text(&e.triggers),
                    median = %crate::journal::describe_figures(&e.figures.median),
                    "degradation ended"
                );
                write(&self.live).ended(e);
            }
        }
    }

    /// Ids of the degradations open or adopted.
    pub fn open_ids(&self) -> Vec<String> {
        self.tracker.open_ids()
    }
}

/// The journal entry of an event.
pub fn entry(ev: &SlowEvent) -> Entry {
    match ev {
        SlowEvent::Started(e) => Entry::DegradedStart(e.clone()),
        SlowEvent::Resumed(e) => Entry::DegradedResume(e.clone()),
        SlowEvent::Ended(e) => Entry::DegradedEnd(e.clone()),
    }
}
