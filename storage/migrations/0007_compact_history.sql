-- 0007: a smaller file (issue 9: the whole database within 1.5x of what `git gc` makes of the same
-- exports). Two tables are rebuilt, their data converted in place, in this one transaction
-- (storage/migrate.py runs a step with foreign keys off and checks them all before it commits, as
-- SQLite's own recipe for rebuilding a table says). Blobs and every other table are untouched.
--
-- 1. An attempt row also counts the unchanged attempts that merely repeated its outcome.
--    Attempts were one row per device per run: 100 routers backed up daily are 36,500 rows a year
--    with three indexes, 2.8 MB, more than the configs themselves. Most of them say only "unchanged,
--    the same version as yesterday". Now an unchanged attempt that confirms the version the device's
--    previous attempt recorded or confirmed (no failure between, no note of its own) is added to
--    that attempt's row instead: `repeats` more attempts, the last of them in run `last_run_id` at
--    `last_at`. Every new, changed and failed attempt keeps its own row, as before; so do the
--    device's last attempt and last success (the last of a row's repeats), the run each version was
--    recorded in, and every failure with its reason. What is no longer kept is the time and run of
--    the repeats between a row's first attempt and its last (storage/store.py says who reads what).
-- 2. The export header's fields (RouterOS version, model, serial, software id) are kept once per
--    distinct combination in export_meta; a version refers to its row. They were ~40 bytes of text
--    on every version, nearly always the same as the device's previous version's.
--
-- Versions keep their ids, an attempts row the id of its first attempt. Times are INTEGER
-- microseconds since the Unix epoch, UTC (storage/codec.py).

CREATE TABLE export_meta (
    id          INTEGER PRIMARY KEY,
    ros_version TEXT,
    model       TEXT,
    serial      TEXT,
    software_id TEXT
);
-- Found by all four fields (`IS`, so NULLs match); UNIQUE cannot see duplicates with a NULL in
-- them, storage/records.py's meta_id never makes one.
CREATE UNIQUE INDEX export_meta_by_fields ON export_meta (serial, model, ros_version, software_id);

INSERT INTO export_meta (ros_version, model, serial, software_id)
SELECT ros_version, model, serial, software_id FROM versions
GROUP BY ros_version, model, serial, software_id ORDER BY MIN(id);

CREATE TABLE versions_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id      INTEGER NOT NULL REFERENCES devices (id),
    blob_id        INTEGER NOT NULL REFERENCES blobs (id),
    meta_id        INTEGER NOT NULL REFERENCES export_meta (id),
    norm_hash      BLOB NOT NULL CHECK (length(norm_hash) = 32),
    first_seen     INTEGER NOT NULL,
    last_verified  INTEGER NOT NULL,
    undated_sha256 BLOB CHECK (undated_sha256 IS NULL OR length(undated_sha256) = 32)
);
INSERT INTO versions_new (id, device_id, blob_id, meta_id, norm_hash, first_seen, last_verified, undated_sha256)
SELECT v.id, v.device_id, v.blob_id, m.id, v.norm_hash, v.first_seen, v.last_verified, v.undated_sha256
FROM versions v JOIN export_meta m
  ON m.serial IS v.serial AND m.model IS v.model AND m.ros_version IS v.ros_version AND m.software_id IS v.software_id
ORDER BY v.id;
-- AUTOINCREMENT's memory (an id is never handed out twice) moves with the table: the old table's
-- sqlite_sequence row is renamed before the table is dropped, then follows the rename.
DELETE FROM sqlite_sequence WHERE name = 'versions_new';
UPDATE sqlite_sequence SET name = 'versions_new' WHERE name = 'versions';
DROP TABLE versions;
ALTER TABLE versions_new RENAME TO versions;
CREATE INDEX versions_by_device ON versions (device_id, id);

CREATE TABLE attempts_new (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    at          INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('new', 'changed', 'unchanged', 'failed')),
    version_id  INTEGER REFERENCES versions (id),
    error_kind  TEXT,
    reason      TEXT,
    added       INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0,
    note        TEXT,
    repeats     INTEGER NOT NULL DEFAULT 0 CHECK (repeats >= 0),
    last_run_id INTEGER REFERENCES runs (id),
    last_at     INTEGER,
    CHECK ((status = 'failed') = (version_id IS NULL)),
    CHECK ((status = 'failed') = (error_kind IS NOT NULL)),
    CHECK ((repeats = 0) = (last_run_id IS NULL) AND (repeats = 0) = (last_at IS NULL)),
    CHECK (status <> 'failed' OR repeats = 0)
);
-- Each device's attempts in order; a row starts wherever an attempt is not a repeat of the one
-- before (storage/store.py's _record_confirmation applies the same rule to new ones), and takes the
-- rest until the next.
WITH marked AS (
    SELECT id, device_id,
           CASE WHEN status = 'unchanged' AND note IS NULL AND LAG(status) OVER w <> 'failed'
                     AND LAG(version_id) OVER w = version_id THEN 0 ELSE 1 END AS starts
    FROM attempts WINDOW w AS (PARTITION BY device_id ORDER BY id)
), numbered AS (
    SELECT id, device_id, SUM(starts) OVER (PARTITION BY device_id ORDER BY id) AS row_no FROM marked
), spans AS (
    SELECT MIN(id) AS first_id, MAX(id) AS last_id, COUNT(*) - 1 AS repeats FROM numbered GROUP BY device_id, row_no
)
INSERT INTO attempts_new (id, run_id, device_id, at, status, version_id, error_kind, reason, added, removed, note,
                          repeats, last_run_id, last_at)
SELECT f.id, f.run_id, f.device_id, f.at, f.status, f.version_id, f.error_kind, f.reason, f.added, f.removed, f.note,
       s.repeats, CASE WHEN s.repeats > 0 THEN l.run_id END, CASE WHEN s.repeats > 0 THEN l.at END
FROM spans s JOIN attempts f ON f.id = s.first_id JOIN attempts l ON l.id = s.last_id
ORDER BY f.id;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;

-- A device's last success is one MAX(id) seek, its last attempt the larger of two: the two partial
-- indexes cover every row between them, so an index of all of them by device would only repeat them.
CREATE INDEX attempts_ok_by_device ON attempts (device_id, id) WHERE status <> 'failed';
CREATE INDEX attempts_failed_by_device ON attempts (device_id, id) WHERE status = 'failed';
-- A run's attempts: the rows it began, and the rows whose last repeat it made.
CREATE INDEX attempts_by_run ON attempts (run_id);
CREATE INDEX attempts_by_last_run ON attempts (last_run_id) WHERE last_run_id IS NOT NULL;
