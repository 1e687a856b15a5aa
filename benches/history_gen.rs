//! Writes a history store to benchmark against: N targets with days of
//! minutes and days of hourly summaries, in the real on-disk format,
//! written with the store's own encoder (`linkwatch::history::sealed`), up
//! to the current hour, whose rows are a raw text file as the daemon
//! appends them. `--format main` writes the previous release's format
//! instead (one text file per day, minutes only: it had no hours), for the
//! same page/API timing against main's binary (`benches/page_timing.py`).
//!
//! ```sh
//! cargo bench --bench history_gen -- --targets 50 --out /tmp/store50
//! cargo bench --bench history_gen -- --targets 1000 --minutes-days 30 --hours-days 400 --out DIR
//! cargo bench --bench history_gen -- --targets 50 --format main --out DIR
//! ```
//!
//! Targets are `t0`, `t1`, …, probed once a second (60 probes a minute),
//! RTTs over five buckets, 1 % loss, an outage minute now and then.
//! Prints the bytes written per target per day of each layer.

#![allow(clippy::unwrap_used, clippy::disallowed_types)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::Timestamp;
use linkwatch::history::Minute;
use linkwatch::history::sealed::{self, Layer, Section};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One minute of one target: 60 probes.
fn minute(rng: &mut Rng) -> Minute {
    let mut m = Minute::default();
    let down = rng.next().is_multiple_of(2000);
    let base = 5_000 + rng.next() % 20_000;
    for _ in 0..60 {
        let r = rng.next();
        let ok = !down && !r.is_multiple_of(100);
        m.add(ok.then(|| std::time::Duration::from_micros(base + r % (base / 2))));
    }
    m
}

fn line(minute_no: i64, name: &str, s: &Minute, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "m\t{minute_no}\t{name}\t{}\t{}\t{}\t{}\t{}\t",
        s.probes, s.failures, s.sum_us, s.min_us, s.max_us
    );
    s.write_sparse_hist(out);
    out.push('\n');
}

fn arg(args: &[String], key: &str) -> Option<String> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--out") {
        // `cargo test --all-targets` runs benches without arguments: a smoke run.
        let dir = tempfile::tempdir().unwrap();
        let n = generate(dir.path(), 2, 1, 2, false, Timestamp::now());
        println!("smoke: {n} bytes");
        return;
    }
    let targets: usize = arg(&args, "--targets").map_or(50, |v| v.parse().unwrap());
    let minutes_days: i64 = arg(&args, "--minutes-days").map_or(30, |v| v.parse().unwrap());
    let hours_days: i64 = arg(&args, "--hours-days").map_or(400, |v| v.parse().unwrap());
    let main_format = arg(&args, "--format").is_some_and(|f| f == "main");
    let out = PathBuf::from(arg(&args, "--out").unwrap());
    let t = Instant::now();
    let bytes = generate(
        &out,
        targets,
        minutes_days,
        hours_days,
        main_format,
        Timestamp::now(),
    );
    println!(
        "wrote {} MB for {targets} targets in {:.1} s",
        bytes / 1_000_000,
        t.elapsed().as_secs_f64()
    );
}

/// Writes the store under `data_dir/history`; returns its bytes.
fn generate(
    data_dir: &Path,
    targets: usize,
    minutes_days: i64,
    hours_days: i64,
    main_format: bool,
    now: Timestamp,
) -> u64 {
    let dir = data_dir.join("history");
    std::fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = (0..targets).map(|i| format!("t{i}")).collect();
    let now_h = now.as_second() / 3600;
    let today = now_h - now_h.rem_euclid(24);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Pools of random minutes and hours, drawn from at random: the same
    // bytes per record as drawing each afresh, at a fraction of the time.
    let minutes: Vec<Minute> = (0..4096).map(|_| minute(&mut rng)).collect();
    let hours: Vec<Minute> = (0..512)
        .map(|_| {
            let mut s = Minute::default();
            for _ in 0..60 {
                s.merge(&minute(&mut rng));
            }
            s
        })
        .collect();
    let pick = |pool: &[Minute], rng: &mut Rng| pool[rng.next() as usize % pool.len()].clone();
    let (mut m_bytes, mut h_bytes, mut raw_bytes) = (0u64, 0u64, 0u64);
    let first_minute_hour = today - minutes_days * 24;
    if main_format {
        // One file per day of minutes, the previous release's layout.
        for day in 0..=minutes_days {
            let d0 = first_minute_hour + day * 24;
            let date = sealed::date_of_hour(d0).unwrap();
            let mut text = String::new();
            let end = ((d0 + 24) * 60).min(now.as_second() / 60);
            for m in d0 * 60..end {
                for n in &names {
                    line(m, n, &pick(&minutes, &mut rng), &mut text);
                }
            }
            let path = dir.join(format!("{date}.1.lwh"));
            std::fs::write(&path, &text).unwrap();
            raw_bytes += text.len() as u64;
        }
        return raw_bytes;
    }
    // Hours: one file per day, every day of `hours_days` before today.
    for day in 0..hours_days {
        let d0 = today - (hours_days - day) * 24;
        let sections = names
            .iter()
            .map(|n| {
                let mut bytes = Vec::new();
                for h in 0..24u32 {
                    sealed::put_record(&mut bytes, h, &pick(&hours, &mut rng), Some(60));
                }
                Section {
                    name: n.clone(),
                    bytes,
                    records: 24,
                    tests: 0,
                }
            })
            .collect();
        let b = sealed::build(Layer::Hours, d0, sections);
        h_bytes += b.len() as u64;
        let path = dir.join(sealed::file_name(Layer::Hours, d0).unwrap());
        sealed::write_file(&path, &b).unwrap();
    }
    // Minutes: one file per hour, up to the current hour.
    for h in first_minute_hour..now_h {
        let sections = names
            .iter()
            .map(|n| {
                let mut bytes = Vec::new();
                for m in 0..60u32 {
                    sealed::put_record(&mut bytes, m, &pick(&minutes, &mut rng), None);
                }
                Section {
                    name: n.clone(),
                    bytes,
                    records: 60,
                    tests: 0,
                }
            })
            .collect();
        let b = sealed::build(Layer::Minutes, h, sections);
        m_bytes += b.len() as u64;
        let path = dir.join(sealed::file_name(Layer::Minutes, h).unwrap());
        sealed::write_file(&path, &b).unwrap();
    }
    // The current hour: raw rows, as the daemon appends them.
    let date = sealed::date_of_hour(now_h).unwrap();
    let mut text = String::new();
    for m in now_h * 60..now.as_second() / 60 {
        for n in &names {
            line(m, n, &pick(&minutes, &mut rng), &mut text);
        }
    }
    let path = dir.join(format!("{date}T{:02}.1.lwh", now_h.rem_euclid(24)));
    std::fs::File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    raw_bytes += text.len() as u64;
    let per = |b: u64, days: i64| b as f64 / targets as f64 / days.max(1) as f64 / 1000.0;
    println!(
        "minutes: {:.1} KB per target per day; hours: {:.2} KB per target per day; \
         a year at the default retention (14 days of minutes, 365 of hours): {:.0} KB per target",
        per(m_bytes, minutes_days),
        per(h_bytes, hours_days),
        per(m_bytes, minutes_days) * 14.0 + per(h_bytes, hours_days) * 365.0
    );
    m_bytes + h_bytes + raw_bytes
}
