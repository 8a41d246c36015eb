-- Ferrobase's system tables on PostgreSQL, the counterparts of
-- migrations/0001_init.sql (without its rows) and 0003_aux_logs.sql:
-- text in byte order as SQLite's BINARY (COLLATE "C"), jsonb for JSON.
-- Collection tables (the system collections included) are created from their
-- definitions (schema::postgres_create_sql), not here.

CREATE TABLE _migrations (
    file    text COLLATE "C" PRIMARY KEY NOT NULL,
    applied text COLLATE "C" NOT NULL
);

CREATE TABLE _collections (
    _fb_rowid    bigint GENERATED ALWAYS AS IDENTITY,
    id           text COLLATE "C" PRIMARY KEY NOT NULL,
    name         text COLLATE "C" NOT NULL,
    type         text COLLATE "C" NOT NULL DEFAULT 'base',
    system       boolean NOT NULL DEFAULT FALSE,
    fields       jsonb NOT NULL DEFAULT '[]',
    indexes      jsonb NOT NULL DEFAULT '[]',
    "listRule"   text COLLATE "C" DEFAULT NULL,
    "viewRule"   text COLLATE "C" DEFAULT NULL,
    "createRule" text COLLATE "C" DEFAULT NULL,
    "updateRule" text COLLATE "C" DEFAULT NULL,
    "deleteRule" text COLLATE "C" DEFAULT NULL,
    options      jsonb NOT NULL DEFAULT '{}',
    created      text COLLATE "C" NOT NULL DEFAULT '',
    updated      text COLLATE "C" NOT NULL DEFAULT ''
);
-- SQLite's `name ... COLLATE NOCASE UNIQUE`: ASCII folding under "C".
CREATE UNIQUE INDEX _collections_name_nocase ON _collections (lower(name));

-- `value` is text, not jsonb: settings sealed with an encryption key are
-- base64, not JSON.
CREATE TABLE _params (
    id      text COLLATE "C" PRIMARY KEY NOT NULL,
    value   text COLLATE "C" DEFAULT NULL,
    created text COLLATE "C" NOT NULL DEFAULT '',
    updated text COLLATE "C" NOT NULL DEFAULT ''
);

CREATE TABLE _logs (
    _fb_rowid bigint GENERATED ALWAYS AS IDENTITY,
    id      text COLLATE "C" PRIMARY KEY NOT NULL,
    level   bigint DEFAULT 0 NOT NULL,
    message text COLLATE "C" DEFAULT '' NOT NULL,
    data    jsonb DEFAULT '{}' NOT NULL,
    created text COLLATE "C" DEFAULT '' NOT NULL
);
CREATE INDEX idx_logs_created ON _logs (created);

-- The realtime outbox shared by every node (src/realtime/outbox.rs; nodes
-- started on an older database create it at start).
CREATE TABLE _realtime_outbox (
    seq     bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);

-- The version of each node-local cache (schema, settings), counted up by
-- every change to it (src/db/notify.rs).
CREATE TABLE _fb_versions (
    cache   text COLLATE "C" PRIMARY KEY NOT NULL,
    version bigint NOT NULL
);
