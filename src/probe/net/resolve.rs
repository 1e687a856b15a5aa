//! Turning a configured [`Host`] into an address, once per probe.
//!
//! Names go through the system resolver (`getaddrinfo` on tokio's blocking
//! pool) every time, so a changed DNS record is followed. `@gateway` is read
//! from the routing tables ([`routes`]) every time, so a new
//! DHCP lease or a default route that appears later is followed too.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::routes;
use crate::config::{Host, IpVersion};
use crate::probe::{Outcome, Phase, Reason};

/// Resolves `host` for a probe, honouring `ip_version`.
///
/// Returns the address and how long resolution took (zero for literal addresses).
pub async fn resolve(host: &Host, ip_version: IpVersion) -> Result<(IpAddr, Duration), Outcome> {
    let start = Instant::now();
    let ip = match host {
        Host::Ip(ip) => return Ok((*ip, Duration::ZERO)),
        Host::Gateway => {
            routes::default_gateway(ip_version).map_err(|e| Outcome::error(Reason::NoGateway, e))?
        }
        Host::Name(name) => resolve_name(name, ip_version).await?,
    };
    Ok((ip, start.elapsed()))
}

/// [`resolve`] bounded by `deadline`: a resolver that does not answer in
/// time is a timeout in the `resolve` phase.
pub async fn resolve_by(
    host: &Host,
    ip_version: IpVersion,
    deadline: Instant,
) -> Result<(IpAddr, Duration), Outcome> {
    match tokio::time::timeout_at(deadline, resolve(host, ip_version)).await {
        Ok(r) => r,
        Err(_) => Err(Outcome::Timeout {
            phase: Some(Phase::Resolve),
        }),
    }
}

async fn resolve_name(name: &str, ip_version: IpVersion) -> Result<IpAddr, Outcome> {
    let addrs = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| Outcome::error(Reason::Resolve, format!("failed to resolve {name}: {e}")))?;
    let mut first_any = None;
    for addr in addrs {
        let ip = addr.ip();
        match ip_version {
            IpVersion::Any => return Ok(ip),
            IpVersion::V4 if ip.is_ipv4() => return Ok(ip),
            IpVersion::V6 if ip.is_ipv6() => return Ok(ip),
            _ => {
                first_any.get_or_insert(ip);
            }
        }
    }
    let family = match ip_version {
        IpVersion::V4 => "IPv4",
        IpVersion::V6 => "IPv6",
        IpVersion::Any => "any",
    };
    Err(match first_any {
        Some(other) => Outcome::error(
            Reason::NoAddress,
            format!("{name} has no {family} address (only {other})"),
        ),
        None => Outcome::error(Reason::NoAddress, format!("{name} resolved to no address")),
    })
}

/// The phase a resolution timeout is attributed to.
pub const PHASE: Phase = Phase::Resolve;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_needs_no_resolution() {
        let (ip, d) = resolve(&Host::Ip("127.0.0.1".parse().unwrap()), IpVersion::Any)
            .await
            .unwrap();
        assert_eq!(ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(d, Duration::ZERO);
    }

    #[tokio::test]
    async fn localhost_resolves_from_hosts_file() {
        // `localhost` comes from /etc/hosts: no DNS query leaves the machine.
        // (Resolution failures are tested in a namespace with its own resolv.conf.)
        let (ip, _) = resolve(&Host::Name("localhost".into()), IpVersion::V4)
            .await
            .unwrap();
        assert!(ip.is_loopback());
    }
}
