//! Signs of interference as the outage side sees them: the tally behind the
//! cause `interference` (see [`crate::interference`]) and the rate limit of
//! the journal's `interference` lines.
//!
//! Decisions:
//! - A [`Tally`] counts failed probes, and those of them that carried an
//!   interference reason ([`Check::from_reason`]), with the checks, targets
//!   and names seen. A period's cause is `interference` when more than half
//!   of the counted failures carry one ([`Tally::majority`]). Timeouts and
//!   unreachable failures count in the denominator only, so a link that goes
//!   down outvotes any sign seen before it.
//! - Names and targets kept per tally are capped ([`MAX_NAMES`]): a summary
//!   is for people, and a tally must stay small whatever the probes carry.
//! - Journal lines ([`LineLimiter`]): the first probe showing a (target,
//!   check), then at most one line per [`LINE_EVERY`] per pair while it goes
//!   on, with the number of probes since the previous line.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::interference::{Check, Evidence};
use crate::journal::record::InterferenceSummary;
use crate::probe::{FromReason, Observation, Outcome};

/// At most this many names (and as many targets) per tally.
pub const MAX_NAMES: usize = 16;

/// At most one `interference` line per (target, check) this often.
pub const LINE_EVERY: Duration = Duration::from_secs(3600);

/// The sign one probe carried: the check its failure reason stands for (or
/// its evidence's check, e.g. `throttled_name` on a successful test) and the
/// name involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sign<'a> {
    pub check: Check,
    pub name: &'a str,
}

impl<'a> Sign<'a> {
    /// The sign of a failed probe: its failure reason is an interference
    /// reason. The name is the evidence's, when the probe attached one.
    pub fn of_failure(o: &'a Observation) -> Option<Self> {
        let Outcome::Error(e) = &o.outcome else {
            return None;
        };
        let check = Check::from_reason(e.reason)?;
        let name = o.info.evidence.as_ref().map_or("", |ev| ev.name.as_str());
        Some(Self { check, name })
    }

    /// The sign of any probe carrying evidence (failed or not).
    pub fn of_evidence(e: &'a Evidence) -> Self {
        Self {
            check: e.check,
            name: e.name.as_str(),
        }
    }
}

/// Failed probes, those with an interference reason, and what they showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Failed probes with an interference reason …
    pub failures: u64,
    /// … out of all failed probes counted.
    pub of_failures: u64,
    /// Bit `i`: [`Check::ALL`]`[i]` was seen.
    checks: u8,
    targets: BTreeSet<String>,
    names: BTreeSet<String>,
}

fn bit(c: Check) -> u8 {
    let i = Check::ALL.iter().position(|x| *x == c).unwrap_or(0);
    1 << i
}

fn insert_capped(set: &mut BTreeSet<String>, s: &str) {
    if !s.is_empty() && set.len() < MAX_NAMES && !set.contains(s) {
        set.insert(s.to_string());
    }
}

impl Tally {
    /// Counts one failed probe of `target`, with its sign if it had one.
    pub fn fail(&mut self, target: &str, sign: Option<Sign<'_>>) {
        self.of_failures += 1;
        if let Some(s) = sign {
            self.failures += 1;
            self.saw(target, s);
        }
    }

    /// Notes a sign without counting a failure (a throttled test succeeded).
    pub fn saw(&mut self, target: &str, s: Sign<'_>) {
        self.checks |= bit(s.check);
        insert_capped(&mut self.targets, target);
        insert_capped(&mut self.names, s.name);
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        self.failures += other.failures;
        self.of_failures += other.of_failures;
        self.checks |= other.checks;
        for t in &other.targets {
            insert_capped(&mut self.targets, t);
        }
        for n in &other.names {
            insert_capped(&mut self.names, n);
        }
    }

    /// More than half of the failures counted carry an interference reason.
    pub fn majority(&self) -> bool {
        self.of_failures > 0 && self.failures * 2 > self.of_failures
    }

    /// Whether any sign was seen.
    pub fn any(&self) -> bool {
        self.checks != 0
    }

    /// The journal's summary.
    pub fn summary(&self) -> InterferenceSummary {
        InterferenceSummary {
            checks: Check::ALL
                .iter()
                .filter(|c| self.checks & bit(**c) != 0)
                .map(|c| c.as_str().to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            targets: self.targets.iter().cloned().collect(),
            names: self.names.iter().cloned().collect(),
            failures: self.failures,
            of_failures: self.of_failures,
        }
    }

    /// A tally carried over from a journaled summary (an adopted period).
    pub fn from_summary(s: &InterferenceSummary) -> Self {
        let mut t = Tally {
            failures: s.failures,
            of_failures: s.of_failures,
            ..Tally::default()
        };
        for c in s.checks.iter().filter_map(|c| Check::parse(c)) {
            t.checks |= bit(c);
        }
        for x in &s.targets {
            insert_capped(&mut t.targets, x);
        }
        for x in &s.names {
            insert_capped(&mut t.names, x);
        }
        t
    }
}

/// What to write for one probe's evidence: `Some(count)` when a line is
/// due (the probes showing the pair since the previous line, this one
/// included).
#[derive(Debug, Default)]
pub struct LineLimiter {
    /// Per (target name, check): when the last line was written (mono) and
    /// the probes since.
    pairs: HashMap<(String, Check), (Duration, u64)>,
}

impl LineLimiter {
    /// A probe of `target` showed `check` at mono `now`.
    pub fn seen(&mut self, target: &str, check: Check, now: Duration) -> Option<u64> {
        match self.pairs.get_mut(&(target.to_string(), check)) {
            None => {
                self.pairs.insert((target.to_string(), check), (now, 0));
                Some(1)
            }
            Some((last, n)) => {
                *n += 1;
                if now.saturating_sub(*last) >= LINE_EVERY {
                    let count = *n;
                    *last = now;
                    *n = 0;
                    Some(count)
                } else {
                    None
                }
            }
        }
    }

    /// Forgets targets that are gone (after a reload).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.pairs.retain(|(t, _), _| keep(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_needs_more_than_half_and_timeouts_outvote() {
        let mut t = Tally::default();
        let s = Sign {
            check: Check::SniBlocked,
            name: "blocked.example",
        };
        t.fail("a", Some(s));
        t.fail("a", None);
        assert!(!t.majority(), "half is not more than half");
        t.fail("b", Some(s));
        assert!(t.majority());
        let sum = t.summary();
        assert_eq!(sum.checks, vec!["sni_blocked"]);
        assert_eq!(sum.targets, vec!["a", "b"]);
        assert_eq!(sum.names, vec!["blocked.example"]);
        assert_eq!((sum.failures, sum.of_failures), (2, 3));
        assert_eq!(Tally::from_summary(&sum).summary(), sum);
        for _ in 0..3 {
            t.fail("a", None);
        }
        assert!(!t.majority(), "a link going down outvotes the signs");
        assert!(!Tally::default().majority());
    }

    #[test]
    fn names_are_capped() {
        let mut t = Tally::default();
        for i in 0..100 {
            let name = format!("n{i}.example");
            t.fail(
                &format!("t{i}"),
                Some(Sign {
                    check: Check::DnsBogon,
                    name: &name,
                }),
            );
        }
        let s = t.summary();
        assert_eq!(s.names.len(), MAX_NAMES);
        assert_eq!(s.targets.len(), MAX_NAMES);
        assert_eq!(s.failures, 100);
    }

    #[test]
    fn lines_first_then_hourly_with_counts() {
        let mut l = LineLimiter::default();
        let s = Duration::from_secs;
        assert_eq!(l.seen("a", Check::Blockpage, s(0)), Some(1));
        assert_eq!(l.seen("a", Check::Blockpage, s(60)), None);
        assert_eq!(l.seen("a", Check::SniBlocked, s(60)), Some(1), "per check");
        assert_eq!(l.seen("b", Check::Blockpage, s(61)), Some(1), "per target");
        assert_eq!(l.seen("a", Check::Blockpage, s(3599)), None);
        assert_eq!(l.seen("a", Check::Blockpage, s(3600)), Some(3));
        assert_eq!(l.seen("a", Check::Blockpage, s(3700)), None);
        assert_eq!(l.seen("a", Check::Blockpage, s(7200)), Some(2));
        l.retain(|t| t != "a");
        assert_eq!(l.seen("a", Check::Blockpage, s(7201)), Some(1));
    }
}
