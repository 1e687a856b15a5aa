//! `linkwatch outages`: list (or verify) the recorded outages, offline.

use std::path::Path;
use std::process::ExitCode;

use super::output::{errln, out, out_line, then};
use super::setup::resolve_data_dir;

pub(super) fn outages(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
    since: Option<&str>,
    json: bool,
    verify: bool,
    degraded: bool,
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
            errln!("linkwatch: --since: {e}");
            return ExitCode::from(2);
        }
    };
    if verify {
        return match crate::journal::verify(&dir) {
            Ok(r) => {
                let code = if r.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                };
                then(out(&r.render()), code)
            }
            Err(e) => {
                errln!("linkwatch: {e}");
                ExitCode::from(1)
            }
        };
    }
    if degraded {
        return degradations(&dir, since, json);
    }
    match listing::read_outages_with_paths(&dir, since) {
        Ok((records, warnings)) => {
            for w in &warnings {
                errln!(
                    "warning: {}: {w}",
                    crate::journal::journal_path(&dir).display()
                );
            }
            let printed = if json {
                match listing::render_json_with_paths(&records) {
                    Ok(s) => out_line(&s),
                    Err(e) => {
                        errln!("linkwatch: failed to render JSON: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else if !crate::journal::journal_path(&dir).exists() {
                errln!(
                    "no journal at {}: linkwatch has not run with this data directory; pass --data-dir DIR, or --config PATH of the running daemon",
                    crate::journal::journal_path(&dir).display()
                );
                Ok(())
            } else if records.is_empty() {
                out_line(&format!(
                    "no outages recorded in {}",
                    crate::journal::journal_path(&dir).display()
                ))
            } else {
                out(&listing::render_table_with_paths(&records))
            };
            then(printed, ExitCode::SUCCESS)
        }
        Err(e) => {
            errln!("linkwatch: {e}");
            ExitCode::from(1)
        }
    }
}

/// `linkwatch outages --degraded`: the degradation periods.
fn degradations(dir: &Path, since: Option<jiff::Timestamp>, json: bool) -> ExitCode {
    use crate::outage::degraded::listing;
    let journal = crate::journal::journal_path(dir);
    match listing::read_degradations(dir, since) {
        Ok((records, warnings)) => {
            for w in &warnings {
                errln!("warning: {}: {w}", journal.display());
            }
            let printed = if json {
                match listing::render_json(&records) {
                    Ok(s) => out_line(&s),
                    Err(e) => {
                        errln!("linkwatch: failed to render JSON: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else if !journal.exists() {
                errln!(
                    "no journal at {}: linkwatch has not run with this data directory; pass --data-dir DIR, or --config PATH of the running daemon",
                    journal.display()
                );
                Ok(())
            } else if records.is_empty() {
                out_line(&format!(
                    "no degradations recorded in {}",
                    journal.display()
                ))
            } else {
                out(&listing::render_table(&records))
            };
            then(printed, ExitCode::SUCCESS)
        }
        Err(e) => {
            errln!("linkwatch: {e}");
            ExitCode::from(1)
        }
    }
}

/// `linkwatch outages --verify --peer NAME`: the hash chain, then the heads
/// that peer witnessed held against it. Exit 1 when either fails (or the
/// peer cannot be asked), 2 on a usage error.
pub(super) fn verify_peer(
    data_dir: Option<&Path>,
    config_path: Option<&Path>,
    peer: &str,
) -> ExitCode {
    let Some(config_path) = config_path else {
        errln!(
            "linkwatch: --peer needs --config PATH: the peer's url and token come from its [[peer]] table"
        );
        return ExitCode::from(2);
    };
    let Some(config) = super::setup::load_or_default(Some(config_path)) else {
        return ExitCode::from(2);
    };
    let dir = data_dir.map_or_else(|| config.daemon.data_dir.clone(), Path::to_path_buf);
    let chain = match crate::journal::verify(&dir) {
        Ok(r) => r,
        Err(e) => {
            errln!("linkwatch: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("linkwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let witnessed = runtime.block_on(crate::peer::verify::verify_with_peer(&config, peer, &dir));
    let mut text = chain.render();
    let ok = match &witnessed {
        Ok(w) => {
            text.push_str(&w.render());
            chain.ok() && w.ok()
        }
        Err(e) => {
            text.push_str(&format!("witnesses NOT checked: {e}\n"));
            false
        }
    };
    then(
        out(&text),
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
