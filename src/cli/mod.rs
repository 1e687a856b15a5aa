//! The command line: `run`, `check`, `probe`, `outages` and `report`, one
//! module each; this module holds the arguments, the dispatch and what the
//! commands share (config loading, logging, the runtime).
//!
//! Exit codes: 0 ok, 1 runtime failure (or, for `probe`, a failing target),
//! 2 bad usage or config.

mod check;
mod outages;
mod probe;
mod report;
mod run;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConfigErrors, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "linkwatch",
    version,
    about = "Measures internet connectivity around the clock, exports it to Prometheus and records every outage.",
    propagate_version = true
)]
pub struct Cli {
    /// Log level or tracing filter (e.g. `debug`, `linkwatch=trace`); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format; overrides `daemon.log_format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (without --config: the embedded default configuration).
    Run {
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Overrides `daemon.data_dir` (where the outage journal lives).
        #[arg(long, value_name = "DIR", env = "LINKWATCH_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate a configuration file; print every problem with file, line and column.
    Check {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
    /// Probe each target once and print a table (exit 1 if any failed).
    Probe {
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Only this target (repeatable).
        #[arg(long, short, value_name = "NAME")]
        target: Vec<String>,
    },
    /// List recorded outages from the journal (no running daemon needed).
    Outages {
        /// Directory holding journal.jsonl (default: the config's data_dir, else /var/lib/linkwatch).
        #[arg(long, value_name = "DIR", env = "LINKWATCH_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Take data_dir from this configuration file.
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Only outages ending at or after T (RFC 3339, 2026-11-01, or a span back from now: 7d, 12h).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Print JSON (the API's shape) instead of a table.
        #[arg(long)]
        json: bool,
        /// Check the journal's hash chain and name the first broken line; exit 1 if broken.
        #[arg(long)]
        verify: bool,
    },
    /// Evidence report for a period: coverage, journal integrity, outages by group and cause.
    Report {
        /// Directory holding journal.jsonl (default: the config's data_dir, else /var/lib/linkwatch).
        #[arg(long, value_name = "DIR", env = "LINKWATCH_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Take data_dir from this configuration file.
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Start of the period (RFC 3339, 2026-11-01, or a span back from now: 7d).
        #[arg(long, value_name = "T")]
        since: String,
        /// End of the period (default: now).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "markdown")]
        format: crate::report::Format,
        /// Time zone for the times shown (IANA name, e.g. Asia/Almaty; default UTC).
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        tz: String,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run { config, data_dir } => run::run(&cli, config.as_deref(), data_dir.as_deref()),
        Command::Check { config } => check::check(config),
        Command::Probe { config, target } => probe::probe(&cli, config.as_deref(), target),
        Command::Outages {
            data_dir,
            config,
            since,
            json,
            verify,
        } => outages::outages(
            data_dir.as_deref(),
            config.as_deref(),
            since.as_deref(),
            *json,
            *verify,
        ),
        Command::Report {
            data_dir,
            config,
            since,
            until,
            format,
            tz,
        } => report::report(
            data_dir.as_deref(),
            config.as_deref(),
            since,
            until.as_deref(),
            *format,
            tz,
        ),
    }
}

/// The data directory for offline commands: `--data-dir`, else the config's, else the default's.
fn resolve_data_dir(
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

fn load_or_default(path: Option<&Path>) -> Option<Config> {
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

fn print_config_errors(errors: &ConfigErrors) {
    print_config_problems(errors, "; linkwatch did not start");
}

fn print_config_problems(errors: &ConfigErrors, suffix: &str) {
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

fn init_logging(cli: &Cli, configured: LogFormat) {
    let filter = match &cli.log_level {
        Some(level) => EnvFilter::try_new(level),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .unwrap_or_else(|e| {
        eprintln!("invalid --log-level/RUST_LOG filter ({e}); using `info`");
        EnvFilter::new("info")
    });
    let format = match cli.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => configured,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The async runtime. One worker thread unless `TOKIO_WORKER_THREADS` says
/// otherwise: probing is I/O-bound, and at 10 000 targets a second worker
/// costs ~4 % of a core in context switches alone (BENCHMARKS.md). Blocking
/// work (name resolution, fsync, /metrics encoding) runs on the blocking pool.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        b.worker_threads(1);
    }
    b.enable_all().thread_name("linkwatch").build()
}
