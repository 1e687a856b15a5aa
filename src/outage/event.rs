//! One struct per noteworthy outage event. Each is what the journal serialises,
//! and its `emit` writes the log line and updates the metrics, so a journal
//! record, a log line and a metric cannot disagree.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::chain::ChainHead;
use super::metrics::OutageMetrics;
use super::ts_ms;
use crate::config::{Config, TargetSpec};

/// A period the daemon did not observe (it was not running, it was stopped or
/// the system suspended, or a target's edge fell between two observations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(with = "ts_ms")]
    pub from: Timestamp,
    #[serde(with = "ts_ms")]
    pub to: Timestamp,
}

impl Gap {
    /// Length by the wall clock (the only clock spanning two processes), never negative.
    pub fn seconds(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64().max(0.0)
    }

    /// Whether the two gaps overlap or touch.
    pub fn touches(&self, other: &Gap) -> bool {
        self.from <= other.to && other.from <= self.to
    }
}

/// Adds `gap` to `gaps` (kept in time order), merging it with any gap it
/// overlaps or touches, so one unobserved period is listed once.
pub fn push_gap(gaps: &mut Vec<Gap>, gap: Gap) {
    let mut merged = gap;
    gaps.retain(|g| {
        if g.touches(&merged) {
            merged.from = merged.from.min(g.from);
            merged.to = merged.to.max(g.to);
            false
        } else {
            true
        }
    });
    let at = gaps.partition_point(|g| g.from < merged.from);
    gaps.insert(at, merged);
}

/// Why the process did not observe for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCause {
    /// The process did not run (SIGSTOP, a VM pause, a swap storm, a starved
    /// runtime): its monotonic clock jumped past the service's tick.
    ProcessStopped,
    /// The system was suspended: `CLOCK_BOOTTIME` advanced past `CLOCK_MONOTONIC`.
    SystemSuspended,
}

impl StallCause {
    pub fn as_str(self) -> &'static str {
        match self {
            StallCause::ProcessStopped => "process_stopped",
            StallCause::SystemSuspended => "system_suspended",
        }
    }
}

/// `stall`: a period in which the running daemon observed nothing. It is a gap
/// of every outage it overlaps and is not monitored time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stalled {
    /// Last moment the process was seen running before the stall.
    #[serde(with = "ts_ms")]
    pub from: Timestamp,
    /// First moment it ran again.
    #[serde(with = "ts_ms")]
    pub to: Timestamp,
    pub cause: StallCause,
    /// Length measured by the clock that showed it (monotonic for a stopped
    /// process, boot time for a suspend), in seconds.
    pub seconds: f64,
}

impl Stalled {
    pub fn gap(&self) -> Gap {
        Gap {
            from: self.from,
            to: self.to.max(self.from),
        }
    }

    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            from = %ts_ms::format(&self.from),
            to = %ts_ms::format(&self.to),
            cause = self.cause.as_str(),
            seconds = self.seconds,
            "the daemon observed nothing for a while (stall); recorded as a gap"
        );
        metrics
            .stalls_total
            .with_label_values(&[self.cause.as_str()])
            .inc();
        metrics.stalled_seconds_total.inc_by(self.seconds.max(0.0));
    }
}

fn observed() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Which clock a duration was measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationClock {
    /// Both ends seen by one process: the monotonic clock.
    Monotonic,
    /// The outage spans a restart: wall-clock difference of start and end.
    Wall,
}

/// `daemon_start`: a run begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStart {
    pub version: String,
    pub config_digest: String,
    pub config_source: String,
    pub pid: u32,
    /// `true`/`false` from the kernel's NTP state; `null` when it could not be read.
    pub clock_synchronized: Option<bool>,
    /// How `clock_synchronized` was determined, or why it is unknown.
    pub clock_check: String,
    /// Last moment the previous run was known alive (heartbeat or last line).
    #[serde(with = "ts_ms::option", default)]
    pub previous_run_alive_until: Option<Timestamp>,
    /// Whether the previous run wrote `daemon_stop` (`null` for the first run).
    #[serde(default)]
    pub previous_run_clean: Option<bool>,
    /// A torn last line left by the previous run, skipped (1-based line number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_line: Option<u64>,
    /// The chain head named by the previous run's last heartbeat: `--verify`
    /// checks that the journal still holds that line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_head: Option<ChainHead>,
    /// `[daemon] site`, when set (absent in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// `[plan]`, when configured (absent in older journals): `linkwatch
    /// report` has no configuration and judges throughput tests against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    /// The run's `kind = "throughput"` targets, so that the report knows
    /// which tests of the history store are speed tests and which way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput_targets: Vec<ThroughputTarget>,
}

/// `[plan]` as configured, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_bps: Option<f64>,
    /// `[plan]`'s minimum and normal rates (absent in journals of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_min_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_min_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_normal_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_normal_bps: Option<f64>,
}

impl PlanRecord {
    /// The configuration's `[plan]`, if it has one.
    pub fn of(config: &Config) -> Option<Self> {
        config.plan.map(|p| Self {
            download_bps: p.download_bps,
            upload_bps: p.upload_bps,
            download_min_bps: p.download_min_bps,
            upload_min_bps: p.upload_min_bps,
            download_normal_bps: p.download_normal_bps,
            upload_normal_bps: p.upload_normal_bps,
        })
    }

    /// The promised rate for `direction` (`"download"`/`"upload"`).
    pub fn rate(&self, direction: &str) -> Option<f64> {
        match direction {
            "download" => self.download_bps,
            "upload" => self.upload_bps,
            _ => None,
        }
    }
}

/// One throughput target of a run: its name, group and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputTarget {
    pub target: String,
    pub group: String,
    /// `download` or `upload`.
    pub direction: String,
}

impl ThroughputTarget {
    /// The configuration's throughput targets, in config order.
    pub fn of(config: &Config) -> Vec<Self> {
        config
            .targets
            .iter()
            .filter_map(|t| match &t.spec {
                TargetSpec::Throughput(s) => Some(Self {
                    target: t.name.clone(),
                    group: t.group.clone(),
                    direction: s.direction.as_str().to_string(),
                }),
                _ => None,
            })
            .collect()
    }
}

impl DaemonStart {
    pub fn emit(&self) {
        tracing::info!(
            version = %self.version,
            site = self.site.as_deref().unwrap_or(""),
            config_digest = %self.config_digest,
            clock_synchronized = ?self.clock_synchronized,
            clock_check = %self.clock_check,
            previous_run_alive_until = ?self.previous_run_alive_until.map(|t| ts_ms::format(&t)),
            previous_run_clean = ?self.previous_run_clean,
            "outage journal opened"
        );
    }
}

/// `daemon_stop`: a clean stop. Outages and slow periods still open stay
/// open (the next start continues or closes them); a reader with no daemon
/// running ends them, for reading, at the run's last sign of life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStop {
    pub open_outages: Vec<String>,
    /// Slow periods (`degraded_*` ids) open at the stop. Absent in older journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_degradations: Vec<String>,
}

/// `outage_start`: a group went down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageStarted {
    pub id: String,
    pub group: String,
    pub cause: String,
    /// With `start_observed: false`: the earliest moment it could have begun.
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// `false` when the group went down while the daemon observed nothing: the
    /// true start lies in the first gap, between `start` and that gap's `to`.
    /// Absent (older journals) means `true`.
    #[serde(default = "observed", skip_serializing_if = "is_true")]
    pub start_observed: bool,
    /// Targets of the group that were down when it started.
    pub targets: Vec<String>,
    /// Unobserved periods already known at the start (with `start_observed: false`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

impl OutageStarted {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            start_observed = self.start_observed,
            end = "open",
            duration_seconds = 0.0,
            targets = %self.targets.join(","),
            "outage started"
        );
        let labels = [self.group.as_str(), self.cause.as_str()];
        metrics.outages_total.with_label_values(&labels).inc();
        metrics.outage_active.with_label_values(&labels).set(1.0);
    }
}

/// `outage_resume`: an outage open when the previous run ended is still down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageResumed {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// The unobserved period: from the last moment seen down to the first failure seen again.
    pub gap: Gap,
    pub targets: Vec<String>,
}

impl OutageResumed {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            gap_from = %ts_ms::format(&self.gap.from),
            gap_to = %ts_ms::format(&self.gap.to),
            targets = %self.targets.join(","),
            "outage continues after a restart"
        );
        metrics
            .outage_active
            .with_label_values(&[self.group.as_str(), self.cause.as_str()])
            .set(1.0);
    }
}

/// `outage_end`: a group is up again (or was found up after a restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageEnded {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// As in `outage_start`; absent (older journals) means `true`.
    #[serde(default = "observed", skip_serializing_if = "is_true")]
    pub start_observed: bool,
    /// With `end_observed: false`: the last moment the group was seen down.
    #[serde(with = "ts_ms")]
    pub end: Timestamp,
    pub duration_seconds: f64,
    pub duration_clock: DurationClock,
    /// `false` when the group came up while the daemon was not running or not
    /// observing (a stall): the true end lies in the last gap, somewhere between
    /// `end` and that gap's `to`.
    pub end_observed: bool,
    /// Targets of the group that were down at any time during the outage.
    pub targets: Vec<String>,
    pub gaps: Vec<Gap>,
    /// Why it ended when not because the group came up: absent for a
    /// recovery (and in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
}

/// Why an outage (or a degradation period) ended other than by recovering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A configuration reload removed its group: monitoring of it stopped
    /// at `end`; nothing is known about the group after that.
    Removed,
    /// A configuration reload changed its group (members, `down_when`,
    /// thresholds) and the group, judged by its new definition, is not down
    /// (or not degraded) any more.
    Reconfigured,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Removed => "removed",
            EndReason::Reconfigured => "reconfigured",
        }
    }

    /// For people (reports, the page): why the period ended without recovering.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::Removed => {
                "monitoring stopped: the group was removed from the configuration"
            }
            EndReason::Reconfigured => "the group was redefined in the configuration",
        }
    }
}

/// `config_reload`: the configuration file was re-read and applied (a file
/// that did not validate changes nothing and writes no line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigReload {
    /// SHA-256 of the new configuration text (as in `daemon_start`).
    pub config_digest: String,
    pub config_source: String,
    /// The digest that was running before.
    pub previous_digest: String,
    /// Target names added, removed, and changed (a changed target restarts as a new one).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Groups added and removed (an open outage of a removed group ends
    /// with `end_reason: "removed"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_groups: Vec<String>,
    /// Changed keys that only a restart applies (their running values stay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_only: Vec<String>,
    /// The new `[plan]` and throughput targets, as `daemon_start` records
    /// them: the report judges tests after the reload against these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput_targets: Vec<ThroughputTarget>,
}

impl ConfigReload {
    pub fn emit(&self) {
        tracing::info!(
            config_digest = %self.config_digest,
            previous_digest = %self.previous_digest,
            config_source = %self.config_source,
            added = %self.added.join(","),
            removed = %self.removed.join(","),
            changed = %self.changed.join(","),
            added_groups = %self.added_groups.join(","),
            removed_groups = %self.removed_groups.join(","),
            "configuration reloaded"
        );
    }
}

impl OutageEnded {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::info!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            end = %ts_ms::format(&self.end),
            duration_seconds = self.duration_seconds,
            start_observed = self.start_observed,
            end_observed = self.end_observed,
            gaps = self.gaps.len(),
            targets = %self.targets.join(","),
            end_reason = self.end_reason.map_or("recovered", EndReason::as_str),
            "outage ended"
        );
        metrics
            .outage_active
            .with_label_values(&[self.group.as_str(), self.cause.as_str()])
            .set(0.0);
    }
}

/// `journal_reopened`: the journal path no longer named the file being written
/// (renamed, removed or replaced); the path was reopened and the chain goes on
/// in it from the last line written to the previous file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalReopened {
    /// What was found at the path.
    pub reason: String,
    /// Device and inode of the file written until now.
    pub previous_device: u64,
    pub previous_inode: u64,
    /// Bytes in that file when it was left.
    pub previous_bytes: u64,
}
