//! The report's "Slow periods" section: degradation periods from the
//! journal, clipped to the period, with their triggers and figures.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use super::{csv_field, secs, spaced};
use crate::journal::Ledger;
use crate::journal::Liveness;
use crate::journal::describe_figures;
use crate::journal::{Figures, PeriodFigures};
use crate::outage::degraded::listing::degradations;
use crate::outage::figures::clip;
use crate::text::DurationStyle::Spaced;
use crate::text::{duration, esc};

/// One degradation period as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSlowPeriod {
    pub id: String,
    pub group: String,
    pub cause: String,
    pub start: String,
    /// `null` while still open.
    pub end: Option<String>,
    pub duration_seconds: f64,
    pub duration_in_period_seconds: f64,
    /// Thresholds crossed: `loss`, `rtt_p50`, `rtt_p95`, `throughput`, `dns_p95`, `http_p95`.
    pub triggers: Vec<String>,
    /// The window's figures when it started.
    pub figures: Figures,
    /// Medians, worst values and counts over the period, once ended.
    pub period: Option<PeriodFigures>,
    pub gaps: Vec<[String; 2]>,
    pub end_observed: Option<bool>,
    /// Ended because the group went down (an outage followed).
    pub superseded: Option<bool>,
    /// Ended by a reload (`removed`, `reconfigured`), not by recovering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<crate::journal::EndReason>,
    /// What peers saw of it; absent without corroboration.
    #[serde(flatten)]
    pub elsewhere: crate::journal::Elsewhere,
    /// Why its cause is `interference` (checks, targets, names); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interference: Option<Box<crate::journal::InterferenceSummary>>,
}

/// The slow periods of `history` overlapping `[since, until)`.
pub(super) fn build(
    history: &Ledger,
    since: Timestamp,
    until: Timestamp,
    now: Timestamp,
    liveness: &Liveness,
    fmt: &dyn Fn(Timestamp) -> String,
) -> Vec<ReportSlowPeriod> {
    degradations(history, Some(since), Some(until), now, liveness)
        .into_iter()
        .map(|r| {
            let end = r.end.unwrap_or(now);
            let in_period = clip(r.start, end, since, until).map_or(0.0, |(a, b)| secs(a, b));
            ReportSlowPeriod {
                start: fmt(r.start),
                end: r.end.map(fmt),
                duration_in_period_seconds: in_period,
                triggers: r.triggers.iter().map(|t| t.as_str().to_string()).collect(),
                gaps: r.gaps.iter().map(|g| [fmt(g.from), fmt(g.to)]).collect(),
                id: r.id,
                group: r.group,
                cause: r.cause,
                duration_seconds: r.duration_seconds,
                figures: r.figures,
                period: r.period,
                end_observed: r.end_observed,
                superseded: r.superseded,
                end_reason: r.end_reason,
                elsewhere: r.elsewhere,
                interference: r.interference,
            }
        })
        .collect()
}

/// The likely cause, with the checks and names behind a cause `interference`.
fn cause(p: &ReportSlowPeriod) -> String {
    crate::interference::show::cause_cell(
        &super::cause_text(&p.cause, &p.elsewhere),
        p.interference
            .as_deref()
            .filter(|_| p.cause == crate::interference::CAUSE),
    )
}

fn end_text(p: &ReportSlowPeriod) -> String {
    match (&p.end, p.end_observed, p.superseded) {
        (None, _, _) => "ongoing".to_string(),
        (Some(e), Some(false), _) => format!("{e} (not observed)"),
        (Some(e), _, Some(true)) => format!("{e} (became an outage)"),
        (Some(e), _, _) => match p.end_reason {
            Some(why) => format!("{e} ({})", why.describe()),
            None => e.clone(),
        },
    }
}

fn gaps_text(p: &ReportSlowPeriod) -> String {
    let gaps: Vec<String> = p
        .gaps
        .iter()
        .map(|g| format!("{} to {}", g[0], g[1]))
        .collect();
    if gaps.is_empty() {
        "-".into()
    } else {
        gaps.join("; ")
    }
}

/// Median and worst over the period, or `-` while open.
fn over_period(p: &ReportSlowPeriod) -> (String, String) {
    match &p.period {
        Some(f) if f.snapshots > 0 => (describe_figures(&f.median), describe_figures(&f.worst)),
        _ => ("-".into(), "-".into()),
    }
}

const EXPLAIN: &str = "A slow period is a time when a group was up but one of its [group.degraded] thresholds was crossed over the sliding window (\"triggers\"). Start is back-dated to the first probe from which the figure was over its threshold; end is the first moment every figure was back on the good side, confirmed by a whole clean window. \"At start\" are the window's figures when it was declared; median and worst are of the window's figures sampled once a second over the period (while a threshold was crossed). \"Likely cause\" is the farthest-upstream group that was slow or down at the start.";

pub(super) fn markdown(out: &mut String, periods: &[ReportSlowPeriod]) {
    let _ = writeln!(out, "\n## Slow periods\n");
    if periods.is_empty() {
        let _ = writeln!(out, "No slow periods were recorded in this period.");
        return;
    }
    let _ = writeln!(
        out,
        "| start | end | duration | group | likely cause | triggers | at start | median | worst | unobserved |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---|---|---|---|---|---|");
    for p in periods {
        let (median, worst) = over_period(p);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.start,
            end_text(p),
            duration(p.duration_seconds, Spaced),
            p.group,
            cause(p),
            p.triggers.join(", "),
            describe_figures(&p.figures),
            median,
            worst,
            gaps_text(p)
        );
    }
    let _ = writeln!(out, "\n{EXPLAIN}");
}

pub(super) fn html(periods: &[ReportSlowPeriod]) -> String {
    let mut rows = String::new();
    for p in periods {
        let (median, worst) = over_period(p);
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&spaced(&p.start)),
            esc(&spaced(&end_text(p))),
            duration(p.duration_seconds, Spaced),
            esc(&p.group),
            esc(&cause(p)),
            esc(&p.triggers.join(", ")),
            esc(&describe_figures(&p.figures)),
            esc(&median),
            esc(&worst),
            esc(&spaced(&gaps_text(p)))
        );
    }
    if periods.is_empty() {
        return "<h2>Slow periods</h2><p>No slow periods were recorded in this period.</p>\n"
            .into();
    }
    format!(
        "<h2>Slow periods</h2><table><tr><th>start</th><th>end</th><th>duration</th><th>group</th><th>likely cause</th><th>triggers</th><th>at start</th><th>median</th><th>worst</th><th>unobserved</th></tr>\n{rows}</table><p>{}</p>\n",
        esc(EXPLAIN)
    )
}

/// A second CSV table after a blank line, only when there are slow periods
/// (so a report without any is byte-for-byte what it was).
pub(super) fn csv(out: &mut String, periods: &[ReportSlowPeriod]) {
    out.push_str(
        "slow_period_id,group,cause,start,end,duration_seconds,duration_in_period_seconds,triggers,loss_ratio,rtt_p50_seconds,rtt_p95_seconds,dns_p95_seconds,http_p95_seconds,throughput_bps,median_loss_ratio,median_rtt_p95_seconds,gaps,end_observed\n",
    );
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    for p in periods {
        let gaps: Vec<String> = p
            .gaps
            .iter()
            .map(|g| format!("{}/{}", g[0], g[1]))
            .collect();
        let median = p.period.as_ref().map(|f| &f.median);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&p.id),
            csv_field(&p.group),
            csv_field(&p.cause),
            p.start,
            p.end.as_deref().unwrap_or(""),
            p.duration_seconds,
            p.duration_in_period_seconds,
            csv_field(&p.triggers.join(" ")),
            num(p.figures.loss_ratio),
            num(p.figures.rtt_p50_seconds),
            num(p.figures.rtt_p95_seconds),
            num(p.figures.dns_p95_seconds),
            num(p.figures.http_p95_seconds),
            num(p.figures.throughput_bps),
            num(median.and_then(|m| m.loss_ratio)),
            num(median.and_then(|m| m.rtt_p95_seconds)),
            csv_field(&gaps.join(" ")),
            p.end_observed.map_or(String::new(), |b| b.to_string()),
        );
    }
}
