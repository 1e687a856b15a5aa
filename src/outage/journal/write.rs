//! Writing the journal: chained lines through a sink, queued and retried on error.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use prometheus::IntCounter;

use super::{ChainTail, Entry, JOURNAL_FILE, Line, line_hash, sync_dir};

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
