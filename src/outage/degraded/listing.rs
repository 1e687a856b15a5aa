//! `linkwatch outages --degraded`: degradation periods from the loaded
//! history, as a table or JSON.

use std::path::Path;

use jiff::Timestamp;

use crate::journal::JournalWarning;
use crate::journal::lock::{self, Liveness};
use crate::journal::ts_ms;
use crate::journal::{Ledger, ReadError};
use crate::journal::{SlowPeriodRecord, describe_figures, triggers_text};
use crate::outage::listing::{elsewhere_cell, human_duration, text_table, watched};

/// Degradations recorded in `<data_dir>/journal.jsonl` that end at or after
/// `since` (open ones always), oldest first, plus the journal's problems.
pub fn read_degradations(
    data_dir: &Path,
    since: Option<Timestamp>,
) -> Result<(Vec<SlowPeriodRecord>, Vec<JournalWarning>), ReadError> {
    let history = Ledger::load(data_dir)?;
    let liveness = lock::probe(data_dir);
    let records = degradations(&history, since, None, Timestamp::now(), &liveness);
    Ok((records, history.warnings))
}

/// The degradations of `history` overlapping `[since, until)`, as read at `now`.
pub fn degradations(
    history: &Ledger,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    now: Timestamp,
    liveness: &Liveness,
) -> Vec<SlowPeriodRecord> {
    history
        .degradations
        .records(&history.runs, now, watched(history, now, liveness))
        .into_iter()
        .filter(|r| r.overlaps(since, until))
        .collect()
}

/// Renders degradations as a text table, one row per period: the window
/// figures at the start, and the period's medians once it ended.
pub fn render_table(records: &[SlowPeriodRecord]) -> String {
    let header = [
        "ID",
        "GROUP",
        "CAUSE",
        "START",
        "END",
        "DURATION",
        "TRIGGERS",
        "FIGURES",
        "GAPS",
        "ELSEWHERE",
    ];
    // What peers saw, only when any period was corroborated.
    let mut keep = [true; 10];
    keep[9] = records.iter().any(|r| !r.elsewhere.is_empty());
    let rows: Vec<[String; 10]> = records
        .iter()
        .map(|r| {
            let end = match (r.end, r.end_observed) {
                (None, _) => "open".to_string(),
                (Some(e), Some(false)) => format!("{} (unobserved)", ts_ms::format(&e)),
                (Some(e), _) => ts_ms::format(&e),
            };
            let figures = match &r.period {
                Some(p) if p.snapshots > 0 => format!(
                    "start: {}; median: {}",
                    describe_figures(&r.figures),
                    describe_figures(&p.median)
                ),
                _ => format!("start: {}", describe_figures(&r.figures)),
            };
            let gaps = if r.gaps.is_empty() {
                "-".to_string()
            } else {
                r.gaps
                    .iter()
                    .map(|g| format!("{}..{}", ts_ms::format(&g.from), ts_ms::format(&g.to)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            [
                r.id.clone(),
                r.group.clone(),
                crate::interference::show::cause_cell(&r.cause, r.interference.as_deref()),
                ts_ms::format(&r.start),
                end,
                human_duration(r.duration_seconds),
                triggers_text(&r.triggers),
                figures,
                gaps,
                elsewhere_cell(&r.elsewhere),
            ]
        })
        .collect();
    text_table(&header, &rows, keep)
}

/// Renders degradations as the API's JSON array.
pub fn render_json(records: &[SlowPeriodRecord]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(records)
}
