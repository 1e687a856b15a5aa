//! Configuration: strict TOML parsing, then named validation rules that
//! report every problem at once with file, line, column and key.
//!
//! `model` is the typed result; `parse` reads the document's own tables
//! through the generic `walk`er, each kind's keys in `spec`, the checks
//! across tables in `graph`; `validate` holds the pure value rules. The
//! words the model is made of sit below it: `net` (addresses), `thresholds`
//! (a group's resolved `degraded` table) and `throughput` (specs, `[plan]`,
//! rates), so that no file of the folder imports one that imports it back.

mod degraded;
pub(crate) mod diff;
mod error;
mod graph;
pub mod interference;
mod model;
mod net;
pub mod notify;
mod parse;
pub mod peer;
pub(crate) mod redact;
mod spec;
mod thresholds;
mod throughput;
mod validate;
mod walk;

pub use degraded::describe_floor;
pub use error::{ConfigError, ConfigErrors, escaped};
pub use model::*;
pub use parse::{load, load_for_reading, parse, parse_bytes};
pub use thresholds::ThroughputFloor;
pub use throughput::{
    Criteria, CriteriaSet, FCC_PEAK, FIFTH_TO_SIXTH_SECONDS, MIN_SPACING_SECONDS, RATE_UNITS,
    TESTS_PER_DAY, format_bytes, format_rate, parse_rate,
};

/// The embedded default configuration (`config/default.toml`), used by
/// `linkwatch run` without `--config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// The name the embedded default is reported under.
pub const DEFAULT_SOURCE: &str = "<embedded default>";

/// DNS record types a `dns` target may ask for.
pub const RECORD_TYPES: &[&str] = &[
    "A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SRV",
    "SSHFP", "SVCB", "TLSA", "TXT",
];

/// DNS response codes an `expect_rcode` may name.
pub const RCODES: &[&str] = &[
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

/// Parses a duration as the configuration writes them: `<number><unit>`
/// parts together, largest unit first (`500ms`, `5s`, `1m30s`); no spaces.
/// The error is the reason, for a command-line flag's message.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    validate::duration(text)
}

/// Parses the embedded default configuration.
pub fn default_config() -> Result<Config, ConfigErrors> {
    parse(DEFAULT_CONFIG, DEFAULT_SOURCE)
}
