//! The report's "Signs of interference": the periods whose likely cause is
//! `interference` (with the checks, targets and names behind it), and the
//! journal's `interference` lines of the period grouped by (target, check):
//! what was seen, how it was checked, the raw answers. When nothing was
//! seen it says so, and which checks the configuration had on.
//!
//! The section appears when there is something to say: a sign or such a
//! period in the period, or a check on in the configuration the report
//! reads. A journal and configuration from before these checks read exactly
//! as they did.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use super::{Report, csv_field, spaced};
use crate::interference::show::{self, ConfiguredCheck, Sign};
use crate::journal::Ledger;
use crate::journal::record::InterferenceSummary;
use crate::text::esc;

/// The section.
#[derive(Debug, Clone, Serialize)]
pub struct SignsOfInterference {
    /// The section in one sentence.
    pub summary: String,
    /// The checks the configuration turns on, by check; `null` when the
    /// report had no configuration to read (then nobody can say here which
    /// checks were on).
    pub checks_configured: Option<Vec<ConfiguredCheck>>,
    /// Outages and slow periods of the report whose cause is `interference`.
    pub periods: Vec<InterferencePeriod>,
    /// The `interference` lines of the period, by (target, check).
    pub signs: Vec<ReportSign>,
}

/// An outage or slow period whose cause is `interference`.
#[derive(Debug, Clone, Serialize)]
pub struct InterferencePeriod {
    /// `outage` or `slow`.
    pub kind: &'static str,
    pub id: String,
    pub group: String,
    pub start: String,
    pub end: Option<String>,
    pub interference: Option<InterferenceSummary>,
}

/// One (target, check) pair's lines, as the report shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSign {
    pub target: String,
    pub group: String,
    pub check: String,
    /// What the check saw, in words.
    pub meaning: &'static str,
    pub names: Vec<String>,
    pub first_seen: String,
    /// The probe of the last line (written at most once an hour per pair).
    pub last_seen: String,
    /// Probes that showed it.
    pub probes: u64,
    /// Journal lines.
    pub lines: usize,
    /// How it was checked and the raw answers: each different one, oldest first.
    pub evidence: Vec<ReportEvidence>,
    /// Further different ones not listed.
    pub more_evidence: usize,
    /// The last line's (the CSV's `detail` and `raw`).
    pub latest: ReportEvidence,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportEvidence {
    pub at: String,
    pub name: String,
    /// What was seen and how it was checked.
    pub detail: String,
    /// The raw answers or certificate facts.
    pub raw: Vec<String>,
}

/// The `interference` lines of `history` inside `[since, until)`, grouped.
pub(super) fn signs(
    history: &Ledger,
    since: Timestamp,
    until: Timestamp,
    fmt: &dyn Fn(Timestamp) -> String,
) -> Vec<ReportSign> {
    show::group(
        history
            .interference
            .iter()
            .filter(|l| l.at >= since && l.at < until),
    )
    .into_iter()
    .map(|s: Sign| ReportSign {
        latest: ReportEvidence {
            at: fmt(s.latest.at),
            name: s.latest.name,
            detail: s.latest.detail,
            raw: s.latest.raw,
        },
        first_seen: fmt(s.first_seen),
        last_seen: fmt(s.last_seen),
        evidence: s
            .evidence
            .into_iter()
            .map(|e| ReportEvidence {
                at: fmt(e.at),
                name: e.name,
                detail: e.detail,
                raw: e.raw,
            })
            .collect(),
        target: s.target,
        group: s.group,
        check: s.check,
        meaning: s.meaning,
        names: s.names,
        probes: s.probes,
        lines: s.lines,
        more_evidence: s.more_evidence,
    })
    .collect()
}

/// The checks the configuration file at `path` turns on; `None` when it
/// does not load (read as a reader: secrets it cannot open do not matter).
pub(crate) fn configured_in(path: &std::path::Path) -> Option<Vec<ConfiguredCheck>> {
    let config = crate::config::load_for_reading(path).ok()?;
    Some(show::configured_checks(&config))
}

/// The section for report `r` (its periods), with `signs` and the checks
/// `configured`; `None` when there is nothing to say (see the module doc).
pub(super) fn section(
    r: &Report,
    signs: Vec<ReportSign>,
    configured: Option<Vec<ConfiguredCheck>>,
) -> Option<SignsOfInterference> {
    let cause = crate::interference::CAUSE;
    let mut periods: Vec<InterferencePeriod> = r
        .outages
        .iter()
        .filter(|o| o.cause == cause || o.interference.is_some())
        .map(|o| InterferencePeriod {
            kind: "outage",
            id: o.id.clone(),
            group: o.group.clone(),
            start: o.start.clone(),
            end: o.end.clone(),
            interference: o.interference.as_deref().cloned(),
        })
        .collect();
    periods.extend(
        r.slow_periods
            .iter()
            .filter(|p| p.cause == cause || p.interference.is_some())
            .map(|p| InterferencePeriod {
                kind: "slow",
                id: p.id.clone(),
                group: p.group.clone(),
                start: p.start.clone(),
                end: p.end.clone(),
                interference: p.interference.as_deref().cloned(),
            }),
    );
    periods.sort_by(|a, b| a.start.cmp(&b.start));
    // Nothing seen and no check on (or none known): no section, so that a
    // report of a journal and configuration from before these checks reads
    // exactly as it did.
    if signs.is_empty() && periods.is_empty() && configured.as_ref().is_none_or(Vec::is_empty) {
        return None;
    }
    let summary = summary(&signs, &periods, configured.as_deref());
    Some(SignsOfInterference {
        summary,
        checks_configured: configured,
        periods,
        signs,
    })
}

/// Recomputes the section of `r` with the checks of another configuration
/// (`report --config PATH`): the signs stay those of the journal.
pub(crate) fn reconfigure(r: &mut Report, configured: Option<Vec<ConfiguredCheck>>) {
    let signs = r
        .signs_of_interference
        .take()
        .map_or_else(Vec::new, |s| s.signs);
    r.signs_of_interference = section(r, signs, configured);
}

fn summary(
    signs: &[ReportSign],
    periods: &[InterferencePeriod],
    configured: Option<&[ConfiguredCheck]>,
) -> String {
    if signs.is_empty() && periods.is_empty() {
        return match configured {
            Some([]) => "No sign of interference was recorded in this period; no interference check was configured, so none was looked for.".into(),
            Some(c) => format!(
                "No sign of interference was recorded in this period, with these checks on: {}.",
                checks_on(c)
            ),
            None => "No sign of interference was recorded in this period.".into(),
        };
    }
    let probes: u64 = signs.iter().map(|s| s.probes).sum();
    let mut checks: Vec<&str> = signs.iter().map(|s| s.check.as_str()).collect();
    checks.sort_unstable();
    checks.dedup();
    let mut targets: Vec<&str> = signs.iter().map(|s| s.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut s = if signs.is_empty() {
        "No interference line was recorded in this period".to_string()
    } else {
        format!(
            "{probes} probe{} of {} target{} showed signs of interference ({})",
            if probes == 1 { "" } else { "s" },
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            checks.join(", ")
        )
    };
    let (outages, slow) = (
        periods.iter().filter(|p| p.kind == "outage").count(),
        periods.iter().filter(|p| p.kind == "slow").count(),
    );
    if outages + slow > 0 {
        let _ = write!(
            s,
            "; {outages} outage{} and {slow} slow period{} had interference as their likely cause",
            if outages == 1 { "" } else { "s" },
            if slow == 1 { "" } else { "s" },
        );
    }
    s.push('.');
    s
}

/// `dns_inconsistent (isp-dns), sni_blocked (web)`.
fn checks_on(c: &[ConfiguredCheck]) -> String {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for x in c {
        match out.iter_mut().find(|(k, _)| *k == x.check) {
            Some((_, t)) => t.push(&x.target),
            None => out.push((x.check.clone(), vec![&x.target])),
        }
    }
    out.iter()
        .map(|(k, t)| format!("{k} ({})", t.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

const EXPLAIN: &str = "Each check holds what the network answered against a control: a second resolver (and a TLS connection to the disputed address), the certificate issuers usually seen for the site or pinned keys, the same server asked under another name, configured block-page patterns, a control download. A sign is evidence, not proof: README \"Signs of interference\" says what each check can and cannot prove and its known false positives. linkwatch only measures; it circumvents nothing. A line is journaled at the first probe showing a check for a target, then at most once an hour while it goes on: \"last seen\" is the probe of the last line (it may have gone on for up to an hour after), \"probes\" counts every probe that showed it.";

const CONFIG_UNKNOWN: &str = "The configuration was not available to this report (pass --config): which checks were on is not said here.";

/// `` `text` `` as a Markdown code span that survives backticks.
fn md_code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// A Markdown table cell: pipes escaped, one line.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub(super) fn markdown(out: &mut String, s: Option<&SignsOfInterference>) {
    let Some(s) = s else { return };
    let _ = writeln!(out, "\n## Signs of interference\n");
    let _ = writeln!(out, "{}", s.summary);
    match &s.checks_configured {
        Some(c) if !c.is_empty() => {
            let _ = writeln!(out, "\nChecks configured:\n");
            for x in c {
                let _ = writeln!(out, "- {} on {}: {}", x.check, x.target, md_code(&x.how));
            }
        }
        Some(_) => {}
        None => {
            let _ = writeln!(out, "\n{CONFIG_UNKNOWN}");
        }
    }
    if !s.periods.is_empty() {
        let _ = writeln!(out, "\nPeriods whose likely cause is interference:\n");
        for p in &s.periods {
            let _ = writeln!(
                out,
                "- {} of {} from {} to {} (`{}`): {}",
                if p.kind == "outage" {
                    "outage"
                } else {
                    "slow period"
                },
                p.group,
                p.start,
                p.end.as_deref().unwrap_or("ongoing"),
                p.id,
                p.interference
                    .as_ref()
                    .map_or("no summary recorded".into(), show::summary_sentence)
            );
        }
    }
    if !s.signs.is_empty() {
        let _ = writeln!(
            out,
            "\n| target | check | names | first seen | last seen | probes | what was seen |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---:|---|");
        for x in &s.signs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_cell(&x.target),
                x.check,
                md_cell(&x.names.join(", ")),
                x.first_seen,
                x.last_seen,
                x.probes,
                x.meaning
            );
        }
        for x in &s.signs {
            let _ = writeln!(out, "\n### {}: {}\n", x.target, x.check);
            for e in &x.evidence {
                let _ = writeln!(out, "- {} ({}): {}", e.at, e.name, e.detail);
                for raw in &e.raw {
                    let _ = writeln!(out, "  - {}", md_code(raw));
                }
            }
            if x.more_evidence > 0 {
                let _ = writeln!(
                    out,
                    "- and {} other different answer(s), not listed",
                    x.more_evidence
                );
            }
        }
    }
    let _ = writeln!(out, "\n{EXPLAIN}");
}

pub(super) fn html(s: Option<&SignsOfInterference>) -> String {
    let Some(s) = s else {
        return String::new();
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<section id=\"interference\"><h2>Signs of interference</h2><p class=\"summary\">{}</p>",
        esc(&s.summary)
    );
    match &s.checks_configured {
        Some(c) if !c.is_empty() => {
            b.push_str("<p>Checks configured:</p><ul class=\"checks\">");
            for x in c {
                let _ = write!(
                    b,
                    "<li><strong>{}</strong> on {}: <code>{}</code></li>",
                    esc(&x.check),
                    esc(&x.target),
                    esc(&x.how)
                );
            }
            b.push_str("</ul>");
        }
        Some(_) => {}
        None => {
            let _ = write!(b, "<p class=\"none\">{}</p>", esc(CONFIG_UNKNOWN));
        }
    }
    if !s.periods.is_empty() {
        b.push_str("<p>Periods whose likely cause is interference:</p><ul class=\"periods\">");
        for p in &s.periods {
            let _ = write!(
                b,
                "<li>{} of <strong>{}</strong> from {} to {} (<code>{}</code>): {}</li>",
                if p.kind == "outage" {
                    "outage"
                } else {
                    "slow period"
                },
                esc(&p.group),
                esc(&spaced(&p.start)),
                esc(&spaced(p.end.as_deref().unwrap_or("ongoing"))),
                esc(&p.id),
                esc(&p
                    .interference
                    .as_ref()
                    .map_or("no summary recorded".into(), show::summary_sentence))
            );
        }
        b.push_str("</ul>");
    }
    for x in &s.signs {
        let _ = write!(
            b,
            "<div class=\"sign\" data-target=\"{t}\" data-check=\"{c}\"><h3>{t}: {c}</h3><p>{m}. Names: {n}. First seen {f}, last seen {l}; {p} probe{ps} in {k} journal line{ks}.</p><ul>",
            t = esc(&x.target),
            c = esc(&x.check),
            m = esc(&capitalised(x.meaning)),
            n = esc(&x.names.join(", ")),
            f = esc(&spaced(&x.first_seen)),
            l = esc(&spaced(&x.last_seen)),
            p = x.probes,
            ps = if x.probes == 1 { "" } else { "s" },
            k = x.lines,
            ks = if x.lines == 1 { "" } else { "s" },
        );
        for e in &x.evidence {
            let _ = write!(
                b,
                "<li><span class=\"at\">{}</span> ({}): {}",
                esc(&spaced(&e.at)),
                esc(&e.name),
                esc(&e.detail)
            );
            if !e.raw.is_empty() {
                b.push_str("<pre class=\"raw\">");
                for raw in &e.raw {
                    let _ = writeln!(b, "{}", esc(raw));
                }
                b.push_str("</pre>");
            }
            b.push_str("</li>");
        }
        if x.more_evidence > 0 {
            let _ = write!(
                b,
                "<li>and {} other different answer(s), not listed</li>",
                x.more_evidence
            );
        }
        b.push_str("</ul></div>");
    }
    let _ = write!(b, "<p class=\"explain\">{}</p></section>", esc(EXPLAIN));
    b
}

/// `s` with its first letter upper-case.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `--table interference`: one row per (target, check) sign (`record`
/// `sign`) and per period whose cause is interference (`outage`, `slow`).
pub(super) fn csv(out: &mut String, s: Option<&SignsOfInterference>) {
    out.push_str("record,id,group,targets,checks,names,from,to,probes,of_failures,detail,raw\n");
    let Some(s) = s else { return };
    for x in &s.signs {
        let last = Some(&x.latest);
        let _ = writeln!(
            out,
            "sign,,{},{},{},{},{},{},{},,{},{}",
            csv_field(&x.group),
            csv_field(&x.target),
            csv_field(&x.check),
            csv_field(&x.names.join(" ")),
            x.first_seen,
            x.last_seen,
            x.probes,
            csv_field(last.map_or("", |e| e.detail.as_str())),
            csv_field(&last.map_or_else(String::new, |e| e.raw.join(" | "))),
        );
    }
    for p in &s.periods {
        let i = p.interference.as_ref();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},,",
            p.kind,
            csv_field(&p.id),
            csv_field(&p.group),
            csv_field(&i.map_or_else(String::new, |i| i.targets.join(" "))),
            csv_field(&i.map_or_else(String::new, |i| i.checks.join(" "))),
            csv_field(&i.map_or_else(String::new, |i| i.names.join(" "))),
            p.start,
            p.end.as_deref().unwrap_or(""),
            i.map_or(String::new(), |i| i.failures.to_string()),
            i.map_or(String::new(), |i| i.of_failures.to_string()),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::journal::Entry;
    use crate::journal::peer_fixture::{append, at, start};
    use crate::journal::record::InterferenceSeen;
    use crate::report::{CsvTable, Format, build, render, render_with};

    /// Signs in a journal whose configuration the report cannot read: the
    /// section says what was seen, and that which checks were on is unknown.
    #[test]
    fn signs_without_a_configuration_say_the_checks_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let seen = |s: f64, raw: &str| {
            Entry::Interference(InterferenceSeen {
                target: "isp-dns".into(),
                group: "internet".into(),
                check: "dns_bogon".into(),
                at: at(s),
                name: "example.org".into(),
                detail: "isp-resolver answered example.org A 10.1.2.3 | a private address".into(),
                raw: vec![raw.into()],
                count: 1,
            })
        };
        let mut lines = vec![(0.0, start("home"))];
        // Seven different answers: five are listed, two counted.
        for i in 0..7 {
            lines.push((
                10.0 + f64::from(i),
                seen(10.0 + f64::from(i), &format!("isp-resolver: A 10.1.2.{i}")),
            ));
        }
        // Outside the period: not counted.
        lines.push((700.0, seen(700.0, "late")));
        append(dir.path(), lines);
        let r = build(dir.path(), at(0.0), at(600.0), "UTC").unwrap();
        let s = r.signs_of_interference.as_ref().unwrap();
        assert!(s.checks_configured.is_none());
        assert_eq!(s.signs.len(), 1);
        assert_eq!(s.signs[0].probes, 7);
        assert_eq!(s.signs[0].evidence.len(), 5);
        assert_eq!(s.signs[0].more_evidence, 2);
        assert_eq!(
            s.summary,
            "7 probes of 1 target showed signs of interference (dns_bogon)."
        );
        let md = render(&r, Format::Markdown).unwrap();
        assert!(
            md.contains("The configuration was not available to this report"),
            "{md}"
        );
        assert!(md.contains("| isp-dns | dns_bogon | example.org |"), "{md}");
        assert!(
            md.contains("- and 2 other different answer(s), not listed"),
            "{md}"
        );
        assert!(!md.contains("late"), "{md}");
        let html = render(&r, Format::Html).unwrap();
        assert!(html.contains("#interference .sign{"), "the section's style");
        assert!(
            html.contains("<h3>isp-dns: dns_bogon</h3><p>The resolver answered"),
            "{html}"
        );
        let csv = render_with(&r, Format::Csv, CsvTable::Interference).unwrap();
        assert!(
            csv.ends_with(",7,,isp-resolver answered example.org A 10.1.2.3 | a private address,isp-resolver: A 10.1.2.6\n"),
            "{csv}"
        );
    }
}
