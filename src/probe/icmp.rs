//! ICMP echo probe. (Being written: see issue 2, item 5.)
use tokio::time::Instant;

use super::{Outcome, Reason, Report};
use crate::config::{Config, IcmpSpec, Target};

/// Which kind of ICMP socket is in use (exported as `linkwatch_icmp_socket_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMode {
    /// Unprivileged ICMP datagram socket (`net.ipv4.ping_group_range`).
    Dgram,
    /// Raw socket (`CAP_NET_RAW`).
    Raw,
}

impl IcmpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IcmpMode::Dgram => "dgram",
            IcmpMode::Raw => "raw",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open an ICMP socket")]
pub struct IcmpSetupError;

pub struct IcmpProber;

impl IcmpProber {
    pub fn new(_config: &Config) -> Result<Self, IcmpSetupError> {
        Ok(Self)
    }

    /// Socket mode of the IPv4 socket (and IPv6 when IPv4 is unavailable).
    pub fn mode(&self) -> IcmpMode {
        IcmpMode::Dgram
    }

    pub async fn probe(
        &self,
        _index: usize,
        _target: &Target,
        _spec: &IcmpSpec,
        _deadline: Instant,
    ) -> Report {
        Report::new(Outcome::error(Reason::Io, "icmp probe not built yet"))
    }
}
