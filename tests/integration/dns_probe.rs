//! DNS probe against test servers on loopback: UDP, TCP, DoT and DoH.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::configs::{config_with, target};
use crate::harness::servers::{
    HttpServer, Leaf, Reply, TestPki, dns_server, dns_spec, doh, with_ca_file, with_tls_name,
};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record};
use linkwatch::config::{DnsServer, DnsSpec, DnsTransport, TargetSpec};
use linkwatch::probe::dns::DnsProber;
use linkwatch::probe::{Observation, Outcome, Phase, Reason};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// What the test server does for a question name.
enum Script {
    Answer(Vec<u8>),
    Silent,
}

/// The test zone: `ok.test` A 192.0.2.1 + 192.0.2.2, `nx.test` NXDOMAIN,
/// `fail.test` SERVFAIL, `silent.test` no reply, `garbage.test` junk bytes,
/// `wrongid.test` a valid reply with another id, `other.test` a reply for another name.
fn script(query: &[u8]) -> Script {
    let Ok(request) = Message::from_vec(query) else {
        return Script::Silent;
    };
    let question = request.queries[0].clone();
    let name = question.name().to_ascii().to_ascii_lowercase();
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    match name.as_str() {
        "ok.test." => {
            for last in [1, 2] {
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
                ));
            }
        }
        "nx.test." => reply.metadata.response_code = ResponseCode::NXDomain,
        "fail.test." => reply.metadata.response_code = ResponseCode::ServFail,
        "silent.test." => return Script::Silent,
        "garbage.test." => return Script::Answer(b"\x13\x37this is not DNS".to_vec()),
        "wrongid.test." => reply.metadata.id = request.metadata.id.wrapping_add(1),
        "other.test." => {
            reply.queries.clear();
            let mut q = question.clone();
            q.set_name(Name::from_ascii("somewhere.else.").unwrap());
            reply.add_query(q);
        }
        _ => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    Script::Answer(reply.to_vec().unwrap())
}

struct Server {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn udp_server() -> Server {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&queries);
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            if let Script::Answer(reply) = script(&buf[..n]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    Server {
        addr,
        queries,
        task,
    }
}

async fn tcp_server(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&queries);
    let acceptor = tls.map(TlsAcceptor::from);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let counter = Arc::clone(&counter);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            serve_tcp(s, &counter).await;
                        }
                    }
                    None => serve_tcp(tcp, &counter).await,
                }
            });
        }
    });
    Server {
        addr,
        queries,
        task,
    }
}

async fn serve_tcp<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, counter: &AtomicUsize) {
    let Ok(len) = s.read_u16().await else { return };
    let mut query = vec![0u8; usize::from(len)];
    if s.read_exact(&mut query).await.is_err() {
        return;
    }
    counter.fetch_add(1, Ordering::SeqCst);
    match script(&query) {
        Script::Answer(reply) => {
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            let _ = s.write_all(&framed).await;
            let _ = s.flush().await;
            let _ = s.shutdown().await;
        }
        Script::Silent => std::future::pending::<()>().await,
    }
}

async fn probe(spec: DnsSpec, timeout: Duration) -> Observation {
    let t = target("dns", TargetSpec::Dns(Box::new(spec.clone())));
    let prober = DnsProber::new(&config_with(vec![t.clone()])).unwrap();
    prober.probe(0, &t, &spec, Instant::now() + timeout).await
}

fn error(report: &Observation) -> (Reason, String) {
    match &report.outcome {
        Outcome::Error(e) => (e.reason, e.detail.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The common checks, run for one transport against `server`.
async fn check_transport(server: DnsServer, transport: DnsTransport, ca: Option<&TestPki>) {
    let spec = |q: &str| {
        dns_spec(
            with_ca_file(server.clone(), ca.map(|p| p.ca_file.clone())),
            q,
        )
    };
    let t = Duration::from_secs(2);

    let mut ok = spec("ok.test");
    ok.expect = vec!["192.0.2.2".into(), "192.0.2.1".into()];
    ok.min_answers = 2;
    let report = probe(ok.clone(), t).await;
    let Outcome::Success { duration, phases } = report.outcome else {
        panic!("{transport:?}: {report:?}");
    };
    assert!(duration > Duration::ZERO);
    assert!(phases.get(Phase::Resolve).is_some());
    assert_eq!(phases.get(Phase::FirstByte), None);
    assert_eq!(phases.get(Phase::Transfer), None);
    match transport {
        DnsTransport::Udp => assert_eq!(phases.get(Phase::Connect), None),
        DnsTransport::Tcp => assert!(phases.get(Phase::Connect).is_some()),
        DnsTransport::Tls | DnsTransport::Https => {
            assert!(phases.get(Phase::Connect).is_some());
            assert!(phases.get(Phase::Tls).is_some());
            assert_eq!(
                report.info.cert_not_after,
                Some(crate::harness::servers::LEAF_NOT_AFTER)
            );
        }
    }
    assert_eq!(report.info.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(report.info.answers, ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(report.info.peer, Some("127.0.0.1".parse().unwrap()));

    let mut missing = ok.clone();
    missing.expect = vec!["192.0.2.9".into()];
    let (r, detail) = error(&probe(missing, t).await);
    assert_eq!(r, Reason::AnswerMismatch);
    assert!(detail.contains("192.0.2.9"), "{detail}");

    let mut too_few = ok.clone();
    too_few.expect.clear();
    too_few.min_answers = 3;
    assert_eq!(error(&probe(too_few, t).await).0, Reason::AnswerMismatch);

    let report = probe(spec("nx.test"), t).await;
    let (r, detail) = error(&report);
    assert_eq!(r, Reason::Rcode);
    assert!(detail.contains("NXDOMAIN"), "{detail}");
    assert_eq!(report.info.rcode.as_deref(), Some("NXDOMAIN"));

    let mut expect_nx = spec("nx.test");
    expect_nx.expect_rcode = ResponseCode::NXDomain;
    assert!(probe(expect_nx, t).await.outcome.is_success());

    let (r, detail) = error(&probe(spec("fail.test"), t).await);
    assert_eq!(r, Reason::Rcode);
    assert!(detail.contains("SERVFAIL"), "{detail}");

    for q in ["garbage.test", "wrongid.test", "other.test"] {
        let (r, detail) = error(&probe(spec(q), t).await);
        assert_eq!(r, Reason::Malformed, "{q}: {detail}");
    }

    let start = std::time::Instant::now();
    let report = probe(spec("silent.test"), Duration::from_millis(300)).await;
    assert_eq!(report.outcome, Outcome::Timeout { phase: None });
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn dns_over_udp() {
    let server = udp_server().await;
    check_transport(
        dns_server(server.addr, DnsTransport::Udp),
        DnsTransport::Udp,
        None,
    )
    .await;
    // One datagram per probe: 10 probes, 10 queries, no retries.
    assert_eq!(server.queries.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn dns_over_tcp() {
    let server = tcp_server(None).await;
    check_transport(
        dns_server(server.addr, DnsTransport::Tcp),
        DnsTransport::Tcp,
        None,
    )
    .await;
    assert_eq!(server.queries.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn dns_over_tls() {
    let pki = TestPki::new(Leaf::Good);
    let server = tcp_server(Some(pki.server_config.clone())).await;
    check_transport(
        dns_server(server.addr, DnsTransport::Tls),
        DnsTransport::Tls,
        Some(&pki),
    )
    .await;

    // Without the CA the handshake fails; with a wrong tls_name too.
    let dot = dns_server(server.addr, DnsTransport::Tls);
    let spec = dns_spec(dot.clone(), "ok.test");
    let (r, detail) = error(&probe(spec, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::Tls);
    assert!(detail.contains("unknown issuer"), "{detail}");
    let trusted = with_ca_file(dot, Some(pki.ca_file.clone()));
    let named = dns_spec(
        with_tls_name(trusted.clone(), "dns.example.test"),
        "ok.test",
    );
    let (r, detail) = error(&probe(named, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::Tls);
    assert!(detail.contains("name mismatch"), "{detail}");
    let named = dns_spec(with_tls_name(trusted, "localhost"), "ok.test");
    assert!(
        probe(named, Duration::from_secs(2))
            .await
            .outcome
            .is_success()
    );
}

#[tokio::test]
async fn dns_over_https() {
    let pki = TestPki::new(Leaf::Good);
    let server = HttpServer::start(Some(pki.server_config.clone()), |req, _| {
        let ok = req.method == "POST"
            && req.path == "/dns-query"
            && req
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/dns-message");
        if !ok {
            return crate::harness::servers::response("400 Bad Request", &[], b"");
        }
        match script(&req.body) {
            Script::Answer(reply) => crate::harness::servers::response(
                "200 OK",
                &[("Content-Type", "application/dns-message")],
                &reply,
            ),
            Script::Silent => Reply::Never,
        }
    })
    .await;
    let url = server.url("https", "/dns-query");
    check_transport(doh(url), DnsTransport::Https, Some(&pki)).await;

    let wrong_path = dns_spec(
        with_ca_file(
            doh(server.url("https", "/other")),
            Some(pki.ca_file.clone()),
        ),
        "ok.test",
    );
    let (r, detail) = error(&probe(wrong_path, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::StatusMismatch);
    assert!(detail.contains("400"), "{detail}");
}

#[tokio::test]
async fn udp_port_unreachable_is_connect_refused() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    drop(socket);
    let spec = dns_spec(dns_server(addr, DnsTransport::Udp), "ok.test");
    let (r, detail) = error(&probe(spec, Duration::from_secs(2)).await);
    assert_eq!(r, Reason::ConnectRefused, "{detail}");
}

#[tokio::test]
async fn tcp_connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let spec = dns_spec(dns_server(addr, DnsTransport::Tcp), "ok.test");
    assert_eq!(
        error(&probe(spec, Duration::from_secs(2)).await).0,
        Reason::ConnectRefused
    );
}

#[tokio::test]
async fn missing_dot_ca_file_fails_setup() {
    let spec = dns_spec(
        with_ca_file(
            dns_server("127.0.0.1:853".parse().unwrap(), DnsTransport::Tls),
            Some("/nonexistent/dot-ca.pem".into()),
        ),
        "ok.test",
    );
    let config = config_with(vec![target("dot", TargetSpec::Dns(Box::new(spec)))]);
    let Err(err) = DnsProber::new(&config) else {
        panic!("setup succeeded");
    };
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("/nonexistent/dot-ca.pem"), "{cause}");
}
