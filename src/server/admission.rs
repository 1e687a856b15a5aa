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
//! 256 of them stay under 5 MiB and a quarter of the common soft descriptor
//! limit (1024), leaving the probes room. With the header read timeout, one
//! peer can hold 16 slots at most; filling all 256 takes 16 addresses or
//! more (an IPv6 peer is its /64, the block one host usually has).
//!
//! Behind a reverse proxy every client is the proxy's address and shares its
//! 16 connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::time::Instant;

/// Connections served at once, from all peers.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once from one peer.
pub const MAX_PER_PEER: usize = 16;
/// At most one warning about rejected connections per this period.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

pub const HTTP_CONNECTIONS_REJECTED_TOTAL: &str = "linkwatch_http_connections_rejected_total";

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

/// Connections open now, in all and by peer.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Held by a connection while it is open; frees its slot when dropped.
#[derive(Debug)]
pub struct Permit {
    open: Arc<Mutex<Open>>,
    peer: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total = open.total.saturating_sub(1);
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
    max_per_peer: usize,
    open: Arc<Mutex<Open>>,
    rejected: PerReason<IntCounter>,
    /// Rejections not yet logged.
    unlogged: PerReason<u64>,
    last_peer: Option<IpAddr>,
    last_warn: Option<Instant>,
}

impl Admission {
    /// The caps above, with the rejection counter registered in `registry`.
    pub fn new(registry: &Registry) -> Self {
        Self::with_caps(registry, MAX_CONNECTIONS, MAX_PER_PEER)
    }

    pub fn with_caps(registry: &Registry, max_total: usize, max_per_peer: usize) -> Self {
        let rejected = IntCounterVec::new(
            Opts::new(
                HTTP_CONNECTIONS_REJECTED_TOTAL,
                "HTTP connections closed on accept: `total_cap` (too many open) or `per_peer` (too many from one address).",
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
            max_per_peer,
            open: Arc::default(),
            rejected: PerReason {
                total_cap: counter(Rejection::TotalCap),
                per_peer: counter(Rejection::PerPeer),
            },
            unlogged: PerReason::default(),
            last_peer: None,
            last_warn: None,
        }
    }

    /// A slot for a connection from `peer`, or `None` (counted and logged)
    /// when a cap is reached.
    pub fn admit(&mut self, peer: IpAddr, now: Instant) -> Option<Permit> {
        let peer = peer_key(peer);
        let rejection = {
            let mut open = lock(&self.open);
            let from_peer = open.by_peer.get(&peer).copied().unwrap_or(0);
            if open.total >= self.max_total {
                Some(Rejection::TotalCap)
            } else if from_peer >= self.max_per_peer {
                Some(Rejection::PerPeer)
            } else {
                open.total += 1;
                open.by_peer.insert(peer, from_peer + 1);
                None
            }
        };
        match rejection {
            None => Some(Permit {
                open: self.open.clone(),
                peer,
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
            max_per_peer = self.max_per_peer,
            "HTTP connections rejected: too many open, in all or from one address (counted in {HTTP_CONNECTIONS_REJECTED_TOTAL})"
        );
        self.last_warn = Some(now);
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        lock(&self.open).total
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
        let mut a = Admission::with_caps(&reg, 4, 2);
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
        let mut a = Admission::with_caps(&reg, 3, 2);
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
        let mut a = Admission::with_caps(&reg, 10, 1);
        let now = Instant::now();
        let _p = a.admit(ip("2001:db8::1"), now).unwrap();
        assert!(a.admit(ip("2001:db8::2"), now).is_none());
        assert!(a.admit(ip("2001:db8:0:1::2"), now).is_some());
    }

    #[test]
    fn rejections_are_logged_at_most_once_per_period() {
        let reg = Registry::new();
        let mut a = Admission::with_caps(&reg, 0, 0);
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
