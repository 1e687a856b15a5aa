//! The dispatcher: which requests may start now (one trace per group, the
//! rate limit, the re-probe hold), running each trace and recording it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::event::{PathEvent, When};
use super::metrics::PathMetrics;
use super::store::PathStore;
use crate::config::Host;
use crate::probe::hold::ProbeHold;
use crate::probe::trace::{self, TraceOptions, TraceProtocol};

/// The window of the global rate limit.
pub(super) const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Records one snapshot before it is kept and counted: the caller's journal
/// (a `path` line), waiting while its queue is full. The tracer knows no
/// journal; whoever starts it says where snapshots go.
pub type Recorder =
    Arc<dyn Fn(PathEvent) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A request waiting for its trace.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) id: Option<String>,
    pub(super) when: When,
}

impl Request {
    /// Outage starts and ends go before baselines.
    pub(super) fn urgent(&self) -> bool {
        self.when != When::Baseline
    }
}

/// One group's place in the dispatcher.
pub(super) struct Slot {
    pub(super) group: String,
    /// `None`: the group has no target with a host; it is never traced.
    pub(super) host: Option<Host>,
    pub(super) every: Duration,
    /// The group's `trace_protocol`.
    pub(super) protocol: TraceProtocol,
    pub(super) busy: bool,
    pub(super) pending: Option<Request>,
    /// Between a start and its end: no baseline (it would not be the normal path).
    pub(super) in_outage: bool,
    pub(super) next_baseline: Instant,
}

pub(super) struct State {
    pub(super) slots: Vec<Slot>,
    /// Start instants of the traces in the last [`RATE_WINDOW`].
    pub(super) started: VecDeque<Instant>,
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) hold: ProbeHold,
    pub(super) wake: Notify,
    pub(super) max_per_minute: usize,
    pub(super) options: TraceOptions,
    pub(super) record: Recorder,
    pub(super) store: PathStore,
    pub(super) metrics: PathMetrics,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The requests that may start now (marked busy and counted against the
/// rate limit), and when to look again. None starts while a re-probe's hold
/// is in force (`held_until`): its requests would spend the budget the hold
/// saves.
pub(super) fn due(
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

/// Starts what is due, and looks again at a request, a finished trace, the
/// next baseline or the rate limit's window.
pub(super) async fn dispatch(shared: Arc<Shared>) {
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
    let event = PathEvent::new(&group, (req.id.clone(), req.when), host, protocol, at);
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
    (shared.record)(event.clone()).await;
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
pub(super) fn baseline_routers(baseline: &PathEvent) -> impl Iterator<Item = u8> + '_ {
    baseline
        .hops
        .iter()
        .filter(|h| h.addr.is_some_and(|a| Some(a) != baseline.dest))
        .filter(|h| !(baseline.reached && h.ttl == baseline.hop_count()))
        .map(|h| h.ttl)
}
