//! Degradation windows: a pure state machine (no I/O, no clock of its own) fed
//! probe samples with their wall and monotonic times ([`Stamp`]) and the groups'
//! up/down states from the outage [`Detector`](super::detector::Detector); it
//! emits degradation events and exposes the window figures for metrics.
//!
//! Rules (the DESIGN contract, plus the decisions noted here):
//! - Per group, a sliding window of the last `window` holds every probe sample
//!   (`mono` in milliseconds; a sample is in the window while
//!   `now - mono < window`, `now` being the newest sample or tick of the group).
//! - Figures: `loss_ratio` = failed / all over ICMP, TCP and DNS probes. HTTP is
//!   left out: an HTTP failure is as often the server's answer (a 5xx, a TLS
//!   error) as the network, and the issue defines loss over ICMP/TCP/DNS.
//!   `rtt_p50`/`rtt_p95` over successful ICMP/TCP probes, `dns_p95` and
//!   `http_p95` over successful DNS/HTTP probes (their total duration). Failed
//!   probes carry no latency and only count towards loss.
//! - Quantiles are nearest-rank (the `ceil(q·n)`-th smallest). Whether a
//!   quantile is over its threshold is decided exactly (each sample is compared
//!   with the threshold when it arrives and counted), so only the reported
//!   values carry the histogram's error (see [`Histogram`]).
//! - Each figure needs at least `min_samples` samples of its own population in
//!   the window (a p95 of three probes is noise). Throughput has its own rule:
//!   its figure is the median of the successful tests in the window plus the
//!   last successful test while it is younger than `throughput_hold` (tests run
//!   30 minutes apart, so the last one stands for the link until the next);
//!   one test is enough. Failed or partial tests are never figures.
//! - A degradation *trips* when a figure crosses its threshold. Its start is
//!   back-dated to the window's change point for that figure: the "bad" sample
//!   (a loss, an RTT over the threshold, a slow test) from which on the bad
//!   samples exceed the threshold's rate by the most (CUSUM), so the figure
//!   over the rest of the window is over its threshold from there; a step
//!   change is dated to its first bad sample and a stray old one is ignored.
//!   With several triggers, the earliest of their change points.
//! - A tripped degradation is *pending* (the gauge already says degraded) and is
//!   announced only when (a) `settle` has passed since the trip, so that a
//!   failing streak about to become an outage does not leave a degradation in
//!   the journal (the caller sets `settle` to the time the outage detector needs
//!   to call the group down), and (b) its cause is settled.
//! - `cause`: the farthest-upstream group on the `needs` chain that is degraded
//!   (pending, open or ended) or down at the start. An upstream period counts
//!   if it began no later than `start + window/10` (two groups seeing the same
//!   fault date it from their own first bad sample, seconds apart) and had not
//!   ended before `start`. While an upstream group could still trip with such a
//!   start (it has bad samples dated before that moment in its window) the
//!   announcement waits: at most one upstream window.
//! - A degradation ends when every figure has been on the good side for a whole
//!   `window` (hysteresis); the end is back-dated to the first evaluation that
//!   found every figure good, as outages end at the first success.
//! - Down supersedes: when the caller reports a group down, an open degradation
//!   ends at the (back-dated) start of the down period (`superseded: true`), a
//!   pending one is dropped, and the window is cleared; samples are ignored
//!   while down, and after the group is up again only samples from the up
//!   moment on count, so an outage's failures never read as loss afterwards.
//! - Durations are monotonic differences; an end's wall time is the start's wall
//!   time plus that duration. Wall times of window samples are derived from the
//!   newest sample's wall time minus the monotonic difference, at milliseconds.
//! - Ids are `<start unix ms>-<group>-degraded` (a `-N` suffix if taken): they
//!   never collide with outage ids (`<ms>-<group>`) of the same journal.
//! - Cost: amortised O(1) per sample (ring push/pop, histogram add/remove,
//!   counter updates, an O(1) threshold check); O(window samples) once per
//!   trip for back-dating. Memory per group: three histograms of
//!   [`BUCKETS`] × 4 bytes (13.8 KiB), 4 bytes per probe sample in the window
//!   in the ring (8 for a sample more than 4 s from the one before it: a
//!   sparse or out-of-order one), in 16 KiB chunks, plus 8 bytes per "bad"
//!   sample in the window, capped at
//!   [`MAX_WINDOW_SAMPLES`] samples whatever the rate (the oldest are expired
//!   early beyond it); 32 KiB of period histograms while a degradation is open.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::detector::{Stamp, State, truncate_ms};
use super::event::{DurationClock, EndReason, Gap};
use super::ids::Ids;
use super::ts_ms;

/// Thresholds of one group (`[group.degraded]`, resolved by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub window: Duration,
    /// Samples of a figure's own population needed before it may trip.
    pub min_samples: u32,
    /// Ratio 0..1.
    pub loss_above: Option<f64>,
    pub rtt_p50_above: Option<Duration>,
    pub rtt_p95_above: Option<Duration>,
    /// Bits per second (a percentage of the plan already resolved).
    pub throughput_below: Option<f64>,
    /// How long the last successful throughput test stands for the link when
    /// no newer one exists (e.g. 1.5 × the longest throughput interval of the
    /// group, allowing for jitter); never less than `window`.
    pub throughput_hold: Duration,
    pub dns_p95_above: Option<Duration>,
    pub http_p95_above: Option<Duration>,
    /// Latency under load: the median increase of the window's tests (and
    /// the last one, held like throughput) above this trips `loaded_latency`.
    pub loaded_latency_above: Option<Duration>,
}

/// One group as the degradation tracker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// Index of the group this one needs.
    pub needs: Option<usize>,
    pub thresholds: Thresholds,
    /// Minimum wait between a trip and its announcement: the time the outage
    /// detector needs to call the group down (`fail_after` × the longest
    /// probe interval of its targets).
    pub settle: Duration,
}

/// What kind of probe a sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Icmp,
    Tcp,
    Http,
    Dns,
    Throughput,
}

/// One probe result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub group: usize,
    pub at: Stamp,
    pub kind: SampleKind,
    pub success: bool,
    /// RTT (ICMP/TCP) or total duration (DNS/HTTP) of a success.
    pub latency: Option<Duration>,
    /// Goodput of a successful throughput test.
    pub throughput_bps: Option<f64>,
    /// Its latency under load over idle (graded tests only).
    pub loaded_increase: Option<Duration>,
}

/// A threshold that was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Loss,
    RttP50,
    RttP95,
    Throughput,
    DnsP95,
    HttpP95,
    LoadedLatency,
}

impl Trigger {
    pub const ALL: [Trigger; 7] = [
        Trigger::Loss,
        Trigger::RttP50,
        Trigger::RttP95,
        Trigger::Throughput,
        Trigger::DnsP95,
        Trigger::HttpP95,
        Trigger::LoadedLatency,
    ];
    const N: usize = Trigger::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Loss => "loss",
            Trigger::RttP50 => "rtt_p50",
            Trigger::RttP95 => "rtt_p95",
            Trigger::Throughput => "throughput",
            Trigger::DnsP95 => "dns_p95",
            Trigger::HttpP95 => "http_p95",
            Trigger::LoadedLatency => "loaded_latency",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn list(mask: u8) -> Vec<Trigger> {
        Trigger::ALL
            .into_iter()
            .filter(|t| mask & t.bit() != 0)
            .collect()
    }
}

/// Window figures (`None`: no sample of that kind in the window).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Figures {
    pub loss_ratio: Option<f64>,
    pub rtt_p50_seconds: Option<f64>,
    pub rtt_p95_seconds: Option<f64>,
    pub dns_p95_seconds: Option<f64>,
    pub http_p95_seconds: Option<f64>,
    /// Median of the window's tests and the last test.
    pub throughput_bps: Option<f64>,
    /// The last successful test, while it still counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_last_bps: Option<f64>,
    /// Probes (all kinds but throughput) in the window.
    pub samples: u64,
}

/// Figures over a whole degradation: the window figures are sampled once a
/// second (monotonic) from the announcement to the end, while a figure is
/// over its threshold (not over the clean window that confirms the end).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PeriodFigures {
    /// Medians of the sampled figures (`samples`: the median window count).
    pub median: Figures,
    /// Worst values: highest loss and latencies, lowest throughput
    /// (`samples`: the smallest window count).
    pub worst: Figures,
    /// How many times the window figures were sampled.
    pub snapshots: u64,
    /// Probes seen from the back-dated start to the end.
    pub samples: u64,
    /// Successful throughput tests in the same period.
    pub throughput_tests: u64,
    /// Failed over all ICMP/TCP/DNS probes from the start to the recorded
    /// end: the loss the period itself saw (the medians above are of the
    /// sliding window, which at the edges also holds probes from outside
    /// the period). Absent in older journals and without such probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_ratio: Option<f64>,
}

/// `degraded_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedStarted {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    pub triggers: Vec<Trigger>,
    /// Window figures when it tripped.
    pub figures: Figures,
}

/// A degradation open when the previous run ended is still on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedResumed {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// From the last moment seen degraded to the back-dated start seen again.
    pub gap: Gap,
    pub triggers: Vec<Trigger>,
    pub figures: Figures,
}

/// `degraded_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedEnded {
    pub id: String,
    pub group: String,
    pub cause: String,
    #[serde(with = "ts_ms")]
    pub start: Timestamp,
    /// With `end_observed: false`: the last moment it was known degraded.
    #[serde(with = "ts_ms")]
    pub end: Timestamp,
    pub duration_seconds: f64,
    pub duration_clock: DurationClock,
    pub end_observed: bool,
    /// Ended because the group went down (an outage follows).
    pub superseded: bool,
    /// Every threshold crossed during the period.
    pub triggers: Vec<Trigger>,
    pub figures: PeriodFigures,
    pub gaps: Vec<Gap>,
    /// Why it ended when not by the figures recovering or the group going
    /// down: a reload removed (`removed`) or redefined (`reconfigured`) its
    /// group. Absent otherwise (and in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
}

/// What the tracker reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DegradationEvent {
    Started(DegradedStarted),
    Resumed(DegradedResumed),
    Ended(DegradedEnded),
}

/// A degradation left open by a previous run, handed to [`Degradations::adopt`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptedDegradation {
    pub id: String,
    pub cause: String,
    pub start: Timestamp,
    pub triggers: Vec<Trigger>,
    pub gaps: Vec<Gap>,
    /// The last moment it was known to be on (the previous run's last sign of life).
    pub last_seen: Timestamp,
}

// ---------------------------------------------------------------------------
// Histogram

/// Linear sub-buckets per power of two (5 bits).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Largest value kept apart (ns: about 1100 s); larger ones share the last bucket.
const MAX_VALUE: u64 = (1 << 40) - 1;
/// Number of buckets of a [`Histogram`].
pub const BUCKETS: usize = bucket(MAX_VALUE) + 1;

/// Bucket of `v`: log-linear (HDR-style), 32 linear sub-buckets per power of
/// two; values below 32 have a bucket each.
const fn bucket(v: u64) -> usize {
    let v = if v > MAX_VALUE { MAX_VALUE } else { v };
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// Lowest value of bucket `b` and its width.
fn bucket_bounds(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, 1);
    }
    let shift = b / SUB - 1;
    ((SUB + b % SUB) << shift, 1 << shift)
}

/// The value a bucket stands for: its midpoint (exact below 32).
fn representative(b: usize) -> f64 {
    let (lo, w) = bucket_bounds(b);
    if w == 1 {
        lo as f64
    } else {
        lo as f64 + (w as f64 - 1.0) / 2.0
    }
}

/// A fixed log-linear histogram of `u64` values with add and remove.
///
/// Resolution: 32 linear sub-buckets per power of two, so a bucket is at most
/// 1/32 of its lower bound wide and a reported quantile (the bucket midpoint)
/// is within 1/64 = 1.6 % of the exact one. At the LAN scale (0.2–2 ms,
/// buckets 4–32 µs wide in ns units) and the internet scale (20–300 ms) a
/// 20 % change moves a figure by at least 6 buckets, well clear of the error.
/// Range 1 ns to about 1100 s in ns units; [`BUCKETS`] counters of 4 bytes.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u32]>,
    total: u64,
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

    fn add_bucket(&mut self, b: usize) {
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total += 1;
    }

    fn remove_bucket(&mut self, b: usize) {
        if self.counts[b] > 0 {
            self.counts[b] -= 1;
            self.total -= 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// Bucket of the nearest-rank quantile (`permille`/1000).
    fn quantile_bucket(&self, permille: u64) -> Option<usize> {
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

    /// The nearest-rank quantile (`permille`/1000), to within 1.6 %.
    pub fn quantile(&self, permille: u64) -> Option<f64> {
        self.quantile_bucket(permille).map(representative)
    }
}

/// `ceil(q·n)` for q = `permille`/1000, in 1..=n; `None` when n = 0.
fn rank(permille: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (permille * n).div_ceil(1000).clamp(1, n))
}

/// Whether the nearest-rank quantile of `n` samples, `over` of them above the
/// threshold, is above the threshold.
fn quantile_over(permille: u64, n: u64, over: u64) -> bool {
    rank(permille, n).is_some_and(|r| over > n - r)
}

// ---------------------------------------------------------------------------
// Window

/// Most probe samples one group's window holds; beyond it the oldest are
/// expired early (the window then covers less time). 4 bytes each when
/// dense: 16 MiB.
pub const MAX_WINDOW_SAMPLES: usize = 1 << 22;

const P50: u64 = 500;
const P95: u64 = 950;

/// Thresholds in the units the window works in.
#[derive(Debug, Clone)]
struct Th {
    window_ms: u64,
    window: Duration,
    min: u64,
    loss: Option<f64>,
    rtt_p50: Option<u64>,
    rtt_p95: Option<u64>,
    dns_p95: Option<u64>,
    http_p95: Option<u64>,
    throughput: Option<f64>,
    hold_ms: u64,
    /// `loaded_latency_above`, seconds.
    loaded: Option<f64>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Th {
    fn new(t: &Thresholds) -> Self {
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
            hold_ms: ms(t.throughput_hold).max(window_ms),
            loaded: t.loaded_latency_above.map(|d| d.as_secs_f64()),
        }
    }
}

/// Probe classes in the ring.
const RTT: u64 = 0;
const DNS: u64 = 1;
const HTTP: u64 = 2;

/// A probe sample packed in 8 bytes: mono ms (40 bits), bucket (12), class
/// (2), success, latency present, over threshold A (RTT p50), over threshold
/// B (the class's p95).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry(u64);

const MS_MASK: u64 = (1 << 40) - 1;

impl Entry {
    fn new(ms: u64, bucket: usize, class: u64, ok: bool, lat: bool, a: bool, b: bool) -> Self {
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
    fn ms(self) -> u64 {
        self.0 & MS_MASK
    }
    fn bucket(self) -> usize {
        ((self.0 >> 40) & 0xfff) as usize
    }
    fn class(self) -> u64 {
        (self.0 >> 52) & 3
    }
    fn ok(self) -> bool {
        self.0 >> 54 & 1 == 1
    }
    fn lat(self) -> bool {
        self.0 >> 55 & 1 == 1
    }
    fn a(self) -> bool {
        self.0 >> 56 & 1 == 1
    }
    fn b(self) -> bool {
        self.0 >> 57 & 1 == 1
    }
    fn loss_class(self) -> bool {
        self.class() != HTTP
    }
    /// Whether it counts against a configured threshold (for the cause wait).
    fn bad(self, th: &Th) -> bool {
        (th.loss.is_some() && self.loss_class() && !self.ok()) || self.a() || self.b()
    }
}

/// Bits of an [`Entry`] other than its time (bucket, class, flags).
const PAYLOAD_BITS: u32 = 18;
const PAYLOAD_MASK: u64 = (1 << PAYLOAD_BITS) - 1;
/// A ring word with this bit set is a time marker, not a sample.
const MARKER: u32 = 1 << 31;
/// A sample word's time delta: signed, in the bits above the payload.
const DELTA_BITS: u32 = 31 - PAYLOAD_BITS;
const DELTA_MIN: i64 = -(1 << (DELTA_BITS - 1));
const DELTA_MAX: i64 = (1 << (DELTA_BITS - 1)) - 1;
/// A marker's delta: signed, 31 bits.
const MARKER_MIN: i64 = -(1 << 30);
const MARKER_MAX: i64 = (1 << 30) - 1;

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
struct Ring {
    words: Words,
    /// Samples held (markers not counted).
    len: usize,
    front_ms: u64,
    back_ms: u64,
}

/// Words per chunk of [`Words`] (16 KiB).
const CHUNK: usize = 4096;

/// A deque of `u32` in fixed chunks: memory follows the length (one chunk
/// of slack at each end) instead of doubling, and growing never copies.
#[derive(Debug, Clone, Default)]
struct Words {
    chunks: VecDeque<Box<[u32; CHUNK]>>,
    /// Index of the first word in the first chunk.
    head: usize,
    len: usize,
    /// An emptied chunk kept for the next push (no allocation per chunk
    /// in the steady state).
    spare: Option<Box<[u32; CHUNK]>>,
}

impl Words {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        if self.spare.is_none() {
            self.spare = self.chunks.pop_front();
        }
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }

    fn push_back(&mut self, w: u32) {
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

    fn front_mut(&mut self) -> Option<&mut u32> {
        if self.len == 0 {
            return None;
        }
        let head = self.head;
        self.chunks.front_mut().map(|c| &mut c[head])
    }

    fn front(&self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.chunks.front().map(|c| c[self.head])
    }

    fn pop_front(&mut self) -> Option<u32> {
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
    fn iter_rev(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len)
            .rev()
            .map(move |i| self.chunks[(self.head + i) / CHUNK][(self.head + i) % CHUNK])
    }
}

fn sample_word(payload: u64, delta: i64) -> u32 {
    let d = (delta as u32) & ((1 << DELTA_BITS) - 1);
    (d << PAYLOAD_BITS) | payload as u32
}

fn marker_word(delta: i64) -> u32 {
    MARKER | ((delta as u32) & !MARKER)
}

/// The signed delta of a word (sample or marker).
fn word_delta(w: u32) -> i64 {
    if w & MARKER != 0 {
        // Sign-extend 31 bits.
        i64::from(((w << 1) as i32) >> 1)
    } else {
        i64::from(((w << 1) as i32) >> (PAYLOAD_BITS + 1))
    }
}

fn entry_of(w: u32, ms: u64) -> Entry {
    Entry((ms & MS_MASK) | ((u64::from(w) & PAYLOAD_MASK) << 40))
}

impl Ring {
    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    fn push_back(&mut self, e: Entry) {
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

    fn front(&self) -> Option<Entry> {
        self.words.front().map(|w| entry_of(w, self.front_ms))
    }

    fn pop_front(&mut self) -> Option<Entry> {
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
    fn iter_rev(&self) -> impl Iterator<Item = Entry> + '_ {
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
struct Pop {
    hist: Histogram,
    over_a: u64,
    over_b: u64,
}

impl Pop {
    fn n(&self) -> u64 {
        self.hist.total
    }
    fn apply(&mut self, e: Entry, add: bool) {
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
    fn clear(&mut self) {
        self.hist.clear();
        self.over_a = 0;
        self.over_b = 0;
    }
    fn seconds(&self, permille: u64) -> Option<f64> {
        self.hist.quantile(permille).map(|v| v / 1e9)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Test {
    at: Stamp,
    bps: f64,
    /// Latency under load over idle, seconds.
    increase: Option<f64>,
}

/// The sliding window of one group.
#[derive(Debug, Clone)]
struct Window {
    ring: Ring,
    /// Mono ms of the ring's bad entries, oldest first.
    bad: VecDeque<u64>,
    loss_total: u64,
    loss_failed: u64,
    rtt: Pop,
    dns: Pop,
    http: Pop,
    /// Successful tests in the window, and the newest while held.
    tests: VecDeque<Test>,
    median: Option<f64>,
    now: Option<Stamp>,
}

impl Window {
    fn new() -> Self {
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
            now: None,
        }
    }

    fn clear(&mut self) {
        self.ring.clear();
        self.bad.clear();
        self.loss_total = 0;
        self.loss_failed = 0;
        self.rtt.clear();
        self.dns.clear();
        self.http.clear();
        self.tests.clear();
        self.median = None;
    }

    fn now_ms(&self) -> u64 {
        self.now.map_or(0, |s| ms(s.mono))
    }

    fn apply(&mut self, e: Entry, add: bool) {
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
    fn advance(&mut self, at: Stamp, th: &Th) {
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
        let mut changed = false;
        while let Some(t) = self.tests.front() {
            let age = now.saturating_sub(ms(t.at.mono));
            let newest = self.tests.len() == 1;
            if age < th.window_ms || (newest && age < th.hold_ms) {
                break;
            }
            self.tests.pop_front();
            changed = true;
        }
        if changed {
            self.median = median(self.tests.iter().map(|t| t.bps));
        }
    }

    /// Adds a sample; `None` if it was too old to count, else what it was
    /// for the end's dating.
    fn push(&mut self, s: &Sample, th: &Th) -> Option<Fed> {
        self.advance(s.at, th);
        let at = ms(s.at.mono);
        if self.now_ms().saturating_sub(at) >= th.window_ms {
            return None;
        }
        let (class, a_thr, b_thr) = match s.kind {
            SampleKind::Icmp | SampleKind::Tcp => (RTT, th.rtt_p50, th.rtt_p95),
            SampleKind::Dns => (DNS, None, th.dns_p95),
            SampleKind::Http => (HTTP, None, th.http_p95),
            SampleKind::Throughput => {
                if let Some(bps) = s.throughput_bps.filter(|b| s.success && b.is_finite())
                    && bps >= 0.0
                {
                    let at = Stamp {
                        wall: truncate_ms(s.at.wall),
                        mono: s.at.mono,
                    };
                    let increase = s.loaded_increase.map(|d| d.as_secs_f64());
                    self.tests.push_back(Test { at, bps, increase });
                    // The previous newest may have been kept only because it was the newest.
                    self.advance(s.at, th);
                    self.median = median(self.tests.iter().map(|t| t.bps));
                    return Some(Fed::Test(bps, increase));
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
    fn crossing(&self, th: &Th) -> u8 {
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
        if let (Some(thr), Some(med)) = (th.throughput, self.median)
            && med < thr
        {
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
    fn judged(&self, th: &Th) -> bool {
        self.loss_total >= th.min
            || self.rtt.n() >= th.min
            || self.dns.n() >= th.min
            || self.http.n() >= th.min
            || !self.tests.is_empty()
    }

    fn figures(&self) -> Figures {
        Figures {
            loss_ratio: (self.loss_total > 0)
                .then(|| self.loss_failed as f64 / self.loss_total as f64),
            rtt_p50_seconds: self.rtt.seconds(P50),
            rtt_p95_seconds: self.rtt.seconds(P95),
            dns_p95_seconds: self.dns.seconds(P95),
            http_p95_seconds: self.http.seconds(P95),
            throughput_bps: self.median,
            throughput_last_bps: self.tests.back().map(|t| t.bps),
            samples: self.ring.len() as u64,
        }
    }

    /// The moment with mono `ms`, its wall time derived from the newest sample's.
    fn stamp_of(&self, at_ms: u64) -> Stamp {
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
    fn back_date(&self, mask: u8, th: &Th) -> (Stamp, u64) {
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
        if has(Trigger::Throughput)
            && let Some(thr) = th.throughput
        {
            let mut cp = ChangePoint::new(0.5);
            let mut at = None;
            for t in self.tests.iter().rev() {
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
    fn first_bad(&self, th: &Th) -> Option<u64> {
        let probe = self.bad.front().copied();
        let test = th.throughput.and_then(|thr| {
            self.tests
                .iter()
                .find(|t| t.bps < thr)
                .map(|t| ms(t.at.mono))
        });
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
struct ChangePoint {
    rate: f64,
    n: u64,
    bad: u64,
    best: f64,
    at: Option<u64>,
}

impl ChangePoint {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            n: 0,
            bad: 0,
            best: 0.0,
            at: None,
        }
    }

    fn feed(&mut self, bad: bool, at: u64) {
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
enum Fed {
    Probe(Entry),
    /// A successful throughput test's goodput and latency increase.
    Test(f64, Option<f64>),
    /// A failed test: no figure.
    Nothing,
}

/// Dates a period's end from the evidence: per trigger, a forward CUSUM
/// over the period's samples in order, `Σ (bad − rate)`, with `rate` the
/// threshold's (the loss ratio; 0.05 for a p95, 0.5 for a p50 or the
/// throughput median). While the fault lasts the sum climbs; once the
/// figures are good again it falls. The end is the first sample after the
/// bad one where the sum peaked: from there on, bad samples never came at
/// the threshold's rate again. A stray bad sample after a long good
/// stretch adds `1 − rate` but the good ones took `rate` each, so it does
/// not move the end. The period is *confirmed* ended (announced) only once
/// a whole window after that end has been seen and the window's figures
/// are good, so faults separated by less than a window are one record.
#[derive(Debug, Clone)]
struct EndTrack {
    /// Per trigger, in parts per million (exact: a stream at exactly the
    /// threshold's rate keeps its sum level).
    rate: [i64; Trigger::N],
    sum: [i64; Trigger::N],
    peak: [i64; Trigger::N],
    /// Per trigger: the end candidate.
    at: [Option<Stamp>; Trigger::N],
    /// The peak is the newest sample of its population: the next one dates the end.
    after_peak: [bool; Trigger::N],
    /// How long a slow throughput test stands for the link with no newer one.
    hold: Duration,
    /// The last slow test (the lower bound of a throughput end).
    slow_test: Option<Stamp>,
    /// ICMP/TCP/DNS probes and failures fed so far, and at the loss peak.
    loss_seen: (u64, u64),
    loss_at_peak: Option<(u64, u64)>,
}

const PPM: i64 = 1_000_000;

impl EndTrack {
    fn new(th: &Th) -> Self {
        let ppm = |r: f64| (r.clamp(0.0, 1.0) * PPM as f64).round() as i64;
        let mut rate = [PPM / 2; Trigger::N];
        rate[Trigger::Loss as usize] = ppm(th.loss.unwrap_or(1.0));
        rate[Trigger::RttP95 as usize] = PPM / 20;
        rate[Trigger::DnsP95 as usize] = PPM / 20;
        rate[Trigger::HttpP95 as usize] = PPM / 20;
        Self {
            rate,
            sum: [0; Trigger::N],
            peak: [0; Trigger::N],
            at: [None; Trigger::N],
            after_peak: [false; Trigger::N],
            hold: Duration::from_millis(th.hold_ms),
            slow_test: None,
            loss_seen: (0, 0),
            loss_at_peak: None,
        }
    }

    /// The period's own loss: failed over all ICMP/TCP/DNS probes from its
    /// start to its last loss peak (all fed so far without one).
    fn loss_ratio(&self) -> Option<f64> {
        let (n, bad) = self.loss_at_peak.unwrap_or(self.loss_seen);
        (n > 0).then(|| bad as f64 / n as f64)
    }

    fn step(&mut self, t: Trigger, bad: bool, at: Stamp) {
        let i = t as usize;
        if self.after_peak[i] {
            self.at[i] = Some(at);
            self.after_peak[i] = false;
        }
        self.sum[i] += if bad { PPM } else { 0 } - self.rate[i];
        // Ties go to the later peak: a stretch at exactly the threshold's
        // rate after a fault is still part of it (the record does not flap).
        if bad && self.sum[i] >= self.peak[i] {
            self.peak[i] = self.sum[i];
            self.at[i] = Some(at);
            self.after_peak[i] = true;
        }
    }

    fn feed(&mut self, fed: Fed, at: Stamp, th: &Th) {
        match fed {
            Fed::Probe(e) => {
                if e.loss_class() {
                    self.loss_seen.0 += 1;
                    self.loss_seen.1 += u64::from(!e.ok());
                    self.step(Trigger::Loss, !e.ok(), at);
                    if self.after_peak[Trigger::Loss as usize] {
                        self.loss_at_peak = Some(self.loss_seen);
                    }
                }
                if e.ok() && e.lat() {
                    match e.class() {
                        RTT => {
                            self.step(Trigger::RttP50, e.a(), at);
                            self.step(Trigger::RttP95, e.b(), at);
                        }
                        DNS => self.step(Trigger::DnsP95, e.b(), at),
                        _ => self.step(Trigger::HttpP95, e.b(), at),
                    }
                }
            }
            Fed::Test(bps, increase) => {
                if let Some(thr) = th.throughput {
                    if bps < thr {
                        self.slow_test = Some(at);
                    }
                    self.step(Trigger::Throughput, bps < thr, at);
                }
                if let (Some(thr), Some(inc)) = (th.loaded, increase) {
                    self.step(Trigger::LoadedLatency, inc > thr, at);
                }
            }
            Fed::Nothing => {}
        }
    }

    /// The end so far over the triggers in `mask`: the latest of theirs.
    ///
    /// Throughput is sparse: its end lies between the last slow test and
    /// the first good one after it (or the hold's expiry). When a dense
    /// trigger (loss, latency) in the same period ends inside that span,
    /// its end is the better estimate and is taken; alone, throughput's
    /// end is the first good test.
    fn end(&self, mask: u8) -> Option<Stamp> {
        let tp = Trigger::Throughput as usize;
        let dense = Trigger::ALL
            .into_iter()
            .filter(|t| *t != Trigger::Throughput && mask & t.bit() != 0)
            .filter_map(|t| self.at[t as usize])
            .max_by_key(|s| s.mono);
        let sparse = (mask & Trigger::Throughput.bit() != 0)
            .then(|| self.at[tp])
            .flatten()
            .map(|at| {
                let hi = if self.after_peak[tp] {
                    Stamp {
                        wall: at.wall.checked_add(self.hold).unwrap_or(at.wall),
                        mono: at.mono.saturating_add(self.hold),
                    }
                } else {
                    at
                };
                (self.slow_test.unwrap_or(at), hi)
            });
        match (dense, sparse) {
            // The period lasted at least to its last slow test.
            (Some(d), Some((lo, _))) => Some(if d.mono >= lo.mono { d } else { lo }),
            (Some(d), None) => Some(d),
            (None, Some((_, hi))) => Some(hi),
            (None, None) => None,
        }
    }

    /// Whether the throughput figure is only a slow test still standing (no
    /// newer test yet): its crossing is no new evidence.
    fn throughput_held(&self) -> bool {
        self.after_peak[Trigger::Throughput as usize]
    }

    /// A down period came between the peak and the next sample: that sample
    /// says nothing of when the slow stretch ended (the outage did).
    fn interrupt(&mut self) {
        self.after_peak = [false; Trigger::N];
    }

    /// The window, all of it after the end so far, is over a threshold on
    /// its own: the fault came back (weaker than the peak), so the end is
    /// dated from here on.
    fn rebase(&mut self, now: Stamp) {
        for i in 0..6 {
            if self.after_peak[i] {
                continue;
            }
            self.peak[i] = self.sum[i];
            if self.at[i].is_some() {
                self.at[i] = Some(now);
            }
        }
    }
}

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

// ---------------------------------------------------------------------------
// Figures over a period

const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Sampled window figures of an open degradation (fixed size).
#[derive(Debug, Clone)]
struct PeriodStats {
    /// loss (ppm), rtt p50, rtt p95, dns p95, http p95 (ns), throughput (bit/s), samples.
    hists: [Histogram; 7],
    worst: [Option<f64>; 7],
    snapshots: u64,
    last: Option<Duration>,
    samples: u64,
    tests: u64,
}

impl PeriodStats {
    fn new(samples: u64) -> Self {
        Self {
            hists: Default::default(),
            worst: [None; 7],
            snapshots: 0,
            last: None,
            samples,
            tests: 0,
        }
    }

    /// Whether a snapshot is due at `at` (the figures cost a histogram scan).
    fn due(&self, at: Duration) -> bool {
        self.last
            .is_none_or(|l| at.saturating_sub(l) >= SNAPSHOT_EVERY)
    }

    fn record(&mut self, at: Duration, f: &Figures) {
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
        ];
        for (i, v) in values.into_iter().enumerate() {
            let Some(v) = v else { continue };
            self.hists[i].add(v.round().max(0.0) as u64);
            // Throughput and the sample count are worst when lowest.
            let lower_is_worse = i >= 5;
            self.worst[i] = Some(match self.worst[i] {
                Some(w) if lower_is_worse => w.min(v),
                Some(w) => w.max(v),
                None => v,
            });
        }
    }

    fn finish(&self) -> PeriodFigures {
        let med = |i: usize| self.hists[i].quantile(P50);
        let build = |get: &dyn Fn(usize) -> Option<f64>| Figures {
            loss_ratio: get(0).map(|v| v / 1e6),
            rtt_p50_seconds: get(1).map(|v| v / 1e9),
            rtt_p95_seconds: get(2).map(|v| v / 1e9),
            dns_p95_seconds: get(3).map(|v| v / 1e9),
            http_p95_seconds: get(4).map(|v| v / 1e9),
            throughput_bps: get(5),
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

// ---------------------------------------------------------------------------
// The state machine

#[derive(Debug, Clone)]
struct Pending {
    trip: Stamp,
    start: Stamp,
    triggers: u8,
    figures: Figures,
    samples: u64,
    tests: u64,
}

#[derive(Debug, Clone)]
struct Open {
    id: String,
    cause: String,
    start: Timestamp,
    /// Set when it started in this process.
    start_mono: Option<Duration>,
    /// Set when it was adopted from a previous run and seen degraded again.
    resumed: Option<Stamp>,
    triggers: u8,
    gaps: Vec<Gap>,
    period: Box<PeriodStats>,
}

impl Open {
    /// Earliest mono this process vouches for.
    fn floor(&self) -> Duration {
        self.start_mono
            .or(self.resumed.map(|r| r.mono))
            .unwrap_or(Duration::ZERO)
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Pending(Pending),
    Open(Open),
}

const HISTORY: usize = 16;

#[derive(Debug)]
struct Track {
    name: String,
    needs: Option<usize>,
    th: Th,
    settle: Duration,
    win: Window,
    state: State,
    down_since: Option<Stamp>,
    /// Samples before this mono (ms) are ignored (the up moment after a down period).
    floor_ms: u64,
    phase: Phase,
    adopted: Option<AdoptedDegradation>,
    /// First evaluation of the current all-good stretch.
    good_since: Option<Stamp>,
    judged: bool,
    /// Recent ended degradation and down periods, `(start, end)` in mono.
    history: VecDeque<(Duration, Duration)>,
    accounted: Option<Duration>,
    owed: Duration,
    /// Dates the end of the pending or open period.
    end: EndTrack,
    /// The last down period inside the pending or open period: its start,
    /// and its end once up again. The period goes on through it.
    period_down: Option<(Stamp, Option<Stamp>)>,
}

impl Track {
    /// Starts dating the end of a period that starts at `start`, from the
    /// window's samples since then.
    fn begin_end_track(&mut self, start: Stamp) {
        let mut end = EndTrack::new(&self.th);
        let from = ms(start.mono);
        let mut probes: Vec<Entry> = self
            .win
            .ring
            .iter_rev()
            .filter(|e| e.ms() >= from)
            .collect();
        probes.reverse();
        for e in probes {
            end.feed(Fed::Probe(e), self.win.stamp_of(e.ms()), &self.th);
        }
        for t in self.win.tests.iter().filter(|t| t.at.mono >= start.mono) {
            end.feed(Fed::Test(t.bps, t.increase), t.at, &self.th);
        }
        self.end = end;
        self.period_down = None;
    }

    /// The period's end as the evidence dates it: the end so far, unless a
    /// down period followed it with nothing bad after that down period's
    /// end: then the period ended where the outage began, if not before
    /// (`true`: superseded by it).
    fn dated_end(&self, mask: u8, fallback: Stamp) -> (Stamp, bool) {
        let e = self.end.end(mask).unwrap_or(fallback);
        match self.period_down {
            Some((d, up)) if up.is_none_or(|u| e.mono < u.mono) && e.mono >= d.mono => (d, true),
            _ => (e, false),
        }
    }

    fn remember(&mut self, from: Duration, to: Duration) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((from, to.max(from)));
    }
}

/// The degradation state machine for every group.
#[derive(Debug)]
pub struct Degradations {
    groups: Vec<Track>,
    /// Groups ordered upstream first.
    order: Vec<usize>,
    ids: Ids,
    pending: usize,
    now: Option<Stamp>,
}

impl Degradations {
    pub fn new(specs: Vec<GroupSpec>) -> Self {
        let n = specs.len();
        let groups: Vec<Track> = specs.into_iter().map(|s| Track::new(s, n)).collect();
        Self {
            order: order_of(&groups),
            groups,
            ids: Ids::default(),
            pending: 0,
            now: None,
        }
    }

    /// Applies a configuration reload at `now`: `specs` are the new groups;
    /// `carry[g]` is the old index of new group `g` when it is unchanged
    /// (same definition and members), and then it keeps its window, state
    /// and open degradation. Every other old group's open degradation ends
    /// at `now`, with `end_reason` `removed` (its group is gone) or
    /// `reconfigured` (redefined: its window starts again, empty).
    pub fn reload(
        &mut self,
        specs: Vec<GroupSpec>,
        carry: &[Option<usize>],
        now: Stamp,
    ) -> Vec<DegradationEvent> {
        let mut events = Vec::new();
        for old in 0..self.groups.len() {
            if carry.contains(&Some(old)) {
                continue;
            }
            let reason = if specs.iter().any(|s| s.name == self.groups[old].name) {
                EndReason::Reconfigured
            } else {
                EndReason::Removed
            };
            let before = events.len();
            if let Some(a) = self.groups[old].adopted.take() {
                events.push(unobserved_end(&self.groups[old].name, a, now.wall, false));
            }
            self.end(old, now, false, &mut events);
            for ev in &mut events[before..] {
                if let DegradationEvent::Ended(e) = ev {
                    e.end_reason = Some(reason);
                }
            }
        }
        let n = specs.len();
        let mut old: Vec<Option<Track>> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(Some)
            .collect();
        self.groups = specs
            .into_iter()
            .zip(carry.iter().chain(std::iter::repeat(&None)))
            .map(|(s, c)| {
                let fresh = Track::new(s, n);
                match c.and_then(|o| old.get_mut(o)).and_then(Option::take) {
                    Some(mut t) => {
                        t.needs = fresh.needs;
                        t
                    }
                    None => fresh,
                }
            })
            .collect();
        self.order = order_of(&self.groups);
        self.pending = self
            .groups
            .iter()
            .filter(|t| matches!(t.phase, Phase::Pending(_)))
            .count();
        events
    }
}

impl Track {
    /// A group of `n` as `s` describes it, nothing known yet.
    fn new(s: GroupSpec, n: usize) -> Self {
        Track {
            name: s.name,
            needs: s.needs.filter(|u| *u < n),
            th: Th::new(&s.thresholds),
            settle: s.settle,
            win: Window::new(),
            state: State::Unknown,
            down_since: None,
            floor_ms: 0,
            phase: Phase::Idle,
            adopted: None,
            good_since: None,
            judged: false,
            history: VecDeque::new(),
            accounted: None,
            owed: Duration::ZERO,
            end: EndTrack::new(&Th::new(&s.thresholds)),
            period_down: None,
        }
    }
}

/// Groups ordered upstream first.
fn order_of(groups: &[Track]) -> Vec<usize> {
    let n = groups.len();
    let depth = |mut g: usize| {
        let mut d = 0;
        while let Some(u) = groups[g].needs {
            d += 1;
            g = u;
            if d > groups.len() {
                break;
            }
        }
        d
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|g| depth(*g));
    order
}

impl Degradations {
    /// Marks ids as taken (ids already in the journal).
    pub fn reserve_ids<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        self.ids.reserve(ids);
    }

    /// Hands over a degradation left open by a previous run. When the group next
    /// trips it continues under the same id (a `Resumed` event with the gap);
    /// when a whole window passes without a trip, or the group goes down, it is
    /// closed with `end_observed: false` at `last_seen`. Returns `false` if the
    /// group does not exist.
    pub fn adopt(&mut self, group: &str, d: AdoptedDegradation) -> bool {
        match self.groups.iter_mut().find(|g| g.name == group) {
            Some(g) => {
                self.ids.take(&d.id);
                g.adopted = Some(d);
                true
            }
            None => false,
        }
    }

    /// Feeds one probe sample.
    pub fn observe(&mut self, s: &Sample) -> Vec<DegradationEvent> {
        let mut events = Vec::new();
        // Wall times are truncated to milliseconds where they leave the module
        // (starts, ends, gaps), not here on the hot path.
        let at = s.at;
        self.bump(at);
        let Some(g) = self.groups.get_mut(s.group) else {
            return events;
        };
        if g.state == State::Down || ms(at.mono) < g.floor_ms {
            return events;
        }
        let Some(fed) = g.win.push(s, &g.th) else {
            return events;
        };
        if matches!(g.phase, Phase::Pending(_) | Phase::Open(_)) {
            g.end.feed(fed, at, &g.th);
            let tests = u64::from(s.kind == SampleKind::Throughput && s.success);
            match &mut g.phase {
                Phase::Pending(p) if s.kind != SampleKind::Throughput => p.samples += 1,
                Phase::Pending(p) => p.tests += tests,
                Phase::Open(o) if s.kind != SampleKind::Throughput => o.period.samples += 1,
                Phase::Open(o) => o.period.tests += tests,
                Phase::Idle => {}
            }
        }
        self.step(s.group, at, &mut events);
        self.resolve(&mut events);
        events
    }

    /// Lets time pass without a sample (expiry, hysteresis, cause waits);
    /// call it every second or so.
    pub fn tick(&mut self, now: Stamp) -> Vec<DegradationEvent> {
        let mut events = Vec::new();
        self.bump(now);
        for g in 0..self.groups.len() {
            let t = &mut self.groups[g];
            if t.state == State::Down {
                continue;
            }
            t.win.advance(now, &t.th);
            self.step(g, now, &mut events);
        }
        self.resolve(&mut events);
        events
    }

    /// The group's up/down state from the outage detector (`since`: back-dated).
    pub fn set_group_state(
        &mut self,
        group: usize,
        state: State,
        since: Stamp,
    ) -> Vec<DegradationEvent> {
        let mut events = Vec::new();
        let Some(g) = self.groups.get_mut(group) else {
            return events;
        };
        let old = g.state;
        if old == state {
            return events;
        }
        g.state = state;
        if state == State::Down {
            // An outage inside a slow stretch sits inside its period: the
            // period goes on, and ends where the outage began only if
            // nothing bad follows the outage. A pending trip made of the
            // outage's own first failures (it began about when the outage
            // did) is dropped: that was no slow period.
            let margin = (g.th.window / 10).max(Duration::from_secs(1));
            match &g.phase {
                Phase::Pending(p) if p.start.mono.saturating_add(margin) >= since.mono => {
                    g.phase = Phase::Idle;
                    self.pending -= 1;
                }
                Phase::Pending(_) | Phase::Open(_) => g.period_down = Some((since, None)),
                Phase::Idle => {}
            }
            let g = &mut self.groups[group];
            if let Some(a) = g.adopted.take() {
                events.push(unobserved_end(&g.name, a, since.wall, true));
            }
            g.down_since = Some(since);
            g.win.clear();
            g.good_since = None;
        } else if old == State::Down {
            if let Some(d) = g.down_since.take() {
                g.remember(d.mono, since.mono);
            }
            if let Some((_, up @ None)) = &mut g.period_down {
                *up = Some(since);
                g.end.interrupt();
            }
            g.win.clear();
            g.floor_ms = ms(since.mono);
            g.good_since = None;
        }
        self.resolve(&mut events);
        events
    }

    fn bump(&mut self, at: Stamp) {
        if self.now.is_none_or(|n| at.mono > n.mono) {
            self.now = Some(at);
        }
    }

    fn step(&mut self, g: usize, now: Stamp, events: &mut Vec<DegradationEvent>) {
        let t = &mut self.groups[g];
        let mask = t.win.crossing(&t.th);
        t.judged |= mask != 0 || t.win.judged(&t.th);
        if mask != 0 {
            t.good_since = None;
        } else if t.good_since.is_none() {
            t.good_since = Some(now);
        }
        let clean_window = t
            .good_since
            .is_some_and(|gs| now.mono.saturating_sub(gs.mono) >= t.th.window);
        match &mut t.phase {
            Phase::Idle if mask != 0 => {
                let (start, samples) = t.win.back_date(mask, &t.th);
                t.begin_end_track(start);
                let tests = t
                    .win
                    .tests
                    .iter()
                    .filter(|x| x.at.mono >= start.mono)
                    .count() as u64;
                t.phase = Phase::Pending(Pending {
                    trip: now,
                    start,
                    triggers: mask,
                    figures: t.win.figures(),
                    samples,
                    tests,
                });
                self.pending += 1;
            }
            Phase::Idle => {
                if clean_window && let Some(a) = t.adopted.take() {
                    let gs = t.good_since.map_or(now.wall, |s| s.wall);
                    events.push(unobserved_end(&t.name, a, gs, false));
                }
            }
            Phase::Pending(p) => p.triggers |= mask,
            Phase::Open(o) => {
                // A threshold the period had not crossed, crossed by a run
                // that began after the period's end so far: a new fault of
                // another kind (loss after a throttle), not the same one.
                let (fresh, had) = (mask & !o.triggers, o.triggers);
                if fresh != 0
                    && let Some(end) = t.end.end(had)
                    && end.mono <= now.mono
                    && t.win.back_date(fresh, &t.th).0.mono > end.mono
                {
                    let (at, superseded) = t.dated_end(had, end);
                    self.end(g, at, superseded, events);
                    // The next sample or tick trips the new period.
                    return;
                }
                o.triggers |= mask;
                // Only while a figure is over: once all are good the period's
                // (back-dated) end has passed, and the clean window that
                // confirms it is not part of the period.
                if mask != 0 && o.period.due(now.mono) {
                    o.period.record(now.mono, &t.win.figures());
                }
                let triggers = o.triggers;
                let floor = o.floor();
                let end = t
                    .end
                    .end(triggers)
                    .unwrap_or_else(|| t.win.stamp_of(ms(floor)));
                let since_end = now.mono.saturating_sub(end.mono);
                let mut evidence = mask;
                if t.end.throughput_held() {
                    evidence &= !Trigger::Throughput.bit();
                }
                if evidence != 0 && since_end >= t.th.window {
                    t.end.rebase(now);
                }
                // Confirmed once a whole window has been seen after the end
                // (and after the last outage inside it) with every figure good.
                let seen_from = end.mono.max(Duration::from_millis(t.floor_ms));
                if mask == 0 && now.mono.saturating_sub(seen_from) >= t.th.window {
                    let (at, superseded) = t.dated_end(triggers, end);
                    self.end(g, at, superseded, events);
                }
            }
        }
    }

    /// Announces the pending degradations whose wait is over, upstream first.
    fn resolve(&mut self, events: &mut Vec<DegradationEvent>) {
        if self.pending == 0 {
            return;
        }
        let Some(now) = self.now else { return };
        for i in 0..self.order.len() {
            let g = self.order[i];
            let Phase::Pending(p) = &self.groups[g].phase else {
                continue;
            };
            if now.mono < p.trip.mono.saturating_add(self.groups[g].settle) {
                continue;
            }
            if let Some(cause) = self.cause_of(g, p.start.mono, now.mono) {
                self.announce(g, cause, events);
            }
        }
    }

    /// The farthest-upstream group degraded or down at `start` of `g`'s
    /// degradation; `None` while an upstream group could still turn out to be.
    fn cause_of(&self, g: usize, start: Duration, now: Duration) -> Option<usize> {
        let limit = start.saturating_add(self.groups[g].th.window / 10);
        let mut cause = g;
        let mut cur = self.groups[g].needs;
        let mut hops = 0;
        while let Some(u) = cur {
            hops += 1;
            if hops > self.groups.len() {
                break;
            }
            cur = self.groups[u].needs;
            match self.affected(u, start, limit, now) {
                Some(true) => cause = u,
                Some(false) => {}
                None => return None,
            }
        }
        Some(cause)
    }

    /// Whether group `u` had a degradation or down period that began no later
    /// than `limit` and had not ended before `start`; `None` if not yet settled.
    fn affected(&self, u: usize, start: Duration, limit: Duration, now: Duration) -> Option<bool> {
        let t = &self.groups[u];
        if t.state == State::Down && t.down_since.is_some_and(|d| d.mono <= limit) {
            return Some(true);
        }
        match &t.phase {
            Phase::Pending(p) if p.start.mono <= limit => return Some(true),
            Phase::Open(o) if o.floor() <= limit => return Some(true),
            _ => {}
        }
        if t.history
            .iter()
            .any(|(from, to)| *from <= limit && *to >= start)
        {
            return Some(true);
        }
        if t.adopted.is_some() {
            return None;
        }
        if now < limit {
            return None;
        }
        match t.win.first_bad(&t.th) {
            Some(b) if Duration::from_millis(b) <= limit => None,
            _ => Some(false),
        }
    }

    fn announce(&mut self, g: usize, cause: usize, events: &mut Vec<DegradationEvent>) {
        let Phase::Pending(p) = std::mem::replace(&mut self.groups[g].phase, Phase::Idle) else {
            return;
        };
        self.pending -= 1;
        let cause = self.groups[cause].name.clone();
        let name = self.groups[g].name.clone();
        let mut period = Box::new(PeriodStats::new(p.samples));
        period.tests = p.tests;
        let open = match self.groups[g].adopted.take() {
            Some(a) => {
                let gap = Gap {
                    from: a.last_seen,
                    to: p.start.wall.max(a.last_seen),
                };
                let mut gaps = a.gaps;
                gaps.push(gap);
                let triggers = a.triggers.iter().fold(p.triggers, |m, t| m | t.bit());
                events.push(DegradationEvent::Resumed(DegradedResumed {
                    id: a.id.clone(),
                    group: name,
                    cause: a.cause.clone(),
                    start: a.start,
                    gap,
                    triggers: Trigger::list(p.triggers),
                    figures: p.figures,
                }));
                Open {
                    id: a.id,
                    cause: a.cause,
                    start: a.start,
                    start_mono: None,
                    resumed: Some(p.start),
                    triggers,
                    gaps,
                    period,
                }
            }
            None => {
                let base = format!("{}-{}-degraded", p.start.wall.as_millisecond(), name);
                let id = self.ids.mint(base);
                events.push(DegradationEvent::Started(DegradedStarted {
                    id: id.clone(),
                    group: name,
                    cause: cause.clone(),
                    start: p.start.wall,
                    triggers: Trigger::list(p.triggers),
                    figures: p.figures,
                }));
                Open {
                    id,
                    cause,
                    start: p.start.wall,
                    start_mono: Some(p.start.mono),
                    resumed: None,
                    triggers: p.triggers,
                    gaps: Vec::new(),
                    period,
                }
            }
        };
        let t = &mut self.groups[g];
        let mut open = open;
        if let Some(now) = t.win.now {
            open.period.record(now.mono, &t.win.figures());
        }
        t.accounted = Some(p.start.mono);
        t.phase = Phase::Open(open);
    }

    fn end(&mut self, g: usize, at: Stamp, superseded: bool, events: &mut Vec<DegradationEvent>) {
        let at = Stamp {
            wall: truncate_ms(at.wall),
            mono: at.mono,
        };
        let t = &mut self.groups[g];
        let Phase::Open(o) = std::mem::replace(&mut t.phase, Phase::Idle) else {
            return;
        };
        let floor = o.floor();
        let at_mono = at.mono.max(floor);
        t.remember(floor, at_mono);
        if let Some(acc) = t.accounted.take() {
            t.owed += at_mono.saturating_sub(acc);
        }
        let (end, duration_seconds, clock) = match (o.start_mono, o.resumed) {
            (Some(s), _) => {
                let d = at_mono.saturating_sub(s);
                (add(o.start, d), d.as_secs_f64(), DurationClock::Monotonic)
            }
            (None, Some(r)) => {
                let end = add(r.wall, at_mono.saturating_sub(r.mono));
                (end, wall_seconds(o.start, end), DurationClock::Wall)
            }
            (None, None) => (at.wall, wall_seconds(o.start, at.wall), DurationClock::Wall),
        };
        events.push(DegradationEvent::Ended(DegradedEnded {
            id: o.id,
            group: t.name.clone(),
            cause: o.cause,
            start: o.start,
            end,
            duration_seconds,
            duration_clock: clock,
            end_observed: true,
            superseded,
            triggers: Trigger::list(o.triggers),
            figures: PeriodFigures {
                loss_ratio: t.end.loss_ratio(),
                ..o.period.finish()
            },
            gaps: o.gaps,
            end_reason: None,
        }));
    }

    /// Degraded time to add per group since the last call, never past the
    /// start of a recovery still in progress (like `Detector::take_downtime`).
    pub fn take_degraded_time(&mut self, now: Duration) -> Vec<(usize, Duration)> {
        let mut out = Vec::new();
        for (g, t) in self.groups.iter_mut().enumerate() {
            if t.accounted.is_none() && t.owed.is_zero() {
                continue;
            }
            // Never past the end the evidence dates so far: the journal's
            // record ends there, and so does the counter.
            let certain = match &t.phase {
                Phase::Open(o) => t.end.end(o.triggers).map_or(now, |e| e.mono.min(now)),
                _ => t.good_since.map_or(now, |gs| gs.mono.min(now)),
            };
            let mut add = std::mem::take(&mut t.owed);
            if let Some(acc) = t.accounted.as_mut()
                && certain > *acc
            {
                add += certain - *acc;
                *acc = certain;
            }
            if !add.is_zero() {
                out.push((g, add));
            }
        }
        out
    }

    /// Whether group `g` is degraded: `Some(true)` from the trip (even while
    /// the announcement waits), `Some(false)` while down or judged fine,
    /// `None` while unknown (no figure has had enough samples yet, or a
    /// degradation adopted from the previous run is not decided yet).
    pub fn degraded(&self, g: usize) -> Option<bool> {
        let t = self.groups.get(g)?;
        if t.state == State::Down {
            return Some(false);
        }
        match t.phase {
            Phase::Pending(_) | Phase::Open(_) => return Some(true),
            Phase::Idle => {}
        }
        if t.adopted.is_some() || !t.judged {
            return None;
        }
        Some(false)
    }

    /// Successful ICMP/TCP probes in group `g`'s window and the sum of their
    /// RTTs in seconds (from the histogram: each at its bucket's midpoint,
    /// within 1.6 %), for the summary's `_count` and `_sum`.
    pub fn window_rtt_count_sum(&self, g: usize) -> Option<(u64, f64)> {
        let h = &self.groups.get(g)?.win.rtt.hist;
        let sum: f64 = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| f64::from(*c) * representative(b))
            .sum();
        Some((h.total, sum / 1e9))
    }

    /// The current window figures of group `g` (for the metrics).
    pub fn window_figures(&self, g: usize) -> Option<Figures> {
        self.groups.get(g).map(|t| t.win.figures())
    }

    /// Id of the degradation open for group `g` (announced or adopted).
    pub fn open_degradation(&self, g: usize) -> Option<&str> {
        let t = self.groups.get(g)?;
        match &t.phase {
            Phase::Open(o) => Some(o.id.as_str()),
            _ => t.adopted.as_ref().map(|a| a.id.as_str()),
        }
    }

    /// Monotonic start of the degradation open for `g`, when it started in this process.
    pub fn open_start_mono(&self, g: usize) -> Option<Duration> {
        match &self.groups.get(g)?.phase {
            Phase::Open(o) => o.start_mono,
            _ => None,
        }
    }

    /// Ids of every degradation open or adopted and not yet settled.
    pub fn open_ids(&self) -> Vec<String> {
        (0..self.groups.len())
            .filter_map(|g| self.open_degradation(g).map(str::to_string))
            .collect()
    }
}

/// An adopted degradation closed without being seen to end.
fn unobserved_end(
    group: &str,
    a: AdoptedDegradation,
    seen_again: Timestamp,
    superseded: bool,
) -> DegradationEvent {
    let mut gaps = a.gaps;
    gaps.push(Gap {
        from: a.last_seen,
        to: truncate_ms(seen_again).max(a.last_seen),
    });
    DegradationEvent::Ended(DegradedEnded {
        id: a.id,
        group: group.to_string(),
        cause: a.cause,
        start: a.start,
        end: a.last_seen,
        duration_seconds: wall_seconds(a.start, a.last_seen),
        duration_clock: DurationClock::Wall,
        end_observed: false,
        superseded,
        triggers: a.triggers,
        figures: PeriodFigures::default(),
        gaps,
        end_reason: None,
    })
}

fn add(ts: Timestamp, d: Duration) -> Timestamp {
    truncate_ms(ts.checked_add(d).unwrap_or(ts))
}

fn wall_seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::outage::testutil::wall;

    fn at(secs: f64) -> Stamp {
        Stamp {
            wall: truncate_ms(wall(secs)),
            mono: Duration::from_secs_f64(secs),
        }
    }

    fn th(window_s: u64, min: u32) -> Thresholds {
        Thresholds {
            window: Duration::from_secs(window_s),
            min_samples: min,
            loss_above: None,
            rtt_p50_above: None,
            rtt_p95_above: None,
            throughput_below: None,
            throughput_hold: Duration::ZERO,
            dns_p95_above: None,
            http_p95_above: None,
            loaded_latency_above: None,
        }
    }

    fn spec(name: &str, needs: Option<usize>, thresholds: Thresholds) -> GroupSpec {
        GroupSpec {
            name: name.into(),
            needs,
            thresholds,
            settle: Duration::ZERO,
        }
    }

    fn one(thresholds: Thresholds) -> Degradations {
        Degradations::new(vec![spec("internet", None, thresholds)])
    }

    fn probe(group: usize, secs: f64, kind: SampleKind, ok: bool, ms: f64) -> Sample {
        Sample {
            group,
            at: at(secs),
            kind,
            success: ok,
            latency: ok.then(|| Duration::from_secs_f64(ms / 1000.0)),
            throughput_bps: None,
            loaded_increase: None,
        }
    }

    fn icmp(group: usize, secs: f64, ok: bool, ms: f64) -> Sample {
        probe(group, secs, SampleKind::Icmp, ok, ms)
    }

    fn test(group: usize, secs: f64, mbps: f64) -> Sample {
        Sample {
            group,
            at: at(secs),
            kind: SampleKind::Throughput,
            success: true,
            latency: None,
            throughput_bps: Some(mbps * 1e6),
            loaded_increase: None,
        }
    }

    fn started(ev: &[DegradationEvent]) -> Vec<&DegradedStarted> {
        ev.iter()
            .filter_map(|e| match e {
                DegradationEvent::Started(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn ended(ev: &[DegradationEvent]) -> Vec<&DegradedEnded> {
        ev.iter()
            .filter_map(|e| match e {
                DegradationEvent::Ended(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// Feeds one ICMP probe per second for `secs`; `ok(second)` says which succeed.
    fn loss_stream(
        d: &mut Degradations,
        g: usize,
        secs: std::ops::Range<u32>,
        ok: impl Fn(u32) -> bool,
    ) -> Vec<(u32, DegradationEvent)> {
        let mut out = Vec::new();
        for s in secs {
            for e in d.observe(&icmp(g, s as f64, ok(s), 20.0)) {
                out.push((s, e));
            }
        }
        out
    }

    fn evs(v: &[(u32, DegradationEvent)]) -> Vec<DegradationEvent> {
        v.iter().map(|(_, e)| e.clone()).collect()
    }

    #[test]
    fn histogram_quantile_error_bound_and_resolution() {
        // Every value is within 1/64 of its bucket's representative.
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100_000 {
            let v = 10f64.powf(rng.random_range(3.0..11.5)) as u64;
            let r = representative(bucket(v));
            assert!(
                (r - v as f64).abs() <= v as f64 / 64.0,
                "{v} -> bucket {} -> {r}",
                bucket(v)
            );
            let (lo, w) = bucket_bounds(bucket(v));
            assert!(lo <= v && v < lo + w, "{v} not in [{lo}, {})", lo + w);
        }
        // Buckets are contiguous.
        for b in 1..BUCKETS {
            let (lo, _) = bucket_bounds(b);
            let (plo, pw) = bucket_bounds(b - 1);
            assert_eq!(plo + pw, lo, "bucket {b}");
            assert_eq!(bucket(lo), b);
        }
        // Quantiles of random sets against the exact nearest-rank ones.
        for _ in 0..200 {
            let n = rng.random_range(1..500usize);
            let mut h = Histogram::default();
            let mut v: Vec<u64> = (0..n)
                .map(|_| (rng.random_range(0.1f64..2.0) * 1e6) as u64)
                .collect();
            v.iter().for_each(|x| h.add(*x));
            v.sort_unstable();
            for q in [P50, P95] {
                let exact = v[rank(q, n as u64).unwrap() as usize - 1] as f64;
                let got = h.quantile(q).unwrap();
                assert!((got - exact).abs() <= exact / 64.0, "q{q} {got} vs {exact}");
            }
        }
        // A 20 % change is at least 6 buckets at LAN and internet scales.
        for base_us in [200u64, 500, 2000, 20_000, 100_000, 300_000] {
            let b = base_us * 1000;
            let moved = bucket(b * 6 / 5) - bucket(b);
            assert!(moved >= 6, "{base_us} µs: {moved} buckets");
        }
        assert_eq!(h_quantile_empty(), None);
    }

    fn h_quantile_empty() -> Option<f64> {
        Histogram::default().quantile(P50)
    }

    #[test]
    fn a_reload_keeps_an_unchanged_group_and_ends_removed_and_redefined_ones() {
        let mut t = th(60, 1);
        t.loss_above = Some(0.05);
        let mut d = Degradations::new(vec![
            spec("internet", None, t.clone()),
            spec("gone", None, t.clone()),
        ]);
        let a = started(&evs(&loss_stream(&mut d, 0, 0..5, |s| s != 3)))[0]
            .id
            .clone();
        assert_eq!(
            started(&evs(&loss_stream(&mut d, 1, 0..5, |s| s != 3))).len(),
            1
        );
        // `gone` removed; `internet` unchanged (carried from index 0).
        let ev = d.reload(vec![spec("internet", None, t.clone())], &[Some(0)], at(5.5));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].group, "gone");
        assert_eq!(e[0].end_reason, Some(EndReason::Removed));
        assert_eq!(d.open_degradation(0), Some(a.as_str()));
        assert_eq!(d.degraded(0), Some(true));
        // `internet` redefined: its period ends, its window starts again.
        let ev = d.reload(vec![spec("internet", None, th(30, 1))], &[None], at(6.5));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].id, a);
        assert_eq!(e[0].end_reason, Some(EndReason::Reconfigured));
        assert_eq!(d.open_degradation(0), None);
        assert_eq!(d.degraded(0), None);
    }

    #[test]
    fn loss_trips_only_with_min_samples() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t.clone());
        // 10 probes, half lost: far over 5 %, but fewer than 20 samples.
        let ev = loss_stream(&mut d, 0, 0..10, |s| s % 2 == 0);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(d.degraded(0), None, "nothing judged yet");
        // Good probes until 20 samples: 5/20 lost trips at the 20th.
        let ev = loss_stream(&mut d, 0, 10..30, |_| true);
        assert_eq!(ev.len(), 1);
        let (when, DegradationEvent::Started(s)) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(*when, 19, "trips with the 20th sample");
        assert_eq!(s.triggers, vec![Trigger::Loss]);
        assert_eq!(s.start, wall(1.0), "back-dated to the first loss");
        assert_eq!(s.cause, "internet");
        assert_eq!(s.figures.loss_ratio, Some(0.25));
        assert_eq!(s.figures.samples, 20);
        assert_eq!(
            s.id,
            format!("{}-internet-degraded", wall(1.0).as_millisecond())
        );
        assert_eq!(d.degraded(0), Some(true));

        // min_samples 1: the first loss trips at once.
        t.min_samples = 1;
        let mut d = one(t);
        let ev = loss_stream(&mut d, 0, 0..5, |s| s != 3);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, 3);
        assert_eq!(started(&evs(&ev))[0].start, wall(3.0));
    }

    #[test]
    fn rtt_p95_trips_on_a_bufferbloat_rise() {
        let mut t = th(60, 20);
        t.rtt_p50_above = Some(Duration::from_millis(500));
        t.rtt_p95_above = Some(Duration::from_millis(100));
        let mut d = one(t);
        let mut rng = StdRng::seed_from_u64(3);
        let mut events = Vec::new();
        // 20 ms ± 5, then from 120 s a queue builds: +100 ms per second up to 400 ms.
        for s in 0..300u32 {
            let base = 20.0 + rng.random_range(-5.0..5.0);
            let queue = if s >= 120 {
                (100.0 * (s - 120 + 1) as f64).min(400.0)
            } else {
                0.0
            };
            events.extend(d.observe(&icmp(0, s as f64, true, base + queue)));
        }
        let s = started(&events);
        assert_eq!(s.len(), 1, "{events:?}");
        assert_eq!(s[0].triggers, vec![Trigger::RttP95]);
        assert_eq!(s[0].start, wall(120.0), "the first probe over 100 ms");
        let p95 = s[0].figures.rtt_p95_seconds.unwrap();
        assert!(p95 > 0.1, "{p95}");
        assert!(s[0].figures.rtt_p50_seconds.unwrap() < 0.03);
        // Metrics view: p50 climbs with the queue later on.
        let f = d.window_figures(0).unwrap();
        assert!((f.rtt_p50_seconds.unwrap() - 0.42).abs() < 0.02, "{f:?}");
        assert_eq!(f.loss_ratio, Some(0.0));
    }

    #[test]
    fn end_is_back_dated_to_the_last_loss_and_announced_one_window_later() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t);
        // 20 % loss from 100 to 200 s, then clean.
        let ev = loss_stream(&mut d, 0, 0..400, |s| {
            !(100..200).contains(&s) || s % 5 != 0
        });
        let all = evs(&ev);
        assert_eq!(started(&all).len(), 1);
        assert_eq!(started(&all)[0].start, wall(100.0));
        let e = ended(&all);
        assert_eq!(e.len(), 1);
        // The last loss is at 195: the period ends at the first probe after
        // it, not when the window's figure got back under 5 % (it holds 60
        // probes, so that was at 240).
        let good_from = 196;
        assert_eq!(
            naive_first_good(0.05, 60, |s| !(100..200).contains(&s) || s % 5 != 0),
            240
        );
        assert_eq!(e[0].end, wall(good_from as f64));
        let announced = ev
            .iter()
            .find(|(_, e)| matches!(e, DegradationEvent::Ended(_)))
            .unwrap()
            .0;
        assert_eq!(announced, good_from + 60, "exactly one window later");
        assert_eq!(
            e[0].duration_seconds,
            (good_from - 100) as f64,
            "monotonic duration"
        );
        assert_eq!(e[0].duration_clock, DurationClock::Monotonic);
        assert!(e[0].end_observed && !e[0].superseded);
        assert_eq!(e[0].triggers, vec![Trigger::Loss]);
        let f = &e[0].figures;
        assert!(f.worst.loss_ratio.unwrap() >= 0.2 - 1e-9, "{f:?}");
        assert!(f.median.loss_ratio.unwrap() > 0.05, "{f:?}");
        assert_eq!(f.worst.samples, 60);
        assert_eq!(
            f.samples,
            (announced - 100 + 1) as u64,
            "probes from the start"
        );
        assert_eq!(d.degraded(0), Some(false));
    }

    /// The first second from which the 60-probe window (one probe a second) is
    /// at or below `limit` for good, computed naively.
    fn naive_first_good(limit: f64, window: u32, ok: impl Fn(u32) -> bool) -> u32 {
        let over = |s: u32| {
            let from = (s + 1).saturating_sub(window);
            let lost = (from..=s).filter(|x| !ok(*x)).count() as f64;
            lost > limit * (s + 1 - from) as f64
        };
        (1..1000).rev().find(|s| over(*s - 1)).unwrap()
    }

    #[test]
    fn borderline_stream_does_not_flap() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t);
        // 3 losses in every 60 probes (exactly 5 %, not over) plus one more every
        // 100 s: the window is over for 60 s, then good for 40 s, and so on.
        let lossy = |s: u32| s < 1000 && (s.is_multiple_of(20) || s % 100 == 10);
        let ev = evs(&loss_stream(&mut d, 0, 0..1200, |s| !lossy(s)));
        assert_eq!(started(&ev).len(), 1, "one degradation, no flapping");
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        // The stream stays at or over 5 % until its last loss (980): the
        // period ends at the probe after it.
        assert_eq!(e[0].end, wall(981.0));
    }

    #[test]
    fn back_dated_start_ignores_a_stray_old_loss() {
        let mut t = th(300, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t);
        // One stray loss at 10 s, then 20 % loss from 100 s (first loss at 101).
        let ev = evs(&loss_stream(&mut d, 0, 0..400, |s| {
            s != 10 && !(s >= 100 && s % 5 == 1)
        }));
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].start, wall(101.0), "within one interval of the change");
    }

    #[test]
    fn cause_is_farthest_upstream_degraded_group() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let chain = || {
            Degradations::new(vec![
                spec("lan", None, t.clone()),
                spec("isp", Some(0), t.clone()),
                spec("international", Some(1), t.clone()),
            ])
        };
        // ISP loss: isp and international both lose 20 %, international's
        // losses come first (it trips first), lan is clean.
        let mut d = chain();
        let mut ev = Vec::new();
        for s in 0..300u32 {
            let lossy = s >= 100 && s % 5 == 0;
            let sec = s as f64;
            ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
            ev.extend(d.observe(&icmp(1, sec + 0.4, !lossy, 10.0)));
            ev.extend(d.observe(&icmp(0, sec + 0.8, true, 1.0)));
        }
        let s = started(&ev);
        assert_eq!(s.len(), 2, "{s:?}");
        let intl = s.iter().find(|x| x.group == "international").unwrap();
        let isp = s.iter().find(|x| x.group == "isp").unwrap();
        assert_eq!(intl.cause, "isp");
        assert_eq!(isp.cause, "isp");
        assert_eq!(intl.start, wall(100.0));
        assert_eq!(isp.start, wall(100.4));
        // International alone: its own cause, announced once isp is settled.
        let mut d = chain();
        let mut ev = Vec::new();
        for s in 0..300u32 {
            let lossy = s >= 100 && s % 5 == 0;
            let sec = s as f64;
            ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
            ev.extend(d.observe(&icmp(1, sec + 0.4, true, 10.0)));
            ev.extend(d.observe(&icmp(0, sec + 0.8, true, 1.0)));
        }
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].group.as_str(), s[0].cause.as_str()),
            ("international", "international")
        );
        assert_eq!(d.degraded(1), Some(false));
        // An upstream outage at the start is a cause too.
        let mut d = chain();
        for g in 0..3 {
            d.set_group_state(g, State::Up, at(0.0));
        }
        let mut ev = Vec::new();
        for s in 0..300u32 {
            let sec = s as f64;
            if s == 99 {
                ev.extend(d.set_group_state(1, State::Down, at(99.5)));
            }
            let lossy = s >= 100 && s % 5 == 0;
            ev.extend(d.observe(&icmp(2, sec, !lossy, 30.0)));
        }
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].cause, "isp");
    }

    #[test]
    fn an_outage_ends_a_slow_period_only_when_nothing_bad_follows_it() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t.clone());
        d.set_group_state(0, State::Up, at(0.0));
        let ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s < 50 || s % 4 != 0));
        assert_eq!(started(&ev).len(), 1);
        let ev = d.set_group_state(0, State::Down, at(99.5));
        assert!(
            ended(&ev).is_empty(),
            "the period goes on through the outage"
        );
        assert_eq!(d.degraded(0), Some(false), "down is not also degraded");
        assert!(d.open_degradation(0).is_some());
        // Failures while down are not loss, before or after.
        let ev = loss_stream(&mut d, 0, 100..120, |_| false);
        assert!(ev.is_empty());
        assert!(d.set_group_state(0, State::Up, at(119.5)).is_empty());
        // Clean after the outage: a window after it is up, the period is
        // ended where the outage began (its last loss at 96 came first, and
        // the failures leading into the outage continue it).
        let ev = evs(&loss_stream(&mut d, 0, 120..300, |_| true));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].end, wall(97.0), "the probe after the last loss: {e:?}");
        assert!(!e[0].superseded);
        assert_eq!(d.window_figures(0).unwrap().loss_ratio, Some(0.0));

        // Loss that leads straight into the outage, then a clean link: the
        // period ends where the outage began (superseded).
        let mut d = one(t.clone());
        d.set_group_state(0, State::Up, at(0.0));
        let mut ev = evs(&loss_stream(&mut d, 0, 0..100, |s| {
            s < 50 || s % 4 != 0 && s < 97
        }));
        ev.extend(d.set_group_state(0, State::Down, at(97.0)));
        ev.extend(d.set_group_state(0, State::Up, at(120.0)));
        ev.extend(evs(&loss_stream(&mut d, 0, 120..300, |_| true)));
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].end, wall(97.0));
        assert!(e[0].superseded);

        // Loss before and after the outage: one period, the outage inside.
        let mut d = one(t.clone());
        d.set_group_state(0, State::Up, at(0.0));
        let mut ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s < 50 || s % 4 != 0));
        ev.extend(d.set_group_state(0, State::Down, at(99.5)));
        ev.extend(d.set_group_state(0, State::Up, at(119.5)));
        ev.extend(evs(&loss_stream(&mut d, 0, 120..400, |s| {
            s >= 200 || s % 4 != 0
        })));
        assert_eq!(started(&ev).len(), 1, "{ev:?}");
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].start, wall(52.0));
        assert_eq!(e[0].end, wall(197.0), "the probe after the last loss (196)");
        assert!(!e[0].superseded);

        // A trip still settling when the group goes down is dropped: it
        // was the outage's own first failures.
        let mut d = Degradations::new(vec![GroupSpec {
            settle: Duration::from_secs(3),
            ..spec("internet", None, t)
        }]);
        d.set_group_state(0, State::Up, at(0.0));
        let mut ev = evs(&loss_stream(&mut d, 0, 0..64, |s| s < 60));
        assert_eq!(d.degraded(0), Some(true), "tripped, waiting to settle");
        ev.extend(d.set_group_state(0, State::Down, at(60.0)));
        ev.extend(evs(&loss_stream(&mut d, 0, 64..70, |_| false)));
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(d.degraded(0), Some(false));
    }

    #[test]
    fn loss_after_a_throttle_is_a_record_of_its_own() {
        let mut t = th(20, 10);
        t.loss_above = Some(0.05);
        t.throughput_below = Some(10e6);
        t.throughput_hold = Duration::from_secs(45);
        let mut d = one(t);
        d.set_group_state(0, State::Up, at(0.0));
        let mut ev = Vec::new();
        ev.extend(d.observe(&test(0, 0.0, 50.0)));
        // Probes every second throughout; slow tests at 10 and 20 s, a good
        // one at 30 s; loss from 40 s to 60 s (every other probe).
        for s in 1..120u32 {
            let sec = s as f64;
            match s {
                10 | 20 => ev.extend(d.observe(&test(0, sec, 3.0))),
                30 => ev.extend(d.observe(&test(0, sec, 50.0))),
                _ => {}
            }
            let lost = (40..60).contains(&s) && s % 2 == 0;
            ev.extend(d.observe(&icmp(0, sec, !lost, 20.0)));
        }
        let st = started(&ev);
        assert_eq!(st.len(), 2, "{ev:?}");
        let e = ended(&ev);
        assert_eq!(e.len(), 2, "{ev:?}");
        assert_eq!((e[0].start, e[0].end), (wall(10.0), wall(30.0)));
        assert_eq!(e[0].triggers, vec![Trigger::Throughput]);
        assert_eq!((e[1].start, e[1].end), (wall(40.0), wall(59.0)));
        assert_eq!(e[1].triggers, vec![Trigger::Loss]);
    }

    /// `loaded_latency_above`: bloated tests (fast ones) trip
    /// `loaded_latency`, not `throughput`, and a good test ends it.
    #[test]
    fn loaded_latency_trips_on_the_tests_median_increase() {
        let mut t = th(20, 10);
        t.throughput_below = Some(10e6);
        t.loaded_latency_above = Some(Duration::from_millis(100));
        t.throughput_hold = Duration::from_secs(45);
        let mut d = one(t);
        d.set_group_state(0, State::Up, at(0.0));
        let bloated = |secs: f64, ms: u64| Sample {
            loaded_increase: Some(Duration::from_millis(ms)),
            ..test(0, secs, 50.0)
        };
        let mut ev = Vec::new();
        ev.extend(d.observe(&bloated(0.0, 10)));
        for s in 1..90u32 {
            let sec = f64::from(s);
            match s {
                10 | 20 => ev.extend(d.observe(&bloated(sec, 450))),
                30 | 40 | 50 => ev.extend(d.observe(&bloated(sec, 8))),
                _ => {}
            }
            ev.extend(d.observe(&icmp(0, sec, true, 20.0)));
        }
        let st = started(&ev);
        assert_eq!(st.len(), 1, "{ev:?}");
        assert_eq!(st[0].triggers, vec![Trigger::LoadedLatency]);
        let e = ended(&ev);
        assert_eq!(e.len(), 1, "{ev:?}");
        assert_eq!(e[0].start, wall(10.0));
        assert_eq!(Trigger::LoadedLatency.as_str(), "loaded_latency");
    }

    #[test]
    fn throughput_median_and_last_test_rules() {
        let mut t = th(300, 20);
        t.throughput_below = Some(10e6);
        t.throughput_hold = Duration::from_secs(2700);
        // Tests 30 minutes apart: the last one stands until the next.
        let mut d = one(t.clone());
        let mut ev = Vec::new();
        let tick = |d: &mut Degradations, s: u32| d.tick(at(s as f64));
        ev.extend(d.observe(&test(0, 0.0, 50.0)));
        for s in (60..1800).step_by(60) {
            ev.extend(tick(&mut d, s));
        }
        assert!(ev.is_empty());
        assert_eq!(d.degraded(0), Some(false), "one test is a judgement");
        ev.extend(d.observe(&test(0, 1800.0, 3.0)));
        let s = started(&ev);
        assert_eq!(s.len(), 1, "one slow test is enough");
        assert_eq!(s[0].start, wall(1800.0));
        assert_eq!(s[0].triggers, vec![Trigger::Throughput]);
        assert_eq!(s[0].figures.throughput_bps, Some(3e6));
        for s in (1860..3600).step_by(60) {
            ev.extend(tick(&mut d, s));
        }
        assert!(
            ended(&ev).is_empty(),
            "still slow while the last test stands"
        );
        ev.extend(d.observe(&test(0, 3600.0, 40.0)));
        for s in (3660..4200).step_by(60) {
            ev.extend(tick(&mut d, s));
        }
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].end, wall(3600.0));
        assert_eq!(e[0].figures.worst.throughput_bps, Some(3e6));
        assert_eq!(e[0].figures.throughput_tests, 2);

        // Several tests in the window: the median decides, not one slow test.
        let mut d = one(t.clone());
        let mut ev = Vec::new();
        for (i, mbps) in [20.0, 20.0, 3.0, 20.0].into_iter().enumerate() {
            ev.extend(d.observe(&test(0, i as f64 * 60.0, mbps)));
        }
        assert!(ev.is_empty(), "{ev:?}");
        for (i, mbps) in [3.0, 3.0, 3.0].into_iter().enumerate() {
            ev.extend(d.observe(&test(0, 240.0 + i as f64 * 60.0, mbps)));
        }
        let s = started(&ev);
        assert_eq!(s.len(), 1);
        // Window (300 s) at 360 s: 20@120? no: 3@120, 20@180, 3@240, 3@300, 3@360.
        assert_eq!(
            s[0].start,
            wall(240.0),
            "the change point of the slow tests"
        );

        // A slow last test stops counting after the hold: it ends.
        let mut d = one(t);
        let mut ev = d.observe(&test(0, 0.0, 1.0));
        assert_eq!(started(&ev).len(), 1);
        for s in (60..4000).step_by(60) {
            ev.extend(d.tick(at(s as f64)));
        }
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].end, wall(2700.0));
        // A failed (partial) test is no figure.
        let mut d = one(th(300, 20));
        let mut s = test(0, 0.0, 1.0);
        s.success = false;
        d.observe(&s);
        assert_eq!(d.window_figures(0).unwrap().throughput_bps, None);
    }

    /// Naive window state recomputed from every sample.
    fn naive(all: &[Sample], now_ms: u64, t: &Th) -> (u64, u64, [Vec<u64>; 3], u8) {
        let mut lat: [Vec<u64>; 3] = Default::default();
        let (mut total, mut failed) = (0, 0);
        for s in all.iter().filter(|s| now_ms - ms(s.at.mono) < t.window_ms) {
            let class = match s.kind {
                SampleKind::Icmp | SampleKind::Tcp => 0,
                SampleKind::Dns => 1,
                SampleKind::Http => 2,
                SampleKind::Throughput => continue,
            };
            if class != 2 {
                total += 1;
                failed += u64::from(!s.success);
            }
            if s.success
                && let Some(l) = s.latency
            {
                lat[class].push(ns(l));
            }
        }
        lat.iter_mut().for_each(|v| v.sort_unstable());
        let q = |v: &Vec<u64>, permille, thr: Option<u64>| {
            thr.is_some_and(|thr| {
                v.len() as u64 >= t.min
                    && v[rank(permille, v.len() as u64).unwrap() as usize - 1] > thr
            })
        };
        let mut m = 0;
        if t.loss
            .is_some_and(|l| total >= t.min && failed as f64 > l * total as f64)
        {
            m |= Trigger::Loss.bit();
        }
        if q(&lat[0], P50, t.rtt_p50) {
            m |= Trigger::RttP50.bit();
        }
        if q(&lat[0], P95, t.rtt_p95) {
            m |= Trigger::RttP95.bit();
        }
        if q(&lat[1], P95, t.dns_p95) {
            m |= Trigger::DnsP95.bit();
        }
        if q(&lat[2], P95, t.http_p95) {
            m |= Trigger::HttpP95.bit();
        }
        (total, failed, lat, m)
    }

    #[test]
    fn ring_keeps_entries_exactly_whatever_the_gaps() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut ring = Ring::default();
        let mut plain: VecDeque<Entry> = VecDeque::new();
        let mut ms: u64 = 1 << 30;
        for i in 0..20_000 {
            // Mostly dense, sometimes out of order or far apart (markers).
            ms = match rng.random_range(0..10) {
                0 => ms.saturating_sub(rng.random_range(0..10_000)),
                1 => ms + rng.random_range(4_000..3_000_000_000),
                _ => ms + rng.random_range(0..3),
            } & MS_MASK;
            let e = Entry::new(
                ms,
                rng.random_range(0..BUCKETS),
                rng.random_range(0..3),
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random(),
            );
            ring.push_back(e);
            plain.push_back(e);
            if rng.random_range(0..3) == 0 {
                assert_eq!(ring.pop_front(), plain.pop_front(), "pop {i}");
            }
            assert_eq!(ring.front(), plain.front().copied(), "front {i}");
            assert_eq!(ring.len(), plain.len());
            if i % 997 == 0 {
                assert!(ring.iter_rev().eq(plain.iter().rev().copied()), "walk {i}");
            }
        }
        // Dense samples take one word each.
        let mut dense = Ring::default();
        for i in 0..1000 {
            dense.push_back(Entry::new(5_000 + i / 10, 3, RTT, true, true, false, false));
        }
        assert_eq!(dense.words.len(), 1000);
        while dense.pop_front().is_some() {}
        assert_eq!((dense.len(), dense.words.len()), (0, 0));
    }

    #[test]
    fn window_expiry_matches_naive_recomputation() {
        let mut t = th(30, 5);
        t.loss_above = Some(0.1);
        t.rtt_p50_above = Some(Duration::from_millis(40));
        t.rtt_p95_above = Some(Duration::from_millis(80));
        t.dns_p95_above = Some(Duration::from_millis(100));
        t.http_p95_above = Some(Duration::from_millis(300));
        let th = Th::new(&t);
        let mut w = Window::new();
        let mut rng = StdRng::seed_from_u64(42);
        let mut all = Vec::new();
        let mut now = 0.0;
        for i in 0..20_000 {
            // Bursts and lulls, so the window both fills and empties.
            now += if i % 2000 < 100 {
                rng.random_range(0.0..0.05)
            } else {
                rng.random_range(0.0..3.0)
            };
            let kind = match rng.random_range(0..4) {
                0 => SampleKind::Icmp,
                1 => SampleKind::Tcp,
                2 => SampleKind::Dns,
                _ => SampleKind::Http,
            };
            let ok = rng.random_range(0.0..1.0) > 0.1;
            let s = probe(0, now, kind, ok, rng.random_range(1.0..200.0));
            assert!(w.push(&s, &th).is_some());
            all.push(s);
            let now_ms = ms(s.at.mono);
            all.retain(|s| now_ms - ms(s.at.mono) < th.window_ms);
            let (total, failed, lat, mask) = naive(&all, now_ms, &th);
            assert_eq!((w.loss_total, w.loss_failed), (total, failed), "sample {i}");
            for (pop, v) in [&w.rtt, &w.dns, &w.http].into_iter().zip(&lat) {
                assert_eq!(pop.n(), v.len() as u64);
                for q in [P50, P95] {
                    let exact = rank(q, v.len() as u64).map(|r| bucket(v[r as usize - 1]));
                    assert_eq!(pop.hist.quantile_bucket(q), exact, "sample {i} q{q}");
                }
            }
            assert_eq!(w.crossing(&th), mask, "sample {i}");
            assert_eq!(w.ring.len(), all.len());
        }
    }

    #[test]
    fn adopted_degradation_resumes_or_closes_unobserved() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let adopted = || AdoptedDegradation {
            id: "old-internet-degraded".into(),
            cause: "internet".into(),
            start: wall(-500.0),
            triggers: vec![Trigger::RttP95],
            gaps: vec![],
            last_seen: wall(-100.0),
        };
        // Still lossy: the same degradation continues, with the gap.
        let mut d = one(t.clone());
        assert!(d.adopt("internet", adopted()));
        assert!(!d.adopt("nope", adopted()));
        assert_eq!(d.degraded(0), None);
        assert_eq!(d.open_degradation(0), Some("old-internet-degraded"));
        let ev = evs(&loss_stream(&mut d, 0, 0..100, |s| s % 4 != 0));
        assert!(started(&ev).is_empty());
        let DegradationEvent::Resumed(r) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(r.id, "old-internet-degraded");
        assert_eq!(
            r.gap,
            Gap {
                from: wall(-100.0),
                to: wall(0.0)
            }
        );
        let ev = evs(&loss_stream(&mut d, 0, 100..300, |_| true));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].id, "old-internet-degraded");
        assert!(e[0].end_observed);
        assert_eq!(e[0].duration_clock, DurationClock::Wall);
        assert_eq!(e[0].triggers, vec![Trigger::Loss, Trigger::RttP95]);
        assert_eq!(e[0].gaps.len(), 1);
        // Clean after the restart: closed at the last moment seen, unobserved.
        let mut d = one(t.clone());
        d.adopt("internet", adopted());
        let ev = evs(&loss_stream(&mut d, 0, 0..100, |_| true));
        let e = ended(&ev);
        assert_eq!(e.len(), 1);
        assert!(!e[0].end_observed);
        assert_eq!(e[0].end, wall(-100.0));
        assert_eq!(e[0].duration_seconds, 400.0);
        assert_eq!(
            e[0].gaps,
            vec![Gap {
                from: wall(-100.0),
                to: wall(0.0)
            }]
        );
        assert_eq!(ev.len(), 1);
        // Down after the restart: closed unobserved, superseded.
        let mut d = one(t);
        d.adopt("internet", adopted());
        let e = d.set_group_state(0, State::Down, at(3.0));
        assert!(matches!(&e[..], [DegradationEvent::Ended(x)] if !x.end_observed && x.superseded));
        assert_eq!(d.open_ids(), Vec::<String>::new());
    }

    #[test]
    fn degraded_time_accrues_from_the_back_dated_start_to_the_end() {
        let mut t = th(60, 20);
        t.loss_above = Some(0.05);
        let mut d = one(t);
        let ok = |s: u32| !(100..200).contains(&s) || !s.is_multiple_of(5);
        let mut total = Duration::ZERO;
        let mut ev = Vec::new();
        for s in 0..400u32 {
            ev.extend(d.observe(&icmp(0, s as f64, ok(s), 20.0)));
            total += d
                .take_degraded_time(Duration::from_secs(s as u64))
                .iter()
                .map(|x| x.1)
                .sum::<Duration>();
        }
        let e = ended(&ev);
        assert_eq!(total.as_secs_f64(), e[0].duration_seconds);
        assert!(d.take_degraded_time(Duration::from_secs(500)).is_empty());
    }

    #[test]
    fn ids_never_collide_and_figures_serialise_with_contract_keys() {
        let mut t = th(60, 1);
        t.loss_above = Some(0.05);
        let mut d = one(t);
        d.reserve_ids([format!("{}-internet-degraded", wall(0.0).as_millisecond())]);
        let ev = d.observe(&icmp(0, 0.0, false, 0.0));
        let s = started(&ev);
        assert_eq!(
            s[0].id,
            format!("{}-internet-degraded-2", wall(0.0).as_millisecond())
        );
        let json = serde_json::to_value(s[0]).unwrap();
        assert_eq!(json["triggers"], serde_json::json!(["loss"]));
        assert_eq!(json["start"], "2026-11-01T10:00:00.000Z");
        let keys: Vec<&str> = json["figures"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "dns_p95_seconds",
                "http_p95_seconds",
                "loss_ratio",
                "rtt_p50_seconds",
                "rtt_p95_seconds",
                "samples",
                "throughput_bps"
            ]
        );
        let back: DegradedStarted = serde_json::from_value(json).unwrap();
        assert_eq!(&back, s[0]);
    }

    /// `cargo test --release --lib outage::degradation::tests::cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, run by hand in release mode"]
    fn cost_per_sample_at_10k_targets() {
        let mut t = th(300, 20);
        t.loss_above = Some(0.05);
        t.rtt_p50_above = Some(Duration::from_millis(200));
        t.rtt_p95_above = Some(Duration::from_millis(600));
        let groups = 10;
        let mut d = Degradations::new(
            (0..groups)
                .map(|g| spec(&format!("g{g}"), None, t.clone()))
                .collect(),
        );
        let mut rng = StdRng::seed_from_u64(1);
        // 10 000 targets probed once a second, 10 minutes: the window fills and expires.
        let samples: Vec<Sample> = (0..600 * 10_000u64)
            .map(|i| {
                let secs = (i / 10_000) as f64 + (i % 10_000) as f64 / 10_000.0;
                let ok = rng.random_range(0u32..100) != 0;
                icmp(
                    (i % groups as u64) as usize,
                    secs,
                    ok,
                    rng.random_range(10.0..50.0),
                )
            })
            .collect();
        // On-CPU time of this thread (ns), immune to other load on the machine.
        let cpu = || {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        };
        #[allow(clippy::disallowed_types)]
        let t0 = std::time::Instant::now();
        let c0 = cpu();
        let mut events = 0;
        for s in &samples {
            events += d.observe(s).len();
        }
        let el = t0.elapsed();
        let n = samples.len() as f64;
        let cpu_ns = cpu().zip(c0).map(|(b, a)| (b - a) / n);
        println!(
            "degradation windows: {} samples in {:?}: {:.1} ns/sample wall, {:.1} ns/sample on CPU ({events} events), ring {} entries/group",
            samples.len(),
            el,
            el.as_nanos() as f64 / n,
            cpu_ns.unwrap_or(f64::NAN),
            d.groups[0].win.ring.len(),
        );
    }
}
