//! `linkwatch check`: validate a configuration file.

use std::path::Path;
use std::process::ExitCode;

use super::setup::print_config_problems;
use crate::config;

pub(super) fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: ok ({}, {})",
                path.display(),
                plural(cfg.groups.len(), "group"),
                plural(cfg.targets.len(), "target")
            );
            for warning in cfg.warnings() {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_config_problems(&errors, "");
            ExitCode::from(2)
        }
    }
}

/// `1 group`, `2 groups`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
