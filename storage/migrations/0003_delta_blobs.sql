-- 0003: a blob may be a delta against an earlier blob, its base (storage/codec.py, storage/blobs.py).
--
-- depth: deltas in the blob's chain (0: stored whole). base_id < id, so a chain can never loop.
-- The columns follow `data` (ALTER TABLE can only append); they are read together with `data`
-- when a chain is decoded, so that costs nothing.
ALTER TABLE blobs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0 CHECK (depth >= 0);
ALTER TABLE blobs ADD COLUMN base_id INTEGER REFERENCES blobs (id)
    CHECK ((base_id IS NULL) = (depth = 0) AND (base_id IS NULL) = (codec <> 'zstd-delta') AND base_id < id);

-- Progress of the one-time rewrite of the whole zlib blobs written before this step into deltas
-- (storage/blobs.py: rewrite_legacy_blobs). One row while it is unfinished: versions from
-- next_version to last_version are still to be visited; blobs up to done_blob are final. A zlib
-- blob above done_blob may still change encoding, so no new blob uses it as a base.
CREATE TABLE blob_rewrite (
    next_version INTEGER NOT NULL,
    last_version INTEGER NOT NULL,
    done_blob    INTEGER NOT NULL
);
INSERT INTO blob_rewrite (next_version, last_version, done_blob)
SELECT MIN(id), MAX(id), 0 FROM versions HAVING COUNT(*) > 0;
