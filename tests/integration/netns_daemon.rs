//! The real binary inside network namespaces: the embedded default config in
//! a namespace holding nothing but `lo` (its public targets fail locally and
//! nothing leaves the machine), and start-up without any ICMP privilege.
//! Also the real binary against a hostile disk (root: mounts): a full tmpfs,
//! and a loop-mounted ext4 frozen with `fsfreeze`; targets on loopback only.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::configs::two_tcp_groups;
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

// ---------------------------------------------------------------------------
// Disk faults (issue 14 items 4 and 5)

/// A loopback TCP service the test closes and reopens on one port.
struct Service {
    port: u16,
    stop: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Service {
    fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self { port, stop: None };
        s.open();
        s
    }

    fn open(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = l.accept();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        self.stop = Some((stop, t));
    }

    /// Closes the port: connections are refused.
    fn close(&mut self) {
        if let Some((stop, t)) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
            t.join().unwrap();
        }
    }
}

/// A mount the test made; unmounted on drop, also on failure.
struct Mount {
    dir: PathBuf,
}

/// A frozen filesystem, thawed on drop. Hold it in a variable declared after
/// the daemon: a daemon blocked in `fsync` cannot be reaped until the thaw,
/// so the thaw must come first when a failing test unwinds.
struct Frozen {
    dir: PathBuf,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.dir).status();
    }
}

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn ext4_loop(image: &Path, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let f = std::fs::File::create(image).unwrap();
        f.set_len(16 << 20).unwrap();
        run(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap()]);
        run(&[
            "mount",
            "-o",
            "loop",
            image.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn freeze(&self) -> Frozen {
        run(&["fsfreeze", "-f", self.dir.to_str().unwrap()]);
        Frozen {
            dir: self.dir.clone(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let dir = self.dir.to_str().unwrap().to_string();
        for _ in 0..50 {
            match Command::new("umount").arg(&dir).status() {
                Ok(s) if s.success() => return,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = Command::new("umount").args(["-l", &dir]).status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn disk_config(data: &Path, lan_port: u16, svc_port: u16) -> String {
    // The disk fills with outage lines alone: no path snapshots.
    two_tcp_groups(
        &data.display().to_string(),
        "127.0.0.1:0",
        lan_port,
        svc_port,
        "max_traces_per_minute = 0",
    )
}

fn api_outages(d: &Daemon) -> Vec<serde_json::Value> {
    let (_, body) = d.get("/api/v1/outages");
    serde_json::from_str::<serde_json::Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn journal_text(data: &Path) -> String {
    std::fs::read_to_string(data.join("journal.jsonl")).unwrap_or_default()
}

/// One full outage of `internet` (service closed, then reopened), as the API shows it.
fn outage_cycle(d: &Daemon, svc: &mut Service) -> serde_json::Value {
    let before = api_outages(d).len();
    svc.close();
    d.wait_for(Duration::from_secs(10), |d| {
        (api_outages(d).len() > before).then_some(())
    });
    svc.open();
    d.wait_for(Duration::from_secs(10), |d| {
        let all = api_outages(d);
        all.last().filter(|o| !o["end"].is_null()).cloned()
    })
}

/// The disk fills up (a small tmpfs), outages go on being detected and
/// shown; at SIGTERM every line the disk did not take is logged in full at
/// ERROR and saved to a fallback file elsewhere: nothing is silently gone.
#[test]
fn disk_full_then_sigterm_loses_no_event() {
    if !crate::harness::daemon::require(
        crate::harness::daemon::is_root(),
        "mounting a tmpfs needs root",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Mount::tmpfs(&dir.path().join("mnt"), "256k");
    let data = mnt.dir.join("data");
    let fallback = dir.path().join("fallback");
    std::fs::create_dir(&fallback).unwrap();
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let lan_port = lan.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in lan.incoming() {});
    let mut svc = Service::new();
    let mut d = Daemon::start_with(
        &disk_config(&data, lan_port, svc.port),
        &[("TMPDIR", fallback.to_str().unwrap())],
    );
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "internet")]) == Some(1.0))
            .then_some(())
    });
    // Fill the filesystem.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(mnt.dir.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
    }
    // The journal's last page may still take a few lines: cycle outages
    // until the disk refuses one, then one more whose lines are all refused.
    let mut cycles = 0;
    while sample(&d.metrics(), "linkwatch_journal_errors_total", &[]).unwrap_or(0.0) == 0.0 {
        outage_cycle(&d, &mut svc);
        cycles += 1;
        assert!(
            cycles < 20,
            "the disk never refused a line; log:\n{}",
            d.log()
        );
    }
    let lost = outage_cycle(&d, &mut svc);
    let id = lost["id"].as_str().unwrap().to_string();
    assert!(!journal_text(&data).contains(&id));
    let backlog = sample(&d.metrics(), "linkwatch_journal_backlog_events", &[]);

    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let log = d.log();
    let in_log: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("ERROR") && l.contains("could not be written before exit") && l.contains(&id)
        })
        .collect();
    assert_eq!(
        in_log.len(),
        2,
        "outage_start and outage_end in full:\n{log}"
    );
    let saved: Vec<PathBuf> = std::fs::read_dir(&fallback)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}\n{log}");
    let text = std::fs::read_to_string(&saved[0]).unwrap();
    let events: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        events.contains(&("outage_start".to_string(), id.clone())),
        "{text}"
    );
    assert!(
        events.contains(&("outage_end".to_string(), id.clone())),
        "{text}"
    );
    assert_eq!(events.last().unwrap().0, "daemon_stop", "{text}");
    assert!(backlog.is_some_and(|b| b >= 2.0), "{backlog:?}");
}

/// The data directory's filesystem is frozen (`fsfreeze -f`: writes and
/// fsync block): probing, the API and metrics go on, `/healthz` turns
/// unhealthy once the backlog is older than its bound, and everything is
/// written once the filesystem thaws.
#[test]
fn a_frozen_filesystem_blocks_nothing_and_is_reported() {
    if !crate::harness::daemon::require(crate::harness::daemon::is_root(), "loop mounts need root")
        || !crate::harness::daemon::require(
            which("fsfreeze") && which("mkfs.ext4"),
            "fsfreeze or mkfs.ext4 is missing",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Mount::ext4_loop(&dir.path().join("disk.img"), &dir.path().join("mnt"));
    let data = mnt.dir.join("data");
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let lan_port = lan.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in lan.incoming() {});
    let mut svc = Service::new();
    let mut d = Daemon::start(&disk_config(&data, lan_port, svc.port));
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "internet")]) == Some(1.0))
            .then_some(())
    });
    let frozen = mnt.freeze();
    let probes =
        |d: &Daemon| crate::harness::daemon::sum(&d.metrics(), "linkwatch_probes_total", &[]);
    let frozen_at = Instant::now();
    svc.close();
    // The API shows the outage while its line cannot be written.
    let shown = d.wait_for(Duration::from_secs(5), |d| api_outages(d).first().cloned());
    let id = shown["id"].as_str().unwrap().to_string();
    assert!(!journal_text(&data).contains(&id));
    let p1 = probes(&d);
    std::thread::sleep(Duration::from_secs(1));
    assert!(probes(&d) > p1 + 5.0, "probing goes on");
    // Unhealthy once the oldest unwritten line is older than the bound (10 s).
    let (status, body) = d.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"), "not yet");
    let body = d.wait_for(Duration::from_secs(15), |d| {
        let (status, body) = d.get("/healthz");
        (status == 503).then_some(body)
    });
    assert!(frozen_at.elapsed() >= Duration::from_secs(10));
    assert!(body.contains("stalled"), "{body}");
    let m = d.metrics();
    assert!(sample(&m, "linkwatch_journal_backlog_events", &[]).unwrap() >= 1.0);
    assert!(sample(&m, "linkwatch_journal_backlog_oldest_seconds", &[]).unwrap() >= 10.0);
    drop(frozen);
    d.wait_for(Duration::from_secs(5), |_| {
        journal_text(&data).contains(&id).then_some(())
    });
    d.wait_for(Duration::from_secs(5), |d| {
        (d.get("/healthz").0 == 200).then_some(())
    });
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
    let out = Command::new(BIN)
        .args(["outages", "--verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
