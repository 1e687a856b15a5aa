//! The latest result of every target, for `/api/v1/status` and the status page.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::Config;
use crate::probe::{Info, Observation, Outcome, ProbeResult};

/// A target's configuration summary and last result.
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
    pub fn from_result(r: &ProbeResult) -> Self {
        Self::from_parts(r.at, &r.observation)
    }

    /// The API's view of a report of a probe started at `at`.
    pub fn from_parts(at: jiff::Timestamp, report: &Observation) -> Self {
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
            Outcome::Timeout { phase } => (
                None,
                Some("timeout".to_string()),
                Some(match phase {
                    Some(p) => format!("no answer within the timeout (during {})", p.as_str()),
                    None => "no answer within the timeout".to_string(),
                }),
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
pub fn format_ts(ts: jiff::Timestamp) -> String {
    format!("{:.3}", ts)
}

/// Thread-safe store of the latest status of each target.
///
/// Recording is on the probe hot path (10 000 results a second at scale), so
/// it only copies the report; formatting for the API happens in `snapshot`.
pub struct StatusStore {
    targets: Mutex<Vec<(TargetStatus, Option<Latest>)>>,
}

/// A target's latest report and when its probe started.
type Latest = (jiff::Timestamp, Observation);

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
            })
            .map(|t| (t, None))
            .collect();
        Self {
            targets: Mutex::new(targets),
        }
    }

    pub fn record(&self, r: &ProbeResult) {
        let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, last)) = targets.get_mut(r.target) {
            t.probes_total += 1;
            if r.observation.outcome.is_success() {
                t.successes_total += 1;
            }
            *last = Some((r.at, r.observation.clone()));
        }
    }

    pub fn snapshot(&self) -> Vec<TargetStatus> {
        let targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets
            .iter()
            .map(|(t, last)| TargetStatus {
                last: last
                    .as_ref()
                    .map(|(at, report)| LastResult::from_parts(*at, report)),
                ..t.clone()
            })
            .collect()
    }
}

/// A short description of what a target probes, for tables and the API.
pub fn describe(spec: &crate::config::TargetSpec) -> String {
    use crate::config::{DnsServer, TargetSpec};
    match spec {
        TargetSpec::Icmp(s) => s.host.to_string(),
        TargetSpec::Tcp(s) => match &s.host {
            crate::config::Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", s.port),
            h => format!("{h}:{}", s.port),
        },
        TargetSpec::Http(s) => format!("{} {}", s.method.as_str(), s.url),
        TargetSpec::Dns(s) => {
            let server = match &s.server {
                DnsServer::System => "system resolver".to_string(),
                DnsServer::Addr { host, port } => format!("{host}:{port}"),
                DnsServer::Url(u) => u.to_string(),
            };
            format!(
                "{} {} @{} ({})",
                s.query,
                s.record,
                server,
                s.transport.as_str()
            )
        }
    }
}
