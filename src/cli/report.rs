//! `linkwatch report`: the evidence report for a period, offline.

use std::path::Path;
use std::process::ExitCode;

use super::output::{errln, out, then};
use super::setup::resolve_data_dir;

pub(super) fn report(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
    since: &str,
    until: Option<&str>,
    // The format, and with CSV the table.
    (format, table): (crate::report::Format, crate::report::CsvTable),
    tz: &str,
    plan: [Option<&str>; 2],
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
            errln!("linkwatch: --since: {e}");
            return ExitCode::from(2);
        }
    };
    let until = match until.map(|u| crate::timeparse::parse_time(u, now)) {
        None => now,
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            errln!("linkwatch: --until: {e}");
            return ExitCode::from(2);
        }
    };
    // `--plan-download`/`--plan-upload`: rates as `[plan]` writes them.
    let mut rates = [None, None];
    for (i, (text, flag)) in plan
        .iter()
        .zip(["--plan-download", "--plan-upload"])
        .enumerate()
    {
        if let Some(text) = text {
            match crate::config::parse_rate(text) {
                Ok(bps) => rates[i] = Some(bps),
                Err(e) => {
                    errln!("linkwatch: {flag} ({text}): {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let plan = (rates != [None, None]).then_some(crate::journal::PlanRecord {
        download_bps: rates[0],
        upload_bps: rates[1],
        ..Default::default()
    });
    // The summary names the groups of `--config`, else of the configuration
    // file the journal's last run recorded (see `report::build_with`).
    // The same for the peers asked to corroborate ("Seen from elsewhere").
    let (groups, peers): (Option<Vec<String>>, Option<Vec<String>>) =
        match config_path.map(crate::config::load_for_reading) {
            Some(Ok(c)) => (
                Some(c.groups.iter().map(|g| g.name.clone()).collect()),
                Some(crate::report::asked_peers(&c)),
            ),
            _ => (None, None),
        };
    match crate::report::build_with(
        &dir,
        since,
        until,
        tz,
        plan,
        groups.as_deref(),
        peers.as_deref(),
    )
    .and_then(|r| crate::report::render_with(&r, format, table))
    {
        Ok(text) => then(out(&text), ExitCode::SUCCESS),
        Err(e @ (ReportError::EmptyPeriod { .. } | ReportError::TimeZone(_))) => {
            errln!("linkwatch: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            errln!("linkwatch: {e}");
            ExitCode::from(1)
        }
    }
}
