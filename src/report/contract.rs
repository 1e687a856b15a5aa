//! The report's "Against the contract" section: the scheduled throughput
//! tests judged by the German regulator's published criteria (BNetzA,
//! Allgemeinverfügung of 13 Dec 2021) and the FCC's consistent-speed views.
//!
//! A deviation exists when any of these holds:
//! - (a) on 2 of 3 measuring days, 90 % of the contracted maximum is never reached;
//! - (b) the normally available rate is missed in more than 10 % of the tests;
//! - (c) the contracted minimum is undercut on 2 of 3 measuring days.
//!
//! The sampling rules: 30 tests, 10 on each of 3 calendar days (the report's
//! time zone) with at least one calendar day between measuring days, all
//! within 14 days; tests at least 5 minutes apart, and at least 3 hours
//! between a day's 5th and 6th test. When linkwatch's tests hold such a
//! campaign, the criteria are judged on it (the latest one); otherwise on all
//! measuring days, "2 of 3" read as "two thirds of the days, at least two",
//! and the section says what is missing.
//!
//! This reproduces the published criteria on linkwatch's own tests; it is
//! not the regulator's certified measurement app, whose protocol alone
//! counts as proof there.
//!
//! `[plan.criteria]` replaces the thresholds ([`CriteriaSet`]): the share of
//! the maximum for (a), the share of tests allowed below normal for (b),
//! "`days_needed` of `of_days`" for (a) and (c), and the tests of a campaign
//! (`min_tests`, spread evenly over its days). The spacing rules stay.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::config::{
    CriteriaSet, FCC_PEAK, FIFTH_TO_SIXTH_SECONDS, MIN_SPACING_SECONDS, format_rate,
};
use crate::text::esc;

/// Days a campaign may span (tests per day and days per campaign: the
/// [`CriteriaSet`]).
pub const SPAN_DAYS: i32 = 14;

/// One test as the section counts it.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub at: Timestamp,
    pub bps: f64,
    /// The contract in force at the test.
    pub max: f64,
    pub normal: Option<f64>,
    pub min: Option<f64>,
    /// The run's `[plan.criteria]` (`None`: BNetzA's).
    pub criteria: Option<CriteriaSet>,
}

/// One measuring day.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: String,
    pub tests: usize,
    /// Tests that count under the spacing rules (at most the tests a
    /// day needs, 10 under BNetzA).
    pub counted_tests: usize,
    pub best_mbit_per_second: f64,
    /// `max_share` (90 % under BNetzA) of the maximum reached at least once.
    pub reached_90_percent_of_max: bool,
    /// Tests below the minimum (when one is set).
    pub below_minimum: usize,
}

/// One criterion's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// `a`, `b`, `c`.
    pub id: String,
    pub text: String,
    /// `true`: breached; `null`: cannot be judged (no such rate in the plan).
    pub breached: Option<bool>,
    pub detail: String,
}

/// The section for one direction.
#[derive(Debug, Clone, Serialize)]
pub struct ContractVerdict {
    pub direction: String,
    /// `bnetza` or `custom` (`[plan.criteria]`).
    pub criteria: String,
    /// The thresholds judged with.
    pub thresholds: CriteriaSet,
    pub max_bps: f64,
    pub normal_bps: Option<f64>,
    pub min_bps: Option<f64>,
    pub days: Vec<Day>,
    /// The days the criteria were judged on (a valid campaign, else all).
    pub judged_days: Vec<String>,
    pub sampling_rules_met: bool,
    /// What is missing for a complete campaign, for people.
    pub missing: Vec<String>,
    pub tests_below_normal: usize,
    pub tests_judged: usize,
    pub criteria_results: Vec<Criterion>,
    /// Any criterion breached.
    pub deviation: bool,
    /// FCC 80/80: the rate that 80 % of the tests reached, as % of the maximum.
    pub fcc_80_80_percent: Option<f64>,
    /// FCC peak-hour (19-23) buckets: ≥ 95 %, 80-95 %, < 80 % of the maximum.
    pub peak_tests: usize,
    pub peak_at_least_95_percent: usize,
    pub peak_80_to_95_percent: usize,
    pub peak_below_80_percent: usize,
    pub disclaimer: String,
}

pub const DISCLAIMER: &str = "This reproduces the published BNetzA criteria (Allgemeinverfügung, 13 Dec 2021) and the FCC's 80/80 and peak-hour views on linkwatch's own throughput tests. It is not the regulator's certified measurement app (breitbandmessung.de), whose protocol alone is proof under those rules.";

/// The greedy count of a day's tests under the spacing rules: in time
/// order, each at least 5 min after the last counted one, the 6th at least
/// 3 h after the 5th; at most `per_day` (10).
fn counted(day: &[&Test], per_day: usize) -> usize {
    let mut kept: Vec<Timestamp> = Vec::new();
    for t in day {
        if kept.len() >= per_day {
            break;
        }
        let ok = match kept.last() {
            None => true,
            Some(last) => {
                let gap = t.at.as_second() - last.as_second();
                let need = if kept.len() == 5 {
                    FIFTH_TO_SIXTH_SECONDS
                } else {
                    MIN_SPACING_SECONDS
                };
                gap >= need
            }
        };
        if ok {
            kept.push(t.at);
        }
    }
    kept.len()
}

/// The latest `days` (3) complete days, pairwise a calendar day apart,
/// within 14 days. From each last day, latest first, the latest earlier day
/// at least 2 days before the one taken leaves the most room for the rest,
/// so the greedy choice finds a campaign ending there if one exists.
fn campaign(complete: &[Date], days: usize) -> Option<Vec<Date>> {
    let gap = |x: Date, y: Date| (y - x).get_days();
    for last in (0..complete.len()).rev() {
        let mut chosen = vec![complete[last]];
        for &d in complete[..last].iter().rev() {
            if chosen.len() == days.max(1) {
                break;
            }
            if chosen.last().is_some_and(|&l| gap(d, l) >= 2) {
                chosen.push(d);
            }
        }
        let first = chosen.last().copied().unwrap_or(complete[last]);
        if chosen.len() == days.max(1) && gap(first, complete[last]) < SPAN_DAYS {
            chosen.reverse();
            return Some(chosen);
        }
    }
    None
}

/// The calendar day of `t` in the report's time zone.
fn test_date(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_zoned(tz.clone()).date()
}

/// One `Day` per date of `dates`, and the dates whose counted tests
/// complete a measuring day.
fn measuring_days(
    tests: &[Test],
    dates: &[Date],
    tz: &TimeZone,
    set: &CriteriaSet,
) -> (Vec<Day>, Vec<Date>) {
    let of_day =
        |d: Date| -> Vec<&Test> { tests.iter().filter(|t| test_date(t.at, tz) == d).collect() };
    let mut days = Vec::new();
    let mut complete = Vec::new();
    for &d in dates {
        let these = of_day(d);
        let n = counted(&these, set.tests_per_day());
        if n >= set.tests_per_day() {
            complete.push(d);
        }
        let best = these.iter().map(|t| t.bps).fold(0.0, f64::max);
        days.push(Day {
            date: d.to_string(),
            tests: these.len(),
            counted_tests: n,
            best_mbit_per_second: (best / 1e4).round() / 100.0,
            reached_90_percent_of_max: these.iter().any(|t| t.bps >= set.max_share * t.max),
            below_minimum: these
                .iter()
                .filter(|t| t.min.is_some_and(|m| t.bps < m))
                .count(),
        });
    }
    (days, complete)
}

/// What is missing for a complete campaign (when none was found).
fn missing_for_campaign(days: &[Day], complete: &[Date], set: &CriteriaSet) -> Vec<String> {
    let (per_day, n_days) = (set.tests_per_day(), set.of_days as usize);
    let mut missing = Vec::new();
    for d in days {
        if d.counted_tests < per_day {
            missing.push(format!(
                "day {} has {} of {per_day} tests that count ({} run; 5 min apart, 3 h between the 5th and 6th)",
                d.date, d.counted_tests, d.tests
            ));
        }
    }
    missing.push(format!(
        "a campaign needs {n_days} days with {per_day} counted tests each, at least one calendar day apart, within {SPAN_DAYS} days: {} complete day(s) found{}",
        complete.len(),
        if complete.len() >= n_days {
            ", but not spaced so"
        } else {
            ""
        }
    ));
    missing
}

/// Criteria (a), (b), (c) judged on `judged_days` and `judged_tests`, and
/// the number of tests below the normal rate.
fn judge_criteria(
    judged_days: &[&Day],
    judged_tests: &[&Test],
    max: f64,
    normal: Option<f64>,
    min: Option<f64>,
    set: &CriteriaSet,
) -> (Vec<Criterion>, usize) {
    let n_days = judged_days.len();
    // "2 of 3": two thirds of the judged days, at least two.
    let (k, of) = (set.days_needed as usize, set.of_days.max(1) as usize);
    let needed = (k * n_days).div_ceil(of).max(k);
    let max_pct = format_share(set.max_share);
    let normal_pct = format_share(set.normal_share_below);
    let tested_pct = format_share(1.0 - set.normal_share_below);
    let bad_a = judged_days
        .iter()
        .filter(|d| !d.reached_90_percent_of_max)
        .count();
    let below_normal = judged_tests
        .iter()
        .filter(|t| t.normal.is_some_and(|n| t.bps < n))
        .count();
    let bad_c = judged_days.iter().filter(|d| d.below_minimum > 0).count();
    let share = |n: usize| {
        if judged_tests.is_empty() {
            0.0
        } else {
            100.0 * n as f64 / judged_tests.len() as f64
        }
    };
    let results = vec![
        Criterion {
            id: "a".into(),
            text: format!("{max_pct} of the maximum reached on the measuring days"),
            breached: Some(bad_a >= needed),
            detail: format!(
                "{bad_a} of {n_days} measuring day(s) never reached {max_pct} of {} (breach from {needed})",
                format_rate(max)
            ),
        },
        Criterion {
            id: "b".into(),
            text: format!("the normally available rate reached in {tested_pct} of the tests"),
            breached: normal.map(|_| share(below_normal) > 100.0 * set.normal_share_below),
            detail: match normal {
                Some(n) => format!(
                    "{below_normal} of {} test(s) ({:.1} %) below {} (breach above {normal_pct})",
                    judged_tests.len(),
                    share(below_normal),
                    format_rate(n)
                ),
                None => "no normal rate in [plan]".into(),
            },
        },
        Criterion {
            id: "c".into(),
            text: format!("the minimum never undercut on {k} of {of} measuring days"),
            breached: min.map(|_| bad_c >= needed),
            detail: match min {
                Some(m) => format!(
                    "{bad_c} of {n_days} measuring day(s) with a test below {} (breach from {needed})",
                    format_rate(m)
                ),
                None => "no minimum rate in [plan]".into(),
            },
        },
    ];
    (results, below_normal)
}

/// A share as a percentage for people: `90 %`, `12.5 %`.
fn format_share(x: f64) -> String {
    let p = (x * 1000.0).round() / 10.0;
    format!("{p} %")
}

/// FCC 80/80: the 20th percentile of the tests, as a share of the maximum.
fn fcc_80_80(tests: &[Test]) -> Option<f64> {
    let mut percents: Vec<f64> = tests.iter().map(|t| 100.0 * t.bps / t.max).collect();
    percents.sort_by(f64::total_cmp);
    (!percents.is_empty()).then(|| {
        let rank = ((0.2 * percents.len() as f64).ceil() as usize).clamp(1, percents.len());
        (percents[rank - 1] * 10.0).round() / 10.0
    })
}

/// The section for `direction` from its tests (those with a maximum in force).
pub fn build(direction: &str, tests: &[Test], tz: &TimeZone) -> Option<ContractVerdict> {
    let last = tests.last()?;
    let (max, normal, min) = (last.max, last.normal, last.min);
    // The criteria in force at the last test, like the rates.
    let set = last.criteria.unwrap_or(CriteriaSet::BNETZA);
    let name = if last.criteria.is_some() {
        "custom"
    } else {
        "bnetza"
    };
    let mut dates: Vec<Date> = tests.iter().map(|t| test_date(t.at, tz)).collect();
    dates.dedup();
    let (days, complete) = measuring_days(tests, &dates, tz, &set);
    let chosen = campaign(&complete, set.of_days as usize);
    let missing = if chosen.is_none() {
        missing_for_campaign(&days, &complete, &set)
    } else {
        Vec::new()
    };
    let judged_dates: Vec<Date> = chosen.clone().unwrap_or_else(|| dates.clone());
    let judged_days: Vec<&Day> = days
        .iter()
        .filter(|d| judged_dates.iter().any(|j| j.to_string() == d.date))
        .collect();
    let judged_tests: Vec<&Test> = tests
        .iter()
        .filter(|t| judged_dates.contains(&test_date(t.at, tz)))
        .collect();
    let (results, below_normal) =
        judge_criteria(&judged_days, &judged_tests, max, normal, min, &set);
    let deviation = results.iter().any(|c| c.breached == Some(true));
    let p20 = fcc_80_80(tests);
    let peak: Vec<f64> = tests
        .iter()
        .filter(|t| FCC_PEAK.contains(&t.at.to_zoned(tz.clone()).hour()))
        .map(|t| 100.0 * t.bps / t.max)
        .collect();
    Some(ContractVerdict {
        direction: direction.to_owned(),
        criteria: name.into(),
        thresholds: set,
        max_bps: max,
        normal_bps: normal,
        min_bps: min,
        days,
        judged_days: judged_dates.iter().map(Date::to_string).collect(),
        sampling_rules_met: chosen.is_some(),
        missing,
        tests_below_normal: below_normal,
        tests_judged: judged_tests.len(),
        criteria_results: results,
        deviation,
        fcc_80_80_percent: p20,
        peak_tests: peak.len(),
        peak_at_least_95_percent: peak.iter().filter(|p| **p >= 95.0).count(),
        peak_80_to_95_percent: peak.iter().filter(|p| (80.0..95.0).contains(*p)).count(),
        peak_below_80_percent: peak.iter().filter(|p| **p < 80.0).count(),
        disclaimer: DISCLAIMER.into(),
    })
}

fn verdict_text(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "BREACHED",
        Some(false) => "met",
        None => "not judged",
    }
}

/// `bnetza`, or `custom` with its thresholds.
fn criteria_name(v: &ContractVerdict) -> String {
    let t = &v.thresholds;
    if v.criteria == "bnetza" {
        return v.criteria.clone();
    }
    format!(
        "{}: {} of the maximum, at most {} of tests below normal, {} of {} days, {} tests",
        v.criteria,
        format_share(t.max_share),
        format_share(t.normal_share_below),
        t.days_needed,
        t.of_days,
        t.min_tests
    )
}

fn lines(v: &ContractVerdict) -> Vec<String> {
    let mut out = vec![format!(
        "{}: maximum {}, normal {}, minimum {} (criteria: {}). Deviation: {}.",
        v.direction,
        format_rate(v.max_bps),
        v.normal_bps.map_or("not set".into(), format_rate),
        v.min_bps.map_or("not set".into(), format_rate),
        criteria_name(v),
        if v.deviation { "yes" } else { "no" }
    )];
    out.push(format!(
        "Sampling rules: {}; judged on {}.",
        if v.sampling_rules_met {
            "met (a complete campaign)"
        } else {
            "not met"
        },
        v.judged_days.join(", ")
    ));
    out.extend(v.missing.iter().map(|m| format!("Missing: {m}.")));
    out.push(format!(
        "FCC 80/80: 80 % of the tests reached {} of the maximum. Peak hours 19-23: {} test(s), {} at ≥ 95 %, {} at 80-95 %, {} below 80 %.",
        v.fcc_80_80_percent
            .map_or("-".into(), |p| format!("{p:.1} %")),
        v.peak_tests,
        v.peak_at_least_95_percent,
        v.peak_80_to_95_percent,
        v.peak_below_80_percent
    ));
    out
}

const DAY_HEAD: [&str; 5] = [
    "day",
    "tests (counted)",
    "best",
    "90 % of max reached",
    "below minimum",
];

fn day_cells(d: &Day) -> [String; 5] {
    [
        d.date.clone(),
        format!("{} ({})", d.tests, d.counted_tests),
        format!("{:.2} Mbit/s", d.best_mbit_per_second),
        if d.reached_90_percent_of_max {
            "yes".into()
        } else {
            "no".into()
        },
        d.below_minimum.to_string(),
    ]
}

pub(super) fn markdown(out: &mut String, verdicts: &[ContractVerdict]) {
    if verdicts.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Against the contract\n\n{DISCLAIMER}\n");
    for v in verdicts {
        for l in lines(v) {
            let _ = writeln!(out, "{l}\n");
        }
        let _ = writeln!(out, "| {} |", DAY_HEAD.join(" | "));
        let _ = writeln!(out, "|---|---:|---:|---|---:|");
        for d in &v.days {
            let _ = writeln!(out, "| {} |", day_cells(d).join(" | "));
        }
        let _ = writeln!(out, "\n| criterion | verdict | detail |\n|---|---|---|");
        for c in &v.criteria_results {
            let _ = writeln!(
                out,
                "| ({}) {} | {} | {} |",
                c.id,
                c.text,
                verdict_text(c.breached),
                c.detail
            );
        }
        let _ = writeln!(out);
    }
}

pub(super) fn html(verdicts: &[ContractVerdict]) -> String {
    if verdicts.is_empty() {
        return String::new();
    }
    let mut b = format!(
        "<section id=\"contract\"><h2>Against the contract</h2><p>{}</p>",
        esc(DISCLAIMER)
    );
    for v in verdicts {
        for l in lines(v) {
            let _ = write!(b, "<p>{}</p>", esc(&l));
        }
        b.push_str("<table><thead><tr>");
        for h in DAY_HEAD {
            let _ = write!(b, "<th>{}</th>", esc(h));
        }
        b.push_str("</tr></thead><tbody>");
        for d in &v.days {
            b.push_str("<tr>");
            for c in day_cells(d) {
                let _ = write!(b, "<td>{}</td>", esc(&c));
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table><table><thead><tr><th>criterion</th><th>verdict</th><th>detail</th></tr></thead><tbody>");
        for c in &v.criteria_results {
            let _ = write!(
                b,
                "<tr><td>({}) {}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.id),
                esc(&c.text),
                verdict_text(c.breached),
                esc(&c.detail)
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    b
}

/// CSV: one row per direction and criterion.
pub(super) fn csv(out: &mut String, verdicts: &[ContractVerdict]) {
    out.push_str("direction,criterion,verdict,detail,sampling_rules_met,fcc_80_80_percent\n");
    for v in verdicts {
        for c in &v.criteria_results {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                v.direction,
                c.id,
                verdict_text(c.breached),
                super::csv_field(&c.detail),
                v.sampling_rules_met,
                v.fcc_80_80_percent.map_or(String::new(), |p| p.to_string())
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 10 tests a day (5 in the morning, 5 from the evening) on `days`.
    fn campaign_tests(days: &[&str], mbit: f64) -> Vec<Test> {
        let mut v = Vec::new();
        for d in days {
            for (h, m) in [(8, 0), (8, 10), (8, 20), (8, 30), (8, 40)]
                .into_iter()
                .chain([(19, 0), (19, 10), (19, 20), (19, 30), (19, 40)])
            {
                v.push(Test {
                    at: format!("{d}T{h:02}:{m:02}:00Z").parse().unwrap(),
                    bps: mbit * 1e6,
                    max: 100e6,
                    normal: Some(60e6),
                    min: Some(30e6),
                    criteria: None,
                });
            }
        }
        v
    }

    #[test]
    fn a_slow_link_breaches_a_and_b_not_c() {
        let t = campaign_tests(&["2026-11-02", "2026-11-04", "2026-11-06"], 38.0);
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert!(v.sampling_rules_met, "{v:#?}");
        let b: Vec<Option<bool>> = v.criteria_results.iter().map(|c| c.breached).collect();
        assert_eq!(b, [Some(true), Some(true), Some(false)]);
        assert!(v.deviation);
        assert_eq!(v.peak_tests, 15);
        assert_eq!(v.peak_below_80_percent, 15);
        let t = campaign_tests(&["2026-11-02", "2026-11-04", "2026-11-06"], 91.0);
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert!(!v.deviation, "{v:#?}");
        assert_eq!(v.peak_80_to_95_percent, 15);
    }

    /// The same tests, judged with `[plan.criteria]`: a 75 % share of the
    /// maximum and 2 of 2 days flip (a); 40 % below normal allowed flips (b).
    #[test]
    fn custom_criteria_flip_the_verdict_and_are_named() {
        let days = ["2026-11-02", "2026-11-04", "2026-11-06"];
        let t = campaign_tests(&days, 80.0);
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert_eq!(v.criteria, "bnetza");
        let b: Vec<Option<bool>> = v.criteria_results.iter().map(|c| c.breached).collect();
        assert_eq!(b, [Some(true), Some(false), Some(false)], "{v:#?}");
        let custom = CriteriaSet {
            max_share: 0.75,
            normal_share_below: 0.4,
            days_needed: 2,
            of_days: 2,
            min_tests: 12,
        };
        let mut t = campaign_tests(&days, 80.0);
        for x in &mut t {
            x.criteria = Some(custom);
        }
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert_eq!(v.criteria, "custom");
        assert_eq!(v.thresholds, custom);
        let b: Vec<Option<bool>> = v.criteria_results.iter().map(|c| c.breached).collect();
        assert_eq!(b, [Some(false), Some(false), Some(false)], "{v:#?}");
        assert!(!v.deviation);
        // 2 days of 6 counted tests, the latest ones.
        assert!(v.sampling_rules_met, "{v:#?}");
        assert_eq!(v.judged_days, ["2026-11-04", "2026-11-06"]);
        assert!(
            v.criteria_results[0]
                .text
                .starts_with("75 % of the maximum")
        );
        assert!(lines(&v)[0].contains("criteria: custom: 75 % of the maximum"));
        // (b) with a stricter share: 30 % of the tests at 50 Mbit/s, below normal.
        for x in t.iter_mut().step_by(3) {
            x.bps = 50e6;
        }
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert_eq!(v.criteria_results[1].breached, Some(false), "{v:#?}");
        for x in &mut t {
            x.criteria = Some(CriteriaSet {
                normal_share_below: 0.2,
                ..custom
            });
        }
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert_eq!(v.criteria_results[1].breached, Some(true), "{v:#?}");
        assert!(v.criteria_results[1].detail.contains("breach above 20 %"));
    }

    #[test]
    fn a_campaign_of_more_days_is_found_greedily() {
        let c: Vec<Date> = [
            "2026-11-01",
            "2026-11-02",
            "2026-11-04",
            "2026-11-06",
            "2026-11-08",
        ]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
        let got = campaign(&c, 3).unwrap();
        assert_eq!(got, c[2..5]);
        let got = campaign(&c, 4).unwrap();
        assert_eq!(got, c[1..5]);
        assert_eq!(campaign(&c, 5), None, "11-01 and 11-02 are adjacent");
        assert_eq!(campaign(&c[..4], 4), None);
    }

    #[test]
    fn sampling_rules_say_what_is_missing() {
        // Adjacent days (no calendar day between) and a short day.
        let mut t = campaign_tests(&["2026-11-02", "2026-11-03"], 90.0);
        t.truncate(17);
        let v = build("download", &t, &TimeZone::UTC).unwrap();
        assert!(!v.sampling_rules_met);
        assert!(
            v.missing
                .iter()
                .any(|m| m.contains("2026-11-03 has 7 of 10")),
            "{:?}",
            v.missing
        );
        // Tests 1 minute apart count once per 5 minutes.
        let day: Vec<Test> = (0..10)
            .map(|i| Test {
                at: Timestamp::from_second(1_800_000_000 + i * 60).unwrap(),
                bps: 1.0,
                max: 1.0,
                normal: None,
                min: None,
                criteria: None,
            })
            .collect();
        let refs: Vec<&Test> = day.iter().collect();
        assert_eq!(counted(&refs, CriteriaSet::BNETZA.tests_per_day()), 2);
    }
}
