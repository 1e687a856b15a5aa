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

use crate::harness::daemon::{BIN, Daemon};
use crate::harness::netns::{Link, Netns, link, require_root};

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

/// home ─ isp ─ far, routed through `isp`; the throughput server in `far`.
struct Path {
    home: Netns,
    isp: Netns,
    far: Netns,
    /// isp (`a`) ↔ home (`b`).
    lan: Link,
    /// isp (`a`) ↔ far (`b`).
    far_link: Link,
}

impl Path {
    fn new() -> Self {
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
        far.spawn_inner(
            INNER_SERVE,
            &[("LWT_TP_LISTEN", &format!("{}:{PORT}", l.b_v4))],
        );
        far.wait_listening(PORT);
        Path {
            home,
            isp,
            far,
            lan,
            far_link: l,
        }
    }
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
    let Path {
        home,
        isp,
        far,
        lan,
        far_link: l,
    } = Path::new();
    let server = l.b_v4.to_string();
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

/// The daemon in `home` with `[plan] download = 100 Mbit/s` (normal 60,
/// minimum 30) tests the download through a tbf of `mbit` in `isp` (towards
/// home) a few times; its journal records the plan and the target. Synthetic
/// measuring days are then written as history rows, 10 tests a day (5 in
/// the morning, 5 from 19:00) on three days a calendar day apart, each
/// test's figure one of the real tests' (in turn). Returns the report's
/// "Against the contract" for the download, as JSON.
fn contract_over_synthetic_days(mbit: u32) -> (serde_json::Value, Vec<f64>) {
    let Path {
        home,
        isp,
        far: _far,
        lan,
        far_link,
    } = Path::new();
    isp.exec(&[
        "tc",
        "qdisc",
        "replace",
        "dev",
        &lan.a_if,
        "root",
        "tbf",
        "rate",
        &format!("{mbit}mbit"),
        "burst",
        &(mbit * 1_000_000 / 8 / 200).max(5000).to_string(),
        "latency",
        "50ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[plan]\ndownload = \"100 Mbit/s\"\n\
         download_normal = \"60 Mbit/s\"\ndownload_min = \"30 Mbit/s\"\n\n[[group]]\nname = \"net\"\n\n\
         [[target]]\nname = \"down\"\ngroup = \"net\"\nkind = \"throughput\"\n\
         url = \"http://{}:{PORT}/1GB.bin\"\ninterval = \"10s\"\ntimeout = \"2s\"\nmax_duration = \"3s\"\n\
         max_bytes = \"100 MB\"\nmin_bytes = \"100 kB\"\n",
        data.display(),
        far_link.b_v4
    );
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, cfg).unwrap();
    let child = home
        .command(&[BIN, "run", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon::attach(child, tempfile::tempdir().unwrap());
    // Two tests (at start and 10 s later), then a clean stop flushes history.
    std::thread::sleep(Duration::from_secs(17));
    let (status, _) = d.terminate(Duration::from_secs(10));
    assert!(status.success(), "{}", d.log());
    let mut real = Vec::new();
    for e in std::fs::read_dir(data.join("history")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for l in text.lines().filter(|l| l.starts_with("t\t")) {
            real.push(l.split('\t').nth(5).unwrap().parse::<f64>().unwrap());
        }
    }
    assert!(!real.is_empty(), "no test recorded: {}", d.log());
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let mut i = 0;
    for offset in [2i64, 4, 6] {
        let day = today.checked_add(jiff::Span::new().days(offset)).unwrap();
        let mut rows = String::new();
        for (h, m) in [(8, 0), (8, 10), (8, 20), (8, 30), (8, 40)]
            .into_iter()
            .chain([(19, 0), (19, 10), (19, 20), (19, 30), (19, 40)])
        {
            let at: jiff::Timestamp = format!("{day}T{h:02}:{m:02}:00Z").parse().unwrap();
            let bps = real[i % real.len()];
            i += 1;
            rows += &format!(
                "t\t{}\tdown\t{:.0}\t3.000000\t{bps:.0}\n",
                at.as_millisecond(),
                bps * 3.0 / 8.0
            );
        }
        std::fs::write(data.join(format!("history/{day}.1.lwh")), rows).unwrap();
    }
    let since = today.checked_add(jiff::Span::new().days(1)).unwrap();
    let until = today.checked_add(jiff::Span::new().days(8)).unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "report",
            "--since",
            &format!("{since}T00:00:00Z"),
            "--until",
            &format!("{until}T00:00:00Z"),
            "--format",
            "json",
            "--tz",
            "UTC",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let contract = v["speed_against_plan"]["against_the_contract"][0].clone();
    assert_eq!(contract["direction"], "download", "{v:#}");
    // Markdown says plainly what this is.
    let md = std::process::Command::new(BIN)
        .args([
            "report",
            "--since",
            &format!("{since}T00:00:00Z"),
            "--until",
            &format!("{until}T00:00:00Z"),
            "--tz",
            "UTC",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("## Against the contract"), "{md}");
    assert!(
        md.contains("not the regulator's certified measurement app"),
        "{md}"
    );
    (contract, real)
}

fn verdicts(c: &serde_json::Value) -> Vec<Option<bool>> {
    c["criteria_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["breached"].as_bool())
        .collect()
}

/// `[plan] download = "100 Mbit/s"`, normal 60, minimum 30: a link shaped
/// to 40 Mbit/s breaches (a) and (b), not (c); shaped to 95 Mbit/s, nothing.
#[test]
fn plan_verdict_over_measuring_days() {
    if !require_root() {
        return;
    }
    let (slow, real) = contract_over_synthetic_days(40);
    eprintln!(
        "EVIDENCE plan verdict at 40 Mbit/s: real tests {:?} Mbit/s; verdicts {:?}; sampling rules met {}; 80/80 {} %",
        real.iter()
            .map(|b| (b / 1e4).round() / 100.0)
            .collect::<Vec<_>>(),
        verdicts(&slow),
        slow["sampling_rules_met"],
        slow["fcc_80_80_percent"]
    );
    assert_eq!(slow["sampling_rules_met"], true, "{slow:#}");
    assert_eq!(
        verdicts(&slow),
        [Some(true), Some(true), Some(false)],
        "{slow:#}"
    );
    assert_eq!(slow["deviation"], true);
    assert_eq!(slow["peak_below_80_percent"], 15, "{slow:#}");

    let (fast, real) = contract_over_synthetic_days(95);
    eprintln!(
        "EVIDENCE plan verdict at 95 Mbit/s: real tests {:?} Mbit/s; verdicts {:?}; 80/80 {} %",
        real.iter()
            .map(|b| (b / 1e4).round() / 100.0)
            .collect::<Vec<_>>(),
        verdicts(&fast),
        fast["fcc_80_80_percent"]
    );
    assert_eq!(
        verdicts(&fast),
        [Some(false), Some(false), Some(false)],
        "{fast:#}"
    );
    assert_eq!(fast["deviation"], false);
}
