//! A watchdog for every test that makes an [`Env`](super::Env), in process or with
//! processes: all the API's tests share one test binary, and nothing else bounds a test
//! that hangs (CI's limit is the whole Rust step's). A test that outlives its limit prints
//! what it and its processes were doing (the job and queue rows, their last log lines, and their thread
//! states and gdb backtraces through `scripts/report-hung.sh`) and aborts the test binary, so a hang fails in minutes
//! with evidence instead of running into CI's time limit with none.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long one test may run; `MAGIC_MASTER_TEST_WATCHDOG_SECONDS` overrides. The slowest
/// test takes well under a minute on a loaded 2-core machine.
const DEFAULT_LIMIT: Duration = Duration::from_secs(300);

/// Lines of each child's stderr shown in the report (its last ones).
const TAIL_LINES: usize = 40;

/// A child process the report describes: its label, pid and stderr lines.
struct Watched {
    label: String,
    pid: u32,
    logs: Logs,
}

/// What the watchdog reports on: the test, its database and its children.
#[derive(Default)]
struct Subject {
    children: Vec<Watched>,
}

/// Started with each test environment; stopped (without a report) when it is dropped.
pub struct Watchdog {
    finished: Arc<(Mutex<bool>, Condvar)>,
    subject: Arc<Mutex<Subject>>,
}

impl Watchdog {
    /// Starts watching the calling test (its thread name is the test's name).
    pub fn start(db_path: PathBuf) -> Watchdog {
        let limit = std::env::var("MAGIC_MASTER_TEST_WATCHDOG_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIMIT);
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed test")
            .to_owned();
        let finished = Arc::new((Mutex::new(false), Condvar::new()));
        let subject = Arc::new(Mutex::new(Subject::default()));
        let (done, watched) = (finished.clone(), subject.clone());
        std::thread::spawn(move || {
            let (lock, signal) = &*done;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, timeout) = signal
                .wait_timeout_while(guard, limit, |finished| !*finished)
                .unwrap_or_else(|e| e.into_inner());
            if timeout.timed_out() && !*guard {
                report_and_abort(&test, limit, &db_path, &watched);
            }
        });
        Watchdog { finished, subject }
    }

    /// Adds a child process, whose stderr lines go to `logs`, to the report.
    pub fn watch(&self, label: &str, pid: u32, logs: Logs) {
        self.subject
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .children
            .push(Watched {
                label: label.to_owned(),
                pid,
                logs,
            });
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, signal) = &*self.finished;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        signal.notify_all();
    }
}

/// The lines a child process has written to stderr, without their colour codes.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// Keeps one line.
    pub fn push(&self, line: &str) {
        self.lines().push(without_colours(line));
    }

    /// Whether one line contains every one of `parts`.
    pub fn contains(&self, parts: &[&str]) -> bool {
        self.lines()
            .iter()
            .any(|l| parts.iter().all(|p| l.contains(p)))
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `line` without its ANSI colour sequences (the services colour their logs).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the end of the sequence: its first letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes the report straight to the process's stderr (the test harness captures only
/// `eprintln!`, and a captured report would die with the aborted process), then aborts.
fn report_and_abort(
    test: &str,
    limit: Duration,
    db_path: &std::path::Path,
    subject: &Mutex<Subject>,
) {
    let mut out = String::new();
    out.push_str(&format!(
        "\n=== WATCHDOG: test `{test}` still running after {} s; aborting the test binary ===\n",
        limit.as_secs()
    ));
    out.push_str(&format!("--- database {}\n", db_path.display()));
    out.push_str(&database_rows(db_path));
    let subject = subject.lock().unwrap_or_else(|e| e.into_inner());
    for child in &subject.children {
        out.push_str(&format!(
            "--- {} (pid {}): its last log lines\n",
            child.label, child.pid
        ));
        let lines = child.logs.lines();
        for line in &lines[lines.len().saturating_sub(TAIL_LINES)..] {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    let pids = std::iter::once(std::process::id())
        .chain(subject.children.iter().map(|c| c.pid))
        .map(|p| p.to_string());
    out.push_str(&what_processes_do(pids));
    out.push_str("=== WATCHDOG: end of report ===\n");
    let _ = std::io::stderr().write_all(out.as_bytes());
    let _ = std::io::stderr().flush();
    std::process::abort();
}

/// The app's job rows and the queue's rows, read with a short busy timeout.
fn database_rows(db_path: &std::path::Path) -> String {
    use deadpool_sqlite::rusqlite::{Connection, OpenFlags};
    let conn = match Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return format!("  cannot open: {e}\n"),
    };
    let _ = conn.busy_timeout(Duration::from_secs(2));
    let queries = [
        "SELECT id, status, worker, progress, attempts, completions, error FROM master_jobs",
        "SELECT id, status, lock_by, lock_at, attempts, run_at, last_result FROM Jobs",
        "SELECT id, last_seen, strftime('%s', 'now') AS now FROM Workers",
        "SELECT name, pid, last_seen FROM worker_heartbeats",
    ];
    let mut out = String::new();
    for query in queries {
        out.push_str(&format!("  {query}\n"));
        match rows_as_text(&conn, query) {
            Ok(rows) => rows
                .iter()
                .for_each(|r| out.push_str(&format!("    {r}\n"))),
            Err(e) => out.push_str(&format!("    error: {e}\n")),
        }
    }
    out
}

fn rows_as_text(
    conn: &deadpool_sqlite::rusqlite::Connection,
    query: &str,
) -> deadpool_sqlite::rusqlite::Result<Vec<String>> {
    use deadpool_sqlite::rusqlite::types::ValueRef;
    let mut stmt = conn.prepare(query)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let fields: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i) {
                Ok(ValueRef::Null) => "NULL".to_owned(),
                Ok(ValueRef::Integer(n)) => n.to_string(),
                Ok(ValueRef::Real(x)) => x.to_string(),
                Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).chars().take(120).collect(),
                Ok(ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
                Err(e) => format!("<{e}>"),
            })
            .collect();
        out.push(fields.join(" | "));
    }
    Ok(out)
}

/// Each thread's state, kernel wait and gdb backtrace for `pids`, from the same script
/// that reports a hung step of `scripts/test.sh` (bounded: gdb gets a minute per process).
fn what_processes_do(pids: impl Iterator<Item = String>) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/report-hung.sh");
    match Command::new("bash")
        .arg(script)
        .arg("--pids")
        .args(pids)
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("  (no process report: {e})\n"),
    }
}
