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
            then(printed, ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_config_problems(&errors, "");
            ExitCode::from(2)
        }
    }
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
