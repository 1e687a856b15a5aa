//! `[[notify]]`: the channels that tell people about outages (webhook, ntfy,
//! Telegram, e-mail). Read like every other table: each problem is recorded
//! with its span and the walk goes on. Secrets are read here, from
//! `token_file` / `password_file`: a missing, empty or world-readable file is
//! a configuration error at the key that names it, and the secret itself is
//! never part of a message, a log line or `Debug` output.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::error::shown;
use super::walk::{At, Got, Need, Reported, Tbl, Walker};

/// The events a channel can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotifyEvent {
    OutageStart,
    OutageEnd,
    SlowStart,
    SlowEnd,
    /// Another site went silent (from a peer's view: not implemented yet).
    SiteSilent,
    /// The daemon started after a crash (the previous run left no `daemon_stop`).
    DaemonStart,
    /// The journal was found damaged (a torn line, a replaced file).
    JournalDamage,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 7] = [
        NotifyEvent::OutageStart,
        NotifyEvent::OutageEnd,
        NotifyEvent::SlowStart,
        NotifyEvent::SlowEnd,
        NotifyEvent::SiteSilent,
        NotifyEvent::DaemonStart,
        NotifyEvent::JournalDamage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::OutageStart => "outage_start",
            NotifyEvent::OutageEnd => "outage_end",
            NotifyEvent::SlowStart => "slow_start",
            NotifyEvent::SlowEnd => "slow_end",
            NotifyEvent::SiteSilent => "site_silent",
            NotifyEvent::DaemonStart => "daemon_start",
            NotifyEvent::JournalDamage => "journal_damage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A secret read from a file: shown as `<redacted>` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// A placeholder for a secret file a reader did not open (see
    /// [`super::load_for_reading`]); unique per path, so two keys naming
    /// one file still count as one secret.
    pub(super) fn unread(path: &Path) -> Self {
        Self(format!("<unread {}>", path.display()))
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How an e-mail channel secures its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded with STARTTLS (refused when the server does not offer it).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a relay on the same machine or a test sink only).
    None,
}

/// The kind of channel and its own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Webhook {
        url: Url,
        /// Send an Alertmanager-compatible body (`{"alerts":[…]}`).
        alertmanager: bool,
        /// `Authorization: Bearer` from `token_file`.
        token: Option<Secret>,
    },
    Ntfy {
        /// The topic URL (`https://ntfy.sh/my-topic`).
        url: Url,
        token: Option<Secret>,
    },
    Telegram {
        /// The Bot API's base URL (`https://api.telegram.org`).
        api_url: Url,
        chat_id: String,
        token: Secret,
    },
    Email {
        smtp_host: String,
        smtp_port: u16,
        security: SmtpSecurity,
        from: String,
        to: Vec<String>,
        username: Option<String>,
        password: Option<Secret>,
        /// Extra CA certificate (PEM) trusted for the SMTP server.
        ca_file: Option<PathBuf>,
    },
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Ntfy { .. } => "ntfy",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Email { .. } => "email",
        }
    }
}

/// Quiet hours in local time: messages wait until they end (nothing is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub from: u16,
    pub to: u16,
}

impl QuietHours {
    /// Whether `minute` (after local midnight) falls in the quiet period; it
    /// may wrap midnight (`22:00-07:00`).
    pub fn contains(&self, minute: u16) -> bool {
        if self.from <= self.to {
            (self.from..self.to).contains(&minute)
        } else {
            minute >= self.from || minute < self.to
        }
    }
}

/// One `[[notify]]` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyChannel {
    pub name: String,
    pub kind: ChannelKind,
    /// The events this channel is told about.
    pub events: Vec<NotifyEvent>,
    /// Only these groups' outages and slow periods (empty: every group).
    pub groups: Vec<String>,
    /// Outages and slow periods shorter than this are not told (their start
    /// waits this long in the outbox and is withdrawn when they end sooner).
    pub min_duration: Duration,
    pub quiet_hours: Option<QuietHours>,
    /// At most `rate_limit` messages per `rate_window` (by event time);
    /// the events beyond are told in one summary when the window allows.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Outbox bounds: beyond these the oldest undelivered are folded into one summary.
    pub max_queue: u32,
    pub max_age: Duration,
    /// Upper bound of the retry back-off.
    pub retry_max: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl NotifyChannel {
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }

    pub fn wants_group(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g == group)
    }
}

const KEYS: &[&str] = &[
    "name",
    "kind",
    "events",
    "groups",
    "min_duration",
    "quiet_hours",
    "rate_limit",
    "rate_window",
    "max_queue",
    "max_age",
    "retry_max",
    "timeout",
    "url",
    "alertmanager",
    "token_file",
    "api_url",
    "chat_id",
    "smtp_host",
    "smtp_port",
    "security",
    "from",
    "to",
    "username",
    "password_file",
    "ca_file",
];

/// The events a channel gets when `events` is not given.
pub const DEFAULT_EVENTS: &[NotifyEvent] = &[
    NotifyEvent::OutageStart,
    NotifyEvent::OutageEnd,
    NotifyEvent::SiteSilent,
    NotifyEvent::DaemonStart,
    NotifyEvent::JournalDamage,
];

/// Reads every `[[notify]]` table; `None` when any of them has a problem
/// (recorded in `w`). `groups` are the configured group names.
pub(super) fn tables(
    w: &mut Walker<'_>,
    root: &Tbl<'_, '_>,
    groups: &[String],
) -> Option<Vec<NotifyChannel>> {
    let mut out = Vec::new();
    let mut failed = false;
    let mut seen: Vec<String> = Vec::new();
    for t in w.array_of_tables(root, "notify") {
        let Ok(t) = t else {
            failed = true;
            continue;
        };
        match channel(w, &t, groups) {
            Some(c) => {
                if seen.contains(&c.name) {
                    let span = t.get("name").map_or(t.span.clone(), |v| v.span());
                    let message = format!(
                        "`name` ({}) is used by another [[notify]] channel; names must be unique",
                        shown(&c.name)
                    );
                    w.report(span, t.key("name"), message);
                    failed = true;
                } else {
                    seen.push(c.name.clone());
                    out.push(c);
                }
            }
            None => failed = true,
        }
    }
    (!failed).then_some(out)
}

fn url(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Got<Url> {
    let got = w.string(t, key);
    w.check(t, key, got, |s| {
        let u =
            Url::parse(s).map_err(|e| format!("`{key}` ({}) is not a valid URL: {e}", shown(s)))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!(
                "`{key}` ({}) must be an http:// or https:// URL",
                shown(s)
            ));
        }
        if u.host_str().is_none() {
            return Err(format!("`{key}` ({}) has no host", shown(s)));
        }
        Ok(u)
    })
}

/// Reads a secret file: refused when missing, empty, or readable by others.
pub fn read_secret(path: &Path) -> Result<Secret, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "{} is readable by every user (mode {:o}); a secret file must not be: chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    if secret.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{} holds more than one line or control characters",
            path.display()
        ));
    }
    Ok(Secret(secret.to_owned()))
}

fn secret(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Got<Secret> {
    let got = w.nonempty(t, key);
    if w.reading_only {
        return w.check(t, key, got, |s| Ok(Secret::unread(Path::new(s))));
    }
    w.check(t, key, got, |s| read_secret(Path::new(s)))
}

fn strings(w: &mut Walker<'_>, t: &Tbl<'_, '_>, key: &str) -> Result<Vec<At<String>>, Reported> {
    let items = w.array(t, key, "an array of strings")?;
    let mut out = Vec::new();
    let mut failed = None;
    for (path, v) in items {
        match v.get_ref() {
            toml::de::DeValue::String(s) => out.push(At {
                value: s.to_string(),
                span: v.span(),
            }),
            _ => failed = Some(w.wrong_type(path, v, "a string")),
        }
    }
    match failed {
        Some(r) => Err(r),
        None => Ok(out),
    }
}

fn hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn channel(w: &mut Walker<'_>, t: &Tbl<'_, '_>, groups: &[String]) -> Option<NotifyChannel> {
    w.check_keys(t, KEYS);
    let name = channel_name(w, t);
    let kind = channel_kind(w, t);
    let events = channel_events(w, t);
    let chosen_groups = channel_groups(w, t, groups);
    let delivery = delivery(w, t);

    let kind = kind.ok()?;
    let specific = kind_settings(w, t, &kind.value);
    reject_foreign_keys(w, t, &kind.value);
    let delivery = delivery?;
    Some(NotifyChannel {
        name: name.ok()?.value,
        kind: specific?,
        events: events.ok()?,
        groups: chosen_groups.ok()?,
        min_duration: delivery.min_duration,
        quiet_hours: delivery.quiet_hours,
        rate_limit: delivery.rate_limit,
        rate_window: delivery.rate_window,
        max_queue: delivery.max_queue,
        max_age: delivery.max_age,
        retry_max: delivery.retry_max,
        timeout: delivery.timeout,
    })
}

/// `name`: required, and safe as a file name in data_dir.
fn channel_name(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Need<String> {
    let name = w.nonempty(t, "name");
    let name = w.check(t, "name", name, |s| {
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.len() <= 64
        {
            Ok(s.clone())
        } else {
            Err(format!(
                "`name` ({}) may hold only letters, digits, '-', '_' and '.' (at most 64): it names a file in data_dir",
                shown(s)
            ))
        }
    });
    w.missing(t, "name", name)
}

/// `kind`: required, one of the four channel kinds.
fn channel_kind(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Need<String> {
    let kind = w.string(t, "kind");
    let kind = w.check(t, "kind", kind, |s| match s.as_str() {
        "webhook" | "ntfy" | "telegram" | "email" => Ok(s.clone()),
        _ => Err(format!(
            "`kind` ({}) must be one of webhook, ntfy, telegram, email",
            shown(s)
        )),
    });
    w.missing(t, "kind", kind)
}

/// `events`: the default set when absent; every unknown name is reported.
fn channel_events(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Result<Vec<NotifyEvent>, Reported> {
    match t.get("events") {
        None => Ok(DEFAULT_EVENTS.to_vec()),
        Some(_) => strings(w, t, "events").and_then(|items| {
            let mut out = Vec::new();
            let mut failed = None;
            for item in items {
                match NotifyEvent::parse(&item.value) {
                    Some(e) => out.push(e),
                    None => {
                        let valid: Vec<&str> =
                            NotifyEvent::ALL.iter().map(|e| e.as_str()).collect();
                        let message = format!(
                            "unknown event ({}); valid events: {}",
                            shown(&item.value),
                            valid.join(", ")
                        );
                        failed = Some(w.report(item.span, t.key("events"), message));
                    }
                }
            }
            match failed {
                Some(r) => Err(r),
                None => Ok(out),
            }
        }),
    }
}

/// `groups`: each must be defined by a `[[group]]`.
fn channel_groups(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    groups: &[String],
) -> Result<Vec<String>, Reported> {
    strings(w, t, "groups").and_then(|items| {
        let mut failed = None;
        for item in &items {
            if !groups.contains(&item.value) {
                let message = format!(
                    "group ({}) is not defined by any [[group]]",
                    shown(&item.value)
                );
                failed = Some(w.report(item.span.clone(), t.key("groups"), message));
            }
        }
        match failed {
            Some(r) => Err(r),
            None => Ok(items.into_iter().map(|i| i.value).collect::<Vec<_>>()),
        }
    })
}

/// The kind-independent delivery settings of a channel, defaults applied.
struct Delivery {
    min_duration: Duration,
    quiet_hours: Option<QuietHours>,
    rate_limit: u32,
    rate_window: Duration,
    max_queue: u32,
    max_age: Duration,
    retry_max: Duration,
    timeout: Duration,
}

/// Reads (and reports on) every delivery setting before giving up on any,
/// so one bad value does not hide the next.
fn delivery(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<Delivery> {
    let min_duration = w.duration_with(t, "min_duration", |_, _| Ok(()));
    let quiet = w.string(t, "quiet_hours");
    let quiet = w.check(t, "quiet_hours", quiet, |s| {
        let parsed = s
            .split_once('-')
            .and_then(|(a, b)| Some((hhmm(a.trim())?, hhmm(b.trim())?)));
        match parsed {
            Some((from, to)) if from != to => Ok(QuietHours { from, to }),
            _ => Err(format!(
                "`quiet_hours` ({}) must be \"HH:MM-HH:MM\" in local time (e.g. \"22:00-07:00\"), two different times",
                shown(s)
            )),
        }
    });
    let rate_limit = w.integer(t, "rate_limit", 1, 10_000);
    let rate_window = w.duration_with(t, "rate_window", |d, s| {
        if d >= Duration::from_secs(1) {
            Ok(())
        } else {
            Err(format!("`rate_window` ({s}) must be at least 1s"))
        }
    });
    let max_queue = w.integer(t, "max_queue", 2, 1_000_000);
    let max_age = w.duration_with(t, "max_age", |d, s| {
        if d >= Duration::from_secs(60) {
            Ok(())
        } else {
            Err(format!("`max_age` ({s}) must be at least 1m"))
        }
    });
    let retry_max = w.duration_with(t, "retry_max", |d, s| {
        if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
            Ok(())
        } else {
            Err(format!("`retry_max` ({s}) must be in the range 1s..=1h"))
        }
    });
    let timeout = w.duration_with(t, "timeout", |d, s| {
        if (Duration::from_millis(100)..=Duration::from_secs(120)).contains(&d) {
            Ok(())
        } else {
            Err(format!("`timeout` ({s}) must be in the range 100ms..=2m"))
        }
    });
    Some(Delivery {
        min_duration: min_duration.ok()?.map_or(Duration::ZERO, |d| d.value),
        quiet_hours: quiet.ok()?.map(|q| q.value),
        rate_limit: rate_limit.ok()?.map_or(10, |v| v.value as u32),
        rate_window: rate_window
            .ok()?
            .map_or(Duration::from_secs(3600), |v| v.value),
        max_queue: max_queue.ok()?.map_or(1000, |v| v.value as u32),
        max_age: max_age
            .ok()?
            .map_or(Duration::from_secs(7 * 86_400), |v| v.value),
        retry_max: retry_max.ok()?.map_or(Duration::from_secs(60), |v| v.value),
        timeout: timeout.ok()?.map_or(Duration::from_secs(10), |v| v.value),
    })
}

/// The keys that belong to one kind of channel or another (the rest of
/// [`KEYS`] applies to every channel).
const KIND_KEYS: &[&str] = &[
    "url",
    "alertmanager",
    "token_file",
    "api_url",
    "chat_id",
    "smtp_host",
    "smtp_port",
    "security",
    "from",
    "to",
    "username",
    "password_file",
    "ca_file",
];

/// The kind-specific keys a channel of `kind` takes.
fn own_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["url", "alertmanager", "token_file"],
        "ntfy" => &["url", "token_file"],
        "telegram" => &["token_file", "api_url", "chat_id"],
        _ => &[
            "smtp_host",
            "smtp_port",
            "security",
            "from",
            "to",
            "username",
            "password_file",
            "ca_file",
        ],
    }
}

/// Reports every key that belongs to another kind of channel.
fn reject_foreign_keys(w: &mut Walker<'_>, t: &Tbl<'_, '_>, kind: &str) {
    let own = own_keys(kind);
    for key in KIND_KEYS.iter().filter(|k| !own.contains(k)) {
        if let Some(v) = t.get(key) {
            let message = format!("`{key}` does not apply to kind = \"{}\"", shown(kind));
            w.report(v.span(), t.key(key), message);
        }
    }
}

fn kind_settings(w: &mut Walker<'_>, t: &Tbl<'_, '_>, kind: &str) -> Option<ChannelKind> {
    match kind {
        "webhook" => {
            let u = url(w, t, "url");
            let u = w.missing(t, "url", u);
            let alertmanager = w.boolean(t, "alertmanager");
            let token = secret(w, t, "token_file");
            Some(ChannelKind::Webhook {
                url: u.ok()?.value,
                alertmanager: alertmanager.ok()?.is_some_and(|b| b.value),
                token: token.ok()?.map(|s| s.value),
            })
        }
        "ntfy" => {
            let u = url(w, t, "url");
            let u = w.missing(t, "url", u);
            let token = secret(w, t, "token_file");
            Some(ChannelKind::Ntfy {
                url: u.ok()?.value,
                token: token.ok()?.map(|s| s.value),
            })
        }
        "telegram" => {
            let api = url(w, t, "api_url");
            let chat = w.nonempty(t, "chat_id");
            let chat = w.missing(t, "chat_id", chat);
            let token = secret(w, t, "token_file");
            let token = w.missing(t, "token_file", token);
            let api_url = match api.ok()? {
                Some(a) => a.value,
                None => Url::parse("https://api.telegram.org").ok()?,
            };
            Some(ChannelKind::Telegram {
                api_url,
                chat_id: chat.ok()?.value,
                token: token.ok()?.value,
            })
        }
        _ => {
            let host = w.nonempty(t, "smtp_host");
            let host = w.missing(t, "smtp_host", host);
            let security = w.string(t, "security");
            let security = w.check(t, "security", security, |s| match s.as_str() {
                "starttls" => Ok(SmtpSecurity::Starttls),
                "tls" => Ok(SmtpSecurity::Tls),
                "none" => Ok(SmtpSecurity::None),
                _ => Err(format!(
                    "`security` ({}) must be \"starttls\", \"tls\" or \"none\"",
                    shown(s)
                )),
            });
            let port = w.integer(t, "smtp_port", 1, 65_535);
            let from = w.nonempty(t, "from");
            let from = w.check(t, "from", from, |s| address(s, "from"));
            let from = w.missing(t, "from", from);
            let to = strings(w, t, "to").and_then(|items| {
                if items.is_empty() {
                    let span = t.get("to").map_or(t.span.clone(), |v| v.span());
                    return Err(w.report(
                        span,
                        t.key("to"),
                        "`to` must list at least one address".into(),
                    ));
                }
                let mut out = Vec::new();
                let mut failed = None;
                for i in items {
                    match address(&i.value, "to") {
                        Ok(a) => out.push(a),
                        Err(m) => failed = Some(w.report(i.span, t.key("to"), m)),
                    }
                }
                match failed {
                    Some(r) => Err(r),
                    None => Ok(out),
                }
            });
            let username = w.nonempty(t, "username");
            let password = secret(w, t, "password_file");
            let ca_file = w.nonempty(t, "ca_file");
            let security = security.ok()?.map_or(SmtpSecurity::Starttls, |s| s.value);
            let default_port = match security {
                SmtpSecurity::Tls => 465,
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::None => 25,
            };
            Some(ChannelKind::Email {
                smtp_host: host.ok()?.value,
                smtp_port: port.ok()?.map_or(default_port, |p| p.value as u16),
                security,
                from: from.ok()?.value,
                to: to.ok()?,
                username: username.ok()?.map(|u| u.value),
                password: password.ok()?.map(|p| p.value),
                ca_file: ca_file.ok()?.map(|c| PathBuf::from(c.value)),
            })
        }
    }
}

fn address(s: &str, key: &str) -> Result<String, String> {
    match s.parse::<lettre::Address>() {
        Ok(_) => Ok(s.to_owned()),
        Err(e) => Err(format!(
            "`{key}` ({}) is not an e-mail address: {e}",
            shown(s)
        )),
    }
}
