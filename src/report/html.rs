//! The printable HTML report: everything the Markdown report says, plus a
//! day-by-day timeline (one row per day on a 24-hour axis: outages red, slow
//! periods amber, unmonitored time grey) and availability per day. One file,
//! no external resource; a print stylesheet gives A4 pages with the period,
//! time zone, journal head hash and verify result repeated on every page.
//!
//! It reads only the [`Report`] (times are parsed back from its RFC 3339
//! strings), so it stays in step with whatever `build` computes.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::{Report, ReportOutage, end_text, gaps_text, spaced, start_text};
use crate::text::DurationStyle::Spaced;
use crate::text::{duration, esc};

/// Most day rows the timeline draws (the most recent ones).
const MAX_DAYS: usize = 62;

/// Inline code in the shared sentences (`like this`) as `<code>`.
fn code_spans(s: &str) -> String {
    esc(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn ts(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// A marked span on the timeline.
struct Mark {
    from: Timestamp,
    to: Timestamp,
    class: &'static str,
    title: String,
}

/// The report's periods as timestamps, the zone, and the marks.
struct Timeline {
    since: Timestamp,
    until: Timestamp,
    tz: TimeZone,
    marks: Vec<Mark>,
}

impl Timeline {
    fn of(r: &Report) -> Option<Self> {
        let since = ts(&r.since)?;
        let until = ts(&r.until)?;
        let tz = if r.time_zone.eq_ignore_ascii_case("utc") {
            TimeZone::UTC
        } else {
            TimeZone::get(&r.time_zone).unwrap_or(TimeZone::UTC)
        };
        let generated = ts(&r.generated).unwrap_or(until);
        let mut marks = Vec::new();
        for [a, b] in &r.unmonitored {
            if let (Some(a), Some(b)) = (ts(a), ts(b)) {
                marks.push(Mark {
                    from: a,
                    to: b,
                    class: "gap",
                    title: format!(
                        "not monitored {a} to {b}",
                        a = short(a, &tz),
                        b = short(b, &tz)
                    ),
                });
            }
        }
        // Slow periods under the outages (an outage supersedes them).
        for p in &r.slow_periods {
            let Some(start) = ts(&p.start) else { continue };
            let end = p
                .end
                .as_deref()
                .and_then(ts)
                .unwrap_or(generated.min(until));
            marks.push(Mark {
                from: start,
                to: end,
                class: "slow",
                title: format!(
                    "{} slow from {} ({}), {}, likely cause {}",
                    p.group,
                    short(start, &tz),
                    duration(p.duration_seconds, Spaced),
                    p.triggers.join(", "),
                    p.cause
                ),
            });
        }
        for o in &r.outages {
            let Some(start) = ts(&o.start) else { continue };
            let end = o
                .end
                .as_deref()
                .and_then(ts)
                .unwrap_or(generated.min(until));
            marks.push(Mark {
                from: start,
                to: end,
                class: "out",
                title: format!(
                    "outage of {} from {} ({}), likely cause {}",
                    o.group,
                    short(start, &tz),
                    duration(o.duration_seconds, Spaced),
                    o.cause
                ),
            });
        }
        Some(Self {
            since,
            until,
            tz,
            marks,
        })
    }

    /// Local days touching the period, oldest first (at most [`MAX_DAYS`]).
    fn days(&self) -> Vec<(Date, Timestamp, Timestamp)> {
        let mut out = Vec::new();
        let mut day = self.since.to_zoned(self.tz.clone()).date();
        let last = self.until.to_zoned(self.tz.clone()).date();
        while day <= last {
            let start = day
                .to_zoned(self.tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(self.since);
            let Ok(next) = day.tomorrow() else { break };
            let end = next
                .to_zoned(self.tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(self.until);
            if end > self.since && start < self.until {
                out.push((day, start, end));
            }
            day = next;
        }
        let skip = out.len().saturating_sub(MAX_DAYS);
        out.split_off(skip)
    }
}

fn short(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// One row per day on a 24-hour axis.
fn timeline_svg(t: &Timeline) -> String {
    const LABEL: f64 = 86.0;
    const W: f64 = 700.0;
    const ROW: f64 = 16.0;
    let days = t.days();
    let plot = W - LABEL - 4.0;
    let h = 22.0 + ROW * days.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {h}\" role=\"img\"><title>Day-by-day timeline, {} day(s): outages red, slow periods amber, not monitored grey</title>",
        days.len()
    );
    for hour in (0..=24).step_by(3) {
        let x = LABEL + plot * f64::from(hour) / 24.0;
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"14\" y2=\"{h}\"/><text class=\"ax\" x=\"{x:.1}\" y=\"10\" text-anchor=\"middle\">{hour:02}</text>"
        );
    }
    for (i, (day, a, b)) in days.iter().enumerate() {
        let y = 16.0 + ROW * i as f64;
        let len = b.duration_since(*a).as_secs_f64().max(1.0);
        let x_of = |t: Timestamp| {
            LABEL + plot * (t.duration_since(*a).as_secs_f64() / len).clamp(0.0, 1.0)
        };
        let _ = write!(
            s,
            "<text class=\"day\" x=\"0\" y=\"{:.1}\">{}</text>",
            y + ROW - 5.0,
            day.strftime("%a %Y-%m-%d")
        );
        // The part of the day inside the period: monitored unless marked.
        let (pa, pb) = ((*a).max(t.since), (*b).min(t.until));
        if pb > pa {
            let _ = write!(
                s,
                "<rect class=\"mon\" x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\"><title>{} monitored</title></rect>",
                x_of(pa),
                y + 2.0,
                x_of(pb) - x_of(pa),
                ROW - 4.0,
                day
            );
        }
        for m in &t.marks {
            let (ma, mb) = (m.from.max(pa), m.to.min(pb));
            if mb <= ma {
                continue;
            }
            let (yy, hh) = if m.class == "gap" {
                (y + ROW / 2.0, ROW / 2.0 - 2.0)
            } else {
                (y + 1.0, ROW - 2.0)
            };
            let _ = write!(
                s,
                "<rect class=\"{}\" x=\"{:.2}\" y=\"{yy:.1}\" width=\"{:.2}\" height=\"{hh:.1}\"><title>{}</title></rect>",
                m.class,
                x_of(ma),
                (x_of(mb) - x_of(ma)).max(1.2),
                esc(&m.title)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Availability per day and group (from the report's [`super::ReportDay`]s,
/// the same figures as the summary): a table with a bar in each cell.
fn per_day_table(r: &Report) -> String {
    let groups: Vec<&str> = r.groups.iter().map(|g| g.group.as_str()).collect();
    let mut s = String::from(
        "<div class=\"scroll\"><table class=\"perday\"><thead><tr><th>day</th><th>monitored</th>",
    );
    for g in &groups {
        let _ = write!(s, "<th>{}</th>", esc(g));
    }
    s.push_str("</tr></thead><tbody>");
    for day in r.days.iter().rev() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{:.1} %</td>",
            esc(&day.date),
            day.coverage_percent
        );
        for g in &day.groups {
            match g.availability_percent {
                None => {
                    let _ = write!(s, "<td class=\"na\">{}</td>", esc(&g.text));
                }
                Some(av) => {
                    let _ = write!(
                        s,
                        "<td><svg class=\"av\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" role=\"img\"><title>{} available</title><rect class=\"avbg\" width=\"100\" height=\"8\"/><rect class=\"{}\" width=\"{:.2}\" height=\"8\"/></svg> {}</td>",
                        esc(&g.text),
                        if av >= 99.9 { "avok" } else { "avbad" },
                        av,
                        esc(&g.text)
                    );
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn outage_rows(outages: &[ReportOutage]) -> String {
    let mut rows = String::new();
    for o in outages {
        let (end, gaps) = (end_text(o), gaps_text(o));
        let _ = write!(
            rows,
            "<tr><td data-label=\"start\">{}</td><td data-label=\"end\">{}</td><td data-label=\"duration\">{}</td><td data-label=\"group\">{}</td><td data-label=\"likely cause\">{}</td><td data-label=\"failing targets\">{}</td><td data-label=\"unobserved\">{}</td><td class=\"id\" data-label=\"id\">{}</td></tr>",
            esc(&spaced(&start_text(o))),
            esc(&spaced(&end)),
            esc(&duration(o.duration_seconds, Spaced)),
            esc(&o.group),
            esc(&super::outage_cause_text(o)),
            esc(&o.targets.join(", ")),
            if gaps.is_empty() {
                "–".into()
            } else {
                esc(&spaced(&gaps))
            },
            esc(&o.id)
        );
    }
    rows
}

/// The whole document.
pub fn render(r: &Report, caveats: &[String], verify: &str, definitions: &str) -> String {
    let integrity = if r.journal_ok { "intact" } else { "BROKEN" };
    let head_hash = r
        .journal_head
        .as_ref()
        .map_or_else(|| "(the journal is empty)".to_string(), |h| h.hash.clone());
    let head_short: String = head_hash.chars().take(16).collect();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Connectivity report</h1><p class=\"lead\">{} to {} (times in {}). Generated {} by linkwatch {}.</p>",
        esc(&r.since),
        esc(&r.until),
        esc(&r.time_zone),
        esc(&r.generated),
        esc(r.version)
    );
    let _ = write!(b, "<p>Site: {}.</p>", esc(&super::site_line(&r.sites)));
    evidence_section(&mut b, r, caveats, verify, &head_hash);
    if let Some(t) = Timeline::of(r) {
        let _ = write!(
            b,
            "<section id=\"timeline\"><h2>Day by day</h2><div class=\"scroll\">{}</div><p class=\"legend\"><span class=\"k mon\">■</span> monitored, up \
<span class=\"k out\">■</span> outage (any group) <span class=\"k slow\">■</span> slow <span class=\"k gap\">▄</span> not monitored</p>\
<h2>Availability per day</h2>{}</section>",
            timeline_svg(&t),
            per_day_table(r)
        );
    }
    groups_section(&mut b, r);
    if !r.outages.is_empty() {
        let _ = write!(
            b,
            "<section id=\"outages\"><h2>Outages</h2><table><thead><tr><th>start</th><th>end</th><th>duration</th><th>group</th><th>likely cause</th><th>failing targets</th><th>unobserved</th><th>id</th></tr></thead><tbody>{}</tbody></table></section>",
            outage_rows(&r.outages)
        );
    }
    b.push_str(&super::slow::html(&r.slow_periods));
    b.push_str(&super::interference::html(r.signs_of_interference.as_ref()));
    b.push_str(&super::elsewhere::html(r.seen_from_elsewhere.as_ref()));
    b.push_str(&super::plan::html(
        r.speed_against_plan.as_ref(),
        &r.time_zone,
    ));
    b.push_str(&super::contract::html(
        r.speed_against_plan
            .as_ref()
            .map_or(&[][..], |p| &p.against_the_contract),
    ));
    b.push_str(&super::plan::html_tests(r.speed_against_plan.as_ref()));
    paths_section(&mut b, r);
    let _ = write!(b, "<footer><p>{}</p></footer>", esc(definitions));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>Connectivity report {since} to {until}</title><style>{STYLE}{extra}</style></head><body>\
<table class=\"page\"><thead><tr><td><div class=\"running\">Connectivity report · {since} to {until} · times in {tz} · \
journal {head_short}… · hash chain {integrity}</div></td></tr></thead><tbody><tr><td>{b}</td></tr></tbody></table></body></html>\n",
        since = esc(&r.since),
        until = esc(&r.until),
        tz = esc(&r.time_zone),
        head_short = esc(&head_short),
        extra = if r.signs_of_interference.is_some() {
            INTERFERENCE_STYLE
        } else {
            ""
        },
    )
}

/// The "Evidence quality" section: coverage, the journal's integrity and
/// head, stalls, caveats and the unmonitored spans.
fn evidence_section(b: &mut String, r: &Report, caveats: &[String], verify: &str, head_hash: &str) {
    let integrity = if r.journal_ok { "intact" } else { "BROKEN" };
    b.push_str("<section id=\"evidence\"><h2>Evidence quality</h2><ul>");
    let _ = write!(
        b,
        "<li>Monitoring coverage: {:.2} % of the period ({} of {}), {} run(s)</li>\
<li>Journal integrity (hash chain): <strong>{integrity}</strong></li>\
<li>Journal head hash: {}</li><li>{}</li>\
<li>Runs without a confirmed synchronized clock: {}</li>",
        r.coverage_percent,
        esc(&duration(r.monitored_seconds, Spaced)),
        esc(&duration(r.period_seconds, Spaced)),
        r.runs,
        match &r.journal_head {
            Some(h) => format!(
                "<code class=\"hash\">{}</code> (line seq {}). {}",
                esc(&h.hash),
                h.seq,
                esc(&super::witness_instructions(h))
            ),
            None => esc(head_hash),
        },
        code_spans(verify),
        r.unsynchronized_runs
    );
    if r.stalls > 0 {
        let _ = write!(
            b,
            "<li>Stalls (the daemon was stopped or the system suspended; not monitored): {}, {} in all</li>",
            r.stalls,
            esc(&duration(r.stalled_seconds, Spaced))
        );
    }
    for w in r.witnesses.iter().flat_map(|w| &w.text) {
        let _ = write!(b, "<li class=\"witness\">{}</li>", code_spans(&spaced(w)));
    }
    for c in caveats {
        let _ = write!(
            b,
            "<li class=\"note\"><strong>Note:</strong> {}</li>",
            esc(c)
        );
    }
    b.push_str("</ul>");
    if !r.unmonitored.is_empty() {
        b.push_str("<p>Not monitored:</p><ul class=\"unmonitored\">");
        for [x, y] in &r.unmonitored {
            let _ = write!(b, "<li>{} to {}</li>", esc(&spaced(x)), esc(&spaced(y)));
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
}

/// The "Summary by group" section: one table row per group.
fn groups_section(b: &mut String, r: &Report) {
    b.push_str("<section id=\"groups\"><h2>Summary by group</h2>");
    if r.groups.is_empty() {
        b.push_str("<p>No group is known: no outage was recorded in this period and no configuration names one (pass --config).</p>");
    } else {
        b.push_str("<div class=\"scroll\"><table><thead><tr><th>group</th><th>summary</th><th>availability</th><th>coverage</th><th>downtime</th><th>longest</th><th>downtime by cause</th></tr></thead><tbody>");
        for g in &r.groups {
            b.push_str("<tr>");
            for (i, c) in super::group_cells(g).iter().enumerate() {
                let num = if (2..=5).contains(&i) {
                    " class=\"num\""
                } else {
                    ""
                };
                let _ = write!(b, "<td{num}>{}</td>", esc(c));
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table></div>");
    }
    b.push_str("</section>");
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1e23;background:#fff;margin:0 auto;max-width:1000px;padding:0 12px}\
table.page{width:100%;border-collapse:collapse;table-layout:fixed}table.page>thead>tr>td,table.page>tbody>tr>td{border:0;padding:0}\
.running{font-size:11px;color:#5b626b;border-bottom:1px solid #d5d8dd;padding:6px 0;margin-bottom:6px;overflow-wrap:anywhere}\
h1{font-size:1.5rem;margin:8px 0 2px}h2{font-size:1.1rem;margin:18px 0 6px;break-after:avoid}\
.lead{color:#5b626b;margin:0 0 8px}\
table{border-collapse:collapse;width:100%;margin:4px 0}th,td{border:1px solid #d5d8dd;padding:3px 6px;text-align:left;vertical-align:top;font-size:13px;overflow-wrap:break-word}\
th{background:#f1f2f4}tr{break-inside:avoid}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.total td{font-weight:600}td.id{font-size:11px;color:#5b626b;word-break:break-all}\
code{font-size:12px;overflow-wrap:anywhere}.note{color:#a11}\
svg.timeline{width:100%;height:auto;display:block}\
.grid{stroke:#d5d8dd;stroke-width:.6}.ax,.day{font-size:10px;fill:#5b626b;font-family:system-ui,sans-serif}\
.mon{fill:#cfe8d6}.out{fill:#c8252c}.slow{fill:#d08700}.gap{fill:#9aa0a6}\
.k{font-size:14px}.k.mon{color:#9fd3ae}.k.out{color:#c8252c}.k.slow{color:#d08700}.k.gap{color:#9aa0a6}.legend{font-size:12px;color:#5b626b}\
svg.av{width:60px;height:8px;vertical-align:middle}.avbg{fill:#e3e5e8}.avok{fill:#1f8a44}.avbad{fill:#c8252c}td.na{color:#5b626b}\
.scroll{overflow-x:auto;max-width:100%}.scroll>table{margin:0}#speedtests td:first-child{min-width:6.4em}\
#elsewhere h3{font-size:.95rem;margin:14px 0 2px}#elsewhere p{margin:3px 0}#elsewhere .cause{color:#5b626b;font-size:12px}#elsewhere .none{color:#5b626b;font-style:italic}\
#elsewhere .verdict{padding:3px 8px;border-left:4px solid #9aa0a6;background:#f6f7f8}#elsewhere .v-up{border-left-color:#1f8a44}#elsewhere .v-down{border-left-color:#c8252c}#elsewhere .v-mixed{border-left-color:#d08700}\
table.corr{width:auto;min-width:50%}.t-up{color:#1f8a44}.t-down{color:#c8252c;font-weight:600}.t-partial{color:#a36a00}.t-no-data{color:#5b626b}\
footer{margin-top:18px;border-top:1px solid #d5d8dd;font-size:12px;color:#3b4047}\
@media (max-width:600px){body{padding:0 8px}th,td{font-size:12px;padding:2px 4px}.perday svg.av{display:none}li,.lead,code{overflow-wrap:anywhere}#plan table{display:block;overflow-x:auto}svg.timeline{min-width:640px}#groups td:nth-child(2){min-width:12em}#outages thead{display:none}#outages table,#outages tbody,#outages tr,#outages td{display:block;width:auto}#outages tr{border:1px solid #d5d8dd;margin:0 0 8px;padding:4px 0}#outages td{border:0;padding:1px 6px}#outages td::before{content:attr(data-label) \": \";color:#5b626b}}\
@media print{@page{size:A4;margin:12mm 10mm 14mm}body{max-width:none;padding:0;font-size:11px}\
th,td{font-size:10.5px}a{color:inherit;text-decoration:none}svg.timeline{break-inside:avoid}}";

/// The style of "Signs of interference", only in a report that has the
/// section (one without reads byte for byte as before).
const INTERFERENCE_STYLE: &str = "\
#interference .summary{font-weight:600}#interference h3{font-size:.95rem;margin:14px 0 2px}#interference .none,#interference .explain{color:#5b626b;font-size:12px}\
#interference .sign{padding:3px 8px;border-left:4px solid #a36a00;background:#fbf8f1;margin:6px 0}#interference .sign p{margin:3px 0}\
pre.raw{font-size:12px;margin:2px 0 4px;padding:3px 6px;background:#f1f2f4;white-space:pre-wrap;overflow-wrap:anywhere}.at{color:#5b626b}";

/// "Where the path stopped", as the Markdown report says it.
fn paths_section(b: &mut String, r: &Report) {
    if r.paths.is_empty() {
        return;
    }
    b.push_str("<section id=\"paths\"><h2>Where the path stopped</h2><ul>");
    for p in &r.paths {
        let _ = write!(
            b,
            "<li>{} outage of {} (<code>{}</code>)<ul>",
            esc(&p.group),
            esc(&spaced(&p.start)),
            esc(&p.id)
        );
        if let Some(s) = &p.at_start {
            let _ = write!(b, "<li>at the start: {}", esc(s));
            if !p.hops_at_start.is_empty() {
                let _ = write!(b, " (hops: {})", esc(&p.hops_at_start.join(" > ")));
            }
            b.push_str("</li>");
        }
        if let Some(e) = &p.at_end {
            let _ = write!(b, "<li>at the end: {}</li>", esc(e));
        }
        b.push_str("</ul></li>");
    }
    b.push_str("</ul><p>A traceroute (ICMP echo with increasing TTL) is taken when an outage starts and when it ends, and a baseline every <code>trace_every</code>; <code>*</code> is a hop that did not answer.</p></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_get_room_to_wrap_and_nothing_else_changes() {
        assert_eq!(
            spaced("2026-12-01T15:59:34.600+00:00 to 2026-12-01T16:00:02.951-05:00"),
            "2026-12-01 15:59:34.600 +00:00 to 2026-12-01 16:00:02.951 -05:00"
        );
        assert_eq!(spaced("isp-gw, T-Mobile 5G"), "isp-gw, T-Mobile 5G");
    }
}
