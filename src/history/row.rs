//! The rows that the history files hold, as both the file layer (writer,
//! reader) and the query (series, tests) see them, and what a read reports
//! about a file. Below both, so that neither imports the other.

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use super::bucket::{Minute, Tally};

/// One line to write.
#[derive(Debug, Clone)]
pub enum Row {
    /// Target index, the minute's summary.
    Minute(usize, Tally),
    Throughput(usize, Throughput),
}

/// One throughput test as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    #[serde(serialize_with = "ts")]
    pub at: Timestamp,
    pub bytes: u64,
    pub seconds: f64,
    pub bits_per_second: f64,
    /// Latency under load (absent in rows of earlier releases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<LoadedRow>,
}

/// A test's latency under load as the history keeps it (microseconds on
/// disk: `idle p50 p90 samples rpm saturated` after the rate; 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadedRow {
    pub idle_rtt_seconds: Option<f64>,
    pub loaded_rtt_p50_seconds: Option<f64>,
    pub loaded_rtt_p90_seconds: Option<f64>,
    pub latency_increase_seconds: Option<f64>,
    pub samples: u32,
    pub rpm: Option<f64>,
    pub not_saturated: bool,
    /// Bufferbloat grade (A+…F), `None` when not saturated or without samples.
    pub grade: Option<&'static str>,
}

impl LoadedRow {
    /// Fields after a throughput row's rate.
    pub const FIELDS: usize = 6;

    pub fn of(l: &crate::probe::loaded::LoadedLatency) -> Self {
        Self::from_parts(
            l.idle_rtt_seconds,
            l.loaded_rtt_p50_seconds,
            l.loaded_rtt_p90_seconds,
            u32::try_from(l.samples).unwrap_or(u32::MAX),
            l.rpm,
            !l.not_saturated,
        )
    }

    fn from_parts(
        idle: Option<f64>,
        p50: Option<f64>,
        p90: Option<f64>,
        samples: u32,
        rpm: Option<f64>,
        saturated: bool,
    ) -> Self {
        let increase = match (p50, idle) {
            (Some(l), Some(i)) => Some((l - i).max(0.0)),
            _ => None,
        };
        Self {
            idle_rtt_seconds: idle,
            loaded_rtt_p50_seconds: p50,
            loaded_rtt_p90_seconds: p90,
            latency_increase_seconds: increase,
            samples,
            rpm,
            not_saturated: !saturated,
            grade: increase.filter(|_| saturated).map(|s| {
                crate::probe::loaded::Grade::of(std::time::Duration::from_secs_f64(s)).as_str()
            }),
        }
    }

    /// The on-disk values (as [`Self::write`] has them): idle, p50, p90
    /// (µs, 0 = none), samples, RPM (0 = none), saturated (0/1).
    pub fn to_disk(&self) -> [u64; 6] {
        let us = |v: Option<f64>| v.map_or(0, |s| (s * 1e6).round().max(1.0) as u64);
        [
            us(self.idle_rtt_seconds),
            us(self.loaded_rtt_p50_seconds),
            us(self.loaded_rtt_p90_seconds),
            u64::from(self.samples),
            self.rpm.map_or(0, |r| r.round().max(1.0) as u64),
            u64::from(!self.not_saturated),
        ]
    }

    /// Reads [`Self::to_disk`]'s values.
    pub fn from_disk(d: [u64; 6]) -> Option<Self> {
        let us = |v: u64| (v > 0).then(|| v as f64 / 1e6);
        Some(Self::from_parts(
            us(d[0]),
            us(d[1]),
            us(d[2]),
            u32::try_from(d[3]).ok()?,
            (d[4] > 0).then_some(d[4] as f64),
            match d[5] {
                0 => false,
                1 => true,
                _ => return None,
            },
        ))
    }

    /// The on-disk fields (leading tab included).
    pub fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        let us = |v: Option<f64>| v.map_or(0, |s| (s * 1e6).round().max(1.0) as u64);
        let _ = write!(
            out,
            "\t{}\t{}\t{}\t{}\t{}\t{}",
            us(self.idle_rtt_seconds),
            us(self.loaded_rtt_p50_seconds),
            us(self.loaded_rtt_p90_seconds),
            self.samples,
            self.rpm.map_or(0, |r| r.round().max(1.0) as u64),
            u8::from(!self.not_saturated)
        );
    }

    /// Reads [`Self::write`]'s fields.
    pub fn parse<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Self> {
        let mut us = || -> Option<Option<f64>> {
            let v: u64 = f.next()?.parse().ok()?;
            Some((v > 0).then(|| v as f64 / 1e6))
        };
        let (idle, p50, p90) = (us()?, us()?, us()?);
        let samples: u32 = f.next()?.parse().ok()?;
        let rpm: u64 = f.next()?.parse().ok()?;
        let saturated = match f.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        Some(Self::from_parts(
            idle,
            p50,
            p90,
            samples,
            (rpm > 0).then_some(rpm as f64),
            saturated,
        ))
    }
}

/// A history file that could not be read in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDamage {
    /// The file's name in `<data_dir>/history`.
    pub file: String,
    /// Unreadable stretches (each at least part of a row, usually one row),
    /// and rows whose target's name was lost (files of earlier releases).
    pub damaged_rows: u64,
    /// Bytes skipped: unreadable stretches, mangled line ends, such rows.
    pub skipped_bytes: u64,
    /// Why the file could not be read at all (it is not a file, no
    /// permission, …); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileDamage {
    /// Anything skipped or unreadable.
    pub fn is_damaged(&self) -> bool {
        self.damaged_rows > 0 || self.skipped_bytes > 0 || self.error.is_some()
    }
}

pub(super) fn ts<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:.3}", t))
}

/// What the file reader feeds rows of the wanted targets to.
pub trait RowSink {
    /// The index of target `name`, if it is wanted.
    fn wanted(&mut self, name: &str) -> Option<usize>;
    /// The wanted targets with their indices; `None`: every target (the
    /// sealed files' readers look these up in each file's index).
    fn wanted_names(&self) -> Option<Vec<(String, usize)>>;
    /// A per-minute summary (`minute` = Unix seconds / 60) of wanted target `series`.
    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute);
    /// A throughput test of wanted target `series`.
    fn add_throughput_to(&mut self, series: usize, t: Throughput);
    /// An hour's summary (`hour` = Unix seconds / 3600) of wanted target
    /// `series`, with the minutes of it that were monitored.
    fn add_hour_to(&mut self, series: usize, hour: i64, s: &Minute, minutes: u32);
}
