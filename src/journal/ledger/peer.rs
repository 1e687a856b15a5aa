//! What other linkwatch sites (`[[peer]]`) said, replayed from the journal:
//! `corroboration` events attached to the outage or slow period they
//! corroborate ([`Elsewhere`]), and the witness bookkeeping of `witnessed`
//! (our head acknowledged by a peer) and `witness` (a peer's head received)
//! events ([`Witnesses`]).
//!
//! Nothing here changes a journal line: a peer's verdict only changes how a
//! record reads. When any peer saw the destinations down too
//! ([`PeerVerdict::DestinationDown`]), an ended record's `cause` reads
//! `destination` and what this site judged is kept in `local_cause`.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::journal::record::{
    CorroboratedTarget, Corroboration, PeerVerdict, PeriodKind, TargetVerdict, WitnessReceived,
    Witnessed,
};
use crate::journal::ts_ms;

/// The cause a record reads once a peer saw its destinations down too.
pub const DESTINATION: &str = "destination";

/// A peer's verdict in a word or two, for tables: `answered` (the
/// destinations answered from there), `also down`, `mixed`, `no data`.
pub fn verdict_word(v: PeerVerdict) -> &'static str {
    match v {
        PeerVerdict::ReachableElsewhere => "answered",
        PeerVerdict::DestinationDown => "also down",
        PeerVerdict::Mixed => "mixed",
        PeerVerdict::NoData => "no data",
    }
}

/// What a peer saw of one target, in a word: `up`, `down`, `partial`, `no data`.
pub fn target_word(v: TargetVerdict) -> &'static str {
    match v {
        TargetVerdict::Up => "up",
        TargetVerdict::Down => "down",
        TargetVerdict::Partial => "partial",
        TargetVerdict::NoData => "no data",
    }
}

/// The loss a peer saw, for people: `1.7 %`, `-` without probes.
pub fn loss_text(t: &CorroboratedTarget) -> String {
    match t.loss_ratio {
        Some(l) => format!("{:.1} %", l * 100.0),
        None => "-".to_string(),
    }
}

/// One peer's overall verdict on a period, in a word and in a sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerJudgement {
    pub peer: String,
    pub verdict: PeerVerdict,
    /// The verdict in words, as the `corroboration` event recorded it.
    pub summary: String,
}

/// A period as seen from elsewhere; flattened into the outage and
/// slow-period records. Empty (and absent from JSON) without corroboration.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Elsewhere {
    /// What each peer saw of the period's targets:
    /// `[{peer, target, probes, failures, loss_ratio, verdict}]`, peers in the
    /// order they first answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corroboration: Vec<CorroboratedTarget>,
    /// Each peer's overall verdict and its sentence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_verdicts: Vec<PeerJudgement>,
    /// What this site judged the cause to be, kept when a peer's verdict
    /// made `cause` read `destination`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_cause: Option<String>,
}

impl Elsewhere {
    /// No peer has corroborated the period.
    pub fn is_empty(&self) -> bool {
        self.peer_verdicts.is_empty()
    }

    /// A peer saw the destinations down too.
    pub fn destination_down(&self) -> bool {
        self.peer_verdicts
            .iter()
            .any(|p| p.verdict == PeerVerdict::DestinationDown)
    }

    /// The figures of `peer`'s targets.
    pub fn targets_of<'a>(&'a self, peer: &'a str) -> impl Iterator<Item = &'a CorroboratedTarget> {
        self.corroboration.iter().filter(move |t| t.peer == peer)
    }

    /// Replaces what is attached with `events` (one per peer, see
    /// [`Corroborations`]) and sets `cause` accordingly: `destination` when
    /// the period `ended` and a peer saw the destinations down, this site's
    /// own judgement otherwise. Applying it again changes nothing.
    pub fn attach(&mut self, cause: &mut String, events: &[Corroboration], ended: bool) {
        self.corroboration = events
            .iter()
            .flat_map(|e| {
                e.targets.iter().map(|t| {
                    let mut t = t.clone();
                    if t.peer.is_empty() {
                        t.peer.clone_from(&e.peer);
                    }
                    t
                })
            })
            .collect();
        self.peer_verdicts = events
            .iter()
            .map(|e| PeerJudgement {
                peer: e.peer.clone(),
                verdict: e.verdict,
                summary: e.summary.clone(),
            })
            .collect();
        if ended && self.destination_down() {
            if self.local_cause.is_none() {
                self.local_cause = Some(std::mem::replace(cause, DESTINATION.to_string()));
            } else {
                *cause = DESTINATION.to_string();
            }
        } else if let Some(local) = self.local_cause.take() {
            *cause = local;
        }
    }
}

/// The `corroboration` events of the journal by period: for each period
/// the latest event of each peer, peers in the order they first answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Corroborations {
    outages: HashMap<String, Vec<Corroboration>>,
    slow: HashMap<String, Vec<Corroboration>>,
    /// Events replayed (a peer answering twice for a period counts twice).
    pub events: u64,
}

impl Corroborations {
    /// Replays one event: a later answer of the same peer for the same
    /// period replaces its earlier one.
    pub fn add(&mut self, e: &Corroboration) {
        self.events += 1;
        let map = match e.kind {
            PeriodKind::Outage => &mut self.outages,
            PeriodKind::Slow => &mut self.slow,
        };
        let list = map.entry(e.period.clone()).or_default();
        match list.iter_mut().find(|c| c.peer == e.peer) {
            Some(c) => *c = e.clone(),
            None => list.push(e.clone()),
        }
    }

    /// The events of period `id` of `kind`, one per peer.
    pub fn of(&self, kind: PeriodKind, id: &str) -> &[Corroboration] {
        let map = match kind {
            PeriodKind::Outage => &self.outages,
            PeriodKind::Slow => &self.slow,
        };
        map.get(id).map_or(&[], Vec::as_slice)
    }

    /// No `corroboration` event was read.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }
}

/// Our heads that one peer acknowledged (`witnessed` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerWitnessed {
    pub peer: String,
    /// Heads it acknowledged.
    pub heads: u64,
    /// When the latest acknowledgement was journaled.
    #[serde(with = "ts_ms")]
    pub last_acknowledged: Timestamp,
    /// The latest head acknowledged (the highest `seq`), with its receipt.
    pub last: Witnessed,
}

/// The heads one peer sent us (`witness` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerWitnessReceived {
    pub peer: String,
    /// Heads received.
    pub heads: u64,
    /// When the last one was received (its journal line's time).
    #[serde(with = "ts_ms")]
    pub last_seen: Timestamp,
    /// The latest head received.
    pub last: WitnessReceived,
}

/// Witness bookkeeping: our heads other sites hold, and theirs we hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Witnesses {
    /// Per peer, in order of the first acknowledgement.
    pub witnessed: Vec<PeerWitnessed>,
    /// Per peer, in order of the first head received.
    pub received: Vec<PeerWitnessReceived>,
}

impl Witnesses {
    /// A `witnessed` line written at `ts`: `peer` acknowledged our head.
    pub fn witnessed(&mut self, w: &Witnessed, ts: Timestamp) {
        match self.witnessed.iter_mut().find(|p| p.peer == w.peer) {
            Some(p) => {
                p.heads += 1;
                if w.head.seq >= p.last.head.seq {
                    p.last = w.clone();
                    p.last_acknowledged = ts;
                }
            }
            None => self.witnessed.push(PeerWitnessed {
                peer: w.peer.clone(),
                heads: 1,
                last_acknowledged: ts,
                last: w.clone(),
            }),
        }
    }

    /// A `witness` line written at `ts`: a peer's head received.
    pub fn received(&mut self, w: &WitnessReceived, ts: Timestamp) {
        match self.received.iter_mut().find(|p| p.peer == w.peer) {
            Some(p) => {
                p.heads += 1;
                p.last_seen = p.last_seen.max(ts);
                p.last = w.clone();
            }
            None => self.received.push(PeerWitnessReceived {
                peer: w.peer.clone(),
                heads: 1,
                last_seen: ts,
                last: w.clone(),
            }),
        }
    }

    /// Heads acknowledged by any peer (each acknowledgement counts).
    pub fn heads_witnessed(&self) -> u64 {
        self.witnessed.iter().map(|p| p.heads).sum()
    }

    /// The latest head any peer acknowledged (highest `seq`, then the
    /// latest acknowledgement).
    pub fn last_witnessed(&self) -> Option<&PeerWitnessed> {
        self.witnessed.iter().max_by(|a, b| {
            a.last
                .head
                .seq
                .cmp(&b.last.head.seq)
                .then(a.last_acknowledged.cmp(&b.last_acknowledged))
        })
    }

    /// No witness event of either kind was read.
    pub fn is_empty(&self) -> bool {
        self.witnessed.is_empty() && self.received.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::peer_fixture::{self, DEST, MIXED, NODATA, REACH, at};
    use super::*;
    use crate::journal::{Entry, Ledger};

    #[test]
    fn corroboration_is_attached_to_its_period_and_destination_down_changes_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        peer_fixture::write(dir.path());
        let before = std::fs::read(dir.path().join(crate::journal::JOURNAL_FILE)).unwrap();
        let h = Ledger::load(dir.path()).unwrap();
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        let o = |id: &str| h.closed.iter().find(|r| r.id == id).unwrap();

        // Seen up from abroad: this site's cause stays, the sentence is there.
        let reach = o("o-reach");
        assert_eq!(reach.cause, "internet");
        assert_eq!(reach.elsewhere.local_cause, None);
        assert_eq!(reach.elsewhere.peer_verdicts.len(), 1);
        assert_eq!(reach.elsewhere.peer_verdicts[0].summary, REACH);
        assert_eq!(
            reach.elsewhere.peer_verdicts[0].verdict,
            PeerVerdict::ReachableElsewhere
        );
        let targets: Vec<(&str, u64, u64)> = reach
            .elsewhere
            .corroboration
            .iter()
            .map(|t| (t.target.as_str(), t.probes, t.failures))
            .collect();
        assert_eq!(targets, [("intl-web", 60, 0), ("intl-dns", 60, 1)]);

        // Down from abroad too: the cause reads `destination`, the site's kept.
        let dest = o("o-dest");
        assert_eq!(dest.cause, "destination");
        assert_eq!(dest.elsewhere.local_cause.as_deref(), Some("internet"));
        let peers: Vec<(&str, PeerVerdict, &str)> = dest
            .elsewhere
            .peer_verdicts
            .iter()
            .map(|p| (p.peer.as_str(), p.verdict, p.summary.as_str()))
            .collect();
        assert_eq!(
            peers,
            [
                ("abroad", PeerVerdict::DestinationDown, DEST),
                ("backup", PeerVerdict::NoData, NODATA)
            ]
        );
        assert_eq!(dest.elsewhere.targets_of("backup").count(), 1);
        assert_eq!(
            dest.elsewhere.targets_of("abroad").next().unwrap().verdict,
            TargetVerdict::Down
        );

        // Nobody answered for this one: nothing attached, nothing changed.
        let none = o("o-none");
        assert!(none.elsewhere.is_empty());
        assert_eq!(none.cause, "lan");

        // Slow periods get theirs by kind: the outage map is not consulted.
        let s = &h.degradations.closed[0];
        assert_eq!(s.id, "s-mixed");
        assert_eq!(s.cause, "internet");
        assert_eq!(s.elsewhere.peer_verdicts[0].summary, MIXED);
        assert_eq!(s.elsewhere.corroboration.len(), 2);

        // The journal itself is untouched by reading.
        let after = std::fs::read(dir.path().join(crate::journal::JOURNAL_FILE)).unwrap();
        assert_eq!(before, after);
        // The downtime by cause follows the record's cause.
        assert!(h.has_peer_evidence());
    }

    #[test]
    fn witnesses_are_counted_per_peer_with_the_last_head() {
        let dir = tempfile::tempdir().unwrap();
        peer_fixture::write(dir.path());
        let h = Ledger::load(dir.path()).unwrap();
        let w = &h.witnesses;
        assert_eq!(w.heads_witnessed(), 2);
        assert_eq!(w.witnessed.len(), 1);
        let last = w.last_witnessed().unwrap();
        assert_eq!(last.peer, "abroad");
        assert_eq!(last.heads, 2);
        assert_eq!(last.last.head.seq, 11);
        assert_eq!(last.last.receipt.seq, 111);
        assert_eq!(last.last_acknowledged, at(460.0));
        assert_eq!(w.received.len(), 1);
        assert_eq!(w.received[0].peer, "home2");
        assert_eq!(w.received[0].heads, 1);
        assert_eq!(w.received[0].last.head.seq, 10);
        assert_eq!(w.received[0].last_seen, at(470.0));
    }

    /// A later answer of the same peer replaces its earlier one, and a
    /// verdict that no longer says "destination" gives the site's cause back.
    #[test]
    fn a_later_answer_replaces_the_earlier_and_attaching_twice_changes_nothing() {
        use PeerVerdict as P;
        use PeriodKind as K;
        let dir = tempfile::tempdir().unwrap();
        let [s, e] = peer_fixture::outage("o1", "internet", (10.0, 20.0), &["w"]);
        let down = vec![peer_fixture::target(
            "abroad",
            "w",
            10,
            10,
            TargetVerdict::Down,
        )];
        let up = vec![peer_fixture::target(
            "abroad",
            "w",
            10,
            0,
            TargetVerdict::Up,
        )];
        peer_fixture::append(
            dir.path(),
            vec![
                (0.0, peer_fixture::start("home")),
                (10.0, s),
                // Before the end line: still attached (the journal is read whole).
                (
                    15.0,
                    peer_fixture::corroboration(
                        K::Outage,
                        "o1",
                        "abroad",
                        (10.0, 20.0),
                        down,
                        P::DestinationDown,
                        DEST,
                    ),
                ),
                (20.0, e),
            ],
        );
        let h = Ledger::load(dir.path()).unwrap();
        let mut r = h.closed[0].clone();
        assert_eq!(r.cause, "destination");
        h.corroborate_outage(&mut r);
        assert_eq!(r, h.closed[0], "idempotent");
        peer_fixture::append(
            dir.path(),
            vec![(
                30.0,
                peer_fixture::corroboration(
                    K::Outage,
                    "o1",
                    "abroad",
                    (10.0, 20.0),
                    up,
                    P::ReachableElsewhere,
                    REACH,
                ),
            )],
        );
        let h2 = Ledger::load(dir.path()).unwrap();
        assert_eq!(h2.closed[0].cause, "internet");
        assert_eq!(h2.closed[0].elsewhere.peer_verdicts.len(), 1);
        assert_eq!(h2.closed[0].elsewhere.corroboration[0].failures, 0);
        assert_eq!(h2.corroborations.events, 2);
        // The record read with the old answer, given the new one, turns back.
        h2.corroborate_outage(&mut r);
        assert_eq!(r.cause, "internet");
        assert_eq!(r.elsewhere.local_cause, None);
        // An open record never reads `destination`.
        let mut open = h.closed[0].clone();
        open.end = None;
        open.cause = "internet".into();
        open.elsewhere = Elsewhere::default();
        h.corroborate_outage(&mut open);
        assert_eq!(open.cause, "internet");
        assert!(open.elsewhere.destination_down());
        let _ = Entry::name;
    }

    #[test]
    fn without_peer_events_records_serialize_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let [s, e] = peer_fixture::outage("o1", "internet", (10.0, 20.0), &["w"]);
        peer_fixture::append(
            dir.path(),
            vec![(0.0, peer_fixture::start("home")), (10.0, s), (20.0, e)],
        );
        let h = Ledger::load(dir.path()).unwrap();
        assert!(!h.has_peer_evidence());
        let json = serde_json::to_string(&h.closed[0]).unwrap();
        for k in ["corroboration", "peer_verdicts", "local_cause"] {
            assert!(!json.contains(k), "{json}");
        }
    }
}
