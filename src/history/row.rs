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
    fn wanted(&self, name: &str) -> Option<usize>;
    /// A per-minute summary (`minute` = Unix seconds / 60) of wanted target `series`.
    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute);
    /// A throughput test of wanted target `series`.
    fn add_throughput_to(&mut self, series: usize, t: Throughput);
}
