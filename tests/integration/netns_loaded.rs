//! Latency under load against a real buffer: `linkwatch probe` in `home`
//! uploads through a 20 Mbit/s `tbf` in `isp` (on its link towards `far`:
//! the upstream buffer of the ISP link), to the throughput server in `far`,
//! with a loss-based sender (`congestion = "cubic"`).
//!
//! The buffer must sit on a forwarding hop, as a modem's does: in the
//! sender's own qdisc, TCP Small Queues holds each socket to a few packets
//! there, and the queue never fills (seen: 210 ms of a 505 ms buffer).
//!
//! The reference is the queueing delay of a full buffer, computed from the
//! queue's byte limit (as `tc` reports it) and its rate; it is calibrated
//! against `ping` during a plain bulk upload (python, cubic) through the same
//! buffer. Figures are printed as `EVIDENCE` lines (`--nocapture`).

use std::time::Duration;

use crate::harness::daemon::BIN;
use crate::harness::netns::{Netns, link, require_root};

const PORT: u16 = 8080;
const SINK_PORT: u16 = 5009;
const INNER_SERVE: &str = "throughput_wired::inner_throughput_server";
const MBIT: u32 = 20;

/// A field of a `linkwatch probe` row (`increase=480.123ms`), as text.
fn field<'a>(row: &'a str, key: &str) -> Option<&'a str> {
    row.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
}

/// Milliseconds of a `…ms` field.
fn ms_field(row: &str, key: &str) -> Option<f64> {
    field(row, key)?.trim_end_matches("ms").parse().ok()
}

/// tbf's burst (bytes): 5 ms of the rate.
const BURST: u32 = 12_500;

/// The byte limit tc gives a tbf set up with `latency` (tc's own
/// computation: rate × latency + burst; `tc qdisc show` prints only `lat`).
fn tbf_limit(latency_ms: f64) -> f64 {
    f64::from(MBIT) * 1e6 / 8.0 * latency_ms / 1e3 + f64::from(BURST)
}

/// ICMP echo from python (no `ping` binary here): `n` requests 200 ms apart
/// on a raw socket, each waited for up to 3 s; prints one RTT (ms) a line.
const PING: &str = r#"
import socket,struct,sys,time,os
dst,n=sys.argv[1],int(sys.argv[2])
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
s.settimeout(3)
def csum(b):
    if len(b)%2: b+=b'\0'
    t=sum(struct.unpack('!%dH'%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16
    return ~t&0xffff
ident=os.getpid()&0xffff
for seq in range(n):
    h=struct.pack('!BBHHH',8,0,0,ident,seq)+b'linkwatch'*6
    p=struct.pack('!BBHHH',8,0,csum(h),ident,seq)+h[8:]
    t=time.monotonic(); s.sendto(p,(dst,0))
    while True:
        try: d,_=s.recvfrom(2048)
        except socket.timeout: break
        icmp=d[(d[0]&15)*4:]
        if icmp[0]==0 and struct.unpack('!HH',icmp[4:8])==(ident,seq):
            print((time.monotonic()-t)*1e3,flush=True); break
    time.sleep(max(0,0.2-(time.monotonic()-t)))
"#;

/// Median RTT in ms of `n` ICMP echoes from `ns` to `to`.
fn ping_median(ns: &Netns, to: &str, n: u32) -> f64 {
    let out = ns
        .command(&["python3", "-c", PING, to, &n.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rtts: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(
        !rtts.is_empty(),
        "no echo reply: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rtts.sort_by(f64::total_cmp);
    rtts[rtts.len() / 2]
}

fn probe(home: &Netns, config: &std::path::Path) -> String {
    let out = home
        .command(&[
            BIN,
            "probe",
            "--config",
            config.to_str().unwrap(),
            "--target",
            "up",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    table
        .lines()
        .find(|l| l.starts_with("up "))
        .unwrap_or_else(|| {
            panic!(
                "no row for up:\n{table}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

fn shape(ns: &Netns, dev: &str, latency: u32) {
    ns.exec(&[
        "tc",
        "qdisc",
        "replace",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        &format!("{MBIT}mbit"),
        "burst",
        &BURST.to_string(),
        "latency",
        &format!("{latency}ms"),
    ]);
}

/// Bufferbloat, both ways of the buffer: a deep one (`latency 500ms`) reads
/// D or F with an increase within ±20 % of the full queue's delay; a shallow
/// one (`latency 20ms`) an increase under 40 ms and B or better.
#[test]
fn bufferbloat_is_graded_against_the_queueing_delay() {
    if !require_root() {
        return;
    }
    let (home, isp, far) = (Netns::new(), Netns::new(), Netns::new());
    let lan = link(&isp, &home, 42);
    let l = link(&isp, &far, 43);
    for (ns, dev) in [
        (&isp, &lan.a_if),
        (&home, &lan.b_if),
        (&isp, &l.a_if),
        (&far, &l.b_if),
    ] {
        ns.wait_up(dev);
    }
    isp.sysctl("net.ipv4.ip_forward", "1");
    home.ip(&[
        "route",
        "add",
        "10.231.43.0/24",
        "via",
        &lan.a_v4.to_string(),
    ]);
    far.ip(&["route", "add", "10.231.42.0/24", "via", &l.a_v4.to_string()]);
    let server = l.b_v4.to_string();
    far.spawn_inner(
        INNER_SERVE,
        &[("LWT_TP_LISTEN", &format!("{server}:{PORT}"))],
    );
    far.wait_listening(PORT);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loaded.toml");
    std::fs::write(
        &path,
        format!(
            "[[group]]\nname = \"net\"\n\n[[target]]\nname = \"up\"\ngroup = \"net\"\n\
             kind = \"throughput\"\nurl = \"http://{server}:{PORT}/upload\"\ndirection = \"upload\"\n\
             congestion = \"cubic\"\nmax_bytes = \"200 MB\"\nmax_duration = \"20s\"\n\
             min_bytes = \"100 kB\"\ninterval = \"1m\"\n"
        ),
    )
    .unwrap();

    // ---- deep buffer --------------------------------------------------
    let idle_ping = ping_median(&home, &server, 5);
    shape(&isp, &l.a_if, 500);
    let limit = tbf_limit(500.0);
    let computed_ms = limit * 8.0 / (f64::from(MBIT) * 1e6) * 1e3;

    // Calibration: ping during a plain bulk upload (4 cubic flows, at most
    // 18 s or 40 MB each), once cubic has filled the buffer (after 11 s).
    far.spawn(&[
        "python3",
        "-c",
        &format!(
            "import socket,threading\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{server}',{SINK_PORT}))\ns.listen(8)\n\
             def sink(c):\n    while c.recv(65536):\n        pass\n\
             for _ in range(4):\n    threading.Thread(target=sink,args=(s.accept()[0],)).start()\n"
        ),
    ]);
    far.wait_listening(SINK_PORT);
    home.spawn(&[
        "python3",
        "-c",
        &format!(
            "import socket,time,threading\n\
             def send():\n    c=socket.socket()\n    \
             c.setsockopt(socket.IPPROTO_TCP,socket.TCP_CONGESTION,b'cubic')\n    \
             c.connect(('{server}',{SINK_PORT}))\n    b=b'x'*65536\n    t=time.time()+18\n    n=0\n    \
             while n<40_000_000 and time.time()<t:\n        c.sendall(b)\n        n+=len(b)\n\
             for _ in range(4):\n    threading.Thread(target=send).start()\n"
        ),
    ]);
    std::thread::sleep(Duration::from_secs(11));
    let loaded_ping = ping_median(&home, &server, 20);
    let ping_increase = loaded_ping - idle_ping;
    // Let the plain upload end (and its queue drain) before the test.
    std::thread::sleep(Duration::from_secs(4));

    let row = probe(&home, &path);
    eprintln!("deep buffer: {row}");
    assert!(row.contains(" ok "), "{row}");
    let increase = ms_field(&row, "increase").unwrap_or_else(|| panic!("{row}"));
    let grade = field(&row, "grade").unwrap();
    let probes: f64 = field(&row, "probes").unwrap().parse().unwrap();
    eprintln!(
        "EVIDENCE bufferbloat deep: tbf {MBIT} Mbit/s limit {limit:.0} B = {computed_ms:.0} ms of queue; \
         ping idle {idle_ping:.2} ms, during a plain cubic upload {loaded_ping:.1} ms (+{ping_increase:.0} ms, \
         {:+.1} % of computed); linkwatch increase {increase:.1} ms ({:+.1} % of computed, {:+.1} % of ping), grade {grade}, \
         samples {}, {probes} probe connections",
        (ping_increase - computed_ms) / computed_ms * 100.0,
        (increase - computed_ms) / computed_ms * 100.0,
        (increase - ping_increase) / ping_increase * 100.0,
        field(&row, "samples").unwrap(),
    );
    assert!(matches!(grade, "D" | "F"), "{row}");
    assert!(
        (increase - computed_ms).abs() <= 0.2 * computed_ms,
        "increase {increase} ms vs computed {computed_ms} ms: {row}"
    );
    assert_eq!(field(&row, "cc"), Some("cubic"), "{row}");
    assert!(!row.contains("confidence=low"), "{row}");

    // ---- shallow buffer -----------------------------------------------
    shape(&isp, &l.a_if, 20);
    let limit = tbf_limit(20.0);
    let shallow_ms = limit * 8.0 / (f64::from(MBIT) * 1e6) * 1e3;
    let row = probe(&home, &path);
    eprintln!("shallow buffer: {row}");
    let increase = ms_field(&row, "increase").unwrap_or_else(|| panic!("{row}"));
    let grade = field(&row, "grade").unwrap();
    eprintln!(
        "EVIDENCE bufferbloat shallow: tbf {MBIT} Mbit/s limit {limit:.0} B = {shallow_ms:.1} ms of queue; \
         linkwatch increase {increase:.1} ms, grade {grade}, samples {}",
        field(&row, "samples").unwrap()
    );
    assert!(row.contains(" ok "), "{row}");
    assert!(increase < 40.0, "{row}");
    assert!(matches!(grade, "A+" | "A" | "B"), "{row}");

    // ---- the probes' own traffic ----------------------------------------
    // One foreign probe on the idle (unshaped) link: bytes on the wire both ways.
    isp.exec(&["tc", "qdisc", "del", "dev", &l.a_if, "root"]);
    let stats = |what: &str| -> u64 {
        home.exec(&[
            "cat",
            &format!("/sys/class/net/{}/statistics/{what}", lan.b_if),
        ])
        .trim()
        .parse()
        .unwrap()
    };
    let before = stats("tx_bytes") + stats("rx_bytes");
    const N: u32 = 50;
    home.exec(&[
        "python3",
        "-c",
        &format!(
            "import socket,struct\nfor _ in range({N}):\n    c=socket.create_connection(('{server}',{PORT}))\n    \
             c.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n    c.close()\n"
        ),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let per_probe = (stats("tx_bytes") + stats("rx_bytes") - before) as f64 / f64::from(N);
    eprintln!(
        "EVIDENCE loaded-latency probe traffic: {per_probe:.0} B per connect probe (both ways, Ethernet frames), \
         {probes} probes in the deep-buffer test = {:.1} kB per test",
        per_probe * probes / 1e3
    );
}
