//! The light status page through the real daemon: 50 TCP targets with three
//! days of history written by the store's own writer; `/` stays under
//! 300 KB with a lazily loaded `<img>` per target, and `/chart/NAME.svg`
//! answers each chart with its cache lifetime, 404 for an unknown target,
//! 400 for a bad query, and names escaped (one target's name is odd).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use linkwatch::history::HistoryStore;
use linkwatch::probe::{Info, Observation, Outcome, ProbeResult};

use crate::harness::daemon::{BIN, Daemon};

const TARGETS: usize = 50;
const GROUPS: usize = 10;
/// A name with every character HTML and XML care about, a slash and a space.
const ODD: &str = "we<b> & \"co\"/x y";

fn name(i: usize) -> String {
    if i == 7 {
        ODD.to_string()
    } else {
        format!("tcp-{i:02}")
    }
}

/// Three days of minutes for every target (two probes a minute, one lost
/// in 50 on odd targets), flushed day by day as the daemon does.
fn seed(data_dir: &std::path::Path, now: Timestamp) {
    let start = now.as_second() / 60 * 60 - 3 * 86_400;
    let names = (0..TARGETS).map(|i| (name(i), false)).collect();
    let store =
        HistoryStore::open_at(data_dir, names, Timestamp::from_second(start).unwrap()).unwrap();
    let end = now.as_second() - 120;
    let mut t = start;
    let mut day = start / 86_400;
    while t < end {
        for i in 0..TARGETS {
            for k in 0..2i64 {
                let lost = i % 2 == 1 && (t / 60 + k) % 50 == 0;
                let outcome = if lost {
                    Outcome::Timeout { phase: None }
                } else {
                    let us = 200 + (i as u64 * 37 + (t as u64 / 60) % 97) * 3;
                    Outcome::Success {
                        duration: Duration::from_micros(us),
                        phases: Default::default(),
                    }
                };
                store.record(&ProbeResult {
                    target: i,
                    at: Timestamp::from_second(t + k * 30).unwrap(),
                    mono: tokio::time::Instant::now(),
                    lateness: Duration::ZERO,
                    observation: Observation {
                        outcome,
                        info: Info::default(),
                    },
                });
            }
        }
        t += 60;
        if t / 86_400 != day {
            store
                .flush(Timestamp::from_second(t - 1).unwrap(), true)
                .unwrap();
            day = t / 86_400;
        }
    }
    store
        .flush(Timestamp::from_second(end).unwrap(), true)
        .unwrap();
}

/// A GET's status, headers (lower-case names) and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn fifty_targets_page_is_light_and_charts_are_served_with_their_step() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data, Timestamp::now());

    let mut config = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[defaults]\ninterval = \"5s\"\ntimeout = \"1s\"\n",
        data.display()
    );
    for g in 0..GROUPS {
        config.push_str(&format!("\n[[group]]\nname = \"site-{g}\"\n"));
    }
    for i in 0..TARGETS {
        config.push_str(&format!(
            "\n[[target]]\nname = {:?}\ngroup = \"site-{}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n",
            name(i),
            i % GROUPS
        ));
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info,linkwatch::server::chart=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon::attach(child, tempfile::tempdir().unwrap());
    let addr = d.addr;

    for range in ["", "?range=24h", "?range=7d", "?range=30d"] {
        let (status, headers, html) = get(addr, &format!("/{range}"));
        assert_eq!(status, 200, "{html}");
        let csp = header(&headers, "content-security-policy").unwrap();
        assert!(
            csp.contains("img-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(
            html.len() <= 300_000,
            "/{range}: {} bytes of HTML",
            html.len()
        );
        println!("PAGE /{range}: {} bytes", html.len());
        assert_eq!(
            html.matches("<img class=\"chart\"").count(),
            TARGETS,
            "one chart per target"
        );
        assert_eq!(html.matches("loading=\"lazy\"").count(), TARGETS);
        assert!(!html.contains("<svg class=\"chart\""), "a chart inline");
        for g in 0..GROUPS {
            assert!(html.contains(&format!("data-group=\"site-{g}\" data-state=\"")));
        }
        assert!(
            html.contains(
                "alt=\"Latency and loss of we&lt;b&gt; &amp; &quot;co&quot;/x y over the last"
            ),
            "the odd name's alt text"
        );
        assert!(html.contains("<strong>we&lt;b&gt; &amp; &quot;co&quot;/x y</strong> tcp"));
    }
    let (_, _, html) = get(addr, "/?range=30d");
    assert!(
        html.contains(
            "src=\"/chart/we%3Cb%3E+%26+%22co%22%2Fx+y.svg?range=30d\" loading=\"lazy\" width=\"600\" height=\"150\""
        ),
        "the odd name's chart URL"
    );

    // Each chart: an SVG document with its title, cached for its step.
    for (range, step) in [
        ("1h", 60),
        ("3h", 60),
        ("24h", 300),
        ("7d", 3600),
        ("30d", 7200),
    ] {
        let (status, headers, svg) = get(addr, &format!("/chart/tcp-03.svg?range={range}"));
        assert_eq!(status, 200, "{svg}");
        assert_eq!(header(&headers, "content-type"), Some("image/svg+xml"));
        assert_eq!(
            header(&headers, "cache-control"),
            Some(format!("max-age={step}").as_str())
        );
        let csp = header(&headers, "content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("style-src 'sha256-"),
            "{csp}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(
            svg.contains(&format!(
                "<title>Latency of tcp-03 over the last {range}: median "
            )),
            "{svg}"
        );
        assert!(svg.contains("class=\"band\""), "{range}: no latency drawn");
        assert!(!svg.contains("href") && !svg.contains("url("), "{range}");
        assert!(svg.len() < 200_000, "{range}: {} bytes", svg.len());
    }
    // The odd name, escaped for XML, by the URL the page gives.
    let (status, _, svg) = get(addr, "/chart/we%3Cb%3E+%26+%22co%22%2Fx+y.svg?range=7d");
    assert_eq!(status, 200, "{svg}");
    assert!(
        svg.contains("<title>Latency of we&lt;b&gt; &amp; &quot;co&quot;/x y over the last 7d"),
        "{svg}"
    );
    assert!(svg.contains("class=\"band\""));

    // Refusals.
    for (path, want) in [
        ("/chart/nope.svg", 404),
        ("/chart/nope.svg?range=7d", 404),
        ("/chart/tcp-03.png", 404),
        ("/chart/tcp-03/x.svg", 404),
        ("/chart/.svg", 404),
        ("/chart/tcp-03.svg?range=2d", 400),
        ("/chart/tcp-03.svg?range=7d&extra=1", 400),
        ("/?range=2d", 400),
        ("/?group=nope", 404),
    ] {
        let (status, headers, body) = get(addr, path);
        assert_eq!(status, want, "{path}: {body}");
        assert_ne!(header(&headers, "content-type"), Some("image/svg+xml"));
    }

    // A group's list: only its targets.
    let (status, _, html) = get(addr, "/?group=site-3&range=7d");
    assert_eq!(status, 200);
    assert!(html.contains("data-view=\"group\""));
    assert_eq!(
        html.matches("<img class=\"chart\"").count(),
        TARGETS / GROUPS
    );

    // The charts read what they draw: one target, hourly steps for 7 days.
    let log = d.log();
    let served: Vec<&str> = log.lines().filter(|l| l.contains("chart served")).collect();
    assert!(
        served.iter().any(|l| l.contains("7d")
            && l.contains("tcp-03")
            && (l.contains("rows=168") || l.contains("rows=169"))),
        "{served:#?}"
    );
    d.terminate(Duration::from_secs(5));
}
