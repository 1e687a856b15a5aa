//! `kind = "dns"`: one query to a resolver over udp, tcp, tls or https.
//!
//! `transport` decides which of `server`, `tls_name` and `ca_file` apply and
//! what `server` may be; the result is one [`DnsServer`] carrying its
//! transport, so the probe never meets a combination that was not checked.

use std::path::PathBuf;
use std::str::FromStr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use toml::de::DeValue;
use url::Url;

use super::super::error::shown;
use super::super::graph::TargetDraft;
use super::super::model::{
    DnsCompare, DnsServer, DnsSpec, DnsTransport, Host, Nameserver, TargetSpec, TieBreakTls,
};
use super::super::validate;
use super::super::walk::{At, Got, Need, Reported, Tbl, Walker, all_or_reported};
use super::super::{RCODES, RECORD_TYPES};

pub(super) const KEYS: &[&str] = &[
    "server",
    "query",
    "record",
    "transport",
    "tls_name",
    "expect_rcode",
    "expect",
    "min_answers",
    "ca_file",
    "compare_with",
    "tie_break",
    "tie_break_port",
    "tie_break_ca_file",
];

/// Where `server` points, before it is joined with the transport's other keys.
enum ServerAt {
    System,
    Addr(Host, u16),
    Url(Url),
}

pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<DnsSpec> {
    let transport = w.string(t, "transport");
    let transport = w.check(t, "transport", transport, |s| match s.as_str() {
        "udp" => Ok(DnsTransport::Udp),
        "tcp" => Ok(DnsTransport::Tcp),
        "tls" => Ok(DnsTransport::Tls),
        "https" => Ok(DnsTransport::Https),
        _ => Err(format!(
            "`transport` ({s}) must be one of udp, tcp, tls, https",
            s = shown(s)
        )),
    });
    let known_transport = match &transport {
        Ok(t) => Some(t.as_ref().map_or(DnsTransport::Udp, |v| v.value)),
        Err(_) => None,
    };
    let server = server(w, t, known_transport);
    let query = w.string(t, "query");
    let query = w.check(t, "query", query, |s| query_name(s));
    let query = w.missing(t, "query", query);
    let record = record(w, t);
    let tls_name = tls_name(w, t, known_transport);
    let expect_rcode = expect_rcode(w, t);
    let record_type = match &record {
        Ok(r) => Some(r.as_ref().map_or(RecordType::A, |v| v.value)),
        Err(_) => None,
    };
    let expect = expect(w, t, record_type);
    let min_answers = w.integer(t, "min_answers", 0, 1000);
    let compare = compare(w, t, record_type);
    let ca_file = w.nonempty(t, "ca_file");
    let ca_file = only_with(
        w,
        t,
        "ca_file",
        ca_file,
        known_transport,
        &[DnsTransport::Tls, DnsTransport::Https],
    );

    if let (
        Ok(At {
            value: ServerAt::Addr(Host::Gateway, _),
            span,
        }),
        Ok(None),
    ) = (&server, &tls_name)
        && known_transport == Some(DnsTransport::Tls)
    {
        // The gateway has no name to check its certificate against.
        let message = "`server` (@gateway) with `transport = \"tls\"` needs `tls_name`, \
                       the name in the resolver's certificate"
            .to_owned();
        w.report(span.clone(), t.key("server"), message);
        return None;
    }
    let ca_file = ca_file.ok()?.map(|v| PathBuf::from(v.value));
    let tls_name = tls_name.ok()?.map(|v| v.value);
    let server = join(known_transport?, server.ok()?.value, tls_name, ca_file)?;
    Some(DnsSpec {
        server,
        query: query.ok()?.value,
        record: record.ok()?.map_or(RecordType::A, |v| v.value),
        expect_rcode: expect_rcode
            .ok()?
            .map_or(ResponseCode::NoError, |v| v.value),
        expect: expect.ok()?,
        min_answers: min_answers.ok()?.map_or(0, |v| v.value) as u32,
        compare: compare.ok()?,
    })
}

/// `compare_with` with `tie_break`, `tie_break_port` and `tie_break_ca_file`.
/// Whether the compared target exists and asks the same question is checked
/// once every target is read ([`check_compare_with`]).
fn compare(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    record: Option<RecordType>,
) -> Result<Option<DnsCompare>, Reported> {
    let with = w.nonempty(t, "compare_with");
    let tie_break = w.string(t, "tie_break");
    let tie_break = w.check(t, "tie_break", tie_break, |s| match s.as_str() {
        "tls" => Ok(true),
        "none" => Ok(false),
        _ => Err(format!(
            "`tie_break` ({s}) must be \"tls\" or \"none\"",
            s = shown(s)
        )),
    });
    let port = w.integer(t, "tie_break_port", 1, 65_535);
    let ca_file = w.nonempty(t, "tie_break_ca_file");
    let with = match with? {
        Some(with) => with,
        None => {
            // The tie-breaker's keys mean nothing without a comparison.
            let mut failed = false;
            for key in ["tie_break", "tie_break_port", "tie_break_ca_file"] {
                if let Some(v) = t.get(key) {
                    let message = format!(
                        "`{key}` only applies with `compare_with`, which this target does not set"
                    );
                    w.report(v.span(), t.key(key), message);
                    failed = true;
                }
            }
            return if failed { Err(Reported) } else { Ok(None) };
        }
    };
    if let Some(record) = record
        && !matches!(record, RecordType::A | RecordType::AAAA)
    {
        let message = format!(
            "`compare_with` compares addresses: it needs `record = \"A\"` or `\"AAAA\"`, \
             not {record}"
        );
        return Err(w.report(with.span, t.key("compare_with"), message));
    }
    let tls = tie_break?.is_none_or(|v| v.value);
    let (port, ca_file) = (port?, ca_file?);
    if !tls {
        for (key, set) in [
            ("tie_break_port", port.as_ref().map(|v| v.span.clone())),
            (
                "tie_break_ca_file",
                ca_file.as_ref().map(|v| v.span.clone()),
            ),
        ] {
            if let Some(span) = set {
                let message =
                    format!("`{key}` only applies with `tie_break = \"tls\"`, not \"none\"");
                return Err(w.report(span, t.key(key), message));
            }
        }
    }
    Ok(Some(DnsCompare {
        with: with.value,
        tls: tls.then(|| TieBreakTls {
            port: port.map_or(443, |v| v.value as u16),
            ca_file: ca_file.map(|v| PathBuf::from(v.value)),
        }),
    }))
}

/// Every `compare_with` names another dns target that asks the same question
/// (same `query`, same `record`): the comparison is of one question asked
/// of two resolvers. Reported at the `compare_with` value.
pub(in crate::config) fn check_compare_with(
    w: &mut Walker<'_>,
    root: &Tbl<'_, '_>,
    targets: &[Result<TargetDraft, Reported>],
) {
    let Some(DeValue::Array(items)) = root.get("target").map(|v| v.get_ref()) else {
        return;
    };
    let named = |name: &str| {
        targets.iter().find_map(|d| match d {
            Ok(d) if d.name.as_ref().is_ok_and(|n| n.value == name) => Some(d),
            _ => None,
        })
    };
    let dns_names: Vec<&str> = targets
        .iter()
        .filter_map(|d| match &d.as_ref().ok()?.target.as_ref()?.spec {
            TargetSpec::Dns(_) => Some(d.as_ref().ok()?.name.as_ref().ok()?.value.as_str()),
            _ => None,
        })
        .collect();
    for (i, (item, draft)) in items.iter().zip(targets).enumerate() {
        let (DeValue::Table(map), Ok(draft)) = (item.get_ref(), draft) else {
            continue;
        };
        let (Some(value), Some(target)) = (map.get("compare_with"), &draft.target) else {
            continue;
        };
        let TargetSpec::Dns(spec) = &target.spec else {
            continue;
        };
        let DnsSpec {
            compare: Some(compare),
            query,
            record,
            ..
        } = &**spec
        else {
            continue;
        };
        let key = format!("target[{i}].compare_with");
        let with = shown(&compare.with);
        let message = if compare.with == target.name {
            format!("`compare_with` ({with}) names this target itself; name another dns target")
        } else {
            match named(&compare.with) {
                None => format!(
                    "`compare_with` ({with}) names no [[target]]; dns targets: {}",
                    dns_names.join(", ")
                ),
                // That target's own problems were reported.
                Some(TargetDraft { target: None, .. }) => continue,
                Some(TargetDraft {
                    target: Some(other),
                    ..
                }) => match &other.spec {
                    TargetSpec::Dns(o) if same_name(&o.query, query) && o.record == *record => {
                        continue;
                    }
                    TargetSpec::Dns(o) => format!(
                        "`compare_with` ({with}) asks {} {}, this target asks {} {}: \
                         the comparison needs the same question",
                        o.query, o.record, query, record
                    ),
                    other_spec => format!(
                        "`compare_with` ({with}) names a {} target; it must name a dns target",
                        other_spec.kind().as_str()
                    ),
                },
            }
        };
        w.report(value.span(), key, message);
    }
}

/// Names equal as asked (the probe asks every name as fully qualified).
fn same_name(a: &Name, b: &Name) -> bool {
    let text = |n: &Name| n.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    text(a) == text(b)
}

/// `record`: one of [`RECORD_TYPES`], in any case.
fn record(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<RecordType> {
    let record = w.string(t, "record");
    w.check(t, "record", record, |s| {
        let upper = s.to_ascii_uppercase();
        match RecordType::from_str(&upper) {
            Ok(r) if RECORD_TYPES.contains(&upper.as_str()) => Ok(r),
            _ => Err(format!(
                "`record` ({s}) is not a supported record type; supported: {}",
                RECORD_TYPES.join(", "),
                s = shown(s)
            )),
        }
    })
}

/// `tls_name`: a DNS name or an IP address, for `transport = "tls"` only.
fn tls_name(w: &mut Walker<'_>, t: &Tbl<'_, '_>, transport: Option<DnsTransport>) -> Got<String> {
    let tls_name = w.string(t, "tls_name");
    let tls_name = w.check(t, "tls_name", tls_name, |s| match validate::host(s) {
        Ok(Host::Gateway) => Err(format!(
            "`tls_name` ({s}) must be a DNS name or an IP address",
            s = shown(s)
        )),
        Ok(_) => Ok(s.clone()),
        Err(reason) => Err(format!(
            "`tls_name` ({s}) must be a DNS name or an IP address: {reason}",
            s = shown(s)
        )),
    });
    only_with(w, t, "tls_name", tls_name, transport, &[DnsTransport::Tls])
}

/// `expect_rcode`: one of [`RCODES`], in any case.
fn expect_rcode(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<ResponseCode> {
    let expect_rcode = w.string(t, "expect_rcode");
    w.check(t, "expect_rcode", expect_rcode, |s| {
        let upper = s.to_ascii_uppercase();
        match RCODES.iter().position(|&r| r == upper) {
            Some(code) => Ok(ResponseCode::from_low(code as u8)),
            None => Err(format!(
                "`expect_rcode` ({s}) is not a DNS response code; valid: {}",
                RCODES.join(", "),
                s = shown(s)
            )),
        }
    })
}

/// The server with the settings of its transport; `server` was checked against
/// the transport, so the other combinations do not occur.
fn join(
    transport: DnsTransport,
    server: ServerAt,
    tls_name: Option<String>,
    ca_file: Option<PathBuf>,
) -> Option<DnsServer> {
    let server = match (transport, server) {
        (DnsTransport::Udp, ServerAt::System) => DnsServer::Udp(Nameserver::System),
        (DnsTransport::Tcp, ServerAt::System) => DnsServer::Tcp(Nameserver::System),
        (DnsTransport::Udp, ServerAt::Addr(host, port)) => {
            DnsServer::Udp(Nameserver::Addr { host, port })
        }
        (DnsTransport::Tcp, ServerAt::Addr(host, port)) => {
            DnsServer::Tcp(Nameserver::Addr { host, port })
        }
        (DnsTransport::Tls, ServerAt::Addr(host, port)) => DnsServer::Tls {
            host,
            port,
            tls_name,
            ca_file,
        },
        (DnsTransport::Https, ServerAt::Url(url)) => DnsServer::Https { url, ca_file },
        // `server` was checked against the transport above.
        _ => return None,
    };
    Some(server)
}

/// `server`, checked against the transport (not at all when that is unusable).
fn server(w: &mut Walker<'_>, t: &Tbl<'_, '_>, transport: Option<DnsTransport>) -> Need<ServerAt> {
    let server = w.string(t, "server");
    match (server, transport) {
        (Err(r), _) => Err(r),
        (Ok(_), None) => Err(Reported),
        (Ok(None), Some(tr @ (DnsTransport::Tls | DnsTransport::Https))) => {
            let example = if tr == DnsTransport::Https {
                "a DoH URL such as \"https://cloudflare-dns.com/dns-query\""
            } else {
                "an address such as \"1.1.1.1\" or \"dns.google:853\""
            };
            Err(w.report(
                t.span.clone(),
                t.key("server"),
                format!(
                    "missing required key `server`: `transport = \"{}\"` needs {example}",
                    tr.as_str()
                ),
            ))
        }
        (Ok(None), Some(_)) => Ok(At {
            value: ServerAt::System,
            span: 0..0,
        }),
        (Ok(Some(s)), Some(tr)) => {
            match w.check(t, "server", Ok(Some(s)), |s| server_value(s, tr)) {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(Reported),
                Err(r) => Err(r),
            }
        }
    }
}

/// Parses a DNS `server` for a transport.
fn server_value(s: &str, transport: DnsTransport) -> Result<ServerAt, String> {
    if transport == DnsTransport::Https {
        validate::url_text(s)
            .map_err(|reason| format!("`server` ({}) is not a valid URL: {reason}", shown(s)))?;
        let url = Url::parse(s).map_err(|e| {
            format!(
                "`server` ({s}) must be an https:// URL with `transport = \"https\"`: {e}",
                s = shown(s)
            )
        })?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "`server` ({s}) must be an https:// URL with `transport = \"https\"`",
                s = shown(s)
            ));
        }
        validate::http_url(&url)
            .map_err(|reason| format!("`server` ({s}) is not usable: {reason}", s = shown(s)))?;
        return Ok(ServerAt::Url(url));
    }
    validate::dns_server_addr(s, transport.default_port())
        .map(|(host, port)| ServerAt::Addr(host, port))
        .map_err(|reason| {
            format!(
                "`server` ({s}) must be \"address\", \"address:port\", \"[v6]:port\" \
                 or \"name[:port]\": {reason}",
                s = shown(s)
            )
        })
}

/// The name asked for, as written (a trailing dot makes it fully qualified).
fn query_name(s: &str) -> Result<Name, String> {
    validate::dns_name(s, false).map_err(|reason| {
        format!(
            "`query` ({s}) is not a valid DNS name: {reason}",
            s = shown(s)
        )
    })?;
    Name::from_ascii(s)
        .map_err(|e| format!("`query` ({s}) is not a valid DNS name: {e}", s = shown(s)))
}

/// Rejects a DNS key that only means something for some transports.
fn only_with<T>(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    key: &str,
    got: Got<T>,
    transport: Option<DnsTransport>,
    allowed: &[DnsTransport],
) -> Got<T> {
    match (&got, transport) {
        (Ok(Some(v)), Some(tr)) if !allowed.contains(&tr) => {
            let names: Vec<String> = allowed
                .iter()
                .map(|a| format!("\"{}\"", a.as_str()))
                .collect();
            let message = format!(
                "`{key}` only applies with `transport = {}`, not \"{}\"",
                names.join(" or "),
                tr.as_str()
            );
            Err(w.report(v.span.clone(), t.key(key), message))
        }
        _ => got,
    }
}

/// `expect`: addresses are normalised so that the probe can compare them as text.
fn expect(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    record: Option<RecordType>,
) -> Result<Vec<String>, Reported> {
    let items = w.array(t, "expect", "an array of strings")?;
    let answers = items
        .into_iter()
        .map(|(key, item)| {
            let DeValue::String(s) = item.get_ref() else {
                return Err(w.wrong_type(key, item, "a string"));
            };
            let normalised = match record {
                Some(RecordType::A) => s
                    .parse::<std::net::Ipv4Addr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        format!(
                            "`expect` ({s}) is not an IPv4 address, as an A record holds",
                            s = shown(s)
                        )
                    }),
                Some(RecordType::AAAA) => s
                    .parse::<std::net::Ipv6Addr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        format!(
                            "`expect` ({s}) is not an IPv6 address, as an AAAA record holds",
                            s = shown(s)
                        )
                    }),
                _ if s.trim().is_empty() => Err("`expect` entries must not be empty".to_owned()),
                _ => Ok(s.to_string()),
            };
            normalised.map_err(|message| w.report(item.span(), key, message))
        })
        .collect();
    all_or_reported(answers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{TieBreakTls, parse};

    /// Two dns targets asking the same question: `isp` (udp, line 9 on) and
    /// `doh` (https); `isp_extra` is added to `isp`.
    fn two(isp_extra: &str, doh_extra: &str) -> String {
        format!(
            "[[group]]\nname = \"g\"\n\
             [[target]]\nname = \"doh\"\ngroup = \"g\"\nkind = \"dns\"\ntransport = \"https\"\n\
             server = \"https://dns.example/dns-query\"\nquery = \"example.org\"\n{doh_extra}\n\
             [[target]]\nname = \"isp\"\ngroup = \"g\"\nkind = \"dns\"\nserver = \"192.0.2.53\"\n\
             query = \"Example.org.\"\n{isp_extra}\n\
             [[target]]\nname = \"web\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"192.0.2.80\"\n"
        )
    }

    fn compare_of(c: &crate::config::Config, name: &str) -> Option<DnsCompare> {
        let t = c.targets.iter().find(|t| t.name == name).unwrap();
        match &t.spec {
            TargetSpec::Dns(d) => d.compare.clone(),
            _ => panic!("not dns"),
        }
    }

    #[test]
    fn compare_with_and_its_tie_breaker_parse_with_defaults() {
        let c = parse(&two("compare_with = \"doh\"", ""), "t.toml").unwrap();
        assert_eq!(
            compare_of(&c, "isp"),
            Some(DnsCompare {
                with: "doh".into(),
                tls: Some(TieBreakTls {
                    port: 443,
                    ca_file: None
                }),
            })
        );
        assert_eq!(compare_of(&c, "doh"), None);
        let text = two(
            "compare_with = \"doh\"\ntie_break = \"tls\"\ntie_break_port = 8443\ntie_break_ca_file = \"/etc/ca.pem\"",
            "",
        );
        let c = parse(&text, "t.toml").unwrap();
        assert_eq!(
            compare_of(&c, "isp").unwrap().tls,
            Some(TieBreakTls {
                port: 8443,
                ca_file: Some("/etc/ca.pem".into())
            })
        );
        let c = parse(
            &two("compare_with = \"doh\"\ntie_break = \"none\"", ""),
            "t.toml",
        )
        .unwrap();
        assert_eq!(compare_of(&c, "isp").unwrap().tls, None);
    }

    #[test]
    fn bad_comparisons_are_positioned_errors() {
        for (isp, doh, at, words) in [
            (
                "compare_with = \"nope\"",
                "",
                "t.toml:17:16: key `target[1].compare_with`",
                "names no [[target]]; dns targets: doh, isp",
            ),
            (
                "compare_with = \"isp\"",
                "",
                "t.toml:17:16: key `target[1].compare_with`",
                "names this target itself",
            ),
            (
                "compare_with = \"web\"",
                "",
                "t.toml:17:16: key `target[1].compare_with`",
                "names a icmp target",
            ),
            (
                "compare_with = \"doh\"",
                "record = \"AAAA\"",
                "t.toml:17:16: key `target[1].compare_with`",
                "asks example.org AAAA, this target asks Example.org. A",
            ),
            (
                "compare_with = \"doh\"\nrecord = \"TXT\"",
                "record = \"TXT\"",
                "t.toml:17:16: key `target[1].compare_with`",
                "needs `record = \"A\"` or `\"AAAA\"`",
            ),
            (
                "tie_break = \"tls\"",
                "",
                "t.toml:17:13: key `target[1].tie_break`",
                "only applies with `compare_with`",
            ),
            (
                "compare_with = \"doh\"\ntie_break = \"maybe\"",
                "",
                "t.toml:18:13: key `target[1].tie_break`",
                "must be \"tls\" or \"none\"",
            ),
            (
                "compare_with = \"doh\"\ntie_break_port = 0",
                "",
                "t.toml:18:18: key `target[1].tie_break_port`",
                "range",
            ),
            (
                "compare_with = \"doh\"\ntie_break = \"none\"\ntie_break_ca_file = \"/x.pem\"",
                "",
                "t.toml:19:21: key `target[1].tie_break_ca_file`",
                "only applies with `tie_break = \"tls\"`",
            ),
        ] {
            let err = parse(&two(isp, doh), "t.toml").unwrap_err().to_string();
            assert!(err.contains(at), "{at}: {err}");
            assert!(err.contains(words), "{words}: {err}");
        }
    }

    #[test]
    fn every_supported_record_type_and_rcode_is_a_hickory_value() {
        for name in RECORD_TYPES {
            let r = RecordType::from_str(name);
            assert!(
                matches!(r, Ok(r) if r.to_string() == *name),
                "{name}: {r:?}"
            );
        }
        for (code, name) in RCODES.iter().enumerate() {
            assert_eq!(
                u16::from(ResponseCode::from_low(code as u8)),
                code as u16,
                "{name}"
            );
        }
    }
}
