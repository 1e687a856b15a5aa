//! Probe kinds behind one signature, and the typed result every probe returns.
//!
//! Each kind lives in its own file and exposes `async fn probe(&self, target,
//! spec, deadline) -> Report`. A probe never returns a bare bool: it returns an
//! [`Outcome`] (success with duration and phases, timeout, or an error with a
//! [`Reason`]) plus optional kind-specific [`Info`]. The scheduler bounds every
//! probe by its deadline; probes also use the deadline to attribute a timeout to
//! the phase that was running.

pub mod dns;
pub mod http;
pub mod icmp;
pub mod resolve;
pub mod stream;
pub mod tcp;
pub mod throughput;
pub mod tls;

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{Config, Kind, Target, TargetSpec};

/// A probe phase, the `phase` label of `linkwatch_probe_phase_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    FirstByte,
    Transfer,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::FirstByte,
        Phase::Transfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::FirstByte => "first_byte",
            Phase::Transfer => "transfer",
        }
    }

    /// The phases a kind can report (the label sets created at start).
    pub fn for_kind(kind: Kind) -> &'static [Phase] {
        match kind {
            Kind::Icmp => &[Phase::Resolve],
            Kind::Tcp => &[Phase::Resolve, Phase::Connect],
            Kind::Http => &Phase::ALL,
            Kind::Dns => &[Phase::Resolve, Phase::Connect, Phase::Tls],
        }
    }
}

/// Durations of the phases a probe went through; `None` for phases it did not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases([Option<Duration>; 5]);

impl Phases {
    pub fn set(&mut self, phase: Phase, d: Duration) {
        self.0[phase as usize] = Some(d);
    }

    pub fn get(&self, phase: Phase) -> Option<Duration> {
        self.0[phase as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        Phase::ALL
            .iter()
            .filter_map(|p| self.get(*p).map(|d| (*p, d)))
    }
}

/// Why a probe failed. Closed set: each variant is a distinct diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The name did not resolve (NXDOMAIN, no resolver, resolver failure).
    Resolve,
    /// The name resolved, but to no address of the requested family.
    NoAddress,
    /// `@gateway`: the routing table has no default route.
    NoGateway,
    /// TCP RST / ICMP port unreachable.
    ConnectRefused,
    /// No route, host or network unreachable (locally or by an ICMP error).
    Unreachable,
    /// The kernel refused to send (EPERM at send time: a local firewall rule).
    Blocked,
    /// TLS handshake or certificate failure.
    Tls,
    /// HTTP status not in `expect_status`.
    StatusMismatch,
    /// Body did not contain `body_contains` / match `body_regex`.
    BodyMismatch,
    TooManyRedirects,
    /// DNS rcode other than `expect_rcode`.
    Rcode,
    /// DNS answers missing an expected value or fewer than `min_answers`.
    AnswerMismatch,
    /// The peer sent something that is not valid for the protocol.
    Malformed,
    /// The peer closed or reset the connection mid-exchange.
    ConnectionReset,
    /// Any other local I/O error.
    Io,
    /// Throughput: the object ended (closed, or a smaller `Content-Length`) before `min_bytes`.
    ShortBody,
    /// Throughput: the transfer made no progress for `timeout` (a partial figure).
    Stall,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Resolve => "resolve",
            Reason::NoAddress => "no_address",
            Reason::NoGateway => "no_gateway",
            Reason::ConnectRefused => "connect_refused",
            Reason::Unreachable => "unreachable",
            Reason::Blocked => "blocked",
            Reason::Tls => "tls",
            Reason::StatusMismatch => "status_mismatch",
            Reason::BodyMismatch => "body_mismatch",
            Reason::TooManyRedirects => "too_many_redirects",
            Reason::Rcode => "rcode",
            Reason::AnswerMismatch => "answer_mismatch",
            Reason::Malformed => "malformed",
            Reason::ConnectionReset => "connection_reset",
            Reason::Io => "io",
            Reason::ShortBody => "short_body",
            Reason::Stall => "stall",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed probe: the diagnosis and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeError {
    pub reason: Reason,
    pub detail: String,
}

impl ProbeError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// The typed outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Total duration (RTT for ICMP, connect time for TCP, whole exchange for HTTP/DNS).
    Success {
        duration: Duration,
        phases: Phases,
    },
    /// The deadline passed; `phase` is the phase that was running, when known.
    Timeout {
        phase: Option<Phase>,
    },
    Error(ProbeError),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }

    /// The `result` label of `linkwatch_probes_total`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Outcome::Success { .. } => RESULT_SUCCESS,
            Outcome::Timeout { .. } => RESULT_TIMEOUT,
            Outcome::Error(_) => RESULT_ERROR,
        }
    }

    pub fn error(reason: Reason, detail: impl Into<String>) -> Self {
        Outcome::Error(ProbeError::new(reason, detail))
    }
}

pub const RESULT_SUCCESS: &str = "success";
pub const RESULT_TIMEOUT: &str = "timeout";
pub const RESULT_ERROR: &str = "error";
/// Every value of the `result` label.
pub const RESULTS: [&str; 3] = [RESULT_SUCCESS, RESULT_TIMEOUT, RESULT_ERROR];

/// Kind-specific facts a probe learned, reported next to the outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Info {
    /// The address actually probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    /// HTTP: final response status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HTTP: body bytes read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<u64>,
    /// HTTP: body bytes per second over the transfer phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
    /// HTTPS/DoT/DoH: earliest `notAfter` in the peer's chain, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<i64>,
    /// DNS: response code mnemonic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// DNS: answers in presentation format.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
}

/// What a probe function returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub outcome: Outcome,
    pub info: Info,
}

impl Report {
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            info: Info::default(),
        }
    }

    pub fn with_info(outcome: Outcome, info: Info) -> Self {
        Self { outcome, info }
    }
}

/// One probe's result as it flows from the scheduler to metrics, status and the detector.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// Index into `Config::targets`.
    pub target: usize,
    /// Wall-clock time the probe started (UTC).
    pub at: jiff::Timestamp,
    /// Monotonic time the probe started.
    pub mono: Instant,
    /// How late the probe started against its schedule.
    pub lateness: Duration,
    pub report: Report,
}

/// How a failed probe start-up is explained to the user.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Icmp(#[from] icmp::IcmpSetupError),
    #[error(transparent)]
    Http(#[from] http::HttpSetupError),
    #[error(transparent)]
    Dns(#[from] dns::DnsSetupError),
}

/// All probe kinds, each created once with its shared resources (ICMP sockets,
/// TLS configs). Dispatch is a `match` over the closed [`TargetSpec`] set.
pub struct Probers {
    icmp: Option<icmp::IcmpProber>,
    tcp: tcp::TcpProber,
    http: http::HttpProber,
    dns: dns::DnsProber,
}

impl Probers {
    /// Creates the probers a configuration needs. Must run inside the tokio runtime.
    /// ICMP sockets are opened only when the configuration has ICMP targets.
    pub async fn new(config: &Config) -> Result<Self, SetupError> {
        let has_icmp = config.targets.iter().any(|t| t.kind() == Kind::Icmp);
        let icmp = if has_icmp {
            Some(icmp::IcmpProber::new(config)?)
        } else {
            None
        };
        Ok(Self {
            icmp,
            tcp: tcp::TcpProber::new(),
            http: http::HttpProber::new(config)?,
            dns: dns::DnsProber::new(config)?,
        })
    }

    /// ICMP socket mode in use, when ICMP is in use.
    pub fn icmp(&self) -> Option<&icmp::IcmpProber> {
        self.icmp.as_ref()
    }

    /// Starts a probe without a task of its own when one can run that way
    /// (ICMP to a literal address, completed by the shared socket's receive
    /// task); otherwise hands the job back for [`Probers::probe`].
    pub fn start(
        &self,
        index: usize,
        target: &Target,
        job: crate::scheduler::Job,
    ) -> crate::scheduler::Start {
        if let TargetSpec::Icmp(spec) = &target.spec
            && let crate::config::Host::Ip(ip) = spec.host
            && let Some(icmp) = &self.icmp
        {
            return icmp.start(index, target, spec, ip, job);
        }
        crate::scheduler::Start::Declined(job)
    }

    /// Probes `target` once. Returns by `deadline` (a timeout outcome at the latest).
    pub async fn probe(&self, index: usize, target: &Target, deadline: Instant) -> Report {
        let fut = async {
            match &target.spec {
                TargetSpec::Icmp(spec) => match &self.icmp {
                    Some(p) => p.probe(index, target, spec, deadline).await,
                    None => Report::new(Outcome::error(Reason::Io, "ICMP prober not initialised")),
                },
                TargetSpec::Tcp(spec) => self.tcp.probe(target, spec, deadline).await,
                TargetSpec::Http(spec) => self.http.probe(index, target, spec, deadline).await,
                TargetSpec::Dns(spec) => self.dns.probe(index, target, spec, deadline).await,
            }
        };
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(report) => report,
            Err(_) => Report::new(Outcome::Timeout { phase: None }),
        }
    }
}
