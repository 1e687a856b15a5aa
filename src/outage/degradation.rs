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
//!   back-dated to the earliest sample of the window from which on the figure,
//!   computed over the rest of the window, is already over the threshold (that
//!   sample is always a "bad" one: a loss, an RTT over the threshold, a slow
//!   test); with several triggers, the earliest of them.
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
//!   [`BUCKETS`] × 4 bytes (13.8 KiB), 8 bytes per probe sample in the window
//!   in the ring, plus 8 bytes per "bad" sample in the window, capped at
//!   [`MAX_WINDOW_SAMPLES`] samples whatever the rate (the oldest are expired
//!   early beyond it); 32 KiB of period histograms while a degradation is open.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::detector::{Stamp, State, truncate_ms};
use super::event::{DurationClock, Gap};
use super::journal::ts_ms;

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
}

impl Trigger {
    pub const ALL: [Trigger; 6] = [
        Trigger::Loss,
        Trigger::RttP50,
        Trigger::RttP95,
        Trigger::Throughput,
        Trigger::DnsP95,
        Trigger::HttpP95,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Loss => "loss",
            Trigger::RttP50 => "rtt_p50",
            Trigger::RttP95 => "rtt_p95",
            Trigger::Throughput => "throughput",
            Trigger::DnsP95 => "dns_p95",
            Trigger::HttpP95 => "http_p95",
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
/// second (monotonic) from the announcement to the end.
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
/// expired early (the window then covers less time). 8 bytes each: 32 MiB.
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
}

/// The sliding window of one group.
#[derive(Debug, Clone)]
struct Window {
    ring: VecDeque<Entry>,
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
            ring: VecDeque::new(),
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
        while let Some(e) = self.ring.front().copied() {
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

    /// Adds a sample; `false` if it was too old to count.
    fn push(&mut self, s: &Sample, th: &Th) -> bool {
        self.advance(s.at, th);
        let at = ms(s.at.mono);
        if self.now_ms().saturating_sub(at) >= th.window_ms {
            return false;
        }
        let (class, a_thr, b_thr) = match s.kind {
            SampleKind::Icmp | SampleKind::Tcp => (RTT, th.rtt_p50, th.rtt_p95),
            SampleKind::Dns => (DNS, None, th.dns_p95),
            SampleKind::Http => (HTTP, None, th.http_p95),
            SampleKind::Throughput => {
                if let Some(bps) = s.throughput_bps.filter(|b| s.success && b.is_finite())
                    && bps >= 0.0
                {
                    self.tests.push_back(Test { at: s.at, bps });
                    // The previous newest may have been kept only because it was the newest.
                    self.advance(s.at, th);
                    self.median = median(self.tests.iter().map(|t| t.bps));
                }
                return true;
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
        true
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

    /// The back-dated start of a trip on `mask`: the earliest sample from which
    /// on a tripped figure, over the rest of the window, is over its threshold.
    /// Also returns the number of probes from there on.
    fn back_date(&self, mask: u8, th: &Th) -> (Stamp, u64) {
        let has = |t: Trigger| mask & t.bit() != 0;
        let mut best: Option<u64> = None;
        let mut keep = |ms: u64| best = Some(best.map_or(ms, |b: u64| b.min(ms)));
        let (mut lc, mut lf) = (0u64, 0u64);
        let (mut rn, mut ra, mut rb) = (0u64, 0u64, 0u64);
        let (mut dn, mut db) = (0u64, 0u64);
        let (mut hn, mut hb) = (0u64, 0u64);
        for e in self.ring.iter().rev() {
            if e.loss_class() {
                lc += 1;
                if !e.ok() {
                    lf += 1;
                    if has(Trigger::Loss) && th.loss.is_some_and(|l| lf as f64 > l * lc as f64) {
                        keep(e.ms());
                    }
                }
            }
            if !(e.ok() && e.lat()) {
                continue;
            }
            match e.class() {
                RTT => {
                    rn += 1;
                    ra += u64::from(e.a());
                    rb += u64::from(e.b());
                    if e.a() && has(Trigger::RttP50) && quantile_over(P50, rn, ra) {
                        keep(e.ms());
                    }
                    if e.b() && has(Trigger::RttP95) && quantile_over(P95, rn, rb) {
                        keep(e.ms());
                    }
                }
                DNS => {
                    dn += 1;
                    db += u64::from(e.b());
                    if e.b() && has(Trigger::DnsP95) && quantile_over(P95, dn, db) {
                        keep(e.ms());
                    }
                }
                _ => {
                    hn += 1;
                    hb += u64::from(e.b());
                    if e.b() && has(Trigger::HttpP95) && quantile_over(P95, hn, hb) {
                        keep(e.ms());
                    }
                }
            }
        }
        let mut start = best.map(|b| self.stamp_of(b));
        if has(Trigger::Throughput)
            && let Some(thr) = th.throughput
        {
            let tests: Vec<&Test> = self.tests.iter().collect();
            for i in (0..tests.len()).rev() {
                let slow = tests[i].bps < thr;
                if slow && median(tests[i..].iter().map(|t| t.bps)).is_some_and(|m| m < thr) {
                    let at = tests[i].at;
                    if start.is_none_or(|s| at.mono < s.mono) {
                        start = Some(at);
                    }
                }
            }
        }
        let start = start.or(self.now).unwrap_or(Stamp {
            wall: Timestamp::UNIX_EPOCH,
            mono: Duration::ZERO,
        });
        let from = ms(start.mono);
        let n = self.ring.iter().filter(|e| e.ms() >= from).count() as u64;
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

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
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

    fn record(&mut self, at: Duration, f: &Figures) {
        if self
            .last
            .is_some_and(|l| at.saturating_sub(l) < SNAPSHOT_EVERY)
        {
            return;
        }
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
}

impl Track {
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
    ids: HashSet<String>,
    pending: usize,
    now: Option<Stamp>,
}

impl Degradations {
    pub fn new(specs: Vec<GroupSpec>) -> Self {
        let n = specs.len();
        let groups: Vec<Track> = specs
            .into_iter()
            .map(|s| Track {
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
            })
            .collect();
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
        Self {
            groups,
            order,
            ids: HashSet::new(),
            pending: 0,
            now: None,
        }
    }

    /// Marks ids as taken (ids already in the journal).
    pub fn reserve_ids<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        self.ids.extend(ids);
    }

    /// Hands over a degradation left open by a previous run. When the group next
    /// trips it continues under the same id (a `Resumed` event with the gap);
    /// when a whole window passes without a trip, or the group goes down, it is
    /// closed with `end_observed: false` at `last_seen`. Returns `false` if the
    /// group does not exist.
    pub fn adopt(&mut self, group: &str, d: AdoptedDegradation) -> bool {
        match self.groups.iter_mut().find(|g| g.name == group) {
            Some(g) => {
                self.ids.insert(d.id.clone());
                g.adopted = Some(d);
                true
            }
            None => false,
        }
    }

    /// Feeds one probe sample.
    pub fn observe(&mut self, s: &Sample) -> Vec<DegradationEvent> {
        let mut events = Vec::new();
        let at = Stamp {
            wall: truncate_ms(s.at.wall),
            mono: s.at.mono,
        };
        self.bump(at);
        let Some(g) = self.groups.get_mut(s.group) else {
            return events;
        };
        if g.state == State::Down || ms(at.mono) < g.floor_ms {
            return events;
        }
        let sample = Sample { at, ..*s };
        if !g.win.push(&sample, &g.th) {
            return events;
        }
        if matches!(g.phase, Phase::Pending(_) | Phase::Open(_)) {
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
        let now = Stamp {
            wall: truncate_ms(now.wall),
            mono: now.mono,
        };
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
            match std::mem::replace(&mut g.phase, Phase::Idle) {
                Phase::Pending(_) => self.pending -= 1,
                Phase::Open(o) => {
                    let at = if since.mono < o.floor() {
                        Stamp {
                            wall: since.wall,
                            mono: o.floor(),
                        }
                    } else {
                        since
                    };
                    g.phase = Phase::Open(o);
                    self.end(group, at, true, &mut events);
                }
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
                o.triggers |= mask;
                o.period.record(now.mono, &t.win.figures());
                if clean_window && let Some(gs) = t.good_since {
                    self.end(g, gs, false, events);
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
            if now.mono < p.trip.mono + self.groups[g].settle {
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
        let limit = start + self.groups[g].th.window / 10;
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
                let mut id = base.clone();
                let mut n = 2;
                while self.ids.contains(&id) {
                    id = format!("{base}-{n}");
                    n += 1;
                }
                self.ids.insert(id.clone());
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
            figures: o.period.finish(),
            gaps: o.gaps,
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
            let certain = t.good_since.map_or(now, |gs| gs.mono.min(now));
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
    /// `None` while unknown (no figure judged yet, group state unknown, or a
    /// degradation adopted from the previous run not yet decided).
    pub fn degraded(&self, g: usize) -> Option<bool> {
        let t = self.groups.get(g)?;
        match t.phase {
            Phase::Pending(_) | Phase::Open(_) => return Some(true),
            Phase::Idle => {}
        }
        if t.state == State::Down {
            return Some(false);
        }
        if t.adopted.is_some() || !t.judged || t.state == State::Unknown {
            return None;
        }
        Some(false)
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
        to: seen_again.max(a.last_seen),
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
    })
}

fn add(ts: Timestamp, d: Duration) -> Timestamp {
    truncate_ms(ts.checked_add(d).unwrap_or(ts))
}

fn wall_seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}
