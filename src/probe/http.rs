//! HTTP(S) probe. (Being written: see issue 3.)
use tokio::time::Instant;

use super::{Outcome, Reason, Report};
use crate::config::{Config, HttpSpec, Target};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP prober")]
pub struct HttpSetupError;

pub struct HttpProber;

impl HttpProber {
    pub fn new(_config: &Config) -> Result<Self, HttpSetupError> {
        Ok(Self)
    }

    pub async fn probe(
        &self,
        _index: usize,
        _target: &Target,
        _spec: &HttpSpec,
        _deadline: Instant,
    ) -> Report {
        Report::new(Outcome::error(Reason::Io, "http probe not built yet"))
    }
}
