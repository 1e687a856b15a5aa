//! The configuration contract: every invalid fixture in `tests/config/` maps
//! to the exact problems `linkwatch check` prints for it, the shipped default
//! and the full example parse to the expected model, and an unknown key in any
//! table of any valid example is rejected at its line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use http::{HeaderName, HeaderValue};
use linkwatch::config::{
    self, BodyMatch, Config, ConfigError, ConfigErrors, Direction, DnsServer, DnsSpec,
    DnsTransport, DownWhen, Host, HttpMethod, HttpSpec, IcmpSpec, IpVersion, Kind, LogFormat,
    Nameserver, Plan, Schedule, TargetSpec, TcpSpec, ThroughputSpec,
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
        "invalid-degraded.toml",
        &[
            "3:14: key `defaults.degraded.loss_above`: `loss_above` (150%) must be in the range 0%..=100%",
            "4:1: key `defaults.degraded.throughput_bogus`: unknown key `throughput_bogus`; valid keys: window, min_samples, loss_above, rtt_p50_above, rtt_p95_above, throughput_below, dns_p95_above, http_p95_above, loaded_latency_increase_above",
            "9:17: key `group[0].degraded.rtt_p95_above`: `rtt_p95_above` (0ms) must be in the range 1ms..=10m",
            "10:17: key `group[0].degraded.dns_p95_above`: `dns_p95_above` is set for group `lan`, but none of its targets measures it (it is computed over dns targets)",
            "16:20: key `group[1].degraded.throughput_below`: `throughput_below` (50%) is a percentage of the plan's download rate, but no [plan] download is set; add [plan] download = \"100 Mbit/s\" or write an absolute rate such as \"5 Mbit/s\"",
            "17:15: key `group[1].degraded.min_samples`: `min_samples` (0) must be in the range 1..=1000000",
            "23:10: key `group[2].degraded.window`: group `intl`: `window` (10s) holds at most 2 probes of the icmp and tcp targets that feed `rtt_p50_above` (far every 5s), fewer than `min_samples` (20); lengthen the window, probe more often or lower `min_samples`",
            "25:14: key `group[2].degraded.loss_above`: `loss_above` (5) must be a percentage such as \"5%\"",
            "30:10: key `group[3].degraded.window`: group `slow`: `window` (30s) holds at most 6 probes of the icmp and tcp targets that feed `rtt_p95_above` (slowpoke every 5s), fewer than `min_samples` (20); lengthen the window, probe more often or lower `min_samples`",
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
        "invalid-history.toml",
        &[
            "3:14: key `history.hours_days`: `hours_days` (20) must be at least `minutes_days` (30): a day's hours are made from its minutes",
            "4:1: key `history.keep`: unknown key `keep`; valid keys: minutes_days, hours_days",
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
            "9:12: key `target[0].interval`: `interval` (5 parsecs) is not a valid duration (it contains a space; a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "10:11: key `target[0].timeout`: expected a duration string such as \"5s\", found integer `2`",
        ],
    ),
    (
        "invalid-duration-strict.toml",
        &[
            "5:12: key `defaults.interval`: `interval` (1h 30m) is not a valid duration (it contains a space; a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "15:11: key `target[0].timeout`: `timeout` (1 5s) is not a valid duration (it contains a space; a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "22:12: key `target[1].interval`: `interval` (1m\\t30s) is not a valid duration (it contains U+0009 (tab); a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "29:12: key `target[2].interval`: `interval` (1m\u{a0}30s) is not a valid duration (it contains U+00A0 (no-break space); a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "36:12: key `target[3].interval`: `interval` (1m\\u{2028}30s) is not a valid duration (it contains U+2028 (line separator); a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "43:11: key `target[4].timeout`: `timeout` (5s\\u{85}) is not a valid duration (it contains U+0085 (next line); a duration is written without spaces); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "50:12: key `target[5].interval`: `interval` (30s1m) is not a valid duration (`m` follows `s`; write each unit once, largest first, e.g. \"1h30m\"); write e.g. \"500ms\", \"5s\", \"1m30s\"",
            "51:11: key `target[5].timeout`: `timeout` (2) is not a valid duration (the number 2 has no unit (units: ns, us, ms, s, m, h, d, w)); write e.g. \"500ms\", \"5s\", \"1m30s\"",
        ],
    ),
    (
        "invalid-url-control.toml",
        &[
            "10:7: key `target[0].url`: `url` (https://exa\\r\\nmple.org/) is not a valid URL: it contains U+000D (carriage return) at character 12; a URL cannot hold control characters, invisible characters or whitespace (write a space in a path or query as %20)",
            "16:7: key `target[1].url`: `url` (http://example.org/\\r\\nX-Forged: 1) is not a valid URL: it contains U+000D (carriage return) at character 20; a URL cannot hold control characters, invisible characters or whitespace (write a space in a path or query as %20)",
            "22:7: key `target[2].url`: `url` (https://example.org/a\\u{1}b) is not a valid URL: it contains U+0001 at character 22; a URL cannot hold control characters, invisible characters or whitespace (write a space in a path or query as %20)",
            "29:10: key `target[3].server`: `server` (https://dns.example/dns-query\\n) is not a valid URL: it contains U+000A (line feed) at character 30; a URL cannot hold control characters, invisible characters or whitespace (write a space in a path or query as %20)",
            "36:7: key `target[4].url`: `url` ( https://speed.example/100MB.bin) is not a valid URL: it contains U+0020 (space) at character 1; a URL cannot hold control characters, invisible characters or whitespace (write a space in a path or query as %20)",
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
            "7:8: key `target[0].kind`: `kind` (ping) must be one of icmp, tcp, http, dns, throughput",
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
            "4:1: key `daemon.log_fromat`: unknown key `log_fromat`; valid keys: listen, data_dir, log_format, max_concurrency, allow_symlinks, max_traces_per_minute, trace_max_hops, trace_timeout, site, trusted_peers, tls_cert, tls_key, witness_every",
            "8:11: key `defaults.timeout`: `timeout` (10s) must be less than `interval` (5s)",
            "24:8: key `target[1].name`: duplicate target name `router` (first defined at line 18)",
            "27:8: key `target[1].host`: `host` (isp-gw..example) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": it has an empty label (two dots in a row, or a leading dot)",
            "28:8: key `target[1].port`: `port` (65536) must be in the range 1..=65535",
            "32:9: key `target[2].group`: `group` (wan) names no [[group]]; defined groups: lan, isp",
            "36:10: key `target[2].record`: `record` (AAAAA) is not a supported record type; supported: A, AAAA, CAA, CNAME, DNSKEY, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT",
            "37:1: key `target[2].url`: key `url` is not valid for kind `dns`; valid keys: name, group, kind, interval, timeout, fail_after, recover_after, server, query, record, transport, tls_name, expect_rcode, expect, min_answers, ca_file, compare_with, tie_break, tie_break_port, tie_break_ca_file",
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
        "invalid-throughput.toml",
        &[
            "9:13: key `target[0].max_bytes`: `max_bytes` (0) must be more than 0",
            "16:11: key `target[1].streams`: `streams` (0) must be in the range 1..=16",
            "17:13: key `target[1].direction`: `direction` (sideways) must be \"download\" or \"upload\"",
            "23:7: key `target[2].url`: `url` (ftp://speed.example/x) has scheme `ftp`; only http and https are supported",
            "24:11: key `target[2].streams`: `streams` (17) must be in the range 1..=16",
            "25:13: key `target[2].max_bytes`: `max_bytes` (\"25 mb\") is not a byte size (unknown unit `mb`; use one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB); write e.g. 25000000, \"25 MB\" or \"1 GiB\"",
            "33:13: key `target[3].min_bytes`: `min_bytes` (\"2 MB\") must not be more than `max_bytes` (1000000): every test would end as short_body",
            "34:21: key `target[3].max_bytes_per_day`: `max_bytes_per_day` (500000) is less than one test's `max_bytes` (1000000): no test could ever run",
            "41:12: key `target[4].interval`: `interval` (5s) of a throughput target must be at least 10s; each test spends up to `max_bytes` of data",
            "49:12: key `target[5].interval`: `interval` (15s) must be longer than a whole test can take: 2 × `timeout` (5s) + `max_duration` (10s) + the idle-latency baseline (2s) = 22s",
            "53:12: key `plan.download`: `download` (100 Mbps) is not a rate (unknown unit `Mbps`; use one of bit/s, kbit/s, Mbit/s, Gbit/s, B/s, kB/s, MB/s, GB/s); write e.g. \"100 Mbit/s\"",
            "54:10: key `plan.upload`: expected a rate such as \"100 Mbit/s\", found integer `20`",
        ],
    ),
    (
        "invalid-campaign.toml",
        &[
            "9:12: key `target[0].schedule`: `schedule` (hourly) must be \"interval\" (a test every `interval`) or \"campaign\" (10 tests a day by the BNetzA sampling rules)",
            "17:12: key `target[1].interval`: `interval` is not used with `schedule = \"campaign\"` (10 tests a day at planned times); remove it, or use `schedule = \"interval\"`",
            "26:21: key `target[2].max_bytes_per_day`: `max_bytes_per_day` (\"500 MB\") cannot hold a campaign's 10 tests a day of `max_bytes` (100.00 MB) each (1.00 GB): raise it or lower `max_bytes`",
            "33:12: key `target[3].max_bytes_per_day`: `max_bytes_per_day` (1000000000, the default) cannot hold a campaign's 10 tests a day of `max_bytes` (200.00 MB) each (2.00 GB): raise it or lower `max_bytes`",
            "42:16: key `target[4].max_duration`: a campaign's tests are 5m apart at least, so a whole test must take less: 2 × `timeout` (5s) + `max_duration` (5m) + the idle-latency baseline (2s) = 5m12s",
        ],
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
            "3:1: key `daemon.port`: unknown key `port`; valid keys: listen, data_dir, log_format, max_concurrency, allow_symlinks, max_traces_per_minute, trace_max_hops, trace_timeout, site, trusted_peers, tls_cert, tls_key, witness_every",
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
        &[
            "1:1: key `colour`: unknown key `colour`; valid keys: daemon, defaults, group, target, plan, notify, peer, history, interference",
        ],
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
    (
        "invalid-daemon-values.toml",
        &[
            "2:10: key `daemon.listen`: `listen` (224.0.0.1:9898) cannot be used: 224.0.0.1 is a multicast address, which no client can connect to",
            "3:12: key `daemon.data_dir`: `data_dir` (/var/lib/link\\0watch) cannot be used: it contains a NUL byte, which no path can hold",
            "4:8: key `daemon.site`: `site` (almaty home) must start with a letter or digit and use only A-Z a-z 0-9 . _ - (e.g. \"almaty-home\")",
        ],
    ),
    (
        "invalid-data-dir-relative.toml",
        &[
            "2:12: key `daemon.data_dir`: `data_dir` (linkwatch-data) cannot be used: it must be an absolute path; a relative one would depend on the directory linkwatch is started from",
        ],
    ),
    (
        "invalid-empty-group.toml",
        &[
            "5:8: key `group[1]`: group `isp` has no targets, so it could never be judged; add a [[target]] with `group = \"isp\"` or remove the group",
        ],
    ),
    (
        "invalid-escaped-values.toml",
        &[
            "2:14: key `daemon.log_format`: `log_format` (json\\u{85}fake.toml:1:1: forged) must be \"text\" or \"json\"",
            "5:8: key `group[0].name`: `name` (lan\\u{2028}x) must not contain control or invisible characters",
            "9:9: key `target[0].group`: `group` (lan) names no [[group]]; no groups are defined",
            "11:8: key `target[0].host`: `host` (a\\nfake.toml:1:1: forged) must be an IPv4 address, an IPv6 address, a DNS name or \"@gateway\": it is not a valid IPv6 address",
            "12:1: key `target[0].odd\\u{2029}key`: unknown key `odd\\u{2029}key`; valid keys for kind `icmp`: name, group, kind, interval, timeout, fail_after, recover_after, host, ip_version, payload_size",
            "16:9: key `target[1].group`: `group` (lan) names no [[group]]; no groups are defined",
            "18:9: key `target[1].query`: `query` (two\\nlines) is not a valid DNS name: label `two\\nlines` contains '\\n'",
            "20:10: key `target[1].record`: `record` (A\\u{202e}) is not a supported record type; supported: A, AAAA, CAA, CNAME, DNSKEY, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT",
        ],
    ),
    (
        "invalid-http-headers.toml",
        &[
            "9:57: key `target[0].headers.Content-Length`: header `Content-Length` (5) announces a body the probe never sends, so every request would wait for it until the timeout; remove it",
        ],
    ),
    (
        "invalid-listen-link-local.toml",
        &[
            "2:10: key `daemon.listen`: `listen` ([fe80::1]:9898) cannot be used: fe80::1 is a link-local address and needs its interface index, e.g. \"[fe80::1%2]:9898\"",
        ],
    ),
    (
        "invalid-not-utf8.toml",
        &[
            "3:8: the file is not valid UTF-8 (byte 0xff at offset 31); configuration files must be UTF-8",
        ],
    ),
    (
        "invalid-timeout-bounds.toml",
        &[
            "2:11: key `defaults.timeout`: `timeout` (1ns) is below the minimum of 10ms",
            "12:11: key `target[0].timeout`: `timeout` (5ms) is below the minimum of 10ms",
            "21:11: key `target[1].timeout`: `timeout` (2m) is above the maximum of 1m",
        ],
    ),
    (
        "invalid-url-values.toml",
        &[
            "8:7: key `target[0].url`: `url` (http://example.com:0/health) is not usable: it has port 0; use a port in 1..=65535 or none",
            "14:7: key `target[1].url`: `url` (https://my_host.example/) is not usable: its host `my_host.example` is not a valid DNS name: label `my_host` contains '_'; only letters, digits and `-` are allowed",
            "21:10: key `target[2].server`: `server` (https://dns.example:0/dns-query) is not usable: it has port 0; use a port in 1..=65535 or none",
            "29:10: key `target[3].server`: `server` (@gateway) with `transport = \"tls\"` needs `tls_name`, the name in the resolver's certificate",
        ],
    ),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
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
fn unreadable_file_is_one_error_at_its_start() {
    let errors = config::load(Path::new("tests/config/does-not-exist.toml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors.0[0];
    assert_eq!((e.line, e.column, e.key.as_str()), (1, 1, ""));
    assert!(
        e.to_string().starts_with(
            "tests/config/does-not-exist.toml:1:1: failed to read the configuration file: "
        ),
        "{e}"
    );
    // A directory is not a file either.
    let errors = config::load(Path::new("tests/config")).unwrap_err();
    assert!(
        errors
            .to_string()
            .starts_with("tests/config:1:1: failed to read"),
        "{errors}"
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
    assert!(
        matches!(&resolver.spec, TargetSpec::Dns(d) if d.server == DnsServer::Udp(Nameserver::System))
    );

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
    let dns: Vec<(DnsServer, DnsTransport, String, RecordType)> = internet
        .iter()
        .filter_map(|t| match &t.spec {
            TargetSpec::Dns(s) => Some((
                s.server.clone(),
                s.server.transport(),
                s.query.to_string(),
                s.record,
            )),
            _ => None,
        })
        .collect();
    let udp = |s: &str| {
        DnsServer::Udp(Nameserver::Addr {
            host: Host::Ip(ip(s)),
            port: 53,
        })
    };
    let example = || "example.com".to_owned();
    assert_eq!(
        dns,
        [
            (udp("1.1.1.1"), DnsTransport::Udp, example(), RecordType::A),
            (udp("8.8.8.8"), DnsTransport::Udp, example(), RecordType::A),
            (
                DnsServer::Https {
                    url: "https://cloudflare-dns.com/dns-query".parse().unwrap(),
                    ca_file: None
                },
                DnsTransport::Https,
                example(),
                RecordType::A
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
            trace: Default::default(),
            site: Some("almaty-home".into()),
            trusted_peers: config::Cidr::loopback(),
            ..config::DaemonConfig::default()
        },
        defaults: full_defaults(),
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
                TargetSpec::Icmp(IcmpSpec::new(Host::Gateway)),
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
                TargetSpec::Http(Box::new(HttpSpec {
                    url: "https://example.org/health?x=1".parse().unwrap(),
                    method: HttpMethod::Head,
                    headers: vec![
                        (
                            HeaderName::from_static("accept"),
                            HeaderValue::from_static("*/*"),
                        ),
                        (
                            HeaderName::from_static("user-agent"),
                            HeaderValue::from_static("linkwatch-test"),
                        ),
                    ],
                    expect_status: vec![200, 204],
                    body_match: Some(BodyMatch::Substring("ok".into())),
                    follow_redirects: 3,
                    ip_version: IpVersion::V6,
                    max_body: 4096,
                    ca_file: Some("/etc/ssl/extra.pem".into()),
                    tls_verify: false,
                    pin_spki: vec![],
                    expect_issuer: None,
                    sni_control: None,
                    blockpage: vec![],
                })),
            ),
            inherit(
                "portal-regex",
                "internet",
                TargetSpec::Http(Box::new(HttpSpec {
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
                    pin_spki: vec![],
                    expect_issuer: None,
                    sni_control: None,
                    blockpage: vec![],
                })),
            ),
            inherit(
                "dmarc",
                "internet",
                TargetSpec::Dns(Box::new(DnsSpec {
                    expect_rcode: ResponseCode::NXDomain,
                    record: RecordType::TXT,
                    expect: vec!["v=DMARC1; p=none".into()],
                    min_answers: 2,
                    ..DnsSpec::new(
                        DnsServer::Udp(Nameserver::Addr {
                            host: Host::Ip(ip("2001:db8::53")),
                            port: 5353,
                        }),
                        name("_dmarc.example.com"),
                    )
                })),
            ),
            inherit(
                "quad9-dot",
                "internet",
                TargetSpec::Dns(Box::new(DnsSpec {
                    record: RecordType::AAAA,
                    // Normalised so the probe can compare addresses as text.
                    expect: vec!["2620:fe::fe".into()],
                    ..DnsSpec::new(
                        DnsServer::Tls {
                            host: Host::Name("dns.quad9.net".into()),
                            port: 853,
                            tls_name: Some("dns.quad9.net".into()),
                            ca_file: Some("/etc/ssl/dot.pem".into()),
                        },
                        name("example.com"),
                    )
                })),
            ),
            inherit(
                "doh",
                "internet",
                TargetSpec::Dns(Box::new(DnsSpec::new(
                    DnsServer::Https {
                        url: "https://dns.example/dns-query".parse().unwrap(),
                        ca_file: None,
                    },
                    name("example.com"),
                ))),
            ),
            inherit(
                "system-tcp",
                "isp",
                TargetSpec::Dns(Box::new(DnsSpec::new(
                    DnsServer::Tcp(Nameserver::System),
                    name("example.com."),
                ))),
            ),
            config::Target {
                name: "intl-upload".into(),
                group: "internet".into(),
                interval: Duration::from_secs(3600),
                timeout: Duration::from_secs(3),
                fail_after: full_defaults().fail_after,
                recover_after: full_defaults().recover_after,
                spec: TargetSpec::Throughput(Box::new(ThroughputSpec {
                    url: "https://speed.example.net/upload".parse().unwrap(),
                    direction: Direction::Upload,
                    streams: 8,
                    max_bytes: 50_000_000,
                    max_duration: Duration::from_secs(15),
                    min_bytes: 2_000_000,
                    max_bytes_per_day: 2 << 30,
                    timeout: Duration::from_secs(3),
                    headers: vec![(
                        HeaderName::from_static("authorization"),
                        HeaderValue::from_static("Bearer x"),
                    )],
                    ip_version: IpVersion::V4,
                    ca_file: Some("/etc/ssl/speed.pem".into()),
                    tls_verify: false,
                    judge_outages: false,
                    congestion: None,
                    schedule: Default::default(),
                    control_url: None,
                    throttled_below: 0.5,
                })),
            },
            config::Target {
                name: "domestic-download".into(),
                group: "isp".into(),
                // Not the [defaults] 1s/500ms: a throughput test's own defaults.
                interval: Duration::from_secs(30 * 60),
                timeout: Duration::from_secs(5),
                fail_after: full_defaults().fail_after,
                recover_after: full_defaults().recover_after,
                spec: TargetSpec::Throughput(Box::new(ThroughputSpec::new(
                    "http://speed.isp.example/25MB.bin".parse().unwrap(),
                    Direction::Download,
                ))),
            },
        ],
        plan: Some(Plan {
            download_bps: Some(100e6),
            upload_bps: Some(100e6),
            ..Plan::default()
        }),
        notify: Vec::new(),
        peers: Vec::new(),
        history: config::HistoryRetention {
            minutes_days: 7,
            hours_days: 730,
        },
        interference: Default::default(),
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
        needs: needs.map(Into::into),
        down_when,
        ..config::Group::new(name)
    }
}

/// `[defaults]` of `valid-full.toml`.
fn full_defaults() -> config::Defaults {
    config::Defaults {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        fail_after: 4,
        recover_after: 1,
    }
}

/// A `valid-full.toml` target that takes every common value from its `[defaults]`.
fn inherit(name: &str, group: &str, spec: TargetSpec) -> config::Target {
    config::Target::new(name, group, &full_defaults(), spec)
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
            "mem:8:11: key `target[0].timeout`: `timeout` (0ms) is below the minimum of 10ms",
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

/// The commented examples shipped next to the default: `config/*.example.toml`.
fn shipped_examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".example.toml"))
        })
        .collect()
}

#[test]
fn throughput_example_compares_domestic_and_international_within_budget() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/throughput.example.toml");
    let c = config::load(&path).unwrap();
    let plan = c.plan.unwrap();
    assert_eq!(
        (plan.download_bps, plan.upload_bps),
        (Some(100e6), Some(20e6))
    );
    let tests: Vec<&config::Target> = c
        .targets
        .iter()
        .filter(|t| t.kind() == Kind::Throughput)
        .collect();
    let groups: Vec<&str> = tests.iter().map(|t| t.group.as_str()).collect();
    assert_eq!(groups, ["isp", "international"]);
    for t in tests {
        let TargetSpec::Throughput(s) = &t.spec else {
            unreachable!()
        };
        // A day of tests fits the budget: no evening without figures.
        let per_day = 86_400 / t.interval.as_secs();
        assert!(per_day * s.max_bytes <= s.max_bytes_per_day, "{}", t.name);
    }
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // `linkwatch check` accepts it.
    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The embedded default spends no data.
    let default = config::default_config().unwrap();
    assert!(default.targets.iter().all(|t| t.kind() != Kind::Throughput));
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
        .chain(shipped_examples())
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
        } else if name == "valid-full.toml" {
            // Valid as a file, but its CA files do not exist on this
            // machine: `check` opens them as the daemon would.
            assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                stderr.contains("failed to read CA file /etc/ssl/extra.pem"),
                "{name}: {stderr}"
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        }
    }
    assert!(seen >= 20, "only {seen} invalid fixtures found");
}

/// `check` reads every `ca_file` as the daemon's start would: a missing or
/// `schedule = "campaign"`: parsed as such (its `interval` unused, the
/// throughput default), and `linkwatch check` lists the campaign with
/// today's 10 planned times in the time zone it names.
#[test]
fn a_campaign_target_parses_and_check_lists_its_plan() {
    let text = "[[group]]\nname = \"g\"\n[[target]]\nname = \"dl\"\ngroup = \"g\"\n\
                kind = \"throughput\"\nurl = \"http://127.0.0.1:9/x\"\nschedule = \"campaign\"\n\
                [[target]]\nname = \"ul\"\ngroup = \"g\"\nkind = \"throughput\"\n\
                url = \"http://127.0.0.1:9/y\"\ndirection = \"upload\"\nschedule = \"interval\"\n";
    let cfg = config::parse(text, "campaign.toml").unwrap();
    let schedules: Vec<Schedule> = cfg
        .targets
        .iter()
        .map(|t| match &t.spec {
            TargetSpec::Throughput(s) => s.schedule,
            _ => panic!("not a throughput target"),
        })
        .collect();
    assert_eq!(schedules, [Schedule::Campaign, Schedule::Interval]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_linkwatch"))
        .args(["check", "--config"])
        .arg(&path)
        .env("TZ", "Europe/Berlin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line for the one campaign: {stdout}");
    let line = lines[1];
    assert!(
        line.starts_with("campaign `dl`: 10 download tests a day")
            && line.contains("Europe/Berlin"),
        "{line}"
    );
    let times = line
        .split_once("): ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(times, _)| times.split(' ').collect::<Vec<_>>())
        .unwrap();
    assert_eq!(times.len(), 10, "{line}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{line}");
    assert!(
        times[0] >= "09:00" && times[4] <= "11:00" && times[5] >= "19:00",
        "{line}"
    );
}

/// unparsable one fails the check, naming the target and the file; a real
/// PEM bundle passes.
#[test]
fn check_command_opens_every_ca_file() {
    let bin = env!("CARGO_BIN_EXE_linkwatch");
    let pki = crate::harness::servers::TestPki::new(crate::harness::servers::Leaf::Good);
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let run = |kind: &str, ca: &Path| {
        let target = match kind {
            "http" => "kind = \"http\"\nurl = \"https://127.0.0.1:9/\"",
            "dns" => {
                "kind = \"dns\"\nserver = \"127.0.0.1:853\"\ntransport = \"tls\"\ntls_name = \"localhost\"\nquery = \"example.test\""
            }
            _ => "kind = \"throughput\"\nurl = \"https://127.0.0.1:9/big\"\ninterval = \"30m\"",
        };
        let cfg = dir.path().join(format!("{kind}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[[group]]\nname = \"g\"\n[[target]]\nname = \"t-{kind}\"\ngroup = \"g\"\n{target}\nca_file = \"{}\"\n",
                ca.display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(bin)
            .args(["check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for kind in ["http", "dns", "throughput"] {
        let (code, stderr, stdout) = run(kind, &pki.ca_file);
        assert_eq!(code, Some(0), "{kind}: {stderr}");
        assert!(stdout.contains(": ok ("), "{kind}: {stdout}");
        let (code, stderr, stdout) = run(kind, &missing);
        assert_eq!(code, Some(2), "{kind}: {stderr}");
        assert!(!stdout.contains(": ok ("), "{kind}: {stdout}");
        assert!(
            stderr.contains(&format!("t-{kind}"))
                && stderr.contains(&format!("failed to read CA file {}", missing.display()))
                && stderr.contains("No such file"),
            "{kind}: {stderr}"
        );
        let (code, stderr, _) = run(kind, &garbage);
        assert_eq!(code, Some(2), "{kind}: {stderr}");
        assert!(
            stderr.contains(&garbage.display().to_string()),
            "{kind}: {stderr}"
        );
    }
}

/// A deterministic xorshift64* generator: the mutants are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values a mutant puts where a valid one was: empty, absurdly small or large,
/// negative, of the wrong type, unicode, control characters, line breaks and
/// invisible characters, and values that are valid somewhere else.
const ABSURD: &[&str] = &[
    "\"\"",
    "\" \"",
    "\"1ns\"",
    "\"0s\"",
    "\"9ms\"",
    "\"-5s\"",
    "\"1h\"",
    "\"25h\"",
    "\"99999999999999999999d\"",
    "\"5 parsecs\"",
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "0x7fffffff",
    "1e309",
    "nan",
    "-inf",
    "3.5",
    "true",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"a\\nfake.toml:1:1: forged\"",
    "\"x\\u2028y\"",
    "\"x\\u2029y\"",
    "\"x\\u0085y\"",
    "\"\\u202eevil\"",
    "\"\\ufeff\"",
    "\"\\u001b[31mred\"",
    "\"é\"",
    "\"日本語.example\"",
    "\"\"\"two\nlines\"\"\"",
    "'''raw\\nvalue'''",
    "\"\\\\\"",
    "\"@gateway\"",
    "\"@router\"",
    "\"::1\"",
    "\"[::1]:0\"",
    "\"127.0.0.1:0\"",
    "\"224.0.0.1:9898\"",
    "\"255.255.255.255:1\"",
    "\"[fe80::1]:9898\"",
    "\"/\"",
    "\"relative/dir\"",
    "\"/tmp/a\\u0000b\"",
    "\"http://127.0.0.1:0/\"",
    "\"http://a_b.example/\"",
    "\"https://x/\\u0001\"",
    "\"ftp://x/\"",
    "\"https://127.0.0.1/dns-query\"",
    "\"udp\"",
    "\"tcp\"",
    "\"tls\"",
    "\"https\"",
    "\"A\"",
    "\"TXT\"",
    "\"NXDOMAIN\"",
    "\"any\"",
    "\"all\"",
    "4",
    "6",
    "\"lan\"",
    "\"internet\"",
    "\"icmp\"",
    "\"http\"",
    "\"dns\"",
    "\"(\"",
];

/// One mutation of `text`: byte flips, inserted bytes, truncation, line
/// deletion, duplication and swaps, value replacement and key swaps.
fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(&b'=') && !lines[i].starts_with(b"["))
        .collect();
    let join = |lines: &[Vec<u8>]| lines.join(&b'\n');
    let mut owned: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
    match rng.below(9) {
        0 => {
            let mut out = text.to_vec();
            let at = rng.below(out.len());
            out[at] ^= 1 + rng.below(255) as u8;
            out
        }
        1 => {
            let mut out = text.to_vec();
            const INSERTED: &[&[u8]] = &[
                b"\0",
                b"\xff",
                b"\xc2\x85",
                b"\xe2\x80\xa8",
                b"\"",
                b"[",
                b"\n",
                b"\r",
                b"=",
                b"#",
            ];
            let inserted = *rng.pick(INSERTED);
            let at = rng.below(out.len() + 1);
            out.splice(at..at, inserted.iter().copied());
            out
        }
        2 => text[..rng.below(text.len() + 1)].to_vec(),
        3 => {
            owned.remove(rng.below(owned.len()));
            join(&owned)
        }
        4 => {
            let i = rng.below(owned.len());
            let line = owned[i].clone();
            owned.insert(i, line);
            join(&owned)
        }
        5 => {
            let (a, b) = (rng.below(owned.len()), rng.below(owned.len()));
            owned.swap(a, b);
            join(&owned)
        }
        6 | 7 if !assignments.is_empty() => {
            let i = *rng.pick(&assignments);
            let eq = owned[i].iter().position(|&b| b == b'=').unwrap_or(0);
            let mut line = owned[i][..=eq].to_vec();
            line.push(b' ');
            line.extend_from_slice(rng.pick(ABSURD).as_bytes());
            owned[i] = line;
            join(&owned)
        }
        _ if assignments.len() >= 2 => {
            let (a, b) = (*rng.pick(&assignments), *rng.pick(&assignments));
            let split = |l: &[u8]| {
                let eq = l.iter().position(|&c| c == b'=').unwrap_or(0);
                (l[..eq].to_vec(), l[eq..].to_vec())
            };
            let ((ka, va), (kb, vb)) = (split(&owned[a]), split(&owned[b]));
            owned[a] = [kb, va].concat();
            owned[b] = [ka, vb].concat();
            join(&owned)
        }
        _ => text.to_vec(),
    }
}

/// Mutants per valid example; with three examples, over 3 000 in all.
const MUTANTS_PER_EXAMPLE: usize = 1_100;

/// A throwaway CA certificate the mutants' `ca_file` keys point at, so that
/// an accepted mutant must also pass the probers' own start-time setup.
fn test_ca(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    path
}

/// What the daemon sets up from a configuration before it probes: it must
/// accept every configuration `check` accepts. A `ca_file` a mutant renamed
/// is a missing file (the host, not the value); those probers are skipped.
fn start_time_problems(c: &Config, ca: &Path) -> Option<String> {
    use linkwatch::probe::dns::DnsProber;
    use linkwatch::probe::http::HttpProber;
    for t in &c.targets {
        if t.timeout < Duration::from_millis(10)
            || t.timeout > Duration::from_secs(60)
            || t.timeout >= t.interval
        {
            return Some(format!("{}: timeout {:?}", t.name, t.timeout));
        }
        if !c.groups.iter().any(|g| g.name == t.group) {
            return Some(format!("{}: group {}", t.name, t.group));
        }
    }
    for g in &c.groups {
        if !c.targets.iter().any(|t| t.group == g.name) {
            return Some(format!("group {} has no targets", g.name));
        }
    }
    let dir = c.daemon.data_dir.to_string_lossy();
    if !dir.starts_with('/') || dir.contains('\0') {
        return Some(format!("data_dir {dir:?}"));
    }
    // What binding would refuse whatever the host (EINVAL).
    if let std::net::SocketAddr::V6(a) = c.daemon.listen
        && a.ip().is_unicast_link_local()
        && a.scope_id() == 0
    {
        return Some(format!("listen {a}"));
    }
    if c.daemon.listen.ip().is_multicast() {
        return Some(format!("listen {}", c.daemon.listen));
    }
    if let Err(e) = linkwatch::metrics::Metrics::new(c) {
        return Some(format!("metrics: {e}"));
    }
    let foreign_ca = c.targets.iter().any(|t| {
        let file = match &t.spec {
            TargetSpec::Http(h) => h.ca_file.as_deref(),
            TargetSpec::Dns(d) => match &d.server {
                DnsServer::Tls { ca_file, .. } | DnsServer::Https { ca_file, .. } => {
                    ca_file.as_deref()
                }
                _ => None,
            },
            _ => None,
        };
        file.is_some_and(|f| f != ca)
    });
    if !foreign_ca {
        if let Err(e) = HttpProber::new(c) {
            return Some(format!("http prober: {e:?}"));
        }
        if let Err(e) = DnsProber::new(c) {
            return Some(format!("dns prober: {e:?}"));
        }
    }
    None
}

/// Every rejected configuration's output: one line per problem, each
/// `<file>:<line>:<col>: `, with nothing unprintable in it.
fn format_problems(name: &str, text: &[u8], errors: &ConfigErrors) -> Option<String> {
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.split('\n').collect();
    if lines.len() != errors.len() {
        return Some(format!(
            "{} lines for {} problems",
            lines.len(),
            errors.len()
        ));
    }
    let last_line = text.split(|&b| b == b'\n').count();
    for (line, e) in lines.iter().zip(errors.iter()) {
        let prefix = format!("{}:{}:{}: ", config::escaped(name), e.line, e.column);
        if !line.starts_with(&prefix) || e.line == 0 || e.column == 0 || e.line > last_line {
            return Some(format!("bad position or prefix: {line}"));
        }
        if let Some(c) = line.chars().find(|&c| {
            c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}' | '\u{feff}')
        }) {
            return Some(format!("unescaped {c:?} in: {line}"));
        }
    }
    None
}

#[test]
#[allow(clippy::disallowed_types)] // wall time of a synchronous run, reported against its budget
fn mutated_configs_never_panic_and_report_one_positioned_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path());
    let ca_toml = format!("ca_file = \"{}\"", ca.display());
    let started = std::time::Instant::now();
    let (mut accepted, mut rejected) = (0, 0);
    let mut failures = Vec::new();
    let mut for_binary = Vec::new();
    for (e, (name, text)) in valid_examples().into_iter().enumerate() {
        let text: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("ca_file") {
                    ca_toml.clone()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (e as u64 + 1));
        for m in 0..MUTANTS_PER_EXAMPLE {
            let mut mutant = mutate(text.as_bytes(), &mut rng);
            if rng.below(4) == 0 {
                mutant = mutate(&mutant, &mut rng);
            }
            let result = std::panic::catch_unwind(|| config::parse_bytes(&mutant, &name));
            let problem = match result {
                Err(_) => Some("panicked".to_owned()),
                Ok(Ok(c)) => {
                    accepted += 1;
                    start_time_problems(&c, &ca)
                        .map(|p| format!("accepted, but the daemon would refuse it: {p}"))
                }
                Ok(Err(errors)) => {
                    rejected += 1;
                    format_problems(&name, &mutant, &errors)
                }
            };
            if let Some(p) = problem {
                failures.push(format!(
                    "{name} mutant {m}: {p}\n--- mutant ---\n{}\n---",
                    String::from_utf8_lossy(&mutant)
                ));
            }
            if m % 200 == 0 {
                for_binary.push(mutant);
            }
        }
    }
    let total = accepted + rejected;
    eprintln!(
        "{total} mutants: {accepted} accepted, {rejected} rejected, in {:?}",
        started.elapsed()
    );
    assert!(total >= 3_000, "only {total} mutants");
    assert!(
        rejected > total / 3 && accepted > total / 20,
        "{accepted} accepted, {rejected} rejected: the mutations are not probing both sides"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} mutants failed:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    check_mutants_with_the_binary(dir.path(), &for_binary);
}

/// A handful of the mutants through the real `linkwatch check`: exit 0 or 2,
/// never a panic, and on 2 exactly the library's lines and a count.
fn check_mutants_with_the_binary(dir: &Path, mutants: &[Vec<u8>]) {
    let bin = env!("CARGO_BIN_EXE_linkwatch");
    assert!(
        mutants.len() >= 10,
        "only {} mutants for the binary",
        mutants.len()
    );
    for (i, mutant) in mutants.iter().enumerate() {
        // One file name holds a newline: it must come out escaped too.
        let file = if i == 0 {
            dir.join("mutant\nforged:1:1: x.toml")
        } else {
            dir.join(format!("mutant-{i}.toml"))
        };
        std::fs::write(&file, mutant).unwrap();
        let out = std::process::Command::new(bin)
            .args(["check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        match config::load(&file) {
            Ok(_) => assert_eq!(out.status.code(), Some(0), "{stderr}"),
            Err(errors) => {
                assert_eq!(out.status.code(), Some(2), "{stderr}");
                let mut lines: Vec<&str> = stderr.lines().collect();
                let count = lines.pop().unwrap_or_default();
                let n = errors.len();
                let plural = if n == 1 { "" } else { "s" };
                assert_eq!(count, format!("{n} problem{plural} found"), "{stderr}");
                let want = errors.to_string();
                assert_eq!(lines, want.lines().collect::<Vec<_>>());
                let name = config::escaped(&file.display().to_string()).into_owned();
                for line in lines {
                    assert!(line.starts_with(&format!("{name}:")), "{line}");
                }
            }
        }
    }
}

/// Durations are `<number><unit>` parts written together: `1m30s`, `2s500ms`
/// and `1h30m` are read exactly, through the real `linkwatch check`.
#[test]
fn check_command_accepts_durations_written_together() {
    let bin = env!("CARGO_BIN_EXE_linkwatch");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("together.toml");
    std::fs::write(
        &path,
        r#"[defaults]
interval = "1m30s"
timeout = "2s500ms"

[[group]]
name = "lan"
trace_every = "1h30m"

[[target]]
name = "router"
group = "lan"
kind = "icmp"
host = "192.168.1.1"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let c = config::load(&path).unwrap();
    assert_eq!(c.defaults.interval, Duration::from_secs(90));
    assert_eq!(c.defaults.timeout, Duration::from_millis(2500));
    assert_eq!(c.groups[0].trace.every, Duration::from_secs(5400));
}

/// A runaway value (2 MB in one string) is echoed cut at 200 characters and
/// `…` wherever a message shows it: the value itself, its host or label, a
/// key, a header name. Before, one such problem was 2,001,085 characters.
#[test]
fn check_command_cuts_echoed_values_at_200_characters() {
    let bin = env!("CARGO_BIN_EXE_linkwatch");
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(2_000_000);
    let text = format!(
        r#"[defaults]
timeout = "{long}"

[[group]]
name = "lan"
needs = "{long}"

[[target]]
name = "web"
group = "lan"
kind = "http"
url = "https://{long}.example/"
headers = {{ "{long}\n" = "1" }}

[[target]]
name = "dns"
group = "lan"
kind = "dns"
transport = "https"
server = "https://dns.example/{long} "
query = "a.{long}"
record = "{long}"

[[target]]
name = "{long}"
group = "lan"
kind = "icmp"
host = "{long}"
{long} = 1
"#
    );
    let path = dir.path().join("long.toml");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    let mut lines: Vec<&str> = stderr.lines().collect();
    let count = lines.pop().unwrap();
    assert!(count.ends_with("problems found"), "{count}");
    assert!(lines.len() >= 10, "{} problems:\n{stderr}", lines.len());
    let prefix = format!("{}:", path.display());
    for line in &lines {
        assert!(line.starts_with(&prefix), "{line}");
        // A message may echo a value, its host and a key: 3 × 201 characters
        // plus the prose around them.
        assert!(
            line.chars().count() < 1_200,
            "{} characters: {}…",
            line.chars().count(),
            line.chars().take(300).collect::<String>()
        );
        assert!(!line.contains(&"x".repeat(201)), "{line}");
    }
    // Every problem here is about a long value: each shows it cut, with `…`,
    // the bare ones at exactly their first 200 characters.
    for line in &lines {
        assert!(line.contains('…'), "{line}");
    }
    let cut = format!("({}…)", "x".repeat(200));
    let bare = lines.iter().filter(|l| l.contains(&cut)).count();
    assert!(bare >= 5, "{bare} bare values cut at 200 in:\n{stderr}");
    assert!(stderr.len() < 20_000, "{} bytes of problems", stderr.len());
}
