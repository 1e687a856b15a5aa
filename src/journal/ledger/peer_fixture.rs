//! A journal with peers' evidence, written by the real writer (so the hash
//! chain is valid), for the tests of the ledger, the report and the page.
//!
//! Times are seconds after 2026-11-01T10:00:00Z:
//! - `o-reach`: outage of `internet` 60..120; `abroad` saw its targets up.
//! - `s-mixed`: slow period of `internet` 200..260; `abroad`: mixed.
//! - `o-dest`: outage of `internet` 300..340; `abroad` saw `intl-web`
//!   down too (`destination_down`), `backup` has no data.
//! - `o-none`: outage of `lan` 500..510, nobody corroborated it.
//! - `abroad` acknowledged our head twice (the last at 460, seq of the line
//!   before it); `home2` sent us its head once (at 470).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use jiff::Timestamp;

use crate::journal::record::{
    CorroboratedTarget, Corroboration, DaemonStart, DaemonStop, DegradedEnded, DegradedStarted,
    DurationClock, Figures, OutageEnded, OutageStarted, PeerVerdict, PeriodFigures, PeriodKind,
    Receipt, TargetVerdict, Trigger, WitnessReceived, Witnessed,
};
use crate::journal::{self, ChainHead, Entry, FileSink, JournalCounters, JournalWriter};

pub const REACH: &str = "the destinations answered from abroad throughout: the fault lies between this site and the border";
pub const DEST: &str =
    "the destinations also failed from abroad: the destination was down, not your connection";
pub const MIXED: &str = "some destinations failed from abroad too";
pub const NODATA: &str = "backup has no observations of these destinations for that time";

/// `2026-11-01T10:00:00Z` plus `s` seconds.
pub fn at(s: f64) -> Timestamp {
    let base: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    base.checked_add(jiff::SignedDuration::from_secs_f64(s))
        .unwrap()
}

pub fn target(
    peer: &str,
    name: &str,
    probes: u64,
    failures: u64,
    verdict: TargetVerdict,
) -> CorroboratedTarget {
    CorroboratedTarget {
        peer: peer.into(),
        target: name.into(),
        their_target: None,
        probes,
        failures,
        loss_ratio: (probes > 0).then(|| failures as f64 / probes as f64),
        verdict,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn corroboration(
    kind: PeriodKind,
    period: &str,
    peer: &str,
    (start, end): (f64, f64),
    targets: Vec<CorroboratedTarget>,
    verdict: PeerVerdict,
    summary: &str,
) -> Entry {
    Entry::Corroboration(Corroboration {
        period: period.into(),
        kind,
        peer: peer.into(),
        start: at(start),
        end: at(end),
        targets,
        verdict,
        summary: summary.into(),
    })
}

pub fn outage(id: &str, group: &str, (a, b): (f64, f64), targets: &[&str]) -> [Entry; 2] {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    [
        Entry::OutageStart(OutageStarted {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(a),
            start_observed: true,
            targets: targets.clone(),
            gaps: vec![],
        }),
        Entry::OutageEnd(OutageEnded {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(a),
            start_observed: true,
            end: at(b),
            duration_seconds: b - a,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            targets,
            gaps: vec![],
            end_reason: None,
        }),
    ]
}

fn slow(id: &str, group: &str, (a, b): (f64, f64)) -> [Entry; 2] {
    let figures = Figures {
        loss_ratio: Some(0.2),
        samples: 30,
        ..Figures::default()
    };
    [
        Entry::DegradedStart(DegradedStarted {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(a),
            triggers: vec![Trigger::Loss],
            figures: figures.clone(),
        }),
        Entry::DegradedEnd(DegradedEnded {
            interference: None,
            id: id.into(),
            group: group.into(),
            cause: group.into(),
            start: at(a),
            end: at(b),
            duration_seconds: b - a,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            superseded: false,
            triggers: vec![Trigger::Loss],
            figures: PeriodFigures {
                median: figures.clone(),
                worst: figures,
                snapshots: 50,
                samples: 60,
                throughput_tests: 0,
                loss_ratio: Some(0.2),
            },
            gaps: vec![],
            end_reason: None,
        }),
    ]
}

pub fn start(site: &str) -> Entry {
    Entry::DaemonStart(DaemonStart {
        version: "test".into(),
        config_digest: "d".into(),
        config_source: "<test>".into(),
        pid: 1,
        clock_synchronized: Some(true),
        clock_check: "test".into(),
        previous_run_alive_until: None,
        previous_run_clean: None,
        torn_line: None,
        previous_head: None,
        site: Some(site.into()),
        plan: None,
        throughput_targets: Vec::new(),
    })
}

/// Appends `entries` (each at its time) to the journal in `dir`.
pub fn append(dir: &Path, entries: Vec<(f64, Entry)>) {
    let counters = JournalCounters {
        writes: prometheus::IntCounter::new("w", "w").unwrap(),
        errors: prometheus::IntCounter::new("e", "e").unwrap(),
    };
    let tail = journal::read(dir).unwrap().tail;
    let mut w = JournalWriter::new(
        Box::new(FileSink::open(dir, false).unwrap()),
        &tail,
        counters,
    );
    for (t, e) in entries {
        w.append(at(t), &e).unwrap();
    }
}

/// Writes the journal the module doc describes into `dir`.
pub fn write(dir: &Path) {
    use PeerVerdict as P;
    use PeriodKind as K;
    use TargetVerdict as T;
    let [o1s, o1e] = outage(
        "o-reach",
        "internet",
        (60.0, 120.0),
        &["intl-web", "intl-dns"],
    );
    let [s1s, s1e] = slow("s-mixed", "internet", (200.0, 260.0));
    let [o2s, o2e] = outage("o-dest", "internet", (300.0, 340.0), &["intl-web"]);
    let [o3s, o3e] = outage("o-none", "lan", (500.0, 510.0), &["gw"]);
    let witnessed = |seq: u64, t: f64| {
        Entry::Witnessed(Witnessed {
            peer: "abroad".into(),
            head: ChainHead {
                seq,
                hash: format!("{seq:064x}"),
            },
            at: at(t),
            receipt: Receipt {
                site: "abroad".into(),
                seq: 100 + seq,
                hash: format!("{:064x}", 100 + seq),
            },
        })
    };
    append(
        dir,
        vec![
            (0.0, start("home")),
            (60.0, o1s),
            (120.0, o1e),
            (
                130.0,
                corroboration(
                    K::Outage,
                    "o-reach",
                    "abroad",
                    (60.0, 120.0),
                    vec![
                        target("abroad", "intl-web", 60, 0, T::Up),
                        target("abroad", "intl-dns", 60, 1, T::Up),
                    ],
                    P::ReachableElsewhere,
                    REACH,
                ),
            ),
            (140.0, witnessed(3, 139.0)),
            (200.0, s1s),
            (260.0, s1e),
            (
                270.0,
                corroboration(
                    K::Slow,
                    "s-mixed",
                    "abroad",
                    (200.0, 260.0),
                    vec![
                        target("abroad", "intl-web", 60, 0, T::Up),
                        target("abroad", "intl-dns", 60, 30, T::Partial),
                    ],
                    P::Mixed,
                    MIXED,
                ),
            ),
            (300.0, o2s),
            (340.0, o2e),
            (
                350.0,
                corroboration(
                    K::Outage,
                    "o-dest",
                    "abroad",
                    (300.0, 340.0),
                    vec![target("abroad", "intl-web", 40, 40, T::Down)],
                    P::DestinationDown,
                    DEST,
                ),
            ),
            (
                355.0,
                corroboration(
                    K::Outage,
                    "o-dest",
                    "backup",
                    (300.0, 340.0),
                    vec![target("backup", "intl-web", 0, 0, T::NoData)],
                    P::NoData,
                    NODATA,
                ),
            ),
            (460.0, witnessed(11, 459.0)),
            (
                470.0,
                Entry::Witness(WitnessReceived {
                    peer: "home2".into(),
                    site: "home2".into(),
                    head: ChainHead {
                        seq: 10,
                        hash: format!("{:064x}", 10),
                    },
                    at: at(469.0),
                }),
            ),
            (500.0, o3s),
            (510.0, o3e),
            (
                600.0,
                Entry::DaemonStop(DaemonStop {
                    open_outages: vec![],
                    open_degradations: vec![],
                }),
            ),
        ],
    );
}
