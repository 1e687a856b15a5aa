//! The sliding window of one group: every probe sample of the last `window`,
//! packed in a ring, with the counters and histograms that make its figures
//! O(1) per sample, and the CUSUM change point that back-dates a trip.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

use super::figures::{Figures, Trigger, median};
use super::histogram::{Histogram, P50, P95, bucket, quantile_over};
use super::sample::{Sample, SampleKind, Thresholds};
use crate::outage::period::{Stamp, truncate_ms};

/// Most probe samples one group's window holds; beyond it the oldest are
/// expired early (the window then covers less time). 4 bytes each when
/// dense: 16 MiB.
pub const MAX_WINDOW_SAMPLES: usize = 1 << 22;

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
        }
    }
}

/// Probe classes in the ring.
pub(super) const RTT: u64 = 0;
pub(super) const DNS: u64 = 1;
pub(super) const HTTP: u64 = 2;

/// A probe sample packed in 8 bytes: mono ms (40 bits), bucket (12), class
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
    pub(super) fn ms(self) -> u64 {
        self.0 & MS_MASK
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
    /// Whether it counts against a configured threshold (for the cause wait).
    pub(super) fn bad(self, th: &Th) -> bool {
        (th.loss.is_some() && self.loss_class() && !self.ok()) || self.a() || self.b()
    }
}

/// Bits of an [`Entry`] other than its time (bucket, class, flags).
pub(super) const PAYLOAD_BITS: u32 = 18;
pub(super) const PAYLOAD_MASK: u64 = (1 << PAYLOAD_BITS) - 1;
/// A ring word with this bit set is a time marker, not a sample.
pub(super) const MARKER: u32 = 1 << 31;
/// A sample word's time delta: signed, in the bits above the payload.
pub(super) const DELTA_BITS: u32 = 31 - PAYLOAD_BITS;
pub(super) const DELTA_MIN: i64 = -(1 << (DELTA_BITS - 1));
pub(super) const DELTA_MAX: i64 = (1 << (DELTA_BITS - 1)) - 1;
/// A marker's delta: signed, 31 bits.
pub(super) const MARKER_MIN: i64 = -(1 << 30);
pub(super) const MARKER_MAX: i64 = (1 << 30) - 1;

/// The window's samples in arrival order, 4 bytes each.
///
/// A sample is stored as its payload and the difference of its time to the
/// previous sample's (13 signed bits: ±4 s, always enough at the rates where
/// memory matters); a larger difference (out-of-order results, sparse
/// targets) goes into a marker word before it, so such a sample takes 8
/// bytes, as an [`Entry`] does. The front sample's time is kept aside (its
/// stored delta is zeroed when it becomes the front), the back one's too, so
/// both ends decode in O(1) and a walk from the back subtracts the deltas.
#[derive(Debug, Clone, Default)]
pub(super) struct Ring {
    pub(super) words: Words,
    /// Samples held (markers not counted).
    pub(super) len: usize,
    pub(super) front_ms: u64,
    pub(super) back_ms: u64,
}

/// Words per chunk of [`Words`] (16 KiB).
pub(super) const CHUNK: usize = 4096;

/// A deque of `u32` in fixed chunks: memory follows the length (one chunk
/// of slack at each end) instead of doubling, and growing never copies.
#[derive(Debug, Clone, Default)]
pub(super) struct Words {
    pub(super) chunks: VecDeque<Box<[u32; CHUNK]>>,
    /// Index of the first word in the first chunk.
    pub(super) head: usize,
    pub(super) len: usize,
    /// An emptied chunk kept for the next push (no allocation per chunk
    /// in the steady state).
    pub(super) spare: Option<Box<[u32; CHUNK]>>,
}

impl Words {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn clear(&mut self) {
        if self.spare.is_none() {
            self.spare = self.chunks.pop_front();
        }
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }

    pub(super) fn push_back(&mut self, w: u32) {
        let end = self.head + self.len;
        if end == self.chunks.len() * CHUNK {
            let chunk = self.spare.take().unwrap_or_else(|| Box::new([0; CHUNK]));
            self.chunks.push_back(chunk);
        }
        if let Some(c) = self.chunks.back_mut() {
            c[end % CHUNK] = w;
        }
        self.len += 1;
    }

    pub(super) fn front_mut(&mut self) -> Option<&mut u32> {
        if self.len == 0 {
            return None;
        }
        let head = self.head;
        self.chunks.front_mut().map(|c| &mut c[head])
    }

    pub(super) fn front(&self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.chunks.front().map(|c| c[self.head])
    }

    pub(super) fn pop_front(&mut self) -> Option<u32> {
        let w = self.front()?;
        self.len -= 1;
        self.head += 1;
        if self.head == CHUNK || self.len == 0 {
            if let Some(c) = self.chunks.pop_front() {
                self.spare = Some(c);
            }
            self.head = 0;
            if self.len == 0 {
                self.chunks.clear();
            }
        }
        Some(w)
    }

    /// The words, last first.
    pub(super) fn iter_rev(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len)
            .rev()
            .map(move |i| self.chunks[(self.head + i) / CHUNK][(self.head + i) % CHUNK])
    }
}

pub(super) fn sample_word(payload: u64, delta: i64) -> u32 {
    let d = (delta as u32) & ((1 << DELTA_BITS) - 1);
    (d << PAYLOAD_BITS) | payload as u32
}

pub(super) fn marker_word(delta: i64) -> u32 {
    MARKER | ((delta as u32) & !MARKER)
}

/// The signed delta of a word (sample or marker).
pub(super) fn word_delta(w: u32) -> i64 {
    if w & MARKER != 0 {
        // Sign-extend 31 bits.
        i64::from(((w << 1) as i32) >> 1)
    } else {
        i64::from(((w << 1) as i32) >> (PAYLOAD_BITS + 1))
    }
}

pub(super) fn entry_of(w: u32, ms: u64) -> Entry {
    Entry((ms & MS_MASK) | ((u64::from(w) & PAYLOAD_MASK) << 40))
}

impl Ring {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    pub(super) fn push_back(&mut self, e: Entry) {
        let payload = (e.0 >> 40) & PAYLOAD_MASK;
        let ms = e.ms();
        if self.len == 0 {
            self.words.clear();
            self.front_ms = ms;
            self.back_ms = ms;
            self.words.push_back(sample_word(payload, 0));
            self.len = 1;
            return;
        }
        let mut delta = ms.wrapping_sub(self.back_ms) as i64;
        while !(DELTA_MIN..=DELTA_MAX).contains(&delta) {
            let step = delta.clamp(MARKER_MIN, MARKER_MAX);
            self.words.push_back(marker_word(step));
            delta -= step;
        }
        self.words.push_back(sample_word(payload, delta));
        self.back_ms = ms;
        self.len += 1;
    }

    pub(super) fn front(&self) -> Option<Entry> {
        self.words.front().map(|w| entry_of(w, self.front_ms))
    }

    pub(super) fn pop_front(&mut self) -> Option<Entry> {
        let e = self.front()?;
        self.words.pop_front();
        self.len -= 1;
        let mut ms = self.front_ms;
        while let Some(w) = self.words.front_mut() {
            ms = ms.wrapping_add(word_delta(*w) as u64);
            if *w & MARKER != 0 {
                self.words.pop_front();
            } else {
                // The new front: its time is kept aside, its delta spent.
                *w = sample_word(u64::from(*w) & PAYLOAD_MASK, 0);
                break;
            }
        }
        self.front_ms = ms;
        Some(e)
    }

    /// The samples, newest first.
    pub(super) fn iter_rev(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut ms = self.back_ms;
        self.words.iter_rev().filter_map(move |w| {
            let at = ms;
            ms = ms.wrapping_sub(word_delta(w) as u64);
            (w & MARKER == 0).then(|| entry_of(w, at))
        })
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
    pub(super) fn apply(&mut self, e: Entry, add: bool) {
        if add {
            self.hist.add_bucket(e.bucket());
            self.over_a += u64::from(e.a());
            self.over_b += u64::from(e.b());
        } else {
            self.hist.remove_bucket(e.bucket());
            self.over_a -= u64::from(e.a());
            self.over_b -= u64::from(e.b());
        }
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
}

/// The sliding window of one group.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub(super) ring: Ring,
    /// Mono ms of the ring's bad entries, oldest first.
    pub(super) bad: VecDeque<u64>,
    pub(super) loss_total: u64,
    pub(super) loss_failed: u64,
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
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            ring: Ring::default(),
            bad: VecDeque::new(),
            loss_total: 0,
            loss_failed: 0,
            rtt: Pop::default(),
            dns: Pop::default(),
            http: Pop::default(),
            tests: VecDeque::new(),
            median: None,
            up_tests: VecDeque::new(),
            up_median: None,
            now: None,
        }
    }

    pub(super) fn clear(&mut self) {
        self.ring.clear();
        self.bad.clear();
        self.loss_total = 0;
        self.loss_failed = 0;
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

    pub(super) fn apply(&mut self, e: Entry, add: bool) {
        let class = e.class();
        if class != HTTP {
            if add {
                self.loss_total += 1;
                self.loss_failed += u64::from(!e.ok());
            } else {
                self.loss_total -= 1;
                self.loss_failed -= u64::from(!e.ok());
            }
        }
        if e.ok() && e.lat() {
            match class {
                RTT => self.rtt.apply(e, add),
                DNS => self.dns.apply(e, add),
                _ => self.http.apply(e, add),
            }
        }
    }

    /// Moves `now` forward (never back) and drops what left the window.
    pub(super) fn advance(&mut self, at: Stamp, th: &Th) {
        if self.now.is_none_or(|n| at.mono > n.mono) {
            self.now = Some(at);
        }
        let now = self.now_ms();
        while let Some(e) = self.ring.front() {
            if now.saturating_sub(e.ms()) < th.window_ms && self.ring.len() <= MAX_WINDOW_SAMPLES {
                break;
            }
            self.ring.pop_front();
            self.apply(e, false);
            if e.bad(th) && self.bad.front().is_some_and(|b| *b == e.ms()) {
                self.bad.pop_front();
            }
        }
        // The bad list is only a lower bound for the cause wait: drop what is older
        // than the window even if its entry was popped out of order.
        while self
            .bad
            .front()
            .is_some_and(|b| now.saturating_sub(*b) >= th.window_ms)
        {
            self.bad.pop_front();
        }
        if expire_tests(&mut self.tests, now, th) {
            self.median = median(self.tests.iter().map(|t| t.bps));
        }
        if expire_tests(&mut self.up_tests, now, th) {
            self.up_median = median(self.up_tests.iter().map(|t| t.bps));
        }
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
                    list.push_back(Test { at, bps, increase });
                    // The previous newest may have been kept only because it was the newest.
                    self.advance(s.at, th);
                    if upload {
                        self.up_median = median(self.up_tests.iter().map(|t| t.bps));
                    } else {
                        self.median = median(self.tests.iter().map(|t| t.bps));
                    }
                    return Some(Fed::Test(bps, increase, upload));
                }
                return Some(Fed::Nothing);
            }
        };
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
        self.ring.push_back(e);
        self.apply(e, true);
        if e.bad(th) {
            self.bad.push_back(at);
        }
        if self.ring.len() > MAX_WINDOW_SAMPLES {
            self.advance(s.at, th);
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
        m
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
            samples: self.ring.len() as u64,
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
    /// change point of the window (see [`ChangePoint`]); the earliest of them.
    /// Also returns the number of probes from there on.
    pub(super) fn back_date(&self, mask: u8, th: &Th) -> (Stamp, u64) {
        let has = |t: Trigger| mask & t.bit() != 0;
        let mut loss = ChangePoint::new(th.loss.unwrap_or(1.0));
        let mut p50 = ChangePoint::new(0.5);
        let mut rtt95 = ChangePoint::new(0.05);
        let mut dns95 = ChangePoint::new(0.05);
        let mut http95 = ChangePoint::new(0.05);
        for e in self.ring.iter_rev() {
            let at = e.ms();
            if e.loss_class() {
                loss.feed(!e.ok(), at);
            }
            if !(e.ok() && e.lat()) {
                continue;
            }
            match e.class() {
                RTT => {
                    p50.feed(e.a(), at);
                    rtt95.feed(e.b(), at);
                }
                DNS => dns95.feed(e.b(), at),
                _ => http95.feed(e.b(), at),
            }
        }
        let mut best: Option<u64> = None;
        for (t, cp) in [
            (Trigger::Loss, &loss),
            (Trigger::RttP50, &p50),
            (Trigger::RttP95, &rtt95),
            (Trigger::DnsP95, &dns95),
            (Trigger::HttpP95, &http95),
        ] {
            if has(t)
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
        let start = start
            .or(self.now.map(|n| self.stamp_of(ms(n.mono))))
            .unwrap_or(Stamp {
                wall: Timestamp::UNIX_EPOCH,
                mono: Duration::ZERO,
            });
        let from = ms(start.mono);
        let n = self.ring.iter_rev().filter(|e| e.ms() >= from).count() as u64;
        (start, n)
    }

    /// Mono ms of the oldest sample in the window that counts against a
    /// threshold (the earliest a trip could still be back-dated to).
    pub(super) fn first_bad(&self, th: &Th) -> Option<u64> {
        let probe = self.bad.front().copied();
        let test = self
            .directions(th)
            .into_iter()
            .filter_map(|(tests, floor)| {
                let thr = floor?;
                tests.iter().find(|t| t.bps < thr).map(|t| ms(t.at.mono))
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
    /// A successful throughput test's goodput, latency increase, and
    /// whether it was an upload.
    Test(f64, Option<f64>, bool),
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
