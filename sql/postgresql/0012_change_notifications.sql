-- Every change other server processes must follow NOTIFYs, in its own transaction (so delivered
-- only once it commits): the schema generation (plugin installs, reloads, removals) on
-- modula_schema, the auth generation (tokens revoked, logouts, roles and permissions changed) on
-- modula_auth, each with the new number. Triggers on the counters, so every writer that moves
-- them notifies, raw SQL included. Each process LISTENs on one connection (db/notifications.py);
-- the poll stays as the fallback. SQLite has no NOTIFY: processes there follow by the poll.
-- NOTIFY the command, not pg_notify(): 0006 revokes that function from PUBLIC, so a host role that
-- is not a superuser could not call it. Listeners treat a notification as a hint and read the
-- counters themselves, so a payload is never trusted.
CREATE FUNCTION modula_notify_generation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('NOTIFY %I, %L', TG_ARGV[0], NEW.generation::text); RETURN NULL; END $$;
CREATE TRIGGER schema_state_notify AFTER UPDATE OF generation ON schema_state FOR EACH ROW EXECUTE FUNCTION modula_notify_generation('modula_schema');
CREATE TRIGGER auth_state_notify AFTER UPDATE OF generation ON auth_state FOR EACH ROW EXECUTE FUNCTION modula_notify_generation('modula_auth');
