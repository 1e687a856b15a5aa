//! Writing the journal: chained lines through a sink that knows its file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use nix::fcntl::OFlag;
use prometheus::IntCounter;

use super::chain::{ChainHead, line_hash};
use super::contents::{ChainTail, Continuation, RawLine};
use super::disk::{JOURNAL_FILE, sync_dir};
use super::fallback;
use super::line::{Entry, Line};
use super::record::run::JournalReopened;

/// Where journal lines go. The seam that lets tests inject disk errors.
pub trait JournalSink: Send {
    /// Appends `bytes` (whole lines, newline included) and makes them durable.
    /// On error nothing of `bytes` may remain visible as a complete line.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Checks that the journal path still names the open file; when it does
    /// not, reopens the path and says what was found. Sinks without a path
    /// never move.
    fn reopen_if_replaced(&mut self) -> io::Result<Option<Replaced>> {
        Ok(None)
    }

    /// The data directory's lock, for child processes that write for the
    /// sink (see [`super::child`]) to hold while they run.
    fn lock(&self) -> Option<&File> {
        None
    }
}

/// Device and inode: which file a descriptor or a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            device: m.dev(),
            inode: m.ino(),
        }
    }
}

/// The journal path named another file (or none) and was reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub reason: String,
    pub previous: FileId,
    pub previous_bytes: u64,
}

/// The real sink: an `O_APPEND` file, `fdatasync` after every write.
pub struct FileSink {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    id: FileId,
    allow_symlinks: bool,
    /// Length of the durable content; a failed write is cut back to it.
    len: u64,
    /// A failed write could not be cut back: start the next one on a fresh line.
    dirty: bool,
    /// The data directory's lock (a duplicate), held by writer children.
    lock: Option<File>,
}

impl FileSink {
    /// Opens (creating if needed) `<data_dir>/journal.jsonl` for appending;
    /// a symbolic link there is refused (`O_NOFOLLOW`) unless allowed.
    pub fn open(data_dir: &Path, allow_symlinks: bool) -> io::Result<Self> {
        let path = data_dir.join(JOURNAL_FILE);
        let (file, id, len, dirty) = open_append(&path, data_dir, allow_symlinks)?;
        Ok(Self {
            file,
            path,
            dir: data_dir.to_path_buf(),
            id,
            allow_symlinks,
            len,
            dirty,
            lock: None,
        })
    }

    /// Writes through child processes that hold `lock` (a duplicate of the
    /// data directory's lock) while they run; see [`super::child`].
    pub fn holding(mut self, lock: Option<File>) -> Self {
        self.lock = lock;
        self
    }

    /// What the path names now, if it differs from the open file.
    fn replaced(&self) -> Option<String> {
        let at_path = if self.allow_symlinks {
            std::fs::metadata(&self.path)
        } else {
            std::fs::symlink_metadata(&self.path)
        };
        match at_path {
            Ok(m) if FileId::of(&m) == self.id => None,
            Ok(m) if m.file_type().is_symlink() => {
                Some("the journal path is now a symbolic link".to_string())
            }
            Ok(m) => Some(format!(
                "the journal path names another file (device {} inode {}): renamed or replaced",
                m.dev(),
                m.ino()
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Some("the journal path no longer exists: renamed or removed".to_string())
            }
            Err(e) => Some(format!("the journal path cannot be examined: {e}")),
        }
    }
}

/// Opens `path` with `O_APPEND|O_CREAT` (and `O_NOFOLLOW` unless links are
/// allowed); returns the file, its identity, length, and whether it ends
/// without a newline.
fn open_append(
    path: &Path,
    dir: &Path,
    allow_symlinks: bool,
) -> io::Result<(File, FileId, u64, bool)> {
    let existed = std::fs::symlink_metadata(path).is_ok();
    let mut opts = OpenOptions::new();
    opts.append(true).create(true).mode(0o644);
    if !allow_symlinks {
        opts.custom_flags(OFlag::O_NOFOLLOW.bits());
    }
    let file = opts.open(path).map_err(|e| {
        let hint = if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
            " (a symbolic link; set daemon.allow_symlinks = true to follow it)"
        } else {
            ""
        };
        io::Error::new(
            e.kind(),
            format!("failed to open journal {}{hint}: {e}", path.display()),
        )
    })?;
    if !existed {
        // The new directory entry must survive a power loss too.
        sync_dir(dir)?;
    }
    let meta = file.metadata()?;
    let len = meta.len();
    let mut last = [0u8; 1];
    let unterminated = len > 0 && file.read_at(&mut last, len - 1).is_ok() && last[0] != b'\n';
    Ok((file, FileId::of(&meta), len, unterminated))
}

impl JournalSink for FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(bytes.len() + 1);
        if self.dirty {
            buf.push(b'\n');
        }
        buf.extend_from_slice(bytes);
        // A child does it when it can: a frozen filesystem then holds the
        // child, never this thread (see `super::child`).
        if let Some(result) = super::child::append(&self.file, self.lock.as_ref(), &buf, self.len) {
            return match result {
                Ok(()) => {
                    self.len += buf.len() as u64;
                    self.dirty = false;
                    Ok(())
                }
                Err(e) => {
                    if e.to_string().contains(super::child::NOT_CUT_BACK) {
                        self.dirty = true;
                    }
                    Err(io::Error::new(
                        e.kind(),
                        format!("failed to append to journal {}: {e}", self.path.display()),
                    ))
                }
            };
        }
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

    fn lock(&self) -> Option<&File> {
        self.lock.as_ref()
    }

    fn reopen_if_replaced(&mut self) -> io::Result<Option<Replaced>> {
        let Some(reason) = self.replaced() else {
            return Ok(None);
        };
        tracing::error!(
            path = %self.path.display(),
            reason = %reason,
            device = self.id.device,
            inode = self.id.inode,
            "the journal file was moved or replaced under the daemon; reopening the path and continuing the chain there"
        );
        let (file, id, len, dirty) = open_append(&self.path, &self.dir, self.allow_symlinks)?;
        let replaced = Replaced {
            reason,
            previous: self.id,
            previous_bytes: self.len,
        };
        self.file = file;
        self.id = id;
        self.len = len;
        self.dirty = dirty;
        Ok(Some(replaced))
    }
}

/// Counters the writer updates (`linkwatch_journal_writes_total`, `…_errors_total`).
#[derive(Clone)]
pub struct JournalCounters {
    pub writes: IntCounter,
    pub errors: IntCounter,
}

/// Chains lines and appends them through a [`JournalSink`], one at a time.
/// A line that fails is not chained: the next attempt gets the same `seq`
/// and `prev`. Queueing and retrying belong to the caller ([`super::JournalQueue`]).
pub struct JournalWriter {
    sink: Box<dyn JournalSink>,
    next_seq: u64,
    last_hash: String,
    /// The file ended in a torn line: the next write starts with a newline.
    needs_newline: bool,
    counters: JournalCounters,
    failing: bool,
    /// Lines from fallback files still to append, before anything else.
    taken_back: std::collections::VecDeque<RawLine>,
    /// The fallback files they came from: removed once all are appended.
    fallback_files: Vec<PathBuf>,
}

impl JournalWriter {
    /// Continues the chain at `tail` (from [`super::read`]).
    pub fn new(sink: Box<dyn JournalSink>, tail: &ChainTail, counters: JournalCounters) -> Self {
        Self {
            sink,
            next_seq: tail.next_seq,
            last_hash: tail.last_hash.clone(),
            needs_newline: tail.needs_newline,
            counters,
            failing: false,
            taken_back: Default::default(),
            fallback_files: Vec::new(),
        }
    }

    /// Takes back what fallback files add to the chain (see
    /// `fallback`): the writer must have been made at
    /// `continuation.file_tail`. Their lines go before any other line;
    /// what the disk does not take now is retried before each later write.
    /// The files are removed once every line is in the journal.
    pub fn take_back(&mut self, continuation: &Continuation) {
        self.taken_back = continuation.lines.iter().cloned().collect();
        self.fallback_files = continuation.files.clone();
        if !self.taken_back.is_empty() {
            tracing::warn!(
                lines = self.taken_back.len(),
                files = ?self.fallback_files,
                "taking back journal lines an earlier exit saved to fallback files"
            );
        }
        if let Err(e) = self.flush_taken_back() {
            tracing::error!(error = %e, pending = self.taken_back.len(), "lines from fallback files not yet appended; retried before the next line");
        }
    }

    /// Lines taken back from fallback files and not yet in the journal.
    pub fn taken_back(&self) -> impl Iterator<Item = &RawLine> {
        self.taken_back.iter()
    }

    /// Appends the lines taken back, then removes their files.
    fn flush_taken_back(&mut self) -> io::Result<()> {
        while let Some(raw) = self.taken_back.front() {
            if raw.seq != self.next_seq || raw.prev != self.last_hash {
                // The journal moved under us (it cannot while we hold the
                // lock): appending would fork the chain. The files stay.
                tracing::error!(
                    seq = raw.seq,
                    journal_next_seq = self.next_seq,
                    "a line taken back from a fallback file no longer continues the journal; left in its file"
                );
                self.taken_back.clear();
                self.fallback_files.clear();
                return Ok(());
            }
            let bytes = raw.bytes.clone();
            self.write_bytes(&bytes, "taken_back")?;
            self.taken_back.pop_front();
        }
        if !self.fallback_files.is_empty() {
            fallback::remove(&std::mem::take(&mut self.fallback_files));
        }
        Ok(())
    }

    /// The line `entry` would be if written now (without the newline).
    pub fn line_bytes(&self, ts: Timestamp, entry: &Entry) -> io::Result<Vec<u8>> {
        chained(self.next_seq, &self.last_hash, ts, entry)
    }

    /// Checks the file (see [`Self::check_file`]), then chains and writes one
    /// event. `Ok` means it is durable; `Err` means nothing was chained.
    pub fn append(&mut self, ts: Timestamp, entry: &Entry) -> io::Result<()> {
        self.check_file(ts)?;
        self.write_line(ts, entry)
    }

    /// When the journal path no longer names the open file, reopens it and
    /// writes `journal_reopened` there, continuing the chain.
    pub fn check_file(&mut self, ts: Timestamp) -> io::Result<()> {
        // Lines taken back come first, before even a `journal_reopened`.
        self.flush_taken_back()?;
        let replaced = self.sink.reopen_if_replaced().inspect_err(|e| {
            self.counters.errors.inc();
            tracing::error!(error = %e, "failed to reopen the journal; events are kept in memory and retried");
        })?;
        if let Some(r) = replaced {
            // The new file starts a line of its own whatever the old one held.
            self.needs_newline = false;
            let entry = Entry::JournalReopened(JournalReopened {
                reason: r.reason,
                previous_device: r.previous.device,
                previous_inode: r.previous.inode,
                previous_bytes: r.previous_bytes,
            });
            self.write_line(ts, &entry)?;
        }
        Ok(())
    }

    fn write_line(&mut self, ts: Timestamp, entry: &Entry) -> io::Result<()> {
        let line = self.line_bytes(ts, entry)?;
        self.write_bytes(&line, entry.name())
    }

    /// Appends one line chained at `next_seq` after `last_hash`.
    fn write_bytes(&mut self, line: &[u8], event: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        if self.needs_newline {
            // Terminate a torn tail so it stays a line of its own.
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        match self.sink.append(&bytes) {
            Ok(()) => {
                self.counters.writes.inc();
                self.needs_newline = false;
                self.last_hash = line_hash(line);
                self.next_seq += 1;
                if self.failing {
                    tracing::info!("journal writes succeed again; queued events written");
                    self.failing = false;
                }
                Ok(())
            }
            Err(e) => {
                self.counters.errors.inc();
                if !self.failing {
                    tracing::error!(event, error = %e, "journal write failed; events are kept in memory and retried");
                } else {
                    tracing::debug!(event, error = %e, "journal write retry failed");
                }
                self.failing = true;
                Err(e)
            }
        }
    }

    /// The data directory's lock as the sink holds it (for writer children).
    pub fn lock(&self) -> Option<&File> {
        self.sink.lock()
    }

    /// Sequence number the next event gets (after the lines taken back).
    pub fn next_seq(&self) -> u64 {
        self.next_seq + self.taken_back.len() as u64
    }

    /// The last line written (or found at open), `None` for an empty chain.
    pub fn head(&self) -> Option<ChainHead> {
        self.next_seq.checked_sub(1).map(|seq| ChainHead {
            seq,
            hash: self.last_hash.clone(),
        })
    }
}

/// Serialises `entry` as the line at `seq` after `prev`.
fn chained(seq: u64, prev: &str, ts: Timestamp, entry: &Entry) -> io::Result<Vec<u8>> {
    let line = Line {
        seq,
        prev: prev.to_string(),
        ts,
        entry: entry.clone(),
    };
    serde_json::to_vec(&line).map_err(io::Error::other)
}
