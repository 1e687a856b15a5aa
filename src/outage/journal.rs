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

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::{DaemonStart, DaemonStop, OutageEnded, OutageResumed, OutageStarted};

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

/// Serde helpers: timestamps as UTC RFC 3339 with exactly three fractional digits.
pub mod ts_ms {
    use jiff::{Timestamp, Unit};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Formats `ts` truncated to milliseconds, e.g. `2026-11-01T10:02:13.000Z`.
    pub fn format(ts: &Timestamp) -> String {
        let t = ts
            .round(
                jiff::TimestampRound::new()
                    .smallest(Unit::Millisecond)
                    .mode(jiff::RoundMode::Trunc),
            )
            .unwrap_or(*ts);
        format!("{t:.3}")
    }

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Timestamp>` (`null` when absent).
    pub mod option {
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match ts {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| s.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

// ---------------------------------------------------------------------------
// Reading

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
    pub tail: ChainTail,
    /// Number of lines in the file (including skipped ones).
    pub total_lines: u64,
}

impl JournalContents {
    /// The first line where the hash chain is broken.
    pub fn first_chain_break(&self) -> Option<&JournalWarning> {
        self.warnings
            .iter()
            .find(|w| w.kind == WarningKind::ChainBroken)
    }
}

/// Reads `<data_dir>/journal.jsonl`; a missing file is an empty journal.
pub fn read(data_dir: &Path) -> io::Result<JournalContents> {
    let path = data_dir.join(JOURNAL_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(JournalContents::default()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("failed to read journal {}: {e}", path.display()),
        )),
    }
}

/// Parses journal bytes. Never fails: every problem becomes a [`JournalWarning`].
pub fn parse(bytes: &[u8]) -> JournalContents {
    let mut out = JournalContents::default();
    let ends_with_newline = bytes.last().is_none_or(|b| *b == b'\n');
    let mut segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if ends_with_newline {
        // `split` yields an empty segment after the final newline.
        segments.pop();
    }
    let count = segments.len();
    out.total_lines = count as u64;
    let mut prev_hash = GENESIS.to_string();
    let mut next_seq = 0u64;
    let mut after_corrupt: Option<u64> = None;
    let mut prev_number: Option<u64> = None;
    for (i, raw) in segments.into_iter().enumerate() {
        let number = i as u64 + 1;
        let is_last_unterminated = i + 1 == count && !ends_with_newline;
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|s| serde_json::from_str::<Line>(s).map_err(|e| e.to_string()));
        let line = match (parsed, is_last_unterminated) {
            (Ok(line), false) => line,
            // A complete, chained line that only lacks its newline is kept.
            (Ok(line), true) if line.prev == prev_hash => line,
            (_, true) => {
                out.tail.torn_line = Some(number);
                out.warnings.push(JournalWarning {
                    line: number,
                    kind: WarningKind::TornLastLine,
                    message: format!(
                        "incomplete last line ({} bytes, no newline; a crash mid-write), skipped",
                        raw.len()
                    ),
                });
                continue;
            }
            (Err(msg), false) => {
                out.warnings.push(JournalWarning {
                    line: number,
                    kind: WarningKind::Corrupt,
                    message: format!("corrupt line skipped: {msg}"),
                });
                after_corrupt = Some(number);
                continue;
            }
        };
        if line.prev != prev_hash || line.seq != next_seq {
            let why = if line.prev != prev_hash {
                match after_corrupt {
                    Some(c) => format!(
                        "hash chain broken: prev does not match the last valid line (line {c} before it is corrupt)"
                    ),
                    None => match prev_number {
                        Some(p) => format!(
                            "hash chain broken: prev does not match the hash of line {p} (a line was edited, removed or inserted)"
                        ),
                        None => "hash chain broken: the first line's prev is not the genesis value"
                            .to_string(),
                    },
                }
            } else {
                format!(
                    "hash chain broken: seq {} where {next_seq} was expected",
                    line.seq
                )
            };
            out.warnings.push(JournalWarning {
                line: number,
                kind: WarningKind::ChainBroken,
                message: why,
            });
        }
        after_corrupt = None;
        prev_number = Some(number);
        prev_hash = line_hash(raw);
        next_seq = line.seq + 1;
        if let Entry::DaemonStart(ds) = &line.entry
            && let Some(torn) = ds.torn_line
        {
            for w in out.warnings.iter_mut().filter(|w| w.line == torn) {
                w.kind = WarningKind::TornLine;
                w.message = format!(
                    "torn line left by a crash (noted by the daemon_start on line {number}), skipped"
                );
            }
        }
        out.lines.push(NumberedLine { number, line });
    }
    out.tail.next_seq = next_seq;
    out.tail.last_hash = prev_hash;
    out.tail.needs_newline = !ends_with_newline;
    out
}

// ---------------------------------------------------------------------------
// Writing

/// Where journal lines go. The seam that lets tests inject disk errors.
pub trait JournalSink: Send {
    /// Appends `bytes` (whole lines, newline included) and makes them durable.
    /// On error nothing of `bytes` may remain visible as a complete line.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// The real sink: an `O_APPEND` file, `fdatasync` after every write.
pub struct FileSink {
    file: File,
    path: PathBuf,
    /// Length of the durable content; a failed write is cut back to it.
    len: u64,
    /// A failed write could not be cut back: start the next one on a fresh line.
    dirty: bool,
}

impl FileSink {
    /// Opens (creating if needed) `<data_dir>/journal.jsonl` for appending.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let path = data_dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("failed to open journal {}: {e}", path.display()),
                )
            })?;
        if !existed {
            // The new directory entry must survive a power loss too.
            sync_dir(data_dir)?;
        }
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            path,
            len,
            dirty: false,
        })
    }
}

impl JournalSink for FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(bytes.len() + 1);
        if self.dirty {
            buf.push(b'\n');
        }
        buf.extend_from_slice(bytes);
        let result = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.dirty = false;
                Ok(())
            }
            Err(e) => {
                // Undo our own partial write (never committed data) so the retry
                // does not leave a fragment in the middle of the journal.
                if self.file.set_len(self.len).is_err() {
                    self.dirty = true;
                }
                Err(io::Error::new(
                    e.kind(),
                    format!("failed to append to journal {}: {e}", self.path.display()),
                ))
            }
        }
    }
}

/// Counters the writer updates (`linkwatch_journal_writes_total`, `…_errors_total`).
#[derive(Clone)]
pub struct JournalCounters {
    pub writes: IntCounter,
    pub errors: IntCounter,
}

/// Appends chained lines through a [`JournalSink`]; lines that could not be
/// written stay queued in memory, in order, and are retried by [`Self::flush`].
pub struct JournalWriter {
    sink: Box<dyn JournalSink>,
    next_seq: u64,
    last_hash: String,
    pending: VecDeque<Vec<u8>>,
    counters: JournalCounters,
    failing: bool,
}

impl JournalWriter {
    /// Continues the chain at `tail` (from [`read`]).
    pub fn new(sink: Box<dyn JournalSink>, tail: &ChainTail, counters: JournalCounters) -> Self {
        let mut pending = VecDeque::new();
        if tail.needs_newline {
            // Terminate a torn tail so it stays a line of its own.
            pending.push_back(b"\n".to_vec());
        }
        Self {
            sink,
            next_seq: tail.next_seq,
            last_hash: tail.last_hash.clone(),
            pending,
            counters,
            failing: false,
        }
    }

    /// Chains, queues and tries to write one event. `Ok` means it (and every
    /// line queued before it) is durable; `Err` means it is queued for retry.
    pub fn append(&mut self, ts: Timestamp, entry: Entry) -> io::Result<Line> {
        let line = Line {
            seq: self.next_seq,
            prev: self.last_hash.clone(),
            ts,
            entry,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(io::Error::other)?;
        self.last_hash = line_hash(&bytes);
        self.next_seq += 1;
        bytes.push(b'\n');
        self.pending.push_back(bytes);
        self.flush()?;
        Ok(line)
    }

    /// Writes queued lines in order; stops at the first error (counted, kept queued).
    pub fn flush(&mut self) -> io::Result<()> {
        while let Some(bytes) = self.pending.front() {
            match self.sink.append(bytes) {
                Ok(()) => {
                    if bytes.len() > 1 {
                        self.counters.writes.inc();
                    }
                    self.pending.pop_front();
                }
                Err(e) => {
                    self.counters.errors.inc();
                    if !self.failing {
                        tracing::error!(error = %e, pending = self.pending.len(), "journal write failed; events are kept in memory and retried");
                    } else {
                        tracing::debug!(error = %e, pending = self.pending.len(), "journal write retry failed");
                    }
                    self.failing = true;
                    return Err(e);
                }
            }
        }
        if self.failing {
            tracing::info!("journal writes succeed again; queued events written");
            self.failing = false;
        }
        Ok(())
    }

    /// Lines queued in memory, not yet durable.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Sequence number the next line gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

// ---------------------------------------------------------------------------
// Heartbeat

/// The heartbeat file's content: the last moment the daemon was known alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `seq` of this run's `daemon_start` line.
    pub run: u64,
    #[serde(with = "ts_ms")]
    pub wall: Timestamp,
    /// Milliseconds since the run started, by the monotonic clock.
    pub mono_ms: u64,
    pub pid: u32,
}

/// Replaces `<data_dir>/heartbeat` atomically (temp file, fsync, rename, fsync dir).
pub fn write_heartbeat(data_dir: &Path, hb: &Heartbeat) -> io::Result<()> {
    let path = data_dir.join(HEARTBEAT_FILE);
    // A unique temporary name: an older write still in flight must not collide.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = data_dir.join(format!(".{HEARTBEAT_FILE}.{}.{n}.tmp", std::process::id()));
    let bytes = serde_json::to_vec(hb).map_err(io::Error::other)?;
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(data_dir)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io::Error::new(
            e.kind(),
            format!("failed to write heartbeat {}: {e}", path.display()),
        )
    })
}

/// Reads the heartbeat; `Ok(None)` when there is none, `Err` with a message when unreadable.
pub fn read_heartbeat(data_dir: &Path) -> Result<Option<Heartbeat>, String> {
    let path = data_dir.join(HEARTBEAT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("failed to parse heartbeat {}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("failed to read heartbeat {}: {e}", path.display())),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::outage::event::DaemonStop;

    fn counters() -> JournalCounters {
        JournalCounters {
            writes: IntCounter::new("w", "w").unwrap(),
            errors: IntCounter::new("e", "e").unwrap(),
        }
    }

    fn stop(n: usize) -> Entry {
        Entry::DaemonStop(DaemonStop {
            open_outages: vec![format!("o{n}")],
        })
    }

    /// Writes `n` lines into a fresh journal in `dir`.
    fn write_lines(dir: &Path, n: usize) {
        let tail = read(dir).unwrap().tail;
        let mut w = JournalWriter::new(Box::new(FileSink::open(dir).unwrap()), &tail, counters());
        for i in 0..n {
            w.append(crate::outage::testutil::wall(i as f64 + 0.1234), stop(i))
                .unwrap();
        }
    }

    fn lines_of(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rewrite(dir: &Path, lines: &[String]) {
        std::fs::write(dir.join(JOURNAL_FILE), lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn lines_are_chained_with_millisecond_utc_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(dir.path(), 3);
        let raw = lines_of(dir.path());
        assert_eq!(raw.len(), 3);
        assert!(raw[0].starts_with(&format!(r#"{{"seq":0,"prev":"{GENESIS}","ts":"2026-11-01T10:00:00.123Z","event":"daemon_stop""#)), "{}", raw[0]);
        let second: serde_json::Value = serde_json::from_str(&raw[1]).unwrap();
        assert_eq!(second["prev"], line_hash(raw[0].as_bytes()));
        let c = read(dir.path()).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.lines.len(), 3);
        assert_eq!(c.tail.next_seq, 3);
        // A second writer continues the chain.
        write_lines(dir.path(), 2);
        let c = read(dir.path()).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(
            c.lines.iter().map(|l| l.line.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn torn_last_line_is_skipped_and_the_next_writer_chains_around_it() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(dir.path(), 3);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        f.write_all(br#"{"seq":3,"prev":"ab"#).unwrap();
        let c = read(dir.path()).unwrap();
        assert_eq!(c.lines.len(), 3, "nothing else lost");
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(
            (c.warnings[0].line, c.warnings[0].kind),
            (4, WarningKind::TornLastLine)
        );
        assert_eq!(c.tail.torn_line, Some(4));
        assert!(c.tail.needs_newline);
        write_lines(dir.path(), 1);
        let c = read(dir.path()).unwrap();
        assert_eq!(c.lines.len(), 4);
        assert_eq!(c.lines[3].number, 5);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(
            (c.warnings[0].line, c.warnings[0].kind),
            (4, WarningKind::Corrupt)
        );
        assert!(
            c.first_chain_break().is_none(),
            "the writer chained around the torn line"
        );
    }

    #[test]
    fn corrupt_middle_line_is_reported_by_number_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(dir.path(), 5);
        let mut raw = lines_of(dir.path());
        raw[1] = "{\"seq\":1,garbage".to_string();
        rewrite(dir.path(), &raw);
        let c = read(dir.path()).unwrap();
        assert_eq!(
            c.lines.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![1, 3, 4, 5]
        );
        assert_eq!(
            (c.warnings[0].line, c.warnings[0].kind),
            (2, WarningKind::Corrupt)
        );
        // Line 3 chained to the original line 2, which is gone: that is reported too.
        assert_eq!(
            (c.warnings[1].line, c.warnings[1].kind),
            (3, WarningKind::ChainBroken)
        );
        assert!(
            c.warnings[1].message.contains("line 2"),
            "{}",
            c.warnings[1].message
        );
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn edited_line_breaks_the_chain_at_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(dir.path(), 5);
        let mut raw = lines_of(dir.path());
        raw[2] = raw[2].replace("\"o2\"", "\"forged\"");
        rewrite(dir.path(), &raw);
        let c = read(dir.path()).unwrap();
        assert_eq!(
            c.lines.len(),
            5,
            "the edited line is still valid JSON and read"
        );
        let w = c.first_chain_break().unwrap();
        assert_eq!(w.line, 4);
        assert!(w.message.contains("line 3"), "{}", w.message);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn removed_line_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(dir.path(), 4);
        let mut raw = lines_of(dir.path());
        raw.remove(1);
        rewrite(dir.path(), &raw);
        let c = read(dir.path()).unwrap();
        assert_eq!(c.first_chain_break().unwrap().line, 2);
        assert_eq!(c.lines.len(), 3);
    }

    #[test]
    fn heartbeat_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_heartbeat(dir.path()).unwrap(), None);
        let hb = Heartbeat {
            run: 7,
            wall: crate::outage::testutil::wall(1.0),
            mono_ms: 1000,
            pid: 1,
        };
        write_heartbeat(dir.path(), &hb).unwrap();
        write_heartbeat(
            dir.path(),
            &Heartbeat {
                mono_ms: 2000,
                ..hb
            },
        )
        .unwrap();
        assert_eq!(read_heartbeat(dir.path()).unwrap().unwrap().mono_ms, 2000);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(HEARTBEAT_FILE)],
            "no temporary file left"
        );
    }
}
