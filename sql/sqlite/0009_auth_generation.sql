-- The auth generation: one counter that moves, in the same transaction, whenever a change could
-- alter who a credential's viewer is or what they may do (a token revoked or shortened, a session
-- ended or cut short, a user renamed, deactivated or deleted, a role's name, a user's roles or a
-- role's permissions changed). Server processes cache viewers in memory and forget them when the
-- counter has moved (read by the same poll that follows the schema generation). Triggers, not
-- the services, bump it, so no writer can forget to: raw SQL, the CLI and future code included.
-- The routine "touch" writes (tokens.last_used_at, a session's sliding expiry) do not bump it.
CREATE TABLE auth_state (
	id INTEGER NOT NULL,
	generation INTEGER NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO auth_state (id, generation) VALUES (1, 1);
CREATE TRIGGER auth_tokens_updated AFTER UPDATE OF id, user_id, token_hash, expires_at, revoked_at ON tokens BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_tokens_deleted AFTER DELETE ON tokens BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_sessions_updated AFTER UPDATE OF id, user_id, token_hash, expires_at ON sessions WHEN NEW.expires_at < OLD.expires_at OR NEW.id IS NOT OLD.id OR NEW.user_id IS NOT OLD.user_id OR NEW.token_hash IS NOT OLD.token_hash BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_sessions_deleted AFTER DELETE ON sessions BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_users_updated AFTER UPDATE OF id, username, is_active ON users BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_users_deleted AFTER DELETE ON users BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_user_roles_inserted AFTER INSERT ON user_roles BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_user_roles_updated AFTER UPDATE ON user_roles BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_user_roles_deleted AFTER DELETE ON user_roles BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_roles_updated AFTER UPDATE OF id, name ON roles BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_roles_deleted AFTER DELETE ON roles BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_permissions_inserted AFTER INSERT ON permissions BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_permissions_updated AFTER UPDATE ON permissions BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER auth_permissions_deleted AFTER DELETE ON permissions BEGIN UPDATE auth_state SET generation = generation + 1 WHERE id = 1; END;
