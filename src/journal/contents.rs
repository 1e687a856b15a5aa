//! What reading a journal yields: its valid lines, every problem by line
//! number, where the chain continues, and what fallback files add to it.

use std::path::PathBuf;

use serde::Serialize;

use crate::journal::chain::{ChainHead, GENESIS, line_hash};
use crate::journal::line::{Entry, Line};

/// What went wrong with one line of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The last line is incomplete (a crash mid-write); it is skipped.
    TornLastLine,
    /// A torn line left by a crash, terminated by the next run (named in its `daemon_start`).
    TornLine,
    /// A line in the middle that is not a valid journal line; skipped.
    Corrupt,
    /// A valid line whose `prev`/`seq` does not continue the chain.
    ChainBroken,
    /// The file ends before, or differs from, a chain head that the heartbeat
    /// or a `daemon_start` named: lines were removed or edited at its end.
    AnchorMissing,
    /// Lines that an exit on a full or stuck disk saved to a fallback file
    /// (`journal.unwritten.*`), read as the chain's continuation; the next
    /// daemon start appends them to the journal. Not a problem.
    Continued,
}

impl WarningKind {
    /// Whether the problem means the journal is not what was written
    /// (a torn line left by a crash is not tampering).
    pub fn is_integrity_failure(self) -> bool {
        matches!(
            self,
            WarningKind::Corrupt | WarningKind::ChainBroken | WarningKind::AnchorMissing
        )
    }
}

/// A problem found while reading the journal, by 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalWarning {
    pub line: u64,
    pub kind: WarningKind,
    pub message: String,
}

impl std::fmt::Display for JournalWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A valid journal line with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberedLine {
    /// 1-based line number in the file.
    pub number: u64,
    pub line: Line,
    /// Hex SHA-256 of the line's bytes.
    pub hash: String,
}

/// Where the next line continues the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTail {
    pub next_seq: u64,
    /// Hash of the last valid line ([`GENESIS`] for an empty journal).
    pub last_hash: String,
    /// The file does not end with a newline: the next write must start with one.
    pub needs_newline: bool,
    /// Line number of a torn last line, if any.
    pub torn_line: Option<u64>,
}

impl Default for ChainTail {
    fn default() -> Self {
        Self {
            next_seq: 0,
            last_hash: GENESIS.to_string(),
            needs_newline: false,
            torn_line: None,
        }
    }
}

/// The parsed journal: valid lines in file order, warnings, and the chain tail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JournalContents {
    pub lines: Vec<NumberedLine>,
    pub warnings: Vec<JournalWarning>,
    /// Where the chain ends: after the continuation's lines when there are any.
    pub tail: ChainTail,
    /// Number of lines in the file (including skipped ones), plus the
    /// continuation's lines (numbered as they will be once appended).
    pub total_lines: u64,
    /// Fallback files left by an exit that could not write everything
    /// (see `fallback`): what continues the chain and where the
    /// journal file itself ends.
    pub continuation: Continuation,
}

impl JournalContents {
    /// The first line where the hash chain is broken.
    pub fn first_chain_break(&self) -> Option<&JournalWarning> {
        self.warnings
            .iter()
            .find(|w| w.kind == WarningKind::ChainBroken)
    }
}

/// One chained line as written (without its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub seq: u64,
    pub prev: String,
    pub bytes: Vec<u8>,
}

impl RawLine {
    /// This line as a chain position.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: line_hash(&self.bytes),
        }
    }
}

/// What fallback files add to the journal file's chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Continuation {
    /// Where the journal file's own chain ends: a writer continues there,
    /// appending [`Self::lines`] first.
    pub file_tail: ChainTail,
    /// Lines past the journal file's end, in chain order.
    pub lines: Vec<RawLine>,
    /// Fallback files whose every line is on the chain once [`Self::lines`]
    /// are appended: removed then.
    pub files: Vec<PathBuf>,
}

/// Appends a valid line; a `daemon_start` naming a torn line relabels it.
pub(crate) fn push_line(out: &mut JournalContents, nl: NumberedLine) {
    if let Entry::DaemonStart(ds) = &nl.line.entry
        && let Some(torn) = ds.torn_line
    {
        for w in out.warnings.iter_mut().filter(|w| w.line == torn) {
            w.kind = WarningKind::TornLine;
            w.message = format!(
                "torn line left by a crash (noted by the daemon_start on line {}), skipped",
                nl.number
            );
        }
    }
    out.lines.push(nl);
}
