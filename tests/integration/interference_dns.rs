//! DNS consistency (`compare_with`, issue 21): a "suspect" resolver's
//! answers against a compared one's, the bogon rule and the TLS tie-breaker.
//!
//! Loopback: a scripted UDP resolver forging names, a DoH server answering
//! truly, TLS servers on 127.0.0.x addresses (one with a certificate from a
//! CA the prober does not trust), all probed through the real config parser
//! and the probers' seam.
//!
//! Namespaces: dnsmasq is the ISP resolver forging names, the DoH server and
//! the TLS servers run in the `net` namespace; the prober (the inner runner
//! and then the real daemon) runs in `home`; the DoH server is then stopped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use linkwatch::config::Config;
use linkwatch::probe::{Observation, Outcome, Probers};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;

use crate::harness::daemon::sample;
use crate::harness::fakenet::{Params, Watcher};
use crate::harness::netns::{Netns, link, require_root};

/// A name's answer: an address, or NXDOMAIN.
type Zone = BTreeMap<&'static str, Option<Ipv4Addr>>;

/// The reply to `query` from `zone` (unknown names: NXDOMAIN).
fn reply(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let name = question.name().to_ascii().to_ascii_lowercase();
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    match zone.get(name.trim_end_matches('.')) {
        Some(Some(ip)) => {
            reply.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A(*ip)),
            ));
        }
        _ => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply.to_vec().ok()
}

/// The test PKI: a CA the prober trusts (`ca.pem`) and a forger's CA it
/// does not; leaf certificates and keys as PEM files in `dir`.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
    forger: Issuer<'static, KeyPair>,
}

fn make_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

impl Pki {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (pem, ca) = make_ca("dnscheck test CA");
        std::fs::write(dir.path().join("ca.pem"), pem).unwrap();
        let (_, forger) = make_ca("Forger CA");
        let pki = Pki { dir, ca, forger };
        // `site`: the true server's; `forged`: the forger's, for the same names.
        let names = ["site.test", "ok.test", "bogon.test", "nx.test", "down.test"];
        pki.leaf("site", &names, false);
        pki.leaf("forged", &names, true);
        pki.leaf("cdn", &["cdn.test"], false);
        pki.leaf("doh", &["127.0.0.1", "10.231.100.54"], false);
        pki
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn ca_file(&self) -> String {
        self.path().join("ca.pem").display().to_string()
    }

    /// Writes `<name>.pem` (the leaf alone) and `<name>.key`.
    fn leaf(&self, file: &str, names: &[&str], forged: bool) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2039, 1, 1);
        let key = KeyPair::generate().unwrap();
        let issuer = if forged { &self.forger } else { &self.ca };
        let cert = params.signed_by(&key, issuer).unwrap();
        std::fs::write(self.path().join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path().join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
}

/// A rustls server config from `<dir>/<name>.pem` and `.key`.
fn server_config(dir: &Path, name: &str) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    Arc::new(config)
}

/// A TLS server that completes handshakes and closes; counts connections.
async fn tls_server(listener: TcpListener, config: Arc<ServerConfig>, count: Arc<AtomicUsize>) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        count.fetch_add(1, Ordering::SeqCst);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(mut s) = acceptor.accept(tcp).await {
                let _ = s.shutdown().await;
            }
        });
    }
}

/// A DoH server (RFC 8484 POST over HTTP/1.1) answering from `zone`.
async fn doh_server(listener: TcpListener, config: Arc<ServerConfig>, zone: Arc<Zone>) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, zone) = (acceptor.clone(), zone.clone());
        tokio::spawn(async move {
            let Ok(mut s) = acceptor.accept(tcp).await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + len {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let Some(body) = reply(&buf[head_end..head_end + len], &zone) else {
                return;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.shutdown().await;
        });
    }
}

/// A UDP resolver answering from `zone`.
async fn udp_resolver(socket: UdpSocket, zone: Zone) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if let Some(r) = reply(&buf[..n], &zone) {
            let _ = socket.send_to(&r, from).await;
        }
    }
}

/// The configuration: for each name a `doh-<name>` target (the truth) and an
/// `isp-<name>` target comparing with it; `isp-none` compares without a
/// tie-break.
fn config_text(isp: &str, doh_url: &str, ca_file: &str, tls_port: u16, exempt: &str) -> String {
    let mut s = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{{data}}\"\n\n\
         [defaults]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [interference]\nbogon_exempt = [\"{exempt}\"]\n\n[[group]]\nname = \"dns\"\n"
    );
    for name in ["site", "cdn", "bogon", "ok", "nx", "down"] {
        let url = if name == "down" {
            // A DoH server that is not there.
            "https://127.0.0.1:9/dns-query"
        } else {
            doh_url
        };
        s.push_str(&format!(
            "\n[[target]]\nname = \"doh-{name}\"\ngroup = \"dns\"\nkind = \"dns\"\n\
             transport = \"https\"\nserver = \"{url}\"\nca_file = \"{ca_file}\"\nquery = \"{name}.test\"\n\
             \n[[target]]\nname = \"isp-{name}\"\ngroup = \"dns\"\nkind = \"dns\"\n\
             server = \"{isp}\"\nquery = \"{name}.test\"\ncompare_with = \"doh-{name}\"\n\
             tie_break_port = {tls_port}\ntie_break_ca_file = \"{ca_file}\"\n"
        ));
    }
    s.push_str(&format!(
        "\n[[target]]\nname = \"isp-none\"\ngroup = \"dns\"\nkind = \"dns\"\n\
         server = \"{isp}\"\nquery = \"site.test\"\ncompare_with = \"doh-site\"\ntie_break = \"none\"\n"
    ));
    s
}

/// One observation as the tests look at it.
fn summary(o: &Observation) -> Value {
    let (result, reason, detail) = match &o.outcome {
        Outcome::Success { .. } => ("success", String::new(), String::new()),
        Outcome::Timeout { .. } => ("timeout", String::new(), String::new()),
        Outcome::Error(e) => ("error", e.reason.as_str().to_string(), e.detail.clone()),
    };
    json!({
        "result": result,
        "reason": reason,
        "detail": detail,
        "extra": o.info.extra.map(|e| e.as_str()),
        "evidence": o.info.evidence,
    })
}

/// Probes every `doh-*` target, then every `isp-*` one, through the probers'
/// seam as the scheduler does; each target's summary.
async fn probe_all(config: Config) -> BTreeMap<String, Value> {
    let config = Arc::new(config);
    let probers = Arc::new(Probers::new(&config).await.unwrap());
    let mut out = BTreeMap::new();
    for prefix in ["doh-", "isp-"] {
        for (i, t) in config.targets.iter().enumerate() {
            if t.name.starts_with(prefix) {
                let deadline = tokio::time::Instant::now() + t.timeout;
                let o = probers.probe(i, t, deadline).await;
                out.insert(t.name.clone(), summary(&o));
            }
        }
    }
    out
}

/// What every scenario must show, whichever network it ran on.
/// `forged` is the address the ISP forges `site.test` to; `port` the TLS port.
fn check_verdicts(got: &BTreeMap<String, Value>, forged: &str, port: u16) {
    let show = serde_json::to_string_pretty(got).unwrap();
    for name in ["site", "cdn", "bogon", "ok", "nx"] {
        assert_eq!(got[&format!("doh-{name}")]["result"], "success", "{show}");
    }
    // Forged, and the forged address serves a certificate from another CA.
    let site = &got["isp-site"];
    assert_eq!(site["reason"], "dns_inconsistent", "{show}");
    assert_eq!(site["extra"], "tls_tie_break", "{show}");
    let ev = &site["evidence"];
    assert_eq!(ev["check"], "dns_inconsistent");
    assert_eq!(ev["name"], "site.test");
    let raw: Vec<&str> = ev["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(raw[0], format!("isp-site: A {forged}"), "{show}");
    assert!(raw[1].starts_with("doh-site: A "), "{show}");
    let tls_line = format!("tls {forged}:{port} as site.test: ");
    assert!(
        raw[2].starts_with(&tls_line) && raw[2].to_lowercase().contains("issuer"),
        "{show}"
    );
    assert!(
        ev["detail"].as_str().unwrap().starts_with(&format!(
            "isp-site answered site.test A {forged}; doh-site answered "
        )),
        "{show}"
    );

    // A CDN: different addresses, both serving a valid certificate.
    let cdn = &got["isp-cdn"];
    assert_eq!(cdn["result"], "success", "{show}");
    assert_eq!(cdn["extra"], "tls_tie_break", "{show}");
    assert!(cdn["evidence"].is_null(), "{show}");

    // A private address the compared resolver did not return: no tie-break.
    let bogon = &got["isp-bogon"];
    assert_eq!(bogon["reason"], "dns_bogon", "{show}");
    assert!(bogon["extra"].is_null(), "{show}");
    assert!(
        bogon["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("not in bogon_exempt"),
        "{show}"
    );

    // The same answer: nothing to say.
    let ok = &got["isp-ok"];
    assert_eq!(ok["result"], "success", "{show}");
    assert!(ok["extra"].is_null() && ok["evidence"].is_null(), "{show}");

    // A forged NXDOMAIN: the probe's own rcode failure becomes the evidence.
    let nx = &got["isp-nx"];
    assert_eq!(nx["reason"], "dns_inconsistent", "{show}");
    assert!(nx["extra"].is_null(), "{show}");
    assert_eq!(nx["evidence"]["raw"][0], "isp-nx: NXDOMAIN", "{show}");

    // tie_break = "none": the disagreement alone.
    let none = &got["isp-none"];
    assert_eq!(none["reason"], "dns_inconsistent", "{show}");
    assert!(none["extra"].is_null(), "{show}");

    // The compared resolver is down: no data, the probe's own outcome stands.
    assert_eq!(got["doh-down"]["result"], "error", "{show}");
    let down = &got["isp-down"];
    assert_eq!(down["result"], "success", "{show}");
    assert!(
        down["evidence"].is_null() && down["extra"].is_null(),
        "{show}"
    );
}

/// Binds TLS listeners on the same port of every address (the tie-break
/// port is one per target).
async fn same_port(addrs: &[IpAddr]) -> (u16, Vec<TcpListener>) {
    'again: for _ in 0..20 {
        let first = TcpListener::bind((addrs[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut all = vec![first];
        for &a in &addrs[1..] {
            match TcpListener::bind((a, port)).await {
                Ok(l) => all.push(l),
                Err(_) => continue 'again,
            }
        }
        return (port, all);
    }
    panic!("no common free port on {addrs:?}");
}

#[tokio::test]
async fn loopback_forged_cdn_bogon_and_compared_resolver_down() {
    let pki = Pki::new();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    // site.test is truly at .80; the ISP forges .66 (the forger's certificate).
    // cdn.test: .81 for one resolver, .82 for the other, both valid.
    let addrs = [
        ip("127.0.0.66"),
        ip("127.0.0.80"),
        ip("127.0.0.81"),
        ip("127.0.0.82"),
    ];
    let (port, listeners) = same_port(&addrs).await;
    let mut counts = Vec::new();
    for (l, cert) in listeners.into_iter().zip(["forged", "site", "cdn", "cdn"]) {
        let count = Arc::new(AtomicUsize::new(0));
        counts.push(count.clone());
        tokio::spawn(tls_server(l, server_config(pki.path(), cert), count));
    }
    let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
    let truth: Zone = [
        ("site.test", v4("127.0.0.80")),
        ("cdn.test", v4("127.0.0.81")),
        ("bogon.test", v4("127.0.0.80")),
        ("ok.test", v4("127.0.0.80")),
        ("nx.test", v4("127.0.0.80")),
    ]
    .into();
    let forged: Zone = [
        ("site.test", v4("127.0.0.66")),
        ("cdn.test", v4("127.0.0.82")),
        // Loopback, outside the exemption below: a bogon.
        ("bogon.test", v4("127.0.0.1")),
        ("ok.test", v4("127.0.0.80")),
        ("nx.test", None),
        ("down.test", v4("127.0.0.66")),
    ]
    .into();
    let doh = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let doh_url = format!(
        "https://127.0.0.1:{}/dns-query",
        doh.local_addr().unwrap().port()
    );
    tokio::spawn(doh_server(
        doh,
        server_config(pki.path(), "doh"),
        Arc::new(truth),
    ));
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let isp = udp.local_addr().unwrap().to_string();
    tokio::spawn(udp_resolver(udp, forged));

    // The test addresses 127.0.0.64/26 stand for public ones.
    let text = config_text(&isp, &doh_url, &pki.ca_file(), port, "127.0.0.64/26")
        .replace("{data}", "/nonexistent");
    let config = linkwatch::config::parse(&text, "dnscheck.toml").unwrap();
    let got = probe_all(config.clone()).await;
    check_verdicts(&got, "127.0.0.66", port);
    // One tie-break each for isp-site (to .66) and isp-cdn (to .82); the
    // bogon, the consistent answer and tie_break = "none" connect nowhere.
    let seen: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(seen, [1, 0, 0, 1], "connections to .66 .80 .81 .82");

    // `linkwatch probe` probes the compared targets first, then compares.
    let file = pki.path().join("config.toml");
    std::fs::write(&file, &text).unwrap();
    let out = tokio::process::Command::new(crate::harness::daemon::BIN)
        .args(["probe", "--config", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {table}"))
            .to_string()
    };
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(line("isp-site").contains("dns_inconsistent"), "{table}");
    assert!(line("isp-bogon").contains("dns_bogon"), "{table}");
    for ok in ["isp-cdn", "isp-ok", "doh-site"] {
        assert!(line(ok).contains(" ok "), "{table}");
    }

    // Stale: the compared answer is older than 2 × its interval (500 ms).
    let config = Arc::new(config);
    let probers = Arc::new(Probers::new(&config).await.unwrap());
    let index = |n: &str| config.targets.iter().position(|t| t.name == n).unwrap();
    let run = |n: &'static str| {
        let (probers, config) = (probers.clone(), config.clone());
        let i = index(n);
        async move {
            let t = &config.targets[i];
            let deadline = tokio::time::Instant::now() + t.timeout;
            summary(&probers.probe(i, t, deadline).await)
        }
    };
    assert_eq!(run("doh-site").await["result"], "success");
    assert_eq!(run("isp-site").await["reason"], "dns_inconsistent");
    // A CDN node the tie-breaker vouched for is not checked again (for an hour).
    let cdn_before = counts[3].load(Ordering::SeqCst);
    assert_eq!(run("doh-cdn").await["result"], "success");
    assert_eq!(run("isp-cdn").await["extra"], "tls_tie_break");
    let again = run("isp-cdn").await;
    assert_eq!(again["result"], "success", "{again}");
    assert!(again["extra"].is_null(), "{again}");
    assert_eq!(counts[3].load(Ordering::SeqCst), cdn_before + 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = run("isp-site").await;
    assert_eq!(stale["result"], "success", "{stale}");
    assert!(stale["evidence"].is_null() && stale["extra"].is_null());
}

#[tokio::test]
async fn config_check_rejects_a_comparison_of_different_questions() {
    let text = config_text(
        "192.0.2.53",
        "https://dns.example/dns-query",
        "/ca.pem",
        443,
        "10.0.0.0/8",
    )
    .replace("{data}", "/nonexistent")
    .replace(
        "query = \"cdn.test\"\ncompare_with",
        "query = \"cdn2.test\"\ncompare_with",
    );
    let err = linkwatch::config::parse(&text, "dnscheck.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key `target[3].compare_with`: `compare_with` (doh-cdn) asks cdn.test A, this target asks cdn2.test A"),
        "{err}"
    );
    assert!(err.contains("dnscheck.toml:"), "{err}");
}

#[test]
fn a_missing_tie_break_ca_file_fails_the_setup_naming_the_target() {
    let text = config_text(
        "192.0.2.53",
        "https://dns.example/dns-query",
        "/nonexistent/dnscheck-ca.pem",
        443,
        "10.0.0.0/8",
    )
    .replace("{data}", "/nonexistent")
    // Only the tie-breaker's CA file is missing.
    .replace("ca_file = \"/nonexistent/dnscheck-ca.pem\"\nquery", "query");
    let config = linkwatch::config::parse(&text, "dnscheck.toml").unwrap();
    let err = Probers::check_offline(&config).unwrap_err();
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(
        text.contains("isp-site") && text.contains("/nonexistent/dnscheck-ca.pem"),
        "{text}"
    );
}

// ---- network namespaces: dnsmasq, a DoH server, TLS servers ----

/// Addresses in `net` (on its `lo`), reached from `home` over the veth link.
const DNSMASQ: &str = "10.231.100.53";
pub(crate) const DOH: &str = "10.231.100.54";
pub(crate) const TRUE_SITE: &str = "10.231.100.80";
pub(crate) const FORGED_SITE: &str = "10.231.100.66";
const CDN_A: &str = "10.231.100.81";
const CDN_B: &str = "10.231.100.82";

const INNER_SERVERS: &str = "interference_dns::inner_servers";
pub(crate) const INNER_DOH: &str = "interference_dns::inner_doh";
const INNER_PROBE: &str = "interference_dns::inner_probe";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// In `net`: the TLS servers on port 443 of the site, forged and CDN addresses.
#[test]
#[ignore = "inner half: started inside a namespace by dns_consistency_in_namespaces"]
fn inner_servers() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var("LWT_PKI").unwrap());
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for (addr, cert) in [
            (TRUE_SITE, "site"),
            (FORGED_SITE, "forged"),
            (CDN_A, "cdn"),
            (CDN_B, "cdn"),
        ] {
            let l = TcpListener::bind((addr, 443)).await.unwrap();
            let count = Arc::new(AtomicUsize::new(0));
            tasks.push(tokio::spawn(tls_server(
                l,
                server_config(&dir, cert),
                count,
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// In `net`: the DoH server answering truly, on DOH:443.
#[test]
#[ignore = "inner half: started inside a namespace by dns_consistency_in_namespaces"]
fn inner_doh() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var("LWT_PKI").unwrap());
    let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
    let truth: Zone = [
        ("site.test", v4(TRUE_SITE)),
        ("cdn.test", v4(CDN_A)),
        ("bogon.test", v4(TRUE_SITE)),
        ("ok.test", v4(TRUE_SITE)),
        ("nx.test", v4(TRUE_SITE)),
        ("down.test", v4(TRUE_SITE)),
    ]
    .into();
    runtime().block_on(async {
        let l = TcpListener::bind((DOH, 443)).await.unwrap();
        doh_server(l, server_config(&dir, "doh"), Arc::new(truth)).await;
    });
}

/// In `home`: loads `LWT_CONFIG` with the real parser, probes it like
/// [`probe_all`] and prints one `LWT obs <json>` line.
#[test]
#[ignore = "inner half: started inside a namespace by dns_consistency_in_namespaces"]
fn inner_probe() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let path = std::env::var("LWT_CONFIG").unwrap();
    let config = linkwatch::config::load(Path::new(&path)).unwrap();
    let got = runtime().block_on(probe_all(config));
    println!("LWT obs {}", serde_json::to_string(&got).unwrap());
}

fn observations(out: &std::process::Output) -> BTreeMap<String, Value> {
    let lines = crate::harness::configs::inner_lines(out, "obs");
    serde_json::from_str(lines.first().expect("an obs line")).unwrap()
}

/// dnsmasq as the ISP's resolver, forging three names and NXDOMAIN for one.
fn dnsmasq(net: &Netns) {
    let mut args = vec![
        "dnsmasq".to_string(),
        "--keep-in-foreground".into(),
        "--conf-file=/dev/null".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--pid-file=".into(),
        "--bind-interfaces".into(),
        format!("--listen-address={DNSMASQ}"),
        "--log-facility=-".into(),
        "--user=root".into(),
    ];
    for (name, addr) in [
        ("site.test", FORGED_SITE),
        ("cdn.test", CDN_B),
        // A private address outside bogon_exempt.
        ("bogon.test", "192.168.77.7"),
        ("ok.test", TRUE_SITE),
        ("down.test", FORGED_SITE),
    ] {
        args.push(format!("--address=/{name}/{addr}"));
    }
    // A forged NXDOMAIN: `--address=/name/` answers NXDOMAIN for it.
    args.push("--address=/nx.test/".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    net.spawn(&args);
    for _ in 0..100 {
        let out = net.exec(&["ss", "-Hlun", &format!("src {DNSMASQ}:53")]);
        if !out.trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("dnsmasq does not listen on {DNSMASQ}:53");
}

pub(crate) fn command_exists(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dns_consistency_in_namespaces() {
    if !require_root()
        || !crate::harness::daemon::require(command_exists("dnsmasq"), "`dnsmasq` is not installed")
        || !crate::harness::daemon::require(command_exists("curl"), "`curl` is not installed")
    {
        return;
    }
    let pki = Pki::new();
    let net = Netns::new();
    let home = Netns::new();
    let l = link(&net, &home, 1);
    for a in [DNSMASQ, DOH, TRUE_SITE, FORGED_SITE, CDN_A, CDN_B] {
        net.ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    home.ip(&[
        "route",
        "add",
        "10.231.100.0/24",
        "via",
        &l.a_v4.to_string(),
    ]);
    dnsmasq(&net);
    let pki_dir = pki.path().to_str().unwrap();
    net.spawn_inner(INNER_SERVERS, &[("LWT_PKI", pki_dir)]);
    let doh_pid = net.spawn_inner(INNER_DOH, &[("LWT_PKI", pki_dir)]);
    for _ in 0..200 {
        let up = [TRUE_SITE, FORGED_SITE, CDN_A, CDN_B, DOH].iter().all(|a| {
            !net.exec(&["ss", "-Hltn", &format!("src {a}:443")])
                .trim()
                .is_empty()
        });
        if up {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // The split-horizon block of this fake internet stands for public addresses.
    let ca_file = pki.ca_file();
    let text = |data: &Path| {
        config_text(
            &format!("{DNSMASQ}:53"),
            &format!("https://{DOH}/dns-query"),
            &ca_file,
            443,
            "10.231.0.0/16",
        )
        .replace("{data}", data.to_str().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, text(&dir.path().join("data"))).unwrap();
    let config_env = [("LWT_CONFIG", config_path.to_str().unwrap())];
    // Count the tie-breaks' bytes: one handshake each to the forged address
    // (failed) and to the CDN's other node (valid).
    for addr in [FORGED_SITE, CDN_B] {
        home.exec(&[
            "iptables", "-A", "OUTPUT", "-d", addr, "-p", "tcp", "--dport", "443",
        ]);
        home.exec(&[
            "iptables", "-A", "INPUT", "-s", addr, "-p", "tcp", "--sport", "443",
        ]);
    }
    let out = home.run_inner(None, INNER_PROBE, &config_env);
    check_verdicts(&observations(&out), FORGED_SITE, 443);
    let counters = home.exec(&["iptables", "-L", "-v", "-n", "-x"]);
    for addr in [FORGED_SITE, CDN_B] {
        let bytes: Vec<u64> = counters
            .lines()
            .filter(|l| l.contains(addr))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect();
        assert!(
            bytes.iter().all(|&b| b > 0),
            "no tie-break to {addr}:\n{counters}"
        );
        eprintln!("tie-break to {addr}: {bytes:?} bytes (out, in) with the test chain");
    }

    // The real daemon, scheduling every target every 500 ms.
    let params = Params {
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(400),
        fail_after: 3,
        recover_after: 2,
    };
    let mut watcher = Watcher::prepare(&home, params, |_, data| text(data));
    watcher.start();
    let errors = |m: &str, target: &str, reason: &str| {
        sample(
            m,
            "linkwatch_probe_errors_total",
            &[("target", target), ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    let successes = |m: &str, target: &str| {
        sample(
            m,
            "linkwatch_probes_total",
            &[("target", target), ("result", "success")],
        )
        .unwrap_or(0.0)
    };
    let m = watcher.wait(
        "forged answers seen by the daemon",
        Duration::from_secs(20),
        |w| {
            let m = w.api_text("/metrics");
            (errors(&m, "isp-site", "dns_inconsistent") >= 3.0
                && errors(&m, "isp-bogon", "dns_bogon") >= 3.0
                && successes(&m, "isp-cdn") >= 3.0)
                .then_some(m)
        },
    );
    for t in ["isp-cdn", "isp-ok", "doh-site", "doh-cdn"] {
        let failed =
            crate::harness::daemon::sum(&m, "linkwatch_probe_errors_total", &[("target", t)]);
        assert_eq!(failed, 0.0, "{t} failed:\n{m}");
    }

    // The DoH resolver stops: no data, never inconsistent.
    assert!(
        Command::new("kill")
            .arg(doh_pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    // Let the daemon see the failure, and the last good answer go stale.
    watcher.wait("doh-site failing", Duration::from_secs(10), |w| {
        let m = w.api_text("/metrics");
        let f = crate::harness::daemon::sum(
            &m,
            "linkwatch_probe_errors_total",
            &[("target", "doh-site")],
        ) + sample(
            &m,
            "linkwatch_probes_total",
            &[("target", "doh-site"), ("result", "timeout")],
        )
        .unwrap_or(0.0);
        (f >= 1.0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1200));
    let before = watcher.api_text("/metrics");
    std::thread::sleep(Duration::from_millis(3000));
    let after = watcher.api_text("/metrics");
    for (t, reason) in [
        ("isp-site", "dns_inconsistent"),
        ("isp-bogon", "dns_bogon"),
        ("isp-nx", "dns_inconsistent"),
    ] {
        assert_eq!(
            errors(&before, t, reason),
            errors(&after, t, reason),
            "{t} still {reason} with the compared resolver down:\n{after}"
        );
    }
    assert!(
        successes(&after, "isp-site") >= successes(&before, "isp-site") + 3.0,
        "isp-site's own outcome stands:\n{after}"
    );
    watcher.stop();

    // And probe by probe: the DoH target fails first, the comparison is no data.
    let out = home.run_inner(None, INNER_PROBE, &config_env);
    let got = observations(&out);
    let show = serde_json::to_string_pretty(&got).unwrap();
    assert_eq!(got["doh-site"]["result"], "error", "{show}");
    for name in ["site", "cdn", "bogon", "ok", "none"] {
        let o = &got[&format!("isp-{name}")];
        assert_eq!(o["result"], "success", "isp-{name}: {show}");
        assert!(o["evidence"].is_null() && o["extra"].is_null(), "{show}");
    }
}
