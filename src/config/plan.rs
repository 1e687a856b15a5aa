//! `[plan]`: what the contract with the ISP promises, as rates in bits per
//! second, and the rate syntax it and `throughput_below` share.
//!
//! Minimal stand-in until the throughput branch lands its own `[plan]`
//! (same shape: `Plan { download_bps, upload_bps }`, same rate syntax).

use super::walk::{Reported, Tbl, Walker};

/// `[plan]`: the promised rates, each optional (at least one is given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub download_bps: Option<f64>,
    pub upload_bps: Option<f64>,
}

/// Rate units, as (unit, bits per second). Decimal prefixes, as ISPs sell.
pub const RATE_UNITS: &[(&str, f64)] = &[
    ("bit/s", 1.0),
    ("kbit/s", 1e3),
    ("Mbit/s", 1e6),
    ("Gbit/s", 1e9),
    ("B/s", 8.0),
    ("kB/s", 8e3),
    ("MB/s", 8e6),
    ("GB/s", 8e9),
];

/// Parses `"100 Mbit/s"`, `"12.5 MB/s"` into bits per second (more than 0).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err("it does not start with a number".to_owned());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let Some(&(_, scale)) = RATE_UNITS.iter().find(|(u, _)| *u == unit) else {
        let units: Vec<&str> = RATE_UNITS.iter().map(|(u, _)| *u).collect();
        return Err(format!(
            "{}; use one of {}",
            if unit.is_empty() {
                "it has no unit".to_owned()
            } else {
                format!("unknown unit `{unit}`")
            },
            units.join(", ")
        ));
    };
    let bps = value * scale;
    if !(bps.is_finite() && bps > 0.0) {
        return Err("it must be more than 0".to_owned());
    }
    Ok(bps)
}

/// Formats bits per second for people: `94.2 Mbit/s`, `980 kbit/s`.
pub fn format_rate(bps: f64) -> String {
    let (scale, unit) = if bps >= 1e9 {
        (1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (1e3, "kbit/s")
    } else {
        (1.0, "bit/s")
    };
    let v = bps / scale;
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s} {unit}")
}

const PLAN_KEYS: &[&str] = &["download", "upload"];

/// Reads `[plan]`; `Ok(None)` when there is none.
pub(super) fn parse(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> Result<Option<Plan>, Reported> {
    let Some(t) = w.table(root, "plan")? else {
        return Ok(None);
    };
    w.check_keys(&t, PLAN_KEYS);
    let rate = |w: &mut Walker<'_>, key: &str| {
        let got = w.string_as(&t, key, "a rate such as \"100 Mbit/s\"");
        w.check(&t, key, got, |s| {
            parse_rate(s).map_err(|reason| {
                format!("`{key}` ({s}) is not a rate ({reason}); write e.g. \"100 Mbit/s\"")
            })
        })
    };
    let download = rate(w, "download");
    let upload = rate(w, "upload");
    let (download, upload) = (download?, upload?);
    if download.is_none() && upload.is_none() {
        let message =
            "`[plan]` names no rate; set `download`, `upload` or both, or remove it".into();
        return Err(w.report(t.span.clone(), t.key("download"), message));
    }
    Ok(Some(Plan {
        download_bps: download.map(|v| v.value),
        upload_bps: upload.map(|v| v.value),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_format() {
        assert_eq!(parse_rate("100 Mbit/s"), Ok(100e6));
        assert_eq!(parse_rate("12.5 MB/s"), Ok(100e6));
        assert_eq!(parse_rate("512kbit/s"), Ok(512e3));
        for bad in ["", "100", "100 Mbps", "0 Mbit/s", "x Mbit/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_rate(94_200_000.0), "94.2 Mbit/s");
        assert_eq!(format_rate(2e6), "2 Mbit/s");
        assert_eq!(format_rate(980e3), "980 kbit/s");
    }
}
