//! Following the journal file as it grows, for the services that act on
//! its durable lines (notifications, the peer service): only complete lines
//! are read, a chunk at a time (memory stays bounded however long the file
//! is), and a file that was replaced or shortened is read again from its
//! start (the reader's own cursor skips what it has seen).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::chain::line_hash;
use super::line::Line;

/// Bytes read per step; a longer line makes the step grow until it fits.
const CHUNK: usize = 1 << 20;

/// One complete line of the journal as read.
#[derive(Debug, Clone)]
pub enum TailItem {
    /// A journal line, with the hash of its bytes when hashes were asked for.
    Line {
        line: Box<Line>,
        hash: Option<String>,
    },
    /// A whole line of an event this version does not know (a newer writer),
    /// by its `seq`: nothing to act on, not damage.
    Other { seq: u64, hash: Option<String> },
    /// Not a journal line: `after` is the last `seq` read before it.
    Damaged { after: Option<u64>, what: String },
}

/// Reads `journal.jsonl` from where it stopped.
pub struct JournalTail {
    path: PathBuf,
    hashes: bool,
    /// Bytes of the file already read.
    offset: u64,
    file_id: Option<(u64, u64)>,
    /// The last line read (for naming a damaged line's place).
    last_seq: Option<u64>,
}

impl JournalTail {
    /// A reader of the journal at `path` from its start; with `hashes`, each
    /// line carries the hash of its bytes (its place in the chain).
    pub fn new(path: PathBuf, hashes: bool) -> Self {
        Self {
            path,
            hashes,
            offset: 0,
            file_id: None,
            last_seq: None,
        }
    }

    /// Reads the complete lines added since the last read and hands them to
    /// `take`, a chunk at a time, until the end of the file. `take` returns
    /// `false` when it could not act on a chunk: the next read then starts
    /// again from the file's start. Returns whether the file was found
    /// replaced or shortened (read from its start again) by this call.
    pub fn read(&mut self, mut take: impl FnMut(&[TailItem]) -> bool) -> bool {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return false;
        };
        let Ok(meta) = f.metadata() else {
            return false;
        };
        let id = (meta.dev(), meta.ino());
        let mut restarted = false;
        if self.file_id != Some(id) || meta.len() < self.offset {
            // A new or replaced file: read it from the start.
            restarted = self.file_id.is_some();
            self.file_id = Some(id);
            self.offset = 0;
        }
        let mut want = CHUNK;
        while self.offset < meta.len() {
            if f.seek(SeekFrom::Start(self.offset)).is_err() {
                return restarted;
            }
            let mut bytes = Vec::new();
            if f.by_ref()
                .take(want as u64)
                .read_to_end(&mut bytes)
                .is_err()
            {
                return restarted;
            }
            let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
                if bytes.len() < want {
                    // The last line is still being written.
                    return restarted;
                }
                want = want.saturating_mul(2);
                continue;
            };
            want = CHUNK;
            let bytes = &bytes[..=end];
            let items = self.parse(bytes);
            if !take(&items) {
                self.rewind();
                return restarted;
            }
            self.offset += bytes.len() as u64;
        }
        restarted
    }

    /// Reads from the file's start next time.
    pub fn rewind(&mut self) {
        self.offset = 0;
        self.file_id = None;
    }

    fn parse(&mut self, bytes: &[u8]) -> Vec<TailItem> {
        let mut items = Vec::new();
        for raw in bytes.split(|b| *b == b'\n') {
            if raw.is_empty() {
                continue;
            }
            let hash = || self.hashes.then(|| line_hash(raw));
            match serde_json::from_slice::<Line>(raw) {
                Ok(l) => {
                    self.last_seq = Some(l.seq);
                    items.push(TailItem::Line {
                        hash: hash(),
                        line: Box::new(l),
                    });
                }
                Err(e) => match serde_json::from_slice::<serde_json::Value>(raw)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
                {
                    Some(seq) => {
                        self.last_seq = Some(seq);
                        items.push(TailItem::Other { seq, hash: hash() });
                    }
                    None => items.push(TailItem::Damaged {
                        after: self.last_seq,
                        what: if raw.last() == Some(&b'}') {
                            format!("not a journal line ({e})")
                        } else {
                            "a torn line (a crash mid-write)".into()
                        },
                    }),
                },
            }
        }
        items
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(seq: u64) -> String {
        format!(
            r#"{{"seq":{seq},"prev":"{}","ts":"2026-12-06T10:00:00.000Z","event":"stall","from":"2026-12-06T09:59:00.000Z","to":"2026-12-06T10:00:00.000Z","cause":"system_suspended","seconds":60.0}}"#,
            super::super::GENESIS
        )
    }

    fn seqs(items: &[TailItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                TailItem::Line { line, .. } => format!("L{}", line.seq),
                TailItem::Other { seq, .. } => format!("O{seq}"),
                TailItem::Damaged { after, .. } => format!("D{after:?}"),
            })
            .collect()
    }

    #[test]
    fn reads_complete_lines_only_and_follows_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        // A line of a known event must parse for this test to mean anything.
        serde_json::from_str::<Line>(&line(0)).unwrap();
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "{}\n{{\"seq\":1,\"event\":\"from_the_future\"}}\nnot json\n{}",
            line(0),
            &line(2)[..20]
        )
        .unwrap();
        let mut tail = JournalTail::new(path.clone(), true);
        let mut got = Vec::new();
        assert!(!tail.read(|items| {
            got.extend(seqs(items));
            true
        }));
        assert_eq!(got, ["L0", "O1", "DSome(1)"]);
        // The torn line completes: read once, whole.
        writeln!(f, "{}", &line(2)[20..]).unwrap();
        got.clear();
        tail.read(|items| {
            if let TailItem::Line { hash, .. } = &items[0] {
                assert_eq!(
                    hash.as_deref(),
                    Some(line_hash(line(2).as_bytes()).as_str())
                );
            }
            got.extend(seqs(items));
            true
        });
        assert_eq!(got, ["L2"]);
        // A refused chunk is read again.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(format!("{}\n", line(3)).as_bytes())
            .unwrap();
        tail.read(|_| false);
        got.clear();
        tail.read(|items| {
            got.extend(seqs(items));
            true
        });
        assert_eq!(got.len(), 5, "{got:?}");
        // Replaced by a shorter file: from its start, and said so.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, format!("{}\n", line(0))).unwrap();
        got.clear();
        assert!(tail.read(|items| {
            got.extend(seqs(items));
            true
        }));
        assert_eq!(got, ["L0"]);
    }

    #[test]
    fn a_long_file_comes_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let one = line(0);
        let n = (2 * CHUNK) / one.len() + 10;
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(&one);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        let mut tail = JournalTail::new(path, false);
        let (mut chunks, mut lines) = (0, 0);
        tail.read(|items| {
            chunks += 1;
            lines += items.len();
            true
        });
        assert_eq!(lines, n);
        assert!(chunks >= 3, "{chunks}");
    }
}
