//! Latency under load ("bufferbloat") in every throughput test.
//!
//! The idle baseline is the median handshake (time to the SYN-ACK) of the
//! test's own load connections, made before any load flows (the caller
//! passes it to [`summarise`]; [`idle`] remains for a test without load
//! connections of its own). While the
//! load runs, every [`TICK`]:
//!
//! - a *foreign* probe: a new TCP connection to the server, timed to its
//!   SYN-ACK (closed at once with a reset, as the `tcp` kind does). Its
//!   answer waits in the same queues as the load's data, so its time is the
//!   round trip a new flow (a web page, a call) gets while the link is busy;
//! - *self* samples: `TCP_INFO` of each load connection — `tcpi_rtt` (the
//!   sender's smoothed RTT) on uploads, `tcpi_rcv_rtt` (the receiver's
//!   timestamp-based estimate) on downloads. This is the substitute the
//!   responsiveness draft allows for in-connection probes on HTTP/1.1.
//!
//! Samples count only once the goodput is stable: the bytes of four
//! consecutive 1 s intervals within ±5 % of their mean (as in
//! draft-ietf-ippm-responsiveness). A test that never gets there is
//! `not_saturated`: its figures are kept, marked, and never graded. As in the
//! draft, the latency must settle too: counting starts where four 1 s moving
//! averages of the foreign probes' latency are within ±5 % of their mean
//! (a loss-based sender keeps filling a deep buffer for seconds after the
//! link is saturated); if it never settles, counting starts at goodput's
//! stability.
//!
//! The figures: loaded RTT p50/p90 of the foreign probes (the same kind of
//! probe as the idle baseline), the increase of that p50 over the idle
//! baseline, the bufferbloat grade of the increase (A+ < 5 ms, A < 30,
//! B < 60, C < 200, D < 400, F), and RPM = 60 s / (½ TM(foreign) + ½ TM(self)),
//! TM the mean of the samples up to their 95th percentile (the draft's
//! trimmed mean; one kind alone when the other has no sample).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::net::connect;
use crate::config::Direction;

/// Sampling period under load (the draft: at most 250 ms).
pub const TICK: Duration = Duration::from_millis(250);
/// Idle connects before the load.
pub const IDLE_PROBES: usize = 5;
/// Goodput is stable when this many consecutive 1 s intervals are within
/// [`STABLE_SHARE`] of their mean.
pub const STABLE_INTERVALS: usize = 4;
pub const STABLE_SHARE: f64 = 0.05;
/// Fewer counted samples than this: confidence `low`.
pub const LOW_CONFIDENCE_BELOW: usize = 20;
/// A foreign probe that takes longer is lost (not a sample).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Foreign probes in flight at most (a deep queue makes each take long).
const MAX_IN_FLIGHT: usize = 8;

/// Bufferbloat grade of a latency increase (the DSLReports/Waveform cut-offs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Grade {
    #[serde(rename = "A+")]
    APlus,
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    /// The grade of an increase over idle.
    pub fn of(increase: Duration) -> Self {
        let ms = increase.as_secs_f64() * 1e3;
        match ms {
            m if m < 5.0 => Grade::APlus,
            m if m < 30.0 => Grade::A,
            m if m < 60.0 => Grade::B,
            m if m < 200.0 => Grade::C,
            m if m < 400.0 => Grade::D,
            _ => Grade::F,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::APlus => "A+",
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Grade::APlus,
            Grade::A,
            Grade::B,
            Grade::C,
            Grade::D,
            Grade::F,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// How far the figures can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Fewer than [`LOW_CONFIDENCE_BELOW`] counted samples.
    Low,
    Normal,
}

/// Latency under load of one throughput test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedLatency {
    /// Median idle connect time to the server before the test.
    pub idle_rtt_seconds: Option<f64>,
    /// Foreign-probe RTT under load, counted samples only.
    pub loaded_rtt_p50_seconds: Option<f64>,
    pub loaded_rtt_p90_seconds: Option<f64>,
    /// Median of the load connections' own RTT samples (`TCP_INFO`).
    pub self_rtt_p50_seconds: Option<f64>,
    /// `loaded_rtt_p50 − idle_rtt` (never below 0).
    pub latency_increase_seconds: Option<f64>,
    /// Round trips per minute under load (see the module docs).
    pub rpm: Option<f64>,
    /// Bufferbloat grade of the increase; `None` when not saturated or no sample.
    pub grade: Option<Grade>,
    /// Counted samples: foreign and self.
    pub samples: usize,
    pub foreign_samples: usize,
    pub self_samples: usize,
    /// Foreign probes that timed out or failed under load.
    pub probes_lost: usize,
    /// Foreign probes sent (idle and loaded): the probe's extra connections.
    pub probe_connections: usize,
    pub confidence: Confidence,
    /// Goodput never held steady (±5 % over 4 s): the figures are not graded.
    pub not_saturated: bool,
    /// The congestion control the load connections used (`TCP_CONGESTION`).
    pub congestion: Option<String>,
    /// Set when the sender is delay-based (BBR): it keeps queues short by
    /// design, so a good grade says little about the buffer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LoadedLatency {
    /// The grade's text, or `not_saturated`/`-`.
    pub fn grade_text(&self) -> &'static str {
        match (self.grade, self.not_saturated) {
            (Some(g), _) => g.as_str(),
            (None, true) => "not_saturated",
            (None, false) => "-",
        }
    }
}

/// What the sampler shares with the load: the load connections
/// (duplicated descriptors, for `TCP_INFO`) while they are open.
#[derive(Default)]
pub struct Shared {
    sockets: Mutex<Vec<(u64, socket2::Socket)>>,
    next: std::sync::atomic::AtomicU64,
    /// The congestion control of the first load connection, read when it
    /// was added (the connection may be closed by the time it is reported).
    congestion: std::sync::OnceLock<String>,
}

/// A load connection registered with [`Shared`]: dropping it (with the
/// connection) closes the duplicate. A duplicate that outlived its
/// connection would keep the socket open: the server would go on sending
/// into it (a download) or wait for the end of the body (an upload) and
/// compete with the connections still measuring.
pub struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

impl Shared {
    /// Keeps a duplicate of a load connection's socket for sampling, until
    /// the returned guard is dropped.
    pub fn add(&self, tcp: &tokio::net::TcpStream) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        match socket2::SockRef::from(tcp).try_clone() {
            Ok(s) => {
                if let Ok(name) = s.tcp_congestion() {
                    let name = String::from_utf8_lossy(&name);
                    let _ = self.congestion.set(name.trim_end_matches('\0').to_owned());
                }
                self.sockets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((id, s));
            }
            Err(e) => {
                tracing::debug!(error = %e, "failed to duplicate a load connection for TCP_INFO")
            }
        }
        Registered { shared: self, id }
    }

    /// The congestion control of the first load connection.
    fn congestion(&self) -> Option<String> {
        self.congestion.get().cloned()
    }
}

/// Idle baseline: the median of [`IDLE_PROBES`] sequential connects, each
/// bounded by `deadline`. Returns the times and the connects made.
pub async fn idle(addr: SocketAddr, deadline: Instant) -> (Option<Duration>, usize) {
    let mut times = Vec::with_capacity(IDLE_PROBES);
    let mut made = 0;
    for _ in 0..IDLE_PROBES {
        let until = deadline.min(Instant::now() + PROBE_TIMEOUT);
        made += 1;
        if let (Ok(t), _) = connect::connect(addr, until).await {
            times.push(t);
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    times.sort_unstable();
    (times.get(times.len() / 2).copied(), made)
}

/// Raw samples of the loaded phase.
#[derive(Debug, Default, Clone)]
pub struct Raw {
    pub foreign: Vec<Duration>,
    pub self_rtt: Vec<Duration>,
    pub lost: usize,
    pub probes: usize,
    pub saturated: bool,
}

/// Samples as taken: each with its tick (self) or the tick its probe was
/// sent at (foreign; `None` = lost), and the tick goodput became stable.
#[derive(Debug, Default)]
struct Taken {
    foreign: Vec<(usize, Option<Duration>)>,
    self_rtt: Vec<(usize, Duration)>,
    probes: usize,
    stable_at: Option<usize>,
}

impl Taken {
    /// The samples that count: from the tick the foreign latency became
    /// stable too (the draft's second condition: four 1 s moving averages
    /// within ±5 % of their mean) after goodput was, or from goodput's
    /// stability when latency never settled.
    fn counted(self, per_second: usize) -> Raw {
        let Some(g) = self.stable_at else {
            return Raw {
                probes: self.probes,
                ..Raw::default()
            };
        };
        let last = self.foreign.iter().map(|f| f.0).max().unwrap_or(0);
        let seconds = last / per_second + 1;
        // Mean foreign latency per 1 s interval (by send tick).
        let means: Vec<Option<f64>> = (0..seconds)
            .map(|i| {
                let v: Vec<f64> = self
                    .foreign
                    .iter()
                    .filter(|f| f.0 / per_second == i)
                    .filter_map(|f| f.1.map(|d| d.as_secs_f64()))
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect();
        let ma = |i: usize| -> Option<f64> {
            let w = means.get(i + 1 - STABLE_INTERVALS.min(i + 1)..=i)?;
            let v: Vec<f64> = w.iter().flatten().copied().collect();
            (v.len() == STABLE_INTERVALS).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let from_second = (g / per_second + 2 * STABLE_INTERVALS - 2..seconds)
            .find(|&i| {
                let mas: Vec<f64> = (i + 1 - STABLE_INTERVALS..=i).filter_map(ma).collect();
                if mas.len() < STABLE_INTERVALS {
                    return false;
                }
                let mean = mas.iter().sum::<f64>() / mas.len() as f64;
                mas.iter().all(|m| (m - mean).abs() <= STABLE_SHARE * mean)
            })
            .map(|i| (i + 1 - STABLE_INTERVALS) * per_second);
        let from = from_second.map_or(g, |t| t.max(g));
        let mut raw = Raw {
            probes: self.probes,
            saturated: true,
            ..Raw::default()
        };
        for (_, d) in self.foreign.into_iter().filter(|f| f.0 >= from) {
            match d {
                Some(d) => raw.foreign.push(d),
                None => raw.lost += 1,
            }
        }
        raw.self_rtt = self
            .self_rtt
            .into_iter()
            .filter(|s| s.0 >= from)
            .map(|s| s.1)
            .collect();
        raw
    }
}

/// Samples until `stop` is cancelled: goodput from `counter` (body bytes so
/// far), foreign probes to `addr`, `TCP_INFO` of `shared`'s sockets.
pub async fn sample(
    addr: SocketAddr,
    direction: Direction,
    counter: &AtomicU64,
    shared: &Shared,
    stop: CancellationToken,
) -> Raw {
    let mut taken = Taken::default();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Cumulative bytes at each tick: 1 s intervals end at every tick.
    let mut totals: Vec<u64> = Vec::new();
    let mut probes: JoinSet<(usize, Option<Duration>)> = JoinSet::new();
    let per_second = (Duration::from_secs(1).as_millis() / TICK.as_millis()) as usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
            Some(done) = probes.join_next(), if !probes.is_empty() => {
                if let Ok(f) = done {
                    taken.foreign.push(f);
                }
                continue;
            }
        }
        let tick = totals.len();
        totals.push(counter.load(Ordering::Relaxed));
        if taken.stable_at.is_none() && stable(&totals, per_second) {
            taken.stable_at = Some(tick);
        }
        if probes.len() < MAX_IN_FLIGHT {
            taken.probes += 1;
            probes.spawn(async move {
                let (t, _) = connect::connect(addr, Instant::now() + PROBE_TIMEOUT).await;
                (tick, t.ok())
            });
        }
        let sockets = shared.sockets.lock().unwrap_or_else(|e| e.into_inner());
        for (_, s) in sockets.iter() {
            match tcp_info::rtt(s, direction) {
                Ok(Some(rtt)) => taken.self_rtt.push((tick, rtt)),
                Ok(None) => {}
                Err(e) => tracing::trace!(error = %e, "TCP_INFO failed"),
            }
        }
    }
    // Probes still in flight when the load ended: their answer is no longer
    // under load; dropped.
    probes.abort_all();
    taken.counted(per_second)
}

/// Goodput is stable at the last tick: the last [`STABLE_INTERVALS`] 1 s
/// intervals (ending at the last tick, `per_second` ticks apart) are all
/// within ±[`STABLE_SHARE`] of their mean, and the link moved something.
pub fn stable(totals: &[u64], per_second: usize) -> bool {
    let need = STABLE_INTERVALS * per_second + 1;
    if totals.len() < need {
        return false;
    }
    let tail = &totals[totals.len() - need..];
    let intervals: Vec<f64> = (0..STABLE_INTERVALS)
        .map(|i| tail[(i + 1) * per_second].saturating_sub(tail[i * per_second]) as f64)
        .collect();
    let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
    mean > 0.0
        && intervals
            .iter()
            .all(|b| (b - mean).abs() <= STABLE_SHARE * mean)
}

/// The `q` quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The draft's trimmed mean: the mean of the samples up to the 95th percentile.
fn trimmed_mean(sorted: &[Duration]) -> Option<f64> {
    let p95 = quantile(sorted, 0.95)?;
    let kept: Vec<f64> = sorted
        .iter()
        .filter(|d| **d <= p95)
        .map(|d| d.as_secs_f64())
        .collect();
    (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
}

/// The figures of a test from its idle baseline and loaded samples.
pub fn summarise(
    idle: Option<Duration>,
    idle_probes: usize,
    mut raw: Raw,
    congestion: Option<String>,
) -> LoadedLatency {
    raw.foreign.sort_unstable();
    raw.self_rtt.sort_unstable();
    let p50 = quantile(&raw.foreign, 0.5);
    let p90 = quantile(&raw.foreign, 0.9);
    let increase = match (p50, idle) {
        (Some(l), Some(i)) => Some(l.saturating_sub(i)),
        _ => None,
    };
    let rpm = match (trimmed_mean(&raw.foreign), trimmed_mean(&raw.self_rtt)) {
        (Some(f), Some(s)) => Some(0.5 * f + 0.5 * s),
        (Some(m), None) | (None, Some(m)) => Some(m),
        (None, None) => None,
    }
    .filter(|m| *m > 0.0)
    .map(|m| 60.0 / m);
    let samples = raw.foreign.len() + raw.self_rtt.len();
    let delay_based = congestion.as_deref().is_some_and(|c| c.starts_with("bbr"));
    LoadedLatency {
        idle_rtt_seconds: idle.map(|d| d.as_secs_f64()),
        loaded_rtt_p50_seconds: p50.map(|d| d.as_secs_f64()),
        loaded_rtt_p90_seconds: p90.map(|d| d.as_secs_f64()),
        self_rtt_p50_seconds: quantile(&raw.self_rtt, 0.5).map(|d| d.as_secs_f64()),
        latency_increase_seconds: increase.map(|d| d.as_secs_f64()),
        rpm,
        grade: increase.filter(|_| raw.saturated).map(Grade::of),
        samples,
        foreign_samples: raw.foreign.len(),
        self_samples: raw.self_rtt.len(),
        probes_lost: raw.lost,
        probe_connections: idle_probes + raw.probes,
        confidence: if samples < LOW_CONFIDENCE_BELOW {
            Confidence::Low
        } else {
            Confidence::Normal
        },
        not_saturated: !raw.saturated,
        note: delay_based.then(|| {
            "delay-based sender (BBR) keeps the queue short by design: set congestion = \"cubic\" to measure the buffer".to_owned()
        }),
        congestion,
    }
}

/// The congestion control of the load, read back from its first connection.
pub fn congestion_of(shared: &Shared) -> Option<String> {
    shared.congestion()
}

/// Sets `TCP_CONGESTION` on a load connection; the error says what the
/// kernel offers.
pub fn set_congestion(tcp: &tokio::net::TcpStream, name: &str) -> Result<(), String> {
    socket2::SockRef::from(tcp)
        .set_tcp_congestion(name.as_bytes())
        .map_err(|e| {
            let available =
                std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "unknown".to_owned());
            let allowed =
                std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "unknown".to_owned());
            format!(
                "failed to set congestion = \"{name}\" on a load connection: {e}; the kernel offers \
                 [{available}] (allowed without CAP_NET_ADMIN: [{allowed}]); load the module \
                 (modprobe tcp_{name}) or choose one of those"
            )
        })
}

/// `TCP_INFO`: the one `getsockopt` no dependency of ours wraps.
#[allow(unsafe_code)]
mod tcp_info {
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use crate::config::Direction;

    /// Offsets in `struct tcp_info` (linux/tcp.h, stable ABI): eight `u8`
    /// fields, then `u32`s: `tcpi_rtt` is the 16th u32, `tcpi_rcv_rtt` the 22nd.
    const RTT_AT: usize = 8 + 15 * 4;
    const RCV_RTT_AT: usize = 8 + 21 * 4;
    const LEN: usize = 104;

    /// The load connection's RTT estimate for `direction`: the sender's
    /// `tcpi_rtt` (uploads) or the receiver's `tcpi_rcv_rtt` (downloads);
    /// `None` while the kernel has no estimate (0).
    pub fn rtt(s: &socket2::Socket, direction: Direction) -> std::io::Result<Option<Duration>> {
        let mut buf = [0u8; LEN];
        let mut len = LEN as libc::socklen_t;
        // SAFETY: `buf` is a live, writable buffer of `len` bytes; the kernel
        // writes at most `len` bytes and updates `len`; the descriptor is
        // owned by `s` for the whole call.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let at = match direction {
            Direction::Upload => RTT_AT,
            Direction::Download => RCV_RTT_AT,
        };
        if (len as usize) < at + 4 {
            return Ok(None);
        }
        let us = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        Ok((us > 0).then(|| Duration::from_micros(u64::from(us))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grades_follow_the_published_cut_offs() {
        assert_eq!(Grade::of(MS * 4), Grade::APlus);
        assert_eq!(Grade::of(MS * 5), Grade::A);
        assert_eq!(Grade::of(MS * 29), Grade::A);
        assert_eq!(Grade::of(MS * 59), Grade::B);
        assert_eq!(Grade::of(MS * 199), Grade::C);
        assert_eq!(Grade::of(MS * 399), Grade::D);
        assert_eq!(Grade::of(MS * 400), Grade::F);
        assert!(Grade::B < Grade::D);
        assert_eq!(Grade::parse("A+"), Some(Grade::APlus));
    }

    #[test]
    fn stability_needs_four_steady_seconds() {
        // 4 ticks a second, 1000 bytes a tick: steady after 16 ticks (+1).
        let steady: Vec<u64> = (0..=16).map(|i| i * 1000).collect();
        assert!(stable(&steady, 4));
        assert!(!stable(&steady[..16], 4));
        // One interval 10 % short.
        let mut uneven = steady.clone();
        for t in uneven.iter_mut().skip(5) {
            *t -= 400;
        }
        assert!(!stable(&uneven, 4));
        assert!(!stable(&[0; 17], 4));
    }

    #[test]
    fn summary_grades_only_saturated_tests_and_computes_rpm() {
        let raw = Raw {
            foreign: (0..30).map(|i| MS * (500 + i)).collect(),
            self_rtt: vec![MS * 500; 10],
            lost: 1,
            probes: 31,
            saturated: true,
        };
        let l = summarise(Some(MS * 2), 5, raw.clone(), Some("cubic".into()));
        assert_eq!(l.grade, Some(Grade::F));
        assert!((l.latency_increase_seconds.unwrap() - 0.512).abs() < 1e-9);
        assert_eq!(l.samples, 40);
        assert_eq!(l.confidence, Confidence::Normal);
        assert_eq!(l.probe_connections, 36);
        let rpm = l.rpm.unwrap();
        assert!((110.0..125.0).contains(&rpm), "{rpm}");
        assert!(l.note.is_none());
        let l = summarise(
            Some(MS * 2),
            5,
            Raw {
                saturated: false,
                ..raw
            },
            Some("bbr".into()),
        );
        assert_eq!(l.grade, None);
        assert_eq!(l.grade_text(), "not_saturated");
        assert!(l.note.unwrap().contains("BBR"));
    }

    #[tokio::test]
    async fn tcp_info_reads_a_loopback_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _server = accept.await.unwrap();
        let shared = Shared::default();
        let registered = shared.add(&client);
        let sockets = shared.sockets.lock().unwrap();
        // The handshake gave the sender an RTT estimate.
        let rtt = tcp_info::rtt(&sockets[0].1, Direction::Upload).unwrap();
        assert!(rtt.is_some_and(|r| r < Duration::from_secs(1)), "{rtt:?}");
        drop(sockets);
        drop(registered);
        // The duplicate is closed with its connection; the name stays.
        assert!(shared.sockets.lock().unwrap().is_empty());
        assert!(congestion_of(&shared).is_some());
        assert!(set_congestion(&client, "no-such-cc").is_err());
    }
}
