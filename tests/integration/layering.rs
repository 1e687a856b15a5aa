//! The module structure as a test: which top-level module of `src/` imports
//! which (read from `crate::` paths in the source), that there is no cycle,
//! and that every import points down the documented order.
//!
//! Print the dependency list with
//! `cargo test --test integration layering -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the top (entry points) to the ground (shared
/// vocabulary). A module may import only modules listed after it. The data
/// flow reads top to bottom: the command line and the daemon wire the
/// pieces; the server and the report read what the status read model, the
/// outage service and the metrics hold (the status model shows the outage
/// service's states); those consume probe results that the scheduler asks
/// the probes for; everything is configured by `config`. The journal sits
/// just above `config`: the records it carries are its own, and every
/// module that produces them (outage detection, slow periods, the path
/// tracer's hop records in `probe::trace`) imports them from it. `text` is the
/// words for people (HTML escaping, durations) that every rendering shares.
const ORDER: &[&str] = &[
    "cli",
    "daemon",
    "server",
    "peer",
    "report",
    "page",
    "status",
    "history",
    "notify",
    "outage",
    "path",
    "scheduler",
    "metrics",
    "probe",
    "interference",
    "journal",
    "campaign",
    "config",
    "sdnotify",
    "timeparse",
    "heap",
    "text",
];

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without `//` comments (doc comments name modules too).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal (a URL) is rare in `use` lines;
            // cutting it only removes text after it on that line.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    names_after(code, "crate::")
}

/// The first path segment after each occurrence of `prefix` (which ends in
/// `::`); for `prefix{a::X, b, c::{..}}`, the first segment of each item in
/// the braces. An occurrence preceded by `::` is part of a longer path and
/// does not count (`super::super::x` is not `super::x`).
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix).map(|i| from + i) {
        let longer = code[..i].ends_with("::");
        let after = &code[i + prefix.len()..];
        from = i + prefix.len();
        if longer || after.starts_with("super::") {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            let mut name = String::new();
            for ch in group.chars() {
                let ends_name = !(ch.is_alphanumeric() || ch == '_');
                if ends_name && !name.is_empty() {
                    found.insert(std::mem::take(&mut name));
                    item_start = false;
                }
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !ends_name => name.push(c),
                    _ => {}
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// module → the modules it imports (itself excluded).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        let module = Path::new(first)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        let entry = g.entry(module.clone()).or_default();
        for m in imports(&code) {
            if m != module {
                entry.insert(m);
            }
        }
    }
    g
}

#[test]
fn module_dependencies_have_no_cycle_and_point_down() {
    let g = graph();
    println!("top-level module dependencies (importer -> imported):");
    for m in ORDER {
        let deps: Vec<&str> = g
            .get(*m)
            .map(|d| d.iter().map(String::as_str).collect())
            .unwrap_or_default();
        println!("  {m:<10} -> {}", deps.join(", "));
    }
    let rank: BTreeMap<&str, usize> = ORDER.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut problems = Vec::new();
    for (m, deps) in &g {
        let Some(&rm) = rank.get(m.as_str()) else {
            problems.push(format!(
                "module `{m}` is not in ORDER in tests/integration/layering.rs: place it where its imports put it"
            ));
            continue;
        };
        for d in deps {
            match rank.get(d.as_str()) {
                Some(&rd) if rd > rm => {}
                Some(_) => problems.push(format!(
                    "`{m}` imports `{d}`, which is above it in the data flow (a loop or an upward import)"
                )),
                None => problems.push(format!("`{m}` imports unknown top-level `crate::{d}`")),
            }
        }
    }
    // ORDER is a total order, so "every import points down" already rules out
    // cycles; the check below states it in the words a reader looks for.
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_reader_sees_grouped_and_plain_paths() {
    let code = "use crate::config::{Config, Target};\nuse crate::{metrics::Metrics, probe, status::{A, B}};\nlet x = crate::outage::f();";
    let got: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(got, ["config", "metrics", "outage", "probe", "status"]);
    assert!(imports(&code_only("// see crate::server\n")).is_empty());
}

/// Folders whose files must not import each other in a loop (the folder's
/// face, `mod.rs` or `<folder>.rs`, aside: it declares the files and hands
/// their names on).
const FOLDERS_WITHOUT_CIRCLES: &[&str] = &[
    "cli", "config", "history", "journal", "notify", "outage", "page", "path", "probe", "report",
    "peer", "server",
];

/// file (or subfolder) → the sibling files and subfolders of `folder` it
/// imports, read from `super::x`, `super::super::x` (from a subfolder) and
/// `crate::folder::x` paths outside inline test modules.
fn folder_graph(folder: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let node = |f: &Path| -> Option<String> {
        let rel = f.strip_prefix(&dir).unwrap();
        let first = rel.components().next()?.as_os_str().to_string_lossy();
        let name = first.trim_end_matches(".rs").to_string();
        (name != "mod" && name != "tests").then_some(name)
    };
    let names: BTreeSet<String> = files.iter().filter_map(|f| node(f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(from) = node(f) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_only(without_test_module(&text));
        // In `sub/x.rs`, the folder is `super::super`; in `sub/mod.rs`, `super`.
        let in_sub = f.parent() != Some(dir.as_path()) && !f.ends_with("mod.rs");
        let prefixes = [
            if in_sub { "super::super::" } else { "super::" }.to_string(),
            format!("crate::{folder}::"),
        ];
        let deps = g.entry(from.clone()).or_default();
        for prefix in &prefixes {
            for (i, _) in code.match_indices(prefix.as_str()) {
                let after = &code[i + prefix.len()..];
                let mut found: Vec<String> = Vec::new();
                if let Some(group) = after.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    found.extend(group.split(',').map(|s| s.trim().to_string()));
                } else {
                    found.push(after.to_string());
                }
                for item in found {
                    let name: String = item
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name != from && names.contains(&name) {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    g
}

/// `text` up to its inline test module (`#[cfg(test)]`, maybe more
/// attributes, then `mod`), if it has one at the top level.
fn without_test_module(text: &str) -> &str {
    let mut at = 0;
    let mut cfg_test = None;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end();
        if l == "#[cfg(test)]" {
            cfg_test.get_or_insert(at);
        } else if l.starts_with("mod ") && cfg_test.is_some() {
            return &text[..cfg_test.unwrap_or(at)];
        } else if !l.starts_with("#[") {
            cfg_test = None;
        }
        at += line.len();
    }
    text
}

/// A loop of `g`, if any, as the files in order.
fn find_circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            return Some(path[i..].to_vec());
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn files_inside_a_folder_do_not_import_each_other_in_a_loop() {
    let mut problems = Vec::new();
    for folder in FOLDERS_WITHOUT_CIRCLES {
        let g = folder_graph(folder);
        println!("src/{folder}/:");
        for (f, deps) in &g {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            println!("  {f:<12} -> {}", deps.join(", "));
        }
        if let Some(c) = find_circle(&g) {
            problems.push(format!(
                "src/{folder}/: {} -> {} import each other in a loop: move what they share into a lower file",
                c.join(" -> "),
                c[0]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_loop_and_only_a_loop() {
    let g = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(find_circle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        find_circle(&g(&[("a", "b"), ("b", "c"), ("c", "b")])),
        Some(vec!["b".to_string(), "c".to_string()])
    );
}
