-- Request logs, in auxiliary.db (not data.db): logging never contends with
-- the data writer, and a backup of the data need not carry the logs.
CREATE TABLE IF NOT EXISTS _logs (
    id      TEXT PRIMARY KEY NOT NULL,
    level   INTEGER DEFAULT 0 NOT NULL,
    message TEXT DEFAULT '' NOT NULL,
    data    JSON DEFAULT '{}' NOT NULL,
    created TEXT DEFAULT '' NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_logs_level ON _logs (level);
CREATE INDEX IF NOT EXISTS idx_logs_message ON _logs (message);
CREATE INDEX IF NOT EXISTS idx_logs_created_hour ON _logs (strftime('%Y-%m-%d %H:00:00', created));
