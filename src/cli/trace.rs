//! `linkwatch trace TARGET`: trace the path to a target once and print it
//! like `mtr --report`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::output::{errln, out, out_line, then};
use super::setup::{Logging, load_or_default, runtime};
use crate::config::{Config, Host, LogFormat};
use crate::probe::trace::{self, Trace, TraceOptions, TraceProtocol};

/// What the command line asked for.
pub(super) struct TraceArgs<'a> {
    pub target: &'a str,
    pub config: Option<&'a Path>,
    pub max_hops: Option<u8>,
    pub timeout: Option<Duration>,
    pub probes: u8,
    /// UDP rather than the group's `trace_protocol` (or ICMP).
    pub udp: bool,
    pub json: bool,
}

/// Exit 0 when the destination answered, 1 when it did not (or the trace
/// could not run), 2 for bad usage.
pub(super) fn trace(logging: &Logging, args: &TraceArgs<'_>) -> ExitCode {
    let cfg = match args.config {
        Some(p) => match load_or_default(Some(p)) {
            Some(c) => Some(c),
            None => return ExitCode::from(2),
        },
        None => None,
    };
    logging.init(LogFormat::Text);
    let (host, label) = match pick_host(cfg.as_ref(), args.target) {
        Ok(h) => h,
        Err(message) => {
            errln!("{message}");
            return ExitCode::from(2);
        }
    };
    let limits = cfg.as_ref().map(|c| c.daemon.trace).unwrap_or_default();
    let protocol = if args.udp {
        TraceProtocol::Udp
    } else {
        cfg.as_ref()
            .and_then(|c| c.group(args.target))
            .map_or(TraceProtocol::Icmp, |g| g.trace.protocol)
    };
    let options = TraceOptions {
        max_hops: args.max_hops.unwrap_or(limits.max_hops),
        probes_per_hop: args.probes,
        bound: args.timeout.unwrap_or(limits.timeout),
        protocol,
        ..TraceOptions::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let started = jiff::Timestamp::now();
    let result = rt.block_on(trace::trace_host(&host, &options));
    let t = match result {
        Ok(t) => t,
        Err(e) => {
            errln!("trace to {label} failed: {e}");
            return ExitCode::from(1);
        }
    };
    let printed = if args.json {
        match serde_json::to_string_pretty(&t) {
            Ok(s) => out_line(&s),
            Err(e) => {
                errln!("failed to encode the trace: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        out(&render(&t, &label, started))
    };
    let code = if t.reached {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    then(printed, code)
}

/// A configured target's host, a group's trace target, or the argument as a host.
fn pick_host(cfg: Option<&Config>, arg: &str) -> Result<(Host, String), String> {
    if let Some(cfg) = cfg {
        if let Some(t) = cfg.target(arg) {
            let host = trace::target_host(t).ok_or_else(|| {
                format!("target `{arg}` has no host to trace to (a DNS target using the system resolver)")
            })?;
            return Ok((host.clone(), format!("{arg} ({host})")));
        }
        if let Some(g) = cfg.group(arg) {
            let host = trace::group_trace_host(cfg, g).ok_or_else(|| {
                format!("group `{arg}` has no target with a host and no trace_target")
            })?;
            return Ok((host.clone(), format!("group {arg} ({host})")));
        }
    }
    if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` is not a target name or a host",
            arg.escape_debug()
        ));
    }
    let host = match arg {
        "@gateway" => Host::Gateway,
        _ => match arg
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(arg.to_string()),
        },
    };
    Ok((host, arg.to_string()))
}

/// The mtr `--report` layout: one line per hop, loss, sent, last/avg/best/worst/stdev in ms.
fn render(t: &Trace, label: &str, started: jiff::Timestamp) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Start: {}", crate::journal::ts_ms::format(&started));
    let _ = writeln!(
        out,
        "HOST: {:<30} Loss%   Snt   Last   Avg  Best  Wrst StDev",
        label
    );
    for h in &t.hops {
        let name = match h.addr {
            Some(a) => a.to_string(),
            None => "???".to_string(),
        };
        let f = |v: Option<f64>| v.unwrap_or(0.0);
        let last = h.rtt_ms.last().copied();
        let _ = writeln!(
            out,
            "{:>3}.|-- {:<30} {:>5.1}% {:>5} {:>6.1} {:>5.1} {:>5.1} {:>5.1} {:>5.1}",
            h.ttl,
            name,
            h.loss() * 100.0,
            h.sent,
            f(last),
            f(h.avg_ms()),
            f(h.best_ms()),
            f(h.worst_ms()),
            stdev(&h.rtt_ms),
        );
        for a in &h.also {
            let _ = writeln!(out, "    |   {a}");
        }
        if let Some(u) = &h.unreachable {
            let _ = writeln!(out, "    |   !! {u}");
        }
    }
    let verdict = if t.reached {
        format!(
            "reached {} in {} hop{}",
            t.dest,
            t.hops.len(),
            if t.hops.len() == 1 { "" } else { "s" }
        )
    } else {
        match t.last_hop() {
            Some(h) => format!(
                "{} not reached; the path stops after hop {} ({})",
                t.dest,
                h.ttl,
                h.addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            None => format!("{} not reached; no hop answered", t.dest),
        }
    };
    let _ = writeln!(
        out,
        "{verdict}; {} packets in {:.2} s ({} {} socket){}",
        t.packets,
        t.duration_ms / 1e3,
        t.protocol.as_str(),
        t.mode,
        if t.partial {
            "; PARTIAL: cut at the time bound"
        } else {
            ""
        }
    );
    if let Some(e) = &t.error {
        let _ = writeln!(out, "stopped early: {e}");
    }
    out
}

fn stdev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}
