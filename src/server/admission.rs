//! Which HTTP connections the server takes.
//!
//! At most [`MAX_CONNECTIONS`] at once, and at most [`MAX_PER_PEER`] from one
//! peer, so that one slow or hostile client cannot keep scrapes and health
//! checks from others out. A connection over either cap is closed at once,
//! counted in `linkwatch_http_connections_rejected_total{reason}` and logged at
//! warn, at most once per [`WARN_EVERY`] with the counts since the last one.
//!
//! Sizes, for real use: a Prometheus server keeps one connection per
//! target, a browser at most six per host, so a handful of scrapers and
//! dashboards use well under 16 from one address and under 256 in all. Each
//! connection costs one task, one descriptor and at most a 16 KiB head buffer:
//! 256 of them (320 with the trusted peers' 64) stay under 6 MiB and a third
//! of the common soft descriptor limit (1024), leaving the probes room. With the header read timeout, one
//! peer can hold 16 slots at most; filling all 256 takes 16 addresses or
//! more (an IPv6 peer is its /64, the block one host usually has).
//!
//! Behind a reverse proxy every client is the proxy's address and shares its
//! 16 connections.
//!
//! Trusted peers (`[daemon] trusted_peers`, loopback by default) have
//! [`MAX_TRUSTED_CONNECTIONS`] slots of their own besides: a flood from
//! untrusted addresses fills the 256 and no more, and the local Prometheus
//! or health check still gets in. The per-peer cap holds for them too, so
//! one trusted address (a reverse proxy on loopback) cannot take every
//! trusted slot either.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::time::Instant;

use crate::config::Cidr;

/// Connections served at once, from all untrusted peers.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once from trusted peers, besides [`MAX_CONNECTIONS`].
pub const MAX_TRUSTED_CONNECTIONS: usize = 64;
/// Connections served at once from one peer.
pub const MAX_PER_PEER: usize = 16;
/// At most one warning about rejected connections per this period.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

pub const HTTP_CONNECTIONS_REJECTED_TOTAL: &str = "linkwatch_http_connections_rejected_total";
pub const HTTP_CONNECTIONS_TIMED_OUT_TOTAL: &str = "linkwatch_http_connections_timed_out_total";

/// The address blocks whose connections have slots of their own; shared
/// with the reload, which may change them while the server runs.
#[derive(Debug, Clone)]
pub struct TrustedPeers(Arc<RwLock<Arc<[Cidr]>>>);

impl TrustedPeers {
    pub fn new(blocks: &[Cidr]) -> Self {
        Self(Arc::new(RwLock::new(blocks.into())))
    }

    /// Whether `ip` is in one of the blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.get().iter().any(|b| b.contains(ip))
    }

    pub fn get(&self) -> Arc<[Cidr]> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the blocks (connections open now keep the slot they have);
    /// logs when they changed.
    pub fn set(&self, blocks: &[Cidr]) {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        if **current != *blocks {
            tracing::info!(
                trusted_peers = %blocks.iter().map(Cidr::to_string).collect::<Vec<_>>().join(", "),
                "HTTP trusted peers changed"
            );
            *current = blocks.into();
        }
    }
}

/// Counts connections the header read timeout closed, by whether they had
/// sent a request before (`idle`: a kept-alive connection sent no next
/// request) or not (`no_request`: silent or trickling from the start).
#[derive(Debug, Clone)]
pub struct Timeouts {
    no_request: IntCounter,
    idle: IntCounter,
    handshake: IntCounter,
}

impl Timeouts {
    fn new(registry: &Registry) -> Self {
        let vec = IntCounterVec::new(
            Opts::new(
                HTTP_CONNECTIONS_TIMED_OUT_TOTAL,
                "HTTP connections closed because no complete request head came in time: `no_request` (none since the connection opened) or `idle` (none after an earlier request on a kept-alive connection); `handshake`: a TLS handshake not done within its timeout.",
            ),
            &["reason"],
        )
        .expect("static metric definition is valid");
        if let Err(e) = registry.register(Box::new(vec.clone())) {
            tracing::error!(error = %e, metric = HTTP_CONNECTIONS_TIMED_OUT_TOTAL, "failed to register a metric");
        }
        Self {
            no_request: vec.with_label_values(&["no_request"]),
            idle: vec.with_label_values(&["idle"]),
            handshake: vec.with_label_values(&["handshake"]),
        }
    }

    /// Counts one TLS connection closed because its handshake took too long.
    pub fn count_handshake(&self) {
        self.handshake.inc();
    }

    /// Counts one connection closed by the timeout after `requests` requests.
    pub fn count(&self, requests: u64) {
        if requests == 0 {
            self.no_request.inc();
        } else {
            self.idle.inc();
        }
    }
}

/// Why a connection was refused; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// [`MAX_CONNECTIONS`] were open.
    TotalCap,
    /// [`MAX_PER_PEER`] were open from the same peer.
    PerPeer,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TotalCap => "total_cap",
            Rejection::PerPeer => "per_peer",
        }
    }
}

/// One value per [`Rejection`].
#[derive(Debug, Default, Clone)]
struct PerReason<T> {
    total_cap: T,
    per_peer: T,
}

impl<T> PerReason<T> {
    fn get_mut(&mut self, r: Rejection) -> &mut T {
        match r {
            Rejection::TotalCap => &mut self.total_cap,
            Rejection::PerPeer => &mut self.per_peer,
        }
    }
}

/// Connections open now, in all (untrusted and trusted) and by peer.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    trusted: usize,
    by_peer: HashMap<IpAddr, usize>,
}

impl Open {
    fn pool(&mut self, trusted: bool) -> &mut usize {
        if trusted {
            &mut self.trusted
        } else {
            &mut self.total
        }
    }
}

/// Held by a connection while it is open; frees its slot when dropped.
#[derive(Debug)]
pub struct Permit {
    open: Arc<Mutex<Open>>,
    peer: IpAddr,
    trusted: bool,
}

impl Permit {
    /// Whether the connection has one of the trusted peers' slots.
    pub fn trusted(&self) -> bool {
        self.trusted
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        let pool = open.pool(self.trusted);
        *pool = pool.saturating_sub(1);
        if let Some(n) = open.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

fn lock(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// The admission policy of one listener; owned by its accept loop.
pub struct Admission {
    max_total: usize,
    max_trusted: usize,
    max_per_peer: usize,
    trusted: TrustedPeers,
    open: Arc<Mutex<Open>>,
    rejected: PerReason<IntCounter>,
    timeouts: Timeouts,
    /// Rejections not yet logged.
    unlogged: PerReason<u64>,
    last_peer: Option<IpAddr>,
    last_warn: Option<Instant>,
}

impl Admission {
    /// The caps above, with the rejection and timeout counters registered in
    /// `registry`.
    pub fn new(registry: &Registry, trusted: TrustedPeers) -> Self {
        Self::with_caps(
            registry,
            trusted,
            [MAX_CONNECTIONS, MAX_TRUSTED_CONNECTIONS, MAX_PER_PEER],
        )
    }

    /// `caps`: in all from untrusted peers, in all from trusted ones, per peer.
    pub fn with_caps(registry: &Registry, trusted: TrustedPeers, caps: [usize; 3]) -> Self {
        let [max_total, max_trusted, max_per_peer] = caps;
        let rejected = IntCounterVec::new(
            Opts::new(
                HTTP_CONNECTIONS_REJECTED_TOTAL,
                "HTTP connections closed on accept: `total_cap` (too many open, from untrusted or from trusted peers) or `per_peer` (too many from one address).",
            ),
            &["reason"],
        )
        .expect("static metric definition is valid");
        if let Err(e) = registry.register(Box::new(rejected.clone())) {
            // Only a second server on the same registry gets here; it counts
            // without exporting rather than not serving.
            tracing::error!(error = %e, metric = HTTP_CONNECTIONS_REJECTED_TOTAL, "failed to register a metric");
        }
        let counter = |r: Rejection| rejected.with_label_values(&[r.as_str()]);
        Self {
            max_total,
            max_trusted,
            max_per_peer,
            trusted,
            open: Arc::default(),
            rejected: PerReason {
                total_cap: counter(Rejection::TotalCap),
                per_peer: counter(Rejection::PerPeer),
            },
            timeouts: Timeouts::new(registry),
            unlogged: PerReason::default(),
            last_peer: None,
            last_warn: None,
        }
    }

    /// Where connections closed by the header read timeout are counted.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.clone()
    }

    /// A slot for a connection from `peer`, or `None` (counted and logged)
    /// when a cap is reached.
    pub fn admit(&mut self, peer: IpAddr, now: Instant) -> Option<Permit> {
        let trusted = self.trusted.contains(peer);
        // A trusted address is counted alone: untrusted neighbours in its
        // IPv6 /64 do not use up its share.
        let peer = if trusted {
            peer.to_canonical()
        } else {
            peer_key(peer)
        };
        let max = if trusted {
            self.max_trusted
        } else {
            self.max_total
        };
        let rejection = {
            let mut open = lock(&self.open);
            let from_peer = open.by_peer.get(&peer).copied().unwrap_or(0);
            if *open.pool(trusted) >= max {
                Some(Rejection::TotalCap)
            } else if from_peer >= self.max_per_peer {
                Some(Rejection::PerPeer)
            } else {
                *open.pool(trusted) += 1;
                open.by_peer.insert(peer, from_peer + 1);
                None
            }
        };
        match rejection {
            None => Some(Permit {
                open: self.open.clone(),
                peer,
                trusted,
            }),
            Some(r) => {
                self.rejected.get_mut(r).inc();
                *self.unlogged.get_mut(r) += 1;
                self.last_peer = Some(peer);
                if self.last_warn.is_none_or(|at| now >= at + WARN_EVERY) {
                    self.warn(now);
                }
                None
            }
        }
    }

    /// When rejections not yet logged may be, if there are any.
    pub fn warn_due(&self) -> Option<Instant> {
        let pending = self.unlogged.total_cap + self.unlogged.per_peer > 0;
        // Without an earlier warning nothing is pending: `admit` logs the
        // first rejection at once.
        pending.then(|| {
            self.last_warn
                .map_or_else(Instant::now, |at| at + WARN_EVERY)
        })
    }

    /// Logs the rejections since the last warning.
    pub fn warn(&mut self, now: Instant) {
        let PerReason {
            total_cap,
            per_peer,
        } = std::mem::take(&mut self.unlogged);
        if total_cap + per_peer == 0 {
            return;
        }
        let since = self.last_warn.map(|t| now.saturating_duration_since(t));
        tracing::warn!(
            total_cap,
            per_peer,
            seconds_since_last_warning = since.map(|d| d.as_secs_f64()),
            last_peer = self.last_peer.map(tracing::field::display),
            max_connections = self.max_total,
            max_trusted_connections = self.max_trusted,
            max_per_peer = self.max_per_peer,
            "HTTP connections rejected: too many open, in all or from one address (counted in {HTTP_CONNECTIONS_REJECTED_TOTAL})"
        );
        self.last_warn = Some(now);
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        let open = lock(&self.open);
        open.total + open.trusted
    }
}

/// The address connections are counted under: IPv4 as is (IPv4-mapped IPv6
/// too), IPv6 by its /64.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nobody() -> TrustedPeers {
        TrustedPeers::new(&[])
    }

    fn trusting(blocks: &[&str]) -> TrustedPeers {
        let blocks: Vec<Cidr> = blocks
            .iter()
            .map(|b| {
                let (a, p) = b.split_once('/').unwrap();
                Cidr::new(ip(a), p.parse().unwrap()).unwrap()
            })
            .collect();
        TrustedPeers::new(&blocks)
    }

    fn timed_out(reg: &Registry, reason: &str) -> u64 {
        reg.gather()
            .iter()
            .filter(|f| f.name() == HTTP_CONNECTIONS_TIMED_OUT_TOTAL)
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == reason))
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    #[test]
    fn a_flood_from_untrusted_peers_leaves_the_trusted_slots_free() {
        let reg = Registry::new();
        let trusted = trusting(&["127.0.0.2/32", "::1/128"]);
        let mut a = Admission::with_caps(&reg, trusted.clone(), [4, 2, 2]);
        let now = Instant::now();
        // Untrusted peers fill their 4 slots, and no more.
        let flood: Vec<_> = (10..20)
            .filter_map(|i| a.admit(ip(&format!("127.0.0.{i}")), now))
            .collect();
        assert_eq!(flood.len(), 4);
        assert!(flood.iter().all(|p| !p.trusted()));
        assert_eq!(rejected(&reg, "total_cap"), 6);
        // The trusted ones still get theirs (an IPv4-mapped address too)...
        let scraper = a.admit(ip("127.0.0.2"), now).unwrap();
        assert!(scraper.trusted());
        let v6 = a.admit(ip("::1"), now).unwrap();
        assert!(v6.trusted());
        // ...up to their own cap, which the untrusted ones do not touch.
        assert!(a.admit(ip("::ffff:127.0.0.2"), now).is_none());
        assert_eq!(rejected(&reg, "total_cap"), 7);
        drop(v6);
        let mapped = a.admit(ip("::ffff:127.0.0.2"), now).unwrap();
        assert!(mapped.trusted());
        // The per-peer cap holds for a trusted peer too.
        assert!(a.admit(ip("127.0.0.2"), now).is_none());
        drop((scraper, mapped));
        assert_eq!(a.open(), 4);
        // An untrusted neighbour in ::1's /64 does not use up ::1's share.
        let mut b = Admission::with_caps(&Registry::new(), trusting(&["::1/128"]), [4, 2, 1]);
        let _n = b.admit(ip("::2"), now).unwrap();
        assert!(b.admit(ip("::3"), now).is_none());
        assert!(b.admit(ip("::1"), now).is_some());
    }

    #[test]
    fn trusted_peers_change_for_new_connections_only() {
        let reg = Registry::new();
        let trusted = nobody();
        let mut a = Admission::with_caps(&reg, trusted.clone(), [1, 1, 1]);
        let now = Instant::now();
        let old = a.admit(ip("127.0.0.2"), now).unwrap();
        assert!(!old.trusted());
        assert!(a.admit(ip("127.0.0.3"), now).is_none());
        trusted.set(&trusting(&["127.0.0.3/32"]).get());
        let new = a.admit(ip("127.0.0.3"), now).unwrap();
        assert!(new.trusted());
        drop(old);
        // The slot the old connection held went back to the untrusted pool.
        assert!(a.admit(ip("127.0.0.4"), now).is_some());
    }

    #[test]
    fn timeouts_are_counted_by_whether_a_request_came_first() {
        let reg = Registry::new();
        let a = Admission::with_caps(&reg, nobody(), [1, 1, 1]);
        let t = a.timeouts();
        t.count(0);
        t.count(0);
        t.count(3);
        assert_eq!(timed_out(&reg, "no_request"), 2);
        assert_eq!(timed_out(&reg, "idle"), 1);
    }

    fn rejected(reg: &Registry, reason: &str) -> u64 {
        reg.gather()
            .iter()
            .filter(|f| f.name() == HTTP_CONNECTIONS_REJECTED_TOTAL)
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == reason))
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    #[test]
    fn one_peer_cannot_take_the_others_slots() {
        let reg = Registry::new();
        let mut a = Admission::with_caps(&reg, nobody(), [4, 0, 2]);
        let now = Instant::now();
        let slow: Vec<_> = (0..5)
            .filter_map(|_| a.admit(ip("127.0.0.3"), now))
            .collect();
        assert_eq!(slow.len(), 2);
        let other = a.admit(ip("127.0.0.2"), now);
        assert!(other.is_some());
        assert_eq!(rejected(&reg, "per_peer"), 3);
        assert_eq!(rejected(&reg, "total_cap"), 0);
        // Both label values exist before any rejection of that kind.
        assert_eq!(
            reg.gather()
                .iter()
                .find(|f| f.name() == HTTP_CONNECTIONS_REJECTED_TOTAL)
                .unwrap()
                .get_metric()
                .len(),
            2
        );
        drop(slow);
        assert_eq!(a.open(), 1);
        assert!(a.admit(ip("127.0.0.3"), now).is_some());
    }

    #[test]
    fn the_total_cap_holds_across_peers() {
        let reg = Registry::new();
        let mut a = Admission::with_caps(&reg, nobody(), [3, 0, 2]);
        let now = Instant::now();
        let held: Vec<_> = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .filter_map(|p| a.admit(ip(p), now))
            .collect();
        assert_eq!(held.len(), 3);
        assert_eq!(rejected(&reg, "total_cap"), 1);
        drop(held);
        assert_eq!(a.open(), 0);
    }

    #[test]
    fn ipv6_peers_count_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(peer_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(peer_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let reg = Registry::new();
        let mut a = Admission::with_caps(&reg, nobody(), [10, 0, 1]);
        let now = Instant::now();
        let _p = a.admit(ip("2001:db8::1"), now).unwrap();
        assert!(a.admit(ip("2001:db8::2"), now).is_none());
        assert!(a.admit(ip("2001:db8:0:1::2"), now).is_some());
    }

    #[test]
    fn rejections_are_logged_at_most_once_per_period() {
        let reg = Registry::new();
        let mut a = Admission::with_caps(&reg, nobody(), [0, 0, 0]);
        let t0 = Instant::now();
        assert_eq!(a.warn_due(), None);
        assert!(a.admit(ip("127.0.0.3"), t0).is_none());
        // The first one is logged at once.
        assert_eq!(a.last_warn, Some(t0));
        assert_eq!(a.warn_due(), None);
        for _ in 0..5 {
            assert!(
                a.admit(ip("127.0.0.3"), t0 + Duration::from_secs(1))
                    .is_none()
            );
        }
        // The next five wait for the period's end.
        assert_eq!(a.last_warn, Some(t0));
        assert_eq!(a.unlogged.total_cap, 5);
        assert_eq!(a.warn_due(), Some(t0 + WARN_EVERY));
        a.warn(t0 + WARN_EVERY);
        assert_eq!(a.warn_due(), None);
        assert_eq!(a.last_warn, Some(t0 + WARN_EVERY));
        assert_eq!(rejected(&reg, "total_cap"), 6);
    }
}
