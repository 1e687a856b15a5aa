//! The evidence journal: `<data_dir>/journal.jsonl`, append-only JSON lines,
//! fsynced per event, chained by SHA-256 so that a removed, reordered or
//! edited line is detectable; plus the heartbeat file that bounds what is
//! unknown after a crash.
//!
//! Line format: `{"seq":N,"prev":"<hex sha256 of the previous valid line>","ts":"<UTC ms>","event":"…",…}`.
//! The hash covers the previous line's bytes without its newline; the first
//! line's `prev` is 64 zeros. The file is never rewritten: a torn tail left by a
//! crash is terminated with a newline by the next writer and stays in the file
//! as a skipped line, named in that run's `daemon_start` (`torn_line`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::degradation::{DegradedEnded, DegradedResumed, DegradedStarted};
use super::event::{DaemonStart, DaemonStop, OutageEnded, OutageResumed, OutageStarted};
use super::ts_ms;

mod heartbeat;
mod read;
mod write;

pub use heartbeat::{Heartbeat, read_heartbeat, write_heartbeat};
pub use read::{
    ChainTail, JournalContents, JournalWarning, NumberedLine, WarningKind, parse, read,
};
pub use write::{FileSink, JournalCounters, JournalSink, JournalWriter};

/// File name of the journal inside the data directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// File name of the heartbeat inside the data directory.
pub const HEARTBEAT_FILE: &str = "heartbeat";
/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One journal line: the chain envelope and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// 0 for the first line, +1 per line.
    pub seq: u64,
    /// Hex SHA-256 of the previous valid line's bytes (without newline).
    pub prev: String,
    /// Wall-clock time the line was created (UTC, ms).
    #[serde(with = "ts_ms")]
    pub ts: Timestamp,
    #[serde(flatten)]
    pub entry: Entry,
}

/// The journal's events, tagged by `"event"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    DaemonStart(DaemonStart),
    OutageStart(OutageStarted),
    OutageResume(OutageResumed),
    OutageEnd(OutageEnded),
    DaemonStop(DaemonStop),
    DegradedStart(DegradedStarted),
    DegradedResume(DegradedResumed),
    DegradedEnd(DegradedEnded),
}

impl Entry {
    /// The `event` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Entry::DaemonStart(_) => "daemon_start",
            Entry::OutageStart(_) => "outage_start",
            Entry::OutageResume(_) => "outage_resume",
            Entry::OutageEnd(_) => "outage_end",
            Entry::DaemonStop(_) => "daemon_stop",
            Entry::DegradedStart(_) => "degraded_start",
            Entry::DegradedResume(_) => "degraded_resume",
            Entry::DegradedEnd(_) => "degraded_end",
        }
    }
}

/// Hex SHA-256 of one line's bytes (without the newline).
pub fn line_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Makes a new directory entry durable (fsync of the directory).
fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
