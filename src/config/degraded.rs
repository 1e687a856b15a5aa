//! `[defaults.degraded]` and `[group.degraded]`: the thresholds that make a
//! group *degraded* (slow, lossy) rather than down, read key by key (a
//! group's own key replaces the default's), and the check that each group's
//! `window` can hold `min_samples` probes of the targets that feed a figure.
//!
//! Built-in defaults: `window = "5m"`, `min_samples = 20` and no threshold,
//! so a configuration without `degraded` tables never reports a degradation
//! (the window figures are still exported); `config/default.toml` sets
//! conservative thresholds for every group.

use std::time::Duration;

use super::error::shown;
use super::model::{Kind, Target};
use super::thresholds::{Degraded, ThroughputFloor};
use super::throughput::Plan;
use super::throughput::{format_rate, parse_rate};
use super::validate;
use super::walk::{At, Got, Reported, Span, Tbl, Walker};

pub(super) const KEYS: &[&str] = &[
    "window",
    "min_samples",
    "loss_above",
    "rtt_p50_above",
    "rtt_p95_above",
    "throughput_below",
    "dns_p95_above",
    "http_p95_above",
    "loaded_latency_increase_above",
];

/// A threshold of `throughput_below` as written.
#[derive(Debug, Clone, Copy)]
enum Floor {
    Rate(f64),
    Percent(f64),
}

/// One `degraded` table as written: each key absent, valid (with its span) or reported.
#[derive(Default)]
pub(super) struct Partial {
    /// The table itself (for messages about a group that sets nothing wrong).
    span: Option<Span>,
    window: Option<At<Duration>>,
    min_samples: Option<At<u32>>,
    loss_above: Option<At<f64>>,
    rtt_p50_above: Option<At<Duration>>,
    rtt_p95_above: Option<At<Duration>>,
    throughput_below: Option<At<Floor>>,
    dns_p95_above: Option<At<Duration>>,
    http_p95_above: Option<At<Duration>>,
    loaded_latency_increase_above: Option<At<Duration>>,
    /// Some key was reported: the table is unusable.
    bad: bool,
}

/// Reads the `degraded` table of `parent` (`[defaults]` or a `[[group]]`).
pub(super) fn table(w: &mut Walker<'_>, parent: &Tbl<'_, '_>) -> Partial {
    let t = match w.table(parent, "degraded") {
        Ok(Some(t)) => t,
        Ok(None) => return Partial::default(),
        Err(_) => {
            return Partial {
                bad: true,
                ..Partial::default()
            };
        }
    };
    w.check_keys(&t, KEYS);
    let mut bad = false;
    let window = w.duration_with(&t, "window", |d, s| {
        if (Degraded::MIN_WINDOW..=Degraded::MAX_WINDOW).contains(&d) {
            Ok(())
        } else {
            Err(format!("`window` ({s}) must be in the range 1s..=24h"))
        }
    });
    let window = keep(&mut bad, window);
    let min_samples = w.integer(&t, "min_samples", 1, 1_000_000);
    let min_samples = keep(
        &mut bad,
        min_samples.map(|o| {
            o.map(|v| At {
                value: v.value as u32,
                span: v.span,
            })
        }),
    );
    let loss_above = percent(w, &t, "loss_above");
    let loss_above = keep(
        &mut bad,
        loss_above.map(|o| {
            o.map(|v| At {
                value: v.value / 100.0,
                span: v.span,
            })
        }),
    );
    let rtt_p50_above = keep(&mut bad, latency(w, &t, "rtt_p50_above"));
    let rtt_p95_above = keep(&mut bad, latency(w, &t, "rtt_p95_above"));
    let throughput_below = keep(&mut bad, floor(w, &t));
    let dns_p95_above = keep(&mut bad, latency(w, &t, "dns_p95_above"));
    let http_p95_above = keep(&mut bad, latency(w, &t, "http_p95_above"));
    let loaded_latency_increase_above =
        keep(&mut bad, latency(w, &t, "loaded_latency_increase_above"));
    Partial {
        loaded_latency_increase_above,
        span: Some(t.span.clone()),
        window,
        min_samples,
        loss_above,
        rtt_p50_above,
        rtt_p95_above,
        throughput_below,
        dns_p95_above,
        http_p95_above,
        bad,
    }
}

/// The value of a key, noting in `bad` that it was reported.
fn keep<T>(bad: &mut bool, got: Got<T>) -> Option<At<T>> {
    match got {
        Ok(v) => v,
        Err(_) => {
            *bad = true;
            None
        }
    }
}

/// `"5%"`: a percentage 0..=100.
fn percent(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Got<f64> {
    let got = w.string_as(t, key, "a percentage such as \"5%\"");
    w.check(t, key, got, |s| parse_percent(s, key))
}

fn parse_percent(s: &str, key: &str) -> Result<f64, String> {
    let number = s.trim().strip_suffix('%').ok_or_else(|| {
        format!(
            "`{key}` ({s}) must be a percentage such as \"5%\"",
            s = shown(s)
        )
    })?;
    let v: f64 = number.trim().parse().map_err(|_| {
        format!(
            "`{key}` ({s}) must be a percentage such as \"5%\"",
            s = shown(s)
        )
    })?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!(
            "`{key}` ({s}) must be in the range 0%..=100%",
            s = shown(s)
        ));
    }
    Ok(v)
}

fn latency(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Got<Duration> {
    w.duration_with(t, key, |d, s| {
        if d.is_zero() || d > Duration::from_secs(600) {
            Err(format!("`{key}` ({s}) must be in the range 1ms..=10m"))
        } else {
            Ok(())
        }
    })
}

/// `throughput_below`: a rate (`"5 Mbit/s"`) or a percentage of `[plan]` (`"50%"`).
fn floor(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<Floor> {
    let key = "throughput_below";
    let got = w.string_as(
        t,
        key,
        "a rate such as \"5 Mbit/s\" or a percentage such as \"50%\"",
    );
    w.check(t, key, got, |s| {
        if s.trim().ends_with('%') {
            let p = parse_percent(s, key)?;
            if p == 0.0 {
                return Err(format!("`{key}` ({s}) must be more than 0%", s = shown(s)));
            }
            Ok(Floor::Percent(p))
        } else {
            parse_rate(s).map(Floor::Rate).map_err(|reason| {
                format!(
                    "`{key}` ({s}) is not a rate ({reason}); write e.g. \"5 Mbit/s\", or \"50%\" of [plan]", s = shown(s)
                )
            })
        }
    })
}

/// Which kinds feed each figure (throughput aside).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Figure {
    Loss,
    RttP50,
    RttP95,
    DnsP95,
    HttpP95,
}

impl Figure {
    fn key(self) -> &'static str {
        match self {
            Figure::Loss => "loss_above",
            Figure::RttP50 => "rtt_p50_above",
            Figure::RttP95 => "rtt_p95_above",
            Figure::DnsP95 => "dns_p95_above",
            Figure::HttpP95 => "http_p95_above",
        }
    }

    fn feeds(self, kind: Kind) -> bool {
        match self {
            Figure::Loss => matches!(kind, Kind::Icmp | Kind::Tcp | Kind::Dns),
            Figure::RttP50 | Figure::RttP95 => matches!(kind, Kind::Icmp | Kind::Tcp),
            Figure::DnsP95 => kind == Kind::Dns,
            Figure::HttpP95 => kind == Kind::Http,
        }
    }

    fn kinds(self) -> &'static str {
        match self {
            Figure::Loss => "icmp, tcp and dns",
            Figure::RttP50 | Figure::RttP95 => "icmp and tcp",
            Figure::DnsP95 => "dns",
            Figure::HttpP95 => "http",
        }
    }
}

/// A group's `degraded` table with what it inherits, for [`resolve`].
pub(super) struct GroupInput<'a> {
    pub index: usize,
    pub name: &'a str,
    /// The group's `name` span (for a problem when it has no table of its own).
    pub name_span: Span,
    pub own: &'a Partial,
}

/// The effective thresholds of each group (`None` for a group whose table,
/// or the defaults', was reported), after checking `throughput_below` against
/// `[plan]` and each window against its targets' intervals.
pub(super) fn resolve(
    w: &mut Walker<'_>,
    defaults: &Partial,
    groups: &[GroupInput<'_>],
    targets: &[&Target],
    plan: Option<&Plan>,
) -> Vec<Option<Degraded>> {
    // A percentage in [defaults.degraded] is checked once, there.
    let defaults_floor = plan_floor(w, defaults, "defaults", plan);
    groups
        .iter()
        .map(|g| {
            let own_floor = plan_floor(w, g.own, &format!("group[{}]", g.index), plan);
            // A reported key leaves the group without thresholds, but the
            // rest is still checked so that every problem is shown at once.
            let bad = g.own.bad || defaults.bad;
            let pick = |o: &Option<At<Duration>>, d: &Option<At<Duration>>| {
                o.as_ref().or(d.as_ref()).map(|v| v.value)
            };
            let throughput_below = match (&g.own.throughput_below, &defaults.throughput_below) {
                (Some(_), _) => own_floor.ok().flatten(),
                (None, Some(_)) => defaults_floor.ok().flatten(),
                (None, None) => None,
            };
            let d = Degraded {
                window: pick(&g.own.window, &defaults.window).unwrap_or(Degraded::DEFAULT_WINDOW),
                min_samples: g
                    .own
                    .min_samples
                    .as_ref()
                    .or(defaults.min_samples.as_ref())
                    .map_or(Degraded::DEFAULT_MIN_SAMPLES, |v| v.value),
                loss_above: g
                    .own
                    .loss_above
                    .as_ref()
                    .or(defaults.loss_above.as_ref())
                    .map(|v| v.value),
                rtt_p50_above: pick(&g.own.rtt_p50_above, &defaults.rtt_p50_above),
                rtt_p95_above: pick(&g.own.rtt_p95_above, &defaults.rtt_p95_above),
                throughput_below,
                dns_p95_above: pick(&g.own.dns_p95_above, &defaults.dns_p95_above),
                http_p95_above: pick(&g.own.http_p95_above, &defaults.http_p95_above),
                loaded_latency_increase_above: pick(
                    &g.own.loaded_latency_increase_above,
                    &defaults.loaded_latency_increase_above,
                ),
            };
            let members: Vec<&Target> = targets
                .iter()
                .copied()
                .filter(|t| t.group == g.name)
                .collect();
            let windows_ok = check_window(w, g, defaults, &d, &members).is_ok();
            let floor_ok = own_floor.is_ok() && defaults_floor.is_ok();
            (!bad && windows_ok && floor_ok).then_some(d)
        })
        .collect()
}

/// Resolves a written `throughput_below` against `[plan] download` (for
/// download tests) and `[plan] upload` (for upload tests); a percentage
/// needs at least one of them.
fn plan_floor(
    w: &mut Walker<'_>,
    p: &Partial,
    path: &str,
    plan: Option<&Plan>,
) -> Result<Option<ThroughputFloor>, Reported> {
    let Some(f) = &p.throughput_below else {
        return Ok(None);
    };
    match f.value {
        Floor::Rate(bps) => Ok(Some(ThroughputFloor {
            bps: Some(bps),
            upload_bps: Some(bps),
            percent_of_plan: None,
        })),
        Floor::Percent(pct) => match (
            plan.and_then(|p| p.download_bps),
            plan.and_then(|p| p.upload_bps),
        ) {
            (down, up) if down.is_some() || up.is_some() => Ok(Some(ThroughputFloor {
                bps: down.map(|r| r * pct / 100.0),
                upload_bps: up.map(|r| r * pct / 100.0),
                percent_of_plan: Some(pct),
            })),
            _ => {
                let shown = w.snippet(&f.span);
                let message = format!(
                    "`throughput_below` ({}) is a percentage of the plan's download rate, \
                     but no [plan] download is set; add [plan] download = \"100 Mbit/s\" \
                     or write an absolute rate such as \"5 Mbit/s\"",
                    shown.trim_matches('"')
                );
                Err(w.report(
                    f.span.clone(),
                    format!("{path}.degraded.throughput_below"),
                    message,
                ))
            }
        },
    }
}

/// Each figure with a threshold must be able to reach `min_samples` probes
/// of the kinds that feed it within `window`, counting every member target
/// at its interval. A group's own threshold on a figure none of its targets
/// measures is an error (it could never trip); one inherited from
/// `[defaults.degraded]` simply does not apply.
fn check_window(
    w: &mut Walker<'_>,
    g: &GroupInput<'_>,
    defaults: &Partial,
    d: &Degraded,
    members: &[&Target],
) -> Result<(), Reported> {
    let own_key = |f: Figure| -> Option<&At<Duration>> {
        match f {
            Figure::RttP50 => g.own.rtt_p50_above.as_ref(),
            Figure::RttP95 => g.own.rtt_p95_above.as_ref(),
            Figure::DnsP95 => g.own.dns_p95_above.as_ref(),
            Figure::HttpP95 => g.own.http_p95_above.as_ref(),
            Figure::Loss => None,
        }
    };
    let figures = [
        (Figure::Loss, d.loss_above.is_some()),
        (Figure::RttP50, d.rtt_p50_above.is_some()),
        (Figure::RttP95, d.rtt_p95_above.is_some()),
        (Figure::DnsP95, d.dns_p95_above.is_some()),
        (Figure::HttpP95, d.http_p95_above.is_some()),
    ];
    let mut result = Ok(());
    for (f, set) in figures {
        if !set {
            continue;
        }
        let own_span = match f {
            Figure::Loss => g.own.loss_above.as_ref().map(|v| v.span.clone()),
            _ => own_key(f).map(|v| v.span.clone()),
        };
        let feeding: Vec<&&Target> = members.iter().filter(|t| f.feeds(t.kind())).collect();
        if feeding.is_empty() {
            if let Some(span) = own_span {
                let message = format!(
                    "`{}` is set for group `{}`, but none of its targets measures it \
                     (it is computed over {} targets)",
                    f.key(),
                    g.name,
                    f.kinds()
                );
                result = Err(w.report(
                    span,
                    format!("group[{}].degraded.{}", g.index, f.key()),
                    message,
                ));
            }
            continue;
        }
        let capacity: u128 = feeding
            .iter()
            .map(|t| d.window.as_millis() / t.interval.as_millis().max(1))
            .sum();
        if capacity >= u128::from(d.min_samples) {
            continue;
        }
        // Point at what the user can change, the group's own keys first.
        let (span, key) = if let Some(v) = &g.own.window {
            (
                v.span.clone(),
                format!("group[{}].degraded.window", g.index),
            )
        } else if let Some(v) = &g.own.min_samples {
            (
                v.span.clone(),
                format!("group[{}].degraded.min_samples", g.index),
            )
        } else if let Some(s) = own_span {
            (s, format!("group[{}].degraded.{}", g.index, f.key()))
        } else if let Some(v) = &defaults.window {
            (v.span.clone(), "defaults.degraded.window".to_owned())
        } else if let Some(s) = defaults.span.clone() {
            (s, "defaults.degraded".to_owned())
        } else {
            (g.name_span.clone(), format!("group[{}].name", g.index))
        };
        let intervals: Vec<String> = feeding
            .iter()
            .map(|t| format!("{} every {}", t.name, validate::format_duration(t.interval)))
            .collect();
        let message = format!(
            "group `{}`: `window` ({}) holds at most {capacity} probes of the {} targets \
             that feed `{}` ({}), fewer than `min_samples` ({}); lengthen the window, \
             probe more often or lower `min_samples`",
            g.name,
            validate::format_duration(d.window),
            f.kinds(),
            f.key(),
            intervals.join(", "),
            d.min_samples
        );
        return Err(w.report(span, key, message));
    }
    result
}

/// `throughput_below` for messages and reports: `5 Mbit/s`, `50% of plan
/// (50 Mbit/s)` (download only) or `50% of plan (50 Mbit/s down, 5 Mbit/s up)`.
pub fn describe_floor(f: &ThroughputFloor) -> String {
    let rates = match (f.bps, f.upload_bps) {
        (Some(d), Some(u)) if f.percent_of_plan.is_some() => {
            format!("{} down, {} up", format_rate(d), format_rate(u))
        }
        (Some(d), _) => format_rate(d),
        (None, Some(u)) => format!("{} up", format_rate(u)),
        (None, None) => "no plan rate".to_owned(),
    };
    match f.percent_of_plan {
        Some(p) => format!("{p}% of plan ({rates})"),
        None => rates,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::parse;

    const BASE: &str = r#"
[plan]
download = "100 Mbit/s"

[defaults]
interval = "1s"
timeout = "500ms"

[defaults.degraded]
window = "30s"
loss_above = "5%"
rtt_p95_above = "600ms"
throughput_below = "50%"

[[group]]
name = "isp"
[[group]]
name = "intl"
needs = "isp"
[group.degraded]
window = "1m"
loss_above = "2.5%"
throughput_below = "5 Mbit/s"
http_p95_above = "3s"

[[target]]
name = "a"
group = "isp"
kind = "icmp"
host = "192.0.2.1"
[[target]]
name = "b"
group = "intl"
kind = "http"
url = "http://192.0.2.2/"
[[target]]
name = "c"
group = "intl"
kind = "icmp"
host = "192.0.2.3"
"#;

    #[test]
    fn group_keys_override_defaults_key_by_key_and_percent_resolves_against_the_plan() {
        let c = parse(BASE, "t").unwrap();
        let isp = &c.group("isp").unwrap().degraded;
        assert_eq!(isp.window, Duration::from_secs(30));
        assert_eq!(isp.min_samples, Degraded::DEFAULT_MIN_SAMPLES);
        assert_eq!(isp.loss_above, Some(0.05));
        assert_eq!(isp.rtt_p95_above, Some(Duration::from_millis(600)));
        assert_eq!(
            isp.throughput_below,
            Some(ThroughputFloor {
                bps: Some(50e6),
                upload_bps: None,
                percent_of_plan: Some(50.0)
            })
        );
        let intl = &c.group("intl").unwrap().degraded;
        assert_eq!(intl.window, Duration::from_secs(60));
        assert_eq!(intl.loss_above, Some(0.025));
        assert_eq!(intl.rtt_p95_above, Some(Duration::from_millis(600)));
        assert_eq!(intl.throughput_below.and_then(|f| f.bps), Some(5e6));
        assert_eq!(intl.throughput_below.and_then(|f| f.upload_bps), Some(5e6));
        assert_eq!(intl.http_p95_above, Some(Duration::from_secs(3)));
        assert_eq!(c.plan.unwrap().download_bps, Some(100e6));
        assert_eq!(
            describe_floor(&isp.throughput_below.unwrap()),
            "50% of plan (50 Mbit/s)"
        );
    }

    #[test]
    fn a_percentage_floor_resolves_per_direction_against_the_plan() {
        let both = BASE.replace(
            "download = \"100 Mbit/s\"\n",
            "download = \"100 Mbit/s\"\nupload = \"20 Mbit/s\"\n",
        );
        let c = parse(&both, "t").unwrap();
        let isp = c.group("isp").unwrap().degraded.throughput_below.unwrap();
        assert_eq!((isp.bps, isp.upload_bps), (Some(50e6), Some(10e6)));
        assert_eq!(
            describe_floor(&isp),
            "50% of plan (50 Mbit/s down, 10 Mbit/s up)"
        );
        // Only an upload rate: downloads are not judged by the percentage.
        let up_only = BASE.replace("download = \"100 Mbit/s\"", "upload = \"20 Mbit/s\"");
        let c = parse(&up_only, "t").unwrap();
        let isp = c.group("isp").unwrap().degraded.throughput_below.unwrap();
        assert_eq!((isp.bps, isp.upload_bps), (None, Some(10e6)));
        assert_eq!(describe_floor(&isp), "50% of plan (10 Mbit/s up)");
    }

    #[test]
    fn no_degraded_table_means_no_threshold() {
        let text = BASE.split("[defaults.degraded]").next().unwrap().to_owned()
            + "[[group]]\nname = \"g\"\n[[target]]\nname = \"a\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"192.0.2.1\"\n";
        let c = parse(&text, "t").unwrap();
        assert_eq!(c.groups[0].degraded, Degraded::default());
        assert!(!c.groups[0].degraded.any_threshold());
    }

    #[test]
    fn a_default_window_too_short_for_a_group_is_reported_at_the_default() {
        let text = BASE.replace("window = \"30s\"", "window = \"10s\"");
        let err = parse(&text, "t").unwrap_err().to_string();
        assert!(
            err.contains("key `defaults.degraded.window`: group `isp`: `window` (10s) holds at most 10 probes"),
            "{err}"
        );
        assert_eq!(err.matches("holds at most").count(), 1, "{err}");
    }
}
