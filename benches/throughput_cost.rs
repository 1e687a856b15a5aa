//! CPU per megabyte and the rate reached by the throughput engine on loopback,
//! download and upload, plain HTTP and HTTPS, against references in the same
//! run: a plain TCP read/write loop in this process, and curl.
//!
//! The engine runs on a current-thread runtime on the main thread (its stream
//! tasks too); the servers run on their own runtime thread. "client" CPU is the
//! main thread's utime+stime from /proc/thread-self/stat; "process" adds the
//! servers. curl's CPU is its own user+sys (bash `time`). With 2 cores the
//! client and the server each get about one. Run with
//! `cargo bench --bench throughput_cost` (optional argument: megabytes per test).
#![allow(clippy::unwrap_used, clippy::disallowed_types)]

#[allow(dead_code)]
#[path = "../tests/integration/harness/servers.rs"]
mod servers;

use std::time::{Duration, Instant};

use linkwatch::probe::throughput::{Direction, ThroughputProber, ThroughputSpec};
use servers::{HttpServer, Leaf, TestPki, UploadSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kernel clock ticks per second for /proc stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime in seconds from a /proc `stat` file.
fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / TICKS_PER_SECOND
}

struct Row {
    name: String,
    bytes: u64,
    wall: f64,
    client: f64,
    process: Option<f64>,
}

impl Row {
    fn print(&self) {
        let mb = self.bytes as f64 / 1e6;
        println!(
            "{:<34} {:>7.0} {:>9.0} {:>12.2} {:>14}",
            self.name,
            mb,
            self.bytes as f64 * 8.0 / self.wall / 1e6,
            self.client / mb * 1e3,
            self.process
                .map_or("-".to_string(), |p| format!("{:.2}", p / mb * 1e3)),
        );
    }
}

/// Measures `f` (which returns the bytes it moved and its own transfer time).
async fn measure<F, Fut>(name: String, f: F) -> Row
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u64, f64)>,
{
    f().await; // warm up: first handshake, page faults, socket buffers
    let (c0, p0) = (
        cpu_seconds("/proc/thread-self/stat"),
        cpu_seconds("/proc/self/stat"),
    );
    let mut bytes = 0;
    let mut wall = 0.0;
    for _ in 0..3 {
        let (b, w) = f().await;
        bytes += b;
        wall += w;
    }
    Row {
        name,
        bytes,
        wall,
        client: cpu_seconds("/proc/thread-self/stat") - c0,
        process: Some(cpu_seconds("/proc/self/stat") - p0),
    }
}

/// curl's own CPU for one transfer (bash `time`), three runs after a warm-up.
fn curl(name: &str, args: &[String], bytes: u64) -> Option<Row> {
    let cmd = format!(
        "TIMEFORMAT='%R %U %S'; for i in 1 2 3 4; do time curl -sS -o /dev/null {} ; done",
        args.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &cmd])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let runs: Vec<Vec<f64>> = text
        .lines()
        .filter_map(|l| {
            let v: Vec<f64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then_some(v)
        })
        .collect();
    if runs.len() != 4 || !out.status.success() {
        eprintln!("curl reference {name} failed: {text}");
        return None;
    }
    let runs = &runs[1..];
    Some(Row {
        name: name.to_string(),
        bytes: bytes * 3,
        wall: runs.iter().map(|r| r[0]).sum(),
        client: runs.iter().map(|r| r[1] + r[2]).sum(),
        process: None,
    })
}

fn main() {
    let mb: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let size = mb * 1_000_000;
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pki = TestPki::new(Leaf::Good);
    let object = std::sync::Arc::new(vec![b'x'; size as usize]);
    let route = {
        let object = std::sync::Arc::clone(&object);
        move |_: &servers::Seen, _| servers::response("200 OK", &[], &object)
    };
    let (plain, tls, sink, tls_sink, raw_sink) = servers.block_on(async {
        let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw_addr = raw.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = raw.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        (
            HttpServer::start(None, route.clone()).await,
            HttpServer::start(Some(pki.server_config.clone()), route).await,
            UploadSink::start(None, 200, None).await,
            UploadSink::start(Some(pki.server_config.clone()), 200, None).await,
            raw_addr,
        )
    });

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    client.block_on(async {
        let engine = |url: url::Url, direction, streams| {
            let mut s = ThroughputSpec::new(url, direction);
            s.streams = streams;
            s.max_bytes = size;
            s.min_bytes = 1;
            s.max_duration = Duration::from_secs(30);
            s.ca_file = Some(pki.ca_file.clone());
            s
        };
        let cases = [
            (
                "engine download http 1 stream",
                engine(plain.url("http", "/obj"), Direction::Download, 1),
            ),
            (
                "engine download http 4 streams",
                engine(plain.url("http", "/obj"), Direction::Download, 4),
            ),
            (
                "engine download https 1 stream",
                engine(tls.url("https", "/obj"), Direction::Download, 1),
            ),
            (
                "engine download https 4 streams",
                engine(tls.url("https", "/obj"), Direction::Download, 4),
            ),
            (
                "engine upload http 1 stream",
                engine(sink.url("http", "/up"), Direction::Upload, 1),
            ),
            (
                "engine upload http 4 streams",
                engine(sink.url("http", "/up"), Direction::Upload, 4),
            ),
            (
                "engine upload https 1 stream",
                engine(tls_sink.url("https", "/up"), Direction::Upload, 1),
            ),
        ];
        for (name, spec) in cases {
            let prober = ThroughputProber::new([&spec]).unwrap();
            let row = measure(name.to_string(), || async {
                let r = prober.run(&spec).await;
                assert!(r.outcome.is_success(), "{name}: {r:?}");
                (r.bytes, r.transfer.as_secs_f64())
            })
            .await;
            rows.push(row);
        }

        // Reference: a plain TCP read loop of the same object (HTTP head included).
        let addr = plain.addr;
        rows.push(
            measure("reference tcp read loop".into(), || async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(b"GET /obj HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let start = Instant::now();
                let mut got = 0u64;
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                (got, start.elapsed().as_secs_f64())
            })
            .await,
        );
        // Reference: a plain TCP write loop into a socket that reads and discards.
        rows.push(
            measure("reference tcp write loop".into(), || async move {
                let mut s = tokio::net::TcpStream::connect(raw_sink).await.unwrap();
                let buf = vec![7u8; 64 * 1024];
                let start = Instant::now();
                let mut sent = 0u64;
                while sent < size {
                    s.write_all(&buf).await.unwrap();
                    sent += buf.len() as u64;
                }
                s.shutdown().await.unwrap();
                (sent, start.elapsed().as_secs_f64())
            })
            .await,
        );
    });

    let ca = pki.ca_file.display().to_string();
    let upload_file = pki.dir.path().join("upload.bin");
    std::fs::write(&upload_file, &*object).unwrap();
    let up = upload_file.display().to_string();
    let curl_rows = [
        curl(
            "curl download http",
            &[plain.url("http", "/obj").to_string()],
            size,
        ),
        curl(
            "curl download https",
            &[
                "--cacert".into(),
                ca.clone(),
                tls.url("https", "/obj").to_string(),
            ],
            size,
        ),
        curl(
            "curl upload http (-T)",
            &[
                "-X".into(),
                "POST".into(),
                "-T".into(),
                up.clone(),
                sink.url("http", "/up").to_string(),
            ],
            size,
        ),
        curl(
            "curl upload https (-T)",
            &[
                "--cacert".into(),
                ca,
                "-X".into(),
                "POST".into(),
                "-T".into(),
                up,
                tls_sink.url("https", "/up").to_string(),
            ],
            size,
        ),
    ];

    println!(
        "{:<34} {:>7} {:>9} {:>12} {:>14}",
        "case", "MB", "Mbit/s", "client ms/MB", "process ms/MB"
    );
    for row in rows.iter().chain(curl_rows.iter().flatten()) {
        row.print();
    }
    println!(
        "(3 runs of {mb} MB each after a warm-up; CPU from /proc utime+stime at {TICKS_PER_SECOND} ticks/s; \
         client = the engine's thread only; curl rows: curl's own user+sys, wall = whole run)"
    );
    drop((plain, tls, sink, tls_sink));
}
