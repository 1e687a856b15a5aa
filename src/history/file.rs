//! The history files: appending batches, expiring old days, reading back
//! (and saying what could not be read).

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::civil::Date;

use super::bucket::Minute;
use super::error::HistoryError;
use super::row::{FileDamage, LoadedRow, Row, RowSink, Throughput};

const EXT: &str = "lwh";

impl Row {
    /// Appends the row's line, naming its target (`names` by index): every
    /// line stands alone, so a damaged line costs only itself.
    fn write_to(&self, names: &[String], out: &mut String) {
        use std::fmt::Write as _;
        let (Row::Minute(idx, _) | Row::Throughput(idx, _)) = self;
        let Some(name) = names.get(*idx) else {
            // A reload gives every pending row's index a name; never here.
            tracing::error!(index = idx, "history row of an unnamed target not written");
            return;
        };
        match self {
            Row::Minute(_, tally) => {
                let (m, s) = (tally.minute, tally.to_minute());
                let _ = write!(
                    out,
                    "m\t{m}\t{name}\t{}\t{}\t{}\t{}\t{}\t",
                    s.probes, s.failures, s.sum_us, s.min_us, s.max_us,
                );
                s.write_sparse_hist(out);
                out.push('\n');
            }
            Row::Throughput(_, t) => {
                let _ = write!(
                    out,
                    "t\t{}\t{name}\t{}\t{:.6}\t{:.0}",
                    t.at.as_millisecond(),
                    t.bytes,
                    t.seconds,
                    t.bits_per_second
                );
                if let Some(l) = &t.loaded {
                    l.write(out);
                }
                out.push('\n');
            }
        }
    }
}

/// Appends batches to this run's file of the current UTC hour.
pub struct Writer {
    dir: PathBuf,
    run: i64,
    names: std::sync::Arc<[String]>,
    /// The open file's Unix hour.
    open: Option<(i64, std::fs::File, PathBuf)>,
}

impl Writer {
    pub fn new(dir: PathBuf, run: i64, names: std::sync::Arc<[String]>) -> Self {
        Self {
            dir,
            run,
            names,
            open: None,
        }
    }

    /// The indices name `names` from now on (a reload): rows written from
    /// now on carry the new names.
    pub fn rename(&mut self, names: std::sync::Arc<[String]>) {
        self.names = names;
    }

    /// Writes `rows`, then fsyncs.
    pub fn write(&mut self, rows: &[Row], now: Timestamp) -> Result<(), HistoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        let hour = now.as_second().div_euclid(3600);
        let mut text = String::with_capacity(rows.len() * 72);
        if self.open.as_ref().is_none_or(|(h, _, _)| *h != hour) {
            let Some(day) = super::sealed::date_of_hour(hour) else {
                return Ok(());
            };
            let path = self.dir.join(format!(
                "{day}T{:02}.{}.{EXT}",
                hour.rem_euclid(24),
                self.run
            ));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| HistoryError::Write {
                    path: path.clone(),
                    source,
                })?;
            self.open = Some((hour, file, path));
        }
        for r in rows {
            r.write_to(&self.names, &mut text);
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
        Ok(())
    }
}

/// The hours a raw file's name covers: `<date>T<HH>.<run>.lwh` one (this
/// release), `<date>.<run>.lwh` a day (earlier releases). `(first Unix
/// hour, hours)`.
pub fn raw_span(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_suffix(EXT)?.strip_suffix('.')?;
    let (when, run) = rest.split_once('.')?;
    run.parse::<i64>().ok()?;
    match when.split_once('T') {
        Some((day, hh)) => {
            let hh: i64 = hh.parse().ok().filter(|h| (0..24).contains(h))?;
            (when.len() == 13).then_some(())?;
            Some((
                super::sealed::hour_of_date(day.parse::<Date>().ok()?)? + hh,
                1,
            ))
        }
        None => Some((super::sealed::hour_of_date(when.parse::<Date>().ok()?)?, 24)),
    }
}

/// Longest stretch the reader holds without a line end (a good line is at
/// most ~1 KiB); a longer one is cut at its last control byte, or skipped.
const MAX_LINE: usize = 64 * 1024;

/// A file changed this recently may be having a batch appended: its torn
/// last line is not (yet) damage.
const SETTLING: Duration = Duration::from_secs(10);

/// Files read whole and found undamaged, by size and modification time:
/// the rows of them that a later query does not ask for need no check (a
/// file is not rewritten; one that changes gets another stamp).
#[derive(Default)]
pub struct Clean(Mutex<HashMap<PathBuf, (u64, SystemTime)>>);

impl Clean {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (u64, SystemTime)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Logs a damaged file the first time this process finds it (every query
/// reads it again: one line, not one per query).
pub fn warn_once(path: &Path, d: &FileDamage) {
    static WARNED: std::sync::LazyLock<Mutex<std::collections::HashSet<PathBuf>>> =
        std::sync::LazyLock::new(Default::default);
    let first = WARNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf());
    if !first {
        return;
    }
    match &d.error {
        Some(e) => tracing::warn!(
            path = %path.display(),
            error = %e,
            "failed to read a history file; its rows are missing from history"
        ),
        None => tracing::warn!(
            path = %path.display(),
            damaged_rows = d.damaged_rows,
            skipped_bytes = d.skipped_bytes,
            "history file is damaged: unreadable parts skipped, the rows in them are missing from history"
        ),
    }
}

/// Reads one file, skipping what is damaged and saying how much was.
///
/// Bytes first: a row of a target the query does not ask for is checked
/// for shape and dropped, without UTF-8 checks or number parsing (most rows
/// of a store with many targets).
pub fn read_file(
    path: &Path,
    acc: &mut impl RowSink,
    clean: Option<&Clean>,
) -> std::io::Result<FileDamage> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let modified = meta.modified().ok();
    let settling = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_none_or(|age| age < SETTLING);
    let stamp = modified.map(|m| (meta.len(), m));
    let trusted = clean.is_some_and(|c| stamp.is_some() && c.lock().get(path) == stamp.as_ref());
    // Up to the size it had: a batch appended while this reads is not seen
    // half written (a settled file's last line is then whole).
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file.take(meta.len()));
    let mut scan = Scan::new(acc);
    scan.trusted = trusted;
    let mut line = Vec::with_capacity(256);
    loop {
        let room = (MAX_LINE - line.len()) as u64;
        (&mut reader).take(room).read_until(b'\n', &mut line)?;
        if line.last() == Some(&b'\n') {
            line.pop();
            scan.line(&line, true);
            line.clear();
        } else if line.len() < MAX_LINE {
            // The end of the file: a torn last line (a crash mid-write,
            // or a batch being written now) is never taken.
            if !line.is_empty() && !settling {
                scan.skip(line.len(), true);
            }
            break;
        } else if let Some(p) = line.iter().rposition(|b| is_break(*b)) {
            // No line end in MAX_LINE bytes: read up to the last control
            // byte, keep the rest for the next round.
            scan.line(&line[..p], false);
            scan.skip(1, false);
            line.drain(..=p);
        } else {
            scan.skip(line.len(), true);
            line.clear();
        }
    }
    let damage = scan.finish();
    if let (Some(c), Some(stamp)) = (clean, stamp) {
        if damage.is_damaged() || settling {
            c.lock().remove(path);
        } else {
            c.lock().insert(path.to_path_buf(), stamp);
        }
    }
    Ok(damage)
}

/// A byte no line of a history file contains: a line end, or damage.
fn is_break(b: u8) -> bool {
    (b < 0x20) & (b != b'\t') | (b == 0x7f)
}

/// A name as the files hold it: UTF-8, not empty, no control byte.
fn name_of(b: &[u8]) -> Option<&str> {
    if b.is_empty() || b.iter().fold(false, |any, c| any | is_break(*c)) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// The fields after a row's key have the row's shape: `tabs` tabs, and
/// otherwise digits, `:` and `,` (the histogram) and `.` (seconds).
/// Branch-free with byte counters, so it vectorises: the check of most rows
/// of a large store (measured 2.7× faster than `Iterator::all`).
fn row_shape(rest: &[u8], tabs: usize) -> bool {
    let (mut odd, mut n) = (0u8, 0u8);
    for &b in rest {
        let ok = (b.wrapping_sub(b'0') <= 10) | (b == b'\t') | (b == b',') | (b == b'.');
        odd |= u8::from(!ok);
        n = n.wrapping_add(u8::from(b == b'\t'));
    }
    rest.len() < 256 && odd == 0 && usize::from(n) == tabs
}

/// What a row's index (format 1) or name (format 2) stands for.
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    /// No name line for it (format 1): its name was lost.
    Unknown,
    Unwanted,
    Wanted(usize),
}

impl From<Option<usize>> for Slot {
    fn from(o: Option<usize>) -> Self {
        o.map_or(Slot::Unwanted, Slot::Wanted)
    }
}

/// The reader's state over one file.
///
/// Two formats are read. Format 2 (this release) names the target on
/// every row: `m <minute> <name> …` and `t <at_ms> <name> …`. Format 1
/// (earlier releases) wrote a name table (`N <idx> <name>`) at the start
/// of a file and after a reload, and rows `M`/`T` with the index: a row
/// whose table line was lost cannot be attributed and counts as damaged.
struct Scan<'a, S: RowSink> {
    acc: &'a mut S,
    /// Format 1: by index.
    table: Vec<Slot>,
    /// Format 1: the last line was a table line (a new table resets it).
    in_table: bool,
    /// Format 2: names seen, with what they stand for.
    names: Vec<(Box<[u8]>, Slot)>,
    by_name: HashMap<Box<[u8]>, usize>,
    /// Format 2: where the next row's name is likely (rows come in target order).
    next_name: usize,
    /// The unreadable stretch since the last good line: bytes, and whether
    /// any is more than a control byte (a lost row, not a mangled line end).
    stretch: (usize, bool),
    damage: FileDamage,
    /// The file was read whole before and found undamaged: rows not asked
    /// for are taken unchecked.
    trusted: bool,
}

impl<'a, S: RowSink> Scan<'a, S> {
    fn new(acc: &'a mut S) -> Self {
        Self {
            acc,
            table: Vec::new(),
            in_table: false,
            names: Vec::new(),
            by_name: HashMap::new(),
            next_name: 0,
            stretch: (0, false),
            damage: FileDamage::default(),
            trusted: false,
        }
    }

    /// One line (without its end; `ended`: it had one). Control bytes
    /// inside it are damage and split it (a line end turned into NUL
    /// loses no row); a part that is no line is searched for a line
    /// that starts inside it (garbage written before a row).
    fn line(&mut self, line: &[u8], ended: bool) {
        // A good line has no control byte (its fields would not read, and
        // names are checked), so it reads whole: no pass of its own.
        if self.take(line) {
            self.good();
            return;
        }
        let mut parts = line.split(|b| is_break(*b)).peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            self.part(part, ended && last);
            if !last {
                self.skip(1, false);
            }
        }
    }

    /// A piece of a line without control bytes (`ended`: a line end follows).
    fn part(&mut self, part: &[u8], ended: bool) {
        if self.take(part) {
            self.good();
            return;
        }
        // Garbage before a line: take the first line start that reads.
        let start = (1..part.len().saturating_sub(1)).find(|&p| {
            matches!(part[p], b'm' | b't' | b'M' | b'T' | b'N')
                && part[p + 1] == b'\t'
                && self.take(&part[p..])
        });
        match start {
            Some(p) => {
                self.skip(p, true);
                self.good();
            }
            None => self.skip(part.len() + usize::from(ended), !part.is_empty()),
        }
    }

    /// Adds unreadable bytes (`content`: more than control bytes).
    fn skip(&mut self, bytes: usize, content: bool) {
        self.stretch.0 += bytes;
        self.stretch.1 |= content;
    }

    /// A line was read: the stretch before it is over.
    fn good(&mut self) {
        let (bytes, content) = std::mem::take(&mut self.stretch);
        self.damage.skipped_bytes += bytes as u64;
        self.damage.damaged_rows += u64::from(content);
    }

    fn finish(mut self) -> FileDamage {
        self.good();
        self.damage
    }

    /// Takes `line` if it is a good line of either format; `false` (and no
    /// effect) if not.
    fn take(&mut self, line: &[u8]) -> bool {
        let mut f = line.splitn(4, |b| *b == b'\t');
        let (Some(kind), Some(time), Some(key)) = (f.next(), f.next(), f.next()) else {
            return false;
        };
        let rest = f.next();
        match (kind, rest) {
            (b"m" | b"t", Some(rest)) => {
                let Some(slot) = self.name(key) else {
                    return false;
                };
                self.row(kind == b"m", slot, time, rest)
            }
            (b"M" | b"T", Some(rest)) => {
                let Some(i) = parse_usize(key) else {
                    return false;
                };
                let slot = self.table.get(i).copied().unwrap_or(Slot::Unknown);
                if !self.row(kind == b"M", slot, time, rest) {
                    return false;
                }
                self.in_table = false;
                if slot == Slot::Unknown {
                    // Read, but whose? Its name line was lost.
                    self.damage.damaged_rows += 1;
                    self.damage.skipped_bytes += line.len() as u64 + 1;
                }
                true
            }
            (b"N", None) => {
                let (Some(i), Some(name)) = (parse_usize(time), name_of(key)) else {
                    return false;
                };
                if i > 10_000_000 {
                    return false; // not a plausible index: a corrupt line
                }
                if !self.in_table {
                    // A new table (a reload's): indices mean what it says.
                    self.table.clear();
                    self.in_table = true;
                }
                if self.table.len() <= i {
                    self.table.resize(i + 1, Slot::Unknown);
                }
                self.table[i] = self.acc.wanted(name).into();
                true
            }
            _ => false,
        }
    }

    /// What a format 2 row's name stands for; `None`: not a name.
    fn name(&mut self, key: &[u8]) -> Option<Slot> {
        // The next name, or the first again (the next batch).
        let guess = if self.next_name < self.names.len() {
            self.next_name
        } else {
            0
        };
        let at = match self.names.get(guess) {
            Some((n, _)) if **n == *key => guess,
            _ => match self.by_name.get(key) {
                Some(&at) => at,
                None => {
                    let name = name_of(key)?;
                    let slot = self.acc.wanted(name).into();
                    self.names.push((key.into(), slot));
                    self.by_name.insert(key.into(), self.names.len() - 1);
                    self.names.len() - 1
                }
            },
        };
        self.next_name = at + 1;
        Some(self.names[at].1)
    }

    /// A minute (`minute`) or throughput row's fields after its key: fed
    /// to the sink when its target is wanted, checked for shape otherwise.
    fn row(&mut self, minute: bool, slot: Slot, time: &[u8], rest: &[u8]) -> bool {
        let Slot::Wanted(series) = slot else {
            if self.trusted && slot == Slot::Unwanted {
                return true;
            }
            // Shape only: digits (`:`, `,` in the histogram, `.` in
            // seconds) and exactly the row's fields (a throughput row with
            // or without its latency under load).
            return parse_i64(time).is_some()
                && if minute {
                    row_shape(rest, 5)
                } else {
                    row_shape(rest, 2) || row_shape(rest, 2 + LoadedRow::FIELDS)
                };
        };
        let (Some(t), Ok(rest)) = (parse_i64(time), std::str::from_utf8(rest)) else {
            return false;
        };
        let mut f = rest.split('\t');
        if minute {
            let Some(s) = parse_minute(&mut f).filter(|_| f.next().is_none()) else {
                return false;
            };
            self.acc.add_minute_to(series, t, &s);
        } else {
            let (Some(tp), Ok(at)) = (
                parse_throughput(&mut f).filter(|_| f.next().is_none()),
                Timestamp::from_millisecond(t),
            ) else {
                return false;
            };
            self.acc.add_throughput_to(series, Throughput { at, ..tp });
        }
        true
    }
}

fn parse_usize(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 12 {
        return None;
    }
    b.iter().try_fold(0usize, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let n = digits.iter().try_fold(0i64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })?;
    Some(if neg { -n } else { n })
}

/// A minute's fields; `None` unless they hang together (a row cut short
/// or run into garbage rarely does).
fn parse_minute<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Minute> {
    let mut s = Minute {
        probes: f.next()?.parse().ok()?,
        failures: f.next()?.parse().ok()?,
        sum_us: f.next()?.parse().ok()?,
        min_us: f.next()?.parse().ok()?,
        max_us: f.next()?.parse().ok()?,
        ..Minute::default()
    };
    s.set_sparse_hist(f.next()?)?;
    let counted: u64 = s.hist.iter().map(|c| u64::from(*c)).sum();
    (s.failures <= s.probes
        && counted == u64::from(s.successes())
        && (s.successes() == 0 || s.min_us <= s.max_us))
        .then_some(s)
}

/// A throughput row's fields: bytes, seconds, rate, and (rows since issue
/// 22) the latency under load; rows of earlier releases end at the rate.
fn parse_throughput<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Throughput> {
    let mut f = f.peekable();
    let mut t = Throughput {
        at: Timestamp::UNIX_EPOCH,
        bytes: f.next()?.parse().ok()?,
        seconds: f.next()?.parse().ok()?,
        bits_per_second: f.next()?.parse().ok()?,
        loaded: None,
    };
    if f.peek().is_some() {
        t.loaded = Some(LoadedRow::parse(&mut f)?);
    }
    Some(t)
}
