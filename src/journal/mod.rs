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
//! One writer per data directory (see [`lock`]); the writer runs on a
//! thread of its own behind a bounded queue ([`JournalQueue`]), so probing,
//! metrics and the API never wait for `fsync`. It checks before each line and
//! each heartbeat that the path still names the file it has open; when it does
//! not (a `mv` or `rm`), it reopens the path and continues the same chain with
//! a `journal_reopened` line. The heartbeat and the next `daemon_start` carry
//! the chain head, so lines removed from the end fail `--verify`.

//! **The journal knows no producer.** The records it carries ([`record`]) are
//! defined here; the outage detector, the slow-period tracker, the path
//! tracer and the service build them and hand them to the [`JournalQueue`].
//! Names: a *slow period* in code and docs is `degraded_*` in the journal,
//! `/api/v1/degradations` in the API and `linkwatch_*degraded*` in the
//! metrics (contract names, unchanged).
//!
//! The read model is the [`Ledger`] (`ledger`): the journal and heartbeat
//! replayed into runs, outages, slow periods, stalls and path snapshots.
//!
//! Files, from the ground up: [`ts_ms`] and `chain` (line hashing),
//! [`record`] (the journaled types), `line` (envelope and `Entry`),
//! `disk` (file names, durable writes), [`child`] (the `__journal-io`
//! writer child), `contents` (what a read yields), `fallback` (lines
//! saved when the journal refuses them), `read` (parse, check, anchors),
//! `heartbeat`, `write` (the writer), `queue` (its thread), [`metrics`],
//! [`lock`] (one writer per data directory), `anchor` (this run's time
//! origin), `ledger` (the read model) and `verify` (`--verify`).

mod anchor;
mod chain;
pub mod child;
mod contents;
mod disk;
mod fallback;
mod heartbeat;
mod ledger;
mod line;
pub mod lock;
pub mod metrics;
mod queue;
mod read;
pub mod record;
pub mod tail;
pub mod ts_ms;
mod verify;
mod write;

pub use anchor::Anchor;
pub use chain::{ChainHead, GENESIS, line_hash};
pub use contents::{
    ChainTail, Continuation, JournalContents, JournalWarning, NumberedLine, RawLine, WarningKind,
};
pub use disk::{HEARTBEAT_FILE, JOURNAL_FILE, journal_path};
pub use heartbeat::{Heartbeat, read_heartbeat, write_heartbeat};
#[cfg(test)]
pub(crate) use ledger::peer_fixture;
pub use ledger::{
    Corroborations, DESTINATION, Elsewhere, Ledger, OpenOutage, OpenSlowPeriod, OutageRecord,
    PeerJudgement, PeerWitnessReceived, PeerWitnessed, ReadError, Run, RunConfig, SlowPeriodLedger,
    SlowPeriodRecord, Witnesses, loss_text, target_word, verdict_word,
};
pub use line::{Entry, Line};
pub use lock::{DataDirLock, Liveness, LockError};
pub use queue::{JournalHealth, JournalPusher, JournalQueue, QueueOptions, STALL_BOUND};
pub use read::{check_anchors, last_seq, parse, read};
pub use record::*;
pub use verify::{VerifyReport, verify};
pub use write::{FileId, FileSink, JournalCounters, JournalSink, JournalWriter, Replaced};

#[cfg(test)]
mod tests;
