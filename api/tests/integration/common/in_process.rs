//! The in-process harness: the whole service ([`magic_master_api::run`]: router, embedded
//! workers, sweeper, monitor) started in the test's own tokio runtime, with settings built
//! from the environment's variables ([`shared::Settings::from_vars`]) so tests running in
//! parallel threads never touch the process environment. No binary, no child process: a
//! test using it fails by its own assertions (or, if it hangs, by its `Env`'s watchdog), and
//! its client talks HTTP to it exactly as to the real binary.
//!
//! Process-wide state is shared by the services of the test binary (all the API's tests): the Prometheus recorder
//! (`/metrics` figures and their refresh) and nothing else of the API's. A test that counts
//! metric samples therefore runs the binary ([`super::process`]).

use super::{Env, client, wait_for};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A service running in this test's runtime; shut down (gracefully) when dropped.
pub struct App {
    /// Sending or dropping it resolves the service's shutdown future.
    stop: Option<oneshot::Sender<()>>,
    service: Option<JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// Serves `vars` (full `MAGIC_MASTER_*` names) on `listener` and waits until its
    /// `/api/health` answers; panics with the start-up error if `run` returns one.
    async fn start(vars: &HashMap<String, String>, listener: TcpListener) -> App {
        log_when_asked();
        let settings = shared::Settings::from_vars(vars).expect("test settings");
        let health = format!("http://{}/api/health", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let mut service = tokio::spawn(magic_master_api::run(settings, listener, async {
            let _ = stopped.await;
        }));
        let client = client();
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(20),
            async || {
                if service.is_finished() {
                    let outcome = (&mut service).await;
                    panic!("the in-process service stopped at start-up: {outcome:?}");
                }
                match client.get(&health).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("{health} answered {}", r.status())),
                    Err(e) => Err(format!("{health}: {e}")),
                }
            },
        )
        .await;
        App {
            stop: Some(stop),
            service: Some(service),
        }
    }

    /// Shuts the service down and waits until [`magic_master_api::run`] has returned
    /// (running jobs finished, the queue closed); panics if it failed. No test needs this
    /// today (dropping the `App` starts the same shutdown without waiting for it).
    #[allow(dead_code)]
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(service) = self.service.take() {
            let outcome = service.await.expect("the in-process service panicked");
            outcome.expect("the in-process service failed");
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Dropping the sender starts the shutdown; the service task ends on its own (or
        // with the test's runtime).
        self.stop.take();
    }
}

impl Env {
    /// Starts the service in process on [`Env::port`] with [`Env::vars`] as its settings
    /// and waits until `/api/health` answers. Once per environment (the port is bound
    /// once).
    pub async fn spawn_app(&self) -> App {
        let listener = self.take_listener();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        App::start(&self.vars, listener).await
    }

    /// A worker on this environment's database, started in process: a service of its
    /// own (on a port nobody calls) with one embedded worker, named `{name}-0`, and the
    /// settings of [`Env::vars`]. For tests that need a worker only from some point on.
    pub async fn spawn_worker(&self, name: &str) -> App {
        let mut vars = self.vars.clone();
        vars.insert("MAGIC_MASTER_EMBEDDED_WORKERS".into(), "1".into());
        vars.insert("MAGIC_MASTER_WORKER_NAME".into(), name.into());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        App::start(&vars, listener).await
    }
}

/// With `RUST_LOG` set for the test run (`RUST_LOG=info cargo test … -- --nocapture`), the
/// in-process services log to the test's output; they are silent otherwise.
fn log_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}
