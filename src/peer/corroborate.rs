//! Corroboration: when an outage or a slow period ends, what each peer saw
//! of the same destinations over the same minutes.
//!
//! The journal is the queue. [`Book`] is fed every line the tail reads:
//! an `outage_end` or `degraded_end` journaled in the last [`RETRY_FOR`] is
//! a [`Period`] waiting for each peer; a `corroboration` line from a peer
//! settles it for that peer. So periods that ended while the daemon was
//! stopped, or whose peer was unreachable until a restart, are asked for
//! again at the next start without a file of their own; a period older than
//! [`RETRY_FOR`] is given up (logged). A peer's answer is only ever
//! appended as a new `corroboration` line; nothing in the past changes.
//!
//! Retries ([`Retries`]): an unreachable peer is tried again after 1 s,
//! doubling up to [`MAX_RETRY`] (30 s), so that a home whose link comes back
//! has its corroboration within a minute of the repair. While a peer cannot
//! be reached, one call at a time tests it: every period of that peer waits
//! for the same moment. An answer that is wrong for one period (impossible
//! figures, an HTTP error) delays only that period.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::client::{CallError, PeerClient};

use crate::config::Config;
use crate::journal::{
    CorroboratedTarget, Corroboration, Entry, Line, PeerVerdict, PeriodKind, TargetVerdict, judge,
};
use crate::peer::wire::{
    ENDPOINT_OBSERVATIONS, MAX_MINUTES_PER_CALL, MAX_SPAN, MAX_TARGETS_PER_CALL, Observations,
    ObservationsRequest, PATH_OBSERVATIONS, STEP_SECONDS,
};

/// How long after its end a period is still asked for.
pub const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// First retry after a failed call.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// An ended outage or slow period, as its end line tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub id: String,
    pub kind: PeriodKind,
    pub group: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// When its end was journaled (the retry window counts from here).
    pub ended_at: Timestamp,
    /// Our names of the destinations to ask about.
    pub targets: Vec<String>,
}

impl Period {
    /// The period a journal line ends, if it ends one. An outage asks about
    /// the targets that were down in it (all of its group's when the line
    /// names none); a slow period about its group's targets in `config`.
    pub fn ended_by(line: &Line, config: &Config) -> Option<Self> {
        let members = |group: &str| -> Vec<String> {
            config
                .targets
                .iter()
                .filter(|t| t.group == group)
                .map(|t| t.name.clone())
                .collect()
        };
        let p = match &line.entry {
            Entry::OutageEnd(e) => Period {
                id: e.id.clone(),
                kind: PeriodKind::Outage,
                group: e.group.clone(),
                start: e.start,
                end: e.end,
                ended_at: line.ts,
                targets: if e.targets.is_empty() {
                    members(&e.group)
                } else {
                    e.targets.clone()
                },
            },
            Entry::DegradedEnd(e) => Period {
                id: e.id.clone(),
                kind: PeriodKind::Slow,
                group: e.group.clone(),
                start: e.start,
                end: e.end,
                ended_at: line.ts,
                targets: members(&e.group),
            },
            _ => return None,
        };
        Some(p)
    }

    /// The minutes asked for: from the start's minute up to the end's
    /// (`until` is the last second of the end's minute: the peer answers
    /// the minutes that start in `[since, until]`), so that every minute
    /// the period touched is included and no other.
    pub fn window(&self) -> (Timestamp, Timestamp) {
        let since = floor_minute(self.start);
        let last = floor_minute(self.end).max(since);
        let until = last
            .checked_add(SignedDuration::from_secs(STEP_SECONDS as i64 - 1))
            .unwrap_or(last);
        (since, until)
    }
}

fn floor_minute(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s - s.rem_euclid(60)).unwrap_or(t)
}

/// The periods waiting for corroboration and which peer has answered
/// which, as the journal tells them.
#[derive(Debug, Default)]
pub struct Book {
    periods: BTreeMap<String, Period>,
    /// (peer, period id) with a `corroboration` line.
    done: BTreeSet<(String, String)>,
}

impl Book {
    /// Takes one journal line read at `now`: a period ended in the last
    /// [`RETRY_FOR`] is added; a `corroboration` line settles its period for
    /// its peer. Returns whether something new waits.
    pub fn observe(&mut self, line: &Line, config: &Config, now: Timestamp) -> bool {
        if let Entry::Corroboration(c) = &line.entry {
            // Only for periods still waiting: older answers need no memory.
            if self.periods.contains_key(&c.period) {
                self.done.insert((c.peer.clone(), c.period.clone()));
            }
            return false;
        }
        let Some(p) = Period::ended_by(line, config) else {
            return false;
        };
        if expired(&p, now) || p.targets.is_empty() {
            return false;
        }
        self.periods.insert(p.id.clone(), p).is_none()
    }

    /// `peer` answered for `period` (before the line is read back).
    pub fn settle(&mut self, peer: &str, period: &str) {
        self.done.insert((peer.to_owned(), period.to_owned()));
    }

    /// The periods `peer` has not answered for, oldest end first.
    pub fn pending<'a>(&'a self, peer: &'a str) -> impl Iterator<Item = &'a Period> + 'a {
        let mut v: Vec<&Period> = self
            .periods
            .values()
            .filter(move |p| !self.done.contains(&(peer.to_owned(), p.id.clone())))
            .collect();
        v.sort_by_key(|p| (p.ended_at, p.id.clone()));
        v.into_iter()
    }

    /// Forgets periods older than [`RETRY_FOR`]; returns, for each, the
    /// peers of `peers` that never answered (to be logged as given up).
    pub fn expire(&mut self, now: Timestamp, peers: &[String]) -> Vec<(Period, Vec<String>)> {
        let old: Vec<String> = self
            .periods
            .values()
            .filter(|p| expired(p, now))
            .map(|p| p.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in old {
            if let Some(p) = self.periods.remove(&id) {
                let missing: Vec<String> = peers
                    .iter()
                    .filter(|peer| !self.done.contains(&((*peer).clone(), id.clone())))
                    .cloned()
                    .collect();
                self.done.retain(|(_, period)| *period != id);
                out.push((p, missing));
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.periods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.periods.is_empty()
    }
}

fn expired(p: &Period, now: Timestamp) -> bool {
    let limit = SignedDuration::try_from(RETRY_FOR).unwrap_or(SignedDuration::MAX);
    p.ended_at.checked_add(limit).is_ok_and(|t| t < now)
}

/// Doubling waits between tries, from `first` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The wait before the next try; doubles the one after, up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// One peer's retry state: when each period may be tried again, and when
/// the peer itself may (after it could not be reached).
#[derive(Debug)]
pub struct Retries {
    per_period: BTreeMap<String, (Timestamp, Backoff)>,
    peer: Option<Timestamp>,
    peer_backoff: Backoff,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            per_period: BTreeMap::new(),
            peer: None,
            peer_backoff: Backoff::new(FIRST_RETRY, MAX_RETRY),
        }
    }
}

/// What a peer's corroborator does next.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    /// Ask for this period now.
    Ask(&'a Period),
    /// Nothing is due before this moment.
    WaitUntil(Timestamp),
    /// Nothing waits.
    Idle,
}

impl Retries {
    /// The period to ask for at `now`, or how long to wait.
    pub fn next<'a>(&self, book: &'a Book, peer: &'a str, now: Timestamp) -> Next<'a> {
        let mut earliest: Option<Timestamp> = None;
        for p in book.pending(peer) {
            let at = self
                .per_period
                .get(&p.id)
                .map(|(t, _)| *t)
                .into_iter()
                .chain(self.peer)
                .max();
            match at {
                Some(t) if t > now => {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
                _ => return Next::Ask(p),
            }
        }
        earliest.map_or(Next::Idle, Next::WaitUntil)
    }

    /// The call for `period` failed at `now`: an unreachable peer holds every
    /// period back; another failure only this one. Returns the wait.
    pub fn failed(&mut self, period: &str, unreachable: bool, now: Timestamp) -> Duration {
        if unreachable {
            let w = self.peer_backoff.next_wait();
            self.peer = Some(add(now, w));
            w
        } else {
            self.peer = None;
            self.peer_backoff.reset();
            let entry = self
                .per_period
                .entry(period.to_owned())
                .or_insert((now, Backoff::new(FIRST_RETRY, MAX_RETRY)));
            let w = entry.1.next_wait();
            entry.0 = add(now, w);
            w
        }
    }

    /// Forgets the retry state of periods no longer waiting (answered, or
    /// given up after [`RETRY_FOR`]).
    pub fn prune(&mut self, book: &Book, peer: &str) {
        let waiting: BTreeSet<&str> = book.pending(peer).map(|p| p.id.as_str()).collect();
        self.per_period
            .retain(|id, _| waiting.contains(id.as_str()));
    }

    /// The peer answered for `period`.
    pub fn succeeded(&mut self, period: &str) {
        self.per_period.remove(period);
        self.peer = None;
        self.peer_backoff.reset();
    }

    /// The peer answered something (a witness receipt): it is reachable again.
    pub fn reachable(&mut self) {
        self.peer = None;
        self.peer_backoff.reset();
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(t)
}

/// Our target names and the peer's names for them (`compare`, default the same).
pub fn asked(period: &Period, compare: &BTreeMap<String, String>) -> Vec<(String, String)> {
    period
        .targets
        .iter()
        .map(|ours| {
            let theirs = compare.get(ours).cloned().unwrap_or_else(|| ours.clone());
            (ours.clone(), theirs)
        })
        .collect()
}

/// What a peer's answers (one or more calls) say of each of its targets,
/// by its name: whether it knows it, probes, failures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sums(BTreeMap<String, (bool, u64, u64)>);

impl Sums {
    /// Adds one checked answer.
    pub fn add(&mut self, obs: &Observations) {
        for t in &obs.targets {
            let e = self.0.entry(t.target.clone()).or_insert((false, 0, 0));
            e.0 |= t.known;
            for m in &t.minutes {
                e.1 = e.1.saturating_add(m.probes);
                e.2 = e.2.saturating_add(m.failures);
            }
        }
    }

    /// Probes and failures of the peer's target `theirs` (0, 0 when unknown).
    pub fn of(&self, theirs: &str) -> (u64, u64) {
        match self.0.get(theirs) {
            Some((true, p, f)) => (*p, *f),
            _ => (0, 0),
        }
    }
}

/// The `corroboration` record of `peer`'s answers for `period`: a target
/// missing from them, or unknown to the peer, is `no_data`.
pub fn corroboration(
    period: &Period,
    peer: &str,
    asked: &[(String, String)],
    sums: &Sums,
) -> Corroboration {
    let targets: Vec<CorroboratedTarget> = asked
        .iter()
        .map(|(ours, theirs)| {
            let (probes, failures) = sums.of(theirs);
            CorroboratedTarget {
                peer: peer.to_owned(),
                target: ours.clone(),
                their_target: (theirs != ours).then(|| theirs.clone()),
                probes,
                failures,
                loss_ratio: (probes > 0).then(|| failures.min(probes) as f64 / probes as f64),
                verdict: TargetVerdict::from_counts(probes, failures),
            }
        })
        .collect();
    let verdict: PeerVerdict = judge(&targets);
    Corroboration {
        period: period.id.clone(),
        kind: period.kind,
        peer: peer.to_owned(),
        start: period.start,
        end: period.end,
        summary: verdict.sentence(peer),
        verdict,
        targets,
    }
}

/// The calls that ask for `targets` (the peer's names) over `since..=until`
/// within the peer's bounds: at most [`MAX_SPAN`] each, at most
/// [`MAX_TARGETS_PER_CALL`] targets and [`MAX_MINUTES_PER_CALL`]
/// target-minutes. Time windows do not overlap (a minute is counted once).
pub fn plan_calls(
    targets: &[String],
    since: Timestamp,
    until: Timestamp,
) -> Vec<ObservationsRequest> {
    let step = STEP_SECONDS as i64;
    // Whole minutes per window, bounded by the span and by one target's minutes.
    let max_minutes = ((MAX_SPAN.as_secs() as i64) / step)
        .min(MAX_MINUTES_PER_CALL as i64 - 1)
        .max(1);
    let mut calls = Vec::new();
    let mut from = since;
    while from <= until {
        let to = from
            .checked_add(SignedDuration::from_secs(max_minutes * step - 1))
            .unwrap_or(until)
            .min(until);
        // The peer counts minutes as ceil(span / step) + 1.
        let span = (to.as_second() - from.as_second()).max(0) as u64;
        let minutes = span.div_ceil(STEP_SECONDS) + 1;
        let per_call = ((MAX_MINUTES_PER_CALL / minutes) as usize).clamp(1, MAX_TARGETS_PER_CALL);
        for chunk in targets.chunks(per_call) {
            calls.push(ObservationsRequest {
                targets: chunk.to_vec(),
                since: from,
                until: to.max(from.checked_add(SignedDuration::from_secs(1)).unwrap_or(to)),
            });
        }
        match to.checked_add(SignedDuration::from_secs(1)) {
            Ok(next) if to < until => from = next,
            _ => break,
        }
    }
    calls
}

/// The observations endpoint's label in `linkwatch_peer_calls_total`.
pub const ENDPOINT: &str = ENDPOINT_OBSERVATIONS;

/// The shortest probe interval a configuration accepts: no linkwatch
/// makes more probes of one target in a minute than this allows.
pub const INTERVAL_FLOOR: Duration = Duration::from_millis(100);

/// Checks an answer against its call: the figures
/// ([`Observations::validate`]: only the targets asked for, none impossible)
/// and the window (none outside the one asked for).
pub fn check_answer(obs: &Observations, call: &ObservationsRequest) -> Result<(), String> {
    obs.validate(&call.targets, INTERVAL_FLOOR)
        .map_err(str::to_owned)?;
    if obs.since < call.since || obs.until > call.until {
        return Err(format!(
            "the answer covers {}..{}, outside the {}..{} asked for",
            obs.since, obs.until, call.since, call.until
        ));
    }
    Ok(())
}

/// The calls for `period` to one peer; its `corroboration` record once
/// every call was answered and checked.
pub async fn ask(
    client: &PeerClient,
    compare: &BTreeMap<String, String>,
    period: &Period,
) -> Result<Corroboration, CallError> {
    let asked = asked(period, compare);
    let (since, until) = period.window();
    let mut theirs: Vec<String> = asked.iter().map(|(_, t)| t.clone()).collect();
    theirs.sort();
    theirs.dedup();
    let mut sums = Sums::default();
    for call in plan_calls(&theirs, since, until) {
        let obs: Observations = client
            .get(ENDPOINT, PATH_OBSERVATIONS, &call.query_string())
            .await?;
        if let Err(why) = check_answer(&obs, &call) {
            client.count(ENDPOINT, "rejected");
            return Err(CallError::Rejected(format!(
                "{}: impossible figures: {why}",
                client.shown()
            )));
        }
        client.count(ENDPOINT, "ok");
        sums.add(&obs);
    }
    Ok(corroboration(period, client.name(), &asked, &sums))
}

#[cfg(test)]
#[path = "corroborate_tests.rs"]
mod tests;
