//! The degradation path through the outage service: journaled in the hash
//! chain, counted, shown, and resumed with a gap after a `kill -9`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use crate::config::{Config, Degraded};
use crate::journal::Trigger;
use crate::journal::{self, Entry};
use crate::outage::testutil::chain;
use crate::outage::{ClockSync, OutageService, StartOptions};
use crate::probe::{Observation, Outcome, Phases, ProbeResult};

fn cfg(dir: &std::path::Path) -> Config {
    let mut c = chain(dir);
    for t in &mut c.targets {
        t.interval = Duration::from_millis(100);
        t.timeout = Duration::from_millis(50);
    }
    for g in &mut c.groups {
        g.degraded = Degraded {
            window: Duration::from_secs(2),
            min_samples: 10,
            loss_above: Some(0.10),
            ..Degraded::default()
        };
    }
    c
}

async fn start(c: &Config) -> (OutageService, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let (s, _) = OutageService::start_with(
        c,
        &registry,
        StartOptions {
            heartbeat_interval: Duration::from_millis(50),
            clock: Some(ClockSync {
                synchronized: Some(true),
                check: "test".into(),
            }),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    (s, registry)
}

/// `rounds` of one probe per target 20 ms apart; `lossy(target, round)` fails it.
async fn feed(s: &mut OutageService, rounds: usize, lossy: impl Fn(usize, usize) -> bool) {
    for round in 0..rounds {
        for target in 0..3 {
            let outcome = if lossy(target, round) {
                Outcome::Timeout { phase: None }
            } else {
                Outcome::Success {
                    duration: Duration::from_millis(5),
                    phases: Phases::default(),
                }
            };
            let r = ProbeResult {
                target,
                at: Timestamp::now(),
                mono: Instant::now(),
                lateness: Duration::ZERO,
                observation: Observation::new(outcome),
            };
            s.observe(&r).await;
        }
        s.tick().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entries(dir: &std::path::Path) -> Vec<Entry> {
    let c = journal::read(dir).unwrap();
    assert!(c.first_chain_break().is_none(), "{:?}", c.warnings);
    c.lines.into_iter().map(|l| l.line.entry).collect()
}

#[tokio::test]
async fn isp_loss_degrades_isp_and_internet_with_cause_isp_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let (mut s, registry) = start(&c).await;
    // Every third isp/internet probe lost (33 %), never three in a row: no outage.
    let lossy = |t: usize, round: usize| t > 0 && round.is_multiple_of(3);
    feed(&mut s, 60, lossy).await;
    let started: Vec<_> = entries(dir.path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::DegradedStart(d) => Some(d),
            _ => None,
        })
        .collect();
    let by_group: Vec<(&str, &str)> = started
        .iter()
        .map(|d| (d.group.as_str(), d.cause.as_str()))
        .collect();
    assert_eq!(by_group.len(), 2, "{started:?}");
    assert!(by_group.contains(&("isp", "isp")), "{by_group:?}");
    assert!(by_group.contains(&("internet", "isp")), "{by_group:?}");
    assert!(started.iter().all(|d| d.triggers == vec![Trigger::Loss]));
    let loss = started[0].figures.loss_ratio.unwrap();
    assert!((0.25..=0.45).contains(&loss), "{loss}");
    let mut buf = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut buf,
    )
    .unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(
        text.contains("linkwatch_group_degraded{group=\"isp\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("linkwatch_degradations_total{cause=\"isp\",group=\"internet\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("linkwatch_group_degraded{group=\"lan\"} 0"),
        "{text}"
    );
    assert!(
        !entries(dir.path())
            .iter()
            .any(|e| matches!(e, Entry::OutageStart(_)))
    );
    let isp_id = started
        .iter()
        .find(|d| d.group == "isp")
        .unwrap()
        .id
        .clone();

    // kill -9, then the loss goes on: one degradation, resumed with a gap.
    s.crash().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut s, _registry) = start(&c).await;
    feed(&mut s, 40, lossy).await;
    let resumed: Vec<_> = entries(dir.path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::DegradedResume(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(resumed.iter().any(|d| d.id == isp_id), "{resumed:?}");
    // Loss stops: it ends once a whole window is clean.
    feed(&mut s, 250, |_, _| false).await;
    let ended: Vec<_> = entries(dir.path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::DegradedEnd(d) => Some(d),
            _ => None,
        })
        .collect();
    let isp = ended.iter().find(|d| d.id == isp_id).unwrap();
    assert_eq!(isp.gaps.len(), 1, "{isp:?}");
    assert!(isp.end_observed);
    assert!(isp.figures.worst.loss_ratio.unwrap() > 0.25, "{isp:?}");
    let starts = entries(dir.path())
        .iter()
        .filter(|e| matches!(e, Entry::DegradedStart(d) if d.group == "isp"))
        .count();
    assert_eq!(starts, 1);
    // The history and the listing agree.
    let h = crate::journal::Ledger::load(dir.path()).unwrap();
    let recs = super::listing::degradations(
        &h,
        None,
        None,
        Timestamp::now(),
        &crate::journal::lock::Liveness::NotRunning,
    );
    let rec = recs.iter().find(|r| r.id == isp_id).unwrap();
    assert_eq!(rec.gaps.len(), 1);
    assert!(rec.figures.loss_ratio.is_some() && rec.period.is_some());
    s.shutdown(Duration::from_secs(2)).await;
}

/// A throughput target (30 min interval) in a group does not hold the
/// group's announcements back by `fail_after` tests (90 min): `settle` is
/// the time the group's other targets need to call it down.
#[test]
fn throughput_targets_do_not_stretch_the_wait_for_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    let mut slow = c.targets[0].clone();
    slow.name = "speed".into();
    slow.interval = Duration::from_secs(1800);
    slow.fail_after = 3;
    slow.spec = crate::config::parse(
        "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"throughput\"\nurl = \"http://127.0.0.1:9/big\"\n",
        "<test>",
    )
    .unwrap()
    .targets[0]
    .spec
    .clone();
    assert_eq!(slow.kind(), crate::config::Kind::Throughput);
    let group = slow.group.clone();
    c.targets.push(slow);
    let g = c.groups.iter().position(|x| x.name == group).unwrap();
    let others = c
        .targets
        .iter()
        .filter(|t| t.group == group && t.name != "speed")
        .map(|t| t.interval * t.fail_after)
        .max()
        .unwrap();
    assert_eq!(super::group_specs(&c)[g].settle, others);
}

#[tokio::test]
async fn clean_stop_lists_the_open_slow_period_and_readers_end_it_at_the_last_sign_of_life() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let (mut s, _) = start(&c).await;
    let lossy = |t: usize, round: usize| t > 0 && round.is_multiple_of(3);
    feed(&mut s, 40, lossy).await;
    let open = s.handle().degradations(None, None);
    assert!(
        open.iter().any(|d| d.end.is_none()),
        "a slow period is open: {open:?}"
    );
    s.shutdown(Duration::from_secs(2)).await;
    let listed = match entries(dir.path()).last().unwrap() {
        Entry::DaemonStop(d) => d.open_degradations.clone(),
        other => panic!("{other:?}"),
    };
    let mut want: Vec<String> = open
        .iter()
        .filter(|d| d.end.is_none())
        .map(|d| d.id.clone())
        .collect();
    want.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, want, "daemon_stop lists them");
    // No daemon runs: the reader ends them at the last sign of life, and a
    // second reading later gives the same figures (nothing grows).
    let (first, _) = crate::outage::degraded::listing::read_degradations(dir.path(), None).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (second, _) =
        crate::outage::degraded::listing::read_degradations(dir.path(), None).unwrap();
    assert_eq!(first, second, "an offline reading does not grow");
    for d in first.iter().filter(|d| listed.contains(&d.id)) {
        assert_eq!(d.end_observed, Some(false), "{d:?}");
        assert!(d.end.is_some() && d.end == d.observed_until, "{d:?}");
        assert!(d.duration_seconds > 0.0, "{d:?}");
    }
}

/// Issue 21: loss of the internet group made of forged DNS answers (every
/// other probe of its target, never an outage) is a slow period of cause
/// `interference`, whose summary names the check, the target and the name
/// the probes showed; the degradation's own counts come with it.
#[tokio::test]
async fn loss_of_interference_failures_is_an_interference_slow_period_with_names() {
    use crate::interference::{Check, Evidence};
    use crate::probe::{Info, Reason};
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let (mut s, _registry) = start(&c).await;
    for round in 0..60 {
        for target in 0..3 {
            let observation = if target == 2 && round % 2 == 1 {
                Observation::with_info(
                    Outcome::error(Reason::DnsBogon, "forged"),
                    Info {
                        evidence: Some(Box::new(Evidence::new(
                            Check::DnsBogon,
                            "forged.example",
                            "isp answered 10.9.9.9; doh answered 93.184.216.34",
                        ))),
                        ..Info::default()
                    },
                )
            } else {
                Observation::new(Outcome::Success {
                    duration: Duration::from_millis(5),
                    phases: Phases::default(),
                })
            };
            let r = ProbeResult {
                target,
                at: Timestamp::now(),
                mono: Instant::now(),
                lateness: Duration::ZERO,
                observation,
            };
            s.observe(&r).await;
        }
        s.tick().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started: Vec<_> = entries(dir.path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::DegradedStart(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        (started[0].group.as_str(), started[0].cause.as_str()),
        ("internet", "interference")
    );
    let sum = started[0].interference.as_deref().unwrap();
    assert_eq!(sum.checks, vec!["dns_bogon"]);
    assert_eq!(sum.targets, vec!["google"]);
    assert_eq!(sum.names, vec!["forged.example"]);
    assert!(
        sum.failures > 0 && sum.failures == sum.of_failures,
        "{sum:?}"
    );
    assert!(
        !entries(dir.path())
            .iter()
            .any(|e| matches!(e, Entry::OutageStart(_))),
        "never three failures in a row: no outage"
    );
}
