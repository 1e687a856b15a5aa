//! Dating a slow period's end from the evidence (a forward CUSUM per trigger).

use std::time::Duration;

use super::figures::Trigger;
#[cfg(doc)]
use super::window::BadSpan;
use super::window::{DNS, Fed, PopId, RTT, Slot, Th};
use crate::outage::period::Stamp;

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
///
/// Upload tests are dated like download tests, in a slot of their own
/// ([`UP`]) after the triggers': both directions end `throughput`, the
/// later of their ends counts.
#[derive(Debug, Clone)]
pub(super) struct EndTrack {
    /// Per trigger (and [`UP`]), in parts per million (exact: a stream at
    /// exactly the threshold's rate keeps its sum level).
    pub(super) rate: [i64; SLOTS],
    pub(super) sum: [i64; SLOTS],
    pub(super) peak: [i64; SLOTS],
    /// Per trigger: the end candidate.
    pub(super) at: [Option<Stamp>; SLOTS],
    /// The peak is the newest sample of its population: the next one dates the end.
    pub(super) after_peak: [bool; SLOTS],
    /// How long a slow throughput test stands for the link with no newer one.
    pub(super) hold: Duration,
    /// The last slow download test (the lower bound of a throughput end).
    pub(super) slow_test: Option<Stamp>,
    /// The last slow upload test.
    pub(super) slow_upload: Option<Stamp>,
    /// ICMP/TCP/DNS probes and failures fed so far, and at the loss peak.
    pub(super) loss_seen: (u64, u64),
    pub(super) loss_at_peak: Option<(u64, u64)>,
}

pub(super) const PPM: i64 = 1_000_000;
/// The upload tests' slot (their CUSUM towards `throughput`'s end).
pub(super) const UP: usize = Trigger::N;
const SLOTS: usize = Trigger::N + 1;

impl EndTrack {
    pub(super) fn new(th: &Th) -> Self {
        let ppm = |r: f64| (r.clamp(0.0, 1.0) * PPM as f64).round() as i64;
        let mut rate = [PPM / 2; SLOTS];
        rate[Trigger::Loss as usize] = ppm(th.loss.unwrap_or(1.0));
        rate[Trigger::RttP95 as usize] = PPM / 20;
        rate[Trigger::DnsP95 as usize] = PPM / 20;
        rate[Trigger::HttpP95 as usize] = PPM / 20;
        Self {
            rate,
            sum: [0; SLOTS],
            peak: [0; SLOTS],
            at: [None; SLOTS],
            after_peak: [false; SLOTS],
            hold: Duration::from_millis(th.hold_ms),
            slow_test: None,
            slow_upload: None,
            loss_seen: (0, 0),
            loss_at_peak: None,
        }
    }

    /// The period's own loss: failed over all ICMP/TCP/DNS probes from its
    /// start to its last loss peak (all fed so far without one).
    pub(super) fn loss_ratio(&self) -> Option<f64> {
        let (n, bad) = self.loss_at_peak.unwrap_or(self.loss_seen);
        (n > 0).then(|| bad as f64 / n as f64)
    }

    pub(super) fn step(&mut self, t: Trigger, bad: bool, at: Stamp) {
        self.step_slot(t as usize, bad, at);
    }

    fn step_slot(&mut self, i: usize, bad: bool, at: Stamp) {
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

    /// Feeds a whole time bucket of the window (the samples between a
    /// trip's back-dated start and the trip), `stamp` giving the moment of
    /// a mono ms. The sums at the bucket's last bad sample are the ones a
    /// walk over the samples sees there ([`BadSpan`]), so the end it dates
    /// is exact to the bucket (the first sample after the peak, or the
    /// bucket's newest when that one is in the same bucket).
    pub(super) fn feed_slot(&mut self, s: &Slot, stamp: impl Fn(u64) -> Stamp) {
        let first = stamp(s.first_ms());
        let last = stamp(s.last_ms());
        for p in PopId::ALL {
            let (n, bad) = s.counts(p);
            if n == 0 {
                continue;
            }
            let i = p.trigger() as usize;
            if self.after_peak[i] {
                self.at[i] = Some(first);
                self.after_peak[i] = false;
            }
            let before = self.loss_seen;
            if let Some(b) = s.bad_span(p) {
                // The sum at the bucket's last bad sample: every bad one,
                // the rate taken for the samples up to it.
                let at_last = self.sum[i] + bad as i64 * PPM - b.until_last as i64 * self.rate[i];
                if at_last >= self.peak[i] {
                    self.peak[i] = at_last;
                    self.at[i] = Some(stamp(s.at(b.last)));
                    self.after_peak[i] = true;
                    if p == PopId::Loss {
                        self.loss_at_peak =
                            Some((before.0 + u64::from(b.until_last), before.1 + bad));
                    }
                }
                if self.after_peak[i] && u64::from(b.until_last) < n {
                    // Samples after it in the bucket: the first of them
                    // dates the end; the bucket's newest is the nearest
                    // moment known.
                    self.at[i] = Some(last);
                    self.after_peak[i] = false;
                }
            }
            self.sum[i] += bad as i64 * PPM - n as i64 * self.rate[i];
            if p == PopId::Loss {
                self.loss_seen = (before.0 + n, before.1 + bad);
            }
        }
    }

    pub(super) fn feed(&mut self, fed: Fed, at: Stamp, th: &Th) {
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
            Fed::Test(bps, increase, upload, throttled) => {
                self.step(Trigger::ThrottledName, throttled, at);
                if !upload {
                    self.feed_download(bps, increase, at, th);
                } else if let Some(thr) = th.throughput_up {
                    if bps < thr {
                        self.slow_upload = Some(at);
                    }
                    self.step_slot(UP, bps < thr, at);
                }
            }
            Fed::Nothing => {}
        }
    }

    /// A download test's steps towards `loaded_latency` and `throughput`.
    fn feed_download(&mut self, bps: f64, increase: Option<f64>, at: Stamp, th: &Th) {
        if let (Some(thr), Some(inc)) = (th.loaded, increase) {
            self.step(Trigger::LoadedLatency, inc > thr, at);
        }
        if let Some(thr) = th.throughput {
            if bps < thr {
                self.slow_test = Some(at);
            }
            self.step(Trigger::Throughput, bps < thr, at);
        }
    }

    /// The end so far over the triggers in `mask`: the latest of theirs.
    ///
    /// Throughput is sparse: its end lies between the last slow test and
    /// the first good one after it (or the hold's expiry). When a dense
    /// trigger (loss, latency) in the same period ends inside that span,
    /// its end is the better estimate and is taken; alone, throughput's
    /// end is the first good test.
    pub(super) fn end(&self, mask: u8) -> Option<Stamp> {
        let tp = Trigger::Throughput as usize;
        let dense = Trigger::ALL
            .into_iter()
            .filter(|t| *t != Trigger::Throughput && mask & t.bit() != 0)
            .filter_map(|t| self.at[t as usize])
            .max_by_key(|s| s.mono);
        let span = |i: usize, slow: Option<Stamp>| {
            self.at[i].map(|at| {
                let hi = if self.after_peak[i] {
                    Stamp {
                        wall: at.wall.checked_add(self.hold).unwrap_or(at.wall),
                        mono: at.mono.saturating_add(self.hold),
                    }
                } else {
                    at
                };
                (slow.unwrap_or(at), hi)
            })
        };
        // Both directions: the period lasts until the later one ended.
        let later = |a: Stamp, b: Stamp| if b.mono > a.mono { b } else { a };
        let sparse = match (span(tp, self.slow_test), span(UP, self.slow_upload)) {
            _ if mask & Trigger::Throughput.bit() == 0 => None,
            (Some((lo, hi)), Some((lo2, hi2))) => Some((later(lo, lo2), later(hi, hi2))),
            (a, b) => a.or(b),
        };
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
    pub(super) fn throughput_held(&self) -> bool {
        self.after_peak[Trigger::Throughput as usize] || self.after_peak[UP]
    }

    /// A down period came between the peak and the next sample: that sample
    /// says nothing of when the slow stretch ended (the outage did).
    pub(super) fn interrupt(&mut self) {
        self.after_peak = [false; SLOTS];
    }

    /// The window, all of it after the end so far, is over a threshold on
    /// its own: the fault came back (weaker than the peak), so the end is
    /// dated from here on.
    pub(super) fn rebase(&mut self, now: Stamp) {
        for i in 0..SLOTS {
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
