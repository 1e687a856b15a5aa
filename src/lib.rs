//! linkwatch: a connectivity monitoring daemon.
//!
//! Data flow: [`config`] → `scheduler` → [`probe`] workers → [`probe::ProbeResult`]s
//! consumed by [`metrics`] and the status store (`status`), served by `server`;
//! `daemon` wires them together and [`cli`] is the command line.
//!
//! The modules public here are the crate's face (the binary and the
//! integration tests use them); the others are `pub(crate)`.

pub(crate) mod campaign;
pub mod cli;
pub mod config;
pub(crate) mod daemon;
pub(crate) mod heap;
pub mod history;
pub mod interference;
pub mod journal;
pub mod metrics;
pub mod notify;
pub mod outage;
pub(crate) mod page;
pub mod path;
pub mod peer;
pub mod probe;
pub(crate) mod report;
pub(crate) mod scheduler;
pub(crate) mod sdnotify;
pub(crate) mod server;
pub(crate) mod status;
pub(crate) mod text;
pub(crate) mod timeparse;
