//! [`IcmpProber`]: every ICMP target over the two families' sockets, a
//! name resolved first, a raw socket's requests bounded.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::AtomicU16;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::{info, warn};

use super::family::Family;
use super::receive::observed;
use super::socket::{IcmpMode, IcmpSetupError};
use super::table::{TargetState, Waiter};
use super::wire::payload;
use crate::config::{Config, Host, IcmpSpec, TargetSpec};
use crate::probe::net::{resolve, routes};
use crate::probe::seam::{self, Completion, Probe, Request};
use crate::probe::{Observation, Outcome, Reason};

/// Sends ICMP echo requests for every ICMP target over two shared sockets.
pub struct IcmpProber {
    v4: Family,
    /// `Err` holds why IPv6 ICMP is unavailable; IPv6 probes report it.
    v6: Result<Family, String>,
    /// Indexed like `Config::targets`.
    targets: Vec<TargetState>,
    /// Payload bytes, sliced to each target's `payload_size`.
    payload: Vec<u8>,
}

impl IcmpProber {
    /// Opens the IPv4 and IPv6 sockets. Must run inside the tokio runtime.
    ///
    /// Fails only when no IPv4 ICMP socket can be opened; a missing IPv6 stack
    /// is logged and turns IPv6 probes into errors.
    pub fn new(config: &Config) -> Result<Self, IcmpSetupError> {
        let v4 = Family::open(false).map_err(|(dgram, raw)| IcmpSetupError::new(dgram, raw))?;
        let v6 = Family::open(true).map_err(|(dgram, raw)| {
            warn!(dgram = %dgram, raw = %raw, "failed to open an ICMPv6 socket; IPv6 ICMP targets will fail");
            format!(
                "IPv6 ICMP is unavailable: failed to open an ICMPv6 socket: datagram: {dgram}; raw: {raw}"
            )
        });
        info!(
            v4 = v4.mode.as_str(),
            v6 = v6.as_ref().map_or("unavailable", |f| f.mode.as_str()),
            "opened ICMP sockets"
        );
        let payload_size = config
            .targets
            .iter()
            .filter_map(|t| match &t.spec {
                TargetSpec::Icmp(s) => Some(s.payload_size),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Ok(Self {
            v4,
            v6,
            targets: target_states(config),
            payload: payload(payload_size),
        })
    }

    /// Socket mode of the IPv4 socket (always open when the prober exists).
    pub fn mode(&self) -> IcmpMode {
        self.v4.mode
    }

    /// The socket mode per open address family (`ipv4`, `ipv6`), for the metric.
    pub fn modes(&self) -> Vec<(&'static str, IcmpMode)> {
        let mut v = vec![("ipv4", self.mode())];
        if let Some(m6) = self.mode_v6() {
            v.push(("ipv6", m6));
        }
        v
    }

    /// Socket mode of the IPv6 socket, `None` when IPv6 ICMP is unavailable.
    pub fn mode_v6(&self) -> Option<IcmpMode> {
        self.v6.as_ref().ok().map(|f| f.mode)
    }

    fn family(&self, ip: IpAddr) -> Result<&Family, Outcome> {
        match ip {
            IpAddr::V4(_) => Ok(&self.v4),
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .map_err(|e| Outcome::error(Reason::Io, e.clone())),
        }
    }

    /// Sends the echo request once `ip` is known, when a place under
    /// [`RAW_IN_FLIGHT`](super::family::RAW_IN_FLIGHT) is free (waiting for one in a task otherwise).
    fn echo(
        self: &Arc<Self>,
        req: Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        done: Completion,
    ) {
        let place = match self.family(ip) {
            Ok(family) => family.try_permit(),
            Err(outcome) => return seam::finish(done, observed(outcome, ip)),
        };
        match place {
            Ok(permit) => self.send(&req, ip, resolved, permit, done),
            Err(sem) => {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = match tokio::time::timeout_at(req.deadline(), sem.acquire_owned())
                        .await
                    {
                        Ok(Ok(permit)) => return me.send(&req, ip, resolved, Some(permit), done),
                        Ok(Err(_)) => Outcome::error(Reason::Io, "ICMP prober shut down"),
                        Err(_) => Outcome::Timeout { phase: None },
                    };
                    done.complete(observed(outcome, ip)).await;
                });
            }
        }
    }

    /// Sends the echo request and registers `done` for its reply; a failure
    /// to send completes it at once.
    fn send(
        &self,
        req: &Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
        done: Completion,
    ) {
        if let Err((done, outcome)) = self.try_send(req, ip, resolved, permit, done) {
            seam::finish(done, observed(outcome, ip));
        }
    }

    // The error hands the completion back by value; boxing it would allocate
    // on every send to save a copy on the rare failure.
    #[allow(clippy::result_large_err)]
    fn try_send(
        &self,
        req: &Request,
        ip: IpAddr,
        resolved: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
        done: Completion,
    ) -> Result<(), (Completion, Outcome)> {
        let family = match self.family(ip) {
            Ok(f) => f,
            Err(outcome) => return Err((done, outcome)),
        };
        let target = req.target();
        let (Some(state), Ok(spec)) = (self.targets.get(req.index()), req.spec::<IcmpSpec>())
        else {
            let detail = format!("no ICMP state for target {}", target.name);
            return Err((done, Outcome::error(Reason::Io, detail)));
        };
        let fallback;
        let payload = match self.payload.get(..spec.payload_size) {
            Some(p) => p,
            // Sized at start to the largest payload_size of its configuration.
            None => {
                fallback = payload(spec.payload_size);
                &fallback[..]
            }
        };
        if req.deadline() <= Instant::now() {
            return Err((done, Outcome::Timeout { phase: None }));
        }
        let scope_id = match ip {
            IpAddr::V6(v6) if is_link_local(v6) => routes::link_local_scope(v6).unwrap_or(0),
            _ => 0,
        };
        let waiter = Waiter {
            done,
            resolved,
            _permit: permit,
        };
        family
            .send(
                ip,
                scope_id,
                state,
                payload,
                target.timeout,
                req.deadline(),
                waiter,
            )
            .map_err(|(waiter, outcome)| (waiter.done, outcome))
    }
}

impl Probe for IcmpProber {
    /// A literal address is sent to at once; a name or `@gateway` is
    /// resolved in a task first, bounded by the deadline.
    fn start(self: &Arc<Self>, req: Request, done: Completion) {
        let (host, ip_version) = match req.spec::<IcmpSpec>() {
            Ok(spec) => (&spec.host, spec.ip_version),
            Err(outcome) => return seam::finish(done, Observation::new(outcome)),
        };
        if let Host::Ip(ip) = *host {
            return self.echo(req, ip, None, done);
        }
        let (me, host) = (self.clone(), host.clone());
        tokio::spawn(async move {
            match resolve::resolve_by(&host, ip_version, req.deadline()).await {
                Ok((ip, took)) => me.echo(req, ip, Some(took), done),
                Err(outcome) => done.complete(Observation::new(outcome)).await,
            }
        });
    }
}

/// Distinct random identifiers, and sequence starts that put targets sharing a
/// configured host evenly apart in the sequence space.
fn target_states(config: &Config) -> Vec<TargetState> {
    let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in config.targets.iter().enumerate() {
        if let TargetSpec::Icmp(s) = &t.spec {
            by_host.entry(s.host.to_string()).or_default().push(i);
        }
    }
    let mut starts: Vec<u16> = (0..config.targets.len()).map(|_| rand::random()).collect();
    for indices in by_host.values() {
        for (i, start) in spaced_starts(rand::random(), indices.len())
            .into_iter()
            .enumerate()
        {
            starts[indices[i]] = start;
        }
    }
    let mut used = HashSet::new();
    starts
        .into_iter()
        .map(|start| {
            let mut ident: u16 = rand::random();
            // Distinct while there are fewer targets than identifiers.
            while used.len() < usize::from(u16::MAX) && !used.insert(ident) {
                ident = rand::random();
            }
            TargetState {
                ident,
                seq: AtomicU16::new(start),
            }
        })
        .collect()
}

/// `n` sequence starts from `base`, spaced 65536/n apart (wrapping).
pub(super) fn spaced_starts(base: u16, n: usize) -> Vec<u16> {
    let step = 65536 / n.clamp(1, 65536);
    (0..n)
        .map(|k| base.wrapping_add(((k * step) % 65536) as u16))
        .collect()
}

pub(super) fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}
