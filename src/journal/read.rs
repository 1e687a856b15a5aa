//! Reading the journal: parse every line, check the chain, name every problem.

use std::io;
use std::path::Path;

use super::chain::{ChainHead, GENESIS, line_hash};
use super::contents::{JournalContents, JournalWarning, NumberedLine, WarningKind, push_line};
use super::disk::JOURNAL_FILE;
use super::line::{Entry, Line};

/// The `seq` of the last complete line of the journal file at `path` that
/// parses (`None`: no such file, or no such line). Reads the file from its
/// end, a growing chunk at a time, so that it costs a line or two whatever
/// the journal's length.
pub fn last_seq(path: &Path) -> Option<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut chunk: u64 = 16 * 1024;
    loop {
        let from = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(from)).ok()?;
        let mut bytes = Vec::new();
        file.by_ref()
            .take(len - from)
            .read_to_end(&mut bytes)
            .ok()?;
        // Complete lines only: after the chunk's first newline (unless it
        // starts the file) and up to the last one.
        let start = if from == 0 {
            0
        } else {
            bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| i + 1)
        };
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let found = bytes
            .get(start..end.max(start))
            .unwrap_or_default()
            .split(|b| *b == b'\n')
            .rev()
            .find_map(|l| serde_json::from_slice::<Line>(l).ok().map(|l| l.seq));
        if found.is_some() || from == 0 {
            return found;
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Reads `<data_dir>/journal.jsonl` (a missing file is an empty journal) and
/// continues its chain with the lines of `journal.unwritten.*` fallback files
/// in the data directory or the temporary directory (see `fallback`).
pub fn read(data_dir: &Path) -> io::Result<JournalContents> {
    let path = data_dir.join(JOURNAL_FILE);
    let mut contents = match std::fs::read(&path) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => JournalContents::default(),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("failed to read journal {}: {e}", path.display()),
            ));
        }
    };
    super::fallback::continue_chain(&mut contents, &super::fallback::search_dirs(data_dir));
    Ok(contents)
}

/// Parses journal bytes. Never fails: every problem becomes a [`JournalWarning`].
pub fn parse(bytes: &[u8]) -> JournalContents {
    let ends_with_newline = bytes.last().is_none_or(|b| *b == b'\n');
    let mut segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if ends_with_newline {
        // `split` yields an empty segment after the final newline.
        segments.pop();
    }
    let count = segments.len();
    let mut p = Parser::default();
    p.out.total_lines = count as u64;
    for (i, raw) in segments.into_iter().enumerate() {
        p.line(i as u64 + 1, raw, i + 1 == count && !ends_with_newline);
    }
    let mut out = p.out;
    out.tail.next_seq = p.next_seq;
    out.tail.last_hash = p.prev_hash;
    out.tail.needs_newline = !ends_with_newline;
    out.continuation.file_tail = out.tail.clone();
    out
}

/// Reads lines one by one, checking each against the chain so far.
struct Parser {
    out: JournalContents,
    prev_hash: String,
    next_seq: u64,
    after_corrupt: Option<u64>,
    prev_number: Option<u64>,
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            out: JournalContents::default(),
            prev_hash: GENESIS.to_string(),
            next_seq: 0,
            after_corrupt: None,
            prev_number: None,
        }
    }
}

impl Parser {
    fn line(&mut self, number: u64, raw: &[u8], is_last_unterminated: bool) {
        let out = &mut self.out;
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|s| serde_json::from_str::<Line>(s).map_err(|e| e.to_string()));
        let line = match (parsed, is_last_unterminated) {
            (Ok(line), false) => line,
            // A complete, chained line that only lacks its newline is kept.
            (Ok(line), true) if line.prev == self.prev_hash => line,
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
                return;
            }
            (Err(msg), false) => {
                out.warnings.push(JournalWarning {
                    line: number,
                    kind: WarningKind::Corrupt,
                    message: format!("corrupt line skipped: {msg}"),
                });
                self.after_corrupt = Some(number);
                return;
            }
        };
        // A file reopened by the writer (after a `mv` or `rm`) continues the
        // chain of the file it replaced: its first line starts from there.
        let continues =
            self.prev_number.is_none() && matches!(line.entry, Entry::JournalReopened(_));
        if (line.prev != self.prev_hash || line.seq != self.next_seq) && !continues {
            let why = if line.prev != self.prev_hash {
                match self.after_corrupt {
                    Some(c) => format!(
                        "hash chain broken: prev does not match the last valid line (line {c} before it is corrupt)"
                    ),
                    None => match self.prev_number {
                        Some(p) => format!(
                            "hash chain broken: prev does not match the hash of line {p} (a line was edited, removed or inserted)"
                        ),
                        None => "hash chain broken: the first line's prev is not the genesis value"
                            .to_string(),
                    },
                }
            } else {
                format!(
                    "hash chain broken: seq {} where {} was expected",
                    line.seq, self.next_seq
                )
            };
            out.warnings.push(JournalWarning {
                line: number,
                kind: WarningKind::ChainBroken,
                message: why,
            });
        }
        self.after_corrupt = None;
        self.prev_number = Some(number);
        let hash = line_hash(raw);
        self.prev_hash = hash.clone();
        self.next_seq = line.seq + 1;
        push_line(out, NumberedLine { number, line, hash });
    }
}

/// Checks the chain heads that `daemon_start` lines and the heartbeat name:
/// each must be a line of this file with that hash. A head before the file's
/// first line, in a file that continues a reopened one, cannot be checked here.
pub fn check_anchors(
    contents: &JournalContents,
    heartbeat: Option<&ChainHead>,
) -> Vec<JournalWarning> {
    let first_seq = contents
        .lines
        .first()
        .and_then(|l| matches!(l.line.entry, Entry::JournalReopened(_)).then_some(l.line.seq));
    let check = |head: &ChainHead, before: usize, by: &str| -> Option<String> {
        if first_seq.is_some_and(|f| head.seq < f) {
            return None;
        }
        match contents.lines[..before]
            .iter()
            .rev()
            .find(|l| l.line.seq == head.seq)
        {
            Some(l) if l.hash == head.hash => None,
            Some(l) => Some(format!(
                "{by} names seq {} with hash {}, but line {} (seq {}) hashes to {}: the line was edited",
                head.seq,
                head.hash_prefix(),
                l.number,
                head.seq,
                &l.hash[..16.min(l.hash.len())]
            )),
            None => Some(format!(
                "{by} names seq {} (hash {}), but the journal ends before it: lines were removed from its end",
                head.seq,
                head.hash_prefix()
            )),
        }
    };
    let mut out = Vec::new();
    for (i, l) in contents.lines.iter().enumerate() {
        if let Entry::DaemonStart(ds) = &l.line.entry
            && let Some(head) = &ds.previous_head
            && let Some(message) = check(head, i, &format!("the daemon_start on line {}", l.number))
        {
            out.push(JournalWarning {
                line: l.number,
                kind: WarningKind::AnchorMissing,
                message,
            });
        }
    }
    if let Some(head) = heartbeat
        && let Some(message) = check(head, contents.lines.len(), "the heartbeat")
    {
        out.push(JournalWarning {
            line: contents.total_lines,
            kind: WarningKind::AnchorMissing,
            message,
        });
    }
    out
}
