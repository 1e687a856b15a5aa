//! `linkwatch report`: an evidence report for a period, built from the journal
//! alone (no daemon needed), in Markdown, CSV, JSON or HTML.
//!
//! The report states what was measured and what was not: monitoring coverage
//! (when a daemon was running and not stalled), the journal's integrity (hash chain), whether
//! the system clock was synchronized in each run, and for every outage its
//! group, cause, start, end, duration and unobserved gaps. Durations and
//! availability are clipped to the requested period.

use std::fmt::Write as _;
use std::path::Path;

use jiff::{Timestamp, tz::TimeZone};
use serde::Serialize;

use crate::outage::chain::ChainHead;
use crate::outage::history::{History, ReadError};
use crate::outage::listing::{self, VerifyReport};
use crate::outage::lock;
use crate::outage::path::{self, When};

mod html;
mod plan;
mod slow;
pub use plan::{Hours, PlanRow, SpeedAgainstPlan};
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
    #[error(
        "no journal at {0}: linkwatch has not run with this data directory; pass --data-dir DIR, or --config PATH of the running daemon"
    )]
    NoJournal(std::path::PathBuf),
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
    /// `false` when the start is only known to lie in the first gap (`start`
    /// is then the earliest it could have been).
    pub start_observed: bool,
    /// `null` while still open.
    pub end: Option<String>,
    #[serde(serialize_with = "millis")]
    pub duration_seconds: f64,
    /// The part of the outage inside the period.
    #[serde(serialize_with = "millis")]
    pub duration_in_period_seconds: f64,
    pub targets: Vec<String>,
    /// Unobserved periods inside the outage, as `[from, to]` strings.
    pub gaps: Vec<[String; 2]>,
    /// `false` when the end is only known to lie in an unobserved gap.
    pub end_observed: Option<bool>,
    /// Ended by a configuration reload (`removed`, `reconfigured`), not by
    /// the group coming back; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<crate::outage::event::EndReason>,
    /// Still open, with no daemon running: nobody has watched it since this
    /// moment, and its durations end here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<String>,
}

/// Per-group totals over the period.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub outages: usize,
    #[serde(serialize_with = "millis")]
    pub downtime_seconds: f64,
    /// Up time / monitored time, in percent; `null` when nothing was monitored.
    #[serde(serialize_with = "percent_option")]
    pub availability_percent: Option<f64>,
    #[serde(serialize_with = "millis")]
    pub longest_outage_seconds: f64,
    /// Downtime by cause, largest first.
    pub downtime_by_cause: Vec<CauseDowntime>,
}

/// Downtime of a group attributed to one cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseDowntime {
    pub cause: String,
    #[serde(serialize_with = "millis")]
    pub downtime_seconds: f64,
}

/// Seconds rounded to milliseconds (no `31.198999999999998`).
fn millis<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

/// Percentages rounded to 1/1000 of a percent.
fn percent<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

fn percent_option<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => percent(v, s),
        None => s.serialize_none(),
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated: String,
    pub version: &'static str,
    /// The sites (`[daemon] site`) of the runs overlapping the period, in
    /// order of first appearance; "" for runs without one.
    pub sites: Vec<String>,
    pub time_zone: String,
    pub since: String,
    pub until: String,
    #[serde(serialize_with = "millis")]
    pub period_seconds: f64,
    /// Seconds of the period during which a daemon was running and not stalled.
    #[serde(serialize_with = "millis")]
    pub monitored_seconds: f64,
    #[serde(serialize_with = "percent")]
    pub coverage_percent: f64,
    /// Periods inside the period when no daemon was running, or one was stalled.
    pub unmonitored: Vec<[String; 2]>,
    /// Seconds of the period in which a running daemon was stalled (stopped,
    /// or the system suspended) and observed nothing; not monitored time.
    pub stalled_seconds: f64,
    /// Stalls overlapping the period.
    pub stalls: usize,
    /// Runs overlapping the period whose clock was not known to be synchronized.
    pub unsynchronized_runs: usize,
    pub runs: usize,
    pub journal_ok: bool,
    pub journal_problems: Vec<String>,
    /// The journal's last line (`seq`, full hash): hold it against the
    /// metrics a Prometheus elsewhere recorded (see [`witness_check`]).
    pub journal_head: Option<ChainHead>,
    pub groups: Vec<GroupSummary>,
    pub outages: Vec<ReportOutage>,
    /// Degradation periods: up, but slow or lossy.
    pub slow_periods: Vec<ReportSlowPeriod>,
    /// Throughput tests against `[plan]`, by evening peak and the rest;
    /// `null` when the period has no throughput test.
    pub speed_against_plan: Option<SpeedAgainstPlan>,
    /// Where the path stopped at each outage's start and end, against the baseline.
    pub paths: Vec<OutagePath>,
    /// History files of the period that could not be read in full (their
    /// throughput tests and minutes are missing); empty when all was read.
    pub history_damaged_files: Vec<crate::history::FileDamage>,
}

/// An outage's path snapshots in words (see [`crate::outage::path::compare`]).
#[derive(Debug, Clone, Serialize)]
pub struct OutagePath {
    pub id: String,
    pub group: String,
    pub start: String,
    /// "stopped after hop 3 (10.20.0.1); the baseline reaches the target in 6 hops".
    pub at_start: Option<String>,
    pub at_end: Option<String>,
    /// The responding addresses at the start, `*` for a silent hop.
    pub hops_at_start: Vec<String>,
}

/// Builds the report for `[since, until)` from the journal in `data_dir`.
pub fn build(
    data_dir: &Path,
    since: Timestamp,
    until: Timestamp,
    tz_name: &str,
) -> Result<Report, ReportError> {
    build_with_plan(data_dir, since, until, tz_name, None)
}

/// [`build`], with `[plan]` rates given by the user (`report --plan-download
/// …`) replacing the ones the journal recorded, for the directions they name.
pub fn build_with_plan(
    data_dir: &Path,
    since: Timestamp,
    until: Timestamp,
    tz_name: &str,
    plan: Option<crate::outage::event::PlanRecord>,
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

    let journal = crate::outage::journal_path(data_dir);
    if !journal.exists() {
        return Err(ReportError::NoJournal(journal));
    }
    let history = History::load(data_dir)?;
    let now = Timestamp::now();
    let liveness = lock::probe(data_dir);
    let records = listing::outages(&history, Some(since), now, &liveness);
    let verify = VerifyReport::of(&history);

    // Coverage: the union of runs clipped to the period, less their stalls.
    let runs = monitored_spans(&history, since, until);
    let stall_spans = union(
        history
            .stalls
            .iter()
            .filter_map(|s| clip(s.from, s.to, since, until))
            .collect(),
    );
    let monitored_spans = subtract(&runs, &stall_spans);
    let monitored = total_seconds(&monitored_spans);
    let stalled = (total_seconds(&runs) - monitored).max(0.0);
    let unmonitored = unmonitored(&monitored_spans, since, until)
        .into_iter()
        .map(|(a, b)| [fmt(a), fmt(b)])
        .collect();
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
            let end = r.end.or(r.observed_until).unwrap_or(now);
            let in_period = clip(r.start, end, since, until).map_or(0.0, |(a, b)| secs(a, b));
            ReportOutage {
                id: r.id.clone(),
                group: r.group.clone(),
                cause: r.cause.clone(),
                start: fmt(r.start),
                start_observed: r.start_observed,
                end: r.end.map(fmt),
                duration_seconds: r.duration_seconds,
                duration_in_period_seconds: in_period,
                targets: r.targets.clone(),
                gaps: r.gaps.iter().map(|g| [fmt(g.from), fmt(g.to)]).collect(),
                end_observed: r.end_observed,
                end_reason: r.end_reason,
                observed_until: r.observed_until.map(fmt),
            }
        })
        .collect();

    let paths: Vec<OutagePath> = records
        .iter()
        .filter(|r| r.overlaps(Some(since), Some(until)))
        .filter_map(|r| {
            let snapshot = |when| {
                history
                    .paths
                    .iter()
                    .rev()
                    .find(|p| p.when == when && p.id.as_deref() == Some(r.id.as_str()))
            };
            let (start, end) = (snapshot(When::Start), snapshot(When::End));
            if start.is_none() && end.is_none() {
                return None;
            }
            // The group's last complete baseline before the snapshot.
            let baseline = |at: Timestamp| {
                history.paths.iter().rev().find(|p| {
                    p.group == r.group
                        && p.when == When::Baseline
                        && p.at <= at
                        && !p.partial
                        && p.error.is_none()
                })
            };
            Some(OutagePath {
                id: r.id.clone(),
                group: r.group.clone(),
                start: fmt(r.start),
                at_start: start.map(|p| path::compare(p, baseline(p.at))),
                at_end: end.map(|p| path::compare(p, baseline(p.at))),
                hops_at_start: start.map_or_else(Vec::new, |p| hop_list(&p.hops)),
            })
        })
        .collect();

    let groups = group_summaries(&outages, monitored);

    Ok(Report {
        generated: fmt(now),
        version: env!("CARGO_PKG_VERSION"),
        sites: overlapping_runs.iter().fold(Vec::new(), |mut v, r| {
            let s = r.site.clone().unwrap_or_default();
            if !v.contains(&s) {
                v.push(s);
            }
            v
        }),
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
        stalled_seconds: stalled,
        stalls: stall_spans.len(),
        unsynchronized_runs: overlapping_runs
            .iter()
            .filter(|r| r.clock_synchronized != Some(true))
            .count(),
        runs: overlapping_runs.len(),
        journal_ok: verify.ok(),
        journal_problems: verify.problems.iter().map(|p| p.to_string()).collect(),
        journal_head: verify.head,
        groups,
        outages,
        paths,
        slow_periods: slow::build(&history, since, until, now, &liveness, &fmt),
        speed_against_plan: plan::build(data_dir, &history, since, until, &tz, plan),
        history_damaged_files: crate::history::damaged_files(data_dir, since, until),
    })
}

/// When a daemon was running within `[since, until)`: the union of runs,
/// clipped, in order.
fn monitored_spans(
    history: &History,
    since: Timestamp,
    until: Timestamp,
) -> Vec<(Timestamp, Timestamp)> {
    union(
        history
            .runs
            .iter()
            .filter_map(|r| clip(r.started, r.alive_until, since, until))
            .collect(),
    )
}

fn total_seconds(spans: &[(Timestamp, Timestamp)]) -> f64 {
    spans
        .iter()
        .map(|(a, b)| secs(*a, *b))
        .fold(0.0, |x, y| x + y)
}

/// The holes between `monitored` spans within `[since, until)`.
fn unmonitored(
    monitored: &[(Timestamp, Timestamp)],
    since: Timestamp,
    until: Timestamp,
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    let mut cursor = since;
    for (a, b) in monitored {
        if *a > cursor {
            out.push((cursor, *a));
        }
        cursor = cursor.max(*b);
    }
    if cursor < until {
        out.push((cursor, until));
    }
    out
}

/// Per-group totals, groups by name.
fn group_summaries(outages: &[ReportOutage], monitored: f64) -> Vec<GroupSummary> {
    let mut group_names: Vec<String> = outages.iter().map(|o| o.group.clone()).collect();
    group_names.sort();
    group_names.dedup();
    group_names
        .into_iter()
        .map(|g| {
            let of: Vec<&ReportOutage> = outages.iter().filter(|o| o.group == g).collect();
            let downtime = of
                .iter()
                .map(|o| o.duration_in_period_seconds)
                .fold(0.0, |x, y| x + y);
            let mut by_cause: Vec<CauseDowntime> = Vec::new();
            for o in &of {
                match by_cause.iter_mut().find(|c| c.cause == o.cause) {
                    Some(c) => c.downtime_seconds += o.duration_in_period_seconds,
                    None => by_cause.push(CauseDowntime {
                        cause: o.cause.clone(),
                        downtime_seconds: o.duration_in_period_seconds,
                    }),
                }
            }
            by_cause.sort_by(|a, b| b.downtime_seconds.total_cmp(&a.downtime_seconds));
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
        .collect()
}

/// Each hop's address, `*` for a silent one; trailing silent hops as one `* xN`.
fn hop_list(hops: &[crate::probe::trace::Hop]) -> Vec<String> {
    let answered = hops
        .iter()
        .rposition(|h| h.addr.is_some())
        .map_or(0, |i| i + 1);
    let mut out: Vec<String> = hops[..answered]
        .iter()
        .map(|h| h.addr.map_or_else(|| "*".to_string(), |a| a.to_string()))
        .collect();
    match hops.len() - answered {
        0 => {}
        1 => out.push("*".to_string()),
        n => out.push(format!("* x{n}")),
    }
    out
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

/// Sorted, disjoint union of `spans`.
fn union(mut spans: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// `spans` less `holes`, both sorted and disjoint.
fn subtract(
    spans: &[(Timestamp, Timestamp)],
    holes: &[(Timestamp, Timestamp)],
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    for &(a, b) in spans {
        let mut cursor = a;
        for &(ha, hb) in holes {
            if hb <= cursor || ha >= b {
                continue;
            }
            if ha > cursor {
                out.push((cursor, ha));
            }
            cursor = cursor.max(hb);
        }
        if cursor < b {
            out.push((cursor, b));
        }
    }
    out
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
        "id,group,cause,start,end,duration_seconds,duration_in_period_seconds,targets,gaps,end_observed,path_at_start,path_at_end\n",
    );
    for o in &r.outages {
        let path = r.paths.iter().find(|p| p.id == o.id);
        let at = |f: fn(&OutagePath) -> &Option<String>| {
            csv_field(path.and_then(|p| f(p).as_deref()).unwrap_or(""))
        };
        let gaps: Vec<String> = o
            .gaps
            .iter()
            .map(|g| format!("{}/{}", g[0], g[1]))
            .collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{},{},{},{},{}",
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
            at(|p| &p.at_start),
            at(|p| &p.at_end),
        );
    }
    slow::csv(&mut out, &r.slow_periods);
    plan::csv(&mut out, r.speed_against_plan.as_ref());
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
    if !r.history_damaged_files.is_empty() {
        let d = &r.history_damaged_files;
        v.push(format!(
            "The history of this period is incomplete: {} history file(s) are damaged ({}), so throughput tests and per-minute figures in their damaged parts are missing.",
            d.len(),
            d.iter()
                .map(|f| match &f.error {
                    Some(e) => format!("{}: unreadable, {e}", f.file),
                    None => format!("{}: {} damaged row(s), {} bytes skipped", f.file, f.damaged_rows, f.skipped_bytes),
                })
                .collect::<Vec<_>>()
                .join("; ")
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

/// The journal's head and how to check it against the metrics a Prometheus
/// elsewhere scraped: a journal cut short or rewritten after the fact shows
/// fewer lines, or another hash, than the witness saw.
pub fn witness_check(r: &Report) -> String {
    match &r.journal_head {
        None => "Journal head: the journal is empty".to_string(),
        Some(h) => format!(
            "Journal head: line seq {seq}, SHA-256 {hash}. To check it against an independent \
             witness, query the Prometheus that scraped this daemon: \
             every value of linkwatch_journal_events_total it recorded before this report was \
             generated must be at most {total}, and wherever it was exactly {total}, \
             linkwatch_journal_head_info must carry hash=\"{prefix}\"",
            seq = h.seq,
            hash = h.hash,
            total = h.seq + 1,
            prefix = h.hash_prefix(),
        ),
    }
}

/// An outage's end for people: a time, "ongoing", or a time marked unobserved.
pub(crate) fn end_text(o: &ReportOutage) -> String {
    match (&o.end, o.end_observed) {
        (None, _) => match &o.observed_until {
            Some(t) => format!("open, not observed after {t}"),
            None => "ongoing".to_string(),
        },
        (Some(e), Some(false)) => format!("{e} (not observed)"),
        (Some(e), _) => match o.end_reason {
            Some(why) => format!("{e} ({})", why.describe()),
            None => e.clone(),
        },
    }
}

pub(crate) fn start_text(o: &ReportOutage) -> String {
    if o.start_observed {
        o.start.clone()
    } else {
        format!("{} (not observed)", o.start)
    }
}

pub(crate) fn gaps_text(o: &ReportOutage) -> String {
    let gaps: Vec<String> = o
        .gaps
        .iter()
        .map(|g| format!("{} to {}", g[0], g[1]))
        .collect();
    gaps.join("; ")
}

/// The report header's site line: the configured site of the period's runs.
fn site_line(sites: &[String]) -> String {
    match sites {
        [] => "no run in the period".to_string(),
        [one] if one.is_empty() => "not set ([daemon] site)".to_string(),
        _ => sites
            .iter()
            .map(|s| {
                if s.is_empty() {
                    "(not set)"
                } else {
                    s.as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn render_markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Connectivity report: {} to {}\n", r.since, r.until);
    let _ = writeln!(
        out,
        "Generated {} by linkwatch {} (times in {}).\n",
        r.generated, r.version, r.time_zone
    );
    let _ = writeln!(out, "Site: {}.\n", site_line(&r.sites));
    let _ = writeln!(out, "## Evidence quality\n");
    let _ = writeln!(
        out,
        "- Monitoring coverage: {:.2} % of the period ({} of {}), {} run(s)",
        r.coverage_percent,
        human(r.monitored_seconds),
        human(r.period_seconds),
        r.runs
    );
    if r.stalls > 0 {
        let _ = writeln!(
            out,
            "- Stalls (the daemon was stopped or the system suspended; not monitored): {}, {} in all",
            r.stalls,
            human(r.stalled_seconds)
        );
    }
    let _ = writeln!(
        out,
        "- Journal integrity (hash chain): {}",
        if r.journal_ok { "intact" } else { "BROKEN" }
    );
    let _ = writeln!(out, "- {}", witness_check(r));
    let _ = writeln!(out, "- {VERIFY}");
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
                .map(|c| format!("{}: {}", c.cause, human(c.downtime_seconds)))
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
                start_text(o),
                end,
                human(o.duration_seconds),
                o.group,
                o.cause,
                o.targets.join(", "),
                if gaps.is_empty() { "-" } else { &gaps }
            );
        }
    }
    if !r.paths.is_empty() {
        let _ = writeln!(out, "\n## Where the path stopped\n");
        for p in &r.paths {
            let _ = writeln!(out, "- {} outage of {} (`{}`):", p.group, p.start, p.id);
            if let Some(s) = &p.at_start {
                let _ = writeln!(out, "  - at the start: {s}");
            }
            if !p.hops_at_start.is_empty() {
                let _ = writeln!(out, "    (hops: {})", p.hops_at_start.join(" > "));
            }
            if let Some(e) = &p.at_end {
                let _ = writeln!(out, "  - at the end: {e}");
            }
        }
        let _ = writeln!(
            out,
            "\nA traceroute (ICMP echo, or UDP with the group's `trace_protocol = \"udp\"`, with increasing TTL) is taken when an outage starts and when it ends, and a baseline every `trace_every`; `*` is a hop that did not answer."
        );
    }
    slow::markdown(&mut out, &r.slow_periods);
    plan::markdown(&mut out, r.speed_against_plan.as_ref(), &r.time_zone);
    let _ = writeln!(out, "\n---\n\n{DEFINITIONS}");
    out
}

/// How a reader checks the journal behind a report (both formats say it).
const VERIFY: &str = "To verify: run `linkwatch outages --verify` on the monitoring machine; it recomputes the journal's hash chain and prints the head hash, which must equal the one above unless lines were added since.";

/// The footer that defines the report's terms (both formats).
const DEFINITIONS: &str = "Start is the first failed probe of the streak that declared the outage; end is the first successful probe of the streak that ended it. An edge marked \"not observed\" happened while linkwatch was not running or stalled: a start is then the earliest moment it could have been and an end the last moment the group was seen down, and the true moment lies in the adjacent unobserved period. \"Likely cause\" is the farthest-upstream group that was down when the outage started. Durations come from the monotonic clock when one process saw both ends, otherwise from the wall clock. Availability is up time divided by monitored time; unmonitored time counts neither way.";

fn render_html(r: &Report) -> String {
    html::render(r, &caveats(r), VERIFY, DEFINITIONS)
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
        assert!(matches!(
            build(dir.path(), since, until, "UTC"),
            Err(ReportError::NoJournal(_))
        ));
        std::fs::write(crate::outage::journal_path(dir.path()), "").unwrap();
        let r = build(dir.path(), since, until, "UTC").unwrap();
        assert_eq!(r.coverage_percent, 0.0);
        assert_eq!(r.unmonitored.len(), 1);
        assert!(r.outages.is_empty());
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("No outages were recorded"));
        assert!(md.contains("Monitoring covered 0.00 %"));
        let html = render(&r, Format::Html).unwrap();
        for part in [
            "No outages were recorded",
            "Monitoring covered 0.00 %",
            "Not monitored:",
            "linkwatch outages --verify",
            "Journal head hash",
            "synchronized clock",
            "farthest-upstream group",
            "<svg class=\"timeline\"",
        ] {
            assert!(
                md.contains(part.trim_start_matches('<')) || html.contains(part),
                "{part}"
            );
            assert!(
                html.contains(part)
                    || part.contains("--verify") && html.contains("linkwatch outages --verify"),
                "HTML lacks {part}"
            );
        }
        assert!(md.contains("linkwatch outages --verify") && md.contains("Not monitored:"));
        assert!(build(dir.path(), until, since, "UTC").is_err());
        assert!(matches!(
            build(dir.path(), since, until, "Mars/Olympus"),
            Err(ReportError::TimeZone(_))
        ));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn stalls_are_not_monitored_time() {
        use crate::outage::event::{DaemonStart, DaemonStop, StallCause, Stalled};
        use crate::outage::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
        let dir = tempfile::tempdir().unwrap();
        let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let at = |s: i64| t0.checked_add(jiff::SignedDuration::from_secs(s)).unwrap();
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
            site: Some("almaty-home".into()),
            plan: None,
            throughput_targets: Vec::new(),
        };
        w.append(at(0), &Entry::DaemonStart(start)).unwrap();
        let stall = Stalled {
            from: at(10),
            to: at(40),
            cause: StallCause::ProcessStopped,
            seconds: 30.0,
        };
        w.append(at(40), &Entry::Stall(stall)).unwrap();
        w.append(
            at(100),
            &Entry::DaemonStop(DaemonStop {
                open_outages: vec![],
            }),
        )
        .unwrap();
        let r = build(dir.path(), at(0), at(100), "UTC").unwrap();
        assert!(
            (r.monitored_seconds - 70.0).abs() < 1e-6,
            "{}",
            r.monitored_seconds
        );
        assert!((r.coverage_percent - 70.0).abs() < 1e-6);
        assert!((r.stalled_seconds - 30.0).abs() < 1e-6);
        assert_eq!(r.stalls, 1);
        assert_eq!(r.unmonitored.len(), 1);
        assert!(r.unmonitored[0][0].starts_with("2026-11-01T10:00:10.000"));
        assert!(r.unmonitored[0][1].starts_with("2026-11-01T10:00:40.000"));
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("Stalls (the daemon was stopped"), "{md}");
        // The header names the site the journal's run was configured with.
        assert_eq!(r.sites, ["almaty-home"]);
        assert!(md.contains("\nSite: almaty-home.\n"), "{md}");
        let html = render(&r, Format::Html).unwrap();
        assert!(html.contains("<p>Site: almaty-home.</p>"), "{html}");
        assert_eq!(site_line(&[String::new()]), "not set ([daemon] site)");
        assert_eq!(site_line(&["a".into(), String::new()]), "a, (not set)");
        // A period that starts inside the stall sees only its part.
        let r = build(dir.path(), at(30), at(100), "UTC").unwrap();
        assert!((r.monitored_seconds - 60.0).abs() < 1e-6);
        assert!((r.stalled_seconds - 10.0).abs() < 1e-6);
    }
}
