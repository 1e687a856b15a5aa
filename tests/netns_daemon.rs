//! The real binary inside network namespaces: the embedded default config in
//! a namespace holding nothing but `lo` (its public targets fail locally and
//! nothing leaves the machine), and start-up without any ICMP privilege.

#![allow(clippy::unwrap_used, clippy::disallowed_types)]

mod common;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::netns::{Netns, require_root};
use support::{BIN, Daemon, sample};

/// `curl` inside the namespace; returns the body.
fn get_in(ns: &Netns, url: &str) -> String {
    let out = ns
        .command(&["curl", "-sS", "--max-time", "5", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn embedded_default_runs_in_an_lo_only_namespace() {
    if !require_root() || !support::require(which("curl"), "curl is not installed") {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    // `run` without --config: the embedded default. Only the data directory is
    // redirected, so the test leaves nothing behind in /var/lib.
    let child = ns
        .command(&[BIN, "run"])
        .env("RUST_LOG", "info")
        .env("LINKWATCH_DATA_DIR", dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon::attach(child, dir);
    assert_eq!(d.addr.to_string(), "127.0.0.1:9898");

    let metrics = get_in(&ns, "http://127.0.0.1:9898/metrics");
    assert!(metrics.contains("linkwatch_probe_success{"), "{metrics}");
    assert!(metrics.contains("target=\"gateway\""));

    // Every public target fails locally; the gateway reports why.
    let status = d.wait_for(Duration::from_secs(15), |_| {
        let body = get_in(&ns, "http://127.0.0.1:9898/api/v1/status");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let targets = v["targets"].as_array().unwrap().clone();
        targets
            .iter()
            .all(|t| !t["last"].is_null())
            .then_some(targets)
    });
    let gw = status.iter().find(|t| t["name"] == "gateway").unwrap();
    assert_eq!(gw["last"]["result"], "error", "{gw}");
    assert_eq!(gw["last"]["reason"], "no_gateway", "{gw}");
    assert!(
        gw["last"]["detail"]
            .as_str()
            .unwrap()
            .contains("no default route"),
        "{gw}"
    );
    for t in &status {
        assert_ne!(t["last"]["result"], "success", "{t} reached something");
    }
    let metrics = get_in(&ns, "http://127.0.0.1:9898/metrics");
    assert_eq!(
        sample(
            &metrics,
            "linkwatch_probe_success",
            &[("target", "gateway")]
        ),
        Some(0.0)
    );
    assert_eq!(get_in(&ns, "http://127.0.0.1:9898/healthz"), "ok\n");

    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn without_icmp_privilege_start_fails_naming_both_fixes() {
    if !require_root() || !support::require(which("setpriv"), "setpriv is not installed") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.ping_group_range", "1 0");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "/tmp/linkwatch-nobody-unused"
[[group]]
name = "lan"
[[target]]
name = "self"
group = "lan"
kind = "icmp"
host = "127.0.0.1"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ns
        .command(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            BIN,
            "run",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("net.ipv4.ping_group_range"), "{stderr}");
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
