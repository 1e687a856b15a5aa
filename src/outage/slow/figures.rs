//! A slow period's figures: the window's ([`Figures`]), those over a whole
//! period ([`PeriodFigures`], sampled by [`PeriodStats`]) and the thresholds
//! that trip ([`Trigger`]).

use std::time::Duration;

use super::histogram::{Histogram, P50};
pub use crate::journal::{Figures, PeriodFigures, Trigger};

/// The median of `values` (the mean of the middle two for an even count),
/// `None` for none.
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub(super) const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Sampled window figures of an open slow period (fixed size).
#[derive(Debug, Clone)]
pub(super) struct PeriodStats {
    /// loss (ppm), rtt p50, rtt p95, dns p95, http p95 (ns), throughput (bit/s), samples.
    /// Index 7: upload throughput (bit/s).
    pub(super) hists: [Histogram; 8],
    pub(super) worst: [Option<f64>; 8],
    pub(super) snapshots: u64,
    pub(super) last: Option<Duration>,
    pub(super) samples: u64,
    pub(super) tests: u64,
}

impl PeriodStats {
    pub(super) fn new(samples: u64) -> Self {
        Self {
            hists: Default::default(),
            worst: [None; 8],
            snapshots: 0,
            last: None,
            samples,
            tests: 0,
        }
    }

    /// Whether a snapshot is due at `at` (the figures cost a histogram scan).
    pub(super) fn due(&self, at: Duration) -> bool {
        self.last
            .is_none_or(|l| at.saturating_sub(l) >= SNAPSHOT_EVERY)
    }

    pub(super) fn record(&mut self, at: Duration, f: &Figures) {
        self.last = Some(at);
        self.snapshots += 1;
        let values = [
            f.loss_ratio.map(|v| v * 1e6),
            f.rtt_p50_seconds.map(|v| v * 1e9),
            f.rtt_p95_seconds.map(|v| v * 1e9),
            f.dns_p95_seconds.map(|v| v * 1e9),
            f.http_p95_seconds.map(|v| v * 1e9),
            f.throughput_bps,
            Some(f.samples as f64),
            f.throughput_upload_bps,
        ];
        for (i, v) in values.into_iter().enumerate() {
            let Some(v) = v else { continue };
            self.hists[i].add(v.round().max(0.0) as u64);
            // Throughput (5, 7) and the sample count are worst when lowest.
            let lower_is_worse = i >= 5;
            self.worst[i] = Some(match self.worst[i] {
                Some(w) if lower_is_worse => w.min(v),
                Some(w) => w.max(v),
                None => v,
            });
        }
    }

    pub(super) fn finish(&self) -> PeriodFigures {
        let med = |i: usize| self.hists[i].quantile(P50);
        let build = |get: &dyn Fn(usize) -> Option<f64>| Figures {
            loss_ratio: get(0).map(|v| v / 1e6),
            rtt_p50_seconds: get(1).map(|v| v / 1e9),
            rtt_p95_seconds: get(2).map(|v| v / 1e9),
            dns_p95_seconds: get(3).map(|v| v / 1e9),
            http_p95_seconds: get(4).map(|v| v / 1e9),
            throughput_bps: get(5),
            throughput_upload_bps: get(7),
            throughput_last_bps: None,
            samples: get(6).map_or(0, |v| v.round() as u64),
        };
        // Worst values are exact; scale them back like the medians.
        let worst = |i: usize| self.worst[i];
        PeriodFigures {
            median: build(&med),
            worst: build(&worst),
            snapshots: self.snapshots,
            samples: self.samples,
            throughput_tests: self.tests,
            loss_ratio: None,
        }
    }
}
