//! TLS interference checks of HTTP targets (issue 21): the issuer and SPKI of
//! every HTTPS probe, `pin_spki`/`expect_issuer`, issuers learned in
//! `tls_issuers.json` (`tls_intercepted`), resets after the hello and after
//! the request, `sni_control` (`sni_blocked`) and block pages.
//!
//! Loopback tests drive the prober against small servers started here; the
//! namespace test puts real middleboxes (iptables DNAT to a TLS terminator
//! with its own CA, an `-m string` reset filter, a DNAT to a block page) on
//! the ISP hop between the prober and the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use linkwatch::config::interference::BlockpageRule;
use linkwatch::config::{Config, HttpSpec, TargetSpec};
use linkwatch::interference::{Check, Extra};
use linkwatch::probe::http::{HttpProber, ISSUERS_FILE};
use linkwatch::probe::{Observation, Outcome, Phase, Reason};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::harness::configs::{config_with, target};
use crate::harness::netns::{Netns, link};
use crate::harness::servers::{HttpServer, http_spec, response};

// ---------------------------------------------------------------- test PKI

/// A CA with a chosen name and a leaf it signed for `names`, as PEM files.
struct NamedPki {
    ca_pem: String,
    leaf_pem: String,
    key_pem: String,
}

impl NamedPki {
    fn new(ca_name: &str, names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::OrganizationName, "linkwatch tests");
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf.distinguished_name.push(DnType::CommonName, names[0]);
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2039, 1, 1);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// The leaf's SPKI fingerprint, computed independently of the prober
    /// (rcgen's SubjectPublicKeyInfo, SHA-256, base64).
    fn spki(&self) -> String {
        let key = KeyPair::from_pem(&self.key_pem).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        b64(&sha2_digest(&spki))
    }

    fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf, PathBuf) {
        let ca = dir.join(format!("{stem}-ca.pem"));
        let leaf = dir.join(format!("{stem}-leaf.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&ca, &self.ca_pem).unwrap();
        std::fs::write(&leaf, &self.leaf_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (ca, leaf, key)
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        server_config_from(self.leaf_pem.as_bytes(), self.key_pem.as_bytes())
    }
}

fn server_config_from(leaf_pem: &[u8], key_pem: &[u8]) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(leaf_pem)
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from_pem_slice(key_pem).unwrap());
    Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

fn sha2_digest(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

// ------------------------------------------------------- loopback servers

/// What a loopback TLS server does with a connection, by its ClientHello.
#[derive(Clone, Copy)]
enum Hello {
    /// Reset (RST) connections whose ClientHello names `localhost`; serve others.
    ResetLocalhost,
    /// Never answer a ClientHello naming `localhost`; serve others.
    SilentLocalhost,
    /// Reset every connection once its ClientHello arrived.
    ResetAll,
    /// Complete the handshake, read the request, then reset.
    ResetAfterRequest,
}

/// A TLS server on 127.0.0.1 that treats connections as `mode` says and
/// answers `200 OK` on the ones it serves.
async fn hello_server(
    mode: Hello,
    tls: Arc<ServerConfig>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move { serve_hello(mode, tcp, acceptor).await });
        }
    });
    (addr, task)
}

async fn serve_hello(mode: Hello, tcp: TcpStream, acceptor: TlsAcceptor) {
    let mut hello = [0u8; 2048];
    let mut n = 0;
    for _ in 0..50 {
        n = tcp.peek(&mut hello).await.unwrap_or(0);
        if n > 5 && n >= 5 + usize::from(u16::from_be_bytes([hello[3], hello[4]])) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let names_localhost = hello[..n].windows(9).any(|w| w == b"localhost");
    let reset = |tcp: TcpStream| {
        let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        drop(tcp);
    };
    match mode {
        Hello::ResetAll => return reset(tcp),
        Hello::ResetLocalhost if names_localhost => return reset(tcp),
        Hello::SilentLocalhost if names_localhost => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        _ => {}
    }
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut buf = [0u8; 4096];
    let _ = tls.read(&mut buf).await;
    if matches!(mode, Hello::ResetAfterRequest) {
        let (tcp, _) = tls.into_inner();
        return reset(tcp);
    }
    let _ = tls
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await;
    let _ = tls.shutdown().await;
}

// ---------------------------------------------------------------- helpers

fn probe_config(name: &str, spec: &HttpSpec, data_dir: Option<&Path>) -> Config {
    let mut config = config_with(vec![target(name, TargetSpec::Http(Box::new(spec.clone())))]);
    if let Some(d) = data_dir {
        config.daemon.data_dir = d.to_path_buf();
    }
    config
}

async fn probe_with(config: &Config, timeout: Duration) -> Observation {
    let t = config.targets[0].clone();
    let TargetSpec::Http(spec) = &t.spec else {
        unreachable!()
    };
    let prober = HttpProber::new(config).unwrap();
    prober.probe(0, &t, spec, Instant::now() + timeout).await
}

async fn probe(spec: HttpSpec, data_dir: Option<&Path>) -> Observation {
    probe_with(
        &probe_config("web", &spec, data_dir),
        Duration::from_secs(2),
    )
    .await
}

fn reason(o: &Observation) -> Reason {
    match &o.outcome {
        Outcome::Error(e) => e.reason,
        other => panic!("expected an error, got {other:?} ({:?})", o.info),
    }
}

fn detail(o: &Observation) -> String {
    match &o.outcome {
        Outcome::Error(e) => e.detail.clone(),
        _ => String::new(),
    }
}

fn https(addr: SocketAddr, host: &str, ca: Option<&Path>) -> HttpSpec {
    let mut spec = http_spec(url::Url::parse(&format!("https://{host}:{}/", addr.port())).unwrap());
    spec.ca_file = ca.map(Path::to_path_buf);
    spec
}

// ------------------------------------------------------- loopback tests

#[tokio::test]
async fn https_probes_record_issuer_and_spki_also_when_validation_fails() {
    let pki = NamedPki::new("Origin CA", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path(), "origin");
    let server = HttpServer::start(Some(pki.server_config()), |_, _| {
        response("200 OK", &[], b"ok")
    })
    .await;
    let ok = probe(https(server.addr, "localhost", Some(&ca)), None).await;
    assert!(ok.outcome.is_success(), "{ok:?}");
    assert_eq!(
        ok.info.tls_issuer.as_deref(),
        Some("CN=Origin CA, O=linkwatch tests")
    );
    assert_eq!(ok.info.tls_spki.as_deref(), Some(pki.spki().as_str()));
    assert_eq!(ok.info.evidence, None);

    // Without the CA the chain fails validation: the facts are still there.
    let bad = probe(https(server.addr, "localhost", None), None).await;
    assert_eq!(reason(&bad), Reason::Tls, "{}", detail(&bad));
    assert_eq!(
        bad.info.tls_issuer.as_deref(),
        Some("CN=Origin CA, O=linkwatch tests")
    );
    assert_eq!(bad.info.tls_spki, ok.info.tls_spki);
    assert_eq!(
        bad.info.evidence, None,
        "nothing learned yet: no interception"
    );
}

#[tokio::test]
async fn pin_spki_and_expect_issuer_fire_on_another_key_or_issuer() {
    let pki = NamedPki::new("Origin CA", &["localhost"]);
    let other = NamedPki::new("Origin CA", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path(), "origin");
    let server = HttpServer::start(Some(pki.server_config()), |_, _| {
        response("200 OK", &[], b"ok")
    })
    .await;
    let mut spec = https(server.addr, "localhost", Some(&ca));
    spec.pin_spki = vec![pki.spki()];
    assert!(probe(spec.clone(), None).await.outcome.is_success());
    spec.pin_spki = vec![other.spki()];
    let o = probe(spec.clone(), None).await;
    assert_eq!(reason(&o), Reason::TlsIntercepted, "{}", detail(&o));
    let e = o.info.evidence.unwrap();
    assert_eq!(e.check, Check::TlsIntercepted);
    assert_eq!(e.name, "localhost");
    assert!(e.detail.contains("pin_spki"), "{}", e.detail);
    assert_eq!(
        e.raw,
        [
            "issuer: CN=Origin CA, O=linkwatch tests".to_string(),
            format!("spki: sha256/{}", pki.spki())
        ]
    );

    spec.pin_spki.clear();
    spec.expect_issuer = Some("linkwatch tests".into());
    assert!(probe(spec.clone(), None).await.outcome.is_success());
    spec.expect_issuer = Some("Let's Encrypt".into());
    let o = probe(spec, None).await;
    assert_eq!(reason(&o), Reason::TlsIntercepted, "{}", detail(&o));
    assert!(detail(&o).contains("CN=Origin CA"), "{}", detail(&o));
}

#[tokio::test]
async fn an_unseen_issuer_that_fails_validation_is_intercepted_and_a_rotation_is_learned() {
    let origin = NamedPki::new("Origin CA", &["localhost"]);
    let rotated = NamedPki::new("Rotated CA", &["localhost"]);
    let mitm = NamedPki::new("Interceptor CA", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (ca, _, _) = origin.write(dir.path(), "origin");
    let (rotated_ca, _, _) = rotated.write(dir.path(), "rotated");
    let both = dir.path().join("both.pem");
    std::fs::write(&both, format!("{}{}", origin.ca_pem, rotated.ca_pem)).unwrap();
    let serve = |pki: &NamedPki| {
        HttpServer::start(Some(pki.server_config()), |_, _| {
            response("200 OK", &[], b"ok")
        })
    };
    let real = serve(&origin).await;
    let proxy = serve(&mitm).await;
    let data_dir = Some(data.path());

    // Before anything is learned, a failed validation is a plain TLS failure.
    let o = probe(https(proxy.addr, "localhost", Some(&both)), data_dir).await;
    assert_eq!(reason(&o), Reason::Tls, "{}", detail(&o));
    // Learn the usual issuer from a validated chain.
    assert!(
        probe(https(real.addr, "localhost", Some(&both)), data_dir)
            .await
            .outcome
            .is_success()
    );
    let file = std::fs::read_to_string(data.path().join(ISSUERS_FILE)).unwrap();
    assert!(file.contains("CN=Origin CA, O=linkwatch tests"), "{file}");
    // The interceptor's chain fails validation from an issuer never seen.
    let o = probe(https(proxy.addr, "localhost", Some(&both)), data_dir).await;
    assert_eq!(reason(&o), Reason::TlsIntercepted, "{}", detail(&o));
    let e = o.info.evidence.unwrap();
    assert!(e.detail.contains("CN=Interceptor CA"), "{}", e.detail);
    assert!(e.detail.contains("usual: CN=Origin CA"), "{}", e.detail);
    assert!(e.raw[0].contains("Interceptor CA"), "{:?}", e.raw);
    // A CA rotation: another issuer whose chain validates is learned, not a failure.
    let moved = serve(&rotated).await;
    assert!(
        probe(https(moved.addr, "localhost", Some(&both)), data_dir)
            .await
            .outcome
            .is_success()
    );
    let file = std::fs::read_to_string(data.path().join(ISSUERS_FILE)).unwrap();
    assert!(file.contains("CN=Rotated CA"), "{file}");
    // An issuer learned once is no sign of interception when it fails later
    // (here: its CA is not trusted any more).
    let o = probe(https(moved.addr, "localhost", Some(&ca)), data_dir).await;
    assert_eq!(reason(&o), Reason::Tls, "{}", detail(&o));
    drop(rotated_ca);
}

#[tokio::test]
async fn resets_after_the_hello_and_after_the_request_and_tls_timeouts_are_told_apart() {
    let pki = NamedPki::new("Origin CA", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path(), "origin");

    let (addr, _a) = hello_server(Hello::ResetAll, pki.server_config()).await;
    let o = probe(https(addr, "localhost", Some(&ca)), None).await;
    assert_eq!(reason(&o), Reason::ResetAfterHello, "{}", detail(&o));
    assert_eq!(o.info.extra, None, "no sni_control: no extra connection");

    let (addr, _b) = hello_server(Hello::SilentLocalhost, pki.server_config()).await;
    let o = probe_with(
        &probe_config("web", &https(addr, "localhost", Some(&ca)), None),
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(
        o.outcome,
        Outcome::Timeout {
            phase: Some(Phase::Tls)
        }
    );

    let (addr, _c) = hello_server(Hello::ResetAfterRequest, pki.server_config()).await;
    let o = probe(https(addr, "localhost", Some(&ca)), None).await;
    assert_eq!(reason(&o), Reason::ResetAfterRequest, "{}", detail(&o));
}

#[tokio::test]
async fn sni_control_tells_name_filtering_from_a_server_that_refuses_everyone() {
    let pki = NamedPki::new("Origin CA", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path(), "origin");
    let with_control = |addr| {
        let mut s = https(addr, "localhost", Some(&ca));
        s.sni_control = Some("control.test".into());
        s
    };

    // Reset after a hello naming localhost; the control name is served.
    let (addr, _a) = hello_server(Hello::ResetLocalhost, pki.server_config()).await;
    let o = probe(with_control(addr), None).await;
    assert_eq!(reason(&o), Reason::SniBlocked, "{}", detail(&o));
    assert_eq!(o.info.extra, Some(Extra::SniControl));
    let e = o.info.evidence.clone().unwrap();
    assert_eq!(e.check, Check::SniBlocked);
    assert_eq!(e.name, "localhost");
    assert!(e.detail.contains("reset_after_hello"), "{}", e.detail);
    assert!(e.detail.contains("control.test"), "{}", e.detail);
    assert_eq!(e.raw.len(), 2, "{:?}", e.raw);
    assert!(
        e.raw[1].starts_with("control.test: handshake completed"),
        "{:?}",
        e.raw
    );

    // Silence after a hello naming localhost: the handshake gets half the
    // time, the control the rest.
    let (addr, _b) = hello_server(Hello::SilentLocalhost, pki.server_config()).await;
    let start = std::time::Instant::now();
    let o = probe_with(
        &probe_config("web", &with_control(addr), None),
        Duration::from_millis(1000),
    )
    .await;
    assert_eq!(reason(&o), Reason::SniBlocked, "{}", detail(&o));
    assert!(
        detail(&o).contains("no answer to the ClientHello"),
        "{}",
        detail(&o)
    );
    assert!(start.elapsed() < Duration::from_millis(1000));

    // A server that resets every name: not filtering, the reset stands.
    let (addr, _c) = hello_server(Hello::ResetAll, pki.server_config()).await;
    let o = probe(with_control(addr), None).await;
    assert_eq!(reason(&o), Reason::ResetAfterHello, "{}", detail(&o));
    assert_eq!(
        o.info.extra,
        Some(Extra::SniControl),
        "the control is counted"
    );
    assert_eq!(o.info.evidence, None);
    assert!(
        detail(&o).contains("sni_control control.test failed too"),
        "{}",
        detail(&o)
    );

    // A certificate failure is no reason to try the control.
    let server = HttpServer::start(Some(pki.server_config()), |_, _| {
        response("200 OK", &[], b"ok")
    })
    .await;
    let mut s = https(server.addr, "localhost", None);
    s.sni_control = Some("control.test".into());
    let o = probe(s, None).await;
    assert_eq!(reason(&o), Reason::Tls, "{}", detail(&o));
    assert_eq!(o.info.extra, None);
}

#[tokio::test]
async fn block_pages_match_the_targets_rules_then_the_shared_ones() {
    let server = HttpServer::start(None, |seen, _| match seen.path.as_str() {
        "/blocked" => response(
            "451 Unavailable For Legal Reasons",
            &[],
            b"<h1>Blocked by order of the regulator</h1>",
        ),
        "/portal" => response("200 OK", &[], b"Access to this resource is restricted"),
        _ => response("404 Not Found", &[], b"nothing here"),
    })
    .await;
    let rule = |status: Option<u16>, re: &str| BlockpageRule {
        status,
        body_regex: regex::Regex::new(re).unwrap(),
    };

    let mut spec = http_spec(server.url("http", "/blocked"));
    spec.blockpage = vec![rule(Some(451), "Blocked by order")];
    let o = probe(spec.clone(), None).await;
    assert_eq!(reason(&o), Reason::Blockpage, "{}", detail(&o));
    let e = o.info.evidence.unwrap();
    assert_eq!(e.check, Check::Blockpage);
    assert_eq!(e.name, "127.0.0.1");
    assert!(e.detail.contains("the target's blockpage"), "{}", e.detail);
    assert_eq!(e.raw[0], "status 451");
    assert!(
        e.raw[1].contains("Blocked by order of the regulator"),
        "{:?}",
        e.raw
    );

    // The shared rules apply to every target, after the target's own; a 200
    // that matches is a block page too.
    let mut config = probe_config("web", &http_spec(server.url("http", "/portal")), None);
    config.interference.blockpage = vec![rule(None, "(?i)access to this resource is restricted")];
    let o = probe_with(&config, Duration::from_secs(2)).await;
    assert_eq!(reason(&o), Reason::Blockpage, "{}", detail(&o));
    assert!(
        o.info
            .evidence
            .unwrap()
            .detail
            .contains("[interference] blockpage"),
    );

    // Not matching: the ordinary verdicts stand.
    let o = probe(http_spec(server.url("http", "/other")), None).await;
    assert_eq!(reason(&o), Reason::StatusMismatch, "{}", detail(&o));
    let mut spec = http_spec(server.url("http", "/other"));
    spec.blockpage = vec![rule(Some(451), "Blocked")];
    let o = probe(spec, None).await;
    assert_eq!(reason(&o), Reason::StatusMismatch, "{}", detail(&o));
    assert_eq!(o.info.evidence, None);
}

// ------------------------------------------------------ namespace test

/// Name of the in-namespace servers of the namespace test, as libtest knows it.
pub(crate) const INNER_SERVE: &str = "interference_tls::inner_tls_serve";
/// Name of the in-namespace prober of the namespace test.
const INNER_PROBE: &str = "interference_tls::inner_tls_probe";

/// The server address in `inet` (every name below points at it).
const SERVER: &str = "10.231.2.1";
/// The ISP's own address on the home link, where its middleboxes listen.
const ISP_LOCAL: &str = "10.231.1.1";
const NAMES: [&str; 4] = [
    "secure.example",
    "blocked.example",
    "allowed.example",
    "plain.example",
];

/// Servers, run in a namespace: `LWT_TLS_LISTEN` = `ADDR=LEAF,KEY` (TLS, 200
/// "ok") and `LWT_HTTP_LISTEN` = `ADDR=STATUS` (plain HTTP).
#[test]
#[ignore = "inner half: started inside a namespace by interference_tls"]
fn inner_tls_serve() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        if let Ok(spec) = std::env::var("LWT_TLS_LISTEN") {
            let (addr, files) = spec.split_once('=').unwrap();
            let (leaf, key) = files.split_once(',').unwrap();
            let config = server_config_from(&std::fs::read(leaf).unwrap(), &std::fs::read(key).unwrap());
            let acceptor = TlsAcceptor::from(config);
            let listener = TcpListener::bind(addr).await.unwrap();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else { return };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(mut tls) = acceptor.accept(tcp).await {
                            let mut buf = [0u8; 4096];
                            let _ = tls.read(&mut buf).await;
                            let _ = tls
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                                .await;
                            let _ = tls.shutdown().await;
                        }
                    });
                }
            }));
        }
        if let Ok(spec) = std::env::var("LWT_HTTP_LISTEN") {
            let (addr, status) = spec.split_once('=').unwrap();
            let body: &'static [u8] = if status.starts_with("451") {
                b"<html><h1>Blocked by order of the regulator</h1></html>"
            } else {
                b"ok"
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let listener = TcpListener::bind(addr).await.unwrap();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((mut tcp, _)) = listener.accept().await else { return };
                    let head = head.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ = tcp.read(&mut buf).await;
                        let _ = tcp.write_all(head.as_bytes()).await;
                        let _ = tcp.write_all(body).await;
                        let _ = tcp.shutdown().await;
                    });
                }
            }));
        }
        println!("LWT ready");
        // Bounded: the test kills the server when its namespace goes; this
        // only stops an orphan (`LWT_SERVE_SECS` for longer runs).
        let secs = std::env::var("LWT_SERVE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        drop(tasks);
    });
}

/// The prober, run in `home`: parses the configuration at `LWT_TLS_CONFIG`,
/// probes each target in `LWT_TLS_TARGETS` once and prints one JSON line each.
#[test]
#[ignore = "inner half: started inside a namespace by interference_tls"]
fn inner_tls_probe() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let path = std::env::var("LWT_TLS_CONFIG").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let config = linkwatch::config::parse(&text, &path).unwrap();
    let names = std::env::var("LWT_TLS_TARGETS").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let prober = HttpProber::new(&config).unwrap();
        for name in names.split(',') {
            let t = config.targets.iter().find(|t| t.name == name).unwrap();
            let TargetSpec::Http(spec) = &t.spec else {
                panic!("{name} is not http")
            };
            let o = prober
                .probe(0, t, spec, Instant::now() + Duration::from_secs(2))
                .await;
            let (result, reason, detail) = match &o.outcome {
                Outcome::Success { .. } => ("success", String::new(), String::new()),
                Outcome::Timeout { phase } => ("timeout", format!("{phase:?}"), String::new()),
                Outcome::Error(e) => ("error", e.reason.to_string(), e.detail.clone()),
            };
            let line = serde_json::json!({
                "target": name,
                "result": result,
                "reason": reason,
                "detail": detail,
                "info": o.info,
            });
            println!("LWT probe {line}");
        }
    });
}

/// One probe's line from [`inner_tls_probe`].
fn results(out: &std::process::Output) -> std::collections::BTreeMap<String, serde_json::Value> {
    crate::harness::configs::inner_lines(out, "probe")
        .into_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
            (v["target"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// `/etc/netns/<ns>/hosts`: `ip netns exec` bind-mounts it over /etc/hosts
/// for processes in the namespace, so the names resolve without DNS. Removed
/// on drop.
pub(crate) struct NetnsHosts(PathBuf);

impl NetnsHosts {
    pub(crate) fn new(ns: &Netns, entries: &str) -> Self {
        let dir = PathBuf::from("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).unwrap();
        let guard = Self(dir);
        std::fs::write(guard.0.join("hosts"), entries).unwrap();
        guard
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir(self.0.parent().unwrap_or(Path::new("/nonexistent")));
    }
}

/// Real middleboxes on the ISP hop of a three-namespace chain
/// (`home ── isp ── inet`): an interception proxy (DNAT to a TLS terminator
/// with its own CA) after the usual issuer was learned, a reset on the name
/// in the ClientHello (`iptables -m string`) with `sni_control` answering,
/// and a DNAT of plain HTTP to a block page.
#[test]
fn middleboxes_on_the_isp_hop_are_seen_as_interference() {
    if !crate::harness::netns::require_root() {
        return;
    }
    let iptables = std::process::Command::new("sh")
        .args(["-c", "command -v iptables"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crate::harness::daemon::require(iptables, "`iptables` is not installed") {
        return;
    }
    let home = Netns::new();
    let isp = Netns::new();
    let inet = Netns::new();
    let _hosts = NetnsHosts::new(
        &home,
        &NAMES
            .iter()
            .map(|n| format!("{SERVER} {n}\n"))
            .collect::<String>(),
    );
    let _lan = link(&isp, &home, 1); // isp 10.231.1.1, home 10.231.1.2
    let _far = link(&inet, &isp, 2); // inet 10.231.2.1, isp 10.231.2.2
    isp.sysctl("net.ipv4.ip_forward", "1");
    home.ip(&["route", "add", "10.231.2.0/24", "via", ISP_LOCAL]);
    inet.ip(&["route", "add", "10.231.1.0/24", "via", "10.231.2.2"]);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let origin = NamedPki::new("Origin CA", &NAMES);
    let mitm = NamedPki::new("Interceptor CA", &NAMES);
    let (origin_ca, origin_leaf, origin_key) = origin.write(dir.path(), "origin");
    let (_, mitm_leaf, mitm_key) = mitm.write(dir.path(), "mitm");

    let serve = |ns: &Netns, env: &[(&str, &str)]| {
        ns.spawn_inner(INNER_SERVE, env);
    };
    let files = |leaf: &Path, key: &Path| format!("{},{}", leaf.display(), key.display());
    serve(
        &inet,
        &[
            (
                "LWT_TLS_LISTEN",
                &format!("{SERVER}:443={}", files(&origin_leaf, &origin_key)),
            ),
            ("LWT_HTTP_LISTEN", &format!("{SERVER}:80=200 OK")),
        ],
    );
    serve(
        &isp,
        &[
            (
                "LWT_TLS_LISTEN",
                &format!("{ISP_LOCAL}:8443={}", files(&mitm_leaf, &mitm_key)),
            ),
            (
                "LWT_HTTP_LISTEN",
                &format!("{ISP_LOCAL}:8080=451 Unavailable For Legal Reasons"),
            ),
        ],
    );
    for (ns, port) in [(&inet, 443), (&inet, 80), (&isp, 8443), (&isp, 8080)] {
        ns.wait_listening(port);
    }

    let config = dir.path().join("linkwatch.toml");
    let ca = origin_ca.display();
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
listen = "127.0.0.1:0"
data_dir = "{data}"

[interference]
blockpage = [{{ status = 451, body_regex = "Blocked by order" }}]

[[group]]
name = "web"

[[target]]
name = "secure"
group = "web"
kind = "http"
url = "https://secure.example/"
ca_file = "{ca}"

[[target]]
name = "blocked"
group = "web"
kind = "http"
url = "https://blocked.example/"
ca_file = "{ca}"
sni_control = "allowed.example"

[[target]]
name = "plain"
group = "web"
kind = "http"
url = "http://plain.example/"
"#,
            data = data.display(),
        ),
    )
    .unwrap();
    let config_path = config.to_str().unwrap().to_string();
    let run = |targets: &str| {
        results(&home.run_inner(
            None,
            INNER_PROBE,
            &[
                ("LWT_TLS_CONFIG", &config_path),
                ("LWT_TLS_TARGETS", targets),
            ],
        ))
    };
    let ipt = |args: &[&str]| {
        isp.exec(&[&["iptables"][..], args].concat());
    };

    // A clean path: everything answers, the usual issuer is learned.
    let r = run("secure,blocked,plain");
    for name in ["secure", "blocked", "plain"] {
        assert_eq!(r[name]["result"], "success", "{name}: {}", r[name]);
        assert!(r[name]["info"]["evidence"].is_null(), "{}", r[name]);
    }
    assert_eq!(
        r["secure"]["info"]["tls_issuer"],
        "CN=Origin CA, O=linkwatch tests"
    );
    assert_eq!(r["secure"]["info"]["tls_spki"], origin.spki().as_str());
    let learned = std::fs::read_to_string(data.join(ISSUERS_FILE)).unwrap();
    assert!(learned.contains("CN=Origin CA"), "{learned}");

    // An interception proxy: HTTPS to the server goes to the ISP's own TLS
    // terminator. A new prober process: the usual issuer comes from the file.
    let dnat = |op: &str, port: &str, to: &str| {
        ipt(&[
            "-t",
            "nat",
            op,
            "PREROUTING",
            "-d",
            SERVER,
            "-p",
            "tcp",
            "--dport",
            port,
            "-j",
            "DNAT",
            "--to-destination",
            to,
        ]);
    };
    dnat("-A", "443", &format!("{ISP_LOCAL}:8443"));
    let r = run("secure");
    dnat("-D", "443", &format!("{ISP_LOCAL}:8443"));
    let s = &r["secure"];
    assert_eq!(s["reason"], "tls_intercepted", "{s}");
    assert_eq!(
        s["info"]["tls_issuer"],
        "CN=Interceptor CA, O=linkwatch tests"
    );
    assert_eq!(s["info"]["evidence"]["check"], "tls_intercepted");
    let detail = s["info"]["evidence"]["detail"].as_str().unwrap();
    assert!(detail.contains("CN=Interceptor CA"), "{detail}");
    assert!(detail.contains("never seen"), "{detail}");
    assert_eq!(
        s["info"]["evidence"]["raw"][1],
        format!("spki: sha256/{}", mitm.spki())
    );

    // SNI filtering: a reset for any ClientHello naming blocked.example.
    ipt(&[
        "-A",
        "FORWARD",
        "-d",
        SERVER,
        "-p",
        "tcp",
        "--dport",
        "443",
        "-m",
        "string",
        "--string",
        "blocked.example",
        "--algo",
        "bm",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    let r = run("blocked,secure");
    let b = &r["blocked"];
    assert_eq!(b["reason"], "sni_blocked", "{b}");
    assert_eq!(b["info"]["extra"], "sni_control");
    assert_eq!(b["info"]["evidence"]["name"], "blocked.example");
    let detail = b["info"]["evidence"]["detail"].as_str().unwrap();
    assert!(detail.contains("reset_after_hello"), "{detail}");
    assert!(detail.contains("as allowed.example"), "{detail}");
    assert_eq!(
        r["secure"]["result"], "success",
        "only that name: {}",
        r["secure"]
    );
    let counted = isp.exec(&["iptables", "-v", "-x", "-n", "-L", "FORWARD"]);
    assert!(
        counted
            .lines()
            .any(|l| l.contains("STRING match")
                && l.split_whitespace().next().is_some_and(|p| p != "0")),
        "the filter saw the hello: {counted}"
    );

    // A block page injected for plain HTTP.
    dnat("-A", "80", &format!("{ISP_LOCAL}:8080"));
    let r = run("plain");
    let p = &r["plain"];
    assert_eq!(p["reason"], "blockpage", "{p}");
    assert_eq!(p["info"]["evidence"]["raw"][0], "status 451");
    assert!(
        p["info"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("[interference] blockpage"),
        "{p}"
    );
}
