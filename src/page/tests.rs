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
        elsewhere: Default::default(),
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

#[test]
fn undecided_and_unmonitored_groups_never_read_100_percent() {
    use crate::outage::figures::Figures;
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("lan", State::Unknown), ("isp", State::Up)]);
    // One run from 10:30 on, watched by this daemon; lan has no verdict yet.
    let mut h = crate::journal::Ledger::default();
    h.runs.push(crate::journal::Run {
        start_seq: 0,
        started: ts("2026-12-01T10:30:00Z"),
        alive_until: now,
        clean: false,
        clock_synchronized: Some(true),
        site: None,
        config_source: String::new(),
        plan: None,
        throughput_targets: vec![],
        reloads: vec![],
    });
    let alive = crate::journal::Liveness::Alive { pid: "1".into() };
    let figs = Figures::new(&h, now, &alive).with_undecided([("lan", None)]);
    let figures = group_figures(&figs, &st, &TimeZone::UTC);
    let html = status_page(&PageData {
        status: &st,
        periods: &[],
        figures: &figures,
        monitored: &figs.monitored(ts("2026-11-01T00:00:00Z"), now),
        plans: &[],
        charts: &[],
        range: Range::H1,
        uncharted: 0,
        tz: &TimeZone::UTC,
    });
    let card = |g: &str| {
        html.split(&format!("data-group=\"{g}\""))
            .nth(1)
            .unwrap()
            .split("</article>")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(
        card("lan").contains("<dt>today</dt><dd class=\"na\">not yet judged</dd>"),
        "{}",
        card("lan")
    );
    assert!(!card("lan").contains("100 %"), "{}", card("lan"));
    assert!(
        card("isp").contains("<dt>30 days</dt><dd>100 %</dd>"),
        "{}",
        card("isp")
    );
    // Before the run: grey, not green.
    assert!(card("isp").contains("s-gap"), "{}", card("isp"));
}

#[test]
fn all_good_counts_from_the_last_slow_period_and_names_every_slow_group_upstream_first() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("isp", State::Up), ("internet", State::Up)]);
    let ps = [
        period(
            Kind::Outage,
            "isp",
            "2026-12-01T10:00:00Z",
            Some("2026-12-01T10:05:00Z"),
        ),
        period(
            Kind::Degradation,
            "internet",
            "2026-12-01T10:20:00Z",
            Some("2026-12-01T10:38:13Z"),
        ),
    ];
    let html = page(&st, &ps);
    assert!(
        html.contains("All good for 2 min (since the last slow period)"),
        "{html}"
    );
    let ps = [
        period(Kind::Degradation, "internet", "2026-12-01T10:20:00Z", None),
        period(Kind::Degradation, "isp", "2026-12-01T10:21:00Z", None),
    ];
    let html = page(&st, &ps);
    assert!(
        html.contains("Isp and internet are slow since 10:20:00 (20 min): isp loss; internet loss"),
        "{html}"
    );
}

#[test]
fn throughput_is_on_a_log_axis_with_the_plan_line() {
    use crate::history::Throughput;
    let now = ts("2026-12-01T10:40:13Z");
    let mut s = crate::history::Series {
        target: "speed".into(),
        since: ts("2026-12-01T09:40:13Z"),
        until: now,
        step_seconds: 60,
        points: vec![],
        throughput: vec![],
        damaged_files: vec![],
    };
    for (i, bps) in [2e6, 3e6, 40e9].into_iter().enumerate() {
        s.throughput.push(Throughput {
            at: ts("2026-12-01T10:00:00Z")
                .checked_add(jiff::SignedDuration::from_mins(i as i64))
                .unwrap(),
            bytes: 1_000_000,
            seconds: 1.0,
            bits_per_second: bps,
            loaded: None,
        });
    }
    let svg = svg::throughput_chart(&s, &TimeZone::UTC, Some(100e6));
    assert!(svg.contains("log scale"), "{svg}");
    assert!(svg.contains("class=\"plan\""), "{svg}");
    assert!(svg.contains("plan 100.0 Mbit/s"), "{svg}");
    // Decades from 1 Mbit/s to 100 Gbit/s: 2 Mbit/s is not on the floor.
    assert!(
        svg.contains(">1M</text>") && svg.contains(">100G</text>"),
        "{svg}"
    );
    let ys: Vec<f64> = svg
        .split("<circle class=\"tp\"")
        .skip(1)
        .map(|c| {
            c.split("cy=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    // The plot's floor is y = 100; on a linear axis to 40 Gbit/s both
    // would sit on it, 0.005 px apart.
    assert!(
        ys[0] < 96.0 && ys[0] - ys[1] > 3.0,
        "2 and 3 Mbit/s apart: {ys:?}"
    );
    assert!(svg.contains("2.0 Mbit/s in 1.00 s, 2 % of plan"), "{svg}");
}

#[test]
fn the_default_range_fits_the_data() {
    let now = ts("2026-12-01T10:40:13Z");
    let ago = |s: i64| Some(Timestamp::from_second(now.as_second() - s).unwrap());
    assert_eq!(Range::fitted(ago(600), now), Range::H1);
    assert_eq!(Range::fitted(ago(7200), now), Range::H3);
    assert_eq!(Range::fitted(ago(5 * 86_400), now), Range::H24);
    assert_eq!(Range::fitted(None, now), Range::H1);
    assert_eq!(Range::parse("1h"), Some(Range::H1));
}

/// The detail view says what peers saw: each peer's sentence, its targets,
/// and a cause a peer's verdict changed; a period nobody corroborated has no
/// such section.
#[test]
fn detail_view_shows_what_peers_saw() {
    use crate::journal::peer_fixture::{self, DEST, NODATA, REACH};
    let dir = tempfile::tempdir().unwrap();
    peer_fixture::write(dir.path());
    let h = crate::journal::Ledger::load(dir.path()).unwrap();
    let st = status(ts("2026-11-01T11:00:00Z"), &[("internet", State::Up)]);
    let tz = TimeZone::UTC;
    let view = |id: &str| {
        let r = h.closed.iter().find(|r| r.id == id).unwrap();
        detail_page(&Period::from(r), &[], &st, &tz)
    };
    let dest = view("o-dest");
    assert!(
        dest.contains(
            "<dd>destination — seen down from elsewhere too; this site judged: internet</dd>"
        ),
        "{dest}"
    );
    assert!(dest.contains("<section id=\"elsewhere\"><h2>Seen from elsewhere</h2>"));
    assert!(dest.contains(&format!(
        "<p class=\"pv pv-destination_down\"><strong>abroad</strong>: {}</p>",
        esc(DEST)
    )));
    assert!(dest.contains(&format!("<strong>backup</strong>: {}", esc(NODATA))));
    assert!(dest.contains("<tr><td>intl-web</td><td class=\"num\">40</td><td class=\"num\">40</td><td class=\"num\">100.0 %</td><td class=\"tv-down\">down</td></tr>"), "{dest}");
    assert!(
        dest.find("id=\"elsewhere\"").unwrap() < dest.find("<section id=\"evidence\">").unwrap()
    );
    let reach = view("o-reach");
    assert!(reach.contains("<dd>internet</dd>"), "{reach}");
    assert!(reach.contains(&esc(REACH)));
    assert!(
        reach.contains("<td class=\"num\">1.7 %</td><td class=\"tv-up\">up</td>"),
        "{reach}"
    );
    let none = view("o-none");
    assert!(!none.contains("elsewhere"), "{none}");
    let slow = Period::from(&h.degradations.closed[0]);
    let slow = detail_page(&slow, &[], &st, &tz);
    assert!(
        slow.contains("pv-mixed") && slow.contains("tv-partial"),
        "{slow}"
    );
}
