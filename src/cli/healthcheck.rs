//! `linkwatch healthcheck`: asks a running daemon's `/healthz` whether it is
//! healthy (exit 0) or not (exit 1). For container `HEALTHCHECK`s: the image
//! carries no curl or wget, and this needs nothing but the binary itself.
//!
//! A plain HTTP/1.0 GET over a blocking socket with one deadline for the whole
//! exchange; no TLS (the daemon's listener is plain HTTP).
#![allow(
    clippy::disallowed_types,
    reason = "a blocking one-shot client with no tokio runtime: std's Instant is the clock here"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::output::errln;

/// Largest response head read; `/healthz` answers with a few bytes.
const MAX_RESPONSE: u64 = 64 * 1024;

pub(super) fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    let (addr, host, path) = match parse(url) {
        Ok(p) => p,
        Err(e) => {
            errln!("linkwatch healthcheck: {e:#}");
            return ExitCode::from(2);
        }
    };
    match get(addr, &host, &path, timeout) {
        Ok((200, _)) => ExitCode::SUCCESS,
        Ok((status, body)) => {
            errln!(
                "linkwatch healthcheck: {url} answered {status}: {}",
                body.trim()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            errln!("linkwatch healthcheck: {url}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Splits an `http://host:port/path` URL into a socket address, the Host
/// header and the request path.
fn parse(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let u = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    if u.scheme() != "http" {
        bail!("only http:// URLs are supported, got {url:?}");
    }
    let host = u
        .host_str()
        .with_context(|| format!("URL {url:?} has no host"))?
        .to_owned();
    let port = u.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bare, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((addr, format!("{host}:{port}"), path))
}

fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .context("timed out")
    };
    let mut s = TcpStream::connect_timeout(&addr, left()?).context("connect")?;
    s.set_write_timeout(Some(left()?)).context("set timeout")?;
    // One write: the request goes out in a single segment.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).context("send request")?;
    let mut buf = Vec::new();
    let mut limited = (&mut s).take(MAX_RESPONSE);
    let mut chunk = [0u8; 4096];
    loop {
        limited
            .get_mut()
            .set_read_timeout(Some(left()?))
            .context("set timeout")?;
        match limited.read(&mut chunk).context("read response")? {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP response: {:?}", head.lines().next()))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                // Read the whole request head before answering.
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let _ = s.write_all(answer.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn ok_and_unhealthy_answers_and_refusals() {
        let a = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        let (st, body) = get(a, "x", "/healthz", Duration::from_secs(5)).unwrap();
        assert_eq!((st, body.as_str()), (200, "ok\n"));
        let a = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\nscheduler stopped\n");
        assert_eq!(
            get(a, "x", "/healthz", Duration::from_secs(5)).unwrap().0,
            503
        );
        // A closed port: an error, not a hang.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(get(closed, "x", "/", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let t = Instant::now();
        let e = get(a, "x", "/healthz", Duration::from_millis(300)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{e:#}");
        drop(l);
    }

    #[test]
    fn urls() {
        let (a, h, p) = parse("http://127.0.0.1:9898/healthz").unwrap();
        assert_eq!(
            (a.to_string(), h.as_str(), p.as_str()),
            ("127.0.0.1:9898".into(), "127.0.0.1:9898", "/healthz")
        );
        let (a, _, _) = parse("http://[::1]:9/healthz").unwrap();
        assert_eq!(a.to_string(), "[::1]:9");
        assert!(parse("https://127.0.0.1/healthz").is_err());
        assert!(parse("not a url").is_err());
    }
}
