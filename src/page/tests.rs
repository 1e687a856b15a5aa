use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
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
        interference: None,
    }
}

fn page(status: &Status, periods: &[Period]) -> String {
    status_page(&PageData {
        status,
        periods,
        figures: &[],
        monitored: &[],
        targets: select(status, &PageQuery::default()).unwrap(),
        range: Range::H24,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &[],
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
    let detail = detail_page(&ps[0], &[], &st, &tz, &[]);
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
    assert_eq!(svgs, 3, "three bars");
    assert!(
        html.contains("<strong>a&quot;&gt;&lt;script&gt;x&lt;/script&gt;-t&lt;1&gt;</strong> icmp"),
        "{html}"
    );
    // The target's chart: an image of its own document, the name encoded.
    assert!(
        html.contains("<img class=\"chart\" src=\"/chart/a%22%3E%3Cscript%3Ex%3C%2Fscript%3E-t%3C1%3E.svg?range=24h\" loading=\"lazy\""),
        "{html}"
    );
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
        targets: select(&st, &PageQuery::default()).unwrap(),
        range: Range::H1,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &[],
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

/// `n` targets in `groups` groups (`g0`…), every seventh one down and with
/// failures: the status of a large installation.
fn many(now: Timestamp, n: usize, groups: usize) -> Status {
    let mut st = status(
        now,
        &(0..groups)
            .map(|g| (format!("g{g}"), State::Up))
            .collect::<Vec<_>>()
            .iter()
            .map(|(n, s)| (n.as_str(), *s))
            .collect::<Vec<_>>(),
    );
    st.targets = (0..n)
        .map(|i| TargetStatus {
            name: format!("t{i:05}"),
            group: format!("g{}", i % groups),
            kind: "icmp",
            probes: format!("192.0.2.{}", i % 250),
            interval_seconds: 1.0,
            timeout_seconds: 0.5,
            probes_total: 1000,
            // Failures grow with the index: the worst are the last ones.
            successes_total: 1000 - (i as u64 % 500),
            last: None,
            state: if i % 7 == 3 { State::Down } else { State::Up },
            state_since: None,
        })
        .collect();
    st
}

#[test]
fn ten_thousand_targets_show_the_groups_and_the_20_worst_charts() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = many(now, 10_000, 40);
    let ps: Vec<Period> = (0..40)
        .map(|g| {
            period(
                Kind::Outage,
                &format!("g{g}"),
                "2026-11-20T10:02:13Z",
                Some("2026-11-20T11:02:13Z"),
            )
        })
        .collect();
    let sel = select(&st, &PageQuery::default()).unwrap();
    assert_eq!(sel.view, View::Worst);
    assert_eq!((sel.shown.len(), sel.total), (WORST, 10_000));
    // Down first, and among those the most failures.
    assert!(sel.shown.iter().all(|t| t.state == State::Down));
    assert!(
        sel.shown
            .windows(2)
            .all(|w| w[0].successes_total <= w[1].successes_total)
    );
    let html = status_page(&PageData {
        status: &st,
        periods: &ps,
        figures: &[],
        monitored: &[],
        targets: sel,
        range: Range::D30,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &[],
    });
    assert_eq!(html.matches("<img class=\"chart\"").count(), WORST);
    assert_eq!(html.matches("<article class=\"card").count(), 40);
    assert!(html.contains("data-view=\"worst\""));
    for g in 0..40 {
        assert!(html.contains(&format!("data-group=\"g{g}\" data-state=\"up\"")));
        assert!(html.contains(&format!("href=\"/?range=30d&amp;group=g{g}#targets\"")));
    }
    assert!(html.contains("href=\"/?range=30d&amp;page=1#targets\""));
    // A card lists a dozen names and links to the rest.
    assert!(html.contains("and <a href=\"/?group=g0#targets\">238 more</a>"));
    assert!(html.len() < 150_000, "{} bytes", html.len());

    // The lists: a group's page, all targets' pages.
    let q = PageQuery::parse("group=g3&page=2&range=7d").unwrap();
    let sel = select(&st, &q).unwrap();
    assert_eq!(sel.view, View::Group("g3".into()));
    assert_eq!((sel.total, sel.page, sel.pages), (250, 2, 3));
    assert_eq!(sel.shown.len(), LIST_PAGE);
    assert!(sel.shown.iter().all(|t| t.group == "g3"));
    let html = status_page(&PageData {
        status: &st,
        periods: &ps,
        figures: &[],
        monitored: &[],
        targets: sel,
        range: Range::D7,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &[],
    });
    assert_eq!(html.matches("<img class=\"chart\"").count(), LIST_PAGE);
    assert!(html.contains("page 2 of 3 (101–200 of 250)"), "{html}");
    assert!(html.contains("href=\"/?range=7d&amp;group=g3&amp;page=3#targets\">next"));
    let sel = select(&st, &PageQuery::parse("page=1000").unwrap()).unwrap();
    assert_eq!(
        (sel.view, sel.page, sel.shown.len()),
        (View::Paged, 100, 100)
    );
    assert!(select(&st, &PageQuery::parse("group=nope").unwrap()).is_none());
    assert!(PageQuery::parse("range=2d").is_err());
    assert!(PageQuery::parse("page=0").is_err());
    assert!(PageQuery::parse("fbclid=1&range=7d").is_ok_and(|q| q.range == Some(Range::D7)));
}

#[test]
fn fifty_targets_are_all_charted_in_a_page_under_300_kb() {
    let now = ts("2026-12-01T10:40:13Z");
    let st = many(now, 50, 10);
    // A month of outages and slow periods: every bar has something on it.
    let ps: Vec<Period> = (0..60)
        .map(|i| {
            let start = Timestamp::from_second(now.as_second() - i * 12 * 3600).unwrap();
            let end = Timestamp::from_second(start.as_second() + 1800).unwrap();
            let mut p = period(
                if i % 2 == 0 {
                    Kind::Outage
                } else {
                    Kind::Degradation
                },
                &format!("g{}", i % 10),
                "2026-12-01T00:00:00Z",
                None,
            );
            p.id = format!("p{i}");
            p.start = start;
            p.end = Some(end);
            p
        })
        .collect();
    let monitored = [(ts("2026-11-01T00:00:00Z"), now)];
    let sel = select(&st, &PageQuery::default()).unwrap();
    assert_eq!((sel.view.clone(), sel.shown.len()), (View::All, 50));
    let html = status_page(&PageData {
        status: &st,
        periods: &ps,
        figures: &[],
        monitored: &monitored,
        targets: sel,
        range: Range::D30,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &[],
    });
    assert_eq!(html.matches("<img class=\"chart\"").count(), 50);
    assert_eq!(html.matches("loading=\"lazy\"").count(), 50);
    assert!(html.contains("class=\"s-down\"") && html.contains("class=\"s-degraded\""));
    assert!(html.len() <= 300_000, "{} bytes", html.len());
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
        detail_page(&Period::from(r), &[], &st, &tz, &[])
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
    let slow = detail_page(&slow, &[], &st, &tz, &[]);
    assert!(
        slow.contains("pv-mixed") && slow.contains("tv-partial"),
        "{slow}"
    );
}

#[test]
fn a_period_caused_by_interference_says_so_on_the_card_verdict_and_list() {
    use crate::journal::record::{InterferenceSeen, InterferenceSummary};
    let now = ts("2026-12-01T10:40:13Z");
    let st = status(now, &[("lan", State::Up), ("internet", State::Down)]);
    let mut open = period(Kind::Outage, "internet", "2026-12-01T10:02:13Z", None);
    open.cause = "interference".into();
    open.interference = Some(Box::new(InterferenceSummary {
        checks: vec!["sni_blocked".into()],
        targets: vec!["internet-t<1>".into()],
        names: vec!["blocked.example".into()],
        failures: 9,
        of_failures: 10,
    }));
    let plain = period(
        Kind::Outage,
        "lan",
        "2026-12-01T08:00:00Z",
        Some("2026-12-01T08:01:00Z"),
    );
    let line = |s: &str, check: &str, count| InterferenceSeen {
        target: "internet-t<1>".into(),
        group: "internet".into(),
        check: check.into(),
        at: ts(s),
        name: "blocked.example".into(),
        detail: "reset after the ClientHello <b>".into(),
        raw: vec!["raw".into()],
        count,
    };
    let lines = [
        line("2026-12-01T10:02:13Z", "sni_blocked", 1),
        line("2026-12-01T10:30:00Z", "blockpage", 1),
        line("2026-12-01T10:32:13Z", "sni_blocked", 60),
    ];
    let periods = [open.clone(), plain];
    let html = status_page(&PageData {
        status: &st,
        periods: &periods,
        figures: &[],
        monitored: &[],
        targets: select(&st, &PageQuery::default()).unwrap(),
        range: Range::H24,
        damaged: &[],
        tz: &TimeZone::UTC,
        interference: &lines,
    });
    assert!(
        html.contains("likely cause: interference (sni_blocked: blocked.example)"),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"interference\" data-cause=\"interference\"><a href=\"/outage/internet-2026-12-01T10%3A02%3A13Z\">Outage caused by interference</a>: sni_blocked: blocked.example</p>"),
        "{html}"
    );
    // Only the group whose period it is.
    assert_eq!(html.matches("data-cause=\"interference\"").count(), 1);
    assert!(
        html.contains("<h2>Signs of interference (last 24 h)</h2>"),
        "{html}"
    );
    // Most recent first; escaped; counts added up.
    let sni = html.find("data-check=\"sni_blocked\"").unwrap();
    let bp = html.find("data-check=\"blockpage\"").unwrap();
    assert!(sni < bp, "{html}");
    assert!(
        html.contains("blocked.example · 61 probes, Dec 01 10:02 – Dec 01 10:32"),
        "{html}"
    );
    assert!(
        html.contains("reset after the ClientHello &lt;b&gt;"),
        "{html}"
    );
    assert!(
        html.contains("cause interference (sni_blocked: blocked.example)"),
        "{html}"
    );
    // For people (`LINKWATCH_SHOTS=DIR`): the page as one file to look at.
    if let Some(dir) = std::env::var_os("LINKWATCH_SHOTS") {
        let file = html.replace(
            "<link rel=\"stylesheet\" href=\"/static/page.css\">",
            &format!("<style>{STYLESHEET}</style>"),
        );
        let _ = std::fs::write(
            std::path::Path::new(&dir).join("interference-card.html"),
            file,
        );
    }
    // Without lines, no list; an ordinary outage's card says nothing of it.
    let quiet = page(
        &st,
        &[period(
            Kind::Outage,
            "internet",
            "2026-12-01T10:02:13Z",
            None,
        )],
    );
    assert!(!quiet.contains("interference"), "{quiet}");

    let tz = TimeZone::UTC;
    let detail = detail_page(&open, &[], &st, &tz, &lines[..1]);
    assert!(
        detail.contains("<dt>interference</dt><dd>checks sni_blocked; targets internet-t&lt;1&gt;; names blocked.example; 9 of 10 failed probes carried these reasons</dd>"),
        "{detail}"
    );
    assert!(
        detail.contains("<h2>Signs of interference during it</h2>"),
        "{detail}"
    );
    assert!(detail.contains("<pre class=\"raw\">raw</pre>"), "{detail}");
}
