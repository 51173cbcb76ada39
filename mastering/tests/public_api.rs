//! The public surface of `mastering`, read from its source (runs in milliseconds, links
//! nothing of the crate): the crate root exports exactly [`PUBLIC_API`]; every module is
//! public only with the `internals` (or `testutil`) feature; and the service's crates name
//! nothing of `mastering` outside that list. The last check matters because `cargo test
//! --workspace` builds `mastering` with `internals` on (its own dev-dependency turns it on
//! for the whole build), so an internal path used by the API would compile in the tests
//! and fail only in the production build.
//!
//! Growing the public API is a decision: add the item to [`PUBLIC_API`] and to the list in
//! `mastering/src/lib.rs`'s docs and `mastering/README.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What `mastering` exports without features.
const PUBLIC_API: &[&str] = &[
    // entry points
    "probe",
    "probe_masterable",
    "analyze_file",
    "analyze_file_within",
    "master_file",
    "master_file_within",
    // parameters and styles
    "MasterParams",
    "OutputFormat",
    "Style",
    "DEFAULT_TRUE_PEAK_DB",
    // progress
    "Progress",
    "Stage",
    // reports
    "Analysis",
    "AudioInfo",
    "Loudness",
    "MasterReport",
    "SpectrumBand",
    "StreamingPreview",
    // errors
    "MasterError",
    "ParamError",
];

/// The features under which a module of the crate root may be `pub`.
const INTERNAL_FEATURES: &[&str] = &[
    "#[cfg(feature = \"internals\")]",
    "#[cfg(feature = \"testutil\")]",
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `source` without its comments (`//` to the end of the line; the crate's sources have
/// no `//` inside string literals where it matters here).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last path segment of each leaf of a `use` tree (`a::{b, c::d as e}` → b, e).
fn use_leaves(tree: &str) -> Vec<String> {
    tree.split([',', '{', '}'])
        .map(str::trim)
        .filter(|part| !part.is_empty() && !part.ends_with("::"))
        .map(|part| {
            let part = part.rsplit(" as ").next().unwrap_or(part);
            part.rsplit("::").next().unwrap_or(part).trim().to_owned()
        })
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

/// The public items declared in the crate root `source`, and the `pub mod` declarations
/// that lack an internal feature on the line above.
fn root_items(source: &str) -> (BTreeSet<String>, Vec<String>) {
    let code = code_of(source);
    let mut items = BTreeSet::new();
    let mut ungated_modules = Vec::new();
    let lines: Vec<&str> = code.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("pub ") else {
            continue;
        };
        if let Some(tree) = rest.strip_prefix("use ") {
            // A `use` may span lines: read up to its `;`.
            let mut statement = tree.to_owned();
            let mut next = i + 1;
            while !statement.contains(';') && next < lines.len() {
                statement.push_str(lines[next]);
                next += 1;
            }
            let tree = statement.split(';').next().unwrap_or("");
            items.extend(use_leaves(tree));
            continue;
        }
        let mut words = rest.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        let keyword = words.next().unwrap_or("");
        let keyword = if matches!(keyword, "const" | "unsafe" | "async" | "extern") {
            // `pub const fn`, `pub const NAME`, …
            match words.clone().next() {
                Some("fn") => {
                    words.next();
                    "fn"
                }
                _ => keyword,
            }
        } else {
            keyword
        };
        let Some(name) = words.find(|w| !w.is_empty()) else {
            continue;
        };
        if keyword == "mod" {
            let gated = i > 0 && INTERNAL_FEATURES.contains(&lines[i - 1].trim());
            if !gated {
                ungated_modules.push(name.to_owned());
            }
            continue;
        }
        items.insert(name.to_owned());
    }
    (items, ungated_modules)
}

#[test]
fn the_crate_root_exports_exactly_the_public_api() {
    let source = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    let (items, ungated_modules) = root_items(&source);
    let expected: BTreeSet<String> = PUBLIC_API.iter().map(|s| (*s).to_owned()).collect();
    let added: Vec<_> = items.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&items).collect();
    assert!(
        added.is_empty() && missing.is_empty(),
        "src/lib.rs exports {added:?} beyond PUBLIC_API and lacks {missing:?} of it: \
         internals stay pub(crate) (public through the `internals` feature); a new public \
         item goes into PUBLIC_API, the crate docs and mastering/README.md"
    );
    assert!(
        ungated_modules.is_empty(),
        "modules public without the `internals` feature: {ungated_modules:?} (declare them \
         `#[cfg(feature = \"internals\")] pub mod` and `#[cfg(not(feature = \"internals\"))] \
         pub(crate) mod`)"
    );
}

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

/// The names `code` reaches through `mastering::` (the first segment after it; the leaves
/// of a `use mastering::{…}` group).
fn names_used(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("mastering::") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue; // `other_mastering::`
        }
        let rest = &code[at + "mastering::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            // Only the first segment of each leaf must be public.
            names.extend(
                group
                    .split(',')
                    .map(|leaf| leaf.trim().split("::").next().unwrap_or("").trim())
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

#[test]
fn the_service_crates_use_only_the_public_api() {
    let root = crate_dir().parent().unwrap();
    let mut files = Vec::new();
    for service_crate in ["api/src", "worker/src", "shared/src"] {
        rust_files(&root.join(service_crate), &mut files);
    }
    assert!(
        files.len() > 10,
        "the service crates' sources were not found"
    );
    let mut outside = Vec::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for name in names_used(&code) {
            if !PUBLIC_API.contains(&name.as_str()) {
                outside.push(format!("{}: mastering::{name}", file.display()));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "the service names internals of mastering (they compile in the tests, where the \
         `internals` feature is on, and break the production build): {outside:#?}"
    );
}

#[test]
fn the_readers_find_what_they_must() {
    // The checks above are only as good as their parsing: prove it on known sources.
    let (items, ungated) = root_items(
        "pub use a::{B, c::D as E};\npub use f::{\n    G,\n    H,\n};\npub fn probe() {}\n\
         pub struct S;\npub const fn k() {}\npub const N: u8 = 1;\npub(crate) fn hidden() {}\n\
         #[cfg(feature = \"internals\")]\npub mod gated;\n#[cfg(not(feature = \"internals\"))]\n\
         pub(crate) mod gated;\npub mod open;\n// pub fn in_a_comment() {}\n",
    );
    let expected: BTreeSet<String> = ["B", "E", "G", "H", "probe", "S", "k", "N"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(items, expected);
    assert_eq!(ungated, vec!["open".to_owned()]);
    assert_eq!(
        names_used("use mastering::{MasterParams, dsp::eq};\nlet x = mastering::chain::Y;"),
        vec!["MasterParams", "dsp", "chain"]
    );
}
