//! Path snapshots: where the path breaks when an outage starts, whether it
//! is whole again when it ends, and a baseline per group to compare with.
//!
//! [`PathTracer`] is the one entry point: [`PathTracer::request`] with a
//! group, the outage (or degradation) id and [`When`]. Its dispatcher runs a
//! trace ([`crate::probe::trace`]) per request under three bounds: at most
//! one trace in flight per group (a request arriving meanwhile waits in the
//! group's single pending slot, where a newer request replaces an older one
//! and an outage's start or end is never replaced by a baseline), at most
//! `max_traces_per_minute` started in any 60 s over all groups (requests
//! over the limit wait in their slot), and each trace cut at its time bound.
//! A flood of outages therefore starts no more traces than the limit and
//! keeps, per group, the latest request.
//!
//! Rate-limited routers: a trace whose answers stop at TTL k re-probes
//! TTL k + 1 when the group's last baseline had a router there (an answer
//! other than the destination's; see
//! [`crate::probe::trace`]); when it stays silent the snapshot says "no
//! answer beyond hop k; routers rate-limit their replies" rather than
//! "stopped after hop k". Before each re-probe of an outage's start or end
//! snapshot the tracer raises a [`ProbeHold`] on the groups in an outage
//! (their failing probes are what spend the router's error budget) and
//! starts no other trace until it passes; re-probes of traces running side
//! by side are spaced [`REPROBE_QUIET`](crate::probe::trace::REPROBE_QUIET) apart, one router budget each.
//!
//! Each result is a `path` journal line ([`PathEvent`], in the hash chain
//! like every event), then kept for the API ([`PathStore`]) and counted:
//! `linkwatch_path_hops{group}` (the last baseline's hops) and
//! `linkwatch_path_changes_total{group}` (baselines whose responding
//! addresses differ from the previous complete baseline's).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::{Config, Host};
use crate::journal::OutageRecord;
use crate::journal::{Entry, JournalPusher, LastHop, PathEvent, PathSummary, When};
pub use crate::probe::hold::ProbeHold;
use crate::probe::trace::{self, Trace, TraceOptions, TraceProtocol};

pub const PATH_HOPS: &str = "linkwatch_path_hops";
pub const PATH_CHANGES_TOTAL: &str = "linkwatch_path_changes_total";
pub const PATH_TRACES_TOTAL: &str = "linkwatch_path_traces_total";

/// Snapshots kept in memory for the API (the journal keeps them all).
pub const MAX_KEPT: usize = 4096;

/// The window of the global rate limit.
const RATE_WINDOW: Duration = Duration::from_secs(60);

impl PathEvent {
    fn new(
        group: &str,
        req: &Request,
        target: &Host,
        protocol: TraceProtocol,
        at: Timestamp,
    ) -> Self {
        Self {
            id: req.id.clone(),
            group: group.to_string(),
            when: req.when,
            target: target.to_string(),
            at,
            dest: None,
            mode: None,
            protocol,
            reached: false,
            partial: false,
            duration_ms: 0.0,
            packets: 0,
            last_hop: None,
            hops: Vec::new(),
            error: None,
            reprobe: None,
        }
    }

    fn with_trace(mut self, t: Trace) -> Self {
        self.last_hop = t
            .last_hop()
            .and_then(|h| h.addr.map(|addr| LastHop { ttl: h.ttl, addr }));
        self.dest = Some(t.dest);
        self.mode = Some(t.mode);
        self.protocol = t.protocol;
        self.reached = t.reached;
        self.partial = t.partial;
        self.duration_ms = t.duration_ms;
        self.packets = t.packets;
        self.hops = t.hops;
        self.error = t.error;
        self.reprobe = t.reprobe;
        self
    }

    /// The log line for a recorded snapshot.
    pub fn emit(&self) {
        tracing::info!(
            id = self.id.as_deref().unwrap_or(""),
            group = %self.group,
            when = self.when.as_str(),
            target = %self.target,
            reached = self.reached,
            partial = self.partial,
            hops = self.hop_count(),
            last_hop = ?self.last_hop.map(|h| h.addr),
            packets = self.packets,
            reprobed = ?self.reprobe.map(|r| r.ttl),
            rate_limited = self.rate_limited(),
            duration_ms = self.duration_ms,
            error = self.error.as_deref().unwrap_or(""),
            "path snapshot recorded"
        );
    }
}

/// The snapshots the API serves: those of earlier runs (from the journal)
/// and this run's, oldest first, at most [`MAX_KEPT`].
#[derive(Clone, Default)]
pub struct PathStore(Arc<RwLock<VecDeque<PathEvent>>>);

impl PathStore {
    pub fn new(earlier: &[PathEvent]) -> Self {
        let skip = earlier.len().saturating_sub(MAX_KEPT);
        Self(Arc::new(RwLock::new(
            earlier.iter().skip(skip).cloned().collect(),
        )))
    }

    fn push(&self, e: PathEvent) {
        let mut v = self.0.write().unwrap_or_else(|p| p.into_inner());
        if v.len() >= MAX_KEPT {
            v.pop_front();
        }
        v.push_back(e);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<PathEvent>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Snapshots of `group` (all when `None`) taken at or after `since`, oldest first.
    pub fn query(&self, group: Option<&str>, since: Option<Timestamp>) -> Vec<PathEvent> {
        self.read()
            .iter()
            .filter(|e| group.is_none_or(|g| e.group == g))
            .filter(|e| since.is_none_or(|s| e.at >= s))
            .cloned()
            .collect()
    }

    /// The last baseline of `group`.
    pub fn last_baseline(&self, group: &str) -> Option<PathEvent> {
        self.read()
            .iter()
            .rev()
            .find(|e| e.group == group && e.when == When::Baseline)
            .cloned()
    }

    /// The summary of the snapshot taken at `when` of the outage or
    /// degradation `id` (the latest, should there be more than one).
    pub fn summary(&self, id: &str, when: When) -> Option<PathSummary> {
        self.read()
            .iter()
            .rev()
            .find(|e| e.when == when && e.id.as_deref() == Some(id))
            .map(PathEvent::summary)
    }

    /// `records`, each with its start and end snapshot summaries.
    pub fn annotate(&self, records: Vec<OutageRecord>) -> Vec<OutageWithPaths> {
        records
            .into_iter()
            .map(|record| OutageWithPaths {
                path_at_start: self.summary(&record.id, When::Start),
                path_at_end: self.summary(&record.id, When::End),
                record,
            })
            .collect()
    }
}

/// `records`, each with the summaries of its start and end snapshots among
/// `paths` (the journal's, all of them: what `linkwatch outages` shows).
pub fn with_paths(records: Vec<OutageRecord>, paths: &[PathEvent]) -> Vec<OutageWithPaths> {
    let mut latest: HashMap<(&str, When), &PathEvent> = HashMap::new();
    for p in paths {
        if let Some(id) = p.id.as_deref() {
            latest.insert((id, p.when), p);
        }
    }
    let summary = |id: &str, when: When| latest.get(&(id, when)).map(|p| p.summary());
    records
        .into_iter()
        .map(|record| OutageWithPaths {
            path_at_start: summary(&record.id, When::Start),
            path_at_end: summary(&record.id, When::End),
            record,
        })
        .collect()
}

/// An outage record as the API shows it: the record and its path summaries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageWithPaths {
    #[serde(flatten)]
    pub record: OutageRecord,
    pub path_at_start: Option<PathSummary>,
    pub path_at_end: Option<PathSummary>,
}

/// A request waiting for its trace.
#[derive(Debug, Clone)]
struct Request {
    id: Option<String>,
    when: When,
}

impl Request {
    /// Outage starts and ends go before baselines.
    fn urgent(&self) -> bool {
        self.when != When::Baseline
    }
}

/// One group's place in the dispatcher.
struct Slot {
    group: String,
    /// `None`: the group has no target with a host; it is never traced.
    host: Option<Host>,
    every: Duration,
    /// The group's `trace_protocol`.
    protocol: TraceProtocol,
    busy: bool,
    pending: Option<Request>,
    /// Between a start and its end: no baseline (it would not be the normal path).
    in_outage: bool,
    next_baseline: Instant,
}

struct State {
    slots: Vec<Slot>,
    /// Start instants of the traces in the last [`RATE_WINDOW`].
    started: VecDeque<Instant>,
}

struct Shared {
    state: Mutex<State>,
    hold: ProbeHold,
    wake: Notify,
    max_per_minute: usize,
    options: TraceOptions,
    journal: JournalPusher,
    store: PathStore,
    metrics: PathMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The path metrics.
#[derive(Clone)]
pub struct PathMetrics {
    pub hops: GaugeVec,
    pub changes: IntCounterVec,
    pub traces: IntCounterVec,
}

impl PathMetrics {
    pub fn register(config: &Config, registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            hops: GaugeVec::new(
                Opts::new(
                    PATH_HOPS,
                    "Hops to the farthest answer in the group's last baseline path snapshot",
                ),
                &["group"],
            )?,
            changes: IntCounterVec::new(
                Opts::new(
                    PATH_CHANGES_TOTAL,
                    "Baselines whose responding addresses differ from the previous baseline's",
                ),
                &["group"],
            )?,
            traces: IntCounterVec::new(
                Opts::new(PATH_TRACES_TOTAL, "Path traces run, by group and reason"),
                &["group", "when"],
            )?,
        };
        registry.register(Box::new(m.hops.clone()))?;
        registry.register(Box::new(m.changes.clone()))?;
        registry.register(Box::new(m.traces.clone()))?;
        for g in &config.groups {
            m.changes.with_label_values(&[g.name.as_str()]);
            for w in [When::Start, When::End, When::Baseline] {
                m.traces.with_label_values(&[g.name.as_str(), w.as_str()]);
            }
        }
        Ok(m)
    }
}

/// The path tracer service: cheap to clone, stopped with [`PathTracer::stop`].
#[derive(Clone)]
pub struct PathTracer {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl PathTracer {
    /// Registers the metrics and starts the dispatcher (the first baselines
    /// are due at once). Must run inside the tokio runtime.
    pub fn start(
        config: &Config,
        registry: &Registry,
        journal: JournalPusher,
        store: PathStore,
    ) -> Result<Self, prometheus::Error> {
        let metrics = PathMetrics::register(config, registry)?;
        let now = Instant::now();
        let slots = config
            .groups
            .iter()
            .map(|g| {
                let host = trace::group_trace_host(config, g);
                if host.is_none() {
                    tracing::info!(group = %g.name, "no target with a host and no trace_target: the group's path is not traced");
                }
                if let Some(b) = store.last_baseline(&g.name) {
                    metrics
                        .hops
                        .with_label_values(&[g.name.as_str()])
                        .set(f64::from(b.hop_count()));
                }
                Slot {
                    group: g.name.clone(),
                    host,
                    every: g.trace.every,
                    protocol: g.trace.protocol,
                    busy: false,
                    pending: None,
                    in_outage: false,
                    next_baseline: now,
                }
            })
            .collect();
        let limits = config.daemon.trace;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots,
                started: VecDeque::new(),
            }),
            wake: Notify::new(),
            hold: ProbeHold::default(),
            max_per_minute: limits.max_per_minute as usize,
            options: TraceOptions {
                max_hops: limits.max_hops,
                bound: limits.timeout,
                ..TraceOptions::default()
            },
            journal,
            store,
            metrics,
        });
        let task = tokio::spawn(dispatch(shared.clone()));
        Ok(Self {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// Asks for a snapshot of `group`'s path: at the start or end of the
    /// outage or degradation `id`, or a baseline. Never waits; see the
    /// module doc for what happens to a request that cannot start now.
    pub fn request(&self, group: &str, id: Option<String>, when: When) {
        let mut st = lock(&self.shared.state);
        let Some(slot) = st.slots.iter_mut().find(|s| s.group == group) else {
            return;
        };
        match when {
            When::Start => slot.in_outage = true,
            When::End => slot.in_outage = false,
            When::Baseline => {}
        }
        if slot.host.is_none() {
            return;
        }
        let req = Request { id, when };
        match &slot.pending {
            Some(p) if p.urgent() && !req.urgent() => {}
            Some(p) => {
                tracing::debug!(
                    group,
                    replaced = p.when.as_str(),
                    by = when.as_str(),
                    "pending path trace replaced by a newer request"
                );
                slot.pending = Some(req);
            }
            None => slot.pending = Some(req),
        }
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Marks `group` as in an outage without taking a snapshot: no
    /// baseline until its end (see [`Self::outage_resumed`], which also
    /// takes the start snapshot a resumed outage lacks).
    pub fn outage_continues(&self, group: &str) {
        let mut st = lock(&self.shared.state);
        if let Some(slot) = st.slots.iter_mut().find(|s| s.group == group) {
            slot.in_outage = true;
        }
    }

    /// The outage `id` of `group` continues after a restart: no baseline
    /// until its end, and, unless the run before took one, its start
    /// snapshot now (`when: "start"` with the outage's id; its `at` says it
    /// was taken when linkwatch came back, after the outage started).
    pub fn outage_resumed(&self, group: &str, id: &str) {
        if self.shared.store.summary(id, When::Start).is_some() {
            self.outage_continues(group);
        } else {
            tracing::info!(
                group,
                id,
                "outage resumed without a start snapshot: tracing its path now"
            );
            self.request(group, Some(id.to_string()), When::Start);
        }
    }

    /// The hold its re-probes raise on probes (see [`ProbeHold`]).
    pub fn hold(&self) -> ProbeHold {
        self.shared.hold.clone()
    }

    /// The store the snapshots go to.
    pub fn store(&self) -> &PathStore {
        &self.shared.store
    }

    /// Stops the dispatcher and any trace in flight (before `daemon_stop`).
    pub async fn stop(&self) {
        let task = lock(&self.task).take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }
}

/// The requests that may start now (marked busy and counted against the
/// rate limit), and when to look again. None starts while a re-probe's hold
/// is in force (`held_until`): its requests would spend the budget the hold
/// saves.
fn due(
    st: &mut State,
    max_per_minute: usize,
    held_until: Option<Instant>,
    now: Instant,
) -> (Vec<(usize, Host, Request)>, Instant) {
    while st
        .started
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW)
    {
        st.started.pop_front();
    }
    let mut next = now + RATE_WINDOW;
    for s in st.slots.iter_mut().filter(|s| s.host.is_some()) {
        if now >= s.next_baseline {
            s.next_baseline = now + s.every;
            if !s.in_outage && s.pending.is_none() {
                s.pending = Some(Request {
                    id: None,
                    when: When::Baseline,
                });
            }
        }
        next = next.min(s.next_baseline);
    }
    if let Some(u) = held_until.filter(|u| now < *u) {
        return (Vec::new(), next.min(u));
    }
    let mut order: Vec<usize> = (0..st.slots.len())
        .filter(|&i| !st.slots[i].busy && st.slots[i].pending.is_some())
        .collect();
    order.sort_by_key(|&i| !st.slots[i].pending.as_ref().is_some_and(Request::urgent));
    let mut start = Vec::new();
    for i in order {
        if st.started.len() >= max_per_minute {
            // Look again when the oldest start leaves the window.
            if let Some(first) = st.started.front() {
                next = next.min(*first + RATE_WINDOW);
            }
            break;
        }
        let slot = &mut st.slots[i];
        if let (Some(host), Some(req)) = (slot.host.clone(), slot.pending.take()) {
            slot.busy = true;
            st.started.push_back(now);
            start.push((i, host, req));
        }
    }
    (start, next)
}

async fn dispatch(shared: Arc<Shared>) {
    let mut running: JoinSet<()> = JoinSet::new();
    let mut slots_of: HashMap<tokio::task::Id, usize> = HashMap::new();
    loop {
        let now = Instant::now();
        let held = shared.hold.until(now);
        let (start, next) = due(&mut lock(&shared.state), shared.max_per_minute, held, now);
        for (slot, host, req) in start {
            let shared = shared.clone();
            let h = running.spawn(async move { run_one(&shared, slot, &host, req).await });
            slots_of.insert(h.id(), slot);
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(next) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "path trace task failed");
                        e.id()
                    }
                };
                if let Some(i) = slots_of.remove(&id)
                    && let Some(s) = lock(&shared.state).slots.get_mut(i)
                {
                    s.busy = false;
                }
            }
        }
    }
}

/// Runs one trace and records it.
async fn run_one(shared: &Shared, slot: usize, host: &Host, req: Request) {
    let (group, protocol) = lock(&shared.state)
        .slots
        .get(slot)
        .map(|s| (s.group.clone(), s.protocol))
        .unwrap_or_default();
    shared
        .metrics
        .traces
        .with_label_values(&[group.as_str(), req.when.as_str()])
        .inc();
    let at = Timestamp::now();
    let event = PathEvent::new(&group, &req, host, protocol, at);
    // The routers of the group's last baseline: a silent one after the
    // last answer is probed again (see the module doc).
    let baseline_hops = shared
        .store
        .last_baseline(&group)
        .map_or(0, |b| trace::hop_mask(baseline_routers(&b)));
    let options = TraceOptions {
        protocol,
        baseline_hops,
        ..shared.options
    };
    // An outage's snapshot holds the probes of the groups in an outage
    // before each re-probe; a baseline holds nothing.
    let hold = |at: tokio::time::Instant| {
        let now = Instant::now();
        let groups: Vec<String> = lock(&shared.state)
            .slots
            .iter()
            .filter(|s| s.in_outage || s.group == group)
            .map(|s| s.group.clone())
            .collect();
        let at = shared.hold.reprobe_at(at, groups.clone(), now);
        tracing::debug!(group = %group, held = ?groups, in_ms = at.saturating_duration_since(now).as_millis() as u64, "holding probes for a path re-probe");
        at
    };
    let quiet: Option<&trace::Quiet<'_>> = req.urgent().then_some(&hold);
    let event = match trace::trace_host_quiet(host, &options, quiet).await {
        Ok(t) => event.with_trace(t),
        Err(e) => PathEvent {
            error: Some(e.to_string()),
            ..event
        },
    };
    let previous = (event.when == When::Baseline)
        .then(|| shared.store.last_baseline(&group))
        .flatten();
    shared
        .journal
        .push(Timestamp::now(), Entry::Path(event.clone()))
        .await;
    event.emit();
    if event.when == When::Baseline && !event.partial && event.error.is_none() {
        shared
            .metrics
            .hops
            .with_label_values(&[group.as_str()])
            .set(f64::from(event.hop_count()));
        if let Some(p) = previous.filter(|p| !p.partial && p.error.is_none())
            && p.addresses() != event.addresses()
        {
            tracing::info!(group = %group, before = ?p.addresses(), after = ?event.addresses(), "path changed between baselines");
            shared
                .metrics
                .changes
                .with_label_values(&[group.as_str()])
                .inc();
        }
    }
    shared.store.push(event);
}

/// The TTLs at which `baseline` had a router: an answer other than the
/// destination's (whose silence is the break itself, not a router's limit).
fn baseline_routers(baseline: &PathEvent) -> impl Iterator<Item = u8> + '_ {
    baseline
        .hops
        .iter()
        .filter(|h| h.addr.is_some_and(|a| Some(a) != baseline.dest))
        .filter(|h| !(baseline.reached && h.ttl == baseline.hop_count()))
        .map(|h| h.ttl)
}

/// "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6
/// hops": a snapshot against the group's last baseline before it.
pub fn compare(snapshot: &PathEvent, baseline: Option<&PathEvent>) -> String {
    let now = snapshot.describe();
    match baseline {
        Some(b) => format!("{now}; the baseline {}", b.describe()),
        None => format!("{now}; no baseline recorded before it"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::journal::{Hop, Reprobe};
    use crate::probe::hold::HOLD_AFTER;
    use crate::probe::trace::REPROBE_QUIET;

    fn slot(group: &str, every: Duration, now: Instant) -> Slot {
        Slot {
            group: group.into(),
            host: Some(Host::Ip("10.0.0.1".parse().unwrap())),
            every,
            protocol: TraceProtocol::Icmp,
            busy: false,
            pending: None,
            in_outage: false,
            next_baseline: now + every,
        }
    }

    fn state(groups: &[&str], now: Instant) -> State {
        State {
            slots: groups
                .iter()
                .map(|g| slot(g, Duration::from_secs(3600), now))
                .collect(),
            started: VecDeque::new(),
        }
    }

    fn req(when: When, id: &str) -> Request {
        Request {
            id: Some(id.into()),
            when,
        }
    }

    #[test]
    fn a_flood_starts_no_more_than_the_limit_and_keeps_the_latest_per_group() {
        let now = Instant::now();
        let mut st = state(&["a", "b", "c"], now);
        for s in &mut st.slots {
            s.pending = Some(req(When::Start, "x"));
        }
        let (start, next) = due(&mut st, 2, None, now);
        assert_eq!(start.len(), 2);
        assert_eq!(next, now + RATE_WINDOW);
        // Finished, but the window is full: nothing more starts.
        for s in &mut st.slots {
            s.busy = false;
        }
        let (start, _) = due(&mut st, 2, None, now + Duration::from_secs(59));
        assert!(start.is_empty());
        // The window frees: the waiting group goes.
        let (start, _) = due(&mut st, 2, None, now + Duration::from_secs(60));
        assert_eq!(start.len(), 1);
        assert_eq!(st.slots[start[0].0].group, "c");
    }

    #[test]
    fn one_trace_per_group_in_flight() {
        let now = Instant::now();
        let mut st = state(&["a"], now);
        st.slots[0].pending = Some(req(When::Start, "x"));
        let (start, _) = due(&mut st, 10, None, now);
        assert_eq!(start.len(), 1);
        st.slots[0].pending = Some(req(When::End, "x"));
        let (start, _) = due(&mut st, 10, None, now);
        assert!(start.is_empty(), "the group is busy");
        st.slots[0].busy = false;
        let (start, _) = due(&mut st, 10, None, now);
        assert_eq!(start[0].2.when, When::End);
    }

    #[test]
    fn baselines_come_due_except_during_an_outage_and_go_after_outage_requests() {
        let now = Instant::now();
        let mut st = state(&["a", "b"], now);
        let later = now + Duration::from_secs(3600);
        st.slots[1].in_outage = true;
        let (start, next) = due(&mut st, 1, None, later);
        assert_eq!(start.len(), 1);
        assert_eq!(start[0].2.when, When::Baseline);
        assert_eq!(st.slots[start[0].0].group, "a");
        assert!(next > later);
        // An urgent request is served before a waiting baseline.
        let mut st = state(&["a", "b"], now);
        st.slots[0].pending = Some(Request {
            id: None,
            when: When::Baseline,
        });
        st.slots[1].pending = Some(req(When::Start, "y"));
        let (start, _) = due(&mut st, 1, None, now);
        assert_eq!(start[0].2.when, When::Start);
    }

    fn event(reached: bool, last: Option<(u8, &str)>, partial: bool) -> PathEvent {
        PathEvent {
            id: None,
            group: "isp".into(),
            when: When::Baseline,
            target: "10.0.0.9".into(),
            at: Timestamp::UNIX_EPOCH,
            dest: Some("10.0.0.9".parse().unwrap()),
            mode: Some("dgram".into()),
            protocol: TraceProtocol::Icmp,
            reached,
            partial,
            duration_ms: 1.0,
            packets: 3,
            last_hop: last.map(|(ttl, a)| LastHop {
                ttl,
                addr: a.parse().unwrap(),
            }),
            hops: Vec::new(),
            error: None,
            reprobe: None,
        }
    }

    #[test]
    fn comparison_wording() {
        let broken = event(false, Some((3, "10.20.0.1")), false);
        let base = event(true, Some((6, "10.0.0.9")), false);
        assert_eq!(
            compare(&broken, Some(&base)),
            "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6 hops"
        );
        assert_eq!(
            compare(&event(false, None, true), None),
            "no hop answered (partial: cut at the time bound); no baseline recorded before it"
        );
    }

    fn hop(ttl: u8, addr: Option<&str>, unreachable: Option<&str>) -> Hop {
        Hop {
            ttl,
            addr: addr.map(|a| a.parse().unwrap()),
            also: Vec::new(),
            sent: 3,
            received: u32::from(addr.is_some()),
            rtt_ms: Vec::new(),
            unreachable: unreachable.map(str::to_string),
        }
    }

    #[test]
    fn a_silent_reprobed_hop_reads_as_rate_limiting_not_as_the_break() {
        let base = event(true, Some((3, "10.0.0.9")), false);
        let mut e = event(false, Some((1, "192.168.1.1")), false);
        e.hops = vec![hop(1, Some("192.168.1.1"), None), hop(2, None, None)];
        // Not re-probed (no baseline router there): the old words.
        assert_eq!(e.describe(), "stopped after hop 1 (192.168.1.1)");
        assert!(!e.summary().rate_limited);
        e.reprobe = Some(Reprobe {
            ttl: 2,
            sent: 3,
            received: 0,
        });
        assert!(e.rate_limited());
        assert_eq!(
            compare(&e, Some(&base)),
            "no answer beyond hop 1 (192.168.1.1); routers rate-limit their replies; \
             the baseline reaches the target in 3 hops"
        );
        let sum = e.summary();
        assert!(sum.rate_limited);
        assert_eq!(
            sum.short(),
            "no answer beyond hop 1 (192.168.1.1); routers rate-limit their replies"
        );
        let json = serde_json::to_value(&sum).unwrap();
        assert_eq!(json["rate_limited"], true);
        // A summary from before the field reads as not rate-limited.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("rate_limited");
        let back: PathSummary = serde_json::from_value(old).unwrap();
        assert!(!back.rate_limited);

        // Nothing answered at all, hop 1 re-probed in vain.
        let mut none = event(false, None, false);
        none.reprobe = Some(Reprobe {
            ttl: 1,
            sent: 2,
            received: 0,
        });
        assert_eq!(
            none.describe(),
            "no hop answered; routers rate-limit their replies"
        );
        assert_eq!(
            none.summary().short(),
            "no hop answered; routers rate-limit their replies"
        );

        // The re-probe got the router's unreachable: the path ends there, named.
        let mut got = event(false, Some((2, "10.20.0.1")), false);
        got.hops = vec![
            hop(1, Some("192.168.1.1"), None),
            hop(
                2,
                Some("10.20.0.1"),
                Some("network unreachable (type 3, code 0)"),
            ),
        ];
        got.reprobe = Some(Reprobe {
            ttl: 2,
            sent: 1,
            received: 1,
        });
        assert!(!got.rate_limited());
        assert_eq!(
            got.describe(),
            "stopped after hop 2 (10.20.0.1): network unreachable"
        );
        assert_eq!(got.summary().short(), "stopped after hop 2 (10.20.0.1)");
    }

    #[test]
    fn only_a_baseline_router_is_reprobed_not_the_destination() {
        let mut b = event(true, Some((3, "10.0.0.9")), false);
        b.hops = vec![
            hop(1, Some("192.168.1.1"), None),
            hop(2, None, None),
            hop(3, Some("10.0.0.9"), None),
        ];
        assert_eq!(baseline_routers(&b).collect::<Vec<_>>(), [1]);
        // Not reached: every answer is a router's.
        let mut b = event(false, Some((2, "10.20.0.1")), false);
        b.hops = vec![
            hop(1, Some("192.168.1.1"), None),
            hop(2, Some("10.20.0.1"), None),
        ];
        assert_eq!(baseline_routers(&b).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_hold_names_groups_until_it_passes_and_spaces_reprobes() {
        let now = Instant::now();
        let hold = ProbeHold::default();
        assert!(!hold.holds("internet", now));
        let at = hold.reprobe_at(
            now + Duration::from_secs(2),
            vec!["internet".into(), "dns".into()],
            now,
        );
        assert_eq!(at, now + Duration::from_secs(2));
        assert!(hold.holds("internet", now));
        assert!(hold.holds("dns", now + Duration::from_secs(2)));
        assert!(!hold.holds("lan", now));
        assert_eq!(hold.until(now), Some(at + HOLD_AFTER));
        assert!(!hold.holds("internet", at + HOLD_AFTER));
        // Another trace's re-probe goes a whole quiet spell after this one.
        let other = hold.reprobe_at(now, vec!["isp".into()], now);
        assert_eq!(other, at + REPROBE_QUIET);
        assert!(hold.holds("isp", now) && hold.holds("internet", now));
        // No trace starts under the hold (its requests would spend the
        // budget); the dispatcher looks again when it ends.
        let mut st = state(&["a"], now);
        st.slots[0].pending = Some(req(When::Start, "x"));
        let (start, next) = due(&mut st, 10, hold.until(now), now);
        assert!(start.is_empty());
        assert_eq!(next, other + HOLD_AFTER);
        let (start, _) = due(&mut st, 10, hold.until(next), next);
        assert_eq!(start.len(), 1);
    }

    #[test]
    fn the_journal_line_round_trips() {
        let e = event(false, Some((2, "10.0.0.2")), true);
        let line = serde_json::to_string(&Entry::Path(e.clone())).unwrap();
        assert!(line.contains(r#""event":"path""#), "{line}");
        assert!(line.contains(r#""when":"baseline""#), "{line}");
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back, Entry::Path(e.clone()));
        assert!(line.contains(r#""protocol":"icmp""#), "{line}");

        // A line from before UDP traces (no `protocol`) reads as ICMP.
        let old = line.replace(r#""protocol":"icmp","#, "");
        assert!(!old.contains("protocol"), "{old}");
        let back: Entry = serde_json::from_str(&old).unwrap();
        assert_eq!(back, Entry::Path(e.clone()));
        let udp = PathEvent {
            protocol: TraceProtocol::Udp,
            ..e
        };
        let line = serde_json::to_string(&Entry::Path(udp)).unwrap();
        assert!(line.contains(r#""protocol":"udp""#), "{line}");
    }
}
