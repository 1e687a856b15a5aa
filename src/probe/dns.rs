//! DNS probe. (Being written: see issue 3.)
use tokio::time::Instant;

use super::{Outcome, Reason, Report};
use crate::config::{Config, DnsSpec, Target};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS prober")]
pub struct DnsSetupError;

pub struct DnsProber;

impl DnsProber {
    pub fn new(_config: &Config) -> Result<Self, DnsSetupError> {
        Ok(Self)
    }

    pub async fn probe(
        &self,
        _index: usize,
        _target: &Target,
        _spec: &DnsSpec,
        _deadline: Instant,
    ) -> Report {
        Report::new(Outcome::error(Reason::Io, "dns probe not built yet"))
    }
}
