//! `linkwatch check`: validate a configuration file.

use std::path::Path;
use std::process::ExitCode;

use super::output::{errln, out_line, then};
use super::setup::print_config_problems;
use crate::config;
use crate::probe::Probers;

pub(super) fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            for warning in cfg.warnings() {
                errln!("warning: {warning}");
            }
            // What the daemon would fail on at start without touching the
            // network: CA files that cannot be read or parsed.
            if let Err(e) = Probers::check_offline(&cfg) {
                errln!("{}: error: {}", path.display(), chain(&e));
                return ExitCode::from(2);
            }
            if let Err(e) = crate::notify::check_offline(&cfg) {
                errln!("{}: error: {e}", path.display());
                return ExitCode::from(2);
            }
            let channels = match cfg.notify.len() {
                0 => String::new(),
                n => format!(", {}", plural(n, "notify channel")),
            };
            let printed = out_line(&format!(
                "{}: ok ({}, {}{channels})",
                path.display(),
                plural(cfg.groups.len(), "group"),
                plural(cfg.targets.len(), "target")
            ));
            let printed = campaigns(&cfg)
                .iter()
                .fold(printed, |p, line| p.and_then(|()| out_line(line)));
            then(printed, ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_config_problems(&errors, "");
            ExitCode::from(2)
        }
    }
}

/// One line per `schedule = "campaign"` target: what it runs, today's
/// planned times in the system time zone (the daemon's), the data it spends
/// and how long a complete sample takes.
fn campaigns(cfg: &config::Config) -> Vec<String> {
    let tz = jiff::tz::TimeZone::system();
    let today = jiff::Zoned::now().with_time_zone(tz.clone()).date();
    cfg.targets
        .iter()
        .filter_map(|t| match &t.spec {
            config::TargetSpec::Throughput(s) if s.schedule == config::Schedule::Campaign => {
                Some((t, s))
            }
            _ => None,
        })
        .map(|(t, s)| {
            let n = crate::campaign::TESTS_PER_DAY;
            let times = crate::campaign::day_plan(today, &tz, crate::campaign::seed(&t.name))
                .map_or_else(|| "-".to_owned(), |p| crate::campaign::describe(&p, &tz));
            format!(
                "campaign `{}`: {n} {} tests a day, 5 from 09:00-10:00 and 5 from 19:00-20:00 \
                 local time, 8-15 min apart; today ({today}, {}): {times}; up to {} of the \
                 {} daily budget; a complete BNetzA sample (3 measuring days a day apart, \
                 within 14 days) after 5 full days",
                t.name,
                s.direction,
                tz.iana_name().unwrap_or("system time zone"),
                config::format_bytes(s.max_bytes.saturating_mul(n as u64)),
                config::format_bytes(s.max_bytes_per_day),
            )
        })
        .collect()
}

/// An error and its causes on one line, each cause once (some errors repeat
/// their source in their own message).
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.ends_with(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg
}

/// `1 group`, `2 groups`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
