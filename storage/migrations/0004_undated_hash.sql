-- 0004: how the SSH worker recognises a version's config again without normalizing it.
--
-- undated_sha256: bot.routeros.export.undated_hash (the sha256 of an export without the date its
-- header starts with) of an export known to be this version's config: the one it was stored from,
-- then the last one that confirmed it. An export with the same undated hash normalizes to the
-- same text, so most daily backups are one sha256 pass instead of a normalization. NULL for
-- versions stored before (their next unchanged export fills it in) and for exports without a date.
ALTER TABLE versions ADD COLUMN undated_sha256 BLOB CHECK (undated_sha256 IS NULL OR length(undated_sha256) = 32);
