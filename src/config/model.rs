//! The validated configuration: typed values only, produced once by
//! [`super::parse`] and never re-validated by the parts that consume it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

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
}

impl Config {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
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

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// The upstream group this one can only be judged through (`lan` for `isp`).
    pub needs: Option<String>,
    pub down_when: DownWhen,
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
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }
}

/// The closed set of probe kinds; the `kind` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Icmp,
    Tcp,
    Http,
    Dns,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Icmp, Kind::Tcp, Kind::Http, Kind::Dns];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Icmp => "icmp",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Dns => "dns",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Icmp(IcmpSpec),
    Tcp(TcpSpec),
    Http(HttpSpec),
    Dns(DnsSpec),
}

impl TargetSpec {
    pub fn kind(&self) -> Kind {
        match self {
            TargetSpec::Icmp(_) => Kind::Icmp,
            TargetSpec::Tcp(_) => Kind::Tcp,
            TargetSpec::Http(_) => Kind::Http,
            TargetSpec::Dns(_) => Kind::Dns,
        }
    }
}

/// Where a probe is sent. Names are resolved on every probe so DNS changes are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
    /// `"@gateway"`: the default route's gateway, read from the routing table per probe.
    Gateway,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
            Host::Gateway => f.write_str("@gateway"),
        }
    }
}

/// Which address family to use when a name resolves to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    #[default]
    Any,
    V4,
    V6,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    pub host: Host,
    pub ip_version: IpVersion,
    /// Bytes of payload after the 8-byte ICMP header.
    pub payload_size: usize,
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
    pub headers: Vec<(String, String)>,
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
}

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
}

/// The resolver a DNS probe asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsServer {
    /// `server` omitted: the first nameserver in /etc/resolv.conf, read per probe.
    System,
    /// `address[:port]` or `name[:port]` for udp, tcp and tls.
    Addr { host: Host, port: u16 },
    /// A DoH endpoint URL (`https://…/dns-query`).
    Url(Url),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub server: DnsServer,
    /// The name asked for (fully qualified or not; the probe does not search).
    pub query: String,
    /// Upper-case record type mnemonic, validated against [`super::RECORD_TYPES`].
    pub record: String,
    pub transport: DnsTransport,
    /// Name checked in the server's certificate for `tls` (defaults to the server host).
    pub tls_name: Option<String>,
    /// Upper-case rcode mnemonic expected (`NOERROR` by default).
    pub expect_rcode: String,
    /// Answers (as presentation-format RDATA, e.g. `192.0.2.1`) that must all be present.
    pub expect: Vec<String>,
    pub min_answers: u32,
    pub ca_file: Option<PathBuf>,
}
