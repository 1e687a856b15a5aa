//! Test helpers: small configurations built in code.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use crate::config::{
    Config, DaemonConfig, Defaults, DownWhen, Group, Host, IpVersion, LogFormat, Target,
    TargetSpec, TcpSpec,
};

/// A group: name, needs, down_when.
pub type G<'a> = (&'a str, Option<&'a str>, DownWhen);

/// Config with 1 s intervals, `fail_after` 3, `recover_after` 2; targets are `(name, group)`.
pub fn config(groups: &[G<'_>], targets: &[(&str, &str)], data_dir: &Path) -> Config {
    Config {
        source: "<test>".into(),
        digest: "d1g3st".into(),
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.to_path_buf(),
            log_format: LogFormat::Text,
            max_concurrency: 8,
            allow_symlinks: false,
            trace: Default::default(),
            site: None,
        },
        defaults: Defaults {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fail_after: 3,
            recover_after: 2,
        },
        groups: groups
            .iter()
            .map(|(n, needs, dw)| Group {
                name: n.to_string(),
                needs: needs.map(str::to_string),
                down_when: *dw,
                trace: Default::default(),
            })
            .collect(),
        targets: targets
            .iter()
            .map(|(n, g)| Target {
                name: n.to_string(),
                group: g.to_string(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                fail_after: 3,
                recover_after: 2,
                spec: TargetSpec::Tcp(TcpSpec {
                    host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                    port: 9,
                    ip_version: IpVersion::Any,
                }),
            })
            .collect(),
    }
}

/// lan → isp → internet, one target each (`router`, `isp-dns`, `google`).
pub fn chain(data_dir: &Path) -> Config {
    config(
        &[
            ("lan", None, DownWhen::All),
            ("isp", Some("lan"), DownWhen::All),
            ("internet", Some("isp"), DownWhen::All),
        ],
        &[
            ("router", "lan"),
            ("isp-dns", "isp"),
            ("google", "internet"),
        ],
        data_dir,
    )
}

/// Wall time `secs` after a fixed base (2026-11-01T10:00:00Z).
pub fn wall(secs: f64) -> jiff::Timestamp {
    let base: jiff::Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    base.checked_add(jiff::SignedDuration::from_secs_f64(secs))
        .unwrap()
}
