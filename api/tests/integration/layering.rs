//! The API crate's layering, read from its source (no binary is started; this runs in
//! milliseconds):
//!
//! - the modules of `api/src` import each other without a cycle (`crate::a` naming
//!   `crate::b` is an edge a → b; the crate root `lib.rs`, which declares every module and
//!   wires the router, is the composition root and is left out);
//! - `api/src` holds no SQL: storage is `shared`'s (docs/ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source of `api/src` by module path (`auth`, `routes::health`, `error`, …; the
/// crate root is `lib`, the binary `main`).
fn sources() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            (parts.join("::"), std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The modules of the import graph: every source but the crate root and the binary.
fn modules() -> BTreeMap<String, String> {
    let mut modules = sources();
    modules.remove("lib");
    modules.remove("main");
    modules
}

/// The paths a source's code names after `crate::` (comments, which only link, are left
/// out), with `use crate::{a, b::c}` groups expanded one level (enough for this crate's
/// style).
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let rest = &code[start + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|p| p.trim().to_owned()));
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_owned());
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module of the crate.
fn module_of(path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

/// Module → the other modules it names.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    modules
        .iter()
        .map(|(name, source)| {
            let targets = crate_paths(source)
                .iter()
                .filter_map(|p| module_of(p, &modules))
                .filter(|target| target != name)
                .collect();
            (name.clone(), targets)
        })
        .collect()
}

/// One cycle of `graph` (its modules in order, the first repeated at the end), if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_paths(
            "use crate::{AppState, auth::Caller};\n/// [`crate::cors`]\nlet x = crate::routes::health::f();"
        ),
        ["AppState", "auth::Caller", "routes::health::f"]
    );
}

#[test]
fn the_modules_of_the_api_import_each_other_without_a_cycle() {
    let graph = import_graph();
    assert!(
        graph.contains_key("auth") && graph.contains_key("routes::health"),
        "the modules were not found: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle: {}; move what both need to the module that owns the concept",
            cycle.join(" → ")
        );
    }
}

#[test]
fn the_api_holds_no_sql() {
    const SQL: &[&str] = &[
        "rusqlite",
        "with_conn",
        ".interact(",
        "SELECT ",
        "INSERT INTO",
        "UPDATE ",
        "DELETE FROM",
    ];
    let mut found = Vec::new();
    for (module, source) in sources() {
        for (n, line) in source.lines().enumerate() {
            if let Some(word) = SQL.iter().find(|w| line.contains(*w)) {
                found.push(format!("{module}:{}: {word:?} in {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL belongs in shared (a function there the route calls):\n{}",
        found.join("\n")
    );
}
