//! Issue 21, `throttled_name`: a throughput target far below its
//! `control_url` on loopback servers, through the prober and through the
//! daemon (metrics, the `interference` journal line, the slow period with
//! the cause `interference`, live in the API).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::daemon::{Daemon, sample};
use crate::harness::servers::{HttpServer, Reply};
use linkwatch::config::{Direction, ThroughputSpec};
use linkwatch::interference::{Check, Extra};
use linkwatch::metrics as m;
use linkwatch::probe::throughput::ThroughputProber;

const MB: u64 = 1_000_000;

/// A loopback server that reads a request head, then sends an endless body
/// of 8 KiB every 20 ms (about 400 kB/s: a throttled name).
async fn slow_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = trickle(tcp).await;
            });
        }
    });
    addr
}

async fn trickle(mut tcp: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        .await?;
    let block = vec![b'x'; 8192];
    loop {
        tcp.write_all(&block).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spec(url: &str, control: Option<&str>) -> ThroughputSpec {
    let mut s = ThroughputSpec::new(url.parse().unwrap(), Direction::Download);
    s.streams = 1;
    s.max_bytes = 2 * MB;
    s.min_bytes = 100_000;
    s.max_duration = Duration::from_millis(800);
    s.timeout = Duration::from_millis(800);
    s.control_url = control.map(|c| c.parse().unwrap());
    s
}

/// The prober: a slow test is followed by one control test; far below it,
/// the observation carries `throttled_name` evidence naming the host and
/// both rates; a test at the control's speed, a failed control, or a test
/// above the group's floor carries none. The control's bytes are spent.
#[tokio::test]
async fn a_test_far_below_its_control_is_throttled_name() {
    let fast = HttpServer::start(None, |_, _| Reply::Huge).await;
    let slow = slow_server().await;
    let slow_url = format!("http://localhost:{}/video.bin", slow.port());
    let fast_url = fast.url("http", "/25MB.bin").to_string();
    let s = spec(&slow_url, Some(&fast_url));
    let prober = ThroughputProber::new([&s]).unwrap();

    let o = prober.run_checked(&s, None).await;
    assert!(
        o.outcome.is_success(),
        "a throttled test is still a good test: {o:?}"
    );
    assert_eq!(o.info.extra, Some(Extra::ThroughputControl));
    let ev = o.info.evidence.as_ref().expect("throttled_name evidence");
    assert_eq!(ev.check, Check::ThrottledName);
    assert_eq!(ev.name, "localhost");
    assert!(ev.detail.contains("of the control's rate"), "{}", ev.detail);
    assert_eq!(ev.raw.len(), 2, "{:?}", ev.raw);
    let tp = o.info.throughput.as_ref().unwrap();
    assert!(
        tp.bytes > 2 * MB,
        "the control's 2 MB are spent with the test's: {}",
        tp.bytes
    );

    // Above the group's floor: not slow, no control test.
    let o = prober.run_checked(&s, Some(1.0)).await;
    assert_eq!((o.info.extra, o.info.evidence.is_none()), (None, true));

    // The control at the same speed: a slow server, not a throttled name.
    let same = spec(
        &slow_url,
        Some(&format!("http://127.0.0.1:{}/other", slow.port())),
    );
    let o = prober.run_checked(&same, None).await;
    assert_eq!(o.info.extra, Some(Extra::ThroughputControl));
    assert!(o.info.evidence.is_none(), "{:?}", o.info.evidence);

    // A control that fails says nothing.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = spec(&slow_url, Some(&format!("http://127.0.0.1:{closed}/x")));
    let o = prober.run_checked(&dead, None).await;
    assert_eq!(o.info.extra, Some(Extra::ThroughputControl));
    assert!(o.info.evidence.is_none());
    assert!(o.outcome.is_success());

    // No control_url: nothing extra.
    let plain = spec(&slow_url, None);
    let o = prober.run_checked(&plain, None).await;
    assert_eq!((o.info.extra, o.info.evidence.is_none()), (None, true));
}

/// The daemon: the throttled target's slow period has the trigger
/// `throttled_name` and the cause `interference` (live in the API, with its
/// summary), one `interference` journal line, and both counters.
#[test]
fn daemon_records_a_throttled_name_as_interference() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (fast, slow) = rt.block_on(async {
        (
            HttpServer::start(None, |_, _| Reply::Huge).await,
            slow_server().await,
        )
    });
    let cfg = format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{{data_dir}}"

[[group]]
name = "net"

[[target]]
name = "video"
group = "net"
kind = "throughput"
url = "http://localhost:{port}/video.bin"
control_url = "{control}"
throttled_below = "50%"
interval = "12s"
timeout = "1s"
max_duration = "1s"
max_bytes = "2 MB"
min_bytes = "100 kB"
streams = 1
"#,
        port = slow.port(),
        control = fast.url("http", "/25MB.bin"),
    );
    let mut d = Daemon::start(&cfg);
    let labels = [("target", "video"), ("check", "throttled_name")];
    let metrics = d.wait_for(Duration::from_secs(15), |d| {
        let b = d.metrics();
        (sample(&b, m::INTERFERENCE_TOTAL, &labels) == Some(1.0)).then_some(b)
    });
    assert_eq!(
        sample(
            &metrics,
            m::INTERFERENCE_EXTRA_TOTAL,
            &[("target", "video"), ("check", "throughput_control")]
        ),
        Some(1.0),
        "{metrics}"
    );
    let (code, body) = d.wait_for(Duration::from_secs(5), |d| {
        let (code, body) = d.get("/api/v1/degradations");
        body.contains("\"interference\"").then_some((code, body))
    });
    assert_eq!(code, 200, "{body}");
    let periods: serde_json::Value = serde_json::from_str(&body).unwrap();
    let open = periods
        .as_array()
        .and_then(|a| a.iter().find(|p| p["end"].is_null()))
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(open["cause"], "interference", "{body}");
    assert_eq!(
        open["triggers"],
        serde_json::json!(["throttled_name"]),
        "{body}"
    );
    assert_eq!(
        open["interference"]["checks"],
        serde_json::json!(["throttled_name"])
    );
    assert_eq!(
        open["interference"]["names"],
        serde_json::json!(["localhost"])
    );
    assert_eq!(
        open["interference"]["targets"],
        serde_json::json!(["video"])
    );
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{}", d.log());
    let journal = std::fs::read_to_string(d.data_dir().join("journal.jsonl")).unwrap();
    let lines: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"event\":\"interference\""))
        .collect();
    assert_eq!(lines.len(), 1, "{journal}");
    assert!(
        lines[0].contains("\"check\":\"throttled_name\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\"count\":1"), "{}", lines[0]);
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"event\":\"degraded_start\"")
                && l.contains("\"cause\":\"interference\"")),
        "{journal}"
    );
    drop(rt);
}
