//! Notifications (`[[notify]]`): delivered once each, in order, after the
//! outage they report; rate-limited flaps summarised; a bad token pauses its
//! channel; the outbox survives a restart, `kill -9` and a full disk.
//!
//! The namespace scenario runs real receivers inside the fake internet
//! (`notify_sink.py`: an HTTP server standing in for a webhook receiver, ntfy
//! and the Telegram Bot API, and an aiosmtpd SMTP sink), so the cut that makes
//! the outage also cuts the daemon off from every channel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use linkwatch::config::notify::NotifyEvent;
use linkwatch::journal::{Entry, Line};
use linkwatch::journal::{OutageEnded, OutageStarted};
use linkwatch::notify::{NotifyMetrics, NotifyService};
use serde_json::Value;

use crate::harness::daemon::BIN;
use crate::harness::fakenet::{self, FakeNet, Hop, Params};

const SINK: &str = include_str!("notify_sink.py");
/// The receivers' address inside `inet` (on its `lo`).
const SINK_ADDR: &str = "10.231.100.10";
const GOOD_TOKEN: &str = "123456:good-token";

fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The sink's records, in arrival order.
fn received(out: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(out) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `[site:seq]`-style id a record carries, per channel kind.
fn ids_of(r: &Value) -> Vec<String> {
    let body = r["body"].as_str().unwrap_or("");
    match r["kind"].as_str().unwrap_or("") {
        "webhook" => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            vec![v["id"].as_str().unwrap_or("").to_string()]
        }
        "alertmanager" => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            vec![
                v["alerts"][0]["annotations"]["linkwatch_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ]
        }
        "ntfy" => vec![r["id"].as_str().unwrap_or("").to_string()],
        "email" => body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("id: ").map(|s| s.trim().to_string()))
            .collect(),
        _ => {
            // Telegram: the text ends with "[id]".
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let text = v["text"].as_str().unwrap_or("");
            text.rsplit_once('[')
                .map(|(_, id)| vec![id.trim_end_matches(']').to_string()])
                .unwrap_or_default()
        }
    }
}

#[test]
fn netns_notify_kill9_mid_outage_delivers_each_edge_once_in_order() {
    if !fakenet::can_run() {
        return;
    }
    if !crate::harness::daemon::require(
        Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)",
    ) {
        return;
    }
    let began = Instant::now();
    let net = FakeNet::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.jsonl");
    let script = dir.path().join("notify_sink.py");
    std::fs::write(&script, SINK).unwrap();
    net.inet
        .ip(&["addr", "add", &format!("{SINK_ADDR}/32"), "dev", "lo"]);
    net.inet.spawn(&[
        "/usr/bin/python3",
        script.to_str().unwrap(),
        out.to_str().unwrap(),
        SINK_ADDR,
        "8080",
        "2525",
        GOOD_TOKEN,
    ]);
    net.inet.wait_listening(8080);
    net.inet.wait_listening(2525);
    let good = secret_file(dir.path(), "tg-good", GOOD_TOKEN);
    let bad = secret_file(dir.path(), "tg-bad", "123456:revoked");
    let channels = format!(
        r#"
[[notify]]
name = "hook"
kind = "webhook"
url = "http://{SINK_ADDR}:8080/hook"
retry_max = "3s"
timeout = "2s"

[[notify]]
name = "am"
kind = "webhook"
url = "http://{SINK_ADDR}:8080/am"
alertmanager = true
retry_max = "3s"
timeout = "2s"

[[notify]]
name = "ntfy"
kind = "ntfy"
url = "http://{SINK_ADDR}:8080/ntfy/home"
retry_max = "3s"
timeout = "2s"

[[notify]]
name = "tg"
kind = "telegram"
api_url = "http://{SINK_ADDR}:8080"
chat_id = "42"
token_file = "{good}"
retry_max = "3s"
timeout = "2s"

[[notify]]
name = "tg-bad"
kind = "telegram"
api_url = "http://{SINK_ADDR}:8080"
chat_id = "42"
token_file = "{bad}"
retry_max = "3s"
timeout = "2s"

[[notify]]
name = "mail"
kind = "email"
smtp_host = "{SINK_ADDR}"
smtp_port = 2525
security = "none"
from = "linkwatch@home.test"
to = ["owner@home.test"]
retry_max = "3s"
timeout = "2s"
"#,
        good = good.display(),
        bad = bad.display(),
    );
    let mut w = net.watch_with(Params::FAST, |c| {
        c.replacen("[daemon]\n", "[daemon]\nsite = \"home\"\n", 1) + &channels
    });

    // `notify test` prints the channel's answer (through the same namespace).
    let test = Command::new("ip")
        .args(["netns", "exec", net.home.name(), BIN, "notify", "test"])
        .args(["--config", w.config.to_str().unwrap(), "--channel", "tg"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success() && said.contains("Telegram accepted the message"),
        "notify test: {said}{}",
        String::from_utf8_lossy(&test.stderr)
    );

    let cut = net.break_link(Hop::Far);
    w.wait_open(&["internet"], Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(25));
    // Mid-outage, with every channel's messages queued and failing.
    let queued: usize = std::fs::read_dir(w.data.join("notify"))
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    w.kill9();
    std::thread::sleep(Duration::from_secs(1));
    w.start();
    let until_repair = Duration::from_secs(60)
        .saturating_sub(Duration::try_from(Timestamp::now().duration_since(cut)).unwrap());
    std::thread::sleep(until_repair);
    let repaired = net.repair(Hop::Far);
    let closed = w.wait_all_closed(Duration::from_secs(15));

    // The journal's outages, by id.
    let journal = std::fs::read_to_string(w.data.join("journal.jsonl")).unwrap();
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut edges: Vec<(String, String, Value)> = Vec::new(); // (id, event, line)
    for l in &lines {
        let ev = l["event"].as_str().unwrap();
        if ev == "outage_start" || ev == "outage_end" {
            edges.push((format!("home:{}", l["seq"]), ev.to_string(), l.clone()));
        }
    }
    assert!(
        edges
            .iter()
            .any(|(_, e, l)| e == "outage_end" && l["group"] == "internet"),
        "no internet outage_end in the journal: {closed:?}"
    );
    let wanted: Vec<&String> = edges.iter().map(|(id, _, _)| id).collect();

    // Every good channel: each edge exactly once, starts before ends.
    let kinds = ["webhook", "alertmanager", "ntfy", "telegram", "email"];
    let deadline = Instant::now() + Duration::from_secs(60);
    let (records, delivered_after) = loop {
        let records = received(&out);
        let complete = kinds.iter().all(|k| {
            let got: Vec<String> = records
                .iter()
                .filter(|r| r["kind"] == *k)
                .flat_map(ids_of)
                .collect();
            wanted.iter().all(|id| got.contains(id))
        });
        if complete {
            break (records, Timestamp::now().duration_since(repaired));
        }
        assert!(
            Instant::now() < deadline,
            "not every channel got every edge within 60 s of the repair; wanted {wanted:?}\nreceived: {records:#?}\nlog:\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Anything still in flight would show up now.
    std::thread::sleep(Duration::from_secs(2));
    let records = {
        let later = received(&out);
        assert_eq!(later.len(), records.len(), "late duplicates: {later:#?}");
        later
    };
    for k in kinds {
        let got: Vec<String> = records
            .iter()
            .filter(|r| r["kind"] == k)
            .flat_map(ids_of)
            .collect();
        for id in &wanted {
            let n = got.iter().filter(|g| g == id).count();
            assert_eq!(n, 1, "{k}: {id} received {n} times: {got:?}");
        }
        // In journal order (which puts each start before its end).
        let order: Vec<&String> = got.iter().filter(|g| wanted.contains(g)).collect();
        assert_eq!(order, wanted, "{k}: out of order");
    }
    // Exact start/end and seq as in the journal (webhook JSON and e-mail).
    for r in records.iter().filter(|r| r["kind"] == "webhook") {
        let v: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        let Some((_, _, line)) = edges.iter().find(|(id, _, _)| v["id"] == id.as_str()) else {
            continue;
        };
        assert_eq!(v["seq"], line["seq"]);
        assert_eq!(v["start"], line["start"], "{v}");
        assert_eq!(v["cause"], line["cause"]);
        if line["event"] == "outage_end" {
            assert_eq!(v["end"], line["end"], "{v}");
            assert!(v["text"].as_str().unwrap().contains(" back at "), "{v}");
        } else {
            assert!(v["text"].as_str().unwrap().contains(" down since "), "{v}");
        }
    }
    for r in records.iter().filter(|r| r["kind"] == "email") {
        let body = r["body"].as_str().unwrap();
        let ids = ids_of(r);
        if let Some((_, _, line)) = edges.iter().find(|(id, _, _)| ids.contains(id)) {
            assert!(
                body.contains(&format!("start: {}", line["start"].as_str().unwrap())),
                "{body}"
            );
        }
    }
    // The revoked token: refused once, the channel paused, nothing retried.
    let bad_calls = records
        .iter()
        .filter(|r| r["kind"] == "telegram-bad")
        .count();
    assert_eq!(bad_calls, 1, "{records:#?}");
    let log = w.log();
    let refusals = log
        .lines()
        .filter(|l| {
            l.contains("tg-bad") && l.contains("paused until the configuration is reloaded")
        })
        .count();
    assert_eq!(refusals, 1, "{log}");
    assert!(log.contains("the bot token is wrong or revoked"), "{log}");
    assert!(
        !log.contains("revoked\"") && !log.contains("123456:revoked"),
        "secret in the log"
    );
    let metrics = w.api_text("/metrics");
    assert!(
        metrics.contains("linkwatch_notify_paused{channel=\"tg-bad\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("linkwatch_notifications_total{channel=\"tg-bad\",result=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("linkwatch_notify_queue{channel=\"hook\"} 0"),
        "{metrics}"
    );
    eprintln!(
        "notify: {} outbox lines queued before kill -9; every channel complete {:.1} s after the repair; test took {:.0} s",
        queued,
        delivered_after.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}

/// A loopback webhook receiver that can be closed and reopened on its port.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Value>>>,
    stop: Option<(
        Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )>,
}

impl Receiver {
    fn new(open: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self {
            port,
            got: Arc::default(),
            stop: None,
        };
        if open {
            r.open();
        }
        r
    }

    fn open(&mut self) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let got = self.got.clone();
        let t = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut r = BufReader::new(s);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok() {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        got.lock().unwrap().push(v);
                    }
                    let mut s = r.into_inner();
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                }
            }
        });
        self.stop = Some((stop, t));
    }

    fn close(&mut self) {
        if let Some((stop, t)) = self.stop.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            t.join().unwrap();
        }
    }

    fn events(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

/// Appends journal lines (`seq` numbering continues) as the writer would.
struct FakeJournal {
    path: PathBuf,
    seq: u64,
    /// Lines kept for one write (see [`Self::hold`]).
    held: Option<String>,
}

impl FakeJournal {
    fn new(data: &Path) -> Self {
        std::fs::create_dir_all(data).unwrap();
        Self {
            path: data.join("journal.jsonl"),
            seq: 0,
            held: None,
        }
    }

    /// Keeps the next lines for one write by [`Self::flush`], as a writer
    /// catching up would leave them.
    fn hold(&mut self) {
        self.held = Some(String::new());
    }

    fn flush(&mut self) {
        let text = self.held.take().unwrap_or_default();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_data().unwrap();
    }

    fn push(&mut self, ts: Timestamp, entry: Entry) -> u64 {
        let line = Line {
            seq: self.seq,
            prev: "0".repeat(64),
            ts,
            entry,
        };
        if let Some(held) = &mut self.held {
            *held += &serde_json::to_string(&line).unwrap();
            held.push('\n');
            self.seq += 1;
            return self.seq - 1;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        writeln!(f, "{}", serde_json::to_string(&line).unwrap()).unwrap();
        f.sync_data().unwrap();
        self.seq += 1;
        self.seq - 1
    }

    fn outage(&mut self, n: u32, start: Timestamp, end: Timestamp) -> (u64, u64) {
        let id = format!("o{n}");
        let a = self.push(
            start,
            Entry::OutageStart(OutageStarted {
                interference: None,
                id: id.clone(),
                group: "internet".into(),
                cause: "internet".into(),
                start,
                start_observed: true,
                targets: vec!["t".into()],
                gaps: vec![],
            }),
        );
        let b = self.push(
            end,
            Entry::OutageEnd(OutageEnded {
                interference: None,
                id,
                group: "internet".into(),
                cause: "internet".into(),
                start,
                start_observed: true,
                end,
                duration_seconds: end.duration_since(start).as_secs_f64(),
                duration_clock: linkwatch::journal::DurationClock::Monotonic,
                end_observed: true,
                targets: vec!["t".into()],
                gaps: vec![],
                end_reason: None,
            }),
        );
        (a, b)
    }
}

fn config(data: &Path, channel: &str) -> Arc<linkwatch::config::Config> {
    let text = format!(
        r#"[daemon]
data_dir = "{}"
site = "s"

[[group]]
name = "internet"

[[target]]
name = "t"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = 9

{channel}"#,
        data.display()
    );
    Arc::new(linkwatch::config::parse(&text, "notify-test.toml").unwrap())
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|v| v["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn notify_flaps_are_rate_limited_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut journal = FakeJournal::new(&data);
    let rx = Receiver::new(true);
    let cfg = config(
        &data,
        &format!(
            "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\nrate_limit = 6\nrate_window = \"1h\"\n",
            rx.port
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let service = rt
        .block_on(async { NotifyService::start(cfg.clone(), NotifyMetrics::detached()) })
        .unwrap();
    // 50 flaps (100 edges) in 5 minutes, calm for the last 3.
    // (Written at once: the summary waits for 2 calm minutes by event time,
    // which these lines already have.)
    let t0 = Timestamp::now() - jiff::SignedDuration::from_secs(8 * 60);
    journal.hold();
    for i in 0..50 {
        let s = t0 + jiff::SignedDuration::from_secs(i * 6);
        journal.outage(i as u32, s, s + jiff::SignedDuration::from_secs(3));
    }
    journal.flush();
    wait_until("6 messages and a summary", Duration::from_secs(20), || {
        rx.events().len() >= 7
    });
    std::thread::sleep(Duration::from_secs(2));
    let got = rx.events();
    assert_eq!(got.len(), 7, "{got:#?}");
    let events: Vec<&str> = got.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "outage_start",
            "outage_end",
            "outage_start",
            "outage_end",
            "outage_start",
            "outage_end",
            "summary"
        ]
    );
    let text = got[6]["text"].as_str().unwrap();
    assert!(
        text.starts_with("94 notifications were held back by the rate limit")
            && text.contains("internet up since"),
        "{text}"
    );
    rt.block_on(service.stop());
}

#[test]
fn notify_outbox_survives_restart_and_a_full_disk() {
    if !crate::harness::netns::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut journal = FakeJournal::new(&data);
    journal.push(
        Timestamp::now(),
        Entry::Stall(linkwatch::journal::Stalled {
            from: Timestamp::now(),
            to: Timestamp::now(),
            cause: linkwatch::journal::StallCause::ProcessStopped,
            seconds: 0.0,
        }),
    );
    // The outbox directory is a small tmpfs of its own.
    let mount = crate::harness::disk::Mount::tmpfs(&data.join("notify"), "256k");
    let mut rx = Receiver::new(false);
    let cfg = config(
        &data,
        &format!(
            "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\nretry_max = \"1s\"\nrate_limit = 100\n",
            rx.port
        ),
    );
    let outbox = data.join("notify").join("hook.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let start = || {
        rt.block_on(async { NotifyService::start(cfg.clone(), NotifyMetrics::detached()) })
            .unwrap()
    };
    let service = start();
    let now = Timestamp::now();
    journal.outage(1, now, now + jiff::SignedDuration::from_secs(5));
    wait_until("two messages queued", Duration::from_secs(10), || {
        std::fs::read_to_string(&outbox)
            .unwrap()
            .matches("\"op\":\"msg\"")
            .count()
            == 2
    });
    // A restart keeps them (the receiver is still down).
    rt.block_on(service.stop());
    let service = start();

    // The disk fills: journal lines keep coming (the journal is on another
    // filesystem) and cannot all be queued; the outbox holds only whole
    // lines and stays as it was while the disk is full.
    let filler = mount.fill();
    for i in 0..10 {
        let s = now + jiff::SignedDuration::from_secs(10 + 3 * i);
        journal.outage(2 + i as u32, s, s + jiff::SignedDuration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(2));
    let full = std::fs::read(&outbox).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        std::fs::read(&outbox).unwrap(),
        full,
        "the outbox changed while the disk was full"
    );
    let text = String::from_utf8(full).unwrap();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("torn outbox line ({e}): {line}"));
    }
    let queued_while_full = text.matches("\"op\":\"msg\"").count();
    assert!(
        queued_while_full < 22,
        "the disk never refused a write ({queued_while_full} queued)"
    );

    // Room again: the rest is queued, then all 22 delivered in order.
    std::fs::remove_file(&filler).unwrap();
    wait_until("22 messages queued", Duration::from_secs(10), || {
        std::fs::read_to_string(&outbox)
            .unwrap()
            .matches("\"op\":\"msg\"")
            .count()
            == 22
    });
    rx.open();
    wait_until("22 delivered", Duration::from_secs(15), || {
        rx.events().len() >= 22
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx.events();
    let want: Vec<String> = (1..=22).map(|i| format!("s:{i}")).collect();
    assert_eq!(ids(&got), want, "{got:#?}");
    // Restarted again: nothing acknowledged is sent again.
    rt.block_on(service.stop());
    let service = start();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.events().len(), 22);
    rt.block_on(service.stop());
    drop(mount);
}

#[test]
fn notify_config_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open-token");
    std::fs::write(&open, "123:abc").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let empty = secret_file(dir.path(), "empty-token", "\n");
    let text = format!(
        r#"[[group]]
name = "internet"

[[target]]
name = "t"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[notify]]
name = "tg"
kind = "telegram"
chat_id = "1"
token_file = "{}"
events = ["outage_start", "outage_begin"]

[[notify]]
name = "tg2"
kind = "telegram"
chat_id = "1"
token_file = "{}"
groups = ["nope"]
"#,
        open.display(),
        empty.display()
    );
    let errors = linkwatch::config::parse(&text, "n.toml")
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("n.toml:15:14: key `notify[0].token_file`"),
        "{errors}"
    );
    assert!(errors.contains("readable by every user"), "{errors}");
    assert!(
        errors.contains("n.toml:16:27: key `notify[0].events`: unknown event (outage_begin)"),
        "{errors}"
    );
    assert!(errors.contains("is empty"), "{errors}");
    assert!(
        errors.contains("n.toml:23:11: key `notify[1].groups`: group (nope) is not defined"),
        "{errors}"
    );
    assert!(!errors.contains("123:abc"), "{errors}");
    // `wants` reads the parsed events.
    let ok = text
        .replace("\"outage_begin\"", "\"journal_damage\"")
        .replace(
            &open.display().to_string(),
            &secret_file(dir.path(), "t", "1:x").display().to_string(),
        )
        .replace(
            &empty.display().to_string(),
            &secret_file(dir.path(), "t2", "1:y").display().to_string(),
        )
        .replace("[\"nope\"]", "[\"internet\"]");
    let cfg = linkwatch::config::parse(&ok, "n.toml").unwrap();
    assert!(cfg.notify[0].wants(NotifyEvent::JournalDamage));
    assert!(!cfg.notify[0].wants(NotifyEvent::OutageEnd));
    assert!(
        !format!("{:?}", cfg.notify[0]).contains("1:x"),
        "secret in Debug"
    );
}

/// A key of another kind of channel is named with its place and the kind
/// it does not apply to; a key of the channel's own kind is not.
#[test]
fn notify_keys_of_another_kind_are_named() {
    let text = r#"[[group]]
name = "internet"

[[target]]
name = "t"
group = "internet"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/x"
alertmanager = true
smtp_host = "127.0.0.1"
chat_id = "1"
"#;
    let errors = linkwatch::config::parse(text, "k.toml")
        .unwrap_err()
        .to_string();
    for (at, key) in [("16:13", "smtp_host"), ("17:11", "chat_id")] {
        let want = format!(
            "k.toml:{at}: key `notify[0].{key}`: `{key}` does not apply to kind = \"webhook\""
        );
        assert!(errors.contains(&want), "{want}\nnot in\n{errors}");
    }
    assert!(!errors.contains("`url` does not apply"), "{errors}");
    assert!(
        !errors.contains("`alertmanager` does not apply"),
        "{errors}"
    );
}

#[test]
fn notify_min_duration_and_outbox_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut journal = FakeJournal::new(&data);
    let mut rx = Receiver::new(false);
    let cfg = config(
        &data,
        &format!(
            r#"[[notify]]
name = "short"
kind = "webhook"
url = "http://127.0.0.1:{port}/"
min_duration = "1m"
rate_limit = 100

[[notify]]
name = "bounded"
kind = "webhook"
url = "http://127.0.0.1:{port}/"
max_queue = 5
rate_limit = 100
retry_max = "1s"
"#,
            port = rx.port
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let service = rt
        .block_on(async { NotifyService::start(cfg.clone(), NotifyMetrics::detached()) })
        .unwrap();
    let t0 = Timestamp::now() - jiff::SignedDuration::from_secs(30 * 60);
    let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    // Four short outages (10 s), then one of 2 minutes: 10 edges.
    for i in 0..4 {
        journal.outage(i, at(60 * i as i64), at(60 * i as i64 + 10));
    }
    // A line of an event this version does not know is not damage.
    let unknown = format!(
        "{{\"seq\":{},\"prev\":\"\",\"ts\":\"{}\",\"event\":\"from_a_newer_writer\"}}\n",
        journal.seq,
        at(500)
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&journal.path)
        .unwrap()
        .write_all(unknown.as_bytes())
        .unwrap();
    journal.seq += 1;
    let (long_start, long_end) = journal.outage(9, at(600), at(720));
    std::thread::sleep(Duration::from_secs(2));
    rx.open();
    wait_until("both channels drained", Duration::from_secs(20), || {
        rx.events().len() >= 2 + 5
    });
    std::thread::sleep(Duration::from_secs(2));
    let got = rx.events();
    // `short`: only the long outage. `bounded`: a summary of the 6 oldest, then the last 4.
    let long: Vec<String> = vec![format!("s:{long_start}"), format!("s:{long_end}")];
    let summary: Vec<&Value> = got.iter().filter(|v| v["event"] == "summary").collect();
    assert_eq!(summary.len(), 1, "{got:#?}");
    assert!(
        summary[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("6 notifications could not be delivered"),
        "{got:#?}"
    );
    let others: Vec<String> = got
        .iter()
        .filter(|v| v["event"] != "summary")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    // 2 from `short` and 4 from `bounded` (s:6..s:9, the long outage among them).
    assert_eq!(others.len(), 6, "{got:#?}");
    for id in &long {
        assert_eq!(others.iter().filter(|o| *o == id).count(), 2, "{got:#?}");
    }
    rt.block_on(service.stop());
}

/// An aiosmtpd sink on loopback speaking STARTTLS (`starttls`) or TLS from
/// the first byte (`tls`) with a certificate of a throwaway CA.
const TLS_SINK: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
out, port, cert, key, mode = sys.argv[1:6]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
class Sink:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a") as f:
            f.write(envelope.content.decode("utf-8", "replace") + "\n----\n")
            f.flush()
            os.fsync(f.fileno())
        return "250 OK stored"
if mode == "starttls":
    c = Controller(Sink(), hostname="127.0.0.1", port=int(port), tls_context=ctx, require_starttls=True)
else:
    c = Controller(Sink(), hostname="127.0.0.1", port=int(port), ssl_context=ctx)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

#[test]
fn notify_email_over_starttls_and_tls_with_a_private_ca() {
    if !crate::harness::daemon::require(
        Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)",
    ) {
        return;
    }
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca = dir.path().join("ca.pem");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let script = dir.path().join("tls_sink.py");
    std::fs::write(&script, TLS_SINK).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for mode in ["starttls", "tls"] {
        let out = dir.path().join(format!("{mode}.txt"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("/usr/bin/python3")
            .args([
                script.to_str().unwrap(),
                out.to_str().unwrap(),
                &port.to_string(),
            ])
            .args([cert.to_str().unwrap(), key.to_str().unwrap(), mode])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "{mode} sink did not start");
        let channel = |ca_line: &str| {
            format!(
                "[[notify]]\nname = \"mail\"\nkind = \"email\"\nsmtp_host = \"localhost\"\nsmtp_port = {port}\nsecurity = \"{mode}\"\nfrom = \"lw@home.test\"\nto = [\"me@home.test\"]\ntimeout = \"5s\"\n{ca_line}\n"
            )
        };
        // Without the CA the server is not trusted: nothing is sent.
        let cfg = config(dir.path(), &channel(""));
        let refused = rt.block_on(linkwatch::notify::send_test(&cfg, "mail"));
        assert!(refused.is_err(), "{mode}: an untrusted server was accepted");
        let cfg = config(
            dir.path(),
            &channel(&format!("ca_file = \"{}\"", ca.display())),
        );
        let answer = rt.block_on(linkwatch::notify::send_test(&cfg, "mail"));
        let _ = child.kill();
        let _ = child.wait();
        let answer = answer.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(answer.starts_with("SMTP 250"), "{mode}: {answer}");
        let mail = std::fs::read_to_string(&out).unwrap();
        assert_eq!(mail.matches("----").count(), 1, "{mode}: {mail}");
        assert!(
            mail.contains("test message from linkwatch to channel mail"),
            "{mail}"
        );
    }
}
