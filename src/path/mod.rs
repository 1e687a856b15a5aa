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
//! Each result is recorded through the [`Recorder`] its starter gives (the
//! outage service's: a `path` journal line, [`PathEvent`], in the hash chain
//! like every event), then kept for the API ([`PathStore`]) and counted:
//! `linkwatch_path_hops{group}` (the last baseline's hops) and
//! `linkwatch_path_changes_total{group}` (baselines whose responding
//! addresses differ from the previous complete baseline's).
//!
//! Files, in the order a snapshot flows: [`tracer`](PathTracer) takes
//! requests, `dispatch` starts and records traces, `store` keeps them for
//! the API, `event` is the record and its words, `metrics` counts them.
//!
//! [`ProbeHold`]: crate::probe::hold::ProbeHold

mod dispatch;
mod event;
mod metrics;
mod store;
mod tracer;

#[cfg(test)]
mod tests;

pub use dispatch::Recorder;
pub use event::{LastHop, PathEvent, PathSummary, When, compare};
pub use metrics::{PATH_CHANGES_TOTAL, PATH_HOPS, PATH_TRACES_TOTAL};
pub use store::{OutageWithPaths, PathStore, PeriodRecord, WithPaths, with_paths};
pub use tracer::PathTracer;
