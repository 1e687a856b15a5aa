//! What a channel is told: one [`Notification`] per journal edge, carrying
//! the event's exact start, end, cause and journal `seq`, with a stable id
//! (`<site>:<seq>`) that receivers use to drop duplicates; and the sentence a
//! person reads, in the words of the report.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::config::notify::NotifyEvent;
use crate::journal::ts_ms;
use crate::journal::{
    DaemonStart, DegradedEnded, DegradedStarted, Entry, Line, OutageEnded, OutageStarted,
};

/// One message as the outbox stores it and the channels send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable per event: `<site>:<seq>` (a summary: `<site>:summary:<first>-<last>`).
    pub id: String,
    /// `outage_start`, `outage_end`, `slow_start`, `slow_end`, `daemon_start`,
    /// `journal_damage`, `site_silent`, `summary` or `test`.
    pub event: String,
    /// The journal line this was derived from (the last one for a summary).
    pub seq: u64,
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The outage's or slow period's id in the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_id: Option<String>,
    #[serde(
        with = "ts_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<Timestamp>,
    #[serde(
        with = "ts_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// When the event happened (the journal line's `ts`).
    #[serde(with = "ts_ms")]
    pub at: Timestamp,
    /// Not sent before (an outage start waiting for `min_duration`).
    #[serde(
        with = "ts_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<Timestamp>,
    /// Short title (ntfy title, e-mail subject).
    pub title: String,
    /// The sentence.
    pub text: String,
}

impl Notification {
    /// A message of no period yet (group, cause, edges and hold unset):
    /// what every message starts from.
    pub fn new(id: String, event: &str, seq: u64, site: String, at: Timestamp) -> Self {
        Self {
            id,
            event: event.to_owned(),
            seq,
            site,
            group: None,
            cause: None,
            period_id: None,
            start: None,
            end: None,
            duration_seconds: None,
            at,
            not_before: None,
            title: String::new(),
            text: String::new(),
        }
    }

    pub fn severity(&self) -> &'static str {
        if self.resolved() {
            return "info";
        }
        match self.event.as_str() {
            "outage_start" | "site_silent" | "journal_damage" => "critical",
            "slow_start" | "daemon_start" | "summary" => "warning",
            _ => "info",
        }
    }

    /// Whether this message tells that something is over (resolved).
    /// A `site_silent` message with an `end` says the site is back.
    pub fn resolved(&self) -> bool {
        matches!(self.event.as_str(), "outage_end" | "slow_end")
            || (self.event == "site_silent" && self.end.is_some())
    }
}

/// `12:02` in the local time zone (with the date when not today).
pub fn clock(t: Timestamp) -> String {
    let tz = TimeZone::system();
    let z = t.to_zoned(tz.clone());
    let today = Timestamp::now().to_zoned(tz).date();
    if z.date() == today {
        z.strftime("%H:%M").to_string()
    } else {
        z.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

/// `39 min 42 s`, `2 h 5 min`, `12 s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (d, h, m, s) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "likely cause: isp; lan answered": the cause group, and the group it
/// needs (the one nearer to the household) that still answered.
fn cause_words(config: &Config, group: &str, cause: &str) -> String {
    let parent = config
        .groups
        .iter()
        .find(|g| g.name == cause)
        .and_then(|g| g.needs.clone());
    // Without a `needs` parent the cause is the first group in the chain:
    // nothing nearer answered or not.
    let _ = group;
    let mut s = format!("likely cause: {}", cause.to_uppercase_if_short());
    if let Some(p) = parent {
        s.push_str(&format!("; {p} answered"));
    }
    s
}

trait ShortUpper {
    fn to_uppercase_if_short(&self) -> String;
}

impl ShortUpper for str {
    /// `isp` → `ISP`, `lan` → `LAN`; longer names stay as written.
    fn to_uppercase_if_short(&self) -> String {
        if self.len() <= 3 && self.chars().all(|c| c.is_ascii_alphabetic()) {
            self.to_ascii_uppercase()
        } else {
            self.to_owned()
        }
    }
}

fn site_of(config: &Config) -> String {
    config
        .daemon
        .site
        .clone()
        .unwrap_or_else(|| "linkwatch".to_owned())
}

fn id(site: &str, seq: u64) -> String {
    format!("{site}:{seq}")
}

/// What a journal line is for the notifier: its event kind (for the
/// channels' `events` filter), its group (for `groups`), and the message.
pub struct Derived {
    pub event: NotifyEvent,
    pub notification: Notification,
}

/// The notification a journal line makes, if any. Resumes (`outage_resume`,
/// `degraded_resume`) make none: the start was already told.
pub fn derive(config: &Config, line: &Line) -> Option<Derived> {
    let site = site_of(config);
    let base = |event: &str, title: String, text: String| Notification {
        title,
        text,
        ..Notification::new(id(&site, line.seq), event, line.seq, site.clone(), line.ts)
    };
    let (event, n) = match &line.entry {
        Entry::OutageStart(o) => (NotifyEvent::OutageStart, outage_start(config, o, &base)),
        Entry::OutageEnd(o) => (NotifyEvent::OutageEnd, outage_end(o, &base)),
        Entry::DegradedStart(d) => (NotifyEvent::SlowStart, slow_start(d, &base)),
        Entry::DegradedEnd(d) => (NotifyEvent::SlowEnd, slow_end(d, &base)),
        Entry::DaemonStart(s) if s.previous_run_clean == Some(false) => {
            (NotifyEvent::DaemonStart, crash_restart(s, line.ts, &base))
        }
        Entry::JournalReopened(r) => {
            let text = format!(
                "the evidence journal was {} while linkwatch wrote it; it continues in a new file",
                r.reason
            );
            (
                NotifyEvent::JournalDamage,
                base("journal_damage", "journal damaged".into(), text),
            )
        }
        _ => return None,
    };
    Some(Derived {
        event,
        notification: n,
    })
}

/// The skeleton of a line's notification: event, title and text; the rest
/// is filled in by the caller.
type Base<'a> = dyn Fn(&str, String, String) -> Notification + 'a;

fn outage_start(config: &Config, o: &OutageStarted, base: &Base<'_>) -> Notification {
    let name = title_case(&o.group);
    let text = format!(
        "{name} down since {} ({})",
        clock(o.start),
        cause_words(config, &o.group, &o.cause)
    );
    let mut n = base("outage_start", format!("{name} down"), text);
    n.group = Some(o.group.clone());
    n.cause = Some(o.cause.clone());
    n.period_id = Some(o.id.clone());
    n.start = Some(o.start);
    n
}

fn outage_end(o: &OutageEnded, base: &Base<'_>) -> Notification {
    let name = title_case(&o.group);
    let mut text = match o.end_reason {
        None => format!(
            "{name} back at {} after {}",
            clock(o.end),
            duration(o.duration_seconds)
        ),
        Some(r) => format!(
            "{name}: outage since {} closed at {} after {} ({})",
            clock(o.start),
            clock(o.end),
            duration(o.duration_seconds),
            r.describe()
        ),
    };
    match o.gaps.len() {
        0 => {}
        1 => text.push_str("; 1 gap"),
        n => text.push_str(&format!("; {n} gaps")),
    }
    if !o.end_observed {
        text.push_str(" (the end fell in a time linkwatch did not observe)");
    }
    let mut n = base("outage_end", format!("{name} back"), text);
    n.group = Some(o.group.clone());
    n.cause = Some(o.cause.clone());
    n.period_id = Some(o.id.clone());
    n.start = Some(o.start);
    n.end = Some(o.end);
    n.duration_seconds = Some(o.duration_seconds);
    n
}

fn slow_start(d: &DegradedStarted, base: &Base<'_>) -> Notification {
    let what = slow_words(d.figures.loss_ratio, &d.triggers_text());
    let text = format!("slow: {what} to {} since {}", d.group, clock(d.start));
    let mut n = base("slow_start", format!("{} slow", title_case(&d.group)), text);
    n.group = Some(d.group.clone());
    n.cause = Some(d.cause.clone());
    n.period_id = Some(d.id.clone());
    n.start = Some(d.start);
    n
}

fn slow_end(d: &DegradedEnded, base: &Base<'_>) -> Notification {
    let text = format!(
        "{} no longer slow at {} after {}",
        title_case(&d.group),
        clock(d.end),
        duration(d.duration_seconds)
    );
    let mut n = base(
        "slow_end",
        format!("{} fast again", title_case(&d.group)),
        text,
    );
    n.group = Some(d.group.clone());
    n.cause = Some(d.cause.clone());
    n.period_id = Some(d.id.clone());
    n.start = Some(d.start);
    n.end = Some(d.end);
    n.duration_seconds = Some(d.duration_seconds);
    n
}

/// A start after a run that left no `daemon_stop`.
fn crash_restart(s: &DaemonStart, at: Timestamp, base: &Base<'_>) -> Notification {
    let since = s
        .previous_run_alive_until
        .map(|t| format!(" (last seen alive at {})", clock(t)))
        .unwrap_or_default();
    let text = format!(
        "linkwatch restarted after its previous run ended without stopping{since}; the time in between was not observed"
    );
    let mut n = base(
        "daemon_start",
        "linkwatch restarted after a crash".into(),
        text,
    );
    n.start = s.previous_run_alive_until;
    n.end = Some(at);
    n
}

/// A damaged line (torn or not JSON) found while reading the journal.
pub fn damage(config: &Config, after_seq: u64, at: Timestamp, what: &str) -> Derived {
    let site = site_of(config);
    Derived {
        event: NotifyEvent::JournalDamage,
        notification: Notification {
            title: "journal damaged".into(),
            text: format!("the evidence journal has a damaged line after seq {after_seq}: {what}"),
            ..Notification::new(
                format!("{site}:damage:{after_seq}"),
                "journal_damage",
                after_seq,
                site,
                at,
            )
        },
    }
}

fn slow_words(loss: Option<f64>, triggers: &str) -> String {
    match loss {
        Some(l) if l > 0.0 && triggers.contains("loss") => {
            format!("{:.0} % loss", l * 100.0)
        }
        _ => triggers.to_owned(),
    }
}

trait TriggersText {
    fn triggers_text(&self) -> String;
}

impl TriggersText for crate::journal::DegradedStarted {
    fn triggers_text(&self) -> String {
        let names: Vec<String> = self
            .triggers
            .iter()
            .map(|t| {
                serde_json::to_value(t)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                    .unwrap_or_else(|| "slow".into())
            })
            .collect();
        if names.is_empty() {
            "slow".into()
        } else {
            names.join(", ")
        }
    }
}

/// The message that stands for `folded` messages that could not be delivered.
pub fn summary(site: &str, folded: &[Notification], reason: &str, now: Timestamp) -> Notification {
    let first = folded.first().map_or(0, |n| n.seq);
    let last = folded.last().map_or(0, |n| n.seq);
    let from = folded.first().map_or(now, |n| n.at);
    let to = folded.last().map_or(now, |n| n.at);
    let outages = folded.iter().filter(|n| n.event == "outage_start").count();
    let mut text = format!(
        "{} notifications {reason} between {} and {}",
        folded.len(),
        clock(from),
        clock(to)
    );
    if outages > 0 {
        text.push_str(&format!(" ({outages} outages started)"));
    }
    text.push_str("; the report has them");
    Notification {
        start: Some(from),
        end: Some(to),
        title: "linkwatch: notifications summarised".into(),
        text,
        ..Notification::new(
            format!("{site}:summary:{first}-{last}"),
            "summary",
            last,
            site.to_owned(),
            now,
        )
    }
}

/// `linkwatch notify test`.
pub fn test_message(config: &Config, channel: &str) -> Notification {
    let site = site_of(config);
    let now = Timestamp::now();
    Notification {
        title: "linkwatch test".into(),
        text: format!(
            "test message from linkwatch to channel {channel} at {}",
            clock(now)
        ),
        ..Notification::new(
            format!("{site}:test:{}", now.as_millisecond()),
            "test",
            0,
            site,
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_back_resolves_what_its_silence_fired() {
        let at: Timestamp = "2026-01-01T10:02:00Z".parse().unwrap();
        let mut n = Notification::new("x".into(), "site_silent", 0, "vps".into(), at);
        n.start = Some(at);
        assert!(!n.resolved());
        assert_eq!(n.severity(), "critical");
        n.end = Some(at);
        assert!(n.resolved());
        assert_eq!(n.severity(), "info");
        let mut o = Notification::new("y".into(), "outage_start", 0, "vps".into(), at);
        o.end = Some(at);
        assert!(!o.resolved(), "only site_silent reads its end as resolved");
    }

    #[test]
    fn outage_edges_read_like_the_report() {
        let text = r#"
[daemon]
site = "home"
[[group]]
name = "lan"
[[group]]
name = "isp"
needs = "lan"
[[target]]
name = "r"
group = "lan"
kind = "tcp"
host = "127.0.0.1"
port = 9
[[target]]
name = "i"
group = "isp"
kind = "tcp"
host = "127.0.0.1"
port = 9
"#;
        let config = crate::config::parse(text, "t.toml").unwrap();
        let start: Timestamp = "2026-01-01T10:02:00Z".parse().unwrap();
        let end: Timestamp = "2026-01-01T10:41:42Z".parse().unwrap();
        let line = |seq, entry| Line {
            seq,
            prev: String::new(),
            ts: start,
            entry,
        };
        let started = crate::journal::OutageStarted {
            interference: None,
            id: "o1".into(),
            group: "isp".into(),
            cause: "isp".into(),
            start,
            start_observed: true,
            targets: vec![],
            gaps: vec![],
        };
        let d = derive(&config, &line(7, Entry::OutageStart(started))).unwrap();
        assert_eq!(d.event, NotifyEvent::OutageStart);
        assert_eq!(d.notification.id, "home:7");
        assert!(
            d.notification.text.starts_with("Isp down since ")
                && d.notification
                    .text
                    .ends_with("(likely cause: ISP; lan answered)"),
            "{}",
            d.notification.text
        );
        let gap = crate::journal::Gap {
            from: start,
            to: start,
        };
        let ended = crate::journal::OutageEnded {
            interference: None,
            id: "o1".into(),
            group: "isp".into(),
            cause: "isp".into(),
            start,
            start_observed: true,
            end,
            duration_seconds: 2382.0,
            duration_clock: crate::journal::DurationClock::Monotonic,
            end_observed: true,
            targets: vec![],
            gaps: vec![gap, gap],
            end_reason: None,
        };
        let d = derive(&config, &line(9, Entry::OutageEnd(ended))).unwrap();
        assert!(
            d.notification.text.contains(" back at ")
                && d.notification.text.ends_with(" after 39 min 42 s; 2 gaps"),
            "{}",
            d.notification.text
        );
        assert_eq!(d.notification.start, Some(start));
        assert_eq!(d.notification.end, Some(end));
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let q = crate::config::notify::QuietHours {
            from: 22 * 60,
            to: 7 * 60,
        };
        assert!(q.contains(23 * 60) && q.contains(0) && q.contains(6 * 60 + 59));
        assert!(!q.contains(7 * 60) && !q.contains(12 * 60));
        let d = crate::config::notify::QuietHours { from: 60, to: 120 };
        assert!(d.contains(90) && !d.contains(120) && !d.contains(0));
    }

    #[test]
    fn durations_read_like_the_report() {
        assert_eq!(duration(2382.0), "39 min 42 s");
        assert_eq!(duration(12.0), "12 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }
}
