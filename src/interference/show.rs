//! Signs of interference as people read them: the words `outages`, the
//! report and the status page share for a period whose cause is
//! `interference`, the grouping of the journal's `interference` lines by
//! (target, check), and which checks a configuration turns on.
//!
//! Which checks are on is read from the configuration file's text (the keys
//! of README "Signs of interference"), so a report can say it for any
//! configuration file that parses as TOML, also one from an older or newer
//! release.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::{CAUSE, Check};
use crate::config::{Config, TargetSpec};
use crate::journal::record::{InterferenceSeen, InterferenceSummary};

/// The cause as a table cell says it: `interference (sni_blocked:
/// blocked.example)` when the period carries a summary, else the cause.
pub fn cause_cell(cause: &str, summary: Option<&InterferenceSummary>) -> String {
    match summary {
        Some(s) if cause == CAUSE => format!("{cause} ({})", checks_and_names(s)),
        _ => cause.to_string(),
    }
}

/// `dns_inconsistent, sni_blocked: blocked.example, example.org`.
pub fn checks_and_names(s: &InterferenceSummary) -> String {
    let checks = if s.checks.is_empty() {
        "no check named".to_string()
    } else {
        s.checks.join(", ")
    };
    if s.names.is_empty() {
        checks
    } else {
        format!("{checks}: {}", s.names.join(", "))
    }
}

/// The summary in one sentence: checks, targets, names and the majority
/// that made the cause.
pub fn summary_sentence(s: &InterferenceSummary) -> String {
    let mut out = format!(
        "checks {}; targets {}; names {}",
        list_or_none(&s.checks),
        list_or_none(&s.targets),
        list_or_none(&s.names)
    );
    if s.of_failures > 0 {
        out.push_str(&format!(
            "; {} of {} failed probes carried these reasons",
            s.failures, s.of_failures
        ));
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none named".to_string()
    } else {
        v.join(", ")
    }
}

/// What `check` (a journal label) saw, in words; the label itself for a
/// check this release does not know.
pub fn what_it_means(check: &str) -> &'static str {
    Check::parse(check).map_or("a check this release does not know", Check::describe)
}

/// One (target, check) pair of `interference` lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sign {
    pub target: String,
    pub group: String,
    pub check: String,
    /// What the check saw, in words.
    pub meaning: &'static str,
    /// The names involved, in order of first appearance.
    pub names: Vec<String>,
    /// The probe of the first line.
    #[serde(with = "crate::journal::ts_ms")]
    pub first_seen: Timestamp,
    /// The probe of the last line (lines are written at most once an hour
    /// per pair, so it may have gone on for up to an hour after).
    #[serde(with = "crate::journal::ts_ms")]
    pub last_seen: Timestamp,
    /// Probes that showed it (the lines' `count`s added up).
    pub probes: u64,
    /// Journal lines.
    pub lines: usize,
    /// Each different (detail, raw) the lines carried, oldest first, at
    /// most [`EXAMPLES`].
    pub evidence: Vec<SignEvidence>,
    /// Further different ones not listed.
    pub more_evidence: usize,
    /// The last line's.
    pub latest: SignEvidence,
}

/// How one line says it was checked, and the raw answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignEvidence {
    #[serde(with = "crate::journal::ts_ms")]
    pub at: Timestamp,
    pub name: String,
    pub detail: String,
    pub raw: Vec<String>,
}

/// Different pieces of evidence kept per (target, check).
pub const EXAMPLES: usize = 5;

/// `lines` grouped by (target, check), in order of first appearance.
pub fn group<'a>(lines: impl IntoIterator<Item = &'a InterferenceSeen>) -> Vec<Sign> {
    let mut out: Vec<Sign> = Vec::new();
    for l in lines {
        let i = match out
            .iter()
            .position(|s| s.target == l.target && s.check == l.check)
        {
            Some(i) => i,
            None => {
                out.push(Sign {
                    target: l.target.clone(),
                    group: l.group.clone(),
                    check: l.check.clone(),
                    meaning: what_it_means(&l.check),
                    names: Vec::new(),
                    first_seen: l.at,
                    last_seen: l.at,
                    probes: 0,
                    lines: 0,
                    evidence: Vec::new(),
                    more_evidence: 0,
                    latest: SignEvidence {
                        at: l.at,
                        name: String::new(),
                        detail: String::new(),
                        raw: Vec::new(),
                    },
                });
                out.len() - 1
            }
        };
        let s = &mut out[i];
        let this = SignEvidence {
            at: l.at,
            name: l.name.clone(),
            detail: l.detail.clone(),
            raw: l.raw.clone(),
        };
        if l.at >= s.latest.at {
            s.latest = this.clone();
        }
        s.first_seen = s.first_seen.min(l.at);
        s.last_seen = s.last_seen.max(l.at);
        s.probes = s.probes.saturating_add(l.count);
        s.lines += 1;
        if !l.name.is_empty() && !s.names.contains(&l.name) {
            s.names.push(l.name.clone());
        }
        let known = s
            .evidence
            .iter()
            .any(|e| e.detail == l.detail && e.raw == l.raw && e.name == l.name);
        if !known {
            if s.evidence.len() < EXAMPLES {
                s.evidence.push(this);
            } else {
                s.more_evidence += 1;
            }
        }
    }
    out
}

/// One check a configuration turns on for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfiguredCheck {
    pub check: String,
    pub target: String,
    /// The keys that turn it on, as written (`compare_with = "doh"`).
    pub how: String,
}

/// The checks configuration `c` turns on, by check then target
/// (configuration order), read from the validated model so the report
/// never disagrees with what the probes do.
pub fn configured_checks(c: &Config) -> Vec<ConfiguredCheck> {
    let mut out: BTreeMap<Check, Vec<(String, String)>> = BTreeMap::new();
    let global_blockpage = c.interference.blockpage.len();
    for t in &c.targets {
        let mut add = |check: Check, how: String| {
            out.entry(check).or_default().push((t.name.clone(), how));
        };
        match &t.spec {
            TargetSpec::Dns(d) => {
                if let Some(cmp) = &d.compare {
                    let how = match &cmp.tls {
                        Some(tls) => format!(
                            "compare_with = \"{}\", TLS tie-breaker on port {}",
                            cmp.with, tls.port
                        ),
                        None => format!("compare_with = \"{}\", tie_break = \"none\"", cmp.with),
                    };
                    add(Check::DnsInconsistent, how.clone());
                    add(Check::DnsBogon, how);
                }
            }
            TargetSpec::Http(h) => {
                if h.url.scheme() == "https" {
                    let mut how = Vec::new();
                    if !h.pin_spki.is_empty() {
                        let n = h.pin_spki.len();
                        how.push(format!("pin_spki ({n} key{})", plural(n)));
                    }
                    if let Some(i) = &h.expect_issuer {
                        how.push(format!("expect_issuer = \"{i}\""));
                    }
                    how.push("issuers learned from validated chains".into());
                    add(Check::TlsIntercepted, how.join(", "));
                    if let Some(control) = &h.sni_control {
                        add(Check::SniBlocked, format!("sni_control = \"{control}\""));
                    }
                }
                let own = h.blockpage.len();
                let mut how = Vec::new();
                if own > 0 {
                    how.push(format!("blockpage ({own} rule{})", plural(own)));
                }
                if global_blockpage > 0 {
                    how.push(format!(
                        "[interference] blockpage ({global_blockpage} rule{})",
                        plural(global_blockpage)
                    ));
                }
                if !how.is_empty() {
                    add(Check::Blockpage, how.join(", "));
                }
            }
            TargetSpec::Throughput(tp) => {
                if let Some(control) = &tp.control_url {
                    let below = tp.throttled_below * 100.0;
                    add(
                        Check::ThrottledName,
                        format!("control_url = \"{control}\", throttled_below = \"{below}%\""),
                    );
                }
            }
            TargetSpec::Icmp(_) | TargetSpec::Tcp(_) => {}
        }
    }
    out.into_iter()
        .flat_map(|(check, v)| {
            v.into_iter().map(move |(target, how)| ConfiguredCheck {
                check: check.as_str().into(),
                target,
                how,
            })
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        target: &str,
        check: &str,
        at: i64,
        name: &str,
        detail: &str,
        count: u64,
    ) -> InterferenceSeen {
        InterferenceSeen {
            target: target.into(),
            group: "internet".into(),
            check: check.into(),
            at: Timestamp::from_second(1_800_000_000 + at).unwrap(),
            name: name.into(),
            detail: detail.into(),
            raw: vec![format!("raw {detail}")],
            count,
        }
    }

    #[test]
    fn lines_group_by_target_and_check_with_their_evidence() {
        let lines = [
            line("web", "sni_blocked", 0, "blocked.example", "reset", 1),
            line("dns", "dns_bogon", 10, "example.org", "10.0.0.1", 1),
            line("web", "sni_blocked", 3600, "blocked.example", "reset", 120),
            line("web", "sni_blocked", 7200, "blocked.example", "timeout", 30),
        ];
        let g = group(&lines);
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].target.as_str(), g[0].check.as_str()),
            ("web", "sni_blocked")
        );
        assert_eq!(g[0].probes, 151);
        assert_eq!(g[0].lines, 3);
        assert_eq!(
            g[0].last_seen.as_second() - g[0].first_seen.as_second(),
            7200
        );
        assert_eq!(g[0].evidence.len(), 2, "the same evidence once");
        assert_eq!(g[0].latest.detail, "timeout");
        assert_eq!(g[0].names, ["blocked.example"]);
        assert!(g[0].meaning.contains("another name"));
        assert_eq!(g[1].check, "dns_bogon");
    }

    #[test]
    fn the_configuration_says_which_checks_are_on() {
        let pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let text = format!(
            r#"
[interference]
blockpage = [{{ status = 451, body_regex = "Blocked" }}]
[[group]]
name = "g"
[[target]]
name = "isp-dns"
group = "g"
kind = "dns"
server = "127.0.0.1"
query = "example.org"
compare_with = "doh"
[[target]]
name = "doh"
group = "g"
kind = "dns"
server = "127.0.0.2"
query = "example.org"
[[target]]
name = "web"
group = "g"
kind = "http"
url = "https://blocked.example/"
sni_control = "other.example"
pin_spki = ["{pin}"]
[[target]]
name = "plain"
group = "g"
kind = "http"
url = "http://x.example/"
[[target]]
name = "dl"
group = "g"
kind = "throughput"
url = "https://blocked.example/10M"
control_url = "https://cdn.example/10M"
"#
        );
        let config = crate::config::parse(&text, "t.toml").unwrap();
        let c = configured_checks(&config);
        let pairs: Vec<(&str, &str)> = c
            .iter()
            .map(|c| (c.check.as_str(), c.target.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("dns_inconsistent", "isp-dns"),
                ("dns_bogon", "isp-dns"),
                ("tls_intercepted", "web"),
                ("sni_blocked", "web"),
                ("blockpage", "web"),
                ("blockpage", "plain"),
                ("throttled_name", "dl"),
            ]
        );
        assert_eq!(
            c[0].how,
            "compare_with = \"doh\", TLS tie-breaker on port 443"
        );
        assert!(
            c[2].how.starts_with("pin_spki (1 key), issuers learned"),
            "{}",
            c[2].how
        );
        assert_eq!(c[5].how, "[interference] blockpage (1 rule)");
        assert!(
            c[6].how.ends_with("throttled_below = \"50%\""),
            "{}",
            c[6].how
        );
        let icmp = crate::config::parse(
            "[[group]]\nname = \"g\"\n[[target]]\nname = \"a\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(configured_checks(&icmp), vec![]);
    }

    #[test]
    fn a_cause_cell_names_checks_and_names_only_for_interference() {
        let s = InterferenceSummary {
            checks: vec!["sni_blocked".into()],
            targets: vec!["web".into()],
            names: vec!["blocked.example".into()],
            failures: 18,
            of_failures: 20,
        };
        assert_eq!(
            cause_cell("interference", Some(&s)),
            "interference (sni_blocked: blocked.example)"
        );
        assert_eq!(cause_cell("isp", None), "isp");
        assert_eq!(cause_cell("interference", None), "interference");
        assert_eq!(
            summary_sentence(&s),
            "checks sni_blocked; targets web; names blocked.example; 18 of 20 failed probes carried these reasons"
        );
    }
}
