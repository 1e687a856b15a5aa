//! The per-kind target specs: which keys each kind takes and how they become
//! an [`IcmpSpec`](super::IcmpSpec), [`TcpSpec`](super::TcpSpec),
//! [`HttpSpec`](super::HttpSpec), [`DnsSpec`](super::DnsSpec) or
//! [`ThroughputSpec`](super::ThroughputSpec), plus the
//! keys several kinds share (`host`, `ip_version`).

mod criteria;
mod dns;
mod http;
mod icmp;
mod tcp;
mod throughput;

pub(super) use dns::check_compare_with;
pub(super) use throughput::{plan, timing as throughput_timing};

use std::net::IpAddr;

use toml::de::DeValue;

use super::error::shown;
use super::model::{Host, IpVersion, Kind, TargetSpec};
use super::validate;
use super::walk::{At, Got, Need, Tbl, Walker};

/// The keys a target of `kind` takes besides the common target keys.
pub(super) fn keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Icmp => icmp::KEYS,
        Kind::Tcp => tcp::KEYS,
        Kind::Http => http::KEYS,
        Kind::Dns => dns::KEYS,
        Kind::Throughput => throughput::KEYS,
    }
}

/// The spec of a target of `kind`; `None` when a problem was reported.
pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>, kind: Kind) -> Option<TargetSpec> {
    match kind {
        Kind::Icmp => icmp::parse(w, t).map(TargetSpec::Icmp),
        Kind::Tcp => tcp::parse(w, t).map(TargetSpec::Tcp),
        Kind::Http => http::parse(w, t).map(|s| TargetSpec::Http(Box::new(s))),
        Kind::Dns => dns::parse(w, t).map(|s| TargetSpec::Dns(Box::new(s))),
        Kind::Throughput => throughput::parse(w, t).map(|s| TargetSpec::Throughput(Box::new(s))),
    }
}

/// The required `host` of an icmp or tcp target.
fn host(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Need<Host> {
    let got = w.string(t, "host");
    let got = w.check(t, "host", got, |s| {
        validate::host(s).map_err(|reason| {
            format!(
                "`host` ({s}) must be an IPv4 address, an IPv6 address, \
                 a DNS name or \"@gateway\": {reason}",
                s = shown(s)
            )
        })
    });
    w.missing(t, "host", got)
}

/// `ip_version`: 4, 6, "4", "6" or "any".
fn ip_version(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<IpVersion> {
    let Some(v) = t.get("ip_version") else {
        return Ok(None);
    };
    let parsed = match v.get_ref() {
        DeValue::String(s) => match s.as_ref() {
            "4" => Some(IpVersion::V4),
            "6" => Some(IpVersion::V6),
            "any" => Some(IpVersion::Any),
            _ => None,
        },
        DeValue::Integer(i) => match (i.as_str(), i.radix()) {
            ("4", 10) => Some(IpVersion::V4),
            ("6", 10) => Some(IpVersion::V6),
            _ => None,
        },
        _ => {
            return Err(w.wrong_type(t.key("ip_version"), v, "4, 6 or \"any\""));
        }
    };
    match parsed {
        Some(value) => Ok(Some(At {
            value,
            span: v.span(),
        })),
        None => {
            let written = match v.get_ref().as_str() {
                Some(s) => shown(s).into_owned(),
                None => w.snippet(&v.span()),
            };
            let message = format!("`ip_version` ({written}) must be 4, 6 or \"any\"");
            Err(w.report(v.span(), t.key("ip_version"), message))
        }
    }
}

/// Reports an `ip_version` that an IP literal host contradicts.
fn check_family(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    ip: Option<IpAddr>,
    what: &str,
    version: &Got<IpVersion>,
) {
    let (Some(ip), Ok(Some(v))) = (ip, version) else {
        return;
    };
    let clash = match (ip, v.value) {
        (IpAddr::V4(_), IpVersion::V6) => Some(("6", "an IPv4")),
        (IpAddr::V6(_), IpVersion::V4) => Some(("4", "an IPv6")),
        _ => None,
    };
    if let Some((n, family)) = clash {
        let message =
            format!("`ip_version` ({n}) contradicts `{what}` ({ip}), which is {family} address");
        w.report(v.span.clone(), t.key("ip_version"), message);
    }
}

/// The address of a host that was written as a literal IP, if it parsed.
fn literal_ip<E>(host: &Result<At<Host>, E>) -> Option<IpAddr> {
    match host {
        Ok(At {
            value: Host::Ip(ip),
            ..
        }) => Some(*ip),
        _ => None,
    }
}
