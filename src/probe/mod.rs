//! Probe kinds behind one signature, and the typed result every probe returns.
//!
//! Each kind lives in its own file and is started through the one seam,
//! [`Probe::start`] (see [`seam`] for why it takes a completion rather than
//! returning a future). A probe never returns a bare bool: it observes an
//! [`Outcome`] (success with duration and phases, timeout, or an error with a
//! [`Reason`]) plus optional kind-specific [`Info`]. Every probe ends by its
//! deadline; probes also use the deadline to attribute a timeout to the phase
//! that was running. `net/` holds the network helpers the kinds share.

pub mod dns;
pub mod hold;
pub mod http;
pub mod icmp;
pub mod loaded;
pub mod net;
pub mod seam;
pub mod tcp;
pub mod throughput;
pub mod trace;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{Config, Kind, Target};
pub use seam::{Completion, Probe, Request};

/// Defines a closed enum together with its label, `ALL` table, `COUNT` and
/// `index()`, from one list: a new variant is in every table by construction,
/// and a table sized `[_; COUNT]` grows with it (no `1 + x as usize` to keep
/// in step by hand, no run-time index panic).
macro_rules! closed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration (= [`Self::index`]) order.
            pub const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];
            pub const COUNT: usize = Self::ALL.len();

            /// Position in [`Self::ALL`], for tables sized `[_; Self::COUNT]`.
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The label value (`phase`, `reason`) of this variant.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }
    };
}

closed_enum! {
    /// A probe phase, the `phase` label of `linkwatch_probe_phase_seconds`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
    #[serde(rename_all = "snake_case")]
    pub enum Phase {
        Resolve => "resolve",
        Connect => "connect",
        Tls => "tls",
        FirstByte => "first_byte",
        Transfer => "transfer",
    }
}

impl Phase {
    /// The phases a kind can report (the label sets created at start).
    pub fn for_kind(kind: Kind) -> &'static [Phase] {
        match kind {
            Kind::Icmp => &[Phase::Resolve],
            Kind::Tcp => &[Phase::Resolve, Phase::Connect],
            Kind::Http | Kind::Throughput => &Phase::ALL,
            Kind::Dns => &[Phase::Resolve, Phase::Connect, Phase::Tls],
        }
    }
}

/// Durations of the phases a probe went through; `None` for phases it did not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases([Option<Duration>; Phase::COUNT]);

impl Phases {
    pub fn set(&mut self, phase: Phase, d: Duration) {
        self.0[phase.index()] = Some(d);
    }

    pub fn get(&self, phase: Phase) -> Option<Duration> {
        self.0[phase.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        Phase::ALL
            .iter()
            .filter_map(|p| self.get(*p).map(|d| (*p, d)))
    }
}

closed_enum! {
    /// Why a probe failed. Closed set: each variant is a distinct diagnosis.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Reason {
        /// The name did not resolve (NXDOMAIN, no resolver, resolver failure).
        Resolve => "resolve",
        /// The name resolved, but to no address of the requested family.
        NoAddress => "no_address",
        /// `@gateway`: the routing table has no default route.
        NoGateway => "no_gateway",
        /// TCP RST / ICMP port unreachable.
        ConnectRefused => "connect_refused",
        /// No route, host or network unreachable (locally or by an ICMP error).
        Unreachable => "unreachable",
        /// The kernel refused to send (EPERM at send time: a local firewall rule).
        Blocked => "blocked",
        /// TLS handshake or certificate failure.
        Tls => "tls",
        /// HTTP status not in `expect_status`.
        StatusMismatch => "status_mismatch",
        /// Body did not contain `body_contains` / match `body_regex`.
        BodyMismatch => "body_mismatch",
        TooManyRedirects => "too_many_redirects",
        /// DNS rcode other than `expect_rcode`.
        Rcode => "rcode",
        /// DNS answers missing an expected value or fewer than `min_answers`.
        AnswerMismatch => "answer_mismatch",
        /// The peer sent something that is not valid for the protocol.
        Malformed => "malformed",
        /// The peer closed or reset the connection mid-exchange.
        ConnectionReset => "connection_reset",
        /// Any other local I/O error.
        Io => "io",
        /// Throughput: the object ended (closed, or a smaller `Content-Length`) before
        /// `min_bytes`, or the whole test moved less than that, whatever ended it.
        ShortBody => "short_body",
        /// Throughput: the transfer made no progress for `timeout` (a partial figure).
        Stall => "stall",
        /// The TCP connection was reset right after the TLS ClientHello went out
        /// (a timeout after it is `Outcome::Timeout { phase: Some(Phase::Tls) }`).
        ResetAfterHello => "reset_after_hello",
        /// The connection was reset right after the HTTP request went out.
        ResetAfterRequest => "reset_after_request",
        /// Interference checks ([`crate::interference`]); each failure with one of
        /// these carries [`crate::interference::Evidence`] in its [`Info`].
        /// The resolver's answer disagreed with `compare_with` (TLS tie-breaker failed).
        DnsInconsistent => "dns_inconsistent",
        /// The resolver answered a bogon address that `compare_with` did not return.
        DnsBogon => "dns_bogon",
        /// The TLS chain came from an unexpected issuer, or missed `pin_spki`/`expect_issuer`.
        TlsIntercepted => "tls_intercepted",
        /// The real name failed after the ClientHello while `sni_control` succeeded.
        SniBlocked => "sni_blocked",
        /// The HTTP answer matched a block-page pattern.
        Blockpage => "blockpage",
    }
}

/// The interference check a probe failure reason stands for, when it is one
/// (kept here, not in [`crate::interference`], which the probes import).
pub trait FromReason {
    fn from_reason(reason: Reason) -> Option<Self>
    where
        Self: Sized;
}

impl FromReason for crate::interference::Check {
    /// `throttled_name` is never a probe failure (a slow throughput test
    /// still succeeded): it is a slow-period trigger.
    fn from_reason(reason: Reason) -> Option<Self> {
        use crate::interference::Check;
        match reason {
            Reason::DnsInconsistent => Some(Check::DnsInconsistent),
            Reason::DnsBogon => Some(Check::DnsBogon),
            Reason::TlsIntercepted => Some(Check::TlsIntercepted),
            Reason::SniBlocked => Some(Check::SniBlocked),
            Reason::Blockpage => Some(Check::Blockpage),
            _ => None,
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
        RESULTS[self.result_index()]
    }

    /// Position of the `result` label in [`RESULTS`].
    pub const fn result_index(&self) -> usize {
        match self {
            Outcome::Success { .. } => 0,
            Outcome::Timeout { .. } => 1,
            Outcome::Error(_) => 2,
        }
    }

    pub fn error(reason: Reason, detail: impl Into<String>) -> Self {
        Outcome::Error(ProbeError::new(reason, detail))
    }
}

pub const RESULT_SUCCESS: &str = "success";
pub const RESULT_TIMEOUT: &str = "timeout";
pub const RESULT_ERROR: &str = "error";
/// Every value of the `result` label, in [`Outcome::result_index`] order.
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
    /// Throughput: the test's figures (also on a failed test, marked partial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Box<throughput::ThroughputInfo>>,
    /// HTTPS: the leaf certificate's issuer (its distinguished name, e.g.
    /// `CN=R11, O=Let's Encrypt, C=US`), also when the chain failed validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_issuer: Option<String>,
    /// HTTPS: the leaf's SPKI fingerprint, base64 of SHA-256 (the `pin_spki` form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_spki: Option<String>,
    /// What an interference check saw, when one fired (see [`crate::interference`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<crate::interference::Evidence>>,
    /// The extra connection an interference check made for this probe, if any
    /// (at most one per probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<crate::interference::Extra>,
}

/// What one probe observed: the outcome and kind-specific facts. (Not a
/// "report": that word is kept for `linkwatch report`.)
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub outcome: Outcome,
    pub info: Info,
}

impl Observation {
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
    pub observation: Observation,
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
    #[error(transparent)]
    Throughput(#[from] throughput::ThroughputSetupError),
}

/// All probe kinds, each created once with its shared resources (ICMP sockets,
/// TLS configs). Dispatch is a `match` over the closed [`TargetSpec`] set.
pub struct Probers {
    config: Arc<Config>,
    icmp: Option<Arc<icmp::IcmpProber>>,
    tcp: Arc<tcp::TcpProber>,
    http: Arc<http::HttpProber>,
    dns: Arc<dns::DnsProber>,
    throughput: Arc<throughput::ThroughputProber>,
}

impl Probers {
    /// Creates the probers a configuration needs. Must run inside the tokio runtime.
    /// ICMP sockets are opened only when the configuration has ICMP targets.
    pub async fn new(config: &Arc<Config>) -> Result<Self, SetupError> {
        let has_icmp = config.targets.iter().any(|t| t.kind() == Kind::Icmp);
        let icmp = if has_icmp {
            Some(Arc::new(icmp::IcmpProber::new(config)?))
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            icmp,
            tcp: Arc::new(tcp::TcpProber::new()),
            http: Arc::new(http::HttpProber::new(config)?),
            dns: Arc::new(dns::DnsProber::new(config)?),
            throughput: Arc::new(throughput::ThroughputProber::for_config(config)?),
        })
    }

    /// What `linkwatch check` verifies beyond the file itself, without a
    /// socket or a runtime: every TLS configuration the probers would build
    /// (each `ca_file` read and parsed) and every DNS question. The first
    /// problem is returned, naming the target.
    pub fn check_offline(config: &Config) -> Result<(), SetupError> {
        http::HttpProber::new(config)?;
        dns::DnsProber::new(config)?;
        throughput::ThroughputProber::for_config(config)?;
        Ok(())
    }

    /// ICMP socket mode in use, when ICMP is in use.
    pub fn icmp(&self) -> Option<&icmp::IcmpProber> {
        self.icmp.as_deref()
    }

    /// Probes target `index` (`target`) once and waits for the observation,
    /// by `deadline` (a timeout at the latest): [`seam::observe`] over [`Probe::start`].
    pub async fn probe(
        self: &Arc<Self>,
        index: usize,
        target: &Target,
        deadline: Instant,
    ) -> Observation {
        match Request::new(self.config.clone(), index, deadline) {
            Some(req) => seam::observe(self, req).await,
            None => Observation::new(Outcome::error(
                Reason::Io,
                format!(
                    "target {} is not in the prober's configuration",
                    target.name
                ),
            )),
        }
    }
}

impl Probe for Probers {
    fn start(self: &Arc<Self>, req: Request, done: Completion) {
        match req.target().kind() {
            Kind::Icmp => match &self.icmp {
                Some(p) => p.start(req, done),
                None => seam::finish(
                    done,
                    Observation::new(Outcome::error(Reason::Io, "ICMP prober not initialised")),
                ),
            },
            Kind::Tcp => self.tcp.start(req, done),
            Kind::Http => self.http.start(req, done),
            Kind::Dns => self.dns.start(req, done),
            Kind::Throughput => self.throughput.start(req, done),
        }
    }
}

/// The one text of an outcome, shared by the status API, `linkwatch probe`
/// and the log: `ok in 1.234ms`, `no answer within the timeout (during
/// connect)`, `connect_refused: failed to connect to …`.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text(None).fmt(f)
    }
}

impl Outcome {
    /// The outcome's text, naming the deadline a timeout missed when it is
    /// known (`no answer within 400ms`) instead of "the timeout".
    pub fn text(&self, timeout: Option<Duration>) -> OutcomeText<'_> {
        OutcomeText {
            outcome: self,
            timeout,
        }
    }
}

/// An [`Outcome`] in words; made by [`Outcome::text`].
pub struct OutcomeText<'a> {
    outcome: &'a Outcome,
    timeout: Option<Duration>,
}

impl std::fmt::Display for OutcomeText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.outcome {
            Outcome::Success { duration, .. } => {
                write!(f, "ok in {:.3}ms", duration.as_secs_f64() * 1e3)
            }
            Outcome::Timeout { phase } => {
                match self.timeout {
                    Some(t) => write!(f, "no answer within {t:?}")?,
                    None => f.write_str("no answer within the timeout")?,
                }
                match phase {
                    Some(p) => write!(f, " (during {})", p.as_str()),
                    None => Ok(()),
                }
            }
            Outcome::Error(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_in_index_order() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.index(), i, "{p:?}");
        }
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        assert_eq!(Reason::COUNT, 24);
        assert_eq!(Reason::ShortBody.as_str(), "short_body");
        assert_eq!(Reason::ConnectRefused.as_str(), "connect_refused");
        assert_eq!(Phase::FirstByte.as_str(), "first_byte");
        use crate::interference::Check;
        let checks: Vec<Check> = Reason::ALL
            .into_iter()
            .filter_map(Check::from_reason)
            .collect();
        assert_eq!(checks.len(), Check::ALL.len() - 1, "all but throttled_name");
        for r in Reason::ALL {
            if let Some(c) = Check::from_reason(r) {
                assert_eq!(c.as_str(), r.as_str(), "one label for both");
            }
        }
        assert_eq!(Check::from_reason(Reason::ConnectionReset), None);
        let timeout = Outcome::Timeout { phase: None };
        assert_eq!(timeout.result_label(), RESULT_TIMEOUT);
        assert_eq!(Outcome::error(Reason::Io, "x").result_label(), RESULT_ERROR);
    }
}
