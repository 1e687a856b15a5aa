//! The real binary inside network namespaces: the embedded default config in
//! a namespace holding nothing but `lo` (its public targets fail locally and
//! nothing leaves the machine), and start-up without any ICMP privilege.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::daemon::{BIN, Daemon, sample};
use crate::harness::netns::{Netns, require_root};

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
    if !require_root() || !crate::harness::daemon::require(which("curl"), "curl is not installed") {
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
    if !require_root()
        || !crate::harness::daemon::require(which("setpriv"), "setpriv is not installed")
    {
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

/// Names are resolved on every probe and a resolution failure is its own
/// reason. The namespace gets its own resolv.conf (`ip netns exec` bind-mounts
/// /etc/netns/<ns>/resolv.conf) naming a resolver on its own loopback, so no
/// query can leave it.
#[test]
fn unresolvable_names_fail_with_reason_resolve() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let etc = std::path::PathBuf::from("/etc/netns").join(ns.name());
    std::fs::create_dir_all(&etc).unwrap();
    let _cleanup = RemoveDir(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "/tmp/unused"
[defaults]
interval = "5s"
timeout = "3s"
[[group]]
name = "g"
[[target]]
name = "web"
group = "g"
kind = "http"
url = "http://does-not-exist.invalid/"
[[target]]
name = "port"
group = "g"
kind = "tcp"
host = "nowhere.invalid"
port = 443
[[target]]
name = "ping"
group = "g"
kind = "icmp"
host = "nowhere.invalid"
"#,
    )
    .unwrap();
    let out = ns
        .command(&[BIN, "probe", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["web", "port", "ping"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(
            row.contains("error") && row.contains("resolve: failed to resolve"),
            "{row}"
        );
    }
}

/// Removes a directory on drop (the namespace's /etc/netns entry).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `linkwatch run` with no arguments works for an ordinary user: when
/// /var/lib/linkwatch cannot be written, the embedded default keeps its
/// journal under ~/.local/state/linkwatch and says so.
#[test]
fn embedded_default_runs_as_an_unprivileged_user() {
    if !require_root()
        || !crate::harness::daemon::require(which("setpriv"), "setpriv is not installed")
        || !crate::harness::daemon::require(which("curl"), "curl is not installed")
    {
        return;
    }
    let ns = Netns::new();
    // Unprivileged ICMP for everyone, inside this namespace only.
    ns.sysctl("net.ipv4.ping_group_range", "0 2147483647");
    let home = tempfile::tempdir().unwrap();
    assert!(
        Command::new("chown")
            .args(["65534:65534", home.path().to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let child = ns
        .command(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            BIN,
            "run",
        ])
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("STATE_DIRECTORY")
        .env_remove("LINKWATCH_DATA_DIR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon::attach(child, tempfile::tempdir().unwrap());
    assert_eq!(get_in(&ns, "http://127.0.0.1:9898/healthz"), "ok\n");
    let journal = home.path().join(".local/state/linkwatch/journal.jsonl");
    d.wait_for(Duration::from_secs(5), |_| journal.exists().then_some(()));
    assert!(d.log().contains("per-user directory"), "{}", d.log());
    assert!(
        d.log().contains("mode=\"dgram\"") || d.log().contains("v4=\"dgram\""),
        "{}",
        d.log()
    );
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(took < Duration::from_secs(2));
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.contains("\"daemon_start\"") && text.contains("\"daemon_stop\""),
        "{text}"
    );
}
