//! The calling side of `[[peer]]` on loopback: two real daemons with their
//! own ports and data directories calling each other (witnesses both ways,
//! a corroboration after an outage ends, `outages --verify --peer` on an
//! intact and on a consistently rewritten journal), and one daemon whose
//! peers answer with garbage, too much, too slowly or impossible figures:
//! every such call is counted by reason and nothing is journaled.
//!
//! The outage is made by stopping a TCP listener the test owns. The
//! namespace scenarios (a fake ISP, a cut international link) are in
//! `netns_peer*` (helper peer-netns).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::daemon::{BIN, Daemon, sample};

fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A free loopback port (bound, then released for the daemon to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP target the test can switch off (connections refused) and on again.
struct Switchable {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Switchable {
    fn new() -> Self {
        let mut s = Self {
            port: 0,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        s.serve(TcpListener::bind("127.0.0.1:0").unwrap());
        s
    }

    fn serve(&mut self, l: TcpListener) {
        self.port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        l.set_nonblocking(true).unwrap();
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = l.accept();
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }

    /// Closes the port: connects are refused.
    fn off(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn on(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.serve(l);
    }
}

impl Drop for Switchable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn site_config(listen: &str, site: &str, web_port: u16, peers: &str) -> String {
    format!(
        r#"
[daemon]
listen = "{listen}"
data_dir = "{{data_dir}}"
site = "{site}"
witness_every = "10s"
max_traces_per_minute = 0

[defaults]
interval = "300ms"
timeout = "250ms"
fail_after = 2
recover_after = 2

[[group]]
name = "intl"

[[target]]
name = "intl-web"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = {web_port}
{peers}"#
    )
}

fn peer_table(name: &str, url: Option<&str>, token: &Path) -> String {
    let url = url.map_or(String::new(), |u| format!("url = \"{u}\"\n"));
    format!(
        "\n[[peer]]\nname = \"{name}\"\n{url}token_file = \"{}\"\n",
        token.display()
    )
}

/// Every line of the journal in `data`, parsed.
fn journal(data: &Path) -> Vec<Value> {
    std::fs::read_to_string(data.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

fn run_cli(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("linkwatch {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Recomputes the hash chain of the journal in `data` after `edit` changed
/// the lines (as parsed JSON), and the chain heads the heartbeat and later
/// `daemon_start`s name: a forgery the chain check alone cannot tell. Lines
/// before the first edited one keep their bytes.
fn rewrite_consistently(data: &Path, edit: impl Fn(&mut Vec<Value>)) {
    let hex = linkwatch::journal::line_hash;
    let path = data.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: Vec<&str> = text.lines().collect();
    let before: Vec<Value> = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut lines = before.clone();
    edit(&mut lines);
    let mut renamed = std::collections::HashMap::new();
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for (i, line) in lines.iter_mut().enumerate() {
        let old_hash = hex(raw[i].as_bytes());
        if let Some(h) = line.get_mut("previous_head")
            && let Some(old) = h["hash"].as_str()
            && let Some(new) = renamed.get(old)
        {
            h["hash"] = Value::String(String::clone(new));
        }
        line["prev"] = Value::String(prev.clone());
        let bytes = if *line == before[i] {
            raw[i].to_string()
        } else {
            serde_json::to_string(line).unwrap()
        };
        let hash = hex(bytes.as_bytes());
        renamed.insert(old_hash, hash.clone());
        out.push_str(&bytes);
        out.push('\n');
        prev = hash;
    }
    std::fs::write(&path, out).unwrap();
    let hb_path = data.join("heartbeat");
    if let Ok(hb) = std::fs::read_to_string(&hb_path) {
        let mut hb: Value = serde_json::from_str(&hb).unwrap();
        if let Some(old) = hb["head"]["hash"].as_str()
            && let Some(new) = renamed.get(old)
        {
            hb["head"]["hash"] = Value::String(new.clone());
        }
        std::fs::write(&hb_path, serde_json::to_string(&hb).unwrap()).unwrap();
    }
}

#[test]
fn peer_client_two_daemons_witness_corroborate_and_verify() {
    let tokens = tempfile::tempdir().unwrap();
    let token = token_file(tokens.path(), "pair.token", "pair-token-0123456789abcdef");
    let mut home_web = Switchable::new();
    let vps_web = Switchable::new();
    let vps_port = free_port();
    let vps_url = format!("http://127.0.0.1:{vps_port}");
    let home = Daemon::start(&site_config(
        "127.0.0.1:0",
        "home",
        home_web.port,
        &peer_table("vps", Some(&vps_url), &token),
    ));
    let home_url = format!("http://{}", home.addr);
    let vps = Daemon::start(&site_config(
        &format!("127.0.0.1:{vps_port}"),
        "vps",
        vps_web.port,
        &peer_table("home", Some(&home_url), &token),
    ));

    // Witnesses both ways: each side holds a `witnessed` receipt of its own
    // head and a `witness` line of the other's.
    for (d, other) in [(&home, "vps"), (&vps, "home")] {
        d.wait_for(Duration::from_secs(20), |d| {
            let lines = journal(&d.data_dir());
            let ok = events(&lines, "witnessed")
                .iter()
                .any(|w| w["peer"] == other)
                && events(&lines, "witness").iter().any(|w| w["peer"] == other);
            ok.then_some(())
        });
    }
    let lines = journal(&home.data_dir());
    let w = events(&lines, "witnessed")[0];
    assert_eq!(w["receipt"]["site"], "vps", "{w}");
    assert_eq!(w["receipt"]["hash"].as_str().unwrap().len(), 64, "{w}");
    let calls = home.metrics();
    assert!(
        sample(
            &calls,
            "linkwatch_peer_calls_total",
            &[("peer", "vps"), ("endpoint", "witness"), ("result", "ok")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{calls}"
    );

    // An outage at home only: intl-web stops answering there, not at the vps.
    home.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "intl")]) == Some(1.0))
            .then_some(())
    });
    home_web.off();
    home.wait_for(Duration::from_secs(10), |d| {
        (!events(&journal(&d.data_dir()), "outage_start").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    home_web.on();
    let ended = Instant::now();
    let corroboration = home.wait_for(Duration::from_secs(30), |d| {
        let lines = journal(&d.data_dir());
        events(&lines, "corroboration")
            .first()
            .map(|c| (*c).clone())
    });
    let took = ended.elapsed();
    eprintln!("corroboration after {took:?}: {corroboration}");
    let outage_id = events(&journal(&home.data_dir()), "outage_end")[0]["id"].clone();
    assert_eq!(corroboration["peer"], "vps", "{corroboration}");
    assert_eq!(corroboration["period"], outage_id, "{corroboration}");
    assert_eq!(corroboration["kind"], "outage", "{corroboration}");
    assert_eq!(corroboration["targets"][0]["target"], "intl-web");
    assert_eq!(
        corroboration["targets"][0]["verdict"], "up",
        "{corroboration}"
    );
    assert!(
        corroboration["targets"][0]["probes"].as_u64().unwrap() > 0,
        "{corroboration}"
    );
    assert_eq!(corroboration["verdict"], "reachable_elsewhere");
    assert_eq!(
        corroboration["summary"],
        "the destinations answered from vps throughout: the fault lies between this site and the border"
    );
    assert!(
        took < Duration::from_secs(20),
        "corroboration took {took:?}"
    );
    // The outage's edges were witnessed at once (not 10 s later): a witness
    // line at the vps names a head at or after the outage's start.
    let start_seq = events(&journal(&home.data_dir()), "outage_start")[0]["seq"]
        .as_u64()
        .unwrap();
    vps.wait_for(Duration::from_secs(5), |d| {
        events(&journal(&d.data_dir()), "witness")
            .iter()
            .any(|w| {
                w["peer"] == "home" && w["head"]["seq"].as_u64().is_some_and(|s| s >= start_seq)
            })
            .then_some(())
    });

    // --verify --peer on the intact journal.
    let home_config = home.dir.path().join("config.toml");
    let cfg = home_config.to_str().unwrap();
    let ok = run_cli(&["outages", "--verify", "--peer", "vps", "--config", cfg]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("witnesses ok: "), "{text}");
    eprintln!("intact:\n{text}");

    // The home journal rewritten from its outage on, consistently: the
    // chain check passes, the witnesses do not; the first witnessed seq at
    // or after the rewritten line is named (those before it still match).
    let mut home = home;
    home.terminate(Duration::from_secs(5));
    let data = home.data_dir();
    let original = std::fs::read(data.join("journal.jsonl")).unwrap();
    let witnessed: Vec<u64> = {
        let mut v: Vec<u64> = events(&journal(&vps.data_dir()), "witness")
            .iter()
            .filter(|w| w["peer"] == "home")
            .filter_map(|w| w["head"]["seq"].as_u64())
            .collect();
        v.sort_unstable();
        v
    };
    let forged_seq = start_seq;
    let expected = *witnessed.iter().find(|s| **s >= forged_seq).unwrap();
    assert!(
        witnessed[0] < forged_seq,
        "a witness before the forgery is needed to show it still matches: {witnessed:?}"
    );
    rewrite_consistently(&data, |lines| {
        let l = lines
            .iter_mut()
            .find(|l| l["seq"].as_u64() == Some(forged_seq))
            .unwrap();
        // "It was the destination": the outage moved to another group.
        l["cause"] = Value::from("destination");
    });
    let chain_only = run_cli(&["outages", "--verify", "--config", cfg]);
    assert!(
        chain_only.status.success(),
        "the forgery should pass the chain check: {}",
        String::from_utf8_lossy(&chain_only.stdout)
    );
    let bad = run_cli(&["outages", "--verify", "--peer", "vps", "--config", cfg]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    eprintln!("rewritten:\n{text}");
    assert!(
        text.contains(&format!("witnessed seq {expected} ")),
        "expected seq {expected} named (witnessed: {witnessed:?}):\n{text}"
    );

    // The original journal cut short before the last witnessed head: the
    // chain that is left is intact, the witnessed seq is missing.
    let last = *witnessed.last().unwrap();
    let kept: Vec<&[u8]> = original
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .take(last as usize)
        .collect();
    let mut cut = kept.join(&b'\n');
    cut.push(b'\n');
    std::fs::write(data.join("journal.jsonl"), cut).unwrap();
    let short = run_cli(&["outages", "--verify", "--peer", "vps", "--config", cfg]);
    let text = String::from_utf8_lossy(&short.stdout);
    assert_eq!(short.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("witnessed seq {last} ")) && text.contains("no line with that seq"),
        "expected seq {last} named as missing:\n{text}"
    );
    drop(vps);
}

/// A scripted misbehaving peer: what it answers to each request.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Bytes that are not HTTP.
    Garbage,
    /// A 200 with an endless chunked body.
    Huge,
    /// A 200 whose body trickles a byte a second.
    Slow,
    /// 404 to witnesses, impossible figures to observations.
    Liar,
}

fn serve_badly(how: Misbehaviour) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || answer_badly(s, how));
        }
    });
    port
}

fn answer_badly(mut s: TcpStream, how: Misbehaviour) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
    match how {
        Misbehaviour::Garbage => {
            let _ = s.write_all(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n");
        }
        Misbehaviour::Huge => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n");
            let block = vec![b' '; 64 * 1024];
            // Bounded: 8 MiB at most, or until the client hangs up.
            for _ in 0..128 {
                if s.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                    .is_err()
                    || s.write_all(&block).is_err()
                    || s.write_all(b"\r\n").is_err()
                {
                    return;
                }
            }
        }
        Misbehaviour::Slow => {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
            );
            for _ in 0..100 {
                std::thread::sleep(Duration::from_secs(1));
                if s.write_all(b" ").is_err() {
                    return;
                }
            }
        }
        Misbehaviour::Liar => {
            let body = if target.starts_with("/api/v1/peer/observations") {
                let query = target.split_once('?').map_or("", |(_, q)| q).to_string();
                let param = |k: &str| -> String {
                    query
                        .split('&')
                        .find_map(|p| p.strip_prefix(&format!("{k}=")))
                        .map(|v| v.replace("%3A", ":"))
                        .unwrap_or_default()
                };
                let since = param("since");
                serde_json::json!({
                    "site": "liar",
                    "since": since,
                    "until": param("until"),
                    "step_seconds": 60,
                    "targets": [{
                        "target": "intl-web",
                        "known": true,
                        "minutes": [{"t": since, "probes": 5, "failures": 9,
                                     "rtt_p50_seconds": null, "rtt_p95_seconds": null}]
                    }]
                })
                .to_string()
            } else {
                let _ =
                    s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot here\n");
                return;
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    }
}

#[test]
fn peer_client_bad_peers_are_counted_and_nothing_is_journaled() {
    let tokens = tempfile::tempdir().unwrap();
    let mut web = Switchable::new();
    let mut peers = String::new();
    for (name, how) in [
        ("garbage", Misbehaviour::Garbage),
        ("huge", Misbehaviour::Huge),
        ("slow", Misbehaviour::Slow),
        ("liar", Misbehaviour::Liar),
    ] {
        let port = serve_badly(how);
        let token = token_file(tokens.path(), name, &format!("token-of-{name}-0123456789"));
        peers.push_str(&peer_table(
            name,
            Some(&format!("http://127.0.0.1:{port}")),
            &token,
        ));
    }
    let home = Daemon::start(&site_config("127.0.0.1:0", "home", web.port, &peers));
    home.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "intl")]) == Some(1.0))
            .then_some(())
    });
    web.off();
    home.wait_for(Duration::from_secs(10), |d| {
        (!events(&journal(&d.data_dir()), "outage_start").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    web.on();
    home.wait_for(Duration::from_secs(10), |d| {
        (!events(&journal(&d.data_dir()), "outage_end").is_empty()).then_some(())
    });
    let calls = |m: &str, peer: &str, endpoint: &str, result: &str| {
        sample(
            m,
            "linkwatch_peer_calls_total",
            &[("peer", peer), ("endpoint", endpoint), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    // The slow peer needs the call's whole time (30 s) to be cut.
    let m = home.wait_for(Duration::from_secs(60), |d| {
        let m = d.metrics();
        let all = calls(&m, "garbage", "witness", "bad_answer") >= 1.0
            && calls(&m, "garbage", "observations", "bad_answer") >= 1.0
            && calls(&m, "huge", "witness", "bad_answer") >= 1.0
            && calls(&m, "huge", "observations", "bad_answer") >= 1.0
            && calls(&m, "slow", "witness", "timeout") >= 1.0
            && calls(&m, "slow", "observations", "timeout") >= 1.0
            && calls(&m, "liar", "witness", "http_error") >= 1.0
            && calls(&m, "liar", "observations", "rejected") >= 1.0;
        all.then_some(m)
    });
    for peer in ["garbage", "huge", "slow", "liar"] {
        for endpoint in ["witness", "observations"] {
            assert_eq!(calls(&m, peer, endpoint, "ok"), 0.0, "{peer} {endpoint}");
        }
    }
    let lines = journal(&home.data_dir());
    assert!(events(&lines, "witnessed").is_empty(), "{lines:?}");
    assert!(events(&lines, "corroboration").is_empty(), "{lines:?}");
    let (status, _) = home.get("/healthz");
    assert_eq!(status, 200);
    let log = home.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("token-of-"), "a token was logged:\n{log}");
    // Repeats of one failure are not logged at WARN each time.
    let warns = log
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains("garbage")
                && l.contains("witness")
                && !l.contains("observations")
        })
        .count();
    assert!(
        warns <= 2,
        "{warns} WARN lines for one failing peer:\n{log}"
    );
}

/// A CA and a `127.0.0.1` leaf signed by it, as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "peer test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &Issuer::new(ca, ca_key)).unwrap();
    let (ca_path, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ca_path, cert, key)
}

/// A TCP forwarder the test can cut (connections refused) and restore: the
/// peer stays up, only the way to it goes.
struct Forwarder {
    port: u16,
    to: u16,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    fn new(to: u16) -> Self {
        let mut f = Self {
            port: 0,
            to,
            stop: Arc::new(AtomicBool::new(false)),
        };
        f.listen(TcpListener::bind("127.0.0.1:0").unwrap());
        f
    }

    fn listen(&mut self, l: TcpListener) {
        self.port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let to = self.to;
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((client, _)) => {
                        let Ok(upstream) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        for (mut a, mut b) in [
                            (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                            (upstream, client),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut a, &mut b);
                                let _ = b.shutdown(std::net::Shutdown::Write);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    fn cut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
    }

    fn restore(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.listen(l);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Restarts `d` on its own config and data directory.
fn restart(d: &mut Daemon) -> Daemon {
    d.terminate(Duration::from_secs(5));
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let child = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.path().join("config.toml"))
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Daemon::attach(child, dir)
}

#[test]
fn peer_client_pending_corroboration_survives_a_restart_over_https() {
    let files = tempfile::tempdir().unwrap();
    let token = token_file(files.path(), "pair.token", "pair-token-https-0123456789");
    let (ca, cert, key) = tls_files(files.path());
    let mut home_web = Switchable::new();
    let vps_web = Switchable::new();
    // The vps serves HTTPS only and never calls home (a peer without url).
    let vps_port = free_port();
    let vps_cfg = site_config(
        &format!("127.0.0.1:{vps_port}"),
        "vps",
        vps_web.port,
        &peer_table("home", None, &token),
    )
    .replacen(
        "[defaults]",
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n\n[defaults]",
            cert.display(),
            key.display()
        ),
        1,
    );
    let vps = Daemon::start(&vps_cfg);
    let mut way = Forwarder::new(vps_port);
    let home_cfg = site_config(
        "127.0.0.1:0",
        "home",
        home_web.port,
        &format!(
            "{}ca_file = \"{}\"\n",
            peer_table(
                "vps",
                Some(&format!("https://127.0.0.1:{}", way.port)),
                &token
            ),
            ca.display()
        ),
    );
    let mut home = Daemon::start(&home_cfg);
    // Witnessed over HTTPS, verified against the vps's CA only.
    home.wait_for(Duration::from_secs(20), |d| {
        (!events(&journal(&d.data_dir()), "witnessed").is_empty()).then_some(())
    });

    // The way to the vps is cut; an outage happens and ends at home.
    way.cut();
    home.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "intl")]) == Some(1.0))
            .then_some(())
    });
    home_web.off();
    home.wait_for(Duration::from_secs(10), |d| {
        (!events(&journal(&d.data_dir()), "outage_start").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    home_web.on();
    home.wait_for(Duration::from_secs(10), |d| {
        let m = d.metrics();
        let asked = sample(
            &m,
            "linkwatch_peer_calls_total",
            &[
                ("peer", "vps"),
                ("endpoint", "observations"),
                ("result", "unreachable"),
            ],
        )
        .unwrap_or(0.0);
        (asked >= 1.0).then_some(())
    });
    // Stopped while the corroboration is pending, started again: the
    // journal says what is missing, and it is asked for again.
    let mut home = restart(&mut home);
    std::thread::sleep(Duration::from_secs(2));
    assert!(events(&journal(&home.data_dir()), "corroboration").is_empty());
    way.restore();
    let repaired = Instant::now();
    let c = home.wait_for(Duration::from_secs(60), |d| {
        events(&journal(&d.data_dir()), "corroboration")
            .first()
            .map(|c| (*c).clone())
    });
    let took = repaired.elapsed();
    eprintln!("corroboration {took:?} after the repair: {c}");
    assert!(took < Duration::from_secs(35), "{took:?}");
    assert_eq!(c["peer"], "vps");
    assert_eq!(c["verdict"], "reachable_elsewhere", "{c}");
    assert!(c["targets"][0]["probes"].as_u64().unwrap() > 0, "{c}");
    let id = events(&journal(&home.data_dir()), "outage_end")[0]["id"].clone();
    assert_eq!(c["period"], id);

    // Once answered, a further restart asks for nothing more.
    let home = restart(&mut home);
    home.wait_for(Duration::from_secs(20), |d| {
        let lines = journal(&d.data_dir());
        (events(&lines, "daemon_start").len() == 3 && events(&lines, "witnessed").len() >= 3)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(events(&journal(&home.data_dir()), "corroboration").len(), 1);
    drop(vps);
}

/// `POST /-/reload` on `d`; the answer's status and body.
fn reload(d: &Daemon) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&d.addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /-/reload HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        d.addr
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn peer_client_a_reload_starts_and_stops_the_calls() {
    let files = tempfile::tempdir().unwrap();
    let token = token_file(files.path(), "pair.token", "pair-token-reload-0123456789");
    let home_web = Switchable::new();
    let vps_web = Switchable::new();
    let vps = Daemon::start(&site_config(
        "127.0.0.1:0",
        "vps",
        vps_web.port,
        &peer_table("home", None, &token),
    ));
    // No peer at first: nothing calls, nothing is journaled.
    let without = site_config("127.0.0.1:0", "home", home_web.port, "");
    let home = Daemon::start(&without);
    let config = home.dir.path().join("config.toml");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!home.log().contains("calling peer"), "{}", home.log());
    // Added by a reload: called at once.
    let with = without.replace("{data_dir}", home.data_dir().to_str().unwrap())
        + &peer_table("vps", Some(&format!("http://{}", vps.addr)), &token);
    std::fs::write(&config, &with).unwrap();
    let (status, body) = reload(&home);
    assert_eq!(status, 200, "{body}");
    home.wait_for(Duration::from_secs(10), |d| {
        (!events(&journal(&d.data_dir()), "witnessed").is_empty()).then_some(())
    });
    // Its url removed by a reload: the calls stop.
    let only_called = without.replace("{data_dir}", home.data_dir().to_str().unwrap())
        + &peer_table("vps", None, &token);
    std::fs::write(&config, only_called).unwrap();
    let (status, body) = reload(&home);
    assert_eq!(status, 200, "{body}");
    home.wait_for(Duration::from_secs(5), |d| {
        d.log()
            .contains("no peer with a url any more; peer calls stopped")
            .then_some(())
    });
    drop(vps);
}
