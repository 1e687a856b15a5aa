//! A journal written by linkwatch 0.1 (before the journal became a module of
//! its own) still verifies, lists and reports exactly as that release did.
//!
//! `tests/fixtures/journal-v0.1/` holds the data directory of a real run
//! (`generate.sh`: two loopback TCP targets in a private namespace; an
//! outage of `internet`, a slow period from 30 % SYN loss, a reload, an
//! outage of `lan`, a clean stop) and the outputs that release printed for
//! it. Only the "generated at" time of the reports is normalised.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::daemon::BIN;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal-v0.1")
}

/// A copy of the fixture's data directory (readers must not touch the original).
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture();
    std::fs::copy(src.join("journal.jsonl"), dir.path().join("journal.jsonl")).unwrap();
    std::fs::copy(src.join("heartbeat"), dir.path().join("heartbeat")).unwrap();
    let history = dir.path().join("history");
    std::fs::create_dir(&history).unwrap();
    for e in std::fs::read_dir(src.join("history")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), history.join(e.file_name())).unwrap();
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
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

/// Replaces the report's generation time, the one line that differs by run.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("Generated ") {
                "Generated <time> by".to_string() + l.split_once(" by").map_or("", |(_, r)| r)
            } else if l.trim_start().starts_with("\"generated\":") {
                "  \"generated\": \"<time>\",".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixture().join(name)).unwrap()
}

const PERIOD: [&str; 4] = [
    "--since",
    "2026-12-06T19:54:00Z",
    "--until",
    "2026-12-06T19:55:00Z",
];

#[test]
fn a_v0_1_journal_verifies_and_lists_as_it_did() {
    let dir = data_dir();
    let d = dir.path();
    assert_eq!(
        run(d, &["outages", "--verify"]),
        golden("outages-verify.txt")
    );
    assert_eq!(run(d, &["outages"]), golden("outages.txt"));
    assert_eq!(run(d, &["outages", "--json"]), golden("outages.json"));
    assert_eq!(
        run(d, &["outages", "--degraded", "--json"]),
        golden("slow-periods.json")
    );
    // Reading changed nothing in the journal.
    assert_eq!(
        std::fs::read(d.join("journal.jsonl")).unwrap(),
        std::fs::read(fixture().join("journal.jsonl")).unwrap()
    );
}

#[test]
fn a_v0_1_journal_reports_as_it_did() {
    let dir = data_dir();
    for (format, file) in [("json", "report.json"), ("markdown", "report.markdown")] {
        let mut args = vec!["report", "--format", format];
        args.extend(PERIOD);
        let got = run(dir.path(), &args);
        assert_eq!(
            normalise(&got),
            normalise(&golden(file)),
            "report --format {format}"
        );
    }
}

/// The journal's writer, given the fixture's records again, writes the
/// same bytes: field names, order and the hash chain are unchanged.
#[test]
fn the_writer_writes_a_v0_1_journal_byte_for_byte() {
    use linkwatch::journal::{self, FileSink, JournalCounters, JournalWriter};
    let original = std::fs::read(fixture().join("journal.jsonl")).unwrap();
    let contents = journal::parse(&original);
    assert!(contents.warnings.is_empty(), "{:?}", contents.warnings);
    assert_eq!(contents.lines.len(), 17);
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
    for nl in &contents.lines {
        w.append(nl.line.ts, &nl.line.entry).unwrap();
    }
    drop(w);
    let rewritten = std::fs::read(dir.path().join(journal::JOURNAL_FILE)).unwrap();
    assert_eq!(
        String::from_utf8(rewritten).unwrap(),
        String::from_utf8(original).unwrap()
    );
}
