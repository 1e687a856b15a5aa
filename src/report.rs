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

use crate::journal::ChainHead;
use crate::journal::{Ledger, ReadError, VerifyReport, When, lock};
use crate::outage::figures::{self, Figures};
use crate::path;
use crate::text::DurationStyle::Spaced;
use crate::text::duration;

pub(crate) mod contract;
mod elsewhere;
mod html;
mod plan;
mod slow;
pub use elsewhere::{ReportWitnesses, SeenFromElsewhere};
pub use plan::SpeedAgainstPlan;
pub use slow::ReportSlowPeriod;

/// The tables of `linkwatch report --format csv`: one per output, chosen
/// with `--table` (default `outages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CsvTable {
    /// Every outage of the period, one row each.
    #[default]
    Outages,
    /// Every group: coverage, judged time, downtime, availability.
    Groups,
    /// Every slow period (degradation).
    SlowPeriods,
    /// Throughput tests against `[plan]`, per direction and hours.
    Plan,
    /// Every throughput test, one row each.
    SpeedTests,
    /// "Seen from elsewhere": each period, peer and target a peer saw.
    Corroboration,
    /// "Against the contract": each criterion's verdict per direction.
    Contract,
    /// Availability per day and group.
    Days,
}

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
    pub end_reason: Option<crate::journal::EndReason>,
    /// Still open, with no daemon running: nobody has watched it since this
    /// moment, and its durations end here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<String>,
    /// What peers saw of it (`corroboration`, `peer_verdicts`,
    /// `local_cause`); absent without corroboration.
    #[serde(flatten)]
    pub elsewhere: crate::journal::Elsewhere,
}

/// Per-group totals over the period (every group the configuration or the
/// journal names, upstream first), from [`figures`].
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub outages: usize,
    #[serde(serialize_with = "millis")]
    pub downtime_seconds: f64,
    /// Up time / judged time, in percent; `null` when nothing was judged
    /// (not monitored, or no verdict yet).
    #[serde(serialize_with = "percent_option")]
    pub availability_percent: Option<f64>,
    /// Monitored time (a daemon running, not stalled).
    #[serde(serialize_with = "millis")]
    pub monitored_seconds: f64,
    /// Monitored, but the group had no verdict yet.
    #[serde(serialize_with = "millis")]
    pub not_judged_seconds: f64,
    /// Monitored share of the period.
    #[serde(serialize_with = "percent")]
    pub coverage_percent: f64,
    /// The summary in words: "no outage; answered throughout", …
    pub summary: String,
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
    /// Heads of this journal other sites acknowledged, and theirs held
    /// here; absent without peers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witnesses: Option<ReportWitnesses>,
    pub groups: Vec<GroupSummary>,
    pub outages: Vec<ReportOutage>,
    /// Degradation periods: up, but slow or lossy.
    pub slow_periods: Vec<ReportSlowPeriod>,
    /// What peers saw of each period; absent without peers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_from_elsewhere: Option<SeenFromElsewhere>,
    /// Throughput tests against `[plan]`, by evening peak and the rest;
    /// `null` when the period has no throughput test.
    pub speed_against_plan: Option<SpeedAgainstPlan>,
    /// Where the path stopped at each outage's start and end, against the baseline.
    pub paths: Vec<OutagePath>,
    /// Per local day (most recent last), each group's figures.
    pub days: Vec<ReportDay>,
    /// History files of the period that could not be read in full (their
    /// throughput tests and minutes are missing); empty when all was read.
    pub history_damaged_files: Vec<crate::history::FileDamage>,
}

/// One local day of the period.
#[derive(Debug, Clone, Serialize)]
pub struct ReportDay {
    /// `2026-12-06` in the report's time zone.
    pub date: String,
    /// Monitored share of the day's part inside the period.
    #[serde(serialize_with = "percent")]
    pub coverage_percent: f64,
    pub groups: Vec<DayGroup>,
}

/// A group's availability on one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayGroup {
    pub group: String,
    #[serde(serialize_with = "percent_option")]
    pub availability_percent: Option<f64>,
    /// `99.95 %`, `not monitored` or `not yet judged`.
    pub text: String,
}

/// An outage's path snapshots in words (see [`crate::path::compare`]).
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

/// Builds the report for `[since, until)` from the journal in `data_dir`
/// (the tests' shorthand for [`build_with`]).
#[cfg(test)]
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
#[cfg(test)]
pub fn build_with_plan(
    data_dir: &Path,
    since: Timestamp,
    until: Timestamp,
    tz_name: &str,
    plan: Option<crate::journal::PlanRecord>,
) -> Result<Report, ReportError> {
    build_with(data_dir, since, until, tz_name, plan, Some(&[]), Some(&[]))
}

/// [`build_with_plan`], naming `groups` (the configuration's, upstream
/// first) in the summary even when the journal says nothing of them, and
/// `peers` (the configuration's `[[peer]]`s with a `url`: those asked to
/// corroborate) in "Seen from elsewhere"; `None`: those of the
/// configuration file the journal's last run recorded, when it still loads.
pub fn build_with(
    data_dir: &Path,
    since: Timestamp,
    until: Timestamp,
    tz_name: &str,
    plan: Option<crate::journal::PlanRecord>,
    groups: Option<&[String]>,
    peers: Option<&[String]>,
) -> Result<Report, ReportError> {
    if until <= since {
        return Err(ReportError::EmptyPeriod {
            since: since.to_string(),
            until: until.to_string(),
        });
    }
    let tz = time_zone(tz_name)?;
    let fmt = |t: Timestamp| format_in(t, &tz);

    let journal = crate::journal::journal_path(data_dir);
    if !journal.exists() {
        return Err(ReportError::NoJournal(journal));
    }
    let history = Ledger::load(data_dir)?;
    let now = Timestamp::now();
    let liveness = lock::probe(data_dir);
    let figs = Figures::new(&history, now, &liveness);
    let records: Vec<_> = figs
        .outages()
        .iter()
        .filter(|r| r.overlaps(Some(since), None))
        .cloned()
        .collect();
    let verify = VerifyReport::of(&history);

    // Coverage: the union of runs clipped to the period, less their stalls.
    let runs = figs.runs(since, until);
    let stall_spans = figs.stalls(since, until);
    let monitored_spans = figs.monitored(since, until);
    let monitored = figures::total(&monitored_spans);
    let stalled = (figures::total(&runs) - monitored).max(0.0);
    let unmonitored = unmonitored(&monitored_spans, since, until)
        .into_iter()
        .map(|(a, b)| [fmt(a), fmt(b)])
        .collect();
    let overlapping_runs: Vec<_> = history
        .runs
        .iter()
        .filter(|r| figures::clip(r.started, r.alive_until, since, until).is_some())
        .collect();
    let period = secs(since, until);

    let outages = report_outages(&records, &figs, &monitored_spans, since, until, &fmt);

    let paths = outage_paths(&records, &history, since, until, &fmt);

    let names = report_groups(&history, &figs, groups);
    let peers = match peers {
        Some(p) => p.to_vec(),
        None => recorded_config(&history).map_or_else(Vec::new, |c| asked_peers(&c)),
    };
    let slow_periods = slow::build(&history, since, until, now, &liveness, &fmt);
    let seen_from_elsewhere = elsewhere::build(&history, &peers, &outages, &slow_periods);
    let summaries = names
        .iter()
        .map(|g| group_summary(&figs, g, since, until))
        .collect();
    let days = days(&figs, &names, since, until, &tz);

    Ok(Report {
        generated: fmt(now),
        version: env!("CARGO_PKG_VERSION"),
        sites: sites(&overlapping_runs),
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
        witnesses: elsewhere::witnesses(&history, &peers, &fmt),
        groups: summaries,
        outages,
        paths,
        slow_periods,
        seen_from_elsewhere,
        speed_against_plan: plan::build(data_dir, &history, since, until, &tz, plan),
        days,
        history_damaged_files: crate::history::damaged_files(data_dir, since, until),
    })
}

/// The zone `tz_name` names (`UTC` in any case, or an IANA name).
fn time_zone(tz_name: &str) -> Result<TimeZone, ReportError> {
    Ok(if tz_name.eq_ignore_ascii_case("utc") {
        TimeZone::UTC
    } else {
        TimeZone::get(tz_name).map_err(|_| ReportError::TimeZone(tz_name.to_string()))?
    })
}

/// The outages that overlap `[since, until)`, with the part of each that
/// fell in monitored time.
fn report_outages(
    records: &[crate::journal::OutageRecord],
    figs: &Figures,
    monitored_spans: &[figures::Span],
    since: Timestamp,
    until: Timestamp,
    fmt: &dyn Fn(Timestamp) -> String,
) -> Vec<ReportOutage> {
    records
        .iter()
        .filter(|r| r.overlaps(Some(since), Some(until)))
        .map(|r| {
            let end = figs.outage_end(r);
            let in_period = figures::total(&figures::intersect(
                &figures::clip(r.start, end, since, until)
                    .into_iter()
                    .collect::<Vec<_>>(),
                monitored_spans,
            ));
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
                elsewhere: r.elsewhere.clone(),
            }
        })
        .collect()
}

/// The path snapshots of the outages that overlap `[since, until)`, each
/// compared with its group's last complete baseline.
fn outage_paths(
    records: &[crate::journal::OutageRecord],
    history: &Ledger,
    since: Timestamp,
    until: Timestamp,
    fmt: &dyn Fn(Timestamp) -> String,
) -> Vec<OutagePath> {
    records
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
        .collect()
}

/// The `[daemon] site` of each run, once each, in order (`""` for none).
fn sites(runs: &[&crate::journal::Run]) -> Vec<String> {
    runs.iter().fold(Vec::new(), |mut v, r| {
        let s = r.site.clone().unwrap_or_default();
        if !v.contains(&s) {
            v.push(s);
        }
        v
    })
}

/// The groups the report covers: `groups` (a configuration's), else those
/// of the configuration the journal's last run recorded, then any other
/// group the journal names (see [`group_names`]).
fn report_groups(history: &Ledger, figs: &Figures, groups: Option<&[String]>) -> Vec<String> {
    let recorded;
    let groups = match groups {
        Some(g) => g,
        None => {
            recorded = recorded_groups(history);
            &recorded[..]
        }
    };
    group_names(groups, figs)
}

/// The groups of the configuration file the journal's last run recorded,
/// in order, when it still exists and loads; none otherwise.
fn recorded_groups(history: &Ledger) -> Vec<String> {
    recorded_config(history).map_or_else(Vec::new, |c| {
        c.groups.iter().map(|g| g.name.clone()).collect()
    })
}

/// The configuration file the journal's last run recorded, when it still
/// exists and loads.
fn recorded_config(history: &Ledger) -> Option<crate::config::Config> {
    let path = history
        .runs
        .last()
        .map(|r| std::path::PathBuf::from(&r.config_source))
        .filter(|p| p.is_file())?;
    match crate::config::load_for_reading(&path) {
        Ok(c) => Some(c),
        Err(_) => {
            tracing::debug!(path = %path.display(), "the recorded configuration does not load; the report names the journal's groups only");
            None
        }
    }
}

/// The peers a configuration asks to corroborate: `[[peer]]`s with a `url`.
pub fn asked_peers(c: &crate::config::Config) -> Vec<String> {
    c.peers
        .iter()
        .filter(|p| p.url.is_some())
        .map(|p| p.name.clone())
        .collect()
}

/// The groups a report covers: `configured` in their order (upstream
/// first), then any other group the journal names, by name.
pub fn group_names(configured: &[String], figs: &Figures) -> Vec<String> {
    let mut v: Vec<String> = configured.to_vec();
    for g in figs.journal_groups() {
        if !v.contains(&g) {
            v.push(g);
        }
    }
    v
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

/// A group's totals over the period, from the shared [`figures`].
fn group_summary(figs: &Figures, g: &str, since: Timestamp, until: Timestamp) -> GroupSummary {
    let f = figs.group(g, since, until);
    let coverage = f.coverage_percent();
    let summary = if f.outages > 0 {
        format!(
            "{} outage{}, {} down",
            f.outages,
            if f.outages == 1 { "" } else { "s" },
            duration(f.down_seconds, Spaced)
        )
    } else if f.monitored_seconds <= 0.0 {
        "not monitored".to_string()
    } else if f.judged_seconds < 0.001 {
        "no outage; not yet judged".to_string()
    } else if coverage >= 99.95 && f.not_judged_seconds < 1.0 {
        "no outage; answered throughout".to_string()
    } else {
        format!(
            "no outage; answered throughout the {} monitored ({:.2} % of the period{})",
            duration(f.judged_seconds, Spaced),
            coverage,
            if f.not_judged_seconds >= 1.0 {
                format!(
                    "; {} not yet judged",
                    duration(f.not_judged_seconds, Spaced)
                )
            } else {
                String::new()
            }
        )
    };
    GroupSummary {
        group: g.to_string(),
        outages: f.outages,
        downtime_seconds: f.down_seconds,
        availability_percent: f.availability_percent,
        monitored_seconds: f.monitored_seconds,
        not_judged_seconds: f.not_judged_seconds,
        coverage_percent: coverage,
        summary,
        longest_outage_seconds: f.longest_outage_seconds,
        downtime_by_cause: figs
            .down_by_cause(g, since, until)
            .into_iter()
            .map(|(cause, downtime_seconds)| CauseDowntime {
                cause,
                downtime_seconds,
            })
            .collect(),
    }
}

/// Most days the report lists (the most recent ones).
const MAX_DAYS: usize = 62;

/// Per local day touching the period, each group's figures.
fn days(
    figs: &Figures,
    groups: &[String],
    since: Timestamp,
    until: Timestamp,
    tz: &TimeZone,
) -> Vec<ReportDay> {
    let mut out = Vec::new();
    let mut day = since.to_zoned(tz.clone()).date();
    let last = until.to_zoned(tz.clone()).date();
    while day <= last {
        let start = day.to_zoned(tz.clone()).map_or(since, |z| z.timestamp());
        let Ok(next) = day.tomorrow() else { break };
        let end = next.to_zoned(tz.clone()).map_or(until, |z| z.timestamp());
        if let Some((a, b)) = figures::clip(start, end, since, until) {
            let mon = figures::total(&figs.monitored(a, b));
            out.push(ReportDay {
                date: day.to_string(),
                coverage_percent: 100.0 * mon / secs(a, b).max(1e-9),
                groups: groups
                    .iter()
                    .map(|g| {
                        let f = figs.group(g, a, b);
                        DayGroup {
                            group: g.clone(),
                            availability_percent: f.availability_percent,
                            text: f.availability_text(),
                        }
                    })
                    .collect(),
            });
        }
        day = next;
    }
    let skip = out.len().saturating_sub(MAX_DAYS);
    out.split_off(skip)
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

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64().max(0.0)
}

/// A timestamp in `tz` with milliseconds and the UTC offset (RFC 3339).
fn format_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    z.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// RFC 3339 times with room to wrap: `2026-12-01 15:59:34.600 +00:00`.
fn spaced(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        if c == 'T' && digit(prev) && digit(next) {
            out.push(' ');
            continue;
        }
        // The offset after milliseconds: `.600+00:00`.
        if (c == '+' || c == '-')
            && i >= 4
            && chars[i - 4] == '.'
            && chars[i - 3..i].iter().all(char::is_ascii_digit)
        {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Renders the report in `format` (CSV: the outages table).
#[cfg(test)]
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    render_with(report, format, CsvTable::default())
}

/// Renders the report in `format`; CSV gives the one table `table`.
pub fn render_with(
    report: &Report,
    format: Format,
    table: CsvTable,
) -> Result<String, ReportError> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
        Format::Csv => render_csv(report, table),
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

/// One CSV table: a header line, then one row per item (the header alone
/// when there is none).
fn render_csv(r: &Report, table: CsvTable) -> String {
    let mut out = String::new();
    match table {
        CsvTable::Outages => csv_outages(&mut out, r),
        CsvTable::Groups => csv_groups(&mut out, r),
        CsvTable::SlowPeriods => slow::csv(&mut out, &r.slow_periods),
        CsvTable::Plan => plan::csv(&mut out, r.speed_against_plan.as_ref()),
        CsvTable::SpeedTests => plan::csv_tests(&mut out, r.speed_against_plan.as_ref()),
        CsvTable::Contract => contract::csv(
            &mut out,
            r.speed_against_plan
                .as_ref()
                .map_or(&[][..], |p| &p.against_the_contract),
        ),
        CsvTable::Days => csv_days(&mut out, r),
        CsvTable::Corroboration => elsewhere::csv(&mut out, r.seen_from_elsewhere.as_ref()),
    }
    out
}

fn csv_outages(out: &mut String, r: &Report) {
    out.push_str(
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
}

fn csv_groups(out: &mut String, r: &Report) {
    out.push_str(
        "group,outages,downtime_seconds,availability_percent,monitored_seconds,not_judged_seconds,coverage_percent,longest_outage_seconds,summary\n",
    );
    for g in &r.groups {
        let _ = writeln!(
            out,
            "{},{},{:.3},{},{:.3},{:.3},{:.3},{:.3},{}",
            csv_field(&g.group),
            g.outages,
            g.downtime_seconds,
            g.availability_percent
                .map_or(String::new(), |a| format!("{a:.3}")),
            g.monitored_seconds,
            g.not_judged_seconds,
            g.coverage_percent,
            g.longest_outage_seconds,
            csv_field(&g.summary),
        );
    }
}

fn csv_days(out: &mut String, r: &Report) {
    out.push_str("date,group,coverage_percent,availability_percent\n");
    for d in &r.days {
        for g in &d.groups {
            let _ = writeln!(
                out,
                "{},{},{:.3},{}",
                d.date,
                csv_field(&g.group),
                d.coverage_percent,
                g.availability_percent
                    .map_or(String::new(), |a| format!("{a:.3}")),
            );
        }
    }
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
            "Journal head: line seq {}, SHA-256 {}. {}",
            h.seq,
            h.hash,
            witness_instructions(h)
        ),
    }
}

/// How to check the head `h` against the metrics a Prometheus scraped.
pub(crate) fn witness_instructions(h: &ChainHead) -> String {
    format!(
        "To check it against an independent \
         witness, query the Prometheus that scraped this daemon: \
         every value of linkwatch_journal_events_total it recorded before this report was \
         generated must be at most {total}, and wherever it was exactly {total}, \
         linkwatch_journal_head_info must carry hash=\"{prefix}\"",
        total = h.seq + 1,
        prefix = h.hash_prefix(),
    )
}

/// A group's summary row: group, summary, availability, coverage,
/// downtime, longest outage, downtime by cause.
pub(crate) fn group_cells(g: &GroupSummary) -> [String; 7] {
    let causes: Vec<String> = g
        .downtime_by_cause
        .iter()
        .map(|c| format!("{}: {}", c.cause, duration(c.downtime_seconds, Spaced)))
        .collect();
    [
        g.group.clone(),
        g.summary.clone(),
        availability_text(g),
        format!("{:.2} %", g.coverage_percent),
        if g.outages == 0 {
            "-".into()
        } else {
            duration(g.downtime_seconds, Spaced)
        },
        if g.outages == 0 {
            "-".into()
        } else {
            duration(g.longest_outage_seconds, Spaced)
        },
        if causes.is_empty() {
            "-".into()
        } else {
            causes.join(", ")
        },
    ]
}

/// `99.995 %`, `not monitored` or `not yet judged`.
pub(crate) fn availability_text(g: &GroupSummary) -> String {
    match g.availability_percent {
        // Floored: 99.9996 is not 100 %.
        Some(a) if a < 100.0 => format!("{:.3} %", (a * 1000.0).floor() / 1000.0),
        Some(_) => "100 %".into(),
        None if g.monitored_seconds <= 0.0 => "not monitored".into(),
        None => "not yet judged".into(),
    }
}

/// A period's likely cause for people: the cause, and what this site judged
/// when a peer's verdict changed it (`destination (this site: internet)`).
pub(crate) fn cause_text(cause: &str, e: &crate::journal::Elsewhere) -> String {
    match &e.local_cause {
        Some(local) => format!("{cause} (this site: {local})"),
        None => cause.to_string(),
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
    markdown_evidence(&mut out, r);
    markdown_groups(&mut out, r);
    markdown_outages(&mut out, r);
    markdown_paths(&mut out, r);
    slow::markdown(&mut out, &r.slow_periods);
    elsewhere::markdown(&mut out, r.seen_from_elsewhere.as_ref());
    plan::markdown(&mut out, r.speed_against_plan.as_ref(), &r.time_zone);
    contract::markdown(
        &mut out,
        r.speed_against_plan
            .as_ref()
            .map_or(&[][..], |p| &p.against_the_contract),
    );
    plan::markdown_tests(&mut out, r.speed_against_plan.as_ref());
    let _ = writeln!(out, "\n---\n\n{DEFINITIONS}");
    out
}

/// The Markdown report's "Evidence quality" section.
fn markdown_evidence(out: &mut String, r: &Report) {
    let _ = writeln!(out, "## Evidence quality\n");
    let _ = writeln!(
        out,
        "- Monitoring coverage: {:.2} % of the period ({} of {}), {} run(s)",
        r.coverage_percent,
        duration(r.monitored_seconds, Spaced),
        duration(r.period_seconds, Spaced),
        r.runs
    );
    if r.stalls > 0 {
        let _ = writeln!(
            out,
            "- Stalls (the daemon was stopped or the system suspended; not monitored): {}, {} in all",
            r.stalls,
            duration(r.stalled_seconds, Spaced)
        );
    }
    let _ = writeln!(
        out,
        "- Journal integrity (hash chain): {}",
        if r.journal_ok { "intact" } else { "BROKEN" }
    );
    let _ = writeln!(out, "- {}", witness_check(r));
    let _ = writeln!(out, "- {VERIFY}");
    for w in r.witnesses.iter().flat_map(|w| &w.text) {
        let _ = writeln!(out, "- {w}");
    }
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
}

/// The Markdown report's "Summary by group" section.
fn markdown_groups(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n## Summary by group\n");
    if r.groups.is_empty() {
        let _ = writeln!(
            out,
            "No group is known: no outage was recorded in this period and no configuration names one (pass --config)."
        );
    } else {
        let _ = writeln!(
            out,
            "| group | summary | availability | coverage | downtime | longest | downtime by cause |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|");
        for g in &r.groups {
            let c = group_cells(g);
            let _ = writeln!(out, "| {} |", c.join(" | "));
        }
    }
}

/// The Markdown report's "Outages" section (none without outages).
fn markdown_outages(out: &mut String, r: &Report) {
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
                duration(o.duration_seconds, Spaced),
                o.group,
                cause_text(&o.cause, &o.elsewhere),
                o.targets.join(", "),
                if gaps.is_empty() { "-" } else { &gaps }
            );
        }
    }
}

/// The Markdown report's "Where the path stopped" section (none without snapshots).
fn markdown_paths(out: &mut String, r: &Report) {
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
}

/// How a reader checks the journal behind a report (both formats say it).
const VERIFY: &str = "To verify: run `linkwatch outages --verify` on the monitoring machine; it recomputes the journal's hash chain and prints the head hash, which must equal the one above unless lines were added since.";

/// The footer that defines the report's terms (both formats).
const DEFINITIONS: &str = "Start is the first failed probe of the streak that declared the outage; end is the first successful probe of the streak that ended it. An edge marked \"not observed\" happened while linkwatch was not running or stalled: a start is then the earliest moment it could have been and an end the last moment the group was seen down, and the true moment lies in the adjacent unobserved period. \"Likely cause\" is the farthest-upstream group that was down when the outage started. Durations come from the monotonic clock when one process saw both ends, otherwise from the wall clock. Availability is up time divided by judged time: the time monitored (a daemon running, not stalled) in which the group had a verdict; unmonitored time and time before a group's first verdict (\"not yet judged\") count neither way. The status page, /api/v1/availability and this report compute it with the same function over the same journal.";

fn render_html(r: &Report) -> String {
    html::render(r, &caveats(r), VERIFY, DEFINITIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(duration(3.25, Spaced), "3.2s");
        assert_eq!(duration(61.0, Spaced), "1m 01s");
        assert_eq!(duration(3723.0, Spaced), "1h 02m 03s");
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
        std::fs::write(crate::journal::journal_path(dir.path()), "").unwrap();
        let r = build(dir.path(), since, until, "UTC").unwrap();
        assert_eq!(r.coverage_percent, 0.0);
        assert_eq!(r.unmonitored.len(), 1);
        assert!(r.outages.is_empty());
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("No group is known"), "{md}");
        assert!(md.contains("Monitoring covered 0.00 %"));
        let html = render(&r, Format::Html).unwrap();
        for part in [
            "No group is known",
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
    fn every_group_is_summarised_with_the_shared_figures_and_csv_is_one_table() {
        use figures::tests::{at, measured};
        let dir = tempfile::tempdir().unwrap();
        measured(dir.path());
        let groups: Vec<String> = ["lan", "isp", "internet", "dns"].map(String::from).into();
        let r = build_with(
            dir.path(),
            at(0.0),
            at(213.0),
            "UTC",
            None,
            Some(&groups),
            None,
        )
        .unwrap();
        let names: Vec<&str> = r.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(
            names,
            ["lan", "isp", "internet", "dns"],
            "configuration order"
        );
        let g = |n: &str| r.groups.iter().find(|g| g.group == n).unwrap();
        // Zero successes: 0 %, not the share of the seconds before the first probe.
        assert_eq!(g("lan").availability_percent, Some(0.0));
        assert!((g("isp").availability_percent.unwrap() - 78.497).abs() < 0.01);
        assert!((g("isp").downtime_seconds - 45.8).abs() < 1e-6);
        assert_eq!(g("internet").summary, "no outage; answered throughout");
        assert_eq!(g("internet").availability_percent, Some(100.0));
        // The same numbers as the page's and the API's function.
        let h = Ledger::load(dir.path()).unwrap();
        let f = Figures::new(&h, Timestamp::now(), &lock::probe(dir.path()));
        for s in &r.groups {
            let want = f.group(&s.group, at(0.0), at(213.0));
            assert_eq!(
                s.availability_percent, want.availability_percent,
                "{}",
                s.group
            );
            assert_eq!(s.downtime_seconds, want.down_seconds, "{}", s.group);
        }
        // A longer period: coverage is said, not "throughout".
        let r2 = build_with(
            dir.path(),
            at(0.0),
            at(426.0),
            "UTC",
            None,
            Some(&groups),
            None,
        )
        .unwrap();
        let internet = r2.groups.iter().find(|g| g.group == "internet").unwrap();
        assert!(
            internet.summary.starts_with(
                "no outage; answered throughout the 3m 33s monitored (50.00 % of the period"
            ),
            "{}",
            internet.summary
        );
        let md = render(&r, Format::Markdown).unwrap();
        assert!(
            md.contains("| lan | 1 outage, 3m 33s down | 0.000 % | 100.00 % |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| internet | no outage; answered throughout | 100 % | 100.00 % | - | - | - |"
            ),
            "{md}"
        );
        let html = render(&r, Format::Html).unwrap();
        let hash = &r.journal_head.as_ref().unwrap().hash;
        assert_eq!(html.matches(hash.as_str()).count(), 1, "the head hash once");
        assert!(
            html.contains("<td>internet</td><td>no outage; answered throughout</td>"),
            "{html}"
        );
        // CSV: one well-formed table per output.
        for table in [
            CsvTable::Outages,
            CsvTable::Groups,
            CsvTable::SlowPeriods,
            CsvTable::Plan,
            CsvTable::SpeedTests,
            CsvTable::Days,
        ] {
            let csv = render_with(&r, Format::Csv, table).unwrap();
            // Fields outside quotes (no quoted line breaks here).
            let fields = |l: &str| {
                let mut quoted = false;
                1 + l
                    .chars()
                    .filter(|c| {
                        if *c == '"' {
                            quoted = !quoted;
                        }
                        *c == ',' && !quoted
                    })
                    .count()
            };
            let mut lines = csv.lines();
            let columns = fields(lines.next().unwrap());
            assert!(!csv.contains("\n\n"), "{table:?}: {csv}");
            for l in lines {
                assert_eq!(fields(l), columns, "{table:?}: {l}");
            }
        }
        let csv = render_with(&r, Format::Csv, CsvTable::Groups).unwrap();
        assert_eq!(csv.lines().count(), 5, "{csv}");
        assert!(
            csv.contains("\nlan,1,212.600,0.000,213.000,0.400,100.000,"),
            "{csv}"
        );
        assert_eq!(
            render(&r, Format::Csv).unwrap(),
            render_with(&r, Format::Csv, CsvTable::Outages).unwrap()
        );
        let csv = render_with(&r, Format::Csv, CsvTable::Days).unwrap();
        assert!(csv.contains("\n2026-11-01,lan,100.000,0.000\n"), "{csv}");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn stalls_are_not_monitored_time() {
        use crate::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
        use crate::journal::{DaemonStart, DaemonStop, StallCause, Stalled};
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
                open_degradations: vec![],
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
