//! The `linkwatch outages` listing: outages from the loaded history as a table
//! or JSON, and the hash chain check (`--verify`).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

use crate::journal::DurationClock;
use crate::journal::JournalWarning;
use crate::journal::lock::{self, Liveness};
use crate::journal::ts_ms;
use crate::journal::{Ledger, OutageRecord, ReadError};
use crate::path::{self, OutageWithPaths};

/// A heartbeat older than this means no daemon is watching right now.
const STALE_HEARTBEAT: Duration = Duration::from_secs(30);

/// [`read_outages`], each outage with the summaries of its start and end
/// path snapshots (`path_at_start`, `path_at_end`) as the API gives them.
pub fn read_outages_with_paths(
    data_dir: &Path,
    since: Option<Timestamp>,
) -> Result<(Vec<OutageWithPaths>, Vec<JournalWarning>), ReadError> {
    let history = Ledger::load(data_dir)?;
    let records = outages(&history, since, Timestamp::now(), &lock::probe(data_dir));
    Ok((path::with_paths(records, &history.paths), history.warnings))
}

/// Outages recorded in `<data_dir>/journal.jsonl` that end at or after `since`
/// (open ones always), oldest first, plus every problem found in the file.
pub fn read_outages(
    data_dir: &Path,
    since: Option<Timestamp>,
) -> Result<(Vec<OutageRecord>, Vec<JournalWarning>), ReadError> {
    let history = Ledger::load(data_dir)?;
    let records = outages(&history, since, Timestamp::now(), &lock::probe(data_dir));
    Ok((records, history.warnings))
}

/// The outages of `history` that end at or after `since` (open ones always),
/// oldest first, as read at `now`.
///
/// An outage still open in the journal gets `end: null`. While a daemon
/// watches it (it holds the data directory's lock) its duration runs to
/// `now`. With none alive it ends, for reading, at its last sign of life
/// (`observed_until`) and never grows with the reader's clock.
pub fn outages(
    history: &Ledger,
    since: Option<Timestamp>,
    now: Timestamp,
    liveness: &Liveness,
) -> Vec<OutageRecord> {
    let watched = watched(history, now, liveness);
    let mut out = history.closed.clone();
    for o in &history.open {
        let mut r = o.record.clone();
        r.duration_clock = DurationClock::Wall;
        let until = if watched {
            now
        } else {
            let last = history.last_seen(o);
            r.observed_until = Some(last);
            last
        };
        r.duration_seconds = until.duration_since(r.start).as_secs_f64().max(0.0);
        out.push(r);
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    out.retain(|r| r.overlaps(since, None));
    out
}

/// Whether a daemon is watching this journal at `now`: it holds the data
/// directory's lock, or (no lock file) its run has not stopped and wrote a
/// heartbeat recently.
pub fn watched(history: &Ledger, now: Timestamp, liveness: &Liveness) -> bool {
    match liveness {
        Liveness::Alive { .. } => true,
        Liveness::NotRunning => false,
        // No lock file (a daemon older than the lock, or none ever ran here):
        // a fresh heartbeat of a run that has not stopped says someone watches.
        Liveness::Unknown => history.heartbeat.as_ref().is_some_and(|hb| {
            history
                .runs
                .last()
                .is_some_and(|r| hb.run == r.start_seq && !r.clean)
                && now.duration_since(hb.wall).as_secs_f64() < STALE_HEARTBEAT.as_secs_f64()
        }),
    }
}

/// Renders outages as a text table, one row per outage.
pub fn render_table(records: &[OutageRecord]) -> String {
    let with: Vec<OutageWithPaths> = path::with_paths(records.to_vec(), &[]);
    table(&with, false)
}

/// Renders outages as a text table with a last column saying where the path
/// stopped at the outage's start and end (`-` without snapshots).
pub fn render_table_with_paths(records: &[OutageWithPaths]) -> String {
    table(records, true)
}

/// "start: stopped after hop 2 (10.231.2.1); end: reached in 3 hops".
fn path_cell(o: &OutageWithPaths) -> String {
    let parts: Vec<String> = [("start", &o.path_at_start), ("end", &o.path_at_end)]
        .into_iter()
        .filter_map(|(w, s)| s.as_ref().map(|s| format!("{w}: {}", s.short())))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("; ")
    }
}

fn table(records: &[OutageWithPaths], with_path: bool) -> String {
    let header = [
        "ID",
        "GROUP",
        "CAUSE",
        "START",
        "END",
        "DURATION",
        "TARGETS",
        "GAPS",
        "PATH",
        "ELSEWHERE",
    ];
    // What peers saw, only when any outage was corroborated.
    let elsewhere = records.iter().any(|o| !o.record.elsewhere.is_empty());
    let mut keep = [true; 10];
    keep[8] = with_path;
    keep[9] = elsewhere;
    let rows: Vec<[String; 10]> = records
        .iter()
        .map(|o| {
            let r = &o.record;
            let end = match (r.end, r.end_observed) {
                (None, _) => match r.observed_until {
                    Some(t) => format!("open, unobserved after {}", ts_ms::format(&t)),
                    None => "open".to_string(),
                },
                (Some(e), Some(false)) => format!("{} (unobserved)", ts_ms::format(&e)),
                (Some(e), _) => match r.end_reason {
                    // Not a recovery: monitoring of the group stopped (or changed) here.
                    Some(why) => format!("{} ({})", ts_ms::format(&e), why.as_str()),
                    None => ts_ms::format(&e),
                },
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
                if r.start_observed {
                    ts_ms::format(&r.start)
                } else {
                    format!("{} (unobserved)", ts_ms::format(&r.start))
                },
                end,
                human_duration(r.duration_seconds),
                r.targets.join(","),
                gaps,
                path_cell(o),
                elsewhere_cell(&r.elsewhere),
            ]
        })
        .collect();
    text_table(&header, &rows, keep)
}

/// What each peer saw, in a word: `abroad: answered; backup: no data`
/// (`-` when nobody corroborated the period).
pub(super) fn elsewhere_cell(e: &crate::journal::Elsewhere) -> String {
    if e.is_empty() {
        return "-".to_string();
    }
    e.peer_verdicts
        .iter()
        .map(|p| format!("{}: {}", p.peer, crate::journal::verdict_word(p.verdict)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plain text table: left-aligned columns two spaces apart, the columns
/// `keep` marks (the listings of outages and of slow periods).
pub(super) fn text_table<const N: usize>(
    header: &[&str; N],
    rows: &[[String; N]],
    keep: [bool; N],
) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[&str]| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|((c, w), _)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(header);
    for row in rows {
        push_row(&row.each_ref().map(String::as_str));
    }
    out
}

/// Renders outages as the API's JSON array.
pub fn render_json(records: &[OutageRecord]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(records)
}

/// Renders outages as `/api/v1/outages` does: with `path_at_start` and
/// `path_at_end` (`null` when no snapshot was taken).
pub fn render_json_with_paths(records: &[OutageWithPaths]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(records)
}

pub(super) fn human_duration(secs: f64) -> String {
    crate::text::duration(secs, crate::text::DurationStyle::Compact)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
    use crate::journal::{DurationClock, OutageEnded, OutageStarted, WarningKind, verify};
    use crate::outage::testutil::wall;

    fn write(dir: &Path) {
        let counters = JournalCounters {
            writes: prometheus::IntCounter::new("w", "w").unwrap(),
            errors: prometheus::IntCounter::new("e", "e").unwrap(),
        };
        let tail = journal::read(dir).unwrap().tail;
        let mut w = JournalWriter::new(
            Box::new(FileSink::open(dir, false).unwrap()),
            &tail,
            counters,
        );
        for i in 0..4 {
            let id = format!("o{i}");
            let start = wall(i as f64 * 100.0);
            w.append(
                start,
                &Entry::OutageStart(OutageStarted {
                    interference: None,
                    id: id.clone(),
                    group: "isp".into(),
                    cause: "lan".into(),
                    start,
                    start_observed: true,
                    targets: vec!["isp-dns".into()],
                    gaps: vec![],
                }),
            )
            .unwrap();
            let end = wall(i as f64 * 100.0 + 12.5);
            w.append(
                end,
                &Entry::OutageEnd(OutageEnded {
                    interference: None,
                    id,
                    group: "isp".into(),
                    cause: "lan".into(),
                    start,
                    start_observed: true,
                    end,
                    duration_seconds: 12.5,
                    duration_clock: DurationClock::Monotonic,
                    end_observed: true,
                    targets: vec!["isp-dns".into()],
                    gaps: vec![],
                    end_reason: None,
                }),
            )
            .unwrap();
        }
    }

    #[test]
    fn torn_corrupt_and_broken_lines_are_each_named_and_nothing_else_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path());
        let path = dir.path().join(journal::JOURNAL_FILE);
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 8);
        lines[2] = "not json at all".into(); // o1's start: corrupt
        lines[5] = lines[5].replace("\"cause\":\"lan\"", "\"cause\":\"isp\""); // o2's end edited
        let mut text = lines.join("\n") + "\n";
        text.push_str("{\"seq\":8,\"prev\":\"12"); // torn tail
        std::fs::write(&path, text).unwrap();

        let rep = verify(dir.path()).unwrap();
        assert!(!rep.ok());
        assert_eq!(rep.lines, 9);
        assert_eq!(rep.valid, 7);
        let kinds: Vec<(u64, WarningKind)> =
            rep.problems.iter().map(|p| (p.line, p.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (3, WarningKind::Corrupt),
                (4, WarningKind::ChainBroken),
                (7, WarningKind::ChainBroken),
                (9, WarningKind::TornLastLine),
            ]
        );
        assert_eq!(rep.first_broken_line, Some(4));
        let text = rep.render();
        assert!(text.contains("line 3: corrupt line skipped"), "{text}");
        assert!(text.contains("line 7: hash chain broken"), "{text}");
        assert!(text.contains("line 9: incomplete last line"), "{text}");

        let (recs, warnings) = read_outages(dir.path(), None).unwrap();
        assert_eq!(warnings.len(), 4);
        // o1 lost its start line but its end carries the whole record.
        assert_eq!(
            recs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["o0", "o1", "o2", "o3"]
        );
        assert!(
            recs.iter()
                .all(|r| r.end.is_some() && r.duration_seconds == 12.5)
        );
        let since = read_outages(dir.path(), Some(wall(150.0))).unwrap().0;
        assert_eq!(since.len(), 2);
        let table = render_table(&recs);
        assert_eq!(table.lines().count(), 5);
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .contains("2026-11-01T10:00:12.500Z"),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&recs).unwrap()).unwrap();
        assert_eq!(json[0]["end"], "2026-11-01T10:00:12.500Z");
        assert_eq!(json[0]["gaps"], serde_json::json!([]));
    }

    #[test]
    fn durations_carry_rounded_milliseconds() {
        assert_eq!(human_duration(19.99994), "20.000s");
        assert_eq!(human_duration(19.0004), "19.000s");
        assert_eq!(human_duration(59.9996), "1m00s");
        assert_eq!(human_duration(3599.9999), "1h00m00s");
    }
}
