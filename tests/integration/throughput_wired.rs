//! Throughput targets through the wired path: config → `linkwatch probe` and
//! the daemon (scheduler, seam, metrics, budget) on loopback, and the
//! fidelity of the figure against a `tc tbf` bottleneck between namespaces.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::daemon::{BIN, Daemon, promtool_check_metrics, require, sample, sum};
use crate::harness::netns::{Netns, link, require_root};
use crate::harness::servers::{HttpServer, Reply, UploadSink};
use linkwatch::metrics as m;

/// A loopback server that reads a request head, then runs `serve` on the connection.
async fn raw<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let serve = Arc::clone(&serve);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tcp.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = serve(tcp).await;
            });
        }
    });
    addr
}

/// Serves the scripted loopback servers from a runtime of their own.
struct Servers {
    rt: tokio::runtime::Runtime,
}

impl Servers {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        }
    }
}

fn target(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[[target]]\nname = \"{name}\"\ngroup = \"net\"\nkind = \"throughput\"\nurl = \"{url}\"\n{extra}\n"
    )
}

fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
}

/// Every bad server of the engine tests, once more through the config and
/// `linkwatch probe`: good tests print rate and bytes, a captive-portal-sized
/// body is `short_body`, a stall keeps its partial figure, compressed and
/// endless bodies are capped by bytes and by time.
#[test]
fn probe_command_prints_figures_and_every_bad_server_has_its_reason() {
    let s = Servers::new();
    let (huge, sink, short, stall, endless, gzip) = s.rt.block_on(async {
        let huge = HttpServer::start(None, |_, _| Reply::Huge).await;
        let sink = UploadSink::start(None, 200, None).await;
        let short = raw(|mut tcp| async move {
            tcp.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await?;
            tcp.write_all(&[b'x'; 100]).await?;
            tcp.shutdown().await
        })
        .await;
        let stall = raw(|mut tcp| async move {
            tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n")
                .await?;
            tcp.write_all(&vec![b'x'; 2_000_000]).await?;
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        let endless = raw(|mut tcp| async move {
            tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = [b"10000\r\n".as_slice(), &[b'x'; 0x10000], b"\r\n"].concat();
            loop {
                tcp.write_all(&chunk).await?;
            }
        })
        .await;
        // A "gzip bomb": declares gzip and sends highly compressible bytes
        // forever; only wire bytes count, nothing is decompressed.
        let gzip = raw(|mut tcp| async move {
            tcp.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1000000000\r\n\r\n",
            )
            .await?;
            let zeros = vec![0u8; 65536];
            loop {
                tcp.write_all(&zeros).await?;
            }
        })
        .await;
        (huge, sink, short, stall, endless, gzip)
    });
    let url = |a: SocketAddr| format!("http://{a}/blob");
    let caps = "max_bytes = \"3 MB\"\nmax_duration = \"1s\"\nmin_bytes = \"1 MB\"\ntimeout = \"1s\"\ninterval = \"1m\"";
    let mut cfg = String::from("[[group]]\nname = \"net\"\n");
    cfg += &target(
        "down",
        huge.url("http", "/25MB.bin").as_ref(),
        &format!("{caps}\nstreams = 2"),
    );
    cfg += &target(
        "up",
        sink.url("http", "/upload").as_ref(),
        &format!("{caps}\ndirection = \"upload\""),
    );
    cfg += &target("short", &url(short), caps);
    // Stalls for longer than `timeout` before `max_duration` ends the test.
    let stall_caps = caps.replace("max_duration = \"1s\"", "max_duration = \"3s\"");
    cfg += &target("stall", &url(stall), &format!("{stall_caps}\nstreams = 1"));
    // Stalls too, but `max_duration` comes first: a good test whose figure
    // counts the silent end of the window (2 MB over 1 s, not over the burst).
    cfg += &target("burst", &url(stall), &format!("{caps}\nstreams = 1"));
    cfg += &target("endless", &url(endless), caps);
    cfg += &target("gzip", &url(gzip), caps);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tp.toml");
    std::fs::write(&path, &cfg).unwrap();

    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // interval 1m < 5m: valid, with a warning about data use.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more often than every 5m"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = std::time::Instant::now();
    let out = std::process::Command::new(BIN)
        .args(["probe", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    // One after another (tests never share the link), each within its worst case.
    assert!(started.elapsed() < Duration::from_secs(20), "{table}");
    assert_eq!(out.status.code(), Some(1), "{table}");

    let down = row(&table, "down");
    assert!(down.contains(" ok "), "{down}");
    assert!(down.contains("download rate="), "{down}");
    assert!(down.contains("bytes=3.00 MB"), "{down}");
    assert!(down.contains("streams=2/2"), "{down}");
    assert!(down.contains("ended_by=max_bytes"), "{down}");
    let up = row(&table, "up");
    assert!(up.contains(" ok ") && up.contains("upload rate="), "{up}");
    assert!(up.contains("bytes=3.00 MB"), "{up}");

    let short = row(&table, "short");
    assert!(
        short.contains(" error ") && short.contains("short_body"),
        "{short}"
    );
    assert!(!short.contains("rate="), "{short}");
    let stall = row(&table, "stall");
    assert!(
        stall.contains(" error ") && stall.contains("stall:"),
        "{stall}"
    );
    assert!(stall.contains("partial_rate="), "{stall}");
    assert!(stall.contains("bytes=2.00 MB"), "{stall}");
    let burst = row(&table, "burst");
    assert!(
        burst.contains(" ok ") && burst.contains("ended_by=max_duration"),
        "{burst}"
    );
    let bps = rate_of(burst).unwrap();
    assert!(
        (15.0e6..=16.5e6).contains(&bps),
        "2 MB over the 1 s window: {burst}"
    );
    for name in ["endless", "gzip"] {
        let r = row(&table, name);
        assert!(r.contains(" ok "), "{r}");
        assert!(r.contains("bytes=3.00 MB"), "{r}");
        assert!(r.contains("ended_by=max_bytes"), "{r}");
    }
    drop(s);
}

/// The daemon runs a throughput target: the figure, the histogram and the
/// bytes spent are exported (promtool accepts them), and once the day's
/// budget cannot hold another test, slots are skipped with `reason="budget"`.
#[test]
fn daemon_exports_figures_and_stops_at_the_daily_budget() {
    let s = Servers::new();
    let huge = s.rt.block_on(HttpServer::start(None, |_, _| Reply::Huge));
    let cfg = format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"

[plan]
download = "100 Mbit/s"

[[group]]
name = "net"

[[target]]
name = "dl"
group = "net"
kind = "throughput"
url = "{}"
interval = "10s"
timeout = "1s"
max_duration = "2s"
max_bytes = "2 MB"
min_bytes = "1 MB"
max_bytes_per_day = "3 MB"
"#,
        huge.url("http", "/25MB.bin")
    );
    let mut d = Daemon::start(&cfg);
    let first = d.wait_for(Duration::from_secs(5), |d| {
        let b = d.metrics();
        (sum(&b, m::PROBES_TOTAL, &[("target", "dl")]) >= 1.0).then_some(b)
    });
    let labels = [
        ("target", "dl"),
        ("group", "net"),
        ("direction", "download"),
    ];
    assert_eq!(
        sample(
            &first,
            m::PROBES_TOTAL,
            &[("target", "dl"), ("result", "success")]
        ),
        Some(1.0),
        "{}",
        d.log()
    );
    // Bytes per second (Prometheus's base unit): over 1 MB/s on loopback.
    assert!(
        sample(&first, m::THROUGHPUT_BPS, &labels).unwrap() > 1e6,
        "{first}"
    );
    assert_eq!(
        sample(&first, m::THROUGHPUT_BYTES_TOTAL, &labels),
        Some(2e6)
    );
    assert_eq!(
        sample(
            &first,
            &format!("{}_count", m::THROUGHPUT_TESTS_BPS),
            &labels
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &first,
            m::PROBES_SKIPPED_TOTAL,
            &[("target", "dl"), ("reason", "budget")]
        ),
        Some(0.0)
    );
    // [plan] is exported for the dashboard's "against the plan" panel.
    assert_eq!(
        sample(&first, m::PLAN_BPS, &[("direction", "download")]),
        Some(100e6 / 8.0),
        "{first}"
    );
    assert_eq!(
        sample(&first, m::PLAN_BPS, &[("direction", "upload")]),
        None
    );
    if require(
        promtool_check_metrics("").is_some(),
        "promtool (Debian package `prometheus`) is not installed",
    ) {
        // Lint-clean: the throughput and plan families are in bytes, the
        // base unit promtool asks for (exit 3 is a lint finding, 1 a parse error).
        let (code, out) = promtool_check_metrics(&first).unwrap();
        assert_eq!(code, 0, "promtool check metrics failed ({code}):\n{out}");
        for family in [m::THROUGHPUT_BPS, m::THROUGHPUT_TESTS_BPS, m::PLAN_BPS] {
            assert!(first.contains(&format!("# TYPE {family} ")), "{first}");
        }
    }
    // 2 MB spent of 3 MB: the next slot (10-11 s after the first) is refused.
    let later = d.wait_for(Duration::from_secs(14), |d| {
        let b = d.metrics();
        (sample(
            &b,
            m::PROBES_SKIPPED_TOTAL,
            &[("target", "dl"), ("reason", "budget")],
        ) == Some(1.0))
        .then_some(b)
    });
    assert_eq!(sum(&later, m::PROBES_TOTAL, &[("target", "dl")]), 1.0);
    assert_eq!(
        sample(&later, m::THROUGHPUT_BYTES_TOTAL, &labels),
        Some(2e6)
    );
    assert!(d.log().contains("daily data budget spent"), "{}", d.log());
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{}", d.log());
    drop(s);
}

// ---- fidelity against a tbf bottleneck -------------------------------------

/// Name of the in-namespace server, as libtest knows it.
const INNER_SERVE: &str = "throughput_wired::inner_throughput_server";
const PORT: u16 = 8080;

/// The far half: an HTTP/1.1 server on `LWT_TP_LISTEN` that answers GET with
/// an endless 1 GB body and reads POST bodies to the end, then answers 200.
#[test]
#[ignore = "run by the throughput fidelity test through `ip netns exec`"]
fn inner_throughput_server() {
    if !crate::harness::configs::is_inner() {
        return;
    }
    let addr: SocketAddr = std::env::var("LWT_TP_LISTEN").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use http_body_util::BodyExt;
        let listener = TcpListener::bind(addr).await.unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mut body = req.into_body();
                        while let Some(Ok(_)) = body.frame().await {}
                        Ok::<_, Infallible>(hyper::Response::new(Endless(1 << 30)))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

/// A response body of `n` bytes in 64 KiB frames (empty for a POST's answer
/// would do too; the client reads only the status of an upload).
struct Endless(u64);

static BLOCK: [u8; 65536] = [b'x'; 65536];

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.0 == 0 {
            return Poll::Ready(None);
        }
        let n = this.0.min(BLOCK.len() as u64);
        this.0 -= n;
        Poll::Ready(Some(Ok(Frame::data(
            Bytes::from_static(&BLOCK).slice(..n as usize),
        ))))
    }

    fn is_end_stream(&self) -> bool {
        self.0 == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0)
    }
}

/// The rate in a `linkwatch probe` row (`rate=9.56 Mbit/s`), bits per second.
fn rate_of(row: &str) -> Option<f64> {
    let rest = row.split(" rate=").nth(1)?;
    let mut words = rest.split_whitespace();
    let value: f64 = words.next()?.parse().ok()?;
    let scale = match words.next()? {
        "bit/s" => 1.0,
        "kbit/s" => 1e3,
        "Mbit/s" => 1e6,
        "Gbit/s" => 1e9,
        _ => return None,
    };
    Some(value * scale)
}

/// tbf bucket: 5 ms of the rate (at least one timer tick of bytes, so the
/// shaper reaches its rate: 50 Mbit/s at HZ=250 needs 25 kB) and at least
/// 5 kB; small enough that the start-up burst adds under 1 % to a 3 s test.
fn burst_bytes(mbit: u32) -> u32 {
    (mbit * 1_000_000 / 8 / 200).max(5_000)
}

/// tbf queue: 100 ms of the rate, and at least 64 kB, which holds the first
/// flight of four streams (4 × 10 segments). A shallower queue at 2 Mbit/s
/// drops most of that flight and leaves streams in retransmission timeouts.
fn limit_bytes(mbit: u32) -> u32 {
    (mbit * 1_000_000 / 8 / 10).max(64_000)
}

/// The goodput a bulk TCP transfer can get through a shaper of `mbit` that
/// counts whole Ethernet frames of `mtu` bytes of IP: each full segment
/// carries `mtu` − 20 (IPv4) − 20 (TCP) − 12 (timestamps option) bytes of
/// body in `mtu` + 14 (Ethernet header) bytes of line rate: 1448 of 1514,
/// 95.6 %, at the usual 1500. (HTTP headers are a few hundred bytes a test.)
fn goodput_equivalent(mbit: u32, mtu: u32) -> f64 {
    f64::from(mbit) * 1e6 * f64::from(mtu - 52) / f64::from(mtu + 14)
}

/// The MTU of `dev` in `ns` (`ip -o link show`: "… mtu 1500 …").
fn mtu(ns: &Netns, dev: &str) -> u32 {
    let line = ns.ip(&["-o", "link", "show", "dev", dev]);
    line.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in {line:?}"))
}

/// Runs per case of the fidelity test.
const RUNS: usize = 5;

/// The figure within ±5 % of what a `tc tbf` bottleneck delivers at 2, 10
/// and 50 Mbit/s, both ways: a server in `far`, `linkwatch probe` in `home`,
/// tbf on both ends of the link between them (test namespaces only). The
/// reference is the goodput the shaped rate can carry
/// ([`goodput_equivalent`]: tbf counts Ethernet, IP and TCP headers, a file
/// download gets only the body). Each case runs [`RUNS`] 3 s tests with the
/// default 4 streams after one warm-up test; the median must be within ±5 %
/// (it has been within ±1.2 %), and the median and spread of each case are
/// printed. Single runs are not judged: about one in twenty, more often the
/// first after the shaper changed (printed as the warm-up), has losses and
/// bursts all through the transfer (not a ramp the figure could leave out)
/// and reads 5-18 % low (downloads at 2 Mbit/s, uploads at 10 Mbit/s):
/// that is what the link delivered in those 3 s.
#[test]
fn figure_matches_a_tbf_bottleneck_both_ways() {
    if !require_root() {
        return;
    }
    let (home, far) = (Netns::new(), Netns::new());
    let l = link(&home, &far, 41);
    home.wait_up(&l.a_if);
    far.wait_up(&l.b_if);
    far.spawn_inner(
        INNER_SERVE,
        &[("LWT_TP_LISTEN", &format!("{}:{PORT}", l.b_v4))],
    );
    far.wait_listening(PORT);
    let mtu = mtu(&home, &l.a_if).min(mtu(&far, &l.b_if));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fidelity.toml");
    let base = format!("http://{}:{PORT}", l.b_v4);
    // The default streams (4) and timeout (5 s); a short test.
    let caps =
        "max_bytes = \"200 MB\"\nmax_duration = \"3s\"\nmin_bytes = \"100 kB\"\ninterval = \"1m\"";
    let mut cfg = String::from("[[group]]\nname = \"net\"\n");
    cfg += &target("down", &format!("{base}/1GB.bin"), caps);
    cfg += &target(
        "up",
        &format!("{base}/upload"),
        &format!("{caps}\ndirection = \"upload\""),
    );
    std::fs::write(&path, cfg).unwrap();

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for mbit in [2u32, 10, 50] {
        for (ns, dev) in [(&home, &l.a_if), (&far, &l.b_if)] {
            ns.exec(&[
                "tc",
                "qdisc",
                "replace",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                &format!("{mbit}mbit"),
                "burst",
                &burst_bytes(mbit).to_string(),
                "limit",
                &limit_bytes(mbit).to_string(),
            ]);
        }
        let reference = goodput_equivalent(mbit, mtu);
        for name in ["down", "up"] {
            let mut errors = Vec::new();
            let mut warm_up = None;
            for run in 0..=RUNS {
                let out = home
                    .command(&[
                        BIN,
                        "probe",
                        "--config",
                        path.to_str().unwrap(),
                        "--target",
                        name,
                    ])
                    .output()
                    .unwrap();
                let table = String::from_utf8_lossy(&out.stdout).into_owned();
                let r = row(&table, name).to_string();
                match rate_of(&r).filter(|_| r.contains(" ok ")) {
                    Some(bps) if run == 0 => warm_up = Some((bps - reference) / reference * 100.0),
                    Some(bps) => errors.push((bps - reference) / reference * 100.0),
                    None if run == 0 => {}
                    None => failures.push(format!("{mbit} Mbit/s {name}: no good test: {r}")),
                }
            }
            if errors.is_empty() {
                continue;
            }
            let runs: Vec<String> = errors.iter().map(|e| format!("{e:+.1}")).collect();
            let mut sorted = errors.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
            let median_bps = reference * (1.0 + median / 100.0);
            report.push(format!(
                "{mbit:>2} Mbit/s {name:<4}: median {:.3} Mbit/s = {median:+.1} % of the goodput \
                 equivalent ({:+.1} % of the line rate), spread {lo:+.1} … {hi:+.1} %, runs {} % \
                 (warm-up {})",
                median_bps / 1e6,
                (median_bps / (f64::from(mbit) * 1e6) - 1.0) * 100.0,
                runs.join(" "),
                warm_up.map_or("failed".to_string(), |e| format!("{e:+.1} %"))
            ));
            if median.abs() > 5.0 {
                failures.push(format!(
                    "{mbit} Mbit/s {name}: median outside ±5 % of {:.3} Mbit/s (runs {} %)",
                    reference / 1e6,
                    runs.join(" ")
                ));
            }
        }
    }
    eprintln!(
        "THROUGHPUT FIDELITY (tbf on both ends, 100 ms queue, warm-up + {RUNS} × 3 s tests, 4 streams; \
         reference: goodput equivalent of the tbf rate at MTU {mtu}):\n  {}",
        report.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
