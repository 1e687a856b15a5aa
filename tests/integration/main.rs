//! linkwatch's integration tests: one test binary (linking the library once)
//! with one module per area. Shared scaffolding lives in [`harness`].
//!
//! Tests that need root or network namespaces skip with a message when they
//! can't run, and fail instead when `CI=true`.

// Tests: a panic is the failure report, and timing uses std's clock.
#![allow(clippy::unwrap_used, clippy::disallowed_types)]

#[allow(dead_code)] // not every test uses every helper
mod harness;

mod agent_backfill;
mod closed_stdout;
mod config_check;
mod deploy;
mod dns_probe;
mod e2e;
mod history_damage;
mod http_probe;
mod http_slow_clients;
mod icmp;
mod interference_dns;
mod interference_netns;
mod interference_show;
mod interference_throttle;
mod interference_tls;
mod journal_fallback;
mod journal_fixture;
mod layering;
mod netns_daemon;
mod netns_degraded;
mod netns_evidence;
mod netns_loaded;
mod netns_outage;
mod netns_stall;
mod notify;
mod page_browser;
mod page_light;
mod path_trace;
mod peer_client;
mod peer_netns;
mod peer_serve;
mod peer_show;
mod reload;
mod tcp;
mod throughput;
mod throughput_wired;
