//! Live configuration reload (SIGHUP and `POST /-/reload`) on loopback: an
//! added, a removed and a changed target during open outages, then a file
//! that does not validate. Checks that no probe is lost or counted twice
//! around the switch (`linkwatch_probes_total` of the kept targets), that the
//! kept group's open outage goes on under the same id, that the removed
//! group's ends with `end_reason: "removed"`, that the added target starts
//! `unknown`, and the journal's `config_reload` line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::daemon::{Daemon, promtool_check_metrics, require, sample, sum};
use linkwatch::metrics as m;

const INTERVAL_MS: u64 = 250;

/// A port with a listener that accepts (and drops) every connection.
fn open_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

/// A port nobody listens on (connection refused at once).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn target(name: &str, group: &str, port: u16) -> String {
    format!(
        "\n[[target]]\nname = \"{name}\"\ngroup = \"{group}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"
    )
}

fn head(groups: &[&str]) -> String {
    let mut s = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{{data_dir}}\"\n\n[defaults]\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"200ms\"\nfail_after = 2\nrecover_after = 2\n"
    );
    for g in groups {
        s.push_str(&format!("\n[[group]]\nname = \"{g}\"\n"));
        if *g == "lan" {
            s.push_str("down_when = \"any\"\n");
        }
    }
    s
}

/// A minimal HTTP/1.0 request; returns status, headers and body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn probes(metrics: &str, target: &str) -> f64 {
    sum(metrics, m::PROBES_TOTAL, &[("target", target)])
}

fn outages(d: &Daemon) -> Vec<Value> {
    let (status, body) = d.get("/api/v1/outages");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("not an array: {body}"))
}

fn of_group<'a>(all: &'a [Value], group: &str) -> Vec<&'a Value> {
    all.iter().filter(|o| o["group"] == group).collect()
}

fn target_status(d: &Daemon, name: &str) -> Option<Value> {
    let (_, body) = d.get("/api/v1/status");
    let v: Value = serde_json::from_str(&body).ok()?;
    v["targets"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
}

fn reloads(d: &Daemon, result: &str) -> f64 {
    sample(&d.metrics(), m::CONFIG_RELOADS_TOTAL, &[("result", result)]).unwrap_or(-1.0)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Via {
    Sighup,
    Post,
}

/// Asks the daemon to reload; with `Post`, returns the response.
fn reload(d: &Daemon, via: Via) -> Option<(u16, String)> {
    match via {
        Via::Sighup => {
            let pid = d.child.as_ref().unwrap().id().to_string();
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            None
        }
        Via::Post => {
            let (status, _, body) = http(d.addr, "POST", "/-/reload");
            Some((status, body))
        }
    }
}

/// Reloads and waits until the daemon counted the attempt as `result`.
fn reload_and_wait(d: &Daemon, via: Via, result: &str) -> Option<(u16, String)> {
    let before = reloads(d, result);
    let answer = reload(d, via);
    d.wait_for(Duration::from_secs(10), |d| {
        (reloads(d, result) > before).then_some(())
    });
    answer
}

fn reload_keeps_state(via: Via) {
    let (up, up2) = (open_port(), open_port());
    let (down, gone) = (closed_port(), closed_port());
    // lan: one target up, one down (down_when any): an outage open all along.
    // gone: its only target refused: an outage, removed by the reload.
    // wan: `wan-a` changes port (changed), `wan-new` is added.
    let icmp = "\n[[target]]\nname = \"lan-icmp\"\ngroup = \"lan\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\n";
    let v1 = head(&["lan", "gone", "wan"])
        + icmp
        + &target("lan-up", "lan", up)
        + &target("lan-down", "lan", down)
        + &target("gone-down", "gone", gone)
        + &target("wan-a", "wan", up);
    let v2 = head(&["lan", "wan"])
        + icmp
        + &target("lan-up", "lan", up)
        + &target("lan-down", "lan", down)
        + &target("wan-a", "wan", up2)
        + &target("wan-new", "wan", up);
    let d = Daemon::start(&v1);
    let path = d.dir.path().join("config.toml");

    // Both outages open.
    let before = d.wait_for(Duration::from_secs(15), |d| {
        let all = outages(d);
        let open = |g| {
            of_group(&all, g)
                .iter()
                .any(|o| o["end"].is_null())
                .then_some(())
        };
        open("lan")?;
        open("gone")?;
        Some(all)
    });
    let lan_id = of_group(&before, "lan")[0]["id"].clone();
    let gone_id = of_group(&before, "gone")[0]["id"].clone();

    // Sample the kept targets' counters every 50 ms across the switch.
    let data_dir = d.data_dir();
    std::fs::write(&path, v2.replace("{data_dir}", data_dir.to_str().unwrap())).unwrap();
    let mut series: Vec<(Instant, f64, f64, f64)> = Vec::new();
    let sample_now = |series: &mut Vec<(Instant, f64, f64, f64)>| {
        let text = d.metrics();
        series.push((
            Instant::now(),
            probes(&text, "lan-up"),
            probes(&text, "lan-down"),
            probes(&text, "lan-icmp"),
        ));
    };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        sample_now(&mut series);
        std::thread::sleep(Duration::from_millis(50));
    }
    let at_switch = series.len();
    let answer = reload_and_wait(&d, via, "success");
    if let Some((status, body)) = &answer {
        assert_eq!(*status, 200, "{body}");
        assert!(body.contains("reloaded"), "{body}");
    }
    // Added: unknown, nothing recorded yet (its first slot is most of an interval away).
    let new = target_status(&d, "wan-new").expect("wan-new in the status");
    assert_eq!(new["state"], "unknown", "{new}");
    let reloaded_at = Instant::now();
    while reloaded_at.elapsed() < Duration::from_millis(2500) {
        sample_now(&mut series);
        std::thread::sleep(Duration::from_millis(50));
    }

    // probes_total of kept targets: never decreasing, never more than one
    // probe between two samples 50 ms apart (a doubled probe), and the
    // count over the whole window is the schedule's (no lost slot).
    for w in series.windows(2) {
        let slots = ((w[1].0 - w[0].0).as_millis() as f64 / INTERVAL_MS as f64).floor() + 1.0;
        for (a, b) in [(w[0].1, w[1].1), (w[0].2, w[1].2), (w[0].3, w[1].3)] {
            assert!(b >= a, "probes_total went back: {a} -> {b}");
            assert!(
                b - a <= slots,
                "more probes than slots between two samples: {a} -> {b}"
            );
        }
    }
    let (first, last) = (series[0], series[series.len() - 1]);
    let expected = (last.0 - first.0).as_millis() as f64 / INTERVAL_MS as f64;
    for (what, a, b) in [("lan-up", first.1, last.1), ("lan-down", first.2, last.2)] {
        assert!(
            (b - a - expected).abs() <= 2.0,
            "{what}: {a} -> {b} over {:?}, expected about {expected} more",
            last.0 - first.0
        );
    }
    let (before_switch, after_switch) = (series[at_switch - 1], series[at_switch]);
    eprintln!(
        "reload via {via:?}: lan-up probes_total {} -> {} (last sample before the switch {}, first after {} {:?} later), lan-down {} -> {} (around the switch {} -> {}), lan-icmp {} -> {} (around the switch {} -> {}), over {:?} (expected +{expected:.1}); lan outage {lan_id} open before and after, gone outage {gone_id} ended removed",
        first.1,
        last.1,
        before_switch.1,
        after_switch.1,
        after_switch.0 - before_switch.0,
        first.2,
        last.2,
        before_switch.2,
        after_switch.2,
        first.3,
        last.3,
        before_switch.3,
        after_switch.3,
        last.0 - first.0
    );

    // The added target has been probed since; the removed one's series are gone.
    let text = d.metrics();
    assert!(probes(&text, "wan-new") >= 1.0, "{text}");
    assert!(!text.contains("target=\"gone-down\""), "{text}");
    assert_eq!(
        sample(&text, m::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        Some(1.0)
    );

    // lan: the same outage, still open, not split; gone: ended as removed.
    let after = outages(&d);
    let lan = of_group(&after, "lan");
    assert_eq!(lan.len(), 1, "{after:?}");
    assert_eq!(lan[0]["id"], lan_id);
    assert!(lan[0]["end"].is_null(), "{:?}", lan[0]);
    let gone_after = of_group(&after, "gone");
    assert_eq!(gone_after.len(), 1, "{after:?}");
    assert_eq!(gone_after[0]["id"], gone_id);
    assert_eq!(
        gone_after[0]["end_reason"], "removed",
        "{:?}",
        gone_after[0]
    );
    assert!(of_group(&after, "wan").is_empty(), "{after:?}");
    let listed = Command::new(crate::harness::daemon::BIN)
        .args(["outages", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("(removed)"), "{listed}");
    // The journal with its config_reload line still verifies and reports.
    for args in [
        &["outages", "--verify", "--data-dir"][..],
        &["report", "--since", "1d", "--data-dir"][..],
    ] {
        let out = Command::new(crate::harness::daemon::BIN)
            .args(args)
            .arg(&data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "linkwatch {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The report does not pass the removal off as a recovery.
        if args[0] == "report" {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("monitoring stopped: the group was removed from the configuration"),
                "{text}"
            );
        }
    }

    // The journal: config_reload with the new digest, before the removal's end.
    let digest = linkwatch::config::parse(
        &v2.replace("{data_dir}", data_dir.to_str().unwrap()),
        &path.display().to_string(),
    )
    .unwrap()
    .digest;
    let journal = std::fs::read_to_string(data_dir.join("journal.jsonl")).unwrap();
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reload_at = lines
        .iter()
        .position(|l| l["event"] == "config_reload")
        .expect("a config_reload line");
    let r = &lines[reload_at];
    assert_eq!(r["config_digest"], digest.as_str(), "{r}");
    assert_eq!(r["added"], serde_json::json!(["wan-new"]), "{r}");
    assert_eq!(r["removed"], serde_json::json!(["gone-down"]), "{r}");
    assert_eq!(r["changed"], serde_json::json!(["wan-a"]), "{r}");
    let ended = lines
        .iter()
        .position(|l| l["event"] == "outage_end" && l["id"] == gone_id)
        .expect("the removed group's outage_end");
    assert!(ended > reload_at);
    assert_eq!(lines[ended]["end_reason"], "removed");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "outage_start" && l["group"] == "lan")
            .count(),
        1
    );

    // A file that does not validate changes nothing.
    let broken = v2.replace("fail_after = 2", "fail_after = 2\nfail_aftr = 3");
    std::fs::write(
        &path,
        broken.replace("{data_dir}", data_dir.to_str().unwrap()),
    )
    .unwrap();
    let before_broken = probes(&d.metrics(), "lan-up");
    let answer = reload_and_wait(&d, via, "failure");
    let line = broken
        .lines()
        .position(|l| l.starts_with("fail_aftr"))
        .unwrap()
        + 1;
    let location = format!("config.toml:{line}:1");
    if let Some((status, body)) = &answer {
        assert_eq!(*status, 400, "{body}");
        assert!(body.contains(&location), "{body}");
    }
    d.wait_for(Duration::from_secs(5), |d| {
        d.log().contains(&location).then_some(())
    });
    let text = d.metrics();
    assert_eq!(
        sample(&text, m::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        Some(0.0)
    );
    std::thread::sleep(Duration::from_millis(4 * INTERVAL_MS));
    assert!(probes(&d.metrics(), "lan-up") >= before_broken + 2.0);
    assert!(target_status(&d, "wan-new").is_some());
    let still = outages(&d);
    assert_eq!(of_group(&still, "lan").len(), 1);
    assert!(of_group(&still, "lan")[0]["end"].is_null());
    let journal = std::fs::read_to_string(data_dir.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"config_reload\"").count(), 1);

    // Fixed again: applied, the gauge back at 1. The listen address is
    // restart-only: warned about by name, the running one stays.
    std::fs::write(
        &path,
        v2.replace("{data_dir}", data_dir.to_str().unwrap())
            .replace("interval = \"250ms\"", "interval = \"300ms\"")
            .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
    )
    .unwrap();
    reload_and_wait(&d, via, "success");
    assert!(d.log().contains("daemon.listen"), "{}", d.log());
    let text = d.metrics();
    assert_eq!(
        sample(&text, m::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        Some(1.0)
    );
    if require(
        promtool_check_metrics("").is_some(),
        "promtool (Debian package `prometheus`) is not installed",
    ) {
        let (code, out) = promtool_check_metrics(&text).unwrap();
        assert_eq!(code, 0, "promtool check metrics failed:\n{out}");
    }
    // Every target changed (interval): the lan outage still goes on under its id.
    let last = outages(&d);
    assert_eq!(of_group(&last, "lan")[0]["id"], lan_id, "{last:?}");
}

#[test]
fn sighup_reload_keeps_kept_targets_and_outages() {
    reload_keeps_state(Via::Sighup);
}

#[test]
fn post_reload_keeps_kept_targets_and_outages() {
    reload_keeps_state(Via::Post);
}

#[test]
fn reload_endpoint_takes_only_post() {
    let port = open_port();
    let d = Daemon::start(&(head(&["lan"]) + &target("a", "lan", port)));
    let (status, head, _) = http(d.addr, "GET", "/-/reload");
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
    let text = d.metrics();
    assert_eq!(
        sample(&text, m::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        Some(1.0)
    );
    assert!(sample(&text, m::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP, &[]).unwrap() > 1.7e9);
    // The same file again: nothing to do, still a success.
    let (status, _, body) = http(d.addr, "POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unchanged"), "{body}");
}
