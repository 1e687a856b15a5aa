//! `linkwatch notify test --channel NAME`: send one test message through a
//! configured channel now (not through the outbox) and print its answer.

use std::path::Path;
use std::process::ExitCode;

use super::output::{errln, out_line, then};
use super::setup::{Logging, load_or_default, runtime};

pub(super) fn test(logging: &Logging, config: &Path, channel: &str) -> ExitCode {
    let Some(cfg) = load_or_default(Some(config)) else {
        return ExitCode::from(2);
    };
    logging.init(cfg.daemon.log_format);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(crate::notify::send_test(&cfg, channel)) {
        Ok(answer) => then(
            out_line(&format!("{channel}: delivered: {answer}")),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            errln!("{channel}: not delivered: {e}");
            ExitCode::from(1)
        }
    }
}
