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

fn connect_from(src: Ipv4Addr, dst: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SocketAddr::new(src.into(), 0).into())?;
    s.connect_timeout(&dst.into(), timeout)?;
    Ok(s.into())
}

/// One GET from `src` that answers 200 within `timeout`; `Err` says why it failed.
fn scrape(src: Ipv4Addr, dst: SocketAddr, path: &str, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut s = connect_from(src, dst, timeout).map_err(|e| format!("connect: {e}"))?;
    let left = || {
        timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left())).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {dst}\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    s.set_read_timeout(Some(left())).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    if started.elapsed() > timeout {
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
        if let Ok(s) = connect_from(SLOW_PEER, dst, SCRAPE_TIMEOUT) {
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
# Nobody trusted: both peers share the one pool of connections.
trusted_peers = []

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
        match scrape(SCRAPER, addr, path, SCRAPE_TIMEOUT) {
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

/// Attacking addresses of the flood: 127.0.0.10 to 127.0.0.49.
const FLOOD_PEERS: std::ops::RangeInclusive<u8> = 10..=49;
/// The flood's length.
const FLOOD: Duration = Duration::from_secs(10);
/// Connections each attacker tries to hold (over the per-peer cap of 16:
/// 40 of them would hold 640 slots, the total cap is 256).
const FLOOD_HOLD: usize = 20;
/// Threads opening the flood's connections, each at most one connect every
/// [`FLOOD_PACE`] (2000 a second in all: bounded load on a 2-core machine).
const FLOOD_THREADS: usize = 4;
const FLOOD_PACE: Duration = Duration::from_micros(2_000);
/// A trusted scrape counts only when answered within this.
const TRUSTED_SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// Holds up to [`FLOOD_HOLD`] connections from each of `peers` until
/// `until`: half silent, half trickling a header byte a second, reopened as
/// soon as the server closes them. Returns how many were opened.
fn flood(peers: Vec<Ipv4Addr>, dst: SocketAddr, until: Instant) -> usize {
    const HEAD: &[u8] =
        b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut held: Vec<Vec<(TcpStream, Option<usize>)>> = peers.iter().map(|_| Vec::new()).collect();
    let mut opened = 0usize;
    let mut next = 0usize;
    let mut next_connect = Instant::now();
    let mut next_check = next_connect;
    let mut next_trickle = next_connect + Duration::from_secs(1);
    while Instant::now() < until {
        // One connect for the next attacker below its share.
        if let Some(i) = (0..peers.len())
            .map(|k| (next + k) % peers.len())
            .find(|&i| held[i].len() < FLOOD_HOLD)
        {
            next = i + 1;
            if let Ok(s) = connect_from(peers[i], dst, Duration::from_millis(200)) {
                s.set_nonblocking(true).unwrap();
                let trickle = opened.is_multiple_of(2).then_some(0);
                held[i].push((s, trickle));
                opened += 1;
            }
        }
        let now = Instant::now();
        if now >= next_check {
            // Drop what the server closed (EOF or reset), every 50 ms.
            next_check = now + Duration::from_millis(50);
            let mut byte = [0u8; 1];
            for conns in &mut held {
                conns.retain_mut(|(s, _)| {
                    matches!(s.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
            }
        }
        if now >= next_trickle {
            next_trickle += Duration::from_secs(1);
            for conns in &mut held {
                conns.retain_mut(|(s, trickle)| match trickle {
                    Some(sent) => {
                        let ok = matches!(s.write(&HEAD[*sent % HEAD.len()..][..1]), Ok(1));
                        *sent += 1;
                        ok
                    }
                    None => true,
                });
            }
        }
        next_connect += FLOOD_PACE;
        std::thread::sleep(next_connect.saturating_duration_since(Instant::now()));
    }
    opened
}

/// Issue 19, item 8: a connection flood from 40 addresses (more than the
/// total cap of 256 connections can hold at 16 each) must not keep scrapes
/// from a trusted address out: at least 95 % of them are answered within
/// 1 s. On main (no `trusted_peers`, one pool of 256) about 7 in 20 were,
/// with 16 attackers.
#[test]
fn trusted_scrapes_are_served_through_a_flood_from_40_addresses() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut d = Daemon::start(&format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"
trusted_peers = ["{SCRAPER}/32"]

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
    let peers: Vec<Ipv4Addr> = FLOOD_PEERS.map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
    let until = Instant::now() + FLOOD;
    let attackers: Vec<_> = (0..FLOOD_THREADS)
        .map(|k| {
            let mine: Vec<Ipv4Addr> = peers
                .iter()
                .copied()
                .skip(k)
                .step_by(FLOOD_THREADS)
                .collect();
            std::thread::spawn(move || flood(mine, addr, until))
        })
        .collect();
    // Let the flood fill the slots first.
    std::thread::sleep(Duration::from_secs(1));
    let mut ok = 0usize;
    let mut n = 0usize;
    let mut failures = Vec::new();
    let start = Instant::now();
    while Instant::now() + TRUSTED_SCRAPE_TIMEOUT < until {
        let path = if n.is_multiple_of(2) {
            "/metrics"
        } else {
            "/healthz"
        };
        n += 1;
        let at = start.elapsed();
        match scrape(SCRAPER, addr, path, TRUSTED_SCRAPE_TIMEOUT) {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("{at:.1?} {path}: {e}")),
        }
        std::thread::sleep(SCRAPE_EVERY);
    }
    let opened: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    let share = ok as f64 / n as f64;
    eprintln!(
        "flood from {} addresses: {opened} connections opened; trusted scrapes: {ok}/{n} answered within {TRUSTED_SCRAPE_TIMEOUT:?} ({:.1} %)",
        peers.len(),
        share * 100.0
    );
    for f in failures.iter().take(10) {
        eprintln!("  failed: {f}");
    }
    // From the trusted address: the flood's slots may not all be free yet.
    let body = request_from(SCRAPER, addr, "GET", "/metrics");
    for reason in ["total_cap", "per_peer"] {
        let v = sample(
            &body,
            "linkwatch_http_connections_rejected_total",
            &[("reason", reason)],
        );
        eprintln!("rejected {reason}: {v:?}");
    }
    assert!(
        opened >= 1000,
        "only {opened} flood connections were opened"
    );
    assert!(n >= 40, "only {n} scrapes were tried");
    assert!(
        share >= 0.95,
        "{ok} of {n} trusted scrapes were answered within {TRUSTED_SCRAPE_TIMEOUT:?} under the flood"
    );
    // The flood filled the untrusted slots: it was turned away, counted.
    let total_cap = sample(
        &body,
        "linkwatch_http_connections_rejected_total",
        &[("reason", "total_cap")],
    )
    .unwrap_or(0.0);
    assert!(
        total_cap >= 1.0,
        "the flood never reached the total cap:\n{body}"
    );
    // Its silent and trickling connections were closed by the header read
    // timeout, and counted.
    let timed_out = sample(
        &body,
        "linkwatch_http_connections_timed_out_total",
        &[("reason", "no_request")],
    )
    .unwrap_or(0.0);
    eprintln!("timed out without a request: {timed_out}");
    assert!(timed_out >= 256.0, "{body}");
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
}

/// How long the server takes to close `s` (EOF or reset), reading with
/// `limit`; `None` if it stays open that long. Calls `tick` every 300 ms
/// (to trickle bytes) until then.
fn closed_after(
    s: &mut TcpStream,
    limit: Duration,
    mut tick: impl FnMut(&mut TcpStream),
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                tick(s)
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Every request head has the header read timeout (3 s): a connection that
/// never sends one, one that trickles it a byte at a time, and a kept-alive
/// one that sends no next request are all closed within a few seconds, and
/// counted by whether they had sent a request.
#[test]
fn silent_trickling_and_idle_connections_are_closed_and_counted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let d = Daemon::start(&format!(
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
    const LIMIT: Duration = Duration::from_secs(8);
    let silent = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        closed_after(&mut s, LIMIT, |_| {})
    });
    let trickling = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let head =
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let mut sent = 0usize;
        closed_after(&mut s, LIMIT, |s| {
            let _ = s.write(&head[sent % head.len()..][..1]);
            sent += 1;
        })
    });
    let idle = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b"\r\n\r\nok\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed before the answer: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        closed_after(&mut s, LIMIT, |_| {})
    });
    for (what, t) in [
        ("silent", silent),
        ("trickling", trickling),
        ("idle kept-alive", idle),
    ] {
        let took = t.join().unwrap();
        eprintln!("{what} connection closed after {took:?}");
        let took =
            took.unwrap_or_else(|| panic!("the {what} connection was still open after {LIMIT:?}"));
        // The 3 s timeout, not sooner, and not much later.
        assert!(
            (Duration::from_millis(2_500)..Duration::from_secs(6)).contains(&took),
            "the {what} connection was closed after {took:?}"
        );
    }
    let body = d.metrics();
    let count = |reason| {
        sample(
            &body,
            "linkwatch_http_connections_timed_out_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(count("no_request"), 2.0, "{body}");
    assert_eq!(count("idle"), 1.0, "{body}");
}

/// One HTTP/1.0 request from `src`; the whole answer.
fn request_from(src: Ipv4Addr, dst: SocketAddr, method: &str, path: &str) -> String {
    let mut s = connect_from(src, dst, SCRAPE_TIMEOUT).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// Opens 7 silent connections from each flood address (280: more than the
/// 256 untrusted slots) and waits until the server has taken them.
fn fill_untrusted_slots(dst: SocketAddr) -> Vec<TcpStream> {
    let held: Vec<TcpStream> = FLOOD_PEERS
        .flat_map(|i| (0..7).map(move |_| Ipv4Addr::new(127, 0, 0, i)))
        .filter_map(|src| connect_from(src, dst, SCRAPE_TIMEOUT).ok())
        .collect();
    assert_eq!(held.len(), 280);
    // Well inside the 3 s they may stay silent.
    std::thread::sleep(Duration::from_millis(300));
    held
}

/// A reload changes `trusted_peers` for new connections, without a restart.
#[test]
fn trusted_peers_change_on_reload() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = |trusted: &str| {
        format!(
            r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"
trusted_peers = ["{trusted}/32"]

[[group]]
name = "lan"

[[target]]
name = "closed-tcp"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = {port}
"#
        )
    };
    let (a, b) = (SCRAPER, Ipv4Addr::new(127, 0, 0, 3));
    let d = Daemon::start(&config(&a.to_string()));
    let addr = d.addr;
    let check = |trusted: Ipv4Addr, untrusted: Ipv4Addr| {
        let held = fill_untrusted_slots(addr);
        let t = scrape(trusted, addr, "/healthz", TRUSTED_SCRAPE_TIMEOUT);
        let u = scrape(untrusted, addr, "/healthz", TRUSTED_SCRAPE_TIMEOUT);
        drop(held);
        assert_eq!(t, Ok(()), "scrape from the trusted {trusted}");
        assert!(
            u.is_err(),
            "a scrape from the untrusted {untrusted} got a slot"
        );
    };
    check(a, b);

    let text = config(&b.to_string()).replace("{data_dir}", d.data_dir().to_str().unwrap());
    std::fs::write(d.dir.path().join("config.toml"), text).unwrap();
    // From the trusted address: the untrusted slots may not all be free yet.
    let answer = request_from(a, addr, "POST", "/-/reload");
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(!answer.contains("restart needed"), "{answer}");
    d.wait_for(Duration::from_secs(5), |d| {
        d.log()
            .lines()
            .any(|l| l.contains("HTTP trusted peers changed") && l.contains("127.0.0.3/32"))
            .then_some(())
    });
    // The slots of the first round are free once the server has seen them close.
    std::thread::sleep(Duration::from_millis(300));
    check(b, a);
}
