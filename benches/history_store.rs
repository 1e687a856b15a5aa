//! The history store's costs: recording a probe result (the hot path),
//! writing a minute's batch, disk per target per day, and serving 30 days of
//! one target and 24 h of 50 targets from 30 days of files (sealed and
//! rolled up as the fill goes, as a daemon's are); then the same queries
//! over the same rows in the format of two releases back (text, a name
//! table and rows by index), as ratios measured in the same run. The page
//! and API against a release binary: `benches/page_timing.py`.
//!
//! ```sh
//! cargo bench --bench history_store            # 50 targets × 30 days
//! cargo bench --bench history_store -- 200     # more targets in the store
//! ```
//!
//! Every figure is wall-clock on a shared machine: compare, don't quote to
//! the microsecond.

#![allow(clippy::unwrap_used, clippy::disallowed_types)]

use std::time::{Duration, Instant};

use jiff::Timestamp;
use linkwatch::history::{HistoryQuery, HistoryStore};
use linkwatch::probe::{Info, Observation, Outcome, ProbeResult};

fn result(target: usize, at: Timestamp, rtt_us: u64, ok: bool) -> ProbeResult {
    ProbeResult {
        target,
        at,
        mono: tokio::time::Instant::now(),
        lateness: Duration::ZERO,
        observation: Observation {
            outcome: if ok {
                Outcome::Success {
                    duration: Duration::from_micros(rtt_us),
                    phases: Default::default(),
                }
            } else {
                Outcome::Timeout { phase: None }
            },
            info: Info::default(),
        },
    }
}

/// Dates the files an hour back, as a store's files of past days are (a
/// file written in the last seconds may still be being appended to).
fn settle(dir: &std::path::Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for e in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(old).unwrap();
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke
    // run of the same code, so the suite stays fast.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let targets: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if smoke { 5 } else { 50 });
    let days = if smoke { 2i64 } else { 30 };
    let per_minute = 60u32; // a 1 s interval: the densest common setting
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<(String, bool)> = (0..targets).map(|i| (format!("t{i}"), false)).collect();
    let now = Timestamp::now();
    let start = now.as_second() / 86_400 * 86_400 - days * 86_400;
    let store =
        HistoryStore::open_at(tmp.path(), names, Timestamp::from_second(start).unwrap()).unwrap();

    // 1. Recording: one call per probe result.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut recorded = 0u64;
    let mut record_time = Duration::ZERO;
    let mut flush_time = Duration::ZERO;
    let mut flushes = 0u32;
    let mut rows = 0usize;
    for minute in 0..days * 1440 {
        let t0 = Instant::now();
        for k in 0..per_minute {
            let at = Timestamp::from_second(start + minute * 60 + i64::from(k)).unwrap();
            for i in 0..targets {
                let r = next();
                store.record(&result(i, at, 5_000 + r % 20_000, r % 100 != 0));
                recorded += 1;
            }
        }
        record_time += t0.elapsed();
        // Filling 30 days: one batch per hour of data (the daemon writes one
        // per minute; that cost is measured below at 10 000 targets).
        if minute % 60 == 59 {
            rows += store
                .flush(
                    Timestamp::from_second(start + minute * 60 + 60).unwrap(),
                    false,
                )
                .unwrap();
        }
    }
    store.flush(now, true).unwrap();
    let bytes = dir_size(store.dir());
    println!("targets={targets} days={days} probes/minute/target={per_minute}");
    println!(
        "record: {:.0} ns per probe result ({recorded} results)",
        record_time.as_nanos() as f64 / recorded as f64
    );
    // A minute's batch at 10 000 targets, as the daemon writes it.
    let big = tempfile::tempdir().unwrap();
    let n = if smoke { 100 } else { 10_000 };
    let many = HistoryStore::open_at(
        big.path(),
        (0..n).map(|i| (format!("target-{i}"), false)).collect(),
        now,
    )
    .unwrap();
    for m in 0..10i64 {
        let base = now.as_second() / 60 * 60 + m * 60;
        for k in 0..60 {
            let at = Timestamp::from_second(base + k).unwrap();
            for i in 0..n {
                let r = next();
                many.record(&result(i, at, 5_000 + r % 20_000, r % 100 != 0));
            }
        }
        let t0 = Instant::now();
        let written = many
            .flush(Timestamp::from_second(base + 60).unwrap(), false)
            .unwrap();
        if m > 0 {
            flush_time += t0.elapsed();
            flushes += 1;
            assert_eq!(written, n);
        }
    }
    println!(
        "flush at {n} targets: {:.2} ms per minute batch ({:.2} µs per row, fsync included; {:.3} % of a core)",
        flush_time.as_secs_f64() * 1e3 / f64::from(flushes),
        flush_time.as_secs_f64() * 1e6 / (f64::from(flushes) * n as f64),
        flush_time.as_secs_f64() * 100.0 / (f64::from(flushes) * 60.0)
    );
    let _ = rows;
    println!(
        "disk: {} bytes in all, {:.1} KB per target per day",
        bytes,
        bytes as f64 / targets as f64 / days as f64 / 1e3
    );

    // 2. Serving, from this format and from the previous one.
    let end = Timestamp::from_second(start + days * 86_400).unwrap();
    let serve = |store: &HistoryStore, label: &str| -> Vec<f64> {
        println!("-- serving from {label}");
        serve(store, start, end, days, targets)
    };
    settle(store.dir());
    let now_fmt = serve(&store, "this release's files (a name on every row)");
    let v1 = tempfile::tempdir().unwrap();
    let text = tempfile::tempdir().unwrap();
    export_text(&store, targets, start, end, text.path());
    let v1_bytes = convert_to_v1(text.path(), &v1.path().join("history"));
    settle(&v1.path().join("history"));
    let names: Vec<(String, bool)> = (0..targets).map(|i| (format!("t{i}"), false)).collect();
    let old = HistoryStore::open_at(v1.path(), names, now).unwrap();
    let old_fmt = serve(
        &old,
        "the previous release's files (a name table, rows by index)",
    );
    let ratios: Vec<String> = now_fmt
        .iter()
        .zip(&old_fmt)
        .map(|(a, b)| format!("{:.2}", a / b))
        .collect();
    println!(
        "this format / previous format, same rows, same run: serve time [{}], disk {:.3}",
        ratios.join(", "),
        bytes as f64 / v1_bytes as f64
    );

    // 3. Disk with longer names: `isp-resolver-NN` (15 characters).
    let long = tempfile::tempdir().unwrap();
    let store = HistoryStore::open_at(
        long.path(),
        (0..targets)
            .map(|i| (format!("isp-resolver-{i:02}"), false))
            .collect(),
        Timestamp::from_second(start).unwrap(),
    )
    .unwrap();
    for minute in 0..1440 {
        for k in 0..per_minute {
            let at = Timestamp::from_second(start + minute * 60 + i64::from(k)).unwrap();
            for i in 0..targets {
                let r = next();
                store.record(&result(i, at, 5_000 + r % 20_000, r % 100 != 0));
            }
        }
        if minute % 60 == 59 {
            let at = Timestamp::from_second(start + minute * 60 + 60).unwrap();
            store.flush(at, false).unwrap();
        }
    }
    store.flush(now, true).unwrap();
    let long_bytes = dir_size(store.dir());
    let v1_long = tempfile::tempdir().unwrap();
    let text_long = tempfile::tempdir().unwrap();
    let long_end = Timestamp::from_second(start + 86_400).unwrap();
    export_text_named(
        &store,
        &(0..targets)
            .map(|i| format!("isp-resolver-{i:02}"))
            .collect::<Vec<_>>(),
        start,
        long_end,
        text_long.path(),
    );
    let v1_long_bytes = convert_to_v1(text_long.path(), v1_long.path());
    println!(
        "disk with 15-character names: {:.1} KB per target per day (previous format {:.1} KB)",
        long_bytes as f64 / targets as f64 / 1e3,
        v1_long_bytes as f64 / targets as f64 / 1e3
    );
}

/// Times the queries; returns the best of three of each, in seconds.
fn serve(store: &HistoryStore, start: i64, end: Timestamp, days: i64, targets: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let day_ago = Timestamp::from_second(end.as_second() - 86_400).unwrap();
    let begin = Timestamp::from_second(start).unwrap();
    let time = |q: &HistoryQuery| {
        let mut best = Duration::MAX;
        let mut points = 0;
        for i in 0..3 {
            let t0 = Instant::now();
            let s = store.query(q);
            if i == 0 {
                // The first read of a file checks every row; later ones
                // trust a file found undamaged (unchanged since).
                print!("(first read {:.1} ms) ", t0.elapsed().as_secs_f64() * 1e3);
            }
            best = best.min(t0.elapsed());
            points = s.iter().map(|s| s.points.len()).sum::<usize>();
            let json = serde_json::to_vec(&s).unwrap();
            assert!(!json.is_empty());
        }
        (best, points)
    };
    let one = HistoryQuery::new(vec!["t0".into()], begin, end, 7200).unwrap();
    let (d, p) = time(&one);
    out.push(d.as_secs_f64());
    println!(
        "serve {days} days of one target (2 h steps): {:.1} ms, {p} points",
        d.as_secs_f64() * 1e3
    );
    let one_fine = HistoryQuery::new(vec!["t0".into()], begin, end, 1800).unwrap();
    let (d, p) = time(&one_fine);
    out.push(d.as_secs_f64());
    println!(
        "serve {days} days of one target (30 min steps): {:.1} ms, {p} points",
        d.as_secs_f64() * 1e3
    );
    let fifty: Vec<String> = (0..targets.min(50)).map(|i| format!("t{i}")).collect();
    let q = HistoryQuery::new(fifty.clone(), day_ago, end, 300).unwrap();
    let (d, p) = time(&q);
    out.push(d.as_secs_f64());
    println!(
        "serve 24 h of {} targets (5 min steps): {:.1} ms, {p} points",
        fifty.len(),
        d.as_secs_f64() * 1e3
    );
    let q = HistoryQuery::new(fifty.clone(), day_ago, end, 60).unwrap();
    let (d, p) = time(&q);
    out.push(d.as_secs_f64());
    println!(
        "serve 24 h of {} targets (1 min steps): {:.1} ms, {p} points",
        fifty.len(),
        d.as_secs_f64() * 1e3
    );
    // What `/` reads for its bars: 30 days of every target, 15 min steps.
    let q = HistoryQuery::new(fifty.clone(), begin, end, 900).unwrap();
    let (d, p) = time(&q);
    out.push(d.as_secs_f64());
    println!(
        "serve {days} days of {} targets (15 min steps): {:.1} ms, {p} points",
        fifty.len(),
        d.as_secs_f64() * 1e3
    );
    out
}

/// The store's minutes as the previous release's text files (one per day,
/// a name on every row), read back through the store: the same rows for
/// the previous format's figures.
fn export_text(
    store: &HistoryStore,
    targets: usize,
    start: i64,
    end: Timestamp,
    to: &std::path::Path,
) {
    let names: Vec<String> = (0..targets).map(|i| format!("t{i}")).collect();
    export_text_named(store, &names, start, end, to);
}

fn export_text_named(
    store: &HistoryStore,
    names: &[String],
    start: i64,
    end: Timestamp,
    to: &std::path::Path,
) {
    std::fs::create_dir_all(to).unwrap();
    let mut day = start;
    while day < end.as_second() {
        let since = Timestamp::from_second(day).unwrap();
        let until = Timestamp::from_second(day + 86_400).unwrap();
        let q = HistoryQuery::new(names.to_vec(), since, until, 60).unwrap();
        let mut out = String::new();
        for s in store.query(&q) {
            for p in s.points.iter().filter(|p| p.summary.probes > 0) {
                let m = &p.summary;
                out.push_str(&format!(
                    "m\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    p.start.as_second() / 60,
                    s.target,
                    m.probes,
                    m.failures,
                    m.sum_us,
                    m.min_us,
                    m.max_us,
                    m.sparse_hist()
                ));
            }
        }
        let date = since.to_zoned(jiff::tz::TimeZone::UTC).date();
        std::fs::write(to.join(format!("{date}.1.lwh")), out).unwrap();
        day += 86_400;
    }
}

/// Writes the files of `from` as the previous release did (the name table
/// first, rows by index) under `to`; returns the bytes written.
fn convert_to_v1(from: &std::path::Path, to: &std::path::Path) -> u64 {
    std::fs::create_dir_all(to).unwrap();
    let mut total = 0;
    for e in std::fs::read_dir(from).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut names: Vec<&str> = Vec::new();
        let mut rows = String::new();
        for line in text.lines() {
            let f: Vec<&str> = line.splitn(4, '\t').collect();
            let idx = match names.iter().position(|n| *n == f[2]) {
                Some(i) => i,
                None => {
                    names.push(f[2]);
                    names.len() - 1
                }
            };
            let kind = if f[0] == "m" { "M" } else { "T" };
            rows.push_str(&format!("{kind}\t{}\t{idx}\t{}\n", f[1], f[3]));
        }
        let mut out: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("N\t{i}\t{n}\n"))
            .collect();
        out.push_str(&rows);
        total += out.len() as u64;
        std::fs::write(to.join(path.file_name().unwrap()), out).unwrap();
    }
    total
}
