-- The auth generation: one counter that moves, in the same transaction, whenever a change could
-- alter who a credential's viewer is or what they may do (a token revoked or shortened, a session
-- ended or cut short, a user renamed, deactivated or deleted, a role's name, a user's roles or a
-- role's permissions changed). Server processes cache viewers in memory and forget them when the
-- counter has moved (read by the same poll that follows the schema generation). Triggers, not
-- the services, bump it, so no writer can forget to: raw SQL, the CLI and future code included.
-- The routine "touch" writes (tokens.last_used_at, a session's sliding expiry) do not bump it.
-- Row triggers, as on SQLite: a statement that changes no row (a login sweeping no expired
-- session) leaves every cache alone.
CREATE TABLE auth_state (
	id INTEGER NOT NULL,
	generation BIGINT NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO auth_state (id, generation) VALUES (1, 1);
CREATE FUNCTION modula_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; RETURN NULL; END $$;
CREATE TRIGGER auth_tokens_changed AFTER UPDATE OF id, user_id, token_hash, expires_at, revoked_at OR DELETE ON tokens FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_sessions_updated AFTER UPDATE OF id, user_id, token_hash, expires_at ON sessions FOR EACH ROW WHEN (NEW.expires_at < OLD.expires_at OR NEW.id IS DISTINCT FROM OLD.id OR NEW.user_id IS DISTINCT FROM OLD.user_id OR NEW.token_hash IS DISTINCT FROM OLD.token_hash) EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_sessions_deleted AFTER DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_users_changed AFTER UPDATE OF id, username, is_active OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_user_roles_changed AFTER INSERT OR UPDATE OR DELETE ON user_roles FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_roles_changed AFTER UPDATE OF id, name OR DELETE ON roles FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
CREATE TRIGGER auth_permissions_changed AFTER INSERT OR UPDATE OR DELETE ON permissions FOR EACH ROW EXECUTE FUNCTION modula_auth_changed();
