-- 0002: what the deliverer (bot/deliver.py) needs to deliver each outbox item exactly once.
--
-- sending_since: set (and committed) before a message is handed to Slack, cleared only when Slack
--   says for sure that it did not post it. An item found with it set may already be in the channel
--   (the process died, or the answer was lost): it is looked for there before it is posted again.
-- form: which rendering is being sent; a rendering Slack rejects for its content steps down to a
--   simpler one (0 as built, 1 plain text, 2 a short note) instead of blocking the queue.
-- gave_up_at: even the short note was rejected. The item leaves the queue (kept, logged, counted
--   and shown in /healthz) and its thread replies are posted on their own.
ALTER TABLE outbox ADD COLUMN sending_since INTEGER;
ALTER TABLE outbox ADD COLUMN form INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN gave_up_at INTEGER;

-- The head of each channel's queue is MIN(id) per channel over the pending rows.
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE ts IS NULL AND gave_up_at IS NULL;
