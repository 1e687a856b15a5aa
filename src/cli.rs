//! The command line: `run`, `check`, `probe` (and `outages`).
//!
//! Exit codes: 0 ok, 1 runtime failure (or, for `probe`, a failing target),
//! 2 bad usage or config.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConfigErrors, LogFormat};
use crate::probe::{Outcome, Probers};

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
    match cli.command {
        Command::Check { ref config } => check(config),
        Command::Run {
            ref config,
            ref data_dir,
        } => {
            let Some(mut cfg) = load_or_default(config.as_deref()) else {
                return ExitCode::from(2);
            };
            init_logging(&cli, cfg.daemon.log_format);
            match (data_dir, config) {
                (Some(dir), _) => cfg.daemon.data_dir = dir.clone(),
                // The embedded default must run for anyone: fall back from
                // /var/lib/linkwatch to a per-user directory when needed.
                (None, None) => cfg.daemon.data_dir = default_data_dir(&cfg.daemon.data_dir),
                (None, Some(_)) => {}
            }
            run_daemon(cfg)
        }
        Command::Probe {
            ref config,
            ref target,
        } => {
            let Some(cfg) = load_or_default(config.as_deref()) else {
                return ExitCode::from(2);
            };
            init_logging(&cli, LogFormat::Text);
            probe_once(cfg, target)
        }
        Command::Outages {
            ref data_dir,
            ref config,
            ref since,
            json,
            verify,
        } => outages(
            data_dir.as_deref(),
            config.as_deref(),
            since.as_deref(),
            json,
            verify,
        ),
        Command::Report {
            ref data_dir,
            ref config,
            ref since,
            ref until,
            format,
            ref tz,
        } => report(
            data_dir.as_deref(),
            config.as_deref(),
            since,
            until.as_deref(),
            format,
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

fn report(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
    since: &str,
    until: Option<&str>,
    format: crate::report::Format,
    tz: &str,
) -> ExitCode {
    use crate::report::ReportError;
    let dir = match resolve_data_dir(data_dir, config_path) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let now = jiff::Timestamp::now();
    let since = match crate::timeparse::parse_time(since, now) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("linkwatch: --since: {e}");
            return ExitCode::from(2);
        }
    };
    let until = match until.map(|u| crate::timeparse::parse_time(u, now)) {
        None => now,
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("linkwatch: --until: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::report::build(&dir, since, until, tz)
        .and_then(|r| crate::report::render(&r, format))
    {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ (ReportError::EmptyPeriod { .. } | ReportError::TimeZone(_))) => {
            eprintln!("linkwatch: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("linkwatch: {e}");
            ExitCode::from(1)
        }
    }
}

fn outages(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
    since: Option<&str>,
    json: bool,
    verify: bool,
) -> ExitCode {
    use crate::outage::listing;
    let dir = match resolve_data_dir(data_dir, config_path) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let since = match since.map(|s| crate::timeparse::parse_time(s, jiff::Timestamp::now())) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("linkwatch: --since: {e}");
            return ExitCode::from(2);
        }
    };
    if verify {
        return match listing::verify(&dir) {
            Ok(r) => {
                print!("{}", r.render());
                if r.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("linkwatch: {e}");
                ExitCode::from(1)
            }
        };
    }
    match listing::read_outages(&dir, since) {
        Ok((records, warnings)) => {
            for w in &warnings {
                eprintln!(
                    "warning: {}: {w}",
                    crate::outage::journal_path(&dir).display()
                );
            }
            if json {
                match listing::render_json(&records) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("linkwatch: failed to render JSON: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else if !crate::outage::journal_path(&dir).exists() {
                eprintln!(
                    "no journal at {}: linkwatch has not run with this data directory; pass --data-dir DIR, or --config PATH of the running daemon",
                    crate::outage::journal_path(&dir).display()
                );
            } else if records.is_empty() {
                println!(
                    "no outages recorded in {}",
                    crate::outage::journal_path(&dir).display()
                );
            } else {
                print!("{}", listing::render_table(&records));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("linkwatch: {e}");
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

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} groups, {} targets)",
                path.display(),
                cfg.groups.len(),
                cfg.targets.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_config_problems(&errors, "");
            ExitCode::from(2)
        }
    }
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

fn run_daemon(cfg: Config) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        let signals = crate::daemon::shutdown_signal();
        crate::daemon::run(
            cfg,
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
            tracing::error!(error = %e, "linkwatch could not start");
            eprintln!("linkwatch: {e}");
            ExitCode::from(1)
        }
    }
}

fn probe_once(cfg: Config, only: &[String]) -> ExitCode {
    for name in only {
        if cfg.target(name).is_none() {
            let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
            eprintln!(
                "no target named `{name}` in {}; targets: {}",
                cfg.source,
                names.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let cfg = Arc::new(cfg);
    let rows = rt.block_on(async {
        let probers = match Probers::new(&cfg).await {
            Ok(p) => Arc::new(p),
            Err(e) => return Err(e),
        };
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in cfg.targets.iter().enumerate() {
            if !only.is_empty() && !only.contains(&t.name) {
                continue;
            }
            let probers = probers.clone();
            let cfg = cfg.clone();
            set.spawn(async move {
                let t = &cfg.targets[i];
                let deadline = tokio::time::Instant::now() + t.timeout;
                (i, probers.probe(i, t, deadline).await)
            });
        }
        let mut rows = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                rows.push(r);
            }
        }
        rows.sort_by_key(|(i, _)| *i);
        Ok(rows)
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            eprintln!("linkwatch: {e}");
            return ExitCode::from(1);
        }
    };
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|(i, report)| {
            let t = &cfg.targets[*i];
            let (result, time, reason) = match &report.outcome {
                Outcome::Success { duration, phases } => {
                    let mut extra = Vec::new();
                    let ph: Vec<String> = phases
                        .iter()
                        .map(|(p, d)| format!("{}={}", p.as_str(), fmt_ms(d)))
                        .collect();
                    if ph.len() > 1 {
                        extra.push(ph.join(" "));
                    }
                    if let Some(s) = report.info.status {
                        extra.push(format!("status={s}"));
                    }
                    if let Some(rc) = &report.info.rcode {
                        extra.push(format!(
                            "rcode={rc} answers=[{}]",
                            report.info.answers.join(", ")
                        ));
                    }
                    if let Some(peer) = report.info.peer {
                        extra.push(format!("peer={peer}"));
                    }
                    ("ok".to_string(), fmt_ms(*duration), extra.join(" "))
                }
                Outcome::Timeout { phase } => (
                    "timeout".to_string(),
                    "-".to_string(),
                    match phase {
                        Some(p) => {
                            format!("no answer within {:?} (during {})", t.timeout, p.as_str())
                        }
                        None => format!("no answer within {:?}", t.timeout),
                    },
                ),
                Outcome::Error(e) => (
                    "error".to_string(),
                    "-".to_string(),
                    format!("{}: {}", e.reason, e.detail),
                ),
            };
            [
                t.name.clone(),
                t.group.clone(),
                t.kind().to_string(),
                result,
                time,
                reason,
            ]
        })
        .collect();
    print!(
        "{}",
        render_table(
            &["TARGET", "GROUP", "KIND", "RESULT", "TIME", "DETAIL"],
            &table
        )
    );
    if rows.iter().all(|(_, r)| r.outcome.is_success()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fmt_ms(d: std::time::Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

/// Renders rows as a left-aligned table with two spaces between columns.
pub fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
