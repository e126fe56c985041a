-- 0001: the first schema of backupbot's store.
--
-- Conventions (storage/codec.py): times are INTEGER microseconds since the Unix epoch, UTC;
-- hashes are raw 32-byte sha256 BLOBs (half the size of hex). Attempts are by far the most
-- numerous rows (one per device per run), so they hold small integers, not repeated text.

-- A device is (site, name); everything else refers to it by a small integer.
CREATE TABLE devices (
    id   INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (site, name)
);

-- Exports exactly as received, compressed, addressed by the sha256 of the raw bytes.
-- `data` is the last column so reading size/sha256 never walks the blob's overflow pages.
CREATE TABLE blobs (
    id     INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),
    size   INTEGER NOT NULL,
    codec  TEXT NOT NULL,
    data   BLOB NOT NULL
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'interrupted'))
);

-- AUTOINCREMENT: version ids are what people type, so one is never handed out twice, even if
-- the newest row were ever deleted. Rows are immutable except last_verified.
CREATE TABLE versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     INTEGER NOT NULL REFERENCES devices (id),
    blob_id       INTEGER NOT NULL REFERENCES blobs (id),
    norm_hash     BLOB NOT NULL CHECK (length(norm_hash) = 32),
    first_seen    INTEGER NOT NULL,
    last_verified INTEGER NOT NULL,
    ros_version   TEXT,
    model         TEXT,
    serial        TEXT,
    software_id   TEXT
);
CREATE INDEX versions_by_device ON versions (device_id, id);

-- One row per device per run, ok or failed. A failed attempt has a kind and no version;
-- an ok one has a version and no kind.
CREATE TABLE attempts (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    device_id  INTEGER NOT NULL REFERENCES devices (id),
    at         INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('new', 'changed', 'unchanged', 'failed')),
    version_id INTEGER REFERENCES versions (id),
    error_kind TEXT,
    reason     TEXT,
    added      INTEGER NOT NULL DEFAULT 0,
    removed    INTEGER NOT NULL DEFAULT 0,
    note       TEXT,
    CHECK ((status = 'failed') = (version_id IS NULL)),
    CHECK ((status = 'failed') = (error_kind IS NOT NULL))
);
-- Latest attempt per device is MAX(id) over this index: one seek per device, never a scan.
CREATE INDEX attempts_by_device ON attempts (device_id, id);
-- Latest success per device stays one seek even after a long run of failures.
CREATE INDEX attempts_ok_by_device ON attempts (device_id, id) WHERE status <> 'failed';
CREATE INDEX attempts_by_run ON attempts (run_id);

-- Trust on first use: `key` is trusted; `pending_*` is a different key a device presented,
-- kept until a person accepts it.
CREATE TABLE host_keys (
    device_id           INTEGER PRIMARY KEY REFERENCES devices (id),
    key                 TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    pending_key         TEXT,
    pending_fingerprint TEXT,
    CHECK ((pending_key IS NULL) = (pending_fingerprint IS NULL))
);

-- Small named values owned by the instance (e.g. the redaction key).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedule (
    site           TEXT PRIMARY KEY,
    last_scheduled INTEGER NOT NULL
) WITHOUT ROWID;

-- Slack messages waiting to be delivered; written in the same transaction as what they report.
-- A row is delivered once `ts` (Slack's message timestamp) is set; a reply waits for its parent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    parent_id       INTEGER REFERENCES outbox (id),
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    ts              TEXT
);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE ts IS NULL;
