//! The history files: appending batches, expiring old days, reading back.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;

use super::HistoryError;
use super::bucket::{Minute, Tally};
use super::query::{RowSink, Throughput};

const EXT: &str = "lwh";

/// One line to write.
#[derive(Debug, Clone)]
pub enum Row {
    /// Target index, the minute's summary.
    Minute(usize, Tally),
    Throughput(usize, Throughput),
}

impl Row {
    fn write_to(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Row::Minute(idx, tally) => {
                let (m, s) = (tally.minute, tally.to_minute());
                let _ = write!(
                    out,
                    "M\t{m}\t{idx}\t{}\t{}\t{}\t{}\t{}\t",
                    s.probes, s.failures, s.sum_us, s.min_us, s.max_us,
                );
                s.write_sparse_hist(out);
                out.push('\n');
            }
            Row::Throughput(idx, t) => {
                let _ = writeln!(
                    out,
                    "T\t{}\t{idx}\t{}\t{:.6}\t{:.0}",
                    t.at.as_millisecond(),
                    t.bytes,
                    t.seconds,
                    t.bits_per_second
                );
            }
        }
    }
}

fn day_of(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// Appends batches to this run's file of the current UTC day.
pub struct Writer {
    dir: PathBuf,
    run: i64,
    names: std::sync::Arc<[String]>,
    open: Option<(Date, std::fs::File, PathBuf)>,
    expired_hour: Option<i64>,
    /// The name table changed (a reload): write it again before the next rows.
    renamed: bool,
}

impl Writer {
    pub fn new(dir: PathBuf, run: i64, names: std::sync::Arc<[String]>) -> Self {
        Self {
            dir,
            run,
            names,
            open: None,
            expired_hour: None,
            renamed: false,
        }
    }

    /// The indices name `names` from now on (a reload): the next batch
    /// starts with the new name table, which readers apply to the rows after it.
    pub fn rename(&mut self, names: std::sync::Arc<[String]>) {
        self.names = names;
        self.renamed = true;
    }

    /// Writes `rows` (with the name table first in a new file), then fsyncs.
    pub fn write(&mut self, rows: &[Row], now: Timestamp) -> Result<(), HistoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        let day = day_of(now);
        let mut text = String::with_capacity(rows.len() * 64);
        let mut table = self.renamed;
        if self.open.as_ref().is_none_or(|(d, _, _)| *d != day) {
            let path = self.dir.join(format!("{day}.{}.{EXT}", self.run));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| HistoryError::Write {
                    path: path.clone(),
                    source,
                })?;
            let fresh = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
            table |= fresh;
            self.open = Some((day, file, path));
        }
        if table {
            for (i, n) in self.names.iter().enumerate() {
                text.push_str(&format!("N\t{i}\t{n}\n"));
            }
        }
        for r in rows {
            r.write_to(&mut text);
        }
        let Some((_, file, path)) = self.open.as_mut() else {
            return Ok(());
        };
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|source| HistoryError::Write {
                path: path.clone(),
                source,
            })?;
        self.renamed = false;
        Ok(())
    }

    /// Deletes files of days more than `keep_days` before `now`'s day; at
    /// most once an hour.
    pub fn expire(&mut self, now: Timestamp, keep_days: i64) {
        let hour = now.as_second().div_euclid(3600);
        if self.expired_hour == Some(hour) {
            return;
        }
        self.expired_hour = Some(hour);
        let Ok(cutoff) = day_of(now).checked_sub(jiff::Span::new().days(keep_days)) else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if let Some(day) = file_day(&path)
                && day < cutoff
            {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(path = %path.display(), "expired history file"),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "failed to delete an expired history file")
                    }
                }
            }
        }
    }
}

/// The day a history file holds, from its name `<date>.<run>.lwh`.
fn file_day(path: &Path) -> Option<Date> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_suffix(EXT)?.strip_suffix('.')?;
    let (day, run) = rest.split_once('.')?;
    run.parse::<i64>().ok()?;
    day.parse().ok()
}

/// Feeds every row of files whose day may hold `[since, until)` to `acc`.
pub fn read_dir(dir: &Path, since: Timestamp, until: Timestamp, acc: &mut impl RowSink) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let first = day_of(since).yesterday().unwrap_or(day_of(since));
    let last = day_of(until);
    let mut files: Vec<(Date, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            file_day(&p).map(|d| (d, p))
        })
        .filter(|(d, _)| *d >= first && *d <= last)
        .collect();
    files.sort();
    for (_, path) in files {
        if let Err(e) = read_file(&path, acc) {
            tracing::warn!(path = %path.display(), error = %e, "failed to read a history file");
        }
    }
}

/// Reads one file; a torn last line and malformed lines are skipped.
///
/// Bytes first: a row of a target the query does not ask for is dropped
/// after reading its index, without UTF-8 checks or field parsing (most rows
/// of a store with many targets).
fn read_file(path: &Path, acc: &mut impl RowSink) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut names: Vec<Option<usize>> = Vec::new();
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.pop() != Some(b'\n') {
            break; // torn tail
        }
        match line.first() {
            Some(b'M' | b'T') => {
                // `K \t time \t idx \t …`: the index is the third field.
                let mut fields = line.split(|b| *b == b'\t');
                let (Some(kind), Some(t), Some(idx)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                let Some(Some(series)) = parse_usize(idx).and_then(|i| names.get(i)).copied()
                else {
                    continue; // a target the query does not ask for
                };
                let start = kind.len() + t.len() + idx.len() + 3;
                let Ok(rest) = std::str::from_utf8(line.get(start..).unwrap_or_default()) else {
                    continue;
                };
                let Ok(t) = std::str::from_utf8(t) else {
                    continue;
                };
                let mut f = rest.split('\t');
                if kind == b"M" {
                    if let (Ok(m), Some(s)) = (t.parse::<i64>(), parse_minute(&mut f)) {
                        acc.add_minute_to(series, m, &s);
                    }
                } else if let (Ok(at), Some(tp)) = (t.parse::<i64>(), parse_throughput(&mut f))
                    && let Ok(at) = Timestamp::from_millisecond(at)
                {
                    acc.add_throughput_to(series, Throughput { at, ..tp });
                }
            }
            Some(b'N') => {
                let Ok(l) = std::str::from_utf8(&line) else {
                    continue;
                };
                let mut f = l.split('\t').skip(1);
                let (Some(Ok(i)), Some(name)) = (f.next().map(str::parse::<usize>), f.next())
                else {
                    continue;
                };
                if i > 10_000_000 {
                    continue; // not a plausible index: a corrupt line
                }
                if names.len() <= i {
                    names.resize(i + 1, None);
                }
                names[i] = acc.wanted(name);
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_usize(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 12 {
        return None;
    }
    b.iter().try_fold(0usize, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

fn parse_minute<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Minute> {
    let mut s = Minute {
        probes: f.next()?.parse().ok()?,
        failures: f.next()?.parse().ok()?,
        sum_us: f.next()?.parse().ok()?,
        min_us: f.next()?.parse().ok()?,
        max_us: f.next()?.parse().ok()?,
        ..Minute::default()
    };
    s.set_sparse_hist(f.next().unwrap_or(""))?;
    (s.failures <= s.probes).then_some(s)
}

fn parse_throughput<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Throughput> {
    Some(Throughput {
        at: Timestamp::UNIX_EPOCH,
        bytes: f.next()?.parse().ok()?,
        seconds: f.next()?.parse().ok()?,
        bits_per_second: f.next()?.parse().ok()?,
    })
}
