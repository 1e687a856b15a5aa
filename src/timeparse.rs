//! Times on the command line and in API queries: RFC 3339 (`2026-11-01T10:00:00Z`),
//! plain dates (`2026-11-01`, midnight UTC) and relative spans back from now
//! (`7d`, `12h`, `90m`, `1w`).

use jiff::{Timestamp, civil::Date, tz::TimeZone};

/// Parses `s` relative to `now`.
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(date) = s.parse::<Date>() {
        return date
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{s}`: {e}"));
    }
    if let Some(span) = parse_span(s) {
        return now
            .checked_sub(jiff::SignedDuration::from_secs(span))
            .map_err(|e| format!("`{s}` reaches too far back: {e}"));
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-01T10:00:00Z), a date (2026-11-01) or a span back from now (30m, 12h, 7d, 2w)"
    ))
}

/// `<n><unit>` with unit s, m, h, d or w, in seconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(unit_at);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(
            parse_time("2026-11-01T10:00:00.250Z", now()).unwrap(),
            "2026-11-01T10:00:00.250Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-01T10:00:00+05:00", now()).unwrap(),
            "2026-11-01T05:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-01", now()).unwrap(),
            "2026-11-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("7d", now()).unwrap(),
            "2026-11-20T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("90m", now()).unwrap(),
            "2026-11-27T10:30:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn errors_are_clear() {
        for bad in ["", "yesterday", "7x", "2026-13-01", "d"] {
            assert!(parse_time(bad, now()).is_err(), "{bad}");
        }
        assert!(parse_time("soon", now()).unwrap_err().contains("RFC 3339"));
    }
}
