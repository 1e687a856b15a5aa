//! Sealed files: the history of a span that is over, indexed by target.
//!
//! Two kinds, one layout:
//! - `<YYYY-MM-DD>T<HH>.m.lwx`: one UTC hour of minutes (the records' offset
//!   is the minute of the hour), written when the hour is over;
//! - `<YYYY-MM-DD>.h.lwx`: one UTC day of hourly summaries (the offset is the
//!   hour of the day; each record also says how many minutes were
//!   monitored), written from the day's minute files when the day is over.
//!
//! Little endian. A 32-byte header (`LWX1`, kind, version, the span's start
//! in Unix hours, targets, length of the names, a check of the header), a
//! table of 40-byte entries sorted by name (where the name is, the
//! section's offset, length, records, tests, the section's check, the
//! entry's own check), the names, then one section per target: its records
//! (LEB128 varints: offset, probes, failures, RTT sum, min, max, [minutes],
//! non-empty buckets as (bucket, count)) and its throughput tests. A read
//! binary-searches the table for each wanted target and reads only its
//! section: the cost is the files touched and the points read, whatever
//! the other targets hold. Files are written whole to a temporary name,
//! fsynced and renamed: a torn file is a damaged one (checks), and a
//! damaged entry or section costs only that target's rows of that span.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use jiff::Timestamp;

use super::bucket::{BUCKETS, Minute};
use super::row::{LoadedRow, Throughput};

pub const EXT: &str = "lwx";
const MAGIC: &[u8; 4] = b"LWX1";
const VERSION: u8 = 1;
const HEADER: usize = 32;
const ENTRY: usize = 40;

/// Which layer a sealed file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// One hour of minutes.
    Minutes,
    /// One day of hours.
    Hours,
}

impl Layer {
    fn tag(self) -> u8 {
        match self {
            Layer::Minutes => b'm',
            Layer::Hours => b'h',
        }
    }

    /// Seconds per record.
    pub fn unit(self) -> i64 {
        match self {
            Layer::Minutes => 60,
            Layer::Hours => 3600,
        }
    }
}

/// The UTC date of Unix hour `hour`.
pub fn date_of_hour(hour: i64) -> Option<jiff::civil::Date> {
    Some(
        Timestamp::from_second(hour.checked_mul(3600)?)
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
    )
}

/// The Unix hour a date starts at.
pub fn hour_of_date(d: jiff::civil::Date) -> Option<i64> {
    let z = d.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(z.timestamp().as_second().div_euclid(3600))
}

/// The file name of a sealed span: `start` in Unix hours (a day's first
/// hour for [`Layer::Hours`]).
pub fn file_name(layer: Layer, start: i64) -> Option<String> {
    let d = date_of_hour(start)?;
    Some(match layer {
        Layer::Minutes => format!("{d}T{:02}.m.{EXT}", start.rem_euclid(24)),
        Layer::Hours => format!("{d}.h.{EXT}"),
    })
}

/// The layer and start (Unix hours) of a sealed file's name.
pub fn parse_name(name: &str) -> Option<(Layer, i64)> {
    let rest = name.strip_suffix(EXT)?.strip_suffix('.')?;
    if let Some(day) = rest.strip_suffix(".h") {
        return Some((Layer::Hours, hour_of_date(day.parse().ok()?)?));
    }
    let (day, hh) = rest.strip_suffix(".m")?.split_once('T')?;
    let hh: i64 = hh.parse().ok().filter(|h| (0..24).contains(h))?;
    (hh.to_string().len() <= 2 && day.len() == 10).then_some(())?;
    Some((Layer::Minutes, hour_of_date(day.parse().ok()?)? + hh))
}

/// FNV-1a, 64 bits: finds a changed byte (bit rot, an edit, a torn copy).
pub fn check(seed: u64, b: &[u8]) -> u64 {
    let mut h = seed;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if shift > 63 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
}

fn get32(b: &[u8], pos: &mut usize) -> Option<u32> {
    u32::try_from(get(b, pos)?).ok()
}

/// Appends one record: `off` (minute of the hour, or hour of the day),
/// the summary, and for hourly records the monitored minutes.
pub fn put_record(out: &mut Vec<u8>, off: u32, m: &Minute, minutes: Option<u32>) {
    put(out, u64::from(off));
    put(out, u64::from(m.probes));
    put(out, u64::from(m.failures));
    put(out, m.sum_us);
    put(out, u64::from(m.min_us));
    put(out, u64::from(m.max_us));
    if let Some(n) = minutes {
        put(out, u64::from(n));
    }
    let n = m.hist.iter().filter(|c| **c > 0).count();
    out.push(n as u8);
    for (i, &c) in m.hist.iter().enumerate() {
        if c > 0 {
            out.push(i as u8);
            put(out, u64::from(c));
        }
    }
}

/// One decoded record.
pub struct Record {
    pub off: u32,
    pub summary: Minute,
    /// Monitored minutes (hourly records; 1 for a minute).
    pub minutes: u32,
}

fn get_record(b: &[u8], pos: &mut usize, hourly: bool) -> Option<Record> {
    let off = get32(b, pos)?;
    let mut m = Minute {
        probes: get32(b, pos)?,
        failures: get32(b, pos)?,
        sum_us: get(b, pos)?,
        min_us: get32(b, pos)?,
        max_us: get32(b, pos)?,
        ..Minute::default()
    };
    let minutes = if hourly { get32(b, pos)? } else { 1 };
    let n = *b.get(*pos)?;
    *pos += 1;
    for _ in 0..n {
        let i = usize::from(*b.get(*pos)?);
        *pos += 1;
        if i > BUCKETS.len() {
            return None;
        }
        m.hist[i] = get32(b, pos)?;
    }
    (m.failures <= m.probes).then_some(Record {
        off,
        summary: m,
        minutes,
    })
}

/// Appends one throughput test; `base_ms`: the file's start.
pub fn put_test(out: &mut Vec<u8>, base_ms: i64, t: &Throughput) {
    let d = t.at.as_millisecond() - base_ms;
    put(out, ((d << 1) ^ (d >> 63)) as u64);
    put(out, t.bytes);
    out.extend_from_slice(&t.seconds.to_le_bytes());
    out.extend_from_slice(&t.bits_per_second.to_le_bytes());
    match &t.loaded {
        None => out.push(0),
        Some(l) => {
            out.push(1);
            let d = l.to_disk();
            for v in &d[..5] {
                put(out, *v);
            }
            out.push(u8::from(d[5] != 0));
        }
    }
}

fn get_f64(b: &[u8], pos: &mut usize) -> Option<f64> {
    let s = b.get(*pos..*pos + 8)?;
    *pos += 8;
    Some(f64::from_le_bytes(s.try_into().ok()?))
}

fn get_test(b: &[u8], pos: &mut usize, base_ms: i64) -> Option<Throughput> {
    let z = get(b, pos)?;
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    let at = Timestamp::from_millisecond(base_ms.checked_add(d)?).ok()?;
    let bytes = get(b, pos)?;
    let seconds = get_f64(b, pos)?;
    let bits_per_second = get_f64(b, pos)?;
    let flag = *b.get(*pos)?;
    *pos += 1;
    let loaded = match flag {
        0 => None,
        1 => {
            let mut d = [0u64; 6];
            for v in &mut d[..5] {
                *v = get(b, pos)?;
            }
            d[5] = u64::from(*b.get(*pos)?);
            *pos += 1;
            Some(LoadedRow::from_disk(d)?)
        }
        _ => return None,
    };
    Some(Throughput {
        at,
        bytes,
        seconds,
        bits_per_second,
        loaded,
    })
}

/// One target's section as the writer has it.
pub struct Section {
    pub name: String,
    pub bytes: Vec<u8>,
    pub records: u32,
    pub tests: u32,
}

/// A whole sealed file: header, table, names, sections (sorted by name here).
pub fn build(layer: Layer, start: i64, mut sections: Vec<Section>) -> Vec<u8> {
    sections.sort_by(|a, b| a.name.cmp(&b.name));
    sections.dedup_by(|a, b| a.name == b.name);
    let names_len: usize = sections.iter().map(|s| s.name.len()).sum();
    let data_start = HEADER + ENTRY * sections.len() + names_len;
    let total = data_start + sections.iter().map(|s| s.bytes.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.push(layer.tag());
    out.push(VERSION);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    out.extend_from_slice(&(names_len as u32).to_le_bytes());
    let h = check(SEED, &out);
    out.extend_from_slice(&h.to_le_bytes());
    let (mut name_at, mut data_at) = (HEADER + ENTRY * sections.len(), data_start);
    for s in &sections {
        let mut e = Vec::with_capacity(ENTRY);
        e.extend_from_slice(&(name_at as u32).to_le_bytes());
        e.extend_from_slice(&(s.name.len() as u32).to_le_bytes());
        e.extend_from_slice(&(data_at as u64).to_le_bytes());
        e.extend_from_slice(&(s.bytes.len() as u32).to_le_bytes());
        e.extend_from_slice(&s.records.to_le_bytes());
        e.extend_from_slice(&s.tests.to_le_bytes());
        e.extend_from_slice(&(check(SEED, &s.bytes) as u32).to_le_bytes());
        let c = check(check(SEED, &e), s.name.as_bytes());
        e.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&e);
        name_at += s.name.len();
        data_at += s.bytes.len();
    }
    for s in &sections {
        out.extend_from_slice(s.name.as_bytes());
    }
    for s in &sections {
        out.extend_from_slice(&s.bytes);
    }
    out
}

/// Writes `bytes` as `path`: a temporary file, fsynced, renamed (the
/// directory is fsynced by the caller once per batch).
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// A table entry, checked.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name_at: usize,
    name_len: usize,
    offset: u64,
    len: usize,
    records: u32,
    tests: u32,
    check: u32,
}

/// An open sealed file: its header and table read, sections on demand.
pub struct Sealed {
    file: File,
    pub layer: Layer,
    /// Start of the span, Unix hours.
    pub start: i64,
    /// Table and names.
    index: Vec<u8>,
    n: usize,
}

/// What a lookup found.
pub enum Found<T> {
    Yes(T),
    No,
    /// Entries that do not check: whose rows they are is not known.
    Damaged(u64),
}

/// A section read back.
pub struct Contents {
    pub records: Vec<Record>,
    pub tests: Vec<Throughput>,
}

impl Sealed {
    /// Opens and checks the header; reads the table and names.
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let mut h = [0u8; HEADER];
        file.read_exact(&mut h)
            .map_err(|e| format!("header unreadable: {e}"))?;
        let stored = u64::from_le_bytes(h[24..32].try_into().unwrap_or_default());
        if &h[..4] != MAGIC || check(SEED, &h[..24]) != stored {
            return Err("not a sealed history file, or its header is damaged".into());
        }
        if h[5] != VERSION {
            return Err(format!("sealed history file version {} is unknown", h[5]));
        }
        let layer = match h[4] {
            b'm' => Layer::Minutes,
            b'h' => Layer::Hours,
            k => return Err(format!("unknown layer {k}")),
        };
        let start = i64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(h[16..20].try_into().unwrap_or_default()) as usize;
        let names = u32::from_le_bytes(h[20..24].try_into().unwrap_or_default()) as usize;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let want = n
            .checked_mul(ENTRY)
            .and_then(|t| t.checked_add(names))
            .filter(|w| (*w as u64) <= len.saturating_sub(HEADER as u64))
            .ok_or("the table is longer than the file (a torn file)")?;
        let mut index = vec![0u8; want];
        file.read_exact(&mut index)
            .map_err(|e| format!("table unreadable: {e}"))?;
        Ok(Self {
            file,
            layer,
            start,
            index,
            n,
        })
    }

    fn entry(&self, i: usize) -> Option<Entry> {
        let b = self.index.get(i * ENTRY..(i + 1) * ENTRY)?;
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
        let e = Entry {
            name_at: u32_at(0) as usize,
            name_len: u32_at(4) as usize,
            offset: u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()),
            len: u32_at(16) as usize,
            records: u32_at(20),
            tests: u32_at(24),
            check: u32_at(28),
        };
        let stored = u64::from_le_bytes(b[32..40].try_into().unwrap_or_default());
        let name = self.name_bytes(&e)?;
        (check(check(SEED, &b[..32]), name) == stored).then_some(e)
    }

    fn name_bytes(&self, e: &Entry) -> Option<&[u8]> {
        let at = e.name_at.checked_sub(HEADER)?;
        self.index.get(at..at.checked_add(e.name_len)?)
    }

    /// Every target name in the file (entries that check).
    pub fn names(&self) -> Vec<String> {
        (0..self.n)
            .filter_map(|i| self.entry(i))
            .filter_map(|e| Some(String::from_utf8_lossy(self.name_bytes(&e)?).into_owned()))
            .collect()
    }

    /// Entries that do not check.
    pub fn bad_entries(&self) -> u64 {
        (0..self.n).filter(|i| self.entry(*i).is_none()).count() as u64
    }

    /// The section of target `name`: binary search, then (when an entry on
    /// the way does not check) every entry in turn.
    fn find(&self, name: &str) -> Found<Entry> {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let Some(e) = self.entry(mid) else {
                return self.scan(name);
            };
            match self.name_bytes(&e).map(|n| n.cmp(name.as_bytes())) {
                Some(std::cmp::Ordering::Equal) => return Found::Yes(e),
                Some(std::cmp::Ordering::Less) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Found::No
    }

    fn scan(&self, name: &str) -> Found<Entry> {
        let mut bad = 0;
        for i in 0..self.n {
            match self.entry(i) {
                Some(e) if self.name_bytes(&e) == Some(name.as_bytes()) => return Found::Yes(e),
                Some(_) => {}
                None => bad += 1,
            }
        }
        if bad > 0 {
            Found::Damaged(bad)
        } else {
            Found::No
        }
    }

    /// Target `name`'s records and tests. `Damaged(bytes)`: its section
    /// (or an entry on the way to it) does not check.
    pub fn read(&self, name: &str) -> Found<Contents> {
        let e = match self.find(name) {
            Found::Yes(e) => e,
            Found::No => return Found::No,
            Found::Damaged(n) => return Found::Damaged(n),
        };
        let mut buf = vec![0u8; e.len];
        if self.file.read_exact_at(&mut buf, e.offset).is_err()
            || check(SEED, &buf) as u32 != e.check
        {
            return Found::Damaged(e.len as u64);
        }
        let hourly = self.layer == Layer::Hours;
        let base_ms = self.start * 3_600_000;
        let mut pos = 0;
        let mut records = Vec::with_capacity(e.records as usize);
        for _ in 0..e.records {
            match get_record(&buf, &mut pos, hourly) {
                Some(r) => records.push(r),
                None => return Found::Damaged(e.len as u64),
            }
        }
        let mut tests = Vec::with_capacity(e.tests as usize);
        for _ in 0..e.tests {
            match get_test(&buf, &mut pos, base_ms) {
                Some(t) => tests.push(t),
                None => return Found::Damaged(e.len as u64),
            }
        }
        Found::Yes(Contents { records, tests })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let h = 493_000;
        let n = file_name(Layer::Minutes, h).unwrap();
        assert_eq!(parse_name(&n), Some((Layer::Minutes, h)));
        let d = h - h.rem_euclid(24);
        let n = file_name(Layer::Hours, d).unwrap();
        assert_eq!(parse_name(&n), Some((Layer::Hours, d)));
        assert_eq!(parse_name("2026-12-01.1234.lwh"), None);
    }

    #[test]
    fn sections_round_trip_and_damage_costs_one_target() {
        let mut m = Minute::default();
        m.add(Some(std::time::Duration::from_millis(12)));
        m.add(None);
        let sections: Vec<Section> = ["b", "a", "c"]
            .iter()
            .map(|n| {
                let mut bytes = Vec::new();
                put_record(&mut bytes, 3, &m, Some(2));
                put_test(
                    &mut bytes,
                    3_600_000,
                    &Throughput {
                        at: Timestamp::from_millisecond(3_600_500).unwrap(),
                        bytes: 9,
                        seconds: 1.5,
                        bits_per_second: 48.0,
                        loaded: None,
                    },
                );
                Section {
                    name: n.to_string(),
                    bytes,
                    records: 1,
                    tests: 1,
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lwx");
        let mut file = build(Layer::Hours, 1, sections);
        write_file(&path, &file).unwrap();
        let s = Sealed::open(&path).unwrap();
        for n in ["a", "b", "c"] {
            let Found::Yes(c) = s.read(n) else { panic!() };
            assert_eq!(c.records[0].summary, m);
            assert_eq!(c.records[0].minutes, 2);
            assert_eq!(c.tests[0].bits_per_second, 48.0);
        }
        assert!(matches!(s.read("zz"), Found::No));
        // The last byte is in c's section: only c is damaged.
        let last = file.len() - 1;
        file[last] ^= 0xff;
        write_file(&path, &file).unwrap();
        let s = Sealed::open(&path).unwrap();
        assert!(matches!(s.read("a"), Found::Yes(_)));
        assert!(matches!(s.read("c"), Found::Damaged(_)));
        // A torn file: the header says more than there is.
        write_file(&path, &file[..40]).unwrap();
        assert!(Sealed::open(&path).is_err());
    }
}
