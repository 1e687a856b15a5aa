//! Degradation periods of the real binary in the fake internet (see
//! `fakenet`), with slow-link faults made without netem: random loss by
//! iptables `statistic` on the router's uplink, bufferbloat by a tbf queue
//! plus a bulk TCP flow, and `kill -9` in the middle of a degradation.
//!
//! Short windows (20 s) and intervals (150 ms) keep each scenario around a
//! minute. Fidelity figures are printed as `FIDELITY` lines (`--nocapture`).
//!
//! Throughput: a domestic speed-test server in the ISP's network and an
//! international one behind the far link, and tbf on the far link only.

use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::daemon::{BIN, sample};
use crate::harness::fakenet::{FakeNet, INET_ICMP, ISP, Params, Watcher, ms_between, timed};

/// The degradation window of these scenarios.
const WINDOW: Duration = Duration::from_secs(20);
/// Injected loss on the uplink.
const LOSS: f64 = 0.15;

/// 150 ms probes; `fail_after` 8 so that 15 % loss never makes an outage
/// (0.28⁸ = 3.8e-5 per probe for HTTP, the worst target, and a group needs
/// every target down).
const PARAMS: Params = Params {
    interval: Duration::from_millis(150),
    timeout: Duration::from_millis(100),
    fail_after: 8,
    recover_after: 2,
};

fn degraded_toml(extra: &str) -> String {
    format!(
        "\n[defaults.degraded]\nwindow = \"{}s\"\nmin_samples = 20\n{extra}",
        WINDOW.as_secs()
    )
}

/// One degradation as the API and the CLI show it.
#[derive(Debug, Clone)]
pub(crate) struct Deg {
    pub id: String,
    pub group: String,
    pub cause: String,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub gaps: usize,
    pub triggers: Vec<String>,
    pub raw: Value,
}

pub(crate) fn parse(v: &Value) -> Vec<Deg> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|d| Deg {
            id: d["id"].as_str().unwrap().into(),
            group: d["group"].as_str().unwrap().into(),
            cause: d["cause"].as_str().unwrap().into(),
            start: d["start"].as_str().unwrap().parse().unwrap(),
            end: d["end"].as_str().map(|e| e.parse().unwrap()),
            gaps: d["gaps"].as_array().unwrap().len(),
            triggers: d["triggers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect(),
            raw: d.clone(),
        })
        .collect()
}

fn api_degradations(w: &Watcher) -> Vec<Deg> {
    parse(&w.api("/api/v1/degradations"))
}

fn cli_degradations(w: &Watcher) -> Vec<Deg> {
    let out = Command::new(BIN)
        .args(["outages", "--degraded", "--json", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "linkwatch outages --degraded failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&serde_json::from_slice(&out.stdout).unwrap())
}

/// Polls the API until `done` holds for its degradations.
pub(crate) fn wait_degradations(
    w: &Watcher,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[Deg]) -> bool,
) -> Vec<Deg> {
    let until = std::time::Instant::now() + timeout;
    loop {
        let d = api_degradations(w);
        if done(&d) {
            return d;
        }
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}: {d:#?}\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every group is judged and none is degraded (the baseline).
fn wait_all_fine(w: &Watcher) {
    let until = std::time::Instant::now() + WINDOW;
    loop {
        let m = w.api_text("/metrics");
        let fine = ["lan", "isp", "internet", "dns"]
            .iter()
            .all(|g| sample(&m, "linkwatch_group_degraded", &[("group", g)]) == Some(0.0));
        if fine {
            return;
        }
        assert!(std::time::Instant::now() < until, "baseline not fine:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn open_groups(d: &[Deg]) -> Vec<&str> {
    d.iter()
        .filter(|d| d.end.is_none())
        .map(|d| d.group.as_str())
        .collect()
}

/// Random loss of `LOSS` on the router's uplink. The ICMP echo requests to
/// the ISP's addresses have a rule of their own, counted, so that the loss
/// actually injected on the `isp` group's probes can be read back.
struct Loss<'a> {
    net: &'a FakeNet,
}

impl<'a> Loss<'a> {
    fn start(net: &'a FakeNet) -> (Self, Timestamp) {
        let up = net.uplink.b_if.as_str();
        let isp = ISP.join(",");
        let p = LOSS.to_string();
        let rules: [Vec<&str>; 3] = [
            vec![
                "-o",
                up,
                "-p",
                "icmp",
                "--icmp-type",
                "echo-request",
                "-d",
                &isp,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
            vec![
                "-o",
                up,
                "-p",
                "icmp",
                "--icmp-type",
                "echo-request",
                "-d",
                &isp,
                "-j",
                "ACCEPT",
            ],
            vec![
                "-o",
                up,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
        ];
        let at = timed(|| {
            for r in &rules {
                let mut args = vec!["iptables", "-w", "-A", "FORWARD"];
                args.extend(r.iter().copied());
                net.router.exec(&args);
            }
        });
        (Self { net }, at)
    }

    /// Zeroes the rule counters.
    fn zero(&self) {
        self.net.router.exec(&["iptables", "-w", "-Z", "FORWARD"]);
    }

    /// (dropped, passed) echo requests to the ISP's addresses since the last zero.
    fn isp_counts(&self) -> (f64, f64) {
        let text = self
            .net
            .router
            .exec(&["iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n"]);
        let (mut dropped, mut passed) = (0.0, 0.0);
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !ISP.contains(&f[8]) {
                continue;
            }
            let pkts: f64 = f[0].parse().unwrap();
            match f[2] {
                "DROP" => dropped += pkts,
                "ACCEPT" => passed += pkts,
                _ => {}
            }
        }
        (dropped, passed)
    }

    fn stop(self) -> Timestamp {
        timed(|| {
            self.net.router.exec(&["iptables", "-w", "-F", "FORWARD"]);
        })
    }
}

/// Checks the recorded edges against the injected ones, as the README
/// bounds them: a loss period starts at its first lost probe and ends at the
/// first probe after its last lost one, so each edge lies within 2 × the
/// interval + 2 s of the fault's (the start never more than one interval
/// before the injection; the end may come before the removal by the gap
/// after the last probe the fault happened to take).
fn check_edges(what: &str, d: &Deg, injected: Timestamp, removed: Timestamp) -> (f64, f64) {
    let limit = (PARAMS.interval * 2 + Duration::from_secs(2)).as_secs_f64() * 1e3;
    let before = PARAMS.interval.as_secs_f64() * 1e3;
    let start_err = ms_between(d.start, injected);
    let end_err = ms_between(d.end.unwrap(), removed);
    eprintln!(
        "FIDELITY {what} {}: start {start_err:+.0} ms after the injection, end {end_err:+.0} ms after the removal (limit {limit:.0} ms)",
        d.group
    );
    assert!(
        (-before..=limit).contains(&start_err),
        "{what}: start {start_err} ms off: {d:#?}"
    );
    assert!(
        (-limit..=limit).contains(&end_err),
        "{what}: end {end_err} ms off: {d:#?}"
    );
    (start_err, end_err)
}

/// 15 % random loss on the ISP link only: `isp` degraded with trigger `loss`,
/// `internet` and `dns` degraded with cause `isp`, `lan` not, no outage; the
/// loss ratio of the window matches the injected one within 3 points over
/// at least 300 probes; when the loss stops, every degradation is announced
/// ended once its window is clean, its end back-dated to the probe after its
/// last loss (see `check_edges`), with its figures.
#[test]
fn isp_loss_is_an_isp_degradation_with_downstream_cause_isp_and_ends_when_the_loss_stops() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch_with(PARAMS, |c| c + &degraded_toml("loss_above = \"5%\"\n"));
    wait_all_fine(&w);
    let (loss, injected) = Loss::start(&net);
    let affected = ["isp", "internet", "dns"];
    wait_degradations(
        &w,
        WINDOW + Duration::from_secs(10),
        "isp, internet, dns degraded",
        |d| affected.iter().all(|g| open_groups(d).contains(g)),
    );
    // The window now holds only lossy probes: measure one whole window.
    loss.zero();
    std::thread::sleep(WINDOW);
    let metrics = w.api_text("/metrics");
    let (dropped, passed) = loss.isp_counts();
    let measured = sample(&metrics, "linkwatch_group_loss_ratio", &[("group", "isp")]).unwrap();
    let injected_ratio = dropped / (dropped + passed);
    eprintln!(
        "FIDELITY loss: measured {:.2} % over the window, injected {:.2} % ({dropped} of {} isp probes dropped; nominal {:.0} %), error {:+.2} points",
        measured * 100.0,
        injected_ratio * 100.0,
        dropped + passed,
        LOSS * 100.0,
        (measured - injected_ratio) * 100.0
    );
    assert!(dropped + passed >= 300.0, "{dropped} + {passed} probes");
    assert!((measured - injected_ratio).abs() <= 0.03, "{metrics}");
    assert_eq!(
        sample(&metrics, "linkwatch_group_degraded", &[("group", "lan")]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "linkwatch_group_degraded", &[("group", "isp")]),
        Some(1.0)
    );
    let removed = loss.stop();
    let all = wait_degradations(
        &w,
        WINDOW * 2 + Duration::from_secs(5),
        "every degradation to end",
        |d| open_groups(d).is_empty(),
    );
    assert_eq!(w.api_outages(), Vec::new(), "loss is not an outage");
    for g in affected {
        let of: Vec<&Deg> = all.iter().filter(|d| d.group == g).collect();
        assert_eq!(of.len(), 1, "one {g} degradation: {all:#?}");
        let d = of[0];
        assert_eq!(d.cause, "isp", "{d:#?}");
        assert!(d.triggers.contains(&"loss".to_string()), "{d:#?}");
        check_edges("loss", d, injected, removed);
        let median = d.raw["period"]["median"]["loss_ratio"].as_f64().unwrap();
        assert!(median > 0.05, "{g}: median loss {median}: {d:#?}");
        assert!(
            d.raw["period"]["samples"].as_u64().unwrap() >= 100,
            "{d:#?}"
        );
    }
    assert!(all.iter().all(|d| d.group != "lan"), "{all:#?}");
    let api_ids: Vec<String> = all.iter().map(|d| d.id.clone()).collect();
    w.stop();
    let cli: Vec<String> = cli_degradations(&w).iter().map(|d| d.id.clone()).collect();
    assert_eq!(api_ids, cli, "API and CLI disagree");
    w.verify();
    let events = w.journal_events();
    assert_eq!(events.get("degraded_start"), Some(&3), "{events:?}");
    assert_eq!(events.get("degraded_end"), Some(&3), "{events:?}");
    assert_eq!(events.get("outage_start"), None, "{events:?}");
    // The report has the slow periods.
    let out = Command::new(BIN)
        .args(["report", "--since", "1d", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    eprintln!("REPORT EXCERPT\n{report}");
    assert!(report.contains("Slow periods"), "{report}");
    assert!(report.contains("| isp | isp | loss |"), "{report}");
    for format in ["csv", "json", "html"] {
        // CSV: one table per run; the slow periods are `--table slow-periods`.
        let table: &[&str] = if format == "csv" {
            &["--table", "slow-periods"]
        } else {
            &[]
        };
        let out = Command::new(BIN)
            .args(["report", "--since", "1d", "--format", format])
            .args(table)
            .arg("--data-dir")
            .arg(&w.data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{format}: {text}");
        let needle = match format {
            "csv" => api_ids[0].as_str(),
            "json" => "\"slow_periods\"",
            _ => "<h2>Slow periods</h2>",
        };
        assert!(text.contains(needle), "{format}: {text}");
    }
}

/// `kill -9` during an `isp` degradation and a restart while the loss goes
/// on: one degradation per group, the same id before and after, with one gap.
#[test]
fn kill9_during_a_degradation_and_restart_is_one_degradation_with_a_gap() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let mut w = net.watch_with(PARAMS, |c| c + &degraded_toml("loss_above = \"5%\"\n"));
    wait_all_fine(&w);
    let (loss, injected) = Loss::start(&net);
    let before = wait_degradations(&w, WINDOW + Duration::from_secs(10), "isp degraded", |d| {
        open_groups(d).contains(&"isp")
    });
    let id = before.iter().find(|d| d.group == "isp").unwrap().id.clone();
    let killed = w.kill9();
    std::thread::sleep(Duration::from_secs(2));
    w.start();
    w.wait_all_up(Duration::from_secs(15));
    // The adopted degradation continues once the window sees the loss again.
    std::thread::sleep(WINDOW / 2);
    let removed = loss.stop();
    let all = wait_degradations(
        &w,
        WINDOW * 2 + Duration::from_secs(10),
        "the degradations to end",
        |d| open_groups(d).is_empty() && d.iter().any(|d| d.id == id),
    );
    let isp: Vec<&Deg> = all.iter().filter(|d| d.group == "isp").collect();
    assert_eq!(isp.len(), 1, "{all:#?}\n{}", w.log());
    let d = isp[0];
    assert_eq!(d.id, id);
    assert_eq!(d.gaps, 1, "{d:#?}");
    let gap_from: Timestamp = d.raw["gaps"][0]["from"].as_str().unwrap().parse().unwrap();
    assert!(
        gap_from <= killed,
        "gap starts at the last sign of life: {d:#?}"
    );
    assert_eq!(d.raw["end_observed"], Value::Bool(true), "{d:#?}");
    check_edges("kill9", d, injected, removed);
    w.stop();
    w.verify();
    let events = w.journal_events();
    assert!(
        events.get("degraded_resume").copied().unwrap_or(0) >= 1,
        "{events:?}"
    );
}

/// Bufferbloat: the ISP's link towards the router throttled by tbf at
/// 1 Mbit/s with a 200 ms queue, filled by a bulk TCP flow from the internet
/// to home: the RTT of every probe behind the router rises and `rtt_p95`
/// trips for `isp` (the farthest-upstream group that is slow).
#[test]
fn bufferbloat_trips_rtt_p95() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    let p = Params {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(280),
        fail_after: 8,
        recover_after: 2,
    };
    let mut w = net.watch_with(p, |c| c + &degraded_toml("rtt_p95_above = \"80ms\"\n"));
    wait_all_fine(&w);
    let dev = net.uplink.a_if.as_str();
    let home = net.lan.b_v4.to_string();
    // A sink in home and a bounded bulk sender in inet (at most 40 MB or 90 s).
    net.home.spawn(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',5009))\ns.listen(1)\nc,_=s.accept()\nwhile c.recv(65536):\n    pass\n",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let sender = format!(
        "import socket,time\nc=socket.create_connection(('{home}',5009))\nb=b'x'*65536\nt=time.time()+90\nn=0\nwhile n<40_000_000 and time.time()<t:\n    c.sendall(b)\n    n+=len(b)\n"
    );
    let injected = timed(|| {
        net.isp.exec(&[
            "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "1mbit", "burst", "4kb",
            "latency", "200ms",
        ]);
        net.inet.spawn(&["python3", "-c", &sender]);
    });
    let d = wait_degradations(
        &w,
        WINDOW + Duration::from_secs(15),
        "isp degraded by RTT",
        |d| open_groups(d).contains(&"isp"),
    );
    let metrics = w.api_text("/metrics");
    let isp = d.iter().find(|d| d.group == "isp").unwrap();
    let p95 = isp.raw["figures"]["rtt_p95_seconds"].as_f64().unwrap();
    eprintln!(
        "FIDELITY bufferbloat: isp degraded {:+.0} ms after the queue filled, triggers {:?}, window rtt p95 {:.0} ms",
        ms_between(isp.start, injected),
        isp.triggers,
        p95 * 1e3
    );
    assert!(isp.triggers.contains(&"rtt_p95".to_string()), "{isp:#?}");
    assert_eq!(isp.cause, "isp");
    assert!(p95 > 0.08, "{isp:#?}");
    assert!(
        sample(
            &metrics,
            "linkwatch_group_rtt_seconds",
            &[("group", "isp"), ("quantile", "0.95")]
        )
        .unwrap()
            > 0.08,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "linkwatch_group_degraded", &[("group", "lan")]),
        Some(0.0),
        "{metrics}"
    );
    w.stop();
    w.verify();
}

/// The speed-test servers' port; the international one's address (on
/// `inet`'s `lo`, behind the far link), and the domestic one's (the ISP's own
/// network, `isp`'s `lo`: its path never crosses the far link).
pub(crate) const TP_PORT: u16 = 8080;
pub(crate) const INTL_TP: &str = "10.231.100.10";
const DOMESTIC_TP: &str = ISP[2];
/// The international bottleneck, Mbit/s.
const THROTTLE_MBIT: u32 = 4;
/// Throughput targets test every 10 s (the minimum), at most 3 s each.
const TP_INTERVAL: Duration = Duration::from_secs(10);
const TP_MAX_DURATION: Duration = Duration::from_secs(3);
/// The promise, and the threshold as a share of it: 20 Mbit/s.
const PLAN_MBIT: f64 = 100.0;
const BELOW_PERCENT: f64 = 20.0;

/// `[plan]`, two groups below `isp` with a throughput threshold of their
/// own, each with an ICMP target (so it is judged up at once) and a
/// download test (2 streams, at most 4 MB or 3 s). The tests have
/// `fail_after = 1`: a degradation is announced only once the group could
/// have been called down (`fail_after` × the longest interval of its
/// targets), which this scenario's `fail_after` (8) would stretch to 80 s.
fn throughput_toml(config: String) -> String {
    let mut s = config;
    s += &format!("\n[plan]\ndownload = \"{PLAN_MBIT} Mbit/s\"\n");
    for (group, icmp, server) in [
        ("domestic", DOMESTIC_TP, DOMESTIC_TP),
        ("international", INET_ICMP[0], INTL_TP),
    ] {
        s += &format!(
            "\n[[group]]\nname = \"{group}\"\nneeds = \"isp\"\n[group.degraded]\nwindow = \"{}s\"\nmin_samples = 20\nthroughput_below = \"{BELOW_PERCENT}%\"\n",
            WINDOW.as_secs()
        );
        s += &format!(
            "\n[[target]]\nname = \"{group}-icmp\"\ngroup = \"{group}\"\nkind = \"icmp\"\nhost = \"{icmp}\"\n"
        );
        s += &format!(
            "\n[[target]]\nname = \"{group}-download\"\ngroup = \"{group}\"\nkind = \"throughput\"\n\
             url = \"http://{server}:{TP_PORT}/big.bin\"\nstreams = 2\ninterval = \"{}s\"\ntimeout = \"2s\"\n\
             max_duration = \"{}s\"\nmax_bytes = \"4 MB\"\nmin_bytes = \"100 kB\"\nfail_after = 1\n",
            TP_INTERVAL.as_secs(),
            TP_MAX_DURATION.as_secs()
        );
    }
    s
}

/// The last good test of `target`, bits per second, from `/metrics` (bytes there).
fn last_test(metrics: &str, target: &str) -> Option<f64> {
    sample(
        metrics,
        "linkwatch_throughput_bytes_per_second",
        &[("target", target), ("direction", "download")],
    )
    .map(|bytes| bytes * 8.0)
}

/// Good tests of `target` so far.
fn tests_of(metrics: &str, target: &str) -> f64 {
    sample(
        metrics,
        "linkwatch_throughput_tests_bytes_per_second_count",
        &[("target", target)],
    )
    .unwrap_or(0.0)
}

/// International throttled by tbf (4 Mbit/s, on the far link only) while
/// domestic stays fast: exactly one `international` degradation, trigger
/// `throughput`, cause `international`, its edges within one window + one
/// test interval of the throttle's start and removal (a test already running
/// when the throttle starts may date it up to one test earlier); none for
/// domestic. The report then judges the tests against `[plan]`.
#[test]
fn throttled_international_is_one_throughput_degradation_and_domestic_none() {
    if !crate::harness::fakenet::can_run() {
        return;
    }
    let net = FakeNet::new();
    net.inet
        .ip(&["addr", "add", &format!("{INTL_TP}/32"), "dev", "lo"]);
    for (ns, addr) in [(&net.inet, INTL_TP), (&net.isp, DOMESTIC_TP)] {
        ns.spawn_inner(
            "throughput_wired::inner_throughput_server",
            &[("LWT_TP_LISTEN", &format!("{addr}:{TP_PORT}"))],
        );
        ns.wait_listening(TP_PORT);
    }
    // Probes wait behind at most 64 ms of tbf queue: a 250 ms timeout never
    // turns the throttle into loss or an outage.
    let p = Params {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(250),
        fail_after: 8,
        recover_after: 2,
    };
    let mut w = net.watch_with(p, throughput_toml);
    let (intl, domestic) = ("international-download", "domestic-download");
    // Baseline: a good test of each, both fast, nothing degraded.
    let until = std::time::Instant::now() + TP_INTERVAL * 2 + Duration::from_secs(5);
    let baseline = loop {
        let m = w.api_text("/metrics");
        if tests_of(&m, intl) >= 1.0 && tests_of(&m, domestic) >= 1.0 {
            break m;
        }
        assert!(
            std::time::Instant::now() < until,
            "no tests:\n{m}\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let threshold = PLAN_MBIT * 1e6 * BELOW_PERCENT / 100.0;
    for t in [intl, domestic] {
        let bps = last_test(&baseline, t).unwrap();
        eprintln!("FIDELITY throughput baseline {t}: {:.1} Mbit/s", bps / 1e6);
        assert!(
            bps > threshold * 2.0,
            "{t} is slow before the throttle: {bps}"
        );
    }
    assert_eq!(
        sample(
            &baseline,
            "linkwatch_plan_bytes_per_second",
            &[("direction", "download")]
        ),
        Some(PLAN_MBIT * 1e6 / 8.0)
    );
    assert_eq!(api_degradations(&w).len(), 0);

    let injected = net.throttle_far(THROTTLE_MBIT);
    let open = wait_degradations(
        &w,
        WINDOW + TP_INTERVAL * 2 + Duration::from_secs(10),
        "international degraded",
        |d| open_groups(d).contains(&"international"),
    );
    // Two throttled tests of each target since the throttle.
    let from = (
        tests_of(&w.api_text("/metrics"), intl),
        tests_of(&w.api_text("/metrics"), domestic),
    );
    let until = std::time::Instant::now() + TP_INTERVAL * 3;
    let throttled = loop {
        let m = w.api_text("/metrics");
        if tests_of(&m, intl) >= from.0 + 1.0 && tests_of(&m, domestic) >= from.1 + 1.0 {
            break m;
        }
        assert!(std::time::Instant::now() < until, "no new tests:\n{m}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let measured = last_test(&throttled, intl).unwrap();
    let shaped = f64::from(THROTTLE_MBIT) * 1e6;
    let fast = last_test(&throttled, domestic).unwrap();
    let d = open.iter().find(|d| d.group == "international").unwrap();
    let at_start = d.raw["figures"]["throughput_bps"].as_f64().unwrap();
    eprintln!(
        "FIDELITY throughput throttled: international {:.2} Mbit/s under a {THROTTLE_MBIT} Mbit/s tbf ({:+.1} %), window median at the start {:.2} Mbit/s; domestic {:.1} Mbit/s",
        measured / 1e6,
        (measured - shaped) / shaped * 100.0,
        at_start / 1e6,
        fast / 1e6
    );
    assert!(
        (measured - shaped).abs() / shaped <= 0.25,
        "international {measured} bit/s under a {shaped} bit/s tbf"
    );
    assert!(at_start < threshold, "{d:#?}");
    assert!(fast > threshold * 2.0, "domestic slowed down: {fast}");
    assert_eq!(
        sample(
            &throttled,
            "linkwatch_group_degraded",
            &[("group", "domestic")]
        ),
        Some(0.0),
        "{throttled}"
    );

    let removed = net.unthrottle_far();
    let all = wait_degradations(
        &w,
        WINDOW * 2 + TP_INTERVAL * 2 + Duration::from_secs(5),
        "the international degradation to end",
        |d| open_groups(d).is_empty(),
    );
    assert_eq!(all.len(), 1, "exactly one degradation: {all:#?}");
    let d = &all[0];
    assert_eq!(
        (d.group.as_str(), d.cause.as_str()),
        ("international", "international"),
        "{d:#?}"
    );
    assert_eq!(d.triggers, ["throughput"], "{d:#?}");
    assert_eq!(w.api_outages(), Vec::new(), "a throttle is not an outage");
    // Edges: within one window + one test interval (and its jitter) after
    // the change; a test running when the throttle started (or ended) is
    // dated at its own start, up to one test before.
    let late = (WINDOW + TP_INTERVAL + TP_INTERVAL / 10).as_secs_f64() * 1e3;
    let early = (TP_MAX_DURATION + Duration::from_secs(2)).as_secs_f64() * 1e3;
    let start_err = ms_between(d.start, injected);
    let end_err = ms_between(d.end.unwrap(), removed);
    eprintln!(
        "FIDELITY throughput degradation: start {start_err:+.0} ms after the throttle, end {end_err:+.0} ms after its removal (allowed -{early:.0}..+{late:.0} ms)"
    );
    assert!((-early..=late).contains(&start_err), "{d:#?}");
    assert!((-early..=late).contains(&end_err), "{d:#?}");
    let median = d.raw["period"]["median"]["throughput_bps"]
        .as_f64()
        .unwrap();
    assert!(median < threshold, "{d:#?}");

    w.stop();
    w.verify();
    let events = w.journal_events();
    assert_eq!(events.get("degraded_start"), Some(&1), "{events:?}");
    // The report: the slow period and the tests against the plan.
    let report = |format: &str| {
        let out = Command::new(BIN)
            .args(["report", "--since", "1d", "--format", format, "--data-dir"])
            .arg(&w.data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{format}: {text}");
        text
    };
    let md = report("markdown");
    eprintln!("REPORT EXCERPT\n{md}");
    assert!(
        md.contains("| international | international | throughput |"),
        "{md}"
    );
    assert!(md.contains("## Speed against the plan"), "{md}");
    let json: Value = serde_json::from_str(&report("json")).unwrap();
    let rows = json["speed_against_plan"]["rows"].as_array().unwrap();
    let all_day = rows.iter().find(|r| r["hours"] == "all").unwrap();
    assert!(all_day["tests"].as_u64().unwrap() >= 6, "{all_day}");
    assert_eq!(all_day["plan_bps"][0].as_f64(), Some(PLAN_MBIT * 1e6));
    // Every throttled international test is under a quarter of the plan
    // (4 of 100 Mbit/s); no domestic test is under half of it.
    let target = |name: &str| {
        json["speed_against_plan"]["by_target"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {json}"))
            .clone()
    };
    assert!(
        target(intl)["below_25_percent"].as_u64().unwrap() >= 2,
        "{json}"
    );
    assert_eq!(target(domestic)["below_50_percent"], 0, "{json}");
    let html = report("html");
    assert!(html.contains("<section id=\"plan\">"), "{html}");
    assert!(
        html.contains("<rect class=\"slow\""),
        "slow period on the timeline: {html}"
    );
    // A plan given on the command line replaces the recorded one.
    let out = Command::new(BIN)
        .args([
            "report",
            "--since",
            "1d",
            "--format",
            "json",
            "--plan-download",
            "1 Gbit/s",
            "--data-dir",
        ])
        .arg(&w.data)
        .output()
        .unwrap();
    let given: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        given["speed_against_plan"]["rows"][2]["plan_bps"][0].as_f64(),
        Some(1e9),
        "{given}"
    );
    let bad = Command::new(BIN)
        .args([
            "report",
            "--since",
            "1d",
            "--plan-download",
            "100 mbps",
            "--data-dir",
        ])
        .arg(&w.data)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}
