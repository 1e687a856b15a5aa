//! Throughput engine against real servers on loopback: the caps, short bodies,
//! stalls, compressed and endless bodies, uploads, HTTPS and parallel streams.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::servers::{HttpServer, LEAF_NOT_AFTER, Leaf, Reply, TestPki, UploadSink};
use linkwatch::probe::throughput::{
    Direction, EndedBy, ThroughputProber, ThroughputResult, ThroughputSpec,
};
use linkwatch::probe::{Outcome, Phase, Reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MB: u64 = 1_000_000;

/// A test spec: one stream, small caps, short timeouts.
fn spec(url: url::Url, direction: Direction) -> ThroughputSpec {
    let mut s = ThroughputSpec::new(url, direction);
    s.streams = 1;
    s.max_bytes = 4 * MB;
    s.min_bytes = 100_000;
    s.max_duration = Duration::from_millis(800);
    s.timeout = Duration::from_millis(800);
    s
}

async fn run(spec: &ThroughputSpec) -> ThroughputResult {
    let prober = ThroughputProber::new([spec]).unwrap();
    let started = tokio::time::Instant::now();
    let result = prober.run(spec).await;
    assert!(
        started.elapsed() <= spec.worst_case() + Duration::from_millis(200),
        "the test overran its bound: {:?}",
        started.elapsed()
    );
    result
}

fn good(r: &ThroughputResult) -> f64 {
    assert!(r.outcome.is_success(), "expected a good test, got {r:?}");
    assert!(!r.partial, "{r:?}");
    r.bits_per_second.unwrap()
}

fn reason(r: &ThroughputResult) -> (Reason, String) {
    match &r.outcome {
        Outcome::Error(e) => (e.reason, e.detail.clone()),
        other => panic!("expected an error, got {other:?} ({r:?})"),
    }
}

/// A raw HTTP server: reads each request head, records it, then runs `serve`
/// on the connection.
struct RawServer {
    addr: std::net::SocketAddr,
    conns: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let serve = Arc::new(serve);
        let (conns2, heads2) = (Arc::clone(&conns), Arc::clone(&heads));
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                conns2.fetch_add(1, Ordering::SeqCst);
                let serve = Arc::clone(&serve);
                let heads = Arc::clone(&heads2);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match tcp.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    heads
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
                    let _ = serve(tcp).await;
                });
            }
        });
        Self {
            addr,
            conns,
            heads,
            task,
        }
    }

    fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/blob", self.addr.port())).unwrap()
    }
}

/// Writes `head`, then `block` every `every` (flat out when zero), up to `total` bytes.
async fn paced(
    mut tcp: TcpStream,
    head: String,
    block: usize,
    every: Duration,
    total: u64,
) -> std::io::Result<()> {
    tcp.write_all(head.as_bytes()).await?;
    let data = vec![b'x'; block];
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(block as u64) as usize;
        tcp.write_all(&data[..n]).await?;
        sent += n as u64;
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
    }
    Ok(())
}

fn head_with_length(len: u64, extra: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{extra}\r\n")
}

#[tokio::test]
async fn download_is_capped_by_max_bytes() {
    let server = HttpServer::start(None, |_, _| Reply::Huge).await;
    let s = spec(server.url("http", "/big.bin"), Direction::Download);
    let r = run(&s).await;
    assert!(good(&r) > 0.0);
    assert_eq!(r.bytes, 4 * MB);
    assert_eq!(r.ended_by, Some(EndedBy::MaxBytes));
    assert_eq!(r.streams_finished, 1);
    assert!(r.time_to_first_byte.is_some());
    assert_eq!(r.status, Some(200));
    let Outcome::Success { phases, duration } = r.outcome else {
        unreachable!()
    };
    assert_eq!(phases.get(Phase::Transfer), Some(duration));
    assert!(phases.get(Phase::Connect).is_some());
    let head = server.seen.lock().unwrap()[0].head.to_ascii_lowercase();
    assert!(head.contains("accept-encoding: identity"), "{head}");
    assert!(head.starts_with("get /big.bin "), "{head}");
}

#[tokio::test]
async fn slow_link_is_cut_by_max_duration_and_not_short() {
    // ~400 kB/s: the object did not end, max_duration cut a test that moved
    // more than min_bytes.
    let server = RawServer::start(|tcp| {
        paced(
            tcp,
            head_with_length(100 * MB, ""),
            8192,
            Duration::from_millis(20),
            100 * MB,
        )
    })
    .await;
    let mut s = spec(server.url(), Direction::Download);
    s.min_bytes = 200_000;
    let r = run(&s).await;
    let bps = good(&r);
    assert_eq!(r.ended_by, Some(EndedBy::MaxDuration));
    assert!(r.bytes > 100_000 && r.bytes < MB, "{r:?}");
    assert!(
        r.transfer >= Duration::from_millis(700) && r.transfer <= Duration::from_millis(850),
        "{r:?}"
    );
    // 8192 bytes per ≥20 ms: at most 3.3 Mbit/s, and timer slack keeps it above 2.
    assert!((2.0e6..3.4e6).contains(&bps), "{bps}");
}

#[tokio::test]
async fn trickle_below_min_bytes_is_short_body_whatever_ended_it() {
    // Issue 19: a 1 byte/s server with no Content-Length moved 14 bytes in
    // 3 s (37 bit/s) and counted as a good test ended by max_duration.
    let server = RawServer::start(|mut tcp| async move {
        tcp.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .await?;
        loop {
            tcp.write_all(b"x").await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let mut s = spec(server.url(), Direction::Download);
    s.streams = 4;
    s.min_bytes = 1000;
    s.max_duration = Duration::from_secs(3);
    s.timeout = Duration::from_secs(2);
    let r = run(&s).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::ShortBody, "{detail}");
    assert!(
        detail.contains("max_duration") && detail.contains("min_bytes (1000)"),
        "{detail}"
    );
    assert!((8..=20).contains(&r.bytes), "{r:?}");
    assert_eq!(r.ended_by, None);
    assert!(
        r.partial,
        "a figure from so few bytes is never a result: {r:?}"
    );
    // The 4 load connections, plus the latency-under-load probes' own.
    let probes = r.loaded.as_ref().map_or(0, |l| l.probe_connections);
    let conns = server.conns.load(Ordering::SeqCst);
    assert!(
        (4..=4 + probes).contains(&conns),
        "{conns} connections, {probes} probes"
    );
}

/// Writes `head`, then an endless body at `rate` bytes/s that starts at
/// 1/16 of it and doubles every `ramp / 4`: TCP slow start, as a sender's
/// pacing. Sends whatever is due every 5 ms, so timer slack does not lower the rate.
async fn ramping(mut tcp: TcpStream, rate: f64, ramp: Duration) -> std::io::Result<()> {
    tcp.write_all(head_with_length(1 << 40, "").as_bytes())
        .await?;
    let block = vec![b'r'; 65536];
    let start = tokio::time::Instant::now();
    let step = ramp.as_secs_f64() / 4.0;
    // Bytes due by `t` seconds: the integral of the doubling rate, then flat.
    let due = |t: f64| -> f64 {
        let r = ramp.as_secs_f64();
        let ramp_bytes = |t: f64| rate * step / std::f64::consts::LN_2 * 2f64.powf((t - r) / step);
        if t < r {
            ramp_bytes(t) - ramp_bytes(0.0)
        } else {
            ramp_bytes(r) - ramp_bytes(0.0) + rate * (t - r)
        }
    };
    let mut sent = 0u64;
    loop {
        let owed = due(start.elapsed().as_secs_f64()) as u64;
        while sent < owed {
            let n = (owed - sent).min(block.len() as u64) as usize;
            tcp.write_all(&block[..n]).await?;
            sent += n as u64;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn download_figure_leaves_out_the_ramp() {
    // 4 MB/s after a 600 ms ramp from 250 kB/s: over the 2 s window the whole
    // transfer averages ~80 % of the rate; the figure is the rate.
    let rate = 4e6;
    let server = RawServer::start(move |tcp| ramping(tcp, rate, Duration::from_millis(600))).await;
    let mut s = spec(server.url(), Direction::Download);
    s.max_bytes = 100 * MB;
    s.max_duration = Duration::from_secs(2);
    let r = run(&s).await;
    let figure = good(&r) / 8.0;
    let whole = r.bytes as f64 / r.transfer.as_secs_f64();
    assert_eq!(r.ended_by, Some(EndedBy::MaxDuration));
    assert!(
        (figure - rate).abs() / rate < 0.03,
        "figure {figure:.0} B/s against the server's {rate:.0} B/s ({r:?})"
    );
    assert!(whole < 0.88 * rate, "whole-transfer average {whole:.0} B/s");
    assert!(
        r.ramp >= Duration::from_millis(400) && r.ramp <= Duration::from_millis(800),
        "{r:?}"
    );
}

#[tokio::test]
async fn hundred_bytes_then_close_is_short_body() {
    // Close-delimited body.
    let server = RawServer::start(|mut tcp| async move {
        tcp.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .await?;
        tcp.write_all(&[b'x'; 100]).await?;
        tcp.shutdown().await
    })
    .await;
    let r = run(&spec(server.url(), Direction::Download)).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::ShortBody, "{detail}");
    assert_eq!(r.bytes, 100);
    assert_eq!(r.ended_by, None);

    // A Content-Length of 4 MB, but the server closes after 100 bytes.
    let server = RawServer::start(|mut tcp| async move {
        tcp.write_all(head_with_length(4 * MB, "").as_bytes())
            .await?;
        tcp.write_all(&[b'x'; 100]).await?;
        tcp.shutdown().await
    })
    .await;
    let r = run(&spec(server.url(), Direction::Download)).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::ShortBody, "{detail}");
    assert_eq!(r.bytes, 100);
}

#[tokio::test]
async fn small_content_length_is_short_body() {
    // A captive portal's page: complete and fast, and never a speed figure.
    let server = RawServer::start(|mut tcp| async move {
        tcp.write_all(head_with_length(5000, "").as_bytes()).await?;
        tcp.write_all(&[b'<'; 5000]).await
    })
    .await;
    let r = run(&spec(server.url(), Direction::Download)).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::ShortBody);
    assert!(
        detail.contains("5000") && detail.contains("Content-Length"),
        "{detail}"
    );
    assert!(!r.outcome.is_success());
}

#[tokio::test]
async fn stall_half_way_is_an_error_with_a_partial_figure() {
    let server = RawServer::start(|mut tcp| async move {
        tcp.write_all(head_with_length(4 * MB, "").as_bytes())
            .await?;
        tcp.write_all(&vec![b'x'; 2 * MB as usize]).await?;
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let mut s = spec(server.url(), Direction::Download);
    s.max_duration = Duration::from_secs(2);
    s.timeout = Duration::from_millis(400);
    let r = run(&s).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::Stall, "{detail}");
    assert!(r.partial);
    assert_eq!(r.bytes, 2 * MB);
    assert!(r.bits_per_second.unwrap() > 0.0);
    assert_eq!(r.ended_by, None);
    assert_eq!(r.streams_finished, 0);
}

#[tokio::test]
async fn gzip_body_counts_wire_bytes_and_is_capped() {
    // gzip magic and deflate-looking bytes that would expand enormously if
    // decoded: the figure is what crossed the wire, never decompressed.
    let gz = |mut tcp: TcpStream| async move {
        let extra = "Content-Encoding: gzip\r\nContent-Type: application/octet-stream\r\n";
        tcp.write_all(head_with_length(3 * MB, extra).as_bytes())
            .await?;
        let mut body = vec![0u8; 3 * MB as usize];
        body[..10].copy_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        tcp.write_all(&body).await
    };
    let server = RawServer::start(gz).await;
    let mut s = spec(server.url(), Direction::Download);
    s.max_bytes = MB;
    let r = run(&s).await;
    good(&r);
    assert_eq!((r.bytes, r.ended_by), (MB, Some(EndedBy::MaxBytes)));
    s.max_bytes = 8 * MB;
    let r = run(&s).await;
    good(&r);
    assert_eq!((r.bytes, r.ended_by), (3 * MB, Some(EndedBy::EndOfObject)));
    for head in server.heads.lock().unwrap().iter() {
        assert!(head.contains("accept-encoding: identity"), "{head}");
    }
}

/// An endless chunked body, `block` bytes per chunk, one chunk per `every`.
async fn endless_chunked(mut tcp: TcpStream, block: usize, every: Duration) -> std::io::Result<()> {
    tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await?;
    let mut chunk = format!("{block:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b'y', block));
    chunk.extend_from_slice(b"\r\n");
    loop {
        tcp.write_all(&chunk).await?;
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
    }
}

#[tokio::test]
async fn endless_chunked_body_is_capped_by_bytes_and_by_duration() {
    let fast = RawServer::start(|tcp| endless_chunked(tcp, 65536, Duration::ZERO)).await;
    let r = run(&spec(fast.url(), Direction::Download)).await;
    good(&r);
    assert_eq!((r.bytes, r.ended_by), (4 * MB, Some(EndedBy::MaxBytes)));

    let slow = RawServer::start(|tcp| endless_chunked(tcp, 16384, Duration::from_millis(10))).await;
    let mut s = spec(slow.url(), Direction::Download);
    s.max_duration = Duration::from_millis(500);
    s.max_bytes = 100 * MB;
    let r = run(&s).await;
    good(&r);
    assert_eq!(r.ended_by, Some(EndedBy::MaxDuration));
    assert!(r.bytes > 200_000 && r.bytes < 2 * MB, "{r:?}");
}

#[tokio::test]
async fn upload_figure_matches_what_the_server_read() {
    // The server reads at ~26 MB/s (256 KiB per 10 ms), so its pace, not
    // loopback, sets the figure, and both ends time the same transfer.
    let sink = UploadSink::start(None, 200, Some((256 * 1024, Duration::from_millis(10)))).await;
    let mut s = spec(sink.url("http", "/upload"), Direction::Upload);
    s.streams = 2;
    s.max_bytes = 200 * MB;
    s.max_duration = Duration::from_millis(800);
    let r = run(&s).await;
    let client = good(&r);
    let seen = sink.count();
    assert_eq!(seen.requests, 2);
    assert_eq!(r.bytes, seen.bytes, "client counted what the server read");
    assert_eq!(r.ended_by, Some(EndedBy::MaxDuration));
    assert_eq!(r.streams_finished, 2);
    let server = seen.bits_per_second().unwrap();
    let error = (client - server).abs() / server;
    assert!(
        error < 0.05,
        "client {client:.0} b/s vs server {server:.0} b/s ({:.1} %)",
        error * 100.0
    );
    assert_eq!(r.time_to_first_byte, None);
}

#[tokio::test]
async fn upload_is_capped_by_max_bytes_and_needs_a_2xx() {
    let sink = UploadSink::start(None, 204, None).await;
    let mut s = spec(sink.url("http", "/upload"), Direction::Upload);
    s.streams = 3;
    s.max_bytes = 3 * MB;
    let r = run(&s).await;
    good(&r);
    assert_eq!((r.bytes, r.ended_by), (3 * MB, Some(EndedBy::MaxBytes)));
    assert_eq!(sink.count().bytes, 3 * MB);
    assert_eq!(r.status, Some(204));

    let refused = UploadSink::start(None, 500, None).await;
    let s = spec(refused.url("http", "/upload"), Direction::Upload);
    let (why, detail) = reason(&run(&s).await);
    assert_eq!(why, Reason::StatusMismatch);
    assert!(detail.contains("500"), "{detail}");
}

#[tokio::test]
async fn upload_streams_left_without_bytes_by_the_cap_are_not_stalls() {
    // 16 streams share two 64 KiB chunks: most streams get nothing to send.
    // They stopped because the test had all it needed, not because the link stalled.
    let sink = UploadSink::start(None, 200, None).await;
    let mut s = spec(sink.url("http", "/upload"), Direction::Upload);
    s.streams = 16;
    s.max_bytes = 128 * 1024;
    s.min_bytes = 1;
    let r = run(&s).await;
    good(&r);
    assert_eq!((r.bytes, r.ended_by), (128 * 1024, Some(EndedBy::MaxBytes)));
    assert!(r.streams_finished >= 1 && r.streams_finished <= 2, "{r:?}");
}

#[tokio::test]
async fn https_download_and_upload_with_the_test_ca() {
    let pki = TestPki::new(Leaf::Good);
    let server = HttpServer::start(Some(pki.server_config.clone()), |_, _| Reply::Huge).await;
    let mut s = spec(server.url("https", "/big.bin"), Direction::Download);
    s.streams = 2;
    s.ca_file = Some(pki.ca_file.clone());
    let r = run(&s).await;
    good(&r);
    assert_eq!(r.bytes, 4 * MB);
    assert_eq!(r.streams_finished, 2);
    assert_eq!(r.cert_not_after, Some(LEAF_NOT_AFTER));
    let Outcome::Success { phases, .. } = r.outcome else {
        unreachable!()
    };
    assert!(phases.get(Phase::Tls).is_some());

    let sink = UploadSink::start(Some(pki.server_config.clone()), 200, None).await;
    let mut up = spec(sink.url("https", "/up"), Direction::Upload);
    up.ca_file = Some(pki.ca_file.clone());
    let r = run(&up).await;
    good(&r);
    assert_eq!(r.bytes, 4 * MB);
    assert_eq!(sink.count().bytes, 4 * MB);

    // Without the test CA the certificate is unknown.
    s.ca_file = None;
    let (why, detail) = reason(&run(&s).await);
    assert_eq!(why, Reason::Tls);
    assert!(detail.contains("unknown issuer"), "{detail}");
}

#[tokio::test]
async fn four_streams_fill_what_one_cannot() {
    // Each connection is paced at ~1.6 MB/s, as a per-flow limit on a long path.
    let server = RawServer::start(|tcp| {
        paced(
            tcp,
            head_with_length(100 * MB, ""),
            32768,
            Duration::from_millis(20),
            100 * MB,
        )
    })
    .await;
    let mut s = spec(server.url(), Direction::Download);
    s.max_bytes = 100 * MB;
    s.max_duration = Duration::from_millis(600);
    let r1 = run(&s).await;
    let one = good(&r1);
    s.streams = 4;
    let r = run(&s).await;
    let four = good(&r);
    assert_eq!(r.streams, 4);
    assert_eq!(r.streams_finished, 4);
    // 1 + 4 load connections, plus the latency-under-load probes' own
    // (those still connecting when a test ended never reach the server).
    let probes: usize = [&r1, &r]
        .iter()
        .map(|x| x.loaded.as_ref().map_or(0, |l| l.probe_connections))
        .sum();
    let conns = server.conns.load(Ordering::SeqCst);
    assert!(
        (5..=5 + probes).contains(&conns),
        "{conns} connections, {probes} probes"
    );
    let ratio = four / one;
    assert!(
        (3.0..5.0).contains(&ratio),
        "4 streams {four:.0} vs 1 {one:.0}"
    );
}

#[tokio::test]
async fn setup_failures_have_their_reasons() {
    // Nothing listens: refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
    let (why, _) = reason(&run(&spec(url, Direction::Download)).await);
    assert_eq!(why, Reason::ConnectRefused);

    // A 404 page is not an object to measure.
    let server = HttpServer::start(None, |_, _| {
        crate::harness::servers::response("404 Not Found", &[], &[b'x'; 2_000_000])
    })
    .await;
    let (why, _) = reason(&run(&spec(server.url("http", "/x"), Direction::Download)).await);
    assert_eq!(why, Reason::StatusMismatch);

    // Accepts and never answers: a timeout in the first-byte phase, bounded by `timeout`.
    let silent = HttpServer::start(None, |_, _| Reply::Never).await;
    let mut s = spec(silent.url("http", "/x"), Direction::Download);
    s.timeout = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let r = run(&s).await;
    assert_eq!(
        r.outcome,
        Outcome::Timeout {
            phase: Some(Phase::FirstByte)
        }
    );
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn upload_to_a_server_that_stops_reading_is_a_stall() {
    // Reads 1 MiB, then nothing for 10 s: the socket fills and writes stop.
    let sink = UploadSink::start(None, 200, Some((1 << 20, Duration::from_secs(10)))).await;
    let mut s = spec(sink.url("http", "/upload"), Direction::Upload);
    s.max_bytes = 200 * MB;
    s.max_duration = Duration::from_secs(2);
    s.timeout = Duration::from_millis(400);
    let r = run(&s).await;
    let (why, detail) = reason(&r);
    assert_eq!(why, Reason::Stall, "{detail}");
    assert!(r.partial);
    assert!(r.bytes >= 1 << 20, "{r:?}");
    assert_eq!(r.ended_by, None);
}
