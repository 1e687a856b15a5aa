//! Turning a configured [`Host`] into an address, once per probe.
//!
//! Names go through the system resolver (`getaddrinfo` on tokio's blocking
//! pool) every time, so a changed DNS record is followed. `@gateway` is read
//! from `/proc/net/route` (and `/proc/net/ipv6_route`) every time, so a new
//! DHCP lease or a default route that appears later is followed too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{Outcome, Phase, Reason};
use crate::config::{Host, IpVersion};

/// Resolves `host` for a probe, honouring `ip_version`.
///
/// Returns the address and how long resolution took (zero for literal addresses).
pub async fn resolve(host: &Host, ip_version: IpVersion) -> Result<(IpAddr, Duration), Outcome> {
    let start = Instant::now();
    let ip = match host {
        Host::Ip(ip) => return Ok((*ip, Duration::ZERO)),
        Host::Gateway => {
            default_gateway(ip_version).map_err(|e| Outcome::error(Reason::NoGateway, e))?
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

/// Reads the default route's gateway from the kernel routing table.
pub fn default_gateway(ip_version: IpVersion) -> Result<IpAddr, String> {
    default_gateway_from(Path::new("/proc/net"), ip_version)
}

/// [`default_gateway`] reading the tables under `proc_net` (for tests).
pub fn default_gateway_from(proc_net: &Path, ip_version: IpVersion) -> Result<IpAddr, String> {
    if ip_version != IpVersion::V6 {
        let table = std::fs::read_to_string(proc_net.join("route"));
        if let Ok(table) = &table
            && let Some(gw) = parse_route_v4(table)
        {
            return Ok(IpAddr::V4(gw));
        }
    }
    if ip_version != IpVersion::V4 {
        let table = std::fs::read_to_string(proc_net.join("ipv6_route"));
        if let Ok(table) = &table
            && let Some(gw) = parse_route_v6(table)
        {
            return Ok(IpAddr::V6(gw));
        }
    }
    Err(match ip_version {
        IpVersion::V4 => "no IPv4 default route with a gateway in the routing table".to_string(),
        IpVersion::V6 => "no IPv6 default route with a gateway in the routing table".to_string(),
        IpVersion::Any => "no default route with a gateway in the routing table".to_string(),
    })
}

/// Parses `/proc/net/route`: the lowest-metric default route (destination and
/// mask 0, flags RTF_UP|RTF_GATEWAY) with a non-zero gateway.
pub fn parse_route_v4(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 8 {
            continue;
        }
        let (Ok(dest), Ok(gw), Ok(flags), Ok(metric), Ok(mask)) = (
            u32::from_str_radix(cols[1], 16),
            u32::from_str_radix(cols[2], 16),
            u32::from_str_radix(cols[3], 16),
            cols[6].parse::<u32>(),
            u32::from_str_radix(cols[7], 16),
        ) else {
            continue;
        };
        if dest != 0
            || mask != 0
            || gw == 0
            || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY
        {
            continue;
        }
        // The file holds the address in host byte order of a little-endian
        // kernel's network-order u32: the bytes are the address bytes.
        let ip = Ipv4Addr::from(gw.to_le_bytes());
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, ip));
        }
    }
    best.map(|(_, ip)| ip)
}

/// Parses `/proc/net/ipv6_route`: the lowest-metric `::/0` route with a gateway.
pub fn parse_route_v6(table: &str) -> Option<Ipv6Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let mut best: Option<(u32, Ipv6Addr)> = None;
    for line in table.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            continue;
        }
        let (Ok(dest), Ok(plen), Ok(gw), Ok(metric), Ok(flags)) = (
            u128::from_str_radix(cols[0], 16),
            u8::from_str_radix(cols[1], 16),
            u128::from_str_radix(cols[4], 16),
            u32::from_str_radix(cols[5], 16),
            u32::from_str_radix(cols[8], 16),
        ) else {
            continue;
        };
        if dest != 0
            || plen != 0
            || gw == 0
            || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY
        {
            continue;
        }
        let ip = Ipv6Addr::from(gw);
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, ip));
        }
    }
    best.map(|(_, ip)| ip)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn v4_default_route_lowest_metric_wins() {
        assert_eq!(parse_route_v4(ROUTE), Some(Ipv4Addr::new(192, 168, 2, 1)));
    }

    #[test]
    fn v4_no_default_route() {
        let only_link = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_route_v4(only_link), None);
        assert_eq!(parse_route_v4(""), None);
        assert_eq!(
            parse_route_v4("garbage\nmore garbage here x y z 1 2 3\n"),
            None
        );
    }

    #[test]
    fn v6_default_route() {
        let table = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
";
        assert_eq!(parse_route_v6(table), Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn gateway_from_missing_dir_is_a_clear_error() {
        let err = default_gateway_from(Path::new("/nonexistent"), IpVersion::Any).unwrap_err();
        assert!(err.contains("no default route"), "{err}");
    }

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
