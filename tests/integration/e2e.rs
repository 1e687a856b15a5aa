//! End-to-end tests of the real binary on loopback: config → probes →
//! `/metrics` (checked by promtool) → API → ordered shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::configs::two_tcp_groups;
use crate::harness::daemon::{Daemon, promtool_check_metrics, require, sample, sum};
use linkwatch::metrics as m;

fn loopback_config(tcp_open: u16, tcp_closed: u16) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"

[defaults]
interval = "500ms"
timeout = "400ms"

[[group]]
name = "lan"

[[group]]
name = "internet"
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
name = "closed-tcp"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = {tcp_closed}
"#
    )
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn serves_metrics_api_and_stops_on_sigterm() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    // Accept and drop connections in the background.
    std::thread::spawn(move || for _ in listener.incoming() {});
    let mut d = Daemon::start(&loopback_config(open, closed_port()));

    // Every label set exists before the first probe has completed.
    let first = d.metrics();
    for t in ["loop-icmp", "loop-tcp", "closed-tcp"] {
        for result in ["success", "timeout", "error"] {
            assert!(
                sample(
                    &first,
                    m::PROBES_TOTAL,
                    &[("target", t), ("result", result)]
                )
                .is_some(),
                "missing {} for {t}/{result}:\n{first}",
                m::PROBES_TOTAL
            );
        }
        assert!(sample(&first, m::PROBE_SUCCESS, &[("target", t)]).is_some());
    }
    assert_eq!(
        sample(
            &first,
            m::BUILD_INFO,
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    let body = d.wait_for(Duration::from_secs(10), |d| {
        let b = d.metrics();
        let done = ["loop-icmp", "loop-tcp", "closed-tcp"]
            .iter()
            .all(|t| sum(&b, m::PROBES_TOTAL, &[("target", t)]) >= 2.0);
        done.then_some(b)
    });
    assert_eq!(
        sample(&body, m::PROBE_SUCCESS, &[("target", "loop-icmp")]),
        Some(1.0),
        "{}",
        d.log()
    );
    assert_eq!(
        sample(&body, m::PROBE_SUCCESS, &[("target", "loop-tcp")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, m::PROBE_SUCCESS, &[("target", "closed-tcp")]),
        Some(0.0)
    );
    assert!(
        sample(
            &body,
            m::PROBE_ERRORS_TOTAL,
            &[("target", "closed-tcp"), ("reason", "connect_refused")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{body}"
    );
    assert!(
        sample(
            &body,
            m::PROBE_PHASE_SECONDS,
            &[("target", "loop-tcp"), ("phase", "connect")]
        )
        .unwrap()
            > 0.0
    );
    assert!(
        sample(
            &body,
            "linkwatch_probe_duration_seconds_count",
            &[("target", "loop-icmp")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(sample(&body, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
    assert!(body.contains(m::ICMP_SOCKET_MODE), "{body}");

    // promtool accepts the exposition (exit 0: no parse error, no lint finding).
    if require(
        promtool_check_metrics("").is_some(),
        "promtool (Debian package `prometheus`) is not installed",
    ) {
        let (code, out) = promtool_check_metrics(&body).unwrap();
        assert_eq!(code, 0, "promtool check metrics failed:\n{out}");
    }

    let (status, health) = d.get("/healthz");
    assert_eq!((status, health.as_str()), (200, "ok\n"));

    let (status, api) = d.get("/api/v1/status");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&api).unwrap();
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    let closed = targets.iter().find(|t| t["name"] == "closed-tcp").unwrap();
    assert_eq!(closed["kind"], "tcp");
    assert_eq!(closed["group"], "internet");
    assert_eq!(closed["last"]["result"], "error");
    assert_eq!(closed["last"]["reason"], "connect_refused");
    assert!(closed["last"]["at"].as_str().unwrap().ends_with('Z'));

    let (status, _) = d.get("/nope");
    assert_eq!(status, 404);
    let (status, page) = d.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("loop-tcp"));

    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        d.log()
    );
    assert!(took < Duration::from_secs(2), "took {took:?} to stop");
}

#[test]
fn five_hundred_icmp_targets_at_one_second() {
    let mut cfg = String::from(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{data_dir}"

[defaults]
interval = "1s"
timeout = "900ms"

[[group]]
name = "lan"
"#,
    );
    for i in 0..500 {
        let host = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250);
        cfg.push_str(&format!(
            "\n[[target]]\nname = \"t{i}\"\ngroup = \"lan\"\nkind = \"icmp\"\nhost = \"{host}\"\n"
        ));
    }
    let mut d = Daemon::start(&cfg);
    // Let every target complete a few probes.
    std::thread::sleep(Duration::from_millis(2500));
    let t0 = Instant::now();
    let a = d.metrics();
    std::thread::sleep(Duration::from_secs(3));
    let b = d.metrics();
    let dt = t0.elapsed().as_secs_f64();
    let ok = (0..500)
        .filter(|i| sample(&b, m::PROBE_SUCCESS, &[("target", &format!("t{i}"))]) == Some(1.0))
        .count();
    assert_eq!(ok, 500, "targets not succeeding; log:\n{}", d.log());
    let rate = (sum(&b, m::PROBES_TOTAL, &[]) - sum(&a, m::PROBES_TOTAL, &[])) / dt;
    assert!(
        (450.0..=550.0).contains(&rate),
        "probe rate {rate:.0}/s, expected ~500/s"
    );
    assert_eq!(sum(&b, m::PROBES_TOTAL, &[("result", "timeout")]), 0.0);
    assert_eq!(sum(&b, m::PROBES_SKIPPED_TOTAL, &[]), 0.0, "slots skipped");
    // No bunching: probes start on schedule (lateness histogram: nearly all under 50 ms).
    let late_total = sample(&b, "linkwatch_schedule_lateness_seconds_count", &[]).unwrap();
    let late_50ms = sample(
        &b,
        "linkwatch_schedule_lateness_seconds_bucket",
        &[("le", "0.05")],
    )
    .unwrap();
    assert!(
        late_50ms / late_total > 0.99,
        "{late_50ms}/{late_total} probes within 50 ms of schedule"
    );
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn check_accepts_a_valid_config_and_probe_prints_a_table() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let text = loopback_config(open, closed_port()).replace("{data_dir}", "/tmp/unused");
    std::fs::write(&path, text).unwrap();

    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["probe", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    // One failing target (the closed port) → exit 1.
    assert_eq!(out.status.code(), Some(1), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TARGET"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    let col = lines[0].find("RESULT").unwrap();
    for l in &lines[1..] {
        assert!(
            l[col..].starts_with("ok") || l[col..].starts_with("error"),
            "column misaligned: {l}"
        );
    }
    assert!(table.contains("connect_refused"));

    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--target", "loop-tcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--target", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hostile_http_clients_do_not_pin_the_daemon() {
    use std::io::{Read, Write};
    let d = Daemon::start(&loopback_config(closed_port(), closed_port()));
    // A slowloris client that never finishes its headers, and an oversized header.
    let mut slow = std::net::TcpStream::connect(d.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let mut big = std::net::TcpStream::connect(d.addr).unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = big.write_all(huge.as_bytes());
    let mut buf = Vec::new();
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = big.read_to_end(&mut buf);
    let resp = String::from_utf8_lossy(&buf);
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431") || resp.starts_with("HTTP/1.1 400"),
        "oversized header answered: {resp}"
    );
    // Meanwhile normal scrapes work.
    let (status, _) = d.get("/healthz");
    assert_eq!(status, 200);
    // The slow client is dropped after the header read timeout.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "slow client kept open"
    );
    // POST is refused.
    let mut post = std::net::TcpStream::connect(d.addr).unwrap();
    post.write_all(b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    post.read_to_end(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.0 405")
            || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 405")
    );
}

/// A TCP service on loopback goes away and comes back: the real binary
/// records one outage with the right cause, serves it on the API, journals it,
/// and the offline CLI reads the same record and verifies the hash chain.
#[test]
fn outage_is_recorded_served_and_journaled() {
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let lan_port = lan.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in lan.incoming() {});
    let svc = TcpListener::bind("127.0.0.1:0").unwrap();
    let svc_port = svc.local_addr().unwrap().port();
    let cfg = two_tcp_groups("{data_dir}", "127.0.0.1:0", lan_port, svc_port, "");
    let stop = Arc::new(AtomicBool::new(false));
    let accept = {
        let stop = stop.clone();
        svc.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = svc.accept();
                std::thread::sleep(Duration::from_millis(5));
            }
            // Dropping the listener closes the port: connects are refused.
        })
    };
    let mut d = Daemon::start(&cfg);
    // Both groups up first.
    d.wait_for(Duration::from_secs(10), |d| {
        let b = d.metrics();
        (sample(&b, "linkwatch_group_up", &[("group", "internet")]) == Some(1.0)
            && sample(&b, "linkwatch_group_up", &[("group", "lan")]) == Some(1.0))
        .then_some(())
    });
    // Fault: the service's port closes (connection refused). Rebinding the
    // same port later restores it.
    stop.store(true, Ordering::Relaxed);
    accept.join().unwrap();
    let fault_at = jiff::Timestamp::now();
    d.wait_for(Duration::from_secs(10), |d| {
        let b = d.metrics();
        (sample(
            &b,
            "linkwatch_outage_active",
            &[("group", "internet"), ("cause", "internet")],
        ) == Some(1.0))
        .then_some(())
    });
    let restored = TcpListener::bind(("127.0.0.1", svc_port)).unwrap();
    let restore_at = jiff::Timestamp::now();
    std::thread::spawn(move || for _ in restored.incoming() {});
    let outages = d.wait_for(Duration::from_secs(10), |d| {
        let (status, body) = d.get("/api/v1/outages");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let arr = v.as_array().unwrap().clone();
        (arr.len() == 1 && !arr[0]["end"].is_null()).then_some(arr)
    });
    let o = &outages[0];
    assert_eq!(o["group"], "internet");
    assert_eq!(o["cause"], "internet");
    assert_eq!(o["targets"], serde_json::json!(["service"]));
    assert_eq!(o["gaps"], serde_json::json!([]));
    let start: jiff::Timestamp = o["start"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = o["end"].as_str().unwrap().parse().unwrap();
    // Back-dated start: the first failed probe, within one interval + timeout of the fault.
    let tol = 0.35;
    let start_err = start.duration_since(fault_at).as_secs_f64();
    let end_err = end.duration_since(restore_at).as_secs_f64();
    assert!(
        (-0.01..=tol).contains(&start_err),
        "start error {start_err}s"
    );
    assert!((-0.01..=tol).contains(&end_err), "end error {end_err}s");
    let dur = o["duration_seconds"].as_f64().unwrap();
    assert!((dur - end.duration_since(start).as_secs_f64()).abs() < 0.01);
    let metrics = d.metrics();
    assert_eq!(
        sample(
            &metrics,
            "linkwatch_outages_total",
            &[("group", "internet"), ("cause", "internet")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sum(&metrics, "linkwatch_outages_total", &[("group", "lan")]),
        0.0
    );
    let downtime = sample(
        &metrics,
        "linkwatch_downtime_seconds_total",
        &[("group", "internet")],
    )
    .unwrap();
    assert!(
        (downtime - dur).abs() < 0.5,
        "downtime {downtime} vs duration {dur}"
    );

    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());

    // The offline CLI reads the same outage and verifies the chain.
    let data = d.data_dir();
    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["outages", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], o["id"]);
    assert_eq!(v[0]["start"], o["start"]);
    assert_eq!(v[0]["end"], o["end"]);
    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args(["outages", "--verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let journal = std::fs::read_to_string(data.join("journal.jsonl")).unwrap();
    let events: Vec<String> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        // Path snapshots are tested in `path_trace`.
        .filter(|e| e != "path")
        .collect();
    assert_eq!(
        events,
        ["daemon_start", "outage_start", "outage_end", "daemon_stop"]
    );

    // The evidence report over the last hour, in every format.
    let report = |format: &str| {
        let out = std::process::Command::new(crate::harness::daemon::BIN)
            .args([
                "report",
                "--since",
                "1h",
                "--format",
                format,
                "--tz",
                "UTC",
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let r: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(r["journal_ok"], true);
    assert_eq!(r["runs"], 1);
    assert_eq!(r["outages"].as_array().unwrap().len(), 1);
    assert_eq!(r["outages"][0]["cause"], "internet");
    // Every group of the daemon's configuration, upstream first.
    assert_eq!(r["groups"][0]["group"], "lan");
    // The run covered a few seconds of the hour: the summary says how much.
    let lan = r["groups"][0]["summary"].as_str().unwrap();
    assert!(
        lan.starts_with("no outage; answered throughout the "),
        "{lan}"
    );
    assert!(lan.contains(" % of the period)"), "{lan}");
    assert_eq!(r["groups"][1]["group"], "internet");
    assert_eq!(r["groups"][1]["outages"], 1);
    let monitored = r["monitored_seconds"].as_f64().unwrap();
    assert!(monitored > 1.0 && monitored < 60.0, "{monitored}");
    let md = report("markdown");
    assert!(md.contains("| internet | 1 outage, "), "{md}");
    assert!(md.contains("Journal integrity (hash chain): intact"));
    let csv = report("csv");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",internet,internet,"));
    assert!(report("html").contains("<td>internet</td>"));
    let out = std::process::Command::new(crate::harness::daemon::BIN)
        .args([
            "report",
            "--since",
            "1h",
            "--tz",
            "Nowhere/Atlantis",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Under systemd (`Type=notify`, `WatchdogSec=`): READY once listening,
/// WATCHDOG pings while alive, STOPPING at shutdown.
#[test]
fn notifies_systemd_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut d = Daemon::start_with(
        &loopback_config(closed_port(), closed_port()),
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("notification within 5 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains(&d.addr.to_string()), "{ready}");
    // Pings every WATCHDOG_USEC / 2.
    let t0 = Instant::now();
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1");
    assert!(t0.elapsed() < Duration::from_secs(2));
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
    let mut last = recv();
    while last == "WATCHDOG=1" {
        last = recv();
    }
    assert_eq!(last, "STOPPING=1");
}

// ---------------------------------------------------------------------------
// Evidence integrity under faults (issue 14): one writer per data directory,
// nothing written by a failed start, a journal that knows its file, an
// anchored tail, and open outages that do not grow while nobody watches.

/// Two groups: `lan` (a TCP port that accepts) and `internet` (`service`
/// on `svc_port`, down while nothing listens there). `data_dir` may be
/// `{data_dir}` (the daemon's temp directory) or a path.
fn evidence_config(
    data_dir: &str,
    listen: &str,
    lan_port: u16,
    svc_port: u16,
    daemon_extra: &str,
) -> String {
    // These tests read the journal line by line: no path snapshots in it.
    two_tcp_groups(
        data_dir,
        listen,
        lan_port,
        svc_port,
        &format!("max_traces_per_minute = 0\n{daemon_extra}"),
    )
}

/// A loopback port that accepts connections for the rest of the test.
fn open_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

/// Starts accepting on `port` (ends an outage of the `service` target).
fn serve_on(port: u16) {
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || for _ in l.incoming() {});
}

/// Runs the binary with `args`, killing it if it has not exited within `within`.
fn run_bounded(args: &[&std::ffi::OsStr], within: Duration) -> std::process::Output {
    let mut child = std::process::Command::new(crate::harness::daemon::BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "linkwatch {args:?} still running after {within:?}; log:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn cli(args: &[&str], data: &std::path::Path) -> std::process::Output {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push("--data-dir".as_ref());
    all.push(data.as_os_str());
    run_bounded(&all, Duration::from_secs(10))
}

/// The `event` of every line of `<data>/journal.jsonl`.
fn journal_events(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_daemon_on_the_same_data_dir_refuses_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = evidence_config(
        data.to_str().unwrap(),
        "127.0.0.1:0",
        open_port(),
        closed_port(),
        "",
    );
    let mut first = Daemon::start(&cfg);
    let pid = first.child.as_ref().unwrap().id();
    wait_until(
        "the first daemon's outage is journaled",
        Duration::from_secs(10),
        || journal_events(&data).contains(&"outage_start".to_string()),
    );
    let second_cfg = dir.path().join("second.toml");
    std::fs::write(&second_cfg, &cfg).unwrap();
    let out = run_bounded(
        &["run".as_ref(), "--config".as_ref(), second_cfg.as_os_str()],
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    let events = journal_events(&data);
    assert_eq!(
        events.iter().filter(|e| *e == "daemon_start").count(),
        1,
        "the refused daemon wrote nothing: {events:?}"
    );
    let hb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("heartbeat")).unwrap()).unwrap();
    assert_eq!(hb["pid"], pid);
    let (status, _) = first.terminate(Duration::from_secs(5));
    assert!(status.success());
    let out = cli(&["outages", "--verify"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_start_that_fails_on_a_port_in_use_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lan = open_port();
    // A previous run leaves a journal and a heartbeat behind.
    let mut before = Daemon::start(&evidence_config(
        data.to_str().unwrap(),
        "127.0.0.1:0",
        lan,
        lan,
        "",
    ));
    before.terminate(Duration::from_secs(5));
    let journal = std::fs::read(data.join("journal.jsonl")).unwrap();
    let heartbeat = std::fs::read(data.join("heartbeat")).unwrap();
    // Another daemon (its own data directory) holds the port.
    let mut holder = Daemon::start(&evidence_config("{data_dir}", "127.0.0.1:0", lan, lan, ""));
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        evidence_config(
            data.to_str().unwrap(),
            &holder.addr.to_string(),
            lan,
            lan,
            "",
        ),
    )
    .unwrap();
    let out = run_bounded(
        &["run".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert_eq!(
        std::fs::read(data.join("journal.jsonl")).unwrap(),
        journal,
        "journal untouched"
    );
    assert_eq!(
        std::fs::read(data.join("heartbeat")).unwrap(),
        heartbeat,
        "heartbeat untouched"
    );
    holder.terminate(Duration::from_secs(5));
}

#[test]
fn a_symlinked_journal_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, data.join("journal.jsonl")).unwrap();
    let cfg = dir.path().join("c.toml");
    let lan = open_port();
    std::fs::write(
        &cfg,
        evidence_config(data.to_str().unwrap(), "127.0.0.1:0", lan, lan, ""),
    )
    .unwrap();
    let out = run_bounded(
        &["run".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("allow_symlinks"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // Explicitly allowed, it is followed.
    std::fs::write(
        &cfg,
        evidence_config(
            data.to_str().unwrap(),
            "127.0.0.1:0",
            lan,
            lan,
            "allow_symlinks = true",
        ),
    )
    .unwrap();
    let mut d = Daemon::attach(
        std::process::Command::new(crate::harness::daemon::BIN)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        tempfile::tempdir().unwrap(),
    );
    d.terminate(Duration::from_secs(5));
    let text = std::fs::read_to_string(&victim).unwrap();
    assert!(
        text.starts_with("precious\n") && text.contains("daemon_start"),
        "{text}"
    );
}

/// logrotate's `mv`, then an `rm`, while an outage is open: each is noticed
/// at the next heartbeat, logged at ERROR, and the chain goes on in a new
/// file at the path, starting with `journal_reopened`.
#[test]
fn a_moved_then_removed_journal_is_reopened_and_the_chain_goes_on() {
    let svc = closed_port();
    let mut d = Daemon::start(&evidence_config(
        "{data_dir}",
        "127.0.0.1:0",
        open_port(),
        svc,
        "",
    ));
    let data = d.data_dir();
    let path = data.join("journal.jsonl");
    wait_until("outage_start journaled", Duration::from_secs(10), || {
        journal_events(&data).contains(&"outage_start".to_string())
    });
    std::fs::rename(&path, data.join("journal.jsonl.1")).unwrap();
    let heartbeat_wait = Duration::from_secs(8);
    wait_until("journal reopened after mv", heartbeat_wait, || {
        journal_events(&data) == ["journal_reopened"]
    });
    let rotated = std::fs::read_to_string(data.join("journal.jsonl.1")).unwrap();
    let after_mv = std::fs::read_to_string(&path).unwrap();
    let reopened: serde_json::Value =
        serde_json::from_str(after_mv.lines().next().unwrap()).unwrap();
    let last_rotated: serde_json::Value =
        serde_json::from_str(rotated.lines().last().unwrap()).unwrap();
    assert_eq!(
        reopened["seq"].as_u64().unwrap(),
        last_rotated["seq"].as_u64().unwrap() + 1
    );
    std::fs::remove_file(&path).unwrap();
    wait_until("journal reopened after rm", heartbeat_wait, || {
        journal_events(&data) == ["journal_reopened"]
    });
    serve_on(svc);
    wait_until("outage_end journaled", Duration::from_secs(10), || {
        journal_events(&data) == ["journal_reopened", "outage_end"]
    });
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
    assert_eq!(
        journal_events(&data),
        ["journal_reopened", "outage_end", "daemon_stop"]
    );
    let log = d.log();
    assert!(
        log.matches("ERROR").count() >= 2 && log.contains("moved or replaced"),
        "{log}"
    );
    let out = cli(&["outages", "--verify"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn lines_cut_from_the_end_of_the_journal_fail_verify() {
    let svc = closed_port();
    let mut d = Daemon::start(&evidence_config(
        "{data_dir}",
        "127.0.0.1:0",
        open_port(),
        svc,
        "",
    ));
    let data = d.data_dir();
    wait_until("outage_start journaled", Duration::from_secs(10), || {
        journal_events(&data).contains(&"outage_start".to_string())
    });
    serve_on(svc);
    wait_until("outage_end journaled", Duration::from_secs(10), || {
        journal_events(&data).contains(&"outage_end".to_string())
    });
    d.terminate(Duration::from_secs(5));
    assert!(cli(&["outages", "--verify"], &data).status.success());
    let path = data.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Cut daemon_stop and outage_end: what is left is a valid chain.
    std::fs::write(&path, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let out = cli(&["outages", "--verify"], &data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ends before"), "{stdout}");
    // Edit the last line instead.
    let edited = lines[..lines.len() - 1].join("\n")
        + "\n"
        + &lines[lines.len() - 1].replace("\"daemon_stop\"", "\"daemon_stop\" ")
        + "\n";
    std::fs::write(&path, edited).unwrap();
    let out = cli(&["outages", "--verify"], &data);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An outage open when the daemon stopped: read later, at two moments, it
/// has the same duration, ending at the last heartbeat, unobserved after.
#[test]
fn an_open_outage_read_offline_at_two_moments_has_the_same_duration() {
    let mut d = Daemon::start(&evidence_config(
        "{data_dir}",
        "127.0.0.1:0",
        open_port(),
        closed_port(),
        "",
    ));
    let data = d.data_dir();
    d.wait_for(Duration::from_secs(10), |d| {
        let (_, body) = d.get("/api/v1/outages");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (v.as_array().unwrap().len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    d.terminate(Duration::from_secs(5));
    let read = || {
        let out = cli(&["outages", "--json"], &data);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let out = cli(&["report", "--since", "1h", "--format", "json"], &data);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v[0].clone(),
            r["outages"][0].clone(),
            r["groups"][0]["downtime_seconds"].clone(),
        )
    };
    let (o1, r1, down1) = read();
    std::thread::sleep(Duration::from_millis(1500));
    let (o2, r2, down2) = read();
    assert_eq!(o1, o2);
    assert_eq!(r1, r2);
    assert_eq!(down1, down2);
    assert!(o1["end"].is_null(), "{o1}");
    assert!(o1["observed_until"].is_string(), "{o1}");
    let dur = o1["duration_seconds"].as_f64().unwrap();
    assert!(dur > 0.3 && dur < 10.0, "{dur}");
}

/// The availability on `/` (each card's "30 days"), `GET /api/v1/availability`
/// and `linkwatch report` come from one function over the journal: a router
/// never reachable is 0.00 % everywhere (not the share of the moments before
/// its first probe), a group down for a while is downtime over judged time in
/// all three, and a group always up is 100 %.
#[test]
fn page_report_and_api_agree_on_every_group() {
    let router = closed_port();
    let web = open_port();
    let isp = TcpListener::bind("127.0.0.1:0").unwrap();
    let isp_port = isp.local_addr().unwrap().port();
    let cfg = format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"
max_traces_per_minute = 0

[defaults]
# Loose enough that a loaded machine does not time the open ports out.
interval = "300ms"
timeout = "250ms"
fail_after = 3
recover_after = 2

[[group]]
name = "lan"

[[group]]
name = "isp"

[[group]]
name = "internet"

[[target]]
name = "router"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = {router}

[[target]]
name = "isp-gw"
group = "isp"
kind = "tcp"
host = "127.0.0.1"
port = {isp_port}

[[target]]
name = "web"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = {web}
"#
    );
    let stop = Arc::new(AtomicBool::new(false));
    let accept = {
        let stop = stop.clone();
        isp.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = isp.accept();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut d = Daemon::start(&cfg);
    d.wait_for(Duration::from_secs(10), |d| {
        let b = d.metrics();
        (sample(&b, "linkwatch_group_up", &[("group", "isp")]) == Some(1.0)
            && sample(
                &b,
                "linkwatch_outage_active",
                &[("group", "lan"), ("cause", "lan")],
            ) == Some(1.0))
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    // isp down for about two seconds, then back.
    stop.store(true, Ordering::Relaxed);
    accept.join().unwrap();
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "isp")]) == Some(0.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    serve_on(isp_port);
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "isp")]) == Some(1.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));

    // The page and the API back to back (the figures move with the clock).
    let fetched = Instant::now();
    let (status, page) = d.get("/");
    assert_eq!(status, 200);
    let (status, api) = d.get("/api/v1/availability?since=30d");
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let api_of = |g: &str| {
        api.as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == g)
            .unwrap_or_else(|| panic!("{g} missing: {api}"))
            .clone()
    };
    // The card's "30 days" figure.
    let page_of = |g: &str| -> String {
        let card = page
            .split(&format!("data-group=\"{g}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no card for {g}"));
        let after = card.split("<dt>30 days</dt>").nth(1).unwrap();
        let dd = after.split_once('>').unwrap().1;
        dd.split_once("</dd>").unwrap().0.to_string()
    };
    assert_eq!(api_of("lan")["availability_percent"], 0.0, "{api}");
    assert_eq!(page_of("lan"), "0.00 %");
    assert_eq!(api_of("internet")["availability_percent"], 100.0, "{api}");
    assert_eq!(page_of("internet"), "100 %", "{api}\n{page}");
    let isp_api = api_of("isp")["availability_percent"].as_f64().unwrap();
    assert!(isp_api > 20.0 && isp_api < 95.0, "{api}");
    let isp_page: f64 = page_of("isp").trim_end_matches(" %").parse().unwrap();
    // Floored to 1/100 on the page; and up time grew by at most `dt` between
    // the two reads, which moves up/judged by at most down·dt/judged².
    let dt = fetched.elapsed().as_secs_f64();
    let isp = api_of("isp");
    let (down, judged) = (
        isp["down_seconds"].as_f64().unwrap(),
        isp["judged_seconds"].as_f64().unwrap(),
    );
    let drift = 100.0 * down * dt / (judged * judged);
    assert!(
        (isp_page - isp_api).abs() <= 0.01 + 0.001 + drift,
        "page {isp_page} vs API {isp_api} (drift up to {drift})\n{api}\n{}",
        page.split("data-group=\"isp\"")
            .nth(1)
            .unwrap()
            .split("<div class=\"barrow")
            .next()
            .unwrap()
    );

    // A fixed window in the past: the API and the report agree exactly.
    let until = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_millis(300))
        .unwrap();
    let since = until
        .checked_sub(jiff::SignedDuration::from_secs(3600))
        .unwrap();
    let (since_s, until_s) = (format!("{since:.3}"), format!("{until:.3}"));
    let (status, fixed) = d.get(&format!(
        "/api/v1/availability?since={since_s}&until={until_s}"
    ));
    assert_eq!(status, 200, "{fixed}");
    let fixed: serde_json::Value = serde_json::from_str(&fixed).unwrap();
    let data = d.data_dir();
    let out = cli(
        &[
            "report", "--since", &since_s, "--until", &until_s, "--format", "json", "--tz", "UTC",
        ],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lan", "isp", "internet"],
        "every group, in configuration order"
    );
    for g in fixed.as_array().unwrap() {
        let name = g["group"].as_str().unwrap();
        let r = report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == name)
            .unwrap();
        let a = g["availability_percent"].as_f64().unwrap();
        let b = r["availability_percent"].as_f64().unwrap();
        assert!((a - b).abs() <= 0.01, "{name}: API {a} vs report {b}");
        let (a, b) = (
            g["down_seconds"].as_f64().unwrap(),
            r["downtime_seconds"].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1.0, "{name}: API down {a} vs report {b}");
        let (a, b) = (
            g["monitored_seconds"].as_f64().unwrap(),
            r["monitored_seconds"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1.0,
            "{name}: API monitored {a} vs report {b}"
        );
    }
    // Equal to the journal: isp's outage as recorded.
    let (_, outages) = d.get("/api/v1/outages");
    let outages: serde_json::Value = serde_json::from_str(&outages).unwrap();
    let isp_down: f64 = outages
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["group"] == "isp")
        .map(|o| o["duration_seconds"].as_f64().unwrap())
        .sum();
    let isp_fixed = fixed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["group"] == "isp")
        .unwrap();
    assert!(
        (isp_fixed["down_seconds"].as_f64().unwrap() - isp_down).abs() <= 1.0,
        "{isp_fixed} vs journal {isp_down}"
    );
    assert_eq!(report["groups"][0]["availability_percent"], 0.0);
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
}
