//! What a configuration reload changes: targets and groups matched by name
//! between the running configuration and the new one.
//!
//! Decisions (see also README, "Reloading the configuration"):
//! - A target is **kept** when a target of the same name exists in both and
//!   its whole definition (group, kind and probe keys, interval, timeout,
//!   `fail_after`, `recover_after`) is equal: it keeps its state, streaks,
//!   counters and schedule phase. Any difference makes it **changed**, which
//!   is handled as removed plus added (a fresh target starting `unknown`,
//!   counters from 0): every field feeds either the probe, its schedule or
//!   its hysteresis, so there is no "cosmetic" field to carry over.
//! - A group is **kept** when it exists by name in both; it is **unchanged**
//!   when, in addition, its definition (`needs`, `down_when`, degraded
//!   thresholds, trace settings) and its member set (names, all kept) are
//!   equal. A kept group keeps its open outage and re-evaluates with its new
//!   members; a kept but changed group's degradation window restarts.
//! - Settings that only take effect at start-up are named in
//!   [`Diff::restart_only`]; the reload applies everything else and the
//!   running values of those stay.

use super::{Config, DaemonConfig};

/// The difference between a running configuration and a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Per target of the new configuration: its index in the old one when
    /// kept (same name, equal definition); `None` for an added or changed target.
    pub targets: Vec<Option<usize>>,
    /// Per group of the new configuration: its index in the old one when a
    /// group of that name existed.
    pub groups: Vec<Option<usize>>,
    /// Per group of the new configuration: kept with an equal definition and
    /// the same (kept) members.
    pub groups_unchanged: Vec<bool>,
    /// Names of targets only in the new configuration.
    pub added: Vec<String>,
    /// Names of targets only in the old one.
    pub removed: Vec<String>,
    /// Names of targets in both whose definition differs.
    pub changed: Vec<String>,
    /// Names of groups only in the old configuration.
    pub removed_groups: Vec<String>,
    /// Names of groups only in the new configuration.
    pub added_groups: Vec<String>,
    /// Keys that differ but only take effect on a restart (`daemon.listen`, …).
    pub restart_only: Vec<&'static str>,
    /// `[[peer]]` names only in the new configuration.
    pub peers_added: Vec<String>,
    /// `[[peer]]` names only in the old one.
    pub peers_removed: Vec<String>,
    /// `[[peer]]` names in both whose settings differ (url, token, ca_file, compare).
    pub peers_changed: Vec<String>,
}

impl Diff {
    /// Matches `new` against `old` by target and group name.
    pub fn between(old: &Config, new: &Config) -> Self {
        let mut added = Vec::new();
        let mut changed = Vec::new();
        let targets: Vec<Option<usize>> = new
            .targets
            .iter()
            .map(
                |t| match old.targets.iter().position(|o| o.name == t.name) {
                    Some(i) if old.targets[i] == *t => Some(i),
                    Some(_) => {
                        changed.push(t.name.clone());
                        None
                    }
                    None => {
                        added.push(t.name.clone());
                        None
                    }
                },
            )
            .collect();
        let removed = old
            .targets
            .iter()
            .filter(|o| new.target(&o.name).is_none())
            .map(|o| o.name.clone())
            .collect();
        let groups: Vec<Option<usize>> = new
            .groups
            .iter()
            .map(|g| old.groups.iter().position(|o| o.name == g.name))
            .collect();
        let members = |c: &Config, g: &str| -> Vec<String> {
            c.targets
                .iter()
                .filter(|t| t.group == g)
                .map(|t| t.name.clone())
                .collect()
        };
        let groups_unchanged = new
            .groups
            .iter()
            .zip(&groups)
            .map(|(g, old_index)| {
                old_index.is_some_and(|o| {
                    old.groups[o] == *g
                        && members(old, &g.name) == members(new, &g.name)
                        && new
                            .targets
                            .iter()
                            .zip(&targets)
                            .filter(|(t, _)| t.group == g.name)
                            .all(|(_, kept)| kept.is_some())
                })
            })
            .collect();
        let removed_groups = old
            .groups
            .iter()
            .filter(|o| new.group(&o.name).is_none())
            .map(|o| o.name.clone())
            .collect();
        let added_groups = new
            .groups
            .iter()
            .zip(&groups)
            .filter(|(_, o)| o.is_none())
            .map(|(g, _)| g.name.clone())
            .collect();
        let (peers_added, peers_removed, peers_changed) = peers(old, new);
        Self {
            targets,
            groups,
            groups_unchanged,
            added,
            removed,
            changed,
            removed_groups,
            added_groups,
            restart_only: restart_only(&old.daemon, &new.daemon),
            peers_added,
            peers_removed,
            peers_changed,
        }
    }

    /// The peer changes in words (empty when none), for the reload's answer.
    pub fn peers_text(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("added", &self.peers_added),
            ("removed", &self.peers_removed),
            ("changed", &self.peers_changed),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what} {names:?}"));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; peers {}", parts.join(", "))
        }
    }

    /// Whether the reload changes nothing that is monitored.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.removed_groups.is_empty()
            && self.added_groups.is_empty()
            && self.groups_unchanged.iter().all(|u| *u)
    }

    /// Per target of the old configuration: its index in the new one when kept.
    pub fn old_to_new(&self, old_targets: usize) -> Vec<Option<usize>> {
        let mut out = vec![None; old_targets];
        for (new, old) in self.targets.iter().enumerate() {
            if let Some(o) = old
                && let Some(slot) = out.get_mut(*o)
            {
                *slot = Some(new);
            }
        }
        out
    }
}

/// `[[peer]]` names added, removed and changed from `old` to `new`.
fn peers(old: &Config, new: &Config) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for p in &new.peers {
        match old.peers.iter().find(|o| o.name == p.name) {
            None => added.push(p.name.clone()),
            Some(o) if o != p => changed.push(p.name.clone()),
            Some(_) => {}
        }
    }
    let removed = old
        .peers
        .iter()
        .filter(|o| !new.peers.iter().any(|p| p.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    (added, removed, changed)
}

/// Moves per-target (or per-group) state to a new configuration's
/// numbering: item `i` of the result is `old[kept[i]]` when kept, else
/// `fresh(i)`. Each old item moves at most once; the rest are dropped.
pub fn carry_over<T>(
    old: Vec<T>,
    kept: &[Option<usize>],
    n: usize,
    mut fresh: impl FnMut(usize) -> T,
) -> Vec<T> {
    let mut old: Vec<Option<T>> = old.into_iter().map(Some).collect();
    (0..n)
        .map(|i| {
            kept.get(i)
                .copied()
                .flatten()
                .and_then(|o| old.get_mut(o))
                .and_then(Option::take)
                .unwrap_or_else(|| fresh(i))
        })
        .collect()
}

/// The `[daemon]` keys that differ between `old` and `new` and are read only
/// at start-up: the listener, the data directory and its lock, the log
/// format, the probe concurrency bound (the semaphore), path tracing limits
/// and the site label (in `daemon_start` and `linkwatch_build_info`).
pub fn restart_only(old: &DaemonConfig, new: &DaemonConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |differs: bool, key: &'static str| {
        if differs {
            keys.push(key);
        }
    };
    check(old.listen != new.listen, "daemon.listen");
    check(old.data_dir != new.data_dir, "daemon.data_dir");
    check(old.log_format != new.log_format, "daemon.log_format");
    check(
        old.max_concurrency != new.max_concurrency,
        "daemon.max_concurrency",
    );
    check(
        old.allow_symlinks != new.allow_symlinks,
        "daemon.allow_symlinks",
    );
    check(
        old.trace.max_per_minute != new.trace.max_per_minute,
        "daemon.max_traces_per_minute",
    );
    check(
        old.trace.max_hops != new.trace.max_hops,
        "daemon.trace_max_hops",
    );
    check(
        old.trace.timeout != new.trace.timeout,
        "daemon.trace_timeout",
    );
    check(old.site != new.site, "daemon.site");
    keys
}

/// `new` with the start-up-only `[daemon]` settings of the running `old`
/// (what a reload applies); `trusted_peers`, `tls_cert`, `tls_key` and
/// `witness_every`, which a reload changes, are `new`'s.
pub fn with_running_daemon(old: &Config, mut new: Config) -> Config {
    let trusted_peers = std::mem::take(&mut new.daemon.trusted_peers);
    new.daemon = DaemonConfig {
        trusted_peers,
        tls_cert: new.daemon.tls_cert.take(),
        tls_key: new.daemon.tls_key.take(),
        witness_every: new.daemon.witness_every,
        ..old.daemon.clone()
    };
    new
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn cfg(body: &str) -> Config {
        parse(
            &format!(
                "[daemon]\ndata_dir = \"/tmp/x\"\n[[group]]\nname = \"lan\"\n[[group]]\nname = \"wan\"\nneeds = \"lan\"\n{body}"
            ),
            "t.toml",
        )
        .unwrap()
    }

    const A: &str = "[[target]]\nname = \"a\"\ngroup = \"lan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n";
    const B: &str = "[[target]]\nname = \"b\"\ngroup = \"wan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 2\n";
    const B3: &str = "[[target]]\nname = \"b\"\ngroup = \"wan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 3\n";
    const C: &str = "[[target]]\nname = \"c\"\ngroup = \"wan\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4\n";

    #[test]
    fn the_same_file_changes_nothing() {
        let old = cfg(&format!("{A}{B}"));
        let d = Diff::between(&old, &old.clone());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.targets, vec![Some(0), Some(1)]);
        assert_eq!(d.groups, vec![Some(0), Some(1)]);
        assert!(d.restart_only.is_empty());
    }

    #[test]
    fn targets_are_kept_added_removed_or_changed_by_name_and_definition() {
        let old = cfg(&format!("{A}{B}"));
        // Reordered, `b` changed (port), `c` added.
        let new = cfg(&format!("{C}{B3}{A}"));
        let d = Diff::between(&old, &new);
        assert_eq!(d.targets, vec![None, None, Some(0)]);
        assert_eq!(d.added, vec!["c"]);
        assert_eq!(d.changed, vec!["b"]);
        assert!(d.removed.is_empty());
        assert_eq!(d.old_to_new(2), vec![Some(2), None]);
        // lan keeps `a` only: unchanged; wan's members changed.
        assert_eq!(d.groups_unchanged, vec![true, false]);
        assert!(!d.is_empty());
        let gone = Diff::between(&new, &old);
        assert_eq!(gone.removed, vec!["c"]);
    }

    #[test]
    fn a_group_removed_or_redefined_is_named() {
        let old = cfg(&format!("{A}{B}"));
        let text = format!(
            "[daemon]\ndata_dir = \"/tmp/x\"\nlisten = \"127.0.0.1:9\"\n[[group]]\nname = \"lan\"\ndown_when = \"any\"\n[[group]]\nname = \"new\"\n{}",
            A.to_string() + &C.replace("\"wan\"", "\"new\"")
        );
        let new = parse(&text, "t.toml").unwrap();
        let d = Diff::between(&old, &new);
        assert_eq!(d.removed_groups, vec!["wan"]);
        assert_eq!(d.added_groups, vec!["new"]);
        assert_eq!(d.groups, vec![Some(0), None]);
        // Same member, other down_when: kept but changed.
        assert_eq!(d.groups_unchanged, vec![false, false]);
        assert_eq!(d.removed, vec!["b"]);
        assert_eq!(d.restart_only, vec!["daemon.listen"]);
        let applied = with_running_daemon(&old, new);
        assert_eq!(applied.daemon.listen, old.daemon.listen);
    }

    #[test]
    fn trusted_peers_are_reloaded_not_restart_only() {
        let old = cfg(&format!("{A}{B}"));
        let text = format!(
            "[daemon]\ndata_dir = \"/tmp/x\"\ntrusted_peers = [\"10.1.0.0/16\"]\n[[group]]\nname = \"lan\"\n[[group]]\nname = \"wan\"\nneeds = \"lan\"\n{A}{B}"
        );
        let new = parse(&text, "t.toml").unwrap();
        assert!(restart_only(&old.daemon, &new.daemon).is_empty());
        let applied = with_running_daemon(&old, new.clone());
        assert_eq!(applied.daemon.trusted_peers, new.daemon.trusted_peers);
        assert_ne!(applied.daemon.trusted_peers, old.daemon.trusted_peers);
    }
}
