//! Reading history: a query (targets, period, step) and the series it gives.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use super::bucket::Minute;
use super::row::{FileDamage, Row, RowSink, Throughput, ts};

/// Most points one series may have (bounds the work and the response).
pub const MAX_POINTS: i64 = 20_000;

/// What to read.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub targets: Vec<String>,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Seconds per point, a multiple of 60.
    pub step: i64,
}

/// Why a query is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("`until` must be after `since`")]
    EmptyPeriod,
    #[error("`step` must be a whole number of minutes (60, 300, 3600, …)")]
    Step,
    #[error(
        "too many points ({0}); use a larger `step` or a shorter period (at most {MAX_POINTS})"
    )]
    TooManyPoints(i64),
}

impl HistoryQuery {
    /// A checked query; `step` in seconds.
    pub fn new(
        targets: Vec<String>,
        since: Timestamp,
        until: Timestamp,
        step: i64,
    ) -> Result<Self, QueryError> {
        if until <= since {
            return Err(QueryError::EmptyPeriod);
        }
        if step < 60 || step % 60 != 0 {
            return Err(QueryError::Step);
        }
        // Align the start to the step so that repeated queries agree.
        let since_s = since.as_second().div_euclid(step) * step;
        let since = Timestamp::from_second(since_s).unwrap_or(since);
        let q = Self {
            targets,
            since,
            until,
            step,
        };
        let n = q.points();
        if n > MAX_POINTS {
            return Err(QueryError::TooManyPoints(n));
        }
        Ok(q)
    }

    /// Points per series.
    pub fn points(&self) -> i64 {
        let span = self.until.as_second() - self.since.as_second();
        (span + self.step - 1) / self.step
    }
}

/// One point of a series: the minutes of one step added up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    pub start: Timestamp,
    pub summary: Minute,
    /// Minutes of the step with at least one probe: how much of it was
    /// monitored, whatever the probe interval was.
    pub minutes: u32,
    /// Which minutes (steps up to an hour): a minute split over two runs
    /// comes in two rows and counts once.
    seen: u64,
}

impl Point {
    /// Failed share of probes, `None` without probes.
    pub fn loss(&self) -> Option<f64> {
        (self.summary.probes > 0)
            .then(|| f64::from(self.summary.failures) / f64::from(self.summary.probes))
    }

    /// An RTT quantile in seconds.
    pub fn rtt(&self, q: f64) -> Option<f64> {
        self.summary.quantile_us(q).map(|us| us / 1e6)
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let m = &self.summary;
        let ms = |v: Option<f64>| v.map(|v| (v * 1e6).round() / 1e6);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("start", &format!("{:.3}", self.start))?;
        map.serialize_entry("probes", &m.probes)?;
        map.serialize_entry("monitored_minutes", &self.minutes)?;
        map.serialize_entry("failures", &m.failures)?;
        map.serialize_entry("loss_ratio", &self.loss().map(|l| (l * 1e4).round() / 1e4))?;
        let ok = m.successes() > 0;
        map.serialize_entry(
            "rtt_min_seconds",
            &ms(ok.then(|| f64::from(m.min_us) / 1e6)),
        )?;
        map.serialize_entry("rtt_p10_seconds", &ms(self.rtt(0.1)))?;
        map.serialize_entry("rtt_median_seconds", &ms(self.rtt(0.5)))?;
        map.serialize_entry("rtt_p90_seconds", &ms(self.rtt(0.9)))?;
        map.serialize_entry(
            "rtt_max_seconds",
            &ms(ok.then(|| f64::from(m.max_us) / 1e6)),
        )?;
        map.serialize_entry(
            "rtt_mean_seconds",
            &ms(ok.then(|| m.sum_us as f64 / f64::from(m.successes()) / 1e6)),
        )?;
        map.end()
    }
}

/// One target's history over the query's period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub target: String,
    #[serde(serialize_with = "ts")]
    pub since: Timestamp,
    #[serde(serialize_with = "ts")]
    pub until: Timestamp,
    pub step_seconds: i64,
    /// One per step from `since`; `probes: 0` where nothing was measured.
    pub points: Vec<Point>,
    /// Every throughput test in the period, oldest first.
    pub throughput: Vec<Throughput>,
    /// The files of the period that could not be read in full: rows in
    /// their damaged parts are missing from `points` and `throughput`. The
    /// same list on every series of an answer (a damaged line does not
    /// always say whose row it was); empty when all was read.
    pub damaged_files: Vec<FileDamage>,
}

/// Collects rows into series.
pub struct Accumulator {
    q: HistoryQuery,
    index: HashMap<String, usize>,
    series: Vec<Series>,
}

impl Accumulator {
    pub fn new(q: &HistoryQuery) -> Self {
        let n = usize::try_from(q.points()).unwrap_or(0);
        let points: Vec<Point> = (0..n)
            .map(|i| Point {
                start: Timestamp::from_second(q.since.as_second() + i as i64 * q.step)
                    .unwrap_or(q.since),
                summary: Minute::default(),
                minutes: 0,
                seen: 0,
            })
            .collect();
        let mut index = HashMap::new();
        let mut series = Vec::new();
        for t in &q.targets {
            if index.contains_key(t) {
                continue;
            }
            index.insert(t.clone(), series.len());
            series.push(Series {
                target: t.clone(),
                since: q.since,
                until: q.until,
                step_seconds: q.step,
                points: points.clone(),
                throughput: Vec::new(),
                damaged_files: Vec::new(),
            });
        }
        Self {
            q: q.clone(),
            index,
            series,
        }
    }

    pub fn add_minute(&mut self, name: Option<&str>, minute: i64, s: &Minute) {
        if let Some(i) = name.and_then(|n| self.index.get(n).copied()) {
            self.add_minute_to(i, minute, s);
        }
    }

    /// A row not written yet, of this run (`names` by index).
    pub fn add_row(&mut self, names: &[String], row: &Row) {
        match row {
            Row::Minute(idx, s) => self.add_minute(
                names.get(*idx).map(String::as_str),
                s.minute,
                &s.to_minute(),
            ),
            Row::Throughput(idx, t) => {
                if let Some(i) = names.get(*idx).and_then(|n| self.index.get(n).copied()) {
                    self.add_throughput_to(i, t.clone());
                }
            }
        }
    }

    /// The series, each saying which files of the period were `damaged`.
    pub fn finish(mut self, damaged: &[FileDamage]) -> Vec<Series> {
        for s in &mut self.series {
            s.throughput.sort_by_key(|t| t.at);
            s.damaged_files = damaged.to_vec();
        }
        self.series
    }
}

impl RowSink for Accumulator {
    /// The series index of target `name`, if the query asks for it.
    fn wanted(&mut self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn wanted_names(&self) -> Option<Vec<(String, usize)>> {
        Some(self.index.iter().map(|(n, i)| (n.clone(), *i)).collect())
    }

    fn add_hour_to(&mut self, series: usize, hour: i64, s: &Minute, minutes: u32) {
        let (since, until) = (self.q.since.as_second(), self.q.until.as_second());
        let at = hour.saturating_mul(3600);
        if at.saturating_add(3600) <= since || at >= until {
            return;
        }
        let i = (at.max(since) - since) / self.q.step;
        let cap = u32::try_from(self.q.step / 60).unwrap_or(u32::MAX);
        if let Some(p) = self
            .series
            .get_mut(series)
            .and_then(|s| s.points.get_mut(usize::try_from(i).unwrap_or(usize::MAX)))
        {
            p.summary.merge(s);
            // The hour's monitored minutes, at most the step's.
            p.minutes = p.minutes.saturating_add(minutes).min(cap);
        }
    }

    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute) {
        let at = minute * 60;
        if at < self.q.since.as_second() || at >= self.q.until.as_second() {
            return;
        }
        let i = (at - self.q.since.as_second()) / self.q.step;
        if let Some(p) = self
            .series
            .get_mut(series)
            .and_then(|s| s.points.get_mut(usize::try_from(i).unwrap_or(usize::MAX)))
        {
            p.summary.merge(s);
            if s.probes > 0 {
                let nth = (at - p.start.as_second()) / 60;
                if self.q.step <= 3600 {
                    p.seen |= 1u64 << nth.clamp(0, 63);
                    p.minutes = p.seen.count_ones();
                } else if i64::from(p.minutes) < self.q.step / 60 {
                    // Longer steps: rows, at most the step's minutes.
                    p.minutes += 1;
                }
            }
        }
    }

    fn add_throughput_to(&mut self, series: usize, t: Throughput) {
        if t.at < self.q.since || t.at >= self.q.until {
            return;
        }
        if let Some(s) = self.series.get_mut(series) {
            s.throughput.push(t);
        }
    }
}

/// One target's throughput tests over a period, read offline (the report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetTests {
    pub target: String,
    /// Good tests as measured, oldest first.
    pub tests: Vec<Throughput>,
    /// Failed tests (stalls, short bodies, time-outs, …: never a figure) by
    /// the minute they started in, oldest first.
    pub failures: Vec<(Timestamp, u32)>,
}

/// Collects the tests of a few targets over `[since, until)`.
pub(super) struct TestCollector {
    since: Timestamp,
    until: Timestamp,
    index: HashMap<String, usize>,
    out: Vec<TargetTests>,
}

impl TestCollector {
    pub(super) fn new(targets: &[String], since: Timestamp, until: Timestamp) -> Self {
        let mut index = HashMap::new();
        let mut out = Vec::new();
        for t in targets {
            if !index.contains_key(t) {
                index.insert(t.clone(), out.len());
                out.push(TargetTests {
                    target: t.clone(),
                    ..TargetTests::default()
                });
            }
        }
        Self {
            since,
            until,
            index,
            out,
        }
    }

    pub(super) fn finish(mut self) -> Vec<TargetTests> {
        for t in &mut self.out {
            t.tests.sort_by_key(|t| t.at);
            // A minute split over two runs comes in two rows: add them up.
            t.failures.sort_by_key(|f| f.0);
            t.failures.dedup_by(|later, first| {
                let same = later.0 == first.0;
                if same {
                    first.1 += later.1;
                }
                same
            });
        }
        self.out
    }
}

impl RowSink for TestCollector {
    fn wanted(&mut self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn wanted_names(&self) -> Option<Vec<(String, usize)>> {
        Some(self.index.iter().map(|(n, i)| (n.clone(), *i)).collect())
    }

    /// Failed tests of days kept only in hours: by the hour they started in.
    fn add_hour_to(&mut self, series: usize, hour: i64, s: &Minute, _minutes: u32) {
        self.add_minute_to(series, hour.saturating_mul(60), s);
    }

    fn add_minute_to(&mut self, series: usize, minute: i64, s: &Minute) {
        let Ok(at) = Timestamp::from_second(minute.saturating_mul(60)) else {
            return;
        };
        if s.failures == 0 || at < self.since || at >= self.until {
            return;
        }
        if let Some(t) = self.out.get_mut(series) {
            t.failures.push((at, s.failures));
        }
    }

    fn add_throughput_to(&mut self, series: usize, t: Throughput) {
        if t.at < self.since || t.at >= self.until {
            return;
        }
        if let Some(s) = self.out.get_mut(series) {
            s.tests.push(t);
        }
    }
}
