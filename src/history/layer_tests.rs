//! Roll-ups and indexed reads: a store of the previous release read and
//! rolled up with nothing lost, retention, reads that touch only what they
//! need, damaged sealed files costing only themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use super::sealed::{Layer, file_name};
use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NAMES: [&str; 3] = ["gw", "web", "speed"];
/// The store's last minute of data; "now" is two hours later.
const END: &str = "2026-12-21T10:00:00Z";
const DAYS: i64 = 20;

/// Deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn minute(rng: &mut Rng, probes: u32) -> Minute {
    let mut m = Minute::default();
    // Outages: now and then a minute fails whole.
    let down = rng.next().is_multiple_of(97);
    for _ in 0..probes {
        let r = rng.next();
        let ok = !down && !r.is_multiple_of(50);
        m.add(ok.then(|| Duration::from_micros(2_000 + r % 80_000)));
    }
    m
}

fn line(minute: i64, name: &str, s: &Minute) -> String {
    format!(
        "m\t{minute}\t{name}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        s.probes,
        s.failures,
        s.sum_us,
        s.min_us,
        s.max_us,
        s.sparse_hist()
    )
}

/// The previous release's store: one text file per UTC day and run
/// (`<date>.<run>.lwh`), rows naming their target, the last minutes of a
/// day flushed into the next day's file, a restart mid-day splitting a
/// minute over two runs' files, throughput tests; and one day in its
/// release before (format 1: a name table, rows by index).
fn previous_release_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("history");
    std::fs::create_dir_all(&h).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let end = ts(END).as_second() / 60;
    let first = end - DAYS * 1440;
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for m in first..end {
        // Flushed a minute later: the file of the flush's day.
        let flushed = Timestamp::from_second((m + 1) * 60).unwrap();
        let day = flushed.to_zoned(jiff::tz::TimeZone::UTC).date();
        // A restart at 12:30 each day: the run changes, minute 12:30 is split.
        let run = if (m % 1440) < 750 { 1 } else { 2 };
        let idx = m - first;
        for (i, name) in NAMES.iter().enumerate() {
            if i == 2 && idx % 5 != 0 {
                continue; // a target probed every five minutes
            }
            let s = minute(&mut rng, if i == 2 { 1 } else { 6 + i as u32 * 6 });
            let key = format!("{day}.{run}.lwh");
            if m % 1440 == 750 && i == 0 {
                // The minute split over two runs.
                let mut a = Minute::default();
                a.add(Some(Duration::from_millis(3)));
                files
                    .entry(format!("{day}.1.lwh"))
                    .or_default()
                    .push_str(&line(m, name, &a));
            }
            let f = files.entry(key).or_default();
            f.push_str(&line(m, name, &s));
            if i == 2 && idx % 60 == 0 {
                f.push_str(&format!(
                    "t\t{}\t{name}\t{}\t1.250000\t{}\n",
                    m * 60_000 + 1_500,
                    20_000_000 + idx,
                    128_000_000 + idx
                ));
            }
        }
    }
    for (name, text) in &files {
        std::fs::write(h.join(name), text).unwrap();
    }
    dir
}

fn open(dir: &Path, keep: Retention) -> HistoryStore {
    let names = NAMES.iter().map(|n| (n.to_string(), false)).collect();
    let s = HistoryStore::open_at(dir, names, ts("2026-12-21T12:00:00Z")).unwrap();
    s.set_retention(keep);
    s
}

fn now() -> Timestamp {
    ts("2026-12-21T12:00:00Z")
}

fn q(targets: &[&str], since: &str, until: &str, step: i64) -> HistoryQuery {
    HistoryQuery::new(
        targets.iter().map(|t| t.to_string()).collect(),
        ts(since),
        ts(until),
        step,
    )
    .unwrap()
}

/// Probes and failures of every series, summed.
fn tally(series: &[Series]) -> Vec<(u64, u64, u64)> {
    series
        .iter()
        .map(|s| {
            s.points.iter().fold((0, 0, 0), |(p, f, m), x| {
                (
                    p + u64::from(x.summary.probes),
                    f + u64::from(x.summary.failures),
                    m + u64::from(x.minutes),
                )
            })
        })
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("history"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The previous release's files are rolled up, not lost: availability
/// over a period spanning days kept as minutes and days kept as hours is
/// the same as read from the raw minutes before (±0.01 %; here exactly),
/// every hour's probes too, and the report's throughput tests are the same.
#[test]
fn a_previous_release_store_is_rolled_up_and_reads_the_same() {
    let dir = previous_release_store();
    let store = open(dir.path(), Retention::default());
    let all = ["gw", "web", "speed"];
    let period = ("2026-12-01T00:00:00Z", "2026-12-21T12:00:00Z");
    let hourly = q(&all, period.0, period.1, 3600);
    let fine = q(&all, "2026-12-15T00:00:00Z", period.1, 300);
    let (before, used) = store.query_read(&hourly);
    assert!(!used.hours, "nothing rolled up yet");
    let before_fine = store.query(&fine);
    let names: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    let tests_before = read_tests(dir.path(), &names, ts(period.0), ts(period.1));
    assert!(tests_before[2].tests.len() > 400);

    let u = store.upkeep_now(now()).unwrap();
    // 2026-11-30 (its last minute, in 12-01's file: empty) to 12-20.
    assert_eq!(u.days_rolled_up, DAYS as usize + 1, "{u:?}");
    assert!(!u.more);
    let left = files(dir.path());
    assert!(
        left.iter()
            .all(|f| f.ends_with(".lwx") || f.starts_with("2026-12-21.")),
        "raw files sealed and deleted but today's: {left:?}"
    );
    // 14 days of minutes (and today's hours up to 10:00) kept, 21 of hours.
    assert_eq!(left.iter().filter(|f| f.ends_with(".h.lwx")).count(), 21);
    let minute_files = left.iter().filter(|f| f.ends_with(".m.lwx")).count();
    assert_eq!(minute_files, 14 * 24 + 11, "{left:?}");

    let (after, used) = store.query_read(&hourly);
    assert!(used.hours && used.minutes, "{used:?}");
    assert!(after.iter().all(|s| s.damaged_files.is_empty()));
    for (b, a) in tally(&before).iter().zip(tally(&after)) {
        let avail = |(p, f, _): (u64, u64, u64)| 100.0 * (1.0 - f as f64 / p as f64);
        assert!(b.0 > 5_000);
        assert!((avail(*b) - avail(a)).abs() <= 0.01, "{b:?} {a:?}");
        assert_eq!(*b, a);
    }
    let points = |s: &Series| -> Vec<(Timestamp, Minute, u32)> {
        s.points
            .iter()
            .map(|p| (p.start, p.summary.clone(), p.minutes))
            .collect()
    };
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(points(b), points(a), "{}", b.target);
        assert_eq!(b.throughput, a.throughput);
    }
    // Minutes where they are kept: the same points at a 5-minute step.
    assert_eq!(before_fine, store.query(&fine));
    // The report's tests: the same, from the minute files and the hour files.
    let tests_after = read_tests(dir.path(), &names, ts(period.0), ts(period.1));
    for (b, a) in tests_before.iter().zip(&tests_after) {
        assert_eq!(b.tests, a.tests);
    }
    // A second upkeep has nothing to do.
    assert_eq!(store.upkeep_now(now()).unwrap(), Upkeep::default());
}

/// Days past `minutes_days` keep only hours; past `hours_days`, nothing.
#[test]
fn retention_expires_minutes_then_hours() {
    let dir = previous_release_store();
    let store = open(
        dir.path(),
        Retention {
            minutes_days: 3,
            hours_days: 8,
        },
    );
    store.upkeep_now(now()).unwrap();
    let left = files(dir.path());
    let days = |suffix: &str| {
        let mut d: Vec<String> = left
            .iter()
            .filter(|f| f.ends_with(suffix))
            .map(|f| f[..10].to_string())
            .collect();
        d.dedup();
        d
    };
    assert_eq!(
        days(".m.lwx"),
        ["2026-12-18", "2026-12-19", "2026-12-20", "2026-12-21"]
    );
    assert_eq!(
        days(".h.lwx").first().map(String::as_str),
        Some("2026-12-13")
    );
    assert_eq!(days(".h.lwx").len(), 8);
    // A 5-minute step over expired minutes reads the hours that are left.
    let (s, used) = store.query_read(&q(
        &["gw"],
        "2026-12-10T00:00:00Z",
        "2026-12-16T00:00:00Z",
        300,
    ));
    assert!(used.hours);
    let probes: u32 = s[0].points.iter().map(|p| p.summary.probes).sum();
    assert_eq!(
        probes,
        3 * 1440 * 6 + 3,
        "three days kept, one split minute each"
    );
}

/// Overwrites every byte of `path` after the header with garbage.
fn ruin(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    for (i, x) in b.iter_mut().enumerate().skip(40) {
        *x ^= (i as u8).wrapping_mul(31) | 1;
    }
    std::fs::write(path, b).unwrap();
}

/// A read opens only the files of its period and reads only its targets'
/// sections: every other file ruined, and other targets' sections of the
/// files it does read, and it reads in full without a word of damage.
#[test]
fn reads_touch_only_the_files_and_sections_they_need() {
    let dir = previous_release_store();
    let store = open(dir.path(), Retention::default());
    store.upkeep_now(now()).unwrap();
    let want = q(&["web"], "2026-12-19T00:00:00Z", "2026-12-20T00:00:00Z", 60);
    let want_hours = q(
        &["web"],
        "2026-12-02T00:00:00Z",
        "2026-12-04T00:00:00Z",
        3600,
    );
    let (good, used) = store.query_read(&want);
    assert_eq!(used.files, 24, "one day of minutes: 24 hour files");
    let (good_h, used) = store.query_read(&want_hours);
    assert_eq!(used.files, 2, "two days of hours: 2 files");
    // Ruin everything else; in the files read, every section but web's.
    let h = dir.path().join("history");
    let keep: Vec<PathBuf> = (0..24)
        .map(|k| {
            h.join(
                file_name(
                    Layer::Minutes,
                    ts("2026-12-19T00:00:00Z").as_second() / 3600 + k,
                )
                .unwrap(),
            )
        })
        .chain(["2026-12-02", "2026-12-03"].map(|d| h.join(format!("{d}.h.lwx"))))
        .collect();
    for f in files(dir.path()) {
        let p = h.join(&f);
        if !keep.contains(&p) {
            ruin(&p);
            continue;
        }
        let s = sealed::Sealed::open(&p).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        // Sections in name order: gw, speed, web; all but web's ruined.
        assert!(matches!(s.read("web"), sealed::Found::Yes(c) if !c.records.is_empty()));
        let names_end = 32 + 40 * 3 + "gwspeedweb".len();
        let last = b.len() - section_len(&b, 2);
        for x in &mut b[names_end..last] {
            *x = !*x;
        }
        std::fs::write(&p, b).unwrap();
    }
    assert_eq!(store.query(&want), good);
    assert_eq!(store.query(&want_hours), good_h);
    // The ruined sections and files are there to be found by those who ask.
    let gw = store.query(&q(
        &["gw"],
        "2026-12-19T00:00:00Z",
        "2026-12-20T00:00:00Z",
        60,
    ));
    assert_eq!(gw[0].damaged_files.len(), 24);
    assert!(gw[0].points.iter().all(|p| p.summary.probes == 0));
}

/// The length of entry `i`'s section, from the table.
fn section_len(file: &[u8], i: usize) -> usize {
    let e = &file[32 + 40 * i..32 + 40 * (i + 1)];
    u32::from_le_bytes(e[16..20].try_into().unwrap()) as usize
}

/// A torn or ruined sealed file costs its own span: the rest of the
/// period reads, the answer names the file, and it is said in the log.
#[test]
fn a_torn_or_corrupt_roll_up_file_costs_only_itself() {
    let dir = previous_release_store();
    let store = open(dir.path(), Retention::default());
    store.upkeep_now(now()).unwrap();
    let h = dir.path().join("history");
    let whole = q(
        &["gw", "web"],
        "2026-12-02T00:00:00Z",
        "2026-12-06T00:00:00Z",
        3600,
    );
    let good = tally(&store.query(&whole));
    // Torn: cut in the middle of the table.
    let torn = h.join("2026-12-03.h.lwx");
    let b = std::fs::read(&torn).unwrap();
    std::fs::write(&torn, &b[..100]).unwrap();
    // Bit rot in one target's section of another day.
    let rot = h.join("2026-12-04.h.lwx");
    let mut b = std::fs::read(&rot).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x40; // web's section is the last
    std::fs::write(&rot, b).unwrap();
    let got = store.query(&whole);
    let now = tally(&got);
    let day = 24 * 60;
    // gw loses the torn day; web the torn day and the rotten one.
    assert_eq!(now[0].2, good[0].2 - day, "{now:?} {good:?}");
    assert_eq!(now[1].2, good[1].2 - 2 * day, "{now:?} {good:?}");
    let d = &got[0].damaged_files;
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.iter()
            .any(|d| d.file == "2026-12-03.h.lwx" && d.error.is_some())
    );
    assert!(
        d.iter()
            .any(|d| d.file == "2026-12-04.h.lwx" && d.damaged_rows == 1 && d.error.is_none())
    );
}
