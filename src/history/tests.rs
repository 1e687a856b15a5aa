use std::path::{Path, PathBuf};
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
    let ancient = ts("2025-06-01T10:00:05Z");
    let old = ts("2026-10-01T10:00:05Z");
    let store = HistoryStore::open_at(dir.path(), names(), old).unwrap();
    for t in [ancient, old] {
        store.record(&result(0, t, Some(10)));
        store.flush(t, true).unwrap();
        store.upkeep_now(t).unwrap();
    }
    let now = ts("2026-12-01T10:00:05Z");
    store.record(&result(0, now, Some(10)));
    store.flush(now, false).unwrap();
    store.flush(now, true).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // 2025-06: past both retentions, gone; 2026-10: past the minutes'
    // 14 days, kept as hours; today: the raw file being written.
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0], "2026-10-01.h.lwx");
    assert!(files[1].starts_with("2026-12-01T10."), "{files:?}");
    let q = HistoryQuery::new(vec!["a".into()], ts("2026-10-01T00:00:00Z"), now, 3600).unwrap();
    let (got, used) = store.query_read(&q);
    let probes: u32 = got[0].points.iter().map(|p| p.summary.probes).sum();
    assert_eq!(probes, 2);
    assert!(used.hours && used.minutes, "{used:?}");
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

// Damage: each kind of damage seen in the field, in files of this release
// (format 2) and of earlier ones (format 1, written by the old writer below).

const T0: &str = "2026-12-01T10:00:00Z";

/// Two targets, 42 and 30 probes a minute for four minutes, as a daemon
/// writes them (a batch a minute), then a restart: the file, its rows'
/// lines, and a store of the next run to read it with.
fn four_minutes() -> (tempfile::TempDir, PathBuf, HistoryStore) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts(T0);
    let names = vec![
        ("icmp-gw".to_string(), false),
        ("tcp-web".to_string(), false),
    ];
    let store = HistoryStore::open_at(dir.path(), names.clone(), t0).unwrap();
    for minute in 0..4u64 {
        for (target, n) in [(0, 42u64), (1, 30)] {
            for k in 0..n {
                let at = t0 + Duration::from_secs(minute * 60 + k * 60 / n);
                let rtt = (k % 10 != 9).then_some(5 + k % 20);
                store.record(&result(target, at, rtt));
            }
        }
        store
            .flush(t0 + Duration::from_secs(minute * 60 + 60), minute == 3)
            .unwrap();
    }
    let file = only_file(store.dir());
    let later = HistoryStore::open_at(dir.path(), names, t0 + Duration::from_secs(600)).unwrap();
    (dir, file, later)
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Writes `bytes` as the file's content, an hour old (a torn last line of
/// a file that recent could be a batch being written).
fn damage(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

/// Deterministic garbage (any byte value).
fn garbage(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What a query of the four minutes reads: per target, the probes of each
/// minute, and the damage it reports.
fn read_back(store: &HistoryStore) -> (Vec<Vec<u32>>, Vec<FileDamage>) {
    let q = HistoryQuery::new(
        vec!["icmp-gw".into(), "tcp-web".into()],
        ts(T0),
        ts(T0) + Duration::from_secs(240),
        60,
    )
    .unwrap();
    let series = store.query(&q);
    let probes = series
        .iter()
        .map(|s| s.points.iter().map(|p| p.summary.probes).collect())
        .collect();
    let damaged = series[0].damaged_files.clone();
    assert!(series.iter().all(|s| s.damaged_files == damaged));
    (probes, damaged)
}

const ALL: [[u32; 4]; 2] = [[42; 4], [30; 4]];

/// One damaged file's counts: (damaged rows, skipped bytes).
fn counts(d: &[FileDamage]) -> (u64, u64) {
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].file.ends_with(".lwh") && d[0].error.is_none(), "{d:?}");
    (d[0].damaged_rows, d[0].skipped_bytes)
}

/// Byte offsets of the line starts of `text`.
fn line_starts(text: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|i| *i < text.len())
        .collect()
}

#[test]
fn an_undamaged_file_reads_in_full_and_reports_nothing() {
    let (_dir, file, store) = four_minutes();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(text.lines().all(|l| l.starts_with("m\t")), "{text}");
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert!(damaged.is_empty(), "{damaged:?}");
}

#[test]
fn garbage_before_the_first_line_costs_no_row() {
    let (_dir, file, store) = four_minutes();
    let mut bytes = garbage(64, 7);
    bytes.extend(std::fs::read(&file).unwrap());
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert_eq!(counts(&damaged), (1, 64));
}

#[test]
fn line_ends_turned_into_nul_cost_no_row() {
    let (_dir, file, store) = four_minutes();
    let mut bytes = std::fs::read(&file).unwrap();
    for i in line_starts(&bytes).into_iter().skip(1).take(3) {
        bytes[i - 1] = 0;
    }
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert_eq!(counts(&damaged), (0, 3), "three mangled line ends, no row");
}

#[test]
fn invalid_utf8_in_a_name_costs_that_row_only() {
    let (_dir, file, store) = four_minutes();
    let mut bytes = std::fs::read(&file).unwrap();
    // The first row is icmp-gw's first minute: "m\t<minute>\ticmp-gw\t…".
    let at = bytes.windows(7).position(|w| w == b"icmp-gw").unwrap();
    bytes[at + 2] = 0xff;
    let row = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, [[0, 42, 42, 42], [30; 4]]);
    assert_eq!(counts(&damaged), (1, row as u64));
}

#[test]
fn garbage_in_the_middle_costs_the_row_it_lands_in() {
    let (_dir, file, store) = four_minutes();
    let mut bytes = std::fs::read(&file).unwrap();
    let starts = line_starts(&bytes);
    // Inside the fifth row (icmp-gw's third minute), after its name.
    let (row, end) = (starts[4], starts[5]);
    let at = row + 25;
    let junk = garbage(200, 11);
    bytes.splice(at..at, junk.iter().copied());
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, [[42, 42, 0, 42], [30; 4]]);
    assert_eq!(counts(&damaged), (1, (end - row + 200) as u64));
}

#[test]
fn a_file_cut_in_half_keeps_its_first_half_and_counts_the_torn_row() {
    let (_dir, file, store) = four_minutes();
    let bytes = std::fs::read(&file).unwrap();
    let starts = line_starts(&bytes);
    // Half, or just past it if that is a line start.
    let half = bytes.len() / 2 + usize::from(starts.contains(&(bytes.len() / 2))) * 10;
    let whole = starts.iter().filter(|s| **s <= half).count() - 1;
    let torn = half - starts[whole];
    assert!(torn > 0, "the cut falls inside a row");
    std::fs::write(&file, &bytes[..half]).unwrap();
    // Just written: maybe a batch being appended, not (yet) damage.
    let (probes, damaged) = read_back(&store);
    assert!(damaged.is_empty(), "{damaged:?}");
    damage(&file, &bytes[..half]);
    let (probes_later, damaged) = read_back(&store);
    assert_eq!(probes, probes_later);
    let rows: usize = probes.iter().flatten().filter(|p| **p > 0).count();
    assert_eq!(rows, whole, "{probes:?}");
    assert_eq!(counts(&damaged), (1, torn as u64));
}

#[test]
fn damage_is_counted_once_per_file_however_often_it_is_read() {
    let (dir, file, store) = four_minutes();
    let reg = prometheus::Registry::new();
    store.register_metrics(&reg).unwrap();
    let mut bytes = garbage(64, 3);
    bytes.extend(std::fs::read(&file).unwrap());
    bytes.extend(b"half a ro");
    damage(&file, &bytes);
    // A directory with a history file's name: unreadable, said, no panic.
    let day = file.file_name().unwrap().to_str().unwrap()[..10].to_string();
    std::fs::create_dir(dir.path().join(format!("history/{day}.5.lwh"))).unwrap();
    for _ in 0..4 {
        let (probes, damaged) = read_back(&store);
        assert_eq!(probes, ALL);
        assert_eq!(damaged.len(), 2, "{damaged:?}");
        let (bad, unreadable): (Vec<_>, Vec<_>) = damaged.iter().partition(|d| d.error.is_none());
        assert_eq!((bad[0].damaged_rows, bad[0].skipped_bytes), (2, 73));
        assert_eq!(unreadable.len(), 1, "{damaged:?}");
    }
    assert_eq!(store.damaged_rows.get(), 2);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&reg.gather())
        .unwrap();
    assert!(
        text.contains("linkwatch_history_damaged_rows_total 2"),
        "{text}"
    );
    let d = damaged_files(dir.path(), ts(T0), ts(T0) + Duration::from_secs(60));
    assert_eq!(d.len(), 2, "{d:?}");
}

// Format 1: files of earlier releases.

/// The previous release's writer: the name table first (and again after
/// a reload), rows by index.
fn write_v1(table: &[&str], rows: &[(i64, usize, Minute)], out: &mut Vec<u8>) {
    for (i, n) in table.iter().enumerate() {
        out.extend(format!("N\t{i}\t{n}\n").bytes());
    }
    for (m, idx, s) in rows {
        out.extend(
            format!(
                "M\t{m}\t{idx}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                s.probes,
                s.failures,
                s.sum_us,
                s.min_us,
                s.max_us,
                s.sparse_hist()
            )
            .bytes(),
        );
    }
}

fn minute_of(probes: u32) -> Minute {
    let mut m = Minute::default();
    for k in 0..probes {
        m.add((k % 10 != 9).then(|| Duration::from_millis(5 + u64::from(k % 20))));
    }
    m
}

/// Four minutes of the two targets in the previous release's format, in a
/// file of its own run, and a store to read it.
fn four_minutes_v1() -> (tempfile::TempDir, PathBuf, HistoryStore, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts(T0);
    let first = t0.as_second() / 60;
    let mut bytes = Vec::new();
    let rows: Vec<(i64, usize, Minute)> = (0..4)
        .flat_map(|m| [(first + m, 0, minute_of(42)), (first + m, 1, minute_of(30))])
        .collect();
    write_v1(&["icmp-gw", "tcp-web"], &rows, &mut bytes);
    std::fs::create_dir_all(dir.path().join("history")).unwrap();
    let file = dir
        .path()
        .join(format!("history/2026-12-01.{}.lwh", t0.as_millisecond()));
    damage(&file, &bytes);
    let names = vec![
        ("icmp-gw".to_string(), false),
        ("tcp-web".to_string(), false),
    ];
    let store = HistoryStore::open_at(dir.path(), names, t0 + Duration::from_secs(600)).unwrap();
    (dir, file, store, bytes)
}

#[test]
fn files_of_the_previous_release_are_read_reloads_included() {
    let (_dir, file, store, mut bytes) = four_minutes_v1();
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert!(damaged.is_empty(), "{damaged:?}");
    // A reload swapped the two targets' indices and added one: the rows
    // after the new table go by it.
    let next = ts(T0).as_second() / 60 + 2;
    write_v1(
        &["tcp-web", "new", "icmp-gw"],
        &[(next, 2, minute_of(1)), (next, 0, minute_of(2))],
        &mut bytes,
    );
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, [[42, 42, 43, 42], [30, 30, 32, 30]]);
    assert!(damaged.is_empty(), "{damaged:?}");
}

#[test]
fn previous_release_garbage_before_the_name_table_costs_no_row() {
    let (_dir, file, store, bytes) = four_minutes_v1();
    let mut damaged_bytes = garbage(64, 7);
    damaged_bytes.extend(&bytes);
    damage(&file, &damaged_bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert_eq!(counts(&damaged), (1, 64));
}

#[test]
fn previous_release_name_table_with_nul_line_ends_costs_no_row() {
    let (_dir, file, store, mut bytes) = four_minutes_v1();
    // The table's line end, and the first row's two.
    for i in line_starts(&bytes).into_iter().skip(1).take(3) {
        bytes[i - 1] = 0;
    }
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, ALL);
    assert_eq!(counts(&damaged), (0, 3));
}

#[test]
fn previous_release_name_line_with_invalid_utf8_loses_that_target_and_says_so() {
    let (_dir, file, store, mut bytes) = four_minutes_v1();
    bytes[4] = 0xff; // "N\t0\ti…" → "N\t0\t\xffcmp-gw"
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    assert_eq!(probes, [[0; 4], [30; 4]]);
    let table = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let rows: Vec<&str> = std::str::from_utf8(&bytes[table..])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("M\t") && l.split('\t').nth(2) == Some("0"))
        .collect();
    let lost: usize = rows.iter().map(|l| l.len() + 1).sum();
    // The name line and the four rows no name can be given to.
    assert_eq!(counts(&damaged), (5, (table + lost) as u64));
}

#[test]
fn previous_release_damaged_reload_table_does_not_misname_rows() {
    let (_dir, file, store, mut bytes) = four_minutes_v1();
    let next = ts(T0).as_second() / 60 + 2;
    let at = bytes.len();
    write_v1(
        &["tcp-web", "icmp-gw"],
        &[(next, 0, minute_of(3)), (next, 1, minute_of(1))],
        &mut bytes,
    );
    bytes[at + 4] = 0xff; // the new table's "tcp-web"
    damage(&file, &bytes);
    let (probes, damaged) = read_back(&store);
    // Index 0 is icmp-gw's in the first table: its row after the reload
    // is tcp-web's, whose name was lost; counted, not given to icmp-gw.
    assert_eq!(probes, [[42, 42, 43, 42], [30; 4]]);
    assert_eq!(counts(&damaged).0, 2);
}

#[test]
fn damage_in_rows_not_asked_for_is_found_also_after_the_file_was_read_clean() {
    let (_dir, file, store) = four_minutes();
    let bytes = std::fs::read(&file).unwrap();
    damage(&file, &bytes); // settled, undamaged
    let only_icmp = HistoryQuery::new(
        vec!["icmp-gw".into()],
        ts(T0),
        ts(T0) + Duration::from_secs(240),
        60,
    )
    .unwrap();
    for _ in 0..2 {
        let s = store.query(&only_icmp);
        assert!(s[0].damaged_files.is_empty(), "{:?}", s[0].damaged_files);
    }
    // Letters in tcp-web's second row (its probes field): a changed file.
    let mut bytes = bytes;
    let starts = line_starts(&bytes);
    let row = &bytes[starts[1]..starts[2]];
    assert!(row.windows(7).any(|w| w == b"tcp-web"));
    let at = starts[1] + row.iter().rposition(|b| *b == b'\t').unwrap() - 3;
    bytes[at] = b'x';
    damage(&file, &bytes);
    let s = store.query(&only_icmp);
    assert_eq!(
        s[0].points
            .iter()
            .map(|p| p.summary.probes)
            .collect::<Vec<_>>(),
        [42; 4]
    );
    assert_eq!(
        counts(&s[0].damaged_files),
        (1, (starts[2] - starts[1]) as u64)
    );
}

/// A test's latency under load is kept in its row; rows of earlier
/// releases (no such fields) still read, without it.
#[test]
fn throughput_rows_keep_latency_under_load_and_old_rows_still_read() {
    use crate::probe::loaded::{Confidence, LoadedLatency};
    use crate::probe::throughput::ThroughputInfo;
    let dir = tempfile::tempdir().unwrap();
    let t0 = ts("2026-12-01T10:00:05Z");
    let store = HistoryStore::open_at(
        dir.path(),
        vec![("tp".into(), true), ("b".into(), false)],
        t0,
    )
    .unwrap();
    let mut r = result(0, t0, Some(3000));
    r.observation.info = Info {
        body_bytes: Some(30_000_000),
        throughput: Some(Box::new(ThroughputInfo {
            direction: crate::config::Direction::Upload,
            bits_per_second: Some(19e6),
            bytes: 30_000_000,
            transfer_seconds: 3.0,
            time_to_first_byte_seconds: None,
            streams: 4,
            streams_finished: 4,
            ended_by: None,
            partial: false,
            loaded: Some(LoadedLatency {
                idle_rtt_seconds: Some(0.002),
                loaded_rtt_p50_seconds: Some(0.452),
                loaded_rtt_p90_seconds: Some(0.484),
                self_rtt_p50_seconds: None,
                latency_increase_seconds: Some(0.450),
                rpm: Some(136.0),
                grade: None,
                samples: 235,
                foreign_samples: 50,
                self_samples: 185,
                probes_lost: 0,
                probe_connections: 93,
                confidence: Confidence::Normal,
                not_saturated: false,
                congestion: Some("cubic".into()),
                note: None,
            }),
        })),
        ..Info::default()
    };
    store.record(&r);
    store.flush(t0 + Duration::from_secs(120), true).unwrap();
    drop(store);
    // A row of the previous release, in a file of its own.
    std::fs::write(
        dir.path().join("history/2026-12-01.5.lwh"),
        format!(
            "t\t{}\ttp\t1000000\t1.000000\t8000000\n",
            ts("2026-12-01T11:00:00Z").as_millisecond()
        ),
    )
    .unwrap();
    let tests = read_tests(
        dir.path(),
        &["tp".to_string()],
        ts("2026-12-01T00:00:00Z"),
        ts("2026-12-02T00:00:00Z"),
    );
    let t = &tests[0].tests;
    assert_eq!(t.len(), 2, "{t:?}");
    let l = t[0].loaded.unwrap();
    assert_eq!(l.loaded_rtt_p50_seconds, Some(0.452));
    assert!((l.latency_increase_seconds.unwrap() - 0.45).abs() < 1e-9);
    assert_eq!((l.samples, l.rpm, l.grade), (235, Some(136.0), Some("F")));
    assert_eq!(t[1].loaded, None);
    assert_eq!(t[1].bits_per_second, 8e6);
}
