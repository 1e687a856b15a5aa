//! The journal's files in the data directory, and the durable writes that
//! a writer child (see [`crate::journal::child`]) or this process performs.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// File name of the journal inside the data directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// File name of the heartbeat inside the data directory.
pub const HEARTBEAT_FILE: &str = "heartbeat";

/// Where the journal of a data directory lives.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(JOURNAL_FILE)
}

/// Makes a new directory entry durable (fsync of the directory).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Replaces the heartbeat file with `bytes`.
pub(crate) fn write_heartbeat_bytes(data_dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let path = data_dir.join(HEARTBEAT_FILE);
    // A unique temporary name: an older write still in flight must not collide.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = data_dir.join(format!(".{HEARTBEAT_FILE}.{}.{n}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        // create_new (O_EXCL) never follows a link planted at the temporary name.
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
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

/// Writes a new file durably; a failed write leaves no partial copy behind.
pub(crate) fn write_new_here(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if written.is_err() {
        drop(f);
        let _ = std::fs::remove_file(path);
    }
    written?;
    if let Some(dir) = path.parent()
        && let Err(e) = sync_dir(dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "fallback file written, but its directory entry could not be synced");
    }
    Ok(())
}
