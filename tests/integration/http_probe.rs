//! HTTP(S) probe against real servers on loopback started by each test.

use std::time::Duration;

use crate::harness::configs::{config_with, target};
use crate::harness::servers::{HttpServer, Leaf, Reply, TestPki, http_spec, response};
use linkwatch::config::{BodyMatch, HttpMethod, HttpSpec, TargetSpec};
use linkwatch::probe::http::{HttpProber, USER_AGENT};
use linkwatch::probe::{Observation, Outcome, Phase, Reason};
use tokio::time::Instant;

async fn probe(spec: HttpSpec, timeout: Duration) -> Observation {
    let t = target("web", TargetSpec::Http(Box::new(spec.clone())));
    let prober = HttpProber::new(&config_with(vec![t.clone()])).unwrap();
    prober.probe(0, &t, &spec, Instant::now() + timeout).await
}

fn reason(report: &Observation) -> (Reason, String) {
    match &report.outcome {
        Outcome::Error(e) => (e.reason, e.detail.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn phases(report: &Observation) -> linkwatch::probe::Phases {
    match &report.outcome {
        Outcome::Success { phases, .. } => *phases,
        other => panic!("expected success, got {other:?} ({:?})", report.info),
    }
}

async fn hello_server(tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> HttpServer {
    HttpServer::start(tls, |_, _| response("200 OK", &[], b"hello world")).await
}

#[tokio::test]
async fn http_get_succeeds_with_phases_and_throughput() {
    let server = hello_server(None).await;
    let report = probe(
        http_spec(server.url("http", "/x?y=1")),
        Duration::from_secs(2),
    )
    .await;
    let p = phases(&report);
    for phase in [
        Phase::Resolve,
        Phase::Connect,
        Phase::FirstByte,
        Phase::Transfer,
    ] {
        assert!(p.get(phase).is_some(), "missing {phase:?}");
    }
    assert_eq!(p.get(Phase::Tls), None);
    assert_eq!(report.info.status, Some(200));
    assert_eq!(report.info.body_bytes, Some(11));
    assert_eq!(report.info.peer, Some("127.0.0.1".parse().unwrap()));
    assert!(report.info.bytes_per_second.unwrap() > 0.0);
    assert_eq!(report.info.cert_not_after, None);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/x?y=1");
    let ua = format!("user-agent: {USER_AGENT}");
    assert!(
        seen[0].head.to_ascii_lowercase().contains(&ua),
        "{}",
        seen[0].head
    );
}

#[tokio::test]
async fn headers_override_the_user_agent() {
    let server = hello_server(None).await;
    let mut spec = http_spec(server.url("http", "/"));
    spec.headers = vec![
        (
            http::header::USER_AGENT,
            http::HeaderValue::from_static("probe-test"),
        ),
        (
            http::HeaderName::from_static("x-extra"),
            http::HeaderValue::from_static("1"),
        ),
    ];
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    let head = server.seen.lock().unwrap()[0].head.to_ascii_lowercase();
    assert!(head.contains("user-agent: probe-test"), "{head}");
    assert!(!head.contains("linkwatch/"), "{head}");
    assert!(head.contains("x-extra: 1"), "{head}");
}

#[tokio::test]
async fn https_trusted_via_ca_file_reports_tls_phase_and_expiry() {
    let pki = TestPki::new(Leaf::Good);
    let server = hello_server(Some(pki.server_config.clone())).await;
    let mut spec = http_spec(server.url("https", "/"));
    spec.ca_file = Some(pki.ca_file.clone());
    let report = probe(spec, Duration::from_secs(2)).await;
    let p = phases(&report);
    assert!(p.get(Phase::Tls).is_some());
    assert_eq!(report.info.status, Some(200));
    // Leaf (2039) expires before the CA (2040), both are in the chain sent.
    assert_eq!(
        report.info.cert_not_after,
        Some(crate::harness::servers::LEAF_NOT_AFTER)
    );
}

#[tokio::test]
async fn https_by_name_uses_sni_of_the_url_host() {
    let pki = TestPki::new(Leaf::Good);
    let server = hello_server(Some(pki.server_config.clone())).await;
    let url = url::Url::parse(&format!("https://localhost:{}/", server.addr.port())).unwrap();
    let mut spec = http_spec(url);
    spec.ca_file = Some(pki.ca_file.clone());
    spec.ip_version = linkwatch::config::IpVersion::V4;
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
}

#[tokio::test]
async fn https_without_the_ca_is_rejected_as_unknown_issuer() {
    let pki = TestPki::new(Leaf::Good);
    let server = hello_server(Some(pki.server_config.clone())).await;
    let report = probe(http_spec(server.url("https", "/")), Duration::from_secs(2)).await;
    let (r, detail) = reason(&report);
    assert_eq!(r, Reason::Tls);
    assert!(detail.contains("unknown issuer"), "{detail}");
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn https_expired_and_wrong_name_certificates_fail_with_cause() {
    for (leaf, cause) in [
        (Leaf::Expired, "expired"),
        (Leaf::WrongName, "name mismatch"),
    ] {
        let pki = TestPki::new(leaf);
        let server = hello_server(Some(pki.server_config.clone())).await;
        let mut spec = http_spec(server.url("https", "/"));
        spec.ca_file = Some(pki.ca_file.clone());
        let (r, detail) = reason(&probe(spec, Duration::from_secs(2)).await);
        assert_eq!(r, Reason::Tls);
        assert!(detail.contains(cause), "{detail}");
    }
}

#[tokio::test]
async fn tls_verify_false_accepts_an_untrusted_certificate() {
    let pki = TestPki::new(Leaf::Expired);
    let server = hello_server(Some(pki.server_config.clone())).await;
    let mut spec = http_spec(server.url("https", "/"));
    spec.tls_verify = false;
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
}

#[tokio::test]
async fn missing_or_bad_ca_file_fails_setup_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a PEM file\n").unwrap();
    for path in [missing, empty] {
        let mut spec = http_spec(url::Url::parse("https://127.0.0.1:1/").unwrap());
        spec.ca_file = Some(path.clone());
        let config = config_with(vec![target("web", TargetSpec::Http(Box::new(spec)))]);
        let Err(err) = HttpProber::new(&config) else {
            panic!("setup with {} succeeded", path.display());
        };
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("web"), "{chain}");
        assert!(chain.contains(&path.display().to_string()), "{chain}");
    }
}

#[tokio::test]
async fn status_204_passes_and_500_is_a_status_mismatch() {
    let server = HttpServer::start(None, |req, _| match req.path.as_str() {
        "/204" => response("204 No Content", &[], b""),
        _ => response("500 Internal Server Error", &[], b"boom"),
    })
    .await;
    let report = probe(
        http_spec(server.url("http", "/204")),
        Duration::from_secs(2),
    )
    .await;
    assert!(report.outcome.is_success(), "{report:?}");
    assert_eq!(report.info.status, Some(204));
    assert_eq!(report.info.bytes_per_second, None);

    let report = probe(
        http_spec(server.url("http", "/500")),
        Duration::from_secs(2),
    )
    .await;
    let (r, detail) = reason(&report);
    assert_eq!(r, Reason::StatusMismatch);
    assert!(detail.contains("500"), "{detail}");
    assert_eq!(report.info.status, Some(500));
    assert_eq!(report.info.bytes_per_second, None);

    let mut spec = http_spec(server.url("http", "/204"));
    spec.expect_status = vec![200];
    let (r, _) = reason(&probe(spec, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::StatusMismatch);
}

#[tokio::test]
async fn body_match_substring_and_regex() {
    let server = HttpServer::start(None, |_, _| {
        response("200 OK", &[], b"<html>Captive portal: please log in</html>")
    })
    .await;
    let mut spec = http_spec(server.url("http", "/"));
    spec.body_match = Some(BodyMatch::Substring("Success".into()));
    let (r, detail) = reason(&probe(spec.clone(), Duration::from_secs(2)).await);
    assert_eq!(r, Reason::BodyMismatch);
    assert!(detail.contains("Success"), "{detail}");

    spec.body_match = Some(BodyMatch::Regex(regex::Regex::new(r"portal: \w+").unwrap()));
    assert!(
        probe(spec.clone(), Duration::from_secs(2))
            .await
            .outcome
            .is_success()
    );

    spec.body_match = Some(BodyMatch::Substring("log in".into()));
    spec.max_body = 10; // the substring lies beyond the bytes read
    let (r, _) = reason(&probe(spec, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::BodyMismatch);
}

async fn redirect_server() -> HttpServer {
    HttpServer::start(None, |req, addr| {
        let path = req.path.as_str();
        if let Some(n) = path.strip_prefix("/r/") {
            let n: u32 = n.parse().unwrap();
            if n == 0 {
                return response("200 OK", &[], b"arrived");
            }
            let next = format!("/r/{}", n - 1);
            return response("302 Found", &[("Location", &next)], b"");
        }
        if path == "/abs" {
            let next = format!("http://127.0.0.1:{}/r/1", addr.port());
            return response("301 Moved Permanently", &[("Location", &next)], b"");
        }
        response("404 Not Found", &[], b"")
    })
    .await
}

#[tokio::test]
async fn redirect_chain_within_the_limit_is_followed() {
    let server = redirect_server().await;
    let mut spec = http_spec(server.url("http", "/r/3"));
    spec.follow_redirects = 3;
    spec.body_match = Some(BodyMatch::Substring("arrived".into()));
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    assert_eq!(report.info.status, Some(200));
    assert_eq!(server.seen.lock().unwrap().len(), 4);

    let mut spec = http_spec(server.url("http", "/abs"));
    spec.follow_redirects = 2;
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    let paths: Vec<String> = server.seen.lock().unwrap()[4..]
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(paths, ["/abs", "/r/1", "/r/0"]);
}

#[tokio::test]
async fn redirect_chain_beyond_the_limit_fails_and_zero_means_just_a_status() {
    let server = redirect_server().await;
    let mut spec = http_spec(server.url("http", "/r/4"));
    spec.follow_redirects = 3;
    let report = probe(spec.clone(), Duration::from_secs(2)).await;
    let (r, _) = reason(&report);
    assert_eq!(r, Reason::TooManyRedirects);
    assert_eq!(report.info.status, Some(302));

    spec.follow_redirects = 0;
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    assert_eq!(report.info.status, Some(302));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_in_first_byte() {
    let server = HttpServer::start(None, |_, _| Reply::Never).await;
    let start = std::time::Instant::now();
    let report = probe(
        http_spec(server.url("http", "/")),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(
        report.outcome,
        Outcome::Timeout {
            phase: Some(Phase::FirstByte)
        }
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_huge_body_is_capped_at_max_body() {
    let server = HttpServer::start(None, |_, _| Reply::Huge).await;
    let mut spec = http_spec(server.url("http", "/"));
    spec.max_body = 256 * 1024;
    let start = std::time::Instant::now();
    let report = probe(spec, Duration::from_secs(5)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    assert_eq!(report.info.body_bytes, Some(256 * 1024));
    assert!(report.info.bytes_per_second.unwrap() > 0.0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_trickling_body_times_out_in_transfer() {
    let server = HttpServer::start(None, |_, _| Reply::Trickle {
        len: 1000,
        every: Duration::from_millis(50),
    })
    .await;
    let report = probe(
        http_spec(server.url("http", "/")),
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(
        report.outcome,
        Outcome::Timeout {
            phase: Some(Phase::Transfer)
        }
    );
    let read = report.info.body_bytes.unwrap();
    assert!(read > 0 && read < 1000, "{read}");
    assert_eq!(report.info.bytes_per_second, None);
}

#[tokio::test]
async fn head_requests_read_no_body() {
    let server = HttpServer::start(None, |_, _| {
        // Content-Length describes the GET body; a HEAD response carries none.
        Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_vec())
    })
    .await;
    let mut spec = http_spec(server.url("http", "/"));
    spec.method = HttpMethod::Head;
    let report = probe(spec, Duration::from_secs(2)).await;
    assert!(report.outcome.is_success(), "{report:?}");
    assert_eq!(report.info.body_bytes, Some(0));
    assert_eq!(server.seen.lock().unwrap()[0].method, "HEAD");
}

#[tokio::test]
async fn connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let (r, _) = reason(&probe(http_spec(url), Duration::from_secs(2)).await);
    assert_eq!(r, Reason::ConnectRefused);
}

#[tokio::test]
async fn garbage_and_early_close_are_malformed_and_reset() {
    let server = HttpServer::start(None, |req, _| match req.path.as_str() {
        "/garbage" => Reply::Raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
        _ => Reply::Raw(Vec::new()),
    })
    .await;
    let (r, detail) = reason(
        &probe(
            http_spec(server.url("http", "/garbage")),
            Duration::from_secs(2),
        )
        .await,
    );
    assert_eq!(r, Reason::Malformed, "{detail}");
    let (r, detail) = reason(
        &probe(
            http_spec(server.url("http", "/close")),
            Duration::from_secs(2),
        )
        .await,
    );
    assert_eq!(r, Reason::ConnectionReset, "{detail}");
}

// An unresolvable name is tested in tests/netns_daemon.rs, inside a namespace
// whose resolv.conf points at its own loopback: resolving here would send a
// DNS query to the host's real resolver.

#[tokio::test]
async fn a_full_accept_queue_times_out_in_connect() {
    // A listener that never accepts: once its queue is full the kernel drops
    // further SYNs, so the connect hangs like a silent drop on the path.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let url = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let report = probe(http_spec(url), Duration::from_millis(300)).await;
    assert_eq!(
        report.outcome,
        Outcome::Timeout {
            phase: Some(Phase::Connect)
        }
    );
}
