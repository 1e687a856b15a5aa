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
use super::super::model::{DnsServer, DnsSpec, DnsTransport, Host, Nameserver};
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
    })
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
mod tests {
    use super::*;

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
