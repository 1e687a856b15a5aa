//! The status read model: for every target its configuration summary, last
//! result and state after hysteresis, and every group's state — what
//! `/api/v1/status` returns and the status page `/` shows.
//!
//! Probe results arrive from the collector ([`StatusStore::record`]), target
//! states from the outage service when they change ([`TargetStates`]); group
//! states are read from the outage service when a [`Status`] is taken.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::config::Config;
use crate::config::diff::carry_over;
pub use crate::config::redact::{REDACTED, redact_url, secret_param};
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
/// it only copies the outcome (the kind-specific facts only when a probe
/// has any beyond its address); formatting for the API happens in `status`,
/// outside the lock. The configuration summary is kept apart from what
/// changes: about 300 bytes per target instead of 800 with a whole
/// [`TargetStatus`] and [`Observation`] each.
pub struct StatusStore {
    targets: Mutex<Vec<Live>>,
    /// What the configuration says of each target (replaced by a reload).
    layout: RwLock<Layout>,
}

/// Per target: its configuration summary, and what to scrub from the
/// details shown.
struct Layout {
    fixed: Vec<Fixed>,
    secrets: Vec<Secrets>,
}

impl Layout {
    fn of(config: &Config) -> Self {
        Self {
            fixed: config.targets.iter().map(Fixed::of).collect(),
            secrets: config
                .targets
                .iter()
                .map(|t| Secrets::of(&t.spec))
                .collect(),
        }
    }
}

impl Fixed {
    fn of(t: &crate::config::Target) -> Self {
        Self {
            name: t.name.clone(),
            group: t.group.clone(),
            kind: t.kind().as_str(),
            probes: describe(&t.spec),
            interval_seconds: t.interval.as_secs_f64(),
            timeout_seconds: t.timeout.as_secs_f64(),
        }
    }
}

impl Live {
    /// A target nothing is known of yet.
    fn unknown() -> Self {
        Self {
            probes_total: 0,
            successes_total: 0,
            state: State::Unknown,
            state_since: None,
            latest: None,
        }
    }
}

/// The configuration part of a [`TargetStatus`].
struct Fixed {
    name: String,
    group: String,
    kind: &'static str,
    probes: String,
    interval_seconds: f64,
    timeout_seconds: f64,
}

/// The changing part of a [`TargetStatus`].
#[derive(Clone)]
struct Live {
    probes_total: u64,
    successes_total: u64,
    state: State,
    state_since: Option<Timestamp>,
    latest: Option<Latest>,
}

/// A target's latest report and when its probe started. An ICMP or TCP
/// probe's facts are only its address: the rest of [`Info`] is kept (boxed,
/// the box reused) only when a probe reported more.
#[derive(Clone)]
struct Latest {
    at: Timestamp,
    outcome: Outcome,
    peer: Option<std::net::IpAddr>,
    more: Option<Box<Info>>,
}

impl Latest {
    fn set(slot: &mut Option<Latest>, at: Timestamp, report: &Observation) {
        let info = &report.info;
        let plain = *info
            == Info {
                peer: info.peer,
                ..Info::default()
            };
        match slot {
            Some(l) => {
                l.at = at;
                l.outcome.clone_from(&report.outcome);
                l.peer = info.peer;
                match (&mut l.more, plain) {
                    (more, true) => *more = None,
                    (Some(b), false) => (**b).clone_from(info),
                    (more, false) => *more = Some(Box::new(info.clone())),
                }
            }
            None => {
                *slot = Some(Latest {
                    at,
                    outcome: report.outcome.clone(),
                    peer: info.peer,
                    more: (!plain).then(|| Box::new(info.clone())),
                })
            }
        }
    }

    fn observation(&self) -> Observation {
        let info = match &self.more {
            Some(b) => (**b).clone(),
            None => Info {
                peer: self.peer,
                ..Info::default()
            },
        };
        Observation::with_info(self.outcome.clone(), info)
    }
}

impl StatusStore {
    pub fn new(config: &Config) -> Self {
        Self {
            targets: Mutex::new(vec![Live::unknown(); config.targets.len()]),
            layout: RwLock::new(Layout::of(config)),
        }
    }

    /// Applies a configuration reload: target `i` of `config` keeps the
    /// status of old target `kept[i]` (counts, last result, state); the
    /// others start `unknown` with nothing probed.
    pub fn reload(&self, config: &Config, kept: &[Option<usize>]) {
        // Same lock order as `snapshot`: layout, then targets.
        let mut layout = self.layout.write().unwrap_or_else(|p| p.into_inner());
        let mut targets = self.lock();
        *targets = carry_over(
            std::mem::take(&mut *targets),
            kept,
            config.targets.len(),
            |_| Live::unknown(),
        );
        *layout = Layout::of(config);
    }

    fn layout(&self) -> std::sync::RwLockReadGuard<'_, Layout> {
        self.layout.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, r: &ProbeResult) {
        if let Some(t) = self.lock().get_mut(r.target) {
            t.probes_total += 1;
            if r.observation.outcome.is_success() {
                t.successes_total += 1;
            }
            Latest::set(&mut t.latest, r.at, &r.observation);
        }
    }

    /// Every target's name, in configuration order.
    pub fn target_names(&self) -> Vec<String> {
        self.layout().fixed.iter().map(|t| t.name.clone()).collect()
    }

    /// Every target's status, in configuration order. The lock is held only
    /// to copy the changing parts; formatting happens after.
    fn snapshot(&self) -> Vec<TargetStatus> {
        let layout = self.layout();
        let live = self.lock().clone();
        live.into_iter()
            .zip(&layout.fixed)
            .zip(&layout.secrets)
            .map(|((l, f), secrets)| TargetStatus {
                name: f.name.clone(),
                group: f.group.clone(),
                kind: f.kind,
                probes: f.probes.clone(),
                interval_seconds: f.interval_seconds,
                timeout_seconds: f.timeout_seconds,
                probes_total: l.probes_total,
                successes_total: l.successes_total,
                last: l.latest.as_ref().map(|latest| {
                    let mut r = LastResult::from_parts(latest.at, &latest.observation());
                    r.detail = r.detail.map(|d| secrets.scrub(&d));
                    r
                }),
                state: l.state,
                state_since: l.state_since,
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
        if let Some(t) = self.lock().get_mut(target) {
            t.state = state;
            t.state_since = Some(since);
        }
    }
}

/// A short description of what a target probes, for tables and the API;
/// URL credentials and secret-looking query values are redacted.
pub fn describe(spec: &crate::config::TargetSpec) -> String {
    use crate::config::TargetSpec;
    match spec {
        TargetSpec::Icmp(s) => s.host.to_string(),
        TargetSpec::Tcp(s) => match &s.host {
            crate::config::Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", s.port),
            h => format!("{h}:{}", s.port),
        },
        TargetSpec::Http(s) => format!("{} {}", s.method.as_str(), redact_url(&s.url)),
        TargetSpec::Dns(s) => format!(
            "{} {} @{} ({})",
            s.query,
            s.record,
            Secrets::of(spec).scrub(&s.server.to_string()),
            s.server.transport().as_str()
        ),
        TargetSpec::Throughput(s) => {
            format!("{} {} ({} streams)", s.direction.as_str(), s.url, s.streams)
        }
    }
}

/// The secrets of one target's configuration (URL credentials, header
/// values, secret query values), to scrub from any text shown about it:
/// error details quote URLs, and a server may echo a header.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `(text to find, replacement)`, longest first.
    pairs: Vec<(String, String)>,
}

impl Secrets {
    pub fn of(spec: &crate::config::TargetSpec) -> Self {
        use crate::config::{DnsServer, TargetSpec};
        let mut pairs = Vec::new();
        let mut url = |u: &url::Url| {
            pairs.push((u.to_string(), redact_url(u)));
            if !u.username().is_empty() || u.password().is_some() {
                let userinfo = match u.password() {
                    Some(p) => format!("{}:{p}@", u.username()),
                    None => format!("{}@", u.username()),
                };
                pairs.push((userinfo, format!("{REDACTED}@")));
            }
            for (k, v) in u.query_pairs() {
                if secret_param(&k) && !v.is_empty() {
                    pairs.push((format!("{k}={v}"), format!("{k}={REDACTED}")));
                }
            }
        };
        match spec {
            TargetSpec::Http(s) => {
                url(&s.url);
                for (_, v) in &s.headers {
                    // Short values (`1`, `no`) are not secrets and would
                    // mangle unrelated text.
                    if let Ok(v) = v.to_str()
                        && v.len() >= 4
                    {
                        pairs.push((v.to_string(), REDACTED.to_string()));
                    }
                }
            }
            TargetSpec::Dns(s) => {
                if let DnsServer::Https { url: u, .. } = &s.server {
                    url(u);
                }
            }
            _ => {}
        }
        pairs.sort_by_key(|(find, _)| std::cmp::Reverse(find.len()));
        pairs.dedup();
        Self { pairs }
    }

    /// `text` with every secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (find, with) in &self.pairs {
            if find != with && out.contains(find.as_str()) {
                out = out.replace(find.as_str(), with);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpMethod, HttpSpec, TargetSpec};

    fn http(url: &str, headers: &[(&str, &str)]) -> TargetSpec {
        TargetSpec::Http(Box::new(HttpSpec {
            method: HttpMethod::Get,
            headers: headers
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
            ..HttpSpec::new(url.parse().unwrap())
        }))
    }

    #[test]
    fn the_latest_report_comes_back_whole_with_or_without_more_facts() {
        let mut slot = None;
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let peer = Some("127.0.0.1".parse().unwrap());
        let plain = Observation::with_info(
            Outcome::Timeout { phase: None },
            Info {
                peer,
                ..Info::default()
            },
        );
        let rich = Observation::with_info(
            Outcome::Timeout { phase: None },
            Info {
                peer,
                status: Some(503),
                answers: vec!["192.0.2.1".into()],
                ..Info::default()
            },
        );
        for report in [&plain, &rich, &rich, &plain, &rich] {
            Latest::set(&mut slot, at, report);
            let latest = slot.as_ref().unwrap();
            assert_eq!(latest.observation(), *report);
            assert_eq!(latest.more.is_some(), report.info.status.is_some());
        }
    }

    #[test]
    fn url_credentials_and_secret_parameters_are_redacted() {
        let spec = http(
            "https://alice:s3cr%40t@example.test/health?api_key=abc123&region=eu",
            &[("Authorization", "Bearer eyJhbGciOi"), ("X-Env", "1")],
        );
        let shown = describe(&spec);
        assert_eq!(
            shown,
            "GET https://***@example.test/health?api_key=***&region=eu"
        );
        let s = Secrets::of(&spec);
        let detail = "request to https://alice:s3cr%40t@example.test/health?api_key=abc123&region=eu failed; \
                      server said: Bearer eyJhbGciOi; retry alice:s3cr%40t@other api_key=abc123";
        let clean = s.scrub(detail);
        for secret in ["s3cr", "eyJhbGciOi", "abc123", "alice"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(
            clean.contains("https://***@example.test/health?api_key=***&region=eu"),
            "{clean}"
        );
        // A short header value does not mangle other text.
        assert!(s.scrub("1 target").contains("1 target"));
    }
}
