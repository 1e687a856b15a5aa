//! Service-level tests: recovery across restarts (clean and `kill -9`) and disk errors.
#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::testutil::{chain, config};
use super::*;
use crate::config::DownWhen;
use crate::journal::{self, Entry, FileSink, JournalSink, WarningKind, journal_path};

fn clock() -> Option<ClockSync> {
    Some(ClockSync {
        synchronized: Some(true),
        check: "test".into(),
    })
}

async fn start(
    cfg: &Config,
    sink: Option<Box<dyn JournalSink>>,
) -> (OutageService, OutageHandle, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let (s, h) = OutageService::start_with(
        cfg,
        &registry,
        StartOptions {
            heartbeat_interval: Duration::from_millis(50),
            sink,
            clock: clock(),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    (s, h, registry)
}

/// Feeds `n` rounds of one probe per target, `ok(target)` deciding the outcome,
/// with real wall time and monotonic offsets 100 ms apart.
async fn feed(s: &mut OutageService, targets: usize, n: usize, ok: impl Fn(usize) -> bool) {
    for _ in 0..n {
        for t in 0..targets {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mono = Instant::now().saturating_duration_since(s.epoch());
            s.observe_at(t, Timestamp::now(), mono, ok(t)).await;
        }
    }
}

fn entries(dir: &Path) -> Vec<Entry> {
    let c = journal::read(dir).unwrap();
    assert!(c.first_chain_break().is_none(), "{:?}", c.warnings);
    c.lines.into_iter().map(|l| l.line.entry).collect()
}

fn gauge(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    registry
        .gather()
        .into_iter()
        .find(|f| f.name() == name)
        .and_then(|f| {
            f.get_metric()
                .iter()
                .find(|m| {
                    labels.iter().all(|(k, v)| {
                        m.get_label()
                            .iter()
                            .any(|l| l.name() == *k && l.value() == *v)
                    })
                })
                .map(|m| match f.get_field_type() {
                    prometheus::proto::MetricType::GAUGE => m.get_gauge().get_value(),
                    _ => m.get_counter().get_value(),
                })
        })
}

/// Polls `cond` every 10 ms for up to 3 s (the writer thread works on its own time).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 3 s: {what}");
}

/// Waits until the writer thread has everything queued on disk (a kill -9
/// before that loses what is in memory, as it would in a real process).
async fn settle(registry: &prometheus::Registry) {
    for _ in 0..200 {
        if gauge(registry, journal::metrics::JOURNAL_BACKLOG_EVENTS, &[]) == Some(0.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the journal writer did not catch up within 2 s");
}

#[tokio::test]
async fn outage_is_journaled_logged_counted_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("missing/nested");
    let cfg = chain(&data);
    let (mut s, h, reg) = start(&cfg, None).await;
    assert!(data.join("journal.jsonl").exists(), "data dir created");
    feed(&mut s, 3, 3, |_| true).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    let open = h.outages(None, None);
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].group.as_str(), open[0].cause.as_str(), open[0].end),
        ("internet", "internet", None)
    );
    assert_eq!(
        gauge(
            &reg,
            metrics::OUTAGE_ACTIVE,
            &[("group", "internet"), ("cause", "internet")]
        ),
        Some(1.0)
    );
    assert_eq!(
        gauge(&reg, metrics::GROUP_UP, &[("group", "internet")]),
        Some(0.0)
    );
    assert_eq!(
        gauge(&reg, metrics::GROUP_UP, &[("group", "lan")]),
        Some(1.0)
    );
    assert_eq!(
        gauge(
            &reg,
            metrics::TARGET_UP,
            &[("target", "google"), ("kind", "tcp")]
        ),
        Some(0.0)
    );
    feed(&mut s, 3, 2, |_| true).await;
    let all = h.outages(None, None);
    assert_eq!(all.len(), 1);
    assert!(all[0].end.is_some());
    assert!(all[0].duration_seconds > 0.0);
    assert_eq!(
        gauge(
            &reg,
            metrics::OUTAGE_ACTIVE,
            &[("group", "internet"), ("cause", "internet")]
        ),
        Some(0.0)
    );
    assert_eq!(
        gauge(
            &reg,
            metrics::OUTAGES_TOTAL,
            &[("group", "internet"), ("cause", "internet")]
        ),
        Some(1.0)
    );
    let downtime = gauge(
        &reg,
        metrics::DOWNTIME_SECONDS_TOTAL,
        &[("group", "internet")],
    )
    .unwrap();
    assert!(
        (downtime - all[0].duration_seconds).abs() < 1e-6,
        "{downtime} vs {}",
        all[0].duration_seconds
    );
    // The API shape.
    let v = serde_json::to_value(&all[0]).unwrap();
    for k in [
        "id",
        "group",
        "cause",
        "start",
        "end",
        "duration_seconds",
        "targets",
        "gaps",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert!(
        h.outages(
            Some(
                Timestamp::now()
                    .checked_add(Duration::from_secs(60))
                    .unwrap()
            ),
            None
        )
        .is_empty()
    );
    s.shutdown(Duration::from_secs(2)).await;
    let names: Vec<&str> = entries(&data)
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .leak()
        .to_vec();
    assert_eq!(
        names,
        ["daemon_start", "outage_start", "outage_end", "daemon_stop"]
    );
    let (recs, warnings) = listing::read_outages(&data, None).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(recs, all);
    assert!(listing::render_table(&recs).contains("internet"));
    assert!(journal::verify(&data).unwrap().ok());
}

#[tokio::test]
async fn kill_9_then_restart_still_down_continues_the_same_outage_with_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, _h, reg) = start(&cfg, None).await;
    feed(&mut s, 3, 2, |_| true).await;
    feed(&mut s, 3, 3, |t| t == 0).await; // isp down
    settle(&reg).await;
    tokio::time::sleep(Duration::from_millis(120)).await; // a heartbeat or two
    let hb = journal::read_heartbeat(dir.path()).unwrap().unwrap();
    s.crash().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (mut s, h, _) = start(&cfg, None).await;
    let before = h.outages(None, None);
    assert_eq!(
        before.len(),
        2,
        "both open outages are shown while undecided"
    );
    assert!(before.iter().all(|o| o.end.is_none() && o.gaps.len() == 1));
    feed(&mut s, 3, 3, |t| t == 0).await;
    let after = h.outages(None, None);
    assert_eq!(after.len(), 2, "the same outages, not new ones: {after:?}");
    for o in &after {
        assert_eq!(o.cause, "isp");
        assert_eq!(o.end, None);
        assert_eq!(o.gaps.len(), 1);
        assert_eq!(o.gaps[0].from, hb.wall.max(o.gaps[0].from));
        assert!(o.gaps[0].to > o.gaps[0].from);
    }
    feed(&mut s, 3, 2, |_| true).await;
    let done = h.outages(None, None);
    assert_eq!(done.len(), 2);
    assert!(
        done.iter()
            .all(|o| o.end_observed == Some(true) && o.gaps.len() == 1)
    );
    s.shutdown(Duration::from_secs(2)).await;
    let names: Vec<&str> = entries(dir.path())
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .leak()
        .to_vec();
    assert_eq!(
        names,
        [
            "daemon_start",
            "outage_start",
            "outage_start",
            "daemon_start",
            "outage_resume",
            "outage_resume",
            "outage_end",
            "outage_end",
            "daemon_stop"
        ]
    );
    let (recs, _) = listing::read_outages(dir.path(), None).unwrap();
    assert_eq!(recs, done);
}

#[tokio::test]
async fn restart_with_group_up_closes_the_outage_in_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, _, reg) = start(&cfg, None).await;
    feed(&mut s, 3, 2, |_| true).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    settle(&reg).await;
    s.crash().await;
    let (mut s, h, _) = start(&cfg, None).await;
    feed(&mut s, 3, 2, |_| true).await;
    let recs = h.outages(None, None);
    assert_eq!(recs.len(), 1);
    let o = &recs[0];
    assert_eq!(o.end_observed, Some(false));
    assert_eq!(o.gaps.len(), 1);
    assert_eq!(o.end, Some(o.gaps[0].from), "end = last moment seen down");
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn clean_stop_leaves_the_outage_open_and_the_next_start_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, _, _) = start(&cfg, None).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    let id = s.handle().outages(None, None)[0].id.clone();
    s.shutdown(Duration::from_secs(2)).await;
    match entries(dir.path()).last().unwrap() {
        Entry::DaemonStop(d) => assert_eq!(d.open_outages, vec![id.clone()]),
        other => panic!("{other:?}"),
    }
    let (recs, _) = listing::read_outages(dir.path(), None).unwrap();
    assert_eq!(recs[0].end, None);
    assert!(recs[0].gaps.is_empty());
    assert!(
        recs[0].observed_until.is_some(),
        "nobody is watching: unobserved after its last sign of life"
    );
    let (mut s, h, _) = start(&cfg, None).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    let recs = h.outages(None, None);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].id, id);
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn torn_tail_after_a_crash_is_named_in_the_next_daemon_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (s, _, _) = start(&cfg, None).await;
    s.crash().await;
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("journal.jsonl"))
        .unwrap()
        .write_all(b"{\"seq\":1,\"pr")
        .unwrap();
    let (s, _, _) = start(&cfg, None).await;
    s.shutdown(Duration::from_secs(2)).await;
    let rep = journal::verify(dir.path()).unwrap();
    assert!(rep.ok(), "{}", rep.render());
    assert_eq!(rep.problems.len(), 1);
    assert_eq!(
        (rep.problems[0].line, rep.problems[0].kind),
        (2, WarningKind::TornLine)
    );
}

/// A sink that fails while `fail` is set, like a full disk.
struct Flaky {
    inner: FileSink,
    fail: Arc<AtomicBool>,
}

impl JournalSink for Flaky {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("No space left on device (simulated)"));
        }
        self.inner.append(bytes)
    }
}

#[tokio::test]
async fn disk_errors_queue_events_and_retry_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("g", None, DownWhen::All)], &[("a", "g")], dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let sink = Flaky {
        inner: FileSink::open(dir.path(), false).unwrap(),
        fail: fail.clone(),
    };
    let (mut s, h, reg) = start(&cfg, Some(Box::new(sink))).await;
    fail.store(true, Ordering::SeqCst);
    feed(&mut s, 1, 3, |_| false).await;
    feed(&mut s, 1, 2, |_| true).await;
    // Monitoring went on: the outage was detected, counted and served.
    assert_eq!(h.outages(None, None).len(), 1);
    assert_eq!(
        gauge(&reg, metrics::OUTAGES_TOTAL, &[("group", "g")]),
        Some(1.0)
    );
    // The writer keeps retrying (every heartbeat interval, 50 ms here).
    eventually("a retry failed too", || {
        gauge(&reg, metrics::JOURNAL_ERRORS_TOTAL, &[]).unwrap() >= 2.0
    })
    .await;
    assert_eq!(
        gauge(&reg, journal::metrics::JOURNAL_BACKLOG_EVENTS, &[]),
        Some(2.0),
        "outage_start and outage_end wait in the queue"
    );
    assert!(gauge(&reg, journal::metrics::JOURNAL_BACKLOG_OLDEST_SECONDS, &[]).unwrap() > 0.0);
    assert_eq!(entries(dir.path()).len(), 1, "only daemon_start is on disk");
    fail.store(false, Ordering::SeqCst);
    eventually("the retry succeeded", || {
        gauge(&reg, journal::metrics::JOURNAL_BACKLOG_EVENTS, &[]) == Some(0.0)
    })
    .await;
    let names: Vec<&str> = entries(dir.path())
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .leak()
        .to_vec();
    assert_eq!(names, ["daemon_start", "outage_start", "outage_end"]);
    assert_eq!(gauge(&reg, metrics::JOURNAL_WRITES_TOTAL, &[]), Some(3.0));
    assert_eq!(
        gauge(&reg, journal::metrics::JOURNAL_BACKLOG_EVENTS, &[]),
        Some(0.0)
    );
    assert_eq!(
        gauge(&reg, journal::metrics::JOURNAL_EVENTS_TOTAL, &[]),
        Some(3.0)
    );
    s.shutdown(Duration::from_secs(2)).await;
    assert!(journal::verify(dir.path()).unwrap().ok());
}

#[tokio::test]
async fn unusable_data_dir_fails_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cfg = chain(&file);
    let err = OutageService::start_with(
        &cfg,
        &prometheus::Registry::new(),
        StartOptions {
            clock: clock(),
            ..StartOptions::default()
        },
    )
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("failed to create data directory") && msg.contains("not-a-dir"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_second_service_on_the_same_data_dir_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (s, _, _) = start(&cfg, None).await;
    let journal_before = std::fs::read(journal_path(dir.path())).unwrap();
    let err = OutageService::start_with(
        &cfg,
        &prometheus::Registry::new(),
        StartOptions {
            clock: clock(),
            ..StartOptions::default()
        },
    )
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(journal_path(dir.path())).unwrap(),
        journal_before
    );
    s.shutdown(Duration::from_secs(2)).await;
    // Released at shutdown.
    let (s, _, _) = start(&cfg, None).await;
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_cut_tail_fails_verify_through_the_heartbeat_and_the_next_daemon_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, _, _) = start(&cfg, None).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    s.shutdown(Duration::from_secs(2)).await;
    assert!(journal::verify(dir.path()).unwrap().ok());
    let path = journal_path(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&path, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    let rep = journal::verify(dir.path()).unwrap();
    assert!(!rep.ok(), "{}", rep.render());
    assert!(rep.render().contains("ends before"), "{}", rep.render());
    // A restart carries the heartbeat's anchor into its daemon_start: even
    // with the heartbeat gone afterwards, the cut stays visible.
    let (s, _, _) = start(&cfg, None).await;
    s.shutdown(Duration::from_secs(2)).await;
    std::fs::remove_file(dir.path().join(journal::HEARTBEAT_FILE)).unwrap();
    let rep = journal::verify(dir.path()).unwrap();
    assert!(!rep.ok(), "{}", rep.render());
    assert!(
        rep.problems
            .iter()
            .any(|p| p.kind == WarningKind::AnchorMissing && p.message.contains("daemon_start")),
        "{}",
        rep.render()
    );
}

#[tokio::test]
async fn an_open_outage_read_offline_does_not_grow_with_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, _, reg) = start(&cfg, None).await;
    feed(&mut s, 3, 3, |t| t != 2).await;
    settle(&reg).await;
    s.crash().await;
    let (first, _) = listing::read_outages(dir.path(), None).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (second, _) = listing::read_outages(dir.path(), None).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first, second, "the same record at two moments");
    assert!(first[0].end.is_none() && first[0].observed_until.is_some());
}

#[tokio::test]
async fn unwritten_events_at_stop_are_saved_to_a_fallback_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("g", None, DownWhen::All)], &[("a", "g")], dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let sink = Flaky {
        inner: FileSink::open(dir.path(), false).unwrap(),
        fail: fail.clone(),
    };
    let (mut s, h, _) = start(&cfg, Some(Box::new(sink))).await;
    fail.store(true, Ordering::SeqCst);
    feed(&mut s, 1, 3, |_| false).await;
    let id = h.outages(None, None)[0].id.clone();
    let begun = Instant::now();
    s.shutdown(Duration::from_millis(600)).await;
    assert!(
        begun.elapsed() < Duration::from_millis(1500),
        "bounded by the budget"
    );
    // The writer thread saves into the data directory when it notices the
    // stop within the budget's last 125 ms; on a loaded machine it may not,
    // and the service then dumps into the temporary directory itself (the
    // "writer stuck" path). Either way the lines must be saved, once.
    let with_id = |d: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("journal.unwritten."))
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&id)))
            .collect()
    };
    let mut saved = with_id(dir.path());
    saved.extend(with_id(&std::env::temp_dir()));
    assert_eq!(saved.len(), 1, "{saved:?}");
    let text = std::fs::read_to_string(&saved[0]).unwrap();
    if !saved[0].starts_with(dir.path()) {
        let _ = std::fs::remove_file(&saved[0]);
    }
    let names: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(names, ["\"outage_start\"", "\"daemon_stop\""]);
    assert!(text.contains(&id));
    // Chained where the journal ends: appending them by hand keeps it valid.
    let mut journal = std::fs::read(journal_path(dir.path())).unwrap();
    journal.extend_from_slice(text.as_bytes());
    std::fs::write(journal_path(dir.path()), journal).unwrap();
    assert!(journal::read(dir.path()).unwrap().warnings.is_empty());
}

/// Fallback files (`journal.unwritten.*`) in `dir`.
fn fallback_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("journal.unwritten."))
        .collect()
}

/// An exit on a full disk leaves one outage's end and another's start in a
/// fallback file; the next start takes them back before its `daemon_start`:
/// the first outage keeps its real end, the second is resumed, no `seq` is
/// used twice and the chain verifies.
#[tokio::test]
async fn a_fallback_file_is_taken_back_at_the_next_start_without_forking_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("g", None, DownWhen::All)], &[("a", "g")], dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let sink = Flaky {
        inner: FileSink::open(dir.path(), false).unwrap(),
        fail: fail.clone(),
    };
    let (mut s, h, _) = start(&cfg, Some(Box::new(sink))).await;
    feed(&mut s, 1, 3, |_| false).await;
    eventually("outage_start on disk", || entries(dir.path()).len() == 2).await;
    fail.store(true, Ordering::SeqCst);
    feed(&mut s, 1, 2, |_| true).await;
    feed(&mut s, 1, 3, |_| false).await;
    let shown = h.outages(None, None);
    assert_eq!(shown.len(), 2);
    assert!(shown[0].end.is_some() && shown[1].end.is_none());
    s.shutdown(Duration::from_millis(600)).await;
    let saved = fallback_files(dir.path());
    assert_eq!(saved.len(), 1, "{saved:?}");

    // Read offline, journal and fallback file are one chain.
    let rep = journal::verify(dir.path()).unwrap();
    assert!(rep.ok(), "{}", rep.render());
    assert!(
        rep.problems
            .iter()
            .any(|p| p.kind == WarningKind::Continued),
        "{}",
        rep.render()
    );
    let (offline, _) = listing::read_outages(dir.path(), None).unwrap();
    assert_eq!(offline.len(), 2);
    assert_eq!(offline[0].end, shown[0].end);
    assert_eq!(offline[0].end_observed, Some(true));

    let (mut s, h, _) = start(&cfg, None).await;
    assert!(
        fallback_files(dir.path()).is_empty(),
        "taken back, then removed"
    );
    let c = journal::read(dir.path()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let seqs: Vec<u64> = c.lines.iter().map(|l| l.line.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let names: Vec<&str> = c.lines.iter().map(|l| l.line.entry.name()).collect();
    assert_eq!(
        names,
        [
            "daemon_start",
            "outage_start",
            "outage_end",
            "outage_start",
            "daemon_stop",
            "daemon_start"
        ]
    );
    let recs = h.outages(None, None);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(
        recs[0].end, shown[0].end,
        "its real end, not an unobserved one"
    );
    assert_eq!(recs[0].end_observed, Some(true));
    assert_eq!(recs[1].id, shown[1].id);
    assert!(recs[1].end.is_none(), "still open: resumed, not closed");
    feed(&mut s, 1, 3, |_| false).await;
    feed(&mut s, 1, 2, |_| true).await;
    let recs = h.outages(None, None);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[1].end_observed, Some(true));
    s.shutdown(Duration::from_secs(2)).await;
    assert!(journal::verify(dir.path()).unwrap().ok());
}

/// The disk is still full at the next start: the lines taken back wait in
/// front of the queue, and a second exit saves them again with its own; the
/// start after that appends both files' lines once.
#[tokio::test]
async fn lines_taken_back_on_a_still_full_disk_are_saved_again_and_appended_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("g", None, DownWhen::All)], &[("a", "g")], dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let sink = |fail: &Arc<AtomicBool>| {
        Box::new(Flaky {
            inner: FileSink::open(dir.path(), false).unwrap(),
            fail: fail.clone(),
        })
    };
    let (mut s, h, _) = start(&cfg, Some(sink(&fail))).await;
    fail.store(true, Ordering::SeqCst);
    feed(&mut s, 1, 3, |_| false).await;
    let id = h.outages(None, None)[0].id.clone();
    s.shutdown(Duration::from_millis(600)).await;
    assert_eq!(fallback_files(dir.path()).len(), 1);

    let (s, h, _) = start(&cfg, Some(sink(&fail))).await;
    assert_eq!(
        h.outages(None, None)[0].id,
        id,
        "recovered from the fallback file"
    );
    s.shutdown(Duration::from_millis(600)).await;
    assert_eq!(fallback_files(dir.path()).len(), 2);
    assert!(journal::verify(dir.path()).unwrap().ok());

    fail.store(false, Ordering::SeqCst);
    let (s, h, _) = start(&cfg, None).await;
    assert!(fallback_files(dir.path()).is_empty());
    assert_eq!(h.outages(None, None).len(), 1);
    s.shutdown(Duration::from_secs(2)).await;
    let c = journal::read(dir.path()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let names: Vec<&str> = c.lines.iter().map(|l| l.line.entry.name()).collect();
    assert_eq!(
        names,
        [
            "daemon_start",
            "outage_start",
            "daemon_stop",
            "daemon_start",
            "daemon_stop",
            "daemon_start",
            "daemon_stop"
        ]
    );
}

/// A sink whose writes block while `stall` is set, like a frozen filesystem.
struct Stalling {
    inner: FileSink,
    stall: Arc<AtomicBool>,
}

impl JournalSink for Stalling {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        while self.stall.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.inner.append(bytes)
    }
}

#[tokio::test]
async fn a_stalled_writer_blocks_nothing_and_is_reported_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("g", None, DownWhen::All)], &[("a", "g")], dir.path());
    let stall = Arc::new(AtomicBool::new(false));
    let sink = Stalling {
        inner: FileSink::open(dir.path(), false).unwrap(),
        stall: stall.clone(),
    };
    let registry = prometheus::Registry::new();
    let (mut s, h) = OutageService::start_with(
        &cfg,
        &registry,
        StartOptions {
            heartbeat_interval: Duration::from_millis(50),
            sink: Some(Box::new(sink)),
            clock: clock(),
            stall_bound: Duration::from_millis(200),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    stall.store(true, Ordering::SeqCst);
    let begun = Instant::now();
    feed(&mut s, 1, 3, |_| false).await;
    assert!(begun.elapsed() < Duration::from_secs(1), "nobody waited");
    assert_eq!(h.outages(None, None).len(), 1, "shown before it is durable");
    assert!(h.journal_health().is_ok());
    eventually("unhealthy after the bound", || h.journal_health().is_err()).await;
    assert!(begun.elapsed() >= Duration::from_millis(200));
    let why = h.journal_health().unwrap_err();
    assert!(why.contains("stalled"), "{why}");
    assert_eq!(
        gauge(&registry, journal::metrics::JOURNAL_BACKLOG_EVENTS, &[]),
        Some(1.0)
    );
    stall.store(false, Ordering::SeqCst);
    eventually("written after the stall", || entries(dir.path()).len() == 2).await;
    eventually("healthy again", || h.journal_health().is_ok()).await;
    s.shutdown(Duration::from_secs(2)).await;
}

/// A result of target 0 started `ago` before now.
fn result(s: &OutageService, ago: Duration, outcome: crate::probe::Outcome) -> ProbeResult {
    let mono = Instant::now().checked_sub(ago).unwrap().max(s.epoch());
    ProbeResult {
        target: 0,
        at: Timestamp::now(),
        mono,
        lateness: Duration::ZERO,
        observation: crate::probe::Observation::new(outcome),
    }
}

#[tokio::test]
async fn a_stall_is_journaled_once_and_timeouts_it_cut_are_voided() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &[("internet", None, DownWhen::All)],
        &[("a", "internet")],
        dir.path(),
    );
    let (mut s, _h, registry) = start(&cfg, None).await;
    // The tick is stopped and the threshold lowered, so the test's own sleep
    // is the stall.
    s.stall_tick.abort();
    *lock(&s.stalls) = StallWatch::new(
        Duration::from_millis(100),
        s.anchor.elapsed(),
        Timestamp::now(),
        None,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Started 250 ms ago, its 500 ms deadline fell in the stall: voided.
    let timeout = crate::probe::Outcome::Timeout { phase: None };
    s.observe(&result(&s, Duration::from_millis(250), timeout.clone()))
        .await;
    // A success across the stall is evidence; a timeout after it is too.
    let ok = crate::probe::Outcome::Success {
        duration: Duration::from_millis(1),
        phases: Default::default(),
    };
    s.observe(&result(&s, Duration::from_millis(200), ok)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.observe(&result(&s, Duration::ZERO, timeout)).await;
    assert_eq!(
        gauge(&registry, metrics::PROBES_VOIDED_TOTAL, &[]),
        Some(1.0)
    );
    assert_eq!(
        gauge(
            &registry,
            metrics::STALLS_TOTAL,
            &[("cause", "process_stopped")]
        ),
        Some(1.0)
    );
    let stalled = gauge(&registry, metrics::STALLED_SECONDS_TOTAL, &[]).unwrap();
    assert!((0.25..1.0).contains(&stalled), "{stalled}");
    s.shutdown(Duration::from_secs(2)).await;
    let stalls: Vec<_> = entries(dir.path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::Stall(st) => Some(st),
            _ => None,
        })
        .collect();
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!(stalls[0].cause, journal::StallCause::ProcessStopped);
    let history = Ledger::load(dir.path()).unwrap();
    assert_eq!(history.stalls, stalls);
}

/// A TCP probe sent just before SIGSTOP can complete in the kernel while the
/// process is stopped: its success is seen after the resume with a start
/// before the stall. The recovery it shows happened at an unknown moment of
/// the stall, so the outage's end is unobserved and bounded by the stall.
#[tokio::test]
async fn a_success_that_crossed_a_stall_ends_an_outage_unobserved_within_the_stall() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &[("internet", None, DownWhen::All)],
        &[("a", "internet")],
        dir.path(),
    );
    let (mut s, _h, _registry) = start(&cfg, None).await;
    s.stall_tick.abort();
    feed(&mut s, 1, 3, |_| false).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (sent_mono, sent_wall) = (Instant::now(), Timestamp::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    *lock(&s.stalls) = StallWatch::new(
        Duration::from_millis(100),
        s.anchor.elapsed(),
        Timestamp::now(),
        None,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = |duration| crate::probe::Outcome::Success {
        duration,
        phases: Default::default(),
    };
    let crossed = ProbeResult {
        target: 0,
        at: sent_wall,
        mono: sent_mono,
        lateness: Duration::ZERO,
        observation: crate::probe::Observation::new(ok(sent_mono.elapsed())),
    };
    s.observe(&crossed).await;
    s.observe(&result(&s, Duration::ZERO, ok(Duration::from_millis(1))))
        .await;
    s.shutdown(Duration::from_secs(2)).await;
    let all = entries(dir.path());
    let stall = all
        .iter()
        .find_map(|e| match e {
            Entry::Stall(st) => Some(st.clone()),
            _ => None,
        })
        .unwrap();
    let end = all
        .iter()
        .find_map(|e| match e {
            Entry::OutageEnd(o) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert!(!end.end_observed, "nobody saw it end: {end:?}");
    // (The detector keeps wall times to the millisecond and derives the
    // end from the monotonic clock: 1 ms either way is rounding.)
    let ms = jiff::SignedDuration::from_millis(2);
    assert!(
        stall.from - ms <= end.end && end.end <= stall.to + ms,
        "end {} outside the stall {}..{}",
        end.end,
        stall.from,
        stall.to
    );
    assert!(sent_wall < stall.from);
}

/// Under random loss a target's own `fail_after` streak is no outage of its
/// group (the group needs a longer streak, [`detector::Detector`]'s
/// loss-adjusted need): such a target keeps feeding its group's slow-period
/// window, every probe of it, so the window's loss is the link's.
#[tokio::test]
async fn a_target_down_by_its_own_streak_but_not_counted_down_keeps_feeding_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &[("isp", None, DownWhen::All)],
        &[("isp-dns", "isp")],
        dir.path(),
    );
    let (mut s, _h, reg) = start(&cfg, None).await;
    // Random loss (about 45 %) with no streak of 3 first (the group's need
    // rises to 7), then a streak of 3 (the target is down, its group is
    // not), then more of the same loss.
    let pattern = "SFSSFSFFSSFSFSSFFSFSSFSFSSFSF".to_string() + "FFF" + "SSFSFSSFSFFSSFS";
    let ok = crate::probe::Outcome::Success {
        duration: Duration::from_millis(5),
        phases: Default::default(),
    };
    let mut target_went_down = false;
    for c in pattern.chars() {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let outcome = match c {
            'S' => ok.clone(),
            _ => crate::probe::Outcome::Timeout { phase: None },
        };
        s.observe(&result(&s, Duration::ZERO, outcome)).await;
        target_went_down |= s.detector.target_state(0).unwrap().0 == detector::State::Down;
        assert_ne!(
            s.detector.group_state(0).unwrap().0,
            detector::State::Down,
            "the group never counts the target down"
        );
    }
    assert!(target_went_down, "the target's own streak made it down");
    s.tick().await;
    let failed = pattern.chars().filter(|c| *c == 'F').count();
    let expect = failed as f64 / pattern.len() as f64;
    let got = gauge(
        &reg,
        degraded::metrics::GROUP_LOSS_RATIO,
        &[("group", "isp")],
    )
    .unwrap();
    assert!(
        (got - expect).abs() < 1e-9,
        "window loss {got}, every probe's {expect} ({failed} of {})",
        pattern.len()
    );
    s.shutdown(Duration::from_secs(2)).await;
}

/// A probe result of `target` now: a success, or an `sni_blocked` failure
/// with its evidence (`blocked`), or a timeout.
fn probe(target: usize, what: &str) -> ProbeResult {
    use crate::interference::{Check, Evidence, Extra};
    use crate::probe::{Info, Observation, Outcome, Reason};
    let observation = match what {
        "ok" => Observation::new(Outcome::Success {
            duration: Duration::from_millis(5),
            phases: Default::default(),
        }),
        "blocked" => Observation::with_info(
            Outcome::error(Reason::SniBlocked, "reset after the hello"),
            Info {
                evidence: Some(Box::new(
                    Evidence::new(
                        Check::SniBlocked,
                        "blocked.example",
                        "reset after the ClientHello naming blocked.example; the same address completed a handshake as other.example",
                    )
                    .with_raw(vec!["sni_control other.example: handshake ok".into()]),
                )),
                extra: Some(Extra::SniControl),
                ..Info::default()
            },
        ),
        "unreachable" => Observation::new(Outcome::error(
            Reason::Unreachable,
            "ICMP destination unreachable",
        )),
        _ => Observation::new(Outcome::Timeout { phase: None }),
    };
    ProbeResult {
        target,
        at: Timestamp::now(),
        mono: Instant::now(),
        lateness: Duration::ZERO,
        observation,
    }
}

/// Issue 21: an outage made of sni_blocked failures has the cause
/// `interference` with its summary, in the journal and in the live API
/// while open; its `interference` lines are rate limited per (target, check).
#[tokio::test]
async fn interference_outage_and_lines_are_journaled_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, h, reg) = start(&cfg, None).await;
    for what in ["ok", "ok", "blocked", "blocked", "blocked", "blocked"] {
        for t in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let r = probe(t, if t == 2 { what } else { "ok" });
            s.observe(&r).await;
        }
    }
    let open = h.outages(None, None);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].cause, "interference");
    assert_eq!(open[0].end, None);
    let sum = open[0].interference.as_deref().unwrap();
    assert_eq!(sum.checks, vec!["sni_blocked"]);
    assert_eq!(sum.names, vec!["blocked.example"]);
    assert_eq!(sum.targets, vec!["google"]);
    assert_eq!(
        (sum.failures, sum.of_failures),
        (4, 4),
        "the live view follows the failures after the start (3)"
    );
    for what in ["ok", "ok"] {
        for t in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            s.observe(&probe(t, what)).await;
        }
    }
    settle(&reg).await;
    let e = entries(dir.path());
    let lines: Vec<&InterferenceSeen> = e
        .iter()
        .filter_map(|e| match e {
            Entry::Interference(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(lines.len(), 1, "four probes within the hour: one line");
    assert_eq!(
        (
            lines[0].target.as_str(),
            lines[0].group.as_str(),
            lines[0].check.as_str(),
            lines[0].name.as_str(),
            lines[0].count
        ),
        ("google", "internet", "sni_blocked", "blocked.example", 1)
    );
    assert_eq!(lines[0].raw.len(), 1);
    let end = e
        .iter()
        .find_map(|e| match e {
            Entry::OutageEnd(o) => Some(o),
            _ => None,
        })
        .unwrap();
    assert_eq!(end.cause, "interference");
    let sum = end.interference.as_deref().unwrap();
    assert_eq!((sum.failures, sum.of_failures), (4, 4));
    let start = e
        .iter()
        .find_map(|e| match e {
            Entry::OutageStart(o) => Some(o),
            _ => None,
        })
        .unwrap();
    assert_eq!(start.interference.as_deref().unwrap().failures, 3);
    s.shutdown(Duration::from_secs(2)).await;
}

/// Issue 21: the same group losing its link (timeouts) has an ordinary
/// outage, never `interference`, and writes no `interference` line.
#[tokio::test]
async fn link_down_outage_is_not_interference() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = chain(dir.path());
    let (mut s, h, reg) = start(&cfg, None).await;
    for what in [
        "ok",
        "ok",
        "blocked",
        "timeout",
        "unreachable",
        "timeout",
        "unreachable",
    ] {
        for t in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            s.observe(&probe(t, if t == 2 { what } else { "ok" })).await;
        }
    }
    let open = h.outages(None, None);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].cause, "internet");
    assert!(open[0].interference.is_none());
    settle(&reg).await;
    s.shutdown(Duration::from_secs(2)).await;
    let e = entries(dir.path());
    assert!(
        e.iter()
            .all(|e| !matches!(e, Entry::OutageStart(o) if o.cause == "interference")),
        "{e:?}"
    );
}
