#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use prometheus::IntCounter;

use super::record::DaemonStop;
use super::*;

/// Wall time `secs` after a fixed base (2026-11-01T10:00:00Z).
fn wall(secs: f64) -> jiff::Timestamp {
    let base: jiff::Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    base.checked_add(jiff::SignedDuration::from_secs_f64(secs))
        .unwrap()
}

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
        w.append(wall(i as f64 + 0.1234), &stop(i)).unwrap();
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
        wall: wall(1.0),
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
    let t = wall;
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
    w.append(wall(0.0), &stop(0)).unwrap();
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

/// Writes a fallback file in `dir` holding `events` chained after the journal's end.
fn dump_after_journal(dir: &Path, events: &[Entry]) -> std::path::PathBuf {
    let c = read(dir).unwrap();
    let head = c.lines.last().map(|l| ChainHead {
        seq: l.line.seq,
        hash: l.hash.clone(),
    });
    let events: Vec<(jiff::Timestamp, Entry)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (wall(100.0 + i as f64), e.clone()))
        .collect();
    fallback::dump(&[], &events, head, &[dir.to_path_buf()], None).unwrap()
}

fn writer_at(dir: &Path) -> (JournalWriter, JournalContents) {
    let c = read(dir).unwrap();
    let w = JournalWriter::new(
        Box::new(FileSink::open(dir, false).unwrap()),
        &c.continuation.file_tail,
        counters(),
    );
    (w, c)
}

#[test]
fn a_fallback_file_is_read_as_the_chains_continuation() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let path = dump_after_journal(dir.path(), &[stop(10), stop(11)]);
    let c = read(dir.path()).unwrap();
    assert_eq!(
        c.lines
            .iter()
            .map(|l| (l.number, l.line.seq))
            .collect::<Vec<_>>(),
        [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    );
    assert_eq!(c.tail.next_seq, 5);
    assert_eq!(c.total_lines, 5);
    assert_eq!(c.continuation.file_tail.next_seq, 3);
    assert_eq!(c.continuation.lines.len(), 2);
    assert_eq!(c.continuation.files, std::slice::from_ref(&path));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].kind, WarningKind::Continued);
    assert!(!c.warnings[0].kind.is_integrity_failure());
    assert!(
        c.warnings[0].message.contains("lines 4–5"),
        "{}",
        c.warnings[0].message
    );
}

#[test]
fn taking_back_appends_the_lines_once_and_removes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let path = dump_after_journal(dir.path(), &[stop(10), stop(11)]);
    let (mut w, c) = writer_at(dir.path());
    w.take_back(&c.continuation);
    assert_eq!(w.next_seq(), 5);
    assert!(!path.exists(), "removed once appended");
    w.append(wall(200.0), &stop(12)).unwrap();
    let after = read(dir.path()).unwrap();
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    assert_eq!(
        after.lines.iter().map(|l| l.line.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(
        lines_of(dir.path())[3..5],
        c.continuation
            .lines
            .iter()
            .map(|r| String::from_utf8(r.bytes.clone()).unwrap())
            .collect::<Vec<_>>()[..],
        "the saved bytes, not a re-serialisation"
    );
}

/// A crash after the append but before the removal: the file's lines are
/// on the chain already, so the next start removes it and appends nothing.
#[test]
fn a_fallback_file_already_appended_is_removed_not_appended_twice() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let path = dump_after_journal(dir.path(), &[stop(10), stop(11)]);
    let saved = std::fs::read(&path).unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join(JOURNAL_FILE))
        .unwrap();
    f.write_all(&saved).unwrap();
    let (mut w, c) = writer_at(dir.path());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.continuation.lines.is_empty());
    assert_eq!(c.continuation.files, std::slice::from_ref(&path));
    w.take_back(&c.continuation);
    assert!(!path.exists());
    assert_eq!(lines_of(dir.path()).len(), 5);
    assert_eq!(w.next_seq(), 5);
}

/// Two exits on a full disk in a row: the second file repeats the first's
/// lines and adds its own; both are one continuation, each line once.
#[test]
fn overlapping_fallback_files_continue_the_chain_once() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 2);
    let first = dump_after_journal(dir.path(), &[stop(10)]);
    let (mut w, c) = writer_at(dir.path());
    // The second run could not write either: it dumps the line taken back
    // and its own.
    let taken: Vec<RawLine> = c.continuation.lines.clone();
    let second = fallback::dump(
        &taken,
        &[(wall(300.0), stop(20))],
        w.head(),
        &[dir.path().to_path_buf()],
        None,
    )
    .unwrap();
    let c = read(dir.path()).unwrap();
    assert_eq!(
        c.lines.iter().map(|l| l.line.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(
        c.warnings.iter().all(|w| w.kind == WarningKind::Continued),
        "{:?}",
        c.warnings
    );
    let mut files = c.continuation.files.clone();
    files.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(files, expected);
    w.take_back(&c.continuation);
    assert!(!first.exists() && !second.exists());
    let after = read(dir.path()).unwrap();
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    assert_eq!(after.lines.len(), 4);
}

/// A file that does not continue the chain (another chain's, or a fork) is
/// neither read nor removed; an empty copy in the data directory (a dump
/// the full disk cut short) is removed; a copy cut mid-line keeps its
/// complete lines.
#[test]
fn unrelated_empty_and_cut_fallback_files() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 3);
    let foreign = dir
        .path()
        .join(format!("{}1.2{}", fallback::PREFIX, fallback::SUFFIX));
    // Another chain that shares our first line, then forks.
    let other = tempfile::tempdir().unwrap();
    write_lines(other.path(), 1);
    let forked = dump_after_journal(other.path(), &[stop(7)]);
    std::fs::copy(&forked, &foreign).unwrap();
    let empty = dir
        .path()
        .join(format!("{}1.1{}", fallback::PREFIX, fallback::SUFFIX));
    std::fs::write(&empty, b"").unwrap();
    let cut = dump_after_journal(dir.path(), &[stop(10), stop(11)]);
    let mut bytes = std::fs::read(&cut).unwrap();
    bytes.truncate(bytes.len() - 20);
    std::fs::write(&cut, &bytes).unwrap();
    let (mut w, c) = writer_at(dir.path());
    assert_eq!(c.lines.len(), 4, "the cut file's complete line");
    assert!(!c.continuation.files.contains(&foreign));
    w.take_back(&c.continuation);
    assert!(foreign.exists(), "not ours: left alone");
    assert!(!empty.exists() && !cut.exists());
    let after = read(dir.path()).unwrap();
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    assert_eq!(after.lines.len(), 4);
}

/// A `path` snapshot line of a trace that stopped after hop 2 (its test
/// moved here with the tracer's move out of `outage`: the line is the journal's).
fn path_event() -> crate::journal::PathEvent {
    crate::journal::PathEvent {
        id: None,
        group: "isp".into(),
        when: crate::journal::When::Baseline,
        target: "10.0.0.9".into(),
        at: jiff::Timestamp::UNIX_EPOCH,
        dest: Some("10.0.0.9".parse().unwrap()),
        mode: Some("dgram".into()),
        protocol: crate::config::TraceProtocol::Icmp,
        reached: false,
        partial: true,
        duration_ms: 1.0,
        packets: 3,
        last_hop: Some(crate::journal::LastHop {
            ttl: 2,
            addr: "10.0.0.2".parse().unwrap(),
        }),
        hops: Vec::new(),
        error: None,
        reprobe: None,
    }
}

#[test]
fn the_journal_line_round_trips() {
    let e = path_event();
    let line = serde_json::to_string(&Entry::Path(e.clone())).unwrap();
    assert!(line.contains(r#""event":"path""#), "{line}");
    assert!(line.contains(r#""when":"baseline""#), "{line}");
    let back: Entry = serde_json::from_str(&line).unwrap();
    assert_eq!(back, Entry::Path(e.clone()));
    assert!(line.contains(r#""protocol":"icmp""#), "{line}");

    // A line from before UDP traces (no `protocol`) reads as ICMP.
    let old = line.replace(r#""protocol":"icmp","#, "");
    assert!(!old.contains("protocol"), "{old}");
    let back: Entry = serde_json::from_str(&old).unwrap();
    assert_eq!(back, Entry::Path(e.clone()));
    let udp = crate::journal::PathEvent {
        protocol: crate::config::TraceProtocol::Udp,
        ..e
    };
    let line = serde_json::to_string(&Entry::Path(udp)).unwrap();
    assert!(line.contains(r#""protocol":"udp""#), "{line}");
}

#[test]
fn the_last_seq_is_read_from_the_end_past_a_torn_tail_and_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    assert_eq!(last_seq(&path), None, "no journal");
    std::fs::write(&path, "").unwrap();
    assert_eq!(last_seq(&path), None, "an empty journal");
    write_lines(dir.path(), 500);
    assert_eq!(last_seq(&path), Some(499));
    // A torn tail is not a line.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{\"seq\":500,\"prev\":\"ab").unwrap();
    assert_eq!(last_seq(&path), Some(499));
    // A last line longer than the first chunk read from the end, then one
    // that does not parse: the chunk grows until a line that does.
    let long = format!("{{\"x\":\"{}\"}}\n", "y".repeat(100_000));
    f.write_all(format!("\n{long}").as_bytes()).unwrap();
    assert_eq!(last_seq(&path), Some(499));
}

/// The peer records sit beside the envelope's `seq`/`prev`/`ts`: written
/// and read back through the real writer and reader, with the chain intact.
#[test]
fn peer_records_round_trip_through_the_writer_and_keep_the_chain() {
    use super::record::{
        CorroboratedTarget, Corroboration, PeerVerdict, PeriodKind, Receipt, TargetVerdict,
        WitnessReceived, Witnessed,
    };
    let dir = tempfile::tempdir().unwrap();
    let head = ChainHead {
        seq: 41,
        hash: "ab".repeat(32),
    };
    let events = vec![
        Entry::Witness(WitnessReceived {
            peer: "home".into(),
            site: "almaty-home".into(),
            head: head.clone(),
            at: wall(1.0),
        }),
        Entry::Witnessed(Witnessed {
            peer: "abroad".into(),
            head,
            at: wall(2.0),
            receipt: Receipt {
                site: "vps".into(),
                seq: 7,
                hash: "cd".repeat(32),
            },
        }),
        Entry::Corroboration(Corroboration {
            period: "o-1".into(),
            kind: PeriodKind::Outage,
            peer: "abroad".into(),
            start: wall(0.0),
            end: wall(60.0),
            targets: vec![CorroboratedTarget {
                peer: "abroad".into(),
                target: "intl-web".into(),
                their_target: Some("web".into()),
                probes: 60,
                failures: 0,
                loss_ratio: Some(0.0),
                verdict: TargetVerdict::Up,
            }],
            verdict: PeerVerdict::ReachableElsewhere,
            summary: PeerVerdict::ReachableElsewhere.sentence("abroad"),
        }),
        stop(0),
    ];
    let tail = read(dir.path()).unwrap().tail;
    let mut w = JournalWriter::new(
        Box::new(FileSink::open(dir.path(), false).unwrap()),
        &tail,
        counters(),
    );
    for (i, e) in events.iter().enumerate() {
        w.append(wall(10.0 + i as f64), e).unwrap();
    }
    let text = lines_of(dir.path()).join("\n");
    assert!(text.contains(r#""head":{"seq":41,"hash":"#), "{text}");
    let c = read(dir.path()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let read_back: Vec<Entry> = c.lines.iter().map(|l| l.line.entry.clone()).collect();
    assert_eq!(read_back, events);
    assert_eq!(c.lines.last().unwrap().line.seq, 3);
}

/// `push_acked` hands back the seq and hash of that very line once it is
/// written, while plain pushes around it go on as before.
#[tokio::test]
async fn an_acked_push_is_told_the_position_of_its_own_line() {
    use super::record::WitnessReceived;
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), 2);
    let (writer, _) = writer_at(dir.path());
    let queue = JournalQueue::spawn(
        writer,
        Vec::new(),
        QueueOptions {
            data_dir: dir.path().to_path_buf(),
            run: 0,
            anchor: Anchor::now(),
            heartbeat_interval: std::time::Duration::from_secs(3600),
            stall_bound: STALL_BOUND,
        },
    )
    .unwrap();
    let pusher = queue.pusher();
    pusher.push(wall(10.0), stop(10)).await;
    let witness = Entry::Witness(WitnessReceived {
        peer: "home".into(),
        site: "almaty-home".into(),
        head: ChainHead {
            seq: 9,
            hash: "0".repeat(64),
        },
        at: wall(1.0),
    });
    let ack = pusher.push_acked(wall(11.0), witness.clone()).await;
    pusher.push(wall(12.0), stop(12)).await;
    let head = tokio::time::timeout(std::time::Duration::from_secs(10), ack)
        .await
        .unwrap()
        .unwrap();
    assert!(
        queue
            .stop(stop(13), std::time::Duration::from_secs(2))
            .await
    );
    let lines = lines_of(dir.path());
    let c = read(dir.path()).unwrap();
    let own = c.lines.iter().find(|l| l.line.entry == witness).unwrap();
    assert_eq!(head.seq, own.line.seq);
    assert_eq!(head.seq, 3, "after 2 lines and one push: {lines:?}");
    assert_eq!(head.hash, line_hash(lines[3].as_bytes()));
    assert_eq!(head.hash, own.hash);
    // The line after it chains on that hash.
    assert_eq!(c.lines[4].line.prev, head.hash);
}
