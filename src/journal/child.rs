//! Journal writes done by a short-lived child process, so that a frozen or
//! hung filesystem can hold the child, never the daemon.
//!
//! A thread blocked in `write`/`fsync` on a frozen filesystem sleeps
//! uninterruptibly, and Linux does not reap a process until all its threads
//! have left the kernel: the daemon would exit only at the thaw, however its
//! stop is budgeted. So the `linkwatch` binary writes each journal line, each
//! heartbeat and each fallback file through a child (`/proc/self/exe
//! __journal-io …`, which runs the same binary even after an upgrade replaced
//! the file) and waits for its answer in an interruptible read. At stop, a
//! writer thread waiting on a stuck child is abandoned: the daemon exits, and
//! the orphaned child finishes at the thaw. The child holds the data
//! directory's lock (inherited as its stdout) until it ends, so no new daemon
//! reads or writes the journal while a line of the old one may still land;
//! the next start then finds that line on the chain and does not append it
//! twice from the fallback file (see `fallback`).
//!
//! Only the binary enables this ([`main_if_child`]); elsewhere (library
//! users, unit tests) the writes happen in the calling thread, as they do
//! when a child cannot be started.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// First argument of the child's command line.
const MARK: &str = "__journal-io";
/// Above this an argument is refused by `execve` (`MAX_ARG_STRLEN`); such a
/// line is written in-process.
const MAX_ARG: usize = 120 * 1024;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// In a failed append's answer: the partial write is still in the file.
pub(super) const NOT_CUT_BACK: &str = "partial write not cut back";

/// Called first by the binary's `main`: runs the child's job when this
/// process is one (returning its exit code), else enables writing through
/// children for this process.
pub fn main_if_child() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).map(OsString::as_os_str) != Some(OsStr::new(MARK)) {
        ENABLED.store(true, Ordering::Relaxed);
        return None;
    }
    let answer = match child(&args[2..]) {
        Ok(()) => "ok\n".to_string(),
        Err((code, e)) => format!("err {} {e}\n", code.unwrap_or(0)),
    };
    // The answer goes to stderr, the parent's pipe (stdout is the lock).
    let _ = io::stderr().write_all(answer.as_bytes());
    Some(ExitCode::SUCCESS)
}

/// The child's side: one job, then exit. An error keeps its OS error code.
fn child(args: &[OsString]) -> Result<(), (Option<i32>, io::Error)> {
    job(args).map_err(|e| (e.raw_os_error(), e))
}

fn job(args: &[OsString]) -> io::Result<()> {
    let arg = |i: usize| {
        args.get(i)
            .ok_or_else(|| io::Error::other("missing argument"))
    };
    match arg(0)?.to_str() {
        // append <cut_back_to> <bytes>: stdin is the journal (O_APPEND).
        Some("append") => {
            let cut: u64 = arg(1)?
                .to_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("bad length"))?;
            let mut file = File::from(io::stdin().as_fd().try_clone_to_owned()?);
            let written = file
                .write_all(arg(2)?.as_bytes())
                .and_then(|()| file.sync_data());
            if let Err(e) = written {
                // Cut our own partial write back (see `FileSink::append`).
                if file.set_len(cut).is_err() {
                    return Err(io::Error::other(format!("{e} ({NOT_CUT_BACK})")));
                }
                return Err(e);
            }
            Ok(())
        }
        // heartbeat <data_dir> <bytes>
        Some("heartbeat") => {
            super::disk::write_heartbeat_bytes(Path::new(arg(1)?), arg(2)?.as_bytes())
        }
        // create <path> <bytes>: a new file, durable, nothing left on failure.
        Some("create") => super::disk::write_new_here(Path::new(arg(1)?), arg(2)?.as_bytes()),
        _ => Err(io::Error::other("unknown job")),
    }
}

/// The outcome of a job run in a child, when one could run it.
fn run(args: &[&OsStr], stdin: Option<File>, lock: Option<&File>) -> Option<io::Result<()>> {
    if !ENABLED.load(Ordering::Relaxed) || args.iter().any(|a| a.len() > MAX_ARG) {
        return None;
    }
    let stdout = match lock.map(File::try_clone).transpose() {
        Ok(l) => l.map_or_else(Stdio::null, Stdio::from),
        Err(_) => return None,
    };
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(MARK)
        .args(args)
        .env_clear()
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(stdout)
        .stderr(Stdio::piped());
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "cannot start a journal writer child; writing in-process");
            return None;
        }
    };
    // Blocks in an interruptible read while the child is stuck: the process
    // can still exit.
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Some(Err(e)),
    };
    let answer = String::from_utf8_lossy(&out.stderr);
    let answer = answer.trim();
    if answer == "ok" {
        return Some(Ok(()));
    }
    let error = match answer.strip_prefix("err ") {
        Some(rest) => {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            match code.parse::<i32>() {
                Ok(c) if c > 0 => {
                    let os = io::Error::from_raw_os_error(c);
                    io::Error::new(os.kind(), msg.to_string())
                }
                _ => io::Error::other(msg.to_string()),
            }
        }
        None => io::Error::other(format!(
            "journal writer child failed ({}): {answer}",
            out.status
        )),
    };
    Some(Err(error))
}

/// Appends `bytes` to `journal` and makes them durable, cutting a failed
/// write back to `cut_back_to`; `None` when no child could do it.
pub(super) fn append(
    journal: &File,
    lock: Option<&File>,
    bytes: &[u8],
    cut_back_to: u64,
) -> Option<io::Result<()>> {
    let stdin = journal.try_clone().ok()?;
    let cut = cut_back_to.to_string();
    run(
        &[
            OsStr::new("append"),
            OsStr::new(&cut),
            &OsString::from_vec(bytes.to_vec()),
        ],
        Some(stdin),
        lock,
    )
}

/// Replaces the heartbeat file; `None` when no child could do it.
pub(super) fn heartbeat(
    data_dir: &Path,
    lock: Option<&File>,
    bytes: &[u8],
) -> Option<io::Result<()>> {
    run(
        &[
            OsStr::new("heartbeat"),
            data_dir.as_os_str(),
            OsStr::from_bytes(bytes),
        ],
        None,
        lock,
    )
}

/// Writes a new file; `None` when no child could do it.
pub(super) fn create(path: &Path, lock: Option<&File>, bytes: &[u8]) -> Option<io::Result<()>> {
    run(
        &[
            OsStr::new("create"),
            path.as_os_str(),
            OsStr::from_bytes(bytes),
        ],
        None,
        lock,
    )
}
