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
/// the probes for; everything is configured by `config`.
const ORDER: &[&str] = &[
    "cli",
    "daemon",
    "server",
    "report",
    "page",
    "status",
    "history",
    "notify",
    "outage",
    "scheduler",
    "metrics",
    "probe",
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
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // `use crate::{a::X, b, c::{..}}`: the first segment of each
            // top-level item in the braces.
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
        rest = after;
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
