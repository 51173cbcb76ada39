//! One way to start queue workers from [`Settings`], shared by the worker binary
//! (`magic-master-worker run`) and the API's embedded workers (`EMBEDDED_WORKERS`): the
//! workers' names, their concurrency and heartbeat, and the [`JobContext`] each one runs
//! jobs with are decided here and nowhere else.

use crate::Stores;
use crate::execute::JobContext;
use crate::serve::{WorkerOptions, default_worker_name, run_worker};
use shared::Settings;
use shared::alerts::Alerts;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The queue workers one process runs: a name each, and how many jobs each runs at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSet {
    /// Stable names, one per worker.
    pub names: Vec<String>,
    /// Jobs each worker runs at once (at least 1).
    pub concurrency: usize,
}

impl WorkerSet {
    /// The one worker of `magic-master-worker run`: named `name`, else
    /// `MAGIC_MASTER_WORKER_NAME`, else `<hostname>-<pid>`; `concurrency`, else
    /// `MAGIC_MASTER_WORKER_CONCURRENCY`.
    pub fn standalone(
        settings: &Settings,
        name: Option<String>,
        concurrency: Option<usize>,
    ) -> WorkerSet {
        let name = name
            .or_else(|| settings.worker_name.clone())
            .unwrap_or_else(default_worker_name);
        WorkerSet {
            names: vec![name],
            concurrency: concurrency.unwrap_or(settings.worker_concurrency).max(1),
        }
    }

    /// The API's `EMBEDDED_WORKERS` workers: `<WORKER_NAME>-<i>`, or `embedded-<port>-<i>`
    /// when no name is set (stable across restarts on the same port, so a restarted API
    /// reclaims its orphaned jobs).
    pub fn embedded(settings: &Settings, port: u16) -> WorkerSet {
        let names = (0..settings.embedded_workers)
            .map(|i| match &settings.worker_name {
                Some(name) => format!("{name}-{i}"),
                None => format!("embedded-{port}-{i}"),
            })
            .collect();
        WorkerSet {
            names,
            concurrency: settings.worker_concurrency.max(1),
        }
    }

    /// Starts every worker of the set on `stores` until `shutdown` is cancelled; each
    /// handle ends once its worker has finished its running jobs and removed its heartbeat.
    pub fn spawn(
        self,
        settings: &Settings,
        stores: &Stores,
        alerts: &Alerts,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let heartbeat = Duration::from_secs(settings.worker_heartbeat_seconds);
        self.names
            .into_iter()
            .map(|name| {
                let ctx = JobContext::from_settings(settings, stores.db.clone(), alerts, &name);
                let options = WorkerOptions {
                    name,
                    concurrency: self.concurrency,
                    heartbeat,
                };
                tokio::spawn(run_worker(
                    ctx,
                    stores.queue.clone(),
                    options,
                    shutdown.clone(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(embedded: usize, name: Option<&str>) -> Settings {
        let mut settings = Settings::for_data_dir(std::path::Path::new("/tmp/unused"));
        settings.embedded_workers = embedded;
        settings.worker_name = name.map(str::to_owned);
        settings.worker_concurrency = 3;
        settings
    }

    #[test]
    fn embedded_workers_are_named_after_the_port_or_the_configured_name() {
        let set = WorkerSet::embedded(&settings(2, None), 8123);
        assert_eq!(set.names, ["embedded-8123-0", "embedded-8123-1"]);
        assert_eq!(set.concurrency, 3);
        let set = WorkerSet::embedded(&settings(2, Some("box")), 8123);
        assert_eq!(set.names, ["box-0", "box-1"]);
        assert!(WorkerSet::embedded(&settings(0, None), 1).names.is_empty());
    }

    #[test]
    fn the_command_line_overrides_the_settings_of_a_standalone_worker() {
        let s = settings(0, Some("box"));
        assert_eq!(
            WorkerSet::standalone(&s, None, None),
            WorkerSet {
                names: vec!["box".to_owned()],
                concurrency: 3
            }
        );
        let set = WorkerSet::standalone(&s, Some("other".to_owned()), Some(0));
        assert_eq!((set.names[0].as_str(), set.concurrency), ("other", 1));
        let unnamed = WorkerSet::standalone(&settings(0, None), None, None);
        assert!(unnamed.names[0].ends_with(&format!("-{}", std::process::id())));
    }
}
