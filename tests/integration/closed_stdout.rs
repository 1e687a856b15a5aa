//! A closed stdout is a normal end: `linkwatch outages | head -0`, a pager
//! quit early. Every command, run by the real binary with its stdout a pipe
//! whose reader is already closed (so every write fails with EPIPE, with no
//! race against the reader), ends with the exit code it would have had (0
//! here; 141, death by SIGPIPE, would be acceptable too) and never panics.
//! Before, `outages` and `report` died with "failed printing to stdout:
//! Broken pipe" and exit 101.

use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::harness::configs::two_tcp_groups;
use crate::harness::daemon::{BIN, Daemon};

/// Runs `linkwatch ARGS` with stdout on a pipe whose reader is closed (and
/// stderr on the same closed pipe when `stderr_too`, as `2>&1 | …` does);
/// returns the status and what reached stderr otherwise.
fn closed_stdout(args: &[&str], stderr_too: bool) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let stderr = if stderr_too {
        Stdio::from(writer.try_clone().unwrap())
    } else {
        Stdio::piped()
    };
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 0, or death by SIGPIPE (141 in a shell); never a panic (101).
fn ended_normally(args: &[&str], status: ExitStatus, stderr: &str) {
    assert!(
        status.code() == Some(0) || status.signal() == Some(13),
        "linkwatch {}: {status}\n{stderr}",
        args.join(" ")
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "linkwatch {}: {stderr}",
        args.join(" ")
    );
}

/// A data directory whose journal holds a real outage: the daemon runs until
/// `internet` (a closed loopback port) is down, then stops.
fn journal_with_an_outage(lan_port: u16) -> (Daemon, String) {
    let svc_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = two_tcp_groups("{data_dir}", "127.0.0.1:0", lan_port, svc_port, "");
    let mut d = Daemon::start(&cfg);
    d.wait_for(Duration::from_secs(15), |d| {
        let (status, body) = d.get("/api/v1/outages");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .any(|o| o["group"] == "internet")
            .then_some(())
    });
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(status.success(), "{}", d.log());
    (d, cfg)
}

#[test]
fn every_command_ends_normally_on_a_closed_stdout() {
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let lan_port = lan.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in lan.incoming() {});
    let (d, cfg) = journal_with_an_outage(lan_port);
    let data = d.data_dir();
    let data = data.to_str().unwrap();
    // The same configuration for `check` and `probe`, with a real data_dir.
    let config = d.dir.path().join("offline.toml");
    std::fs::write(&config, cfg.replace("{data_dir}", data)).unwrap();
    let config = config.to_str().unwrap();

    // The output exists: each command prints something when stdout is open.
    let open = Command::new(BIN)
        .args(["outages", "--data-dir", data])
        .output()
        .unwrap();
    assert!(open.status.success());
    assert!(
        String::from_utf8_lossy(&open.stdout).contains("internet"),
        "{}",
        String::from_utf8_lossy(&open.stdout)
    );

    let commands: &[&[&str]] = &[
        &["outages", "--data-dir", data],
        &["outages", "--json", "--data-dir", data],
        &["outages", "--verify", "--data-dir", data],
        &["outages", "--degraded", "--data-dir", data],
        &["report", "--since", "1h", "--data-dir", data],
        &[
            "report",
            "--since",
            "1h",
            "--format",
            "json",
            "--data-dir",
            data,
        ],
        &[
            "report",
            "--since",
            "1h",
            "--format",
            "csv",
            "--data-dir",
            data,
        ],
        &[
            "report",
            "--since",
            "1h",
            "--format",
            "html",
            "--data-dir",
            data,
        ],
        &["check", "--config", config],
        // Only the target that answers, so that probe's own verdict is 0.
        &["probe", "--config", config, "--target", "router"],
        // UDP to loopback: needs no privilege, and the port unreachable
        // that answers it means "reached".
        &[
            "trace",
            "127.0.0.1",
            "--udp",
            "--probes",
            "1",
            "--timeout",
            "3s",
        ],
        &["trace", "127.0.0.1", "--udp", "--probes", "1", "--json"],
        &["--help"],
        &["--version"],
    ];
    for args in commands {
        let (status, stderr) = closed_stdout(args, false);
        ended_normally(args, status, &stderr);
        // `2>&1 | …`: stderr is the closed pipe too (warnings, logs).
        let (status, _) = closed_stdout(args, true);
        ended_normally(args, status, "");
    }
}

/// A failure to write that is not a closed reader (a full disk behind `>`)
/// is still reported, with exit 1, not taken for success.
#[test]
fn a_failed_write_is_reported_not_ignored() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[[group]]\nname = \"lan\"\n[[target]]\nname = \"r\"\ngroup = \"lan\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .stdout(std::fs::File::create(full).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
