-- 0006: the inventory an outside source (NetBox, a CSV file) gives (bot/inventory, storage/inventory.py).
--
-- Self-contained: it creates its own tables and touches no other, so it applies on top of any
-- earlier step. Times are INTEGER microseconds since the Unix epoch, UTC (storage/codec.py).

-- Every device the source has ever listed, keyed like `devices` by (site, name). retired_at is
-- NULL while the source lists it: those rows are the last good list, used while the source cannot
-- be read (a restart during a NetBox outage still has it). A device the source stops listing gets
-- retired_at (never deleted: its history stays browsable); listed again, it is cleared.
-- No credentials: a router's password never comes from the source and is never stored.
CREATE TABLE inventory_devices (
    site       TEXT NOT NULL,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL,
    port       INTEGER CHECK (port IS NULL OR port BETWEEN 1 AND 65535),  -- NULL: the site's or defaults' port
    origin     TEXT NOT NULL DEFAULT '',  -- where the source listed it ("NetBox device 12")
    seen_at    INTEGER NOT NULL,          -- the last good fetch that listed it
    retired_at INTEGER,
    PRIMARY KEY (site, name)
) WITHOUT ROWID;

-- The last good fetch: one row once there was one.
CREATE TABLE inventory_fetch (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    source     TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    devices    INTEGER NOT NULL
);
