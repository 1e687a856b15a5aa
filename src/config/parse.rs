//! Turns configuration text into a validated [`Config`]: the document's own
//! tables (`[daemon]`, `[defaults]`, `[[group]]`, `[[target]]` and the keys
//! every target has) are read here; each kind's keys in [`super::spec`], the
//! checks across tables in [`super::graph`], all through [`super::walk`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use super::degraded;
use super::error::{ConfigError, ConfigErrors, is_unprintable, shown};
use super::graph::{self, GroupDraft, TargetDraft};
use super::model::{
    Cidr, Config, DaemonConfig, Defaults, DownWhen, Group, GroupTrace, HistoryRetention, Kind,
    LogFormat, Target, TargetSpec, ThroughputSpec, TraceLimits, TraceProtocol,
};
use super::spec;
use super::validate;
use super::walk::{At, Got, LineIndex, Need, Problem, Reported, Span, Tbl, Walker, cidr_list};

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, false)
}

/// [`load`] for readers of the data directory (`report`, `outages`): the
/// files only the daemon needs (peer and notify secrets, `tls_key`,
/// `tls_cert`, a peer's `ca_file`) are neither read nor checked, so an
/// operator who may read the journal but not the service's root-only
/// credentials still gets the configured groups, peers and checks. The
/// secrets in the result are placeholders that are never sent anywhere:
/// never start a daemon or a peer call from such a `Config`.
pub fn load_for_reading(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, true)
}

fn load_with(path: &Path, reading_only: bool) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => parse_with(text, &file, reading_only),
            Err(_) => parse_bytes(&bytes, &file),
        },
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 1,
            column: 1,
            key: String::new(),
            message: format!("failed to read the configuration file: {e}"),
        }])),
    }
}

/// Validates configuration file contents, which must be UTF-8 (the first
/// byte that is not is reported at its line and column).
pub fn parse_bytes(bytes: &[u8], source: &str) -> Result<Config, ConfigErrors> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, source),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by definition; count on it.
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            let (line, column) = LineIndex::new(prefix).position(prefix.len());
            let bad = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
            Err(ConfigErrors(vec![ConfigError {
                file: source.to_owned(),
                line,
                column,
                key: String::new(),
                message: format!(
                    "the file is not valid UTF-8 (byte 0x{bad:02x} at offset {}); \
                     configuration files must be UTF-8",
                    e.valid_up_to()
                ),
            }]))
        }
    }
}

/// Validates configuration `text`; `source` names it in errors and in [`Config::source`].
pub fn parse(text: &str, source: &str) -> Result<Config, ConfigErrors> {
    parse_with(text, source, false)
}

fn parse_with(text: &str, source: &str, reading_only: bool) -> Result<Config, ConfigErrors> {
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
    let mut walker = Walker::new(text, &index);
    walker.reading_only = reading_only;
    let built = document(&mut walker, root.get_ref());
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
            // A key can be the user's own text (an unknown key, a header
            // name): cut like every echoed value, for messages and logs.
            .map(|p| error(&p.span, shown(&p.key).into_owned(), p.message))
            .collect(),
    ))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ROOT_KEYS: &[&str] = &[
    "daemon",
    "defaults",
    "group",
    "target",
    "plan",
    "notify",
    "peer",
    "history",
    "interference",
];
const DAEMON_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "log_format",
    "max_concurrency",
    "allow_symlinks",
    "max_traces_per_minute",
    "trace_max_hops",
    "trace_timeout",
    "site",
    "trusted_peers",
    "tls_cert",
    "tls_key",
    "witness_every",
];
const DEFAULTS_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "fail_after",
    "recover_after",
    "degraded",
];
const GROUP_KEYS: &[&str] = &[
    "name",
    "needs",
    "down_when",
    "trace_target",
    "trace_every",
    "trace_protocol",
    "degraded",
];
const TARGET_KEYS: &[&str] = &[
    "name",
    "group",
    "kind",
    "interval",
    "timeout",
    "fail_after",
    "recover_after",
];
const MAX_STREAK: i64 = 10_000;
const MAX_NAME_LEN: usize = 128;

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

fn interval(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<Duration> {
    w.duration_with(t, "interval", |d, s| {
        if validate::interval_in_range(d) {
            Ok(())
        } else {
            Err(format!(
                "`interval` ({s}) must be in the range 100ms..=24h",
                s = shown(s)
            ))
        }
    })
}

fn timeout(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<Duration> {
    w.duration_with(t, "timeout", validate::timeout_in_range)
}

fn document(w: &mut Walker<'_>, root: &DeTable<'_>) -> Option<Config> {
    let root = Tbl {
        map: root,
        span: 0..0,
        path: String::new(),
    };
    w.check_keys(&root, ROOT_KEYS);
    let daemon = daemon(w, &root);
    let history = history(w, &root);
    let interference = super::interference::section(w, &root);
    let defaults = defaults(w, &root);
    let plan = spec::plan(w, &root);
    let defaults_degraded = defaults_degraded(w, &root);
    let (groups, groups_degraded): (Vec<GroupDraft>, Vec<degraded::Partial>) = w
        .array_of_tables(&root, "group")
        .into_iter()
        .filter_map(Result::ok)
        .map(|t| (group(w, &t), degraded::table(w, &t)))
        .unzip();
    let target_tables = w.array_of_tables(&root, "target");
    if target_tables.is_empty() {
        w.report(
            0..0,
            "target".into(),
            "no [[target]] is defined; at least one is required".into(),
        );
    }
    let targets: Vec<Result<TargetDraft, Reported>> = target_tables
        .into_iter()
        .map(|t| t.map(|t| target(w, &t, &defaults)))
        .collect();
    graph::check(w, &groups, &targets);
    spec::check_compare_with(w, &root, &targets);
    let group_names: Vec<String> = groups
        .iter()
        .filter_map(|g| Some(g.name.as_ref().ok()?.value.clone()))
        .collect();
    let notify = super::notify::tables(w, &root, &group_names);
    let target_names: Vec<String> = targets
        .iter()
        .filter_map(|t| Some(t.as_ref().ok()?.name.as_ref().ok()?.value.clone()))
        .collect();
    let peers = super::peer::tables(w, &root, &target_names);
    let plan = plan.ok();
    let group_inputs: Vec<degraded::GroupInput<'_>> = groups
        .iter()
        .zip(&groups_degraded)
        .enumerate()
        .filter_map(|(index, (g, own))| {
            let name = g.name.as_ref().ok()?;
            Some(degraded::GroupInput {
                index,
                name: &name.value,
                name_span: name.span.clone(),
                own,
            })
        })
        .collect();
    let valid_targets: Vec<&Target> = targets
        .iter()
        .filter_map(|t| t.as_ref().ok()?.target.as_ref())
        .collect();
    let degraded = degraded::resolve(
        w,
        &defaults_degraded,
        &group_inputs,
        &valid_targets,
        plan.as_ref().and_then(Option::as_ref),
    );

    let daemon = daemon?;
    let history = history?;
    let interference = interference?;
    let plan = plan?;
    let defaults = Defaults {
        interval: defaults.interval.ok()?.0,
        timeout: defaults.timeout.ok()?.0,
        fail_after: defaults.fail_after.ok()?,
        recover_after: defaults.recover_after.ok()?,
    };
    if group_inputs.len() != groups.len() {
        return None;
    }
    let groups = groups
        .into_iter()
        .zip(degraded)
        .map(|(g, degraded)| finish_group(g, degraded?))
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
        plan,
        notify: notify?,
        peers: peers?,
        history,
        interference,
    })
}

/// `[history]`: `minutes_days` (default 14) and `hours_days` (default 400,
/// at least `minutes_days`).
fn history(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> Option<HistoryRetention> {
    let default = HistoryRetention::default();
    let t = match w.table(root, "history") {
        Ok(Some(t)) => t,
        Ok(None) => return Some(default),
        Err(_) => return None,
    };
    w.check_keys(&t, &["minutes_days", "hours_days"]);
    let minutes = w.integer(&t, "minutes_days", 2, 400);
    let hours = w.integer(&t, "hours_days", 2, 3660);
    let minutes = minutes.ok()?;
    let hours = match (hours, &minutes) {
        (Ok(Some(h)), Some(m)) if h.value < m.value => {
            w.report(
                h.span.clone(),
                t.key("hours_days"),
                format!(
                    "`hours_days` ({}) must be at least `minutes_days` ({}): a day's hours are made from its minutes",
                    h.value, m.value
                ),
            );
            return None;
        }
        (Ok(h), _) => h,
        (Err(_), _) => return None,
    };
    let minutes_days = minutes.map_or(default.minutes_days, |v| v.value);
    Some(HistoryRetention {
        minutes_days,
        hours_days: hours.map_or(default.hours_days.max(minutes_days), |v| v.value),
    })
}

/// `[defaults.degraded]` as written (empty without one).
fn defaults_degraded(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> degraded::Partial {
    match root.get("defaults").map(|v| v.get_ref()) {
        Some(DeValue::Table(map)) => degraded::table(
            w,
            &Tbl {
                map,
                span: 0..0,
                path: "defaults".into(),
            },
        ),
        _ => degraded::Partial::default(),
    }
}

/// A group from its draft and resolved thresholds; `None` when a key was
/// reported.
fn finish_group(g: GroupDraft, degraded: super::thresholds::Degraded) -> Option<Group> {
    Some(Group {
        name: g.name.ok()?.value,
        needs: g.needs.ok()?.map(|n| n.value),
        down_when: g.down_when.ok()?.map_or(DownWhen::All, |d| d.value),
        degraded,
        trace: GroupTrace {
            target: g.trace_target.ok()?.map(|t| t.value),
            every: g
                .trace_every
                .ok()?
                .map_or(GroupTrace::DEFAULT_EVERY, |e| e.value),
            protocol: g
                .trace_protocol
                .ok()?
                .map_or(TraceProtocol::default(), |p| p.value),
        },
    })
}

fn daemon(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> Option<DaemonConfig> {
    let empty = DeTable::new();
    let t = match w.table(root, "daemon") {
        Ok(Some(t)) => t,
        Ok(None) => Tbl {
            map: &empty,
            span: 0..0,
            path: "daemon".into(),
        },
        Err(_) => return None,
    };
    w.check_keys(&t, DAEMON_KEYS);
    let listen = w.string(&t, "listen");
    let listen = w.check(&t, "listen", listen, |s| {
        let addr = s.parse::<SocketAddr>().map_err(|_| {
            format!(
                "`listen` ({s}) must be an IP address and a port, \
                 e.g. \"127.0.0.1:9898\" or \"[::1]:9898\"",
                s = shown(s)
            )
        })?;
        validate::listen(addr)
            .map_err(|reason| format!("`listen` ({s}) cannot be used: {reason}", s = shown(s)))?;
        Ok(addr)
    });
    let data_dir = w.nonempty(&t, "data_dir");
    let data_dir = w.check(&t, "data_dir", data_dir, |s| {
        validate::data_dir(s)
            .map(|()| s.clone())
            .map_err(|reason| format!("`data_dir` ({s}) cannot be used: {reason}", s = shown(s)))
    });
    let log_format = w.string(&t, "log_format");
    let log_format = w.check(&t, "log_format", log_format, |s| match s.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!(
            "`log_format` ({s}) must be \"text\" or \"json\"",
            s = shown(s)
        )),
    });
    let max_concurrency = w.integer(&t, "max_concurrency", 1, 1_000_000);
    let allow_symlinks = w.boolean(&t, "allow_symlinks");
    let max_traces = w.integer(&t, "max_traces_per_minute", 0, 600);
    let max_hops = w.integer(&t, "trace_max_hops", 1, 64);
    let trace_timeout = w.duration_with(&t, "trace_timeout", |d, s| {
        if (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&d) {
            Ok(())
        } else {
            Err(format!(
                "`trace_timeout` ({s}) must be in the range 1s..=60s",
                s = shown(s)
            ))
        }
    });
    let site = w.string(&t, "site");
    let site = w.check(&t, "site", site, |s| {
        validate::site(s)
            .map(|()| s.clone())
            .map_err(|reason| format!("`site` ({s}) {reason}", s = shown(s)))
    });
    let trusted_peers = trusted_peers(w, &t);
    let peer_keys = super::peer::daemon_keys(w, &t);
    let default = DaemonConfig::default();
    let trace = TraceLimits {
        max_per_minute: max_traces
            .ok()?
            .map_or(default.trace.max_per_minute, |v| v.value as u32),
        max_hops: max_hops
            .ok()?
            .map_or(default.trace.max_hops, |v| v.value as u8),
        timeout: trace_timeout
            .ok()?
            .map_or(default.trace.timeout, |v| v.value),
    };
    Some(DaemonConfig {
        listen: listen.ok()?.map_or(default.listen, |v| v.value),
        data_dir: data_dir
            .ok()?
            .map_or(default.data_dir, |v| PathBuf::from(v.value)),
        log_format: log_format.ok()?.map_or(default.log_format, |v| v.value),
        max_concurrency: max_concurrency
            .ok()?
            .map_or(default.max_concurrency, |v| v.value as usize),
        allow_symlinks: allow_symlinks
            .ok()?
            .map_or(default.allow_symlinks, |v| v.value),
        trace,
        site: site.ok()?.map(|v| v.value),
        trusted_peers: trusted_peers.ok()?.unwrap_or(default.trusted_peers),
        tls_cert: peer_keys.as_ref()?.tls_cert.clone(),
        tls_key: peer_keys.as_ref()?.tls_key.clone(),
        witness_every: peer_keys?.witness_every,
    })
}

/// `trusted_peers`: address blocks, each reported at its own item; `None`
/// when absent (the default: loopback).
fn trusted_peers(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Result<Option<Vec<Cidr>>, Reported> {
    if t.get("trusted_peers").is_none() {
        return Ok(None);
    }
    cidr_list(
        w,
        t,
        "trusted_peers",
        "an array of address blocks such as [\"127.0.0.0/8\", \"::1/128\"]",
    )
    .map(Some)
}

fn defaults(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> DefaultsDraft {
    let empty = DeTable::new();
    let t = match w.table(root, "defaults") {
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
    w.check_keys(&t, DEFAULTS_KEYS);
    let interval = interval(w, &t);
    let timeout = timeout(w, &t);
    let fail_after = w.integer(&t, "fail_after", 1, MAX_STREAK);
    let recover_after = w.integer(&t, "recover_after", 1, MAX_STREAK);
    let built_in = Defaults::default();
    let with_origin = |got: Got<Duration>, default| {
        got.map(|v| v.map_or((default, Origin::BuiltIn), |v| (v.value, Origin::Defaults)))
    };
    let mut draft = DefaultsDraft {
        interval: with_origin(interval.clone(), built_in.interval),
        timeout: with_origin(timeout.clone(), built_in.timeout),
        fail_after: fail_after.map(|v| v.map_or(built_in.fail_after, |v| v.value as u32)),
        recover_after: recover_after.map(|v| v.map_or(built_in.recover_after, |v| v.value as u32)),
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
        draft.timeout = Err(w.report(span, t.key(key), message));
    }
    draft
}

fn group(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> GroupDraft {
    w.check_keys(t, GROUP_KEYS);
    let name = name(w, t);
    let needs = w.nonempty(t, "needs");
    let down_when = match t.get("down_when") {
        None => Ok(None),
        Some(v) => {
            let key = t.key("down_when");
            let message = |written: &str| {
                format!(
                    "`down_when` ({}) must be \"all\", \"any\" \
                     or a number of targets (1 or more)",
                    shown(written)
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
                    other => Err(w.report(v.span(), key, message(other))),
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
                            let written = w.snippet(&v.span());
                            Err(w.report(v.span(), key, message(&written)))
                        }
                    }
                }
                _ => Err(w.wrong_type(key, v, "\"all\", \"any\" or an integer")),
            }
        }
    };
    let trace_target = w.string(t, "trace_target");
    let trace_target = w.check(t, "trace_target", trace_target, |s| {
        validate::host(s).map_err(|reason| {
            format!(
                "`trace_target` ({s}) must be an IPv4 address, an IPv6 address, \
                 a DNS name or \"@gateway\": {reason}",
                s = shown(s)
            )
        })
    });
    let trace_every = w.duration_with(t, "trace_every", |d, s| {
        if (Duration::from_secs(60)..=Duration::from_secs(7 * 86_400)).contains(&d) {
            Ok(())
        } else {
            Err(format!(
                "`trace_every` ({s}) must be in the range 1m..=7d",
                s = shown(s)
            ))
        }
    });
    let trace_protocol = w.string(t, "trace_protocol");
    let trace_protocol = w.check(t, "trace_protocol", trace_protocol, |s| match s.as_str() {
        "icmp" => Ok(TraceProtocol::Icmp),
        "udp" => Ok(TraceProtocol::Udp),
        _ => Err(format!(
            "`trace_protocol` ({s}) must be \"icmp\" or \"udp\"",
            s = shown(s)
        )),
    });
    GroupDraft {
        name,
        needs,
        down_when,
        trace_target,
        trace_every,
        trace_protocol,
    }
}

/// A group or target name.
fn name(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Need<String> {
    let got = w.string(t, "name");
    let got = w.check(t, "name", got, |s| {
        if s.is_empty() {
            Err("`name` must not be empty".to_owned())
        } else if s.trim() != s {
            Err(format!(
                "`name` ({s}) must not start or end with whitespace",
                s = shown(s)
            ))
        } else if s.chars().any(is_unprintable) {
            Err(format!(
                "`name` ({}) must not contain control or invisible characters",
                s.escape_debug()
            ))
        } else if s.chars().count() > MAX_NAME_LEN {
            Err(format!(
                "`name` ({s}) is longer than {MAX_NAME_LEN} characters",
                s = shown(s)
            ))
        } else {
            Ok(s.clone())
        }
    });
    w.missing(t, "name", got)
}

fn target(w: &mut Walker<'_>, t: &Tbl<'_, '_>, defaults: &DefaultsDraft) -> TargetDraft {
    let kind = w.string(t, "kind");
    let kind = w.check(t, "kind", kind, |s| match s.as_str() {
        "icmp" => Ok(Kind::Icmp),
        "tcp" => Ok(Kind::Tcp),
        "http" => Ok(Kind::Http),
        "dns" => Ok(Kind::Dns),
        "throughput" => Ok(Kind::Throughput),
        _ => Err(format!(
            "`kind` ({s}) must be one of icmp, tcp, http, dns, throughput",
            s = shown(s)
        )),
    });
    let kind = w.missing(t, "kind", kind);
    check_target_keys(w, t, kind.as_ref().ok().map(|k| k.value));
    // Throughput tests do not take [defaults] interval and timeout (meant
    // for probes of a few bytes): theirs are 30 min and 5 s unless set here.
    let throughput = matches!(&kind, Ok(k) if k.value == Kind::Throughput);
    let name = name(w, t);
    let group = w.nonempty(t, "group");
    let group = w.missing(t, "group", group);
    let interval = interval(w, t);
    let timeout = timeout(w, t);
    let fail_after = w.integer(t, "fail_after", 1, MAX_STREAK);
    let recover_after = w.integer(t, "recover_after", 1, MAX_STREAK);

    // Check the effective pair when the target sets either half; a pair
    // taken whole from [defaults] was checked there.
    let eff_interval = match &interval {
        Ok(Some(v)) => Ok((v.value, Origin::Target)),
        Ok(None) if throughput => Ok((ThroughputSpec::DEFAULT_INTERVAL, Origin::BuiltIn)),
        Ok(None) => defaults.interval,
        Err(r) => Err(*r),
    };
    let eff_timeout = match &timeout {
        Ok(Some(v)) => Ok((v.value, Origin::Target)),
        Ok(None) if throughput => Ok((ThroughputSpec::DEFAULT_TIMEOUT, Origin::BuiltIn)),
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
        w.report(span, t.key(key), timing_message(to, tio, i, io));
        timing_ok = false;
    }

    let mut spec = match &kind {
        Ok(k) => spec::parse(w, t, k.value),
        Err(_) => None,
    };
    if let (Some(TargetSpec::Throughput(tp)), true, Ok((i, _)), Ok((to, _))) =
        (&mut spec, timing_ok, eff_interval, eff_timeout)
    {
        let span = match &interval {
            Ok(Some(v)) => Some(v.span.clone()),
            _ => None,
        };
        timing_ok = spec::throughput_timing(w, t, tp, i, span, to);
    }

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

fn check_target_keys(w: &mut Walker<'_>, t: &Tbl<'_, '_>, kind: Option<Kind>) {
    for (k, _) in t.map.iter() {
        let key: &str = k.get_ref();
        if TARGET_KEYS.contains(&key) {
            continue;
        }
        let in_some_kind = Kind::ALL.iter().any(|&k| spec::keys(k).contains(&key));
        let message = match kind {
            Some(kind) if spec::keys(kind).contains(&key) => continue,
            None if in_some_kind => continue,
            Some(kind) => {
                let valid = [TARGET_KEYS, spec::keys(kind)].concat().join(", ");
                if in_some_kind {
                    format!(
                        "key `{key}` is not valid for kind `{kind}`; valid keys: {valid}",
                        key = shown(key)
                    )
                } else {
                    format!(
                        "unknown key `{key}`; valid keys for kind `{kind}`: {valid}",
                        key = shown(key)
                    )
                }
            }
            None => format!(
                "unknown key `{key}`; valid keys: {} and the keys of the target's kind",
                TARGET_KEYS.join(", "),
                key = shown(key)
            ),
        };
        w.report(k.span(), t.key(key), message);
    }
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
