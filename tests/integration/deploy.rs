//! Checks everything under `deploy/` with the real tools: promtool, amtool,
//! systemd-analyze, docker compose, and an end-to-end run of linkwatch scraped
//! by a real Prometheus that evaluates every dashboard and rule expression.

// Test helpers (and the shared `support` module) panic on unexpected I/O
// errors: that is a failed test with a message. They wait on real processes
// from plain threads, where tokio's pausable Instant has nothing to offer.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::daemon::{BIN, Daemon, require};
use linkwatch::metrics as m;
use serde_json::Value;

/// Contract metrics from DESIGN.md that the outage work exports; until the
/// daemon registers them, expressions built on them are allowed to be empty
/// in the end-to-end run (the test says so). Once they are exported, the
/// normal rule applies to them too.
const OUTAGE_METRICS: &[&str] = &[
    "linkwatch_target_up",
    "linkwatch_group_up",
    "linkwatch_outage_active",
    "linkwatch_outages_total",
    "linkwatch_downtime_seconds_total",
    "linkwatch_journal_writes_total",
    "linkwatch_journal_errors_total",
    "linkwatch_group_degraded",
    "linkwatch_degradations_total",
    "linkwatch_degraded_seconds_total",
    "linkwatch_group_loss_ratio",
    "linkwatch_group_rtt_seconds",
];

/// Expressions that are legitimately empty in a loopback-only run, by
/// `alert NAME`, `record NAME` or `panel TITLE/REFID`.
const MAY_BE_EMPTY: &[(&str, &str)] = &[
    (
        "alert LinkwatchDown",
        "linkwatch is up, so up == 0 selects nothing",
    ),
    (
        "alert LinkwatchAbsent",
        "linkwatch is scraped, so absent() is empty",
    ),
    ("alert LinkwatchJournalErrors", "the journal writes fine"),
    (
        "alert LinkwatchFallingBehind",
        "a handful of loopback targets never fall behind",
    ),
    (
        "alert LinkwatchDegraded",
        "the run sets no [group.degraded] threshold, so no group is degraded",
    ),
    (
        "alert LinkwatchHighLatency",
        "loopback round trips are far below the limits",
    ),
    (
        "alert LinkwatchTLSCertificateExpiring",
        "no https target in the loopback run",
    ),
    (
        "alert LinkwatchSiteSilent",
        "the loopback run configures no [[peer]]",
    ),
    (
        "alert LinkwatchInterference",
        "no probe of the loopback run shows a sign of interference",
    ),
    (
        "panel Certificate expiry/A",
        "no https target in the loopback run",
    ),
    // Only one cause occurs: the group "broken" (a closed port) is down. The
    // named causes apply to the real lan/isp/internet/dns groups; lan can be
    // down too where ICMP is not permitted, so LinkwatchOutage (other causes)
    // is allowed to be empty as well.
    ("alert LinkwatchOutageLAN", "lan is normally up"),
    (
        "alert LinkwatchOutageISP",
        "no isp group in the loopback run",
    ),
    (
        "alert LinkwatchOutageInternet",
        "internet has a working target",
    ),
    (
        "alert LinkwatchOutageDNS",
        "no dns group in the loopback run",
    ),
    (
        "alert LinkwatchOutageInterference",
        "no probe of the loopback run shows a sign of interference",
    ),
    (
        "alert LinkwatchOutage",
        "group broken may be blamed on lan instead",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(p: &str) -> PathBuf {
    root().join("deploy").join(p)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("failed to read {}: {e}", p.display()))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a command; returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn promtool_checks_config_rules_and_rule_unit_tests() {
    if !require(have("promtool"), "promtool (Debian package prometheus)") {
        return;
    }
    let dir = deploy("prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "rules.yml"],
        &["test", "rules", "rules.test.yml"],
    ] {
        let (ok, out) = run(Command::new("promtool").args(args).current_dir(&dir));
        assert!(ok, "promtool {args:?} failed:\n{out}");
        assert!(out.contains("SUCCESS"), "promtool {args:?}:\n{out}");
    }
}

#[test]
fn rule_unit_tests_cover_every_alert() {
    let rules = read(&deploy("prometheus/rules.yml"));
    let tests = read(&deploy("prometheus/rules.test.yml"));
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(
        alerts.len() >= 12,
        "expected the full alert set: {alerts:?}"
    );
    for a in &alerts {
        // Each alert is asserted to fire (exp_alerts with labels) somewhere,
        // and to stay silent somewhere (an empty exp_alerts).
        let fires = tests
            .split("- eval_time:")
            .any(|case| case.contains(&format!("alertname: {a}\n")) && case.contains("exp_labels"));
        let silent = tests.split("- eval_time:").any(|case| {
            case.contains(&format!("alertname: {a}\n")) && case.contains("exp_alerts: []")
        });
        assert!(fires, "no promtool test shows {a} firing");
        assert!(silent, "no promtool test shows {a} staying silent");
        let rule = rules
            .split("- alert: ")
            .find(|r| r.starts_with(&format!("{a}\n")));
        let rule = rule.unwrap();
        assert!(
            rule.contains("summary:") && rule.contains("description:"),
            "{a} lacks summary/description"
        );
    }
}

#[test]
fn amtool_accepts_alertmanager_config() {
    if !require(
        have("amtool"),
        "amtool (Debian package prometheus-alertmanager)",
    ) {
        return;
    }
    let (ok, out) = run(Command::new("amtool")
        .args(["check-config"])
        .arg(deploy("alertmanager/alertmanager.yml")));
    assert!(ok, "amtool check-config failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let unit = read(&deploy("systemd/linkwatch.service"));
    for line in [
        "ExecStart=/usr/local/bin/linkwatch run --config /etc/linkwatch/config.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=linkwatch",
        "AmbientCapabilities=CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_RAW",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "SystemCallFilter=@system-service",
        "Type=notify",
        "WatchdogSec=30s",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks `{line}`:\n{unit}"
        );
    }
    if !require(
        have("systemd-analyze"),
        "systemd-analyze (Debian package systemd)",
    ) {
        return;
    }
    // verify insists that ExecStart's binary exists: point it at the built one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linkwatch.service");
    let text = unit.replace(
        "ExecStart=/usr/local/bin/linkwatch ",
        &format!("ExecStart={BIN} "),
    );
    std::fs::write(&path, text).unwrap();
    let (ok, out) = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    assert!(ok, "systemd-analyze verify failed:\n{out}");
    // Unknown keys and bad values are only warnings: fail on any about our unit.
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("linkwatch.service"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify warned:\n{out}");
}

#[test]
fn agent_config_unit_and_compose_service_are_valid() {
    let agent = read(&deploy("agent/agent.yml"));
    for want in [
        "external_labels:",
        "site:",
        "remote_write:",
        "/api/v1/write",
        "\"127.0.0.1:9898\"",
    ] {
        assert!(agent.contains(want), "agent.yml lacks {want}");
    }
    let unit = read(&deploy("agent/linkwatch-agent.service"));
    for want in [
        "--enable-feature=agent",
        "--storage.agent.path=/var/lib/linkwatch-agent",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=linkwatch-agent",
    ] {
        assert!(unit.contains(want), "linkwatch-agent.service lacks {want}");
    }
    let compose = read(&deploy("agent/compose.yml"));
    for want in [
        "network_mode: host",
        "--agent",
        "./agent.yml:/etc/prometheus/agent.yml:ro",
    ] {
        assert!(compose.contains(want), "agent/compose.yml lacks {want}");
    }
    if require(have("promtool"), "promtool (Debian package prometheus)") {
        let (ok, out) = run(Command::new("promtool")
            .args(["check", "config", "--agent", "agent.yml"])
            .current_dir(deploy("agent")));
        assert!(
            ok && out.contains("SUCCESS"),
            "promtool check config --agent:\n{out}"
        );
    }
    if require(
        have("systemd-analyze"),
        "systemd-analyze (Debian package systemd)",
    ) {
        let (ok, out) = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(deploy("agent/linkwatch-agent.service")));
        let ours: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("linkwatch-agent.service"))
            .collect();
        assert!(ok && ours.is_empty(), "systemd-analyze verify:\n{out}");
    }
    if have("docker-compose") {
        let (ok, out) = run(Command::new("docker-compose")
            .arg("-f")
            .arg(deploy("agent/compose.yml"))
            .args(["config", "-q"]));
        assert!(ok, "docker-compose config (agent):\n{out}");
    }
}

/// All panels, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter());
        }
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read(&deploy("grafana/dashboards/linkwatch.json")))
        .expect("dashboard is not valid JSON")
}

/// (id like `panel TITLE/REFID`, expression) for every dashboard query.
fn dashboard_exprs(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!(
                    "panel {}/{}",
                    p["title"].as_str().unwrap(),
                    t["refId"].as_str().unwrap()
                ),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Every object under `v` that is a datasource reference, with its path.
fn datasource_refs<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{path}.{k}");
                if k == "datasource" {
                    out.push((p.clone(), child));
                }
                datasource_refs(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                datasource_refs(child, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboard_is_valid_and_uses_the_datasource_variable() {
    let dash = dashboard();
    let all = panels(&dash);
    let mut ids = HashSet::new();
    for p in &all {
        let id = p["id"].as_u64().expect("panel without numeric id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title}");
        assert_eq!(p["datasource"]["type"], "prometheus", "panel {title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title}");
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    // No hard-coded datasource anywhere (variables included).
    let mut refs = Vec::new();
    datasource_refs(&dash, String::new(), &mut refs);
    for (path, r) in &refs {
        assert_eq!(r["uid"], "${datasource}", "hard-coded datasource at {path}");
    }
    let vars: BTreeMap<&str, &Value> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for v in ["site", "group", "target"] {
        assert_eq!(vars[v]["type"], "query", "{v}");
        assert_eq!(vars[v]["allValue"], ".*", "{v}");
    }
    // The panels the issue asks for.
    let titles: Vec<&str> = all.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Group state",
        "Outage timeline by cause",
        "Group availability in range",
        "RTT percentiles (icmp, tcp)",
        "RTT heatmap (icmp, tcp)",
        "Probe loss ratio",
        "HTTP phases",
        "DNS query time per resolver",
        "Download throughput",
        "Certificate expiry",
        "Throughput tests and the plan",
        "Throughput against the plan",
    ] {
        assert!(titles.contains(&want), "no panel {want:?}: {titles:?}");
    }
    // Every query is filtered by the site variable, so several vantage points never mix.
    // With "All" (or several) sites selected, no aggregation merges two
    // sites' series (their targets and groups often share names, and behind a
    // Prometheus agent their instance is the same 127.0.0.1:9898).
    for (id, expr) in dashboard_exprs(&dash) {
        assert!(expr.contains("$site"), "{id} ignores $site: {expr}");
        for clause in expr.split("by (").skip(1) {
            let labels = clause.split(')').next().unwrap_or("");
            assert!(
                labels.split(',').any(|l| l.trim() == "site"),
                "{id} aggregates away the site (by ({labels})): {expr}"
            );
        }
    }
    for p in panels(&dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(legend) = t["legendFormat"].as_str() {
                assert!(
                    legend.contains("{{site}}") || !legend.contains("{{"),
                    "panel {:?}: legend {legend:?} does not name the site",
                    p["title"]
                );
            }
        }
    }
}

/// Metric names the daemon exports (or will, for [`OUTAGE_METRICS`]).
fn known_metrics() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = [
        m::PROBE_SUCCESS,
        m::PROBES_TOTAL,
        m::PROBE_PHASE_SECONDS,
        m::PROBE_ERRORS_TOTAL,
        m::BUILD_INFO,
        m::ICMP_SOCKET_MODE,
        m::TLS_CERT_EXPIRY,
        m::HTTP_DOWNLOAD_BPS,
        m::HTTP_STATUS_CODE,
        m::DNS_ANSWERS,
        m::PROBES_SKIPPED_TOTAL,
        m::PROBES_IN_FLIGHT,
        m::PROBE_CONCURRENCY_LIMIT,
        m::TARGETS,
        m::THROUGHPUT_BPS,
        m::PLAN_BPS,
        m::PEER_UP,
        m::PEER_LAST_SEEN,
        m::PEER_REQUESTS_TOTAL,
        m::PEER_CALLS_TOTAL,
        m::INTERFERENCE_TOTAL,
        m::INTERFERENCE_EXTRA_TOTAL,
    ]
    .iter()
    .chain(OUTAGE_METRICS)
    .map(|s| s.to_string())
    .collect();
    for h in [m::PROBE_DURATION_SECONDS, m::SCHEDULE_LATENESS_SECONDS] {
        for suffix in ["_bucket", "_sum", "_count"] {
            known.insert(format!("{h}{suffix}"));
        }
    }
    known
}

/// `linkwatch_*` metric names and `level:metric:op` recorded names in `expr`.
fn referenced_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").unwrap();
    re.find_iter(expr)
        .map(|m| m.as_str().to_string())
        .filter(|n| n.starts_with("linkwatch_") || n.contains(":linkwatch_"))
        .collect()
}

#[test]
fn rules_and_dashboard_use_only_exported_metric_names() {
    let known = known_metrics();
    let rules = read(&deploy("prometheus/rules.yml"));
    let recorded: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(str::to_string)
        .collect();
    let mut exprs: Vec<(String, String)> = dashboard_exprs(&dashboard());
    exprs.push(("rules.yml".into(), rules.clone()));
    for v in dashboard()["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    for (id, expr) in exprs {
        for name in referenced_names(&expr) {
            assert!(
                known.contains(&name) || recorded.contains(&name),
                "{id} uses {name}, which linkwatch does not export and no rule records"
            );
        }
    }
}

/// The throughput and plan metrics are in bytes per second (Prometheus's
/// base unit); a panel that shows them with Grafana's bit unit (`bps`) must
/// multiply by 8, or every speed would read 8 times too low.
#[test]
fn dashboard_shows_the_byte_throughput_metrics_in_bits() {
    let dash = dashboard();
    let mut seen = 0;
    for p in panels(&dash) {
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let names = referenced_names(expr);
            if ![m::THROUGHPUT_BPS, m::THROUGHPUT_TESTS_BPS, m::PLAN_BPS]
                .iter()
                .any(|n| names.contains(*n))
            {
                continue;
            }
            seen += 1;
            match unit {
                "bps" => assert!(
                    expr.trim_start().starts_with("8 * "),
                    "panel {:?}: bytes per second shown as bps without ×8: {expr}",
                    p["title"]
                ),
                // A ratio of two byte rates has no unit to convert.
                "percent" | "percentunit" => {}
                other => panic!("panel {:?}: unit {other:?} for a byte rate", p["title"]),
            }
        }
    }
    assert!(seen >= 3, "the throughput panels are gone ({seen} queries)");
}

#[test]
fn compose_file_is_valid_and_mounts_existing_files() {
    let compose = read(&deploy("compose.yml"));
    for line in compose.lines() {
        let l = line.trim().trim_start_matches("- ");
        if let Some(src) = l.strip_prefix("./") {
            let src = src.split(':').next().unwrap();
            assert!(deploy(src).exists(), "compose mounts missing ./{src}");
        }
        if let Some(src) = l.strip_prefix("../") {
            let src = src.split(':').next().unwrap();
            assert!(root().join(src).exists(), "compose mounts missing ../{src}");
        }
    }
    // linkwatch measures the host's real link: its gateway, resolver and
    // source address (not Docker's bridge and embedded DNS).
    let linkwatch = compose
        .split("\n  linkwatch:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("compose.yml has a linkwatch service");
    assert!(
        linkwatch.contains("network_mode: host"),
        "linkwatch must use the host network"
    );
    assert!(
        !compose.contains("grafana/grafana-oss"),
        "grafana-oss is no longer published after 12.4"
    );
    for want in [
        "dockerfile: deploy/docker/Dockerfile",
        "prom/prometheus:",
        "prom/alertmanager:",
        "grafana/grafana",
    ] {
        assert!(compose.contains(want), "compose.yml lacks {want}");
    }
    // `docker compose` (v2 plugin) or `docker-compose` (Debian's v1) validate
    // the file against the Compose schema without a Docker engine.
    let v2 = have("docker")
        && Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success());
    let mut cmd = if v2 {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else if have("docker-compose") {
        Command::new("docker-compose")
    } else {
        require(
            false,
            "docker compose or docker-compose (Debian package docker-compose)",
        );
        return;
    };
    let (ok, out) = run(cmd
        .arg("-f")
        .arg(deploy("compose.yml"))
        .args(["config", "-q"]));
    assert!(ok, "compose config failed:\n{out}");
}

/// `COPY` lines of a Dockerfile that read the build context (not
/// `--from=` another stage): (the stage's index, sources, destination).
fn context_copies(dockerfile: &str) -> Vec<(usize, Vec<String>, String)> {
    let mut stage = 0usize;
    let mut out = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with("FROM ") {
            stage += 1;
        }
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        assert!(
            !rest.ends_with('\\') && !rest.contains('*') && !rest.contains('['),
            "COPY form this test does not understand (one line, no globs, no JSON): {line}"
        );
        if rest.contains("--from") {
            continue;
        }
        let parts: Vec<&str> = rest
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        assert!(parts.len() >= 2, "COPY without a destination: {line}");
        let (dest, srcs) = parts.split_last().unwrap();
        out.push((
            stage,
            srcs.iter().map(|s| s.to_string()).collect(),
            dest.to_string(),
        ));
    }
    out
}

/// The `.dockerignore` rules, in order: (is an exception `!`, pattern).
/// Supports what the file uses: `*` (everything) and plain paths (a path
/// covers everything beneath it); anything else fails the test, so the
/// emulation never silently differs from Docker's.
fn dockerignore_rules(text: &str) -> Vec<(bool, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (except, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, l),
            };
            let pat = pat.trim_start_matches("./").trim_end_matches('/');
            assert!(
                pat == "*" || !pat.contains(['*', '?', '[']),
                "dockerignore pattern this test does not understand: {l}"
            );
            (except, pat.to_string())
        })
        .collect()
}

/// Whether Docker sends `rel` (a path relative to the context root) with the
/// build context: the last matching rule decides.
fn in_context(rules: &[(bool, String)], rel: &str) -> bool {
    let mut included = true;
    for (except, pat) in rules {
        let matches = pat == "*"
            || rel == pat
            || rel.starts_with(&format!("{pat}/"))
            // An exception for a file inside a directory keeps that directory.
            || (*except && pat.starts_with(&format!("{rel}/")));
        if matches {
            included = *except;
        }
    }
    included
}

/// Copies `src` (relative to the repository root) to `dst`, leaving out what
/// the context excludes.
fn copy_context_path(rules: &[(bool, String)], rel: &str, dst: &Path) {
    let from = root().join(rel);
    if !in_context(rules, rel) {
        return;
    }
    if from.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            copy_context_path(rules, &format!("{rel}/{name}"), &dst.join(&name));
        }
    } else {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&from, dst)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), dst.display()));
    }
}

#[test]
fn container_image_files_are_consistent() {
    let dockerfile = read(&deploy("docker/Dockerfile"));
    for want in [
        "FROM rust:1-bookworm AS build",
        "WORKDIR /src",
        "cargo build --release --locked",
        "FROM debian:bookworm-slim",
        "setcap cap_net_raw+ep /usr/local/bin/linkwatch",
        "USER linkwatch:linkwatch",
        "EXPOSE 9898",
        "VOLUME [\"/var/lib/linkwatch\"]",
        "HEALTHCHECK",
        "linkwatch\", \"healthcheck\"",
    ] {
        assert!(dockerfile.contains(want), "Dockerfile lacks {want}");
    }
    // Every path the build copies from the context exists and is let through
    // by the Dockerfile's .dockerignore.
    let rules = dockerignore_rules(&read(&deploy("docker/Dockerfile.dockerignore")));
    let copies = context_copies(&dockerfile);
    assert!(!copies.is_empty(), "no COPY from the build context?");
    for (_, srcs, _) in &copies {
        for src in srcs {
            let src = src.trim_start_matches("./").trim_end_matches('/');
            assert!(root().join(src).exists(), "Dockerfile copies missing {src}");
            assert!(
                in_context(&rules, src),
                "{src} is excluded by Dockerfile.dockerignore"
            );
        }
    }
}

/// The image builds from the context it declares: exactly what the build
/// stage copies (minus `.dockerignore`) is laid out in a temporary directory
/// as it is under the stage's `WORKDIR /src`, and cargo must accept the
/// manifest there and check the release build (`cargo check --locked
/// --release`, offline: the dependencies come from the local registry cache,
/// as the image's build would fetch them). A manifest that names a file the
/// context lacks (a `[[bench]]`, an `[[example]]`, a `build.rs`, a readme)
/// fails here, as it would fail `docker build`.
#[test]
fn container_build_context_builds() {
    let dockerfile = read(&deploy("docker/Dockerfile"));
    let rules = dockerignore_rules(&read(&deploy("docker/Dockerfile.dockerignore")));
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("src-root");
    std::fs::create_dir_all(&ctx).unwrap();
    for (stage, srcs, dest) in context_copies(&dockerfile) {
        // The build stage (the first) works in /src; later stages copy
        // runtime files to absolute paths, which the build does not see.
        if stage != 1 || dest.starts_with('/') {
            continue;
        }
        let dest_is_dir = dest.ends_with('/') || dest == ".";
        let dest = dest.trim_start_matches("./").trim_end_matches('/');
        let dest_dir = ctx.join(dest);
        for src in &srcs {
            let rel = src.trim_start_matches("./").trim_end_matches('/');
            let from = root().join(rel);
            // Docker: a directory source copies its contents into dest; a file
            // source goes into dest as a directory when there are several
            // sources or dest ends with '/', else it becomes dest.
            let target = if from.is_dir() {
                dest_dir.clone()
            } else if srcs.len() > 1 || dest_is_dir || dest.is_empty() || dest_dir.is_dir() {
                dest_dir.join(from.file_name().unwrap())
            } else {
                dest_dir.clone()
            };
            if from.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                for e in std::fs::read_dir(&from).unwrap() {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    copy_context_path(&rules, &format!("{rel}/{name}"), &target.join(&name));
                }
            } else {
                copy_context_path(&rules, rel, &target);
            }
        }
    }
    assert!(
        ctx.join("Cargo.toml").is_file(),
        "the build stage does not copy Cargo.toml"
    );
    // Own target directory (nothing reused from the workspace's, nothing
    // clobbered); kept between runs so that only linkwatch itself is checked
    // again.
    let target_dir = root().join("target").join("docker-context-check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (ok, out) = run(Command::new(cargo)
        .args(["check", "--locked", "--offline", "--release"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .current_dir(&ctx));
    assert!(
        ok,
        "cargo check --locked --release fails in the Dockerfile's build context \
         (copy what Cargo.toml references):\n{out}"
    );
}

#[test]
fn container_config_is_the_default_listening_on_all_addresses() {
    let docker = read(&deploy("docker/config.toml"));
    let default = read(&root().join("config/default.toml"));
    let expected = default.replace(
        "\nlisten = \"127.0.0.1:9898\"",
        "\nlisten = \"0.0.0.0:9898\"",
    );
    assert!(
        expected.contains("listen = \"0.0.0.0:9898\"") && docker.ends_with(&expected),
        "deploy/docker/config.toml drifted from config/default.toml: regenerate it with the \
         command in its header"
    );
    assert!(docker.contains("\ndata_dir = \"/var/lib/linkwatch\""));
    let (ok, out) = run(Command::new(BIN)
        .args(["check", "--config"])
        .arg(deploy("docker/config.toml")));
    assert!(
        ok,
        "linkwatch check rejects deploy/docker/config.toml:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// End to end: linkwatch + a real Prometheus on loopback.

/// A GET that reports failure instead of panicking (for polling).
fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server in a temp dir, killed on drop (log printed on failure).
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        std::fs::copy(deploy("prometheus/rules.yml"), dir.path().join("rules.yml")).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("failed to start prometheus");
        let p = Prometheus { child, addr, dir };
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = try_get(p.addr, "/-/ready") {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "prometheus not ready within 30 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) = try_get(self.addr, path).unwrap();
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: HTTP {status}, not JSON ({e}): {body}"));
        v
    }

    /// Runs an instant query; returns the API's whole answer.
    fn query(&self, expr: &str) -> Value {
        let q: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        self.api(&format!("/api/v1/query?query={q}"))
    }

    /// The first sample's value of an instant query, if any.
    fn scalar(&self, expr: &str) -> Option<f64> {
        let v = self.query(expr);
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- prometheus log ----\n{}", self.log());
        }
    }
}

/// Serves a fixed 64 KiB 200 response to every connection, on its own thread.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let body = vec![b'x'; 64 * 1024];
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

fn e2e_linkwatch_config(tcp_open: u16, tcp_closed: u16, http: u16, dns_closed: u16) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"

[defaults]
interval = "500ms"
timeout = "400ms"
fail_after = 2
recover_after = 1

[[group]]
name = "lan"

[[group]]
name = "internet"
needs = "lan"

[[group]]
name = "broken"
needs = "lan"

[[target]]
name = "loop-icmp"
group = "lan"
kind = "icmp"
host = "127.0.0.1"

[[target]]
name = "loop-tcp"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = {tcp_open}

[[target]]
name = "loop-http"
group = "internet"
kind = "http"
url = "http://127.0.0.1:{http}/"

[[target]]
name = "closed-dns"
group = "internet"
kind = "dns"
server = "127.0.0.1:{dns_closed}"
query = "example.com"
record = "A"

[[target]]
name = "closed-tcp"
group = "broken"
kind = "tcp"
host = "127.0.0.1"
port = {tcp_closed}

# The "against the plan" panels divide the last test by [plan].
[plan]
download = "100 Mbit/s"

[[target]]
name = "loop-throughput"
group = "internet"
kind = "throughput"
url = "http://127.0.0.1:{http}/64k.bin"
streams = 1
interval = "10s"
timeout = "1s"
max_bytes = "1 MB"
min_bytes = "32 kB"
max_duration = "2s"
"#
    )
}

/// deploy/prometheus/prometheus.yml with every address replaced by a loopback
/// one and 1 s intervals, so the shipped scrape job, labels and rule_files are
/// what the test runs.
fn e2e_prometheus_config(linkwatch: SocketAddr, alertmanager: SocketAddr) -> String {
    let mut text = read(&deploy("prometheus/prometheus.yml"));
    for (from, to) in [
        ("\"127.0.0.1:9898\"", format!("\"{linkwatch}\"")),
        ("\"127.0.0.1:9093\"", format!("\"{alertmanager}\"")),
        ("scrape_interval: 15s", "scrape_interval: 1s".to_string()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_string(),
        ),
        ("scrape_timeout: 10s", "scrape_timeout: 1s".to_string()),
    ] {
        assert!(
            text.contains(from),
            "prometheus.yml no longer contains {from}"
        );
        text = text.replace(from, &to);
    }
    text
}

fn substitute(expr: &str) -> String {
    // What Grafana sends with "All" selected: the variables' allValue.
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$__range", "10m")
        .replace("$site", ".*")
        .replace("$group", ".*")
        .replace("$target", ".*")
}

#[test]
fn prometheus_evaluates_every_dashboard_and_rule_expression() {
    if !require(
        Path::new("/usr/bin/prometheus").exists() || have("prometheus"),
        "prometheus server (Debian package prometheus)",
    ) {
        return;
    }
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in open.incoming() {});
    let dns_closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = Daemon::start(&e2e_linkwatch_config(
        open_port,
        free_port(),
        http_server(),
        dns_closed,
    ));
    let nowhere: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prom = Prometheus::start(&e2e_prometheus_config(daemon.addr, nowhere));

    // Let it scrape (1 s) and evaluate the rules (1 s) for a while.
    let start = Instant::now();
    loop {
        let scrapes = prom
            .scalar(r#"count_over_time(up{job="linkwatch"}[1m])"#)
            .unwrap_or(0.0);
        let up = prom.scalar(r#"min(up{job="linkwatch"})"#).unwrap_or(0.0);
        // The throughput target's first test falls somewhere in its 10 s interval.
        let tests = prom
            .scalar(&format!("count({})", m::THROUGHPUT_BPS))
            .unwrap_or(0.0);
        if scrapes >= 8.0 && up == 1.0 && tests >= 1.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "prometheus did not scrape linkwatch 8 times and a throughput test within 60 s (scrapes {scrapes}, up {up}, tests {tests})\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Every rule loaded and evaluated without error by Prometheus itself.
    let rules = prom.api("/api/v1/rules");
    let mut exprs: Vec<(String, String)> = Vec::new();
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            let query = r["query"].as_str().unwrap();
            assert_eq!(r["health"], "ok", "rule {name}: {}", r["lastError"]);
            let kind = if r["type"] == "recording" {
                recorded.insert(name.to_string(), query.to_string());
                "record"
            } else {
                "alert"
            };
            exprs.push((format!("{kind} {name}"), query.to_string()));
        }
    }
    let in_file = read(&deploy("prometheus/rules.yml"))
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .count();
    assert_eq!(
        exprs.len(),
        in_file,
        "Prometheus loaded a different number of rules"
    );

    let dash = dashboard();
    exprs.extend(
        dashboard_exprs(&dash)
            .into_iter()
            .map(|(id, e)| (id, substitute(&e))),
    );

    let names: BTreeSet<String> = prom.api("/api/v1/label/__name__/values")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // Raw metrics an expression depends on, through recording rules.
    let depends = |expr: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![expr.to_string()];
        while let Some(e) = todo.pop() {
            for n in referenced_names(&e) {
                match recorded.get(&n) {
                    Some(q) => todo.push(q.clone()),
                    None => {
                        out.insert(n);
                    }
                }
            }
        }
        out
    };

    let mut failures = Vec::new();
    let mut non_empty = 0;
    let mut pending_empty = 0;
    for (id, expr) in &exprs {
        let v = prom.query(expr);
        if v["status"] != "success" {
            failures.push(format!("{id}: {} ({expr})", v["error"]));
            continue;
        }
        let empty = match v["data"]["resultType"].as_str() {
            Some("vector" | "matrix") => v["data"]["result"].as_array().unwrap().is_empty(),
            _ => false,
        };
        if !empty {
            non_empty += 1;
            continue;
        }
        if MAY_BE_EMPTY.iter().any(|(k, _)| k == id) {
            continue;
        }
        let pending: Vec<String> = depends(expr)
            .into_iter()
            .filter(|n| OUTAGE_METRICS.contains(&n.as_str()) && !names.contains(n))
            .collect();
        if !pending.is_empty() {
            eprintln!("NOTE: {id} is empty because linkwatch does not export {pending:?} yet");
            pending_empty += 1;
            continue;
        }
        failures.push(format!("{id}: empty result for {expr}"));
    }

    // The template variables' queries (label_values(SELECTOR, LABEL)).
    for var in dash["templating"]["list"].as_array().unwrap() {
        let Some(def) = var["definition"].as_str() else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {def}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let v = prom.query(&substitute(selector));
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        let has_label = result
            .iter()
            .any(|s| s["metric"][label.trim()].as_str().is_some());
        if v["status"] != "success" || !has_label {
            failures.push(format!(
                "variable {}: no values from {def}: {v}",
                var["name"]
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {} expressions failed:\n{}\nlinkwatch log:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n"),
        daemon.log()
    );
    // Not vacuous: most expressions whose metrics exist returned data.
    assert!(
        non_empty * 2 > exprs.len() - pending_empty,
        "only {non_empty} of {} expressions returned data",
        exprs.len() - pending_empty
    );
    eprintln!(
        "{} expressions evaluated, {non_empty} with data",
        exprs.len()
    );
}
