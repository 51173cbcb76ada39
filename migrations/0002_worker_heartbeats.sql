-- Liveness of worker processes, for /api/health. (apalis keeps its own `Workers` table;
-- SQLite names are case-insensitive, so ours is called worker_heartbeats.)
CREATE TABLE worker_heartbeats (
    name        TEXT PRIMARY KEY NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    last_seen   INTEGER NOT NULL
);
