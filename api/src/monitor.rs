//! The API's periodic check: refreshes the metrics (and runs the Prometheus recorder's
//! upkeep), evaluates health, and sends a Telegram alert when health turns `degraded` and
//! another when it recovers.

use crate::AppState;
use crate::health_report;
use shared::alerts::{AlertKind, Alerts};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the last check saw; an alert goes out only on a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing checked yet (a first `ok` sends nothing).
    Unknown,
    /// Healthy.
    Ok,
    /// Degraded.
    Degraded,
}

/// One check; returns what it saw.
pub async fn check_once(state: &AppState, alerts: &Alerts, previous: Seen) -> Seen {
    crate::telemetry::prometheus().run_upkeep();
    crate::telemetry::refresh(state).await;
    let report = health_report::current(state).await;
    let problems = report.problems();
    if problems.is_empty() {
        if previous == Seen::Degraded {
            tracing::info!("health recovered");
            alerts.send(
                AlertKind::HealthRecovered,
                format!("✅ Magic Master {}: health is ok again.", shared::VERSION),
            );
        }
        Seen::Ok
    } else {
        if previous != Seen::Degraded {
            tracing::error!(problems = ?problems, "health degraded");
            alerts.send(
                AlertKind::HealthDegraded,
                format!(
                    "⚠️ Magic Master {}: health is DEGRADED\n- {}",
                    shared::VERSION,
                    problems.join("\n- ")
                ),
            );
        }
        Seen::Degraded
    }
}

/// Checks every `MONITOR_INTERVAL_SECONDS` until shut down.
pub async fn run(state: AppState, alerts: Alerts, shutdown: CancellationToken) {
    let every = Duration::from_secs(state.settings.monitor_interval_seconds);
    let mut seen = Seen::Unknown;
    loop {
        seen = check_once(&state, &alerts, seen).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
