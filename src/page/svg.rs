//! Server-side SVG: uptime bars, SmokePing-style latency charts, throughput
//! dots. Only presentation attributes and classes (the page's CSP forbids
//! inline `style`), every text escaped, every chart with a `<title>`.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{Kind, Period, fmt_ms, fmt_time_short};
use crate::history::{Point, Series};
use crate::text::DurationStyle::Sentence;
use crate::text::{duration, esc};

/// Chart width in viewBox units; the SVG scales to its container.
const W: f64 = 600.0;
const PAD_L: f64 = 58.0;
const PAD_R: f64 = 6.0;

/// One segment's state on an uptime bar, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Down,
    Degraded,
    Unmonitored,
    Up,
}

impl Seg {
    pub fn class(self) -> &'static str {
        match self {
            Seg::Down => "s-down",
            Seg::Degraded => "s-degraded",
            Seg::Unmonitored => "s-gap",
            Seg::Up => "s-up",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Seg::Down => "down",
            Seg::Degraded => "degraded",
            Seg::Unmonitored => "not monitored",
            Seg::Up => "up",
        }
    }
}

/// One bar segment: its span, state and what explains it.
pub struct Segment {
    pub from: Timestamp,
    pub to: Timestamp,
    pub seg: Seg,
    pub note: String,
}

/// An uptime bar: `segments` side by side, heights by state so that the
/// state is not shown by colour alone (down: full, degraded: ¾, gap: ¼).
pub fn uptime_bar(label: &str, segments: &[Segment], tz: &jiff::tz::TimeZone) -> String {
    let n = segments.len().max(1) as f64;
    let w = W / n;
    let mut s = String::new();
    let down = segments.iter().filter(|x| x.seg == Seg::Down).count();
    let gaps = segments
        .iter()
        .filter(|x| x.seg == Seg::Unmonitored)
        .count();
    let _ = write!(
        s,
        "<svg class=\"bar\" viewBox=\"0 0 {W} 24\" preserveAspectRatio=\"none\" role=\"img\" data-bar=\"{}\">\
<title>{}: {down} of {} segments with an outage, {gaps} not monitored</title>",
        esc(label),
        esc(label),
        segments.len()
    );
    // A run of equal segments (same state, same explanation) is one
    // rectangle with one title: a month of "up" is one element, not 120.
    let mut i = 0;
    while let Some(x) = segments.get(i) {
        let run = segments[i..]
            .iter()
            .take_while(|y| y.seg == x.seg && y.note == x.note)
            .count();
        let last = &segments[i + run - 1];
        let (y, h) = match x.seg {
            Seg::Up | Seg::Down => (0.0, 24.0),
            Seg::Degraded => (6.0, 18.0),
            Seg::Unmonitored => (18.0, 6.0),
        };
        let _ = write!(
            s,
            "<rect class=\"{}\" x=\"{:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{h}\"><title>{} – {}: {}{}</title></rect>",
            x.seg.class(),
            i as f64 * w,
            (run as f64 * w - 0.6).max(0.4),
            esc(&fmt_time_short(x.from, tz)),
            esc(&fmt_time_short(last.to, tz)),
            x.seg.word(),
            if x.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&x.note))
            }
        );
        i += run;
    }
    s.push_str("</svg>");
    s
}

/// Loss colour class, SmokePing style.
fn loss_class(loss: f64) -> &'static str {
    if loss <= 0.0 {
        "l0"
    } else if loss < 0.05 {
        "l1"
    } else if loss < 0.2 {
        "l2"
    } else if loss < 1.0 {
        "l3"
    } else {
        "l4"
    }
}

/// The legend under a latency chart (the words carry what the colours do).
pub const LOSS_LEGEND: &str = "<p class=\"legend\"><span class=\"k l0\">■</span> median, no loss \
<span class=\"k l1\">■</span> loss &lt;5 % <span class=\"k l2\">■</span> &lt;20 % \
<span class=\"k l3\">■</span> ≥20 % <span class=\"k l4\">▮</span> all lost \
<span class=\"k band\">■</span> p10–p90 <span class=\"k gap\">■</span> not monitored \
<span class=\"k mark\">■</span> outage</p>";

/// A SmokePing-style chart of one series: a p10–p90 band, the median as a
/// short bar coloured by loss, full-loss steps as a red column, unmonitored
/// steps grey; `marks` (outage periods) shaded behind.
pub fn latency_chart(
    series: &Series,
    marks: &[&Period],
    tz: &jiff::tz::TimeZone,
    caption: &str,
) -> String {
    const H: f64 = 150.0;
    const TOP: f64 = 8.0;
    const BOTTOM: f64 = 20.0;
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - TOP - BOTTOM;
    let pts = &series.points;
    let n = pts.len().max(1) as f64;
    let step_w = plot_w / n;
    let p90s: Vec<f64> = pts.iter().filter_map(|p| p.rtt(0.9)).collect();
    let mut sorted = p90s.clone();
    sorted.sort_by(f64::total_cmp);
    // Scale to the 95th percentile of p90s so one spike does not flatten the rest.
    let top = sorted
        .get((sorted.len() as f64 * 0.95) as usize)
        .or(sorted.last())
        .copied()
        .unwrap_or(0.01)
        .max(0.001)
        * 1.25;
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).min(1.0));
    let x_of = |t: Timestamp| {
        let span = (series.until.as_second() - series.since.as_second()).max(1) as f64;
        PAD_L + plot_w * ((t.as_second() - series.since.as_second()) as f64 / span).clamp(0.0, 1.0)
    };
    let (title, probes) = chart_title(pts, caption);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" data-chart=\"{}\"><title>{}</title>",
        esc(&series.target),
        esc(&title)
    );
    let _ = write!(
        s,
        "<rect class=\"plot\" x=\"{PAD_L}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h}\"/>"
    );
    let now = Timestamp::now();
    for (i, p) in pts.iter().enumerate() {
        if p.start > now {
            break; // the future is neither monitored nor not
        }
        let x = PAD_L + i as f64 * step_w;
        let sw = (step_w - 0.2).max(0.3);
        point(&mut s, p, x, sw, TOP, plot_h, &y);
    }
    marks_svg(&mut s, marks, series, &x_of, TOP, plot_h);
    // Axes: three RTT labels (none without an RTT), three time labels.
    if sorted.is_empty() {
        let _ = write!(
            s,
            "<text class=\"ax none\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            PAD_L + plot_w / 2.0,
            TOP + plot_h / 2.0,
            if probes == 0 {
                "no probes in this period"
            } else {
                "no successful probe in this period"
            }
        );
    }
    for frac in if sorted.is_empty() {
        &[][..]
    } else {
        &[0.0, 0.5, 1.0][..]
    } {
        let frac = *frac;
        let v = top * frac;
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - PAD_R,
            y(v),
            y(v),
            PAD_L - 4.0,
            y(v) + 4.0,
            fmt_ms(v)
        );
    }
    for (frac, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let t = series.since.as_second()
            + ((series.until.as_second() - series.since.as_second()) as f64 * frac) as i64;
        let t = Timestamp::from_second(t).unwrap_or(series.since);
        let _ = write!(
            s,
            "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            PAD_L + plot_w * frac,
            H - 5.0,
            esc(&fmt_time_short(t, tz))
        );
    }
    s.push_str("</svg>");
    s
}

/// A latency chart's title: the series' median, loss and probe count; and
/// the probe count.
fn chart_title(pts: &[Point], caption: &str) -> (String, u64) {
    let (probes, failures) = pts.iter().fold((0u64, 0u64), |(p, f), x| {
        (
            p + u64::from(x.summary.probes),
            f + u64::from(x.summary.failures),
        )
    });
    let mut all = crate::history::Minute::default();
    for p in pts {
        all.merge(&p.summary);
    }
    let median = all.quantile_us(0.5).map(|us| us / 1e6);
    let title = format!(
        "{caption}: median {}, loss {}, {probes} probes",
        median.map_or("–".into(), fmt_ms),
        if probes == 0 {
            "–".to_string()
        } else {
            format!("{:.2} %", failures as f64 * 100.0 / probes as f64)
        }
    );
    (title, probes)
}

/// The `marks` (outage and slow periods) over a chart's plot, shaded.
fn marks_svg(
    s: &mut String,
    marks: &[&Period],
    series: &Series,
    x_of: &dyn Fn(Timestamp) -> f64,
    top: f64,
    plot_h: f64,
) {
    for m in marks {
        let from = x_of(m.start.max(series.since));
        let to = x_of(m.end.unwrap_or(series.until).min(series.until));
        if to > from {
            let _ = write!(
                s,
                "<rect class=\"mark {}\" x=\"{from:.2}\" y=\"{top}\" width=\"{:.2}\" height=\"{plot_h}\"><title>{} {} {}</title></rect>",
                if m.kind == Kind::Outage {
                    "m-out"
                } else {
                    "m-deg"
                },
                (to - from).max(3.0),
                m.kind.word(),
                esc(&m.group),
                esc(&duration(m.duration_seconds, Sentence)),
            );
        }
    }
}

fn point(
    s: &mut String,
    p: &Point,
    x: f64,
    sw: f64,
    top: f64,
    plot_h: f64,
    y: &impl Fn(f64) -> f64,
) {
    let m = &p.summary;
    if m.probes == 0 {
        let _ = write!(
            s,
            "<rect class=\"gap\" x=\"{x:.2}\" y=\"{top}\" width=\"{sw:.2}\" height=\"{plot_h}\"/>"
        );
        return;
    }
    let loss = p.loss().unwrap_or(0.0);
    if m.successes() == 0 {
        let _ = write!(
            s,
            "<rect class=\"l4\" x=\"{x:.2}\" y=\"{top}\" width=\"{sw:.2}\" height=\"{plot_h}\" opacity=\"0.55\"/>"
        );
        return;
    }
    if let (Some(lo), Some(hi)) = (p.rtt(0.1), p.rtt(0.9)) {
        let (y1, y0) = (y(hi), y(lo));
        let _ = write!(
            s,
            "<rect class=\"band\" x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{sw:.2}\" height=\"{:.2}\"/>",
            (y0 - y1).max(0.8)
        );
    }
    if let Some(med) = p.rtt(0.5) {
        let _ = write!(
            s,
            "<rect class=\"{}\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{sw:.2}\" height=\"2.4\"/>",
            loss_class(loss),
            y(med) - 1.2
        );
    }
}

/// Throughput tests as dots on a time axis (bits per second).
/// The throughput tests of `series` on a log axis (decades from the slowest
/// test to the fastest or the plan, whichever is higher), with the promised
/// rate `plan` (bits per second) drawn as a dashed line.
pub fn throughput_chart(series: &Series, tz: &jiff::tz::TimeZone, plan: Option<f64>) -> String {
    const H: f64 = 120.0;
    const TOP: f64 = 8.0;
    const BOTTOM: f64 = 20.0;
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - TOP - BOTTOM;
    let rates = series
        .throughput
        .iter()
        .map(|t| t.bits_per_second)
        .filter(|b| *b > 0.0);
    let lo = rates
        .clone()
        .fold(f64::INFINITY, f64::min)
        .min(plan.unwrap_or(f64::INFINITY));
    let hi = rates.fold(0.0, f64::max).max(plan.unwrap_or(0.0));
    // Whole decades around the data, at least one.
    let lo_dec = if lo.is_finite() && lo > 0.0 {
        lo.log10().floor()
    } else {
        5.0
    };
    let hi_dec = if hi > 0.0 {
        hi.log10().ceil().max(lo_dec + 1.0)
    } else {
        lo_dec + 1.0
    };
    let y_of = |bps: f64| {
        let v = bps.max(10f64.powf(lo_dec)).log10();
        TOP + plot_h * (1.0 - (v - lo_dec) / (hi_dec - lo_dec))
    };
    let span = (series.until.as_second() - series.since.as_second()).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" data-chart=\"{}-throughput\"><title>Throughput of {}: {} tests{} (bit/s, log scale)</title>\
<rect class=\"plot\" x=\"{PAD_L}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h}\"/>",
        esc(&series.target),
        esc(&series.target),
        series.throughput.len(),
        plan.map_or(String::new(), |p| format!(", plan {}", rate(p)))
    );
    let mut d = lo_dec;
    while d <= hi_dec {
        let y = y_of(10f64.powf(d));
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            PAD_L + plot_w,
            PAD_L - 4.0,
            y + 4.0,
            rate_short(10f64.powf(d))
        );
        d += 1.0;
    }
    let _ = write!(
        s,
        "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\">bit/s, log scale</text>",
        PAD_L + 4.0,
        TOP + 12.0
    );
    if let Some(p) = plan.filter(|p| *p > 0.0) {
        let y = y_of(p);
        let _ = write!(
            s,
            "<line class=\"plan\" x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"><title>plan: {}</title></line><text class=\"ax plan-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">plan {}</text>",
            PAD_L + plot_w,
            rate(p),
            PAD_L + plot_w - 4.0,
            y - 3.0,
            rate(p)
        );
    }
    for t in &series.throughput {
        let x = PAD_L + plot_w * ((t.at.as_second() - series.since.as_second()) as f64 / span);
        let y = y_of(t.bits_per_second);
        let _ = write!(
            s,
            "<circle class=\"tp\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"><title>{}: {} in {:.2} s{}</title></circle>",
            esc(&fmt_time_short(t.at, tz)),
            rate(t.bits_per_second),
            t.seconds,
            plan.filter(|p| *p > 0.0).map_or(String::new(), |p| format!(
                ", {:.0} % of plan",
                100.0 * t.bits_per_second / p
            ))
        );
    }
    s.push_str("</svg>");
    s
}

/// An axis label that fits the margin: `100M`, `1G`, `10k` (bit/s).
fn rate_short(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "G")
    } else if bps >= 1e6 {
        (bps / 1e6, "M")
    } else if bps >= 1e3 {
        (bps / 1e3, "k")
    } else {
        (bps, "")
    };
    format!("{v:.0}{unit}")
}

/// `12.3 Mbit/s`.
pub fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1} Mbit/s", bps / 1e6)
    } else {
        format!("{:.0} kbit/s", bps / 1e3)
    }
}
