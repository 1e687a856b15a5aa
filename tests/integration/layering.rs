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
/// tracer's hop records in `probe::trace`) imports them from it.
const ORDER: &[&str] = &[
    "cli",
    "daemon",
    "server",
    "report",
    "page",
    "status",
    "history",
    "outage",
    "path",
    "scheduler",
    "metrics",
    "probe",
    "journal",
    "config",
    "sdnotify",
    "timeparse",
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

/// Top-level modules whose second level (the files and folders directly
/// inside them) must have no cycle either. Add a module here to hold its
/// inside to the same rule.
const SECOND_LEVEL: &[&str] = &["journal"];

/// The node of the module's face (`mod.rs`): it declares and re-exports
/// every submodule, so a submodule that imports through the face (or names
/// an item defined in `mod.rs`) closes a cycle.
const FACE: &str = "(face: mod.rs)";

/// `top`'s second-level modules → the ones each imports. A file's node is
/// its first path component under `src/<top>/`; test files (`tests.rs`,
/// `tests/`) and the code after a file's first `#[cfg(test)]` (its inline test
/// module, whose `super` is the file itself) are left out. Imports are read
/// from `crate::<top>::` paths and from the `super::` chains that reach
/// `<top>` from the file's depth.
fn second_level_graph(top: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(top);
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let node_of = |f: &Path| -> String {
        let rel = f.strip_prefix(&dir).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        Path::new(first)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let nodes: BTreeSet<String> = files
        .iter()
        .map(|f| node_of(f))
        .filter(|n| n != "mod" && n != "tests")
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let node = node_of(f);
        if node == "tests" || f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_only(text.split("#[cfg(test)]").next().unwrap_or(""));
        if node == "mod" {
            // The face: every submodule it declares.
            let declared = g.entry(FACE.to_string()).or_default();
            for n in &nodes {
                if code.contains(&format!("mod {n};")) {
                    declared.insert(n.clone());
                }
            }
            continue;
        }
        // How many `super::` lead from this file's module to `top`.
        let rel = f.strip_prefix(&dir).unwrap();
        let mut depth = rel.components().count();
        if rel.file_name().is_some_and(|n| n == "mod.rs") {
            depth -= 1;
        }
        let up = "super::".repeat(depth);
        let mut names = names_after(&code, &format!("crate::{top}::"));
        names.extend(names_after(&code, &up));
        let entry = g.entry(node.clone()).or_default();
        for name in names {
            if name == "super" || name == "self" {
                continue;
            }
            let to = if nodes.contains(&name) {
                name
            } else {
                FACE.to_string()
            };
            if to != node {
                entry.insert(to);
            }
        }
    }
    g
}

/// Every cycle's nodes (strongly connected components of more than one node).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for d in g.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut placed = BTreeSet::new();
    for n in g.keys() {
        if placed.contains(n) {
            continue;
        }
        let from_n = reach(n);
        if !from_n.contains(n) {
            continue;
        }
        let scc: Vec<String> = from_n
            .iter()
            .filter(|m| reach(m).contains(n))
            .cloned()
            .collect();
        placed.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

#[test]
fn second_level_modules_have_no_cycle() {
    let mut problems = Vec::new();
    for top in SECOND_LEVEL {
        let g = second_level_graph(top);
        println!("second level of `{top}` (importer -> imported):");
        for (m, deps) in &g {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            println!("  {m:<16} -> {}", deps.join(", "));
        }
        for c in cycles(&g) {
            problems.push(format!(
                "cycle inside `{top}`: {} (import from the submodule that defines a name, not through `{top}`'s face; move what two files share below both)",
                c.join(" <-> ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_second_level_reader_finds_cycles_and_face_imports() {
    let code = "use super::super::x::Y;\nuse super::{a::B, c};\nlet z = crate::j::d::f();";
    let got: Vec<String> = names_after(code, "super::").into_iter().collect();
    assert_eq!(got, ["a", "c"]);
    assert_eq!(
        names_after(code, "super::super::")
            .into_iter()
            .collect::<Vec<_>>(),
        ["x"]
    );
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
}
