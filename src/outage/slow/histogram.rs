//! The window's histogram: fixed log-linear buckets of `u64` values with add
//! and remove, and nearest-rank quantiles over them.

/// The median and the 95th percentile, in permille.
pub(super) const P50: u64 = 500;
pub(super) const P95: u64 = 950;

/// Linear sub-buckets per power of two (6 bits).
pub(super) const SUB_BITS: u32 = 6;
pub(super) const SUB: u64 = 1 << SUB_BITS;
/// Largest value kept apart (ns: about 1100 s); larger ones share the last bucket.
pub(super) const MAX_VALUE: u64 = (1 << 40) - 1;
/// Number of buckets of a [`Histogram`].
pub const BUCKETS: usize = bucket(MAX_VALUE) + 1;

/// Bucket of `v`: log-linear (HDR-style), 64 linear sub-buckets per power of
/// two; values below 64 have a bucket each.
pub(super) const fn bucket(v: u64) -> usize {
    let v = if v > MAX_VALUE { MAX_VALUE } else { v };
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// Lowest value of bucket `b` and its width.
pub(super) fn bucket_bounds(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, 1);
    }
    let shift = b / SUB - 1;
    ((SUB + b % SUB) << shift, 1 << shift)
}

/// The value a bucket stands for: its midpoint (exact below 64).
pub(super) fn representative(b: usize) -> f64 {
    let (lo, w) = bucket_bounds(b);
    if w == 1 {
        lo as f64
    } else {
        lo as f64 + (w as f64 - 1.0) / 2.0
    }
}

/// A fixed log-linear histogram of `u64` values with add and remove.
///
/// Resolution: 64 linear sub-buckets per power of two, so a bucket is at most
/// 1/64 of its lower bound wide and a reported quantile (the bucket midpoint)
/// is within 1/128 (0.8 %, under the 1 % the docs promise) of the exact
/// nearest-rank one. Histograms merge by adding counts, which is how a
/// window's is the sum of its time buckets'. At the LAN scale (0.2–2 ms) and
/// the internet scale (20–300 ms) a 20 % change moves a figure by at least
/// 12 buckets, well clear of the error. Range 1 ns to about 1100 s in ns
/// units; [`BUCKETS`] counters of 4 bytes.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub(super) counts: Box<[u32]>,
    pub(super) total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
        }
    }
}

impl Histogram {
    pub fn add(&mut self, v: u64) {
        self.add_bucket(bucket(v));
    }

    pub(super) fn add_bucket(&mut self, b: usize) {
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total += 1;
    }

    /// Takes `n` values out of bucket `b` (at most as many as it holds).
    pub(super) fn remove_n(&mut self, b: usize, n: u64) {
        let n = n.min(u64::from(self.counts[b]));
        self.counts[b] -= n as u32;
        self.total -= n;
    }

    /// Adds every value of `other` (histograms merge by adding counts).
    pub fn merge(&mut self, other: &Histogram) {
        for (c, o) in self.counts.iter_mut().zip(other.counts.iter()) {
            *c = c.saturating_add(*o);
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub(super) fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// Bucket of the nearest-rank quantile (`permille`/1000).
    pub(super) fn quantile_bucket(&self, permille: u64) -> Option<usize> {
        let rank = rank(permille, self.total)?;
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(b);
            }
        }
        None
    }

    /// The nearest-rank quantile (`permille`/1000), to within 1/128 (0.8 %).
    pub fn quantile(&self, permille: u64) -> Option<f64> {
        self.quantile_bucket(permille).map(representative)
    }
}

/// `ceil(q·n)` for q = `permille`/1000, in 1..=n; `None` when n = 0.
pub(super) fn rank(permille: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (permille * n).div_ceil(1000).clamp(1, n))
}

/// Whether the nearest-rank quantile of `n` samples, `over` of them above the
/// threshold, is above the threshold.
pub(super) fn quantile_over(permille: u64, n: u64, over: u64) -> bool {
    rank(permille, n).is_some_and(|r| over > n - r)
}
