//! Turns configuration text into a validated [`Config`], reporting every
//! problem at once with file, line, column and key.
//!
//! The text is parsed into toml's spanned document tree, which is then walked
//! by hand instead of through serde so that one bad value does not hide the
//! next: each rule records its problem and the walk goes on.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use url::Url;

use super::model::{
    BodyMatch, Config, DaemonConfig, Defaults, DnsServer, DnsSpec, DnsTransport, DownWhen, Group,
    Host, HttpMethod, HttpSpec, IcmpSpec, IpVersion, Kind, LogFormat, Target, TargetSpec, TcpSpec,
};
use super::validate::{self, LineIndex};
use super::{RCODES, RECORD_TYPES};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file path, or the source name given to [`parse`].
    pub file: String,
    /// 1-based line; 0 when the problem is not at a position (unreadable file).
    pub line: usize,
    /// 1-based column in characters; 0 when `line` is 0.
    pub column: usize,
    /// Dotted path of the offending key (`target[2].port`); empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " key `{}`:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no problem was recorded (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One problem per line followed by a count, ready for stderr.
    pub fn render(&self) -> String {
        let n = self.0.len();
        format!(
            "{self}\n{n} problem{} found\n",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("failed to read the configuration file: {e}"),
        }])),
    }
}

/// Validates configuration `text`; `source` names it in errors and in [`Config::source`].
pub fn parse(text: &str, source: &str) -> Result<Config, ConfigErrors> {
    let index = LineIndex::new(text);
    let error = |span: &Span, key: String, message: String| {
        let (line, column) = index.position(span.start);
        ConfigError {
            file: source.to_owned(),
            line,
            column,
            key,
            message,
        }
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = format!("invalid TOML: {}", e.message().trim_end());
            return Err(ConfigErrors(vec![error(&span, String::new(), message)]));
        }
    };
    let mut walker = Walker {
        text,
        index: &index,
        problems: Vec::new(),
    };
    let built = walker.document(root.get_ref());
    let mut problems = walker.problems;
    match built {
        Some(mut config) if problems.is_empty() => {
            config.source = source.to_owned();
            config.digest = hex_sha256(text);
            return Ok(config);
        }
        Some(_) => {}
        None if !problems.is_empty() => {}
        None => problems.push(Problem {
            span: 0..0,
            key: String::new(),
            message: "internal error: the configuration was rejected without a reason".into(),
        }),
    }
    problems.sort_by_key(|p| p.span.start);
    Err(ConfigErrors(
        problems
            .into_iter()
            .map(|p| error(&p.span, p.key, p.message))
            .collect(),
    ))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ROOT_KEYS: &[&str] = &["daemon", "defaults", "group", "target"];
const DAEMON_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "log_format",
    "max_concurrency",
    "allow_symlinks",
];
const DEFAULTS_KEYS: &[&str] = &["interval", "timeout", "fail_after", "recover_after"];
const GROUP_KEYS: &[&str] = &["name", "needs", "down_when"];
const TARGET_KEYS: &[&str] = &[
    "name",
    "group",
    "kind",
    "interval",
    "timeout",
    "fail_after",
    "recover_after",
];
const ICMP_KEYS: &[&str] = &["host", "ip_version", "payload_size"];
const TCP_KEYS: &[&str] = &["host", "port", "ip_version"];
const HTTP_KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "expect_status",
    "body_contains",
    "body_regex",
    "follow_redirects",
    "ip_version",
    "max_body",
    "ca_file",
    "tls_verify",
];
const DNS_KEYS: &[&str] = &[
    "server",
    "query",
    "record",
    "transport",
    "tls_name",
    "expect_rcode",
    "expect",
    "min_answers",
    "ca_file",
];

fn kind_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Icmp => ICMP_KEYS,
        Kind::Tcp => TCP_KEYS,
        Kind::Http => HTTP_KEYS,
        Kind::Dns => DNS_KEYS,
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:9898";
const DEFAULT_DATA_DIR: &str = "/var/lib/linkwatch";
const DEFAULT_MAX_CONCURRENCY: i64 = 1024;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_FAIL_AFTER: i64 = 3;
const DEFAULT_RECOVER_AFTER: i64 = 2;
const MAX_STREAK: i64 = 10_000;
const DEFAULT_PAYLOAD_SIZE: i64 = 56;
const MAX_PAYLOAD_SIZE: i64 = 65_000;
const DEFAULT_MAX_BODY: i64 = 1024 * 1024;
const MAX_MAX_BODY: i64 = 64 * 1024 * 1024;
const MAX_REDIRECTS: i64 = 10;
const MAX_NAME_LEN: usize = 128;

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

struct Problem {
    span: Span,
    key: String,
    message: String,
}

/// Marker that a problem has been recorded; the value it stands for is unusable.
#[derive(Debug, Clone, Copy)]
struct Reported;

/// A value with the span of the text it came from.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    span: Span,
}

/// An optional key: absent, present and valid, or reported.
type Got<T> = Result<Option<At<T>>, Reported>;
/// A required key, or a value with a default: valid, or reported.
type Need<T> = Result<At<T>, Reported>;

/// A TOML table with its span and dotted path (empty for the document root).
struct Tbl<'a, 'i> {
    map: &'a DeTable<'i>,
    span: Span,
    path: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.map.get(key)
    }
}

/// Where an effective interval or timeout came from, for messages.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Target,
    Defaults,
    BuiltIn,
}

impl Origin {
    fn suffix(self) -> &'static str {
        match self {
            Origin::Target => "",
            Origin::Defaults => ", from [defaults]",
            Origin::BuiltIn => ", the built-in default",
        }
    }
}

/// `[defaults]` as far as it is valid: `Err` values are reported and unusable.
struct DefaultsDraft {
    interval: Result<(Duration, Origin), Reported>,
    timeout: Result<(Duration, Origin), Reported>,
    fail_after: Result<u32, Reported>,
    recover_after: Result<u32, Reported>,
}

struct GroupDraft {
    name: Need<String>,
    needs: Got<String>,
    down_when: Got<DownWhen>,
}

struct TargetDraft {
    name: Need<String>,
    group: Need<String>,
    target: Option<Target>,
}

struct Walker<'t> {
    text: &'t str,
    index: &'t LineIndex<'t>,
    problems: Vec<Problem>,
}

impl<'t> Walker<'t> {
    fn report(&mut self, span: Span, key: String, message: String) -> Reported {
        self.problems.push(Problem { span, key, message });
        Reported
    }

    /// The source text of a value, on one line and shortened, for messages.
    fn snippet(&self, span: &Span) -> String {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let line = raw.lines().next().unwrap_or("");
        if line.chars().count() > 40 || line.len() < raw.trim_end().len() {
            let short: String = line.chars().take(40).collect();
            format!("{short}…")
        } else {
            line.to_owned()
        }
    }

    fn line_of(&self, span: &Span) -> usize {
        self.index.position(span.start).0
    }

    fn wrong_type(&mut self, key: String, v: &Value<'_>, expected: &str) -> Reported {
        let found = v.get_ref().type_str();
        let message = format!(
            "expected {expected}, found {found} `{}`",
            self.snippet(&v.span())
        );
        self.report(v.span(), key, message)
    }

    fn missing<T>(&mut self, t: &Tbl<'_, '_>, key: &str, got: Got<T>) -> Need<T> {
        match got {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.report(
                t.span.clone(),
                t.key(key),
                format!("missing required key `{key}`"),
            )),
            Err(r) => Err(r),
        }
    }

    /// Reports every key of `t` that is not in `allowed`.
    fn check_keys(&mut self, t: &Tbl<'_, '_>, allowed: &[&str]) {
        for (k, _) in t.map.iter() {
            let key: &str = k.get_ref();
            if !allowed.contains(&key) {
                let message = format!(
                    "unknown key `{}`; valid keys: {}",
                    k.get_ref(),
                    allowed.join(", ")
                );
                self.report(k.span(), t.key(k.get_ref()), message);
            }
        }
    }

    /// Applies `check` to a present value and reports its error at the value.
    fn check<T, U>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        got: Got<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Got<U> {
        match got? {
            None => Ok(None),
            Some(At { value, span }) => match check(&value) {
                Ok(value) => Ok(Some(At { value, span })),
                Err(message) => Err(self.report(span, t.key(key), message)),
            },
        }
    }

    fn string_as(&mut self, t: &Tbl<'_, '_>, key: &str, expected: &str) -> Got<String> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::String(s) => Ok(Some(At {
                value: s.to_string(),
                span: v.span(),
            })),
            _ => Err(self.wrong_type(t.key(key), v, expected)),
        }
    }

    fn string(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<String> {
        self.string_as(t, key, "a string")
    }

    fn nonempty(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<String> {
        let got = self.string(t, key);
        self.check(t, key, got, |s| {
            if s.trim().is_empty() {
                Err(format!("`{key}` must not be empty"))
            } else {
                Ok(s.clone())
            }
        })
    }

    fn integer_value(&mut self, key: String, v: &Value<'_>, min: i64, max: i64) -> Need<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an integer"));
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (min..=max).contains(&n) => Ok(At {
                value: n,
                span: v.span(),
            }),
            _ => {
                let leaf = key.rsplit('.').next().unwrap_or(&key).to_owned();
                let message = format!(
                    "`{leaf}` ({}) must be in the range {min}..={max}",
                    self.snippet(&v.span())
                );
                Err(self.report(v.span(), key, message))
            }
        }
    }

    fn integer(&mut self, t: &Tbl<'_, '_>, key: &str, min: i64, max: i64) -> Got<i64> {
        match t.get(key) {
            None => Ok(None),
            Some(v) => self.integer_value(t.key(key), v, min, max).map(Some),
        }
    }

    fn boolean(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<bool> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(Some(At {
                value: *b,
                span: v.span(),
            })),
            _ => Err(self.wrong_type(t.key(key), v, "a boolean (true or false)")),
        }
    }

    /// A duration key; `bounds` gets the value and the text as written.
    fn duration_with(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        bounds: impl FnOnce(Duration, &str) -> Result<(), String>,
    ) -> Got<Duration> {
        let got = self.string_as(t, key, "a duration string such as \"5s\"");
        self.check(t, key, got, |s| {
            let d = validate::duration(s).map_err(|reason| {
                format!(
                    "`{key}` ({s}) is not a valid duration ({reason}); \
                     write e.g. \"500ms\", \"5s\" or \"1m\""
                )
            })?;
            bounds(d, s).map(|()| d)
        })
    }

    fn interval(&mut self, t: &Tbl<'_, '_>) -> Got<Duration> {
        self.duration_with(t, "interval", |d, s| {
            if validate::interval_in_range(d) {
                Ok(())
            } else {
                Err(format!("`interval` ({s}) must be in the range 100ms..=24h"))
            }
        })
    }

    fn timeout(&mut self, t: &Tbl<'_, '_>) -> Got<Duration> {
        self.duration_with(t, "timeout", |d, s| {
            if d.is_zero() {
                Err(format!("`timeout` ({s}) must be greater than zero"))
            } else {
                Ok(())
            }
        })
    }

    fn table<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
    ) -> Result<Option<Tbl<'a, 'i>>, Reported> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Table(map) => Ok(Some(Tbl {
                map,
                span: v.span(),
                path: t.key(key),
            })),
            _ => Err(self.wrong_type(t.key(key), v, &format!("a table ([{key}])"))),
        }
    }

    fn array_of_tables<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
    ) -> Vec<Result<Tbl<'a, 'i>, Reported>> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            let expected = format!("an array of tables ([[{key}]])");
            return vec![Err(self.wrong_type(t.key(key), v, &expected))];
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{}[{i}]", t.key(key));
                match item.get_ref() {
                    DeValue::Table(map) => Ok(Tbl {
                        map,
                        span: item.span(),
                        path,
                    }),
                    _ => Err(self.wrong_type(path, item, &format!("a table ([[{key}]])"))),
                }
            })
            .collect()
    }

    fn document(&mut self, root: &DeTable<'_>) -> Option<Config> {
        let root = Tbl {
            map: root,
            span: 0..0,
            path: String::new(),
        };
        self.check_keys(&root, ROOT_KEYS);
        let daemon = self.daemon(&root);
        let defaults = self.defaults(&root);
        let groups: Vec<GroupDraft> = self
            .array_of_tables(&root, "group")
            .into_iter()
            .filter_map(Result::ok)
            .map(|t| self.group(&t))
            .collect();
        let target_tables = self.array_of_tables(&root, "target");
        if target_tables.is_empty() {
            self.report(
                0..0,
                "target".into(),
                "no [[target]] is defined; at least one is required".into(),
            );
        }
        let targets: Vec<Result<TargetDraft, Reported>> = target_tables
            .into_iter()
            .map(|t| t.map(|t| self.target(&t, &defaults)))
            .collect();
        self.check_graph(&groups, &targets);

        let daemon = daemon?;
        let defaults = Defaults {
            interval: defaults.interval.ok()?.0,
            timeout: defaults.timeout.ok()?.0,
            fail_after: defaults.fail_after.ok()?,
            recover_after: defaults.recover_after.ok()?,
        };
        let groups = groups
            .into_iter()
            .map(|g| {
                Some(Group {
                    name: g.name.ok()?.value,
                    needs: g.needs.ok()?.map(|n| n.value),
                    down_when: g.down_when.ok()?.map_or(DownWhen::All, |d| d.value),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let targets = targets
            .into_iter()
            .map(|t| t.ok()?.target)
            .collect::<Option<Vec<_>>>()?;
        Some(Config {
            source: String::new(),
            digest: String::new(),
            daemon,
            defaults,
            groups,
            targets,
        })
    }

    fn daemon(&mut self, root: &Tbl<'_, '_>) -> Option<DaemonConfig> {
        let empty = DeTable::new();
        let t = match self.table(root, "daemon") {
            Ok(Some(t)) => t,
            Ok(None) => Tbl {
                map: &empty,
                span: 0..0,
                path: "daemon".into(),
            },
            Err(_) => return None,
        };
        self.check_keys(&t, DAEMON_KEYS);
        let listen = self.string(&t, "listen");
        let listen = self.check(&t, "listen", listen, |s| {
            s.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "`listen` ({s}) must be an IP address and a port, \
                     e.g. \"127.0.0.1:9898\" or \"[::1]:9898\""
                )
            })
        });
        let data_dir = self.nonempty(&t, "data_dir");
        let log_format = self.string(&t, "log_format");
        let log_format = self.check(&t, "log_format", log_format, |s| match s.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`log_format` ({s}) must be \"text\" or \"json\"")),
        });
        let max_concurrency = self.integer(&t, "max_concurrency", 1, 1_000_000);
        let allow_symlinks = self.boolean(&t, "allow_symlinks");
        let default_listen = DEFAULT_LISTEN.parse::<SocketAddr>().ok()?;
        Some(DaemonConfig {
            listen: listen.ok()?.map_or(default_listen, |v| v.value),
            data_dir: PathBuf::from(
                data_dir
                    .ok()?
                    .map_or_else(|| DEFAULT_DATA_DIR.to_owned(), |v| v.value),
            ),
            log_format: log_format.ok()?.map_or(LogFormat::Text, |v| v.value),
            max_concurrency: max_concurrency
                .ok()?
                .map_or(DEFAULT_MAX_CONCURRENCY, |v| v.value) as usize,
            allow_symlinks: allow_symlinks.ok()?.is_some_and(|v| v.value),
        })
    }

    fn defaults(&mut self, root: &Tbl<'_, '_>) -> DefaultsDraft {
        let empty = DeTable::new();
        let t = match self.table(root, "defaults") {
            Ok(Some(t)) => t,
            Ok(None) => Tbl {
                map: &empty,
                span: 0..0,
                path: "defaults".into(),
            },
            Err(r) => {
                return DefaultsDraft {
                    interval: Err(r),
                    timeout: Err(r),
                    fail_after: Err(r),
                    recover_after: Err(r),
                };
            }
        };
        self.check_keys(&t, DEFAULTS_KEYS);
        let interval = self.interval(&t);
        let timeout = self.timeout(&t);
        let fail_after = self.integer(&t, "fail_after", 1, MAX_STREAK);
        let recover_after = self.integer(&t, "recover_after", 1, MAX_STREAK);
        let with_origin = |got: Got<Duration>, default| {
            got.map(|v| v.map_or((default, Origin::BuiltIn), |v| (v.value, Origin::Defaults)))
        };
        let mut draft = DefaultsDraft {
            interval: with_origin(interval.clone(), DEFAULT_INTERVAL),
            timeout: with_origin(timeout.clone(), DEFAULT_TIMEOUT),
            fail_after: fail_after.map(|v| v.map_or(DEFAULT_FAIL_AFTER, |v| v.value) as u32),
            recover_after: recover_after
                .map(|v| v.map_or(DEFAULT_RECOVER_AFTER, |v| v.value) as u32),
        };
        if let (Ok((i, io)), Ok((to, tio))) = (draft.interval, draft.timeout)
            && to >= i
        {
            // Point at whichever of the two the user wrote, the timeout first.
            let (key, span) = match (&timeout, &interval) {
                (Ok(Some(v)), _) => ("timeout", v.span.clone()),
                (_, Ok(Some(v))) => ("interval", v.span.clone()),
                _ => ("timeout", t.span.clone()),
            };
            // Both values are this table's own (or built in): no "from [defaults]".
            let local = |o| {
                if o == Origin::Defaults {
                    Origin::Target
                } else {
                    o
                }
            };
            let message = timing_message(to, local(tio), i, local(io));
            draft.timeout = Err(self.report(span, t.key(key), message));
        }
        draft
    }

    fn group(&mut self, t: &Tbl<'_, '_>) -> GroupDraft {
        self.check_keys(t, GROUP_KEYS);
        let name = self.name(t);
        let needs = self.nonempty(t, "needs");
        let down_when = match t.get("down_when") {
            None => Ok(None),
            Some(v) => {
                let key = t.key("down_when");
                let message = |shown: &str| {
                    format!(
                        "`down_when` ({shown}) must be \"all\", \"any\" \
                         or a number of targets (1 or more)"
                    )
                };
                match v.get_ref() {
                    DeValue::String(s) => match s.as_ref() {
                        "all" => Ok(Some(At {
                            value: DownWhen::All,
                            span: v.span(),
                        })),
                        "any" => Ok(Some(At {
                            value: DownWhen::Any,
                            span: v.span(),
                        })),
                        other => Err(self.report(v.span(), key, message(other))),
                    },
                    DeValue::Integer(i) => {
                        match i64::from_str_radix(i.as_str(), i.radix())
                            .ok()
                            .and_then(|n| u32::try_from(n).ok())
                        {
                            Some(n) if n >= 1 => Ok(Some(At {
                                value: DownWhen::AtLeast(n),
                                span: v.span(),
                            })),
                            _ => {
                                let shown = self.snippet(&v.span());
                                Err(self.report(v.span(), key, message(&shown)))
                            }
                        }
                    }
                    _ => Err(self.wrong_type(key, v, "\"all\", \"any\" or an integer")),
                }
            }
        };
        GroupDraft {
            name,
            needs,
            down_when,
        }
    }

    /// A group or target name.
    fn name(&mut self, t: &Tbl<'_, '_>) -> Need<String> {
        let got = self.string(t, "name");
        let got = self.check(t, "name", got, |s| {
            if s.is_empty() {
                Err("`name` must not be empty".to_owned())
            } else if s.trim() != s {
                Err(format!(
                    "`name` ({s}) must not start or end with whitespace"
                ))
            } else if s.chars().any(char::is_control) {
                Err(format!(
                    "`name` ({}) must not contain control characters",
                    s.escape_debug()
                ))
            } else if s.chars().count() > MAX_NAME_LEN {
                Err(format!(
                    "`name` ({s}) is longer than {MAX_NAME_LEN} characters"
                ))
            } else {
                Ok(s.clone())
            }
        });
        self.missing(t, "name", got)
    }

    fn target(&mut self, t: &Tbl<'_, '_>, defaults: &DefaultsDraft) -> TargetDraft {
        let kind = self.string(t, "kind");
        let kind = self.check(t, "kind", kind, |s| match s.as_str() {
            "icmp" => Ok(Kind::Icmp),
            "tcp" => Ok(Kind::Tcp),
            "http" => Ok(Kind::Http),
            "dns" => Ok(Kind::Dns),
            _ => Err(format!("`kind` ({s}) must be one of icmp, tcp, http, dns")),
        });
        let kind = self.missing(t, "kind", kind);
        self.check_target_keys(t, kind.as_ref().ok().map(|k| k.value));
        let name = self.name(t);
        let group = self.nonempty(t, "group");
        let group = self.missing(t, "group", group);
        let interval = self.interval(t);
        let timeout = self.timeout(t);
        let fail_after = self.integer(t, "fail_after", 1, MAX_STREAK);
        let recover_after = self.integer(t, "recover_after", 1, MAX_STREAK);

        // Check the effective pair when the target sets either half; a pair
        // taken whole from [defaults] was checked there.
        let eff_interval = match &interval {
            Ok(Some(v)) => Ok((v.value, Origin::Target)),
            Ok(None) => defaults.interval,
            Err(r) => Err(*r),
        };
        let eff_timeout = match &timeout {
            Ok(Some(v)) => Ok((v.value, Origin::Target)),
            Ok(None) => defaults.timeout,
            Err(r) => Err(*r),
        };
        let mut timing_ok = eff_interval.is_ok() && eff_timeout.is_ok();
        if let (Ok((i, io)), Ok((to, tio))) = (eff_interval, eff_timeout)
            && to >= i
            && (io == Origin::Target || tio == Origin::Target)
        {
            let (key, span) = match (&timeout, &interval) {
                (Ok(Some(v)), _) => ("timeout", v.span.clone()),
                (_, Ok(Some(v))) => ("interval", v.span.clone()),
                _ => ("timeout", t.span.clone()),
            };
            self.report(span, t.key(key), timing_message(to, tio, i, io));
            timing_ok = false;
        }

        let spec = match &kind {
            Ok(k) => match k.value {
                Kind::Icmp => self.icmp(t).map(TargetSpec::Icmp),
                Kind::Tcp => self.tcp(t).map(TargetSpec::Tcp),
                Kind::Http => self.http(t).map(TargetSpec::Http),
                Kind::Dns => self.dns(t).map(TargetSpec::Dns),
            },
            Err(_) => None,
        };

        let target = (|| {
            if !timing_ok {
                return None;
            }
            Some(Target {
                name: name.as_ref().ok()?.value.clone(),
                group: group.as_ref().ok()?.value.clone(),
                interval: eff_interval.ok()?.0,
                timeout: eff_timeout.ok()?.0,
                fail_after: match fail_after.ok()? {
                    Some(v) => v.value as u32,
                    None => defaults.fail_after.ok()?,
                },
                recover_after: match recover_after.ok()? {
                    Some(v) => v.value as u32,
                    None => defaults.recover_after.ok()?,
                },
                spec: spec?,
            })
        })();
        TargetDraft {
            name,
            group,
            target,
        }
    }

    fn check_target_keys(&mut self, t: &Tbl<'_, '_>, kind: Option<Kind>) {
        for (k, _) in t.map.iter() {
            let key: &str = k.get_ref();
            if TARGET_KEYS.contains(&key) {
                continue;
            }
            let in_some_kind = Kind::ALL.iter().any(|&k| kind_keys(k).contains(&key));
            let message = match kind {
                Some(kind) if kind_keys(kind).contains(&key) => continue,
                None if in_some_kind => continue,
                Some(kind) => {
                    let valid = [TARGET_KEYS, kind_keys(kind)].concat().join(", ");
                    if in_some_kind {
                        format!("key `{key}` is not valid for kind `{kind}`; valid keys: {valid}")
                    } else {
                        format!("unknown key `{key}`; valid keys for kind `{kind}`: {valid}")
                    }
                }
                None => format!(
                    "unknown key `{key}`; valid keys: {} and the keys of the target's kind",
                    TARGET_KEYS.join(", ")
                ),
            };
            self.report(k.span(), t.key(key), message);
        }
    }

    fn host(&mut self, t: &Tbl<'_, '_>) -> Need<Host> {
        let got = self.string(t, "host");
        let got = self.check(t, "host", got, |s| {
            validate::host(s).map_err(|reason| {
                format!(
                    "`host` ({s}) must be an IPv4 address, an IPv6 address, \
                     a DNS name or \"@gateway\": {reason}"
                )
            })
        });
        self.missing(t, "host", got)
    }

    fn ip_version(&mut self, t: &Tbl<'_, '_>) -> Got<IpVersion> {
        let Some(v) = t.get("ip_version") else {
            return Ok(None);
        };
        let parsed = match v.get_ref() {
            DeValue::String(s) => match s.as_ref() {
                "4" => Some(IpVersion::V4),
                "6" => Some(IpVersion::V6),
                "any" => Some(IpVersion::Any),
                _ => None,
            },
            DeValue::Integer(i) => match (i.as_str(), i.radix()) {
                ("4", 10) => Some(IpVersion::V4),
                ("6", 10) => Some(IpVersion::V6),
                _ => None,
            },
            _ => {
                return Err(self.wrong_type(t.key("ip_version"), v, "4, 6 or \"any\""));
            }
        };
        match parsed {
            Some(value) => Ok(Some(At {
                value,
                span: v.span(),
            })),
            None => {
                let shown = match v.get_ref().as_str() {
                    Some(s) => s.to_owned(),
                    None => self.snippet(&v.span()),
                };
                let message = format!("`ip_version` ({shown}) must be 4, 6 or \"any\"");
                Err(self.report(v.span(), t.key("ip_version"), message))
            }
        }
    }

    /// Reports an `ip_version` that an IP literal host contradicts.
    fn check_family(
        &mut self,
        t: &Tbl<'_, '_>,
        ip: Option<IpAddr>,
        what: &str,
        version: &Got<IpVersion>,
    ) {
        let (Some(ip), Ok(Some(v))) = (ip, version) else {
            return;
        };
        let clash = match (ip, v.value) {
            (IpAddr::V4(_), IpVersion::V6) => Some(("6", "an IPv4")),
            (IpAddr::V6(_), IpVersion::V4) => Some(("4", "an IPv6")),
            _ => None,
        };
        if let Some((n, family)) = clash {
            let message = format!(
                "`ip_version` ({n}) contradicts `{what}` ({ip}), which is {family} address"
            );
            self.report(v.span.clone(), t.key("ip_version"), message);
        }
    }

    fn icmp(&mut self, t: &Tbl<'_, '_>) -> Option<IcmpSpec> {
        let host = self.host(t);
        let ip_version = self.ip_version(t);
        let payload_size = self.integer(t, "payload_size", 0, MAX_PAYLOAD_SIZE);
        let ip = literal_ip(&host);
        self.check_family(t, ip, "host", &ip_version);
        Some(IcmpSpec {
            host: host.ok()?.value,
            ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
            payload_size: payload_size.ok()?.map_or(DEFAULT_PAYLOAD_SIZE, |v| v.value) as usize,
        })
    }

    fn tcp(&mut self, t: &Tbl<'_, '_>) -> Option<TcpSpec> {
        let host = self.host(t);
        let port = self.integer(t, "port", 1, 65535);
        let port = self.missing(t, "port", port);
        let ip_version = self.ip_version(t);
        let ip = literal_ip(&host);
        self.check_family(t, ip, "host", &ip_version);
        Some(TcpSpec {
            host: host.ok()?.value,
            port: u16::try_from(port.ok()?.value).ok()?,
            ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
        })
    }

    fn http(&mut self, t: &Tbl<'_, '_>) -> Option<HttpSpec> {
        let url = self.string(t, "url");
        let url = self.check(t, "url", url, |s| {
            let url = Url::parse(s).map_err(|e| format!("`url` ({s}) is not a valid URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "`url` ({s}) has scheme `{}`; only http and https are supported",
                    url.scheme()
                ));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`url` ({s}) has no host"));
            }
            Ok(url)
        });
        let url = self.missing(t, "url", url);
        let method = self.string(t, "method");
        let method = self.check(t, "method", method, |s| {
            match s.to_ascii_uppercase().as_str() {
                "GET" => Ok(HttpMethod::Get),
                "HEAD" => Ok(HttpMethod::Head),
                _ => Err(format!("`method` ({s}) must be \"GET\" or \"HEAD\"")),
            }
        });
        let headers = self.headers(t);
        let expect_status = self.expect_status(t);
        let body_contains = self.string(t, "body_contains");
        let body_contains = self.check(t, "body_contains", body_contains, |s| {
            if s.is_empty() {
                Err("`body_contains` must not be empty".to_owned())
            } else {
                Ok(BodyMatch::Substring(s.clone()))
            }
        });
        let body_regex = self.string(t, "body_regex");
        let mut body_regex = self.check(t, "body_regex", body_regex, |s| {
            regex::Regex::new(s).map(BodyMatch::Regex).map_err(|e| {
                format!(
                    "`body_regex` ({s}) is not a valid regex: {}",
                    regex_reason(&e)
                )
            })
        });
        if let (Ok(Some(_)), Ok(Some(re))) = (&body_contains, &body_regex) {
            let r = self.report(
                re.span.clone(),
                t.key("body_regex"),
                "`body_contains` and `body_regex` cannot both be set; keep one".into(),
            );
            body_regex = Err(r);
        }
        let follow_redirects = self.integer(t, "follow_redirects", 0, MAX_REDIRECTS);
        let ip_version = self.ip_version(t);
        let max_body = self.integer(t, "max_body", 1, MAX_MAX_BODY);
        let ca_file = self.nonempty(t, "ca_file");
        let tls_verify = self.boolean(t, "tls_verify");
        let ip = match &url {
            Ok(u) => match u.value.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            },
            Err(_) => None,
        };
        self.check_family(t, ip, "url", &ip_version);
        let body_match = match (body_contains.ok()?, body_regex.ok()?) {
            (Some(m), _) | (None, Some(m)) => Some(m.value),
            (None, None) => None,
        };
        Some(HttpSpec {
            url: url.ok()?.value,
            method: method.ok()?.map_or(HttpMethod::Get, |v| v.value),
            headers: headers.ok()?,
            expect_status: expect_status.ok()?,
            body_match,
            follow_redirects: follow_redirects.ok()?.map_or(0, |v| v.value) as u8,
            ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
            max_body: max_body.ok()?.map_or(DEFAULT_MAX_BODY, |v| v.value) as u64,
            ca_file: ca_file.ok()?.map(|v| PathBuf::from(v.value)),
            tls_verify: tls_verify.ok()?.is_none_or(|v| v.value),
        })
    }

    fn headers(&mut self, t: &Tbl<'_, '_>) -> Result<Vec<(String, String)>, Reported> {
        let Some(h) = self.table(t, "headers")? else {
            return Ok(Vec::new());
        };
        let mut headers = Vec::new();
        let mut failed = None;
        for (k, v) in h.map.iter() {
            let name: &str = k.get_ref();
            let key = h.key(name);
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                let message = format!("header name `{name}` is not a valid HTTP header name");
                failed = Some(self.report(k.span(), key, message));
                continue;
            }
            let DeValue::String(value) = v.get_ref() else {
                failed = Some(self.wrong_type(key, v, "a string"));
                continue;
            };
            if http::HeaderValue::from_str(value).is_err() {
                let message = format!(
                    "header value `{}` contains characters not allowed in HTTP headers",
                    value.escape_debug()
                );
                failed = Some(self.report(v.span(), key, message));
                continue;
            }
            headers.push((name.to_owned(), value.to_string()));
        }
        match failed {
            Some(r) => Err(r),
            None => Ok(headers),
        }
    }

    fn expect_status(&mut self, t: &Tbl<'_, '_>) -> Result<Vec<u16>, Reported> {
        let Some(v) = t.get("expect_status") else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(t.key("expect_status"), v, "an array of status codes"));
        };
        let mut codes = Vec::new();
        let mut failed = None;
        for (i, item) in items.iter().enumerate() {
            let key = format!("{}[{i}]", t.key("expect_status"));
            match self.integer_value(key, item, 100, 599) {
                Ok(code) => codes.push(code.value as u16),
                Err(r) => failed = Some(r),
            }
        }
        match failed {
            Some(r) => Err(r),
            None => Ok(codes),
        }
    }

    fn dns(&mut self, t: &Tbl<'_, '_>) -> Option<DnsSpec> {
        let transport = self.string(t, "transport");
        let transport = self.check(t, "transport", transport, |s| match s.as_str() {
            "udp" => Ok(DnsTransport::Udp),
            "tcp" => Ok(DnsTransport::Tcp),
            "tls" => Ok(DnsTransport::Tls),
            "https" => Ok(DnsTransport::Https),
            _ => Err(format!(
                "`transport` ({s}) must be one of udp, tcp, tls, https"
            )),
        });
        let known_transport = match &transport {
            Ok(t) => Some(t.as_ref().map_or(DnsTransport::Udp, |v| v.value)),
            Err(_) => None,
        };
        let server = self.string(t, "server");
        let server: Need<DnsServer> = match (server, known_transport) {
            (Err(r), _) => Err(r),
            (Ok(_), None) => Err(Reported),
            (Ok(None), Some(tr @ (DnsTransport::Tls | DnsTransport::Https))) => {
                let example = if tr == DnsTransport::Https {
                    "a DoH URL such as \"https://cloudflare-dns.com/dns-query\""
                } else {
                    "an address such as \"1.1.1.1\" or \"dns.google:853\""
                };
                Err(self.report(
                    t.span.clone(),
                    t.key("server"),
                    format!(
                        "missing required key `server`: `transport = \"{}\"` needs {example}",
                        tr.as_str()
                    ),
                ))
            }
            (Ok(None), Some(_)) => Ok(At {
                value: DnsServer::System,
                span: 0..0,
            }),
            (Ok(Some(s)), Some(tr)) => {
                let got = self.check(t, "server", Ok(Some(s)), |s| dns_server(s, tr));
                match got {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(Reported),
                    Err(r) => Err(r),
                }
            }
        };
        let query = self.string(t, "query");
        let query = self.check(t, "query", query, |s| {
            validate::dns_name(s, false)
                .map(|()| s.clone())
                .map_err(|reason| format!("`query` ({s}) is not a valid DNS name: {reason}"))
        });
        let query = self.missing(t, "query", query);
        let record = self.string(t, "record");
        let record = self.check(t, "record", record, |s| {
            let upper = s.to_ascii_uppercase();
            if RECORD_TYPES.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(format!(
                    "`record` ({s}) is not a supported record type; supported: {}",
                    RECORD_TYPES.join(", ")
                ))
            }
        });
        let tls_name = self.string(t, "tls_name");
        let tls_name = self.check(t, "tls_name", tls_name, |s| match validate::host(s) {
            Ok(Host::Gateway) => Err(format!(
                "`tls_name` ({s}) must be a DNS name or an IP address"
            )),
            Ok(_) => Ok(s.clone()),
            Err(reason) => Err(format!(
                "`tls_name` ({s}) must be a DNS name or an IP address: {reason}"
            )),
        });
        let tls_name = self.only_with(
            t,
            "tls_name",
            tls_name,
            known_transport,
            &[DnsTransport::Tls],
        );
        let expect_rcode = self.string(t, "expect_rcode");
        let expect_rcode = self.check(t, "expect_rcode", expect_rcode, |s| {
            let upper = s.to_ascii_uppercase();
            if RCODES.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(format!(
                    "`expect_rcode` ({s}) is not a DNS response code; valid: {}",
                    RCODES.join(", ")
                ))
            }
        });
        let record_type = match &record {
            Ok(r) => Some(r.as_ref().map_or("A", |v| v.value.as_str()).to_owned()),
            Err(_) => None,
        };
        let expect = self.dns_expect(t, record_type.as_deref());
        let min_answers = self.integer(t, "min_answers", 0, 1000);
        let ca_file = self.nonempty(t, "ca_file");
        let ca_file = self.only_with(
            t,
            "ca_file",
            ca_file,
            known_transport,
            &[DnsTransport::Tls, DnsTransport::Https],
        );
        Some(DnsSpec {
            server: server.ok()?.value,
            query: query.ok()?.value,
            record: record.ok()?.map_or_else(|| "A".to_owned(), |v| v.value),
            transport: known_transport?,
            tls_name: tls_name.ok()?.map(|v| v.value),
            expect_rcode: expect_rcode
                .ok()?
                .map_or_else(|| "NOERROR".to_owned(), |v| v.value),
            expect: expect.ok()?,
            min_answers: min_answers.ok()?.map_or(0, |v| v.value) as u32,
            ca_file: ca_file.ok()?.map(|v| PathBuf::from(v.value)),
        })
    }

    /// Rejects a DNS key that only means something for some transports.
    fn only_with<T>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        got: Got<T>,
        transport: Option<DnsTransport>,
        allowed: &[DnsTransport],
    ) -> Got<T> {
        match (&got, transport) {
            (Ok(Some(v)), Some(tr)) if !allowed.contains(&tr) => {
                let names: Vec<String> = allowed
                    .iter()
                    .map(|a| format!("\"{}\"", a.as_str()))
                    .collect();
                let message = format!(
                    "`{key}` only applies with `transport = {}`, not \"{}\"",
                    names.join(" or "),
                    tr.as_str()
                );
                Err(self.report(v.span.clone(), t.key(key), message))
            }
            _ => got,
        }
    }

    fn dns_expect(
        &mut self,
        t: &Tbl<'_, '_>,
        record: Option<&str>,
    ) -> Result<Vec<String>, Reported> {
        let Some(v) = t.get("expect") else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(t.key("expect"), v, "an array of strings"));
        };
        let mut answers = Vec::new();
        let mut failed = None;
        for (i, item) in items.iter().enumerate() {
            let key = format!("{}[{i}]", t.key("expect"));
            let DeValue::String(s) = item.get_ref() else {
                failed = Some(self.wrong_type(key, item, "a string"));
                continue;
            };
            // Addresses are normalised so that the probe can compare them as text.
            let normalised = match record {
                Some("A") => s
                    .parse::<std::net::Ipv4Addr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        format!("`expect` ({s}) is not an IPv4 address, as an A record holds")
                    }),
                Some("AAAA") => s
                    .parse::<std::net::Ipv6Addr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        format!("`expect` ({s}) is not an IPv6 address, as an AAAA record holds")
                    }),
                _ if s.trim().is_empty() => Err("`expect` entries must not be empty".to_owned()),
                _ => Ok(s.to_string()),
            };
            match normalised {
                Ok(a) => answers.push(a),
                Err(message) => failed = Some(self.report(item.span(), key, message)),
            }
        }
        match failed {
            Some(r) => Err(r),
            None => Ok(answers),
        }
    }

    /// Names, group references, `needs` references and cycles, `down_when` counts.
    fn check_graph(&mut self, groups: &[GroupDraft], targets: &[Result<TargetDraft, Reported>]) {
        let mut group_index: HashMap<&str, (usize, Span)> = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            let Ok(name) = &g.name else { continue };
            if let Some((_, first)) = group_index.get(name.value.as_str()) {
                let message = format!(
                    "duplicate group name `{}` (first defined at line {})",
                    name.value,
                    self.line_of(first)
                );
                self.report(name.span.clone(), format!("group[{i}].name"), message);
            } else {
                group_index.insert(&name.value, (i, name.span.clone()));
            }
        }
        let mut defined: Vec<&str> = Vec::new();
        for g in groups {
            if let Ok(n) = &g.name
                && !defined.contains(&n.value.as_str())
            {
                defined.push(&n.value);
            }
        }
        let unknown_group = |what: &str, name: &str| {
            if defined.is_empty() {
                format!("`{what}` ({name}) names no [[group]]; no groups are defined")
            } else {
                format!(
                    "`{what}` ({name}) names no [[group]]; defined groups: {}",
                    defined.join(", ")
                )
            }
        };

        let mut needs = vec![None; groups.len()];
        for (i, g) in groups.iter().enumerate() {
            let Ok(Some(n)) = &g.needs else { continue };
            match group_index.get(n.value.as_str()) {
                Some((j, _)) => needs[i] = Some(*j),
                None => {
                    let message = unknown_group("needs", &n.value);
                    self.report(n.span.clone(), format!("group[{i}].needs"), message);
                }
            }
        }
        for cycle in validate::needs_cycles(&needs) {
            let names: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .filter_map(|&i| groups[i].name.as_ref().ok().map(|n| n.value.as_str()))
                .collect();
            if let Some(Ok(Some(n))) = cycle.first().map(|&i| &groups[i].needs) {
                let message = format!("`needs` forms a cycle: {}", names.join(" -> "));
                self.report(
                    n.span.clone(),
                    format!("group[{}].needs", cycle[0]),
                    message,
                );
            }
        }

        let mut target_names: HashMap<&str, Span> = HashMap::new();
        let mut members: HashMap<&str, u32> = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            let Ok(t) = t else { continue };
            if let Ok(name) = &t.name {
                if let Some(first) = target_names.get(name.value.as_str()) {
                    let message = format!(
                        "duplicate target name `{}` (first defined at line {})",
                        name.value,
                        self.line_of(first)
                    );
                    self.report(name.span.clone(), format!("target[{i}].name"), message);
                } else {
                    target_names.insert(&name.value, name.span.clone());
                }
            }
            if let Ok(group) = &t.group {
                *members.entry(group.value.as_str()).or_default() += 1;
                if !group_index.contains_key(group.value.as_str()) {
                    let message = unknown_group("group", &group.value);
                    self.report(group.span.clone(), format!("target[{i}].group"), message);
                }
            }
        }

        for (name, (i, _)) in &group_index {
            if let Ok(Some(At {
                value: DownWhen::AtLeast(n),
                span,
            })) = &groups[*i].down_when
            {
                let count = members.get(name).copied().unwrap_or(0);
                if *n > count {
                    let message = format!(
                        "`down_when` ({n}) is more than the number of targets in group `{name}` ({count})"
                    );
                    self.report(span.clone(), format!("group[{i}].down_when"), message);
                }
            }
        }
    }
}

/// Parses a DNS `server` for a transport.
fn dns_server(s: &str, transport: DnsTransport) -> Result<DnsServer, String> {
    if transport == DnsTransport::Https {
        let url = Url::parse(s).map_err(|e| {
            format!("`server` ({s}) must be an https:// URL with `transport = \"https\"`: {e}")
        })?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "`server` ({s}) must be an https:// URL with `transport = \"https\"`"
            ));
        }
        return Ok(DnsServer::Url(url));
    }
    validate::dns_server_addr(s, validate::default_dns_port(transport)).map_err(|reason| {
        format!(
            "`server` ({s}) must be \"address\", \"address:port\", \"[v6]:port\" \
             or \"name[:port]\": {reason}"
        )
    })
}

fn timing_message(
    timeout: Duration,
    t_origin: Origin,
    interval: Duration,
    i_origin: Origin,
) -> String {
    format!(
        "`timeout` ({}{}) must be less than `interval` ({}{})",
        validate::format_duration(timeout),
        t_origin.suffix(),
        validate::format_duration(interval),
        i_origin.suffix()
    )
}

/// The reason in a regex error, without the pattern and caret lines above it.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or("").trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// The address of a host that was written as a literal IP, if it parsed.
fn literal_ip<E>(host: &Result<At<Host>, E>) -> Option<std::net::IpAddr> {
    match host {
        Ok(At {
            value: Host::Ip(ip),
            ..
        }) => Some(*ip),
        _ => None,
    }
}
