//! DNS consistency (`compare_with`): a probe's addresses against the
//! compared target's latest answer to the same question.
//!
//! The compared target (usually an encrypted resolver, DoH or DoT) is probed
//! on its own schedule; its latest observation is kept here, by the DNS
//! prober, and read by each probe of a target that compares with it: no
//! query is added. A latest observation that failed, or is older than twice
//! the compared target's interval, is no data: the probe's own outcome stands.
//!
//! Two answers are consistent when they share an address, or when neither
//! has one (both NXDOMAIN, or no record of the type). Otherwise the suspect
//! addresses (this target's addresses the compared answer lacks) decide:
//! all of them bogons outside `[interference] bogon_exempt` → `dns_bogon`;
//! else, with `tie_break = "tls"`, one TLS handshake to the first suspect
//! address with the query name as SNI, verified against the web PKI roots
//! (plus `tie_break_ca_file`): a valid certificate for the name means the
//! two resolvers merely chose different servers (CDN GeoDNS) and the answer
//! is consistent; anything else is `dns_inconsistent`. An address both
//! resolvers return is never suspect, whatever its range. An address the
//! tie-breaker vouched for is not checked again for [`VOUCHED_FOR`], so a
//! CDN costs one handshake an hour, not one a probe; a failed tie-break is
//! repeated on each probe (one extra connection per failed probe at most).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use rustls::ClientConfig;
use tokio::time::Instant;

use super::super::net::stream;
use super::super::net::tls;
use super::super::{Outcome, Phases, Reason};
use crate::config::{Cidr, Config, DnsCompare, TargetSpec};
use crate::interference::{Check, Evidence};

/// NOERROR and NXDOMAIN: the only response codes whose answers are compared.
const NOERROR: u16 = 0;
const NXDOMAIN: u16 = 3;

/// What one resolver answered, as far as the comparison cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u16,
    /// The A/AAAA addresses of the answer section, in the order received.
    pub addrs: Vec<IpAddr>,
}

impl Answer {
    pub fn from_reply(reply: &Message) -> Self {
        let addrs = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        Self {
            rcode: u16::from(reply.metadata.response_code),
            addrs,
        }
    }

    /// Only NOERROR and NXDOMAIN answers say something about the name.
    fn comparable(&self) -> bool {
        self.rcode == NOERROR || self.rcode == NXDOMAIN
    }

    /// `10.9.9.9, 10.9.9.10`, `NXDOMAIN` or `no address (NOERROR)`.
    fn describe(&self) -> String {
        if !self.addrs.is_empty() {
            let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
            return addrs.join(", ");
        }
        let rcode = super::rcode_name(self.rcode);
        if self.rcode == NXDOMAIN {
            rcode
        } else {
            format!("no address ({rcode})")
        }
    }

    /// One raw item: `isp-resolver: A 10.9.9.9, 10.9.9.10` or `isp-resolver: NXDOMAIN`.
    fn raw(&self, resolver: &str, record: &str) -> String {
        if self.addrs.is_empty() {
            format!("{resolver}: {}", self.describe())
        } else {
            format!("{resolver}: {record} {}", self.describe())
        }
    }
}

/// How two answers relate, before any tie-break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// A shared address, or no address on either side.
    Consistent,
    /// Every suspect address is a bogon outside `bogon_exempt`: each with the
    /// block it is in.
    Bogon(Vec<(IpAddr, &'static str)>),
    /// The answers disagree; the first suspect address (this resolver's
    /// address the compared one lacks), if this resolver returned one.
    Disagree(Option<IpAddr>),
}

/// Compares this resolver's answer (`own`) with the compared one's.
pub fn compare(own: &Answer, compared: &Answer, exempt: &[Cidr]) -> Comparison {
    if own.addrs.is_empty() && compared.addrs.is_empty() {
        return Comparison::Consistent;
    }
    if own
        .addrs
        .iter()
        .any(|a| compared.addrs.iter().any(|b| same_addr(*a, *b)))
    {
        return Comparison::Consistent;
    }
    // No shared address: every address of ours is suspect.
    let suspect = &own.addrs;
    let bogons: Vec<(IpAddr, &'static str)> = suspect
        .iter()
        .filter_map(|&a| {
            let block = bogon(a)?;
            (!exempt.iter().any(|c| c.contains(a))).then_some((a, block))
        })
        .collect();
    if !suspect.is_empty() && bogons.len() == suspect.len() {
        return Comparison::Bogon(bogons);
    }
    Comparison::Disagree(suspect.first().copied())
}

fn same_addr(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// The reserved block `ip` is in, when it is a bogon: an address no public
/// server has (private, loopback, link-local, CGNAT, documentation,
/// benchmarking, multicast, unspecified, reserved; IPv4 and IPv6, an
/// IPv4-mapped IPv6 address as IPv4).
pub fn bogon(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => bogon_v4(v4),
        IpAddr::V6(v6) => bogon_v6(v6),
    }
}

fn bogon_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const BLOCKS: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\" 0.0.0.0/8"),
        ([10, 0, 0, 0], 8, "private 10.0.0.0/8"),
        ([100, 64, 0, 0], 10, "CGNAT 100.64.0.0/10"),
        ([127, 0, 0, 0], 8, "loopback 127.0.0.0/8"),
        ([169, 254, 0, 0], 16, "link-local 169.254.0.0/16"),
        ([172, 16, 0, 0], 12, "private 172.16.0.0/12"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments 192.0.0.0/24"),
        ([192, 0, 2, 0], 24, "documentation 192.0.2.0/24"),
        ([192, 168, 0, 0], 16, "private 192.168.0.0/16"),
        ([198, 18, 0, 0], 15, "benchmarking 198.18.0.0/15"),
        ([198, 51, 100, 0], 24, "documentation 198.51.100.0/24"),
        ([203, 0, 113, 0], 24, "documentation 203.0.113.0/24"),
        ([224, 0, 0, 0], 4, "multicast 224.0.0.0/4"),
        ([240, 0, 0, 0], 4, "reserved 240.0.0.0/4"),
    ];
    let bits = u32::from(ip);
    BLOCKS.iter().find_map(|(net, prefix, name)| {
        let mask = u32::MAX << (32 - u32::from(*prefix));
        (bits & mask == u32::from_be_bytes(*net)).then_some(*name)
    })
}

fn bogon_v6(ip: Ipv6Addr) -> Option<&'static str> {
    const BLOCKS: &[(u128, u8, &str)] = &[
        (0, 128, "unspecified ::/128"),
        (1, 128, "loopback ::1/128"),
        (0x0100_0000_0000_0000 << 64, 64, "discard 100::/64"),
        (0x2001_0db8 << 96, 32, "documentation 2001:db8::/32"),
        (0x3fff << 112, 20, "documentation 3fff::/20"),
        (0xfc00 << 112, 7, "unique local fc00::/7"),
        (0xfe80 << 112, 10, "link-local fe80::/10"),
        (0xfec0 << 112, 10, "site-local fec0::/10"),
        (0xff00 << 112, 8, "multicast ff00::/8"),
    ];
    let bits = u128::from(ip);
    let named = BLOCKS.iter().find_map(|(net, prefix, name)| {
        let mask = u128::MAX << (128 - u32::from(*prefix));
        (bits & mask == *net).then_some(*name)
    });
    // Outside 2000::/3 nothing is allocated for global unicast.
    named.or_else(|| (bits >> 125 != 1).then_some("not global unicast (outside 2000::/3)"))
}

/// A compared target's latest observation: its answer, or `None` when that
/// probe failed.
struct Seen {
    at: Instant,
    answer: Option<Answer>,
}

/// The latest observation of every compared target, kept by the prober.
#[derive(Default)]
pub struct Store {
    /// By target index; only targets some `compare_with` names have a slot.
    slots: HashMap<usize, Mutex<Option<Seen>>>,
}

/// What the compared target's latest observation offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    Fresh(Answer),
    /// No data, and why.
    NoData(String),
}

impl Store {
    pub fn new(compared: impl IntoIterator<Item = usize>) -> Self {
        Self {
            slots: compared
                .into_iter()
                .map(|i| (i, Mutex::new(None)))
                .collect(),
        }
    }

    /// Records target `index`'s observation (`None`: it failed), if some
    /// target compares with it.
    pub fn record(&self, index: usize, answer: Option<Answer>) {
        if let Some(slot) = self.slots.get(&index) {
            let seen = Seen {
                at: Instant::now(),
                answer,
            };
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(seen);
        }
    }

    /// Target `index`'s latest answer when it succeeded within `fresh`.
    pub fn latest(&self, index: usize, fresh: Duration) -> Latest {
        let Some(slot) = self.slots.get(&index) else {
            return Latest::NoData("it is not kept".into());
        };
        let guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match &*guard {
            None => Latest::NoData("it has not been probed yet".into()),
            Some(seen) if seen.at.elapsed() > fresh => Latest::NoData(format!(
                "its latest observation is {} ms old (fresh within {} ms)",
                seen.at.elapsed().as_millis(),
                fresh.as_millis()
            )),
            Some(Seen { answer: None, .. }) => Latest::NoData("its latest probe failed".into()),
            Some(Seen {
                answer: Some(a), ..
            }) => Latest::Fresh(a.clone()),
        }
    }
}

/// A dns target's comparison, resolved once at start.
pub struct Plan {
    /// The compared target: index and name.
    pub with: usize,
    pub with_name: String,
    /// Its latest observation counts within this (2 × its interval).
    pub fresh: Duration,
    /// The TLS tie-breaker's port and client config (`tie_break = "tls"`).
    pub tls: Option<(u16, Arc<ClientConfig>)>,
    /// Addresses the tie-breaker vouched for, and when: a CDN's other node
    /// is checked once per [`VOUCHED_FOR`], not on every probe.
    vouched: Mutex<Vec<(IpAddr, Instant)>>,
}

/// How long a valid certificate at an address vouches for it.
pub const VOUCHED_FOR: Duration = Duration::from_secs(3600);

/// Vouched addresses kept per target at most (the oldest is dropped).
const VOUCHED_MAX: usize = 16;

impl Plan {
    /// Whether the tie-breaker vouched for `ip` within [`VOUCHED_FOR`].
    fn vouched(&self, ip: IpAddr) -> bool {
        let mut list = self.vouched.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|(_, at)| at.elapsed() < VOUCHED_FOR);
        list.iter().any(|(a, _)| *a == ip)
    }

    fn vouch(&self, ip: IpAddr) {
        let mut list = self.vouched.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|(a, _)| *a != ip);
        if list.len() >= VOUCHED_MAX {
            list.remove(0);
        }
        list.push((ip, Instant::now()));
    }
}

impl Plan {
    /// The plan for `compare` (on a target of `config`), or `None` when the
    /// compared target is not a dns target of `config` (the config check
    /// rules this out for loaded files).
    pub fn new(
        config: &Config,
        compare: &DnsCompare,
        tls: Option<Arc<ClientConfig>>,
    ) -> Option<Self> {
        let (with, target) = config
            .targets
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == compare.with)?;
        if !matches!(target.spec, TargetSpec::Dns(_)) {
            return None;
        }
        Some(Self {
            with,
            with_name: target.name.clone(),
            fresh: target.interval.saturating_mul(2),
            tls: match (&compare.tls, tls) {
                (Some(t), Some(config)) => Some((t.port, config)),
                _ => None,
            },
            vouched: Mutex::default(),
        })
    }
}

/// The question, for the evidence: `example.org` and `A`; the target's
/// timeout bounds the tie-break.
pub struct Asked<'a> {
    pub target: &'a str,
    pub name: &'a str,
    pub record: &'a str,
    pub timeout: Duration,
}

/// What the consistency check made of a probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The compared answer was unusable: the probe's own outcome stands.
    NoData(String),
    /// Consistent; `tie_break` is the tie-breaker's result when it ran.
    Consistent { tie_break: Option<String> },
    /// The tie-breaker ran out of time with less than half the target's
    /// timeout left (the query took the rest): no data, and why.
    Undecided(String),
    /// A failure with its evidence; `tie_break` ran when `Some`.
    Failed {
        outcome: Outcome,
        evidence: Evidence,
        tie_break: bool,
    },
}

/// Judges `own` against the compared target's latest answer, with at most
/// one TLS handshake, finished before `deadline`.
pub async fn judge(
    plan: &Plan,
    store: &Store,
    asked: &Asked<'_>,
    own: &Answer,
    exempt: &[Cidr],
    deadline: Instant,
) -> Verdict {
    if !own.comparable() {
        return Verdict::NoData(format!(
            "{} answered {}, not an answer to compare",
            asked.target,
            super::rcode_name(own.rcode)
        ));
    }
    let compared = match store.latest(plan.with, plan.fresh) {
        Latest::Fresh(a) if a.comparable() => a,
        Latest::Fresh(a) => {
            return Verdict::NoData(format!(
                "{} answered {}",
                plan.with_name,
                super::rcode_name(a.rcode)
            ));
        }
        Latest::NoData(why) => return Verdict::NoData(format!("{}: {why}", plan.with_name)),
    };
    let said = format!(
        "{} answered {} {} {}; {} answered {}",
        asked.target,
        asked.name,
        asked.record,
        own.describe(),
        plan.with_name,
        compared.describe()
    );
    let mut raw = vec![
        own.raw(asked.target, asked.record),
        compared.raw(&plan.with_name, asked.record),
    ];
    let suspect = match compare(own, &compared, exempt) {
        Comparison::Consistent => return Verdict::Consistent { tie_break: None },
        Comparison::Bogon(blocks) => {
            let blocks: Vec<String> = blocks
                .iter()
                .map(|(ip, block)| format!("{ip} is {block}"))
                .collect();
            let detail = format!("{said}; {}, not in bogon_exempt", blocks.join(", "));
            return failed(Check::DnsBogon, asked, detail, raw, false);
        }
        Comparison::Disagree(suspect) => suspect,
    };
    let (Some(ip), Some((port, config))) = (suspect, &plan.tls) else {
        let why = if suspect.is_none() {
            "no address to check with TLS"
        } else {
            "no tie-break (tie_break = \"none\")"
        };
        return failed(
            Check::DnsInconsistent,
            asked,
            format!("{said}; {why}"),
            raw,
            false,
        );
    };
    if plan.vouched(ip) {
        return Verdict::Consistent { tie_break: None };
    }
    let addr = SocketAddr::new(ip, *port);
    let left = deadline.saturating_duration_since(Instant::now());
    let result = tie_break(addr, asked.name, config, deadline).await;
    if matches!(result, TieBreak::Valid) {
        plan.vouch(ip);
    }
    let line = match &result {
        TieBreak::Valid => format!(
            "tls {addr} as {}: valid certificate for the name",
            asked.name
        ),
        TieBreak::Invalid(e) => format!("tls {addr} as {}: {e}", asked.name),
        TieBreak::Silent => format!(
            "tls {addr} as {}: no handshake within the probe's remaining {} ms",
            asked.name,
            left.as_millis()
        ),
    };
    match result {
        TieBreak::Valid => Verdict::Consistent {
            tie_break: Some(line),
        },
        // Silence is evidence only when the tie-break had a fair share of
        // the timeout; a slow query must not make a slow server look forged.
        TieBreak::Silent if left < asked.timeout / 2 => Verdict::Undecided(line),
        TieBreak::Invalid(_) | TieBreak::Silent => {
            raw.push(line.clone());
            let detail = format!("{said}; {line}");
            failed(Check::DnsInconsistent, asked, detail, raw, true)
        }
    }
}

/// What the tie-break's handshake showed.
enum TieBreak {
    /// A valid certificate for the name.
    Valid,
    /// Anything else that ended the handshake: another issuer, a name
    /// mismatch, a reset, a refused connection.
    Invalid(String),
    /// No handshake by the deadline.
    Silent,
}

fn failed(
    check: Check,
    asked: &Asked<'_>,
    detail: String,
    raw: Vec<String>,
    tie_break: bool,
) -> Verdict {
    let reason = match check {
        Check::DnsBogon => Reason::DnsBogon,
        _ => Reason::DnsInconsistent,
    };
    Verdict::Failed {
        outcome: Outcome::error(reason, detail.clone()),
        evidence: Evidence::new(check, asked.name, detail).with_raw(raw),
        tie_break,
    }
}

/// One TLS handshake to `addr` with SNI `name`, verified with `config`;
/// bounded by `deadline` less a margin so that the probe still reports.
async fn tie_break(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
    deadline: Instant,
) -> TieBreak {
    let sni = match tls::server_name(name) {
        Ok(sni) => sni,
        Err(o) => return TieBreak::Invalid(describe(&o)),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    // Leave the probe a moment to report before its own deadline.
    let until = deadline - (left / 10).min(Duration::from_millis(50));
    let mut phases = Phases::default();
    match stream::open(addr, Some((config, sni)), until, &mut phases).await {
        Ok(_) => TieBreak::Valid,
        Err(Outcome::Timeout { .. }) => TieBreak::Silent,
        Err(other) => {
            let detail = describe(&other);
            // The line names the address already.
            let prefix = format!("TLS handshake with {addr} failed: ");
            TieBreak::Invalid(
                detail
                    .strip_prefix(&prefix)
                    .map_or_else(|| detail.clone(), str::to_owned),
            )
        }
    }
}

/// An outcome's detail, for the evidence.
fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Error(e) => e.detail.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn answer(addrs: &[&str]) -> Answer {
        Answer {
            rcode: NOERROR,
            addrs: addrs.iter().map(|a| ip(a)).collect(),
        }
    }

    fn nx() -> Answer {
        Answer {
            rcode: NXDOMAIN,
            addrs: vec![],
        }
    }

    fn cidr(s: &str) -> Cidr {
        let (a, p) = s.split_once('/').unwrap();
        Cidr::new(ip(a), p.parse().unwrap()).unwrap()
    }

    #[test]
    fn bogons_v4_and_v6() {
        for (a, words) in [
            ("10.9.9.9", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("127.0.0.1", "loopback"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "this network"),
            ("192.0.2.7", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.19.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("100::1", "discard"),
            ("4000::1", "not global unicast"),
        ] {
            let got = bogon(ip(a));
            assert!(got.is_some_and(|b| b.contains(words)), "{a}: {got:?}");
        }
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "11.0.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(bogon(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn a_shared_address_or_no_address_on_either_side_is_consistent() {
        let none: &[Cidr] = &[];
        assert_eq!(
            compare(
                &answer(&["1.2.3.4", "5.6.7.8"]),
                &answer(&["5.6.7.8"]),
                none
            ),
            Comparison::Consistent
        );
        assert_eq!(compare(&nx(), &nx(), none), Comparison::Consistent);
        // An address both return is never suspect, whatever its range.
        assert_eq!(
            compare(&answer(&["10.0.0.5"]), &answer(&["10.0.0.5"]), none),
            Comparison::Consistent
        );
        assert_eq!(
            compare(&answer(&["::ffff:1.2.3.4"]), &answer(&["1.2.3.4"]), none),
            Comparison::Consistent
        );
    }

    #[test]
    fn bogons_outside_the_exemption_without_a_shared_address() {
        let none: &[Cidr] = &[];
        assert_eq!(
            compare(&answer(&["10.9.9.9"]), &answer(&["93.184.216.34"]), none),
            Comparison::Bogon(vec![(ip("10.9.9.9"), "private 10.0.0.0/8")])
        );
        // Forged into an exempt block: not a bogon, so the tie-break decides.
        let exempt = [cidr("10.9.0.0/16")];
        assert_eq!(
            compare(&answer(&["10.9.9.9"]), &answer(&["93.184.216.34"]), &exempt),
            Comparison::Disagree(Some(ip("10.9.9.9")))
        );
        // One public suspect among bogons: the tie-break decides.
        assert_eq!(
            compare(
                &answer(&["127.0.0.1", "8.8.4.4"]),
                &answer(&["93.184.216.34"]),
                none
            ),
            Comparison::Disagree(Some(ip("127.0.0.1")))
        );
        // NXDOMAIN from us, addresses from them: nothing to tie-break.
        assert_eq!(
            compare(&nx(), &answer(&["93.184.216.34"]), none),
            Comparison::Disagree(None)
        );
        assert_eq!(
            compare(&answer(&["1.2.3.4"]), &nx(), none),
            Comparison::Disagree(Some(ip("1.2.3.4")))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_compared_answer_counts_only_when_fresh_and_successful() {
        let store = Store::new([1]);
        let fresh = Duration::from_secs(2);
        assert!(
            matches!(store.latest(1, fresh), Latest::NoData(w) if w.contains("not been probed"))
        );
        assert!(matches!(store.latest(0, fresh), Latest::NoData(_)));
        store.record(0, Some(answer(&["1.1.1.1"]))); // not compared: not kept
        assert!(matches!(store.latest(0, fresh), Latest::NoData(_)));
        store.record(1, Some(answer(&["1.1.1.1"])));
        assert_eq!(store.latest(1, fresh), Latest::Fresh(answer(&["1.1.1.1"])));
        tokio::time::advance(Duration::from_millis(2100)).await;
        assert!(matches!(store.latest(1, fresh), Latest::NoData(w) if w.contains("old")));
        store.record(1, None);
        assert!(matches!(store.latest(1, fresh), Latest::NoData(w) if w.contains("failed")));
    }

    fn plan(tls: bool) -> Plan {
        Plan {
            with: 1,
            with_name: "doh-resolver".into(),
            fresh: Duration::from_secs(10),
            tls: tls.then(|| {
                let c = tls::client_config(None, true, &[]).unwrap();
                (443, Arc::new(c))
            }),
            vouched: Mutex::default(),
        }
    }

    const ASKED: Asked<'static> = Asked {
        target: "isp-resolver",
        name: "example.org",
        record: "A",
        timeout: Duration::from_secs(1),
    };

    #[tokio::test]
    async fn verdicts_carry_evidence_and_no_data_when_the_compared_target_failed() {
        let store = Store::new([1]);
        let deadline = Instant::now() + Duration::from_secs(1);
        let own = answer(&["10.9.9.9"]);
        let v = judge(&plan(true), &store, &ASKED, &own, &[], deadline).await;
        assert!(matches!(v, Verdict::NoData(_)), "{v:?}");
        store.record(1, None);
        let v = judge(&plan(true), &store, &ASKED, &own, &[], deadline).await;
        assert!(
            matches!(&v, Verdict::NoData(w) if w.contains("doh-resolver: its latest probe failed")),
            "{v:?}"
        );

        store.record(1, Some(answer(&["93.184.216.34"])));
        let Verdict::Failed {
            outcome,
            evidence,
            tie_break,
        } = judge(&plan(true), &store, &ASKED, &own, &[], deadline).await
        else {
            panic!("expected a failure");
        };
        assert!(!tie_break, "a bogon needs no tie-break");
        assert_eq!(evidence.check, Check::DnsBogon);
        assert_eq!(evidence.name, "example.org");
        assert_eq!(
            evidence.raw,
            ["isp-resolver: A 10.9.9.9", "doh-resolver: A 93.184.216.34"]
        );
        assert!(
            evidence.detail.contains("isp-resolver answered example.org A 10.9.9.9; doh-resolver answered 93.184.216.34; 10.9.9.9 is private 10.0.0.0/8, not in bogon_exempt"),
            "{}",
            evidence.detail
        );
        assert!(matches!(outcome, Outcome::Error(e) if e.reason == Reason::DnsBogon));

        // tie_break = "none": a disagreement is inconsistent at once.
        let exempt = [cidr("10.0.0.0/8")];
        let Verdict::Failed {
            outcome, evidence, ..
        } = judge(&plan(false), &store, &ASKED, &own, &exempt, deadline).await
        else {
            panic!("expected a failure");
        };
        assert_eq!(evidence.check, Check::DnsInconsistent);
        assert!(evidence.detail.contains("tie_break = \"none\""));
        assert!(matches!(outcome, Outcome::Error(e) if e.reason == Reason::DnsInconsistent));

        // Our NXDOMAIN against their address: nothing to check with TLS.
        let Verdict::Failed { evidence, .. } =
            judge(&plan(true), &store, &ASKED, &nx(), &[], deadline).await
        else {
            panic!("expected a failure");
        };
        assert_eq!(evidence.raw[0], "isp-resolver: NXDOMAIN");
        assert!(evidence.detail.contains("no address to check"));

        // SERVFAIL is not an answer to compare.
        let servfail = Answer {
            rcode: 2,
            addrs: vec![],
        };
        let v = judge(&plan(true), &store, &ASKED, &servfail, &[], deadline).await;
        assert!(matches!(v, Verdict::NoData(_)), "{v:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_vouched_address_skips_the_tie_break_for_an_hour() {
        let store = Store::new([1]);
        let p = plan(true);
        p.vouch(ip("127.0.0.82"));
        store.record(1, Some(answer(&["127.0.0.81"])));
        let own = answer(&["127.0.0.82"]);
        let exempt = [cidr("127.0.0.0/8")];
        let deadline = Instant::now() + Duration::from_secs(1);
        let v = judge(&p, &store, &ASKED, &own, &exempt, deadline).await;
        assert_eq!(v, Verdict::Consistent { tie_break: None });
        assert!(p.vouched(ip("127.0.0.82")));
        tokio::time::advance(VOUCHED_FOR).await;
        assert!(!p.vouched(ip("127.0.0.82")));
        for last in 0..20 {
            p.vouch(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)));
        }
        assert_eq!(p.vouched.lock().unwrap().len(), VOUCHED_MAX);
        assert!(p.vouched(ip("192.0.2.19")) && !p.vouched(ip("192.0.2.0")));
    }

    /// A server that accepts and never answers the ClientHello: silence is
    /// `dns_inconsistent` with a fair share of the timeout, no data without.
    #[tokio::test]
    async fn a_silent_tie_break_counts_only_with_time_to_spare() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let store = Store::new([1]);
        store.record(1, Some(answer(&["127.0.0.2"])));
        let mut plan = plan(true);
        if let Some((p, _)) = &mut plan.tls {
            *p = port;
        }
        let own = answer(&["127.0.0.1"]);
        let exempt = [cidr("127.0.0.0/8")];
        let asked = Asked {
            timeout: Duration::from_millis(300),
            ..ASKED
        };
        let deadline = Instant::now() + Duration::from_millis(300);
        let v = judge(&plan, &store, &asked, &own, &exempt, deadline).await;
        let Verdict::Failed {
            evidence,
            tie_break,
            ..
        } = v
        else {
            panic!("expected a failure: {v:?}");
        };
        assert!(tie_break);
        assert!(
            evidence.raw[2].contains("no handshake within the probe's remaining"),
            "{evidence:?}"
        );
        assert!(
            Instant::now() < deadline,
            "the tie-break ends before the probe's deadline"
        );

        let deadline = Instant::now() + Duration::from_millis(100);
        let v = judge(&plan, &store, &asked, &own, &exempt, deadline).await;
        assert!(
            matches!(&v, Verdict::Undecided(l) if l.contains("no handshake")),
            "{v:?}"
        );
        hold.abort();
    }
}
