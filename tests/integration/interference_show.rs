//! Signs of interference, shown everywhere a period is shown: `outages`
//! (tables and `--json`, outages and `--degraded`), the report in every
//! format (section "Signs of interference"), `/api/v1/interference`, the
//! status page (card, recent signs) and the detail view.
//!
//! The journal is written by the real writer (a valid hash chain) with the
//! lines the interference checks produce: `interference` events, and
//! outage / slow-period records whose cause is `interference` with their
//! summary. A journal without them reads as before (`journal_fixture`
//! checks that byte for byte).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};
use linkwatch::journal::{
    self, DaemonStart, DaemonStop, DegradedEnded, DegradedStarted, DurationClock, Entry, Figures,
    FileSink, InterferenceSeen, InterferenceSummary, JournalCounters, JournalWriter, OutageEnded,
    OutageStarted, PeriodFigures, Trigger,
};
use serde_json::Value;

use crate::harness::daemon::{BIN, Daemon, require};
use crate::harness::netns::{Netns, require_root};

/// `base` plus `s` seconds.
fn at(base: Timestamp, s: i64) -> Timestamp {
    base.checked_add(SignedDuration::from_secs(s)).unwrap()
}

fn writer(dir: &Path) -> JournalWriter {
    let counters = JournalCounters {
        writes: prometheus::IntCounter::new("w", "w").unwrap(),
        errors: prometheus::IntCounter::new("e", "e").unwrap(),
    };
    std::fs::create_dir_all(dir).unwrap();
    let tail = journal::read(dir).unwrap().tail;
    JournalWriter::new(
        Box::new(FileSink::open(dir, false).unwrap()),
        &tail,
        counters,
    )
}

const DNS_DETAIL: &str = "isp-resolver answered example.org A 10.9.9.9; doh-resolver answered 93.184.216.34; TLS to 10.9.9.9:443 as example.org: certificate not valid for the name (UnknownIssuer)";
const SNI_DETAIL: &str = "TLS as blocked.example to 10.231.5.2:443: connection reset after the ClientHello; the same address completed a handshake as other.example in 12 ms";
const ISSUER: &str = "CN=Interceptor CA, O=Security Inspection, C=KZ";

/// The configuration the journal's run recorded: every check on (the keys
/// of README "Signs of interference").
const CHECKS_CONFIG: &str = r#"[[group]]
name = "lan"
[[group]]
name = "internet"
needs = "lan"

[interference]
blockpage = [{ status = 451, body_regex = "Blocked by order" }]

[[target]]
name = "gw"
group = "lan"
kind = "icmp"
host = "127.0.0.1"

[[target]]
name = "isp-dns"
group = "internet"
kind = "dns"
server = "127.0.0.1"
query = "example.org"
compare_with = "doh-dns"

[[target]]
name = "doh-dns"
group = "internet"
kind = "dns"
server = "https://127.0.0.1/dns-query"
transport = "https"
query = "example.org"

[[target]]
name = "blocked-web"
group = "internet"
kind = "http"
url = "https://blocked.example/"
sni_control = "other.example"
expect_issuer = "Let's Encrypt"

[[target]]
name = "dl"
group = "internet"
kind = "throughput"
url = "https://blocked.example/10M"
control_url = "https://cdn.example/10M"
"#;

/// The same groups without a single check.
const PLAIN_CONFIG: &str = r#"[[group]]
name = "lan"
[[target]]
name = "gw"
group = "lan"
kind = "icmp"
host = "127.0.0.1"
"#;

#[allow(clippy::too_many_arguments)]
fn seen(
    base: Timestamp,
    s: i64,
    target: &str,
    check: &str,
    name: &str,
    detail: &str,
    raw: &[&str],
    count: u64,
) -> Entry {
    Entry::Interference(InterferenceSeen {
        target: target.into(),
        group: "internet".into(),
        check: check.into(),
        at: at(base, s),
        name: name.into(),
        detail: detail.into(),
        raw: raw.iter().map(|r| r.to_string()).collect(),
        count,
    })
}

fn summary(
    checks: &[&str],
    targets: &[&str],
    names: &[&str],
    f: (u64, u64),
) -> InterferenceSummary {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    InterferenceSummary {
        checks: v(checks),
        targets: v(targets),
        names: v(names),
        failures: f.0,
        of_failures: f.1,
    }
}

fn outage(
    base: Timestamp,
    id: &str,
    (group, cause): (&str, &str),
    (a, b): (i64, Option<i64>),
    targets: &[&str],
    why: Option<InterferenceSummary>,
) -> Vec<Entry> {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let why = why.map(Box::new);
    let mut v = vec![Entry::OutageStart(OutageStarted {
        interference: why.clone(),
        id: id.into(),
        group: group.into(),
        cause: cause.into(),
        start: at(base, a),
        start_observed: true,
        targets: targets.clone(),
        gaps: vec![],
    })];
    if let Some(b) = b {
        v.push(Entry::OutageEnd(OutageEnded {
            interference: why,
            id: id.into(),
            group: group.into(),
            cause: cause.into(),
            start: at(base, a),
            start_observed: true,
            end: at(base, b),
            duration_seconds: (b - a) as f64,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            targets,
            gaps: vec![],
            end_reason: None,
        }));
    }
    v
}

fn slow(base: Timestamp, id: &str, (a, b): (i64, i64), why: InterferenceSummary) -> Vec<Entry> {
    let figures = Figures {
        throughput_bps: Some(2.0e6),
        samples: 30,
        ..Figures::default()
    };
    let why = Some(Box::new(why));
    vec![
        Entry::DegradedStart(DegradedStarted {
            interference: why.clone(),
            id: id.into(),
            group: "internet".into(),
            cause: "interference".into(),
            start: at(base, a),
            triggers: vec![Trigger::ThrottledName],
            figures: figures.clone(),
        }),
        Entry::DegradedEnd(DegradedEnded {
            interference: why,
            id: id.into(),
            group: "internet".into(),
            cause: "interference".into(),
            start: at(base, a),
            end: at(base, b),
            duration_seconds: (b - a) as f64,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            superseded: false,
            triggers: vec![Trigger::ThrottledName],
            figures: PeriodFigures {
                median: figures.clone(),
                worst: figures,
                snapshots: 50,
                samples: 60,
                throughput_tests: 4,
                loss_ratio: None,
            },
            gaps: vec![],
            end_reason: None,
        }),
    ]
}

fn start(config: &Path) -> Entry {
    Entry::DaemonStart(DaemonStart {
        version: "test".into(),
        config_digest: "d".into(),
        config_source: config.display().to_string(),
        pid: 1,
        clock_synchronized: Some(true),
        clock_check: "test".into(),
        previous_run_alive_until: None,
        previous_run_clean: None,
        torn_line: None,
        previous_head: None,
        site: Some("almaty-home".into()),
        plan: None,
        throughput_targets: Vec::new(),
    })
}

/// One run from `base` (its configuration at `config`):
/// - `o-int`: outage of `internet` 60..300, cause interference (sni_blocked,
///   dns_inconsistent), with the `interference` lines of its targets;
/// - `s-thr`: slow period of `internet` 1000..1600, cause interference
///   (throttled_name);
/// - `o-lan`: an ordinary outage of `lan` 2000..2030;
/// - a tls_intercepted line at 2500 outside any period, repeated an hour
///   later (count 120);
/// - a clean stop at 6200.
fn write_journal(dir: &Path, base: Timestamp, config: &Path) {
    let mut lines: Vec<(i64, Entry)> = vec![(0, start(config))];
    let int = summary(
        &["dns_inconsistent", "sni_blocked"],
        &["blocked-web", "isp-dns"],
        &["blocked.example", "example.org"],
        (18, 20),
    );
    let [s, e]: [Entry; 2] = outage(
        base,
        "o-int",
        ("internet", "interference"),
        (60, Some(300)),
        &["blocked-web", "isp-dns"],
        Some(int.clone()),
    )
    .try_into()
    .unwrap();
    lines.push((60, s));
    lines.push((
        61,
        seen(
            base,
            60,
            "blocked-web",
            "sni_blocked",
            "blocked.example",
            SNI_DETAIL,
            &[
                "blocked.example: reset after ClientHello (ECONNRESET)",
                "other.example: handshake completed",
            ],
            1,
        ),
    ));
    lines.push((
        62,
        seen(
            base,
            61,
            "isp-dns",
            "dns_inconsistent",
            "example.org",
            DNS_DETAIL,
            &[
                "isp-resolver: A 10.9.9.9",
                "doh-resolver: A 93.184.216.34",
                "tls 10.9.9.9:443 as example.org: invalid peer certificate: UnknownIssuer",
            ],
            1,
        ),
    ));
    lines.push((300, e));
    let thr = summary(&["throttled_name"], &["dl"], &["blocked.example"], (0, 0));
    for (i, e) in slow(base, "s-thr", (1000, 1600), thr)
        .into_iter()
        .enumerate()
    {
        lines.push((if i == 0 { 1000 } else { 1600 }, e));
    }
    lines.push((
        1001,
        seen(
            base,
            1000,
            "dl",
            "throttled_name",
            "blocked.example",
            "download from blocked.example at 2.0 Mbit/s, 4 % of the control https://cdn.example/10M at 50 Mbit/s (throttled_below 50%)",
            &["target: 2000000 bit/s", "control: 50000000 bit/s"],
            1,
        ),
    ));
    for (i, e) in outage(
        base,
        "o-lan",
        ("lan", "lan"),
        (2000, Some(2030)),
        &["gw"],
        None,
    )
    .into_iter()
    .enumerate()
    {
        lines.push((2000 + 30 * i as i64, e));
    }
    let tls = |s: i64, count: u64| {
        seen(
            base,
            s,
            "blocked-web",
            "tls_intercepted",
            "blocked.example",
            &format!(
                "the chain's issuer `{ISSUER}` is not the expected one (Let's Encrypt); the usual issuer is CN=R11, O=Let's Encrypt, C=US | and it failed validation"
            ),
            &[
                &format!("issuer: {ISSUER}"),
                "spki: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ],
            count,
        )
    };
    lines.push((2500, tls(2500, 1)));
    lines.push((6100, tls(6100, 120)));
    lines.push((
        6200,
        Entry::DaemonStop(DaemonStop {
            open_outages: vec![],
            open_degradations: vec![],
        }),
    ));
    lines.sort_by_key(|(t, _)| *t);
    let mut w = writer(dir);
    for (t, e) in lines {
        w.append(at(base, t), &e).unwrap();
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("LINKWATCH_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "linkwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn by_id<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list:#}"))
}

#[test]
fn outages_and_every_report_format_show_signs_of_interference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let config = dir.path().join("checks.toml");
    std::fs::write(&config, CHECKS_CONFIG).unwrap();
    let base: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    write_journal(Path::new(d), base, &config);
    let journal_before = std::fs::read(Path::new(d).join("journal.jsonl")).unwrap();
    let verify = run(&["outages", "--verify", "--data-dir", d]);
    assert!(verify.starts_with("journal ok: 13 lines"), "{verify}");

    // `outages`: the cause names its checks and names; others unchanged.
    let table = run(&["outages", "--data-dir", d]);
    let row = |t: &str, id: &str| t.lines().find(|l| l.starts_with(id)).unwrap().to_string();
    assert!(
        row(&table, "o-int").contains(
            "  interference (dns_inconsistent, sni_blocked: blocked.example, example.org)  "
        ),
        "{table}"
    );
    assert!(row(&table, "o-lan").contains("  lan  "), "{table}");
    let slow = run(&["outages", "--degraded", "--data-dir", d]);
    assert!(
        row(&slow, "s-thr").contains("  interference (throttled_name: blocked.example)  "),
        "{slow}"
    );
    let json: Value = serde_json::from_str(&run(&["outages", "--json", "--data-dir", d])).unwrap();
    let int = by_id(&json, "o-int");
    assert_eq!(int["cause"], "interference");
    assert_eq!(int["interference"]["checks"][1], "sni_blocked");
    assert_eq!(int["interference"]["of_failures"], 20);
    assert!(by_id(&json, "o-lan").get("interference").is_none());

    let period = [
        "--since",
        "2026-11-01T10:00:00Z",
        "--until",
        "2026-11-01T12:00:00Z",
    ];
    let report = |format: &str, extra: &[&str]| {
        let mut args = vec!["report", "--data-dir", d, "--format", format];
        args.extend(period);
        args.extend(extra);
        run(&args)
    };
    let md = report("markdown", &[]);
    assert!(md.contains("\n## Signs of interference\n"), "{md}");
    assert!(
        md.contains("124 probes of 3 targets showed signs of interference (dns_inconsistent, sni_blocked, throttled_name, tls_intercepted); 1 outage and 1 slow period had interference as their likely cause."),
        "{md}"
    );
    // Which checks were on: from the configuration the run recorded.
    for line in [
        "- dns_inconsistent on isp-dns: `compare_with = \"doh-dns\", TLS tie-breaker on port 443`",
        "- sni_blocked on blocked-web: `sni_control = \"other.example\"`",
        "- blockpage on blocked-web: `[interference] blockpage (1 rule)`",
        "- throttled_name on dl: `control_url = \"https://cdn.example/10M\", throttled_below = \"50%\"`",
    ] {
        assert!(md.contains(line), "{line}\n{md}");
    }
    assert!(md.contains("- outage of internet from 2026-11-01T10:01:00.000+00:00 to 2026-11-01T10:05:00.000+00:00 (`o-int`): checks dns_inconsistent, sni_blocked; targets blocked-web, isp-dns; names blocked.example, example.org; 18 of 20 failed probes carried these reasons"), "{md}");
    assert!(
        md.contains("| blocked-web | tls_intercepted | blocked.example | 2026-11-01T10:41:40.000+00:00 | 2026-11-01T11:41:40.000+00:00 | 121 |"),
        "{md}"
    );
    assert!(
        md.contains(&format!("(example.org): {DNS_DETAIL}\n")),
        "{md}"
    );
    assert!(md.contains("  - `isp-resolver: A 10.9.9.9`\n"), "{md}");
    assert!(
        md.contains("| 2026-11-01T10:01:00.000+00:00 | 2026-11-01T10:05:00.000+00:00 | 4m 00s | internet | interference (dns_inconsistent, sni_blocked: blocked.example, example.org) |"),
        "{md}"
    );
    assert!(md.contains("it circumvents nothing"), "{md}");
    // The backticks of the issuer's detail survive as text.
    assert!(md.contains("the chain's issuer `CN=Interceptor CA"), "{md}");

    let rj: Value = serde_json::from_str(&report("json", &[])).unwrap();
    let s = &rj["signs_of_interference"];
    assert_eq!(s["signs"].as_array().unwrap().len(), 4, "{s:#}");
    let tls = s["signs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["check"] == "tls_intercepted")
        .unwrap();
    assert_eq!(tls["probes"], 121);
    assert_eq!(tls["lines"], 2);
    assert_eq!(tls["evidence"][0]["raw"][0], format!("issuer: {ISSUER}"));
    assert_eq!(s["periods"][0]["id"], "o-int");
    assert_eq!(s["periods"][1]["kind"], "slow");
    assert_eq!(s["checks_configured"].as_array().unwrap().len(), 6);
    assert_eq!(
        by_id(&rj["outages"], "o-int")["interference"]["names"][0],
        "blocked.example"
    );

    let html = report("html", &[]);
    assert!(
        html.contains("<section id=\"interference\"><h2>Signs of interference</h2>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<div class=\"sign\" data-target=\"isp-dns\" data-check=\"dns_inconsistent\">"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<pre class=\"raw\">isp-resolver: A 10.9.9.9\ndoh-resolver: A 93.184.216.34\n"
        ),
        "{html}"
    );
    assert!(
        html.contains("CN=Interceptor CA, O=Security Inspection, C=KZ"),
        "{html}"
    );
    // For people: the report as a file next to the screenshots.
    let _ = std::fs::write(shots_dir().join("interference-report.html"), &html);

    let csv = report("csv", &["--table", "interference"]);
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(
        csv.contains("\nsign,,internet,blocked-web,tls_intercepted,blocked.example,2026-11-01T10:41:40.000+00:00,2026-11-01T11:41:40.000+00:00,121,,"),
        "{csv}"
    );
    assert!(
        csv.contains("\noutage,o-int,internet,blocked-web isp-dns,dns_inconsistent sni_blocked,blocked.example example.org,2026-11-01T10:01:00.000+00:00,2026-11-01T10:05:00.000+00:00,18,20,,\n"),
        "{csv}"
    );
    // Every other table keeps its columns.
    assert_eq!(
        report("csv", &[]).lines().next().unwrap(),
        "id,group,cause,start,end,duration_seconds,duration_in_period_seconds,targets,gaps,end_observed,path_at_start,path_at_end"
    );

    // A period without signs: says so, and which checks were on.
    let quiet = run(&[
        "report",
        "--data-dir",
        d,
        "--format",
        "markdown",
        "--since",
        "2026-11-01T10:33:00Z",
        "--until",
        "2026-11-01T10:34:00Z",
    ]);
    assert!(
        quiet.contains("\n## Signs of interference\n\nNo sign of interference was recorded in this period, with these checks on: dns_inconsistent (isp-dns), dns_bogon (isp-dns), tls_intercepted (blocked-web), sni_blocked (blocked-web), blockpage (blocked-web), throttled_name (dl).\n"),
        "{quiet}"
    );
    // `--config` names another configuration's checks: here none, and
    // nothing was seen then, so there is no section.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, PLAIN_CONFIG).unwrap();
    let quiet = run(&[
        "report",
        "--data-dir",
        d,
        "--config",
        plain.to_str().unwrap(),
        "--format",
        "markdown",
        "--since",
        "2026-11-01T10:33:00Z",
        "--until",
        "2026-11-01T10:34:00Z",
    ]);
    assert!(!quiet.contains("interference"), "{quiet}");

    // Reading changed nothing.
    assert_eq!(
        std::fs::read(Path::new(d).join("journal.jsonl")).unwrap(),
        journal_before
    );
}

/// Without the configuration (the recorded file is gone) and without
/// signs, a report has no such section: old journals read as they did.
#[test]
fn no_section_without_signs_or_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let gone = dir.path().join("gone.toml");
    let base: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    let mut w = writer(&d);
    w.append(base, &start(&gone)).unwrap();
    for (i, e) in outage(base, "o-lan", ("lan", "lan"), (10, Some(20)), &["gw"], None)
        .into_iter()
        .enumerate()
    {
        w.append(at(base, 10 + 10 * i as i64), &e).unwrap();
    }
    drop(w);
    let d = d.to_str().unwrap();
    for format in ["markdown", "json", "html"] {
        let out = run(&[
            "report",
            "--data-dir",
            d,
            "--format",
            format,
            "--since",
            "2026-11-01T10:00:00Z",
            "--until",
            "2026-11-01T10:01:00Z",
        ]);
        assert!(!out.contains("nterference"), "{format}: {out}");
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn shots_dir() -> PathBuf {
    let dir = std::env::var_os("LINKWATCH_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn curl(ns: &Netns, url: &str) -> String {
    let out = ns
        .command(&["curl", "-sS", "--max-time", "10", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Screenshots `url` in `ns` at 390 and 1280 px wide, `h` high, as
/// `<name>-<width>.png`.
fn screenshots(ns: &Netns, url: &str, name: &str, h: u32) {
    for w in [390, 1280] {
        let profile = tempfile::tempdir().unwrap();
        let file = shots_dir().join(format!("{name}-{w}.png"));
        let _ = std::fs::remove_file(&file);
        let out = ns
            .command(&[
                "timeout",
                "90",
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                &format!("--window-size={w},{h}"),
                &format!("--user-data-dir={}", profile.path().display()),
                &format!("--screenshot={}", file.display()),
                url,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 5_000),
            "no screenshot {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("SCREENSHOT {}", file.display());
    }
}

const DAEMON_CONFIG: &str = r#"[daemon]
listen = "127.0.0.1:9898"
data_dir = "{data_dir}"

[defaults]
interval = "1s"
timeout = "500ms"

[[group]]
name = "lan"
[[group]]
name = "internet"
needs = "lan"

[[target]]
name = "gw"
group = "lan"
kind = "icmp"
host = "127.0.0.1"

[[target]]
name = "blocked-web"
group = "internet"
kind = "icmp"
host = "127.0.0.2"
"#;

/// The running daemon's API, status page and detail view over a journal
/// of an earlier run (written two hours ago). (The card and the verdict of
/// an open period caused by interference: `page::tests`.)
#[test]
fn api_page_and_detail_view_show_signs_of_interference() {
    if !require_root() || !require(Path::new(CHROMIUM).exists(), "chromium is not installed") {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let checks = dir.path().join("checks.toml");
    std::fs::write(&checks, CHECKS_CONFIG).unwrap();
    let base = Timestamp::from_second(Timestamp::now().as_second() - 7200).unwrap();
    write_journal(&data_dir, base, &checks);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        DAEMON_CONFIG.replace("{data_dir}", data_dir.to_str().unwrap()),
    )
    .unwrap();
    let child = ns
        .command(&[BIN, "run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let d = Daemon::attach(child, tempfile::tempdir().unwrap());
    let addr = "127.0.0.1:9898";
    let api = |path: &str| -> Value {
        serde_json::from_str(&curl(&ns, &format!("http://{addr}{path}"))).unwrap()
    };
    d.wait_for(std::time::Duration::from_secs(10), |_| {
        curl(&ns, &format!("http://{addr}/healthz"))
            .starts_with("ok")
            .then_some(())
    });

    // The API: every line, oldest first; `since`/`until` bound `at`.
    let all = api("/api/v1/interference");
    let list = all.as_array().unwrap();
    assert_eq!(list.len(), 5, "{all:#}");
    assert_eq!(list[0]["check"], "sni_blocked");
    assert_eq!(list[4]["count"], 120);
    assert!(
        list.windows(2)
            .all(|w| w[0]["at"].as_str() <= w[1]["at"].as_str())
    );
    let since = at(base, 2000);
    let later = api(&format!("/api/v1/interference?since={since}"));
    assert_eq!(later.as_array().unwrap().len(), 2, "{later:#}");
    let until = at(base, 1000);
    let early = api(&format!("/api/v1/interference?until={until}"));
    assert_eq!(early.as_array().unwrap().len(), 2, "{early:#}");
    let bad = curl(&ns, &format!("http://{addr}/api/v1/interference?target=x"));
    assert!(bad.contains("\"error\""), "{bad}");
    let outages = api("/api/v1/outages");
    assert_eq!(
        by_id(&outages, "o-int")["interference"]["checks"][1],
        "sni_blocked"
    );
    let slow = api("/api/v1/degradations");
    assert_eq!(
        by_id(&slow, "s-thr")["interference"]["checks"][0],
        "throttled_name"
    );

    // The page: the recent signs, and the periods' causes.
    let home = curl(&ns, &format!("http://{addr}/"));
    assert!(
        home.contains("<section id=\"interference\"><h2>Signs of interference (last 24 h)</h2>"),
        "{home}"
    );
    assert!(
        home.contains("<li data-target=\"blocked-web\" data-check=\"tls_intercepted\"><strong>blocked-web</strong> <span class=\"check\">tls_intercepted</span> blocked.example · 121 probes,"),
        "{home}"
    );
    assert!(
        home.contains(
            "cause interference (dns_inconsistent, sni_blocked: blocked.example, example.org)"
        ),
        "{home}"
    );
    screenshots(&ns, &format!("http://{addr}/"), "page", 2000);

    let detail = curl(&ns, &format!("http://{addr}/outage/o-int"));
    assert!(
        detail.contains("<dt>interference</dt><dd>checks dns_inconsistent, sni_blocked; targets blocked-web, isp-dns; names blocked.example, example.org; 18 of 20 failed probes carried these reasons</dd>"),
        "{detail}"
    );
    assert!(
        detail.contains("<section id=\"interference\"><h2>Signs of interference during it</h2>"),
        "{detail}"
    );
    assert!(
        detail
            .contains("<pre class=\"raw\">isp-resolver: A 10.9.9.9\ndoh-resolver: A 93.184.216.34"),
        "{detail}"
    );
    // The signs of another time are not this outage's.
    assert!(!detail.contains("tls_intercepted"), "{detail}");
    let lan = curl(&ns, &format!("http://{addr}/outage/o-lan"));
    assert!(!lan.contains("id=\"interference\""), "{lan}");
    screenshots(&ns, &format!("http://{addr}/outage/o-int"), "detail", 2000);

    // The report of the same journal, in the browser too.
    drop(d);
    let html = run(&[
        "report",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--since",
        "1d",
        "--format",
        "html",
    ]);
    let file = dir.path().join("report.html");
    std::fs::write(&file, html).unwrap();
    // Tall: the section is near the end.
    screenshots(&ns, &format!("file://{}", file.display()), "report", 4800);
}
