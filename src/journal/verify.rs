//! `linkwatch outages --verify`: the hash chain check of a loaded journal.

use std::path::Path;

use serde::Serialize;

use crate::journal::chain::ChainHead;
use crate::journal::contents::{JournalWarning, WarningKind};
use crate::journal::ledger::{Ledger, ReadError};

/// The result of `linkwatch outages --verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Lines in the file.
    pub lines: u64,
    /// Lines that parsed and were checked.
    pub valid: u64,
    /// The first line whose hash chain link is broken.
    pub first_broken_line: Option<u64>,
    /// Every problem, by line number.
    pub problems: Vec<JournalWarning>,
    /// The last line of the chain, to hold against a witness (the metrics
    /// `linkwatch_journal_events_total` and `linkwatch_journal_head_info`).
    pub head: Option<ChainHead>,
}

impl VerifyReport {
    /// The chain check of a loaded journal.
    pub fn of(history: &Ledger) -> Self {
        Self {
            lines: history.total_lines,
            valid: history.valid_lines,
            first_broken_line: history.first_chain_break().map(|w| w.line),
            problems: history.warnings.clone(),
            head: history.head(),
        }
    }

    /// No broken link and no corrupt line (a torn line left by a crash is not tampering).
    pub fn ok(&self) -> bool {
        self.first_broken_line.is_none()
            && !self.problems.iter().any(|p| p.kind.is_integrity_failure())
    }

    /// Human summary, one problem per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.ok() {
            out.push_str(&format!(
                "journal ok: {} lines, hash chain intact\n",
                self.valid
            ));
            if let Some(h) = &self.head {
                out.push_str(&format!("head: seq {} hash {}\n", h.seq, h.hash));
            }
        } else {
            match self.first_broken_line {
                Some(n) => {
                    out.push_str(&format!("journal NOT ok: hash chain broken at line {n}\n"))
                }
                None if self
                    .problems
                    .iter()
                    .any(|p| p.kind == WarningKind::AnchorMissing) =>
                {
                    out.push_str(
                        "journal NOT ok: its end does not hold the chain head recorded earlier\n",
                    )
                }
                None => out.push_str("journal NOT ok: corrupt lines\n"),
            }
        }
        for p in &self.problems {
            out.push_str(&format!("  {p}\n"));
        }
        out
    }
}

/// Checks the journal's hash chain and names every problem by line number.
pub fn verify(data_dir: &Path) -> Result<VerifyReport, ReadError> {
    Ok(VerifyReport::of(&Ledger::load(data_dir)?))
}
