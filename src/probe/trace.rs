//! Path tracing: ICMP echo requests with increasing TTL, hop by hop, on the
//! ICMP engine's packet code ([`super::icmp`]'s `wire` and `socket`) and its
//! privilege story.
//!
//! Each trace opens its own socket and closes it at the end. Unprivileged
//! first: a datagram ICMP socket (`net.ipv4.ping_group_range`) with
//! `IP_RECVERR`, which makes the kernel queue the time-exceeded and
//! unreachable messages routers send back on the socket's error queue
//! (`MSG_ERRQUEUE`, with the router's address in the extended error). A
//! datagram socket is demultiplexed by the kernel (its identifier is the
//! socket's "port"), so a trace never sees the probes' replies or another
//! trace's. Otherwise a raw socket (`CAP_NET_RAW`), which receives every
//! ICMP packet of the host: the requests are matched by identifier and
//! sequence through the quoted header, as the probes do. When neither opens
//! the error is [`IcmpSetupError`], the same words as the ICMP probes'.
//!
//! Schedule: [`TraceOptions::probes_per_hop`] requests per TTL sent together,
//! the next TTL [`SPACING`] later, never more than [`GIVE_UP_SILENT`] TTLs
//! beyond the farthest answer. A request is lost after
//! [`TraceOptions::probe_timeout`]. The trace ends when every request up to
//! the last useful TTL is answered or lost: the destination's echo reply
//! (hops past it are dropped), an unreachable error (the path ends at that
//! router), [`GIVE_UP_SILENT`] silent TTLs in a row after the last answer,
//! or `max_hops`. It is cut at [`TraceOptions::bound`] and then `partial`.
//!
//! Re-probes: routers rate-limit the ICMP errors they send (Linux: one per
//! second per peer after a burst of six, `net.ipv4.icmp_ratelimit`; an
//! unreachable for a missing route is charged twice, once by the routing
//! code and once by `icmp_send`, so it costs 2 s of that budget). During an
//! outage the host's own probes spend that budget, and the router that
//! holds the broken route stays silent: the trace seems to stop one hop
//! early. So when the answers stop at TTL k, the destination was not
//! reached and the caller's baseline had a router at k + 1
//! ([`TraceOptions::baseline_hops`]), TTL k + 1 is probed again with fresh
//! requests, one at a time, at most [`REPROBES`], [`REPROBE_SPACING`] apart
//! (each finds the router's budget refilled), and each sent only when an
//! answer still fits before the bound. A caller that can hold its own
//! traffic through that router is told before each re-probe
//! ([`trace_quiet`]); the re-probe then waits [`REPROBE_QUIET`] after it. An
//! answer ends the re-probes: an unreachable ends the path there as above, a
//! time-exceeded adds the hop. The result says what was done
//! ([`Trace::reprobe`]); a re-probed hop that stayed silent is most likely
//! rate limiting, not where the path breaks ([`Trace::rate_limited`]).
//!
//! With [`TraceProtocol::Udp`] (classic traceroute) the requests are UDP
//! datagrams to port [`UDP_BASE_PORT`] plus the request's index, on an
//! ordinary UDP socket with `IP_RECVERR` / `IPV6_RECVERR`: it needs no
//! privilege at all. Routers answer with time-exceeded and the destination
//! with port unreachable ("reached"), both read off the error queue; the
//! request is told by the destination port the kernel reports with each
//! error (`msg_name`), the router by the extended error's offender address.
//!
//! RTTs are the kernel's receive stamp (`SO_TIMESTAMPNS`, also delivered
//! with error-queue messages) minus the wall clock just before `sendto`,
//! checked against the monotonic clock like the probes' (see `rtt` in the
//! ICMP engine's `socket`).
//!
//! Files: `model` (options and results), `socket` (one trace's socket),
//! `run` (the schedule, the re-probes, the answers recorded).
//!
//! [`IcmpSetupError`]: super::icmp::IcmpSetupError

mod model;
mod run;
mod socket;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use super::net::resolve;
pub use crate::config::TraceProtocol;
use crate::config::{Config, DnsServer, Group, Host, IpVersion, Nameserver, Target, TargetSpec};
pub use model::{
    DEFAULT_BOUND, DEFAULT_MAX_HOPS, DEFAULT_PROBE_TIMEOUT, DEFAULT_PROBES_PER_HOP, GIVE_UP_SILENT,
    Hop, Quiet, REPROBE_QUIET, REPROBE_SPACING, REPROBES, Reprobe, SPACING, Trace, TraceError,
    TraceOptions, UDP_BASE_PORT, hop_mask,
};

/// The host a target's probes go to, if it has one (the server of a DNS
/// target, the URL's host of an HTTP or throughput target).
pub fn target_host(target: &Target) -> Option<Host> {
    let url_host = |url: &url::Url| match url.host()? {
        url::Host::Ipv4(ip) => Some(Host::Ip(ip.into())),
        url::Host::Ipv6(ip) => Some(Host::Ip(ip.into())),
        url::Host::Domain(d) => Some(Host::Name(d.to_string())),
    };
    match &target.spec {
        TargetSpec::Icmp(s) => Some(s.host.clone()),
        TargetSpec::Tcp(s) => Some(s.host.clone()),
        TargetSpec::Http(s) => url_host(&s.url),
        TargetSpec::Throughput(s) => url_host(&s.url),
        TargetSpec::Dns(s) => match &s.server {
            DnsServer::Udp(Nameserver::Addr { host, .. })
            | DnsServer::Tcp(Nameserver::Addr { host, .. })
            | DnsServer::Tls { host, .. } => Some(host.clone()),
            DnsServer::Udp(Nameserver::System) | DnsServer::Tcp(Nameserver::System) => None,
            DnsServer::Https { url, .. } => url_host(url),
        },
    }
}

/// Where a group's path is traced to: its `trace_target`, else the host of
/// its first target that has one.
pub fn group_trace_host(config: &Config, group: &Group) -> Option<Host> {
    group.trace.target.clone().or_else(|| {
        config
            .targets
            .iter()
            .filter(|t| t.group == group.name)
            .find_map(target_host)
    })
}

/// Resolves `host` (a name is looked up now) and traces the path to it.
pub async fn trace_host(host: &Host, options: &TraceOptions) -> Result<Trace, TraceError> {
    trace_host_quiet(host, options, None).await
}

/// [`trace_host`], telling `quiet` before each re-probe (see [`trace_quiet`]).
pub async fn trace_host_quiet(
    host: &Host,
    options: &TraceOptions,
    quiet: Option<&Quiet<'_>>,
) -> Result<Trace, TraceError> {
    let (ip, _) = resolve::resolve(host, IpVersion::Any)
        .await
        .map_err(|outcome| TraceError::Resolve {
            host: host.to_string(),
            detail: outcome.to_string(),
        })?;
    trace_quiet(ip, options, quiet).await
}

/// Traces the path to `dest`. Must run inside the tokio runtime.
pub async fn trace(dest: IpAddr, options: &TraceOptions) -> Result<Trace, TraceError> {
    trace_quiet(dest, options, None).await
}

/// [`trace`], telling `quiet` before each re-probe of the hop after the last
/// answer (see the module doc) when the request is due; it answers when the
/// request may go (that instant or later), and may hold other traffic
/// through the path until then.
pub async fn trace_quiet(
    dest: IpAddr,
    options: &TraceOptions,
    quiet: Option<&Quiet<'_>>,
) -> Result<Trace, TraceError> {
    let mut run = run::Run::start(dest, options)?;
    run.sweep().await;
    let reprobe = run.reprobe(quiet).await;
    Ok(run.finish(reprobe))
}
