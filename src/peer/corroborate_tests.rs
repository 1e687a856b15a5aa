//! The pure parts of corroboration: the book the journal feeds (and a
//! restart's re-queue), retries, call planning and verdicts.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::journal::{DurationClock, OutageEnded};
use crate::peer::wire::{MinuteObservation, TargetObservations};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn config() -> Config {
    crate::config::parse(
        r#"
[daemon]
data_dir = "/tmp/linkwatch-peer-test"

[[group]]
name = "intl"

[[target]]
name = "intl-web"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[target]]
name = "intl-dns"
group = "intl"
kind = "tcp"
host = "127.0.0.1"
port = 10
"#,
        "test.toml",
    )
    .unwrap()
}

fn outage_end(seq: u64, id: &str, at: &str, targets: &[&str]) -> Line {
    Line {
        seq,
        prev: crate::journal::GENESIS.into(),
        ts: ts(at),
        entry: Entry::OutageEnd(OutageEnded {
            interference: None,
            id: id.into(),
            group: "intl".into(),
            cause: "intl".into(),
            start: ts("2026-12-06T10:02:10Z"),
            start_observed: true,
            end: ts("2026-12-06T10:41:30Z"),
            duration_seconds: 2360.0,
            duration_clock: DurationClock::Monotonic,
            end_observed: true,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            gaps: vec![],
            end_reason: None,
        }),
    }
}

fn corroborated(seq: u64, peer: &str, period: &str) -> Line {
    Line {
        seq,
        prev: crate::journal::GENESIS.into(),
        ts: ts("2026-12-06T10:43:00Z"),
        entry: Entry::Corroboration(Corroboration {
            period: period.into(),
            kind: PeriodKind::Outage,
            peer: peer.into(),
            start: ts("2026-12-06T10:02:10Z"),
            end: ts("2026-12-06T10:41:30Z"),
            targets: vec![],
            verdict: PeerVerdict::NoData,
            summary: String::new(),
        }),
    }
}

fn ids<'a>(book: &'a Book, peer: &'a str) -> Vec<&'a str> {
    book.pending(peer).map(|p| p.id.as_str()).collect()
}

#[test]
fn the_journal_is_the_queue_and_a_restart_asks_again_for_what_is_missing() {
    let cfg = config();
    let now = ts("2026-12-07T09:00:00Z");
    // What a restart reads: three ends in the last 24 h, one older; one
    // period answered by "abroad" only.
    let lines = [
        outage_end(1, "old", "2026-12-06T08:00:00Z", &["intl-web"]),
        outage_end(2, "o1", "2026-12-06T10:41:31Z", &["intl-web"]),
        corroborated(3, "abroad", "o1"),
        outage_end(4, "o2", "2026-12-06T12:00:00Z", &[]),
        outage_end(5, "o3", "2026-12-06T13:00:00Z", &["intl-dns"]),
        corroborated(6, "abroad", "o3"),
        corroborated(7, "home2", "o3"),
    ];
    let mut book = Book::default();
    let added: Vec<bool> = lines.iter().map(|l| book.observe(l, &cfg, now)).collect();
    assert_eq!(added, [false, true, false, true, true, false, false]);
    assert_eq!(ids(&book, "abroad"), ["o2"]);
    assert_eq!(ids(&book, "home2"), ["o1", "o2"]);
    // An outage line without targets asks about its group's.
    let o2 = book.pending("abroad").next().unwrap();
    assert_eq!(o2.targets, ["intl-web", "intl-dns"]);
    // Reading the same lines again (a replaced file) changes nothing.
    for l in &lines {
        book.observe(l, &cfg, now);
    }
    assert_eq!(ids(&book, "home2"), ["o1", "o2"]);
    // An answer settles before its line is read back.
    book.settle("home2", "o1");
    assert_eq!(ids(&book, "home2"), ["o2"]);
    // 24 h after their ends: given up, naming who never answered.
    let later = ts("2026-12-07T12:30:00Z");
    let gone = book.expire(later, &["abroad".to_string(), "home2".to_string()]);
    let gone: Vec<(&str, Vec<String>)> = gone
        .iter()
        .map(|(p, m)| (p.id.as_str(), m.clone()))
        .collect();
    assert_eq!(
        gone,
        [
            ("o1", vec![]),
            ("o2", vec!["abroad".to_string(), "home2".to_string()])
        ]
    );
    assert_eq!(ids(&book, "home2"), Vec::<&str>::new());
    assert_eq!(book.len(), 1);
}

#[test]
fn the_window_covers_the_minutes_touched() {
    let mut book = Book::default();
    book.observe(
        &outage_end(1, "o", "2026-12-06T10:41:31Z", &["intl-web"]),
        &config(),
        ts("2026-12-06T10:42:00Z"),
    );
    let p = book.pending("x").next().unwrap();
    assert_eq!(
        p.window(),
        (ts("2026-12-06T10:02:00Z"), ts("2026-12-06T10:41:59Z"))
    );
    let short = Period {
        start: ts("2026-12-06T10:02:10Z"),
        end: ts("2026-12-06T10:02:20Z"),
        ..p.clone()
    };
    assert_eq!(
        short.window(),
        (ts("2026-12-06T10:02:00Z"), ts("2026-12-06T10:02:59Z"))
    );
}

#[test]
fn backoff_doubles_to_its_cap_and_resets() {
    let mut b = Backoff::new(FIRST_RETRY, MAX_RETRY);
    let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    b.reset();
    assert_eq!(b.next_wait(), FIRST_RETRY);
}

#[test]
fn an_unreachable_peer_holds_every_period_back_a_bad_answer_only_its_own() {
    let cfg = config();
    let t0 = ts("2026-12-06T11:00:00Z");
    let mut book = Book::default();
    book.observe(
        &outage_end(1, "a", "2026-12-06T10:41:31Z", &["intl-web"]),
        &cfg,
        t0,
    );
    book.observe(
        &outage_end(2, "b", "2026-12-06T10:50:00Z", &["intl-web"]),
        &cfg,
        t0,
    );
    let mut r = Retries::default();
    let Next::Ask(p) = r.next(&book, "abroad", t0) else {
        panic!("nothing to ask")
    };
    assert_eq!(p.id, "a");
    // Unreachable: both wait for the same moment, 1 s then 2 s later.
    assert_eq!(r.failed("a", true, t0), Duration::from_secs(1));
    assert_eq!(
        r.next(&book, "abroad", t0),
        Next::WaitUntil(ts("2026-12-06T11:00:01Z"))
    );
    let t1 = ts("2026-12-06T11:00:01Z");
    assert!(matches!(r.next(&book, "abroad", t1), Next::Ask(p) if p.id == "a"));
    assert_eq!(r.failed("a", true, t1), Duration::from_secs(2));
    // A witness got through: the peer is reachable again, ask now.
    r.reachable();
    assert!(matches!(r.next(&book, "abroad", t1), Next::Ask(p) if p.id == "a"));
    // Impossible figures for "a": only "a" waits; "b" goes next.
    r.failed("a", false, t1);
    assert!(matches!(r.next(&book, "abroad", t1), Next::Ask(p) if p.id == "b"));
    r.succeeded("b");
    book.settle("abroad", "b");
    assert_eq!(
        r.next(&book, "abroad", t1),
        Next::WaitUntil(ts("2026-12-06T11:00:02Z"))
    );
    book.settle("abroad", "a");
    assert_eq!(r.next(&book, "abroad", t1), Next::Idle);
    // Nothing is kept of periods that no longer wait.
    r.prune(&book, "abroad");
    assert!(r.per_period.is_empty());
}

#[test]
fn calls_stay_within_the_peers_bounds_and_do_not_overlap() {
    let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    // 40 minutes, 40 targets: three calls of at most 16 targets.
    let since = ts("2026-12-06T10:02:00Z");
    let until = ts("2026-12-06T10:41:59Z");
    let calls = plan_calls(&names, since, until);
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.since == since && c.until == until));
    let all: Vec<String> = calls.iter().flat_map(|c| c.targets.clone()).collect();
    assert_eq!(all, names);
    // Each call passes the peer's own check of a query.
    for c in &calls {
        ObservationsRequest::parse_query(&c.query_string()).unwrap();
    }
    // Ten days, two targets: windows of at most seven days, back to back.
    let until = ts("2026-12-16T10:02:59Z");
    let calls = plan_calls(&names[..2], since, until);
    for c in &calls {
        ObservationsRequest::parse_query(&c.query_string()).unwrap();
    }
    let mut windows: Vec<(Timestamp, Timestamp)> =
        calls.iter().map(|c| (c.since, c.until)).collect();
    windows.dedup();
    assert!(windows.len() >= 2, "{windows:?}");
    assert_eq!(windows[0].0, since);
    assert_eq!(windows.last().unwrap().1, until);
    for w in windows.windows(2) {
        assert_eq!(w[1].0.as_second(), w[0].1.as_second() + 1, "{w:?}");
        assert_eq!(w[1].0.as_second() % 60, 0);
    }
}

fn answer(since: &str, until: &str, targets: Vec<TargetObservations>) -> Observations {
    Observations {
        site: "abroad".into(),
        since: ts(since),
        until: ts(until),
        step_seconds: 60,
        targets,
    }
}

fn minutes(from: &str, n: i64, probes: u64, failures: u64) -> Vec<MinuteObservation> {
    (0..n)
        .map(|i| MinuteObservation {
            t: ts(from)
                .checked_add(SignedDuration::from_secs(60 * i))
                .unwrap(),
            probes,
            failures,
            rtt_p50_seconds: Some(0.01),
            rtt_p95_seconds: Some(0.02),
        })
        .collect()
}

#[test]
fn verdicts_from_the_peers_minutes() {
    let p = Period {
        id: "o".into(),
        kind: PeriodKind::Outage,
        group: "intl".into(),
        start: ts("2026-12-06T10:02:10Z"),
        end: ts("2026-12-06T10:06:30Z"),
        ended_at: ts("2026-12-06T10:06:31Z"),
        targets: vec!["intl-web".into(), "intl-dns".into(), "lan-only".into()],
    };
    let compare: BTreeMap<String, String> =
        [("intl-dns".to_string(), "dns-there".to_string())].into();
    let asked = asked(&p, &compare);
    assert_eq!(asked[1], ("intl-dns".to_string(), "dns-there".to_string()));
    let (since, until) = p.window();
    let call = ObservationsRequest {
        targets: vec!["intl-web".into(), "dns-there".into(), "lan-only".into()],
        since,
        until,
    };
    let obs = answer(
        "2026-12-06T10:02:00Z",
        "2026-12-06T10:06:59Z",
        vec![
            TargetObservations {
                target: "intl-web".into(),
                known: true,
                minutes: minutes("2026-12-06T10:02:00Z", 5, 60, 0),
            },
            TargetObservations {
                target: "dns-there".into(),
                known: true,
                minutes: minutes("2026-12-06T10:02:00Z", 5, 12, 1),
            },
            TargetObservations {
                target: "lan-only".into(),
                known: false,
                minutes: vec![],
            },
        ],
    );
    check_answer(&obs, &call).unwrap();
    let mut sums = Sums::default();
    sums.add(&obs);
    let c = corroboration(&p, "abroad", &asked, &sums);
    let v: Vec<(&str, Option<&str>, u64, u64, TargetVerdict)> = c
        .targets
        .iter()
        .map(|t| {
            (
                t.target.as_str(),
                t.their_target.as_deref(),
                t.probes,
                t.failures,
                t.verdict,
            )
        })
        .collect();
    assert_eq!(
        v,
        [
            ("intl-web", None, 300, 0, TargetVerdict::Up),
            ("intl-dns", Some("dns-there"), 60, 5, TargetVerdict::Partial),
            ("lan-only", None, 0, 0, TargetVerdict::NoData),
        ]
    );
    assert_eq!(c.verdict, PeerVerdict::Mixed);
    assert_eq!(c.targets[1].loss_ratio, Some(5.0 / 60.0));
    assert_eq!(c.period, "o");
    assert_eq!(c.summary, PeerVerdict::Mixed.sentence("abroad"));

    // All up: reachable elsewhere, the first sentence.
    let mut up = Sums::default();
    up.add(&answer(
        "2026-12-06T10:02:00Z",
        "2026-12-06T10:06:59Z",
        vec![TargetObservations {
            target: "intl-web".into(),
            known: true,
            minutes: minutes("2026-12-06T10:02:00Z", 5, 60, 0),
        }],
    ));
    let only_web = [("intl-web".to_string(), "intl-web".to_string())];
    let c = corroboration(&p, "abroad", &only_web, &up);
    assert_eq!(c.verdict, PeerVerdict::ReachableElsewhere);
    assert!(
        c.summary
            .starts_with("the destinations answered from abroad throughout"),
        "{}",
        c.summary
    );
}

#[test]
fn impossible_or_foreign_answers_are_rejected() {
    let call = ObservationsRequest {
        targets: vec!["intl-web".into()],
        since: ts("2026-12-06T10:02:00Z"),
        until: ts("2026-12-06T10:06:59Z"),
    };
    let web = |ms| TargetObservations {
        target: "intl-web".into(),
        known: true,
        minutes: ms,
    };
    // More failures than probes.
    let bad = answer(
        "2026-12-06T10:02:00Z",
        "2026-12-06T10:06:59Z",
        vec![web(minutes("2026-12-06T10:02:00Z", 1, 3, 4))],
    );
    assert!(check_answer(&bad, &call).is_err());
    // More probes in a minute than 100 ms intervals allow.
    let bad = answer(
        "2026-12-06T10:02:00Z",
        "2026-12-06T10:06:59Z",
        vec![web(minutes("2026-12-06T10:02:00Z", 1, 601, 0))],
    );
    assert!(check_answer(&bad, &call).is_err());
    // Another window than asked for.
    let bad = answer(
        "2026-12-06T09:00:00Z",
        "2026-12-06T10:06:59Z",
        vec![web(vec![])],
    );
    assert!(check_answer(&bad, &call).unwrap_err().contains("outside"));
    // A target not asked for.
    let mut other = web(vec![]);
    other.target = "elsewhere".into();
    let bad = answer("2026-12-06T10:02:00Z", "2026-12-06T10:06:59Z", vec![other]);
    assert!(check_answer(&bad, &call).is_err());
}
