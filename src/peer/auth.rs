//! Who is calling: the bearer token of a `/api/v1/peer/*` request against
//! every `[[peer]]`'s token, and each peer's request rate.
//!
//! Tokens are compared as SHA-256 digests, byte by byte without an early
//! exit, against every peer's (a match does not stop the loop): the time
//! taken says nothing about how much of a token was right, nor which peer
//! matched. Tokens are never logged or echoed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::peer::PeerSpec;

/// Requests one peer may make per minute, on average.
pub const RATE_PER_MINUTE: u32 = 30;
/// Requests one peer may make at once before the rate applies.
pub const BURST: u32 = 10;

type TokenDigest = [u8; 32];

fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

/// `a == b` in time independent of where they differ.
fn ct_eq(a: &TokenDigest, b: &TokenDigest) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Each peer's name and token digest.
type Digests = Arc<[(String, TokenDigest)]>;

/// The peers' token digests, replaced by a reload.
#[derive(Clone, Default)]
pub struct PeerTokens(Arc<RwLock<Digests>>);

impl PeerTokens {
    pub fn new(peers: &[PeerSpec]) -> Self {
        let t = Self::default();
        t.set(peers);
        t
    }

    /// Takes the tokens of `peers` (read from their files at parse time).
    pub fn set(&self, peers: &[PeerSpec]) {
        let tokens: Vec<(String, TokenDigest)> = peers
            .iter()
            .map(|p| (p.name.clone(), digest(p.token.expose().as_bytes())))
            .collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = tokens.into();
    }

    /// The peer whose token `authorization` (`Bearer <token>`) carries;
    /// `None` without one, with another scheme, or with a token no peer has.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Option<String> {
        let token = bearer(authorization?)?;
        let presented = digest(token);
        let peers = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut found: Option<usize> = None;
        for (i, (_, d)) in peers.iter().enumerate() {
            // No early exit: every peer's digest is compared.
            if ct_eq(&presented, d) {
                found = Some(i);
            }
        }
        found.and_then(|i| peers.get(i).map(|(name, _)| name.clone()))
    }
}

/// The token of `Bearer <token>` (the scheme case-insensitive, RFC 7235).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// A token bucket per peer: [`BURST`] requests at once, refilled at
/// [`RATE_PER_MINUTE`].
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one request of `peer`'s allowance at `now`; `Err` with the
    /// time until the next one is allowed.
    pub fn take(&self, peer: &str, now: Instant) -> Result<(), Duration> {
        let per_second = f64::from(RATE_PER_MINUTE) / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets
            .entry(peer.to_owned())
            .or_insert((f64::from(BURST), now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * per_second;
        *tokens = (*tokens + refill).min(f64::from(BURST));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / per_second;
            Err(Duration::from_secs_f64(wait))
        }
    }

    /// Forgets peers no longer configured.
    pub fn retain(&self, peers: &[PeerSpec]) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| peers.iter().any(|p| &p.name == name));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::notify::Secret;

    fn peer(name: &str, token: &str) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            url: None,
            token_file: "/dev/null".into(),
            token: Secret::new(token.into()),
            ca_file: None,
            compare: Default::default(),
        }
    }

    #[test]
    fn the_matching_token_names_the_peer() {
        let t = PeerTokens::new(&[peer("home", "tok-home"), peer("office", "tok-office")]);
        assert_eq!(
            t.identify(Some(b"Bearer tok-office")),
            Some("office".into())
        );
        assert_eq!(t.identify(Some(b"bearer tok-home")), Some("home".into()));
        assert_eq!(t.identify(Some(b"Bearer tok-hom")), None);
        assert_eq!(t.identify(Some(b"Bearer tok-home2")), None);
        assert_eq!(t.identify(Some(b"Basic tok-home")), None);
        assert_eq!(t.identify(Some(b"Bearer ")), None);
        assert_eq!(t.identify(Some(b"tok-home")), None);
        assert_eq!(t.identify(None), None);
        t.set(&[peer("home", "new")]);
        assert_eq!(t.identify(Some(b"Bearer tok-home")), None);
        assert_eq!(t.identify(Some(b"Bearer new")), Some("home".into()));
    }

    #[test]
    fn the_rate_allows_a_burst_then_one_every_two_seconds() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert!(r.take("home", t0).is_ok());
        }
        let wait = r.take("home", t0).unwrap_err();
        assert!((1.9..=2.1).contains(&wait.as_secs_f64()), "{wait:?}");
        // Another peer has its own bucket.
        assert!(r.take("office", t0).is_ok());
        assert!(r.take("home", t0 + Duration::from_secs(2)).is_ok());
        assert!(r.take("home", t0 + Duration::from_secs(2)).is_err());
    }
}
