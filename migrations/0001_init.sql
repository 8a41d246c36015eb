-- 0001: system tables and the `_superusers` auth collection.
-- Collections are described in `_collections` (one row each, fields as JSON);
-- every collection's records live in a real table of the same name.

CREATE TABLE _collections (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT UNIQUE NOT NULL COLLATE NOCASE,
    type       TEXT NOT NULL DEFAULT 'base',
    system     BOOLEAN NOT NULL DEFAULT FALSE,
    fields     JSON NOT NULL DEFAULT '[]',
    indexes    JSON NOT NULL DEFAULT '[]',
    listRule   TEXT DEFAULT NULL,
    viewRule   TEXT DEFAULT NULL,
    createRule TEXT DEFAULT NULL,
    updateRule TEXT DEFAULT NULL,
    deleteRule TEXT DEFAULT NULL,
    options    JSON NOT NULL DEFAULT '{}',
    created    TEXT NOT NULL DEFAULT '',
    updated    TEXT NOT NULL DEFAULT ''
);

-- Key/value application state; the `settings` row holds the settings JSON.
CREATE TABLE _params (
    id      TEXT PRIMARY KEY NOT NULL,
    value   JSON DEFAULT NULL,
    created TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL DEFAULT ''
);

CREATE TABLE _superusers (
    id              TEXT PRIMARY KEY NOT NULL,
    password        TEXT NOT NULL DEFAULT '',
    tokenKey        TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    emailVisibility BOOLEAN NOT NULL DEFAULT FALSE,
    verified        BOOLEAN NOT NULL DEFAULT FALSE,
    created         TEXT NOT NULL DEFAULT '',
    updated         TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_tokenKey_pbc_3142635823 ON _superusers (tokenKey);
CREATE UNIQUE INDEX idx_email_pbc_3142635823 ON _superusers (email) WHERE email != '';

INSERT INTO _collections (id, name, type, system, fields, indexes, options, created, updated)
VALUES (
    'pbc_3142635823', '_superusers', 'auth', TRUE,
    json('[
      {"id":"text3208210256","name":"id","type":"text","system":true,"hidden":false,"presentable":false,"required":true,"help":"","min":15,"max":15,"pattern":"^[a-z0-9]+$","autogeneratePattern":"[a-z0-9]{15}","primaryKey":true},
      {"id":"password901924565","name":"password","type":"password","system":true,"hidden":true,"presentable":false,"required":true,"help":"","min":8,"max":0,"pattern":"","cost":0},
      {"id":"text2504183744","name":"tokenKey","type":"text","system":true,"hidden":true,"presentable":false,"required":true,"help":"","min":30,"max":60,"pattern":"","autogeneratePattern":"[a-zA-Z0-9]{50}","primaryKey":false},
      {"id":"email3885137012","name":"email","type":"email","system":true,"hidden":false,"presentable":false,"required":true,"help":"","exceptDomains":null,"onlyDomains":null},
      {"id":"bool1547992806","name":"emailVisibility","type":"bool","system":true,"hidden":false,"presentable":false,"required":false,"help":""},
      {"id":"bool256245529","name":"verified","type":"bool","system":true,"hidden":false,"presentable":false,"required":false,"help":""},
      {"id":"autodate2990389176","name":"created","type":"autodate","system":true,"hidden":false,"presentable":false,"onCreate":true,"onUpdate":false},
      {"id":"autodate3332085495","name":"updated","type":"autodate","system":true,"hidden":false,"presentable":false,"onCreate":true,"onUpdate":true}
    ]'),
    json('["CREATE UNIQUE INDEX `idx_tokenKey_pbc_3142635823` ON `_superusers` (`tokenKey`)", "CREATE UNIQUE INDEX `idx_email_pbc_3142635823` ON `_superusers` (`email`) WHERE `email` != ''''"]'),
    json_object(
        'authRule', '',
        'manageRule', NULL,
        'passwordAuth', json_object('enabled', json('true'), 'identityFields', json('["email"]')),
        'authToken', json_object('duration', 86400, 'secret', lower(hex(randomblob(25)))),
        'passwordResetToken', json_object('duration', 1800, 'secret', lower(hex(randomblob(25)))),
        'emailChangeToken', json_object('duration', 1800, 'secret', lower(hex(randomblob(25)))),
        'verificationToken', json_object('duration', 259200, 'secret', lower(hex(randomblob(25)))),
        'fileToken', json_object('duration', 180, 'secret', lower(hex(randomblob(25))))
    ),
    strftime('%Y-%m-%d %H:%M:%fZ', 'now'), strftime('%Y-%m-%d %H:%M:%fZ', 'now')
);
