//! The report's "Speed against the plan" table: the throughput tests of the
//! history store, each judged against the `[plan]` rate for its direction
//! that the run in force at the test recorded in its `daemon_start` (the
//! report itself has no configuration), split into the evening peak and the
//! rest of the day in the report's time zone.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::csv_field;
use crate::config::format_rate;
use crate::journal::PlanRecord;
use crate::journal::{Ledger, Run};
use crate::outage::slow::median;
use crate::text::esc;

/// The evening peak: tests starting from 18:00 to before 23:00 local time,
/// when a shared link is busiest.
pub const PEAK_HOURS: std::ops::Range<i8> = 18..23;

/// Which hours of the day a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hours {
    EveningPeak,
    Rest,
    All,
}

impl Hours {
    fn text(self) -> &'static str {
        match self {
            Hours::EveningPeak => "evening peak 18–23",
            Hours::Rest => "rest of the day",
            Hours::All => "all day",
        }
    }
}

/// One row: the tests of a direction in some hours.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    /// `download` or `upload`.
    pub direction: String,
    pub hours: Hours,
    /// The promised rates in force for these tests, bits per second (more
    /// than one when the plan changed within the period).
    pub plan_bps: Vec<f64>,
    /// Good tests (each has a figure).
    pub tests: usize,
    /// Good tests under half of the promised rate.
    pub below_50_percent: usize,
    /// Good tests under a quarter of it.
    pub below_25_percent: usize,
    /// Median of the tests' figures as a percentage of their plan.
    pub median_percent_of_plan: Option<f64>,
    /// Tests that ended in an error (a stall, a body shorter than
    /// `min_bytes`, a time-out, …): counted, never a speed.
    pub failed_tests: u64,
}

/// One target's tests against the plan (all hours), so that a slow route
/// (an international server) stands apart from a fast one.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub target: String,
    pub group: String,
    pub direction: String,
    pub tests: usize,
    pub below_50_percent: usize,
    pub below_25_percent: usize,
    pub median_percent_of_plan: Option<f64>,
    /// The same median over the evening peak only, and over the rest.
    pub median_peak_percent_of_plan: Option<f64>,
    pub median_rest_percent_of_plan: Option<f64>,
    pub failed_tests: u64,
}

/// The table and what it leaves out.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedAgainstPlan {
    /// The evening peak in the report's time zone, `18:00-23:00`.
    pub peak_hours: String,
    /// Per direction with a plan: evening peak, rest of the day, all day.
    pub rows: Vec<PlanRow>,
    /// Per target with a plan, in name order.
    pub by_target: Vec<TargetRow>,
    /// Good tests in the period with no promised rate for their direction.
    pub tests_without_plan: usize,
    /// Failed tests in the period with no promised rate for their direction.
    pub failed_tests_without_plan: u64,
    /// Why tests are missing from the table (or why there is none), for people.
    pub notes: Vec<String>,
    /// Every test of the period, good and failed, oldest first (with or
    /// without a plan).
    pub tests: Vec<SpeedTest>,
    /// "Against the contract": per direction with a maximum in `[plan]`.
    pub against_the_contract: Vec<super::contract::ContractVerdict>,
}

/// One throughput test.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedTest {
    /// When it started, in the report's time zone (RFC 3339); a failed
    /// test: the minute it started in.
    pub time: String,
    pub target: String,
    pub group: String,
    pub direction: String,
    /// Goodput; `null` for a failed test.
    pub mbit_per_second: Option<f64>,
    /// Goodput as a share of the plan in force; `null` without a plan or
    /// for a failed test.
    pub percent_of_plan: Option<f64>,
    /// Failed tests this row stands for (failures are counted per minute).
    pub failed: u64,
    /// Latency under load: loaded RTT (median) over idle, milliseconds, and
    /// its bufferbloat grade (`not_saturated` when goodput never held
    /// steady); `null` for tests recorded before it was measured.
    pub latency_increase_ms: Option<f64>,
    pub grade: Option<String>,
}

/// A test as the table counts it.
struct Judged<'a> {
    target: &'a str,
    group: &'a str,
    direction: &'a str,
    peak: bool,
    /// The promised rate in force, `None` without one.
    plan: Option<f64>,
    /// The figure as a percentage of `plan`; `None` without a plan or for failures.
    percent: Option<f64>,
    /// Failed tests this entry stands for (0 for a good test).
    failures: u64,
    at: Timestamp,
    /// Goodput, `None` for failures.
    bps: Option<f64>,
    /// The contract's normal and minimum rates in force (the run's record).
    normal: Option<f64>,
    min: Option<f64>,
    /// The run's `[plan.criteria]` (`None`: BNetzA's).
    criteria: Option<crate::config::CriteriaSet>,
    loaded: Option<crate::history::LoadedRow>,
}

/// The run in force at `at`: the last one started at or before it.
fn run_at(runs: &[Run], at: Timestamp) -> Option<&Run> {
    runs.iter().rev().find(|r| r.started <= at)
}

/// Every test and failure of `tests` that the run in force recorded a
/// target for, judged against its plan (`given` replacing the recorded
/// rates for the directions it names).
fn judge_all<'a>(
    runs: &'a [Run],
    tests: Vec<crate::history::TargetTests>,
    tz: &TimeZone,
    given: Option<PlanRecord>,
) -> Vec<Judged<'a>> {
    let peak = |t: Timestamp| PEAK_HOURS.contains(&t.to_zoned(tz.clone()).hour());
    let mut judged = Vec::new();
    for target in tests {
        // The run's own record of the target: its direction and its plan.
        let of = |at: Timestamp| {
            let (run_plan, targets) = run_at(runs, at)?.config_at(at);
            let t = targets.iter().find(|t| t.target == target.target)?;
            let plan = given
                .and_then(|p| p.rate(&t.direction))
                .or_else(|| run_plan.and_then(|p| p.rate(&t.direction)))
                .filter(|r| *r > 0.0);
            let (normal, min) = match (run_plan, t.direction.as_str()) {
                (Some(p), "download") => (p.download_normal_bps, p.download_min_bps),
                (Some(p), "upload") => (p.upload_normal_bps, p.upload_min_bps),
                _ => (None, None),
            };
            let criteria = run_plan.and_then(|p| p.criteria);
            Some((t, plan, normal, min, criteria))
        };
        for t in &target.tests {
            if let Some((record, plan, normal, min, criteria)) = of(t.at) {
                judged.push(Judged {
                    criteria,
                    loaded: t.loaded,
                    normal,
                    min,
                    target: &record.target,
                    group: &record.group,
                    direction: &record.direction,
                    peak: peak(t.at),
                    plan,
                    percent: plan.map(|p| 100.0 * t.bits_per_second / p),
                    failures: 0,
                    at: t.at,
                    bps: Some(t.bits_per_second),
                });
            }
        }
        for &(minute, n) in &target.failures {
            // A test started in this minute, perhaps after a run began in it.
            let last = minute
                .checked_add(jiff::SignedDuration::from_secs(59))
                .unwrap_or(minute);
            if let Some((record, plan, normal, min, criteria)) = of(last) {
                judged.push(Judged {
                    criteria,
                    loaded: None,
                    normal,
                    min,
                    target: &record.target,
                    group: &record.group,
                    direction: &record.direction,
                    peak: peak(minute),
                    plan,
                    percent: None,
                    failures: u64::from(n),
                    at: minute,
                    bps: None,
                });
            }
        }
    }
    judged
}

/// "Against the contract" per direction with a maximum in force, from the
/// judged tests in time order.
fn contract_verdicts(
    judged: &[Judged<'_>],
    tz: &TimeZone,
) -> Vec<super::contract::ContractVerdict> {
    let mut verdicts = Vec::new();
    for direction in ["download", "upload"] {
        let tests: Vec<super::contract::Test> = judged
            .iter()
            .filter(|j| j.direction == direction)
            .filter_map(|j| {
                Some(super::contract::Test {
                    at: j.at,
                    bps: j.bps?,
                    max: j.plan?,
                    normal: j.normal,
                    min: j.min,
                    criteria: j.criteria,
                })
            })
            .collect();
        if let Some(v) = super::contract::build(direction, &tests, tz) {
            verdicts.push(v);
        }
    }
    verdicts
}

/// The listing's row for one judged test.
fn speed_test(j: &Judged<'_>, tz: &TimeZone) -> SpeedTest {
    SpeedTest {
        time: super::format_in(j.at, tz),
        target: j.target.to_string(),
        group: j.group.to_string(),
        direction: j.direction.to_string(),
        mbit_per_second: j.bps.map(|b| (b / 1e4).round() / 100.0),
        percent_of_plan: j.percent.map(|p| (p * 10.0).round() / 10.0),
        failed: j.failures,
        latency_increase_ms: j
            .loaded
            .and_then(|l| l.latency_increase_seconds)
            .map(|s| (s * 1e4).round() / 10.0),
        grade: j.loaded.map(|l| {
            l.grade.map_or_else(
                || {
                    if l.not_saturated {
                        "not_saturated".to_owned()
                    } else {
                        "-".to_owned()
                    }
                },
                str::to_owned,
            )
        }),
    }
}

/// The note that the plan came from the command line.
fn given_note(p: PlanRecord) -> String {
    let named: Vec<String> = [("download", p.download_bps), ("upload", p.upload_bps)]
        .iter()
        .filter_map(|(d, r)| r.map(|r| format!("{d} {}", format_rate(r))))
        .collect();
    format!(
        "The plan ({}) was given on the command line (--plan-download/--plan-upload), not taken from the journal.",
        named.join(", ")
    )
}

/// The table for `[since, until)`, or `None` when the period has no
/// throughput test at all (good or failed).
/// `given`: rates from the command line, replacing the recorded ones for the
/// directions they name.
pub(super) fn build(
    data_dir: &Path,
    history: &Ledger,
    since: Timestamp,
    until: Timestamp,
    tz: &TimeZone,
    given: Option<PlanRecord>,
) -> Option<SpeedAgainstPlan> {
    let runs = &history.runs;
    let mut names: Vec<String> = runs
        .iter()
        .filter(|r| r.started < until)
        .flat_map(|r| r.all_throughput_targets().map(|t| t.target.clone()))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return None;
    }
    let tests = crate::history::read_tests(data_dir, &names, since, until);
    let mut judged = judge_all(runs, tests, tz, given);
    let mut table = (!judged.is_empty()).then(|| summarise(&judged))?;
    judged.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.target.cmp(b.target)));
    table
        .against_the_contract
        .extend(contract_verdicts(&judged, tz));
    table.tests = judged.iter().map(|j| speed_test(j, tz)).collect();
    if let Some(p) = given {
        table.notes.push(given_note(p));
    }
    Some(table)
}

fn summarise(judged: &[Judged<'_>]) -> SpeedAgainstPlan {
    let mut rows = Vec::new();
    for direction in ["download", "upload"] {
        let of: Vec<&Judged> = judged
            .iter()
            .filter(|j| j.direction == direction && j.plan.is_some())
            .collect();
        if of.is_empty() {
            continue;
        }
        for hours in [Hours::EveningPeak, Hours::Rest, Hours::All] {
            let these: Vec<&&Judged> = of
                .iter()
                .filter(|j| match hours {
                    Hours::EveningPeak => j.peak,
                    Hours::Rest => !j.peak,
                    Hours::All => true,
                })
                .collect();
            let percents: Vec<f64> = these.iter().filter_map(|j| j.percent).collect();
            let mut plans: Vec<f64> = these.iter().filter_map(|j| j.plan).collect();
            plans.sort_by(f64::total_cmp);
            plans.dedup();
            if plans.is_empty() {
                // No test in these hours: the plan of the direction still heads the row.
                plans = of.iter().filter_map(|j| j.plan).take(1).collect();
            }
            rows.push(PlanRow {
                direction: direction.to_string(),
                hours,
                plan_bps: plans,
                tests: percents.len(),
                below_50_percent: percents.iter().filter(|p| **p < 50.0).count(),
                below_25_percent: percents.iter().filter(|p| **p < 25.0).count(),
                median_percent_of_plan: median(percents),
                failed_tests: these.iter().map(|j| j.failures).sum(),
            });
        }
    }
    let mut targets: Vec<(&str, &str, &str)> = judged
        .iter()
        .filter(|j| j.plan.is_some())
        .map(|j| (j.target, j.group, j.direction))
        .collect();
    targets.sort();
    targets.dedup();
    let by_target = targets
        .into_iter()
        .map(|(target, group, direction)| {
            let of: Vec<&Judged> = judged
                .iter()
                .filter(|j| j.target == target && j.direction == direction && j.plan.is_some())
                .collect();
            let percents = |peak: Option<bool>| -> Vec<f64> {
                of.iter()
                    .filter(|j| peak.is_none_or(|p| j.peak == p))
                    .filter_map(|j| j.percent)
                    .collect()
            };
            let all = percents(None);
            TargetRow {
                target: target.to_string(),
                group: group.to_string(),
                direction: direction.to_string(),
                tests: all.len(),
                below_50_percent: all.iter().filter(|p| **p < 50.0).count(),
                below_25_percent: all.iter().filter(|p| **p < 25.0).count(),
                median_percent_of_plan: median(all),
                median_peak_percent_of_plan: median(percents(Some(true))),
                median_rest_percent_of_plan: median(percents(Some(false))),
                failed_tests: of.iter().map(|j| j.failures).sum(),
            }
        })
        .collect();
    let without: Vec<&Judged> = judged.iter().filter(|j| j.plan.is_none()).collect();
    let tests_without_plan = without.iter().filter(|j| j.failures == 0).count();
    let failed_tests_without_plan: u64 = without.iter().map(|j| j.failures).sum();
    let good = judged.iter().filter(|j| j.failures == 0).count();
    let failed: u64 = judged.iter().map(|j| j.failures).sum();
    let mut notes = Vec::new();
    if rows.is_empty() {
        notes.push(format!(
            "{good} throughput test(s) ({failed} more failed) were recorded in this period, but no [plan] was configured, so none can be compared with a promised rate: set [plan] download and upload in the daemon's configuration."
        ));
    } else if tests_without_plan > 0 || failed_tests_without_plan > 0 {
        notes.push(format!(
            "{tests_without_plan} test(s) ({failed_tests_without_plan} more failed) ran while no [plan] rate was set for their direction and are not in the table."
        ));
    }
    SpeedAgainstPlan {
        peak_hours: format!("{:02}:00-{:02}:00", PEAK_HOURS.start, PEAK_HOURS.end),
        rows,
        by_target,
        tests_without_plan,
        failed_tests_without_plan,
        notes,
        tests: Vec::new(),
        against_the_contract: Vec::new(),
    }
}

fn plan_text(r: &PlanRow) -> String {
    r.plan_bps
        .iter()
        .map(|b| format_rate(*b))
        .collect::<Vec<_>>()
        .join(", then ")
}

/// `5 (41.7 %)`.
fn share(n: usize, of: usize) -> String {
    if of == 0 {
        "-".into()
    } else {
        format!("{n} ({:.0} %)", 100.0 * n as f64 / of as f64)
    }
}

fn lead(tz: &str) -> String {
    let hint = if tz.eq_ignore_ascii_case("utc") {
        " (pass --tz with the local zone for local hours)"
    } else {
        ""
    };
    format!(
        "Throughput tests against the rate the contract promises ([plan]), by the hour they started in {tz}{hint}; the evening peak is 18:00 to 23:00."
    )
}

fn percent_text(v: Option<f64>) -> String {
    v.map_or("-".into(), |m| format!("{m:.0} %"))
}

const TARGET_HEAD: [&str; 8] = [
    "target",
    "group",
    "direction",
    "tests",
    "below 50 %",
    "below 25 %",
    "median of plan: peak / rest / all",
    "failed tests",
];

fn target_cells(r: &TargetRow) -> [String; 8] {
    [
        r.target.clone(),
        r.group.clone(),
        r.direction.clone(),
        r.tests.to_string(),
        share(r.below_50_percent, r.tests),
        share(r.below_25_percent, r.tests),
        format!(
            "{} / {} / {}",
            percent_text(r.median_peak_percent_of_plan),
            percent_text(r.median_rest_percent_of_plan),
            percent_text(r.median_percent_of_plan)
        ),
        r.failed_tests.to_string(),
    ]
}

const EXPLAIN: &str = "A test's figure is its goodput (bits per second over the transfer, all streams together) as a share of the rate [plan] promised for its direction in the configuration in force when it ran. Failed tests (a stall, a body shorter than min_bytes, a time-out) have no figure and are only counted; tests skipped for the daily data budget are not tests.";

fn cells(r: &PlanRow) -> [String; 8] {
    [
        r.direction.clone(),
        plan_text(r),
        r.hours.text().to_string(),
        r.tests.to_string(),
        share(r.below_50_percent, r.tests),
        share(r.below_25_percent, r.tests),
        percent_text(r.median_percent_of_plan),
        r.failed_tests.to_string(),
    ]
}

const HEAD: [&str; 8] = [
    "direction",
    "plan",
    "hours",
    "tests",
    "below 50 %",
    "below 25 %",
    "median of plan",
    "failed tests",
];

pub(super) fn markdown(out: &mut String, table: Option<&SpeedAgainstPlan>, tz: &str) {
    let Some(t) = table else { return };
    let _ = writeln!(out, "\n## Speed against the plan\n");
    if !t.rows.is_empty() {
        let _ = writeln!(out, "{}\n", lead(tz));
        let _ = writeln!(out, "| {} |", HEAD.join(" | "));
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|");
        for r in &t.rows {
            let _ = writeln!(out, "| {} |", cells(r).join(" | "));
        }
        let _ = writeln!(out, "\nBy target:\n");
        let _ = writeln!(out, "| {} |", TARGET_HEAD.join(" | "));
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|");
        for r in &t.by_target {
            let _ = writeln!(out, "| {} |", target_cells(r).join(" | "));
        }
        let _ = writeln!(out);
    }
    for n in &t.notes {
        let _ = writeln!(out, "{n}\n");
    }
    if !t.rows.is_empty() {
        let _ = writeln!(out, "{EXPLAIN}");
    }
}

pub(super) fn html(table: Option<&SpeedAgainstPlan>, tz: &str) -> String {
    let Some(t) = table else {
        return String::new();
    };
    let mut b = String::from("<section id=\"plan\"><h2>Speed against the plan</h2>");
    if !t.rows.is_empty() {
        let _ = write!(b, "<p>{}</p><table><thead><tr>", esc(&lead(tz)));
        for h in HEAD {
            let _ = write!(b, "<th>{}</th>", esc(h));
        }
        b.push_str("</tr></thead><tbody>");
        for r in &t.rows {
            let class = if r.hours == Hours::All {
                " class=\"total\""
            } else {
                ""
            };
            let _ = write!(b, "<tr{class}>");
            for (i, c) in cells(r).iter().enumerate() {
                let num = if i >= 3 { " class=\"num\"" } else { "" };
                let _ = write!(b, "<td{num}>{}</td>", esc(c));
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table><p>By target:</p><table><thead><tr>");
        for h in TARGET_HEAD {
            let _ = write!(b, "<th>{}</th>", esc(h));
        }
        b.push_str("</tr></thead><tbody>");
        for r in &t.by_target {
            b.push_str("<tr>");
            for (i, c) in target_cells(r).iter().enumerate() {
                let num = if i >= 3 { " class=\"num\"" } else { "" };
                let _ = write!(b, "<td{num}>{}</td>", esc(c));
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table>");
    }
    for n in &t.notes {
        let _ = write!(b, "<p>{}</p>", esc(n));
    }
    if !t.rows.is_empty() {
        let _ = write!(b, "<p class=\"legend\">{}</p>", esc(EXPLAIN));
    }
    b.push_str("</section>");
    b
}

/// The CSV table of the rows against the plan (the header alone without).
pub(super) fn csv(out: &mut String, table: Option<&SpeedAgainstPlan>) {
    out.push_str(
        "plan_direction,plan_bps,hours,tests,below_50_percent,below_25_percent,median_percent_of_plan,failed_tests\n",
    );
    let rows = table.map_or(&[][..], |t| &t.rows[..]);
    for r in rows {
        let plans: Vec<String> = r.plan_bps.iter().map(|b| format!("{b:.0}")).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            csv_field(&r.direction),
            csv_field(&plans.join(" ")),
            match r.hours {
                Hours::EveningPeak => "evening_peak",
                Hours::Rest => "rest",
                Hours::All => "all",
            },
            r.tests,
            r.below_50_percent,
            r.below_25_percent,
            r.median_percent_of_plan
                .map_or(String::new(), |m| format!("{m:.3}")),
            r.failed_tests,
        );
    }
}

/// The columns of the table of every test.
const TEST_HEAD: [&str; 7] = [
    "time",
    "target",
    "direction",
    "Mbit/s",
    "% of plan",
    "group",
    "latency under load",
];

fn test_cells(t: &SpeedTest) -> [String; 7] {
    // `2026-12-06 17:04:38`: the zone is the report's, said at its top.
    let time: String = t
        .time
        .chars()
        .take(19)
        .collect::<String>()
        .replacen('T', " ", 1);
    [
        time,
        t.target.clone(),
        t.direction.clone(),
        match t.mbit_per_second {
            Some(m) => format!("{m:.2}"),
            None if t.failed == 1 => "failed".into(),
            None => format!("{} failed", t.failed),
        },
        t.percent_of_plan
            .map_or("-".into(), |p| format!("{p:.1} %")),
        t.group.clone(),
        match (t.latency_increase_ms, &t.grade) {
            (Some(ms), Some(g)) => format!("+{ms:.1} ms ({g})"),
            (None, Some(g)) => g.clone(),
            _ => "-".into(),
        },
    ]
}

/// Every speed test, as a Markdown table.
pub(super) fn markdown_tests(out: &mut String, table: Option<&SpeedAgainstPlan>) {
    let Some(t) = table.filter(|t| !t.tests.is_empty()) else {
        return;
    };
    let _ = writeln!(out, "\n## Speed tests\n");
    let _ = writeln!(out, "| {} |", TEST_HEAD.join(" | "));
    let _ = writeln!(out, "|---|---|---|---:|---:|---|---|");
    for test in &t.tests {
        let _ = writeln!(out, "| {} |", test_cells(test).join(" | "));
    }
}

/// Every speed test, as an HTML table scrolling in its own box on a phone.
pub(super) fn html_tests(table: Option<&SpeedAgainstPlan>) -> String {
    let Some(t) = table.filter(|t| !t.tests.is_empty()) else {
        return String::new();
    };
    let mut b = String::from(
        "<section id=\"speedtests\"><h2>Speed tests</h2><div class=\"scroll\"><table><thead><tr>",
    );
    for h in TEST_HEAD {
        let _ = write!(b, "<th>{}</th>", esc(h));
    }
    b.push_str("</tr></thead><tbody>");
    for test in &t.tests {
        b.push_str("<tr>");
        for (i, c) in test_cells(test).iter().enumerate() {
            let num = if i == 3 || i == 4 {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(b, "<td{num}>{}</td>", esc(c));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></div></section>");
    b
}

/// Every speed test as a CSV table (the header alone without tests).
pub(super) fn csv_tests(out: &mut String, table: Option<&SpeedAgainstPlan>) {
    out.push_str("time,target,group,direction,mbit_per_second,percent_of_plan,failed_tests,latency_increase_ms,grade\n");
    let tests = table.map_or(&[][..], |t| &t.tests[..]);
    for t in tests {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            t.time,
            csv_field(&t.target),
            csv_field(&t.group),
            csv_field(&t.direction),
            t.mbit_per_second
                .map_or(String::new(), |m| format!("{m:.2}")),
            t.percent_of_plan
                .map_or(String::new(), |p| format!("{p:.1}")),
            t.failed,
            t.latency_increase_ms
                .map_or(String::new(), |m| format!("{m:.1}")),
            t.grade.as_deref().unwrap_or(""),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
    use crate::journal::{DaemonStart, PlanRecord, ThroughputTarget};
    use crate::report::{CsvTable, Format, build, render, render_with};

    fn start(plan: Option<PlanRecord>) -> Entry {
        Entry::DaemonStart(DaemonStart {
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
            site: None,
            plan,
            throughput_targets: vec![
                ThroughputTarget {
                    target: "intl".into(),
                    group: "international".into(),
                    direction: "download".into(),
                },
                ThroughputTarget {
                    target: "up".into(),
                    group: "isp".into(),
                    direction: "upload".into(),
                },
            ],
        })
    }

    fn at(s: &str) -> Timestamp {
        format!("2026-11-01T{s}Z").parse().unwrap()
    }

    /// A journal with `runs` (start time, plan) and a history file with
    /// `tests` (time, target index, Mbit/s) and one failed test of `intl`.
    fn data(
        runs: &[(&str, Option<PlanRecord>)],
        tests: &[(&str, usize, f64)],
        failed: &str,
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let counters = JournalCounters {
            writes: prometheus::IntCounter::new("w", "w").unwrap(),
            errors: prometheus::IntCounter::new("e", "e").unwrap(),
        };
        let tail = journal::read(dir.path()).unwrap().tail;
        let mut w = JournalWriter::new(
            Box::new(FileSink::open(dir.path(), false).unwrap()),
            &tail,
            counters,
        );
        for (t, plan) in runs {
            w.append(at(t), &start(*plan)).unwrap();
        }
        let mut file = String::from("N\t0\tintl\nN\t1\tup\nN\t2\tplain-http\n");
        for (t, idx, mbit) in tests {
            let bps = mbit * 1e6;
            file += &format!(
                "T\t{}\t{idx}\t4000000\t1.5\t{bps:.0}\n",
                at(t).as_millisecond()
            );
        }
        let minute = at(failed).as_second() / 60;
        file += &format!("M\t{minute}\t0\t1\t1\t0\t0\t0\t\n");
        // A torn last line is skipped.
        file += "T\t17";
        std::fs::create_dir_all(dir.path().join("history")).unwrap();
        std::fs::write(dir.path().join("history/2026-11-01.1.lwh"), file).unwrap();
        dir
    }

    const PLAN_100: PlanRecord = PlanRecord {
        download_bps: Some(100e6),
        upload_bps: None,
        download_min_bps: None,
        upload_min_bps: None,
        download_normal_bps: None,
        upload_normal_bps: None,
        criteria: None,
    };
    const PLAN_200: PlanRecord = PlanRecord {
        download_bps: Some(200e6),
        upload_bps: None,
        download_min_bps: None,
        upload_min_bps: None,
        download_normal_bps: None,
        upload_normal_bps: None,
        criteria: None,
    };

    /// A `config_reload` that changes `[plan]` judges the tests after it by
    /// the new promise, those before by the old one.
    #[test]
    fn a_reload_changes_the_plan_from_its_moment_on() {
        let dir = data(
            &[("00:00:00", Some(PLAN_100))],
            &[("10:00:00", 0, 80.0), ("13:00:00", 0, 80.0)],
            "21:00:00",
        );
        let counters = JournalCounters {
            writes: prometheus::IntCounter::new("w", "w").unwrap(),
            errors: prometheus::IntCounter::new("e", "e").unwrap(),
        };
        let tail = journal::read(dir.path()).unwrap().tail;
        let mut w = JournalWriter::new(
            Box::new(FileSink::open(dir.path(), false).unwrap()),
            &tail,
            counters,
        );
        let Entry::DaemonStart(ds) = start(None) else {
            unreachable!()
        };
        let reload = crate::journal::ConfigReload {
            config_digest: "e".into(),
            config_source: "<test>".into(),
            previous_digest: "d".into(),
            added: vec![],
            removed: vec![],
            changed: vec![],
            added_groups: vec![],
            removed_groups: vec![],
            restart_only: vec![],
            plan: Some(PLAN_200),
            throughput_targets: ds.throughput_targets,
        };
        w.append(at("12:00:00"), &Entry::ConfigReload(reload))
            .unwrap();
        drop(w);
        let r = build(dir.path(), at("00:00:00"), at("23:30:00"), "UTC").unwrap();
        let t = r.speed_against_plan.as_ref().unwrap();
        let all = t.rows.iter().find(|r| r.hours == Hours::All).unwrap();
        assert_eq!(all.plan_bps, [100e6, 200e6]);
        // 80 of 100 before the reload, 80 of 200 (below 50 %) after it.
        assert_eq!((all.tests, all.below_50_percent), (2, 1));
        assert_eq!(all.median_percent_of_plan, Some(60.0));
    }

    #[test]
    fn tests_are_judged_against_the_plan_in_force_by_evening_peak_and_rest() {
        let dir = data(
            &[("00:00:00", Some(PLAN_100)), ("22:30:00", Some(PLAN_200))],
            &[
                ("10:00:00", 0, 80.0),
                ("12:00:00", 0, 40.0),
                ("19:00:00", 0, 20.0),
                ("20:00:00", 0, 30.0),
                // The new plan: 50 of 200 is 25 %, not below it.
                ("22:40:00", 0, 50.0),
                // Upload has no plan rate: left out, and said so.
                ("11:00:00", 1, 10.0),
                // Not a throughput target: a big HTTP body.
                ("11:30:00", 2, 900.0),
                // Outside the period.
                ("23:59:00", 0, 1.0),
            ],
            "21:00:00",
        );
        let r = build(dir.path(), at("00:00:00"), at("23:30:00"), "UTC").unwrap();
        let t = r.speed_against_plan.as_ref().unwrap();
        let row = |h: Hours| t.rows.iter().find(|r| r.hours == h).unwrap();
        let peak = row(Hours::EveningPeak);
        assert_eq!(peak.plan_bps, [100e6, 200e6]);
        assert_eq!(
            (
                peak.tests,
                peak.below_50_percent,
                peak.below_25_percent,
                peak.failed_tests
            ),
            (3, 3, 1, 1)
        );
        assert_eq!(peak.median_percent_of_plan, Some(25.0));
        let rest = row(Hours::Rest);
        assert_eq!(
            (rest.tests, rest.below_50_percent, rest.below_25_percent),
            (2, 1, 0)
        );
        assert_eq!(rest.median_percent_of_plan, Some(60.0));
        let all = row(Hours::All);
        assert_eq!(
            (all.tests, all.below_50_percent, all.failed_tests),
            (5, 4, 1)
        );
        assert_eq!(all.median_percent_of_plan, Some(30.0));
        assert_eq!(t.rows.len(), 3, "no upload rows without an upload plan");
        assert_eq!(t.by_target.len(), 1, "{:?}", t.by_target);
        let intl = &t.by_target[0];
        assert_eq!(
            (intl.target.as_str(), intl.group.as_str()),
            ("intl", "international")
        );
        assert_eq!(
            (
                intl.median_peak_percent_of_plan,
                intl.median_rest_percent_of_plan
            ),
            (Some(25.0), Some(60.0))
        );
        assert_eq!(t.tests_without_plan, 1);
        assert!(t.notes[0].starts_with("1 test(s)"), "{:?}", t.notes);

        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("## Speed against the plan"), "{md}");
        assert!(
            md.contains(
                "| download | 100 Mbit/s, then 200 Mbit/s | evening peak 18–23 | 3 | 3 (100 %) | 1 (33 %) | 25 % | 1 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| intl | international | download | 5 | 4 (80 %) | 1 (20 %) | 25 % / 60 % / 30 % | 1 |"),
            "{md}"
        );
        let html = render(&r, Format::Html).unwrap();
        assert!(html.contains("<section id=\"plan\"><h2>Speed against the plan</h2>"));
        assert!(html.contains("<td class=\"num\">4 (80 %)</td>"), "{html}");
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
        assert_eq!(json["speed_against_plan"]["rows"][2]["hours"], "all");
        assert_eq!(json["speed_against_plan"]["rows"][2]["below_50_percent"], 4);
        let csv = render_with(&r, Format::Csv, CsvTable::Plan).unwrap();
        assert!(csv.starts_with("plan_direction,plan_bps,"), "{csv}");
        assert!(
            csv.contains("\ndownload,100000000 200000000,all,5,4,1,30.000,1\n"),
            "{csv}"
        );
        assert!(!csv.contains("\n\n"), "one table, no blank line: {csv}");

        // Every test, good, failed and without a plan, in every format.
        assert_eq!(t.tests.len(), 7, "{:?}", t.tests);
        assert!(t.tests.windows(2).all(|w| w[0].time <= w[1].time));
        let good: Vec<&SpeedTest> = t.tests.iter().filter(|x| x.failed == 0).collect();
        assert_eq!(good.len(), 6);
        assert!(
            good.iter()
                .any(|x| x.percent_of_plan == Some(25.0) && x.direction == "download"),
            "{good:?}"
        );
        assert!(
            good.iter().any(|x| x.percent_of_plan.is_none()),
            "the test without a plan"
        );
        assert!(md.contains("## Speed tests"), "{md}");
        assert!(
            md.contains("| time | target | direction | Mbit/s | % of plan | group |"),
            "{md}"
        );
        assert!(md.contains(" | 25.0 % | international |"), "{md}");
        assert!(
            html.contains("<section id=\"speedtests\"><h2>Speed tests</h2><div class=\"scroll\">"),
            "{html}"
        );
        let csv = render_with(&r, Format::Csv, CsvTable::SpeedTests).unwrap();
        assert!(
            csv.starts_with(
                "time,target,group,direction,mbit_per_second,percent_of_plan,failed_tests,latency_increase_ms,grade\n"
            ),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 8, "{csv}");
        assert!(csv.lines().all(|l| l.split(',').count() == 9), "{csv}");
        assert_eq!(
            json["speed_against_plan"]["tests"]
                .as_array()
                .unwrap()
                .len(),
            7
        );

        // The evening in another zone: 10:00 and 12:00 UTC are 18:00 and
        // 20:00 in Asia/Shanghai (+08:00), the UTC evening is past midnight.
        if TimeZone::get("Asia/Shanghai").is_ok() {
            let r = build(dir.path(), at("00:00:00"), at("23:30:00"), "Asia/Shanghai").unwrap();
            let t = r.speed_against_plan.unwrap();
            let peak = t
                .rows
                .iter()
                .find(|r| r.hours == Hours::EveningPeak)
                .unwrap();
            assert_eq!(peak.tests, 2, "{peak:?}");
            assert_eq!(peak.median_percent_of_plan, Some(60.0));
        }
    }

    #[test]
    fn without_a_plan_the_report_says_why_and_without_tests_says_nothing() {
        let dir = data(&[("00:00:00", None)], &[("19:00:00", 0, 20.0)], "21:00:00");
        let r = build(dir.path(), at("00:00:00"), at("23:00:00"), "UTC").unwrap();
        let t = r.speed_against_plan.as_ref().unwrap();
        assert!(t.rows.is_empty());
        assert_eq!((t.tests_without_plan, t.failed_tests_without_plan), (1, 1));
        let md = render(&r, Format::Markdown).unwrap();
        assert!(
            md.contains("1 throughput test(s) (1 more failed) were recorded in this period, but no [plan] was configured"),
            "{md}"
        );
        assert!(!md.contains("| direction | plan |"), "{md}");
        assert!(
            render(&r, Format::Html)
                .unwrap()
                .contains("but no [plan] was configured")
        );
        // The plan given on the command line, for a journal without one.
        let given = PlanRecord {
            download_bps: Some(40e6),
            upload_bps: None,
            ..Default::default()
        };
        let r = crate::report::build_with_plan(
            dir.path(),
            at("00:00:00"),
            at("23:00:00"),
            "UTC",
            Some(given),
        )
        .unwrap();
        let t = r.speed_against_plan.as_ref().unwrap();
        let all = t.rows.iter().find(|r| r.hours == Hours::All).unwrap();
        assert_eq!(
            (all.tests, all.below_50_percent, all.failed_tests),
            (1, 0, 1)
        );
        assert_eq!(all.median_percent_of_plan, Some(50.0));
        assert!(
            t.notes[0].contains("given on the command line"),
            "{:?}",
            t.notes
        );
        // A period without tests: no section at all.
        let r = build(dir.path(), at("00:00:00"), at("01:00:00"), "UTC").unwrap();
        assert!(r.speed_against_plan.is_none());
        assert!(
            !render(&r, Format::Markdown)
                .unwrap()
                .contains("Speed against the plan")
        );
    }
}
