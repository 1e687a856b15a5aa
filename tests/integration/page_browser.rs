//! The status page, an outage's detail view and the HTML report in a real
//! browser (Debian's headless `chromium`), inside a namespace holding only
//! `lo`: nothing the page could ask for outside the daemon exists there.
//!
//! The daemon runs with a recorded history (three days of per-minute rows
//! with an unmonitored stretch, written before it starts), then lives
//! through an outage that spans a `kill -9` and restart, and ends with an
//! outage in progress. Screenshots at 390 px and 1280 px go to
//! `target/screenshots/`; the DOM (`--dump-dom`) is checked for the verdict,
//! every group's `data-state`, the bars and the charts; Chromium's log must
//! show no console message (script errors, CSP refusals) at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use linkwatch::history::HistoryStore;
use linkwatch::probe::{Info, Observation, Outcome, ProbeResult};
use serde_json::Value;

use crate::harness::daemon::{BIN, Daemon, require};
use crate::harness::netns::{Netns, require_root};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where screenshots go: `<target>/screenshots`.
fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn can_run() -> bool {
    require_root()
        && require(
            Path::new(CHROMIUM).exists(),
            "chromium is not installed (apt-get install chromium)",
        )
        && require(which("iptables"), "iptables is not installed")
        && require(which("curl"), "curl is not installed")
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs headless Chromium in `ns` on `url` with `extra` arguments (bounded
/// by `timeout`); a fresh profile each time.
fn chromium(ns: &Netns, url: &str, width: u32, height: u32, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let size = format!("--window-size={width},{height}");
    let user_dir = format!("--user-data-dir={}", profile.path().display());
    let mut args = vec![
        "timeout",
        "90",
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        &size,
        &user_dir,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = ns.command(&args).stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "chromium {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Console messages of the page (script errors, CSP refusals, failed
/// loads) in Chromium's log; Chromium's own internal pages (`chrome://`,
/// e.g. its new-tab components) are not the page under test.
fn console_messages(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Refused to")
                || l.contains("Uncaught")
                || l.contains("net::ERR_")
        })
        .filter(|l| !l.contains("source: chrome://"))
        .map(str::to_string)
        .collect()
}

/// Screenshots `url` at 390 px and 1280 px as `<name>-390.png`, `<name>-1280.png`;
/// returns the DOM at 1280 px after layout, checked for console messages.
fn look_at(ns: &Netns, url: &str, name: &str, heights: (u32, u32)) -> String {
    let dir = shots_dir();
    for (w, h) in [(390, heights.0), (1280, heights.1)] {
        let file = dir.join(format!("{name}-{w}.png"));
        let _ = std::fs::remove_file(&file);
        let arg = format!("--screenshot={}", file.display());
        let out = chromium(ns, url, w, h, &[&arg]);
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 5_000),
            "no screenshot {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let msgs = console_messages(&out.stderr);
        assert!(
            msgs.is_empty(),
            "{name} at {w} px: console messages: {msgs:#?}"
        );
        println!("SCREENSHOT {}", file.display());
    }
    let out = chromium(
        ns,
        url,
        1280,
        heights.1,
        &["--virtual-time-budget=3000", "--dump-dom"],
    );
    let msgs = console_messages(&out.stderr);
    assert!(msgs.is_empty(), "{name}: console messages: {msgs:#?}");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    no_outside_references(&dom, name);
    dom
}

/// The DOM names nothing outside the daemon: every `src`, `href` and
/// `url(` is relative, and there is no script.
fn no_outside_references(dom: &str, name: &str) {
    assert!(!dom.contains("<script"), "{name}: the page has a script");
    for attr in ["src=\"", "href=\"", "url(", "action=\""] {
        for (i, _) in dom.match_indices(attr) {
            let v = &dom[i + attr.len()..];
            assert!(
                v.starts_with('/') || v.starts_with('#') || v.starts_with('?'),
                "{name}: a reference that is not relative: {}",
                &v[..v.len().min(80)]
            );
        }
    }
}

/// `curl` in the namespace.
fn curl(ns: &Netns, url: &str, headers: bool) -> String {
    let mut args = vec!["curl", "-sS", "--max-time", "10"];
    if headers {
        args.push("-i");
    }
    args.push(url);
    let out = ns.command(&args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn api(ns: &Netns, addr: &str, path: &str) -> Value {
    serde_json::from_str(&curl(ns, &format!("http://{addr}{path}"), false)).unwrap()
}

fn group_states(ns: &Netns, addr: &str) -> Vec<(String, String)> {
    api(ns, addr, "/api/v1/status")["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn wait_states(ns: &Netns, addr: &str, want: &[(&str, &str)], within: Duration) {
    let t0 = std::time::Instant::now();
    loop {
        let got = group_states(ns, addr);
        if want
            .iter()
            .all(|(g, s)| got.iter().any(|(n, st)| n == g && st == s))
        {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "groups did not reach {want:?}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const CONFIG: &str = r#"[daemon]
listen = "127.0.0.1:9899"
data_dir = "{data_dir}"

[defaults]
interval = "500ms"
timeout = "400ms"
fail_after = 2
recover_after = 2

[[group]]
name = "vault"
[[group]]
name = "lan"
[[group]]
name = "isp"
needs = "lan"
[[group]]
name = "internet"
needs = "isp"
[group.degraded]
window = "6s"
min_samples = 12
loss_above = "20%"

# Down throughout (nothing listens on port 9); its secrets must never show.
[[target]]
name = "secret-api"
group = "vault"
kind = "http"
url = "http://alice:hunter22@127.0.0.1:9/health?token=abc123xyz&region=eu"
headers = { Authorization = "Bearer sekrit-token-42" }

[[target]]
name = "router"
group = "lan"
kind = "icmp"
host = "127.0.0.2"

[[target]]
name = "isp-gw"
group = "isp"
kind = "icmp"
host = "127.0.0.3"

[[target]]
name = "isp-dns"
group = "isp"
kind = "icmp"
host = "127.0.0.4"

[[target]]
name = "one-one"
group = "internet"
kind = "icmp"
host = "127.0.0.5"

[[target]]
name = "quad-nine"
group = "internet"
kind = "icmp"
host = "127.0.0.6"
"#;

/// Targets with seeded history (the secret one has none: it starts now).
const TARGETS: [&str; 5] = ["router", "isp-gw", "isp-dns", "one-one", "quad-nine"];
const SECRETS: [&str; 4] = ["alice", "hunter22", "abc123xyz", "sekrit-token-42"];

/// No secret of the config in `text`.
fn no_secrets(text: &str, what: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret `{s}`");
    }
}

/// Three days of plausible per-minute history before `now`, four probes a
/// minute, with five unmonitored hours two days ago and an evening of loss
/// on the internet targets; written day by day as the daemon would.
fn seed_history(data_dir: &Path, now: Timestamp) {
    let start = now.as_second() / 60 * 60 - 3 * 86_400;
    let names = TARGETS.iter().map(|t| (t.to_string(), false)).collect();
    let store =
        HistoryStore::open_at(data_dir, names, Timestamp::from_second(start).unwrap()).unwrap();
    let gap = (start + 30 * 3600)..(start + 35 * 3600);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 10_000) as f64 / 10_000.0
    };
    let mut day = start / 86_400;
    let end = now.as_second() - 600;
    let mut t = start;
    while t < end {
        if !gap.contains(&t) {
            let hour = (t / 3600) % 24;
            for (i, _) in TARGETS.iter().enumerate() {
                let base = [0.4, 6.0, 7.0, 24.0, 31.0][i];
                let evening = i >= 3 && (19..22).contains(&hour);
                for k in 0..4 {
                    let jitter = next();
                    let lost = evening && next() < 0.15;
                    let rtt_ms =
                        base * (1.0 + 0.3 * jitter) + if evening { 40.0 * next() } else { 0.0 };
                    let outcome = if lost {
                        Outcome::Timeout { phase: None }
                    } else {
                        Outcome::Success {
                            duration: Duration::from_micros((rtt_ms * 1000.0) as u64),
                            phases: Default::default(),
                        }
                    };
                    store.record(&ProbeResult {
                        target: i,
                        at: Timestamp::from_second(t + k * 15).unwrap(),
                        mono: tokio::time::Instant::now(),
                        lateness: Duration::ZERO,
                        observation: Observation {
                            outcome,
                            info: Info::default(),
                        },
                    });
                }
            }
        }
        t += 60;
        if t / 86_400 != day {
            store
                .flush(Timestamp::from_second(t - 1).unwrap(), true)
                .unwrap();
            day = t / 86_400;
        }
    }
    store
        .flush(Timestamp::from_second(end).unwrap(), true)
        .unwrap();
}

fn start_daemon(ns: &Netns, config: &Path, dir: tempfile::TempDir) -> Daemon {
    let child = ns
        .command(&[BIN, "run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info,linkwatch::server::chart=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Daemon::attach(child, dir)
}

/// Drops every third echo request to each of `hosts` (33 % loss, never two
/// in a row: a target stays up while its group's loss is high).
fn thin_icmp(ns: &Netns, hosts: &[&str], on: bool) {
    for h in hosts {
        ns.exec(&[
            "iptables",
            if on { "-A" } else { "-D" },
            "OUTPUT",
            "-p",
            "icmp",
            "-d",
            h,
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            "3",
            "--packet",
            "0",
            "-j",
            "DROP",
        ]);
    }
}

/// The degradations of `group` as the API lists them, once one satisfies `done`.
fn wait_degradation(
    ns: &Netns,
    addr: &str,
    group: &str,
    done: impl Fn(&Value) -> bool,
    within: Duration,
) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let all = api(ns, addr, "/api/v1/degradations");
        if let Some(d) = all
            .as_array()
            .and_then(|a| a.iter().find(|d| d["group"] == group && done(d)))
        {
            return d.clone();
        }
        assert!(
            t0.elapsed() < within,
            "no such degradation of {group}: {all:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn drop_icmp(ns: &Netns, hosts: &str, on: bool) {
    ns.exec(&[
        "iptables",
        if on { "-A" } else { "-D" },
        "OUTPUT",
        "-p",
        "icmp",
        "-d",
        hosts,
        "-j",
        "DROP",
    ]);
}

#[test]
fn status_page_detail_view_and_report_in_chromium() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    seed_history(&data_dir, Timestamp::now());
    let config = data.path().join("config.toml");
    std::fs::write(
        &config,
        CONFIG.replace("{data_dir}", data_dir.to_str().unwrap()),
    )
    .unwrap();
    let addr = "127.0.0.1:9899";

    let mut d = start_daemon(&ns, &config, tempfile::tempdir().unwrap());
    wait_states(
        &ns,
        addr,
        &[("lan", "up"), ("isp", "up"), ("internet", "up")],
        Duration::from_secs(15),
    );
    // A slow period: a third of the internet probes lost for a while.
    thin_icmp(&ns, &["127.0.0.5", "127.0.0.6"], true);
    let slow = wait_degradation(
        &ns,
        addr,
        "internet",
        |d| d["end"].is_null(),
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(2));
    thin_icmp(&ns, &["127.0.0.5", "127.0.0.6"], false);
    let slow_id = slow["id"].as_str().unwrap().to_string();
    let slow = wait_degradation(
        &ns,
        addr,
        "internet",
        |d| d["id"] == slow_id.as_str() && !d["end"].is_null(),
        Duration::from_secs(20),
    );
    assert!(
        slow["triggers"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "loss")),
        "{slow:#}"
    );
    assert_eq!(
        api(&ns, addr, "/api/v1/outages")
            .as_array()
            .map_or(0, |a| a.iter().filter(|o| o["group"] == "internet").count()),
        0,
        "the slow period made an outage"
    );
    // An internet outage that spans a kill -9 and a restart.
    drop_icmp(&ns, "127.0.0.5,127.0.0.6", true);
    wait_states(&ns, addr, &[("internet", "down")], Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let mut child = d.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut d = start_daemon(&ns, &config, tempfile::tempdir().unwrap());
    wait_states(
        &ns,
        addr,
        &[("internet", "down"), ("isp", "up")],
        Duration::from_secs(15),
    );
    drop_icmp(&ns, "127.0.0.5,127.0.0.6", false);
    wait_states(&ns, addr, &[("internet", "up")], Duration::from_secs(10));
    // Then the ISP goes down and stays down: the verdict blames it.
    drop_icmp(&ns, "127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6", true);
    wait_states(
        &ns,
        addr,
        &[("isp", "down"), ("internet", "down")],
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));

    // The page's headers: a CSP of the daemon only, no script.
    let head = curl(&ns, &format!("http://{addr}/"), true);
    let csp = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_else(|| panic!("no CSP: {head}"));
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );

    let dom = look_at(&ns, &format!("http://{addr}/"), "status", (1500, 2200));
    let verdict = dom
        .split("id=\"verdict\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap_or_else(|| panic!("no verdict: {dom}"));
    assert!(verdict.contains("Internet is down since"), "{verdict}");
    assert!(verdict.contains("likely cause: isp"), "{verdict}");
    for (g, s) in group_states(&ns, addr) {
        assert!(
            dom.contains(&format!("data-group=\"{g}\" data-state=\"{s}\"")),
            "card of {g} ({s}) missing"
        );
    }
    assert_eq!(
        dom.matches("class=\"bar\"").count(),
        4 * 3,
        "three bars per group"
    );
    no_secrets(&dom, "the status page");
    no_secrets(
        &curl(&ns, &format!("http://{addr}/api/v1/status"), false),
        "/api/v1/status",
    );
    assert!(
        dom.contains("http://***@127.0.0.1:9/health?token=***&amp;region=eu"),
        "the URL is not shown redacted"
    );
    assert!(dom.contains("class=\"s-down\""), "no outage on a bar");
    assert!(
        dom.contains("class=\"s-gap\""),
        "no unmonitored segment on a bar"
    );
    // One chart per target, an image of its own SVG loaded lazily (the
    // page's CSP allows the daemon's images), and Chromium fetched them.
    assert_eq!(
        dom.matches("<img class=\"chart\"").count(),
        TARGETS.len() + 1
    );
    assert_eq!(dom.matches("loading=\"lazy\"").count(), TARGETS.len() + 1);
    let log = d.log();
    for t in TARGETS.iter().chain(&["secret-api"]) {
        assert!(
            log.lines()
                .any(|l| l.contains("chart served") && l.contains(&format!("target={t} "))),
            "Chromium did not load the chart of {t}: {log}"
        );
    }
    for chunk in dom.split("<svg").skip(1) {
        let after = chunk.split_once('>').map(|(_, a)| a).unwrap_or("");
        assert!(
            after.starts_with("<title>"),
            "an svg without a title: {}",
            &chunk[..chunk.len().min(200)]
        );
    }
    // The same page in dark mode (prefers-color-scheme: dark).
    let dark = shots_dir().join("status-dark-1280.png");
    let _ = std::fs::remove_file(&dark);
    let arg = format!("--screenshot={}", dark.display());
    let out = chromium(
        &ns,
        &format!("http://{addr}/"),
        1280,
        2200,
        &["--force-dark-mode", &arg],
    );
    assert!(console_messages(&out.stderr).is_empty());
    assert!(std::fs::metadata(&dark).is_ok_and(|m| m.len() > 5_000));
    println!("SCREENSHOT {}", dark.display());
    // The 30-day view; its charts (and the 7-day ones) show the seeded history.
    let month = look_at(
        &ns,
        &format!("http://{addr}/?range=30d"),
        "status-30d",
        (3400, 2200),
    );
    assert!(month.contains("src=\"/chart/one-one.svg?range=30d\""));
    for range in ["7d", "30d"] {
        let svg = curl(
            &ns,
            &format!("http://{addr}/chart/one-one.svg?range={range}"),
            false,
        );
        assert!(
            svg.contains("class=\"band\""),
            "no latency band in the {range} chart: {svg}"
        );
    }

    // The internet outage across the restart: its detail view.
    let outages = api(&ns, addr, "/api/v1/outages");
    let across = outages
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["group"] == "internet" && !o["end"].is_null())
        .unwrap_or_else(|| panic!("no closed internet outage: {outages:#}"));
    assert!(!across["gaps"].as_array().unwrap().is_empty(), "{across:#}");
    let id = across["id"].as_str().unwrap();
    let detail = look_at(
        &ns,
        &format!("http://{addr}/outage/{id}"),
        "outage-detail",
        (1800, 1100),
    );
    assert!(detail.contains("data-kind=\"outage\""), "{detail}");
    assert!(detail.contains("unobserved gaps"));
    assert!(
        detail.contains("data-chart=\"one-one\"") && detail.contains("data-chart=\"quad-nine\"")
    );

    // The slow period: listed on the page, with its own detail view.
    assert!(
        dom.contains(&format!("data-period=\"{slow_id}\"")),
        "the slow period is not listed on the page"
    );
    assert!(dom.contains("class=\"p-degradation\""));
    let detail = look_at(
        &ns,
        &format!("http://{addr}/degradation/{slow_id}"),
        "degradation-detail",
        (1800, 1100),
    );
    assert!(detail.contains("data-kind=\"degradation\""), "{detail}");
    assert!(
        detail.contains("<dt>at start</dt><dd>loss "),
        "the slow period's detail does not say how bad: {detail}"
    );
    assert!(detail.contains("data-chart=\"one-one\""));

    // The history API over the restart.
    let h = api(&ns, addr, "/api/v1/history?target=one-one&since=3h&step=60");
    assert_eq!(h[0]["target"], "one-one");
    assert!(
        h[0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["probes"].as_u64() > Some(0))
    );

    let bad = curl(
        &ns,
        &format!("http://{addr}/api/v1/history?target=one-one&step=90"),
        false,
    );
    assert!(bad.contains("whole number of minutes"), "{bad}");
    let bad = curl(
        &ns,
        &format!("http://{addr}/api/v1/history?target=nope"),
        false,
    );
    assert!(bad.contains("unknown target"), "{bad}");

    d.terminate(Duration::from_secs(5));
    drop_icmp(&ns, "127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6", false);

    // The printable report of the same journal.
    let report = Command::new(BIN)
        .args([
            "report",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--since",
            "1d",
            "--format",
            "html",
        ])
        .output()
        .unwrap();

    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let file = data.path().join("report.html");
    std::fs::write(&file, &report.stdout).unwrap();
    let dom = look_at(
        &ns,
        &format!("file://{}", file.display()),
        "report",
        (2400, 1800),
    );
    no_secrets(&dom, "the report");
    // "Print to PDF", as a reader would: A4 pages with the running header.
    let pdf = shots_dir().join("report.pdf");
    let _ = std::fs::remove_file(&pdf);
    let arg = format!("--print-to-pdf={}", pdf.display());
    chromium(
        &ns,
        &format!("file://{}", file.display()),
        1280,
        1800,
        &[&arg, "--no-pdf-header-footer"],
    );
    assert!(
        std::fs::metadata(&pdf).is_ok_and(|m| m.len() > 10_000),
        "no PDF of the report"
    );
    println!("PDF {}", pdf.display());
    assert!(
        dom.contains("linkwatch outages --verify"),
        "the report does not say how to verify"
    );
    assert!(dom.contains("<svg"), "the report has no timeline");
    let slow_section = dom
        .split("<h2>Slow periods</h2>")
        .nth(1)
        .unwrap_or_else(|| panic!("no slow periods in the report"));
    assert!(
        slow_section.contains("loss"),
        "the slow period's trigger is not in the report"
    );
}

/// What a new user sees with the embedded default and no network at all.
#[test]
fn embedded_default_page_without_network() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let child = ns
        .command(&[BIN, "run"])
        .env("RUST_LOG", "info")
        .env("LINKWATCH_DATA_DIR", dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon::attach(child, tempfile::tempdir().unwrap());
    let addr = d.addr.to_string();
    // Wait until every group is decided.
    let t0 = std::time::Instant::now();
    while group_states(&ns, &addr).iter().any(|(_, s)| s == "unknown") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:?}",
            group_states(&ns, &addr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let dom = look_at(
        &ns,
        &format!("http://{addr}/"),
        "default-offline",
        (3600, 2400),
    );
    let verdict = dom
        .split("id=\"verdict\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap();
    assert!(
        verdict.contains("is down since") && verdict.contains("likely cause:"),
        "{verdict}"
    );
    println!("VERDICT {verdict}");
    d.terminate(Duration::from_secs(5));
}
