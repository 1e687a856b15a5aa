//! Pushing from behind NAT, end to end: linkwatch and a Prometheus in agent
//! mode in a "home" namespace, a central Prometheus (remote-write receiver)
//! in another, reachable only over home's uplink (a veth). The uplink is taken
//! down on the far side for a bounded time; afterwards the central
//! Prometheus must hold `linkwatch_group_up` samples from inside the outage
//! with no hole, delivered late from the agent's write-ahead log. The agent
//! runs the shipped deploy/agent/agent.yml with only addresses and intervals
//! substituted.
//!
//! The outage lasts 75 s by default (the figure is 3 minutes; set
//! LWT_AGENT_OUTAGE_SECS=180 to run that), to keep CI time reasonable: the
//! agent's behaviour does not change between the two (it retries
//! recoverable errors forever and keeps unsent samples for up to
//! `--storage.agent.retention.max-time`, 4h by default).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::daemon::{BIN, require};
use crate::harness::netns::{Netns, link, must, require_root};

const SCRAPE: f64 = 1.0;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a PromQL instant query against the central Prometheus (from inside
/// its namespace: nothing else can reach it) and returns `data.result`.
fn query(central: &Netns, expr: &str, at: Option<f64>) -> Vec<Value> {
    let mut args = vec![
        "curl".to_string(),
        "-sfG".into(),
        "--max-time".into(),
        "10".into(),
        "http://127.0.0.1:9090/api/v1/query".into(),
        "--data-urlencode".into(),
        format!("query={expr}"),
    ];
    if let Some(t) = at {
        args.extend(["--data-urlencode".into(), format!("time={t:.3}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = must(&mut central.command(&args));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["status"], "success", "{out}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn log_tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Polls `cond` every 500 ms for up to `limit`.
fn wait_for(limit: Duration, what: &str, logs: &[&Path], mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs: Vec<String> = logs
        .iter()
        .map(|p| format!("--- {}\n{}", p.display(), log_tail(p)))
        .collect();
    panic!(
        "timed out after {limit:?} waiting for {what}\n{}",
        logs.join("\n")
    );
}

#[test]
fn agent_backfills_the_central_prometheus_after_an_uplink_outage() {
    if !require_root()
        || !require(
            have("prometheus") && have("curl"),
            "prometheus and curl (Debian packages prometheus, curl)",
        )
    {
        return;
    }
    let outage_secs: u64 = std::env::var("LWT_AGENT_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(75)
        .clamp(10, 600);
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let home = Netns::new();
    let central = Netns::new();
    let uplink = link(&home, &central, 71);
    let central_addr = uplink.b_v4;

    // Central: a plain Prometheus that accepts remote write and scrapes nothing.
    std::fs::write(d("central.yml"), "scrape_configs: []\n").unwrap();
    let central_log = d("central.log");
    central.spawn(&[
        "sh",
        "-c",
        &format!(
            "exec prometheus --config.file={} --storage.tsdb.path={} \
             --web.listen-address=0.0.0.0:9090 --web.enable-remote-write-receiver >{} 2>&1",
            d("central.yml").display(),
            d("central-data").display(),
            central_log.display()
        ),
    ]);
    central.wait_listening(9090);

    // Home: linkwatch, whose one group is the uplink (the central host).
    let lw_log = d("linkwatch.log");
    std::fs::write(
        d("linkwatch.toml"),
        format!(
            "[daemon]\nlisten = \"127.0.0.1:9898\"\ndata_dir = \"{}\"\nsite = \"almaty-home\"\n\
             max_traces_per_minute = 0\n\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nfail_after = 2\nrecover_after = 2\n\n\
             [[group]]\nname = \"uplink\"\n\n\
             [[target]]\nname = \"central\"\ngroup = \"uplink\"\nkind = \"tcp\"\nhost = \"{central_addr}\"\nport = 9090\n",
            d("lw-data").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d("lw-data")).unwrap();
    home.spawn(&[
        "sh",
        "-c",
        &format!(
            "exec {BIN} run --config {} >{} 2>&1",
            d("linkwatch.toml").display(),
            lw_log.display()
        ),
    ]);
    home.wait_listening(9898);

    // Home: the shipped agent config, addresses and intervals substituted.
    let mut agent = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agent/agent.yml"),
    )
    .unwrap();
    for (from, to) in [
        (
            "https://metrics.example.org/api/v1/write",
            format!("http://{central_addr}:9090/api/v1/write"),
        ),
        ("scrape_interval: 15s", "scrape_interval: 1s".into()),
        ("scrape_timeout: 10s", "scrape_timeout: 1s".into()),
    ] {
        assert!(agent.contains(from), "agent.yml no longer contains {from}");
        agent = agent.replace(from, &to);
    }
    std::fs::write(d("agent.yml"), agent).unwrap();
    let agent_log = d("agent.log");
    home.spawn(&[
        "sh",
        "-c",
        &format!(
            "exec prometheus --enable-feature=agent --config.file={} --storage.agent.path={} \
             --web.listen-address=127.0.0.1:9099 >{} 2>&1",
            d("agent.yml").display(),
            d("agent-data").display(),
            agent_log.display()
        ),
    ]);
    let logs = [lw_log.as_path(), agent_log.as_path(), central_log.as_path()];

    let series = "linkwatch_group_up{group=\"uplink\",site=\"almaty-home\",job=\"linkwatch\"}";
    wait_for(
        Duration::from_secs(60),
        "the uplink up at the central Prometheus",
        &logs,
        || query(&central, &format!("{series} == 1"), None).len() == 1,
    );
    // Some history before the outage.
    std::thread::sleep(Duration::from_secs(10));

    let down_at = unix_now();
    central.ip(&["link", "set", &uplink.b_if, "down"]);
    std::thread::sleep(Duration::from_secs(outage_secs));
    central.ip(&["link", "set", &uplink.b_if, "up"]);
    central.wait_up(&uplink.b_if);
    let up_at = unix_now();

    // The backlog arrives: the newest sample at the centre is after the link returned.
    wait_for(
        Duration::from_secs(120),
        "the agent's backlog at the centre",
        &logs,
        || {
            query(&central, &format!("timestamp({series})"), None)
                .first()
                .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                .is_some_and(|t| t > up_at + 5.0)
        },
    );

    // Every raw sample from 10 s before the outage to 5 s after it.
    let from = down_at - 10.0;
    let to = up_at + 5.0;
    let range = (to - from).ceil() as u64;
    let result = query(&central, &format!("{series}[{range}s]"), Some(to));
    assert_eq!(result.len(), 1, "one series expected: {result:?}");
    let samples: Vec<(f64, f64)> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap(),
                p[1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect();
    let inside: Vec<&(f64, f64)> = samples
        .iter()
        .filter(|(t, _)| (down_at..=up_at).contains(t))
        .collect();
    let expected = ((up_at - down_at) / SCRAPE).floor() as usize;
    let largest_gap = samples
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    let zeros = inside.iter().filter(|(_, v)| *v == 0.0).count();
    eprintln!(
        "agent backfill: uplink down {:.1} s; central holds {} of {} expected 1 s samples \
         from inside the outage ({} with the group down); largest gap {:.2} s over [{:.0}, {:.0}]",
        up_at - down_at,
        inside.len(),
        expected,
        zeros,
        largest_gap,
        from,
        to
    );
    assert!(
        largest_gap <= 3.0 * SCRAPE,
        "a hole of {largest_gap:.1} s in linkwatch_group_up at the centre\n{samples:?}"
    );
    assert!(
        inside.len() + 3 >= expected,
        "{} of {expected} samples from inside the outage arrived",
        inside.len()
    );
    // linkwatch saw the outage, and the centre learned of it from the backlog.
    assert!(
        zeros as f64 >= (up_at - down_at) - 10.0,
        "only {zeros} samples show the uplink down over {:.0} s",
        up_at - down_at
    );
    let outages = must(std::process::Command::new(BIN).args([
        "outages",
        "--json",
        "--data-dir",
        d("lw-data").to_str().unwrap(),
    ]));
    assert!(
        outages.contains("\"group\": \"uplink\"") || outages.contains("\"group\":\"uplink\""),
        "linkwatch's journal holds no uplink outage:\n{outages}"
    );
}
