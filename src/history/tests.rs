use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::probe::{Info, Observation, Outcome, ProbeResult};

fn result(target: usize, at: Timestamp, rtt_ms: Option<u64>) -> ProbeResult {
    let outcome = match rtt_ms {
        Some(ms) => Outcome::Success {
            duration: Duration::from_millis(ms),
            phases: Default::default(),
        },
        None => Outcome::Timeout { phase: None },
    };
    ProbeResult {
        target,
        at,
        mono: tokio::time::Instant::now(),
        lateness: Duration::ZERO,
        observation: Observation {
            outcome,
            info: Info::default(),
        },
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn names() -> Vec<(String, bool)> {
    vec![("a".into(), false), ("b".into(), false)]
}

#[test]
fn minutes_survive_a_restart_and_partial_minutes_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts("2026-12-01T10:00:05Z");
    let store = HistoryStore::open_at(dir.path(), names(), t0).unwrap();
    for i in 0..12 {
        let at = t0 + Duration::from_secs(i * 10);
        store.record(&result(0, at, (i % 4 != 0).then_some(20 + i)));
        store.record(&result(1, at, Some(5)));
    }
    // Before any flush, the query sees memory.
    let q = HistoryQuery::new(
        vec!["a".into()],
        ts("2026-12-01T10:00:00Z"),
        ts("2026-12-01T10:03:00Z"),
        60,
    )
    .unwrap();
    let mem = store.query(&q);
    assert_eq!(mem[0].points.len(), 3);
    assert_eq!(
        (
            mem[0].points[0].summary.probes,
            mem[0].points[0].summary.failures
        ),
        (6, 2)
    );
    assert_eq!(store.flush(t0 + Duration::from_secs(120), true).unwrap(), 4);
    drop(store);

    // A second run continues minute 10:01 (a partial minute in both runs).
    let t1 = ts("2026-12-01T10:01:55Z");
    let store = HistoryStore::open_at(dir.path(), names(), t1).unwrap();
    store.record(&result(0, t1, None));
    store.flush(t1 + Duration::from_secs(70), false).unwrap();
    let got = store.query(&q);
    assert_eq!(got, store.query(&q), "stable");
    let p = &got[0].points;
    assert_eq!((p[0].summary.probes, p[0].summary.failures), (6, 2));
    assert_eq!((p[1].summary.probes, p[1].summary.failures), (7, 2));
    assert_eq!(p[2].summary.probes, 0);
    assert!(p[1].rtt(0.5).unwrap() > 0.02 && p[1].rtt(0.5).unwrap() < 0.04);
    // Steps add minutes together.
    let q5 = HistoryQuery::new(
        vec!["a".into(), "b".into(), "nope".into()],
        ts("2026-12-01T10:00:00Z"),
        ts("2026-12-01T10:05:00Z"),
        300,
    )
    .unwrap();
    let got = store.query(&q5);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].points[0].summary.probes, 13);
    assert_eq!(
        got[0].points[0].minutes, 2,
        "10:01 counted once over two runs"
    );
    assert_eq!(got[1].points[0].summary.probes, 12);
    assert_eq!(got[2].points[0].summary.probes, 0);
}

#[test]
fn a_torn_tail_and_garbage_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts("2026-12-01T10:00:05Z");
    let store = HistoryStore::open_at(dir.path(), names(), t0).unwrap();
    store.record(&result(0, t0, Some(10)));
    store.flush(t0, true).unwrap();
    let file = std::fs::read_dir(store.dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("M\tnot a number\nM\t29440200\t0\nM\t29440200\t99999999999999\t1\nN\t99999999999\tx\n\u{1}garbage\nM\t29440201\t0\t5\t0\t1");
    std::fs::write(&file, text).unwrap();
    let q = HistoryQuery::new(
        vec!["a".into()],
        ts("2026-12-01T10:00:00Z"),
        ts("2026-12-01T10:01:00Z"),
        60,
    )
    .unwrap();
    assert_eq!(store.query(&q)[0].points[0].summary.probes, 1);
}

#[test]
fn old_days_expire_and_queries_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let old = ts("2026-10-01T10:00:05Z");
    let store = HistoryStore::open_at(dir.path(), names(), old).unwrap();
    store.record(&result(0, old, Some(10)));
    store.flush(old, true).unwrap();
    assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1);
    let now = ts("2026-12-01T10:00:05Z");
    store.record(&result(0, now, Some(10)));
    store.flush(now, true).unwrap();
    let files: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().starts_with("2026-12-01."));
    assert_eq!(
        HistoryQuery::new(vec![], now, old, 60).unwrap_err(),
        QueryError::EmptyPeriod
    );
    assert_eq!(
        HistoryQuery::new(vec![], old, now, 90).unwrap_err(),
        QueryError::Step
    );
    assert!(matches!(
        HistoryQuery::new(vec![], old, now, 60),
        Err(QueryError::TooManyPoints(_))
    ));
}

/// The bytes a day's throughput tests moved, read back after a restart:
/// what the daily budget carries over.
#[test]
fn bytes_moved_adds_up_the_tests_of_a_range_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts("2026-12-01T10:00:05Z");
    let targets = vec![("speed".to_string(), true), ("other".to_string(), true)];
    let store = HistoryStore::open_at(dir.path(), targets, t0).unwrap();
    let test = |target: usize, at: &str, bytes: u64| {
        let mut r = result(target, ts(at), Some(2000));
        r.observation.info.body_bytes = Some(bytes);
        r
    };
    store.record(&test(0, "2026-12-01T09:00:05Z", 7_000_000));
    store.record(&test(0, "2026-12-01T10:00:05Z", 5_000_000));
    store.record(&test(0, "2026-12-01T10:30:05Z", 4_000_000));
    store.record(&test(1, "2026-12-01T10:31:05Z", 9_000_000));
    // A failed test is no figure and moves nothing the store knows of.
    store.record(&result(0, ts("2026-12-01T10:40:05Z"), None));
    store.flush(ts("2026-12-01T10:50:00Z"), true).unwrap();
    let names = ["speed".to_string(), "other".to_string(), "none".to_string()];
    assert_eq!(
        bytes_moved(
            dir.path(),
            &names,
            ts("2026-12-01T10:00:00Z"),
            ts("2026-12-01T11:00:00Z")
        ),
        [9_000_000, 9_000_000, 0]
    );
}
