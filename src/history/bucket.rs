//! One minute of one target: counts and a fixed RTT histogram.

use std::time::Duration;

/// Upper bounds of the RTT histogram's buckets, in microseconds; the last
/// bucket is open. Roughly logarithmic, 24 buckets from 100 µs to 5 s: a
/// quantile read from it is off by at most the bucket's width (≈ ±25 %).
pub const BUCKETS: [u32; 24] = [
    100, 200, 500, 1_000, 2_000, 3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 40_000,
    50_000, 70_000, 100_000, 150_000, 200_000, 300_000, 500_000, 700_000, 1_000_000, 2_000_000,
    5_000_000,
];

/// Probes, failures and the RTT distribution of successes over one minute
/// (or, after merging, over any span).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    pub probes: u32,
    pub failures: u32,
    pub sum_us: u64,
    /// Only meaningful when some probe succeeded.
    pub min_us: u32,
    pub max_us: u32,
    /// One count per [`BUCKETS`] entry plus the open last bucket.
    pub hist: [u32; BUCKETS.len() + 1],
}

impl Minute {
    /// Adds one probe: `Some(rtt)` on success, `None` on failure.
    pub fn add(&mut self, rtt: Option<Duration>) {
        self.probes += 1;
        let Some(rtt) = rtt else {
            self.failures += 1;
            return;
        };
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        let ok_before = self.probes - 1 - self.failures;
        if ok_before == 0 || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.sum_us += u64::from(us);
        let b = BUCKETS.partition_point(|&ub| ub < us);
        self.hist[b] += 1;
    }

    /// Successful probes.
    pub fn successes(&self) -> u32 {
        self.probes - self.failures
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Minute) {
        if other.successes() > 0 {
            self.min_us = if self.successes() == 0 {
                other.min_us
            } else {
                self.min_us.min(other.min_us)
            };
            self.max_us = self.max_us.max(other.max_us);
        }
        self.probes += other.probes;
        self.failures += other.failures;
        self.sum_us += other.sum_us;
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            *a += b;
        }
    }

    /// The `q` quantile (0..=1) of successful RTTs, in microseconds,
    /// interpolated inside its bucket and clamped to the observed min/max.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let n = self.successes();
        if n == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * f64::from(n);
        let mut seen = 0.0;
        for (i, &c) in self.hist.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let c = f64::from(c);
            if seen + c >= rank {
                let lo = if i == 0 { 0 } else { BUCKETS[i - 1] };
                let hi = BUCKETS.get(i).copied().unwrap_or(self.max_us);
                let lo = f64::from(lo.max(self.min_us));
                let hi = f64::from(hi.min(self.max_us)).max(lo);
                return Some(lo + (hi - lo) * ((rank - seen) / c).clamp(0.0, 1.0));
            }
            seen += c;
        }
        Some(f64::from(self.max_us))
    }

    /// The histogram as `bucket:count` pairs of non-empty buckets.
    pub fn sparse_hist(&self) -> String {
        let mut s = String::new();
        self.write_sparse_hist(&mut s);
        s
    }

    /// [`Minute::sparse_hist`] appended to `out` (no allocation of its own).
    pub fn write_sparse_hist(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut first = true;
        for (i, &c) in self.hist.iter().enumerate() {
            if c > 0 {
                if !first {
                    out.push(',');
                }
                first = false;
                let _ = write!(out, "{i}:{c}");
            }
        }
    }

    /// Parses [`Minute::sparse_hist`]'s output into `self.hist`.
    pub fn set_sparse_hist(&mut self, s: &str) -> Option<()> {
        if s.is_empty() {
            return Some(());
        }
        for pair in s.split(',') {
            let (i, c) = pair.split_once(':')?;
            let i: usize = i.parse().ok()?;
            *self.hist.get_mut(i)? += c.parse::<u32>().ok()?;
        }
        Some(())
    }
}

/// One target's minute while it is counted and until it is written: what a
/// [`Minute`] holds, in 80 bytes instead of 128 plus the minute. Counts are
/// `u16`: a minute at the shortest interval (100 ms) has 600 probes; a
/// caller that finds one full ([`Tally::full`]) writes it out and starts
/// another row of the same minute, which readers add up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Unix seconds / 60.
    pub minute: i64,
    sum_us: u64,
    min_us: u32,
    max_us: u32,
    /// 0: nothing counted yet (the slot is free).
    probes: u16,
    failures: u16,
    hist: [u16; BUCKETS.len() + 1],
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.probes == 0
    }

    /// No further probe can be counted.
    pub fn full(&self) -> bool {
        self.probes == u16::MAX
    }

    /// As [`Minute::add`].
    pub fn add(&mut self, rtt: Option<Duration>) {
        self.probes += 1;
        let Some(rtt) = rtt else {
            self.failures += 1;
            return;
        };
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        let ok_before = self.probes - 1 - self.failures;
        if ok_before == 0 || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.sum_us += u64::from(us);
        let b = BUCKETS.partition_point(|&ub| ub < us);
        self.hist[b] += 1;
    }

    pub fn to_minute(&self) -> Minute {
        Minute {
            probes: u32::from(self.probes),
            failures: u32::from(self.failures),
            sum_us: self.sum_us,
            min_us: self.min_us,
            max_us: self.max_us,
            hist: self.hist.map(u32::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_stay_inside_the_observed_range_and_bucket() {
        let mut m = Minute::default();
        for ms in [10u64, 11, 12, 13, 14, 40, 41, 42, 43, 200] {
            m.add(Some(Duration::from_millis(ms)));
        }
        m.add(None);
        assert_eq!((m.probes, m.failures), (11, 1));
        assert_eq!((m.min_us, m.max_us), (10_000, 200_000));
        let p50 = m.quantile_us(0.5).unwrap();
        assert!((10_000.0..=40_000.0).contains(&p50), "{p50}");
        assert_eq!(m.quantile_us(1.0), Some(200_000.0));
        assert!(m.quantile_us(0.0).unwrap() >= 10_000.0);
        let p90 = m.quantile_us(0.9).unwrap();
        assert!((40_000.0..=50_000.0).contains(&p90), "{p90}");
    }

    #[test]
    fn a_tally_counts_as_a_minute_does() {
        let mut m = Minute::default();
        let mut t = Tally::default();
        assert!(t.is_empty());
        for i in 0..600u64 {
            let rtt = (i % 7 != 0).then(|| Duration::from_micros(i * i * 37 % 9_000_000));
            m.add(rtt);
            t.add(rtt);
        }
        assert_eq!(t.to_minute(), m);
        assert!(!t.is_empty() && !t.full());
        // Failures first: the minimum is the first success's.
        let (mut m, mut t) = (Minute::default(), Tally::default());
        for rtt in [
            None,
            Some(Duration::from_millis(9)),
            Some(Duration::from_millis(3)),
        ] {
            m.add(rtt);
            t.add(rtt);
        }
        assert_eq!(t.to_minute(), m);
    }

    #[test]
    fn merge_and_sparse_round_trip() {
        let mut a = Minute::default();
        a.add(Some(Duration::from_micros(150)));
        a.add(None);
        let mut b = Minute::default();
        b.add(Some(Duration::from_secs(9)));
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(
            (m.probes, m.failures, m.min_us, m.max_us),
            (3, 1, 150, 9_000_000)
        );
        let mut back = Minute::default();
        back.set_sparse_hist(&m.sparse_hist()).unwrap();
        assert_eq!(back.hist, m.hist);
        assert!(back.set_sparse_hist("99:1").is_none());
        // A minute of failures only merges without inventing an RTT.
        let mut f = Minute::default();
        f.add(None);
        f.merge(&a);
        assert_eq!(f.min_us, 150);
        assert_eq!(Minute::default().quantile_us(0.5), None);
    }
}
