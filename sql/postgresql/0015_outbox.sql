-- The outbox: side effects meant for after a change commits (a plugin's HTTP call queued with
-- http.enqueue, its after_commit hooks), written in the change's own transaction and delivered
-- by a background worker (server/modula/outbox/). `status` is pending, delivered or dead (given
-- up after the last attempt). A worker claims a due row by setting `locked_until` (its lease;
-- claims use FOR UPDATE SKIP LOCKED, so replicas share the rows) and `locked_by`; a lease that
-- ran out (the worker was killed) makes the row claimable again.
CREATE TABLE IF NOT EXISTS outbox (
	id BIGSERIAL NOT NULL,
	plugin VARCHAR(64) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	payload TEXT NOT NULL,
	status VARCHAR(16) DEFAULT 'pending' NOT NULL,
	attempts INTEGER DEFAULT 0 NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	locked_until TIMESTAMP WITH TIME ZONE,
	locked_by VARCHAR(64),
	last_error TEXT,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	delivered_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (status, next_attempt_at);
-- A plugin's login role has no right on this table; it queues through this function, which
-- writes the row under the owner's rights and names the plugin from the role that called (so
-- a plugin can only ever queue work of its own, in its own transaction). The worker checks
-- every delivery against the plugin's manifest again, so a row queued by raw SQL gains nothing.
-- It returns NULL, writing nothing, when the caller is no plugin role or the entry is refused.
CREATE OR REPLACE FUNCTION modula_outbox_enqueue(entry_kind text, entry_payload text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	INSERT INTO outbox (plugin, kind, payload, next_attempt_at, created_at)
	SELECT r.plugin, entry_kind, entry_payload, now(), now() FROM plugin_roles r
	WHERE r.role = session_user AND entry_kind IN ('http', 'hook') AND length(entry_payload) <= 1000000
	RETURNING id
$$;
