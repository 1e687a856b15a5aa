//! The network words of the configuration: address blocks, where a probe
//! is sent, and which address family to use. Below the model and the value
//! rules, which both speak them.

use std::net::IpAddr;

/// An address block (`127.0.0.0/8`); the address has no bits set past the
/// prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block of `prefix` bits at `addr`; `None` when the prefix is
    /// longer than the address or `addr` has bits set past it.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        Self::containing(addr, prefix).filter(|c| c.addr == addr)
    }

    /// The block of `prefix` bits that holds `addr`; `None` when the prefix
    /// is longer than the address.
    pub fn containing(addr: IpAddr, prefix: u8) -> Option<Self> {
        let c = Self { addr, prefix };
        if prefix > c.bits() {
            return None;
        }
        Some(Self {
            addr: c.network(addr)?,
            prefix,
        })
    }

    /// `127.0.0.0/8` and `::1/128`: the default `trusted_peers`.
    pub fn loopback() -> Vec<Self> {
        vec![
            Self {
                addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            Self {
                addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }

    fn bits(&self) -> u8 {
        if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// `ip` with the bits past the prefix cleared, when of the block's family.
    pub fn network(&self, ip: IpAddr) -> Option<IpAddr> {
        match ip {
            IpAddr::V4(v4) if self.addr.is_ipv4() => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                Some(IpAddr::V4((u32::from(v4) & mask).into()))
            }
            IpAddr::V6(v6) if self.addr.is_ipv6() => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                Some(IpAddr::V6((u128::from(v6) & mask).into()))
            }
            _ => None,
        }
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.network(ip.to_canonical()) == Some(self.addr)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Where a probe is sent. Names are resolved on every probe so DNS changes are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
    /// `"@gateway"`: the default route's gateway, read from the routing table per probe.
    Gateway,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
            Host::Gateway => f.write_str("@gateway"),
        }
    }
}

/// Which address family to use when a name resolves to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    #[default]
    Any,
    V4,
    V6,
}
