//! The kernel's routing tables, read from `/proc/net/route` and
//! `/proc/net/ipv6_route` on every use (a new DHCP lease or a route that
//! appears later is followed). Each file is parsed here and only here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::config::IpVersion;

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
    v6_routes(table)
        .filter(|r| {
            r.dest == 0
                && r.prefix_len == 0
                && !r.gateway.is_unspecified()
                && r.flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY
        })
        // The first of equal metrics wins, as before.
        .fold(None, |best: Option<V6Route<'_>>, r| match best {
            Some(b) if b.metric <= r.metric => Some(b),
            _ => Some(r),
        })
        .map(|r| r.gateway)
}

/// The device of the first route in `/proc/net/ipv6_route` whose next hop is `gw`.
pub fn gateway_device(table: &str, gw: Ipv6Addr) -> Option<String> {
    v6_routes(table).find_map(|r| (r.gateway == gw).then(|| r.device.to_string()))
}

/// The interface index a link-local next hop is reached on, from the route
/// that uses it as gateway (how `@gateway` yields link-local IPv6 addresses).
pub fn link_local_scope(gw: Ipv6Addr) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    let dev = gateway_device(&table, gw)?;
    std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One row of `/proc/net/ipv6_route`.
struct V6Route<'a> {
    dest: u128,
    prefix_len: u8,
    gateway: Ipv6Addr,
    metric: u32,
    flags: u32,
    device: &'a str,
}

/// The rows of `/proc/net/ipv6_route`; malformed lines are skipped.
fn v6_routes(table: &str) -> impl Iterator<Item = V6Route<'_>> {
    table.lines().filter_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            return None;
        }
        Some(V6Route {
            dest: u128::from_str_radix(cols[0], 16).ok()?,
            prefix_len: u8::from_str_radix(cols[1], 16).ok()?,
            gateway: Ipv6Addr::from(u128::from_str_radix(cols[4], 16).ok()?),
            metric: u32::from_str_radix(cols[5], 16).ok()?,
            flags: u32::from_str_radix(cols[8], 16).ok()?,
            device: cols[9],
        })
    })
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

    #[test]
    fn gateway_device_is_found_for_link_local_next_hop() {
        let table = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
";
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        assert_eq!(gateway_device(table, gw).as_deref(), Some("eth0"));
        assert_eq!(gateway_device(table, "fe80::2".parse().unwrap()), None);
    }
}
