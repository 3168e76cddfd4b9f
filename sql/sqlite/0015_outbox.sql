-- The outbox: side effects meant for after a change commits (a plugin's HTTP call queued with
-- http.enqueue, its after_commit hooks), written in the change's own transaction and delivered
-- by a background worker (server/modula/outbox/). `status` is pending, delivered or dead (given
-- up after the last attempt). A worker claims a due row by setting `locked_until` (its lease)
-- and `locked_by` inside a write transaction; a lease that ran out (the worker was killed)
-- makes the row claimable again.
CREATE TABLE IF NOT EXISTS outbox (
	id INTEGER NOT NULL,
	plugin VARCHAR(64) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	payload TEXT NOT NULL,
	status VARCHAR(16) DEFAULT 'pending' NOT NULL,
	attempts INTEGER DEFAULT 0 NOT NULL,
	next_attempt_at DATETIME NOT NULL,
	locked_until DATETIME,
	locked_by VARCHAR(64),
	last_error TEXT,
	created_at DATETIME NOT NULL,
	delivered_at DATETIME,
	PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (status, next_attempt_at);
