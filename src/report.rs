//! `linkwatch report`: an evidence report for a period, built from the journal
//! alone (no daemon needed), in Markdown, CSV, JSON or HTML.
//!
//! The report states what was measured and what was not: monitoring coverage
//! (when a daemon was running), the journal's integrity (hash chain), whether
//! the system clock was synchronized in each run, and for every outage its
//! group, cause, start, end, duration and unobserved gaps. Durations and
//! availability are clipped to the requested period.

use std::fmt::Write as _;
use std::path::Path;

use jiff::{Timestamp, tz::TimeZone};
use serde::Serialize;

use crate::outage::history::{History, ReadError};
use crate::outage::listing::{self, VerifyReport};

mod slow;
pub use slow::ReportSlowPeriod;

/// Output formats of `linkwatch report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Csv,
    Json,
    Html,
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("`--until` ({until}) must be after `--since` ({since})")]
    EmptyPeriod { since: String, until: String },
    #[error("unknown time zone `{0}`: use an IANA name such as Asia/Almaty, or UTC")]
    TimeZone(String),
    #[error("failed to render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One outage as the report shows it, clipped to the period.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutage {
    pub id: String,
    pub group: String,
    pub cause: String,
    pub start: String,
    /// `null` while still open.
    pub end: Option<String>,
    pub duration_seconds: f64,
    /// The part of the outage inside the period.
    pub duration_in_period_seconds: f64,
    pub targets: Vec<String>,
    /// Unobserved periods inside the outage, as `[from, to]` strings.
    pub gaps: Vec<[String; 2]>,
    /// `false` when the end is only known to lie in an unobserved gap.
    pub end_observed: Option<bool>,
}

/// Per-group totals over the period.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub outages: usize,
    pub downtime_seconds: f64,
    /// Up time / monitored time, in percent; `null` when nothing was monitored.
    pub availability_percent: Option<f64>,
    pub longest_outage_seconds: f64,
    /// Downtime by cause.
    pub downtime_by_cause: Vec<(String, f64)>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated: String,
    pub version: &'static str,
    pub time_zone: String,
    pub since: String,
    pub until: String,
    pub period_seconds: f64,
    /// Seconds of the period during which a daemon was running.
    pub monitored_seconds: f64,
    pub coverage_percent: f64,
    /// Periods inside the period when no daemon was running.
    pub unmonitored: Vec<[String; 2]>,
    /// Runs overlapping the period whose clock was not known to be synchronized.
    pub unsynchronized_runs: usize,
    pub runs: usize,
    pub journal_ok: bool,
    pub journal_problems: Vec<String>,
    pub groups: Vec<GroupSummary>,
    pub outages: Vec<ReportOutage>,
    /// Degradation periods: up, but slow or lossy.
    pub slow_periods: Vec<ReportSlowPeriod>,
}

/// Builds the report for `[since, until)` from the journal in `data_dir`.
pub fn build(
    data_dir: &Path,
    since: Timestamp,
    until: Timestamp,
    tz_name: &str,
) -> Result<Report, ReportError> {
    if until <= since {
        return Err(ReportError::EmptyPeriod {
            since: since.to_string(),
            until: until.to_string(),
        });
    }
    let tz = if tz_name.eq_ignore_ascii_case("utc") {
        TimeZone::UTC
    } else {
        TimeZone::get(tz_name).map_err(|_| ReportError::TimeZone(tz_name.to_string()))?
    };
    let fmt = |t: Timestamp| format_in(t, &tz);

    let history = History::load(data_dir)?;
    let now = Timestamp::now();
    let records = listing::outages(&history, Some(since), now);
    let verify = VerifyReport::of(&history);

    // Coverage: union of runs clipped to the period.
    let mut spans: Vec<(Timestamp, Timestamp)> = history
        .runs
        .iter()
        .filter_map(|r| clip(r.started, r.alive_until, since, until))
        .collect();
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let monitored = merged
        .iter()
        .map(|(a, b)| secs(*a, *b))
        .fold(0.0, |x, y| x + y);
    let mut unmonitored = Vec::new();
    let mut cursor = since;
    for (a, b) in &merged {
        if *a > cursor {
            unmonitored.push([fmt(cursor), fmt(*a)]);
        }
        cursor = cursor.max(*b);
    }
    if cursor < until {
        unmonitored.push([fmt(cursor), fmt(until)]);
    }
    let overlapping_runs: Vec<_> = history
        .runs
        .iter()
        .filter(|r| clip(r.started, r.alive_until, since, until).is_some())
        .collect();
    let period = secs(since, until);

    let outages: Vec<ReportOutage> = records
        .iter()
        .filter(|r| r.overlaps(Some(since), Some(until)))
        .map(|r| {
            let end = r.end.unwrap_or(now);
            let in_period = clip(r.start, end, since, until).map_or(0.0, |(a, b)| secs(a, b));
            ReportOutage {
                id: r.id.clone(),
                group: r.group.clone(),
                cause: r.cause.clone(),
                start: fmt(r.start),
                end: r.end.map(fmt),
                duration_seconds: r.duration_seconds,
                duration_in_period_seconds: in_period,
                targets: r.targets.clone(),
                gaps: r.gaps.iter().map(|g| [fmt(g.from), fmt(g.to)]).collect(),
                end_observed: r.end_observed,
            }
        })
        .collect();

    let mut group_names: Vec<String> = outages.iter().map(|o| o.group.clone()).collect();
    group_names.sort();
    group_names.dedup();
    let groups = group_names
        .into_iter()
        .map(|g| {
            let of: Vec<&ReportOutage> = outages.iter().filter(|o| o.group == g).collect();
            let downtime = of
                .iter()
                .map(|o| o.duration_in_period_seconds)
                .fold(0.0, |x, y| x + y);
            let mut by_cause: Vec<(String, f64)> = Vec::new();
            for o in &of {
                match by_cause.iter_mut().find(|(c, _)| *c == o.cause) {
                    Some((_, d)) => *d += o.duration_in_period_seconds,
                    None => by_cause.push((o.cause.clone(), o.duration_in_period_seconds)),
                }
            }
            GroupSummary {
                availability_percent: (monitored > 0.0)
                    .then(|| (100.0 * (1.0 - downtime / monitored)).clamp(0.0, 100.0)),
                outages: of.len(),
                downtime_seconds: downtime,
                longest_outage_seconds: of.iter().map(|o| o.duration_seconds).fold(0.0, f64::max),
                downtime_by_cause: by_cause,
                group: g,
            }
        })
        .collect();

    Ok(Report {
        generated: fmt(now),
        version: env!("CARGO_PKG_VERSION"),
        time_zone: tz_name.to_string(),
        since: fmt(since),
        until: fmt(until),
        period_seconds: period,
        monitored_seconds: monitored,
        coverage_percent: if period > 0.0 {
            100.0 * monitored / period
        } else {
            0.0
        },
        unmonitored,
        unsynchronized_runs: overlapping_runs
            .iter()
            .filter(|r| r.clock_synchronized != Some(true))
            .count(),
        runs: overlapping_runs.len(),
        journal_ok: verify.ok(),
        journal_problems: verify.problems.iter().map(|p| p.to_string()).collect(),
        groups,
        outages,
        slow_periods: slow::build(&history, since, until, now, &fmt),
    })
}

fn clip(
    a: Timestamp,
    b: Timestamp,
    lo: Timestamp,
    hi: Timestamp,
) -> Option<(Timestamp, Timestamp)> {
    let a = a.max(lo);
    let b = b.min(hi);
    (b > a).then_some((a, b))
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64().max(0.0)
}

/// A timestamp in `tz` with milliseconds and the UTC offset (RFC 3339).
fn format_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    z.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// `1h 02m 03s` style durations for people.
pub fn human(secs: f64) -> String {
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{:.1}s", secs)
    }
}

/// Renders the report in `format`.
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
        Format::Csv => render_csv(report),
        Format::Markdown => render_markdown(report),
        Format::Html => render_html(report),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "id,group,cause,start,end,duration_seconds,duration_in_period_seconds,targets,gaps,end_observed\n",
    );
    for o in &r.outages {
        let gaps: Vec<String> = o
            .gaps
            .iter()
            .map(|g| format!("{}/{}", g[0], g[1]))
            .collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{},{},{}",
            csv_field(&o.id),
            csv_field(&o.group),
            csv_field(&o.cause),
            o.start,
            o.end.as_deref().unwrap_or(""),
            o.duration_seconds,
            o.duration_in_period_seconds,
            csv_field(&o.targets.join(" ")),
            csv_field(&gaps.join(" ")),
            o.end_observed.map_or(String::new(), |b| b.to_string()),
        );
    }
    slow::csv(&mut out, &r.slow_periods);
    out
}

fn caveats(r: &Report) -> Vec<String> {
    let mut v = Vec::new();
    if !r.journal_ok {
        v.push(format!(
            "The journal failed its integrity check ({}); records may have been altered.",
            r.journal_problems.join("; ")
        ));
    }
    if r.coverage_percent < 99.9 {
        v.push(format!(
            "Monitoring covered {:.2} % of the period; nothing is claimed about the unmonitored time.",
            r.coverage_percent
        ));
    }
    if r.unsynchronized_runs > 0 {
        v.push(format!(
            "{} of {} monitoring runs could not confirm a synchronized system clock; absolute times may be off (durations are unaffected).",
            r.unsynchronized_runs, r.runs
        ));
    }
    v
}

/// An outage's end for people: a time, "ongoing", or a time marked unobserved.
fn end_text(o: &ReportOutage) -> String {
    match (&o.end, o.end_observed) {
        (None, _) => "ongoing".to_string(),
        (Some(e), Some(false)) => format!("{e} (not observed)"),
        (Some(e), _) => e.clone(),
    }
}

fn gaps_text(o: &ReportOutage) -> String {
    let gaps: Vec<String> = o
        .gaps
        .iter()
        .map(|g| format!("{} to {}", g[0], g[1]))
        .collect();
    gaps.join("; ")
}

fn render_markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Connectivity report: {} to {}\n", r.since, r.until);
    let _ = writeln!(
        out,
        "Generated {} by linkwatch {} (times in {}).\n",
        r.generated, r.version, r.time_zone
    );
    let _ = writeln!(out, "## Evidence quality\n");
    let _ = writeln!(
        out,
        "- Monitoring coverage: {:.2} % of the period ({} of {}), {} run(s)",
        r.coverage_percent,
        human(r.monitored_seconds),
        human(r.period_seconds),
        r.runs
    );
    let _ = writeln!(
        out,
        "- Journal integrity (hash chain): {}",
        if r.journal_ok { "intact" } else { "BROKEN" }
    );
    let _ = writeln!(
        out,
        "- Runs without a confirmed synchronized clock: {}",
        r.unsynchronized_runs
    );
    for c in caveats(r) {
        let _ = writeln!(out, "- **Note:** {c}");
    }
    if !r.unmonitored.is_empty() {
        let _ = writeln!(out, "\nNot monitored:\n");
        for [a, b] in &r.unmonitored {
            let _ = writeln!(out, "- {a} to {b}");
        }
    }
    let _ = writeln!(out, "\n## Summary by group\n");
    if r.groups.is_empty() {
        let _ = writeln!(out, "No outages were recorded in this period.");
    } else {
        let _ = writeln!(
            out,
            "| group | outages | downtime | availability | longest | downtime by cause |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
        for g in &r.groups {
            let causes: Vec<String> = g
                .downtime_by_cause
                .iter()
                .map(|(c, d)| format!("{c}: {}", human(*d)))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                g.group,
                g.outages,
                human(g.downtime_seconds),
                g.availability_percent
                    .map_or("n/a".to_string(), |a| format!("{a:.3} %")),
                human(g.longest_outage_seconds),
                causes.join(", ")
            );
        }
    }
    if !r.outages.is_empty() {
        let _ = writeln!(out, "\n## Outages\n");
        let _ = writeln!(
            out,
            "| start | end | duration | group | likely cause | failing targets | unobserved |"
        );
        let _ = writeln!(out, "|---|---|---:|---|---|---|---|");
        for o in &r.outages {
            let (end, gaps) = (end_text(o), gaps_text(o));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                o.start,
                end,
                human(o.duration_seconds),
                o.group,
                o.cause,
                o.targets.join(", "),
                if gaps.is_empty() { "-" } else { &gaps }
            );
        }
        let _ = writeln!(
            out,
            "\nStart is the first failed probe of the streak that declared the outage; end is the first successful probe of the streak that ended it. \"Likely cause\" is the farthest-upstream group that was down when the outage started."
        );
    }
    slow::markdown(&mut out, &r.slow_periods);
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render_html(r: &Report) -> String {
    let mut rows = String::new();
    for o in &r.outages {
        let (end, gaps) = (end_text(o), gaps_text(o));
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.start),
            esc(&end),
            human(o.duration_seconds),
            esc(&o.group),
            esc(&o.cause),
            esc(&o.targets.join(", ")),
            esc(&gaps)
        );
    }
    let mut groups = String::new();
    for g in &r.groups {
        let _ = writeln!(
            groups,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.group),
            g.outages,
            human(g.downtime_seconds),
            g.availability_percent
                .map_or("n/a".to_string(), |a| format!("{a:.3} %")),
            human(g.longest_outage_seconds)
        );
    }
    let notes: String = caveats(r)
        .iter()
        .map(|c| format!("<li><strong>Note:</strong> {}</li>", esc(c)))
        .collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Connectivity report {since} to {until}</title>\
    <style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}table{{border-collapse:collapse}}\
    td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head><body>\n\
    <h1>Connectivity report</h1><p>{since} to {until} (times in {tz}). Generated {gen} by linkwatch {ver}.</p>\n\
    <h2>Evidence quality</h2><ul><li>Monitoring coverage: {cov:.2} % of the period, {runs} run(s)</li>\
    <li>Journal integrity (hash chain): {integrity}</li>{notes}</ul>\n\
    <h2>Summary by group</h2><table><tr><th>group</th><th>outages</th><th>downtime</th><th>availability</th><th>longest</th></tr>\n{groups}</table>\n\
    <h2>Outages</h2><table><tr><th>start</th><th>end</th><th>duration</th><th>group</th><th>likely cause</th><th>failing targets</th><th>unobserved</th></tr>\n{rows}</table>\n\
    {slow}</body></html>\n",
        since = esc(&r.since),
        until = esc(&r.until),
        tz = esc(&r.time_zone),
        gen = esc(&r.generated),
        ver = r.version,
        cov = r.coverage_percent,
        runs = r.runs,
        integrity = if r.journal_ok { "intact" } else { "BROKEN" },
        slow = slow::html(&r.slow_periods),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(3.25), "3.2s");
        assert_eq!(human(61.0), "1m 01s");
        assert_eq!(human(3723.0), "1h 02m 03s");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("lan"), "lan");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn timestamps_render_in_the_requested_zone() {
        let t: Timestamp = "2026-11-01T10:02:13.250Z".parse().unwrap();
        assert_eq!(
            format_in(t, &TimeZone::UTC),
            "2026-11-01T10:02:13.250+00:00"
        );
        if let Ok(tz) = TimeZone::get("Asia/Almaty") {
            assert_eq!(format_in(t, &tz), "2026-11-01T15:02:13.250+05:00");
        }
    }

    #[test]
    fn empty_journal_gives_an_honest_empty_report() {
        let dir = tempfile::tempdir().unwrap();
        let since: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let until: Timestamp = "2026-11-02T00:00:00Z".parse().unwrap();
        let r = build(dir.path(), since, until, "UTC").unwrap();
        assert_eq!(r.coverage_percent, 0.0);
        assert_eq!(r.unmonitored.len(), 1);
        assert!(r.outages.is_empty());
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("No outages were recorded"));
        assert!(md.contains("Monitoring covered 0.00 %"));
        assert!(build(dir.path(), until, since, "UTC").is_err());
        assert!(matches!(
            build(dir.path(), since, until, "Mars/Olympus"),
            Err(ReportError::TimeZone(_))
        ));
    }
}
