//! The `linkwatch outages` listing: outages from the loaded history as a table
//! or JSON, and the hash chain check (`--verify`).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::event::Gap;
use super::history::{History, OutageRecord, ReadError};
use super::journal::{JournalWarning, WarningKind};
use super::ts_ms;

/// A heartbeat older than this means no daemon is watching right now.
const STALE_HEARTBEAT: Duration = Duration::from_secs(30);

/// Outages recorded in `<data_dir>/journal.jsonl` that end at or after `since`
/// (open ones always), oldest first, plus every problem found in the file.
pub fn read_outages(
    data_dir: &Path,
    since: Option<Timestamp>,
) -> Result<(Vec<OutageRecord>, Vec<JournalWarning>), ReadError> {
    let history = History::load(data_dir)?;
    let records = outages(&history, since, Timestamp::now());
    Ok((records, history.warnings))
}

/// The outages of `history` that end at or after `since` (open ones always),
/// oldest first, as read at `now`.
///
/// An outage still open in the journal gets `end: null`; if no daemon has
/// written a heartbeat recently, the time since its last sign of life is shown
/// as a trailing gap (nobody is watching it).
pub fn outages(history: &History, since: Option<Timestamp>, now: Timestamp) -> Vec<OutageRecord> {
    let watched = watched(history, now);
    let mut history = history.clone();
    if !watched {
        let seen: Vec<_> = history.open.iter().map(|o| history.last_seen(o)).collect();
        for (o, last) in history.open.iter_mut().zip(seen) {
            o.record.gaps.push(Gap {
                from: last,
                to: now.max(last),
            });
        }
    }
    history
        .records(now)
        .into_iter()
        .filter(|r| r.overlaps(since, None))
        .collect()
}

/// Whether a daemon is watching this journal at `now` (its last run has not
/// stopped and wrote a heartbeat recently).
pub fn watched(history: &History, now: Timestamp) -> bool {
    history.heartbeat.is_some_and(|hb| {
        history
            .runs
            .last()
            .is_some_and(|r| hb.run == r.start_seq && !r.clean)
            && now.duration_since(hb.wall).as_secs_f64() < STALE_HEARTBEAT.as_secs_f64()
    })
}

/// Renders outages as a text table, one row per outage.
pub fn render_table(records: &[OutageRecord]) -> String {
    let header = [
        "ID", "GROUP", "CAUSE", "START", "END", "DURATION", "TARGETS", "GAPS",
    ];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            let end = match (r.end, r.end_observed) {
                (None, _) => "open".to_string(),
                (Some(e), Some(false)) => format!("{} (unobserved)", ts_ms::format(&e)),
                (Some(e), _) => ts_ms::format(&e),
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
                r.cause.clone(),
                ts_ms::format(&r.start),
                end,
                human_duration(r.duration_seconds),
                r.targets.join(","),
                gaps,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[&str]| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&header);
    for row in &rows {
        push_row(&row.each_ref().map(String::as_str));
    }
    out
}

/// Renders outages as the API's JSON array.
pub fn render_json(records: &[OutageRecord]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(records)
}

pub(super) fn human_duration(secs: f64) -> String {
    let total = secs.max(0.0);
    let whole = total as u64;
    let (h, m, s) = (whole / 3600, whole % 3600 / 60, whole % 60);
    let ms = ((total - whole as f64) * 1000.0).round() as u64 % 1000;
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}.{ms:03}s")
    }
}

/// The result of `linkwatch outages --verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Lines in the file.
    pub lines: u64,
    /// Lines that parsed and were checked.
    pub valid: u64,
    /// The first line whose hash chain link is broken.
    pub first_broken_line: Option<u64>,
    /// Every problem, by line number.
    pub problems: Vec<JournalWarning>,
}

impl VerifyReport {
    /// The chain check of a loaded journal.
    pub fn of(history: &History) -> Self {
        Self {
            lines: history.total_lines,
            valid: history.valid_lines,
            first_broken_line: history.first_chain_break().map(|w| w.line),
            problems: history.warnings.clone(),
        }
    }

    /// No broken link and no corrupt line (a torn line left by a crash is not tampering).
    pub fn ok(&self) -> bool {
        self.first_broken_line.is_none()
            && !self
                .problems
                .iter()
                .any(|p| p.kind == WarningKind::Corrupt || p.kind == WarningKind::ChainBroken)
    }

    /// Human summary, one problem per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.ok() {
            out.push_str(&format!(
                "journal ok: {} lines, hash chain intact\n",
                self.valid
            ));
        } else {
            match self.first_broken_line {
                Some(n) => {
                    out.push_str(&format!("journal NOT ok: hash chain broken at line {n}\n"))
                }
                None => out.push_str("journal NOT ok: corrupt lines\n"),
            }
        }
        for p in &self.problems {
            out.push_str(&format!("  {p}\n"));
        }
        out
    }
}

/// Checks the journal's hash chain and names every problem by line number.
pub fn verify(data_dir: &Path) -> Result<VerifyReport, ReadError> {
    Ok(VerifyReport::of(&History::load(data_dir)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::outage::event::{DurationClock, OutageEnded, OutageStarted};
    use crate::outage::journal::{self, Entry, FileSink, JournalCounters, JournalWriter};
    use crate::outage::testutil::wall;

    fn write(dir: &Path) {
        let counters = JournalCounters {
            writes: prometheus::IntCounter::new("w", "w").unwrap(),
            errors: prometheus::IntCounter::new("e", "e").unwrap(),
        };
        let tail = journal::read(dir).unwrap().tail;
        let mut w = JournalWriter::new(Box::new(FileSink::open(dir).unwrap()), &tail, counters);
        for i in 0..4 {
            let id = format!("o{i}");
            let start = wall(i as f64 * 100.0);
            w.append(
                start,
                Entry::OutageStart(OutageStarted {
                    id: id.clone(),
                    group: "isp".into(),
                    cause: "lan".into(),
                    start,
                    targets: vec!["isp-dns".into()],
                }),
            )
            .unwrap();
            let end = wall(i as f64 * 100.0 + 12.5);
            w.append(
                end,
                Entry::OutageEnd(OutageEnded {
                    id,
                    group: "isp".into(),
                    cause: "lan".into(),
                    start,
                    end,
                    duration_seconds: 12.5,
                    duration_clock: DurationClock::Monotonic,
                    end_observed: true,
                    targets: vec!["isp-dns".into()],
                    gaps: vec![],
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
}
