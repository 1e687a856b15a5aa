use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::history::{HistoryQuery, HistoryStore};
use crate::outage::GroupStatus;
use crate::status::{Status, TargetStatus};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn status(now: Timestamp, states: &[(&str, State)]) -> Status {
    Status {
        version: "test",
        started: ts("2026-11-30T00:00:00Z"),
        now,
        groups: states
            .iter()
            .map(|(n, s)| GroupStatus {
                name: n.to_string(),
                needs: None,
                state: *s,
                since: Some(ts("2026-12-01T09:00:00Z")),
                outage: None,
                degraded: None,
            })
            .collect(),
        targets: states
            .iter()
            .map(|(n, s)| TargetStatus {
                name: format!("{n}-t<1>"),
                group: n.to_string(),
                kind: "icmp",
                probes: "192.0.2.1".into(),
                interval_seconds: 1.0,
                timeout_seconds: 0.5,
                probes_total: 0,
                successes_total: 0,
                last: None,
                state: *s,
                state_since: None,
            })
            .collect(),
    }
}

fn period(kind: Kind, group: &str, start: &str, end: Option<&str>) -> Period {
    Period {
        kind,
        id: format!("{group}-{start}"),
        group: group.into(),
        cause: "isp".into(),
        start: ts(start),
        end: end.map(ts),
        duration_seconds: 60.0,
        targets: vec![],
        gaps: vec![],
        end_observed: None,
        duration_clock: "monotonic".into(),
        triggers: vec!["loss".into()],
        end_reason: None,
        figures: vec![("at start", "loss 12.5% · rtt p50 31 ms".into())],
    }
}

fn page(status: &Status, periods: &[Period]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, bool)> = status
        .targets
        .iter()
        .map(|t| (t.name.clone(), false))
        .collect();
    let store = HistoryStore::open_at(dir.path(), names.clone(), status.now).unwrap();
    let all: Vec<String> = names.into_iter().map(|(n, _)| n).collect();
    let now = status.now;
    let charts = store.query(
        &HistoryQuery::new(
            all,
            Timestamp::from_second(now.as_second() - 86_400).unwrap(),
            now,
            300,
        )
        .unwrap(),
    );
    status_page(&PageData {
        status,
        periods,
        figures: &[],
        monitored: &[],
        plans: &[],
        charts: &charts,
        range: Range::H24,
        uncharted: 0,
        tz: &TimeZone::UTC,
    })
}

#[test]
fn verdict_names_the_downstream_group_and_the_cause() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("isp", State::Down), ("internet", State::Down)]);
    let ps = [
        period(Kind::Outage, "isp", "2026-12-01T10:02:13Z", None),
        period(Kind::Outage, "internet", "2026-12-01T10:02:13Z", None),
    ];
    let html = page(&st, &ps);
    assert!(
        html.contains(
            "Internet is down since 10:02:13 (38 min) — likely cause: isp. Also down: isp"
        ),
        "{html}"
    );
    assert!(html.contains("data-group=\"internet\" data-state=\"down\""));
    assert!(html.contains("href=\"/outage/internet-2026-12-01T10%3A02%3A13Z\""));
}

#[test]
fn degradation_slots_in_as_a_period_kind() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("international", State::Up)]);
    let ps = [period(
        Kind::Degradation,
        "international",
        "2026-12-01T10:00:13Z",
        None,
    )];
    let html = page(&st, &ps);
    assert!(html.contains("International is slow since 10:00:13 (40 min): loss"));
    assert!(html.contains("data-group=\"international\" data-state=\"degraded\""));
    assert!(html.contains("class=\"s-degraded\""));
    // Its detail view says how bad it was, and lists no "targets down".
    let tz = jiff::tz::TimeZone::UTC;
    let detail = detail_page(&ps[0], &[], &st, &tz);
    assert!(
        detail.contains("<dt>at start</dt><dd>loss 12.5% · rtt p50 31 ms</dd>"),
        "{detail}"
    );
    assert!(!detail.contains("targets down"), "{detail}");
}

#[test]
fn names_are_escaped_and_every_chart_has_a_title() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("a\"><script>x</script>", State::Up)]);
    let html = page(&st, &[]);
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("a&quot;&gt;&lt;script&gt;"));
    assert!(html.contains("All good for 1 day (since linkwatch started)"));
    let svgs = html.matches("<svg").count();
    assert_eq!(
        svgs,
        html.matches("<svg")
            .zip(html.split("<svg").skip(1))
            .filter(|(_, rest)| rest
                .split_once('>')
                .is_some_and(|(_, after)| after.starts_with("<title>")))
            .count()
    );
    assert_eq!(svgs, 3 + 1, "three bars and one chart");
}
