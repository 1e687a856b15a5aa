//! The heartbeat file: the last moment the daemon was known alive.

use std::io;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::chain::ChainHead;
use super::disk::{HEARTBEAT_FILE, write_heartbeat_bytes};
use super::ts_ms;

/// The heartbeat file's content: the last moment the daemon was known alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `seq` of this run's `daemon_start` line.
    pub run: u64,
    #[serde(with = "ts_ms")]
    pub wall: Timestamp,
    /// Milliseconds since the run started, by the monotonic clock.
    pub mono_ms: u64,
    pub pid: u32,
    /// The last journal line written when this heartbeat was (absent in
    /// heartbeats of older versions and before the first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<ChainHead>,
}

/// Replaces `<data_dir>/heartbeat` atomically (temp file, fsync, rename, fsync dir).
pub fn write_heartbeat(data_dir: &Path, hb: &Heartbeat) -> io::Result<()> {
    let bytes = serde_json::to_vec(hb).map_err(io::Error::other)?;
    write_heartbeat_bytes(data_dir, &bytes)
}

/// [`write_heartbeat`] through a child process holding `lock` when the
/// binary allows it (see [`super::child`]), so a frozen filesystem holds the
/// child, not the writer thread.
pub(super) fn write_heartbeat_detached(
    data_dir: &Path,
    hb: &Heartbeat,
    lock: Option<&std::fs::File>,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(hb).map_err(io::Error::other)?;
    super::child::heartbeat(data_dir, lock, &bytes)
        .unwrap_or_else(|| write_heartbeat_bytes(data_dir, &bytes))
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
