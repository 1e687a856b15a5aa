//! Outages left open by the previous run. Each is handed to the detector,
//! which decides on the first probes whether it goes on (`outage_resume`) or
//! ended while nobody watched (`outage_end` with `end_observed: false`); an
//! outage whose group is gone from the configuration is closed at once,
//! unobserved after its last sign of life.

use jiff::Timestamp;

use super::detector::{Adopted, Detector};
use super::live::OpenEntry;
use crate::journal::ts_ms;
use crate::journal::{DurationClock, Gap, OutageEnded};
use crate::journal::{Ledger, OutageRecord};

/// What recovery made of the previous run's open outages.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Adopted by the detector, shown open with a provisional gap up to `now`.
    pub open: Vec<OpenEntry>,
    /// Closed because their group no longer exists; to be journaled.
    pub closed: Vec<OutageEnded>,
}

/// Adopts or closes every outage `history` left open; `now` is this run's start.
pub fn recover(history: &Ledger, detector: &mut Detector, now: Timestamp) -> Recovered {
    detector.reserve_ids(history.ids.iter().cloned());
    let mut out = Recovered::default();
    for o in &history.open {
        let last_seen = history.last_seen(o);
        let unobserved = Gap {
            from: last_seen,
            to: now.max(last_seen),
        };
        let adopted = Adopted {
            id: o.record.id.clone(),
            cause: o.record.cause.clone(),
            start: o.record.start,
            start_observed: o.record.start_observed,
            targets: o.record.targets.clone(),
            gaps: o.record.gaps.clone(),
            last_seen,
            interference: o.record.interference.clone(),
        };
        if detector.adopt(&o.record.group, adopted) {
            tracing::warn!(id = %o.record.id, group = %o.record.group, last_seen = %ts_ms::format(&last_seen), "outage open at the last run; waiting to see whether it goes on");
            let mut record = o.record.clone();
            record.duration_clock = DurationClock::Wall;
            record.gaps.push(unobserved);
            out.open.push(OpenEntry {
                record,
                start_mono: None,
            });
        } else {
            out.closed
                .push(close_unobserved(&o.record, last_seen, unobserved));
        }
    }
    out
}

/// The `outage_end` of an outage whose group is gone: it ends, for the
/// record, at its last sign of life, and what follows is a gap.
fn close_unobserved(record: &OutageRecord, last_seen: Timestamp, gap: Gap) -> OutageEnded {
    let mut gaps = record.gaps.clone();
    gaps.push(gap);
    OutageEnded {
        interference: None,
        id: record.id.clone(),
        group: record.group.clone(),
        cause: record.cause.clone(),
        start: record.start,
        start_observed: record.start_observed,
        end: last_seen,
        duration_seconds: last_seen
            .duration_since(record.start)
            .as_secs_f64()
            .max(0.0),
        duration_clock: DurationClock::Wall,
        end_observed: false,
        targets: record.targets.clone(),
        gaps,
        end_reason: None,
    }
}
