//! What other linkwatch sites (`[[peer]]`) said, shown everywhere a period
//! is shown: `outages` (table and `--json`, outages and `--degraded`), the
//! report in every format ("Seen from elsewhere", the witness lines of
//! "Evidence quality"), `/api/v1/outages`, `/api/v1/degradations` and the
//! detail view of the status page.
//!
//! The journal is written by the real writer (a valid hash chain) with the
//! events the peer exchange appends: `corroboration`, `witnessed`, `witness`.
//! A journal without them reads as before (`journal_fixture` checks that
//! byte for byte).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use linkwatch::journal::{
    self, ChainHead, CorroboratedTarget, Corroboration, DaemonStart, DaemonStop, DegradedEnded,
    DegradedStarted, DurationClock, Entry, Figures, FileSink, JournalCounters, JournalWriter,
    OutageEnded, OutageStarted, PeriodFigures, PeriodKind, Receipt, TargetVerdict, Trigger,
    WitnessReceived, Witnessed,
};
use serde_json::Value;

use crate::harness::daemon::{BIN, Daemon, require};
use crate::harness::netns::{Netns, require_root};

const REACH: &str = "the destinations answered from abroad throughout: the fault lies between this site and the border";
const DEST: &str =
    "the destinations also failed from abroad: the destination was down, not your connection";
const MIXED: &str = "some destinations failed from abroad too: intl-dns";
const NODATA: &str = "backup has no observations of these destinations for that time";

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

fn target(peer: &str, name: &str, probes: u64, failures: u64) -> CorroboratedTarget {
    CorroboratedTarget {
        peer: peer.into(),
        target: name.into(),
        their_target: None,
        probes,
        failures,
        loss_ratio: (probes > 0).then(|| failures as f64 / probes as f64),
        verdict: TargetVerdict::from_counts(probes, failures),
    }
}

fn corroboration(
    base: Timestamp,
    (kind, period, (a, b)): (PeriodKind, &str, (i64, i64)),
    peer: &str,
    targets: Vec<CorroboratedTarget>,
    summary: &str,
) -> Entry {
    Entry::Corroboration(Corroboration {
        period: period.into(),
        kind,
        peer: peer.into(),
        start: at(base, a),
        end: at(base, b),
        verdict: journal::judge(&targets),
        targets,
        summary: summary.into(),
    })
}

fn outage(
    base: Timestamp,
    id: &str,
    group: &str,
    (a, b): (i64, i64),
    targets: &[&str],
) -> [Entry; 2] {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    [
        Entry::OutageStart(OutageStarted {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(base, a),
            start_observed: true,
            targets: targets.clone(),
            gaps: vec![],
        }),
        Entry::OutageEnd(OutageEnded {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(base, a),
            start_observed: true,
            end: at(base, b),
            duration_seconds: (b - a) as f64,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            targets,
            gaps: vec![],
            end_reason: None,
        }),
    ]
}

fn slow(base: Timestamp, id: &str, group: &str, (a, b): (i64, i64)) -> [Entry; 2] {
    let figures = Figures {
        loss_ratio: Some(0.2),
        samples: 30,
        ..Figures::default()
    };
    [
        Entry::DegradedStart(DegradedStarted {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(base, a),
            triggers: vec![Trigger::Loss],
            figures: figures.clone(),
        }),
        Entry::DegradedEnd(DegradedEnded {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(base, a),
            end: at(base, b),
            duration_seconds: (b - a) as f64,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            superseded: false,
            triggers: vec![Trigger::Loss],
            figures: PeriodFigures {
                median: figures.clone(),
                worst: figures,
                snapshots: 50,
                samples: 60,
                throughput_tests: 0,
                loss_ratio: Some(0.2),
            },
            gaps: vec![],
            end_reason: None,
        }),
    ]
}

/// One run from `base`: an outage `abroad` saw up (`o-reach`), a slow
/// period it saw mixed (`s-mixed`), an outage it saw down too (`o-dest`,
/// `backup` without data), one nobody answered for (`o-none`), two heads
/// acknowledged by `abroad` and one head received from `home2`.
fn write_journal(dir: &Path, base: Timestamp) {
    use PeriodKind::{Outage, Slow};
    let [o1s, o1e] = outage(
        base,
        "o-reach",
        "internet",
        (60, 120),
        &["intl-web", "intl-dns"],
    );
    let [s1s, s1e] = slow(base, "s-mixed", "internet", (200, 260));
    let [o2s, o2e] = outage(base, "o-dest", "internet", (300, 340), &["intl-web"]);
    let [o3s, o3e] = outage(base, "o-none", "lan", (500, 510), &["gw"]);
    let witnessed = |seq: u64, t: i64| {
        Entry::Witnessed(Witnessed {
            peer: "abroad".into(),
            head: ChainHead {
                seq,
                hash: format!("{seq:064x}"),
            },
            at: at(base, t),
            receipt: Receipt {
                site: "abroad".into(),
                seq: 100 + seq,
                hash: format!("{:064x}", 100 + seq),
            },
        })
    };
    let start = DaemonStart {
        version: "test".into(),
        config_digest: "d".into(),
        config_source: "<test>".into(),
        pid: 1,
        clock_synchronized: Some(true),
        clock_check: "test".into(),
        previous_run_alive_until: None,
        previous_run_clean: None,
        torn_line: None,
        previous_head: None,
        site: Some("home".into()),
        plan: None,
        throughput_targets: Vec::new(),
    };
    let lines: Vec<(i64, Entry)> = vec![
        (0, Entry::DaemonStart(start)),
        (60, o1s),
        (120, o1e),
        (
            130,
            corroboration(
                base,
                (Outage, "o-reach", (60, 120)),
                "abroad",
                vec![
                    target("abroad", "intl-web", 60, 0),
                    target("abroad", "intl-dns", 60, 1),
                ],
                REACH,
            ),
        ),
        (140, witnessed(3, 139)),
        (200, s1s),
        (260, s1e),
        (
            270,
            corroboration(
                base,
                (Slow, "s-mixed", (200, 260)),
                "abroad",
                vec![
                    target("abroad", "intl-web", 60, 0),
                    target("abroad", "intl-dns", 60, 30),
                ],
                MIXED,
            ),
        ),
        (300, o2s),
        (340, o2e),
        (
            350,
            corroboration(
                base,
                (Outage, "o-dest", (300, 340)),
                "abroad",
                vec![target("abroad", "intl-web", 40, 40)],
                DEST,
            ),
        ),
        (
            355,
            corroboration(
                base,
                (Outage, "o-dest", (300, 340)),
                "backup",
                vec![target("backup", "intl-web", 0, 0)],
                NODATA,
            ),
        ),
        (460, witnessed(11, 459)),
        (
            470,
            Entry::Witness(WitnessReceived {
                peer: "home2".into(),
                site: "home2".into(),
                head: ChainHead {
                    seq: 10,
                    hash: format!("{:064x}", 10),
                },
                at: at(base, 469),
            }),
        ),
        (500, o3s),
        (510, o3e),
        (
            600,
            Entry::DaemonStop(DaemonStop {
                open_outages: vec![],
                open_degradations: vec![],
            }),
        ),
    ];
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

/// The contract's checks on an outage listing (`outages --json` and
/// `/api/v1/outages` say the same).
fn check_outages_json(list: &Value) {
    let reach = by_id(list, "o-reach");
    assert_eq!(reach["cause"], "internet", "{reach:#}");
    assert!(reach.get("local_cause").is_none(), "{reach:#}");
    assert_eq!(
        reach["corroboration"],
        serde_json::json!([
            {"peer": "abroad", "target": "intl-web", "probes": 60, "failures": 0, "loss_ratio": 0.0, "verdict": "up"},
            {"peer": "abroad", "target": "intl-dns", "probes": 60, "failures": 1, "loss_ratio": 1.0 / 60.0, "verdict": "up"}
        ])
    );
    assert_eq!(
        reach["peer_verdicts"],
        serde_json::json!([{"peer": "abroad", "verdict": "reachable_elsewhere", "summary": REACH}])
    );
    let dest = by_id(list, "o-dest");
    assert_eq!(dest["cause"], "destination", "{dest:#}");
    assert_eq!(dest["local_cause"], "internet", "{dest:#}");
    assert_eq!(dest["corroboration"][0]["verdict"], "down");
    assert_eq!(dest["corroboration"][1]["verdict"], "no_data");
    assert_eq!(dest["corroboration"][1]["loss_ratio"], Value::Null);
    assert_eq!(dest["peer_verdicts"][0]["verdict"], "destination_down");
    assert_eq!(dest["peer_verdicts"][1]["summary"], NODATA);
    let none = by_id(list, "o-none");
    for k in ["corroboration", "peer_verdicts", "local_cause"] {
        assert!(none.get(k).is_none(), "{k}: {none:#}");
    }
}

#[test]
fn outages_and_every_report_format_show_what_peers_saw() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let base: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    write_journal(dir.path(), base);
    let journal_before = std::fs::read(dir.path().join("journal.jsonl")).unwrap();

    let verify = run(&["outages", "--verify", "--data-dir", d]);
    assert!(
        verify.starts_with("journal ok: 17 lines, hash chain intact"),
        "{verify}"
    );

    let json: Value = serde_json::from_str(&run(&["outages", "--json", "--data-dir", d])).unwrap();
    check_outages_json(&json);
    let slow: Value =
        serde_json::from_str(&run(&["outages", "--degraded", "--json", "--data-dir", d])).unwrap();
    let s = by_id(&slow, "s-mixed");
    assert_eq!(s["cause"], "internet");
    assert_eq!(s["peer_verdicts"][0]["verdict"], "mixed");
    assert_eq!(s["corroboration"][1]["verdict"], "partial");

    // The tables: a column only because some period was corroborated.
    let table = run(&["outages", "--data-dir", d]);
    let head = table.lines().next().unwrap();
    assert!(head.ends_with("ELSEWHERE"), "{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(row("o-dest").contains("  destination  "), "{table}");
    assert!(
        row("o-dest").ends_with("abroad: also down; backup: no data"),
        "{table}"
    );
    assert!(row("o-reach").ends_with("abroad: answered"), "{table}");
    assert!(row("o-none").ends_with("  -"), "{table}");
    let table = run(&["outages", "--degraded", "--data-dir", d]);
    assert!(
        table.lines().next().unwrap().ends_with("ELSEWHERE"),
        "{table}"
    );
    assert!(table.contains("abroad: mixed"), "{table}");

    let period = [
        "--since",
        "2026-11-01T10:00:00Z",
        "--until",
        "2026-11-01T10:15:00Z",
    ];
    let report = |format: &str, extra: &[&str]| {
        let mut args = vec!["report", "--data-dir", d, "--format", format];
        args.extend(period);
        args.extend(extra);
        run(&args)
    };
    let md = report("markdown", &[]);
    assert!(md.contains("\n## Seen from elsewhere\n"), "{md}");
    assert!(md.contains(&format!("  - abroad: **{REACH}**\n")), "{md}");
    assert!(md.contains(&format!("  - abroad: **{DEST}**\n")), "{md}");
    assert!(
        md.contains("    - intl-web: 40 probes, 40 failed (100.0 %), down\n"),
        "{md}"
    );
    assert!(md.contains("  - no peer configured\n"), "{md}");
    assert!(md.contains("destination (this site: internet)"), "{md}");
    assert!(
        md.contains("- Witnessed by other sites: 2 head(s), by abroad (2); the last: line seq 11"),
        "{md}"
    );
    assert!(
        md.contains("- Heads of other sites held here: home2 (1 head(s) of site home2"),
        "{md}"
    );

    let rj: Value = serde_json::from_str(&report("json", &[])).unwrap();
    check_outages_json(&rj["outages"]);
    assert_eq!(
        rj["seen_from_elsewhere"]["periods"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(rj["witnesses"]["last"]["peer"], "abroad");
    assert_eq!(rj["witnesses"]["received"][0]["last_seq"], 10);

    let html = report("html", &[]);
    assert!(
        html.contains("<section id=\"elsewhere\"><h2>Seen from elsewhere</h2>"),
        "{html}"
    );
    assert!(
        html.contains("<li class=\"witness\">Witnessed by other sites: 2 head(s)"),
        "{html}"
    );

    let csv = report("csv", &["--table", "corroboration"]);
    assert_eq!(csv.lines().count(), 8, "{csv}");
    assert!(
        csv.contains(
            ",destination,internet,abroad,destination_down,intl-web,,40,40,1.000000,down,"
        ),
        "{csv}"
    );

    // Reading changed nothing.
    assert_eq!(
        std::fs::read(dir.path().join("journal.jsonl")).unwrap(),
        journal_before
    );
    keep_for_a_look(dir.path(), &html);
}

/// Copies the report to `target/screenshots/peer-report.html` for people.
fn keep_for_a_look(_dir: &Path, html: &str) {
    let _ = std::fs::write(shots_dir().join("peer-report.html"), html);
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
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

/// Screenshots `url` in `ns` at 390 and 1280 px as `<name>-<width>.png`.
fn screenshots(ns: &Netns, url: &str, name: &str) {
    for (w, h) in [(390, 2600), (1280, 1600)] {
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

const CONFIG: &str = r#"[daemon]
listen = "127.0.0.1:9897"
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
name = "intl-web"
group = "internet"
kind = "icmp"
host = "127.0.0.2"
"#;

/// The running daemon's API and detail view: records of earlier runs carry
/// their corroboration, and one that arrives while it runs (appended to the
/// journal, as the peer exchange does) shows at the next request.
#[test]
fn api_and_detail_view_show_corroboration_as_it_arrives() {
    if !require_root() || !require(Path::new(CHROMIUM).exists(), "chromium is not installed") {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Two hours ago: inside the page's last 30 days.
    let base = Timestamp::from_second(Timestamp::now().as_second() - 7200).unwrap();
    write_journal(&data_dir, base);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        CONFIG.replace("{data_dir}", data_dir.to_str().unwrap()),
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
    let addr = "127.0.0.1:9897";
    let api = |path: &str| -> Value {
        serde_json::from_str(&curl(&ns, &format!("http://{addr}{path}"))).unwrap()
    };
    check_outages_json(&api("/api/v1/outages"));
    let slow = api("/api/v1/degradations");
    assert_eq!(
        by_id(&slow, "s-mixed")["peer_verdicts"][0]["summary"],
        MIXED
    );

    let page = curl(&ns, &format!("http://{addr}/outage/o-dest"));
    assert!(
        page.contains("<section id=\"elsewhere\"><h2>Seen from elsewhere</h2>"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<strong>abroad</strong>: {}",
            DEST.replace('\'', "&#39;")
        )),
        "{page}"
    );
    assert!(
        page.contains("destination — seen down from elsewhere too; this site judged: internet"),
        "{page}"
    );
    // The status page's list says it in a word per peer.
    let home = curl(&ns, &format!("http://{addr}/"));
    assert!(
        home.contains("<span class=\"elsewhere\">· seen from abroad: also down, backup: no data</span></a></li>"),
        "{home}"
    );
    assert!(
        home.contains("· seen from abroad: answered</span>"),
        "{home}"
    );
    let reach = curl(&ns, &format!("http://{addr}/outage/o-reach"));
    assert!(reach.contains(REACH), "{reach}");
    let none = curl(&ns, &format!("http://{addr}/outage/o-none"));
    assert!(!none.contains("id=\"elsewhere\""), "{none}");
    screenshots(&ns, &format!("http://{addr}/outage/o-dest"), "peer-detail");

    // A corroboration arriving now, for a period of an earlier run: the
    // journal is the source, read again once it changed.
    d.wait_for(Duration::from_secs(10), |_| {
        let s = api("/api/v1/status");
        s["groups"]
            .as_array()
            .is_some_and(|g| g.iter().all(|g| g["state"] == "up"))
            .then_some(())
    });
    let mut w = writer(&data_dir);
    w.append(
        Timestamp::now(),
        &corroboration(
            base,
            (PeriodKind::Outage, "o-none", (500, 510)),
            "abroad",
            vec![target("abroad", "gw", 10, 10)],
            DEST,
        ),
    )
    .unwrap();
    drop(w);
    let after = api("/api/v1/outages");
    let none = by_id(&after, "o-none");
    assert_eq!(none["cause"], "destination", "{none:#}");
    assert_eq!(none["local_cause"], "lan");
    assert_eq!(none["peer_verdicts"][0]["verdict"], "destination_down");
    assert!(curl(&ns, &format!("http://{addr}/outage/o-none")).contains("id=\"elsewhere\""));

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
    screenshots(&ns, &format!("file://{}", file.display()), "peer-report");
}
