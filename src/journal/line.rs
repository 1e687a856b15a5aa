//! One journal line: the chain envelope ([`Line`]) around one record
//! ([`Entry`], tagged by `"event"`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::record::{
    ConfigReload, Corroboration, DaemonStart, DaemonStop, DegradedEnded, DegradedResumed,
    DegradedStarted, InterferenceSeen, JournalReopened, OutageEnded, OutageResumed, OutageStarted,
    PathEvent, Stalled, WitnessReceived, Witnessed,
};
use crate::journal::ts_ms;

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
    /// A traceroute snapshot (see [`crate::journal::record::path`]).
    Path(PathEvent),
    /// The configuration was reloaded (SIGHUP or `POST /-/reload`).
    ConfigReload(ConfigReload),
    /// A peer's journal head received (see [`crate::journal::record::peer`]).
    Witness(WitnessReceived),
    /// Our journal head acknowledged by a peer, with its receipt.
    Witnessed(Witnessed),
    /// What a peer saw of an outage's or slow period's targets.
    Corroboration(Corroboration),
    /// A target showed a sign of interference (see [`crate::interference`]).
    Interference(InterferenceSeen),
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
            Entry::Witness(_) => "witness",
            Entry::Witnessed(_) => "witnessed",
            Entry::Corroboration(_) => "corroboration",
            Entry::Interference(_) => "interference",
        }
    }
}
