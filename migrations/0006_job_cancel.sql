-- Cancel by the job's owner (issue 12): when the owner asked to cancel. A queued job is failed
-- at once; a running one is stopped by its worker, which polls this column, at the chain's
-- next progress check. A cancelled job ends `failed` with this column set.
ALTER TABLE master_jobs ADD COLUMN cancel_requested_at TEXT;
