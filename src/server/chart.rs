//! `GET /chart/<target>.svg?range=…`: one target's charts for the status
//! page's `<img>` ([`page::chart`]). 404 for a target not configured, 400
//! for a bad query; the work is one target's series over one of the page's
//! ranges (at most 1 440 points), and the answer is cached for the chart's
//! step.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use http::{Response, StatusCode, header};

use super::{AppState, Body, bad_request, load_history, periods, plans, response};
use crate::history::{FileDamage, HistoryQuery};
use crate::page::{self, Period, Range, chart::ChartError};

/// How long what a chart (or the page's own check) learnt about damaged
/// history files of a range holds for the page's note.
const DAMAGE_FRESH: Duration = Duration::from_secs(600);

/// Per range (seconds): when damaged files were last looked for, and found.
type Found = HashMap<i64, (Instant, Vec<FileDamage>)>;
static DAMAGE: Mutex<Option<Found>> = Mutex::new(None);

fn note_damage(range: Range, found: &[FileDamage]) {
    let mut d = DAMAGE.lock().unwrap_or_else(|p| p.into_inner());
    d.get_or_insert_with(HashMap::new)
        .insert(range.seconds(), (Instant::now(), found.to_vec()));
}

/// The history files of `range` that could not be read in full, for the
/// page's note: what the last chart of that range found (every answer of
/// the store lists them), or, when none was read for [`DAMAGE_FRESH`], a
/// query of one point of one target. So page views read no history.
pub(super) fn damaged(
    state: &AppState,
    status: &crate::status::Status,
    range: Range,
) -> Vec<FileDamage> {
    {
        let d = DAMAGE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, found)) = d.as_ref().and_then(|d| d.get(&range.seconds()))
            && at.elapsed() < DAMAGE_FRESH
        {
            return found.clone();
        }
    }
    let now = status.now;
    let since = jiff::Timestamp::from_second(now.as_second() - range.seconds()).unwrap_or(now);
    let found = status
        .targets
        .first()
        .and_then(|t| HistoryQuery::new(vec![t.name.clone()], since, now, range.seconds()).ok())
        .and_then(|q| state.history.query(&q).into_iter().next())
        .map(|s| s.damaged_files)
        .unwrap_or_default();
    note_damage(range, &found);
    found
}

/// Serves one chart.
pub(super) fn chart(state: &AppState, path: &str, query: &str) -> Response<Body> {
    match render(state, path, query) {
        Ok((svg, max_age)) => {
            let mut r = response(StatusCode::OK, "image/svg+xml", svg.into_bytes());
            let h = r.headers_mut();
            if let Ok(v) = header::HeaderValue::from_str(&format!("max-age={max_age}")) {
                h.insert(header::CACHE_CONTROL, v);
            }
            if let Ok(v) = header::HeaderValue::from_str(&page::chart::CSP) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            r
        }
        Err(ChartError::NotFound(msg)) => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("{msg}\n").into_bytes(),
        ),
        Err(ChartError::BadRequest(msg)) => bad_request(msg),
    }
}

/// The chart's SVG and its lifetime in seconds.
fn render(state: &AppState, path: &str, query: &str) -> Result<(String, i64), ChartError> {
    let target = page::chart::target_of(path)
        .ok_or_else(|| ChartError::NotFound("not found".to_string()))?;
    let range = page::chart::parse_query(query)?;
    let status = state.status.status(&state.outages, state.started);
    let Some(t) = status.targets.iter().find(|t| t.name == target) else {
        return Err(ChartError::NotFound(format!("no such target `{target}`")));
    };
    let now = status.now;
    let q = page::chart::query(&t.name, range, now)
        .map_err(|e| ChartError::BadRequest(e.to_string()))?;
    let Some(series) = state.history.query(&q).into_iter().next() else {
        return Err(ChartError::NotFound(format!("no history of `{target}`")));
    };
    note_damage(range, &series.damaged_files);
    let periods = periods(state, now);
    let marks: Vec<&Period> = periods.iter().filter(|p| p.group == t.group).collect();
    let plan = plans(&load_history(state), now)
        .into_iter()
        .find(|(name, _)| *name == t.name)
        .map(|(_, bps)| bps);
    let tz = jiff::tz::TimeZone::system();
    tracing::debug!(
        target = %t.name,
        range = range.label(),
        points = series.points.len(),
        rows = page::chart::rows_asked(&q),
        "chart served"
    );
    Ok((
        page::chart::document(&series, range, &marks, plan, &tz),
        range.step(),
    ))
}
