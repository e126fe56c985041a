-- 0005: the browser pages' sessions (bot/web) and each user's last logout.
--
-- web_sessions: one row per signed-in browser. id_hash is the sha256 of the random session id the
--   cookie carries; the id itself is never stored, so a copy of the database signs nobody in.
--   A row is deleted when its user logs out, and expired rows whenever a session is made.
-- web_logouts: when each Slack user last logged out. A signed link issued before that is refused,
--   so logging out also voids links still in Slack or in a browser's history.
CREATE TABLE web_sessions (
    id_hash    BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
    user       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_by_user ON web_sessions (user);

CREATE TABLE web_logouts (
    user TEXT PRIMARY KEY,
    at   INTEGER NOT NULL
) WITHOUT ROWID;
