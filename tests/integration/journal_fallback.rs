//! Lines an exit could not write (a full disk, a frozen filesystem) are saved
//! to a fallback file (`journal.unwritten.*`) and taken back into the chain at
//! the next start, never forked (issue 19 items 2 and 4). The real binary on
//! a real tmpfs and a real frozen ext4 (root: mounts); targets on loopback.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::configs::two_tcp_groups;
use crate::harness::daemon::{BIN, Daemon, is_root, require, sample};
use crate::harness::disk::{Mount, Service, which};

/// The stop budget the README promises.
const BUDGET: Duration = Duration::from_secs(2);
/// What the test allows on top of it (signal delivery, reaping, a loaded machine).
const SLACK: Duration = Duration::from_millis(500);

fn config(data: &Path, lan_port: u16, svc_port: u16) -> String {
    // The disk fills with outage lines alone: no path snapshots.
    two_tcp_groups(
        &data.display().to_string(),
        "127.0.0.1:0",
        lan_port,
        svc_port,
        "max_traces_per_minute = 0",
    )
}

/// A loopback "router" that always answers (the `lan` group stays up).
fn lan() -> u16 {
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = lan.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in lan.incoming() {});
    port
}

fn api_outages(d: &Daemon) -> Vec<Value> {
    let (_, body) = d.get("/api/v1/outages");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn wait_up(d: &Daemon) {
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "internet")]) == Some(1.0))
            .then_some(())
    });
}

/// Closes the service and waits until the API shows one more outage.
fn go_down(d: &Daemon, svc: &mut Service) -> Value {
    let before = api_outages(d).len();
    svc.close();
    d.wait_for(Duration::from_secs(10), |d| {
        let all = api_outages(d);
        (all.len() > before).then(|| all.last().cloned().unwrap())
    })
}

/// Reopens the service and waits until the last outage has ended.
fn come_back(d: &Daemon, svc: &mut Service) -> Value {
    svc.open();
    d.wait_for(Duration::from_secs(10), |d| {
        api_outages(d)
            .last()
            .filter(|o| !o["end"].is_null())
            .cloned()
    })
}

/// `linkwatch outages <args> --data-dir <data>` with `TMPDIR=<tmp>`.
fn cli(data: &Path, tmp: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("outages")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn cli_outages(data: &Path, tmp: &Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["outages", "--json", "--data-dir"])
        .arg(data)
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Fallback files in `dirs`.
fn fallbacks(dirs: &[&Path]) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("journal.unwritten."))
        })
        .collect()
}

/// The journal file's lines, parsed.
fn journal(data: &Path) -> Vec<Value> {
    std::fs::read_to_string(data.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each line once, in order: seq 0, 1, 2, … and no other.
fn assert_one_chain(lines: &[Value]) {
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "every seq once, in order"
    );
}

fn key(o: &Value) -> (String, String, String, Value) {
    (
        o["id"].as_str().unwrap().to_string(),
        o["start"].as_str().unwrap().to_string(),
        o["end"].as_str().unwrap_or("").to_string(),
        o["end_observed"].clone(),
    )
}

/// Issue 19 item 2, the reproduction: a 512 KiB tmpfs data directory,
/// filled; 8 outage flaps and one left open; SIGTERM; space freed; restart.
/// The restart takes the fallback file back before its `daemon_start`:
/// 9 of 9 outages with their real ends, one chain, `--verify` ok.
#[test]
fn a_full_disk_exit_is_taken_back_at_the_next_start_without_a_fork() {
    if !require(is_root(), "mounting a tmpfs needs root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Mount::tmpfs(&dir.path().join("mnt"), "512k");
    let data = mnt.dir.join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let env = [("TMPDIR", tmp.to_str().unwrap())];
    let lan_port = lan();
    let mut svc = Service::new();
    let cfg = config(&data, lan_port, svc.port);
    let mut d = Daemon::start_with(&cfg, &env);
    wait_up(&d);
    let filler = mnt.fill();
    for _ in 0..8 {
        go_down(&d, &mut svc);
        come_back(&d, &mut svc);
    }
    let open = go_down(&d, &mut svc);
    let shown = api_outages(&d);
    assert_eq!(shown.len(), 9);
    assert!(
        sample(&d.metrics(), "linkwatch_journal_errors_total", &[]).unwrap_or(0.0) > 0.0,
        "the disk refused lines"
    );
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(took < BUDGET + SLACK, "{took:?}");
    let saved = fallbacks(&[&data, &tmp]);
    assert_eq!(saved.len(), 1, "one complete copy, no empty one: {saved:?}");

    // Offline, before any restart: journal and fallback file are one chain.
    let (ok, out) = cli(&data, &tmp, &["--verify"]);
    assert!(ok, "{out}");
    let offline = cli_outages(&data, &tmp);
    assert_eq!(offline.len(), 9, "{offline:?}");
    for (a, b) in shown.iter().zip(&offline).take(8) {
        assert_eq!(key(a), key(b));
    }

    std::fs::remove_file(filler).unwrap();
    let mut d = Daemon::start_with(&cfg, &env);
    // Still down across the restart: the open outage is resumed, not closed.
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "internet")]) == Some(0.0))
            .then_some(())
    });
    assert!(
        fallbacks(&[&data, &tmp]).is_empty(),
        "taken back and removed"
    );
    let after = api_outages(&d);
    assert_eq!(after.len(), 9, "{after:?}");
    for (a, b) in shown.iter().zip(&after).take(8) {
        assert_eq!(key(a), key(b), "the real end, from the fallback file");
    }
    assert_eq!(after[8]["id"], open["id"]);
    assert!(after[8]["end"].is_null(), "{:?}", after[8]);
    let ended = come_back(&d, &mut svc);
    assert_eq!(ended["id"], open["id"]);
    assert_eq!(ended["end_observed"], true, "{ended}");
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());

    let lines = journal(&data);
    assert_one_chain(&lines);
    let starts: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "daemon_start")
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 2);
    let stop_before = lines
        .iter()
        .position(|l| l["event"] == "daemon_stop")
        .unwrap();
    assert_eq!(
        starts[1],
        lines[stop_before]["seq"].as_u64().unwrap() + 1,
        "the second run starts right after the first run's daemon_stop"
    );
    let (ok, out) = cli(&data, &tmp, &["--verify"]);
    assert!(ok, "{out}");
    let all = cli_outages(&data, &tmp);
    assert_eq!(all.len(), 9);
    assert!(all.iter().all(|o| o["end_observed"] == true), "{all:#?}");
}

/// Issue 19 item 4: SIGTERM while the data directory's filesystem is frozen
/// (`fsfreeze -f`: writes and fsync block in the kernel). The process exits
/// within the stop budget, the lines it could not write are saved to a
/// fallback file in the temporary directory, and the next start, after the
/// thaw, takes them back: nothing lost, nothing twice.
#[test]
fn sigterm_on_a_frozen_filesystem_exits_within_the_budget() {
    if !require(is_root(), "loop mounts need root")
        || !require(
            which("fsfreeze") && which("mkfs.ext4"),
            "fsfreeze or mkfs.ext4 is missing",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Mount::ext4_loop(&dir.path().join("disk.img"), &dir.path().join("mnt"));
    let data = mnt.dir.join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let env = [("TMPDIR", tmp.to_str().unwrap())];
    let lan_port = lan();
    let mut svc = Service::new();
    let cfg = config(&data, lan_port, svc.port);
    let mut d = Daemon::start_with(&cfg, &env);
    wait_up(&d);
    let frozen = mnt.freeze();
    let down = go_down(&d, &mut svc);
    // The writer is now inside a write the kernel holds.
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = d.terminate(Duration::from_secs(8));
    eprintln!("exited {took:?} after SIGTERM on a frozen filesystem");
    assert!(
        took < BUDGET + SLACK,
        "exited {took:?} after SIGTERM on a frozen disk; log:\n{}",
        d.log()
    );
    assert!(status.success(), "{status:?}");
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("could not be written before exit")
                && l.contains(down["id"].as_str().unwrap())),
        "the line in full in the log:\n{log}"
    );
    let saved = fallbacks(&[&tmp]);
    assert_eq!(saved.len(), 1, "{saved:?}\n{log}");
    let text = std::fs::read_to_string(&saved[0]).unwrap();
    assert!(text.contains(down["id"].as_str().unwrap()), "{text}");
    drop(frozen);

    let mut d = Daemon::start_with(&cfg, &env);
    d.wait_for(Duration::from_secs(10), |d| {
        (sample(&d.metrics(), "linkwatch_group_up", &[("group", "internet")]) == Some(0.0))
            .then_some(())
    });
    assert!(fallbacks(&[&data, &tmp]).is_empty(), "taken back");
    let shown = api_outages(&d);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["id"], down["id"]);
    let ended = come_back(&d, &mut svc);
    assert_eq!(ended["end_observed"], true);
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success());
    assert_one_chain(&journal(&data));
    let (ok, out) = cli(&data, &tmp, &["--verify"]);
    assert!(ok, "{out}");
}
