//! The report's "Seen from elsewhere" section (what other linkwatch sites,
//! `[[peer]]`, saw of each period's targets) and the witness lines of its
//! "Evidence quality" section (which of this journal's heads other sites
//! hold, and which of theirs this one holds).
//!
//! Both appear only where there is something to say: a peer configured, or
//! peers' events in the journal. A journal from before peers reads exactly
//! as it did.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use super::{ReportOutage, ReportSlowPeriod, csv_field, spaced};
use crate::journal::record::{CorroboratedTarget, PeerVerdict};
use crate::journal::{Elsewhere, Ledger, loss_text, target_word};
use crate::text::esc;

/// The section: every period of the report with what peers saw of it.
#[derive(Debug, Clone, Serialize)]
pub struct SeenFromElsewhere {
    /// The peers this site asks (`[[peer]]` with a `url`) as configured;
    /// empty: none is.
    pub peers: Vec<String>,
    /// The section in one sentence.
    pub summary: String,
    pub periods: Vec<ElsewherePeriod>,
}

/// One outage or slow period and what each peer saw of it.
#[derive(Debug, Clone, Serialize)]
pub struct ElsewherePeriod {
    /// `outage` or `slow`.
    pub kind: &'static str,
    pub id: String,
    pub group: String,
    pub start: String,
    pub end: Option<String>,
    /// The record's cause (`destination` when a peer saw the destinations down too).
    pub cause: String,
    /// What this site judged, when a peer's verdict changed `cause`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_cause: Option<String>,
    /// Each peer that answered, in the order they answered.
    pub peers: Vec<ElsewherePeer>,
    /// Why no peer is listed: `no peer configured`, or `no corroboration: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub none: Option<String>,
}

/// What one peer saw of a period.
#[derive(Debug, Clone, Serialize)]
pub struct ElsewherePeer {
    pub peer: String,
    pub verdict: PeerVerdict,
    /// The verdict in words.
    pub summary: String,
    pub targets: Vec<CorroboratedTarget>,
}

/// The witness lines of "Evidence quality".
#[derive(Debug, Clone, Serialize)]
pub struct ReportWitnesses {
    /// Heads of this journal other sites acknowledged (the whole journal).
    pub heads_witnessed: u64,
    /// Per peer.
    pub witnessed_by: Vec<WitnessedBy>,
    /// The latest head acknowledged.
    pub last: Option<WitnessedBy>,
    /// Heads of other sites this journal holds, per peer.
    pub received: Vec<ReceivedFrom>,
    /// The lines as the Markdown and HTML reports say them.
    pub text: Vec<String>,
}

/// One peer's acknowledgements of our heads.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessedBy {
    pub peer: String,
    pub heads: u64,
    /// The latest head it acknowledged: its line's seq and hash.
    pub last_seq: u64,
    pub last_hash: String,
    /// When that acknowledgement was journaled.
    pub last_acknowledged: String,
    /// The peer's receipt for it: its own journal line (seq, hash).
    pub receipt_seq: u64,
    pub receipt_hash: String,
}

/// The heads one peer sent this site.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedFrom {
    pub peer: String,
    pub site: String,
    pub heads: u64,
    pub last_seq: u64,
    /// When the last one was received.
    pub last_seen: String,
}

/// Why a period lists no peer.
fn none_text(peers: &[String]) -> String {
    if peers.is_empty() {
        "no peer configured".to_string()
    } else {
        "no corroboration: no peer answered for this period".to_string()
    }
}

fn peers_of(e: &Elsewhere) -> Vec<ElsewherePeer> {
    e.peer_verdicts
        .iter()
        .map(|p| ElsewherePeer {
            peer: p.peer.clone(),
            verdict: p.verdict,
            summary: p.summary.clone(),
            targets: e.targets_of(&p.peer).cloned().collect(),
        })
        .collect()
}

/// The section, or `None` when no peer is configured and the journal holds
/// nothing a peer said (a journal from before peers).
pub(super) fn build(
    history: &Ledger,
    peers: &[String],
    outages: &[ReportOutage],
    slow: &[ReportSlowPeriod],
) -> Option<SeenFromElsewhere> {
    if peers.is_empty() && !history.has_peer_evidence() {
        return None;
    }
    let mut periods: Vec<ElsewherePeriod> = outages
        .iter()
        .map(|o| ElsewherePeriod {
            kind: "outage",
            id: o.id.clone(),
            group: o.group.clone(),
            start: o.start.clone(),
            end: o.end.clone(),
            cause: o.cause.clone(),
            local_cause: o.elsewhere.local_cause.clone(),
            peers: peers_of(&o.elsewhere),
            none: o.elsewhere.is_empty().then(|| none_text(peers)),
        })
        .chain(slow.iter().map(|p| ElsewherePeriod {
            kind: "slow",
            id: p.id.clone(),
            group: p.group.clone(),
            start: p.start.clone(),
            end: p.end.clone(),
            cause: p.cause.clone(),
            local_cause: p.elsewhere.local_cause.clone(),
            peers: peers_of(&p.elsewhere),
            none: p.elsewhere.is_empty().then(|| none_text(peers)),
        }))
        .collect();
    // Times in one zone and format: the strings sort as the moments do.
    periods.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    let corroborated = periods.iter().filter(|p| !p.peers.is_empty()).count();
    let destination = periods.iter().filter(|p| p.local_cause.is_some()).count();
    let summary = if periods.is_empty() {
        "No outage or slow period in this period: nothing to corroborate.".to_string()
    } else {
        let mut s = format!(
            "{corroborated} of {} period(s) corroborated by a peer",
            periods.len()
        );
        if destination > 0 {
            let _ = write!(
                s,
                "; {destination} seen down from elsewhere too (cause: destination)"
            );
        }
        s.push('.');
        s
    };
    Some(SeenFromElsewhere {
        peers: peers.to_vec(),
        summary,
        periods,
    })
}

/// The witness lines, or `None` when no peer is configured and the journal
/// holds no witness event.
pub(super) fn witnesses(
    history: &Ledger,
    peers: &[String],
    fmt: &dyn Fn(Timestamp) -> String,
) -> Option<ReportWitnesses> {
    let w = &history.witnesses;
    if peers.is_empty() && w.is_empty() {
        return None;
    }
    let by = |p: &crate::journal::PeerWitnessed| WitnessedBy {
        peer: p.peer.clone(),
        heads: p.heads,
        last_seq: p.last.head.seq,
        last_hash: p.last.head.hash.clone(),
        last_acknowledged: fmt(p.last_acknowledged),
        receipt_seq: p.last.receipt.seq,
        receipt_hash: p.last.receipt.hash.clone(),
    };
    let witnessed_by: Vec<WitnessedBy> = w.witnessed.iter().map(by).collect();
    let last = w.last_witnessed().map(by);
    let received: Vec<ReceivedFrom> = w
        .received
        .iter()
        .map(|p| ReceivedFrom {
            peer: p.peer.clone(),
            site: p.last.site.clone(),
            heads: p.heads,
            last_seq: p.last.head.seq,
            last_seen: fmt(p.last_seen),
        })
        .collect();
    let mut text = Vec::new();
    match &last {
        None => text.push(
            "Witnessed by other sites: none; no peer has acknowledged a head of this journal"
                .to_string(),
        ),
        Some(l) => text.push(format!(
            "Witnessed by other sites: {} head(s), by {}; the last: line seq {}, acknowledged by {} at {} (its receipt: its line seq {}). Lines after seq {} are not witnessed yet. To check: `linkwatch outages --verify --peer {}`",
            w.heads_witnessed(),
            witnessed_by
                .iter()
                .map(|p| format!("{} ({})", p.peer, p.heads))
                .collect::<Vec<_>>()
                .join(", "),
            l.last_seq,
            l.peer,
            l.last_acknowledged,
            l.receipt_seq,
            l.last_seq,
            l.peer
        )),
    }
    if !received.is_empty() {
        text.push(format!(
            "Heads of other sites held here: {}",
            received
                .iter()
                .map(|r| format!(
                    "{} ({} head(s) of site {}, the last: seq {}, received {})",
                    r.peer, r.heads, r.site, r.last_seq, r.last_seen
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Some(ReportWitnesses {
        heads_witnessed: w.heads_witnessed(),
        witnessed_by,
        last,
        received,
        text,
    })
}

/// "Outage of internet from 2026-11-01T10:01:00.000+00:00 to 10:02:00.000+00:00"
/// (the end's date only when it is another day).
fn heading(p: &ElsewherePeriod) -> String {
    let end = match p.end.as_deref() {
        None => "now (ongoing)",
        Some(e) => match (p.start.split_once('T'), e.split_once('T')) {
            (Some((day, _)), Some((end_day, time))) if day == end_day => time,
            _ => e,
        },
    };
    format!(
        "{} of {} from {} to {end}",
        if p.kind == "outage" {
            "Outage"
        } else {
            "Slow period"
        },
        p.group,
        p.start,
    )
}

/// "cause destination (this site judged: internet)".
fn cause_text(p: &ElsewherePeriod) -> String {
    match &p.local_cause {
        Some(l) => format!("likely cause {} (this site judged: {l})", p.cause),
        None => format!("likely cause {}", p.cause),
    }
}

/// One target as a peer saw it: `intl-web: 40 probes, 40 failed (100.0 %), down`.
fn target_text(t: &CorroboratedTarget) -> String {
    let name = match &t.their_target {
        Some(theirs) if *theirs != t.target => format!("{} (their {theirs})", t.target),
        _ => t.target.clone(),
    };
    if t.probes == 0 {
        return format!("{name}: no probes there, {}", target_word(t.verdict));
    }
    format!(
        "{name}: {} probes, {} failed ({}), {}",
        t.probes,
        t.failures,
        loss_text(t),
        target_word(t.verdict)
    )
}

const EXPLAIN: &str = "A peer is another linkwatch site (`[[peer]]`) that probes the same destinations from elsewhere, e.g. abroad or behind another ISP. When an outage or slow period ends, this site asks each peer what it saw of the period's targets over the same minutes (retrying for up to 24 hours while the peer cannot be reached). A target counts as up there when under 2 % of its probes failed, down from 90 %, partial in between. When a peer saw the destinations down too, the likely cause reads `destination`: the destination was down, not this connection; what this site judged on its own is kept beside it.";

pub(super) fn markdown(out: &mut String, s: Option<&SeenFromElsewhere>) {
    let Some(s) = s else { return };
    let _ = writeln!(out, "\n## Seen from elsewhere\n");
    let _ = writeln!(
        out,
        "Peers asked: {}. {}\n",
        if s.peers.is_empty() {
            "none configured".to_string()
        } else {
            s.peers.join(", ")
        },
        s.summary
    );
    for p in &s.periods {
        let _ = writeln!(out, "- {}, {} (`{}`):", heading(p), cause_text(p), p.id);
        if let Some(none) = &p.none {
            let _ = writeln!(out, "  - {none}");
        }
        for peer in &p.peers {
            let _ = writeln!(out, "  - {}: **{}**", peer.peer, peer.summary);
            for t in &peer.targets {
                let _ = writeln!(out, "    - {}", target_text(t));
            }
        }
    }
    let _ = writeln!(out, "\n{EXPLAIN}");
}

/// Inline code in the explanation (`like this`) as `<code>`.
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

pub(super) fn html(s: Option<&SeenFromElsewhere>) -> String {
    let Some(s) = s else {
        return String::new();
    };
    let mut b = format!(
        "<section id=\"elsewhere\"><h2>Seen from elsewhere</h2><p>Peers asked: {}. {}</p>",
        if s.peers.is_empty() {
            "none configured".to_string()
        } else {
            esc(&s.peers.join(", "))
        },
        esc(&s.summary)
    );
    for p in &s.periods {
        let _ = write!(
            b,
            "<div class=\"corr\" data-period=\"{}\" data-kind=\"{}\"><h3>{}</h3><p class=\"cause\">{} · <code>{}</code></p>",
            esc(&p.id),
            p.kind,
            esc(&spaced(&heading(p))),
            esc(&cause_text(p)),
            esc(&p.id)
        );
        if let Some(none) = &p.none {
            let _ = write!(b, "<p class=\"none\">{}</p>", esc(none));
        }
        for peer in &p.peers {
            let _ = write!(
                b,
                "<p class=\"verdict v-{}\" data-peer=\"{}\"><strong>{}</strong>: {}</p>",
                verdict_class(peer.verdict),
                esc(&peer.peer),
                esc(&peer.peer),
                esc(&peer.summary)
            );
            if !peer.targets.is_empty() {
                b.push_str("<div class=\"scroll\"><table class=\"corr\"><thead><tr><th>target</th><th>probes</th><th>failed</th><th>loss</th><th>there</th></tr></thead><tbody>");
                for t in &peer.targets {
                    let name = match &t.their_target {
                        Some(theirs) if *theirs != t.target => {
                            format!("{} (their {theirs})", t.target)
                        }
                        _ => t.target.clone(),
                    };
                    let _ = write!(
                        b,
                        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"t-{}\">{}</td></tr>",
                        esc(&name),
                        t.probes,
                        t.failures,
                        esc(&loss_text(t)),
                        target_word(t.verdict).replace(' ', "-"),
                        target_word(t.verdict)
                    );
                }
                b.push_str("</tbody></table></div>");
            }
        }
        b.push_str("</div>");
    }
    let _ = write!(
        b,
        "<p class=\"legend\">{}</p></section>",
        code_spans(EXPLAIN)
    );
    b
}

/// The class of a verdict line: `up`, `down`, `mixed`, `nodata`.
fn verdict_class(v: PeerVerdict) -> &'static str {
    match v {
        PeerVerdict::ReachableElsewhere => "up",
        PeerVerdict::DestinationDown => "down",
        PeerVerdict::Mixed => "mixed",
        PeerVerdict::NoData => "nodata",
    }
}

/// CSV (`--table corroboration`): one row per period, peer and target; a
/// period no peer answered for gets one row saying why.
pub(super) fn csv(out: &mut String, s: Option<&SeenFromElsewhere>) {
    out.push_str("kind,period_id,group,start,end,cause,local_cause,peer,peer_verdict,target,their_target,probes,failures,loss_ratio,verdict,summary\n");
    let Some(s) = s else { return };
    for p in &s.periods {
        let head = format!(
            "{},{},{},{},{},{},{}",
            p.kind,
            csv_field(&p.id),
            csv_field(&p.group),
            p.start,
            p.end.as_deref().unwrap_or(""),
            csv_field(&p.cause),
            csv_field(p.local_cause.as_deref().unwrap_or(""))
        );
        if let Some(none) = &p.none {
            let _ = writeln!(out, "{head},,,,,,,,,{}", csv_field(none));
        }
        for peer in &p.peers {
            let targets: Vec<Option<&CorroboratedTarget>> = if peer.targets.is_empty() {
                vec![None]
            } else {
                peer.targets.iter().map(Some).collect()
            };
            for t in targets {
                let _ = writeln!(
                    out,
                    "{head},{},{},{},{},{},{},{},{},{}",
                    csv_field(&peer.peer),
                    peer.verdict.as_str(),
                    csv_field(t.map_or("", |t| t.target.as_str())),
                    csv_field(t.and_then(|t| t.their_target.as_deref()).unwrap_or("")),
                    t.map_or(String::new(), |t| t.probes.to_string()),
                    t.map_or(String::new(), |t| t.failures.to_string()),
                    t.and_then(|t| t.loss_ratio)
                        .map_or(String::new(), |l| format!("{l:.6}")),
                    t.map_or("", |t| t.verdict.as_str()),
                    csv_field(&peer.summary)
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{CsvTable, Format, build_with, render, render_with};
    use crate::journal::peer_fixture::{self, DEST, MIXED, NODATA, REACH, at};

    fn report(peers: &[String]) -> super::super::Report {
        let dir = tempfile::tempdir().unwrap();
        peer_fixture::write(dir.path());
        build_with(
            dir.path(),
            at(0.0),
            at(600.0),
            "UTC",
            None,
            Some(&[]),
            Some(peers),
        )
        .unwrap()
    }

    #[test]
    fn every_format_shows_what_peers_saw_and_the_witnesses() {
        let r = report(&["abroad".into(), "backup".into()]);
        let s = r.seen_from_elsewhere.as_ref().unwrap();
        let ids: Vec<(&str, &str)> = s.periods.iter().map(|p| (p.kind, p.id.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("outage", "o-reach"),
                ("slow", "s-mixed"),
                ("outage", "o-dest"),
                ("outage", "o-none")
            ]
        );
        assert_eq!(
            s.summary,
            "3 of 4 period(s) corroborated by a peer; 1 seen down from elsewhere too (cause: destination)."
        );
        assert_eq!(
            s.periods[3].none.as_deref(),
            Some("no corroboration: no peer answered for this period")
        );
        let dest = r.outages.iter().find(|o| o.id == "o-dest").unwrap();
        assert_eq!(dest.cause, "destination");
        assert_eq!(dest.elsewhere.local_cause.as_deref(), Some("internet"));
        // Downtime by cause follows: the destination's time is not the link's.
        let internet = r.groups.iter().find(|g| g.group == "internet").unwrap();
        let causes: Vec<&str> = internet
            .downtime_by_cause
            .iter()
            .map(|c| c.cause.as_str())
            .collect();
        assert!(
            causes.contains(&"destination") && causes.contains(&"internet"),
            "{causes:?}"
        );

        let w = r.witnesses.as_ref().unwrap();
        assert_eq!(w.heads_witnessed, 2);
        assert_eq!(w.last.as_ref().unwrap().last_seq, 11);
        assert_eq!(w.received[0].site, "home2");

        // JSON: the contract's shape on the records, and the section.
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
        let o = json["outages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "o-reach")
            .unwrap();
        assert_eq!(
            o["corroboration"][0],
            serde_json::json!({"peer": "abroad", "target": "intl-web", "probes": 60, "failures": 0, "loss_ratio": 0.0, "verdict": "up"})
        );
        assert_eq!(o["peer_verdicts"][0]["summary"], REACH);
        assert_eq!(o["cause"], "internet");
        assert!(o.get("local_cause").is_none());
        let slow = &json["slow_periods"][0];
        assert_eq!(slow["peer_verdicts"][0]["verdict"], "mixed");
        assert_eq!(
            json["seen_from_elsewhere"]["periods"][2]["local_cause"],
            "internet"
        );
        assert_eq!(json["witnesses"]["heads_witnessed"], 2);

        // Markdown.
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("\n## Seen from elsewhere\n"), "{md}");
        assert!(md.contains("Peers asked: abroad, backup."), "{md}");
        assert!(md.contains(&format!("  - abroad: **{REACH}**")), "{md}");
        assert!(md.contains(&format!("  - abroad: **{DEST}**")), "{md}");
        assert!(md.contains(&format!("  - backup: **{NODATA}**")), "{md}");
        assert!(md.contains(&format!("  - abroad: **{MIXED}**")), "{md}");
        assert!(
            md.contains("    - intl-web: 40 probes, 40 failed (100.0 %), down"),
            "{md}"
        );
        assert!(
            md.contains("    - intl-dns: 60 probes, 1 failed (1.7 %), up"),
            "{md}"
        );
        assert!(
            md.contains("  - no corroboration: no peer answered for this period"),
            "{md}"
        );
        assert!(
            md.contains("- Outage of internet from 2026-11-01T10:05:00.000+00:00 to 10:05:40.000+00:00, likely cause destination (this site judged: internet) (`o-dest`):\n"),
            "{md}"
        );
        assert!(
            md.contains("| internet | destination (this site: internet) | intl-web |"),
            "{md}"
        );
        assert!(md.contains("- Witnessed by other sites: 2 head(s), by abroad (2); the last: line seq 11, acknowledged by abroad at 2026-11-01T10:07:40.000+00:00 (its receipt: its line seq 111)"), "{md}");
        assert!(md.contains("- Heads of other sites held here: home2 (1 head(s) of site home2, the last: seq 10, received 2026-11-01T10:07:50.000+00:00)"), "{md}");
        // The section sits after the slow periods, the witness lines in the evidence.
        assert!(md.find("## Slow periods").unwrap() < md.find("## Seen from elsewhere").unwrap());
        assert!(
            md.find("Witnessed by other sites").unwrap() < md.find("## Summary by group").unwrap()
        );

        // HTML.
        let html = render(&r, Format::Html).unwrap();
        assert!(
            html.contains("<section id=\"elsewhere\"><h2>Seen from elsewhere</h2>"),
            "{html}"
        );
        assert!(html.contains(&format!(
            "<strong>abroad</strong>: {}",
            crate::text::esc(DEST)
        )));
        assert!(html.contains("<td>intl-web</td><td class=\"num\">40</td><td class=\"num\">40</td><td class=\"num\">100.0 %</td><td class=\"t-down\">down</td>"), "{html}");
        assert!(
            html.contains("<li class=\"witness\">Witnessed by other sites: 2 head(s)"),
            "{html}"
        );
        assert!(
            html.contains("<td data-label=\"likely cause\">destination (this site: internet)</td>")
        );

        // CSV: one row per period, peer and target; one for the uncorroborated.
        let csv = render_with(&r, Format::Csv, CsvTable::Corroboration).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 2 + 2 + 2 + 1, "{csv}");
        assert!(lines[0].starts_with(
            "kind,period_id,group,start,end,cause,local_cause,peer,peer_verdict,target"
        ));
        assert!(
            csv.contains(
                ",destination,internet,abroad,destination_down,intl-web,,40,40,1.000000,down,"
            ),
            "{csv}"
        );
        assert!(
            csv.contains(",backup,no_data,intl-web,,0,0,,no_data,"),
            "{csv}"
        );
        assert!(csv.contains("o-none,lan,"), "{csv}");
        assert!(
            csv.trim_end()
                .ends_with(",,,,,,,,,no corroboration: no peer answered for this period"),
            "{csv}"
        );
    }

    #[test]
    fn without_peers_or_their_events_nothing_is_said_and_with_peers_but_no_events_it_is_said_plainly()
     {
        let dir = tempfile::tempdir().unwrap();
        let [s, e] = peer_fixture::outage("o1", "internet", (10.0, 20.0), &["w"]);
        peer_fixture::append(
            dir.path(),
            vec![(0.0, peer_fixture::start("home")), (10.0, s), (20.0, e)],
        );
        let plain = build_with(
            dir.path(),
            at(0.0),
            at(60.0),
            "UTC",
            None,
            Some(&[]),
            Some(&[]),
        )
        .unwrap();
        assert!(plain.seen_from_elsewhere.is_none() && plain.witnesses.is_none());
        let md = render(&plain, Format::Markdown).unwrap();
        assert!(
            !md.contains("elsewhere") && !md.contains("Witnessed"),
            "{md}"
        );
        let json = render(&plain, Format::Json).unwrap();
        for k in [
            "corroboration",
            "peer_verdicts",
            "seen_from_elsewhere",
            "witnesses",
        ] {
            assert!(!json.contains(k), "{k}: {json}");
        }

        let asked = build_with(
            dir.path(),
            at(0.0),
            at(60.0),
            "UTC",
            None,
            Some(&[]),
            Some(&["abroad".into()]),
        )
        .unwrap();
        let md = render(&asked, Format::Markdown).unwrap();
        assert!(
            md.contains("Peers asked: abroad. 0 of 1 period(s) corroborated by a peer.\n"),
            "{md}"
        );
        assert!(
            md.contains("  - no corroboration: no peer answered for this period\n"),
            "{md}"
        );
        assert!(md.contains("- Witnessed by other sites: none; no peer has acknowledged a head of this journal\n"), "{md}");

        // Peer events in the journal but no peer configured any more.
        let dir = tempfile::tempdir().unwrap();
        peer_fixture::write(dir.path());
        let r = build_with(
            dir.path(),
            at(0.0),
            at(600.0),
            "UTC",
            None,
            Some(&[]),
            Some(&[]),
        )
        .unwrap();
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("Peers asked: none configured. 3 of 4 period(s) corroborated by a peer; 1 seen down from elsewhere too (cause: destination).\n"), "{md}");
        assert!(md.contains("  - no peer configured\n"), "{md}");
    }
}
