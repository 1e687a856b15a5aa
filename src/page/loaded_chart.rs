//! The status page's chart of latency under load: each throughput test's
//! loaded RTT increase over idle (milliseconds, linear), with the
//! bufferbloat grade boundaries (30, 60, 200, 400 ms) as grid lines.

use std::fmt::Write as _;

use super::{esc, fmt_time_short};
use crate::history::Series;

const W: f64 = 600.0;
const PAD_L: f64 = 58.0;
const PAD_R: f64 = 6.0;
const H: f64 = 100.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 16.0;
/// Grade boundaries, milliseconds (A+/A at 5 is too close to 0 to draw).
const BOUNDS: [(f64, &str); 4] = [(30.0, "A|B"), (60.0, "B|C"), (200.0, "C|D"), (400.0, "D|F")];

/// The chart, or an empty string when no test of `series` has the figure.
pub fn chart(series: &Series, tz: &jiff::tz::TimeZone) -> String {
    let tests: Vec<(i64, f64, &str, u32)> = series
        .throughput
        .iter()
        .filter_map(|t| {
            let l = t.loaded?;
            let ms = l.latency_increase_seconds? * 1e3;
            let grade = l.grade.unwrap_or(if l.not_saturated {
                "not saturated"
            } else {
                "-"
            });
            Some((t.at.as_second(), ms, grade, l.samples))
        })
        .collect();
    if tests.is_empty() {
        return String::new();
    }
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - TOP - BOTTOM;
    let top_ms = tests.iter().map(|t| t.1).fold(60.0, f64::max).min(2000.0) * 1.1;
    let y_of = |ms: f64| TOP + plot_h * (1.0 - ms.min(top_ms) / top_ms);
    let span = (series.until.as_second() - series.since.as_second()).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" data-chart=\"{}-loaded\"><title>Latency under load of {}: {} tests (increase over idle, ms)</title>\
<rect class=\"plot\" x=\"{PAD_L}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h}\"/>",
        esc(&series.target),
        esc(&series.target),
        tests.len()
    );
    for (ms, label) in BOUNDS.iter().filter(|(ms, _)| *ms < top_ms) {
        let y = y_of(*ms);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{ms:.0} ms {label}</text>",
            PAD_L + plot_w,
            PAD_L - 4.0,
            y + 4.0,
        );
    }
    let _ = write!(
        s,
        "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\">latency under load: increase over idle</text>",
        PAD_L + 4.0,
        TOP + 12.0
    );
    for (at, ms, grade, samples) in &tests {
        let x = PAD_L + plot_w * ((at - series.since.as_second()) as f64 / span);
        let y = y_of(*ms);
        let when = jiff::Timestamp::from_second(*at)
            .map_or_else(|_| String::new(), |t| fmt_time_short(t, tz));
        let _ = write!(
            s,
            "<circle class=\"tp\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"><title>{}: +{ms:.1} ms, grade {}, {samples} samples</title></circle>",
            esc(&when),
            esc(grade)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::history::{LoadedRow, Throughput};

    #[test]
    fn draws_one_dot_per_graded_test_and_nothing_without_figures() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let mut series = Series {
            target: "up".into(),
            since: at("2026-12-01T00:00:00Z"),
            until: at("2026-12-02T00:00:00Z"),
            step_seconds: 60,
            points: vec![],
            throughput: vec![Throughput {
                at: at("2026-12-01T10:00:00Z"),
                bytes: 1,
                seconds: 1.0,
                bits_per_second: 1e6,
                loaded: None,
            }],
            damaged_files: vec![],
        };
        assert_eq!(chart(&series, &jiff::tz::TimeZone::UTC), "");
        series.throughput[0].loaded = Some(LoadedRow {
            idle_rtt_seconds: Some(0.001),
            loaded_rtt_p50_seconds: Some(0.453),
            loaded_rtt_p90_seconds: Some(0.48),
            latency_increase_seconds: Some(0.452),
            samples: 235,
            rpm: Some(136.0),
            not_saturated: false,
            grade: Some("F"),
        });
        let svg = chart(&series, &jiff::tz::TimeZone::UTC);
        assert!(svg.contains("data-chart=\"up-loaded\""), "{svg}");
        assert!(svg.contains("+452.0 ms, grade F, 235 samples"), "{svg}");
        assert!(svg.contains("400 ms D|F"), "{svg}");
    }
}
