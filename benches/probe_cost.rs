//! Per-probe CPU cost of HTTPS (a new connection and TLS handshake each time)
//! and DNS over UDP, relative to a plain TCP connect probe in the same run.
//!
//! The probes run on a current-thread runtime on the main thread; the loopback
//! servers run on their own runtime and threads. "client" CPU is the main
//! thread's utime+stime from /proc/thread-self/stat, i.e. the prober alone;
//! "process" CPU adds the servers. Run with `cargo bench --bench probe_cost`
//! (optional argument: a multiplier for the probe counts).
#![allow(clippy::unwrap_used, clippy::disallowed_types)]

#[allow(dead_code)] // the tests use more of it than the benchmark
#[path = "../tests/integration/harness/configs.rs"]
mod configs;
#[allow(dead_code)]
#[path = "../tests/integration/harness/servers.rs"]
mod support_probe;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use configs::{config_with, target};
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use linkwatch::config::{DnsTransport, Host, IpVersion, TargetSpec, TcpSpec};
use linkwatch::probe::Observation;
use linkwatch::probe::dns::DnsProber;
use linkwatch::probe::http::HttpProber;
use linkwatch::probe::tcp::TcpProber;
use support_probe::{HttpServer, Leaf, TestPki, dns_server, dns_spec, http_spec};

/// Kernel clock ticks per second for /proc stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime in seconds from a /proc `stat` file.
fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap();
    // The command name (field 2) may hold spaces; fields after ')' are fixed.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / TICKS_PER_SECOND
}

struct Cost {
    name: &'static str,
    n: usize,
    client: f64,
    process: f64,
    wall: f64,
    failures: usize,
}

impl Cost {
    fn client_us(&self) -> f64 {
        self.client / self.n as f64 * 1e6
    }
}

async fn measure<F, Fut>(name: &'static str, n: usize, mut probe: F) -> Cost
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Observation>,
{
    // Warm up (first handshake, page faults, socket caches).
    for _ in 0..20 {
        probe().await;
    }
    let (client0, process0, wall0) = (
        cpu_seconds("/proc/thread-self/stat"),
        cpu_seconds("/proc/self/stat"),
        Instant::now(),
    );
    let mut failures = 0;
    for _ in 0..n {
        if !probe().await.outcome.is_success() {
            failures += 1;
        }
    }
    Cost {
        name,
        n,
        client: cpu_seconds("/proc/thread-self/stat") - client0,
        process: cpu_seconds("/proc/self/stat") - process0,
        wall: wall0.elapsed().as_secs_f64(),
        failures,
    }
}

/// Answers every A query with 192.0.2.1.
async fn dns_udp_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, OpCode::Query);
            reply.metadata.recursion_desired = true;
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
        }
    });
    addr
}

/// Accepts and drops connections (the TCP connect reference).
async fn tcp_sink() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    addr
}

fn main() {
    let scale: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1);
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pki = TestPki::new(Leaf::Good);
    let (https, dns, tcp) = servers.block_on(async {
        let https = HttpServer::start(Some(pki.server_config.clone()), |_, _| {
            support_probe::response("204 No Content", &[], b"")
        })
        .await;
        (https, dns_udp_server().await, tcp_sink().await)
    });

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let costs = client.block_on(async {
        let deadline = || tokio::time::Instant::now() + Duration::from_secs(2);

        let tcp_spec = TcpSpec {
            host: Host::Ip(tcp.ip()),
            port: tcp.port(),
            ip_version: IpVersion::Any,
        };
        let tcp_target = target("tcp", TargetSpec::Tcp(tcp_spec.clone()));
        let tcp_prober = TcpProber::new();

        let mut h = http_spec(https.url("https", "/generate_204"));
        h.ca_file = Some(pki.ca_file.clone());
        let http_target = target("https", TargetSpec::Http(Box::new(h.clone())));
        let http_prober = HttpProber::new(&config_with(vec![http_target.clone()])).unwrap();

        let d = dns_spec(dns_server(dns, DnsTransport::Udp), "bench.test");
        let dns_target = target("dns", TargetSpec::Dns(Box::new(d.clone())));
        let dns_prober = DnsProber::new(&config_with(vec![dns_target.clone()])).unwrap();

        vec![
            measure("tcp connect", 4000 * scale, || {
                tcp_prober.probe(&tcp_target, &tcp_spec, deadline())
            })
            .await,
            measure("https (new conn)", 1500 * scale, || {
                http_prober.probe(0, &http_target, &h, deadline())
            })
            .await,
            measure("dns udp", 6000 * scale, || {
                dns_prober.probe(0, &dns_target, &d, deadline())
            })
            .await,
        ]
    });

    let reference = costs[0].client_us();
    println!(
        "{:<18} {:>6} {:>14} {:>10} {:>15} {:>12} {:>8}",
        "probe", "n", "client CPU/op", "vs tcp", "process CPU/op", "wall/op", "failed"
    );
    for c in &costs {
        println!(
            "{:<18} {:>6} {:>11.1} µs {:>9.1}x {:>12.1} µs {:>9.1} µs {:>8}",
            c.name,
            c.n,
            c.client_us(),
            c.client_us() / reference,
            c.process / c.n as f64 * 1e6,
            c.wall / c.n as f64 * 1e6,
            c.failures
        );
    }
    println!(
        "(CPU from /proc utime+stime at {TICKS_PER_SECOND} ticks/s; client = the probing thread only)"
    );
    drop(https);
    assert!(costs.iter().all(|c| c.failures == 0), "some probes failed");
}
