//! The client against local servers on 127.0.0.1: a real TLS server with an
//! rcgen CA, and raw TCP servers that answer slowly, with nonsense or with
//! too much.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A CA and a leaf for `127.0.0.1`/`localhost` signed by it: (CA PEM, leaf chain, leaf key).
fn pki(cn: &str) -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, cn);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    (
        ca_cert.pem(),
        vec![leaf_cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
}

/// What the test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

/// Serves one connection with `answer` (raw bytes after reading the request
/// head and body), optionally through TLS; reports what it read.
async fn serve_raw(
    tls: Option<tokio_rustls::TlsAcceptor>,
    answer: Vec<u8>,
    delay: Duration,
) -> (SocketAddr, tokio::sync::mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            let answer = answer.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acc) => {
                        if let Ok(s) = acc.accept(tcp).await {
                            one(s, answer, delay, tx).await;
                        }
                    }
                    None => one(tcp, answer, delay, tx).await,
                }
            });
        }
    });
    (addr, rx)
}

async fn one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    answer: Vec<u8>,
    delay: Duration,
    tx: tokio::sync::mpsc::Sender<Seen>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let _ = tx.send(Seen { head, body }).await;
    tokio::time::sleep(delay).await;
    let _ = s.write_all(&answer).await;
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

fn ok_json(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn registry_calls() -> (Calls, IntCounterVec) {
    let c = IntCounterVec::new(
        prometheus::Opts::new("linkwatch_peer_calls_total", "test"),
        &["peer", "endpoint", "result"],
    )
    .unwrap();
    (Calls::new(c.clone()), c)
}

fn client(url: &str, ca: Option<&Path>, calls: Calls) -> PeerClient {
    PeerClient::new(
        "abroad",
        &Url::parse(url).unwrap(),
        Secret::new("s3cret-token".into()),
        ca,
        calls,
    )
    .unwrap()
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> tokio_rustls::TlsAcceptor {
    let mut cfg = rustls::ServerConfig::builder_with_provider(crate::probe::net::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

#[tokio::test]
async fn https_with_ca_file_sends_the_token_and_parses_the_answer() {
    let (ca_pem, chain, key) = pki("linkwatch test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let (addr, mut seen) = serve_raw(
        Some(acceptor(chain, key)),
        ok_json(&json!({"site": "vps", "seq": 7, "hash": "ab"})),
        Duration::ZERO,
    )
    .await;
    let (calls, counter) = registry_calls();
    let c = client(
        &format!("https://localhost:{}/prefix/", addr.port()),
        Some(&ca_path),
        calls,
    );
    let v: Value = c
        .post("witness", "/api/v1/peer/witness", &json!({"seq": 3}))
        .await
        .unwrap();
    assert_eq!(v["seq"], 7);
    let s = seen.recv().await.unwrap();
    assert!(
        s.head
            .starts_with("POST /prefix/api/v1/peer/witness HTTP/1.1\r\n"),
        "{}",
        s.head
    );
    assert!(
        s.head.contains("authorization: Bearer s3cret-token\r\n"),
        "{}",
        s.head
    );
    assert!(
        s.head.contains("content-type: application/json\r\n"),
        "{}",
        s.head
    );
    assert_eq!(s.body, r#"{"seq":3}"#);
    // Success is counted by the caller once it has checked the answer.
    assert_eq!(
        counter
            .with_label_values(&["abroad", "witness", "ok"])
            .get(),
        0
    );
}

#[tokio::test]
async fn https_without_the_right_ca_is_unreachable_and_names_the_certificate() {
    let (_, chain, key) = pki("linkwatch test CA");
    let (other_ca, _, _) = pki("another CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("other.pem");
    std::fs::write(&ca_path, other_ca).unwrap();
    let (addr, _seen) = serve_raw(
        Some(acceptor(chain, key)),
        ok_json(&json!({})),
        Duration::ZERO,
    )
    .await;
    let (calls, counter) = registry_calls();
    // Another CA, and no ca_file (the web PKI roots): both refuse.
    for ca in [Some(ca_path.as_path()), None] {
        let c = client(
            &format!("https://127.0.0.1:{}", addr.port()),
            ca,
            calls.clone(),
        );
        let e = c
            .get::<Value>("observations", "/api/v1/peer/observations", "")
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Unreachable(_)), "{e}");
        assert!(e.to_string().contains("unknown issuer"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
    assert_eq!(
        counter
            .with_label_values(&["abroad", "observations", "unreachable"])
            .get(),
        2
    );
}

#[tokio::test]
async fn query_goes_as_given() {
    let (addr, mut seen) = serve_raw(None, ok_json(&json!([])), Duration::ZERO).await;
    let c = client(
        &format!("http://127.0.0.1:{}", addr.port()),
        None,
        Calls::default(),
    );
    let _: Value = c
        .get(
            "observations",
            "/api/v1/peer/observations",
            "targets=a,b%2Cc&since=x",
        )
        .await
        .unwrap();
    let s = seen.recv().await.unwrap();
    assert!(
        s.head
            .starts_with("GET /api/v1/peer/observations?targets=a,b%2Cc&since=x HTTP/1.1"),
        "{}",
        s.head
    );
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let (calls, counter) = registry_calls();
    let c = client(&format!("http://127.0.0.1:{port}"), None, calls);
    let e = c.get::<Value>("witnesses", "/x", "").await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert_eq!(
        counter
            .with_label_values(&["abroad", "witnesses", "unreachable"])
            .get(),
        1
    );
}

#[tokio::test]
async fn slow_huge_and_garbage_answers_are_bounded_and_counted() {
    let (calls, counter) = registry_calls();
    let limits = Limits {
        connect: Duration::from_secs(2),
        total: Duration::from_millis(400),
        max_body: 1024,
    };
    // Slow: answers after the call's time.
    let (slow, _s1) = serve_raw(None, ok_json(&json!({})), Duration::from_secs(5)).await;
    let c = client(&format!("http://{slow}"), None, calls.clone()).with_limits(limits);
    let t = tokio::time::Instant::now();
    let e = c.get::<Value>("observations", "/", "").await.unwrap_err();
    assert!(matches!(e, CallError::Timeout(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Huge, announced: refused before reading.
    let mut big = b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 4096));
    let (huge, _s2) = serve_raw(None, big, Duration::ZERO).await;
    let c = client(&format!("http://{huge}"), None, calls.clone()).with_limits(limits);
    let e = c.get::<Value>("observations", "/", "").await.unwrap_err();
    assert!(matches!(e, CallError::BadAnswer(_)), "{e}");

    // Huge, chunked (no length): cut at the cap.
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        chunked.extend_from_slice(b"100\r\n");
        chunked.extend(std::iter::repeat_n(b'[', 256));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (chunk, _s3) = serve_raw(None, chunked, Duration::ZERO).await;
    let c = client(&format!("http://{chunk}"), None, calls.clone()).with_limits(limits);
    let e = c.get::<Value>("observations", "/", "").await.unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");

    // Not HTTP at all.
    let (garbage, _s4) = serve_raw(
        None,
        b"\x00\x01SSH-2.0-nonsense\r\n\r\n".to_vec(),
        Duration::ZERO,
    )
    .await;
    let c = client(&format!("http://{garbage}"), None, calls.clone()).with_limits(limits);
    let e = c.get::<Value>("observations", "/", "").await.unwrap_err();
    assert!(matches!(e, CallError::BadAnswer(_)), "{e}");

    // HTTP, but not the JSON asked for.
    let (notjson, _s5) = serve_raw(
        None,
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{{{{{".to_vec(),
        Duration::ZERO,
    )
    .await;
    let c = client(&format!("http://{notjson}"), None, calls.clone()).with_limits(limits);
    let e = c
        .get::<Vec<u64>>("observations", "/", "")
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::BadAnswer(_)), "{e}");

    // A refusal: the status and the start of its text.
    let (denied, _s6) = serve_raw(
        None,
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 13\r\n\r\nbad token\x07\r\n\r\n".to_vec(),
        Duration::ZERO,
    )
    .await;
    let c = client(&format!("http://{denied}"), None, calls.clone()).with_limits(limits);
    let e = c.get::<Value>("observations", "/", "").await.unwrap_err();
    assert_eq!(
        e,
        CallError::Http {
            status: 401,
            said: "bad token".into()
        }
    );

    let got = |r: &str| {
        counter
            .with_label_values(&["abroad", "observations", r])
            .get()
    };
    assert_eq!(got("timeout"), 1);
    assert_eq!(got("bad_answer"), 4);
    assert_eq!(got("http_error"), 1);
}

#[test]
fn setup_refuses_other_schemes_and_empty_ca_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let url = Url::parse("https://vps.example:9898").unwrap();
    let e = PeerClient::new(
        "p",
        &url,
        Secret::new("t".into()),
        Some(&empty),
        Calls::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    let ftp = Url::parse("ftp://vps.example/").unwrap();
    let e =
        PeerClient::new("p", &ftp, Secret::new("t".into()), None, Calls::default()).unwrap_err();
    assert!(e.to_string().contains("use http or https"), "{e}");
    let c = PeerClient::new(
        "p",
        &url,
        Secret::new("zz-secret-zz".into()),
        None,
        Calls::default(),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("zz-secret-zz"), "{c:?}");
    assert_eq!(c.shown(), "https://vps.example:9898");
}
