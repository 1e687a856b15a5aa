//! The sliding window of one group, in time buckets of at most 1 s: per
//! bucket, counts and a sparse log-linear histogram of the samples in it
//! (mergeable: the window's figures are the sums of its buckets', kept up
//! to date as buckets come and go), and the CUSUM change point that
//! back-dates a trip to the bucket where the run of bad samples began.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

use super::figures::{Figures, Trigger, median};
use super::histogram::{Histogram, P50, P95, bucket, quantile_over};
use super::sample::{Sample, SampleKind, Thresholds};
use crate::outage::period::{Stamp, truncate_ms};

/// Thresholds in the units the window works in.
#[derive(Debug, Clone)]
pub(super) struct Th {
    pub(super) window_ms: u64,
    pub(super) window: Duration,
    pub(super) min: u64,
    pub(super) loss: Option<f64>,
    pub(super) rtt_p50: Option<u64>,
    pub(super) rtt_p95: Option<u64>,
    pub(super) dns_p95: Option<u64>,
    pub(super) http_p95: Option<u64>,
    pub(super) throughput: Option<f64>,
    /// The upload tests' floor.
    pub(super) throughput_up: Option<f64>,
    /// `loaded_latency_above`, seconds.
    pub(super) loaded: Option<f64>,
    pub(super) hold_ms: u64,
    /// Width of the window's time buckets.
    pub(super) bucket_ms: u64,
}

pub(super) fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Th {
    pub(super) fn new(t: &Thresholds) -> Self {
        let window_ms = ms(t.window).max(1);
        Self {
            window_ms,
            window: Duration::from_millis(window_ms),
            min: u64::from(t.min_samples.max(1)),
            loss: t.loss_above,
            rtt_p50: t.rtt_p50_above.map(ns),
            rtt_p95: t.rtt_p95_above.map(ns),
            dns_p95: t.dns_p95_above.map(ns),
            http_p95: t.http_p95_above.map(ns),
            throughput: t.throughput_below,
            throughput_up: t.throughput_upload_below,
            loaded: t.loaded_latency_above.map(|d| d.as_secs_f64()),
            hold_ms: ms(t.throughput_hold).max(window_ms),
            bucket_ms: bucket_width_ms(window_ms),
        }
    }
}

/// Probe classes.
pub(super) const RTT: u64 = 0;
pub(super) const DNS: u64 = 1;
pub(super) const HTTP: u64 = 2;

/// A probe sample as it arrives (for the end's dating), packed in 8 bytes: mono ms (40 bits), bucket (12), class
/// (2), success, latency present, over threshold A (RTT p50), over threshold
/// B (the class's p95).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry(u64);

pub(super) const MS_MASK: u64 = (1 << 40) - 1;

impl Entry {
    pub(super) fn new(
        ms: u64,
        bucket: usize,
        class: u64,
        ok: bool,
        lat: bool,
        a: bool,
        b: bool,
    ) -> Self {
        Entry(
            (ms & MS_MASK)
                | ((bucket as u64 & 0xfff) << 40)
                | (class << 52)
                | (u64::from(ok) << 54)
                | (u64::from(lat) << 55)
                | (u64::from(a) << 56)
                | (u64::from(b) << 57),
        )
    }
    pub(super) fn bucket(self) -> usize {
        ((self.0 >> 40) & 0xfff) as usize
    }
    pub(super) fn class(self) -> u64 {
        (self.0 >> 52) & 3
    }
    pub(super) fn ok(self) -> bool {
        self.0 >> 54 & 1 == 1
    }
    pub(super) fn lat(self) -> bool {
        self.0 >> 55 & 1 == 1
    }
    pub(super) fn a(self) -> bool {
        self.0 >> 56 & 1 == 1
    }
    pub(super) fn b(self) -> bool {
        self.0 >> 57 & 1 == 1
    }
    pub(super) fn loss_class(self) -> bool {
        self.class() != HTTP
    }
}

/// Longest time bucket, ms.
pub(super) const MAX_BUCKET_MS: u64 = 1000;

/// The width of a window's time buckets: at most 1 s and at most 1/60 of
/// the window (a 1 s window has buckets of 16 ms), so that a figure's
/// population leaves the window in steps of at most 1/60 of it.
pub(super) fn bucket_width_ms(window_ms: u64) -> u64 {
    (window_ms / 60).clamp(1, MAX_BUCKET_MS)
}

/// The populations whose change points date a start and whose CUSUMs date
/// an end: loss, then the bad flags of the latency classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PopId {
    /// Failed ICMP/TCP/DNS probes among all of them.
    Loss,
    /// Successful ICMP/TCP probes over `rtt_p50_above`.
    RttA,
    /// Successful ICMP/TCP probes over `rtt_p95_above`.
    RttB,
    /// Successful DNS probes over `dns_p95_above`.
    DnsB,
    /// Successful HTTP probes over `http_p95_above`.
    HttpB,
}

impl PopId {
    pub(super) const ALL: [PopId; 5] = [
        PopId::Loss,
        PopId::RttA,
        PopId::RttB,
        PopId::DnsB,
        PopId::HttpB,
    ];

    /// The trigger this population's bad samples push towards.
    pub(super) fn trigger(self) -> Trigger {
        match self {
            PopId::Loss => Trigger::Loss,
            PopId::RttA => Trigger::RttP50,
            PopId::RttB => Trigger::RttP95,
            PopId::DnsB => Trigger::DnsP95,
            PopId::HttpB => Trigger::HttpP95,
        }
    }

    /// The share of bad samples at the threshold (the CUSUM's rate).
    pub(super) fn rate(self, th: &Th) -> f64 {
        match self {
            PopId::Loss => th.loss.unwrap_or(1.0),
            PopId::RttA => 0.5,
            _ => 0.05,
        }
    }
}

/// Counts of one latency class in a time bucket: successes with a
/// latency, and how many of them were over threshold A (RTT p50) and B
/// (the class's p95).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LatCounts {
    pub(super) n: u32,
    pub(super) a: u32,
    pub(super) b: u32,
}

/// No bad sample of that population in the bucket.
const NO_BAD: u16 = u16::MAX;

/// Where a population's bad samples lie in a time bucket: offsets (ms from
/// its start) of the oldest and the newest, how many of the population's
/// samples came at or after the oldest and at or before the newest. With
/// them a CUSUM over buckets sees the same sums at a bucket's first and last
/// bad sample as one over the samples (exact when the samples arrive in
/// order, as probe results do; a late one is counted on the side it falls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadSpan {
    pub(super) first: u16,
    pub(super) last: u16,
    pub(super) since_first: u32,
    pub(super) until_last: u32,
}

impl BadSpan {
    const NONE: BadSpan = BadSpan {
        first: NO_BAD,
        last: 0,
        since_first: 0,
        until_last: 0,
    };

    /// A sample of the population at `off`; `n` samples of it so far, this one included.
    fn note(&mut self, off: u16, bad: bool, n: u32) {
        if bad {
            if self.first == NO_BAD {
                *self = BadSpan {
                    first: off,
                    last: off,
                    since_first: 1,
                    until_last: n,
                };
                return;
            }
            self.first = self.first.min(off);
            self.since_first += 1;
            if off >= self.last {
                self.last = off;
                self.until_last = n;
            } else {
                self.until_last += 1;
            }
        } else if self.first != NO_BAD {
            self.since_first += u32::from(off >= self.first);
            self.until_last += u32::from(off <= self.last);
        }
    }
}

/// One time bucket of a window: every probe sample whose monotonic time
/// falls in `[start, start + width)`, as counts and a sparse histogram
/// (mergeable: the window's figures are the sum of its buckets'). Its
/// size depends on how many distinct latency buckets its samples hit, not
/// on how many samples there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Slot {
    /// Start of the bucket, mono ms (a multiple of the width).
    pub(super) start: u64,
    /// Offsets (ms from `start`) of the oldest and the newest sample.
    pub(super) first: u16,
    pub(super) last: u16,
    /// Probe samples, HTTP failures included.
    pub(super) samples: u32,
    pub(super) loss_total: u32,
    pub(super) loss_failed: u32,
    /// Failures among `loss_failed` with an interference reason.
    pub(super) loss_interference: u32,
    /// Per class ([`RTT`], [`DNS`], [`HTTP`]).
    pub(super) lat: [LatCounts; 3],
    /// Per [`PopId`]: where its bad samples lie.
    pub(super) bad: [BadSpan; 5],
    /// `(class << 12 | latency bucket, count)` of the successes, sorted.
    pub(super) hist: Vec<(u16, u32)>,
}

impl Default for BadSpan {
    fn default() -> Self {
        BadSpan::NONE
    }
}

impl Slot {
    pub(super) fn new(start: u64, hist: Vec<(u16, u32)>) -> Self {
        Slot {
            start,
            first: u16::MAX,
            last: 0,
            samples: 0,
            loss_total: 0,
            loss_failed: 0,
            loss_interference: 0,
            lat: [LatCounts::default(); 3],
            bad: [BadSpan::NONE; 5],
            hist,
        }
    }

    /// All samples and bad ones of population `p`.
    pub(super) fn counts(&self, p: PopId) -> (u64, u64) {
        let (n, bad) = match p {
            PopId::Loss => (self.loss_total, self.loss_failed),
            PopId::RttA => (self.lat[RTT as usize].n, self.lat[RTT as usize].a),
            PopId::RttB => (self.lat[RTT as usize].n, self.lat[RTT as usize].b),
            PopId::DnsB => (self.lat[DNS as usize].n, self.lat[DNS as usize].b),
            PopId::HttpB => (self.lat[HTTP as usize].n, self.lat[HTTP as usize].b),
        };
        (u64::from(n), u64::from(bad))
    }

    /// Where the bad samples of `p` lie, if there are any.
    pub(super) fn bad_span(&self, p: PopId) -> Option<BadSpan> {
        let s = self.bad[p as usize];
        (s.first != NO_BAD).then_some(s)
    }

    pub(super) fn first_ms(&self) -> u64 {
        self.start + u64::from(self.first)
    }

    pub(super) fn last_ms(&self) -> u64 {
        self.start + u64::from(self.last)
    }

    /// Mono ms of an offset.
    pub(super) fn at(&self, off: u16) -> u64 {
        self.start + u64::from(off)
    }

    /// Adds a sample `off` ms after the bucket's start.
    pub(super) fn add(&mut self, e: Entry, off: u16) {
        self.first = self.first.min(off);
        self.last = self.last.max(off);
        self.samples += 1;
        if e.loss_class() {
            self.loss_total += 1;
            self.loss_failed += u32::from(!e.ok());
            self.bad[PopId::Loss as usize].note(off, !e.ok(), self.loss_total);
        }
        if e.ok() && e.lat() {
            let class = e.class();
            let c = &mut self.lat[class as usize];
            c.n += 1;
            c.a += u32::from(e.a());
            c.b += u32::from(e.b());
            let n = c.n;
            let b = match class {
                RTT => {
                    self.bad[PopId::RttA as usize].note(off, e.a(), n);
                    PopId::RttB
                }
                DNS => PopId::DnsB,
                _ => PopId::HttpB,
            };
            self.bad[b as usize].note(off, e.b(), n);
            let key = ((class as u16) << 12) | e.bucket() as u16;
            match self.hist.binary_search_by_key(&key, |x| x.0) {
                Ok(i) => self.hist[i].1 += 1,
                Err(i) => self.hist.insert(i, (key, 1)),
            }
        }
    }

    /// Whether it holds a sample that counts against a configured threshold.
    pub(super) fn bad(&self, th: &Th) -> Option<u64> {
        PopId::ALL
            .into_iter()
            .filter(|p| *p != PopId::Loss || th.loss.is_some())
            .filter_map(|p| self.bad_span(p).map(|s| self.at(s.first)))
            .min()
    }

    /// Heap bytes it holds.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.hist.capacity() * std::mem::size_of::<(u16, u32)>()
    }
}

/// Successful latencies of one class with their over-threshold counts.
#[derive(Debug, Clone, Default)]
pub(super) struct Pop {
    pub(super) hist: Histogram,
    pub(super) over_a: u64,
    pub(super) over_b: u64,
}

impl Pop {
    pub(super) fn n(&self) -> u64 {
        self.hist.total
    }
    pub(super) fn add(&mut self, e: Entry) {
        self.hist.add_bucket(e.bucket());
        self.over_a += u64::from(e.a());
        self.over_b += u64::from(e.b());
    }
    /// Takes out a bucket's over-threshold counts (its histogram counts
    /// are taken out entry by entry).
    pub(super) fn remove_counts(&mut self, c: LatCounts) {
        self.over_a -= u64::from(c.a);
        self.over_b -= u64::from(c.b);
    }
    pub(super) fn clear(&mut self) {
        self.hist.clear();
        self.over_a = 0;
        self.over_b = 0;
    }
    pub(super) fn seconds(&self, permille: u64) -> Option<f64> {
        self.hist.quantile(permille).map(|v| v / 1e9)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Test {
    pub(super) at: Stamp,
    pub(super) bps: f64,
    /// Latency under load over idle, seconds.
    pub(super) increase: Option<f64>,
    /// It carried evidence `throttled_name` (far below its control).
    pub(super) throttled: bool,
}

/// The sliding window of one group, in time buckets.
#[derive(Debug, Clone)]
pub(super) struct Window {
    /// The time buckets holding samples, oldest first (none empty).
    pub(super) slots: VecDeque<Slot>,
    /// Probe samples in the window.
    pub(super) samples: u64,
    pub(super) loss_total: u64,
    pub(super) loss_failed: u64,
    /// Failures among `loss_failed` with an interference reason.
    pub(super) loss_interference: u64,
    pub(super) rtt: Pop,
    pub(super) dns: Pop,
    pub(super) http: Pop,
    /// Successful download tests in the window, and the newest while held.
    pub(super) tests: VecDeque<Test>,
    pub(super) median: Option<f64>,
    /// The same of the upload tests: a median of their own, so that fast
    /// downloads do not hide slow uploads.
    pub(super) up_tests: VecDeque<Test>,
    pub(super) up_median: Option<f64>,
    pub(super) now: Option<Stamp>,
    /// An expired bucket's histogram storage, reused by the next bucket.
    spare: Vec<(u16, u32)>,
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            slots: VecDeque::new(),
            samples: 0,
            loss_total: 0,
            loss_failed: 0,
            loss_interference: 0,
            rtt: Pop::default(),
            dns: Pop::default(),
            http: Pop::default(),
            tests: VecDeque::new(),
            median: None,
            up_tests: VecDeque::new(),
            up_median: None,
            now: None,
            spare: Vec::new(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.samples = 0;
        self.loss_total = 0;
        self.loss_failed = 0;
        self.loss_interference = 0;
        self.rtt.clear();
        self.dns.clear();
        self.http.clear();
        self.tests.clear();
        self.median = None;
        self.up_tests.clear();
        self.up_median = None;
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.now.map_or(0, |s| ms(s.mono))
    }

    fn pop_mut(&mut self, class: u64) -> &mut Pop {
        match class {
            RTT => &mut self.rtt,
            DNS => &mut self.dns,
            _ => &mut self.http,
        }
    }

    /// Takes an expired bucket out of the window's sums.
    fn expire(&mut self, s: Slot) {
        self.samples -= u64::from(s.samples);
        self.loss_total -= u64::from(s.loss_total);
        self.loss_failed -= u64::from(s.loss_failed);
        self.loss_interference -= u64::from(s.loss_interference);
        for (class, c) in s.lat.iter().enumerate() {
            self.pop_mut(class as u64).remove_counts(*c);
        }
        for &(key, count) in &s.hist {
            let class = u64::from(key >> 12);
            self.pop_mut(class)
                .hist
                .remove_n(usize::from(key & 0xfff), u64::from(count));
        }
        let mut hist = s.hist;
        hist.clear();
        if hist.capacity() > self.spare.capacity() {
            self.spare = hist;
        }
    }

    /// Moves `now` forward (never back) and drops what left the window: a
    /// bucket leaves once its start is a whole window old.
    pub(super) fn advance(&mut self, at: Stamp, th: &Th) {
        if self.now.is_none_or(|n| at.mono > n.mono) {
            self.now = Some(at);
        }
        let now = self.now_ms();
        while self
            .slots
            .front()
            .is_some_and(|s| now.saturating_sub(s.start) >= th.window_ms)
        {
            if let Some(s) = self.slots.pop_front() {
                self.expire(s);
            }
        }
        if expire_tests(&mut self.tests, now, th) {
            self.median = median(self.tests.iter().map(|t| t.bps));
        }
        if expire_tests(&mut self.up_tests, now, th) {
            self.up_median = median(self.up_tests.iter().map(|t| t.bps));
        }
    }

    /// The bucket starting at `start`, made if missing (in order).
    fn slot_mut(&mut self, start: u64) -> &mut Slot {
        let n = self.slots.len();
        let i = match self.slots.back() {
            Some(b) if b.start == start => n - 1,
            Some(b) if b.start < start => n,
            None => 0,
            Some(_) => self.slots.partition_point(|s| s.start < start),
        };
        if self.slots.get(i).is_none_or(|s| s.start != start) {
            let hist = std::mem::take(&mut self.spare);
            self.slots.insert(i, Slot::new(start, hist));
        }
        &mut self.slots[i]
    }

    /// The tests of one direction, with their floor, downloads first.
    pub(super) fn directions<'a>(&'a self, th: &Th) -> [(&'a VecDeque<Test>, Option<f64>); 2] {
        [
            (&self.tests, th.throughput),
            (&self.up_tests, th.throughput_up),
        ]
    }

    /// Adds a sample; `None` if it was too old to count, else what it was
    /// for the end's dating.
    pub(super) fn push(&mut self, s: &Sample, th: &Th) -> Option<Fed> {
        self.advance(s.at, th);
        let at = ms(s.at.mono);
        if self.now_ms().saturating_sub(at) >= th.window_ms {
            return None;
        }
        let (class, a_thr, b_thr) = match s.kind {
            SampleKind::Icmp | SampleKind::Tcp => (RTT, th.rtt_p50, th.rtt_p95),
            SampleKind::Dns => (DNS, None, th.dns_p95),
            SampleKind::Http => (HTTP, None, th.http_p95),
            SampleKind::Throughput | SampleKind::ThroughputUpload => {
                let upload = s.kind == SampleKind::ThroughputUpload;
                if let Some(bps) = s.throughput_bps.filter(|b| s.success && b.is_finite())
                    && bps >= 0.0
                {
                    let at = Stamp {
                        wall: truncate_ms(s.at.wall),
                        mono: s.at.mono,
                    };
                    // `loaded_latency` stays the downloads' figure.
                    let increase = s
                        .loaded_increase
                        .filter(|_| !upload)
                        .map(|d| d.as_secs_f64());
                    let list = if upload {
                        &mut self.up_tests
                    } else {
                        &mut self.tests
                    };
                    let throttled =
                        s.interference == Some(crate::interference::Check::ThrottledName);
                    list.push_back(Test {
                        at,
                        bps,
                        increase,
                        throttled,
                    });
                    // The previous newest may have been kept only because it was the newest.
                    self.advance(s.at, th);
                    if upload {
                        self.up_median = median(self.up_tests.iter().map(|t| t.bps));
                    } else {
                        self.median = median(self.tests.iter().map(|t| t.bps));
                    }
                    return Some(Fed::Test(bps, increase, upload, throttled));
                }
                return Some(Fed::Nothing);
            }
        };
        let start = at - at % th.bucket_ms;
        if self.now_ms().saturating_sub(start) >= th.window_ms {
            return None;
        }
        let lat = s.latency.filter(|_| s.success).map(ns);
        let over = |thr: Option<u64>| matches!((lat, thr), (Some(l), Some(t)) if l > t);
        let e = Entry::new(
            at,
            lat.map_or(0, bucket),
            class,
            s.success,
            lat.is_some(),
            over(a_thr),
            over(b_thr),
        );
        let slot = self.slot_mut(start);
        slot.add(e, (at - start) as u16);
        let interfered = class != HTTP && !s.success && s.interference.is_some();
        slot.loss_interference += u32::from(interfered);
        self.samples += 1;
        if class != HTTP {
            self.loss_total += 1;
            self.loss_failed += u64::from(!s.success);
            self.loss_interference += u64::from(interfered);
        }
        if e.ok() && e.lat() {
            self.pop_mut(class).add(e);
        }
        Some(Fed::Probe(e))
    }

    /// The thresholds crossed now, as a bit mask of [`Trigger`]s.
    pub(super) fn crossing(&self, th: &Th) -> u8 {
        let mut m = 0;
        if let Some(l) = th.loss
            && self.loss_total >= th.min
            && self.loss_failed as f64 > l * self.loss_total as f64
        {
            m |= Trigger::Loss.bit();
        }
        let q = |p: &Pop, permille, over, thr: Option<u64>| {
            thr.is_some() && p.n() >= th.min && quantile_over(permille, p.n(), over)
        };
        if q(&self.rtt, P50, self.rtt.over_a, th.rtt_p50) {
            m |= Trigger::RttP50.bit();
        }
        if q(&self.rtt, P95, self.rtt.over_b, th.rtt_p95) {
            m |= Trigger::RttP95.bit();
        }
        if q(&self.dns, P95, self.dns.over_b, th.dns_p95) {
            m |= Trigger::DnsP95.bit();
        }
        if q(&self.http, P95, self.http.over_b, th.http_p95) {
            m |= Trigger::HttpP95.bit();
        }
        let below = |floor: Option<f64>, med: Option<f64>| matches!((floor, med), (Some(f), Some(m)) if m < f);
        if below(th.throughput, self.median) || below(th.throughput_up, self.up_median) {
            m |= Trigger::Throughput.bit();
        }
        if let (Some(thr), Some(med)) = (
            th.loaded,
            median(self.tests.iter().filter_map(|t| t.increase)),
        ) && med > thr
        {
            m |= Trigger::LoadedLatency.bit();
        }
        // The newest test of either direction (held like throughput) was
        // far below its control.
        if self.tests.back().is_some_and(|t| t.throttled)
            || self.up_tests.back().is_some_and(|t| t.throttled)
        {
            m |= Trigger::ThrottledName.bit();
        }
        m
    }

    /// The tests in the window from `from` (mono) on that were throttled,
    /// both directions.
    pub(super) fn throttled_since(&self, from: Duration) -> u64 {
        self.tests
            .iter()
            .chain(&self.up_tests)
            .filter(|t| t.throttled && t.at.mono >= from)
            .count() as u64
    }

    /// Lost probes in the window from `from` (mono) on, and those of them
    /// with an interference reason (by time bucket).
    pub(super) fn lost_since(&self, from: Duration) -> (u64, u64) {
        let from = ms(from);
        self.slots
            .iter()
            .filter(|s| s.last_ms() >= from)
            .fold((0, 0), |(n, i), s| {
                (
                    n + u64::from(s.loss_failed),
                    i + u64::from(s.loss_interference),
                )
            })
    }

    /// Whether some figure has enough samples to be judged.
    pub(super) fn judged(&self, th: &Th) -> bool {
        self.loss_total >= th.min
            || self.rtt.n() >= th.min
            || self.dns.n() >= th.min
            || self.http.n() >= th.min
            || !self.tests.is_empty()
            || !self.up_tests.is_empty()
    }

    pub(super) fn figures(&self) -> Figures {
        Figures {
            loss_ratio: (self.loss_total > 0)
                .then(|| self.loss_failed as f64 / self.loss_total as f64),
            rtt_p50_seconds: self.rtt.seconds(P50),
            rtt_p95_seconds: self.rtt.seconds(P95),
            dns_p95_seconds: self.dns.seconds(P95),
            http_p95_seconds: self.http.seconds(P95),
            throughput_bps: self.median,
            throughput_upload_bps: self.up_median,
            throughput_last_bps: self.tests.back().map(|t| t.bps),
            samples: self.samples,
        }
    }

    /// The moment with mono `ms`, its wall time derived from the newest sample's.
    pub(super) fn stamp_of(&self, at_ms: u64) -> Stamp {
        let mono = Duration::from_millis(at_ms);
        match self.now {
            Some(n) => {
                let back = n.mono.saturating_sub(mono);
                Stamp {
                    wall: truncate_ms(n.wall.checked_sub(back).unwrap_or(n.wall)),
                    mono,
                }
            }
            None => Stamp {
                wall: Timestamp::UNIX_EPOCH,
                mono,
            },
        }
    }

    /// The back-dated start of a trip on `mask`: per tripped figure, the
    /// change point of the window (see [`ChangePoint`]), dated to the
    /// first bad sample of its time bucket; the earliest of them. Also
    /// returns the number of probes from there on.
    pub(super) fn back_date(&self, mask: u8, th: &Th) -> (Stamp, u64) {
        let has = |t: Trigger| mask & t.bit() != 0;
        let mut cps = PopId::ALL.map(|p| ChangePoint::new(p.rate(th)));
        for s in self.slots.iter().rev() {
            for (p, cp) in PopId::ALL.into_iter().zip(&mut cps) {
                let (n, bad) = s.counts(p);
                match s.bad_span(p) {
                    Some(b) => cp.feed_bucket(n, bad, u64::from(b.since_first), s.at(b.first)),
                    None => cp.feed_bucket(n, 0, 0, 0),
                }
            }
        }
        let mut best: Option<u64> = None;
        for (p, cp) in PopId::ALL.into_iter().zip(&cps) {
            if has(p.trigger())
                && let Some(at) = cp.at
            {
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
        let mut start = best.map(|b| self.stamp_of(b));
        // Per direction whose floor is crossed: its own change point.
        let tripped = |med: Option<f64>, thr: f64| med.is_some_and(|m| m < thr);
        for ((tests, floor), med) in self
            .directions(th)
            .into_iter()
            .zip([self.median, self.up_median])
        {
            let Some(thr) = floor.filter(|f| has(Trigger::Throughput) && tripped(med, *f)) else {
                continue;
            };
            let mut cp = ChangePoint::new(0.5);
            let mut at = None;
            for t in tests.iter().rev() {
                let slow = t.bps < thr;
                cp.feed(slow, ms(t.at.mono));
                if slow && cp.at == Some(ms(t.at.mono)) {
                    at = Some(t.at);
                }
            }
            if let Some(at) = at
                && start.is_none_or(|s| at.mono < s.mono)
            {
                start = Some(at);
            }
        }
        // Throttled: the first test of the newest run of throttled ones.
        if has(Trigger::ThrottledName) {
            for tests in [&self.tests, &self.up_tests] {
                let first = tests
                    .iter()
                    .rev()
                    .take_while(|t| t.throttled)
                    .last()
                    .map(|t| t.at);
                if let Some(at) = first
                    && start.is_none_or(|s| at.mono < s.mono)
                {
                    start = Some(at);
                }
            }
        }
        let start = start
            .or(self.now.map(|n| self.stamp_of(ms(n.mono))))
            .unwrap_or(Stamp {
                wall: Timestamp::UNIX_EPOCH,
                mono: Duration::ZERO,
            });
        let from = ms(start.mono);
        let n = self
            .slots
            .iter()
            .filter(|s| s.last_ms() >= from)
            .map(|s| u64::from(s.samples))
            .sum();
        (start, n)
    }

    /// Heap bytes held by its time buckets (not the fixed histograms).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(Slot::heap_bytes).sum::<usize>()
            + self.spare.capacity() * std::mem::size_of::<(u16, u32)>()
    }

    /// Mono ms of the oldest sample in the window that counts against a
    /// threshold (the earliest a trip could still be back-dated to).
    pub(super) fn first_bad(&self, th: &Th) -> Option<u64> {
        let probe = self.slots.iter().find_map(|s| s.bad(th));
        let test = self
            .directions(th)
            .into_iter()
            .filter_map(|(tests, floor)| {
                tests
                    .iter()
                    .find(|t| t.throttled || floor.is_some_and(|thr| t.bps < thr))
                    .map(|t| ms(t.at.mono))
            })
            .min();
        match (probe, test) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// CUSUM change point over a window walked newest to oldest: among the bad
/// samples, the one from which on the count of bad samples exceeds the
/// threshold's rate `rate` (the loss ratio; 0.05 for a p95, 0.5 for a p50 or a
/// median) by the most. A step change is dated to its first bad sample; a
/// stray bad sample long before it adds `1 - rate·(samples since)`, which is
/// negative, so it does not pull the start back. Ties go to the later one:
/// the shorter claim.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChangePoint {
    pub(super) rate: f64,
    pub(super) n: u64,
    pub(super) bad: u64,
    pub(super) best: f64,
    pub(super) at: Option<u64>,
}

impl ChangePoint {
    pub(super) fn new(rate: f64) -> Self {
        Self {
            rate,
            n: 0,
            bad: 0,
            best: 0.0,
            at: None,
        }
    }

    /// Feeds a time bucket of `n` samples, `bad` of them bad, the oldest
    /// bad one at `first_bad` with `since` samples from it on: the sums at
    /// that sample are the ones a walk over the samples sees there (for a
    /// step change inside the bucket, its change point).
    pub(super) fn feed_bucket(&mut self, n: u64, bad: u64, since: u64, first_bad: u64) {
        if bad > 0 {
            let excess = (self.bad + bad) as f64 - self.rate * (self.n + since) as f64;
            if excess > self.best {
                self.best = excess;
                self.at = Some(first_bad);
            }
        }
        self.n += n;
        self.bad += bad;
    }

    pub(super) fn feed(&mut self, bad: bool, at: u64) {
        self.n += 1;
        if !bad {
            return;
        }
        self.bad += 1;
        let excess = self.bad as f64 - self.rate * self.n as f64;
        if excess > self.best {
            self.best = excess;
            self.at = Some(at);
        }
    }
}

/// What a sample pushed into the window was, for [`EndTrack`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Fed {
    Probe(Entry),
    /// A successful throughput test's goodput, latency increase, whether
    /// it was an upload, and whether it was throttled (`throttled_name`).
    Test(f64, Option<f64>, bool, bool),
    /// A failed test: no figure.
    Nothing,
}

/// Drops the tests that left the window, keeping the newest while `hold`
/// lasts; whether any went.
fn expire_tests(tests: &mut VecDeque<Test>, now: u64, th: &Th) -> bool {
    let mut changed = false;
    while let Some(t) = tests.front() {
        let age = now.saturating_sub(ms(t.at.mono));
        let newest = tests.len() == 1;
        if age < th.window_ms || (newest && age < th.hold_ms) {
            break;
        }
        tests.pop_front();
        changed = true;
    }
    changed
}
