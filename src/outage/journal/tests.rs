#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use prometheus::IntCounter;

use super::*;
use crate::outage::event::DaemonStop;

fn counters() -> JournalCounters {
    JournalCounters {
        writes: IntCounter::new("w", "w").unwrap(),
        errors: IntCounter::new("e", "e").unwrap(),
    }
}

fn stop(n: usize) -> Entry {
    Entry::DaemonStop(DaemonStop {
        open_outages: vec![format!("o{n}")],
        open_degradations: vec![],
    })
}

/// Writes `n` lines into a fresh journal in `dir`.
fn write_lines(dir: &Path, n: usize) {
    let tail = read(dir).unwrap().tail;
    let mut w = JournalWriter::new(
        Box::new(FileSink::open(dir, false).unwrap()),
        &tail,
        counters(),
    );
    for i in 0..n {
        w.append(crate::outage::testutil::wall(i as f64 + 0.1234), &stop(i))
            .unwrap();
    }
}

fn lines_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rewrite(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join(JOURNAL_FILE), lines.join("\n") + "\n").unwrap();
}

#[test]
fn lines_are_chained_with_millisecond_utc_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let raw = lines_of(dir.path());
    assert_eq!(raw.len(), 3);
    assert!(
        raw[0].starts_with(&format!(
            r#"{{"seq":0,"prev":"{GENESIS}","ts":"2026-11-01T10:00:00.123Z","event":"daemon_stop""#
        )),
        "{}",
        raw[0]
    );
    let second: serde_json::Value = serde_json::from_str(&raw[1]).unwrap();
    assert_eq!(second["prev"], line_hash(raw[0].as_bytes()));
    let c = read(dir.path()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.lines.len(), 3);
    assert_eq!(c.tail.next_seq, 3);
    // A second writer continues the chain.
    write_lines(dir.path(), 2);
    let c = read(dir.path()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.lines.iter().map(|l| l.line.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
}

#[test]
fn torn_last_line_is_skipped_and_the_next_writer_chains_around_it() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join(JOURNAL_FILE))
        .unwrap();
    f.write_all(br#"{"seq":3,"prev":"ab"#).unwrap();
    let c = read(dir.path()).unwrap();
    assert_eq!(c.lines.len(), 3, "nothing else lost");
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        (c.warnings[0].line, c.warnings[0].kind),
        (4, WarningKind::TornLastLine)
    );
    assert_eq!(c.tail.torn_line, Some(4));
    assert!(c.tail.needs_newline);
    write_lines(dir.path(), 1);
    let c = read(dir.path()).unwrap();
    assert_eq!(c.lines.len(), 4);
    assert_eq!(c.lines[3].number, 5);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(
        (c.warnings[0].line, c.warnings[0].kind),
        (4, WarningKind::Corrupt)
    );
    assert!(
        c.first_chain_break().is_none(),
        "the writer chained around the torn line"
    );
}

#[test]
fn corrupt_middle_line_is_reported_by_number_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 5);
    let mut raw = lines_of(dir.path());
    raw[1] = "{\"seq\":1,garbage".to_string();
    rewrite(dir.path(), &raw);
    let c = read(dir.path()).unwrap();
    assert_eq!(
        c.lines.iter().map(|l| l.number).collect::<Vec<_>>(),
        vec![1, 3, 4, 5]
    );
    assert_eq!(
        (c.warnings[0].line, c.warnings[0].kind),
        (2, WarningKind::Corrupt)
    );
    // Line 3 chained to the original line 2, which is gone: that is reported too.
    assert_eq!(
        (c.warnings[1].line, c.warnings[1].kind),
        (3, WarningKind::ChainBroken)
    );
    assert!(
        c.warnings[1].message.contains("line 2"),
        "{}",
        c.warnings[1].message
    );
    assert_eq!(c.warnings.len(), 2);
}

#[test]
fn edited_line_breaks_the_chain_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 5);
    let mut raw = lines_of(dir.path());
    raw[2] = raw[2].replace("\"o2\"", "\"forged\"");
    rewrite(dir.path(), &raw);
    let c = read(dir.path()).unwrap();
    assert_eq!(
        c.lines.len(),
        5,
        "the edited line is still valid JSON and read"
    );
    let w = c.first_chain_break().unwrap();
    assert_eq!(w.line, 4);
    assert!(w.message.contains("line 3"), "{}", w.message);
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn removed_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 4);
    let mut raw = lines_of(dir.path());
    raw.remove(1);
    rewrite(dir.path(), &raw);
    let c = read(dir.path()).unwrap();
    assert_eq!(c.first_chain_break().unwrap().line, 2);
    assert_eq!(c.lines.len(), 3);
}

#[test]
fn heartbeat_is_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_heartbeat(dir.path()).unwrap(), None);
    let hb = Heartbeat {
        run: 7,
        wall: crate::outage::testutil::wall(1.0),
        mono_ms: 1000,
        pid: 1,
        head: None,
    };
    write_heartbeat(dir.path(), &hb).unwrap();
    write_heartbeat(
        dir.path(),
        &Heartbeat {
            mono_ms: 2000,
            ..hb.clone()
        },
    )
    .unwrap();
    assert_eq!(read_heartbeat(dir.path()).unwrap().unwrap().mono_ms, 2000);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(HEARTBEAT_FILE)],
        "no temporary file left"
    );
}

/// The file `dir/journal.jsonl` as parsed on its own.
fn contents(dir: &Path) -> JournalContents {
    read(dir).unwrap()
}

#[test]
fn a_moved_or_removed_journal_is_reopened_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let mut w = JournalWriter::new(
        Box::new(FileSink::open(dir.path(), false).unwrap()),
        &ChainTail::default(),
        counters(),
    );
    let t = crate::outage::testutil::wall;
    w.append(t(0.0), &stop(0)).unwrap();
    w.append(t(1.0), &stop(1)).unwrap();
    let before = contents(dir.path());
    // logrotate's `mv`: the next append notices and reopens the path.
    std::fs::rename(&path, dir.path().join("journal.jsonl.1")).unwrap();
    w.append(t(2.0), &stop(2)).unwrap();
    let after = contents(dir.path());
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    let names: Vec<&str> = after.lines.iter().map(|l| l.line.entry.name()).collect();
    assert_eq!(names, ["journal_reopened", "daemon_stop"]);
    let first = &after.lines[0].line;
    assert_eq!(first.seq, 2);
    assert_eq!(
        first.prev, before.tail.last_hash,
        "chained to the moved file"
    );
    match &first.entry {
        Entry::JournalReopened(r) => {
            assert!(r.reason.contains("no longer exists"), "{}", r.reason);
            assert!(r.previous_bytes > 0);
        }
        other => panic!("{other:?}"),
    }
    // `rm`: noticed at the next check (the heartbeat's), the same way.
    let moved_tail = contents(dir.path()).tail;
    std::fs::remove_file(&path).unwrap();
    w.check_file(t(3.0)).unwrap();
    let again = contents(dir.path());
    assert_eq!(again.lines.len(), 1);
    assert_eq!(again.lines[0].line.seq, 4);
    assert_eq!(again.lines[0].line.prev, moved_tail.last_hash);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn a_symlinked_journal_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(JOURNAL_FILE)).unwrap();
    let err = FileSink::open(dir.path(), false).err().unwrap();
    assert!(err.to_string().contains("allow_symlinks"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // Explicitly allowed: followed.
    let mut w = JournalWriter::new(
        Box::new(FileSink::open(dir.path(), true).unwrap()),
        &ChainTail::default(),
        counters(),
    );
    w.append(crate::outage::testutil::wall(0.0), &stop(0))
        .unwrap();
    assert!(std::fs::read_to_string(&victim).unwrap().lines().count() == 2);
}

#[test]
fn a_cut_or_edited_tail_fails_the_anchor_check() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 4);
    let c = contents(dir.path());
    let head = ChainHead {
        seq: 3,
        hash: c.tail.last_hash.clone(),
    };
    assert!(check_anchors(&c, Some(&head)).is_empty());
    let mut raw = lines_of(dir.path());
    // Cut: the chain that is left is intact, the anchor is not.
    rewrite(dir.path(), &raw[..3]);
    let cut = contents(dir.path());
    assert!(cut.first_chain_break().is_none());
    let w = check_anchors(&cut, Some(&head));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::AnchorMissing);
    assert!(w[0].message.contains("ends before"), "{}", w[0].message);
    // Edited last line.
    raw[3] = raw[3].replace("\"o3\"", "\"o9\"");
    rewrite(dir.path(), &raw);
    let w = check_anchors(&contents(dir.path()), Some(&head));
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("edited"), "{}", w[0].message);
}
