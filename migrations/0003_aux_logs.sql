-- Request logs, in auxiliary.db (not data.db): logging never contends with
-- the data writer, and a backup of the data need not carry the logs.
CREATE TABLE IF NOT EXISTS _logs (
    id      TEXT PRIMARY KEY NOT NULL,
    level   INTEGER DEFAULT 0 NOT NULL,
    message TEXT DEFAULT '' NOT NULL,
    data    JSON DEFAULT '{}' NOT NULL,
    created TEXT DEFAULT '' NOT NULL
);
-- One index only: every index is paid for on each logged request. `created`
-- serves time ranges, retention cleanup and the hourly stats; the default
-- order is rowid.
CREATE INDEX IF NOT EXISTS idx_logs_created ON _logs (created);
