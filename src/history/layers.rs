//! The store's files by layer: which ones a read takes for a period, and
//! the upkeep that seals the hours that are over, rolls the days that are
//! over up into hours and deletes what is past retention.
//!
//! Three kinds of file live in `<data_dir>/history`:
//! - raw: `<date>T<HH>.<run>.lwh` (this release: one per UTC hour and run)
//!   and `<date>.<run>.lwh` (earlier releases: one per day and run), text
//!   appended once a minute (see [`super::file`]);
//! - sealed minutes: `<date>T<HH>.m.lwx`, one hour of every target;
//! - sealed hours: `<date>.h.lwx`, one day of every target.
//!
//! A raw file of hour H holds the rows of H and of the last minute(s) of
//! H-1 (flushed just after the hour turned). Hour H is sealed once
//! [`SEAL_AFTER`] has passed since its end, from the raw files of H and
//! H+1; a raw file is deleted once the hours it can hold are sealed. A day
//! is rolled up once all its hours are. A read decides, hour by hour, where
//! each hour of its period comes from (sealed minutes, sealed hours or raw
//! rows), so that nothing is counted twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use tokio::time::Instant;

use jiff::Timestamp;

use super::bucket::Minute;
use super::file::{self, Clean};
use super::row::{FileDamage, RowSink, Throughput};
use super::sealed::{self, Found, Layer, Sealed, Section};

/// How long after an hour's end it is sealed: its last rows are flushed
/// within a minute of it (a partial minute at a shutdown at once); the
/// margin covers a flush delayed by a slow disk.
pub const SEAL_AFTER: i64 = 900;

/// Most hours sealed from one scan of their raw files (bounds memory: a
/// day file of an earlier release is read four times, not held whole).
const WINDOW_HOURS: i64 = 6;

/// Longest one upkeep runs before it leaves the rest to the next flush.
const BUDGET: Duration = Duration::from_secs(20);

pub use crate::config::HistoryRetention as Retention;

/// A raw file: its path and the hours its name covers.
#[derive(Debug, Clone)]
struct Raw {
    path: PathBuf,
    first: i64,
    hours: i64,
}

impl Raw {
    /// Hours whose rows it may hold (the one before too).
    fn may_hold(&self) -> std::ops::Range<i64> {
        self.first - 1..self.first + self.hours
    }
}

/// What the directory holds.
#[derive(Default)]
struct Inventory {
    raw: Vec<Raw>,
    /// Hours with a sealed minute file.
    minutes: BTreeSet<i64>,
    /// First hours of days with a sealed hour file.
    days: BTreeSet<i64>,
    /// Leftovers of an interrupted write.
    tmp: Vec<PathBuf>,
}

fn inventory(dir: &Path) -> Inventory {
    let mut inv = Inventory::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return inv;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((layer, start)) = sealed::parse_name(name) {
            match layer {
                Layer::Minutes => inv.minutes.insert(start),
                Layer::Hours => inv.days.insert(start),
            };
        } else if let Some((first, hours)) = file::raw_span(name) {
            inv.raw.push(Raw {
                path: e.path(),
                first,
                hours,
            });
        } else if name.ends_with(".lwx.tmp") {
            inv.tmp.push(e.path());
        }
    }
    inv.raw
        .sort_by(|a, b| (a.first, &a.path).cmp(&(b.first, &b.path)));
    inv
}

fn day_start(hour: i64) -> i64 {
    hour - hour.rem_euclid(24)
}

/// Where an hour of a read comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Minutes,
    Hours,
    Raw,
}

/// Which layers a read took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    /// Sealed minutes or raw rows.
    pub minutes: bool,
    /// Hourly summaries.
    pub hours: bool,
    /// Files opened.
    pub files: usize,
}

/// Passes on the raw rows of the hours planned as raw only.
struct OnlyRaw<'a, S> {
    inner: &'a mut S,
    h0: i64,
    plan: &'a [Source],
}

impl<S> OnlyRaw<'_, S> {
    fn raw(&self, hour: i64) -> bool {
        usize::try_from(hour - self.h0)
            .ok()
            .and_then(|i| self.plan.get(i))
            == Some(&Source::Raw)
    }
}

impl<S: RowSink> RowSink for OnlyRaw<'_, S> {
    fn wanted(&mut self, name: &str) -> Option<usize> {
        self.inner.wanted(name)
    }
    fn wanted_names(&self) -> Option<Vec<(String, usize)>> {
        self.inner.wanted_names()
    }
    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute) {
        if self.raw(minute.div_euclid(60)) {
            self.inner.add_minute_to(series, minute, s);
        }
    }
    fn add_throughput_to(&mut self, series: usize, t: Throughput) {
        if self.raw(t.at.as_second().div_euclid(3600)) {
            self.inner.add_throughput_to(series, t);
        }
    }
    fn add_hour_to(&mut self, _: usize, _: i64, _: &Minute, _: u32) {}
}

/// Feeds the rows of `[since, until)` to `acc`: hour by hour from sealed
/// minutes (`prefer_hours`: from the day's hourly summaries when there are
/// some), sealed hours (where the minutes are gone), or raw rows (hours not
/// sealed yet). Returns the files that could not be read in full (each
/// warned about once per process) and what was read.
pub fn read(
    dir: &Path,
    since: Timestamp,
    until: Timestamp,
    prefer_hours: bool,
    acc: &mut impl RowSink,
    clean: Option<&Clean>,
) -> (Vec<(PathBuf, FileDamage)>, Used) {
    let mut used = Used::default();
    let mut damaged = Vec::new();
    let h0 = since.as_second().div_euclid(3600);
    let h1 = (until.as_second() - 1).div_euclid(3600).max(h0);
    let inv = inventory(dir);
    let plan: Vec<Source> = (h0..=h1)
        .map(|h| {
            let (m, d) = (inv.minutes.contains(&h), inv.days.contains(&day_start(h)));
            match (prefer_hours, m, d) {
                (true, _, true) | (false, false, true) => Source::Hours,
                (_, true, _) => Source::Minutes,
                _ => Source::Raw,
            }
        })
        .collect();
    let wanted = acc.wanted_names().unwrap_or_default();
    let note = |path: PathBuf, d: FileDamage, damaged: &mut Vec<(PathBuf, FileDamage)>| {
        if d.is_damaged() {
            let d = FileDamage {
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ..d
            };
            file::warn_once(&path, &d);
            damaged.push((path, d));
        }
    };
    // Sealed hours: one file per day, its hours planned so.
    let mut days_done = BTreeSet::new();
    for (i, src) in plan.iter().enumerate() {
        let h = h0 + i as i64;
        let path = match src {
            Source::Hours if days_done.insert(day_start(h)) => {
                sealed::file_name(Layer::Hours, day_start(h))
            }
            Source::Minutes => sealed::file_name(Layer::Minutes, h),
            _ => None,
        };
        let Some(path) = path.map(|n| dir.join(n)) else {
            continue;
        };
        used.files += 1;
        let d = read_sealed(&path, &wanted, acc, |hour| {
            usize::try_from(hour - h0).ok().and_then(|i| plan.get(i)) == Some(src)
        });
        match src {
            Source::Hours => used.hours = true,
            _ => used.minutes = true,
        }
        note(path, d, &mut damaged);
    }
    // Raw rows of the hours not sealed.
    let raw_hours: Vec<i64> = (h0..=h1)
        .filter(|h| plan[(h - h0) as usize] == Source::Raw)
        .collect();
    if let (Some(&lo), Some(&hi)) = (raw_hours.first(), raw_hours.last()) {
        let mut only = OnlyRaw {
            inner: acc,
            h0,
            plan: &plan,
        };
        for r in &inv.raw {
            let holds = r.may_hold();
            if holds.end <= lo || holds.start > hi || !raw_hours.iter().any(|h| holds.contains(h)) {
                continue;
            }
            used.files += 1;
            used.minutes = true;
            let d = match file::read_file(&r.path, &mut only, clean) {
                Ok(d) => d,
                // Sealed and deleted since the listing (a report beside
                // a running daemon): its rows are in the sealed files.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => FileDamage {
                    error: Some(e.to_string()),
                    ..FileDamage::default()
                },
            };
            note(r.path.clone(), d, &mut damaged);
        }
    }
    (damaged, used)
}

/// Feeds wanted targets' rows of one sealed file whose hours pass `take`.
fn read_sealed(
    path: &Path,
    wanted: &[(String, usize)],
    acc: &mut impl RowSink,
    take: impl Fn(i64) -> bool,
) -> FileDamage {
    let s = match Sealed::open(path) {
        Ok(s) => s,
        Err(e) => {
            if !path.exists() {
                return FileDamage::default(); // expired since the listing
            }
            return FileDamage {
                error: Some(e),
                ..FileDamage::default()
            };
        }
    };
    let mut damage = FileDamage::default();
    for (name, series) in wanted {
        let c = match s.read(name) {
            Found::Yes(c) => c,
            Found::No => continue,
            Found::Damaged(bytes) => {
                damage.damaged_rows += 1;
                damage.skipped_bytes += bytes;
                continue;
            }
        };
        match s.layer {
            Layer::Minutes => {
                for r in &c.records {
                    acc.add_minute_to(*series, s.start * 60 + i64::from(r.off), &r.summary);
                }
                for t in c.tests {
                    acc.add_throughput_to(*series, t);
                }
            }
            Layer::Hours => {
                for r in &c.records {
                    let hour = s.start + i64::from(r.off);
                    if take(hour) {
                        acc.add_hour_to(*series, hour, &r.summary, r.minutes);
                    }
                }
                for t in c.tests {
                    if take(t.at.as_second().div_euclid(3600)) {
                        acc.add_throughput_to(*series, t);
                    }
                }
            }
        }
    }
    damage
}

/// A section being gathered.
#[derive(Default)]
struct Gather {
    records: Vec<u8>,
    tests: Vec<u8>,
    nrec: u32,
    ntest: u32,
}

/// Takes every row of hours `[a, b)` from raw files, by hour and target.
struct Sealer {
    a: i64,
    b: i64,
    index: HashMap<String, usize>,
    names: Vec<String>,
    /// `[hour - a][target]`.
    out: Vec<Vec<Gather>>,
}

impl Sealer {
    fn slot(&mut self, hour: i64, series: usize) -> Option<&mut Gather> {
        if hour < self.a || hour >= self.b {
            return None;
        }
        let per = self.out.get_mut(usize::try_from(hour - self.a).ok()?)?;
        if per.len() <= series {
            per.resize_with(series + 1, Gather::default);
        }
        per.get_mut(series)
    }
}

impl RowSink for Sealer {
    fn wanted(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        Some(self.names.len() - 1)
    }
    fn wanted_names(&self) -> Option<Vec<(String, usize)>> {
        None
    }
    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute) {
        if let Some(g) = self.slot(minute.div_euclid(60), series) {
            sealed::put_record(&mut g.records, minute.rem_euclid(60) as u32, s, None);
            g.nrec += 1;
        }
    }
    fn add_throughput_to(&mut self, series: usize, t: Throughput) {
        let hour = t.at.as_second().div_euclid(3600);
        if let Some(g) = self.slot(hour, series) {
            sealed::put_test(&mut g.tests, hour * 3_600_000, &t);
            g.ntest += 1;
        }
    }
    fn add_hour_to(&mut self, _: usize, _: i64, _: &Minute, _: u32) {}
}

fn sections(names: &[String], per: Vec<Gather>) -> Vec<Section> {
    per.into_iter()
        .enumerate()
        .filter(|(_, g)| g.nrec + g.ntest > 0)
        .filter_map(|(i, mut g)| {
            g.records.extend_from_slice(&g.tests);
            Some(Section {
                name: names.get(i)?.clone(),
                bytes: g.records,
                records: g.nrec,
                tests: g.ntest,
            })
        })
        .collect()
}

/// Writes the sealed minute files of hours `[a, b)` from `raw`.
fn seal(dir: &Path, raw: &[&Raw], a: i64, b: i64) -> std::io::Result<()> {
    let mut s = Sealer {
        a,
        b,
        index: HashMap::new(),
        names: Vec::new(),
        out: (a..b).map(|_| Vec::new()).collect(),
    };
    for r in raw {
        match file::read_file(&r.path, &mut s, None) {
            Ok(d) if d.is_damaged() => file::warn_once(&r.path, &d),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let out = std::mem::take(&mut s.out);
    for (k, per) in out.into_iter().enumerate() {
        let hour = a + k as i64;
        let Some(name) = sealed::file_name(Layer::Minutes, hour) else {
            continue;
        };
        let bytes = sealed::build(Layer::Minutes, hour, sections(&s.names, per));
        sealed::write_file(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// A target's day while it is rolled up: per hour the summary and which
/// minutes were monitored; the tests.
type Day = (Vec<(Minute, u64)>, Vec<Throughput>);

/// Writes the day starting at hour `d0` as hourly summaries, from its
/// sealed minute files.
fn roll_up(dir: &Path, d0: i64, hours: &[i64]) -> std::io::Result<()> {
    let mut by_target: BTreeMap<String, Day> = BTreeMap::new();
    let mut bad = 0u64;
    for &h in hours {
        let Some(name) = sealed::file_name(Layer::Minutes, h) else {
            continue;
        };
        let path = dir.join(name);
        let s = match Sealed::open(&path) {
            Ok(s) => s,
            Err(e) => {
                // Its rows are lost either way; the day is rolled up
                // from the rest, and the file stays until it expires.
                tracing::warn!(path = %path.display(), error = %e, "sealed history file unreadable; its hour is missing from the day's summary");
                continue;
            }
        };
        bad += s.bad_entries();
        for t in s.names() {
            let Found::Yes(c) = s.read(&t) else {
                bad += 1;
                continue;
            };
            let (hrs, tests) = by_target
                .entry(t)
                .or_insert_with(|| (vec![(Minute::default(), 0); 24], Vec::new()));
            let slot = &mut hrs[(h - d0).clamp(0, 23) as usize];
            for r in &c.records {
                slot.0.merge(&r.summary);
                if r.summary.probes > 0 {
                    slot.1 |= 1u64 << r.off.min(63);
                }
            }
            tests.extend(c.tests);
        }
    }
    if bad > 0 {
        tracing::warn!(
            day_start_hour = d0,
            damaged_sections = bad,
            "damaged sealed minute sections left out of a day's hourly summary"
        );
    }
    let base_ms = d0 * 3_600_000;
    let sections: Vec<Section> = by_target
        .into_iter()
        .map(|(name, (hrs, tests))| {
            let mut bytes = Vec::new();
            let mut records = 0;
            for (i, (m, seen)) in hrs.iter().enumerate() {
                if m.probes > 0 {
                    sealed::put_record(&mut bytes, i as u32, m, Some(seen.count_ones()));
                    records += 1;
                }
            }
            for t in &tests {
                sealed::put_test(&mut bytes, base_ms, t);
            }
            Section {
                name,
                bytes,
                records,
                tests: tests.len() as u32,
            }
        })
        .collect();
    let Some(name) = sealed::file_name(Layer::Hours, d0) else {
        return Ok(());
    };
    sealed::write_file(&dir.join(name), &sealed::build(Layer::Hours, d0, sections))
}

/// What one upkeep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    pub hours_sealed: usize,
    pub days_rolled_up: usize,
    pub files_deleted: usize,
    /// Spans that could not be sealed or rolled up (said in the log).
    pub failed: usize,
    /// The time budget ran out: the rest waits for the next call.
    pub more: bool,
}

/// Seals the hours that are over, rolls the days that are over up,
/// deletes sealed raw files and what is past retention. `swap` is held
/// (for writing) only while files are deleted: a read holds it while it
/// lists and reads.
pub fn upkeep(
    dir: &Path,
    now: Timestamp,
    keep: Retention,
    swap: &RwLock<()>,
) -> std::io::Result<Upkeep> {
    let started = Instant::now();
    let mut done = Upkeep::default();
    let mut failed = 0usize;
    let now_s = now.as_second();
    let over = |h: i64| (h + 1) * 3600 + SEAL_AFTER <= now_s;
    let today = day_start(now_s.div_euclid(3600));
    let hours_cutoff = today - keep.hours_days * 24;
    let minutes_cutoff = today - keep.minutes_days * 24;

    // 1. Seal the hours that are over (not those of days rolled up, or
    // past every retention).
    let inv = inventory(dir);
    let todo: BTreeSet<i64> = inv
        .raw
        .iter()
        .flat_map(Raw::may_hold)
        .filter(|&h| {
            over(h)
                && h >= hours_cutoff
                && !inv.minutes.contains(&h)
                && !inv.days.contains(&day_start(h))
        })
        .collect();
    let todo: Vec<i64> = todo.into_iter().collect();
    let mut i = 0;
    while i < todo.len() {
        if started.elapsed() > BUDGET {
            done.more = true;
            break;
        }
        // A run of consecutive hours, at most a window.
        let a = todo[i];
        let mut b = a + 1;
        while i + 1 < todo.len() && todo[i + 1] == b && b - a < WINDOW_HOURS {
            i += 1;
            b += 1;
        }
        i += 1;
        let from: Vec<&Raw> = inv
            .raw
            .iter()
            .filter(|r| {
                let h = r.may_hold();
                h.start < b && h.end > a
            })
            .collect();
        match seal(dir, &from, a, b) {
            Ok(()) => done.hours_sealed += (b - a) as usize,
            // A raw file that cannot be read (not a file, no permission):
            // its hours stay raw, read (and reported) as they are, and
            // sealing them is tried again at the next upkeep.
            Err(e) => {
                failed += 1;
                tracing::warn!(dir = %dir.display(), first_hour = a, hours = b - a, error = %e, "failed to seal history hours; their raw files stay");
            }
        }
    }

    // 2. Roll up the days that are over, all of whose hours are sealed.
    let inv = inventory(dir);
    let pending: BTreeSet<i64> = inv
        .raw
        .iter()
        .flat_map(Raw::may_hold)
        .filter(|h| !inv.minutes.contains(h))
        .map(day_start)
        .collect();
    let mut by_day: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &h in &inv.minutes {
        by_day.entry(day_start(h)).or_default().push(h);
    }
    for (d0, hours) in &by_day {
        if inv.days.contains(d0) || !over(d0 + 23) || pending.contains(d0) || *d0 < hours_cutoff {
            continue;
        }
        if started.elapsed() > BUDGET {
            done.more = true;
            break;
        }
        match roll_up(dir, *d0, hours) {
            Ok(()) => done.days_rolled_up += 1,
            Err(e) => {
                failed += 1;
                tracing::warn!(dir = %dir.display(), day_start_hour = d0, error = %e, "failed to roll a history day up into hours; its minutes stay");
            }
        }
    }
    sync_dir(dir);

    // 3. Delete what is sealed or past retention (readers wait).
    let inv = inventory(dir);
    let mut gone = Vec::new();
    for r in &inv.raw {
        let sealed = r.may_hold().all(|h| {
            h < hours_cutoff || inv.minutes.contains(&h) || inv.days.contains(&day_start(h))
        });
        if sealed || r.first + r.hours <= hours_cutoff {
            gone.push(r.path.clone());
        }
    }
    for &h in &inv.minutes {
        if h < minutes_cutoff && (inv.days.contains(&day_start(h)) || h < hours_cutoff) {
            gone.extend(sealed::file_name(Layer::Minutes, h).map(|n| dir.join(n)));
        }
    }
    for &d0 in &inv.days {
        if d0 < hours_cutoff {
            gone.extend(sealed::file_name(Layer::Hours, d0).map(|n| dir.join(n)));
        }
    }
    gone.extend(inv.tmp.iter().cloned());
    if !gone.is_empty() {
        let _w = swap.write().unwrap_or_else(|p| p.into_inner());
        for path in gone {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    done.files_deleted += 1;
                    tracing::debug!(path = %path.display(), "history file sealed or expired, deleted");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "failed to delete a history file");
                }
            }
        }
    }
    done.failed = failed;
    Ok(done)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
