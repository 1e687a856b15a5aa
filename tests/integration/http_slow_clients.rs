//! Slow HTTP clients from one peer must not keep scrapes and health checks
//! from another out (issue 14, item 10). A field test found that about 13 new
//! slow connections a second held the daemon's 64 connection slots and kept
//! 88 % of scrapes out. Here one peer (127.0.0.3) opens slow connections at
//! that rate for ten seconds — half send nothing, half trickle one header byte
//! a second — while another (127.0.0.2) scrapes `/metrics` and `/healthz`
//! ten times a second; at least 99 % of the scrapes must succeed, and the
//! rejected connections must be counted and logged.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::daemon::{Daemon, sample};
use socket2::{Domain, Protocol, Socket, Type};

const SLOW_PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const SCRAPER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// 13 new slow connections a second.
const SLOW_EVERY: Duration = Duration::from_nanos(1_000_000_000 / 13);
const ATTACK: Duration = Duration::from_secs(10);
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// How long a scrape may take before it counts as failed (a Prometheus
/// scrape_timeout is 10 s by default; health checks are often 1-2 s).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SocketAddr::new(src.into(), 0).into())?;
    s.connect_timeout(&dst.into(), SCRAPE_TIMEOUT)?;
    Ok(s.into())
}

/// One GET from `src`; `Err` says why it failed.
fn scrape(src: Ipv4Addr, dst: SocketAddr, path: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut s = connect_from(src, dst).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(SCRAPE_TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {dst}\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    if started.elapsed() > SCRAPE_TIMEOUT {
        return Err(format!("took {:?}", started.elapsed()));
    }
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else if head.is_empty() {
        Err("closed without an answer".into())
    } else {
        Err(format!("answered {head:?}"))
    }
}

/// Opens slow connections from [`SLOW_PEER`] at [`SLOW_EVERY`] for
/// [`ATTACK`]; odd ones trickle a header byte a second. Returns how many
/// were opened.
fn slow_clients(dst: SocketAddr) -> usize {
    const HEAD: &[u8] =
        b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let start = Instant::now();
    let mut silent = Vec::new();
    let mut trickling: Vec<(TcpStream, usize)> = Vec::new();
    let mut opened = 0usize;
    let mut next_trickle = start + Duration::from_secs(1);
    let mut next_connect = start;
    while start.elapsed() < ATTACK {
        if let Ok(s) = connect_from(SLOW_PEER, dst) {
            if opened.is_multiple_of(2) {
                silent.push(s);
            } else {
                s.set_nonblocking(true).unwrap();
                trickling.push((s, 0));
            }
            opened += 1;
        }
        if Instant::now() >= next_trickle {
            next_trickle += Duration::from_secs(1);
            // Connections the server closed fail here and are dropped.
            trickling.retain_mut(|(s, sent)| {
                let ok = matches!(s.write(&HEAD[*sent % HEAD.len()..][..1]), Ok(1));
                *sent += 1;
                ok
            });
        }
        next_connect += SLOW_EVERY;
        std::thread::sleep(next_connect.saturating_duration_since(Instant::now()));
    }
    opened
}

#[test]
fn scrapes_and_health_checks_get_through_slow_clients_from_another_peer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut d = Daemon::start(&format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"

[[group]]
name = "lan"

[[target]]
name = "closed-tcp"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = {port}
"#
    ));
    let addr = d.addr;

    let attack = std::thread::spawn(move || slow_clients(addr));
    let start = Instant::now();
    let mut ok = 0usize;
    let mut failures = Vec::new();
    let mut n = 0usize;
    while start.elapsed() < ATTACK {
        let path = if n.is_multiple_of(2) {
            "/metrics"
        } else {
            "/healthz"
        };
        n += 1;
        let at = start.elapsed();
        match scrape(SCRAPER, addr, path) {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("{at:.1?} {path}: {e}")),
        }
        std::thread::sleep(SCRAPE_EVERY);
    }
    let opened = attack.join().unwrap();
    let share = ok as f64 / n as f64;
    eprintln!(
        "slow connections opened: {opened}; scrapes: {ok}/{n} succeeded ({:.1} %)",
        share * 100.0
    );
    for f in failures.iter().take(10) {
        eprintln!("  failed: {f}");
    }
    assert!(opened >= 100, "only {opened} slow connections were opened");
    assert!(
        share >= 0.99,
        "{ok} of {n} scrapes succeeded under slow clients from another peer"
    );

    // The rejected ones were counted and logged.
    let body = d.metrics();
    let per_peer = sample(
        &body,
        "linkwatch_http_connections_rejected_total",
        &[("reason", "per_peer")],
    )
    .unwrap_or(0.0);
    eprintln!("rejected per peer: {per_peer}");
    assert!(per_peer >= 1.0, "no per-peer rejection counted:\n{body}");
    assert!(
        sample(
            &body,
            "linkwatch_http_connections_rejected_total",
            &[("reason", "total_cap")],
        )
        .is_some(),
        "{body}"
    );
    // Logged at warn: the first rejection at once, the rest of the attack
    // in one more line once the 10 s period has passed, and no more.
    let warns = d.wait_for(Duration::from_secs(15), |d| {
        let warns: Vec<String> = d
            .log()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("HTTP connections rejected"))
            .map(str::to_string)
            .collect();
        (warns.len() >= 2).then_some(warns)
    });
    for w in &warns {
        eprintln!("  {w}");
    }
    assert_eq!(warns.len(), 2, "{warns:#?}");
    // At most one line per 10 s: the second comes once the period has passed
    // (later on a loaded machine, never earlier).
    let since_last: f64 = warns[1]
        .split("seconds_since_last_warning=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no seconds_since_last_warning in {warns:#?}"));
    assert!((10.0..15.0).contains(&since_last), "{warns:#?}");
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    // Slow clients do not hold the stop up: well inside the 5 s we wait (the
    // stop takes ~30 ms idle; a loaded CI machine has taken over 2 s).
    assert!(took < Duration::from_secs(4), "took {took:?} to stop");
}
