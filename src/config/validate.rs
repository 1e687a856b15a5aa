//! Pure value rules used by the config walker: durations, hosts, DNS names,
//! DNS server addresses and the `needs` graph. Each returns the reason a value
//! is wrong as prose; the walker adds file, line, column and key.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::model::{Cidr, Host};

/// Shortest interval a target may use.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest interval a target may use.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Shortest timeout a target may use: tokio's timers tick in milliseconds, so
/// below this a probe can time out before any answer had a chance to arrive,
/// and a healthy loopback would be reported down.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// Longest timeout a target may use (it must also be shorter than its interval).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest `data_dir` in bytes (Linux `PATH_MAX` less the terminating NUL).
const MAX_PATH_BYTES: usize = 4095;
/// Longest component of `data_dir` in bytes (Linux `NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;

/// Parses an address block (`10.0.0.0/8`, `2001:db8::/32`; a bare address
/// is the block of that one address); the error is the reason it is not one.
pub(crate) fn cidr(text: &str) -> Result<Cidr, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not an IPv4 or IPv6 address", addr.trim()))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(p) => match p.trim().parse::<u8>() {
            Ok(n) if n <= bits => n,
            _ => {
                return Err(format!(
                    "the prefix length `{}` must be a number from 0 to {bits}",
                    p.trim()
                ));
            }
        },
    };
    Cidr::new(addr, prefix).ok_or_else(|| match Cidr::containing(addr, prefix) {
        Some(block) => format!(
            "the address has bits set past the prefix; write `{block}` for the block, \
                 or `{addr}/{bits}` for that one address"
        ),
        None => "the prefix is longer than the address".to_owned(),
    })
}

/// Parses a humane duration string (`500ms`, `5s`, `1m`, `1h 30m`); the
/// error is the reason it is not one.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    humantime::parse_duration(text).map_err(|e| {
        // humantime appends the whole unit list to unknown-unit errors.
        let reason = e.to_string();
        match reason.split_once(", supported units") {
            Some((head, _)) => head.to_owned(),
            None => reason,
        }
    })
}

/// Formats a duration the way users write them (`2s`, `500ms`, `1m 30s`).
pub(crate) fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Checks an interval against [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub(crate) fn interval_in_range(d: Duration) -> bool {
    (MIN_INTERVAL..=MAX_INTERVAL).contains(&d)
}

/// Checks a timeout against [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`]; the error is
/// the whole message, `shown` is the value as written.
pub(crate) fn timeout_in_range(d: Duration, shown: &str) -> Result<(), String> {
    if d < MIN_TIMEOUT {
        Err(format!(
            "`timeout` ({shown}) is below the minimum of {}",
            format_duration(MIN_TIMEOUT)
        ))
    } else if d > MAX_TIMEOUT {
        Err(format!(
            "`timeout` ({shown}) is above the maximum of {}",
            format_duration(MAX_TIMEOUT)
        ))
    } else {
        Ok(())
    }
}

/// The reason `listen` cannot serve on any host: a multicast or broadcast
/// address binds but no client can connect to it, and an IPv6 link-local
/// address without a scope (`%2`, the interface index) cannot be bound at all.
pub(crate) fn listen(addr: SocketAddr) -> Result<(), String> {
    match addr {
        SocketAddr::V4(a) if a.ip().is_multicast() || a.ip().is_broadcast() => Err(format!(
            "{} is a {} address, which no client can connect to",
            a.ip(),
            if a.ip().is_multicast() {
                "multicast"
            } else {
                "broadcast"
            }
        )),
        SocketAddr::V6(a) if a.ip().is_multicast() => Err(format!(
            "{} is a multicast address, which no client can connect to",
            a.ip()
        )),
        SocketAddr::V6(a) if a.ip().is_unicast_link_local() && a.scope_id() == 0 => Err(format!(
            "{} is a link-local address and needs its interface index, e.g. \"[{}%2]:{}\"",
            a.ip(),
            a.ip(),
            a.port()
        )),
        _ => Ok(()),
    }
}

/// Checks `data_dir`: an absolute path the kernel can take (no NUL byte,
/// at most 4095 bytes, each component at most 255 bytes).
pub(crate) fn data_dir(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("it contains a NUL byte, which no path can hold".to_owned());
    }
    if !text.starts_with('/') {
        return Err(
            "it must be an absolute path; a relative one would depend on the directory \
             linkwatch is started from"
                .to_owned(),
        );
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(format!(
            "it is {} bytes long; a path holds at most {MAX_PATH_BYTES}",
            text.len()
        ));
    }
    if let Some(long) = text.split('/').find(|c| c.len() > MAX_NAME_BYTES) {
        return Err(format!(
            "a component is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            long.len()
        ));
    }
    Ok(())
}

/// Checks what a probe takes from an http(s) URL: a host that is a valid DNS
/// name (or an IP address), a port other than 0, and a request target
/// (path and query) that HTTP/1.1 can send.
pub(crate) fn http_url(url: &url::Url) -> Result<(), String> {
    match url.host() {
        None => return Err("it has no host".to_owned()),
        Some(url::Host::Domain(d)) => dns_name(d, true)
            .map_err(|reason| format!("its host `{d}` is not a valid DNS name: {reason}"))?,
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
    }
    if url.port() == Some(0) {
        return Err("it has port 0; use a port in 1..=65535 or none".to_owned());
    }
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    if !target.is_empty() {
        http::uri::PathAndQuery::try_from(target.as_str())
            .map_err(|e| format!("its path and query cannot be sent in a request: {e}"))?;
    }
    Ok(())
}

/// Checks DNS name syntax. `hostname` restricts labels to letters, digits and
/// `-` (no leading or trailing `-`), as for a host to connect to; otherwise
/// any printable non-space ASCII is allowed in a label (`_dmarc`, `_443._tcp`),
/// as for a name to query. A single trailing dot (fully qualified) is allowed.
pub(crate) fn dns_name(name: &str, hostname: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name == "." {
        return if hostname {
            Err("the root name `.` is not a host".to_owned())
        } else {
            Ok(())
        };
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.len() > 253 {
        return Err(format!(
            "it is {} characters long; at most 253 are allowed",
            bare.len()
        ));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a leading dot)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` is {} characters long; at most 63 are allowed",
                label.len()
            ));
        }
        if hostname {
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(format!(
                    "label `{label}` contains {c:?}; only letters, digits and `-` are allowed"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("label `{label}` starts or ends with `-`"));
            }
        } else if let Some(c) = label.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("label `{label}` contains {c:?}"));
        }
    }
    if hostname
        && labels
            .last()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("it looks like an IP address but is not a valid one".to_owned());
    }
    Ok(())
}

/// Parses a probe host: an IPv4 or IPv6 address, a DNS name, or `@gateway`.
pub(crate) fn host(text: &str) -> Result<Host, String> {
    if text == "@gateway" {
        return Ok(Host::Gateway);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if text.starts_with('[') && text.ends_with(']') {
        return Err("IPv6 addresses are written without brackets here".to_owned());
    }
    if text.starts_with('@') {
        return Err("the only special host is \"@gateway\"".to_owned());
    }
    if text.contains("://") {
        return Err("it is a URL; give only the host name or address".to_owned());
    }
    if text.contains('%') {
        return Err("IPv6 zone indexes (`%eth0`) are not supported".to_owned());
    }
    match text.matches(':').count() {
        0 => {}
        1 => return Err("a port belongs in `port`, not in `host`".to_owned()),
        _ => return Err("it is not a valid IPv6 address".to_owned()),
    }
    dns_name(text, true)?;
    Ok(Host::Name(text.to_owned()))
}

/// Parses a `server` for the udp, tcp and tls transports:
/// `addr`, `addr:port`, `[v6]:port`, `[v6]`, `v6`, `name` or `name:port`.
pub(crate) fn dns_server_addr(text: &str, default_port: u16) -> Result<(Host, u16), String> {
    if text.contains("://") {
        return Err("it is a URL; a URL `server` needs `transport = \"https\"`".to_owned());
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err("port 0 is not a valid port; use 1..=65535".to_owned());
        }
        return Ok((Host::Ip(sa.ip()), sa.port()));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((Host::Ip(ip), default_port));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("`{inner}` is not an IPv6 address"))?;
        return Ok((Host::Ip(IpAddr::V6(ip)), default_port));
    }
    let (name, port) = match text.rsplit_once(':') {
        Some((name, port)) => (name, parse_port(port)?),
        None => (text, default_port),
    };
    let host = host(name)?;
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        Ok(p) => Err(format!("port {p} must be in the range 1..=65535")),
        Err(_) => Err(format!("port `{text}` is not a number")),
    }
}

/// Finds every cycle in the `needs` graph, where `needs[i]` is the index of
/// the group that group `i` needs. Each cycle is returned once, starting at
/// its member with the lowest index, without repeating that member at the end.
pub(crate) fn needs_cycles(needs: &[Option<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnPath,
        Done,
    }
    let mut state = vec![State::New; needs.len()];
    let mut cycles = Vec::new();
    for start in 0..needs.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match state.get(i).copied() {
                Some(State::New) => {
                    state[i] = State::OnPath;
                    path.push(i);
                    at = needs[i];
                }
                Some(State::OnPath) => {
                    if let Some(pos) = path.iter().position(|&p| p == i) {
                        let mut cycle = path[pos..].to_vec();
                        if let Some(min_pos) = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, g)| **g)
                            .map(|(p, _)| p)
                        {
                            cycle.rotate_left(min_pos);
                        }
                        cycles.push(cycle);
                    }
                    break;
                }
                Some(State::Done) | None => break,
            }
        }
        for i in path {
            state[i] = State::Done;
        }
    }
    cycles
}

/// A site name: a Prometheus label value and a word in reports and file
/// names, so 1 to 63 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn site(s: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters long".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) || !s.chars().all(ok_char) {
        return Err(
            "must start with a letter or digit and use only A-Z a-z 0-9 . _ - (e.g. \"almaty-home\")"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        let e = duration("5 parsecs").unwrap_err();
        assert_eq!(e, "unknown time unit \"parsecs\"");
        assert_eq!(duration(" ").unwrap_err(), "it is empty");
        assert!(duration("fast").is_err());
        assert!(duration("-5s").is_err());
        assert_eq!(format_duration(Duration::from_millis(2500)), "2s 500ms");
    }

    #[test]
    fn address_blocks() {
        let ok = |t: &str| cidr(t).unwrap().to_string();
        assert_eq!(ok("127.0.0.0/8"), "127.0.0.0/8");
        assert_eq!(ok("::1/128"), "::1/128");
        assert_eq!(ok("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(ok("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(ok("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(ok("fd00::5"), "fd00::5/128");
        let block = cidr("10.0.0.0/8").unwrap();
        assert!(block.contains("10.200.3.4".parse().unwrap()));
        assert!(block.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!block.contains("11.0.0.1".parse().unwrap()));
        assert!(!block.contains("::1".parse().unwrap()));
        assert!(
            cidr("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            cidr("10.0.0.1/8").unwrap_err(),
            "the address has bits set past the prefix; write `10.0.0.0/8` for the block, or `10.0.0.1/32` for that one address"
        );
        assert_eq!(
            cidr("10.0.0.0/33").unwrap_err(),
            "the prefix length `33` must be a number from 0 to 32"
        );
        assert_eq!(
            cidr("::1/x").unwrap_err(),
            "the prefix length `x` must be a number from 0 to 128"
        );
        assert_eq!(
            cidr("localhost/8").unwrap_err(),
            "`localhost` is not an IPv4 or IPv6 address"
        );
        assert!(cidr("").is_err());
        assert!(cidr("10.0.0.0/8/8").is_err());
    }

    #[test]
    fn trusted_peers_default_to_loopback_and_bad_entries_are_located() {
        let base = "[daemon]\ndata_dir = \"/tmp/x\"\n";
        let group = "[[group]]\nname = \"lan\"\n[[target]]\nname = \"a\"\ngroup = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n";
        let c = crate::config::parse(&format!("{base}{group}"), "t.toml").unwrap();
        let shown: Vec<String> = c
            .daemon
            .trusted_peers
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128"]);
        let c =
            crate::config::parse(&format!("{base}trusted_peers = []\n{group}"), "t.toml").unwrap();
        assert!(c.daemon.trusted_peers.is_empty());
        let text = format!(
            "{base}trusted_peers = [\"10.0.0.0/8\", \"10.1.2.3/16\", 5, \"nope\"]\n{group}"
        );
        let errors = crate::config::parse(&text, "t.toml").unwrap_err();
        let got: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "t.toml:3:32: key `daemon.trusted_peers[1]`: `trusted_peers` entry (10.1.2.3/16) is not an address block: the address has bits set past the prefix; write `10.1.0.0/16` for the block, or `10.1.2.3/32` for that one address",
                "t.toml:3:47: key `daemon.trusted_peers[2]`: expected an address block string such as \"10.0.0.0/8\", found integer `5`",
                "t.toml:3:50: key `daemon.trusted_peers[3]`: `trusted_peers` entry (nope) is not an address block: `nope` is not an IPv4 or IPv6 address",
            ]
        );
        let errors = crate::config::parse(
            &format!("{base}trusted_peers = \"127.0.0.1\"\n{group}"),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(
            errors.to_string(),
            "t.toml:3:17: key `daemon.trusted_peers`: expected an array of address blocks such as [\"127.0.0.0/8\", \"::1/128\"], found string `\"127.0.0.1\"`"
        );
    }

    #[test]
    fn interval_bounds() {
        assert!(!interval_in_range(Duration::ZERO));
        assert!(!interval_in_range(Duration::from_millis(99)));
        assert!(interval_in_range(Duration::from_millis(100)));
        assert!(interval_in_range(Duration::from_secs(86_400)));
        assert!(!interval_in_range(Duration::from_secs(86_401)));
    }

    #[test]
    fn timeout_bounds() {
        assert!(timeout_in_range(Duration::from_nanos(1), "1ns").is_err());
        assert!(timeout_in_range(Duration::from_millis(9), "9ms").is_err());
        assert!(timeout_in_range(Duration::from_millis(10), "10ms").is_ok());
        assert!(timeout_in_range(Duration::from_secs(60), "1m").is_ok());
        assert_eq!(
            timeout_in_range(Duration::from_secs(61), "61s"),
            Err("`timeout` (61s) is above the maximum of 1m".to_owned())
        );
        assert_eq!(
            timeout_in_range(Duration::from_nanos(1), "1ns"),
            Err("`timeout` (1ns) is below the minimum of 10ms".to_owned())
        );
    }

    #[test]
    fn listen_and_data_dir() {
        assert!(listen("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(listen("0.0.0.0:9898".parse().unwrap()).is_ok());
        assert!(listen("[::]:9898".parse().unwrap()).is_ok());
        assert!(listen("224.0.0.1:9898".parse().unwrap()).is_err());
        assert!(listen("[ff02::1]:9898".parse().unwrap()).is_err());
        assert!(listen("255.255.255.255:9898".parse().unwrap()).is_err());
        assert!(
            listen("[fe80::1]:9898".parse().unwrap())
                .unwrap_err()
                .contains("[fe80::1%2]:9898")
        );
        assert!(listen("[fe80::1%2]:9898".parse().unwrap()).is_ok());
        assert!(data_dir("/var/lib/linkwatch").is_ok());
        assert!(data_dir("/a\0b").unwrap_err().contains("NUL"));
        assert!(data_dir("data").unwrap_err().contains("absolute"));
        assert!(data_dir("~/data").is_err());
        assert!(data_dir(&format!("/{}", "a".repeat(256))).is_err());
        assert!(data_dir(&format!("/{}", "a".repeat(255))).is_ok());
        assert!(data_dir(&"/abc".repeat(1024)).is_err());
    }

    #[test]
    fn http_urls() {
        let ok = |s: &str| http_url(&url::Url::parse(s).unwrap());
        assert!(ok("https://example.com/x?y=1").is_ok());
        assert!(ok("http://[::1]:8080/").is_ok());
        assert!(ok("http://example.com:0/").unwrap_err().contains("port 0"));
        assert!(ok("http://a_b.example/").unwrap_err().contains("a_b"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host("@gateway"), Ok(Host::Gateway));
        assert_eq!(
            host("192.0.2.1"),
            Ok(Host::Ip("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            host("2001:db8::1"),
            Ok(Host::Ip("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(host("example.com"), Ok(Host::Name("example.com".into())));
        assert_eq!(host("example.com."), Ok(Host::Name("example.com.".into())));
        assert_eq!(host("localhost"), Ok(Host::Name("localhost".into())));
        assert_eq!(host("a-b.c0"), Ok(Host::Name("a-b.c0".into())));
        for bad in [
            "",
            "exa mple.com",
            "a..b",
            ".a",
            "-a.com",
            "a-.com",
            "under_score.com",
            "1.2.3",
            "256.1.1.1",
            "[::1]",
            "@router",
            "http://example.com",
            "example.com:80",
            "fe80::1%eth0",
            "2001:db8::g",
            "..",
            ".",
        ] {
            assert!(host(bad).is_err(), "{bad:?} accepted");
        }
        let long_label = "a".repeat(64);
        assert!(
            host(&format!("{long_label}.com"))
                .unwrap_err()
                .contains("63")
        );
        let ok_label = "a".repeat(63);
        assert!(host(&format!("{ok_label}.com")).is_ok());
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert_eq!(long_name.len(), 259);
        assert!(host(&long_name).unwrap_err().contains("253"));
    }

    #[test]
    fn query_names() {
        assert!(dns_name("_dmarc.example.com", false).is_ok());
        assert!(dns_name(".", false).is_ok());
        assert!(dns_name("1.0.0.127.in-addr.arpa", false).is_ok());
        assert!(dns_name("a b", false).is_err());
        assert!(dns_name("a..b", false).is_err());
    }

    #[test]
    fn dns_servers() {
        let addr = |h: &str, port| (host(h).unwrap(), port);
        assert_eq!(dns_server_addr("1.1.1.1", 53), Ok(addr("1.1.1.1", 53)));
        assert_eq!(
            dns_server_addr("1.1.1.1:5353", 53),
            Ok(addr("1.1.1.1", 5353))
        );
        assert_eq!(
            dns_server_addr("2606:4700::1111", 853),
            Ok(addr("2606:4700::1111", 853))
        );
        assert_eq!(
            dns_server_addr("[2606:4700::1111]", 53),
            Ok(addr("2606:4700::1111", 53))
        );
        assert_eq!(dns_server_addr("[::1]:5353", 53), Ok(addr("::1", 5353)));
        assert_eq!(
            dns_server_addr("dns.google", 853),
            Ok(addr("dns.google", 853))
        );
        assert_eq!(
            dns_server_addr("dns.google:8853", 853),
            Ok(addr("dns.google", 8853))
        );
        assert_eq!(dns_server_addr("@gateway", 53), Ok((Host::Gateway, 53)));
        assert!(dns_server_addr("1.1.1.1:0", 53).is_err());
        assert!(
            dns_server_addr("dns.google:70000", 53)
                .unwrap_err()
                .contains("1..=65535")
        );
        assert!(dns_server_addr("dns.google:x", 53).is_err());
        assert!(dns_server_addr("[nope]", 53).is_err());
        assert!(
            dns_server_addr("https://dns.google/dns-query", 53)
                .unwrap_err()
                .contains("https")
        );
    }

    #[test]
    fn cycles() {
        assert!(needs_cycles(&[]).is_empty());
        // lan <- isp <- internet: a chain, no cycle.
        assert!(needs_cycles(&[None, Some(0), Some(1)]).is_empty());
        // Self loop.
        assert_eq!(needs_cycles(&[Some(0)]), vec![vec![0]]);
        // 0 -> 1 -> 2 -> 1: the cycle is 1 -> 2 -> 1 and 0 only leads into it.
        assert_eq!(needs_cycles(&[Some(1), Some(2), Some(1)]), vec![vec![1, 2]]);
        // Entered at 2 first? No: starts at lowest index; rotated to lowest member.
        assert_eq!(
            needs_cycles(&[None, Some(2), Some(3), Some(1)]),
            vec![vec![1, 2, 3]]
        );
        assert_eq!(
            needs_cycles(&[Some(3), Some(2), Some(1), Some(0)]),
            vec![vec![0, 3], vec![1, 2]]
        );
        // A needs pointing outside the list is ignored.
        assert!(needs_cycles(&[Some(7)]).is_empty());
    }
}
