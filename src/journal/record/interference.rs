//! `interference`: a target showed a sign of interference (see
//! [`crate::interference`]), and the summary outage and slow-period records
//! carry when their cause is `interference`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::ts_ms;

/// `interference`: one target showed one check's evidence. Written at the
/// first probe showing it, then at most once an hour per (target, check)
/// while it goes on, with how many probes showed it since the previous line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterferenceSeen {
    pub target: String,
    pub group: String,
    /// A [`crate::interference::Check`] label (`dns_inconsistent`, …).
    pub check: String,
    /// Start of the probe that showed it (the latest one, for a repeat line).
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    /// The name involved: DNS query name, TLS server name or URL host.
    pub name: String,
    /// What was seen and how it was checked (the evidence's sentence).
    pub detail: String,
    /// The raw answers or certificate facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw: Vec<String>,
    /// Probes of this target that showed this check since the previous
    /// `interference` line for the pair (this one included).
    pub count: u64,
}

/// Why a period's cause is `interference`: carried by `outage_start`,
/// `outage_end`, `degraded_start` and `degraded_end` only when it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterferenceSummary {
    /// The checks seen, sorted (`["dns_inconsistent", "sni_blocked"]`).
    pub checks: Vec<String>,
    /// The group's targets that showed them, sorted.
    pub targets: Vec<String>,
    /// The names involved (query names, server names, hosts), sorted.
    pub names: Vec<String>,
    /// Failed probes of the group's targets with an interference reason …
    pub failures: u64,
    /// … out of all their failed probes counted (the cause needs a majority).
    pub of_failures: u64,
}
