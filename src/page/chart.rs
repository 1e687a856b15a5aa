//! One target's charts as a standalone SVG document, served at
//! `/chart/<target>.svg?range=…` for the status page's `<img loading="lazy">`:
//! the page itself reads no history, each chart reads one target's series
//! when (and only if) the browser shows it, and the browser keeps it for the
//! chart's step (`Cache-Control: max-age`).
//!
//! The document is the latency chart, and below it, when the target ran
//! throughput tests in the period, the throughput and latency-under-load
//! charts. An SVG shown as an image loads nothing (no stylesheet, no font):
//! its colours come in one `<style>` element of its own, allowed by the
//! response's CSP through its hash ([`CSP`]), and follow the reader's light
//! or dark scheme as the page does.

use std::fmt::Write as _;
use std::sync::LazyLock;

use jiff::Timestamp;
use sha2::Digest as _;

use super::{Period, Range, loaded_chart, svg};
use crate::history::{HistoryQuery, QueryError, Series};
use crate::text::esc;

/// The path prefix of chart URLs.
pub const PREFIX: &str = "/chart/";
/// The path suffix of chart URLs.
pub const SUFFIX: &str = ".svg";
/// The chart's own width and the latency chart's height (viewBox units):
/// the `<img>`'s `width`/`height`, so that the page lays out before the
/// images come.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 150;

/// The colours of a chart shown as an image (the page's, light and dark).
const STYLE: &str = ":root{--fg:#1b1e23;--muted:#5b626b;--line:#d5d8dd;--up:#1f8a44;--down:#c8252c;--deg:#d08700;--gap:#a3a8b0;--band:#9cc3e6;--plot:#fbfbfc;--link:#0b5cad}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#a1a8b1;--line:#333a44;--up:#3fbf6a;--down:#ff5a5f;--deg:#f0b429;--gap:#59616b;--band:#2f5f8a;--plot:#161a20;--link:#78b4ff}}\
.plot{fill:var(--plot);stroke:var(--line)}.grid{stroke:var(--line);stroke-width:.6}\
.ax{fill:var(--muted);font-size:12px;font-family:system-ui,sans-serif}.ax.none{font-size:14px}\
.band{fill:var(--band)}.gap{fill:var(--gap);opacity:.35}\
.l0{fill:var(--up)}.l1{fill:#2a7ab9}.l2{fill:#8e44ad}.l3{fill:#e05d10}.l4{fill:var(--down)}\
.mark.m-out{fill:var(--down);opacity:.22}.mark.m-deg{fill:var(--deg);opacity:.25}\
.tp{fill:var(--link)}.plan{stroke:var(--deg);stroke-width:1.5;stroke-dasharray:6 4}.plan-label{fill:var(--deg)}\
.note{fill:var(--down);font-size:12px;font-family:system-ui,sans-serif}";

/// The Content-Security-Policy of a chart: nothing at all but its own
/// `<style>` element (by its SHA-256), should the SVG be opened as a document.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
        base64(&sha2::Sha256::digest(STYLE.as_bytes()))
    )
});

/// Standard base64 with padding (for the CSP hash).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A chart's URL for `target` over `range` (the name percent-encoded: any
/// character a name may hold survives the path).
pub fn url(target: &str, range: Range) -> String {
    let name: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("{PREFIX}{name}{SUFFIX}?range={}", range.label())
}

/// Why a chart request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartError {
    /// Not a chart path, or no such target: 404.
    NotFound(String),
    /// A bad query: 400.
    BadRequest(String),
}

/// The target named by a chart path (`/chart/<percent-encoded name>.svg`),
/// or `None` when the path is not a chart's.
pub fn target_of(path: &str) -> Option<String> {
    let name = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    // The page encodes names as form data (`byte_serialize`): decode alike.
    url::form_urlencoded::parse(format!("n={name}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .filter(|n| !n.is_empty())
}

/// The range a chart's query asks for (`range=1h|3h|24h|7d|30d`, default 24h).
pub fn parse_query(query: &str) -> Result<Range, ChartError> {
    let mut range = Range::H24;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "range" => {
                range = Range::parse(&v).ok_or_else(|| {
                    ChartError::BadRequest(format!(
                        "bad `range` `{v}`: one of {}",
                        Range::ALL.map(Range::label).join(", ")
                    ))
                })?
            }
            _ => {
                return Err(ChartError::BadRequest(format!(
                    "unknown query parameter `{k}` (a chart takes `range`)"
                )));
            }
        }
    }
    Ok(range)
}

/// What the chart of `target` over `range` asks the history store for: one
/// target, `range.step()` per point (hourly steps for 7 and 30 days, which
/// the store answers from its hourly summaries).
pub fn query(target: &str, range: Range, now: Timestamp) -> Result<HistoryQuery, QueryError> {
    let since = Timestamp::from_second(now.as_second() - range.seconds()).unwrap_or(now);
    HistoryQuery::new(vec![target.to_string()], since, now, range.step())
}

/// History rows a query covers at the store's resolution: minutes for
/// steps under an hour, hours from an hour on (what the page's reads are
/// measured in; the store may read fewer, never needs more).
pub fn rows_asked(q: &HistoryQuery) -> u64 {
    let unit = if q.step >= 3600 { 3600 } else { 60 };
    let span = (q.until.as_second() - q.since.as_second()).max(0) as u64;
    span.div_ceil(unit) * q.targets.len() as u64
}

/// The chart document of `series` over `range`: its latency, and its
/// throughput tests when it has some; `marks` are its group's outages and
/// slow periods; `plan` the promised rate (bit/s) of a throughput target.
pub fn document(
    series: &Series,
    range: Range,
    marks: &[&Period],
    plan: Option<f64>,
    tz: &jiff::tz::TimeZone,
) -> String {
    let caption = format!(
        "Latency of {} over the last {}",
        series.target,
        range.label()
    );
    let mut parts = vec![(
        svg::latency_chart(series, marks, tz, &caption),
        f64::from(HEIGHT),
    )];
    if !series.throughput.is_empty() {
        parts.push((svg::throughput_chart(series, tz, plan), 120.0));
        let loaded = loaded_chart::chart(series, tz);
        if !loaded.is_empty() {
            parts.push((loaded, 100.0));
        }
    }
    let damaged = !series.damaged_files.is_empty();
    let note_h = if damaged { 18.0 } else { 0.0 };
    let height: f64 = parts.iter().map(|(_, h)| h).sum::<f64>() + note_h;
    // The document's title: the latency chart's (median, loss, probes).
    let title = parts
        .first()
        .and_then(|(s, _)| s.split_once("<title>"))
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map_or_else(|| esc(&caption), |(t, _)| t.to_string());
    let mut s = String::with_capacity(parts.iter().map(|(p, _)| p.len()).sum::<usize>() + 2048);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" data-chart=\"{}\" data-range=\"{}\"><title>{title}</title><style>{STYLE}</style>",
        esc(&series.target),
        range.label()
    );
    let mut y = 0.0;
    for (part, h) in &parts {
        // Each part is an `<svg viewBox=…>` of its own: placed at its offset.
        match part.strip_prefix("<svg ") {
            Some(rest) => {
                let _ = write!(
                    s,
                    "<svg x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{h}\" {rest}"
                );
            }
            None => s.push_str(part),
        }
        y += h;
    }
    if damaged {
        let _ = write!(
            s,
            "<text class=\"note\" x=\"4\" y=\"{:.0}\">History incomplete: {} damaged file(s) skipped in part</text>",
            y + 13.0,
            series.damaged_files.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert!(CSP.contains("style-src 'sha256-") && !CSP.contains("unsafe"));
    }

    #[test]
    fn odd_names_survive_the_url() {
        for name in ["a b", "x/y", "q?&=#", "a+b", "ü%20", "\"<x>\""] {
            let u = url(name, Range::D7);
            let (path, q) = u.split_once('?').unwrap();
            assert!(!path[PREFIX.len()..].contains('/'), "{u}");
            assert_eq!(target_of(path).as_deref(), Some(name), "{u}");
            assert_eq!(parse_query(q), Ok(Range::D7));
        }
        assert_eq!(target_of("/chart/.svg"), None);
        assert_eq!(target_of("/chart/a.png"), None);
        assert_eq!(target_of("/chart/a/b.svg"), None);
        assert!(matches!(
            parse_query("range=2d"),
            Err(ChartError::BadRequest(_))
        ));
        assert!(matches!(
            parse_query("range=1h&x=1"),
            Err(ChartError::BadRequest(_))
        ));
        assert_eq!(parse_query(""), Ok(Range::H24));
    }

    #[test]
    fn the_document_escapes_names_and_titles_every_part() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let series = Series {
            target: "we<b> & \"co\"/x".into(),
            since: at("2026-12-01T00:00:00Z"),
            until: at("2026-12-02T00:00:00Z"),
            step_seconds: 300,
            points: vec![],
            throughput: vec![crate::history::Throughput {
                at: at("2026-12-01T10:00:00Z"),
                bytes: 1,
                seconds: 1.0,
                bits_per_second: 1e6,
                loaded: None,
            }],
            damaged_files: vec![],
        };
        let svg = document(
            &series,
            Range::H24,
            &[],
            Some(2e6),
            &jiff::tz::TimeZone::UTC,
        );
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(!svg.contains("<b>") && !svg.contains("\"co\""), "{svg}");
        assert!(
            svg.contains("<title>Latency of we&lt;b&gt; &amp; &quot;co&quot;/x over the last 24h: median –, loss –, 0 probes</title>"),
            "{svg}"
        );
        assert!(svg.contains(&format!("<style>{STYLE}</style>")));
        // The outer document and both charts (latency, throughput), each titled.
        assert_eq!(svg.matches("<svg").count(), 3);
        for part in svg.split("<svg").skip(1) {
            let after = part.split_once('>').unwrap().1;
            assert!(after.starts_with("<title>"), "{part}");
        }
        assert!(
            !svg.contains("href") && !svg.contains("url("),
            "nothing outside"
        );
    }

    #[test]
    fn long_ranges_ask_for_hourly_rows_of_one_target() {
        let now: Timestamp = "2026-12-01T10:40:13Z".parse().unwrap();
        let q = query("a", Range::H24, now).unwrap();
        assert_eq!((q.targets.len(), q.step), (1, 300));
        assert_eq!(rows_asked(&q), 1441, "a day of minutes (the first partial)");
        for (r, rows) in [(Range::D7, 7 * 24 + 1), (Range::D30, 30 * 24 + 1)] {
            let q = query("a", r, now).unwrap();
            assert!(q.step >= 3600, "{r:?}");
            assert_eq!(rows_asked(&q), rows, "{r:?}");
        }
    }
}
