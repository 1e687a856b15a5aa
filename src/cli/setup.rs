//! What the commands share: loading the config (or the embedded default),
//! printing its problems, the offline commands' data directory, logging and
//! the async runtime.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use super::output::errln;
use crate::config::{self, Config, ConfigErrors, LogFormat};

/// The data directory for offline commands: `--data-dir`, else the config's, else the default's.
pub(super) fn resolve_data_dir(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
) -> Result<PathBuf, ExitCode> {
    match (data_dir, config_path) {
        (Some(d), _) => Ok(d.to_path_buf()),
        (None, Some(p)) => match config::load(p) {
            Ok(c) => Ok(c.daemon.data_dir),
            Err(errors) => {
                print_config_errors(&errors);
                Err(ExitCode::from(2))
            }
        },
        (None, None) => Ok(config::default_config()
            .map(|c| c.daemon.data_dir)
            .unwrap_or_else(|_| PathBuf::from("/var/lib/linkwatch"))),
    }
}

pub(super) fn load_or_default(path: Option<&Path>) -> Option<Config> {
    let loaded = match path {
        Some(p) => config::load(p),
        None => config::default_config(),
    };
    match loaded {
        Ok(c) => Some(c),
        Err(errors) => {
            print_config_errors(&errors);
            None
        }
    }
}

pub(super) fn print_config_errors(errors: &ConfigErrors) {
    print_config_problems(errors, "; linkwatch did not start");
}

pub(super) fn print_config_problems(errors: &ConfigErrors, suffix: &str) {
    let mut err = std::io::stderr().lock();
    for e in &errors.0 {
        let _ = writeln!(err, "{e}");
    }
    let n = errors.0.len();
    let _ = writeln!(
        err,
        "{n} problem{} found{suffix}",
        if n == 1 { "" } else { "s" }
    );
}

/// `--log-level` and `--log-format`.
pub(super) struct Logging {
    pub filter: Option<String>,
    pub format: Option<LogFormat>,
}

impl Logging {
    /// Logs to stderr with the chosen filter (else RUST_LOG, else `info`), in
    /// the chosen format, else in `configured`.
    pub fn init(&self, configured: LogFormat) {
        let filter = match &self.filter {
            Some(level) => EnvFilter::try_new(level),
            None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
        }
        .unwrap_or_else(|e| {
            errln!("invalid --log-level/RUST_LOG filter ({e}); using `info`");
            EnvFilter::new("info")
        });
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let _ = match self.format.unwrap_or(configured) {
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
            LogFormat::Text => builder.try_init(),
        };
    }
}

/// The async runtime. One worker thread unless `TOKIO_WORKER_THREADS` says
/// otherwise: probing is I/O-bound, and at 10 000 targets a second worker
/// costs ~4 % of a core in context switches alone (BENCHMARKS.md). Blocking
/// work (name resolution, fsync, /metrics encoding) runs on the blocking pool.
pub(super) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        b.worker_threads(1);
    }
    b.enable_all().thread_name("linkwatch").build()
}
