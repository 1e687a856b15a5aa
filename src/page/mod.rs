//! The status page `/` and the outage detail view `/outage/<id>`: HTML
//! rendered by the daemon, charts as inline SVG ([`svg`]), one stylesheet of
//! our own ([`STYLESHEET`], served at `/static/page.css`) and no script, so
//! the page works with the internet down and under a CSP of `'self'` only.
//!
//! What the page shows comes in as plain data ([`PageData`]): the status read
//! model, the outage and degradation periods (one list, each with a
//! [`Kind`]), and history series. Degradations slot in by adding periods of
//! [`Kind::Degradation`]; nothing else changes.
//!
//! Contract (tests and scripts rely on it): each group's card carries
//! `data-group="NAME"` and `data-state="up|down|degraded|unknown"`; each chart
//! is an `<svg>` with a `<title>`: the group bars inline, the per-target
//! charts as SVG documents of their own ([`chart`], `/chart/NAME.svg`) that
//! the page shows as lazily loaded `<img>` with an `alt` text. The page
//! itself reads no history: it stays small (≤ 300 KB at 50 targets) and
//! takes the same time whatever the history holds.
//!
//! Which targets are charted ([`select`]): all of them up to
//! [`FULL_PAGE_TARGETS`]; above that the [`WORST`] worst and links to the
//! rest, by group (`/?group=NAME`) or all (`/?page=N`), [`LIST_PAGE`] charts
//! a page.

pub mod chart;
mod loaded_chart;
mod svg;

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::history::{FileDamage, Series};
use crate::interference::show as signs;
use crate::journal::EndReason;
use crate::journal::InterferenceSeen;
use crate::journal::OutageRecord;
use crate::journal::record::InterferenceSummary;
use crate::journal::{Elsewhere, loss_text, target_word};
use crate::journal::{SlowPeriodRecord, describe_figures};
use crate::outage::detector::State;
use crate::outage::figures::{Figures, GroupFigures, Span};
use crate::status::{Status, TargetStatus};
use crate::text::DurationStyle::Sentence;
use crate::text::{duration, esc};
use svg::{Seg, Segment};

/// The page's stylesheet.
pub const STYLESHEET: &str = include_str!("page.css");

/// The Content-Security-Policy of every HTML response: nothing but the
/// daemon itself, no scripts at all, no inline styles.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Outage or degradation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Outage,
    Degradation,
}

impl Kind {
    /// The word in class names, URLs and `data-kind` (contract: the API's).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Outage => "outage",
            Kind::Degradation => "degradation",
        }
    }

    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Outage => "outage",
            Kind::Degradation => "slow period",
        }
    }
}

/// An outage or a degradation period, as the page shows it.
#[derive(Debug, Clone)]
pub struct Period {
    pub kind: Kind,
    pub id: String,
    pub group: String,
    pub cause: String,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub duration_seconds: f64,
    pub targets: Vec<String>,
    pub gaps: Vec<(Timestamp, Timestamp)>,
    pub end_observed: Option<bool>,
    /// Which clock the duration comes from (`monotonic` or `wall`).
    pub duration_clock: String,
    /// Degradations: the thresholds crossed (`loss`, `rtt_p50`, …).
    pub triggers: Vec<String>,
    /// Why it ended when it did not recover (a reload removed or redefined
    /// its group), in words.
    pub end_reason: Option<&'static str>,
    /// Degradations: how bad, in words — the window's figures at the start,
    /// and the period's median and worst once it ended (empty otherwise).
    pub figures: Vec<(&'static str, String)>,
    /// What peers saw of it (empty without corroboration).
    pub elsewhere: Elsewhere,
    /// Why its cause is `interference` (checks, targets, names).
    pub interference: Option<Box<InterferenceSummary>>,
}

impl From<&OutageRecord> for Period {
    fn from(r: &OutageRecord) -> Self {
        Self {
            kind: Kind::Outage,
            id: r.id.clone(),
            group: r.group.clone(),
            cause: r.cause.clone(),
            start: r.start,
            end: r.end,
            duration_seconds: r.duration_seconds,
            targets: r.targets.clone(),
            gaps: r.gaps.iter().map(|g| (g.from, g.to)).collect(),
            end_observed: r.end_observed,
            duration_clock: serde_json::to_value(r.duration_clock)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            triggers: Vec::new(),
            end_reason: r.end_reason.map(EndReason::describe),
            figures: Vec::new(),
            elsewhere: r.elsewhere.clone(),
            interference: r.interference.clone(),
        }
    }
}

impl From<&SlowPeriodRecord> for Period {
    fn from(r: &SlowPeriodRecord) -> Self {
        Self {
            kind: Kind::Degradation,
            id: r.id.clone(),
            group: r.group.clone(),
            cause: r.cause.clone(),
            start: r.start,
            end: r.end,
            duration_seconds: r.duration_seconds,
            targets: Vec::new(),
            gaps: r.gaps.iter().map(|g| (g.from, g.to)).collect(),
            end_observed: r.end_observed,
            duration_clock: serde_json::to_value(r.duration_clock)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            triggers: r.triggers.iter().map(|t| t.as_str().to_string()).collect(),
            end_reason: r.end_reason.map(EndReason::describe),
            figures: {
                let mut f = vec![("at start", describe_figures(&r.figures))];
                if let Some(p) = r.period.as_ref().filter(|p| p.snapshots > 0) {
                    f.push(("median over the period", describe_figures(&p.median)));
                    f.push(("worst", describe_figures(&p.worst)));
                }
                f
            },
            elsewhere: r.elsewhere.clone(),
            interference: r.interference.clone(),
        }
    }
}

impl Period {
    /// The cause as the page says it: with the checks and names behind a
    /// cause `interference`.
    pub fn cause_text(&self) -> String {
        signs::cause_cell(&self.cause, self.interference.as_deref())
    }

    fn overlap(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> f64 {
        let end = self.end.unwrap_or(now);
        let a = self.start.max(from);
        let b = end.min(to);
        if b > a {
            b.duration_since(a).as_secs_f64()
        } else {
            0.0
        }
    }
}

/// Chart periods the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    H1,
    H3,
    H24,
    D7,
    D30,
}

impl Range {
    pub const ALL: [Range; 5] = [Range::H1, Range::H3, Range::H24, Range::D7, Range::D30];

    /// The default range for data going back to `first` (the first run's
    /// start): the shortest range holding all of it, at most 24 h, so that
    /// a new install is not a sliver at the right edge.
    pub fn fitted(first: Option<Timestamp>, now: Timestamp) -> Range {
        let age = first.map_or(0, |f| now.as_second() - f.as_second());
        [Range::H1, Range::H3]
            .into_iter()
            .find(|r| age <= r.seconds())
            .unwrap_or(Range::H24)
    }

    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.label() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::H1 => "1h",
            Range::H3 => "3h",
            Range::H24 => "24h",
            Range::D7 => "7d",
            Range::D30 => "30d",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Range::H1 => 3600,
            Range::H3 => 3 * 3600,
            Range::H24 => 86_400,
            Range::D7 => 7 * 86_400,
            Range::D30 => 30 * 86_400,
        }
    }

    /// Seconds per chart point (60–360 points per chart). The history keeps
    /// minutes and hourly summaries: 7 and 30 days step by whole hours, so
    /// that they read hours, not minutes.
    pub fn step(self) -> i64 {
        match self {
            Range::H1 => 60,
            Range::H3 => 60,
            Range::H24 => 300,
            Range::D7 => 3600,
            Range::D30 => 7200,
        }
    }
}

/// Everything the status page shows.
pub struct PageData<'a> {
    pub status: &'a Status,
    /// Outages and degradations of the last 30 days (and open ones), any order.
    pub periods: &'a [Period],
    /// Per group, in the order of `status.groups`: its figures for the
    /// [`windows`] (today, 7 days, 30 days), from the shared
    /// [`crate::outage::figures`] (the report and the API compute the same).
    pub figures: &'a [[GroupFigures; 3]],
    /// When a daemon was monitoring over the last 30 days (the journal's runs
    /// less stalls): the bars' grey.
    pub monitored: &'a [Span],
    /// The targets charted (as `<img>` of [`chart`]) and how they were chosen.
    pub targets: Selection<'a>,
    pub range: Range,
    /// History files of the charts' period that could not be read in full.
    pub damaged: &'a [FileDamage],
    pub tz: &'a TimeZone,
    /// The journal's `interference` lines of the last 24 hours, oldest first.
    pub interference: &'a [InterferenceSeen],
}

/// Up to this many targets, `/` charts every one; above, the [`WORST`].
pub const FULL_PAGE_TARGETS: usize = 200;
/// Targets charted on `/` above [`FULL_PAGE_TARGETS`].
pub const WORST: usize = 20;
/// Charts per page of the lists (`/?group=NAME`, `/?page=N`).
pub const LIST_PAGE: usize = 100;

/// What `/` was asked for: its query (`range`, `group`, `page`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageQuery {
    /// `None`: the default (see [`Range::fitted`]).
    pub range: Option<Range>,
    /// Only this group's targets.
    pub group: Option<String>,
    /// A page of the list (from 1).
    pub page: Option<usize>,
}

impl PageQuery {
    /// Parses `/`'s query; a bad `range` or `page` is an error. Unknown
    /// parameters are ignored, as they were before: a page is opened from
    /// links that others decorate (`?utm_source=…`, `?fbclid=…`), and a
    /// person gains nothing from a 400 there. The API stays strict.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut q = PageQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "range" => {
                    q.range = Some(Range::parse(&v).ok_or_else(|| {
                        format!(
                            "bad `range` `{v}`: one of {}",
                            Range::ALL.map(Range::label).join(", ")
                        )
                    })?)
                }
                "group" => q.group = Some(v.into_owned()),
                "page" => {
                    q.page = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|p| *p >= 1)
                            .ok_or_else(|| format!("bad `page` `{v}`: a number from 1"))?,
                    )
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Which targets the page charts, and why.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    pub view: View,
    pub shown: Vec<&'a TargetStatus>,
    /// Targets in the view (all pages).
    pub total: usize,
    /// This page (from 1) and how many there are.
    pub page: usize,
    pub pages: usize,
}

/// How the charted targets were chosen.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum View {
    /// Every target (at most [`FULL_PAGE_TARGETS`]).
    #[default]
    All,
    /// The [`WORST`] worst of more than [`FULL_PAGE_TARGETS`].
    Worst,
    /// One group's targets, paged.
    Group(String),
    /// Every target, paged.
    Paged,
}

/// How bad a target looks now, worst first: down, then not yet decided,
/// then by the share of failed probes since the daemon started, then a
/// failed last probe; ties in configuration order.
fn badness(t: &TargetStatus) -> (u8, std::cmp::Reverse<u64>, u8) {
    let state = match t.state {
        State::Down => 0,
        State::Unknown => 1,
        State::Up => 2,
    };
    let failed = t.probes_total.saturating_sub(t.successes_total);
    // Parts per million failed: comparable across targets of any rate.
    let ppm = failed.saturating_mul(1_000_000) / t.probes_total.max(1);
    let last_failed = t.last.as_ref().is_some_and(|l| l.result != "success");
    (state, std::cmp::Reverse(ppm), u8::from(!last_failed))
}

/// The targets `q` asks the page to chart; `None` for an unknown group.
pub fn select<'a>(status: &'a Status, q: &PageQuery) -> Option<Selection<'a>> {
    let paged = |view: View, all: Vec<&'a TargetStatus>, page: usize| {
        let pages = all.len().div_ceil(LIST_PAGE).max(1);
        let page = page.min(pages);
        Selection {
            view,
            total: all.len(),
            shown: all
                .into_iter()
                .skip((page - 1) * LIST_PAGE)
                .take(LIST_PAGE)
                .collect(),
            page,
            pages,
        }
    };
    let all: Vec<&TargetStatus> = status.targets.iter().collect();
    Some(match (&q.group, q.page) {
        (Some(g), page) => {
            if !status.groups.iter().any(|x| &x.name == g) {
                return None;
            }
            let of: Vec<&TargetStatus> = all.into_iter().filter(|t| &t.group == g).collect();
            paged(View::Group(g.clone()), of, page.unwrap_or(1))
        }
        (None, Some(page)) => paged(View::Paged, all, page),
        (None, None) if all.len() <= FULL_PAGE_TARGETS => Selection {
            view: View::All,
            total: all.len(),
            shown: all,
            page: 1,
            pages: 1,
        },
        (None, None) => {
            let total = all.len();
            let mut worst = all;
            // Stable: ties keep configuration order.
            worst.sort_by_key(|t| badness(t));
            worst.truncate(WORST);
            Selection {
                view: View::Worst,
                shown: worst,
                total,
                page: 1,
                pages: 1,
            }
        }
    })
}

/// `12.3 ms`.
pub fn fmt_ms(secs: f64) -> String {
    let ms = secs * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// `2026-12-01 10:02:13` in `tz`.
pub fn fmt_time(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `Dec 01 10:02` in `tz`.
pub fn fmt_time_short(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%b %d %H:%M").to_string()
}

fn clock(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string()
}

/// The time zone's name for labels.
pub fn tz_name(tz: &TimeZone) -> String {
    tz.iana_name().unwrap_or("local time").to_string()
}

/// A group's state on the page: the detector's, or `degraded` while a
/// degradation of the group is open.
fn card_state(state: State, group: &str, periods: &[Period]) -> &'static str {
    match state {
        State::Down => "down",
        State::Unknown => "unknown",
        State::Up => {
            if periods
                .iter()
                .any(|p| p.kind == Kind::Degradation && p.end.is_none() && p.group == group)
            {
                "degraded"
            } else {
                "up"
            }
        }
    }
}

fn icon(state: &str) -> &'static str {
    match state {
        "up" => "✔",
        "down" => "✖",
        "degraded" => "▲",
        _ => "?",
    }
}

/// The sentence at the top, and the page's state.
pub fn verdict(d: &PageData) -> (String, &'static str) {
    if let Some(s) = down_sentence(d) {
        return (s, "down");
    }
    if let Some(s) = slow_sentence(d) {
        return (s, "degraded");
    }
    if d.status.groups.is_empty() || d.status.groups.iter().all(|g| g.state == State::Unknown) {
        return (
            "Waiting for the first results (no group decided yet)".into(),
            "unknown",
        );
    }
    (good_sentence(d), "up")
}

/// A group's place in configuration order (upstream first).
fn rank(d: &PageData, group: &str) -> Option<usize> {
    d.status.groups.iter().position(|x| x.name == group)
}

/// The verdict when a group is down.
fn down_sentence(d: &PageData) -> Option<String> {
    let now = d.status.now;
    let open: Vec<&Period> = d
        .periods
        .iter()
        .filter(|p| p.kind == Kind::Outage && p.end.is_none())
        .collect();
    // The most downstream open outage (last group in configuration order)
    // names what the user feels; its cause names whom to call.
    if let Some(o) = open.iter().max_by_key(|p| rank(d, &p.group)) {
        // The other groups down, upstream first.
        let mut others: Vec<&Period> = open.iter().copied().filter(|p| p.id != o.id).collect();
        others.sort_by_key(|p| rank(d, &p.group));
        let others: Vec<&str> = others.iter().map(|p| p.group.as_str()).collect();
        let mut s = format!(
            "{} is down since {} ({}) — likely cause: {}",
            title_case(&o.group),
            clock(o.start, d.tz),
            duration(now.duration_since(o.start).as_secs_f64(), Sentence),
            o.cause_text()
        );
        if !others.is_empty() {
            s.push_str(&format!(". Also down: {}", others.join(", ")));
        }
        return Some(s);
    }
    if let Some(g) = d.status.groups.iter().find(|g| g.state == State::Down) {
        return Some(format!(
            "{} is down — likely cause: {}",
            title_case(&g.name),
            g.name
        ));
    }
    None
}

/// The verdict when a group is slow (and none is down).
fn slow_sentence(d: &PageData) -> Option<String> {
    let now = d.status.now;
    let mut slow: Vec<&Period> = d
        .periods
        .iter()
        .filter(|p| p.kind == Kind::Degradation && p.end.is_none())
        .collect();
    // Every slow group, upstream first (configuration order).
    slow.sort_by_key(|p| (rank(d, &p.group).unwrap_or(usize::MAX), p.start));
    slow.dedup_by(|a, b| a.group == b.group);
    if let Some(first) = slow.iter().min_by_key(|p| p.start) {
        let names: Vec<String> = slow.iter().map(|p| p.group.clone()).collect();
        let triggers: Vec<String> = slow
            .iter()
            .filter(|p| !p.triggers.is_empty())
            .map(|p| {
                if slow.len() == 1 {
                    p.triggers.join(", ")
                } else {
                    format!("{} {}", p.group, p.triggers.join(", "))
                }
            })
            .collect();
        let s = format!(
            "{} {} slow since {} ({}){}",
            title_case(&join_and(&names)),
            if slow.len() == 1 { "is" } else { "are" },
            clock(first.start, d.tz),
            duration(now.duration_since(first.start).as_secs_f64(), Sentence),
            if triggers.is_empty() {
                String::new()
            } else {
                format!(": {}", triggers.join("; "))
            }
        );
        return Some(s);
    }
    None
}

/// The verdict when every group decided is up.
fn good_sentence(d: &PageData) -> String {
    let now = d.status.now;
    let unknown: Vec<&str> = d
        .status
        .groups
        .iter()
        .filter(|g| g.state == State::Unknown)
        .map(|g| g.name.as_str())
        .collect();
    // Good means neither down nor slow: from the last end of either.
    let last = d
        .periods
        .iter()
        .filter_map(|p| p.end.map(|e| (e, p.kind)))
        .max_by_key(|(e, _)| *e);
    let since = last
        .map_or(d.status.started, |(e, _)| e)
        .max(d.status.started);
    let what = match last {
        Some((e, Kind::Outage)) if e >= d.status.started => "since the last outage",
        Some((e, Kind::Degradation)) if e >= d.status.started => "since the last slow period",
        _ => "since linkwatch started",
    };
    let mut s = format!(
        "All good for {} ({what})",
        duration(now.duration_since(since).as_secs_f64(), Sentence)
    );
    if !unknown.is_empty() {
        s.push_str(&format!("; not decided yet: {}", unknown.join(", ")));
    }
    s
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Target names a group's card lists (then a link to the group's list).
const CARD_NAMES: usize = 12;

/// Percent-encodes a query parameter's value.
fn query_value(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The card's availability windows as of `now` in `tz`: today (since local
/// midnight), the last 7 days, the last 30 days.
pub fn windows(now: Timestamp, tz: &TimeZone) -> [(&'static str, Timestamp); 3] {
    let today = now
        .to_zoned(tz.clone())
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let ago = |days: i64| Timestamp::from_second(now.as_second() - days * 86_400).unwrap_or(now);
    [("today", today), ("7 days", ago(7)), ("30 days", ago(30))]
}

/// Every group's figures over the [`windows`], in the order of `status.groups`.
pub fn group_figures(figs: &Figures, status: &Status, tz: &TimeZone) -> Vec<[GroupFigures; 3]> {
    let now = figs.now();
    let w = windows(now, tz);
    status
        .groups
        .iter()
        .map(|g| w.map(|(_, from)| figs.group(&g.name, from, now)))
        .collect()
}

/// Seconds of `[from, to)` inside `monitored`.
fn monitored_in(monitored: &[Span], from: Timestamp, to: Timestamp) -> f64 {
    if to <= from {
        return 0.0;
    }
    crate::outage::figures::total(&crate::outage::figures::intersect(&[(from, to)], monitored))
}

/// The segments of a group's bar over the last `span` seconds in `n` parts.
fn segments(d: &PageData, group: &str, span: i64, n: i64) -> Vec<Segment> {
    let now = d.status.now.as_second();
    let seg_len = span / n;
    let end = (now / seg_len + 1) * seg_len;
    (0..n)
        .map(|i| {
            let a = end - (n - i) * seg_len;
            let b = a + seg_len;
            let from = Timestamp::from_second(a).unwrap_or(d.status.now);
            let to = Timestamp::from_second(b).unwrap_or(d.status.now);
            let hits: Vec<&Period> = d
                .periods
                .iter()
                .filter(|p| p.group == group && p.overlap(from, to, d.status.now) > 0.0)
                .collect();
            let monitored = monitored_in(d.monitored, from, to) > 0.0;
            let (seg, note) = if let Some(p) = hits.iter().find(|p| p.kind == Kind::Outage) {
                (
                    Seg::Down,
                    format!(
                        "outage from {}, {}, cause {}",
                        fmt_time_short(p.start, d.tz),
                        duration(p.duration_seconds, Sentence),
                        p.cause
                    ),
                )
            } else if let Some(p) = hits.first() {
                (
                    Seg::Degraded,
                    format!(
                        "slow from {}, cause {}",
                        fmt_time_short(p.start, d.tz),
                        p.cause
                    ),
                )
            } else if !monitored || a > now {
                (Seg::Unmonitored, String::new())
            } else {
                (Seg::Up, String::new())
            };
            Segment {
                from,
                to,
                seg,
                note,
            }
        })
        .collect()
}

/// The document around `body`.
fn document(title: &str, body: &str, refresh: bool) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">{}\
<title>{}</title><link rel=\"stylesheet\" href=\"/static/page.css\"></head>\n<body>{body}</body></html>\n",
        if refresh {
            "<meta http-equiv=\"refresh\" content=\"60\">"
        } else {
            ""
        },
        esc(title)
    )
}

/// The status page.
pub fn status_page(d: &PageData) -> String {
    let mut b = String::new();
    let (verdict, vstate) = verdict(d);
    let _ = write!(
        b,
        "<header><h1>linkwatch</h1><p class=\"meta\">{} · times in {} · version {} · \
<a href=\"/api/v1/status\">status JSON</a> · <a href=\"/api/v1/outages\">outages JSON</a> · <a href=\"/metrics\">metrics</a></p></header>\
<main><section id=\"verdict\" class=\"verdict v-{vstate}\" data-state=\"{vstate}\"><span class=\"icon\" aria-hidden=\"true\">{}</span> <strong>{}</strong></section>",
        esc(&fmt_time(d.status.now, d.tz)),
        esc(&tz_name(d.tz)),
        esc(d.status.version),
        icon(vstate),
        esc(&verdict)
    );
    b.push_str("<section class=\"groups\"><h2>Groups</h2>");
    let now = d.status.now;
    let labels = windows(now, d.tz).map(|(l, _)| l);
    let mut by_group: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for t in &d.status.targets {
        by_group.entry(&t.group).or_default().push(&t.name);
    }
    for (gi, g) in d.status.groups.iter().enumerate() {
        let state = card_state(g.state, &g.name, d.periods);
        let avail: String = labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let f = d.figures.get(gi).map(|w| &w[i]);
                let text = f.map_or("not monitored".into(), GroupFigures::availability_text);
                let na = f.is_none_or(|f| f.availability_percent.is_none());
                format!(
                    "<div><dt>{label}</dt><dd{}>{}</dd></div>",
                    if na { " class=\"na\"" } else { "" },
                    esc(&text)
                )
            })
            .collect();
        let targets = by_group.get(g.name.as_str()).map_or(&[][..], Vec::as_slice);
        let _ = write!(
            b,
            "<article class=\"card c-{state}\" data-group=\"{}\" data-state=\"{state}\">\
<h3>{}<span class=\"state\"><span aria-hidden=\"true\">{}</span> {state}</span></h3><p class=\"since\">{}{}</p>\
<dl class=\"avail\">{avail}</dl>",
            esc(&g.name),
            esc(&g.name),
            icon(state),
            match g.since {
                Some(s) => format!(
                    "since {} ({})",
                    esc(&fmt_time(s, d.tz)),
                    duration(now.duration_since(s).as_secs_f64(), Sentence)
                ),
                None => "no decision yet".into(),
            },
            match &g.needs {
                Some(n) => format!(" · needs {}", esc(n)),
                None => String::new(),
            },
        );
        for (label, span, n) in [
            ("24 h", 86_400, 96),
            ("7 days", 7 * 86_400, 168),
            ("30 days", 30 * 86_400, 120),
        ] {
            let segs = segments(d, &g.name, span, n);
            let _ = write!(
                b,
                "<div class=\"barrow\"><span class=\"barlabel\">{label}</span>{}</div>",
                svg::uptime_bar(&format!("{} last {label}", g.name), &segs, d.tz)
            );
        }
        // An open period of the group caused by interference says so.
        if let Some(p) = d
            .periods
            .iter()
            .find(|p| p.group == g.name && p.end.is_none() && p.cause == crate::interference::CAUSE)
        {
            let _ = write!(
                b,
                "<p class=\"interference\" data-cause=\"interference\"><a href=\"/{}/{}\">{} caused by interference</a>{}</p>",
                p.kind.word(),
                esc(&url_segment(&p.id)),
                title_case(p.kind.label()),
                p.interference
                    .as_deref()
                    .map(|s| format!(": {}", esc(&signs::checks_and_names(s))))
                    .unwrap_or_default()
            );
        }
        // A group of thousands lists a few names and links to all of them.
        let listed = targets.len().min(CARD_NAMES);
        let _ = write!(
            b,
            "<p class=\"targets\">{} target{}: {}{}</p></article>",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            esc(&targets[..listed].join(", ")),
            if targets.len() > listed {
                format!(
                    " and <a href=\"/?group={}#targets\">{} more</a>",
                    query_value(&g.name),
                    targets.len() - listed
                )
            } else {
                String::new()
            }
        );
    }
    b.push_str(
        "<p class=\"legend\"><span class=\"k s-up\">█</span> up <span class=\"k s-down\">█</span> outage \
<span class=\"k s-degraded\">▆</span> degraded <span class=\"k s-gap\">▁</span> not monitored</p></section>",
    );
    b.push_str(&history_damage_note(d));
    interference_section(&mut b, d);
    periods_section(&mut b, d);
    targets_section(&mut b, d);
    b.push_str("</main>");
    document("linkwatch status", &b, true)
}

fn periods_section(b: &mut String, d: &PageData) {
    let mut list: Vec<&Period> = d.periods.iter().collect();
    list.sort_by_key(|p| std::cmp::Reverse(p.start));
    b.push_str("<section id=\"periods\"><h2>Last outages and slow periods</h2>");
    if list.is_empty() {
        b.push_str("<p>None recorded in the last 30 days.</p></section>");
        return;
    }
    b.push_str("<ul class=\"periods\">");
    for p in list.iter().take(30) {
        let mut tail = if p.gaps.is_empty() {
            String::new()
        } else {
            format!(" · {} unobserved gap(s)", p.gaps.len())
        };
        // What peers saw, a word each (only when corroborated).
        if !p.elsewhere.is_empty() {
            let words: Vec<String> = p
                .elsewhere
                .peer_verdicts
                .iter()
                .map(|v| format!("{}: {}", v.peer, crate::journal::verdict_word(v.verdict)))
                .collect();
            tail.push_str(&format!(
                " <span class=\"elsewhere\">· seen from {}</span>",
                esc(&words.join(", "))
            ));
        }
        let _ = write!(
            b,
            "<li class=\"p-{}\" data-period=\"{}\"><a href=\"/{}/{}\"><span class=\"kind\">{} {}</span> \
<strong>{}</strong> {} – {} · {} · cause {}{}</a></li>",
            p.kind.word(),
            esc(&p.id),
            p.kind.word(),
            esc(&url_segment(&p.id)),
            if p.kind == Kind::Outage { "✖" } else { "▲" },
            p.kind.label(),
            esc(&p.group),
            esc(&fmt_time(p.start, d.tz)),
            match p.end {
                Some(e) => esc(&fmt_time(e, d.tz)),
                None => "<em>ongoing</em>".into(),
            },
            esc(&duration(p.duration_seconds, Sentence)),
            esc(&p.cause_text()),
            tail,
        );
    }
    b.push_str("</ul></section>");
}

/// Percent-encodes an id for a path segment.
fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn targets_section(b: &mut String, d: &PageData) {
    let sel = &d.targets;
    // The query every link of the section keeps (the range apart).
    let keep = |page: Option<usize>| -> String {
        let mut k = String::new();
        if let View::Group(g) = &sel.view {
            k.push_str(&format!("&group={}", query_value(g)));
        }
        if let Some(p) = page {
            k.push_str(&format!("&page={p}"));
        }
        k
    };
    let this_page = (sel.view != View::All && sel.view != View::Worst).then_some(sel.page);
    let heading = match &sel.view {
        View::All => "Latency and loss per target".to_string(),
        View::Worst => format!(
            "Latency and loss: the {} worst of {} targets",
            sel.shown.len(),
            sel.total
        ),
        View::Group(g) => format!(
            "Latency and loss of {}'s {} target{}",
            g,
            sel.total,
            if sel.total == 1 { "" } else { "s" }
        ),
        View::Paged => format!("Latency and loss of all {} targets", sel.total),
    };
    let _ = write!(
        b,
        "<section id=\"targets\" data-view=\"{}\"><h2>{}</h2><nav class=\"ranges\">",
        match sel.view {
            View::All => "all",
            View::Worst => "worst",
            View::Group(_) => "group",
            View::Paged => "paged",
        },
        esc(&heading)
    );
    for r in Range::ALL {
        let _ = write!(
            b,
            "<a href=\"/?range={0}{2}#targets\"{1}>{0}</a> ",
            r.label(),
            if r == d.range {
                " aria-current=\"page\""
            } else {
                ""
            },
            esc(&keep(this_page))
        );
    }
    b.push_str("</nav>");
    if sel.view == View::Worst {
        let _ = write!(
            b,
            "<p class=\"more\">Down first, then by the share of failed probes since linkwatch started. \
All {} targets: <a href=\"/?range={}&amp;page=1#targets\">{} at a time</a>, or by group:</p><ul class=\"grouplinks\">",
            sel.total,
            d.range.label(),
            LIST_PAGE
        );
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for g in &d.status.groups {
            counts.push((&g.name, 0));
        }
        for t in &d.status.targets {
            if let Some(c) = counts.iter_mut().find(|(g, _)| *g == t.group) {
                c.1 += 1;
            }
        }
        for (g, n) in counts {
            let _ = write!(
                b,
                "<li><a href=\"/?range={}&amp;group={}#targets\">{}</a> ({n})</li>",
                d.range.label(),
                esc(&query_value(g)),
                esc(g)
            );
        }
        b.push_str("</ul>");
    }
    if sel.view != View::All && sel.view != View::Worst {
        pager(b, d, &keep(None));
    }
    b.push_str(svg::LOSS_LEGEND);
    for t in &sel.shown {
        let _ = write!(
            b,
            "<figure class=\"target\" data-target=\"{name}\"><figcaption><strong>{name}</strong> {kind} <span class=\"probes\">{probes}</span> \
<span class=\"state st-{state}\">{icon} {state}</span></figcaption>\
<img class=\"chart\" src=\"{src}\" loading=\"lazy\" width=\"{w}\" height=\"{h}\" alt=\"Latency and loss of {name} over the last {range}\">",
            name = esc(&t.name),
            kind = esc(t.kind),
            probes = esc(&t.probes),
            state = t.state.as_str(),
            icon = icon(t.state.as_str()),
            src = esc(&chart::url(&t.name, d.range)),
            w = chart::WIDTH,
            h = chart::HEIGHT,
            range = d.range.label(),
        );
        if let Some(l) = t.last.as_ref()
            && l.result != "success"
        {
            let _ = write!(
                b,
                "<p class=\"last\">last probe: {} — {}</p>",
                esc(l.result),
                esc(l.detail.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</figure>");
    }
    if sel.view != View::All && sel.view != View::Worst && sel.pages > 1 {
        pager(b, d, &keep(None));
    }
    b.push_str("</section>");
}

/// Links to the other pages of a list view.
fn pager(b: &mut String, d: &PageData, keep: &str) {
    let sel = &d.targets;
    if sel.pages <= 1 {
        let _ = write!(
            b,
            "<p class=\"pager\"><a href=\"/#targets\">back to the overview</a></p>"
        );
        return;
    }
    let link = |p: usize, text: &str| {
        format!(
            "<a href=\"/?range={}{}&amp;page={p}#targets\">{text}</a>",
            d.range.label(),
            esc(keep)
        )
    };
    let _ = write!(
        b,
        "<p class=\"pager\">page {} of {} ({}–{} of {}) {} {} · <a href=\"/#targets\">overview</a></p>",
        sel.page,
        sel.pages,
        (sel.page - 1) * LIST_PAGE + 1,
        ((sel.page - 1) * LIST_PAGE + sel.shown.len()),
        sel.total,
        if sel.page > 1 {
            link(sel.page - 1, "← previous")
        } else {
            String::new()
        },
        if sel.page < sel.pages {
            link(sel.page + 1, "next →")
        } else {
            String::new()
        },
    );
}

/// The detail view of one outage or degradation, with charts of its
/// targets from an hour before to an hour after.
/// `signs`: the journal's `interference` lines of its group during it.
pub fn detail_page(
    p: &Period,
    charts: &[Series],
    status: &Status,
    tz: &TimeZone,
    signs: &[InterferenceSeen],
) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<header><h1><a href=\"/\">linkwatch</a> · {} {}</h1><p class=\"meta\">times in {}</p></header><main>\
<section class=\"detail p-{}\" data-period=\"{}\" data-kind=\"{}\"><dl class=\"facts\">",
        p.kind.label(),
        esc(&p.id),
        esc(&tz_name(tz)),
        p.kind.word(),
        esc(&p.id),
        p.kind.word()
    );
    let mut fact = |k: &str, v: String| {
        let _ = write!(b, "<div><dt>{}</dt><dd>{v}</dd></div>", esc(k));
    };
    fact("group", esc(&p.group));
    fact(
        "likely cause",
        match &p.elsewhere.local_cause {
            Some(local) => format!(
                "{} — seen down from elsewhere too; this site judged: {}",
                esc(&p.cause),
                esc(local)
            ),
            None => esc(&p.cause_text()),
        },
    );
    if let Some(s) = &p.interference {
        fact("interference", esc(&signs::summary_sentence(s)));
    }
    fact("start", esc(&fmt_time(p.start, tz)));
    fact(
        "end",
        match (p.end, p.end_reason) {
            (Some(e), Some(why)) => format!("{} — {}", esc(&fmt_time(e, tz)), esc(why)),
            (Some(e), None) => esc(&fmt_time(e, tz)),
            (None, _) => "ongoing".into(),
        },
    );
    fact(
        "duration",
        format!(
            "{} ({:.3} s, {} clock)",
            esc(&duration(p.duration_seconds, Sentence)),
            p.duration_seconds,
            esc(&p.duration_clock)
        ),
    );
    fact(
        "end observed",
        match p.end_observed {
            Some(true) => "yes".into(),
            Some(false) => "no — the end lies in an unobserved gap".into(),
            None => "not yet".into(),
        },
    );
    if p.kind == Kind::Outage {
        fact("targets down", esc(&p.targets.join(", ")));
    }
    fact(
        "unobserved gaps",
        if p.gaps.is_empty() {
            "none".into()
        } else {
            p.gaps
                .iter()
                .map(|(a, b)| {
                    format!(
                        "{} – {} ({})",
                        esc(&fmt_time(*a, tz)),
                        esc(&fmt_time(*b, tz)),
                        esc(&duration(b.duration_since(*a).as_secs_f64(), Sentence))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        },
    );
    if !p.triggers.is_empty() {
        fact("triggers", esc(&p.triggers.join(", ")));
    }
    for (k, v) in &p.figures {
        fact(k, esc(v));
    }
    b.push_str("</dl></section>");
    detail_signs_section(&mut b, signs, tz);
    elsewhere_section(&mut b, &p.elsewhere);
    b.push_str("<section id=\"evidence\"><h2>Evidence: the group's targets around it</h2>");
    b.push_str(svg::LOSS_LEGEND);
    for s in charts {
        let t = status.targets.iter().find(|t| t.name == s.target);
        let _ = write!(
            b,
            "<figure class=\"target\" data-target=\"{}\"><figcaption><strong>{}</strong> {}</figcaption>{}</figure>",
            esc(&s.target),
            esc(&s.target),
            t.map(|t| esc(&t.probes)).unwrap_or_default(),
            svg::latency_chart(
                s,
                &[p],
                tz,
                &format!("Latency of {} around {} {}", s.target, p.kind.label(), p.id)
            )
        );
    }
    b.push_str("</section></main>");
    document(&format!("linkwatch {} {}", p.kind.label(), p.id), &b, false)
}

/// "Seen from elsewhere" on a detail view: each peer's verdict in words
/// and what it saw of each target (nothing without corroboration).
fn elsewhere_section(b: &mut String, e: &Elsewhere) {
    if e.is_empty() {
        return;
    }
    b.push_str("<section id=\"elsewhere\"><h2>Seen from elsewhere</h2>");
    for p in &e.peer_verdicts {
        let _ = write!(
            b,
            "<div class=\"peer\" data-peer=\"{}\"><p class=\"pv pv-{}\"><strong>{}</strong>: {}</p><table class=\"corr\"><thead><tr><th>target</th><th>probes</th><th>failed</th><th>loss</th><th>there</th></tr></thead><tbody>",
            esc(&p.peer),
            p.verdict.as_str(),
            esc(&p.peer),
            esc(&p.summary)
        );
        for t in e.targets_of(&p.peer) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"tv-{}\">{}</td></tr>",
                esc(&match &t.their_target {
                    Some(theirs) if *theirs != t.target => format!("{} (their {theirs})", t.target),
                    _ => t.target.clone(),
                }),
                t.probes,
                t.failures,
                esc(&loss_text(t)),
                target_word(t.verdict).replace(' ', "-"),
                target_word(t.verdict)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    b.push_str("</section>");
}

#[cfg(test)]
mod tests;

/// Signs the status page lists at most (the most recent pairs).
const SIGNS_LISTED: usize = 10;

/// "Signs of interference (last 24 h)": each (target, check) the journal
/// recorded, the most recent first (nothing when there is none).
fn interference_section(b: &mut String, d: &PageData) {
    let mut list = signs::group(d.interference);
    if list.is_empty() {
        return;
    }
    list.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
    let _ = write!(
        b,
        "<section id=\"interference\"><h2>Signs of interference (last 24 h)</h2><ul class=\"signs\">"
    );
    for s in list.iter().take(SIGNS_LISTED) {
        let latest = Some(&s.latest);
        let _ = write!(
            b,
            "<li data-target=\"{t}\" data-check=\"{c}\"><strong>{t}</strong> <span class=\"check\">{c}</span> {n} · {p} probe{ps}, {f} – {l}<br><span class=\"detail\">{m}{det}</span></li>",
            t = esc(&s.target),
            c = esc(&s.check),
            n = esc(&s.names.join(", ")),
            p = s.probes,
            ps = if s.probes == 1 { "" } else { "s" },
            f = esc(&fmt_time_short(s.first_seen, d.tz)),
            l = esc(&fmt_time_short(s.last_seen, d.tz)),
            m = esc(s.meaning),
            det = latest
                .map(|e| format!(" — {}", esc(&e.detail)))
                .unwrap_or_default(),
        );
    }
    let _ = write!(
        b,
        "</ul><p class=\"more\">{}Evidence, not proof; linkwatch only measures. The raw answers: <a href=\"/api/v1/interference\">/api/v1/interference</a> and <code>linkwatch report</code>.</p></section>",
        if list.len() > SIGNS_LISTED {
            format!("{} more not listed. ", list.len() - SIGNS_LISTED)
        } else {
            String::new()
        }
    );
}

/// A detail view's "Signs of interference": the lines of the period, with
/// how each was checked and the raw answers (nothing when there is none).
fn detail_signs_section(b: &mut String, lines: &[InterferenceSeen], tz: &TimeZone) {
    if lines.is_empty() {
        return;
    }
    b.push_str("<section id=\"interference\"><h2>Signs of interference during it</h2>");
    for s in signs::group(lines) {
        let _ = write!(
            b,
            "<div class=\"sign\" data-target=\"{t}\" data-check=\"{c}\"><p><strong>{t}</strong> <span class=\"check\">{c}</span> {n}: {m} ({p} probe{ps}, {f} – {l})</p>",
            t = esc(&s.target),
            c = esc(&s.check),
            n = esc(&s.names.join(", ")),
            m = esc(s.meaning),
            p = s.probes,
            ps = if s.probes == 1 { "" } else { "s" },
            f = esc(&clock(s.first_seen, tz)),
            l = esc(&clock(s.last_seen, tz)),
        );
        for e in &s.evidence {
            let _ = write!(
                b,
                "<p class=\"detail\">{}: {}</p>",
                esc(&clock(e.at, tz)),
                esc(&e.detail)
            );
            if !e.raw.is_empty() {
                let _ = write!(b, "<pre class=\"raw\">{}</pre>", esc(&e.raw.join("\n")));
            }
        }
        b.push_str("</div>");
    }
    b.push_str("</section>");
}

/// One sentence when history files behind the page's charts could not be
/// read in full: the charts miss what was in them (the bars and the
/// availability come from the journal).
fn history_damage_note(d: &PageData) -> String {
    let mut files: Vec<&FileDamage> = d.damaged.iter().collect();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files.dedup_by(|a, b| a.file == b.file);
    if files.is_empty() {
        return String::new();
    }
    let rows: u64 = files.iter().map(|f| f.damaged_rows).sum();
    format!(
        "<p class=\"history-damaged\" data-history=\"damaged\">History is incomplete: {} history file{} could not be read in full ({rows} damaged row{} skipped), so the charts miss what was in them; see the log or <a href=\"/api/v1/history\">/api/v1/history</a> (<code>damaged_files</code>).</p>",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if rows == 1 { "" } else { "s" },
    )
}
