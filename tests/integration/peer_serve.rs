//! The receiving side of peers (issue 20) on loopback: a real daemon with
//! `[[peer]]` tables, called the way a peer calls it. Refusals (401, 429,
//! 413, 400) and their counters; a witness's receipt against the journal
//! line it names; observations against `/api/v1/history`; HTTPS with an
//! rcgen certificate, re-read on reload; `linkwatch check` of deploy/peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::daemon::{BIN, Daemon, sample};

const HOME_TOKEN: &str = "home-token-0123456789abcdef";
const OFFICE_TOKEN: &str = "office-token-0123456789abcdef";

/// A secret file (mode 600) in `dir`.
fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A daemon with one TCP target (a listener of this test, so probes
/// succeed every 200 ms), two peers, `extra` appended to `[daemon]`.
struct Site {
    daemon: Daemon,
    _target: TcpListener,
    _tokens: tempfile::TempDir,
}

fn site(daemon_extra: &str) -> Site {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let tokens = tempfile::tempdir().unwrap();
    let home = secret(tokens.path(), "home.token", &format!("{HOME_TOKEN}\n"));
    let office = secret(tokens.path(), "office.token", OFFICE_TOKEN);
    let config = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"
site = "vps"
witness_every = "10s"
{daemon_extra}

[[group]]
name = "intl"

[[target]]
name = "intl-web"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = {port}
interval = "200ms"
timeout = "100ms"

[[peer]]
name = "home"
token_file = "{}"

[[peer]]
name = "office"
token_file = "{}"
"#,
        home.display(),
        office.display()
    );
    Site {
        daemon: Daemon::start(&config),
        _target: target,
        _tokens: tokens,
    }
}

/// One HTTP/1.1 exchange (`Connection: close`): status, head, body.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    exchange(&mut s, addr, method, path, headers, body)
}

fn exchange(
    s: &mut impl ReadWrite,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req += &format!("Content-Length: {}\r\n", body.len());
    }
    req += "\r\n";
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413) and close before reading it all.
    let _ = s.write_all(&bytes);
    let _ = s.flush();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn requests(metrics: &str, peer: &str, endpoint: &str, result: &str) -> f64 {
    sample(
        metrics,
        "linkwatch_peer_requests_total",
        &[("peer", peer), ("endpoint", endpoint), ("result", result)],
    )
    .unwrap_or(-1.0)
}

fn witness_body(seq: u64) -> String {
    format!(
        r#"{{"site":"almaty-home","seq":{seq},"hash":"{}","at":"2026-12-06T10:02:00.000Z"}}"#,
        "ab".repeat(32)
    )
}

#[test]
fn peer_calls_without_a_valid_token_or_over_the_limits_are_refused_and_counted() {
    let s = site("");
    let d = &s.daemon;
    let m = d.metrics();
    assert_eq!(requests(&m, "", "observations", "unauthorized"), 0.0, "{m}");
    assert_eq!(
        sample(&m, "linkwatch_peer_up", &[("peer", "home")]),
        Some(0.0)
    );
    let obs = "/api/v1/peer/observations?targets=intl-web&since=2026-12-06T10:00:00Z&until=2026-12-06T10:05:00Z";

    // No token, a wrong one, another scheme: 401, counted under peer="".
    let (st, head, _) = call(d.addr, "GET", obs, &[], b"");
    assert_eq!(st, 401, "{head}");
    assert!(head.contains("www-authenticate: Bearer"), "{head}");
    let wrong = bearer("home-token-0123456789abcdeX");
    assert_eq!(
        call(d.addr, "GET", obs, &[("Authorization", &wrong)], b"").0,
        401
    );
    let basic = format!("Basic {HOME_TOKEN}");
    assert_eq!(
        call(
            d.addr,
            "POST",
            "/api/v1/peer/witness",
            &[("Authorization", &basic)],
            b"{}"
        )
        .0,
        401
    );
    let m = d.metrics();
    assert_eq!(requests(&m, "", "observations", "unauthorized"), 2.0, "{m}");
    assert_eq!(requests(&m, "", "witness", "unauthorized"), 1.0, "{m}");
    assert!(
        !d.log().contains("0123456789abcde"),
        "a token reached the log"
    );

    let home = bearer(HOME_TOKEN);
    let auth = [("Authorization", home.as_str())];
    // Too large: announced, and sent without a length (chunked).
    let big = vec![b' '; 5000];
    let (st, _, body) = call(d.addr, "POST", "/api/v1/peer/witness", &auth, &big);
    assert_eq!(st, 413, "{body}");
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut c = TcpStream::connect(d.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (st, _, body) = exchange(
        &mut c,
        d.addr,
        "POST",
        "/api/v1/peer/witness",
        &[("Authorization", &home), ("Transfer-Encoding", "chunked")],
        &chunked,
    );
    assert_eq!(st, 413, "{body}");
    // Garbage, a bad hash, a wrong method, a bad query: 400 / 405.
    let (st, _, body) = call(
        d.addr,
        "POST",
        "/api/v1/peer/witness",
        &auth,
        b"{\"site\": [garbage",
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not a witness"), "{body}");
    let bad_hash = witness_body(1).replace(&"ab".repeat(32), "xyz");
    assert_eq!(
        call(
            d.addr,
            "POST",
            "/api/v1/peer/witness",
            &auth,
            bad_hash.as_bytes()
        )
        .0,
        400
    );
    assert_eq!(
        call(d.addr, "GET", "/api/v1/peer/witness", &auth, b"").0,
        405
    );
    let (st, _, body) = call(
        d.addr,
        "GET",
        "/api/v1/peer/observations?targets=intl-web",
        &auth,
        b"",
    );
    assert_eq!(st, 400, "{body}");
    let m = d.metrics();
    assert_eq!(requests(&m, "home", "witness", "too_large"), 2.0, "{m}");
    assert_eq!(requests(&m, "home", "witness", "bad_request"), 3.0, "{m}");
    assert_eq!(
        requests(&m, "home", "observations", "bad_request"),
        1.0,
        "{m}"
    );
    // Any authenticated call is a sign of life.
    assert!(
        sample(
            &m,
            "linkwatch_peer_last_seen_timestamp_seconds",
            &[("peer", "home")]
        )
        .unwrap()
            > 1.7e9
    );
    d.wait_for(Duration::from_secs(5), |d| {
        (sample(&d.metrics(), "linkwatch_peer_up", &[("peer", "home")]) == Some(1.0)).then_some(())
    });
    assert_eq!(
        sample(&m, "linkwatch_peer_up", &[("peer", "office")]),
        Some(0.0)
    );

    // Home's burst of 10 is mostly spent: within a few quick calls one is
    // refused with Retry-After; office has its own allowance.
    let mut ok = 0.0;
    let mut retry = None;
    for _ in 0..15 {
        let (st, head, _) = call(d.addr, "GET", obs, &auth, b"");
        match st {
            200 => ok += 1.0,
            429 => {
                retry = Some(head);
                break;
            }
            other => panic!("{other}: {head}"),
        }
    }
    let retry = retry.expect("no 429 within 15 calls");
    assert!(ok <= 6.0, "{ok} calls passed after 6 of a burst of 10");
    assert!(
        retry.to_ascii_lowercase().contains("retry-after: "),
        "{retry}"
    );
    let office = bearer(OFFICE_TOKEN);
    assert_eq!(
        call(d.addr, "GET", obs, &[("Authorization", &office)], b"").0,
        200
    );
    let m = d.metrics();
    assert_eq!(
        requests(&m, "home", "observations", "rate_limited"),
        1.0,
        "{m}"
    );
    assert_eq!(requests(&m, "home", "observations", "ok"), ok, "{m}");
    assert_eq!(requests(&m, "office", "observations", "ok"), 1.0, "{m}");
}

#[test]
fn a_witness_is_journaled_and_its_receipt_names_that_very_line() {
    let s = site("");
    let d = &s.daemon;
    let home = bearer(HOME_TOKEN);
    let (st, _, body) = call(
        d.addr,
        "POST",
        "/api/v1/peer/witness",
        &[
            ("Authorization", &home),
            ("Content-Type", "application/json"),
        ],
        witness_body(41).as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    // The figures in the README ("what it costs"): one witness exchange.
    let (_, head, _) = call(
        d.addr,
        "POST",
        "/api/v1/peer/witness",
        &[
            ("Authorization", &home),
            ("Content-Type", "application/json"),
        ],
        witness_body(41).as_bytes(),
    );
    eprintln!(
        "peer witness exchange: request {} bytes (body {}), answer {} bytes (body {})",
        format!("POST /api/v1/peer/witness HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: {home}\r\nContent-Type: application/json\r\nContent-Length: 145\r\n\r\n", d.addr).len() + witness_body(41).len(),
        witness_body(41).len(),
        head.len() + 4 + body.len(),
        body.len()
    );
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["site"], "vps");
    let seq = receipt["seq"].as_u64().unwrap();
    let hash = receipt["hash"].as_str().unwrap().to_string();
    // The receipt is durable when answered: the line is in the file.
    let journal = std::fs::read_to_string(d.data_dir().join("journal.jsonl")).unwrap();
    let line = journal
        .lines()
        .find(|l| l.starts_with(&format!("{{\"seq\":{seq},")))
        .unwrap_or_else(|| panic!("no line {seq} in\n{journal}"));
    assert_eq!(linkwatch::journal::line_hash(line.as_bytes()), hash);
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["event"], "witness");
    assert_eq!(v["peer"], "home", "the caller is named by its token");
    assert_eq!(v["site"], "almaty-home");
    assert_eq!(v["head"]["seq"], 41);
    let out = Command::new(BIN)
        .args(["outages", "--verify", "--data-dir"])
        .arg(d.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Its own witnesses for the caller; none of them for another peer.
    let (st, _, body) = call(
        d.addr,
        "GET",
        "/api/v1/peer/witnesses?site=almaty-home",
        &[("Authorization", &home)],
        b"",
    );
    assert_eq!(st, 200, "{body}");
    let records: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(records[0]["seq"], 41);
    assert_eq!(records[0]["hash"], "ab".repeat(32));
    assert_eq!(records[0]["at"], "2026-12-06T10:02:00.000Z");
    assert_eq!(records[0]["received"], v["ts"]);
    let office = bearer(OFFICE_TOKEN);
    let (st, _, body) = call(
        d.addr,
        "GET",
        "/api/v1/peer/witnesses?site=almaty-home",
        &[("Authorization", &office)],
        b"",
    );
    assert_eq!((st, body.as_str()), (200, "[]"));
    let m = d.metrics();
    assert_eq!(requests(&m, "home", "witness", "ok"), 2.0, "{m}");
    assert_eq!(requests(&m, "home", "witnesses", "ok"), 1.0, "{m}");
}

#[test]
fn observations_are_the_history_stores_minutes() {
    let s = site("");
    let d = &s.daemon;
    // Let a few probes land in the current minute.
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(
            &d.metrics(),
            "linkwatch_probes_total",
            &[("target", "intl-web"), ("result", "success")],
        )? >= 5.0)
            .then_some(())
    });
    let now = jiff::Timestamp::now();
    let since = jiff::Timestamp::from_second(now.as_second() / 60 * 60 - 120).unwrap();
    let until = jiff::Timestamp::from_second(now.as_second() / 60 * 60 + 60).unwrap();
    let q = linkwatch::peer::ObservationsRequest {
        targets: vec!["intl-web".into(), "not-ours".into()],
        since,
        until,
    };
    let home = bearer(HOME_TOKEN);
    let (st, _, body) = call(
        d.addr,
        "GET",
        &format!("/api/v1/peer/observations?{}", q.query_string()),
        &[("Authorization", &home)],
        b"",
    );
    assert_eq!(st, 200, "{body}");
    let (_, history) = d.get(&format!(
        "/api/v1/history?target=intl-web&since={since}&until={until}&step=60"
    ));
    let obs: linkwatch::peer::Observations = serde_json::from_str(&body).unwrap();
    assert_eq!(obs.validate(&q.targets, Duration::from_millis(100)), Ok(()));
    assert_eq!(obs.site, "vps");
    assert_eq!(obs.targets[1].target, "not-ours");
    assert!(!obs.targets[1].known && obs.targets[1].minutes.is_empty());
    let ours = &obs.targets[0];
    assert!(ours.known && !ours.minutes.is_empty(), "{body}");
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let points: Vec<&serde_json::Value> = history[0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["probes"].as_u64() > Some(0))
        .collect();
    assert_eq!(points.len(), ours.minutes.len(), "{history}\n{body}");
    for (p, m) in points.iter().zip(&ours.minutes) {
        assert_eq!(
            p["start"].as_str().unwrap(),
            linkwatch::journal::ts_ms::format(&m.t)
        );
        // The current minute may gain probes between the two calls.
        let (hp, hf) = (
            p["probes"].as_u64().unwrap(),
            p["failures"].as_u64().unwrap(),
        );
        assert!(hp >= m.probes && hp <= m.probes + 10, "{p} vs {m:?}");
        assert_eq!(hf, m.failures);
        assert!(m.rtt_p50_seconds.is_some() && m.rtt_p95_seconds >= m.rtt_p50_seconds);
        if hp == m.probes {
            assert_eq!(
                p["rtt_median_seconds"].as_f64(),
                m.rtt_p50_seconds,
                "{p} vs {m:?}"
            );
        }
    }
    // The figure in the README: bytes of one hour of one target, one call.
    let hour = linkwatch::peer::ObservationsRequest {
        targets: vec!["intl-web".into()],
        since: jiff::Timestamp::from_second(until.as_second() - 3600).unwrap(),
        until,
    };
    let (_, head, body) = call(
        d.addr,
        "GET",
        &format!("/api/v1/peer/observations?{}", hour.query_string()),
        &[("Authorization", &home)],
        b"",
    );
    let minutes = ours.minutes.len().max(1);
    eprintln!(
        "peer observations answer: {} bytes head + {} bytes body for {minutes} minute(s) of one target",
        head.len() + 4,
        body.len()
    );
}

/// A CA and a `localhost`/127.0.0.1 leaf: (ca.pem, cert.pem chain, key.pem).
fn pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca_file = secret(dir, &format!("{name}-ca.pem"), &ca.pem());
    let cert = secret(dir, &format!("{name}-cert.pem"), &(leaf.pem() + &ca.pem()));
    let key = secret(dir, &format!("{name}-key.pem"), &leaf_key.serialize_pem());
    (ca_file, cert, key)
}

/// A TLS client that trusts only `ca`; `Err` when the handshake fails.
fn tls_call(
    addr: SocketAddr,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut tls = rustls::StreamOwned::new(
        conn,
        Counting {
            inner: tcp,
            read: 0,
            written: 0,
        },
    );
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    let (st, _, body) = exchange(&mut tls, addr, method, path, headers, body);
    eprintln!(
        "TLS {method} {path}: {} bytes sent, {} received on the wire (handshake included)",
        tls.sock.written, tls.sock.read
    );
    Ok((st, body))
}

/// A stream that counts the bytes through it.
struct Counting<T> {
    inner: T,
    read: usize,
    written: usize,
}

impl<T: Read> Read for Counting<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl<T: Write> Write for Counting<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn tls_is_served_with_the_configured_certificate_and_reread_on_reload() {
    let certs = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = pki(certs.path(), "one");
    let (ca2, cert2, key2) = pki(certs.path(), "two");
    // The daemon reads the files at this path; the test swaps their contents.
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    std::fs::copy(&cert1, &cert).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let s = site(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    ));
    let d = &s.daemon;
    let (st, body) = tls_call(d.addr, &ca1, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!((st, body.as_str()), (200, "ok\n"));
    // Plain HTTP gets no answer; an unknown CA fails the handshake.
    let (st, _, _) = call(d.addr, "GET", "/healthz", &[], b"");
    assert_eq!(st, 0, "plain HTTP answered on a TLS listener");
    assert!(tls_call(d.addr, &ca2, "GET", "/healthz", &[], b"").is_err());
    // The peer endpoints over TLS.
    let home = bearer(HOME_TOKEN);
    let (st, body) = tls_call(
        d.addr,
        &ca1,
        "POST",
        "/api/v1/peer/witness",
        &[("Authorization", &home)],
        witness_body(3).as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");

    // A new certificate, taken by a reload of the unchanged file.
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let (st, body) = tls_call(d.addr, &ca1, "POST", "/-/reload", &[], b"").unwrap();
    assert_eq!(st, 200, "{body}");
    assert!(tls_call(d.addr, &ca1, "GET", "/healthz", &[], b"").is_err());
    let (st, _) = tls_call(d.addr, &ca2, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(st, 200);

    // A key that does not belong to the certificate: the reload fails and
    // the running certificate stays.
    std::fs::copy(&key1, &key).unwrap();
    let (st, body) = tls_call(d.addr, &ca2, "POST", "/-/reload", &[], b"").unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("tls"), "{body}");
    let (st, _) = tls_call(d.addr, &ca2, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(st, 200);
    let m = tls_call(d.addr, &ca2, "GET", "/metrics", &[], b"")
        .unwrap()
        .1;
    assert_eq!(
        sample(&m, "linkwatch_config_last_reload_successful", &[]),
        Some(0.0)
    );
}

#[test]
fn a_tls_client_that_never_finishes_its_handshake_is_dropped_and_counted() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(certs.path(), "one");
    let s = site(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    ));
    let d = &s.daemon;
    let mut silent = TcpStream::connect(d.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server sent bytes to a client that said nothing");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let m = tls_call(d.addr, &ca, "GET", "/metrics", &[], b"")
        .unwrap()
        .1;
    assert_eq!(
        sample(
            &m,
            "linkwatch_http_connections_timed_out_total",
            &[("reason", "handshake")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn the_deploy_peer_config_passes_check_with_its_token_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/peer/linkwatch.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "vps");
    let mut replaced = text.clone();
    for line in text.lines() {
        let Some((key, path)) = line.split_once(" = \"") else {
            continue;
        };
        let Some(path) = path
            .split('"')
            .next()
            .filter(|p| p.starts_with("/run/credentials/"))
        else {
            continue;
        };
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        let file = match key.trim() {
            // As the README says to make one.
            "token_file" => {
                let token = Command::new("sh")
                    .args(["-c", "head -c 32 /dev/urandom | base64"])
                    .output()
                    .unwrap();
                secret(dir.path(), name, &String::from_utf8_lossy(&token.stdout))
            }
            "tls_cert" => pki.1.clone(),
            "tls_key" => pki.2.clone(),
            other => panic!("unexpected credential key {other}"),
        };
        replaced = replaced.replace(path, file.to_str().unwrap());
    }
    assert_ne!(
        replaced, text,
        "deploy/peer/linkwatch.toml names no token_file"
    );
    let config = dir.path().join("linkwatch.toml");
    std::fs::write(&config, replaced).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = linkwatch::config::load(&config).unwrap();
    assert!(!parsed.peers.is_empty());
    assert!(
        parsed.peers.iter().all(|p| p.url.is_none()),
        "a VPS peer lists its homes without url"
    );
    assert!(parsed.daemon.tls_cert.is_some());
    // The unit keeps every hardening line of the main unit and loads each
    // credential the config names.
    let unit = std::fs::read_to_string(root.join("deploy/peer/linkwatch-peer.service")).unwrap();
    let main = std::fs::read_to_string(root.join("deploy/systemd/linkwatch.service")).unwrap();
    for line in main.lines().filter(|l| {
        [
            "Protect",
            "Restrict",
            "SystemCall",
            "NoNewPrivileges",
            "DynamicUser",
            "Capability",
            "Private",
        ]
        .iter()
        .any(|k| l.starts_with(k))
    }) {
        assert!(
            unit.lines().any(|u| u == line),
            "linkwatch-peer.service lacks `{line}`"
        );
    }
    for line in text
        .lines()
        .filter(|l| l.contains("/run/credentials/linkwatch-peer.service/"))
    {
        let name = line.rsplit('/').next().unwrap().trim_end_matches('"');
        assert!(
            unit.contains(&format!("LoadCredential={name}:")),
            "no LoadCredential for {name}"
        );
    }
}

/// A webhook receiver on loopback: every request body, in order.
fn webhook_sink() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head, then Content-Length bytes of body.
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            if let Some(body) = body {
                out.lock().unwrap().push(body);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, bodies)
}

#[test]
fn a_peer_that_stops_calling_goes_silent_and_is_told_and_back() {
    let (sink, bodies) = webhook_sink();
    // witness_every is 10 s in every site of this file.
    let s = site(&format!(
        "\n[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{sink}/hook\"\nevents = [\"site_silent\"]\n"
    ));
    let d = &s.daemon;
    let home = bearer(HOME_TOKEN);
    let witness = |seq| {
        let (st, _, body) = call(
            d.addr,
            "POST",
            "/api/v1/peer/witness",
            &[("Authorization", &home)],
            witness_body(seq).as_bytes(),
        );
        assert_eq!(st, 200, "{body}");
    };
    let up = |d: &Daemon| sample(&d.metrics(), "linkwatch_peer_up", &[("peer", "home")]);
    witness(1);
    d.wait_for(Duration::from_secs(5), |d| {
        (up(d) == Some(1.0)).then_some(())
    });
    // Silent after 3 × 10 s without a call.
    let t0 = std::time::Instant::now();
    d.wait_for(Duration::from_secs(40), |d| {
        (up(d) == Some(0.0)).then_some(())
    });
    assert!(
        t0.elapsed() >= Duration::from_secs(25),
        "{:?}",
        t0.elapsed()
    );
    let told = |what: &'static str| {
        let bodies = bodies.clone();
        move |_: &Daemon| {
            bodies
                .lock()
                .unwrap()
                .iter()
                .find(|b| b.contains(what))
                .cloned()
        }
    };
    let silent = d.wait_for(Duration::from_secs(10), told("home went silent"));
    let v: serde_json::Value = serde_json::from_str(&silent).unwrap();
    assert_eq!(v["event"], "site_silent", "{v}");
    // Office was never seen: neither up nor told.
    assert_eq!(
        sample(&d.metrics(), "linkwatch_peer_up", &[("peer", "office")]),
        Some(0.0)
    );
    witness(2);
    d.wait_for(Duration::from_secs(5), |d| {
        (up(d) == Some(1.0)).then_some(())
    });
    d.wait_for(Duration::from_secs(10), told("home is back"));
    assert!(!bodies.lock().unwrap().iter().any(|b| b.contains("office")));
}
