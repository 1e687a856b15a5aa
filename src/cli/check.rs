//! `linkwatch check`: validate a configuration file.

use std::path::Path;
use std::process::ExitCode;

use super::setup::print_config_problems;
use crate::config;

pub(super) fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} groups, {} targets)",
                path.display(),
                cfg.groups.len(),
                cfg.targets.len()
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
