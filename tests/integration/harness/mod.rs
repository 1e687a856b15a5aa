//! What the integration tests share: the real daemon ([`daemon`]), network
//! namespaces ([`netns`]) and the fake internet built from them ([`fakenet`]),
//! loopback servers with a test CA ([`servers`]), and config values built in
//! code ([`configs`]).

pub mod configs;
pub mod daemon;
pub mod disk;
pub mod fakenet;
pub mod netns;
pub mod servers;

/// Name of the in-namespace half of the probe tests, as libtest knows it.
pub const INNER_PROBE: &str = "harness::inner_probe";

/// The in-namespace half of the probe tests (icmp, tcp): started by
/// [`netns::Netns::run_inner`] through `ip netns exec`, it probes the targets
/// it is given and prints one line per result (see [`configs::inner_main`]).
#[test]
#[ignore = "run by the namespace tests through `ip netns exec`"]
fn inner_probe() {
    if configs::is_inner() {
        configs::inner_main();
    }
}
