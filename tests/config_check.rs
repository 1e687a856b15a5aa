//! The configuration contract: every invalid fixture in `tests/config/` maps
//! to the exact problems `linkwatch check` prints for it, the shipped default
//! and the full example parse to the expected model, and an unknown key in any
//! table of any valid example is rejected at its line.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linkwatch::config::{
    self, BodyMatch, Config, ConfigError, ConfigErrors, DnsServer, DnsSpec, DnsTransport, DownWhen,
    Host, HttpMethod, HttpSpec, IcmpSpec, IpVersion, Kind, LogFormat, TargetSpec, TcpSpec,
};

const FIXTURES: &str = "tests/config";

/// Each invalid fixture and every line `ConfigErrors` displays for it, in order:
/// `line:column: key `k`: message` after the file name.
const INVALID: &[(&str, &[&str])] = &[
    (
        "invalid-body-regex.toml",
        &[
            "9:14: key `target[0].body_regex`: `body_regex` (<title>(Example) is not a valid regex: unclosed group",
        ],
    ),
    (
        "invalid-dns.toml",
        &[
            "9:10: key `target[0].server`: `server` (1.1.1.1) must be an https:// URL with `transport = \"https\"`: relative URL without a base",
            "12:1: key `target[1].server`: missing required key `server`: `transport = \"tls\"` needs an address such as \"1.1.1.1\" or \"dns.google:853\"",
            "25:12: key `target[2].tls_name`: `tls_name` only applies with `transport = \"tls\"`, not \"udp\"",
            "26:16: key `target[2].expect_rcode`: `expect_rcode` (OK) is not a DNS response code; valid: NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE",
            "27:11: key `target[2].expect[0]`: `expect` (1.1.1) is not an IPv4 address, as an A record holds",
        ],
    ),
    (
        "invalid-down-when.toml",
        &[
            "3:13: key `group[0].down_when`: `down_when` (2) is more than the number of targets in group `lan` (1)",
            "7:13: key `group[1].down_when`: `down_when` (most) must be \"all\", \"any\" or a number of targets (1 or more)",
        ],
    ),
    (
        "invalid-duplicate-group.toml",
        &["5:8: key `group[1].name`: duplicate group name `lan` (first defined at line 2)"],
    ),
    (
        "invalid-duplicate-target.toml",
        &["11:8: key `target[1].name`: duplicate target name `router` (first defined at line 5)"],
    ),
    (
        "invalid-duration.toml",
        &[
            "9:12: key `target[0].interval`: `interval` (5 parsecs) is not a valid duration (unknown time unit \"parsecs\"); write e.g. \"500ms\", \"5s\" or \"1m\"",
            "10:11: key `target[0].timeout`: expected a duration string such as \"5s\", found integer `2`",
        ],
    ),
    (
        "invalid-host.toml",
        &[
            "8:8: key `target[0].host`: `host` (my router) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": label `my router` contains ' '; only letters, digits and `-` are allowed",
            "14:8: key `target[1].host`: `host` (192.168.1.300) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": it looks like an IP address but is not a valid one",
            "21:8: key `target[2].host`: `host` (example.com:443) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": a port belongs in `port`, not in `host`",
        ],
    ),
    (
        "invalid-http.toml",
        &[
            "9:10: key `target[0].method`: `method` (POST) must be \"GET\" or \"HEAD\"",
            "10:13: key `target[0].headers.Bad Header`: header name `Bad Header` is not a valid HTTP header name",
            "10:42: key `target[0].headers.Accept`: expected a string, found integer `3`",
            "11:23: key `target[0].expect_status[1]`: `expect_status[1]` (99) must be in the range 100..=599",
            "13:14: key `target[0].body_regex`: `body_contains` and `body_regex` cannot both be set; keep one",
            "14:20: key `target[0].follow_redirects`: `follow_redirects` (11) must be in the range 0..=10",
            "15:14: key `target[0].ip_version`: `ip_version` (6) contradicts `url` (1.1.1.1), which is an IPv4 address",
            "16:12: key `target[0].max_body`: `max_body` (0) must be in the range 1..=67108864",
            "17:14: key `target[0].tls_verify`: expected a boolean (true or false), found string `\"yes\"`",
        ],
    ),
    (
        "invalid-interval-absurd.toml",
        &[
            "2:12: key `defaults.interval`: `interval` (30d) must be in the range 100ms..=24h",
            "12:12: key `target[0].interval`: `interval` (50ms) must be in the range 100ms..=24h",
        ],
    ),
    (
        "invalid-interval-zero.toml",
        &["9:12: key `target[0].interval`: `interval` (0s) must be in the range 100ms..=24h"],
    ),
    (
        "invalid-kind.toml",
        &[
            "7:8: key `target[0].kind`: `kind` (ping) must be one of icmp, tcp, http, dns",
            "9:1: key `target[0].color`: unknown key `color`; valid keys: name, group, kind, interval, timeout, fail_after, recover_after and the keys of the target's kind",
            "11:1: key `target[1].kind`: missing required key `kind`",
            "11:1: key `target[1].name`: missing required key `name`",
        ],
    ),
    (
        "invalid-missing-key.toml",
        &["4:1: key `target[0].port`: missing required key `port`"],
    ),
    (
        "invalid-needs-cycle.toml",
        &[
            "3:9: key `group[0].needs`: `needs` forms a cycle: lan -> internet -> isp -> lan",
            "15:9: key `group[3].needs`: `needs` forms a cycle: loner -> loner",
        ],
    ),
    (
        "invalid-needs-unknown.toml",
        &["6:9: key `group[1].needs`: `needs` (lann) names no [[group]]; defined groups: lan, isp"],
    ),
    (
        "invalid-no-targets.toml",
        &[
            "1:1: key `target`: no [[target]] is defined; at least one is required",
            "2:10: key `daemon.listen`: `listen` (localhost:9898) must be an IP address and a port, e.g. \"127.0.0.1:9898\" or \"[::1]:9898\"",
            "3:14: key `daemon.log_format`: `log_format` (yaml) must be \"text\" or \"json\"",
            "4:19: key `daemon.max_concurrency`: `max_concurrency` (0) must be in the range 1..=1000000",
        ],
    ),
    (
        "invalid-other-kind-key.toml",
        &[
            "9:1: key `target[0].url`: key `url` is not valid for kind `icmp`; valid keys: name, group, kind, interval, timeout, fail_after, recover_after, host, ip_version, payload_size",
        ],
    ),
    (
        "invalid-port-range.toml",
        &[
            "9:8: key `target[0].port`: `port` (70000) must be in the range 1..=65535",
            "16:8: key `target[1].port`: `port` (0) must be in the range 1..=65535",
        ],
    ),
    (
        "invalid-record.toml",
        &[
            "10:10: key `target[0].record`: `record` (AAA) is not a supported record type; supported: A, AAAA, CAA, CNAME, DNSKEY, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT",
        ],
    ),
    (
        "invalid-several.toml",
        &[
            "4:1: key `daemon.log_fromat`: unknown key `log_fromat`; valid keys: listen, data_dir, log_format, max_concurrency, allow_symlinks",
            "8:11: key `defaults.timeout`: `timeout` (10s) must be less than `interval` (5s)",
            "24:8: key `target[1].name`: duplicate target name `router` (first defined at line 18)",
            "27:8: key `target[1].host`: `host` (isp-gw..example) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": it has an empty label (two dots in a row, or a leading dot)",
            "28:8: key `target[1].port`: `port` (65536) must be in the range 1..=65535",
            "32:9: key `target[2].group`: `group` (wan) names no [[group]]; defined groups: lan, isp",
            "36:10: key `target[2].record`: `record` (AAAAA) is not a supported record type; supported: A, AAAA, CAA, CNAME, DNSKEY, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT",
            "37:1: key `target[2].url`: key `url` is not valid for kind `dns`; valid keys: name, group, kind, interval, timeout, fail_after, recover_after, server, query, record, transport, tls_name, expect_rcode, expect, min_answers, ca_file",
        ],
    ),
    (
        "invalid-structure.toml",
        &[
            "1:9: key `group`: expected an array of tables ([[group]]), found string `\"lan\"`",
            "3:1: key `target`: expected an array of tables ([[target]]), found table `[target]`",
        ],
    ),
    (
        "invalid-syntax.toml",
        &["5:15: invalid TOML: invalid basic string, expected `\"`"],
    ),
    (
        "invalid-timeout-defaults.toml",
        &["3:11: key `defaults.timeout`: `timeout` (2s) must be less than `interval` (2s)"],
    ),
    (
        "invalid-timeout-inherited.toml",
        &[
            "12:12: key `target[0].interval`: `timeout` (3s, from [defaults]) must be less than `interval` (1s)",
        ],
    ),
    (
        "invalid-timeout-target.toml",
        &["10:11: key `target[0].timeout`: `timeout` (5s) must be less than `interval` (2s)"],
    ),
    (
        "invalid-unknown-group.toml",
        &[
            "9:9: key `target[0].group`: `group` (wan) names no [[group]]; defined groups: lan, internet",
        ],
    ),
    (
        "invalid-unknown-key-daemon.toml",
        &[
            "3:1: key `daemon.port`: unknown key `port`; valid keys: listen, data_dir, log_format, max_concurrency, allow_symlinks",
        ],
    ),
    (
        "invalid-unknown-key-target.toml",
        &[
            "9:1: key `target[0].retries`: unknown key `retries`; valid keys for kind `icmp`: name, group, kind, interval, timeout, fail_after, recover_after, host, ip_version, payload_size",
        ],
    ),
    (
        "invalid-unknown-key-top.toml",
        &["1:1: key `colour`: unknown key `colour`; valid keys: daemon, defaults, group, target"],
    ),
    (
        "invalid-url-scheme.toml",
        &[
            "8:7: key `target[0].url`: `url` (ftp://ftp.example.com/pub/) has scheme `ftp`; only http and https are supported",
        ],
    ),
    (
        "invalid-url.toml",
        &[
            "8:7: key `target[0].url`: `url` (www.google.com/generate_204) is not a valid URL: relative URL without a base",
        ],
    ),
    (
        "invalid-wrong-type.toml",
        &[
            "2:14: key `defaults.fail_after`: expected an integer, found string `\"3\"`",
            "12:8: key `target[0].port`: expected an integer, found string `\"443\"`",
        ],
    ),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn invalid_fixtures_report_exactly_the_pinned_problems() {
    let mut failures = Vec::new();
    for (name, expected) in INVALID {
        let path = fixture(name);
        let errors = match config::load(&path) {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let want: Vec<String> = expected
            .iter()
            .map(|e| format!("{}:{e}", path.display()))
            .collect();
        if got != want {
            failures.push(format!(
                "{name}:\n  want:\n    {}\n  got:\n    {}",
                want.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_is_pinned() {
    let mut on_disk: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("invalid-") && n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut pinned: Vec<String> = INVALID.iter().map(|(n, _)| (*n).to_owned()).collect();
    pinned.sort();
    assert_eq!(on_disk, pinned);
    assert!(on_disk.len() >= 25, "the corpus shrank: {}", on_disk.len());
}

#[test]
fn errors_carry_positions_and_render_one_per_line() {
    let errors = config::load(&fixture("invalid-port-range.toml")).unwrap_err();
    assert_eq!(
        errors.0[0],
        ConfigError {
            file: "tests/config/invalid-port-range.toml".into(),
            line: 9,
            column: 8,
            key: "target[0].port".into(),
            message: "`port` (70000) must be in the range 1..=65535".into(),
        }
    );
    let shown = errors.to_string();
    assert_eq!(shown.lines().count(), 2);
    assert!(!shown.ends_with('\n'));
    let rendered = errors.render();
    assert!(rendered.starts_with(&shown), "{rendered}");
    assert!(rendered.ends_with("\n2 problems found\n"), "{rendered}");
    let as_error: &dyn std::error::Error = &errors;
    assert_eq!(as_error.to_string(), shown);
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let errors = config::load(&fixture("invalid-several.toml")).unwrap_err();
    assert_eq!(errors.len(), 8);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn unreadable_file_is_one_error_without_position() {
    let errors = config::load(Path::new("tests/config/does-not-exist.toml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors.0[0];
    assert_eq!((e.line, e.column, e.key.as_str()), (0, 0, ""));
    assert!(
        e.to_string().starts_with(
            "tests/config/does-not-exist.toml: failed to read the configuration file: "
        ),
        "{e}"
    );
}

#[test]
fn syntax_error_position_counts_characters_not_bytes() {
    let text = "[[group]]\nname = \"réseau\" x\n";
    let errors = config::parse(text, "mem").unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors.0[0];
    assert_eq!((e.line, e.column), (2, 17), "{e}");
    assert!(e.message.starts_with("invalid TOML: "), "{e}");
}

#[test]
fn default_config_parses_with_the_expected_groups_and_targets() {
    let c = config::default_config().unwrap();
    assert_eq!(c.source, config::DEFAULT_SOURCE);
    assert_eq!(c.digest.len(), 64);
    assert_eq!(c.daemon.listen, "127.0.0.1:9898".parse().unwrap());
    assert_eq!(c.daemon.data_dir, PathBuf::from("/var/lib/linkwatch"));
    assert_eq!(c.daemon.log_format, LogFormat::Text);
    assert_eq!(c.daemon.max_concurrency, 1024);
    assert_eq!(c.defaults.interval, Duration::from_secs(5));
    assert_eq!(c.defaults.timeout, Duration::from_secs(2));
    assert_eq!((c.defaults.fail_after, c.defaults.recover_after), (3, 2));

    let groups: Vec<(&str, Option<&str>, DownWhen)> = c
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.needs.as_deref(), g.down_when))
        .collect();
    assert_eq!(
        groups,
        [
            ("lan", None, DownWhen::All),
            ("isp", Some("lan"), DownWhen::All),
            ("internet", Some("isp"), DownWhen::All),
        ]
    );

    let gateway = c.target("gateway").unwrap();
    assert_eq!(gateway.group, "lan");
    assert_eq!(
        gateway.spec,
        TargetSpec::Icmp(IcmpSpec {
            host: Host::Gateway,
            ip_version: IpVersion::Any,
            payload_size: 56,
        })
    );
    let resolver = c.target("system-resolver").unwrap();
    assert_eq!(resolver.group, "isp");
    assert!(matches!(&resolver.spec, TargetSpec::Dns(d) if d.server == DnsServer::System));

    let internet: Vec<&config::Target> =
        c.targets.iter().filter(|t| t.group == "internet").collect();
    let icmp_hosts: Vec<Host> = internet
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Icmp(s) => Some(s.host.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        icmp_hosts,
        ["1.1.1.1", "8.8.8.8", "9.9.9.9", "2606:4700:4700::1111"].map(|s| Host::Ip(ip(s)))
    );
    let v6 = c.target("cloudflare-icmp6").unwrap();
    assert!(matches!(&v6.spec, TargetSpec::Icmp(s) if s.ip_version == IpVersion::V6));
    let tcp: Vec<(Host, u16)> = internet
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Tcp(s) => Some((s.host.clone(), s.port)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tcp,
        [
            (Host::Ip(ip("1.1.1.1")), 443),
            (Host::Ip(ip("8.8.8.8")), 443)
        ]
    );
    let http: Vec<(String, Vec<u16>)> = internet
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Http(s) => Some((s.url.to_string(), s.expect_status.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        http,
        [
            ("https://www.google.com/generate_204".into(), vec![204]),
            ("https://cp.cloudflare.com/generate_204".into(), vec![204]),
        ]
    );
    let dns: Vec<(DnsServer, DnsTransport, &str, &str)> = internet
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Dns(s) => Some((
                s.server.clone(),
                s.transport,
                s.query.as_str(),
                s.record.as_str(),
            )),
            _ => None,
        })
        .collect();
    let udp = |s: &str| DnsServer::Addr {
        host: Host::Ip(ip(s)),
        port: 53,
    };
    assert_eq!(
        dns,
        [
            (udp("1.1.1.1"), DnsTransport::Udp, "example.com", "A"),
            (udp("8.8.8.8"), DnsTransport::Udp, "example.com", "A"),
            (
                DnsServer::Url("https://cloudflare-dns.com/dns-query".parse().unwrap()),
                DnsTransport::Https,
                "example.com",
                "A"
            ),
        ]
    );
    for t in &c.targets {
        assert!(t.timeout < t.interval, "{}", t.name);
    }
}

#[test]
fn full_example_parses_to_the_expected_model() {
    let path = fixture("valid-full.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = config::load(&path).unwrap();
    assert_eq!(c.source, path.display().to_string());
    assert_eq!(c.digest, sha256_hex(&text));

    let expected = Config {
        source: c.source.clone(),
        digest: c.digest.clone(),
        daemon: config::DaemonConfig {
            listen: "[::1]:0".parse().unwrap(),
            data_dir: "/tmp/linkwatch-test".into(),
            log_format: LogFormat::Json,
            max_concurrency: 64,
            allow_symlinks: false,
        },
        defaults: config::Defaults {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            fail_after: 4,
            recover_after: 1,
        },
        groups: vec![
            group("lan", None, DownWhen::Any),
            group("isp", Some("lan"), DownWhen::AtLeast(1)),
            group("internet", Some("isp"), DownWhen::All),
        ],
        targets: vec![
            config::Target {
                name: "router".into(),
                group: "lan".into(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                fail_after: 5,
                recover_after: 3,
                spec: TargetSpec::Icmp(IcmpSpec {
                    host: Host::Ip(ip("192.168.1.1")),
                    ip_version: IpVersion::V4,
                    payload_size: 120,
                }),
            },
            inherit(
                "gateway",
                "lan",
                TargetSpec::Icmp(IcmpSpec {
                    host: Host::Gateway,
                    ip_version: IpVersion::Any,
                    payload_size: 56,
                }),
            ),
            inherit(
                "isp-web",
                "isp",
                TargetSpec::Tcp(TcpSpec {
                    host: Host::Name("example.net.".into()),
                    port: 443,
                    ip_version: IpVersion::V6,
                }),
            ),
            inherit(
                "portal",
                "internet",
                TargetSpec::Http(HttpSpec {
                    url: "https://example.org/health?x=1".parse().unwrap(),
                    method: HttpMethod::Head,
                    headers: vec![
                        ("Accept".into(), "*/*".into()),
                        ("User-Agent".into(), "linkwatch-test".into()),
                    ],
                    expect_status: vec![200, 204],
                    body_match: Some(BodyMatch::Substring("ok".into())),
                    follow_redirects: 3,
                    ip_version: IpVersion::V6,
                    max_body: 4096,
                    ca_file: Some("/etc/ssl/extra.pem".into()),
                    tls_verify: false,
                }),
            ),
            inherit(
                "portal-regex",
                "internet",
                TargetSpec::Http(HttpSpec {
                    url: "http://192.0.2.80:8080/".parse().unwrap(),
                    method: HttpMethod::Get,
                    headers: vec![],
                    expect_status: vec![],
                    body_match: Some(BodyMatch::Regex(regex::Regex::new(r"^ok\s*$").unwrap())),
                    follow_redirects: 0,
                    ip_version: IpVersion::Any,
                    max_body: 1024 * 1024,
                    ca_file: None,
                    tls_verify: true,
                }),
            ),
            inherit(
                "dmarc",
                "internet",
                TargetSpec::Dns(DnsSpec {
                    server: DnsServer::Addr {
                        host: Host::Ip(ip("2001:db8::53")),
                        port: 5353,
                    },
                    query: "_dmarc.example.com".into(),
                    record: "TXT".into(),
                    transport: DnsTransport::Udp,
                    tls_name: None,
                    expect_rcode: "NXDOMAIN".into(),
                    expect: vec!["v=DMARC1; p=none".into()],
                    min_answers: 2,
                    ca_file: None,
                }),
            ),
            inherit(
                "quad9-dot",
                "internet",
                TargetSpec::Dns(DnsSpec {
                    server: DnsServer::Addr {
                        host: Host::Name("dns.quad9.net".into()),
                        port: 853,
                    },
                    query: "example.com".into(),
                    record: "AAAA".into(),
                    transport: DnsTransport::Tls,
                    tls_name: Some("dns.quad9.net".into()),
                    expect_rcode: "NOERROR".into(),
                    // Normalised so the probe can compare addresses as text.
                    expect: vec!["2620:fe::fe".into()],
                    min_answers: 0,
                    ca_file: Some("/etc/ssl/dot.pem".into()),
                }),
            ),
            inherit(
                "doh",
                "internet",
                TargetSpec::Dns(DnsSpec {
                    server: DnsServer::Url("https://dns.example/dns-query".parse().unwrap()),
                    query: "example.com".into(),
                    record: "A".into(),
                    transport: DnsTransport::Https,
                    tls_name: None,
                    expect_rcode: "NOERROR".into(),
                    expect: vec![],
                    min_answers: 0,
                    ca_file: None,
                }),
            ),
            inherit(
                "system-tcp",
                "isp",
                TargetSpec::Dns(DnsSpec {
                    server: DnsServer::System,
                    query: "example.com.".into(),
                    record: "A".into(),
                    transport: DnsTransport::Tcp,
                    tls_name: None,
                    expect_rcode: "NOERROR".into(),
                    expect: vec![],
                    min_answers: 0,
                    ca_file: None,
                }),
            ),
        ],
    };
    assert_eq!(c, expected);
    let kinds: Vec<Kind> = c.targets.iter().map(|t| t.kind()).collect();
    for kind in Kind::ALL {
        assert!(
            kinds.contains(&kind),
            "valid-full.toml lacks a {kind} target"
        );
    }
}

fn group(name: &str, needs: Option<&str>, down_when: DownWhen) -> config::Group {
    config::Group {
        name: name.into(),
        needs: needs.map(Into::into),
        down_when,
    }
}

/// A `valid-full.toml` target that takes every common value from its `[defaults]`.
fn inherit(name: &str, group: &str, spec: TargetSpec) -> config::Target {
    config::Target {
        name: name.into(),
        group: group.into(),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        fail_after: 4,
        recover_after: 1,
        spec,
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn minimal_example_takes_every_default() {
    let c = config::load(&fixture("valid-minimal.toml")).unwrap();
    assert_eq!(c.daemon.listen, "127.0.0.1:9898".parse().unwrap());
    assert_eq!(c.daemon.log_format, LogFormat::Text);
    assert_eq!(c.daemon.max_concurrency, 1024);
    assert_eq!(c.groups, [group("internet", None, DownWhen::All)]);
    let t = &c.targets[0];
    assert_eq!(
        (t.interval, t.timeout, t.fail_after, t.recover_after),
        (Duration::from_secs(5), Duration::from_secs(2), 3, 2)
    );
}

#[test]
fn timing_messages_name_where_each_value_came_from() {
    let base = "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\n\
                kind = \"icmp\"\nhost = \"192.0.2.1\"\n";
    let cases = [
        (
            "timeout = \"6s\"\n",
            "mem:8:11: key `target[0].timeout`: \
             `timeout` (6s) must be less than `interval` (5s, the built-in default)",
        ),
        (
            "interval = \"1s\"\n",
            "mem:8:12: key `target[0].interval`: \
             `timeout` (2s, the built-in default) must be less than `interval` (1s)",
        ),
        (
            "interval = \"1s\"\ntimeout = \"1s\"\n",
            "mem:9:11: key `target[0].timeout`: `timeout` (1s) must be less than `interval` (1s)",
        ),
        (
            "timeout = \"0ms\"\n",
            "mem:8:11: key `target[0].timeout`: `timeout` (0ms) must be greater than zero",
        ),
    ];
    for (extra, want) in cases {
        let errors = config::parse(&format!("{base}{extra}"), "mem").unwrap_err();
        assert_eq!(errors.to_string(), want);
    }
    let text = format!("[defaults]\ninterval = \"1s\"\n{base}");
    let errors = config::parse(&text, "mem").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "mem:2:12: key `defaults.interval`: \
         `timeout` (2s, the built-in default) must be less than `interval` (1s)"
    );
}

#[test]
fn ip_version_accepts_strings_and_integers() {
    for (written, want) in [
        ("4", IpVersion::V4),
        ("\"4\"", IpVersion::V4),
        ("6", IpVersion::V6),
        ("\"6\"", IpVersion::V6),
        ("\"any\"", IpVersion::Any),
    ] {
        let text = format!(
            "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\n\
             kind = \"icmp\"\nhost = \"example.com\"\nip_version = {written}\n"
        );
        let c = config::parse(&text, "mem").unwrap();
        assert!(
            matches!(&c.targets[0].spec, TargetSpec::Icmp(s) if s.ip_version == want),
            "{written}"
        );
    }
    for bad in ["5", "\"v4\"", "4.0"] {
        let text = format!(
            "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\n\
             kind = \"icmp\"\nhost = \"example.com\"\nip_version = {bad}\n"
        );
        let e = config::parse(&text, "mem").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].column), (8, 14), "{bad}: {e}");
    }
}

/// Every valid example configuration shipped or used as a fixture.
fn valid_examples() -> Vec<(String, String)> {
    let mut examples = vec![(
        "config/default.toml".to_owned(),
        config::DEFAULT_CONFIG.to_owned(),
    )];
    let mut paths: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("valid-"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        examples.push((p.display().to_string(), text));
    }
    examples
}

#[test]
fn unknown_key_in_every_table_of_every_example_is_rejected_at_its_line() {
    const BOGUS: &str = "bogus_mutation_key";
    let mut checked = 0;
    for (name, text) in valid_examples() {
        if let Err(e) = config::parse(&text, &name) {
            panic!("{name} must be valid:\n{e}");
        }
        let lines: Vec<&str> = text.lines().collect();
        // Insert before line 1 (the root table) and after every table header.
        let mut insert_at = vec![0];
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with('[') {
                insert_at.push(i + 1);
            }
        }
        for at in insert_at {
            let mut mutated = lines.clone();
            let bogus = format!("{BOGUS} = 1");
            mutated.insert(at, &bogus);
            let mutated = mutated.join("\n");
            let errors: ConfigErrors = match config::parse(&mutated, &name) {
                Ok(_) => panic!("{name}: `{BOGUS}` at line {} was accepted", at + 1),
                Err(e) => e,
            };
            assert_eq!(errors.len(), 1, "{name}, line {}:\n{errors}", at + 1);
            let e = &errors.0[0];
            assert_eq!((e.line, e.column), (at + 1, 1), "{name}: {e}");
            assert!(e.key.ends_with(BOGUS), "{name}: {e}");
            assert!(
                e.message.starts_with(&format!("unknown key `{BOGUS}`")),
                "{name}: {e}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} tables mutated");
}

/// The real binary: `linkwatch check` on every broken fixture prints each
/// problem as `file:line:column: ...` (exactly the library's lines), exits 2
/// and never panics; on every valid example it exits 0.
#[test]
fn check_command_reports_every_fixture_and_exits_2() {
    let bin = env!("CARGO_BIN_EXE_linkwatch");
    let mut seen = 0;
    for entry in std::fs::read_dir("tests/config").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") {
            continue;
        }
        let out = std::process::Command::new(bin)
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        if name.starts_with("invalid-") {
            assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
            let errors = linkwatch::config::load(&path).unwrap_err();
            for e in errors.iter() {
                let line = e.to_string();
                assert!(
                    line.starts_with(&format!("{}:{}:{}: ", path.display(), e.line, e.column)),
                    "{line}"
                );
                assert!(
                    stderr.lines().any(|l| l == line),
                    "{name}: missing `{line}` in\n{stderr}"
                );
            }
            seen += 1;
        } else {
            assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        }
    }
    assert!(seen >= 20, "only {seen} invalid fixtures found");
}
