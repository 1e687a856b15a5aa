//! Shared test helpers: configs built in code, the namespace fixture, and the
//! "inner" half that runs probes inside a namespace (see [`netns`]).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use linkwatch::config::{
    Config, DaemonConfig, Defaults, Group, Host, IcmpSpec, IpVersion, Target, TargetSpec, TcpSpec,
};
use linkwatch::probe::{Observation, Outcome};

/// A host as the config parser would produce it: an address or a name.
pub fn host(s: &str) -> Host {
    match s.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if s == "@gateway" => Host::Gateway,
        Err(_) => Host::Name(s.to_string()),
    }
}

pub fn icmp(h: &str) -> TargetSpec {
    TargetSpec::Icmp(IcmpSpec::new(host(h)))
}

pub fn tcp(h: &str, port: u16) -> TargetSpec {
    TargetSpec::Tcp(TcpSpec {
        host: host(h),
        port,
        ip_version: IpVersion::Any,
    })
}

/// A `Config` holding exactly `targets` (in group `g`): the one place tests
/// and benchmarks build a `Config` value (from the model's own defaults), so
/// a new field is added in the model only.
pub fn config_with(targets: Vec<Target>) -> Config {
    Config {
        source: "<test>".into(),
        digest: String::new(),
        daemon: DaemonConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("/nonexistent"),
            ..DaemonConfig::default()
        },
        defaults: Defaults::default(),
        ..Config::new(vec![Group::new("g")], targets)
    }
}

/// A target named `name` with `spec`, in group `g`, with the default timing.
pub fn target(name: &str, spec: TargetSpec) -> Target {
    Target::new(name, "g", &Defaults::default(), spec)
}

/// A config with one group and the given targets (named `t0`, `t1`, …),
/// probed every `2 × timeout`.
pub fn config(specs: Vec<TargetSpec>, timeout: Duration) -> Config {
    let targets = specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| Target {
            interval: timeout * 2,
            timeout,
            ..target(&format!("t{i}"), spec)
        })
        .collect();
    let mut cfg = config_with(targets);
    cfg.defaults.interval = timeout * 2;
    cfg.defaults.timeout = timeout;
    cfg
}

/// One word for an outcome (`success`, `timeout`, or the reason), then details.
pub fn describe(report: &Observation) -> String {
    let peer = report.info.peer.map(|p| p.to_string()).unwrap_or_default();
    match &report.outcome {
        Outcome::Success { duration, .. } => {
            format!("success {}us peer={peer}", duration.as_micros())
        }
        Outcome::Timeout { phase } => format!("timeout phase={phase:?} peer={peer}"),
        Outcome::Error(e) => format!("{} {} peer={peer}", e.reason, e.detail),
    }
}

/// The `LWT <tag> …` lines an inner run printed, without the prefix.
pub fn inner_lines(out: &std::process::Output, tag: &str) -> Vec<String> {
    let prefix = format!("LWT {tag} ");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // libtest prints "test inner ... " on the same line as the first output.
        .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_string()))
        .collect()
}

/// The inner half: true when this process was started by [`netns::Netns::run_inner`].
pub fn is_inner() -> bool {
    std::env::var("LWT_INNER").as_deref() == Ok("1")
}

/// Targets from `LWT_TARGETS` (`icmp:HOST` or `tcp:HOST:PORT`, comma separated)
/// and the timeout from `LWT_TIMEOUT_MS`.
pub fn inner_config() -> Config {
    let timeout = std::env::var("LWT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(1));
    let targets = std::env::var("LWT_TARGETS").unwrap_or_default();
    let specs = targets
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|t| {
            if let Some(h) = t.strip_prefix("icmp:") {
                icmp(h)
            } else if let Some(hp) = t.strip_prefix("tcp:") {
                let (h, p) = hp.rsplit_once(':').expect("tcp:HOST:PORT");
                tcp(h.trim_matches(['[', ']']), p.parse().expect("port"))
            } else {
                panic!("bad LWT_TARGETS entry {t}")
            }
        })
        .collect();
    config(specs, timeout)
}

/// Counts ICMP sockets this namespace's kernel lists: (raw, dgram) over both families.
pub fn kernel_icmp_sockets() -> (usize, usize) {
    let rows = |f: &str| {
        std::fs::read_to_string(f)
            .map(|s| s.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    };
    (
        rows("/proc/net/raw") + rows("/proc/net/raw6"),
        rows("/proc/net/icmp") + rows("/proc/net/icmp6"),
    )
}

/// The body of an inner test: when started by `run_inner`, probes the targets
/// of [`inner_config`] concurrently, `LWT_ROUNDS` times, printing `LWT` lines;
/// with `LWT_LISTEN=ADDR` it serves TCP on ADDR until killed instead.
pub fn inner_main() {
    use linkwatch::probe::icmp::IcmpProber;
    use linkwatch::probe::tcp::TcpProber;
    use linkwatch::probe::{Request, seam};
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if let Ok(addr) = std::env::var("LWT_LISTEN") {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .expect("bind listener");
            println!("LWT listening {addr}");
            loop {
                let _ = listener.accept().await;
            }
        }
        let config = Arc::new(inner_config());
        let has_icmp = config
            .targets
            .iter()
            .any(|t| matches!(t.spec, TargetSpec::Icmp(_)));
        let icmp = if has_icmp {
            match IcmpProber::new(&config) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    println!("LWT setup-error {}", e.to_string().replace('\n', " "));
                    return;
                }
            }
        } else {
            None
        };
        let rounds: usize = std::env::var("LWT_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for _ in 0..rounds {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..config.targets.len() {
                let (config, icmp) = (config.clone(), icmp.clone());
                set.spawn(async move {
                    let t = &config.targets[i];
                    let deadline = tokio::time::Instant::now() + t.timeout;
                    let report = match &t.spec {
                        TargetSpec::Icmp(_) => {
                            let p = icmp.as_ref().expect("icmp prober");
                            let req = Request::new(config.clone(), i, deadline).expect("target");
                            seam::observe(p, req).await
                        }
                        TargetSpec::Tcp(s) => TcpProber::new().probe(t, s, deadline).await,
                        other => panic!("inner runner cannot probe {other:?}"),
                    };
                    (i, report)
                });
            }
            let mut results = set.join_all().await;
            results.sort_by_key(|(i, _)| *i);
            for (i, report) in results {
                println!("LWT probe {i} {}", describe(&report));
            }
        }
        if let Some(p) = icmp {
            // Datagram sockets are listed once bound, i.e. after the first send.
            let (raw, dgram) = kernel_icmp_sockets();
            let surge = surge_ping::Client::new(&surge_ping::Config::default())
                .map(|c| format!("{:?}", c.get_socket().get_type()))
                .unwrap_or_else(|e| format!("error:{e}"));
            println!(
                "LWT mode v4={} v6={} surge_v4={surge} kernel_raw={raw} kernel_dgram={dgram}",
                p.mode().as_str(),
                p.mode_v6().map_or("none", |m| m.as_str()),
            );
        }
    });
}

/// The daemon config of the loopback outage tests: `lan` (`router`, a TCP
/// port that accepts) and `internet` (`service` on `svc_port`, down while
/// nothing listens there), 200 ms probes. `data_dir` may be `{data_dir}`
/// (the daemon harness's temp directory) or a path; `daemon_extra` is added
/// to `[daemon]`.
pub fn two_tcp_groups(
    data_dir: &str,
    listen: &str,
    lan_port: u16,
    svc_port: u16,
    daemon_extra: &str,
) -> String {
    format!(
        r#"
[daemon]
listen = "{listen}"
data_dir = "{data_dir}"
{daemon_extra}

[defaults]
interval = "200ms"
timeout = "150ms"
fail_after = 3
recover_after = 2

[[group]]
name = "lan"

[[group]]
name = "internet"
needs = "lan"

[[target]]
name = "router"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = {lan_port}

[[target]]
name = "service"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = {svc_port}
"#
    )
}
