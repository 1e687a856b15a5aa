//! The command line: `run`, `check`, `probe`, `outages`, `report`, `trace` and
//! `healthcheck`, one module each; this module holds the arguments and the dispatch, [`setup`]
//! what the commands share (config loading, logging, the runtime).
//!
//! Exit codes: 0 ok, 1 runtime failure (or, for `probe`, a failing target),
//! 2 bad usage or config.

mod check;
mod healthcheck;
mod notify;
mod outages;
mod output;
mod probe;
mod report;
mod run;
mod setup;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::LogFormat;
use setup::Logging;

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
        /// Configuration file (TOML); without it, the embedded default.
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Overrides `daemon.data_dir` (where the outage journal lives).
        #[arg(long, value_name = "DIR", env = "LINKWATCH_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate a configuration file; print every problem with file, line and column.
    Check {
        /// Configuration file (TOML) to check.
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
    /// Probe each target once and print a table (exit 1 if any failed).
    Probe {
        /// Configuration file (TOML); without it, the embedded default.
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
        /// With --verify: also fetch the heads this peer (a [[peer]] of --config
        /// with a url) witnessed and check each is on the local chain; exit 1
        /// naming the first witnessed seq that does not match.
        #[arg(long, value_name = "NAME", requires = "verify")]
        peer: Option<String>,
        /// List degradation periods (slow or lossy, not down) instead of outages,
        /// with their triggers and figures.
        #[arg(long, conflicts_with = "verify")]
        degraded: bool,
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
        /// Output format.
        #[arg(long, value_enum, default_value = "markdown")]
        format: crate::report::Format,
        /// Time zone for the times shown (IANA name, e.g. Asia/Almaty; default UTC).
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        tz: String,
        /// Judge throughput tests against this download rate ("100 Mbit/s")
        /// instead of the [plan] the journal recorded.
        #[arg(long, value_name = "RATE")]
        plan_download: Option<String>,
        /// The same for upload tests.
        #[arg(long, value_name = "RATE")]
        plan_upload: Option<String>,
        /// With --format csv: which table to print (one well-formed CSV table per run).
        #[arg(long, value_enum, value_name = "NAME", default_value = "outages")]
        table: crate::report::CsvTable,
    },
    /// Trace the path to a target once (hop by hop, like `mtr --report`); exit 1 if it is not reached.
    Trace {
        /// A target or group name from --config, or a host (IP address or DNS name).
        #[arg(value_name = "TARGET")]
        target: String,
        /// Configuration file (TOML) whose target and group names TARGET may be,
        /// and whose trace settings apply; without it, TARGET is a host.
        #[arg(long, short, value_name = "PATH")]
        config: Option<PathBuf>,
        /// TTLs probed at most (default: daemon.trace_max_hops, else 30).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
        max_hops: Option<u8>,
        /// Cut the trace after this long (default: daemon.trace_timeout, else 10s).
        #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Requests per hop.
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
        probes: u8,
        /// UDP datagrams to ports 33434 and up instead of ICMP echo (needs no
        /// privilege; default: a group's trace_protocol, else ICMP).
        #[arg(long)]
        udp: bool,
        /// Print the snapshot as JSON (the journal's hop format).
        #[arg(long)]
        json: bool,
    },
    /// Notification channels ([[notify]]): `notify test --channel NAME`.
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Ask a running daemon's /healthz (exit 0 healthy, 1 not); for container HEALTHCHECKs.
    Healthcheck {
        /// The daemon's /healthz URL (plain http; point it at the config's listen address).
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://127.0.0.1:9898/healthz"
        )]
        url: String,
        /// Give up after this long.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::config::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// `linkwatch notify …`.
#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Send a test message through one channel now and print its answer (exit 1 if refused).
    Test {
        /// Configuration file (TOML) holding the [[notify]] channel.
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        /// The channel's `name`.
        #[arg(long, value_name = "NAME")]
        channel: String,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    // A journal writer child of the daemon (before any parsing).
    if let Some(code) = crate::journal::child::main_if_child() {
        return code;
    }
    let cli = Cli::parse();
    let logging = Logging {
        filter: cli.log_level.clone(),
        format: cli.log_format.map(|f| match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    match &cli.command {
        Command::Run { config, data_dir } => {
            run::run(&logging, config.as_deref(), data_dir.as_deref())
        }
        Command::Check { config } => check::check(config),
        Command::Notify {
            action: NotifyAction::Test { config, channel },
        } => notify::test(&logging, config, channel),
        Command::Healthcheck { url, timeout } => healthcheck::healthcheck(url, *timeout),
        Command::Probe { config, target } => probe::probe(&logging, config.as_deref(), target),
        Command::Outages {
            data_dir,
            config,
            since,
            json,
            verify,
            peer,
            degraded,
        } => match peer {
            Some(peer) => outages::verify_peer(data_dir.as_deref(), config.as_deref(), peer),
            None => outages::outages(
                data_dir.as_deref(),
                config.as_deref(),
                since.as_deref(),
                *json,
                *verify,
                *degraded,
            ),
        },
        Command::Report {
            data_dir,
            config,
            since,
            until,
            format,
            tz,
            plan_download,
            plan_upload,
            table,
        } => report::report(
            data_dir.as_deref(),
            config.as_deref(),
            since,
            until.as_deref(),
            (*format, *table),
            tz,
            [plan_download.as_deref(), plan_upload.as_deref()],
        ),
        Command::Trace {
            target,
            config,
            max_hops,
            timeout,
            probes,
            udp,
            json,
        } => trace::trace(
            &logging,
            &trace::TraceArgs {
                target,
                config: config.as_deref(),
                max_hops: *max_hops,
                timeout: *timeout,
                probes: *probes,
                udp: *udp,
                json: *json,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` explains every argument of every command (`trace -c` had none).
    #[test]
    fn every_argument_has_help_text() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for cmd in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} {}", cmd.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
