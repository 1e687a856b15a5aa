//! [`PathTracer`], the service's face: start it, ask it for snapshots,
//! tell it about outages that continue, stop it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use prometheus::Registry;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::dispatch::{Recorder, Request, Shared, Slot, State, dispatch, lock};
use super::event::When;
use super::metrics::PathMetrics;
use super::store::PathStore;
use crate::config::Config;
use crate::probe::hold::ProbeHold;
use crate::probe::trace::{self, TraceOptions};

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
        record: Recorder,
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
            record,
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
