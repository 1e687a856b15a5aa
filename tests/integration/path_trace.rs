//! Path snapshots in the fake internet (home → router → isp → inet, four
//! routed namespaces; see `harness::fakenet`): `linkwatch trace` lists each
//! router in order, a router that sends no time-exceeded is a silent hop,
//! a trace past its bound is cut and partial, the daemon records where the
//! path stops at an outage's start and that it is whole at its end, a flood
//! of outages starts no more traces than the limit, and the unprivileged
//! story is the ICMP probes'.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use linkwatch::config::TraceProtocol;
use linkwatch::probe::icmp::FIX_SYSCTL;
use serde_json::Value;

use crate::harness::daemon::{BIN, sample, sum};
use crate::harness::fakenet::{self, FakeNet, Hop, INET_ICMP, ISP, Params, ROUTER, Watcher};
use crate::harness::netns::Netns;

/// The path from home to the first internet host: router, isp, the host.
const PATH: [&str; 3] = [ROUTER, ISP[0], INET_ICMP[0]];

/// Routers answer every probe: the kernel's per-destination ICMP rate limit
/// (one a second after a burst of six) would turn quick successive traces
/// into hop loss that says nothing about the path.
fn no_icmp_rate_limit(net: &FakeNet) {
    for ns in [&net.router, &net.isp, &net.inet] {
        ns.sysctl("net.ipv4.icmp_ratelimit", "0");
    }
}

/// `linkwatch trace ARGS… --json` in `ns` (as `user` when given).
fn trace_in(ns: &Netns, user: Option<&str>, args: &[&str]) -> (Option<Value>, Output) {
    let mut cmd: Vec<&str> = Vec::new();
    if let Some(u) = user {
        cmd.extend(["setpriv", u, "--regid=nogroup", "--clear-groups"]);
        cmd.extend(["--inh-caps=-all", "--bounding-set=-all"]);
    }
    cmd.extend([BIN, "trace"]);
    cmd.extend(args);
    cmd.push("--json");
    let out = ns.command(&cmd).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).ok();
    (v, out)
}

fn addrs(trace: &Value) -> Vec<Option<String>> {
    trace["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["addr"].as_str().map(str::to_string))
        .collect()
}

fn some(a: &[&str]) -> Vec<Option<String>> {
    a.iter().map(|s| Some(s.to_string())).collect()
}

#[test]
fn trace_lists_each_router_and_a_router_without_time_exceeded_is_a_silent_hop() {
    if !fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0]]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(addrs(&t), some(&PATH), "{t:#}");
    assert_eq!(t["reached"], true);
    assert_eq!(t["partial"], false);
    assert_eq!(t["packets"], 9, "3 hops x 3 requests: {t:#}");
    for h in t["hops"].as_array().unwrap() {
        assert_eq!(h["received"], 3, "{t:#}");
    }

    // The text report, like `mtr --report`.
    let text = net
        .home
        .command(&[BIN, "trace", INET_ICMP[0]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    println!("{text}");
    assert!(
        text.contains("Loss%   Snt   Last   Avg  Best  Wrst StDev"),
        "{text}"
    );
    assert!(text.contains(&format!("  1.|-- {ROUTER}")), "{text}");
    assert!(
        text.contains("reached 10.231.100.1 in 3 hops; 9 packets"),
        "{text}"
    );

    net.router.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-p",
        "icmp",
        "--icmp-type",
        "time-exceeded",
        "-j",
        "DROP",
    ]);
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0]]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(
        addrs(&t),
        vec![
            None,
            Some(ISP[0].to_string()),
            Some(INET_ICMP[0].to_string())
        ],
        "{t:#}"
    );
    assert_eq!(t["hops"][0]["received"], 0);
    assert_eq!(t["hops"][0]["sent"], 3);
    assert_eq!(t["reached"], true, "the trace goes on past the silent hop");
    assert!(out.status.success());
}

#[test]
fn a_trace_past_its_bound_is_cut_and_partial() {
    if !fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    net.break_link(Hop::Far);
    let started = Instant::now();
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0], "--timeout", "1s"]);
    let took = started.elapsed();
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(out.status.code(), Some(1), "not reached: exit 1");
    assert_eq!(t["partial"], true, "{t:#}");
    assert_eq!(t["reached"], false);
    let a = addrs(&t);
    assert_eq!(a[..2], some(&PATH[..2]), "{t:#}");
    assert!(a[2..].iter().all(Option::is_none), "{t:#}");
    let ms = t["duration_ms"].as_f64().unwrap();
    assert!((1000.0..1200.0).contains(&ms), "cut at 1 s: {ms} ms");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Without the bound the silence past the break ends it: five silent hops
    // after one probe timeout (2 s).
    let (t, _) = trace_in(&net.home, None, &[INET_ICMP[0]]);
    let t = t.unwrap();
    assert_eq!(t["partial"], false, "{t:#}");
    assert_eq!(t["hops"].as_array().unwrap().len(), 2 + 5, "{t:#}");
    assert_eq!(t["packets"], 3 * 7);
    let ms = t["duration_ms"].as_f64().unwrap();
    assert!((2000.0..3000.0).contains(&ms), "{ms} ms");
}

#[test]
fn unprivileged_trace_works_with_the_ping_group_range_or_names_both_fixes() {
    if !fakenet::can_run() {
        return;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v setpriv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crate::harness::daemon::require(found, "`setpriv` is not installed") {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    let nobody = Some("--reuid=nobody");

    net.home.sysctl("net.ipv4.ping_group_range", "1 0");
    let (_, out) = trace_in(&net.home, nobody, &[INET_ICMP[0]]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(FIX_SYSCTL), "{err}");
    assert!(err.contains("sudo setcap cap_net_raw+ep /"), "{err}");
    assert!(err.contains("os error 13"), "DGRAM error (EACCES): {err}");
    assert!(err.contains("os error 1)"), "RAW error (EPERM): {err}");

    net.home.sysctl("net.ipv4.ping_group_range", "65534 65534");
    let (t, out) = trace_in(&net.home, nobody, &[INET_ICMP[0]]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(t["mode"], "dgram");
    assert_eq!(addrs(&t), some(&PATH), "{t:#}");
    assert_eq!(t["reached"], true);

    // As root with the range closed: the raw socket, same path.
    net.home.sysctl("net.ipv4.ping_group_range", "1 0");
    let (t, _) = trace_in(&net.home, None, &[INET_ICMP[0]]);
    let t = t.unwrap();
    assert_eq!(t["mode"], "raw");
    assert_eq!(addrs(&t), some(&PATH), "{t:#}");
}

#[test]
fn udp_trace_lists_each_router_reaches_the_target_and_needs_no_privilege() {
    if !fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0], "--udp"]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(t["protocol"], "udp", "{t:#}");
    assert_eq!(t["mode"], "dgram", "{t:#}");
    assert_eq!(addrs(&t), some(&PATH), "{t:#}");
    assert_eq!(t["reached"], true, "the target's port unreachable: {t:#}");
    assert_eq!(t["partial"], false);
    assert_eq!(t["packets"], 9, "3 hops x 3 datagrams: {t:#}");
    for h in t["hops"].as_array().unwrap() {
        assert_eq!(h["received"], 3, "{t:#}");
        assert!(h.get("unreachable").is_none(), "{t:#}");
    }
    let text = net
        .home
        .command(&[BIN, "trace", "--udp", INET_ICMP[0]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    println!("{text}");
    assert!(
        text.contains("reached 10.231.100.1 in 3 hops; 9 packets"),
        "{text}"
    );
    assert!(text.contains("(udp dgram socket)"), "{text}");

    // As nobody with the ping group range closed and no capability: a UDP
    // socket needs neither.
    let found = Command::new("sh")
        .args(["-c", "command -v setpriv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if crate::harness::daemon::require(found, "`setpriv` is not installed") {
        net.home.sysctl("net.ipv4.ping_group_range", "1 0");
        let (t, out) = trace_in(&net.home, Some("--reuid=nobody"), &[INET_ICMP[0], "--udp"]);
        let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(addrs(&t), some(&PATH), "{t:#}");
        assert_eq!(t["reached"], true);
    }

    // The far link down: the trace ends at the last router before it, after
    // five silent hops.
    net.break_link(Hop::Far);
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0], "--udp"]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(out.status.code(), Some(1), "not reached: exit 1");
    assert_eq!(t["reached"], false, "{t:#}");
    assert_eq!(t["partial"], false, "{t:#}");
    let a = addrs(&t);
    assert_eq!(a[..2], some(&PATH[..2]), "{t:#}");
    assert_eq!(a.len(), 2 + 5, "{t:#}");
    assert!(a[2..].iter().all(Option::is_none), "{t:#}");
    assert_eq!(t["packets"], 3 * 7);
    let ms = t["duration_ms"].as_f64().unwrap();
    assert!((2000.0..3000.0).contains(&ms), "one probe timeout: {ms} ms");
    println!("broken after hop 2: {} datagrams in {ms} ms", t["packets"]);

    // IPv6 (IPV6_RECVERR, port unreachable is type 1 code 4): loopback.
    let (t, out) = trace_in(&net.home, None, &["::1", "--udp"]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(addrs(&t), some(&["::1"]), "{t:#}");
    assert_eq!(t["reached"], true, "{t:#}");
}

/// The outage of `group` in `/api/v1/outages` once its snapshot `key`
/// (`path_at_start`, `path_at_end`) is there.
fn outage_with(w: &Watcher, group: &str, key: &str) -> Value {
    w.wait(
        &format!("{group} outage with {key}"),
        Duration::from_secs(15),
        |w| {
            w.api("/api/v1/outages")
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|o| o["group"] == group && !o[key].is_null())
                .cloned()
        },
    )
}

/// The `path` lines of the journal.
fn path_lines(w: &Watcher) -> Vec<Value> {
    std::fs::read_to_string(w.data.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "path")
        .collect()
}

#[test]
fn outage_start_snapshot_ends_before_the_break_and_end_snapshot_reaches_the_target() {
    if !fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    let w = net.watch_with(Params::FAST, |c| {
        c.replacen("[daemon]\n", "[daemon]\nmax_traces_per_minute = 30\n", 1)
    });
    // The baseline of every group is taken at start.
    let baseline = w.wait("internet baseline", Duration::from_secs(10), |w| {
        w.api("/api/v1/paths?group=internet")
            .as_array()
            .unwrap()
            .first()
            .cloned()
    });
    assert_eq!(baseline["when"], "baseline");
    assert_eq!(baseline["id"], Value::Null);
    assert_eq!(addrs(&baseline), some(&PATH), "{baseline:#}");

    net.break_link(Hop::Far);
    let o = outage_with(&w, "internet", "path_at_start");
    let start = &o["path_at_start"];
    assert_eq!(start["reached"], false, "{o:#}");
    assert_eq!(
        start["last_hop"]["addr"], ISP[0],
        "the last router before the break: {o:#}"
    );
    assert_eq!(start["last_hop"]["ttl"], 2);
    assert_eq!(start["hops"], 2);
    net.repair(Hop::Far);
    w.wait_all_closed(Duration::from_secs(15));
    let o = outage_with(&w, "internet", "path_at_end");
    let end = &o["path_at_end"];
    assert_eq!(end["reached"], true, "{o:#}");
    assert_eq!(end["last_hop"]["addr"], INET_ICMP[0]);
    assert_eq!(end["hops"], 3);
    let id = o["id"].as_str().unwrap();

    // Full snapshots: the baseline, then the outage's start and end, tied to its id.
    let since = Timestamp::now() - Duration::from_secs(600);
    let all = w.api(&format!("/api/v1/paths?group=internet&since={since}"));
    let all = all.as_array().unwrap();
    let of_outage: Vec<&Value> = all.iter().filter(|p| p["id"] == id).collect();
    assert_eq!(of_outage.len(), 2, "{all:#?}");
    assert_eq!(of_outage[0]["when"], "start");
    assert_eq!(
        addrs(of_outage[0])[..2],
        some(&PATH[..2]),
        "{:#}",
        of_outage[0]
    );
    assert_eq!(of_outage[1]["when"], "end");
    assert_eq!(addrs(of_outage[1]), some(&PATH));
    println!("start snapshot: {}", of_outage[0]);
    println!("end snapshot: {}", of_outage[1]);
    println!("outage record: {o}");

    let m = w.api_text("/metrics");
    assert_eq!(
        sample(&m, "linkwatch_path_hops", &[("group", "internet")]),
        Some(3.0)
    );
    assert_eq!(
        sample(&m, "linkwatch_path_hops", &[("group", "lan")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "linkwatch_path_changes_total", &[("group", "internet")]),
        Some(0.0)
    );

    // The journal's chain holds the path lines, and the report reads them.
    w.verify();
    let out = Command::new(BIN)
        .args(["report", "--since", "1h", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    let section = &report[report
        .find("## Where the path stopped")
        .unwrap_or_else(|| panic!("no path section: {report}"))..];
    println!("{section}");
    assert!(
        section.contains(
            "at the start: stopped after hop 2 (10.231.2.1); the baseline reaches the target in 3 hops"
        ),
        "{section}"
    );
    assert!(
        section.contains("at the end: reaches the target in 3 hops"),
        "{section}"
    );
    assert!(
        section.contains("(hops: 10.231.1.1 > 10.231.2.1 > * x5)"),
        "{section}"
    );

    // The HTML and CSV reports say the same.
    let report_as = |format: &str| {
        let out = Command::new(BIN)
            .args(["report", "--since", "1h", "--format", format, "--data-dir"])
            .arg(&w.data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let html = report_as("html");
    let at = html
        .find("<h2>Where the path stopped</h2>")
        .unwrap_or_else(|| panic!("no path section: {html}"));
    println!("{}", &html[at..]);
    assert!(
        html[at..].contains(&format!("(<code>{id}</code>)")),
        "{html}"
    );
    assert!(
        html[at..].contains(
            "<li>at the start: stopped after hop 2 (10.231.2.1); the baseline reaches the target in 3 hops (hops: 10.231.1.1 &gt; 10.231.2.1 &gt; * x5)</li>"
        ),
        "{html}"
    );
    assert!(
        html[at..].contains("<li>at the end: reaches the target in 3 hops; the baseline reaches the target in 3 hops</li>"),
        "{html}"
    );
    let csv = report_as("csv");
    println!("{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",end_observed,path_at_start,path_at_end"),
        "{csv}"
    );
    let row = csv.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(
        row.ends_with(
            ",stopped after hop 2 (10.231.2.1); the baseline reaches the target in 3 hops,reaches the target in 3 hops; the baseline reaches the target in 3 hops"
        ),
        "{csv}"
    );

    // `linkwatch outages` carries the same summaries as the API.
    let out = Command::new(BIN)
        .args(["outages", "--json", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {listed:#}"));
    assert_eq!(listed["path_at_start"], o["path_at_start"], "{listed:#}");
    assert_eq!(listed["path_at_end"], o["path_at_end"], "{listed:#}");
    let out = Command::new(BIN)
        .args(["outages", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{table}");
    assert!(table.lines().next().unwrap().ends_with("PATH"), "{table}");
    let row = table.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(
        row.ends_with("start: stopped after hop 2 (10.231.2.1); end: reached in 3 hops"),
        "{table}"
    );
}

#[test]
fn an_outage_resumed_after_a_restart_gets_its_start_snapshot_then() {
    if !fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    // The first run does not trace: its outage has no start snapshot. The
    // internet group traces with UDP (recorded in each path event).
    let mut w = net.watch_with(Params::FAST, |c| {
        c.replacen("[daemon]\n", "[daemon]\nmax_traces_per_minute = 0\n", 1)
            .replacen(
                "name = \"internet\"\n",
                "name = \"internet\"\ntrace_protocol = \"udp\"\n",
                1,
            )
    });
    net.break_link(Hop::Far);
    let open = w.wait_open(&["internet"], Duration::from_secs(15));
    let id = open
        .iter()
        .find(|o| o.group == "internet")
        .unwrap()
        .id
        .clone();
    w.stop();
    assert!(path_lines(&w).is_empty(), "tracing was off");

    let config = std::fs::read_to_string(&w.config).unwrap().replacen(
        "max_traces_per_minute = 0\n",
        "max_traces_per_minute = 30\n",
        1,
    );
    std::fs::write(&w.config, config).unwrap();
    w.start();
    let o = outage_with(&w, "internet", "path_at_start");
    assert_eq!(o["id"], id.as_str(), "the same outage, resumed: {o:#}");
    let start = &o["path_at_start"];
    assert_eq!(start["reached"], false, "{o:#}");
    assert_eq!(start["last_hop"]["addr"], ISP[0], "{o:#}");
    let at: Timestamp = start["at"].as_str().unwrap().parse().unwrap();
    let began: Timestamp = o["start"].as_str().unwrap().parse().unwrap();
    assert!(at > began, "taken when the daemon came back: {o:#}");

    net.repair(Hop::Far);
    w.wait_all_closed(Duration::from_secs(15));
    let o = outage_with(&w, "internet", "path_at_end");
    assert_eq!(o["id"], id.as_str());
    assert_eq!(o["path_at_end"]["reached"], true, "{o:#}");
    let snaps: Vec<Value> = path_lines(&w)
        .into_iter()
        .filter(|p| p["id"] == id.as_str())
        .collect();
    let whens: Vec<&str> = snaps.iter().map(|p| p["when"].as_str().unwrap()).collect();
    assert_eq!(whens, ["start", "end"], "{snaps:#?}");
    for p in &snaps {
        assert_eq!(p["protocol"], "udp", "{p:#}");
        assert_eq!(p["mode"], "dgram", "{p:#}");
    }
    w.verify();
}

#[test]
fn a_flood_of_outages_starts_no_more_traces_than_the_limit() {
    if !fakenet::can_run() {
        return;
    }
    const LIMIT: usize = 5;
    let net = FakeNet::new();
    no_icmp_rate_limit(&net);
    let w = net.watch_with(Params::FAST, |c| {
        c.replacen(
            "[daemon]\n",
            &format!("[daemon]\nmax_traces_per_minute = {LIMIT}\ntrace_timeout = \"1s\"\n"),
            1,
        )
    });
    let t0 = Instant::now();
    // Four groups: four baselines at start, one trace left in this minute.
    w.wait("four baselines", Duration::from_secs(10), |w| {
        (path_lines(w).len() == 4).then_some(())
    });
    const FLAPS: usize = 4;
    for _ in 0..FLAPS {
        net.break_link(Hop::Far);
        w.wait_open(&["internet"], Duration::from_secs(10));
        // Longer than a trace's bound: the one that starts sees the break.
        std::thread::sleep(Duration::from_millis(1500));
        net.repair(Hop::Far);
        w.wait_all_closed(Duration::from_secs(15));
    }
    let elapsed = t0.elapsed();
    let outages = w.api_outages();
    assert!(
        outages.len() >= 2 * FLAPS,
        "internet and dns each went down per flap: {outages:#?}"
    );
    let lines = path_lines(&w);
    let m = w.api_text("/metrics");
    let started = sum(&m, "linkwatch_path_traces_total", &[]);
    println!(
        "{} outages ({} trace requests) in {elapsed:?}; traces started: {started}, path lines: {}",
        outages.len(),
        2 * outages.len() + 4,
        lines.len()
    );
    // No 60 s window holds more trace starts than the limit.
    let ats: Vec<Timestamp> = lines
        .iter()
        .map(|l| l["at"].as_str().unwrap().parse().unwrap())
        .collect();
    for a in &ats {
        let within = ats
            .iter()
            .filter(|b| **b >= *a && b.duration_since(*a) < jiff::SignedDuration::from_secs(60))
            .count();
        assert!(
            within <= LIMIT,
            "{within} traces within 60 s of {a}: {lines:#?}"
        );
    }
    assert!(started as usize >= lines.len().saturating_sub(1));
    if elapsed < Duration::from_secs(55) {
        assert_eq!(lines.len(), LIMIT, "{lines:#?}");
        // The fifth is an outage start cut at its 1 s bound: partial.
        let fifth = &lines[LIMIT - 1];
        assert_eq!(fifth["when"], "start", "{fifth:#}");
        assert_eq!(fifth["partial"], true, "{fifth:#}");
        assert!(fifth["duration_ms"].as_f64().unwrap() < 1200.0, "{fifth:#}");
    }
    w.verify();
}

#[test]
fn trace_keys_are_validated_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[daemon]
max_traces_per_minute = -1
trace_max_hops = 100
trace_timeout = "90s"

[[group]]
name = "g"
trace_every = "10s"
trace_target = "not a host!"
trace_protocol = "tcp"

[[target]]
name = "t"
group = "g"
kind = "icmp"
host = "127.0.0.1"
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for want in [
        format!(
            "{p}:2:25: key `daemon.max_traces_per_minute`: `max_traces_per_minute` (-1) must be in the range 0..=600"
        ),
        format!(
            "{p}:3:18: key `daemon.trace_max_hops`: `trace_max_hops` (100) must be in the range 1..=64"
        ),
        format!(
            "{p}:4:17: key `daemon.trace_timeout`: `trace_timeout` (90s) must be in the range 1s..=60s"
        ),
        format!(
            "{p}:8:15: key `group[0].trace_every`: `trace_every` (10s) must be in the range 1m..=7d"
        ),
        format!(
            "{p}:9:16: key `group[0].trace_target`: `trace_target` (not a host!) must be an IPv4 address"
        ),
        format!(
            "{p}:10:18: key `group[0].trace_protocol`: `trace_protocol` (tcp) must be \"icmp\" or \"udp\""
        ),
    ] {
        assert!(err.contains(&want), "missing {want}\nin:\n{err}");
    }
    assert!(err.contains("6 problems found"), "{err}");

    // Valid values parse into the model, defaults where unset.
    let cfg = linkwatch::config::parse(
        "[daemon]\nmax_traces_per_minute = 0\n[[group]]\nname = \"g\"\ntrace_every = \"2h\"\ntrace_target = \"10.0.0.1\"\ntrace_protocol = \"udp\"\n[[group]]\nname = \"h\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\n[[target]]\nname = \"u\"\ngroup = \"h\"\nkind = \"icmp\"\nhost = \"127.0.0.2\"\n",
        "inline",
    )
    .unwrap();
    assert_eq!(cfg.daemon.trace.max_per_minute, 0);
    assert_eq!(cfg.daemon.trace.max_hops, 30);
    assert_eq!(cfg.daemon.trace.timeout, Duration::from_secs(10));
    let g = &cfg.groups[0];
    assert_eq!(g.trace.every, Duration::from_secs(7200));
    assert_eq!(g.trace.protocol, TraceProtocol::Udp);
    assert_eq!(
        linkwatch::probe::trace::group_trace_host(&cfg, g).map(|h| h.to_string()),
        Some("10.0.0.1".to_string())
    );
    let h = &cfg.groups[1];
    assert_eq!(h.trace.every, Duration::from_secs(3600));
    assert_eq!(h.trace.protocol, TraceProtocol::Icmp, "the default");
    assert_eq!(
        linkwatch::probe::trace::group_trace_host(&cfg, h).map(|h| h.to_string()),
        Some("127.0.0.2".to_string()),
        "the group's first target with a host"
    );
}

/// The international cut as the ISP sees it: its route to the internet
/// withdrawn (upstream gone), so it answers every packet for the internet
/// with network unreachable (`!N`), within the kernel's ICMP rate limit.
fn withdraw_isp_route(net: &FakeNet) {
    net.isp.ip(&["route", "del", "10.231.100.0/24"]);
}

/// The snapshot taken at `when` of the outage `id`, in full.
fn snapshot_of(w: &Watcher, group: &str, id: &str, when: &str) -> Value {
    let since = Timestamp::now() - Duration::from_secs(600);
    let all = w.api(&format!("/api/v1/paths?group={group}&since={since}"));
    all.as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p["id"] == id && p["when"] == when)
        .cloned()
        .unwrap_or_else(|| panic!("no {when} snapshot of {id}: {all:#}"))
}

/// `linkwatch report` (markdown) and `linkwatch outages` of `w`'s data.
fn report_and_table(w: &Watcher) -> (String, String) {
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&w.data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    (run(&["report", "--since", "1h"]), run(&["outages"]))
}

/// Every target at 1 s: seven of them behind the cut (two ICMP, TCP, HTTP,
/// three DNS servers), each a packet a second that the ISP router would
/// answer with an ICMP error.
const ONE_SECOND: Params = Params {
    interval: Duration::from_secs(1),
    timeout: Duration::from_millis(500),
    fail_after: 3,
    recover_after: 2,
};

#[test]
fn isp_route_withdrawn_while_probes_spend_its_icmp_budget_the_start_snapshot_does_not_blame_the_home_router()
 {
    if !fakenet::can_run() {
        return;
    }
    // The kernel's ICMP rate limits as they are: 1 s per peer, a burst of 6.
    let net = FakeNet::new();
    let mut w = net.watch_with(ONE_SECOND, |c| c);
    let baseline = w.wait("internet baseline", Duration::from_secs(10), |w| {
        w.api("/api/v1/paths?group=internet")
            .as_array()
            .unwrap()
            .first()
            .cloned()
    });
    assert_eq!(
        addrs(&baseline).get(1).cloned().flatten().as_deref(),
        Some(ISP[0]),
        "the baseline has the ISP router at hop 2: {baseline:#}"
    );

    withdraw_isp_route(&net);
    let o = w.wait(
        "internet outage with its start snapshot",
        Duration::from_secs(30),
        |w| {
            w.api("/api/v1/outages")
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["group"] == "internet" && !o["path_at_start"].is_null())
                .cloned()
        },
    );
    let id = o["id"].as_str().unwrap().to_string();
    let snap = snapshot_of(&w, "internet", &id, "start");
    println!("start snapshot: {snap:#}");
    let (report, table) = report_and_table(&w);
    let section = &report[report
        .find("## Where the path stopped")
        .unwrap_or_else(|| panic!("no path section: {report}"))..];
    println!("{section}\n{table}");
    // What the snapshot said before re-probes: the home router is the last
    // hop, the break right after it.
    assert!(
        !section.contains("stopped after hop 1 (10.231.1.1)"),
        "the start snapshot blames the home router: {section}"
    );
    assert_start_snapshot(&o, &snap, section, &table);
    let held = sum(
        &w.api_text("/metrics"),
        "linkwatch_probes_skipped_total",
        &[("reason", "hold")],
    );
    println!("probe slots held for re-probes: {held}");
    assert!(
        held > 0.0,
        "the re-probes held the probes of the groups in an outage"
    );

    // Without the daemon's probes the ISP router has its budget back and
    // the same trace gets its network unreachable at hop 2 (the evidence).
    w.stop();
    std::thread::sleep(REFILL);
    let (t, out) = trace_in(&net.home, None, &[INET_ICMP[0]]);
    let t = t.unwrap_or_else(|| panic!("no JSON: {out:?}"));
    assert_eq!(addrs(&t), some(&PATH[..2]), "{t:#}");
    let why = t["hops"][1]["unreachable"].as_str().unwrap_or_default();
    assert!(why.starts_with("network unreachable"), "{t:#}");
}

/// What a Linux router needs to answer one network unreachable again: the
/// error is charged twice against its 1 s per-peer budget.
const REFILL: Duration = Duration::from_millis(2500);

/// The probes of the groups in an outage are held for each re-probe
/// (`linkwatch_probes_skipped_total{reason="hold"}`), so the ISP router has
/// an answer again: the re-probe of hop 2 gets its network unreachable, and
/// the snapshot names the ISP router, not the home router.
fn assert_start_snapshot(o: &Value, snap: &Value, section: &str, table: &str) {
    let start = &o["path_at_start"];
    assert_eq!(start["reached"], false, "{o:#}");
    assert_eq!(start["rate_limited"], false, "{o:#}");
    assert_eq!(start["last_hop"]["addr"], ISP[0], "{o:#}");
    assert_eq!(start["last_hop"]["ttl"], 2, "{o:#}");
    assert_eq!(addrs(snap), some(&PATH[..2]), "{snap:#}");
    assert_eq!(snap["reprobe"]["ttl"], 2, "{snap:#}");
    assert_eq!(snap["reprobe"]["received"], 1, "{snap:#}");
    let why = snap["hops"][1]["unreachable"].as_str().unwrap_or_default();
    assert!(why.starts_with("network unreachable"), "{snap:#}");
    assert_eq!(snap["partial"], false, "{snap:#}");
    assert!(
        section.contains(
            "at the start: stopped after hop 2 (10.231.2.1): network unreachable; the baseline reaches the target in 3 hops"
        ),
        "{section}"
    );
    let id = o["id"].as_str().unwrap();
    let row = table.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(
        row.ends_with("start: stopped after hop 2 (10.231.2.1)"),
        "{table}"
    );
}
