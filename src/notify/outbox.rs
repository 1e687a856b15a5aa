//! One channel's durable outbox: `<data_dir>/notify/<channel>.jsonl`,
//! append-only JSON lines, `fdatasync`ed per batch, written before the first
//! attempt to send.
//!
//! Records (`"op"`): `msg` (a notification queued), `ack` (the channel
//! acknowledged it), `drop` (withdrawn: an outage shorter than
//! `min_duration`), `held` (over the rate limit: told later in a summary),
//! `fold` (messages replaced by one summary, the outbox bound), `cursor` (the
//! next journal `seq` to derive from; written in the same batch as the
//! messages it derived, so a crash never separates the two).
//!
//! Faults: a batch that fails to write (a full disk) is cut off again
//! (`set_len` to the length before it), so the file stays as it was and
//! nothing in memory changes; a torn last line (a crash mid-write) is
//! terminated with a newline at open and skipped, as in the journal. The
//! file is rewritten (temporary file, fsync, rename) when acknowledged
//! records dominate it.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::message::Notification;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    Msg {
        msg: Notification,
    },
    Ack {
        id: String,
    },
    Drop {
        id: String,
        reason: String,
    },
    Held {
        msg: Notification,
    },
    Fold {
        ids: Vec<String>,
        summary: Notification,
    },
    Cursor {
        next: u64,
    },
    /// Event times of recent messages (kept by a rewrite for the rate limit).
    Rate {
        #[serde(with = "ts_vec")]
        at: Vec<Timestamp>,
    },
}

mod ts_vec {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Timestamp], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|t| t.as_millisecond()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Timestamp>, D::Error> {
        let ms: Vec<i64> = Vec::deserialize(d)?;
        ms.into_iter()
            .map(|m| Timestamp::from_millisecond(m).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// The outbox state, as the file's records leave it.
#[derive(Debug, Default)]
pub struct State {
    /// Queued, not acknowledged, in order.
    pub pending: VecDeque<Notification>,
    /// Over the rate limit, waiting for the summary.
    pub held: Vec<Notification>,
    /// Next journal seq to derive from (`None`: not set yet).
    pub cursor: Option<u64>,
    /// Event times of messages queued recently (the rate limit's window).
    pub recent: VecDeque<Timestamp>,
    /// Ids acknowledged, dropped or folded (so a repeated record is ignored).
    pub done: HashSet<String>,
    /// Lines in the file, and lines of them still needed.
    lines: usize,
    /// Skipped lines (torn or damaged) found at open.
    pub skipped: usize,
}

impl State {
    fn apply(&mut self, r: &Record) {
        match r {
            Record::Msg { msg } => {
                if !self.done.contains(&msg.id) && !self.pending.iter().any(|p| p.id == msg.id) {
                    self.recent.push_back(msg.at);
                    self.pending.push_back(msg.clone());
                }
            }
            Record::Ack { id } | Record::Drop { id, .. } => {
                self.pending.retain(|p| &p.id != id);
                self.done.insert(id.clone());
            }
            Record::Held { msg } => {
                self.recent.push_back(msg.at);
                self.held.push(msg.clone());
            }
            Record::Fold { ids, summary } => {
                let ids: HashSet<&String> = ids.iter().collect();
                let folded_held = self.held.iter().any(|h| ids.contains(&h.id));
                self.pending.retain(|p| !ids.contains(&p.id));
                self.held.retain(|h| !ids.contains(&h.id));
                for id in ids {
                    self.done.insert(id.clone());
                }
                if !self.done.contains(&summary.id) {
                    if folded_held {
                        // Held-back events are told after what was sent before them.
                        self.pending.push_back(summary.clone());
                    } else {
                        self.pending.push_front(summary.clone());
                    }
                }
            }
            Record::Cursor { next } => self.cursor = Some(*next),
            // Written last by a rewrite: the window as it was.
            Record::Rate { at } => self.recent = at.iter().copied().collect(),
        }
    }

    /// Forgets event times older than `since` (out of the rate window).
    pub fn trim_recent(&mut self, since: Timestamp) {
        while self.recent.front().is_some_and(|t| *t < since) {
            self.recent.pop_front();
        }
    }
}

pub struct Outbox {
    path: PathBuf,
    file: File,
    pub state: State,
}

/// The outbox file of channel `name` in `data_dir`.
pub fn path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("notify").join(format!("{name}.jsonl"))
}

impl Outbox {
    /// Opens (or creates) the outbox and replays it.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut state = State::default();
        let text = String::from_utf8_lossy(&bytes);
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            if line.is_empty() {
                continue;
            }
            state.lines += 1;
            match serde_json::from_str::<Record>(line) {
                Ok(r) => state.apply(&r),
                Err(e) => {
                    state.skipped += 1;
                    tracing::warn!(path = %path.display(), error = %e, "skipping a damaged outbox line");
                }
            }
        }
        if complete < bytes.len() {
            state.skipped += 1;
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - complete,
                "the outbox ends in a torn line (a crash mid-write); it is terminated and skipped"
            );
            file.write_all(b"\n")?;
            file.sync_data()?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            state,
        })
    }

    /// Appends `records` as one durable batch, then applies them. On error
    /// the file is cut back to where it was and the state is unchanged.
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let before = self.file.seek(SeekFrom::End(0))?;
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if let Err(cut) = self
                .file
                .set_len(before)
                .and_then(|()| self.file.sync_data())
            {
                tracing::error!(path = %self.path.display(), error = %cut, "could not cut a failed outbox write back; the next open skips the torn line");
            }
            return Err(e);
        }
        for r in records {
            self.state.lines += 1;
            self.state.apply(r);
        }
        self.maybe_compact();
        Ok(())
    }

    /// Rewrites the file when it holds many more lines than still matter.
    fn maybe_compact(&mut self) {
        let needed = self.state.pending.len() + self.state.held.len() + 2;
        if self.state.lines < 1000 || self.state.lines < needed * 4 {
            return;
        }
        if let Err(e) = self.compact() {
            tracing::warn!(path = %self.path.display(), error = %e, "could not rewrite the outbox; it goes on growing");
        }
    }

    pub fn compact(&mut self) -> io::Result<()> {
        let mut records = Vec::new();
        if let Some(next) = self.state.cursor {
            records.push(Record::Cursor { next });
        }
        for m in &self.state.held {
            records.push(Record::Held { msg: m.clone() });
        }
        for m in &self.state.pending {
            records.push(Record::Msg { msg: m.clone() });
        }
        records.push(Record::Rate {
            at: self.state.recent.iter().copied().collect(),
        });
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut buf = Vec::new();
        for r in &records {
            serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.state.lines = records.len();
        Ok(())
    }

    pub fn head(&self) -> Option<&Notification> {
        self.state.pending.front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, seq: u64) -> Notification {
        Notification {
            title: "t".into(),
            text: "x".into(),
            ..Notification::new(
                id.into(),
                "outage_start",
                seq,
                "s".into(),
                Timestamp::UNIX_EPOCH,
            )
        }
    }

    #[test]
    fn replay_keeps_order_acks_and_cursor_and_skips_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "c");
        let mut o = Outbox::open(&p).unwrap();
        o.append(&[
            Record::Msg { msg: msg("s:1", 1) },
            Record::Msg { msg: msg("s:2", 2) },
            Record::Cursor { next: 3 },
        ])
        .unwrap();
        o.append(&[Record::Ack { id: "s:1".into() }]).unwrap();
        drop(o);
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"op\":\"msg\",\"msg\":{\"id\":\"s:3\"")
            .unwrap();
        drop(f);
        let mut o = Outbox::open(&p).unwrap();
        assert_eq!(o.state.skipped, 1);
        assert_eq!(o.state.cursor, Some(3));
        let ids: Vec<_> = o.state.pending.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["s:2"]);
        // The next batch is a line of its own.
        o.append(&[Record::Msg { msg: msg("s:4", 4) }]).unwrap();
        let o = Outbox::open(&p).unwrap();
        let ids: Vec<_> = o.state.pending.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["s:2", "s:4"]);
    }

    #[test]
    fn compaction_keeps_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "c");
        let mut o = Outbox::open(&p).unwrap();
        for i in 0..1200u64 {
            let id = format!("s:{i}");
            o.append(&[
                Record::Msg { msg: msg(&id, i) },
                Record::Cursor { next: i + 1 },
            ])
            .unwrap();
            if i % 2 == 0 {
                o.append(&[Record::Ack { id }]).unwrap();
            }
        }
        let lines = std::fs::read_to_string(&p).unwrap().lines().count();
        assert!(lines < 3000, "{lines} lines: never compacted");
        let o = Outbox::open(&p).unwrap();
        assert_eq!(o.state.pending.len(), 600);
        assert_eq!(o.state.cursor, Some(1200));
        assert_eq!(o.state.pending.front().unwrap().id, "s:1");
    }
}
