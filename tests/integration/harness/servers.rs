//! Test helpers for the HTTP and DNS probes: a test PKI (CA + leaf made with
//! rcgen), a small scripted HTTP/1.1 server on loopback (plain or TLS), and
//! builders for `Config`/`Target` values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::Name;
use linkwatch::config::{DnsServer, DnsSpec, DnsTransport, Host, HttpSpec, Nameserver};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// `notAfter` of the test leaf: 2039-01-01T00:00:00Z.
pub const LEAF_NOT_AFTER: i64 = 2_177_452_800;

/// A test CA, a leaf it signed, and the CA written to a PEM file.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub server_config: Arc<ServerConfig>,
}

/// How the leaf certificate is made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Valid for `localhost` and 127.0.0.1 until 2039.
    Good,
    /// Expired in 2021.
    Expired,
    /// Valid, but only for `other.test`.
    WrongName,
}

impl TestPki {
    pub fn new(leaf: Leaf) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "linkwatch test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca_params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let names = match leaf {
            Leaf::WrongName => vec!["other.test".to_string()],
            _ => vec!["localhost".to_string(), "127.0.0.1".to_string()],
        };
        let mut leaf_params = CertificateParams::new(names).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "linkwatch test server");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = if leaf == Leaf::Expired {
            rcgen::date_time_ymd(2021, 1, 1)
        } else {
            rcgen::date_time_ymd(2039, 1, 1)
        };
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let chain: Vec<CertificateDer<'static>> =
            vec![leaf_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server_config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        Self {
            dir,
            ca_file,
            server_config: Arc::new(server_config),
        }
    }
}

/// What the scripted server does with one request.
pub enum Reply {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Accept and never answer (hold the connection open).
    Never,
    /// A 200 with a 1 GiB Content-Length, written in 64 KiB chunks until the client goes.
    Huge,
    /// A 200 announcing `len` bytes, sent one byte per `every`.
    Trickle { len: usize, every: Duration },
}

/// A full HTTP/1.1 response with `Content-Length`.
pub fn response(status: &str, extra_headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in extra_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub head: String,
    pub body: Vec<u8>,
}

/// A scripted HTTP/1.1 server on 127.0.0.1:0.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Route = dyn Fn(&Seen, SocketAddr) -> Reply + Send + Sync;

impl HttpServer {
    /// Starts a server answering each request with `route(request, own address)`.
    pub async fn start(
        tls: Option<Arc<ServerConfig>>,
        route: impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let acceptor = tls.map(TlsAcceptor::from);
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let route = Arc::clone(&route);
                let seen = Arc::clone(&seen2);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve_one(tls, addr, &*route, &seen).await;
                            }
                        }
                        None => serve_one(tcp, addr, &*route, &seen).await,
                    }
                });
            }
        });
        Self { addr, seen, task }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, scheme: &str, path: &str) -> url::Url {
        url::Url::parse(&format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())).unwrap()
    }
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    route: &Route,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Seen {
        method,
        path,
        head,
        body,
    };
    seen.lock().unwrap().push(request.clone());
    match route(&request, addr) {
        Reply::Raw(bytes) => {
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        Reply::Never => std::future::pending::<()>().await,
        Reply::Huge => {
            let total: u64 = 1 << 30;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 64 * 1024];
            let mut sent = 0u64;
            while sent < total {
                if s.write_all(&block).await.is_err() {
                    return;
                }
                sent += block.len() as u64;
            }
        }
        Reply::Trickle { len, every } => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..len {
                tokio::time::sleep(every).await;
                if s.write_all(b"x").await.is_err() || s.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A GET of `url` with every option at its default.
pub fn http_spec(url: url::Url) -> HttpSpec {
    HttpSpec::new(url)
}

/// An `A` query for `query` to `server`, expecting NOERROR.
pub fn dns_spec(server: DnsServer, query: &str) -> DnsSpec {
    DnsSpec::new(server, Name::from_ascii(query).unwrap())
}

/// A loopback resolver at `addr` over `transport` (`https` takes [`doh`]).
pub fn dns_server(addr: SocketAddr, transport: DnsTransport) -> DnsServer {
    let (host, port) = (Host::Ip(addr.ip()), addr.port());
    match transport {
        DnsTransport::Udp => DnsServer::Udp(Nameserver::Addr { host, port }),
        DnsTransport::Tcp => DnsServer::Tcp(Nameserver::Addr { host, port }),
        DnsTransport::Tls | DnsTransport::Https => DnsServer::Tls {
            host,
            port,
            tls_name: None,
            ca_file: None,
        },
    }
}

/// A DoH resolver at `url`.
pub fn doh(url: url::Url) -> DnsServer {
    DnsServer::Https { url, ca_file: None }
}

/// `server` trusting `ca_file` (DoT and DoH only; other transports have no CA).
pub fn with_ca_file(server: DnsServer, ca: Option<PathBuf>) -> DnsServer {
    match server {
        DnsServer::Tls {
            host,
            port,
            tls_name,
            ..
        } => DnsServer::Tls {
            host,
            port,
            tls_name,
            ca_file: ca,
        },
        DnsServer::Https { url, .. } => DnsServer::Https { url, ca_file: ca },
        other => other,
    }
}

/// A DoT `server` checking `name` in the certificate.
pub fn with_tls_name(server: DnsServer, name: &str) -> DnsServer {
    match server {
        DnsServer::Tls {
            host,
            port,
            ca_file,
            ..
        } => DnsServer::Tls {
            host,
            port,
            tls_name: Some(name.to_owned()),
            ca_file,
        },
        other => other,
    }
}

/// What an [`UploadSink`] read: body bytes and its own transfer time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkCount {
    pub bytes: u64,
    pub requests: u64,
    pub first: Option<tokio::time::Instant>,
    pub last: Option<tokio::time::Instant>,
}

impl SinkCount {
    /// Bits per second over the server's own transfer time (first to last body byte read).
    pub fn bits_per_second(&self) -> Option<f64> {
        let secs = self.last?.duration_since(self.first?).as_secs_f64();
        (secs > 0.0).then(|| self.bytes as f64 * 8.0 / secs)
    }
}

/// A hyper HTTP/1.1 server on 127.0.0.1:0 that reads and counts every request
/// body (optionally at a pace: `pace = (bytes, pause)` sleeps `pause` after each
/// `bytes` read), then answers `status` with an empty body.
pub struct UploadSink {
    pub addr: SocketAddr,
    pub count: Arc<Mutex<SinkCount>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UploadSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UploadSink {
    pub async fn start(
        tls: Option<Arc<ServerConfig>>,
        status: u16,
        pace: Option<(u64, Duration)>,
    ) -> Self {
        use http_body_util::BodyExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(Mutex::new(SinkCount::default()));
        let acceptor = tls.map(TlsAcceptor::from);
        let count2 = Arc::clone(&count);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let count = Arc::clone(&count2);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let count = Arc::clone(&count);
                            async move {
                                let mut body = req.into_body();
                                let mut since_pause = 0u64;
                                while let Some(Ok(frame)) = body.frame().await {
                                    let Ok(data) = frame.into_data() else {
                                        continue;
                                    };
                                    let now = tokio::time::Instant::now();
                                    {
                                        let mut c = count.lock().unwrap();
                                        c.bytes += data.len() as u64;
                                        c.first.get_or_insert(now);
                                        c.last = Some(now);
                                    }
                                    since_pause += data.len() as u64;
                                    if let Some((every, pause)) = pace
                                        && since_pause >= every
                                    {
                                        since_pause = 0;
                                        tokio::time::sleep(pause).await;
                                    }
                                }
                                count.lock().unwrap().requests += 1;
                                let mut response = hyper::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::new(),
                                ));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).unwrap();
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let io = hyper_util::rt::TokioIo::new(tls);
                                let _ = builder.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(tcp);
                            let _ = builder.serve_connection(io, service).await;
                        }
                    }
                });
            }
        });
        Self { addr, count, task }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, scheme: &str, path: &str) -> url::Url {
        url::Url::parse(&format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())).unwrap()
    }

    pub fn count(&self) -> SinkCount {
        *self.count.lock().unwrap()
    }
}
