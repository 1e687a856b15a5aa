//! `linkwatch probe`: probe each target once and print a table.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::output::{errln, out, then};
use super::setup::{Logging, load_or_default, runtime};
use crate::config::{Config, Kind, LogFormat, Target, format_bytes, format_rate};
use crate::probe::throughput::{EndedBy, ThroughputInfo};
use crate::probe::{Observation, Outcome, Phase, Probers, Reason};

const HEADER: [&str; 6] = ["TARGET", "GROUP", "KIND", "RESULT", "TIME", "DETAIL"];

/// Exit 0 if every probed target succeeded, 1 if one failed, 2 for an unknown
/// `--target`.
pub(super) fn probe(logging: &Logging, config: Option<&Path>, only: &[String]) -> ExitCode {
    let Some(cfg) = load_or_default(config) else {
        return ExitCode::from(2);
    };
    logging.init(LogFormat::Text);
    if let Some(name) = only.iter().find(|name| cfg.target(name).is_none()) {
        let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        errln!(
            "no target named `{name}` in {}; targets: {}",
            cfg.source,
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    // Only the chosen targets: probers are set up for them alone, so that
    // `probe -t some-http-target` opens no ICMP socket.
    let cfg = if only.is_empty() {
        cfg
    } else {
        Config {
            targets: cfg
                .targets
                .iter()
                .filter(|t| only.contains(&t.name))
                .cloned()
                .collect(),
            ..cfg
        }
    };
    let cfg = Arc::new(cfg);
    let reports = match probe_all(&cfg, only) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let table: Vec<[String; 6]> = reports
        .iter()
        .map(|(i, report)| row(&cfg.targets[*i], report))
        .collect();
    let code = if reports.iter().all(|(_, r)| r.outcome.is_success()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    then(out(&render_table(&HEADER, &table)), code)
}

/// Probes the selected targets (all when `only` is empty) at once, each with
/// its own timeout (throughput tests one after another); returns their
/// reports by target index, in config order.
fn probe_all(cfg: &Arc<Config>, only: &[String]) -> Result<Vec<(usize, Observation)>, ExitCode> {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("failed to start the async runtime: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let reports = rt.block_on(async {
        let probers = Arc::new(Probers::new(cfg).await?);
        // Throughput tests run one after another (each with the link to
        // itself, as the daemon runs them); everything else at once.
        let one_test = Arc::new(tokio::sync::Mutex::new(()));
        let mut set = tokio::task::JoinSet::new();
        let mut reports = Vec::new();
        // DNS targets some `compare_with` names are probed first, so that
        // the targets comparing with them find their answers.
        let compared: Vec<&str> = cfg
            .targets
            .iter()
            .filter_map(|t| match &t.spec {
                crate::config::TargetSpec::Dns(d) => Some(d.compare.as_ref()?.with.as_str()),
                _ => None,
            })
            .collect();
        let mut order: Vec<(usize, &crate::config::Target)> =
            cfg.targets.iter().enumerate().collect();
        order.sort_by_key(|(_, t)| !compared.contains(&t.name.as_str()));
        let first = order
            .iter()
            .filter(|(_, t)| compared.contains(&t.name.as_str()))
            .count();
        for (n, (i, t)) in order.into_iter().enumerate() {
            if n == first && first > 0 {
                while let Some(r) = set.join_next().await {
                    if let Ok(r) = r {
                        reports.push(r);
                    }
                }
            }
            if !only.is_empty() && !only.contains(&t.name) {
                continue;
            }
            let probers = probers.clone();
            let cfg = cfg.clone();
            let one_test = one_test.clone();
            set.spawn(async move {
                let t = &cfg.targets[i];
                let _turn = match t.kind() {
                    Kind::Throughput => Some(one_test.lock().await),
                    _ => None,
                };
                let deadline = tokio::time::Instant::now() + t.max_probe_time();
                (i, probers.probe(i, t, deadline).await)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                reports.push(r);
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        Ok(reports)
    });
    rt.shutdown_timeout(Duration::from_millis(50));
    reports.map_err(|e: crate::probe::SetupError| {
        errln!("linkwatch: {e}");
        ExitCode::from(1)
    })
}

/// One line of the table: target, group, kind, result, time, detail.
fn row(t: &Target, report: &Observation) -> [String; 6] {
    let (result, time, detail) = match &report.outcome {
        Outcome::Success { duration, .. } => ("ok", fmt_ms(*duration), success_detail(report)),
        timeout @ Outcome::Timeout { .. } => (
            "timeout",
            "-".to_string(),
            with_figures(timeout.text(Some(t.timeout)).to_string(), report),
        ),
        error @ Outcome::Error(_) => (
            "error",
            "-".to_string(),
            with_figures(error.to_string(), report),
        ),
    };
    // Error texts quote URLs: never show their credentials.
    let detail = crate::status::Secrets::of(&t.spec).scrub(&detail);
    [
        t.name.clone(),
        t.group.clone(),
        t.kind().to_string(),
        result.to_string(),
        time,
        detail,
    ]
}

/// What a success learned: its phases (when more than one), HTTP status, DNS
/// answers, the peer.
fn success_detail(report: &Observation) -> String {
    let mut extra = Vec::new();
    let mut first_byte_shown = false;
    if let Outcome::Success { phases, .. } = &report.outcome {
        let shown: Vec<String> = phases
            .iter()
            .map(|(p, d)| format!("{}={}", p.as_str(), fmt_ms(d)))
            .collect();
        if shown.len() > 1 {
            extra.push(shown.join(" "));
            first_byte_shown = phases.get(Phase::FirstByte).is_some();
        }
    }
    let info = &report.info;
    if let Some(tp) = &info.throughput {
        extra.push(throughput_figures(tp, true, first_byte_shown));
    } else if let (Some(bytes), Some(bps)) = (info.body_bytes, info.bytes_per_second) {
        // An HTTP download: its size and rate.
        extra.push(format!(
            "bytes={} rate={}",
            format_bytes(bytes),
            format_rate(bps * 8.0)
        ));
    }
    if let Some(s) = info.status {
        extra.push(format!("status={s}"));
    }
    if let Some(rc) = &info.rcode {
        extra.push(format!("rcode={rc} answers=[{}]", info.answers.join(", ")));
    }
    if let Some(peer) = info.peer {
        extra.push(format!("peer={peer}"));
    }
    extra.join(" ")
}

/// A throughput test's figures: rate (when `rate`), bytes, streams, the wait
/// for the first byte and what ended it (`partial_rate` on a failed test).
///
/// The wait is named like the phase it belongs to. The `first_byte` phase of
/// a test is its slowest stream's (set-up ends when every stream runs), so
/// with several streams the first stream's wait is `first_byte_fastest`;
/// with one stream the two are the same figure, shown once: as the phase
/// when `first_byte_shown`, else here as `first_byte`.
fn throughput_figures(tp: &ThroughputInfo, rate: bool, first_byte_shown: bool) -> String {
    let mut parts = vec![format!("{}", tp.direction)];
    if let (true, Some(bps)) = (rate, tp.bits_per_second) {
        let label = if tp.partial { "partial_rate" } else { "rate" };
        parts.push(format!("{label}={}", format_rate(bps)));
    }
    parts.push(format!("bytes={}", format_bytes(tp.bytes)));
    parts.push(format!("streams={}/{}", tp.streams_finished, tp.streams));
    if let Some(wait) = tp.time_to_first_byte_seconds {
        let wait = fmt_ms(Duration::from_secs_f64(wait));
        if tp.streams > 1 {
            parts.push(format!("first_byte_fastest={wait}"));
        } else if !first_byte_shown {
            parts.push(format!("first_byte={wait}"));
        }
    }
    if let Some(end) = tp.ended_by {
        let end = match end {
            EndedBy::MaxBytes => "max_bytes",
            EndedBy::MaxDuration => "max_duration",
            EndedBy::EndOfObject => "end_of_object",
        };
        parts.push(format!("ended_by={end}"));
    }
    if let (true, Some(l)) = (rate, &tp.loaded) {
        parts.push(loaded_figures(l));
    }
    parts.join(" ")
}

/// Latency under load: `idle_rtt=1.2ms loaded_rtt=480.1ms/512.0ms
/// increase=478.9ms rpm=123 grade=F samples=120 cc=cubic` (`confidence=low`,
/// `not_saturated` when they apply).
fn loaded_figures(l: &crate::probe::loaded::LoadedLatency) -> String {
    let ms =
        |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |s| fmt_ms(Duration::from_secs_f64(s)));
    let mut parts = vec![
        format!("idle_rtt={}", ms(l.idle_rtt_seconds)),
        format!(
            "loaded_rtt={}/{}",
            ms(l.loaded_rtt_p50_seconds),
            ms(l.loaded_rtt_p90_seconds)
        ),
        format!("increase={}", ms(l.latency_increase_seconds)),
        format!(
            "rpm={}",
            l.rpm.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"))
        ),
        format!("grade={}", l.grade_text()),
        format!("samples={}", l.samples),
        format!("probes={}", l.probe_connections),
    ];
    if l.confidence == crate::probe::loaded::Confidence::Low {
        parts.push("confidence=low".to_owned());
    }
    if let Some(cc) = &l.congestion {
        parts.push(format!("cc={cc}"));
    }
    parts.join(" ")
}

/// A failure's detail, followed by the figures a throughput test gathered:
/// the partial rate of a transfer that stalled or ran out of time, but never
/// a rate for an object that was too short to measure anything.
fn with_figures(detail: String, report: &Observation) -> String {
    let measured = match &report.outcome {
        Outcome::Timeout { .. } => true,
        Outcome::Error(e) => e.reason == Reason::Stall,
        Outcome::Success { .. } => false,
    };
    match &report.info.throughput {
        Some(tp) if tp.bytes > 0 => {
            format!("{detail} ({})", throughput_figures(tp, measured, false))
        }
        _ => detail,
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

/// Renders rows as a left-aligned table with two spaces between columns.
fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Direction;

    fn download(streams: usize) -> ThroughputInfo {
        ThroughputInfo {
            direction: Direction::Download,
            bits_per_second: Some(8e6),
            bytes: 1_000_000,
            transfer_seconds: 1.0,
            time_to_first_byte_seconds: Some(0.00128),
            streams,
            streams_finished: streams,
            ended_by: Some(EndedBy::MaxBytes),
            partial: false,
            loaded: None,
        }
    }

    /// One name per figure: `first_byte` is the phase (the slowest stream's
    /// wait), `first_byte_fastest` the first stream's; never `ttfb`.
    #[test]
    fn the_first_byte_wait_is_named_like_its_phase() {
        let several = throughput_figures(&download(4), true, true);
        assert!(several.contains("first_byte_fastest=1.280ms"), "{several}");
        assert!(!several.contains("ttfb"), "{several}");
        // One stream: the phase already shows the same figure.
        let one = throughput_figures(&download(1), true, true);
        assert!(!one.contains("first_byte"), "{one}");
        // A failed test shows no phases: the figure is the phase's.
        let failed = throughput_figures(&download(1), false, false);
        assert!(failed.contains(" first_byte=1.280ms"), "{failed}");
    }
}
