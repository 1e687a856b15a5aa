//! What peers send each other: paths, JSON bodies and the limits both sides
//! hold to. The receiving side serves these (`peer::serve`), the calling
//! side sends and checks them (`peer::client`).
//!
//! - `GET /api/v1/peer/observations?targets=a,b&since=&until=` ->
//!   [`Observations`]: per target and minute, probes, failures and RTT
//!   quantiles from the history store. Target names are percent-encoded
//!   each and joined by `,` ([`ObservationsRequest::query_string`]).
//! - `POST /api/v1/peer/witness` with a [`WitnessRequest`] ->
//!   [`crate::journal::Receipt`].
//! - `GET /api/v1/peer/witnesses?site=NAME[&since=]` -> `[WitnessRecord]`:
//!   the witness records held for the caller's own site, oldest first.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::ts_ms;

/// Paths of the peer endpoints.
pub const PATH_OBSERVATIONS: &str = "/api/v1/peer/observations";
pub const PATH_WITNESS: &str = "/api/v1/peer/witness";
pub const PATH_WITNESSES: &str = "/api/v1/peer/witnesses";

/// The `endpoint` label of the peer metrics for each path.
pub const ENDPOINT_OBSERVATIONS: &str = "observations";
pub const ENDPOINT_WITNESS: &str = "witness";
pub const ENDPOINT_WITNESSES: &str = "witnesses";

/// Largest request body a peer endpoint reads (a witness is ~150 bytes).
pub const MAX_REQUEST_BODY: usize = 4096;
/// Largest answer the calling side reads.
pub const MAX_RESPONSE_BODY: usize = 4 << 20;
/// Most targets one observations call may ask for.
pub const MAX_TARGETS_PER_CALL: usize = 16;
/// Longest `until - since` of one observations call.
pub const MAX_SPAN: Duration = Duration::from_secs(7 * 86_400);
/// Most target-minutes one observations call may cover (targets × minutes of
/// the span): bounds the answer to ~3 MB (< [`MAX_RESPONSE_BODY`]).
pub const MAX_MINUTES_PER_CALL: u64 = 20_000;
/// Most witness records one witnesses call returns (the newest).
pub const MAX_WITNESSES: usize = 5_000;
/// Seconds per observation (the history store's minute).
pub const STEP_SECONDS: u64 = 60;

/// `POST /api/v1/peer/witness`: the caller's journal head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessRequest {
    /// The caller's site name (`[daemon] site`).
    pub site: String,
    /// The seq and hash of its last journal line.
    pub seq: u64,
    pub hash: String,
    /// When that line was written.
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
}

impl WitnessRequest {
    /// A witness the receiver can keep: a site name of 1-63 safe
    /// characters and a 64-digit lowercase hex hash.
    pub fn check(&self) -> Result<(), &'static str> {
        if crate::config::peer::valid_site(&self.site).is_err() {
            return Err("`site` must be 1-63 characters: A-Z a-z 0-9 . _ -");
        }
        if self.hash.len() != 64
            || !self
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("`hash` must be 64 lowercase hex digits (a SHA-256)");
        }
        Ok(())
    }
}

/// `GET /api/v1/peer/witnesses` answers a list of these, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRecord {
    /// The caller's head as it sent it.
    pub seq: u64,
    pub hash: String,
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    /// When we received it (our `witness` line's time).
    #[serde(with = "ts_ms")]
    pub received: Timestamp,
}

/// The query of `GET /api/v1/peer/observations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationsRequest {
    /// The answering side's target names.
    pub targets: Vec<String>,
    pub since: Timestamp,
    pub until: Timestamp,
}

impl ObservationsRequest {
    /// `targets=a,b&since=…&until=…`, each name percent-encoded (a `,` in
    /// a name becomes `%2C`).
    pub fn query_string(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let targets: Vec<String> = self.targets.iter().map(|t| enc(t)).collect();
        format!(
            "targets={}&since={}&until={}",
            targets.join(","),
            enc(&ts_ms::format(&self.since)),
            enc(&ts_ms::format(&self.until))
        )
    }

    /// Reads and bounds a query string: 1..=[`MAX_TARGETS_PER_CALL`]
    /// distinct targets, `since < until`, at most [`MAX_SPAN`] and
    /// [`MAX_MINUTES_PER_CALL`] target-minutes.
    pub fn parse_query(raw: &str) -> Result<Self, String> {
        let decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut targets = None;
        let mut since = None;
        let mut until = None;
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "targets" => {
                    targets = Some(v.split(',').map(decode).collect::<Vec<String>>());
                }
                "since" | "until" => {
                    let text = decode(v);
                    let t: Timestamp = text.parse().map_err(|e| {
                        format!("`{k}` is not an RFC 3339 time (e.g. 2026-11-01T10:02:00Z): {e}")
                    })?;
                    if k == "since" {
                        since = Some(t);
                    } else {
                        until = Some(t);
                    }
                }
                _ => return Err("unknown query parameter; valid: targets, since, until".into()),
            }
        }
        let targets = targets.ok_or("`targets` is required (names joined by `,`)")?;
        let since = since.ok_or("`since` is required")?;
        let until = until.ok_or("`until` is required")?;
        if targets.is_empty() || targets.iter().any(String::is_empty) {
            return Err("`targets` must name at least one target, none empty".into());
        }
        if targets.len() > MAX_TARGETS_PER_CALL {
            return Err(format!(
                "`targets` names {} targets; at most {MAX_TARGETS_PER_CALL} per call",
                targets.len()
            ));
        }
        let mut sorted = targets.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != targets.len() {
            return Err("`targets` names a target twice".into());
        }
        if until <= since {
            return Err("`until` must be after `since`".into());
        }
        let span = until.as_second() - since.as_second();
        if span > MAX_SPAN.as_secs() as i64 {
            return Err(format!(
                "`since`..`until` spans more than {} days; ask in parts",
                MAX_SPAN.as_secs() / 86_400
            ));
        }
        let minutes = (span as u64).div_ceil(STEP_SECONDS) + 1;
        if minutes * targets.len() as u64 > MAX_MINUTES_PER_CALL {
            return Err(format!(
                "{} targets over {minutes} minutes is more than {MAX_MINUTES_PER_CALL} target-minutes per call; ask in parts",
                targets.len()
            ));
        }
        Ok(Self {
            targets,
            since,
            until,
        })
    }
}

/// `GET /api/v1/peer/observations`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// The answering site's name (empty when it has none).
    pub site: String,
    #[serde(with = "ts_ms")]
    pub since: Timestamp,
    #[serde(with = "ts_ms")]
    pub until: Timestamp,
    /// Seconds per observation ([`STEP_SECONDS`]).
    pub step_seconds: u64,
    /// In the order asked.
    pub targets: Vec<TargetObservations>,
}

/// One target's minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetObservations {
    /// The name asked for (the answering side's own target name).
    pub target: String,
    /// `false` when the answering side has no target of that name (then no minutes).
    pub known: bool,
    /// The minutes with at least one probe, in time order.
    pub minutes: Vec<MinuteObservation>,
}

/// One target-minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteObservation {
    /// The minute's start.
    #[serde(with = "ts_ms")]
    pub t: Timestamp,
    pub probes: u64,
    pub failures: u64,
    pub rtt_p50_seconds: Option<f64>,
    pub rtt_p95_seconds: Option<f64>,
}

impl Observations {
    /// Rejects figures no linkwatch can have produced for a request of
    /// `asked` targets: another step than [`STEP_SECONDS`], more targets
    /// than asked (or one not asked, or twice), failures above probes,
    /// more probes in one minute than `interval_floor` allows (600 at
    /// 100 ms), a minute outside `[since, until]` (its start may precede
    /// `since` by less than a step), minutes out of order or twice, minutes
    /// of an unknown target, and RTTs that are negative or not numbers.
    pub fn validate(&self, asked: &[String], interval_floor: Duration) -> Result<(), &'static str> {
        if self.step_seconds != STEP_SECONDS {
            return Err("step_seconds is not 60");
        }
        if self.until < self.since {
            return Err("until precedes since");
        }
        if self.targets.len() > asked.len() {
            return Err("more targets than asked for");
        }
        let floor_ms = interval_floor.as_millis().max(1);
        let max_probes = (u128::from(STEP_SECONDS) * 1000 / floor_ms).max(1) as u64;
        let earliest = self.since.as_second() - STEP_SECONDS as i64;
        for (i, t) in self.targets.iter().enumerate() {
            if !asked.contains(&t.target) {
                return Err("a target that was not asked for");
            }
            if self.targets[..i].iter().any(|o| o.target == t.target) {
                return Err("a target answered twice");
            }
            if !t.known && !t.minutes.is_empty() {
                return Err("minutes for a target it does not know");
            }
            let mut last: Option<Timestamp> = None;
            for m in &t.minutes {
                if m.failures > m.probes {
                    return Err("more failures than probes");
                }
                if m.probes > max_probes {
                    return Err("more probes in one minute than any interval allows");
                }
                if m.t.as_second() <= earliest || m.t > self.until {
                    return Err("a minute outside since..until");
                }
                match last {
                    Some(l) if l == m.t => return Err("a minute answered twice"),
                    Some(l) if l > m.t => return Err("minutes out of order"),
                    _ => {}
                }
                last = Some(m.t);
                for rtt in [m.rtt_p50_seconds, m.rtt_p95_seconds].into_iter().flatten() {
                    if !rtt.is_finite() || rtt < 0.0 {
                        return Err("an RTT that is negative or not a number");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FLOOR: Duration = Duration::from_millis(100);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn minute(t: &str, probes: u64, failures: u64) -> MinuteObservation {
        MinuteObservation {
            t: ts(t),
            probes,
            failures,
            rtt_p50_seconds: Some(0.012),
            rtt_p95_seconds: Some(0.02),
        }
    }

    fn answer(minutes: Vec<MinuteObservation>) -> Observations {
        Observations {
            site: "abroad".into(),
            since: ts("2026-11-01T10:02:30Z"),
            until: ts("2026-11-01T10:10:00Z"),
            step_seconds: 60,
            targets: vec![TargetObservations {
                target: "web".into(),
                known: true,
                minutes,
            }],
        }
    }

    fn asked() -> Vec<String> {
        vec!["web".into(), "dns".into()]
    }

    #[test]
    fn plausible_figures_pass() {
        let a = answer(vec![
            minute("2026-11-01T10:02:00Z", 60, 0),
            minute("2026-11-01T10:03:00Z", 600, 600),
            minute("2026-11-01T10:10:00Z", 1, 0),
        ]);
        assert_eq!(a.validate(&asked(), FLOOR), Ok(()));
    }

    #[test]
    fn impossible_figures_are_rejected_with_the_reason() {
        let v = |ms: Vec<MinuteObservation>| answer(ms).validate(&asked(), FLOOR);
        assert_eq!(
            v(vec![minute("2026-11-01T10:03:00Z", 5, 6)]),
            Err("more failures than probes")
        );
        assert_eq!(
            v(vec![minute("2026-11-01T10:03:00Z", 601, 0)]),
            Err("more probes in one minute than any interval allows")
        );
        // With a 1 s floor, 61 is too many.
        assert!(
            answer(vec![minute("2026-11-01T10:03:00Z", 61, 0)])
                .validate(&asked(), Duration::from_secs(1))
                .is_err()
        );
        assert_eq!(
            v(vec![minute("2026-11-01T10:01:00Z", 1, 0)]),
            Err("a minute outside since..until")
        );
        assert_eq!(
            v(vec![minute("2026-11-01T10:11:00Z", 1, 0)]),
            Err("a minute outside since..until")
        );
        assert_eq!(
            v(vec![
                minute("2026-11-01T10:03:00Z", 1, 0),
                minute("2026-11-01T10:03:00Z", 1, 0)
            ]),
            Err("a minute answered twice")
        );
        assert_eq!(
            v(vec![
                minute("2026-11-01T10:04:00Z", 1, 0),
                minute("2026-11-01T10:03:00Z", 1, 0)
            ]),
            Err("minutes out of order")
        );
        let mut nan = minute("2026-11-01T10:03:00Z", 1, 0);
        nan.rtt_p95_seconds = Some(f64::NAN);
        assert_eq!(v(vec![nan]), Err("an RTT that is negative or not a number"));
    }

    #[test]
    fn targets_must_be_the_ones_asked_for() {
        let mut a = answer(vec![]);
        assert_eq!(a.validate(&["web".to_string()], FLOOR), Ok(()));
        a.targets.push(a.targets[0].clone());
        assert_eq!(
            a.validate(&["web".to_string()], FLOOR),
            Err("more targets than asked for")
        );
        assert_eq!(a.validate(&asked(), FLOOR), Err("a target answered twice"));
        a.targets[1].target = "other".into();
        assert_eq!(
            a.validate(&asked(), FLOOR),
            Err("a target that was not asked for")
        );
        let mut unknown = answer(vec![minute("2026-11-01T10:03:00Z", 1, 0)]);
        unknown.targets[0].known = false;
        assert_eq!(
            unknown.validate(&asked(), FLOOR),
            Err("minutes for a target it does not know")
        );
        let mut step = answer(vec![]);
        step.step_seconds = 300;
        assert_eq!(
            step.validate(&asked(), FLOOR),
            Err("step_seconds is not 60")
        );
    }

    #[test]
    fn the_query_round_trips_names_with_commas_and_is_bounded() {
        let r = ObservationsRequest {
            targets: vec!["intl web, 1".into(), "dns/ä".into()],
            since: ts("2026-11-01T10:02:00Z"),
            until: ts("2026-11-01T10:41:00Z"),
        };
        let q = r.query_string();
        assert!(!q.contains(' '), "{q}");
        assert_eq!(ObservationsRequest::parse_query(&q), Ok(r.clone()));
        let e = |q: &str| ObservationsRequest::parse_query(q).unwrap_err();
        assert!(
            e("since=2026-11-01T10:02:00Z&until=2026-11-01T10:41:00Z")
                .contains("`targets` is required")
        );
        assert!(e("targets=a&since=x&until=2026-11-01T10:41:00Z").contains("RFC 3339"));
        assert!(
            e("targets=a&since=2026-11-01T10:41:00Z&until=2026-11-01T10:02:00Z").contains("after")
        );
        assert!(
            e("targets=a&since=2026-11-01T00:00:00Z&until=2026-11-09T00:00:00Z").contains("7 days")
        );
        assert!(
            e("targets=a,a&since=2026-11-01T00:00:00Z&until=2026-11-01T01:00:00Z")
                .contains("twice")
        );
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert!(
            e(&format!(
                "targets={}&since=2026-11-01T00:00:00Z&until=2026-11-01T00:01:00Z",
                many.join(",")
            ))
            .contains("at most 16")
        );
        // 16 targets over a day: 23 056 target-minutes.
        assert!(
            e(&format!(
                "targets={}&since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z",
                many[..16].join(",")
            ))
            .contains("target-minutes")
        );
        assert!(
            e("targets=a&since=2026-11-01T00:00:00Z&until=2026-11-01T01:00:00Z&x=1")
                .contains("unknown")
        );
    }

    #[test]
    fn a_witness_needs_a_site_name_and_a_sha256() {
        let mut w = WitnessRequest {
            site: "almaty-home".into(),
            seq: 41,
            hash: "a".repeat(64),
            at: ts("2026-11-01T10:02:00Z"),
        };
        assert_eq!(w.check(), Ok(()));
        w.hash = "A".repeat(64);
        assert!(w.check().is_err());
        w.hash = "a".repeat(63);
        assert!(w.check().is_err());
        w.hash = "a".repeat(64);
        w.site = "a b".into();
        assert!(w.check().is_err());
        let garbage: Result<WitnessRequest, _> = serde_json::from_str(
            r#"{"site":"x","seq":1,"hash":"00","at":"2026-11-01T10:02:00Z","extra":1}"#,
        );
        assert!(garbage.is_err());
    }
}
