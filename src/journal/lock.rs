//! One writer per data directory: an exclusive `flock` on `<data_dir>/lock`,
//! taken before anything there is read or written and held until the journal
//! is closed. The holder writes its pid into the file, so a second daemon can
//! say whose directory it is. Offline readers (`outages`, `report`) try a
//! shared lock to learn whether a daemon is alive.
//!
//! `flock` locks belong to an open file description and the kernel drops them
//! when the process dies (even by `kill -9`), so a stale pid in the file never
//! keeps a directory locked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};

/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// A reader probing the lock holds it for microseconds; a starting daemon
/// retries this often, this far apart, before it believes the directory is taken.
const CONTENDED_TRIES: u32 = 25;
const CONTENDED_PAUSE: Duration = Duration::from_millis(20);

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "failed to create data directory {path}: {source}; set daemon.data_dir (or --data-dir) to a directory linkwatch's user can create and write"
    )]
    CreateDataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "data directory {dir} is in use by another linkwatch (pid {pid}, per {lock}); stop it first or give this one its own daemon.data_dir"
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        pid: String,
    },
    #[error(
        "{path} is a symbolic link; linkwatch refuses to follow links in its data directory (set daemon.allow_symlinks = true to allow it)"
    )]
    Symlink { path: PathBuf },
    #[error("failed to lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The exclusive lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and takes its lock, writing our pid into it.
    pub fn acquire(data_dir: &Path, allow_symlinks: bool) -> Result<Self, LockError> {
        std::fs::create_dir_all(data_dir).map_err(|source| LockError::CreateDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        refuse_symlink(&path, allow_symlinks)?;
        let mut opts = OpenOptions::new();
        // No truncation before the lock is ours: the holder's pid stays readable.
        opts.read(true).write(true).create(true).mode(0o644);
        if !allow_symlinks {
            opts.custom_flags(OFlag::O_NOFOLLOW.bits());
        }
        let mut file = opts.open(&path).map_err(|e| match e.raw_os_error() {
            Some(code) if code == Errno::ELOOP as i32 => LockError::Symlink { path: path.clone() },
            _ => io_err(e),
        })?;
        let mut tries = 0;
        let mut lock = loop {
            tries += 1;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((f, Errno::EWOULDBLOCK)) if tries < CONTENDED_TRIES => {
                    file = f;
                    std::thread::sleep(CONTENDED_PAUSE);
                }
                Err((mut f, Errno::EWOULDBLOCK)) => {
                    return Err(LockError::Held {
                        dir: data_dir.to_path_buf(),
                        lock: path.clone(),
                        pid: read_pid(&mut f).unwrap_or_else(|| "unknown".to_string()),
                    });
                }
                Err((_, errno)) => return Err(io_err(io::Error::from(errno))),
            }
        };
        let pid = format!("{}\n", std::process::id());
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(pid.as_bytes()))
            .map_err(io_err)?;
        Ok(Self { _lock: lock, path })
    }

    /// A duplicate of the locked descriptor: the lock stays held while any
    /// copy is open (a journal writer child holds one while it runs).
    pub fn share(&self) -> io::Result<File> {
        self._lock.try_clone()
    }

    /// Where the lock lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a daemon holds a data directory, as an offline reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// A daemon holds the lock (its pid as written in the file).
    Alive { pid: String },
    /// The lock is free: nobody is watching.
    NotRunning,
    /// No lock file, or it cannot be opened: only the heartbeat can tell.
    Unknown,
}

/// Probes the lock of `data_dir` without disturbing a daemon: a shared,
/// non-blocking lock taken and released at once.
pub fn probe(data_dir: &Path) -> Liveness {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return Liveness::Unknown;
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Liveness::NotRunning,
        Err((mut f, Errno::EWOULDBLOCK)) => Liveness::Alive {
            pid: read_pid(&mut f).unwrap_or_else(|| "unknown".to_string()),
        },
        Err(_) => Liveness::Unknown,
    }
}

/// Refuses `path` if it is a symbolic link, unless links are allowed.
pub fn refuse_symlink(path: &Path, allow_symlinks: bool) -> Result<(), LockError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && !allow_symlinks => Err(LockError::Symlink {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

fn read_pid(f: &mut File) -> Option<String> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.take(32).read_to_string(&mut s).ok()?;
    let pid = s.trim();
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path()), Liveness::Unknown);
        let first = DataDirLock::acquire(dir.path(), false).unwrap();
        let me = std::process::id().to_string();
        assert_eq!(probe(dir.path()), Liveness::Alive { pid: me.clone() });
        match DataDirLock::acquire(dir.path(), false) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, me),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert_eq!(probe(dir.path()), Liveness::NotRunning);
        let again = DataDirLock::acquire(dir.path(), false).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.path()).unwrap(),
            format!("{me}\n")
        );
    }

    #[test]
    fn a_symlinked_lock_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "precious").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join(LOCK_FILE)).unwrap();
        let err = DataDirLock::acquire(&data, false).unwrap_err();
        assert!(matches!(err, LockError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("allow_symlinks"), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "precious");
        let lock = DataDirLock::acquire(&data, true).unwrap();
        drop(lock);
    }
}
