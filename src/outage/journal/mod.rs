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
//!
//! One writer per data directory (see [`super::lock`]); the writer runs on a
//! thread of its own behind a bounded queue ([`JournalQueue`]), so probing,
//! metrics and the API never wait for `fsync`. It checks before each line and
//! each heartbeat that the path still names the file it has open; when it does
//! not (a `mv` or `rm`), it reopens the path and continues the same chain with
//! a `journal_reopened` line. The heartbeat and the next `daemon_start` carry
//! the chain head, so lines removed from the end fail `--verify`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::degradation::{DegradedEnded, DegradedResumed, DegradedStarted};
use super::event::{
    ConfigReload, DaemonStart, DaemonStop, JournalReopened, OutageEnded, OutageResumed,
    OutageStarted, Stalled,
};
use super::ts_ms;
use crate::path::PathEvent;

pub mod child;
pub mod fallback;
mod heartbeat;
pub mod metrics;
mod queue;
mod read;
mod write;

pub use super::chain::{ChainHead, GENESIS, line_hash};

pub use fallback::{Continuation, RawLine};
pub use heartbeat::{Heartbeat, read_heartbeat, write_heartbeat};
pub use queue::{JournalHealth, JournalPusher, JournalQueue, QueueOptions, STALL_BOUND};
pub use read::{
    ChainTail, JournalContents, JournalWarning, NumberedLine, WarningKind, check_anchors, parse,
    read,
};
pub use write::{FileId, FileSink, JournalCounters, JournalSink, JournalWriter, Replaced};

/// File name of the journal inside the data directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// File name of the heartbeat inside the data directory.
pub const HEARTBEAT_FILE: &str = "heartbeat";

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
    JournalReopened(JournalReopened),
    /// A period the running daemon observed nothing (a gap; not monitored time).
    Stall(Stalled),
    /// A traceroute snapshot (see [`crate::path`]).
    Path(PathEvent),
    /// The configuration was reloaded (SIGHUP or `POST /-/reload`).
    ConfigReload(ConfigReload),
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
            Entry::JournalReopened(_) => "journal_reopened",
            Entry::Stall(_) => "stall",
            Entry::Path(_) => "path",
            Entry::ConfigReload(_) => "config_reload",
        }
    }
}

/// Makes a new directory entry durable (fsync of the directory).
fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
