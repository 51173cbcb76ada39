-- Mastering jobs as clients see them. The apalis queue tables (Jobs, Workers) live in the
-- same file; SQLite table names are case-insensitive, hence the `master_` prefix.
CREATE TABLE master_jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
    progress        INTEGER NOT NULL DEFAULT 0,
    message         TEXT NOT NULL DEFAULT '',
    error           TEXT,
    style           TEXT NOT NULL,
    target_lufs     REAL NOT NULL,
    true_peak_db    REAL NOT NULL,
    out_format      TEXT NOT NULL,
    params_json     TEXT NOT NULL,
    original_name   TEXT NOT NULL,
    input_path      TEXT NOT NULL,
    result_path     TEXT,
    before_json     TEXT,
    after_json      TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    expired_at      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    completions     INTEGER NOT NULL DEFAULT 0,
    worker          TEXT
);

CREATE INDEX master_jobs_status_finished ON master_jobs (status, finished_at);
CREATE INDEX master_jobs_created ON master_jobs (created_at);
