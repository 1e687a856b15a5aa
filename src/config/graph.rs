//! The checks across tables: unique group and target names, every target's
//! `group` and every `needs` naming a group, no `needs` cycle, and
//! `down_when` counts a group can reach, and no group without targets.

use std::collections::HashMap;

use super::error::shown;
use super::model::{DownWhen, Host, Target};
use super::validate;
use super::walk::{At, Got, Need, Reported, Span, Walker};

/// A `[[group]]` as far as it is valid.
pub(super) struct GroupDraft {
    pub name: Need<String>,
    pub needs: Got<String>,
    pub down_when: Got<DownWhen>,
    pub trace_target: Got<Host>,
    pub trace_every: Got<std::time::Duration>,
    pub trace_protocol: Got<super::model::TraceProtocol>,
}

/// A `[[target]]` as far as it is valid; `target` is `None` when any of it was reported.
pub(super) struct TargetDraft {
    pub name: Need<String>,
    pub group: Need<String>,
    pub target: Option<Target>,
}

/// Names, group references, `needs` references and cycles, `down_when` counts.
pub(super) fn check(
    w: &mut Walker<'_>,
    groups: &[GroupDraft],
    targets: &[Result<TargetDraft, Reported>],
) {
    let group_index = group_names(w, groups);
    let defined: Vec<&str> = {
        let mut defined: Vec<&str> = Vec::new();
        for g in groups {
            if let Ok(n) = &g.name
                && !defined.contains(&n.value.as_str())
            {
                defined.push(&n.value);
            }
        }
        defined
    };
    let unknown_group = |what: &str, name: &str| {
        if defined.is_empty() {
            format!(
                "`{what}` ({name}) names no [[group]]; no groups are defined",
                name = shown(name)
            )
        } else {
            format!(
                "`{what}` ({name}) names no [[group]]; defined groups: {}",
                defined.join(", "),
                name = shown(name)
            )
        }
    };
    needs(w, groups, &group_index, &unknown_group);

    let mut target_names: HashMap<&str, Span> = HashMap::new();
    let mut members: HashMap<&str, u32> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        let Ok(t) = t else { continue };
        if let Ok(name) = &t.name {
            if let Some(first) = target_names.get(name.value.as_str()) {
                let message = format!(
                    "duplicate target name `{}` (first defined at line {})",
                    name.value,
                    w.line_of(first)
                );
                w.report(name.span.clone(), format!("target[{i}].name"), message);
            } else {
                target_names.insert(&name.value, name.span.clone());
            }
        }
        if let Ok(group) = &t.group {
            *members.entry(group.value.as_str()).or_default() += 1;
            if !group_index.contains_key(group.value.as_str()) {
                let message = unknown_group("group", &group.value);
                w.report(group.span.clone(), format!("target[{i}].group"), message);
            }
        }
    }

    group_sizes(w, groups, targets, &group_index, &members);
}

/// The index and name span of each group name's first definition; reports the repeats.
fn group_names<'g>(
    w: &mut Walker<'_>,
    groups: &'g [GroupDraft],
) -> HashMap<&'g str, (usize, Span)> {
    let mut group_index: HashMap<&str, (usize, Span)> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        let Ok(name) = &g.name else { continue };
        if let Some((_, first)) = group_index.get(name.value.as_str()) {
            let message = format!(
                "duplicate group name `{}` (first defined at line {})",
                name.value,
                w.line_of(first)
            );
            w.report(name.span.clone(), format!("group[{i}].name"), message);
        } else {
            group_index.insert(&name.value, (i, name.span.clone()));
        }
    }
    group_index
}

/// Every `needs` names a group, and the `needs` graph has no cycle.
fn needs(
    w: &mut Walker<'_>,
    groups: &[GroupDraft],
    group_index: &HashMap<&str, (usize, Span)>,
    unknown_group: &dyn Fn(&str, &str) -> String,
) {
    let mut needs = vec![None; groups.len()];
    for (i, g) in groups.iter().enumerate() {
        let Ok(Some(n)) = &g.needs else { continue };
        match group_index.get(n.value.as_str()) {
            Some((j, _)) => needs[i] = Some(*j),
            None => {
                let message = unknown_group("needs", &n.value);
                w.report(n.span.clone(), format!("group[{i}].needs"), message);
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
            w.report(
                n.span.clone(),
                format!("group[{}].needs", cycle[0]),
                message,
            );
        }
    }
}

/// Every group has a target, and `down_when = N` is reachable: N at most its
/// number of targets.
fn group_sizes(
    w: &mut Walker<'_>,
    groups: &[GroupDraft],
    targets: &[Result<TargetDraft, Reported>],
    group_index: &HashMap<&str, (usize, Span)>,
    members: &HashMap<&str, u32>,
) {
    // Only when every target's group is known: a target whose group could not
    // be read, or that names no group (a typo), may be meant for an empty one.
    let all_members_known = !targets.is_empty()
        && targets.iter().all(|t| {
            t.as_ref().is_ok_and(|t| {
                t.group
                    .as_ref()
                    .is_ok_and(|g| group_index.contains_key(g.value.as_str()))
            })
        });
    for (name, (i, span)) in group_index {
        if all_members_known && !members.contains_key(name) {
            let message = format!(
                "group `{name}` has no targets, so it could never be judged; \
                 add a [[target]] with `group = \"{name}\"` or remove the group"
            );
            w.report(span.clone(), format!("group[{i}]"), message);
        }
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
                w.report(span.clone(), format!("group[{i}].down_when"), message);
            }
        }
    }
}
