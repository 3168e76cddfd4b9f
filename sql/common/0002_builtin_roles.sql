-- The built-in roles and the first schema generation.
INSERT INTO roles (name, label, builtin, created_at) VALUES ('admin', 'Administrator', TRUE, CURRENT_TIMESTAMP);
INSERT INTO roles (name, label, builtin, created_at) VALUES ('editor', 'Editor', TRUE, CURRENT_TIMESTAMP);
INSERT INTO roles (name, label, builtin, created_at) VALUES ('viewer', 'Viewer', TRUE, CURRENT_TIMESTAMP);
INSERT INTO roles (name, label, builtin, created_at) VALUES ('anonymous', 'Anonymous', TRUE, CURRENT_TIMESTAMP);
INSERT INTO schema_state (id, generation) VALUES (1, 1);
