//! Fallback files: `journal.unwritten.<pid>.<ms>.jsonl`.
//!
//! An exit that cannot write every queued line (a full disk, a frozen or
//! hung filesystem) saves them, already chained to where the journal ends,
//! in the data directory or else the temporary directory. They belong to the
//! chain: readers read them as its continuation, and the next start appends
//! them to the journal before its own `daemon_start` (so recovery sees the
//! outages and ends they hold, and no `seq` is used twice), then removes the
//! files.
//!
//! Taking them back is idempotent: a line already on the chain (same `seq`,
//! same hash) is skipped, so a crash between the append and the removal, or
//! a later fallback file that repeats an earlier one's lines, appends nothing
//! twice. A file whose lines do not continue the chain is left alone.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use nix::fcntl::OFlag;

use super::chain::{ChainHead, GENESIS, line_hash};
use super::contents::{
    JournalContents, JournalWarning, NumberedLine, RawLine, WarningKind, push_line,
};
use super::disk::{sync_dir, write_new_here};
use super::line::{Entry, Line};
use super::ts_ms;

/// Fallback file names start with this and end with [`SUFFIX`].
pub const PREFIX: &str = "journal.unwritten.";
/// See [`PREFIX`].
pub const SUFFIX: &str = ".jsonl";
/// A fallback file holds at most the queue's capacity of lines; anything
/// larger is not one of ours.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Where fallback files are looked for: the data directory, then the
/// temporary directory (where an exit writes them when the data directory
/// does not take them).
pub fn search_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![data_dir.to_path_buf()];
    let tmp = std::env::temp_dir();
    if tmp != data_dir {
        dirs.push(tmp);
    }
    dirs
}

/// A fallback file found on disk.
struct Candidate {
    path: PathBuf,
    /// Found in the data directory (the first search directory).
    in_data_dir: bool,
    lines: Vec<(RawLine, Line)>,
    done: bool,
}

/// Extends `contents` with the lines of fallback files in `dirs` (the first
/// being the data directory) that continue its chain; see the module doc.
pub(super) fn continue_chain(contents: &mut JournalContents, dirs: &[PathBuf]) {
    let mut candidates = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        candidates.extend(find(dir, i == 0));
    }
    if candidates.is_empty() {
        return;
    }
    // Hashes of the chain's lines by seq (the last line with that seq wins).
    let mut on_chain: HashMap<u64, String> = contents
        .lines
        .iter()
        .map(|l| (l.line.seq, l.hash.clone()))
        .collect();
    let mut progress = true;
    while progress {
        progress = false;
        for c in candidates.iter_mut().filter(|c| !c.done) {
            let tail = &contents.tail;
            let mut new_from = None;
            let mut overlaps = false;
            let mut related = true;
            for (i, (raw, _)) in c.lines.iter().enumerate() {
                if raw.seq >= tail.next_seq {
                    new_from = Some(i);
                    break;
                }
                match on_chain.get(&raw.seq) {
                    Some(h) if *h == line_hash(&raw.bytes) => overlaps = true,
                    _ => {
                        related = false;
                        break;
                    }
                }
            }
            if !related {
                continue;
            }
            let Some(from) = new_from else {
                // Wholly on the chain already (taken back before a crash,
                // or repeated by a later file); an empty one in the data
                // directory is a copy an exit could not write.
                if overlaps || c.in_data_dir {
                    c.done = true;
                    contents.continuation.files.push(c.path.clone());
                    progress = true;
                }
                continue;
            };
            let (first, _) = &c.lines[from];
            // A file in the temporary directory could be another data
            // directory's: only one anchored by a hash of this chain is ours.
            let anchored = overlaps || c.in_data_dir || tail.next_seq > 0;
            if first.seq != tail.next_seq || first.prev != tail.last_hash || !anchored {
                continue;
            }
            let number = contents.total_lines + 1;
            let added = c.lines.len() - from;
            for (raw, line) in c.lines.drain(from..) {
                let hash = line_hash(&raw.bytes);
                on_chain.insert(raw.seq, hash.clone());
                contents.total_lines += 1;
                contents.tail.next_seq = raw.seq + 1;
                contents.tail.last_hash = hash.clone();
                push_line(
                    contents,
                    NumberedLine {
                        number: contents.total_lines,
                        line,
                        hash,
                    },
                );
                contents.continuation.lines.push(raw);
            }
            contents.warnings.push(JournalWarning {
                line: number,
                kind: WarningKind::Continued,
                message: format!(
                    "lines {number}–{} are not in the journal file yet: they continue its chain from {}, left by an exit that could not write them; the next daemon start appends them",
                    number + added as u64 - 1,
                    c.path.display()
                ),
            });
            c.done = true;
            contents.continuation.files.push(c.path.clone());
            progress = true;
        }
    }
    for c in candidates.iter().filter(|c| !c.done && c.in_data_dir) {
        tracing::warn!(
            path = %c.path.display(),
            first_seq = c.lines.first().map(|(r, _)| r.seq),
            journal_next_seq = contents.tail.next_seq,
            "fallback journal file does not continue the journal's chain; left as it is"
        );
    }
}

/// The fallback files in `dir`, oldest name first, each with the lines that
/// chain from its first one.
fn find(dir: &Path, in_data_dir: bool) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && name.ends_with(SUFFIX)
        })
        // Regular files only: never follow a link planted in /tmp.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| match read_lines(&path) {
            Ok(lines) => Some(Candidate {
                path,
                in_data_dir,
                lines,
                done: false,
            }),
            Err(e) => {
                if in_data_dir {
                    tracing::warn!(path = %path.display(), error = %e, "fallback journal file unreadable; left as it is");
                }
                None
            }
        })
        .collect()
}

/// The lines of a fallback file, up to the first that is not a journal
/// line or does not chain from the one before (a copy cut short by a full
/// disk ends in an incomplete line).
fn read_lines(path: &Path) -> io::Result<Vec<(RawLine, Line)>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Err(io::Error::other(format!(
            "{len} bytes, larger than any fallback file"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes)?;
    let mut out: Vec<(RawLine, Line)> = Vec::new();
    for raw in bytes.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
        let Ok(line) = serde_json::from_slice::<Line>(raw) else {
            break;
        };
        if let Some((last, _)) = out.last()
            && (line.seq != last.seq + 1 || line.prev != line_hash(&last.bytes))
        {
            break;
        }
        let raw = RawLine {
            seq: line.seq,
            prev: line.prev.clone(),
            bytes: raw.to_vec(),
        };
        out.push((raw, line));
    }
    Ok(out)
}

/// Logs every line that could not be written in full at ERROR — `taken_back`
/// lines (already chained) first, then `events` chained after them or after
/// `head` as they would have been — and writes them all to a fallback file
/// in the first of `dirs` that takes it. Returns where it went.
pub(super) fn dump(
    taken_back: &[RawLine],
    events: &[(Timestamp, Entry)],
    head: Option<ChainHead>,
    dirs: &[PathBuf],
    lock: Option<&std::fs::File>,
) -> Option<PathBuf> {
    // Taken-back lines the journal already holds are not repeated.
    let durable = head.as_ref().map(|h| h.seq);
    let taken_back: Vec<&RawLine> = taken_back
        .iter()
        .filter(|r| durable.is_none_or(|d| r.seq > d))
        .collect();
    let after = taken_back.last().map(|r| r.head()).or(head);
    let mut seq = after.as_ref().map_or(0, |h| h.seq + 1);
    let mut prev = after.map_or_else(|| GENESIS.to_string(), |h| h.hash);
    let mut text = Vec::new();
    let mut count = 0usize;
    for r in &taken_back {
        tracing::error!(
            seq = r.seq,
            line = %String::from_utf8_lossy(&r.bytes),
            "journal line taken back from a fallback file could not be written before exit; its full line follows"
        );
        text.extend_from_slice(&r.bytes);
        text.push(b'\n');
        count += 1;
    }
    for (ts, entry) in events {
        let line = Line {
            seq,
            prev: prev.clone(),
            ts: *ts,
            entry: entry.clone(),
        };
        let bytes = serde_json::to_vec(&line).unwrap_or_else(|e| {
            format!(
                "{{\"unserialisable\":\"{e}\",\"event\":\"{}\"}}",
                entry.name()
            )
            .into_bytes()
        });
        let json = String::from_utf8_lossy(&bytes).into_owned();
        tracing::error!(
            event = entry.name(),
            ts = %ts_ms::format(ts),
            line = %json,
            "journal event could not be written before exit; its full line follows"
        );
        prev = line_hash(&bytes);
        seq += 1;
        text.extend_from_slice(&bytes);
        text.push(b'\n');
        count += 1;
    }
    if count == 0 {
        return None;
    }
    let ms = Timestamp::now().as_millisecond();
    for dir in dirs {
        // A name taken already (a dump in the same millisecond) moves on.
        for later in 0..8 {
            let name = format!("{PREFIX}{}.{}{SUFFIX}", std::process::id(), ms + later);
            let path = dir.join(&name);
            match write_new(&path, &text, lock) {
                Ok(()) => {
                    tracing::error!(path = %path.display(), events = count, "unwritten journal events saved to a fallback file; the next start takes them back into the journal");
                    return Some(path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "failed to write the fallback file");
                    break;
                }
            }
        }
    }
    tracing::error!(
        events = count,
        "no fallback file could be written; the unwritten events are in the log above only"
    );
    None
}

/// Writes a new file durably, through a child process holding `lock` when
/// the binary allows it (see [`super::child`]).
fn write_new(path: &Path, bytes: &[u8], lock: Option<&std::fs::File>) -> io::Result<()> {
    super::child::create(path, lock, bytes).unwrap_or_else(|| write_new_here(path, bytes))
}

/// Removes fallback files whose lines are now in the journal.
pub(super) fn remove(files: &[PathBuf]) {
    for path in files {
        match std::fs::remove_file(path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "fallback journal file taken back into the journal; removed");
                if let Some(dir) = path.parent()
                    && let Err(e) = sync_dir(dir)
                {
                    tracing::warn!(dir = %dir.display(), error = %e, "failed to sync the directory after removing a fallback file");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to remove a fallback journal file already taken back; the next start skips its lines")
            }
        }
    }
}
