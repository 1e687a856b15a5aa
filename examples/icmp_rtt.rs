//! Compares surge-ping's RTT with the time around the whole `ping()` call on
//! loopback, to be read next to `ping -c N -i 0.01 127.0.0.1`.
//!
//! Usage: `cargo run --release --example icmp_rtt -- [HOST] [COUNT]`.

use std::net::IpAddr;
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};

fn stats(name: &str, v: &mut [Duration]) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    let zeros = v.iter().filter(|d| d.is_zero()).count();
    println!(
        "{name:>8}: min {:6.1} µs  p50 {:6.1} µs  mean {:6.1} µs  p90 {:6.1} µs  max {:7.1} µs  zeros {zeros}",
        us(v[0]),
        us(v[v.len() / 2]),
        mean,
        us(v[v.len() * 9 / 10]),
        us(v[v.len() - 1]),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let host: IpAddr = args.next().as_deref().unwrap_or("127.0.0.1").parse()?;
    let count: u16 = args.next().as_deref().unwrap_or("200").parse()?;
    let kind = if host.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    let client = Client::new(&Config::builder().kind(kind).build())?;
    println!("socket type {:?}", client.get_socket().get_type());
    let mut pinger = client.pinger(host, PingIdentifier(rand::random())).await;
    pinger.timeout(Duration::from_secs(1));
    let payload = [0u8; 56];
    let (mut wire, mut outer) = (Vec::new(), Vec::new());
    for seq in 0..count {
        let start = tokio::time::Instant::now();
        let (_, rtt) = pinger.ping(PingSequence(seq), &payload).await?;
        outer.push(start.elapsed());
        wire.push(rtt);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stats("surge", &mut wire);
    stats("outer", &mut outer);
    Ok(())
}
