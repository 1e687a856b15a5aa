//! TCP connect probe: the time from `connect()` to an established connection.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::net::{connect::connect, resolve};
use super::seam::{self, Completion, Probe, Request};
use super::{Observation, Outcome, Phase, Phases};
use crate::config::{Target, TcpSpec};

pub struct TcpProber;

impl Default for TcpProber {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpProber {
    pub fn new() -> Self {
        Self
    }

    /// Connects to the target once; the connect time is the probe's duration.
    pub async fn probe(&self, _target: &Target, spec: &TcpSpec, deadline: Instant) -> Observation {
        let (ip, resolve_time) =
            match resolve::resolve_by(&spec.host, spec.ip_version, deadline).await {
                Ok(r) => r,
                Err(outcome) => return Observation::new(outcome),
            };
        let addr = SocketAddr::new(ip, spec.port);
        let mut report = Observation::new(Outcome::Timeout {
            phase: Some(Phase::Connect),
        });
        report.info.peer = Some(ip);
        let (outcome, _stream) = connect(addr, deadline).await;
        report.outcome = match outcome {
            Ok(connect_time) => {
                let mut phases = Phases::default();
                phases.set(Phase::Resolve, resolve_time);
                phases.set(Phase::Connect, connect_time);
                Outcome::Success {
                    duration: connect_time,
                    phases,
                }
            }
            Err(outcome) => outcome,
        };
        report
    }
}

impl Probe for TcpProber {
    fn start(self: &Arc<Self>, req: Request, done: Completion) {
        let me = self.clone();
        seam::spawn(req.deadline(), done, async move {
            match req.spec::<TcpSpec>() {
                Ok(spec) => me.probe(req.target(), spec, req.deadline()).await,
                Err(o) => Observation::new(o),
            }
        });
    }
}
