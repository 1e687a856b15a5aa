//! A damaged history file through the real daemon: what can be read is
//! served, the damage is listed with the answer of `/api/v1/history`, said
//! once in the log, counted in `/metrics`, and stated on `/` and in
//! `linkwatch report`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use linkwatch::history::HistoryStore;
use linkwatch::probe::{Info, Observation, Outcome, ProbeResult};

use crate::harness::daemon::{BIN, Daemon, sample};

/// Four minutes of `loop-tcp` (30 probes each) ten minutes ago, written as
/// a daemon writes them; the file.
fn previous_run(data: &std::path::Path, t0: Timestamp) -> PathBuf {
    let store = HistoryStore::open_at(data, vec![("loop-tcp".to_string(), false)], t0).unwrap();
    for minute in 0..4i64 {
        for k in 0..30i64 {
            store.record(&ProbeResult {
                target: 0,
                at: Timestamp::from_second(t0.as_second() + minute * 60 + k * 2).unwrap(),
                mono: tokio::time::Instant::now(),
                lateness: Duration::ZERO,
                observation: Observation {
                    outcome: Outcome::Success {
                        duration: Duration::from_micros(300 + k as u64),
                        phases: Default::default(),
                    },
                    info: Info::default(),
                },
            });
        }
        let at = Timestamp::from_second(t0.as_second() + minute * 60 + 60).unwrap();
        store.flush(at, minute == 3).unwrap();
    }
    // The raw file (an earlier hour's sealed file, empty, may be beside it).
    let mut files = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lwh"));
    let file = files.next().unwrap();
    assert!(files.next().is_none());
    file
}

#[test]
fn a_damaged_history_file_is_read_around_said_once_counted_and_stated() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = Timestamp::now();
    // Ten minutes ago, all in one hour's file (the history rotates hourly).
    let mut t0 = now.as_second() / 60 * 60 - 600;
    if (t0 + 240) / 3600 != t0 / 3600 {
        t0 = (t0 + 240) / 3600 * 3600 - 300;
    }
    let t0 = Timestamp::from_second(t0).unwrap();
    let file = previous_run(&data, t0);

    // 64 bytes of garbage before the first line (what lost a target's
    // whole file before), the file an hour old; and a directory with a
    // history file's name.
    let mut bytes: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    bytes.extend(std::fs::read(&file).unwrap());
    std::fs::write(&file, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    let day = &name[..10];
    std::fs::create_dir(data.join(format!("history/{day}.1.lwh"))).unwrap();

    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:0"
data_dir = "{}"

[defaults]
interval = "1s"
timeout = "500ms"

[[group]]
name = "lan"

[[target]]
name = "loop-tcp"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = {port}
"#,
        data.display()
    );
    let mut d = Daemon::start(&config);

    let since = t0.to_string();
    let until = Timestamp::from_second(t0.as_second() + 240).unwrap();
    let path = format!("/api/v1/history?target=loop-tcp&since={since}&until={until}&step=60");
    for _ in 0..3 {
        let (status, body) = d.get(&path);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let probes: Vec<u64> = v[0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["probes"].as_u64().unwrap())
            .collect();
        assert_eq!(probes, [30, 30, 30, 30], "every minute read: {body}");
        let damaged = v[0]["damaged_files"].as_array().unwrap();
        assert_eq!(damaged.len(), 2, "{body}");
        let f = damaged.iter().find(|f| f["file"] == name.as_str()).unwrap();
        assert_eq!(
            (&f["damaged_rows"], &f["skipped_bytes"]),
            (&1.into(), &64.into()),
            "{body}"
        );
        assert!(f.get("error").is_none(), "{body}");
        let dir_entry = damaged.iter().find(|f| f["file"] != name.as_str()).unwrap();
        assert!(dir_entry["error"].as_str().is_some(), "{body}");
        let (status, page) = d.get("/");
        assert_eq!(status, 200);
        assert!(
            page.contains("data-history=\"damaged\"")
                && page.contains("History is incomplete: 2 history files"),
            "the page does not say its history is incomplete"
        );
    }
    let metrics = d.metrics();
    assert_eq!(
        sample(&metrics, "linkwatch_history_damaged_rows_total", &[]),
        Some(1.0),
        "{metrics}"
    );
    let log = d.log();
    let said = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(said("history file is damaged"), 1, "{log}");
    assert!(log.contains(&name), "the warning names the file: {log}");
    assert_eq!(said("failed to read a history file"), 1, "{log}");
    d.terminate(Duration::from_secs(5));

    let out = std::process::Command::new(BIN)
        .args(["report", "--since", "1h", "--tz", "UTC", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("The history of this period is incomplete: 2 history file(s) are damaged")
            && md.contains(&format!("{name}: 1 damaged row(s), 64 bytes skipped")),
        "{md}"
    );
}
