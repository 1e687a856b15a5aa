//! `kind = "throughput"`: a speed test of `streams` parallel connections to
//! `url`, downloading or uploading until `max_bytes` or `max_duration`.
//!
//! The URL, headers and TLS keys are those of `kind = "http"`. Byte sizes are
//! integers (bytes) or strings with a decimal or binary unit (`"25 MB"`,
//! `"1 GiB"`). The target's `timeout` (5 s unless set on the target) and
//! `interval` (30 min unless set on the target) are applied by the caller,
//! which knows the effective values ([`super::super::parse`]).

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::super::error::shown;
use super::super::model::{Direction, IpVersion, Plan, Schedule, ThroughputSpec};
use super::super::throughput::parse_rate;
use super::super::validate;
use super::super::walk::{At, Got, Reported, Span, Tbl, Walker};

pub(super) const KEYS: &[&str] = &[
    "url",
    "direction",
    "streams",
    "max_bytes",
    "max_duration",
    "min_bytes",
    "max_bytes_per_day",
    "headers",
    "ip_version",
    "ca_file",
    "tls_verify",
    "judge_outages",
    "congestion",
    "schedule",
    "control_url",
    "throttled_below",
];

/// Byte units, decimal and binary, as (unit, bytes).
const BYTE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// `max_duration` (written `s`): at least 100 ms, at most
/// [`ThroughputSpec::MAX_DURATION_LIMIT`].
fn max_duration_in_range(d: Duration, s: &str) -> Result<(), String> {
    if d < Duration::from_millis(100) {
        Err(format!(
            "`max_duration` ({s}) must be at least 100ms",
            s = shown(s)
        ))
    } else if d > ThroughputSpec::MAX_DURATION_LIMIT {
        Err(format!(
            "`max_duration` ({s}) is above the maximum of {}",
            validate::format_duration(ThroughputSpec::MAX_DURATION_LIMIT),
            s = shown(s)
        ))
    } else {
        Ok(())
    }
}

/// `direction`: `download` or `upload`.
fn direction_value(s: &str) -> Result<Direction, String> {
    match s {
        "download" => Ok(Direction::Download),
        "upload" => Ok(Direction::Upload),
        _ => Err(format!(
            "`direction` ({s}) must be \"download\" or \"upload\"",
            s = shown(s)
        )),
    }
}

/// `schedule`: `interval` or `campaign`.
fn schedule_value(s: &str) -> Result<Schedule, String> {
    match s {
        "interval" => Ok(Schedule::Interval),
        "campaign" => Ok(Schedule::Campaign),
        _ => Err(format!(
            "`schedule` ({s}) must be \"interval\" (a test every `interval`) or \"campaign\" \
             (10 tests a day by the BNetzA sampling rules)",
            s = shown(s)
        )),
    }
}

/// `throttled_below`: a percentage of the control's rate, above 0 and below 100.
fn throttled_below_value(s: &str) -> Result<f64, String> {
    let pct = s
        .strip_suffix('%')
        .map(str::trim)
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p > 0.0 && *p < 100.0);
    pct.map(|p| p / 100.0).ok_or_else(|| {
        format!(
            "`throttled_below` ({s}) must be a percentage of the control's rate above 0% and \
             below 100%, such as \"50%\"",
            s = shown(s)
        )
    })
}

/// `congestion`: the name of a TCP congestion control.
fn congestion_value(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() < 16 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`congestion` ({s}) must name a TCP congestion control such as \"cubic\" or \"bbr\" \
             (letters, digits, `_`, at most 15)",
            s = shown(s)
        ))
    }
}

pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<ThroughputSpec> {
    let url = w.string(t, "url");
    let url = w.check(t, "url", url, |s| super::http::url_value(s));
    let url = w.missing(t, "url", url);
    let direction = w.string(t, "direction");
    let direction = w.check(t, "direction", direction, |s| direction_value(s));
    let streams = w.integer(t, "streams", 1, ThroughputSpec::MAX_STREAMS as i64);
    let max_bytes = bytes(w, t, "max_bytes");
    let min_bytes = bytes(w, t, "min_bytes");
    let max_bytes_per_day = bytes(w, t, "max_bytes_per_day");
    let max_duration = w.duration_with(t, "max_duration", max_duration_in_range);
    let headers = super::http::headers(w, t);
    let ip_version = super::ip_version(w, t);
    let ca_file = w.nonempty(t, "ca_file");
    let tls_verify = w.boolean(t, "tls_verify");
    let judge_outages = w.boolean(t, "judge_outages");
    let congestion = w.string(t, "congestion");
    let congestion = w.check(t, "congestion", congestion, |s| congestion_value(s));
    let schedule = w.string(t, "schedule");
    let schedule = w.check(t, "schedule", schedule, |s| schedule_value(s));
    let control_url = w.string(t, "control_url");
    let control_url = w.check(t, "control_url", control_url, |s| super::http::url_value(s));
    let throttled_below = w.string(t, "throttled_below");
    let mut throttled_below = w.check(t, "throttled_below", throttled_below, |s| {
        throttled_below_value(s)
    });
    if let (Ok(None), Ok(Some(tb))) = (&control_url, &throttled_below) {
        let message = "`throttled_below` needs `control_url`: it is a share of the control's rate"
            .to_string();
        throttled_below = Err(w.report(tb.span.clone(), t.key("throttled_below"), message));
    }
    let mut control_url = control_url;
    if let (Ok(Some(c)), Ok(u)) = (&control_url, &url)
        && c.value == u.value
    {
        let message = format!(
            "`control_url` ({}) is the target's own `url`: the control must be another name \
             or path on the same server or network",
            w.snippet(&c.span)
        );
        control_url = Err(w.report(c.span.clone(), t.key("control_url"), message));
    }
    let ip = match &url {
        Ok(u) => match u.value.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        },
        Err(_) => None,
    };
    super::check_family(w, t, ip, "url", &ip_version);

    let max = match &max_bytes {
        Ok(Some(v)) => v.value,
        _ => ThroughputSpec::DEFAULT_MAX_BYTES,
    };
    let mut min_bytes = min_bytes;
    if let (Ok(Some(min)), true) = (&min_bytes, max_bytes.is_ok())
        && min.value > max
    {
        let message = format!(
            "`min_bytes` ({}) must not be more than `max_bytes` ({max}{}): \
             every test would end as short_body",
            w.snippet(&min.span),
            if matches!(max_bytes, Ok(None)) {
                ", the default"
            } else {
                ""
            }
        );
        min_bytes = Err(w.report(min.span.clone(), t.key("min_bytes"), message));
    }
    let mut max_bytes_per_day = max_bytes_per_day;
    let with_control = matches!(control_url, Ok(Some(_)));
    let per_test = if with_control {
        max.saturating_mul(2)
    } else {
        max
    };
    if let (Ok(Some(day)), true) = (&max_bytes_per_day, max_bytes.is_ok())
        && day.value < per_test
    {
        let message = if with_control {
            format!(
                "`max_bytes_per_day` ({}) is less than a test and its control test \
                 (2 × `max_bytes` = {per_test}): no test could ever run",
                w.snippet(&day.span)
            )
        } else {
            format!(
                "`max_bytes_per_day` ({}) is less than one test's `max_bytes` ({max}): \
                 no test could ever run",
                w.snippet(&day.span)
            )
        };
        max_bytes_per_day = Err(w.report(day.span.clone(), t.key("max_bytes_per_day"), message));
    }
    if max_bytes.is_ok()
        && let Err(e) = campaign_budget(w, t, &schedule, &max_bytes_per_day, per_test)
    {
        max_bytes_per_day = Err(e);
    }

    Some(ThroughputSpec {
        url: url.ok()?.value,
        direction: direction.ok()?.map_or(Direction::Download, |v| v.value),
        streams: streams
            .ok()?
            .map_or(ThroughputSpec::DEFAULT_STREAMS, |v| v.value as usize),
        max_bytes: max,
        max_duration: max_duration
            .ok()?
            .map_or(ThroughputSpec::DEFAULT_MAX_DURATION, |v| v.value),
        min_bytes: min_bytes
            .ok()?
            .map_or(ThroughputSpec::DEFAULT_MIN_BYTES.min(max), |v| v.value),
        max_bytes_per_day: max_bytes_per_day
            .ok()?
            .map_or(ThroughputSpec::DEFAULT_MAX_BYTES_PER_DAY, |v| v.value),
        timeout: ThroughputSpec::DEFAULT_TIMEOUT,
        headers: headers.ok()?,
        ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
        ca_file: ca_file.ok()?.map(|v| PathBuf::from(v.value)),
        tls_verify: tls_verify.ok()?.is_none_or(|v| v.value),
        judge_outages: judge_outages.ok()?.is_some_and(|v| v.value),
        congestion: congestion.ok()?.map(|v| v.value),
        schedule: schedule.ok()?.map_or(Schedule::Interval, |v| v.value),
        control_url: control_url.ok()?.map(|v| v.value),
        throttled_below: throttled_below
            .ok()?
            .map_or(ThroughputSpec::DEFAULT_THROTTLED_BELOW, |v| v.value),
    })
}

/// Applies the target's effective `timeout` to its test and checks its
/// `interval` (written at `interval_span`, or the 30 min default): at least
/// [`ThroughputSpec::MIN_INTERVAL`], and longer than a whole test can take.
/// Returns false when a problem was reported.
pub(in super::super) fn timing(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    spec: &mut ThroughputSpec,
    interval: Duration,
    interval_span: Option<Span>,
    timeout: Duration,
) -> bool {
    spec.timeout = timeout;
    if spec.schedule == Schedule::Campaign {
        return campaign_timing(w, t, spec, interval_span, timeout);
    }
    let span = interval_span.unwrap_or_else(|| t.span.clone());
    let shown = validate::format_duration(interval);
    if interval < ThroughputSpec::MIN_INTERVAL {
        let message = format!(
            "`interval` ({shown}) of a throughput target must be at least {}; \
             each test spends up to `max_bytes` of data",
            validate::format_duration(ThroughputSpec::MIN_INTERVAL)
        );
        w.report(span, t.key("interval"), message);
        return false;
    }
    if spec.worst_case() >= interval {
        let message = format!(
            "`interval` ({shown}) must be longer than a whole test can take: \
             2 × `timeout` ({}) + `max_duration` ({}) + the idle-latency baseline ({}){} = {}",
            validate::format_duration(timeout),
            validate::format_duration(spec.max_duration),
            validate::format_duration(ThroughputSpec::IDLE_BUDGET),
            if spec.control_url.is_some() {
                ", twice with `control_url`"
            } else {
                ""
            },
            validate::format_duration(spec.worst_case())
        );
        w.report(span, t.key("interval"), message);
        return false;
    }
    true
}

/// [`timing`] of a `schedule = "campaign"` target: its tests run at planned
/// times, so `interval` must not be set, and a whole test must end within
/// the 5 minutes the sampling rules put between two tests.
fn campaign_timing(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    spec: &ThroughputSpec,
    interval_span: Option<Span>,
    timeout: Duration,
) -> bool {
    if let Some(span) = interval_span {
        let message = "`interval` is not used with `schedule = \"campaign\"` (10 tests a day \
                       at planned times); remove it, or use `schedule = \"interval\"`"
            .to_owned();
        w.report(span, t.key("interval"), message);
        return false;
    }
    let spacing = std::time::Duration::from_secs(super::super::MIN_SPACING_SECONDS as u64);
    if spec.worst_case() >= spacing {
        let message = format!(
            "a campaign's tests are {} apart at least, so a whole test must take less: \
             2 × `timeout` ({}) + `max_duration` ({}) + the idle-latency baseline ({}) = {}",
            validate::format_duration(spacing),
            validate::format_duration(timeout),
            validate::format_duration(spec.max_duration),
            validate::format_duration(ThroughputSpec::IDLE_BUDGET),
            validate::format_duration(spec.worst_case())
        );
        let key = if t.get("max_duration").is_some() {
            "max_duration"
        } else {
            "schedule"
        };
        let span = t.get(key).map_or_else(|| t.span.clone(), |v| v.span());
        w.report(span, t.key(key), message);
        return false;
    }
    true
}

/// `[plan]`: the promised `download` and `upload` rates, each optional.
pub(in super::super) fn plan(
    w: &mut Walker<'_>,
    root: &Tbl<'_, '_>,
) -> Result<Option<Plan>, Reported> {
    let Some(t) = w.table(root, "plan")? else {
        return Ok(None);
    };
    w.check_keys(&t, PLAN_KEYS);
    let rate = |w: &mut Walker<'_>, key: &str| {
        let got = w.string_as(&t, key, "a rate such as \"100 Mbit/s\"");
        w.check(&t, key, got, |s| {
            parse_rate(s).map_err(|reason| {
                format!(
                    "`{key}` ({s}) is not a rate ({reason}); write e.g. \"100 Mbit/s\"",
                    s = shown(s)
                )
            })
        })
    };
    let download = rate(w, "download");
    let upload = rate(w, "upload");
    let download_min = rate(w, "download_min");
    let upload_min = rate(w, "upload_min");
    let download_normal = rate(w, "download_normal");
    let upload_normal = rate(w, "upload_normal");
    let criteria = super::criteria::criteria(w, &t);
    let (download, upload) = (download?, upload?);
    let (download_min, upload_min) = (download_min?, upload_min?);
    let (download_normal, upload_normal) = (download_normal?, upload_normal?);
    let criteria = criteria?;
    // The promise in order: minimum ≤ normal ≤ maximum, each that is set.
    for (dir, min, normal, max) in [
        ("download", &download_min, &download_normal, &download),
        ("upload", &upload_min, &upload_normal, &upload),
    ] {
        let v = |x: &Option<At<f64>>| x.as_ref().map(|a| a.value);
        let ordered = [v(min), v(normal), v(max)];
        let set: Vec<f64> = ordered.iter().flatten().copied().collect();
        if set.windows(2).any(|w| w[0] > w[1]) {
            let span = min
                .as_ref()
                .or(normal.as_ref())
                .map_or(t.span.clone(), |a| a.span.clone());
            let message = format!(
                "`{dir}_min` ≤ `{dir}_normal` ≤ `{dir}` must hold for the rates that are set"
            );
            return Err(w.report(span, t.key(&format!("{dir}_min")), message));
        }
        if (min.is_some() || normal.is_some()) && max.is_none() {
            let message = format!("`{dir}_min`/`{dir}_normal` need the maximum `{dir}` too");
            return Err(w.report(t.span.clone(), t.key(dir), message));
        }
    }
    if download.is_none() && upload.is_none() {
        let message =
            "`[plan]` names no rate; set `download`, `upload` or both, or remove it".into();
        return Err(w.report(t.span.clone(), t.key("download"), message));
    }
    Ok(Some(Plan {
        download_bps: download.map(|v| v.value),
        upload_bps: upload.map(|v| v.value),
        download_min_bps: download_min.map(|v| v.value),
        upload_min_bps: upload_min.map(|v| v.value),
        download_normal_bps: download_normal.map(|v| v.value),
        upload_normal_bps: upload_normal.map(|v| v.value),
        criteria: criteria.map(|v| v.value).unwrap_or_default(),
    }))
}

const PLAN_KEYS: &[&str] = &[
    "download",
    "upload",
    "download_min",
    "upload_min",
    "download_normal",
    "upload_normal",
    "criteria",
];

/// A campaign's 10 tests a day must fit in the daily budget, or the budget
/// would end every measuring day short of a complete one.
fn campaign_budget(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    schedule: &Got<Schedule>,
    max_bytes_per_day: &Got<u64>,
    // A test's bytes: `max_bytes`, twice with `control_url`.
    max: u64,
) -> Result<(), Reported> {
    let (Ok(Some(sch)), Ok(day)) = (schedule, max_bytes_per_day) else {
        return Ok(());
    };
    if sch.value != Schedule::Campaign {
        return Ok(());
    }
    let per_day = day
        .as_ref()
        .map_or(ThroughputSpec::DEFAULT_MAX_BYTES_PER_DAY, |d| d.value);
    let need = max.saturating_mul(super::super::TESTS_PER_DAY as u64);
    if per_day >= need {
        return Ok(());
    }
    let (span, written) = match day {
        Some(d) => (d.span.clone(), w.snippet(&d.span).to_owned()),
        None => (sch.span.clone(), format!("{per_day}, the default")),
    };
    let message = format!(
        "`max_bytes_per_day` ({written}) cannot hold a campaign's {n} tests a day of \
         `max_bytes` ({}) each ({}): raise it or lower `max_bytes`",
        super::super::format_bytes(max),
        super::super::format_bytes(need),
        n = super::super::TESTS_PER_DAY
    );
    Err(w.report(span, t.key("max_bytes_per_day"), message))
}

/// A byte size: an integer of bytes, or a string with a unit; more than 0.
fn bytes(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Got<u64> {
    let Some(v) = t.get(key) else {
        return Ok(None);
    };
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| "it must be a whole number of bytes".to_owned()),
        DeValue::String(s) => byte_size(s),
        _ => {
            return Err(w.wrong_type(
                t.key(key),
                v,
                "a number of bytes or a size such as \"25 MB\"",
            ));
        }
    };
    match parsed {
        Ok(n) if n > 0 => Ok(Some(At {
            value: n,
            span: v.span(),
        })),
        Ok(_) => {
            let message = format!("`{key}` ({}) must be more than 0", w.snippet(&v.span()));
            Err(w.report(v.span(), t.key(key), message))
        }
        Err(reason) => {
            let message = format!(
                "`{key}` ({}) is not a byte size ({reason}); write e.g. 25000000, \"25 MB\" or \"1 GiB\"",
                w.snippet(&v.span())
            );
            Err(w.report(v.span(), t.key(key), message))
        }
    }
}

/// `"25 MB"`, `"1.5 GB"`, `"512 KiB"`, `"1000 B"` → bytes.
fn byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let value: f64 = number
        .parse()
        .map_err(|_| "it does not start with a number".to_owned())?;
    let Some(&(_, scale)) = BYTE_UNITS.iter().find(|(u, _)| *u == unit) else {
        let units: Vec<&str> = BYTE_UNITS.iter().map(|(u, _)| *u).collect();
        return Err(format!(
            "unknown unit `{unit}`; use one of {}",
            units.join(", "),
            unit = shown(unit)
        ));
    };
    let bytes = (value * scale as f64).round();
    if !(bytes.is_finite() && bytes < u64::MAX as f64) {
        return Err("it is too large".to_owned());
    }
    // Range checked above.
    Ok(bytes as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::TargetSpec;

    const BASE: &str = "[[group]]\nname = \"isp\"\n\n[[target]]\nname = \"video\"\ngroup = \"isp\"\n\
                        kind = \"throughput\"\nurl = \"http://video.example/1MB\"\n";

    fn errors(extra: &str) -> Vec<String> {
        let text = format!("{BASE}{extra}");
        match crate::config::parse(&text, "mem") {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        }
    }

    /// Issue 21: `control_url` and `throttled_below`, and their positioned errors.
    #[test]
    fn control_url_and_throttled_below() {
        let text = format!(
            "{BASE}control_url = \"http://control.example/1MB\"\nthrottled_below = \"40%\"\n"
        );
        let c = crate::config::parse(&text, "mem").unwrap();
        let TargetSpec::Throughput(s) = &c.targets[0].spec else {
            unreachable!()
        };
        assert_eq!(
            s.control_url.as_ref().unwrap().as_str(),
            "http://control.example/1MB"
        );
        assert!((s.throttled_below - 0.4).abs() < 1e-9);
        assert_eq!(s.worst_case(), s.one_test() * 2);
        assert_eq!(s.bytes_per_test(), 2 * s.max_bytes);
        let c = crate::config::parse(BASE, "mem").unwrap();
        let TargetSpec::Throughput(s) = &c.targets[0].spec else {
            unreachable!()
        };
        assert_eq!((s.control_url.as_ref(), s.throttled_below), (None, 0.5));

        let e = errors("throttled_below = \"50%\"\n");
        assert!(
            e.iter()
                .any(|l| l.contains("9:19") && l.contains("`throttled_below` needs `control_url`")),
            "{e:?}"
        );
        let e = errors("control_url = \"http://control.example/x\"\nthrottled_below = \"150%\"\n");
        assert!(
            e.iter()
                .any(|l| l.contains("10:19") && l.contains("below 100%")),
            "{e:?}"
        );
        let e = errors("control_url = \"ftp://control.example/x\"\n");
        assert!(
            e.iter().any(|l| l.contains("9:15") && l.contains("ftp")),
            "{e:?}"
        );
        let e = errors("control_url = \"http://video.example/1MB\"\n");
        assert!(
            e.iter()
                .any(|l| l.contains("9:15") && l.contains("the target's own `url`")),
            "{e:?}"
        );
        let e = errors(
            "control_url = \"http://control.example/x\"\nmax_bytes = \"10 MB\"\nmax_bytes_per_day = \"15 MB\"\n",
        );
        assert!(
            e.iter()
                .any(|l| l.contains("11:21") && l.contains("a test and its control test")),
            "{e:?}"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(byte_size("25 MB"), Ok(25_000_000));
        assert_eq!(byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(byte_size("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(byte_size("0 B"), Ok(0));
        assert!(byte_size("25").is_err());
        assert!(byte_size("25 mb").is_err());
        assert!(byte_size("MB").is_err());
    }
}
