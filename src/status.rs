//! The status read model: for every target its configuration summary, last
//! result and state after hysteresis, and every group's state — what
//! `/api/v1/status` returns and the status page `/` shows.
//!
//! Probe results arrive from the collector ([`StatusStore::record`]), target
//! states from the outage service when they change ([`TargetStates`]); group
//! states are read from the outage service when a [`Status`] is taken.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::config::Config;
use crate::outage::detector::State;
use crate::outage::{GroupStatus, OutageHandle, TargetStates};
use crate::probe::{Info, Observation, Outcome, ProbeResult};

/// The whole status at one moment, as `/api/v1/status` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    #[serde(serialize_with = "ts")]
    pub started: Timestamp,
    #[serde(serialize_with = "ts")]
    pub now: Timestamp,
    /// In configuration order.
    pub groups: Vec<GroupStatus>,
    /// In configuration order.
    pub targets: Vec<TargetStatus>,
}

/// A target's configuration summary, last result and state.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub group: String,
    pub kind: &'static str,
    /// Where the probe goes (host, host:port, URL or DNS question).
    pub probes: String,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub probes_total: u64,
    pub successes_total: u64,
    /// `None` until the first probe completed.
    pub last: Option<LastResult>,
    /// After hysteresis; `unknown` until decided.
    pub state: State,
    /// When `state` began (back-dated to the first probe that showed it).
    #[serde(serialize_with = "ts_option")]
    pub state_since: Option<Timestamp>,
}

/// One probe result as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LastResult {
    /// Wall-clock start, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// `success`, `timeout` or `error`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Failure reason (`timeout`, `connect_refused`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<&'static str, f64>,
    #[serde(flatten)]
    pub info: Info,
}

impl LastResult {
    /// The API's view of a report of a probe started at `at`.
    pub fn from_parts(at: Timestamp, report: &Observation) -> Self {
        let (duration_seconds, reason, detail, phases) = match &report.outcome {
            Outcome::Success { duration, phases } => (
                Some(duration.as_secs_f64()),
                None,
                None,
                phases
                    .iter()
                    .map(|(p, d)| (p.as_str(), d.as_secs_f64()))
                    .collect(),
            ),
            timeout @ Outcome::Timeout { .. } => (
                None,
                Some("timeout".to_string()),
                Some(timeout.to_string()),
                BTreeMap::new(),
            ),
            Outcome::Error(e) => (
                None,
                Some(e.reason.as_str().to_string()),
                Some(e.detail.clone()),
                BTreeMap::new(),
            ),
        };
        Self {
            at: format_ts(at),
            result: report.outcome.result_label(),
            duration_seconds,
            reason,
            detail,
            phases,
            info: report.info.clone(),
        }
    }
}

/// RFC 3339 UTC with milliseconds, the format of every timestamp linkwatch writes.
pub fn format_ts(ts: Timestamp) -> String {
    format!("{:.3}", ts)
}

fn ts<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*t))
}

fn ts_option<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

/// Thread-safe store of every target's status.
///
/// Recording is on the probe hot path (10 000 results a second at scale), so
/// it only copies the report; formatting for the API happens in `status`.
pub struct StatusStore {
    targets: Mutex<Vec<(TargetStatus, Option<Latest>)>>,
}

/// A target's latest report and when its probe started.
type Latest = (Timestamp, Observation);

impl StatusStore {
    pub fn new(config: &Config) -> Self {
        let targets = config
            .targets
            .iter()
            .map(|t| TargetStatus {
                name: t.name.clone(),
                group: t.group.clone(),
                kind: t.kind().as_str(),
                probes: describe(&t.spec),
                interval_seconds: t.interval.as_secs_f64(),
                timeout_seconds: t.timeout.as_secs_f64(),
                probes_total: 0,
                successes_total: 0,
                last: None,
                state: State::Unknown,
                state_since: None,
            })
            .map(|t| (t, None))
            .collect();
        Self {
            targets: Mutex::new(targets),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(TargetStatus, Option<Latest>)>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, r: &ProbeResult) {
        if let Some((t, last)) = self.lock().get_mut(r.target) {
            t.probes_total += 1;
            if r.observation.outcome.is_success() {
                t.successes_total += 1;
            }
            *last = Some((r.at, r.observation.clone()));
        }
    }

    /// Every target's name, in configuration order.
    pub fn target_names(&self) -> Vec<String> {
        self.lock().iter().map(|(t, _)| t.name.clone()).collect()
    }

    /// Every target's status, in configuration order.
    fn snapshot(&self) -> Vec<TargetStatus> {
        self.lock()
            .iter()
            .map(|(t, last)| TargetStatus {
                last: last
                    .as_ref()
                    .map(|(at, report)| LastResult::from_parts(*at, report)),
                ..t.clone()
            })
            .collect()
    }

    /// The whole status now: targets from this store, groups from `outages`.
    pub fn status(&self, outages: &OutageHandle, started: Timestamp) -> Status {
        Status {
            version: env!("CARGO_PKG_VERSION"),
            started,
            now: Timestamp::now(),
            groups: outages.groups(),
            targets: self.snapshot(),
        }
    }
}

impl TargetStates for StatusStore {
    fn set(&self, target: usize, state: State, since: Timestamp) {
        if let Some((t, _)) = self.lock().get_mut(target) {
            t.state = state;
            t.state_since = Some(since);
        }
    }
}

/// A short description of what a target probes, for tables and the API.
pub fn describe(spec: &crate::config::TargetSpec) -> String {
    use crate::config::TargetSpec;
    match spec {
        TargetSpec::Icmp(s) => s.host.to_string(),
        TargetSpec::Tcp(s) => match &s.host {
            crate::config::Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", s.port),
            h => format!("{h}:{}", s.port),
        },
        TargetSpec::Http(s) => format!("{} {}", s.method.as_str(), s.url),
        TargetSpec::Dns(s) => format!(
            "{} {} @{} ({})",
            s.query,
            s.record,
            s.server,
            s.server.transport().as_str()
        ),
    }
}
