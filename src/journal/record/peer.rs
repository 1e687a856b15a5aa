//! `witness`, `witnessed` and `corroboration`: evidence exchanged with other
//! linkwatch sites (`[[peer]]`, issue 20).
//!
//! - `witness` (receiving side): a peer's journal head, received and kept
//!   here, so that a chain the peer rewrites from scratch no longer matches
//!   what we hold.
//! - `witnessed` (sending side): our head acknowledged by a peer, with the
//!   peer's receipt (the seq and hash of its own `witness` line).
//! - `corroboration`: what a peer saw of an outage's or slow period's
//!   targets over the same minutes, and the verdict drawn from it.
//!
//! A peer's answer never changes a past line: these are appended like any
//! other event.
//!
//! A journal head is nested as `head: {seq, hash}`: a record's own fields
//! sit beside the line envelope's (`seq`, `prev`, `ts`), so a field named
//! `seq` would be written twice and the line refused when read.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::chain::ChainHead;
use crate::journal::ts_ms;

/// `witness`: a peer's journal head received (on the receiving side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessReceived {
    /// The `[[peer]]` whose token the call carried.
    pub peer: String,
    /// The site name the peer gave for itself.
    pub site: String,
    /// Its head: the last line's seq and hash.
    pub head: ChainHead,
    /// When the peer says it wrote that line.
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
}

/// The receiver's answer to a witness: its own `witness` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The receiver's site name.
    pub site: String,
    /// The seq and hash of the receiver's `witness` line.
    pub seq: u64,
    pub hash: String,
}

/// `witnessed`: our head acknowledged by a peer (on the sending side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witnessed {
    pub peer: String,
    /// Our head that was sent.
    pub head: ChainHead,
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    pub receipt: Receipt,
}

/// Which kind of period a corroboration is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Outage,
    Slow,
}

/// What a peer saw of one target over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetVerdict {
    /// Answered (failures under 2 % of probes).
    Up,
    /// Failed (90 % of probes or more).
    Down,
    /// In between.
    Partial,
    /// The peer has no probes of it in that time.
    NoData,
}

/// Below this share of failed probes a target counts as up.
pub const UP_BELOW: f64 = 0.02;
/// From this share of failed probes a target counts as down.
pub const DOWN_FROM: f64 = 0.9;

impl TargetVerdict {
    /// The verdict on `failures` of `probes`: none -> no data; under 2 %
    /// failed -> up; 90 % or more -> down; else partial.
    pub fn from_counts(probes: u64, failures: u64) -> Self {
        if probes == 0 {
            return TargetVerdict::NoData;
        }
        let ratio = failures.min(probes) as f64 / probes as f64;
        if ratio < UP_BELOW {
            TargetVerdict::Up
        } else if ratio >= DOWN_FROM {
            TargetVerdict::Down
        } else {
            TargetVerdict::Partial
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetVerdict::Up => "up",
            TargetVerdict::Down => "down",
            TargetVerdict::Partial => "partial",
            TargetVerdict::NoData => "no_data",
        }
    }
}

/// The overall verdict of one peer on a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerVerdict {
    /// Every target with data answered from the peer: the fault was ours.
    ReachableElsewhere,
    /// Every target with data failed from the peer too: the destination was down.
    DestinationDown,
    /// Some of each (or partial).
    Mixed,
    /// The peer has no observations of these targets for that time.
    NoData,
}

impl PeerVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerVerdict::ReachableElsewhere => "reachable_elsewhere",
            PeerVerdict::DestinationDown => "destination_down",
            PeerVerdict::Mixed => "mixed",
            PeerVerdict::NoData => "no_data",
        }
    }

    /// The verdict in words, naming the peer.
    pub fn sentence(&self, peer: &str) -> String {
        match self {
            PeerVerdict::ReachableElsewhere => format!(
                "the destinations answered from {peer} throughout: the fault lies between this site and the border"
            ),
            PeerVerdict::DestinationDown => format!(
                "the destinations also failed from {peer}: the destination was down, not your connection"
            ),
            PeerVerdict::Mixed => format!(
                "some destinations failed from {peer} too: the fault may lie partly at the destinations and partly on this site's path"
            ),
            PeerVerdict::NoData => {
                format!("{peer} has no observations of these destinations for that time")
            }
        }
    }
}

/// One peer's overall verdict from its per-target verdicts: targets without
/// data are left out when others have data; then all up -> reachable
/// elsewhere, all down -> destination down, anything else -> mixed; no data
/// at all (or no targets) -> no data.
pub fn judge(targets: &[CorroboratedTarget]) -> PeerVerdict {
    let mut with_data = targets
        .iter()
        .map(|t| t.verdict)
        .filter(|v| *v != TargetVerdict::NoData)
        .peekable();
    let Some(first) = with_data.peek().copied() else {
        return PeerVerdict::NoData;
    };
    let all_same = with_data.all(|v| v == first);
    match (all_same, first) {
        (true, TargetVerdict::Up) => PeerVerdict::ReachableElsewhere,
        (true, TargetVerdict::Down) => PeerVerdict::DestinationDown,
        _ => PeerVerdict::Mixed,
    }
}

/// What a peer saw of one of our targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorroboratedTarget {
    pub peer: String,
    /// Our target name.
    pub target: String,
    /// The peer's name for it, when `compare` maps it to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub their_target: Option<String>,
    pub probes: u64,
    pub failures: u64,
    /// failures / probes; `None` without probes.
    pub loss_ratio: Option<f64>,
    pub verdict: TargetVerdict,
}

/// `corroboration`: what a peer saw of a period's targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Corroboration {
    /// The outage id or slow-period id.
    pub period: String,
    pub kind: PeriodKind,
    pub peer: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    #[serde(with = "ts_ms")]
    pub end: Timestamp,
    pub targets: Vec<CorroboratedTarget>,
    /// Overall, from [`judge`].
    pub verdict: PeerVerdict,
    /// [`PeerVerdict::sentence`].
    pub summary: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(verdict: TargetVerdict) -> CorroboratedTarget {
        CorroboratedTarget {
            peer: "abroad".into(),
            target: "x".into(),
            their_target: None,
            probes: 0,
            failures: 0,
            loss_ratio: None,
            verdict,
        }
    }

    #[test]
    fn from_counts_draws_the_lines_at_2_and_90_percent() {
        use TargetVerdict::*;
        assert_eq!(TargetVerdict::from_counts(0, 0), NoData);
        assert_eq!(TargetVerdict::from_counts(100, 0), Up);
        assert_eq!(TargetVerdict::from_counts(100, 1), Up);
        assert_eq!(TargetVerdict::from_counts(100, 2), Partial);
        assert_eq!(TargetVerdict::from_counts(100, 89), Partial);
        assert_eq!(TargetVerdict::from_counts(100, 90), Down);
        assert_eq!(TargetVerdict::from_counts(100, 100), Down);
        assert_eq!(TargetVerdict::from_counts(1, 1), Down);
        // Impossible counts are not a panic; they read as all failed.
        assert_eq!(TargetVerdict::from_counts(3, 7), Down);
    }

    #[test]
    fn judge_ignores_no_data_when_others_have_data() {
        use TargetVerdict::*;
        assert_eq!(judge(&[]), PeerVerdict::NoData);
        assert_eq!(judge(&[t(NoData), t(NoData)]), PeerVerdict::NoData);
        assert_eq!(judge(&[t(Up), t(Up)]), PeerVerdict::ReachableElsewhere);
        assert_eq!(judge(&[t(Up), t(NoData)]), PeerVerdict::ReachableElsewhere);
        assert_eq!(judge(&[t(NoData), t(Down)]), PeerVerdict::DestinationDown);
        assert_eq!(judge(&[t(Down), t(Down)]), PeerVerdict::DestinationDown);
        assert_eq!(judge(&[t(Up), t(Down)]), PeerVerdict::Mixed);
        assert_eq!(judge(&[t(Partial)]), PeerVerdict::Mixed);
        assert_eq!(judge(&[t(Up), t(Partial), t(NoData)]), PeerVerdict::Mixed);
    }

    #[test]
    fn sentences_name_the_peer() {
        assert_eq!(
            PeerVerdict::ReachableElsewhere.sentence("abroad"),
            "the destinations answered from abroad throughout: the fault lies between this site and the border"
        );
        assert_eq!(
            PeerVerdict::DestinationDown.sentence("abroad"),
            "the destinations also failed from abroad: the destination was down, not your connection"
        );
        assert!(
            PeerVerdict::Mixed
                .sentence("vps")
                .starts_with("some destinations failed from vps too: ")
        );
        assert_eq!(
            PeerVerdict::NoData.sentence("vps"),
            "vps has no observations of these destinations for that time"
        );
    }

    #[test]
    fn serde_names_are_the_contract() {
        let c = Corroboration {
            period: "o-1".into(),
            kind: PeriodKind::Outage,
            peer: "abroad".into(),
            start: "2026-11-01T10:02:00Z".parse().unwrap(),
            end: "2026-11-01T10:41:00Z".parse().unwrap(),
            targets: vec![CorroboratedTarget {
                probes: 39,
                failures: 0,
                loss_ratio: Some(0.0),
                ..t(TargetVerdict::NoData)
            }],
            verdict: PeerVerdict::ReachableElsewhere,
            summary: PeerVerdict::ReachableElsewhere.sentence("abroad"),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["kind"], "outage");
        assert_eq!(v["verdict"], "reachable_elsewhere");
        assert_eq!(v["targets"][0]["verdict"], "no_data");
        assert!(v["targets"][0].get("their_target").is_none());
        assert_eq!(v["start"], "2026-11-01T10:02:00.000Z");
        let back: Corroboration = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
