//! The validated configuration: typed values only, produced once by
//! [`super::parse`] and never re-validated by the parts that consume it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use http::{HeaderName, HeaderValue};
use url::Url;

pub use super::net::{Cidr, Host, IpVersion};
pub use super::thresholds::Degraded;
use super::throughput::format_bytes;
pub use super::throughput::{Direction, Plan, Schedule, ThroughputSpec};

/// A fully validated linkwatch configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from (a path, or `<embedded default>`).
    pub source: String,
    /// SHA-256 of the configuration text, hex encoded (recorded in the journal).
    pub digest: String,
    pub daemon: DaemonConfig,
    pub defaults: Defaults,
    /// Groups in file order. `needs` always names another group in this list
    /// and the `needs` graph is acyclic.
    pub groups: Vec<Group>,
    /// Targets in file order. Every `group` names a group in [`Config::groups`].
    pub targets: Vec<Target>,
    /// `[plan]`: the rates the ISP contract promises, when given.
    pub plan: Option<Plan>,
    /// `[[notify]]` channels, in file order.
    pub notify: Vec<super::notify::NotifyChannel>,
    /// `[[peer]]` sites, in file order (unique names, unique tokens).
    pub peers: Vec<super::peer::PeerSpec>,
    /// `[history]`: how long the history store keeps minutes and hours.
    pub history: HistoryRetention,
    /// `[interference]`: shared settings of the interference checks.
    pub interference: super::interference::InterferenceConfig,
}

impl Config {
    /// `groups` and `targets` with every other setting at its default (as a
    /// file holding only those tables would give): the one place code builds
    /// a `Config` without parsing one, so a new setting is added here only.
    pub fn new(groups: Vec<Group>, targets: Vec<Target>) -> Self {
        Self {
            source: "<built in code>".into(),
            digest: String::new(),
            daemon: DaemonConfig::default(),
            defaults: Defaults::default(),
            groups,
            targets,
            plan: None,
            notify: Vec::new(),
            peers: Vec::new(),
            history: HistoryRetention::default(),
            interference: Default::default(),
        }
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// `[history]`: how long the history store keeps each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRetention {
    /// Days of per-minute rows (`minutes_days`, default 14).
    pub minutes_days: i64,
    /// Days of hourly summaries (`hours_days`, default 400).
    pub hours_days: i64,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        Self {
            minutes_days: 14,
            hours_days: 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// Address of the HTTP server (`/metrics`, `/healthz`, `/api/v1/*`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory holding `journal.jsonl` and the heartbeat file.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Upper bound on probes in flight at once, over all targets.
    pub max_concurrency: usize,
    /// Follow a symlinked journal, heartbeat or lock file in `data_dir` (refused by default).
    pub allow_symlinks: bool,
    /// Path tracing limits (`max_traces_per_minute`, `trace_max_hops`, `trace_timeout`).
    pub trace: TraceLimits,
    /// This vantage point's name (`site`, e.g. "almaty-home"): written into
    /// `daemon_start`, every report's header and `linkwatch_build_info`.
    pub site: Option<String>,
    /// `trusted_peers`: addresses whose HTTP connections have slots of their
    /// own, which a connection flood from other addresses cannot take.
    pub trusted_peers: Vec<Cidr>,
    /// `tls_cert` / `tls_key`: serve HTTPS only, with this PEM certificate
    /// chain and key (both or neither; re-read on reload).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How often our journal head is sent to every peer with a `url`; a
    /// peer counts us silent after three times this.
    pub witness_every: Duration,
}

/// The daemon-wide limits on path traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimits {
    /// Traces started in any 60 s, over all groups; 0 turns tracing off.
    pub max_per_minute: u32,
    /// TTLs probed at most.
    pub max_hops: u8,
    /// A trace is cut (and recorded as partial) after this.
    pub timeout: Duration,
}

impl TraceLimits {
    pub const DEFAULT_MAX_PER_MINUTE: u32 = 10;
    pub const DEFAULT_MAX_HOPS: u8 = 30;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for TraceLimits {
    fn default() -> Self {
        Self {
            max_per_minute: Self::DEFAULT_MAX_PER_MINUTE,
            max_hops: Self::DEFAULT_MAX_HOPS,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

impl Default for DaemonConfig {
    /// The values a configuration without `[daemon]` gets.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
            data_dir: PathBuf::from("/var/lib/linkwatch"),
            log_format: LogFormat::Text,
            max_concurrency: 1024,
            allow_symlinks: false,
            trace: TraceLimits::default(),
            site: None,
            trusted_peers: Cidr::loopback(),
            tls_cert: None,
            tls_key: None,
            witness_every: super::peer::DEFAULT_WITNESS_EVERY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Values every target inherits unless it overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub interval: Duration,
    pub timeout: Duration,
    pub fail_after: u32,
    pub recover_after: u32,
}

impl Default for Defaults {
    /// The built-in defaults, used where `[defaults]` says nothing.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            fail_after: 3,
            recover_after: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// The upstream group this one can only be judged through (`lan` for `isp`).
    pub needs: Option<String>,
    pub down_when: DownWhen,
    /// `[group.degraded]` over `[defaults.degraded]` over the built-in defaults.
    pub degraded: Degraded,
    /// Path tracing towards this group (`trace_target`, `trace_every`).
    pub trace: GroupTrace,
}

impl Group {
    /// A group that needs nothing and is down when all its targets are.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            needs: None,
            down_when: DownWhen::All,
            degraded: Degraded::default(),
            trace: GroupTrace::default(),
        }
    }
}

/// Where and how often a group's path is traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTrace {
    /// `trace_target`; `None`: the host of the group's first target that has one.
    pub target: Option<Host>,
    /// `trace_every`: the baseline interval.
    pub every: Duration,
    /// `trace_protocol`: what the trace sends (ICMP echo by default).
    pub protocol: TraceProtocol,
}

/// What a path trace sends with increasing TTL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceProtocol {
    /// ICMP echo requests; the destination answers with an echo reply.
    #[default]
    Icmp,
    /// UDP datagrams to ports 33434 and up (classic traceroute); the
    /// destination answers with a port unreachable. Needs no privilege.
    Udp,
}

impl TraceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Icmp => "icmp",
            TraceProtocol::Udp => "udp",
        }
    }
}

impl GroupTrace {
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);
}

impl Default for GroupTrace {
    fn default() -> Self {
        Self {
            target: None,
            every: Self::DEFAULT_EVERY,
            protocol: TraceProtocol::Icmp,
        }
    }
}

/// When a group counts as down, over its targets that are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownWhen {
    /// Every target is down (the default).
    All,
    /// At least one target is down.
    Any,
    /// At least this many targets are down (>= 1).
    AtLeast(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub group: String,
    pub interval: Duration,
    /// Always strictly less than `interval`.
    pub timeout: Duration,
    pub fail_after: u32,
    pub recover_after: u32,
    pub spec: TargetSpec,
}

impl Target {
    /// A target that takes its timing from `defaults`.
    pub fn new(name: &str, group: &str, defaults: &Defaults, spec: TargetSpec) -> Self {
        Self {
            name: name.to_owned(),
            group: group.to_owned(),
            interval: defaults.interval,
            timeout: defaults.timeout,
            fail_after: defaults.fail_after,
            recover_after: defaults.recover_after,
            spec,
        }
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// Whether this target's results vote on its group's up/down state. A
    /// throughput target judges slowness only, unless it sets
    /// `judge_outages = true`: its tests are minutes apart, so its last
    /// success says nothing about a blackout that began since.
    pub fn votes_on_outages(&self) -> bool {
        match &self.spec {
            TargetSpec::Throughput(t) => t.judge_outages,
            _ => true,
        }
    }

    /// How long this target's last result keeps its vote on the group: the
    /// time it needs to call a fault itself (`fail_after` × `interval`) plus
    /// one probe's time. A target that has not reported within it (its
    /// probes are skipped, or it tests every 30 minutes) is left out of the
    /// group's judgement instead of holding the group up on old news.
    pub fn vote_horizon(&self) -> Duration {
        self.interval
            .saturating_mul(self.fail_after.max(1))
            .saturating_add(self.max_probe_time())
    }

    /// The longest one probe of this target may take: its `timeout`, or for
    /// a throughput test set-up, transfer and answer
    /// ([`ThroughputSpec::worst_case`]). Probes are cut at start + this.
    pub fn max_probe_time(&self) -> Duration {
        match &self.spec {
            TargetSpec::Throughput(t) => t.worst_case(),
            _ => self.timeout,
        }
    }
}

/// The closed set of probe kinds; the `kind` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Icmp,
    Tcp,
    Http,
    Dns,
    Throughput,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Icmp,
        Kind::Tcp,
        Kind::Http,
        Kind::Dns,
        Kind::Throughput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Icmp => "icmp",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Dns => "dns",
            Kind::Throughput => "throughput",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
///
/// The three large specs are boxed: a 10,000-target ICMP configuration pays
/// for the largest variant in every target (an inline `ThroughputSpec` made
/// each `Target` 416 bytes; boxed, ICMP targets carry 48 bytes of spec).
pub enum TargetSpec {
    Icmp(IcmpSpec),
    Tcp(TcpSpec),
    Http(Box<HttpSpec>),
    Dns(Box<DnsSpec>),
    Throughput(Box<ThroughputSpec>),
}

impl TargetSpec {
    pub fn kind(&self) -> Kind {
        match self {
            TargetSpec::Icmp(_) => Kind::Icmp,
            TargetSpec::Tcp(_) => Kind::Tcp,
            TargetSpec::Http(_) => Kind::Http,
            TargetSpec::Dns(_) => Kind::Dns,
            TargetSpec::Throughput(_) => Kind::Throughput,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    pub host: Host,
    pub ip_version: IpVersion,
    /// Bytes of payload after the 8-byte ICMP header.
    pub payload_size: usize,
}

impl IcmpSpec {
    /// Largest `payload_size` a target may set.
    pub const MAX_PAYLOAD_SIZE: usize = 65_000;
    /// `payload_size` when a target sets none (as `ping` sends).
    pub const DEFAULT_PAYLOAD_SIZE: usize = 56;

    /// Echo requests to `host` with the default payload, either family.
    pub fn new(host: Host) -> Self {
        Self {
            host,
            ip_version: IpVersion::Any,
            payload_size: Self::DEFAULT_PAYLOAD_SIZE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    pub host: Host,
    pub port: u16,
    pub ip_version: IpVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// A check on the response body, to catch captive portals and injected pages.
#[derive(Debug, Clone)]
pub enum BodyMatch {
    Substring(String),
    Regex(regex::Regex),
}

impl PartialEq for BodyMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BodyMatch::Substring(a), BodyMatch::Substring(b)) => a == b,
            (BodyMatch::Regex(a), BodyMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// `http` or `https` only.
    pub url: Url,
    pub method: HttpMethod,
    /// Request headers in file order; each name replaces the default header of
    /// that name, and a name given twice (in two spellings) is sent twice.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Accepted status codes; empty means any 2xx or 3xx.
    pub expect_status: Vec<u16>,
    pub body_match: Option<BodyMatch>,
    /// Redirects to follow (0..=10).
    pub follow_redirects: u8,
    pub ip_version: IpVersion,
    /// Bytes of body read at most; the rest is not buffered.
    pub max_body: u64,
    /// Extra PEM CA bundle trusted in addition to the web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// `false` disables certificate verification (warned about at start).
    pub tls_verify: bool,
    /// `pin_spki`: the leaf keys accepted (base64 SHA-256 of the
    /// SubjectPublicKeyInfo, canonical form); any other is `tls_intercepted`.
    pub pin_spki: Vec<String>,
    /// `expect_issuer`: the issuer's whole DN or one of its values; any other
    /// issuer is `tls_intercepted`.
    pub expect_issuer: Option<String>,
    /// `sni_control`: the TLS name tried on the same address when the real
    /// handshake is reset or times out (`sni_blocked` when it answers).
    pub sni_control: Option<String>,
    /// `blockpage`: this target's block-page rules, tried before `[interference]`'s.
    pub blockpage: Vec<super::interference::BlockpageRule>,
}

impl HttpSpec {
    /// Largest `max_body` a target may set (64 MiB).
    pub const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;
    /// `max_body` when a target sets none (1 MiB).
    pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

    /// A GET of `url` with every option at its default.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            method: HttpMethod::Get,
            headers: Vec::new(),
            expect_status: Vec::new(),
            body_match: None,
            follow_redirects: 0,
            ip_version: IpVersion::Any,
            max_body: Self::DEFAULT_MAX_BODY,
            ca_file: None,
            tls_verify: true,
            pin_spki: Vec::new(),
            expect_issuer: None,
            sni_control: None,
            blockpage: Vec::new(),
        }
    }
}

/// The `transport` a DNS target names; carried by [`DnsServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    Udp,
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484).
    Https,
}

impl DnsTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsTransport::Udp => "udp",
            DnsTransport::Tcp => "tcp",
            DnsTransport::Tls => "tls",
            DnsTransport::Https => "https",
        }
    }

    /// The port used when `server` names none.
    pub fn default_port(self) -> u16 {
        match self {
            DnsTransport::Tls => 853,
            DnsTransport::Https => 443,
            DnsTransport::Udp | DnsTransport::Tcp => 53,
        }
    }
}

/// A plain-DNS (udp or tcp) resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nameserver {
    /// `server` omitted: the first nameserver in /etc/resolv.conf, read per probe.
    System,
    /// `address[:port]` or `name[:port]`.
    Addr { host: Host, port: u16 },
}

/// The resolver a DNS probe asks, with the transport it is asked over: each
/// transport carries exactly the settings that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsServer {
    /// `transport = "udp"` (the default): one datagram per probe.
    Udp(Nameserver),
    /// `transport = "tcp"`.
    Tcp(Nameserver),
    /// `transport = "tls"`: DNS over TLS (RFC 7858) to `host:port`.
    Tls {
        host: Host,
        port: u16,
        /// Name checked in the server's certificate (the host when `None`).
        tls_name: Option<String>,
        /// Extra PEM CA bundle trusted in addition to the web PKI roots.
        ca_file: Option<PathBuf>,
    },
    /// `transport = "https"`: DNS over HTTPS (RFC 8484) to a `https://…/dns-query` URL.
    Https {
        url: Url,
        /// Extra PEM CA bundle trusted in addition to the web PKI roots.
        ca_file: Option<PathBuf>,
    },
}

impl DnsServer {
    pub fn transport(&self) -> DnsTransport {
        match self {
            DnsServer::Udp(_) => DnsTransport::Udp,
            DnsServer::Tcp(_) => DnsTransport::Tcp,
            DnsServer::Tls { .. } => DnsTransport::Tls,
            DnsServer::Https { .. } => DnsTransport::Https,
        }
    }
}

impl std::fmt::Display for DnsServer {
    /// `system resolver`, `host:port` or the DoH URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsServer::Udp(Nameserver::System) | DnsServer::Tcp(Nameserver::System) => {
                f.write_str("system resolver")
            }
            DnsServer::Udp(Nameserver::Addr { host, port })
            | DnsServer::Tcp(Nameserver::Addr { host, port })
            | DnsServer::Tls { host, port, .. } => write!(f, "{host}:{port}"),
            DnsServer::Https { url, .. } => write!(f, "{url}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub server: DnsServer,
    /// The name asked for, as written (fully qualified or not; the probe does
    /// not search, it always asks for the name as fully qualified).
    pub query: Name,
    pub record: RecordType,
    /// The response code expected (`NOERROR` by default).
    pub expect_rcode: ResponseCode,
    /// Answers (as presentation-format RDATA, e.g. `192.0.2.1`) that must all be present.
    pub expect: Vec<String>,
    pub min_answers: u32,
    /// `compare_with` and its tie-breaker: DNS consistency against another
    /// dns target asking the same question (see [`crate::interference`]).
    pub compare: Option<DnsCompare>,
}

/// `compare_with = "<dns target>"` with `tie_break`, `tie_break_port` and
/// `tie_break_ca_file`: each probe's addresses are compared with the other
/// target's latest answer; a disagreement is checked with one TLS handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsCompare {
    /// The compared dns target's name (same `query` and `record`; checked at load).
    pub with: String,
    /// `tie_break = "tls"` (the default): one TLS handshake to the suspect
    /// address, SNI = the query name, on `tie_break_port`; `None` for `"none"`.
    pub tls: Option<TieBreakTls>,
}

/// The TLS tie-breaker's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TieBreakTls {
    /// `tie_break_port`, 443 by default.
    pub port: u16,
    /// `tie_break_ca_file`: PEM certificates trusted besides the web PKI roots.
    pub ca_file: Option<PathBuf>,
}

impl DnsSpec {
    /// An `A` query for `query` to `server`, expecting NOERROR and nothing else.
    pub fn new(server: DnsServer, query: Name) -> Self {
        Self {
            server,
            query,
            record: RecordType::A,
            expect_rcode: ResponseCode::NoError,
            expect: Vec::new(),
            min_answers: 0,
            compare: None,
        }
    }
}

impl Config {
    /// What is valid but worth a word at load: throughput targets that test
    /// more often than every 5 minutes (each test spends data), and groups
    /// whose voting targets' intervals are more than 10× apart.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.throughput_warnings();
        out.extend(self.mixed_interval_warnings());
        out
    }

    /// Groups whose voting targets' intervals are more than 10× apart: the
    /// slow ones see a fault that long after the fast ones, and until their
    /// vote expires (`fail_after` × `interval`) they keep a `down_when =
    /// "all"` group up.
    fn mixed_interval_warnings(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter_map(|g| {
                let (mut fast, mut slow): (Option<&Target>, Option<&Target>) = (None, None);
                for t in self
                    .targets
                    .iter()
                    .filter(|t| t.group == g.name && t.votes_on_outages())
                {
                    if fast.is_none_or(|f| t.interval < f.interval) {
                        fast = Some(t);
                    }
                    if slow.is_none_or(|s| t.interval > s.interval) {
                        slow = Some(t);
                    }
                }
                let (fast, slow) = (fast?, slow?);
                (slow.interval > fast.interval.saturating_mul(10)).then(|| {
                    format!(
                        "group `{}` mixes intervals more than 10x apart (`{}` every {}, `{}` every {}): \
                         `{}` sees a fault up to {} after `{}`, and until its vote expires its last \
                         result counts in the group's judgement (a `down_when = \"all\"` group stays up)",
                        g.name,
                        fast.name,
                        super::validate::format_duration(fast.interval),
                        slow.name,
                        super::validate::format_duration(slow.interval),
                        slow.name,
                        super::validate::format_duration(slow.vote_horizon()),
                        fast.name,
                    )
                })
            })
            .collect()
    }
}

impl Config {
    /// Throughput targets that test more often than every 5 minutes (each
    /// test spends data).
    pub(super) fn throughput_warnings(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter_map(|t| match &t.spec {
                TargetSpec::Throughput(s) if t.interval < ThroughputSpec::WARN_INTERVAL => {
                    let tests_per_day = (86_400.0 / t.interval.as_secs_f64()).floor();
                    Some(format!(
                        "throughput target `{}` tests every {}, more often than every {}: \
                         up to {} a test, {} a day at most (max_bytes_per_day)",
                        t.name,
                        humantime::format_duration(t.interval),
                        humantime::format_duration(ThroughputSpec::WARN_INTERVAL),
                        format_bytes(s.max_bytes),
                        format_bytes(
                            s.max_bytes_per_day
                                .min((tests_per_day as u64).saturating_mul(s.max_bytes))
                        ),
                    ))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    const BASE: &str = r#"
[[group]]
name = "intl"

[[target]]
name = "fast"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = 9
interval = "1s"
timeout = "500ms"
"#;

    #[test]
    fn a_group_mixing_intervals_more_than_10x_apart_is_warned_about() {
        let slow = r#"
[[target]]
name = "slow"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = 9
interval = "30s"
"#;
        let cfg = super::super::parse(&format!("{BASE}{slow}"), "t.toml").unwrap();
        let w = cfg.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("group `intl` mixes intervals more than 10x apart")
                && w[0].contains("`fast` every 1s")
                && w[0].contains("`slow` every 30s"),
            "{w:?}"
        );
        // 10x apart exactly is fine.
        let ten = slow.replace("30s", "10s");
        let cfg = super::super::parse(&format!("{BASE}{ten}"), "t.toml").unwrap();
        assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    }

    #[test]
    fn throughput_targets_vote_only_when_they_opt_in() {
        let tp = r#"
[[target]]
name = "speed"
group = "intl"
kind = "throughput"
url = "http://127.0.0.1:9/blob"
interval = "30m"
"#;
        let cfg = super::super::parse(&format!("{BASE}{tp}"), "t.toml").unwrap();
        let speed = cfg.targets.iter().find(|t| t.name == "speed").unwrap();
        assert!(!speed.votes_on_outages());
        assert!(
            !cfg.warnings().iter().any(|w| w.contains("mixes intervals")),
            "a target that does not vote mixes nothing: {:?}",
            cfg.warnings()
        );
        let opted = tp.replace(
            "interval = \"30m\"",
            "interval = \"30m\"\njudge_outages = true",
        );
        let cfg = super::super::parse(&format!("{BASE}{opted}"), "t.toml").unwrap();
        let speed = cfg.targets.iter().find(|t| t.name == "speed").unwrap();
        assert!(speed.votes_on_outages());
        // Its vote lasts fail_after (3) × 30 min plus its longest test.
        assert!(speed.vote_horizon() >= std::time::Duration::from_secs(3 * 1800));
        assert!(
            cfg.warnings().iter().any(|w| w.contains("mixes intervals")),
            "{:?}",
            cfg.warnings()
        );
    }
}
