//! The API's integration tests, in one test binary: each module is one area (the file of
//! the same name) and `common` their harness. One binary instead of one per file: each
//! would link the whole API (tokio, axum, rusqlite, the mastering library) again, and the
//! release build of the tests cost far more in linking than in running them. Select an
//! area with `cargo test --release -p magic-master-api --test integration accounts::`.
//!
//! Every test shares this process: settings go through `Env` (never the process
//! environment), and the Prometheus recorder is one per process (the tests that count its
//! samples run the release binary, see `common::in_process`).

mod common;
mod harness;

mod accounts;
mod cli;
mod layering;
mod limits;
mod media;
mod ops;
mod payments;
mod service;
mod trust;
mod web;

/// A test file of `api/tests/integration/` that is not declared above is never compiled,
/// and one put in `api/tests/` directly is a test binary of its own that links the whole
/// API again: both fail here.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared = include_str!("main.rs");
    let mut undeclared = Vec::new();
    for entry in std::fs::read_dir(tests.join("integration")).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && name != "main" && !declared.contains(&format!("\nmod {name};")) {
            undeclared.push(path.display().to_string());
        }
    }
    assert!(
        undeclared.is_empty(),
        "not declared in api/tests/integration/main.rs: {undeclared:?}"
    );
    let separate: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        separate.is_empty(),
        "test files of their own binary (move them into api/tests/integration/ and declare \
         them in main.rs): {separate:?}"
    );
}
