//! linkwatch: a connectivity monitoring daemon.
//!
//! Data flow: [`config`] → [`scheduler`] → [`probe`] workers → [`probe::ProbeResult`]s
//! consumed by [`metrics`] and the status store ([`status`]), served by [`server`].

pub mod config;
pub mod outage;
pub mod probe;
