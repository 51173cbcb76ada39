//! Typed configuration: defaults, then `.env`, then `MAGIC_MASTER_*` environment variables.
//!
//! [`Settings::load`] validates every value at start-up; an invalid value stops the process
//! with a message naming the variable, e.g.
//! `MAGIC_MASTER_PORT: expected a port number, got "abc"`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Prefix of every configuration variable.
pub const ENV_PREFIX: &str = "MAGIC_MASTER_";

/// A configuration value that failed validation; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingsError {
    /// Full variable name, e.g. `MAGIC_MASTER_PORT`.
    pub variable: String,
    /// What is wrong with its value.
    pub problem: String,
}

/// A secret string: usable, but printed as `"***"` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// All settings of the API and worker processes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the API listens on (`MAGIC_MASTER_HOST`, default 127.0.0.1).
    pub host: IpAddr,
    /// Port the API listens on (`MAGIC_MASTER_PORT`, default 8000; 0 picks a free port).
    pub port: u16,
    /// Directory holding uploads, results and the database (`MAGIC_MASTER_DATA_DIR`, `./data`).
    pub data_dir: PathBuf,
    /// SQLite file (`MAGIC_MASTER_DB_PATH`, default `<DATA_DIR>/magic_master.db`).
    pub db_path: PathBuf,
    /// Scratch space for uploads in flight (`MAGIC_MASTER_TEMP_DIR`, default `<DATA_DIR>/tmp`).
    pub temp_dir: PathBuf,
    /// Largest accepted upload in MiB (`MAGIC_MASTER_MAX_UPLOAD_MB`, default 200).
    pub max_upload_mb: u64,
    /// Seconds a finished job's files are kept (`MAGIC_MASTER_JOBS_DONE_TTL_SECONDS`, 86400).
    pub jobs_done_ttl_seconds: u64,
    /// How often the retention sweeper runs (`MAGIC_MASTER_SWEEP_INTERVAL_SECONDS`, 60).
    pub sweep_interval_seconds: u64,
    /// Workers the API runs in-process (`MAGIC_MASTER_EMBEDDED_WORKERS`, default 1).
    pub embedded_workers: usize,
    /// Jobs one worker process runs at once (`MAGIC_MASTER_WORKER_CONCURRENCY`, default 1).
    pub worker_concurrency: usize,
    /// Stable worker name (`MAGIC_MASTER_WORKER_NAME`); default `<hostname>-<pid>`.
    pub worker_name: Option<String>,
    /// Queue heartbeat period in seconds (`MAGIC_MASTER_WORKER_HEARTBEAT_SECONDS`, 10); a worker
    /// silent for two periods is presumed dead and its job is handed to another worker.
    pub worker_heartbeat_seconds: u64,
    /// Runs of one job before it is failed for good (`MAGIC_MASTER_JOB_MAX_ATTEMPTS`, 5).
    pub job_max_attempts: u32,
    /// Longest audio accepted for mastering and analysis, seconds
    /// (`MAGIC_MASTER_MAX_DURATION_SECONDS`, default 7200, at most 86400).
    pub max_duration_seconds: u64,
    /// Wall-clock time one run of a job may take before it is stopped and failed for good
    /// (`MAGIC_MASTER_JOB_TIMEOUT_SECONDS`, default 900, at most 86400).
    pub job_timeout_seconds: u64,
    /// Analyses (`POST /api/v2/analyze`) a minute per client IP
    /// (`MAGIC_MASTER_ANALYZE_RATE_LIMIT`, default 6; 0 turns it off).
    pub analyze_rate_limit: u32,
    /// Log line format (`MAGIC_MASTER_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// Guest jobs per day and IP (`MAGIC_MASTER_GUEST_DAILY_LIMIT`; used by the accounts issue).
    pub guest_daily_limit: Option<u32>,
    /// Requests a minute per client IP on every route except health, metrics and the payment
    /// webhook (`MAGIC_MASTER_GLOBAL_RATE_LIMIT`, default [`DEFAULT_GLOBAL_RATE_LIMIT`];
    /// 0 turns it off). Read it through [`Settings::global_rate_limit`].
    pub global_rate_limit: Option<u32>,
    /// Allowed CORS origins, comma-separated (`MAGIC_MASTER_CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    /// JWT signing key (`MAGIC_MASTER_JWT_SECRET`).
    pub jwt_secret: Option<Secret>,
    /// First admin account (`MAGIC_MASTER_ADMIN_EMAIL`).
    pub admin_email: Option<String>,
    /// First admin password (`MAGIC_MASTER_ADMIN_PASSWORD`).
    pub admin_password: Option<Secret>,
    /// Telegram bot token for alerts (`MAGIC_MASTER_TELEGRAM_BOT_TOKEN`).
    pub telegram_bot_token: Option<Secret>,
    /// Telegram chat receiving alerts (`MAGIC_MASTER_TELEGRAM_ADMIN_CHAT_ID`).
    pub telegram_admin_chat_id: Option<String>,
    /// Telegram Bot API base URL (`MAGIC_MASTER_TELEGRAM_API_URL`).
    pub telegram_api_url: Option<String>,
    /// At most one Telegram alert per kind in this many seconds
    /// (`MAGIC_MASTER_TELEGRAM_THROTTLE_SECONDS`, default 300).
    pub telegram_throttle_seconds: u64,
    /// `/api/health` reports the disk `low` (and `degraded`) under this many MB free in the
    /// temp dir (`MAGIC_MASTER_DISK_LOW_MB`, default 200).
    pub disk_low_mb: u64,
    /// How often the API checks health (for alerts) and refreshes metrics
    /// (`MAGIC_MASTER_MONITOR_INTERVAL_SECONDS`, default 15).
    pub monitor_interval_seconds: u64,
    /// YooKassa shop id (`MAGIC_MASTER_YOOKASSA_SHOP_ID`).
    pub yookassa_shop_id: Option<String>,
    /// YooKassa secret key (`MAGIC_MASTER_YOOKASSA_SECRET_KEY`).
    pub yookassa_secret_key: Option<Secret>,
    /// Return URL after payment (`MAGIC_MASTER_YOOKASSA_RETURN_URL`).
    pub yookassa_return_url: Option<String>,
    /// Webhook source IPs/CIDRs, comma-separated (`MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST`).
    pub yookassa_webhook_ip_whitelist: Vec<String>,
    /// YooKassa API base URL (`MAGIC_MASTER_YOOKASSA_API_URL`).
    pub yookassa_api_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed, IPs/CIDRs comma-separated
    /// (`MAGIC_MASTER_TRUSTED_PROXIES`; empty: the peer address is the client).
    pub trusted_proxies: Vec<String>,
    /// Requests a minute per IP on the register/login routes (`MAGIC_MASTER_AUTH_RATE_LIMIT`, 10).
    pub auth_rate_limit: u32,
    /// Lifetime of an access token in seconds (`MAGIC_MASTER_JWT_TTL_SECONDS`, 604800 = 7 days).
    pub jwt_ttl_seconds: u64,
    /// JSON file replacing the built-in payment plans (`MAGIC_MASTER_PAYMENT_PLANS_FILE`).
    pub payment_plans_file: Option<PathBuf>,
    /// Seconds a client has to send a whole request head; also how long an idle keep-alive
    /// connection stays open (`MAGIC_MASTER_HEADER_TIMEOUT_SECONDS`, default 10).
    pub header_timeout_seconds: u64,
    /// A request body that sends no byte for this many seconds is cut off with 408
    /// (`MAGIC_MASTER_BODY_IDLE_TIMEOUT_SECONDS`, default 30).
    pub body_idle_timeout_seconds: u64,
    /// Slowest average rate of a request body in KiB/s, after the first
    /// `BODY_IDLE_TIMEOUT_SECONDS` (`MAGIC_MASTER_BODY_MIN_RATE_KIB`, default 32).
    pub body_min_rate_kib: u64,
    /// Uploads (master and analyze) one client IP may have in flight
    /// (`MAGIC_MASTER_UPLOADS_PER_IP`, default 3); more get 429.
    pub uploads_per_ip: usize,
    /// Uploads in flight over all clients (`MAGIC_MASTER_UPLOADS_MAX`, default 16); more get 503.
    pub uploads_max: usize,
}

/// Guest masters a day per IP when `MAGIC_MASTER_GUEST_DAILY_LIMIT` is unset.
pub const DEFAULT_GUEST_DAILY_LIMIT: u32 = 3;

/// Requests a minute per client IP when `MAGIC_MASTER_GLOBAL_RATE_LIMIT` is unset: ten a
/// second on average, far above what one person's browser needs (a page load is about 20
/// requests, a job's progress poll one a second) yet a cap on scripted floods.
pub const DEFAULT_GLOBAL_RATE_LIMIT: u32 = 600;

impl Settings {
    /// Loads `.env` from the working directory (if present) and the process environment;
    /// environment variables win over `.env`.
    pub fn load() -> Result<Settings, SettingsError> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(Path::new(".env")) {
            for (key, value) in iter.flatten() {
                if key.starts_with(ENV_PREFIX) {
                    vars.insert(key, value);
                }
            }
        }
        for (key, value) in std::env::vars() {
            if key.starts_with(ENV_PREFIX) {
                vars.insert(key, value);
            }
        }
        Settings::from_vars(&vars)
    }

    /// Builds settings from a map of full variable names to values (missing → default).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        Settings::read(&Reader::new(vars))
    }

    /// The full name of every variable the settings read (`MAGIC_MASTER_HOST`, …), in the
    /// order they are read.
    pub fn variable_names() -> Vec<String> {
        let none = HashMap::new();
        let reader = Reader::new(&none);
        // With no variable set every default applies, so reading cannot fail; every
        // variable is asked for whatever the outcome.
        let _ = Settings::read(&reader);
        reader.asked.into_inner()
    }

    fn read(r: &Reader<'_>) -> Result<Settings, SettingsError> {
        let data_dir: PathBuf = r
            .path("DATA_DIR")?
            .unwrap_or_else(|| PathBuf::from("./data"));
        let db_path = r
            .path("DB_PATH")?
            .unwrap_or_else(|| data_dir.join("magic_master.db"));
        let temp_dir = r.path("TEMP_DIR")?.unwrap_or_else(|| data_dir.join("tmp"));
        let settings = Settings {
            host: r
                .parsed("HOST", "an IP address")?
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: r.parsed("PORT", "a port number")?.unwrap_or(8000),
            db_path,
            temp_dir,
            data_dir,
            max_upload_mb: r.positive("MAX_UPLOAD_MB")?.unwrap_or(200),
            jobs_done_ttl_seconds: r.positive("JOBS_DONE_TTL_SECONDS")?.unwrap_or(86_400),
            sweep_interval_seconds: r.positive("SWEEP_INTERVAL_SECONDS")?.unwrap_or(60),
            embedded_workers: r
                .parsed::<usize>("EMBEDDED_WORKERS", "a whole number (0 or more)")?
                .unwrap_or(1),
            worker_concurrency: r.positive("WORKER_CONCURRENCY")?.unwrap_or(1) as usize,
            worker_name: r.text("WORKER_NAME"),
            worker_heartbeat_seconds: r.positive("WORKER_HEARTBEAT_SECONDS")?.unwrap_or(10),
            job_max_attempts: r.positive("JOB_MAX_ATTEMPTS")?.unwrap_or(5) as u32,
            max_duration_seconds: r.at_most("MAX_DURATION_SECONDS", 86_400)?.unwrap_or(7200),
            job_timeout_seconds: r.at_most("JOB_TIMEOUT_SECONDS", 86_400)?.unwrap_or(900),
            analyze_rate_limit: r
                .parsed("ANALYZE_RATE_LIMIT", "a whole number")?
                .unwrap_or(6),
            log_format: match r.text("LOG_FORMAT").as_deref() {
                None => LogFormat::Text,
                Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
                Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
                Some(v) => return Err(r.error("LOG_FORMAT", "text or json", v)),
            },
            guest_daily_limit: r.parsed("GUEST_DAILY_LIMIT", "a whole number")?,
            global_rate_limit: r.parsed("GLOBAL_RATE_LIMIT", "a whole number")?,
            cors_origins: r.list("CORS_ORIGINS"),
            // Set but empty stays `Some("")`: the API refuses it (an unfilled example line),
            // while unset means "generate one".
            jwt_secret: r.set("JWT_SECRET").map(Secret),
            admin_email: r.text("ADMIN_EMAIL"),
            admin_password: r.text("ADMIN_PASSWORD").map(Secret),
            telegram_bot_token: r.text("TELEGRAM_BOT_TOKEN").map(Secret),
            telegram_admin_chat_id: r.text("TELEGRAM_ADMIN_CHAT_ID"),
            telegram_api_url: r.text("TELEGRAM_API_URL"),
            telegram_throttle_seconds: r.positive("TELEGRAM_THROTTLE_SECONDS")?.unwrap_or(300),
            disk_low_mb: r
                .parsed::<u64>("DISK_LOW_MB", "a whole number of MB")?
                .unwrap_or(200),
            monitor_interval_seconds: r.positive("MONITOR_INTERVAL_SECONDS")?.unwrap_or(15),
            yookassa_shop_id: r.text("YOOKASSA_SHOP_ID"),
            yookassa_secret_key: r.text("YOOKASSA_SECRET_KEY").map(Secret),
            yookassa_return_url: r.text("YOOKASSA_RETURN_URL"),
            yookassa_webhook_ip_whitelist: r.list("YOOKASSA_WEBHOOK_IP_WHITELIST"),
            yookassa_api_url: r.text("YOOKASSA_API_URL"),
            trusted_proxies: r.list("TRUSTED_PROXIES"),
            auth_rate_limit: r.positive("AUTH_RATE_LIMIT")?.unwrap_or(10) as u32,
            jwt_ttl_seconds: r.positive("JWT_TTL_SECONDS")?.unwrap_or(604_800),
            payment_plans_file: r.path("PAYMENT_PLANS_FILE")?,
            header_timeout_seconds: r.positive("HEADER_TIMEOUT_SECONDS")?.unwrap_or(10),
            body_idle_timeout_seconds: r.positive("BODY_IDLE_TIMEOUT_SECONDS")?.unwrap_or(30),
            body_min_rate_kib: r.positive("BODY_MIN_RATE_KIB")?.unwrap_or(32),
            uploads_per_ip: r.positive("UPLOADS_PER_IP")?.unwrap_or(3) as usize,
            uploads_max: r.positive("UPLOADS_MAX")?.unwrap_or(16) as usize,
        };
        Ok(settings)
    }

    /// Settings for a data directory with every other value at its default (tests, tools).
    pub fn for_data_dir(data_dir: &Path) -> Settings {
        let mut vars = HashMap::new();
        vars.insert(
            format!("{ENV_PREFIX}DATA_DIR"),
            data_dir.to_string_lossy().into_owned(),
        );
        // Only DATA_DIR is set and it is always valid, so this cannot fail.
        Settings::from_vars(&vars).unwrap_or_else(|e| unreachable!("default settings: {e}"))
    }

    /// Guest masters a day per IP.
    pub fn guest_daily_limit(&self) -> u32 {
        self.guest_daily_limit.unwrap_or(DEFAULT_GUEST_DAILY_LIMIT)
    }

    /// Requests a minute per client IP for the global rate limit; 0 = off.
    pub fn global_rate_limit(&self) -> u32 {
        self.global_rate_limit.unwrap_or(DEFAULT_GLOBAL_RATE_LIMIT)
    }

    /// Largest accepted upload in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.saturating_mul(1024 * 1024)
    }

    /// Creates the data, temp, uploads and results directories.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [
            self.data_dir.clone(),
            self.temp_dir.clone(),
            self.data_dir.join("uploads"),
            self.data_dir.join("results"),
        ] {
            std::fs::create_dir_all(&dir)?;
        }
        if let Some(parent) = self.db_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        Ok(())
    }
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    /// Every variable asked for, in order: the list of settings [`Settings::variable_names`]
    /// gives to the test that keeps the README and `.env.example` complete.
    asked: RefCell<Vec<String>>,
}

impl<'a> Reader<'a> {
    fn new(vars: &'a HashMap<String, String>) -> Self {
        Reader {
            vars,
            asked: RefCell::default(),
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.set(name).filter(|v| !v.is_empty())
    }

    /// The trimmed value whenever the variable is present, even empty.
    fn set(&self, name: &str) -> Option<String> {
        let variable = format!("{ENV_PREFIX}{name}");
        let value = self.vars.get(&variable).map(|v| v.trim().to_owned());
        self.asked.borrow_mut().push(variable);
        value
    }

    fn error(&self, name: &str, expected: &str, got: &str) -> SettingsError {
        SettingsError {
            variable: format!("{ENV_PREFIX}{name}"),
            problem: format!("expected {expected}, got {got:?}"),
        }
    }

    fn parsed<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, SettingsError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.error(name, expected, &v)),
        }
    }

    /// A whole number from 1 to `max`.
    fn at_most(&self, name: &str, max: u64) -> Result<Option<u64>, SettingsError> {
        match self.positive(name)? {
            Some(v) if v > max => Err(self.error(
                name,
                &format!("a whole number from 1 to {max}"),
                &v.to_string(),
            )),
            other => Ok(other),
        }
    }

    fn positive(&self, name: &str) -> Result<Option<u64>, SettingsError> {
        match self.parsed::<u64>(name, "a whole number greater than 0")? {
            Some(0) => Err(self.error(name, "a whole number greater than 0", "0")),
            other => Ok(other),
        }
    }

    fn path(&self, name: &str) -> Result<Option<PathBuf>, SettingsError> {
        Ok(self.text(name).map(PathBuf::from))
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    /// Every variable the settings read has a row in the README's configuration table and a
    /// line in `.env.example`, and neither names a variable the settings never read: the two
    /// documents an operator configures from cannot drift from the code.
    #[test]
    fn readme_and_env_example_list_exactly_the_variables_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let names = Settings::variable_names();
        assert!(names.len() > 30, "only {} variables read", names.len());
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let table: String = readme
            .lines()
            .filter(|l| l.starts_with("| `MAGIC_MASTER_"))
            .collect::<Vec<_>>()
            .join("\n");
        let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
        for name in &names {
            assert!(
                table.contains(&format!("`{name}`")),
                "{name} has no row in the README's configuration table"
            );
            assert!(
                example.contains(&format!("{name}=")),
                "{name} is missing from .env.example"
            );
        }
        for (document, text) in [("README table", &table), (".env.example", &example)] {
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                assert!(
                    !word.starts_with(ENV_PREFIX) || names.iter().any(|n| n == word),
                    "{document} documents {word}, which the settings never read"
                );
            }
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let s = Settings::from_vars(&HashMap::new()).unwrap();
        assert_eq!(s.host.to_string(), "127.0.0.1");
        assert_eq!(s.port, 8000);
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.db_path, PathBuf::from("./data/magic_master.db"));
        assert_eq!(s.temp_dir, PathBuf::from("./data/tmp"));
        assert_eq!(s.max_upload_mb, 200);
        assert_eq!(s.jobs_done_ttl_seconds, 86_400);
        assert_eq!(s.embedded_workers, 1);
        assert_eq!(s.worker_concurrency, 1);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.global_rate_limit(), DEFAULT_GLOBAL_RATE_LIMIT);
        assert_eq!(s.payment_plans_file, None);
        assert_eq!(s.header_timeout_seconds, 10);
        assert_eq!(s.body_idle_timeout_seconds, 30);
        assert_eq!(s.body_min_rate_kib, 32);
        assert_eq!((s.uploads_per_ip, s.uploads_max), (3, 16));
        assert_eq!(s.max_duration_seconds, 7200);
        assert_eq!(s.job_timeout_seconds, 900);
        assert_eq!(s.analyze_rate_limit, 6);
        let s = Settings::from_vars(&vars(&[("GLOBAL_RATE_LIMIT", "0")])).unwrap();
        assert_eq!(s.global_rate_limit(), 0, "0 turns the limit off");
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let err = Settings::from_vars(&vars(&[("PORT", "abc")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MAGIC_MASTER_PORT: expected a port number, got \"abc\""
        );
        let err = Settings::from_vars(&vars(&[("MAX_UPLOAD_MB", "0")])).unwrap_err();
        assert_eq!(err.variable, "MAGIC_MASTER_MAX_UPLOAD_MB");
        let err = Settings::from_vars(&vars(&[("LOG_FORMAT", "xml")])).unwrap_err();
        assert_eq!(err.variable, "MAGIC_MASTER_LOG_FORMAT");
        let err = Settings::from_vars(&vars(&[("HOST", "localhost:1")])).unwrap_err();
        assert_eq!(err.variable, "MAGIC_MASTER_HOST");
        for (name, value) in [
            ("MAX_DURATION_SECONDS", "0"),
            ("MAX_DURATION_SECONDS", "86401"),
            ("JOB_TIMEOUT_SECONDS", "1e9"),
            ("ANALYZE_RATE_LIMIT", "-1"),
            ("HEADER_TIMEOUT_SECONDS", "0"),
            ("BODY_IDLE_TIMEOUT_SECONDS", "0"),
            ("BODY_MIN_RATE_KIB", "0"),
            ("UPLOADS_PER_IP", "0"),
            ("UPLOADS_MAX", "0"),
        ] {
            let err = Settings::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, format!("MAGIC_MASTER_{name}"));
        }
    }

    #[test]
    fn data_dir_moves_derived_paths_and_secrets_are_redacted() {
        let s = Settings::from_vars(&vars(&[
            ("DATA_DIR", "/srv/mm"),
            ("JWT_SECRET", "hunter2"),
            ("EMBEDDED_WORKERS", "0"),
        ]))
        .unwrap();
        assert_eq!(s.db_path, PathBuf::from("/srv/mm/magic_master.db"));
        assert_eq!(s.temp_dir, PathBuf::from("/srv/mm/tmp"));
        assert_eq!(s.embedded_workers, 0);
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(s.jwt_secret.as_ref().map(Secret::expose), Some("hunter2"));
        let s = Settings::from_vars(&vars(&[("JWT_SECRET", " ")])).unwrap();
        assert_eq!(
            s.jwt_secret.as_ref().map(Secret::expose),
            Some(""),
            "set but empty is not unset"
        );
        assert!(
            Settings::from_vars(&HashMap::new())
                .unwrap()
                .jwt_secret
                .is_none()
        );
    }
}
