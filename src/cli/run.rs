//! `linkwatch run`: the daemon in the foreground until SIGTERM or SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::errln;
use super::setup::{Logging, load_or_default, runtime};
use crate::config::Config;

pub(super) fn run(logging: &Logging, config: Option<&Path>, data_dir: Option<&Path>) -> ExitCode {
    let Some(mut cfg) = load_or_default(config) else {
        return ExitCode::from(2);
    };
    logging.init(cfg.daemon.log_format);
    let json_logs =
        logging.format.unwrap_or(cfg.daemon.log_format) == crate::config::LogFormat::Json;
    // What the file says, before the command line or the fallback change
    // it: a reload compares the next file with this, not with the override.
    let file_daemon = cfg.daemon.clone();
    match (data_dir, config) {
        (Some(dir), _) => cfg.daemon.data_dir = dir.to_path_buf(),
        // The embedded default must run for anyone: fall back from
        // /var/lib/linkwatch to a per-user directory when needed.
        (None, None) => cfg.daemon.data_dir = default_data_dir(&cfg.daemon.data_dir),
        (None, Some(_)) => {}
    }
    run_daemon(cfg, file_daemon, json_logs)
}

fn run_daemon(cfg: Config, file_daemon: crate::config::DaemonConfig, json_logs: bool) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        let signals = crate::daemon::shutdown_signal();
        crate::daemon::run(
            cfg,
            file_daemon,
            async {
                if let Err(e) = signals.await {
                    tracing::error!(error = %e, "failed to listen for signals; stopping");
                }
            },
            None,
        )
        .await
    });
    // Do not wait for blocking-pool threads (e.g. a getaddrinfo stuck on a dead resolver).
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: as a JSON event for log collectors, else as plain text
            // (the hints read better without a log line's prefix).
            if json_logs {
                tracing::error!(error = %e, "linkwatch could not start");
            } else {
                errln!("linkwatch: {e}");
            }
            ExitCode::from(1)
        }
    }
}

/// Where the embedded default keeps its journal: `$STATE_DIRECTORY` (set by
/// systemd's `StateDirectory=`), else `preferred` if it can be created and
/// written, else `$XDG_STATE_HOME/linkwatch` or `~/.local/state/linkwatch`.
fn default_data_dir(preferred: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // May be a colon-separated list; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if writable_dir(preferred) {
        return preferred.to_path_buf();
    }
    let fallback = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .map(|base| base.join("linkwatch"));
    match fallback {
        Some(dir) if writable_dir(&dir) => {
            tracing::warn!(
                preferred = %preferred.display(),
                data_dir = %dir.display(),
                "cannot write the default data directory; keeping the outage journal in a per-user directory instead (set --data-dir to choose)"
            );
            dir
        }
        // Nothing better: let the outage service report the original problem.
        _ => preferred.to_path_buf(),
    }
}

/// Whether `dir` exists or can be created, and a file can be written in it.
fn writable_dir(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".linkwatch-write-test.{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}
