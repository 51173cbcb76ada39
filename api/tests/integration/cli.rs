//! The `magic-master-api` command line and its log output, run as a real process:
//! `--help` lists every subcommand and points to the settings, an unknown subcommand is a
//! usage error (exit code 2), and logs written to a file carry no ANSI colour codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn api_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_magic-master-api"))
}

/// The binary run with `args` in an empty environment (no `MAGIC_MASTER_*`, no `.env`).
fn run_api(args: &[&str], dir: &Path) -> Output {
    Command::new(api_binary())
        .args(args)
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run magic-master-api")
}

#[test]
fn help_lists_every_subcommand_and_points_to_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_api(&["--help"], dir.path());
    assert!(help.status.success(), "--help failed: {help:?}");
    let text = String::from_utf8(help.stdout).unwrap();
    for subcommand in ["serve", "backup"] {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(subcommand)),
            "--help does not list `{subcommand}`:\n{text}"
        );
    }
    for pointer in ["MAGIC_MASTER_", "README.md", ".env"] {
        assert!(
            text.contains(pointer),
            "--help does not mention {pointer}:\n{text}"
        );
    }
}

#[test]
fn version_prints_the_package_version() {
    let dir = tempfile::tempdir().unwrap();
    let version = run_api(&["--version"], dir.path());
    assert!(version.status.success(), "--version failed: {version:?}");
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("magic-master-api {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_subcommand_is_a_usage_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = run_api(&["restore", "snapshot.sqlite3"], dir.path());
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let stderr = String::from_utf8(wrong.stderr).unwrap();
    assert!(
        stderr.contains("unrecognized subcommand 'restore'"),
        "the message does not name the wrong subcommand:\n{stderr}"
    );
    assert!(
        stderr.contains("--help"),
        "the message does not point to --help:\n{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a usage error must not start anything (a data directory was created)"
    );
}

#[test]
fn backup_without_its_output_path_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run_api(&["backup"], dir.path());
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8(missing.stderr).unwrap().contains("<OUT>"));
}

/// The service started with stderr to a file (as under systemd or `2> log`) logs plain text.
#[test]
fn logs_to_a_file_carry_no_ansi_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("api.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut api = Command::new(api_binary())
        .env_clear()
        .env("MAGIC_MASTER_DATA_DIR", dir.path().join("data"))
        .env("MAGIC_MASTER_HOST", "127.0.0.1")
        .env("MAGIC_MASTER_PORT", "0")
        .env("RUST_LOG", "info")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn magic-master-api");
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains("listening") {
            break text;
        }
        if let Some(status) = api.try_wait().unwrap() {
            panic!("the API exited ({status}) before listening:\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the API did not log `listening` within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = api.kill();
    let _ = api.wait();
    assert!(text.contains("INFO"), "no log line at level INFO:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape codes in a log written to a file:\n{text:?}"
    );
}
