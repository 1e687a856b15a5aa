//! Signs of interference: evidence that a failure was made on purpose on the
//! path (forged DNS answers, TLS interception, SNI filtering, block pages,
//! per-name throttling) rather than by a broken link or a broken server.
//!
//! The checks ride on ordinary targets; each one turns a probe's failure into
//! a specific `probe::Reason` (whose `Check::from_reason` lives with it, since
//! the probes import this module, not the other way round) and attaches [`Evidence`] (what was
//! seen, how it was checked, the raw answers) to the observation. These
//! checks only measure: nothing here circumvents anything.
//!
//! Names shared by every part of the feature live here: the [`Check`] set
//! (the `check` label of `linkwatch_interference_total` and the journal's
//! `interference` lines), the [`Extra`] connections the checks may make
//! (at most one per failed probe, counted), and the cause name [`CAUSE`].

use serde::Serialize;

/// The `cause` of an outage or slow period whose failures were mostly signs
/// of interference (see [`crate::journal::record::InterferenceSummary`]).
pub const CAUSE: &str = "interference";

/// One kind of evidence of interference: the `check` label of
/// `linkwatch_interference_total{target,check}` and of `interference` journal lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Two resolvers disagree on a name and the TLS tie-breaker did not
    /// vouch for the suspect resolver's address.
    DnsInconsistent,
    /// The suspect resolver answered with a private, loopback or other bogon
    /// address the compared resolver did not return.
    DnsBogon,
    /// A TLS chain from an issuer never seen for the target (or not pinned)
    /// that fails validation, or a leaf key outside `pin_spki`, or an issuer
    /// other than `expect_issuer`.
    TlsIntercepted,
    /// The handshake with the real name failed (reset or silence after the
    /// ClientHello) while the same address completed one with `sni_control`.
    SniBlocked,
    /// An HTTP answer matched a configured block-page pattern.
    Blockpage,
    /// A throughput test to a name far below its `control_url` on the same
    /// server or network.
    ThrottledName,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::DnsInconsistent,
        Check::DnsBogon,
        Check::TlsIntercepted,
        Check::SniBlocked,
        Check::Blockpage,
        Check::ThrottledName,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Check::DnsInconsistent => "dns_inconsistent",
            Check::DnsBogon => "dns_bogon",
            Check::TlsIntercepted => "tls_intercepted",
            Check::SniBlocked => "sni_blocked",
            Check::Blockpage => "blockpage",
            Check::ThrottledName => "throttled_name",
        }
    }

    /// The check a label names (`as_str` back), for readers of the journal.
    pub fn parse(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// One line for people: what this check saw.
    pub const fn describe(self) -> &'static str {
        match self {
            Check::DnsInconsistent => {
                "the resolver's answer disagreed with the compared resolver, and the address did not serve a valid certificate for the name"
            }
            Check::DnsBogon => {
                "the resolver answered with a private or reserved address the compared resolver did not return"
            }
            Check::TlsIntercepted => {
                "the TLS certificate chain came from an unexpected issuer (a sign of interception)"
            }
            Check::SniBlocked => {
                "the connection failed after the TLS hello naming the site, while the same server answered under another name"
            }
            Check::Blockpage => "the answer was a block page",
            Check::ThrottledName => {
                "downloads from this name were far slower than from a control on the same server or network"
            }
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An extra connection an interference check made (at most one per failed
/// probe): the `check` label of `linkwatch_interference_extra_total{target,check}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Extra {
    /// TLS to the address the suspect resolver returned (DNS consistency).
    TlsTieBreak,
    /// The same address tried at once with `sni_control`.
    SniControl,
    /// A throughput test of `control_url`.
    ThroughputControl,
}

impl Extra {
    pub const ALL: [Extra; 3] = [
        Extra::TlsTieBreak,
        Extra::SniControl,
        Extra::ThroughputControl,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Extra::TlsTieBreak => "tls_tie_break",
            Extra::SniControl => "sni_control",
            Extra::ThroughputControl => "throughput_control",
        }
    }
}

/// What an interference check saw, attached to the probe's
/// [`crate::probe::Info`]: enough for the journal line and the report's
/// "Signs of interference" (what was seen, how it was checked, the raw answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub check: Check,
    /// One sentence: what was seen and how it was checked, e.g.
    /// `isp-resolver answered example.org A 10.9.9.9; doh-resolver answered
    /// 93.184.216.34; TLS to 10.9.9.9:443 as example.org: certificate not
    /// valid for the name (UnknownIssuer)`.
    pub detail: String,
    /// The raw material, one item per answer or certificate, e.g.
    /// `isp-resolver: A 10.9.9.9`, `issuer: CN=Interceptor CA`,
    /// `spki: sha256/AbC…`, `status 451, body starts "<html>Blocked…"`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub raw: Vec<String>,
    /// The name involved (the DNS query name, the TLS server name, the URL's
    /// host), for the cause's "names involved".
    pub name: String,
}

impl Evidence {
    pub fn new(check: Check, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check,
            detail: detail.into(),
            raw: Vec::new(),
            name: name.into(),
        }
    }

    pub fn with_raw(mut self, raw: Vec<String>) -> Self {
        self.raw = raw;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for c in Check::ALL {
            assert_eq!(Check::parse(c.as_str()), Some(c));
        }
        assert_eq!(Check::parse("kind"), None);
    }
}
