//! linkwatch: a connectivity monitoring daemon.
//!
//! Data flow: [`config`] → [`scheduler`] → [`probe`] workers → [`probe::ProbeResult`]s
//! consumed by [`metrics`] and the status store ([`status`]), served by [`server`];
//! [`daemon`] wires them together and [`cli`] is the command line.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod history;
pub mod metrics;
pub mod notify;
pub mod outage;
pub mod page;
pub mod probe;
pub mod report;
pub mod scheduler;
pub mod sdnotify;
pub mod server;
pub mod status;
pub mod timeparse;
