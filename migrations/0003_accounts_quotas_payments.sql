-- Accounts, job ownership, quota reservations, admin audit log and payments (issue 5).

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    email            TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash    TEXT NOT NULL,
    tier             TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'studio')),
    tier_expires_at  TEXT,
    tokens           INTEGER NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    is_admin         INTEGER NOT NULL DEFAULT 0,
    is_blocked       INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);

-- Who owns a job: a user, or the guest session (SHA-256 of the guest token) that made it.
ALTER TABLE master_jobs ADD COLUMN user_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE master_jobs ADD COLUMN guest_key TEXT;
ALTER TABLE master_jobs ADD COLUMN client_ip TEXT;
CREATE INDEX master_jobs_user ON master_jobs (user_id, created_at);

-- One row per queued job that used quota: a daily allowance slot or a bought token.
-- Refunded (refunded_at set) at most once, when the job finally fails.
CREATE TABLE quota_usage (
    job_id       TEXT PRIMARY KEY NOT NULL,
    user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    guest_ip     TEXT,
    day          TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('daily', 'token')),
    created_at   TEXT NOT NULL,
    refunded_at  TEXT
);
CREATE INDEX quota_usage_user_day ON quota_usage (user_id, day);
CREATE INDEX quota_usage_ip_day ON quota_usage (guest_ip, day);

-- Every admin action.
CREATE TABLE admin_audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id     INTEGER NOT NULL,
    admin_email  TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT,
    details      TEXT,
    created_at   TEXT NOT NULL
);

-- Payments (YooKassa). `credited_at` is set once, by a conditional update.
CREATE TABLE payments (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan          TEXT NOT NULL,
    amount        TEXT NOT NULL,
    currency      TEXT NOT NULL,
    status        TEXT NOT NULL,
    idempotence_key TEXT NOT NULL UNIQUE,
    demo          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    credited_at   TEXT,
    refunded_at   TEXT
);
CREATE INDEX payments_user ON payments (user_id, created_at);
