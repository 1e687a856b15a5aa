//! Pure value rules used by the config walker: durations, hosts, DNS names,
//! DNS server addresses and the `needs` graph. Each returns the reason a value
//! is wrong as prose; the walker adds file, line, column and key.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::error::{is_unprintable, shown};
use super::net::{Cidr, Host};

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

/// Duration units `duration` accepts, longest spelling first within each
/// unit, with their length in nanoseconds. Months and years are left out on
/// purpose: their length varies, and `1M` next to `1m` is a trap.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("nsec", 1),
    ("ns", 1),
    ("usec", 1_000),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("msec", 1_000_000),
    ("ms", 1_000_000),
    ("seconds", 1_000_000_000),
    ("second", 1_000_000_000),
    ("secs", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("s", 1_000_000_000),
    ("minutes", 60_000_000_000),
    ("minute", 60_000_000_000),
    ("mins", 60_000_000_000),
    ("min", 60_000_000_000),
    ("m", 60_000_000_000),
    ("hours", 3_600_000_000_000),
    ("hour", 3_600_000_000_000),
    ("hrs", 3_600_000_000_000),
    ("hr", 3_600_000_000_000),
    ("h", 3_600_000_000_000),
    ("days", 86_400_000_000_000),
    ("day", 86_400_000_000_000),
    ("d", 86_400_000_000_000),
    ("weeks", 604_800_000_000_000),
    ("week", 604_800_000_000_000),
    ("w", 604_800_000_000_000),
];

/// The units as the README lists them, for messages.
pub(crate) const DURATION_UNITS_SHOWN: &str = "ns, us, ms, s, m, h, d, w";

/// Parses a duration: one or more `<number><unit>` parts written together,
/// largest unit first, each unit once (`500ms`, `5s`, `1m30s`, `1h30m`).
/// Nothing else is accepted: no space, tab or other whitespace anywhere (so
/// `1 5s` is not silently 15s), no sign, no fraction, no bare number. The
/// error is the reason, without the value (the caller shows it).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_whitespace() || is_unprintable(*c))
    {
        let what = match c {
            ' ' => "a space".to_owned(),
            _ => char_name(c),
        };
        return Err(format!(
            "it contains {what}; a duration is written without spaces"
        ));
    }
    let mut total: u128 = 0;
    let mut last_unit: Option<(u128, &str)> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            let c = rest.chars().next().unwrap_or_default();
            return Err(if last_unit.is_none() {
                format!("it must start with a number, not `{c}`")
            } else {
                format!("expected a number after the unit, found `{c}`")
            });
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .len();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "the number {} has no unit (units: {DURATION_UNITS_SHOWN})",
                shown(number)
            ));
        }
        if unit.starts_with(['.', ',']) {
            return Err(
                "fractions are not accepted; write smaller units, e.g. \"1s500ms\"".to_owned(),
            );
        }
        if ["M", "month", "months", "y", "year", "years"].contains(&unit) {
            return Err(format!(
                "unit `{unit}` is not accepted (months and years vary in length); \
                 use one of {DURATION_UNITS_SHOWN}"
            ));
        }
        let Some(&(_, nanos)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "unknown unit `{}`; use one of {DURATION_UNITS_SHOWN}",
                shown(unit)
            ));
        };
        if let Some((prev, prev_name)) = last_unit
            && nanos >= prev
        {
            return Err(format!(
                "`{unit}` follows `{prev_name}`; write each unit once, largest first, \
                     e.g. \"1h30m\""
            ));
        }
        let n: u128 = number
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        total = n
            .checked_mul(nanos)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| "it is too large".to_owned())?;
        last_unit = Some((nanos, unit));
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "it is too large".to_owned())?;
    // The remainder is below 10^9, so it fits.
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// `U+0009 (tab)`-style name of a character that does not show as itself.
fn char_name(c: char) -> String {
    let name = match c {
        ' ' => " (space)",
        '\t' => " (tab)",
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\u{a0}' => " (no-break space)",
        '\u{85}' => " (next line)",
        '\u{2028}' => " (line separator)",
        '\u{2029}' => " (paragraph separator)",
        '\u{feff}' => " (byte order mark)",
        '\u{200b}' => " (zero-width space)",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

/// Formats a duration the way `duration` reads them (`2s`, `500ms`,
/// `1m30s`): largest unit first, without spaces.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = d.as_nanos();
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000_000_000u128),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let n = nanos / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            nanos %= size;
        }
    }
    out
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

/// Checks a URL as written, before it is parsed: no control character
/// (CR, LF, tab, NUL, DEL, C1), no invisible one and no whitespace anywhere.
/// The URL parser drops tabs and line breaks and trims the ends without a
/// word, so `https://exa\r\nmple.org/` would be probed as
/// `https://example.org/`; a URL never holds such characters (a space in a
/// path is written `%20`).
pub(crate) fn url_text(text: &str) -> Result<(), String> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_whitespace() || is_unprintable(*c))
    {
        None => Ok(()),
        Some((i, c)) => Err(format!(
            "it contains {} at character {}; a URL cannot hold control characters, \
             invisible characters or whitespace (write a space in a path or query as %20)",
            char_name(c),
            i + 1
        )),
    }
}

/// Checks what a probe takes from an http(s) URL: a host that is a valid DNS
/// name (or an IP address), a port other than 0, and a request target
/// (path and query) that HTTP/1.1 can send.
pub(crate) fn http_url(url: &url::Url) -> Result<(), String> {
    match url.host() {
        None => return Err("it has no host".to_owned()),
        Some(url::Host::Domain(d)) => dns_name(d, true).map_err(|reason| {
            format!("its host `{}` is not a valid DNS name: {reason}", shown(d))
        })?,
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
                "label `{}` is {} characters long; at most 63 are allowed",
                shown(label),
                label.len()
            ));
        }
        if hostname {
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(format!(
                    "label `{}` contains {c:?}; only letters, digits and `-` are allowed",
                    shown(label)
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("label `{}` starts or ends with `-`", shown(label)));
            }
        } else if let Some(c) = label.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("label `{}` contains {c:?}", shown(label)));
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
            .map_err(|_| format!("`{inner}` is not an IPv6 address", inner = shown(inner)))?;
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
        Err(_) => Err(format!("port `{text}` is not a number", text = shown(text))),
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
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(duration("1ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert_eq!(duration("5sec"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1hour"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration(""), Err("it is empty".to_owned()));
    }

    #[test]
    fn durations_reject_inner_spaces_and_odd_characters() {
        // `1 5s` was read as 15s; `1h 30m` is written `1h30m`.
        for text in ["1 5s", "1h 30m", " 5s", "5s ", " "] {
            let e = duration(text).unwrap_err();
            assert!(e.contains("a space"), "{text:?}: {e}");
        }
        for (text, name) in [
            ("1m\t30s", "U+0009 (tab)"),
            ("1m\u{a0}30s", "U+00A0 (no-break space)"),
            ("1m\u{2028}30s", "U+2028 (line separator)"),
            ("1m\u{85}30s", "U+0085 (next line)"),
            ("5s\n", "U+000A (line feed)"),
            ("5s\r", "U+000D (carriage return)"),
            ("5\u{200b}s", "U+200B (zero-width space)"),
            ("5s\0", "U+0000"),
        ] {
            let e = duration(text).unwrap_err();
            assert!(e.contains(name), "{text:?}: {e}");
        }
    }

    #[test]
    fn durations_are_number_unit_pairs_largest_first() {
        assert!(duration("0").unwrap_err().contains("has no unit"));
        assert!(duration("5").unwrap_err().contains("has no unit"));
        assert!(duration("1m30").unwrap_err().contains("has no unit"));
        assert!(
            duration("fast")
                .unwrap_err()
                .contains("start with a number")
        );
        assert!(duration("-5s").unwrap_err().contains("start with a number"));
        assert!(duration("+5s").unwrap_err().contains("start with a number"));
        assert!(duration("1.5s").unwrap_err().contains("fractions"));
        assert!(
            duration("5parsecs")
                .unwrap_err()
                .contains("unknown unit `parsecs`")
        );
        assert!(duration("5S").unwrap_err().contains("unknown unit `S`"));
        assert!(duration("1M").unwrap_err().contains("months and years"));
        assert!(duration("1y").unwrap_err().contains("months and years"));
        assert!(duration("30s1m").unwrap_err().contains("largest first"));
        assert!(duration("1s5s").unwrap_err().contains("largest first"));
        assert!(duration("99999999999999999999999999999999999999999s").is_err());
        assert!(
            duration("18446744073709551616s")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        let long = format!("5{}", "x".repeat(10_000));
        assert!(duration(&long).unwrap_err().chars().count() < 300);
    }

    #[test]
    fn formatted_durations_read_back() {
        assert_eq!(format_duration(Duration::from_millis(2500)), "2s500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for d in [
            Duration::from_nanos(1),
            Duration::from_nanos(86_400_000_000_001),
            Duration::from_millis(100),
            Duration::from_secs(3_723),
        ] {
            assert_eq!(duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn urls_with_control_characters_or_whitespace_are_refused() {
        assert_eq!(url_text("https://example.org/a%20b?q=1#x"), Ok(()));
        for (text, name) in [
            (
                "https://exa\r\nmple.org/",
                "U+000D (carriage return) at character 12",
            ),
            (
                "https://example.org/\n",
                "U+000A (line feed) at character 21",
            ),
            ("https://example.org/\ta", "U+0009 (tab)"),
            ("https://example.org/a\u{1}b", "U+0001 at character 22"),
            ("https://example.org/\u{7f}", "U+007F"),
            ("https://example.org/\u{85}", "U+0085 (next line)"),
            ("https://example.org/\u{2028}", "U+2028 (line separator)"),
            ("https://example.org/\u{202e}", "U+202E"),
            (" https://example.org/", "U+0020 (space) at character 1"),
            ("https://example.org/a b", "U+0020"),
        ] {
            let e = url_text(text).unwrap_err();
            assert!(e.contains(name), "{text:?}: {e}");
        }
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
