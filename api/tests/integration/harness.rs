//! The harness itself: a test that hangs is stopped by its `Env`'s watchdog, in process as
//! with processes, with a report naming it (this binary runs every API test, so nothing
//! else would stop it before CI's limit on the whole Rust step).

use crate::common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set only by [`a_hanging_in_process_test_is_aborted_with_a_report_naming_it`] for the
/// child it starts, so that `cargo test -- --ignored` never hangs here.
const HANG_ON_PURPOSE: &str = "MAGIC_MASTER_TEST_HANG_ON_PURPOSE";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "hangs on purpose: run by a_hanging_in_process_test_is_aborted_with_a_report_naming_it"]
async fn hangs_in_process_on_purpose() {
    if std::env::var_os(HANG_ON_PURPOSE).is_none() {
        return;
    }
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    std::future::pending::<()>().await;
}

#[test]
fn a_hanging_in_process_test_is_aborted_with_a_report_naming_it() {
    let test = "harness::hangs_in_process_on_purpose";
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", test, "--nocapture"])
        .env(HANG_ON_PURPOSE, "1")
        .env("MAGIC_MASTER_TEST_WATCHDOG_SECONDS", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The report's backtraces take gdb up to a minute; without a watchdog it never ends.
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let report = reader.join().unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("the hanging in-process test was still running after 90 s: no watchdog")
    });
    assert!(!status.success(), "the hanging test passed: {status:?}");
    assert!(
        report.contains(&format!(
            "WATCHDOG: test `{test}` still running after 3 s; aborting the test binary"
        )),
        "no watchdog report naming the test: {report}"
    );
}
